//! Reconciliation by queries, end to end against the mounted sandbox's
//! Lakala: the sandbox's clock is moved back a day so its trades are
//! "yesterday" (the gateway reconciles only days that are over in China),
//! then `POST /api/admin/reconciliations/run` for that day asks Lakala about
//! each of cashdesk's trades. A paid and refunded day agrees; a payment
//! whose notification was dropped (the order still `PAYING`: the poller's
//! first query is an hour away) is found, recorded through the normal paid
//! path and notified once, and a rerun changes nothing; a question the
//! channel does not answer fails the run with nothing recorded or repaired.

use std::time::Duration;

use cashdesk_sdk::{
    CreateRefundRequest, FindingQuery, NotificationQuery, ReconRunRequest, StatementQuery,
};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Backend, ChannelSetup, TestApp, order, orn, otn, spawn_app_with};
use crate::receiver::Receiver;

backend_tests!(
    a_paid_and_refunded_day_agrees,
    a_payment_whose_notification_was_dropped_is_repaired_once,
    an_unanswered_question_fails_the_run_and_changes_nothing,
);

const WAIT: Duration = Duration::from_secs(10);

/// The poller must not settle a `PAYING` order before the reconciliation
/// does: its first query is an hour after the order's last change.
fn quiet_poller(c: &mut cashdesk_server::Config) {
    c.query_schedule = Some("1h".into());
}

struct Day {
    app: TestApp,
    setup: ChannelSetup,
    receiver: Receiver,
}

async fn day(b: Backend) -> Day {
    let app = spawn_app_with(b, quiet_poller).await;
    let receiver = Receiver::start().await;
    let setup = app.lakala_setup().await;
    receiver.trust(&setup.shop.app_id, &setup.shop.credentials);
    // Trades made now are yesterday's at the channel.
    let (status, v) = app
        .sandbox_post("/sandbox/api/clock", json!({"offsetSeconds": -86_400}))
        .await;
    assert_eq!(status, 200, "{v}");
    Day {
        app,
        setup,
        receiver,
    }
}

/// Yesterday in China, the sandbox's day of the trades.
fn yesterday() -> String {
    let china = chrono::Utc::now() + chrono::Duration::hours(8);
    (china.date_naive() - chrono::Duration::days(1)).to_string()
}

impl Day {
    /// An order notifying the receiver, sent to Lakala (native), `PAYING`.
    async fn paying(&self, amount: i64) -> (String, String) {
        let no = otn();
        let mut req = order(&no, amount);
        req.notify_url = Some(self.receiver.url("/notify"));
        let id = self
            .setup
            .shop
            .client
            .create_order(&req)
            .await
            .expect("order")
            .order_id;
        self.app
            .pay_json(
                &self.setup.shop.client,
                json!({"outTradeNo": no, "channelId": self.setup.channel("native")}),
            )
            .await
            .expect("pay");
        (no, id)
    }

    /// The buyer pays at the sandbox.
    async fn buyer_pays(&self, order_id: &str) {
        self.app
            .sandbox_pay_with(
                json!({"channelType": "lakala", "outTradeNo": order_id, "result": "SUCCESS"}),
            )
            .await;
    }

    async fn state(&self, no: &str) -> String {
        let q = self
            .setup
            .shop
            .client
            .query_pay_result(no, false)
            .await
            .expect("query");
        serde_json::to_value(q.state)
            .expect("state")
            .as_str()
            .expect("string")
            .to_owned()
    }

    /// `POST /api/admin/reconciliations/run` for yesterday and this config.
    async fn reconcile(&self) -> Value {
        let runs = self
            .app
            .admin
            .run_reconciliation(&ReconRunRequest {
                date: yesterday(),
                config_id: Some(self.setup.config_id.clone()),
                refetch: None,
            })
            .await
            .expect("run");
        let runs = runs.as_array().cloned().unwrap_or_default();
        assert_eq!(runs.len(), 1, "{runs:?}");
        runs[0].clone()
    }

