//! Reports: one file per writer, all written atomically into the output folder.
//!
//! Every writer renders into memory first; only when all are rendered are they
//! written to temporary files beside their targets, synced, and renamed into place.
//! A failure leaves no half-written report behind.

pub mod clients;
pub mod html;
pub mod json;
pub mod summary;
pub mod violations;

use crate::config::Config;
use crate::engine::bill::Analysis;
use crate::input::discover::Skipped;
use crate::input::reader::FileReport;
use crate::store::nightly::Nightly;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The reports (or a file committed with them) could not be written; nothing
/// half-written is left. The message names the path and the reason.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct WriteError(pub String);

/// Run-time facts: the only part of the reports that differs between equal runs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunInfo {
    pub version: &'static str,
    pub started_at: String,
    pub elapsed_seconds: f64,
    pub threads: usize,
    /// The command line of the run, word by word, as given.
    pub command_line: Vec<String>,
}

impl RunInfo {
    /// This run: the version built, when it started, its time so far (to the ms), and
    /// its command line.
    pub fn now(
        started: std::time::Instant,
        started_at: String,
        threads: usize,
        command_line: Vec<String>,
    ) -> Self {
        RunInfo {
            version: env!("CARGO_PKG_VERSION"),
            started_at,
            elapsed_seconds: (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
            threads,
            command_line,
        }
    }

    /// The command line as one line a shell reads back the same (words quoted where
    /// needed).
    pub fn command(&self) -> String {
        self.command_line
            .iter()
            .map(|w| {
                let plain = !w.is_empty()
                    && w.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@+%".contains(&b));
                if plain {
                    w.clone()
                } else {
                    format!("'{}'", w.replace('\'', "'\\''"))
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Everything the writers read.
pub struct ReportInput<'a> {
    pub cfg: &'a Config,
    /// What happened to each input, sorted by path.
    pub files: &'a [FileReport],
    /// Inputs left out (copies, inputs read by an earlier run), sorted by path.
    pub skipped: &'a [Skipped],
    pub analysis: &'a Analysis,
    /// What the nightly state carried in and out (`--state`), else `None`.
    pub nightly: Option<&'a Nightly>,
    pub run: RunInfo,
    /// The report identifier, computed once: from the CSVs as [`write_all_with`]
    /// renders them, so every report carries the id of the bytes written.
    id: OnceLock<String>,
}

impl<'a> ReportInput<'a> {
    pub fn new(
        cfg: &'a Config,
        files: &'a [FileReport],
        skipped: &'a [Skipped],
        analysis: &'a Analysis,
        nightly: Option<&'a Nightly>,
        run: RunInfo,
    ) -> Self {
        ReportInput {
            cfg,
            files,
            skipped,
            analysis,
            nightly,
            run,
            id: OnceLock::new(),
        }
    }

    /// The inputs that are bad (SPEC.md, "Exit status"), with why: every report names them.
    pub fn bad_inputs(&self) -> Vec<(&str, &str)> {
        self.files
            .iter()
            .filter_map(|f| f.bad.as_deref().map(|why| (f.path.as_str(), why)))
            .collect()
    }

    /// The report's identifier: the SHA-256 of violations.csv followed by clients.csv,
    /// so that a printed page names the CSVs it goes with (and any copy of them can be
    /// checked against it with `cat violations.csv clients.csv | sha256sum`).
    /// Rendered once per report set (the CSVs are rendered for it only when no
    /// [`write_all_with`] came first).
    pub fn id(&self) -> &str {
        self.id.get_or_init(|| {
            report_id(
                &violations::render(self).unwrap_or_default(),
                &clients::render(self).unwrap_or_default(),
            )
        })
    }
}

/// The SHA-256 of `violations` followed by `clients`, in hex.
fn report_id(violations: &[u8], clients: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(violations);
    h.update(clients);
    hex::encode(h.finalize())
}

/// Renders every report and writes them atomically into `cfg.out_dir`.
pub fn write_all(input: &ReportInput<'_>) -> Result<Vec<PathBuf>, WriteError> {
    write_all_with(input, Vec::new())
}

/// [`write_all`], with `extra` files (folder, name, bytes) committed after the
/// reports in the same all-or-nothing step: the nightly state is written only once
/// every report is in place, and if it cannot be, the reports are rolled back.
pub fn write_all_with(
    input: &ReportInput<'_>,
    extra: Vec<(PathBuf, &str, Vec<u8>)>,
) -> Result<Vec<PathBuf>, WriteError> {
    // A backstop: counts that overflow or times that cannot print are never written.
    input
        .analysis
        .check()
        .map_err(|e| WriteError(e.to_string()))?;
    let dir = input.cfg.out_dir.clone();
    let violations = violations::render(input).map_err(|e| WriteError(e.to_string()))?;
    let clients = clients::render(input).map_err(|e| WriteError(e.to_string()))?;
    // The id of these very bytes, for report.json, report.html and the summary after.
    input.id.get_or_init(|| report_id(&violations, &clients));
    let mut files: Vec<(PathBuf, &str, Vec<u8>)> = vec![
        (dir.clone(), "violations.csv", violations),
        (dir.clone(), "clients.csv", clients),
        (
            dir.clone(),
            "report.json",
            json::render(input).map_err(|e| WriteError(e.to_string()))?,
        ),
        (dir, "report.html", html::render(input)),
    ];
    files.extend(extra);
    commit(&files)
}

/// Writes each `(name, bytes)` into `dir`: all to temporary files first, then renamed.
pub fn write_atomically(dir: &Path, files: &[(&str, Vec<u8>)]) -> Result<Vec<PathBuf>, WriteError> {
    let files: Vec<(PathBuf, &str, Vec<u8>)> = files
        .iter()
        .map(|(n, b)| (dir.to_path_buf(), *n, b.clone()))
        .collect();
    commit(&files)
}

/// All or nothing: every file is written to a temporary file beside its target and
/// synced; each existing target is linked aside to a backup; then the temporary files
/// are renamed into place in order. If a rename fails, the targets already replaced
/// get their backups back (or are removed when they did not exist), so a failure
/// leaves the folders as they were. The folders are synced at the end.
fn commit(files: &[(PathBuf, &str, Vec<u8>)]) -> Result<Vec<PathBuf>, WriteError> {
    commit_files(files).map_err(WriteError)
}

fn commit_files(files: &[(PathBuf, &str, Vec<u8>)]) -> Result<Vec<PathBuf>, String> {
    for (dir, name, _) in files {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create output folder {}: {e}", dir.display()))?;
        remove_stale(dir, name);
    }
    let mut temps = Vec::new();
    for (dir, name, bytes) in files {
        let prefix = format!(".{name}.tmp");
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix);
        // A temporary file is owner-only; a report is an ordinary file (the umask decides).
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
        let mut tmp = builder
            .tempfile_in(dir)
            .map_err(|e| format!("cannot write in {}: {e}", dir.display()))?;
        tmp.write_all(bytes)
            .and_then(|_| tmp.as_file().sync_all())
            .map_err(|e| format!("cannot write {}: {e}", dir.join(name).display()))?;
        // The backup's name is unique to this run (pid and the temporary file's own
        // random suffix): two runs never share one.
        let unique = tmp
            .path()
            .file_name()
            .map(|n| n.to_string_lossy().trim_start_matches(&prefix).to_string())
            .unwrap_or_default();
        let backup = dir.join(format!(".{name}.bak-{}-{unique}", std::process::id()));
        temps.push((tmp, dir.join(name), backup));
    }
    // Backups of the targets there are: a hard link (the target stays put), or where
    // the file system has none, the target renamed aside. Never a copy: copying onto
    // a name that may be a hard link of another file would truncate that file.
    let mut backups: Vec<Option<Backup>> = Vec::new();
    for (_, target, backup) in &temps {
        let b = match std::fs::symlink_metadata(target) {
            Ok(m) if m.is_file() => {
                let made = match std::fs::hard_link(target, backup) {
                    Ok(()) => Ok(false),
                    Err(_) => std::fs::rename(target, backup).map(|_| true),
                };
                match made {
                    Ok(moved) => Some(Backup {
                        path: backup.clone(),
                        target: target.clone(),
                        moved,
                    }),
                    Err(e) => {
                        restore(&backups, &[]);
                        return Err(format!("cannot write {}: {e}", backup.display()));
                    }
                }
            }
            _ => None,
        };
        backups.push(b);
    }
    let mut written: Vec<PathBuf> = Vec::new();
    for (tmp, target, _) in temps {
        if let Err(e) = tmp.persist(&target) {
            let error = format!("cannot write {}: {}", target.display(), e.error);
            for (done, backup) in written.iter().zip(&backups) {
                if backup.is_none() {
                    let _ = std::fs::remove_file(done);
                }
            }
            restore(&backups, &written);
            return Err(error);
        }
        written.push(target);
    }
    discard(&backups);
    let mut dirs: Vec<&PathBuf> = files.iter().map(|f| &f.0).collect();
    dirs.dedup();
    for dir in dirs {
        // Best effort: some file systems cannot sync a folder.
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(written)
}

/// The old content of a target, kept aside until the new one is in place.
struct Backup {
    path: PathBuf,
    target: PathBuf,
    /// The target itself was renamed aside (no hard links here): it must go back
    /// even where its replacement was never written.
    moved: bool,
}

fn discard(backups: &[Option<Backup>]) {
    for b in backups.iter().flatten() {
        let _ = std::fs::remove_file(&b.path);
    }
}

/// Puts back every target replaced (`written`) or moved aside, then drops the rest.
fn restore(backups: &[Option<Backup>], written: &[PathBuf]) {
    for b in backups.iter().flatten() {
        if b.moved || written.contains(&b.target) {
            let _ = std::fs::rename(&b.path, &b.target);
        } else {
            let _ = std::fs::remove_file(&b.path);
        }
    }
}

/// Removes what a run killed half-way left behind: temporary files and backups of
/// `name` (its target is always in place, old or new, so they are never needed; one
/// writer at a time holds the folder, [`crate::store::out_lock`]).
fn remove_stale(dir: &Path, name: &str) {
    let (tmp, bak) = (format!(".{name}.tmp"), format!(".{name}.bak"));
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let n = e.file_name();
        let n = n.to_string_lossy();
        if n.starts_with(&tmp) || n.starts_with(&bak) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}
