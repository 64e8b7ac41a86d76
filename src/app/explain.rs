//! `scrapemeter explain CLIENT PATHS...`: the forensic view of one client on the terminal.
//!
//! Two reads. The first is the scan itself (same settings, same deduplication), from
//! which the client's buckets give its activity, peak and billed windows, damages and
//! rate profile. The second reads the same inputs again and keeps, of this client's
//! requests only, counts of paths, user agents and statuses, and with `--evidence N`
//! the raw lines of the first N and last N requests of each billed window.
//!
//! Log content printed to the terminal is stripped of control characters.

use crate::app::cli::{resolve, InputArgs, PolicyArgs};
use crate::app::error::{Error, Exit};
use crate::config::Config;
use crate::engine::aggregate::Bucket;
use crate::engine::bill::{bill, ClientResult, Horizon};
use crate::engine::rate_profile::{rate_profile, RateProfile};
use crate::engine::text::display_key;
use crate::engine::time::{format_duration, format_rfc3339, Micros, MICROS_PER_SEC};
use crate::engine::tops::Tops;
use crate::input::client::{ClientKind, Keyed};
use crate::input::format::Request;
use crate::input::reader::{read_input, scan, FileReport, RequestSink};
use crate::input::second_read::{in_file_order, ip_prefilter};
use crate::report::html::gap_words;
use crate::report::json::{span_json, window_json};
use crate::report::summary::{clean, thousands};
use clap::Args;
use serde::Serialize;
use serde_json::json;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fmt::Write;
use std::path::PathBuf;

/// How much of an evidence line is kept.
const LINE_BYTES: usize = 4096;
/// Width of the activity bars.
const BAR: usize = 30;

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The client, as the reports write it: an IP, a subnet in CIDR form, a user, a user
    /// agent, a field value or an organisation (for ip and subnet keys, any address in it).
    #[arg(value_name = "CLIENT")]
    pub target: String,

    #[command(flatten)]
    pub input: InputArgs,

    #[command(flatten)]
    pub policy: PolicyArgs,

    /// Print the raw log lines (file:line) of the first N and the last N requests of
    /// each billed window (default: 0); `all` writes every line of every billed window
    /// to the file given by --out, and prints its SHA-256.
    #[arg(long, value_name = "N|all", default_value = "0", hide_default_value = true, value_parser = parse_evidence)]
    pub evidence: Evidence,

    /// With `--evidence all`: the file to write every line of the billed windows to
    /// (`WINDOW<TAB>FILE:LINE:TEXT`, after `#` lines naming the windows).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Print the same as JSON.
    #[arg(long)]
    pub json: bool,

    /// Activity per hour or per day (default: per hour when it spans at most 3 days).
    #[arg(long, value_name = "hour|day", value_parser = ["hour", "day"])]
    pub by: Option<String>,
}

/// How much evidence `explain` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evidence {
    /// The first and last N lines of each billed window.
    Edges(usize),
    /// Every line of every billed window, to a file.
    All,
}

fn parse_evidence(s: &str) -> Result<Evidence, String> {
    match s {
        "all" => Ok(Evidence::All),
        n => n
            .parse()
            .map(Evidence::Edges)
            .map_err(|_| format!("{n}: a number of lines, or all")),
    }
}

/// One raw log line of the client.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Line {
    #[serde(serialize_with = "crate::engine::time::time")]
    pub time: Micros,
    #[serde(skip)]
    pub file_index: usize,
    pub line: u64,
    pub file: String,
    pub text: String,
}

/// What the second read keeps of one window.
#[derive(Default)]
struct Edges {
    /// The N earliest (a max-heap, so the latest of them is dropped first).
    first: BinaryHeap<Line>,
    /// The N latest.
    last: BinaryHeap<Reverse<Line>>,
}

#[derive(Default)]
struct Seen {
    /// Top paths and user agents, as `scan` reports them.
    tops: Tops,
    statuses: BTreeMap<u16, u64>,
    edges: Vec<Edges>,
    /// With `--evidence all`: every line of the billed windows, as exported, in file
    /// and line order.
    export: Vec<u8>,
    exported: u64,
}

