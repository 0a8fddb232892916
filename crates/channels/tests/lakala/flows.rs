//! The Lakala adapter against the local double: every scene, query, close,
//! refund and refund query, and the error mapping.

use std::sync::Arc;

use cashdesk_channels::*;
use cashdesk_core::{ChannelType, Fen, OrderId, RefundId, SceneCode};
use serde_json::{Value, json};

use crate::support::*;

async fn setup() -> (Arc<Double>, Arc<dyn Channel>) {
    let d = Double::new();
    let addr = serve(router(d.clone())).await;
    let ch = build_channel(
        ChannelType::Lakala,
        "v3",
        MCH_ID,
        &creds(),
        Some(&format!("http://{addr}/lkl")),
        &env(),
    )
    .unwrap();
    (d, ch)
}

fn pay_request(scene: SceneCode, payer: Option<&str>) -> PayRequest {
    PayRequest {
        order_id: OrderId::generate(),
        amount: Fen::from_stored(100),
        scene,
        description: "门店消费".into(),
        payer_id: payer.map(str::to_owned),
        payer_app_id: None,
        client_ip: Some("203.0.113.7".into()),
        expire_at: Some(chrono::Utc::now() + chrono::Duration::minutes(15)),
        attach: Some("store=S1".into()),
        return_url: None,
        store: None,
    }
}

const OPENID: &str = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o";
const ALIPAY_USER: &str = "2088102146225135";

fn req_data(d: &Double) -> Value {
    d.last().body["req_data"].clone()
}

#[tokio::test]
async fn mini_returns_request_payment_params_from_acc_resp_fields() {
    let (d, ch) = setup().await;
    let req = pay_request(SceneCode::Mini, Some(OPENID));
    let resp = ch.create_payment(&req).await.unwrap();
    let sent = d.last();
    assert_eq!(sent.path, "/lkl/api/v3/labs/trans/preorder");
    assert_eq!(sent.body["version"], "3.0");
    let r = &sent.body["req_data"];
    assert_eq!(r["trans_type"], "71");
    assert_eq!(r["account_type"], "WECHAT");
    assert_eq!(r["out_trade_no"], req.order_id.as_str());
    assert_eq!(r["total_amount"], "100");
    assert_eq!(r["location_info"]["request_ip"], "203.0.113.7");
    assert_eq!(r["remark"], "store=S1");
    assert_eq!(r["acc_busi_fields"]["sub_appid"], SUB_APP_ID);
    assert_eq!(r["acc_busi_fields"]["user_id"], OPENID);
    assert_eq!(r["acc_busi_fields"]["timeout_express"], "15");
    assert_eq!(
        resp.pay_data.to_json(),
        json!({
            "appId": SUB_APP_ID, "timeStamp": "1704164645", "nonceStr": "8c1b2e6f4a",
            "package": "prepay_id=wx2024010211040512345", "signType": "RSA",
            "paySign": "c2lnbmVkLWJ5LWxha2FsYQ==",
        })
    );
    assert_eq!(resp.prepay_id.as_deref(), Some("wx2024010211040512345"));
    // The Authorization header names our appid and serial.
    let auth = auth_params(&sent.authorization).unwrap();
    assert_eq!(auth["appid"], APP_ID);
    assert_eq!(auth["serial_no"], SERIAL_NO);
}

#[tokio::test]
async fn jsapi_native_and_h5() {
    let (d, ch) = setup().await;
    // jsapi with an openid: WeChat.
    let r = ch
        .create_payment(&pay_request(SceneCode::Jsapi, Some(OPENID)))
        .await
        .unwrap();
    assert_eq!(req_data(&d)["trans_type"], "51");
    assert_eq!(req_data(&d)["account_type"], "WECHAT");
    assert_eq!(
        r.pay_data.to_json()["package"],
        "prepay_id=wx2024010211040512345"
    );
    // jsapi with an Alipay user id: Alipay, payData {tradeNo}.
    let r = ch
        .create_payment(&pay_request(SceneCode::Jsapi, Some(ALIPAY_USER)))
        .await
        .unwrap();
    assert_eq!(req_data(&d)["account_type"], "ALIPAY");
    assert_eq!(req_data(&d)["acc_busi_fields"]["user_id"], ALIPAY_USER);
    assert!(req_data(&d)["acc_busi_fields"].get("sub_appid").is_none());
    assert_eq!(
        r.pay_data.to_json(),
        json!({"tradeNo": "2024010222001400001234567890"})
    );
    // native (41).
    let r = ch
        .create_payment(&pay_request(SceneCode::Native, None))
        .await
        .unwrap();
    assert_eq!(req_data(&d)["trans_type"], "41");
    assert_eq!(
        r.pay_data.to_json(),
        json!({"codeUrl": "https://qr.alipay.com/bax08861"})
    );
    // h5 (81, Alipay H5), with no client IP: the server-side default.
    let mut req = pay_request(SceneCode::H5, None);
    req.client_ip = None;
    let r = ch.create_payment(&req).await.unwrap();
    assert_eq!(req_data(&d)["trans_type"], "81");
    assert_eq!(req_data(&d)["location_info"]["request_ip"], "127.0.0.1");
    assert_eq!(
        r.pay_data.to_json(),
        json!({"h5Url": "https://openapi.alipay.com/gateway.do?h5=1"})
    );
}

