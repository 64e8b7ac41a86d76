//! The second read: top paths and user agents of the reported clients, counted again
//! here from the files themselves, and the same evidence and tops whether or not lines
//! are skipped by the IPv4 prefilter.

use super::{gzip, Fixture};
use scrapemeter::config::{Config, Overrides, SettingsFile};
use scrapemeter::engine::bill::{analyze, ClientResult};
use scrapemeter::input::discover::discover;
use scrapemeter::input::reader::scan;
use scrapemeter::input::second_read::{attach_with, ip_prefilter, Prefilter};
use std::collections::HashMap;
use std::io::Read;
use std::net::IpAddr;

const HOSTILE_PATH: &str = "/<script>alert('p')</script>";
const HOSTILE_UA: &str = "<img src=x onerror=alert(1)> & co";

/// A combined line with a referer and a user agent of its own.
fn line(remote: &str, sec: u32, target: &str, referer: &str, ua: &str) -> String {
    format!(
        "{remote} - - [10/Oct/2026:{:02}:{:02}:{:02} +0000] \"GET {target} HTTP/1.1\" 200 5 \"{referer}\" \"{ua}\"\n",
        sec / 3600,
        sec / 60 % 60,
        sec % 60
    )
}

/// Three files (one gzip) of one scraper, `198.51.100.23`, written three ways, among
/// neighbours (60 requests each) whose lines hold its address's bytes (a longer
/// address, a referer).
fn logs(f: &Fixture) -> Vec<String> {
    let agents = ["bot/1.0", "bot/2.0", HOSTILE_UA, "Mozilla/5.0 (X11)"];
    let paths = [
        "/post/1",
        "/post/22?x=1",
        "/tag/a",
        HOSTILE_PATH,
        "/p/7/x/9",
    ];
    let mut files: [String; 3] = Default::default();
    for i in 0..600u32 {
        let remote = match i % 5 {
            0 => "::ffff:198.51.100.23",
            1 => "::FFFF:c633:6417",
            _ => "198.51.100.23",
        };
        let t = 3600 + i * 7;
        let file = &mut files[(i % 3) as usize];
        file.push_str(&line(
            remote,
            t,
            paths[(i % 7 % 5) as usize],
            "-",
            agents[(i % 5 % 4) as usize],
        ));
        // Neighbours below the threshold (no posts for the stylesheet).
        if i % 10 == 0 {
            file.push_str(&line("198.51.100.230", t, "/post/3", "-", "other"));
            let referer = "http://198.51.100.23/";
            file.push_str(&line("2001:db8::5", t + 1, "/post/4", referer, "bot/1.0"));
        }
        file.push_str(&line("192.0.2.1", t + 2, "/site.css", "-", "bot/1.0"));
    }
    vec![
        f.file("a/access.log", &files[0]),
        f.file("a/access.log.1.gz", gzip(files[1].as_bytes())),
        f.file("b/access.log", &files[2]),
    ]
}

/// `/p/7/x/9?q` → `/p/{n}/x/{n}`, written here from the README's definition.
fn template(target: &str) -> String {
    let path = target.split('?').next().unwrap();
    let mut out = String::new();
    let mut digits = false;
    for c in path.chars() {
        if c.is_ascii_digit() {
            if !digits {
                out.push_str("{n}");
            }
            digits = true;
        } else {
            out.push(c);
            digits = false;
        }
    }
    out
}

fn text_of(file: &str) -> String {
    let mut text = String::new();
    let raw = std::fs::read(file).unwrap();
    if file.ends_with(".gz") {
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_string(&mut text)
            .unwrap();
    } else {
        text = String::from_utf8(raw).unwrap();
    }
    text
}

/// Requests per path template and per user agent of `client`, by reading the files.
fn count_by_hand(files: &[String], client: &str) -> (HashMap<String, u64>, HashMap<String, u64>) {
    let (mut paths, mut agents) = (HashMap::new(), HashMap::new());
    for f in files {
        for l in text_of(f).lines() {
            let ip: IpAddr = l.split(' ').next().unwrap().parse().unwrap();
            let ip = match ip {
                IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
                v4 => v4,
            };
            if ip.to_string() != client {
                continue;
            }
            let quoted: Vec<&str> = l.split('"').collect();
            let target = quoted[1].split(' ').nth(1).unwrap();
            *paths.entry(template(target)).or_default() += 1;
            *agents.entry(quoted[5].to_string()).or_default() += 1;
        }
    }
    (paths, agents)
}

/// The top ten of a count, most first, ties by value, as JSON like report.json's.
fn top(counts: &HashMap<String, u64>, name: &str) -> serde_json::Value {
    let mut v: Vec<(&String, &u64)> = counts.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    v.truncate(10);
    v.into_iter()
        .map(|(k, n)| serde_json::json!({name: k, "requests": n}))
        .collect()
}

