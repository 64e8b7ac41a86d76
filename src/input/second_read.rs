//! The second read: what the reports show of the reported (flagged and exempt)
//! clients' requests beyond their counts, found by reading the logs once more.
//!
//! The first pass keeps counts only. One more read, of the files that can hold a
//! request of a reported client, finds at once:
//! - the evidence lines of each billed window ([`crate::engine::evidence`]);
//! - with `--orgs`, the top member keys of each organisation ([`crate::engine::members`]);
//! - each client's top paths and top user agents ([`crate::engine::tops`]);
//! - each client's raw spellings and its requests and posts by status class and by
//!   rule ([`crate::engine::breakdown`]).
//!
//! Only files whose time range (known from the first pass) meets a reported client's
//! first-to-last request span are read, in parallel; standard input cannot be read
//! again and gives nothing. With `--no-evidence` there is no second read, and none of
//! these is in the reports.
//!
//! When every reported client is a plain IPv4 address, lines that cannot be theirs are
//! not even parsed (see [`ip_prefilter`]), unless the reported clients made most of the
//! requests (see [`mostly_reported`]).

use crate::engine::bill::Analysis;
use crate::engine::evidence::{self, At, Edges, Kept};
use crate::engine::members;
use crate::engine::time::Micros;
use crate::input::client::{parse_canonical_ipv4, ClientKind};
use crate::input::decompress::Compression;
use crate::input::discover::{Input, Source};
use crate::input::format::Request;
use crate::input::gzip_index::LineRange;
use crate::input::post_weight::Weigher;
use crate::input::reader::{
    read_input, scan_text, FileReport, FileStatus, RequestSink, ScanOutput,
};
use crate::input::recording::{
    compact, count_details, is_org, key_hash, merge_client, ClientPart, Covered, DetailValues,
    Recorded,
};
use crate::input::spec::ReadSpec;
use aho_corasick::AhoCorasick;
use rayon::prelude::*;
use rustc_hash::FxHashMap;

/// Whether the second read may skip lines by a prefilter on their raw bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefilter {
    /// Where it is sound (see [`ip_prefilter`]).
    Auto,
    /// Parse every line (for tests: the prefilter must not change the outcome).
    Off,
}

/// An input an earlier run read (nightly state), read again for evidence only: a
/// window billed tonight may start at a request read on an earlier night.
#[derive(Debug, Clone)]
pub struct EarlierInput {
    pub input: Input,
    /// As that run recorded it: the file is used only if it still has these bytes.
    pub sha256: String,
    pub first_request: Micros,
    pub last_request: Micros,
    /// The watermark before that run: its requests before it were late, not billed.
    pub late_before: Option<Micros>,
}

/// Fills the evidence, members and tops of every client in `analysis`, looking for
/// evidence in `earlier` inputs too. Returns a note per earlier input that could not
/// be used (gone, or changed since).
pub fn attach(
    spec: &ReadSpec,
    scan: &ScanOutput,
    earlier: &[EarlierInput],
    analysis: &mut Analysis,
) -> Vec<String> {
    attach_with(spec, scan, earlier, analysis, Prefilter::Auto)
}

/// One file of the second read.
struct ToRead<'a> {
    /// The place of the file among all inputs (this run's and earlier ones) by name:
    /// the order that picks the first and last of several requests at one instant.
    file: usize,
    input: &'a Input,
    /// An earlier run's input: evidence only (tops and members cover this run's
    /// inputs), and only if it still has the bytes that run read.
    earlier: Option<&'a EarlierInput>,
}

