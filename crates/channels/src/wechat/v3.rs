//! WeChat Pay API v3: JSON over HTTPS, SHA256withRSA both ways
//! (PROTOCOLS.md "WeChat Pay API v3").
//!
//! Requests carry `Authorization: WECHATPAY2-SHA256-RSA2048 mchid="…",
//! nonce_str="…",signature="…",timestamp="…",serial_no="…"` over
//! `METHOD\nPATH?QUERY\nTIMESTAMP\nNONCE\nBODY\n`. Responses are verified
//! against the configured platform key: `Wechatpay-Serial` must be the
//! configured `platformSerial`, the timestamp within ±300 s, the signature
//! over `TIMESTAMP\nNONCE\nBODY\n` good. A 2xx answer that is unsigned or
//! does not verify is [`ChannelError::BadResponse`] — never acted on. A 4xx
//! error body may be unsigned (WeChat does not sign answers to requests it
//! could not authenticate); it is reported as an error and never turned into
//! a state, except `ORDER_NOT_EXIST`, which becomes `NotFound` only when
//! signed. 5xx and 429 are retryable whatever their signature.
//!
//! Service-provider mode: with a store's [`SubMerchant`] orders go to the
//! partner endpoints (`/v3/pay/partner/transactions/…`, body `sp_appid`,
//! `sp_mchid`, `sub_appid`, `sub_mchid`, `payer.sp_openid|sub_openid`;
//! query `?sp_mchid=&sub_mchid=`; close `{sp_mchid, sub_mchid}`) and
//! refunds carry `sub_mchid`. The service provider signs, as always.
//!
//! Notifications: headers verified the same way (an unknown serial is a key
//! problem: the platform key may have rotated), then the resource decrypted
//! with AEAD_AES_256_GCM under the APIv3 key. The signature covers the
//! ciphertext, so a decryption failure after a good signature means our
//! APIv3 key is wrong (key problem), not tampering.

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use cashdesk_core::time::to_rfc3339_cn;
use cashdesk_core::{ChannelType, Fen, SceneCode};
use cashdesk_crypto::Secret;
use cashdesk_crypto::random::nonce_str;
use cashdesk_crypto::rsa::{RsaPrivateKey, RsaPublicKey};
use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::json;
use url::Url;

use super::wire::*;
use super::{TradeKind, join_url, truncate_bytes};
use crate::channel::*;
use crate::error::{ChannelError, NotifyError};
use crate::http;
use crate::registry::ChannelEnv;

/// The allowed clock difference for signed responses and notifications.
pub const MAX_SKEW_SECS: i64 = 300;

/// One WeChat Pay v3 merchant account.
pub struct WxPayV3 {
    mch_id: String,
    app_id: String,
    serial_no: String,
    private_key: RsaPrivateKey,
    api_v3_key: Secret,
    platform_serial: String,
    platform_key: RsaPublicKey,
    base_url: Url,
    notify_url: String,
    http: reqwest::Client,
}

impl std::fmt::Debug for WxPayV3 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WxPayV3")
            .field("mch_id", &self.mch_id)
            .field("app_id", &self.app_id)
            .field("serial_no", &self.serial_no)
            .field("platform_serial", &self.platform_serial)
            .field("base_url", &self.base_url.as_str())
            .finish_non_exhaustive()
    }
}

/// A non-2xx answer that is not retryable.
struct Failure {
    status: u16,
    code: String,
    message: String,
    signed: bool,
}

impl Failure {
    fn into_error(self, what: &str) -> ChannelError {
        let msg = format!("{what}: {}: {}", self.code, self.message);
        match self.code.as_str() {
            "SYSTEM_ERROR" | "SYSTEMERROR" | "BANK_ERROR" | "FREQUENCY_LIMITED"
            | "RATELIMIT_EXCEEDED" => ChannelError::retryable(Some(self.code), msg),
            "SIGN_ERROR" | "APPID_MCHID_NOT_MATCH" | "MCH_NOT_EXISTS" | "NO_AUTH" => {
                ChannelError::config(msg)
            }
            _ if self.status == 401 => ChannelError::config(msg),
            _ => ChannelError::business(self.code, self.message),
        }
    }
}

