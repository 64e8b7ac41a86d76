//! Settings, resolved once: flags over the settings file over the defaults of SPEC.md.
//!
//! Nothing downstream reads a flag; everything reads a validated [`Config`].

use crate::engine::bill::Policy;
use crate::engine::damages::{Rate, Rounding};
use crate::engine::groups::GroupBy;
use crate::engine::time::{parse_duration, parse_rfc3339, Micros};
use crate::engine::window::Mode;
use crate::engine::InvalidValue;
use crate::input::client::{ClientKind, Keyer};
use crate::input::format::{FieldSet, FormatChoice, JsonFields};
use crate::input::orgs::{Orgs, OrgsError};
use crate::input::post_weight::Weigher;
use crate::input::rules::{RuleSet, RulesError};
use crate::input::spec::ReadSpec;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why the settings cannot be resolved (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read settings file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid settings file {}: {source}", path.display())]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error(transparent)]
    Rules(#[from] RulesError),
    #[error(transparent)]
    Orgs(#[from] OrgsError),
    /// A flag or setting with a value that is not valid; the message names it.
    #[error("{0}")]
    Invalid(String),
}

impl From<InvalidValue> for SettingsError {
    fn from(e: InvalidValue) -> Self {
        SettingsError::Invalid(e.0)
    }
}

/// Everything a run needs to know, validated: how to read ([`ReadSpec`]), how to bill
/// ([`Policy`]), and the run's own settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Paths, directories, globs or `-`, as given.
    pub inputs: Vec<String>,
    pub out_dir: PathBuf,
    pub read: ReadSpec,
    pub policy: Policy,
    pub threads: usize,
    /// Fail (exit 1) when an input is bad (`--strict`).
    pub strict: bool,
    /// Fail (exit 1) on any malformed line too (`--strict-lines`).
    pub strict_lines: bool,
    /// Go on without a path that does not exist or a glob that matches nothing
    /// (`--allow-missing`); else that is a usage error.
    pub allow_missing: bool,
    /// The share of a file's request lines that may be malformed before it is a bad
    /// input (`--max-malformed`, default 0.01).
    pub max_malformed: f64,
    /// `--exclude` globs, compiled, and as given.
    pub exclude: Option<globset::GlobSet>,
    pub exclude_patterns: Vec<String>,
    /// Whether `strict`, `strict_lines`, `max_malformed`, `allow_missing` and
    /// `exclude_patterns` say how the inputs were judged: false for a reduce whose
    /// partials do not all say the same (written before they kept it, or by `map` runs
    /// that judged differently); report.json then writes them as null.
    pub judging_known: bool,
    pub quiet: bool,
    /// Read the logs a second time ([`crate::input::second_read`]): the raw lines of
    /// each billed window's first and last request, the reported clients' top paths
    /// and user agents, and organisations' members.
    pub evidence: bool,
    /// Folder of the nightly state (`--state`), if any.
    pub state: Option<PathBuf>,
    /// How long after the newest request the data is taken as complete (`--lateness`).
    pub lateness: Micros,
    /// Start the state afresh (`--state-reset`).
    pub state_reset: bool,
    /// The file whose bytes sign the ledger's entries (`--ledger-key`, with a state).
    pub ledger_key: Option<PathBuf>,
    /// What the clients counted may hold in memory before the scan spills them to
    /// disk (`--memory-limit`; default: [`DEFAULT_MEMORY_SHARE`] of the machine's or
    /// the cgroup's memory).
    pub memory_limit: MemoryLimit,
}

/// `--memory-limit`, and where it came from (for messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLimit {
    pub bytes: u64,
    /// True when it is the default share of the memory available.
    pub default: bool,
}