struct Watch<'a> {
    target: &'a [u8],
    windows: &'a [(Micros, Micros)],
    n: usize,
    file_index: usize,
    file: &'a str,
    filter: Option<&'a aho_corasick::AhoCorasick>,
    seen: Seen,
    export: bool,
}

impl RequestSink for Watch<'_> {
    #[inline]
    fn keep(&self, line: &[u8]) -> bool {
        self.filter.is_none_or(|f| f.is_match(line))
    }

    fn request(&mut self, line_no: u64, req: &Request<'_>, key: &[u8], line: &[u8]) -> u64 {
        if key != self.target {
            return 0;
        }
        let s = &mut self.seen;
        s.tops.add(req.target.as_deref(), req.user_agent.as_deref());
        *s.statuses.entry(req.status).or_default() += 1;
        if self.export {
            for (w, &(start, end)) in self.windows.iter().enumerate() {
                if req.time >= start && req.time < end {
                    let _ = std::io::Write::write_fmt(
                        &mut s.export,
                        format_args!("{}\t{}:{line_no}:", w + 1, self.file),
                    );
                    s.export.extend_from_slice(line);
                    s.export.push(b'\n');
                    s.exported += 1;
                }
            }
        }
        if self.n == 0 {
            return 0;
        }
        for (w, &(start, end)) in self.windows.iter().enumerate() {
            if req.time < start || req.time >= end {
                continue;
            }
            let edges = &mut s.edges[w];
            let order = (req.time, self.file_index, line_no);
            let make = || Line {
                time: req.time,
                file_index: self.file_index,
                line: line_no,
                file: self.file.to_string(),
                text: display_key(&line[..line.len().min(LINE_BYTES)]),
            };
            let earlier = edges
                .first
                .peek()
                .is_none_or(|l| order < (l.time, l.file_index, l.line));
            if edges.first.len() < self.n || earlier {
                edges.first.push(make());
                if edges.first.len() > self.n {
                    edges.first.pop();
                }
            }
            let later = edges
                .last
                .peek()
                .is_none_or(|Reverse(l)| order > (l.time, l.file_index, l.line));
            if edges.last.len() < self.n || later {
                edges.last.push(Reverse(make()));
                if edges.last.len() > self.n {
                    edges.last.pop();
                }
            }
        }
        0
    }
}

impl Seen {
    fn merge(mut self, other: Seen, n: usize) -> Seen {
        self.tops.merge(other.tops);
        self.export.extend_from_slice(&other.export);
        self.exported += other.exported;
        for (k, v) in other.statuses {
            *self.statuses.entry(k).or_default() += v;
        }
        if self.edges.is_empty() {
            self.edges = other.edges;
        } else {
            for (a, b) in self.edges.iter_mut().zip(other.edges) {
                for l in b.first {
                    a.first.push(l);
                    if a.first.len() > n {
                        a.first.pop();
                    }
                }
                for l in b.last {
                    a.last.push(l);
                    if a.last.len() > n {
                        a.last.pop();
                    }
                }
            }
        }
        self
    }
}

