//! The Alipay adapter against the local gateway double: every scene, query,
//! close, refund and refund query, in public-key and certificate mode, and
//! the error mapping.

use std::sync::Arc;

use cashdesk_channels::*;
use cashdesk_core::{ChannelType, Fen, OrderId, RefundId, SceneCode};
use serde_json::{Value, json};

use crate::support::*;

async fn setup_with(cert_mode: bool) -> (Arc<Double>, Arc<dyn Channel>) {
    let d = Double::new(cert_mode);
    let addr = serve(router(d.clone())).await;
    let c = if cert_mode { cert_creds() } else { creds() };
    let ch = build_channel(
        ChannelType::AliPay,
        "v2",
        MCH_ID,
        &c,
        Some(&format!("http://{addr}/ali/gateway.do")),
        &env(),
    )
    .unwrap();
    (d, ch)
}

async fn setup() -> (Arc<Double>, Arc<dyn Channel>) {
    setup_with(false).await
}

fn pay_request(scene: SceneCode) -> PayRequest {
    PayRequest {
        order_id: OrderId::generate(),
        amount: Fen::from_stored(10),
        scene,
        description: "Iphone6 16G".into(),
        payer_id: Some("2088102146225135".into()),
        payer_app_id: None,
        client_ip: Some("203.0.113.7".into()),
        expire_at: Some(chrono::Utc::now() + chrono::Duration::minutes(30)),
        attach: Some("store=S1&x=中".into()),
        return_url: None,
        store: None,
    }
}

#[tokio::test]
async fn mini_creates_the_trade_and_returns_trade_no() {
    for cert_mode in [false, true] {
        let (d, ch) = setup_with(cert_mode).await;
        let req = pay_request(SceneCode::Mini);
        let resp = ch.create_payment(&req).await.unwrap();
        let sent = d.last();
        assert_eq!(sent.params["method"], "alipay.trade.create");
        assert!(
            sent.content_type
                .starts_with("application/x-www-form-urlencoded"),
            "{}",
            sent.content_type
        );
        assert_eq!(sent.biz["out_trade_no"], req.order_id.as_str());
        // 10 fen is "0.10" yuan, exactly.
        assert_eq!(sent.biz["total_amount"], "0.10");
        assert_eq!(sent.biz["buyer_id"], "2088102146225135");
        assert!(sent.biz.get("buyer_open_id").is_none());
        assert_eq!(sent.biz["product_code"], "JSAPI_PAY");
        assert_eq!(sent.params["notify_url"], NOTIFY_URL);
        let te = sent.biz["time_expire"].as_str().unwrap();
        assert!(cashdesk_core::time::parse_cn_datetime(te).is_some(), "{te}");
        if cert_mode {
            assert_eq!(sent.params["app_cert_sn"], app_cert_sn());
            assert_eq!(sent.params["alipay_root_cert_sn"], root_cert_sn());
        } else {
            assert!(!sent.params.contains_key("app_cert_sn"));
        }
        let pd = resp.pay_data.to_json();
        let trade_no = pd["tradeNo"].as_str().unwrap();
        assert!(trade_no.starts_with("20240102220014"));
        assert_eq!(resp.prepay_id.as_deref(), Some(trade_no));
    }
    // An OpenID goes in buyer_open_id.
    let (d, ch) = setup().await;
    let mut req = pay_request(SceneCode::Mini);
    req.payer_id = Some("074a1CcTG1LelxKe4xQC0zgNdId0nxi95b5lsNpazWYoCo5".into());
    ch.create_payment(&req).await.unwrap();
    assert_eq!(
        d.last().biz["buyer_open_id"],
        "074a1CcTG1LelxKe4xQC0zgNdId0nxi95b5lsNpazWYoCo5"
    );
    assert!(d.last().biz.get("buyer_id").is_none());
}

