//! Rules files and organisations files, end to end: a small combined log, a rules file
//! and an organisations file built in a temporary folder, and the reports checked row
//! by row.

use assert_cmd::Command;
use std::fs;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

const LOG: &str = "\
198.51.100.7 - - [10/Oct/2026:10:00:00 +0000] \"GET /api/v2/timeline/home?count=200 HTTP/1.1\" 200 512 \"-\" \"curl/8\"
198.51.100.8 - - [10/Oct/2026:10:05:00 +0000] \"GET /api/v2/timeline/home?count=500 HTTP/1.1\" 200 512 \"-\" \"curl/8\"
198.51.100.8 - - [10/Oct/2026:10:10:00 +0000] \"GET /jack/status/12 HTTP/1.1\" 200 512 \"-\" \"curl/8\"
198.51.100.8 - - [10/Oct/2026:10:15:00 +0000] \"GET /jack/status/12/likes HTTP/1.1\" 200 512 \"-\" \"curl/8\"
198.51.100.7 - - [10/Oct/2026:10:20:00 +0000] \"POST /api/v2/timeline/home?count=50 HTTP/1.1\" 200 512 \"-\" \"curl/8\"
198.51.100.7 - - [11/Oct/2026:12:00:00 +0000] \"GET /api/v1/timeline/x?count=150 HTTP/1.1\" 200 512 \"-\" \"curl/8\"
203.0.113.5 - - [10/Oct/2026:10:00:00 +0000] \"GET /api/v2/timeline/home?count=150 HTTP/1.1\" 200 512 \"-\" \"partner\"
192.0.2.1 - - [10/Oct/2026:10:00:00 +0000] \"GET /api/v2/timeline/home HTTP/1.1\" 200 512 \"-\" \"x\"
192.0.2.1 - - [10/Oct/2026:10:01:00 +0000] \"GET /api/v2/timeline HTTP/1.1\" 200 512 \"-\" \"x\"
192.0.2.1 - - [10/Oct/2026:10:02:00 +0000] \"GET /api/v2/timeline/home?count=190 HTTP/1.1\" 404 512 \"-\" \"x\"
2001:db8::1 - - [10/Oct/2026:11:00:00 +0000] \"GET /api/v3/timeline/a/b?count=101 HTTP/1.1\" 200 512 \"-\" \"y\"
::ffff:198.18.0.9 - - [10/Oct/2026:11:00:00 +0000] \"GET /bot/status/5 HTTP/1.1\" 200 512 \"-\" \"bot\"
2001:db8:0:0::2 - - [10/Oct/2026:11:30:00 +0000] \"GET /api/v3/timeline/a?count=x&count=50 HTTP/1.1\" 304 0 \"-\" \"y\"
";

const RULES: &str = r#"
[[rule]]
name = "timeline"
method = ["GET"]
path = "/api/*/timeline/**"
posts = { query = "count", default = 20, max = 200 }

[[rule]]
name = "single post"
path_regex = '^/[^/]+/status/\d+$'
posts = 1

[[rule]]
name = "everything else"
posts = 0
"#;

const ORGS: &str = "\
match,org,exempt
198.51.100.0/24,\"Acme, Inc.\",false
203.0.113.5,Partner,true
2001:db8::/32,V6 Corp,
198.18.0.0/15,Search Bot,true
";

struct Fixture {
    dir: TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let f = Fixture {
            dir: TempDir::new().unwrap(),
        };
        f.write("access.log", LOG);
        f.write("rules.toml", RULES);
        f.write("orgs.csv", ORGS);
        f
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) {
        fs::write(self.path(name), text).unwrap();
    }

    fn scan(&self, extra: &[&str]) -> assert_cmd::assert::Assert {
        Command::cargo_bin("scrapemeter")
            .unwrap()
            .current_dir(self.dir.path())
            .args(["scan", "access.log", "--out", "out", "--quiet"])
            .args(["--threshold", "100", "--per", "1000"])
            .args(extra)
            .assert()
    }

    fn out(&self, name: &str) -> String {
        read(&self.path("out").join(name))
    }
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

