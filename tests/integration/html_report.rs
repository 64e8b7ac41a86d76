//! report.html in a real browser: headless Chromium renders the page, and the test reads
//! the DOM it built (after the page's own script ran), and prints it to PDF. Without
//! Chromium (or, for the print test, pdftotext from poppler-utils) the browser part is
//! skipped with a note; the checks on the page as written still run.
//!
//! - injected log text (in paths, user agents, client keys and file names) stays inert:
//!   the page's script runs (it marks its tables sortable) while no injected code does,
//!   escaped or not (a page with the payload pasted in raw is still inert under its
//!   Content-Security-Policy);
//! - every figure on the page (`<data value data-src>`) equals the cell or JSON value
//!   it names in violations.csv, clients.csv or report.json, and no other number is
//!   shown as exact (anything else is a time, a duration, an approximation marked `≈`,
//!   an identifier, a log line, a fixed number of the tool, or in a chart);
//! - printed, no page ends with a heading or an evidence label without what follows.

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
    // The text as shown, without the figure's markup.
    let text = regex::Regex::new("<[^>]*>").unwrap().replace_all(text, "");
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
    // One script element: the page's own (sortable tables), at the end of the body.
    assert_eq!(html.matches("<script").count(), 1, "{what}: one script");
    assert!(
        html.contains("<script>\n(function () {"),
        "{what}: the page's own script"
    );
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

/// Code that would mark the page if it ever ran: `data-pwned` on the root element, or
/// the title changed.
const MARK_IMG: &str =
    r#""><img src=x onerror="document.documentElement.setAttribute('data-pwned','img')">"#;
const MARK_SCRIPT: &str = "<script>document.title='PWNED'</script>";
const MARK_SVG: &str = "\"><svg onload=document.documentElement.setAttribute('data-pwned','svg')>";

/// Three clients over a threshold of 5 in several windows each, one under it, with the
/// payloads in paths, user agents, a client key (the user field) and the file's name;
/// one client logged under two spellings; 404s, static files and a timeline page.
fn write_rich_log(dir: &Path) -> PathBuf {
    let mut log = String::new();
    let mut line = |who: &str,
                    user: &str,
                    day: u32,
                    minute: u32,
                    path: &str,
                    status: u16,
                    ua: &str| {
        log.push_str(&format!(
            "{who} - {user} [{day:02}/Oct/2026:13:{minute:02}:00 +0000] \"GET {path} HTTP/1.1\" {status} 512 \"-\" \"{}\"\n",
            // As Apache writes a quote inside a quoted field.
            ua.replace('"', "\\\"")
        ));
    };
    for day in 10..16 {
        for i in 0..8 {
            line(
                "203.0.113.7",
                "-",
                day,
                i,
                &format!("/api/v2/posts/{i}"),
                200,
                "Mozilla/5.0 (bot)",
            );
            line(
                "203.0.113.7",
                "-",
                day,
                i,
                "/static/site.css",
                200,
                "Mozilla/5.0 (bot)",
            );
        }
        line(
            "203.0.113.7",
            "-",
            day,
            30,
            &format!("/api/v2/posts/9{MARK_SCRIPT}"),
            404,
            MARK_IMG,
        );
    }
    for day in 10..13 {
        for i in 0..4 {
            line(
                "198.51.100.9",
                "-",
                day,
                i,
                "/api/v2/timeline/home?count=2",
                200,
                MARK_SCRIPT,
            );
            line(
                "::ffff:198.51.100.9",
                "-",
                day,
                10 + i,
                "/api/v2/posts/1",
                304,
                MARK_SVG,
            );
        }
    }
    // The user field is the key with --client user.
    for day in 10..12 {
        for i in 0..7 {
            line(
                "192.0.2.50",
                "<script>document.title='PWNED'</script>",
                day,
                20 + i,
                "/api/v2/posts/5",
                200,
                "curl/8.0",
            );
        }
    }
    line("192.0.2.1", "-", 14, 40, "/api/v2/posts/1", 200, "curl/8.0");
    line("192.0.2.1", "-", 14, 41, "/api/v2/posts/2", 200, "curl/8.0");
    let path = dir.join(format!("access{MARK_SVG}.log"));
    std::fs::write(&path, log).unwrap();
    path
}

/// One element the text sits in: its tag and class attribute.
type Ancestor = (String, String);

/// The page's text, each run with the elements it sits in, and its `<data>` figures
/// (attributes, text). A small reader for the well-formed markup the page and
/// Chromium's `--dump-dom` write: it skips comments, keeps void and self-closed
/// elements off the stack, and reads script and style as raw text.
struct Page {
    runs: Vec<(String, Vec<Ancestor>)>,
    figures: Vec<(std::collections::BTreeMap<String, String>, String)>,
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}

