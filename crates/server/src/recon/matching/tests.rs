use cashdesk_channels::bill::{BillRecord, BillSummary, RecordKind};
use cashdesk_core::time::parse_cn_datetime;
use cashdesk_core::{AppId, Fen, FindingKind, OrderId, OrderState, RefundId, RefundState};
use cashdesk_store::{ReconOrder, ReconRefund};
use chrono::NaiveDate;

use super::*;

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, 6).unwrap()
}

fn app() -> AppId {
    AppId::parse("app0123456789abcdef").expect("app id")
}

fn order(amount: i64, paid_at: &str) -> ReconOrder {
    ReconOrder {
        order_id: OrderId::generate(),
        app_id: app(),
        store_id: None,
        amount: Fen::from_stored(amount),
        state: OrderState::Success,
        transaction_id: Some("4200000001".into()),
        pay_time: parse_cn_datetime(paid_at).unwrap(),
    }
}

fn refund(of: &ReconOrder, amount: i64, at: &str) -> ReconRefund {
    ReconRefund {
        refund_id: RefundId::generate(),
        order_id: of.order_id.clone(),
        app_id: app(),
        store_id: None,
        amount: Fen::from_stored(amount),
        state: RefundState::Success,
        channel_refund_id: Some("5030000001".into()),
        finished_at: parse_cn_datetime(at).unwrap(),
    }
}

fn pay_line(o: &ReconOrder, amount: i64, at: &str) -> BillRecord {
    BillRecord {
        kind: RecordKind::Payment,
        at: parse_cn_datetime(at).unwrap(),
        mch_id: "1900000109".into(),
        sub_mch_id: None,
        out_trade_no: o.order_id.to_string(),
        transaction_id: format!("42{}", o.order_id),
        out_refund_no: None,
        channel_refund_id: None,
        amount: Fen::from_stored(amount),
        state: "SUCCESS".into(),
        fee: Some("0.00600".into()),
        rate: Some("0.60%".into()),
    }
}

fn refund_line(r: &ReconRefund, amount: i64, at: &str) -> BillRecord {
    BillRecord {
        kind: RecordKind::Refund,
        at: parse_cn_datetime(at).unwrap(),
        mch_id: "1900000109".into(),
        sub_mch_id: None,
        out_trade_no: r.order_id.to_string(),
        transaction_id: "4200000001".into(),
        out_refund_no: Some(r.refund_id.to_string()),
        channel_refund_id: Some("5030000001".into()),
        amount: Fen::from_stored(amount),
        state: "SUCCESS".into(),
        fee: Some("-0.00600".into()),
        rate: Some("0.60%".into()),
    }
}

fn kinds(m: &Matcher) -> Vec<FindingKind> {
    m.findings.iter().map(|f| f.kind).collect()
}

#[test]
fn equal_lines_match_and_count_fees() {
    let o = order(100, "2026-12-06 12:00:00");
    let r = refund(&o, 40, "2026-12-06 13:00:00");
    let mut m = Matcher::new(day(), vec![o.clone()], vec![r.clone()], false);
    m.feed(pay_line(&o, 100, "2026-12-06 12:00:01"));
    m.feed(refund_line(&r, 40, "2026-12-06 13:00:00"));
    assert!(m.findings.is_empty());
    assert_eq!(m.totals.matched, 2);
    assert_eq!(m.totals.lines, 2);
    assert_eq!(
        (m.totals.paid, m.totals.refunded, m.totals.fee_e5),
        (100, 40, 0)
    );
    let (o_left, r_left) = m.unmatched_local();
    assert!(o_left.is_empty() && r_left.is_empty());
}

#[test]
fn an_amount_that_differs_is_a_finding_with_both_amounts() {
    let o = order(100, "2026-12-06 12:00:00");
    let r = refund(&o, 40, "2026-12-06 13:00:00");
    let mut m = Matcher::new(day(), vec![o.clone()], vec![r.clone()], false);
    m.feed(pay_line(&o, 101, "2026-12-06 12:00:01"));
    m.feed(refund_line(&r, 41, "2026-12-06 13:00:00"));
    assert_eq!(
        kinds(&m),
        [
            FindingKind::AmountMismatch,
            FindingKind::RefundAmountMismatch
        ]
    );
    let f = &m.findings[0];
    assert_eq!(f.subject, order_subject(o.order_id.as_str()));
    assert_eq!(f.channel_amount, Some(Fen::from_stored(101)));
    assert_eq!(f.local_amount, Some(Fen::from_stored(100)));
    assert_eq!(m.totals.matched, 0);
}

