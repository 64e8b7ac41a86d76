//! The README's nightly example, run literally over `sample-logs/` one day at a time,
//! bills what one run over the same files bills; a file held back two days is late,
//! and loud; and servers in four time zones, rotating at their local midnight, one of
//! them a night late, lose no request under the default lateness.

use super::{csv_rows, gzip, zstd, BIN, VIOLATIONS_HEADER};
use assert_cmd::Command;
use std::path::Path;

const STATE_HEADER: &str =
    "client,window,window_start,window_end,posts,requests,damages_usd,status";
const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// The README's code block that runs the nightly example over the sample logs.
fn readme_nightly_example() -> String {
    let readme = std::fs::read_to_string(Path::new(REPO).join("README.md")).unwrap();
    let start = readme
        .find("```sh\nfor d in ")
        .expect("the README's nightly example over sample-logs/");
    let body = &readme[start + "```sh\n".len()..];
    body[..body.find("```").unwrap()].to_string()
}

/// A folder with `sample-logs` linked in, for commands written with relative paths.
fn workdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(
        Path::new(REPO).join("sample-logs"),
        dir.path().join("sample-logs"),
    )
    .unwrap();
    dir
}

/// `PATH` with the built binary first, so that `scrapemeter` in a shell line is it.
fn path_with_bin() -> String {
    let bin_dir = Path::new(BIN).parent().unwrap();
    format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// Line `n` (from 1) of a log file, decompressed by its name.
fn line_of(path: &Path, n: u64) -> String {
    use std::io::Read;
    let raw = std::fs::read(path).unwrap();
    let text = match path.extension().and_then(|e| e.to_str()) {
        Some("gz") => {
            let mut s = Vec::new();
            flate2::read::MultiGzDecoder::new(&raw[..])
                .read_to_end(&mut s)
                .unwrap();
            s
        }
        Some("zst") => zstd::decode_all(&raw[..]).unwrap(),
        _ => raw,
    };
    String::from_utf8_lossy(&text)
        .lines()
        .nth(n as usize - 1)
        .unwrap()
        .to_string()
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.join(name).display()))
}

/// Rows of a state run's violations.csv without the status column, and the final ones.
fn rows_and_finals(text: &str) -> (Vec<String>, Vec<String>) {
    let rows = csv_rows(text, STATE_HEADER);
    let all = rows.iter().map(|r| r[..7].join(",")).collect();
    let finals = rows
        .iter()
        .filter(|r| r[7] == "final")
        .map(|r| r[..7].join(","))
        .collect();
    (all, finals)
}

/// One scan without state over `paths` (relative to `dir`), into `dir/one`.
fn one_run(dir: &Path, paths: &[&str], extra: &[&str]) -> (Vec<String>, String) {
    Command::new(BIN)
        .current_dir(dir)
        .arg("scan")
        .args(paths)
        .args(extra)
        .args(["--out", "one", "-q"])
        .assert()
        .success();
    let v = read(&dir.join("one"), "violations.csv");
    let rows = csv_rows(&v, VIOLATIONS_HEADER)
        .iter()
        .map(|r| r.join(","))
        .collect();
    (rows, read(&dir.join("one"), "clients.csv"))
}

