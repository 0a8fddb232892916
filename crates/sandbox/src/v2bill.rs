//! WeChat Pay v2 `POST /sandbox/wechat/pay/downloadbill` (PROTOCOLS-2
//! §1.2): XML with `appid`, `mch_id`, `nonce_str`, `sign`, [`sign_type`],
//! `bill_date` (`yyyyMMdd`), [`bill_type` ALL|SUCCESS|REFUND],
//! [`tar_type` GZIP], and for a service provider [`sub_mch_id`] (one of its
//! sub-merchants; absent: all of them). Signed like every v2 call (MD5 or
//! HMAC-SHA256); no client certificate.
//!
//! Success: the body **is** the bill — the same text as v3's
//! ([`crate::v3::billtext`]) or its gzip — not XML, unsigned. Every failure
//! is `<xml><return_code>FAIL</return_code><return_msg>…</return_msg>
//! <error_code>…</error_code></xml>` (all in CDATA, `error_code` not
//! `err_code`):
//!
//! - `No Bill Exist` / `20002`: no line that day (a normal, empty day);
//! - `Bill Creating` / `20003`: the `BILL_GENERATING` fault. WeChat's v2
//!   doc lists "Bill Creating 账单未生成" among downloadbill's errors; its
//!   numeric `error_code` is not published (20003 is the sandbox's,
//!   UNCONFIRMED) — a client should go by `return_msg`;
//! - `invalid bill_date` / `20001` (malformed, today or later, older than
//!   three months), `invalid bill_type`, `invalid tar_type`, missing
//!   parameters (`20001`); `Signature Error` / `20001` and unknown
//!   merchants likewise (UNCONFIRMED codes; the observed answers use 20001
//!   for request errors).
//!
//! Call faults (`SYSTEMERROR`, `HTTP_500`, `TIMEOUT`) apply as on every v2
//! path; `SYSTEMERROR` is `return_msg=SYSTEMERROR`, `error_code=20007`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use cashdesk_crypto::wxv2::{self, WxSignType};

use crate::bills::{self, Book, Made};
use crate::faults::FaultKind;
use crate::reqlog::NewEntry;
use crate::v3::billtext::{self, BillType};
use crate::{Shared, xml};

const PATH: &str = "/sandbox/wechat/pay/downloadbill";

pub fn router() -> Router<Arc<Shared>> {
    Router::new().route(PATH, post(download_bill))
}

/// A `return_code=FAIL` answer: `return_msg`, `error_code`.
struct Fail(String, &'static str);

fn fail(msg: impl Into<String>, code: &'static str) -> Fail {
    Fail(msg.into(), code)
}

fn cdata(v: &str) -> String {
    format!("<![CDATA[{}]]>", v.replace("]]>", "]]]]><![CDATA[>"))
}

fn fail_response(f: &Fail) -> Response {
    let text = format!(
        "<xml><return_code>{}</return_code><return_msg>{}</return_msg><error_code>{}</error_code></xml>",
        cdata("FAIL"),
        cdata(&f.0),
        cdata(f.1)
    );
    let mut resp = (StatusCode::OK, text).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml; charset=utf-8"),
    );
    resp
}

async fn download_bill(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let text = String::from_utf8_lossy(&body);
    let parsed = xml::parse(&text);
    let mch_hint = parsed
        .as_ref()
        .ok()
        .and_then(|p| p.get("sub_mch_id").or_else(|| p.get("mch_id")))
        .cloned();
    let log = |result: &str, detail: Option<String>| {
        s.log.push(NewEntry {
            kind: "api",
            method: "POST",
            target: PATH,
            mch_id: mch_hint.as_deref(),
            status: 200,
            result,
            detail,
            request_body: Some(&text),
        })
    };
    if let Some(fault) = s.faults.take_call(mch_hint.as_deref(), PATH) {
        let resp = match fault.kind {
            FaultKind::SystemError => fail_response(&fail("SYSTEMERROR", "20007")),
            _ => crate::faults::bare_reply(fault).await,
        };
        log("FAULT", Some(format!("{:?}", fault.kind)));
        return resp;
    }
    let outcome = match parsed {
        Ok(p) => bill(&s, &p),
        Err(e) => Err(fail(format!("XML格式错误: {e}"), "20001")),
    };
    match outcome {
        Ok(bytes) => {
            log("SUCCESS", None);
            let mut resp = (StatusCode::OK, bytes).into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            resp
        }
        Err(f) => {
            log(f.1, Some(f.0.clone()));
            fail_response(&f)
        }
    }
}

fn bill(s: &Shared, p: &BTreeMap<String, String>) -> Result<Vec<u8>, Fail> {
    let get = |k: &str| p.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let mch_id = get("mch_id").ok_or_else(|| fail("missing parameter mch_id", "20001"))?;
    let m = s
        .merchants
        .get(mch_id)
        .ok_or_else(|| fail("invalid mch_id", "20001"))?;
    let sign_type = match get("sign_type") {
        None => WxSignType::Md5,
        Some(t) => WxSignType::parse(t).ok_or_else(|| fail("invalid sign_type", "20001"))?,
    };
    if !wxv2::verify(p, &m.api_key, sign_type) {
        return Err(fail("Signature Error", "20001"));
    }
    if get("appid") != Some(m.app_id.as_str()) {
        return Err(fail("appid and mch_id not match", "20001"));
    }
    if get("nonce_str").is_none_or(|n| n.len() > 32) {
        return Err(fail("invalid nonce_str", "20001"));
    }
    let date = get("bill_date").ok_or_else(|| fail("missing parameter bill_date", "20001"))?;
    let now = s.now();
    let day = crate::v3::bill_day(date, "%Y%m%d", 8, now)
        .map_err(|_| fail("invalid bill_date", "20001"))?;
    let bill_type = match get("bill_type") {
        None => BillType::All,
        Some(t) => BillType::parse(t).ok_or_else(|| fail("invalid bill_type", "20001"))?,
    };
    let gzip = match get("tar_type") {
        None => false,
        Some("GZIP") => true,
        Some(_) => return Err(fail("invalid tar_type", "20001")),
    };
    let sub = match (m.service_provider, get("sub_mch_id")) {
        (true, Some(id)) => Some(
            s.merchants
                .sub_of(&m.mch_id, id)
                .ok_or_else(|| fail("invalid sub_mch_id", "20001"))?
                .mch_id
                .clone(),
        ),
        (false, Some(_)) => return Err(fail("invalid sub_mch_id", "20001")),
        (_, None) => None,
    };
    let book = if m.service_provider {
        Book::WechatPartner {
            sp_mch_id: &m.mch_id,
            sub_mch_id: sub.as_deref(),
        }
    } else {
        Book::Wechat { mch_id: &m.mch_id }
    };
    let bill = match bills::make(s, book, day, &m.app_id) {
        Made::Generating => return Err(fail("Bill Creating", "20003")),
        Made::Bill(b) => b,
    };
    let text = billtext::render(&bill, bill_type, &m.mch_id)
        .ok_or_else(|| fail("No Bill Exist", "20002"))?;
    Ok(if gzip { billtext::gzip(&text) } else { text })
}
