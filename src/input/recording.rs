//! What the first pass records of a gzip input so that the second read
//! ([`crate::input::second_read`]) need not inflate it whole again.
//!
//! Besides the access points ([`crate::input::gzip_index`]), for each input:
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
//! Cost: the first pass looks each request's client up once more (a table of the
//! input's clients, dropped when the input is done) and counts details for the
//! promoted clients' requests; kept until the second read are 32 bytes per (input,
//! client) and the promoted clients' details.

use crate::engine::breakdown::{self, Decided};
use crate::engine::members;
use crate::engine::time::Micros;
use crate::engine::tops::Tops;
use crate::input::client::Keyed;
use crate::input::decompress::Compression;
use crate::input::format::{FormatChoice, Request};
use crate::input::gzip_index::GzIndex;
use crate::input::post_weight::{default_weight, Weigher};
use crate::input::reader::{FileReport, FileStatus, RequestSink};
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

/// The details of one client's requests that the reports show.
#[derive(Debug, Clone, Default)]
pub struct ClientPart {
    pub tops: Tops,
    pub breakdown: breakdown::Counts,
    /// With an organisations file, for an organisation: posts per own key.
    pub members: Option<members::Counts>,
}

/// Counts the details of request `req` of a client (an organisation when `is_org`).
/// `own` is scratch space.
pub fn count_details(
    spec: &ReadSpec,
    req: &Request<'_>,
    is_org: bool,
    own: &mut Vec<u8>,
    part: &mut ClientPart,
) {
    let (decided, posts) = match &spec.weigher {
        Weigher::Default => (Decided::Default, default_weight(req)),
        Weigher::Rules(rules) => match rules.matching(req) {
            Some((i, posts)) => (Decided::Rule(i), posts),
            None => (Decided::NoRule, 0),
        },
    };
    part.breakdown
        .add(spec.keyer.raw_field(req), req.status, decided, posts);
    if is_org {
        let counts = part.members.get_or_insert_with(Default::default);
        if posts > 0 && spec.keyer.own_key_into(req, own) == Keyed::Client {
            *counts.entry(own.as_slice().into()).or_default() += posts;
        }
    }
    part.tops
        .add(req.target.as_deref(), req.user_agent.as_deref());
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

/// What the first pass recorded of one gzip input.
#[derive(Debug)]
pub struct Recorded {
    pub index: GzIndex,
    /// The format the first pass read it with (to read lines of it again alone).
    pub format: FormatChoice,
    /// (earliest, latest) request time of each chunk of [`CHUNK_LINES`] lines
    /// (`(MAX, MIN)` for a chunk without requests).
    pub chunks: Vec<(Micros, Micros)>,
    /// Promoted clients: key → the line from which on their details are in `details`.
    pub covered_from: FxHashMap<Box<[u8]>, u64>,
    pub details: FxHashMap<Box<[u8]>, ClientPart>,
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

/// The requests so far of the clients whose keys have one [`key_hash`] (mostly one
/// client): kept by hash, so that looking a request up costs no key comparison (a
/// table of boxed keys cost about 0.15 µs a line here, most of it cache misses).
struct Seen {
    requests: u32,
    /// The first and last line of a request whose details are not counted here.
    first: u64,
    last_uncounted: u64,
    /// Whether one of its clients is promoted (see [`Recording::parts`]) or was
    /// dropped (never promoted again).
    promoted: bool,
    dropped: bool,
}

/// Wraps the first pass's sink: records, besides, what [`Recorded`] holds.
pub struct Recording<'a, S> {
    pub inner: S,
    spec: &'a ReadSpec,
    index: Arc<Mutex<GzIndex>>,
    chunks: Vec<(Micros, Micros)>,
    seen: FxHashMap<u64, Seen>,
    /// The promoted clients' details, from the line given on.
    parts: FxHashMap<Box<[u8]>, (u64, ClientPart)>,
    own: Vec<u8>,
    promote_after: u32,
    /// See [`MAX_RECORDED_CLIENTS`]; once passed, nothing more is recorded.
    max_clients: usize,
    given_up: bool,
    /// Where the finished record goes (`None` when the input is not usable: see
    /// [`Recording::finish`]).
    pub recorded: Option<Recorded>,
}

impl<'a, S: RequestSink> Recording<'a, S> {
    pub fn new(spec: &'a ReadSpec, inner: S, promote_after: u32) -> Self {
        Recording {
            promote_after,
            inner,
            spec,
            index: Arc::new(Mutex::new(GzIndex::default())),
            chunks: Vec::new(),
            seen: FxHashMap::default(),
            parts: FxHashMap::default(),
            own: Vec::new(),
            recorded: None,
            max_clients: MAX_RECORDED_CLIENTS,
            given_up: false,
        }
    }

    /// The same with another bound on the clients followed (tests use a small one).
    pub fn with_max_clients(mut self, max_clients: usize) -> Self {
        self.max_clients = max_clients;
        self
    }

    /// Whether the record was given up ([`MAX_RECORDED_CLIENTS`]).
    pub fn given_up(&self) -> bool {
        self.given_up
    }
}

impl<S: RequestSink> RequestSink for Recording<'_, S> {
    fn begin(&mut self, name: &str) {
        self.inner.begin(name);
    }

    #[inline]
    fn request(&mut self, line_no: u64, req: &Request<'_>, key: &[u8], line: &[u8]) -> u64 {
        let posts = self.inner.request(line_no, req, key, line);
        if self.given_up {
            return posts;
        }
        let hash = key_hash(key);
        if self.seen.len() >= self.max_clients && !self.seen.contains_key(&hash) {
            // Too many clients to follow: free what was recorded, read it whole later.
            self.given_up = true;
            self.seen = FxHashMap::default();
            self.parts = FxHashMap::default();
            self.chunks = Vec::new();
            return posts;
        }
        let chunk = ((line_no - 1) / CHUNK_LINES) as usize;
        if self.chunks.len() <= chunk {
            self.chunks.resize(chunk + 1, (Micros::MAX, Micros::MIN));
        }
        let c = &mut self.chunks[chunk];
        c.0 = c.0.min(req.time);
        c.1 = c.1.max(req.time);
        let seen = self.seen.entry(hash).or_insert(Seen {
            requests: 0,
            first: line_no,
            last_uncounted: line_no,
            promoted: false,
            dropped: false,
        });
        seen.requests = seen.requests.saturating_add(1);
        if !seen.promoted
            && !seen.dropped
            && seen.requests >= self.promote_after
            && self.parts.len() < MAX_PROMOTED
        {
            seen.promoted = true;
            self.parts
                .insert(key.into(), (line_no, ClientPart::default()));
        }
        let counted = seen.promoted
            && match self.parts.get_mut(key) {
                None => false,
                Some((_, part)) => {
                    count_details(self.spec, req, is_org(self.spec, key), &mut self.own, part);
                    let distinct = part.tops.paths.len()
                        + part.tops.agents.len()
                        + part.members.as_ref().map_or(0, |m| m.len());
                    if distinct > MAX_DISTINCT_DETAILS {
                        // Every line of it is read again if it is reported: the lines
                        // since its promotion become uncounted too.
                        self.parts.remove(key);
                        seen.promoted = false;
                        seen.dropped = true;
                        false
                    } else {
                        true
                    }
                }
            };
        if !counted {
            seen.last_uncounted = line_no;
        }
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

    /// Keeps the record when the input can be read again by lines: gzip, read whole
    /// with a known format, and no `#` comment lines (a format may learn from those, as
    /// CloudFront's `#Fields:`; such a file is read again whole).
    fn finish(&mut self, report: &FileReport) {
        self.inner.finish(report);
        let seen = std::mem::take(&mut self.seen);
        let parts = std::mem::take(&mut self.parts);
        let chunks = std::mem::take(&mut self.chunks);
        let index = std::mem::take(&mut *self.index.lock().unwrap_or_else(|e| e.into_inner()));
        let format = report
            .format
            .as_deref()
            .and_then(|f| f.parse::<FormatChoice>().ok())
            .filter(|f| Some(f.name().as_str()) == report.format.as_deref());
        let usable = !self.given_up
            && report.compression == Some(Compression::Gzip)
            && report.status == FileStatus::Read
            && report.comments == 0
            && !index.points.is_empty();
        let (Some(format), true) = (format, usable) else {
            return;
        };
        let mut rec = Recorded {
            index,
            format,
            chunks,
            covered_from: FxHashMap::default(),
            details: FxHashMap::default(),
            uncovered: FxHashMap::default(),
        };
        rec.uncovered = seen
            .into_iter()
            .map(|(h, s)| (h, (s.first, s.last_uncounted + 1)))
            .collect();
        for (key, (from, part)) in parts {
            rec.covered_from.insert(key.clone(), from);
            rec.details.insert(key, part);
        }
        self.recorded = Some(rec);
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
        assert!(!rec.given_up(), "three clients are within the bound");
        assert_eq!(rec.seen.len(), 3);
        rec.request(7, &request(7), b"d", b"line");
        assert!(rec.given_up(), "a fourth client passes it");
        assert!(rec.seen.is_empty() && rec.parts.is_empty() && rec.chunks.is_empty());
        rec.request(8, &request(8), b"a", b"line");
        assert_eq!(rec.inner.0, 8, "every request reaches the first pass");
        assert!(rec.seen.is_empty(), "nothing is recorded after it");
    }
}
