//! What a payment or a settled refund sets off: the order book's change,
//! a line in the request log, and the notification built in the order's
//! channel format (WeChat v2 XML or v3 JSON, Alipay form, Lakala JSON),
//! shaped by notification faults and queued for the notifier.

use serde_json::json;

use crate::ledger::{Api, LedgerError, Order, OrderRef, Refund};
use crate::notify::{self, Format, Job, Msg};
use crate::reqlog::NewEntry;
use crate::{Shared, alipay, faults, lakala, v3};

/// 8-4-4-4-12 hex, the shape of WeChat v3 notification ids.
fn notification_id() -> String {
    let h = hex::encode(cashdesk_crypto::random::bytes(16));
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

impl Shared {
    /// The payer paid (or failed): update the order and notify.
    pub(crate) fn pay(
        &self,
        mch_id: &str,
        out_trade_no: &str,
        success: bool,
        openid: Option<String>,
        via: &str,
    ) -> Result<Order, LedgerError> {
        let now = self.now();
        let existing = self
            .ledger
            .find(mch_id, &OrderRef::OutTradeNo(out_trade_no.to_owned()));
        let api = existing.as_ref().map(|o| o.api);
        let result = match api {
            // Alipay has no failed state: a payment that does not happen
            // leaves the trade to be closed (as its timeout does).
            Some(Api::Alipay) if !success => self.ledger.close(mch_id, out_trade_no, now),
            Some(Api::Alipay) => {
                let buyer = openid.or_else(|| Some(alipay::new_buyer_id()));
                self.ledger.pay(mch_id, out_trade_no, true, buyer, now)
            }
            Some(Api::Lakala) => {
                let payer = openid.or_else(|| existing.as_ref().and_then(lakala::default_payer));
                self.ledger.pay(mch_id, out_trade_no, success, payer, now)
            }
            _ => self.ledger.pay(mch_id, out_trade_no, success, openid, now),
        };
        self.log.push(NewEntry {
            kind: "payer",
            method: "POST",
            target: out_trade_no,
            mch_id: Some(mch_id),
            status: if result.is_ok() { 200 } else { 409 },
            result: match &result {
                Ok(_) if success => "PAID",
                Ok(_) if api == Some(Api::Alipay) => "CLOSED",
                Ok(_) => "PAYERROR",
                Err(_) => "REFUSED",
            },
            detail: Some(format!("via {via}")),
            request_body: None,
        });
        let order = result?;
        self.notify_payment(&order);
        Ok(order)
    }

    pub(crate) fn notify_payment(&self, o: &Order) {
        if o.notify_url.is_empty() {
            return;
        }
        match o.api {
            Api::Alipay => {
                let faults = self.faults.take_notify_for("ali-pay", &o.mch_id);
                let (id, body) = alipay::notification(self, o, None, &faults);
                self.enqueue(
                    id,
                    &o.mch_id,
                    &o.out_trade_no,
                    &o.notify_url,
                    "pay",
                    body,
                    Format::Alipay,
                    &faults,
                );
                return;
            }
            Api::Lakala => {
                // Like v3, no failed-payment notification: the merchant
                // finds out by query (UNCONFIRMED, see `lakala`).
                if o.paid().is_none() {
                    return;
                }
                let faults = self.faults.take_notify_for("lakala", &o.mch_id);
                let body = lakala::notification_body(o, &faults, chrono::Utc::now());
                let format = Format::Lakala {
                    tamper_signature: faults.tamper_signature,
                };
                let id = notification_id();
                self.enqueue(
                    id,
                    &o.mch_id,
                    &o.out_trade_no,
                    &o.notify_url,
                    "pay",
                    body,
                    format,
                    &faults,
                );
                return;
            }
            Api::V2(_) | Api::V3 => {}
        }
        let Some(m) = self.wechat_signer(o) else {
            return;
        };
        if o.api == Api::V3 && o.paid().is_none() {
            // v3 has no failed-payment event: the merchant finds out by query.
            return;
        }
        let faults = self.faults.take_notify(&o.mch_id);
        let id = notification_id();
        let (body, format) = match o.api {
            Api::V2(sign_type) => (notify::v2_pay(&m, o, sign_type, &faults), Format::V2),
            Api::Alipay | Api::Lakala => return,
            Api::V3 => {
                let mut plain = v3::transaction_json(o, chrono::Utc::now());
                if faults.tamper_amount {
                    plain["amount"]["total"] = json!(o.total + 1);
                    plain["amount"]["payer_total"] = json!(o.total + 1);
                }
                match notify::v3_body(
                    &m,
                    &id,
                    "TRANSACTION.SUCCESS",
                    "支付成功",
                    "transaction",
                    &plain,
                ) {
                    Ok(body) => (
                        body,
                        Format::V3 {
                            tamper_signature: faults.tamper_signature,
                        },
                    ),
                    Err(e) => {
                        tracing::error!(error = %e, "building a v3 notification failed");
                        return;
                    }
                }
            }
        };
        self.enqueue(
            id,
            &o.mch_id,
            &o.out_trade_no,
            &o.notify_url,
            "pay",
            body,
            format,
            &faults,
        );
    }

    pub(crate) fn notify_refund(&self, r: &Refund) {
        if r.api == Api::Alipay {
            // Alipay reports a refund as a trade notification to the
            // order's notify_url (carried in `r.notify_url`).
            let (Some(url), Some(o)) = (
                r.notify_url.as_deref().filter(|u| !u.is_empty()),
                self.ledger
                    .find(&r.mch_id, &OrderRef::OutTradeNo(r.out_trade_no.clone())),
            ) else {
                return;
            };
            let faults = self.faults.take_notify_for("ali-pay", &r.mch_id);
            let (id, body) = alipay::notification(self, &o, Some(r), &faults);
            self.enqueue(
                id,
                &r.mch_id,
                &r.out_trade_no,
                url,
                "refund",
                body,
                Format::Alipay,
                &faults,
            );
            return;
        }
        let order = self
            .ledger
            .find(&r.mch_id, &OrderRef::OutTradeNo(r.out_trade_no.clone()));
        let (Some(m), Some(url)) = (
            order.as_ref().and_then(|o| self.wechat_signer(o)),
            r.notify_url.as_deref(),
        ) else {
            return;
        };
        let partner = order.as_ref().and_then(|o| o.partner().cloned());
        let faults = self.faults.take_notify(&r.mch_id);
        let id = notification_id();
        let (body, format) = match r.api {
            Api::V2(_) => (
                notify::v2_refund(&m, r, partner.as_ref(), &faults),
                Format::V2,
            ),
            Api::Alipay | Api::Lakala => return,
            Api::V3 => {
                let amount = r.amount + i64::from(faults.tamper_amount);
                let mut plain = json!({
                    "mchid": r.mch_id,
                    "out_trade_no": r.out_trade_no,
                    "transaction_id": r.transaction_id,
                    "out_refund_no": r.out_refund_no,
                    "refund_id": r.refund_id,
                    "refund_status": "SUCCESS",
                    "success_time": r.success_at.map(cashdesk_core::time::to_rfc3339_cn),
                    "user_received_account": "支付用户零钱",
                    "amount": {"total": r.total, "refund": amount, "payer_total": r.total, "payer_refund": amount},
                });
                if let (Some(p), Some(o)) = (&partner, plain.as_object_mut()) {
                    // A partner refund names the service provider and the
                    // sub-merchant instead of mchid.
                    o.remove("mchid");
                    o.insert("sp_mchid".into(), json!(p.sp_mch_id));
                    o.insert("sub_mchid".into(), json!(r.mch_id));
                }
                match notify::v3_body(&m, &id, "REFUND.SUCCESS", "退款成功", "refund", &plain) {
                    Ok(body) => (
                        body,
                        Format::V3 {
                            tamper_signature: faults.tamper_signature,
                        },
                    ),
                    Err(e) => {
                        tracing::error!(error = %e, "building a v3 refund notification failed");
                        return;
                    }
                }
            }
        };
        self.enqueue(
            id,
            &r.mch_id,
            &r.out_trade_no,
            url,
            "refund",
            body,
            format,
            &faults,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn enqueue(
        &self,
        id: String,
        mch_id: &str,
        out_trade_no: &str,
        url: &str,
        what: &'static str,
        body: String,
        format: Format,
        faults: &faults::NotifyFaults,
    ) {
        if faults.drop {
            self.log.push(NewEntry {
                kind: "notify",
                method: "POST",
                target: url,
                mch_id: Some(mch_id),
                status: 0,
                result: "DROPPED",
                detail: Some(format!(
                    "{what} notification {id} dropped by fault injection"
                )),
                request_body: Some(&body),
            });
            return;
        }
        let _ = self.notifier.send(Msg::Send(Job {
            id,
            mch_id: mch_id.to_owned(),
            out_trade_no: out_trade_no.to_owned(),
            url: url.to_owned(),
            what,
            body,
            format,
            copies: faults.copies,
            delay: faults.delay,
        }));
    }

    pub(crate) fn schedule_refund_completion(&self, r: &Refund) {
        let _ = self.notifier.send(Msg::CompleteRefund {
            mch_id: r.mch_id.clone(),
            out_refund_no: r.out_refund_no.clone(),
        });
    }
}
