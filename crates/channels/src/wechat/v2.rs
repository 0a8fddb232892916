//! WeChat Pay API v2: flat XML over HTTPS, MD5 or HMAC-SHA256 parameter
//! signatures (PROTOCOLS.md "WeChat Pay API v2").
//!
//! Every request carries `mch_id`, `nonce_str`, `sign_type` (the config's) and
//! `sign`. Every answer is checked in WeChat's order: `return_code` (a
//! communication-level failure carries no signature), then the signature over
//! every field received (unknown ones included), then `mch_id`/`appid`, then
//! `result_code`/`err_code`. `secapi/pay/refund` goes over mutual TLS with the
//! merchant certificate, on its own client so the private key is only ever
//! presented to the refund endpoint.
//!
//! Service-provider mode: with a store's [`SubMerchant`] every request
//! carries `sub_mch_id` (and `sub_appid` when the store has its own AppID,
//! the payer then being `sub_openid`), signed with the service provider's
//! key; answers must name that `sub_mch_id` back.
//!
//! Notifications: payment notifications are signed (with the order's sign
//! type when `sign_type` is absent — the config's, which every order of this
//! config was made with); refund notifications are not signed but carry
//! `req_info`, AES-256-ECB under MD5(API key), which only WeChat can produce.

use std::collections::BTreeMap;

use async_trait::async_trait;
use cashdesk_core::time::{parse_cn_datetime, parse_compact, to_compact};
use cashdesk_core::{ChannelType, Fen, SceneCode};
use cashdesk_crypto::Secret;
use cashdesk_crypto::random::nonce_str;
use cashdesk_crypto::wxv2::{self, WxSignType};
use serde_json::json;
use url::Url;

use super::wire::{SubMerchant, V2Credentials};
use super::{TradeKind, join_url, truncate_bytes};
use crate::channel::*;
use crate::error::{ChannelError, NotifyError};
use crate::http;
use crate::registry::ChannelEnv;
use crate::xml;

type Fields = BTreeMap<String, String>;

/// One WeChat Pay v2 merchant account.
pub struct WxPayV2 {
    mch_id: String,
    app_id: String,
    api_key: Secret,
    sign_type: WxSignType,
    base_url: Url,
    refund_base_url: Url,
    notify_url: String,
    public_url: String,
    http: reqwest::Client,
    /// Presents the merchant certificate; `None` when the config has none.
    refund_http: Option<reqwest::Client>,
}

impl std::fmt::Debug for WxPayV2 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WxPayV2")
            .field("mch_id", &self.mch_id)
            .field("app_id", &self.app_id)
            .field("sign_type", &self.sign_type)
            .field("base_url", &self.base_url.as_str())
            .field("refund_client", &self.refund_http.is_some())
            .finish_non_exhaustive()
    }
}

impl WxPayV2 {
    pub fn new(
        mch_id: &str,
        creds: V2Credentials,
        base_url: Url,
        env: &ChannelEnv,
    ) -> Result<Self, ChannelError> {
        let checked = creds.check().map_err(ChannelError::config)?;
        let mut roots: Vec<&str> = env.extra_root_ca_pems.iter().map(String::as_str).collect();
        if let Some(ca) = &creds.ca_cert_pem {
            roots.push(ca);
        }
        let http = http::build_client(&env.http, &roots, None)?;
        let refund_http = match &checked.identity_pem {
            Some(pem) => Some(http::build_client(
                &env.http,
                &roots,
                Some(pem.expose().as_bytes()),
            )?),
            None => None,
        };
        let refund_base_url = match &creds.refund_base_url {
            Some(u) => super::parse_base_url(u).map_err(ChannelError::config)?,
            None => base_url.clone(),
        };
        Ok(Self {
            mch_id: mch_id.trim().to_owned(),
            app_id: creds.app_id.trim().to_owned(),
            api_key: creds.api_key,
            sign_type: checked.sign_type,
            base_url,
            refund_base_url,
            notify_url: env.notify_url.clone(),
            public_url: env.public_url.clone(),
            http,
            refund_http,
        })
    }

    fn sign(&self, params: &Fields, kind: WxSignType) -> String {
        wxv2::sign(params, self.api_key.expose(), kind)
    }

