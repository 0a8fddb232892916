//! WeChat Pay v2 notifications: payment notifications verified by their
//! signature, refund notifications by decrypting `req_info` (AES-256-ECB
//! under MD5(API key)); then `appid`/`mch_id` must be this config's. The
//! reply is WeChat's `<xml><return_code>…</return_code>…</xml>`.

use cashdesk_core::time::{parse_cn_datetime, parse_compact};
use cashdesk_crypto::wxv2::{self, WxSignType};

use super::WxPayV2;
use super::wire::{Fields, notify_fen, notify_field, refund_outcome, sub_merchant_of};
use crate::channel::*;
use crate::error::NotifyError;
use crate::xml;

impl WxPayV2 {
    pub(super) fn parse_notify(
        &self,
        n: &IncomingNotification,
    ) -> Result<VerifiedNotification, NotifyError> {
        if n.body.is_empty() {
            return Err(NotifyError::malformed("empty body"));
        }
        let fields = xml::parse_flat(&n.body).map_err(|e| NotifyError::malformed(e.to_string()))?;
        if fields.contains_key("req_info") {
            self.parse_refund_notification(&fields)
        } else {
            self.parse_pay_notification(&fields)
        }
    }

    pub(super) fn reply(ok: bool) -> NotificationReply {
        let (code, msg) = if ok {
            ("SUCCESS", "OK")
        } else {
            ("FAIL", "FAIL")
        };
        NotificationReply {
            status: 200,
            content_type: Some("text/xml; charset=utf-8"),
            body: format!(
                "<xml><return_code><![CDATA[{code}]]></return_code><return_msg><![CDATA[{msg}]]></return_msg></xml>"
            ),
        }
    }

    fn check_identity(&self, fields: &Fields) -> Result<(), NotifyError> {
        let appid = fields.get("appid").map_or("", String::as_str);
        if appid != self.app_id {
            return Err(NotifyError::mismatch(format!(
                "appid `{appid}` is not this config's"
            )));
        }
        let mch_id = fields.get("mch_id").map_or("", String::as_str);
        if mch_id != self.mch_id {
            return Err(NotifyError::mismatch(format!(
                "mch_id `{mch_id}` is not this config's"
            )));
        }
        Ok(())
    }

    fn parse_pay_notification(&self, fields: &Fields) -> Result<VerifiedNotification, NotifyError> {
        // Signature first: nothing unauthenticated is looked at further.
        let kind = match fields.get("sign_type") {
            Some(s) => WxSignType::parse(s)
                .ok_or_else(|| NotifyError::malformed(format!("unknown sign_type `{s}`")))?,
            None => self.sign_type,
        };
        if !fields.contains_key("sign") {
            return Err(NotifyError::unverifiable("no sign"));
        }
        if !wxv2::verify(fields, self.api_key.expose(), kind) {
            return Err(NotifyError::unverifiable("signature does not verify"));
        }
        if fields.get("return_code").map(String::as_str) != Some("SUCCESS") {
            return Err(NotifyError::malformed("return_code is not SUCCESS"));
        }
        self.check_identity(fields)?;
        let out_trade_no = notify_field(fields, "out_trade_no")?.to_owned();
        let result = match notify_field(fields, "result_code")? {
            "SUCCESS" => {
                let time_end = notify_field(fields, "time_end")?;
                PaymentResult::Paid(PaidInfo {
                    transaction_id: notify_field(fields, "transaction_id")?.to_owned(),
                    pay_time: parse_compact(time_end).ok_or_else(|| {
                        NotifyError::malformed(format!("time_end `{time_end}` is not a time"))
                    })?,
                    amount: notify_fen(fields, "total_fee")?,
                })
            }
            _ => {
                let code = fields
                    .get("err_code")
                    .cloned()
                    .unwrap_or_else(|| "FAIL".into());
                PaymentResult::Failed {
                    message: fields
                        .get("err_code_des")
                        .cloned()
                        .unwrap_or_else(|| code.clone()),
                    code,
                }
            }
        };
        Ok(VerifiedNotification::Payment(PaymentNotification {
            out_trade_no,
            result,
            merchant: sub_merchant_of(fields),
            attach: fields.get("attach").filter(|a| !a.is_empty()).cloned(),
        }))
    }

    fn parse_refund_notification(
        &self,
        fields: &Fields,
    ) -> Result<VerifiedNotification, NotifyError> {
        if fields.get("return_code").map(String::as_str) != Some("SUCCESS") {
            return Err(NotifyError::malformed("return_code is not SUCCESS"));
        }
        self.check_identity(fields)?;
        let plain =
            wxv2::decrypt_req_info(self.api_key.expose(), notify_field(fields, "req_info")?)
                .map_err(|_| {
                    NotifyError::unverifiable(
                        "req_info does not decrypt with this config's API key",
                    )
                })?;
        let inner = xml::parse_flat(plain.as_bytes()).map_err(|e| {
            NotifyError::unverifiable(format!("decrypted req_info is not the refund XML: {e}"))
        })?;
        let status = notify_field(&inner, "refund_status")?;
        let outcome = refund_outcome(status)
            .ok_or_else(|| NotifyError::malformed(format!("unknown refund_status `{status}`")))?;
        let success_time = match inner.get("success_time") {
            Some(t) if !t.is_empty() => Some(parse_cn_datetime(t).ok_or_else(|| {
                NotifyError::malformed(format!("success_time `{t}` is not a time"))
            })?),
            _ => None,
        };
        Ok(VerifiedNotification::Refund(RefundNotification {
            out_trade_no: notify_field(&inner, "out_trade_no")?.to_owned(),
            out_refund_no: notify_field(&inner, "out_refund_no")?.to_owned(),
            channel_refund_id: inner.get("refund_id").cloned(),
            transaction_id: inner.get("transaction_id").cloned(),
            outcome,
            refund_amount: notify_fen(&inner, "refund_fee")?,
            order_amount: notify_fen(&inner, "total_fee").ok(),
            success_time,
            merchant: sub_merchant_of(fields),
        }))
    }
}
