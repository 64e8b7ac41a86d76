//! `scrapemeter reduce`: reads Parquet partials from `map` and writes the same reports
//! as `scan` would have over all their inputs; `--merge` joins the reports of reduces
//! over disjoint sets of clients; `--check` prints the partials' metadata.

use crate::app::cli::{now_rfc3339, thread_pool, PolicyArgs};
use crate::app::error::{Error, Exit};
use crate::config::{Config, Overrides, SettingsFile};
use crate::engine::aggregate::Aggregate;
use crate::engine::bill::analyze;
use crate::report::{self, ReportInput, RunInfo};
use crate::store::partials::{
    check, no_input_twice, partial_files, read_rows, read_spec, Judged, MapRun, PartialsError,
    ReadSettings, SettingsInfo, META_DIGEST, META_INFO, META_PARTIALS, META_SETTINGS, META_VERSION,
    PARTIALS_VERSION, SIDECAR,
};
use clap::Args;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Debug, Args)]
pub struct ReduceArgs {
    /// Partial files (.parquet) or folders of them (read recursively; names starting
    /// with `.` are skipped). With --merge: output folders of earlier reduces.
    #[arg(value_name = "PARTIALS", required = true)]
    pub paths: Vec<PathBuf>,

    /// Folder the reports are written to (created if missing).
    #[arg(long, short, value_name = "DIR", required_unless_present = "check")]
    pub out: Option<PathBuf>,

    #[command(flatten)]
    pub policy: PolicyArgs,

    /// Worker threads (default: one per core).
    #[arg(long, short = 'j', value_name = "N")]
    pub threads: Option<usize>,

    /// Only read the partials' metadata, check it (one settings digest, no input twice)
    /// and print it as JSON on stdout; write nothing.
    #[arg(long, conflicts_with = "merge")]
    pub check: bool,

    /// Join the violations.csv and clients.csv of reduces over disjoint sets of clients
    /// (e.g. one per bucket) into one pair, in the order `scan` writes them.
    #[arg(long)]
    pub merge: bool,

    /// Print nothing on stdout but errors.
    #[arg(long, short)]
    pub quiet: bool,

    /// The summary on stdout (default: text): text, or json for scripts.
    #[arg(long, value_name = "FORMAT", value_parser = ["text", "json"])]
    pub summary: Option<String>,
}

/// A `Config` for analysing and reporting partials: the map settings from their
/// metadata, the billing policy from the flags.
fn reduce_config(
    args: &ReduceArgs,
    settings: &ReadSettings,
    info: &SettingsInfo,
    judged: Option<&Judged>,
    out: PathBuf,
) -> Result<Config, Error> {
    let mut flags = Overrides {
        threads: args.threads,
        quiet: args.quiet,
        no_evidence: true,
        ..Default::default()
    };
    args.policy.clone().apply(&mut flags);
    let inputs = args.paths.iter().map(|p| p.display().to_string()).collect();
    let mut cfg = Config::resolve(inputs, out, flags, SettingsFile::default())?;
    // How the rows were read, and how their inputs were judged, is the partials' to
    // say, not the flags'.
    cfg.read = read_spec(settings, info)?;
    match judged {
        Some(j) => {
            cfg.strict = j.strict;
            cfg.strict_lines = j.strict_lines;
            cfg.max_malformed = j.max_malformed;
            cfg.allow_missing = j.allow_missing;
            cfg.exclude_patterns = j.exclude.clone();
        }
        None => cfg.judging_known = false,
    }
    Ok(cfg)
}