#[test]
fn the_readme_nightly_example_bills_what_one_run_bills() {
    let dir = workdir();
    let example = readme_nightly_example();
    assert!(example.contains("--state S") && example.contains("--out R-$d"));
    // Literally, under `bash -e`: any night that exits non-zero fails the loop.
    Command::new("bash")
        .current_dir(dir.path())
        .env("PATH", path_with_bin())
        .args(["-e", "-c", &example])
        .assert()
        .success();
    let (one, one_clients) = one_run(dir.path(), &["sample-logs/*/access.log-2026030*"], &[]);
    assert_eq!(one.len(), 2, "{one:#?}");
    let last = dir.path().join("R-20260304");
    let (rows, finals) = rows_and_finals(&read(&last, "violations.csv"));
    // To the post and the cent: the last night's windows are the one run's…
    assert_eq!(rows, one);
    // …and what is final is final in the one run too.
    assert!(!finals.is_empty());
    for f in &finals {
        assert!(one.contains(f), "{f} not in {one:#?}");
    }
    assert_eq!(read(&last, "clients.csv"), one_clients);
    // Every billed window of the last night, final ones included, shows evidence
    // lines found at the stated place, and the page names every input behind it.
    let r: serde_json::Value = serde_json::from_str(&read(&last, "report.json")).unwrap();
    let html = read(&last, "report.html");
    for c in r["clients"].as_array().unwrap() {
        for w in c["windows"].as_array().unwrap() {
            for edge in ["first", "last"] {
                let e = &w["evidence"][edge];
                assert!(
                    e.is_object(),
                    "{} window {}: no {edge} line",
                    c["client"],
                    w["window"]
                );
                let file = dir.path().join(e["file"].as_str().unwrap());
                let line = line_of(&file, e["line"].as_u64().unwrap());
                assert_eq!(line, e["text"].as_str().unwrap());
                assert!(
                    line.starts_with(c["client"].as_str().unwrap())
                        || line.contains(c["client"].as_str().unwrap())
                );
            }
        }
    }
    for f in std::fs::read_dir(Path::new(REPO).join("sample-logs/nyc1")).unwrap() {
        let name = f.unwrap().file_name().into_string().unwrap();
        assert!(
            html.contains(&format!("sample-logs/nyc1/{name}")),
            "{name} not on the page"
        );
    }
    // A rerun that reads nothing new bills the same, with the same evidence.
    Command::new(BIN)
        .current_dir(dir.path())
        .args([
            "scan",
            "sample-logs/nyc1/access.log-20260304.zst",
            "sample-logs/fra1/access.log-20260304.gz",
        ])
        .args(["--state", "S", "--out", "again", "-q"])
        .assert()
        .success();
    let again = dir.path().join("again");
    assert_eq!(
        read(&again, "violations.csv"),
        read(&last, "violations.csv")
    );
    assert_eq!(read(&again, "clients.csv"), read(&last, "clients.csv"));
    let r2: serde_json::Value = serde_json::from_str(&read(&again, "report.json")).unwrap();
    for (a, b) in r["clients"]
        .as_array()
        .unwrap()
        .iter()
        .zip(r2["clients"].as_array().unwrap())
    {
        for (wa, wb) in a["windows"]
            .as_array()
            .unwrap()
            .iter()
            .zip(b["windows"].as_array().unwrap())
        {
            assert_eq!(wa["evidence"], wb["evidence"]);
        }
    }
    // The ledger's chain head after the fourth night, in the report and on the page.
    let head = &r["state"]["ledger_head"];
    assert_eq!(head["run"], 4, "{head:#}");
    assert!(html.contains(head["head"].as_str().unwrap()));
    // No request was late on any night.
    for d in ["20260301", "20260302", "20260303", "20260304"] {
        let r: serde_json::Value =
            serde_json::from_str(&read(&dir.path().join(format!("R-{d}")), "report.json")).unwrap();
        assert_eq!(r["state"]["late_requests"], 0, "night {d}");
    }
}

#[test]
fn a_file_held_back_two_days_is_late_and_loud() {
    let dir = workdir();
    let nights: [&[&str]; 5] = [
        &["sample-logs/nyc1/access.log-20260301.gz"],
        &["sample-logs/*/access.log-20260302*"],
        // fra1's file of the 3rd is held back…
        &["sample-logs/nyc1/access.log-20260303*"],
        &["sample-logs/*/access.log-20260304*"],
        // …and shows up two nights later.
        &["sample-logs/fra1/access.log-20260303*"],
    ];
    for (i, paths) in nights.iter().enumerate() {
        let out = Command::new(BIN)
            .current_dir(dir.path())
            .arg("scan")
            .args(*paths)
            .args(["--state", "S", "--out", &format!("R{i}"), "-q"])
            .assert()
            .code(if i == 4 { 4 } else { 0 });
        let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        if i < 4 {
            assert!(!stderr.contains("late"), "night {i}: {stderr}");
            continue;
        }
        // The file, the clients, how late, and what would have covered it.
        assert!(
            stderr.contains("fra1/access.log-20260303.gz: 55,121 late requests"),
            "{stderr}"
        );
        assert!(stderr.contains("203.0.113.77 (30,160 posts)"), "{stderr}");
        assert!(stderr.contains("a --lateness of"), "{stderr}");
        let r: serde_json::Value =
            serde_json::from_str(&read(&dir.path().join("R4"), "report.json")).unwrap();
        let s = &r["state"];
        assert_eq!(s["late_requests"], 55_121);
        assert_eq!(s["late_posts"], 42_333);
        assert_eq!(s["late_clients"][0]["client"], "203.0.113.77");
        assert_eq!(s["late_clients"][0]["posts"], 30_160);
        assert_eq!(s["late_posts_all_runs"], 42_333);
        let html = read(&dir.path().join("R4"), "report.html");
        assert!(html.contains(
            "<strong>55,121 requests (42,333 posts) read in this run were late</strong>"
        ));
        assert!(html.contains("<td class=\"key\">203.0.113.77</td><td class=\"n\">31,136</td><td class=\"n\">30,160</td>"));
    }
}

