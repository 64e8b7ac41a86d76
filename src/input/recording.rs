//! What the first pass records of an input so that the second read
//! ([`crate::input::second_read`]) need not read it whole again: a gzip or plain input
//! is read again only in the spans that matter, from access points
//! ([`crate::input::gzip_index`]); any other compression (zstd, bzip2, xz, lz4) has no
//! cheap access point inside a frame, so it is decompressed again from its start, but
//! only the lines that matter are framed and parsed.
//!
//! Besides the access points, for each input:
//! - the request time range of every [`CHUNK_LINES`] lines, so that the evidence lines
//!   (requests at a billed window's first and last instants) are looked for only in
//!   the chunks whose range holds such an instant;
//! - the details the reports show of a reported client (top paths and user agents, its
//!   breakdown, organisation members: [`ClientPart`]) for the busiest clients of the
//!   input, from their [`promote_after`]th request in it on. Which clients will be
//!   reported is known only after every input is read, and counting details for every
//!   client would cost memory and time for every one (most lines of a day's logs
//!   belong to clients that are never reported);
//! - for every client, by a 64-bit hash of its key, the lines holding its requests whose
//!   details were not counted here: from its first request to its promotion (or to its
//!   last request). The second read reads those lines again for the reported clients
//!   only.
//!
//! When several parse workers share an input, each records the blocks it reads (its
//! own table of clients, promotions and details, positions as block and line), and the
//! records are put together in lines of the input once every block's place is known:
//! a client promoted by a worker has its details counted in that worker's lines from
//! its promotion on ([`Recorded::covered`]).
//!
//! Cost: the first pass looks each request's client up once more (a table of the
//! input's clients per worker, dropped when the input is done: about 0.15 µs a line,
//! 0.3 s of CPU for a 2,000,000-line bench file) and counts details for the promoted
//! clients' requests; kept until the second read are 32 bytes per (input, client) and
//! the promoted clients' details.

use crate::engine::breakdown::{self, Decided};
use crate::engine::members;
use crate::engine::time::Micros;
use crate::engine::tops::{ById, TopCounts, TopMap, TopValues, Values};
use crate::input::client::Keyed;
use crate::input::decompress::Compression;
use crate::input::format::{FormatChoice, Request};
use crate::input::gzip_index::GzIndex;
use crate::input::post_weight::{default_weight, Weigher};
use crate::input::reader::{FileReport, FileStatus, RequestSink, SplitSink};
use crate::input::spec::ReadSpec;
use rustc_hash::{FxHashMap, FxHasher};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

/// Lines per chunk of request time ranges (16 bytes a chunk).
pub const CHUNK_LINES: u64 = 4096;
/// Clients whose details one input's first pass counts, at most: memory is bounded
/// by this times what one client's details hold (its distinct paths and user agents);
/// a reported client past it is read again, as one below the bar.
pub const MAX_PROMOTED: usize = 64;
/// Distinct paths, user agents and members one promoted client may show in an input
/// before its details are dropped and it is read again instead (a busy client of
/// ordinary users fetches a new media file every few requests; a scraper of posts has a
/// handful of path templates): with [`MAX_PROMOTED`], bounds the details to about
/// 64 × 4,096 values an input.
pub const MAX_DISTINCT_DETAILS: usize = 4096;

/// Distinct clients a file's record follows: each costs a 40-byte entry of
/// [`Recording::seen`] (46 to 92 bytes with the table's slack, computed, not measured)
/// and a 24-byte one when the record is finished, per file read at once. Past it the
/// record is given up and the file, if a second read needs it, is read again whole
/// (exact, as before the access points), so a file of tens of millions of clients
/// costs no more than about 200 MiB of record.
pub const MAX_RECORDED_CLIENTS: usize = 1 << 21;

/// Values of each kind one worker's record holds before those of no promoted client
/// (a client dropped past [`MAX_DISTINCT_DETAILS`] leaves its values behind) are
/// dropped; the bound then doubles with what is live. With the reader's bound of a
/// million, the dropped busy clients' one-off media paths stayed until the second read:
/// the default bench scan peaked at 138 MiB against 126 before the values were interned.
const RECORD_VALUES: usize = 1 << 14;

/// After how many requests in one input a client's details are counted in the first
/// pass: a sixteenth of the threshold's share of one input (`threshold / (16 × inputs)`),
/// at least 32. Only a client that could be reported is worth counting: on the bench
/// set (threshold 1,000,000, 4 inputs: 15,625) that is its two scrapers and its ten
/// busiest ordinary clients, and the scrapers' lines before that bar are about 2% of a
/// file each. The bar decides only what is read again, never the outcome.
pub fn promote_after(threshold: u64, inputs: usize) -> u32 {
    let bar = threshold / (16 * inputs.max(1) as u64);
    bar.clamp(32, u32::MAX as u64) as u32
}