/// The key bytes of what the user typed: an address is keyed as a request from it
/// would be (canonical IP, its subnet, its organisation); `\xHH` stands for a byte.
pub fn target_key(cfg: &Config, client: &str) -> Vec<u8> {
    if matches!(cfg.read.client, ClientKind::Ip | ClientKind::Subnet { .. })
        && crate::input::client::parse_ip(client.as_bytes()).is_some()
    {
        let req = Request {
            remote: client.as_bytes().into(),
            ..Default::default()
        };
        let mut buf = Vec::new();
        if cfg.read.keyer.key_into(&req, &mut buf) == Keyed::Client {
            return buf;
        }
    }
    // As the CSVs write it: a free-text key that would start a formula has a `'` before it.
    let client = match client.strip_prefix('\'') {
        Some(rest)
            if cfg.read.client.is_free_text()
                && crate::engine::text::guard_formula(rest) == client =>
        {
            rest
        }
        _ => client,
    };
    let b = client.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() && b[i + 1] == b'x' {
            if let Ok(v) =
                u8::from_str_radix(std::str::from_utf8(&b[i + 2..i + 4]).unwrap_or(""), 16)
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// Activity per hour or per day: (bin start, posts, requests), empty bins included.
fn activity(buckets: &[Bucket], bin: Micros) -> Vec<(Micros, u64, u64)> {
    let mut out: Vec<(Micros, u64, u64)> = Vec::new();
    for b in buckets {
        let start = b.t.div_euclid(bin) * bin;
        match out.last_mut() {
            Some(last) if last.0 == start => {
                last.1 += b.posts;
                last.2 += b.requests;
            }
            _ => {
                if let Some(last) = out.last() {
                    let mut s = last.0 + bin;
                    while s < start && out.len() < 10_000 {
                        out.push((s, 0, 0));
                        s += bin;
                    }
                }
                out.push((start, b.posts, b.requests));
            }
        }
    }
    out
}

fn bar(v: u64, max: u64) -> String {
    if max == 0 || v == 0 {
        return String::new();
    }
    let eighths = ((v as u128 * (BAR as u128 * 8)).div_ceil(max as u128)) as usize;
    let mut s = "█".repeat(eighths / 8);
    const PART: [&str; 8] = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];
    s.push_str(PART[eighths % 8]);
    s
}

/// Everything `explain` shows.
struct View {
    result: ClientResult,
    /// What was read (for the scope line).
    files: Vec<FileReport>,
    profile: RateProfile,
    bin: Micros,
    activity: Vec<(Micros, u64, u64)>,
    seen: Seen,
    shown: Shown,
}

pub fn run(args: ExplainArgs) -> Result<Exit, Error> {
    let (n, export_to) =
        match (args.evidence, args.out.clone()) {
            (Evidence::Edges(n), None) => (n, None),
            (Evidence::All, Some(out)) => (0, Some(out)),
            (Evidence::All, None) => return Err(Error::Usage(
                "--evidence all writes every line of the billed windows to a file: give --out FILE"
                    .into(),
            )),
            (Evidence::Edges(_), Some(_)) => {
                return Err(Error::Usage(
                    "--out FILE goes with --evidence all (explain writes nothing else)".into(),
                ))
            }
        };
    let json_out = args.json;
    let args_evidence = args.evidence;
    let wanted = args.target.clone();
    let by = args.by.clone();
    let cfg = resolve(args.input, args.policy, PathBuf::new(), |_| {})?;
    let bin_choice = match by.as_deref() {
        None => None,
        Some("hour") => Some(3600 * MICROS_PER_SEC),
        Some("day") => Some(86_400 * MICROS_PER_SEC),
        Some(other) => {
            return Err(Error::Usage(format!("--by {other}: use hour or day")));
        }
    };
    let pool = crate::app::cli::thread_pool(cfg.threads)?;
    let target = target_key(&cfg, &wanted);
    let name = display_key(&target);
    let discovery = crate::app::cli::discover_inputs(&cfg)?;
    let mut output = pool.install(|| scan(&cfg.read, discovery));
    let aggregate = std::mem::take(&mut output.aggregate);
    let all = aggregate.into_sorted();
    let buckets = all
        .iter()
        .find(|(k, _)| **k == *target)
        .map(|(_, b)| b.clone())
        .unwrap_or_default();
    if buckets.iter().all(|b| b.requests == 0) {
        let close = close_keys(&target, all.iter().map(|(k, b)| (&k[..], b.len())));
        let scope = scope_words(&cfg, &output.files);
        if json_out {
            println!(
                "{}",
                json!({
                    "client": name,
                    "client_key": cfg.read.client.name(),
                    "requests": 0,
                    "settings": settings_json(&cfg, Shown {
                        evidence: args_evidence,
                        bin: bin_choice.unwrap_or(3600 * MICROS_PER_SEC),
                    }),
                    "scope": scope_json(&cfg, &output.files),
                    "close_keys": close,
                })
            );
        }
        return Err(Error::NotFound(format!(
            "no requests from client {} in the inputs (client key: {}; {}){}",
            clean(&name),
            cfg.read.client.name(),
            scope,
            if close.is_empty() {
                String::new()
            } else {
                format!("; close keys: {}", close.join(", "))
            }
        )));
    }
    // Billed by the same function as `scan`, over complete data.
    let result = bill(
        &cfg.policy,
        &Horizon::Complete,
        target.clone().into_boxed_slice(),
        cfg.read.identify(&target),
        buckets.clone(),
        None,
    )
    .result;
    let windows: Vec<(Micros, Micros)> = result.windows.iter().map(|w| (w.start, w.end)).collect();
    let (first, last) = (result.first_request, result.last_request);
    // Only files whose time range meets the client's.
    let files: Vec<(usize, &crate::input::discover::Input)> = output
        .inputs
        .iter()
        .enumerate()
        .filter(|(_, i)| matches!(i.source, crate::input::discover::Source::Path(_)))
        .filter(|(_, i)| {
            output
                .files
                .iter()
                .find(|f| f.path == i.name)
                .is_some_and(|f| {
                    f.first_request.is_some_and(|a| a <= last)
                        && f.last_request.is_some_and(|b| b >= first)
                })
        })
        .collect();
    // Lines that cannot be the client's go unparsed where that is sound, as in `scan`.
    let filter = ip_prefilter(&cfg.read, std::iter::once(target.as_slice()));
    let empty = || Seen {
        edges: windows.iter().map(|_| Edges::default()).collect(),
        ..Default::default()
    };
    let mut seen = empty();
    pool.install(|| {
        in_file_order(
            &files,
            |&(file_index, input)| {
                let mut w = Watch {
                    target: &target,
                    windows: &windows,
                    n,
                    file_index,
                    file: &input.name,
                    filter: filter.as_ref(),
                    seen: empty(),
                    export: export_to.is_some(),
                };
                read_input(&cfg.read, input, &mut w);
                w.seen
            },
            |part| seen = std::mem::take(&mut seen).merge(part, n),
        )
    });
    let export = match &export_to {
        Some(path) => Some(write_export(path, &name, &result, &mut seen)?),
        None => None,
    };
    let span = last - first;
    let bin = bin_choice.unwrap_or(if span <= 72 * 3600 * MICROS_PER_SEC {
        3600 * MICROS_PER_SEC
    } else {
        86_400 * MICROS_PER_SEC
    });
    let view = View {
        files: std::mem::take(&mut output.files),
        profile: rate_profile(&buckets),
        activity: activity(&buckets, bin),
        bin,
        result,
        seen,
        shown: Shown {
            evidence: args_evidence,
            bin,
        },
    };
    if json_out {
        let mut doc = to_json(&cfg, &view);
        if let Some(e) = &export {
            doc["export"] = json!(e);
        }
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        print!("{}", to_text(&cfg, &view, n));
        if let Some(e) = &export {
            println!(
                "\nexport: {} lines of the billed windows written to {} (SHA-256 {})",
                thousands(e.lines),
                clean(&e.path),
                e.sha256
            );
        }
    }
    Ok(Exit::Success)
}

/// What `--evidence all` wrote.
#[derive(Debug, Serialize)]
struct Export {
    path: String,
    lines: u64,
    sha256: String,
}

/// Writes the export (a `#` line per window, then every line of the windows in file
/// and line order) to a temporary file beside `path`, then renames it into place.
fn write_export(
    path: &std::path::Path,
    name: &str,
    result: &ClientResult,
    seen: &mut Seen,
) -> Result<Export, Error> {
    use sha2::{Digest, Sha256};
    use std::io::Write as _;
    let mut bytes = format!(
        "# scrapemeter explain: every request of client {} in its billed windows, as WINDOW<TAB>FILE:LINE:TEXT\n",
        clean(name)
    )
    .into_bytes();
    for w in &result.windows {
        let _ = writeln!(
            bytes,
            "# window {}: {} to {} (exclusive), {} posts, {} requests",
            w.index,
            format_rfc3339(w.start),
            format_rfc3339(w.end),
            w.posts,
            w.requests
        );
    }
    bytes.append(&mut seen.export);
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let written = tempfile::NamedTempFile::new_in(dir)
        .and_then(|mut f| {
            f.write_all(&bytes)?;
            f.as_file().sync_all()?;
            Ok(f)
        })
        .and_then(|f| f.persist(path).map_err(|e| e.error));
    if let Err(e) = written {
        return Err(Error::Output(format!(
            "cannot write {}: {e}",
            path.display()
        )));
    }
    Ok(Export {
        path: path.display().to_string(),
        lines: seen.exported,
        sha256,
    })
}

fn edges_sorted(e: &Edges) -> (Vec<Line>, Vec<Line>) {
    let first = e.first.clone().into_sorted_vec();
    let mut last: Vec<Line> = e.last.iter().map(|Reverse(l)| l.clone()).collect();
    last.sort();
    (first, last)
}

/// Up to three keys of the inputs most like `target`: the longest common prefix first
/// (an address in the same network), then the busiest.
fn close_keys<'a>(target: &[u8], keys: impl Iterator<Item = (&'a [u8], usize)>) -> Vec<String> {
    let mut scored: Vec<(usize, usize, &[u8])> = keys
        .map(|(k, n)| {
            let common = k.iter().zip(target).take_while(|(a, b)| a == b).count();
            (common, n, k)
        })
        .filter(|(common, _, _)| *common > 0)
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(b.2)));
    scored
        .into_iter()
        .take(3)
        .map(|(_, _, k)| clean(&display_key(k)))
        .collect()
}

