//! Same inputs and settings give byte-identical reports (but for report.json's `run`),
//! whatever the thread count and the order of the input paths.

use super::*;

/// Several files of interleaved clients, unsorted, in every compression, with some
/// malformed lines, a duplicate and a folder.
fn corpus(f: &Fixture) -> Vec<String> {
    let mut files: Vec<(String, String)> = Vec::new();
    for file in 0..6u32 {
        let mut text = String::new();
        for i in 0..400u32 {
            // Deterministic scramble of clients and times across files.
            let n = (file * 7919 + i * 104_729) % 9973;
            let ip = match n % 7 {
                0 => "2001:db8::1".to_string(),
                1 => "::ffff:192.0.2.9".to_string(),
                k => format!("198.51.100.{k}"),
            };
            let secs = (n * 37) % (3 * 86_400);
            let t = format!(
                "{:02}/Oct/2026:{:02}:{:02}:{:02} +0000",
                10 + secs / 86_400,
                secs / 3600 % 24,
                secs / 60 % 60,
                secs % 60
            );
            let (target, status) = match n % 5 {
                0 => ("/a.css", 200),
                1 => ("/gone", 404),
                _ => ("/post", 200),
            };
            text.push_str(&line(&ip, &t, target, status));
            if i % 97 == 0 {
                text.push_str("garbage line\n");
            }
        }
        files.push((format!("f{file}"), text));
    }
    let mut paths = Vec::new();
    for (i, (name, text)) in files.iter().enumerate() {
        let p = match i % 3 {
            0 => f.file(&format!("{name}.log.gz"), gzip(text.as_bytes())),
            1 => f.file(&format!("dir/{name}.log.zst"), zstd(text.as_bytes())),
            _ => f.file(&format!("{name}.log"), text),
        };
        paths.push(p);
    }
    // The same bytes under another name, and a folder holding files given as well.
    paths.push(f.file("copy-of-f2.log", &files[2].1));
    paths.push(f.path("dir").display().to_string());
    paths
}

fn without_run(json: &str) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_str(json).unwrap();
    let run = v.as_object_mut().unwrap().remove("run");
    assert!(run.is_some(), "report.json has a run object");
    v
}

#[test]
fn threads_and_path_order_do_not_change_the_reports() {
    let f = Fixture::new();
    let paths = corpus(&f);
    let mut reversed = paths.clone();
    reversed.reverse();
    let runs: [(&str, &[String], &str); 3] = [
        ("one", &paths, "1"),
        ("two", &paths, "2"),
        ("reversed", &reversed, "2"),
    ];
    let mut outputs = Vec::new();
    for (name, paths, threads) in runs {
        let out = f.path(name);
        let mut args: Vec<&str> = paths.iter().map(String::as_str).collect();
        args.extend(["--threads", threads, "--threshold", "20"]);
        f.scan_into(&out, &args).success();
        let read = |n: &str| std::fs::read_to_string(out.join(n)).unwrap();
        outputs.push((
            read("violations.csv"),
            read("clients.csv"),
            read("report.json"),
        ));
    }
    let (v, c, j) = &outputs[0];
    // The runs are not trivially equal: there is something to compare.
    assert!(v.lines().count() > 3, "{v}");
    assert!(c.lines().count() > 3, "{c}");
    let report = without_run(j);
    assert_eq!(report["totals"]["malformed"], 6 * 5);
    assert_eq!(report["skipped"].as_array().unwrap().len(), 3);
    for (other, (v2, c2, j2)) in outputs.iter().enumerate().skip(1) {
        assert_eq!(v, v2, "violations.csv of run {other}");
        assert_eq!(c, c2, "clients.csv of run {other}");
        assert_eq!(report, without_run(j2), "report.json of run {other}");
    }
    // Byte-identical too, once the lines of the run object are cut out.
    let strip = |j: &str| {
        let from = j.find("\n  \"run\": {").expect("a run object");
        let to = from + 1 + j[from + 1..].find("\n  }").expect("its end") + 4;
        format!("{}{}", &j[..from], &j[to..])
    };
    assert_eq!(strip(j), strip(&outputs[1].2));
    assert_eq!(strip(j), strip(&outputs[2].2));
}