fn attributes(tag: &str) -> std::collections::BTreeMap<String, String> {
    let re = regex::Regex::new(r#"([A-Za-z_:][-A-Za-z0-9_:.]*)="([^"]*)""#).unwrap();
    re.captures_iter(tag)
        .map(|c| (c[1].to_string(), unescape(&c[2])))
        .collect()
}

fn read_page(html: &str) -> Page {
    const VOID: [&str; 9] = [
        "meta", "link", "br", "hr", "img", "input", "wbr", "source", "base",
    ];
    let mut page = Page {
        runs: Vec::new(),
        figures: Vec::new(),
    };
    let mut stack: Vec<Ancestor> = Vec::new();
    // Open <data> elements: attributes and the text read so far.
    let mut open: Vec<(std::collections::BTreeMap<String, String>, String)> = Vec::new();
    let b = html.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if html[i..].starts_with("<!--") {
            i += html[i..].find("-->").map_or(b.len() - i, |e| e + 3);
            continue;
        }
        if b[i] == b'<'
            && (html[i..].starts_with("<!")
                || b.get(i + 1)
                    .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'/'))
        {
            // The tag's end: the first `>` outside quotes.
            let mut j = i + 1;
            let mut quote = None;
            while j < b.len() {
                match (quote, b[j]) {
                    (None, b'"') | (None, b'\'') => quote = Some(b[j]),
                    (Some(q), c) if c == q => quote = None,
                    (None, b'>') => break,
                    _ => {}
                }
                j += 1;
            }
            let tag = &html[i + 1..j];
            i = j + 1;
            if tag.starts_with('!') {
                continue;
            }
            if let Some(name) = tag.strip_prefix('/') {
                let name = name.trim().to_ascii_lowercase();
                if let Some(at) = stack.iter().rposition(|(n, _)| *n == name) {
                    stack.truncate(at);
                }
                if name == "data" {
                    if let Some(f) = open.pop() {
                        page.figures.push(f);
                    }
                }
                continue;
            }
            let name: String = tag
                .split(|c: char| c.is_whitespace() || c == '/')
                .next()
                .unwrap_or("")
                .to_ascii_lowercase();
            let attrs = attributes(tag);
            let class = attrs.get("class").cloned().unwrap_or_default();
            if name == "script" || name == "style" {
                let end = html[i..]
                    .find(&format!("</{name}>"))
                    .map_or(b.len(), |e| i + e);
                let mut inside = stack.clone();
                inside.push((name.clone(), class));
                page.runs.push((html[i..end].to_string(), inside));
                i = end + name.len() + 3;
                continue;
            }
            if name == "data" {
                open.push((attrs, String::new()));
            }
            if !VOID.contains(&name.as_str()) && !tag.ends_with('/') {
                stack.push((name, class));
            }
            continue;
        }
        let end = html[i..].find('<').map_or(b.len(), |e| i + e);
        let end = if end == i { i + 1 } else { end };
        let text = unescape(&html[i..end]);
        for f in &mut open {
            f.1.push_str(&text);
        }
        page.runs.push((text, stack.clone()));
        i = end;
    }
    page
}

/// The value `src` names: `report.json:/pointer` (with `#length` for an array's length,
/// `#bytes` for a string's), `clients.csv:ROW:COLUMN` or `violations.csv:ROW:COLUMN`.
fn source_value(out: &Path, json: &serde_json::Value, src: &str) -> String {
    let (file, at) = src.split_once(':').expect("file:place");
    if file == "report.json" {
        let (pointer, what) = at.split_once('#').unwrap_or((at, ""));
        let v = json
            .pointer(pointer)
            .unwrap_or_else(|| panic!("{src}: not in report.json"));
        return match (what, v) {
            ("length", v) => v.as_array().expect("an array").len().to_string(),
            ("bytes", v) => v.as_str().expect("a string").len().to_string(),
            (_, serde_json::Value::String(s)) => s.clone(),
            (_, v) => v.to_string(),
        };
    }
    let (row, column) = at.split_once(':').expect("ROW:COLUMN");
    let row: usize = row.parse().expect("a row number");
    let mut reader = csv::Reader::from_path(out.join(file)).unwrap();
    let header = reader.headers().unwrap().clone();
    let col = header
        .iter()
        .position(|h| h == column)
        .unwrap_or_else(|| panic!("{src}: no column {column}"));
    let record = reader
        .records()
        .nth(row - 1)
        .unwrap_or_else(|| panic!("{src}: no row {row}"))
        .unwrap();
    record[col].to_string()
}