/// What explain read and over which period, in words: `2 files, 1,234 lines (3
/// malformed); requests from … until …`.
fn scope_words(cfg: &Config, files: &[FileReport]) -> String {
    let lines: u64 = files.iter().map(|f| f.lines).sum();
    let malformed: u64 = files.iter().map(|f| f.malformed).sum();
    format!(
        "{} {}, {} lines ({} malformed) read; {}",
        thousands(files.len()),
        if files.len() == 1 { "file" } else { "files" },
        thousands(lines),
        thousands(malformed),
        match (cfg.read.since, cfg.read.until) {
            (None, None) => "every request of the inputs (no --since/--until)".to_string(),
            (since, until) => format!(
                "only requests from {} until {} (exclusive)",
                since.map_or("the beginning".into(), format_rfc3339),
                until.map_or("the end".into(), format_rfc3339)
            ),
        }
    )
}

/// The scope as JSON: period, inputs read, lines and malformed lines.
fn scope_json(cfg: &Config, files: &[FileReport]) -> serde_json::Value {
    json!({
        "since": cfg.read.since.map(format_rfc3339),
        "until": cfg.read.until.map(format_rfc3339),
        "files": files.iter().map(|f| &f.path).collect::<Vec<_>>(),
        "lines": files.iter().map(|f| f.lines).sum::<u64>(),
        "malformed": files.iter().map(|f| f.malformed).sum::<u64>(),
    })
}

