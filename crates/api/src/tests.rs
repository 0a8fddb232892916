//! Golden tests of the wire: every type serializes to exactly the JSON
//! below (the server's wire — a change here is a change merchants see)
//! and reads back to the same value; then what deserialization tolerates
//! beyond that (absent versus `null`, numbers for string timestamps,
//! defaults, unknown shapes).

use cashdesk_core::{BindingState, OrderState, RefundState, ResultCode, SignType};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::*;

/// `value` serializes to `golden` and `golden` parses back to `value`.
fn pin<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(value: &T, golden: Value) {
    assert_eq!(serde_json::to_value(value).unwrap(), golden);
    let back: T = serde_json::from_value(golden).unwrap();
    assert_eq!(&back, value);
}

fn s(v: &str) -> String {
    v.to_owned()
}

fn channel() -> PaymentChannel {
    PaymentChannel {
        id: s("B01"),
        app_id: s("app0123456789abcdef"),
        app_name: s("Shop"),
        channel_id: s("CH1"),
        channel_type: s("wx-pay"),
        channel_name: s("WeChat mini"),
        scene_name: None,
        scene_code: s("mini"),
        config_id: s("CF1"),
        mch_id: Some(s("1900000109")),
        url: s("https://pay.example.com/api/cashier-desk/payment"),
        method: s("POST"),
        enctype: s("application/json"),
        sort: 2,
    }
}

fn channel_json() -> Value {
    json!({
        "id": "B01", "appId": "app0123456789abcdef", "appName": "Shop",
        "channelId": "CH1", "channelType": "wx-pay", "channelName": "WeChat mini",
        "sceneName": null, "sceneCode": "mini", "configId": "CF1", "mchId": "1900000109",
        "url": "https://pay.example.com/api/cashier-desk/payment",
        "method": "POST", "enctype": "application/json", "sort": 2
    })
}

