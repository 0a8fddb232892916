//! Refunds: idempotent insert, the atomic refundable check, and
//! transitions that move money on the order together with the outbox row.

use cashdesk_core::{NotifyId, RefundId, RefundState};
use cashdesk_store::{
    InitialRefundState, NotificationFilter, NotifyType, Refund, RefundFilter, RefundInsert,
    RefundTransition,
};

use super::*;

fn new_refund_or_panic(r: RefundInsert) -> Refund {
    match r {
        RefundInsert::New(r) => r,
        other => panic!("expected New, got {other:?}"),
    }
}

fn fen(v: i64) -> Fen {
    Fen::from_stored(v)
}

pub async fn refunds_insert_idempotently_and_check_refundable(db: &TestDb) {
    let store = &*db.store;
    let seeded = seed(store).await;
    let (a, _, _) = &seeded;

    // Not paid: not refundable, nothing stored.
    let unpaid = new_or_panic(
        store
            .insert_order(&new_order(&a.app_id, "UNPAID"))
            .await
            .unwrap(),
    );
    let r = store
        .insert_refund(
            &new_refund(&unpaid, "RF-0", 1),
            InitialRefundState::Processing,
        )
        .await
        .unwrap();
    assert_eq!(
        r,
        RefundInsert::OrderNotRefundable {
            state: OrderState::Created
        }
    );

    let order = paid_order(store, &seeded, "PAID-1", 1000).await;
    let n1 = new_refund(&order, "RF-1", 600);
    let r1 = new_refund_or_panic(
        store
            .insert_refund(&n1, InitialRefundState::Processing)
            .await
            .unwrap(),
    );
    assert_eq!(
        r1,
        Refund {
            refund_id: n1.refund_id.clone(),
            app_id: n1.app_id.clone(),
            order_id: n1.order_id.clone(),
            out_refund_no: n1.out_refund_no.clone(),
            amount: n1.amount,
            reason: n1.reason.clone(),
            notify_url: n1.notify_url.clone(),
            state: RefundState::Processing,
            request_hash: n1.request_hash.clone(),
            channel_refund_id: None,
            error_code: None,
            error_msg: None,
            created_at: n1.created_at,
            updated_at: n1.created_at,
            finished_at: None,
            next_query_at: None,
            query_attempts: 0,
        }
    );

    // The same outRefundNo (another id, amount and body): the original.
    let mut again = new_refund(&order, "RF-1", 5);
    again.request_hash = "other".into();
    assert_eq!(
        store
            .insert_refund(&again, InitialRefundState::PendingReview)
            .await
            .unwrap(),
        RefundInsert::Existing(r1.clone())
    );
    assert_eq!(store.get_refund(&again.refund_id).await.unwrap(), None);

    // 400 left.
    let r = store
        .insert_refund(
            &new_refund(&order, "RF-2", 401),
            InitialRefundState::Processing,
        )
        .await
        .unwrap();
    assert_eq!(
        r,
        RefundInsert::ExceedsRefundable {
            refundable: fen(400)
        }
    );
    tick().await;
    let r2 = new_refund_or_panic(
        store
            .insert_refund(
                &new_refund(&order, "RF-2", 400),
                InitialRefundState::PendingReview,
            )
            .await
            .unwrap(),
    );
    assert_eq!(r2.state, RefundState::PendingReview);
    assert_eq!(
        store
            .insert_refund(
                &new_refund(&order, "RF-3", 1),
                InitialRefundState::Processing
            )
            .await
            .unwrap(),
        RefundInsert::ExceedsRefundable {
            refundable: Fen::ZERO
        }
    );
    // Holding an amount does not change the order.
    let o = store.get_order(&order.order_id).await.unwrap().unwrap();
    assert_eq!(
        (o.state, o.refunded_amount),
        (OrderState::Success, Fen::ZERO)
    );

    // FAIL and REJECTED release their amounts.
    let t = RefundTransition::new(&[RefundState::Processing], RefundState::Fail, t0());
    store
        .transition_refund(&r1.refund_id, &t, None)
        .await
        .unwrap()
        .unwrap();
    let t = RefundTransition::new(&[RefundState::PendingReview], RefundState::Rejected, t0());
    store
        .transition_refund(&r2.refund_id, &t, None)
        .await
        .unwrap()
        .unwrap();
    tick().await;
    let r3 = new_refund_or_panic(
        store
            .insert_refund(
                &new_refund(&order, "RF-3", 1000),
                InitialRefundState::Processing,
            )
            .await
            .unwrap(),
    );

    // Lookups.
    assert_eq!(
        store
            .get_refund(&r1.refund_id)
            .await
            .unwrap()
            .unwrap()
            .state,
        RefundState::Fail
    );
    assert_eq!(store.get_refund(&RefundId::generate()).await.unwrap(), None);
    assert_eq!(
        store
            .get_refund_by_out_refund_no(&a.app_id, &r3.out_refund_no)
            .await
            .unwrap(),
        Some(r3.clone())
    );

    // outRefundNo is unique per app only.
    let other_app = app("app-2");
    store.insert_app(&other_app).await.unwrap();
    let mut theirs = new_order(&other_app.app_id, "PAID-1");
    theirs.token = "tok-other".into();
    let theirs = new_or_panic(store.insert_order(&theirs).await.unwrap());
    let theirs = store
        .transition_order(
            &theirs.order_id,
            &OrderTransition::new(&[OrderState::Created], OrderState::Success, t0()),
        )
        .await
        .unwrap()
        .unwrap();
    tick().await;
    let r4 = new_refund_or_panic(
        store
            .insert_refund(
                &new_refund(&theirs, "RF-1", 10),
                InitialRefundState::Processing,
            )
            .await
            .unwrap(),
    );
    assert_eq!(
        store
            .get_refund_by_out_refund_no(&other_app.app_id, &r4.out_refund_no)
            .await
            .unwrap(),
        Some(r4.clone())
    );

    // Unknown order, or an order of another app.
    let mut ghost = new_refund(&order, "RF-9", 1);
    ghost.order_id = OrderId::generate();
    let r = store
        .insert_refund(&ghost, InitialRefundState::Processing)
        .await;
    assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");
    let mut cross = new_refund(&theirs, "RF-9", 1);
    cross.app_id = a.app_id.clone();
    let r = store
        .insert_refund(&cross, InitialRefundState::Processing)
        .await;
    assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");

    // Listing: newest first, with filters and pages.
    let ids = |v: Vec<Refund>| v.into_iter().map(|r| r.refund_id).collect::<Vec<_>>();
    let all = ids(store.list_refunds(&RefundFilter::default()).await.unwrap());
    assert_eq!(
        all,
        vec![
            r4.refund_id.clone(),
            r3.refund_id.clone(),
            r2.refund_id.clone(),
            r1.refund_id.clone()
        ]
    );
    let f = |f: RefundFilter| async move { ids(store.list_refunds(&f).await.unwrap()) };
    assert_eq!(
        f(RefundFilter {
            app_id: Some(a.app_id.clone()),
            limit: 2,
            ..Default::default()
        })
        .await,
        vec![r3.refund_id.clone(), r2.refund_id.clone()]
    );
    assert_eq!(
        f(RefundFilter {
            order_id: Some(order.order_id.clone()),
            before: Some(r3.refund_id.clone()),
            ..Default::default()
        })
        .await,
        vec![r2.refund_id.clone(), r1.refund_id.clone()]
    );
    assert_eq!(
        f(RefundFilter {
            state: Some(RefundState::Processing),
            ..Default::default()
        })
        .await,
        vec![r4.refund_id.clone(), r3.refund_id.clone()]
    );
}

