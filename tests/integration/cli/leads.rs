//! `scan --also-by subnet|ua` end to end: leads are groups over the threshold with no
//! client over it, listed in report.json, report.html and the summary, never billed.

use super::{Fixture, BIN};
use assert_cmd::Command;
use serde_json::Value;

/// `n` post lines of `ip` with user agent `ua`, one a second from `hh:00:00` on
/// 10/Oct/2026 UTC.
fn posts(ip: &str, ua: &str, hh: u32, n: u32) -> String {
    (0..n)
        .map(|i| {
            format!(
                "{ip} - - [10/Oct/2026:{hh:02}:{:02}:{:02} +0000] \"GET /post/{i} HTTP/1.1\" 200 5 \"-\" \"{ua}\"\n",
                i / 60 % 60,
                i % 60
            )
        })
        .collect()
}

/// Scans `log` with `args` and returns report.json.
fn scan(f: &Fixture, log: &str, args: &[&str]) -> Value {
    let path = f.file("access.log", log);
    let mut all = vec![path.as_str()];
    all.extend_from_slice(args);
    f.scan(&all).success();
    f.report()
}

/// The leads of grouping `by` in report.json.
fn leads<'a>(report: &'a Value, by: &str) -> &'a Vec<Value> {
    report["leads"]["groupings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["by"] == by)
        .unwrap_or_else(|| panic!("no grouping {by}: {:#}", report["leads"]))["leads"]
        .as_array()
        .unwrap()
}

fn four_addresses_of_three_posts() -> String {
    ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"]
        .iter()
        .enumerate()
        .map(|(i, ip)| posts(ip, "agent/1.0", i as u32, 3))
        .collect()
}

#[test]
fn four_addresses_of_one_24_below_the_threshold_whose_sum_breaches_are_one_lead() {
    let f = Fixture::new();
    let r = scan(
        &f,
        &four_addresses_of_three_posts(),
        &["--threshold", "10", "--also-by", "subnet"],
    );
    // Nothing is billed: the lead is in no CSV row and no damages total.
    assert!(f.violations().is_empty());
    assert!(f.clients().is_empty());
    assert_eq!(r["summary"]["damages_usd"], "0.00");
    assert_eq!(r["settings"]["also_by"], serde_json::json!(["subnet"]));
    let g = &r["leads"]["groupings"][0];
    assert_eq!(
        (
            &g["ipv4_prefix"],
            &g["ipv6_prefix"],
            &g["groups"],
            &g["groups_over_threshold"]
        ),
        (
            &Value::from(24),
            &Value::from(64),
            &Value::from(1),
            &Value::from(1)
        )
    );
    let l = &leads(&r, "subnet")[0];
    assert_eq!(l["group"], "192.0.2.0/24");
    assert_eq!(l["peak"]["start"], "2026-10-10T00:00:00Z");
    assert_eq!(l["peak"]["end"], "2026-10-11T00:00:00Z");
    assert_eq!(
        (&l["peak"]["posts"], &l["members_total"]),
        (&12.into(), &4.into())
    );
    let one = &l["if_billed_as_one_client"];
    // 12 posts at USD 15,000 per 1,000,000: USD 0.18.
    assert_eq!(
        (&one["posts"], &one["damages_usd"]),
        (&12.into(), &"0.18".into())
    );
    assert_eq!(one["windows"].as_array().unwrap().len(), 1);
    let members: Vec<(&str, u64, &str)> = l["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["client"].as_str().unwrap(),
                m["peak"]["posts"].as_u64().unwrap(),
                m["peak"]["start"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        members,
        [
            ("192.0.2.1", 3, "2026-10-10T00:00:00Z"),
            ("192.0.2.2", 3, "2026-10-10T01:00:00Z"),
            ("192.0.2.3", 3, "2026-10-10T02:00:00Z"),
            ("192.0.2.4", 3, "2026-10-10T03:00:00Z"),
        ]
    );
    let html = f.read("report.html");
    assert!(html.contains("id=\"leads\""));
    assert!(html.contains("192.0.2.0/24"));
    // Every figure of the leads section names its place in report.json and equals it.
    let checked = crate::html_report::check_numbers(&html, &f.out(), "leads");
    assert!(checked["report.json"] >= 10, "{checked:?}");
    // The summary says so in one line, the same figures as report.json.
    let out = Command::new(BIN)
        .args(["scan", &f.path("access.log").display().to_string()])
        .args(["--threshold", "10", "--also-by", "subnet", "--out"])
        .arg(f.path("out2"))
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(
        stdout.contains("  1 by subnet; see report.html"),
        "{stdout}"
    );
    let out = Command::new(BIN)
        .args(["scan", &f.path("access.log").display().to_string()])
        .args([
            "--threshold",
            "10",
            "--also-by",
            "subnet",
            "--summary",
            "json",
            "--out",
        ])
        .arg(f.path("out3"))
        .assert()
        .success();
    let summary: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(summary["leads"], serde_json::json!({"subnet": 1}));
    assert_eq!(summary["damages_usd"], "0.00");
}

#[test]
fn threshold_exactly_is_no_lead_and_one_below_it_is() {
    let f = Fixture::new();
    let log = four_addresses_of_three_posts();
    let r = scan(&f, &log, &["--threshold", "12", "--also-by", "subnet"]);
    assert!(leads(&r, "subnet").is_empty());
    assert_eq!(r["leads"]["groupings"][0]["groups_over_threshold"], 0);
    let r = scan(&f, &log, &["--threshold", "11", "--also-by", "subnet"]);
    assert_eq!(leads(&r, "subnet").len(), 1);
}

#[test]
fn a_group_with_a_billed_member_is_counted_not_listed() {
    let f = Fixture::new();
    let log = posts("192.0.2.1", "a", 0, 11) + &posts("192.0.2.2", "a", 1, 3);
    let r = scan(&f, &log, &["--threshold", "10", "--also-by", "subnet"]);
    assert_eq!(f.violations().len(), 1);
    let g = &r["leads"]["groupings"][0];
    assert_eq!(
        (
            &g["groups_over_threshold"],
            &g["groups_with_a_member_over_threshold"]
        ),
        (&1.into(), &1.into())
    );
    assert!(leads(&r, "subnet").is_empty());
}

#[test]
fn ipv6_groups_by_64_or_by_the_prefix_given() {
    let f = Fixture::new();
    let log = posts("2001:db8:1:2::1", "a", 0, 6)
        + &posts("2001:db8:1:2:ffff::9", "a", 1, 6)
        + &posts("2001:db8:1:3::1", "a", 2, 6);
    let r = scan(&f, &log, &["--threshold", "10", "--also-by", "subnet"]);
    let l = leads(&r, "subnet");
    assert_eq!(l.len(), 1);
    assert_eq!(l[0]["group"], "2001:db8:1:2::/64");
    assert_eq!(l[0]["members_total"], 2);
    let r = scan(
        &f,
        &log,
        &[
            "--threshold",
            "10",
            "--also-by",
            "subnet",
            "--subnet-v6",
            "48",
        ],
    );
    let l = leads(&r, "subnet");
    assert_eq!(l[0]["group"], "2001:db8:1::/48");
    assert_eq!(
        (&l[0]["peak"]["posts"], &l[0]["members_total"]),
        (&18.into(), &3.into())
    );
    assert_eq!(r["leads"]["groupings"][0]["ipv6_prefix"], 48);
}

#[test]
fn an_ipv4_mapped_address_is_in_its_ipv4_network() {
    let f = Fixture::new();
    let log = posts("::ffff:192.0.2.9", "a", 0, 6) + &posts("192.0.2.10", "a", 1, 6);
    let r = scan(&f, &log, &["--threshold", "10", "--also-by", "subnet"]);
    let l = leads(&r, "subnet");
    assert_eq!(l[0]["group"], "192.0.2.0/24");
    let members: Vec<&str> = l[0]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["client"].as_str().unwrap())
        .collect();
    assert_eq!(members, ["192.0.2.10", "192.0.2.9"]);
}

