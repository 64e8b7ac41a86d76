//! Nightly runs with `--state`: daily batches bill what one run over everything
//! bills; late data, inputs given twice and changed inputs are reported; a damaged
//! state or other settings are refused; a run killed at any moment, or one that cannot
//! write its reports, leaves the state as it was.

use super::{csv_rows, Fixture, BIN, CLIENTS_HEADER};
use assert_cmd::Command;
use std::path::Path;

const DAY: i64 = 86_400;
/// 2026-10-10T00:00:00Z
const OCT10: i64 = 1_791_590_400;
const STATE_HEADER: &str =
    "client,window,window_start,window_end,posts,requests,damages_usd,status";

/// A combined-format post line of `ip` at `epoch` seconds.
fn at(ip: &str, epoch: i64, n: i64) -> String {
    let t = chrono::DateTime::from_timestamp(epoch, 0).unwrap();
    format!(
        "{ip} - - [{}] \"GET /post/{n} HTTP/1.1\" 200 9 \"-\" \"bot/1.0\"\n",
        t.format("%d/%b/%Y:%H:%M:%S +0000")
    )
}

/// Lines of `ip`, one every `every` seconds over `[from, to)` (epoch seconds).
fn series(ip: &str, from: i64, to: i64, every: i64) -> Vec<(i64, String)> {
    (from..to)
        .step_by(every as usize)
        .map(|t| (t, at(ip, t, t)))
        .collect()
}

/// The lines of `all` inside day `d` (0 = 10 Oct 2026), in time order.
fn day(all: &[(i64, String)], d: i64) -> String {
    let (from, to) = (OCT10 + d * DAY, OCT10 + (d + 1) * DAY);
    let mut v: Vec<&(i64, String)> = all.iter().filter(|(t, _)| *t >= from && *t < to).collect();
    v.sort_by_key(|(t, _)| *t);
    v.into_iter().map(|(_, l)| l.as_str()).collect()
}

/// Four days of traffic: a breach straddling the first midnight, a steady scraper
/// over the threshold every day, and light clients.
fn traffic() -> Vec<(i64, String)> {
    let mut all = Vec::new();
    // 10.0.0.1: one post every 30 s from 20:00 on 10 Oct to 04:00 on 11 Oct (960).
    all.extend(series(
        "10.0.0.1",
        OCT10 + 20 * 3600,
        OCT10 + DAY + 4 * 3600,
        30,
    ));
    // 10.0.0.2: one post every 2 minutes for four days (720 a day).
    all.extend(series("10.0.0.2", OCT10, OCT10 + 4 * DAY, 120));
    // 2001:db8::7: a burst on day 3 only.
    all.extend(series(
        "2001:db8::7",
        OCT10 + 2 * DAY + 3600,
        OCT10 + 2 * DAY + 7200,
        5,
    ));
    // 10.0.0.3: light, every day.
    all.extend(series("10.0.0.3", OCT10 + 600, OCT10 + 4 * DAY, 3600));
    all
}

fn scan_state(
    f: &Fixture,
    state: &Path,
    paths: &[&str],
    extra: &[&str],
) -> assert_cmd::assert::Assert {
    let mut args: Vec<&str> = paths.to_vec();
    let s = state.to_str().unwrap();
    args.extend(["--state", s, "--threshold", "500", "--format", "combined"]);
    args.extend(extra);
    f.scan(&args)
}

/// violations.csv of a state run, without its status column.
fn without_status(text: &str) -> (Vec<String>, Vec<String>) {
    let rows = csv_rows(text, STATE_HEADER);
    let plain = rows.iter().map(|r| r[..7].join(",")).collect();
    let finals = rows
        .iter()
        .filter(|r| r[7] == "final")
        .map(|r| r[..7].join(","))
        .collect();
    (plain, finals)
}

