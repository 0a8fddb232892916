//! Corrupt rows are errors, never panics.

use super::*;

fn raw_order() -> RawOrder {
    let t = Ts(DateTime::from_timestamp_micros(1_700_000_000_000_000).unwrap());
    RawOrder {
        order_id: OrderId::generate().to_string(),
        app_id: "app-1".into(),
        out_trade_no: "T1".into(),
        amount: 100,
        order_title: "t".into(),
        goods_desc: "g".into(),
        third_party_user: "u".into(),
        notify_url: None,
        return_url: None,
        store_id: None,
        attach: None,
        client_ip: None,
        token: "tok".into(),
        expire_at: t,
        request_hash: "h".into(),
        response: "{}".into(),
        state: "CREATED".into(),
        channel_id: None,
        channel_type: None,
        config_id: None,
        mch_id: None,
        scene_code: None,
        transaction_id: None,
        pay_time: None,
        refunded_amount: 0,
        result_error_code: None,
        result_error_msg: None,
        paid_after_close: false,
        created_at: t,
        updated_at: t,
        next_query_at: None,
        query_attempts: 0,
        store_identity_sealed: None,
    }
}

fn is_corrupt(r: Result<Order, StoreError>) -> bool {
    matches!(r, Err(StoreError::Corrupt(_)))
}

#[test]
fn a_good_row_parses() {
    let order = Order::try_from(raw_order()).unwrap();
    assert_eq!(order.state, OrderState::Created);
    assert_eq!(order.amount, Fen::from_stored(100));
    assert_eq!(order.store_id, None);
}

#[test]
fn bad_values_are_corrupt_not_panics() {
    let cases: Vec<fn(&mut RawOrder)> = vec![
        |r| r.state = "DONE".into(),
        |r| r.order_id = "X123".into(),
        |r| r.app_id = "".into(),
        |r| r.out_trade_no = "a b".into(),
        |r| r.amount = 0,
        |r| r.refunded_amount = -1,
        |r| r.refunded_amount = 101,
        |r| r.response = "{not json".into(),
        |r| r.store_id = Some("bad store".into()),
        |r| r.channel_id = Some(ChannelId::generate().to_string()),
        |r| r.query_attempts = -1,
    ];
    for (i, mutate) in cases.into_iter().enumerate() {
        let mut r = raw_order();
        mutate(&mut r);
        assert!(is_corrupt(Order::try_from(r)), "case {i} was accepted");
    }
}

#[test]
fn empty_store_id_is_every_store() {
    assert_eq!(store_id("x", Some(String::new())).unwrap(), None);
    assert_eq!(store_id("x", None).unwrap(), None);
    assert_eq!(
        store_id("x", Some("s1".into())).unwrap(),
        Some(StoreId::parse("s1").unwrap())
    );
}
