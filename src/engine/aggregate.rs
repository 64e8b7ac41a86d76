//! The per-client aggregate: for each client, its requests summed per instant.
//!
//! This is the first-class, mergeable value of the engine. Workers fill one each and
//! merge them once; a later stage may write them out and merge them elsewhere. The
//! canonical form (buckets sorted by time, one per instant, zero-sum buckets kept) does
//! not depend on how the input was split, so `merge` is associative and commutative.
//! Memory grows with distinct (client, instant) pairs, not with lines: appends go to
//! the end of a client's run, which is delta-encoded (see [`Series`]).

use crate::engine::time::Micros;
use rustc_hash::FxHashMap;

/// All requests of one client at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    pub t: Micros,
    pub posts: u64,
    pub requests: u64,
}

/// A bucket as it waits in a series' tail: 16 bytes instead of 24, since almost every
/// (client, instant) holds far fewer than 2³² posts. A count that would overflow starts
/// another slot at the same instant; merging into the run sums them back in `u64`.
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

/// Slots a series holds inline before it moves them into its run.
const TAIL: usize = 2;
/// Microseconds in a second: runs whose instants are all whole seconds store deltas in
/// seconds (most logs), which takes one or two bytes fewer per bucket.
const SECOND: i64 = 1_000_000;

/// A client's canonical buckets: sorted, one per instant, delta-encoded as LEB128
/// varints `(Δt, posts, requests)` (the first instant zigzag-encoded, as it may be
/// before 1970). Counts are `u64`, so buckets are exact whatever the counts.
#[derive(Debug, Clone)]
struct VarintRun {
    bytes: Vec<u8>,
    /// The newest instant (meaningless while `len == 0`).
    last: Micros,
    /// Buckets held (saturating: only a statistic and a size hint; 2³² distinct
    /// instants of one client would take over 12 GB).
    len: u32,
    /// Every instant is a whole second, and deltas are stored in seconds.
    in_seconds: bool,
}

impl Default for VarintRun {
    fn default() -> Self {
        VarintRun {
            bytes: Vec::new(),
            len: 0,
            last: 0,
            in_seconds: true,
        }
    }
}

impl VarintRun {
    fn iter(&self) -> RunIter<'_> {
        RunIter {
            bytes: &self.bytes,
            pos: 0,
            t: 0,
            unit: self.unit(),
            started: false,
        }
    }

    fn unit(&self) -> i64 {
        if self.in_seconds {
            SECOND
        } else {
            1
        }
    }

    fn put(&mut self, t: Micros, posts: u64, requests: u64) {
        let unit = self.unit();
        let v = t / unit;
        if self.len == 0 {
            put_varint(&mut self.bytes, ((v << 1) ^ (v >> 63)) as u64);
        } else {
            put_varint(&mut self.bytes, v.wrapping_sub(self.last / unit) as u64);
        }
        put_varint(&mut self.bytes, posts);
        put_varint(&mut self.bytes, requests);
        self.last = t;
        self.len = self.len.saturating_add(1);
    }

    /// Appends `slots` (sorted by time) when they all come after the run and fit its
    /// unit, the common case of logs written in time order; false (run unchanged)
    /// otherwise. Growth is an eighth at a time, so the slack stays small.
    fn try_append(&mut self, slots: &[Slot]) -> bool {
        let Some(first) = slots.first() else {
            return true;
        };
        if (self.len > 0 && first.t <= self.last)
            || (self.in_seconds && self.len > 0 && slots.iter().any(|s| s.t % SECOND != 0))
        {
            return false;
        }
        if self.len == 0 {
            self.in_seconds = slots.iter().all(|s| s.t % SECOND == 0);
        }
        let need = slots.len() * 12;
        if self.bytes.capacity() - self.bytes.len() < need {
            self.bytes.reserve_exact(need.max(self.bytes.len() / 8));
        }
        for b in merge_sum(slots.iter().map(slot_bucket), std::iter::empty()) {
            self.put(b.t, b.posts, b.requests);
        }
        true
    }

    /// A run of `buckets` (sorted, distinct instants), in an allocation of exact size.
    fn build(buckets: impl Iterator<Item = Bucket>, in_seconds: bool) -> VarintRun {
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let mut run = VarintRun {
                bytes: std::mem::take(&mut *scratch),
                in_seconds,
                ..VarintRun::default()
            };
            run.bytes.clear();
            for b in buckets {
                run.put(b.t, b.posts, b.requests);
            }
            let exact = run.bytes.as_slice().to_vec();
            *scratch = std::mem::replace(&mut run.bytes, exact);
            run
        })
    }
}