#[tokio::test]
async fn qr_precreates_and_returns_the_code() {
    let (d, ch) = setup().await;
    let resp = ch
        .create_payment(&pay_request(SceneCode::Qr))
        .await
        .unwrap();
    assert_eq!(d.last().params["method"], "alipay.trade.precreate");
    // The answer had `https:\/\/…`: verified over the raw text, decoded after.
    assert_eq!(
        resp.pay_data.to_json(),
        json!({"qrCode": "https://qr.alipay.com/bax03431ljhokirwl38f00a7"})
    );
}

/// The parameters of a signed redirect URL, checked as Alipay would.
fn check_client_side(params: &std::collections::BTreeMap<String, String>, method: &str) -> Value {
    assert_eq!(params["method"], method);
    assert_eq!(params["app_id"], APP_ID);
    assert_eq!(params["notify_url"], NOTIFY_URL);
    assert!(verify_app_signature(params), "signature of {params:?}");
    serde_json::from_str(&params["biz_content"]).unwrap()
}

#[tokio::test]
async fn wap_and_page_return_a_signed_redirect_and_form_without_calling() {
    let (d, ch) = setup().await;
    for (scene, method, product) in [
        (SceneCode::Wap, "alipay.trade.wap.pay", "QUICK_WAP_WAY"),
        (
            SceneCode::Page,
            "alipay.trade.page.pay",
            "FAST_INSTANT_TRADE_PAY",
        ),
    ] {
        let req = pay_request(scene);
        let resp = ch.create_payment(&req).await.unwrap();
        let pd = resp.pay_data.to_json();
        let url = pd["redirectUrl"].as_str().unwrap();
        let (gateway, query) = url.split_once('?').unwrap();
        assert!(gateway.ends_with("/ali/gateway.do"), "{gateway}");
        let params = form(query);
        let biz = check_client_side(&params, method);
        assert_eq!(params["return_url"], RETURN_URL);
        assert_eq!(biz["product_code"], product);
        if scene == SceneCode::Wap {
            assert_eq!(biz["quit_url"], RETURN_URL);
        } else {
            assert!(biz.get("quit_url").is_none());
        }
        assert_eq!(biz["total_amount"], "0.10");
        assert_eq!(biz["out_trade_no"], req.order_id.as_str());
        // passback_params is URL-encoded once inside biz_content.
        assert_eq!(biz["passback_params"], "store%3DS1%26x%3D%E4%B8%AD");
        let pd = resp.pay_data.to_json();
        let html = pd["form"].as_str().unwrap();
        assert!(html.contains(&format!("action=\"{gateway}\"")), "{html}");
        assert!(html.contains("document.forms[0].submit()"));
        assert!(html.contains(&format!("name=\"sign\" value=\"{}\"", params["sign"])));
        assert!(
            html.contains("&quot;out_trade_no&quot;"),
            "biz_content escaped"
        );
    }
    // The order's own return URL wins over the config's.
    for scene in [SceneCode::Wap, SceneCode::Page] {
        let mut req = pay_request(scene);
        req.return_url = Some("https://shop.example.com/orders/42?from=alipay".into());
        let resp = ch.create_payment(&req).await.unwrap();
        let pd = resp.pay_data.to_json();
        let url = pd["redirectUrl"].as_str().unwrap();
        let params = form(url.split_once('?').unwrap().1);
        let biz = check_client_side(&params, params["method"].as_str());
        assert_eq!(
            params["return_url"],
            "https://shop.example.com/orders/42?from=alipay"
        );
        if scene == SceneCode::Wap {
            assert_eq!(
                biz["quit_url"],
                "https://shop.example.com/orders/42?from=alipay"
            );
        }
    }
    assert_eq!(d.count(), 0, "wap/page make no server call");
}

#[tokio::test]
async fn app_returns_a_signed_order_string() {
    let (d, ch) = setup().await;
    let resp = ch
        .create_payment(&pay_request(SceneCode::App))
        .await
        .unwrap();
    let params = form(resp.pay_data.to_json()["orderString"].as_str().unwrap());
    let biz = check_client_side(&params, "alipay.trade.app.pay");
    assert_eq!(biz["product_code"], "QUICK_MSECURITY_PAY");
    assert_eq!(d.count(), 0);
}