/// The settings file (TOML): the same settings as the flags, all optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsFile {
    pub format: Option<String>,
    pub client: Option<String>,
    #[serde(alias = "subnet-v4")]
    pub subnet_v4: Option<u8>,
    #[serde(alias = "subnet-v6")]
    pub subnet_v6: Option<u8>,
    pub threshold: Option<u64>,
    pub window: Option<String>,
    /// A string ("15000.50") keeps every decimal exact; integers are accepted too.
    pub rate: Option<toml::Value>,
    pub per: Option<u64>,
    pub rounding: Option<String>,
    pub mode: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub threads: Option<usize>,
    pub strict: Option<bool>,
    #[serde(alias = "strict-lines")]
    pub strict_lines: Option<bool>,
    #[serde(alias = "allow-missing")]
    pub allow_missing: Option<bool>,
    #[serde(alias = "max-malformed")]
    pub max_malformed: Option<f64>,
    /// Globs of files and folders to leave out of folders and globs (`--exclude`).
    pub exclude: Option<Vec<String>>,
    pub rules: Option<PathBuf>,
    pub orgs: Option<PathBuf>,
    /// Field paths for JSON lines: `[json]` with `time`, `client`, `method`, `uri`,
    /// `request`, `status`, `user`, `user_agent`, `host`.
    pub json: Option<JsonFields>,
    /// Folder of the nightly state (relative to the settings file's folder).
    pub state: Option<PathBuf>,
    pub lateness: Option<String>,
    /// `--ledger-key` (relative to the settings file's folder).
    #[serde(alias = "ledger-key")]
    pub ledger_key: Option<PathBuf>,
    /// `--memory-limit` (a size: "4G").
    #[serde(alias = "memory-limit")]
    pub memory_limit: Option<String>,
}

impl SettingsFile {
    pub fn load(path: &Path) -> Result<Self, SettingsError> {
        let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut file: SettingsFile =
            toml::from_str(&text).map_err(|source| SettingsError::Parse {
                path: path.to_path_buf(),
                source,
            })?;
        // Files named in the settings file are relative to its folder.
        if let Some(dir) = path.parent() {
            file.rules = file.rules.map(|p| dir.join(p));
            file.orgs = file.orgs.map(|p| dir.join(p));
            file.state = file.state.map(|p| dir.join(p));
            file.ledger_key = file.ledger_key.map(|p| dir.join(p));
        }
        Ok(file)
    }
}

/// The raw settings from flags (all optional), before defaults.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub format: Option<String>,
    pub client: Option<String>,
    pub subnet_v4: Option<u8>,
    pub subnet_v6: Option<u8>,
    pub threshold: Option<u64>,
    pub window: Option<String>,
    pub rate: Option<String>,
    pub per: Option<u64>,
    pub rounding: Option<String>,
    pub mode: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub threads: Option<usize>,
    pub strict: bool,
    pub strict_lines: bool,
    pub allow_missing: bool,
    pub max_malformed: Option<f64>,
    /// Added to the settings file's list.
    pub exclude: Vec<String>,
    pub quiet: bool,
    pub no_evidence: bool,
    pub rules: Option<PathBuf>,
    pub orgs: Option<PathBuf>,
    pub state: Option<PathBuf>,
    pub lateness: Option<String>,
    pub state_reset: bool,
    pub ledger_key: Option<PathBuf>,
    /// `scan --also-by` values (each may be a comma list); a flag only, not a setting
    /// of the settings file (which `explain` and `map` read too).
    pub also_by: Vec<String>,
    pub memory_limit: Option<String>,
}

pub const DEFAULT_THRESHOLD: u64 = 1_000_000;
/// The default `--lateness`: servers in every time zone (UTC−12 to UTC+14) that rotate
/// their logs at local midnight are 26 hours apart at most, so a night's files from
/// all of them make no request late, and neither does a server whose first file shows
/// up a night after the others.
pub const DEFAULT_LATENESS: Micros = 26 * 3_600 * crate::engine::time::MICROS_PER_SEC;
pub const DEFAULT_RATE: &str = "15000";
pub const DEFAULT_PER: u64 = 1_000_000;
pub const DEFAULT_MAX_MALFORMED: f64 = 0.01;

fn rfc3339(name: &str, s: &str) -> Result<Micros, SettingsError> {
    parse_rfc3339(s.trim().as_bytes()).ok_or_else(|| {
        SettingsError::Invalid(format!(
            "--{name} '{s}' is not an RFC 3339 time (e.g. 2026-10-10T00:00:00Z)"
        ))
    })
}

/// The default `--memory-limit`, as a fraction of the memory available (the smaller of
/// the machine's and the cgroup's limit): half, leaving the other half for everything
/// that does not grow with clients (buffers, the reports) and for the system.
pub const DEFAULT_MEMORY_SHARE: (u64, u64) = (1, 2);