const VIOLATIONS: &str = "\
client,window,window_start,window_end,posts,requests,damages_usd
\"Acme, Inc.\",1,2026-10-10T10:00:00Z,2026-10-11T10:00:00Z,401,5,6015.00
\"Acme, Inc.\",2,2026-10-11T12:00:00Z,2026-10-12T12:00:00Z,150,1,2250.00
V6 Corp,1,2026-10-10T11:00:00Z,2026-10-11T11:00:00Z,121,2,1815.00
";

const CLIENTS: &str = "\
client,windows,posts,requests,damages_usd,peak_start,peak_end,peak_posts,exempt
\"Acme, Inc.\",2,551,6,8265.00,2026-10-10T10:00:00Z,2026-10-11T10:00:00Z,401,false
Partner,1,150,1,0.00,2026-10-10T10:00:00Z,2026-10-11T10:00:00Z,150,true
Search Bot,0,0,0,0.00,2026-10-10T11:00:00Z,2026-10-11T11:00:00Z,1,true
V6 Corp,1,121,2,1815.00,2026-10-10T11:00:00Z,2026-10-11T11:00:00Z,121,false
";

#[test]
fn rules_and_orgs_decide_the_reports() {
    let f = Fixture::new();
    f.scan(&["--rules", "rules.toml", "--orgs", "orgs.csv"])
        .success();
    assert_eq!(f.out("violations.csv"), VIOLATIONS);
    assert_eq!(f.out("clients.csv"), CLIENTS);
}

#[test]
fn report_json_names_the_rules_and_orgs() {
    let f = Fixture::new();
    f.scan(&["--rules", "rules.toml", "--orgs", "orgs.csv"])
        .success();
    let doc: serde_json::Value = serde_json::from_str(&f.out("report.json")).unwrap();
    let settings = &doc["settings"];
    let sha = |name: &str| {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(fs::read(f.path(name)).unwrap()))
    };
    assert_eq!(settings["rules"]["path"], "rules.toml");
    assert_eq!(settings["rules"]["sha256"], sha("rules.toml"));
    assert_eq!(
        settings["rules"]["rules"],
        serde_json::json!(["timeline", "single post", "everything else"])
    );
    assert_eq!(settings["orgs"]["path"], "orgs.csv");
    assert_eq!(settings["orgs"]["sha256"], sha("orgs.csv"));
    assert_eq!(
        settings["orgs"]["exempt"],
        serde_json::json!(["Partner", "Search Bot"])
    );
    // Exempt damages never add to the totals.
    assert_eq!(doc["summary"]["damages_usd"], "10080.00");
    assert_eq!(doc["summary"]["billed_windows"], 3);
    assert_eq!(doc["summary"]["flagged_clients"], 2);
    let partner = doc["clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["client"] == "Partner")
        .unwrap();
    assert_eq!(partner["exempt"], true);
    assert_eq!(partner["damages_usd"], "0.00");
    assert_eq!(partner["windows"][0]["posts"], 150);
}

#[test]
fn without_orgs_every_ip_is_its_own_client() {
    let f = Fixture::new();
    f.scan(&["--rules", "rules.toml"]).success();
    assert_eq!(
        f.out("violations.csv"),
        "\
client,window,window_start,window_end,posts,requests,damages_usd
198.51.100.7,1,2026-10-10T10:00:00Z,2026-10-11T10:00:00Z,200,2,3000.00
198.51.100.7,2,2026-10-11T12:00:00Z,2026-10-12T12:00:00Z,150,1,2250.00
198.51.100.8,1,2026-10-10T10:05:00Z,2026-10-11T10:05:00Z,201,3,3015.00
2001:db8::1,1,2026-10-10T11:00:00Z,2026-10-11T11:00:00Z,101,1,1515.00
203.0.113.5,1,2026-10-10T10:00:00Z,2026-10-11T10:00:00Z,150,1,2250.00
"
    );
}

#[test]
fn settings_file_paths_are_relative_to_it() {
    let f = Fixture::new();
    fs::create_dir(f.path("conf")).unwrap();
    f.write("conf/rules.toml", RULES);
    f.write("conf/orgs.csv", ORGS);
    f.write(
        "conf/settings.toml",
        "rules = \"rules.toml\"\norgs = \"orgs.csv\"\n",
    );
    f.scan(&["--config", "conf/settings.toml"]).success();
    assert_eq!(f.out("violations.csv"), VIOLATIONS);
    assert_eq!(f.out("clients.csv"), CLIENTS);
}

