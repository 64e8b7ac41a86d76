//! Time: every instant is `Micros`, signed microseconds since the Unix epoch, UTC.
//!
//! Parsing of the log time formats lives here (hand-written and allocation-free,
//! because it runs once per line) together with the RFC 3339 printing the reports use.

use crate::engine::InvalidValue;
use chrono::{DateTime, Utc};

/// Microseconds since 1970-01-01T00:00:00Z.
pub type Micros = i64;

pub const MICROS_PER_SEC: i64 = 1_000_000;

/// Days since the epoch of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

pub fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

/// A calendar date and wall-clock time, validated: no 31/Feb, no 24:00:00, no `:60`.
#[allow(clippy::too_many_arguments)]
pub fn civil_to_micros(
    y: i64,
    mo: u32,
    d: u32,
    h: u32,
    mi: u32,
    s: u32,
    micros: u32,
    offset_secs: i64,
) -> Option<Micros> {
    if !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 59
    {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + (h as i64) * 3600 + (mi as i64) * 60 + s as i64 - offset_secs;
    Some(secs * MICROS_PER_SEC + micros as i64)
}

fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() || b.len() > 9 {
        return None;
    }
    let mut v = 0u32;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as u32;
    }
    Some(v)
}

/// Parses a fraction of a second (`123`, `123456789`) into microseconds, truncating
/// past the sixth digit (finer time than a microsecond is not kept).
fn fraction_micros(b: &[u8]) -> Option<u32> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v = 0u32;
    for i in 0..6 {
        v = v * 10 + b.get(i).map_or(0, |c| (c - b'0') as u32);
    }
    Some(v)
}

/// An optional `.digits` after the seconds: its microseconds (0 without one) and what
/// follows it; `None` for a `.` with no digits.
fn optional_fraction(rest: &[u8]) -> Option<(u32, &[u8])> {
    if rest.first() != Some(&b'.') {
        return Some((0, rest));
    }
    let end = rest[1..]
        .iter()
        .position(|c| !c.is_ascii_digit())
        .map_or(rest.len(), |p| p + 1);
    Some((fraction_micros(&rest[1..end])?, &rest[end..]))
}

/// `+HHMM`, `-HHMM`, `+HH:MM`, `-HH:MM` → seconds east of UTC.
pub fn parse_offset(b: &[u8]) -> Option<i64> {
    let (sign, rest) = match b.first()? {
        b'+' => (1, &b[1..]),
        b'-' => (-1, &b[1..]),
        _ => return None,
    };
    let (hh, mm) = match rest.len() {
        4 => (&rest[..2], &rest[2..]),
        5 if rest[2] == b':' => (&rest[..2], &rest[3..]),
        _ => return None,
    };
    let (hh, mm) = (digits(hh)?, digits(mm)?);
    if hh > 23 || mm > 59 {
        return None;
    }
    Some(sign * (hh as i64 * 3600 + mm as i64 * 60))
}

fn month_from_abbrev(b: &[u8]) -> Option<u32> {
    const MONTHS: [&[u8; 3]; 12] = [
        b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov",
        b"dec",
    ];
    if b.len() != 3 {
        return None;
    }
    let lower = [
        b[0].to_ascii_lowercase(),
        b[1].to_ascii_lowercase(),
        b[2].to_ascii_lowercase(),
    ];
    MONTHS
        .iter()
        .position(|m| **m == lower)
        .map(|i| i as u32 + 1)
}

/// A `%t` text a thread read and its instant.
#[derive(Clone, Copy)]
struct ClfTimeSeen {
    len: usize,
    text: [u8; CLF_TIME_KEPT],
    at: Micros,
}

/// Longest `%t` text [`ClfTimeSeen`] keeps: `10/Oct/2000:13:55:36.123456 -0700` is 33.
const CLF_TIME_KEPT: usize = 40;

thread_local! {
    /// The last text read per last digit of its seconds: logs are written a few
    /// seconds out of order (by when a request ends), so one last text would miss.
    static CLF_TIMES_SEEN: [std::cell::Cell<ClfTimeSeen>; 10] = const {
        [const {
            std::cell::Cell::new(ClfTimeSeen { len: 0, text: [0; CLF_TIME_KEPT], at: 0 })
        }; 10]
    };
}

/// Apache/nginx `%t` without brackets: `10/Oct/2000:13:55:36 -0700`, optionally with a
/// fraction after the seconds (`13:55:36.123`).
///
/// A log writes one second's text on every line of that second (~20 lines a second in
/// the bench set), so the texts read last are kept per thread and an equal text is
/// answered from there: a 26-byte compare instead of the parse.
#[inline]
pub fn parse_clf_time(b: &[u8]) -> Option<Micros> {
    let slot = match b.get(19) {
        Some(d @ b'0'..=b'9') if b.len() <= CLF_TIME_KEPT => (d - b'0') as usize,
        _ => return parse_clf_time_uncached(b),
    };
    CLF_TIMES_SEEN.with(|seen| {
        let kept = seen[slot].get();
        if kept.len == b.len() && kept.text[..kept.len] == *b {
            return Some(kept.at);
        }
        let at = parse_clf_time_uncached(b)?;
        let mut text = [0; CLF_TIME_KEPT];
        text[..b.len()].copy_from_slice(b);
        seen[slot].set(ClfTimeSeen {
            len: b.len(),
            text,
            at,
        });
        Some(at)
    })
}

