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

pub mod wire;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use cashdesk_core::time::{parse_cn_datetime, to_cn_datetime};
use cashdesk_core::{ChannelType, Fen, SceneCode};
use cashdesk_crypto::rsa::{RsaPrivateKey, RsaPublicKey};
use chrono::Utc;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use serde_json::value::RawValue;
use url::Url;

use crate::channel::*;
use crate::error::{ChannelError, NotifyError};
use crate::http;
use crate::registry::{ChannelEnv, ChannelFactory, ChannelSpec, IdentitySummary};
use crate::wechat::{parse_base_url, truncate_bytes};
use wire::*;

type Fields = BTreeMap<String, String>;

/// Alipay's production gateway; a config's `baseUrl` replaces it whole.
pub const PRODUCTION_GATEWAY: &str = "https://openapi.alipay.com/gateway.do";

/// The scenes [`AliPay`] accepts.
pub const SCENES: &[SceneCode] = &[
    SceneCode::Mini,
    SceneCode::Wap,
    SceneCode::Page,
    SceneCode::Qr,
    SceneCode::App,
];

const WAP_METHOD: &str = "alipay.trade.wap.pay";

/// The only `code` Alipay uses for success.
pub const SUCCESS_CODE: &str = "10000";

/// The factory registered in [`crate::registry::FACTORIES`].
pub struct AlipayFactory;

impl ChannelFactory for AlipayFactory {
    fn channel_type(&self) -> ChannelType {
        ChannelType::AliPay
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

/// The string Alipay signs: every parameter except those in `exclude`,
/// empty values skipped, sorted by name (ASCII), `k=v` joined by `&`, raw
/// (not URL-encoded) values. Requests exclude `sign`; notifications `sign`
/// and `sign_type`.
pub fn signing_string(params: &BTreeMap<String, String>, exclude: &[&str]) -> String {
    let mut out = String::new();
    for (k, v) in params {
        if v.is_empty() || exclude.contains(&k.as_str()) {
            continue;
        }
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// The response member a method's answer lives in:
/// `alipay.trade.query` → `alipay_trade_query_response`.
pub fn response_member(method: &str) -> String {
    format!("{}_response", method.replace('.', "_"))
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

/// A verified (or at least well-formed) answer.
enum Reply {
    /// `code == 10000`, signed: the raw `…_response` text.
    Success(String),
    Failed(Failure),
}

/// An error answer (`code != 10000`).
#[derive(Debug)]
struct Failure {
    code: String,
    msg: String,
    sub_code: Option<String>,
    sub_msg: Option<String>,
    /// Whether the answer carried a signature that verified.
    signed: bool,
}

impl Failure {
    fn is(&self, sub_code: &str) -> bool {
        self.sub_code.as_deref() == Some(sub_code)
    }

    /// The one place Alipay's error codes are mapped.
    fn into_error(self, what: &str) -> ChannelError {
        let sub = self.sub_code.clone().unwrap_or_default();
        let code = if sub.is_empty() {
            self.code.clone()
        } else {
            sub.clone()
        };
        let message = self
            .sub_msg
            .clone()
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| self.msg.clone());
        let detail = format!("{what}: {} {code}: {message}", self.code);
        let retryable =
            self.code == "20000" || sub.starts_with("isp.") || sub.ends_with("SYSTEM_ERROR");
        let config = matches!(self.code.as_str(), "20001" | "40003" | "40006")
            || (self.code == "40002"
                && (sub.contains("signature")
                    || sub.contains("app-id")
                    || sub.contains("cert")
                    || sub.contains("app-unbind")));
        if retryable {
            ChannelError::retryable(Some(code), detail)
        } else if config {
            ChannelError::config(detail)
        } else {
            ChannelError::business(code, message)
        }
    }
}

/// The top-level members of a JSON object, each value as its exact raw
/// text; a duplicate member is an error (a signed value and a used value
/// must never differ).
struct Members<'a>(Vec<(String, &'a RawValue)>);

impl<'de> serde::Deserialize<'de> for Members<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out: Vec<(String, &'de RawValue)> = Vec::new();
                while let Some(k) = map.next_key::<String>()? {
                    if out.iter().any(|(n, _)| *n == k) {
                        return Err(serde::de::Error::custom(format!("duplicate member `{k}`")));
                    }
                    let v: &'de RawValue = map.next_value()?;
                    out.push((k, v));
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(V)
    }
}

impl<'a> Members<'a> {
    fn get(&self, name: &str) -> Option<&'a RawValue> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| *v)
    }
}

/// The raw text of the `<method>_response` (or `error_response`) member and
/// the top-level `sign` / `alipay_cert_sn`, exactly as received.
#[derive(Debug, PartialEq, Eq)]
pub struct RawResponse<'a> {
    pub member: &'a str,
    pub sign: Option<String>,
    pub alipay_cert_sn: Option<String>,
}

