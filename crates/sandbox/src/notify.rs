//! Notifications to the merchant's `notify_url`, as WeChat sends them.
//!
//! A service provider's (partner) orders are notified as WeChat does:
//! signed with the service provider's keys, `appid`/`mch_id` the service
//! provider's, plus `sub_mch_id` (and `sub_appid`, `sub_openid`); v3
//! resources carry `sp_appid`, `sp_mchid`, `sub_appid`, `sub_mchid`.
//!
//! - v2 pay: XML signed with the merchant's API key and the order's sign
//!   type; `sign_type` itself is not sent (the receiver must use the type the
//!   order was made with). Acknowledged by an XML body whose `return_code` is
//!   `SUCCESS`.
//! - v2 refund: `return_code`, `appid`, `mch_id`, `nonce_str` and `req_info`
//!   (the refund fields in a `<root>` XML, AES-256-ECB under md5(API key)),
//!   no signature. Same acknowledgement.
//! - v3: JSON `{id, create_time, event_type, resource_type, summary,
//!   resource{algorithm: AEAD_AES_256_GCM, ciphertext, associated_data,
//!   original_type, nonce}}` encrypted under the APIv3 key, with the platform
//!   signature headers computed afresh for every attempt (the receiver
//!   checks the timestamp). Acknowledged by HTTP 200 or 204.
//!
//! - Alipay: a signed form POST (built by [`crate::alipay`]), acknowledged
//!   only by HTTP 200 with the body `success` (surrounding whitespace is
//!   tolerated, case is not).
//! - Lakala: a JSON POST whose `Authorization: LKLAPI-SHA256withRSA
//!   timestamp=…,nonce_str=…,signature=…` is computed afresh per attempt
//!   with Lakala's notify key; acknowledged by HTTP 200 with a JSON body
//!   whose `code` is `SUCCESS`.
//!
//! The body is built once (faults that tamper with it apply then); the sender
//! task makes the first attempt (after an injected delay), then retries on
//! the channel's schedule ([`Schedules`]: WeChat's 15s/15s/30s/3m/…/6h,
//! Alipay's 4m/10m/10m/1h/2h/6h/15h, Lakala's — see [`crate::lakala`] —
//! scaled in tests) until acknowledged. Duplicate copies go out
//! concurrently per attempt.
//!
//! Every attempt first checks the target against the notify policy
//! ([`crate::targets`]; the order was checked when it was made, but the
//! policy may have changed since, e.g. across a restart): a refused
//! target ends the delivery (logged `REFUSED`). The client follows no
//! redirects and pins `localhost` to 127.0.0.1. What the target answers is
//! read only to decide whether it acknowledged (at most [`REPLY_LIMIT`]
//! bytes) and is never kept: the request log holds the status, the
//! latency and the outcome.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use cashdesk_crypto::wxv2::{self, WxSignType};
use chrono::Utc;
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::Shared;
use crate::faults::NotifyFaults;
use crate::ledger::{Order, PartnerOrder, Refund};
use crate::merchants::Merchant;
use crate::reqlog::NewEntry;

/// How long one delivery attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// The most of a reply read to find the acknowledgement (every
/// channel's acknowledgement is a few dozen bytes).
pub const REPLY_LIMIT: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    V2,
    V3 {
        tamper_signature: bool,
    },
    /// A form body, already signed.
    Alipay,
    /// A JSON body, signed per attempt in the `Authorization` header.
    Lakala {
        tamper_signature: bool,
    },
}

/// Waits between attempts, per channel.
#[derive(Debug, Clone, Default)]
pub struct Schedules {
    pub wechat: Vec<Duration>,
    pub alipay: Vec<Duration>,
    pub lakala: Vec<Duration>,
}

impl Schedules {
    fn for_format(&self, f: Format) -> &[Duration] {
        match f {
            Format::V2 | Format::V3 { .. } => &self.wechat,
            Format::Alipay => &self.alipay,
            Format::Lakala { .. } => &self.lakala,
        }
    }
}

#[derive(Debug)]
pub struct Job {
    pub id: String,
    pub mch_id: String,
    /// The order the notification is about (for [`NotifyObservation`]).
    pub out_trade_no: String,
    pub url: String,
    /// `pay` or `refund`, for the log.
    pub what: &'static str,
    pub body: String,
    pub format: Format,
    pub copies: u32,
    pub delay: Duration,
}

