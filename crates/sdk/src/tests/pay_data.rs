//! `payData`: every shape the server's channels produce is recognised and
//! round-trips; the accessors; a payment request sends only what is set.

use super::*;

/// Every `payData` shape the server's channels produce, as they produce it.
#[test]
fn pay_data_shapes_are_recognised_and_round_trip() {
    use serde_json::json;
    let cases = [
        (
            json!({"appId": "wx8888888888888888", "timeStamp": "1700000000", "nonceStr": "n",
                   "package": "prepay_id=wx1", "signType": "HMAC-SHA256", "paySign": "ABC"}),
            "RequestPayment",
        ),
        (
            json!({"appid": "wx8888888888888888", "partnerid": "1900000109", "prepayid": "wx1",
                   "package": "Sign=WXPay", "noncestr": "n", "timestamp": "1700000000", "sign": "S"}),
            "WxApp",
        ),
        (
            json!({"codeUrl": "weixin://wxpay/bizpayurl?pr=abc", "qrSvgUrl": "https://pay.example.com/cashier-desk-web/qr/t.svg"}),
            "Native",
        ),
        (
            json!({"codeUrl": "weixin://wxpay/bizpayurl?pr=abc"}),
            "Native",
        ),
        (
            json!({"h5Url": "https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id=wx1"}),
            "H5",
        ),
        (
            json!({"redirectUrl": "https://openapi.alipay.com/gateway.do?a=1", "form": "<form></form>"}),
            "Redirect",
        ),
        (json!({"orderString": "app_id=2021&sign=x"}), "AlipayApp"),
        (json!({"qrCode": "https://qr.alipay.com/bax0"}), "QrCode"),
        (json!({"tradeNo": "2024010222001"}), "TradeNo"),
        (json!({"somethingNew": 1}), "Other"),
        (json!("a string"), "Other"),
    ];
    for (json, variant) in cases {
        let response =
            json!({"orderId": "P1", "channelType": "wx-pay", "sceneCode": "x", "payData": json});
        let parsed: PaymentResponse = serde_json::from_value(response.clone()).unwrap();
        let got = format!("{:?}", parsed.pay_data);
        assert!(got.starts_with(variant), "{json} → {got}");
        assert_eq!(
            serde_json::to_value(&parsed).unwrap(),
            response,
            "{variant}"
        );
        assert_eq!(parsed.pay_data.to_json(), json);
    }
}

#[test]
fn pay_data_accessors() {
    let native: PayData =
        serde_json::from_str(r#"{"codeUrl":"weixin://x","qrSvgUrl":"http://h/q.svg"}"#).unwrap();
    assert_eq!(native.code_url(), Some("weixin://x"));
    assert_eq!(native.redirect_url(), None);
    assert!(native.request_payment().is_none());
    let h5: PayData = serde_json::from_str(r#"{"h5Url":"https://h5"}"#).unwrap();
    assert_eq!(h5.redirect_url(), Some("https://h5"));
    // A numeric timeStamp (as some acquirers send it) reads as a string.
    let rp: PayData = serde_json::from_str(
        r#"{"appId":"a","timeStamp":1700000000,"nonceStr":"n","package":"prepay_id=1","signType":"RSA","paySign":"s"}"#,
    )
    .unwrap();
    assert_eq!(rp.request_payment().unwrap().time_stamp, "1700000000");
    // A shape missing a field of every known shape stays as sent.
    let partial: PayData = serde_json::from_str(r#"{"appId":"a","paySign":"s"}"#).unwrap();
    assert!(matches!(partial, PayData::Other(_)));
}

#[test]
fn payment_request_sends_only_what_is_set() {
    let req = PaymentRequest::new("T1", "CH1").with_openid("o1");
    assert_eq!(
        serde_json::to_value(&req).unwrap(),
        serde_json::json!({"outTradeNo": "T1", "channelId": "CH1", "openid": "o1"})
    );
    let req = PaymentRequest::new("T1", "CH1")
        .with_client_ip("203.0.113.7")
        .with_buyer_id("2088");
    assert_eq!(
        serde_json::to_value(&req).unwrap(),
        serde_json::json!({"outTradeNo": "T1", "channelId": "CH1", "clientIp": "203.0.113.7", "buyerId": "2088"})
    );
}