/// Cut a gateway answer into the signed text and its signature.
pub fn split_response<'a>(method: &str, body: &'a str) -> Result<RawResponse<'a>, String> {
    let members: Members<'a> =
        serde_json::from_str(body).map_err(|e| format!("not an Alipay JSON answer: {e}"))?;
    let name = response_member(method);
    let member = members
        .get(&name)
        .or_else(|| members.get("error_response"))
        .ok_or_else(|| format!("answer has neither {name} nor error_response"))?;
    let string = |field: &str| -> Result<Option<String>, String> {
        members
            .get(field)
            .map(|raw| {
                serde_json::from_str::<String>(raw.get())
                    .map_err(|_| format!("`{field}` is not a string"))
            })
            .transpose()
    };
    Ok(RawResponse {
        member: member.get(),
        sign: string("sign")?,
        alipay_cert_sn: string("alipay_cert_sn")?,
    })
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

    fn rsa_sign(&self, message: &str) -> Result<String, ChannelError> {
        self.private_key
            .sign_sha256_base64(message.as_bytes())
            .map_err(|e| {
                ChannelError::config(format!("cannot sign with credentials.privateKeyPem: {e}"))
            })
    }

    /// The common parameters plus `biz_content`, signed. `return_url`
    /// (wap/page/app only) is added when there is one; `auth` (a store's
    /// authorization) adds `app_auth_token`.
    fn signed_params(
        &self,
        method: &str,
        biz_content: String,
        timestamp: &str,
        with_notify: bool,
        return_url: Option<&str>,
        auth: Option<&AppAuth>,
    ) -> Result<Fields, ChannelError> {
        let mut p = Fields::new();
        let mut put = |k: &str, v: &str| {
            p.insert(k.to_owned(), v.to_owned());
        };
        put("app_id", &self.app_id);
        put("method", method);
        put("format", "JSON");
        put("charset", "utf-8");
        put("sign_type", "RSA2");
        put("timestamp", timestamp);
        put("version", "1.0");
        put("biz_content", &biz_content);
        if with_notify {
            put("notify_url", &self.notify_url);
        }
        if let Some(url) = return_url {
            put("return_url", url);
        }
        if let Some(c) = &self.cert {
            put("app_cert_sn", &c.app_cert_sn);
            put("alipay_root_cert_sn", &c.alipay_root_cert_sn);
        }
        if let Some(a) = auth {
            put("app_auth_token", a.token.expose());
        }
        let sign = self.rsa_sign(&signing_string(&p, &["sign"]))?;
        p.insert("sign".into(), sign);
        Ok(p)
    }

    fn biz_json(biz: &impl Serialize) -> Result<String, ChannelError> {
        serde_json::to_string(biz)
            .map_err(|e| ChannelError::invalid_request(format!("cannot encode biz_content: {e}")))
    }

    /// Check a gateway answer (see the module comment for the rules).
    fn verify_response(&self, method: &str, body: &[u8]) -> Result<Reply, ChannelError> {
        let bad = |m: String| ChannelError::bad_response(format!("{method}: {m}"));
        let text = std::str::from_utf8(body).map_err(|_| bad("answer is not UTF-8".into()))?;
        let raw = split_response(method, text).map_err(bad)?;
        if let (Some(cert), Some(sn)) = (&self.cert, &raw.alipay_cert_sn)
            && sn != &cert.alipay_cert_sn
        {
            return Err(bad(format!(
                "answer is signed under Alipay certificate {sn}, the config has {} \
                 (update credentials.alipayCertPem)",
                cert.alipay_cert_sn
            )));
        }
        let signed = match &raw.sign {
            Some(sign) => {
                self.alipay_key
                    .verify_sha256_base64(raw.member.as_bytes(), sign)
                    .map_err(|_| bad("answer signature does not verify".into()))?;
                true
            }
            None => false,
        };
        let common: Common = serde_json::from_str(raw.member)
            .map_err(|e| bad(format!("answer without a code: {e}")))?;
        if common.code == SUCCESS_CODE {
            if !signed {
                return Err(bad("unsigned success answer".into()));
            }
            return Ok(Reply::Success(raw.member.to_owned()));
        }
        Ok(Reply::Failed(Failure {
            msg: common.msg.unwrap_or_default(),
            code: common.code,
            sub_code: common.sub_code.filter(|s| !s.is_empty()),
            sub_msg: common.sub_msg,
            signed,
        }))
    }

    /// POST one signed call (for `store`'s authorizer when it has an
    /// identity) and return the verified answer.
    async fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        biz: &impl Serialize,
        with_notify: bool,
        store: Option<&StoreMerchant>,
    ) -> Result<Result<T, Failure>, ChannelError> {
        let auth = app_auth(store)?;
        let params = self.signed_params(
            method,
            Self::biz_json(biz)?,
            &to_cn_datetime(Utc::now()),
            with_notify,
            None,
            auth.as_ref(),
        )?;
        let form = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params.iter())
            .finish();
        let req = self
            .http
            .post(self.gateway.as_str())
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded;charset=utf-8",
            )
            .body(form);
        let resp = http::send(req, method).await?;
        if resp.status >= 500 || resp.status == 429 {
            return Err(ChannelError::retryable(
                Some(format!("HTTP_{}", resp.status)),
                format!("{method}: Alipay answered HTTP {}", resp.status),
            ));
        }
        if !(200..300).contains(&resp.status) {
            return Err(ChannelError::bad_response(format!(
                "{method}: unexpected HTTP {}",
                resp.status
            )));
        }
        match self.verify_response(method, &resp.body)? {
            Reply::Success(text) => serde_json::from_str(&text).map(Ok).map_err(|e| {
                ChannelError::bad_response(format!("{method}: unexpected answer: {e}"))
            }),
            Reply::Failed(f) => Ok(Err(f)),
        }
    }

    fn trade_biz(&self, req: &PayRequest, product_code: Option<&'static str>) -> TradeBiz {
        TradeBiz {
            out_trade_no: req.order_id.as_str().to_owned(),
            total_amount: req.amount.to_yuan(),
            subject: truncate_chars(&req.description, 256),
            product_code,
            buyer_id: None,
            buyer_open_id: None,
            time_expire: req.expire_at.map(to_cn_datetime),
            quit_url: None,
            passback_params: None,
        }
    }

    /// wap / page / app: signed parameters for the buyer's side, no call.
    fn client_side_params(
        &self,
        method: &str,
        req: &PayRequest,
        product_code: &'static str,
    ) -> Result<Fields, ChannelError> {
        let mut biz = self.trade_biz(req, Some(product_code));
        // The order's return URL, else the config's.
        let return_url = req
            .return_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .or(self.return_url.as_deref());
        if method == WAP_METHOD {
            // The buyer leaving the wap cashier goes back to the shop:
            // the return URL, else cashdesk's public site.
            biz.quit_url = Some(return_url.unwrap_or(&self.public_url).to_owned());
        }
        biz.passback_params = req
            .attach
            .as_deref()
            .filter(|a| !a.is_empty())
            .map(|a| url_encode(truncate_bytes(a, 512)));
        let auth = app_auth(req.store.as_ref())?;
        self.signed_params(
            method,
            Self::biz_json(&biz)?,
            &to_cn_datetime(Utc::now()),
            true,
            return_url,
            auth.as_ref(),
        )
    }

    fn redirect_pay_data(&self, params: &Fields) -> serde_json::Value {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params.iter())
            .finish();
        json!({
            "redirectUrl": format!("{}?{query}", self.gateway.as_str()),
            "form": auto_submit_form(self.gateway.as_str(), params),
        })
    }

    fn check_echo(
        &self,
        what: &str,
        echoed: Option<&str>,
        expected: &str,
    ) -> Result<(), ChannelError> {
        match echoed {
            Some(v) if !v.is_empty() && v != expected => Err(ChannelError::bad_response(format!(
                "{what}: answer is for out_trade_no {v}, not {expected}"
            ))),
            _ => Ok(()),
        }
    }
}