#[test]
fn envelope() {
    pin(
        &Envelope {
            code: CODE_OK,
            msg: s(MSG_OK),
            data: Some(json!({"x": 1})),
            response_time: 1_700_000_000_000,
        },
        json!({"code": 1000, "msg": "操作成功", "data": {"x": 1}, "responseTime": 1_700_000_000_000i64}),
    );
    // No data: `null`, not absent.
    pin(
        &Envelope::<Value> {
            code: 4000,
            msg: s("amount: must be positive"),
            data: None,
            response_time: 1,
        },
        json!({"code": 4000, "msg": "amount: must be positive", "data": null, "responseTime": 1}),
    );
    // A body without data or responseTime still reads.
    let e: Envelope<Value> = serde_json::from_str(r#"{"code":5000,"msg":"x"}"#).unwrap();
    assert_eq!((e.data, e.response_time), (None, 0));
}

#[test]
fn create_order() {
    let mut req = CreateOrderRequest::new("T1001", 100, "Tea");
    pin(
        &req,
        json!({"outTradeNo": "T1001", "amount": 100, "orderTitle": "Tea"}),
    );
    req.goods_desc = Some(s("green"));
    req.third_party_user = Some(s("u1"));
    req.notify_url = Some(s("https://shop.example.com/n"));
    req.return_url = Some(s("https://shop.example.com/r"));
    req.expire_minutes = Some(15);
    req.store_id = Some(s("S1"));
    req.attach = Some(s("a=1"));
    req.client_ip = Some(s("203.0.113.7"));
    pin(
        &req,
        json!({"outTradeNo": "T1001", "amount": 100, "orderTitle": "Tea", "goodsDesc": "green",
               "thirdPartyUser": "u1", "notifyUrl": "https://shop.example.com/n",
               "returnUrl": "https://shop.example.com/r", "expireMinutes": 15, "storeId": "S1",
               "attach": "a=1", "clientIp": "203.0.113.7"}),
    );

    let answer = CreateOrderResponse {
        order_id: s("P01"),
        out_trade_no: s("T1001"),
        token: s("tok"),
        cashier_url: s("https://pay.example.com/cashier-desk-web/?token=tok"),
        expire_at: s("2024-01-02T03:04:05+08:00"),
        signature: OrderSignature {
            app_id: s("app0123456789abcdef"),
            nonce: s("n1"),
            timestamp: s("1700000000"),
            signature: s("SIG"),
            out_trade_no: s("T1001"),
        },
        channels: vec![channel()],
    };
    pin(
        &answer,
        json!({
            "orderId": "P01", "outTradeNo": "T1001", "token": "tok",
            "cashierUrl": "https://pay.example.com/cashier-desk-web/?token=tok",
            "expireAt": "2024-01-02T03:04:05+08:00",
            "signature": {"appId": "app0123456789abcdef", "nonce": "n1",
                          "timestamp": "1700000000", "signature": "SIG", "outTradeNo": "T1001"},
            "channels": [channel_json()]
        }),
    );
    // Tolerance: a numeric timestamp, no channels, a channel without sort
    // or with an absent sceneName.
    let mut v = serde_json::to_value(&answer).unwrap();
    v["signature"]["timestamp"] = json!(1_700_000_000);
    v.as_object_mut().unwrap().remove("channels");
    let read: CreateOrderResponse = serde_json::from_value(v).unwrap();
    assert_eq!(read.signature.timestamp, "1700000000");
    assert!(read.channels.is_empty());
    let mut c = channel_json();
    c.as_object_mut().unwrap().remove("sort");
    c.as_object_mut().unwrap().remove("sceneName");
    let read: PaymentChannel = serde_json::from_value(c).unwrap();
    assert_eq!((read.sort, read.scene_name), (0, None));
}

#[test]
fn payment_list() {
    pin(
        &PaymentList {
            order_id: s("P01"),
            out_trade_no: s("T1001"),
            amount: 100,
            order_title: s("Tea"),
            expire_at: s("2024-01-02T03:04:05+08:00"),
            state: OrderState::Created,
            app_id: s("app0123456789abcdef"),
            app_name: s("Shop"),
            channels: vec![channel()],
        },
        json!({"orderId": "P01", "outTradeNo": "T1001", "amount": 100, "orderTitle": "Tea",
               "expireAt": "2024-01-02T03:04:05+08:00", "state": "CREATED",
               "appId": "app0123456789abcdef", "appName": "Shop", "channels": [channel_json()]}),
    );
}

#[test]
fn pay_result() {
    let paid = PayResult {
        order_id: s("P01"),
        out_trade_no: s("T1001"),
        amount: 100,
        state: OrderState::PartRefunded,
        result_code: ResultCode::Success,
        channel_id: Some(s("CH1")),
        channel_type: Some(s("wx-pay")),
        mch_id: Some(s("1900000109")),
        transaction_id: Some(s("4200001")),
        pay_time: Some(s("2024-01-02 03:04:05")),
        refunded_amount: 30,
        result_error_code: None,
        result_error_msg: None,
        store_id: None,
        attach: Some(s("a=1")),
        paid_after_close: false,
    };
    // Every field is sent; unset ones as `null`.
    let golden = json!({
        "orderId": "P01", "outTradeNo": "T1001", "amount": 100, "state": "PART_REFUNDED",
        "resultCode": "SUCCESS", "channelId": "CH1", "channelType": "wx-pay",
        "mchId": "1900000109", "transactionId": "4200001", "payTime": "2024-01-02 03:04:05",
        "refundedAmount": 30, "resultErrorCode": null, "resultErrorMsg": null,
        "storeId": null, "attach": "a=1", "paidAfterClose": false
    });
    pin(&paid, golden.clone());
    // Absent optional fields and counters read as null and 0.
    let mut v = golden;
    for k in [
        "channelId",
        "resultErrorCode",
        "refundedAmount",
        "paidAfterClose",
    ] {
        v.as_object_mut().unwrap().remove(k);
    }
    let read: PayResult = serde_json::from_value(v).unwrap();
    assert_eq!(read.channel_id, None);
    assert_eq!(read.refunded_amount, 0);
    assert!(!read.paid_after_close);
}

#[test]
fn refunds() {
    let mut req = CreateRefundRequest::new("T1001", "R1", 30);
    pin(
        &req,
        json!({"outTradeNo": "T1001", "outRefundNo": "R1", "amount": 30}),
    );
    req.reason = Some(s("broken"));
    req.notify_url = Some(s("https://shop.example.com/n"));
    pin(
        &req,
        json!({"outTradeNo": "T1001", "outRefundNo": "R1", "amount": 30, "reason": "broken",
               "notifyUrl": "https://shop.example.com/n"}),
    );
    pin(
        &RefundResult {
            refund_id: s("F01"),
            out_refund_no: s("R1"),
            out_trade_no: s("T1001"),
            order_id: s("P01"),
            amount: 30,
            state: RefundState::PendingReview,
            reason: Some(s("broken")),
            channel_refund_id: None,
            error_code: None,
            error_msg: None,
            refunded_amount: 0,
            created_at: s("2024-01-02T03:04:05+08:00"),
            finished_at: None,
        },
        json!({"refundId": "F01", "outRefundNo": "R1", "outTradeNo": "T1001", "orderId": "P01",
               "amount": 30, "state": "PENDING_REVIEW", "reason": "broken",
               "channelRefundId": null, "errorCode": null, "errorMsg": null,
               "refundedAmount": 0, "createdAt": "2024-01-02T03:04:05+08:00",
               "finishedAt": null}),
    );
}

#[test]
fn payment() {
    pin(
        &PaymentRequest::new("T1001", "CH1"),
        json!({"outTradeNo": "T1001", "channelId": "CH1"}),
    );
    pin(
        &PaymentRequest::new("T1001", "CH1")
            .with_openid_of("o1", "wx1")
            .with_buyer_id("2088")
            .with_client_ip("203.0.113.7"),
        json!({"outTradeNo": "T1001", "channelId": "CH1", "openid": "o1", "openidAppId": "wx1",
               "buyerId": "2088", "clientIp": "203.0.113.7"}),
    );
    pin(
        &PaymentResponse {
            order_id: s("P01"),
            channel_type: s("wx-pay"),
            scene_code: s("native"),
            pay_data: PayData::Native {
                code_url: s("weixin://wxpay/bizpayurl?pr=abc"),
                qr_svg_url: Some(s("https://pay.example.com/cashier-desk-web/qr/T.svg")),
            },
        },
        json!({"orderId": "P01", "channelType": "wx-pay", "sceneCode": "native",
               "payData": {"codeUrl": "weixin://wxpay/bizpayurl?pr=abc",
                           "qrSvgUrl": "https://pay.example.com/cashier-desk-web/qr/T.svg"}}),
    );
}

#[test]
fn apps_and_bindings() {
    pin(
        &ApplyBindingRequest {
            channel_id: s("CH1"),
            store_id: None,
        },
        json!({"channelId": "CH1"}),
    );
    pin(
        &ApplyBindingRequest {
            channel_id: s("CH1"),
            store_id: Some(s("S1")),
        },
        json!({"channelId": "CH1", "storeId": "S1"}),
    );
    pin(
        &ApplyBindingResponse {
            binding_id: s("B01"),
            state: BindingState::Pending,
        },
        json!({"bindingId": "B01", "state": "PENDING"}),
    );
    pin(
        &RegisterAppRequest {
            app_name: s("Shop"),
            ..RegisterAppRequest::default()
        },
        json!({"appName": "Shop"}),
    );
    pin(
        &RegisterAppRequest {
            app_name: s("Shop"),
            notify_url: Some(s("https://shop.example.com/n")),
            sign_type: Some(SignType::Rsa2),
            public_key_pem: Some(s("PEM")),
            refund_review: Some(true),
            auto_refund_paid_after_close: Some(false),
        },
        json!({"appName": "Shop", "notifyUrl": "https://shop.example.com/n", "signType": "RSA2",
               "publicKeyPem": "PEM", "refundReview": true, "autoRefundPaidAfterClose": false}),
    );
    pin(
        &RegisterAppResponse {
            app_id: s("app0123456789abcdef"),
            app_key: s("key"),
            sign_type: SignType::HmacSha256,
        },
        json!({"appId": "app0123456789abcdef", "appKey": "key", "signType": "HMAC-SHA256"}),
    );
    pin(
        &PlatformKeys {
            rsa_public_key_pem: s("RSA PEM"),
            sm2_public_key_pem: s("SM2 PEM"),
        },
        json!({"rsaPublicKeyPem": "RSA PEM", "sm2PublicKeyPem": "SM2 PEM"}),
    );
}

fn pay_notification() -> MerchantNotification {
    MerchantNotification {
        notify_id: s("N01"),
        notify_type: s("PAY_SUCCESS"),
        app_id: s("app0123456789abcdef"),
        order_id: s("P01"),
        out_trade_no: s("T1001"),
        amount: 100,
        state: s("SUCCESS"),
        result_code: Some(s("SUCCESS")),
        channel_id: Some(s("CH1")),
        channel_type: Some(s("wx-pay")),
        mch_id: Some(s("1900000109")),
        transaction_id: Some(s("4200001")),
        pay_time: Some(s("2024-01-02 03:04:05")),
        store_id: None,
        attach: None,
        paid_after_close: false,
        refund_id: None,
        out_refund_no: None,
        refund_amount: None,
        error_code: None,
        error_msg: None,
    }
}

#[test]
fn notification_text_is_pinned_field_order_included() {
    // The server signs these bytes: the order of the fields matters.
    assert_eq!(
        serde_json::to_string(&pay_notification()).unwrap(),
        r#"{"notifyId":"N01","notifyType":"PAY_SUCCESS","appId":"app0123456789abcdef","orderId":"P01","outTradeNo":"T1001","amount":100,"state":"SUCCESS","resultCode":"SUCCESS","channelId":"CH1","channelType":"wx-pay","mchId":"1900000109","transactionId":"4200001","payTime":"2024-01-02 03:04:05","storeId":null,"attach":null}"#
    );
    let refund = MerchantNotification {
        notify_type: s("REFUND_FAIL"),
        state: s("REJECTED"),
        result_code: Some(s("FAIL")),
        paid_after_close: true,
        refund_id: Some(s("F01")),
        out_refund_no: Some(s("R1")),
        refund_amount: Some(30),
        error_code: Some(s("REJECTED")),
        error_msg: Some(s("no")),
        ..pay_notification()
    };
    assert_eq!(
        serde_json::to_string(&refund).unwrap(),
        r#"{"notifyId":"N01","notifyType":"REFUND_FAIL","appId":"app0123456789abcdef","orderId":"P01","outTradeNo":"T1001","amount":100,"state":"REJECTED","resultCode":"FAIL","channelId":"CH1","channelType":"wx-pay","mchId":"1900000109","transactionId":"4200001","payTime":"2024-01-02 03:04:05","storeId":null,"attach":null,"paidAfterClose":true,"refundId":"F01","outRefundNo":"R1","refundAmount":30,"errorCode":"REJECTED","errorMsg":"no"}"#
    );
    for n in [pay_notification(), refund] {
        let back: MerchantNotification =
            serde_json::from_str(&serde_json::to_string(&n).unwrap()).unwrap();
        assert_eq!(back, n);
    }
    // A minimal body (absent optional fields, no resultCode) still reads.
    let read: MerchantNotification = serde_json::from_value(json!({
        "notifyId": "N02", "notifyType": "PAY_SOMETHING_NEW", "appId": "a", "orderId": "P",
        "outTradeNo": "T", "amount": 1, "state": "NEW"
    }))
    .unwrap();
    assert_eq!(read.result_code, None);
    assert!(!read.paid_after_close);
}

#[test]
fn ack_body_is_the_success_envelope() {
    let v: Value = serde_json::from_str(NOTIFICATION_ACK_BODY).unwrap();
    assert_eq!(v, json!({"code": CODE_OK, "msg": MSG_OK}));
}

/// Every shape the channels produce, its exact text, and the variant it
/// reads back as.
#[test]
fn pay_data_shapes() {
    let cases = [
        (
            PayData::RequestPayment(WxRequestPayment {
                app_id: s("wxd930ea5d5a258f4f"),
                time_stamp: s("1490840662"),
                nonce_str: s("5K8264ILTKCH16CQ2502SI8ZNMTM67VS"),
                package: s("prepay_id=wx2017033010242291fcfe0db70013231072"),
                sign_type: s("MD5"),
                pay_sign: s("A3C4993E71916E54AE93F5D2B1E888AF"),
            }),
            r#"{"appId":"wxd930ea5d5a258f4f","timeStamp":"1490840662","nonceStr":"5K8264ILTKCH16CQ2502SI8ZNMTM67VS","package":"prepay_id=wx2017033010242291fcfe0db70013231072","signType":"MD5","paySign":"A3C4993E71916E54AE93F5D2B1E888AF"}"#,
        ),
        (
            PayData::WxApp(WxAppPayReq {
                appid: s("wxd930ea5d5a258f4f"),
                partnerid: s("1900000109"),
                prepayid: s("wx201410272009395522657a690389285100"),
                package: s("Sign=WXPay"),
                noncestr: s("abc"),
                timestamp: s("1414561699"),
                sign: s("SIGN"),
            }),
            r#"{"appid":"wxd930ea5d5a258f4f","partnerid":"1900000109","prepayid":"wx201410272009395522657a690389285100","package":"Sign=WXPay","noncestr":"abc","timestamp":"1414561699","sign":"SIGN"}"#,
        ),
        (
            PayData::Native {
                code_url: s("weixin://wxpay/bizpayurl?pr=abc"),
                qr_svg_url: None,
            },
            r#"{"codeUrl":"weixin://wxpay/bizpayurl?pr=abc"}"#,
        ),
        (
            PayData::Native {
                code_url: s("weixin://wxpay/bizpayurl?pr=abc"),
                qr_svg_url: Some(s("https://pay.example.com/cashier-desk-web/qr/T.svg")),
            },
            r#"{"codeUrl":"weixin://wxpay/bizpayurl?pr=abc","qrSvgUrl":"https://pay.example.com/cashier-desk-web/qr/T.svg"}"#,
        ),
        (
            PayData::H5 {
                h5_url: s("https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id=wx1"),
            },
            r#"{"h5Url":"https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id=wx1"}"#,
        ),
        (
            PayData::Redirect {
                redirect_url: s("https://openapi.alipay.com/gateway.do?app_id=1"),
                form: s("<form></form>"),
            },
            r#"{"redirectUrl":"https://openapi.alipay.com/gateway.do?app_id=1","form":"<form></form>"}"#,
        ),
        (
            PayData::AlipayApp {
                order_string: s("app_id=1&biz_content=%7B%7D&sign=x"),
            },
            r#"{"orderString":"app_id=1&biz_content=%7B%7D&sign=x"}"#,
        ),
        (
            PayData::QrCode {
                qr_code: s("https://qr.alipay.com/bax03431"),
                qr_svg_url: None,
            },
            r#"{"qrCode":"https://qr.alipay.com/bax03431"}"#,
        ),
        (
            PayData::QrCode {
                qr_code: s("https://qr.alipay.com/bax03431"),
                qr_svg_url: Some(s("https://pay.example.com/cashier-desk-web/qr/T.svg")),
            },
            r#"{"qrCode":"https://qr.alipay.com/bax03431","qrSvgUrl":"https://pay.example.com/cashier-desk-web/qr/T.svg"}"#,
        ),
        (
            PayData::TradeNo {
                trade_no: s("2024010222001400000000000001"),
            },
            r#"{"tradeNo":"2024010222001400000000000001"}"#,
        ),
        (
            PayData::Other(json!({"somethingNew": 1})),
            r#"{"somethingNew":1}"#,
        ),
    ];
    for (pay_data, text) in cases {
        assert_eq!(serde_json::to_string(&pay_data).unwrap(), text);
        assert_eq!(
            pay_data.to_json(),
            serde_json::from_str::<Value>(text).unwrap()
        );
        let back: PayData = serde_json::from_str(text).unwrap();
        assert_eq!(back, pay_data, "{text}");
    }
}

#[test]
fn pay_data_tolerance_and_accessors() {
    // Numeric timestamps (as some acquirers send them) read as strings.
    let rp: PayData = serde_json::from_str(
        r#"{"appId":"a","timeStamp":1700000000,"nonceStr":"n","package":"prepay_id=1","signType":"RSA","paySign":"s"}"#,
    )
    .unwrap();
    assert_eq!(rp.request_payment().unwrap().time_stamp, "1700000000");
    let app: PayData = serde_json::from_str(
        r#"{"appid":"a","partnerid":"p","prepayid":"w","package":"Sign=WXPay","noncestr":"n","timestamp":1414561699,"sign":"S"}"#,
    )
    .unwrap();
    assert!(matches!(&app, PayData::WxApp(p) if p.timestamp == "1414561699"));
    // A shape missing a field of every known shape stays as sent.
    let partial: PayData = serde_json::from_str(r#"{"appId":"a","paySign":"s"}"#).unwrap();
    assert!(matches!(partial, PayData::Other(_)));
    assert!(matches!(
        serde_json::from_str::<PayData>(r#""a string""#).unwrap(),
        PayData::Other(Value::String(_))
    ));

    let mut native = PayData::Native {
        code_url: s("weixin://x"),
        qr_svg_url: None,
    };
    assert_eq!(native.code_url(), Some("weixin://x"));
    assert_eq!(native.qr_content(), Some("weixin://x"));
    assert_eq!(native.redirect_url(), None);
    assert!(native.request_payment().is_none());
    native.set_qr_svg_url(s("https://h/q.svg"));
    assert_eq!(
        native.to_json(),
        json!({"codeUrl": "weixin://x", "qrSvgUrl": "https://h/q.svg"})
    );
    let qr = PayData::QrCode {
        qr_code: s("https://qr.alipay.com/b"),
        qr_svg_url: None,
    };
    assert_eq!(qr.qr_content(), Some("https://qr.alipay.com/b"));
    assert_eq!(qr.code_url(), None);
    let mut h5 = PayData::H5 {
        h5_url: s("https://h5"),
    };
    assert_eq!(h5.redirect_url(), Some("https://h5"));
    assert_eq!(h5.qr_content(), None);
    // Not a QR shape: nothing to add.
    h5.set_qr_svg_url(s("x"));
    assert_eq!(h5.to_json(), json!({"h5Url": "https://h5"}));
    let redirect = PayData::Redirect {
        redirect_url: s("https://gw"),
        form: s("<form></form>"),
    };
    assert_eq!(redirect.redirect_url(), Some("https://gw"));
}

#[test]
fn list_queries_send_only_set_filters() {
    assert!(OrderQuery::default().query_pairs().is_empty());
    assert_eq!(
        OrderQuery {
            app_id: Some(s("app1")),
            store_id: Some(s("S1")),
            state: Some(s("SUCCESS")),
            out_trade_no: Some(s("T1")),
            limit: Some(20),
            before: Some(s("P01")),
        }
        .query_pairs(),
        [
            ("appId", "app1"),
            ("before", "P01"),
            ("limit", "20"),
            ("outTradeNo", "T1"),
            ("state", "SUCCESS"),
            ("storeId", "S1"),
        ]
        .map(|(k, v)| (s(k), s(v)))
    );
    assert_eq!(
        RefundQuery {
            app_id: None,
            order_id: Some(s("P01")),
            state: Some(s("PENDING_REVIEW")),
            limit: Some(5),
            before: None,
        }
        .query_pairs(),
        [
            ("limit", "5"),
            ("orderId", "P01"),
            ("state", "PENDING_REVIEW"),
        ]
        .map(|(k, v)| (s(k), s(v)))
    );
    assert_eq!(
        BindingQuery {
            state: Some(BindingState::Approved),
            app_id: Some(s("app1")),
        }
        .query_pairs(),
        [("appId", "app1"), ("state", "APPROVED")].map(|(k, v)| (s(k), s(v)))
    );
    assert_eq!(
        NotificationQuery {
            app_id: Some(s("a")),
            order_id: Some(s("P1")),
            state: Some(s("FAILED")),
            limit: Some(1),
            before: Some(s("N1")),
        }
        .query_pairs(),
        [
            ("appId", "a"),
            ("before", "N1"),
            ("limit", "1"),
            ("orderId", "P1"),
            ("state", "FAILED"),
        ]
        .map(|(k, v)| (s(k), s(v)))
    );
    // And they read back from the same names.
    let q: NotificationQuery =
        serde_json::from_value(json!({"orderId": "P1", "limit": 3})).unwrap();
    assert_eq!(
        q,
        NotificationQuery {
            order_id: Some(s("P1")),
            limit: Some(3),
            ..NotificationQuery::default()
        }
    );
}