#[test]
fn user_agents_group_clients_of_any_network_and_stay_inert_in_html() {
    let f = Fixture::new();
    let ua = "<script>alert(1)</script>";
    let log = posts("192.0.2.1", ua, 0, 6)
        + &posts("198.51.100.7", ua, 1, 6)
        + &posts("203.0.113.9", "other/2.0", 2, 6);
    let r = scan(&f, &log, &["--threshold", "10", "--also-by", "ua,subnet"]);
    assert!(leads(&r, "subnet").is_empty());
    let l = leads(&r, "ua");
    assert_eq!(l.len(), 1);
    assert_eq!(l[0]["group"], ua);
    assert_eq!(l[0]["members_total"], 2);
    let html = f.read("report.html");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!html.contains(ua));
}

#[test]
fn exempt_organisations_are_left_out_of_groups() {
    let f = Fixture::new();
    let orgs = f.file(
        "orgs.csv",
        "match,org,exempt\n192.0.2.1,Partner,true\n192.0.2.2,Other,false\n",
    );
    let log = posts("192.0.2.1", "a", 0, 9) + &posts("192.0.2.2", "a", 1, 3);
    // 9 + 3 = 12 would breach; without the exempt partner's 9 posts, 3 do not.
    let r = scan(
        &f,
        &log,
        &["--threshold", "10", "--also-by", "subnet", "--orgs", &orgs],
    );
    assert_eq!(r["leads"]["groupings"][0]["groups_over_threshold"], 0);
    let r = scan(&f, &log, &["--threshold", "10", "--also-by", "subnet"]);
    assert_eq!(leads(&r, "subnet").len(), 1);
}

#[test]
fn without_the_flag_report_json_has_no_leads() {
    let f = Fixture::new();
    let r = scan(&f, &four_addresses_of_three_posts(), &["--threshold", "10"]);
    assert!(r.get("leads").is_none());
    assert!(r["settings"].get("also_by").is_none());
    assert!(!f.read("report.html").contains("id=\"leads\""));
}

#[test]
fn also_by_refuses_what_it_cannot_mean() {
    let f = Fixture::new();
    let log = f.file("access.log", four_addresses_of_three_posts());
    for (args, says) in [
        (vec!["--also-by", "ip"], "invalid value 'ip'"),
        (
            vec!["--also-by", "subnet", "--client", "subnet"],
            "already keyed by subnet",
        ),
        (
            vec!["--also-by", "ua", "--client", "ua"],
            "already keyed by ua",
        ),
        (
            vec!["--also-by", "subnet", "--state", "st"],
            "does not go with --state",
        ),
    ] {
        let out = Command::new(BIN)
            .args(["scan", &log, "--out"])
            .arg(f.out())
            .args(&args)
            .assert()
            .code(2);
        let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    // explain and reduce do not take it.
    Command::new(BIN)
        .args(["explain", "192.0.2.1", &log, "--also-by", "subnet"])
        .assert()
        .code(2);
}
