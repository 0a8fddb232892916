//! Calls to Alipay's gateway: the RSA2 request signature over
//! [`signing_string`], one form POST per call, and the answer verified over
//! the exact text of its `…_response` member ([`split_response`], see the
//! module comment of [`super`]); Alipay's `code` / `sub_code` are mapped to
//! [`ChannelError`] here and nowhere else.

use std::collections::BTreeMap;

use cashdesk_core::time::to_cn_datetime;
use chrono::Utc;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use super::wire::{AppAuth, AppAuthIdentity, Common};
use super::{AliPay, Fields, SUCCESS_CODE};
use crate::channel::StoreMerchant;
use crate::error::{BusinessKind, ChannelError};
use crate::http;

/// The code of the [`ChannelError::Business`] a refund query answers when
/// Alipay has no record of the refund (an answer without `refund_status`:
/// "not received, or refused"). Alipay has no code for it; this one is
/// cashdesk's ([`BusinessKind::RefundNotFound`]).
pub const REFUND_NOT_FOUND_CODE: &str = "REFUND_NOT_FOUND";

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

/// A verified (or at least well-formed) answer.
pub(super) enum Reply {
    /// `code == 10000`, signed: the raw `…_response` text.
    Success(String),
    Failed(Failure),
}

/// An error answer (`code != 10000`).
#[derive(Debug)]
pub(super) struct Failure {
    pub(super) code: String,
    pub(super) msg: String,
    pub(super) sub_code: Option<String>,
    pub(super) sub_msg: Option<String>,
    /// Whether the answer carried a signature that verified.
    pub(super) signed: bool,
}

impl Failure {
    pub(super) fn is(&self, sub_code: &str) -> bool {
        self.sub_code.as_deref() == Some(sub_code)
    }

    /// The one place Alipay's error codes are mapped.
    pub(super) fn into_error(self, what: &str) -> ChannelError {
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
            ChannelError::business(business_kind(&code), code, message)
        }
    }
}

/// What a business refusal's `sub_code` (or `code` when there is none)
/// means.
pub(super) fn business_kind(code: &str) -> BusinessKind {
    match code {
        // FINISHED: paid, and past the refund period.
        "ACQ.TRADE_HAS_SUCCESS" | "ACQ.TRADE_HAS_FINISHED" => BusinessKind::OrderAlreadyPaid,
        "ACQ.TRADE_HAS_CLOSE" => BusinessKind::OrderClosed,
        "ACQ.SELLER_BALANCE_NOT_ENOUGH" => BusinessKind::InsufficientBalance,
        REFUND_NOT_FOUND_CODE => BusinessKind::RefundNotFound,
        _ => BusinessKind::Other,
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
    pub(super) fn rsa_sign(&self, message: &str) -> Result<String, ChannelError> {
        self.private_key
            .sign_sha256_base64(message.as_bytes())
            .map_err(|e| {
                ChannelError::config(format!("cannot sign with credentials.privateKeyPem: {e}"))
            })
    }

    /// The common parameters plus `biz_content`, signed. `return_url`
    /// (wap/page/app only) is added when there is one; `auth` (a store's
    /// authorization) adds `app_auth_token`.
    pub(super) fn signed_params(
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

    pub(super) fn biz_json(biz: &impl Serialize) -> Result<String, ChannelError> {
        serde_json::to_string(biz).map_err(|e| {
            ChannelError::invalid_request("body", format!("cannot encode biz_content: {e}"))
        })
    }

    /// Check a gateway answer (see the module comment for the rules).
    pub(super) fn verify_response(&self, method: &str, body: &[u8]) -> Result<Reply, ChannelError> {
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
    pub(super) async fn call<T: DeserializeOwned>(
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
}

/// The app authorization a request is made under, if the order's store
/// has one.
pub(super) fn app_auth(store: Option<&StoreMerchant>) -> Result<Option<AppAuth>, ChannelError> {
    store
        .map(|s| {
            AppAuthIdentity::parse(&serde_json::Value::Object(s.fields.clone()))
                .and_then(|i| i.check())
                .map_err(|e| ChannelError::config(format!("store {}: {e}", s.store_id)))
        })
        .transpose()
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
        for (sub, kind) in [
            ("ACQ.TRADE_HAS_SUCCESS", BusinessKind::OrderAlreadyPaid),
            ("ACQ.TRADE_HAS_FINISHED", BusinessKind::OrderAlreadyPaid),
            ("ACQ.TRADE_HAS_CLOSE", BusinessKind::OrderClosed),
            (
                "ACQ.SELLER_BALANCE_NOT_ENOUGH",
                BusinessKind::InsufficientBalance,
            ),
            ("ACQ.TRADE_STATUS_ERROR", BusinessKind::Other),
            ("ACQ.INVALID_PARAMETER", BusinessKind::Other),
        ] {
            let e = f("40004", Some(sub)).into_error("x");
            assert_eq!(e.business_kind(), Some(kind), "{sub}");
            assert_eq!(e.code(), Some(sub));
        }
        assert_eq!(
            business_kind(REFUND_NOT_FOUND_CODE),
            BusinessKind::RefundNotFound
        );
    }
}
