use chrono::{NaiveDate, TimeDelta, TimeZone, Utc};

use super::*;
use crate::faults::BillFaults;
use crate::ledger::{RefundStatus, TradeType};
use crate::v3::billtext::{self, BillType};

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 6, 5).unwrap()
}

fn order(no: &str, total: i64, hour: u32) -> Order {
    let at = Utc.with_ymd_and_hms(2026, 6, 5, hour, 0, 0).unwrap();
    Order {
        mch_id: "1900000001".into(),
        appid: "wxsandbox".into(),
        out_trade_no: no.into(),
        api: Api::V3,
        trade_type: TradeType::Jsapi,
        description: "cola, cold".into(),
        total,
        openid: None,
        attach: None,
        notify_url: String::new(),
        prepay_id: String::new(),
        created_at: at,
        expire_at: None,
        state: PayState::Success {
            transaction_id: format!("4200{no}"),
            paid_at: at,
            openid: "oSBX".into(),
        },
        refunded: 0,
        fingerprint: String::new(),
        ext: OrderExt::None,
    }
}

fn payment(o: Order) -> Line {
    Line {
        kind: LineKind::Payment,
        at: o.paid().unwrap().1,
        amount: o.total,
        order: o,
        refund: None,
    }
}

fn refund(o: Order, no: &str, amount: i64) -> Line {
    let at = o.paid().unwrap().1 + TimeDelta::minutes(30);
    Line {
        kind: LineKind::Refund,
        at,
        amount,
        refund: Some(Refund {
            mch_id: o.mch_id.clone(),
            out_refund_no: no.into(),
            refund_id: format!("5030{no}"),
            out_trade_no: o.out_trade_no.clone(),
            transaction_id: format!("4200{}", o.out_trade_no),
            amount,
            total: o.total,
            reason: None,
            notify_url: None,
            api: Api::V3,
            status: RefundStatus::Success,
            created_at: at,
            success_at: Some(at),
        }),
        order: o,
    }
}

#[test]
fn fees_round_half_up_to_the_fen() {
    assert_eq!(fee_fen(100), 1); // 0.6 fen
    assert_eq!(fee_fen(50), 0); // 0.3 fen
    assert_eq!(fee_fen(84), 1); // 0.504 fen
    assert_eq!(fee_fen(83), 0); // 0.498 fen
    assert_eq!(fee_fen(10_000), 60);
    assert_eq!(fee_fen(-100), -1);
    assert_eq!(yuan(12_345), "123.45");
    assert_eq!(yuan(-5), "-0.05");
    assert_eq!(yuan(0), "0.00");
    assert_eq!(yuan5(60), "0.60000");
    assert_eq!(yuan5(-1), "-0.01000");
}

#[test]
fn days_are_china_days_and_only_past_ones_have_bills() {
    let (from, to) = cn_day_bounds(day());
    assert_eq!(from, Utc.with_ymd_and_hms(2026, 6, 4, 16, 0, 0).unwrap());
    assert_eq!(to - from, TimeDelta::days(1));
    // 2026-06-06 00:30 in Beijing is still 2026-06-05 in UTC.
    let now = Utc.with_ymd_and_hms(2026, 6, 5, 16, 30, 0).unwrap();
    assert_eq!(cn_today(now), day().succ_opt().unwrap());
    assert_eq!(check_day(day(), now), Ok(()));
    assert_eq!(
        check_day(day().succ_opt().unwrap(), now),
        Err(DayError::NotOver)
    );
    let old = NaiveDate::from_ymd_opt(2026, 3, 5).unwrap();
    assert_eq!(check_day(old, now), Err(DayError::TooOld));
    assert_eq!(check_day(old.succ_opt().unwrap(), now), Ok(()));
}

