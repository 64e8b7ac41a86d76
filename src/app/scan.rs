//! `scrapemeter scan`: the main job. Read the logs, bill every client through the
//! engine (continuing the nightly state with `--state`), find the evidence, and write
//! the reports (and the new state) all at once.

use crate::app::cli::{
    check_out_dir, discover_inputs, now_rfc3339, resolve, strict_exit, thread_pool, BadInputArgs,
    InputArgs, PolicyArgs,
};
use crate::app::error::{Error, Exit};
use crate::config::Config;
use crate::engine::aggregate::Budget;
use crate::engine::bill::{analyze, analyze_stream, analyze_with_leads, SortedClients};
use crate::engine::groups::{find_leads, GroupLeads, Groups};
use crate::input::reader::{judge_inputs, scan_recording, warn_inputs, FileReport};
use crate::report::summary::thousands;
use crate::report::{self, ReportInput, RunInfo};
use crate::store::nightly;
use crate::store::spill::{self, SpillDir};
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;
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

    #[command(flatten)]
    pub bad: BadInputArgs,

    /// Skip the second read of the logs (faster): it finds the raw log lines of each
    /// billed window's first and last request, each reported client's top paths and
    /// user agents, the spellings its key was logged as, its requests and posts by
    /// status class and by rule and, with --orgs, each organisation's top member keys.
    /// Without it, the evidence fields of report.json stay empty and the rest is left out.
    #[arg(long)]
    pub no_evidence: bool,

    /// Print nothing on stdout but errors (and no progress on stderr).
    #[arg(long, short)]
    pub quiet: bool,

    /// Nightly state folder: carries the trailing buckets, the windows already billed
    /// final, the inputs already read and the watermark from one run to the next.
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,

    /// How long the slowest input's logs may lag (default: 26h, every time zone rotating
    /// at local midnight): the watermark is the oldest of the inputs' newest requests minus this.
    #[arg(long, value_name = "DURATION")]
    pub lateness: Option<String>,

    /// Start the nightly state afresh (after a change of settings, or a damaged state).
    #[arg(long)]
    pub state_reset: bool,

    /// A secret key file (with --state): each ledger entry is signed with an
    /// HMAC-SHA256 under the file's bytes, and the next run given the key refuses a
    /// ledger whose signatures do not match. See the README's ledger section.
    #[arg(long, value_name = "FILE")]
    pub ledger_key: Option<PathBuf>,

    /// Progress on stderr (default: auto, a bar on a terminal): on (`--progress` alone: a
    /// bar on a terminal, else one line per input read), plain (one line per input read,
    /// for cron logs), none.
    #[arg(long, value_name = "WHEN", value_enum, num_args = 0..=1, default_missing_value = "on", hide_default_value = true, hide_possible_values = true)]
    pub progress: Option<crate::app::progress::ProgressMode>,

    /// Also group the requests by network (subnet: IPv4 /24 and IPv6 /64, or as
    /// --subnet-v4/--subnet-v6 say) or by user agent (ua), and list the groups whose
    /// combined posts breach while none of their clients does on its own: possible
    /// evasion leads, for investigation, never billed. Repeatable, or a comma list.
    #[arg(long, value_name = "GROUP", value_delimiter = ',', value_parser = ["subnet", "ua"])]
    pub also_by: Vec<String>,
    /// Memory the clients counted may take (e.g. 4G; default: half of the machine's or
    /// the cgroup's memory). Past it the scan spills them, sorted, to a hidden folder
    /// in --out and merges them at the end (same reports, more time). With --state, or
    /// when one client's buckets alone do not fit, or the disk is full, it stops with
    /// exit status 3 instead of being killed. See the README's "Memory".
    #[arg(long, value_name = "SIZE")]
    pub memory_limit: Option<String>,

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
            bad,
            no_evidence,
            quiet,
            state,
            lateness,
            state_reset,
            ledger_key,
            also_by,
            memory_limit,
            summary: _,
            progress: _,
        } = self;
        resolve(input, policy, out.unwrap_or_default(), |f| {
            bad.apply(f);
            f.no_evidence = no_evidence;
            f.quiet = quiet;
            f.state = state;
            f.lateness = lateness;
            f.state_reset = state_reset;
            f.ledger_key = ledger_key;
            f.also_by = also_by;
            f.memory_limit = memory_limit;
        })
    }
}

