//! The day's trade bill: `alipay.data.dataservice.bill.downloadurl.query`
//! (`bill_type=trade`, `secure=true`, signed and verified as every call,
//! with the store's `app_auth_token` when the bill is a store's), then a
//! plain GET of the `bill_download_url` it answers (valid 30 s), streamed
//! into the caller's sink as served: a zip of GBK CSV files
//! ([`crate::bill::alipay`] reads it). PROTOCOLS-2 §1.3.
//!
//! The download URL comes from the answer, so it is checked before
//! anything is fetched: its host must be [`BILL_HOST`] or the configured
//! gateway's, and its scheme https — or exactly the gateway's scheme, host
//! and port (a sandbox serves gateway and files from one plain-HTTP host).
//! Anything else is [`ChannelError::BadResponse`]. The request is a plain
//! GET on the adapter's client (no redirect followed, TLS as configured),
//! capped at [`MAX_BILL_BYTES`]. What arrives must start like a zip: an
//! expired link answers a text page ("下载超时,请重新下载"), which is
//! retryable (asking again gets a fresh link).
//!
//! Answers without a file (opendocs.alipay.com, the method's 业务错误码, and
//! what SDKs observe in production: Alipay prefixes the documented codes,
//! `isp.bill_not_exist` for `BILL_NOT_EXIST`, so codes are compared without
//! prefix, case or `-`/`_` differences), mapped in [`no_file`]:
//! - `bill_file_code=EMPTY_DATA_WITH_BILL_FILE` (success, an empty file),
//!   `NO_BILL_DATA`, `BILL_DATE_BEFORE_REGISTRATION`: an empty day;
//! - `BILL_NOT_EXIST`: the bill is not there. Alipay publishes a day's
//!   bill "generally before 09:00 the next day, later in special cases",
//!   and says an empty day with the codes above, so until the end of the
//!   next day (China time) this is [`BillDownload::NotReady`], later
//!   [`BillDownload::Empty`]. UNCONFIRMED which of the two Alipay means;
//!   the cut-off is [`not_ready_until`];
//! - a day that has not ended in China is not asked for: not ready;
//! - `SYSTEM_RATE_LIMIT`, `USER_RATE_LIMIT`, `UNKNOWN_ERROR`: retryable;
//! - everything else as every call ([`super::client::Failure::into_error`]).
//!
//! As for every call, only a signed error answer is given a meaning.

use cashdesk_core::time::shanghai;
use chrono::{DateTime, Days, NaiveDate, TimeZone, Utc};
use url::Url;

use super::AliPay;
use super::client::Failure;
use super::wire::{BillUrlBiz, BillUrlResponse};
use crate::bill::{BillDownload, BillFile, BillFormat, BillRequest, Compression, MAX_BILL_BYTES};
use crate::error::ChannelError;
use crate::http;

pub(super) const BILL_METHOD: &str = "alipay.data.dataservice.bill.downloadurl.query";

/// Where Alipay serves bill files.
pub const BILL_HOST: &str = "dwbillcenter.alipay.com";

/// `bill_file_code` of a day without business (an empty file exists).
const EMPTY_DATA_WITH_BILL_FILE: &str = "EMPTY_DATA_WITH_BILL_FILE";

