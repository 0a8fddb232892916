//! The console's reads: an order's timeline events, and the dashboard's
//! figures by channel, app, store and day within an app scope.

use cashdesk_core::{RefundId, RefundState};
use cashdesk_store::{
    EventOutcome, InitialRefundState, MAX_SUMMARY_BYTES, NewOrderEvent, OrderEventKind,
    RefundInsert, RefundTransition, StatsLine, StatsWindow,
};
use chrono::NaiveDate;

use super::*;

fn event(order: &OrderId, at: DateTime<Utc>, operation: &str) -> NewOrderEvent {
    NewOrderEvent {
        order_id: order.clone(),
        refund_id: None,
        at,
        kind: OrderEventKind::ChannelCall,
        operation: operation.into(),
        outcome: EventOutcome::Ok,
        latency_ms: Some(42),
        summary: json!({"tradeState": "SUCCESS", "中": "文"}),
    }
}

/// A refund of `amount` fen on `order` that succeeded at `finished`.
async fn refunded(
    store: &dyn Store,
    order: &Order,
    no: &str,
    amount: i64,
    finished: DateTime<Utc>,
) -> RefundId {
    let r = match store
        .insert_refund(
            &new_refund(order, no, amount),
            InitialRefundState::Processing,
        )
        .await
        .unwrap()
    {
        RefundInsert::New(r) => r,
        other => panic!("expected New, got {other:?}"),
    };
    let mut t = RefundTransition::new(&[RefundState::Processing], RefundState::Success, finished);
    t.finished_at = Some(finished);
    store
        .transition_refund(&r.refund_id, &t, None)
        .await
        .unwrap()
        .unwrap();
    r.refund_id
}

pub async fn order_events_are_listed_in_time_order_and_pruned(db: &TestDb) {
    let store = &*db.store;
    let seeded = seed(store).await;
    let order = paid_order(store, &seeded, "EV-1", 1000).await;
    let other = paid_order(store, &seeded, "EV-2", 1000).await;
    let refund = refunded(store, &order, "EV-R1", 100, t0()).await;
    let s = |n: i64| t0() + Duration::seconds(n);

    // Inserted out of time order; a refund's event belongs to its order.
    let second = event(&order.order_id, s(2), "query");
    let first = NewOrderEvent {
        kind: OrderEventKind::ChannelNotify,
        outcome: EventOutcome::Refused,
        latency_ms: None,
        summary: json!({"reason": "amount differs"}),
        ..event(&order.order_id, s(1), "notify")
    };
    let third = NewOrderEvent {
        refund_id: Some(refund.clone()),
        kind: OrderEventKind::State,
        ..event(&order.order_id, s(3), "refund")
    };
    for e in [
        &second,
        &first,
        &third,
        &event(&other.order_id, s(0), "pay"),
    ] {
        store.insert_order_event(e).await.unwrap();
    }
    let listed = store.list_order_events(&order.order_id, 0).await.unwrap();
    let got: Vec<NewOrderEvent> = listed
        .iter()
        .map(|r| NewOrderEvent {
            order_id: r.order_id.clone(),
            refund_id: r.refund_id.clone(),
            at: r.at,
            kind: r.kind,
            operation: r.operation.clone(),
            outcome: r.outcome,
            latency_ms: r.latency_ms,
            summary: r.summary.clone(),
        })
        .collect();
    assert_eq!(got, [first.clone(), second.clone(), third.clone()]);
    assert!(listed.windows(2).all(|w| w[0].id != w[1].id));
    // Bounded: the first ones.
    let two = store.list_order_events(&order.order_id, 2).await.unwrap();
    assert_eq!(two.iter().map(|e| e.at).collect::<Vec<_>>(), [s(1), s(2)]);

    // A summary too large is kept as a marker, not refused.
    let big = NewOrderEvent {
        summary: json!({"message": "x".repeat(MAX_SUMMARY_BYTES)}),
        ..event(&other.order_id, s(5), "query")
    };
    store.insert_order_event(&big).await.unwrap();
    let kept = store.list_order_events(&other.order_id, 0).await.unwrap();
    assert_eq!(kept.len(), 2);
    assert_eq!(kept[1].summary["truncated"], true);

    // An unknown order is refused.
    let unknown = event(&OrderId::generate(), s(0), "pay");
    assert!(matches!(
        store.insert_order_event(&unknown).await,
        Err(StoreError::NotFound(_))
    ));

    // Pruning deletes what is older than the cut, in bounded batches.
    assert_eq!(store.prune_order_events(s(2), 1).await.unwrap(), 1);
    assert_eq!(store.prune_order_events(s(2), 10).await.unwrap(), 1);
    assert_eq!(store.prune_order_events(s(2), 10).await.unwrap(), 0);
    let left = store.list_order_events(&order.order_id, 0).await.unwrap();
    assert_eq!(left.iter().map(|e| e.at).collect::<Vec<_>>(), [s(2), s(3)]);
    assert_eq!(
        store
            .list_order_events(&other.order_id, 0)
            .await
            .unwrap()
            .len(),
        1
    );
}