#[tokio::test]
async fn invalid_requests_are_refused_before_calling() {
    let (d, ch) = setup().await;
    let mut req = pay_request(SceneCode::Mini);
    req.payer_id = None;
    assert_eq!(
        ch.create_payment(&req).await.unwrap_err().kind(),
        ChannelErrorKind::InvalidRequest
    );
    assert_eq!(
        ch.create_payment(&pay_request(SceneCode::Native))
            .await
            .unwrap_err()
            .kind(),
        ChannelErrorKind::InvalidRequest
    );
    assert_eq!(d.count(), 0);
}

#[tokio::test]
async fn responses_that_cannot_be_trusted_are_errors() {
    let (d, ch) = setup().await;
    let req = pay_request(SceneCode::Qr);
    for fault in [Fault::Unsigned, Fault::BadSign, Fault::Tampered] {
        d.set_fault(fault.clone());
        let e = ch.create_payment(&req).await.unwrap_err();
        assert_eq!(e.kind(), ChannelErrorKind::BadResponse, "{fault:?}: {e}");
    }
    // An unsigned "does not exist" is not believed.
    d.set_fault(Fault::Unsigned);
    *d.trade_status.lock().unwrap() = "NOT_EXIST".into();
    let q = QueryRequest {
        order_id: req.order_id.clone(),
        amount: req.amount,
        store: None,
    };
    assert_eq!(
        ch.query(&q).await.unwrap_err().kind(),
        ChannelErrorKind::BadResponse
    );
    let close = CloseRequest {
        order_id: req.order_id.clone(),
        store: None,
    };
    assert_ne!(ch.close(&close).await, Ok(()));
    // Certificate mode: an answer under another Alipay certificate.
    let (d, ch) = setup_with(true).await;
    d.set_fault(Fault::WrongCertSn);
    let e = ch.create_payment(&req).await.unwrap_err();
    assert_eq!(e.kind(), ChannelErrorKind::BadResponse);
    assert!(e.message().contains("alipayCertPem"), "{e}");
    d.set_fault(Fault::None);
    ch.create_payment(&req).await.unwrap();
}

#[tokio::test]
async fn failures_are_classified() {
    let (d, ch) = setup().await;
    let req = pay_request(SceneCode::Qr);
    d.set_fault(Fault::SystemError);
    let e = ch.create_payment(&req).await.unwrap_err();
    assert_eq!(e.kind(), ChannelErrorKind::Retryable);
    assert_eq!(e.code(), Some("ACQ.SYSTEM_ERROR"));
    d.set_fault(Fault::Unavailable);
    assert_eq!(
        ch.create_payment(&req).await.unwrap_err().kind(),
        ChannelErrorKind::Retryable
    );
    d.set_fault(Fault::Http500);
    assert_eq!(
        ch.create_payment(&req).await.unwrap_err().kind(),
        ChannelErrorKind::Retryable
    );
    d.set_fault(Fault::Timeout);
    assert_eq!(
        ch.create_payment(&req).await.unwrap_err().kind(),
        ChannelErrorKind::Retryable
    );
    d.set_fault(Fault::Business("ACQ.TRADE_HAS_SUCCESS", "交易已被支付"));
    let e = ch.create_payment(&req).await.unwrap_err();
    assert_eq!(e.kind(), ChannelErrorKind::Business);
    assert_eq!(e.business_kind(), Some(BusinessKind::OrderAlreadyPaid));
    assert_eq!(e.code(), Some("ACQ.TRADE_HAS_SUCCESS"));
    assert_eq!(e.message(), "交易已被支付");
    d.set_fault(Fault::None);
    // The double cannot authenticate a request signed with another key: its
    // unsigned 40002 isv.invalid-signature is a configuration problem.
    let mut bad = creds();
    bad["privateKeyPem"] = json!(
        cashdesk_crypto::rsa::RsaPrivateKey::generate_2048()
            .unwrap()
            .to_pkcs8_pem()
    );
    let base = d.last().path;
    assert_eq!(base, "/ali/gateway.do");
    let addr = serve(router(d.clone())).await;
    let other = build_channel(
        ChannelType::AliPay,
        "v2",
        MCH_ID,
        &bad,
        Some(&format!("http://{addr}/ali/gateway.do")),
        &env(),
    )
    .unwrap();
    let e = other.create_payment(&req).await.unwrap_err();
    assert_eq!(e.kind(), ChannelErrorKind::Config, "{e}");
    // A public-key config talking to a certificate-mode app (no SNs sent).
    let cert_double = Double::new(true);
    let addr = serve(router(cert_double)).await;
    let pk = build_channel(
        ChannelType::AliPay,
        "v2",
        MCH_ID,
        &creds(),
        Some(&format!("http://{addr}/ali/gateway.do")),
        &env(),
    )
    .unwrap();
    assert_eq!(
        pk.create_payment(&req).await.unwrap_err().kind(),
        ChannelErrorKind::Config
    );
}

