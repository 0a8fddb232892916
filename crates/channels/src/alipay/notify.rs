//! Alipay notifications: form POST (or GET query), values URL-decoded,
//! verified RSA2 with `sign` and `sign_type` left out, then `app_id` must
//! be this config's; whom it is for (`seller_id`, `auth_app_id`) is checked
//! against the order in [`AliPay::check_notified_merchant`]. The reply is
//! exactly `success` (or `fail`, and Alipay retries).

use cashdesk_core::Fen;
use cashdesk_core::time::parse_cn_datetime;

use super::client::{app_auth, signing_string};
use super::{AliPay, Fields};
use crate::channel::*;
use crate::error::NotifyError;

impl AliPay {
    pub(super) fn parse_notify(
        &self,
        n: &IncomingNotification,
    ) -> Result<VerifiedNotification, NotifyError> {
        let fields = notification_fields(n)?;
        // Authenticity first: nothing else is looked at before it verifies.
        let sign = fields
            .get("sign")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| NotifyError::unverifiable("no sign"))?;
        if let Some(t) = fields.get("sign_type")
            && t != "RSA2"
        {
            return Err(NotifyError::unverifiable(format!(
                "sign_type `{t}` is not RSA2"
            )));
        }
        let message = signing_string(&fields, &["sign", "sign_type"]);
        self.alipay_key
            .verify_sha256_base64(message.as_bytes(), sign)
            .map_err(|_| NotifyError::unverifiable("signature does not verify"))?;
        let get = |name: &str| {
            fields
                .get(name)
                .map(String::as_str)
                .filter(|v| !v.is_empty())
        };
        let need =
            |name: &str| get(name).ok_or_else(|| NotifyError::malformed(format!("no {name}")));
        if let Some(charset) = get("charset")
            && !charset.eq_ignore_ascii_case("utf-8")
        {
            return Err(NotifyError::malformed(format!(
                "charset `{charset}` (cashdesk asks for utf-8)"
            )));
        }
        let app_id = get("app_id").unwrap_or("");
        if app_id != self.app_id {
            return Err(NotifyError::mismatch(format!(
                "app_id `{app_id}` is not this config's"
            )));
        }
        // The merchant (seller, authorizing app) is checked against the
        // order in check_merchant.
        let merchant = NotifiedMerchant::from_fields(&["seller_id", "auth_app_id"], get);
        let attach = match get("passback_params") {
            // Sent URL-encoded (see client_side_params), echoed as sent.
            Some(p) => Some(form_decode(p)?),
            None => None,
        };
        let out_trade_no = need("out_trade_no")?.to_owned();
        let status = need("trade_status")?;
        let refund_related = ["out_biz_no", "refund_fee", "gmt_refund"]
            .iter()
            .any(|f| get(f).is_some());
        match status {
            "TRADE_SUCCESS" | "TRADE_FINISHED" if !refund_related => {
                let raw = need("total_amount")?;
                let amount = Fen::from_yuan("total_amount", raw)
                    .ok()
                    .filter(|f| f.get() > 0)
                    .ok_or_else(|| {
                        NotifyError::malformed(format!("total_amount `{raw}` is not a yuan amount"))
                    })?;
                let time = get("gmt_payment")
                    .or_else(|| get("notify_time"))
                    .ok_or_else(|| NotifyError::malformed("no gmt_payment"))?;
                Ok(VerifiedNotification::Payment(PaymentNotification {
                    out_trade_no,
                    merchant,
                    attach,
                    result: PaymentResult::Paid(PaidInfo {
                        transaction_id: need("trade_no")?.to_owned(),
                        pay_time: parse_cn_datetime(time).ok_or_else(|| {
                            NotifyError::malformed(format!("gmt_payment `{time}` is not a time"))
                        })?,
                        amount,
                    }),
                }))
            }
            "TRADE_CLOSED" if !refund_related => {
                Ok(VerifiedNotification::Payment(PaymentNotification {
                    out_trade_no,
                    merchant,
                    attach,
                    result: PaymentResult::Closed,
                }))
            }
            other => Ok(VerifiedNotification::Other {
                event: if refund_related {
                    format!("REFUND:{other}")
                } else {
                    other.to_owned()
                },
            }),
        }
    }

    /// The config's own orders: `seller_id` must be the config's `sellerId`
    /// when it sets one, and `auth_app_id`, when named, the config's app.
    /// A store's order: `auth_app_id` must be its authorizer's app, and
    /// `seller_id` its `sellerId` when the identity has one.
    pub(super) fn check_notified_merchant(
        &self,
        notified: &NotifiedMerchant,
        store: Option<&StoreMerchant>,
    ) -> Result<(), NotifyError> {
        let seller = notified.get("seller_id").unwrap_or("");
        let auth_app = notified.get("auth_app_id");
        let (want_app, want_seller) =
            match app_auth(store).map_err(|e| NotifyError::mismatch(e.message().to_owned()))? {
                None => (self.app_id.clone(), self.seller_id.clone()),
                Some(a) => (a.auth_app_id, a.seller_id),
            };
        let whose = store.map_or_else(
            || "this config's".to_owned(),
            |s| format!("store {}'s authorizer", s.store_id),
        );
        match (store, auth_app) {
            (_, Some(got)) if got != want_app => {
                return Err(NotifyError::mismatch(format!(
                    "auth_app_id `{got}` is not {whose} ({want_app})"
                )));
            }
            (Some(_), None) => {
                return Err(NotifyError::mismatch(format!(
                    "no auth_app_id: the order is paid through {whose} ({want_app})"
                )));
            }
            _ => {}
        }
        if let Some(want) = want_seller
            && seller != want
        {
            return Err(NotifyError::mismatch(format!(
                "seller_id `{seller}` is not {whose} ({want})"
            )));
        }
        Ok(())
    }

    pub(super) fn reply(ok: bool) -> NotificationReply {
        NotificationReply {
            status: 200,
            content_type: Some("text/plain; charset=utf-8"),
            body: if ok { "success" } else { "fail" }.to_owned(),
        }
    }
}

