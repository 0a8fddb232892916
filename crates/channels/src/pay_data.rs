//! [`PayData`]: what the buyer's front end needs to pay, one variant per
//! shape a channel hands out. The adapters build it; the type is the
//! merchant API contract's (`cashdesk_api::PayData`, crates/api), which
//! the server sends as `payData` and the SDK parses back, so there is one
//! definition of each shape. Its golden tests (crates/api/src/tests.rs)
//! pin every wire shape.
//!
//! The server matches on the variant (which one is a QR code, which a URL
//! to send the browser to) instead of probing JSON keys.
//! [`PayData::Other`] exists for readers of a newer server; no adapter
//! builds it.

pub use cashdesk_api::{PayData, WxAppPayReq, WxRequestPayment};
