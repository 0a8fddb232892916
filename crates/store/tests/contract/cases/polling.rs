//! Order transitions with their outbox row, and the poller's and expiry
//! job's views of orders and refunds.

use cashdesk_core::RefundState;
use cashdesk_store::{
    InitialRefundState, NotificationFilter, NotificationState, NotifyType, QuerySchedule,
    RefundInsert,
};

use super::*;

pub async fn transition_order_notify_is_atomic(db: &TestDb) {
    let store = &*db.store;
    let seeded = seed(store).await;
    let t1 = t0() + Duration::minutes(1);
    let order = paying_order(store, &seeded, "TN-1", 500, t0()).await;

    // Applied: the order and its row.
    let mut t = OrderTransition::new(&[OrderState::Paying], OrderState::Success, t1);
    t.transaction_id = Some("4200000001".into());
    let n = new_notification(&order, NotifyType::PaySuccess, None);
    let (paid, row) = store
        .transition_order_notify(&order.order_id, &t, Some(&n))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(paid.state, OrderState::Success);
    assert_eq!(paid.transaction_id.as_deref(), Some("4200000001"));
    let row = row.unwrap();
    assert_eq!(
        row,
        cashdesk_store::Notification {
            notify_id: n.notify_id.clone(),
            app_id: n.app_id.clone(),
            order_id: n.order_id.clone(),
            refund_id: None,
            notify_type: NotifyType::PaySuccess,
            url: n.url.clone(),
            body: n.body.clone(),
            state: NotificationState::Pending,
            attempts: 0,
            next_attempt_at: t1,
            lease_owner: None,
            lease_until: None,
            created_at: t1,
            delivered_at: None,
            last_error: None,
        }
    );
    assert_eq!(
        store.get_notification(&n.notify_id).await.unwrap(),
        Some(row.clone())
    );

    // The CAS lost: no row.
    let n2 = new_notification(&order, NotifyType::PaySuccess, None);
    assert_eq!(
        store
            .transition_order_notify(&order.order_id, &t, Some(&n2))
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.get_notification(&n2.notify_id).await.unwrap(), None);
    let t_empty = OrderTransition::new(&[], OrderState::Closed, t1);
    assert_eq!(
        store
            .transition_order_notify(&order.order_id, &t_empty, Some(&n2))
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.get_notification(&n2.notify_id).await.unwrap(), None);

    // The row cannot be written (duplicate notify id): the transition is
    // undone too.
    let other = paying_order(store, &seeded, "TN-2", 500, t0()).await;
    let t = OrderTransition::new(&[OrderState::Paying], OrderState::Closed, t1);
    let mut dup = new_notification(&other, NotifyType::PayClosed, None);
    dup.notify_id = n.notify_id.clone();
    let r = store
        .transition_order_notify(&other.order_id, &t, Some(&dup))
        .await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
    assert_eq!(
        store.get_order(&other.order_id).await.unwrap(),
        Some(other.clone())
    );
    assert_eq!(
        store.get_notification(&n.notify_id).await.unwrap(),
        Some(row),
        "the first row is untouched"
    );

    // Without a notification it is transition_order.
    let (closed, none) = store
        .transition_order_notify(&other.order_id, &t, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((closed.state, none), (OrderState::Closed, None));
    assert_eq!(
        store
            .list_notifications(&NotificationFilter {
                order_id: Some(other.order_id.clone()),
                ..Default::default()
            })
            .await
            .unwrap(),
        vec![]
    );
}

/// Racing success notifications and an expiry, each with its own outbox
/// row: one transition, one row.
pub async fn transition_order_notify_race_writes_one_row(db: &TestDb) {
    let seeded = seed(&*db.store).await;
    let order = paying_order(&*db.store, &seeded, "TNR-1", 500, t0()).await;
    let stores = [Arc::clone(&db.store), db.second_instance().await];
    let mut set = JoinSet::new();
    for i in 0..RACERS {
        let store = Arc::clone(&stores[i % 2]);
        let order = order.clone();
        set.spawn(async move {
            let (to, kind) = if i % 4 == 0 {
                (OrderState::Closed, NotifyType::PayClosed)
            } else {
                (OrderState::Success, NotifyType::PaySuccess)
            };
            let t = OrderTransition::new(&[OrderState::Created, OrderState::Paying], to, now());
            let n = new_notification(&order, kind, None);
            store
                .transition_order_notify(&order.order_id, &t, Some(&n))
                .await
                .unwrap()
        });
    }
    let winners: Vec<_> = set.join_all().await.into_iter().flatten().collect();
    assert_eq!(winners.len(), 1, "{winners:?}");
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
    let expected = match winners[0].0.state {
        OrderState::Closed => NotifyType::PayClosed,
        _ => NotifyType::PaySuccess,
    };
    assert_eq!(rows[0].notify_type, expected);
}

fn schedule() -> QuerySchedule {
    QuerySchedule {
        first_after: Duration::seconds(60),
        delays: vec![Duration::seconds(10), Duration::seconds(20)],
    }
}

pub async fn claim_orders_to_query_follows_the_schedule(db: &TestDb) {
    let store = &*db.store;
    let seeded = seed(store).await;
    let t = t0();
    let s = schedule();

    // Scheduled explicitly in the move to PAYING, due at t.
    let (a, c, ch) = &seeded;
    let o = new_or_panic(
        store
            .insert_order(&new_order(&a.app_id, "Q-1"))
            .await
            .unwrap(),
    );
    let mut tr = OrderTransition::new(&[OrderState::Created], OrderState::Paying, t);
    tr.channel = Some(order_channel(c, ch));
    tr.next_query_at = Some(t);
    let scheduled = store
        .transition_order(&o.order_id, &tr)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (scheduled.next_query_at, scheduled.query_attempts),
        (Some(t), 0)
    );
    // Not scheduled: due first_after its move to PAYING (updated_at = t).
    let unscheduled = paying_order(store, &seeded, "Q-2", 100, t).await;
    assert_eq!(unscheduled.next_query_at, None);
    // Expired: the expiry job's, not the poller's.
    let mut x = new_order(&a.app_id, "Q-3");
    x.expire_at = t + Duration::seconds(20);
    let expired = new_or_panic(store.insert_order(&x).await.unwrap());
    let mut tr = OrderTransition::new(&[OrderState::Created], OrderState::Paying, t);
    tr.next_query_at = Some(t);
    store
        .transition_order(&expired.order_id, &tr)
        .await
        .unwrap()
        .unwrap();
    // Not PAYING.
    let created = new_or_panic(
        store
            .insert_order(&new_order(&a.app_id, "Q-4"))
            .await
            .unwrap(),
    );
    assert!(
        store
            .schedule_order_query(&created.order_id, t)
            .await
            .unwrap()
    );
    // Scheduled later.
    let later = paying_order(store, &seeded, "Q-5", 100, t).await;
    assert!(
        store
            .schedule_order_query(&later.order_id, t + Duration::hours(1))
            .await
            .unwrap()
    );
    assert!(
        !store
            .schedule_order_query(&OrderId::generate(), t)
            .await
            .unwrap()
    );

    let ids = |v: &[Order]| v.iter().map(|o| o.order_id.clone()).collect::<Vec<_>>();
    let t30 = t + Duration::seconds(30);
    let got = store.claim_orders_to_query(t30, 10, &s).await.unwrap();
    assert_eq!(ids(&got), vec![scheduled.order_id.clone()]);
    assert_eq!(got[0].query_attempts, 1);
    assert_eq!(got[0].next_query_at, Some(t30 + Duration::seconds(10)));
    assert_eq!(got[0].state, OrderState::Paying);
    assert_eq!(
        got[0].updated_at, scheduled.updated_at,
        "claims are not changes"
    );
    // Claimed: pushed forward, so not again now.
    assert!(
        store
            .claim_orders_to_query(t30, 10, &s)
            .await
            .unwrap()
            .is_empty()
    );

    // At t + 60 s: the unscheduled one is due, and the first again (its
    // second claim → the second delay).
    let t60 = t + Duration::seconds(60);
    let got = store.claim_orders_to_query(t60, 10, &s).await.unwrap();
    let mut expected = vec![scheduled.order_id.clone(), unscheduled.order_id.clone()];
    expected.sort();
    let mut got_ids = ids(&got);
    got_ids.sort();
    assert_eq!(got_ids, expected);
    for o in &got {
        let (n, delay) = if o.order_id == scheduled.order_id {
            (2, 20)
        } else {
            (1, 10)
        };
        assert_eq!(o.query_attempts, n);
        assert_eq!(o.next_query_at, Some(t60 + Duration::seconds(delay)));
    }
    // Past the schedule's end, the last delay repeats.
    let t80 = t60 + Duration::seconds(20);
    let got = store.claim_orders_to_query(t80, 10, &s).await.unwrap();
    let first = got
        .iter()
        .find(|o| o.order_id == scheduled.order_id)
        .unwrap();
    assert_eq!(first.query_attempts, 3);
    assert_eq!(first.next_query_at, Some(t80 + Duration::seconds(20)));

    // The limit holds; a paid order is no longer polled.
    let t2h = t + Duration::minutes(90);
    let one = store.claim_orders_to_query(t2h, 1, &s).await.unwrap();
    assert_eq!(one.len(), 1);
    let tr = OrderTransition::new(&[OrderState::Paying], OrderState::Success, t2h);
    for id in [&scheduled.order_id, &unscheduled.order_id] {
        store.transition_order(id, &tr).await.unwrap().unwrap();
    }
    let rest = store.claim_orders_to_query(t2h, 10, &s).await.unwrap();
    assert_eq!(ids(&rest), vec![later.order_id.clone()]);

    // Expired: CREATED and PAYING orders at or past expire_at, soonest
    // first.
    let at = |d: i64| t + Duration::seconds(d);
    assert!(
        store
            .list_expired_orders(at(19), 0)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        ids(&store.list_expired_orders(at(20), 0).await.unwrap()),
        vec![expired.order_id.clone()]
    );
    let all = store
        .list_expired_orders(t + Duration::hours(3), 0)
        .await
        .unwrap();
    // Q-3 (t+20 s), Q-4 (created at t0, expiring t0 + 30 min), Q-5
    // (t + 2 h); paid ones are not listed.
    assert_eq!(
        ids(&all),
        vec![
            expired.order_id.clone(),
            created.order_id.clone(),
            later.order_id.clone()
        ]
    );
    assert_eq!(
        store
            .list_expired_orders(t + Duration::hours(3), 2)
            .await
            .unwrap()
            .len(),
        2
    );
}

