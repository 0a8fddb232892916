//! What the console and the operator API search by: an app scope on every
//! listing a merchant sees (orders, refunds, notifications, bindings), the
//! order searches (ids, buyer, channel, creation time) and the audit log's
//! filters.

use cashdesk_core::RefundId;
use cashdesk_store::{
    AuditFilter, InitialRefundState, NotificationFilter, NotifyType, RefundFilter, RefundInsert,
};

use super::*;

/// A paid order of `seeded`'s app, with a refund and a notification.
async fn paid_with_refund_and_notification(
    store: &dyn Store,
    seeded: &(App, ChannelConfig, Channel),
    no: &str,
) -> (Order, RefundId) {
    let o = paid_order(store, seeded, no, 500).await;
    let r = match store
        .insert_refund(
            &new_refund(&o, &format!("R-{no}"), 100),
            InitialRefundState::Processing,
        )
        .await
        .unwrap()
    {
        RefundInsert::New(r) => r.refund_id,
        other => panic!("expected New, got {other:?}"),
    };
    let t = OrderTransition::new(&[OrderState::Success], OrderState::Success, t0());
    // A notification of the order, written as the outbox writes it.
    store
        .transition_order_notify(
            &o.order_id,
            &t,
            Some(&new_notification(&o, NotifyType::PaySuccess, None)),
        )
        .await
        .unwrap()
        .unwrap();
    (o, r)
}

