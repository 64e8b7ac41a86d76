//! Issue 14: the faster reader (one walk per line, lines framed in the inflate blocks,
//! several parse workers on one file) writes the same reports, byte for byte, as the
//! reader before it.
//!
//! The CSV digests were recorded from the baseline binary of commit 66eeee4 (the last
//! commit before that work). The report.json digests come from the commit after
//! c59360e that added `strict_lines`, `max_malformed`, `allow_missing`, `exclude` and
//! `evidence` to its `settings` (so that a reader can tell how the inputs were judged):
//! against c59360e's report.json on every scan below, those five keys are the only
//! difference (and the CSVs are the same). Before that they came from commit 4a11fbb
//! (report.json had gained `rate_profile` and `summary.exempt_clients`). Recorded with
//!
//! ```sh
//! BYTE_IDENTICAL_RECORD=1 BYTE_IDENTICAL_BIN=path/to/that/build/scrapemeter \
//!     cargo test --release -- byte_identical --nocapture --test-threads 1
//! ```
//!
//! which runs these same scans with that binary and prints the digests it got. Each
//! digest is of `violations.csv`, `clients.csv`, or `report.json` without its `run`
//! object (start time, elapsed seconds, command line, threads), re-serialised compactly.
//! Inputs are named by relative paths, so the report does not depend on where the
//! temporary folder is. The generated sets come from `scrapemeter-fixtures` (a fixed
//! seed writes the same bytes); a change there changes these digests too.

use super::{gzip, zstd, BIN};
use assert_cmd::Command;
use scrapemeter_fixtures::{bench, BenchSpec, Compression};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;

/// Digests of (violations.csv, clients.csv, report.json without `run`).
type Digests = [String; 3];

fn bin() -> String {
    std::env::var("BYTE_IDENTICAL_BIN").unwrap_or_else(|_| BIN.to_string())
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Runs `scan ARGS --out OUT -q` in `cwd` and digests its three reports; also returns
/// report.json.
fn scan_digests(cwd: &Path, args: &[&str]) -> (Digests, serde_json::Value) {
    let out = tempfile::tempdir().unwrap();
    Command::new(bin())
        .current_dir(cwd)
        .arg("scan")
        .args(args)
        .arg("--out")
        .arg(out.path())
        .arg("-q")
        .assert()
        // Reports are written whatever the inputs held: 1 is for a bad input.
        .code(vec![0, 1]);
    let read = |n: &str| std::fs::read(out.path().join(n)).unwrap();
    let mut report: serde_json::Value = serde_json::from_slice(&read("report.json")).unwrap();
    assert!(report.as_object_mut().unwrap().remove("run").is_some());
    let digests = [
        sha(&read("violations.csv")),
        sha(&read("clients.csv")),
        sha(serde_json::to_string(&report).unwrap().as_bytes()),
    ];
    (digests, report)
}

/// Scans with each of `threads`; all must give the expected digests. Returns the
/// report of the last.
fn check(
    name: &str,
    threads: &[&str],
    scan: impl Fn(&str) -> (Digests, serde_json::Value),
    expected: [&str; 3],
) -> serde_json::Value {
    let (got, mut reports): (Vec<Digests>, Vec<serde_json::Value>) =
        threads.iter().map(|t| scan(t)).unzip();
    println!("{name}: {:?}", got[0]);
    // Recording new digests (see the top of this file): print them all, check none.
    let recording = std::env::var_os("BYTE_IDENTICAL_RECORD").is_some();
    for (threads, got) in threads.iter().zip(&got).filter(|_| !recording) {
        assert_eq!(
            got,
            &expected.map(String::from),
            "{name} --threads {threads}: reports changed"
        );
    }
    reports.pop().unwrap()
}

/// The bundled sample: eight files (gzip, zstd, plain), two scrapers, two broken lines.
#[test]
fn byte_identical_on_the_sample_logs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    check(
        "sample-logs",
        &["1", "2"],
        |threads| scan_digests(root, &["sample-logs", "--threads", threads]),
        [
            "1200c8758b163902d13bdfb046d1274785a6912b74b15b364e7e02ab3dcb850c",
            "deb0b959e3033f9bd16e295c09a2828325a59684850a020663e64bd3cf458d20",
            "2bd0baea48014fae0a3e121950bcb789f8a6117728fb4ba7d709ef61c6bf4be2",
        ],
    );
}