/// [`attach`], choosing whether lines may be skipped unparsed.
pub fn attach_with(
    spec: &ReadSpec,
    scan: &ScanOutput,
    earlier: &[EarlierInput],
    analysis: &mut Analysis,
    pre: Prefilter,
) -> Vec<String> {
    if analysis.clients.is_empty() {
        return Vec::new();
    }

    let clients: FxHashMap<Box<[u8]>, usize> = analysis
        .clients
        .iter()
        .enumerate()
        .map(|(i, c)| (c.key.clone(), i))
        .collect();
    let edges = evidence::wanted(analysis);
    let orgs: Vec<bool> = analysis
        .clients
        .iter()
        .map(|c| is_org(spec, &c.key))
        .collect();
    let filter = match pre {
        Prefilter::Auto if mostly_reported(scan, analysis) => None,
        Prefilter::Auto => ip_prefilter(spec, analysis.clients.iter().map(|c| &*c.key)),
        Prefilter::Off => None,
    };
    let spans = spans(
        analysis
            .clients
            .iter()
            .map(|c| (c.first_request, c.last_request)),
    );
    // Earlier inputs whose time range holds an edge of a window billed in this run.
    let edge_times: Vec<Micros> = {
        let mut v: Vec<Micros> = edges.iter().flatten().flat_map(|e| [e.1, e.2]).collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    let holds_edge = |a: Micros, b: Micros| {
        let i = edge_times.partition_point(|&t| t < a);
        i < edge_times.len() && edge_times[i] <= b
    };
    let mut files: Vec<ToRead<'_>> = scan
        .inputs
        .iter()
        .filter(|i| rereadable(i))
        .filter(|i| {
            scan.files
                .iter()
                .find(|f| f.path == i.name)
                .is_some_and(|f| match (f.first_request, f.last_request) {
                    (Some(a), Some(b)) => meets(&spans, a, b),
                    _ => false,
                })
        })
        .map(|input| ToRead {
            file: 0,
            input,
            earlier: None,
        })
        .collect();
    files.extend(
        earlier
            .iter()
            .filter(|e| holds_edge(e.first_request, e.last_request))
            // Standard input and FIFOs read by an earlier run are gone.
            .filter(|e| rereadable(&e.input))
            .filter(|e| !scan.inputs.iter().any(|i| i.name == e.input.name))
            .map(|e| ToRead {
                file: 0,
                input: &e.input,
                earlier: Some(e),
            }),
    );
    files.sort_by(|a, b| a.input.name.cmp(&b.input.name));
    for (i, f) in files.iter_mut().enumerate() {
        f.file = i;
    }
    let mut all = Part::default();
    let mut notes = Vec::new();
    in_file_order(
        &files,
        |f| {
            let earlier_spec;
            let spec = match f.earlier {
                Some(e) => {
                    earlier_spec = ReadSpec {
                        late_before: e.late_before,
                        ..spec.clone()
                    };
                    &earlier_spec
                }
                None => spec,
            };
            if let (None, Some(rec)) = (f.earlier, scan.recorded.get(&f.input.name)) {
                let cx = Context {
                    spec,
                    clients: &clients,
                    edges: &edges,
                    orgs: &orgs,
                    filter: filter.as_ref(),
                    edge_times: &edge_times,
                    files: &scan.files,
                };
                match read_recorded(&cx, f, rec) {
                    Ok(Some(part)) => return Ok(part),
                    Err(note) => return Err(note),
                    Ok(None) => {}
                }
            }
            let mut reader = Reader {
                spec,
                clients: &clients,
                edges: &edges,
                orgs: &orgs,
                filter: filter.as_ref(),
                file: f.file,
                name: &f.input.name,
                own: Vec::new(),
                part: Part::default(),
                evidence_only: f.earlier.is_some(),
                covered: Vec::new(),
            };
            let report = read_input(spec, f.input, &mut reader);
            match f.earlier {
                Some(e) if report.sha256.as_deref() != Some(e.sha256.as_str()) => Err(format!(
                    "{} (read by an earlier run) not used for evidence: {}",
                    f.input.name,
                    match (&report.status, &report.error) {
                        (FileStatus::Unreadable, Some(err)) => err.clone(),
                        _ => "its content changed since".to_string(),
                    }
                )),
                _ => Ok(reader.part),
            }
        },
        |part| match part {
            Ok(p) => all.merge(p),
            Err(note) => notes.push(note),
        },
    );
    evidence::place(all.found, analysis);
    // Inputs read once and never again (standard input, FIFOs) may hold a window's
    // first or last request: the reports say so rather than show nothing.
    let once: Vec<&str> = scan
        .inputs
        .iter()
        .filter(|i| !rereadable(i))
        .map(|i| i.name.as_str())
        .collect();
    if !once.is_empty() {
        let note = format!(
            "not available: {} cannot be read a second time (standard input or a FIFO is read once)",
            once.join(", ")
        );
        for w in analysis
            .clients
            .iter_mut()
            .flat_map(|c| c.windows.iter_mut())
        {
            if w.new_in_this_run && (w.evidence.first.is_none() || w.evidence.last.is_none()) {
                w.evidence.unavailable = Some(note.clone());
            }
        }
    }
    let rule_names: Vec<String> = match &spec.weigher {
        Weigher::Rules(r) => r.rules.iter().map(|r| r.name.clone()).collect(),
        Weigher::Default => Vec::new(),
    };
    for (i, c) in analysis.clients.iter_mut().enumerate() {
        let part = all.clients.remove(&i).unwrap_or_default();
        c.tops = Some(part.tops.lists(&all.values.tops));
        c.breakdown = Some(part.breakdown.finish(&all.values.spellings, &rule_names));
        if orgs[i] {
            c.members = Some(members::top(part.members.unwrap_or_default()));
        }
    }
    notes
}

/// Whether an input can be read again: a regular file (a FIFO or standard input gives
/// its bytes once, and opening a FIFO again waits for a writer that never comes).
fn rereadable(input: &Input) -> bool {
    match &input.source {
        Source::Path(p) => std::fs::metadata(p).is_ok_and(|m| m.is_file()),
        Source::Stdin => false,
    }
}

/// A prefilter over raw lines when the client key is `ip`, there is no organisations
/// file, and every reported client is an IP address written canonically: only lines
/// holding one of these byte strings (in any case) are parsed:
/// - every IPv4 key, as is;
/// - for every IPv6 key, its last group (`1b` of `2001:db8::1b`) and its last 32 bits
///   as a dotted quad (`0.0.0.27`); a key whose last group is zero turns the filter off;
/// - `ffff:` and `\u`.
///
/// Why no line of a reported client is skipped: an IPv4 key comes from a remote
/// address ([`crate::input::client::key_into`]) that is either that dotted quad (bare or in
/// brackets: it holds the key), or an IPv4-mapped IPv6 address, whose sixth group
/// `ffff` is always followed by `:` (however it is compressed or written: hex groups
/// such as `::ffff:c633:6417` do not hold the key, but hold `ffff:`). An IPv6 key comes
/// from an address that may be written with leading zeros, in upper case, with other
/// zero runs compressed, or with its last 32 bits as a dotted quad; written in hex, its
/// last group is never compressed away (it is not zero) and only gains leading zeros
/// (`001b` holds `1b`); written dotted, it holds the dotted quad (the address parser
/// takes no leading zeros there). Every format takes the remote address from the line
/// as bytes, except JSON, which unescapes its strings: a character there may be written
/// `\u0031`, and such lines are parsed too. Lines that are kept are parsed and keyed as
/// in the first pass, so a line of another client that happens to hold a pattern is
/// simply not counted.
pub fn ip_prefilter<'a>(
    spec: &ReadSpec,
    keys: impl Iterator<Item = &'a [u8]>,
) -> Option<AhoCorasick> {
    if spec.client != ClientKind::Ip
        || spec.keyer.orgs.is_some()
        || spec.keyer.field_index.is_some()
    {
        return None;
    }
    let mut patterns: Vec<Vec<u8>> = Vec::new();
    for k in keys {
        if parse_canonical_ipv4(k).is_some() {
            patterns.push(k.to_vec());
            continue;
        }
        let v6: std::net::Ipv6Addr = std::str::from_utf8(k).ok()?.parse().ok()?;
        // Only keys the first pass writes this way (mapped addresses become IPv4).
        if v6.to_string().as_bytes() != k || v6.to_ipv4_mapped().is_some() {
            return None;
        }
        let seg = v6.segments();
        if seg[7] == 0 {
            return None;
        }
        patterns.push(format!("{:x}", seg[7]).into_bytes());
        let o = v6.octets();
        patterns.push(format!("{}.{}.{}.{}", o[12], o[13], o[14], o[15]).into_bytes());
    }
    patterns.extend([b"ffff:".to_vec(), b"\\u".to_vec()]);
    // A full DFA: a few short patterns, run over every line (the default automaton
    // took 17% of a default scan's CPU on the bench set, the DFA about 12%; writing out
    // every case to get the SIMD searcher was slower still, as `1b` matches often).
    AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .kind(Some(aho_corasick::AhoCorasickKind::DFA))
        .build(patterns)
        .ok()
}

