//! Calls to Lakala: the `LKLAPI-SHA256withRSA` request signature, one POST
//! per call with the answer's `Lklapi-*` signature verified (see the module
//! comment of [`super`]), and the merchant / terminal a call is made for.

use std::collections::BTreeMap;

use cashdesk_core::time::to_compact;
use cashdesk_crypto::random::nonce_str;
use chrono::Utc;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::wire::*;
use super::{AUTH_SCHEME, Lakala, SUCCESS_CODE, choices};
use crate::channel::StoreMerchant;
use crate::error::ChannelError;
use crate::http;
use crate::support::join_url;

/// A verified answer whose code is not success.
#[derive(Debug)]
pub(super) struct Failure {
    pub(super) code: String,
    pub(super) msg: String,
}

impl Failure {
    pub(super) fn into_error(self, what: &str) -> ChannelError {
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

pub(super) fn message(parts: &[&[u8]]) -> Vec<u8> {
    let mut m = Vec::new();
    for p in parts {
        m.extend_from_slice(p);
        m.push(b'\n');
    }
    m
}

impl Lakala {
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
    pub(super) fn verify_response(
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
    pub(super) async fn call<T: DeserializeOwned + Default>(
        &self,
        path: &str,
        req_data: impl Serialize,
    ) -> Result<Result<T, Failure>, ChannelError> {
        let envelope = Envelope {
            req_time: to_compact(Utc::now()),
            version: "3.0",
            req_data,
        };
        let body = serde_json::to_string(&envelope).map_err(|e| {
            ChannelError::invalid_request("body", format!("{path}: cannot encode: {e}"))
        })?;
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
    pub(super) fn terminal(&self, store: Option<&StoreMerchant>) -> Result<Terminal, ChannelError> {
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

    pub(super) fn check_answer_merchant(
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

    pub(super) fn check_trade_no(
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

    pub(super) fn location(ip: Option<&str>) -> LocationInfo {
        LocationInfo {
            request_ip: ip
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .unwrap_or(choices::SERVER_REQUEST_IP)
                .to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
