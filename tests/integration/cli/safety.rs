//! Issue 16: log text that could attack a spreadsheet or a terminal, one writer per
//! output folder, bounded evidence, and inputs that cannot be read twice.

use super::*;

/// With the default `--client ip`, a client field that holds no IP address is log
/// content: formula-guarded in both CSVs, whatever the format.
#[test]
fn an_ip_key_that_is_not_an_ip_is_guarded() {
    let f = Fixture::new();
    let evil = ["=cmd|'/C calc'!A0", "+1+1", "@x", "-2+3"];
    let mut json = String::new();
    let mut combined = String::new();
    for e in evil {
        json.push_str(&format!(
            "{{\"remote_addr\":{},\"time_iso8601\":\"2026-10-10T13:55:36+00:00\",\"request\":\"GET /p HTTP/1.1\",\"status\":200}}\n",
            serde_json::to_string(e).unwrap()
        ));
        // The combined host field ends at a space.
        let host = e.replace(' ', "");
        combined.push_str(&line(&host, "10/Oct/2026:13:55:36 +0000", "/p", 200));
    }
    for (name, text, format) in [("a.json", json, "json"), ("b.log", combined, "combined")] {
        let log = f.file(name, text);
        f.scan(&[&log, "--threshold", "0", "--format", format])
            .success();
        let v = f.violations();
        let c = f.clients();
        assert_eq!(v.len(), evil.len(), "{format}: {v:?}");
        for rows in [&v, &c] {
            for r in rows.iter() {
                assert!(r[0].starts_with('\''), "{format}: unguarded {:?}", r[0]);
            }
        }
        let cells: Vec<&str> = c.iter().map(|r| r[0].as_str()).collect();
        for e in evil {
            let e = if format == "json" {
                e.to_string()
            } else {
                e.replace(' ', "")
            };
            assert!(cells.contains(&format!("'{e}").as_str()), "{cells:?}");
        }
        // report.json keeps the key as it is (JSON is not a spreadsheet).
        let r = f.report();
        assert!(r.to_string().contains("\"+1+1\""), "{r}");
    }
    // A real address is written as it is.
    let log = f.file("c.log", posts("198.51.100.7", 10, 0, 0, 2));
    f.scan(&[&log, "--threshold", "0"]).success();
    assert_eq!(f.clients()[0][0], "198.51.100.7");
}

/// File names and log text with escape sequences or bidi controls never reach the
/// terminal raw: they are written as `\u{…}`.
#[test]
fn terminal_output_has_no_control_characters() {
    let f = Fixture::new();
    let name = "evil\u{1b}]0;owned\u{7}\u{202e}gol.log";
    let mut text = posts("198.51.100.7", 10, 0, 0, 2);
    text.push_str("this line is \u{1b}[2J malformed\n");
    let log = f.file(name, text);
    let agent = "\u{1b}[31mred\u{202e}";
    let ua_log = f.file(
        "ua.log",
        format!(
            "198.51.100.8 - - [10/Oct/2026:13:55:36 +0000] \"GET /p HTTP/1.1\" 200 1 \"-\" \"{agent}\"\n"
        ),
    );
    let o = std::process::Command::new(BIN)
        .args([
            "scan",
            &log,
            &ua_log,
            "--threshold",
            "0",
            "--client",
            "ua",
            "--out",
        ])
        .arg(f.out())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    for (what, text) in [("stdout", &out), ("stderr", &err)] {
        assert!(
            !text
                .chars()
                .any(|c| (c.is_control() && c != '\n' && c != '\t')
                    || ('\u{202a}'..='\u{202e}').contains(&c)),
            "{what}: {text:?}"
        );
    }
    assert!(
        err.contains("evil\\u{1b}]0;owned\\u{7}\\u{202e}gol.log"),
        "{err}"
    );
    assert!(out.contains("red\\u{202e}"), "{out}");
    // An error message naming such a file too.
    let missing = f.path("gone\u{1b}[2J.log");
    let o = std::process::Command::new(BIN)
        .arg("scan")
        .arg(&missing)
        .arg("--out")
        .arg(f.out())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains('\u{1b}'), "{err:?}");
}

