//! `scrapemeter explain`: the forensic view of one client.

use assert_cmd::Command;
use clap::CommandFactory;
use std::path::{Path, PathBuf};

/// 8 posts (and 8 stylesheets) from one client, 2 posts from another whose user agent
/// carries terminal escape sequences.
fn write_log(dir: &Path) -> PathBuf {
    let mut log = String::new();
    for i in 0..8 {
        for (s, path) in [(5, format!("/post/{i}")), (6, "/static/site.css".into())] {
            log.push_str(&format!(
                "203.0.113.7 - - [10/Oct/2026:13:{i:02}:{s:02} +0000] \"GET {path} HTTP/1.1\" 200 512 \"-\" \"bot/1.0\"\n"
            ));
        }
    }
    for i in 0..2 {
        log.push_str(&format!(
            "192.0.2.1 - - [10/Oct/2026:14:{i:02}:00 +0000] \"GET /post/1 HTTP/1.1\" 200 512 \"-\" \"evil\x1b[2J\x07/1\"\n"
        ));
    }
    let path = dir.join("access.log");
    std::fs::write(&path, log).unwrap();
    path
}

fn explain(args: &[&str]) -> (String, i32) {
    let out = Command::cargo_bin("scrapemeter")
        .unwrap()
        .arg("explain")
        .args(args)
        .output()
        .unwrap();
    (
        String::from_utf8(out.stdout).unwrap(),
        out.status.code().unwrap(),
    )
}

#[test]
fn the_command_line_is_well_formed() {
    scrapemeter::app::cli::Cli::command().debug_assert();
}

#[test]
fn evidence_lines_are_found_at_their_line() {
    let tmp = tempfile::tempdir().unwrap();
    let log = write_log(tmp.path());
    let name = log.to_str().unwrap();
    let (out, code) = explain(&["203.0.113.7", name, "--threshold", "5", "--evidence", "2"]);
    assert_eq!(code, 0, "{out}");
    let file: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let prefix = format!("{name}:");
    let evidence: Vec<&str> = out.lines().filter(|l| l.starts_with(&prefix)).collect();
    // One billed window: its 2 first and 2 last requests.
    assert_eq!(evidence.len(), 4, "{out}");
    let mut numbers = Vec::new();
    for l in evidence {
        // `FILE:LINE: TEXT (at TIME)`, as the JSON's file, line, text, time.
        let (n, text) = l[prefix.len()..].split_once(": ").unwrap();
        let (text, time) = text.rsplit_once(" (at ").unwrap();
        assert!(
            time.starts_with("2026-10-10T13:") && time.ends_with("Z)"),
            "{time}"
        );
        let n: usize = n.parse().unwrap();
        assert_eq!(file[n - 1], text, "line {n}");
        numbers.push(n);
    }
    assert_eq!(numbers, [1, 2, 15, 16]);
    assert!(out.contains("damages_usd"), "{out}");
    assert!(out.contains("0.12"), "8 posts at 15,000 per million: {out}");
    assert!(out.contains("/post/{n}") && out.contains("/static/site.css"));
}

#[test]
fn control_characters_never_reach_the_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    let log = write_log(tmp.path());
    let (out, code) = explain(&[
        "192.0.2.1",
        log.to_str().unwrap(),
        "--threshold",
        "1",
        "--evidence",
        "1",
    ]);
    assert_eq!(code, 0);
    assert!(out.contains("evil[2J/1"), "{out}");
    assert!(!out.chars().any(|c| c.is_control() && c != '\n'), "{out:?}");
}

#[test]
fn json_has_the_windows_and_damages() {
    let tmp = tempfile::tempdir().unwrap();
    let log = write_log(tmp.path());
    let (out, code) = explain(&[
        "203.0.113.7",
        log.to_str().unwrap(),
        "--threshold",
        "5",
        "--json",
        "--evidence",
        "1",
    ]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["windows"][0]["damages_usd"], "0.12");
    assert_eq!(v["windows"][0]["evidence"]["first"][0]["line"], 1);
    assert_eq!(v["requests"], 16);
    assert_eq!(v["top_paths"][0]["requests"], 8);
}

#[test]
fn an_absent_client_is_a_clear_message() {
    let tmp = tempfile::tempdir().unwrap();
    let log = write_log(tmp.path());
    let out = Command::cargo_bin("scrapemeter")
        .unwrap()
        .args(["explain", "198.51.100.1", log.to_str().unwrap()])
        .output()
        .unwrap();
    // Exit 1 (as grep when nothing matches), one line on stderr that says what was
    // read and suggests the keys most like it.
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("scrapemeter: error: no requests from client 198.51.100.1 in the inputs"),
        "{err}"
    );
    assert!(err.contains("lines (0 malformed) read"), "{err}");
    assert!(err.contains("close keys: "), "{err}");
    // An address is canonicalised before it is looked up.
    let (out, _) = explain(&["::ffff:203.0.113.7", log.to_str().unwrap()]);
    assert!(out.starts_with("client 203.0.113.7"), "{out}");
}

