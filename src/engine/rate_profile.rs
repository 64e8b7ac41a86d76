//! One client's activity in numbers, from its buckets: the trailing-window curve of
//! the charts and the request-rate profile (requests per minute, gaps between
//! requests) that shows machine-like regularity. Shared by `report.html` and `explain`.

use crate::engine::aggregate::Bucket;
use crate::engine::time::{Micros, MICROS_PER_SEC};
use hdrhistogram::Histogram;
use serde::Serialize;

/// p50, p90, p99 and max of a histogram (0 when empty).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Quantiles {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub max: u64,
}

impl Quantiles {
    fn of(h: &Histogram<u64>) -> Quantiles {
        if h.is_empty() {
            return Quantiles::default();
        }
        Quantiles {
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            max: h.max(),
        }
    }
}

/// How a client's requests are spread in time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RateProfile {
    /// Minutes (UTC, aligned to the epoch) with at least one request.
    pub active_minutes: u64,
    /// Requests per active minute.
    pub requests_per_minute: Quantiles,
    /// Microseconds between one request and the next (0 for requests logged at the
    /// same instant). p50 to p99 are approximate (3 significant figures) and rounded
    /// to the logs' own precision (whole seconds when every request was logged on a
    /// whole second); max is exact.
    pub gap_micros: Quantiles,
}

/// Approximate to 3 significant figures, as every HDR histogram here.
fn histogram() -> Histogram<u64> {
    Histogram::<u64>::new(3).expect("3 significant figures is valid")
}

/// Records `n` times `v`, growing the histogram as needed (`saturating_record`
/// would clamp to its current top instead).
fn record(h: &mut Histogram<u64>, v: u64, n: u64) {
    if h.record_n(v, n).is_err() {
        h.saturating_record_n(v, n);
    }
}

/// The rate profile of one client's canonical buckets.
pub fn rate_profile(buckets: &[Bucket]) -> RateProfile {
    const MINUTE: Micros = 60 * MICROS_PER_SEC;
    let mut per_minute = histogram();
    let mut gaps = histogram();
    let mut minute: Option<(Micros, u64)> = None;
    let mut active = 0u64;
    let mut previous: Option<Micros> = None;
    let mut max_gap = 0u64;
    let mut max_per_minute = 0u64;
    // The logs' precision: the coarsest of 1 s, 1 ms, 1 µs that divides every time.
    let mut step: Micros = MICROS_PER_SEC;
    for b in buckets.iter().filter(|b| b.requests > 0) {
        while step > 1 && b.t.rem_euclid(step) != 0 {
            step /= 1000;
        }
        let m = b.t.div_euclid(MINUTE);
        match &mut minute {
            Some((cur, n)) if *cur == m => *n += b.requests,
            _ => {
                if let Some((_, n)) = minute {
                    record(&mut per_minute, n, 1);
                    max_per_minute = max_per_minute.max(n);
                }
                active += 1;
                minute = Some((m, b.requests));
            }
        }
        if let Some(p) = previous {
            let gap = (b.t - p) as u64;
            record(&mut gaps, gap, 1);
            max_gap = max_gap.max(gap);
        }
        if b.requests > 1 {
            record(&mut gaps, 0, b.requests - 1);
        }
        previous = Some(b.t);
    }
    if let Some((_, n)) = minute {
        record(&mut per_minute, n, 1);
        max_per_minute = max_per_minute.max(n);
    }
    let mut per_minute = Quantiles::of(&per_minute);
    per_minute.max = max_per_minute;
    let step = step as u64;
    let at_precision = |v: u64| (v + step / 2) / step * step;
    let g = Quantiles::of(&gaps);
    RateProfile {
        active_minutes: active,
        requests_per_minute: per_minute,
        gap_micros: Quantiles {
            p50: at_precision(g.p50),
            p90: at_precision(g.p90),
            p99: at_precision(g.p99),
            max: max_gap,
        },
    }
}