/// A file's text with damage spread through it, at line numbers past its first
/// blocks (so that their numbers count every line before them): garbage, a bad time,
/// a line over 1 MiB, a CRLF line, blank and comment lines; and no final newline.
fn damaged(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 2 * 1024 * 1024);
    for (i, line) in text.split_inclusive(|&c| c == b'\n').enumerate() {
        match i {
            9_000 => out.extend_from_slice(b"garbage line\n"),
            11_111 => out.extend_from_slice(
                b"192.0.2.1 - - [31/Feb/2026:00:00:00 +0000] \"GET / HTTP/1.1\" 200 1\n",
            ),
            12_345 => {
                out.extend(std::iter::repeat_n(b'x', 1024 * 1024 + 7));
                out.push(b'\n');
            }
            13_000 => out.extend_from_slice(b"\n   \n# a comment\n"),
            14_000..=14_002 => out.extend_from_slice(
                b"2001:db8::1 - - [02/Mar/2026:12:00:00 +0000] \"GET /x HTTP/1.1\" 200\n",
            ),
            _ => {}
        }
        if i % 4_999 == 17 {
            // The same request ending in CRLF.
            out.extend_from_slice(&line[..line.len() - 1]);
            out.extend_from_slice(b"\r\n");
        } else {
            out.extend_from_slice(line);
        }
    }
    out.pop();
    out
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut text = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_end(&mut text)
        .unwrap();
    text
}

/// A bench set (3 gzip files of 30,000 lines, 12% IPv6 clients), the same files
/// damaged in plain, gzip (cut short) and zstd, and their lines as `vhost_combined` and inside the
/// CRI wrapper; one run reads all of them, once with one thread and once with two.
#[test]
fn byte_identical_on_a_generated_set() {
    let dir = tempfile::tempdir().unwrap();
    let spec = BenchSpec {
        files: 3,
        lines: 30_000,
        compression: Compression::Gzip,
    };
    let written = bench(&dir.path().join("gen"), 3, &spec).unwrap();
    assert_eq!(written.len(), 3);
    let text = gunzip(&std::fs::read(&written[0].path).unwrap());
    let bad = damaged(&text);
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("damaged.log"), &bad).unwrap();
    // Cut: the file is incomplete and its unterminated last line dropped.
    let gz = gzip(&bad);
    std::fs::write(other.join("damaged.log.gz"), &gz[..gz.len() * 3 / 5]).unwrap();
    std::fs::write(other.join("damaged.log.zst"), zstd(&bad[bad.len() / 3..])).unwrap();
    let text1 = gunzip(&std::fs::read(&written[1].path).unwrap());
    let lines = || text1.split_inclusive(|&c| c == b'\n').take(20_000);
    let vhost: Vec<u8> = lines()
        .flat_map(|l| [b"www.example.com:443 ".as_slice(), l].concat())
        .collect();
    let cri: Vec<u8> = lines()
        .flat_map(|l| [b"2026-03-02T00:00:00.000000001Z stdout F ".as_slice(), l].concat())
        .collect();
    std::fs::write(other.join("vhost.log.gz"), gzip(&vhost)).unwrap();
    std::fs::write(other.join("cri.log"), &cri).unwrap();
    let args = ["gen", "other", "--threshold", "200", "--threads"];
    let report = check(
        "generated",
        &["1", "2"],
        |threads| scan_digests(dir.path(), &[&args[..], &[threads]].concat()),
        [
            "5a9a02814393ad590662ac9ac326585848add61bc41f167ad140463b4cfdd8ec",
            "d412dd8fe676515a703edaca78b89848b3c6ec39bd87566f6427536fda6d0840",
            "65aaf2e6ad0c8c459f60346a692371a35aec092ae117f41816d864fe91f18a40",
        ],
    );
    // One file alone: with more than one thread its lines are shared by several parse
    // workers (malformed examples past the first blocks, a cut stream).
    for (file, expected) in [
        (
            "other/damaged.log",
            [
                "34cfcc18a9873bf74ad9815341ace5fb50ed44483655040d63e146d1c99c730d",
                "75dd9df011c493218e84f705465c0ed694818e1b4dd9838294bd7f90dfe71c8f",
                "6eeeb6c6c40ac99a56d2f4031d4ee357b323e7ec9e9fa900019a01e39dc1ed38",
            ],
        ),
        (
            "other/damaged.log.gz",
            [
                "c555a64243ff66bc946a500ec477276f853f36af02218f65e0d03acd6d822c6a",
                "1f0233436a1833e311ed91329293e87800d77548127520b94738d6cd3fa935d5",
                "7a780bcb0be0f88e590e5171931a2b91112304150d82ccac2e283286d40bbbc9",
            ],
        ),
    ] {
        check(
            file,
            &["1", "2", "3"],
            |threads| {
                scan_digests(
                    dir.path(),
                    &[file, "--threshold", "20", "--threads", threads],
                )
            },
            expected,
        );
    }
    // The set holds what it is meant to (so the digests cover those paths).
    let input = |path: &str| {
        let inputs = report["inputs"].as_array().unwrap();
        inputs.iter().find(|i| i["path"] == path).unwrap().clone()
    };
    assert_eq!(input("other/vhost.log.gz")["format"], "vcombined");
    assert_eq!(input("other/cri.log")["format"], "cri+combined");
    let plain = input("other/damaged.log");
    let lines: Vec<u64> = plain["malformed_examples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [9_001, 11_113, 12_348, 14_007, 14_009]);
    assert_eq!(
        (plain["malformed"].as_u64(), plain["blank"].as_u64()),
        (Some(6), Some(2))
    );
    assert_eq!(input("other/damaged.log.gz")["complete"], false);
    assert_eq!(input("other/damaged.log.gz")["dropped_partial_line"], true);
}