#[test]
fn explain_echoes_its_scope() {
    let tmp = tempfile::tempdir().unwrap();
    let log = write_log(tmp.path());
    let (out, code) = explain(&[
        "::ffff:203.0.113.7",
        log.to_str().unwrap(),
        "--since",
        "2000-01-01T00:00:00Z",
    ]);
    assert_eq!(code, 0);
    assert!(
        out.contains("scope: 1 file, ")
            && out.contains("only requests from 2000-01-01T00:00:00Z until the end"),
        "{out}"
    );
    let (out, _) = explain(&[
        "203.0.113.7",
        log.to_str().unwrap(),
        "--json",
        "--until",
        "2100-01-01T00:00:00Z",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["settings"]["until"], "2100-01-01T00:00:00Z");
    assert_eq!(v["settings"]["since"], serde_json::Value::Null);
    assert_eq!(v["settings"]["client"], "ip");
    assert_eq!(v["scope"]["files"][0], log.to_str().unwrap());
}

/// Issue 15: `explain` takes a client exactly as clients.csv writes it, with the
/// formula guard's leading `'`, as it takes the `\xHH` spelling.
#[test]
fn a_client_as_the_csv_writes_it_with_the_formula_guard() {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = String::new();
    for i in 0..3 {
        log.push_str(&format!(
            "203.0.113.7 - - [10/Oct/2026:13:00:0{i} +0000] \"GET /post/{i} HTTP/1.1\" 200 5 \"-\" \"=HYPERLINK(1)\"\n"
        ));
    }
    let path = tmp.path().join("ua.log");
    std::fs::write(&path, log).unwrap();
    let out = tmp.path().join("out");
    Command::cargo_bin("scrapemeter")
        .unwrap()
        .args([
            "scan",
            path.to_str().unwrap(),
            "--client",
            "ua",
            "--threshold",
            "1",
            "-q",
            "--out",
        ])
        .arg(&out)
        .assert()
        .success();
    let csv = std::fs::read_to_string(out.join("clients.csv")).unwrap();
    let written = csv.lines().nth(1).unwrap().split(',').next().unwrap();
    assert_eq!(written, "'=HYPERLINK(1)");
    for spelling in [written, "=HYPERLINK(1)"] {
        let (text, code) = explain(&[
            spelling,
            path.to_str().unwrap(),
            "--client",
            "ua",
            "--threshold",
            "1",
            "--json",
        ]);
        assert_eq!(code, 0);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["requests"], 3, "{spelling}: {text}");
    }
}

