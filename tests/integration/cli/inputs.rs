//! Inputs, bad input and exit statuses: compression, truncation, malformed lines,
//! discovery, duplicates, client keys as written, settings and output errors.

use super::*;
use std::io::{Read, Write};

fn stderr_of(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stderr).into_owned()
}

/// `n` distinct post lines of client `ip`, one a second from 10/Oct/2026 00:00:00.
fn numbered(ip: &str, n: u32) -> String {
    posts(ip, 0, 0, 0, n)
}

// ---------------------------------------------------------------- compression

#[test]
fn a_truncated_gzip_keeps_every_complete_line() {
    let f = Fixture::new();
    let text = numbered("10.0.0.1", 20_000);
    let gz = gzip(text.as_bytes());
    let cut = &gz[..gz.len() / 2];
    let log = f.file("cut.log.gz", cut);

    // What a decoder can get out of the cut archive before it fails.
    let mut decoded = Vec::new();
    let mut d = flate2::read::MultiGzDecoder::new(cut);
    let mut buf = [0u8; 8192];
    loop {
        match d.read(&mut buf) {
            Ok(0) => panic!("a cut archive must fail"),
            Ok(n) => decoded.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    let complete = decoded.iter().filter(|&&b| b == b'\n').count() as u64;
    assert!(complete > 1000 && complete < 20_000, "{complete}");
    assert_ne!(decoded.last(), Some(&b'\n'), "the cut falls inside a line");

    let a = f.scan(&[&log, "--threshold", "0"]).success();
    let err = stderr_of(&a);
    assert!(
        err.contains("cut.log.gz") && err.contains("ends early"),
        "{err}"
    );
    let input = f.input("cut.log.gz");
    assert_eq!(input["complete"], false);
    assert_eq!(input["dropped_partial_line"], true);
    assert_eq!(input["compression"], "gzip");
    assert_eq!(input["lines"], complete);
    assert_eq!(input["requests"], complete);
    assert_eq!(input["posts"], complete);
    assert_eq!(input["malformed"], 0);
    assert_eq!(f.report()["totals"]["incomplete"], 1);
    // The kept lines are billed: the window holds every complete line.
    assert_eq!(f.violations()[0][4], complete.to_string());

    f.scan(&[&log, "--strict"]).code(1);
}

#[test]
fn an_intact_file_without_a_final_newline_keeps_its_last_line() {
    let f = Fixture::new();
    let text = numbered("10.0.0.1", 3);
    let text = text.trim_end_matches('\n');
    let plain = f.file("a.log", text);
    let gz = f.file("b.log.gz", gzip(text.as_bytes()));
    f.scan(&[&plain, &gz, "--strict"]).success();
    for name in ["a.log", "b.log.gz"] {
        let i = f.input(name);
        assert_eq!(
            (i["requests"].as_u64(), i["complete"].as_bool()),
            (Some(3), Some(true))
        );
    }
}

#[test]
fn gzip_multi_member_zstd_and_misleading_names() {
    let f = Fixture::new();
    let mut multi = gzip(numbered("10.0.0.1", 2).as_bytes());
    multi.extend(gzip(numbered("10.0.0.2", 3).as_bytes()));
    let multi = f.file("multi.gz", multi);
    let mut frames = zstd(numbered("10.0.0.3", 4).as_bytes());
    frames.extend(zstd(numbered("10.0.0.4", 5).as_bytes()));
    let zst = f.file("frames.log.zst", frames);
    let plain_named_gz = f.file("plain.log.gz", numbered("10.0.0.5", 6));
    let gz_named_log = f.file("secret.log", gzip(numbered("10.0.0.6", 7).as_bytes()));
    f.scan(&[&multi, &zst, &plain_named_gz, &gz_named_log, "--strict"])
        .success();
    for (name, compression, requests) in [
        ("multi.gz", "gzip", 5),
        ("frames.log.zst", "zstd", 9),
        ("plain.log.gz", "plain", 6),
        ("secret.log", "gzip", 7),
    ] {
        let i = f.input(name);
        assert_eq!(i["compression"], compression, "{name}");
        assert_eq!(i["requests"], requests, "{name}");
        assert_eq!(i["complete"], true, "{name}");
        assert_eq!(i["format"], "combined", "{name}");
    }
    assert_eq!(f.report()["totals"]["requests"], 5 + 9 + 6 + 7);
}

/// Issue 15: .bz2, .xz and .lz4 copies of a sample file (made here with the crates'
/// encoders) give the same violations.csv as the gzip one; an archive is a bad input
/// that names itself.
#[test]
fn bzip2_xz_and_lz4_copies_bill_like_the_gzip_one() {
    let f = Fixture::new();
    let gz = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/sample-logs/fra1/access.log-20260303.gz"
    );
    let mut text = Vec::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(gz).unwrap())
        .read_to_end(&mut text)
        .unwrap();
    let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
    bz.write_all(&text).unwrap();
    let mut xz =
        lzma_rust2::XzWriter::new(Vec::new(), lzma_rust2::XzOptions::with_preset(1)).unwrap();
    xz.write_all(&text).unwrap();
    let mut lz4 = lz4_flex::frame::FrameEncoder::new(Vec::new());
    lz4.write_all(&text).unwrap();
    let copies = [
        ("a.log.bz2", bz.finish().unwrap(), "bzip2"),
        ("a.log.xz", xz.finish().unwrap(), "xz"),
        ("a.log.lz4", lz4.finish().unwrap(), "lz4"),
    ];
    let run = |path: &str, out: &str| {
        let out = f.path(out);
        f.scan_into(&out, &[path, "--threshold", "100", "--strict"])
            .success();
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap())
                .unwrap();
        (
            std::fs::read_to_string(out.join("violations.csv")).unwrap(),
            report,
        )
    };
    let (expected, _) = run(gz, "gz");
    assert!(
        expected.lines().count() > 1,
        "the sample bills some windows"
    );
    for (name, bytes, kind) in copies {
        let path = f.file(name, bytes);
        let (got, report) = run(&path, &format!("out-{kind}"));
        assert_eq!(got, expected, "{name}");
        assert_eq!(report["inputs"][0]["compression"], kind);
        assert_eq!(report["inputs"][0]["complete"], true);
    }
    // A zip is named as what it is, and is a bad input.
    let log = f.file("ok.log", numbered("10.0.0.1", 2));
    let zip = f.file("logs.zip", b"PK\x03\x04\x14\x00\x00\x00\x08\x00access.log");
    let a = f.scan(&[&log, &zip]).success();
    assert!(
        stderr_of(&a)
            .contains("logs.zip: bad input: unreadable: cannot read: zip archive: unpack it first"),
        "{}",
        stderr_of(&a)
    );
    assert_eq!(f.report()["bad_inputs"][0]["path"], zip.as_str());
    f.scan(&[&log, &zip, "--strict"]).code(1);
}