#[tokio::test]
async fn query_maps_trade_status_and_checks_the_amount() {
    let (d, ch) = setup().await;
    let order_id = OrderId::generate();
    let q = QueryRequest {
        order_id: order_id.clone(),
        amount: Fen::from_stored(100),
        store: None,
    };
    assert_eq!(ch.query(&q).await.unwrap(), ChannelOrderStatus::NotPaid);
    assert_eq!(d.last().params["method"], "alipay.trade.query");
    assert_eq!(d.last().biz, json!({"out_trade_no": order_id.as_str()}));
    assert!(!d.last().params.contains_key("notify_url"));
    for status in ["TRADE_SUCCESS", "TRADE_FINISHED"] {
        *d.trade_status.lock().unwrap() = status.into();
        let ChannelOrderStatus::Paid(paid) = ch.query(&q).await.unwrap() else {
            panic!("{status}")
        };
        assert_eq!(paid.amount, Fen::from_stored(100));
        assert_eq!(paid.transaction_id, "2024010222001400001234567890");
        assert_eq!(
            cashdesk_core::time::to_cn_datetime(paid.pay_time),
            "2024-01-02 11:04:05"
        );
    }
    // "1" and "1.0" are 100 fen too; "0.99" is not.
    for same in ["1", "1.0"] {
        *d.paid_amount.lock().unwrap() = same.into();
        assert!(matches!(
            ch.query(&q).await.unwrap(),
            ChannelOrderStatus::Paid(_)
        ));
    }
    *d.paid_amount.lock().unwrap() = "0.99".into();
    assert_eq!(
        ch.query(&q).await.unwrap_err().kind(),
        ChannelErrorKind::BadResponse
    );
    *d.paid_amount.lock().unwrap() = "1.00".into();
    *d.trade_status.lock().unwrap() = "TRADE_CLOSED".into();
    assert_eq!(ch.query(&q).await.unwrap(), ChannelOrderStatus::Closed);
    *d.closed_after_pay.lock().unwrap() = true;
    assert!(matches!(
        ch.query(&q).await.unwrap(),
        ChannelOrderStatus::Refunded(_)
    ));
    *d.trade_status.lock().unwrap() = "NOT_EXIST".into();
    assert_eq!(ch.query(&q).await.unwrap(), ChannelOrderStatus::NotFound);
}