impl AliPay {
    pub(super) async fn download_trade_bill(
        &self,
        req: &BillRequest,
        sink: &mut (dyn std::io::Write + Send),
    ) -> Result<BillDownload, ChannelError> {
        let now = Utc::now();
        if req.date >= now.with_timezone(&shanghai()).date_naive() {
            return Ok(BillDownload::NotReady(format!(
                "Alipay publishes the bill of {} after that day has ended (China time)",
                req.date
            )));
        }
        let biz = BillUrlBiz {
            bill_type: "trade",
            bill_date: req.date.format("%Y-%m-%d").to_string(),
            secure: "true",
        };
        let r: BillUrlResponse = match self
            .call(BILL_METHOD, &biz, false, req.store.as_ref())
            .await?
        {
            Ok(r) => r,
            Err(f) => return no_file(f, req.date, now),
        };
        if r.bill_file_code.as_deref() == Some(EMPTY_DATA_WITH_BILL_FILE) {
            return Ok(BillDownload::Empty);
        }
        let raw = r
            .bill_download_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .ok_or_else(|| {
                ChannelError::bad_response(format!(
                    "{BILL_METHOD}: answer has no bill_download_url"
                ))
            })?;
        let url = self.checked_bill_url(raw)?;
        let what = "Alipay bill download";
        let mut sniff = Sniff {
            inner: sink,
            head: Vec::with_capacity(4),
        };
        let size = http::download_to(self.http.get(url), what, &mut sniff, MAX_BILL_BYTES).await?;
        if !is_zip(&sniff.head) {
            return Err(ChannelError::retryable(
                None,
                format!(
                    "{what}: the file is not a zip (an expired link answers a text page); \
                     ask for the bill again"
                ),
            ));
        }
        Ok(BillDownload::Written(BillFile {
            format: BillFormat::AlipayTrade,
            compression: Compression::Zip,
            sha1: None,
            size,
        }))
    }

    /// The answer's download URL, if it may be fetched (module comment).
    /// Errors name the host, never the URL (it carries a token).
    pub(super) fn checked_bill_url(&self, raw: &str) -> Result<Url, ChannelError> {
        let refuse = |why: String| {
            ChannelError::bad_response(format!(
                "{BILL_METHOD}: bill_download_url {why}; nothing was fetched"
            ))
        };
        let url = Url::parse(raw).map_err(|_| refuse("is not a URL".into()))?;
        let host = url.host_str().unwrap_or_default();
        let gateway_host = self.gateway.host_str().unwrap_or_default();
        if !url.username().is_empty() || url.password().is_some() {
            return Err(refuse("carries credentials".into()));
        }
        if !host.eq_ignore_ascii_case(BILL_HOST) && !host.eq_ignore_ascii_case(gateway_host) {
            return Err(refuse(format!(
                "is on host `{host}`, neither {BILL_HOST} nor the gateway's"
            )));
        }
        let gateway_origin = url.scheme() == self.gateway.scheme()
            && host.eq_ignore_ascii_case(gateway_host)
            && url.port_or_known_default() == self.gateway.port_or_known_default();
        if url.scheme() != "https" && !gateway_origin {
            return Err(refuse(format!(
                "is {}, not https (and not the gateway's own origin)",
                url.scheme()
            )));
        }
        Ok(url)
    }
}

/// What an error answer to [`BILL_METHOD`] means (module comment).
fn no_file(f: Failure, date: NaiveDate, now: DateTime<Utc>) -> Result<BillDownload, ChannelError> {
    if !f.signed {
        return Err(f.into_error(BILL_METHOD));
    }
    let code = f.sub_code.as_deref().unwrap_or(&f.code);
    let message = f
        .sub_msg
        .clone()
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| f.msg.clone());
    match bare_code(code).as_str() {
        "NO_BILL_DATA" | "BILL_DATE_BEFORE_REGISTRATION" => Ok(BillDownload::Empty),
        "BILL_NOT_EXIST" if now < not_ready_until(date) => {
            Ok(BillDownload::NotReady(format!("{code}: {message}")))
        }
        "BILL_NOT_EXIST" => Ok(BillDownload::Empty),
        "SYSTEM_RATE_LIMIT" | "USER_RATE_LIMIT" | "UNKNOWN_ERROR" => Err(ChannelError::retryable(
            Some(code.to_owned()),
            format!("{BILL_METHOD}: {code}: {message}"),
        )),
        _ => Err(f.into_error(BILL_METHOD)),
    }
}

/// `isp.bill_not_exist` → `BILL_NOT_EXIST`: the documented code without
/// the prefix Alipay's gateway adds, in the documented spelling.
fn bare_code(code: &str) -> String {
    code.rsplit('.')
        .next()
        .unwrap_or(code)
        .replace('-', "_")
        .to_ascii_uppercase()
}