/// Every setting in force, flags and settings file resolved: what was read and how,
/// how it was billed, and what this view shows.
fn settings_json(cfg: &Config, shown: Shown) -> serde_json::Value {
    let (v4, v6) = match cfg.read.client {
        ClientKind::Subnet {
            ipv4_prefix,
            ipv6_prefix,
        } => (Some(ipv4_prefix), Some(ipv6_prefix)),
        _ => (None, None),
    };
    json!({
        "inputs": cfg.inputs,
        "exclude": cfg.exclude_patterns,
        "allow_missing": cfg.allow_missing,
        "format": cfg.read.format.name(),
        "client": cfg.read.client.name(),
        "subnet_ipv4_prefix": v4,
        "subnet_ipv6_prefix": v6,
        "since": cfg.read.since.map(format_rfc3339),
        "until": cfg.read.until.map(format_rfc3339),
        "threshold": cfg.policy.threshold,
        "window": format_duration(cfg.policy.window),
        "window_seconds": cfg.policy.window / MICROS_PER_SEC,
        "mode": cfg.policy.mode,
        "rate_usd": cfg.policy.rate.to_string(),
        "per": cfg.policy.per,
        "rounding": cfg.policy.rounding,
        "rules": match &cfg.read.weigher {
            crate::input::post_weight::Weigher::Default => serde_json::Value::Null,
            crate::input::post_weight::Weigher::Rules(r) => json!({"path": r.path, "sha256": r.sha256, "rules": r.names()}),
        },
        "orgs": cfg.read.keyer.orgs.as_ref().map(|o| json!({"path": o.path, "sha256": o.sha256})),
        "threads": cfg.threads,
        "evidence": match shown.evidence {
            Evidence::Edges(n) => json!(n),
            Evidence::All => json!("all"),
        },
        "by": if shown.bin >= 86_400 * MICROS_PER_SEC { "day" } else { "hour" },
    })
}

/// What this view shows, as asked: the evidence and the activity's bins.
#[derive(Debug, Clone, Copy)]
struct Shown {
    evidence: Evidence,
    bin: Micros,
}