/// Whether the reported clients made at least half of the requests the first pass
/// read: then most lines pass [`ip_prefilter`] anyway, and running it over a line costs
/// about what parsing the line does (a DFA step per byte to the end of a line that does
/// not match). One bench file, `--threads 1`, `perf stat -e task-clock` medians of 3 to
/// 5 alternating runs, prefilter on against off: `--threshold 75` (491 reported
/// clients, 70% of the requests) 3.81 against 3.50 s, `--threshold 2000` (20, 52%)
/// 2.97 against 2.75 s; with 2 to 6 clients (29 to 43%) the same within noise.
fn mostly_reported(scan: &ScanOutput, analysis: &Analysis) -> bool {
    let reported: u64 = analysis.clients.iter().map(|c| c.total_requests).sum();
    let read: u64 = scan.files.iter().map(|f| f.requests).sum();
    reported.saturating_mul(2) >= read
}

/// The clients' first-to-last request spans, merged where they overlap, sorted.
fn spans(all: impl Iterator<Item = (Micros, Micros)>) -> Vec<(Micros, Micros)> {
    let mut all: Vec<(Micros, Micros)> = all.collect();
    all.sort_unstable();
    let mut out: Vec<(Micros, Micros)> = Vec::new();
    for (a, b) in all {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// Whether `[a, b]` meets one of the (merged, sorted) `spans`.
fn meets(spans: &[(Micros, Micros)], a: Micros, b: Micros) -> bool {
    let i = spans.partition_point(|s| s.1 < a);
    i < spans.len() && spans[i].0 <= b
}

/// Runs `read` over `items` in parallel and hands the results to `merge` in the order
/// of `items`, a few at a time (so that at most a few results are held at once, and a
/// merge that drops values, as [`Tops`] may, gives the same outcome on any number of
/// threads).
pub fn in_file_order<I: Sync, T: Send>(
    items: &[I],
    read: impl Fn(&I) -> T + Sync,
    mut merge: impl FnMut(T),
) {
    let at_once = rayon::current_num_threads().max(1) * 8;
    for group in items.chunks(at_once) {
        let parts: Vec<T> = group.par_iter().map(&read).collect();
        parts.into_iter().for_each(&mut merge);
    }
}

/// What the second read finds in one file.
#[derive(Default)]
struct Part {
    found: Kept,
    /// Per client (index into `analysis.clients`).
    clients: FxHashMap<usize, ClientPart>,
    /// The values `clients` count by id.
    values: DetailValues,
}

impl Part {
    fn merge(&mut self, other: Part) {
        if self.clients.is_empty() {
            // The first file's (no client counted yet): nothing to remap.
            let found = std::mem::take(&mut self.found);
            *self = other;
            self.found.merge(found);
            return;
        }
        self.found.merge(other.found);
        let map = self.values.absorb(other.values);
        for (client, part) in other.clients {
            merge_client(
                self.clients.entry(client).or_default(),
                part,
                &map,
                &self.values,
            );
        }
        compact(&mut self.values, self.clients.values_mut());
    }
}

struct Reader<'a> {
    spec: &'a ReadSpec,
    /// Client key → index into `analysis.clients`.
    clients: &'a FxHashMap<Box<[u8]>, usize>,
    edges: &'a [Edges],
    orgs: &'a [bool],
    filter: Option<&'a AhoCorasick>,
    /// The input's place among the sorted inputs, and its name.
    file: usize,
    name: &'a str,
    own: Vec<u8>,
    part: Part,
    /// Look for evidence lines only (an earlier run's input).
    evidence_only: bool,
    /// Per client (index into `analysis.clients`), the lines whose details of theirs
    /// the first pass counted ([`Recorded::covered`]; empty when there is no record):
    /// by index rather than a second lookup by key per line.
    covered: Vec<Option<&'a [(u64, u64)]>>,
}

impl RequestSink for Reader<'_> {
    #[inline]
    fn keep(&self, line: &[u8]) -> bool {
        self.filter.is_none_or(|f| f.is_match(line))
    }

    fn request(&mut self, line_no: u64, req: &Request<'_>, key: &[u8], line: &[u8]) -> u64 {
        let Some(&client) = self.clients.get(key) else {
            return 0;
        };
        let at = At {
            file: self.file,
            name: self.name,
            line_no,
            line,
        };
        evidence::look(
            &self.edges[client],
            client,
            req.time,
            &at,
            &mut self.part.found,
        );
        let covered = |ranges: &[(u64, u64)]| {
            let i = ranges.partition_point(|r| r.1 < line_no);
            i < ranges.len() && ranges[i].0 <= line_no
        };
        if self.evidence_only
            || self
                .covered
                .get(client)
                .copied()
                .flatten()
                .is_some_and(covered)
        {
            return 0;
        }
        let part = self.part.clients.entry(client).or_default();
        count_details(
            self.spec,
            req,
            key,
            self.orgs[client],
            &mut self.own,
            &mut self.part.values,
            part,
        );
        compact(&mut self.part.values, self.part.clients.values_mut());
        0
    }
}

