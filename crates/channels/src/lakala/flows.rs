//! The [`Channel`] implementation of Lakala: one method per flow
//! (preorder, tradequery, close, refund and the refund's tradequery) and
//! the `payData` each scene gets from the preorder's `acc_resp_fields`.
//! Notifications are parsed in [`super::notify`].

use async_trait::async_trait;
use cashdesk_core::time::parse_compact;
use cashdesk_core::{ChannelType, Fen, SceneCode};
use chrono::Utc;

use super::wire::*;
use super::{CLOSE_PATH, Lakala, PREORDER_PATH, QUERY_PATH, REFUND_PATH, choices};
use crate::channel::*;
use crate::error::{ChannelError, NotifyError};
use crate::meta::ChannelMeta;
use crate::pay_data::{PayData, WxRequestPayment};
use crate::support::truncate_bytes;

fn field<'a>(
    what: &str,
    fields: &'a serde_json::Map<String, serde_json::Value>,
    name: &str,
) -> Result<&'a str, ChannelError> {
    fields
        .get(name)
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ChannelError::bad_response(format!("{what}: acc_resp_fields has no {name}")))
}

/// `wx.requestPayment` params from the preorder's `acc_resp_fields`.
fn request_payment(
    what: &str,
    f: &serde_json::Map<String, serde_json::Value>,
) -> Result<PayData, ChannelError> {
    // time_stamp may arrive as a number; wx.requestPayment wants a string.
    let ts = match f.get("time_stamp") {
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => field(what, f, "time_stamp")?.to_owned(),
    };
    Ok(PayData::RequestPayment(WxRequestPayment {
        app_id: field(what, f, "app_id")?.to_owned(),
        time_stamp: ts,
        nonce_str: field(what, f, "nonce_str")?.to_owned(),
        package: field(what, f, "package")?.to_owned(),
        sign_type: field(what, f, "sign_type")?.to_owned(),
        pay_sign: field(what, f, "pay_sign")?.to_owned(),
    }))
}

#[async_trait]
impl Channel for Lakala {
    fn channel_type(&self) -> ChannelType {
        ChannelType::Lakala
    }

