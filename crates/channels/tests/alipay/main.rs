//! Integration tests of the Alipay adapter (one test binary).

mod bill;
mod flows;
mod notify;
mod registry;
mod support;