/// The details of one client's requests that the reports show: its paths, user agents
/// and spellings by their ids in the [`DetailValues`] of the clients one reader counts.
#[derive(Debug, Clone, Default)]
pub struct ClientPart {
    pub tops: TopCounts,
    pub breakdown: breakdown::Counts,
    /// With an organisations file, for an organisation: posts per own key.
    pub members: Option<members::Counts>,
}

impl ClientPart {
    /// Whether its top lists and spellings are exact (nothing dropped past a cap).
    pub fn is_exact(&self) -> bool {
        self.tops.is_exact() && self.breakdown.is_exact()
    }
}

/// The values the [`ClientPart`]s of one reader count by id (see [`Values`]).
#[derive(Debug, Clone, Default)]
pub struct DetailValues {
    pub tops: TopValues,
    pub spellings: Values,
}

/// Per id of another [`DetailValues`], its id in one.
#[derive(Debug, Clone, Default)]
pub struct DetailMap {
    tops: TopMap,
    spellings: Vec<u32>,
}

impl DetailValues {
    /// Values compacted past `bound` of each kind rather than [`crate::engine::tops::KEEP_VALUES`].
    pub fn with_bound(bound: usize) -> DetailValues {
        DetailValues {
            tops: TopValues {
                paths: Values::with_bound(bound),
                agents: Values::with_bound(bound),
            },
            spellings: Values::with_bound(bound),
        }
    }

    /// Interns every value of `other` (see [`Values::absorb`]).
    pub fn absorb(&mut self, other: DetailValues) -> DetailMap {
        DetailMap {
            tops: self.tops.absorb(other.tops),
            spellings: self.spellings.absorb(other.spellings),
        }
    }

    /// [`Self::absorb`] of only the values of `other` that `parts` count, which stay
    /// where they are (a record's values are mostly those of clients never reported).
    pub fn absorb_used(&mut self, other: &DetailValues, parts: &[&ClientPart]) -> DetailMap {
        DetailMap {
            tops: TopMap {
                paths: self.tops.paths.absorb_marked(&other.tops.paths, |m| {
                    parts.iter().for_each(|p| p.tops.paths.mark(m))
                }),
                agents: self.tops.agents.absorb_marked(&other.tops.agents, |m| {
                    parts.iter().for_each(|p| p.tops.agents.mark(m))
                }),
            },
            spellings: self.spellings.absorb_marked(&other.spellings, |m| {
                parts.iter().for_each(|p| p.breakdown.mark(m))
            }),
        }
    }
}

/// Drops the values of `values` that none of `parts` (every client counted with it)
/// holds any more, once it holds many (see [`Values::should_compact`]).
#[inline]
pub fn compact<'p>(values: &mut DetailValues, parts: impl Iterator<Item = &'p mut ClientPart>) {
    if values.tops.paths.should_compact()
        || values.tops.agents.should_compact()
        || values.spellings.should_compact()
    {
        compact_now(values, parts.collect());
    }
}

#[cold]
fn compact_now(values: &mut DetailValues, mut parts: Vec<&mut ClientPart>) {
    let tops = &mut values.tops;
    tops.paths
        .compact_if_due(parts.iter_mut().map(|p| &mut p.tops.paths));
    tops.agents
        .compact_if_due(parts.iter_mut().map(|p| &mut p.tops.agents));
    values
        .spellings
        .compact_if_due(parts.iter_mut().map(|p| &mut p.breakdown));
}

/// Counts the details of request `req` of client `key` (an organisation when
/// `is_org`), its values interned in `values`. `own` is scratch space (an own key, then
/// a path template).
#[inline]
pub fn count_details(
    spec: &ReadSpec,
    req: &Request<'_>,
    key: &[u8],
    is_org: bool,
    own: &mut Vec<u8>,
    values: &mut DetailValues,
    part: &mut ClientPart,
) {
    let (decided, posts) = match &spec.weigher {
        Weigher::Default => (Decided::Default, default_weight(req)),
        Weigher::Rules(rules) => match rules.matching(req) {
            Some((i, posts)) => (Decided::Rule(i), posts),
            None => (Decided::NoRule, 0),
        },
    };
    part.breakdown.add(
        &mut values.spellings,
        key,
        spec.keyer.raw_field(req),
        req.status,
        decided,
        posts,
    );
    if is_org {
        let counts = part.members.get_or_insert_with(Default::default);
        if posts > 0 && spec.keyer.own_key_into(req, own) == Keyed::Client {
            *counts.entry(own.as_slice().into()).or_default() += posts;
        }
    }
    // `own` is free again: it serves as the path template's buffer.
    part.tops.add(
        &mut values.tops,
        req.target.as_deref(),
        req.user_agent.as_deref(),
        own,
    );
}

