//! Service-provider mode (服务商模式) of both WeChat Pay adapters against the
//! local double: a store's sub-merchant identity turns every call into a
//! partner call (v2 `sub_mch_id`/`sub_appid`/`sub_openid`; v3
//! `/v3/pay/partner/…` with `sp_*`/`sub_*`), answers naming another
//! sub-merchant are refused, and notifications of partner orders are
//! checked against the order's store.

use std::collections::BTreeMap;
use std::sync::Arc;

use cashdesk_channels::*;
use cashdesk_core::{ChannelType, Fen, OrderId, RefundId, SceneCode};
use cashdesk_crypto::aead::aes_gcm_encrypt;
use cashdesk_crypto::wxv2::{self, WxSignType};
use serde_json::{Value, json};

use crate::support::*;

const SUB_MCH_ID: &str = "1900000201";
const SUB_APP_ID: &str = "wx8888888888888888";
const OPENID: &str = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o";

fn store(sub_app_id: Option<&str>) -> StoreMerchant {
    let mut fields = json!({"subMchId": SUB_MCH_ID});
    if let Some(a) = sub_app_id {
        fields["subAppId"] = json!(a);
    }
    StoreMerchant::new("S1", fields)
}

async fn setup(version: &str) -> (Arc<Double>, Arc<dyn Channel>) {
    let d = Double::new(WxSignType::HmacSha256);
    let addr = serve(router(d.clone())).await;
    let creds = match version {
        "v2" => json!({"appId": APP_ID, "apiKey": API_KEY, "signType": "HMAC-SHA256"}),
        _ => crate::v3::creds(),
    };
    let ch = build_channel(
        ChannelType::WxPay,
        version,
        MCH_ID,
        &creds,
        Some(&format!("http://{addr}/wx")),
        &env(),
    )
    .unwrap();
    (d, ch)
}

fn pay_request(scene: SceneCode, store: StoreMerchant) -> PayRequest {
    PayRequest {
        order_id: OrderId::generate(),
        amount: Fen::from_stored(100),
        scene,
        description: "门店消费".into(),
        payer_id: Some(OPENID.into()),
        payer_app_id: None,
        client_ip: Some("203.0.113.7".into()),
        expire_at: Some(chrono::Utc::now() + chrono::Duration::minutes(30)),
        attach: Some("cashdesk-store:S1".into()),
        return_url: None,
        store: Some(store),
    }
}

fn sent_xml(d: &Double) -> BTreeMap<String, String> {
    cashdesk_channels::xml::parse_flat(&d.last().body).unwrap()
}

fn sent_json(d: &Double) -> Value {
    serde_json::from_slice(&d.last().body).unwrap()
}

#[tokio::test]
async fn v2_partner_requests_carry_the_sub_merchant() {
    let (d, ch) = setup("v2").await;
    // The store's own AppID: the payer is a sub_openid, requestPayment's
    // appId is the sub-merchant's, signed with the service provider's key.
    let req = pay_request(SceneCode::Mini, store(Some(SUB_APP_ID)));
    let resp = ch.create_payment(&req).await.unwrap();
    let sent = sent_xml(&d);
    assert_eq!(
        (
            sent["mch_id"].as_str(),
            sent["appid"].as_str(),
            sent["sub_mch_id"].as_str(),
            sent["sub_appid"].as_str(),
            sent["sub_openid"].as_str(),
        ),
        (MCH_ID, APP_ID, SUB_MCH_ID, SUB_APP_ID, OPENID)
    );
    assert!(!sent.contains_key("openid"));
    assert!(wxv2::verify(&sent, API_KEY, WxSignType::HmacSha256));
    let pd = &resp.pay_data.to_json();
    assert_eq!(pd["appId"], SUB_APP_ID);
    assert_eq!(
        pd["paySign"],
        wxv2::request_payment_sign(
            SUB_APP_ID,
            pd["timeStamp"].as_str().unwrap(),
            pd["nonceStr"].as_str().unwrap(),
            pd["package"].as_str().unwrap(),
            WxSignType::HmacSha256,
            API_KEY,
        )
    );

    // Without its own AppID the openid is the service provider's.
    ch.create_payment(&pay_request(SceneCode::Jsapi, store(None)))
        .await
        .unwrap();
    let sent = sent_xml(&d);
    assert_eq!(sent["openid"], OPENID);
    assert!(!sent.contains_key("sub_openid") && !sent.contains_key("sub_appid"));

    // App: the sub-merchant's AppID and mch_id in PayReq.
    let resp = ch
        .create_payment(&pay_request(SceneCode::App, store(Some(SUB_APP_ID))))
        .await
        .unwrap();
    assert_eq!(
        (
            resp.pay_data.to_json()["appid"].as_str(),
            resp.pay_data.to_json()["partnerid"].as_str()
        ),
        (Some(SUB_APP_ID), Some(SUB_MCH_ID))
    );

    // Query, close and refund query name the sub-merchant too.
    *d.trade_state.lock().unwrap() = "SUCCESS".into();
    let st = ch
        .query(&QueryRequest {
            order_id: req.order_id.clone(),
            amount: req.amount,
            store: req.store.clone(),
        })
        .await
        .unwrap();
    assert!(matches!(st, ChannelOrderStatus::Paid(_)), "{st:?}");
    assert_eq!(sent_xml(&d)["sub_mch_id"], SUB_MCH_ID);
    ch.close(&CloseRequest {
        order_id: req.order_id.clone(),
        store: req.store.clone(),
    })
    .await
    .unwrap();
    assert_eq!(d.last().path_and_query, "/wx/pay/closeorder");
    assert_eq!(sent_xml(&d)["sub_mch_id"], SUB_MCH_ID);
    ch.query_refund(&RefundQueryRequest {
        order_id: req.order_id.clone(),
        refund_id: RefundId::generate(),
        store: req.store.clone(),
    })
    .await
    .unwrap();
    assert_eq!(sent_xml(&d)["sub_mch_id"], SUB_MCH_ID);

    // An answer for another sub-merchant is not trusted.
    *d.wrong_sub_mch.lock().unwrap() = true;
    let e = ch
        .create_payment(&pay_request(SceneCode::Native, store(None)))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ChannelErrorKind::BadResponse, "{e}");
}

