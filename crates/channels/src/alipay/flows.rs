//! The [`Channel`] implementation of Alipay: one method per flow
//! (`alipay.trade.create` / `.precreate` / `.wap.pay` / `.page.pay` /
//! `.app.pay`, `.query`, `.close`, `.refund`, `.fastpay.refund.query`, the
//! bill download of [`super::bill`]) and the `payData` each scene gets.
//! Notifications are parsed in [`super::notify`].

use std::collections::BTreeMap;

use async_trait::async_trait;
use cashdesk_core::html::escape;
use cashdesk_core::time::{parse_cn_datetime, to_cn_datetime};
use cashdesk_core::{ChannelType, Fen, SceneCode};
use chrono::Utc;

use super::client::{REFUND_NOT_FOUND_CODE, app_auth};
use super::wire::*;
use super::{AliPay, Fields, WAP_METHOD, is_alipay_user_id};
use crate::bill::{BillDownload, BillRequest};
use crate::channel::*;
use crate::error::{BusinessKind, ChannelError, NotifyError};
use crate::meta::ChannelMeta;
use crate::pay_data::PayData;
use crate::support::{truncate_bytes, url_encode};

#[async_trait]
impl Channel for AliPay {
    fn channel_type(&self) -> ChannelType {
        ChannelType::AliPay
    }

