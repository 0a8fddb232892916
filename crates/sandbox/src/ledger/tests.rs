//! Unit tests of the order book: its rules, expiry, the cap and the
//! journal (replay and compaction).

use super::*;

fn order(no: &str, fp: &str) -> Order {
    let now = Utc::now();
    Order {
        mch_id: "1900000001".into(),
        appid: "wx1".into(),
        out_trade_no: no.into(),
        api: Api::V3,
        trade_type: TradeType::Native,
        description: "d".into(),
        total: 100,
        openid: None,
        attach: None,
        notify_url: "http://x/n".into(),
        prepay_id: new_prepay_id(now),
        created_at: now,
        expire_at: None,
        state: PayState::NotPay,
        refunded: 0,
        fingerprint: fp.into(),
        ext: OrderExt::None,
    }
}

fn refund(no: &str, amount: i64) -> NewRefund {
    NewRefund {
        mch_id: "1900000001".into(),
        order: OrderRef::OutTradeNo("o1".into()),
        out_refund_no: no.into(),
        amount,
        total: 100,
        reason: None,
        notify_url: None,
        api: Api::V3,
    }
}

#[test]
fn order_rules() {
    let l = Ledger::default();
    let now = Utc::now();
    let first = l.create_order(order("o1", "a"), now).unwrap();
    assert_eq!(
        l.create_order(order("o1", "a"), now).unwrap().prepay_id,
        first.prepay_id
    );
    assert_eq!(
        l.create_order(order("o1", "b"), now).unwrap_err(),
        LedgerError::OutTradeNoUsed
    );
    assert_eq!(
        l.refund(refund("r0", 1), now).unwrap_err(),
        LedgerError::TradeState
    );
    l.pay("1900000001", "o1", true, None, now).unwrap();
    assert_eq!(
        l.create_order(order("o1", "a"), now).unwrap_err(),
        LedgerError::OrderPaid
    );
    assert_eq!(
        l.pay("1900000001", "o1", true, None, now).unwrap_err(),
        LedgerError::OrderPaid
    );
    assert_eq!(
        l.close("1900000001", "o1", now).unwrap_err(),
        LedgerError::OrderPaid
    );

    let (r1, o, new) = l.refund(refund("r1", 60), now).unwrap();
    assert!(new);
    assert_eq!(o.refunded, 60);
    assert_eq!(o.trade_state(now), "REFUND");
    let (again, _, new) = l.refund(refund("r1", 60), now).unwrap();
    assert!(!new);
    assert_eq!(again.refund_id, r1.refund_id);
    assert_eq!(
        l.refund(refund("r1", 50), now).unwrap_err(),
        LedgerError::RefundMismatch
    );
    assert_eq!(
        l.refund(refund("r2", 41), now).unwrap_err(),
        LedgerError::NotEnough
    );
    let mut wrong_total = refund("r2", 1);
    wrong_total.total = 99;
    assert_eq!(
        l.refund(wrong_total, now).unwrap_err(),
        LedgerError::TotalMismatch
    );
    l.refund(refund("r2", 40), now).unwrap();
    assert_eq!(
        l.refund(refund("r3", 1), now).unwrap_err(),
        LedgerError::NotEnough
    );
    assert_eq!(l.refunds_of("1900000001", "o1").len(), 2);
}

#[test]
fn close_and_expiry() {
    let l = Ledger::default();
    let now = Utc::now();
    l.create_order(order("o2", "a"), now).unwrap();
    l.close("1900000001", "o2", now).unwrap();
    assert_eq!(
        l.close("1900000001", "o2", now).unwrap_err(),
        LedgerError::OrderClosed
    );
    assert_eq!(
        l.pay("1900000001", "o2", true, None, now).unwrap_err(),
        LedgerError::OrderClosed
    );
    let mut o = order("o3", "a");
    o.expire_at = Some(now - chrono::Duration::seconds(1));
    l.create_order(o, now - chrono::Duration::seconds(10))
        .unwrap();
    assert_eq!(
        l.pay("1900000001", "o3", true, None, now).unwrap_err(),
        LedgerError::OrderClosed
    );
}

