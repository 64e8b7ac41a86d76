//! The scan: inputs → per-file reports and one merged [`Aggregate`].
//!
//! Files are read in parallel (rayon); each worker fills its own aggregate, and the
//! aggregates are merged once at the end. Everything about one file (its counts, its
//! malformed lines, whether it was complete) lands in its [`FileReport`].

use crate::engine::aggregate::Aggregate;
use crate::engine::groups::Groups;
use crate::engine::late::{merge_by_client, Late, LateByClient};
use crate::engine::text::display_key;
use crate::engine::time::Micros;
use crate::engine::traffic::Traffic;
use crate::input::client::Keyed;
use crate::input::decompress::{self, Blocks, Compression, Inflate, Tap};
use crate::input::discover::{Discovery, Input, Skipped, Source};
use crate::input::format::{detect, LineFormat, Request, DETECT_LINES};
use crate::input::framing::{BlockKind, Frame, MAX_LINE};
use crate::input::gzip_index::GzIndex;
use crate::input::progress::{Counting, ReadCounters};
use crate::input::recording::{Recorded, Recording};
use crate::input::spec::ReadSpec;
use rayon::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::{self, Read};
use std::sync::Arc;

/// How many malformed lines of a file are kept as examples.
pub const MALFORMED_EXAMPLES: usize = 5;
/// How much of a malformed line an example shows.
const EXAMPLE_BYTES: usize = 300;
/// While `auto` detects a file's format, comment lines are held (to be replayed in
/// order to the format chosen) up to this many bytes; later ones are only counted.
const HELD_COMMENT_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileStatus {
    /// Read (possibly only in part: see `complete`).
    Read,
    /// Could not be opened or read at all.
    Unreadable,
    /// Read, but no format fits its first lines (`--format auto`).
    Unrecognised,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MalformedLine {
    pub line: u64,
    pub reason: String,
    pub text: String,
}

/// What happened to one input.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    pub path: String,
    pub status: FileStatus,
    /// Compressed bytes read.
    pub size: Option<u64>,
    pub sha256: Option<String>,
    pub compression: Option<Compression>,
    pub format: Option<String>,
    /// Every line, blank and comment lines included.
    pub lines: u64,
    pub blank: u64,
    pub comments: u64,
    /// Lines read as requests, inside `[since, until)`.
    pub requests: u64,
    pub posts: u64,
    /// Requests whose client key is empty or `-` (counted, never billed).
    pub no_client: u64,
    pub malformed: u64,
    pub malformed_examples: Vec<MalformedLine>,
    /// Requests outside `--since`/`--until`.
    pub out_of_range: u64,
    /// With nightly state: requests older than the previous run's watermark, counted
    /// and never merged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub late: Option<u64>,
    /// The late requests' posts, and the oldest and newest of them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub late_posts: Option<u64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::engine::time::opt_time"
    )]
    pub late_earliest: Option<Micros>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::engine::time::opt_time"
    )]
    pub late_latest: Option<Micros>,
    /// Its requests and posts per hour and requests per status class (for the
    /// report's overview of all traffic; not in the manifest).
    #[serde(skip)]
    pub traffic: Traffic,
    /// False when the input ended early (truncated or corrupt archive, read error).
    pub complete: bool,
    pub dropped_partial_line: bool,
    pub error: Option<String>,
    /// Why this is a bad input (missing, unreadable, unrecognised, incomplete, or
    /// over the malformed share): see [`FileReport::judge`]. Absent when it is not one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bad: Option<String>,
    /// When some lines are malformed: another format that reads more of the file's
    /// first lines than the one used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub looks_like: Option<String>,
    #[serde(serialize_with = "crate::engine::time::opt_time")]
    pub first_request: Option<Micros>,
    #[serde(serialize_with = "crate::engine::time::opt_time")]
    pub last_request: Option<Micros>,
}

impl FileReport {
    pub fn new(path: &str) -> Self {
        FileReport {
            path: path.to_string(),
            status: FileStatus::Read,
            size: None,
            sha256: None,
            compression: None,
            format: None,
            lines: 0,
            blank: 0,
            comments: 0,
            requests: 0,
            posts: 0,
            no_client: 0,
            malformed: 0,
            malformed_examples: Vec::new(),
            out_of_range: 0,
            late: None,
            late_posts: None,
            late_earliest: None,
            late_latest: None,
            traffic: Traffic::default(),
            complete: true,
            dropped_partial_line: false,
            error: None,
            bad: None,
            looks_like: None,
            first_request: None,
            last_request: None,
        }
    }

    pub fn unreadable(path: &str, error: String) -> Self {
        FileReport {
            status: FileStatus::Unreadable,
            complete: false,
            error: Some(error),
            ..FileReport::new(path)
        }
    }

    /// Counts a late request at `t` of `posts` posts.
    fn count_late(&mut self, t: Micros, posts: u64) {
        *self.late.get_or_insert(0) += 1;
        *self.late_posts.get_or_insert(0) += posts;
        self.late_earliest = Some(self.late_earliest.map_or(t, |e| e.min(t)));
        self.late_latest = Some(self.late_latest.map_or(t, |e| e.max(t)));
    }

