//! Formats against each other: random nginx `log_format`s round-trip through the
//! parser, `auto` reads a folder that mixes formats file by file, and the same traffic
//! written in six formats gives the same `violations.csv`.

use assert_cmd::Command;
use chrono::{FixedOffset, TimeZone, Utc};
use proptest::prelude::*;
use scrapemeter::input::format::nginx::Nginx;
use scrapemeter::input::format::{FieldSet, LineFormat, Request};
use std::borrow::Cow;
use std::fs;
use std::path::Path;
use tempfile::TempDir;

// ---------------------------------------------------------------------------------
// (a) Random nginx log_formats.

/// One piece of a random log_format: its text in the format, its text in the line.
#[derive(Debug, Clone)]
struct Piece {
    format: String,
    rendered: String,
}

fn piece(format: &str, rendered: String) -> Piece {
    Piece {
        format: format.into(),
        rendered,
    }
}

#[derive(Debug, Clone)]
struct Values {
    ip: String,
    user: String,
    secs: i64,
    millis: i64,
    offset_minutes: i32,
    method: String,
    target: String,
    status: u16,
    user_agent: String,
    host: String,
    bytes: u32,
}

fn ip() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|b| std::net::Ipv4Addr::from(b).to_string()),
        any::<[u16; 8]>().prop_map(|s| std::net::Ipv6Addr::from(s).to_string()),
    ]
}

fn values() -> impl Strategy<Value = Values> {
    (
        (
            ip(),
            "-|[a-z]{1,8}",
            946_684_800i64..4_102_444_800,
            0i64..1000,
        ),
        (-48i32..=56).prop_map(|q| q * 15),
        (
            "[A-Z]{3,7}",
            "/[a-zA-Z0-9/._~-]{0,20}(\\?[a-z]{1,5}=[0-9a-z%]{0,6})?",
        ),
        (
            100u16..=599,
            "[A-Za-z0-9/.();, |:+-]{1,40}",
            "[a-z]{1,10}(\\.[a-z]{2,5}){1,2}",
            any::<u32>(),
        ),
    )
        .prop_map(
            |(
                (ip, user, secs, millis),
                offset_minutes,
                (method, target),
                (status, ua, host, bytes),
            )| {
                Values {
                    ip,
                    user,
                    secs,
                    millis,
                    offset_minutes,
                    method,
                    target,
                    status,
                    user_agent: ua,
                    host,
                    bytes,
                }
            },
        )
}

/// What a log_format holds, besides the time, `$status` and the request it always has.
#[derive(Debug, Clone)]
struct Layout {
    time: u8,
    split_request: bool,
    remote_addr: bool,
    remote_user: bool,
    user_agent: bool,
    host: bool,
    filler: bool,
    order: Vec<usize>,
    seps: Vec<usize>,
}

const SEPARATORS: [&str; 6] = [" ", " | ", "\t", " ; ", ",", " :: "];

fn layout() -> impl Strategy<Value = Layout> {
    (
        0u8..3,
        any::<bool>(),
        any::<[bool; 5]>(),
        Just((0..9).collect::<Vec<usize>>()).prop_shuffle(),
        prop::collection::vec(0..SEPARATORS.len(), 9),
    )
        .prop_map(|(time, split_request, b, order, seps)| Layout {
            time,
            split_request,
            remote_addr: b[0],
            remote_user: b[1],
            user_agent: b[2],
            host: b[3],
            filler: b[4],
            order,
            seps,
        })
}

