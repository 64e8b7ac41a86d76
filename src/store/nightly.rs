//! Nightly state (`scan --state DIR`): what one run hands the next.
//!
//! A run over each night's new logs continues the billing of the runs before it, so
//! that the windows billed `final` over successive runs are those of one run over all
//! the logs. The state holds, per client, the buckets still inside the trailing
//! window before the watermark, the peak of the windows already complete, running
//! totals and a ledger of the windows billed final; the inputs already read (path,
//! size, SHA-256); the watermark; and the settings that shape the results.
//!
//! The **watermark** is the oldest of the newest request times of the inputs a run
//! read, minus `--lateness`, never moving back ([`bill::watermark`]): the slowest
//! server holds it back. Data before it is taken as complete: a window ending at or
//! before it is final, and a request before the previous run's watermark is **late**
//! (counted per input and per client, never merged; the run exits 4). A window
//! starting before `watermark − window` cannot
//! change any more, so only the buckets from there on are kept.
//!
//! On disk: one file, `scrapemeter.state`: a header line `scrapemeter-state <version>`,
//! a line `sha256 <hex>` with the digest of the body, then the body (compact JSON).
//! It is written last, after the reports, through the same all-or-nothing commit
//! (temporary file, fsync, rename, folder fsync). A damaged, truncated or foreign
//! file is refused whole, never half-read.
//!
//! A run holds an exclusive advisory lock on `scrapemeter.lock` in the folder from
//! before it reads the state until it has written the new one, so two runs on one
//! state cannot both bill the same windows; the system releases it however the run
//! ends.

use crate::config::Config;
use crate::engine::aggregate::{Aggregate, Bucket, Series};
use crate::engine::bill::{
    self, Analysis, BilledWindow, Carry, ClientResult, Horizon, Settled, ToBill, WindowStatus,
    ACTIVITY_STEP,
};
use crate::engine::damages::Cents;
use crate::engine::evidence::{Evidence, WindowEvidence};
use crate::engine::late::{Late, LateByClient};
use crate::engine::time::{format_duration, format_rfc3339, Micros};
use crate::engine::window::Span;
use crate::input::discover::{Discovery, Input, ReadBefore, Skipped, Source};
use crate::input::post_weight::Weigher;
use crate::input::reader::{FileReport, FileStatus};
use crate::input::second_read::EarlierInput;
use crate::store::fingerprint::Fingerprint;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// The state file's name inside the state folder.
pub const FILE_NAME: &str = "scrapemeter.state";
/// The lock file's name inside the state folder.
pub const LOCK_NAME: &str = "scrapemeter.lock";
const MAGIC: &str = "scrapemeter-state";
/// Bumped whenever the body changes shape; a newer file is refused. Version 1 (settings
/// as a map of strings) is still read, and written back as version 2 (settings as a
/// typed [`Fingerprint`]).
/// Version 3 added the late requests (per client and per input) and each input's time
/// range; a version-2 file reads as having none.
pub const FORMAT_VERSION: u32 = 3;
/// The oldest version this build reads.
const OLDEST_VERSION: u32 = 1;

/// Everything carried from one run to the next.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Body {
    /// The settings that change the results; a run with others is refused.
    pub settings: Settings,
    /// Runs that wrote this state.
    pub runs: u64,
    /// Newest request time seen over all runs.
    pub newest: Option<Micros>,
    /// The slowest input's newest request minus lateness (never moves back): see
    /// [`bill::watermark`].
    pub watermark: Option<Micros>,
    /// Inputs already read, in the order read.
    pub inputs: Vec<InputRecord>,
    /// Clients with buckets still inside the trailing window or windows billed final,
    /// sorted by key.
    pub clients: Vec<ClientState>,
    /// Late requests (never billed) over all runs, per client, sorted by key.
    #[serde(default)]
    pub late: Vec<LateRecord>,
}

/// A client's late requests over all runs, and the last run that saw one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LateRecord {
    pub key: Key,
    #[serde(flatten)]
    pub late: Late,
    pub last_run: u64,
}

/// The settings a state was made with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Settings {
    /// Version 2 on: the typed fingerprint.
    Typed(Box<Fingerprint>),
    /// Version 1: settings by name, as text (read only, compared with
    /// [`legacy_settings`]).
    Legacy(BTreeMap<String, String>),
}