    /// Adds the counts of `part`, a share of this input's lines read by another parse
    /// worker (its malformed examples are placed by the caller, which knows their
    /// line numbers).
    fn absorb_counts(&mut self, part: &FileReport) {
        self.blank += part.blank;
        self.comments += part.comments;
        self.requests += part.requests;
        self.posts = self.posts.saturating_add(part.posts);
        self.no_client += part.no_client;
        self.malformed += part.malformed;
        self.out_of_range += part.out_of_range;
        if let Some(n) = part.late {
            *self.late.get_or_insert(0) += n;
        }
        if let Some(n) = part.late_posts {
            *self.late_posts.get_or_insert(0) += n;
        }
        let min = |a: Option<Micros>, b: Option<Micros>| a.into_iter().chain(b).min();
        let max = |a: Option<Micros>, b: Option<Micros>| a.into_iter().chain(b).max();
        self.late_earliest = min(self.late_earliest, part.late_earliest);
        self.late_latest = max(self.late_latest, part.late_latest);
        self.first_request = min(self.first_request, part.first_request);
        self.last_request = max(self.last_request, part.last_request);
        self.traffic.merge(&part.traffic);
    }

    /// The late requests of this input, counted together.
    pub fn late_counts(&self) -> Late {
        match (self.late, self.late_earliest, self.late_latest) {
            (Some(requests), Some(earliest), Some(latest)) if requests > 0 => Late {
                requests,
                posts: self.late_posts.unwrap_or(0),
                earliest,
                latest,
            },
            _ => Late::default(),
        }
    }

    /// The newest request this input holds, late ones included: what the watermark
    /// waits for.
    pub fn newest_request(&self) -> Option<Micros> {
        self.last_request.into_iter().chain(self.late_latest).max()
    }

    /// Whether `--strict-lines` should fail because of this input: any malformed line,
    /// or a bad input.
    pub fn has_problems(&self) -> bool {
        self.status != FileStatus::Read || !self.complete || self.malformed > 0 || self.is_bad()
    }

    /// Whether this is a bad input (`--strict` fails on those); set by [`Self::judge`].
    pub fn is_bad(&self) -> bool {
        self.bad.is_some()
    }

    /// Request lines: every line but blank and comment lines.
    pub fn request_lines(&self) -> u64 {
        self.lines.saturating_sub(self.blank + self.comments)
    }

    /// Decides whether this is a bad input (SPEC.md, "Exit status"): unreadable,
    /// unrecognised, incomplete, or more than `max_malformed` of its request lines
    /// malformed. A reason given before (a missing path) is kept.
    pub fn judge(&mut self, max_malformed: f64) {
        if self.bad.is_some() {
            return;
        }
        let error = self.error.as_deref().unwrap_or("");
        self.bad = match self.status {
            FileStatus::Unreadable => Some(format!("unreadable: {error}")),
            FileStatus::Unrecognised => Some(format!("unrecognised: {error}")),
            FileStatus::Read if !self.complete => Some(format!("incomplete: {error}")),
            FileStatus::Read => {
                let total = self.request_lines();
                (self.malformed > 0 && self.malformed as f64 > max_malformed * total as f64).then(
                    || {
                        let hint = match &self.looks_like {
                            Some(f) => format!("; looks like {f}: try --format {f}"),
                            None => String::new(),
                        };
                        format!(
                            "too many malformed lines: {} of {} ({:.1}%, over --max-malformed {max_malformed}){hint}",
                            self.malformed,
                            total,
                            100.0 * self.malformed as f64 / total.max(1) as f64,
                        )
                    },
                )
            }
        };
    }
}

/// Judges every input (see [`FileReport::judge`]).
pub fn judge_inputs(files: &mut [FileReport], max_malformed: f64) {
    for f in files {
        f.judge(max_malformed);
    }
}

/// The format other than `used` that reads most of `sample` (after `comments`, the
/// headers), if it reads more of it than `used` does: the hint for a file with
/// malformed lines.
fn better_format(
    spec: &ReadSpec,
    used: &dyn LineFormat,
    comments: &[Vec<u8>],
    sample: &[Vec<u8>],
) -> Option<String> {
    let mut others = crate::input::format::FormatChoice::Auto.candidates(&spec.fields, &spec.json);
    for c in others.iter_mut() {
        for l in comments {
            c.comment(l);
        }
    }
    let lines: Vec<&[u8]> = sample.iter().map(Vec::as_slice).collect();
    let i = detect(&others, &lines)?;
    let reads = |f: &dyn LineFormat| lines.iter().filter(|l| f.parse(l).is_ok()).count();
    (others[i].name() != used.name() && reads(others[i].as_ref()) > reads(used))
        .then(|| others[i].name().to_string())
}

/// How many bytes of a file's first lines are kept for [`better_format`].
const SAMPLE_BYTES: usize = 1024 * 1024;

/// The outcome of scanning every input.
pub struct ScanOutput {
    /// The inputs read (for a second pass), sorted by name.
    pub inputs: Vec<Input>,
    pub files: Vec<FileReport>,
    pub skipped: Vec<Skipped>,
    pub aggregate: Aggregate,
    /// Late requests per client (nightly state; empty without).
    pub late: LateByClient,
    /// `scan --also-by`: the requests by group as well (empty without).
    pub groups: Groups,
    /// Per input name, what the first pass recorded for the second read (only with
    /// [`scan_recording`]).
    pub recorded: HashMap<String, Recorded>,
}

/// What a pass over the logs does with them (as ripgrep's `Sink`): the one reader,
/// [`read_input`], tells it when an input begins, hands it each request that parsed,
/// fell inside `[since, until)`, was not late and has a client, and tells it when the
/// input is done, with what happened to it.
pub trait RequestSink {
    /// An input is about to be read.
    fn begin(&mut self, _name: &str) {}