/// Renders `v` through `l`: the log_format, the line and the request it must parse to.
fn render(v: &Values, l: &Layout) -> (String, String, Request<'static>) {
    let offset = FixedOffset::east_opt(v.offset_minutes * 60).unwrap();
    let local = offset.timestamp_opt(v.secs, 0).unwrap();
    let mut pieces: Vec<Piece> = Vec::new();
    let time = match l.time {
        0 => {
            pieces.push(piece(
                "[$time_local]",
                format!("[{}]", local.format("%d/%b/%Y:%H:%M:%S %z")),
            ));
            v.secs * 1_000_000
        }
        1 => {
            pieces.push(piece(
                "$time_iso8601",
                local.format("%Y-%m-%dT%H:%M:%S%:z").to_string(),
            ));
            v.secs * 1_000_000
        }
        _ => {
            pieces.push(piece("$msec", format!("{}.{:03}", v.secs, v.millis)));
            v.secs * 1_000_000 + v.millis * 1000
        }
    };
    pieces.push(piece("$status", v.status.to_string()));
    if l.split_request {
        pieces.push(piece("$request_method", v.method.clone()));
        pieces.push(piece("$request_uri", v.target.clone()));
    } else {
        pieces.push(piece(
            "\"$request\"",
            format!("\"{} {} HTTP/1.1\"", v.method, v.target),
        ));
    }
    if l.remote_addr {
        pieces.push(piece("$remote_addr", v.ip.clone()));
    }
    if l.remote_user {
        pieces.push(piece("$remote_user", v.user.clone()));
    }
    if l.user_agent {
        pieces.push(piece(
            "\"$http_user_agent\"",
            format!("\"{}\"", v.user_agent),
        ));
    }
    if l.host {
        pieces.push(piece("$host", v.host.clone()));
    }
    if l.filler {
        pieces.push(piece("$body_bytes_sent", v.bytes.to_string()));
    }
    let mut order: Vec<usize> = l
        .order
        .iter()
        .copied()
        .filter(|&i| i < pieces.len())
        .collect();
    order.dedup();
    let (mut format, mut line) = (String::new(), String::new());
    for (n, &i) in order.iter().enumerate() {
        if n > 0 {
            let sep = SEPARATORS[l.seps[n]];
            format.push_str(sep);
            line.push_str(sep);
        }
        format.push_str(&pieces[i].format);
        line.push_str(&pieces[i].rendered);
    }
    let owned = |s: &str| Some(Cow::Owned(s.as_bytes().to_vec()));
    let want = Request {
        time,
        remote: if l.remote_addr {
            Cow::Owned(v.ip.as_bytes().to_vec())
        } else {
            Cow::Borrowed(b"")
        },
        user: if l.remote_user { owned(&v.user) } else { None },
        user_agent: if l.user_agent {
            owned(&v.user_agent)
        } else {
            None
        },
        user_agent_damaged: false,
        method: owned(&v.method),
        target: owned(&v.target),
        host: if l.host { owned(&v.host) } else { None },
        status: v.status,
        fields: Vec::new(),
    };
    (format, line, want)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn random_nginx_log_formats_round_trip(v in values(), l in layout()) {
        let (format, line, want) = render(&v, &l);
        let nginx = Nginx::compile(&format, &FieldSet::default())
            .map_err(|e| TestCaseError::fail(format!("{format}: {e}")))?;
        let got = nginx.parse(line.as_bytes());
        prop_assert_eq!(got, Ok(want), "format {} line {}", format, line);
    }
}

// ---------------------------------------------------------------------------------
// Shared traffic for (b) and (c).

struct Hit {
    ip: &'static str,
    secs: i64,
    method: &'static str,
    target: String,
    status: u16,
    ua: &'static str,
}

const HOST: &str = "api.example.com";

/// About 200 requests of three clients over three days, whole seconds, in a fixed
/// pseudo-random order (not sorted by time).
fn traffic() -> Vec<Hit> {
    let clients = [
        ("198.51.100.7", "curl/8.5.0"),
        (
            "203.0.113.5",
            "Mozilla/5.0 (X11; Linux x86_64) Firefox/123.0",
        ),
        ("2001:db8::9", "python-requests/2.31"),
    ];
    let paths = [
        "/api/v2/timeline/home?count=50",
        "/api/v2/posts/12345",
        "/api/v2/search?q=cats",
        "/static/app.js",
        "/login",
        "/@alice/111712440404145895",
    ];
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let start = 1_791_590_400; // 2026-10-10T00:00:00Z
    (0..200)
        .map(|_| {
            let (ip, ua) = clients[(next() % 3) as usize];
            let status = [200, 200, 200, 304, 404, 500][(next() % 6) as usize];
            Hit {
                ip,
                secs: start + (next() % (3 * 86_400)) as i64,
                method: if next() % 10 == 0 { "POST" } else { "GET" },
                target: paths[(next() % paths.len() as u64) as usize].to_string(),
                status,
                ua,
            }
        })
        .collect()
}

fn utc(secs: i64) -> chrono::DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).unwrap()
}

fn combined(h: &Hit) -> String {
    format!(
        "{} - - [{}] \"{} {} HTTP/1.1\" {} 512 \"-\" \"{}\"",
        h.ip,
        utc(h.secs).format("%d/%b/%Y:%H:%M:%S +0000"),
        h.method,
        h.target,
        h.status,
        h.ua
    )
}

fn vcombined(h: &Hit) -> String {
    format!("{HOST}:443 {}", combined(h))
}

fn json(h: &Hit) -> String {
    serde_json::json!({
        "time": utc(h.secs).format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "remote_addr": h.ip,
        "request_method": h.method,
        "request_uri": h.target,
        "status": h.status,
        "http_user_agent": h.ua,
        "host": HOST,
    })
    .to_string()
}

fn alb(h: &Hit) -> String {
    format!(
        "https {} app/api/50dc6c495c0c9188 {}:44740 10.0.0.1:80 0.000 0.001 0.000 {s} {s} 34 366 \"{} https://{HOST}:443{} HTTP/1.1\" \"{}\" - -",
        utc(h.secs).format("%Y-%m-%dT%H:%M:%S%.6fZ"),
        h.ip,
        h.method,
        h.target,
        h.ua,
        s = h.status
    )
}

fn cloudfront(h: &Hit) -> String {
    let (stem, query) = h.target.split_once('?').unwrap_or((&h.target, "-"));
    [
        utc(h.secs).format("%Y-%m-%d").to_string(),
        utc(h.secs).format("%H:%M:%S").to_string(),
        "CDG50-P2".into(),
        "703".into(),
        h.ip.into(),
        h.method.into(),
        HOST.into(),
        stem.into(),
        h.status.to_string(),
        "-".into(),
        h.ua.replace(' ', "%20"),
        query.into(),
    ]
    .join("\t")
}