#[test]
fn daily_runs_bill_what_one_run_bills() {
    let f = Fixture::new();
    let all = traffic();
    let days: Vec<String> = (0..4)
        .map(|d| f.file(&format!("day{d}.log"), day(&all, d)))
        .collect();
    // Delivered on day 3, about noon on day 1: late by then.
    let late_text: String = series("10.0.0.9", OCT10 + 12 * 3600, OCT10 + 13 * 3600, 10)
        .into_iter()
        .map(|(_, l)| l)
        .collect();
    let late = f.file("late/day0-extra.log", &late_text);
    let state = f.path("state");

    // One run over every (not late) input, without state.
    let reference = f.path("reference");
    let d: Vec<&str> = days.iter().map(String::as_str).collect();
    let mut args = d.clone();
    args.extend(["--threshold", "500", "--format", "combined"]);
    f.scan_into(&reference, &args).success();
    let one = std::fs::read_to_string(reference.join("violations.csv")).unwrap();
    let one_rows = super::csv_rows(&one, super::VIOLATIONS_HEADER);
    let one_rows: Vec<String> = one_rows.iter().map(|r| r.join(",")).collect();
    assert!(
        one_rows
            .iter()
            .any(|r| r.starts_with("10.0.0.1,1,2026-10-10T20:00:00Z,") && r.contains(",960,")),
        "the midnight breach: {one_rows:#?}"
    );

    let batches: [Vec<&str>; 4] = [vec![d[0]], vec![d[1]], vec![d[2], d[1], &late], vec![d[3]]];
    let mut finals_so_far: Vec<String> = Vec::new();
    for (i, batch) in batches.iter().enumerate() {
        // Late requests are never quiet: the run that reads them exits 4.
        let out = scan_state(&f, &state, batch, &[]).code(if i == 2 { 4 } else { 0 });
        let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        assert_eq!(i == 2, stderr.contains("late requests"), "{stderr}");
        let (rows, finals) = without_status(&f.read("violations.csv"));
        // What was final stays, unchanged, in every later run.
        for r in &finals_so_far {
            assert!(finals.contains(r), "run {}: lost final {r}", i + 1);
        }
        finals_so_far = finals;
        let r = f.report();
        assert_eq!(r["state"]["run"], i as u64 + 1);
        if i == 2 {
            // The file given again is skipped; the late one is counted, not billed.
            let skipped = r["skipped"].as_array().unwrap();
            assert_eq!(skipped.len(), 1, "{skipped:#?}");
            assert!(skipped[0]["path"].as_str().unwrap().ends_with("day1.log"));
            assert!(skipped[0]["reason"]
                .as_str()
                .unwrap()
                .contains("earlier run"));
            let li = f.input("day0-extra.log");
            assert_eq!(li["late"], 360);
            assert_eq!(li["requests"], 0);
            assert_eq!(r["state"]["late_requests"], 360);
            assert_eq!(r["state"]["late_posts"], li["late_posts"]);
            let lc = &r["state"]["late_clients"];
            assert_eq!(lc.as_array().unwrap().len(), 1, "{lc:#}");
            assert_eq!(lc[0]["client"], "10.0.0.9");
            assert_eq!(lc[0]["requests"], 360);
            assert_eq!(r["state"]["late_inputs"][0]["requests"], 360);
            let needed = r["state"]["lateness_needed"].as_str().unwrap();
            assert!(needed.contains('h') && needed != "26h", "{needed}");
            assert!(stderr.contains("10.0.0.9"), "{stderr}");
            assert!(stderr.contains("would have covered"), "{stderr}");
            let html = f.read("report.html");
            assert!(html.contains("id=\"late-clients\""), "no late section");
            assert!(html.contains("10.0.0.9"));
            assert!(!rows.iter().any(|r| r.starts_with("10.0.0.9")));
        }
        if i == 3 {
            // The last run's report is the one run's, window for window.
            assert_eq!(rows, one_rows);
            assert_eq!(
                f.read("clients.csv"),
                std::fs::read_to_string(reference.join("clients.csv")).unwrap()
            );
            // Final are exactly the windows ending by the watermark.
            let wm = r["state"]["watermark"].as_str().unwrap().to_string();
            for row in csv_rows(&f.read("violations.csv"), STATE_HEADER) {
                assert_eq!(row[7] == "final", row[3] <= wm, "{row:?} vs {wm}");
            }
        }
    }
    // The state stays small: a day of trailing buckets, a ledger (with each final
    // window's posts per minute: here 720 minutes with posts a day) and an input list.
    let size = std::fs::metadata(state.join("scrapemeter.state"))
        .unwrap()
        .len();
    assert!(size < 96 * 1024, "state of {size} bytes");
}

