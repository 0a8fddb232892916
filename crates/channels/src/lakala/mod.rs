//! Lakala (`lakala`): the open platform v3 aggregated-acquiring API ("labs"),
//! JSON with SHA256withRSA both ways (PROTOCOLS.md "Lakala open platform v3").
//!
//! Requests: `POST {base}{path}` with the body
//! `{"req_time":"yyyyMMddHHmmss","version":"3.0","req_data":{…}}` and
//! `Authorization: LKLAPI-SHA256withRSA appid="…",serial_no="…",
//! timestamp="…",nonce_str="…",signature="…"` over
//! `appid\nserial_no\ntimestamp\nnonce_str\nbody\n` (timestamp in unix
//! seconds), signed with the merchant key.
//!
//! Responses: a 200 answer must carry `Lklapi-Appid` (this config's appId),
//! `Lklapi-Serial` (the serial of `lklCertPem`), `Lklapi-Timestamp`,
//! `Lklapi-Nonce` and `Lklapi-Signature` over
//! `appid\nserial\ntimestamp\nnonce\nbody\n` (raw body bytes), verified with
//! `lklCertPem`; unsigned or badly signed → `BadResponse`. HTTP 5xx/429,
//! timeouts and transport errors → `Retryable`; 401/403 → `Config` (Lakala
//! refused our signature or appId). Then `code == "BBS00000"` is success
//! with the payload in `resp_data`; other codes are mapped in [`choices`].
//!
//! Scenes (preorder `/api/v3/labs/trans/preorder`):
//! - `mini`: trans_type 71, WECHAT, `acc_busi_fields{sub_appid, user_id =
//!   openid}` → payData is the `wx.requestPayment` params
//!   `{appId, timeStamp, nonceStr, package, signType, paySign}` taken from
//!   `acc_resp_fields` (Lakala signs them for the sub-merchant);
//! - `jsapi`: trans_type 51, WECHAT (same payData) or ALIPAY (payData
//!   `{tradeNo}` from `acc_resp_fields.prepay_id`, for `AlipayJSBridge`
//!   `tradePay`), chosen by [`choices::jsapi_wallet`];
//! - `native`: trans_type 41 → payData `{codeUrl}` from `acc_resp_fields.code`;
//! - `h5`: trans_type 81 (Alipay H5) → payData `{h5Url}`.
//!
//! Query (`tradequery`), close (`relation/close`), refund (`relation/refund`,
//! `out_trade_no` = cashdesk's refund id, `origin_out_trade_no` = the order).
//!
//! Stores: one Lakala app serves a chain, each store under its own
//! merchant and terminal numbers ([`wire::TerminalIdentity`]); a request
//! for a store's order carries the store's `merchant_no`/`term_no`
//! (otherwise the config's), and answers must name that `merchant_no`.
//!
//! Notifications: JSON POST with `Authorization: LKLAPI-SHA256withRSA
//! timestamp="…",nonce_str="…",signature="…"` over
//! `timestamp\nnonce_str\nbody\n`, verified with the separate
//! `lklNotifyCertPem` — one key for every merchant of the platform, so the
//! signature does not say which merchant a notification is for: its
//! `merchant_no` (and `term_no`) are returned as the [`NotifiedMerchant`]
//! and [`Channel::check_merchant`] compares them with the order's store
//! (or this config's own numbers), once the server knows the order. No clock
//! window is enforced (Lakala's retries are not documented to re-sign, and a
//! replayed genuine notification changes nothing: the server's transitions
//! are compare-and-set and the amount is checked). Reply
//! `{"code":"SUCCESS","message":"执行成功"}`.
//!
//! Where PROTOCOLS.md says UNCONFIRMED (error codes, refund query, the
//! notification retry schedule — which only the server's idempotence has to
//! survive) or is silent (the H5 URL field, the native wallet, the expiry
//! field), the choice is made once, in [`choices`].

//!
//! Rooms: [`choices`] holds every UNCONFIRMED choice (codes, fields, the
//! mapping of codes to errors and [`crate::BusinessKind`]s); [`client`]
//! signs, sends and verifies calls; [`flows`] is the [`Channel`]
//! implementation, one method per flow, and builds `payData`; [`notify`]
//! verifies and parses notifications; [`wire`] holds the credential shapes
//! and the JSON bodies.