/// Memory available to this process: the machine's (`MemTotal` of `/proc/meminfo`), or
/// less when a cgroup (v2 `memory.max` of this process's cgroup or any parent, or v1
/// `memory.limit_in_bytes`) says so. `None` where none of these can be read.
pub fn memory_available() -> Option<u64> {
    let read = |p: &str| std::fs::read_to_string(p).ok();
    let machine = read("/proc/meminfo").and_then(|m| {
        m.lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().strip_suffix("kB"))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
    });
    let mut limits: Vec<u64> = machine.into_iter().collect();
    // cgroup v2: "0::/some/path"; every folder from there up to the root may set one.
    if let Some(cg) = read("/proc/self/cgroup") {
        if let Some(path) = cg.lines().find_map(|l| l.strip_prefix("0::")) {
            let mut dir =
                std::path::PathBuf::from("/sys/fs/cgroup").join(path.trim_start_matches('/'));
            loop {
                if let Some(v) = read(&dir.join("memory.max").to_string_lossy()) {
                    limits.extend(v.trim().parse::<u64>().ok());
                }
                if !dir.pop() || !dir.starts_with("/sys/fs/cgroup") {
                    break;
                }
            }
        }
    }
    // cgroup v1 (no limit reads as a number near 2^63).
    if let Some(v) = read("/sys/fs/cgroup/memory/memory.limit_in_bytes") {
        limits.extend(v.trim().parse::<u64>().ok().filter(|&b| b < 1 << 60));
    }
    limits.into_iter().min()
}

/// A size in bytes: a number with an optional unit, `K`, `M`, `G`, `T` (powers of 1024;
/// `KiB`, `MB`, `GB`… read the same), e.g. `512M`, `1.5G`, `4000000000`. (A few lines,
/// like `parse_duration`: no crate in the tree parses sizes.)
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        u => return Err(format!("unknown unit '{u}' in size '{s}' (use K, M, G, T)")),
    };
    let n: f64 = number
        .parse()
        .map_err(|_| format!("'{s}' is not a size (e.g. 512M, 2G)"))?;
    let bytes = n * (1u64 << shift) as f64;
    if !(bytes >= 1.0 && bytes < 2f64.powi(63)) {
        return Err(format!("size '{s}' is out of range (at least 1 byte)"));
    }
    Ok(bytes as u64)
}

