//! The per-client aggregate: for each client, its requests summed per instant.
//!
//! This is the first-class, mergeable value of the engine. Workers fill one each and
//! merge them once; a later stage may write them out and merge them elsewhere. The
//! canonical form (buckets sorted by time, one per instant, zero-sum buckets kept) does
//! not depend on how the input was split, so `merge` is associative and commutative.
//! Memory grows with distinct (client, instant) pairs, not with lines: appends go to
//! the end of a client's run and the run is compacted whenever it doubles.

use crate::time::Micros;
use rustc_hash::FxHashMap;

/// All requests of one client at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    pub t: Micros,
    pub posts: u64,
    pub requests: u64,
}

/// One client's buckets. Canonical (sorted, one bucket per instant) after `compact`.
#[derive(Debug, Clone, Default)]
pub struct Series {
    buckets: Vec<Bucket>,
    /// Length of the prefix known to be canonical.
    canonical_len: usize,
}

/// Below this many buckets a series is not worth compacting early.
const MIN_COMPACT: usize = 1024;

impl Series {
    #[inline]
    pub fn add(&mut self, t: Micros, posts: u64, requests: u64) {
        if let Some(last) = self.buckets.last_mut() {
            if last.t == t {
                last.posts += posts;
                last.requests += requests;
                return;
            }
        }
        self.buckets.push(Bucket { t, posts, requests });
        if self.buckets.len() >= MIN_COMPACT.max(2 * self.canonical_len) {
            self.compact();
        }
    }

    /// Sorts by time and sums buckets of the same instant.
    pub fn compact(&mut self) {
        if self.canonical_len == self.buckets.len() {
            return;
        }
        // Log lines are mostly in time order, so this is usually a near-sorted sort.
        self.buckets.sort_by_key(|b| b.t);
        let mut out = 0;
        for i in 0..self.buckets.len() {
            let b = self.buckets[i];
            if out > 0 && self.buckets[out - 1].t == b.t {
                self.buckets[out - 1].posts += b.posts;
                self.buckets[out - 1].requests += b.requests;
            } else {
                self.buckets[out] = b;
                out += 1;
            }
        }
        self.buckets.truncate(out);
        self.canonical_len = out;
    }

    pub fn merge(&mut self, mut other: Series) {
        if self.buckets.is_empty() {
            other.compact();
            *self = other;
            return;
        }
        self.buckets.append(&mut other.buckets);
        self.canonical_len = 0;
        self.compact();
    }

    /// The canonical buckets.
    pub fn buckets(&mut self) -> &[Bucket] {
        self.compact();
        &self.buckets
    }

    pub fn into_buckets(mut self) -> Vec<Bucket> {
        self.compact();
        self.buckets
    }

    pub fn from_buckets(buckets: Vec<Bucket>) -> Series {
        let mut s = Series {
            buckets,
            canonical_len: 0,
        };
        s.compact();
        s
    }
}

/// Client key (bytes, as written) → series.
#[derive(Debug, Default)]
pub struct Aggregate {
    index: FxHashMap<Box<[u8]>, usize>,
    keys: Vec<Box<[u8]>>,
    series: Vec<Series>,
}

impl Aggregate {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The series of `key`, created on first sight; the key is copied only then.
    #[inline]
    pub fn series_mut(&mut self, key: &[u8]) -> &mut Series {
        let i = match self.index.get(key) {
            Some(&i) => i,
            None => {
                let i = self.keys.len();
                self.keys.push(key.into());
                self.series.push(Series::default());
                self.index.insert(key.into(), i);
                i
            }
        };
        &mut self.series[i]
    }

    #[inline]
    pub fn add(&mut self, key: &[u8], t: Micros, posts: u64, requests: u64) {
        self.series_mut(key).add(t, posts, requests);
    }

    /// Adds every client of `other` into `self`.
    pub fn merge(&mut self, other: Aggregate) {
        if self.is_empty() {
            *self = other;
            return;
        }
        for (key, series) in other.keys.into_iter().zip(other.series) {
            self.series_mut(&key).merge(series);
        }
    }

    /// Clients sorted by key, each with canonical buckets.
    pub fn into_sorted(self) -> Vec<(Box<[u8]>, Vec<Bucket>)> {
        let mut v: Vec<(Box<[u8]>, Vec<Bucket>)> = self
            .keys
            .into_iter()
            .zip(self.series)
            .map(|(k, s)| (k, s.into_buckets()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agg(events: &[(&str, i64, u64)]) -> Aggregate {
        let mut a = Aggregate::new();
        for &(k, t, w) in events {
            a.add(k.as_bytes(), t, w, 1);
        }
        a
    }

    #[test]
    fn merge_is_independent_of_the_split() {
        let events = [
            ("a", 5, 1),
            ("b", 1, 0),
            ("a", 1, 1),
            ("a", 5, 0),
            ("b", 1, 1),
            ("a", 3, 1),
        ];
        let whole = agg(&events).into_sorted();
        for cut in 0..=events.len() {
            let mut left = agg(&events[..cut]);
            left.merge(agg(&events[cut..]));
            assert_eq!(left.into_sorted(), whole);
            let mut right = agg(&events[cut..]);
            right.merge(agg(&events[..cut]));
            assert_eq!(right.into_sorted(), whole);
        }
        assert_eq!(
            whole[0].1,
            vec![
                Bucket {
                    t: 1,
                    posts: 1,
                    requests: 1
                },
                Bucket {
                    t: 3,
                    posts: 1,
                    requests: 1
                },
                Bucket {
                    t: 5,
                    posts: 1,
                    requests: 2
                },
            ]
        );
    }

    #[test]
    fn compaction_keeps_memory_to_distinct_instants() {
        let mut s = Series::default();
        for i in 0..100_000 {
            s.add(i % 7, 1, 1);
        }
        assert!(s.buckets.len() <= MIN_COMPACT);
        assert_eq!(s.buckets().len(), 7);
        assert_eq!(s.buckets().iter().map(|b| b.requests).sum::<u64>(), 100_000);
    }
}
