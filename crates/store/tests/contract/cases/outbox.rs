//! The merchant-notification outbox (claims under leases, attempts,
//! resends) and cluster-wide job leases.

use std::collections::HashMap;

use cashdesk_core::NotifyId;
use cashdesk_store::{
    AttemptOutcome, NewAttempt, Notification, NotificationFilter, NotificationState, NotifyType,
    RESPONSE_EXCERPT_MAX,
};

use super::*;

/// `count` PENDING notifications due at `at`, on as many orders.
async fn enqueue(
    store: &dyn Store,
    seeded: &(App, ChannelConfig, Channel),
    prefix: &str,
    count: usize,
    at: DateTime<Utc>,
) -> Vec<Notification> {
    let mut out = Vec::new();
    for i in 0..count {
        let o = paying_order(store, seeded, &format!("{prefix}-{i}"), 100, t0()).await;
        let t = OrderTransition::new(&[OrderState::Paying], OrderState::Success, at);
        let n = new_notification(&o, NotifyType::PaySuccess, None);
        let (_, row) = store
            .transition_order_notify(&o.order_id, &t, Some(&n))
            .await
            .unwrap()
            .unwrap();
        out.push(row.unwrap());
    }
    out
}

fn attempt(at: DateTime<Utc>, status: Option<u16>, error: Option<&str>) -> NewAttempt {
    NewAttempt {
        at,
        http_status: status,
        latency_ms: 42,
        response_excerpt: status.map(|s| format!("reply {s}")),
        error: error.map(str::to_owned),
    }
}

fn lease() -> Duration {
    Duration::seconds(30)
}