/// Runs `scan` and waits at most `secs` for it (a run that reads a FIFO with no
/// writer would wait for ever).
fn scan_within(args: &[&std::ffi::OsStr], secs: u64) -> std::process::Output {
    let mut child = std::process::Command::new(BIN)
        .arg("scan")
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed().as_secs() >= secs {
            let _ = child.kill();
            panic!("scan still running after {secs} s");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

fn fifo(path: &Path) {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc_mkfifo(c.as_ptr(), 0o600) }, 0);
}

extern "C" {
    #[link_name = "mkfifo"]
    fn libc_mkfifo(path: *const std::ffi::c_char, mode: u32) -> i32;
}

/// The output folder is checked and locked before any input is read: with the folder
/// held, a scan of a FIFO nobody writes to ends at once, exit 3, naming the holder;
/// with a file for a folder, exit 2.
#[test]
fn the_output_folder_is_locked_and_checked_before_reading() {
    let f = Fixture::new();
    let pipe = f.path("pipe");
    fifo(&pipe);
    let held = scrapemeter::store::out_lock::lock(&f.out(), "2026-11-30T06:00:00Z").unwrap();
    let o = scan_within(
        &[pipe.as_os_str(), "--out".as_ref(), f.out().as_os_str()],
        10,
    );
    assert_eq!(o.status.code(), Some(3));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("is in use by another run (pid ")
            && err.contains(&format!("pid {}", std::process::id()))
            && err.contains(", host ")
            && err.contains("started 2026-11-30T06:00:00Z"),
        "{err}"
    );
    drop(held);
    let file = f.file("not-a-folder", "x");
    // Naming a file is a usage error (exit 2), said in plain words.
    let o = scan_within(&[pipe.as_os_str(), "--out".as_ref(), file.as_ref()], 10);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a folder"));
}

