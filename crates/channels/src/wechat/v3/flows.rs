//! The [`Channel`] implementation of WeChat Pay v3: one method per flow
//! (`/v3/pay/[partner/]transactions/{jsapi|native|h5|app}`, query by
//! `out-trade-no`, close, `/v3/refund/domestic/refunds` and its query) and
//! the `payData` each scene gets. Notifications are parsed in
//! [`super::notify`].

use std::sync::Arc;

use async_trait::async_trait;
use cashdesk_core::time::to_rfc3339_cn;
use cashdesk_core::{ChannelType, Fen};
use cashdesk_crypto::random::nonce_str;
use chrono::Utc;
use reqwest::Method;

use super::WxPayV3;
use super::client::Asked;
use super::wire::*;
use crate::channel::*;
use crate::error::{ChannelError, NotifyError};
use crate::meta::ChannelMeta;
use crate::pay_data::{PayData, WxAppPayReq, WxRequestPayment};
use crate::support::{truncate_bytes, url_encode as enc};
use crate::wechat::wire::SubMerchant;
use crate::wechat::{TradeKind, check_sub_merchant, payer_app};

#[async_trait]
impl Channel for WxPayV3 {
    fn channel_type(&self) -> ChannelType {
        ChannelType::WxPay
    }
    fn api_version(&self) -> &'static str {
        "v3"
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
        let kind = TradeKind::for_scene(req.scene)?;
        let sub = SubMerchant::of(req.store.as_ref())?;
        let client_ip = req
            .client_ip
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        let mut payer_app_id = (self.app_id.clone(), false);
        let (path, payer, scene_info) = match kind {
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
                payer_app_id = payer_app(&self.app_id, sub.as_ref(), req.payer_app_id.as_deref())?;
                (
                    "/v3/pay/transactions/jsapi",
                    Some(V3Payer {
                        openid: openid.into(),
                    }),
                    None,
                )
            }
            TradeKind::Native => ("/v3/pay/transactions/native", None, None),
            TradeKind::H5 => {
                let ip = client_ip.ok_or_else(|| {
                    ChannelError::invalid_request(
                        "clientIp",
                        "clientIp is required for the h5 scene",
                    )
                })?;
                let info = V3SceneInfo {
                    payer_client_ip: ip.into(),
                    h5_info: Some(V3H5Info { kind: "Wap" }),
                };
                ("/v3/pay/transactions/h5", None, Some(info))
            }
            TradeKind::App => ("/v3/pay/transactions/app", None, None),
        };
        let description = truncate_bytes(&req.description, 127).to_owned();
        let time_expire = req.expire_at.map(to_rfc3339_cn);
        let attach = req
            .attach
            .as_deref()
            .map(|a| truncate_bytes(a, 128).to_owned());
        let amount = V3Amount {
            total: req.amount.get(),
            currency: "CNY",
        };
        let (path, body) = match &sub {
            None => (
                path.to_owned(),
                Self::json_body(&V3PrepayRequest {
                    appid: self.app_id.clone(),
                    mchid: self.mch_id.clone(),
                    description,
                    out_trade_no: req.order_id.as_str().to_owned(),
                    time_expire,
                    attach,
                    notify_url: self.notify_url.clone(),
                    amount,
                    payer,
                    scene_info,
                })?,
            ),
            Some(sub) => {
                // A user of the store's own AppID is its `sub_openid`; of
                // the service provider's, its `sp_openid`.
                let of_store = payer_app_id.1;
                let payer = payer.map(|p| V3PartnerPayer {
                    sp_openid: (!of_store).then(|| p.openid.clone()),
                    sub_openid: of_store.then_some(p.openid),
                });
                (
                    path.replace("/v3/pay/transactions/", "/v3/pay/partner/transactions/"),
                    Self::json_body(&V3PartnerPrepayRequest {
                        sp_appid: self.app_id.clone(),
                        sp_mchid: self.mch_id.clone(),
                        sub_appid: sub.sub_app_id.clone(),
                        sub_mchid: sub.sub_mch_id.clone(),
                        description,
                        out_trade_no: req.order_id.as_str().to_owned(),
                        time_expire,
                        attach,
                        notify_url: self.notify_url.clone(),
                        amount,
                        payer,
                        scene_info,
                    })?,
                )
            }
        };
        let path = path.as_str();
        let answer = self.call(Method::POST, path, Some(body)).await?;
        let bytes = answer.map_err(|f| f.into_error(path))?;
        let r: V3PrepayResponse = Self::decode(path, &bytes)?;
        let missing = |f: &str| ChannelError::bad_response(format!("{path}: response has no {f}"));
        match kind {
            TradeKind::Jsapi => {
                let id = r
                    .prepay_id
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| missing("prepay_id"))?;
                Ok(PayResponse {
                    pay_data: self.jsapi_pay_data(
                        &id,
                        Utc::now().timestamp(),
                        &nonce_str(32),
                        &payer_app_id.0,
                    )?,
                    prepay_id: Some(id),
                })
            }
            TradeKind::App => {
                let id = r
                    .prepay_id
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| missing("prepay_id"))?;
                Ok(PayResponse {
                    pay_data: self.app_pay_data(
                        &id,
                        Utc::now().timestamp(),
                        &nonce_str(32),
                        sub.as_ref(),
                    )?,
                    prepay_id: Some(id),
                })
            }
            TradeKind::Native => {
                let url = r
                    .code_url
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| missing("code_url"))?;
                Ok(PayResponse {
                    pay_data: PayData::Native {
                        code_url: url,
                        qr_svg_url: None,
                    },
                    prepay_id: None,
                })
            }
            TradeKind::H5 => {
                let url = r
                    .h5_url
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| missing("h5_url"))?;
                Ok(PayResponse {
                    pay_data: PayData::H5 { h5_url: url },
                    prepay_id: None,
                })
            }
        }
    }

    async fn download_bill(
        &self,
        req: &crate::bill::BillRequest,
        sink: &mut (dyn std::io::Write + Send),
    ) -> Result<crate::bill::BillDownload, ChannelError> {
        self.download_trade_bill(req, sink).await
    }

    async fn query(&self, req: &QueryRequest) -> Result<ChannelOrderStatus, ChannelError> {
        let sub = SubMerchant::of(req.store.as_ref())?;
        let (what, path) = match &sub {
            None => (
                "/v3/pay/transactions/out-trade-no",
                format!(
                    "/v3/pay/transactions/out-trade-no/{}?mchid={}",
                    enc(req.order_id.as_str()),
                    enc(&self.mch_id)
                ),
            ),
            Some(s) => (
                "/v3/pay/partner/transactions/out-trade-no",
                format!(
                    "/v3/pay/partner/transactions/out-trade-no/{}?sp_mchid={}&sub_mchid={}",
                    enc(req.order_id.as_str()),
                    enc(&self.mch_id),
                    enc(&s.sub_mch_id)
                ),
            ),
        };
        let bytes = match self.call(Method::GET, &path, None).await? {
            Ok(b) => b,
            Err(f) if f.code == "ORDER_NOT_EXIST" || f.code == "ORDERNOTEXIST" => {
                if !f.signed {
                    return Err(ChannelError::bad_response(format!(
                        "{what}: unsigned {} answer",
                        f.code
                    )));
                }
                return Ok(ChannelOrderStatus::NotFound);
            }
            Err(f) => return Err(f.into_error(what)),
        };
        let t: V3Transaction = Self::decode(what, &bytes)?;
        let other_sub = match &sub {
            Some(s) => t.sub_mchid.as_deref() != Some(s.sub_mch_id.as_str()),
            None => t.sub_mchid.is_some(),
        };
        if t.out_trade_no != req.order_id.as_str()
            || t.mchid.as_deref().is_some_and(|m| m != self.mch_id)
            || t.appid.as_deref().is_some_and(|a| a != self.app_id)
            || t.sp_mchid.as_deref().is_some_and(|m| m != self.mch_id)
            || t.sp_appid.as_deref().is_some_and(|a| a != self.app_id)
            || other_sub
        {
            return Err(ChannelError::bad_response(format!(
                "{what}: answer is for another order or merchant ({})",
                t.out_trade_no
            )));
        }
        let paid = || -> Result<PaidInfo, ChannelError> {
            let total = t.amount.as_ref().and_then(|a| a.total);
            let amount = total
                .and_then(|v| Fen::parse_positive("amount", v).ok())
                .ok_or_else(|| {
                    ChannelError::bad_response(format!("{what}: paid order without amount.total"))
                })?;
            if amount != req.amount {
                return Err(ChannelError::bad_response(format!(
                    "{what}: paid amount {amount} fen differs from the order amount {} fen",
                    req.amount
                )));
            }
            Ok(PaidInfo {
                transaction_id: t
                    .transaction_id
                    .clone()
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| {
                        ChannelError::bad_response(format!(
                            "{what}: paid order without transaction_id"
                        ))
                    })?,
                pay_time: t
                    .success_time
                    .as_deref()
                    .and_then(parse_time)
                    .ok_or_else(|| {
                        ChannelError::bad_response(format!(
                            "{what}: paid order without success_time"
                        ))
                    })?,
                amount,
            })
        };
        Ok(match t.trade_state.as_str() {
            "SUCCESS" => ChannelOrderStatus::Paid(paid()?),
            "REFUND" => ChannelOrderStatus::Refunded(paid()?),
            "NOTPAY" => ChannelOrderStatus::NotPaid,
            "USERPAYING" | "ACCEPT" => ChannelOrderStatus::Paying,
            "CLOSED" | "REVOKED" => ChannelOrderStatus::Closed,
            "PAYERROR" => ChannelOrderStatus::Failed {
                code: "PAYERROR".into(),
                message: t.trade_state_desc.clone().unwrap_or_default(),
            },
            other => ChannelOrderStatus::Unknown {
                state: other.to_owned(),
            },
        })
    }

    async fn close(&self, req: &CloseRequest) -> Result<(), ChannelError> {
        let sub = SubMerchant::of(req.store.as_ref())?;
        let (what, path, body) = match &sub {
            None => (
                "/v3/pay/transactions/out-trade-no/close",
                format!(
                    "/v3/pay/transactions/out-trade-no/{}/close",
                    enc(req.order_id.as_str())
                ),
                Self::json_body(&V3CloseRequest {
                    mchid: self.mch_id.clone(),
                })?,
            ),
            Some(s) => (
                "/v3/pay/partner/transactions/out-trade-no/close",
                format!(
                    "/v3/pay/partner/transactions/out-trade-no/{}/close",
                    enc(req.order_id.as_str())
                ),
                Self::json_body(&V3PartnerCloseRequest {
                    sp_mchid: self.mch_id.clone(),
                    sub_mchid: s.sub_mch_id.clone(),
                })?,
            ),
        };
        match self.call(Method::POST, &path, Some(body)).await? {
            Ok(_) => Ok(()),
            Err(f) if f.code == "ORDER_CLOSED" => Ok(()),
            Err(f) => Err(f.into_error(what)),
        }
    }

    async fn refund(&self, req: &RefundRequest) -> Result<RefundStatus, ChannelError> {
        let what = "/v3/refund/domestic/refunds";
        let sub = SubMerchant::of(req.store.as_ref())?;
        let body = V3RefundRequest {
            sub_mchid: sub.map(|s| s.sub_mch_id),
            out_trade_no: req.order_id.as_str().to_owned(),
            out_refund_no: req.refund_id.as_str().to_owned(),
            reason: req
                .reason
                .as_deref()
                .filter(|r| !r.trim().is_empty())
                .map(|r| truncate_bytes(r, 80).to_owned()),
            notify_url: self.notify_url.clone(),
            amount: V3RefundAmount {
                refund: req.refund_amount.get(),
                total: req.order_amount.get(),
                currency: "CNY",
            },
        };
        let bytes = self
            .call(Method::POST, what, Some(Self::json_body(&body)?))
            .await?
            .map_err(|f| f.into_error(what))?;
        let r: V3Refund = Self::decode(what, &bytes)?;
        self.refund_status(what, r, req.refund_id.as_str())
    }

    async fn query_refund(&self, req: &RefundQueryRequest) -> Result<RefundStatus, ChannelError> {
        let what = "/v3/refund/domestic/refunds/{out_refund_no}";
        let mut path = format!(
            "/v3/refund/domestic/refunds/{}",
            enc(req.refund_id.as_str())
        );
        if let Some(s) = SubMerchant::of(req.store.as_ref())? {
            path.push_str(&format!("?sub_mchid={}", enc(&s.sub_mch_id)));
        }
        let bytes = self
            .call(Method::GET, &path, None)
            .await?
            .map_err(|f| f.into_error_of(what, Asked::Refund))?;
        let r: V3Refund = Self::decode(what, &bytes)?;
        self.refund_status(what, r, req.refund_id.as_str())
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
        check_sub_merchant(notified, store, "sub_mchid", "sub_appid")
    }

    fn notification_reply(&self, ok: bool) -> NotificationReply {
        Self::reply(ok)
    }
}

