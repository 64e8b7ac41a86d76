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

/// How a series holds a bucket in memory: 16 bytes instead of 24, since almost every
/// (client, instant) holds far fewer than 2³² posts. A count that would overflow
/// starts another slot at the same instant; [`Series::into_buckets`] sums them back,
/// so the public [`Bucket`]s are exact whatever the counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Slot {
    t: Micros,
    posts: u32,
    requests: u32,
}

impl Slot {
    /// Adds counts if they fit; false (and unchanged) if not.
    #[inline]
    fn try_add(&mut self, posts: u64, requests: u64) -> bool {
        match (
            u32::try_from(self.posts as u64 + posts),
            u32::try_from(self.requests as u64 + requests),
        ) {
            (Ok(p), Ok(r)) => {
                self.posts = p;
                self.requests = r;
                true
            }
            _ => false,
        }
    }
}

/// One client's buckets, in memory as compact slots.
#[derive(Debug, Clone, Default)]
pub struct Series {
    slots: Vec<Slot>,
    /// The newest slot, kept out of `slots` while requests keep arriving at its
    /// instant: the common case then touches only this struct, not the vector's tail.
    last: Slot,
    has_last: bool,
    /// Length of the prefix of `slots` known to be sorted and compacted.
    canonical_len: u32,
}

/// Below this many slots a series is not worth compacting early.
const MIN_COMPACT: usize = 1024;

impl Series {
    #[inline]
    pub fn add(&mut self, t: Micros, posts: u64, requests: u64) {
        if self.has_last && self.last.t == t && self.last.try_add(posts, requests) {
            return;
        }
        self.flush_last();
        match (u32::try_from(posts), u32::try_from(requests)) {
            (Ok(p), Ok(r)) => {
                self.last = Slot {
                    t,
                    posts: p,
                    requests: r,
                };
                self.has_last = true;
            }
            _ => self.push(t, posts, requests),
        }
    }

    /// Moves the newest slot into the vector, compacting when the vector has doubled.
    #[inline]
    fn flush_last(&mut self) {
        if self.has_last {
            self.has_last = false;
            self.slots.push(self.last);
            if self.slots.len() >= MIN_COMPACT.max(2 * self.canonical_len as usize) {
                self.compact();
            }
        }
    }

    /// Appends counts as one slot, or several when they exceed a slot.
    fn push(&mut self, t: Micros, mut posts: u64, mut requests: u64) {
        loop {
            let p = posts.min(u32::MAX as u64);
            let r = requests.min(u32::MAX as u64);
            self.slots.push(Slot {
                t,
                posts: p as u32,
                requests: r as u32,
            });
            posts -= p;
            requests -= r;
            if posts == 0 && requests == 0 {
                return;
            }
        }
    }

    /// Sorts by time and sums slots of the same instant (as far as a slot holds).
    pub fn compact(&mut self) {
        if self.has_last {
            self.has_last = false;
            self.slots.push(self.last);
        }
        if self.canonical_len as usize == self.slots.len() {
            return;
        }
        // Log lines are mostly in time order, so this is usually a near-sorted sort.
        self.slots.sort_by_key(|b| b.t);
        let mut out = 0;
        for i in 0..self.slots.len() {
            let b = self.slots[i];
            if out > 0
                && self.slots[out - 1].t == b.t
                && self.slots[out - 1].try_add(b.posts as u64, b.requests as u64)
            {
                continue;
            }
            self.slots[out] = b;
            out += 1;
        }
        self.slots.truncate(out);
        self.canonical_len = out as u32;
    }

    pub fn merge(&mut self, mut other: Series) {
        if self.is_empty() {
            other.compact();
            *self = other;
            return;
        }
        self.compact();
        other.compact();
        self.slots.append(&mut other.slots);
        self.canonical_len = 0;
        self.compact();
    }

    /// Distinct instants held (after compaction).
    pub fn len(&mut self) -> usize {
        self.compact();
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty() && !self.has_last
    }

    /// The canonical buckets: sorted by time, one per instant.
    pub fn into_buckets(mut self) -> Vec<Bucket> {
        self.compact();
        let mut out: Vec<Bucket> = Vec::with_capacity(self.slots.len());
        for s in self.slots {
            match out.last_mut() {
                Some(b) if b.t == s.t => {
                    b.posts += s.posts as u64;
                    b.requests += s.requests as u64;
                }
                _ => out.push(Bucket {
                    t: s.t,
                    posts: s.posts as u64,
                    requests: s.requests as u64,
                }),
            }
        }
        out
    }