#[test]
fn host_rules_never_match_a_log_without_hosts() {
    let f = Fixture::new();
    f.write(
        "hosts.toml",
        "[[rule]]\nname = \"api host\"\nhost = \"api.example.com\"\nposts = 1000\n\
         [[rule]]\nname = \"field\"\nposts = { field = \"x_posts\", default = 60 }\n",
    );
    f.scan(&["--rules", "hosts.toml", "--client", "ua"])
        .success();
    // Every request with a 2xx/304 status weighs the field's default: 60.
    assert_eq!(
        f.out("violations.csv"),
        "\
client,window,window_start,window_end,posts,requests,damages_usd
curl/8,1,2026-10-10T10:00:00Z,2026-10-11T10:00:00Z,300,5,4500.00
x,1,2026-10-10T10:00:00Z,2026-10-11T10:00:00Z,120,3,1800.00
y,1,2026-10-10T11:00:00Z,2026-10-11T11:00:00Z,120,2,1800.00
"
    );
}

#[test]
fn organisation_names_are_not_formula_guarded() {
    let f = Fixture::new();
    f.write(
        "users.log",
        "\
192.0.2.1 - alice [10/Oct/2026:10:00:00 +0000] \"GET /a/status/1 HTTP/1.1\" 200 1
192.0.2.1 - alice [10/Oct/2026:10:00:01 +0000] \"GET /a/status/2 HTTP/1.1\" 200 1
192.0.2.2 - -bob [10/Oct/2026:10:00:00 +0000] \"GET /a/status/1 HTTP/1.1\" 200 1
192.0.2.2 - -bob [10/Oct/2026:10:00:01 +0000] \"GET /a/status/2 HTTP/1.1\" 200 1
",
    );
    f.write("users.csv", "match,org\nalice,@Alice Org\n192.0.2.2,Nope\n");
    Command::cargo_bin("scrapemeter")
        .unwrap()
        .current_dir(f.dir.path())
        .args([
            "scan",
            "users.log",
            "--out",
            "out",
            "--quiet",
            "--client",
            "user",
        ])
        .args(["--threshold", "1", "--orgs", "users.csv"])
        .assert()
        .success();
    // The user key `-bob` comes from the log and is guarded; the organisation is not.
    // Under `user`, an address row does not match the request's IP.
    assert_eq!(
        f.out("violations.csv"),
        "\
client,window,window_start,window_end,posts,requests,damages_usd
'-bob,1,2026-10-10T10:00:00Z,2026-10-11T10:00:00Z,2,2,0.03
@Alice Org,1,2026-10-10T10:00:00Z,2026-10-11T10:00:00Z,2,2,0.03
"
    );
}

#[test]
fn bad_rules_files_exit_2() {
    let f = Fixture::new();
    for (text, needle) in [
        (
            "[[rule]]\nname = \"a\"\nposts = 1\n[[rule]]\nname = \"b\"\npaht = \"/x\"\nposts = 1\n",
            "rule 2 (\"b\"): unknown field `paht`",
        ),
        (
            "[[rule]]\nname = \"a\"\npath = \"/x\"\npath_regex = \"x\"\nposts = 1\n",
            "give path or path_regex, not both",
        ),
        (
            "[[rule]]\nname = \"a\"\npath_regex = \"(\"\nposts = 1\n",
            "not a valid regex",
        ),
        (
            "[[rule]]\nname = \"a\"\nstatus = [\"2xy\"]\nposts = 1\n",
            "status \"2xy\"",
        ),
    ] {
        f.write("bad.toml", text);
        let out = f
            .scan(&["--rules", "bad.toml"])
            .code(2)
            .get_output()
            .clone();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("bad.toml") && err.contains(needle), "{err}");
        assert!(!f.path("out").exists());
    }
    let out = f
        .scan(&["--rules", "missing.toml"])
        .code(2)
        .get_output()
        .clone();
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.toml"));
}

