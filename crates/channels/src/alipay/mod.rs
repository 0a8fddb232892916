//! Alipay (`ali-pay`): the OpenAPI gateway (`gateway.do`, the "v2" protocol),
//! RSA2 both ways (PROTOCOLS.md "Alipay OpenAPI").
//!
//! Requests are form POSTs of the common parameters (`app_id`, `method`,
//! `format=JSON`, `charset=utf-8`, `sign_type=RSA2`, `timestamp`,
//! `version=1.0`, `biz_content`, `notify_url`, and in certificate mode
//! `app_cert_sn` + `alipay_root_cert_sn`) plus `sign`: SHA256withRSA over
//! [`signing_string`] (every parameter but `sign`, empty values skipped,
//! sorted by name, `k=v` joined by `&`, raw values). Everything travels in the
//! form body (Alipay reads query and body alike).
//!
//! Responses are verified over the exact text of the `<method>_response` (or
//! `error_response`) member as received — it is cut out of the body with
//! `serde_json::RawValue`, never re-serialized (Alipay escapes `/` as `\/`,
//! and a re-serialization would change the bytes). A body with a duplicate
//! top-level member is refused. Rules, in order:
//! - HTTP 5xx/429, timeouts, transport errors → `Retryable`;
//! - a present `sign` that does not verify → `BadResponse`; in certificate
//!   mode an `alipay_cert_sn` other than the configured certificate's too
//!   (Alipay rotated its certificate: the config needs the new one);
//! - `code == "10000"` must be signed, else `BadResponse`;
//! - errors are mapped in [`Failure::into_error`]: `20000` and `isp.*` /
//!   `*SYSTEM_ERROR` sub-codes → `Retryable`; signature/app/cert problems
//!   (`40002` `isv.invalid-signature`, `isv.invalid-app-id`, …, `20001`,
//!   `40003`, `40006`) → `Config`; other `40004` sub-codes → `Business`
//!   with the sub-code and sub-message. An error answer may be unsigned
//!   (Alipay does not sign answers to requests it could not authenticate); it
//!   is reported, but only a *signed* error is ever turned into a state
//!   (`ACQ.TRADE_NOT_EXIST` → `NotFound` on query, `Ok` on close).
//!
//! Scenes: `mini` (`alipay.trade.create` with `buyer_id` when the payer id is
//! an Alipay user id `2088` + 12 digits, else `buyer_open_id`; payData
//! `{tradeNo}` for `my.tradePay`), `qr` (`alipay.trade.precreate`, payData
//! `{qrCode}`), `wap` / `page` (`alipay.trade.wap.pay` / `.page.pay`: no server
//! call; payData `{redirectUrl, form}`, a signed GET URL and the same
//! parameters as an auto-submitting POST form; `return_url` and the wap
//! `quit_url` are the request's [`PayRequest::return_url`], else the
//! config's `returnUrl`), `app` (`alipay.trade.app.pay`:
//! payData `{orderString}`, the signed, URL-encoded parameters the Alipay app
//! SDK takes).
//!
//! Refunds: `alipay.trade.refund` with `out_request_no` = cashdesk's refund
//! id (partial refunds, idempotent retries). `fund_change == "Y"` is
//! `Success`; `N` (a repeated call) is `Processing`, to be confirmed by
//! `alipay.trade.fastpay.refund.query`, where `refund_status ==
//! REFUND_SUCCESS` is `Success`. An answer without `refund_status` (and
//! without `refund_amount`) is Alipay's "refund not received, or failed":
//! it is reported as the business error [`crate::REFUND_NOT_FOUND`], never
//! as a failure, so the server sends the refund again with the same
//! `out_request_no` — Alipay's documented remedy, safe because Alipay
//! treats it as the same refund (and answers a refusal again if it was
//! refused). Any other status is `Processing`.
//!
//! Query: `TRADE_SUCCESS` / `TRADE_FINISHED` → `Paid` (the amount must equal
//! the order's), `WAIT_BUYER_PAY` → `NotPaid`, `TRADE_CLOSED` → `Closed`, or
//! `Refunded` when the answer carries a payment date (Alipay closes a trade
//! that was refunded in full).
//!
//! Stores (third-party app mode, 第三方应用): a store whose own Alipay
//! merchant authorized the config's app has an [`wire::AppAuthIdentity`];
//! every call for its orders carries `app_auth_token` among the signed
//! common parameters (client-side wap/page/app parameters too), and its
//! notifications must name the authorizer (`auth_app_id`, and `seller_id`
//! when the identity has a `sellerId`), checked in
//! [`Channel::check_merchant`] once the order is known.
//!
//! Notifications: form POST (or GET query), values URL-decoded; verified with
//! `sign` and `sign_type` removed; then `app_id` must be this config's, and
//! the merchant (`seller_id` when the config sets `sellerId`; for a store's
//! order its authorizer) is checked against the order
//! ([`Channel::check_merchant`]). `TRADE_SUCCESS` and
//! `TRADE_FINISHED` are payments (`total_amount` converted to fen exactly and
//! left to [`crate::PaymentNotification::check_against`]); `TRADE_CLOSED`
//! without refund fields is [`PaymentResult::Closed`] (Alipay closed the
//! unpaid trade: on timeout, or after `alipay.trade.close`, when the
//! notification may even arrive before the close's own answer — closed,
//! not failed, so the merchant's close still ends `CLOSED`); refund-related notifications
//! (`out_biz_no`/`refund_fee`/`gmt_refund`) and `WAIT_BUYER_PAY` are verified
//! and acknowledged as [`VerifiedNotification::Other`] — their `refund_fee`
//! is cumulative, so refunds are settled by query instead. The reply is
//! exactly `success` (or `fail`, and Alipay retries).
//!
//! Bills: `alipay.data.dataservice.bill.downloadurl.query` answers a
//! short-lived link to the day's zip, which is fetched only from Alipay's
//! bill host or the gateway's own ([`bill`] says what each answer means).

