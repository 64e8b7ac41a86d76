//! `scrapemeter map`: reads access logs (one shard of them) into Parquet partials, for
//! `reduce` ([`crate::store::partials`] holds the file format).

use crate::app::cli::{
    discover_inputs, resolve, strict_exit, thread_pool, BadInputArgs, InputArgs, PolicyArgs,
};
use crate::app::error::{Error, Exit};
use crate::input::reader::{judge_inputs, warn_inputs};
use crate::store::partials::{write_partials, Judged, ReadSettings, SettingsInfo, DEFAULT_BUCKETS};
use clap::Args;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, Args)]
#[command(
    mut_arg("threshold", |a| a.hide(true)),
    mut_arg("window", |a| a.hide(true)),
    mut_arg("rate", |a| a.hide(true)),
    mut_arg("per", |a| a.hide(true)),
    mut_arg("rounding", |a| a.hide(true)),
    mut_arg("mode", |a| a.hide(true))
)]
pub struct MapArgs {
    /// Logs and how to read them, exactly as for `scan`.
    #[command(flatten)]
    pub input: InputArgs,

    /// Folder the partials are written to (created if missing).
    #[arg(long, short, value_name = "DIR", required = true)]
    pub out: Option<PathBuf>,

    /// Name of this shard (letters, digits, `.`, `_`, `-`); part of each file's name.
    /// Default: the first 16 hex digits of SHA-256 over the inputs' SHA-256s.
    #[arg(long, value_name = "ID")]
    pub shard: Option<String>,

    /// How many buckets clients are spread over (default: 256); every shard of one run
    /// must use the same number.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_BUCKETS, hide_default_value = true)]
    pub buckets: u32,

    #[command(flatten)]
    pub bad: BadInputArgs,

    /// Print nothing on stdout but errors (and no progress on stderr).
    #[arg(long, short)]
    pub quiet: bool,

    /// The billing policy belongs to `reduce`: these hidden flags are here only to say so.
    #[command(flatten)]
    pub policy: PolicyArgs,
}

fn valid_shard(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
        && !s.starts_with('.')
}

/// Runs `map`.
pub fn run(args: MapArgs) -> Result<Exit, Error> {
    let started = Instant::now();
    let MapArgs {
        input,
        out,
        shard,
        buckets,
        bad,
        quiet,
        policy,
    } = args;
    if let Some(flag) = policy.first_given() {
        return Err(Error::Usage(format!(
            "{flag} is a billing policy: give it to `reduce`, not `map`"
        )));
    }
    if buckets == 0 || buckets > 100_000 {
        return Err(Error::Usage(
            "--buckets must be between 1 and 100000".into(),
        ));
    }
    if let Some(s) = &shard {
        if !valid_shard(s) {
            return Err(Error::Usage(format!("--shard '{s}': use letters, digits, '.', '_' and '-' (at most 100, not starting with '.')")));
        }
    }
    let cfg = resolve(input, policy, out.unwrap_or_default(), |f| {
        bad.apply(f);
        f.quiet = quiet;
    })?;
    let settings = ReadSettings::of(&cfg.read);
    let info = SettingsInfo {
        judged: Some(Judged {
            strict: cfg.strict,
            strict_lines: cfg.strict_lines,
            max_malformed: cfg.max_malformed,
            allow_missing: cfg.allow_missing,
            exclude: cfg.exclude_patterns.clone(),
        }),
        ..SettingsInfo::of(&cfg.read)?
    };
    let pool = thread_pool(cfg.threads)?;
    crate::app::cli::check_out_dir(&cfg.out_dir)?;
    let discovery = discover_inputs(&cfg)?;
    let progress = crate::app::progress::start(&discovery.inputs, cfg.quiet);
    let mut output = pool.install(|| {
        crate::input::reader::scan_with_progress(
            &cfg.read,
            discovery,
            progress.as_ref().map(|p| p.counters()),
        )
    });
    drop(progress);
    judge_inputs(&mut output.files, cfg.max_malformed);
    warn_inputs(&output);
    let shard = shard.unwrap_or_else(|| {
        let mut h = Sha256::new();
        let mut shas: Vec<&str> = output
            .files
            .iter()
            .filter_map(|f| f.sha256.as_deref())
            .collect();
        shas.sort_unstable();
        for s in shas {
            h.update(s.as_bytes());
            h.update(b"\n");
        }
        hex::encode(h.finalize())[..16].to_string()
    });
    let aggregate = std::mem::take(&mut output.aggregate);
    let written = write_partials(
        &cfg.out_dir,
        &settings,
        &info,
        &shard,
        buckets,
        &output.files,
        &output.skipped,
        aggregate,
    )?;
    if !cfg.quiet {
        println!(
            "shard {shard}: {} clients, {} rows in {} files under {} ({:.1}s)",
            written.clients,
            written.rows,
            written.files,
            cfg.out_dir.display(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(strict_exit(&cfg, &output.files).unwrap_or(Exit::Success))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_names() {
        assert!(valid_shard("web-01.2026_10"));
        assert!(!valid_shard(""));
        assert!(!valid_shard(".hidden"));
        assert!(!valid_shard("a/b"));
    }
}
