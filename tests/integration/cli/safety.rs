//! Issue 16: log text that could attack a spreadsheet or a terminal, one writer per
//! output folder, bounded evidence, and inputs that cannot be read twice.

use super::*;

/// With the default `--client ip`, a client field that holds no IP address is log
/// content: formula-guarded in both CSVs, whatever the format.
#[test]
fn an_ip_key_that_is_not_an_ip_is_guarded() {
    let f = Fixture::new();
    let evil = ["=cmd|'/C calc'!A0", "+1+1", "@x", "-2+3"];
    let mut json = String::new();
    let mut combined = String::new();
    for e in evil {
        json.push_str(&format!(
            "{{\"remote_addr\":{},\"time_iso8601\":\"2026-10-10T13:55:36+00:00\",\"request\":\"GET /p HTTP/1.1\",\"status\":200}}\n",
            serde_json::to_string(e).unwrap()
        ));
        // The combined host field ends at a space.
        let host = e.replace(' ', "");
        combined.push_str(&line(&host, "10/Oct/2026:13:55:36 +0000", "/p", 200));
    }
    for (name, text, format) in [("a.json", json, "json"), ("b.log", combined, "combined")] {
        let log = f.file(name, text);
        f.scan(&[&log, "--threshold", "0", "--format", format])
            .success();
        let v = f.violations();
        let c = f.clients();
        assert_eq!(v.len(), evil.len(), "{format}: {v:?}");
        for rows in [&v, &c] {
            for r in rows.iter() {
                assert!(r[0].starts_with('\''), "{format}: unguarded {:?}", r[0]);
            }
        }
        let cells: Vec<&str> = c.iter().map(|r| r[0].as_str()).collect();
        for e in evil {
            let e = if format == "json" {
                e.to_string()
            } else {
                e.replace(' ', "")
            };
            assert!(cells.contains(&format!("'{e}").as_str()), "{cells:?}");
        }
        // report.json keeps the key as it is (JSON is not a spreadsheet).
        let r = f.report();
        assert!(r.to_string().contains("\"+1+1\""), "{r}");
    }
    // A real address is written as it is.
    let log = f.file("c.log", posts("198.51.100.7", 10, 0, 0, 2));
    f.scan(&[&log, "--threshold", "0"]).success();
    assert_eq!(f.clients()[0][0], "198.51.100.7");
}

/// File names and log text with escape sequences or bidi controls never reach the
/// terminal raw: they are written as `\u{…}`.
#[test]
fn terminal_output_has_no_control_characters() {
    let f = Fixture::new();
    let name = "evil\u{1b}]0;owned\u{7}\u{202e}gol.log";
    let mut text = posts("198.51.100.7", 10, 0, 0, 2);
    text.push_str("this line is \u{1b}[2J malformed\n");
    let log = f.file(name, text);
    let agent = "\u{1b}[31mred\u{202e}";
    let ua_log = f.file(
        "ua.log",
        format!(
            "198.51.100.8 - - [10/Oct/2026:13:55:36 +0000] \"GET /p HTTP/1.1\" 200 1 \"-\" \"{agent}\"\n"
        ),
    );
    let o = std::process::Command::new(BIN)
        .args([
            "scan",
            &log,
            &ua_log,
            "--threshold",
            "0",
            "--client",
            "ua",
            "--out",
        ])
        .arg(f.out())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    for (what, text) in [("stdout", &out), ("stderr", &err)] {
        assert!(
            !text
                .chars()
                .any(|c| (c.is_control() && c != '\n' && c != '\t')
                    || ('\u{202a}'..='\u{202e}').contains(&c)),
            "{what}: {text:?}"
        );
    }
    assert!(
        err.contains("evil\\u{1b}]0;owned\\u{7}\\u{202e}gol.log"),
        "{err}"
    );
    assert!(out.contains("red\\u{202e}"), "{out}");
    // An error message naming such a file too.
    let missing = f.path("gone\u{1b}[2J.log");
    let o = std::process::Command::new(BIN)
        .arg("scan")
        .arg(&missing)
        .arg("--out")
        .arg(f.out())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains('\u{1b}'), "{err:?}");
}