    /// One request of client `key`, read from line `line_no` (`line`, as logged).
    /// Returns the request's posts (counted into the input's report).
    fn request(&mut self, line_no: u64, req: &Request<'_>, key: &[u8], line: &[u8]) -> u64;

    /// A request of client `key` of `posts` posts older than the previous run's
    /// watermark (nightly state): never billed, only counted.
    fn late(&mut self, _req: &Request<'_>, _key: &[u8], _posts: u64) {}

    /// The input is read (in whole or in part: see the report).
    fn finish(&mut self, _report: &FileReport) {}

    /// Whether a line (neither blank nor a comment) is worth parsing: a pass that
    /// answers false for some lines must be sure none of them holds a request it
    /// wants, and must not use the file's counts (they leave those lines out).
    #[inline]
    fn keep(&self, _line: &[u8]) -> bool {
        true
    }

    /// Progress counters to bump while reading, if anyone watches.
    fn counters(&self) -> Option<Arc<ReadCounters>> {
        None
    }

    /// Where to record access points of a gzip or plain input, if they are wanted (see
    /// [`crate::input::gzip_index`]).
    fn gzip_index(&self) -> Option<Arc<std::sync::Mutex<GzIndex>>> {
        None
    }

    /// Several parse workers share the input ([`SplitSink`]): the requests handed on
    /// next are of block `seq`, their line numbers counting from its start.
    fn block(&mut self, _seq: u64) {}

    /// Several parse workers are done with the input: where each block's lines sit in
    /// it, as `(seq, lines before it, its lines)`, sorted by `seq` (told before
    /// [`Self::finish`], after every part is absorbed).
    fn placed(&mut self, _blocks: &[(u64, u64, u64)]) {}
}

/// The first pass: weigh each request and add it to the aggregate.
impl RequestSink for (&ReadSpec, &mut Aggregate) {
    #[inline]
    fn request(&mut self, _: u64, req: &Request<'_>, key: &[u8], _: &[u8]) -> u64 {
        let posts = self.0.weigher.weight(req);
        self.1.add(key, req.time, posts, 1);
        posts
    }
}

/// The first pass of `scan`: weighs each request into the aggregate, and counts the
/// late ones per client.
pub struct FirstPass<'a> {
    pub spec: &'a ReadSpec,
    pub aggregate: &'a mut Aggregate,
    pub late: &'a mut LateByClient,
    /// `scan --also-by`: each request is added to its groups too.
    pub groups: &'a mut Groups,
    /// Where a request's group key is written.
    pub group_key: Vec<u8>,
}

impl RequestSink for FirstPass<'_> {
    #[inline]
    fn request(&mut self, _: u64, req: &Request<'_>, key: &[u8], _: &[u8]) -> u64 {
        let posts = self.spec.weigher.weight(req);
        self.aggregate.add(key, req.time, posts, 1);
        if !self.groups.is_empty() && !self.spec.is_exempt(key) {
            for g in self.groups.by.iter_mut() {
                if crate::input::spec::group_key_into(g.by, req, &mut self.group_key) {
                    g.add(&self.group_key, key, req.time, posts);
                }
            }
        }
        posts
    }

    fn late(&mut self, req: &Request<'_>, key: &[u8], posts: u64) {
        match self.late.get_mut(key) {
            Some(l) => l.add(req.time, posts),
            None => {
                let mut l = Late::default();
                l.add(req.time, posts);
                self.late.insert(key.into(), l);
            }
        }
    }
}

/// A pass whose work on one input can be shared by several parse workers: each part
/// collects on its own and is absorbed at the end (what it collects is a sum). Parts
/// see the input's lines in no particular order, and the `line_no` their `request` is
/// given counts from the start of a block, not of the input: a pass that needs either
/// is read in order by one worker (a plain [`RequestSink`]).
pub trait SplitSink: RequestSink {
    type Part: RequestSink + Send;
    fn part(&self) -> Self::Part;
    fn absorb(&mut self, part: &mut Self::Part);
}

/// A share of the first pass, collecting into its own aggregate.
pub struct FirstPassPart<'a> {
    spec: &'a ReadSpec,
    collected: Collected,
    /// Where a request's group key is written (`scan --also-by`), kept between
    /// requests.
    group_key: Vec<u8>,
}

impl FirstPassPart<'_> {
    /// The first pass over this part's collection, for one call: `group_key` is lent
    /// to it and taken back after the call.
    #[inline]
    fn pass(&mut self) -> FirstPass<'_> {
        FirstPass {
            spec: self.spec,
            aggregate: &mut self.collected.aggregate,
            late: &mut self.collected.late,
            groups: &mut self.collected.groups,
            group_key: std::mem::take(&mut self.group_key),
        }
    }
}

impl RequestSink for FirstPassPart<'_> {
    #[inline]
    fn request(&mut self, line_no: u64, req: &Request<'_>, key: &[u8], line: &[u8]) -> u64 {
        let mut pass = self.pass();
        let posts = pass.request(line_no, req, key, line);
        self.group_key = pass.group_key;
        posts
    }

    fn late(&mut self, req: &Request<'_>, key: &[u8], posts: u64) {
        let mut pass = self.pass();
        pass.late(req, key, posts);
        self.group_key = pass.group_key;
    }
}

impl<'a> SplitSink for FirstPass<'a> {
    type Part = FirstPassPart<'a>;

    fn part(&self) -> FirstPassPart<'a> {
        let mut collected = Collected::default();
        if !self.spec.also_by.is_empty() {
            collected.groups = Groups::new(&self.spec.collected_groups());
        }
        // A worker's clients count against --memory-limit like the file's own.
        if let Some(budget) = &self.spec.memory {
            collected.aggregate.keep_to(budget);
        }
        FirstPassPart {
            spec: self.spec,
            collected,
            group_key: Vec::new(),
        }
    }

    fn absorb(&mut self, part: &mut FirstPassPart<'a>) {
        let part = std::mem::take(&mut part.collected);
        self.aggregate.merge(part.aggregate);
        merge_by_client(self.late, part.late);
        self.groups.merge(part.groups);
    }
}

