//! Integration tests of the WeChat Pay adapters (one test binary).

mod mtls;
mod oauth;
mod partner;
mod registry;
mod subscribe;
mod support;
mod v2;
mod v3;