/// A report that is a hard link of another file: the other file keeps its bytes
/// (reports are renamed into place, never copied onto a link).
#[test]
fn a_hard_linked_report_is_never_truncated() {
    let f = Fixture::new();
    let log = f.file("a.log", posts("198.51.100.7", 10, 0, 0, 3));
    std::fs::create_dir_all(f.out()).unwrap();
    for name in [
        "violations.csv",
        "clients.csv",
        "report.json",
        "report.html",
    ] {
        std::fs::write(f.out().join(name), format!("old {name}\n")).unwrap();
        std::fs::hard_link(f.out().join(name), f.path(&format!("keep-{name}"))).unwrap();
    }
    f.scan(&[&log, "--threshold", "0"]).success();
    for name in [
        "violations.csv",
        "clients.csv",
        "report.json",
        "report.html",
    ] {
        assert_eq!(
            std::fs::read_to_string(f.path(&format!("keep-{name}"))).unwrap(),
            format!("old {name}\n")
        );
    }
    assert_eq!(f.violations().len(), 1);
    let left: Vec<String> = std::fs::read_dir(f.out())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// `runs` scans at once into one folder, `rounds` times: every report is whole after
/// each round, every run either wrote the reports (exit 0) or stopped with the lock
/// message (exit 3), and nothing is left behind. Returns (runs, wins, lock messages).
pub fn concurrent_rounds(runs: usize, rounds: usize) -> (usize, usize, usize) {
    let f = Fixture::new();
    let mut text = String::new();
    for c in 0..20 {
        text.push_str(&posts(&format!("198.51.100.{c}"), 10, 0, 0, 500));
    }
    let log = f.file("a.log", text);
    let reference = f.path("reference");
    f.scan_into(&reference, &[&log, "--threshold", "100"])
        .success();
    let want = |name: &str| std::fs::read(reference.join(name)).unwrap();
    let json_summary = |p: &Path| {
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(p.join("report.json")).unwrap()).unwrap();
        v["summary"].clone()
    };
    let (mut wins, mut locked) = (0, 0);
    for round in 0..rounds {
        let children: Vec<std::process::Child> = (0..runs)
            .map(|_| {
                std::process::Command::new(BIN)
                    .args(["scan", &log, "--threshold", "100", "-q", "--out"])
                    .arg(f.out())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for c in children {
            let o = c.wait_with_output().unwrap();
            let err = String::from_utf8_lossy(&o.stderr);
            match o.status.code() {
                Some(0) => wins += 1,
                Some(3) if err.contains("is in use by another run") => locked += 1,
                other => panic!("round {round}: exit {other:?}: {err}"),
            }
        }
        for name in ["violations.csv", "clients.csv"] {
            assert_eq!(
                std::fs::read(f.out().join(name)).unwrap(),
                want(name),
                "round {round}: {name}"
            );
        }
        assert_eq!(
            json_summary(&f.out()),
            json_summary(&reference),
            "round {round}"
        );
        let html = std::fs::read_to_string(f.out().join("report.html")).unwrap();
        assert!(
            html.trim_end().ends_with("</html>"),
            "round {round}: report.html cut"
        );
        let left: Vec<String> = std::fs::read_dir(f.out())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(left.is_empty(), "round {round}: left behind {left:?}");
    }
    assert_eq!(wins + locked, runs * rounds);
    assert!(wins >= rounds);
    (runs * rounds, wins, locked)
}

#[test]
fn concurrent_runs_into_one_folder_leave_whole_reports() {
    let (runs, wins, locked) = concurrent_rounds(8, 10);
    eprintln!("{runs} runs: {wins} wrote whole reports, {locked} stopped with the lock message");
}

/// Evidence keeps one first and one last line per window edge: a gzip of one line
/// repeated a million times (one instant) scans with evidence under a 300 MB address
/// space limit (it once took 640 MB per million lines), and names lines 1 and 1000000.
#[test]
fn evidence_memory_does_not_grow_with_lines_at_one_instant() {
    let f = Fixture::new();
    let one = line("198.51.100.7", "10/Oct/2026:13:55:36 +0000", "/p", 200);
    let n = 1_000_000;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    for _ in 0..n {
        e.write_all(one.as_bytes()).unwrap();
    }
    let log = f.file("one.log.gz", e.finish().unwrap());
    let o = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v 300000; exec {BIN} scan {log} --out {} -q --threads 2 --threshold 0",
            f.out().display()
        ))
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let r = f.report();
    let ev = &r["clients"][0]["windows"][0]["evidence"];
    assert_eq!(ev["first"]["line"], 1, "{ev}");
    assert_eq!(ev["last"]["line"], n, "{ev}");
    assert_eq!(r["clients"][0]["windows"][0]["posts"], n);
}

