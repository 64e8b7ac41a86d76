//! The per-client aggregate: for each client, its requests summed per instant.
//!
//! This is the first-class, mergeable value of the engine. Workers fill one each and
//! merge them once; a later stage may write them out and merge them elsewhere. The
//! canonical form (buckets sorted by time, one per instant, zero-sum buckets kept) does
//! not depend on how the input was split, so `merge` is associative and commutative.
//! Memory grows with distinct (client, instant) pairs, not with lines: appends go to
//! the end of a client's run, which is delta-encoded (see [`Series`]).

mod ids;

use crate::engine::time::Micros;
use ids::IdTable;
pub use ids::{prefetch, spread};
use rayon::prelude::*;
use rustc_hash::FxHasher;
use std::hash::Hasher;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

/// All requests of one client at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    pub t: Micros,
    pub posts: u64,
    pub requests: u64,
}

/// A bucket as it waits in a series' tail slot: 16 bytes instead of 24, since almost every
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

/// Slots a series holds inline: two, so that requests logged a little out of order
/// (two instants interleaved) still find their slot. With one (16 bytes less per
/// client), `scan` of the bench set (4 × 1M lines) took 9.71 s against 8.63 s before
/// this layout (medians of 5 alternating runs; slots re-encoded through `pending`);
/// with two, 8.86 s against 9.16 s (3 runs, `--no-evidence`), 2026-11-30, 2 cores.
const TAIL: usize = 2;
/// Runs of fewer buckets than this take an out-of-order slot in at once (see
/// `Series::hand_over`).
const SHORT_RUN: usize = 32;
/// How many buckets back from a run's end a slot out of order is put in place (see
/// `Series::try_insert_near_end`); further back, it waits in `pending`.
const NEAR_END: usize = 64;
/// Microseconds in a second: runs whose instants are all whole seconds store deltas in
/// seconds (most logs), which takes one or two bytes fewer per bucket.
const SECOND: i64 = 1_000_000;

/// One client's buckets.
///
/// Memory is the limit on big inputs (one entry per distinct client and instant), so
/// the buckets live in a delta-encoded run: LEB128 varints `(Δt, posts, requests)`,
/// the first instant zigzag-encoded (it may be before 1970), 3–5 bytes a bucket instead
/// of 24 (measured on the bench set, see BENCHMARKS.md). Counts are `u64`, so buckets
/// are exact whatever the counts. The newest requests land in two inline slots, where
/// the requests of one instant add up; a request at a third instant hands the older on:
/// appended to the run when it comes after it (logs are mostly in time order), put in
/// place when it is among the run's last buckets (logs come seconds out of order), else
/// set aside in `pending` until that reaches a quarter of the run and is merged in, so
/// each bucket is re-encoded a bounded number of times.
///
/// Everything a client costs besides its run's bytes is this struct (80 bytes): the
/// run's fields are kept here flat rather than in a struct of their own, whose padding
/// would cost 8 more.
#[derive(Debug, Clone)]
pub struct Series {
    /// The canonical buckets: sorted, one per instant, varint-encoded.
    bytes: Vec<u8>,
    /// The run's newest instant (meaningless while `len == 0`).
    last: Micros,
    /// Buckets in the run (saturating: only a statistic and a size hint; 2³² distinct
    /// instants of one client would take over 12 GB).
    len: u32,
    /// Every instant of the run is a whole second, and deltas are stored in seconds.
    in_seconds: bool,
    /// Slots held in `tail`, oldest first.
    tail_len: u8,
    tail: [Slot; TAIL],
    /// Boxed (8 bytes instead of 24 in every series): only series that get requests
    /// out of order need it.
    #[allow(clippy::box_collection)]
    pending: Option<Box<Vec<Slot>>>,
}

impl Default for Series {
    fn default() -> Self {
        Series {
            bytes: Vec::new(),
            last: 0,
            len: 0,
            in_seconds: true,
            tail_len: 0,
            tail: [Slot::default(); TAIL],
            pending: None,
        }
    }
}

/// What an allocation of `bytes` costs with glibc's malloc: an 8-byte header, rounded
/// up to 16, 32 at least (a run of 5 bytes takes 32).
fn malloc_cost(bytes: usize) -> usize {
    match bytes {
        0 => 0,
        _ => ((bytes + 8 + 15) & !15).max(32),
    }
}

/// The capacity to ask for to hold `bytes`: all that glibc's malloc gives for them
/// anyway (its chunk less the 8-byte header), so that the slack costs nothing and
/// [`malloc_cost`] of the capacity is that of `bytes`.
fn malloc_usable(bytes: usize) -> usize {
    malloc_cost(bytes).saturating_sub(8)
}

/// `bytes` in an allocation of their size as malloc rounds it (see [`malloc_usable`]):
/// the next appends may fit without a `realloc`.
fn run_of(bytes: &[u8]) -> Vec<u8> {
    let mut run = Vec::with_capacity(malloc_usable(bytes.len()));
    run.extend_from_slice(bytes);
    run
}

#[inline]
fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Where the varint that ends just before `end` starts (its last byte is the only one
/// under 0x80).
fn varint_start(bytes: &[u8], end: usize) -> usize {
    let mut i = end - 1;
    while i > 0 && bytes[i - 1] & 0x80 != 0 {
        i -= 1;
    }
    i
}

/// How many bytes [`put_varint`] writes for `v`.
#[inline]
fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
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

/// [`get_varint`] for bytes that may be cut or damaged: `None` instead of a panic.
fn get_varint_checked(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*pos)?;
        *pos += 1;
        v |= ((b & 0x7f) as u64) << shift;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(d: u64) -> i64 {
    (d >> 1) as i64 ^ -((d & 1) as i64)
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
            unzigzag(d).wrapping_mul(self.unit)
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

/// Two runs as one stream in time order, the buckets of an instant in both summed (a
/// run holds each instant once). Hand-written: merging two workers' series through
/// [`merge_sum`]'s peeking iterators took 43 samples of one bench file's default scan
/// against 34 (`perf record`, 999 Hz, one run each).
struct MergeRuns<'a> {
    a: RunIter<'a>,
    b: RunIter<'a>,
    next_a: Option<Bucket>,
    next_b: Option<Bucket>,
}

impl<'a> MergeRuns<'a> {
    fn new(mut a: RunIter<'a>, mut b: RunIter<'a>) -> Self {
        let (next_a, next_b) = (a.next(), b.next());
        MergeRuns {
            a,
            b,
            next_a,
            next_b,
        }
    }
}

impl Iterator for MergeRuns<'_> {
    type Item = Bucket;

    #[inline]
    fn next(&mut self) -> Option<Bucket> {
        match (self.next_a, self.next_b) {
            (Some(x), Some(y)) => {
                if x.t < y.t {
                    self.next_a = self.a.next();
                    Some(x)
                } else if y.t < x.t {
                    self.next_b = self.b.next();
                    Some(y)
                } else {
                    self.next_a = self.a.next();
                    self.next_b = self.b.next();
                    Some(Bucket {
                        t: x.t,
                        posts: x.posts.saturating_add(y.posts),
                        requests: x.requests.saturating_add(y.requests),
                    })
                }
            }
            (Some(x), None) => {
                self.next_a = self.a.next();
                Some(x)
            }
            (None, y) => {
                self.next_b = self.b.next();
                y
            }
        }
    }
}

/// Two time-ordered bucket streams as one, with buckets of the same instant summed.
fn merge_sum(
    a: impl Iterator<Item = Bucket>,
    b: impl Iterator<Item = Bucket>,
) -> impl Iterator<Item = Bucket> {
    let mut a = a.peekable();
    let mut b = b.peekable();
    let merged = std::iter::from_fn(move || match (a.peek(), b.peek()) {
        (Some(x), Some(y)) if y.t < x.t => b.next(),
        (Some(_), _) => a.next(),
        (None, _) => b.next(),
    });
    sum_same_instants(merged)
}

