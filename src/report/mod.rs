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

use crate::analyze::Analysis;
use crate::config::Config;
use crate::scan::ScanOutput;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Run-time facts: the only part of the reports that differs between equal runs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunInfo {
    pub version: &'static str,
    pub started_at: String,
    pub elapsed_seconds: f64,
    pub threads: usize,
}

/// Everything the writers read.
pub struct ReportInput<'a> {
    pub cfg: &'a Config,
    pub scan: &'a ScanOutput,
    pub analysis: &'a Analysis,
    pub run: RunInfo,
}

/// Renders every report and writes them atomically into `cfg.out_dir`.
pub fn write_all(input: &ReportInput<'_>) -> Result<Vec<PathBuf>, String> {
    let files: Vec<(&str, Vec<u8>)> = vec![
        (
            "violations.csv",
            violations::render(input).map_err(|e| e.to_string())?,
        ),
        (
            "clients.csv",
            clients::render(input).map_err(|e| e.to_string())?,
        ),
        (
            "report.json",
            json::render(input).map_err(|e| e.to_string())?,
        ),
        ("report.html", html::render(input)),
    ];
    write_atomically(&input.cfg.out_dir, &files)
}

/// Writes each `(name, bytes)` into `dir`: all to temporary files first, then renamed.
pub fn write_atomically(dir: &Path, files: &[(&str, Vec<u8>)]) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create output folder {}: {e}", dir.display()))?;
    let mut temps = Vec::new();
    for (name, bytes) in files {
        let prefix = format!(".{name}.");
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
        temps.push((tmp, dir.join(name)));
    }
    let mut written = Vec::new();
    for (tmp, target) in temps {
        tmp.persist(&target)
            .map_err(|e| format!("cannot write {}: {}", target.display(), e.error))?;
        written.push(target);
    }
    Ok(written)
}