pub async fn app_scopes_narrow_every_listing(db: &TestDb) {
    let store = &*db.store;
    let seeded_a = seed(store).await;
    let b = app("app-2");
    store.insert_app(&b).await.unwrap();
    let seeded_b = (b.clone(), seeded_a.1.clone(), seeded_a.2.clone());
    let a = seeded_a.0.app_id.clone();
    let b = b.app_id.clone();
    let (oa, ra) = paid_with_refund_and_notification(store, &seeded_a, "SA").await;
    tick().await;
    let (ob, rb) = paid_with_refund_and_notification(store, &seeded_b, "SB").await;
    for (app, ch) in [(&a, &seeded_a.2), (&b, &seeded_a.2)] {
        store
            .insert_binding(&binding(app, &ch.channel_id, None))
            .await
            .unwrap();
    }

    type Scope = Option<Vec<AppId>>;
    let scopes: [(Scope, Vec<&AppId>); 4] = [
        (None, vec![&b, &a]),
        (Some(vec![a.clone()]), vec![&a]),
        (Some(vec![a.clone(), b.clone()]), vec![&b, &a]),
        (Some(vec![]), vec![]),
    ];
    for (scope, apps) in scopes {
        let orders = store
            .list_orders(&OrderFilter {
                app_ids: scope.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
        let got: Vec<&AppId> = orders.iter().map(|o| &o.app_id).collect();
        assert_eq!(got, apps, "orders, scope {scope:?}");
        let refunds = store
            .list_refunds(&RefundFilter {
                app_ids: scope.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
        let got: Vec<&AppId> = refunds.iter().map(|r| &r.app_id).collect();
        assert_eq!(got, apps, "refunds, scope {scope:?}");
        let notes = store
            .list_notifications(&NotificationFilter {
                app_ids: scope.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
        let got: Vec<&AppId> = notes.iter().map(|n| &n.app_id).collect();
        assert_eq!(got, apps, "notifications, scope {scope:?}");
        let bindings = store
            .list_bindings(&BindingFilter {
                app_ids: scope.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
        let mut got: Vec<&AppId> = bindings.iter().map(|b| &b.app_id).collect();
        got.sort_by_key(|a| a.as_str());
        let mut want = apps.clone();
        want.sort_by_key(|a| a.as_str());
        assert_eq!(got, want, "bindings, scope {scope:?}");
    }

    // The scope holds against every other condition: naming another
    // app's order, refund or app finds nothing.
    let only_a = Some(vec![a.clone()]);
    assert!(
        store
            .list_orders(&OrderFilter {
                app_ids: only_a.clone(),
                order_id: Some(ob.order_id.clone()),
                ..Default::default()
            })
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .list_orders(&OrderFilter {
                app_ids: only_a.clone(),
                app_id: Some(b.clone()),
                ..Default::default()
            })
            .await
            .unwrap()
            .is_empty()
    );
    let refunds = store
        .list_refunds(&RefundFilter {
            app_ids: only_a.clone(),
            order_id: Some(ob.order_id.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(refunds.is_empty(), "{refunds:?}");
    let refunds = store
        .list_refunds(&RefundFilter {
            app_ids: only_a.clone(),
            order_id: Some(oa.order_id.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        refunds.iter().map(|r| &r.refund_id).collect::<Vec<_>>(),
        vec![&ra]
    );
    assert_ne!(ra, rb);
}

pub async fn list_orders_finds_by_ids_buyer_channel_and_time(db: &TestDb) {
    let store = &*db.store;
    let seeded = seed(store).await;
    let (a, c, ch) = &seeded;
    // Paid through the seeded channel, with a transaction id.
    let paid = paid_order(store, &seeded, "F-PAID", 100).await;
    tick().await;
    // Created an hour later by another buyer; never given a channel.
    let mut n = new_order(&a.app_id, "F-LATER");
    n.third_party_user = "buyer-2".into();
    n.created_at = t0() + Duration::hours(1);
    let later = new_or_panic(store.insert_order(&n).await.unwrap());

    let got = |f: OrderFilter| async move {
        store
            .list_orders(&f)
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.order_id)
            .collect::<Vec<_>>()
    };
    let p = || vec![paid.order_id.clone()];
    let l = || vec![later.order_id.clone()];
    let f = OrderFilter::default;
    assert_eq!(
        got(OrderFilter {
            order_id: Some(later.order_id.clone()),
            ..f()
        })
        .await,
        l()
    );
    assert_eq!(
        got(OrderFilter {
            transaction_id: Some("tx-F-PAID".into()),
            ..f()
        })
        .await,
        p()
    );
    assert!(
        got(OrderFilter {
            transaction_id: Some("tx-F".into()),
            ..f()
        })
        .await
        .is_empty(),
        "the whole id, not a part"
    );
    assert_eq!(
        got(OrderFilter {
            buyer_id: Some("buyer-2".into()),
            ..f()
        })
        .await,
        l()
    );
    assert_eq!(
        got(OrderFilter {
            channel_id: Some(ch.channel_id.clone()),
            ..f()
        })
        .await,
        p()
    );
    assert_eq!(
        got(OrderFilter {
            channel_type: Some(c.channel_type),
            ..f()
        })
        .await,
        p()
    );
    assert!(
        got(OrderFilter {
            channel_type: Some(ChannelType::AliPay),
            ..f()
        })
        .await
        .is_empty()
    );
    // Created in [from, to).
    assert_eq!(
        got(OrderFilter {
            created_from: Some(t0() + Duration::minutes(30)),
            ..f()
        })
        .await,
        l()
    );
    assert_eq!(
        got(OrderFilter {
            created_to: Some(t0() + Duration::hours(1)),
            ..f()
        })
        .await,
        p()
    );
    assert_eq!(
        got(OrderFilter {
            created_from: Some(t0()),
            created_to: Some(t0() + Duration::hours(1) + Duration::microseconds(1)),
            ..f()
        })
        .await,
        vec![later.order_id.clone(), paid.order_id.clone()]
    );
}

pub async fn audit_is_found_by_actor_action_target_and_time(db: &TestDb) {
    let store = &*db.store;
    let entry = |i: i64, actor: &str, action: &str, target: &str| AuditEntry {
        at: t0() + Duration::minutes(i),
        actor: actor.into(),
        action: action.into(),
        target: target.into(),
        detail: json!({ "i": i }),
        role: None,
        ip: None,
        before: None,
        after: None,
    };
    let entries = [
        entry(0, "alice", "refund.approve", "R1"),
        entry(1, "bob", "refund.reject", "R2"),
        entry(2, "alice", "binding.approve", "B1"),
        entry(3, "alice", "refund.approve", "R10"),
    ];
    for e in &entries {
        store.insert_audit(e).await.unwrap();
    }
    let got = |f: AuditFilter| async move {
        store
            .find_audit(&f)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.entry.detail["i"].as_i64().unwrap())
            .collect::<Vec<_>>()
    };
    let f = AuditFilter::default;
    assert_eq!(got(f()).await, vec![3, 2, 1, 0]);
    assert_eq!(
        got(AuditFilter {
            actor: Some("alice".into()),
            ..f()
        })
        .await,
        vec![3, 2, 0]
    );
    assert_eq!(
        got(AuditFilter {
            action_prefix: Some("refund.".into()),
            ..f()
        })
        .await,
        vec![3, 1, 0]
    );
    assert_eq!(
        got(AuditFilter {
            target_prefix: Some("R1".into()),
            ..f()
        })
        .await,
        vec![3, 0]
    );
    assert!(
        got(AuditFilter {
            action_prefix: Some("REFUND".into()),
            ..f()
        })
        .await
        .is_empty(),
        "case counts"
    );
    assert_eq!(
        got(AuditFilter {
            from: Some(t0() + Duration::minutes(1)),
            to: Some(t0() + Duration::minutes(3)),
            ..f()
        })
        .await,
        vec![2, 1]
    );
    // Pages by id.
    let first = store
        .find_audit(&AuditFilter { limit: 2, ..f() })
        .await
        .unwrap();
    assert_eq!(first.len(), 2);
    assert_eq!(first[0].entry, entries[3]);
    assert_eq!(
        got(AuditFilter {
            before: Some(first[1].id),
            ..f()
        })
        .await,
        vec![1, 0]
    );
}