    /// POST a signed request and return the verified answer (return_code
    /// SUCCESS, signature good, mch_id/appid ours). `result_code` is left to
    /// the caller, which knows which business errors are outcomes.
    async fn call(
        &self,
        refund: bool,
        path: &str,
        mut params: Fields,
        sub: Option<&SubMerchant>,
    ) -> Result<Fields, ChannelError> {
        let (client, base) = if refund {
            let client = self.refund_http.as_ref().ok_or_else(|| {
                ChannelError::config(
                    "WeChat Pay v2 refunds need credentials.certPem and credentials.keyPem",
                )
            })?;
            (client, &self.refund_base_url)
        } else {
            (&self.http, &self.base_url)
        };
        params.insert("mch_id".into(), self.mch_id.clone());
        if let Some(sub) = sub {
            params.insert("sub_mch_id".into(), sub.sub_mch_id.clone());
            if let Some(a) = &sub.sub_app_id {
                params.insert("sub_appid".into(), a.clone());
            }
        }
        params.insert("nonce_str".into(), nonce_str(32));
        params.insert("sign_type".into(), self.sign_type.as_str().into());
        let sign = self.sign(&params, self.sign_type);
        params.insert("sign".into(), sign);
        let req = client
            .post(join_url(base, path))
            .header(reqwest::header::CONTENT_TYPE, "text/xml; charset=utf-8")
            .body(xml::to_xml(&params));
        let resp = http::send(req, path).await?;
        if resp.status >= 500 || resp.status == 429 {
            return Err(ChannelError::retryable(
                Some(format!("HTTP_{}", resp.status)),
                format!("{path}: WeChat Pay answered HTTP {}", resp.status),
            ));
        }
        if !(200..300).contains(&resp.status) {
            return Err(ChannelError::bad_response(format!(
                "{path}: unexpected HTTP {}",
                resp.status
            )));
        }
        let fields = xml::parse_flat(&resp.body)
            .map_err(|e| ChannelError::bad_response(format!("{path}: {e}")))?;
        match fields.get("return_code").map(String::as_str) {
            Some("SUCCESS") => {}
            Some(_) => {
                return Err(return_failure(
                    path,
                    fields.get("return_msg").map_or("", String::as_str),
                ));
            }
            None => {
                return Err(ChannelError::bad_response(format!(
                    "{path}: no return_code"
                )));
            }
        }
        let kind = match fields.get("sign_type") {
            Some(s) => WxSignType::parse(s).ok_or_else(|| {
                ChannelError::bad_response(format!("{path}: unknown sign_type in response"))
            })?,
            None => self.sign_type,
        };
        if !wxv2::verify(&fields, self.api_key.expose(), kind) {
            return Err(ChannelError::bad_response(format!(
                "{path}: response signature does not verify"
            )));
        }
        if let Some(m) = fields.get("mch_id")
            && m != &self.mch_id
        {
            return Err(ChannelError::bad_response(format!(
                "{path}: response is for mch_id {m}"
            )));
        }
        if let Some(a) = fields.get("appid")
            && a != &self.app_id
        {
            return Err(ChannelError::bad_response(format!(
                "{path}: response is for appid {a}"
            )));
        }
        if let (Some(sub), Some(m)) = (sub, fields.get("sub_mch_id"))
            && m != &sub.sub_mch_id
        {
            return Err(ChannelError::bad_response(format!(
                "{path}: response is for sub_mch_id {m}"
            )));
        }
        Ok(fields)
    }

    fn base_params(&self, order_id: &str) -> Fields {
        let mut p = Fields::new();
        p.insert("appid".into(), self.app_id.clone());
        p.insert("out_trade_no".into(), order_id.to_owned());
        p
    }

    /// `wx.requestPayment` params: paySign over exactly appId, nonceStr,
    /// package, signType, timeStamp with the config's sign type. `appId` is
    /// the AppID the payer is a user of ([`super::payer_app`]).
    fn jsapi_pay_data(
        &self,
        prepay_id: &str,
        timestamp: i64,
        nonce: &str,
        app_id: &str,
    ) -> serde_json::Value {
        let mut p = Fields::new();
        p.insert("appId".into(), app_id.to_owned());
        p.insert("timeStamp".into(), timestamp.to_string());
        p.insert("nonceStr".into(), nonce.to_owned());
        p.insert("package".into(), format!("prepay_id={prepay_id}"));
        p.insert("signType".into(), self.sign_type.as_str().into());
        let pay_sign = self.sign(&p, self.sign_type);
        json!({
            "appId": p["appId"],
            "timeStamp": p["timeStamp"],
            "nonceStr": p["nonceStr"],
            "package": p["package"],
            "signType": p["signType"],
            "paySign": pay_sign,
        })
    }