const NGINX_FORMAT: &str =
    r#"$remote_addr [$time_iso8601] $request_method $request_uri $status "$http_user_agent" $host"#;

fn nginx(h: &Hit) -> String {
    format!(
        "{} [{}] {} {} {} \"{}\" {HOST}",
        h.ip,
        utc(h.secs).format("%Y-%m-%dT%H:%M:%S+00:00"),
        h.method,
        h.target,
        h.status,
        h.ua
    )
}

/// Envoy's default format; the client first in X-Forwarded-For (a proxy after it).
fn envoy(h: &Hit) -> String {
    format!(
        "[{}] \"{} {} HTTP/1.1\" {} - 0 123 5 4 \"{}, 10.0.0.1\" \"{}\" \"0b7c-{}\" \"{HOST}\" \"tcp://10.0.2.1:80\"",
        utc(h.secs).format("%Y-%m-%dT%H:%M:%S%.3fZ"),
        h.method,
        h.target,
        h.status,
        h.ip,
        h.ua,
        h.secs
    )
}

fn write_lines(path: &Path, lines: impl Iterator<Item = String>) {
    let mut text: String = lines.map(|l| l + "\n").collect();
    if text.is_empty() {
        text.push('\n');
    }
    fs::write(path, text).unwrap();
}

fn scan(inputs: &Path, out: &Path, extra: &[&str]) {
    let o = Command::cargo_bin("scrapemeter")
        .unwrap()
        .arg("scan")
        .arg(inputs)
        .arg("--out")
        .arg(out)
        .args(["--threshold", "5", "-q"])
        .args(extra)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

// ---------------------------------------------------------------------------------
// (b) auto on a folder mixing formats.

#[test]
fn auto_reads_each_file_of_a_mixed_folder_with_its_format() {
    let dir = TempDir::new().unwrap();
    let logs = dir.path().join("logs");
    fs::create_dir(&logs).unwrap();
    let hits = traffic();
    type Render = fn(&Hit) -> String;
    let files: [(&str, Render, &str); 5] = [
        ("a-combined.log", combined, "combined"),
        ("b-caddy.json", json, "json"),
        ("c-alb.log", alb, "alb"),
        ("d-cloudfront.log", cloudfront, "cloudfront"),
        ("e-envoy.log", envoy, "envoy"),
    ];
    for (name, f, _) in files {
        write_lines(&logs.join(name), hits.iter().map(f));
    }
    let out = dir.path().join("out");
    scan(&logs, &out, &[]);
    let report: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("report.json")).unwrap()).unwrap();
    let inputs = report["inputs"].as_array().unwrap();
    assert_eq!(inputs.len(), 5, "{inputs:#?}");
    for (input, (name, _, format)) in inputs.iter().zip(files) {
        assert!(input["path"].as_str().unwrap().ends_with(name), "{input}");
        assert_eq!(input["format"], format, "{name}");
        assert_eq!(input["lines"], 200, "{name}");
        assert_eq!(input["malformed"], 0, "{name}");
    }
}

// ---------------------------------------------------------------------------------
// (c) The same traffic in six formats, the same violations.

#[test]
fn the_same_traffic_in_six_formats_gives_the_same_violations() {
    let dir = TempDir::new().unwrap();
    let hits = traffic();
    type Render = fn(&Hit) -> String;
    let nginx_format = format!("nginx:{NGINX_FORMAT}");
    let formats: [(&str, Render, &str); 6] = [
        ("combined", combined, "combined"),
        ("vcombined", vcombined, "vcombined"),
        ("json", json, "json"),
        ("alb", alb, "alb"),
        ("nginx", nginx, &nginx_format),
        ("envoy", envoy, "envoy"),
    ];
    let mut first: Option<(String, String)> = None;
    for (name, f, format) in formats {
        let logs = dir.path().join(name);
        fs::create_dir(&logs).unwrap();
        // Two files, so the traffic is split and interleaved as real logs are.
        write_lines(&logs.join("a.log"), hits.iter().step_by(2).map(f));
        write_lines(&logs.join("b.log"), hits.iter().skip(1).step_by(2).map(f));
        let out = dir.path().join(format!("{name}-out"));
        scan(&logs, &out, &["--format", format]);
        let violations = fs::read_to_string(out.join("violations.csv")).unwrap();
        match &first {
            None => {
                // The traffic is worth comparing: every client is billed, some twice.
                assert!(violations.lines().count() > 4, "{violations}");
                for ip in ["198.51.100.7,", "203.0.113.5,", "2001:db8::9,"] {
                    assert!(violations.contains(ip), "{ip} {violations}");
                }
                first = Some((name.to_string(), violations));
            }
            Some((first_name, want)) => {
                assert_eq!(&violations, want, "{name} differs from {first_name}")
            }
        }
    }
}