/// Whether client `key` is an organisation, whose members are counted.
pub fn is_org(spec: &ReadSpec, key: &[u8]) -> bool {
    spec.keyer
        .orgs
        .as_ref()
        .is_some_and(|o| o.by_name(key).is_some())
}

/// The 64-bit hash [`Recorded::uncovered`] is keyed by.
pub fn key_hash(key: &[u8]) -> u64 {
    let mut h = FxHasher::default();
    key.hash(&mut h);
    h.finish()
}

/// Per promoted client, the lines (`from..=to`, sorted, disjoint) whose details of
/// theirs the first pass counted.
pub type Covered = FxHashMap<Box<[u8]>, Vec<(u64, u64)>>;

/// What the first pass recorded of one input.
#[derive(Debug)]
pub struct Recorded {
    pub compression: Compression,
    /// Access points (none for a compression other than gzip and plain).
    pub index: GzIndex,
    /// The format the first pass read it with (to read lines of it again alone).
    pub format: FormatChoice,
    /// (earliest, latest) request time of each chunk of [`CHUNK_LINES`] lines
    /// (`(MAX, MIN)` for a chunk without requests).
    pub chunks: Vec<(Micros, Micros)>,
    /// Promoted clients: key → the lines (`from..=to`, sorted, disjoint) whose
    /// details of theirs are in `details` (with one worker, from a line to the end).
    pub covered: Covered,
    pub details: FxHashMap<Box<[u8]>, ClientPart>,
    /// The values `details` count by id.
    pub values: DetailValues,
    /// [`key_hash`] of a client → lines `[first, until)` that hold every one of its
    /// requests whose details are not in `details` (clients whose keys share a hash
    /// share one, wider, range).
    pub uncovered: FxHashMap<u64, (u64, u64)>,
}

impl Recorded {
    /// The chunks (as line ranges `from..=to`) whose time range holds one of `times`
    /// (sorted).
    pub fn chunks_holding(&self, times: &[Micros]) -> Vec<(u64, u64)> {
        self.chunks
            .iter()
            .enumerate()
            .filter(|(_, &(a, b))| {
                let i = times.partition_point(|&t| t < a);
                a <= b && i < times.len() && times[i] <= b
            })
            .map(|(j, _)| {
                let from = j as u64 * CHUNK_LINES + 1;
                (from, from + CHUNK_LINES - 1)
            })
            .collect()
    }
}

/// Marks a [`Pos`] that is a line of the input (read in order), not of a block.
const IN_ORDER: u64 = u64::MAX;

/// Where a request was read: line `line` of block `seq` when several parse workers
/// share the input (their lines are numbered within each block; see
/// [`crate::input::reader::SplitSink`]), else (`seq` is [`IN_ORDER`]) line `line` of
/// the input. Made a line of the input once every block is placed ([`Placement`]).
/// Packed in 64 bits (the top bit marks a line of the input; else the block in the
/// next 31 and the line in the low 32), so that a [`Seen`] entry stays 32 bytes with
/// its hash: with 48-byte ones, one bench file on two workers took 1.80–1.94 s of CPU
/// against 1.71–1.79 s (3 runs each, loaded machine; `/usr/bin/time scrapemeter scan
/// bench-000.log.gz --threads 2`).
#[derive(Debug, Clone, Copy, Default)]
struct Pos(u64);

const IN_ORDER_BIT: u64 = 1 << 63;
/// Blocks of one input a record follows (of about 1 MiB each: 2 PB).
const MAX_BLOCKS: u64 = 1 << 31;

impl Pos {
    fn new(seq: u64, line: u64) -> Pos {
        if seq == IN_ORDER {
            Pos(IN_ORDER_BIT | line)
        } else {
            Pos(seq << 32 | line)
        }
    }

    fn seq(self) -> u64 {
        if self.0 & IN_ORDER_BIT != 0 {
            IN_ORDER
        } else {
            self.0 >> 32
        }
    }

    fn line(self) -> u64 {
        if self.0 & IN_ORDER_BIT != 0 {
            self.0 & !IN_ORDER_BIT
        } else {
            self.0 & 0xffff_ffff
        }
    }
}

