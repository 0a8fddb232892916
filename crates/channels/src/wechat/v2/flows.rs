//! The [`Channel`] implementation of WeChat Pay v2: one method per flow
//! (`pay/unifiedorder`, `pay/orderquery`, `pay/closeorder`,
//! `secapi/pay/refund`, `pay/refundquery`) and the `payData` each scene
//! gets. Notifications are parsed in [`super::notify`].

use std::sync::Arc;

use async_trait::async_trait;
use cashdesk_core::ChannelType;
use cashdesk_core::time::{parse_cn_datetime, parse_compact, to_compact};
use cashdesk_crypto::random::nonce_str;
use serde_json::json;
use url::Url;

use super::WxPayV2;
use super::client::{result_code, result_failure};
use super::wire::{Fields, fen, fields_of, need, refund_outcome};
use crate::channel::*;
use crate::error::{ChannelError, NotifyError};
use crate::meta::ChannelMeta;
use crate::pay_data::{PayData, WxAppPayReq, WxRequestPayment};
use crate::support::truncate_bytes;
use crate::wechat::wire::SubMerchant;
use crate::wechat::{TradeKind, check_sub_merchant, payer_app};

#[async_trait]
impl Channel for WxPayV2 {
    fn channel_type(&self) -> ChannelType {
        ChannelType::WxPay
    }
    fn api_version(&self) -> &'static str {
        "v2"
    }
    fn mch_id(&self) -> &str {
        &self.mch_id
    }
    fn meta(&self) -> &'static ChannelMeta {
        &crate::wechat::META
    }
    fn payer_oauth(&self) -> Option<Arc<dyn PayerOAuth>> {
        self.oauth.clone().map(|o| o as Arc<dyn PayerOAuth>)
    }

    async fn create_payment(&self, req: &PayRequest) -> Result<PayResponse, ChannelError> {
        const PATH: &str = "pay/unifiedorder";
        let kind = TradeKind::for_scene(req.scene)?;
        let sub = SubMerchant::of(req.store.as_ref())?;
        let mut p = self.base_params(req.order_id.as_str());
        p.insert(
            "body".into(),
            truncate_bytes(&req.description, 128).to_owned(),
        );
        p.insert("total_fee".into(), req.amount.get().to_string());
        p.insert("notify_url".into(), self.notify_url.clone());
        let ip = match (&req.client_ip, kind) {
            (Some(ip), _) if !ip.trim().is_empty() => ip.trim().to_owned(),
            (_, TradeKind::H5) => {
                return Err(ChannelError::invalid_request(
                    "clientIp",
                    "clientIp is required for the h5 scene",
                ));
            }
            // WeChat requires the field; for server-initiated scenes it is
            // the caller's machine.
            _ => "127.0.0.1".to_owned(),
        };
        p.insert("spbill_create_ip".into(), ip);
        if let Some(t) = req.expire_at {
            p.insert("time_expire".into(), to_compact(t));
        }
        if let Some(a) = &req.attach {
            p.insert("attach".into(), truncate_bytes(a, 127).to_owned());
        }
        let mut payer_app_id = self.app_id.clone();
        let trade_type = match kind {
            TradeKind::Jsapi => {
                let openid = req
                    .payer_id
                    .as_deref()
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| {
                        ChannelError::invalid_request(
                            "openid",
                            "openid is required for the mini and jsapi scenes",
                        )
                    })?;
                // A user of the store's own AppID is its `sub_openid`; of
                // the config's (the service provider's), its `openid`.
                let (app_id, of_store) =
                    payer_app(&self.app_id, sub.as_ref(), req.payer_app_id.as_deref())?;
                let key = if of_store { "sub_openid" } else { "openid" };
                p.insert(key.into(), openid.to_owned());
                payer_app_id = app_id;
                "JSAPI"
            }
            TradeKind::Native => {
                p.insert("product_id".into(), req.order_id.as_str().to_owned());
                "NATIVE"
            }
            TradeKind::H5 => {
                let scene_info = json!({"h5_info": {"type": "Wap", "wap_url": self.public_url, "wap_name": self.wap_name()}});
                p.insert("scene_info".into(), scene_info.to_string());
                "MWEB"
            }
            TradeKind::App => "APP",
        };
        p.insert("trade_type".into(), trade_type.into());
        let fields = self.call(false, PATH, p, sub.as_ref()).await?;
        if result_code(PATH, &fields)?.is_err() {
            return Err(result_failure(PATH, &fields));
        }
        let prepay_id = need(PATH, &fields, "prepay_id")?.to_owned();
        let (now, nonce) = (chrono::Utc::now().timestamp(), nonce_str(32));
        let pay_data = match kind {
            TradeKind::Jsapi => self.jsapi_pay_data(&prepay_id, now, &nonce, &payer_app_id),
            TradeKind::Native => PayData::Native {
                code_url: need(PATH, &fields, "code_url")?.to_owned(),
                qr_svg_url: None,
            },
            TradeKind::H5 => PayData::H5 {
                h5_url: need(PATH, &fields, "mweb_url")?.to_owned(),
            },
            TradeKind::App => self.app_pay_data(&prepay_id, now, &nonce, sub.as_ref()),
        };
        Ok(PayResponse {
            pay_data,
            prepay_id: Some(prepay_id),
        })
    }

    async fn download_bill(
        &self,
        req: &crate::bill::BillRequest,
        sink: &mut (dyn std::io::Write + Send),
    ) -> Result<crate::bill::BillDownload, ChannelError> {
        self.download_trade_bill(req, sink).await
    }

    async fn query(&self, req: &QueryRequest) -> Result<ChannelOrderStatus, ChannelError> {
        const PATH: &str = "pay/orderquery";
        let sub = SubMerchant::of(req.store.as_ref())?;
        let fields = self
            .call(
                false,
                PATH,
                self.base_params(req.order_id.as_str()),
                sub.as_ref(),
            )
            .await?;
        match result_code(PATH, &fields)? {
            Ok(()) => {}
            Err("ORDERNOTEXIST") => return Ok(ChannelOrderStatus::NotFound),
            Err(_) => return Err(result_failure(PATH, &fields)),
        }
        if let Some(no) = fields.get("out_trade_no")
            && no != req.order_id.as_str()
        {
            return Err(ChannelError::bad_response(format!(
                "{PATH}: answer is for out_trade_no {no}"
            )));
        }
        let state = need(PATH, &fields, "trade_state")?;
        let paid = || -> Result<PaidInfo, ChannelError> {
            let amount = fen(PATH, &fields, "total_fee")?;
            if amount != req.amount {
                return Err(ChannelError::bad_response(format!(
                    "{PATH}: paid amount {amount} fen differs from the order amount {} fen",
                    req.amount
                )));
            }
            let time_end = need(PATH, &fields, "time_end")?;
            Ok(PaidInfo {
                transaction_id: need(PATH, &fields, "transaction_id")?.to_owned(),
                pay_time: parse_compact(time_end).ok_or_else(|| {
                    ChannelError::bad_response(format!(
                        "{PATH}: time_end `{time_end}` is not a time"
                    ))
                })?,
                amount,
            })
        };
        Ok(match state {
            "SUCCESS" => ChannelOrderStatus::Paid(paid()?),
            "REFUND" => ChannelOrderStatus::Refunded(paid()?),
            "NOTPAY" => ChannelOrderStatus::NotPaid,
            "USERPAYING" | "ACCEPT" => ChannelOrderStatus::Paying,
            "CLOSED" | "REVOKED" => ChannelOrderStatus::Closed,
            "PAYERROR" => ChannelOrderStatus::Failed {
                code: "PAYERROR".into(),
                message: fields.get("trade_state_desc").cloned().unwrap_or_default(),
            },
            other => ChannelOrderStatus::Unknown {
                state: other.to_owned(),
            },
        })
    }

    async fn close(&self, req: &CloseRequest) -> Result<(), ChannelError> {
        const PATH: &str = "pay/closeorder";
        let sub = SubMerchant::of(req.store.as_ref())?;
        let fields = self
            .call(
                false,
                PATH,
                self.base_params(req.order_id.as_str()),
                sub.as_ref(),
            )
            .await?;
        match result_code(PATH, &fields)? {
            Ok(()) | Err("ORDERCLOSED") => Ok(()),
            Err(_) => Err(result_failure(PATH, &fields)),
        }
    }

    async fn refund(&self, req: &RefundRequest) -> Result<RefundStatus, ChannelError> {
        const PATH: &str = "secapi/pay/refund";
        let sub = SubMerchant::of(req.store.as_ref())?;
        let mut p = self.base_params(req.order_id.as_str());
        p.insert("out_refund_no".into(), req.refund_id.as_str().to_owned());
        p.insert("total_fee".into(), req.order_amount.get().to_string());
        p.insert("refund_fee".into(), req.refund_amount.get().to_string());
        p.insert("notify_url".into(), self.notify_url.clone());
        if let Some(r) = req.reason.as_deref().filter(|r| !r.trim().is_empty()) {
            p.insert("refund_desc".into(), truncate_bytes(r, 80).to_owned());
        }
        let fields = self.call(true, PATH, p, sub.as_ref()).await?;
        if result_code(PATH, &fields)?.is_err() {
            return Err(result_failure(PATH, &fields));
        }
        if let Some(no) = fields.get("out_refund_no")
            && no != req.refund_id.as_str()
        {
            return Err(ChannelError::bad_response(format!(
                "{PATH}: answer is for out_refund_no {no}"
            )));
        }
        Ok(RefundStatus {
            // Accepted: the outcome comes by notification or refund query.
            outcome: RefundOutcome::Processing,
            channel_refund_id: fields.get("refund_id").cloned(),
            refund_amount: Some(fen(PATH, &fields, "refund_fee")?),
            success_time: None,
        })
    }

    async fn query_refund(&self, req: &RefundQueryRequest) -> Result<RefundStatus, ChannelError> {
        const PATH: &str = "pay/refundquery";
        let sub = SubMerchant::of(req.store.as_ref())?;
        let mut p = Fields::new();
        p.insert("appid".into(), self.app_id.clone());
        p.insert("out_refund_no".into(), req.refund_id.as_str().to_owned());
        let fields = self.call(false, PATH, p, sub.as_ref()).await?;
        if result_code(PATH, &fields)?.is_err() {
            return Err(result_failure(PATH, &fields));
        }
        // Refunds are listed as field_$n; find ours.
        let count: usize = need(PATH, &fields, "refund_count")?.parse().map_err(|_| {
            ChannelError::bad_response(format!("{PATH}: refund_count is not a number"))
        })?;
        let n = (0..count.min(50))
            .find(|n| {
                fields
                    .get(&format!("out_refund_no_{n}"))
                    .map(String::as_str)
                    == Some(req.refund_id.as_str())
            })
            .ok_or_else(|| {
                ChannelError::bad_response(format!(
                    "{PATH}: answer does not list {}",
                    req.refund_id
                ))
            })?;
        let status = need(PATH, &fields, &format!("refund_status_{n}"))?;
        let outcome = refund_outcome(status).ok_or_else(|| {
            ChannelError::bad_response(format!("{PATH}: unknown refund_status `{status}`"))
        })?;
        let success_time = match fields.get(&format!("refund_success_time_{n}")) {
            Some(t) if !t.is_empty() => Some(parse_cn_datetime(t).ok_or_else(|| {
                ChannelError::bad_response(format!("{PATH}: refund_success_time `{t}`"))
            })?),
            _ => None,
        };
        Ok(RefundStatus {
            outcome,
            channel_refund_id: fields.get(&format!("refund_id_{n}")).cloned(),
            refund_amount: Some(fen(PATH, &fields, &format!("refund_fee_{n}"))?),
            success_time,
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
        check_sub_merchant(notified, store, "sub_mch_id", "sub_appid")
    }

    fn notification_reply(&self, ok: bool) -> NotificationReply {
        Self::reply(ok)
    }
}

impl WxPayV2 {
    fn base_params(&self, order_id: &str) -> Fields {
        let mut p = Fields::new();
        p.insert("appid".into(), self.app_id.clone());
        p.insert("out_trade_no".into(), order_id.to_owned());
        p
    }

    /// `wx.requestPayment` params: paySign over exactly appId, nonceStr,
    /// package, signType, timeStamp with the config's sign type. `appId` is
    /// the AppID the payer is a user of ([`payer_app`]).
    pub(super) fn jsapi_pay_data(
        &self,
        prepay_id: &str,
        timestamp: i64,
        nonce: &str,
        app_id: &str,
    ) -> PayData {
        let mut p = WxRequestPayment {
            app_id: app_id.to_owned(),
            time_stamp: timestamp.to_string(),
            nonce_str: nonce.to_owned(),
            package: format!("prepay_id={prepay_id}"),
            sign_type: self.sign_type.as_str().to_owned(),
            pay_sign: String::new(),
        };
        let signed = fields_of(&[
            ("appId", &p.app_id),
            ("timeStamp", &p.time_stamp),
            ("nonceStr", &p.nonce_str),
            ("package", &p.package),
            ("signType", &p.sign_type),
        ]);
        p.pay_sign = self.sign(&signed, self.sign_type);
        PayData::RequestPayment(p)
    }

    /// The WeChat app SDK's `PayReq` fields, `sign` over the six others;
    /// for a sub-merchant its AppID and mch_id.
    pub(super) fn app_pay_data(
        &self,
        prepay_id: &str,
        timestamp: i64,
        nonce: &str,
        sub: Option<&SubMerchant>,
    ) -> PayData {
        let mut p = WxAppPayReq {
            appid: sub
                .and_then(|s| s.sub_app_id.clone())
                .unwrap_or_else(|| self.app_id.clone()),
            partnerid: sub.map_or_else(|| self.mch_id.clone(), |s| s.sub_mch_id.clone()),
            prepayid: prepay_id.to_owned(),
            package: "Sign=WXPay".to_owned(),
            noncestr: nonce.to_owned(),
            timestamp: timestamp.to_string(),
            sign: String::new(),
        };
        let signed = fields_of(&[
            ("appid", &p.appid),
            ("partnerid", &p.partnerid),
            ("prepayid", &p.prepayid),
            ("package", &p.package),
            ("noncestr", &p.noncestr),
            ("timestamp", &p.timestamp),
        ]);
        p.sign = self.sign(&signed, self.sign_type);
        PayData::WxApp(p)
    }

    fn wap_name(&self) -> String {
        Url::parse(&self.public_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| "cashdesk".into())
    }
}
