//! Output faults on real file systems: a full disk and a read-only folder, on small
//! tmpfs mounts. A run that cannot write ends with exit 3 and a message naming the
//! path, and leaves the reports and the state byte for byte as they were, with no
//! temporary file behind. Mounting needs root (CAP_SYS_ADMIN): without it the tests
//! say why on stderr and pass.

use super::{posts, Fixture, BIN};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Output;

/// Mounts made by a test, unmounted (last first) when it ends, even by a panic.
pub(super) struct Mounts {
    points: Vec<PathBuf>,
}

fn mount(args: &[&str], point: &Path) -> Result<(), String> {
    let out = std::process::Command::new("mount")
        .args(args)
        .arg(point)
        .output()
        .map_err(|e| format!("cannot run mount: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "mount {} {}: {}",
            args.join(" "),
            point.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Mounts {
    /// A tmpfs of `size` at `point` (created), or `None` after saying why not.
    pub(super) fn tmpfs(point: &Path, size: &str) -> Option<Mounts> {
        std::fs::create_dir_all(point).unwrap();
        match mount(
            &["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"],
            point,
        ) {
            Ok(()) => Some(Mounts {
                points: vec![point.to_path_buf()],
            }),
            Err(e) => {
                eprintln!("skipped: cannot mount a tmpfs (root is needed): {e}");
                None
            }
        }
    }

    /// Makes `point` read-only by a read-only bind mount of itself.
    fn bind_read_only(&mut self, point: &Path) -> Result<(), String> {
        mount(&["--bind", point.to_str().unwrap()], point)?;
        self.points.push(point.to_path_buf());
        mount(&["-o", "remount,bind,ro"], point).inspect_err(|_| self.pop())
    }

    /// Undoes the last mount.
    fn pop(&mut self) {
        if let Some(p) = self.points.pop() {
            umount(&p);
        }
    }
}

fn umount(point: &Path) {
    let ok = std::process::Command::new("umount")
        .arg(point)
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        // Still busy (a child not yet reaped): detach it now, freed when idle.
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(point)
            .status();
    }
}

impl Drop for Mounts {
    fn drop(&mut self) {
        while !self.points.is_empty() {
            self.pop();
        }
    }
}

/// `scan LOG --state STATE --out OUT`.
fn run(log: &str, out: &Path, state: &Path) -> Output {
    std::process::Command::new(BIN)
        .args([
            "scan",
            log,
            "--threshold",
            "500",
            "--format",
            "combined",
            "-q",
        ])
        .arg("--out")
        .arg(out)
        .arg("--state")
        .arg(state)
        .output()
        .unwrap()
}

/// Every file of `dirs` by name (the lock file by name only: who holds it is
/// rewritten by each run), to compare before and after a failed run.
fn snapshot(dirs: &[&Path]) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    for dir in dirs {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let bytes = if p.ends_with("scrapemeter.lock") {
                Vec::new()
            } else {
                std::fs::read(&p).unwrap()
            };
            files.insert(p, bytes);
        }
    }
    files
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Two batches of one client's posts: the second changes reports and state.
fn logs(f: &Fixture) -> (String, String) {
    (
        f.file("d0.log", posts("10.0.0.1", 1, 0, 0, 700)),
        f.file("d1.log", posts("10.0.0.1", 5, 0, 0, 700)),
    )
}

/// A full disk at any point of the writing (the first report, a later one, the
/// state): exit 3 naming the file, nothing changed, nothing left behind. With room
/// again, the same run goes through.
#[test]
fn a_full_disk_changes_neither_reports_nor_state() {
    let f = Fixture::new();
    let disk = f.path("disk");
    let Some(_mounts) = Mounts::tmpfs(&disk, "2m") else {
        return;
    };
    let (d0, d1) = logs(&f);
    let (out, state) = (disk.join("out"), disk.join("state"));
    let first = run(&d0, &out, &state);
    assert!(first.status.success(), "{}", stderr(&first));
    let before = snapshot(&[&out, &state]);

    // Fill the disk to the last byte.
    let filler_path = disk.join("filler");
    let mut filler = std::fs::File::create(&filler_path).unwrap();
    let page = [0u8; 4096];
    while filler.write_all(&page).is_ok() {}
    let full = filler.metadata().unwrap().len();

    // Give back one page more each time, until the run fits.
    let mut failed_at: Vec<String> = Vec::new();
    let mut done = false;
    for pages in 0..=256u64 {
        filler
            .set_len(full.saturating_sub(pages * page.len() as u64))
            .unwrap();
        let o = run(&d1, &out, &state);
        if o.status.success() {
            done = true;
            break;
        }
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(3), "{pages} pages free: {err}");
        assert!(err.contains("No space left on device"), "{err}");
        let named = [
            "violations.csv",
            "clients.csv",
            "report.json",
            "report.html",
        ]
        .iter()
        .map(|n| out.join(n))
        .chain([
            out.join("ledger-head.json"),
            state.join("scrapemeter.ledger"),
            state.join("scrapemeter.state"),
        ])
        .find(|p| err.contains(&format!("cannot write {}:", p.display())))
        .unwrap_or_else(|| panic!("no path named: {err}"));
        failed_at.push(named.file_name().unwrap().to_string_lossy().into_owned());
        assert!(err.contains("no report and no state was changed"), "{err}");
        assert_eq!(
            snapshot(&[&out, &state]),
            before,
            "{pages} pages free: a report or the state changed, or a file was left behind"
        );
    }
    assert!(done, "the run never fitted: {failed_at:?}");
    failed_at.dedup();
    eprintln!("failed writing, as the disk had more room: {failed_at:?}");
    assert_eq!(
        failed_at.first().map(String::as_str),
        Some("violations.csv")
    );
    assert_eq!(
        failed_at.last().map(String::as_str),
        Some("scrapemeter.state"),
        "the state, written last, never was the one that did not fit"
    );
    // The run that fitted is run 2, whole, and left nothing behind either.
    let after = snapshot(&[&out, &state]);
    let names: Vec<String> = after
        .keys()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "clients.csv",
            "ledger-head.json",
            "report.html",
            "report.json",
            "violations.csv",
            "scrapemeter.ledger",
            "scrapemeter.lock",
            "scrapemeter.state"
        ]
    );
    let report: serde_json::Value =
        serde_json::from_slice(&after[&out.join("report.json")]).unwrap();
    assert_eq!(report["state"]["run"], 2);
    scrapemeter::store::nightly::decode(&after[&state.join("scrapemeter.state")]).unwrap();
}