/// The requests so far of the clients whose keys have one [`key_hash`] (mostly one
/// client): kept by hash, so that looking a request up costs no key comparison (a
/// table of boxed keys cost about 0.15 µs a line here, most of it cache misses).
#[derive(Default)]
struct Seen {
    requests: u32,
    /// The first request, and the last one whose details are not counted here.
    first: Pos,
    last_uncounted: Pos,
    /// Whether one of its clients is promoted (see [`Tracker::parts`]) or was
    /// dropped (never promoted again).
    promoted: bool,
    dropped: bool,
}

impl Seen {
    /// A client first seen at `pos`, no request counted yet.
    fn first_at(pos: Pos) -> Seen {
        Seen {
            requests: 0,
            first: pos,
            last_uncounted: pos,
            promoted: false,
            dropped: false,
        }
    }
}

/// [`Tracker::seen`]: each client's [`Seen`] by its key's hash, inline in an
/// open-addressing table (linear probing, at most 7/8 full), so that the slot a waiting
/// request will touch can be prefetched (see [`Tracker::request`]).
#[derive(Default)]
struct SeenTable {
    /// `(hash, seen)`; a slot with `seen.requests == 0` is empty (an entry counts its
    /// first request as soon as it is made).
    slots: Vec<(u64, Seen)>,
    len: usize,
    /// log2 of the slots (0 while there are none).
    bits: u32,
}

impl SeenTable {
    #[inline]
    fn start(&self, hash: u64) -> usize {
        (crate::engine::aggregate::spread(hash) >> (64 - self.bits)) as usize
    }

    fn len(&self) -> usize {
        self.len
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    fn prefetch(&self, hash: u64) {
        if !self.slots.is_empty() {
            crate::engine::aggregate::prefetch(&self.slots[self.start(hash)]);
        }
    }

    /// The slot holding `hash`, or the empty one where it would go.
    #[inline]
    fn slot(&self, hash: u64) -> usize {
        let mask = self.slots.len() - 1;
        let mut i = self.start(hash);
        loop {
            let (h, seen) = &self.slots[i];
            if seen.requests == 0 || *h == hash {
                return i;
            }
            i = (i + 1) & mask;
        }
    }

    fn contains(&self, hash: u64) -> bool {
        !self.slots.is_empty() && self.slots[self.slot(hash)].1.requests > 0
    }

    /// `hash`'s entry, made by `new` (with no request counted yet) if there is none:
    /// the caller counts a request in it at once.
    #[inline]
    fn entry(&mut self, hash: u64, new: impl FnOnce() -> Seen) -> &mut Seen {
        if (self.len + 1) * 8 > self.slots.len() * 7 {
            self.grow();
        }
        let i = self.slot(hash);
        if self.slots[i].1.requests == 0 {
            self.slots[i] = (hash, new());
            self.len += 1;
        }
        &mut self.slots[i].1
    }

    fn grow(&mut self) {
        self.bits = if self.slots.is_empty() {
            4
        } else {
            self.bits + 1
        };
        let empty = (0..1usize << self.bits).map(|_| (0, Seen::default()));
        let old = std::mem::replace(&mut self.slots, empty.collect());
        for (hash, seen) in old.into_iter().filter(|(_, s)| s.requests > 0) {
            let i = self.slot(hash);
            self.slots[i] = (hash, seen);
        }
    }

    fn into_entries(self) -> impl Iterator<Item = (u64, Seen)> {
        self.slots.into_iter().filter(|(_, s)| s.requests > 0)
    }
}

/// Requests a [`Tracker`] holds back to look their clients up together.
const BATCH: usize = 16;

/// What one parse worker records of the lines it reads (one worker, or each of
/// several sharing an input; theirs are put together by [`Placement`]).
struct Tracker {
    /// The block being read ([`IN_ORDER`]: lines of the input, read in order).
    block: u64,
    /// Request time range of each chunk of [`CHUNK_LINES`] lines read in order.
    chunks: Vec<(Micros, Micros)>,
    /// Each block this worker read, with the time range of each chunk of
    /// [`CHUNK_LINES`] lines from its start.
    blocks: Vec<(u64, Vec<(Micros, Micros)>)>,
    seen: SeenTable,
    /// Requests of clients not promoted, waiting to be looked up a batch at a time:
    /// `(hash, position, where the key is in waiting_keys)`.
    waiting: Vec<(u64, Pos, std::ops::Range<usize>)>,
    waiting_keys: Vec<u8>,
    /// The promoted clients' details, from the request at the position given on (in
    /// the lines this worker reads).
    parts: FxHashMap<Box<[u8]>, (Pos, ClientPart)>,
    /// The values `parts` count by id.
    values: DetailValues,
    own: Vec<u8>,
    promote_after: u32,
    /// See [`MAX_RECORDED_CLIENTS`]; once passed, nothing more is recorded.
    max_clients: usize,
    given_up: bool,
}

impl Tracker {
    fn new(promote_after: u32, max_clients: usize) -> Self {
        Tracker {
            block: IN_ORDER,
            chunks: Vec::new(),
            blocks: Vec::new(),
            seen: SeenTable::default(),
            waiting: Vec::new(),
            waiting_keys: Vec::new(),
            parts: FxHashMap::default(),
            values: DetailValues::with_bound(RECORD_VALUES),
            own: Vec::new(),
            promote_after,
            max_clients,
            given_up: false,
        }
    }

