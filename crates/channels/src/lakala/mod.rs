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

pub mod wire;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use cashdesk_core::time::{parse_compact, to_compact};
use cashdesk_core::{ChannelType, Fen, SceneCode};
use cashdesk_crypto::random::nonce_str;
use cashdesk_crypto::rsa::{RsaPrivateKey, RsaPublicKey};
use chrono::Utc;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use url::Url;

use crate::channel::*;
use crate::error::{ChannelError, NotifyError};
use crate::http;
use crate::registry::{ChannelEnv, ChannelFactory, ChannelSpec, IdentitySummary};
use crate::wechat::{join_url, parse_base_url, truncate_bytes};
use wire::*;

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

/// The scenes [`Lakala`] accepts.
pub const SCENES: &[SceneCode] = &[
    SceneCode::Mini,
    SceneCode::Jsapi,
    SceneCode::Native,
    SceneCode::H5,
];

/// Every choice made where PROTOCOLS.md says UNCONFIRMED or is silent, in
/// one place so a fact learned in the field is a one-line change (the
/// sandbox must mirror these).
pub mod choices {
    use crate::channel::{ChannelOrderStatus, RefundOutcome};
    use crate::error::ChannelError;

    /// UNCONFIRMED: "trade does not exist" (query, close, refund query);
    /// the sandbox's `lakala::codes::ORDER_NOT_EXIST` mirrors it.
    pub const CODE_NOT_FOUND: &str = "BBS11001";
    /// UNCONFIRMED: system error / busy / still processing — the outcome is
    /// unknown, ask again. Open-source production integrations treat
    /// BBS10000, BBS11105 and BBS11112 as "processing, query again", so they
    /// are never read as "not found".
    pub const RETRYABLE_CODES: &[&str] = &["BBS10000", "BBS11105", "BBS11112", "BBS99999"];
    /// UNCONFIRMED: our signature, appId or certificate refused.
    pub const CONFIG_CODES: &[&str] = &["BBS10001", "BBS10002"];

    /// UNCONFIRMED: Lakala's refund-query endpoint. A refund is a trade with
    /// its own `out_trade_no` (cashdesk's refund id), so it is asked for
    /// with tradequery; an unknown refund stays `Processing` (never
    /// `Closed`: with an unconfirmed endpoint, "not found" must not be
    /// read as "no money moved").
    pub const REFUND_QUERY_PATH: &str = super::QUERY_PATH;

    /// Silent in PROTOCOLS.md: where the H5 (81) URL is in
    /// `acc_resp_fields` (first present wins).
    pub const H5_URL_FIELDS: &[&str] = &["redirect_url", "h5_url", "code"];

    /// Silent: the wallet of the native (41) scene. Lakala's NATIVE serves
    /// Alipay and UnionPay QR, not WeChat.
    pub const NATIVE_ACCOUNT_TYPE: &str = "ALIPAY";

    /// UNCONFIRMED: the preorder's `subject` (Lakala documents it as
    /// String(42), "at most 42 bytes" at the wallet): the order title is cut
    /// to 42 bytes on a character boundary (14 Chinese characters). The
    /// sandbox refuses a longer one.
    pub const SUBJECT_MAX_BYTES: usize = 42;

    /// Silent: `request_ip` for server-side calls (close, refund) and when
    /// the buyer's IP is unknown.
    pub const SERVER_REQUEST_IP: &str = "127.0.0.1";

    /// Silent: the order's expiry goes in `acc_busi_fields.timeout_express`,
    /// whole minutes, rounded up, at least 1.
    pub fn timeout_express(minutes_left: i64) -> String {
        minutes_left.max(1).to_string()
    }