#[test]
fn bad_orgs_files_exit_2() {
    let f = Fixture::new();
    for (text, needle) in [
        ("198.51.100.0/24,Acme\n", "bad.csv:1: the header must be"),
        (
            "match,org\n198.51.100.0/33,Acme\n",
            "bad.csv:2: '198.51.100.0/33' is not a valid CIDR",
        ),
        ("match,org\n\n198.51.100.0/24,\n", "bad.csv:3: org is empty"),
        (
            "match,org,exempt\n10.0.0.0/8,A,true\n11.0.0.0/8,A,false\n",
            "bad.csv:3: 'A' is exempt = false here but exempt = true on line 2",
        ),
    ] {
        f.write("bad.csv", text);
        let out = f.scan(&["--orgs", "bad.csv"]).code(2).get_output().clone();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{err}");
        assert!(!f.path("out").exists());
    }
}

#[test]
fn organisations_list_their_top_member_keys() {
    let f = Fixture::new();
    f.scan(&["--rules", "rules.toml", "--orgs", "orgs.csv"])
        .success();
    let doc: serde_json::Value = serde_json::from_str(&f.out("report.json")).unwrap();
    let members = |org: &str| {
        doc["clients"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["client"] == org)
            .unwrap_or_else(|| panic!("{org} not in clients"))["members"]
            .clone()
    };
    let m = |key: &str, posts: u64| serde_json::json!({"key": key, "posts": posts});
    // Own keys before the mapping, most posts first; the POST weighs 0.
    assert_eq!(
        members("Acme, Inc."),
        serde_json::json!([m("198.51.100.7", 350), m("198.51.100.8", 201)])
    );
    // IPv6 own keys are canonical; `count=x&count=50` takes the default 20.
    assert_eq!(
        members("V6 Corp"),
        serde_json::json!([m("2001:db8::1", 101), m("2001:db8::2", 20)])
    );
    assert_eq!(
        members("Partner"),
        serde_json::json!([m("203.0.113.5", 150)])
    );
    // `::ffff:198.18.0.9` is keyed as the IPv4 address it maps.
    assert_eq!(
        members("Search Bot"),
        serde_json::json!([m("198.18.0.9", 1)])
    );
    let html = f.out("report.html");
    assert!(html.contains("<td class=\"key\">198.51.100.7</td><td class=\"n\"><data value=\"350\""));

    // Without --orgs there are no members.
    f.scan(&["--rules", "rules.toml"]).success();
    let doc: serde_json::Value = serde_json::from_str(&f.out("report.json")).unwrap();
    assert!(doc["clients"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c.get("members").is_none()));
    assert!(!f.out("report.html").contains("Top member keys"));
}

#[test]
fn member_keys_are_escaped_in_html_and_capped_at_ten() {
    let f = Fixture::new();
    let mut log = String::new();
    for i in 0..12 {
        for _ in 0..(i + 1) * 10 {
            log.push_str(&format!(
                "192.0.2.{i} - - [10/Oct/2026:10:00:00 +0000] \"GET /a/status/1 HTTP/1.1\" 200 1 \"-\" \"<b>bot</b> {i:02}\"\n"
            ));
        }
    }
    f.write("access.log", &log);
    let mut orgs = String::from("match,org\n");
    for i in 0..12 {
        orgs.push_str(&format!("<b>bot</b> {i:02},Bots & Co\n"));
    }
    f.write("orgs.csv", &orgs);
    f.scan(&[
        "--rules",
        "rules.toml",
        "--orgs",
        "orgs.csv",
        "--client",
        "ua",
    ])
    .success();
    let doc: serde_json::Value = serde_json::from_str(&f.out("report.json")).unwrap();
    let members = doc["clients"][0]["members"].as_array().unwrap().clone();
    assert_eq!(doc["clients"][0]["client"], "Bots & Co");
    // Ten of the twelve, most posts first.
    let want: Vec<serde_json::Value> = (2..12)
        .rev()
        .map(|i| serde_json::json!({"key": format!("<b>bot</b> {i:02}"), "posts": (i + 1) * 10}))
        .collect();
    assert_eq!(members, want);
    let html = f.out("report.html");
    assert!(html.contains(
        "<td class=\"key\">&lt;b&gt;bot&lt;/b&gt; 11</td><td class=\"n\"><data value=\"120\""
    ));
    assert!(!html.contains("<b>bot</b>"));
}