/// Buckets in time order (instants repeated) with the buckets of one instant summed.
fn sum_same_instants(buckets: impl Iterator<Item = Bucket>) -> impl Iterator<Item = Bucket> {
    let mut buckets = buckets.peekable();
    std::iter::from_fn(move || {
        let mut out = buckets.next()?;
        while let Some(next) = buckets.next_if(|n| n.t == out.t) {
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

/// A run of `buckets` (sorted, distinct instants) in an allocation of exact size:
/// its bytes, newest instant and length.
fn encode_run(buckets: impl Iterator<Item = Bucket>, in_seconds: bool) -> (Vec<u8>, Micros, u32) {
    with_run(buckets, in_seconds, |bytes, last, len| {
        (run_of(bytes), last, len)
    })
}

/// Calls `f` with the run of `buckets` (sorted, distinct instants), encoded in this
/// thread's scratch buffer: its bytes, newest instant and length.
fn with_run<R>(
    buckets: impl Iterator<Item = Bucket>,
    in_seconds: bool,
    f: impl FnOnce(&[u8], Micros, u32) -> R,
) -> R {
    SCRATCH.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        let mut run = Series {
            bytes: std::mem::take(&mut *scratch),
            in_seconds,
            ..Series::default()
        };
        run.bytes.clear();
        for b in buckets {
            run.put(b.t, b.posts, b.requests);
        }
        let out = f(&run.bytes, run.last, run.len);
        *scratch = std::mem::take(&mut run.bytes);
        out
    })
}

impl Series {
    fn unit(&self) -> i64 {
        if self.in_seconds {
            SECOND
        } else {
            1
        }
    }

    fn run(&self) -> RunIter<'_> {
        RunIter {
            bytes: &self.bytes,
            pos: 0,
            t: 0,
            unit: self.unit(),
            started: false,
        }
    }

    /// Replaces the run with `buckets` (sorted, distinct instants).
    fn set_run(&mut self, (bytes, last, len): (Vec<u8>, Micros, u32), in_seconds: bool) {
        self.bytes = bytes;
        self.last = last;
        self.len = len;
        self.in_seconds = in_seconds;
    }

    /// The first varint of bucket `t` as the run's next: its instant's delta from
    /// the run's newest (the first instant itself, zigzag-encoded).
    #[inline]
    fn delta(&self, t: Micros) -> u64 {
        // Constant divisors: a division by `unit` takes several times as long.
        let (v, last) = if self.in_seconds {
            (t / SECOND, self.last / SECOND)
        } else {
            (t, self.last)
        };
        if self.len == 0 {
            zigzag(v)
        } else {
            v.wrapping_sub(last) as u64
        }
    }

    /// Appends a bucket after the run's newest instant. The buffer grows as a vector
    /// does: for runs encoded in a scratch buffer (see [`Self::push`] for a client's).
    fn put(&mut self, t: Micros, posts: u64, requests: u64) {
        let d = self.delta(t);
        self.write_bucket(t, d, posts, requests);
    }

    /// [`Self::put`] onto a client's own run, which grows by an eighth (at least the
    /// bucket), rounded up to what malloc gives anyway, so the slack stays small.
    #[inline]
    fn push(&mut self, t: Micros, posts: u64, requests: u64) {
        let d = self.delta(t);
        self.reserve_run(varint_len(d) + varint_len(posts) + varint_len(requests));
        self.write_bucket(t, d, posts, requests);
    }

    /// Writes the bucket at `t` whose first varint is `d` (its [`Self::delta`]).
    #[inline]
    fn write_bucket(&mut self, t: Micros, d: u64, posts: u64, requests: u64) {
        put_varint(&mut self.bytes, d);
        put_varint(&mut self.bytes, posts);
        put_varint(&mut self.bytes, requests);
        self.last = t;
        self.len = self.len.saturating_add(1);
    }

    /// Room for `n` more bytes in the run: it grows by an eighth (at least `n`), to what
    /// malloc gives anyway.
    #[inline]
    fn reserve_run(&mut self, n: usize) {
        let len = self.bytes.len();
        if self.bytes.capacity() - len < n {
            self.bytes
                .reserve_exact(malloc_usable(len + n.max(len / 8)) - len);
        }
    }

    /// Puts `slot`, which comes before the run's newest instant, into the run in place
    /// if its instant is at most [`NEAR_END`] buckets back: walked back from the end
    /// (each varint ends in the only byte under 0x80; each delta leads back from
    /// `last`), the bucket of its instant gets its counts added, or the bucket after it
    /// a shorter delta with the slot's bucket before it. False (unchanged) if further
    /// back, or if it does not fit the run's unit. Logs come seconds out of order: a
    /// tenth of one bench file's scrapers' slots, which through `pending` re-encoded
    /// their runs again and again; in place, its scan (`--threads 1 --no-evidence`) took
    /// 3.5% less CPU (task-clock medians of 9 alternating runs, 1,094 against 1,134 ms).
    fn try_insert_near_end(&mut self, slot: Slot) -> bool {
        if self.len == 0 || (self.in_seconds && slot.t % SECOND != 0) {
            return false;
        }
        let in_units = |t: Micros, in_seconds: bool| if in_seconds { t / SECOND } else { t };
        let s = in_units(slot.t, self.in_seconds);
        let (posts, requests) = (slot.posts as u64, slot.requests as u64);
        let bytes = &self.bytes;
        // The bucket looked at (its instant `t`, in units), and where the one after it
        // starts (the run's end for the newest).
        let mut t = in_units(self.last, self.in_seconds);
        let mut next = bytes.len();
        for _ in 0..NEAR_END {
            let requests_at = varint_start(bytes, next);
            let posts_at = varint_start(bytes, requests_at);
            let at = varint_start(bytes, posts_at);
            if s == t {
                let mut pos = posts_at;
                let p = get_varint(bytes, &mut pos).saturating_add(posts);
                let r = get_varint(bytes, &mut pos).saturating_add(requests);
                return self.splice_run(posts_at..next, &[p, r], false);
            }
            if s > t {
                // Before the bucket at `next` (there is one: `s` is before `last`).
                let mut pos = next;
                let t_next = t.wrapping_add(get_varint(bytes, &mut pos) as i64);
                let values = [
                    s.wrapping_sub(t) as u64,
                    posts,
                    requests,
                    t_next.wrapping_sub(s) as u64,
                ];
                return self.splice_run(next..pos, &values, true);
            }
            let mut pos = at;
            let d = get_varint(bytes, &mut pos);
            if at == 0 {
                // Before the first bucket, whose instant is written whole.
                let values = [zigzag(s), posts, requests, t.wrapping_sub(s) as u64];
                return self.splice_run(0..pos, &values, true);
            }
            t = t.wrapping_sub(d as i64);
            next = at;
        }
        false
    }

    /// Replaces the run's bytes in `range` with the varints of `values`; a bucket more
    /// if `inserted`.
    fn splice_run(
        &mut self,
        range: std::ops::Range<usize>,
        values: &[u64],
        inserted: bool,
    ) -> bool {
        let mut varints = [0u8; 40];
        let mut n = 0;
        for &v in values {
            let mut v = v;
            while v >= 0x80 {
                varints[n] = v as u8 | 0x80;
                n += 1;
                v >>= 7;
            }
            varints[n] = v as u8;
            n += 1;
        }
        self.reserve_run(n.saturating_sub(range.len()));
        self.bytes.splice(range, varints[..n].iter().copied());
        if inserted {
            self.len = self.len.saturating_add(1);
        }
        true
    }

    /// Appends `slot` when it comes after the run and fits its unit, the common case
    /// of logs written in time order; false (run unchanged) otherwise.
    #[inline]
    fn try_append_one(&mut self, slot: Slot) -> bool {
        if self.len > 0 {
            if slot.t <= self.last || (self.in_seconds && slot.t % SECOND != 0) {
                return false;
            }
        } else {
            self.in_seconds = slot.t % SECOND == 0;
        }
        self.push(slot.t, slot.posts as u64, slot.requests as u64);
        true
    }

    /// [`Self::try_append_one`] for `slots` (sorted by time; those of one instant are
    /// summed).
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
        for same in slots.chunk_by(|a, b| a.t == b.t) {
            // Fewer than 2³² slots of at most 2³² - 1 each: the sums fit.
            let posts = same.iter().map(|s| s.posts as u64).sum();
            let requests = same.iter().map(|s| s.requests as u64).sum();
            self.push(same[0].t, posts, requests);
        }
        true
    }

    #[inline]
    pub fn add(&mut self, t: Micros, posts: u64, requests: u64) {
        self.add_sized(t, posts, requests);
    }

    /// [`Series::add`], returning how many bytes the series' heap grew by (negative
    /// when it shrank), for the aggregate's memory budget.
    #[inline]
    fn add_sized(&mut self, t: Micros, posts: u64, requests: u64) -> isize {
        let tail = &mut self.tail[..self.tail_len as usize];
        if let Some(slot) = tail.iter_mut().rev().find(|s| s.t == t) {
            if slot.try_add(posts, requests) {
                return 0;
            }
        }
        self.add_to_new_slot(t, posts, requests)
    }

    /// Hands the tail on and starts a new one (more than one if the counts overflow a
    /// slot's `u32`; merging sums them back in `u64`).
    fn add_to_new_slot(&mut self, t: Micros, mut posts: u64, mut requests: u64) -> isize {
        let before = self.heap_bytes() as isize;
        loop {
            let p = posts.min(u32::MAX as u64);
            let r = requests.min(u32::MAX as u64);
            if self.tail_len as usize == TAIL {
                // The older slot goes on; the newer stays, for the requests of its
                // instant still to come.
                if self.tail[1].t < self.tail[0].t {
                    self.tail.swap(0, 1);
                }
                self.hand_over(self.tail[0]);
                self.tail[0] = self.tail[1];
                self.tail_len = 1;
            }
            self.tail[self.tail_len as usize] = Slot {
                t,
                posts: p as u32,
                requests: r as u32,
            };
            self.tail_len += 1;
            posts -= p;
            requests -= r;
            if posts == 0 && requests == 0 {
                return self.heap_bytes() as isize - before;
            }
        }
    }

    /// Moves `slot` onto the run's end, or into `pending`.
    fn hand_over(&mut self, slot: Slot) {
        // Appended even while older slots wait in `pending` (they are merged in
        // later, in any order): only slots out of order wait, so the run is merged
        // with them less often. One bench file's lines come up to 4 s out of order,
        // which put a tenth of the scrapers' slots (and every one after them, until
        // a quarter of the run waited) through `pending`: `merge_slots` took 92 samples
        // of its default scan, 42 now (`perf record`, 999 Hz), and the scan's CPU fell
        // 2.3% (task-clock medians of 7 alternating runs, 1,384 against 1,416 ms).
        if self.try_append_one(slot) || self.try_insert_near_end(slot) {
            return;
        }
        // A short run is re-encoded at once: cheaper than a `pending` vector (over 100
        // bytes with its box and allocations), which a client with a few requests out
        // of order would keep to the end.
        if self.pending.is_none() && (self.len as usize) < SHORT_RUN {
            return self.merge_slots(&mut [slot]);
        }
        let pending = self.pending.get_or_insert_default();
        pending.push(slot);
        if pending.len() >= 4.max(self.len as usize / 4) {
            let mut slots = self.pending.take().unwrap_or_default();
            self.merge_slots(&mut slots);
        }
    }

    /// Merges `slots` (any order) into the run.
    fn merge_slots(&mut self, slots: &mut [Slot]) {
        slots.sort_unstable_by_key(|s| s.t);
        if self.try_append(slots) {
            return;
        }
        let in_seconds = self.in_seconds && slots.iter().all(|s| s.t % SECOND == 0);
        let run = encode_run(
            merge_sum(self.run(), slots.iter().map(slot_bucket)),
            in_seconds,
        );
        self.set_run(run, in_seconds);
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
        // Taken as it is: compacting first would move a client's one or two inline
        // instants into an allocation of their own (32 bytes more for each client of
        // a worker merged into the file's aggregate).
        if self.is_empty() {
            *self = other;
            return;
        }
        if self.len == 0 && other.len > 0 {
            std::mem::swap(self, &mut other);
        }
        if other.len == 0 {
            // Only slots (a client seen at one or two instants): merged into the run
            // as slots out of order are, with no run of their own allocated first.
            let mut slots = other.pending.take().map(|b| *b).unwrap_or_default();
            slots.extend_from_slice(&other.tail[..other.tail_len as usize]);
            return self.merge_slots(&mut slots);
        }
        other.compact();
        self.compact();
        let in_seconds = self.in_seconds && other.in_seconds;
        let run = encode_run(MergeRuns::new(self.run(), other.run()), in_seconds);
        self.set_run(run, in_seconds);
    }

    /// [`Series::merge`] of several series at once: their buckets are decoded, sorted
    /// and encoded once, where merging them one by one re-encodes the growing run each
    /// time (a client in every file's aggregate: the 4-file bench set spent ~1 CPU-s
    /// that way in `merge`s).
    pub fn merge_all(&mut self, others: impl IntoIterator<Item = Series>) {
        let mut all: Vec<Series> = others.into_iter().collect();
        if all.len() <= 1 {
            if let Some(other) = all.pop() {
                self.merge(other);
            }
            return;
        }
        all.push(std::mem::take(self));
        for s in &mut all {
            s.compact();
        }
        all.retain(|s| !s.is_empty());
        let in_seconds = all.iter().all(|s| s.in_seconds);
        let mut buckets: Vec<Bucket> = Vec::with_capacity(all.iter().map(|s| s.len as usize).sum());
        for s in &all {
            buckets.extend(s.run());
        }
        drop(all);
        // Stable sort: it finds the runs already in order and merges them.
        buckets.sort_by_key(|b| b.t);
        let run = encode_run(sum_same_instants(buckets.into_iter()), in_seconds);
        self.set_run(run, in_seconds);
    }

    /// Distinct instants held (after compaction).
    pub fn len(&mut self) -> usize {
        self.compact();
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0 && self.tail_len == 0 && self.pending.is_none()
    }

    /// Bytes the series holds on the heap (its run and pending slots), as the
    /// allocator counts them.
    pub fn heap_bytes(&self) -> usize {
        malloc_cost(self.bytes.capacity())
            + self.pending.as_ref().map_or(0, |p| {
                malloc_cost(std::mem::size_of::<Vec<Slot>>())
                    + malloc_cost(p.capacity() * std::mem::size_of::<Slot>())
            })
    }

    /// The canonical buckets: sorted by time, one per instant.
    pub fn into_buckets(mut self) -> Vec<Bucket> {
        self.compact();
        let mut out = Vec::with_capacity(self.len as usize);
        out.extend(self.run());
        out
    }

    /// A series of `buckets` (any order; buckets of one instant are summed).
    pub fn from_buckets(mut buckets: Vec<Bucket>) -> Series {
        buckets.sort_by_key(|b| b.t);
        let in_seconds = buckets.iter().all(|b| b.t % SECOND == 0);
        let mut s = Series::default();
        s.set_run(
            encode_run(
                merge_sum(buckets.into_iter(), std::iter::empty()),
                in_seconds,
            ),
            in_seconds,
        );
        s
    }

    /// Appends the series, compacted, to `out` in its own encoding (for a spill to
    /// disk: [`Series::decode`] reads it back): `len`, a unit byte, the newest instant
    /// (zigzag) and the run's bytes, each length a varint.
    pub fn encode(&mut self, out: &mut Vec<u8>) {
        let write = |out: &mut Vec<u8>, bytes: &[u8], last: Micros, len: u32, in_seconds| {
            put_varint(out, len as u64);
            out.push(in_seconds as u8);
            put_varint(out, zigzag(last));
            put_varint(out, bytes.len() as u64);
            out.extend_from_slice(bytes);
        };
        if self.tail_len == 0 && self.pending.is_none() {
            return write(out, &self.bytes, self.last, self.len, self.in_seconds);
        }
        // Compacted in a scratch buffer, not in place: in place, each client seen at one
        // or two instants would get an allocation of its own (32 bytes) just as it is
        // written out; a spill of 4 million such clients grew by 128 MiB doing so.
        let mut slots = self.pending.as_deref().cloned().unwrap_or_default();
        slots.extend_from_slice(&self.tail[..self.tail_len as usize]);
        slots.sort_unstable_by_key(|s| s.t);
        let in_seconds =
            (self.in_seconds || self.len == 0) && slots.iter().all(|s| s.t % SECOND == 0);
        let buckets = merge_sum(self.run(), slots.iter().map(slot_bucket));
        with_run(buckets, in_seconds, |bytes, last, len| {
            write(out, bytes, last, len, in_seconds)
        });
    }

    /// A series [`Series::encode`] wrote; `None` if the bytes are cut or damaged (the
    /// run is walked in full, so that a decoding later cannot fail).
    pub fn decode(bytes: &[u8]) -> Option<Series> {
        let mut pos = 0;
        let len = u32::try_from(get_varint_checked(bytes, &mut pos)?).ok()?;
        let in_seconds = match *bytes.get(pos)? {
            0 => false,
            1 => true,
            _ => return None,
        };
        pos += 1;
        let last = unzigzag(get_varint_checked(bytes, &mut pos)?);
        let n = usize::try_from(get_varint_checked(bytes, &mut pos)?).ok()?;
        let run = bytes.get(pos..pos.checked_add(n)?)?;
        if pos + n != bytes.len() {
            return None;
        }
        let (mut p, mut count, mut t) = (0usize, 0u32, 0i64);
        let unit = if in_seconds { SECOND } else { 1 };
        while p < run.len() {
            let d = get_varint_checked(run, &mut p)?;
            t = if count == 0 {
                unzigzag(d).wrapping_mul(unit)
            } else {
                t.wrapping_add((d as i64).wrapping_mul(unit))
            };
            get_varint_checked(run, &mut p)?;
            get_varint_checked(run, &mut p)?;
            count = count.saturating_add(1);
        }
        if count != len || (len > 0 && t != last) {
            return None;
        }
        let mut s = Series::default();
        s.set_run((run_of(run), last, len), in_seconds);
        Some(s)
    }
}