impl Default for Settings {
    fn default() -> Self {
        Settings::Legacy(BTreeMap::new())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputRecord {
    pub path: String,
    pub size: u64,
    pub sha256: String,
    /// The run that read it (1, 2, …).
    pub run: u64,
    /// Its first and last request (late ones included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_request: Option<Micros>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_request: Option<Micros>,
    /// Its late requests (never billed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late: Option<Late>,
    /// The watermark before the run that read it: its requests before that were late.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late_before: Option<Micros>,
}

/// A client key: text when it is UTF-8, else its bytes in hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Key {
    Text(String),
    Bytes { hex: String },
}

impl Key {
    /// Through the one key codec ([`crate::store::key`]): the text, or the exact bytes
    /// when the text is not the key.
    fn of(key: &[u8]) -> Key {
        match crate::store::key::encode(key) {
            (text, None) => Key::Text(text),
            (_, Some(raw)) => Key::Bytes {
                hex: hex::encode(raw),
            },
        }
    }
    fn bytes(&self) -> Result<Box<[u8]>, String> {
        match self {
            Key::Text(s) => Ok(crate::store::key::decode(s, None).into()),
            Key::Bytes { hex } => hex::decode(hex)
                .map(Into::into)
                .map_err(|e| format!("bad client key: {e}")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientState {
    pub key: Key,
    /// `[t, posts, requests]` from `watermark − window` on, sorted.
    pub buckets: Vec<(Micros, u64, u64)>,
    /// `[start, posts, requests]`: the peak among the windows already complete.
    pub peak: Option<(Micros, u64, u64)>,
    pub total_posts: u64,
    pub total_requests: u64,
    pub first_request: Micros,
    pub last_request: Micros,
    /// Windows billed final, in order; numbering continues from here.
    pub ledger: Vec<LedgerWindow>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerWindow {
    pub window: usize,
    pub start: Micros,
    pub end: Micros,
    pub posts: u64,
    pub requests: u64,
    pub damages_cents: u128,
    pub last_request: Micros,
    /// The run that billed it final.
    pub run: u64,
    pub first_line: Option<LineRecord>,
    pub last_line: Option<LineRecord>,
    /// `[minute from the start, posts]` for each minute of the window with posts, for
    /// its chart once its buckets have left the state (see
    /// `engine::bill::Settled::activity`).
    #[serde(default)]
    pub activity: Vec<(i64, u64)>,
}

/// An evidence line, kept with its window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineRecord {
    pub file: String,
    pub line: u64,
    pub time: Micros,
    pub text: String,
}

impl LineRecord {
    fn of(e: &Evidence) -> LineRecord {
        LineRecord {
            file: e.file.clone(),
            line: e.line,
            time: e.time,
            text: e.text.clone(),
        }
    }
    fn evidence(&self) -> Evidence {
        Evidence {
            file: self.file.clone(),
            line: self.line,
            time: self.time,
            text: self.text.clone(),
        }
    }
}

// ------------------------------------------------------------------ the lock

/// An exclusive hold on a state folder for the length of a run: released when
/// dropped, or by the system when the process ends, however it ends.
#[derive(Debug)]
pub struct Lock {
    _file: std::fs::File,
}

/// Why the nightly state cannot be used or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Another run holds the state folder (exit 2).
    #[error("{0}; nothing was read or written")]
    Busy(String),
    /// The state folder or its lock file cannot be created or written (a read-only
    /// folder): the new state could not be written either (exit 3).
    #[error("{0}; nothing was read or written")]
    Unwritable(String),
    /// The state file exists but cannot be read (exit 2).
    #[error("cannot read state {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Not an intact state file of this version: the reason (exit 2).
    #[error("{0}")]
    Damaged(String),
    /// A damaged state, or one made with other settings, refused whole; the message
    /// says what to do (exit 2).
    #[error("{0}")]
    Refused(String),
}

impl StateError {
    /// Whether this is a failure to write (exit 3) rather than a state refused (exit 2).
    pub fn is_output(&self) -> bool {
        matches!(self, StateError::Unwritable(_))
    }
}

/// Takes the lock of the state folder `dir` (created if missing) without waiting,
/// and writes into the lock file who holds it (`pid …, started …`), for a run that
/// finds it taken to say.
pub fn lock(dir: &Path, started_at: &str) -> Result<Lock, StateError> {
    use std::io::{Read, Seek, Write};
    std::fs::create_dir_all(dir).map_err(|e| {
        StateError::Unwritable(format!("cannot create state folder {}: {e}", dir.display()))
    })?;
    let path = dir.join(LOCK_NAME);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| {
            StateError::Unwritable(format!(
                "cannot write in state folder {} (lock file {}: {e})",
                dir.display(),
                path.display()
            ))
        })?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            let holder = if holder.is_empty() {
                String::new()
            } else {
                format!(" ({holder})")
            };
            return Err(StateError::Busy(format!(
                "state folder {} is in use by another run{holder}; two runs on one state \
                 would bill the same windows twice: wait for it to end, or use another \
                 --state folder",
                dir.display()
            )));
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(StateError::Unwritable(format!(
                "cannot lock {}: {e}",
                path.display()
            )))
        }
    }
    // Best effort: who holds it is only for the message of a run that finds it taken,
    // and a full disk must not stop the run here (it fails, cleanly, when it writes).
    let _ = file
        .set_len(0)
        .and_then(|_| file.rewind())
        .and_then(|_| writeln!(file, "pid {}, started {started_at}", std::process::id()));
    Ok(Lock { _file: file })
}

// ------------------------------------------------------------------ the file

/// The state file's bytes: header, digest line, body.
pub fn encode(body: &Body) -> Vec<u8> {
    let json = serde_json::to_vec(body).expect("the state serialises");
    let mut out = format!(
        "{MAGIC} {FORMAT_VERSION}\nsha256 {}\n",
        hex::encode(Sha256::digest(&json))
    )
    .into_bytes();
    out.extend_from_slice(&json);
    out
}

/// Reads a state file's bytes; refuses anything but an intact file of this version.
pub fn decode(bytes: &[u8]) -> Result<Body, StateError> {
    decode_body(bytes).map_err(StateError::Damaged)
}

fn decode_body(bytes: &[u8]) -> Result<Body, String> {
    let (first, rest) = split_line(bytes).ok_or("not a scrapemeter state file")?;
    let version = first
        .strip_prefix(MAGIC.as_bytes())
        .and_then(|v| v.strip_prefix(b" "))
        .ok_or("not a scrapemeter state file")?;
    let version: u32 = std::str::from_utf8(version)
        .ok()
        .and_then(|v| v.parse().ok())
        .ok_or("not a scrapemeter state file (bad version)")?;
    if !(OLDEST_VERSION..=FORMAT_VERSION).contains(&version) {
        return Err(format!(
            "state format {version}, but this build reads formats {OLDEST_VERSION} to {FORMAT_VERSION}"
        ));
    }
    let (digest, body) = split_line(rest).ok_or("truncated (no checksum line)")?;
    let digest = digest
        .strip_prefix(b"sha256 ")
        .ok_or("damaged (no checksum line)")?;
    if digest != hex::encode(Sha256::digest(body)).as_bytes() {
        return Err("damaged or truncated (checksum mismatch)".into());
    }
    serde_json::from_slice(body).map_err(|e| format!("damaged (unreadable body: {e})"))
}

fn split_line(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = b.iter().position(|&c| c == b'\n')?;
    Some((&b[..i], &b[i + 1..]))
}

/// The settings that change the results.
pub fn settings(cfg: &Config) -> Settings {
    Settings::Typed(Box::new(Fingerprint::of(&cfg.read, &cfg.policy)))
}

/// The settings of `cfg` as version 1 wrote them, to compare a version-1 state with;
/// never written.
pub fn legacy_settings(cfg: &Config) -> BTreeMap<String, String> {
    let mut s = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        s.insert(k.to_string(), v);
    };
    put("format", cfg.read.format.name());
    put("json_fields", format!("{:?}", cfg.read.json));
    put("client", cfg.read.client.name().to_string());
    put("client_detail", format!("{:?}", cfg.read.client));
    put("threshold", cfg.policy.threshold.to_string());
    put("window", format_duration(cfg.policy.window));
    put("rate", cfg.policy.rate.to_string());
    put("per", cfg.policy.per.to_string());
    put(
        "rounding",
        serde_json::to_string(&cfg.policy.rounding).unwrap_or_default(),
    );
    put("mode", cfg.policy.mode.to_string());
    put(
        "rules",
        match &cfg.read.weigher {
            Weigher::Default => "default".into(),
            Weigher::Rules(r) => format!("sha256 {}", r.sha256),
        },
    );
    put(
        "orgs",
        cfg.read
            .keyer
            .orgs
            .as_ref()
            .map_or("none".into(), |o| format!("sha256 {}", o.sha256)),
    );
    put(
        "since",
        cfg.read.since.map_or("none".into(), format_rfc3339),
    );
    put(
        "until",
        cfg.read.until.map_or("none".into(), format_rfc3339),
    );
    s
}

