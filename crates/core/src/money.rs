//! Money is integer fen (1/100 yuan) everywhere inside cashdesk. Alipay's yuan
//! strings ("0.10") are converted here, exactly, never through floating point.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::InvalidInput;

/// An amount in fen. Always non-negative; payment amounts are also non-zero
/// (see [`Fen::parse_positive`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fen(i64);

/// The largest amount cashdesk accepts for one order: 100 million yuan, well
/// above every channel's single-payment limit and far from `i64` overflow.
pub const MAX_FEN: i64 = 10_000_000_000;

impl Fen {
    pub const ZERO: Fen = Fen(0);

    /// A payment or refund amount: an integer number of fen in `1..=MAX_FEN`.
    pub fn parse_positive(field: &'static str, value: i64) -> Result<Fen, InvalidInput> {
        if value <= 0 {
            return Err(InvalidInput::new(
                field,
                "must be a positive integer number of fen",
            ));
        }
        if value > MAX_FEN {
            return Err(InvalidInput::new(
                field,
                format!("must not exceed {MAX_FEN} fen"),
            ));
        }
        Ok(Fen(value))
    }

    /// A stored amount (trusted: it was parsed before it was stored).
    pub const fn from_stored(value: i64) -> Fen {
        Fen(value)
    }

    pub const fn get(self) -> i64 {
        self.0
    }

    pub fn checked_add(self, other: Fen) -> Option<Fen> {
        self.0.checked_add(other.0).map(Fen)
    }

    pub fn checked_sub(self, other: Fen) -> Option<Fen> {
        self.0.checked_sub(other.0).filter(|v| *v >= 0).map(Fen)
    }

    /// Yuan with exactly two decimals, as Alipay wants it: 10 fen → `"0.10"`.
    pub fn to_yuan(self) -> String {
        format!("{}.{:02}", self.0 / 100, self.0 % 100)
    }

    /// Parse a yuan string exactly: `"12"`, `"12.3"`, `"12.30"` and `"0.1"`
    /// are accepted; more than two decimals, signs, exponents, blanks and
    /// anything a float parser would tolerate are refused.
    pub fn from_yuan(field: &'static str, s: &str) -> Result<Fen, InvalidInput> {
        let bad = || {
            InvalidInput::new(
                field,
                format!("`{s}` is not a yuan amount with at most two decimals"),
            )
        };
        let (int, frac) = match s.split_once('.') {
            Some((i, f)) => (i, f),
            None => (s, ""),
        };
        if int.is_empty() || int.len() > 12 || !int.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        if frac.len() > 2
            || !frac.bytes().all(|b| b.is_ascii_digit())
            || (s.contains('.') && frac.is_empty())
        {
            return Err(bad());
        }
        let int: i64 = int.parse().map_err(|_| bad())?;
        let mut frac_fen: i64 = if frac.is_empty() {
            0
        } else {
            frac.parse().map_err(|_| bad())?
        };
        if frac.len() == 1 {
            frac_fen *= 10;
        }
        int.checked_mul(100)
            .and_then(|v| v.checked_add(frac_fen))
            .filter(|v| *v <= MAX_FEN)
            .map(Fen)
            .ok_or_else(bad)
    }
}

impl fmt::Display for Fen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn yuan_strings() {
        assert_eq!(Fen(10).to_yuan(), "0.10");
        assert_eq!(Fen(1).to_yuan(), "0.01");
        assert_eq!(Fen(123456).to_yuan(), "1234.56");
        assert_eq!(Fen::from_yuan("a", "0.1").unwrap(), Fen(10));
        assert_eq!(Fen::from_yuan("a", "0.10").unwrap(), Fen(10));
        assert_eq!(Fen::from_yuan("a", "12").unwrap(), Fen(1200));
        for bad in [
            "", ".1", "1.", "1.234", "-1", "+1", "1e2", " 1", "0x10", "1,00", "NaN",
        ] {
            assert!(Fen::from_yuan("a", bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn positive_amounts() {
        assert!(Fen::parse_positive("amount", 0).is_err());
        assert!(Fen::parse_positive("amount", -5).is_err());
        assert!(Fen::parse_positive("amount", MAX_FEN + 1).is_err());
        assert_eq!(Fen::parse_positive("amount", 1).unwrap().get(), 1);
    }

    proptest! {
        #[test]
        fn fen_yuan_fen(v in 0i64..=MAX_FEN) {
            let yuan = Fen(v).to_yuan();
            prop_assert_eq!(Fen::from_yuan("a", &yuan).unwrap(), Fen(v));
        }
    }
}
