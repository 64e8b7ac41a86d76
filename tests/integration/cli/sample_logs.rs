//! The bundled `sample-logs/`: what the README's first command reports.
//!
//! The figures are those documented in `docs/sample-logs.md`; the engine's arithmetic is
//! checked independently by the oracle tests, this pins the sample's story (two
//! scrapers, one straddling UTC midnight, and two broken lines).

use super::BIN;
use assert_cmd::Command;
use std::path::Path;

fn sample_dir() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/sample-logs")
}

#[test]
fn sample_logs_report_two_scrapers() {
    let out = tempfile::tempdir().unwrap();
    let run = Command::new(BIN)
        .args(["scan", sample_dir(), "--strict", "--out"])
        .arg(out.path())
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&run.get_output().stdout).to_string();
    assert!(stdout.contains("2 flagged clients"), "{stdout}");
    let violations = std::fs::read_to_string(out.path().join("violations.csv")).unwrap();
    assert_eq!(
        violations,
        "client,window,window_start,window_end,posts,requests,damages_usd\n\
         198.51.100.23,1,2026-03-02T01:40:00Z,2026-03-03T01:40:00Z,1091860,1091860,16377.90\n\
         203.0.113.77,1,2026-03-03T13:00:00Z,2026-03-04T13:00:00Z,1075492,1108676,16132.38\n"
    );
    // By hand: 15000 × 1091860 / 1000000 = 16377.90 and 15000 × 1075492 / 1000000 = 16132.38.
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(report["totals"]["files"], 8);
    assert_eq!(report["totals"]["malformed"], 2);
    assert_eq!(report["totals"]["incomplete"], 0);
    // Issue 15: two odd lines in millions are no bad input, so --strict passes (above);
    // --strict-lines still fails on them.
    assert_eq!(report["totals"]["bad"], 0);
    assert_eq!(report["bad_inputs"], serde_json::json!([]));
    let lines_out = tempfile::tempdir().unwrap();
    Command::new(BIN)
        .args([
            "scan",
            sample_dir(),
            "--strict-lines",
            "--no-evidence",
            "-q",
            "-o",
        ])
        .arg(lines_out.path())
        .assert()
        .code(1);
    assert_eq!(report["summary"]["damages_usd"], "32510.28");
    // Every input is read: gzip, zstd and plain, from two servers.
    let compressions: Vec<&str> = report["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["compression"].as_str().unwrap())
        .collect();
    for c in ["gzip", "zstd", "plain"] {
        assert!(compressions.contains(&c), "{compressions:?}");
    }
    // Each billed window has its evidence, and the lines are where they say.
    for client in report["clients"].as_array().unwrap() {
        for w in client["windows"].as_array().unwrap() {
            for edge in ["first", "last"] {
                let e = &w["evidence"][edge];
                assert!(
                    e.is_object(),
                    "{} window {} has no {edge} evidence",
                    client["client"],
                    w["window"]
                );
                assert!(Path::new(e["file"].as_str().unwrap()).exists());
            }
        }
    }
    assert!(out.path().join("report.html").exists());
}

#[test]
fn calendar_mode_misses_the_midnight_straddle() {
    let out = tempfile::tempdir().unwrap();
    Command::new(BIN)
        .args([
            "scan",
            sample_dir(),
            "--mode",
            "calendar",
            "--no-evidence",
            "-q",
            "--out",
        ])
        .arg(out.path())
        .assert()
        .success();
    let violations = std::fs::read_to_string(out.path().join("violations.csv")).unwrap();
    assert!(
        violations.contains("198.51.100.23,1,2026-03-02T00:00:00Z"),
        "{violations}"
    );
    assert!(!violations.contains("203.0.113.77"), "{violations}");
}
