//! `map` + `reduce` equal `scan`: small logs built in a temporary folder, split over
//! several shards (the same client and instant in several of them, a client in every
//! shard, posts exactly on window edges, a breach straddling midnight, non-UTF-8 and
//! formula-like keys), and the reports compared byte for byte.

use assert_cmd::Command;
use std::fs;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

fn line(ip: &str, time: &str, path: &str, status: u16, ua: &[u8]) -> Vec<u8> {
    let mut l =
        format!("{ip} - - [{time} +0000] \"GET {path} HTTP/1.1\" {status} 1 \"-\" \"").into_bytes();
    l.extend_from_slice(ua);
    l.extend_from_slice(b"\"\n");
    l
}

/// Six log files; each will be a shard, or part of one.
fn logs(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<Vec<u8>> = vec![Vec::new(); 6];
    // A client in every shard, over the threshold, a few posts per file.
    for (i, f) in files.iter_mut().enumerate() {
        for m in 0..3 {
            f.extend(line(
                "198.51.100.7",
                &format!("10/Oct/2026:1{i}:0{m}:00"),
                "/p/1",
                200,
                b"curl/8",
            ));
        }
    }
    // The same (client, instant) in several shards.
    for f in files.iter_mut().take(4) {
        f.extend(line(
            "203.0.113.9",
            "10/Oct/2026:12:00:00",
            "/p/2",
            200,
            b"same",
        ));
        f.extend(line(
            "203.0.113.9",
            "10/Oct/2026:12:00:00",
            "/style.css",
            200,
            b"same",
        ));
    }
    // Exactly on window edges: posts at s and at s + 24h (not in [s, s + 24h)).
    for (k, t) in [
        "11/Oct/2026:00:00:00",
        "11/Oct/2026:00:00:00",
        "11/Oct/2026:06:00:00",
        "11/Oct/2026:23:59:59",
        "12/Oct/2026:00:00:00",
        "12/Oct/2026:00:00:00",
        "12/Oct/2026:00:00:00",
        "12/Oct/2026:00:00:00",
        "13/Oct/2026:00:00:00",
    ]
    .iter()
    .enumerate()
    {
        files[k % 6].extend(line("192.0.2.44", t, "/p/3", 200, b"edge"));
    }
    // Straddling midnight: a breach in rolling mode, none in calendar mode.
    for (k, t) in [
        "14/Oct/2026:22:00:00",
        "14/Oct/2026:23:00:00",
        "14/Oct/2026:23:30:00",
        "15/Oct/2026:00:30:00",
        "15/Oct/2026:01:00:00",
    ]
    .iter()
    .enumerate()
    {
        files[(k + 2) % 6].extend(line("2001:db8::7", t, "/p/4", 200, b"night"));
    }
    // Keys for --client ua: not UTF-8, its \xhh spelling as text, a formula.
    for (k, ua) in [
        &b"bot\xff"[..],
        b"bot\\xff",
        b"=cmd",
        b"bot\xff",
        b"bot\\xff",
        b"=cmd",
    ]
    .iter()
    .enumerate()
    {
        for s in 0..5 {
            files[(k + s) % 6].extend(line(
                "198.18.0.1",
                &format!("16/Oct/2026:0{k}:0{s}:00"),
                "/p/5",
                200,
                ua,
            ));
        }
    }
    // A partner that is exempt in the organisations file.
    for (i, f) in files.iter_mut().enumerate() {
        for s in 0..2 {
            f.extend(line(
                "198.18.0.9",
                &format!("17/Oct/2026:0{i}:0{s}:00"),
                "/p/6",
                200,
                b"partner",
            ));
        }
    }
    // A malformed line, counted in the manifest.
    files[5].extend(b"garbage\n");
    files
        .into_iter()
        .enumerate()
        .map(|(i, bytes)| {
            let p = dir.join(format!("logs/web{i}.log"));
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, bytes).unwrap();
            p
        })
        .collect()
}

fn scrapemeter() -> Command {
    Command::cargo_bin("scrapemeter").unwrap()
}