#[test]
fn faults_shape_the_lines() {
    let a = order("A1", 100, 3);
    let b = order("B2", 250, 1);
    let mut lines = vec![
        payment(a.clone()),
        payment(b.clone()),
        refund(a.clone(), "RA1", 40),
        refund(b, "RB2", 50),
    ];
    let book = Book::Wechat {
        mch_id: "1900000001",
    };
    let faults = BillFaults {
        amount_diff: vec![None, Some("A1".into())],
        omit_refund: vec![Some("RB2".into())],
        extra_trade: vec![(Some("EXTRA1".into()), 7)],
        ..Default::default()
    };
    apply(&mut lines, &faults, book, day(), "wxsandbox");
    let amount = |no: &str| {
        lines
            .iter()
            .find(|l| l.kind == LineKind::Payment && l.order.out_trade_no == no)
            .unwrap()
            .amount
    };
    // The first payment in time is B2 (01:00 UTC).
    assert_eq!(
        (amount("A1"), amount("B2"), amount("EXTRA1")),
        (101, 251, 7)
    );
    let refunds: Vec<_> = lines
        .iter()
        .filter_map(|l| l.refund.as_ref().map(|r| r.out_refund_no.clone()))
        .collect();
    assert_eq!(refunds, ["RA1"]);
    let extra = lines
        .iter()
        .find(|l| l.order.out_trade_no == "EXTRA1")
        .unwrap();
    assert_eq!(extra.at, cn_day_bounds(day()).0 + TimeDelta::hours(12));
    assert_eq!(extra.transaction_id().len(), 28);
    let mut all = lines.clone();
    apply(
        &mut all,
        &BillFaults {
            omit_refund: vec![None],
            ..Default::default()
        },
        book,
        day(),
        "wxsandbox",
    );
    assert!(all.iter().all(|l| l.kind == LineKind::Payment));
}

#[test]
fn the_wechat_text_adds_up_in_every_layout() {
    let a = order("A1", 100, 3);
    let bill = DayBill {
        lines: vec![payment(a.clone()), refund(a, "RA1", 40)],
        summary_bias: 0,
    };
    let text =
        String::from_utf8(billtext::render(&bill, BillType::All, "1900000001").unwrap()).unwrap();
    assert!(text.starts_with("\u{feff}交易时间,公众账号ID,"));
    let lines: Vec<&str> = text.split_terminator("\r\n").collect();
    assert_eq!(lines.len(), 5);
    assert!(!text.replace("\r\n", "").contains('\n'));
    assert_eq!(lines[1].split(',').count(), 27);
    assert!(lines[1].split(',').all(|f| f.starts_with('`')));
    assert!(lines[1].contains("`cola， cold"), "{}", lines[1]);
    assert!(lines[1].contains("`SUCCESS,`OTHERS,`CNY,`1.00,`0.00,`0,`0,"));
    assert!(lines[1].contains("`0.01000,`0.60%,`1.00,`0.00,`"));
    assert!(lines[2].contains(
        "`REFUND,`OTHERS,`CNY,`0.00,`0.00,`5030RA1,`RA1,`0.40,`0.00,`ORIGINAL,`SUCCESS,"
    ));
    assert!(lines[2].contains("`-0.00000,") || lines[2].contains("`0.00000,"));
    assert_eq!(lines[3], billtext::SUMMARY.join(","));
    assert_eq!(lines[4], "`2,`1.00,`0.40,`0.00,`0.01000,`1.00,`0.40");

    let success =
        String::from_utf8(billtext::render(&bill, BillType::Success, "1900000001").unwrap())
            .unwrap();
    let rows: Vec<&str> = success.split_terminator("\r\n").collect();
    assert_eq!(
        rows[0].trim_start_matches('\u{feff}'),
        billtext::SUCCESS.join(",")
    );
    assert_eq!(rows[1].split(',').count(), 20);
    assert_eq!(rows[3], "`1,`1.00,`0.01000,`1.00");
    let refund_only =
        String::from_utf8(billtext::render(&bill, BillType::Refund, "1900000001").unwrap())
            .unwrap();
    let rows: Vec<&str> = refund_only.split_terminator("\r\n").collect();
    assert_eq!(rows[1].split(',').count(), 29);
    assert_eq!(rows[3], "`1,`0.00,`0.40,`0.00,`0.00000,`0.00,`0.40");

    let biased = DayBill {
        summary_bias: 1,
        ..bill
    };
    let text = String::from_utf8(billtext::render(&biased, BillType::All, "1").unwrap()).unwrap();
    assert!(text.ends_with("`2,`1.01,`0.40,`0.00,`0.01000,`1.01,`0.40\r\n"));
    assert!(billtext::render(&DayBill::default(), BillType::All, "1").is_none());
}