/// Concurrent claimers on two instances: no order is handed out twice
/// while its claim stands, and every due order is handed out.
pub async fn claim_orders_race_hands_out_each_order_once(db: &TestDb) {
    let seeded = seed(&*db.store).await;
    let t = t0();
    let mut due = HashSet::new();
    for i in 0..20 {
        let o = paying_order(&*db.store, &seeded, &format!("QR-{i}"), 100, t).await;
        due.insert(o.order_id);
    }
    let stores = [Arc::clone(&db.store), db.second_instance().await];
    let at = t + Duration::minutes(5);
    let mut set = JoinSet::new();
    for i in 0..RACERS {
        let store = Arc::clone(&stores[i % 2]);
        set.spawn(async move {
            store
                .claim_orders_to_query(at, 3, &schedule())
                .await
                .unwrap()
        });
    }
    let mut seen = HashSet::new();
    for batch in set.join_all().await {
        assert!(batch.len() <= 3);
        for o in batch {
            assert_eq!(o.query_attempts, 1);
            assert!(seen.insert(o.order_id.clone()), "{} twice", o.order_id);
        }
    }
    // SKIP LOCKED may leave some for the next round; none twice.
    for o in db
        .store
        .claim_orders_to_query(at, 100, &schedule())
        .await
        .unwrap()
    {
        assert!(seen.insert(o.order_id.clone()), "{} twice", o.order_id);
    }
    assert_eq!(seen, due);
}