fn parse_clf_time_uncached(b: &[u8]) -> Option<Micros> {
    // dd/Mon/yyyy:HH:MM:SS
    if b.len() < 20 || b[2] != b'/' || b[6] != b'/' || b[11] != b':' {
        return None;
    }
    let d = digits(&b[0..2])?;
    let mo = month_from_abbrev(&b[3..6])?;
    let y = digits(&b[7..11])? as i64;
    if b[14] != b':' || b[17] != b':' {
        return None;
    }
    let h = digits(&b[12..14])?;
    let mi = digits(&b[15..17])?;
    let s = digits(&b[18..20])?;
    let (micros, rest) = optional_fraction(&b[20..])?;
    let off = match rest {
        [] => return None,
        [b' ', tz @ ..] => parse_offset(tz)?,
        _ => return None,
    };
    civil_to_micros(y, mo, d, h, mi, s, micros, off)
}

/// RFC 3339 / ISO 8601 with a mandatory zone: `2026-10-10T13:55:36Z`,
/// `2026-10-10T13:55:36.123456+02:00`, `2026-10-10 13:55:36+0200`.
pub fn parse_rfc3339(b: &[u8]) -> Option<Micros> {
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let y = digits(&b[0..4])? as i64;
    let mo = digits(&b[5..7])?;
    let d = digits(&b[8..10])?;
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let h = digits(&b[11..13])?;
    let mi = digits(&b[14..16])?;
    let s = digits(&b[17..19])?;
    let (micros, rest) = optional_fraction(&b[19..])?;
    let off = match rest {
        [b'Z'] | [b'z'] => 0,
        tz => parse_offset(tz)?,
    };
    civil_to_micros(y, mo, d, h, mi, s, micros, off)
}

/// Prints an instant as RFC 3339 UTC: whole seconds as `2026-10-10T13:55:36Z`,
/// otherwise with exactly six fraction digits.
pub fn format_rfc3339(t: Micros) -> String {
    let secs = t.div_euclid(MICROS_PER_SEC);
    let frac = t.rem_euclid(MICROS_PER_SEC);
    let dt: DateTime<Utc> = DateTime::from_timestamp(secs, 0).unwrap_or_default();
    let base = dt.format("%Y-%m-%dT%H:%M:%S");
    if frac == 0 {
        format!("{base}Z")
    } else {
        format!("{base}.{frac:06}Z")
    }
}

/// A window length or other duration: `24h`, `12h`, `90m`, `1h30m`, `86400s`, `1d`.
pub fn parse_duration(s: &str) -> Result<Micros, InvalidValue> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    let mut total: i64 = 0;
    let mut num: Option<i64> = None;
    for c in s.chars() {
        if let Some(d) = c.to_digit(10) {
            num = Some(
                num.unwrap_or(0)
                    .checked_mul(10)
                    .and_then(|n| n.checked_add(d as i64))
                    .ok_or("duration too large")?,
            );
            continue;
        }
        let unit = match c {
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            's' => 1,
            _ => {
                return Err(format!("unknown unit '{c}' in duration '{s}' (use d, h, m, s)").into())
            }
        };
        let n = num
            .take()
            .ok_or_else(|| format!("'{c}' without a number in duration '{s}'"))?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or("duration too large")?;
    }
    if num.is_some() {
        return Err(format!(
            "duration '{s}' ends in a number without a unit (write e.g. 86400s or 24h)"
        )
        .into());
    }
    if total < 1 {
        return Err(format!("duration '{s}' must be at least one second").into());
    }
    total
        .checked_mul(MICROS_PER_SEC)
        .filter(|&us| us <= crate::engine::limits::MAX_DURATION)
        .ok_or_else(|| {
            format!("duration '{s}' is too large (at most 10,000 years, the years 0000–9999 RFC 3339 can print)").into()
        })
}

/// Human form of a duration for reports: `24h`, `1h30m`, `90s`.
pub fn format_duration(us: Micros) -> String {
    let mut secs = us / MICROS_PER_SEC;
    let mut out = String::new();
    for (unit, name) in [(3_600, "h"), (60, "m"), (1, "s")] {
        if secs >= unit {
            out.push_str(&format!("{}{}", secs / unit, name));
            secs %= unit;
        }
    }
    if out.is_empty() {
        out.push_str("0s");
    }
    out
}

/// Serde: an optional time as RFC 3339 text.
pub fn opt_time<S: serde::Serializer>(t: &Option<Micros>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&format_rfc3339(*t)),
        None => s.serialize_none(),
    }
}