/// A client's key as the aggregate holds it, in 16 bytes: keys of up to 15 bytes (every
/// IPv4 address, most subnets) inline with their length in the last byte, so that
/// looking one up hashes and compares two words; longer keys as an offset and length
/// into the aggregate's key arena, marked by [`LONG`] in the last byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key([u8; 16]);

/// The last byte of a [`Key`] held in the arena (an inline key's is its length, ≤ 15).
const LONG: u8 = 0xFF;

impl Key {
    #[inline]
    fn inline(key: &[u8]) -> Option<Key> {
        if key.len() > 15 {
            return None;
        }
        let mut b = [0u8; 16];
        b[..key.len()].copy_from_slice(key);
        b[15] = key.len() as u8;
        Some(Key(b))
    }

    fn in_arena(offset: usize, len: usize) -> Key {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&(offset as u64).to_le_bytes());
        b[8..12].copy_from_slice(&(len as u32).to_le_bytes());
        b[15] = LONG;
        Key(b)
    }

    #[inline]
    fn is_long(&self) -> bool {
        self.0[15] == LONG
    }

    #[inline]
    fn bytes<'a>(&'a self, arena: &'a [u8]) -> &'a [u8] {
        if self.is_long() {
            let offset = u64::from_le_bytes(self.0[..8].try_into().expect("8 bytes")) as usize;
            let len = u32::from_le_bytes(self.0[8..12].try_into().expect("4 bytes")) as usize;
            &arena[offset..offset + len]
        } else {
            &self.0[..self.0[15] as usize]
        }
    }
}