#[tokio::test]
async fn invalid_requests_are_refused_before_calling() {
    let (d, ch) = setup().await;
    for (scene, payer) in [
        (SceneCode::Mini, None),
        (SceneCode::Jsapi, None),
        (SceneCode::Wap, None),
        (SceneCode::App, None),
    ] {
        assert_eq!(
            ch.create_payment(&pay_request(scene, payer))
                .await
                .unwrap_err()
                .kind(),
            ChannelErrorKind::InvalidRequest,
            "{scene}"
        );
    }
    // WeChat payments need subAppId in the config.
    let mut c = creds();
    c.as_object_mut().unwrap().remove("subAppId");
    let no_sub = build_channel(ChannelType::Lakala, "v3", MCH_ID, &c, None, &env()).unwrap();
    assert_eq!(
        no_sub
            .create_payment(&pay_request(SceneCode::Mini, Some(OPENID)))
            .await
            .unwrap_err()
            .kind(),
        ChannelErrorKind::Config
    );
    assert_eq!(d.count(), 0);
}

#[tokio::test]
async fn responses_that_cannot_be_trusted_are_errors() {
    let (d, ch) = setup().await;
    let req = pay_request(SceneCode::Native, None);
    for fault in [
        Fault::Unsigned,
        Fault::BadSign,
        Fault::WrongSerial,
        Fault::WrongAppid,
        Fault::Tampered,
    ] {
        d.set_fault(fault.clone());
        let e = ch.create_payment(&req).await.unwrap_err();
        assert_eq!(e.kind(), ChannelErrorKind::BadResponse, "{fault:?}: {e}");
    }
    // Not even a signed-looking "not found" is believed without a signature.
    d.set_fault(Fault::Unsigned);
    *d.trade_state.lock().unwrap() = "NOT_FOUND".into();
    let q = QueryRequest {
        order_id: req.order_id.clone(),
        amount: req.amount,
        store: None,
    };
    assert_eq!(
        ch.query(&q).await.unwrap_err().kind(),
        ChannelErrorKind::BadResponse
    );
}

#[tokio::test]
async fn failures_are_classified() {
    let (d, ch) = setup().await;
    let req = pay_request(SceneCode::Native, None);
    d.set_fault(Fault::SystemError);
    let e = ch.create_payment(&req).await.unwrap_err();
    assert_eq!(e.kind(), ChannelErrorKind::Retryable);
    assert_eq!(e.code(), Some("BBS99999"));
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
    // The sandbox's codes (UNCONFIRMED at Lakala): paid BBS11004, closed
    // BBS11005; the channel's code and message stay for the merchant.
    d.set_fault(Fault::Business("BBS11004", "订单已支付"));
    let e = ch.create_payment(&req).await.unwrap_err();
    assert_eq!(e.kind(), ChannelErrorKind::Business);
    assert_eq!(e.business_kind(), Some(BusinessKind::OrderAlreadyPaid));
    assert_eq!(e.code(), Some("BBS11004"));
    assert_eq!(e.message(), "订单已支付");
    d.set_fault(Fault::Business("BBS11005", "订单已关闭"));
    let e = ch.create_payment(&req).await.unwrap_err();
    assert_eq!(e.business_kind(), Some(BusinessKind::OrderClosed));
    assert_eq!(e.code(), Some("BBS11005"));
    d.set_fault(Fault::None);
    // Signed with another merchant key: Lakala answers 401.
    let mut bad = creds();
    bad["privateKeyPem"] = json!(
        cashdesk_crypto::rsa::RsaPrivateKey::generate_2048()
            .unwrap()
            .to_pkcs8_pem()
    );
    let addr = serve(router(d.clone())).await;
    let other = build_channel(
        ChannelType::Lakala,
        "v3",
        MCH_ID,
        &bad,
        Some(&format!("http://{addr}/lkl")),
        &env(),
    )
    .unwrap();
    assert_eq!(
        other.create_payment(&req).await.unwrap_err().kind(),
        ChannelErrorKind::Config
    );
}