struct LineSink<'a, S> {
    spec: &'a ReadSpec,
    report: &'a mut FileReport,
    on: &'a mut S,
    key: Vec<u8>,
}

impl<S: RequestSink> LineSink<'_, S> {
    fn malformed(&mut self, line_no: u64, reason: &str, line: &[u8]) {
        self.report.malformed += 1;
        if self.report.malformed_examples.len() < MALFORMED_EXAMPLES {
            let shown = &line[..line.len().min(EXAMPLE_BYTES)];
            self.report.malformed_examples.push(MalformedLine {
                line: line_no,
                reason: reason.to_string(),
                text: display_key(shown),
            });
        }
    }

    /// [`Self::line`] for an input read in order: comment lines reach the format too.
    #[inline]
    fn line_in_order(&mut self, format: &mut dyn LineFormat, line_no: u64, frame: Frame<'_>) {
        if let Frame::Line(l) = frame {
            if l.first() == Some(&b'#') {
                self.report.comments += 1;
                format.comment(l);
                return;
            }
        }
        self.line(format, line_no, frame)
    }

    /// Reads one line with `format`. A comment line is only counted: the caller shows
    /// it to the format (the parse workers of a format that ignores comments do not).
    #[inline]
    fn line(&mut self, format: &dyn LineFormat, line_no: u64, frame: Frame<'_>) {
        let line = match frame {
            Frame::Line(l) => l,
            Frame::TooLong => {
                return self.malformed(line_no, "line longer than 1 MiB", b"");
            }
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            self.report.blank += 1;
            return;
        }
        if line[0] == b'#' {
            self.report.comments += 1;
            return;
        }
        if !self.on.keep(line) {
            return;
        }
        // Borrowed, not moved out: a `Request` is ~190 bytes, and moving it out of the
        // `Result` was a `memmove` call per line (~3% of the parse thread).
        let parsed = format.parse(line);
        let req = match &parsed {
            Ok(r) => r,
            Err(reason) => return self.malformed(line_no, reason, line),
        };
        if !crate::engine::limits::printable(req.time) {
            return self.malformed(line_no, "time outside the years 0000-9999", line);
        }
        if !self.spec.in_range(req.time) {
            self.report.out_of_range += 1;
            return;
        }
        let keyed = self.spec.keyer.key_into(req, &mut self.key);
        if let Some(w) = self.spec.late_before {
            if req.time < w {
                if let Keyed::Malformed(reason) = keyed {
                    return self.malformed(line_no, reason, line);
                }
                let posts = self.spec.weigher.weight(req);
                self.report.count_late(req.time, posts);
                if matches!(keyed, Keyed::Client) {
                    self.on.late(req, &self.key, posts);
                }
                return;
            }
        }
        let posts = match keyed {
            Keyed::Client => {
                let w = self.on.request(line_no, req, &self.key, line);
                // A statistic of the manifest: it saturates; billing refuses an overflow.
                self.report.posts = self.report.posts.saturating_add(w);
                w
            }
            Keyed::NoClient => {
                self.report.no_client += 1;
                0
            }
            Keyed::Malformed(reason) => return self.malformed(line_no, reason, line),
        };
        self.report.traffic.add(req.time, posts, req.status);
        self.report.requests += 1;
        let r = &mut *self.report;
        r.first_request = Some(r.first_request.map_or(req.time, |t| t.min(req.time)));
        r.last_request = Some(r.last_request.map_or(req.time, |t| t.max(req.time)));
    }
}

/// How the rest of an input is shared by several parse workers, once its first lines
/// are read in order (see [`read_in_parallel`]).
type Spread<'s, S> = &'s mut dyn FnMut(Rest<'_, '_>, &mut S) -> Tail;

/// What the parse workers need to read the rest of an input.
struct Rest<'x, 't> {
    spec: &'x ReadSpec,
    format: &'x dyn LineFormat,
    blocks: &'x Blocks<'t>,
    report: &'x mut FileReport,
    /// Lines read before (in order).
    lines_before: u64,
}

/// How the rest of an input ended.
struct Tail {
    lines: u64,
    failure: Option<(io::Error, bool)>,
}

/// Reads a stream of text (a span of a file, say) in order on one worker, handing each
/// request to `on`; its line numbers count from the start of `text`.
pub fn scan_text<S: RequestSink>(
    spec: &ReadSpec,
    text: Box<dyn std::io::Read + Send + '_>,
    report: &mut FileReport,
    on: &mut S,
) {
    decompress::read_blocks(text, MAX_LINE, Inflate::for_pool(), |blocks| {
        scan_blocks(spec, blocks, report, on, None)
    })
}