/// Loads the state of `dir` for a run with `cfg`. `Ok(None)`: no state yet (or
/// `--state-reset`). Refuses a damaged or foreign file and other settings.
pub fn load(dir: &Path, cfg: &Config) -> Result<Option<Body>, StateError> {
    let path = dir.join(FILE_NAME);
    if cfg.state_reset {
        return Ok(None);
    }
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(StateError::Read { path, source }),
    };
    let body = decode(&bytes).map_err(|e| {
        StateError::Refused(format!(
            "state {} refused: {e}; nothing was read or written (start afresh with --state-reset)",
            path.display()
        ))
    })?;
    let (then, now) = match &body.settings {
        Settings::Typed(f) => (
            f.by_name(),
            Fingerprint::of(&cfg.read, &cfg.policy).by_name(),
        ),
        Settings::Legacy(m) => (m.clone(), legacy_settings(cfg)),
    };
    if then != now {
        let diff: Vec<String> = now
            .keys()
            .chain(then.keys())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .filter(|k| then.get(*k) != now.get(*k))
            .map(|k| {
                format!(
                    "{k}: {} in the state, {} now",
                    then.get(k).map_or("-", String::as_str),
                    now.get(k).map_or("-", String::as_str)
                )
            })
            .collect();
        return Err(StateError::Refused(format!(
            "state {} was made with other settings ({}); use the same settings, another \
             --state folder, or --state-reset to start afresh",
            path.display(),
            diff.join("; ")
        )));
    }
    Ok(Some(body))
}