    /// The WeChat app SDK's `PayReq` fields, `sign` over the six others;
    /// for a sub-merchant its AppID and mch_id.
    fn app_pay_data(
        &self,
        prepay_id: &str,
        timestamp: i64,
        nonce: &str,
        sub: Option<&SubMerchant>,
    ) -> serde_json::Value {
        let mut p = Fields::new();
        p.insert(
            "appid".into(),
            sub.and_then(|s| s.sub_app_id.clone())
                .unwrap_or_else(|| self.app_id.clone()),
        );
        p.insert(
            "partnerid".into(),
            sub.map_or_else(|| self.mch_id.clone(), |s| s.sub_mch_id.clone()),
        );
        p.insert("prepayid".into(), prepay_id.to_owned());
        p.insert("package".into(), "Sign=WXPay".into());
        p.insert("noncestr".into(), nonce.to_owned());
        p.insert("timestamp".into(), timestamp.to_string());
        let sign = self.sign(&p, self.sign_type);
        let mut v = json!(p);
        if let Some(o) = v.as_object_mut() {
            o.insert("sign".into(), json!(sign));
        }
        v
    }

    fn wap_name(&self) -> String {
        Url::parse(&self.public_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| "cashdesk".into())
    }
}

/// `return_code` FAIL: a communication-level refusal, described only in
/// `return_msg` (e.g. 签名错误, appid和mch_id不匹配, SYSTEMERROR).
fn return_failure(path: &str, msg: &str) -> ChannelError {
    let upper = msg.to_ascii_uppercase();
    let message = format!("{path}: {msg}");
    if upper.contains("SYSTEMERROR") || msg.contains("系统") {
        ChannelError::retryable(Some("SYSTEMERROR".into()), message)
    } else if upper.contains("SIGN")
        || msg.contains("签名")
        || msg.contains("mch_id")
        || msg.contains("appid")
    {
        ChannelError::config(message)
    } else {
        ChannelError::business("FAIL", message)
    }
}

/// `result_code` FAIL as an error, classified by `err_code`.
fn result_failure(path: &str, fields: &Fields) -> ChannelError {
    let code = fields.get("err_code").map_or("FAIL", String::as_str);
    let msg = fields.get("err_code_des").map_or(code, String::as_str);
    match code {
        "SYSTEMERROR" | "BIZERR_NEED_RETRY" | "FREQUENCY_LIMITED" | "FREQ_LIMIT" => {
            ChannelError::retryable(Some(code.to_owned()), format!("{path}: {code}: {msg}"))
        }
        "SIGNERROR"
        | "APPID_NOT_EXIST"
        | "MCHID_NOT_EXIST"
        | "APPID_MCHID_NOT_MATCH"
        | "NOAUTH"
        | "CERT_ERROR" => ChannelError::config(format!("{path}: {code}: {msg}")),
        _ => ChannelError::business(code, msg),
    }
}

/// `Ok` when `result_code` is SUCCESS; `Err(err_code)` when FAIL with a code;
/// a missing `result_code` is a bad response.
fn result_code<'a>(path: &str, fields: &'a Fields) -> Result<Result<(), &'a str>, ChannelError> {
    match fields.get("result_code").map(String::as_str) {
        Some("SUCCESS") => Ok(Ok(())),
        Some(_) => Ok(Err(fields.get("err_code").map_or("FAIL", String::as_str))),
        None => Err(ChannelError::bad_response(format!(
            "{path}: no result_code"
        ))),
    }
}

fn need<'a>(path: &str, fields: &'a Fields, name: &str) -> Result<&'a str, ChannelError> {
    fields
        .get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ChannelError::bad_response(format!("{path}: response has no {name}")))
}

fn fen(path: &str, fields: &Fields, name: &str) -> Result<Fen, ChannelError> {
    let raw = need(path, fields, name)?;
    raw.parse::<i64>()
        .ok()
        .and_then(|v| Fen::parse_positive("amount", v).ok())
        .ok_or_else(|| {
            ChannelError::bad_response(format!("{path}: {name} `{raw}` is not an amount in fen"))
        })
}