#[tokio::test]
async fn query_maps_trade_state_and_checks_the_amount() {
    let (d, ch) = setup().await;
    let order_id = OrderId::generate();
    let q = QueryRequest {
        order_id: order_id.clone(),
        amount: Fen::from_stored(100),
        store: None,
    };
    assert_eq!(ch.query(&q).await.unwrap(), ChannelOrderStatus::NotPaid);
    assert_eq!(d.last().path, "/lkl/api/v3/labs/query/tradequery");
    assert_eq!(req_data(&d)["out_trade_no"], order_id.as_str());
    *d.trade_state.lock().unwrap() = "SUCCESS".into();
    let ChannelOrderStatus::Paid(paid) = ch.query(&q).await.unwrap() else {
        panic!()
    };
    assert_eq!(paid.amount, Fen::from_stored(100));
    assert_eq!(paid.transaction_id, "20240102110113130266250000001");
    assert_eq!(
        cashdesk_core::time::to_cn_datetime(paid.pay_time),
        "2024-01-02 11:04:05"
    );
    *d.paid_amount.lock().unwrap() = 99;
    assert_eq!(
        ch.query(&q).await.unwrap_err().kind(),
        ChannelErrorKind::BadResponse
    );
    *d.paid_amount.lock().unwrap() = 100;
    *d.trade_state.lock().unwrap() = "PART_REFUND".into();
    assert!(matches!(
        ch.query(&q).await.unwrap(),
        ChannelOrderStatus::Refunded(_)
    ));
    for (state, expected) in [
        ("DEAL", ChannelOrderStatus::Paying),
        ("CLOSE", ChannelOrderStatus::Closed),
        ("INIT", ChannelOrderStatus::NotPaid),
        ("NOT_FOUND", ChannelOrderStatus::NotFound),
        (
            "UNKNOWN",
            ChannelOrderStatus::Unknown {
                state: "UNKNOWN".into(),
            },
        ),
    ] {
        *d.trade_state.lock().unwrap() = state.into();
        assert_eq!(ch.query(&q).await.unwrap(), expected, "{state}");
    }
    *d.trade_state.lock().unwrap() = "FAIL".into();
    assert!(matches!(
        ch.query(&q).await.unwrap(),
        ChannelOrderStatus::Failed { .. }
    ));
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
    assert_eq!(d.last().path, "/lkl/api/v3/labs/relation/close");
    assert_eq!(req_data(&d)["origin_out_trade_no"], order_id.as_str());
    *d.trade_state.lock().unwrap() = "NOT_FOUND".into();
    ch.close(&close).await.unwrap();
    d.set_fault(Fault::Business("BBS11006", "订单状态不允许关闭"));
    assert_eq!(
        ch.close(&close).await.unwrap_err().kind(),
        ChannelErrorKind::Business
    );
    d.set_fault(Fault::None);

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
    assert_eq!(d.last().path, "/lkl/api/v3/labs/relation/refund");
    let r = req_data(&d);
    assert_eq!(r["out_trade_no"], refund_id.as_str());
    assert_eq!(r["origin_out_trade_no"], order_id.as_str());
    assert_eq!(r["refund_amount"], "30");
    assert_eq!(r["refund_reason"], "商品已售完");
    assert_eq!(st.outcome, RefundOutcome::Success);
    assert_eq!(st.refund_amount, Some(Fen::from_stored(30)));
    assert!(st.success_time.is_some());
    *d.refund_state.lock().unwrap() = "DEAL".into();
    assert_eq!(
        ch.refund(&refund).await.unwrap().outcome,
        RefundOutcome::Processing
    );

    let rq = RefundQueryRequest {
        order_id,
        refund_id: refund_id.clone(),
        store: None,
    };
    *d.refund_state.lock().unwrap() = "SUCCESS".into();
    let st = ch.query_refund(&rq).await.unwrap();
    assert_eq!(d.last().path, "/lkl/api/v3/labs/query/tradequery");
    assert_eq!(req_data(&d)["out_trade_no"], refund_id.as_str());
    assert_eq!(st.outcome, RefundOutcome::Success);
    assert_eq!(st.refund_amount, Some(Fen::from_stored(30)));
    *d.refund_state.lock().unwrap() = "FAIL".into();
    assert_eq!(
        ch.query_refund(&rq).await.unwrap().outcome,
        RefundOutcome::Closed
    );
    // An unknown refund is never read as failed (unconfirmed endpoint).
    *d.refund_state.lock().unwrap() = "NOT_FOUND".into();
    assert_eq!(
        ch.query_refund(&rq).await.unwrap().outcome,
        RefundOutcome::Processing
    );
}

