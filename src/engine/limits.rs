//! What the reports can hold: counts that fit a signed 64-bit integer (the partials'
//! Int64 columns) and instants RFC 3339 can print (years 0000–9999).
//!
//! Nothing in the engine wraps: a client whose counts would not fit, or whose window
//! would end past 9999-12-31, is refused by name ([`check_client`]), and the run
//! stops before it writes a report ([`crate::engine::bill::Analysis::check`]).

use crate::engine::aggregate::Bucket;
use crate::engine::time::Micros;

/// 0000-01-01T00:00:00Z.
pub const MIN_T: Micros = -62_167_219_200_000_000;
/// 9999-12-31T23:59:59.999999Z.
pub const MAX_T: Micros = 253_402_300_800_000_000 - 1;
/// The largest count of posts or requests a client may have in all (`i64::MAX`, what
/// a partial's Int64 column holds).
pub const MAX_COUNT: u64 = i64::MAX as u64;
/// The longest duration: the whole span RFC 3339 can print.
pub const MAX_DURATION: Micros = MAX_T - MIN_T;

/// Whether `t` prints as RFC 3339 (years 0000–9999).
pub fn printable(t: Micros) -> bool {
    (MIN_T..=MAX_T).contains(&t)
}

/// `a + b` if the sum fits [`MAX_COUNT`].
pub fn add_count(a: u64, b: u64) -> Option<u64> {
    a.checked_add(b).filter(|&s| s <= MAX_COUNT)
}

/// The posts and requests of `buckets` on top of `carried` ones, if both fit
/// [`MAX_COUNT`].
pub fn totals(buckets: &[Bucket], carried: (u64, u64)) -> Option<(u64, u64)> {
    buckets.iter().try_fold(carried, |(p, r), b| {
        Some((add_count(p, b.posts)?, add_count(r, b.requests)?))
    })
}

/// Refuses a client (named `name` in the message) whose counts overflow or whose
/// requests and windows lie outside what RFC 3339 prints; `buckets` are sorted.
pub fn check_client(
    name: &str,
    buckets: &[Bucket],
    carried: (u64, u64),
    window: Micros,
) -> Result<(), String> {
    if totals(buckets, carried).is_none() {
        return Err(format!(
            "client {name}: its posts or requests add up to more than {MAX_COUNT} (a 64-bit count): refused rather than wrapped"
        ));
    }
    let (Some(first), Some(last)) = (buckets.first(), buckets.last()) else {
        return Ok(());
    };
    if !printable(first.t) || !printable(last.t) {
        return Err(format!(
            "client {name}: a request time outside the years 0000–9999 (epoch µs {}): refused",
            if printable(first.t) { last.t } else { first.t }
        ));
    }
    // The last window that can start ends `window` after the last request.
    if last.t.checked_add(window).is_none_or(|end| end > MAX_T) {
        return Err(format!(
            "client {name}: a window starting at epoch µs {} would end after 9999-12-31T23:59:59.999999Z: refused",
            last.t
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::time::{format_rfc3339, parse_rfc3339};

    fn b(t: Micros, posts: u64) -> Bucket {
        Bucket {
            t,
            posts,
            requests: 1,
        }
    }

    #[test]
    fn bounds_are_the_rfc3339_years() {
        assert_eq!(format_rfc3339(MIN_T), "0000-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(MAX_T), "9999-12-31T23:59:59.999999Z");
        assert_eq!(parse_rfc3339(b"9999-12-31T23:59:59.999999Z"), Some(MAX_T));
        assert!(printable(0) && printable(MIN_T) && printable(MAX_T));
        assert!(!printable(MAX_T + 1) && !printable(MIN_T - 1) && !printable(i64::MAX));
    }

    #[test]
    fn overflow_is_refused_by_name() {
        let big = i64::MAX as u64;
        let e = check_client("x", &[b(0, big), b(1, big), b(2, big)], (0, 0), 1).unwrap_err();
        assert!(e.contains("client x") && e.contains("64-bit"), "{e}");
        assert!(check_client("x", &[b(0, big)], (0, 0), 1).is_ok());
        assert!(check_client("x", &[b(0, 1)], (big, 0), 1).is_err());
        assert!(check_client("x", &[b(0, u64::MAX)], (0, 0), 1).is_err());
        assert_eq!(totals(&[b(0, 2), b(1, 3)], (1, 1)), Some((6, 3)));
    }

    #[test]
    fn times_and_windows_must_print() {
        let day = 86_400_000_000;
        assert!(check_client("x", &[b(i64::MAX - 5, 1)], (0, 0), day).is_err());
        assert!(check_client("x", &[b(MIN_T - 1, 1)], (0, 0), day).is_err());
        assert!(check_client("x", &[b(MAX_T - day, 1)], (0, 0), day).is_ok());
        assert!(check_client("x", &[b(MAX_T - day + 1, 1)], (0, 0), day).is_err());
        assert!(check_client("x", &[b(0, 1)], (0, 0), i64::MAX).is_err());
    }
}