fn refund_outcome(status: &str) -> Option<RefundOutcome> {
    match status {
        "SUCCESS" => Some(RefundOutcome::Success),
        "PROCESSING" => Some(RefundOutcome::Processing),
        "REFUNDCLOSE" => Some(RefundOutcome::Closed),
        "CHANGE" => Some(RefundOutcome::Abnormal),
        _ => None,
    }
}

#[async_trait]
impl Channel for WxPayV2 {
    fn channel_type(&self) -> ChannelType {
        ChannelType::WxPay
    }
    fn api_version(&self) -> &'static str {
        "v2"
    }
    fn mch_id(&self) -> &str {
        &self.mch_id
    }
    fn scenes(&self) -> &'static [SceneCode] {
        super::SCENES
    }

    async fn create_payment(&self, req: &PayRequest) -> Result<PayResponse, ChannelError> {
        const PATH: &str = "pay/unifiedorder";
        let kind = TradeKind::for_scene(req.scene)?;
        let sub = SubMerchant::of(req.store.as_ref())?;
        let mut p = self.base_params(req.order_id.as_str());
        p.insert(
            "body".into(),
            truncate_bytes(&req.description, 128).to_owned(),
        );
        p.insert("total_fee".into(), req.amount.get().to_string());
        p.insert("notify_url".into(), self.notify_url.clone());
        let ip = match (&req.client_ip, kind) {
            (Some(ip), _) if !ip.trim().is_empty() => ip.trim().to_owned(),
            (_, TradeKind::H5) => {
                return Err(ChannelError::invalid_request(
                    "clientIp is required for the h5 scene",
                ));
            }
            // WeChat requires the field; for server-initiated scenes it is
            // the caller's machine.
            _ => "127.0.0.1".to_owned(),
        };
        p.insert("spbill_create_ip".into(), ip);
        if let Some(t) = req.expire_at {
            p.insert("time_expire".into(), to_compact(t));
        }
        if let Some(a) = &req.attach {
            p.insert("attach".into(), truncate_bytes(a, 127).to_owned());
        }
        let mut payer_app_id = self.app_id.clone();
        let trade_type = match kind {
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
                // A user of the store's own AppID is its `sub_openid`; of
                // the config's (the service provider's), its `openid`.
                let (app_id, of_store) =
                    super::payer_app(&self.app_id, sub.as_ref(), req.payer_app_id.as_deref())?;
                let key = if of_store { "sub_openid" } else { "openid" };
                p.insert(key.into(), openid.to_owned());
                payer_app_id = app_id;
                "JSAPI"
            }
            TradeKind::Native => {
                p.insert("product_id".into(), req.order_id.as_str().to_owned());
                "NATIVE"
            }
            TradeKind::H5 => {
                let scene_info = json!({"h5_info": {"type": "Wap", "wap_url": self.public_url, "wap_name": self.wap_name()}});
                p.insert("scene_info".into(), scene_info.to_string());
                "MWEB"
            }
            TradeKind::App => "APP",
        };
        p.insert("trade_type".into(), trade_type.into());
        let fields = self.call(false, PATH, p, sub.as_ref()).await?;
        if result_code(PATH, &fields)?.is_err() {
            return Err(result_failure(PATH, &fields));
        }
        let prepay_id = need(PATH, &fields, "prepay_id")?.to_owned();
        let (now, nonce) = (chrono::Utc::now().timestamp(), nonce_str(32));
        let pay_data = match kind {
            TradeKind::Jsapi => self.jsapi_pay_data(&prepay_id, now, &nonce, &payer_app_id),
            TradeKind::Native => json!({"codeUrl": need(PATH, &fields, "code_url")?}),
            TradeKind::H5 => json!({"h5Url": need(PATH, &fields, "mweb_url")?}),
            TradeKind::App => self.app_pay_data(&prepay_id, now, &nonce, sub.as_ref()),
        };
        Ok(PayResponse {
            pay_data,
            prepay_id: Some(prepay_id),
        })
    }

    async fn query(&self, req: &QueryRequest) -> Result<ChannelOrderStatus, ChannelError> {
        const PATH: &str = "pay/orderquery";
        let sub = SubMerchant::of(req.store.as_ref())?;
        let fields = self
            .call(
                false,
                PATH,
                self.base_params(req.order_id.as_str()),
                sub.as_ref(),
            )
            .await?;
        match result_code(PATH, &fields)? {
            Ok(()) => {}
            Err("ORDERNOTEXIST") => return Ok(ChannelOrderStatus::NotFound),
            Err(_) => return Err(result_failure(PATH, &fields)),
        }
        if let Some(no) = fields.get("out_trade_no")
            && no != req.order_id.as_str()
        {
            return Err(ChannelError::bad_response(format!(
                "{PATH}: answer is for out_trade_no {no}"
            )));
        }
        let state = need(PATH, &fields, "trade_state")?;
        let paid = || -> Result<PaidInfo, ChannelError> {
            let amount = fen(PATH, &fields, "total_fee")?;
            if amount != req.amount {
                return Err(ChannelError::bad_response(format!(
                    "{PATH}: paid amount {amount} fen differs from the order amount {} fen",
                    req.amount
                )));
            }
            let time_end = need(PATH, &fields, "time_end")?;
            Ok(PaidInfo {
                transaction_id: need(PATH, &fields, "transaction_id")?.to_owned(),
                pay_time: parse_compact(time_end).ok_or_else(|| {
                    ChannelError::bad_response(format!(
                        "{PATH}: time_end `{time_end}` is not a time"
                    ))
                })?,
                amount,
            })
        };
        Ok(match state {
            "SUCCESS" => ChannelOrderStatus::Paid(paid()?),
            "REFUND" => ChannelOrderStatus::Refunded(paid()?),
            "NOTPAY" => ChannelOrderStatus::NotPaid,
            "USERPAYING" | "ACCEPT" => ChannelOrderStatus::Paying,
            "CLOSED" | "REVOKED" => ChannelOrderStatus::Closed,
            "PAYERROR" => ChannelOrderStatus::Failed {
                code: "PAYERROR".into(),
                message: fields.get("trade_state_desc").cloned().unwrap_or_default(),
            },
            other => ChannelOrderStatus::Unknown {
                state: other.to_owned(),
            },
        })
    }

    async fn close(&self, req: &CloseRequest) -> Result<(), ChannelError> {
        const PATH: &str = "pay/closeorder";
        let sub = SubMerchant::of(req.store.as_ref())?;
        let fields = self
            .call(
                false,
                PATH,
                self.base_params(req.order_id.as_str()),
                sub.as_ref(),
            )
            .await?;
        match result_code(PATH, &fields)? {
            Ok(()) | Err("ORDERCLOSED") => Ok(()),
            Err(_) => Err(result_failure(PATH, &fields)),
        }
    }

    async fn refund(&self, req: &RefundRequest) -> Result<RefundStatus, ChannelError> {
        const PATH: &str = "secapi/pay/refund";
        let sub = SubMerchant::of(req.store.as_ref())?;
        let mut p = self.base_params(req.order_id.as_str());
        p.insert("out_refund_no".into(), req.refund_id.as_str().to_owned());
        p.insert("total_fee".into(), req.order_amount.get().to_string());
        p.insert("refund_fee".into(), req.refund_amount.get().to_string());
        p.insert("notify_url".into(), self.notify_url.clone());
        if let Some(r) = req.reason.as_deref().filter(|r| !r.trim().is_empty()) {
            p.insert("refund_desc".into(), truncate_bytes(r, 80).to_owned());
        }
        let fields = self.call(true, PATH, p, sub.as_ref()).await?;
        if result_code(PATH, &fields)?.is_err() {
            return Err(result_failure(PATH, &fields));
        }
        if let Some(no) = fields.get("out_refund_no")
            && no != req.refund_id.as_str()
        {
            return Err(ChannelError::bad_response(format!(
                "{PATH}: answer is for out_refund_no {no}"
            )));
        }
        Ok(RefundStatus {
            // Accepted: the outcome comes by notification or refund query.
            outcome: RefundOutcome::Processing,
            channel_refund_id: fields.get("refund_id").cloned(),
            refund_amount: Some(fen(PATH, &fields, "refund_fee")?),
            success_time: None,
        })
    }

    async fn query_refund(&self, req: &RefundQueryRequest) -> Result<RefundStatus, ChannelError> {
        const PATH: &str = "pay/refundquery";
        let sub = SubMerchant::of(req.store.as_ref())?;
        let mut p = Fields::new();
        p.insert("appid".into(), self.app_id.clone());
        p.insert("out_refund_no".into(), req.refund_id.as_str().to_owned());
        let fields = self.call(false, PATH, p, sub.as_ref()).await?;
        if result_code(PATH, &fields)?.is_err() {
            return Err(result_failure(PATH, &fields));
        }
        // Refunds are listed as field_$n; find ours.
        let count: usize = need(PATH, &fields, "refund_count")?.parse().map_err(|_| {
            ChannelError::bad_response(format!("{PATH}: refund_count is not a number"))
        })?;
        let n = (0..count.min(50))
            .find(|n| {
                fields
                    .get(&format!("out_refund_no_{n}"))
                    .map(String::as_str)
                    == Some(req.refund_id.as_str())
            })
            .ok_or_else(|| {
                ChannelError::bad_response(format!(
                    "{PATH}: answer does not list {}",
                    req.refund_id
                ))
            })?;
        let status = need(PATH, &fields, &format!("refund_status_{n}"))?;
        let outcome = refund_outcome(status).ok_or_else(|| {
            ChannelError::bad_response(format!("{PATH}: unknown refund_status `{status}`"))
        })?;
        let success_time = match fields.get(&format!("refund_success_time_{n}")) {
            Some(t) if !t.is_empty() => Some(parse_cn_datetime(t).ok_or_else(|| {
                ChannelError::bad_response(format!("{PATH}: refund_success_time `{t}`"))
            })?),
            _ => None,
        };
        Ok(RefundStatus {
            outcome,
            channel_refund_id: fields.get(&format!("refund_id_{n}")).cloned(),
            refund_amount: Some(fen(PATH, &fields, &format!("refund_fee_{n}"))?),
            success_time,
        })
    }

    fn parse_notification(
        &self,
        n: &IncomingNotification,
    ) -> Result<VerifiedNotification, NotifyError> {
        if n.body.is_empty() {
            return Err(NotifyError::malformed("empty body"));
        }
        let fields = xml::parse_flat(&n.body).map_err(|e| NotifyError::malformed(e.to_string()))?;
        if fields.contains_key("req_info") {
            self.parse_refund_notification(&fields)
        } else {
            self.parse_pay_notification(&fields)
        }
    }

    fn check_merchant(
        &self,
        notified: &NotifiedMerchant,
        store: Option<&StoreMerchant>,
    ) -> Result<(), NotifyError> {
        super::check_sub_merchant(notified, store, "sub_mch_id", "sub_appid")
    }

    fn notification_reply(&self, ok: bool) -> NotificationReply {
        let (code, msg) = if ok {
            ("SUCCESS", "OK")
        } else {
            ("FAIL", "FAIL")
        };
        NotificationReply {
            status: 200,
            content_type: Some("text/xml; charset=utf-8"),
            body: format!(
                "<xml><return_code><![CDATA[{code}]]></return_code><return_msg><![CDATA[{msg}]]></return_msg></xml>"
            ),
        }
    }
}