/// The settings in force in words, for the text view.
fn settings_words(cfg: &Config) -> String {
    format!(
        "format {}, client {}, more than {} posts in {} ({}), USD {} per {} posts ({}){}{}",
        cfg.read.format.name(),
        cfg.read.client.name(),
        thousands(cfg.policy.threshold),
        format_duration(cfg.policy.window),
        cfg.policy.mode,
        thousands(cfg.policy.rate),
        thousands(cfg.policy.per),
        serde_json::to_value(cfg.policy.rounding)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        match &cfg.read.weigher {
            crate::input::post_weight::Weigher::Default => String::new(),
            crate::input::post_weight::Weigher::Rules(r) =>
                format!(", rules {} (SHA-256 {})", clean(&r.path), r.sha256),
        },
        cfg.read
            .keyer
            .orgs
            .as_ref()
            .map(|o| format!(", orgs {} (SHA-256 {})", clean(&o.path), o.sha256))
            .unwrap_or_default()
    )
}

/// One evidence line in the text view, its fields in the order and under the names
/// the JSON view gives them (file, line, text, time): `FILE:LINE: TEXT (at TIME)`.
fn evidence_words(l: &Line) -> String {
    format!(
        "{}:{}: {} (at {})",
        clean(&l.file),
        l.line,
        clean(&l.text),
        format_rfc3339(l.time)
    )
}

fn to_json(cfg: &Config, v: &View) -> serde_json::Value {
    let c = &v.result;
    let tops = v.seen.tops.lists();
    json!({
        "client": c.name,
        "client_key": cfg.read.client.name(),
        "settings": settings_json(cfg, v.shown),
        "scope": scope_json(cfg, &v.files),
        "requests": c.total_requests,
        "posts": c.total_posts,
        "first_request": format_rfc3339(c.first_request),
        "last_request": format_rfc3339(c.last_request),
        "peak": c.peak.map(|p| span_json(&p, cfg.policy.window)),
        "windows": c.windows.iter().zip(&v.seen.edges).map(|(w, e)| {
            let (first, last) = edges_sorted(e);
            let mut v = window_json(w);
            // As report.json's evidence: the first and the last requests (here N of
            // each), each {file, line, text, time}.
            v["evidence"] = json!({"first": first, "last": last});
            v
        }).collect::<Vec<_>>(),
        "damages_usd": c.damages(),
        "activity": {
            "bin": format_duration(v.bin),
            "bins": v.activity.iter().map(|&(t, p, r)| json!({
                "start": format_rfc3339(t), "posts": p, "requests": r
            })).collect::<Vec<_>>(),
        },
        "rate_profile": v.profile,
        "statuses": v.seen.statuses.iter().map(|(s, n)| json!({"status": s, "requests": n})).collect::<Vec<_>>(),
        "top_paths": tops.paths,
        "top_user_agents": tops.user_agents,
        "tops_exact": tops.exact,
    })
}