/// `--evidence all --out FILE`: every line of every billed window, each found at its
/// stated place, and the SHA-256 of the file as written.
#[test]
fn every_line_of_the_billed_windows_exported_with_its_digest() {
    use sha2::{Digest, Sha256};
    let tmp = tempfile::tempdir().unwrap();
    let log = write_log(tmp.path());
    let export = tmp.path().join("export.txt");
    let (out, code) = explain(&[
        "203.0.113.7",
        log.to_str().unwrap(),
        "--threshold",
        "5",
        "--json",
        "--evidence",
        "all",
        "--out",
        export.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let bytes = std::fs::read(&export).unwrap();
    assert_eq!(v["export"]["sha256"], hex::encode(Sha256::digest(&bytes)));
    let text = String::from_utf8(bytes).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    // Every request of the window (posts and stylesheets alike).
    let requests: u64 = v["windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(lines.len() as u64, requests);
    assert_eq!(v["export"]["lines"], requests);
    let log_lines: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    for l in lines {
        let (window, rest) = l.split_once('\t').unwrap();
        assert_eq!(window, "1");
        let rest = rest.strip_prefix(&format!("{}:", log.display())).unwrap();
        let (n, text) = rest.split_once(':').unwrap();
        assert_eq!(log_lines[n.parse::<usize>().unwrap() - 1], text);
    }
    // `all` needs a file; a file needs `all`.
    let (_, code) = explain(&["203.0.113.7", log.to_str().unwrap(), "--evidence", "all"]);
    assert_eq!(code, 2);
    let (_, code) = explain(&[
        "203.0.113.7",
        log.to_str().unwrap(),
        "--out",
        export.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
}

/// Evidence has one shape: the text view's `FILE:LINE: TEXT (at TIME)` lines are the
/// JSON view's `{file, line, text, time}`, window by window, first then last.
#[test]
fn evidence_has_one_shape_in_text_and_json() {
    let tmp = tempfile::tempdir().unwrap();
    let log = write_log(tmp.path());
    let args = [
        "203.0.113.7",
        log.to_str().unwrap(),
        "--threshold",
        "5",
        "--evidence",
        "2",
    ];
    let (text, code) = explain(&args);
    assert_eq!(code, 0, "{text}");
    let (json, code) = explain(&[&args[..], &["--json"]].concat());
    assert_eq!(code, 0, "{json}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let mut from_json = Vec::new();
    for w in v["windows"].as_array().unwrap() {
        let e = w["evidence"].as_object().unwrap();
        assert_eq!(e.keys().collect::<Vec<_>>(), ["first", "last"]);
        for which in ["first", "last"] {
            for l in e[which].as_array().unwrap() {
                let keys: Vec<&String> = l.as_object().unwrap().keys().collect();
                assert_eq!(keys, ["file", "line", "text", "time"]);
                from_json.push(format!(
                    "{}:{}: {} (at {})",
                    l["file"].as_str().unwrap(),
                    l["line"],
                    l["text"].as_str().unwrap(),
                    l["time"].as_str().unwrap()
                ));
            }
        }
    }
    assert_eq!(from_json.len(), 4);
    let prefix = format!("{}:", log.display());
    let from_text: Vec<&str> = text.lines().filter(|l| l.starts_with(&prefix)).collect();
    assert_eq!(from_text, from_json);
    assert!(text.contains("file:line: text (at time)"), "{text}");
}

/// The JSON names every setting in force (flags, settings file and defaults resolved);
/// the text view says them in words.
#[test]
fn json_carries_every_setting_in_force() {
    let tmp = tempfile::tempdir().unwrap();
    let log = write_log(tmp.path());
    let settings = tmp.path().join("s.toml");
    std::fs::write(&settings, "window = \"12h\"\nrounding = \"per-started\"\n").unwrap();
    let (json, code) = explain(&[
        "203.0.113.7",
        log.to_str().unwrap(),
        "--config",
        settings.to_str().unwrap(),
        "--threshold",
        "5",
        "--since",
        "2026-10-10T00:00:00Z",
        "--client",
        "subnet",
        "--subnet-v4",
        "16",
        "--exclude",
        "*.bak",
        "-j",
        "1",
        "--evidence",
        "3",
        "--by",
        "day",
        "--json",
    ]);
    assert_eq!(code, 0, "{json}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let s = &v["settings"];
    let want = serde_json::json!({
        "inputs": [log.to_str().unwrap()],
        "exclude": ["*.bak"],
        "allow_missing": false,
        "format": "auto",
        "client": "subnet",
        "subnet_ipv4_prefix": 16,
        "subnet_ipv6_prefix": 64,
        "since": "2026-10-10T00:00:00Z",
        "until": null,
        "threshold": 5,
        "window": "12h",
        "window_seconds": 43200,
        "mode": "rolling",
        "rate_usd": "15000",
        "per": 1000000,
        "rounding": "per-started",
        "rules": null,
        "orgs": null,
        "threads": 1,
        "evidence": 3,
        "by": "day",
    });
    assert_eq!(*s, want);
    assert_eq!(v["client"], "203.0.0.0/16");
    let (text, _) = explain(&[
        "203.0.113.7",
        log.to_str().unwrap(),
        "--threshold",
        "5",
        "--window",
        "12h",
    ]);
    assert!(
        text.contains("settings: format auto, client ip, more than 5 posts in 12h (rolling), USD 15,000 per 1,000,000 posts (pro-rata)"),
        "{text}"
    );
}

/// Flags that explain would take and ignore are refused by the parser (exit 2):
/// they judge inputs, write reports or shape scan's summary, which explain does not.
#[test]
fn flags_explain_does_not_use_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let log = write_log(tmp.path());
    let log = log.to_str().unwrap();
    for extra in [
        &["--max-malformed", "0.5"][..],
        &["--strict"],
        &["--strict-lines"],
        &["--no-evidence"],
        &["--summary", "json"],
        &["--quiet"],
        &["--state", "st"],
        &["--by", "week"],
    ] {
        let out = Command::cargo_bin("scrapemeter")
            .unwrap()
            .args(["explain", "203.0.113.7", log])
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{extra:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("scrapemeter: error: "), "{extra:?}: {err}");
        assert!(out.stdout.is_empty(), "{extra:?}");
    }
}