/// The notification's parameters: the form body of a POST, else the query
/// string. Values are URL-decoded; duplicates and non-UTF-8 are refused.
fn notification_fields(n: &IncomingNotification) -> Result<Fields, NotifyError> {
    let raw: &[u8] = if n.method.eq_ignore_ascii_case("POST") && !n.body.is_empty() {
        &n.body
    } else {
        n.query.as_deref().unwrap_or("").as_bytes()
    };
    let text = std::str::from_utf8(raw)
        .map_err(|_| NotifyError::malformed("notification is not UTF-8"))?;
    if text.trim().is_empty() {
        return Err(NotifyError::malformed("empty notification"));
    }
    let mut fields = Fields::new();
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = form_decode(k)?;
        let v = form_decode(v)?;
        if k.is_empty() {
            return Err(NotifyError::malformed("a parameter without a name"));
        }
        if fields.insert(k.clone(), v).is_some() {
            return Err(NotifyError::malformed(format!("duplicate parameter `{k}`")));
        }
    }
    Ok(fields)
}

/// `application/x-www-form-urlencoded` decoding (`+` is a space), strict:
/// bad `%` escapes and invalid UTF-8 are refused rather than replaced.
pub(super) fn form_decode(s: &str) -> Result<String, NotifyError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| NotifyError::malformed("bad %-escape"))?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| NotifyError::malformed("a value is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding_is_strict() {
        assert_eq!(form_decode("a+b%2B%2F%3D").unwrap(), "a b+/=");
        assert_eq!(form_decode("%E4%B8%AD").unwrap(), "中");
        assert!(form_decode("%E4%B8").is_err());
        assert!(form_decode("%zz").is_err());
        assert!(form_decode("%4").is_err());
    }
}