/// Serde: a time as RFC 3339 text.
pub fn time<S: serde::Serializer>(t: &Micros, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_rfc3339(*t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clf_time_with_offsets() {
        let utc = parse_clf_time(b"10/Oct/2000:13:55:36 +0000").unwrap();
        assert_eq!(format_rfc3339(utc), "2000-10-10T13:55:36Z");
        let minus = parse_clf_time(b"10/Oct/2000:13:55:36 -0700").unwrap();
        assert_eq!(format_rfc3339(minus), "2000-10-10T20:55:36Z");
        let india = parse_clf_time(b"10/Oct/2000:13:55:36 +05:30").unwrap();
        assert_eq!(format_rfc3339(india), "2000-10-10T08:25:36Z");
        let iran = parse_clf_time(b"22/Jan/2019:03:56:14 +0330").unwrap();
        assert_eq!(format_rfc3339(iran), "2019-01-22T00:26:14Z");
    }

    #[test]
    fn clf_time_crossing_midnight_backwards() {
        let t = parse_clf_time(b"01/Jan/2026:01:00:00 +0200").unwrap();
        assert_eq!(format_rfc3339(t), "2025-12-31T23:00:00Z");
    }

    #[test]
    fn impossible_times_are_rejected() {
        for bad in [
            &b"31/Feb/2024:10:00:00 +0000"[..],
            b"29/Feb/2023:10:00:00 +0000",
            b"10/Oct/2000:24:00:00 +0000",
            b"10/Oct/2000:23:59:60 +0000",
            b"10/Oct/2000:23:60:00 +0000",
            b"10/Foo/2000:13:55:36 +0000",
            b"10/Oct/2000:13:55:36",
            b"10/Oct/2000:13:55:36 0000",
            b"10/Oct/2000:13:55:36 +2400",
            b"00/Oct/2000:13:55:36 +0000",
        ] {
            assert_eq!(
                parse_clf_time(bad),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(parse_clf_time(b"29/Feb/2024:10:00:00 +0000").is_some());
    }

    #[test]
    fn the_last_clf_time_kept_answers_only_its_own_text() {
        // Texts of one length, repeated and interleaved, a bad one between: the cached
        // answer is always the one parsed afresh.
        let texts: [&[u8]; 7] = [
            b"10/Oct/2000:13:55:36 -0700",
            b"10/Oct/2000:13:55:36 -0700",
            b"10/Oct/2000:13:55:37 -0700",
            b"10/Oct/2000:13:55:36 -0700",
            b"10/Oct/2000:24:55:36 -0700",
            b"10/Oct/2000:13:55:36 +0700",
            b"10/Oct/2000:13:55:36.250 +0700",
        ];
        for round in 0..2 {
            for t in texts {
                let text = String::from_utf8_lossy(t);
                assert_eq!(
                    parse_clf_time(t),
                    parse_clf_time_uncached(t),
                    "{text} ({round})"
                );
            }
        }
        assert_eq!(parse_clf_time(texts[4]), None);
        assert_eq!(parse_clf_time(texts[4]), None);
    }

    #[test]
    fn fractions_are_kept_to_the_microsecond() {
        let t = parse_rfc3339(b"2023-04-26T12:22:55.463821Z").unwrap();
        assert_eq!(format_rfc3339(t), "2023-04-26T12:22:55.463821Z");
        let t = parse_rfc3339(b"2023-04-26T12:22:55.4638219+01:00").unwrap();
        assert_eq!(format_rfc3339(t), "2023-04-26T11:22:55.463821Z");
        let t = parse_clf_time(b"10/Oct/2000:13:55:36.5 +0000").unwrap();
        assert_eq!(format_rfc3339(t), "2000-10-10T13:55:36.500000Z");
        // A dot with no digits after it is no time, in either format.
        assert_eq!(parse_clf_time(b"10/Oct/2000:13:55:36. +0000"), None);
        assert_eq!(parse_rfc3339(b"2023-04-26T12:22:55.Z"), None);
    }

    #[test]
    fn epoch_days_match_chrono() {
        for (y, m, d) in [(1970, 1, 1), (2000, 2, 29), (1969, 12, 31), (2026, 11, 29)] {
            let ours = days_from_civil(y, m, d);
            let theirs = chrono::NaiveDate::from_ymd_opt(y as i32, m, d)
                .unwrap()
                .signed_duration_since(chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap())
                .num_days();
            assert_eq!(ours, theirs);
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("24h").unwrap(), 86_400 * MICROS_PER_SEC);
        assert_eq!(parse_duration("1d").unwrap(), 86_400 * MICROS_PER_SEC);
        assert_eq!(parse_duration("86400s").unwrap(), 86_400 * MICROS_PER_SEC);
        assert_eq!(parse_duration("90m").unwrap(), 5_400 * MICROS_PER_SEC);
        assert_eq!(parse_duration("1h30m").unwrap(), 5_400 * MICROS_PER_SEC);
        for bad in ["", "0s", "24", "h", "5x", "-1h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(format_duration(parse_duration("1h30m").unwrap()), "1h30m");
        assert_eq!(format_duration(parse_duration("1d").unwrap()), "24h");
        assert_eq!(format_duration(parse_duration("36h").unwrap()), "36h");
    }
}