/// A FIFO named on the command line is read once and never opened again (it would
/// wait for ever): the run ends, with evidence "not available" and why. A FIFO inside
/// a folder is named in the manifest as skipped.
#[test]
fn fifos_are_read_once_or_skipped_with_a_reason() {
    let f = Fixture::new();
    let pipe = f.path("pipe.log");
    fifo(&pipe);
    let writer = {
        let pipe = pipe.clone();
        std::thread::spawn(move || {
            std::fs::write(&pipe, posts("198.51.100.7", 10, 0, 0, 3)).unwrap();
        })
    };
    let o = scan_within(
        &[
            pipe.as_os_str(),
            "--threshold".as_ref(),
            "0".as_ref(),
            "-q".as_ref(),
            "--out".as_ref(),
            f.out().as_os_str(),
        ],
        20,
    );
    writer.join().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = f.report();
    let ev = &r["clients"][0]["windows"][0]["evidence"];
    assert!(
        ev["unavailable"]
            .as_str()
            .is_some_and(|s| s.contains("pipe.log") && s.contains("cannot be read a second time")),
        "{ev}"
    );
    assert_eq!(r["clients"][0]["windows"][0]["posts"], 3);
    // In a folder: skipped, with its reason, beside the file that is read.
    let dir = f.path("logs");
    std::fs::create_dir_all(&dir).unwrap();
    fifo(&dir.join("pipe2.log"));
    f.file("logs/a.log", posts("198.51.100.8", 10, 0, 0, 2));
    let o = scan_within(
        &[
            dir.as_os_str(),
            "--threshold".as_ref(),
            "0".as_ref(),
            "-q".as_ref(),
            "--out".as_ref(),
            f.out().as_os_str(),
        ],
        20,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = f.report();
    let skipped = r["skipped"].as_array().unwrap();
    assert!(
        skipped
            .iter()
            .any(|s| s["path"].as_str().unwrap().ends_with("pipe2.log")
                && s["reason"].as_str().unwrap().contains("not a regular file")),
        "{skipped:?}"
    );
    assert_eq!(f.violations().len(), 1);
}

/// `--threads` far beyond the cores is capped (4 per core) with a warning.
#[test]
fn absurd_thread_counts_are_capped() {
    let f = Fixture::new();
    let log = f.file("a.log", posts("198.51.100.7", 10, 0, 0, 3));
    let started = std::time::Instant::now();
    let o = scan_within(
        &[
            log.as_ref(),
            "--threads".as_ref(),
            "100000".as_ref(),
            "--out".as_ref(),
            f.out().as_os_str(),
            "-q".as_ref(),
        ],
        30,
    );
    assert!(o.status.success());
    assert!(started.elapsed().as_secs() < 10);
    let err = String::from_utf8_lossy(&o.stderr);
    let cores = std::thread::available_parallelism().unwrap().get();
    assert!(
        err.contains(&format!(
            "--threads 100000 is more than 4 per core; using {}",
            4 * cores
        )),
        "{err}"
    );
    assert_eq!(f.report()["run"]["threads"], 4 * cores);
}

fn nightly(f: &Fixture, state: &Path, log: &str, extra: &[&str]) -> std::process::Output {
    std::process::Command::new(BIN)
        .args(["scan", log, "--state"])
        .arg(state)
        .args(["--threshold", "0", "--format", "combined", "--out"])
        .arg(f.out())
        .args(extra)
        .output()
        .unwrap()
}

fn copy_state(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for n in ["scrapemeter.state", "scrapemeter.ledger"] {
        std::fs::copy(from.join(n), to.join(n)).unwrap();
    }
}

/// The nightly state's hash-chained ledger: each run appends an entry and records the
/// chain head in the output folder; a state rolled back, replaced, edited or deleted
/// is refused (exit 2) unless --state-reset.
#[test]
fn a_rolled_back_replaced_or_deleted_state_is_refused() {
    let f = Fixture::new();
    let state = f.path("state");
    let day = |d: u32| one_request_day(&f, d);
    let (d0, d1, d2, d3) = (day(0), day(1), day(2), day(3));
    let o = nightly(&f, &state, &d0, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("ledger: run 1, chain head "), "{out}");
    copy_state(&state, &f.path("after-run-1"));
    assert!(nightly(&f, &state, &d1, &[]).status.success());
    copy_state(&state, &f.path("after-run-2"));
    let head: serde_json::Value =
        serde_json::from_slice(&std::fs::read(f.out().join("ledger-head.json")).unwrap()).unwrap();
    assert_eq!(head["run"], 2);
    let ledger = std::fs::read_to_string(state.join("scrapemeter.ledger")).unwrap();
    assert_eq!(ledger.lines().count(), 2);
    assert!(ledger.contains(head["head"].as_str().unwrap()));

    let refused = |o: std::process::Output, why: &str| {
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains(why) && err.contains("--state-reset"), "{err}");
    };
    // Last week's state restored: rolled back.
    copy_state(&f.path("after-run-1"), &state);
    refused(nightly(&f, &state, &d2, &[]), "rolled back");
    // The ledger of run 2 with the state of run 1: not the state its ledger wrote.
    copy_state(&f.path("after-run-2"), &state);
    std::fs::copy(
        f.path("after-run-1/scrapemeter.state"),
        state.join("scrapemeter.state"),
    )
    .unwrap();
    refused(nightly(&f, &state, &d2, &[]), "is not the state its ledger");
    // An entry edited: the chain breaks.
    copy_state(&f.path("after-run-2"), &state);
    let edited = ledger.replacen("\"run\":1", "\"run\":7", 1);
    std::fs::write(state.join("scrapemeter.ledger"), edited).unwrap();
    refused(nightly(&f, &state, &d2, &[]), "is broken");
    // The state deleted: a new history starts only on request.
    std::fs::remove_dir_all(&state).unwrap();
    refused(nightly(&f, &state, &d2, &[]), "there is no ledger");
    // The right state goes on; --state-reset starts afresh.
    copy_state(&f.path("after-run-2"), &state);
    let o = nightly(&f, &state, &d2, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("ledger: run 3, chain head "));
    std::fs::remove_dir_all(&state).unwrap();
    let o = nightly(&f, &state, &d3, &["--state-reset"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("ledger: run 1, chain head "));
}

/// Ctrl-C while the inputs are read: exit 130, a message that nothing was written, and
/// the reports of the run before left as they were.
#[test]
fn ctrl_c_leaves_the_old_reports_and_says_so() {
    let f = Fixture::new();
    let log = f.file("a.log", super::posts("192.0.2.1", 10, 0, 0, 5));
    f.scan(&[&log, "--threshold", "1"]).success();
    let before = f.read("violations.csv");
    let pipe = f.path("pipe");
    fifo(&pipe);
    // A FIFO nobody writes to: the run waits on it until interrupted.
    let child = std::process::Command::new(super::BIN)
        .arg("scan")
        .arg(&pipe)
        .arg("--out")
        .arg(f.out())
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let killed = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("interrupted: nothing written; the reports in "),
        "{err}"
    );
    assert_eq!(f.read("violations.csv"), before);
}

