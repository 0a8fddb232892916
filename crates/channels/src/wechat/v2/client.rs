//! Calls to WeChat Pay v2: the parameter signature, one POST per call with
//! every answer checked in WeChat's order (see the module comment of
//! [`super`]), and the mapping of failures to [`ChannelError`] — the one
//! place v2's `return_msg` and `err_code` get a meaning.

use cashdesk_crypto::random::nonce_str;
use cashdesk_crypto::wxv2::{self, WxSignType};

use super::WxPayV2;
use super::wire::Fields;
use crate::error::{BusinessKind, ChannelError};
use crate::http;
use crate::support::join_url;
use crate::wechat::wire::SubMerchant;
use crate::xml;

impl WxPayV2 {
    pub(super) fn sign(&self, params: &Fields, kind: WxSignType) -> String {
        wxv2::sign(params, self.api_key.expose(), kind)
    }

    /// POST a signed request and return the verified answer (return_code
    /// SUCCESS, signature good, mch_id/appid ours). `result_code` is left to
    /// the caller, which knows which business errors are outcomes.
    pub(super) async fn call(
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
}

/// `return_code` FAIL: a communication-level refusal, described only in
/// `return_msg` (e.g. 签名错误, appid和mch_id不匹配, SYSTEMERROR).
pub(super) fn return_failure(path: &str, msg: &str) -> ChannelError {
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
        ChannelError::business(BusinessKind::Other, "FAIL", message)
    }
}

/// `result_code` FAIL as an error, classified by `err_code`.
pub(super) fn result_failure(path: &str, fields: &Fields) -> ChannelError {
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
        _ => ChannelError::business(business_kind(code), code, msg),
    }
}

/// `Ok` when `result_code` is SUCCESS; `Err(err_code)` when FAIL with a code;
/// a missing `result_code` is a bad response.
pub(super) fn result_code<'a>(
    path: &str,
    fields: &'a Fields,
) -> Result<Result<(), &'a str>, ChannelError> {
    match fields.get("result_code").map(String::as_str) {
        Some("SUCCESS") => Ok(Ok(())),
        Some(_) => Ok(Err(fields.get("err_code").map_or("FAIL", String::as_str))),
        None => Err(ChannelError::bad_response(format!(
            "{path}: no result_code"
        ))),
    }
}
/// What an `err_code` that is a business refusal means.
pub(super) fn business_kind(err_code: &str) -> BusinessKind {
    match err_code {
        "ORDERPAID" => BusinessKind::OrderAlreadyPaid,
        // ORDERREVERSED: revoked (撤销), which closes it for good too.
        "ORDERCLOSED" | "ORDERREVERSED" => BusinessKind::OrderClosed,
        "REFUNDNOTEXIST" => BusinessKind::RefundNotFound,
        "NOTENOUGH" => BusinessKind::InsufficientBalance,
        _ => BusinessKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ChannelErrorKind as K;

    fn failure(code: &str, des: &str) -> ChannelError {
        let mut f = Fields::new();
        f.insert("result_code".into(), "FAIL".into());
        f.insert("err_code".into(), code.into());
        f.insert("err_code_des".into(), des.into());
        result_failure("pay/unifiedorder", &f)
    }

    #[test]
    fn err_codes_map_to_business_kinds() {
        for (code, kind) in [
            ("ORDERPAID", BusinessKind::OrderAlreadyPaid),
            ("ORDERCLOSED", BusinessKind::OrderClosed),
            ("ORDERREVERSED", BusinessKind::OrderClosed),
            ("REFUNDNOTEXIST", BusinessKind::RefundNotFound),
            ("NOTENOUGH", BusinessKind::InsufficientBalance),
            ("PARAM_ERROR", BusinessKind::Other),
            ("OUT_TRADE_NO_USED", BusinessKind::Other),
        ] {
            let e = failure(code, "说明");
            assert_eq!(e.business_kind(), Some(kind), "{code}");
            // The channel's own words stay for the merchant's 502.
            assert_eq!(e.code(), Some(code));
            assert_eq!(e.message(), "说明");
        }
    }

    #[test]
    fn other_failures_are_not_business() {
        assert_eq!(failure("SYSTEMERROR", "系统超时").kind(), K::Retryable);
        assert_eq!(failure("SIGNERROR", "签名错误").kind(), K::Config);
        assert_eq!(failure("SIGNERROR", "签名错误").business_kind(), None);
        assert_eq!(
            return_failure("pay/orderquery", "签名错误").kind(),
            K::Config
        );
        let e = return_failure("pay/orderquery", "参数格式校验错误");
        assert_eq!(e.business_kind(), Some(BusinessKind::Other));
        assert_eq!(e.code(), Some("FAIL"));
    }
}