/// Issue 14's one read of zstd and plain inputs: bench sets as zstd and as plain text
/// (no comment lines, so every file is recorded for the second read, and read again in
/// part), and one file of each alone (shared by several parse workers, each recording
/// its blocks). Digests recorded from the baseline build of c1a34ff, which read these
/// files whole again.
#[test]
fn byte_identical_on_zstd_and_plain_sets() {
    let dir = tempfile::tempdir().unwrap();
    for (sub, seed, compression) in [
        ("zst", 5, Compression::Zstd),
        ("plain", 6, Compression::Plain),
    ] {
        let spec = BenchSpec {
            files: 2,
            lines: 30_000,
            compression,
        };
        bench(&dir.path().join(sub), seed, &spec).unwrap();
    }
    let report = check(
        "zstd and plain",
        &["1", "2"],
        |threads| {
            scan_digests(
                dir.path(),
                &["zst", "plain", "--threshold", "200", "--threads", threads],
            )
        },
        [
            "046e7c7271349cc669d4901fd0de064f7c79e81eb9b2becd2d2d87d184049481",
            "48a79055d95f1a527eb4f88ff83c0af59d2cba9ca02a198d7fb43993b9b20927",
            "4e2743d213fda72b229b2c36fda2e9f547d2984643b66b3f3177cb3b7a1bf3d8",
        ],
    );
    assert!(report["summary"]["flagged_clients"].as_u64().unwrap() >= 10);
    for (file, expected) in [
        (
            "zst/bench-000.log.zst",
            [
                "8ba4383bc85e1b61b69c696fb955ad81a8d88a414382e979304bcc55036a5920",
                "5c7d1e12f7245e10754d3b8b74747cf3bdd257b4c123a7e5d21dae789ca7bafa",
                "d8d8316dd8f8fc7c9d5807c4626fefc1cb4a2d8e1491f94b1734732a4a31d680",
            ],
        ),
        (
            "plain/bench-001.log",
            [
                "5716c8b0de2cf569668a52e50e5391db54d22000449854233d474bd1c77b7017",
                "0904054416aa21b1c27d41e8417c393f6a85e875a81ade63944b8234a69a28e6",
                "29997e069d1b654917df8d7e6bc466018e1b1774f6750e1a2c7c8e1b2ecf0d52",
            ],
        ),
    ] {
        let report = check(
            file,
            &["2", "3"],
            |threads| {
                scan_digests(
                    dir.path(),
                    &[file, "--threshold", "60", "--threads", threads],
                )
            },
            expected,
        );
        assert!(report["summary"]["flagged_clients"].as_u64().unwrap() >= 5);
    }
}