#[inline]
fn hash_inline(k: &[u8; 16]) -> u64 {
    let mut h = FxHasher::default();
    h.write_u128(u128::from_le_bytes(*k));
    spread(h.finish())
}

fn hash_bytes(key: &[u8]) -> u64 {
    let mut h = FxHasher::default();
    h.write(key);
    spread(h.finish())
}

/// One client: its key and its buckets (96 bytes).
#[derive(Debug, Clone)]
struct Client {
    key: Key,
    series: Series,
}

/// What a client costs the aggregate besides its run's bytes: its [`Client`] and its
/// id-table slot (8 bytes, at a load of 7/8 down to 7/16).
pub const BYTES_PER_CLIENT: usize = std::mem::size_of::<Client>() + 14;

/// Series merged in that an aggregate holds before summing them (about 6 MiB).
const MAX_MERGED_IN: usize = 1 << 16;

/// Requests an aggregate holds back to add together (see [`Aggregate::add`]).
const BATCH: usize = 16;

/// A request waiting in an aggregate's batch: a client with an inline key.
#[derive(Debug, Clone, Copy)]
struct Waiting {
    key: Key,
    hash: u64,
    t: Micros,
    posts: u64,
    requests: u64,
}

/// Clients a [`Clients`] chunk holds: 2¹⁹ × 96 bytes = 48 MiB, above the largest mmap
/// threshold of glibc's malloc (32 MiB), so that every full chunk is a mapping of its
/// own, given back to the system whole when it is freed.
const CHUNK_BITS: u32 = 19;
const CHUNK: usize = 1 << CHUNK_BITS;

/// The clients of an aggregate by id, in chunks of [`CHUNK`] that never move once
/// full: growing costs no copy of them all and no slack beyond one chunk, and a merge
/// frees its source a chunk at a time as it goes. One vector that doubled held twice
/// the clients' memory at the wrong time: `scan` of 10 million one-request clients
/// peaked at 1.54 GiB (165 bytes a client; 7.9 GiB at 50 million), a worker's vector
/// of half the clients alive beside the merged one growing to hold them all.
#[derive(Debug, Default)]
struct Clients {
    chunks: Vec<Vec<Client>>,
    len: usize,
}

impl Clients {
    fn len(&self) -> usize {
        self.len
    }

    /// Adds `c` and gives its id.
    fn push(&mut self, c: Client) -> usize {
        let id = self.len;
        match self.chunks.last_mut() {
            Some(last) if last.len() < CHUNK => last.push(c),
            // The first chunk grows as a vector does (a small aggregate stays small);
            // the later ones are allocated whole, and touched as they fill.
            full => {
                let mut chunk = match full {
                    None => Vec::new(),
                    Some(_) => Vec::with_capacity(CHUNK),
                };
                chunk.push(c);
                self.chunks.push(chunk);
            }
        }
        self.len += 1;
        id
    }

    /// Every client, in id order, the chunks freed as they are emptied.
    #[inline]
    fn get(&self, id: usize) -> Option<&Client> {
        self.chunks.get(id >> CHUNK_BITS)?.get(id & (CHUNK - 1))
    }

    /// The clients in slices of `n` (which divides [`CHUNK`]), in id order: slice `i`
    /// holds ids from `i * n`.
    fn slices_mut(&mut self, n: usize) -> impl Iterator<Item = &mut [Client]> {
        assert!(CHUNK.is_multiple_of(n));
        self.chunks.iter_mut().flat_map(move |c| c.chunks_mut(n))
    }

    fn into_chunks(self) -> impl Iterator<Item = Vec<Client>> {
        self.chunks.into_iter()
    }

    /// Every client in one vector of exact size, for sorting in place (so in no
    /// particular order). Each chunk is moved over a piece at a time from its end and
    /// shrunk after each piece, so the clients are never held twice, not even a
    /// chunk's worth: moved whole, chunk by chunk, `scan` of 1 million clients peaked
    /// 48 MiB higher.
    fn into_vec(mut self) -> Vec<Client> {
        if self.chunks.len() <= 1 {
            return self.chunks.pop().unwrap_or_default();
        }
        const PIECE: usize = CHUNK / 32;
        let mut all = Vec::with_capacity(self.len);
        for mut chunk in self.chunks {
            while !chunk.is_empty() {
                let from = chunk.len().saturating_sub(PIECE);
                all.extend(chunk.drain(from..));
                chunk.shrink_to_fit();
            }
        }
        all
    }
}

impl std::ops::Index<usize> for Clients {
    type Output = Client;

    #[inline]
    fn index(&self, id: usize) -> &Client {
        &self.chunks[id >> CHUNK_BITS][id & (CHUNK - 1)]
    }
}

impl std::ops::IndexMut<usize> for Clients {
    #[inline]
    fn index_mut(&mut self, id: usize) -> &mut Client {
        &mut self.chunks[id >> CHUNK_BITS][id & (CHUNK - 1)]
    }
}

/// How much an aggregate grows before it tells its [`Budget`]: a 64th of the limit,
/// between 4 KiB and 1 MiB (with no budget, how often it notes its size).
const TELL_EVERY: usize = 1 << 20;

/// Where an aggregate over its [`Budget`] writes its clients (the store layer's spill
/// folder: the engine does no I/O).
pub trait Spill: Send + Sync {
    /// Takes clients in key order, each with its compacted series; an error message
    /// if they could not be written.
    fn write(&self, clients: &mut dyn Iterator<Item = (&[u8], &mut Series)>) -> Result<(), String>;
}

impl<T: Spill + ?Sized> Spill for Arc<T> {
    fn write(&self, clients: &mut dyn Iterator<Item = (&[u8], &mut Series)>) -> Result<(), String> {
        (**self).write(clients)
    }
}

/// A memory budget shared by the aggregates of one scan: when what they hold together
/// passes `limit`, the aggregate that notices writes its clients out ([`Spill`]) and
/// starts afresh. A failed write is kept (the run must stop; see [`Budget::failure`])
/// and from then on an aggregate over the budget drops its clients unwritten, so that
/// memory stays bounded until the reading ends.
pub struct Budget {
    limit: usize,
    held: AtomicUsize,
    spill: Box<dyn Spill>,
    spills: AtomicUsize,
    failure: Mutex<Option<String>>,
    /// Spills being written (their clients still held and counted), and the signal
    /// that one ended.
    writing: Mutex<usize>,
    written: Condvar,
}

impl std::fmt::Debug for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Budget")
            .field("limit", &self.limit)
            .field("held", &self.held)
            .field("spills", &self.spills)
            .finish_non_exhaustive()
    }
}

impl Budget {
    pub fn new(limit: usize, spill: Box<dyn Spill>) -> Arc<Budget> {
        Arc::new(Budget {
            limit,
            held: AtomicUsize::new(0),
            spill,
            spills: AtomicUsize::new(0),
            failure: Mutex::new(None),
            writing: Mutex::new(0),
            written: Condvar::new(),
        })
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// How many times an aggregate wrote its clients out.
    pub fn spills(&self) -> usize {
        self.spills.load(Ordering::SeqCst)
    }

    /// The first write that failed: the run cannot finish.
    pub fn failure(&self) -> Option<String> {
        self.failure.lock().map_or(None, |f| f.clone())
    }

    /// Waits until no aggregate is writing a spill.
    fn wait_for_spills(&self) {
        let Ok(mut writing) = self.writing.lock() else {
            return;
        };
        while *writing > 0 {
            match self.written.wait(writing) {
                Ok(w) => writing = w,
                Err(_) => return,
            }
        }
    }

    /// Notes a spill begun, until the guard is dropped (even by a panic, so that no
    /// aggregate waits for ever).
    fn writing(&self) -> SpillWriting<'_> {
        self.note_spill(1);
        SpillWriting(self)
    }

    fn note_spill(&self, change: isize) {
        if let Ok(mut writing) = self.writing.lock() {
            *writing = writing.saturating_add_signed(change);
        }
        self.written.notify_all();
    }

