//! Reconciliation end to end against the sandbox's bills: a day with each
//! injected fault produces exactly the expected findings, the payment whose
//! notification was dropped is repaired and notified once, a rerun changes
//! nothing, an operator's resolution survives a rerun.
//!
//! The sandbox's clock is moved a day back while the orders are paid, so
//! they are yesterday's (bills exist for past days only), then moved back.

use std::collections::BTreeMap;
use std::time::Duration;

use cashdesk_sdk::{
    CreateRefundRequest, FindingQuery, NotificationQuery, PaymentRequest, ReconRunQuery,
    ReconRunRequest, StatementQuery,
};
use chrono::{Duration as Days, FixedOffset, Utc};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, WxSetup, order, orn, otn, spawn_app};
use crate::receiver::Receiver;
use crate::refunds::wait_refund;

backend_tests!(
    a_wechat_v3_day_with_every_fault,
    a_wechat_v2_day_matches,
    an_alipay_day_matches_and_finds_a_difference,
    bad_runs_are_refused,
);

/// Yesterday in China, `YYYY-MM-DD`.
fn yesterday() -> String {
    let cst = FixedOffset::east_opt(8 * 3600).expect("offset");
    (Utc::now().with_timezone(&cst).date_naive() - Days::days(1)).to_string()
}