/// `--threads` is capped at this many per core (with a warning).
pub const MAX_THREADS_PER_CORE: usize = 4;

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl Config {
    /// Flags win over the settings file, which wins over the defaults.
    pub fn resolve(
        inputs: Vec<String>,
        out_dir: PathBuf,
        flags: Overrides,
        file: SettingsFile,
    ) -> Result<Config, SettingsError> {
        if inputs.is_empty() {
            return Err(SettingsError::Invalid(
                "no input paths given (use - to read standard input)".into(),
            ));
        }
        let format: FormatChoice = flags
            .format
            .or(file.format)
            .unwrap_or_else(|| "auto".into())
            .parse()?;
        let subnet_v4 = flags.subnet_v4.or(file.subnet_v4).unwrap_or(24);
        let subnet_v6 = flags.subnet_v6.or(file.subnet_v6).unwrap_or(64);
        let client = ClientKind::parse(
            &flags.client.or(file.client).unwrap_or_else(|| "ip".into()),
            subnet_v4,
            subnet_v6,
        )?;
        let window = parse_duration(&flags.window.or(file.window).unwrap_or_else(|| "24h".into()))
            .map_err(|e| SettingsError::Invalid(format!("--window: {e}")))?;
        let rate_text = match (flags.rate, file.rate) {
            (Some(r), _) => r,
            (None, Some(toml::Value::String(s))) => s,
            (None, Some(toml::Value::Integer(i))) => i.to_string(),
            (None, Some(toml::Value::Float(f))) => f.to_string(),
            (None, Some(other)) => {
                return Err(SettingsError::Invalid(format!(
                    "rate: expected a decimal, got {other}"
                )))
            }
            (None, None) => DEFAULT_RATE.into(),
        };
        let rate: Rate = rate_text
            .trim()
            .parse()
            .map_err(|e| SettingsError::Invalid(format!("--rate: {e}")))?;
        let per = flags.per.or(file.per).unwrap_or(DEFAULT_PER);
        if per == 0 {
            return Err(SettingsError::Invalid("--per must be at least 1".into()));
        }
        let rounding: Rounding = flags
            .rounding
            .or(file.rounding)
            .unwrap_or_else(|| "pro-rata".into())
            .parse()?;
        let mode: Mode = flags
            .mode
            .or(file.mode)
            .unwrap_or_else(|| "rolling".into())
            .parse()?;
        let since = flags
            .since
            .or(file.since)
            .map(|s| rfc3339("since", &s))
            .transpose()?;
        let until = flags
            .until
            .or(file.until)
            .map(|s| rfc3339("until", &s))
            .transpose()?;
        if let (Some(s), Some(u)) = (since, until) {
            if s >= u {
                return Err(SettingsError::Invalid(
                    "--since must be before --until".into(),
                ));
            }
        }
        let threads = match flags.threads.or(file.threads) {
            Some(0) => {
                return Err(SettingsError::Invalid(
                    "--threads must be at least 1".into(),
                ))
            }
            Some(n) => {
                // More threads than this only cost time (thread start-up, contention):
                // `--threads 100000` once took minutes on a 573-line file.
                let cap = MAX_THREADS_PER_CORE * cores();
                if n > cap {
                    eprintln!(
                        "scrapemeter: warning: --threads {n} is more than {MAX_THREADS_PER_CORE} per core; using {cap}"
                    );
                }
                n.min(cap)
            }
            None => cores(),
        };
        let lateness = match flags.lateness.or(file.lateness) {
            None => DEFAULT_LATENESS,
            Some(s) if matches!(s.trim(), "0" | "0s") => 0,
            Some(s) => parse_duration(&s)
                .map_err(|e| SettingsError::Invalid(format!("--lateness: {e}")))?,
        };
        let memory_limit = match flags.memory_limit.or(file.memory_limit) {
            Some(s) => MemoryLimit {
                bytes: parse_size(&s)
                    .map_err(|e| SettingsError::Invalid(format!("--memory-limit: {e}")))?,
                default: false,
            },
            None => MemoryLimit {
                // Where no limit can be read, 8 GiB.
                bytes: memory_available().unwrap_or(16 << 30) / DEFAULT_MEMORY_SHARE.1
                    * DEFAULT_MEMORY_SHARE.0,
                default: true,
            },
        };
        let max_malformed = flags
            .max_malformed
            .or(file.max_malformed)
            .unwrap_or(DEFAULT_MAX_MALFORMED);
        if !(0.0..=1.0).contains(&max_malformed) {
            return Err(SettingsError::Invalid(format!(
                "--max-malformed {max_malformed}: give a ratio from 0 to 1 (0.01 is 1%)"
            )));
        }
        let exclude_patterns: Vec<String> = file
            .exclude
            .unwrap_or_default()
            .into_iter()
            .chain(flags.exclude)
            .collect();
        let exclude = if exclude_patterns.is_empty() {
            None
        } else {
            let mut set = globset::GlobSetBuilder::new();
            for p in &exclude_patterns {
                set.add(
                    globset::Glob::new(p)
                        .map_err(|e| SettingsError::Invalid(format!("--exclude '{p}': {e}")))?,
                );
            }
            Some(
                set.build()
                    .map_err(|e| SettingsError::Invalid(format!("--exclude: {e}")))?,
            )
        };
        let state = flags.state.or(file.state);
        if flags.state_reset && state.is_none() {
            return Err(SettingsError::Invalid(
                "--state-reset needs --state DIR".into(),
            ));
        }
        let ledger_key = flags.ledger_key.or(file.ledger_key);
        if ledger_key.is_some() && state.is_none() {
            return Err(SettingsError::Invalid(
                "--ledger-key needs --state DIR (it signs the state's ledger)".into(),
            ));
        }
        let also_by = also_by(
            flags.also_by,
            &client,
            (subnet_v4, subnet_v6),
            state.is_some(),
        )?;
        let mut fields = FieldSet::default();
        let mut keyer = Keyer::new(client.clone(), &mut fields);
        if let Some(p) = flags.orgs.or(file.orgs) {
            keyer.orgs = Some(Arc::new(Orgs::load(&p)?));
        }
        let weigher = match flags.rules.or(file.rules) {
            Some(p) => Weigher::Rules(Arc::new(RuleSet::load(&p, &mut fields)?)),
            None => Weigher::Default,
        };
        Ok(Config {
            inputs,
            out_dir,
            read: ReadSpec {
                format,
                json: file.json.unwrap_or_default(),
                client,
                fields,
                keyer,
                weigher,
                since,
                until,
                late_before: None,
                also_by,
                memory: None,
            },
            policy: Policy {
                threshold: flags
                    .threshold
                    .or(file.threshold)
                    .unwrap_or(DEFAULT_THRESHOLD),
                window,
                rate,
                per,
                rounding,
                mode,
            },
            threads,
            strict: flags.strict || file.strict.unwrap_or(false),
            strict_lines: flags.strict_lines || file.strict_lines.unwrap_or(false),
            allow_missing: flags.allow_missing || file.allow_missing.unwrap_or(false),
            max_malformed,
            exclude,
            exclude_patterns,
            judging_known: true,
            quiet: flags.quiet,
            evidence: !flags.no_evidence,
            state,
            lateness,
            state_reset: flags.state_reset,
            ledger_key,
            memory_limit,
        })
    }
}
/// The groupings of `--also-by` (each value a name or a comma list; duplicates once),
/// refused where they mean nothing: the grouping the client key already is, and with
/// nightly state (which carries no group series from one run to the next).
fn also_by(
    values: Vec<String>,
    client: &ClientKind,
    (v4, v6): (u8, u8),
    nightly: bool,
) -> Result<Vec<GroupBy>, SettingsError> {
    let mut out: Vec<GroupBy> = Vec::new();
    for v in values.iter().flat_map(|v| v.split(',')) {
        let by = GroupBy::parse(v, v4, v6)?;
        if by.name() == client.name() {
            return Err(SettingsError::Invalid(format!(
                "--also-by {0}: the clients are already keyed by {0} (--client {0})",
                by.name()
            )));
        }
        if !out.contains(&by) {
            out.push(by);
        }
    }
    if nightly && !out.is_empty() {
        return Err(SettingsError::Invalid(
            "--also-by does not go with --state: the nightly state carries no group series from one run to the next; run it without --state over the period to look into".into(),
        ));
    }
    Ok(out)
}