    fn release(&self, bytes: usize) {
        let _ = self
            .held
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |h| {
                Some(h.saturating_sub(bytes))
            });
    }
}

/// A spill being written (see [`Budget::writing`]).
struct SpillWriting<'a>(&'a Budget);

impl Drop for SpillWriting<'_> {
    fn drop(&mut self) {
        self.0.note_spill(-1);
    }
}

/// Client key (bytes, as written) → series.
///
/// Clients live in fixed chunks ([`Clients`]), found through a table of their ids
/// ([`IdTable`], 8 bytes a slot with part of the hash); keys longer than 15 bytes live
/// back to back in one arena. A client costs [`BYTES_PER_CLIENT`] (110 bytes) besides
/// its run's bytes (with 4-byte hashbrown slots, 106 was measured as peak RSS from 1
/// to 10 million one-request clients, 104 from 20 to 50 million). Before, a hash map held the 16-byte key and an 88-byte series
/// inline (about 200 bytes at the table's usual load, and three times that while it
/// grew) and a boxed key for long keys. Finding a client is a probe of the id table
/// and one random access into the chunks, both prefetched a batch ahead (see
/// [`Self::add`]).
#[derive(Debug)]
pub struct Aggregate {
    ids: IdTable,
    clients: Clients,
    /// Requests not added yet: [`Aggregate::add`] looks clients up a batch at a time.
    /// Every other method adds them first.
    waiting: Vec<Waiting>,
    /// Series merged in from other aggregates ([`Aggregate::merge`]) and not yet
    /// summed into their client's (by id): see [`Aggregate::settle_merges`].
    merged_in: Vec<(u32, Series)>,
    /// The bytes of keys longer than 15 bytes.
    arena: Vec<u8>,
    budget: Option<Arc<Budget>>,
    /// Bytes held (an estimate: clients and their runs), and how much of that the
    /// budget has been told.
    held: usize,
    told: usize,
    /// Growth between two reports to the budget (see [`TELL_EVERY`]).
    tell_every: usize,
}

impl Default for Aggregate {
    fn default() -> Self {
        Aggregate {
            ids: IdTable::default(),
            clients: Clients::default(),
            waiting: Vec::new(),
            merged_in: Vec::new(),
            arena: Vec::new(),
            budget: None,
            held: 0,
            told: 0,
            tell_every: TELL_EVERY,
        }
    }
}

impl Aggregate {
    pub fn new() -> Self {
        Self::default()
    }

    /// An aggregate that keeps to `budget` (with the other aggregates sharing it).
    pub fn with_budget(budget: Arc<Budget>) -> Self {
        let mut a = Self::default();
        a.keep_to(&budget);
        a
    }

    /// Keeps this aggregate to `budget` from now on, unless it keeps to one already.
    pub fn keep_to(&mut self, budget: &Arc<Budget>) {
        if self.budget.is_none() {
            self.tell_every = (budget.limit / 64).clamp(4 << 10, TELL_EVERY);
            self.budget = Some(budget.clone());
        }
    }

    /// How many clients (`&mut`: requests still waiting in the batch are added first).
    pub fn len(&mut self) -> usize {
        self.settle();
        self.clients.len()
    }

    pub fn is_empty(&mut self) -> bool {
        self.len() == 0
    }

    /// Bytes the aggregate holds (an estimate: its clients and their runs).
    pub fn held_bytes(&mut self) -> usize {
        self.settle();
        self.held
    }

    /// The id of `key`'s client, created on first sight; the key is copied only then.
    #[inline]
    fn id_of(&mut self, key: &[u8]) -> usize {
        match Key::inline(key) {
            Some(k) => self.id_of_inline(k, hash_inline(&k.0)),
            None => {
                let hash = hash_bytes(key);
                let (clients, arena) = (&self.clients, &self.arena);
                let found = self.ids.find(hash, |id| {
                    let k = &clients[id as usize].key;
                    k.is_long() && k.bytes(arena) == key
                });
                match found {
                    Some(id) => id as usize,
                    None => self.insert(key, None, hash),
                }
            }
        }
    }

    /// [`Self::id_of`] for an inline key and its hash.
    #[inline]
    fn id_of_inline(&mut self, k: Key, hash: u64) -> usize {
        let clients = &self.clients;
        match self.ids.find(hash, |id| clients[id as usize].key == k) {
            Some(id) => id as usize,
            None => self.insert(&k.0[..k.0[15] as usize], Some(k), hash),
        }
    }

    fn insert(&mut self, key: &[u8], inline: Option<Key>, hash: u64) -> usize {
        // 2³² clients would take over 340 GB here: a budget spills long before.
        let id32 =
            u32::try_from(self.clients.len()).expect("fewer than 2^32 clients in one aggregate");
        let k = inline.unwrap_or_else(|| {
            let offset = self.arena.len();
            self.arena.extend_from_slice(key);
            Key::in_arena(offset, key.len())
        });
        let id = self.clients.push(Client {
            key: k,
            series: Series::default(),
        });
        self.ids.insert_unique(hash, id32);
        self.held += BYTES_PER_CLIENT + if inline.is_none() { key.len() } else { 0 };
        id
    }

    /// The series of `key`, created on first sight; the key is copied only then.
    /// (What is added through it is not counted against a budget.)
    #[inline]
    pub fn series_mut(&mut self, key: &[u8]) -> &mut Series {
        self.settle();
        self.settle_merges();
        let id = self.id_of(key);
        &mut self.clients[id].series
    }

    /// Adds `requests` requests worth `posts` posts at `t` to `key`'s client.
    ///
    /// Requests of inline keys wait in a batch of [`BATCH`]: each prefetches its id
    /// slot as it comes, and [`Self::settle`] reads the ids of the whole batch and
    /// prefetches their clients before adding to any, so the cache misses of sixteen
    /// lookups overlap instead of following one another. Measured on one bench file
    /// (2 M lines, ~100 k clients, `--threads 1 --no-evidence`): see `ids.rs`.
    #[inline]
    pub fn add(&mut self, key: &[u8], t: Micros, posts: u64, requests: u64) {
        let Some(k) = Key::inline(key) else {
            let id = self.id_of(key);
            let grew = self.clients[id].series.add_sized(t, posts, requests);
            return self.grew(grew);
        };
        let hash = hash_inline(&k.0);
        self.ids.prefetch(hash);
        self.waiting.push(Waiting {
            key: k,
            hash,
            t,
            posts,
            requests,
        });
        if self.waiting.len() >= BATCH {
            self.settle();
        }
    }

    /// Adds the requests waiting in the batch.
    fn settle(&mut self) {
        if self.waiting.is_empty() {
            return;
        }
        let mut batch = std::mem::take(&mut self.waiting);
        let mut candidates = [u32::MAX; BATCH];
        for (w, c) in batch.iter().zip(candidates.iter_mut()) {
            if let Some(id) = self.ids.first_candidate(w.hash) {
                *c = id;
                // A client is 96 bytes: it may straddle two cache lines.
                let client = &self.clients[id as usize];
                prefetch(client);
                prefetch(&client.series);
            }
        }
        for (i, w) in batch.iter().enumerate() {
            // The candidate is confirmed by its key (a spill in between may have
            // emptied the clients, and a tag can collide); else a full lookup.
            let id = match candidates.get(i) {
                Some(&c) if self.clients.get(c as usize).is_some_and(|x| x.key == w.key) => {
                    c as usize
                }
                _ => self.id_of_inline(w.key, w.hash),
            };
            let grew = self.clients[id].series.add_sized(w.t, w.posts, w.requests);
            self.grew(grew);
        }
        batch.clear();
        self.waiting = batch;
    }

    #[inline]
    fn grew(&mut self, bytes: isize) {
        self.held = self.held.saturating_add_signed(bytes);
        if self.held >= self.told + self.tell_every {
            self.tell_budget();
        }
    }

    /// Tells the budget how much this aggregate grew; spills if all of them together
    /// are over it.
    #[cold]
    fn tell_budget(&mut self) {
        let Some(budget) = self.budget.clone() else {
            self.told = self.held;
            return;
        };
        let grew = self.held - self.told;
        self.told = self.held;
        if budget.held.fetch_add(grew, Ordering::SeqCst) + grew > budget.limit {
            // Another aggregate's spill under way frees its clients when it ends: wait
            // for it rather than grow past the limit meanwhile (or spill a small run).
            budget.wait_for_spills();
            if budget.held.load(Ordering::SeqCst) > budget.limit {
                self.spill(&budget);
            }
        }
    }

    /// Writes every client out (sorted by key) and starts afresh.
    /// Its bytes stay counted until its clients are freed, so that the other
    /// aggregates wait for it instead of growing meanwhile: with the bytes released
    /// first, `scan` of 10 million clients on two threads with `--memory-limit 400M`
    /// peaked at 575 MiB.
    fn spill(&mut self, budget: &Budget) {
        self.settle_merges();
        let _writing = budget.writing();
        self.ids = IdTable::default();
        let mut clients = std::mem::take(&mut self.clients).into_vec();
        let arena = std::mem::take(&mut self.arena);
        let told = std::mem::take(&mut self.told);
        self.held = 0;
        if budget.failure().is_none() {
            self.write_spill(budget, &mut clients, &arena);
        }
        drop(clients);
        drop(arena);
        budget.release(told);
    }