/// A chain store's identity: its merchant and terminal numbers go in every
/// request instead of the config's, its own WeChat AppID in acc_busi_fields,
/// and an answer for another merchant is not trusted.
#[tokio::test]
async fn store_requests_carry_the_store_terminal() {
    let (d, ch) = setup().await;
    let store = StoreMerchant::new(
        "S2",
        json!({"merchantNo": STORE_MERCHANT_NO, "termNo": STORE_TERM_NO}),
    );
    let mut req = pay_request(SceneCode::Native, None);
    req.store = Some(store.clone());
    ch.create_payment(&req).await.unwrap();
    let r = req_data(&d);
    assert_eq!(
        (r["merchant_no"].as_str(), r["term_no"].as_str()),
        (Some(STORE_MERCHANT_NO), Some(STORE_TERM_NO))
    );
    // The config's subAppId unless the store has its own.
    let mut mini = pay_request(SceneCode::Mini, Some(OPENID));
    mini.store = Some(store.clone());
    ch.create_payment(&mini).await.unwrap();
    assert_eq!(req_data(&d)["acc_busi_fields"]["sub_appid"], SUB_APP_ID);
    let mut own_app = mini.clone();
    own_app.store = Some(StoreMerchant::new(
        "S2",
        json!({"merchantNo": STORE_MERCHANT_NO, "termNo": STORE_TERM_NO,
               "subAppId": "wx1111111111111111"}),
    ));
    // The double only knows the config's AppID: the store's was sent.
    assert!(ch.create_payment(&own_app).await.is_err());
    assert_eq!(
        req_data(&d)["acc_busi_fields"]["sub_appid"],
        "wx1111111111111111"
    );

    let store = Some(store);
    *d.trade_state.lock().unwrap() = "SUCCESS".into();
    let q = QueryRequest {
        order_id: req.order_id.clone(),
        amount: req.amount,
        store: store.clone(),
    };
    assert!(matches!(
        ch.query(&q).await.unwrap(),
        ChannelOrderStatus::Paid(_)
    ));
    assert_eq!(req_data(&d)["merchant_no"], STORE_MERCHANT_NO);
    let refund_id = RefundId::generate();
    ch.refund(&RefundRequest {
        order_id: req.order_id.clone(),
        refund_id: refund_id.clone(),
        order_amount: Fen::from_stored(100),
        refund_amount: Fen::from_stored(30),
        reason: None,
        store: store.clone(),
    })
    .await
    .unwrap();
    assert_eq!(
        (
            req_data(&d)["merchant_no"].as_str(),
            req_data(&d)["term_no"].as_str()
        ),
        (Some(STORE_MERCHANT_NO), Some(STORE_TERM_NO))
    );
    ch.query_refund(&RefundQueryRequest {
        order_id: req.order_id.clone(),
        refund_id,
        store: store.clone(),
    })
    .await
    .unwrap();
    assert_eq!(req_data(&d)["merchant_no"], STORE_MERCHANT_NO);
    ch.close(&CloseRequest {
        order_id: req.order_id.clone(),
        store: store.clone(),
    })
    .await
    .unwrap();
    assert_eq!(req_data(&d)["merchant_no"], STORE_MERCHANT_NO);

    // An answer naming another merchant: not this store's trade.
    *d.wrong_merchant.lock().unwrap() = true;
    assert_eq!(
        ch.query(&q).await.unwrap_err().kind(),
        ChannelErrorKind::BadResponse
    );
}

#[test]
fn terminal_identities_are_validated() {
    let ok = validate_store_identity(
        cashdesk_core::ChannelType::Lakala,
        "v3",
        &json!({"merchantNo": STORE_MERCHANT_NO, "termNo": STORE_TERM_NO}),
    )
    .unwrap();
    assert_eq!(ok.mch_id.as_deref(), Some(STORE_MERCHANT_NO));
    for (bad, field) in [
        (json!({"merchantNo": STORE_MERCHANT_NO}), "termNo"),
        (json!({"termNo": STORE_TERM_NO}), "merchantNo"),
        (json!({"merchantNo": "822 1", "termNo": "1"}), "merchantNo"),
        (
            json!({"merchantNo": "8221", "termNo": "1", "subMchId": "1"}),
            "subMchId",
        ),
    ] {
        let e =
            validate_store_identity(cashdesk_core::ChannelType::Lakala, "v3", &bad).unwrap_err();
        assert!(e.contains(field), "{bad}: {e}");
    }
}
