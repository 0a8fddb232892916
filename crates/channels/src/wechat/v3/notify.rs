//! WeChat Pay v3 notifications: the `Wechatpay-*` headers verified first
//! (an unknown serial is a key problem: the platform key may have
//! rotated), then the resource decrypted with AEAD_AES_256_GCM under the
//! APIv3 key and parsed; `appid`/`mchid` must be this config's. The reply
//! is 204 (or 500 with WeChat's failure body: it retries).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use cashdesk_core::Fen;

use super::WxPayV3;
use super::client::SigProblem;
use super::wire::*;
use crate::channel::*;
use crate::error::NotifyError;

impl WxPayV3 {
    pub(super) fn parse_notify(
        &self,
        n: &IncomingNotification,
    ) -> Result<VerifiedNotification, NotifyError> {
        // Authenticity first; the body is not even parsed before it verifies.
        match self.verify_signed(|name| n.header(name).map(str::to_owned), &n.body) {
            Ok(true) => {}
            Ok(false) => return Err(NotifyError::unverifiable("no Wechatpay-Signature headers")),
            Err((SigProblem::UnknownSerial, msg)) => return Err(NotifyError::key_problem(msg)),
            Err((SigProblem::Invalid, msg)) => return Err(NotifyError::unverifiable(msg)),
        }
        let envelope: V3Notification = serde_json::from_slice(&n.body).map_err(|e| {
            NotifyError::malformed(format!("not a WeChat Pay v3 notification: {e}"))
        })?;
        let res = &envelope.resource;
        if res.algorithm != "AEAD_AES_256_GCM" {
            return Err(NotifyError::malformed(format!(
                "unsupported resource algorithm `{}`",
                res.algorithm
            )));
        }
        let ciphertext = STANDARD
            .decode(res.ciphertext.trim().as_bytes())
            .map_err(|_| NotifyError::malformed("resource.ciphertext is not base64"))?;
        let plain = cashdesk_crypto::aead::aes_gcm_decrypt(
            self.api_v3_key.expose().as_bytes(),
            res.nonce.as_bytes(),
            res.associated_data.as_deref().unwrap_or("").as_bytes(),
            &ciphertext,
        )
        .map_err(|_| {
            NotifyError::key_problem(
                "signed resource does not decrypt with this config's APIv3 key",
            )
        })?;
        match envelope.event_type.as_str() {
            "TRANSACTION.SUCCESS" => {
                let t: V3Transaction = serde_json::from_slice(&plain)
                    .map_err(|e| NotifyError::malformed(format!("transaction resource: {e}")))?;
                // A direct order names appid/mchid, a partner order the
                // service provider as sp_appid/sp_mchid: either way this
                // config's.
                let appid = t.appid.as_deref().or(t.sp_appid.as_deref());
                if appid != Some(self.app_id.as_str()) {
                    return Err(NotifyError::mismatch(format!(
                        "appid `{}` is not this config's",
                        appid.unwrap_or("")
                    )));
                }
                let mchid = t.mchid.as_deref().or(t.sp_mchid.as_deref());
                if mchid != Some(self.mch_id.as_str()) {
                    return Err(NotifyError::mismatch(format!(
                        "mchid `{}` is not this config's",
                        mchid.unwrap_or("")
                    )));
                }
                let result = if t.trade_state == "SUCCESS" {
                    let amount = t
                        .amount
                        .as_ref()
                        .and_then(|a| a.total)
                        .and_then(|v| Fen::parse_positive("amount", v).ok())
                        .ok_or_else(|| NotifyError::malformed("no amount.total"))?;
                    PaymentResult::Paid(PaidInfo {
                        transaction_id: t
                            .transaction_id
                            .clone()
                            .filter(|s| !s.is_empty())
                            .ok_or_else(|| NotifyError::malformed("no transaction_id"))?,
                        pay_time: t
                            .success_time
                            .as_deref()
                            .and_then(parse_time)
                            .ok_or_else(|| NotifyError::malformed("no valid success_time"))?,
                        amount,
                    })
                } else {
                    PaymentResult::Failed {
                        code: t.trade_state.clone(),
                        message: t.trade_state_desc.clone().unwrap_or_default(),
                    }
                };
                let merchant =
                    NotifiedMerchant::from_fields(&["sub_mchid", "sub_appid"], |n| match n {
                        "sub_mchid" => t.sub_mchid.as_deref(),
                        _ => t.sub_appid.as_deref(),
                    });
                Ok(VerifiedNotification::Payment(PaymentNotification {
                    out_trade_no: t.out_trade_no,
                    result,
                    merchant,
                    attach: t.attach.filter(|a| !a.is_empty()),
                }))
            }
            "REFUND.SUCCESS" | "REFUND.ABNORMAL" | "REFUND.CLOSED" => {
                let r: V3RefundResource = serde_json::from_slice(&plain)
                    .map_err(|e| NotifyError::malformed(format!("refund resource: {e}")))?;
                let mchid = r.mchid.as_deref().or(r.sp_mchid.as_deref());
                if mchid != Some(self.mch_id.as_str()) {
                    return Err(NotifyError::mismatch(format!(
                        "mchid `{}` is not this config's",
                        mchid.unwrap_or("")
                    )));
                }
                let merchant =
                    NotifiedMerchant::from_fields(&["sub_mchid"], |_| r.sub_mchid.as_deref());
                let outcome = refund_outcome(&r.refund_status).ok_or_else(|| {
                    NotifyError::malformed(format!("unknown refund_status `{}`", r.refund_status))
                })?;
                let success_time = match r.success_time.as_deref().filter(|s| !s.is_empty()) {
                    Some(t) => Some(
                        parse_time(t)
                            .ok_or_else(|| NotifyError::malformed(format!("success_time `{t}`")))?,
                    ),
                    None => None,
                };
                Ok(VerifiedNotification::Refund(RefundNotification {
                    out_trade_no: r.out_trade_no,
                    out_refund_no: r.out_refund_no,
                    channel_refund_id: r.refund_id,
                    transaction_id: r.transaction_id,
                    outcome,
                    refund_amount: Fen::parse_positive("refund", r.amount.refund).map_err(
                        |_| NotifyError::malformed("amount.refund is not a positive amount"),
                    )?,
                    order_amount: r
                        .amount
                        .total
                        .and_then(|v| Fen::parse_positive("total", v).ok()),
                    success_time,
                    merchant,
                }))
            }
            other => Ok(VerifiedNotification::Other {
                event: other.to_owned(),
            }),
        }
    }

    pub(super) fn reply(ok: bool) -> NotificationReply {
        if ok {
            NotificationReply {
                status: 204,
                content_type: None,
                body: String::new(),
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