#[test]
fn the_oldest_orders_go_at_the_cap_with_their_refunds() {
    let l = Ledger::in_memory(2);
    let now = Utc::now();
    l.create_order(order("o1", "a"), now).unwrap();
    let paid = l.pay("1900000001", "o1", true, None, now).unwrap();
    l.refund(refund("r1", 10), now).unwrap();
    l.create_order(order("o2", "a"), now).unwrap();
    assert_eq!(l.order_count(), 2);
    l.create_order(order("o3", "a"), now).unwrap();
    assert_eq!(l.order_count(), 2);
    let mch = "1900000001";
    assert!(l.find(mch, &OrderRef::OutTradeNo("o1".into())).is_none());
    let (transaction_id, _, _) = paid.paid().unwrap();
    assert!(
        l.find(mch, &OrderRef::TransactionId(transaction_id.to_owned()))
            .is_none()
    );
    assert!(l.find_refund(mch, "r1").is_none());
    assert!(l.find_any("o1").is_empty());
    assert_eq!(l.find_any("o3").len(), 1);
    assert!(l.find_by_prepay(&paid.prepay_id).is_none());
}

#[test]
fn the_book_is_replayed_from_its_journal_and_compacted() {
    let dir = tempfile::tempdir().unwrap();
    let now = Utc::now();
    let mch = "1900000001";
    {
        let (l, processing) = Ledger::open(dir.path(), 100).unwrap();
        assert!(processing.is_empty());
        l.create_order(order("o1", "a"), now).unwrap();
        l.pay(mch, "o1", true, None, now).unwrap();
        l.refund(refund("r1", 10), now).unwrap();
        l.refund(refund("r2", 20), now).unwrap();
        l.complete_refund(mch, "r1", now).unwrap();
        l.create_order(order("o2", "a"), now).unwrap();
        l.close(mch, "o2", now).unwrap();
        l.flush();
    }
    let (l, processing) = Ledger::open(dir.path(), 100).unwrap();
    let o1 = l.find(mch, &OrderRef::OutTradeNo("o1".into())).unwrap();
    assert_eq!((o1.trade_state(now), o1.refunded), ("REFUND", 30));
    assert_eq!(
        l.find_refund(mch, "r1").unwrap().status,
        RefundStatus::Success
    );
    assert_eq!(
        processing
            .iter()
            .map(|r| r.out_refund_no.as_str())
            .collect::<Vec<_>>(),
        ["r2"]
    );
    let o2 = l.find(mch, &OrderRef::OutTradeNo("o2".into())).unwrap();
    assert_eq!(o2.trade_state(now), "CLOSED");
    assert_eq!(l.refunds_of(mch, "o1").len(), 2);
    // Rules still hold after the replay.
    assert_eq!(
        l.refund(refund("r3", 71), now).unwrap_err(),
        LedgerError::NotEnough
    );
    // A smaller cap replays the newest orders only.
    drop(l);
    let (l, _) = Ledger::open(dir.path(), 1).unwrap();
    assert!(l.find(mch, &OrderRef::OutTradeNo("o1".into())).is_none());
    assert!(l.find(mch, &OrderRef::OutTradeNo("o2".into())).is_some());
    assert!(l.find_refund(mch, "r1").is_none());
}

#[test]
fn a_growing_journal_is_compacted() {
    let dir = tempfile::tempdir().unwrap();
    let now = Utc::now();
    let (l, _) = Ledger::open(dir.path(), 10).unwrap();
    for i in 0..(COMPACT_SLACK as usize + 100) {
        l.create_order(order(&format!("o{i}"), "a"), now).unwrap();
    }
    l.flush();
    let lines = std::fs::read_to_string(dir.path().join("ledger.jsonl"))
        .unwrap()
        .lines()
        .count() as u64;
    assert!(lines <= 2 * 10 + COMPACT_SLACK, "{lines}");
    assert_eq!(l.order_count(), 10);
}