/// Hands requests on with their line numbers moved by `base` (lines read from the
/// middle of a file are numbered from 1).
struct Offset<'r, S> {
    inner: &'r mut S,
    base: u64,
}

impl<S: RequestSink> RequestSink for Offset<'_, S> {
    #[inline]
    fn keep(&self, line: &[u8]) -> bool {
        self.inner.keep(line)
    }

    fn request(&mut self, line_no: u64, req: &Request<'_>, key: &[u8], line: &[u8]) -> u64 {
        self.inner.request(line_no + self.base, req, key, line)
    }
}

/// What one file of the second read needs to know beyond the file.
struct Context<'a> {
    spec: &'a ReadSpec,
    clients: &'a FxHashMap<Box<[u8]>, usize>,
    edges: &'a [Edges],
    orgs: &'a [bool],
    filter: Option<&'a AhoCorasick>,
    /// Every billed window's first and last instant, sorted.
    edge_times: &'a [Micros],
    /// The first pass's reports of this run's inputs (their digests).
    files: &'a [FileReport],
}

/// Reads again only the lines of an input the first pass recorded ([`Recorded`])
/// that can matter: the reported clients' lines whose details the first pass did not
/// count, and the chunks whose time range holds a window's edge. A gzip or plain input
/// is read from the access point before each span of such lines; any other is
/// decompressed once more from its start, framing and parsing only those lines.
/// `Ok(None)` when the outcome could differ from a whole read (a client past the caps
/// of its top lists or spellings in this file, whose dropped values depend on the
/// order): read it whole.
fn read_recorded(cx: &Context<'_>, f: &ToRead<'_>, rec: &Recorded) -> Result<Option<Part>, String> {
    let Source::Path(path) = &f.input.source else {
        return Ok(None);
    };
    let mut ranges = rec.chunks_holding(cx.edge_times);
    for key in cx.clients.keys() {
        if let Some(&(first, until)) = rec.uncovered.get(&key_hash(key)) {
            if first < until {
                ranges.push((first, until - 1));
            }
        }
    }
    ranges.sort_unstable();
    // Reading on through a short gap costs less than starting again at an access point
    // (half a span of inflating, on average). Read from the start, a gap is skipped
    // unframed: only a short one is worth framing rather than starting a new range.
    let lines_per_point = match rec.compression {
        Compression::Gzip | Compression::Plain => rec
            .index
            .points
            .last()
            .map_or(0, |p| p.first_line / rec.index.points.len() as u64),
        _ => SEQUENTIAL_GAP,
    };
    let mut merged: Vec<(u64, u64)> = Vec::new();
    for (a, b) in ranges {
        match merged.last_mut() {
            Some(last) if a <= last.1.saturating_add(1 + lines_per_point / 2) => {
                last.1 = last.1.max(b)
            }
            _ => merged.push((a, b)),
        }
    }
    let spec = ReadSpec {
        format: rec.format.clone(),
        ..cx.spec.clone()
    };
    let mut reader = Reader {
        spec: &spec,
        clients: cx.clients,
        edges: cx.edges,
        orgs: cx.orgs,
        filter: cx.filter,
        file: f.file,
        name: &f.input.name,
        own: Vec::new(),
        part: Part::default(),
        evidence_only: false,
        covered: covered_by_client(cx.clients, &rec.covered),
    };
    let changed = |why: String| {
        format!(
            "{} not used for evidence, top paths and user agents: {why}",
            f.input.name
        )
    };
    if !matches!(rec.compression, Compression::Gzip | Compression::Plain) {
        // No access points: the file must be the one the first pass read (its digest),
        // and is decompressed once, handing on only the ranges' lines.
        let digest = crate::input::decompress::sha256_of(path)
            .map_err(|e| changed(format!("cannot read: {e}")))?;
        let first = cx.files.iter().find(|r| r.path == f.input.name);
        if first.and_then(|r| r.sha256.as_deref()) != Some(hex::encode(digest).as_str()) {
            return Err(changed("its content changed since it was read".into()));
        }
        let file = std::fs::File::open(path).map_err(|e| changed(format!("cannot open: {e}")))?;
        let (_, text) = crate::input::decompress::open(file)
            .map_err(|e| changed(format!("cannot read: {e}")))?;
        let mut lines = LineRange::from_start(text, 1, 0);
        for (from, to) in merged {
            lines.then(from, to);
            let mut scratch = FileReport::new(&f.input.name);
            let mut sink = Offset {
                inner: &mut reader,
                base: from - 1,
            };
            scan_text(&spec, Box::new(&mut lines), &mut scratch, &mut sink);
            if !scratch.complete {
                return Err(changed(format!(
                    "cannot read: {}",
                    scratch.error.unwrap_or_default()
                )));
            }
        }
        return Ok(with_first_pass_details(cx, rec, reader.part));
    }
    for (from, to) in merged {
        let file = std::fs::File::open(path).map_err(|e| changed(format!("cannot open: {e}")))?;
        let mut lines = LineRange::new(file, &rec.index, from, to)
            .map_err(|e| changed(format!("cannot read: {e}")))?;
        let mut scratch = FileReport::new(&f.input.name);
        let mut sink = Offset {
            inner: &mut reader,
            base: from - 1,
        };
        scan_text(&spec, Box::new(&mut lines), &mut scratch, &mut sink);
        if !lines.unchanged() {
            return Err(changed("its content changed since it was read".into()));
        }
    }
    Ok(with_first_pass_details(cx, rec, reader.part))
}

