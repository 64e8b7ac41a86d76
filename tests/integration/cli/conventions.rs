//! Issue 15, "Conventions": `--exclude`, the run's own folders left out, one error
//! prefix, short flags, `--help` (defaults one way, exit statuses, three examples),
//! shell completions and the man page.

use super::*;

fn run(args: &[&str]) -> std::process::Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn skipped(f: &Fixture) -> Vec<(String, String)> {
    let r = f.report();
    r["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let p = s["path"].as_str().unwrap();
            let p = p.rsplit_once("logs/").map_or(p, |(_, rest)| rest);
            (p.to_string(), s["reason"].as_str().unwrap().to_string())
        })
        .collect()
}

fn read_names(f: &Fixture) -> Vec<String> {
    f.report()["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let p = i["path"].as_str().unwrap();
            p.rsplit_once("logs/")
                .map_or(p, |(_, rest)| rest)
                .to_string()
        })
        .collect()
}

#[test]
fn exclude_and_the_runs_own_folders_are_left_out() {
    let f = Fixture::new();
    f.file("logs/a.log", posts("10.0.0.1", 0, 0, 0, 3));
    f.file("logs/archive/b.log", posts("10.0.0.2", 0, 0, 0, 3));
    f.file("logs/old/c.log.bak", posts("10.0.0.3", 0, 0, 0, 3));
    let logs = f.path("logs").display().to_string();
    let out = f.path("logs/reports");
    // First run: the reports folder does not exist yet; second run: it is left out,
    // with a note, and so are the excluded paths.
    for _ in 0..2 {
        Command::new(BIN)
            .args([
                "scan",
                &logs,
                "-q",
                "--threshold",
                "0",
                "--exclude",
                "archive",
            ])
            .args(["--exclude", "*.bak", "--strict", "-o"])
            .arg(&out)
            .assert()
            .success();
    }
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let short = |p: &serde_json::Value| {
        p.as_str()
            .unwrap()
            .rsplit_once("logs/")
            .unwrap()
            .1
            .to_string()
    };
    let names: Vec<String> = r["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| short(&i["path"]))
        .collect();
    assert_eq!(names, ["a.log"]);
    let left_out: Vec<(String, String)> = r["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (short(&s["path"]), s["reason"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(
        left_out,
        [
            (
                "archive".to_string(),
                "excluded by --exclude archive".to_string()
            ),
            ("old/c.log.bak".into(), "excluded by --exclude *.bak".into()),
            (
                "reports".into(),
                "the output folder of this run (--out)".into()
            ),
        ]
    );
    // The note is on stderr; a path named as such is read even when a glob matches it.
    let o = Command::new(BIN)
        .args(["scan", &logs, "-q", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        text(&o.stderr).contains("reports skipped: the output folder of this run (--out)"),
        "{}",
        text(&o.stderr)
    );
    let bak = f.path("logs/old/c.log.bak").display().to_string();
    f.scan(&[&bak, "--exclude", "*.bak", "--threshold", "0"])
        .success();
    assert_eq!(read_names(&f), ["old/c.log.bak"]);
    // A settings file can hold the list, and a bad glob is a usage error.
    let settings = f.file(
        "s.toml",
        "exclude = [\"*.bak\", \"archive\", \"reports\"]\n",
    );
    f.scan(&[&logs, "--config", &settings, "--threshold", "0"])
        .success();
    assert_eq!(read_names(&f), ["a.log"]);
    assert!(skipped(&f)
        .iter()
        .any(|(p, r)| p == "archive" && r.contains("--exclude")));
    f.scan(&[&logs, "--exclude", "["]).code(2);
}

#[test]
fn the_state_folder_inside_an_input_folder_is_left_out() {
    let f = Fixture::new();
    f.file("logs/a.log", posts("10.0.0.1", 0, 0, 0, 3));
    let logs = f.path("logs").display().to_string();
    let state = f.path("logs/state").display().to_string();
    f.scan(&[&logs, "--state", &state]).success();
    f.scan(&[&logs, "--state", &state]).success();
    assert!(
        skipped(&f).contains(&(
            "state".to_string(),
            "the state folder of this run (--state)".to_string()
        )),
        "{:?}",
        skipped(&f)
    );
}

#[test]
fn every_error_has_one_prefix() {
    for args in [
        &["scan", "--no-such-flag"][..],
        &["scan", "nosuch.log", "-o", "x"],
        &["scan", "--window", "0s", "x", "-o", "x"],
        &["completions", "tcsh"],
        &["frobnicate"],
    ] {
        let o = run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = text(&o.stderr);
        assert!(err.starts_with("scrapemeter: error: "), "{args:?}: {err}");
        assert_eq!(err.matches("error:").count(), 1, "{args:?}: {err}");
    }
}

#[test]
fn short_flags_for_the_common_ones() {
    let f = Fixture::new();
    let log = f.file("a.log", posts("10.0.0.1", 0, 0, 0, 3));
    let out = f.out().display().to_string();
    Command::new(BIN)
        .args(["scan", &log, "-f", "combined", "-j", "1", "-o", &out, "-q"])
        .args(["--threshold", "0"])
        .assert()
        .success()
        .stdout("");
    assert_eq!(f.report()["settings"]["format"], "combined");
    assert_eq!(f.report()["run"]["threads"], 1);
    assert_eq!(f.violations().len(), 1);
}

#[test]
fn help_writes_defaults_one_way_and_ends_with_exit_statuses_and_examples() {
    for cmd in [&["--help"][..], &["scan", "--help"]] {
        let help = text(&run(cmd).stdout);
        let tail: Vec<&str> = help.trim_end().lines().rev().take(4).collect();
        assert_eq!(tail[3], "Examples:", "{cmd:?}: {help}");
        assert!(
            tail[..3].iter().all(|l| l.starts_with("  scrapemeter ")),
            "{help}"
        );
        for status in ["  0  ", "  1  ", "  2  ", "  3  ", "  4  with --state"] {
            assert!(help.contains(status), "{cmd:?} lacks {status:?}");
        }
    }
    for cmd in [
        "scan",
        "explain",
        "map",
        "reduce",
        "generate",
        "completions",
        "man",
    ] {
        let help = text(&run(&[cmd, "--help"]).stdout);
        assert!(!help.contains("[default:"), "{cmd}: {help}");
        assert!(!help.contains("(default "), "{cmd}: {help}");
    }
    let rules = text(&run(&["rules", "check", "--help"]).stdout);
    assert!(
        !rules.contains("[default:") && rules.contains("(default: auto"),
        "{rules}"
    );
}

#[test]
fn completions_and_a_man_page() {
    for (shell, mark) in [
        ("bash", "_scrapemeter()"),
        ("zsh", "#compdef scrapemeter"),
        ("fish", "complete -c scrapemeter"),
    ] {
        let o = run(&["completions", shell]);
        assert!(o.status.success(), "{shell}");
        let script = text(&o.stdout);
        assert!(script.contains(mark), "{shell}: {script}");
        assert!(
            script.contains("max-malformed") && script.contains("exclude"),
            "{shell}"
        );
    }
    let o = run(&["man"]);
    assert!(o.status.success());
    let page = text(&o.stdout);
    assert!(
        page.contains(".TH scrapemeter 1") && page.contains("completions"),
        "{page}"
    );
}