    fn begin_block(&mut self, seq: u64) {
        if seq >= MAX_BLOCKS {
            self.give_up();
        }
        if !self.given_up {
            self.block = seq;
            self.blocks.push((seq, Vec::new()));
        }
    }

    fn give_up(&mut self) {
        *self = Tracker {
            given_up: true,
            ..Tracker::new(0, 0)
        };
    }

    /// Records a request of client `key`.
    ///
    /// A request of a promoted client is recorded at once (its details are counted
    /// from it); any other waits, with its position, in a batch of [`BATCH`] whose
    /// entries are prefetched as they come and looked up together ([`Self::settle`]):
    /// the lookup of each request's entry was a cache miss in a row, ~70% of this
    /// function's samples (`perf annotate`, one bench file, `--threads 1`).
    #[inline]
    fn request(&mut self, spec: &ReadSpec, line_no: u64, req: &Request<'_>, key: &[u8]) {
        if self.given_up {
            return;
        }
        let chunks = match self.blocks.last_mut() {
            Some((seq, chunks)) if *seq == self.block => chunks,
            _ => &mut self.chunks,
        };
        let chunk = ((line_no - 1) / CHUNK_LINES) as usize;
        if chunks.len() <= chunk {
            chunks.resize(chunk + 1, (Micros::MAX, Micros::MIN));
        }
        let c = &mut chunks[chunk];
        c.0 = c.0.min(req.time);
        c.1 = c.1.max(req.time);
        let pos = Pos::new(self.block, line_no);
        let hash = key_hash(key);
        if let Some((_, part)) = self.parts.get_mut(key) {
            // Promoted: its details are counted here, unless they grew past the cap.
            count_details(
                spec,
                req,
                key,
                is_org(spec, key),
                &mut self.own,
                &mut self.values,
                part,
            );
            let distinct = part.tops.paths.len()
                + part.tops.agents.len()
                + part.members.as_ref().map_or(0, |m| m.len());
            let seen = self.seen.entry(hash, || Seen::first_at(pos));
            seen.requests = seen.requests.saturating_add(1);
            if distinct > MAX_DISTINCT_DETAILS {
                // Every line of it is read again if it is reported: the lines since
                // its promotion become uncounted too.
                self.parts.remove(key);
                seen.promoted = false;
                seen.dropped = true;
                seen.last_uncounted = pos;
            }
            compact(&mut self.values, self.parts.values_mut().map(|p| &mut p.1));
            return;
        }
        self.seen.prefetch(hash);
        let from = self.waiting_keys.len();
        self.waiting_keys.extend_from_slice(key);
        self.waiting
            .push((hash, pos, from..self.waiting_keys.len()));
        if self.waiting.len() >= BATCH {
            self.settle();
        }
    }

    /// Looks the waiting requests' clients up, in order: each request is counted and
    /// left uncounted in details; a client that reaches [`Self::promote_after`] is
    /// promoted with its details counted from the line after the batch (the batch's
    /// requests of it are among its uncounted lines).
    fn settle(&mut self) {
        let mut waiting = std::mem::take(&mut self.waiting);
        let mut keys = std::mem::take(&mut self.waiting_keys);
        let after = waiting
            .last()
            .map(|&(_, p, _)| Pos::new(p.seq(), p.line() + 1));
        for (hash, pos, key) in &waiting {
            if self.given_up {
                break;
            }
            if self.seen.len() >= self.max_clients && !self.seen.contains(*hash) {
                // Too many clients to follow: free what was recorded, read it whole later.
                self.give_up();
                break;
            }
            let seen = self.seen.entry(*hash, || Seen::first_at(*pos));
            seen.requests = seen.requests.saturating_add(1);
            seen.last_uncounted = *pos;
            if !seen.promoted
                && !seen.dropped
                && seen.requests >= self.promote_after
                && self.parts.len() < MAX_PROMOTED
            {
                seen.promoted = true;
                let from = after.unwrap_or(*pos);
                self.parts
                    .insert(keys[key.clone()].into(), (from, ClientPart::default()));
            }
        }
        // The buffers, emptied, serve the next batch.
        waiting.clear();
        keys.clear();
        (self.waiting, self.waiting_keys) = (waiting, keys);
    }
}

/// Where the blocks read by several parse workers sit in the input (see
/// [`RequestSink::placed`]): `(seq, lines before it, its lines)`, sorted by `seq`.
/// Empty when one worker read the input in order.
struct Placement<'p> {
    blocks: &'p [(u64, u64, u64)],
}

