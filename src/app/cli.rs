//! The command line: clap-derive flags → a [`Config`] → a run → an exit status.

use crate::config::{Config, Overrides, SettingsFile};
use crate::engine::bill::analyze;
use crate::input::discover::discover;
use crate::report::{self, ReportInput, RunInfo};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::time::Instant;

/// What each exit status means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Success = 0,
    /// `--strict` saw malformed lines or incomplete, unreadable or unrecognised inputs.
    StrictFailure = 1,
    /// Bad flags, settings, rules or orgs files; a refused state, or a state folder
    /// another run holds.
    Usage = 2,
    /// The outputs or the state could not be written.
    Output = 3,
}

#[derive(Debug, Parser)]
#[command(
    name = "scrapemeter",
    version,
    about = "Counts the posts each client fetched in every rolling 24-hour window of web server access logs, and reports the damages owed over the threshold."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read access logs and write violations.csv, clients.csv, report.json and report.html.
    Scan(Box<ScanArgs>),
    /// Write deterministic synthetic access logs (the bundled sample logs, benchmark sets).
    Generate(crate::app::generate::GenerateArgs),
    /// Show one client's activity, windows, damages, rate, paths, user agents and evidence lines.
    Explain(Box<crate::app::explain::ExplainArgs>),
    /// Read access logs (one shard of them) into Parquet partials, for `reduce`.
    Map(Box<crate::app::map::MapArgs>),
    /// Read Parquet partials from `map` and write the same reports as `scan`.
    Reduce(Box<crate::app::reduce::ReduceArgs>),
    /// Rules files: `rules check FILE [--line LINE --format F]`.
    Rules {
        #[command(subcommand)]
        action: crate::app::rules::RulesAction,
    },
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Log files, directories (read recursively), glob patterns, or - for standard input.
    /// gzip, zstd and plain text are told apart by their first bytes.
    #[arg(value_name = "PATHS")]
    pub paths: Vec<String>,

    /// Folder the reports are written to (created if missing).
    #[arg(long, value_name = "DIR", required = true)]
    pub out: Option<PathBuf>,

    /// Settings file (TOML) with the same settings as these flags; flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Log format: auto (chosen per file from its first 100 lines), combined, common,
    /// vcombined, json, alb, cloudfront, or nginx:'<log_format>'.
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,

    /// What a client is: ip (default), subnet, user (authenticated user), ua (user agent),
    /// or field:NAME (a named field of a structured or nginx format, e.g. an API key).
    #[arg(long, value_name = "KEY")]
    pub client: Option<String>,

    /// Prefix length of an IPv4 subnet client (default 24).
    #[arg(long, value_name = "BITS")]
    pub subnet_v4: Option<u8>,

    /// Prefix length of an IPv6 subnet client (default 64).
    #[arg(long, value_name = "BITS")]
    pub subnet_v6: Option<u8>,

    /// Organisations file (CSV: match,org[,exempt]): IP ranges or client keys → an
    /// organisation, which is then the client; exempt organisations are never billed.
    #[arg(long, value_name = "FILE")]
    pub orgs: Option<PathBuf>,

    /// Post-weight rules file (TOML): ordered [[rule]]s replacing the default rule.
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,

    #[command(flatten)]
    pub policy: PolicyArgs,

    /// Ignore requests before this RFC 3339 time (counted as out of range).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,

    /// Ignore requests at or after this RFC 3339 time (counted as out of range).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,

    /// Worker threads (default: one per core).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,

    /// Exit with status 1 when any line is malformed or any input incomplete, unreadable or unrecognised.
    #[arg(long)]
    pub strict: bool,

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

    /// How long after the newest request the logs are taken as complete (default 1h):
    /// the watermark is the newest request time minus this.
    #[arg(long, value_name = "DURATION")]
    pub lateness: Option<String>,

    /// Start the nightly state afresh (after a change of settings, or a damaged state).
    #[arg(long)]
    pub state_reset: bool,

    /// The summary on stdout: text (default) or json (for scripts).
    #[arg(long, value_name = "FORMAT", value_parser = ["text", "json"])]
    pub summary: Option<String>,
}

/// The billing policy: what breaches and what it costs. Shared by `scan` and `reduce`.
#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// A window breaches when its posts are strictly more than this (default 1000000).
    #[arg(long, value_name = "N")]
    pub threshold: Option<u64>,

    /// Window length, e.g. 24h (default), 12h, 90m, 1h30m, 86400s, 1d.
    #[arg(long, value_name = "DURATION")]
    pub window: Option<String>,

    /// Damages in USD per --per posts, at most 6 decimals (default 15000).
    #[arg(long, value_name = "USD")]
    pub rate: Option<String>,

    /// How many posts the rate is for (default 1000000).
    #[arg(long, value_name = "N")]
    pub per: Option<u64>,

    /// pro-rata (default: rate × posts / per, half-up to the cent), per-started or per-full.
    #[arg(long, value_name = "HOW")]
    pub rounding: Option<String>,

    /// rolling (default: greedy disjoint windows from post times) or calendar (fixed UTC windows).
    #[arg(long, value_name = "MODE")]
    pub mode: Option<String>,
}