impl WxPayV3 {
    /// `wx.requestPayment` params: RSA over `appId\ntimeStamp\nnonceStr\npackage\n`;
    /// `appId` is the AppID the payer is a user of ([`payer_app`]).
    pub(super) fn jsapi_pay_data(
        &self,
        prepay_id: &str,
        ts: i64,
        nonce: &str,
        app_id: &str,
    ) -> Result<PayData, ChannelError> {
        let package = format!("prepay_id={prepay_id}");
        let pay_sign = self.rsa_sign(&format!("{app_id}\n{ts}\n{nonce}\n{package}\n"))?;
        Ok(PayData::RequestPayment(WxRequestPayment {
            app_id: app_id.to_owned(),
            time_stamp: ts.to_string(),
            nonce_str: nonce.to_owned(),
            package,
            sign_type: "RSA".to_owned(),
            pay_sign,
        }))
    }

    /// App SDK params: RSA over `appid\ntimestamp\nnoncestr\nprepayid\n`;
    /// for a sub-merchant its AppID and mch_id.
    pub(super) fn app_pay_data(
        &self,
        prepay_id: &str,
        ts: i64,
        nonce: &str,
        sub: Option<&SubMerchant>,
    ) -> Result<PayData, ChannelError> {
        let app_id = sub
            .and_then(|s| s.sub_app_id.clone())
            .unwrap_or_else(|| self.app_id.clone());
        let partner_id = sub.map_or_else(|| self.mch_id.clone(), |s| s.sub_mch_id.clone());
        let sign = self.rsa_sign(&format!("{app_id}\n{ts}\n{nonce}\n{prepay_id}\n"))?;
        Ok(PayData::WxApp(WxAppPayReq {
            appid: app_id,
            partnerid: partner_id,
            prepayid: prepay_id.to_owned(),
            package: "Sign=WXPay".to_owned(),
            noncestr: nonce.to_owned(),
            timestamp: ts.to_string(),
            sign,
        }))
    }

    fn refund_status(
        &self,
        what: &str,
        r: V3Refund,
        refund_id: &str,
    ) -> Result<RefundStatus, ChannelError> {
        if r.out_refund_no != refund_id {
            return Err(ChannelError::bad_response(format!(
                "{what}: answer is for out_refund_no {}",
                r.out_refund_no
            )));
        }
        let outcome = refund_outcome(&r.status).ok_or_else(|| {
            ChannelError::bad_response(format!("{what}: unknown refund status `{}`", r.status))
        })?;
        let success_time = match r.success_time.as_deref().filter(|s| !s.is_empty()) {
            Some(t) => Some(parse_time(t).ok_or_else(|| {
                ChannelError::bad_response(format!("{what}: success_time `{t}`"))
            })?),
            None => None,
        };
        Ok(RefundStatus {
            outcome,
            channel_refund_id: r.refund_id,
            refund_amount: r
                .amount
                .and_then(|a| Fen::parse_positive("refund", a.refund).ok()),
            success_time,
        })
    }
}
