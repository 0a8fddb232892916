//! The database's rules with a clock of our own: reuse window, settlement
//! once, payment after close.

use super::*;

async fn db() -> (Db, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = Db::open(&dir.path().join("shop.db")).await.expect("open");
    db.add_goods("g", "Goods", 100, 5).await.expect("goods");
    (db, dir)
}

fn new_order(user: &str, qty: i64, now: i64) -> NewOrder<'_> {
    NewOrder {
        user_id: user,
        openid: user,
        goods_id: "g",
        qty,
        now,
        reuse_secs: 7 * 86_400,
    }
}

async fn reserve(db: &Db, new: &NewOrder<'_>) -> Reservation {
    db.find_or_reserve(new, |id, amount, _| {
        format!("{{\"outTradeNo\":\"{id}\",\"amount\":{amount}}}")
    })
    .await
    .expect("reserve")
}

async fn stock(db: &Db) -> (i64, i64) {
    let g = db.goods("g").await.expect("read").expect("goods");
    (g.stock, g.reserved)
}

#[tokio::test]
async fn pending_order_is_reused_for_seven_days_then_stale() {
    let (db, _dir) = db().await;
    let t0 = 1_700_000_000;
    let Reservation::New(first) = reserve(&db, &new_order("u", 2, t0)).await else {
        panic!("a new order");
    };
    assert_eq!(first.amount, 200);
    assert!(first.gateway_request.contains(&first.order_id));
    let just_before = t0 + 7 * 86_400 - 1;
    match reserve(&db, &new_order("u", 2, just_before)).await {
        Reservation::Reused(o) => assert_eq!(o.order_id, first.order_id),
        other => panic!("reused expected: {other:?}"),
    }
    match reserve(&db, &new_order("u", 3, just_before)).await {
        Reservation::OtherQty(o) => assert_eq!(o.order_id, first.order_id),
        other => panic!("other quantity expected: {other:?}"),
    }
    match reserve(&db, &new_order("u", 2, t0 + 7 * 86_400)).await {
        Reservation::Stale(o) => assert_eq!(o.order_id, first.order_id),
        other => panic!("stale expected: {other:?}"),
    }
    assert_eq!(stock(&db).await, (5, 2));
    // Another user has an order of their own; the stock is shared.
    assert!(matches!(
        reserve(&db, &new_order("v", 3, t0)).await,
        Reservation::New(_)
    ));
    assert!(matches!(
        reserve(&db, &new_order("w", 1, t0)).await,
        Reservation::OutOfStock { available: 0 }
    ));
    assert_eq!(stock(&db).await, (5, 5));
}

#[tokio::test]
async fn settlement_moves_stock_once() {
    let (db, _dir) = db().await;
    let Reservation::New(o) = reserve(&db, &new_order("u", 2, 1)).await else {
        panic!("a new order");
    };
    let paid = Outcome::Paid {
        gateway_order_id: "P1".into(),
        transaction_id: Some("42".into()),
    };
    let n = |id| Notified {
        notify_id: id,
        notify_type: "PAY_SUCCESS",
    };
    assert!(
        db.settle(&o.order_id, &paid, 2, Some(n("N1")))
            .await
            .expect("settle")
    );
    assert!(
        !db.settle(&o.order_id, &paid, 3, Some(n("N1")))
            .await
            .expect("settle")
    );
    let closed = Outcome::Closed {
        gateway_order_id: None,
    };
    assert!(
        !db.settle(&o.order_id, &closed, 4, None)
            .await
            .expect("settle")
    );
    assert_eq!(stock(&db).await, (3, 0));
    assert_eq!(db.notification("N1").await.expect("log"), Some((2, true)));
    let o = db.order(&o.order_id).await.expect("read").expect("order");
    assert_eq!((o.state.as_str(), o.settled_at), (PAID, Some(2)));
    assert_eq!(o.transaction_id.as_deref(), Some("42"));
}

#[tokio::test]
async fn payment_after_close_takes_stock_only_and_is_flagged() {
    let (db, _dir) = db().await;
    let Reservation::New(o) = reserve(&db, &new_order("u", 2, 1)).await else {
        panic!("a new order");
    };
    let closed = Outcome::Closed {
        gateway_order_id: Some("P1".into()),
    };
    assert!(
        db.settle(&o.order_id, &closed, 2, None)
            .await
            .expect("settle")
    );
    assert_eq!(stock(&db).await, (5, 0));
    let paid = Outcome::Paid {
        gateway_order_id: "P1".into(),
        transaction_id: None,
    };
    assert!(
        db.settle(&o.order_id, &paid, 3, None)
            .await
            .expect("settle")
    );
    assert_eq!(stock(&db).await, (3, 0));
    let o = db.order(&o.order_id).await.expect("read").expect("order");
    assert!(o.paid_after_close);
    assert_eq!(o.state, PAID);
    // A new buy-now after the close makes a new order.
    assert!(matches!(
        reserve(&db, &new_order("u", 2, 4)).await,
        Reservation::New(_)
    ));
}