/// Settings as unit tests want them: one input `x`, reports into `out`, `flags` over
/// the defaults.
#[cfg(test)]
pub fn for_tests(flags: Overrides) -> Config {
    Config::resolve(
        vec!["x".into()],
        "out".into(),
        flags,
        SettingsFile::default(),
    )
    .expect("test settings resolve")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(flags: Overrides, file: &str) -> Result<Config, String> {
        Config::resolve(
            vec!["x".into()],
            "out".into(),
            flags,
            toml::from_str(file).map_err(|e| e.to_string())?,
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_reproduce_the_clause() {
        let c = resolve(Overrides::default(), "").unwrap();
        assert_eq!(c.policy.threshold, 1_000_000);
        assert_eq!(c.policy.window, 86_400_000_000);
        assert_eq!(c.policy.rate.micros, 15_000_000_000);
        assert_eq!(c.policy.per, 1_000_000);
        assert_eq!(
            (c.policy.rounding, c.policy.mode),
            (Rounding::ProRata, Mode::Rolling)
        );
        assert_eq!(c.read.client, ClientKind::Ip);
        assert_eq!(c.max_malformed, 0.01);
        assert!(!c.strict && !c.strict_lines && !c.allow_missing);
    }

    #[test]
    fn the_file_holds_the_input_checks() {
        let file = "max-malformed = 0.5\nallow_missing = true\nstrict-lines = true";
        let c = resolve(Overrides::default(), file).unwrap();
        assert_eq!(c.max_malformed, 0.5);
        assert!(c.allow_missing && c.strict_lines && !c.strict);
        let flags = Overrides {
            max_malformed: Some(0.0),
            ..Default::default()
        };
        assert_eq!(resolve(flags, file).unwrap().max_malformed, 0.0);
    }

    #[test]
    fn flags_override_the_file() {
        let file = "threshold = 5\nwindow = \"12h\"\nrate = \"0.5\"\nmode = \"calendar\"";
        let c = resolve(Overrides::default(), file).unwrap();
        assert_eq!(
            (c.policy.threshold, c.policy.window, c.policy.rate.micros),
            (5, 43_200_000_000, 500_000)
        );
        let flags = Overrides {
            threshold: Some(7),
            mode: Some("rolling".into()),
            ..Default::default()
        };
        let c = resolve(flags, file).unwrap();
        assert_eq!((c.policy.threshold, c.policy.mode), (7, Mode::Rolling));
    }

    #[test]
    fn bad_settings_are_refused() {
        assert!(resolve(Overrides::default(), "thresold = 5").is_err());
        for flags in [
            Overrides {
                window: Some("0s".into()),
                ..Default::default()
            },
            Overrides {
                rate: Some("1.1234567".into()),
                ..Default::default()
            },
            Overrides {
                per: Some(0),
                ..Default::default()
            },
            Overrides {
                since: Some("yesterday".into()),
                ..Default::default()
            },
            Overrides {
                client: Some("field:".into()),
                ..Default::default()
            },
            Overrides {
                rules: Some("/nonexistent/r.toml".into()),
                ..Default::default()
            },
            Overrides {
                orgs: Some("/nonexistent/orgs.csv".into()),
                ..Default::default()
            },
            Overrides {
                max_malformed: Some(1.5),
                ..Default::default()
            },
        ] {
            assert!(resolve(flags.clone(), "").is_err(), "{flags:?}");
        }
    }
}
