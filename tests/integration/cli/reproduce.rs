//! A report legal can reproduce and identify: the identifier ties the page to its
//! CSVs, the page gives the command line, every setting and the rules file in full,
//! and only exact numbers look exact.

use super::Fixture;
use sha2::{Digest, Sha256};
use std::path::Path;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

#[test]
fn the_report_names_its_csvs_its_command_and_its_rules() {
    let f = Fixture::new();
    let logs = Path::new(REPO).join("sample-logs");
    // A comment with markup in it, to see it escaped on the page.
    let rules = f.file(
        "rules.toml",
        "# the <sample> rules & \"tests\"\n[[rule]]\nname = \"statuses\"\npath_regex = '^/api/v1/statuses/\\d+$'\nposts = 1\n\n[[rule]]\nname = \"timelines\"\npath = \"/api/v1/timelines/**\"\nposts = { query = \"limit\", default = 20, max = 40 }\n",
    );
    let rules = Path::new(&rules);
    f.scan(&[logs.to_str().unwrap(), "--rules", rules.to_str().unwrap()])
        .success();
    let mut h = Sha256::new();
    h.update(f.read("violations.csv"));
    h.update(f.read("clients.csv"));
    let id = hex::encode(h.finalize());
    let report = f.report();
    assert_eq!(report["report_id"], id.as_str());
    let html = f.read("report.html");
    // On the page, and at the foot of every printed page.
    assert!(html.contains(&format!("Report <span class=\"mono\">{id}</span>")));
    assert!(html.contains(&format!("content:\"scrapemeter report {id}\"")));
    // The command line, the rules file in full (escaped) with its digest.
    let cmd = &report["run"]["command_line"];
    assert_eq!(cmd[1], "scan");
    assert!(html.contains("--rules"));
    let text = std::fs::read_to_string(rules).unwrap();
    let digest = hex::encode(Sha256::digest(text.as_bytes()));
    assert_eq!(report["settings"]["rules"]["sha256"], digest.as_str());
    assert_eq!(report["settings"]["rules"]["text"], text.as_str());
    let escaped = text
        .trim_end()
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;");
    assert!(html.contains(&escaped), "the rules text is not on the page");
    assert!(!html.contains("rules file: rules file"));
    // The highest peak is exact: the largest of the clients' peaks.
    let max = report["clients"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["peak"]["posts"].as_u64())
        .max()
        .unwrap();
    assert_eq!(report["population"]["peak_posts"]["max"], max);
    let exact = scrapemeter::report::summary::thousands(max);
    assert!(
        html.contains(&format!(
            "highest <data value=\"{max}\" data-src=\"report.json:/population/peak_posts/max\">{exact}</data> (exact)"
        )),
        "{exact}"
    );
    // Each billed window has its posts per hour, adding up to its posts.
    for c in report["clients"].as_array().unwrap() {
        for w in c["windows"].as_array().unwrap() {
            let n = w["posts"].as_u64().unwrap();
            let posts = scrapemeter::report::summary::thousands(n);
            let figure = regex::Regex::new(&format!(
                r#"they add up to its <data value="{n}" data-src="[^"]+">{posts}</data> posts"#
            ))
            .unwrap();
            assert!(figure.is_match(&html), "{posts}");
        }
    }
    assert!(html.contains("Posts per hour in billed window 1"));
    // And the bars do add up: each hourly chart's bars sum to one window's posts.
    let mut drawn: Vec<u64> = html
        .split("<svg class=\"hourly\"")
        .skip(1)
        .map(|svg| {
            let svg = &svg[..svg.find("</svg>").unwrap()];
            svg.split("from the window&#39;s start: ")
                .skip(1)
                .map(|t| {
                    let n = &t[..t.find(" posts").unwrap()];
                    n.replace(',', "").parse::<u64>().unwrap()
                })
                .sum()
        })
        .collect();
    let mut billed: Vec<u64> = report["clients"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["windows"].as_array().unwrap().iter())
        .map(|w| w["posts"].as_u64().unwrap())
        .collect();
    drawn.sort_unstable();
    billed.sort_unstable();
    assert_eq!(drawn, billed);
    // The overview of all traffic adds up to the totals.
    let t = &report["traffic"];
    let hours = t["per_hour"].as_array().unwrap();
    let sum = |k: &str| hours.iter().map(|h| h[k].as_u64().unwrap()).sum::<u64>();
    assert_eq!(
        sum("requests"),
        report["totals"]["requests"].as_u64().unwrap()
    );
    assert_eq!(sum("posts"), report["totals"]["posts"].as_u64().unwrap());
    let by_status: u64 = t["by_status"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(by_status, report["totals"]["requests"].as_u64().unwrap());
    assert_eq!(t["clients"], report["population"]["clients"]);
    assert!(html.contains("<h2 id=\"overview\">Overview of all traffic</h2>"));
}

/// report.json's `settings` hold every setting that decides what was read and how a
/// bad input was judged, as given (flags or settings file); report.html's Reproduce
/// table shows the same.
#[test]
fn the_settings_say_how_inputs_were_judged() {
    let f = Fixture::new();
    f.file("logs/a.log", "garbage\n");
    f.file("logs/old.bak", "garbage\n");
    let logs = f.path("logs").display().to_string();
    let config = f.file(
        "settings.toml",
        "max_malformed = 0.5\nexclude = [\"*.bak\"]\n",
    );
    let missing = f.path("nowhere.log").display().to_string();
    // A bad input under --strict-lines: exit 1, the reports written.
    f.scan(&[
        &logs,
        &missing,
        "--config",
        &config,
        "--exclude",
        "*.tmp",
        "--allow-missing",
        "--strict-lines",
        "--no-evidence",
    ])
    .code(1);
    let s = &f.report()["settings"];
    assert_eq!(s["strict"], false);
    assert_eq!(s["strict_lines"], true);
    assert_eq!(s["max_malformed"], 0.5);
    assert_eq!(s["allow_missing"], true);
    // The settings file's globs, then the flags'.
    assert_eq!(s["exclude"], serde_json::json!(["*.bak", "*.tmp"]));
    assert_eq!(s["evidence"], false);
    // Run-time facts stay in `run`: the reports are the same whatever --threads.
    assert!(s.get("threads").is_none());
    let html = f.read("report.html");
    assert!(html.contains(
        "<tr><th><code>exclude</code></th><td><span class=\"mono\">*.bak</span>, <span class=\"mono\">*.tmp</span></td></tr>"
    ));
    assert!(html.contains("<tr><th><code>strict_lines</code></th><td>true</td></tr>"));
    // The defaults, spelt out.
    let log = f.file("b.log", "");
    f.scan(&[&log]).success();
    let s = &f.report()["settings"];
    assert_eq!(
        (
            &s["strict"],
            &s["strict_lines"],
            &s["max_malformed"],
            &s["allow_missing"],
            &s["exclude"],
            &s["evidence"]
        ),
        (
            &false.into(),
            &false.into(),
            &0.01.into(),
            &false.into(),
            &serde_json::json!([]),
            &true.into()
        )
    );
    assert!(f
        .read("report.html")
        .contains("<tr><th><code>exclude</code></th><td>none</td></tr>"));
}

/// One report identifier, computed once: report.json, report.html and the stdout
/// summary (text and JSON) carry the same, the SHA-256 of violations.csv followed by
/// clients.csv as written (`cat violations.csv clients.csv | sha256sum`).
#[test]
fn every_report_carries_the_one_id_of_its_csvs() {
    let f = Fixture::new();
    let logs = Path::new(REPO).join("sample-logs");
    let scan = |summary: &str| {
        let out = assert_cmd::Command::new(super::BIN)
            .args([
                "scan",
                logs.to_str().unwrap(),
                "--summary",
                summary,
                "--out",
            ])
            .arg(f.out())
            .assert()
            .success();
        String::from_utf8(out.get_output().stdout.clone()).unwrap()
    };
    let text = scan("text");
    let mut h = Sha256::new();
    h.update(f.read("violations.csv"));
    h.update(f.read("clients.csv"));
    let id = hex::encode(h.finalize());
    assert!(text.lines().any(|l| l == format!("report {id}")), "{text}");
    assert_eq!(f.report()["report_id"], id.as_str());
    let html = f.read("report.html");
    assert!(html.contains(&format!("Report <span class=\"mono\">{id}</span>")));
    assert!(html.contains(&format!("content:\"scrapemeter report {id}\"")));
    assert!(html.contains(&format!(
        "<dt>Report identifier</dt><dd><span class=\"mono\">{id}</span>"
    )));
    let json: serde_json::Value = serde_json::from_str(&scan("json")).unwrap();
    assert_eq!(json["report_id"], id.as_str());
    assert_eq!(f.report()["report_id"], id.as_str());
}