    /// jsapi (51) serves WeChat and Alipay; the payer id decides: an Alipay
    /// user id (`2088` + 12 digits) is ALIPAY, anything else a WeChat openid.
    pub fn jsapi_wallet(payer_id: &str) -> &'static str {
        if crate::alipay::is_alipay_user_id(payer_id) {
            "ALIPAY"
        } else {
            "WECHAT"
        }
    }

    /// The payment status field of a notification (`trade_status`, as
    /// Lakala's samples show; `trade_state` as in tradequery is accepted too).
    pub fn notify_status(t: &super::Trade) -> Option<&str> {
        t.trade_status
            .as_deref()
            .or(t.trade_state.as_deref())
            .filter(|s| !s.is_empty())
    }

    /// tradequery's `trade_state` → the order status (amount checked by the caller).
    pub fn order_state(state: &str) -> Option<ChannelOrderStatus> {
        Some(match state {
            "INIT" | "CREATE" => ChannelOrderStatus::NotPaid,
            "DEAL" => ChannelOrderStatus::Paying,
            "CLOSE" => ChannelOrderStatus::Closed,
            "FAIL" => ChannelOrderStatus::Failed {
                code: "FAIL".into(),
                message: String::new(),
            },
            // SUCCESS, PART_REFUND, REFUND need the paid details.
            _ => return None,
        })
    }

    /// A refund trade's `trade_state` → its outcome. Missing or unknown
    /// states are `Processing` (query again).
    pub fn refund_outcome(state: Option<&str>) -> RefundOutcome {
        match state {
            Some("SUCCESS") => RefundOutcome::Success,
            Some("FAIL" | "CLOSE") => RefundOutcome::Closed,
            _ => RefundOutcome::Processing,
        }
    }

    /// The one place Lakala's error codes become errors.
    pub fn error(what: &str, code: &str, msg: &str) -> ChannelError {
        let detail = format!("{what}: {code}: {msg}");
        if RETRYABLE_CODES.contains(&code) {
            ChannelError::retryable(Some(code.to_owned()), detail)
        } else if CONFIG_CODES.contains(&code) {
            ChannelError::config(detail)
        } else {
            ChannelError::business(code, msg)
        }
    }
}

/// The factory registered in [`crate::registry::FACTORIES`].
pub struct LakalaFactory;