/// Four servers at UTC−8, −5, +1 and +9, each rotating at its local midnight over five
/// local days; the UTC−8 server's first file shows up a night after the others', and
/// the UTC+1 server's third file a night late. Under the default lateness no request
/// is late, and the last night bills what one run bills.
#[test]
fn servers_in_four_time_zones_one_file_a_night_late() {
    const DAY: i64 = 86_400;
    /// 2026-10-10T00:00:00Z
    const OCT10: i64 = 1_791_590_400;
    const THRESHOLD: [&str; 2] = ["--threshold", "1500"];
    let offsets_h: [i64; 4] = [-8, -5, 1, 9];
    let dir = tempfile::tempdir().unwrap();
    // A scraper that spreads its requests over all four servers, one every 20 s from
    // 04:00 UTC on 11 Oct to 02:00 on 12 Oct (3,960 posts), a second one lighter, and
    // a steady client on every server.
    let mut lines: Vec<(usize, i64, String)> = Vec::new();
    let mut push = |server: usize, ip: &str, t: i64, n: i64| {
        let local = chrono::FixedOffset::east_opt((offsets_h[server] * 3600) as i32).unwrap();
        let when = chrono::DateTime::from_timestamp(t, 0)
            .unwrap()
            .with_timezone(&local);
        lines.push((
            server,
            t,
            format!(
                "{ip} - - [{}] \"GET /post/{n} HTTP/1.1\" 200 9 \"-\" \"bot/1.0\"\n",
                when.format("%d/%b/%Y:%H:%M:%S %z")
            ),
        ));
    };
    for (k, t) in (OCT10 + DAY + 4 * 3600..OCT10 + 2 * DAY + 2 * 3600)
        .step_by(20)
        .enumerate()
    {
        push(k % 4, "198.51.100.9", t, k as i64);
    }
    for (k, t) in (OCT10 + 2 * DAY + 20 * 3600..OCT10 + 3 * DAY + 10 * 3600)
        .step_by(30)
        .enumerate()
    {
        push((k + 1) % 4, "2001:db8::42", t, k as i64);
    }
    for s in 0..4 {
        for t in (OCT10 - DAY..OCT10 + 5 * DAY).step_by(600) {
            push(s, &format!("192.0.2.{}", s + 1), t + s as i64 * 7, t);
        }
    }
    // Files: server s, local day d (0 = 10 Oct), named by the date it is rotated on.
    let mut files: std::collections::BTreeMap<(usize, i64), String> = Default::default();
    lines.sort_by_key(|l| l.1);
    for (s, t, l) in &lines {
        let local_day = (t + offsets_h[*s] * 3600).div_euclid(DAY) - OCT10 / DAY;
        files.entry((*s, local_day)).or_default().push_str(l);
    }
    let mut by_night: std::collections::BTreeMap<i64, Vec<String>> = Default::default();
    for ((s, d), text) in &files {
        if !(0..5).contains(d) {
            continue;
        }
        // Mixed compressions, as real servers have.
        let (suffix, bytes) = match s {
            1 => (".zst", zstd(text.as_bytes())),
            3 => ("", text.clone().into_bytes()),
            _ => (".gz", gzip(text.as_bytes())),
        };
        let path = dir
            .path()
            .join(format!("srv{s}/access.log-202610{:02}{suffix}", 11 + d));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
        // Night d reads the files rotated on day d, but for the two that come late.
        let night = d + i64::from((*s == 0 && *d == 0) || (*s == 2 && *d == 2));
        by_night
            .entry(night)
            .or_default()
            .push(path.strip_prefix(dir.path()).unwrap().display().to_string());
    }
    let mut all_paths = Vec::new();
    for (night, paths) in &by_night {
        Command::new(BIN)
            .current_dir(dir.path())
            .arg("scan")
            .args(paths)
            .args(["--state", "S", "--out", &format!("N{night}"), "-q"])
            .args(THRESHOLD)
            .assert()
            .code(0);
        all_paths.extend(paths.iter().cloned());
    }
    let last = dir
        .path()
        .join(format!("N{}", by_night.keys().last().unwrap()));
    let paths: Vec<&str> = all_paths.iter().map(String::as_str).collect();
    let (one, one_clients) = one_run(dir.path(), &paths, &THRESHOLD);
    assert!(one.len() >= 2, "{one:#?}");
    let (rows, finals) = rows_and_finals(&read(&last, "violations.csv"));
    assert_eq!(rows, one);
    assert!(!finals.is_empty());
    assert_eq!(read(&last, "clients.csv"), one_clients);
    let r: serde_json::Value = serde_json::from_str(&read(&last, "report.json")).unwrap();
    assert_eq!(r["state"]["late_requests_all_runs"], 0);
}