    /// Writes `clients` out, sorted by key; a failure is kept in the budget.
    fn write_spill(&self, budget: &Budget, clients: &mut [Client], arena: &[u8]) {
        sort_clients(clients, arena);
        let mut each = clients
            .iter_mut()
            .map(|c| (c.key.bytes(arena), &mut c.series));
        match budget.spill.write(&mut each) {
            Ok(()) => {
                budget.spills.fetch_add(1, Ordering::SeqCst);
            }
            Err(e) => {
                if let Ok(mut f) = budget.failure.lock() {
                    f.get_or_insert(e);
                }
            }
        }
    }

    /// Adds every client of `other` into `self`.
    ///
    /// This costs a lookup per client of `other`: a client new to `self` takes its
    /// series as it is, and the series of a client both hold waits in `merged_in` to
    /// be summed, in parallel, when the clients are handed out ([`Self::settle_merges`]).
    /// Summing them here, one after another, was the scan's longest serial step: 0.5 s
    /// of the 4-file bench set's 3.6 s (`perf record` over time, 2 threads), for the
    /// last of the merges that join the files' aggregates.
    pub fn merge(&mut self, mut other: Aggregate) {
        self.settle();
        other.settle();
        if self.len() < other.len() {
            std::mem::swap(self, &mut other);
        }
        if let (None, Some(b)) = (&self.budget, &other.budget) {
            self.keep_to(&b.clone());
        }
        // (A spill of `self` in the loop below renumbers its clients: `other`'s own
        // merged-in series are summed first rather than carried over by id.)
        other.settle_merges();
        let Aggregate {
            ids,
            clients,
            arena,
            budget,
            told,
            ..
        } = other;
        drop(ids);
        // What `other` told its budget is given back a chunk at a time, as its chunks
        // are freed; what its clients cost `self` is counted as they come in.
        let mut owed = told;
        for chunk in clients.into_chunks() {
            let mut freed = 0;
            for c in chunk {
                freed += BYTES_PER_CLIENT + c.series.heap_bytes();
                let id = self.id_of(c.key.bytes(&arena));
                self.take_series(id, c.series);
            }
            if let Some(b) = &budget {
                b.release(freed.min(owed));
            }
            owed -= freed.min(owed);
        }
        if let Some(b) = &budget {
            b.release(owed);
        }
    }

    /// Gives client `id` the clients' `series` (counted against the budget).
    fn take_series(&mut self, id: usize, series: Series) {
        let bytes = series.heap_bytes() as isize;
        let own = &mut self.clients[id].series;
        if own.is_empty() {
            *own = series;
            self.grew(bytes);
        } else {
            self.merged_in.push((id as u32, series));
            self.grew(bytes + std::mem::size_of::<(u32, Series)>() as isize);
            // Bounded: clients in every file's aggregate would otherwise wait here
            // with their 88 bytes each, where summing in place holds nothing more.
            if self.merged_in.len() >= MAX_MERGED_IN {
                self.settle_merges();
            }
        }
    }

    /// Sums the series waiting in `merged_in` into their clients', in parallel (on the
    /// current rayon pool) over slices of clients.
    fn settle_merges(&mut self) {
        if self.merged_in.is_empty() {
            return;
        }
        const CLIENTS_A_TASK: usize = 1 << 12;
        let mut merged_in = std::mem::take(&mut self.merged_in);
        let waiting_bytes = merged_in
            .iter()
            .map(|(_, s)| s.heap_bytes() + std::mem::size_of::<(u32, Series)>())
            .sum::<usize>() as isize;
        merged_in.par_sort_unstable_by_key(|&(id, _)| id);
        // One slice of `merged_in` per slice of clients, in order.
        let mut tasks = Vec::new();
        let mut rest = &mut merged_in[..];
        for (i, clients) in self.clients.slices_mut(CLIENTS_A_TASK).enumerate() {
            let end = ((i + 1) * CLIENTS_A_TASK) as u32;
            let n = rest.partition_point(|&(id, _)| id < end);
            let (these, after) = rest.split_at_mut(n);
            rest = after;
            if !these.is_empty() {
                tasks.push((i * CLIENTS_A_TASK, clients, these));
            }
        }
        let grew: isize = tasks
            .into_par_iter()
            .map(|(first, clients, these)| {
                let mut grew = 0isize;
                for same in these.chunk_by_mut(|a, b| a.0 == b.0) {
                    let own = &mut clients[same[0].0 as usize - first].series;
                    let before = own.heap_bytes() as isize;
                    own.merge_all(same.iter_mut().map(|(_, s)| std::mem::take(s)));
                    grew += own.heap_bytes() as isize - before;
                }
                grew
            })
            .sum();
        drop(merged_in);
        // Not told to the budget here (a spill settles these first): the next growth is.
        self.held = self.held.saturating_add_signed(grew - waiting_bytes);
    }

    /// The clients sorted by key, and the arena their long keys point into.
    fn into_sorted_parts(mut self) -> (Vec<Client>, Vec<u8>) {
        self.settle();
        self.settle_merges();
        let Aggregate {
            ids,
            clients,
            arena,
            ..
        } = self;
        drop(ids);
        let mut clients = clients.into_vec();
        sort_clients(&mut clients, &arena);
        (clients, arena)
    }

    /// Clients sorted by key, each with its series, handed out one at a time in
    /// parallel (the key copied then): the aggregate is never held twice.
    pub fn into_sorted_par(self) -> impl IndexedParallelIterator<Item = (Box<[u8]>, Series)> {
        let (clients, arena) = self.into_sorted_parts();
        clients
            .into_par_iter()
            .map(move |c| (c.key.bytes(&arena).into(), c.series))
    }

    /// Clients sorted by key, each with its series, one at a time.
    pub fn into_sorted_iter(self) -> impl Iterator<Item = (Box<[u8]>, Series)> {
        let (clients, arena) = self.into_sorted_parts();
        clients
            .into_iter()
            .map(move |c| (c.key.bytes(&arena).into(), c.series))
    }

    /// Clients sorted by key, each with its series (turned into buckets one client at
    /// a time by the caller, so the whole aggregate is never held twice).
    pub fn into_sorted_series(self) -> Vec<(Box<[u8]>, Series)> {
        self.into_sorted_iter().collect()
    }

    /// Clients sorted by key, each with canonical buckets.
    pub fn into_sorted(self) -> Vec<(Box<[u8]>, Vec<Bucket>)> {
        self.into_sorted_iter()
            .map(|(k, s)| (k, s.into_buckets()))
            .collect()
    }
}

