//! The channel seam seen from the merchant API: a refusal the server acts
//! on is recognised by the kind each adapter gives it, whatever the
//! channel's own code (WeChat `ORDERPAID`, Alipay `ACQ.TRADE_HAS_SUCCESS`,
//! Lakala `BBS11004`), every channel's QR `payData` gets its `qrSvgUrl`,
//! and a config's view shows what its channel can do, as the channel's
//! adapter declares it.

use serde_json::json;

use crate::backend_tests;
use crate::helpers::{Backend, assert_api_error, spawn_app};

backend_tests!(paying_again_an_order_the_channel_already_took_records_the_payment);

fn state(v: impl serde::Serialize) -> String {
    serde_json::to_value(v)
        .expect("state")
        .as_str()
        .expect("string")
        .to_owned()
}

/// The buyer paid at the channel but its notification never came; the
/// order is asked for again with the same channel. The channel answers
/// "already paid" in its own words: cashdesk queries it, records the
/// payment and answers 4220 (the order is paid), on every channel.
async fn paying_again_an_order_the_channel_already_took_records_the_payment(b: Backend) {
    let app = spawn_app(b).await;
    let wx2 = app.wechat_setup("v2").await;
    let wx3 = app.wechat_setup("v3").await;
    let ali = app.alipay_setup(false).await;
    let lkl = app.lakala_setup().await;
    for (config_id, scenes, refunds, oauth) in [
        (
            &wx2.config_id,
            json!(["mini", "jsapi", "native", "h5", "app"]),
            "ASYNC",
            json!("wechat"),
        ),
        (
            &ali.config_id,
            json!(["mini", "wap", "page", "qr", "app"]),
            "SYNC",
            json!(null),
        ),
        (
            &lkl.config_id,
            json!(["mini", "jsapi", "native", "h5"]),
            "ASYNC",
            json!(null),
        ),
    ] {
        let view = app
            .admin
            .get_channel_config(config_id)
            .await
            .expect("config");
        assert_eq!(
            view["capabilities"],
            json!({"scenes": scenes, "refunds": refunds, "payerOAuth": oauth}),
            "{view}"
        );
    }
    let cases = [
        (
            "wx-pay",
            wx2.mch_id(),
            &wx2.shop,
            wx2.channels["native"].as_str(),
            "codeUrl",
        ),
        (
            "wx-pay",
            wx3.mch_id(),
            &wx3.shop,
            wx3.channels["native"].as_str(),
            "codeUrl",
        ),
        (
            "ali-pay",
            ali.mch_id(),
            &ali.shop,
            ali.channel("qr"),
            "qrCode",
        ),
        (
            "lakala",
            lkl.mch_id(),
            &lkl.shop,
            lkl.channel("native"),
            "codeUrl",
        ),
    ];
    for (channel_type, mch_id, shop, channel_id, qr_key) in cases {
        let client = &shop.client;
        let (no, order_id) = app.new_order(client, 42).await;
        let body = json!({"outTradeNo": no, "channelId": channel_id});
        let paid = app.pay_json(client, body.clone()).await.expect("pay");
        // The QR shape of this channel, with cashdesk's SVG of it.
        let pay_data = &paid["payData"];
        assert!(pay_data[qr_key].is_string(), "{channel_type}: {paid}");
        assert!(
            pay_data["qrSvgUrl"]
                .as_str()
                .is_some_and(|u| u.contains("/cashier-desk-web/qr/")),
            "{channel_type}: {paid}"
        );
        assert_eq!(
            pay_data.as_object().map(|o| o.len()),
            Some(2),
            "{channel_type}: {paid}"
        );

        app.add_fault(
            json!({"channelType": channel_type, "fault": "DROP_NOTIFY", "mchId": mch_id}),
        )
        .await;
        let at_channel = app
            .sandbox_pay_with(
                json!({"channelType": channel_type, "outTradeNo": order_id, "result": "SUCCESS"}),
            )
            .await;
        let q = client.query_pay_result(&no, false).await.expect("q");
        assert_eq!(
            state(q.state),
            "PAYING",
            "{channel_type}: nothing heard yet"
        );

        assert_api_error(app.pay_json(client, body).await, 422, 4220);
        let q = client.query_pay_result(&no, false).await.expect("q");
        assert_eq!(state(q.state), "SUCCESS", "{channel_type}: recorded");
        assert_eq!(
            q.transaction_id.as_deref(),
            at_channel["transactionId"].as_str(),
            "{channel_type}"
        );
    }
}