/// An auto-submitting HTML form POSTing `params` to `action` (what Alipay's
/// SDKs return for `pageExecute`).
pub fn auto_submit_form(action: &str, params: &BTreeMap<String, String>) -> String {
    let mut s = format!(
        "<form name=\"punchout_form\" method=\"post\" action=\"{}\">\n",
        html_escape(action)
    );
    for (k, v) in params {
        s.push_str(&format!(
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">\n",
            html_escape(k),
            html_escape(v)
        ));
    }
    s.push_str("<input type=\"submit\" value=\"立即支付\" style=\"display:none\">\n</form>\n");
    s.push_str("<script>document.forms[0].submit();</script>");
    s
}

/// The app authorization a request is made under, if the order's store
/// has one.
fn app_auth(store: Option<&StoreMerchant>) -> Result<Option<AppAuth>, ChannelError> {
    store
        .map(|s| {
            AppAuthIdentity::parse(&serde_json::Value::Object(s.fields.clone()))
                .and_then(|i| i.check())
                .map_err(|e| ChannelError::config(format!("store {}: {e}", s.store_id)))
        })
        .transpose()
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn url_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// At most `max` characters (Alipay limits `subject` in characters).
fn truncate_chars(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

fn answer_fen(what: &str, field: &str, v: Option<&Yuan>) -> Result<Fen, ChannelError> {
    let raw =
        v.ok_or_else(|| ChannelError::bad_response(format!("{what}: answer has no {field}")))?;
    Fen::from_yuan("amount", &raw.0)
        .map_err(|_| ChannelError::bad_response(format!("{what}: {field} `{}` is not yuan", raw.0)))
}

#[async_trait]
impl Channel for AliPay {
    fn channel_type(&self) -> ChannelType {
        ChannelType::AliPay
    }

    fn api_version(&self) -> &'static str {
        "v2"
    }

    fn mch_id(&self) -> &str {
        &self.mch_id
    }

    fn scenes(&self) -> &'static [SceneCode] {
        SCENES
    }

    async fn create_payment(&self, req: &PayRequest) -> Result<PayResponse, ChannelError> {
        let order = req.order_id.as_str();
        if req.payer_app_id.is_some() {
            return Err(ChannelError::invalid_request(
                "openidAppId names a WeChat AppID; an Alipay payer has none",
            ));
        }
        match req.scene {
            SceneCode::Mini => {
                let method = "alipay.trade.create";
                let payer = req
                    .payer_id
                    .as_deref()
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| {
                        ChannelError::invalid_request(
                            "buyerId (Alipay user id or OpenID) is required for the mini scene",
                        )
                    })?;
                let mut biz = self.trade_biz(req, Some("JSAPI_PAY"));
                if is_alipay_user_id(payer) {
                    biz.buyer_id = Some(payer.to_owned());
                } else {
                    biz.buyer_open_id = Some(payer.to_owned());
                }
                let r: CreateResponse = self
                    .call(method, &biz, true, req.store.as_ref())
                    .await?
                    .map_err(|f| f.into_error(method))?;
                self.check_echo(method, r.out_trade_no.as_deref(), order)?;
                let trade_no = r.trade_no.filter(|s| !s.is_empty()).ok_or_else(|| {
                    ChannelError::bad_response(format!("{method}: answer has no trade_no"))
                })?;
                Ok(PayResponse {
                    pay_data: json!({ "tradeNo": trade_no }),
                    prepay_id: Some(trade_no),
                })
            }
            SceneCode::Qr => {
                let method = "alipay.trade.precreate";
                let biz = self.trade_biz(req, None);
                let r: CreateResponse = self
                    .call(method, &biz, true, req.store.as_ref())
                    .await?
                    .map_err(|f| f.into_error(method))?;
                self.check_echo(method, r.out_trade_no.as_deref(), order)?;
                let qr = r.qr_code.filter(|s| !s.is_empty()).ok_or_else(|| {
                    ChannelError::bad_response(format!("{method}: answer has no qr_code"))
                })?;
                Ok(PayResponse {
                    pay_data: json!({ "qrCode": qr }),
                    prepay_id: None,
                })
            }
            SceneCode::Wap | SceneCode::Page => {
                let (method, product) = if req.scene == SceneCode::Wap {
                    (WAP_METHOD, "QUICK_WAP_WAY")
                } else {
                    ("alipay.trade.page.pay", "FAST_INSTANT_TRADE_PAY")
                };
                let params = self.client_side_params(method, req, product)?;
                Ok(PayResponse {
                    pay_data: self.redirect_pay_data(&params),
                    prepay_id: None,
                })
            }
            SceneCode::App => {
                let params =
                    self.client_side_params("alipay.trade.app.pay", req, "QUICK_MSECURITY_PAY")?;
                let order_string = url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(params.iter())
                    .finish();
                Ok(PayResponse {
                    pay_data: json!({ "orderString": order_string }),
                    prepay_id: None,
                })
            }
            other => Err(ChannelError::invalid_request(format!(
                "scene {other} is not available on Alipay (use mini, wap, page, qr or app)"
            ))),
        }
    }

    async fn query(&self, req: &QueryRequest) -> Result<ChannelOrderStatus, ChannelError> {
        let method = "alipay.trade.query";
        let order = req.order_id.as_str();
        let biz = TradeRef {
            out_trade_no: order.to_owned(),
        };
        let r: QueryResponse = match self.call(method, &biz, false, req.store.as_ref()).await? {
            Ok(r) => r,
            Err(f) if f.is("ACQ.TRADE_NOT_EXIST") => {
                if !f.signed {
                    return Err(ChannelError::bad_response(format!(
                        "{method}: unsigned ACQ.TRADE_NOT_EXIST answer"
                    )));
                }
                return Ok(ChannelOrderStatus::NotFound);
            }
            Err(f) => return Err(f.into_error(method)),
        };
        self.check_echo(method, r.out_trade_no.as_deref(), order)?;
        let paid = || -> Result<PaidInfo, ChannelError> {
            let amount = answer_fen(method, "total_amount", r.total_amount.as_ref())?;
            if amount != req.amount {
                return Err(ChannelError::bad_response(format!(
                    "{method}: paid amount {amount} fen differs from the order amount {} fen",
                    req.amount
                )));
            }
            Ok(PaidInfo {
                transaction_id: r
                    .trade_no
                    .clone()
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| {
                        ChannelError::bad_response(format!("{method}: paid trade without trade_no"))
                    })?,
                pay_time: r
                    .send_pay_date
                    .as_deref()
                    .and_then(parse_cn_datetime)
                    .ok_or_else(|| {
                        ChannelError::bad_response(format!(
                            "{method}: paid trade without a valid send_pay_date"
                        ))
                    })?,
                amount,
            })
        };
        let state = r.trade_status.clone().unwrap_or_default();
        Ok(match state.as_str() {
            "TRADE_SUCCESS" | "TRADE_FINISHED" => ChannelOrderStatus::Paid(paid()?),
            "WAIT_BUYER_PAY" => ChannelOrderStatus::NotPaid,
            "TRADE_CLOSED" => {
                if r.send_pay_date.as_deref().is_some_and(|s| !s.is_empty()) {
                    ChannelOrderStatus::Refunded(paid()?)
                } else {
                    ChannelOrderStatus::Closed
                }
            }
            "" => {
                return Err(ChannelError::bad_response(format!(
                    "{method}: answer has no trade_status"
                )));
            }
            other => ChannelOrderStatus::Unknown {
                state: other.to_owned(),
            },
        })
    }

    async fn close(&self, req: &CloseRequest) -> Result<(), ChannelError> {
        let method = "alipay.trade.close";
        let biz = TradeRef {
            out_trade_no: req.order_id.as_str().to_owned(),
        };
        match self
            .call::<CreateResponse>(method, &biz, false, req.store.as_ref())
            .await?
        {
            Ok(r) => self.check_echo(method, r.out_trade_no.as_deref(), req.order_id.as_str()),
            // A trade Alipay never created (the buyer never opened the wap or
            // page URL) has nothing to close; its time_expire bounds the URL.
            Err(f) if f.is("ACQ.TRADE_NOT_EXIST") && f.signed => Ok(()),
            Err(f) => Err(f.into_error(method)),
        }
    }

    async fn refund(&self, req: &RefundRequest) -> Result<RefundStatus, ChannelError> {
        let method = "alipay.trade.refund";
        let biz = RefundBiz {
            out_trade_no: req.order_id.as_str().to_owned(),
            refund_amount: req.refund_amount.to_yuan(),
            out_request_no: req.refund_id.as_str().to_owned(),
            refund_reason: req
                .reason
                .as_deref()
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(|r| truncate_chars(r, 256)),
        };
        let r: RefundResponse = self
            .call(method, &biz, false, req.store.as_ref())
            .await?
            .map_err(|f| f.into_error(method))?;
        self.check_echo(method, r.out_trade_no.as_deref(), req.order_id.as_str())?;
        let success = r.fund_change.as_deref() == Some("Y");
        Ok(RefundStatus {
            outcome: if success {
                RefundOutcome::Success
            } else {
                RefundOutcome::Processing
            },
            channel_refund_id: r.trade_no.filter(|s| !s.is_empty()),
            refund_amount: Some(req.refund_amount),
            success_time: if success {
                r.gmt_refund_pay.as_deref().and_then(parse_cn_datetime)
            } else {
                None
            },
        })
    }

    async fn query_refund(&self, req: &RefundQueryRequest) -> Result<RefundStatus, ChannelError> {
        let method = "alipay.trade.fastpay.refund.query";
        let biz = RefundQueryBiz {
            out_trade_no: req.order_id.as_str().to_owned(),
            out_request_no: req.refund_id.as_str().to_owned(),
            query_options: vec!["gmt_refund_pay"],
        };
        let r: RefundQueryResponse = self
            .call(method, &biz, false, req.store.as_ref())
            .await?
            .map_err(|f| f.into_error(method))?;
        self.check_echo(method, r.out_trade_no.as_deref(), req.order_id.as_str())?;
        if let Some(no) = r.out_request_no.as_deref().filter(|s| !s.is_empty())
            && no != req.refund_id.as_str()
        {
            return Err(ChannelError::bad_response(format!(
                "{method}: answer is for out_request_no {no}, not {}",
                req.refund_id
            )));
        }
        let refund_amount = match &r.refund_amount {
            Some(_) => Some(answer_fen(
                method,
                "refund_amount",
                r.refund_amount.as_ref(),
            )?),
            None => None,
        };
        let status = r.refund_status.as_deref().filter(|s| !s.is_empty());
        if status.is_none() && refund_amount.is_none() {
            return Err(ChannelError::business(
                crate::REFUND_NOT_FOUND,
                format!(
                    "{method}: Alipay has no refund {} (not received, or refused)",
                    req.refund_id
                ),
            ));
        }
        let success = status == Some("REFUND_SUCCESS");
        Ok(RefundStatus {
            outcome: if success {
                RefundOutcome::Success
            } else {
                RefundOutcome::Processing
            },
            channel_refund_id: r.trade_no.filter(|s| !s.is_empty()),
            refund_amount,
            success_time: r.gmt_refund_pay.as_deref().and_then(parse_cn_datetime),
        })
    }

    fn parse_notification(
        &self,
        n: &IncomingNotification,
    ) -> Result<VerifiedNotification, NotifyError> {
        let fields = notification_fields(n)?;
        // Authenticity first: nothing else is looked at before it verifies.
        let sign = fields
            .get("sign")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| NotifyError::unverifiable("no sign"))?;
        if let Some(t) = fields.get("sign_type")
            && t != "RSA2"
        {
            return Err(NotifyError::unverifiable(format!(
                "sign_type `{t}` is not RSA2"
            )));
        }
        let message = signing_string(&fields, &["sign", "sign_type"]);
        self.alipay_key
            .verify_sha256_base64(message.as_bytes(), sign)
            .map_err(|_| NotifyError::unverifiable("signature does not verify"))?;
        let get = |name: &str| {
            fields
                .get(name)
                .map(String::as_str)
                .filter(|v| !v.is_empty())
        };
        let need =
            |name: &str| get(name).ok_or_else(|| NotifyError::malformed(format!("no {name}")));
        if let Some(charset) = get("charset")
            && !charset.eq_ignore_ascii_case("utf-8")
        {
            return Err(NotifyError::malformed(format!(
                "charset `{charset}` (cashdesk asks for utf-8)"
            )));
        }
        let app_id = get("app_id").unwrap_or("");
        if app_id != self.app_id {
            return Err(NotifyError::mismatch(format!(
                "app_id `{app_id}` is not this config's"
            )));
        }
        // The merchant (seller, authorizing app) is checked against the
        // order in check_merchant.
        let merchant = NotifiedMerchant::from_fields(&["seller_id", "auth_app_id"], get);
        let attach = match get("passback_params") {
            // Sent URL-encoded (see client_side_params), echoed as sent.
            Some(p) => Some(form_decode(p)?),
            None => None,
        };
        let out_trade_no = need("out_trade_no")?.to_owned();
        let status = need("trade_status")?;
        let refund_related = ["out_biz_no", "refund_fee", "gmt_refund"]
            .iter()
            .any(|f| get(f).is_some());
        match status {
            "TRADE_SUCCESS" | "TRADE_FINISHED" if !refund_related => {
                let raw = need("total_amount")?;
                let amount = Fen::from_yuan("total_amount", raw)
                    .ok()
                    .filter(|f| f.get() > 0)
                    .ok_or_else(|| {
                        NotifyError::malformed(format!("total_amount `{raw}` is not a yuan amount"))
                    })?;
                let time = get("gmt_payment")
                    .or_else(|| get("notify_time"))
                    .ok_or_else(|| NotifyError::malformed("no gmt_payment"))?;
                Ok(VerifiedNotification::Payment(PaymentNotification {
                    out_trade_no,
                    merchant,
                    attach,
                    result: PaymentResult::Paid(PaidInfo {
                        transaction_id: need("trade_no")?.to_owned(),
                        pay_time: parse_cn_datetime(time).ok_or_else(|| {
                            NotifyError::malformed(format!("gmt_payment `{time}` is not a time"))
                        })?,
                        amount,
                    }),
                }))
            }
            "TRADE_CLOSED" if !refund_related => {
                Ok(VerifiedNotification::Payment(PaymentNotification {
                    out_trade_no,
                    merchant,
                    attach,
                    result: PaymentResult::Closed,
                }))
            }
            other => Ok(VerifiedNotification::Other {
                event: if refund_related {
                    format!("REFUND:{other}")
                } else {
                    other.to_owned()
                },
            }),
        }
    }

    /// The config's own orders: `seller_id` must be the config's `sellerId`
    /// when it sets one, and `auth_app_id`, when named, the config's app.
    /// A store's order: `auth_app_id` must be its authorizer's app, and
    /// `seller_id` its `sellerId` when the identity has one.
    fn check_merchant(
        &self,
        notified: &NotifiedMerchant,
        store: Option<&StoreMerchant>,
    ) -> Result<(), NotifyError> {
        let seller = notified.get("seller_id").unwrap_or("");
        let auth_app = notified.get("auth_app_id");
        let (want_app, want_seller) =
            match app_auth(store).map_err(|e| NotifyError::mismatch(e.message().to_owned()))? {
                None => (self.app_id.clone(), self.seller_id.clone()),
                Some(a) => (a.auth_app_id, a.seller_id),
            };
        let whose = store.map_or_else(
            || "this config's".to_owned(),
            |s| format!("store {}'s authorizer", s.store_id),
        );
        match (store, auth_app) {
            (_, Some(got)) if got != want_app => {
                return Err(NotifyError::mismatch(format!(
                    "auth_app_id `{got}` is not {whose} ({want_app})"
                )));
            }
            (Some(_), None) => {
                return Err(NotifyError::mismatch(format!(
                    "no auth_app_id: the order is paid through {whose} ({want_app})"
                )));
            }
            _ => {}
        }
        if let Some(want) = want_seller
            && seller != want
        {
            return Err(NotifyError::mismatch(format!(
                "seller_id `{seller}` is not {whose} ({want})"
            )));
        }
        Ok(())
    }

    fn notification_reply(&self, ok: bool) -> NotificationReply {
        NotificationReply {
            status: 200,
            content_type: Some("text/plain; charset=utf-8"),
            body: if ok { "success" } else { "fail" }.to_owned(),
        }
    }
}