#[tokio::test]
async fn v3_partner_orders_use_the_partner_endpoints() {
    let (d, ch) = setup("v3").await;
    let req = pay_request(SceneCode::Mini, store(Some(SUB_APP_ID)));
    let resp = ch.create_payment(&req).await.unwrap();
    assert_eq!(
        d.last().path_and_query,
        "/wx/v3/pay/partner/transactions/jsapi"
    );
    let body = sent_json(&d);
    assert_eq!(
        (
            body["sp_appid"].as_str(),
            body["sp_mchid"].as_str(),
            body["sub_appid"].as_str(),
            body["sub_mchid"].as_str(),
            body["payer"]["sub_openid"].as_str(),
            body["attach"].as_str(),
        ),
        (
            Some(APP_ID),
            Some(MCH_ID),
            Some(SUB_APP_ID),
            Some(SUB_MCH_ID),
            Some(OPENID),
            Some("cashdesk-store:S1")
        )
    );
    assert!(body.get("appid").is_none() && body.get("mchid").is_none());
    assert!(body["payer"].get("sp_openid").is_none());
    // requestPayment: the sub-merchant's appId, signed by the service
    // provider's merchant key.
    let pd = &resp.pay_data.to_json();
    assert_eq!(pd["appId"], SUB_APP_ID);
    let msg = format!(
        "{SUB_APP_ID}\n{}\n{}\n{}\n",
        pd["timeStamp"].as_str().unwrap(),
        pd["nonceStr"].as_str().unwrap(),
        pd["package"].as_str().unwrap()
    );
    keys()
        .merchant
        .public_key()
        .verify_sha256_base64(msg.as_bytes(), pd["paySign"].as_str().unwrap())
        .unwrap();

    // Without the store's AppID: payer.sp_openid, no sub_appid.
    ch.create_payment(&pay_request(SceneCode::Jsapi, store(None)))
        .await
        .unwrap();
    let body = sent_json(&d);
    assert_eq!(body["payer"]["sp_openid"], OPENID);
    assert!(body.get("sub_appid").is_none());
    for (scene, kind) in [(SceneCode::Native, "native"), (SceneCode::H5, "h5")] {
        ch.create_payment(&pay_request(scene, store(None)))
            .await
            .unwrap();
        assert_eq!(
            d.last().path_and_query,
            format!("/wx/v3/pay/partner/transactions/{kind}")
        );
    }

    // Query and close at the partner endpoints.
    *d.trade_state.lock().unwrap() = "SUCCESS".into();
    let q = QueryRequest {
        order_id: req.order_id.clone(),
        amount: req.amount,
        store: req.store.clone(),
    };
    assert!(matches!(
        ch.query(&q).await.unwrap(),
        ChannelOrderStatus::Paid(_)
    ));
    assert_eq!(
        d.last().path_and_query,
        format!(
            "/wx/v3/pay/partner/transactions/out-trade-no/{}?sp_mchid={MCH_ID}&sub_mchid={SUB_MCH_ID}",
            req.order_id
        )
    );
    ch.close(&CloseRequest {
        order_id: req.order_id.clone(),
        store: req.store.clone(),
    })
    .await
    .unwrap();
    assert_eq!(
        sent_json(&d),
        json!({"sp_mchid": MCH_ID, "sub_mchid": SUB_MCH_ID})
    );

    // Refunds name the sub-merchant.
    let refund_id = RefundId::generate();
    ch.refund(&RefundRequest {
        order_id: req.order_id.clone(),
        refund_id: refund_id.clone(),
        order_amount: Fen::from_stored(100),
        refund_amount: Fen::from_stored(30),
        reason: None,
        store: req.store.clone(),
    })
    .await
    .unwrap();
    assert_eq!(sent_json(&d)["sub_mchid"], SUB_MCH_ID);
    ch.query_refund(&RefundQueryRequest {
        order_id: req.order_id.clone(),
        refund_id: refund_id.clone(),
        store: req.store.clone(),
    })
    .await
    .unwrap();
    assert_eq!(
        d.last().path_and_query,
        format!("/wx/v3/refund/domestic/refunds/{refund_id}?sub_mchid={SUB_MCH_ID}")
    );

    // A query answer for another sub-merchant is not trusted.
    *d.wrong_sub_mch.lock().unwrap() = true;
    assert_eq!(
        ch.query(&q).await.unwrap_err().kind(),
        ChannelErrorKind::BadResponse
    );
}