#[test]
fn a_damaged_or_foreign_state_is_refused_whole() {
    let f = Fixture::new();
    let log = f.file("a.log", day(&traffic(), 0));
    let state = f.path("state");
    scan_state(&f, &state, &[&log], &[]).success();
    let file = state.join("scrapemeter.state");
    let good = std::fs::read(&file).unwrap();
    let mut flipped = good.clone();
    let n = flipped.len();
    flipped[n / 2] ^= 0x20;
    let cases: [(&str, Vec<u8>); 4] = [
        ("truncated", good[..good.len() - 7].to_vec()),
        ("flipped", flipped),
        ("foreign", b"{\"watermark\": 0}\n".to_vec()),
        ("future", {
            let s = String::from_utf8(good.clone()).unwrap();
            s.replacen("scrapemeter-state 3", "scrapemeter-state 9", 1)
                .into_bytes()
        }),
    ];
    for (what, bytes) in cases {
        std::fs::write(&file, &bytes).unwrap();
        let out = scan_state(&f, &state, &[&log], &[]).code(2);
        let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        assert!(err.contains("refused"), "{what}: {err}");
        assert_eq!(
            std::fs::read(&file).unwrap(),
            bytes,
            "{what}: state changed"
        );
    }
    // --state-reset starts afresh.
    scan_state(&f, &state, &[&log], &["--state-reset"]).success();
    assert!(scrapemeter::store::nightly::decode(&std::fs::read(&file).unwrap()).is_ok());
}

#[test]
fn other_settings_are_refused_unless_reset() {
    let f = Fixture::new();
    let log = f.file("a.log", day(&traffic(), 0));
    let state = f.path("state");
    scan_state(&f, &state, &[&log], &[]).success();
    let before = std::fs::read(state.join("scrapemeter.state")).unwrap();
    let out = scan_state(&f, &state, &[&log], &["--window", "12h"]).code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("window: 24h in the state, 12h now"), "{err}");
    assert_eq!(
        std::fs::read(state.join("scrapemeter.state")).unwrap(),
        before
    );
    scan_state(&f, &state, &[&log], &["--window", "12h", "--state-reset"]).success();
    assert_eq!(f.report()["state"]["run"], 1);
}

#[test]
fn a_changed_input_is_reported_and_read_again() {
    let f = Fixture::new();
    let all = traffic();
    let state = f.path("state");
    let log = f.file("access.log.1", day(&all, 0));
    scan_state(&f, &state, &[&log], &[]).success();
    // logrotate: the same name, the next day's content.
    f.file("access.log.1", day(&all, 1));
    let out = scan_state(&f, &state, &[&log], &[]).success();
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("content changed since run 1"), "{err}");
    let r = f.report();
    assert_eq!(r["state"]["changed_inputs"][0]["earlier_run"], 1);
    assert!(f.input("access.log.1")["requests"].as_u64().unwrap() > 0);
}

#[test]
fn without_state_nothing_says_final() {
    let f = Fixture::new();
    let log = f.file("a.log", day(&traffic(), 0));
    f.scan(&[&log, "--threshold", "500"]).success();
    let r = f.report();
    assert!(r.get("state").is_none());
    assert!(r["inputs"][0].get("late").is_none());
    assert_eq!(r["clients"][0]["windows"][0]["status"], "final");
    let _ = f.violations(); // the seven fixed columns only
}

/// Exit 3 when the reports cannot be written: no report changes, nor the state.
#[test]
fn an_output_fault_changes_neither_reports_nor_state() {
    let f = Fixture::new();
    let all = traffic();
    let state = f.path("state");
    let d0 = f.file("d0.log", day(&all, 0));
    let d1 = f.file("d1.log", day(&all, 1));
    scan_state(&f, &state, &[&d0], &[]).success();
    let before_state = std::fs::read(state.join("scrapemeter.state")).unwrap();
    let before_csv = f.read("violations.csv");
    // report.html cannot be replaced: a folder has its name.
    std::fs::remove_file(f.out().join("report.html")).unwrap();
    std::fs::create_dir(f.out().join("report.html")).unwrap();
    scan_state(&f, &state, &[&d1], &[]).code(3);
    assert_eq!(
        std::fs::read(state.join("scrapemeter.state")).unwrap(),
        before_state
    );
    assert_eq!(f.read("violations.csv"), before_csv);
    let mut left: Vec<String> = std::fs::read_dir(f.out())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            "clients.csv",
            "ledger-head.json",
            "report.html",
            "report.json",
            "violations.csv"
        ]
    );
    // A folder with the name backups once had (`.scrapemeter.state.bak`) no longer
    // stops a run: each run's backups have names of their own (issue 16).
    std::fs::remove_dir(f.out().join("report.html")).unwrap();
    std::fs::create_dir(state.join(".scrapemeter.state.bak")).unwrap();
    scan_state(&f, &state, &[&d1], &[]).success();
    assert_ne!(
        std::fs::read(state.join("scrapemeter.state")).unwrap(),
        before_state
    );
    let before_csv = f.read("violations.csv");
    // A folder where the state file should be cannot be read: refused (exit 2).
    std::fs::remove_dir(state.join(".scrapemeter.state.bak")).unwrap();
    std::fs::remove_file(state.join("scrapemeter.state")).unwrap();
    std::fs::create_dir(state.join("scrapemeter.state")).unwrap();
    scan_state(&f, &state, &[&d1], &[]).code(2);
    assert_eq!(f.read("violations.csv"), before_csv);
}

