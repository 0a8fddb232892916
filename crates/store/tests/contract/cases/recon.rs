//! Reconciliation runs, findings and statements.

use cashdesk_core::{Fen, FindingKind, FindingStatus, ReconState};
use cashdesk_store::{
    AuditEntry, FindingFilter, NewFinding, ReconRunFilter, StatementFilter, StatementRow,
    StoredBill,
};
use chrono::NaiveDate;
use serde_json::json;

use super::{now, seed};
use crate::harness::TestDb;

fn finding(kind: FindingKind, subject: &str, status: FindingStatus) -> NewFinding {
    NewFinding {
        kind,
        subject: subject.to_owned(),
        status,
        order_id: Some("P1".into()),
        refund_id: None,
        channel_amount: Some(Fen::from_stored(101)),
        local_amount: Some(Fen::from_stored(100)),
        detail: format!("{subject} differs"),
        evidence: json!({"bill": {"amount": 101}}),
    }
}

pub async fn recon_runs_restart_and_finish(db: &TestDb) {
    let store = &db.store;
    let (_, config, _) = seed(store.as_ref()).await;
    let day = NaiveDate::from_ymd_opt(2026, 12, 6).unwrap();
    let mut run = store
        .start_recon_run(&config.config_id, day, now())
        .await
        .unwrap();
    assert_eq!((run.state, run.attempts), (ReconState::Running, 1));
    run.state = ReconState::Done;
    run.lines = 3;
    run.matched = 2;
    run.paid_total = Fen::from_stored(300);
    run.fee_total_e5 = -600;
    run.bills = vec![StoredBill {
        scope: String::new(),
        path: "bills/x.csv.gz".into(),
        format: "wechat-trade".into(),
        compression: "gzip".into(),
        sha1: Some("ab".repeat(20)),
        size: 42,
    }];
    run.finished_at = Some(now());
    store.finish_recon_run(&run).await.unwrap();
    let again = store
        .start_recon_run(&config.config_id, day, now())
        .await
        .unwrap();
    assert_eq!((again.state, again.attempts), (ReconState::Running, 2));
    assert_eq!(again.bills, run.bills, "a restart keeps the kept bills");
    assert_eq!(again.finished_at, None);
    let listed = store
        .list_recon_runs(&ReconRunFilter {
            bill_date: Some(day),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].fee_total_e5, -600);
}

