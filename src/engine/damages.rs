//! Damages: `rate × posts / per`, in exact integer arithmetic.
//!
//! Money is held as whole cents (`u128`), rates as whole micro-dollars, so no figure
//! ever passes through floating point. Each window is rounded on its own.

use crate::engine::InvalidValue;
use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// How a window's posts are turned into money.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rounding {
    /// `rate × posts / per`, rounded half-up to the cent.
    ProRata,
    /// Every started `per` counts in full: `rate × ceil(posts / per)`.
    PerStarted,
    /// Only complete `per` count: `rate × floor(posts / per)`.
    PerFull,
}

impl FromStr for Rounding {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        match s {
            "pro-rata" => Ok(Self::ProRata),
            "per-started" => Ok(Self::PerStarted),
            "per-full" => Ok(Self::PerFull),
            _ => Err(
                format!("unknown rounding '{s}' (use pro-rata, per-started or per-full)").into(),
            ),
        }
    }
}

impl fmt::Display for Rounding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ProRata => "pro-rata",
            Self::PerStarted => "per-started",
            Self::PerFull => "per-full",
        })
    }
}

/// A non-negative amount of US dollars with at most six decimals, held in micro-dollars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub micros: u64,
}

impl FromStr for Rate {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        let bad = || {
            format!("invalid rate '{s}': write a non-negative decimal with at most 6 decimals, e.g. 15000 or 0.015")
        };
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        if int.is_empty() && frac.is_empty()
            || !int.bytes().all(|c| c.is_ascii_digit())
            || !frac.bytes().all(|c| c.is_ascii_digit())
            || (s.contains('.') && frac.is_empty())
        {
            return Err(bad().into());
        }
        if frac.len() > 6 {
            return Err(format!("invalid rate '{s}': at most 6 decimals are allowed").into());
        }
        let int: u64 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| bad())?
        };
        let mut frac_micros: u64 = 0;
        for i in 0..6 {
            frac_micros =
                frac_micros * 10 + frac.as_bytes().get(i).map_or(0, |c| (c - b'0') as u64);
        }
        let micros = int
            .checked_mul(1_000_000)
            .and_then(|v| v.checked_add(frac_micros))
            .ok_or_else(|| format!("rate '{s}' is too large"))?;
        Ok(Rate { micros })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let int = self.micros / 1_000_000;
        let frac = self.micros % 1_000_000;
        if frac == 0 {
            write!(f, "{int}")
        } else {
            let s = format!("{frac:06}");
            write!(f, "{int}.{}", s.trim_end_matches('0'))
        }
    }
}

/// Exact cents; printed as `22500.00`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Cents(pub u128);

impl fmt::Display for Cents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

impl std::ops::Add for Cents {
    type Output = Cents;
    fn add(self, o: Cents) -> Cents {
        Cents(self.0 + o.0)
    }
}

impl std::iter::Sum for Cents {
    fn sum<I: Iterator<Item = Cents>>(iter: I) -> Cents {
        iter.fold(Cents(0), |a, b| a + b)
    }
}

impl Serialize for Cents {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Micro-dollars per cent.
const MICROS_PER_CENT: u128 = 10_000;

/// `num / den` rounded half-up (both non-negative).
fn div_half_up(num: u128, den: u128) -> u128 {
    (2 * num + den) / (2 * den)
}

/// The damages of one window of `posts` posts.
pub fn window_damages(posts: u64, rate: Rate, per: u64, rounding: Rounding) -> Cents {
    let (posts, rate, per) = (posts as u128, rate.micros as u128, per as u128);
    let micro_dollars_times_per = match rounding {
        // rate × posts / per, with the division by `per` folded into the rounding.
        Rounding::ProRata => return Cents(div_half_up(rate * posts, per * MICROS_PER_CENT)),
        Rounding::PerStarted => rate * posts.div_ceil(per),
        Rounding::PerFull => rate * (posts / per),
    };
    // A rate with sub-cent decimals times a whole count can still leave a fraction of a cent.
    Cents(div_half_up(micro_dollars_times_per, MICROS_PER_CENT))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(s: &str) -> Rate {
        s.parse().unwrap()
    }

    /// Each `(posts, rate, per, rounding, damages)` as `window_damages` must give it.
    fn check(cases: &[(u64, &str, u64, Rounding, &str)]) {
        for &(posts, r, per, rounding, want) in cases {
            assert_eq!(
                window_damages(posts, rate(r), per, rounding).to_string(),
                want,
                "{posts} posts at {r} per {per}, {rounding:?}"
            );
        }
    }

    #[test]
    fn the_clause_itself() {
        use Rounding::*;
        check(&[
            (1_000_000, "15000", 1_000_000, ProRata, "15000.00"),
            (1_500_000, "15000", 1_000_000, ProRata, "22500.00"),
            (1_000_001, "15000", 1_000_000, ProRata, "15000.02"),
            (1_000_001, "15000", 1_000_000, PerStarted, "30000.00"),
            (1_999_999, "15000", 1_000_000, PerFull, "15000.00"),
        ]);
    }

    #[test]
    fn half_up_at_the_cent() {
        use Rounding::*;
        check(&[
            // 113 posts: 1.695 → 1.70; 1 post: 0.015 → 0.02; 86 posts: 1.29 exactly.
            (113, "15000", 1_000_000, ProRata, "1.70"),
            (1, "15000", 1_000_000, ProRata, "0.02"),
            (86, "15000", 1_000_000, ProRata, "1.29"),
            // 0.014999... rounds down.
            (1, "14999.999999", 1_000_000, ProRata, "0.01"),
        ]);
    }

    #[test]
    fn rates_parse_exactly() {
        assert_eq!(rate("15000").micros, 15_000_000_000);
        assert_eq!(rate("0.000001").micros, 1);
        assert_eq!(rate(".5").micros, 500_000);
        assert_eq!(rate("12.345678").to_string(), "12.345678");
        assert_eq!(rate("12.50").to_string(), "12.5");
        for bad in ["", ".", "1.", "-1", "1e3", "1.1234567", "abc", "1.2.3"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
    }

    #[test]
    fn sub_cent_rates_round_per_window() {
        check(&[
            // 3 started units of 0.005 USD = 0.015 → 0.02.
            (21, "0.005", 10, Rounding::PerStarted, "0.02"),
            // 2 full units = 0.010.
            (29, "0.005", 10, Rounding::PerFull, "0.01"),
        ]);
    }
}
