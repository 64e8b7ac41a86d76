//! Real logs written by others (`../shared/real-logs`), and the public acceptance cases
//! (`../shared/acceptance`). Both are skipped when their folder is absent.

use super::*;

const REAL_LOGS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/real-logs");
const ACCEPTANCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/acceptance/run.sh");

fn real_logs() -> Option<PathBuf> {
    let p = PathBuf::from(REAL_LOGS);
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!("skipped: {REAL_LOGS} is absent");
        None
    }
}

/// (file, lines, requests, posts, malformed, malformed line numbers)
type Expected = (&'static str, u64, u64, u64, u64, &'static [u64]);

const EXPECTED: [Expected; 6] = [
    // crowdsec-hub-apache2-logs.log, 9 lines:
    //  1–3, 5  combined lines with status 500: requests of weight 0.
    //  4       `www.crowdsec.net 1.2.3.4 - - [...]`: vhost_combined (a host before the
    //          client), so the user field reads `- -`: malformed for combined.
    //  6       common (no referer or user agent), 200 on a .txt path: the one post.
    //  7       `website.com:443 1.2.3.4 - - [...]`: vhost_combined again: malformed.
    //  8, 9    Apache *error* log lines (`[Thu Oct 13 ...] [auth_basic:error]`): malformed.
    ("crowdsec-hub-apache2-logs.log", 9, 5, 1, 4, &[4, 7, 8, 9]),
    // crowdsec-hub-nginx_http-logs.log, 9 lines:
    //  1       404: weight 0.      2, 3  500: weight 0.
    //  4, 5, 6 a host (`www.crowdsec.net`, `www.crowdsec11.net`, `...:80`) before the
    //          client: vhost_combined, malformed for combined.
    //  7       user `user123`, 200 on /api/login: the one post.
    //  8       `192.168.1.1 - [time]`: one of ident/user is missing, so the field before
    //          the time is empty: malformed (the acceptance case crowdsec_clf agrees: its
    //          window from 08:04:43 holds 2 requests, lines 3 and 7, not 3).
    //  9       an nginx *error* log line (`2021/12/01 13:53:33 [error] ...`): malformed.
    (
        "crowdsec-hub-nginx_http-logs.log",
        9,
        4,
        1,
        5,
        &[4, 5, 6, 8, 9],
    ),
    // lnav-shop_access_log.log: 1,000 combined lines, each with one extra quoted field
    // after the user agent (`"-"` or an X-Forwarded-For address like `"103.28.132.65"`),
    // all with `+0330`; extra trailing fields are allowed, so none is malformed.
    // 869 are 2xx/304 on non-static paths (counted with an independent regex parse).
    ("lnav-shop_access_log.log", 1000, 1000, 869, 0, &[]),
    // lnav-playground-access_log.gz: 2,492 well-formed combined lines, gzip; 1,350
    // are 2xx/304 on non-static paths (same independent count).
    ("lnav-playground-access_log.gz", 2492, 2492, 1350, 0, &[]),
    // crowdsec-hub-apache2-malformed.log: 11 lines whose *request* is TLS handshake
    // bytes written as `\x16\x03...` (one with a space: `"\x16\x03\x01\x01 \x02"`).
    // The rest of each line is well-formed, and a request field that is not
    // `METHOD TARGET [PROTOCOL]` is a request of weight 0, not a malformed line.
    ("crowdsec-hub-apache2-malformed.log", 11, 11, 0, 0, &[]),
    // crowdsec-hub-nginx-http-malformed.log: 12 lines of scanner junk in the request
    // field (`"HELP"`, `"batman"`, Gh0st RAT and TLS bytes, a `|'|'|`-separated
    // payload), status 400, otherwise well-formed: 12 requests of weight 0.
    ("crowdsec-hub-nginx-http-malformed.log", 12, 12, 0, 0, &[]),
];

#[test]
fn real_combined_logs_parse_as_justified() {
    let Some(dir) = real_logs() else { return };
    let f = Fixture::new();
    let paths: Vec<String> = EXPECTED
        .iter()
        .map(|e| dir.join(e.0).display().to_string())
        .collect();
    let mut args: Vec<&str> = paths.iter().map(String::as_str).collect();
    args.extend(["--format", "combined"]);
    f.scan(&args).success();
    for (name, lines, requests, posts, malformed, at) in EXPECTED {
        let i = f.input(name);
        assert_eq!(i["format"], "combined", "{name}");
        assert_eq!(i["complete"], true, "{name}");
        assert_eq!(i["lines"], lines, "{name}");
        assert_eq!(i["requests"], requests, "{name}");
        assert_eq!(i["posts"], posts, "{name}");
        assert_eq!(i["malformed"], malformed, "{name}");
        let example_lines: Vec<u64> = i["malformed_examples"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["line"].as_u64().unwrap())
            .collect();
        assert_eq!(example_lines, at, "{name}");
    }
    // The playground is gzip; the shop's times are +0330.
    assert_eq!(
        f.input("lnav-playground-access_log.gz")["compression"],
        "gzip"
    );
    assert_eq!(
        f.input("lnav-shop_access_log.log")["first_request"],
        "2019-01-22T00:26:14Z"
    );

    // `auto` picks combined for every one of them too, with the same counts.
    let mut auto: Vec<&str> = paths.iter().map(String::as_str).collect();
    auto.push("--strict");
    // Malformed lines make --strict fail; the counts do not change.
    f.scan(&auto).code(1);
    for (name, _, requests, _, malformed, _) in EXPECTED {
        let i = f.input(name);
        assert_eq!(i["format"], "combined", "{name}");
        assert_eq!(
            (i["requests"].as_u64(), i["malformed"].as_u64()),
            (Some(requests), Some(malformed)),
            "{name}"
        );
    }
}