#[tokio::test]
async fn close_refund_and_refund_query() {
    let (d, ch) = setup().await;
    let order_id = OrderId::generate();
    let close = CloseRequest {
        order_id: order_id.clone(),
        store: None,
    };
    ch.close(&close).await.unwrap();
    assert_eq!(d.last().params["method"], "alipay.trade.close");
    // Never created at Alipay (wap URL never opened): nothing to close.
    *d.trade_status.lock().unwrap() = "NOT_EXIST".into();
    ch.close(&close).await.unwrap();
    d.set_fault(Fault::Business("ACQ.TRADE_STATUS_ERROR", "交易状态不合法"));
    assert_eq!(
        ch.close(&close).await.unwrap_err().kind(),
        ChannelErrorKind::Business
    );
    d.set_fault(Fault::None);

    // A partial refund: 30 fen of 100, out_request_no = the refund id.
    let refund_id = RefundId::generate();
    let refund = RefundRequest {
        order_id: order_id.clone(),
        refund_id: refund_id.clone(),
        order_amount: Fen::from_stored(100),
        refund_amount: Fen::from_stored(30),
        reason: Some("商品已售完".into()),
        store: None,
    };
    let st = ch.refund(&refund).await.unwrap();
    let sent = d.last();
    assert_eq!(sent.params["method"], "alipay.trade.refund");
    assert_eq!(
        sent.biz,
        json!({
            "out_trade_no": order_id.as_str(),
            "refund_amount": "0.30",
            "out_request_no": refund_id.as_str(),
            "refund_reason": "商品已售完",
        })
    );
    assert_eq!(st.outcome, RefundOutcome::Success);
    assert_eq!(st.refund_amount, Some(Fen::from_stored(30)));
    assert!(st.success_time.is_some());
    // A repeated call moves no money: confirm by query.
    *d.fund_change.lock().unwrap() = "N";
    assert_eq!(
        ch.refund(&refund).await.unwrap().outcome,
        RefundOutcome::Processing
    );

    let rq = RefundQueryRequest {
        order_id: order_id.clone(),
        refund_id: refund_id.clone(),
        store: None,
    };
    let st = ch.query_refund(&rq).await.unwrap();
    assert_eq!(
        d.last().params["method"],
        "alipay.trade.fastpay.refund.query"
    );
    assert_eq!(d.last().biz["out_request_no"], refund_id.as_str());
    assert_eq!(st.outcome, RefundOutcome::Success);
    assert_eq!(st.refund_amount, Some(Fen::from_stored(30)));
    // Not found is never read as "failed": it is REFUND_NOT_FOUND, and the
    // server sends the refund again with the same out_request_no.
    *d.refund_found.lock().unwrap() = false;
    let e = ch.query_refund(&rq).await.unwrap_err();
    assert_eq!(e.kind(), ChannelErrorKind::Business);
    assert_eq!(e.business_kind(), Some(BusinessKind::RefundNotFound));
    assert_eq!(e.code(), Some(alipay::REFUND_NOT_FOUND_CODE));
    d.set_fault(Fault::Business(
        "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL",
        "退款金额超限",
    ));
    let e = ch.refund(&refund).await.unwrap_err();
    assert_eq!(e.kind(), ChannelErrorKind::Business);
    assert_eq!(e.code(), Some("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL"));
}

