//! v3's trade bill: `GET /v3/bill/tradebill?bill_date=YYYY-MM-DD
//! [&sub_mchid=…][&bill_type=ALL|SUCCESS|REFUND][&tar_type=GZIP]` (a call
//! like any other: signed `Authorization`, signed answer) makes the day's
//! bill ([`crate::bills::make`], the bill faults used up now) and answers
//! `{"hash_type":"SHA1","hash_value":<SHA-1 of the text>,"download_url":
//! "<base>/v3/billdownload/file?token=…[&tartype=gzip]"}`; the link lives
//! five minutes ([`LINK_TTL`], WeChat's current doc) by the sandbox clock.
//! `<base>` is the base the apply came to: the plain mount, or the HTTPS
//! listener's base for an apply made there, so the link is on the host the
//! merchant configured.
//!
//! `GET /v3/billdownload/file?token=…` needs an `Authorization` of the
//! merchant that applied, signed over the link's path and query like any
//! GET, and answers the bill's bytes (gzip when the apply asked for it)
//! with **no** `Wechatpay-*` signature headers, as WeChat does (the client
//! checks the hash instead). Its errors are signed JSON like every v3
//! error: 401 `SIGN_ERROR`, 403 `NO_AUTH` (another merchant's link), 400
//! `INVALID_REQUEST` for an unknown or expired token (WeChat's wording for
//! that case is not published).
//!
//! Apply errors, as WeChat: 400 `NO_STATEMENT_EXIST` "请求的账单文件不存在"
//! (no line that day), 400 `STATEMENT_CREATING` "账单生成中" (the
//! `BILL_GENERATING` fault), 400 `PARAM_ERROR` (a malformed date, today or
//! later, more than three months ago; an unknown `bill_type` or
//! `tar_type`). A service provider may name one of its sub-merchants
//! (`sub_mchid`: that one's lines) or none (all of theirs); a direct
//! merchant may not name one (403 `NO_AUTH`).

use std::sync::Arc;

use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde_json::json;

use super::billtext::{self, BillType};
use super::flows::sub_of;
use super::sign::{signed, verify};
use super::wire::query_param;
use super::{Outcome, V3Error, err, param, parse_authorization, sign_error};
use crate::Shared;
use crate::bills::{self, Book, DayError, Made};
use crate::merchants::Merchant;
use crate::reqlog::NewEntry;

/// How long a download link lives.
pub const LINK_TTL: TimeDelta = TimeDelta::minutes(5);

/// `yyyy-MM-dd`, exactly.
fn parse_day(s: &str, format: &str, len: usize) -> Option<NaiveDate> {
    if s.len() != len || !s.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        return None;
    }
    NaiveDate::parse_from_str(s, format).ok()
}

/// A `bill_date` in `format` (`%Y-%m-%d` v3, `%Y%m%d` v2) with its
/// length; `Err` says why it has no bill, in WeChat's words.
pub(crate) fn bill_day(
    s: &str,
    format: &str,
    len: usize,
    now: DateTime<Utc>,
) -> Result<NaiveDate, String> {
    let day = parse_day(s, format, len).ok_or_else(|| format!("bill_date格式错误：{s}"))?;
    bills::check_day(day, now).map_err(|e| match e {
        DayError::NotOver => "bill_date不能是当天或以后的日期（账单次日生成）".to_owned(),
        DayError::TooOld => "bill_date只能是三个月以内的日期".to_owned(),
    })?;
    Ok(day)
}