    async fn findings(&self) -> Vec<Value> {
        self.app
            .admin
            .list_findings(&FindingQuery {
                date: Some(yesterday()),
                config_id: Some(self.setup.config_id.clone()),
                ..FindingQuery::default()
            })
            .await
            .expect("findings")
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The notification rows of an order's `notify_type`.
    async fn notifications(&self, order_id: &str, notify_type: &str) -> usize {
        self.app
            .admin
            .list_notifications(&NotificationQuery {
                order_id: Some(order_id.to_owned()),
                ..NotificationQuery::default()
            })
            .await
            .expect("notifications")
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter(|n| n["notifyType"] == notify_type)
            .count()
    }
}

async fn a_paid_and_refunded_day_agrees(b: Backend) {
    let d = day(b).await;
    let (no, id) = d.paying(100).await;
    d.buyer_pays(&id).await;
    d.app.wait_state(&d.setup.shop.client, &no, "SUCCESS").await;
    let r = d
        .setup
        .shop
        .client
        .create_refund(&CreateRefundRequest::new(&no, orn(), 30))
        .await
        .expect("refund");
    assert_eq!(serde_json::to_value(r.state).unwrap(), "SUCCESS");
    // Sent to Lakala and never paid: nothing to reconcile.
    let (open_no, _) = d.paying(7).await;

    let run = d.reconcile().await;
    assert_eq!(run["state"], "DONE", "{run}");
    assert_eq!(run["bills"], json!([]));
    assert_eq!(
        (&run["lines"], &run["matched"]),
        (&json!(2), &json!(2)),
        "{run}"
    );
    assert_eq!(
        (&run["paidTotal"], &run["refundTotal"]),
        (&json!(100), &json!(30))
    );
    let message = run["message"].as_str().expect("message");
    assert!(
        message.contains("serves no bill file") && message.contains("1 paid orders"),
        "{message}"
    );
    assert_eq!(d.findings().await, Vec::<Value>::new());
    assert_eq!(d.state(&open_no).await, "PAYING");
    // The daily statement books what Lakala confirmed on the shop.
    let st = d
        .app
        .admin
        .reconciliation_statement(&StatementQuery {
            date: Some(yesterday()),
            config_id: Some(d.setup.config_id.clone()),
            ..StatementQuery::default()
        })
        .await
        .expect("statement");
    let rows = st.as_array().expect("rows");
    assert_eq!(rows.len(), 1, "{st}");
    let r = &rows[0];
    assert_eq!(r["appId"], d.setup.shop.app_id.as_str());
    assert_eq!(r["channelType"], "lakala", "{r}");
    assert_eq!(
        (
            &r["payments"],
            &r["grossFen"],
            &r["refunds"],
            &r["refundedFen"]
        ),
        (&json!(1), &json!(100), &json!(1), &json!(30)),
        "{r}"
    );
    assert_eq!(
        (&r["feesFen"], &r["netFen"]),
        (&json!(0), &json!(70)),
        "{r}"
    );
}

async fn a_payment_whose_notification_was_dropped_is_repaired_once(b: Backend) {
    let d = day(b).await;
    let (no, id) = d.paying(250).await;
    d.app
        .add_fault(
            json!({"channelType": "lakala", "fault": "DROP_NOTIFY", "mchId": d.setup.mch_id()}),
        )
        .await;
    d.buyer_pays(&id).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(d.state(&no).await, "PAYING", "the notification was dropped");
    assert_eq!(d.notifications(&id, "PAY_SUCCESS").await, 0);

    let run = d.reconcile().await;
    assert_eq!(run["state"], "DONE", "{run}");
    assert_eq!(
        (&run["lines"], &run["matched"], &run["paidTotal"]),
        (&json!(1), &json!(1), &json!(250)),
        "{run}"
    );
    let findings = d.findings().await;
    assert_eq!(findings.len(), 1, "{findings:?}");
    let f = &findings[0];
    assert_eq!(
        (&f["kind"], &f["status"], &f["orderId"]),
        (&json!("CHANNEL_ONLY"), &json!("REPAIRED"), &json!(id)),
        "{f}"
    );
    assert_eq!(
        (&f["channelAmount"], &f["localAmount"]),
        (&json!(250), &json!(250))
    );
    assert_eq!(f["evidence"]["local"]["state"], "PAYING", "{f}");
    assert_eq!(f["evidence"]["query"]["state"], "PAID", "{f}");
    assert_eq!(d.state(&no).await, "SUCCESS");
    assert!(
        d.receiver
            .wait(WAIT, |r| r.acked_for(&id, "PAY_SUCCESS").len() == 1)
            .await,
        "the merchant is told"
    );
    assert_eq!(
        d.app
            .metric_settled(
                "cashdesk_orders_paid_total",
                &[("source", "reconciliation")],
                1.0
            )
            .await,
        1.0
    );

    // A rerun: the order is now paid on that day and matches; the repair
    // stays recorded; nobody is told twice.
    let again = d.reconcile().await;
    assert_eq!(again["state"], "DONE", "{again}");
    assert_eq!(again["attempts"], 2);
    for k in ["lines", "matched", "paidTotal", "refundTotal"] {
        assert_eq!(again[k], run[k], "{k}");
    }
    assert_eq!(d.findings().await, findings);
    assert_eq!(d.notifications(&id, "PAY_SUCCESS").await, 1);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(d.receiver.acked_for(&id, "PAY_SUCCESS").len(), 1);
    assert!(d.receiver.unverified().is_empty());
}

async fn an_unanswered_question_fails_the_run_and_changes_nothing(b: Backend) {
    let d = day(b).await;
    let (no, id) = d.paying(80).await;
    d.app
        .add_fault(
            json!({"channelType": "lakala", "fault": "DROP_NOTIFY", "mchId": d.setup.mch_id()}),
        )
        .await;
    d.buyer_pays(&id).await;
    d.app
        .add_fault(json!({"channelType": "lakala", "fault": "SYSTEMERROR", "mchId": d.setup.mch_id(), "pathContains": "tradequery"}))
        .await;

    let run = d.reconcile().await;
    assert_eq!(run["state"], "FAILED", "{run}");
    assert!(run["nextTryAt"].is_string(), "retried later: {run}");
    let message = run["message"].as_str().expect("message");
    assert!(
        message.contains(&format!("order {id}")) && message.contains("BBS10000"),
        "{message}"
    );
    assert_eq!(d.findings().await, Vec::<Value>::new());
    assert_eq!(d.state(&no).await, "PAYING", "nothing repaired");
    assert!(
        d.app
            .metric(
                "cashdesk_recon_bill_fetch_failures_total",
                &[("reason", "query")]
            )
            .await
            >= 1.0
    );

    // The channel answers again: the next run does the day.
    let run = d.reconcile().await;
    assert_eq!(run["state"], "DONE", "{run}");
    assert!(run["nextTryAt"].is_null());
    let kinds: Vec<Value> = d
        .findings()
        .await
        .iter()
        .map(|f| f["kind"].clone())
        .collect();
    assert_eq!(kinds, [json!("CHANNEL_ONLY")]);
    assert_eq!(d.state(&no).await, "SUCCESS");
}
