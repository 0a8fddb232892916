//! Lakala notifications: `Authorization: LKLAPI-SHA256withRSA` verified
//! with the notification certificate (one key for every merchant of the
//! platform, so whom it is for is checked against the order in
//! [`Lakala::check_notified_merchant`]), then the trade parsed. The reply
//! is Lakala's `{"code":"SUCCESS",…}` acknowledgement.

use cashdesk_core::Fen;
use cashdesk_core::time::parse_compact;

use super::client::{message, parse_authorization};
use super::wire::Trade;
use super::{AUTH_SCHEME, Lakala, NOTIFY_ACK, choices};
use crate::channel::*;
use crate::error::NotifyError;

impl Lakala {
    pub(super) fn parse_notify(
        &self,
        n: &IncomingNotification,
    ) -> Result<VerifiedNotification, NotifyError> {
        // Authenticity first; the body is not parsed before it verifies.
        let auth = n
            .header("Authorization")
            .ok_or_else(|| NotifyError::unverifiable("no Authorization header"))?;
        let p = parse_authorization(auth).ok_or_else(|| {
            NotifyError::unverifiable(format!("Authorization is not {AUTH_SCHEME} k=\"v\",…"))
        })?;
        let get = |k: &str| {
            p.get(k)
                .map(String::as_str)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| NotifyError::unverifiable(format!("Authorization has no {k}")))
        };
        let (ts, nonce, sig) = (get("timestamp")?, get("nonce_str")?, get("signature")?);
        let msg = message(&[ts.as_bytes(), nonce.as_bytes(), &n.body]);
        self.notify_key
            .verify_sha256_base64(&msg, sig)
            .map_err(|_| NotifyError::unverifiable("signature does not verify"))?;
        let t: Trade = serde_json::from_slice(&n.body)
            .map_err(|e| NotifyError::malformed(format!("not a Lakala notification: {e}")))?;
        if t.merchant_no.as_deref().is_none_or(str::is_empty) {
            return Err(NotifyError::malformed("no merchant_no"));
        }
        // Which merchant it is for is checked against the order
        // (check_merchant): the notify key signs for every merchant.
        let merchant = NotifiedMerchant::from_fields(&["merchant_no", "term_no"], |n| match n {
            "merchant_no" => t.merchant_no.as_deref(),
            _ => t.term_no.as_deref(),
        });
        let attach = t.remark.clone().filter(|r| !r.is_empty());
        let out_trade_no = t
            .out_trade_no
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| NotifyError::malformed("no out_trade_no"))?;
        let status =
            choices::notify_status(&t).ok_or_else(|| NotifyError::malformed("no trade_status"))?;
        match status {
            "SUCCESS" => {
                let amount = t
                    .total_amount
                    .and_then(|v| Fen::parse_positive("total_amount", v.0).ok())
                    .ok_or_else(|| NotifyError::malformed("no valid total_amount"))?;
                let time = t.trade_time.as_deref().unwrap_or("");
                Ok(VerifiedNotification::Payment(PaymentNotification {
                    out_trade_no,
                    merchant,
                    attach,
                    result: PaymentResult::Paid(PaidInfo {
                        transaction_id: t
                            .trade_no
                            .clone()
                            .filter(|s| !s.is_empty())
                            .ok_or_else(|| NotifyError::malformed("no trade_no"))?,
                        pay_time: parse_compact(time).ok_or_else(|| {
                            NotifyError::malformed(format!("trade_time `{time}` is not a time"))
                        })?,
                        amount,
                    }),
                }))
            }
            "FAIL" => Ok(VerifiedNotification::Payment(PaymentNotification {
                out_trade_no,
                merchant,
                attach,
                result: PaymentResult::Failed {
                    code: status.to_owned(),
                    message: t.trade_state_desc.clone().unwrap_or_default(),
                },
            })),
            "CLOSE" => Ok(VerifiedNotification::Payment(PaymentNotification {
                out_trade_no,
                merchant,
                attach,
                result: PaymentResult::Closed,
            })),
            other => Ok(VerifiedNotification::Other {
                event: other.to_owned(),
            }),
        }
    }

    /// The notified `merchant_no` must be the store's (or, for the
    /// config's own orders, the config's); `term_no` too when named.
    pub(super) fn check_notified_merchant(
        &self,
        notified: &NotifiedMerchant,
        store: Option<&StoreMerchant>,
    ) -> Result<(), NotifyError> {
        let expected = self
            .terminal(store)
            .map_err(|e| NotifyError::mismatch(e.message().to_owned()))?;
        let got = notified.get("merchant_no").unwrap_or("");
        if got != expected.merchant_no {
            return Err(NotifyError::mismatch(format!(
                "merchant_no `{got}` is not {} ({})",
                expected.merchant_no,
                store.map_or_else(
                    || "this config's".to_owned(),
                    |s| format!("store {}", s.store_id)
                )
            )));
        }
        if let Some(term) = notified.get("term_no")
            && term != expected.term_no
        {
            return Err(NotifyError::mismatch(format!(
                "term_no `{term}` is not {}",
                expected.term_no
            )));
        }
        Ok(())
    }

    pub(super) fn reply(ok: bool) -> NotificationReply {
        if ok {
            NotificationReply {
                status: 200,
                content_type: Some("application/json"),
                body: NOTIFY_ACK.to_owned(),
            }
        } else {
            NotificationReply {
                status: 500,
                content_type: Some("application/json"),
                body: r#"{"code":"FAIL","message":"失败"}"#.to_owned(),
            }
        }
    }
}