    fn api_version(&self) -> &'static str {
        "v2"
    }

    fn mch_id(&self) -> &str {
        &self.mch_id
    }

    fn meta(&self) -> &'static ChannelMeta {
        &super::META
    }

    async fn create_payment(&self, req: &PayRequest) -> Result<PayResponse, ChannelError> {
        let order = req.order_id.as_str();
        if req.payer_app_id.is_some() {
            return Err(ChannelError::invalid_request(
                "openidAppId",
                "openidAppId names a WeChat AppID; an Alipay payer has none",
            ));
        }
        match req.scene {
            SceneCode::Mini => {
                let method = "alipay.trade.create";
                let payer = req
                    .payer_id
                    .as_deref()
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| {
                        ChannelError::invalid_request(
                            "buyerId",
                            "buyerId (Alipay user id or OpenID) is required for the mini scene",
                        )
                    })?;
                let mut biz = self.trade_biz(req, Some("JSAPI_PAY"));
                if is_alipay_user_id(payer) {
                    biz.buyer_id = Some(payer.to_owned());
                } else {
                    biz.buyer_open_id = Some(payer.to_owned());
                }
                let r: CreateResponse = self
                    .call(method, &biz, true, req.store.as_ref())
                    .await?
                    .map_err(|f| f.into_error(method))?;
                self.check_echo(method, r.out_trade_no.as_deref(), order)?;
                let trade_no = r.trade_no.filter(|s| !s.is_empty()).ok_or_else(|| {
                    ChannelError::bad_response(format!("{method}: answer has no trade_no"))
                })?;
                Ok(PayResponse {
                    pay_data: PayData::TradeNo {
                        trade_no: trade_no.clone(),
                    },
                    prepay_id: Some(trade_no),
                })
            }
            SceneCode::Qr => {
                let method = "alipay.trade.precreate";
                let biz = self.trade_biz(req, None);
                let r: CreateResponse = self
                    .call(method, &biz, true, req.store.as_ref())
                    .await?
                    .map_err(|f| f.into_error(method))?;
                self.check_echo(method, r.out_trade_no.as_deref(), order)?;
                let qr = r.qr_code.filter(|s| !s.is_empty()).ok_or_else(|| {
                    ChannelError::bad_response(format!("{method}: answer has no qr_code"))
                })?;
                Ok(PayResponse {
                    pay_data: PayData::QrCode {
                        qr_code: qr,
                        qr_svg_url: None,
                    },
                    prepay_id: None,
                })
            }
            SceneCode::Wap | SceneCode::Page => {
                let (method, product) = if req.scene == SceneCode::Wap {
                    (WAP_METHOD, "QUICK_WAP_WAY")
                } else {
                    ("alipay.trade.page.pay", "FAST_INSTANT_TRADE_PAY")
                };
                let params = self.client_side_params(method, req, product)?;
                Ok(PayResponse {
                    pay_data: self.redirect_pay_data(&params),
                    prepay_id: None,
                })
            }
            SceneCode::App => {
                let params =
                    self.client_side_params("alipay.trade.app.pay", req, "QUICK_MSECURITY_PAY")?;
                let order_string = url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(params.iter())
                    .finish();
                Ok(PayResponse {
                    pay_data: PayData::AlipayApp { order_string },
                    prepay_id: None,
                })
            }
            other => Err(ChannelError::invalid_request(
                "channelId",
                format!(
                    "scene {other} is not available on Alipay (use mini, wap, page, qr or app)"
                ),
            )),
        }
    }

    async fn query(&self, req: &QueryRequest) -> Result<ChannelOrderStatus, ChannelError> {
        let method = "alipay.trade.query";
        let order = req.order_id.as_str();
        let biz = TradeRef {
            out_trade_no: order.to_owned(),
        };
        let r: QueryResponse = match self.call(method, &biz, false, req.store.as_ref()).await? {
            Ok(r) => r,
            Err(f) if f.is("ACQ.TRADE_NOT_EXIST") => {
                if !f.signed {
                    return Err(ChannelError::bad_response(format!(
                        "{method}: unsigned ACQ.TRADE_NOT_EXIST answer"
                    )));
                }
                return Ok(ChannelOrderStatus::NotFound);
            }
            Err(f) => return Err(f.into_error(method)),
        };
        self.check_echo(method, r.out_trade_no.as_deref(), order)?;
        let paid = || -> Result<PaidInfo, ChannelError> {
            let amount = answer_fen(method, "total_amount", r.total_amount.as_ref())?;
            if amount != req.amount {
                return Err(ChannelError::bad_response(format!(
                    "{method}: paid amount {amount} fen differs from the order amount {} fen",
                    req.amount
                )));
            }
            Ok(PaidInfo {
                transaction_id: r
                    .trade_no
                    .clone()
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| {
                        ChannelError::bad_response(format!("{method}: paid trade without trade_no"))
                    })?,
                pay_time: r
                    .send_pay_date
                    .as_deref()
                    .and_then(parse_cn_datetime)
                    .ok_or_else(|| {
                        ChannelError::bad_response(format!(
                            "{method}: paid trade without a valid send_pay_date"
                        ))
                    })?,
                amount,
            })
        };
        let state = r.trade_status.clone().unwrap_or_default();
        Ok(match state.as_str() {
            "TRADE_SUCCESS" | "TRADE_FINISHED" => ChannelOrderStatus::Paid(paid()?),
            "WAIT_BUYER_PAY" => ChannelOrderStatus::NotPaid,
            "TRADE_CLOSED" => {
                if r.send_pay_date.as_deref().is_some_and(|s| !s.is_empty()) {
                    ChannelOrderStatus::Refunded(paid()?)
                } else {
                    ChannelOrderStatus::Closed
                }
            }
            "" => {
                return Err(ChannelError::bad_response(format!(
                    "{method}: answer has no trade_status"
                )));
            }
            other => ChannelOrderStatus::Unknown {
                state: other.to_owned(),
            },
        })
    }

    async fn close(&self, req: &CloseRequest) -> Result<(), ChannelError> {
        let method = "alipay.trade.close";
        let biz = TradeRef {
            out_trade_no: req.order_id.as_str().to_owned(),
        };
        match self
            .call::<CreateResponse>(method, &biz, false, req.store.as_ref())
            .await?
        {
            Ok(r) => self.check_echo(method, r.out_trade_no.as_deref(), req.order_id.as_str()),
            // A trade Alipay never created (the buyer never opened the wap or
            // page URL) has nothing to close; its time_expire bounds the URL.
            Err(f) if f.is("ACQ.TRADE_NOT_EXIST") && f.signed => Ok(()),
            Err(f) => Err(f.into_error(method)),
        }
    }

    async fn refund(&self, req: &RefundRequest) -> Result<RefundStatus, ChannelError> {
        let method = "alipay.trade.refund";
        let biz = RefundBiz {
            out_trade_no: req.order_id.as_str().to_owned(),
            refund_amount: req.refund_amount.to_yuan(),
            out_request_no: req.refund_id.as_str().to_owned(),
            refund_reason: req
                .reason
                .as_deref()
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(|r| truncate_chars(r, 256)),
        };
        let r: RefundResponse = self
            .call(method, &biz, false, req.store.as_ref())
            .await?
            .map_err(|f| f.into_error(method))?;
        self.check_echo(method, r.out_trade_no.as_deref(), req.order_id.as_str())?;
        let success = r.fund_change.as_deref() == Some("Y");
        Ok(RefundStatus {
            outcome: if success {
                RefundOutcome::Success
            } else {
                RefundOutcome::Processing
            },
            channel_refund_id: r.trade_no.filter(|s| !s.is_empty()),
            refund_amount: Some(req.refund_amount),
            success_time: if success {
                r.gmt_refund_pay.as_deref().and_then(parse_cn_datetime)
            } else {
                None
            },
        })
    }

    async fn query_refund(&self, req: &RefundQueryRequest) -> Result<RefundStatus, ChannelError> {
        let method = "alipay.trade.fastpay.refund.query";
        let biz = RefundQueryBiz {
            out_trade_no: req.order_id.as_str().to_owned(),
            out_request_no: req.refund_id.as_str().to_owned(),
            query_options: vec!["gmt_refund_pay"],
        };
        let r: RefundQueryResponse = self
            .call(method, &biz, false, req.store.as_ref())
            .await?
            .map_err(|f| f.into_error(method))?;
        self.check_echo(method, r.out_trade_no.as_deref(), req.order_id.as_str())?;
        if let Some(no) = r.out_request_no.as_deref().filter(|s| !s.is_empty())
            && no != req.refund_id.as_str()
        {
            return Err(ChannelError::bad_response(format!(
                "{method}: answer is for out_request_no {no}, not {}",
                req.refund_id
            )));
        }
        let refund_amount = match &r.refund_amount {
            Some(_) => Some(answer_fen(
                method,
                "refund_amount",
                r.refund_amount.as_ref(),
            )?),
            None => None,
        };
        let status = r.refund_status.as_deref().filter(|s| !s.is_empty());
        if status.is_none() && refund_amount.is_none() {
            return Err(ChannelError::business(
                BusinessKind::RefundNotFound,
                REFUND_NOT_FOUND_CODE,
                format!(
                    "{method}: Alipay has no refund {} (not received, or refused)",
                    req.refund_id
                ),
            ));
        }
        let success = status == Some("REFUND_SUCCESS");
        Ok(RefundStatus {
            outcome: if success {
                RefundOutcome::Success
            } else {
                RefundOutcome::Processing
            },
            channel_refund_id: r.trade_no.filter(|s| !s.is_empty()),
            refund_amount,
            success_time: r.gmt_refund_pay.as_deref().and_then(parse_cn_datetime),
        })
    }

    async fn download_bill(
        &self,
        req: &BillRequest,
        sink: &mut (dyn std::io::Write + Send),
    ) -> Result<BillDownload, ChannelError> {
        self.download_trade_bill(req, sink).await
    }

    fn parse_notification(
        &self,
        n: &IncomingNotification,
    ) -> Result<VerifiedNotification, NotifyError> {
        self.parse_notify(n)
    }

    fn check_merchant(
        &self,
        notified: &NotifiedMerchant,
        store: Option<&StoreMerchant>,
    ) -> Result<(), NotifyError> {
        self.check_notified_merchant(notified, store)
    }

    fn notification_reply(&self, ok: bool) -> NotificationReply {
        Self::reply(ok)
    }
}