/// Runs `scan`.
pub fn run(args: ScanArgs) -> Result<Exit, Error> {
    let json_summary = args.summary.as_deref() == Some("json");
    let progress = args.progress.unwrap_or_default();
    let cfg = args.into_config()?;
    run_with(&cfg, json_summary, progress)
}

/// Runs a scan with resolved settings; the clock is read here, at the edge.
pub fn run_with(
    cfg: &Config,
    json_summary: bool,
    progress: crate::app::progress::ProgressMode,
) -> Result<Exit, Error> {
    let started = Instant::now();
    let started_at = now_rfc3339();
    let pool = thread_pool(cfg.threads)?;
    // One writer per output folder, checked and taken before any input is read; a
    // path that does not exist is an error before anything is read too.
    check_out_dir(&cfg.out_dir)?;
    crate::app::interrupt::install(&cfg.out_dir);
    let mut discovery = discover_inputs(cfg)?;
    let _out_lock = crate::store::out_lock::lock(&cfg.out_dir, &started_at)?;
    // With nightly state: one run at a time holds the state folder, from before it
    // reads the state until it has written the new one (the lock goes with `_lock`).
    let _lock = match &cfg.state {
        Some(dir) => Some(nightly::lock(dir, &started_at)?),
        None => None,
    };
    // With nightly state: its hash-chained ledger, checked against the chain head the
    // output folder records (a state rolled back, replaced or deleted is refused).
    let mut ledger = match &cfg.state {
        Some(dir) => Some(
            crate::store::ledger::Ledger::open(
                dir,
                &cfg.out_dir,
                cfg.state_reset,
                read_ledger_key(cfg)?,
            )
            .map_err(Error::Usage)?,
        ),
        None => None,
    };
    // With nightly state: load it (refusing a damaged one), skip the inputs it has
    // read, and take the previous watermark as the edge of late data.
    let mut run_cfg = cfg.clone();
    // The clients counted keep to --memory-limit: past it they are spilled to disk,
    // into the --out folder this run holds (see store::spill).
    let spill = Arc::new(match &cfg.state {
        Some(_) => SpillDir::refusing(
            "with --state the clients are not spilled to disk (the new state is made from all of them at once): raise --memory-limit, or read the inputs over several runs".into(),
        ),
        // The leads are found among all clients at once (engine::groups).
        None if !cfg.read.also_by.is_empty() => SpillDir::refusing(
            "with --also-by the clients are not spilled to disk (the groups are found among all of them at once): raise --memory-limit, or leave out --also-by".into(),
        ),
        None => {
            spill::remove_stale(&cfg.out_dir);
            SpillDir::new(&cfg.out_dir)
        }
    });
    let budget = Budget::new(
        usize::try_from(cfg.memory_limit.bytes).unwrap_or(usize::MAX),
        Box::new(spill.clone()),
    );
    run_cfg.read.memory = Some(budget.clone());
    let mut night = match &cfg.state {
        Some(_) => Some(nightly::NightlyRun::start(&mut run_cfg, &mut discovery)?),
        None => None,
    };
    let cfg = &run_cfg;
    let record = cfg.evidence.then(|| {
        crate::input::recording::promote_after(cfg.policy.threshold, discovery.inputs.len())
    });
    let progress = crate::app::progress::start_with(&discovery.inputs, cfg.quiet, progress);
    let mut output = pool.install(|| {
        scan_recording(
            &cfg.read,
            discovery,
            progress.as_ref().map(|p| p.counters()),
            record,
        )
    });
    drop(progress);
    if let Some(why) = budget.failure() {
        return Err(Error::Output(format!(
            "the clients counted outgrew --memory-limit ({}): {why}; nothing written",
            limit_text(cfg)
        )));
    }
    judge_inputs(&mut output.files, cfg.max_malformed);
    warn_inputs(&output);
    let aggregate = std::mem::take(&mut output.aggregate);
    let late = std::mem::take(&mut output.late);
    let mut analysis = match &mut night {
        Some(run) => {
            let a = pool.install(|| run.analyze(cfg, &mut output.files, aggregate, late));
            warn_nightly(run, &output.files);
            a
        }
        None if !cfg.read.also_by.is_empty() => {
            let groups = std::mem::take(&mut output.groups);
            pool.install(|| {
                analyze_with_leads(
                    &cfg.policy,
                    aggregate,
                    &|k| cfg.read.identify(k),
                    Some(|clients: &SortedClients| leads_of(cfg, groups, clients)),
                )
            })
        }
        None if spill.runs().is_empty() => {
            pool.install(|| analyze(&cfg.policy, aggregate, &|k| cfg.read.identify(k)))
        }
        None => {
            if !cfg.quiet {
                eprintln!(
                    "scrapemeter: note: the clients counted outgrew --memory-limit ({}): {} sorted runs spilled to disk, merged client by client",
                    limit_text(cfg),
                    spill.runs().len()
                );
            }
            let analysis = pool.install(|| {
                let merged = spill::merged(&spill, aggregate.into_sorted_iter(), budget.limit())?;
                analyze_stream(&cfg.policy, merged, &|k| cfg.read.identify(k))
            });
            spill.remove();
            analysis.map_err(|e| Error::Output(format!("{e}; nothing written")))?
        }
    };
    analysis.check()?;
    if cfg.evidence {
        let earlier = night
            .as_ref()
            .map(|r| r.earlier_inputs())
            .unwrap_or_default();
        let notes = pool.install(|| {
            crate::input::second_read::attach(&cfg.read, &output, &earlier, &mut analysis)
        });
        for n in notes {
            eprintln!(
                "scrapemeter: note: {}",
                crate::engine::text::terminal_safe(&n)
            );
        }
    }
    let mut state_files = Vec::new();
    let mut head = None;
    if let Some(run) = night.as_mut() {
        let (dir, bytes) = run.finish(&analysis);
        if let Some(l) = ledger.as_mut() {
            let (files, h) = l.append(run.nightly.run, &bytes, &started_at);
            state_files.extend(files);
            run.nightly.ledger_head = Some(h.clone());
            head = Some(h);
        }
        state_files.push((dir, nightly::FILE_NAME, bytes));
    }
    let input = ReportInput::new(
        cfg,
        &output.files,
        &output.skipped,
        &analysis,
        night.as_ref().map(|r| &r.nightly),
        RunInfo::now(
            started,
            started_at,
            cfg.threads,
            crate::app::cli::command_line(),
        ),
    );
    // The state is committed last, with the reports: all of them or none. Ctrl-C
    // meanwhile waits for the commit to end.
    let (written, interrupted) =
        crate::app::interrupt::while_committing(|| report::write_all_with(&input, state_files));
    if let Err(e) = written {
        return Err(Error::Output(format!(
            "{e}; no report and no state was changed"
        )));
    }
    if interrupted {
        eprintln!(
            "scrapemeter: interrupted: the reports{} were written in full to {}",
            if cfg.state.is_some() {
                " and the state"
            } else {
                ""
            },
            crate::engine::text::terminal_safe(&cfg.out_dir.display().to_string())
        );
        return Ok(Exit::Interrupted);
    }
    if !cfg.quiet && json_summary {
        println!("{}", report::summary::render_json(&input));
    } else if !cfg.quiet {
        print!("{}", report::summary::render(&input));
        if let Some(h) = &head {
            println!("ledger: run {}, chain head {}", h.run, h.head);
        }
        println!("reports written to {}", cfg.out_dir.display());
    }
    if let Some(exit) = strict_exit(cfg, &output.files) {
        return Ok(exit);
    }
    if night.as_ref().is_some_and(|r| r.nightly.late_requests > 0) {
        return Ok(Exit::LateData);
    }
    Ok(Exit::Success)
}