/// A store whose own Alipay merchant authorized the config's app: every
/// call for its orders, and the client-side wap/page/app parameters, carry
/// its `app_auth_token` among the signed parameters; the config's own
/// orders carry none.
#[tokio::test]
async fn store_orders_carry_the_app_auth_token() {
    let (d, ch) = setup().await;
    let store = StoreMerchant::new(
        "S3",
        json!({"appAuthToken": "202401BB3b2c1a9f0e8d7c6b5a4",
               "authAppId": "2021000000000077", "sellerId": "2088000000000077"}),
    );
    let mut req = pay_request(SceneCode::Mini);
    req.store = Some(store.clone());
    ch.create_payment(&req).await.unwrap();
    let sent = d.last();
    assert_eq!(sent.params["app_auth_token"], "202401BB3b2c1a9f0e8d7c6b5a4");
    assert_eq!(sent.params["app_id"], APP_ID, "the config's app calls");
    assert!(verify_app_signature(&sent.params), "the token is signed");
    // Client-side scenes: the token is in the signed parameters too.
    for scene in [SceneCode::Wap, SceneCode::Page, SceneCode::App] {
        let mut r = pay_request(scene);
        r.store = Some(store.clone());
        let resp = ch.create_payment(&r).await.unwrap();
        let pd = resp.pay_data.to_json();
        let text = pd["redirectUrl"]
            .as_str()
            .map(|u| u.split_once('?').unwrap().1)
            .or(pd["orderString"].as_str())
            .unwrap();
        let params = form(text);
        assert_eq!(params["app_auth_token"], "202401BB3b2c1a9f0e8d7c6b5a4");
        check_client_side(&params, params["method"].as_str());
    }
    let store = Some(store);
    let q = QueryRequest {
        order_id: req.order_id.clone(),
        amount: req.amount,
        store: store.clone(),
    };
    ch.query(&q).await.unwrap();
    assert_eq!(
        d.last().params["app_auth_token"],
        "202401BB3b2c1a9f0e8d7c6b5a4"
    );
    ch.close(&CloseRequest {
        order_id: req.order_id.clone(),
        store: store.clone(),
    })
    .await
    .unwrap();
    assert_eq!(d.last().params["method"], "alipay.trade.close");
    assert_eq!(
        d.last().params["app_auth_token"],
        "202401BB3b2c1a9f0e8d7c6b5a4"
    );
    let refund_id = RefundId::generate();
    ch.refund(&RefundRequest {
        order_id: req.order_id.clone(),
        refund_id: refund_id.clone(),
        order_amount: Fen::from_stored(10),
        refund_amount: Fen::from_stored(10),
        reason: None,
        store: store.clone(),
    })
    .await
    .unwrap();
    assert_eq!(
        d.last().params["app_auth_token"],
        "202401BB3b2c1a9f0e8d7c6b5a4"
    );
    ch.query_refund(&RefundQueryRequest {
        order_id: req.order_id.clone(),
        refund_id,
        store,
    })
    .await
    .unwrap();
    assert_eq!(
        d.last().params["app_auth_token"],
        "202401BB3b2c1a9f0e8d7c6b5a4"
    );
    // The config's own order: no token.
    ch.create_payment(&pay_request(SceneCode::Qr))
        .await
        .unwrap();
    assert!(!d.last().params.contains_key("app_auth_token"));
}

#[test]
fn app_auth_identities_are_validated_and_keep_the_token_secret() {
    let ok = validate_store_identity(
        cashdesk_core::ChannelType::AliPay,
        "v2",
        &json!({"appAuthToken": "202401BBx", "authAppId": "2021000000000077"}),
    )
    .unwrap();
    assert_eq!(ok.mch_id.as_deref(), Some("2021000000000077"));
    assert_eq!(ok.secret_fields, ["appAuthToken"]);
    let with_seller = validate_store_identity(
        cashdesk_core::ChannelType::AliPay,
        "v2",
        &json!({"appAuthToken": "t", "authAppId": "2021000000000077", "sellerId": "2088000000000077"}),
    )
    .unwrap();
    assert_eq!(with_seller.mch_id.as_deref(), Some("2088000000000077"));
    for (bad, field) in [
        (json!({"authAppId": "2021000000000077"}), "appAuthToken"),
        (json!({"appAuthToken": "t"}), "authAppId"),
        (json!({"appAuthToken": "t", "authAppId": "x1"}), "authAppId"),
        (
            json!({"appAuthToken": " ", "authAppId": "2021"}),
            "appAuthToken",
        ),
        (
            json!({"appAuthToken": "t", "authAppId": "2021", "sellerId": "1"}),
            "sellerId",
        ),
    ] {
        let e =
            validate_store_identity(cashdesk_core::ChannelType::AliPay, "v2", &bad).unwrap_err();
        assert!(e.contains(field), "{bad}: {e}");
        assert!(!e.contains("202401BB"), "never echoes the token: {e}");
    }
    let dbg = format!(
        "{:?}",
        StoreMerchant::new("S3", json!({"appAuthToken": "202401BBsecret"}))
    );
    assert!(!dbg.contains("202401BBsecret"), "{dbg}");
}
