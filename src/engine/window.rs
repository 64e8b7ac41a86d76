//! Windows: the peak rolling window and the billed windows of one client.
//!
//! Input is one client's canonical buckets (sorted by time, one per instant). Every
//! scan is linear: two pointers over the buckets, with prefix sums.

use crate::engine::aggregate::Bucket;
use crate::engine::time::Micros;
use crate::engine::InvalidValue;
use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// How billed windows are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Greedy disjoint windows starting at post times.
    Rolling,
    /// Fixed windows aligned to the Unix epoch (UTC days with a 24h window).
    Calendar,
}

impl FromStr for Mode {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        match s {
            "rolling" => Ok(Self::Rolling),
            "calendar" => Ok(Self::Calendar),
            _ => Err(format!("unknown mode '{s}' (use rolling or calendar)").into()),
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Rolling => "rolling",
            Self::Calendar => "calendar",
        })
    }
}

/// A window `[start, start + length)` with what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: Micros,
    pub posts: u64,
    pub requests: u64,
}

/// For each bucket `i`, the posts and requests in `[t_i, t_i + length)`.
/// Calls `f(i, posts, requests)` in time order.
fn for_each_rolling(buckets: &[Bucket], length: Micros, mut f: impl FnMut(usize, u64, u64)) {
    let (mut j, mut posts, mut requests) = (0usize, 0u64, 0u64);
    for (i, b) in buckets.iter().enumerate() {
        let end = b.t.saturating_add(length);
        if j < i {
            j = i;
        }
        while j < buckets.len() && buckets[j].t < end {
            posts += buckets[j].posts;
            requests += buckets[j].requests;
            j += 1;
        }
        f(i, posts, requests);
        posts -= b.posts;
        requests -= b.requests;
    }
}

/// The rolling window with the most posts, starting at a post (earliest on a tie).
/// `None` when the client has no post.
pub fn peak(buckets: &[Bucket], length: Micros) -> Option<Span> {
    peak_until(buckets, length, Micros::MAX)
}

/// [`peak`] among the windows starting at or before `last_start` (nightly state keeps
/// the peak of the windows already complete).
pub fn peak_until(buckets: &[Bucket], length: Micros, last_start: Micros) -> Option<Span> {
    let mut best: Option<Span> = None;
    for_each_rolling(buckets, length, |i, posts, requests| {
        if buckets[i].posts > 0
            && buckets[i].t <= last_start
            && best.is_none_or(|b| posts > b.posts)
        {
            best = Some(Span {
                start: buckets[i].t,
                posts,
                requests,
            });
        }
    });
    best
}

/// Greedy disjoint rolling windows: the earliest post time whose window holds more
/// than `threshold` posts, then the earliest such time at or after its end, and so on.
pub fn billed_rolling(buckets: &[Bucket], length: Micros, threshold: u64) -> Vec<Span> {
    billed_rolling_from(buckets, length, threshold, Micros::MIN)
}

/// [`billed_rolling`] with no window starting before `from` (nightly state: the end of
/// the last window already billed final).
pub fn billed_rolling_from(
    buckets: &[Bucket],
    length: Micros,
    threshold: u64,
    from: Micros,
) -> Vec<Span> {
    let mut out = Vec::new();
    let mut next_allowed = from;
    for_each_rolling(buckets, length, |i, posts, requests| {
        let t = buckets[i].t;
        if buckets[i].posts > 0 && t >= next_allowed && posts > threshold {
            out.push(Span {
                start: t,
                posts,
                requests,
            });
            next_allowed = t.saturating_add(length);
        }
    });
    out
}

/// Fixed windows `[k·length, (k+1)·length)` whose posts exceed `threshold`.
pub fn billed_calendar(buckets: &[Bucket], length: Micros, threshold: u64) -> Vec<Span> {
    let mut out = Vec::new();
    let mut current: Option<Span> = None;
    for b in buckets {
        let start = b.t.div_euclid(length) * length;
        match &mut current {
            Some(span) if span.start == start => {
                span.posts += b.posts;
                span.requests += b.requests;
            }
            _ => {
                if let Some(span) = current.take() {
                    if span.posts > threshold {
                        out.push(span);
                    }
                }
                current = Some(Span {
                    start,
                    posts: b.posts,
                    requests: b.requests,
                });
            }
        }
    }
    if let Some(span) = current {
        if span.posts > threshold {
            out.push(span);
        }
    }
    out
}