#[test]
fn v2_partner_notifications_are_checked_against_the_store() {
    let ch = build_channel(
        ChannelType::WxPay,
        "v2",
        MCH_ID,
        &json!({"appId": APP_ID, "apiKey": API_KEY, "signType": "MD5"}),
        None,
        &env(),
    )
    .unwrap();
    let order = OrderId::generate();
    let mut f: BTreeMap<String, String> = [
        ("appid", APP_ID),
        ("mch_id", MCH_ID),
        ("sub_appid", SUB_APP_ID),
        ("sub_mch_id", SUB_MCH_ID),
        ("nonce_str", "5d2b6c2a8db53831f7eda20af46e531c"),
        ("openid", "oSp000"),
        ("sub_openid", OPENID),
        ("out_trade_no", order.as_str()),
        ("result_code", "SUCCESS"),
        ("return_code", "SUCCESS"),
        ("time_end", "20240102110405"),
        ("total_fee", "100"),
        ("trade_type", "JSAPI"),
        ("attach", "cashdesk-store:S1"),
        ("transaction_id", "4200000001202401021234567890"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    v2_sign(&mut f, API_KEY, WxSignType::Md5);
    let n = ch
        .parse_notification(&IncomingNotification {
            method: "POST".into(),
            headers: vec![],
            query: None,
            body: cashdesk_channels::xml::to_xml(&f).into_bytes(),
        })
        .unwrap();
    let VerifiedNotification::Payment(p) = &n else {
        panic!("{n:?}")
    };
    assert_eq!(p.attach.as_deref(), Some("cashdesk-store:S1"));
    ch.check_merchant(&p.merchant, Some(&store(Some(SUB_APP_ID))))
        .unwrap();
    ch.check_merchant(&p.merchant, Some(&store(None))).unwrap();
    let other = StoreMerchant::new("S2", json!({"subMchId": "1900000299"}));
    let wrong_app = StoreMerchant::new(
        "S1",
        json!({"subMchId": SUB_MCH_ID, "subAppId": "wx7777777777777777"}),
    );
    for wrong in [Some(&other), Some(&wrong_app), None] {
        assert_eq!(
            ch.check_merchant(&p.merchant, wrong).unwrap_err().kind,
            NotifyErrorKind::Mismatch,
            "{wrong:?}"
        );
    }
    // A direct (non-partner) notification is not a store's.
    let direct = NotifiedMerchant::default();
    ch.check_merchant(&direct, None).unwrap();
    assert_eq!(
        ch.check_merchant(&direct, Some(&store(None)))
            .unwrap_err()
            .kind,
        NotifyErrorKind::Mismatch
    );
}

#[test]
fn v3_partner_notifications_are_checked_against_the_store() {
    let ch = build_channel(
        ChannelType::WxPay,
        "v3",
        MCH_ID,
        &crate::v3::creds(),
        None,
        &env(),
    )
    .unwrap();
    let order = OrderId::generate();
    let resource = json!({
        "sp_appid": APP_ID, "sp_mchid": MCH_ID, "sub_appid": SUB_APP_ID, "sub_mchid": SUB_MCH_ID,
        "out_trade_no": order.as_str(), "transaction_id": "4200000001202401021234567890",
        "trade_type": "JSAPI", "trade_state": "SUCCESS", "trade_state_desc": "支付成功",
        "success_time": "2024-01-02T11:04:05+08:00", "attach": "cashdesk-store:S1",
        "payer": {"sp_openid": "oSp000", "sub_openid": OPENID},
        "amount": {"total": 100, "payer_total": 100, "currency": "CNY", "payer_currency": "CNY"},
    });
    let notification = |resource: &Value, event: &str| {
        let nonce = "fdasflkja484";
        let ct = aes_gcm_encrypt(
            API_V3_KEY.as_bytes(),
            nonce.as_bytes(),
            b"transaction",
            resource.to_string().as_bytes(),
        )
        .unwrap();
        let body = json!({
            "id": "EV-1", "create_time": "2024-01-02T11:04:06+08:00",
            "resource_type": "encrypt-resource", "event_type": event, "summary": "支付成功",
            "resource": {"original_type": "transaction", "algorithm": "AEAD_AES_256_GCM",
                         "ciphertext": b64(&ct), "associated_data": "transaction", "nonce": nonce},
        })
        .to_string();
        IncomingNotification {
            method: "POST".into(),
            headers: v3_sign_headers(
                body.as_bytes(),
                chrono::Utc::now().timestamp(),
                PLATFORM_SERIAL,
                &keys().platform,
            ),
            query: None,
            body: body.into_bytes(),
        }
    };
    let n = ch
        .parse_notification(&notification(&resource, "TRANSACTION.SUCCESS"))
        .unwrap();
    let VerifiedNotification::Payment(p) = &n else {
        panic!("{n:?}")
    };
    assert!(matches!(p.result, PaymentResult::Paid(_)));
    ch.check_merchant(&p.merchant, Some(&store(Some(SUB_APP_ID))))
        .unwrap();
    assert_eq!(
        ch.check_merchant(&p.merchant, None).unwrap_err().kind,
        NotifyErrorKind::Mismatch
    );
    // Another service provider's partner order is not this config's.
    let mut foreign = resource.clone();
    foreign["sp_mchid"] = json!("1900000999");
    assert_eq!(
        ch.parse_notification(&notification(&foreign, "TRANSACTION.SUCCESS"))
            .unwrap_err()
            .kind,
        NotifyErrorKind::Mismatch
    );
    // Partner refund resources name sp_mchid and sub_mchid.
    let refund = json!({
        "sp_mchid": MCH_ID, "sub_mchid": SUB_MCH_ID, "out_trade_no": order.as_str(),
        "transaction_id": "4200000001202401021234567890", "out_refund_no": RefundId::generate().as_str(),
        "refund_id": "50000000382019052709732678859", "refund_status": "SUCCESS",
        "success_time": "2024-01-02T11:05:00+08:00",
        "amount": {"total": 100, "refund": 30, "payer_total": 100, "payer_refund": 30},
    });
    let n = ch
        .parse_notification(&notification(&refund, "REFUND.SUCCESS"))
        .unwrap();
    let VerifiedNotification::Refund(r) = &n else {
        panic!("{n:?}")
    };
    ch.check_merchant(&r.merchant, Some(&store(None))).unwrap();
    let other = StoreMerchant::new("S2", json!({"subMchId": "1900000299"}));
    assert_eq!(
        ch.check_merchant(&r.merchant, Some(&other))
            .unwrap_err()
            .kind,
        NotifyErrorKind::Mismatch
    );
}

#[test]
fn sub_merchant_identities_are_validated() {
    let ok = validate_store_identity(
        ChannelType::WxPay,
        "v3",
        &json!({"subMchId": "1900000201", "subAppId": "wx8888888888888888"}),
    )
    .unwrap();
    assert_eq!(ok.mch_id.as_deref(), Some("1900000201"));
    assert!(ok.secret_fields.is_empty());
    assert!(
        validate_store_identity(ChannelType::WxPay, "v2", &json!({"subMchId": "1900000201"}))
            .is_ok()
    );
    for (bad, field) in [
        (json!({}), "subMchId"),
        (json!({"subMchId": "19x"}), "subMchId"),
        (json!({"subMchId": ""}), "subMchId"),
        (
            json!({"subMchId": "1900000201", "subAppId": "wx 1"}),
            "subAppId",
        ),
        (
            json!({"subMchId": "1900000201", "submchid": "1"}),
            "submchid",
        ),
        (json!("1900000201"), "object"),
    ] {
        let e = validate_store_identity(ChannelType::WxPay, "v3", &bad).unwrap_err();
        assert!(e.contains(field), "{bad}: {e}");
    }
    assert!(validate_store_identity(ChannelType::WxPay, "v4", &json!({"subMchId": "1"})).is_err());
}