/// Checks every figure against its source and that no other number looks exact;
/// returns how many figures were checked per source file.
pub(crate) fn check_numbers(
    html: &str,
    out: &Path,
    what: &str,
) -> std::collections::BTreeMap<String, usize> {
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let page = read_page(html);
    let mut checked = std::collections::BTreeMap::new();
    for (attrs, text) in &page.figures {
        let value = &attrs["value"];
        let src = &attrs["data-src"];
        let shown = match attrs.get("data-unit").map(String::as_str) {
            Some("microseconds") => {
                scrapemeter::report::html::gap_words(value.parse().expect("microseconds"))
            }
            Some(unit) => panic!("{what}: unknown unit {unit}"),
            None => scrapemeter::report::summary::thousands(value),
        };
        assert_eq!(*text, shown, "{what}: {src} written as its value {value}");
        assert_eq!(
            *value,
            source_value(out, &json, src),
            "{what}: the figure {text} from {src}"
        );
        *checked
            .entry(src.split(':').next().unwrap().to_string())
            .or_insert(0) += 1;
    }
    // Any other run of digits must be one of these (or sit where no figure is).
    let allowed = regex::Regex::new(concat!(
        r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z",
        r"|≈ ?(\d+[dhms])+|≈ ?[0-9][0-9.,]*( ?[kMG])?( s)?",
        r"|\b(\d+[dhms])+\b|\b[1-5]xx\b|\bp\d+(\.\d+)?\b|\b\d+th percentile\b",
        r"|SHA-256|IPv[46]|RFC \d+|UTF-8|\b304\b|\blz4\b|\bbzip2\b"
    ))
    .unwrap();
    // Where numbers are not figures: charts (drawn from the figures around them),
    // log lines, identifiers and paths, code, the arithmetic of the worked example,
    // fixed numbers of the tool, ordinals, and the figures themselves.
    const ELEMENTS: [&str; 7] = ["svg", "pre", "code", "script", "style", "title", "data"];
    const CLASSES: [&str; 5] = ["key", "mono", "calc", "const", "ordinal"];
    let mut loose = Vec::new();
    for (text, inside) in &page.runs {
        if inside.iter().any(|(tag, class)| {
            ELEMENTS.contains(&tag.as_str())
                || class.split_whitespace().any(|c| CLASSES.contains(&c))
        }) {
            continue;
        }
        let rest = allowed.replace_all(text, "");
        if rest.chars().any(|c| c.is_ascii_digit()) {
            loose.push(text.trim().to_string());
        }
    }
    assert!(
        loose.is_empty(),
        "{what}: numbers shown as exact that name no source: {loose:#?}"
    );
    checked
}

fn scan_rich(dir: &Path, name: &str, extra: &[&str]) -> (PathBuf, PathBuf) {
    let log = write_rich_log(dir);
    let out = dir.join(name);
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules.example.toml");
    Command::cargo_bin("scrapemeter")
        .unwrap()
        .arg("scan")
        .arg(&log)
        .arg("--out")
        .arg(&out)
        .args(["--threshold", "5", "--quiet", "--rules"])
        .arg(&rules)
        .args(extra)
        .assert()
        .success();
    (log, out)
}

#[test]
fn every_exact_number_on_the_page_equals_its_source() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, extra) in [("by-ip", &[][..]), ("by-user", &["--client", "user"][..])] {
        let (_, out) = scan_rich(tmp.path(), name, extra);
        assert!(flagged_clients(&out) >= 1, "{name}: clients to check");
        let html = std::fs::read_to_string(out.join("report.html")).unwrap();
        let checked = check_numbers(&html, &out, name);
        for file in ["report.json", "clients.csv", "violations.csv"] {
            assert!(
                checked.get(file).copied().unwrap_or(0) >= 3,
                "{name}: {checked:?}"
            );
        }
        let Some(bin) = chromium() else {
            eprintln!(
                "note: chromium not found; the numbers are checked in the page as written only"
            );
            continue;
        };
        let dom = run_chromium(
            &bin,
            &tmp.path().join(format!("profile-n-{name}")),
            &out.join("report.html"),
            &["--dump-dom"],
        );
        assert!(
            dom.contains("data-script=\"ran\""),
            "{name}: the page's script ran"
        );
        assert_eq!(
            check_numbers(&dom, &out, name),
            checked,
            "{name}: the same figures in the browser"
        );
    }
}

