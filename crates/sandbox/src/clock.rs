//! The sandbox's clock: the real time plus an offset that tests move
//! (`POST /sandbox/api/clock`, [`crate::Sandbox::set_clock_offset`]), so
//! a test can make orders "yesterday" or "tomorrow" and then ask for the
//! bill of a day that is over, without waiting for midnight in Beijing.
//!
//! What it times: the order book (creation, payment, refund acceptance
//! and success, expiry), which days have a bill (only days before today,
//! China time) and how long a bill download link lives. What it does not:
//! signature timestamps (a merchant's `Authorization` or Alipay
//! `timestamp` is still checked against the real clock, as the merchant's
//! own clock is real), notification schedules, the request log.
//!
//! The offset is bounded ([`MAX_OFFSET`]) and shared by every caller of
//! the sandbox — like the faults, it is a test harness setting.

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, TimeDelta, Utc};

/// The furthest the clock may be moved either way: a bit more than a year.
pub const MAX_OFFSET: TimeDelta = TimeDelta::days(400);

#[derive(Debug, Default)]
pub struct Clock {
    offset_ms: AtomicI64,
}

impl Clock {
    /// The sandbox's now.
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.offset()
    }

    pub fn offset(&self) -> TimeDelta {
        TimeDelta::milliseconds(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Move the clock to the real time plus `offset` (`Err` beyond
    /// [`MAX_OFFSET`]).
    pub fn set_offset(&self, offset: TimeDelta) -> Result<(), String> {
        if offset.abs() > MAX_OFFSET {
            return Err(format!(
                "the clock may be moved at most {} days either way",
                MAX_OFFSET.num_days()
            ));
        }
        self.offset_ms
            .store(offset.num_milliseconds(), Ordering::Relaxed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offset_moves_now_within_bounds() {
        let c = Clock::default();
        assert!((c.now() - Utc::now()).abs() < TimeDelta::seconds(1));
        c.set_offset(TimeDelta::days(-1)).unwrap();
        let d = Utc::now() - c.now();
        assert!(d > TimeDelta::hours(23) && d < TimeDelta::hours(25));
        assert!(c.set_offset(TimeDelta::days(401)).is_err());
        assert_eq!(c.offset(), TimeDelta::days(-1));
    }
}