fn notify_field<'a>(fields: &'a Fields, name: &str) -> Result<&'a str, NotifyError> {
    fields
        .get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| NotifyError::malformed(format!("no {name}")))
}

fn notify_fen(fields: &Fields, name: &str) -> Result<Fen, NotifyError> {
    let raw = notify_field(fields, name)?;
    raw.parse::<i64>()
        .ok()
        .and_then(|v| Fen::parse_positive("amount", v).ok())
        .ok_or_else(|| NotifyError::malformed(format!("{name} `{raw}` is not an amount in fen")))
}

/// The sub-merchant fields of a (partner) notification.
fn sub_merchant_of(fields: &Fields) -> NotifiedMerchant {
    NotifiedMerchant::from_fields(&["sub_mch_id", "sub_appid"], |n| {
        fields.get(n).map(String::as_str)
    })
}

impl WxPayV2 {
    fn check_identity(&self, fields: &Fields) -> Result<(), NotifyError> {
        let appid = fields.get("appid").map_or("", String::as_str);
        if appid != self.app_id {
            return Err(NotifyError::mismatch(format!(
                "appid `{appid}` is not this config's"
            )));
        }
        let mch_id = fields.get("mch_id").map_or("", String::as_str);
        if mch_id != self.mch_id {
            return Err(NotifyError::mismatch(format!(
                "mch_id `{mch_id}` is not this config's"
            )));
        }
        Ok(())
    }

