//! `scrapemeter rules check`: a rules file validated and listed, log lines weighed,
//! and the bundled `rules.example.toml` checked end to end.

use assert_cmd::Command;
use scrapemeter::input::format::FieldSet;
use scrapemeter::input::rules::RuleSet;
use std::fs;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

const RULES: &str = r#"
[[rule]]
name = "timeline"
method = ["GET"]
path = "/api/*/timeline/**"
posts = { query = "count", default = 20, max = 200 }

[[rule]]
name = "single post"
path_regex = '^/[^/]+/status/\d+$'
posts = 1
"#;

fn rules_file(dir: &TempDir, text: &str) -> PathBuf {
    let p = dir.path().join("rules.toml");
    fs::write(&p, text).unwrap();
    p
}

fn check(file: &Path, extra: &[&str]) -> (i32, String, String) {
    let out = Command::cargo_bin("scrapemeter")
        .unwrap()
        .args(["rules", "check"])
        .arg(file)
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn combined(target: &str, status: u16) -> String {
    format!(
        "198.51.100.7 - - [10/Oct/2026:10:00:00 +0000] \"GET {target} HTTP/1.1\" {status} 512 \"-\" \"curl/8\""
    )
}

/// The line of the output that says how the line was weighed.
fn verdict(stdout: &str) -> &str {
    stdout
        .lines()
        .find(|l| l.starts_with("matched rule") || l.starts_with("no rule"))
        .unwrap_or_else(|| panic!("no verdict in:\n{stdout}"))
}

#[test]
fn lists_the_rules_in_order() {
    let dir = TempDir::new().unwrap();
    let (code, out, _) = check(&rules_file(&dir, RULES), &[]);
    assert_eq!(code, 0);
    let timeline = out.find("1. timeline").unwrap();
    let single = out.find("2. single post").unwrap();
    assert!(timeline < single, "{out}");
    assert!(
        out.contains(r#"method = ["GET"], path = "/api/*/timeline/**""#),
        "{out}"
    );
    assert!(
        out.contains("query parameter count (default 20, at most 200)"),
        "{out}"
    );
    assert!(out.contains("posts: 1\n"), "{out}");
    assert!(!out.contains("matched"), "{out}");
}

#[test]
fn weighs_a_line() {
    let dir = TempDir::new().unwrap();
    let f = rules_file(&dir, RULES);
    for (line, want) in [
        (
            combined("/api/v2/timeline/home?count=500", 200),
            "matched rule 1 (timeline): 200 posts",
        ),
        (
            combined("/api/v2/timeline/home", 200),
            "matched rule 1 (timeline): 20 posts",
        ),
        (
            combined("/jack/status/12", 304),
            "matched rule 2 (single post): 1 post",
        ),
        (combined("/jack/status/12", 404), "no rule matched: 0 posts"),
        (combined("/about", 200), "no rule matched: 0 posts"),
    ] {
        let (code, out, err) = check(&f, &["--line", &line]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(verdict(&out), want, "{line}");
    }
}

#[test]
fn reads_the_line_in_the_format_given() {
    let dir = TempDir::new().unwrap();
    let f = rules_file(&dir, RULES);
    let json = r#"{"ts":1760090400,"request":{"client_ip":"1.2.3.4","method":"GET","uri":"/api/v1/timeline/x?count=7"},"status":200}"#;
    let (code, out, _) = check(&f, &["--line", json]);
    assert_eq!(code, 0);
    assert!(out.contains("line read as json"), "{out}");
    assert_eq!(verdict(&out), "matched rule 1 (timeline): 7 posts");
    let (code, out, _) = check(&f, &["--line", json, "--format", "json"]);
    assert_eq!(code, 0);
    assert_eq!(verdict(&out), "matched rule 1 (timeline): 7 posts");
    let nginx = "1.2.3.4|10/Oct/2026:10:00:00 +0000|GET /a/status/9 HTTP/1.1|200";
    let (code, out, _) = check(
        &f,
        &[
            "--line",
            nginx,
            "--format",
            "nginx:$remote_addr|$time_local|$request|$status",
        ],
    );
    assert_eq!(code, 0);
    assert_eq!(verdict(&out), "matched rule 2 (single post): 1 post");
    // A line the format cannot read is a usage error, with the reason.
    let (code, _, err) = check(&f, &["--line", json, "--format", "alb"]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot be read as alb"), "{err}");
    let (code, _, err) = check(&f, &["--line", "garbage"]);
    assert_eq!(code, 2);
    assert!(err.contains("no format reads this line"), "{err}");
}

#[test]
fn a_bad_rules_file_exits_2_with_the_load_error() {
    let dir = TempDir::new().unwrap();
    let bad = "[[rule]]\nname = \"x\"\npath = \"/a\"\npath_regex = \"/b\"\nposts = 1\n";
    let f = rules_file(&dir, bad);
    let want = RuleSet::load(&f, &mut FieldSet::default()).unwrap_err();
    let (code, out, err) = check(&f, &[]);
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert_eq!(err.trim_end(), format!("scrapemeter: error: {want}"));
    let (code, _, err) = check(&dir.path().join("missing.toml"), &[]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot read rules file"), "{err}");
}

#[test]
fn the_example_rules_file() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules.example.toml");
    let set = RuleSet::load(&example, &mut FieldSet::default()).unwrap();
    assert_eq!(
        set.names(),
        [
            "static assets",
            "timeline",
            "timelines (limit)",
            "single post",
            "search",
            "everything else"
        ]
    );
    for (target, status, want) in [
        ("/api/v2/timeline/home?count=50", 200, "timeline): 50 posts"),
        ("/api/v2/timeline/home", 200, "timeline): 20 posts"),
        (
            "/api/v2/timeline/home?count=5000",
            200,
            "timeline): 200 posts",
        ),
        (
            "/api/v2/timeline/home?count=50",
            500,
            "no rule matched: 0 posts",
        ),
        ("/api/v2/posts/1234567", 200, "single post): 1 post"),
        // The bundled sample-logs/ (a Mastodon-style API).
        (
            "/api/v1/timelines/public?limit=40&page=3",
            200,
            "timelines (limit)): 40 posts",
        ),
        (
            "/api/v1/timelines/home?limit=500",
            200,
            "timelines (limit)): 40 posts",
        ),
        (
            "/api/v1/accounts/42/statuses",
            200,
            "timelines (limit)): 20 posts",
        ),
        ("/api/v1/statuses/110000000000", 200, "single post): 1 post"),
        (
            "/api/v1/statuses/110000000000/context",
            200,
            "everything else): 0 posts",
        ),
        ("/api/v2/search?q=cats&count=500", 200, "search): 100 posts"),
        ("/api/v2/search?q=cats", 304, "search): 20 posts"),
        ("/static/app.JS", 200, "static assets): 0 posts"),
        ("/api/v2/timeline/logo.png", 200, "static assets): 0 posts"),
        ("/login", 200, "everything else): 0 posts"),
    ] {
        let (code, out, err) = check(&example, &["--line", &combined(target, status)]);
        assert_eq!(code, 0, "{err}");
        assert!(verdict(&out).ends_with(want), "{target}: {out}");
    }
}