/// One notification attempt as the sandbox saw it, for an in-process
/// observer ([`crate::SandboxConfig::notify_observer`]): `cashdesk bench`
/// times the channel-notification stage with it.
#[derive(Debug, Clone)]
pub struct NotifyObservation {
    /// `pay` or `refund`.
    pub kind: &'static str,
    pub mch_id: String,
    pub out_trade_no: String,
    /// When the request was sent and when its answer (or error) came.
    pub sent_at: std::time::Instant,
    pub answered_at: std::time::Instant,
    /// Whether the answer acknowledged it.
    pub acked: bool,
}

pub enum Msg {
    Send(Job),
    /// A refund was accepted: settle it and notify.
    CompleteRefund {
        mch_id: String,
        out_refund_no: String,
    },
}

/// Build a v2 pay notification body.
pub fn v2_pay(m: &Merchant, o: &Order, sign_type: WxSignType, faults: &NotifyFaults) -> String {
    let mut f = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        if !v.is_empty() {
            f.insert(k.to_owned(), v);
        }
    };
    let total = o.total + i64::from(faults.tamper_amount);
    put("return_code", "SUCCESS".into());
    put("appid", o.appid.clone());
    // The signer's mch_id: the service provider's for a partner order,
    // whose sub-merchant is named besides.
    put("mch_id", m.mch_id.clone());
    if let Some(p) = o.partner() {
        put("sub_mch_id", o.mch_id.clone());
        put("sub_appid", p.sub_app_id.clone().unwrap_or_default());
        put("sub_openid", p.sub_openid.clone().unwrap_or_default());
    }
    put("nonce_str", cashdesk_crypto::random::nonce_str(32));
    put("out_trade_no", o.out_trade_no.clone());
    put("total_fee", total.to_string());
    put("fee_type", "CNY".into());
    put("trade_type", o.trade_type.as_str().into());
    put("attach", o.attach.clone().unwrap_or_default());
    match o.paid() {
        Some((transaction_id, paid_at, openid)) => {
            put("result_code", "SUCCESS".into());
            put("transaction_id", transaction_id.to_owned());
            put("openid", openid.to_owned());
            put("is_subscribe", "N".into());
            put("bank_type", "OTHERS".into());
            put("cash_fee", total.to_string());
            put("time_end", cashdesk_core::time::to_compact(paid_at));
        }
        None => {
            put("result_code", "FAIL".into());
            put("err_code", "PAYERROR".into());
            put("err_code_des", "支付失败（沙箱模拟）".into());
            put("openid", o.openid.clone().unwrap_or_default());
        }
    }
    let mut sign = wxv2::sign(&f, &m.api_key, sign_type);
    if faults.tamper_signature {
        sign = tamper_hex(&sign);
    }
    f.insert("sign".into(), sign);
    crate::xml::render(&f)
}

/// Build a v2 refund notification body (`partner`: the order's
/// service-provider part, named in the outer fields).
pub fn v2_refund(
    m: &Merchant,
    r: &Refund,
    partner: Option<&PartnerOrder>,
    faults: &NotifyFaults,
) -> String {
    let amount = r.amount + i64::from(faults.tamper_amount);
    let success_time = r
        .success_at
        .map(cashdesk_core::time::to_cn_datetime)
        .unwrap_or_default();
    let mut inner = BTreeMap::new();
    for (k, v) in [
        ("out_refund_no", r.out_refund_no.clone()),
        ("out_trade_no", r.out_trade_no.clone()),
        ("refund_account", "REFUND_SOURCE_UNSETTLED_FUNDS".into()),
        ("refund_fee", amount.to_string()),
        ("refund_id", r.refund_id.clone()),
        ("refund_recv_accout", "支付用户零钱".into()),
        ("refund_request_source", "API".into()),
        ("refund_status", "SUCCESS".into()),
        ("settlement_refund_fee", amount.to_string()),
        ("settlement_total_fee", r.total.to_string()),
        ("success_time", success_time),
        ("total_fee", r.total.to_string()),
        ("transaction_id", r.transaction_id.clone()),
    ] {
        inner.insert(k.to_owned(), v);
    }
    let plain = crate::xml::render_with_root("root", &inner);
    let mut req_info = wxv2::encrypt_req_info(&m.api_key, &plain);
    if faults.tamper_signature {
        // No signature to break: corrupt the ciphertext instead.
        req_info = tamper_base64(&req_info);
    }
    let mut f = BTreeMap::new();
    f.insert("return_code".to_owned(), "SUCCESS".to_owned());
    f.insert("appid".to_owned(), m.app_id.clone());
    f.insert("mch_id".to_owned(), m.mch_id.clone());
    if let Some(p) = partner {
        f.insert("sub_mch_id".to_owned(), r.mch_id.clone());
        if let Some(a) = &p.sub_app_id {
            f.insert("sub_appid".to_owned(), a.clone());
        }
    }
    f.insert(
        "nonce_str".to_owned(),
        cashdesk_crypto::random::nonce_str(32),
    );
    f.insert("req_info".to_owned(), req_info);
    crate::xml::render(&f)
}

