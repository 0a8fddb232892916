//! One integration-test binary: the shop against a real cashdesk.

mod flows;
mod harness;
