//! The command line: clap-derive flags, one struct per command, turned into a
//! [`Config`] once; [`main`] runs the command and turns its outcome into an exit status.
//!
//! Flag groups are shared where commands share a meaning: [`InputArgs`] (what to read
//! and how) by `scan`, `explain` and `map`; [`PolicyArgs`] (how to bill) by `scan`,
//! `explain` and `reduce`. Each command's own flags live in its file.

use crate::app::error::{Error, Exit};
use crate::config::{Config, Overrides, SettingsFile};
use crate::input::discover::{discover_with, Discovery, Filter};
use crate::input::reader::FileReport;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// The end of `--help` (of `scrapemeter` and of `scan`): what each exit status means
/// (the README's table), then three examples.
pub const AFTER_HELP: &str = "\
Exit status:
  0  success (malformed lines and bad inputs are reported, not fatal)
  1  --strict and some input was bad: missing (with --allow-missing), unreadable,
     unrecognised, incomplete, or over --max-malformed (--strict-lines: or any line
     was malformed); the reports are written. explain: the client is not in the logs
  2  usage error: bad flags, settings, rules or orgs file; a path that does not exist
     or a glob that matches nothing (unless --allow-missing); --out naming a file; a
     refused state; refused partials
  3  the reports or the state could not be written (nothing half-written is left);
     the --out folder is held by another run; the clients counted outgrew
     --memory-limit and could not be spilled to disk (with --state, one client over
     it, a full disk)
  4  with --state: the reports and state were written, but some requests were late
     (older than the watermark) and not billed
  130  interrupted (Ctrl-C): nothing written, or the reports written in full (it says)

Examples:
  scrapemeter scan /var/log/nginx/access.log* --out reports
  scrapemeter scan 'logs/*/access.log*' --client subnet --strict --out reports
  scrapemeter explain 203.0.113.7 /var/log/nginx/ --evidence 3";

#[derive(Debug, Parser)]
#[command(
    name = "scrapemeter",
    version,
    about = "Counts the posts each client fetched in every rolling 24-hour window of web server access logs, and reports the damages owed over the threshold.",
    after_help = AFTER_HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read access logs and write violations.csv, clients.csv, report.json and report.html.
    #[command(after_help = AFTER_HELP)]
    Scan(Box<crate::app::scan::ScanArgs>),
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
    /// Print a shell completion script (e.g. `scrapemeter completions bash >
    /// /etc/bash_completion.d/scrapemeter`).
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        #[arg(value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) on stdout (e.g. `scrapemeter man > scrapemeter.1`).
    Man,
}

/// What to read and how: the inputs, their format, what a client is, post weights,
/// the time range. Shared by `scan`, `explain` and `map`.
#[derive(Debug, Args)]
pub struct InputArgs {
    /// Log files, directories (read recursively), glob patterns, or - for standard input.
    /// gzip, zstd, bzip2, xz, lz4 and plain text are told apart by their first bytes.
    #[arg(value_name = "PATHS")]
    pub paths: Vec<String>,

    /// Settings file (TOML) with the same settings as these flags; flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Log format: auto (chosen per file from its first 100 lines), combined, common,
    /// vcombined, json, alb, cloudfront, nginx:'<log_format>', or cri+ before one of them
    /// (inside the CRI container-log wrapper).
    #[arg(long, short, value_name = "FORMAT")]
    pub format: Option<String>,

    /// What a client is (default: ip): ip, subnet, user (authenticated user), ua (user agent),
    /// or field:NAME (a named field of a structured or nginx format, e.g. an API key).
    #[arg(long, value_name = "KEY")]
    pub client: Option<String>,

    /// Prefix length of an IPv4 subnet client (default: 24).
    #[arg(long, value_name = "BITS")]
    pub subnet_v4: Option<u8>,

    /// Prefix length of an IPv6 subnet client (default: 64).
    #[arg(long, value_name = "BITS")]
    pub subnet_v6: Option<u8>,

    /// Organisations file (CSV: match,org[,exempt]): IP ranges or client keys → an
    /// organisation, which is then the client; exempt organisations are never billed.
    #[arg(long, value_name = "FILE")]
    pub orgs: Option<PathBuf>,

    /// Post-weight rules file (TOML): ordered [[rule]]s replacing the default rule.
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,

    /// Ignore requests before this RFC 3339 time (counted as out of range).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,

    /// Ignore requests at or after this RFC 3339 time (counted as out of range).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,

    /// Worker threads (default: one per core).
    #[arg(long, short = 'j', value_name = "N")]
    pub threads: Option<usize>,

    /// Go on when a path does not exist or a glob matches nothing (a warning, and a bad
    /// input in the reports); without it that is a usage error (exit 2).
    #[arg(long)]
    pub allow_missing: bool,