/// One client's buckets.
///
/// Memory is the limit on big inputs (one entry per distinct client and instant), so
/// the buckets live in a delta-encoded [`VarintRun`]: 3–5 bytes a bucket instead of 24
/// (measured on the bench set, see BENCHMARKS.md). New requests land in a small inline
/// tail, kept sorted, where requests a little out of order still find their instant. A
/// full tail hands its older slots on: appended to the run when they come after it
/// (logs are mostly in time order), else set aside in `pending` until that reaches a
/// quarter of the run and is merged in, so each bucket is re-encoded a bounded number of
/// times.
#[derive(Debug, Clone, Default)]
pub struct Series {
    run: VarintRun,
    tail_len: u8,
    tail: [Slot; TAIL],
    /// Boxed (8 bytes instead of 24 in every series): only series that get requests
    /// out of order need it.
    #[allow(clippy::box_collection)]
    pending: Option<Box<Vec<Slot>>>,
}

#[inline]
fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[inline]
fn get_varint(bytes: &[u8], pos: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let b = bytes[*pos];
        *pos += 1;
        v |= ((b & 0x7f) as u64) << shift;
        if b < 0x80 {
            return v;
        }
        shift += 7;
    }
}

/// Decodes a run, in time order.
struct RunIter<'a> {
    bytes: &'a [u8],
    pos: usize,
    t: Micros,
    unit: i64,
    started: bool,
}

impl Iterator for RunIter<'_> {
    type Item = Bucket;

    #[inline]
    fn next(&mut self) -> Option<Bucket> {
        if self.pos >= self.bytes.len() {
            return None;
        }
        let d = get_varint(self.bytes, &mut self.pos);
        self.t = if self.started {
            self.t.wrapping_add((d as i64).wrapping_mul(self.unit))
        } else {
            self.started = true;
            ((d >> 1) as i64 ^ -((d & 1) as i64)).wrapping_mul(self.unit)
        };
        let posts = get_varint(self.bytes, &mut self.pos);
        let requests = get_varint(self.bytes, &mut self.pos);
        Some(Bucket {
            t: self.t,
            posts,
            requests,
        })
    }
}

/// Two time-ordered bucket streams as one, with buckets of the same instant summed.
fn merge_sum(
    a: impl Iterator<Item = Bucket>,
    b: impl Iterator<Item = Bucket>,
) -> impl Iterator<Item = Bucket> {
    let mut a = a.peekable();
    let mut b = b.peekable();
    let mut merged = std::iter::from_fn(move || match (a.peek(), b.peek()) {
        (Some(x), Some(y)) if y.t < x.t => b.next(),
        (Some(_), _) => a.next(),
        (None, _) => b.next(),
    })
    .peekable();
    std::iter::from_fn(move || {
        let mut out = merged.next()?;
        while let Some(next) = merged.next_if(|n| n.t == out.t) {
            out.posts = out.posts.saturating_add(next.posts);
            out.requests = out.requests.saturating_add(next.requests);
        }
        Some(out)
    })
}

thread_local! {
    /// Where runs are re-encoded before being copied into an allocation of exact size.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn slot_bucket(s: &Slot) -> Bucket {
    Bucket {
        t: s.t,
        posts: s.posts as u64,
        requests: s.requests as u64,
    }
}