//!
//! Rooms: [`client`] signs requests, verifies answers and maps Alipay's
//! codes (the one place they get a meaning, [`client::business_kind`]);
//! [`flows`] is the [`Channel`] implementation, one method per flow, and
//! builds `payData`; [`notify`] verifies and parses notifications; [`bill`]
//! fetches the day's bill; [`wire`] holds the credential shapes and the
//! JSON bodies.

mod bill;
mod client;
mod flows;
mod notify;
pub mod wire;

use std::collections::BTreeMap;
use std::sync::Arc;

use cashdesk_core::{ChannelType, SceneCode};
use cashdesk_crypto::rsa::{RsaPrivateKey, RsaPublicKey};
use url::Url;

use crate::channel::Channel;
use crate::error::ChannelError;
use crate::http;
use crate::meta::{ChannelMeta, LocalText, RefundSettlement, SceneInfo};
use crate::registry::{ChannelEnv, ChannelFactory, ChannelSpec, IdentitySummary};
use crate::support::parse_base_url;
use wire::*;

pub use bill::BILL_HOST;
pub use client::{
    REFUND_NOT_FOUND_CODE, RawResponse, response_member, signing_string, split_response,
};
pub use flows::auto_submit_form;

/// Gateway parameters, request or notification: name → value.
type Fields = BTreeMap<String, String>;

/// Alipay's production gateway; a config's `baseUrl` replaces it whole.
pub const PRODUCTION_GATEWAY: &str = "https://openapi.alipay.com/gateway.do";

/// What Alipay is: names, scenes (those [`AliPay`] accepts), capabilities.
pub static META: ChannelMeta = ChannelMeta {
    channel_type: ChannelType::AliPay,
    name: LocalText {
        zh: "支付宝",
        en: "Alipay",
    },
    scenes: &[
        SceneInfo {
            scene: SceneCode::Mini,
            name: "支付宝小程序支付",
        },
        SceneInfo {
            scene: SceneCode::Wap,
            name: "支付宝手机网站支付",
        },
        SceneInfo {
            scene: SceneCode::Page,
            name: "支付宝电脑网站支付",
        },
        SceneInfo {
            scene: SceneCode::Qr,
            name: "支付宝扫码支付",
        },
        SceneInfo {
            scene: SceneCode::App,
            name: "支付宝APP支付",
        },
    ],
    payer_oauth: None,
    refunds: RefundSettlement::Synchronous,
    h5_return_param: None,
    mark_svg: r##"<svg viewBox="0 0 32 32" aria-hidden="true" focusable="false"><rect width="32" height="32" rx="8" fill="#1677ff"/><path d="M9 10h14M16 7v6M10.5 14h11c-1.2 4.6-4.8 8.6-11.5 10.5M14 17.5c3 2.6 6.7 4.8 10.5 6" fill="none" stroke="#fff" stroke-width="2.2" stroke-linecap="round" stroke-linejoin="round"/></svg>"##,
};

