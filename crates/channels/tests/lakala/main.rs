//! Integration tests of the Lakala adapter (one test binary).

mod flows;
mod notify;
mod registry;
mod support;