    /// Leave out of folders and globs the files and folders whose path or name matches
    /// this glob (repeatable; e.g. '*.bak', 'archive'). Paths named as such are read.
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
}

impl InputArgs {
    /// These flags as settings over the settings file, and the file (if any).
    pub fn overrides(self) -> Result<(Vec<String>, Overrides, SettingsFile), Error> {
        let file = match &self.config {
            Some(p) => SettingsFile::load(p)?,
            None => SettingsFile::default(),
        };
        let flags = Overrides {
            format: self.format,
            client: self.client,
            subnet_v4: self.subnet_v4,
            subnet_v6: self.subnet_v6,
            since: self.since,
            until: self.until,
            threads: self.threads,
            rules: self.rules,
            orgs: self.orgs,
            allow_missing: self.allow_missing,
            exclude: self.exclude,
            ..Default::default()
        };
        Ok((self.paths, flags, file))
    }
}

/// When an input is bad, and whether a bad input fails the run: shared by `scan` and
/// `map`, which judge their inputs (and not by `explain`, which bills one client and
/// judges none).
#[derive(Debug, Clone, Args)]
pub struct BadInputArgs {
    /// A file with more than this share of its request lines malformed is a bad input
    /// (default: 0.01, i.e. 1%).
    #[arg(long, value_name = "RATIO")]
    pub max_malformed: Option<f64>,

    /// Exit with status 1 (after writing the outputs: scan's reports, map's partials)
    /// when an input is bad: missing (with --allow-missing), unreadable, unrecognised,
    /// incomplete, or over --max-malformed.
    #[arg(long)]
    pub strict: bool,

    /// As --strict, and exit with status 1 on any malformed line too.
    #[arg(long)]
    pub strict_lines: bool,
}

impl BadInputArgs {
    /// Puts these flags into `flags`.
    pub fn apply(self, flags: &mut Overrides) {
        flags.max_malformed = self.max_malformed;
        flags.strict = self.strict;
        flags.strict_lines = self.strict_lines;
    }
}

/// The billing policy: what breaches and what it costs. Shared by `scan`, `explain`
/// and `reduce`.
#[derive(Debug, Clone, Args)]
pub struct PolicyArgs {
    /// A window breaches when its posts are strictly more than this (default: 1000000).
    #[arg(long, value_name = "N")]
    pub threshold: Option<u64>,

    /// Window length (default: 24h), e.g. 24h, 12h, 90m, 1h30m, 86400s, 1d.
    #[arg(long, value_name = "DURATION")]
    pub window: Option<String>,

    /// Damages in USD per --per posts, at most 6 decimals (default: 15000).
    #[arg(long, value_name = "USD")]
    pub rate: Option<String>,

    /// How many posts the rate is for (default: 1000000).
    #[arg(long, value_name = "N")]
    pub per: Option<u64>,

    /// How damages are rounded (default: pro-rata): pro-rata (rate × posts / per, half-up to
    /// the cent), per-started or per-full.
    #[arg(long, value_name = "HOW")]
    pub rounding: Option<String>,

    /// Windows (default: rolling): rolling (greedy disjoint windows from post times) or
    /// calendar (fixed UTC windows).
    #[arg(long, value_name = "MODE")]
    pub mode: Option<String>,
}

impl PolicyArgs {
    /// Puts these flags into `flags`.
    pub fn apply(self, flags: &mut Overrides) {
        flags.threshold = self.threshold;
        flags.window = self.window;
        flags.rate = self.rate;
        flags.per = self.per;
        flags.rounding = self.rounding;
        flags.mode = self.mode;
    }

    /// The first of these flags that was given, if any.
    pub fn first_given(&self) -> Option<&'static str> {
        [
            ("--threshold", self.threshold.is_some()),
            ("--window", self.window.is_some()),
            ("--rate", self.rate.is_some()),
            ("--per", self.per.is_some()),
            ("--rounding", self.rounding.is_some()),
            ("--mode", self.mode.is_some()),
        ]
        .into_iter()
        .find_map(|(flag, given)| given.then_some(flag))
    }
}

/// Resolves the settings of a command that reads logs and bills them.
pub fn resolve(
    input: InputArgs,
    policy: PolicyArgs,
    out: PathBuf,
    more: impl FnOnce(&mut Overrides),
) -> Result<Config, Error> {
    let (paths, mut flags, file) = input.overrides()?;
    policy.apply(&mut flags);
    more(&mut flags);
    Ok(Config::resolve(paths, out, flags, file)?)
}

