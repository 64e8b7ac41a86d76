//! report.html in a real browser: headless Chromium renders the page, and the test reads
//! the DOM it built. Without Chromium the browser part is skipped (with a note); the
//! page's text checks still run.

use assert_cmd::Command;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

const PAYLOAD: &str = r#"\"><img src=x onerror=alert(1)><script>alert(2)</script>"#;

/// Two clients over a threshold of 5 (one with a hostile user agent), one under it.
fn write_log(dir: &Path) -> PathBuf {
    let mut log = String::new();
    let mut line = |ip: &str, minute: u32, second: u32, path: &str, ua: &str| {
        log.push_str(&format!(
            "{ip} - - [10/Oct/2026:13:{minute:02}:{second:02} +0000] \"GET {path} HTTP/1.1\" 200 512 \"-\" \"{ua}\"\n"
        ));
    };
    for i in 0..8 {
        line(
            "203.0.113.7",
            i,
            5,
            &format!("/post/{i}"),
            "Mozilla/5.0 (bot)",
        );
        line("203.0.113.7", i, 6, "/static/site.css", "Mozilla/5.0 (bot)");
    }
    for i in 0..7 {
        line(
            "198.51.100.9",
            10 + i,
            30,
            &format!("/post/{}", 100 + i),
            PAYLOAD,
        );
    }
    for i in 0..2 {
        line("192.0.2.1", 20 + i, 0, "/post/1", "curl/8.0");
    }
    let path = dir.join("access.log");
    std::fs::write(&path, log).unwrap();
    path
}

fn scan(log: &Path, out: &Path, extra: &[&str]) {
    Command::cargo_bin("scrapemeter")
        .unwrap()
        .arg("scan")
        .arg(log)
        .arg("--out")
        .arg(out)
        .args(["--threshold", "5", "--quiet"])
        .args(extra)
        .assert()
        .success();
}

/// The sum of violations.csv's damages_usd, in cents.
fn csv_total_cents(out: &Path) -> u128 {
    let text = std::fs::read_to_string(out.join("violations.csv")).unwrap();
    text.lines()
        .skip(1)
        .map(|l| {
            let cell = l.rsplit(',').next().unwrap();
            let (d, c) = cell.split_once('.').unwrap();
            d.parse::<u128>().unwrap() * 100 + c.parse::<u128>().unwrap()
        })
        .sum()
}

/// `USD 1,234.56` shown in the element with id total-damages, in cents.
fn shown_total_cents(html: &str) -> u128 {
    let at = html.find("id=\"total-damages\"").expect("total shown");
    let rest = &html[at..];
    let text = &rest[rest.find('>').unwrap() + 1..rest.find("</strong>").unwrap()];
    let amount: String = text
        .trim_start_matches("USD ")
        .chars()
        .filter(|c| *c != ',')
        .collect();
    let (d, c) = amount.split_once('.').unwrap();
    d.parse::<u128>().unwrap() * 100 + c.parse::<u128>().unwrap()
}

fn flagged_clients(out: &Path) -> usize {
    let text = std::fs::read_to_string(out.join("clients.csv")).unwrap();
    text.lines().skip(1).count()
}

/// Each client section, from its opening tag to its end.
fn client_sections(html: &str) -> Vec<&str> {
    html.split("<section class=\"client\"")
        .skip(1)
        .map(|s| &s[..s.find("</section>").unwrap()])
        .collect()
}

fn chromium() -> Option<PathBuf> {
    let fixed = PathBuf::from("/usr/bin/chromium");
    if fixed.exists() {
        return Some(fixed);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("chromium"))
            .find(|p| p.exists())
    })
}

/// Runs headless Chromium with `args` on `page`; stdout on success. Killed after 2 minutes.
fn run_chromium(bin: &Path, profile: &Path, page: &Path, args: &[&str]) -> String {
    let out_file = profile.with_extension("stdout");
    let mut child = std::process::Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdout(std::fs::File::create(&out_file).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "chromium failed: {status}");
            break;
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("chromium did not finish within 2 minutes");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::fs::read_to_string(out_file).unwrap()
}

/// What must hold of the page, as written and as the browser built it.
fn check_page(html: &str, out: &Path, what: &str) {
    let sections = client_sections(html);
    assert_eq!(
        sections.len(),
        flagged_clients(out),
        "{what}: one section per client"
    );
    assert_eq!(sections.len(), 2, "{what}");
    for s in &sections {
        assert!(
            s.contains("<svg"),
            "{what}: a chart in every client section"
        );
    }
    assert!(!html.contains("<script"), "{what}: no script element");
    assert!(!html.contains("<img"), "{what}: no img element");
    assert!(
        html.contains("&lt;script&gt;alert(2)&lt;/script&gt;"),
        "{what}: the payload shows as text"
    );
    assert!(
        html.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{what}"
    );
    assert_eq!(
        shown_total_cents(html),
        csv_total_cents(out),
        "{what}: total"
    );
}

#[test]
fn report_html_renders_and_escapes_log_content() {
    let tmp = tempfile::tempdir().unwrap();
    let log = write_log(tmp.path());
    let by_ip = tmp.path().join("by-ip");
    let by_ua = tmp.path().join("by-ua");
    scan(&log, &by_ip, &[]);
    scan(&log, &by_ua, &["--client", "ua"]);
    // 8 posts → 0.12, 7 posts → 0.105 → 0.11.
    assert_eq!(csv_total_cents(&by_ip), 23);
    for out in [&by_ip, &by_ua] {
        let html = std::fs::read_to_string(out.join("report.html")).unwrap();
        check_page(&html, out, "as written");
        // Self-contained: nothing is fetched.
        for fetch in ["<link", "@import", " src=\"", "url("] {
            assert!(!html.contains(fetch), "{fetch}");
        }
    }

    let Some(bin) = chromium() else {
        eprintln!("note: chromium not found; the real-browser part of this test is skipped");
        return;
    };
    for (i, out) in [&by_ip, &by_ua].into_iter().enumerate() {
        let page = out.join("report.html");
        let profile = tmp.path().join(format!("profile-{i}"));
        let dom = run_chromium(&bin, &profile, &page, &["--dump-dom"]);
        assert!(dom.contains("<body"), "chromium printed a DOM");
        check_page(&dom, out, "in the browser");
        let png = tmp.path().join(format!("report-{i}.png"));
        let shot = tmp.path().join(format!("profile-shot-{i}"));
        run_chromium(
            &bin,
            &shot,
            &page,
            &[
                &format!("--screenshot={}", png.display()),
                "--window-size=1200,3000",
                "--hide-scrollbars",
            ],
        );
        let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
        assert!(size > 10_000, "a screenshot of the page ({size} bytes)");
        if let Some(keep) = std::env::var_os("SCRAPEMETER_KEEP_SCREENSHOT") {
            let _ = std::fs::copy(&png, PathBuf::from(keep).join(format!("report-{i}.png")));
        }
    }
}