const WAP_METHOD: &str = "alipay.trade.wap.pay";

/// The only `code` Alipay uses for success.
pub const SUCCESS_CODE: &str = "10000";

/// The factory registered in [`crate::registry::FACTORIES`].
pub struct AlipayFactory;

impl ChannelFactory for AlipayFactory {
    fn meta(&self) -> &'static ChannelMeta {
        &META
    }

    /// `gateway.do` is what Alipay calls its "v2" protocol (v3 is the newer
    /// REST API, not spoken here).
    fn api_versions(&self) -> &'static [&'static str] {
        &["v2"]
    }

    /// The only version, so a config may leave `apiVersion` out.
    fn default_api_version(&self) -> Option<&'static str> {
        Some("v2")
    }

    fn validate(&self, _api_version: &str, credentials: &serde_json::Value) -> Result<(), String> {
        AlipayCredentials::parse(credentials)?.check().map(|_| ())
    }

    /// `{appAuthToken, authAppId, sellerId?}` (third-party app mode).
    fn validate_store_identity(
        &self,
        _api_version: &str,
        identity: &serde_json::Value,
    ) -> Result<IdentitySummary, String> {
        let a = AppAuthIdentity::parse(identity)?.check()?;
        Ok(IdentitySummary {
            mch_id: Some(a.seller_id.unwrap_or(a.auth_app_id)),
            secret_fields: AppAuthIdentity::SECRET_FIELDS,
        })
    }

    fn build(
        &self,
        spec: &ChannelSpec<'_>,
        env: &ChannelEnv,
    ) -> Result<Arc<dyn Channel>, ChannelError> {
        let gateway = parse_base_url(spec.base_url.unwrap_or(PRODUCTION_GATEWAY))
            .map_err(ChannelError::config)?;
        let creds = AlipayCredentials::parse(spec.credentials).map_err(ChannelError::config)?;
        Ok(Arc::new(AliPay::new(spec.mch_id, creds, gateway, env)?))
    }
}

/// `mini` payer ids: an Alipay user id (`2088` + 12 digits) goes in
/// `buyer_id`, anything else (the newer app-scoped OpenID) in `buyer_open_id`.
pub fn is_alipay_user_id(payer: &str) -> bool {
    payer.len() == 16 && payer.starts_with("2088") && payer.bytes().all(|b| b.is_ascii_digit())
}

/// One Alipay app (a channel config).
pub struct AliPay {
    mch_id: String,
    app_id: String,
    seller_id: Option<String>,
    private_key: RsaPrivateKey,
    alipay_key: RsaPublicKey,
    cert: Option<CertMode>,
    gateway: Url,
    notify_url: String,
    public_url: String,
    return_url: Option<String>,
    http: reqwest::Client,
}

impl std::fmt::Debug for AliPay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AliPay")
            .field("mch_id", &self.mch_id)
            .field("app_id", &self.app_id)
            .field("seller_id", &self.seller_id)
            .field("cert_mode", &self.cert.is_some())
            .field("gateway", &self.gateway.as_str())
            .finish_non_exhaustive()
    }
}

impl AliPay {
    pub fn new(
        mch_id: &str,
        creds: AlipayCredentials,
        gateway: Url,
        env: &ChannelEnv,
    ) -> Result<Self, ChannelError> {
        let checked = creds.check().map_err(ChannelError::config)?;
        let mut roots: Vec<&str> = env.extra_root_ca_pems.iter().map(String::as_str).collect();
        if let Some(ca) = creds.ca_cert_pem() {
            roots.push(ca);
        }
        Ok(Self {
            mch_id: mch_id.trim().to_owned(),
            app_id: creds.app_id.trim().to_owned(),
            seller_id: creds.seller_id(),
            private_key: checked.private_key,
            alipay_key: checked.alipay_key,
            cert: checked.cert,
            gateway,
            notify_url: env.notify_url.clone(),
            public_url: env.public_url.clone(),
            return_url: creds.return_url(),
            http: http::build_client(&env.http, &roots, None)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_names_and_user_ids() {
        assert_eq!(
            response_member("alipay.trade.fastpay.refund.query"),
            "alipay_trade_fastpay_refund_query_response"
        );
        assert!(is_alipay_user_id("2088102146225135"));
        assert!(!is_alipay_user_id("208810214622513"));
        assert!(!is_alipay_user_id(
            "074a1CcTG1LelxKe4xQC0zgNdId0nxi95b5lsNpazWYoCo5"
        ));
    }
}
