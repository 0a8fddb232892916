//! The benchmark's day: cashdesk's paid orders and the channel's bill
//! lines, each computed from an order's index so that neither the book nor
//! the bill is ever held in memory (the set-up streams both, and the run's
//! peak memory is the engine's, not the generator's).
//!
//! Order `i` of `n` is paid at `i/n` of the China day (so the day is
//! evenly covered, first second to last), for an amount that varies from
//! 0.01 to 999.99 yuan. Every bill line is one of those orders, except the
//! planted differences, [`PLANTED`] of each kind, spread over the day:
//!
//! - **local only**: an order cashdesk has paid that the bill lacks
//!   (`LOCAL_ONLY`);
//! - **amount mismatch**: the bill's amount is one yuan more than
//!   cashdesk's (`AMOUNT_MISMATCH`);
//! - **channel only**: a bill line for an order id cashdesk never issued
//!   (`CHANNEL_ONLY`, found by one store lookup each).
//!
//! So the bill has `n` lines (`n − 10` orders, plus 10 strangers), `n − 20`
//! of them match, and the run must report exactly the 30 planted findings.

use cashdesk_core::OrderId;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use ulid::Ulid;

/// How many differences of each kind the bill carries.
pub(super) const PLANTED: u64 = 10;

/// The smallest day the plan fits in: every kind's slot (`i % step` = 1,
/// 2, 3) must be a distinct order.
pub(super) const MIN_LINES: u64 = 10 * PLANTED;

/// Microseconds in a day.
const DAY_MICROS: i128 = 86_400_000_000;

pub(super) struct Book {
    pub(super) n: u64,
    pub(super) day: NaiveDate,
    start: DateTime<Utc>,
    /// Keeps this run's ids apart from an earlier run's in a reused
    /// PostgreSQL database.
    seed: u16,
    /// The planted differences sit in the first [`PLANTED`] blocks of
    /// `step` orders.
    step: u64,
}

impl Book {
    pub(super) fn new(n: u64, day: NaiveDate, seed: u16) -> Book {
        Book {
            n,
            day,
            start: cashdesk_server::recon::matching::day_start(day),
            seed,
            step: n / PLANTED,
        }
    }

    pub(super) fn pay_time(&self, i: u64) -> DateTime<Utc> {
        let offset = i128::from(i) * DAY_MICROS / i128::from(self.n);
        // Below DAY_MICROS, which fits an i64.
        self.start + Duration::microseconds(offset as i64)
    }

    fn id_at(&self, i: u64, stranger: bool) -> String {
        let ms = u64::try_from(self.pay_time(i).timestamp_millis()).unwrap_or_default();
        let random = (u128::from(self.seed) << 64) | (u128::from(stranger) << 63) | u128::from(i);
        format!("{}{}", OrderId::PREFIX, Ulid::from_parts(ms, random))
    }

    /// cashdesk's order id (the channel's `out_trade_no`).
    pub(super) fn order_id(&self, i: u64) -> String {
        self.id_at(i, false)
    }

    /// The merchant's own order number (unique per app).
    pub(super) fn out_trade_no(&self, i: u64) -> String {
        format!("M{:04x}{i:012}", self.seed)
    }

    /// The channel's transaction id (28 digits, as WeChat's).
    pub(super) fn transaction_id(&self, i: u64) -> String {
        format!("42{:010}{i:016}", self.seed)
    }

    /// What cashdesk recorded, in fen: 1 to 99,999.
    pub(super) fn amount(&self, i: u64) -> i64 {
        // Below 99,999 + 1, which fits an i64.
        ((i.wrapping_mul(7_919).wrapping_add(13)) % 99_999 + 1) as i64
    }

    fn planted(&self, i: u64, slot: u64) -> bool {
        i % self.step == slot && i / self.step < PLANTED
    }

    /// Paid at cashdesk, missing from the bill.
    pub(super) fn local_only(&self, i: u64) -> bool {
        self.planted(i, 1)
    }

    /// What the bill says order `i` paid, in fen.
    pub(super) fn bill_amount(&self, i: u64) -> i64 {
        if self.planted(i, 2) {
            self.amount(i) + 100
        } else {
            self.amount(i)
        }
    }

    /// After order `i`'s line, the bill has a payment for an order id
    /// cashdesk never issued: its (order id, transaction id, amount).
    pub(super) fn stranger_after(&self, i: u64) -> Option<(String, String, i64)> {
        self.planted(i, 3).then(|| {
            (
                self.id_at(i, true),
                format!("43{:010}{i:016}", self.seed),
                self.amount(i),
            )
        })
    }

    /// The figures a correct run reports.
    pub(super) fn expected(&self) -> Expected {
        Expected {
            lines: i64::try_from(self.n).unwrap_or(i64::MAX),
            matched: i64::try_from(self.n - 2 * PLANTED).unwrap_or(i64::MAX),
            findings: vec![
                ("AMOUNT_MISMATCH".to_owned(), PLANTED),
                ("CHANNEL_ONLY".to_owned(), PLANTED),
                ("LOCAL_ONLY".to_owned(), PLANTED),
            ],
        }
    }
}

/// What the run must report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Expected {
    pub(super) lines: i64,
    pub(super) matched: i64,
    /// Finding kinds and counts, sorted by kind.
    pub(super) findings: Vec<(String, u64)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book(n: u64) -> Book {
        Book::new(n, NaiveDate::from_ymd_opt(2026, 12, 6).expect("a date"), 7)
    }

    #[test]
    fn the_plan_has_ten_of_each_kind_in_distinct_orders() {
        for n in [MIN_LINES, 1_000, 12_345] {
            let b = book(n);
            let local: Vec<u64> = (0..n).filter(|&i| b.local_only(i)).collect();
            let mismatched: Vec<u64> = (0..n)
                .filter(|&i| b.bill_amount(i) != b.amount(i))
                .collect();
            let strangers: Vec<u64> = (0..n).filter(|&i| b.stranger_after(i).is_some()).collect();
            assert_eq!(
                (local.len(), mismatched.len(), strangers.len()),
                (10, 10, 10),
                "n = {n}"
            );
            assert!(
                local
                    .iter()
                    .all(|i| !mismatched.contains(i) && !strangers.contains(i))
            );
            assert!(mismatched.iter().all(|i| !strangers.contains(i)));
            let lines = n - local.len() as u64 + strangers.len() as u64;
            assert_eq!(i64::try_from(lines).ok(), Some(b.expected().lines));
        }
    }

    #[test]
    fn ids_are_cashdesk_ids_and_times_stay_in_the_day() {
        let b = book(1_000_000);
        for i in [0, 1, 499_999, 999_999] {
            assert!(OrderId::parse(&b.order_id(i)).is_some());
            assert_eq!(b.transaction_id(i).len(), 28);
            assert_eq!(
                cashdesk_server::recon::matching::cst_day(b.pay_time(i)),
                b.day
            );
            assert!((1..=99_999).contains(&b.amount(i)));
        }
        assert_ne!(
            b.order_id(3),
            b.stranger_after(3).map(|s| s.0).unwrap_or_default()
        );
        assert!(OrderId::parse(&b.stranger_after(3).map(|s| s.0).unwrap_or_default()).is_some());
        assert!(b.pay_time(0) < b.pay_time(1));
    }
}