/// `--ledger-key`: each entry signed (HMAC-SHA256 of its hash under the key file's
/// bytes). A state rolled back and the ledger re-chained to it (hashes and
/// `ledger-head.json` recomputed, as anyone can) is refused without the key, whether
/// the old signature is kept or dropped; re-signed with the key it is accepted (whoever
/// holds the key can); a wrong key, or none, is refused.
#[test]
fn a_signed_ledger_refuses_an_edit_re_chained_without_the_key() {
    use hmac::Mac;
    use sha2::Digest;
    let f = Fixture::new();
    let state = f.path("state");
    let key = f.file("ledger.key", "a secret of the operator\n");
    let wrong = f.file("wrong.key", "another secret\n");
    let day = |d: u32| one_request_day(&f, d);
    let signed = ["--ledger-key", key.as_str()];
    assert!(nightly(&f, &state, &day(0), &signed).status.success());
    copy_state(&state, &f.path("after-run-1"));
    assert!(nightly(&f, &state, &day(1), &signed).status.success());
    copy_state(&state, &f.path("after-run-2"));
    let head_path = f.out().join("ledger-head.json");
    let head: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&head_path).unwrap()).unwrap();
    assert_eq!(head["signed"], true);
    let ledger = std::fs::read_to_string(state.join("scrapemeter.ledger")).unwrap();
    let entries: Vec<serde_json::Value> = ledger
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(entries
        .iter()
        .all(|e| e["hmac"].as_str().unwrap().len() == 64));

    // Run 1's state put back, and run 2's entry re-chained to it.
    let hmac = |k: &[u8], hash: &str| {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(k).unwrap();
        mac.update(b"scrapemeter-ledger-hmac 1\n");
        mac.update(hash.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    };
    let old_state = std::fs::read(f.path("after-run-1/scrapemeter.state")).unwrap();
    let rechain = |tag: Option<&[u8]>, drop_tag: bool| {
        let mut e = entries[1].clone();
        e["state_sha256"] = hex::encode(sha2::Sha256::digest(&old_state)).into();
        let text = format!(
            "scrapemeter-ledger 1\n2\n{}\n{}\n{}\n",
            e["prev"].as_str().unwrap(),
            e["state_sha256"].as_str().unwrap(),
            e["started_at"].as_str().unwrap()
        );
        let hash = hex::encode(sha2::Sha256::digest(text.as_bytes()));
        e["hash"] = hash.clone().into();
        if let Some(k) = tag {
            e["hmac"] = hmac(k, &hash).into();
        }
        if drop_tag {
            e.as_object_mut().unwrap().remove("hmac");
        }
        std::fs::write(
            state.join("scrapemeter.ledger"),
            format!("{}\n{}\n", entries[0], e),
        )
        .unwrap();
        std::fs::write(state.join("scrapemeter.state"), &old_state).unwrap();
        std::fs::write(
            &head_path,
            serde_json::json!({"run": 2, "head": hash, "signed": true}).to_string(),
        )
        .unwrap();
    };
    let refused = |o: std::process::Output, why: &str| {
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains(why), "{err}");
    };
    rechain(None, false);
    refused(
        nightly(&f, &state, &day(2), &signed),
        "does not match the key",
    );
    rechain(None, true);
    refused(nightly(&f, &state, &day(2), &signed), "is not signed");
    rechain(Some(b"another secret\n"), false);
    refused(
        nightly(&f, &state, &day(2), &signed),
        "does not match the key",
    );
    rechain(Some(b"a secret of the operator\n"), false);
    let o = nightly(&f, &state, &day(2), &signed);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // The true history: a wrong key or none is refused, the key goes on.
    copy_state(&f.path("after-run-2"), &state);
    std::fs::write(
        &head_path,
        serde_json::json!({"run": 2, "head": entries[1]["hash"], "signed": true}).to_string(),
    )
    .unwrap();
    refused(
        nightly(&f, &state, &day(2), &["--ledger-key", wrong.as_str()]),
        "does not match the key",
    );
    refused(
        nightly(&f, &state, &day(2), &[]),
        "give the key with --ledger-key",
    );
    let o = nightly(&f, &state, &day(2), &signed);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("ledger: run 3, chain head "));

    // The settings file's `ledger_key`, relative to its folder, signs too.
    let settings = f.file(
        "settings.toml",
        "state = \"state-2\"\nledger_key = \"ledger.key\"\n",
    );
    let o = std::process::Command::new(BIN)
        .args(["scan", &day(0), "--config", &settings, "--threshold", "0"])
        .args(["--format", "combined", "--out"])
        .arg(f.path("out-2"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let signed_entry = std::fs::read_to_string(f.path("state-2/scrapemeter.ledger")).unwrap();
    let expected = hmac(
        b"a secret of the operator\n",
        serde_json::from_str::<serde_json::Value>(signed_entry.trim()).unwrap()["hash"]
            .as_str()
            .unwrap(),
    );
    assert!(signed_entry.contains(&expected), "{signed_entry}");
}

/// `d{d}.log`: one post of 198.51.100.7 at noon on 1{d} October 2026.
fn one_request_day(f: &Fixture, d: u32) -> String {
    f.file(
        &format!("d{d}.log"),
        line(
            "198.51.100.7",
            &format!("1{d}/Oct/2026:12:00:00 +0000"),
            "/p",
            200,
        ),
    )
}