/// A read-only reports folder (exit 3 when the reports are written), then a read-only
/// state folder (exit 3 before anything is read): the path named, nothing changed.
#[test]
fn a_read_only_folder_changes_neither_reports_nor_state() {
    let f = Fixture::new();
    let disk = f.path("disk");
    let Some(mut mounts) = Mounts::tmpfs(&disk, "2m") else {
        return;
    };
    let (d0, d1) = logs(&f);
    let (out, state) = (disk.join("out"), disk.join("state"));
    let first = run(&d0, &out, &state);
    assert!(first.status.success(), "{}", stderr(&first));
    let before = snapshot(&[&out, &state]);

    // The reports' folder read-only (root writes through chmod 0555, not through this).
    match mounts.bind_read_only(&out) {
        Ok(()) => {
            let o = run(&d1, &out, &state);
            let err = stderr(&o);
            assert_eq!(o.status.code(), Some(3), "{err}");
            assert!(
                err.contains(&format!("cannot write in {}", out.display()))
                    && err.contains("Read-only file system"),
                "{err}"
            );
            assert_eq!(snapshot(&[&out, &state]), before);
            mounts.pop();
        }
        Err(e) => eprintln!("skipped the read-only reports folder: {e}"),
    }

    // The whole disk read-only: the output folder, checked first (before the state
    // folder and before any input is read), cannot even be locked.
    if let Err(e) = mount(&["-o", "remount,ro"], &disk) {
        eprintln!("skipped the read-only state folder: {e}");
        return;
    }
    let o = run(&d1, &out, &state);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(
        err.contains(&format!(
            "cannot write in {} (the output folder)",
            out.display()
        )) && err.contains("Read-only file system"),
        "{err}"
    );
    assert_eq!(snapshot(&[&out, &state]), before);
}
