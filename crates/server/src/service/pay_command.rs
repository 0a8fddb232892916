//! [`PayCommand`]: what a payment asks for. `POST /payment` parses its body
//! into one ([`PayCommand::parse`]); the cashier page builds one from the
//! buyer's choice ([`PayCommand::new`] and the `with_` methods). Both go
//! through [`super::payments::pay`], and two equal commands for one order
//! are the same request (the single-flight key: see `payments`).

use std::net::IpAddr;

use cashdesk_core::ChannelId;
use serde_json::{Map, Value};

use crate::input::Fields;
use crate::service::error::{ServiceError, ServiceResult};

/// One payment of one order through one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayCommand {
    /// The merchant's order number (the order is looked up under the
    /// caller's app).
    pub out_trade_no: String,
    pub channel_id: ChannelId,
    /// The payer at the channel: a WeChat openid or an Alipay buyer id.
    pub payer_id: Option<String>,
    /// The WeChat AppID the openid belongs to (see
    /// `cashdesk_channels::PayRequest::payer_app_id`); only with an openid.
    pub payer_app_id: Option<String>,
    /// The buyer's IP (H5 payments need it); the order's when absent.
    pub client_ip: Option<IpAddr>,
    /// Where a channel's own pages send the buyer back (the cashier's
    /// result page), or the order's `returnUrl` when `None`.
    pub return_url: Option<String>,
}

impl PayCommand {
    pub fn new(out_trade_no: impl Into<String>, channel_id: ChannelId) -> Self {
        Self {
            out_trade_no: out_trade_no.into(),
            channel_id,
            payer_id: None,
            payer_app_id: None,
            client_ip: None,
            return_url: None,
        }
    }

    /// A WeChat payer: the openid and the AppID it was issued under.
    pub fn with_openid(mut self, openid: &str, app_id: &str) -> Self {
        self.payer_id = Some(openid.to_owned());
        self.payer_app_id = Some(app_id.to_owned());
        self
    }

    pub fn with_client_ip(mut self, ip: Option<IpAddr>) -> Self {
        self.client_ip = ip;
        self
    }

    pub fn returning_to(mut self, url: String) -> Self {
        self.return_url = Some(url);
        self
    }

    /// The body of `POST /api/cashier-desk/payment`: `outTradeNo`,
    /// `channelId`, and optionally `openid` (+ `openidAppId`) or
    /// `buyerId`, and `clientIp`. A refusal names the field (4000).
    pub fn parse(body: &Map<String, Value>) -> ServiceResult<Self> {
        let f = Fields(body);
        let out_trade_no = f.str_req("outTradeNo", usize::MAX)?.to_owned();
        let channel_id = ChannelId::parse(f.str_req("channelId", 64)?)
            .ok_or_else(|| ServiceError::invalid("channelId", "is not a channel id"))?;
        let trimmed = |name| -> ServiceResult<Option<&str>> {
            Ok(f.str_opt(name, 128)?
                .map(str::trim)
                .filter(|s| !s.is_empty()))
        };
        let openid = trimmed("openid")?;
        let buyer_id = trimmed("buyerId")?;
        let payer_app_id = f
            .str_opt("openidAppId", 32)?
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|a| {
                if a.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    Ok(a.to_owned())
                } else {
                    Err(ServiceError::invalid(
                        "openidAppId",
                        "must be an AppID (letters and digits)",
                    ))
                }
            })
            .transpose()?;
        if payer_app_id.is_some() && openid.is_none() {
            return Err(ServiceError::invalid(
                "openidAppId",
                "names the AppID of the openid; give the openid too",
            ));
        }
        let client_ip = f
            .str_opt("clientIp", 64)?
            .map(|ip| {
                ip.parse::<IpAddr>().map_err(|_| {
                    ServiceError::invalid("clientIp", "must be an IPv4 or IPv6 address")
                })
            })
            .transpose()?;
        Ok(Self {
            out_trade_no,
            channel_id,
            payer_id: openid.or(buyer_id).map(str::to_owned),
            payer_app_id,
            client_ip,
            return_url: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CH: &str = "H01JZ8Y3K5N6P7Q8R9S0T1V2W3X";

    fn parse(v: Value) -> ServiceResult<PayCommand> {
        PayCommand::parse(v.as_object().expect("an object"))
    }

    fn field_of(e: ServiceError) -> String {
        match e {
            ServiceError::Invalid { field, .. } => field,
            other => panic!("not a field refusal: {other:?}"),
        }
    }

    #[test]
    fn the_api_body_and_the_cashier_build_the_same_command() {
        let channel = ChannelId::parse(CH).expect("a channel id");
        let parsed = parse(json!({
            "outTradeNo": "T1",
            "channelId": CH,
            "openid": " o-1 ",
            "openidAppId": "wx1",
            "clientIp": "::ffff:10.0.0.1",
        }))
        .expect("a valid body");
        let built = PayCommand::new("T1", channel)
            .with_openid("o-1", "wx1")
            .with_client_ip("::ffff:10.0.0.1".parse().ok());
        assert_eq!(parsed, built);
    }

    #[test]
    fn each_refusal_names_its_field() {
        for (body, field) in [
            (json!({"channelId": CH}), "outTradeNo"),
            (json!({"outTradeNo": "T1"}), "channelId"),
            (
                json!({"outTradeNo": "T1", "channelId": "no such"}),
                "channelId",
            ),
            (
                json!({"outTradeNo": "T1", "channelId": CH, "openidAppId": "wx1"}),
                "openidAppId",
            ),
            (
                json!({"outTradeNo": "T1", "channelId": CH, "openid": "o", "openidAppId": "wx-1"}),
                "openidAppId",
            ),
            (
                json!({"outTradeNo": "T1", "channelId": CH, "clientIp": "10.0.0"}),
                "clientIp",
            ),
        ] {
            let e = parse(body.clone()).expect_err(&body.to_string());
            assert_eq!(field_of(e), field, "{body}");
        }
    }

    #[test]
    fn a_buyer_id_is_the_payer_when_there_is_no_openid() {
        let c = parse(json!({"outTradeNo": "T1", "channelId": CH, "buyerId": "2088"}))
            .expect("a valid body");
        assert_eq!(c.payer_id.as_deref(), Some("2088"));
        assert_eq!(c.payer_app_id, None);
    }
}
