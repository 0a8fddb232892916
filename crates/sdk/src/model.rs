//! Wire types of the merchant API. They are the contract crate's
//! (`cashdesk-api`, crates/api): one definition that the server serializes
//! and the SDK parses, so the two cannot drift apart. This module only
//! re-exports them under the SDK's paths (`cashdesk_sdk::PayResult`, …).
//!
//! Requests use plain strings and integers: the server is the one that
//! validates, and tests must be able to send what a careless merchant
//! would. Optional response fields are `Option`, so `null` and an absent
//! field read the same.

pub use cashdesk_api::{
    ApplyBindingRequest, ApplyBindingResponse, CreateOrderRequest, CreateOrderResponse,
    CreateRefundRequest, Envelope, OrderSignature, PayData, PayResult, PaymentChannel, PaymentList,
    PaymentRequest, PaymentResponse, PlatformKeys, RefundResult, RegisterAppRequest,
    RegisterAppResponse, WxAppPayReq, WxRequestPayment,
};
