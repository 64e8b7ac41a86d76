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
        html.contains(&format!("highest {exact} (exact)")),
        "{exact}"
    );
}
