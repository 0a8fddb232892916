use cashdesk_channels::PaidInfo;
use cashdesk_core::time::parse_cn_datetime;
use cashdesk_core::{AppId, OrderId, OrderState, RefundId, RefundState};

use super::*;

fn app() -> AppId {
    AppId::parse("app0123456789abcdef").expect("app id")
}

fn paid_local(amount: i64) -> ReconOrder {
    ReconOrder {
        order_id: OrderId::generate(),
        app_id: app(),
        store_id: None,
        amount: Fen::from_stored(amount),
        state: OrderState::Success,
        transaction_id: Some("66210000000001".into()),
        pay_time: parse_cn_datetime("2026-12-06 12:00:00").unwrap(),
    }
}

fn refund_local(amount: i64) -> ReconRefund {
    ReconRefund {
        refund_id: RefundId::generate(),
        order_id: OrderId::generate(),
        app_id: app(),
        store_id: None,
        amount: Fen::from_stored(amount),
        state: RefundState::Success,
        channel_refund_id: Some("66210000000002".into()),
        finished_at: parse_cn_datetime("2026-12-06 13:00:00").unwrap(),
    }
}

fn paid_answer(amount: i64, transaction_id: &str) -> Answer {
    Answer::Status(ChannelOrderStatus::Paid(PaidInfo {
        transaction_id: transaction_id.into(),
        pay_time: parse_cn_datetime("2026-12-06 12:00:01").unwrap(),
        amount: Fen::from_stored(amount),
    }))
}

fn refund_answer(outcome: RefundOutcome, amount: Option<i64>) -> RefundStatus {
    RefundStatus {
        outcome,
        channel_refund_id: Some("66210000000002".into()),
        refund_amount: amount.map(Fen::from_stored),
        success_time: None,
    }
}

/// The refusal each adapter builds (lakala, alipay, wechat v2 and v3 all
/// use this wording after their own path or method).
fn refusal(what: &str, channel: i64, order: i64) -> ChannelError {
    ChannelError::bad_response(format!(
        "{what}: paid amount {channel} fen differs from the order amount {order} fen"
    ))
}

#[test]
fn the_channels_amount_is_read_from_an_adapters_refusal() {
    assert_eq!(
        amount_in_refusal(&refusal(LAKALA_QUERY, 101, 100)),
        Some(Fen::from_stored(101))
    );
    assert_eq!(
        amount_in_refusal(&refusal("alipay.trade.query", 5, 6)),
        Some(Fen::from_stored(5))
    );
    // Other refusals are not amounts.
    for e in [
        ChannelError::bad_response("tradequery: answer has no trade_state"),
        ChannelError::bad_response("paid amount x fen differs from the order amount 1 fen"),
        ChannelError::bad_response("paid amount 1 fen differs from the order amount 1"),
        ChannelError::retryable(
            None,
            "paid amount 1 fen differs from the order amount 2 fen",
        ),
    ] {
        assert_eq!(amount_in_refusal(&e), None, "{e}");
    }
}

const LAKALA_QUERY: &str = cashdesk_channels::lakala::QUERY_PATH;

#[test]
fn a_paid_order_the_channel_confirms_matches() {
    let local = paid_local(100);
    let mut t = Tally::default();
    assert_eq!(
        paid_order(&local, paid_answer(100, "66210000000001"), &mut t),
        None
    );
    assert_eq!(
        (t.totals.lines, t.totals.matched, t.totals.paid),
        (1, 1, 100)
    );
    // Refunded since: still the same payment.
    let refunded = Answer::Status(ChannelOrderStatus::Refunded(PaidInfo {
        transaction_id: "66210000000001".into(),
        pay_time: local.pay_time,
        amount: local.amount,
    }));
    assert_eq!(paid_order(&local, refunded, &mut t), None);
    assert_eq!(t.totals.matched, 2);
    // Booked on the order's app (no store) for the daily statement.
    let booked = &t.statement[&(app().as_str().to_owned(), String::new())];
    assert_eq!((booked.payments, booked.gross, booked.refunds), (2, 200, 0));
}