/// The inputs of a run: a path that does not exist or a glob that matches nothing is a
/// usage error (exit 2, before anything is read) unless `--allow-missing`.
pub fn discover_inputs(cfg: &Config) -> Result<Discovery, Error> {
    // This run's own folders are never read as inputs (its reports of last night, say).
    let own = [
        (Some(&cfg.out_dir), "the output folder of this run (--out)"),
        (cfg.state.as_ref(), "the state folder of this run (--state)"),
    ]
    .into_iter()
    .filter_map(|(dir, what)| {
        let dir = dir.filter(|d| !d.as_os_str().is_empty())?;
        Some((std::fs::canonicalize(dir).ok()?, what.to_string()))
    })
    .collect();
    let filter = Filter {
        exclude: cfg.exclude.clone(),
        patterns: cfg.exclude_patterns.clone(),
        own,
    };
    let discovery = discover_with(&cfg.inputs, &filter);
    if !cfg.allow_missing {
        let missing: Vec<String> = discovery
            .missing()
            .map(|p| format!("{}: {}", p.path, p.error))
            .collect();
        if !missing.is_empty() {
            return Err(Error::Usage(format!(
                "{} (give --allow-missing to go on without it)",
                missing.join("; ")
            )));
        }
    }
    Ok(discovery)
}

/// `--out` must be a folder, or a path where one can be made: a file in its place (or
/// in place of a folder above it) is a usage error, said in plain words, before
/// anything is read.
pub fn check_out_dir(out: &std::path::Path) -> Result<(), Error> {
    match out
        .ancestors()
        .find(|a| !a.as_os_str().is_empty() && a.exists())
    {
        Some(a) if !a.is_dir() && a == out => Err(Error::Usage(format!(
            "--out {}: that is a file, not a folder; give a folder for the outputs",
            out.display()
        ))),
        Some(a) if !a.is_dir() => Err(Error::Usage(format!(
            "--out {}: {} is a file, not a folder",
            out.display(),
            a.display()
        ))),
        _ => Ok(()),
    }
}

/// Whether `--strict` (a bad input) or `--strict-lines` (any malformed line too) fails
/// the run: says so on stderr and gives exit status 1.
pub fn strict_exit(cfg: &Config, files: &[FileReport]) -> Option<Exit> {
    let bad = files.iter().filter(|f| f.is_bad()).count();
    if (cfg.strict || cfg.strict_lines) && bad > 0 {
        let inputs = if bad == 1 { "input" } else { "inputs" };
        eprintln!(
            "scrapemeter: error: --strict: {bad} bad {inputs} (named above and in the reports)"
        );
        return Some(Exit::StrictFailure);
    }
    if cfg.strict_lines && files.iter().any(|f| f.has_problems()) {
        let n: u64 = files.iter().map(|f| f.malformed).sum();
        let lines = if n == 1 { "line" } else { "lines" };
        eprintln!("scrapemeter: error: --strict-lines: {n} malformed {lines}");
        return Some(Exit::StrictFailure);
    }
    None
}

/// The worker pool of `threads` threads; failing to start it is a usage error.
pub fn thread_pool(threads: usize) -> Result<rayon::ThreadPool, Error> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::Usage(format!("cannot start {threads} threads: {e}")))
}

/// The time now as RFC 3339 (the clock is read here, at the edge, and nowhere below).
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// This process's command line, word by word, for the reports' `run` object.
pub fn command_line() -> Vec<String> {
    std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

/// Writes `bytes` on stdout; a reader that goes away early (`| head`) is no failure.
fn print_bytes(bytes: &[u8]) -> Result<Exit, Error> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Error::Output(format!("cannot write on stdout: {e}")))
        }
        _ => Ok(Exit::Success),
    }
}

/// Entry point of the binary; returns the process exit status.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        // Help and version go to stdout as clap writes them; errors get the one prefix.
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return 0;
        }
        Err(e) => {
            let text = e.render().to_string();
            eprint!(
                "scrapemeter: {}",
                text.strip_prefix("error: ")
                    .map_or(text.clone(), |t| format!("error: {t}"))
            );
            return Exit::Usage as i32;
        }
    };
    let outcome = match cli.command {
        Command::Scan(args) => crate::app::scan::run(*args),
        Command::Explain(args) => crate::app::explain::run(*args),
        Command::Map(args) => crate::app::map::run(*args),
        Command::Reduce(args) => crate::app::reduce::run(*args),
        Command::Rules { action } => crate::app::rules::run(action),
        Command::Generate(args) => crate::app::generate::run(&args)
            .map(|()| Exit::Success)
            .map_err(Error::Output),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut cmd, "scrapemeter", &mut script);
            print_bytes(&script)
        }
        Command::Man => {
            let mut page = Vec::new();
            clap_mangen::Man::new(<Cli as clap::CommandFactory>::command())
                .render(&mut page)
                .map_err(|e| Error::Output(format!("cannot render the man page: {e}")))
                .and_then(|()| print_bytes(&page))
        }
    };
    match outcome {
        Ok(exit) => exit as i32,
        Err(e) => {
            eprintln!(
                "scrapemeter: error: {}",
                crate::engine::text::terminal_safe(&e.to_string())
            );
            e.exit() as i32
        }
    }
}