/// `--also-by` (never with nightly state): each group billed as if it were one client,
/// the members of those that breach billed on their own, from every client (sorted by
/// key) before the clients are billed; what cannot be grouped is said on stderr.
fn leads_of(cfg: &Config, groups: Groups, clients: &SortedClients) -> Vec<GroupLeads> {
    let leads = find_leads(
        &cfg.policy,
        &cfg.read.also_by,
        groups,
        clients,
        &|k| cfg.read.identify(k),
        &crate::input::spec::group_of_client_key,
    );
    for g in &leads {
        for r in &g.refused {
            eprintln!(
                "scrapemeter: warning: --also-by {}: {}",
                g.by.name(),
                crate::engine::text::terminal_safe(r)
            );
        }
    }
    leads
}

/// The bytes of `--ledger-key`'s file, if given (an empty key signs nothing).
fn read_ledger_key(cfg: &Config) -> Result<Option<Vec<u8>>, Error> {
    let Some(path) = &cfg.ledger_key else {
        return Ok(None);
    };
    let shown = crate::engine::text::terminal_safe(&path.display().to_string()).into_owned();
    match std::fs::read(path) {
        Ok(key) if key.is_empty() => Err(Error::Usage(format!("--ledger-key {shown} is empty"))),
        Ok(key) => Ok(Some(key)),
        Err(e) => Err(Error::Usage(format!(
            "cannot read --ledger-key {shown}: {e}"
        ))),
    }
}