pub mod choices;
mod client;
mod flows;
mod notify;
pub mod wire;

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

pub use client::parse_authorization;

/// Lakala's production API host; a config's `baseUrl` replaces it.
pub const PRODUCTION_BASE_URL: &str = "https://s2.lakala.com";

pub const PREORDER_PATH: &str = "/api/v3/labs/trans/preorder";
pub const QUERY_PATH: &str = "/api/v3/labs/query/tradequery";
pub const CLOSE_PATH: &str = "/api/v3/labs/relation/close";
pub const REFUND_PATH: &str = "/api/v3/labs/relation/refund";

/// Business success.
pub const SUCCESS_CODE: &str = "BBS00000";

/// The authorization scheme of requests and notifications.
pub const AUTH_SCHEME: &str = "LKLAPI-SHA256withRSA";

/// The notification acknowledgement Lakala expects.
pub const NOTIFY_ACK: &str = r#"{"code":"SUCCESS","message":"执行成功"}"#;

/// What Lakala is: names, scenes (those [`Lakala`] accepts), capabilities.
pub static META: ChannelMeta = ChannelMeta {
    channel_type: ChannelType::Lakala,
    name: LocalText {
        zh: "拉卡拉",
        en: "Lakala",
    },
    scenes: &[
        SceneInfo {
            scene: SceneCode::Mini,
            name: "拉卡拉小程序支付",
        },
        SceneInfo {
            scene: SceneCode::Jsapi,
            name: "拉卡拉公众号支付",
        },
        SceneInfo {
            scene: SceneCode::Native,
            name: "拉卡拉扫码支付",
        },
        SceneInfo {
            scene: SceneCode::H5,
            name: "拉卡拉H5支付",
        },
    ],
    // Lakala's WeChat JSAPI pays users of the terminal's own AppID, whose
    // OAuth cashdesk does not hold.
    payer_oauth: None,
    refunds: RefundSettlement::Asynchronous,
    h5_return_param: None,
    mark_svg: r##"<svg viewBox="0 0 32 32" aria-hidden="true" focusable="false"><rect width="32" height="32" rx="8" fill="#e60012"/><path d="M11 8v15h10" fill="none" stroke="#fff" stroke-width="3" stroke-linecap="round" stroke-linejoin="round"/></svg>"##,
};

/// The factory registered in [`crate::registry::FACTORIES`].
pub struct LakalaFactory;

impl ChannelFactory for LakalaFactory {
    fn meta(&self) -> &'static ChannelMeta {
        &META
    }

    fn api_versions(&self) -> &'static [&'static str] {
        &["v3"]
    }

    /// The only version, so a config may leave `apiVersion` out.
    fn default_api_version(&self) -> Option<&'static str> {
        Some("v3")
    }

    fn validate(&self, _api_version: &str, credentials: &serde_json::Value) -> Result<(), String> {
        LakalaCredentials::parse(credentials)?.check().map(|_| ())
    }

    /// `{merchantNo, termNo, subAppId?}`.
    fn validate_store_identity(
        &self,
        _api_version: &str,
        identity: &serde_json::Value,
    ) -> Result<IdentitySummary, String> {
        let t = TerminalIdentity::parse(identity)?.check()?;
        Ok(IdentitySummary {
            mch_id: Some(t.merchant_no),
            secret_fields: &[],
        })
    }

    fn build(
        &self,
        spec: &ChannelSpec<'_>,
        env: &ChannelEnv,
    ) -> Result<Arc<dyn Channel>, ChannelError> {
        let base = parse_base_url(spec.base_url.unwrap_or(PRODUCTION_BASE_URL))
            .map_err(ChannelError::config)?;
        let creds = LakalaCredentials::parse(spec.credentials).map_err(ChannelError::config)?;
        Ok(Arc::new(Lakala::new(spec.mch_id, creds, base, env)?))
    }
}

/// One Lakala merchant terminal (a channel config).
pub struct Lakala {
    mch_id: String,
    app_id: String,
    serial_no: String,
    private_key: RsaPrivateKey,
    lkl_key: RsaPublicKey,
    lkl_serial: String,
    notify_key: RsaPublicKey,
    merchant_no: String,
    term_no: String,
    sub_app_id: Option<String>,
    base_url: Url,
    notify_url: String,
    http: reqwest::Client,
}