impl ScanArgs {
    pub(crate) fn into_config(self: Box<Self>) -> Result<Config, String> {
        let file = match &self.config {
            Some(p) => SettingsFile::load(p)?,
            None => SettingsFile::default(),
        };
        let flags = Overrides {
            format: self.format,
            client: self.client,
            subnet_v4: self.subnet_v4,
            subnet_v6: self.subnet_v6,
            threshold: self.policy.threshold,
            window: self.policy.window,
            rate: self.policy.rate,
            per: self.policy.per,
            rounding: self.policy.rounding,
            mode: self.policy.mode,
            since: self.since,
            until: self.until,
            threads: self.threads,
            strict: self.strict,
            quiet: self.quiet,
            no_evidence: self.no_evidence,
            rules: self.rules,
            orgs: self.orgs,
            state: self.state,
            lateness: self.lateness,
            state_reset: self.state_reset,
        };
        Config::resolve(self.paths, self.out.unwrap_or_default(), flags, file)
    }
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The worker pool of `threads` threads; failing to start it is reported as a usage error.
pub(crate) fn thread_pool(threads: usize) -> Result<rayon::ThreadPool, Exit> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| {
            eprintln!("scrapemeter: error: cannot start {threads} threads: {e}");
            Exit::Usage
        })
}

/// Runs `scan` with a resolved config; the clock is read here, at the edge.
pub fn run_scan(cfg: &Config) -> Exit {
    run_scan_with(cfg, false)
}

/// [`run_scan`], printing the summary as JSON when `json_summary`.
pub fn run_scan_with(cfg: &Config, json_summary: bool) -> Exit {
    let started = Instant::now();
    let started_at = now_rfc3339();
    let pool = match crate::app::cli::thread_pool(cfg.threads) {
        Ok(p) => p,
        Err(exit) => return exit,
    };
    // With nightly state: one run at a time holds the state folder, from before it
    // reads the state until it has written the new one (the lock goes with `_lock`).
    let _lock = match &cfg.state {
        Some(dir) => match crate::store::nightly::lock(dir, &started_at) {
            Ok(l) => Some(l),
            Err(e) => {
                let (msg, exit) = match e {
                    crate::store::nightly::LockError::Busy(m) => (m, Exit::Usage),
                    crate::store::nightly::LockError::Io(m) => (m, Exit::Output),
                };
                eprintln!("scrapemeter: error: {msg}; nothing was read or written");
                return exit;
            }
        },
        None => None,
    };
    let mut discovery = discover(&cfg.inputs);
    // With nightly state: load it (refusing a damaged one), skip the inputs it has
    // read, and take the previous watermark as the edge of late data.
    let mut run_cfg = cfg.clone();
    let mut nightly = match &cfg.state {
        Some(_) => match crate::store::nightly::Run::start(&mut run_cfg, &mut discovery) {
            Ok(r) => Some(r),
            Err(e) => {
                eprintln!("scrapemeter: error: {e}");
                return Exit::Usage;
            }
        },
        None => None,
    };
    let cfg = &run_cfg;
    let progress = crate::app::progress::start(&discovery.inputs, cfg.quiet);
    let mut output = pool.install(|| {
        crate::input::reader::scan_with_progress(
            &cfg.read,
            discovery,
            progress.as_ref().map(|p| p.counters()),
        )
    });
    drop(progress);
    crate::input::reader::warn_inputs(&output);
    let aggregate = std::mem::take(&mut output.aggregate);
    let mut analysis = match &mut nightly {
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
    let state_file = nightly.as_mut().map(|run| {
        let (dir, bytes) = run.finish(&analysis);
        (dir, crate::store::nightly::FILE_NAME, bytes)
    });
    let input = ReportInput {
        cfg,
        scan: &output,
        analysis: &analysis,
        nightly: nightly.as_ref().map(|r| &r.nightly),
        run: RunInfo::now(started, started_at, cfg.threads),
    };
    // The state is committed last, with the reports: all of them or none.
    if let Err(e) = report::write_all_with(&input, state_file.into_iter().collect()) {
        eprintln!("scrapemeter: error: {e}; no report and no state was changed");
        return Exit::Output;
    }
    if !cfg.quiet && json_summary {
        println!("{}", report::summary::render_json(&input));
    } else if !cfg.quiet {
        print!("{}", report::summary::render(&input));
        println!("reports written to {}", cfg.out_dir.display());
    }
    if cfg.strict && output.files.iter().any(|f| f.has_problems()) {
        eprintln!("scrapemeter: --strict: some inputs were malformed, incomplete or unreadable");
        return Exit::StrictFailure;
    }
    Exit::Success
}

/// Late requests and inputs that changed since an earlier run are never silent.
fn warn_nightly(run: &crate::store::nightly::Run, files: &[crate::input::reader::FileReport]) {
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

/// Entry point of the binary; returns the process exit status.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                Exit::Usage as i32
            } else {
                0
            };
        }
    };
    match cli.command {
        Command::Scan(args) => {
            let json_summary = args.summary.as_deref() == Some("json");
            match args.into_config() {
                Ok(cfg) => run_scan_with(&cfg, json_summary) as i32,
                Err(e) => {
                    eprintln!("scrapemeter: error: {e}");
                    Exit::Usage as i32
                }
            }
        }
        Command::Explain(args) => crate::app::explain::run(*args),
        Command::Map(args) => crate::app::map::run(*args) as i32,
        Command::Reduce(args) => crate::app::reduce::run(*args) as i32,
        Command::Rules { action } => crate::app::rules::run(action),
        Command::Generate(args) => match crate::app::generate::run(&args) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("scrapemeter: error: {e}");
                Exit::Output as i32
            }
        },
    }
}