/// `kill -9` at random moments of a run, many times, then a run to the end: the
/// reports are those of a run never interrupted (no post lost, none counted twice).
#[test]
fn a_run_killed_at_any_moment_leaves_a_usable_state() {
    let f = Fixture::new();
    let all = traffic();
    let mut heavy = day(&all, 1);
    // Make day 2 big enough to be killed in the middle of (43,200 more lines, 4 MB).
    for (_, l) in series("10.0.1.1", OCT10 + DAY, OCT10 + 2 * DAY, 2) {
        heavy.push_str(&l);
    }
    let d0 = f.file("d0.log", day(&all, 0));
    let d1 = f.file("d1.log", heavy);
    let d2 = f.file("d2.log", day(&all, 2));
    let reference = f.path("reference-state");
    let ref_out = f.path("reference-out");
    let run = |state: &Path, out: &Path, paths: &[&str]| {
        let mut c = std::process::Command::new(BIN);
        c.arg("scan")
            .args(paths)
            .args([
                "--threshold",
                "500",
                "--format",
                "combined",
                "-q",
                "--state",
            ])
            .arg(state)
            .arg("--out")
            .arg(out);
        c
    };
    let mut took = std::time::Duration::ZERO;
    for p in [&d0, &d1, &d2] {
        let t0 = std::time::Instant::now();
        Command::from_std(run(&reference, &ref_out, &[p]))
            .assert()
            .success();
        if p == &d1 {
            took = t0.elapsed();
        }
    }
    // Most kills land a few ms to a few hundred ms in (reading); one in four near the
    // end of the run (writing the reports and the state), or just after it.
    let took_ms = took.as_millis() as u64;

    let state = f.path("state");
    Command::from_std(run(&state, &f.out(), &[&d0]))
        .assert()
        .success();
    let mut seed: u64 = 0x5eed_1234_abcd;
    let mut outcomes = (0, 0);
    for i in 0..20 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let delay = if i % 4 == 3 {
            took_ms * 8 / 10 + (seed >> 33) % (took_ms * 3 / 10 + 1)
        } else {
            2 + (seed >> 33) % 400
        };
        let mut child = run(&state, &f.out(), &[&d1])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay));
        let _ = child.kill();
        let status = child.wait().unwrap();
        if status.success() {
            outcomes.1 += 1;
        } else {
            outcomes.0 += 1;
        }
        // Whatever the moment, the state is the old one or the new one, whole.
        let bytes = std::fs::read(state.join("scrapemeter.state")).unwrap();
        scrapemeter::store::nightly::decode(&bytes).expect("an intact state after a kill");
    }
    eprintln!(
        "a run takes {took:?}; killed {} runs, {} finished first",
        outcomes.0, outcomes.1
    );
    Command::from_std(run(&state, &f.out(), &[&d1]))
        .assert()
        .success();
    Command::from_std(run(&state, &f.out(), &[&d2]))
        .assert()
        .success();
    for name in ["violations.csv", "clients.csv"] {
        assert_eq!(
            f.read(name),
            std::fs::read_to_string(ref_out.join(name)).unwrap(),
            "{name}"
        );
    }
    let mine = f.report();
    let theirs: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ref_out.join("report.json")).unwrap())
            .unwrap();
    assert_eq!(mine["summary"], theirs["summary"]);
    let left: Vec<String> = std::fs::read_dir(f.out())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    let _ = CLIENTS_HEADER;
}