#[test]
fn acceptance_cases_for_combined_logs() {
    if !Path::new(ACCEPTANCE).exists() {
        eprintln!("skipped: {ACCEPTANCE} is absent");
        return;
    }
    let out = std::process::Command::new(ACCEPTANCE)
        .args([
            BIN,
            "crowdsec_clf",
            "playground",
            "shop",
            "shop_subnet_calendar",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.trim_end().ends_with("4 passed, 0 failed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Issue 15: Caddy's own sample is json under `auto` (its 7 lines with `"status":0`
/// and its one reverse-proxy line no longer count against json in detection; they are
/// still malformed, as SPEC.md's status rule says, so the file is a bad input).
#[test]
fn caddy_sample_is_json_under_auto() {
    let Some(dir) = real_logs() else { return };
    let f = Fixture::new();
    let caddy = dir
        .join("crowdsec-hub-caddy-logs.log")
        .display()
        .to_string();
    f.scan(&[&caddy, "--threshold", "0"]).success();
    let i = f.input("crowdsec-hub-caddy-logs.log");
    assert_eq!(i["format"], "json");
    assert_eq!(
        (i["requests"].as_u64(), i["malformed"].as_u64()),
        (Some(3), Some(8))
    );
    assert_eq!(
        i["malformed_examples"][0]["reason"],
        "status is not three digits"
    );
    assert!(i["bad"]
        .as_str()
        .unwrap()
        .starts_with("too many malformed lines: 8 of 11"));
    let clients: Vec<String> = f.clients().into_iter().map(|r| r[0].clone()).collect();
    assert_eq!(clients, ["127.0.0.1"]);
}

/// Issue 15: Envoy's JSON access log inside the CRI container-log wrapper
/// (`TIMESTAMP stdout F {json}`) is read under `auto` as cri+json, the client being
/// `downstream_remote_address` without its port.
#[test]
fn envoy_in_the_cri_wrapper_is_read_under_auto() {
    let Some(dir) = real_logs() else { return };
    let f = Fixture::new();
    let envoy = dir
        .join("crowdsec-hub-envoy-http-crawl-non_statics.log")
        .display()
        .to_string();
    f.scan(&[&envoy, "--strict-lines"]).success();
    let i = f.input("envoy-http-crawl-non_statics.log");
    assert_eq!(i["format"], "cri+json");
    assert_eq!(
        (
            i["lines"].as_u64(),
            i["requests"].as_u64(),
            i["malformed"].as_u64()
        ),
        (Some(41), Some(41), Some(0))
    );
    assert_eq!(i["first_request"], "2025-12-31T16:40:00.100000Z");
    assert_eq!(i["last_request"], "2025-12-31T16:40:00.490000Z");
    assert_eq!(f.report()["population"]["clients"], 1);
    let out = Command::new(BIN)
        .args(["explain", "10.0.0.13", &envoy, "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["requests"], 41);
    assert_eq!(
        v["statuses"],
        serde_json::json!([{"requests": 41, "status": 404}])
    );
    assert_eq!(v["top_paths"][0]["path"], "/page-{n}");
}

/// Issue 15: a real nginx log wrapped as Kubernetes writes container logs reads under
/// `auto` as cri+combined and bills exactly as the plain one; a `P` (partial) piece is
/// malformed with its reason.
#[test]
fn a_cri_wrapped_nginx_log_bills_like_the_plain_one() {
    let Some(dir) = real_logs() else { return };
    let f = Fixture::new();
    let plain = dir.join("lnav-shop_access_log.log");
    let text = std::fs::read_to_string(&plain).unwrap();
    let wrapped: String = text
        .lines()
        .enumerate()
        .map(|(n, l)| format!("2019-01-22T00:26:{:02}.{n:09}Z stdout F {l}\n", n % 60))
        .collect();
    let cri = f.file("cri.log", wrapped);
    let plain = plain.display().to_string();
    let args = ["--threshold", "10", "--strict-lines"];
    f.scan(&[&[plain.as_str()][..], &args].concat()).success();
    let expected = f.read("violations.csv");
    assert!(expected.lines().count() > 1);
    f.scan(&[&[cri.as_str()][..], &args].concat()).success();
    assert_eq!(f.read("violations.csv"), expected);
    assert_eq!(f.input("cri.log")["format"], "cri+combined");
    let first = text.lines().next().unwrap();
    let partial = f.file(
        "partial.log",
        format!("2019-01-22T00:26:00Z stdout F {first}\n2019-01-22T00:26:00Z stdout P {first}\n"),
    );
    f.scan(&[&partial, "--format", "cri+combined", "--max-malformed", "1"])
        .success();
    let i = f.input("partial.log");
    assert_eq!(
        (i["requests"].as_u64(), i["malformed"].as_u64()),
        (Some(1), Some(1))
    );
    assert!(i["malformed_examples"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("partial CRI line"));
}