impl AliPay {
    fn trade_biz(&self, req: &PayRequest, product_code: Option<&'static str>) -> TradeBiz {
        TradeBiz {
            out_trade_no: req.order_id.as_str().to_owned(),
            total_amount: req.amount.to_yuan(),
            subject: truncate_chars(&req.description, 256),
            product_code,
            buyer_id: None,
            buyer_open_id: None,
            time_expire: req.expire_at.map(to_cn_datetime),
            quit_url: None,
            passback_params: None,
        }
    }

    /// wap / page / app: signed parameters for the buyer's side, no call.
    fn client_side_params(
        &self,
        method: &str,
        req: &PayRequest,
        product_code: &'static str,
    ) -> Result<Fields, ChannelError> {
        let mut biz = self.trade_biz(req, Some(product_code));
        // The order's return URL, else the config's.
        let return_url = req
            .return_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .or(self.return_url.as_deref());
        if method == WAP_METHOD {
            // The buyer leaving the wap cashier goes back to the shop:
            // the return URL, else cashdesk's public site.
            biz.quit_url = Some(return_url.unwrap_or(&self.public_url).to_owned());
        }
        biz.passback_params = req
            .attach
            .as_deref()
            .filter(|a| !a.is_empty())
            .map(|a| url_encode(truncate_bytes(a, 512)));
        let auth = app_auth(req.store.as_ref())?;
        self.signed_params(
            method,
            Self::biz_json(&biz)?,
            &to_cn_datetime(Utc::now()),
            true,
            return_url,
            auth.as_ref(),
        )
    }