impl Placement<'_> {
    /// The block `seq`: (lines before it, its lines).
    fn block(&self, seq: u64) -> Option<(u64, u64)> {
        let i = self.blocks.binary_search_by_key(&seq, |b| b.0).ok()?;
        Some((self.blocks[i].1, self.blocks[i].2))
    }

    fn line(&self, p: Pos) -> u64 {
        match p.seq() {
            IN_ORDER => p.line(),
            seq => self.block(seq).map_or(0, |(before, _)| before) + p.line(),
        }
    }

    /// The last line read in order, before the workers shared the rest.
    fn in_order_end(&self) -> u64 {
        self.blocks.first().map_or(u64::MAX, |b| b.1)
    }

    /// The lines (`from..=to`) of `t`'s blocks and of the lines it read in order, from
    /// the one at `p` on: where `t` counted the details of a client promoted at `p`.
    fn lines_from(&self, t: &Tracker, p: Pos, out: &mut Vec<(u64, u64)>) {
        if p.seq() == IN_ORDER && p.line() <= self.in_order_end() {
            out.push((p.line(), self.in_order_end()));
        }
        for &(seq, _) in &t.blocks {
            let Some((before, n)) = self.block(seq) else {
                continue;
            };
            let from = match p.seq() {
                IN_ORDER => 1,
                at if seq == at => p.line(),
                at if seq > at => 1,
                _ => continue,
            };
            if n >= from {
                out.push((before + from, before + n));
            }
        }
    }

    /// Adds the time ranges of `t`'s blocks to `chunks` (of the input's lines): a
    /// chunk of a block widens each chunk of the input it overlaps.
    fn add_chunks(&self, t: &Tracker, chunks: &mut Vec<(Micros, Micros)>) {
        for (seq, sub) in &t.blocks {
            let Some((before, n)) = self.block(*seq) else {
                continue;
            };
            for (k, &(a, b)) in sub.iter().enumerate() {
                if a > b {
                    continue;
                }
                let first = before + 1 + k as u64 * CHUNK_LINES;
                let last = (before + (k as u64 + 1) * CHUNK_LINES).min(before + n);
                for j in (first - 1) / CHUNK_LINES..=(last.max(first) - 1) / CHUNK_LINES {
                    let j = j as usize;
                    if chunks.len() <= j {
                        chunks.resize(j + 1, (Micros::MAX, Micros::MIN));
                    }
                    chunks[j] = (chunks[j].0.min(a), chunks[j].1.max(b));
                }
            }
        }
    }
}

/// Adds `other`'s details of a client to `into`'s: `map` turns `other`'s ids into ids
/// of `values` (see [`DetailValues::absorb`]), which `into` counts by.
pub fn merge_client(
    into: &mut ClientPart,
    other: ClientPart,
    map: &DetailMap,
    values: &DetailValues,
) {
    into.tops.merge(other.tops, &map.tops, &values.tops);
    into.breakdown
        .merge(other.breakdown, &map.spellings, &values.spellings);
    if let Some(theirs) = other.members {
        members::merge(into.members.get_or_insert_with(Default::default), theirs);
    }
}