/// `--memory-limit` as the messages give it.
fn limit_text(cfg: &Config) -> String {
    let l = cfg.memory_limit;
    format!(
        "{}{}",
        crate::engine::text::human_size(l.bytes),
        if l.default {
            ", the default: half of the memory available"
        } else {
            ""
        }
    )
}

/// Late requests and inputs that changed since an earlier run are never silent.
fn warn_nightly(run: &nightly::NightlyRun, files: &[FileReport]) {
    let n = &run.nightly;
    let watermark = run
        .prev
        .watermark
        .map(crate::engine::time::format_rfc3339)
        .unwrap_or_default();
    for f in files {
        let l = f.late_counts();
        if l.requests > 0 {
            eprintln!(
                "scrapemeter: warning: {}: {} late requests ({} posts, {} to {}) before the watermark {watermark}: counted, not billed",
                crate::engine::text::terminal_safe(&f.path),
                thousands(l.requests),
                thousands(l.posts),
                crate::engine::time::format_rfc3339(l.earliest),
                crate::engine::time::format_rfc3339(l.latest),
            );
        }
    }
    if n.late_requests > 0 {
        let clients: Vec<String> = n
            .late_clients
            .iter()
            .take(5)
            .map(|c| format!("{} ({} posts)", c.client, thousands(c.posts)))
            .collect();
        let more = n.late_clients.len().saturating_sub(clients.len());
        eprintln!(
            "scrapemeter: warning: {} late requests, {} posts not billed, up to {} before the watermark; clients: {}{}; a --lateness of {} would have covered them (exit status 4)",
            thousands(n.late_requests),
            thousands(n.late_posts),
            n.late_by.as_deref().unwrap_or("0s"),
            if clients.is_empty() { "none with a key".to_string() } else { crate::engine::text::terminal_safe(&clients.join(", ")).into_owned() },
            if more > 0 { format!(" and {more} more") } else { String::new() },
            n.lateness_needed.as_deref().unwrap_or("?"),
        );
    }
    for c in &n.changed_inputs {
        eprintln!(
            "scrapemeter: warning: {}: content changed since run {} read it (SHA-256 was {}, now {}); read again",
            crate::engine::text::terminal_safe(&c.path),
            c.earlier_run,
            c.earlier_sha256,
            c.sha256
        );
    }
}