    fn redirect_pay_data(&self, params: &Fields) -> PayData {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params.iter())
            .finish();
        PayData::Redirect {
            redirect_url: format!("{}?{query}", self.gateway.as_str()),
            form: auto_submit_form(self.gateway.as_str(), params),
        }
    }

    fn check_echo(
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
}

/// An auto-submitting HTML form POSTing `params` to `action` (what Alipay's
/// SDKs return for `pageExecute`).
pub fn auto_submit_form(action: &str, params: &BTreeMap<String, String>) -> String {
    let mut s = format!(
        "<form name=\"punchout_form\" method=\"post\" action=\"{}\">\n",
        escape(action)
    );
    for (k, v) in params {
        s.push_str(&format!(
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">\n",
            escape(k),
            escape(v)
        ));
    }
    s.push_str("<input type=\"submit\" value=\"立即支付\" style=\"display:none\">\n</form>\n");
    s.push_str("<script>document.forms[0].submit();</script>");
    s
}

/// At most `max` characters (Alipay limits `subject` in characters).
fn truncate_chars(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

fn answer_fen(what: &str, field: &str, v: Option<&Yuan>) -> Result<Fen, ChannelError> {
    let raw =
        v.ok_or_else(|| ChannelError::bad_response(format!("{what}: answer has no {field}")))?;
    Fen::from_yuan("amount", &raw.0)
        .map_err(|_| ChannelError::bad_response(format!("{what}: {field} `{}` is not yuan", raw.0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(pairs: &[(&str, &str)]) -> Fields {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn forms_and_decoding() {
        let p = m(&[("a", "x\"<y>&'"), ("b", "1")]);
        let form = auto_submit_form("https://gw.example/gateway.do", &p);
        assert!(form.contains(r#"name="a" value="x&quot;&lt;y&gt;&amp;&#39;""#));
        assert!(form.contains("document.forms[0].submit()"));
    }

    #[test]
    fn yuan_in_answers_is_exact() {
        let y = |v: serde_json::Value| serde_json::from_value::<Yuan>(v).unwrap();
        assert_eq!(
            answer_fen("m", "total_amount", Some(&y(json!("0.1")))).unwrap(),
            Fen::from_stored(10)
        );
        assert_eq!(
            answer_fen("m", "total_amount", Some(&y(json!("88.88")))).unwrap(),
            Fen::from_stored(8888)
        );
        assert_eq!(
            answer_fen("m", "total_amount", Some(&y(json!(0.29)))).unwrap(),
            Fen::from_stored(29)
        );
        assert!(answer_fen("m", "total_amount", Some(&y(json!("0.001")))).is_err());
        assert!(answer_fen("m", "total_amount", None).is_err());
        assert!(serde_json::from_value::<Yuan>(json!(true)).is_err());
    }
}