fn run(args: &[&str]) -> std::process::Output {
    scrapemeter().args(args).output().unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn reports_equal(a: &Path, b: &Path) {
    for name in ["violations.csv", "clients.csv"] {
        let (x, y) = (
            fs::read_to_string(a.join(name)).unwrap(),
            fs::read_to_string(b.join(name)).unwrap(),
        );
        assert_eq!(x, y, "{name} differs");
    }
    let json = |p: &Path| {
        let mut v: serde_json::Value =
            serde_json::from_slice(&fs::read(p.join("report.json")).unwrap()).unwrap();
        v.as_object_mut().unwrap().remove("run");
        // The overview of all traffic (per hour, per status) is read from the logs,
        // which partials do not keep.
        v.as_object_mut().unwrap().remove("traffic");
        // Organisation members, like evidence, are found in the logs, which reduce
        // does not have.
        for c in v["clients"].as_array_mut().unwrap() {
            c.as_object_mut().unwrap().remove("members");
        }
        v
    };
    assert_eq!(json(a), json(b), "report.json differs");
}

/// `scan` over all logs, and `map` over `shards` (lists of log indexes) + `reduce`.
fn compare(dir: &Path, logs: &[PathBuf], shards: &[&[usize]], map: &[&str], reduce: &[&str]) {
    let tag = format!(
        "{}-{}",
        shards.len(),
        map.join("").replace(['/', '.', '-'], "")
    );
    let scan_out = dir.join(format!("scan-{tag}"));
    let mut args = vec!["scan", "--out", s(&scan_out), "--no-evidence", "-q"];
    args.extend(logs.iter().map(|p| s(p)));
    args.extend(map);
    args.extend(reduce);
    let o = run(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let parts = dir.join(format!("parts-{tag}"));
    for (i, shard) in shards.iter().enumerate() {
        let id = format!("s{i}");
        let mut args = vec![
            "map",
            "--out",
            s(&parts),
            "--shard",
            &id,
            "-q",
            "--buckets",
            "7",
        ];
        args.extend(shard.iter().map(|&k| s(&logs[k])));
        args.extend(map);
        let o = run(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let red = dir.join(format!("reduce-{tag}"));
    let mut args = vec!["reduce", s(&parts), "--out", s(&red), "-q"];
    args.extend(reduce);
    let o = run(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    reports_equal(&scan_out, &red);
    // One reduce per bucket, then --merge: the same two CSV files.
    let mut bucket_outs = Vec::new();
    for entry in fs::read_dir(&parts).unwrap() {
        let b = entry.unwrap().path();
        let out = dir.join(format!(
            "bucket-{tag}-{}",
            b.file_name().unwrap().to_str().unwrap()
        ));
        let mut args = vec!["reduce", s(&b), "--out", s(&out), "-q"];
        args.extend(reduce);
        let o = run(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        bucket_outs.push(out);
    }
    let merged = dir.join(format!("merged-{tag}"));
    let mut args = vec!["reduce", "--merge", "--out", s(&merged), "-q"];
    args.extend(bucket_outs.iter().map(|p| s(p)));
    let o = run(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for name in ["violations.csv", "clients.csv"] {
        assert_eq!(
            fs::read_to_string(scan_out.join(name)).unwrap(),
            fs::read_to_string(merged.join(name)).unwrap(),
            "merged {name} differs"
        );
    }
}

const SPLITS: &[&[&[usize]]] = &[
    &[&[0, 1, 2, 3, 4, 5]],
    &[&[0], &[1], &[2], &[3], &[4], &[5]],
    &[&[5, 0], &[3], &[1, 2, 4]],
];

#[test]
fn map_reduce_equals_scan_by_ip() {
    let dir = TempDir::new().unwrap();
    let logs = logs(dir.path());
    for split in SPLITS {
        compare(dir.path(), &logs, split, &[], &["--threshold", "3"]);
    }
    // The violations are not trivial: the edges (the post at 13/Oct 00:00 is outside the
    // second window), the midnight breach, the shared client.
    let v = fs::read_to_string(dir.path().join("scan-1-/violations.csv")).unwrap();
    assert!(v.contains("192.0.2.44,1,2026-10-11T00:00:00Z,2026-10-12T00:00:00Z,4,4,"));
    assert!(v.contains("192.0.2.44,2,2026-10-12T00:00:00Z,2026-10-13T00:00:00Z,4,4,"));
    assert!(v.contains("2001:db8::7,1,2026-10-14T22:00:00Z"));
    assert!(v.contains("198.51.100.7,1,"));
    assert!(v.contains("203.0.113.9,1,2026-10-10T12:00:00Z,2026-10-11T12:00:00Z,4,8,"));
}

#[test]
fn map_reduce_equals_scan_under_other_settings() {
    let dir = TempDir::new().unwrap();
    let logs = logs(dir.path());
    let split = SPLITS[2];
    compare(
        dir.path(),
        &logs,
        split,
        &[],
        &["--threshold", "3", "--mode", "calendar"],
    );
    compare(
        dir.path(),
        &logs,
        split,
        &["--client", "ua"],
        &["--threshold", "4"],
    );
    compare(
        dir.path(),
        &logs,
        split,
        &["--client", "subnet"],
        &["--threshold", "0"],
    );
    let orgs = dir.path().join("orgs.csv");
    fs::write(
        &orgs,
        "match,org,exempt\n198.18.0.9,Partner,true\n198.51.100.0/24,Acme,\n",
    )
    .unwrap();
    compare(
        dir.path(),
        &logs,
        split,
        &["--orgs", s(&orgs), "--since", "2026-10-10T11:00:00Z"],
        &[
            "--threshold",
            "2",
            "--rate",
            "1.5",
            "--per",
            "3",
            "--window",
            "12h",
        ],
    );
    let ua = fs::read_to_string(dir.path().join("scan-3-clientua/clients.csv")).unwrap();
    assert!(ua.contains("'=cmd,"), "{ua}");
    assert_eq!(ua.matches("bot\\xff,").count(), 2, "{ua}");
}

#[test]
fn reduce_refuses_mixed_settings_and_inputs_counted_twice() {
    let dir = TempDir::new().unwrap();
    let logs = logs(dir.path());
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    assert!(
        run(&["map", "--out", s(&a), "--shard", "x", "-q", s(&logs[0])])
            .status
            .success()
    );
    assert!(run(&[
        "map",
        "--out",
        s(&b),
        "--shard",
        "y",
        "-q",
        "--client",
        "subnet",
        s(&logs[1])
    ])
    .status
    .success());
    let o = run(&["reduce", s(&a), s(&b), "--out", s(&dir.path().join("r"))]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("different settings")
            && err.contains("part-x.parquet")
            && err.contains("part-y.parquet"),
        "{err}"
    );
    // The same log under another name, in another shard.
    fs::copy(&logs[0], dir.path().join("copy.log")).unwrap();
    assert!(run(&[
        "map",
        "--out",
        s(&c),
        "--shard",
        "z",
        "-q",
        s(&dir.path().join("copy.log"))
    ])
    .status
    .success());
    let o = run(&["reduce", s(&a), s(&c), "--out", s(&dir.path().join("r"))]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("same input") && err.contains("copy.log"),
        "{err}"
    );
    assert!(!dir.path().join("r").exists());
    // A partial named twice is read once; a copy of it is refused.
    let r = dir.path().join("r");
    let file = fs::read_dir(
        a.join(
            fs::read_dir(&a)
                .unwrap()
                .next()
                .unwrap()
                .unwrap()
                .file_name(),
        ),
    )
    .unwrap()
    .next()
    .unwrap()
    .unwrap()
    .path();
    let o = run(&[
        "reduce",
        s(&a),
        s(&file),
        &format!("{}/.", s(&a)),
        "--out",
        s(&r),
        "-q",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let once = fs::read_to_string(r.join("clients.csv")).unwrap();
    let o = run(&["reduce", s(&a), "--out", s(&r), "-q"]);
    assert!(o.status.success());
    assert_eq!(once, fs::read_to_string(r.join("clients.csv")).unwrap());
    let copy = dir.path().join("copy");
    fs::create_dir_all(&copy).unwrap();
    fs::copy(&file, copy.join("part-x.parquet")).unwrap();
    let o = run(&[
        "reduce",
        s(&a),
        s(&copy),
        "--out",
        s(&dir.path().join("r2")),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("counted twice"), "{err}");
    // Policy flags belong to reduce.
    let o = run(&["map", "--out", s(&a), "--threshold", "5", s(&logs[0])]);
    assert_eq!(o.status.code(), Some(2));
}

/// A reduce's report.json says how `map` judged the inputs (`--max-malformed`,
/// `--strict-lines`, `--exclude`…), not reduce's defaults; where the map runs judged
/// differently, it says null rather than pick one.
#[test]
fn reduce_reports_how_map_judged_the_inputs() {
    let dir = TempDir::new().unwrap();
    let logs = logs(dir.path());
    let parts = dir.path().join("parts");
    let map = |shard: &str, log: &Path, max: &str| {
        let o = run(&[
            "map",
            s(log),
            "--out",
            s(&parts),
            "--shard",
            shard,
            "-q",
            "--max-malformed",
            max,
            "--exclude",
            "*.bak",
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    let settings = |out: &Path| {
        let o = run(&["reduce", s(&parts), "--out", s(out), "-q"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value =
            serde_json::from_slice(&fs::read(out.join("report.json")).unwrap()).unwrap();
        v["settings"].clone()
    };
    map("a", &logs[0], "0.05");
    map("b", &logs[1], "0.05");
    let agreed = settings(&dir.path().join("agreed"));
    assert_eq!(agreed["max_malformed"], 0.05);
    assert_eq!(agreed["strict"], false);
    assert_eq!(agreed["strict_lines"], false);
    assert_eq!(agreed["allow_missing"], false);
    assert_eq!(agreed["exclude"], serde_json::json!(["*.bak"]));
    map("c", &logs[2], "0.2");
    let mixed = settings(&dir.path().join("mixed"));
    for key in [
        "strict",
        "strict_lines",
        "max_malformed",
        "allow_missing",
        "exclude",
    ] {
        assert!(mixed[key].is_null(), "{key}: {}", mixed[key]);
    }
    // The rest of the settings are the partials' as ever.
    assert_eq!(mixed["client"], agreed["client"]);
    // report.html says so, rather than "none".
    let html = fs::read_to_string(dir.path().join("mixed/report.html")).unwrap();
    let row = html
        .lines()
        .find(|l| l.contains("<code>max_malformed</code>"))
        .unwrap();
    assert!(row.contains("not recorded"), "{row}");
}