#[test]
fn a_paid_order_the_channel_took_another_amount_for_is_an_amount_mismatch() {
    let local = paid_local(100);
    let mut t = Tally::default();
    let e = refusal(LAKALA_QUERY, 101, 100);
    let answer = Answer::AmountDiffers {
        channel: amount_in_refusal(&e).unwrap(),
        message: e.to_string(),
    };
    let f = paid_order(&local, answer, &mut t).expect("finding");
    assert_eq!(f.kind, FindingKind::AmountMismatch);
    assert_eq!(f.subject, order_subject(local.order_id.as_str()));
    assert_eq!(
        (f.channel_amount, f.local_amount),
        (Some(Fen::from_stored(101)), Some(Fen::from_stored(100)))
    );
    assert!(
        f.evidence["query"]["refusal"]
            .as_str()
            .is_some_and(|m| m.contains("differs")),
        "{}",
        f.evidence
    );
    assert_eq!(
        (t.totals.lines, t.totals.matched, t.totals.paid),
        (1, 0, 101)
    );
}

#[test]
fn a_paid_order_the_channel_does_not_have_paid_is_local_only() {
    for status in [
        ChannelOrderStatus::NotFound,
        ChannelOrderStatus::Closed,
        ChannelOrderStatus::NotPaid,
        ChannelOrderStatus::Unknown {
            state: "ODD".into(),
        },
    ] {
        let local = paid_local(100);
        let mut t = Tally::default();
        let f = paid_order(&local, Answer::Status(status.clone()), &mut t).expect("finding");
        assert_eq!(f.kind, FindingKind::LocalOnly, "{status:?}");
        assert_eq!(f.status, FindingStatus::Open);
        assert_eq!(f.channel_amount, None);
        assert_eq!(
            t.totals,
            Totals::default(),
            "not a trade the channel confirmed"
        );
        assert!(t.statement.is_empty());
    }
}

#[test]
fn another_transaction_for_a_paid_order_is_a_state_mismatch() {
    let local = paid_local(100);
    let mut t = Tally::default();
    let f = paid_order(&local, paid_answer(100, "66219999999999"), &mut t).expect("finding");
    assert_eq!(f.kind, FindingKind::StateMismatch);
    assert!(f.detail.contains("66219999999999"), "{}", f.detail);
}

#[test]
fn refunds_match_or_are_reported() {
    let local = refund_local(40);
    let mut t = Tally::default();
    let ok = refund_answer(RefundOutcome::Success, Some(40));
    assert_eq!(refund(&local, Some(&ok), &mut t), None);
    assert_eq!(
        (t.totals.lines, t.totals.matched, t.totals.refunded),
        (1, 1, 40)
    );
    let booked = &t.statement[&(app().as_str().to_owned(), String::new())];
    assert_eq!(
        (booked.refunds, booked.refunded, booked.payments),
        (1, 40, 0)
    );

    let mut t = Tally::default();
    let more = refund_answer(RefundOutcome::Success, Some(41));
    let f = refund(&local, Some(&more), &mut t).expect("finding");
    assert_eq!(f.kind, FindingKind::RefundAmountMismatch);
    assert_eq!(f.subject, refund_subject(local.refund_id.as_str()));
    assert_eq!(f.channel_amount, Some(Fen::from_stored(41)));
    assert_eq!(
        (t.totals.lines, t.totals.matched, t.totals.refunded),
        (1, 0, 41)
    );

    for answer in [
        None,
        Some(refund_answer(RefundOutcome::Processing, None)),
        Some(refund_answer(RefundOutcome::Closed, Some(40))),
    ] {
        let mut t = Tally::default();
        let f = refund(&local, answer.as_ref(), &mut t).expect("finding");
        assert_eq!(f.kind, FindingKind::RefundLocalOnly, "{answer:?}");
        assert_eq!(t.totals, Totals::default());
        assert!(t.statement.is_empty());
    }
}