// ------------------------------------------------------------------ before the scan

fn read_before_reason(r: &InputRecord) -> String {
    format!(
        "already read by an earlier run (run {}, SHA-256 {})",
        r.run, r.sha256
    )
}

/// Moves inputs read by an earlier run (same SHA-256) from `discovery` to its skipped
/// list. Only files whose size matches an input of the state are hashed. Standard
/// input is checked by the scan, once read, against `discovery.read_before`.
pub fn skip_processed(prev: &Body, discovery: &mut Discovery) {
    let mut by_size: HashMap<u64, Vec<&InputRecord>> = HashMap::new();
    for r in &prev.inputs {
        by_size.entry(r.size).or_default().push(r);
        discovery
            .read_before
            .entry(r.sha256.clone())
            .or_insert_with(|| ReadBefore {
                reason: read_before_reason(r),
                same_as: r.path.clone(),
            });
    }
    let inputs = std::mem::take(&mut discovery.inputs);
    for input in inputs {
        let seen = match &input.source {
            Source::Path(p) => std::fs::metadata(p)
                .ok()
                .filter(|m| m.is_file())
                .and_then(|m| by_size.get(&m.len()))
                .and_then(|candidates| {
                    let digest = hex::encode(crate::input::decompress::sha256_of(p).ok()?);
                    candidates.iter().find(|r| r.sha256 == digest).copied()
                }),
            Source::Stdin => None,
        };
        match seen {
            Some(r) => discovery.skipped.push(Skipped {
                path: input.name.clone(),
                reason: read_before_reason(r),
                same_as: Some(r.path.clone()),
            }),
            None => discovery.inputs.push(input),
        }
    }
}

// ------------------------------------------------------------------ after the scan

/// What a run with state adds to report.json (`state`).
#[derive(Debug, Clone, Serialize)]
pub struct Nightly {
    pub dir: String,
    /// 1 for the first run of a state.
    pub run: u64,
    pub reset: bool,
    pub lateness: String,
    #[serde(serialize_with = "crate::engine::time::opt_time")]
    pub previous_watermark: Option<Micros>,
    #[serde(serialize_with = "crate::engine::time::opt_time")]
    pub watermark: Option<Micros>,
    #[serde(serialize_with = "crate::engine::time::opt_time")]
    pub newest_request: Option<Micros>,
    /// Requests before the previous watermark: counted, not merged (this run).
    pub late_requests: u64,
    /// Their posts (never billed).
    pub late_posts: u64,
    /// This run's late requests per client (by posts, most first) and per input.
    pub late_clients: Vec<LateClient>,
    pub late_inputs: Vec<LateInput>,
    /// How far before the previous watermark the oldest late request was, and the
    /// `--lateness` that would have covered it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub late_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lateness_needed: Option<String>,
    /// Late requests and posts over every run of this state, this one included.
    pub late_requests_all_runs: u64,
    pub late_posts_all_runs: u64,
    /// Inputs whose content changed since an earlier run read them under that name.
    pub changed_inputs: Vec<ChangedInput>,
    /// The inputs earlier runs of this state read: with this run's, every input
    /// behind a figure of the report.
    pub earlier_inputs: Vec<InputRecord>,
    /// The first and last request of every input read by any run of this state.
    #[serde(serialize_with = "crate::engine::time::opt_time")]
    pub covered_from: Option<Micros>,
    #[serde(serialize_with = "crate::engine::time::opt_time")]
    pub covered_to: Option<Micros>,
    pub final_windows_new: usize,
    pub provisional_windows: usize,
    /// The head of the state's hash-chained ledger after this run (see
    /// `store::ledger`): each run's entry holds the previous entry's hash.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ledger_head: Option<crate::store::ledger::Head>,
    /// Size of the state file written.
    pub state_bytes: usize,
    pub state_clients: usize,
    pub state_buckets: usize,
}