/// 16 concurrent refunds of 100 against an order of 1000, from two store
/// instances: exactly ten are stored.
pub async fn insert_refund_race_respects_refundable(db: &TestDb) {
    let seeded = seed(&*db.store).await;
    let order = paid_order(&*db.store, &seeded, "RACE-R", 1000).await;
    let stores = [Arc::clone(&db.store), db.second_instance().await];
    let mut set = JoinSet::new();
    for i in 0..RACERS {
        let store = Arc::clone(&stores[i % 2]);
        let n = new_refund(&order, &format!("RR-{i}"), 100);
        set.spawn(async move {
            store
                .insert_refund(&n, InitialRefundState::Processing)
                .await
                .unwrap()
        });
    }
    let results = set.join_all().await;
    let new = results
        .iter()
        .filter(|r| matches!(r, RefundInsert::New(_)))
        .count();
    let refused = results
        .iter()
        .filter(|r| matches!(r, RefundInsert::ExceedsRefundable { .. }))
        .count();
    assert_eq!((new, refused), (10, RACERS - 10), "(stored, refused)");
    let stored = db
        .store
        .list_refunds(&RefundFilter {
            order_id: Some(order.order_id.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(stored.len(), 10);
    assert_eq!(stored.iter().map(|r| r.amount.get()).sum::<i64>(), 1000);

    // Uneven amounts: whatever wins, the sum stays within the order and
    // every refused amount would still not fit.
    let order = paid_order(&*db.store, &seeded, "RACE-R2", 1000).await;
    let mut set = JoinSet::new();
    for i in 0..RACERS {
        let store = Arc::clone(&stores[i % 2]);
        let amount = 37 + 29 * i64::try_from(i).unwrap();
        let n = new_refund(&order, &format!("RU-{i}"), amount);
        set.spawn(async move {
            let r = store
                .insert_refund(&n, InitialRefundState::PendingReview)
                .await
                .unwrap();
            (amount, r)
        });
    }
    let results = set.join_all().await;
    let held: i64 = results
        .iter()
        .filter(|(_, r)| matches!(r, RefundInsert::New(_)))
        .map(|(a, _)| a)
        .sum();
    assert!(held <= 1000, "{held} refunded of 1000");
    for (amount, r) in &results {
        match r {
            RefundInsert::New(_) => {}
            RefundInsert::ExceedsRefundable { refundable } => {
                assert!(*amount > refundable.get());
                assert!(*amount > 1000 - held, "{amount} would have fit");
            }
            other => panic!("{other:?}"),
        }
    }

    // The same outRefundNo from every racer: one refund.
    let order = paid_order(&*db.store, &seeded, "RACE-R3", 1000).await;
    let mut set = JoinSet::new();
    for i in 0..RACERS {
        let store = Arc::clone(&stores[i % 2]);
        let n = new_refund(&order, "SAME", 100);
        set.spawn(async move {
            store
                .insert_refund(&n, InitialRefundState::Processing)
                .await
                .unwrap()
        });
    }
    let results = set.join_all().await;
    let winners: Vec<&Refund> = results
        .iter()
        .filter_map(|r| match r {
            RefundInsert::New(r) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(winners.len(), 1);
    for r in &results {
        match r {
            RefundInsert::New(r) | RefundInsert::Existing(r) => assert_eq!(r, winners[0]),
            other => panic!("{other:?}"),
        }
    }
}

pub async fn transition_refund_moves_money_with_its_notification(db: &TestDb) {
    let store = &*db.store;
    let seeded = seed(store).await;
    let order = paid_order(store, &seeded, "TR-1", 1000).await;
    let r1 = new_refund_or_panic(
        store
            .insert_refund(
                &new_refund(&order, "TR-R1", 300),
                InitialRefundState::Processing,
            )
            .await
            .unwrap(),
    );
    let r2 = new_refund_or_panic(
        store
            .insert_refund(
                &new_refund(&order, "TR-R2", 700),
                InitialRefundState::PendingReview,
            )
            .await
            .unwrap(),
    );
    let t1 = t0() + Duration::minutes(10);

    // PROCESSING → SUCCESS: refund, order and outbox row together.
    let mut t = RefundTransition::new(&[RefundState::Processing], RefundState::Success, t1);
    t.channel_refund_id = Some("50300000001".into());
    t.finished_at = Some(t1 - Duration::seconds(2));
    let n = new_notification(&order, NotifyType::RefundSuccess, Some(&r1.refund_id));
    let (done, row) = store
        .transition_refund(&r1.refund_id, &t, Some(&n))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        done,
        Refund {
            state: RefundState::Success,
            channel_refund_id: t.channel_refund_id.clone(),
            finished_at: t.finished_at,
            updated_at: t1,
            ..r1.clone()
        }
    );
    let row = row.unwrap();
    assert_eq!(row.notify_id, n.notify_id);
    assert_eq!(row.refund_id.as_ref(), Some(&r1.refund_id));
    assert_eq!(row.notify_type, NotifyType::RefundSuccess);
    assert_eq!(row.body, n.body);
    assert_eq!(row.next_attempt_at, t1);
    assert_eq!(
        store.get_notification(&n.notify_id).await.unwrap(),
        Some(row)
    );
    let o = store.get_order(&order.order_id).await.unwrap().unwrap();
    assert_eq!(
        (o.state, o.refunded_amount, o.updated_at),
        (OrderState::PartRefunded, fen(300), t1)
    );

    // SUCCESS again (even with SUCCESS allowed as a source): not applied,
    // no money counted twice, no row.
    let t = RefundTransition::new(
        &[RefundState::Processing, RefundState::Success],
        RefundState::Success,
        t1,
    );
    let n2 = new_notification(&order, NotifyType::RefundSuccess, Some(&r1.refund_id));
    assert_eq!(
        store
            .transition_refund(&r1.refund_id, &t, Some(&n2))
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.get_notification(&n2.notify_id).await.unwrap(), None);
    assert_eq!(
        store
            .get_order(&order.order_id)
            .await
            .unwrap()
            .unwrap()
            .refunded_amount,
        fen(300)
    );

    // Approval, without a notification.
    let t = RefundTransition::new(&[RefundState::PendingReview], RefundState::Processing, t1);
    let (approved, none) = store
        .transition_refund(&r2.refund_id, &t, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((approved.state, none), (RefundState::Processing, None));

    // A failing outbox insert (a notify id already used) undoes the whole
    // transition.
    let t = RefundTransition::new(&[RefundState::Processing], RefundState::Success, t1);
    let mut dup = new_notification(&order, NotifyType::RefundSuccess, Some(&r2.refund_id));
    dup.notify_id = n.notify_id.clone();
    let r = store.transition_refund(&r2.refund_id, &t, Some(&dup)).await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
    assert_eq!(
        store.get_refund(&r2.refund_id).await.unwrap(),
        Some(approved.clone())
    );
    let o = store.get_order(&order.order_id).await.unwrap().unwrap();
    assert_eq!(
        (o.state, o.refunded_amount),
        (OrderState::PartRefunded, fen(300))
    );

    // The rest: REFUNDED.
    let (_, none) = store
        .transition_refund(&r2.refund_id, &t, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(none, None);
    let o = store.get_order(&order.order_id).await.unwrap().unwrap();
    assert_eq!(
        (o.state, o.refunded_amount),
        (OrderState::Refunded, fen(1000))
    );

    // FAIL: the order is untouched; REFUND_FAIL row written.
    let order2 = paid_order(store, &seeded, "TR-2", 500).await;
    let r3 = new_refund_or_panic(
        store
            .insert_refund(
                &new_refund(&order2, "TR-R3", 500),
                InitialRefundState::Processing,
            )
            .await
            .unwrap(),
    );
    let mut t = RefundTransition::new(&[RefundState::Processing], RefundState::Fail, t1);
    t.error_code = Some("NOTENOUGH".into());
    t.error_msg = Some("余额不足".into());
    let n3 = new_notification(&order2, NotifyType::RefundFail, Some(&r3.refund_id));
    let (failed, row) = store
        .transition_refund(&r3.refund_id, &t, Some(&n3))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(failed.state, RefundState::Fail);
    assert_eq!(failed.error_code.as_deref(), Some("NOTENOUGH"));
    assert_eq!(failed.error_msg.as_deref(), Some("余额不足"));
    assert_eq!(row.unwrap().notify_type, NotifyType::RefundFail);
    let o2 = store.get_order(&order2.order_id).await.unwrap().unwrap();
    assert_eq!(
        (o2.state, o2.refunded_amount),
        (OrderState::Success, Fen::ZERO)
    );

    // A lost CAS writes no row; unknown refund, empty source: nothing.
    let n4 = new_notification(&order2, NotifyType::RefundSuccess, Some(&r3.refund_id));
    let t = RefundTransition::new(&[RefundState::Processing], RefundState::Success, t1);
    assert_eq!(
        store
            .transition_refund(&r3.refund_id, &t, Some(&n4))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .transition_refund(&RefundId::generate(), &t, Some(&n4))
            .await
            .unwrap(),
        None
    );
    let t = RefundTransition::new(&[], RefundState::Success, t1);
    assert_eq!(
        store
            .transition_refund(&r3.refund_id, &t, Some(&n4))
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.get_notification(&n4.notify_id).await.unwrap(), None);
    assert_eq!(
        store.get_notification(&NotifyId::generate()).await.unwrap(),
        None
    );
}

/// Many copies of one refund success (notifications and the poller at
/// once): one transition, the amount counted once, one outbox row.
pub async fn transition_refund_race_counts_once(db: &TestDb) {
    let seeded = seed(&*db.store).await;
    let order = paid_order(&*db.store, &seeded, "TRR-1", 800).await;
    let refund = new_refund_or_panic(
        db.store
            .insert_refund(
                &new_refund(&order, "TRR-R", 300),
                InitialRefundState::Processing,
            )
            .await
            .unwrap(),
    );
    let stores = [Arc::clone(&db.store), db.second_instance().await];
    let mut set = JoinSet::new();
    for i in 0..RACERS {
        let store = Arc::clone(&stores[i % 2]);
        let id = refund.refund_id.clone();
        let n = new_notification(&order, NotifyType::RefundSuccess, Some(&id));
        set.spawn(async move {
            let t = RefundTransition::new(
                &[RefundState::Processing, RefundState::Success],
                RefundState::Success,
                now(),
            );
            store.transition_refund(&id, &t, Some(&n)).await.unwrap()
        });
    }
    let winners: Vec<_> = set.join_all().await.into_iter().flatten().collect();
    assert_eq!(winners.len(), 1, "{winners:?}");
    let o = db.store.get_order(&order.order_id).await.unwrap().unwrap();
    assert_eq!(
        (o.state, o.refunded_amount),
        (OrderState::PartRefunded, fen(300))
    );
    let rows = db
        .store
        .list_notifications(&NotificationFilter {
            order_id: Some(order.order_id.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(Some(&rows[0]), winners[0].1.as_ref());
}

/// An operator's decision carries its audit entry in the transition: of
/// racing deciders (two instances) exactly one changes the refund and
/// exactly one entry is written; a decision that does not apply writes none.
pub async fn a_decision_is_audited_with_its_change(db: &TestDb) {
    let seeded = seed(&*db.store).await;
    let order = paid_order(&*db.store, &seeded, "AUD-1", 800).await;
    let refund = new_refund_or_panic(
        db.store
            .insert_refund(
                &new_refund(&order, "AUD-R", 300),
                InitialRefundState::PendingReview,
            )
            .await
            .unwrap(),
    );
    let decision = |to: RefundState, actor: &str| {
        let mut t = RefundTransition::new(&[RefundState::PendingReview], to, now());
        t.audit = Some(cashdesk_store::AuditEntry {
            at: now(),
            actor: actor.to_owned(),
            action: format!("refund.{to}"),
            target: refund.refund_id.to_string(),
            detail: serde_json::json!({ "state": to }),
            role: None,
            ip: None,
            before: None,
            after: None,
        });
        t
    };
    let before = db.store.list_audit(1000).await.unwrap().len();
    let stores = [Arc::clone(&db.store), db.second_instance().await];
    let mut set = JoinSet::new();
    for i in 0..RACERS {
        let store = Arc::clone(&stores[i % 2]);
        let id = refund.refund_id.clone();
        let to = if i % 2 == 0 {
            RefundState::Processing
        } else {
            RefundState::Rejected
        };
        let t = decision(to, &format!("op{i}"));
        set.spawn(async move { store.transition_refund(&id, &t, None).await.unwrap() });
    }
    let winners: Vec<_> = set.join_all().await.into_iter().flatten().collect();
    assert_eq!(winners.len(), 1, "{winners:?}");
    let audit = db.store.list_audit(1000).await.unwrap();
    assert_eq!(audit.len(), before + 1, "{audit:?}");
    let entry = &audit[0];
    assert_eq!(entry.target, refund.refund_id.as_str());
    assert_eq!(entry.action, format!("refund.{}", winners[0].0.state));

    // Decided already: no change, no entry.
    let late = decision(RefundState::Rejected, "late");
    assert!(
        db.store
            .transition_refund(&refund.refund_id, &late, None)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(db.store.list_audit(1000).await.unwrap().len(), before + 1);
}