/// Reads the blocks of a decompressed stream line by line, handing each request to
/// `on`. The first lines are read in order (to choose the format, keep a sample and
/// show headers to the format); after them, with `spread`, the rest is shared by
/// several workers, unless the format reads comment lines.
fn scan_blocks<S: RequestSink>(
    spec: &ReadSpec,
    blocks: &Blocks<'_>,
    report: &mut FileReport,
    on: &mut S,
    mut spread: Option<Spread<'_, S>>,
) {
    let mut candidates = spec.format.candidates(&spec.fields, &spec.json);
    let mut sink = LineSink {
        spec,
        report,
        on,
        key: Vec::with_capacity(64),
    };
    // With one candidate there is nothing to detect; else buffer the first lines.
    let mut chosen: Option<usize> = (candidates.len() == 1).then_some(0);
    let mut pending: Vec<(u64, Option<Vec<u8>>)> = Vec::new();
    let mut nonblank = 0usize;
    let mut unrecognised = false;
    // Blank lines, and comment lines past HELD_COMMENT_BYTES, are only counted while
    // detecting (added to the report once a format is chosen), so that a file of
    // endless blank or comment lines cannot fill memory before its 100th request.
    let mut not_held = (0u64, 0u64);
    let mut held_comment_bytes = 0usize;
    // The first lines and headers, kept to name a better format if lines are malformed.
    let (mut sample, mut sample_comments, mut sample_bytes) = (Vec::new(), Vec::new(), 0usize);

    let choose = |candidates: &mut [Box<dyn LineFormat>],
                  pending: &mut Vec<(u64, Option<Vec<u8>>)>,
                  sink: &mut LineSink<'_, S>,
                  (blank, comments): (u64, u64)| {
        let sample: Vec<&[u8]> = pending
            .iter()
            .filter_map(|(_, l)| l.as_deref())
            .filter(|l| !is_blank_or_comment(l))
            .collect();
        let pick = if sample.is_empty() {
            Some(0)
        } else {
            detect(candidates, &sample)
        };
        if let Some(i) = pick {
            sink.report.blank += blank;
            sink.report.comments += comments;
            for (n, l) in pending.drain(..) {
                let frame = l.as_deref().map_or(Frame::TooLong, Frame::Line);
                sink.line_in_order(candidates[i].as_mut(), n, frame);
            }
        }
        pick
    };

    let mut lines = 0u64;
    let mut failure: Option<(io::Error, bool)> = None;
    while let Some(block) = blocks.next() {
        if let BlockKind::Failed {
            error,
            dropped_partial_line,
        } = block.kind
        {
            failure = Some((error, dropped_partial_line));
            break;
        }
        let before = lines;
        lines += block.for_each_line(MAX_LINE, |n, frame| {
            let n = before + n;
            if unrecognised {
                return;
            }
            if let Frame::Line(l) = frame {
                if sample.len() < DETECT_LINES
                    && sample_bytes + l.len() <= SAMPLE_BYTES
                    && !l.iter().all(u8::is_ascii_whitespace)
                {
                    sample_bytes += l.len();
                    if l[0] == b'#' {
                        sample_comments.push(l.to_vec());
                    } else {
                        sample.push(l.to_vec());
                    }
                }
            }
            if let Some(i) = chosen {
                return sink.line_in_order(candidates[i].as_mut(), n, frame);
            }
            let line = match frame {
                Frame::Line(l) => {
                    if l.iter().all(u8::is_ascii_whitespace) {
                        not_held.0 += 1;
                        return;
                    }
                    if l[0] != b'#' {
                        nonblank += 1;
                    } else {
                        // Every candidate sees the headers before it is tried (they are
                        // shown again to the one chosen, in order, when the lines replay).
                        for c in candidates.iter_mut() {
                            c.comment(l);
                        }
                        if held_comment_bytes + l.len() > HELD_COMMENT_BYTES {
                            not_held.1 += 1;
                            return;
                        }
                        held_comment_bytes += l.len();
                    }
                    Some(l.to_vec())
                }
                Frame::TooLong => None,
            };
            pending.push((n, line));
            if nonblank >= DETECT_LINES {
                chosen = choose(&mut candidates, &mut pending, &mut sink, not_held);
                unrecognised = chosen.is_none();
            }
        });
        blocks.recycle(block);
        // The sample is full (no later line can join it) and the format is chosen
        // and ignores comments: the rest can be read in any order.
        if let (Some(i), Some(spread)) = (chosen, spread.as_mut()) {
            if sample.len() >= DETECT_LINES && !candidates[i].reads_comments() {
                let rest = Rest {
                    spec,
                    format: candidates[i].as_ref(),
                    blocks,
                    report: &mut *sink.report,
                    lines_before: lines,
                };
                let tail = spread(rest, &mut *sink.on);
                lines += tail.lines;
                failure = tail.failure;
                break;
            }
        }
    }
    if chosen.is_none() && !unrecognised {
        chosen = choose(&mut candidates, &mut pending, &mut sink, not_held);
        unrecognised = chosen.is_none();
    }
    report.lines = lines;
    if unrecognised {
        report.status = crate::input::reader::FileStatus::Unrecognised;
        report.error = Some(format!(
            "no format fits its first {} lines (tried: {})",
            nonblank.min(DETECT_LINES),
            candidates
                .iter()
                .map(|c| c.name().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    } else {
        let any_lines = report.lines > report.blank + report.comments;
        let used = candidates[chosen.unwrap_or(0)].as_ref();
        report.format = (any_lines || candidates.len() == 1).then(|| used.name().to_string());
        if report.malformed > 0 {
            report.looks_like = better_format(spec, used, &sample_comments, &sample);
        }
    }
    if let Some((e, dropped_partial_line)) = failure {
        report.complete = false;
        report.dropped_partial_line = dropped_partial_line;
        report.error = Some(format!("input ends early: {e}"));
    }
}

/// What one parse worker read of an input's blocks.
struct Share {
    /// Its counts; the line numbers of its malformed examples count from the start of
    /// their block, given beside them in `example_blocks`.
    report: FileReport,
    example_blocks: Vec<u64>,
    /// `(seq, lines)` of each block it read.
    blocks: Vec<(u64, u64)>,
    failure: Option<(io::Error, bool)>,
}

/// One parse worker: takes blocks until there are none left.
fn read_share<T: RequestSink>(
    spec: &ReadSpec,
    format: &dyn LineFormat,
    blocks: &Blocks<'_>,
    on: &mut T,
) -> Share {
    let mut report = FileReport::new("");
    let (mut example_blocks, mut seen, mut failure) = (Vec::new(), Vec::new(), None);
    let mut sink = LineSink {
        spec,
        report: &mut report,
        on,
        key: Vec::with_capacity(64),
    };
    while let Some(block) = blocks.next() {
        let seq = block.seq;
        if let BlockKind::Failed {
            error,
            dropped_partial_line,
        } = block.kind
        {
            failure = Some((error, dropped_partial_line));
            seen.push((seq, 0));
            continue;
        }
        let examples = sink.report.malformed_examples.len();
        sink.on.block(seq);
        let n = block.for_each_line(MAX_LINE, |n, frame| sink.line(format, n, frame));
        let added = sink.report.malformed_examples.len() - examples;
        example_blocks.extend(std::iter::repeat_n(seq, added));
        seen.push((seq, n));
        blocks.recycle(block);
    }
    Share {
        report,
        example_blocks,
        blocks: seen,
        failure,
    }
}

/// Reads the rest of an input with `workers` parse workers (this thread and
/// `workers - 1` more), each with its own part of `on`, absorbed at the end. Line
/// numbers are made whole afterwards from the blocks' line counts, so the report
/// (malformed examples included) is the one a single worker writes.
fn read_in_parallel<S: SplitSink>(rest: Rest<'_, '_>, on: &mut S, workers: usize) -> Tail {
    let Rest {
        spec,
        format,
        blocks,
        report,
        lines_before,
    } = rest;
    let mut shares = Vec::with_capacity(workers);
    std::thread::scope(|scope| {
        let mut running = Vec::new();
        for _ in 1..workers {
            let mut part = on.part();
            let spawned = std::thread::Builder::new()
                .name("parse".into())
                .spawn_scoped(scope, move || {
                    let share = read_share(spec, format, blocks, &mut part);
                    (part, share)
                });
            match spawned {
                Ok(handle) => running.push(handle),
                // No thread to spare: the workers there are read it all.
                Err(_) => break,
            }
        }
        shares.push(read_share(spec, format, blocks, on));
        for handle in running {
            let (mut part, share) = handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            on.absorb(&mut part);
            shares.push(share);
        }
    });
    // Where each block's lines start in the input.
    let mut counts: Vec<(u64, u64)> = shares.iter().flat_map(|s| s.blocks.clone()).collect();
    counts.sort_unstable();
    let mut starts = Vec::with_capacity(counts.len());
    let mut placed = Vec::with_capacity(counts.len());
    let mut lines = 0u64;
    for &(seq, n) in &counts {
        starts.push((seq, lines_before + lines));
        placed.push((seq, lines_before + lines, n));
        lines += n;
    }
    on.placed(&placed);
    let start_of = |seq: u64| {
        let i = starts
            .binary_search_by_key(&seq, |&(s, _)| s)
            .expect("a block read");
        starts[i].1
    };
    let mut examples = Vec::new();
    let mut failure = None;
    for share in shares {
        report.absorb_counts(&share.report);
        for (mut example, seq) in share
            .report
            .malformed_examples
            .into_iter()
            .zip(share.example_blocks)
        {
            example.line += start_of(seq);
            examples.push(example);
        }
        failure = failure.or(share.failure);
    }
    examples.sort_by_key(|e| e.line);
    let room = MALFORMED_EXAMPLES.saturating_sub(report.malformed_examples.len());
    report
        .malformed_examples
        .extend(examples.into_iter().take(room));
    Tail { lines, failure }
}

fn is_blank_or_comment(l: &[u8]) -> bool {
    l.iter().all(u8::is_ascii_whitespace) || l[0] == b'#'
}

/// Scans one input into `agg` with up to `workers` parse workers, bumping `progress`
/// (when given) as it goes. With `record` (the bar of
/// [`crate::input::recording::promote_after`]), a regular file's access points and
/// details are recorded for the second read (see [`crate::input::recording`]), by each
/// worker for the blocks it reads when several share it.
pub fn scan_input(
    spec: &ReadSpec,
    input: &Input,
    collected: &mut Collected,
    progress: Option<&Arc<ReadCounters>>,
    workers: usize,
    record: Option<u32>,
) -> FileReport {
    if collected.groups.is_empty() && !spec.also_by.is_empty() {
        collected.groups = Groups::new(&spec.collected_groups());
    }
    if let Some(budget) = &spec.memory {
        collected.aggregate.keep_to(budget);
    }
    let pass = FirstPass {
        spec,
        aggregate: &mut collected.aggregate,
        late: &mut collected.late,
        groups: &mut collected.groups,
        group_key: Vec::new(),
    };
    let regular = match &input.source {
        Source::Path(p) => std::fs::metadata(p).is_ok_and(|m| m.is_file()),
        Source::Stdin => false,
    };
    let Some(promote_after) = record.filter(|_| regular) else {
        return read_input_split(
            spec,
            input,
            &mut Counting::new(pass, progress.cloned()),
            workers,
        );
    };
    let mut recording = Recording::new(spec, Counting::new(pass, progress.cloned()), promote_after);
    let report = read_input_split(spec, input, &mut recording, workers);
    if let Some(r) = recording.recorded.take() {
        collected.recorded.push((input.name.clone(), r));
    }
    report
}

/// What the first pass collects over some inputs: the aggregate, the late requests
/// per client (nightly state), and the requests by group (`scan --also-by`).
#[derive(Default)]
pub struct Collected {
    pub aggregate: Aggregate,
    pub late: LateByClient,
    pub groups: Groups,
    /// Per input name, what the first pass recorded for the second read.
    pub recorded: Vec<(String, Recorded)>,
}

impl Collected {
    fn merge(&mut self, other: Collected) {
        self.aggregate.merge(other.aggregate);
        merge_by_client(&mut self.late, other.late);
        self.groups.merge(other.groups);
        self.recorded.extend(other.recorded);
    }
}

/// The one reader: reads one input, handing each request to `on` (see
/// [`RequestSink`]), and says what happened to it.
pub fn read_input<S: RequestSink>(spec: &ReadSpec, input: &Input, on: &mut S) -> FileReport {
    on.begin(&input.name);
    let report = open_and_read(spec, input, on, None);
    on.finish(&report);
    report
}

/// [`read_input`] with up to `workers` parse workers sharing the input's lines (see
/// [`SplitSink`]).
pub fn read_input_split<S: SplitSink>(
    spec: &ReadSpec,
    input: &Input,
    on: &mut S,
    workers: usize,
) -> FileReport {
    on.begin(&input.name);
    let mut spread = |rest: Rest<'_, '_>, on: &mut S| read_in_parallel(rest, on, workers);
    let spread: Option<Spread<'_, S>> = (workers > 1).then_some(&mut spread);
    let report = open_and_read(spec, input, on, spread);
    on.finish(&report);
    report
}

fn open_and_read<S: RequestSink>(
    spec: &ReadSpec,
    input: &Input,
    on: &mut S,
    spread: Option<Spread<'_, S>>,
) -> FileReport {
    match &input.source {
        Source::Path(p) => match std::fs::File::open(p) {
            Ok(f) => {
                if f.metadata().is_ok_and(|m| m.is_dir()) {
                    return FileReport::unreadable(&input.name, "is a directory".into());
                }
                read_raw(spec, &input.name, f, on, spread)
            }
            Err(e) => FileReport::unreadable(&input.name, format!("cannot open: {e}")),
        },
        Source::Stdin => read_raw(spec, &input.name, io::stdin(), on, spread),
    }
}

/// Scans a raw (possibly compressed) stream, hashing its bytes as they pass.
pub fn scan_reader<R: Read + Send, S: RequestSink>(
    spec: &ReadSpec,
    name: &str,
    raw: R,
    on: &mut S,
) -> FileReport {
    read_raw(spec, name, raw, on, None)
}

fn read_raw<R: Read + Send, S: RequestSink>(
    spec: &ReadSpec,
    name: &str,
    mut raw: R,
    on: &mut S,
    spread: Option<Spread<'_, S>>,
) -> FileReport {
    let mut report = FileReport::new(name);
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    {
        let tap = Tap::new(&mut raw, &mut hasher, &mut size, on.counters());
        match decompress::open_indexed(tap, on.gzip_index()) {
            Ok((compression, text)) => {
                report.compression = Some(compression);
                decompress::read_blocks(text, MAX_LINE, Inflate::for_pool(), |blocks| {
                    scan_blocks(spec, blocks, &mut report, on, spread)
                });
            }
            Err(e) => {
                report.status = FileStatus::Unreadable;
                report.complete = false;
                report.error = Some(format!("cannot read: {e}"));
            }
        }
    }
    // Whatever the decoder left unread still belongs to the file's digest.
    let mut rest = Tap::new(&mut raw, &mut hasher, &mut size, on.counters());
    if let Err(e) = io::copy(&mut rest, &mut io::sink()) {
        report.complete = false;
        report
            .error
            .get_or_insert_with(|| format!("read error: {e}"));
    }
    report.size = Some(size);
    report.sha256 = Some(hex::encode(hasher.finalize()));
    report
}

/// Files of one size may be copies: hash those (only those) up front, and read
/// each distinct content once.
fn skip_identical_files(inputs: Vec<Input>, skipped: &mut Vec<Skipped>) -> Vec<Input> {
    let mut by_size: HashMap<u64, usize> = HashMap::new();
    let sizes: Vec<Option<u64>> = inputs
        .iter()
        .map(|i| match &i.source {
            Source::Path(p) => std::fs::metadata(p)
                .ok()
                .filter(|m| m.is_file())
                .map(|m| m.len()),
            Source::Stdin => None,
        })
        .collect();
    for s in sizes.iter().flatten() {
        *by_size.entry(*s).or_default() += 1;
    }
    let digests: Vec<Option<[u8; 32]>> = inputs
        .par_iter()
        .zip(&sizes)
        .map(|(i, s)| match (&i.source, s) {
            (Source::Path(p), Some(s)) if by_size[s] > 1 => decompress::sha256_of(p).ok(),
            _ => None,
        })
        .collect();
    let mut first_with: HashMap<[u8; 32], String> = HashMap::new();
    let mut kept = Vec::new();
    for (input, digest) in inputs.into_iter().zip(digests) {
        if let Some(d) = digest {
            if let Some(first) = first_with.get(&d) {
                skipped.push(Skipped {
                    path: input.name.clone(),
                    reason: format!("identical content (SHA-256 {})", hex::encode(d)),
                    same_as: Some(first.clone()),
                });
                continue;
            }
            first_with.insert(d, input.name.clone());
        }
        kept.push(input);
    }
    kept
}

/// Scans everything `discovery` found, in parallel on the current rayon pool.
pub fn scan(spec: &ReadSpec, discovery: Discovery) -> ScanOutput {
    scan_with_progress(spec, discovery, None)
}

/// [`scan`], bumping `progress` as it reads.
pub fn scan_with_progress(
    spec: &ReadSpec,
    discovery: Discovery,
    progress: Option<Arc<ReadCounters>>,
) -> ScanOutput {
    scan_recording(spec, discovery, progress, None)
}

/// [`scan_with_progress`], recording what the second read needs when `record` is the
/// bar of [`crate::input::recording::promote_after`] (see [`crate::input::recording`]).
pub fn scan_recording(
    spec: &ReadSpec,
    discovery: Discovery,
    progress: Option<Arc<ReadCounters>>,
    record: Option<u32>,
) -> ScanOutput {
    let progress = progress.as_ref();
    let Discovery {
        inputs,
        mut skipped,
        problems,
        read_before,
    } = discovery;
    let mut files: Vec<FileReport> = problems
        .into_iter()
        .map(|p| {
            let mut r = FileReport::unreadable(&p.path, p.error);
            if p.missing {
                r.bad = Some(format!("missing: {}", r.error.as_deref().unwrap_or("")));
            }
            r
        })
        .collect();
    let (stdin, paths): (Vec<Input>, Vec<Input>) =
        inputs.into_iter().partition(|i| i.source == Source::Stdin);

    let paths = skip_identical_files(paths, &mut skipped);
    // Files are read side by side; the threads left over share the files' lines (one
    // file and two threads: two parse workers on it).
    let threads = rayon::current_num_threads();
    let per_file = (threads / paths.len().clamp(1, threads)).max(1);
    // Each file into an aggregate of its own, merged into the total as soon as it is
    // read: one aggregate filled file after file gets each file's requests out of order
    // (the files of a day overlap in time), and its series re-encode (with one thread,
    // the 4-file bench set took 6.63 CPU-s against 4.96 with two). Merged at once
    // rather than folded per rayon split: the splits vary from run to run, and with
    // three or four accumulators alive the default bench scan peaked at ~137 MB in 2
    // of 8 runs, then 8 of 10, against ~124 otherwise.
    let total = std::sync::Mutex::new(Collected::default());
    let path_reports: Vec<FileReport> = paths
        .par_iter()
        .map(|input| {
            let mut own = Collected::default();
            let report = scan_input(spec, input, &mut own, progress, per_file, record);
            total.lock().unwrap_or_else(|e| e.into_inner()).merge(own);
            report
        })
        .collect();
    let mut collected = total.into_inner().unwrap_or_else(|e| e.into_inner());
    // Standard input is read on its own, so that a copy of a file given as well, or
    // of an input an earlier run read (nightly state), can be left out after the fact.
    let mut stdin_inputs = Vec::new();
    for input in stdin {
        let mut agg = Collected::default();
        let report = scan_input(spec, &input, &mut agg, progress, threads, None);
        let twin = path_reports
            .iter()
            .find(|r| r.sha256.is_some() && r.sha256 == report.sha256);
        let earlier = report.sha256.as_ref().and_then(|s| read_before.get(s));
        match (twin, earlier) {
            (Some(t), _) => skipped.push(Skipped {
                path: input.name.clone(),
                reason: format!(
                    "identical content (SHA-256 {})",
                    report.sha256.clone().unwrap_or_default()
                ),
                same_as: Some(t.path.clone()),
            }),
            (None, Some(e)) => skipped.push(Skipped {
                path: input.name.clone(),
                reason: e.reason.clone(),
                same_as: Some(e.same_as.clone()),
            }),
            (None, None) => {
                collected.merge(agg);
                files.push(report);
                stdin_inputs.push(input);
            }
        }
    }
    files.extend(path_reports);
    files.sort_by(|a, b| a.path.cmp(&b.path));
    skipped.sort_by(|a, b| a.path.cmp(&b.path));
    let mut inputs = paths;
    inputs.extend(stdin_inputs);
    inputs.sort_by(|a, b| a.name.cmp(&b.name));
    ScanOutput {
        inputs,
        files,
        skipped,
        aggregate: collected.aggregate,
        late: collected.late,
        groups: collected.groups,
        recorded: collected.recorded.into_iter().collect(),
    }
}

/// Prints on stderr, one line each, what went wrong with the inputs and what was skipped.
pub fn warn_inputs(output: &ScanOutput) {
    // File names and log text reach the terminal without control characters.
    let safe = |s: &str| crate::engine::text::terminal_safe(s).into_owned();
    for f in &output.files {
        match (&f.bad, &f.error) {
            (Some(why), _) => eprintln!(
                "scrapemeter: warning: {}: bad input: {}",
                safe(&f.path),
                safe(why)
            ),
            (None, Some(e)) => eprintln!(
                "scrapemeter: warning: {}: {}",
                safe(&f.path),
                safe(&e.to_string())
            ),
            (None, None) => {}
        }
        if f.malformed > 0 {
            let first = f
                .malformed_examples
                .first()
                .map(|m| format!(" (first at line {}: {})", m.line, safe(&m.reason)))
                .unwrap_or_default();
            eprintln!(
                "scrapemeter: warning: {}: {} malformed {}{first}",
                safe(&f.path),
                f.malformed,
                if f.malformed == 1 { "line" } else { "lines" }
            );
        }
    }
    for s in &output.skipped {
        eprintln!(
            "scrapemeter: note: {} skipped: {}{}",
            safe(&s.path),
            safe(&s.reason),
            s.same_as
                .as_ref()
                .map(|p| format!(" as {}", safe(p)))
                .unwrap_or_default()
        );
    }
}