/// A client's late requests in this run.
#[derive(Debug, Clone, Serialize)]
pub struct LateClient {
    pub client: String,
    pub requests: u64,
    pub posts: u64,
    #[serde(serialize_with = "crate::engine::time::time")]
    pub earliest: Micros,
    #[serde(serialize_with = "crate::engine::time::time")]
    pub latest: Micros,
}

/// An input's late requests in this run.
#[derive(Debug, Clone, Serialize)]
pub struct LateInput {
    pub path: String,
    pub requests: u64,
    pub posts: u64,
    #[serde(serialize_with = "crate::engine::time::time")]
    pub earliest: Micros,
    #[serde(serialize_with = "crate::engine::time::time")]
    pub latest: Micros,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChangedInput {
    pub path: String,
    pub sha256: String,
    pub earlier_sha256: String,
    pub earlier_run: u64,
}

/// A run's view of the state: the previous body and what this run computes.
pub struct NightlyRun {
    pub prev: Body,
    pub next: Body,
    pub nightly: Nightly,
}

impl ClientState {
    /// The carried state as the engine bills it.
    fn carry(&self) -> Carry {
        Carry {
            buckets: self
                .buckets
                .iter()
                .map(|&(t, posts, requests)| Bucket { t, posts, requests })
                .collect(),
            peak: self.peak.map(|(start, posts, requests)| Span {
                start,
                posts,
                requests,
            }),
            total_posts: self.total_posts,
            total_requests: self.total_requests,
            first_request: self.first_request,
            last_request: self.last_request,
            ledger: self
                .ledger
                .iter()
                .map(|w| Settled {
                    window: BilledWindow {
                        index: w.window,
                        start: w.start,
                        end: w.end,
                        posts: w.posts,
                        requests: w.requests,
                        damages: Cents(w.damages_cents),
                        last_request: w.last_request,
                        evidence: WindowEvidence {
                            first: w.first_line.as_ref().map(LineRecord::evidence),
                            last: w.last_line.as_ref().map(LineRecord::evidence),
                            unavailable: None,
                        },
                        status: WindowStatus::Final,
                        new_in_this_run: false,
                    },
                    run: w.run,
                    activity: w
                        .activity
                        .iter()
                        .map(|&(minute, posts)| Bucket {
                            t: w.start.saturating_add(minute.saturating_mul(ACTIVITY_STEP)),
                            posts,
                            requests: 0,
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    /// What the engine carries on, as saved.
    fn of(key: &[u8], c: Carry) -> ClientState {
        ClientState {
            key: Key::of(key),
            buckets: c
                .buckets
                .iter()
                .map(|b| (b.t, b.posts, b.requests))
                .collect(),
            peak: c.peak.map(|p| (p.start, p.posts, p.requests)),
            total_posts: c.total_posts,
            total_requests: c.total_requests,
            first_request: c.first_request,
            last_request: c.last_request,
            ledger: c
                .ledger
                .into_iter()
                .map(|s| LedgerWindow {
                    window: s.window.index,
                    start: s.window.start,
                    end: s.window.end,
                    posts: s.window.posts,
                    requests: s.window.requests,
                    damages_cents: s.window.damages.0,
                    last_request: s.window.last_request,
                    run: s.run,
                    first_line: s.window.evidence.first.as_ref().map(LineRecord::of),
                    last_line: s.window.evidence.last.as_ref().map(LineRecord::of),
                    activity: s
                        .activity
                        .iter()
                        .map(|b| ((b.t - s.window.start) / ACTIVITY_STEP, b.posts))
                        .collect(),
                })
                .collect(),
        }
    }
}

/// Continues the billing of `prev` with this run's `new` aggregate (no late request
/// in it), through the engine's one billing function; `newest_per_input` holds the
/// newest request of each input this run read (what the watermark waits for). Returns the analysis (windows of earlier runs first, then this run's,
/// each `final` or `provisional`) and the body for the next run (its ledger evidence
/// is filled by [`NightlyRun::finish`]).
pub fn continue_from(
    cfg: &Config,
    prev: &Body,
    new: Aggregate,
    newest_per_input: &[Micros],
) -> (Analysis, Body) {
    let newest = prev
        .newest
        .into_iter()
        .chain(newest_per_input.iter().copied())
        .max();
    let watermark = bill::watermark(
        prev.watermark,
        newest_per_input.iter().copied(),
        cfg.lateness,
    );
    let horizon = Horizon::Watermark {
        previous: prev.watermark,
        watermark,
        run: prev.runs + 1,
    };
    // Every client of the state or of this run, by key; a carried state is turned
    // into the engine's form client by client, in parallel, as it is billed.
    let mut all: BTreeMap<Box<[u8]>, (Option<&ClientState>, Series)> = BTreeMap::new();
    for c in &prev.clients {
        // A key that does not decode cannot be: `decode` checked the digest.
        if let Ok(k) = c.key.bytes() {
            all.entry(k).or_default().0 = Some(c);
        }
    }
    for (k, series) in new.into_sorted_series() {
        all.entry(k).or_default().1 = series;
    }
    let clients: Vec<_> = all.into_iter().collect();
    let clients = clients.into_par_iter().map(|(key, (state, new))| ToBill {
        key,
        carry: state.map(ClientState::carry),
        new,
    });
    let (analysis, carry) =
        bill::bill_all(&cfg.policy, &horizon, clients, &|k| cfg.read.identify(k));
    let next = Body {
        settings: settings(cfg),
        runs: prev.runs + 1,
        newest,
        watermark,
        inputs: prev.inputs.clone(),
        clients: carry
            .into_iter()
            .map(|(k, c)| ClientState::of(&k, c))
            .collect(),
        late: prev.late.clone(),
    };
    (analysis, next)
}

fn round_up_to_minute(us: Micros) -> Micros {
    const MINUTE: Micros = 60 * crate::engine::time::MICROS_PER_SEC;
    us.saturating_add((MINUTE - us.rem_euclid(MINUTE)) % MINUTE)
}

impl NightlyRun {
    /// Loads the state for `cfg` (which names a state folder) and prepares the scan:
    /// inputs already read are skipped, and `cfg.read.late_before` is set.
    pub fn start(cfg: &mut Config, discovery: &mut Discovery) -> Result<NightlyRun, StateError> {
        let dir = cfg.state.clone().expect("a state folder");
        let prev = load(&dir, cfg)?.unwrap_or_else(|| Body {
            settings: settings(cfg),
            ..Default::default()
        });
        skip_processed(&prev, discovery);
        cfg.read.late_before = prev.watermark;
        Ok(NightlyRun {
            nightly: Nightly {
                dir: dir.display().to_string(),
                run: prev.runs + 1,
                reset: cfg.state_reset,
                lateness: format_duration(cfg.lateness),
                previous_watermark: prev.watermark,
                watermark: None,
                newest_request: None,
                late_requests: 0,
                late_posts: 0,
                late_clients: Vec::new(),
                late_inputs: Vec::new(),
                late_by: None,
                lateness_needed: None,
                late_requests_all_runs: 0,
                late_posts_all_runs: 0,
                changed_inputs: Vec::new(),
                earlier_inputs: prev.inputs.clone(),
                covered_from: None,
                covered_to: None,
                final_windows_new: 0,
                provisional_windows: 0,
                ledger_head: None,
                state_bytes: 0,
                state_clients: 0,
                state_buckets: 0,
            },
            next: Body::default(),
            prev,
        })
    }

    /// Continues the billing with this run's files, aggregate and late requests.
    pub fn analyze(
        &mut self,
        cfg: &Config,
        files: &mut [FileReport],
        aggregate: Aggregate,
        late: LateByClient,
    ) -> Analysis {
        let mut newest = Vec::new();
        for f in files.iter_mut() {
            if f.status == FileStatus::Read {
                f.late.get_or_insert(0);
            }
            newest.extend(f.newest_request());
        }
        let (analysis, mut next) = continue_from(cfg, &self.prev, aggregate, &newest);
        self.count_late(cfg, files, late, &mut next);
        for f in files.iter() {
            let (Some(sha), Some(size)) = (&f.sha256, f.size) else {
                continue;
            };
            // Standard input (`-`) is recorded by its content like a file, so that the
            // same content given again, on standard input or as a file, is skipped;
            // its name says nothing of its content, so it never "changed".
            let earlier_under_name = (f.path != "-")
                .then(|| {
                    self.prev
                        .inputs
                        .iter()
                        .rev()
                        .find(|r| r.path == f.path && &r.sha256 != sha)
                })
                .flatten();
            if let Some(r) = earlier_under_name {
                if !self.prev.inputs.iter().any(|r| &r.sha256 == sha) {
                    self.nightly.changed_inputs.push(ChangedInput {
                        path: f.path.clone(),
                        sha256: sha.clone(),
                        earlier_sha256: r.sha256.clone(),
                        earlier_run: r.run,
                    });
                }
            }
            let late = f.late_counts();
            next.inputs.push(InputRecord {
                path: f.path.clone(),
                size,
                sha256: sha.clone(),
                run: next.runs,
                first_request: f.first_request.into_iter().chain(f.late_earliest).min(),
                last_request: f.newest_request(),
                late: (late.requests > 0).then_some(late),
                late_before: self.prev.watermark,
            });
        }
        self.nightly.watermark = next.watermark;
        self.nightly.newest_request = next.newest;
        self.nightly.covered_from = next.inputs.iter().filter_map(|r| r.first_request).min();
        self.nightly.covered_to = next.inputs.iter().filter_map(|r| r.last_request).max();
        for c in &analysis.clients {
            for w in c.windows.iter().filter(|w| w.new_in_this_run) {
                match w.status {
                    WindowStatus::Final => self.nightly.final_windows_new += 1,
                    WindowStatus::Provisional => self.nightly.provisional_windows += 1,
                }
            }
        }
        self.next = next;
        analysis
    }

    /// Counts this run's late requests per client and per input, into the summary and
    /// into the state's history.
    fn count_late(
        &mut self,
        cfg: &Config,
        files: &[FileReport],
        late: LateByClient,
        next: &mut Body,
    ) {
        let n = &mut self.nightly;
        // Every late request, with a client key or not, is in its input's counts.
        let mut all = Late::default();
        for f in files {
            let l = f.late_counts();
            if l.requests == 0 {
                continue;
            }
            all.merge(&l);
            n.late_requests += l.requests;
            n.late_posts += l.posts;
            n.late_inputs.push(LateInput {
                path: f.path.clone(),
                requests: l.requests,
                posts: l.posts,
                earliest: l.earliest,
                latest: l.latest,
            });
        }
        let mut history: BTreeMap<Box<[u8]>, LateRecord> = BTreeMap::new();
        for r in std::mem::take(&mut next.late) {
            if let Ok(k) = r.key.bytes() {
                history.insert(k, r);
            }
        }
        for (key, l) in late {
            n.late_clients.push(LateClient {
                client: cfg.read.identify(&key).name,
                requests: l.requests,
                posts: l.posts,
                earliest: l.earliest,
                latest: l.latest,
            });
            let r = history.entry(key.clone()).or_insert_with(|| LateRecord {
                key: Key::of(&key),
                late: Late::default(),
                last_run: next.runs,
            });
            r.late.merge(&l);
            r.last_run = next.runs;
        }
        n.late_clients.sort_by(|a, b| {
            b.posts
                .cmp(&a.posts)
                .then(b.requests.cmp(&a.requests))
                .then(a.client.cmp(&b.client))
        });
        next.late = history.into_values().collect();
        n.late_requests_all_runs = next.late.iter().map(|r| r.late.requests).sum();
        n.late_posts_all_runs = next.late.iter().map(|r| r.late.posts).sum();
        if let (Some(w), true) = (self.prev.watermark, all.requests > 0) {
            // Not late needs a watermark at or before the oldest request: `behind`
            // more lateness (rounded up to the minute, as people write it).
            let behind = all.behind(w);
            n.late_by = Some(format_duration(behind));
            n.lateness_needed = Some(format_duration(round_up_to_minute(
                cfg.lateness.saturating_add(behind),
            )));
        }
    }

    /// The inputs earlier runs read, for the second read to look for evidence in: a
    /// window billed in this run may start at a request read on an earlier night.
    pub fn earlier_inputs(&self) -> Vec<EarlierInput> {
        self.prev
            .inputs
            .iter()
            .filter(|r| r.path != "-")
            .filter_map(|r| {
                Some(EarlierInput {
                    input: Input {
                        name: r.path.clone(),
                        source: Source::Path(PathBuf::from(&r.path)),
                    },
                    sha256: r.sha256.clone(),
                    first_request: r.first_request?,
                    last_request: r.last_request?,
                    late_before: r.late_before,
                })
            })
            .collect()
    }

    /// Copies the evidence found for the windows billed final in this run into the
    /// ledger, and returns the state file's folder and bytes. Records their size in
    /// the analysis's `nightly` summary.
    pub fn finish(&mut self, analysis: &Analysis) -> (PathBuf, Vec<u8>) {
        let mut by_key: HashMap<&[u8], &ClientResult> = HashMap::new();
        for c in &analysis.clients {
            by_key.insert(&c.key, c);
        }
        for s in &mut self.next.clients {
            let Ok(k) = s.key.bytes() else { continue };
            let Some(c) = by_key.get(&*k) else { continue };
            for l in s.ledger.iter_mut().filter(|l| l.run == self.next.runs) {
                if let Some(w) = c.windows.iter().find(|w| w.index == l.window) {
                    l.first_line = w.evidence.first.as_ref().map(LineRecord::of);
                    l.last_line = w.evidence.last.as_ref().map(LineRecord::of);
                }
            }
        }
        let bytes = encode(&self.next);
        self.nightly.state_bytes = bytes.len();
        self.nightly.state_clients = self.next.clients.len();
        self.nightly.state_buckets = self.next.clients.iter().map(|c| c.buckets.len()).sum();
        (PathBuf::from(&self.nightly.dir), bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_file_round_trips_and_refuses_damage() {
        let body = Body {
            runs: 3,
            watermark: Some(5),
            clients: vec![ClientState {
                key: Key::of(b"\xff-not-utf8"),
                buckets: vec![(1, 2, 3)],
                peak: Some((1, 2, 3)),
                total_posts: 2,
                total_requests: 3,
                first_request: 1,
                last_request: 1,
                ledger: Vec::new(),
            }],
            ..Default::default()
        };
        let bytes = encode(&body);
        assert_eq!(decode(&bytes).unwrap(), body);
        assert_eq!(
            decode(&bytes).unwrap().clients[0].key.bytes().unwrap()[..],
            b"\xff-not-utf8"[..]
        );
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "truncated at {cut}");
        }
        let mut flipped = bytes.clone();
        let last = flipped.len() - 2;
        flipped[last] ^= 1;
        assert!(decode(&flipped)
            .unwrap_err()
            .to_string()
            .contains("checksum"));
        let other = String::from_utf8(bytes.clone()).unwrap().replacen(
            "scrapemeter-state 3",
            "scrapemeter-state 4",
            1,
        );
        assert!(decode(other.as_bytes())
            .unwrap_err()
            .to_string()
            .contains("format 4"));
        assert!(decode(b"{\"runs\": 1}")
            .unwrap_err()
            .to_string()
            .contains("not a"));
    }

    fn config(threshold: u64) -> Config {
        crate::config::for_tests(crate::config::Overrides {
            threshold: Some(threshold),
            ..Default::default()
        })
    }

    #[test]
    fn a_version_1_state_is_still_read_and_other_settings_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(5);
        // A state as version 1 wrote it: settings as strings, header version 1.
        let body = Body {
            settings: Settings::Legacy(legacy_settings(&cfg)),
            runs: 1,
            watermark: Some(7),
            ..Default::default()
        };
        let v2 = String::from_utf8(encode(&body)).unwrap();
        let json = v2.splitn(3, '\n').nth(2).unwrap();
        let v1 = format!(
            "scrapemeter-state 1\nsha256 {}\n{json}",
            hex::encode(Sha256::digest(json.as_bytes()))
        );
        std::fs::write(dir.path().join(FILE_NAME), v1).unwrap();
        let read = load(dir.path(), &cfg).unwrap().unwrap();
        assert_eq!((read.runs, read.watermark), (1, Some(7)));
        let e = load(dir.path(), &config(6)).unwrap_err().to_string();
        assert!(e.contains("threshold: 5 in the state, 6 now"), "{e}");

        // Version 2 on: the typed fingerprint, differences named by their dotted path.
        let body = Body {
            settings: settings(&cfg),
            ..Default::default()
        };
        std::fs::write(dir.path().join(FILE_NAME), encode(&body)).unwrap();
        assert!(String::from_utf8(encode(&body))
            .unwrap()
            .starts_with("scrapemeter-state 3\n"));
        assert!(load(dir.path(), &cfg).unwrap().is_some());
        let e = load(dir.path(), &config(6)).unwrap_err().to_string();
        assert!(e.contains("policy.threshold: 5 in the state, 6 now"), "{e}");
    }
}