pub async fn notification_attempts_are_recorded_under_the_lease(db: &TestDb) {
    let store = &*db.store;
    let seeded = seed(store).await;
    let t = t0() + Duration::hours(1);
    let n = enqueue(store, &seeded, "NA", 1, t).await.remove(0);

    // Not due before next_attempt_at.
    assert!(
        store
            .claim_due_notifications("w1", t - Duration::seconds(1), lease(), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let claimed = store
        .claim_due_notifications("w1", t, lease(), 10)
        .await
        .unwrap();
    assert_eq!(
        claimed,
        vec![Notification {
            lease_owner: Some("w1".into()),
            lease_until: Some(t + lease()),
            ..n.clone()
        }]
    );
    // Leased: nobody else gets it, the holder neither.
    for w in ["w1", "w2"] {
        assert!(
            store
                .claim_due_notifications(w, t + Duration::seconds(29), lease(), 10)
                .await
                .unwrap()
                .is_empty()
        );
    }

    // Not acknowledged: retry later; the attempt is logged, the excerpt
    // cut to 512 bytes at a character boundary.
    let t1 = t + Duration::seconds(1);
    let retry_at = t1 + Duration::seconds(15);
    let mut a1 = attempt(t1, Some(500), Some("HTTP 500"));
    a1.response_excerpt = Some("中".repeat(300));
    assert!(
        store
            .record_notification_attempt(&n.notify_id, "w1", &a1, AttemptOutcome::RetryAt(retry_at))
            .await
            .unwrap()
    );
    let after = store.get_notification(&n.notify_id).await.unwrap().unwrap();
    assert_eq!(
        after,
        Notification {
            attempts: 1,
            next_attempt_at: retry_at,
            last_error: Some("HTTP 500".into()),
            ..n.clone()
        }
    );
    // The lease is released: recording again is refused.
    assert!(
        !store
            .record_notification_attempt(&n.notify_id, "w1", &a1, AttemptOutcome::Delivered)
            .await
            .unwrap()
    );
    assert!(
        store
            .claim_due_notifications("w2", retry_at - Duration::microseconds(1), lease(), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let claimed = store
        .claim_due_notifications("w2", retry_at, lease(), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].attempts, 1);

    // Acknowledged.
    let t2 = retry_at + Duration::seconds(1);
    assert!(
        store
            .record_notification_attempt(
                &n.notify_id,
                "w2",
                &attempt(t2, Some(200), None),
                AttemptOutcome::Delivered
            )
            .await
            .unwrap()
    );
    let delivered = store.get_notification(&n.notify_id).await.unwrap().unwrap();
    assert_eq!(delivered.state, NotificationState::Delivered);
    assert_eq!(delivered.attempts, 2);
    assert_eq!(delivered.delivered_at, Some(t2));
    assert_eq!(delivered.last_error, None);
    assert_eq!(delivered.lease_owner, None);
    assert!(
        store
            .claim_due_notifications("w3", t2 + Duration::days(2), lease(), 10)
            .await
            .unwrap()
            .is_empty(),
        "nothing is sent after the acknowledgement"
    );

    let log = store
        .list_notification_attempts(&n.notify_id)
        .await
        .unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].owner, "w1");
    assert_eq!(log[0].at, t1);
    assert_eq!(log[0].http_status, Some(500));
    assert_eq!(log[0].latency_ms, 42);
    assert_eq!(log[0].error.as_deref(), Some("HTTP 500"));
    assert_eq!(log[0].outcome, AttemptOutcome::RetryAt(retry_at));
    let excerpt = log[0].response_excerpt.as_deref().unwrap();
    assert!(excerpt.len() <= RESPONSE_EXCERPT_MAX);
    assert_eq!(excerpt, "中".repeat(RESPONSE_EXCERPT_MAX / 3));
    assert_eq!(log[1].owner, "w2");
    assert_eq!(log[1].outcome, AttemptOutcome::Delivered);
    assert_eq!(log[1].response_excerpt.as_deref(), Some("reply 200"));
    assert!(
        store
            .list_notification_attempts(&NotifyId::generate())
            .await
            .unwrap()
            .is_empty()
    );

    // Given up: FAILED, never claimed again (until resent).
    let m = enqueue(store, &seeded, "NF", 1, t).await.remove(0);
    store
        .claim_due_notifications("w1", t, lease(), 1)
        .await
        .unwrap();
    assert!(
        store
            .record_notification_attempt(
                &m.notify_id,
                "w1",
                &attempt(t1, None, Some("connect timeout")),
                AttemptOutcome::Failed
            )
            .await
            .unwrap()
    );
    let failed = store.get_notification(&m.notify_id).await.unwrap().unwrap();
    assert_eq!(failed.state, NotificationState::Failed);
    assert_eq!(failed.last_error.as_deref(), Some("connect timeout"));
    let log = store
        .list_notification_attempts(&m.notify_id)
        .await
        .unwrap();
    assert_eq!(
        (log.len(), log[0].http_status, log[0].outcome),
        (1, None, AttemptOutcome::Failed)
    );
    assert!(
        store
            .claim_due_notifications("w1", t2 + Duration::days(2), lease(), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn expired_notification_lease_is_taken_over(db: &TestDb) {
    let store = &*db.store;
    let seeded = seed(store).await;
    let t = t0() + Duration::hours(1);
    let n = enqueue(store, &seeded, "NL", 1, t).await.remove(0);
    let lease = Duration::seconds(10);

    assert_eq!(
        store
            .claim_due_notifications("dead", t, lease, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .claim_due_notifications("alive", t + Duration::seconds(9), lease, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // The dead worker's lease ends: taken over.
    let t10 = t + lease;
    let taken = store
        .claim_due_notifications("alive", t10, lease, 10)
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].lease_owner.as_deref(), Some("alive"));
    assert_eq!(taken[0].lease_until, Some(t10 + lease));

    // The stale owner comes back: refused, nothing logged or changed.
    let before = store.get_notification(&n.notify_id).await.unwrap();
    assert!(
        !store
            .record_notification_attempt(
                &n.notify_id,
                "dead",
                &attempt(t10, Some(200), None),
                AttemptOutcome::Delivered
            )
            .await
            .unwrap()
    );
    assert_eq!(store.get_notification(&n.notify_id).await.unwrap(), before);
    assert!(
        store
            .list_notification_attempts(&n.notify_id)
            .await
            .unwrap()
            .is_empty()
    );
    // Unknown notification: refused.
    assert!(
        !store
            .record_notification_attempt(
                &NotifyId::generate(),
                "alive",
                &attempt(t10, Some(200), None),
                AttemptOutcome::Delivered
            )
            .await
            .unwrap()
    );
    assert!(
        store
            .record_notification_attempt(
                &n.notify_id,
                "alive",
                &attempt(t10, Some(200), None),
                AttemptOutcome::Delivered
            )
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .list_notification_attempts(&n.notify_id)
            .await
            .unwrap()
            .len(),
        1
    );
}

pub async fn resend_keeps_the_notify_id(db: &TestDb) {
    let store = &*db.store;
    let seeded = seed(store).await;
    let t = t0() + Duration::hours(1);
    let n = enqueue(store, &seeded, "RS", 1, t).await.remove(0);
    store
        .claim_due_notifications("w1", t, lease(), 10)
        .await
        .unwrap();
    store
        .record_notification_attempt(
            &n.notify_id,
            "w1",
            &attempt(t, Some(200), None),
            AttemptOutcome::Delivered,
        )
        .await
        .unwrap();

    // Delivered → resent: PENDING, due now, same id and body, attempts kept.
    let t2 = t + Duration::days(3);
    let resent = store
        .resend_notification(&n.notify_id, t2)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resent.notify_id, n.notify_id);
    assert_eq!(resent.body, n.body);
    assert_eq!(resent.state, NotificationState::Pending);
    assert_eq!(resent.next_attempt_at, t2);
    assert_eq!(resent.attempts, 1);
    let claimed = store
        .claim_due_notifications("w2", t2, lease(), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].notify_id, n.notify_id);

    // Resent while leased: the lease is kept (the holder may be sending it
    // right now), so nobody else can claim it until the holder records.
    let t3 = t2 + Duration::seconds(1);
    let again = store
        .resend_notification(&n.notify_id, t3)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.state, NotificationState::Pending);
    assert_eq!(again.next_attempt_at, t3);
    assert_eq!(again.lease_owner.as_deref(), Some("w2"));
    assert!(
        store
            .claim_due_notifications("w3", t3, lease(), 10)
            .await
            .unwrap()
            .is_empty(),
        "no second sender while the lease lives"
    );
    assert!(
        store
            .record_notification_attempt(
                &n.notify_id,
                "w2",
                &attempt(t3, Some(500), Some("HTTP 500")),
                AttemptOutcome::RetryAt(t3)
            )
            .await
            .unwrap(),
        "the holder records its attempt"
    );
    // Once recorded, the next claim takes it.
    assert_eq!(
        store
            .claim_due_notifications("w3", t3, lease(), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    // Resent after the holder's lease ran out: the dead lease is dropped.
    let t4 = t3 + lease() + Duration::seconds(1);
    let taken = store
        .resend_notification(&n.notify_id, t4)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((taken.lease_owner, taken.lease_until), (None, None));
    assert!(
        !store
            .record_notification_attempt(
                &n.notify_id,
                "w3",
                &attempt(t4, Some(200), None),
                AttemptOutcome::Delivered
            )
            .await
            .unwrap(),
        "a lease that ran out and was dropped cannot record"
    );
    assert_eq!(
        store
            .claim_due_notifications("w3", t4, lease(), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .record_notification_attempt(
                &n.notify_id,
                "w3",
                &attempt(t4, Some(200), None),
                AttemptOutcome::Failed
            )
            .await
            .unwrap()
    );
    // FAILED → resent too.
    let revived = store
        .resend_notification(&n.notify_id, t4)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (revived.state, revived.attempts),
        (NotificationState::Pending, 3)
    );
    assert_eq!(
        store
            .list_notification_attempts(&n.notify_id)
            .await
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        store
            .resend_notification(&NotifyId::generate(), t3)
            .await
            .unwrap(),
        None
    );
}

pub async fn list_notifications_filters_and_pages(db: &TestDb) {
    let store = &*db.store;
    let seeded = seed(store).await;
    let t = t0();
    let mut rows = Vec::new();
    for i in 0..4 {
        rows.extend(enqueue(store, &seeded, &format!("LN{i}"), 1, t).await);
        tick().await;
    }
    let other = app("app-2");
    store.insert_app(&other).await.unwrap();
    let mut o = new_order(&other.app_id, "LN-other");
    o.amount = Fen::parse_positive("amount", 1).unwrap();
    let o = new_or_panic(store.insert_order(&o).await.unwrap());
    let n = new_notification(&o, NotifyType::PayClosed, None);
    let (_, theirs) = store
        .transition_order_notify(
            &o.order_id,
            &OrderTransition::new(&[OrderState::Created], OrderState::Closed, t),
            Some(&n),
        )
        .await
        .unwrap()
        .unwrap();
    let theirs = theirs.unwrap();
    // Oldest due first, and no more than asked for.
    let claimed = store
        .claim_due_notifications("w", t, lease(), 1)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].notify_id, rows[0].notify_id);
    assert!(
        store
            .record_notification_attempt(
                &rows[0].notify_id,
                "w",
                &attempt(t, Some(200), None),
                AttemptOutcome::Delivered,
            )
            .await
            .unwrap()
    );

    let got = |f: NotificationFilter| async move {
        store
            .list_notifications(&f)
            .await
            .unwrap()
            .into_iter()
            .map(|n| n.notify_id)
            .collect::<Vec<_>>()
    };
    let id = |i: usize| rows[i].notify_id.clone();
    assert_eq!(
        got(NotificationFilter::default()).await,
        vec![theirs.notify_id.clone(), id(3), id(2), id(1), id(0)]
    );
    assert_eq!(
        got(NotificationFilter {
            app_id: Some(seeded.0.app_id.clone()),
            before: Some(id(3)),
            limit: 2,
            ..Default::default()
        })
        .await,
        vec![id(2), id(1)]
    );
    assert_eq!(
        got(NotificationFilter {
            order_id: Some(rows[2].order_id.clone()),
            ..Default::default()
        })
        .await,
        vec![id(2)]
    );
    assert_eq!(
        got(NotificationFilter {
            state: Some(NotificationState::Delivered),
            ..Default::default()
        })
        .await,
        vec![id(0)]
    );
    assert_eq!(
        store.get_notification(&theirs.notify_id).await.unwrap(),
        Some(theirs)
    );
}

/// Sixteen claimers on two instances at one instant: disjoint claims, and
/// everything due is handed out once.
pub async fn notification_claims_are_exclusive(db: &TestDb) {
    let seeded = seed(&*db.store).await;
    let t = t0();
    let all: HashSet<NotifyId> = enqueue(&*db.store, &seeded, "NX", 40, t)
        .await
        .into_iter()
        .map(|n| n.notify_id)
        .collect();
    let stores = [Arc::clone(&db.store), db.second_instance().await];
    let at = t + Duration::seconds(1);
    let mut set = JoinSet::new();
    for i in 0..RACERS {
        let store = Arc::clone(&stores[i % 2]);
        set.spawn(async move {
            let owner = format!("worker-{i}");
            let got = store
                .claim_due_notifications(&owner, at, lease(), 4)
                .await
                .unwrap();
            (owner, got)
        });
    }
    let mut seen = HashSet::new();
    for (owner, batch) in set.join_all().await {
        assert!(batch.len() <= 4);
        for n in batch {
            assert_eq!(n.lease_owner.as_deref(), Some(owner.as_str()));
            assert!(seen.insert(n.notify_id.clone()), "{} twice", n.notify_id);
        }
    }
    for n in db
        .store
        .claim_due_notifications("late", at, lease(), 100)
        .await
        .unwrap()
    {
        assert!(seen.insert(n.notify_id.clone()), "{} twice", n.notify_id);
    }
    assert_eq!(seen, all);
    assert!(
        stores[1]
            .claim_due_notifications("later", at + Duration::seconds(29), lease(), 100)
            .await
            .unwrap()
            .is_empty(),
        "all leased"
    );
}

/// Workers on two instances deliver a burst in real time: each
/// notification is delivered (recorded) exactly once, by its lease holder.
pub async fn notification_workers_deliver_each_once(db: &TestDb) {
    let seeded = seed(&*db.store).await;
    let start = now();
    let all: HashSet<NotifyId> = enqueue(&*db.store, &seeded, "NW", 48, start)
        .await
        .into_iter()
        .map(|n| n.notify_id)
        .collect();
    let stores = [Arc::clone(&db.store), db.second_instance().await];
    let mut set = JoinSet::new();
    for i in 0..8 {
        let store = Arc::clone(&stores[i % 2]);
        set.spawn(async move {
            let owner = format!("instance-{}:worker-{i}", i % 2);
            let mut delivered = Vec::new();
            loop {
                let batch = store
                    .claim_due_notifications(&owner, now(), Duration::minutes(5), 3)
                    .await
                    .unwrap();
                if batch.is_empty() {
                    break;
                }
                for n in batch {
                    tokio::task::yield_now().await;
                    let ok = store
                        .record_notification_attempt(
                            &n.notify_id,
                            &owner,
                            &attempt(now(), Some(200), None),
                            AttemptOutcome::Delivered,
                        )
                        .await
                        .unwrap();
                    assert!(ok, "lease of {} lost", n.notify_id);
                    delivered.push(n.notify_id);
                }
            }
            delivered
        });
    }
    let mut count: HashMap<NotifyId, usize> = HashMap::new();
    for id in set.join_all().await.into_iter().flatten() {
        *count.entry(id).or_default() += 1;
    }
    assert_eq!(count.keys().cloned().collect::<HashSet<_>>(), all);
    assert!(count.values().all(|c| *c == 1), "{count:?}");
    for id in &all {
        let n = db.store.get_notification(id).await.unwrap().unwrap();
        assert_eq!((n.state, n.attempts), (NotificationState::Delivered, 1));
        assert_eq!(
            db.store.list_notification_attempts(id).await.unwrap().len(),
            1
        );
    }
}

pub async fn job_leases_are_exclusive_and_expire(db: &TestDb) {
    let store = &*db.store;
    let t = t0();
    let ttl = Duration::seconds(30);
    assert!(
        store
            .try_acquire_lease("expiry", "a", t, ttl)
            .await
            .unwrap()
    );
    assert!(
        !store
            .try_acquire_lease("expiry", "b", t, ttl)
            .await
            .unwrap()
    );
    // Another job is another lease.
    assert!(
        store
            .try_acquire_lease("poller", "b", t, ttl)
            .await
            .unwrap()
    );
    // The holder extends it.
    let t20 = t + Duration::seconds(20);
    assert!(
        store
            .try_acquire_lease("expiry", "a", t20, ttl)
            .await
            .unwrap()
    );
    assert!(
        !store
            .try_acquire_lease("expiry", "b", t + Duration::seconds(49), ttl)
            .await
            .unwrap(),
        "extended to t + 50 s"
    );
    // Expired: taken over; the old holder is then refused.
    let t50 = t + Duration::seconds(50);
    assert!(
        store
            .try_acquire_lease("expiry", "b", t50, ttl)
            .await
            .unwrap()
    );
    assert!(
        !store
            .try_acquire_lease("expiry", "a", t50, ttl)
            .await
            .unwrap()
    );
    // Release: only by the holder; then free for anyone.
    assert!(!store.release_lease("expiry", "a").await.unwrap());
    assert!(store.release_lease("expiry", "b").await.unwrap());
    assert!(!store.release_lease("expiry", "b").await.unwrap());
    assert!(
        store
            .try_acquire_lease("expiry", "a", t50, ttl)
            .await
            .unwrap()
    );

    // A race across two instances for a free lease: one winner.
    let stores = [Arc::clone(&db.store), db.second_instance().await];
    let at = now();
    let mut set = JoinSet::new();
    for i in 0..RACERS {
        let store = Arc::clone(&stores[i % 2]);
        set.spawn(async move {
            store
                .try_acquire_lease("race", &format!("owner-{i}"), at, ttl)
                .await
                .unwrap()
        });
    }
    let won = set.join_all().await.into_iter().filter(|w| *w).count();
    assert_eq!(won, 1);
}

/// A new notify URL for an app readdresses its undelivered notifications
/// that went to the old one; delivered ones and those an order addressed
/// itself keep their URL; removing the URL readdresses nothing.
pub async fn a_new_notify_url_readdresses_undelivered_notifications(db: &TestDb) {
    let store = &*db.store;
    let seeded = seed(store).await;
    let app_id = &seeded.0.app_id;
    let old = new_notification(
        &paying_order(store, &seeded, "NU-first", 1, t0()).await,
        NotifyType::PaySuccess,
        None,
    )
    .url;
    let set_url = |u: Option<&str>| AppSettingsUpdate {
        notify_url: Some(u.map(url)),
        ..AppSettingsUpdate::default()
    };
    let (app, n) = store
        .update_app_settings(app_id, &set_url(Some(old.as_str())))
        .await
        .unwrap()
        .expect("app");
    assert_eq!(
        (app.notify_url.as_ref().map(NotifyUrl::as_str), n),
        (Some(old.as_str()), 0)
    );

    let t = t0() + Duration::hours(1);
    let rows = enqueue(store, &seeded, "NU", 3, t).await;
    assert!(rows.iter().all(|r| r.url == old));
    let claimed = store
        .claim_due_notifications("w1", t, lease(), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 3);
    let a = attempt(t, Some(200), None);
    for (row, outcome) in [
        (&rows[1], AttemptOutcome::Delivered),
        (&rows[2], AttemptOutcome::Failed),
    ] {
        assert!(
            store
                .record_notification_attempt(&row.notify_id, "w1", &a, outcome)
                .await
                .unwrap()
        );
    }
    let own = paying_order(store, &seeded, "NU-own", 100, t0()).await;
    let mut n = new_notification(&own, NotifyType::PaySuccess, None);
    n.url = url("https://own.example.com/cb");
    let tr = OrderTransition::new(&[OrderState::Paying], OrderState::Success, t);
    store
        .transition_order_notify(&own.order_id, &tr, Some(&n))
        .await
        .unwrap()
        .unwrap();

    let new = "https://new.example.com/notify";
    let (app, readdressed) = store
        .update_app_settings(app_id, &set_url(Some(new)))
        .await
        .unwrap()
        .expect("app");
    assert_eq!(app.notify_url.as_ref().map(NotifyUrl::as_str), Some(new));
    assert_eq!(readdressed, 2, "the pending and the failed one");
    let url_of = async |id: &NotifyId| store.get_notification(id).await.unwrap().unwrap().url;
    assert_eq!(url_of(&rows[0].notify_id).await, new);
    assert_eq!(
        url_of(&rows[1].notify_id).await,
        old,
        "delivered: as it was"
    );
    assert_eq!(url_of(&rows[2].notify_id).await, new);
    assert_eq!(url_of(&n.notify_id).await, "https://own.example.com/cb");
    let pending = store
        .get_notification(&rows[0].notify_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        pending.lease_owner.as_deref(),
        Some("w1"),
        "the lease is kept"
    );

    let (app, readdressed) = store
        .update_app_settings(app_id, &set_url(None))
        .await
        .unwrap()
        .expect("app");
    assert_eq!((app.notify_url, readdressed), (None, 0));
    assert_eq!(
        url_of(&rows[0].notify_id).await,
        new,
        "removing readdresses nothing"
    );
}