impl Series {
    #[inline]
    pub fn add(&mut self, t: Micros, posts: u64, requests: u64) {
        let tail = &mut self.tail[..self.tail_len as usize];
        if let Some(slot) = tail.iter_mut().rev().find(|s| s.t == t) {
            if slot.try_add(posts, requests) {
                return;
            }
        }
        let (mut posts, mut requests) = (posts, requests);
        loop {
            let p = posts.min(u32::MAX as u64);
            let r = requests.min(u32::MAX as u64);
            self.push(Slot {
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

    #[inline]
    fn push(&mut self, slot: Slot) {
        if self.tail_len as usize == TAIL {
            self.spill();
        }
        self.tail[self.tail_len as usize] = slot;
        self.tail_len += 1;
    }

    /// Empties the full tail but for its newest slot (which the next requests, at the
    /// same instant, may still add to): onto the run's end, or into `pending`.
    #[cold]
    fn spill(&mut self) {
        if self.tail.windows(2).any(|w| w[1].t < w[0].t) {
            self.tail.sort_by_key(|s| s.t);
        }
        let mut out = [Slot::default(); TAIL - 1];
        out.copy_from_slice(&self.tail[..TAIL - 1]);
        self.tail[0] = self.tail[TAIL - 1];
        self.tail_len = 1;
        if self.pending.is_none() && self.run.try_append(&out) {
            return;
        }
        let pending = self.pending.get_or_insert_default();
        pending.extend_from_slice(&out);
        if pending.len() >= 4.max(self.run.len as usize / 4) {
            let mut slots = self.pending.take().unwrap_or_default();
            self.merge_slots(&mut slots);
        }
    }

    /// Merges `slots` (any order) into the run.
    fn merge_slots(&mut self, slots: &mut [Slot]) {
        slots.sort_unstable_by_key(|s| s.t);
        if self.run.try_append(slots) {
            return;
        }
        let in_seconds = self.run.in_seconds && slots.iter().all(|s| s.t % SECOND == 0);
        let merged = merge_sum(self.run.iter(), slots.iter().map(slot_bucket));
        self.run = VarintRun::build(merged, in_seconds);
    }

    /// Merges the tail and everything pending into the run.
    pub fn compact(&mut self) {
        let mut slots = self.pending.take().map(|b| *b).unwrap_or_default();
        slots.extend_from_slice(&self.tail[..self.tail_len as usize]);
        self.tail_len = 0;
        if !slots.is_empty() {
            self.merge_slots(&mut slots);
        }
    }

    pub fn merge(&mut self, mut other: Series) {
        other.compact();
        if self.is_empty() {
            *self = other;
            return;
        }
        self.compact();
        let in_seconds = self.run.in_seconds && other.run.in_seconds;
        self.run = VarintRun::build(merge_sum(self.run.iter(), other.run.iter()), in_seconds);
    }

    /// Distinct instants held (after compaction).
    pub fn len(&mut self) -> usize {
        self.compact();
        self.run.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.run.len == 0 && self.tail_len == 0 && self.pending.is_none()
    }

    /// Bytes the series holds on the heap (its run and pending slots).
    pub fn heap_bytes(&self) -> usize {
        self.run.bytes.capacity()
            + self
                .pending
                .as_ref()
                .map_or(0, |p| p.capacity() * std::mem::size_of::<Slot>())
    }

    /// The canonical buckets: sorted by time, one per instant.
    pub fn into_buckets(mut self) -> Vec<Bucket> {
        self.compact();
        let mut out = Vec::with_capacity(self.run.len as usize);
        out.extend(self.run.iter());
        out
    }

    /// A series of `buckets` (any order; buckets of one instant are summed).
    pub fn from_buckets(mut buckets: Vec<Bucket>) -> Series {
        buckets.sort_by_key(|b| b.t);
        let in_seconds = buckets.iter().all(|b| b.t % SECOND == 0);
        Series {
            run: VarintRun::build(
                merge_sum(buckets.into_iter(), std::iter::empty()),
                in_seconds,
            ),
            ..Series::default()
        }
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
    use proptest::prelude::*;

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

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Any sequence of additions, split anywhere and merged, gives the buckets a
        /// plain ordered map of exact sums gives: sub-second and pre-1970 instants,
        /// counts beyond 32 bits, big and small series alike.
        #[test]
        fn series_equals_a_plain_map(
            events in prop::collection::vec(
                (
                    prop_oneof![
                        (-5i64..200).prop_map(|s| s * SECOND),
                        -5_000_000i64..200_000_000,
                        any::<i64>().prop_map(|t| t / 4),
                    ],
                    prop_oneof![0u64..3, any::<u64>().prop_map(|p| p >> 20)],
                    0u64..3,
                ),
                0..600,
            ),
            cut in 0usize..600,
        ) {
            let mut want: std::collections::BTreeMap<i64, (u64, u64)> = Default::default();
            for &(t, p, r) in &events {
                let e = want.entry(t).or_default();
                e.0 += p;
                e.1 += r;
            }
            let want: Vec<Bucket> = want
                .into_iter()
                .map(|(t, (posts, requests))| Bucket { t, posts, requests })
                .collect();
            let cut = cut.min(events.len());
            let mut a = Series::default();
            let mut b = Series::default();
            for &(t, p, r) in &events[..cut] {
                a.add(t, p, r);
            }
            for &(t, p, r) in &events[cut..] {
                b.add(t, p, r);
            }
            a.merge(b);
            prop_assert_eq!(a.clone().into_buckets(), want.clone());
            prop_assert_eq!(Series::from_buckets(want.clone()).into_buckets(), want);
        }
    }

    #[test]
    fn compaction_keeps_memory_to_distinct_instants() {
        let mut s = Series::default();
        for i in 0..100_000 {
            s.add(i % 7, 1, 1);
        }
        assert!(s.heap_bytes() < 1024);
        assert_eq!(s.len(), 7);
        assert_eq!(
            s.into_buckets().iter().map(|b| b.requests).sum::<u64>(),
            100_000
        );
    }
}
