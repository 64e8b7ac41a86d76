//! `--memory-limit` (issue 16): past the limit the scan spills sorted runs to disk and
//! merges them at the end with the same reports as without; where it cannot (nightly
//! state, one client's buckets over the limit, a full disk) it stops with exit 3 and a
//! message, and writes nothing.

use super::disk_faults::Mounts;
use super::{gzip, line, Fixture, BIN};
use std::path::Path;
use std::process::Output;

/// Two gzip logs of 40,000 one-request clients between which three heavy clients post
/// about 667 times each (threshold 500), their requests spread over the whole files so
/// that every spilled run holds a part of them.
fn logs(f: &Fixture) -> Vec<String> {
    (0..2)
        .map(|part| {
            let mut text = String::new();
            for i in 0..20_000u32 {
                let s = i % 86_400;
                let t = format!(
                    "10/Oct/2026:{:02}:{:02}:{:02} +0000",
                    s / 3600,
                    s / 60 % 60,
                    s % 60
                );
                let ip = format!("10.{}.{}.{}", part, i >> 8, i & 255);
                text.push_str(&line(&ip, &t, "/post/1", 200));
                if i % 20 == 0 {
                    let heavy = format!("192.0.2.{}", i / 20 % 3);
                    text.push_str(&line(&heavy, &t, "/post/2", 200));
                }
            }
            f.file(&format!("part{part}.log.gz"), gzip(text.as_bytes()))
        })
        .collect()
}

fn scan(logs: &[String], out: &Path, more: &[&str]) -> Output {
    std::process::Command::new(BIN)
        .arg("scan")
        .args(logs)
        .args(["--threshold", "500", "--threads", "2", "--no-evidence"])
        .args(more)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// report.json without its `run` object (times, the command line).
fn report(out: &Path) -> serde_json::Value {
    let mut r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    r.as_object_mut().unwrap().remove("run");
    r
}

fn leftovers(out: &Path) -> Vec<String> {
    std::fs::read_dir(out)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_spilled_scan_writes_the_same_reports() {
    let f = Fixture::new();
    let logs = logs(&f);
    let whole = f.path("whole");
    let spilled = f.path("spilled");
    let a = scan(&logs, &whole, &[]);
    assert!(a.status.success(), "{}", stderr(&a));
    let b = scan(&logs, &spilled, &["--memory-limit", "256K"]);
    assert!(b.status.success(), "{}", stderr(&b));
    let note = stderr(&b);
    assert!(
        note.contains("outgrew --memory-limit (256.0 KiB)") && note.contains("sorted runs spilled"),
        "{note}"
    );
    for name in ["violations.csv", "clients.csv"] {
        assert_eq!(
            std::fs::read(whole.join(name)).unwrap(),
            std::fs::read(spilled.join(name)).unwrap(),
            "{name}"
        );
    }
    assert_eq!(report(&whole), report(&spilled));
    // The three heavy clients are billed, from buckets spread over every run.
    assert_eq!(report(&spilled)["summary"]["flagged_clients"], 3);
    assert_eq!(report(&spilled)["population"]["clients"], 40_003);
    assert!(leftovers(&spilled).is_empty(), "{:?}", leftovers(&spilled));
}

#[test]
fn a_limit_too_small_for_one_client_stops_with_exit_3() {
    let f = Fixture::new();
    let logs = logs(&f);
    let out = f.out();
    let o = scan(&logs, &out, &["--memory-limit", "1"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("error: client ")
            && e.contains("more than --memory-limit (1 B) allows: raise it; nothing written"),
        "{e}"
    );
    assert!(!out.join("violations.csv").exists());
    assert!(leftovers(&out).is_empty(), "{:?}", leftovers(&out));
}

#[test]
fn nightly_state_over_the_limit_stops_with_exit_3() {
    let f = Fixture::new();
    let logs = logs(&f);
    let state = f.path("state");
    let o = scan(
        &logs,
        &f.out(),
        &["--memory-limit", "64K", "--state", state.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(
            "the clients counted outgrew --memory-limit (64.0 KiB): with --state the clients are not spilled"
        ),
        "{}",
        stderr(&o)
    );
    assert!(!f.out().join("report.json").exists());
}

#[test]
fn a_full_disk_while_spilling_stops_with_exit_3() {
    let f = Fixture::new();
    let logs = logs(&f);
    let small = f.path("small");
    let Some(_mount) = Mounts::tmpfs(&small, "64k") else {
        return;
    };
    let out = small.join("out");
    let o = scan(&logs, &out, &["--memory-limit", "256K"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("outgrew --memory-limit (256.0 KiB): cannot write ")
            && e.contains("No space left on device")
            && e.contains("nothing written"),
        "{e}"
    );
    assert!(!out.join("violations.csv").exists());
    assert!(leftovers(&out).is_empty(), "{:?}", leftovers(&out));
}

#[test]
fn memory_limit_takes_sizes_and_refuses_nonsense() {
    let f = Fixture::new();
    let log = f.file(
        "a.log",
        line("10.0.0.1", "10/Oct/2026:00:00:00 +0000", "/", 200),
    );
    f.scan(&[&log, "--memory-limit", "1.5G"]).success();
    let o = f
        .scan(&[&log, "--memory-limit", "12 parsecs"])
        .get_output()
        .clone();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--memory-limit: unknown unit 'parsecs'"),
        "{}",
        stderr(&o)
    );
}