pub(super) fn apply(
    s: &Shared,
    m: &Merchant,
    uri: &axum::http::Uri,
    via_tls: bool,
    now: DateTime<Utc>,
) -> Outcome {
    let date = query_param(uri, "bill_date").ok_or_else(|| param("bill_date为必填参数"))?;
    let day = bill_day(&date, "%Y-%m-%d", 10, now).map_err(param)?;
    let bill_type = match query_param(uri, "bill_type").filter(|t| !t.is_empty()) {
        None => BillType::All,
        Some(t) => BillType::parse(&t).ok_or_else(|| {
            param(format!(
                "bill_type取值错误（沙箱支持ALL、SUCCESS、REFUND）：{t}"
            ))
        })?,
    };
    let gzip = match query_param(uri, "tar_type").filter(|t| !t.is_empty()) {
        None => false,
        Some(t) if t == "GZIP" => true,
        Some(t) => return Err(param(format!("tar_type只支持GZIP：{t}"))),
    };
    let sub = query_param(uri, "sub_mchid").filter(|v| !v.is_empty());
    let sub = match (m.service_provider, sub) {
        (true, Some(id)) => Some(sub_of(s, m, &id)?.mch_id.clone()),
        (true, None) => None,
        (false, Some(_)) => {
            return Err(err(
                StatusCode::FORBIDDEN,
                "NO_AUTH",
                "非服务商商户号不能传sub_mchid",
            ));
        }
        (false, None) => None,
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
        Made::Generating => {
            return Err(err(
                StatusCode::BAD_REQUEST,
                "STATEMENT_CREATING",
                "账单生成中",
            ));
        }
        Made::Bill(b) => b,
    };
    let text = billtext::render(&bill, bill_type, &m.mch_id).ok_or_else(|| {
        err(
            StatusCode::BAD_REQUEST,
            "NO_STATEMENT_EXIST",
            "请求的账单文件不存在",
        )
    })?;
    let hash = billtext::sha1_hex(&text);
    let token = s.downloads.issue(&m.mch_id, text, gzip, LINK_TTL, now);
    // The link is on the base the merchant called (a client may accept
    // only links on its configured API host).
    let base = if via_tls {
        s.tls_base_url.clone()
    } else {
        s.base_url()
    };
    let download_url = format!(
        "{base}/v3/billdownload/file?token={token}{}",
        if gzip { "&tartype=gzip" } else { "" }
    );
    Ok((
        StatusCode::OK,
        Some(json!({
            "hash_type": "SHA1",
            "hash_value": hash,
            "download_url": download_url,
        })),
    ))
}

/// `GET /v3/billdownload/file`: see the module comment.
pub(super) async fn download(
    State(s): State<Arc<Shared>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let path_and_query = uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or(uri.path())
        .to_owned();
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(parse_authorization);
    let mch_hint = match &auth {
        Some(Ok(a)) => Some(a.mchid.clone()),
        _ => None,
    };
    let log = |status: StatusCode, result: &str, detail: Option<String>| {
        s.log.push(NewEntry {
            kind: "api",
            method: "GET",
            target: uri.path(),
            mch_id: mch_hint.as_deref(),
            status: status.as_u16(),
            result,
            detail,
            request_body: None,
        })
    };
    if let Some(fault) = s.faults.take_call(mch_hint.as_deref(), uri.path()) {
        let resp = super::fault_response(&s.pki, fault).await;
        log(resp.status(), "FAULT", Some(format!("{:?}", fault.kind)));
        return resp;
    }
    let found = (|| -> Result<bills::Download, V3Error> {
        let a = auth.ok_or_else(|| sign_error("缺少Authorization请求头"))??;
        let m = verify(&s, &a, "GET", &path_and_query, b"")?;
        let token = query_param(&uri, "token").unwrap_or_default();
        let d = s.downloads.get(&token, s.now()).ok_or_else(|| {
            err(
                StatusCode::BAD_REQUEST,
                "INVALID_REQUEST",
                "账单下载链接不存在或已过期，请重新申请账单",
            )
        })?;
        if d.owner != m.mch_id {
            return Err(err(StatusCode::FORBIDDEN, "NO_AUTH", "无权下载该账单"));
        }
        Ok(d)
    })();
    match found {
        Ok(d) => {
            let body = if d.gzip {
                billtext::gzip(&d.body)
            } else {
                d.body.to_vec()
            };
            log(StatusCode::OK, "SUCCESS", None);
            let mut resp = (StatusCode::OK, body).into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            resp
        }
        Err(e) => {
            log(e.status, e.code, Some(e.message.clone()));
            signed(
                &s.pki,
                e.status,
                Some(json!({"code": e.code, "message": e.message})),
            )
        }
    }
}