/// What the page's own script did, and that nothing injected did.
fn check_inert(dom: &str, what: &str) {
    assert!(
        dom.contains("data-script=\"ran\""),
        "{what}: the page's own script ran"
    );
    assert!(
        dom.contains("data-sortable=\"on\""),
        "{what}: it made the tables sortable"
    );
    // The attribute the injected code would set (the payloads show `data-pwned` as text).
    assert!(!dom.contains(" data-pwned=\""), "{what}: injected code ran");
    assert!(
        dom.contains("<title>scrapemeter: damages report</title>"),
        "{what}: the title is the page's"
    );
    assert!(!dom.contains("PWNED</title>"), "{what}");
}

#[test]
fn injected_log_text_stays_inert_under_the_script_and_csp() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, by_ip) = scan_rich(tmp.path(), "by-ip", &[]);
    let (_, by_user) = scan_rich(tmp.path(), "by-user", &["--client", "user"]);
    let (_, by_ua) = scan_rich(tmp.path(), "by-ua", &["--client", "ua"]);
    let mut pages = Vec::new();
    for (i, out) in [&by_ip, &by_user, &by_ua].into_iter().enumerate() {
        let page = out.join("report.html");
        let html = std::fs::read_to_string(&page).unwrap();
        // As written: the payloads are text, the one script is the page's, and the
        // policy allows that script and nothing else to run.
        for raw in [MARK_IMG, MARK_SCRIPT, MARK_SVG] {
            assert!(!html.contains(raw), "{raw} escaped");
        }
        assert!(html.contains("&lt;script&gt;document.title=&#39;PWNED&#39;&lt;/script&gt;"));
        if i == 0 {
            // The user agent of 203.0.113.7's 404s, among its top user agents (its
            // quotes as logged, `\"`).
            assert!(html.contains("onerror=\\&quot;document.documentElement"));
        }
        assert_eq!(html.matches("<script").count(), 1);
        let csp = html
            .split("http-equiv=\"Content-Security-Policy\" content=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .expect("a Content-Security-Policy");
        assert!(
            csp.starts_with("default-src 'none'; script-src 'sha256-"),
            "{csp}"
        );
        assert!(!csp.contains("unsafe"), "{csp}");
        pages.push(page);
    }
    // The same page with the payloads pasted in raw, as a bug in the escaping would
    // leave them: the policy alone keeps them inert.
    let tampered = tmp.path().join("tampered.html");
    let html = std::fs::read_to_string(&pages[0]).unwrap();
    let raw = format!(
        "<p>{MARK_IMG}</p><p>{MARK_SVG}</p>{MARK_SCRIPT}<script>document.documentElement.setAttribute('data-pwned','script')</script><div style=\"x\" onclick=\"document.documentElement.setAttribute('data-pwned','click')\"></div>"
    );
    std::fs::write(
        &tampered,
        html.replacen(
            "<h2 id=\"summary\">",
            &format!("{raw}<h2 id=\"summary\">"),
            1,
        ),
    )
    .unwrap();
    pages.push(tampered);

    let Some(bin) = chromium() else {
        eprintln!("note: chromium not found; the page was checked as written only");
        return;
    };
    for (i, page) in pages.iter().enumerate() {
        let dom = run_chromium(
            &bin,
            &tmp.path().join(format!("profile-x-{i}")),
            page,
            &["--dump-dom"],
        );
        check_inert(&dom, &page.display().to_string());
    }
    // A control: the same tampering without the policy does run (so the check above
    // can see code that runs).
    let open = tmp.path().join("no-policy.html");
    let html = std::fs::read_to_string(&pages[3]).unwrap();
    let without = regex::Regex::new(r#"<meta http-equiv="Content-Security-Policy"[^>]*>"#)
        .unwrap()
        .replace(&html, "")
        .into_owned();
    std::fs::write(&open, without).unwrap();
    let dom = run_chromium(
        &bin,
        &tmp.path().join("profile-x-open"),
        &open,
        &["--dump-dom"],
    );
    assert!(
        dom.contains(" data-pwned=\""),
        "without the policy the pasted code runs"
    );
}

fn pdftotext() -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("pdftotext"))
            .find(|p| p.exists())
    })
}