impl WxPayV3 {
    pub fn new(
        mch_id: &str,
        creds: V3Credentials,
        base_url: Url,
        env: &ChannelEnv,
    ) -> Result<Self, ChannelError> {
        let checked = creds.check().map_err(ChannelError::config)?;
        let mut roots: Vec<&str> = env.extra_root_ca_pems.iter().map(String::as_str).collect();
        if let Some(ca) = &creds.ca_cert_pem {
            roots.push(ca);
        }
        Ok(Self {
            mch_id: mch_id.trim().to_owned(),
            app_id: creds.app_id.trim().to_owned(),
            serial_no: creds.serial_no.trim().to_owned(),
            private_key: checked.private_key,
            api_v3_key: creds.api_v3_key,
            platform_serial: creds.platform_serial.trim().to_owned(),
            platform_key: checked.platform_key,
            base_url,
            notify_url: env.notify_url.clone(),
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

    /// The `Authorization` header for one request.
    pub(crate) fn authorization(
        &self,
        method: &str,
        path_and_query: &str,
        body: &str,
        timestamp: i64,
        nonce: &str,
    ) -> Result<String, ChannelError> {
        let message = format!("{method}\n{path_and_query}\n{timestamp}\n{nonce}\n{body}\n");
        let signature = self.rsa_sign(&message)?;
        Ok(format!(
            "WECHATPAY2-SHA256-RSA2048 mchid=\"{}\",nonce_str=\"{nonce}\",signature=\"{signature}\",timestamp=\"{timestamp}\",serial_no=\"{}\"",
            self.mch_id, self.serial_no
        ))
    }

    /// Verify `Wechatpay-*` headers over `body`. `Ok(false)` when the answer
    /// carries no signature headers at all.
    fn verify_signed(
        &self,
        header: impl Fn(&str) -> Option<String>,
        body: &[u8],
    ) -> Result<bool, (SigProblem, String)> {
        let names = [
            "Wechatpay-Timestamp",
            "Wechatpay-Nonce",
            "Wechatpay-Signature",
            "Wechatpay-Serial",
        ];
        let values: Vec<Option<String>> = names.iter().map(|n| header(n)).collect();
        if values.iter().all(Option::is_none) {
            return Ok(false);
        }
        let get = |i: usize| {
            values[i]
                .clone()
                .ok_or_else(|| (SigProblem::Invalid, format!("missing header {}", names[i])))
        };
        let (ts, nonce, sig, serial) = (get(0)?, get(1)?, get(2)?, get(3)?);
        if !serial.trim().eq_ignore_ascii_case(&self.platform_serial) {
            return Err((
                SigProblem::UnknownSerial,
                format!(
                    "Wechatpay-Serial `{serial}` is not the configured platform serial `{}`",
                    self.platform_serial
                ),
            ));
        }
        let ts_num: i64 = ts.trim().parse().map_err(|_| {
            (
                SigProblem::Invalid,
                format!("Wechatpay-Timestamp `{ts}` is not a number"),
            )
        })?;
        let now = Utc::now().timestamp();
        if (now - ts_num).abs() >= MAX_SKEW_SECS {
            return Err((
                SigProblem::Invalid,
                format!(
                    "Wechatpay-Timestamp {ts_num} is more than {MAX_SKEW_SECS} s from now ({now})"
                ),
            ));
        }
        let mut message = Vec::with_capacity(body.len() + 64);
        message.extend_from_slice(ts.trim().as_bytes());
        message.push(b'\n');
        message.extend_from_slice(nonce.as_bytes());
        message.push(b'\n');
        message.extend_from_slice(body);
        message.push(b'\n');
        self.platform_key
            .verify_sha256_base64(&message, &sig)
            .map_err(|_| {
                (
                    SigProblem::Invalid,
                    "Wechatpay-Signature does not verify".to_owned(),
                )
            })?;
        Ok(true)
    }

    /// Send one signed request. `Ok(Ok(body))` for a verified 2xx answer,
    /// `Ok(Err(failure))` for a 4xx error body.
    async fn call(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<String>,
    ) -> Result<Result<Vec<u8>, Failure>, ChannelError> {
        let url = join_url(&self.base_url, path_and_query);
        let parsed = Url::parse(&url)
            .map_err(|e| ChannelError::config(format!("bad request URL {url}: {e}")))?;
        let signed_target = match parsed.query() {
            Some(q) => format!("{}?{q}", parsed.path()),
            None => parsed.path().to_owned(),
        };
        let body_text = body.unwrap_or_default();
        let nonce = nonce_str(32);
        let auth = self.authorization(
            method.as_str(),
            &signed_target,
            &body_text,
            Utc::now().timestamp(),
            &nonce,
        )?;
        let mut req = self
            .http
            .request(method, parsed)
            .header(reqwest::header::AUTHORIZATION, auth)
            .header(reqwest::header::ACCEPT, "application/json");
        if !body_text.is_empty() {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body_text);
        }
        let what = path_and_query.split('?').next().unwrap_or(path_and_query);
        let resp = http::send(req, what).await?;
        let error_body = || serde_json::from_slice::<V3ErrorBody>(&resp.body).ok();
        if resp.status >= 500 || resp.status == 429 {
            let e = error_body();
            return Err(ChannelError::retryable(
                Some(
                    e.as_ref()
                        .and_then(|e| e.code.clone())
                        .unwrap_or_else(|| format!("HTTP_{}", resp.status)),
                ),
                format!(
                    "{what}: WeChat Pay answered HTTP {}{}",
                    resp.status,
                    e.and_then(|e| e.message)
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                ),
            ));
        }
        let signed = self
            .verify_signed(|n| resp.header(n).map(str::to_owned), &resp.body)
            .map_err(|(_, msg)| ChannelError::bad_response(format!("{what}: {msg}")))?;
        if (200..300).contains(&resp.status) {
            if !signed {
                return Err(ChannelError::bad_response(format!(
                    "{what}: response is not signed (no Wechatpay-Signature)"
                )));
            }
            return Ok(Ok(resp.body));
        }
        if !(400..500).contains(&resp.status) {
            return Err(ChannelError::bad_response(format!(
                "{what}: unexpected HTTP {}",
                resp.status
            )));
        }
        let e = error_body();
        Ok(Err(Failure {
            status: resp.status,
            code: e
                .as_ref()
                .and_then(|e| e.code.clone())
                .unwrap_or_else(|| format!("HTTP_{}", resp.status)),
            message: e
                .and_then(|e| e.message)
                .unwrap_or_else(|| format!("HTTP {}", resp.status)),
            signed,
        }))
    }

    fn json_body<T: serde::Serialize>(value: &T) -> Result<String, ChannelError> {
        serde_json::to_string(value)
            .map_err(|e| ChannelError::invalid_request(format!("cannot encode request: {e}")))
    }

    fn decode<T: DeserializeOwned>(what: &str, body: &[u8]) -> Result<T, ChannelError> {
        serde_json::from_slice(body)
            .map_err(|e| ChannelError::bad_response(format!("{what}: unexpected body: {e}")))
    }

    /// `wx.requestPayment` params: RSA over `appId\ntimeStamp\nnonceStr\npackage\n`;
    /// `appId` is the AppID the payer is a user of ([`super::payer_app`]).
    fn jsapi_pay_data(
        &self,
        prepay_id: &str,
        ts: i64,
        nonce: &str,
        app_id: &str,
    ) -> Result<serde_json::Value, ChannelError> {
        let package = format!("prepay_id={prepay_id}");
        let pay_sign = self.rsa_sign(&format!("{app_id}\n{ts}\n{nonce}\n{package}\n"))?;
        Ok(json!({
            "appId": app_id,
            "timeStamp": ts.to_string(),
            "nonceStr": nonce,
            "package": package,
            "signType": "RSA",
            "paySign": pay_sign,
        }))
    }

    /// App SDK params: RSA over `appid\ntimestamp\nnoncestr\nprepayid\n`;
    /// for a sub-merchant its AppID and mch_id.
    fn app_pay_data(
        &self,
        prepay_id: &str,
        ts: i64,
        nonce: &str,
        sub: Option<&SubMerchant>,
    ) -> Result<serde_json::Value, ChannelError> {
        let app_id = sub
            .and_then(|s| s.sub_app_id.clone())
            .unwrap_or_else(|| self.app_id.clone());
        let partner_id = sub.map_or_else(|| self.mch_id.clone(), |s| s.sub_mch_id.clone());
        let sign = self.rsa_sign(&format!("{app_id}\n{ts}\n{nonce}\n{prepay_id}\n"))?;
        Ok(json!({
            "appid": app_id,
            "partnerid": partner_id,
            "prepayid": prepay_id,
            "package": "Sign=WXPay",
            "noncestr": nonce,
            "timestamp": ts.to_string(),
            "sign": sign,
        }))
    }

    fn refund_status(
        &self,
        what: &str,
        r: V3Refund,
        refund_id: &str,
    ) -> Result<RefundStatus, ChannelError> {
        if r.out_refund_no != refund_id {
            return Err(ChannelError::bad_response(format!(
                "{what}: answer is for out_refund_no {}",
                r.out_refund_no
            )));
        }
        let outcome = refund_outcome(&r.status).ok_or_else(|| {
            ChannelError::bad_response(format!("{what}: unknown refund status `{}`", r.status))
        })?;
        let success_time = match r.success_time.as_deref().filter(|s| !s.is_empty()) {
            Some(t) => Some(parse_time(t).ok_or_else(|| {
                ChannelError::bad_response(format!("{what}: success_time `{t}`"))
            })?),
            None => None,
        };
        Ok(RefundStatus {
            outcome,
            channel_refund_id: r.refund_id,
            refund_amount: r
                .amount
                .and_then(|a| Fen::parse_positive("refund", a.refund).ok()),
            success_time,
        })
    }
}

/// Why verification failed: an unknown serial is a key problem, the rest
/// means the message is not authentic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SigProblem {
    UnknownSerial,
    Invalid,
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn refund_outcome(status: &str) -> Option<RefundOutcome> {
    match status {
        "SUCCESS" => Some(RefundOutcome::Success),
        "PROCESSING" => Some(RefundOutcome::Processing),
        "CLOSED" => Some(RefundOutcome::Closed),
        "ABNORMAL" => Some(RefundOutcome::Abnormal),
        _ => None,
    }
}

/// Percent-encode one path segment or query value.
fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[async_trait]
impl Channel for WxPayV3 {
    fn channel_type(&self) -> ChannelType {
        ChannelType::WxPay
    }
    fn api_version(&self) -> &'static str {
        "v3"
    }
    fn mch_id(&self) -> &str {
        &self.mch_id
    }
    fn scenes(&self) -> &'static [SceneCode] {
        super::SCENES
    }