/// Merges sorted-or-not inclusive line ranges into sorted, disjoint ones.
fn merge_ranges(mut ranges: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    ranges.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
    for (a, b) in ranges {
        match out.last_mut() {
            Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// Wraps the first pass's sink: records, besides, what [`Recorded`] holds. Its lines
/// may be shared by several parse workers ([`SplitSink`]): each part records what
/// its worker reads, put together when the input is done.
pub struct Recording<'a, S> {
    pub inner: S,
    spec: &'a ReadSpec,
    index: Arc<Mutex<GzIndex>>,
    /// What this worker records (the lines read in order, and its blocks).
    main: Tracker,
    /// What the other workers recorded (absorbed from their parts).
    others: Vec<Tracker>,
    /// See [`Placement`].
    placed: Vec<(u64, u64, u64)>,
    /// Where the finished record goes (`None` when the input is not usable: see
    /// [`Recording::finish`]).
    pub recorded: Option<Recorded>,
}

impl<'a, S: RequestSink> Recording<'a, S> {
    pub fn new(spec: &'a ReadSpec, inner: S, promote_after: u32) -> Self {
        Recording {
            inner,
            spec,
            index: Arc::new(Mutex::new(GzIndex::default())),
            main: Tracker::new(promote_after, MAX_RECORDED_CLIENTS),
            others: Vec::new(),
            placed: Vec::new(),
            recorded: None,
        }
    }

    /// The same with another bound on the clients followed (tests use a small one).
    pub fn with_max_clients(mut self, max_clients: usize) -> Self {
        self.main.max_clients = max_clients;
        self
    }

    /// Looks up every worker's waiting requests (see [`Tracker::settle`]).
    fn settle(&mut self) {
        self.main.settle();
        for t in &mut self.others {
            t.settle();
        }
    }

    /// Whether the record was given up ([`MAX_RECORDED_CLIENTS`], in any worker; the
    /// requests waiting in a batch are not looked up yet).
    pub fn given_up(&self) -> bool {
        self.main.given_up || self.others.iter().any(|t| t.given_up)
    }

    /// Puts every worker's record together, in lines of the input.
    fn record(
        &mut self,
        index: GzIndex,
        format: FormatChoice,
        compression: Compression,
    ) -> Recorded {
        let place = Placement {
            blocks: &self.placed,
        };
        let mut trackers = vec![std::mem::replace(&mut self.main, Tracker::new(0, 0))];
        trackers.append(&mut self.others);
        let mut chunks = std::mem::take(&mut trackers[0].chunks);
        let mut uncovered: FxHashMap<u64, (u64, u64)> = FxHashMap::default();
        let mut covered = Covered::default();
        let mut details: FxHashMap<Box<[u8]>, ClientPart> = FxHashMap::default();
        let mut values = DetailValues::default();
        for t in &mut trackers {
            // Only the values of the clients still counted: those of the clients
            // dropped past MAX_DISTINCT_DETAILS would be kept until the second read.
            let map = {
                let parts: Vec<&ClientPart> = t.parts.values().map(|(_, p)| p).collect();
                values.absorb_used(&t.values, &parts)
            };
            t.values = DetailValues::default();
            place.add_chunks(t, &mut chunks);
            for (h, s) in std::mem::take(&mut t.seen).into_entries() {
                let (first, last) = (place.line(s.first), place.line(s.last_uncounted));
                let e = uncovered.entry(h).or_insert((first, last + 1));
                *e = (e.0.min(first), e.1.max(last + 1));
            }
            for (key, (from, part)) in std::mem::take(&mut t.parts) {
                place.lines_from(t, from, covered.entry(key.clone()).or_default());
                merge_client(details.entry(key).or_default(), part, &map, &values);
            }
            compact(&mut values, details.values_mut());
        }
        for ranges in covered.values_mut() {
            *ranges = merge_ranges(std::mem::take(ranges));
        }
        Recorded {
            compression,
            index,
            format,
            chunks,
            covered,
            details,
            values,
            uncovered,
        }
    }
}

impl<S: RequestSink> RequestSink for Recording<'_, S> {
    fn begin(&mut self, name: &str) {
        self.inner.begin(name);
    }

    #[inline]
    fn request(&mut self, line_no: u64, req: &Request<'_>, key: &[u8], line: &[u8]) -> u64 {
        let posts = self.inner.request(line_no, req, key, line);
        self.main.request(self.spec, line_no, req, key);
        posts
    }

    fn late(&mut self, req: &Request<'_>, key: &[u8], posts: u64) {
        self.inner.late(req, key, posts);
    }

    #[inline]
    fn keep(&self, line: &[u8]) -> bool {
        self.inner.keep(line)
    }

    fn counters(&self) -> Option<Arc<crate::input::progress::ReadCounters>> {
        self.inner.counters()
    }

    fn gzip_index(&self) -> Option<Arc<Mutex<GzIndex>>> {
        Some(self.index.clone())
    }

    fn block(&mut self, seq: u64) {
        self.main.begin_block(seq);
    }

    fn placed(&mut self, blocks: &[(u64, u64, u64)]) {
        self.placed = blocks.to_vec();
    }

    /// Keeps the record when the input can be read again by lines: read whole with a
    /// known format, and no `#` comment lines (a format may learn from those, as
    /// CloudFront's `#Fields:`; such a file is read again whole); gzip and plain with
    /// access points; any other compression complete (it is read again from its start,
    /// and its digest is checked first).
    fn finish(&mut self, report: &FileReport) {
        self.inner.finish(report);
        let index = std::mem::take(&mut *self.index.lock().unwrap_or_else(|e| e.into_inner()));
        let format = report
            .format
            .as_deref()
            .and_then(|f| f.parse::<FormatChoice>().ok())
            .filter(|f| Some(f.name().as_str()) == report.format.as_deref());
        let readable_again = match report.compression {
            Some(Compression::Gzip) | Some(Compression::Plain) => !index.points.is_empty(),
            Some(_) => report.complete && report.sha256.is_some(),
            None => false,
        };
        self.settle();
        let usable = !self.given_up()
            && readable_again
            && report.status == FileStatus::Read
            && report.comments == 0;
        if let (Some(format), Some(compression), true) = (format, report.compression, usable) {
            self.recorded = Some(self.record(index, format, compression));
        }
        self.main = Tracker::new(0, 0);
        self.others.clear();
    }
}

/// A share of the first pass with its record, for one of several parse workers.
pub struct RecordingPart<'a, P> {
    inner: P,
    spec: &'a ReadSpec,
    tracker: Tracker,
}