/// A second run on a state folder another run holds stops at once (exit 2), says
/// which run holds it, and changes nothing; once the lock is free it runs as usual.
#[test]
fn a_state_in_use_by_another_run_is_refused_at_once() {
    let f = Fixture::new();
    let all = traffic();
    let d0 = f.file("d0.log", day(&all, 0));
    let d1 = f.file("d1.log", day(&all, 1));
    let state = f.path("state");
    scan_state(&f, &state, &[&d0], &[]).success();
    let before_state = std::fs::read(state.join("scrapemeter.state")).unwrap();
    let before_csv = f.read("violations.csv");

    // Another run holds the lock, and has said who it is.
    let lock_path = state.join("scrapemeter.lock");
    let held = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&lock_path)
        .expect("a run leaves its lock file in the state folder");
    held.try_lock()
        .expect("no run holds the lock after it ended");
    std::fs::write(&lock_path, "pid 4242, started 2026-10-12T02:30:00Z\n").unwrap();

    let t0 = std::time::Instant::now();
    let out = scan_state(&f, &state, &[&d1], &[]).code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(20),
        "the second run waited for the lock"
    );
    assert!(
        err.contains(&format!(
            "state folder {} is in use by another run (pid 4242, started 2026-10-12T02:30:00Z)",
            state.display()
        )),
        "{err}"
    );
    assert_eq!(
        std::fs::read(state.join("scrapemeter.state")).unwrap(),
        before_state
    );
    assert_eq!(f.read("violations.csv"), before_csv);

    // A run holds the lock for as long as it runs, and says who it is.
    drop(held);
    scan_state(&f, &state, &[&d1], &[]).success();
    assert_eq!(f.report()["state"]["run"], 2);
    let said = std::fs::read_to_string(&lock_path).unwrap();
    assert!(
        said.starts_with("pid ") && said.contains(", started "),
        "{said:?}"
    );
}

/// `scan - --state DIR < day.log`.
fn scan_stdin(f: &Fixture, state: &Path, stdin: &str) -> assert_cmd::assert::Assert {
    Command::new(BIN)
        .args([
            "scan",
            "-",
            "--threshold",
            "500",
            "--format",
            "combined",
            "-q",
        ])
        .arg("--state")
        .arg(state)
        .arg("--out")
        .arg(f.out())
        .write_stdin(stdin.to_string())
        .assert()
}

/// Standard input is recorded in the state by its content: the same content again,
/// on standard input or as a file, is skipped with a note, as a file read before is.
#[test]
fn standard_input_is_recorded_and_not_read_twice() {
    use sha2::Digest;
    let f = Fixture::new();
    let all = traffic();
    let (d0, d1) = (day(&all, 0), day(&all, 1));
    let state = f.path("state");
    let inputs = || {
        let bytes = std::fs::read(state.join("scrapemeter.state")).unwrap();
        scrapemeter::store::nightly::decode(&bytes).unwrap().inputs
    };

    scan_stdin(&f, &state, &d0).success();
    let first = f.read("violations.csv");
    let recorded = inputs();
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert_eq!(recorded[0].path, "-");
    assert_eq!(recorded[0].size, d0.len() as u64);
    assert_eq!(
        recorded[0].sha256,
        hex::encode(sha2::Sha256::digest(d0.as_bytes()))
    );

    // The same content on standard input again: skipped, nothing counted twice.
    let out = scan_stdin(&f, &state, &d0).success();
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        err.contains("- skipped: already read by an earlier run (run 1, SHA-256"),
        "{err}"
    );
    let r = f.report();
    assert_eq!(r["skipped"][0]["path"], "-");
    assert_eq!(r["skipped"][0]["same_as"], "-");
    assert_eq!(r["inputs"].as_array().unwrap().len(), 0);
    assert_eq!(f.read("violations.csv"), first);

    // …and as a file.
    let copy = f.file("copy-of-day0.log", &d0);
    let out = scan_state(&f, &state, &[&copy], &[]).success();
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        err.contains("skipped: already read by an earlier run"),
        "{err}"
    );
    assert_eq!(f.report()["skipped"][0]["same_as"], "-");
    assert_eq!(f.read("violations.csv"), first);

    // New content on standard input is read (not "changed": `-` names no content).
    let out = scan_stdin(&f, &state, &d1).success();
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(!err.contains("content changed"), "{err}");
    let r = f.report();
    assert_eq!(r["state"]["run"], 4);
    assert!(r["inputs"][0]["requests"].as_u64().unwrap() > 0);
    assert_eq!(r["state"]["changed_inputs"].as_array().unwrap().len(), 0);
    let recorded = inputs();
    assert_eq!(recorded.len(), 2, "{recorded:?}");
    assert_eq!((recorded[1].path.as_str(), recorded[1].run), ("-", 4));
}