pub async fn findings_keep_resolutions_across_reruns(db: &TestDb) {
    let store = &db.store;
    let (_, config, _) = seed(store.as_ref()).await;
    let c = &config.config_id;
    let day = NaiveDate::from_ymd_opt(2026, 12, 6).unwrap();
    use FindingKind::*;
    use FindingStatus::*;
    let first = [
        finding(AmountMismatch, "order:A", Open),
        finding(LocalOnly, "order:B", Open),
        finding(ChannelOnly, "order:C", Repaired),
        finding(LocalOnly, "order:D", Open),
    ];
    store
        .save_findings(c, day, "run1", &first, now())
        .await
        .unwrap();
    let all = |status: Option<FindingStatus>| {
        let store = store.clone();
        let c = c.clone();
        async move {
            let mut v: Vec<(String, FindingStatus)> = store
                .list_findings(&FindingFilter {
                    bill_date: Some(day),
                    config_id: Some(c),
                    status,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_iter()
                .map(|f| (f.subject, f.status))
                .collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v
        }
    };
    assert_eq!(all(None).await.len(), 4);
    let a = store
        .list_findings(&FindingFilter {
            kind: Some(AmountMismatch),
            ..Default::default()
        })
        .await
        .unwrap()
        .remove(0);
    let audit = AuditEntry {
        at: now(),
        actor: "admin".into(),
        action: "recon.finding.resolve".into(),
        target: a.finding_id.to_string(),
        detail: json!({"note": "ok"}),
        role: Some("finance".into()),
        ip: None,
        before: None,
        after: None,
    };
    let resolved = store
        .resolve_finding(&a.finding_id, "checked", &audit)
        .await
        .unwrap()
        .expect("resolved");
    assert_eq!(resolved.status, Resolved);
    assert_eq!(resolved.note.as_deref(), Some("checked"));
    assert!(
        store
            .resolve_finding(&a.finding_id, "twice", &audit)
            .await
            .unwrap()
            .is_none(),
        "only an OPEN finding is resolved"
    );
    assert_eq!(store.list_audit(10).await.unwrap().len(), 1, "audited once");

    // A rerun sees A (resolved: kept as it is), C again, and E new; B and D
    // are gone; one of them is OPEN and unseen: deleted.
    let mut a_again = finding(AmountMismatch, "order:A", Open);
    a_again.detail = "changed".into();
    let second = [
        a_again,
        finding(ChannelOnly, "order:C", Open),
        finding(StateMismatch, "order:E", Open),
    ];
    store
        .save_findings(c, day, "run2", &second, now())
        .await
        .unwrap();
    assert_eq!(
        all(None).await,
        vec![
            ("order:A".into(), Resolved),
            ("order:C".into(), Repaired),
            ("order:E".into(), Open),
        ]
    );
    let kept = store.get_finding(&a.finding_id).await.unwrap().unwrap();
    assert_eq!(
        (kept.detail.as_str(), kept.status),
        ("order:A differs", Resolved)
    );

    // A neighbouring day's bill explains E.
    assert_eq!(
        store
            .clear_open_findings(c, day, StateMismatch, &["order:E".into()])
            .await
            .unwrap(),
        1
    );
    let counts = store.open_findings_by_kind().await.unwrap();
    assert!(counts.is_empty(), "{counts:?}");
}

pub async fn statements_are_replaced_per_day(db: &TestDb) {
    let store = &db.store;
    let (_, config, _) = seed(store.as_ref()).await;
    let day = NaiveDate::from_ymd_opt(2026, 12, 6).unwrap();
    let row = |app: &str, gross: i64| StatementRow {
        config_id: config.config_id.clone(),
        bill_date: day,
        app_id: app.into(),
        store_id: String::new(),
        channel_type: "wx-pay".into(),
        payments: 2,
        gross: Fen::from_stored(gross),
        refunds: 1,
        refunded: Fen::from_stored(10),
        fees_e5: 1200,
    };
    store
        .replace_statement(&config.config_id, day, &[row("a", 100), row("b", 200)])
        .await
        .unwrap();
    store
        .replace_statement(&config.config_id, day, &[row("a", 150)])
        .await
        .unwrap();
    let rows = store
        .list_statement(&StatementFilter {
            bill_date: Some(day),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(rows, vec![row("a", 150)]);
}

/// The matching's reads: a config's paid orders by pay time and its
/// successful refunds by finish time, in `[from, to)`, handed out one by
/// one; unpaid orders and unfinished refunds are not.
pub async fn recon_reads_paid_orders_and_successful_refunds_in_a_window(db: &TestDb) {
    use cashdesk_core::{OrderState, RefundState};
    use cashdesk_store::{InitialRefundState, RefundInsert, RefundTransition};
    use chrono::Duration;

    use super::{new_refund, paid_order, paying_order, t0};

    let store = &*db.store;
    let seeded = seed(store).await;
    let c = seeded.1.config_id.clone();
    let mut paid = Vec::new();
    for i in 0..3 {
        paid.push(paid_order(store, &seeded, &format!("RW-{i}"), 100 + i).await);
    }
    paying_order(store, &seeded, "RW-X", 50, t0()).await;
    let (early, late) = (t0() - Duration::hours(1), t0() + Duration::hours(1));

    let mut orders = Vec::new();
    store
        .recon_orders(&c, early, late, &mut |o| orders.push(o))
        .await
        .unwrap();
    orders.sort_by_key(|o| o.amount);
    assert_eq!(orders.len(), 3, "{orders:?}");
    for (o, p) in orders.iter().zip(&paid) {
        assert_eq!(o.order_id, p.order_id);
        assert_eq!(o.app_id, p.app_id);
        assert_eq!(o.store_id, p.store_id);
        assert_eq!(o.amount, p.amount);
        assert_eq!(o.state, OrderState::Success);
        assert_eq!(o.transaction_id, p.transaction_id);
        assert_eq!(o.pay_time, t0());
    }
    let mut n = 0;
    store
        .recon_orders(&c, t0() + Duration::microseconds(1), late, &mut |_| n += 1)
        .await
        .unwrap();
    assert_eq!(n, 0, "the window is [from, to)");

    let refund = match store
        .insert_refund(
            &new_refund(&paid[0], "RW-R1", 40),
            InitialRefundState::Processing,
        )
        .await
        .unwrap()
    {
        RefundInsert::New(r) => r,
        other => panic!("expected New, got {other:?}"),
    };
    let mut refunds = Vec::new();
    store
        .recon_refunds(&c, early, late, &mut |r| refunds.push(r))
        .await
        .unwrap();
    assert!(refunds.is_empty(), "a refund in progress is not read");
    let finished = t0() + Duration::minutes(10);
    let mut t = RefundTransition::new(&[RefundState::Processing], RefundState::Success, finished);
    t.channel_refund_id = Some("50300000001".into());
    t.finished_at = Some(finished);
    store
        .transition_refund(&refund.refund_id, &t, None)
        .await
        .unwrap()
        .unwrap();
    store
        .recon_refunds(&c, early, late, &mut |r| refunds.push(r))
        .await
        .unwrap();
    assert_eq!(refunds.len(), 1);
    let r = &refunds[0];
    assert_eq!(
        (&r.refund_id, &r.order_id, r.amount, r.state),
        (
            &refund.refund_id,
            &paid[0].order_id,
            Fen::from_stored(40),
            RefundState::Success
        )
    );
    assert_eq!(r.channel_refund_id.as_deref(), Some("50300000001"));
    assert_eq!(r.finished_at, finished);
}