/// Build a v3 notification body around an encrypted resource.
pub fn v3_body(
    m: &Merchant,
    id: &str,
    event_type: &str,
    summary: &str,
    original_type: &str,
    plaintext: &serde_json::Value,
) -> anyhow::Result<String> {
    let nonce = cashdesk_crypto::random::nonce_str(12);
    let ciphertext = cashdesk_crypto::aead::aes_gcm_encrypt(
        m.api_v3_key.as_bytes(),
        nonce.as_bytes(),
        original_type.as_bytes(),
        plaintext.to_string().as_bytes(),
    )?;
    Ok(json!({
        "id": id,
        "create_time": cashdesk_core::time::to_rfc3339_cn(Utc::now()),
        "resource_type": "encrypt-resource",
        "event_type": event_type,
        "summary": summary,
        "resource": {
            "original_type": original_type,
            "algorithm": "AEAD_AES_256_GCM",
            "ciphertext": base64::engine::general_purpose::STANDARD.encode(ciphertext),
            "associated_data": original_type,
            "nonce": nonce,
        }
    })
    .to_string())
}

fn tamper_hex(s: &str) -> String {
    let mut chars: Vec<char> = s.chars().collect();
    if let Some(c) = chars.first_mut() {
        *c = if *c == '0' { '1' } else { '0' };
    }
    chars.into_iter().collect()
}

fn tamper_base64(s: &str) -> String {
    let mut bytes = base64::engine::general_purpose::STANDARD
        .decode(s)
        .unwrap_or_default();
    if let Some(b) = bytes.first_mut() {
        *b ^= 0x5a;
    }
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The sender task with one schedule for every channel.
pub async fn run(
    shared: Arc<Shared>,
    rx: mpsc::UnboundedReceiver<Msg>,
    schedule: Vec<Duration>,
    refund_settle: Duration,
    shutdown: watch::Receiver<bool>,
) {
    let schedules = Schedules {
        wechat: schedule.clone(),
        alipay: schedule.clone(),
        lakala: schedule,
    };
    run_channels(shared, rx, schedules, refund_settle, shutdown).await;
}

/// The sender task: owns every delivery in flight; ends (aborting them) on
/// shutdown.
pub async fn run_channels(
    shared: Arc<Shared>,
    mut rx: mpsc::UnboundedReceiver<Msg>,
    schedules: Schedules,
    refund_settle: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let client = match reqwest::Client::builder()
        .timeout(ATTEMPT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .resolve("localhost", crate::targets::pinned_localhost())
        .user_agent("Mozilla/4.0 (cashdesk payment channel sandbox)")
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "sandbox notifier cannot build its HTTP client");
            return;
        }
    };
    let schedules = Arc::new(schedules);
    let mut inflight = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            Some(_) = inflight.join_next(), if !inflight.is_empty() => {}
            msg = rx.recv() => match msg {
                None => break,
                Some(Msg::Send(job)) => {
                    inflight.spawn(deliver(shared.clone(), client.clone(), schedules.clone(), job));
                }
                Some(Msg::CompleteRefund { mch_id, out_refund_no }) => {
                    let shared = shared.clone();
                    inflight.spawn(async move {
                        tokio::time::sleep(refund_settle).await;
                        if let Some(r) = shared.ledger.complete_refund(&mch_id, &out_refund_no, shared.now()) {
                            shared.notify_refund(&r);
                        }
                    });
                }
            }
        }
    }
    inflight.abort_all();
}