    pub fn from_buckets(buckets: Vec<Bucket>) -> Series {
        let mut s = Series::default();
        for b in buckets {
            s.push(b.t, b.posts, b.requests);
        }
        s.compact();
        s
    }
}

/// Keys of up to 15 bytes (every IPv4 address, most subnets) live in a `u128` with
/// their length, so looking one up hashes and compares two words, not a byte slice.
#[inline]
fn short_key(key: &[u8]) -> Option<u128> {
    if key.len() > 15 {
        return None;
    }
    let mut b = [0u8; 16];
    b[..key.len()].copy_from_slice(key);
    b[15] = key.len() as u8;
    Some(u128::from_le_bytes(b))
}

fn short_key_bytes(k: u128) -> Box<[u8]> {
    let b = k.to_le_bytes();
    b[..b[15] as usize].into()
}

/// Client key (bytes, as written) → series.
///
/// Series live in the hash tables themselves: one random memory access per request
/// finds a client's series, which on logs with many clients is most of the cost of
/// aggregating (measured with perf on the bench set: 100k clients, 5M buckets).
#[derive(Debug, Default)]
pub struct Aggregate {
    short: FxHashMap<u128, Series>,
    long: FxHashMap<Box<[u8]>, Series>,
}

impl Aggregate {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.short.len() + self.long.len()
    }

    pub fn is_empty(&self) -> bool {
        self.short.is_empty() && self.long.is_empty()
    }

    /// The series of `key`, created on first sight; the key is copied only then.
    #[inline]
    pub fn series_mut(&mut self, key: &[u8]) -> &mut Series {
        match short_key(key) {
            Some(k) => self.short.entry(k).or_default(),
            None => {
                if !self.long.contains_key(key) {
                    self.long.insert(key.into(), Series::default());
                }
                self.long.get_mut(key).expect("inserted above")
            }
        }
    }

    #[inline]
    pub fn add(&mut self, key: &[u8], t: Micros, posts: u64, requests: u64) {
        self.series_mut(key).add(t, posts, requests);
    }

    /// Adds every client of `other` into `self`.
    pub fn merge(&mut self, mut other: Aggregate) {
        if self.len() < other.len() {
            std::mem::swap(self, &mut other);
        }
        for (k, series) in other.short {
            self.short.entry(k).or_default().merge(series);
        }
        for (key, series) in other.long {
            self.series_mut(&key).merge(series);
        }
    }

    /// Clients sorted by key, each with its series (turned into buckets one client at
    /// a time by the caller, so the whole aggregate is never held twice).
    pub fn into_sorted_series(self) -> Vec<(Box<[u8]>, Series)> {
        let mut v: Vec<(Box<[u8]>, Series)> = Vec::with_capacity(self.len());
        v.extend(self.short.into_iter().map(|(k, s)| (short_key_bytes(k), s)));
        v.extend(self.long);
        v.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Clients sorted by key, each with canonical buckets.
    pub fn into_sorted(self) -> Vec<(Box<[u8]>, Vec<Bucket>)> {
        self.into_sorted_series()
            .into_iter()
            .map(|(k, s)| (k, s.into_buckets()))
            .collect()
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
    fn counts_beyond_a_slot_stay_exact() {
        let big = u32::MAX as u64;
        let mut a = Series::default();
        a.add(5, big, 1);
        a.add(5, big, 1);
        a.add(5, 3, 1);
        a.add(1, 10 * big + 7, 2);
        let mut b = Series::default();
        b.add(5, 1, big);
        b.add(5, 1, 2);
        a.merge(b);
        assert_eq!(
            a.into_buckets(),
            vec![
                Bucket {
                    t: 1,
                    posts: 10 * big + 7,
                    requests: 2
                },
                Bucket {
                    t: 5,
                    posts: 2 * big + 5,
                    requests: big + 5
                },
            ]
        );
        let long_key = [b'k'; 40];
        let mut agg = Aggregate::new();
        agg.add(&long_key, 1, 1, 1);
        agg.add(&long_key, 2, 1, 1);
        agg.add(b"short", 1, 1, 1);
        let sorted = agg.into_sorted();
        assert_eq!(sorted.len(), 2);
        assert_eq!(sorted[0].1.len(), 2);
    }

    #[test]
    fn compaction_keeps_memory_to_distinct_instants() {
        let mut s = Series::default();
        for i in 0..100_000 {
            s.add(i % 7, 1, 1);
        }
        assert!(s.slots.len() <= MIN_COMPACT);
        assert_eq!(s.len(), 7);
        assert_eq!(
            s.into_buckets().iter().map(|b| b.requests).sum::<u64>(),
            100_000
        );
    }
}