/// The text of each heading (h1 to h4) and evidence label of the page, as printed.
fn labels(html: &str) -> Vec<String> {
    let page = read_page(html);
    let mut out: Vec<String> = Vec::new();
    let mut last: Option<(usize, String)> = None;
    for (n, (text, inside)) in page.runs.iter().enumerate() {
        // Text in a heading or label; the pieces of one are joined.
        let in_label = inside.iter().any(|(tag, class)| {
            matches!(tag.as_str(), "h1" | "h2" | "h3" | "h4")
                || class.split_whitespace().any(|c| c == "label")
        });
        if !in_label {
            if let Some((_, l)) = last.take() {
                out.push(l);
            }
            continue;
        }
        match &mut last {
            Some((m, l)) if *m + 1 == n => {
                l.push_str(text);
                *m = n;
            }
            _ => {
                if let Some((_, l)) = last.take() {
                    out.push(l);
                }
                last = Some((n, text.clone()));
            }
        }
    }
    out.extend(last.map(|(_, l)| l));
    out.into_iter()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn printed_headings_stay_with_their_content() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, out) = scan_rich(tmp.path(), "by-ip", &[]);
    let page = out.join("report.html");
    let html = std::fs::read_to_string(&page).unwrap();
    let labels = labels(&html);
    assert!(
        labels.iter().any(|l| l.starts_with("First request")),
        "{labels:?}"
    );
    assert!(labels.iter().any(|l| l == "Evidence"), "{labels:?}");
    let (Some(bin), Some(pdftotext)) = (chromium(), pdftotext()) else {
        eprintln!(
            "note: chromium or pdftotext (poppler-utils) not found; the print test is skipped"
        );
        return;
    };
    let pdf = tmp.path().join("report.pdf");
    run_chromium(
        &bin,
        &tmp.path().join("profile-pdf"),
        &page,
        &[
            &format!("--print-to-pdf={}", pdf.display()),
            "--no-pdf-header-footer",
        ],
    );
    let text = std::process::Command::new(pdftotext)
        .args(["-layout", "-enc", "UTF-8"])
        .arg(&pdf)
        .arg("-")
        .output()
        .expect("pdftotext runs");
    assert!(text.status.success());
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    let pages: Vec<&str> = text
        .split('\u{c}')
        .filter(|p| !p.trim().is_empty())
        .collect();
    assert!(
        pages.len() >= 4,
        "a report of several pages ({})",
        pages.len()
    );
    let id = std::fs::read_to_string(out.join("report.json")).unwrap();
    let id: serde_json::Value = serde_json::from_str(&id).unwrap();
    let footer = format!("scrapemeter report {}", id["report_id"].as_str().unwrap());
    for (n, p) in pages.iter().enumerate() {
        assert!(
            p.contains(&footer),
            "page {}: the report identifier at its foot",
            n + 1
        );
        if n + 1 == pages.len() {
            continue;
        }
        let last = p
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .rfind(|l| !l.is_empty() && *l != footer)
            .unwrap_or_default();
        for label in &labels {
            // A label wrapped over two lines may end the page with either part.
            let cut = last.len() >= 6 && (label.starts_with(&last) || label.ends_with(&last));
            assert!(
                *label != last && !cut,
                "page {} ends with the heading or label {label:?} without what follows:\n{p}",
                n + 1
            );
        }
    }
}

/// Years of logs with a few busy hours: the overview draws a bar per week that has
/// requests and nothing for the empty ones (the real logs' page went from 677 KB to
/// 44 KB), and its scale holds posts that outnumber requests (rules).
#[test]
fn the_overview_of_sparse_years_stays_small() {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = String::new();
    for year in [2019, 2022, 2025] {
        log.push_str(&format!(
            "203.0.113.9 - - [10/Oct/{year}:13:55:36 +0000] \"GET /api/v2/timeline/home?count=50 HTTP/1.1\" 200 512 \"-\" \"curl/8\"\n"
        ));
    }
    let path = tmp.path().join("access.log");
    std::fs::write(&path, log).unwrap();
    let out = tmp.path().join("out");
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules.example.toml");
    scan(&path, &out, &["--rules", rules.to_str().unwrap()]);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let at = html.find("<svg class=\"overview\"").expect("an overview");
    let svg = &html[at..at + html[at..].find("</svg>").unwrap()];
    assert!(svg.contains("Requests and posts per week"), "{svg}");
    // Three weeks with a request: a requests bar and a posts bar each.
    assert_eq!(svg.matches("<rect").count(), 6, "{svg}");
    assert_eq!(svg.matches(": 50 posts</title>").count(), 3);
    // The tallest bar (50 posts) fills the chart's height, none is taller.
    let heights: Vec<f64> = regex::Regex::new(r#"height="([0-9.]+)" fill"#)
        .unwrap()
        .captures_iter(svg)
        .map(|c| c[1].parse().unwrap())
        .collect();
    let top = heights.iter().cloned().fold(0.0, f64::max);
    assert!((top - 122.0).abs() < 0.2, "{heights:?}");
}