    fn parse_pay_notification(&self, fields: &Fields) -> Result<VerifiedNotification, NotifyError> {
        // Signature first: nothing unauthenticated is looked at further.
        let kind = match fields.get("sign_type") {
            Some(s) => WxSignType::parse(s)
                .ok_or_else(|| NotifyError::malformed(format!("unknown sign_type `{s}`")))?,
            None => self.sign_type,
        };
        if !fields.contains_key("sign") {
            return Err(NotifyError::unverifiable("no sign"));
        }
        if !wxv2::verify(fields, self.api_key.expose(), kind) {
            return Err(NotifyError::unverifiable("signature does not verify"));
        }
        if fields.get("return_code").map(String::as_str) != Some("SUCCESS") {
            return Err(NotifyError::malformed("return_code is not SUCCESS"));
        }
        self.check_identity(fields)?;
        let out_trade_no = notify_field(fields, "out_trade_no")?.to_owned();
        let result = match notify_field(fields, "result_code")? {
            "SUCCESS" => {
                let time_end = notify_field(fields, "time_end")?;
                PaymentResult::Paid(PaidInfo {
                    transaction_id: notify_field(fields, "transaction_id")?.to_owned(),
                    pay_time: parse_compact(time_end).ok_or_else(|| {
                        NotifyError::malformed(format!("time_end `{time_end}` is not a time"))
                    })?,
                    amount: notify_fen(fields, "total_fee")?,
                })
            }
            _ => {
                let code = fields
                    .get("err_code")
                    .cloned()
                    .unwrap_or_else(|| "FAIL".into());
                PaymentResult::Failed {
                    message: fields
                        .get("err_code_des")
                        .cloned()
                        .unwrap_or_else(|| code.clone()),
                    code,
                }
            }
        };
        Ok(VerifiedNotification::Payment(PaymentNotification {
            out_trade_no,
            result,
            merchant: sub_merchant_of(fields),
            attach: fields.get("attach").filter(|a| !a.is_empty()).cloned(),
        }))
    }