/// Until when `BILL_NOT_EXIST` for `date` means "not yet": the end of the
/// next day, China time.
pub(super) fn not_ready_until(date: NaiveDate) -> DateTime<Utc> {
    let end = date
        .checked_add_days(Days::new(2))
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .and_then(|t| shanghai().from_local_datetime(&t).single());
    match end {
        Some(t) => t.with_timezone(&Utc),
        None => DateTime::<Utc>::MAX_UTC,
    }
}

/// A zip starts with a local file header, or is empty (end of central
/// directory only).
fn is_zip(head: &[u8]) -> bool {
    head == b"PK\x03\x04" || head == b"PK\x05\x06"
}

/// Passes writes through and keeps the first four bytes written.
struct Sniff<'a> {
    inner: &'a mut (dyn std::io::Write + Send),
    head: Vec<u8>,
}

impl std::io::Write for Sniff<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        let want = 4 - self.head.len().min(4);
        self.head.extend_from_slice(&buf[..n.min(want)]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(sub_code: &str, signed: bool) -> Failure {
        Failure {
            code: "40004".into(),
            msg: "Business Failed".into(),
            sub_code: Some(sub_code.into()),
            sub_msg: Some("账单不存在".into()),
            signed,
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        cashdesk_core::time::parse_cn_datetime(s).unwrap()
    }

    #[test]
    fn answers_without_a_file_mean_what_alipay_says() {
        let day = NaiveDate::from_ymd_opt(2026, 6, 5).unwrap();
        let next_morning = at("2026-06-06 10:00:00");
        let two_days_later = at("2026-06-07 00:00:00");
        let no_file = |sub: &str, signed: bool, now| no_file(failure(sub, signed), day, now);
        for sub in [
            "NO_BILL_DATA",
            "isp.no_bill_data",
            "BILL_DATE_BEFORE_REGISTRATION",
        ] {
            assert_eq!(
                no_file(sub, true, next_morning),
                Ok(BillDownload::Empty),
                "{sub}"
            );
        }
        for sub in ["isp.bill_not_exist", "BILL_NOT_EXIST", "isv.bill-not-exist"] {
            assert!(
                matches!(no_file(sub, true, next_morning), Ok(BillDownload::NotReady(m)) if m.contains(sub)),
                "{sub}"
            );
            assert_eq!(no_file(sub, true, two_days_later), Ok(BillDownload::Empty));
        }
        use crate::ChannelErrorKind as K;
        for sub in ["SYSTEM_RATE_LIMIT", "isp.user_rate_limit", "UNKNOWN_ERROR"] {
            let e = no_file(sub, true, next_morning).unwrap_err();
            assert_eq!(e.kind(), K::Retryable, "{sub}");
        }
        // Unsigned answers get no meaning of their own.
        let e = no_file("NO_BILL_DATA", false, next_morning).unwrap_err();
        assert_eq!(e.kind(), K::Business);
        let e = no_file("isp.bill_not_exist", false, two_days_later).unwrap_err();
        assert_eq!(e.kind(), K::Retryable);
        // Others as every call.
        let e = no_file("TYPE_NOT_SUPPORTED", true, next_morning).unwrap_err();
        assert_eq!(e.kind(), K::Business);
        assert_eq!(e.code(), Some("TYPE_NOT_SUPPORTED"));
        assert_eq!(not_ready_until(day), two_days_later);
    }

    #[test]
    fn the_first_bytes_are_kept() {
        let mut out = Vec::new();
        let mut s = Sniff {
            inner: &mut out,
            head: Vec::new(),
        };
        std::io::Write::write_all(&mut s, b"P").unwrap();
        std::io::Write::write_all(&mut s, b"K\x03\x04rest").unwrap();
        assert!(is_zip(&s.head));
        assert_eq!(out, b"PK\x03\x04rest");
        assert!(!is_zip("下载超时".as_bytes()));
    }
}