/// Sorts clients by the bytes of their keys, in place (in parallel on the current
/// rayon pool).
fn sort_clients(clients: &mut [Client], arena: &[u8]) {
    clients.par_sort_unstable_by(|a, b| a.key.bytes(arena).cmp(b.key.bytes(arena)));
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
            // The same events dealt over four series (one of them perhaps empty),
            // merged at once.
            let mut dealt: Vec<Series> = (0..4).map(|_| Series::default()).collect();
            for (i, &(t, p, r)) in events.iter().enumerate() {
                dealt[(i * 7 + cut) % 4].add(t, p, r);
            }
            let mut first = dealt.remove(cut % 4);
            first.merge_all(dealt);
            prop_assert_eq!(first.into_buckets(), want.clone());
            a.merge(b);
            prop_assert_eq!(a.clone().into_buckets(), want.clone());
            let mut bytes = Vec::new();
            a.encode(&mut bytes);
            prop_assert_eq!(Series::decode(&bytes).map(Series::into_buckets), Some(want.clone()));
            prop_assert_eq!(Series::from_buckets(want.clone()).into_buckets(), want);
        }
    }

    /// A spill that keeps its runs in memory, as (key, buckets) in the order written.
    type Run = Vec<(Vec<u8>, Vec<Bucket>)>;
    #[derive(Default)]
    struct Runs(Mutex<Vec<Run>>);

    impl Spill for Runs {
        fn write(
            &self,
            clients: &mut dyn Iterator<Item = (&[u8], &mut Series)>,
        ) -> Result<(), String> {
            let mut run = Vec::new();
            for (key, series) in clients {
                // Through the disk encoding, as the store's spill does.
                let mut bytes = Vec::new();
                series.encode(&mut bytes);
                let back = Series::decode(&bytes).ok_or("does not decode")?;
                run.push((key.to_vec(), back.into_buckets()));
            }
            self.0.lock().unwrap().push(run);
            Ok(())
        }
    }

    #[test]
    fn a_budget_spills_sorted_runs_that_add_up_to_the_whole() {
        let runs = Arc::new(Runs::default());
        let budget = Budget::new(64 << 10, Box::new(runs.clone()));
        let (mut a, mut b) = (Aggregate::new(), Aggregate::with_budget(budget.clone()));
        let mut plain: std::collections::BTreeMap<Vec<u8>, Vec<Bucket>> = Default::default();
        for i in 0..20_000u64 {
            let key = if i % 7 == 0 {
                format!("a-long-client-key-{}", i % 500)
            } else {
                format!("10.0.{}", i % 3000)
            };
            let t = (i * 37 % 5000) as i64 * SECOND;
            a.add(key.as_bytes(), t, i % 3, 1);
            b.add(key.as_bytes(), t, i % 3, 1);
        }
        for (k, buckets) in a.into_sorted() {
            plain.insert(k.into(), buckets);
        }
        assert!(budget.spills() >= 2, "{} spills", budget.spills());
        assert!(budget.failure().is_none());
        for run in runs.0.lock().unwrap().iter() {
            assert!(
                run.windows(2).all(|w| w[0].0 < w[1].0),
                "a run in key order"
            );
        }
        let merged: std::collections::BTreeMap<Vec<u8>, Vec<Bucket>> =
            runs_and_rest(&runs, b).into_iter().collect();
        assert_eq!(merged, plain);
    }

    /// The clients of the runs `runs` holds and of `rest` (what stayed in memory),
    /// summed per client, in key order.
    fn runs_and_rest(runs: &Runs, rest: Aggregate) -> Vec<(Vec<u8>, Vec<Bucket>)> {
        let mut merged: std::collections::BTreeMap<Vec<u8>, Series> = Default::default();
        for run in std::mem::take(&mut *runs.0.lock().unwrap()) {
            for (k, buckets) in run {
                merged
                    .entry(k)
                    .or_default()
                    .merge(Series::from_buckets(buckets));
            }
        }
        for (k, s) in rest.into_sorted_iter() {
            merged.entry(k.into()).or_default().merge(s);
        }
        merged
            .into_iter()
            .map(|(k, s)| (k, s.into_buckets()))
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Requests of many clients (inline and long keys, more than a batch of them
        /// and fewer), split anywhere and merged either way, give per client what a
        /// plain map of exact sums gives.
        #[test]
        fn aggregate_equals_a_plain_map(
            events in prop::collection::vec(
                (0u16..400, 0i64..50, 0u64..4),
                0..2000,
            ),
            cut in 0usize..2000,
            cut2 in 0usize..2000,
            swap in any::<bool>(),
        ) {
            let key = |c: u16| if c.is_multiple_of(5) {
                format!("a-long-client-key-over-15-bytes-{c}").into_bytes()
            } else {
                format!("10.0.{c}").into_bytes()
            };
            let mut want: std::collections::BTreeMap<Vec<u8>, std::collections::BTreeMap<i64, (u64, u64)>> =
                Default::default();
            for &(c, t, p) in &events {
                let e = want.entry(key(c)).or_default().entry(t * SECOND).or_default();
                e.0 += p;
                e.1 += 1;
            }
            // Three parts, the third merged into the first two or they into it (an
            // aggregate with series still waiting from a merge, merged again).
            let (cut, cut2) = (cut.min(events.len()), cut2.min(events.len()));
            let (cut, cut2) = (cut.min(cut2), cut.max(cut2));
            let part = |range: &[(u16, i64, u64)]| {
                let mut a = Aggregate::new();
                for &(c, t, p) in range {
                    a.add(&key(c), t * SECOND, p, 1);
                }
                a
            };
            let (mut a, b, mut c) = (part(&events[..cut]), part(&events[cut..cut2]), part(&events[cut2..]));
            a.merge(b);
            if swap {
                std::mem::swap(&mut a, &mut c);
            }
            a.merge(c);
            prop_assert_eq!(a.len(), want.len());
            let got: Vec<(Vec<u8>, Vec<Bucket>)> =
                a.into_sorted().into_iter().map(|(k, b)| (k.into(), b)).collect();
            let want: Vec<(Vec<u8>, Vec<Bucket>)> = want
                .into_iter()
                .map(|(k, m)| {
                    let b = m.into_iter().map(|(t, (posts, requests))| Bucket { t, posts, requests });
                    (k, b.collect())
                })
                .collect();
            prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn a_budget_spills_while_merging_and_the_runs_add_up_to_the_whole() {
        let runs = Arc::new(Runs::default());
        let budget = Budget::new(64 << 10, Box::new(runs.clone()));
        let mut whole = Aggregate::new();
        let mut parts: Vec<Aggregate> = (0..4).map(|_| Aggregate::new()).collect();
        for i in 0..20_000u64 {
            let key = format!("10.0.{}", i % 3000);
            let t = (i * 37 % 5000) as i64 * SECOND;
            whole.add(key.as_bytes(), t, i % 3, 1);
            parts[(i % 4) as usize].add(key.as_bytes(), t, i % 3, 1);
        }
        let mut b = Aggregate::with_budget(budget.clone());
        for p in parts {
            b.merge(p);
        }
        assert!(budget.spills() >= 1, "{} spills", budget.spills());
        let merged = runs_and_rest(&runs, b);
        let whole: Vec<(Vec<u8>, Vec<Bucket>)> = whole
            .into_sorted()
            .into_iter()
            .map(|(k, b)| (k.into(), b))
            .collect();
        assert_eq!(merged, whole);
    }

    /// A spill that fails, as a full disk does.
    struct Full;

    impl Spill for Full {
        fn write(&self, _: &mut dyn Iterator<Item = (&[u8], &mut Series)>) -> Result<(), String> {
            Err("no space left".into())
        }
    }

    #[test]
    fn a_failed_spill_is_kept_and_memory_stays_bounded() {
        let budget = Budget::new(16 << 10, Box::new(Full));
        let mut a = Aggregate::with_budget(budget.clone());
        for i in 0..100_000u32 {
            a.add(&i.to_le_bytes(), 0, 1, 1);
        }
        assert_eq!(budget.failure().as_deref(), Some("no space left"));
        assert!(a.held_bytes() < 64 << 10, "{} bytes held", a.held_bytes());
    }

    #[test]
    fn a_client_costs_at_most_120_bytes_beyond_its_run() {
        const { assert!(std::mem::size_of::<Series>() == 80) };
        const { assert!(BYTES_PER_CLIENT <= 120) };
        let mut s = Series::default();
        s.add(5 * SECOND, 1, 1);
        assert_eq!(s.heap_bytes(), 0, "one instant stays inline");
    }

    /// A spill that checks its clients are still counted against the budget while
    /// they are written (else the other aggregates could grow past the limit beside
    /// them), and that writing them allocates no run for a one-instant series.
    struct Counted(std::sync::OnceLock<Arc<Budget>>, AtomicUsize);

    impl Spill for Counted {
        fn write(
            &self,
            clients: &mut dyn Iterator<Item = (&[u8], &mut Series)>,
        ) -> Result<(), String> {
            let mut n = 0;
            let mut bytes = Vec::new();
            for (_, series) in clients {
                series.encode(&mut bytes);
                if series.heap_bytes() != 0 {
                    return Err("encoding allocated a run".into());
                }
                n += 1;
            }
            let held = self.0.get().ok_or("no budget")?.held.load(Ordering::SeqCst);
            if held < n * BYTES_PER_CLIENT {
                return Err(format!("{n} clients written, {held} bytes counted"));
            }
            self.1.fetch_add(n, Ordering::SeqCst);
            Ok(())
        }
    }

    #[test]
    fn a_spill_stays_counted_until_its_clients_are_freed() {
        let counted = Arc::new(Counted(Default::default(), AtomicUsize::new(0)));
        let budget = Budget::new(64 << 10, Box::new(counted.clone()));
        counted.0.set(budget.clone()).unwrap();
        let mut a = Aggregate::with_budget(budget.clone());
        for i in 0..10_000u32 {
            a.add(&i.to_le_bytes(), SECOND, 1, 1);
        }
        assert_eq!(budget.failure(), None);
        assert!(budget.spills() >= 2);
        assert_eq!(counted.1.load(Ordering::SeqCst) + a.len(), 10_000);
        // Once written, the clients are given back.
        assert!(budget.held.load(Ordering::SeqCst) <= a.held_bytes());
    }

    #[test]
    fn clients_past_a_chunk_merge_and_sort_whole() {
        // Two aggregates of more than a chunk each, sharing a third of their clients.
        let n = CHUNK as u32 + 1000;
        let (mut a, mut b) = (Aggregate::new(), Aggregate::new());
        for i in 0..n {
            a.add(&i.to_be_bytes(), SECOND, 1, 1);
            b.add(&(i + n / 2).to_be_bytes(), 2 * SECOND, 2, 1);
        }
        let mut disjoint = Aggregate::new();
        disjoint.add(&(2 * n).to_be_bytes(), SECOND, 1, 1);
        a.merge(disjoint);
        a.merge(b);
        assert_eq!(a.len(), (n + n / 2 + 1) as usize);
        let mut want = 0u32;
        for (key, series) in a.into_sorted_iter() {
            let i = u32::from_be_bytes(key[..].try_into().unwrap());
            if want == n + n / 2 {
                want = 2 * n;
            }
            assert_eq!(i, want, "every client once, in key order");
            let posts: Vec<u64> = series.into_buckets().iter().map(|b| b.posts).collect();
            let expected = match i {
                _ if i < n / 2 || i == 2 * n => vec![1],
                _ if i < n => vec![1, 2],
                _ => vec![2],
            };
            assert_eq!(posts, expected, "client {i}");
            want += 1;
        }
        assert_eq!(want, 2 * n + 1);
    }

    #[test]
    fn a_merge_keeps_one_instant_inline() {
        let (mut a, mut b) = (Aggregate::new(), Aggregate::new());
        for i in 0..1000u32 {
            a.add(&i.to_le_bytes(), SECOND, 1, 1);
            b.add(&(i + 1000).to_le_bytes(), SECOND, 1, 1);
        }
        a.merge(b);
        assert_eq!(a.held_bytes(), 2000 * BYTES_PER_CLIENT, "no run allocated");
    }

    #[test]
    fn decode_refuses_what_encode_did_not_write() {
        let mut s = Series::default();
        for t in [3, 1, 2, 9] {
            s.add(t * SECOND, t as u64, 1);
        }
        let mut bytes = Vec::new();
        s.clone().encode(&mut bytes);
        assert_eq!(
            Series::decode(&bytes).unwrap().into_buckets(),
            s.into_buckets()
        );
        for cut in 0..bytes.len() {
            assert!(Series::decode(&bytes[..cut]).is_none(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Series::decode(&longer).is_none());
    }

    /// A run appended to a bucket at a time grows to what malloc gives for it (so
    /// `heap_bytes` counts its slack), by about an eighth, and holds every bucket.
    #[test]
    fn a_run_grows_to_malloc_chunks_by_an_eighth() {
        let mut s = Series::default();
        let mut reallocs = 0;
        let mut want = Vec::new();
        for i in 0..5_000i64 {
            // Deltas of 1 to 3 bytes, counts of 1 to 2: buckets of 3 to 7 bytes.
            let t = i * i * SECOND;
            let posts = (i as u64 * 37) % 300;
            let cap = s.bytes.capacity();
            s.add(t, posts, 1);
            want.push(Bucket {
                t,
                posts,
                requests: 1,
            });
            let (len, new_cap) = (s.bytes.len(), s.bytes.capacity());
            if new_cap != cap {
                reallocs += 1;
                assert_eq!(malloc_cost(new_cap), new_cap + 8, "a whole chunk at {len}");
                assert!(
                    new_cap - len <= (len / 8).max(7) + 16,
                    "{new_cap} for {len}"
                );
            }
            assert!(len <= new_cap);
        }
        // An eighth at a time from 24 bytes: about 80 reallocations for 20 KB.
        assert!(reallocs < 100, "{reallocs} reallocations");
        assert_eq!(s.heap_bytes(), malloc_cost(s.bytes.capacity()));
        assert_eq!(s.into_buckets(), want);
    }

    /// One request of `p` posts at `t`, added to `s` and to `plain`, what `s` should
    /// hold: (posts, requests) per instant.
    fn add_both(
        s: &mut Series,
        plain: &mut std::collections::BTreeMap<i64, (u64, u64)>,
        t: i64,
        p: u64,
    ) {
        s.add(t, p, 1);
        let e = plain.entry(t).or_default();
        e.0 += p;
        e.1 += 1;
    }

    /// Instants appended one at a time that leave whole seconds (and a run that starts
    /// below a second) switch the run's unit and keep every bucket exact.
    #[test]
    fn appends_across_the_switch_from_seconds_to_microseconds() {
        let starts: [&[i64]; 3] = [
            &[SECOND, 2 * SECOND, 3 * SECOND],
            &[-3 * SECOND, -SECOND],
            &[7, SECOND],
        ];
        for start in starts {
            let mut s = Series::default();
            let mut plain: std::collections::BTreeMap<i64, (u64, u64)> = Default::default();
            let mut add = |s: &mut Series, t: i64, p: u64| add_both(s, &mut plain, t, p);
            for &t in start {
                add(&mut s, t, 1);
            }
            // Later instants, one of them between seconds, one earlier than the run's
            // end, then whole seconds again and counts beyond a slot.
            for t in [
                10 * SECOND,
                11 * SECOND + 1,
                12 * SECOND,
                5 * SECOND,
                13 * SECOND,
                14 * SECOND,
                15 * SECOND,
            ] {
                add(&mut s, t, 2);
            }
            add(&mut s, 16 * SECOND, u32::MAX as u64 + 5);
            add(&mut s, 17 * SECOND, 1);
            let want: Vec<Bucket> = plain
                .into_iter()
                .map(|(t, (posts, requests))| Bucket { t, posts, requests })
                .collect();
            let mut compacted = s.clone();
            compacted.compact();
            assert!(
                !compacted.in_seconds,
                "a run with 11.000001 s is in microseconds"
            );
            assert_eq!(s.into_buckets(), want, "starting at {start:?}");
        }
    }

    /// A series of one or two inline instants merged with one that has a run, either
    /// way round, at instants before, inside, equal to and after the run's, in seconds
    /// and not: the buckets a plain map gives.
    #[test]
    fn inline_instants_merge_into_a_run_either_way() {
        let run: Vec<i64> = (0..40).map(|i| (10 + 2 * i) * SECOND).collect();
        let inline: [&[i64]; 6] = [
            &[SECOND],
            &[12 * SECOND],
            &[13 * SECOND, 200 * SECOND],
            &[100 * SECOND, 13 * SECOND + 5],
            &[-7, 500 * SECOND],
            &[],
        ];
        for few in inline {
            let mut plain: std::collections::BTreeMap<i64, (u64, u64)> = Default::default();
            let (mut long, mut short) = (Series::default(), Series::default());
            for &t in &run {
                long.add(t, 1, 1);
                *plain.entry(t).or_default() = (1, 1);
            }
            for &t in few {
                short.add(t, 3, 2);
                let e = plain.entry(t).or_default();
                e.0 += 3;
                e.1 += 2;
            }
            assert_eq!(short.heap_bytes(), 0);
            let want: Vec<Bucket> = plain
                .into_iter()
                .map(|(t, (posts, requests))| Bucket { t, posts, requests })
                .collect();
            let mut a = long.clone();
            a.merge(short.clone());
            assert_eq!(a.into_buckets(), want, "{few:?} into the run");
            let mut b = short;
            b.merge(long);
            assert_eq!(b.into_buckets(), want, "the run into {few:?}");
        }
    }

    /// Slots out of order go into the run in place when they are near its end (equal
    /// to an instant, between two, before the first of a short run); further back they
    /// wait in `pending`, and the slots after the run's end are still appended to it
    /// meanwhile. Everything adds up.
    #[test]
    fn slots_out_of_order_go_in_place_or_wait() {
        let mut s = Series::default();
        let mut want: std::collections::BTreeMap<i64, (u64, u64)> = Default::default();
        let mut add = |s: &mut Series, t: i64, p: u64| add_both(s, &mut want, t, p);
        // Every other second from 10 s: 5 buckets, then some out of order.
        for i in 0..5 {
            add(&mut s, (10 + 2 * i) * SECOND, 1);
        }
        for (t, p) in [(15, 2), (14, 3), (10, 4), (3, 5), (-400, 6), (11, 7)] {
            add(&mut s, t * SECOND, p);
            add(&mut s, 1000 * SECOND, 0);
            add(&mut s, 1001 * SECOND, 0);
        }
        assert!(s.pending.is_none(), "near the end: in place");
        for t in 0..200 {
            add(&mut s, (2000 + t) * SECOND, 1);
        }
        // Near the end, also with counts beyond a slot; then 150 buckets back, which
        // waits, while the later slots are appended.
        add(&mut s, 2195 * SECOND, u32::MAX as u64 + 3);
        add(&mut s, 2190 * SECOND, 1);
        add(&mut s, 2050 * SECOND, 1);
        for t in 2200..2210 {
            add(&mut s, t * SECOND, 1);
        }
        assert_eq!(s.pending.as_ref().map(|p| p.len()), Some(1));
        // Sub-second: the run turns to microseconds.
        add(&mut s, 2205 * SECOND + 3, 1);
        add(&mut s, 2300 * SECOND, 1);
        add(&mut s, 2301 * SECOND, 1);
        let want: Vec<Bucket> = want
            .into_iter()
            .map(|(t, (posts, requests))| Bucket { t, posts, requests })
            .collect();
        let mut bytes = Vec::new();
        s.clone().encode(&mut bytes);
        assert_eq!(s.into_buckets(), want);
        assert_eq!(Series::decode(&bytes).map(Series::into_buckets), Some(want));
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