pub async fn claim_refunds_to_query_follows_the_schedule(db: &TestDb) {
    let store = &*db.store;
    let seeded = seed(store).await;
    let order = paid_order(store, &seeded, "QF-1", 1000).await;
    let insert = |no: &'static str, initial: InitialRefundState| {
        let n = new_refund(&order, no, 100);
        async move {
            match store.insert_refund(&n, initial).await.unwrap() {
                RefundInsert::New(r) => r,
                other => panic!("{other:?}"),
            }
        }
    };
    // Created at t0 + 5 min (new_refund), so updated_at is that.
    let processing = insert("QF-R1", InitialRefundState::Processing).await;
    let review = insert("QF-R2", InitialRefundState::PendingReview).await;
    let scheduled = insert("QF-R3", InitialRefundState::Processing).await;
    let base = processing.updated_at;
    assert!(
        store
            .schedule_refund_query(&scheduled.refund_id, base + Duration::seconds(5))
            .await
            .unwrap()
    );
    assert!(
        !store
            .schedule_refund_query(&cashdesk_core::RefundId::generate(), base)
            .await
            .unwrap()
    );
    let s = schedule();
    let ids =
        |v: Vec<cashdesk_store::Refund>| v.into_iter().map(|r| r.refund_id).collect::<Vec<_>>();
    assert!(
        store
            .claim_refunds_to_query(base + Duration::seconds(4), 10, &s)
            .await
            .unwrap()
            .is_empty()
    );
    let at = base + Duration::seconds(5);
    let got = store.claim_refunds_to_query(at, 10, &s).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].refund_id, scheduled.refund_id);
    assert_eq!(
        (got[0].query_attempts, got[0].next_query_at),
        (1, Some(at + Duration::seconds(10)))
    );
    let at = base + Duration::seconds(60);
    let mut got = ids(store.claim_refunds_to_query(at, 10, &s).await.unwrap());
    got.sort();
    let mut expected = vec![processing.refund_id.clone(), scheduled.refund_id.clone()];
    expected.sort();
    assert_eq!(got, expected, "PENDING_REVIEW is not queried");
    // A final refund is not queried any more.
    let t =
        cashdesk_store::RefundTransition::new(&[RefundState::Processing], RefundState::Success, at);
    store
        .transition_refund(&processing.refund_id, &t, None)
        .await
        .unwrap()
        .unwrap();
    let got = ids(store
        .claim_refunds_to_query(at + Duration::hours(1), 10, &s)
        .await
        .unwrap());
    assert_eq!(got, vec![scheduled.refund_id.clone()]);
    assert_eq!(
        store
            .get_refund(&review.refund_id)
            .await
            .unwrap()
            .unwrap()
            .query_attempts,
        0
    );
    // Schedules of one step (one delay, or none) are valid too.
    for (n, delays) in [(1, vec![Duration::seconds(7)]), (2, vec![])] {
        let short = QuerySchedule {
            first_after: Duration::seconds(3),
            delays,
        };
        let at = at + Duration::hours(n * 2);
        let got = store.claim_refunds_to_query(at, 10, &short).await.unwrap();
        assert_eq!(ids(got.clone()), vec![scheduled.refund_id.clone()]);
        let expected = if n == 1 { 7 } else { 3 };
        assert_eq!(got[0].next_query_at, Some(at + Duration::seconds(expected)));
    }
}