impl ChannelFactory for LakalaFactory {
    fn channel_type(&self) -> ChannelType {
        ChannelType::Lakala
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

/// A verified answer whose code is not success.
#[derive(Debug)]
struct Failure {
    code: String,
    msg: String,
}

impl Failure {
    fn into_error(self, what: &str) -> ChannelError {
        choices::error(what, &self.code, &self.msg)
    }
}

/// Serial numbers compared without case or leading zeros.
fn same_serial(a: &str, b: &str) -> bool {
    let norm = |s: &str| s.trim().trim_start_matches('0').to_ascii_uppercase();
    !a.trim().is_empty() && norm(a) == norm(b)
}

/// `k="v"` pairs of an `Authorization` header after the scheme.
pub fn parse_authorization(header: &str) -> Option<BTreeMap<String, String>> {
    let rest = header.trim().strip_prefix(AUTH_SCHEME)?;
    if !rest.starts_with(' ') {
        return None;
    }
    let mut out = BTreeMap::new();
    for part in rest.split(',') {
        let (k, v) = part.split_once('=')?;
        let v = v.trim();
        let v = v.strip_prefix('"')?.strip_suffix('"')?;
        if out.insert(k.trim().to_owned(), v.to_owned()).is_some() {
            return None;
        }
    }
    Some(out)
}

fn message(parts: &[&[u8]]) -> Vec<u8> {
    let mut m = Vec::new();
    for p in parts {
        m.extend_from_slice(p);
        m.push(b'\n');
    }
    m
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

    /// The `Authorization` header for one request body.
    pub(crate) fn authorization(
        &self,
        body: &str,
        timestamp: i64,
        nonce: &str,
    ) -> Result<String, ChannelError> {
        let ts = timestamp.to_string();
        let msg = message(&[
            self.app_id.as_bytes(),
            self.serial_no.as_bytes(),
            ts.as_bytes(),
            nonce.as_bytes(),
            body.as_bytes(),
        ]);
        let signature = self.private_key.sign_sha256_base64(&msg).map_err(|e| {
            ChannelError::config(format!("cannot sign with credentials.privateKeyPem: {e}"))
        })?;
        Ok(format!(
            "{AUTH_SCHEME} appid=\"{}\",serial_no=\"{}\",timestamp=\"{ts}\",nonce_str=\"{nonce}\",signature=\"{signature}\"",
            self.app_id, self.serial_no
        ))
    }

    /// Verify the `Lklapi-*` headers of an answer over its raw body.
    fn verify_response(
        &self,
        header: impl Fn(&str) -> Option<String>,
        body: &[u8],
    ) -> Result<(), String> {
        let get = |name: &str| header(name).ok_or_else(|| format!("missing header {name}"));
        let appid = get("Lklapi-Appid")?;
        let serial = get("Lklapi-Serial")?;
        let ts = get("Lklapi-Timestamp")?;
        let nonce = get("Lklapi-Nonce")?;
        let sig = get("Lklapi-Signature")?;
        if appid != self.app_id {
            return Err(format!("Lklapi-Appid `{appid}` is not this config's appId"));
        }
        if !same_serial(&serial, &self.lkl_serial) {
            return Err(format!(
                "Lklapi-Serial `{serial}` is not the serial of credentials.lklCertPem ({})",
                self.lkl_serial
            ));
        }
        let msg = message(&[
            appid.as_bytes(),
            serial.as_bytes(),
            ts.as_bytes(),
            nonce.as_bytes(),
            body,
        ]);
        self.lkl_key
            .verify_sha256_base64(&msg, &sig)
            .map_err(|_| "Lklapi-Signature does not verify".to_owned())
    }

    /// POST one signed request; `Ok(Ok(resp_data))` on `BBS00000`.
    async fn call<T: DeserializeOwned + Default>(
        &self,
        path: &str,
        req_data: impl Serialize,
    ) -> Result<Result<T, Failure>, ChannelError> {
        let envelope = Envelope {
            req_time: to_compact(Utc::now()),
            version: "3.0",
            req_data,
        };
        let body = serde_json::to_string(&envelope)
            .map_err(|e| ChannelError::invalid_request(format!("{path}: cannot encode: {e}")))?;
        let auth = self.authorization(&body, Utc::now().timestamp(), &nonce_str(32))?;
        let req = self
            .http
            .post(join_url(&self.base_url, path))
            .header(reqwest::header::AUTHORIZATION, auth)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::ACCEPT, "application/json")
            .body(body);
        let resp = http::send(req, path).await?;
        if resp.status >= 500 || resp.status == 429 {
            return Err(ChannelError::retryable(
                Some(format!("HTTP_{}", resp.status)),
                format!("{path}: Lakala answered HTTP {}", resp.status),
            ));
        }
        if resp.status == 401 || resp.status == 403 {
            return Err(ChannelError::config(format!(
                "{path}: Lakala refused the request (HTTP {}): check appId, serialNo and \
                 privateKeyPem",
                resp.status
            )));
        }
        if resp.status != 200 {
            return Err(ChannelError::bad_response(format!(
                "{path}: unexpected HTTP {}",
                resp.status
            )));
        }
        self.verify_response(|n| resp.header(n).map(str::to_owned), &resp.body)
            .map_err(|m| ChannelError::bad_response(format!("{path}: {m}")))?;
        let env: ResponseEnvelope = serde_json::from_slice(&resp.body)
            .map_err(|e| ChannelError::bad_response(format!("{path}: not a Lakala answer: {e}")))?;
        if env.code != SUCCESS_CODE {
            return Ok(Err(Failure {
                code: env.code,
                msg: env.msg.unwrap_or_default(),
            }));
        }
        match env.resp_data {
            None | Some(serde_json::Value::Null) => Ok(Ok(T::default())),
            Some(v) => serde_json::from_value(v).map(Ok).map_err(|e| {
                ChannelError::bad_response(format!("{path}: unexpected resp_data: {e}"))
            }),
        }
    }

    /// The merchant and terminal numbers for `store` (else the config's).
    fn terminal(&self, store: Option<&StoreMerchant>) -> Result<Terminal, ChannelError> {
        match store {
            None => Ok(Terminal {
                merchant_no: self.merchant_no.clone(),
                term_no: self.term_no.clone(),
                sub_app_id: self.sub_app_id.clone(),
            }),
            Some(s) => {
                let mut t = TerminalIdentity::parse(&serde_json::Value::Object(s.fields.clone()))
                    .and_then(|i| i.check())
                    .map_err(|e| ChannelError::config(format!("store {}: {e}", s.store_id)))?;
                if t.sub_app_id.is_none() {
                    t.sub_app_id = self.sub_app_id.clone();
                }
                Ok(t)
            }
        }
    }

    fn check_answer_merchant(
        &self,
        what: &str,
        merchant_no: Option<&str>,
        terminal: &Terminal,
    ) -> Result<(), ChannelError> {
        match merchant_no {
            Some(m) if !m.is_empty() && m != terminal.merchant_no => Err(
                ChannelError::bad_response(format!("{what}: answer is for merchant_no {m}")),
            ),
            _ => Ok(()),
        }
    }

    fn check_trade_no(
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

    fn location(ip: Option<&str>) -> LocationInfo {
        LocationInfo {
            request_ip: ip
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .unwrap_or(choices::SERVER_REQUEST_IP)
                .to_owned(),
        }
    }
}

fn field<'a>(
    what: &str,
    fields: &'a serde_json::Map<String, serde_json::Value>,
    name: &str,
) -> Result<&'a str, ChannelError> {
    fields
        .get(name)
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ChannelError::bad_response(format!("{what}: acc_resp_fields has no {name}")))
}