impl<P: RequestSink> RequestSink for RecordingPart<'_, P> {
    #[inline]
    fn request(&mut self, line_no: u64, req: &Request<'_>, key: &[u8], line: &[u8]) -> u64 {
        let posts = self.inner.request(line_no, req, key, line);
        self.tracker.request(self.spec, line_no, req, key);
        posts
    }

    fn late(&mut self, req: &Request<'_>, key: &[u8], posts: u64) {
        self.inner.late(req, key, posts);
    }

    #[inline]
    fn keep(&self, line: &[u8]) -> bool {
        self.inner.keep(line)
    }

    fn block(&mut self, seq: u64) {
        self.tracker.begin_block(seq);
    }
}

impl<'a, S: SplitSink> SplitSink for Recording<'a, S> {
    type Part = RecordingPart<'a, S::Part>;

    fn part(&self) -> Self::Part {
        RecordingPart {
            inner: self.inner.part(),
            spec: self.spec,
            tracker: Tracker::new(self.main.promote_after, self.main.max_clients),
        }
    }

    fn absorb(&mut self, part: &mut Self::Part) {
        self.inner.absorb(&mut part.inner);
        self.others
            .push(std::mem::replace(&mut part.tracker, Tracker::new(0, 0)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Overrides;
    use crate::input::reader::RequestSink;
    use std::borrow::Cow;

    /// Counts what reaches it.
    #[derive(Default)]
    struct Count(u64);

    impl RequestSink for Count {
        fn request(&mut self, _: u64, _: &Request<'_>, _: &[u8], _: &[u8]) -> u64 {
            self.0 += 1;
            1
        }
    }

    fn request(time: Micros) -> Request<'static> {
        Request {
            time,
            remote: Cow::Borrowed(b"192.0.2.1"),
            user: None,
            user_agent: None,
            user_agent_damaged: false,
            method: Some(Cow::Borrowed(b"GET")),
            target: Some(Cow::Borrowed(b"/post/1")),
            host: None,
            status: 200,
            fields: Vec::new(),
        }
    }

    #[test]
    fn past_its_bound_on_clients_a_record_is_given_up_and_every_request_still_counted() {
        let cfg = crate::config::for_tests(Overrides::default());
        let mut rec = Recording::new(&cfg.read, Count::default(), 2).with_max_clients(3);
        for (i, key) in ["a", "b", "c", "a", "b", "c"].iter().enumerate() {
            rec.request(i as u64 + 1, &request(i as i64), key.as_bytes(), b"line");
        }
        rec.settle();
        assert!(!rec.given_up(), "three clients are within the bound");
        assert_eq!(rec.main.seen.len(), 3);
        rec.request(7, &request(7), b"d", b"line");
        rec.settle();
        assert!(rec.given_up(), "a fourth client passes it");
        let t = &rec.main;
        assert!(t.seen.is_empty() && t.parts.is_empty() && t.chunks.is_empty());
        rec.request(8, &request(8), b"a", b"line");
        assert_eq!(rec.inner.0, 8, "every request reaches the first pass");
        assert!(rec.main.seen.is_empty(), "nothing is recorded after it");
    }
}