async fn set_clock(app: &TestApp, offset_seconds: i64) {
    let (status, v) = app
        .sandbox_post(
            "/sandbox/api/clock",
            json!({"offsetSeconds": offset_seconds}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
}

/// Creates and pays a native order of `amount`; returns (outTradeNo, orderId).
async fn paid_order(
    app: &TestApp,
    setup: &WxSetup,
    receiver: &Receiver,
    amount: i64,
    notified: bool,
) -> (String, String) {
    let client = &setup.shop.client;
    let no = otn();
    let mut req = order(&no, amount);
    req.notify_url = Some(receiver.url("/shop/notify"));
    let order_id = client.create_order(&req).await.expect("order").order_id;
    client
        .pay(&PaymentRequest::new(&no, setup.channel("native")))
        .await
        .expect("pay");
    if !notified {
        app.add_fault(
            json!({"channelType": "wx-pay", "fault": "DROP_NOTIFY", "mchId": setup.mch_id()}),
        )
        .await;
    }
    app.sandbox_pay(&order_id).await;
    if notified {
        app.wait_state(client, &no, "SUCCESS").await;
    } else {
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    (no, order_id)
}

async fn run(app: &TestApp, config_id: &str, refetch: bool) -> Value {
    let runs = app
        .admin
        .run_reconciliation(&ReconRunRequest {
            date: yesterday(),
            config_id: Some(config_id.to_owned()),
            refetch: refetch.then_some(true),
        })
        .await
        .expect("run");
    runs[0].clone()
}

/// The findings of (config, yesterday): (kind, status) → subjects.
async fn findings(
    app: &TestApp,
    config_id: &str,
) -> (Vec<Value>, BTreeMap<(String, String), usize>) {
    let list = app
        .admin
        .list_findings(&FindingQuery {
            date: Some(yesterday()),
            config_id: Some(config_id.to_owned()),
            ..Default::default()
        })
        .await
        .expect("findings");
    let list = list.as_array().cloned().expect("array");
    let mut by = BTreeMap::new();
    for f in &list {
        *by.entry((
            f["kind"].as_str().expect("kind").to_owned(),
            f["status"].as_str().expect("status").to_owned(),
        ))
        .or_insert(0) += 1;
    }
    (list, by)
}

fn key(kind: &str, status: &str) -> (String, String) {
    (kind.to_owned(), status.to_owned())
}

async fn pay_success_notifications(app: &TestApp, order_id: &str) -> usize {
    let list = app
        .admin
        .list_notifications(&NotificationQuery {
            order_id: Some(order_id.to_owned()),
            ..Default::default()
        })
        .await
        .expect("notifications");
    list.as_array()
        .expect("array")
        .iter()
        .filter(|n| n["notifyType"] == "PAY_SUCCESS")
        .count()
}

async fn a_wechat_v3_day_with_every_fault(b: Backend) {
    let app = spawn_app(b).await;
    let setup = app.wechat_setup("v3").await;
    let client = &setup.shop.client;
    let receiver = Receiver::start().await;
    set_clock(&app, -86_400).await;
    let (_, plain) = paid_order(&app, &setup, &receiver, 100, true).await;
    let (refunded_no, _) = paid_order(&app, &setup, &receiver, 200, true).await;
    let out_refund_no = orn();
    client
        .create_refund(&CreateRefundRequest::new(
            &refunded_no,
            out_refund_no.clone(),
            50,
        ))
        .await
        .expect("refund");
    wait_refund(client, &out_refund_no, "SUCCESS").await;
    let (_, differs) = paid_order(&app, &setup, &receiver, 300, true).await;
    let (dropped_no, dropped) = paid_order(&app, &setup, &receiver, 400, false).await;
    set_clock(&app, 0).await;

    // The bill is still being generated: nothing is matched yet.
    app.add_fault(
        json!({"channelType": "wx-pay", "fault": "BILL_GENERATING", "mchId": setup.mch_id()}),
    )
    .await;
    let first = run(&app, &setup.config_id, false).await;
    assert_eq!(first["state"], "NOT_READY", "{first}");
    assert!(first["nextTryAt"].is_string(), "{first}");
    assert!(findings(&app, &setup.config_id).await.0.is_empty());

    for fault in [
        json!({"channelType": "wx-pay", "fault": "BILL_AMOUNT_DIFF", "mchId": setup.mch_id(), "outTradeNo": differs}),
        json!({"channelType": "wx-pay", "fault": "BILL_OMIT_REFUND", "mchId": setup.mch_id()}),
        json!({"channelType": "wx-pay", "fault": "BILL_EXTRA_TRADE", "mchId": setup.mch_id(), "amount": 999}),
    ] {
        app.add_fault(fault).await;
    }
    let done = run(&app, &setup.config_id, false).await;
    assert_eq!(done["state"], "DONE", "{done}");
    // 4 payments, 1 refund omitted, 1 extra trade.
    assert_eq!(done["lines"], 5, "{done}");
    let (list, by) = findings(&app, &setup.config_id).await;
    let expected: BTreeMap<_, _> = [
        (key("AMOUNT_MISMATCH", "OPEN"), 1),
        (key("REFUND_LOCAL_ONLY", "OPEN"), 1),
        (key("CHANNEL_ONLY", "OPEN"), 1),
        (key("CHANNEL_ONLY", "REPAIRED"), 1),
    ]
    .into_iter()
    .collect();
    assert_eq!(by, expected, "{list:#?}");
    let amount = list
        .iter()
        .find(|f| f["kind"] == "AMOUNT_MISMATCH")
        .expect("amount");
    assert_eq!(amount["orderId"], differs.as_str());
    assert_eq!(
        (
            amount["channelAmount"].as_i64(),
            amount["localAmount"].as_i64()
        ),
        (Some(301), Some(300))
    );
    let repaired = list
        .iter()
        .find(|f| f["status"] == "REPAIRED")
        .expect("repaired");
    assert_eq!(repaired["orderId"], dropped.as_str());
    assert!(
        list.iter().all(|f| f["orderId"] != plain.as_str()),
        "{list:#?}"
    );
    // The dropped payment is recorded and the merchant told, once.
    app.wait_state(client, &dropped_no, "SUCCESS").await;
    assert_eq!(pay_success_notifications(&app, &dropped).await, 1);
    assert!(
        app.metric_settled(
            "cashdesk_recon_open_findings",
            &[("kind", "AMOUNT_MISMATCH")],
            1.0
        )
        .await
            >= 1.0
    );

    // A rerun reads the kept bill and changes nothing.
    let again = run(&app, &setup.config_id, false).await;
    assert_eq!(again["state"], "DONE");
    let (list2, by2) = findings(&app, &setup.config_id).await;
    assert_eq!(by2, expected);
    let ids = |l: &[Value]| {
        let mut v: Vec<String> = l
            .iter()
            .map(|f| f["findingId"].as_str().expect("id").to_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(ids(&list), ids(&list2));
    assert_eq!(pay_success_notifications(&app, &dropped).await, 1);

    // An operator resolves the amount difference; a fresh download (the
    // faults are used up: a clean bill) keeps the resolution and the
    // repair, and drops what is no longer seen.
    let resolved = app
        .admin
        .resolve_finding(
            amount["findingId"].as_str().expect("id"),
            "the channel corrected it by phone",
        )
        .await
        .expect("resolve");
    assert_eq!(resolved["status"], "RESOLVED");
    let again_refused = app
        .admin
        .resolve_finding(amount["findingId"].as_str().expect("id"), "twice")
        .await;
    assert!(again_refused.is_err());
    let clean = run(&app, &setup.config_id, true).await;
    assert_eq!(clean["state"], "DONE", "{clean}");
    let (_, by3) = findings(&app, &setup.config_id).await;
    let expected3: BTreeMap<_, _> = [
        (key("AMOUNT_MISMATCH", "RESOLVED"), 1),
        (key("CHANNEL_ONLY", "REPAIRED"), 1),
    ]
    .into_iter()
    .collect();
    assert_eq!(by3, expected3);
    // The channel's fee on each trade, as the bill states it.
    let fee = &app.admin.get_order(&plain).await.expect("order")["channelFee"];
    assert_eq!(fee["rate"], "0.60%", "{fee}");
    assert_eq!(fee["feeFen"], 1, "{fee}");
    assert_eq!(fee["billDate"], yesterday().as_str());

    // The day's statement: what the bill moved for the shop, in fen and yuan.
    let st = app
        .admin
        .reconciliation_statement(&StatementQuery {
            date: Some(yesterday()),
            config_id: Some(setup.config_id.clone()),
            ..Default::default()
        })
        .await
        .expect("statement");
    let rows = st.as_array().expect("rows");
    assert_eq!(rows.len(), 1, "{st}");
    let r = &rows[0];
    assert_eq!(r["appId"], setup.shop.app_id.as_str());
    assert_eq!(
        (r["payments"].as_i64(), r["grossFen"].as_i64()),
        (Some(4), Some(1000))
    );
    assert_eq!(
        (r["refunds"].as_i64(), r["refundedFen"].as_i64()),
        (Some(1), Some(50))
    );
    assert_eq!(r["gross"], "10.00");
    let fees = r["feesFen"].as_i64().expect("fees");
    assert!(fees > 0, "{r}");
    assert_eq!(r["netFen"].as_i64(), Some(1000 - 50 - fees));
    let csv = app
        .http()
        .get(format!(
            "{}/api/admin/reconciliations/statement?date={}&format=csv",
            app.base_url,
            yesterday()
        ))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .expect("csv");
    assert_eq!(csv.status(), 200);
    let text = csv.text().await.expect("text");
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("date,configId,channelType,appId"),
        "{text}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&setup.config_id) && l.contains(",1000,10.00,")),
        "{text}"
    );

    let audit = app.admin.list_audit(Some(20)).await.expect("audit");
    assert!(
        audit
            .as_array()
            .expect("array")
            .iter()
            .any(|e| e["action"] == "recon.finding.resolve"),
        "{audit}"
    );
    let runs = app
        .admin
        .list_reconciliations(&ReconRunQuery {
            date: Some(yesterday()),
            ..Default::default()
        })
        .await
        .expect("runs");
    assert_eq!(runs[0]["attempts"], 4, "{runs}");
}

async fn a_wechat_v2_day_matches(b: Backend) {
    let app = spawn_app(b).await;
    let setup = app.wechat_setup("v2").await;
    let receiver = Receiver::start().await;
    set_clock(&app, -86_400).await;
    paid_order(&app, &setup, &receiver, 100, true).await;
    paid_order(&app, &setup, &receiver, 250, true).await;
    set_clock(&app, 0).await;
    let done = run(&app, &setup.config_id, false).await;
    assert_eq!(done["state"], "DONE", "{done}");
    assert_eq!(
        (done["lines"].as_i64(), done["matched"].as_i64()),
        (Some(2), Some(2))
    );
    assert_eq!(done["paidTotal"], 350);
    assert!(findings(&app, &setup.config_id).await.0.is_empty());
    // The plain text is kept gzipped, with the SHA-1 of what was served.
    assert_eq!(done["bills"][0]["compression"], "gzip", "{done}");
    assert_eq!(
        done["bills"][0]["sha1"].as_str().map(str::len),
        Some(40),
        "{done}"
    );

    // A kept file that was damaged is refused whole, then fetched again.
    let path = app
        .config
        .data_dir
        .join(done["bills"][0]["path"].as_str().expect("path"));
    let mut bytes = std::fs::read(&path).expect("kept bill");
    let last = bytes.len() - 9;
    bytes[last] ^= 0xff;
    std::fs::write(&path, bytes).expect("damage it");
    let damaged = run(&app, &setup.config_id, false).await;
    assert_eq!(damaged["state"], "FAILED", "{damaged}");
    assert!(damaged["nextTryAt"].is_string(), "{damaged}");
    let again = run(&app, &setup.config_id, false).await;
    assert_eq!(again["state"], "DONE", "{again}");
    assert_eq!(again["matched"], 2);

    // A bill whose summary does not add up to its lines is itself a finding.
    app.add_fault(
        json!({"channelType": "wx-pay", "fault": "BILL_BAD_SUMMARY", "mchId": setup.mch_id()}),
    )
    .await;
    let bad = run(&app, &setup.config_id, true).await;
    assert_eq!(
        (bad["state"].as_str(), bad["matched"].as_i64()),
        (Some("DONE"), Some(2)),
        "{bad}"
    );
    let (list, by) = findings(&app, &setup.config_id).await;
    assert_eq!(
        by,
        [(key("SUMMARY_MISMATCH", "OPEN"), 1)].into_iter().collect(),
        "{list:#?}"
    );

    // Another config of the same app with no trade yesterday: an empty day.
    let other = app.wechat_setup("v2").await;
    let empty = run(&app, &other.config_id, false).await;
    assert_eq!(empty["state"], "DONE", "{empty}");
    assert_eq!(empty["lines"], 0);
}

async fn an_alipay_day_matches_and_finds_a_difference(b: Backend) {
    let app = spawn_app(b).await;
    let setup = app.alipay_setup(false).await;
    let client = &setup.shop.client;
    set_clock(&app, -86_400).await;
    let mut ids = Vec::new();
    for amount in [100, 300] {
        let (no, order_id) = app.new_order(client, amount).await;
        client
            .pay(&PaymentRequest::new(&no, setup.channel("qr")))
            .await
            .expect("pay");
        app.sandbox_pay_with(
            json!({"channelType": "ali-pay", "outTradeNo": order_id, "result": "SUCCESS"}),
        )
        .await;
        app.wait_state(client, &no, "SUCCESS").await;
        ids.push(order_id);
    }
    set_clock(&app, 0).await;
    app.add_fault(json!({"channelType": "ali-pay", "fault": "BILL_AMOUNT_DIFF", "mchId": setup.mch_id(), "outTradeNo": ids[1]}))
        .await;
    let done = run(&app, &setup.config_id, false).await;
    assert_eq!(done["state"], "DONE", "{done}");
    assert_eq!(done["bills"][0]["format"], "alipay-trade", "{done}");
    assert_eq!(
        (done["lines"].as_i64(), done["matched"].as_i64()),
        (Some(2), Some(1))
    );
    let (list, by) = findings(&app, &setup.config_id).await;
    assert_eq!(
        by,
        [(key("AMOUNT_MISMATCH", "OPEN"), 1)].into_iter().collect(),
        "{list:#?}"
    );
    assert_eq!(list[0]["orderId"], ids[1].as_str());
}

async fn bad_runs_are_refused(b: Backend) {
    let app = spawn_app(b).await;
    let setup = app.wechat_setup("v3").await;
    let cst = FixedOffset::east_opt(8 * 3600).expect("offset");
    let today = Utc::now().with_timezone(&cst).date_naive().to_string();
    for (date, config) in [
        (today.as_str(), Some(setup.config_id.clone())),
        ("2026-13-01", Some(setup.config_id.clone())),
        ("2026-12-01", Some("C01ARZ3NDEKTSV4RRFFQ69G5FAV".to_owned())),
    ] {
        let r = app
            .admin
            .run_reconciliation(&ReconRunRequest {
                date: date.to_owned(),
                config_id: config,
                refetch: None,
            })
            .await;
        assert!(r.is_err(), "{date}: {r:?}");
    }
    let runs = app
        .admin
        .list_reconciliations(&ReconRunQuery::default())
        .await
        .expect("runs");
    assert_eq!(runs.as_array().map(Vec::len), Some(0), "{runs}");
    let bad = app
        .admin
        .list_findings(&FindingQuery {
            kind: Some("NOT_A_KIND".into()),
            ..Default::default()
        })
        .await;
    assert!(bad.is_err());
}