/// [`Reader::covered`] of a record's `covered`.
fn covered_by_client<'a>(
    clients: &FxHashMap<Box<[u8]>, usize>,
    covered: &'a Covered,
) -> Vec<Option<&'a [(u64, u64)]>> {
    let mut by_client = vec![None; clients.values().max().map_or(0, |&i| i + 1)];
    for (key, ranges) in covered {
        if let Some(&i) = clients.get(key) {
            by_client[i] = Some(ranges.as_slice());
        }
    }
    by_client
}

/// Lines framed rather than skipped between two ranges of a file read from its start:
/// a range costs a framing thread and its start, a line framed and prefiltered a
/// fraction of a microsecond (an estimate, not measured: the figure only trades one
/// cost for the other, the outcome is the same).
const SEQUENTIAL_GAP: u64 = 256;

/// `part` (what the second read found in a file) with the details the first pass
/// counted of its clients; `None` when a client's are no longer exact (see
/// [`read_recorded`]).
fn with_first_pass_details(cx: &Context<'_>, rec: &Recorded, part: Part) -> Option<Part> {
    // The lines read come before the first pass's counts of each client.
    let mut part = part;
    let reported: Vec<(usize, &ClientPart)> = rec
        .details
        .iter()
        .filter_map(|(key, counted)| cx.clients.get(key).map(|&i| (i, counted)))
        .collect();
    let parts: Vec<&ClientPart> = reported.iter().map(|r| r.1).collect();
    let map = part.values.absorb_used(&rec.values, &parts);
    for (i, counted) in reported {
        let mine = part.clients.entry(i).or_default();
        merge_client(mine, counted.clone(), &map, &part.values);
        if !mine.is_exact() {
            return None;
        }
    }
    compact(&mut part.values, part.clients.values_mut());
    Some(part)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Overrides};

    fn cfg(client: &str) -> Config {
        crate::config::for_tests(Overrides {
            client: Some(client.into()),
            ..Default::default()
        })
    }

    #[test]
    fn spans_merge_and_meet() {
        let s = spans([(10, 20), (15, 30), (40, 50)].into_iter());
        assert_eq!(s, [(10, 30), (40, 50)]);
        assert!(meets(&s, 0, 10));
        assert!(meets(&s, 30, 35));
        assert!(!meets(&s, 31, 39));
        assert!(meets(&s, 35, 45));
        assert!(!meets(&s, 51, 60));
    }

    #[test]
    fn prefilter_only_for_canonical_ip_keys() {
        let ip = cfg("ip");
        let keys = |k: &'static [&'static str]| k.iter().map(|s| s.as_bytes());
        assert!(ip_prefilter(&ip.read, keys(&["198.51.100.23", "10.0.0.1"])).is_some());
        assert!(ip_prefilter(&ip.read, keys(&["2001:db8::1", "10.0.0.1"])).is_some());
        for k in [
            "crawler.example.com",
            "010.0.0.1",
            "2001:db8::",
            "2001:DB8::1",
            "::ffff:10.0.0.2",
        ] {
            let two = [b"10.0.0.1".as_slice(), k.as_bytes()];
            assert!(ip_prefilter(&ip.read, two.into_iter()).is_none());
        }
        for other in ["subnet", "user", "ua"] {
            assert!(ip_prefilter(&cfg(other).read, keys(&["10.0.0.1"])).is_none());
        }
    }

    /// Every way a line can be keyed `2001:db8:4d2:7::1b` passes the filter, and a
    /// line of another address mostly does not.
    #[test]
    fn prefilter_keeps_every_form_of_an_ipv6_address() {
        let c = cfg("ip");
        let key = b"2001:db8:4d2:7::1b".as_slice();
        let f = ip_prefilter(&c.read, [key].into_iter()).unwrap();
        for remote in [
            "2001:db8:4d2:7::1b",
            "[2001:DB8:4D2:7::1B]",
            "2001:0db8:04d2:0007:0000:0000:0000:001b",
            "2001:db8:4d2:7:0:0:0:1b",
            "2001:db8:4d2:7::0.0.0.27",
        ] {
            let req = Request {
                remote: remote.as_bytes().into(),
                ..Default::default()
            };
            let mut k = Vec::new();
            c.read.keyer.key_into(&req, &mut k);
            assert_eq!(k, key, "{remote} is keyed as the client");
            let line =
                format!("{remote} - - [02/Mar/2026:06:00:00 +0000] \"GET / HTTP/1.1\" 200 1");
            assert!(f.is_match(line.as_bytes()), "{remote} passes");
        }
        let other = "2001:db8:4d2:7::1c - - [02/Mar/2026:06:00:00 +0000] \"GET /a HTTP/1.1\" 200 2";
        assert!(!f.is_match(other.as_bytes()));
    }

    /// Every way a line can be keyed `198.51.100.23` passes the filter.
    #[test]
    fn prefilter_keeps_every_form_of_the_address() {
        let c = cfg("ip");
        let f = ip_prefilter(&c.read, [b"198.51.100.23".as_slice()].into_iter()).unwrap();
        for remote in [
            "198.51.100.23",
            "[198.51.100.23]",
            "::ffff:198.51.100.23",
            "::FFFF:c633:6417",
            "0:0:0:0:0:ffff:c633:6417",
            "[::ffff:C633:6417]",
        ] {
            let req = Request {
                remote: remote.as_bytes().into(),
                ..Default::default()
            };
            let mut key = Vec::new();
            c.read.keyer.key_into(&req, &mut key);
            assert_eq!(key, b"198.51.100.23", "{remote}");
            let line =
                format!("{remote} - - [10/Oct/2026:10:00:00 +0000] \"GET / HTTP/1.1\" 200 1");
            assert!(f.is_match(line.as_bytes()), "{remote}");
        }
        let json = r#"{"remote_addr":"\u0031\u0039\u0038.51.100.23","status":200}"#;
        assert!(f.is_match(json.as_bytes()));
        assert!(!f
            .is_match(b"198.51.100.24 - - [10/Oct/2026:10:00:00 +0000] \"GET /1 HTTP/1.1\" 200 1"));
    }
}