/// `wx.requestPayment` params from the preorder's `acc_resp_fields`.
fn request_payment(
    what: &str,
    f: &serde_json::Map<String, serde_json::Value>,
) -> Result<serde_json::Value, ChannelError> {
    // time_stamp may arrive as a number; wx.requestPayment wants a string.
    let ts = match f.get("time_stamp") {
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => field(what, f, "time_stamp")?.to_owned(),
    };
    Ok(json!({
        "appId": field(what, f, "app_id")?,
        "timeStamp": ts,
        "nonceStr": field(what, f, "nonce_str")?,
        "package": field(what, f, "package")?,
        "signType": field(what, f, "sign_type")?,
        "paySign": field(what, f, "pay_sign")?,
    }))
}

#[async_trait]
impl Channel for Lakala {
    fn channel_type(&self) -> ChannelType {
        ChannelType::Lakala
    }

    fn api_version(&self) -> &'static str {
        "v3"
    }

    fn mch_id(&self) -> &str {
        &self.mch_id
    }

    fn scenes(&self) -> &'static [SceneCode] {
        SCENES
    }

    async fn create_payment(&self, req: &PayRequest) -> Result<PayResponse, ChannelError> {
        let what = PREORDER_PATH;
        let terminal = self.terminal(req.store.as_ref())?;
        let payer = req
            .payer_id
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        let timeout = req.expire_at.map(|t| {
            let secs = (t - Utc::now()).num_seconds();
            choices::timeout_express((secs + 59).div_euclid(60))
        });
        let wechat_fields = |payer: Option<&str>| -> Result<AccBusiFields, ChannelError> {
            let openid = payer.ok_or_else(|| {
                ChannelError::invalid_request("openid is required for WeChat mini and jsapi")
            })?;
            let sub_appid = terminal.sub_app_id.clone().ok_or_else(|| {
                ChannelError::config(
                    "credentials.subAppId (the WeChat AppID) is required for WeChat payments",
                )
            })?;
            // Lakala pays WeChat users of this one AppID.
            if let Some(w) = req.payer_app_id.as_deref().map(str::trim)
                && w != sub_appid
            {
                return Err(ChannelError::invalid_request(format!(
                    "openidAppId `{w}` is not the WeChat AppID {sub_appid} this Lakala terminal pays with"
                )));
            }
            Ok(AccBusiFields {
                sub_appid: Some(sub_appid),
                user_id: Some(openid.to_owned()),
                timeout_express: timeout.clone(),
            })
        };
        let (account_type, trans_type, acc) = match req.scene {
            SceneCode::Mini => ("WECHAT", "71", wechat_fields(payer)?),
            SceneCode::Jsapi => {
                let p = payer.ok_or_else(|| {
                    ChannelError::invalid_request(
                        "openid or Alipay buyer id is required for the jsapi scene",
                    )
                })?;
                match choices::jsapi_wallet(p) {
                    "ALIPAY" => (
                        "ALIPAY",
                        "51",
                        AccBusiFields {
                            user_id: Some(p.to_owned()),
                            timeout_express: timeout.clone(),
                            ..Default::default()
                        },
                    ),
                    _ => ("WECHAT", "51", wechat_fields(Some(p))?),
                }
            }
            SceneCode::Native => (
                choices::NATIVE_ACCOUNT_TYPE,
                "41",
                AccBusiFields {
                    timeout_express: timeout.clone(),
                    ..Default::default()
                },
            ),
            SceneCode::H5 => (
                "ALIPAY",
                "81",
                AccBusiFields {
                    timeout_express: timeout.clone(),
                    ..Default::default()
                },
            ),
            other => {
                return Err(ChannelError::invalid_request(format!(
                    "scene {other} is not available on Lakala (use mini, jsapi, native or h5)"
                )));
            }
        };
        let has_acc =
            acc.sub_appid.is_some() || acc.user_id.is_some() || acc.timeout_express.is_some();
        let body = PreorderRequest {
            merchant_no: terminal.merchant_no.clone(),
            term_no: terminal.term_no.clone(),
            out_trade_no: req.order_id.as_str().to_owned(),
            account_type,
            trans_type,
            total_amount: req.amount.get().to_string(),
            location_info: Self::location(req.client_ip.as_deref()),
            subject: truncate_bytes(&req.description, choices::SUBJECT_MAX_BYTES).to_owned(),
            notify_url: self.notify_url.clone(),
            remark: req
                .attach
                .as_deref()
                .filter(|a| !a.is_empty())
                .map(|a| truncate_bytes(a, 128).to_owned()),
            acc_busi_fields: has_acc.then_some(acc),
        };
        let r: PreorderResponse = self
            .call(what, &body)
            .await?
            .map_err(|f| f.into_error(what))?;
        self.check_answer_merchant(what, r.merchant_no.as_deref(), &terminal)?;
        self.check_trade_no(what, r.out_trade_no.as_deref(), req.order_id.as_str())?;
        let fields = r.acc_resp_fields.unwrap_or_default();
        let pay_data = match (account_type, trans_type) {
            ("WECHAT", _) => request_payment(what, &fields)?,
            (_, "51") => json!({ "tradeNo": field(what, &fields, "prepay_id")? }),
            (_, "41") => json!({ "codeUrl": field(what, &fields, "code")? }),
            _ => {
                let url = choices::H5_URL_FIELDS
                    .iter()
                    .find_map(|n| {
                        fields
                            .get(*n)
                            .and_then(|v| v.as_str())
                            .filter(|s| !s.is_empty())
                    })
                    .ok_or_else(|| {
                        ChannelError::bad_response(format!(
                            "{what}: acc_resp_fields has none of {}",
                            choices::H5_URL_FIELDS.join(", ")
                        ))
                    })?;
                json!({ "h5Url": url })
            }
        };
        let prepay_id = fields
            .get("prepay_id")
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .or(r.trade_no.filter(|s| !s.is_empty()));
        Ok(PayResponse {
            pay_data,
            prepay_id,
        })
    }

    async fn query(&self, req: &QueryRequest) -> Result<ChannelOrderStatus, ChannelError> {
        let what = QUERY_PATH;
        let terminal = self.terminal(req.store.as_ref())?;
        let body = TradeQueryRequest {
            merchant_no: terminal.merchant_no.clone(),
            term_no: terminal.term_no.clone(),
            out_trade_no: req.order_id.as_str().to_owned(),
        };
        let t: Trade = match self.call(what, &body).await? {
            Ok(t) => t,
            // Verified answers only reach here, so "not found" is believed.
            Err(f) if f.code == choices::CODE_NOT_FOUND => return Ok(ChannelOrderStatus::NotFound),
            Err(f) => return Err(f.into_error(what)),
        };
        self.check_answer_merchant(what, t.merchant_no.as_deref(), &terminal)?;
        self.check_trade_no(what, t.out_trade_no.as_deref(), req.order_id.as_str())?;
        let state = t.trade_state.clone().unwrap_or_default();
        if state.is_empty() {
            return Err(ChannelError::bad_response(format!(
                "{what}: answer has no trade_state"
            )));
        }
        if let Some(s) = choices::order_state(&state) {
            return Ok(match s {
                ChannelOrderStatus::Failed { code, .. } => ChannelOrderStatus::Failed {
                    code,
                    message: t.trade_state_desc.clone().unwrap_or_default(),
                },
                other => other,
            });
        }
        let paid = || -> Result<PaidInfo, ChannelError> {
            let amount = t
                .total_amount
                .and_then(|v| Fen::parse_positive("total_amount", v.0).ok())
                .ok_or_else(|| {
                    ChannelError::bad_response(format!("{what}: paid trade without total_amount"))
                })?;
            if amount != req.amount {
                return Err(ChannelError::bad_response(format!(
                    "{what}: paid amount {amount} fen differs from the order amount {} fen",
                    req.amount
                )));
            }
            Ok(PaidInfo {
                transaction_id: t
                    .trade_no
                    .clone()
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| {
                        ChannelError::bad_response(format!("{what}: paid trade without trade_no"))
                    })?,
                pay_time: t
                    .trade_time
                    .as_deref()
                    .and_then(parse_compact)
                    .ok_or_else(|| {
                        ChannelError::bad_response(format!(
                            "{what}: paid trade without a valid trade_time"
                        ))
                    })?,
                amount,
            })
        };
        Ok(match state.as_str() {
            "SUCCESS" => ChannelOrderStatus::Paid(paid()?),
            "PART_REFUND" | "REFUND" => ChannelOrderStatus::Refunded(paid()?),
            other => ChannelOrderStatus::Unknown {
                state: other.to_owned(),
            },
        })
    }

    async fn close(&self, req: &CloseRequest) -> Result<(), ChannelError> {
        let what = CLOSE_PATH;
        let terminal = self.terminal(req.store.as_ref())?;
        let body = CloseRequestBody {
            merchant_no: terminal.merchant_no.clone(),
            term_no: terminal.term_no.clone(),
            origin_out_trade_no: req.order_id.as_str().to_owned(),
            location_info: Self::location(None),
        };
        match self.call::<Trade>(what, &body).await? {
            Ok(t) => self.check_answer_merchant(what, t.merchant_no.as_deref(), &terminal),
            // Never created at Lakala: nothing can be paid, nothing to close.
            Err(f) if f.code == choices::CODE_NOT_FOUND => Ok(()),
            Err(f) => Err(f.into_error(what)),
        }
    }

    async fn refund(&self, req: &RefundRequest) -> Result<RefundStatus, ChannelError> {
        let what = REFUND_PATH;
        let terminal = self.terminal(req.store.as_ref())?;
        let body = RefundRequestBody {
            merchant_no: terminal.merchant_no.clone(),
            term_no: terminal.term_no.clone(),
            out_trade_no: req.refund_id.as_str().to_owned(),
            refund_amount: req.refund_amount.get().to_string(),
            refund_reason: req
                .reason
                .as_deref()
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(|r| truncate_bytes(r, 64).to_owned()),
            origin_out_trade_no: req.order_id.as_str().to_owned(),
            location_info: Self::location(None),
        };
        let t: Trade = self
            .call(what, &body)
            .await?
            .map_err(|f| f.into_error(what))?;
        self.check_answer_merchant(what, t.merchant_no.as_deref(), &terminal)?;
        self.check_trade_no(what, t.out_trade_no.as_deref(), req.refund_id.as_str())?;
        if let Some(a) = t.refund_amount
            && a.0 != req.refund_amount.get()
        {
            return Err(ChannelError::bad_response(format!(
                "{what}: refund amount {} fen differs from the requested {} fen",
                a.0, req.refund_amount
            )));
        }
        let outcome = choices::refund_outcome(t.trade_state.as_deref());
        Ok(RefundStatus {
            outcome,
            channel_refund_id: t.trade_no.filter(|s| !s.is_empty()),
            refund_amount: Some(req.refund_amount),
            success_time: if outcome == RefundOutcome::Success {
                t.trade_time.as_deref().and_then(parse_compact)
            } else {
                None
            },
        })
    }

    async fn query_refund(&self, req: &RefundQueryRequest) -> Result<RefundStatus, ChannelError> {
        let what = choices::REFUND_QUERY_PATH;
        let terminal = self.terminal(req.store.as_ref())?;
        let body = TradeQueryRequest {
            merchant_no: terminal.merchant_no.clone(),
            term_no: terminal.term_no.clone(),
            out_trade_no: req.refund_id.as_str().to_owned(),
        };
        let t: Trade = match self.call(what, &body).await? {
            Ok(t) => t,
            Err(f) if f.code == choices::CODE_NOT_FOUND => {
                return Ok(RefundStatus {
                    outcome: RefundOutcome::Processing,
                    channel_refund_id: None,
                    refund_amount: None,
                    success_time: None,
                });
            }
            Err(f) => return Err(f.into_error(what)),
        };
        self.check_answer_merchant(what, t.merchant_no.as_deref(), &terminal)?;
        self.check_trade_no(what, t.out_trade_no.as_deref(), req.refund_id.as_str())?;
        let outcome = choices::refund_outcome(t.trade_state.as_deref());
        Ok(RefundStatus {
            outcome,
            channel_refund_id: t.trade_no.filter(|s| !s.is_empty()),
            refund_amount: t
                .refund_amount
                .or(t.total_amount)
                .and_then(|v| Fen::parse_positive("refund_amount", v.0).ok()),
            success_time: if outcome == RefundOutcome::Success {
                t.trade_time.as_deref().and_then(parse_compact)
            } else {
                None
            },
        })
    }

    fn parse_notification(
        &self,
        n: &IncomingNotification,
    ) -> Result<VerifiedNotification, NotifyError> {
        // Authenticity first; the body is not parsed before it verifies.
        let auth = n
            .header("Authorization")
            .ok_or_else(|| NotifyError::unverifiable("no Authorization header"))?;
        let p = parse_authorization(auth).ok_or_else(|| {
            NotifyError::unverifiable(format!("Authorization is not {AUTH_SCHEME} k=\"v\",…"))
        })?;
        let get = |k: &str| {
            p.get(k)
                .map(String::as_str)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| NotifyError::unverifiable(format!("Authorization has no {k}")))
        };
        let (ts, nonce, sig) = (get("timestamp")?, get("nonce_str")?, get("signature")?);
        let msg = message(&[ts.as_bytes(), nonce.as_bytes(), &n.body]);
        self.notify_key
            .verify_sha256_base64(&msg, sig)
            .map_err(|_| NotifyError::unverifiable("signature does not verify"))?;
        let t: Trade = serde_json::from_slice(&n.body)
            .map_err(|e| NotifyError::malformed(format!("not a Lakala notification: {e}")))?;
        if t.merchant_no.as_deref().is_none_or(str::is_empty) {
            return Err(NotifyError::malformed("no merchant_no"));
        }
        // Which merchant it is for is checked against the order
        // (check_merchant): the notify key signs for every merchant.
        let merchant = NotifiedMerchant::from_fields(&["merchant_no", "term_no"], |n| match n {
            "merchant_no" => t.merchant_no.as_deref(),
            _ => t.term_no.as_deref(),
        });
        let attach = t.remark.clone().filter(|r| !r.is_empty());
        let out_trade_no = t
            .out_trade_no
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| NotifyError::malformed("no out_trade_no"))?;
        let status =
            choices::notify_status(&t).ok_or_else(|| NotifyError::malformed("no trade_status"))?;
        match status {
            "SUCCESS" => {
                let amount = t
                    .total_amount
                    .and_then(|v| Fen::parse_positive("total_amount", v.0).ok())
                    .ok_or_else(|| NotifyError::malformed("no valid total_amount"))?;
                let time = t.trade_time.as_deref().unwrap_or("");
                Ok(VerifiedNotification::Payment(PaymentNotification {
                    out_trade_no,
                    merchant,
                    attach,
                    result: PaymentResult::Paid(PaidInfo {
                        transaction_id: t
                            .trade_no
                            .clone()
                            .filter(|s| !s.is_empty())
                            .ok_or_else(|| NotifyError::malformed("no trade_no"))?,
                        pay_time: parse_compact(time).ok_or_else(|| {
                            NotifyError::malformed(format!("trade_time `{time}` is not a time"))
                        })?,
                        amount,
                    }),
                }))
            }
            "FAIL" => Ok(VerifiedNotification::Payment(PaymentNotification {
                out_trade_no,
                merchant,
                attach,
                result: PaymentResult::Failed {
                    code: status.to_owned(),
                    message: t.trade_state_desc.clone().unwrap_or_default(),
                },
            })),
            "CLOSE" => Ok(VerifiedNotification::Payment(PaymentNotification {
                out_trade_no,
                merchant,
                attach,
                result: PaymentResult::Closed,
            })),
            other => Ok(VerifiedNotification::Other {
                event: other.to_owned(),
            }),
        }
    }

    /// The notified `merchant_no` must be the store's (or, for the
    /// config's own orders, the config's); `term_no` too when named.
    fn check_merchant(
        &self,
        notified: &NotifiedMerchant,
        store: Option<&StoreMerchant>,
    ) -> Result<(), NotifyError> {
        let expected = self
            .terminal(store)
            .map_err(|e| NotifyError::mismatch(e.message().to_owned()))?;
        let got = notified.get("merchant_no").unwrap_or("");
        if got != expected.merchant_no {
            return Err(NotifyError::mismatch(format!(
                "merchant_no `{got}` is not {} ({})",
                expected.merchant_no,
                store.map_or_else(
                    || "this config's".to_owned(),
                    |s| format!("store {}", s.store_id)
                )
            )));
        }
        if let Some(term) = notified.get("term_no")
            && term != expected.term_no
        {
            return Err(NotifyError::mismatch(format!(
                "term_no `{term}` is not {}",
                expected.term_no
            )));
        }
        Ok(())
    }

    fn notification_reply(&self, ok: bool) -> NotificationReply {
        if ok {
            NotificationReply {
                status: 200,
                content_type: Some("application/json"),
                body: NOTIFY_ACK.to_owned(),
            }
        } else {
            NotificationReply {
                status: 500,
                content_type: Some("application/json"),
                body: r#"{"code":"FAIL","message":"失败"}"#.to_owned(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::HttpSettings;

    #[test]
    fn authorization_header_parsing() {
        let p = parse_authorization(
            r#"LKLAPI-SHA256withRSA timestamp="1700000000",nonce_str="abc",signature="a+b/c=="#,
        );
        assert!(p.is_none(), "unterminated quote accepted");
        let p = parse_authorization(
            r#"LKLAPI-SHA256withRSA timestamp="1700000000",nonce_str="abc",signature="a+b/c==""#,
        )
        .unwrap();
        assert_eq!(p["timestamp"], "1700000000");
        assert_eq!(p["signature"], "a+b/c==");
        assert!(parse_authorization(r#"WECHATPAY2-SHA256-RSA2048 a="b""#).is_none());
        assert!(parse_authorization(r#"LKLAPI-SHA256withRSAx a="b""#).is_none());
        assert!(parse_authorization(r#"LKLAPI-SHA256withRSA a="b",a="c""#).is_none());
    }

    #[test]
    fn serials_compare_loosely() {
        assert!(same_serial("00a1B2", "A1B2"));
        assert!(!same_serial("A1B3", "A1B2"));
        assert!(!same_serial("", ""));
    }

    #[test]
    fn choices_are_stable() {
        assert_eq!(choices::jsapi_wallet("2088102146225135"), "ALIPAY");
        assert_eq!(
            choices::jsapi_wallet("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"),
            "WECHAT"
        );
        assert_eq!(choices::timeout_express(0), "1");
        assert_eq!(choices::timeout_express(30), "30");
        assert_eq!(
            choices::refund_outcome(Some("SUCCESS")),
            RefundOutcome::Success
        );
        assert_eq!(choices::refund_outcome(Some("FAIL")), RefundOutcome::Closed);
        assert_eq!(choices::refund_outcome(None), RefundOutcome::Processing);
        assert_eq!(
            choices::order_state("INIT"),
            Some(ChannelOrderStatus::NotPaid)
        );
        assert_eq!(choices::order_state("SUCCESS"), None);
        use crate::ChannelErrorKind as K;
        assert_eq!(
            choices::error("x", "BBS99999", "系统繁忙").kind(),
            K::Retryable
        );
        assert_eq!(
            choices::error("x", "BBS10001", "验签失败").kind(),
            K::Config
        );
        let e = choices::error("x", "BBS11005", "余额不足");
        assert_eq!(e.kind(), K::Business);
        assert_eq!(e.code(), Some("BBS11005"));
    }

    #[test]
    fn fen_text_is_strict() {
        let f = |v: serde_json::Value| serde_json::from_value::<FenText>(v);
        assert_eq!(f(json!("100")).unwrap(), FenText(100));
        assert_eq!(f(json!(100)).unwrap(), FenText(100));
        for bad in [
            json!("1.00"),
            json!("+1"),
            json!(" 1"),
            json!(""),
            json!(-1),
            json!(1.5),
        ] {
            assert!(f(bad.clone()).is_err(), "{bad} accepted");
        }
    }

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
