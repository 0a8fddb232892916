//! Calls to WeChat Pay v3: the `Authorization` signature, one request per
//! call with the answer's `Wechatpay-*` signature verified (see the module
//! comment of [`super`]), and the mapping of error bodies to
//! [`ChannelError`] — the one place v3's `code`s get a meaning.

use cashdesk_crypto::random::nonce_str;
use chrono::Utc;
use reqwest::Method;
use serde::de::DeserializeOwned;
use url::Url;

use super::wire::V3ErrorBody;
use super::{MAX_SKEW_SECS, WxPayV3};
use crate::error::{BusinessKind, ChannelError};
use crate::http;
use crate::support::join_url;

/// A non-2xx answer that is not retryable.
pub(super) struct Failure {
    pub(super) status: u16,
    pub(super) code: String,
    pub(super) message: String,
    pub(super) signed: bool,
}

impl Failure {
    pub(super) fn into_error(self, what: &str) -> ChannelError {
        self.into_error_of(what, Asked::Order)
    }

    /// [`Failure::into_error`] for an answer about `asked`: the same code
    /// can mean different things (`RESOURCE_NOT_EXISTS` on a refund query
    /// is "no such refund", on a refund "no such order").
    pub(super) fn into_error_of(self, what: &str, asked: Asked) -> ChannelError {
        let msg = format!("{what}: {}: {}", self.code, self.message);
        match self.code.as_str() {
            "SYSTEM_ERROR" | "SYSTEMERROR" | "BANK_ERROR" | "FREQUENCY_LIMITED"
            | "RATELIMIT_EXCEEDED" => ChannelError::retryable(Some(self.code), msg),
            "SIGN_ERROR" | "APPID_MCHID_NOT_MATCH" | "MCH_NOT_EXISTS" | "NO_AUTH" => {
                ChannelError::config(msg)
            }
            _ if self.status == 401 => ChannelError::config(msg),
            _ => ChannelError::business(business_kind(&self.code, asked), self.code, self.message),
        }
    }
}

/// What a call asked about, for reading its error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Asked {
    /// An order: prepay, query, close, refund.
    Order,
    /// A refund's status (`GET /v3/refund/domestic/refunds/{no}`).
    Refund,
}

/// What a v3 error `code` that is a business refusal means. (WeChat's
/// documents spell some codes both ways over the years; both are read.)
pub(super) fn business_kind(code: &str, asked: Asked) -> BusinessKind {
    match (code, asked) {
        ("ORDERPAID" | "ORDER_PAID", _) => BusinessKind::OrderAlreadyPaid,
        ("ORDER_CLOSED" | "ORDERCLOSED", _) => BusinessKind::OrderClosed,
        ("RESOURCE_NOT_EXISTS", Asked::Refund) => BusinessKind::RefundNotFound,
        ("NOT_ENOUGH" | "NOTENOUGH", _) => BusinessKind::InsufficientBalance,
        _ => BusinessKind::Other,
    }
}

/// Why verification failed: an unknown serial is a key problem, the rest
/// means the message is not authentic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SigProblem {
    UnknownSerial,
    Invalid,
}

impl WxPayV3 {
    pub(super) fn rsa_sign(&self, message: &str) -> Result<String, ChannelError> {
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
    pub(super) fn verify_signed(
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
    pub(super) async fn call(
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

    pub(super) fn json_body<T: serde::Serialize>(value: &T) -> Result<String, ChannelError> {
        serde_json::to_string(value).map_err(|e| {
            ChannelError::invalid_request("body", format!("cannot encode request: {e}"))
        })
    }

    pub(super) fn decode<T: DeserializeOwned>(what: &str, body: &[u8]) -> Result<T, ChannelError> {
        serde_json::from_slice(body)
            .map_err(|e| ChannelError::bad_response(format!("{what}: unexpected body: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ChannelErrorKind as K;

    fn failure(status: u16, code: &str) -> Failure {
        Failure {
            status,
            code: code.to_owned(),
            message: "说明".to_owned(),
            signed: true,
        }
    }

    #[test]
    fn codes_map_to_business_kinds() {
        for (code, asked, kind) in [
            ("ORDERPAID", Asked::Order, BusinessKind::OrderAlreadyPaid),
            ("ORDER_PAID", Asked::Order, BusinessKind::OrderAlreadyPaid),
            ("ORDER_CLOSED", Asked::Order, BusinessKind::OrderClosed),
            (
                "RESOURCE_NOT_EXISTS",
                Asked::Refund,
                BusinessKind::RefundNotFound,
            ),
            // The same code on a refund request: the order is unknown.
            ("RESOURCE_NOT_EXISTS", Asked::Order, BusinessKind::Other),
            (
                "NOT_ENOUGH",
                Asked::Order,
                BusinessKind::InsufficientBalance,
            ),
            ("PARAM_ERROR", Asked::Order, BusinessKind::Other),
        ] {
            let e = failure(400, code).into_error_of("/v3/x", asked);
            assert_eq!(e.business_kind(), Some(kind), "{code} {asked:?}");
            assert_eq!(e.code(), Some(code));
            assert_eq!(e.message(), "说明");
        }
    }

    #[test]
    fn other_codes_are_not_business() {
        assert_eq!(
            failure(500, "SYSTEM_ERROR").into_error("/v3/x").kind(),
            K::Retryable
        );
        assert_eq!(
            failure(400, "SIGN_ERROR").into_error("/v3/x").kind(),
            K::Config
        );
        assert_eq!(
            failure(401, "WHATEVER").into_error("/v3/x").kind(),
            K::Config
        );
    }
}