#[test]
fn a_line_the_window_lacks_is_left_for_a_lookup_and_a_local_payment_no_line_has_is_left_over() {
    let paid = order(100, "2026-12-06 12:00:00");
    let stranger = order(5, "2026-12-06 12:00:00");
    let mut m = Matcher::new(day(), vec![paid.clone()], vec![], false);
    m.feed(pay_line(&stranger, 5, "2026-12-06 12:00:00"));
    assert!(m.findings.is_empty());
    assert_eq!(m.unplaced_payments.len(), 1);
    let (left, _) = m.unmatched_local();
    assert_eq!(left, vec![paid]);
}

#[test]
fn payments_across_midnight_match_and_the_previous_day_is_explained() {
    // Paid locally at 23:59:59 on the 5th, booked by the channel on the 6th.
    let late = order(100, "2026-12-05 23:59:59");
    // Paid locally at 00:00:01 on the 7th, booked on the 6th.
    let early = order(200, "2026-12-07 00:00:01");
    // Paid on the 7th and not in this bill: not this day's concern.
    let tomorrow = order(300, "2026-12-07 10:00:00");
    let mut m = Matcher::new(
        day(),
        vec![late.clone(), early.clone(), tomorrow],
        vec![],
        false,
    );
    m.feed(pay_line(&late, 100, "2026-12-06 00:00:00"));
    m.feed(pay_line(&early, 200, "2026-12-06 23:59:59"));
    assert!(m.findings.is_empty());
    assert_eq!(m.totals.matched, 2);
    assert_eq!(
        m.explains_previous,
        vec![order_subject(late.order_id.as_str())]
    );
    let (left, _) = m.unmatched_local();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_line_that_is_not_a_success_is_a_state_mismatch() {
    let o = order(100, "2026-12-06 12:00:00");
    let mut m = Matcher::new(day(), vec![o.clone()], vec![], false);
    let mut line = pay_line(&o, 100, "2026-12-06 12:00:00");
    line.state = "REVOKED".into();
    m.feed(line);
    assert_eq!(kinds(&m), [FindingKind::StateMismatch]);
    assert_eq!(m.totals.paid, 0);
}

#[test]
fn a_summary_the_lines_do_not_add_up_to_is_a_finding() {
    let o = order(100, "2026-12-06 12:00:00");
    let mut m = Matcher::new(day(), vec![o.clone()], vec![], false);
    let before = m.totals.clone();
    m.feed(pay_line(&o, 100, "2026-12-06 12:00:00"));
    let right = BillSummary {
        count: 1,
        paid_total: Fen::from_stored(100),
        refund_total: Fen::ZERO,
    };
    m.check_summary("", &right, &before);
    assert!(m.findings.is_empty());
    let wrong = BillSummary {
        paid_total: Fen::from_stored(101),
        ..right
    };
    m.check_summary("", &wrong, &before);
    assert_eq!(kinds(&m), [FindingKind::SummaryMismatch]);
}

#[test]
fn overlapping_bills_count_a_line_once() {
    let o = order(100, "2026-12-06 12:00:00");
    let mut m = Matcher::new(day(), vec![o.clone()], vec![], true);
    m.feed(pay_line(&o, 100, "2026-12-06 12:00:00"));
    m.feed(pay_line(&o, 100, "2026-12-06 12:00:00"));
    assert_eq!((m.totals.lines, m.totals.matched), (1, 1));
}

#[test]
fn fees_are_read_to_the_hundred_thousandth() {
    assert_eq!(fee_e5("0.00600"), Some(600));
    assert_eq!(fee_e5("-0.01"), Some(-1000));
    assert_eq!(fee_e5("12"), Some(1_200_000));
    assert_eq!(fee_e5("0.000001"), None);
    assert_eq!(fee_e5("abc"), None);
    assert_eq!(fee_e5(""), None);
}

#[test]
fn china_days_start_at_16_utc() {
    assert_eq!(day_start(day()).to_rfc3339(), "2026-12-05T16:00:00+00:00");
    assert_eq!(
        cst_day(parse_cn_datetime("2026-12-06 00:00:00").unwrap()),
        day()
    );
}