#[test]
fn top_paths_and_user_agents_match_the_files_and_are_escaped() {
    let f = Fixture::new();
    let files = logs(&f);
    let mut args = vec!["--threshold", "100"];
    args.extend(files.iter().map(String::as_str));
    f.scan(&args).success();
    let doc = f.report();
    let client = doc["clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["client"] == "198.51.100.23")
        .expect("the scraper is flagged")
        .clone();
    let (paths, agents) = count_by_hand(&files, "198.51.100.23");
    assert_eq!(paths.values().sum::<u64>(), 600);
    assert_eq!(client["top_paths"], top(&paths, "path"));
    assert_eq!(client["top_user_agents"], top(&agents, "user_agent"));
    assert_eq!(client["tops_exact"], true);
    assert_eq!(client["total_requests"], 600);

    let html = f.read("report.html");
    assert!(
        html.contains("<td class=\"mono\">/&lt;script&gt;alert(&#39;p&#39;)&lt;/script&gt;</td>")
    );
    assert!(html.contains("<td class=\"mono\">&lt;img src=x onerror=alert(1)&gt; &amp; co</td>"));
    assert!(!html.contains(HOSTILE_PATH) && !html.contains(HOSTILE_UA));

    // Without the second read, no tops.
    f.scan(&[&args[..], &["--no-evidence"]].concat()).success();
    let doc = f.report();
    assert!(doc["clients"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c.get("top_paths").is_none() && c.get("top_user_agents").is_none()));
    assert!(!f.read("report.html").contains("Top paths"));
}

fn config(inputs: Vec<String>, client: &str, threshold: u64) -> Config {
    Config::resolve(
        inputs,
        "out".into(),
        Overrides {
            client: Some(client.into()),
            threshold: Some(threshold),
            threads: Some(2),
            ..Default::default()
        },
        SettingsFile::default(),
    )
    .unwrap()
}

/// (client, evidence of every window, tops, members) of each reported client.
fn second_read(cfg: &Config, pre: Prefilter) -> Vec<String> {
    let mut out = scan(&cfg.read, discover(&cfg.inputs));
    let aggregate = std::mem::take(&mut out.aggregate);
    let mut analysis = analyze(&cfg.policy, aggregate, &|k| cfg.read.identify(k));
    attach_with(&cfg.read, &out, &[], &mut analysis, pre);
    analysis
        .clients
        .iter()
        .map(|c: &ClientResult| {
            let evidence: Vec<_> = c.windows.iter().map(|w| &w.evidence).collect();
            format!("{} {evidence:?} {:?} {:?}", c.name, c.tops, c.members)
        })
        .collect()
}

#[test]
fn the_ip_prefilter_finds_what_full_parsing_finds() {
    let f = Fixture::new();
    let mut files = logs(&f);
    // JSON lines may escape the digits of an address.
    let mut json = String::new();
    for i in 0..50 {
        json.push_str(&format!(
            "{{\"time_iso8601\":\"2026-10-10T05:00:{:02}+00:00\",\"remote_addr\":\"\\u0031\\u0039\\u0038.51.100.23\",\"request\":\"GET /json/{i} HTTP/1.1\",\"status\":200,\"http_user_agent\":\"json-bot\"}}\n",
            i
        ));
    }
    files.push(f.file("c/access.json", json));
    let cfg = config(files, "ip", 100);
    let fast = second_read(&cfg, Prefilter::Auto);
    let slow = second_read(&cfg, Prefilter::Off);
    assert_eq!(fast, slow);
    assert_eq!(fast.len(), 1, "{fast:?}");
    assert!(fast[0].contains("json-bot"), "{fast:?}");
    assert!(fast[0].contains("first: Some"), "{fast:?}");
    // The prefilter was in use (the one reported client is a plain IPv4 address) and
    // skipped lines: the other clients' lines, but for those that hold its bytes.
    let filter = ip_prefilter(&cfg.read, [b"198.51.100.23".as_slice()].into_iter()).unwrap();
    let (mut kept, mut all) = (0, 0);
    for file in &cfg.inputs {
        for l in text_of(file).lines() {
            all += 1;
            kept += filter.is_match(l) as usize;
        }
    }
    assert_eq!((kept, all), (600 + 60 + 60 + 50, 600 + 60 + 60 + 600 + 50));

    // With keys the filter cannot vouch for (subnets), every line is parsed: same answers.
    let cfg = config(cfg.inputs.clone(), "subnet", 100);
    assert!(ip_prefilter(&cfg.read, [b"198.51.100.0/24".as_slice()].into_iter()).is_none());
    assert_eq!(
        second_read(&cfg, Prefilter::Auto),
        second_read(&cfg, Prefilter::Off)
    );
}