/// Runs `reduce`.
pub fn run(args: ReduceArgs) -> Result<Exit, Error> {
    if args.merge {
        return run_merge(&args);
    }
    let started = Instant::now();
    let started_at = now_rfc3339();
    // One writer per output folder, checked and taken before any partial is read.
    let _out_lock = match (&args.out, args.check) {
        (Some(out), false) => Some(crate::store::out_lock::lock(out, &started_at)?),
        _ => None,
    };
    let files = partial_files(&args.paths)?;
    let checked = check(&files)?;
    if args.check {
        let first = &checked.metas[0];
        let doc = serde_json::json!({
            "settings_sha256": first.digest,
            "settings": checked.settings,
            "settings_info": checked.info,
            "metadata": {
                META_VERSION: env!("CARGO_PKG_VERSION"),
                META_PARTIALS: PARTIALS_VERSION,
                META_SETTINGS: first.settings,
                META_DIGEST: first.digest,
                META_INFO: first.info,
            },
            "files": checked.metas.len(),
            "rows": checked.metas.iter().map(|m| m.rows).sum::<i64>(),
            "shards": checked.metas.iter().map(|m| m.shard.as_str()).collect::<std::collections::BTreeSet<_>>(),
            "inputs": checked.manifest,
        });
        println!("{}", serde_json::to_string_pretty(&doc).expect("json"));
        return Ok(Exit::Success);
    }
    let out = args.out.clone().unwrap_or_default();
    let cfg = reduce_config(
        &args,
        &checked.settings,
        &checked.info,
        checked.judged.as_ref(),
        out,
    )?;
    let pool = thread_pool(cfg.threads)?;
    // Files are read in parallel, each into its own aggregate, merged once.
    let read: Result<Vec<Aggregate>, PartialsError> = pool.install(|| {
        use rayon::prelude::*;
        files
            .par_iter()
            .map(|f| {
                let mut agg = Aggregate::new();
                read_rows(f, &mut agg).map(|_| agg)
            })
            .collect()
    });
    let aggregate = match read {
        Ok(parts) => parts.into_iter().fold(Aggregate::new(), |mut a, b| {
            a.merge(b);
            a
        }),
        Err(e) => {
            return Err(Error::Usage(format!("{e}")));
        }
    };
    // The buckets of clients this reduce covered: `reduce --merge` refuses parts that
    // share one (a client's rows split, or counted twice).
    let buckets: std::collections::BTreeSet<String> = checked
        .metas
        .iter()
        .map(|m| format!("{}/{}", m.bucket, m.buckets))
        .collect();
    let sidecar = serde_json::json!({
        "settings_sha256": checked.metas[0].digest,
        "runs": checked.runs,
        "buckets": buckets,
    });
    let analysis = pool.install(|| analyze(&cfg.policy, aggregate, &|k| cfg.read.identify(k)));
    // Partials whose counts overflow or whose times cannot print are bad partials.
    analysis
        .check()
        .map_err(|e| Error::Usage(format!("partials refused: {e}")))?;
    let input = ReportInput::new(
        &cfg,
        &checked.files,
        &checked.skipped,
        &analysis,
        None,
        RunInfo::now(
            started,
            started_at,
            cfg.threads,
            crate::app::cli::command_line(),
        ),
    );
    let mut sidecar = serde_json::to_vec_pretty(&sidecar).expect("json");
    sidecar.push(b'\n');
    if let Err(e) = report::write_all(&input)
        .and_then(|_| report::write_atomically(&cfg.out_dir, &[(SIDECAR, sidecar)]))
    {
        return Err(Error::Output(format!("{e}")));
    }
    if !cfg.quiet && args.summary.as_deref() == Some("json") {
        println!("{}", report::summary::render_json(&input));
    } else if !cfg.quiet {
        print!("{}", report::summary::render(&input));
        println!("reports written to {}", cfg.out_dir.display());
    }
    Ok(Exit::Success)
}

/// Reads a CSV report: its header and its records.
fn read_csv(path: &Path) -> Result<(csv::StringRecord, Vec<csv::StringRecord>), Error> {
    read_csv_records(path).map_err(Error::Usage)
}

fn read_csv_records(path: &Path) -> Result<(csv::StringRecord, Vec<csv::StringRecord>), String> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let header = r
        .headers()
        .map_err(|e| format!("{}: {e}", path.display()))?
        .clone();
    let rows = r
        .records()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((header, rows))
}

/// `reduce --merge` joins parts over disjoint sets of clients: a part named twice (by
/// any spelling), two parts that reduced the same bucket of clients, or a client in
/// two parts' `clients.csv` would bill some clients twice (or split their windows).
fn refuse_overlaps(dirs: &[PathBuf]) -> Result<(), Error> {
    let mut seen: BTreeMap<PathBuf, &Path> = BTreeMap::new();
    let mut buckets: BTreeMap<String, &Path> = BTreeMap::new();
    let mut clients: std::collections::HashMap<String, &Path> = Default::default();
    for d in dirs {
        let canon =
            std::fs::canonicalize(d).map_err(|e| Error::Usage(format!("{}: {e}", d.display())))?;
        if let Some(prev) = seen.insert(canon, d) {
            return Err(Error::Usage(format!(
                "{} and {} are the same part: its clients would be billed twice",
                prev.display(),
                d.display()
            )));
        }
        let p = d.join(SIDECAR);
        let doc: Value = std::fs::read(&p)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let Some(list) = doc["buckets"].as_array() else {
            return Err(Error::Usage(format!(
                "{}: no list of buckets (is it the output of reduce, by this version? reduce it again)",
                p.display()
            )));
        };
        for b in list.iter().filter_map(Value::as_str) {
            if let Some(prev) = buckets.insert(b.to_string(), d) {
                return Err(Error::Usage(format!(
                    "{} and {} both reduced bucket {b} of clients: parts must cover disjoint buckets",
                    prev.display(),
                    d.display()
                )));
            }
        }
        // Two keys can share a cell (non-UTF-8 bytes are written `\xHH`), so a part may
        // repeat one; only a cell in two parts is an overlap.
        let (_, rows) = read_csv(&d.join("clients.csv"))?;
        let cells: std::collections::BTreeSet<String> = rows
            .iter()
            .map(|r| r.get(0).unwrap_or_default().to_string())
            .collect();
        for c in cells {
            if let Some(prev) = clients.get(&c) {
                return Err(Error::Usage(format!(
                    "client {} is in both {} and {}: parts must cover disjoint sets of clients",
                    crate::engine::text::display_key(c.as_bytes()),
                    prev.display(),
                    d.display()
                )));
            }
            clients.insert(c, d);
        }
    }
    Ok(())
}