/// The notification's parameters: the form body of a POST, else the query
/// string. Values are URL-decoded; duplicates and non-UTF-8 are refused.
fn notification_fields(n: &IncomingNotification) -> Result<Fields, NotifyError> {
    let raw: &[u8] = if n.method.eq_ignore_ascii_case("POST") && !n.body.is_empty() {
        &n.body
    } else {
        n.query.as_deref().unwrap_or("").as_bytes()
    };
    let text = std::str::from_utf8(raw)
        .map_err(|_| NotifyError::malformed("notification is not UTF-8"))?;
    if text.trim().is_empty() {
        return Err(NotifyError::malformed("empty notification"));
    }
    let mut fields = Fields::new();
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = form_decode(k)?;
        let v = form_decode(v)?;
        if k.is_empty() {
            return Err(NotifyError::malformed("a parameter without a name"));
        }
        if fields.insert(k.clone(), v).is_some() {
            return Err(NotifyError::malformed(format!("duplicate parameter `{k}`")));
        }
    }
    Ok(fields)
}

/// `application/x-www-form-urlencoded` decoding (`+` is a space), strict:
/// bad `%` escapes and invalid UTF-8 are refused rather than replaced.
fn form_decode(s: &str) -> Result<String, NotifyError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| NotifyError::malformed("bad %-escape"))?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| NotifyError::malformed("a value is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pairs: &[(&str, &str)]) -> Fields {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn signing_string_sorts_skips_empty_and_excluded() {
        let p = m(&[
            ("method", "alipay.trade.query"),
            ("app_id", "2014072300007148"),
            ("sign", "xyz"),
            ("sign_type", "RSA2"),
            ("notify_url", ""),
            ("biz_content", r#"{"out_trade_no":"P1"}"#),
        ]);
        assert_eq!(
            signing_string(&p, &["sign"]),
            r#"app_id=2014072300007148&biz_content={"out_trade_no":"P1"}&method=alipay.trade.query&sign_type=RSA2"#
        );
        assert_eq!(
            signing_string(&p, &["sign", "sign_type"]),
            r#"app_id=2014072300007148&biz_content={"out_trade_no":"P1"}&method=alipay.trade.query"#
        );
    }

    #[test]
    fn response_text_is_cut_exactly() {
        // Alipay escapes `/` as `\/` and may use any spacing: the signed text
        // is the member's bytes as received.
        let body = r#"{"alipay_trade_precreate_response":{"code":"10000","msg":"Success","qr_code":"https:\/\/qr.alipay.com\/bax03431"} ,"sign":"c2lnbg==","alipay_cert_sn":"abc"}"#;
        let raw = split_response("alipay.trade.precreate", body).unwrap();
        assert_eq!(
            raw.member,
            r#"{"code":"10000","msg":"Success","qr_code":"https:\/\/qr.alipay.com\/bax03431"}"#
        );
        assert_eq!(raw.sign.as_deref(), Some("c2lnbg=="));
        assert_eq!(raw.alipay_cert_sn.as_deref(), Some("abc"));
        let err = r#"{"error_response":{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.invalid-app-id"}}"#;
        let raw = split_response("alipay.trade.query", err).unwrap();
        assert!(raw.member.contains("isv.invalid-app-id"));
        assert_eq!(raw.sign, None);
        // A duplicate member could make the signed and the used text differ.
        let dup = r#"{"alipay_trade_query_response":{"code":"10000"},"alipay_trade_query_response":{"code":"10000"},"sign":"x"}"#;
        assert!(split_response("alipay.trade.query", dup).is_err());
        assert!(split_response("alipay.trade.query", r#"{"other_response":{}}"#).is_err());
        assert!(split_response("alipay.trade.query", "[1]").is_err());
        assert!(split_response("alipay.trade.query", r#"{"error_response":{},"sign":1}"#).is_err());
    }

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

    #[test]
    fn error_mapping() {
        let f = |code: &str, sub: Option<&str>| Failure {
            code: code.into(),
            msg: "msg".into(),
            sub_code: sub.map(str::to_owned),
            sub_msg: Some("子错误".into()),
            signed: true,
        };
        use crate::ChannelErrorKind as K;
        assert_eq!(f("20000", None).into_error("x").kind(), K::Retryable);
        assert_eq!(
            f("40004", Some("ACQ.SYSTEM_ERROR")).into_error("x").kind(),
            K::Retryable
        );
        assert_eq!(
            f("20000", Some("isp.unknow-error")).into_error("x").kind(),
            K::Retryable
        );
        assert_eq!(
            f("40002", Some("isv.invalid-signature"))
                .into_error("x")
                .kind(),
            K::Config
        );
        assert_eq!(f("40006", None).into_error("x").kind(), K::Config);
        let e = f("40004", Some("ACQ.TRADE_HAS_SUCCESS")).into_error("x");
        assert_eq!(e.kind(), K::Business);
        assert_eq!(e.code(), Some("ACQ.TRADE_HAS_SUCCESS"));
        assert_eq!(e.message(), "子错误");
        assert_eq!(
            f("40002", Some("isv.invalid-out-trade-no"))
                .into_error("x")
                .kind(),
            K::Business
        );
    }

    #[test]
    fn forms_and_decoding() {
        let p = m(&[("a", "x\"<y>&'"), ("b", "1")]);
        let form = auto_submit_form("https://gw.example/gateway.do", &p);
        assert!(form.contains(r#"name="a" value="x&quot;&lt;y&gt;&amp;&#39;""#));
        assert!(form.contains("document.forms[0].submit()"));
        assert_eq!(form_decode("a+b%2B%2F%3D").unwrap(), "a b+/=");
        assert_eq!(form_decode("%E4%B8%AD").unwrap(), "中");
        assert!(form_decode("%E4%B8").is_err());
        assert!(form_decode("%zz").is_err());
        assert!(form_decode("%4").is_err());
    }

    #[test]
    fn yuan_in_answers_is_exact() {
        let y = |v: serde_json::Value| serde_json::from_value::<Yuan>(v).unwrap();
        assert_eq!(
            answer_fen("m", "total_amount", Some(&y(json!("0.1")))).unwrap(),
            Fen::from_stored(10)
        );
        assert_eq!(
            answer_fen("m", "total_amount", Some(&y(json!("88.88")))).unwrap(),
            Fen::from_stored(8888)
        );
        assert_eq!(
            answer_fen("m", "total_amount", Some(&y(json!(0.29)))).unwrap(),
            Fen::from_stored(29)
        );
        assert!(answer_fen("m", "total_amount", Some(&y(json!("0.001")))).is_err());
        assert!(answer_fen("m", "total_amount", None).is_err());
        assert!(serde_json::from_value::<Yuan>(json!(true)).is_err());
    }
}