    fn api_version(&self) -> &'static str {
        "v3"
    }

    fn mch_id(&self) -> &str {
        &self.mch_id
    }

    fn meta(&self) -> &'static ChannelMeta {
        &super::META
    }

    async fn create_payment(&self, req: &PayRequest) -> Result<PayResponse, ChannelError> {
        let what = PREORDER_PATH;
        let terminal = self.terminal(req.store.as_ref())?;
        let payer = req
            .payer_id
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        let timeout = req.expire_at.map(|t| {
            let secs = (t - Utc::now()).num_seconds();
            choices::timeout_express((secs + 59).div_euclid(60))
        });
        let wechat_fields = |payer: Option<&str>| -> Result<AccBusiFields, ChannelError> {
            let openid = payer.ok_or_else(|| {
                ChannelError::invalid_request(
                    "openid",
                    "openid is required for WeChat mini and jsapi",
                )
            })?;
            let sub_appid = terminal.sub_app_id.clone().ok_or_else(|| {
                ChannelError::config(
                    "credentials.subAppId (the WeChat AppID) is required for WeChat payments",
                )
            })?;
            // Lakala pays WeChat users of this one AppID.
            if let Some(w) = req.payer_app_id.as_deref().map(str::trim)
                && w != sub_appid
            {
                return Err(ChannelError::invalid_request(
                    "openidAppId",
                    format!(
                        "openidAppId `{w}` is not the WeChat AppID {sub_appid} this Lakala terminal pays with"
                    ),
                ));
            }
            Ok(AccBusiFields {
                sub_appid: Some(sub_appid),
                user_id: Some(openid.to_owned()),
                timeout_express: timeout.clone(),
            })
        };
        let (account_type, trans_type, acc) = match req.scene {
            SceneCode::Mini => ("WECHAT", "71", wechat_fields(payer)?),
            SceneCode::Jsapi => {
                let p = payer.ok_or_else(|| {
                    ChannelError::invalid_request(
                        "openid",
                        "openid or Alipay buyer id is required for the jsapi scene",
                    )
                })?;
                match choices::jsapi_wallet(p) {
                    "ALIPAY" => (
                        "ALIPAY",
                        "51",
                        AccBusiFields {
                            user_id: Some(p.to_owned()),
                            timeout_express: timeout.clone(),
                            ..Default::default()
                        },
                    ),
                    _ => ("WECHAT", "51", wechat_fields(Some(p))?),
                }
            }
            SceneCode::Native => (
                choices::NATIVE_ACCOUNT_TYPE,
                "41",
                AccBusiFields {
                    timeout_express: timeout.clone(),
                    ..Default::default()
                },
            ),
            SceneCode::H5 => (
                "ALIPAY",
                "81",
                AccBusiFields {
                    timeout_express: timeout.clone(),
                    ..Default::default()
                },
            ),
            other => {
                return Err(ChannelError::invalid_request(
                    "channelId",
                    format!(
                        "scene {other} is not available on Lakala (use mini, jsapi, native or h5)"
                    ),
                ));
            }
        };
        let has_acc =
            acc.sub_appid.is_some() || acc.user_id.is_some() || acc.timeout_express.is_some();
        let body = PreorderRequest {
            merchant_no: terminal.merchant_no.clone(),
            term_no: terminal.term_no.clone(),
            out_trade_no: req.order_id.as_str().to_owned(),
            account_type,
            trans_type,
            total_amount: req.amount.get().to_string(),
            location_info: Self::location(req.client_ip.as_deref()),
            subject: truncate_bytes(&req.description, choices::SUBJECT_MAX_BYTES).to_owned(),
            notify_url: self.notify_url.clone(),
            remark: req
                .attach
                .as_deref()
                .filter(|a| !a.is_empty())
                .map(|a| truncate_bytes(a, 128).to_owned()),
            acc_busi_fields: has_acc.then_some(acc),
        };
        let r: PreorderResponse = self
            .call(what, &body)
            .await?
            .map_err(|f| f.into_error(what))?;
        self.check_answer_merchant(what, r.merchant_no.as_deref(), &terminal)?;
        self.check_trade_no(what, r.out_trade_no.as_deref(), req.order_id.as_str())?;
        let fields = r.acc_resp_fields.unwrap_or_default();
        let pay_data = match (account_type, trans_type) {
            ("WECHAT", _) => request_payment(what, &fields)?,
            (_, "51") => PayData::TradeNo {
                trade_no: field(what, &fields, "prepay_id")?.to_owned(),
            },
            (_, "41") => PayData::Native {
                code_url: field(what, &fields, "code")?.to_owned(),
                qr_svg_url: None,
            },
            _ => {
                let url = choices::H5_URL_FIELDS
                    .iter()
                    .find_map(|n| {
                        fields
                            .get(*n)
                            .and_then(|v| v.as_str())
                            .filter(|s| !s.is_empty())
                    })
                    .ok_or_else(|| {
                        ChannelError::bad_response(format!(
                            "{what}: acc_resp_fields has none of {}",
                            choices::H5_URL_FIELDS.join(", ")
                        ))
                    })?;
                PayData::H5 {
                    h5_url: url.to_owned(),
                }
            }
        };
        let prepay_id = fields
            .get("prepay_id")
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .or(r.trade_no.filter(|s| !s.is_empty()));
        Ok(PayResponse {
            pay_data,
            prepay_id,
        })
    }

    async fn query(&self, req: &QueryRequest) -> Result<ChannelOrderStatus, ChannelError> {
        let what = QUERY_PATH;
        let terminal = self.terminal(req.store.as_ref())?;
        let body = TradeQueryRequest {
            merchant_no: terminal.merchant_no.clone(),
            term_no: terminal.term_no.clone(),
            out_trade_no: req.order_id.as_str().to_owned(),
        };
        let t: Trade = match self.call(what, &body).await? {
            Ok(t) => t,
            // Verified answers only reach here, so "not found" is believed.
            Err(f) if f.code == choices::CODE_NOT_FOUND => return Ok(ChannelOrderStatus::NotFound),
            Err(f) => return Err(f.into_error(what)),
        };
        self.check_answer_merchant(what, t.merchant_no.as_deref(), &terminal)?;
        self.check_trade_no(what, t.out_trade_no.as_deref(), req.order_id.as_str())?;
        let state = t.trade_state.clone().unwrap_or_default();
        if state.is_empty() {
            return Err(ChannelError::bad_response(format!(
                "{what}: answer has no trade_state"
            )));
        }
        if let Some(s) = choices::order_state(&state) {
            return Ok(match s {
                ChannelOrderStatus::Failed { code, .. } => ChannelOrderStatus::Failed {
                    code,
                    message: t.trade_state_desc.clone().unwrap_or_default(),
                },
                other => other,
            });
        }
        let paid = || -> Result<PaidInfo, ChannelError> {
            let amount = t
                .total_amount
                .and_then(|v| Fen::parse_positive("total_amount", v.0).ok())
                .ok_or_else(|| {
                    ChannelError::bad_response(format!("{what}: paid trade without total_amount"))
                })?;
            if amount != req.amount {
                return Err(ChannelError::bad_response(format!(
                    "{what}: paid amount {amount} fen differs from the order amount {} fen",
                    req.amount
                )));
            }
            Ok(PaidInfo {
                transaction_id: t
                    .trade_no
                    .clone()
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| {
                        ChannelError::bad_response(format!("{what}: paid trade without trade_no"))
                    })?,
                pay_time: t
                    .trade_time
                    .as_deref()
                    .and_then(parse_compact)
                    .ok_or_else(|| {
                        ChannelError::bad_response(format!(
                            "{what}: paid trade without a valid trade_time"
                        ))
                    })?,
                amount,
            })
        };
        Ok(match state.as_str() {
            "SUCCESS" => ChannelOrderStatus::Paid(paid()?),
            "PART_REFUND" | "REFUND" => ChannelOrderStatus::Refunded(paid()?),
            other => ChannelOrderStatus::Unknown {
                state: other.to_owned(),
            },
        })
    }

    async fn close(&self, req: &CloseRequest) -> Result<(), ChannelError> {
        let what = CLOSE_PATH;
        let terminal = self.terminal(req.store.as_ref())?;
        let body = CloseRequestBody {
            merchant_no: terminal.merchant_no.clone(),
            term_no: terminal.term_no.clone(),
            origin_out_trade_no: req.order_id.as_str().to_owned(),
            location_info: Self::location(None),
        };
        match self.call::<Trade>(what, &body).await? {
            Ok(t) => self.check_answer_merchant(what, t.merchant_no.as_deref(), &terminal),
            // Never created at Lakala: nothing can be paid, nothing to close.
            Err(f) if f.code == choices::CODE_NOT_FOUND => Ok(()),
            Err(f) => Err(f.into_error(what)),
        }
    }

    async fn refund(&self, req: &RefundRequest) -> Result<RefundStatus, ChannelError> {
        let what = REFUND_PATH;
        let terminal = self.terminal(req.store.as_ref())?;
        let body = RefundRequestBody {
            merchant_no: terminal.merchant_no.clone(),
            term_no: terminal.term_no.clone(),
            out_trade_no: req.refund_id.as_str().to_owned(),
            refund_amount: req.refund_amount.get().to_string(),
            refund_reason: req
                .reason
                .as_deref()
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(|r| truncate_bytes(r, 64).to_owned()),
            origin_out_trade_no: req.order_id.as_str().to_owned(),
            location_info: Self::location(None),
        };
        let t: Trade = self
            .call(what, &body)
            .await?
            .map_err(|f| f.into_error(what))?;
        self.check_answer_merchant(what, t.merchant_no.as_deref(), &terminal)?;
        self.check_trade_no(what, t.out_trade_no.as_deref(), req.refund_id.as_str())?;
        if let Some(a) = t.refund_amount
            && a.0 != req.refund_amount.get()
        {
            return Err(ChannelError::bad_response(format!(
                "{what}: refund amount {} fen differs from the requested {} fen",
                a.0, req.refund_amount
            )));
        }
        let outcome = choices::refund_outcome(t.trade_state.as_deref());
        Ok(RefundStatus {
            outcome,
            channel_refund_id: t.trade_no.filter(|s| !s.is_empty()),
            refund_amount: Some(req.refund_amount),
            success_time: if outcome == RefundOutcome::Success {
                t.trade_time.as_deref().and_then(parse_compact)
            } else {
                None
            },
        })
    }

    async fn query_refund(&self, req: &RefundQueryRequest) -> Result<RefundStatus, ChannelError> {
        let what = choices::REFUND_QUERY_PATH;
        let terminal = self.terminal(req.store.as_ref())?;
        let body = TradeQueryRequest {
            merchant_no: terminal.merchant_no.clone(),
            term_no: terminal.term_no.clone(),
            out_trade_no: req.refund_id.as_str().to_owned(),
        };
        let t: Trade = match self.call(what, &body).await? {
            Ok(t) => t,
            Err(f) if f.code == choices::CODE_NOT_FOUND => {
                return Ok(RefundStatus {
                    outcome: RefundOutcome::Processing,
                    channel_refund_id: None,
                    refund_amount: None,
                    success_time: None,
                });
            }
            Err(f) => return Err(f.into_error(what)),
        };
        self.check_answer_merchant(what, t.merchant_no.as_deref(), &terminal)?;
        self.check_trade_no(what, t.out_trade_no.as_deref(), req.refund_id.as_str())?;
        let outcome = choices::refund_outcome(t.trade_state.as_deref());
        Ok(RefundStatus {
            outcome,
            channel_refund_id: t.trade_no.filter(|s| !s.is_empty()),
            refund_amount: t
                .refund_amount
                .or(t.total_amount)
                .and_then(|v| Fen::parse_positive("refund_amount", v.0).ok()),
            success_time: if outcome == RefundOutcome::Success {
                t.trade_time.as_deref().and_then(parse_compact)
            } else {
                None
            },
        })
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
