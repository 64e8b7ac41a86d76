//! `scrapemeter map`: reads access logs (one shard of them) into Parquet partials, for
//! `reduce` ([`crate::store::partials`] holds the file format).

use crate::app::cli::{thread_pool, Exit, ScanArgs};
use crate::input::discover::discover;
use crate::input::reader::warn_inputs;
use crate::store::partials::{write_partials, MapSettings, DEFAULT_BUCKETS};
use clap::Args;
use sha2::{Digest, Sha256};
use std::time::Instant;

#[derive(Debug, Args)]
pub struct MapArgs {
    /// Logs and settings, exactly as for `scan` (--format, --client, --orgs, --rules,
    /// --since, --until, --config, …). Policy flags (--threshold, --window, --rate,
    /// --per, --rounding, --mode) belong to `reduce` and are refused here.
    #[command(flatten)]
    pub scan: ScanArgs,

    /// Name of this shard (letters, digits, `.`, `_`, `-`); part of each file's name.
    /// Default: the first 16 hex digits of SHA-256 over the inputs' SHA-256s.
    #[arg(long, value_name = "ID")]
    pub shard: Option<String>,

    /// How many buckets clients are spread over (default 256); every shard of one run
    /// must use the same number.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_BUCKETS)]
    pub buckets: u32,
}

fn valid_shard(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
        && !s.starts_with('.')
}

/// Runs `map`.
pub fn run(args: MapArgs) -> Exit {
    let started = Instant::now();
    let MapArgs {
        scan: scan_args,
        shard,
        buckets,
    } = args;
    let policy = [
        ("--threshold", scan_args.policy.threshold.is_some()),
        ("--window", scan_args.policy.window.is_some()),
        ("--rate", scan_args.policy.rate.is_some()),
        ("--per", scan_args.policy.per.is_some()),
        ("--rounding", scan_args.policy.rounding.is_some()),
        ("--mode", scan_args.policy.mode.is_some()),
    ];
    if let Some((flag, _)) = policy.iter().find(|(_, given)| *given) {
        eprintln!("scrapemeter: error: {flag} is a billing policy: give it to `reduce`, not `map`");
        return Exit::Usage;
    }
    if buckets == 0 || buckets > 100_000 {
        eprintln!("scrapemeter: error: --buckets must be between 1 and 100000");
        return Exit::Usage;
    }
    if let Some(s) = &shard {
        if !valid_shard(s) {
            eprintln!("scrapemeter: error: --shard '{s}': use letters, digits, '.', '_' and '-' (at most 100, not starting with '.')");
            return Exit::Usage;
        }
    }
    let cfg = match Box::new(scan_args).into_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("scrapemeter: error: {e}");
            return Exit::Usage;
        }
    };
    let (settings, info) = match MapSettings::of(&cfg) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("scrapemeter: error: {e}");
            return Exit::Usage;
        }
    };
    let pool = match thread_pool(cfg.threads) {
        Ok(p) => p,
        Err(exit) => return exit,
    };
    let discovery = discover(&cfg.inputs);
    let progress = crate::app::progress::start(&discovery.inputs, cfg.quiet);
    let mut output = pool.install(|| {
        crate::input::reader::scan_with_progress(
            &cfg.read,
            discovery,
            progress.as_ref().map(|p| p.counters()),
        )
    });
    drop(progress);
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
    let written = match write_partials(
        &cfg.out_dir,
        &settings,
        &info,
        &shard,
        buckets,
        &output.files,
        &output.skipped,
        aggregate,
    ) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("scrapemeter: error: {e}");
            return Exit::Output;
        }
    };
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
    if cfg.strict && output.files.iter().any(|f| f.has_problems()) {
        eprintln!("scrapemeter: --strict: some inputs were malformed, incomplete or unreadable");
        return Exit::StrictFailure;
    }
    Exit::Success
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