    async fn create_payment(&self, req: &PayRequest) -> Result<PayResponse, ChannelError> {
        let kind = TradeKind::for_scene(req.scene)?;
        let sub = SubMerchant::of(req.store.as_ref())?;
        let client_ip = req
            .client_ip
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        let mut payer_app_id = (self.app_id.clone(), false);
        let (path, payer, scene_info) = match kind {
            TradeKind::Jsapi => {
                let openid = req
                    .payer_id
                    .as_deref()
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| {
                        ChannelError::invalid_request(
                            "openid is required for the mini and jsapi scenes",
                        )
                    })?;
                payer_app_id =
                    super::payer_app(&self.app_id, sub.as_ref(), req.payer_app_id.as_deref())?;
                (
                    "/v3/pay/transactions/jsapi",
                    Some(V3Payer {
                        openid: openid.into(),
                    }),
                    None,
                )
            }
            TradeKind::Native => ("/v3/pay/transactions/native", None, None),
            TradeKind::H5 => {
                let ip = client_ip.ok_or_else(|| {
                    ChannelError::invalid_request("clientIp is required for the h5 scene")
                })?;
                let info = V3SceneInfo {
                    payer_client_ip: ip.into(),
                    h5_info: Some(V3H5Info { kind: "Wap" }),
                };
                ("/v3/pay/transactions/h5", None, Some(info))
            }
            TradeKind::App => ("/v3/pay/transactions/app", None, None),
        };
        let description = truncate_bytes(&req.description, 127).to_owned();
        let time_expire = req.expire_at.map(to_rfc3339_cn);
        let attach = req
            .attach
            .as_deref()
            .map(|a| truncate_bytes(a, 128).to_owned());
        let amount = V3Amount {
            total: req.amount.get(),
            currency: "CNY",
        };
        let (path, body) = match &sub {
            None => (
                path.to_owned(),
                Self::json_body(&V3PrepayRequest {
                    appid: self.app_id.clone(),
                    mchid: self.mch_id.clone(),
                    description,
                    out_trade_no: req.order_id.as_str().to_owned(),
                    time_expire,
                    attach,
                    notify_url: self.notify_url.clone(),
                    amount,
                    payer,
                    scene_info,
                })?,
            ),
            Some(sub) => {
                // A user of the store's own AppID is its `sub_openid`; of
                // the service provider's, its `sp_openid`.
                let of_store = payer_app_id.1;
                let payer = payer.map(|p| V3PartnerPayer {
                    sp_openid: (!of_store).then(|| p.openid.clone()),
                    sub_openid: of_store.then_some(p.openid),
                });
                (
                    path.replace("/v3/pay/transactions/", "/v3/pay/partner/transactions/"),
                    Self::json_body(&V3PartnerPrepayRequest {
                        sp_appid: self.app_id.clone(),
                        sp_mchid: self.mch_id.clone(),
                        sub_appid: sub.sub_app_id.clone(),
                        sub_mchid: sub.sub_mch_id.clone(),
                        description,
                        out_trade_no: req.order_id.as_str().to_owned(),
                        time_expire,
                        attach,
                        notify_url: self.notify_url.clone(),
                        amount,
                        payer,
                        scene_info,
                    })?,
                )
            }
        };
        let path = path.as_str();
        let answer = self.call(Method::POST, path, Some(body)).await?;
        let bytes = answer.map_err(|f| f.into_error(path))?;
        let r: V3PrepayResponse = Self::decode(path, &bytes)?;
        let missing = |f: &str| ChannelError::bad_response(format!("{path}: response has no {f}"));
        match kind {
            TradeKind::Jsapi => {
                let id = r
                    .prepay_id
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| missing("prepay_id"))?;
                Ok(PayResponse {
                    pay_data: self.jsapi_pay_data(
                        &id,
                        Utc::now().timestamp(),
                        &nonce_str(32),
                        &payer_app_id.0,
                    )?,
                    prepay_id: Some(id),
                })
            }
            TradeKind::App => {
                let id = r
                    .prepay_id
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| missing("prepay_id"))?;
                Ok(PayResponse {
                    pay_data: self.app_pay_data(
                        &id,
                        Utc::now().timestamp(),
                        &nonce_str(32),
                        sub.as_ref(),
                    )?,
                    prepay_id: Some(id),
                })
            }
            TradeKind::Native => {
                let url = r
                    .code_url
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| missing("code_url"))?;
                Ok(PayResponse {
                    pay_data: json!({"codeUrl": url}),
                    prepay_id: None,
                })
            }
            TradeKind::H5 => {
                let url = r
                    .h5_url
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| missing("h5_url"))?;
                Ok(PayResponse {
                    pay_data: json!({"h5Url": url}),
                    prepay_id: None,
                })
            }
        }
    }

    async fn query(&self, req: &QueryRequest) -> Result<ChannelOrderStatus, ChannelError> {
        let sub = SubMerchant::of(req.store.as_ref())?;
        let (what, path) = match &sub {
            None => (
                "/v3/pay/transactions/out-trade-no",
                format!(
                    "/v3/pay/transactions/out-trade-no/{}?mchid={}",
                    enc(req.order_id.as_str()),
                    enc(&self.mch_id)
                ),
            ),
            Some(s) => (
                "/v3/pay/partner/transactions/out-trade-no",
                format!(
                    "/v3/pay/partner/transactions/out-trade-no/{}?sp_mchid={}&sub_mchid={}",
                    enc(req.order_id.as_str()),
                    enc(&self.mch_id),
                    enc(&s.sub_mch_id)
                ),
            ),
        };
        let bytes = match self.call(Method::GET, &path, None).await? {
            Ok(b) => b,
            Err(f) if f.code == "ORDER_NOT_EXIST" || f.code == "ORDERNOTEXIST" => {
                if !f.signed {
                    return Err(ChannelError::bad_response(format!(
                        "{what}: unsigned {} answer",
                        f.code
                    )));
                }
                return Ok(ChannelOrderStatus::NotFound);
            }
            Err(f) => return Err(f.into_error(what)),
        };
        let t: V3Transaction = Self::decode(what, &bytes)?;
        let other_sub = match &sub {
            Some(s) => t.sub_mchid.as_deref() != Some(s.sub_mch_id.as_str()),
            None => t.sub_mchid.is_some(),
        };
        if t.out_trade_no != req.order_id.as_str()
            || t.mchid.as_deref().is_some_and(|m| m != self.mch_id)
            || t.appid.as_deref().is_some_and(|a| a != self.app_id)
            || t.sp_mchid.as_deref().is_some_and(|m| m != self.mch_id)
            || t.sp_appid.as_deref().is_some_and(|a| a != self.app_id)
            || other_sub
        {
            return Err(ChannelError::bad_response(format!(
                "{what}: answer is for another order or merchant ({})",
                t.out_trade_no
            )));
        }
        let paid = || -> Result<PaidInfo, ChannelError> {
            let total = t.amount.as_ref().and_then(|a| a.total);
            let amount = total
                .and_then(|v| Fen::parse_positive("amount", v).ok())
                .ok_or_else(|| {
                    ChannelError::bad_response(format!("{what}: paid order without amount.total"))
                })?;
            if amount != req.amount {
                return Err(ChannelError::bad_response(format!(
                    "{what}: paid amount {amount} fen differs from the order amount {} fen",
                    req.amount
                )));
            }
            Ok(PaidInfo {
                transaction_id: t
                    .transaction_id
                    .clone()
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| {
                        ChannelError::bad_response(format!(
                            "{what}: paid order without transaction_id"
                        ))
                    })?,
                pay_time: t
                    .success_time
                    .as_deref()
                    .and_then(parse_time)
                    .ok_or_else(|| {
                        ChannelError::bad_response(format!(
                            "{what}: paid order without success_time"
                        ))
                    })?,
                amount,
            })
        };
        Ok(match t.trade_state.as_str() {
            "SUCCESS" => ChannelOrderStatus::Paid(paid()?),
            "REFUND" => ChannelOrderStatus::Refunded(paid()?),
            "NOTPAY" => ChannelOrderStatus::NotPaid,
            "USERPAYING" | "ACCEPT" => ChannelOrderStatus::Paying,
            "CLOSED" | "REVOKED" => ChannelOrderStatus::Closed,
            "PAYERROR" => ChannelOrderStatus::Failed {
                code: "PAYERROR".into(),
                message: t.trade_state_desc.clone().unwrap_or_default(),
            },
            other => ChannelOrderStatus::Unknown {
                state: other.to_owned(),
            },
        })
    }

    async fn close(&self, req: &CloseRequest) -> Result<(), ChannelError> {
        let sub = SubMerchant::of(req.store.as_ref())?;
        let (what, path, body) = match &sub {
            None => (
                "/v3/pay/transactions/out-trade-no/close",
                format!(
                    "/v3/pay/transactions/out-trade-no/{}/close",
                    enc(req.order_id.as_str())
                ),
                Self::json_body(&V3CloseRequest {
                    mchid: self.mch_id.clone(),
                })?,
            ),
            Some(s) => (
                "/v3/pay/partner/transactions/out-trade-no/close",
                format!(
                    "/v3/pay/partner/transactions/out-trade-no/{}/close",
                    enc(req.order_id.as_str())
                ),
                Self::json_body(&V3PartnerCloseRequest {
                    sp_mchid: self.mch_id.clone(),
                    sub_mchid: s.sub_mch_id.clone(),
                })?,
            ),
        };
        match self.call(Method::POST, &path, Some(body)).await? {
            Ok(_) => Ok(()),
            Err(f) if f.code == "ORDER_CLOSED" => Ok(()),
            Err(f) => Err(f.into_error(what)),
        }
    }

    async fn refund(&self, req: &RefundRequest) -> Result<RefundStatus, ChannelError> {
        let what = "/v3/refund/domestic/refunds";
        let sub = SubMerchant::of(req.store.as_ref())?;
        let body = V3RefundRequest {
            sub_mchid: sub.map(|s| s.sub_mch_id),
            out_trade_no: req.order_id.as_str().to_owned(),
            out_refund_no: req.refund_id.as_str().to_owned(),
            reason: req
                .reason
                .as_deref()
                .filter(|r| !r.trim().is_empty())
                .map(|r| truncate_bytes(r, 80).to_owned()),
            notify_url: self.notify_url.clone(),
            amount: V3RefundAmount {
                refund: req.refund_amount.get(),
                total: req.order_amount.get(),
                currency: "CNY",
            },
        };
        let bytes = self
            .call(Method::POST, what, Some(Self::json_body(&body)?))
            .await?
            .map_err(|f| f.into_error(what))?;
        let r: V3Refund = Self::decode(what, &bytes)?;
        self.refund_status(what, r, req.refund_id.as_str())
    }

    async fn query_refund(&self, req: &RefundQueryRequest) -> Result<RefundStatus, ChannelError> {
        let what = "/v3/refund/domestic/refunds/{out_refund_no}";
        let mut path = format!(
            "/v3/refund/domestic/refunds/{}",
            enc(req.refund_id.as_str())
        );
        if let Some(s) = SubMerchant::of(req.store.as_ref())? {
            path.push_str(&format!("?sub_mchid={}", enc(&s.sub_mch_id)));
        }
        let bytes = self
            .call(Method::GET, &path, None)
            .await?
            .map_err(|f| f.into_error(what))?;
        let r: V3Refund = Self::decode(what, &bytes)?;
        self.refund_status(what, r, req.refund_id.as_str())
    }

    fn parse_notification(
        &self,
        n: &IncomingNotification,
    ) -> Result<VerifiedNotification, NotifyError> {
        // Authenticity first; the body is not even parsed before it verifies.
        match self.verify_signed(|name| n.header(name).map(str::to_owned), &n.body) {
            Ok(true) => {}
            Ok(false) => return Err(NotifyError::unverifiable("no Wechatpay-Signature headers")),
            Err((SigProblem::UnknownSerial, msg)) => return Err(NotifyError::key_problem(msg)),
            Err((SigProblem::Invalid, msg)) => return Err(NotifyError::unverifiable(msg)),
        }
        let envelope: V3Notification = serde_json::from_slice(&n.body).map_err(|e| {
            NotifyError::malformed(format!("not a WeChat Pay v3 notification: {e}"))
        })?;
        let res = &envelope.resource;
        if res.algorithm != "AEAD_AES_256_GCM" {
            return Err(NotifyError::malformed(format!(
                "unsupported resource algorithm `{}`",
                res.algorithm
            )));
        }
        let ciphertext = STANDARD
            .decode(res.ciphertext.trim().as_bytes())
            .map_err(|_| NotifyError::malformed("resource.ciphertext is not base64"))?;
        let plain = cashdesk_crypto::aead::aes_gcm_decrypt(
            self.api_v3_key.expose().as_bytes(),
            res.nonce.as_bytes(),
            res.associated_data.as_deref().unwrap_or("").as_bytes(),
            &ciphertext,
        )
        .map_err(|_| {
            NotifyError::key_problem(
                "signed resource does not decrypt with this config's APIv3 key",
            )
        })?;
        match envelope.event_type.as_str() {
            "TRANSACTION.SUCCESS" => {
                let t: V3Transaction = serde_json::from_slice(&plain)
                    .map_err(|e| NotifyError::malformed(format!("transaction resource: {e}")))?;
                // A direct order names appid/mchid, a partner order the
                // service provider as sp_appid/sp_mchid: either way this
                // config's.
                let appid = t.appid.as_deref().or(t.sp_appid.as_deref());
                if appid != Some(self.app_id.as_str()) {
                    return Err(NotifyError::mismatch(format!(
                        "appid `{}` is not this config's",
                        appid.unwrap_or("")
                    )));
                }
                let mchid = t.mchid.as_deref().or(t.sp_mchid.as_deref());
                if mchid != Some(self.mch_id.as_str()) {
                    return Err(NotifyError::mismatch(format!(
                        "mchid `{}` is not this config's",
                        mchid.unwrap_or("")
                    )));
                }
                let result = if t.trade_state == "SUCCESS" {
                    let amount = t
                        .amount
                        .as_ref()
                        .and_then(|a| a.total)
                        .and_then(|v| Fen::parse_positive("amount", v).ok())
                        .ok_or_else(|| NotifyError::malformed("no amount.total"))?;
                    PaymentResult::Paid(PaidInfo {
                        transaction_id: t
                            .transaction_id
                            .clone()
                            .filter(|s| !s.is_empty())
                            .ok_or_else(|| NotifyError::malformed("no transaction_id"))?,
                        pay_time: t
                            .success_time
                            .as_deref()
                            .and_then(parse_time)
                            .ok_or_else(|| NotifyError::malformed("no valid success_time"))?,
                        amount,
                    })
                } else {
                    PaymentResult::Failed {
                        code: t.trade_state.clone(),
                        message: t.trade_state_desc.clone().unwrap_or_default(),
                    }
                };
                let merchant =
                    NotifiedMerchant::from_fields(&["sub_mchid", "sub_appid"], |n| match n {
                        "sub_mchid" => t.sub_mchid.as_deref(),
                        _ => t.sub_appid.as_deref(),
                    });
                Ok(VerifiedNotification::Payment(PaymentNotification {
                    out_trade_no: t.out_trade_no,
                    result,
                    merchant,
                    attach: t.attach.filter(|a| !a.is_empty()),
                }))
            }
            "REFUND.SUCCESS" | "REFUND.ABNORMAL" | "REFUND.CLOSED" => {
                let r: V3RefundResource = serde_json::from_slice(&plain)
                    .map_err(|e| NotifyError::malformed(format!("refund resource: {e}")))?;
                let mchid = r.mchid.as_deref().or(r.sp_mchid.as_deref());
                if mchid != Some(self.mch_id.as_str()) {
                    return Err(NotifyError::mismatch(format!(
                        "mchid `{}` is not this config's",
                        mchid.unwrap_or("")
                    )));
                }
                let merchant =
                    NotifiedMerchant::from_fields(&["sub_mchid"], |_| r.sub_mchid.as_deref());
                let outcome = refund_outcome(&r.refund_status).ok_or_else(|| {
                    NotifyError::malformed(format!("unknown refund_status `{}`", r.refund_status))
                })?;
                let success_time = match r.success_time.as_deref().filter(|s| !s.is_empty()) {
                    Some(t) => Some(
                        parse_time(t)
                            .ok_or_else(|| NotifyError::malformed(format!("success_time `{t}`")))?,
                    ),
                    None => None,
                };
                Ok(VerifiedNotification::Refund(RefundNotification {
                    out_trade_no: r.out_trade_no,
                    out_refund_no: r.out_refund_no,
                    channel_refund_id: r.refund_id,
                    transaction_id: r.transaction_id,
                    outcome,
                    refund_amount: Fen::parse_positive("refund", r.amount.refund).map_err(
                        |_| NotifyError::malformed("amount.refund is not a positive amount"),
                    )?,
                    order_amount: r
                        .amount
                        .total
                        .and_then(|v| Fen::parse_positive("total", v).ok()),
                    success_time,
                    merchant,
                }))
            }
            other => Ok(VerifiedNotification::Other {
                event: other.to_owned(),
            }),
        }
    }

    fn check_merchant(
        &self,
        notified: &NotifiedMerchant,
        store: Option<&StoreMerchant>,
    ) -> Result<(), NotifyError> {
        super::check_sub_merchant(notified, store, "sub_mchid", "sub_appid")
    }

    fn notification_reply(&self, ok: bool) -> NotificationReply {
        if ok {
            NotificationReply {
                status: 204,
                content_type: None,
                body: String::new(),
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
    use cashdesk_crypto::aead::{aes_gcm_decrypt, aes_gcm_encrypt};

    fn b64(s: &str) -> Vec<u8> {
        STANDARD.decode(s).unwrap()
    }

    #[test]
    fn vector_aead_aes_256_gcm() {
        let ct = b64("ulwSiIajGClcvcOYvOQ7+l+0PAbzzwI=");
        let plain = aes_gcm_decrypt(
            b"a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb",
            b"uluk4a9R25RW",
            b"associatedData",
            &ct,
        )
        .unwrap();
        assert_eq!(plain, b"message");
        let again = aes_gcm_encrypt(
            b"a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb",
            b"uluk4a9R25RW",
            b"associatedData",
            b"message",
        )
        .unwrap();
        assert_eq!(again, ct);
        let mut tampered = ct.clone();
        tampered[0] ^= 1;
        assert!(
            aes_gcm_decrypt(
                b"a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb",
                b"uluk4a9R25RW",
                b"associatedData",
                &tampered
            )
            .is_err()
        );
        assert!(
            aes_gcm_decrypt(
                b"a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb",
                b"uluk4a9R25RW",
                b"other",
                &ct
            )
            .is_err()
        );
    }

    #[test]
    fn vector_sdk_aes_128_gcm() {
        let ct = b64("FsdXzxryWfKwvLJKf8LG/ToRPTRh8RN9wROC");
        let plain = aes_gcm_decrypt(
            b"testAPIv3Key0000",
            b"wCq51qZv4Yfg",
            b"Dl56FrqWQJF1t9LtC3vEUsniZKvbqdR8",
            &ct,
        )
        .unwrap();
        assert_eq!(plain, b"Hello World");
    }

    fn adapter() -> (WxPayV3, RsaPublicKey) {
        let merchant = RsaPrivateKey::generate_2048().unwrap();
        let platform = RsaPrivateKey::generate_2048().unwrap();
        let public = merchant.public_key();
        let creds = V3Credentials::parse(&json!({
            "appId": "wxd930ea5d5a258f4f",
            "serialNo": "5157F09EFDC096DE15EBE81A47057A7232F1B8E1",
            "privateKeyPem": merchant.to_pkcs8_pem(),
            "apiV3Key": "a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb",
            "platformSerial": "PUB_KEY_ID_0114232134912410000000000000",
            "platformPublicKeyPem": platform.public_key().to_spki_pem(),
        }))
        .unwrap();
        let env = ChannelEnv {
            public_url: "https://pay.example.com".into(),
            notify_url: "https://pay.example.com/api/cashier-desk/notify/C1".into(),
            http: HttpSettings::default(),
            extra_root_ca_pems: vec![],
        };
        let a = WxPayV3::new(
            "1900000001",
            creds,
            Url::parse(super::super::PRODUCTION_BASE_URL).unwrap(),
            &env,
        )
        .unwrap();
        (a, public)
    }

    #[test]
    fn authorization_header_layout() {
        let (a, public) = adapter();
        let body = r#"{"mchid":"1900000001"}"#;
        let auth = a
            .authorization(
                "POST",
                "/v3/pay/transactions/out-trade-no/P1/close",
                body,
                1554208460,
                "593BEC0C930BF1AFEB40B4A08C8FB242",
            )
            .unwrap();
        let rest = auth.strip_prefix("WECHATPAY2-SHA256-RSA2048 ").unwrap();
        let params: std::collections::BTreeMap<&str, &str> = rest
            .split(',')
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                (k, v.trim_matches('"'))
            })
            .collect();
        assert_eq!(params["mchid"], "1900000001");
        assert_eq!(params["nonce_str"], "593BEC0C930BF1AFEB40B4A08C8FB242");
        assert_eq!(params["timestamp"], "1554208460");
        assert_eq!(
            params["serial_no"],
            "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
        );
        let message = format!(
            "POST\n/v3/pay/transactions/out-trade-no/P1/close\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n{body}\n"
        );
        // The signature may contain '=' padding: take everything after "signature=".
        let sig = rest
            .split("signature=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        public
            .verify_sha256_base64(message.as_bytes(), sig)
            .unwrap();
    }

    #[test]
    fn request_payment_and_app_params_are_rsa_signed() {
        let (a, public) = adapter();
        let v = a
            .jsapi_pay_data(
                "wx201410272009395522657a690389285100",
                1414561699,
                "5K8264ILTKCH16CQ2502SI8ZNMTM67VS",
                "wxd930ea5d5a258f4f",
            )
            .unwrap();
        assert_eq!(v["signType"], "RSA");
        assert_eq!(
            v["package"],
            "prepay_id=wx201410272009395522657a690389285100"
        );
        let msg = "wxd930ea5d5a258f4f\n1414561699\n5K8264ILTKCH16CQ2502SI8ZNMTM67VS\nprepay_id=wx201410272009395522657a690389285100\n";
        public
            .verify_sha256_base64(msg.as_bytes(), v["paySign"].as_str().unwrap())
            .unwrap();
        assert_eq!(
            v.as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect::<std::collections::BTreeSet<_>>(),
            [
                "appId",
                "nonceStr",
                "package",
                "paySign",
                "signType",
                "timeStamp"
            ]
            .into_iter()
            .collect()
        );
        let app = a.app_pay_data("wx2014", 1414561699, "abc", None).unwrap();
        let msg = "wxd930ea5d5a258f4f\n1414561699\nabc\nwx2014\n";
        public
            .verify_sha256_base64(msg.as_bytes(), app["sign"].as_str().unwrap())
            .unwrap();
        assert_eq!(app["package"], "Sign=WXPay");
        assert_eq!(app["partnerid"], "1900000001");
    }

    #[test]
    fn replies() {
        let (a, _) = adapter();
        assert_eq!(a.notification_reply(true).status, 204);
        let fail = a.notification_reply(false);
        assert_eq!(fail.status, 500);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&fail.body).unwrap()["code"],
            "FAIL"
        );
    }
}