#[test]
fn a_corrupt_zstd_is_incomplete() {
    let f = Fixture::new();
    let z = zstd(numbered("10.0.0.1", 5000).as_bytes());
    let log = f.file("cut.zst", &z[..z.len() - 10]);
    let a = f.scan(&[&log]).success();
    assert!(stderr_of(&a).contains("cut.zst"));
    let i = f.input("cut.zst");
    assert_eq!(i["complete"], false);
    assert_eq!(i["malformed"], 0);
    assert!(i["requests"].as_u64().unwrap() < 5000);
}

// ---------------------------------------------------------------- malformed lines

#[test]
fn garbage_and_impossible_dates_are_malformed_with_examples() {
    let f = Fixture::new();
    let ok = line("10.0.0.1", "10/Oct/2026:00:00:00 +0000", "/p", 200);
    let log = [
        ok.clone(),
        "garbage\n".into(),
        line("10.0.0.1", "31/Feb/2026:00:00:00 +0000", "/p", 200),
        line("10.0.0.1", "10/Oct/2026:24:00:00 +0000", "/p", 200),
        line("10.0.0.1", "10/Oct/2026:23:59:60 +0000", "/p", 200),
        "10.0.0.1 - - [10/Oct/2026:00:00:00 +0000] \"GET / HTTP/1.1\" - 0 \"-\" \"-\"\n".into(),
        // A bad offset.
        line("10.0.0.1", "10/Oct/2026:00:00:00 +2400", "/p", 200),
        // Not malformed: a user agent without its closing quote, extra fields.
        "10.0.0.1 - - [10/Oct/2026:00:00:01 +0000] \"GET /q HTTP/1.1\" 200 1 \"-\" \"Mozilla/5.0 (trunc\n".into(),
        "10.0.0.1 - - [10/Oct/2026:00:00:02 +0000] \"GET /r HTTP/1.1\" 200 1 \"-\" \"ua\" \"-\" \"x\"\n".into(),
        // `+HH:MM` offsets are fine too.
        line("10.0.0.1", "10/Oct/2026:02:00:03 +02:00", "/s", 200),
    ]
    .concat();
    let log = f.file("bad.log", log);
    // Fixed format: with most lines bad, `auto` could rightly call the file unrecognised.
    let a = f
        .scan(&[&log, "--threshold", "0", "--format", "combined"])
        .success();
    assert!(
        stderr_of(&a).contains("bad.log: 6 malformed"),
        "{}",
        stderr_of(&a)
    );
    let i = f.input("bad.log");
    assert_eq!(i["lines"], 10);
    assert_eq!(i["malformed"], 6);
    assert_eq!(i["requests"], 4);
    let examples = i["malformed_examples"].as_array().unwrap();
    let lines: Vec<u64> = examples
        .iter()
        .map(|e| e["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [2, 3, 4, 5, 6], "the first five, in order");
    assert_eq!(examples[0]["text"], "garbage");
    assert!(examples
        .iter()
        .all(|e| !e["reason"].as_str().unwrap().is_empty()));
    assert_eq!(f.report()["totals"]["malformed"], 6);
    // The good lines were all counted, in one window.
    assert_eq!(
        joined(&f.violations()),
        ["10.0.0.1,1,2026-10-10T00:00:00Z,2026-10-11T00:00:00Z,4,4,0.06"]
    );

    f.scan(&[&log, "--strict", "--format", "combined"]).code(1);
}

#[test]
fn crlf_blank_and_comment_lines() {
    let f = Fixture::new();
    let text = format!(
        "# a comment\r\n\r\n   \n{}\t\n#another\n",
        numbered("10.0.0.1", 3).replace('\n', "\r\n")
    );
    let log = f.file("crlf.log", text);
    f.scan(&[&log, "--strict", "--client", "ua", "--threshold", "0"])
        .success();
    let i = f.input("crlf.log");
    assert_eq!(i["lines"], 8);
    assert_eq!(i["blank"], 3);
    assert_eq!(i["comments"], 2);
    assert_eq!(i["malformed"], 0);
    assert_eq!(i["requests"], 3);
    // The CR is not part of the last field.
    assert_eq!(f.violations()[0][0], "test-agent/1.0");
}

#[test]
fn a_line_over_one_mib_is_malformed() {
    let f = Fixture::new();
    let long_path = format!("/{}", "x".repeat(1024 * 1024 + 10));
    let text = format!(
        "{}{}{}",
        numbered("10.0.0.1", 1),
        line("10.0.0.2", "10/Oct/2026:00:00:00 +0000", &long_path, 200),
        posts("10.0.0.3", 1, 0, 0, 1)
    );
    let log = f.file("long.log", text);
    f.scan(&[&log, "--threshold", "0"]).success();
    let i = f.input("long.log");
    assert_eq!(i["lines"], 3);
    assert_eq!(i["malformed"], 1);
    assert_eq!(i["requests"], 2);
    assert_eq!(i["malformed_examples"][0]["line"], 2);
    let clients: Vec<String> = f.violations().iter().map(|r| r[0].clone()).collect();
    assert_eq!(clients, ["10.0.0.1", "10.0.0.3"]);
}

#[test]
fn an_empty_file() {
    let f = Fixture::new();
    let log = f.file("empty.log", "");
    f.scan(&[&log, "--strict"]).success();
    let i = f.input("empty.log");
    assert_eq!(
        (i["lines"].as_u64(), i["requests"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(i["complete"], true);
    assert_eq!(i["sha256"], sha256_hex(b""));
    assert_eq!(f.read("violations.csv"), format!("{VIOLATIONS_HEADER}\n"));
    assert_eq!(f.read("clients.csv"), format!("{CLIENTS_HEADER}\n"));
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

#[test]
fn the_header_of_violations_is_always_written() {
    let f = Fixture::new();
    let log = f.file("a.log", numbered("10.0.0.1", 5));
    f.scan(&[&log]).success();
    assert_eq!(f.read("violations.csv"), format!("{VIOLATIONS_HEADER}\n"));
    assert_eq!(f.read("clients.csv"), format!("{CLIENTS_HEADER}\n"));
    let r = f.report();
    assert_eq!(r["summary"]["billed_windows"], 0);
    assert_eq!(r["summary"]["damages_usd"], "0.00");
    assert_eq!(r["population"]["clients"], 1);
}

// ---------------------------------------------------------------- discovery

/// Issue 15: a missing path or an empty glob is a usage error (exit 2, nothing read
/// or written) unless `--allow-missing`; then it is a bad input, named everywhere.
#[test]
fn a_missing_path_is_a_usage_error_unless_allowed() {
    let f = Fixture::new();
    let log = f.file("a.log", numbered("10.0.0.1", 2));
    let missing = f.path("nope.log").display().to_string();
    let glob = f.path("*.none").display().to_string();
    for gone in [&missing, &glob] {
        let a = f.scan(&[&log, gone, "--threshold", "0"]).code(2);
        let err = stderr_of(&a);
        assert!(
            err.starts_with("scrapemeter: error: ") && err.contains(gone.as_str()),
            "{err}"
        );
        assert!(err.contains("--allow-missing"), "{err}");
        assert!(!f.out().exists(), "nothing is written");
        for cmd in [&["explain", "10.0.0.1"][..], &["map", "--out", "p"][..]] {
            Command::new(BIN)
                .args(cmd)
                .args([log.as_str(), gone.as_str()])
                .current_dir(f.dir.path())
                .assert()
                .code(2);
        }
    }

    let a = f
        .scan(&[&log, &missing, "--threshold", "0", "--allow-missing"])
        .success();
    assert!(
        stderr_of(&a).contains("nope.log: bad input: missing"),
        "{}",
        stderr_of(&a)
    );
    let i = f.input("nope.log");
    assert_eq!(i["status"], "unreadable");
    assert_eq!(i["bad"], "missing: no such file or directory");
    let r = f.report();
    assert_eq!(r["totals"]["unreadable"], 1);
    assert_eq!(r["totals"]["bad"], 1);
    assert_eq!(r["bad_inputs"][0]["path"], missing.as_str());
    assert!(f.read("report.html").contains("Bad inputs"));
    assert_eq!(f.violations().len(), 1);
    // The good input has no `bad` entry at all.
    assert!(f.input("a.log").get("bad").is_none());

    f.scan(&[&log, &missing, "--strict", "--allow-missing"])
        .code(1);
    f.scan(&[&log, &glob, "--strict", "--allow-missing"])
        .code(1);
    assert_eq!(
        f.input("*.none")["bad"],
        "missing: no file matches this pattern"
    );
    f.scan(&[&log, "--strict"]).success();
    // The settings file can allow it too.
    let settings = f.file("s.toml", "allow-missing = true\n");
    f.scan(&[&log, &missing, "--config", &settings]).success();
}

/// Issue 15: `--format json` on a combined file is a bad input that names the format
/// it looks like; `--strict` fails on it, and the stdout summary names it.
#[test]
fn a_wrong_format_is_a_bad_input_naming_the_right_one() {
    let f = Fixture::new();
    let log = f.file("a.log", numbered("10.0.0.1", 300));
    let a = f.scan(&[&log, "--format", "json"]).success();
    let err = stderr_of(&a);
    assert!(
        err.contains("a.log: bad input: too many malformed lines: 300 of 300")
            && err.contains("looks like combined: try --format combined"),
        "{err}"
    );
    let i = f.input("a.log");
    assert_eq!(i["looks_like"], "combined");
    assert!(i["bad"].as_str().unwrap().contains("try --format combined"));
    assert!(f.read("report.html").contains("try --format combined"));
    f.scan(&[&log, "--format", "json", "--strict"]).code(1);
    // Without -q the summary names the bad input, and its unreadable and
    // unrecognised counts agree with report.json.
    let out = Command::new(BIN)
        .args(["scan", &log, "--format", "json", "--out"])
        .arg(f.out())
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("0 unreadable, 0 unrecognised")
            && stdout.contains("bad inputs: 1")
            && stdout.contains("try --format combined"),
        "{stdout}"
    );
    // The right format reads it all, and then it is no bad input.
    f.scan(&[&log, "--format", "combined", "--strict"])
        .success();
    assert!(f.input("a.log").get("looks_like").is_none());
}

/// Issue 15: `--strict` fails on bad inputs, not on one odd line in many; that is
/// `--strict-lines`; `--max-malformed` sets the share (flag or settings file).
#[test]
fn strict_fails_on_bad_inputs_and_strict_lines_on_any_malformed_line() {
    let f = Fixture::new();
    let mut text = numbered("10.0.0.1", 199);
    text.push_str("junk\n");
    let log = f.file("a.log", &text);
    f.scan(&[&log, "--strict"]).success();
    assert!(f.input("a.log").get("bad").is_none());
    assert_eq!(f.input("a.log")["malformed"], 1);
    let a = f.scan(&[&log, "--strict-lines"]).code(1);
    assert!(
        stderr_of(&a).contains("--strict-lines: 1 malformed line\n"),
        "{}",
        stderr_of(&a)
    );
    // 1 of 200 is 0.5%: over 0.004, not over 0.005.
    f.scan(&[&log, "--strict", "--max-malformed", "0.005"])
        .success();
    let a = f
        .scan(&[&log, "--strict", "--max-malformed", "0.004"])
        .code(1);
    assert!(
        stderr_of(&a).contains("--strict: 1 bad input (named above"),
        "{}",
        stderr_of(&a)
    );
    assert!(
        stderr_of(&a).contains("1 of 200 (0.5%, over --max-malformed 0.004)"),
        "{}",
        stderr_of(&a)
    );
    let settings = f.file("s.toml", "max_malformed = 0.004\n");
    f.scan(&[&log, "--strict", "--config", &settings]).code(1);
    let settings = f.file("l.toml", "strict_lines = true\n");
    f.scan(&[&log, "--config", &settings]).code(1);
    f.scan(&[&log, "--max-malformed", "2"]).code(2);
    // An unrecognised file is a bad input under auto.
    let junk = f.file("junk.log", "junk\n".repeat(50));
    f.scan(&[&log, &junk, "--strict"]).code(1);
    assert!(f.input("junk.log")["bad"]
        .as_str()
        .unwrap()
        .starts_with("unrecognised: "));
}

#[test]
fn stdin_is_read_for_a_dash() {
    let f = Fixture::new();
    let out = f.out();
    Command::new(BIN)
        .args(["scan", "-", "--threshold", "0", "-q", "--out"])
        .arg(&out)
        .write_stdin(gzip(numbered("10.0.0.9", 4).as_bytes()))
        .assert()
        .success();
    let i = f.input("-");
    assert_eq!(i["compression"], "gzip");
    assert_eq!(i["requests"], 4);
    assert_eq!(f.violations()[0][0], "10.0.0.9");
}

#[test]
fn folders_are_walked_and_globs_expanded() {
    let f = Fixture::new();
    f.file("logs/a.log", numbered("10.0.0.1", 1));
    f.file(
        "logs/deep/er/b.log.gz",
        gzip(numbered("10.0.0.2", 2).as_bytes()),
    );
    f.file("other/c.log", numbered("10.0.0.3", 3));
    f.file("other/d.txt", numbered("10.0.0.4", 4));
    let folder = f.path("logs").display().to_string();
    let glob = f.path("other/*.log").display().to_string();
    f.scan(&[&folder, &glob, "--threshold", "0"]).success();
    let r = f.report();
    let paths: Vec<String> = r["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["path"].as_str().unwrap().to_string())
        .collect();
    let root = f.dir.path().display().to_string();
    assert_eq!(
        paths,
        [
            format!("{root}/logs/a.log"),
            format!("{root}/logs/deep/er/b.log.gz"),
            format!("{root}/other/c.log"),
        ]
    );
    assert_eq!(r["totals"]["requests"], 6);
}

#[test]
fn duplicates_are_read_once_and_listed() {
    let f = Fixture::new();
    let text = numbered("10.0.0.1", 3);
    let a = f.file("a.log", &text);
    let copy = f.file("sub/copy.log", &text);
    let folder = f.path("sub").display().to_string();
    f.scan(&[&a, &a, &copy, &folder, "--threshold", "0"])
        .success();
    let r = f.report();
    assert_eq!(r["inputs"].as_array().unwrap().len(), 1);
    let skipped = r["skipped"].as_array().unwrap();
    // a.log twice; sub/copy.log both as a file and in its folder; and identical to a.log.
    assert_eq!(skipped.len(), 3, "{skipped:#?}");
    assert!(skipped
        .iter()
        .any(|s| s["reason"].as_str().unwrap().contains("SHA-256")));
    assert!(skipped
        .iter()
        .any(|s| s["reason"].as_str().unwrap().contains("more than once")));
    // Counted once, not three times.
    assert_eq!(f.violations()[0][4], "3");
    assert_eq!(r["totals"]["skipped"], 3);
}

// ---------------------------------------------------------------- clients as written

#[test]
fn non_utf8_user_keys_are_written_as_hex_escapes() {
    let f = Fixture::new();
    let mut bytes = Vec::new();
    for (i, user) in [&b"caf\xe9"[..], b"\xAB\xcd-x", b"-", b"plain"]
        .iter()
        .enumerate()
    {
        bytes.extend_from_slice(b"10.0.0.1 - ");
        bytes.extend_from_slice(user);
        bytes.extend_from_slice(
            format!(" [10/Oct/2026:00:00:0{i} +0000] \"GET /p HTTP/1.1\" 200 1\n").as_bytes(),
        );
    }
    let log = f.file("users.log", bytes);
    f.scan(&[&log, "--client", "user", "--threshold", "0", "--strict"])
        .success();
    let clients: Vec<String> = f.violations().iter().map(|r| r[0].clone()).collect();
    // Sorted by the bytes written; `-` is no client.
    assert_eq!(clients, ["\\xab\\xcd-x", "caf\\xe9", "plain"]);
    assert_eq!(f.input("users.log")["no_client"], 1);
    let r = f.report();
    assert_eq!(r["clients"][1]["client"], "caf\\xe9");
}

#[test]
fn formula_like_user_agents_are_guarded_in_csv_only() {
    let f = Fixture::new();
    let log = [
        "10.0.0.1 - - [10/Oct/2026:00:00:00 +0000] \"GET /p HTTP/1.1\" 200 1 \"-\" \"=HYPERLINK(\\\"x\\\")\"\n",
        "10.0.0.1 - - [10/Oct/2026:00:00:00 +0000] \"GET /p HTTP/1.1\" 200 1 \"-\" \"@sum\"\n",
        "10.0.0.1 - - [10/Oct/2026:00:00:00 +0000] \"GET /p HTTP/1.1\" 200 1 \"-\" \"curl/8\"\n",
        "10.0.0.1 - - [10/Oct/2026:00:00:00 +0000] \"GET /p HTTP/1.1\" 200 1 \"-\" \"-\"\n",
    ]
    .concat();
    let log = f.file("ua.log", log);
    f.scan(&[&log, "--client", "ua", "--threshold", "0"])
        .success();
    let v: Vec<String> = f.violations().iter().map(|r| r[0].clone()).collect();
    assert_eq!(v, ["'=HYPERLINK(\\\"x\\\")", "'@sum", "curl/8"]);
    let c: Vec<String> = f.clients().iter().map(|r| r[0].clone()).collect();
    assert_eq!(c, v);
    let r = f.report();
    let names: Vec<&str> = r["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["client"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["=HYPERLINK(\\\"x\\\")", "@sum", "curl/8"]);
    assert_eq!(f.input("ua.log")["no_client"], 1);
}

#[test]
fn ips_are_written_canonically() {
    let f = Fixture::new();
    let log = [
        posts("2001:DB8:0:0:0:0:0:1", 0, 0, 0, 1),
        posts("2001:db8::1", 0, 0, 1, 1),
        posts("::ffff:1.2.3.4", 0, 0, 2, 1),
        posts("1.2.3.4", 0, 0, 3, 1),
        posts("2001:0db8:0000:0000:0001:0000:0000:0001", 0, 0, 4, 1),
    ]
    .concat();
    let log = f.file("v6.log", log);
    f.scan(&[&log, "--threshold", "0"]).success();
    let rows: Vec<(String, String)> = f
        .violations()
        .iter()
        .map(|r| (r[0].clone(), r[4].clone()))
        .collect();
    assert_eq!(
        rows,
        [
            ("1.2.3.4".into(), "2".into()),
            ("2001:db8::1".into(), "2".into()),
            ("2001:db8::1:0:0:1".into(), "1".into()),
        ]
    );
}

#[test]
fn subnets_are_written_as_cidr() {
    let f = Fixture::new();
    let log = [
        posts("198.51.100.7", 0, 0, 0, 1),
        posts("198.51.100.200", 0, 0, 1, 1),
        posts("198.51.101.1", 0, 0, 2, 1),
        posts("2001:db8:4d2:7:1:2:3:4", 0, 0, 3, 1),
        posts("2001:db8:4d2:7::9", 0, 0, 4, 1),
        posts("::ffff:198.51.100.9", 0, 0, 5, 1),
    ]
    .concat();
    let log = f.file("nets.log", log);
    f.scan(&[&log, "--threshold", "0", "--client", "subnet"])
        .success();
    let rows: Vec<(String, String)> = f
        .violations()
        .iter()
        .map(|r| (r[0].clone(), r[4].clone()))
        .collect();
    assert_eq!(
        rows,
        [
            ("198.51.100.0/24".into(), "3".into()),
            ("198.51.101.0/24".into(), "1".into()),
            ("2001:db8:4d2:7::/64".into(), "2".into()),
        ]
    );
    f.scan(&[
        &log,
        "--threshold",
        "0",
        "--client",
        "subnet",
        "--subnet-v4",
        "16",
        "--subnet-v6",
        "32",
    ])
    .success();
    let clients: Vec<String> = f.violations().iter().map(|r| r[0].clone()).collect();
    assert_eq!(clients, ["198.51.0.0/16", "2001:db8::/32"]);
    assert_eq!(f.report()["settings"]["subnet_ipv4_prefix"], 16);
}

// ---------------------------------------------------------------- settings

#[test]
fn since_and_until_drop_and_count_out_of_range() {
    let f = Fixture::new();
    let log = [
        line("10.0.0.1", "09/Oct/2026:23:59:59 +0000", "/p", 200),
        line("10.0.0.1", "10/Oct/2026:00:00:00 +0000", "/p", 200),
        line("10.0.0.1", "10/Oct/2026:11:59:59 +0000", "/p", 200),
        // Until is exclusive; +0200 makes this 12:00:00Z.
        line("10.0.0.1", "10/Oct/2026:14:00:00 +0200", "/p", 200),
        "not a log line\n".into(),
    ]
    .concat();
    let log = f.file("a.log", log);
    f.scan(&[
        &log,
        "--threshold",
        "0",
        "--since",
        "2026-10-10T00:00:00Z",
        "--until",
        "2026-10-10T14:00:00+02:00",
    ])
    .success();
    let i = f.input("a.log");
    assert_eq!(i["out_of_range"], 2);
    assert_eq!(i["malformed"], 1);
    assert_eq!(i["requests"], 2);
    assert_eq!(
        joined(&f.violations()),
        ["10.0.0.1,1,2026-10-10T00:00:00Z,2026-10-11T00:00:00Z,2,2,0.03"]
    );
    let r = f.report();
    assert_eq!(r["settings"]["since"], "2026-10-10T00:00:00Z");
    assert_eq!(r["settings"]["until"], "2026-10-10T12:00:00Z");
    assert_eq!(r["totals"]["out_of_range"], 2);
}

#[test]
fn a_settings_file_with_flags_over_it() {
    let f = Fixture::new();
    let log = f.file("a.log", numbered("10.0.0.1", 25));
    let config = f.file(
        "settings.toml",
        "threshold = 100\nwindow = \"12h\"\nrate = \"0.5\"\nper = 10\nrounding = \"per-full\"\nmode = \"calendar\"\n",
    );
    // The file alone: threshold 100 bills nothing.
    f.scan(&[&log, "--config", &config]).success();
    assert!(f.violations().is_empty());
    // Flags win over it; the rest of the file holds.
    f.scan(&[&log, "--config", &config, "--threshold", "5"])
        .success();
    assert_eq!(
        joined(&f.violations()),
        ["10.0.0.1,1,2026-10-10T00:00:00Z,2026-10-10T12:00:00Z,25,25,1.00"]
    );
    let s = &f.report()["settings"];
    assert_eq!(
        (
            &s["threshold"],
            &s["window"],
            &s["rate_usd"],
            &s["per"],
            &s["rounding"],
            &s["mode"]
        ),
        (
            &5.into(),
            &"12h".into(),
            &"0.5".into(),
            &10.into(),
            &"per-full".into(),
            &"calendar".into()
        )
    );
    f.scan(&[
        &log,
        "--config",
        &config,
        "--rounding",
        "pro-rata",
        "--threshold",
        "5",
    ])
    .success();
    assert_eq!(f.violations()[0][6], "1.25");
}

// ---------------------------------------------------------------- exit statuses

#[test]
fn usage_errors_exit_2_and_write_nothing() {
    let f = Fixture::new();
    let log = f.file("a.log", numbered("10.0.0.1", 1));
    let bad_config = f.file("bad.toml", "thresold = 5\n");
    let missing_config = f.path("missing.toml").display().to_string();
    let cases: Vec<Vec<&str>> = vec![
        vec!["--window", "0s"],
        vec!["--window", "24"],
        vec!["--rate", "1.1234567"],
        vec!["--rate", "-1"],
        vec!["--per", "0"],
        vec!["--threshold", "-1"],
        vec!["--rounding", "nearest"],
        vec!["--mode", "hourly"],
        vec!["--client", "mac"],
        vec!["--since", "yesterday"],
        vec!["--threads", "0"],
        vec!["--rules", "x.toml"],
        vec!["--no-such-flag"],
        vec!["--config", &missing_config],
        vec!["--config", &bad_config],
    ];
    for extra in cases {
        let mut args = vec![log.as_str()];
        args.extend(&extra);
        let a = f.scan(&args).code(2);
        assert!(!stderr_of(&a).is_empty(), "{extra:?} explains itself");
        assert!(!f.out().exists(), "{extra:?} wrote outputs");
    }
    // No paths at all.
    f.scan(&[]).code(2);
}

/// Issue 15: `--out` naming a file (or a path under one) is a usage error in plain
/// words, before anything is read, and nothing is changed.
#[test]
fn an_output_folder_that_is_a_file_exits_2_in_plain_words() {
    let f = Fixture::new();
    let log = f.file("a.log", numbered("10.0.0.1", 2));
    let blocker = f.file("blocker", "not a folder");
    let a = f
        .scan_into(&f.path("blocker"), &[&log, "--threshold", "0"])
        .code(2);
    assert!(
        stderr_of(&a).starts_with(&format!(
            "scrapemeter: error: --out {blocker}: that is a file, not a folder"
        )),
        "{}",
        stderr_of(&a)
    );
    let a = f
        .scan_into(&f.path("blocker/sub"), &[&log, "--threshold", "0"])
        .code(2);
    assert!(
        stderr_of(&a).contains(&format!("{blocker} is a file, not a folder")),
        "{}",
        stderr_of(&a)
    );
    assert_eq!(std::fs::read_to_string(&blocker).unwrap(), "not a folder");
    let mut left: Vec<String> = std::fs::read_dir(f.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["a.log", "blocker"]);
}

#[test]
fn strict_passes_clean_input() {
    let f = Fixture::new();
    let log = f.file("a.log", numbered("10.0.0.1", 2));
    f.scan(&[&log, "--strict", "--threshold", "0"]).success();
    let bad = f.file("b.log", "junk\n");
    // Still writes its reports when it fails.
    std::fs::remove_dir_all(f.out()).unwrap();
    f.scan(&[&log, &bad, "--strict", "--threshold", "0"])
        .code(1);
    assert_eq!(f.violations().len(), 1);
}

/// A folder holding a link to itself is walked once; the loop is not an unreadable
/// input, so `--strict` does not fail because of it.
#[test]
fn a_symlink_loop_is_not_followed_nor_an_error() {
    let f = Fixture::new();
    f.file("logs/a.log", numbered("10.0.0.1", 2));
    std::os::unix::fs::symlink("../logs", f.path("logs/loop")).unwrap();
    let folder = f.path("logs").display().to_string();
    f.scan(&[&folder, "--strict", "--threshold", "0"]).success();
    let r = f.report();
    assert_eq!(
        r["inputs"].as_array().unwrap().len(),
        1,
        "{:#?}",
        r["inputs"]
    );
    assert_eq!(r["totals"]["requests"], 2);
    let skipped: Vec<&str> = r["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["path"].as_str().unwrap())
        .collect();
    assert!(
        skipped.iter().any(|p| p.ends_with("logs/loop")),
        "{skipped:?}"
    );
}

/// Reports are ordinary files: readable by whoever may read the folder (the umask
/// decides), not owner-only like a temporary file.
#[test]
fn reports_are_created_with_ordinary_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let f = Fixture::new();
    let log = f.file("a.log", numbered("10.0.0.1", 2));
    std::process::Command::new("sh")
        .arg("-c")
        .arg("umask 022 && exec \"$0\" scan \"$1\" --out \"$2\" -q")
        .arg(BIN)
        .arg(&log)
        .arg(f.out())
        .status()
        .unwrap()
        .success()
        .then_some(())
        .expect("scan succeeds");
    for name in ["violations.csv", "clients.csv", "report.json"] {
        let mode = std::fs::metadata(f.out().join(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644, "{name}: {mode:o}");
    }
}

/// Exit 3 must leave no half-written set of reports: here report.json cannot be
/// replaced (a folder has its name) after violations.csv and clients.csv are renamed
/// into place, so those are rolled back (removed: they did not exist before).
#[test]
fn a_late_write_failure_leaves_no_new_reports() {
    let f = Fixture::new();
    let log = f.file("a.log", numbered("10.0.0.1", 2));
    std::fs::create_dir_all(f.out().join("report.json")).unwrap();
    f.scan(&[&log, "--threshold", "0"]).code(3);
    let mut left: Vec<String> = std::fs::read_dir(f.out())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["report.json"]);
}

/// A line of exactly 1 MiB (without its line ending, LF or CRLF) is read; one byte
/// more is malformed.
#[test]
fn the_one_mib_limit_is_exact() {
    const MIB: usize = 1024 * 1024;
    let sized = |len: usize, n: u32| {
        let head = format!("10.0.0.{n} - - [10/Oct/2026:00:00:00 +0000] \"GET /");
        let tail = " HTTP/1.1\" 200 1";
        format!("{head}{}{tail}", "x".repeat(len - head.len() - tail.len()))
    };
    assert_eq!(sized(MIB, 1).len(), MIB);
    let f = Fixture::new();
    let text = format!(
        "{}\n{}\r\n{}\n{}\r\n",
        sized(MIB, 1),
        sized(MIB, 2),
        sized(MIB + 1, 3),
        sized(MIB + 1, 4)
    );
    let log = f.file("edge.log", text);
    f.scan(&[&log, "--threshold", "0", "--format", "combined"])
        .success();
    let i = f.input("edge.log");
    assert_eq!(i["requests"], 2);
    assert_eq!(i["malformed"], 2);
    let lines: Vec<u64> = i["malformed_examples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [3, 4]);
}

#[test]
fn stdin_identical_to_a_file_is_read_once() {
    let f = Fixture::new();
    let text = numbered("10.0.0.1", 3);
    let log = f.file("a.log", &text);
    Command::new(BIN)
        .args(["scan", "-", &log, "--threshold", "0", "-q", "--out"])
        .arg(f.out())
        .write_stdin(text)
        .assert()
        .success();
    let r = f.report();
    assert_eq!(r["inputs"].as_array().unwrap().len(), 1);
    assert_eq!(r["skipped"][0]["path"], "-");
    assert_eq!(f.violations()[0][4], "3");
}

#[test]
fn the_summary_on_stdout_names_flagged_clients() {
    let f = Fixture::new();
    let log = f.file("a.log", numbered("203.0.113.7", 3));
    let out = Command::new(BIN)
        .args(["scan", &log, "--threshold", "1", "--out"])
        .arg(f.out())
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(stdout.contains("203.0.113.7"), "{stdout}");
    assert!(stdout.contains("0.05"), "{stdout}");
    assert!(stdout.contains(&f.out().display().to_string()), "{stdout}");
}

/// Issue 15 (SPEC.md, "Malformed"): a needed quoted field without its closing quote,
/// and a missing bytes field, make the line malformed; it is never billed, and a user
/// agent cut inside its quotes never becomes a client.
#[test]
fn cut_lines_are_malformed_in_every_format() {
    let f = Fixture::new();
    // Combined: cut right after the status; the request never closes.
    let mut text = numbered("10.0.0.1", 3);
    text.push_str("192.0.2.9 - - [10/Oct/2026:13:55:36 +0000] \"OPTIONS /x HTTP/2\" 200\n");
    text.push_str("192.0.2.9 - - [10/Oct/2026:13:55:37 +0000] \"GET http://example.com:8443\n");
    let clf = f.file("cut.log", &text);
    f.scan(&[&clf, "--threshold", "0", "--max-malformed", "1"])
        .success();
    let i = f.input("cut.log");
    assert_eq!(
        (i["requests"].as_u64(), i["malformed"].as_u64()),
        (Some(3), Some(2))
    );
    let reasons: Vec<&str> = i["malformed_examples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["no bytes field", "request field not closed"]);
    assert!(f.violations().iter().all(|r| r[0] != "192.0.2.9"));
    // The same lines under the equivalent nginx log_format: malformed too.
    let nginx = r#"nginx:$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent""#;
    f.scan(&[&clf, "--format", nginx, "--max-malformed", "1"])
        .success();
    let i = f.input("cut.log");
    assert_eq!(
        (i["requests"].as_u64(), i["malformed"].as_u64()),
        (Some(3), Some(2))
    );

    // ALB: cut inside the request field; a user agent with no closing quote.
    let good = r#"http 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 10.0.0.1:80 0.000 0.001 0.000 200 200 34 366 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.46.0" - - arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "Root=1-58337262-36d228ad5d99923122bbe354" "-" "-" 0 2018-07-02T22:22:48.364000Z "forward" "-" "-" "10.0.0.1:80" "200" "-" "-""#;
    let cut_request = r#"http 2018-07-02T22:23:01.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.40:2817 10.0.0.1:80 0.000 0.001 0.000 200 200 120 5120 "GET http://example.com:8443"#;
    let cut_ua = r#"http 2018-07-02T22:23:02.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.41:2817 10.0.0.1:80 0.000 0.001 0.000 200 200 34 366 "GET http://www.example.com:80/p HTTP/1.1" "Mozilla/5.0 (iPhone; CPU iPhon"#;
    let alb = f.file("alb.log", format!("{good}\n{cut_request}\n{cut_ua}\n"));
    let args = |client: &'static str| {
        vec![
            alb.clone(),
            "--format".into(),
            "alb".into(),
            "--threshold".into(),
            "0".into(),
            "--client".into(),
            client.into(),
            "--max-malformed".into(),
            "1".into(),
        ]
    };
    let a: Vec<String> = args("ip");
    f.scan(&a.iter().map(String::as_str).collect::<Vec<_>>())
        .success();
    let i = f.input("alb.log");
    assert_eq!(
        (i["requests"].as_u64(), i["malformed"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(
        i["malformed_examples"][0]["reason"],
        "request field not closed"
    );
    let clients: Vec<String> = f.clients().into_iter().map(|r| r[0].clone()).collect();
    assert_eq!(clients, ["192.168.131.39", "192.168.131.41"]);
    let a: Vec<String> = args("ua");
    f.scan(&a.iter().map(String::as_str).collect::<Vec<_>>())
        .success();
    let i = f.input("alb.log");
    assert_eq!(
        (i["requests"].as_u64(), i["malformed"].as_u64()),
        (Some(1), Some(2))
    );
    let clients: Vec<String> = f.clients().into_iter().map(|r| r[0].clone()).collect();
    assert_eq!(clients, ["curl/7.46.0"]);
}