fn to_text(cfg: &Config, v: &View, n: usize) -> String {
    let c = &v.result;
    let window = format_duration(cfg.policy.window);
    let mut o = String::new();
    let _ = writeln!(
        o,
        "client {} (key: {})",
        clean(&c.name),
        cfg.read.client.name()
    );
    let _ = writeln!(o, "  scope: {}", scope_words(cfg, &v.files));
    let _ = writeln!(o, "  settings: {}", settings_words(cfg));
    let _ = writeln!(
        o,
        "  {} requests, {} posts, {} to {}",
        thousands(c.total_requests),
        thousands(c.total_posts),
        format_rfc3339(c.first_request),
        format_rfc3339(c.last_request)
    );
    match c.peak {
        Some(p) => {
            let _ = writeln!(
                o,
                "  peak {window} window: {} posts ({} requests) from {}",
                thousands(p.posts),
                thousands(p.requests),
                format_rfc3339(p.start)
            );
        }
        None => {
            let _ = writeln!(o, "  no posts");
        }
    }
    if c.windows.is_empty() {
        let _ = writeln!(
            o,
            "  not over the threshold: no {window} window has more than {} posts",
            thousands(cfg.policy.threshold)
        );
    } else {
        let _ = writeln!(
            o,
            "\nbilled windows ({}, more than {} posts in {window}):",
            cfg.policy.mode,
            thousands(cfg.policy.threshold)
        );
        let _ = writeln!(
            o,
            "  {:>3}  {:<20}  {:>13}  {:>11}  {:>14}",
            "#", "start (UTC)", "posts", "requests", "damages_usd"
        );
        for w in &c.windows {
            let _ = writeln!(
                o,
                "  {:>3}  {:<20}  {:>13}  {:>11}  {:>14}",
                w.index,
                format_rfc3339(w.start),
                thousands(w.posts),
                thousands(w.requests),
                thousands(w.damages)
            );
        }
        let _ = writeln!(
            o,
            "  damages USD {} ({} posts billed)",
            thousands(c.damages()),
            thousands(c.billed_posts())
        );
    }
    let max_posts = v.activity.iter().map(|a| a.1).max().unwrap_or(0);
    let (scale_by_posts, max) = if max_posts > 0 {
        (true, max_posts)
    } else {
        (false, v.activity.iter().map(|a| a.2).max().unwrap_or(0))
    };
    let per = if v.bin >= 86_400 * MICROS_PER_SEC {
        "day"
    } else {
        "hour"
    };
    let _ = writeln!(o, "\nactivity per {per} (UTC; bar = posts):");
    for &(t, p, r) in &v.activity {
        let label = format_rfc3339(t);
        let label = if per == "day" {
            label[..10].to_string()
        } else {
            format!("{} {}", &label[..10], &label[11..16])
        };
        let _ = writeln!(
            o,
            "  {label:<16} {:<BAR$} {:>9} posts {:>9} req",
            bar(if scale_by_posts { p } else { r }, max),
            thousands(p),
            thousands(r)
        );
    }
    let p = &v.profile;
    let _ = writeln!(o, "\nrate profile:");
    let _ = writeln!(
        o,
        "  requests per active minute ({} minutes): p50 {}  p90 {}  p99 {}  max {}",
        thousands(p.active_minutes),
        thousands(p.requests_per_minute.p50),
        thousands(p.requests_per_minute.p90),
        thousands(p.requests_per_minute.p99),
        thousands(p.requests_per_minute.max)
    );
    let _ = writeln!(
        o,
        "  gap between requests: p50 {}  p90 {}  p99 {}",
        gap_words(p.gap_micros.p50),
        gap_words(p.gap_micros.p90),
        gap_words(p.gap_micros.p99)
    );
    let statuses: Vec<String> = v
        .seen
        .statuses
        .iter()
        .map(|(s, n)| format!("{s} × {}", thousands(*n)))
        .collect();
    let _ = writeln!(o, "\nstatuses: {}", statuses.join(", "));
    let _ = writeln!(o, "\ntop paths (digits as {{n}}):");
    let tops = v.seen.tops.lists();
    for p in &tops.paths {
        let _ = writeln!(o, "  {:>11}  {}", thousands(p.requests), clean(&p.path));
    }
    let _ = writeln!(o, "\ntop user agents:");
    for u in &tops.user_agents {
        let _ = writeln!(
            o,
            "  {:>11}  {}",
            thousands(u.requests),
            clean(&u.user_agent)
        );
    }
    if !tops.exact {
        let _ = writeln!(
            o,
            "  (more than {} distinct values: the rarest were dropped, counts may be low)",
            thousands(crate::engine::tops::MAX_DISTINCT as u64)
        );
    }
    if n > 0 {
        for (w, e) in c.windows.iter().zip(&v.seen.edges) {
            let (first, last) = edges_sorted(e);
            let _ = writeln!(
                o,
                "\nevidence, window {} ({} to {}; file:line: text (at time)):",
                w.index,
                format_rfc3339(w.start),
                format_rfc3339(w.end),
            );
            for (what, lines) in [("first", &first), ("last", &last)] {
                let _ = writeln!(o, "{what} {}", lines.len());
                for l in lines {
                    let _ = writeln!(o, "{}", evidence_words(l));
                }
            }
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleaning() {
        assert_eq!(clean("a\u{1b}[31mb\tc\r\n"), "a[31mb c");
        assert_eq!(bar(0, 10), "");
        assert_eq!(bar(10, 10).chars().count(), BAR);
    }
}
