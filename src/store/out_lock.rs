//! One writer per output folder: a run holds an exclusive lock on its `--out` folder
//! from before it reads any input until its reports are in place.
//!
//! The lock is `flock(2)` on the folder itself (the system releases it however the
//! run ends, `kill -9` included), so the folder keeps only the reports. Who holds it
//! (pid, host, start time) is written to [`HOLDER`] inside the folder while it is
//! held, for the message of a run that finds it taken, and removed on release.
//! Taking the lock also checks the folder: creatable, a folder, writable.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The file naming the run that holds an output folder (while it does).
pub const HOLDER: &str = ".scrapemeter-out.lock";

/// An output folder held; released (and its [`HOLDER`] file removed) on drop.
#[derive(Debug)]
pub struct OutLock {
    /// The locked folder, open: closing it releases the lock.
    _dir: File,
    holder: PathBuf,
    /// The folder this run created: removed on release if the run left it empty
    /// (a run refused before writing leaves no folder behind).
    created: Option<PathBuf>,
}

impl Drop for OutLock {
    fn drop(&mut self) {
        // Removed while the lock is still held, so it never names a later run.
        let _ = std::fs::remove_file(&self.holder);
        if let Some(dir) = &self.created {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Why an output folder cannot be used: the message names the folder, the reason and,
/// when another run holds it, that run.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OutError(pub String);

/// The host name, for the holder's line ("unknown" when the system does not say).
fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

/// Locks `dir` for this run (started at `started_at`), creating it if missing.
pub fn lock(dir: &Path, started_at: &str) -> Result<OutLock, OutError> {
    let shown = dir.display();
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let existed = std::fs::metadata(dir);
    if let Ok(m) = &existed {
        if !m.is_dir() {
            return Err(OutError(format!("output folder {shown} is not a folder")));
        }
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| OutError(format!("cannot create output folder {shown}: {e}")))?;
    let handle =
        File::open(dir).map_err(|e| OutError(format!("cannot open output folder {shown}: {e}")))?;
    let holder = dir.join(HOLDER);
    match handle.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            // The holder writes its line just after it takes the lock: wait a little
            // for it rather than name no one.
            let mut who = String::new();
            for _ in 0..20 {
                who = std::fs::read_to_string(&holder).unwrap_or_default();
                if who.ends_with('\n') {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            let who = match who.trim() {
                "" => "another run".to_string(),
                w => format!("another run ({w})"),
            };
            return Err(OutError(format!(
                "output folder {shown} is in use by {who}: one folder takes one run's \
                 reports at a time; wait for it to end, or use another --out folder \
                 (nothing was read or written)"
            )));
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(OutError(format!("cannot lock output folder {shown}: {e}")));
        }
    }
    let line = format!(
        "pid {}, host {}, started {started_at}\n",
        std::process::id(),
        host()
    );
    let created = existed.is_err().then(|| dir.to_path_buf());
    // Creating the holder's file is the check that the folder is writable; its line
    // is best effort (a full disk fails the run, cleanly, when it writes the reports).
    match File::create(&holder) {
        Ok(mut f) => {
            let _ = f.write_all(line.as_bytes());
        }
        Err(e) => {
            if let Some(d) = &created {
                let _ = std::fs::remove_dir(d);
            }
            return Err(OutError(format!(
                "cannot write in {shown} (the output folder): {e}"
            )));
        }
    }
    Ok(OutLock {
        _dir: handle,
        holder,
        created,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_named_in_the_refusal() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("out");
        let held = lock(&out, "2026-11-30T00:00:00Z").unwrap();
        let e = lock(&out, "later").unwrap_err().0;
        assert!(e.contains("in use by another run (pid "), "{e}");
        assert!(e.contains("started 2026-11-30T00:00:00Z"), "{e}");
        assert!(e.contains(&format!("pid {}", std::process::id())), "{e}");
        drop(held);
        assert!(!out.join(HOLDER).exists());
        let again = lock(&out, "later").unwrap();
        drop(again);
        // A file where the folder should be.
        std::fs::write(d.path().join("file"), "x").unwrap();
        let e = lock(&d.path().join("file"), "t").unwrap_err().0;
        assert!(e.contains("is not a folder"), "{e}");
    }
}