/// The trailing-window posts `T(x)` = posts in `(x - window, x]`, summarised over
/// `columns` equal slices of `[from, to)`: the largest value `T` takes in each slice.
/// The curve is exact where it matters: no peak falls between two samples, and at the
/// right edge of a window `[s, s + window)` it reaches that window's posts.
pub fn trailing_envelope(
    buckets: &[Bucket],
    window: Micros,
    from: Micros,
    to: Micros,
    columns: usize,
) -> Vec<u64> {
    let columns = columns.max(1);
    let span = (to - from).max(1) as i128;
    let column_of = |t: Micros| -> usize {
        let c = ((t - from) as i128 * columns as i128).div_euclid(span);
        c.clamp(0, columns as i128 - 1) as usize
    };
    // Per column: the largest value after an event in it, and the value it ends at.
    let mut peak: Vec<Option<u64>> = vec![None; columns];
    let mut end: Vec<Option<u64>> = vec![None; columns];
    let mut entering = 0u64;
    // Events: a post enters at t and leaves at t + window; leaving first on a tie.
    let (mut i, mut j) = (0usize, 0usize);
    let mut current = 0u64;
    let n = buckets.len();
    while i < n || j < n {
        let leave_t = if j < n {
            buckets[j].t.saturating_add(window)
        } else {
            Micros::MAX
        };
        let enter_t = if i < n { buckets[i].t } else { Micros::MAX };
        let t = leave_t.min(enter_t);
        while j < n && buckets[j].t.saturating_add(window) == t {
            current -= buckets[j].posts;
            j += 1;
        }
        while i < n && buckets[i].t == t {
            current += buckets[i].posts;
            i += 1;
        }
        if t >= to {
            break;
        }
        if t < from {
            entering = current;
            continue;
        }
        let c = column_of(t);
        peak[c] = Some(peak[c].map_or(current, |p| p.max(current)));
        end[c] = Some(current);
    }
    let mut level = entering;
    let mut out = Vec::with_capacity(columns);
    for c in 0..columns {
        out.push(peak[c].map_or(level, |p| p.max(level)));
        if let Some(e) = end[c] {
            level = e;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Micros = MICROS_PER_SEC;

    fn b(t: Micros, posts: u64, requests: u64) -> Bucket {
        Bucket { t, posts, requests }
    }

    #[test]
    fn gaps_at_the_logs_precision_and_exact_maxima() {
        // Whole seconds: one request every second, and one gap of 7 s.
        let mut buckets: Vec<Bucket> = (0..2000).map(|i| b(i * S, 1, 1)).collect();
        buckets.push(b(2006 * S, 1, 1));
        let p = rate_profile(&buckets);
        assert_eq!(p.gap_micros.p50, S as u64);
        assert_eq!(p.gap_micros.p99, S as u64);
        assert_eq!(p.gap_micros.max, 7 * S as u64);
        assert_eq!(p.requests_per_minute.max, 60);
        // Milliseconds: kept to the millisecond.
        let p = rate_profile(&[b(0, 1, 1), b(1_234_000, 1, 1)]);
        assert_eq!(p.gap_micros.max, 1_234_000);
        assert_eq!(p.gap_micros.p50 % 1000, 0);
    }

    #[test]
    fn envelope_reaches_the_peak_between_samples() {
        // Three posts within 2 seconds, window 10 s, drawn over 100 s in 4 columns.
        let buckets = [b(0, 1, 1), b(S, 1, 1), b(2 * S, 1, 1), b(50 * S, 1, 1)];
        let e = trailing_envelope(&buckets, 10 * S, 0, 100 * S, 4);
        assert_eq!(e, vec![3, 0, 1, 0]);
        // Brute force at every second agrees with the column maxima.
        let brute = |x: Micros| -> u64 {
            buckets
                .iter()
                .filter(|q| q.t > x - 10 * S && q.t <= x)
                .map(|q| q.posts)
                .sum()
        };
        for (c, v) in e.iter().enumerate() {
            let lo = c as i64 * 25;
            let m = (lo..lo + 25).map(|s| brute(s * S)).max().unwrap();
            assert_eq!(*v, m, "column {c}");
        }
    }

    #[test]
    fn rate_profile_counts_minutes_and_gaps() {
        let buckets = [b(0, 1, 2), b(S, 1, 1), b(61 * S, 0, 1)];
        let p = rate_profile(&buckets);
        assert_eq!(p.active_minutes, 2);
        assert_eq!(p.requests_per_minute.max, 3);
        assert!((p.gap_micros.p50 as i64 - S).abs() < S / 500, "{p:?}");
        assert!(p.gap_micros.max >= (60 * S - S / 10) as u64);
    }
}