/// `reduce --merge`: the reports of reduces over disjoint sets of clients, joined. Each
/// part is already in order; rows are stably sorted by the bytes of their client cell,
/// which is the order `scan` writes (billing is per client, so nothing is recomputed).
fn run_merge(args: &ReduceArgs) -> Result<Exit, Error> {
    let Some(out) = &args.out else {
        return Err(Error::Usage("--merge needs --out".into()));
    };
    let _out_lock = crate::store::out_lock::lock(out, &now_rfc3339())?;
    let mut dirs = args.paths.clone();
    dirs.sort();
    refuse_overlaps(&dirs)?;
    let mut outputs = Vec::new();
    let mut settings: Option<(PathBuf, Value)> = None;
    for name in ["violations.csv", "clients.csv"] {
        let mut header: Option<csv::StringRecord> = None;
        let mut rows: Vec<csv::StringRecord> = Vec::new();
        for d in &dirs {
            let (h, r) = read_csv(&d.join(name))?;
            match &header {
                Some(first) if *first != h => {
                    return Err(Error::Usage(format!(
                        "{} has a different header from the first part",
                        d.join(name).display()
                    )));
                }
                Some(_) => {}
                None => header = Some(h),
            }
            rows.extend(r);
        }
        rows.sort_by(|a, b| a[0].as_bytes().cmp(b[0].as_bytes()));
        let write = || -> csv::Result<Vec<u8>> {
            let mut w = csv::Writer::from_writer(Vec::new());
            if let Some(h) = &header {
                w.write_record(h)?;
            }
            for r in &rows {
                w.write_record(r)?;
            }
            w.into_inner().map_err(|e| e.into_error().into())
        };
        match write() {
            Ok(bytes) => outputs.push((name, bytes)),
            Err(e) => {
                return Err(Error::Output(format!("{e}")));
            }
        }
    }
    // The parts must come from partials with one settings digest and no input twice.
    let mut digest: Option<(PathBuf, String)> = None;
    let mut runs: BTreeMap<String, (MapRun, String)> = BTreeMap::new();
    let mut all_buckets: std::collections::BTreeSet<String> = Default::default();
    for d in &dirs {
        let p = d.join(SIDECAR);
        let doc: Value = match std::fs::read(&p)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
        {
            Ok(v) => v,
            Err(e) => {
                return Err(Error::Usage(format!(
                    "{}: {e} (is it the output of reduce?)",
                    p.display()
                )));
            }
        };
        let dg = doc["settings_sha256"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        match &digest {
            Some((first, fd)) if *fd != dg => {
                return Err(Error::Usage(format!("parts made from partials with different settings: {} has settings digest {fd} but {} has {dg}",
                    first.display(),
                    d.display()
                )));
            }
            Some(_) => {}
            None => digest = Some((d.clone(), dg)),
        }
        all_buckets.extend(
            doc["buckets"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|b| b.as_str().map(str::to_string)),
        );
        let list: Vec<MapRun> = serde_json::from_value(doc["runs"].clone()).unwrap_or_default();
        for r in list {
            runs.entry(r.run.clone())
                .or_insert((r, d.display().to_string()));
        }
    }
    if let Err(e) = no_input_twice(runs.values().map(|(r, l)| (r, l.clone()))) {
        return Err(Error::Usage(format!("{e}")));
    }
    let mut sidecar = serde_json::to_vec_pretty(&serde_json::json!({
        "settings_sha256": digest.map(|d| d.1),
        "runs": runs.into_values().map(|(r, _)| r).collect::<Vec<_>>(),
        "buckets": all_buckets,
    }))
    .expect("json");
    sidecar.push(b'\n');
    outputs.push((SIDECAR, sidecar));
    // The parts must share their settings (policy included), where report.json says.
    for d in &dirs {
        let Ok(text) = std::fs::read(d.join("report.json")) else {
            continue;
        };
        let Ok(doc) = serde_json::from_slice::<Value>(&text) else {
            continue;
        };
        match &settings {
            Some((p, s)) if *s != doc["settings"] => {
                return Err(Error::Usage(format!(
                    "{} and {} were reduced with different settings",
                    p.display(),
                    d.display()
                )));
            }
            Some(_) => {}
            None => settings = Some((d.clone(), doc["settings"].clone())),
        }
    }
    if let Err(e) = report::write_atomically(out, &outputs) {
        return Err(Error::Output(format!("{e}")));
    }
    if !args.quiet {
        println!("merged {} parts into {}", dirs.len(), out.display());
    }
    Ok(Exit::Success)
}