impl std::fmt::Debug for Lakala {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lakala")
            .field("mch_id", &self.mch_id)
            .field("app_id", &self.app_id)
            .field("serial_no", &self.serial_no)
            .field("merchant_no", &self.merchant_no)
            .field("term_no", &self.term_no)
            .field("lkl_serial", &self.lkl_serial)
            .field("base_url", &self.base_url.as_str())
            .finish_non_exhaustive()
    }
}

impl Lakala {
    pub fn new(
        mch_id: &str,
        creds: LakalaCredentials,
        base_url: Url,
        env: &ChannelEnv,
    ) -> Result<Self, ChannelError> {
        let checked = creds.check().map_err(ChannelError::config)?;
        let mut roots: Vec<&str> = env.extra_root_ca_pems.iter().map(String::as_str).collect();
        if let Some(ca) = creds
            .ca_cert_pem
            .as_deref()
            .filter(|s| !s.trim().is_empty())
        {
            roots.push(ca);
        }
        Ok(Self {
            mch_id: mch_id.trim().to_owned(),
            app_id: creds.app_id.trim().to_owned(),
            serial_no: creds.serial_no.trim().to_owned(),
            private_key: checked.private_key,
            lkl_key: checked.lkl_key,
            lkl_serial: checked.lkl_serial,
            notify_key: checked.notify_key,
            merchant_no: creds.merchant_no.trim().to_owned(),
            term_no: creds.term_no.trim().to_owned(),
            sub_app_id: creds
                .sub_app_id
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            base_url,
            notify_url: env.notify_url.clone(),
            http: http::build_client(&env.http, &roots, None)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::Channel;
    use crate::http::HttpSettings;
    use serde_json::json;

    #[test]
    fn request_signature_layout() {
        let merchant = RsaPrivateKey::generate_2048().unwrap();
        let lkl = self_signed(&RsaPrivateKey::generate_2048().unwrap());
        let creds = LakalaCredentials::parse(&json!({
            "appId": "OP00000003",
            "serialNo": "00dfba8194c41b84cf",
            "privateKeyPem": merchant.to_pkcs8_pem(),
            "lklCertPem": lkl,
            "lklNotifyCertPem": lkl,
            "merchantNo": "82229007392000A",
            "termNo": "D9261078",
        }))
        .unwrap();
        let env = ChannelEnv {
            public_url: "https://pay.example.com".into(),
            notify_url: "https://pay.example.com/api/cashier-desk/notify/C1".into(),
            http: HttpSettings::default(),
            extra_root_ca_pems: vec![],
            oauth_base_url: None,
        };
        let a = Lakala::new(
            "82229007392000A",
            creds,
            Url::parse(PRODUCTION_BASE_URL).unwrap(),
            &env,
        )
        .unwrap();
        let body = r#"{"req_time":"20240102110405","version":"3.0","req_data":{}}"#;
        let auth = a.authorization(body, 1704164645, "nonce123").unwrap();
        assert!(auth.starts_with(
            "LKLAPI-SHA256withRSA appid=\"OP00000003\",serial_no=\"00dfba8194c41b84cf\",timestamp=\"1704164645\",nonce_str=\"nonce123\",signature=\""
        ));
        let p = parse_authorization(&auth).unwrap();
        let msg = format!("OP00000003\n00dfba8194c41b84cf\n1704164645\nnonce123\n{body}\n");
        merchant
            .public_key()
            .verify_sha256_base64(msg.as_bytes(), &p["signature"])
            .unwrap();
        let dbg = format!("{a:?}");
        assert!(!dbg.contains("PRIVATE"), "{dbg}");
        assert_eq!(a.notification_reply(true).body, NOTIFY_ACK);
        assert_eq!(a.notification_reply(false).status, 500);
    }

    /// A self-signed certificate for `key`.
    fn self_signed(key: &RsaPrivateKey) -> String {
        let kp = rcgen::KeyPair::from_pem(&key.to_pkcs8_pem()).unwrap();
        let params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.self_signed(&kp).unwrap().pem()
    }
}
