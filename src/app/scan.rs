//! `scrapemeter scan`: the main job. Read the logs, bill every client through the
//! engine (continuing the nightly state with `--state`), find the evidence, and write
//! the reports (and the new state) all at once.

use crate::app::cli::{
    check_out_dir, discover_inputs, now_rfc3339, resolve, strict_exit, thread_pool, InputArgs,
    PolicyArgs,
};
use crate::app::error::{Error, Exit};
use crate::config::Config;
use crate::engine::bill::analyze;
use crate::input::reader::{judge_inputs, scan_with_progress, warn_inputs, FileReport};
use crate::report::{self, ReportInput, RunInfo};
use crate::store::nightly;
use clap::Args;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, Args)]
pub struct ScanArgs {
    #[command(flatten)]
    pub input: InputArgs,

    /// Folder the reports are written to (created if missing).
    #[arg(long, short, value_name = "DIR", required = true)]
    pub out: Option<PathBuf>,

    #[command(flatten)]
    pub policy: PolicyArgs,

    /// Exit with status 1 (after writing the reports) when an input is bad: missing
    /// (with --allow-missing), unreadable, unrecognised, incomplete, or over --max-malformed.
    #[arg(long)]
    pub strict: bool,

    /// As --strict, and exit with status 1 on any malformed line too.
    #[arg(long)]
    pub strict_lines: bool,

    /// Skip the second read of the logs (faster): it finds the raw log lines of each
    /// billed window's first and last request, each reported client's top paths and
    /// user agents and, with --orgs, each organisation's top member keys. Without it,
    /// the evidence fields of report.json stay empty and the tops and members are left out.
    #[arg(long)]
    pub no_evidence: bool,

    /// Print nothing on stdout but errors (and no progress on stderr).
    #[arg(long, short)]
    pub quiet: bool,

    /// Nightly state folder: carries the trailing buckets, the windows already billed
    /// final, the inputs already read and the watermark from one run to the next.
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,

    /// How long after the newest request the logs are taken as complete (default: 1h):
    /// the watermark is the newest request time minus this.
    #[arg(long, value_name = "DURATION")]
    pub lateness: Option<String>,

    /// Start the nightly state afresh (after a change of settings, or a damaged state).
    #[arg(long)]
    pub state_reset: bool,

    /// The summary on stdout (default: text): text, or json for scripts.
    #[arg(long, value_name = "FORMAT", value_parser = ["text", "json"])]
    pub summary: Option<String>,
}

impl ScanArgs {
    /// The settings of this scan, resolved once.
    pub fn into_config(self) -> Result<Config, Error> {
        let ScanArgs {
            input,
            out,
            policy,
            strict,
            strict_lines,
            no_evidence,
            quiet,
            state,
            lateness,
            state_reset,
            summary: _,
        } = self;
        resolve(input, policy, out.unwrap_or_default(), |f| {
            f.strict = strict;
            f.strict_lines = strict_lines;
            f.no_evidence = no_evidence;
            f.quiet = quiet;
            f.state = state;
            f.lateness = lateness;
            f.state_reset = state_reset;
        })
    }
}

/// Runs `scan`.
pub fn run(args: ScanArgs) -> Result<Exit, Error> {
    let json_summary = args.summary.as_deref() == Some("json");
    let cfg = args.into_config()?;
    run_with(&cfg, json_summary)
}

/// Runs a scan with resolved settings; the clock is read here, at the edge.
pub fn run_with(cfg: &Config, json_summary: bool) -> Result<Exit, Error> {
    let started = Instant::now();
    let started_at = now_rfc3339();
    let pool = thread_pool(cfg.threads)?;
    check_out_dir(&cfg.out_dir)?;
    let mut discovery = discover_inputs(cfg)?;
    // With nightly state: one run at a time holds the state folder, from before it
    // reads the state until it has written the new one (the lock goes with `_lock`).
    let _lock = match &cfg.state {
        Some(dir) => Some(nightly::lock(dir, &started_at)?),
        None => None,
    };
    // With nightly state: load it (refusing a damaged one), skip the inputs it has
    // read, and take the previous watermark as the edge of late data.
    let mut run_cfg = cfg.clone();
    let mut night = match &cfg.state {
        Some(_) => Some(nightly::NightlyRun::start(&mut run_cfg, &mut discovery)?),
        None => None,
    };
    let cfg = &run_cfg;
    let progress = crate::app::progress::start(&discovery.inputs, cfg.quiet);
    let mut output = pool.install(|| {
        scan_with_progress(
            &cfg.read,
            discovery,
            progress.as_ref().map(|p| p.counters()),
        )
    });
    drop(progress);
    judge_inputs(&mut output.files, cfg.max_malformed);
    warn_inputs(&output);
    let aggregate = std::mem::take(&mut output.aggregate);
    let mut analysis = match &mut night {
        Some(run) => {
            let a = pool.install(|| run.analyze(cfg, &mut output.files, aggregate));
            warn_nightly(run, &output.files);
            a
        }
        None => pool.install(|| analyze(&cfg.policy, aggregate, &|k| cfg.read.identify(k))),
    };
    if cfg.evidence {
        pool.install(|| crate::input::second_read::attach(&cfg.read, &output, &mut analysis));
    }
    let state_file = night.as_mut().map(|run| {
        let (dir, bytes) = run.finish(&analysis);
        (dir, nightly::FILE_NAME, bytes)
    });
    let input = ReportInput {
        cfg,
        files: &output.files,
        skipped: &output.skipped,
        analysis: &analysis,
        nightly: night.as_ref().map(|r| &r.nightly),
        run: RunInfo::now(started, started_at, cfg.threads),
    };
    // The state is committed last, with the reports: all of them or none.
    if let Err(e) = report::write_all_with(&input, state_file.into_iter().collect()) {
        return Err(Error::Output(format!(
            "{e}; no report and no state was changed"
        )));
    }
    if !cfg.quiet && json_summary {
        println!("{}", report::summary::render_json(&input));
    } else if !cfg.quiet {
        print!("{}", report::summary::render(&input));
        println!("reports written to {}", cfg.out_dir.display());
    }
    Ok(strict_exit(cfg, &output.files).unwrap_or(Exit::Success))
}

/// Late requests and inputs that changed since an earlier run are never silent.
fn warn_nightly(run: &nightly::NightlyRun, files: &[FileReport]) {
    for f in files {
        if let Some(n) = f.late.filter(|&n| n > 0) {
            eprintln!(
                "scrapemeter: warning: {}: {n} late requests (before the previous watermark {}): counted, not billed",
                f.path,
                run.prev
                    .watermark
                    .map(crate::engine::time::format_rfc3339)
                    .unwrap_or_default()
            );
        }
    }
    for c in &run.nightly.changed_inputs {
        eprintln!(
            "scrapemeter: warning: {}: content changed since run {} read it (SHA-256 was {}, now {}); read again",
            c.path, c.earlier_run, c.earlier_sha256, c.sha256
        );
    }
}
