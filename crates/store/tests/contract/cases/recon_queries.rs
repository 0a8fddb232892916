//! The reads of reconciliation by queries (channels without a bill file).

use super::*;

/// An order created at `at` that went to the seeded channel, then moved
/// to `state` (`PAYING` stays there).
async fn sent_order(
    store: &dyn Store,
    seeded: &(App, ChannelConfig, Channel),
    out_trade_no: &str,
    at: DateTime<Utc>,
    state: OrderState,
) -> Order {
    let (a, c, ch) = seeded;
    let mut o = new_order(&a.app_id, out_trade_no);
    o.created_at = at;
    o.expire_at = at + Duration::hours(2);
    let o = new_or_panic(store.insert_order(&o).await.unwrap());
    let mut t = OrderTransition::new(&[OrderState::Created], OrderState::Paying, at);
    t.channel = Some(order_channel(c, ch));
    let o = store
        .transition_order(&o.order_id, &t)
        .await
        .unwrap()
        .unwrap();
    if state == OrderState::Paying {
        return o;
    }
    let mut t = OrderTransition::new(&[OrderState::Paying], state, at);
    if state == OrderState::Success {
        t.transaction_id = Some(format!("tx-{out_trade_no}"));
        t.pay_time = Some(at);
    }
    store
        .transition_order(&o.order_id, &t)
        .await
        .unwrap()
        .unwrap()
}

pub async fn recon_unpaid_sent_orders_are_the_unpaid_ones_that_went_to_the_config(db: &TestDb) {
    let store = &*db.store;
    let seeded = seed(store).await;
    let (from, to) = (t0() - Duration::hours(1), t0() + Duration::hours(1));
    let paying = sent_order(store, &seeded, "RQ-PAYING", t0(), OrderState::Paying).await;
    let closed = sent_order(store, &seeded, "RQ-CLOSED", t0(), OrderState::Closed).await;
    let failed = sent_order(store, &seeded, "RQ-FAILED", from, OrderState::Failed).await;
    // Paid, created outside the window, or never sent: not listed.
    sent_order(store, &seeded, "RQ-PAID", t0(), OrderState::Success).await;
    sent_order(store, &seeded, "RQ-LATE", to, OrderState::Paying).await;
    sent_order(
        store,
        &seeded,
        "RQ-EARLY",
        from - Duration::microseconds(1),
        OrderState::Paying,
    )
    .await;
    let mut never_sent = new_order(&seeded.0.app_id, "RQ-CREATED");
    never_sent.created_at = t0();
    new_or_panic(store.insert_order(&never_sent).await.unwrap());
    // Another config's order.
    let other = config(true);
    store.insert_channel_config(&other).await.unwrap();
    let other_ch = channel(&other, 10, true);
    store.insert_channel(&other_ch).await.unwrap();
    sent_order(
        store,
        &(seeded.0.clone(), other, other_ch),
        "RQ-OTHER",
        t0(),
        OrderState::Paying,
    )
    .await;

    let listed = store
        .recon_unpaid_sent_orders(&seeded.1.config_id, from, to)
        .await
        .unwrap();
    let mut ids: Vec<&str> = listed.iter().map(|o| o.out_trade_no.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["RQ-CLOSED", "RQ-FAILED", "RQ-PAYING"]);
    // Whole orders, with the channel they went to.
    let got = listed
        .iter()
        .find(|o| o.order_id == paying.order_id)
        .unwrap();
    assert_eq!(got, &paying);
    assert!(listed.iter().any(|o| o.order_id == closed.order_id));
    assert!(listed.iter().any(|o| o.order_id == failed.order_id));
    assert!(
        listed
            .iter()
            .all(|o| o.channel.as_ref().map(|c| &c.config_id) == Some(&seeded.1.config_id))
    );
}
