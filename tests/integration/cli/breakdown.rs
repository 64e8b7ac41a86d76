//! Per flagged client, from the second read: the raw spellings its key was logged as
//! and its requests and posts by status class and by rule, counted again here from the
//! lines the test writes.

use super::{line, Fixture};
use serde_json::{json, Value};
use std::collections::BTreeMap;

const CLIENT: &str = "203.0.113.77";
const MAPPED: &str = "::ffff:203.0.113.77";
const HOSTILE: &str = "<script>alert(1)</script>";
const STATUSES: [u16; 8] = [200, 200, 304, 301, 404, 500, 200, 204];

fn time(sec: u32) -> String {
    format!(
        "10/Oct/2026:{:02}:{:02}:{:02} +0000",
        sec / 3600,
        sec / 60 % 60,
        sec % 60
    )
}

fn class(status: u16) -> &'static str {
    match status {
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "other",
    }
}

/// One line of the client: (spelling, target, status).
struct Req {
    remote: &'static str,
    target: String,
    status: u16,
}

/// The client's 700 requests under two spellings with a mix of statuses (and some
/// stylesheets), a hostile host name with posts of its own, and a quiet neighbour.
fn logs(f: &Fixture) -> (String, Vec<Req>) {
    let mut text = String::new();
    let mut mine = Vec::new();
    for i in 0..700u32 {
        let r = Req {
            remote: if i % 3 == 0 { MAPPED } else { CLIENT },
            target: if i % 9 == 0 {
                "/s.css".to_string()
            } else {
                format!("/post/{i}")
            },
            status: STATUSES[(i % 8) as usize],
        };
        text.push_str(&line(r.remote, &time(3600 + i * 5), &r.target, r.status));
        mine.push(r);
        if i % 4 == 0 {
            text.push_str(&line(HOSTILE, &time(3601 + i * 5), "/post/1", 200));
        }
        if i % 50 == 0 {
            text.push_str(&line("192.0.2.9", &time(3602 + i * 5), "/post/2", 200));
        }
    }
    (f.file("access.log", text), mine)
}

fn client<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["client"] == name)
        .unwrap_or_else(|| panic!("{name} is flagged"))
}

/// `[{"as", "requests"}]`, most requests first, as report.json lists them.
fn spellings(mine: &[Req]) -> Value {
    let mut n: BTreeMap<&str, u64> = BTreeMap::new();
    for r in mine {
        *n.entry(r.remote).or_default() += 1;
    }
    let mut v: Vec<(&str, u64)> = n.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    v.into_iter()
        .map(|(s, n)| json!({"as": s, "requests": n}))
        .collect()
}

/// `[{"class", "requests", "posts"}]` with `posts` weighing each request.
fn by_status(mine: &[Req], posts: impl Fn(&Req) -> u64) -> Value {
    let mut n: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for r in mine {
        let e = n.entry(class(r.status)).or_default();
        e.0 += 1;
        e.1 += posts(r);
    }
    n.into_iter()
        .map(|(c, (r, p))| json!({"class": c, "requests": r, "posts": p}))
        .collect()
}

fn sums(rows: &Value) -> (u64, u64) {
    rows.as_array().unwrap().iter().fold((0, 0), |(r, p), row| {
        (
            r + row["requests"].as_u64().unwrap(),
            p + row["posts"].as_u64().unwrap(),
        )
    })
}

#[test]
fn logged_as_and_by_status_match_the_lines_and_are_escaped() {
    let f = Fixture::new();
    let (log, mine) = logs(&f);
    f.scan(&["--threshold", "100", &log]).success();
    let doc = f.report();
    let c = client(&doc, CLIENT);
    assert_eq!(c["logged_as"], spellings(&mine));
    assert_eq!(
        c["logged_as_others"],
        json!({"spellings": 0, "requests": 0})
    );
    assert_eq!(c["logged_as_exact"], true);
    // The default rule: a 2xx or 304 response to a path that is not a static asset.
    let default = |r: &Req| {
        ((200..300).contains(&r.status) || r.status == 304) as u64
            * !r.target.ends_with(".css") as u64
    };
    assert_eq!(c["by_status"], by_status(&mine, default));
    assert_eq!(
        sums(&c["by_status"]),
        (
            c["total_requests"].as_u64().unwrap(),
            c["total_posts"].as_u64().unwrap()
        )
    );
    assert_eq!(c["total_requests"], 700);
    assert!(
        c.get("by_rule").is_none(),
        "no rules file, no table by rule"
    );

    // The hostile host name is its own client and its own spelling, escaped.
    let h = client(&doc, HOSTILE);
    assert_eq!(h["logged_as"], json!([{"as": HOSTILE, "requests": 175}]));
    let html = f.read("report.html");
    assert!(html.contains("Logged as"));
    assert!(html.contains("<td class=\"mono\">::ffff:203.0.113.77</td>"));
    assert!(html.contains("<td class=\"mono\">&lt;script&gt;alert(1)&lt;/script&gt;</td>"));
    assert!(!html.contains(HOSTILE));
    assert!(html.contains("Requests by status class"));

    // Without the second read, none of it.
    f.scan(&["--threshold", "100", "--no-evidence", &log])
        .success();
    let doc = f.report();
    for c in doc["clients"].as_array().unwrap() {
        for k in ["logged_as", "logged_as_others", "by_status", "by_rule"] {
            assert!(c.get(k).is_none(), "{k} without the second read");
        }
    }
    let html = f.read("report.html");
    assert!(!html.contains("Logged as") && !html.contains("Requests by status class"));
}

#[test]
fn by_rule_says_which_rule_weighed_what() {
    let f = Fixture::new();
    let (log, mine) = logs(&f);
    let rules = f.file(
        "rules.toml",
        "[[rule]]\nname = \"<b>posts</b>\"\npath = \"/post/*\"\nstatus = [\"2xx\", \"304\"]\nposts = 3\n\n\
         [[rule]]\nname = \"errors\"\nstatus = [\"4xx\"]\nposts = 1\n",
    );
    f.scan(&["--threshold", "100", "--rules", &rules, &log])
        .success();
    let doc = f.report();
    let c = client(&doc, CLIENT);
    let rule = |r: &Req| -> Option<usize> {
        if ((200..300).contains(&r.status) || r.status == 304) && r.target.starts_with("/post/") {
            Some(0)
        } else if (400..500).contains(&r.status) {
            Some(1)
        } else {
            None
        }
    };
    let weight = |r: &Req| match rule(r) {
        Some(0) => 3,
        Some(_) => 1,
        None => 0,
    };
    assert_eq!(c["by_status"], by_status(&mine, weight));
    let mut rows = [(0u64, 0u64); 3];
    for r in &mine {
        let i = rule(r).unwrap_or(2);
        rows[i].0 += 1;
        rows[i].1 += weight(r);
    }
    assert_eq!(
        c["by_rule"],
        json!([
            {"rule": "<b>posts</b>", "requests": rows[0].0, "posts": rows[0].1},
            {"rule": "errors", "requests": rows[1].0, "posts": rows[1].1},
            {"rule": null, "requests": rows[2].0, "posts": rows[2].1},
        ])
    );
    let total = (
        c["total_requests"].as_u64().unwrap(),
        c["total_posts"].as_u64().unwrap(),
    );
    assert_eq!(sums(&c["by_status"]), total);
    assert_eq!(sums(&c["by_rule"]), total);
    let html = f.read("report.html");
    assert!(html.contains("Requests by rule"));
    assert!(html.contains("&lt;b&gt;posts&lt;/b&gt;"));
    assert!(!html.contains("<b>posts</b>"));
}