async fn deliver(
    shared: Arc<Shared>,
    client: reqwest::Client,
    schedules: Arc<Schedules>,
    job: Job,
) {
    let schedule = schedules.for_format(job.format);
    if !job.delay.is_zero() {
        tokio::time::sleep(job.delay).await;
    }
    let attempts = schedule.len() + 1;
    for attempt in 0..attempts {
        if attempt > 0 {
            tokio::time::sleep(schedule[attempt - 1]).await;
        }
        if let Err(msg) = shared.notify_target_allowed(&job.url) {
            shared.log.push(NewEntry {
                kind: "notify",
                method: "POST",
                target: &job.url,
                mch_id: Some(&job.mch_id),
                status: 0,
                result: "REFUSED",
                detail: Some(format!(
                    "{} notification {} not sent: {msg}",
                    job.what, job.id
                )),
                request_body: None,
            });
            return;
        }
        let sends = (0..job.copies.max(1))
            .map(|copy| send_once(&shared, &client, &job, attempt + 1, attempts, copy + 1));
        let results = futures::future::join_all(sends).await;
        if results.into_iter().any(|acked| acked) {
            return;
        }
    }
    tracing::info!(id = %job.id, url = %job.url, "sandbox notification never acknowledged; giving up");
}

async fn send_once(
    shared: &Shared,
    client: &reqwest::Client,
    job: &Job,
    attempt: usize,
    attempts: usize,
    copy: u32,
) -> bool {
    let mut req = client.post(&job.url).body(job.body.clone());
    match job.format {
        Format::V2 => {
            req = req.header(reqwest::header::CONTENT_TYPE, "text/xml; charset=utf-8");
        }
        Format::V3 { tamper_signature } => {
            req = req.header(reqwest::header::CONTENT_TYPE, "application/json");
            for (name, value) in
                crate::v3::signature_headers(&shared.pki, job.body.as_bytes(), tamper_signature)
            {
                req = req.header(name, value);
            }
        }
        Format::Alipay => {
            req = req.header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded; charset=utf-8",
            );
        }
        Format::Lakala { tamper_signature } => {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(
                    reqwest::header::AUTHORIZATION,
                    crate::lakala::notify_authorization(
                        &shared.pki,
                        job.body.as_bytes(),
                        tamper_signature,
                    ),
                );
        }
    }
    let started = Instant::now();
    let (status, acked, error) = match req.send().await {
        Ok(resp) => {
            let status = resp.status();
            let text = read_reply(resp).await;
            let acked = match job.format {
                Format::V2 => {
                    status == reqwest::StatusCode::OK
                        && crate::xml::parse(&text)
                            .ok()
                            .is_some_and(|f| f.get("return_code").is_some_and(|c| c == "SUCCESS"))
                }
                Format::V3 { .. } => {
                    status == reqwest::StatusCode::OK || status == reqwest::StatusCode::NO_CONTENT
                }
                Format::Alipay => status == reqwest::StatusCode::OK && text.trim() == "success",
                Format::Lakala { .. } => {
                    status == reqwest::StatusCode::OK
                        && serde_json::from_str::<serde_json::Value>(&text)
                            .ok()
                            .is_some_and(|v| v["code"] == "SUCCESS")
                }
            };
            (status.as_u16(), acked, None)
        }
        Err(e) => (0, false, Some(send_error(&e))),
    };
    if let Some(observer) = &shared.notify_observer {
        let _ = observer.send(NotifyObservation {
            kind: job.what,
            mch_id: job.mch_id.clone(),
            out_trade_no: job.out_trade_no.clone(),
            sent_at: started,
            answered_at: Instant::now(),
            acked,
        });
    }
    shared.log.push(NewEntry {
        kind: "notify",
        method: "POST",
        target: &job.url,
        mch_id: Some(&job.mch_id),
        status,
        result: if acked { "ACKED" } else { "NOT_ACKED" },
        detail: Some(format!(
            "{} notification {} attempt {attempt}/{attempts} copy {copy}, {} ms{}",
            job.what,
            job.id,
            started.elapsed().as_millis(),
            error.map(|e| format!(", {e}")).unwrap_or_default()
        )),
        request_body: Some(&job.body),
    });
    acked
}

/// At most [`REPLY_LIMIT`] bytes of a reply, as text (lossy).
async fn read_reply(mut resp: reqwest::Response) -> String {
    let mut body = Vec::new();
    while body.len() < REPLY_LIMIT {
        match resp.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    body.truncate(REPLY_LIMIT);
    String::from_utf8_lossy(&body).into_owned()
}

/// What went wrong with a send, in words that say nothing of the target
/// beyond reachability.
fn send_error(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "no answer in time"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    }
}