pub fn billed(buckets: &[Bucket], length: Micros, threshold: u64, mode: Mode) -> Vec<Span> {
    billed_from(buckets, length, threshold, mode, Micros::MIN)
}

/// [`billed`], with no rolling window starting before `from` (nightly state: the end of
/// the last window already billed final). Calendar windows are fixed, so `from` does
/// not move them.
pub fn billed_from(
    buckets: &[Bucket],
    length: Micros,
    threshold: u64,
    mode: Mode,
    from: Micros,
) -> Vec<Span> {
    match mode {
        Mode::Rolling => billed_rolling_from(buckets, length, threshold, from),
        Mode::Calendar => billed_calendar(buckets, length, threshold),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000_000;
    const DAY: i64 = 24 * H;

    fn b(t: i64, posts: u64, requests: u64) -> Bucket {
        Bucket { t, posts, requests }
    }

    #[test]
    fn window_is_half_open() {
        // A post exactly at s + 24h falls in the next window, not this one.
        let buckets = [b(0, 1, 1), b(DAY, 1, 1)];
        assert_eq!(peak(&buckets, DAY).unwrap().posts, 1);
        let billed = billed_rolling(&buckets, DAY, 0);
        assert_eq!(billed.len(), 2);
        assert_eq!(billed[1].start, DAY);
        let buckets = [b(0, 1, 1), b(DAY - 1, 1, 1)];
        assert_eq!(peak(&buckets, DAY).unwrap().posts, 2);
        assert_eq!(billed_rolling(&buckets, DAY, 0).len(), 1);
    }

    #[test]
    fn threshold_is_strict() {
        let buckets = [b(0, 3, 3)];
        assert!(billed_rolling(&buckets, DAY, 3).is_empty());
        assert_eq!(billed_rolling(&buckets, DAY, 2).len(), 1);
        assert!(billed_calendar(&buckets, DAY, 3).is_empty());
    }

    #[test]
    fn zero_weight_requests_never_open_a_window() {
        let buckets = [b(0, 0, 5), b(H, 2, 2)];
        let p = peak(&buckets, DAY).unwrap();
        assert_eq!((p.start, p.posts, p.requests), (H, 2, 2));
        let w = billed_rolling(&buckets, DAY, 1);
        assert_eq!((w[0].start, w[0].requests), (H, 2));
        assert_eq!(peak(&[b(0, 0, 1)], DAY), None);
    }

    #[test]
    fn greedy_continues_after_each_window() {
        // Posts every 6 hours for 3 days; threshold 3 → windows of 4 posts each.
        let buckets: Vec<Bucket> = (0..12).map(|i| b(i * 6 * H, 1, 1)).collect();
        let w = billed_rolling(&buckets, DAY, 3);
        assert_eq!(
            w.iter().map(|s| s.start).collect::<Vec<_>>(),
            [0, DAY, 2 * DAY]
        );
        assert!(w.iter().all(|s| s.posts == 4));
    }

    #[test]
    fn calendar_misses_what_rolling_catches() {
        let buckets = [b(DAY - H, 2, 2), b(DAY + H, 2, 2)];
        assert!(billed_calendar(&buckets, DAY, 3).is_empty());
        assert_eq!(billed_rolling(&buckets, DAY, 3)[0].posts, 4);
    }

    #[test]
    fn calendar_before_the_epoch() {
        let buckets = [b(-1, 1, 1), b(0, 1, 1)];
        let w = billed_calendar(&buckets, DAY, 0);
        assert_eq!(w.iter().map(|s| s.start).collect::<Vec<_>>(), [-DAY, 0]);
    }

    #[test]
    fn peak_ties_take_the_earliest() {
        let buckets = [b(0, 1, 1), b(2 * DAY, 1, 1)];
        assert_eq!(peak(&buckets, DAY).unwrap().start, 0);
    }
}