/// An order of `app` created at `at`, sent to the seeded channel and,
/// with `paid`, paid.
async fn order_at(
    store: &dyn Store,
    seeded: &(App, ChannelConfig, Channel),
    app: &AppId,
    no: &str,
    at: DateTime<Utc>,
    paid: Option<i64>,
) -> Order {
    let (_, c, ch) = seeded;
    let mut o = new_order(app, no);
    o.created_at = at;
    o.expire_at = at + Duration::hours(2);
    if let Some(amount) = paid {
        o.amount = Fen::parse_positive("amount", amount).unwrap();
    }
    let o = new_or_panic(store.insert_order(&o).await.unwrap());
    let mut t = OrderTransition::new(&[OrderState::Created], OrderState::Paying, at);
    t.channel = Some(order_channel(c, ch));
    let o = store
        .transition_order(&o.order_id, &t)
        .await
        .unwrap()
        .unwrap();
    if paid.is_none() {
        return o;
    }
    let mut t = OrderTransition::new(&[OrderState::Paying], OrderState::Success, at);
    t.transaction_id = Some(format!("tx-{no}"));
    t.pay_time = Some(at + Duration::hours(10));
    store
        .transition_order(&o.order_id, &t)
        .await
        .unwrap()
        .unwrap()
}

fn line(orders: u64, paid: u64, paid_amount: i64, refunds: u64, refunded: i64) -> StatsLine {
    StatsLine {
        orders,
        paid,
        paid_amount: Fen::from_stored(paid_amount),
        refunds,
        refunded_amount: Fen::from_stored(refunded),
    }
}

pub async fn dashboard_stats_by_channel_app_store_and_day(db: &TestDb) {
    let store = &*db.store;
    let seeded = seed(store).await;
    let app1 = seeded.0.app_id.clone();
    let app2 = app_id("app-2");
    store.insert_app(&app("app-2")).await.unwrap();
    // t0 is 2024-05-01 16:30 in China; the window is the 7 China days up
    // to 2024-05-02.
    let next_day = t0() + Duration::days(1);
    let window = StatsWindow::last_days(7, next_day);

    // 05-01: app-1 paid 1000 (paid the next day: counts on its day of
    // creation) and one unpaid, both of store s1; app-2 paid 500.
    let paid1 = order_at(store, &seeded, &app1, "D-1", t0(), Some(1000)).await;
    order_at(store, &seeded, &app1, "D-2", t0(), None).await;
    order_at(store, &seeded, &app2, "D-3", t0(), Some(500)).await;
    // 05-02: app-1, no store, never sent to a channel.
    let mut o = new_order(&app1, "D-4");
    o.created_at = next_day;
    o.store_id = None;
    new_or_panic(store.insert_order(&o).await.unwrap());
    // Outside the window: 8 days before, and just at its end.
    order_at(
        store,
        &seeded,
        &app1,
        "D-OLD",
        window.from - Duration::microseconds(1),
        Some(70),
    )
    .await;
    order_at(store, &seeded, &app1, "D-NEW", window.to, Some(80)).await;
    // A refund of app-1's payment that succeeded on 05-02, and one outside.
    refunded(store, &paid1, "D-R1", 300, next_day).await;
    refunded(store, &paid1, "D-R2", 10, window.to).await;

    let stats = store.dashboard_stats(window, None).await.unwrap();
    assert_eq!(stats.window, window);
    assert_eq!(stats.totals, line(4, 2, 1500, 1, 300));
    assert_eq!(stats.totals.success_rate(), Some(0.5));
    let channels: Vec<_> = stats
        .by_channel
        .iter()
        .map(|c| (c.channel_type, c.line))
        .collect();
    assert_eq!(
        channels,
        [
            (Some(ChannelType::WxPay), line(3, 2, 1500, 1, 300)),
            (None, line(1, 0, 0, 0, 0)),
        ]
    );
    let apps: Vec<_> = stats
        .by_app
        .iter()
        .map(|a| (a.app_id.clone(), a.line))
        .collect();
    assert_eq!(
        apps,
        [
            (app1.clone(), line(3, 1, 1000, 1, 300)),
            (app2.clone(), line(1, 1, 500, 0, 0)),
        ]
    );
    let stores: Vec<_> = stats
        .by_store
        .iter()
        .map(|s| (s.app_id.clone(), s.store_id.clone(), s.line))
        .collect();
    assert_eq!(
        stores,
        [
            (app1.clone(), Some(store_id("s1")), line(2, 1, 1000, 1, 300)),
            (app2.clone(), Some(store_id("s1")), line(1, 1, 500, 0, 0)),
            (app1.clone(), None, line(1, 0, 0, 0, 0)),
        ]
    );
    let day = |d: u32| NaiveDate::from_ymd_opt(2024, 5, d).unwrap();
    assert_eq!(stats.days.len(), 7);
    assert_eq!(
        stats.days[0].day,
        NaiveDate::from_ymd_opt(2024, 4, 26).unwrap()
    );
    for d in &stats.days {
        let expected = if d.day == day(1) {
            line(3, 2, 1500, 0, 0)
        } else if d.day == day(2) {
            line(1, 0, 0, 1, 300)
        } else {
            StatsLine::default()
        };
        assert_eq!(d.line, expected, "{}", d.day);
    }

    // A merchant's view: only its apps.
    let scoped = store
        .dashboard_stats(window, Some(std::slice::from_ref(&app2)))
        .await
        .unwrap();
    assert_eq!(scoped.totals, line(1, 1, 500, 0, 0));
    assert_eq!(scoped.by_app.len(), 1);
    assert_eq!(scoped.by_app[0].app_id, app2);
    assert_eq!(scoped.by_store.len(), 1);
    let both = store
        .dashboard_stats(window, Some(&[app1.clone(), app2.clone()][..]))
        .await
        .unwrap();
    assert_eq!(both.totals, stats.totals);
    // An empty scope sees nothing, but still every day.
    let none = store.dashboard_stats(window, Some(&[][..])).await.unwrap();
    assert_eq!(none.totals, StatsLine::default());
    assert!(none.by_app.is_empty() && none.by_channel.is_empty());
    assert_eq!(none.days.len(), 7);
}