    fn parse_refund_notification(
        &self,
        fields: &Fields,
    ) -> Result<VerifiedNotification, NotifyError> {
        if fields.get("return_code").map(String::as_str) != Some("SUCCESS") {
            return Err(NotifyError::malformed("return_code is not SUCCESS"));
        }
        self.check_identity(fields)?;
        let plain =
            wxv2::decrypt_req_info(self.api_key.expose(), notify_field(fields, "req_info")?)
                .map_err(|_| {
                    NotifyError::unverifiable(
                        "req_info does not decrypt with this config's API key",
                    )
                })?;
        let inner = xml::parse_flat(plain.as_bytes()).map_err(|e| {
            NotifyError::unverifiable(format!("decrypted req_info is not the refund XML: {e}"))
        })?;
        let status = notify_field(&inner, "refund_status")?;
        let outcome = refund_outcome(status)
            .ok_or_else(|| NotifyError::malformed(format!("unknown refund_status `{status}`")))?;
        let success_time = match inner.get("success_time") {
            Some(t) if !t.is_empty() => Some(parse_cn_datetime(t).ok_or_else(|| {
                NotifyError::malformed(format!("success_time `{t}` is not a time"))
            })?),
            _ => None,
        };
        Ok(VerifiedNotification::Refund(RefundNotification {
            out_trade_no: notify_field(&inner, "out_trade_no")?.to_owned(),
            out_refund_no: notify_field(&inner, "out_refund_no")?.to_owned(),
            channel_refund_id: inner.get("refund_id").cloned(),
            transaction_id: inner.get("transaction_id").cloned(),
            outcome,
            refund_amount: notify_fen(&inner, "refund_fee")?,
            order_amount: notify_fen(&inner, "total_fee").ok(),
            success_time,
            merchant: sub_merchant_of(fields),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::HttpSettings;

    // PROTOCOLS.md vectors.
    const VECTOR_KEY: &str = "192006250b4c09247ec02edce69f6a2d";
    const VECTOR_APPID: &str = "wxd930ea5d5a258f4f";

    fn adapter(sign_type: &str) -> WxPayV2 {
        let creds = V2Credentials::parse(&json!({
            "appId": VECTOR_APPID, "apiKey": VECTOR_KEY, "signType": sign_type
        }))
        .unwrap();
        let env = ChannelEnv {
            public_url: "https://pay.example.com".into(),
            notify_url: "https://pay.example.com/api/cashier-desk/notify/C1".into(),
            http: HttpSettings::default(),
            extra_root_ca_pems: vec![],
        };
        WxPayV2::new(
            "10000100",
            creds,
            Url::parse(super::super::PRODUCTION_BASE_URL).unwrap(),
            &env,
        )
        .unwrap()
    }

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn vector_param_signature_md5_and_hmac() {
        let p = fields(&[
            ("appid", VECTOR_APPID),
            ("mch_id", "10000100"),
            ("device_info", "1000"),
            ("body", "test"),
            ("nonce_str", "ibuaiVcKdpRxkhJA"),
        ]);
        assert_eq!(
            wxv2::string_a(&p),
            "appid=wxd930ea5d5a258f4f&body=test&device_info=1000&mch_id=10000100&nonce_str=ibuaiVcKdpRxkhJA"
        );
        assert_eq!(
            adapter("MD5").sign(&p, WxSignType::Md5),
            "9A0A8659F005D6984697E2CA0A9CF3B7"
        );
        assert_eq!(
            adapter("HMAC-SHA256").sign(&p, WxSignType::HmacSha256),
            "6A9AE1657590FD6257D693A078E1C3E4BB6BA4DC30B23E0EE2496E54170DACD6"
        );
        // `sign` and empty values are not signed.
        let mut with_extra = p.clone();
        with_extra.insert("sign".into(), "X".into());
        with_extra.insert("attach".into(), String::new());
        assert_eq!(
            wxv2::sign(&with_extra, VECTOR_KEY, WxSignType::Md5),
            "9A0A8659F005D6984697E2CA0A9CF3B7"
        );
    }

    #[test]
    fn vector_request_payment_pay_sign() {
        let prepay = "wx2017033010242291fcfe0db70013231072";
        let nonce = "5K8264ILTKCH16CQ2502SI8ZNMTM67VS";
        let md5 = adapter("MD5").jsapi_pay_data(prepay, 1490840662, nonce, VECTOR_APPID);
        assert_eq!(
            md5,
            json!({
                "appId": VECTOR_APPID, "timeStamp": "1490840662", "nonceStr": nonce,
                "package": "prepay_id=wx2017033010242291fcfe0db70013231072", "signType": "MD5",
                "paySign": "A3C4993E71916E54AE93F5D2B1E888AF"
            })
        );
        let hmac = adapter("HMAC-SHA256").jsapi_pay_data(prepay, 1490840662, nonce, VECTOR_APPID);
        assert_eq!(hmac["signType"], "HMAC-SHA256");
        assert_eq!(
            hmac["paySign"],
            "15FC5558B3F2A6AF14B8C4FEB53F8D822E04051B2C788ECDD0ABA657F9EA5A06"
        );
    }

    #[test]
    fn app_params_are_signed_over_the_six_fields() {
        let a = adapter("MD5");
        let v = a.app_pay_data("wx201", 1490840662, "abc", None);
        let obj = v.as_object().unwrap();
        let mut p: Fields = obj
            .iter()
            .filter(|(k, _)| *k != "sign")
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect();
        assert_eq!(
            p.keys().map(String::as_str).collect::<Vec<_>>(),
            [
                "appid",
                "noncestr",
                "package",
                "partnerid",
                "prepayid",
                "timestamp"
            ]
        );
        assert_eq!(p["package"], "Sign=WXPay");
        assert_eq!(p["partnerid"], "10000100");
        p.insert("sign".into(), obj["sign"].as_str().unwrap().to_owned());
        assert!(wxv2::verify(&p, VECTOR_KEY, WxSignType::Md5));
    }

    #[test]
    fn vector_refund_notify_key() {
        let key = wxv2::refund_notify_key("OF4Ne3znh8KqL0V4NqmALQa0uXMYKcEk");
        assert_eq!(&key, b"63dfc0c1f53d9bc83a8fdc365b8141da");
        let xml = "<root><out_refund_no><![CDATA[R1]]></out_refund_no></root>";
        let enc = wxv2::encrypt_req_info("OF4Ne3znh8KqL0V4NqmALQa0uXMYKcEk", xml);
        assert_eq!(
            wxv2::decrypt_req_info("OF4Ne3znh8KqL0V4NqmALQa0uXMYKcEk", &enc).unwrap(),
            xml
        );
    }

    #[test]
    fn replies() {
        let a = adapter("MD5");
        assert_eq!(
            a.notification_reply(true).body,
            "<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDATA[OK]]></return_msg></xml>"
        );
        assert!(a.notification_reply(false).body.contains("FAIL"));
    }
}
