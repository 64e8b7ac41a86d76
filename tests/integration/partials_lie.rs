//! Partials that cannot lie (issue 16): `reduce` refuses counts that would wrap,
//! times that RFC 3339 cannot print, a `-` or empty client, rows that do not match
//! the digest `map` recorded, and `reduce --merge` refuses parts that overlap.
//!
//! Forged partials are written here with the parquet crate: the rows of a real
//! partial are replaced, its metadata kept, and (where the test is not about the
//! digest) the rows digest recomputed, as an attacker with the format's spec could.

use arrow_array::builder::{BinaryBuilder, Int64Builder, StringDictionaryBuilder};
use arrow_array::types::Int32Type;
use arrow_array::{ArrayRef, RecordBatch};
use assert_cmd::Command;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use scrapemeter::store::partials::{RowsDigest, META_ROWS, META_ROWS_SHA256};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tempfile::TempDir;

fn run(args: &[&str]) -> std::process::Output {
    Command::cargo_bin("scrapemeter")
        .unwrap()
        .args(args)
        .output()
        .unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn err(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `map` of a one-line log into `dir/parts`: the partial file.
fn one_partial(dir: &Path) -> PathBuf {
    let log = dir.join("a.log");
    fs::write(
        &log,
        "198.51.100.7 - - [10/Oct/2026:13:55:36 +0000] \"GET /p HTTP/1.1\" 200 1\n",
    )
    .unwrap();
    let parts = dir.join("parts");
    let o = run(&["map", s(&log), "--out", s(&parts), "--shard", "a", "-q"]);
    assert!(o.status.success(), "{}", err(&o));
    walk(&parts).pop().unwrap()
}

fn walk(d: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(d).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if p.extension().is_some_and(|x| x == "parquet") {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// Rewrites `file` with `rows` (client, t, posts, requests), its metadata kept; the
/// rows digest is recomputed when `digest` is true.
fn forge(file: &Path, rows: &[(&str, i64, i64, i64)], digest: bool) {
    let builder = ParquetRecordBatchReaderBuilder::try_new(fs::File::open(file).unwrap()).unwrap();
    let schema = builder.schema().clone();
    let mut kv: Vec<KeyValue> = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .cloned()
        .unwrap_or_default();
    drop(builder);
    if digest {
        let mut d = RowsDigest::default();
        for &(c, t, p, r) in rows {
            d.row(c, None, t, p, r);
        }
        let (n, sha) = d.finish();
        kv.retain(|e| e.key != META_ROWS && e.key != META_ROWS_SHA256);
        kv.push(KeyValue::new(META_ROWS.into(), n.to_string()));
        kv.push(KeyValue::new(META_ROWS_SHA256.into(), sha));
    }
    let mut client = StringDictionaryBuilder::<Int32Type>::new();
    let mut raw = BinaryBuilder::new();
    let (mut t, mut posts, mut requests) = (
        Int64Builder::new(),
        Int64Builder::new(),
        Int64Builder::new(),
    );
    for &(c, tt, p, r) in rows {
        client.append_value(c);
        raw.append_null();
        t.append_value(tt);
        posts.append_value(p);
        requests.append_value(r);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(client.finish()),
        Arc::new(raw.finish()),
        Arc::new(t.finish()),
        Arc::new(posts.finish()),
        Arc::new(requests.finish()),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
    let props = WriterProperties::builder()
        .set_key_value_metadata(Some(kv))
        .build();
    let mut w = ArrowWriter::try_new(fs::File::create(file).unwrap(), schema, Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

const T: i64 = 1_791_640_536_000_000; // 2026-10-10T13:55:36Z

fn reduce(parts: &Path, out: &Path) -> std::process::Output {
    run(&[
        "reduce",
        s(parts),
        "--out",
        s(out),
        "--threshold",
        "0",
        "-q",
    ])
}

#[test]
fn counts_that_would_wrap_are_refused_by_client() {
    let dir = TempDir::new().unwrap();
    let file = one_partial(dir.path());
    let max = i64::MAX;
    forge(
        &file,
        &[
            ("a.bot", T, max, 1),
            ("a.bot", T + 1, max, 1),
            ("a.bot", T + 2, max, 1),
        ],
        true,
    );
    let out = dir.path().join("r");
    let o = reduce(&dir.path().join("parts"), &out);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(
        err(&o).contains("client a.bot") && err(&o).contains("64-bit"),
        "{}",
        err(&o)
    );
    assert!(!out.join("violations.csv").exists());
    // One such row is a count the reports can hold.
    forge(&file, &[("a.bot", T, max, 1)], true);
    let o = reduce(&dir.path().join("parts"), &out);
    assert!(o.status.success(), "{}", err(&o));
    let v = fs::read_to_string(out.join("violations.csv")).unwrap();
    assert!(v.contains(&format!(",{max},1,")), "{v}");
    // Two such clients: each fits, and the totals over all clients are still summed
    // exactly (2 × i64::MAX fits u64); three overflow the totals.
    forge(
        &file,
        &[("a", T, max, 1), ("b", T, max, 1), ("c", T, max, 1)],
        true,
    );
    let o = reduce(&dir.path().join("parts"), &out);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(err(&o).contains("overflow"), "{}", err(&o));
}

#[test]
fn times_rfc3339_cannot_print_are_refused() {
    let dir = TempDir::new().unwrap();
    let file = one_partial(dir.path());
    let out = dir.path().join("r");
    for t in [i64::MAX - 5, i64::MIN + 5, 253_402_300_800_000_000] {
        forge(&file, &[("a.bot", t, 5, 5)], true);
        let o = reduce(&dir.path().join("parts"), &out);
        assert_eq!(o.status.code(), Some(2), "t = {t}: {}", err(&o));
        assert!(err(&o).contains("0000-9999"), "{}", err(&o));
    }
    // Printable, but its 24h window would end in the year 10000.
    forge(&file, &[("a.bot", 253_402_300_799_000_000, 5, 5)], true);
    let o = reduce(&dir.path().join("parts"), &out);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(err(&o).contains("9999-12-31"), "{}", err(&o));
    assert!(!out.join("violations.csv").exists());
}

#[test]
fn a_window_longer_than_rfc3339_years_is_a_usage_error() {
    let dir = TempDir::new().unwrap();
    let log = dir.path().join("a.log");
    fs::write(
        &log,
        "198.51.100.7 - - [10/Oct/2026:13:55:36 +0000] \"GET /p HTTP/1.1\" 200 1\n",
    )
    .unwrap();
    let out = dir.path().join("o");
    let o = run(&["scan", s(&log), "--out", s(&out), "--window", "106000000d"]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(err(&o).contains("too large"), "{}", err(&o));
    // A log line dated past 9999 (a JSON epoch in the far future) is malformed, never
    // billed in a window that prints as 1970.
    let json = dir.path().join("b.json");
    fs::write(
        &json,
        "{\"remote_addr\":\"198.51.100.7\",\"msec\":\"400000000000000.000\",\"request\":\"GET /p HTTP/1.1\",\"status\":200}\n\
         {\"remote_addr\":\"198.51.100.7\",\"msec\":\"1791640536.000\",\"request\":\"GET /p HTTP/1.1\",\"status\":200}\n",
    )
    .unwrap();
    let o = run(&["scan", s(&json), "--out", s(&out), "--threshold", "0", "-q"]);
    assert!(o.status.success(), "{}", err(&o));
    let report: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["inputs"][0]["malformed"], 1, "{report}");
    let v = fs::read_to_string(out.join("violations.csv")).unwrap();
    assert!(
        v.contains("2026-10-10T13:55:36Z,2026-10-11T13:55:36Z,1,1"),
        "{v}"
    );
}

#[test]
fn a_dash_or_empty_client_is_refused() {
    let dir = TempDir::new().unwrap();
    let file = one_partial(dir.path());
    for c in ["-", ""] {
        forge(&file, &[(c, T, 5, 5)], true);
        let o = reduce(&dir.path().join("parts"), &dir.path().join("r"));
        assert_eq!(o.status.code(), Some(2), "{c:?}: {}", err(&o));
        assert!(err(&o).contains("belongs to no client"), "{}", err(&o));
    }
}

#[test]
fn rows_that_do_not_match_the_recorded_digest_are_refused() {
    let dir = TempDir::new().unwrap();
    let file = one_partial(dir.path());
    // A value changed (as a flipped bit in a data page that still decodes would).
    forge(&file, &[("198.51.100.7", T, 1_000_000_000, 1)], false);
    let o = reduce(&dir.path().join("parts"), &dir.path().join("r"));
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(
        err(&o).contains("do not match what map recorded"),
        "{}",
        err(&o)
    );
    // A row added.
    forge(&file, &[("198.51.100.7", T, 1, 1), ("x", T, 1, 1)], false);
    let o = reduce(&dir.path().join("parts"), &dir.path().join("r"));
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(err(&o).contains("1 rows"), "{}", err(&o));
    // The original rows pass.
    forge(&file, &[("198.51.100.7", T, 1, 1)], false);
    let o = reduce(&dir.path().join("parts"), &dir.path().join("r"));
    assert!(o.status.success(), "{}", err(&o));
}

#[test]
fn single_bit_flips_never_change_billing_silently() {
    let dir = TempDir::new().unwrap();
    let log = dir.path().join("a.log");
    let mut text = String::new();
    for i in 0..200 {
        text.push_str(&format!(
            "198.51.100.{} - - [10/Oct/2026:1{}:{:02}:00 +0000] \"GET /p HTTP/1.1\" 200 1\n",
            i % 7,
            i % 10,
            i % 60
        ));
    }
    fs::write(&log, text).unwrap();
    let parts = dir.path().join("parts");
    assert!(run(&[
        "map",
        s(&log),
        "--out",
        s(&parts),
        "--shard",
        "a",
        "--buckets",
        "1",
        "-q"
    ])
    .status
    .success());
    let file = walk(&parts).pop().unwrap();
    let good = dir.path().join("good");
    assert!(reduce(&parts, &good).status.success());
    let want = fs::read(good.join("violations.csv")).unwrap();
    let original = fs::read(&file).unwrap();
    // The data pages sit at the start of the file (before the footer).
    let footer = u32::from_le_bytes(
        original[original.len() - 8..original.len() - 4]
            .try_into()
            .unwrap(),
    ) as usize;
    let data_end = original.len() - 8 - footer;
    let (mut refused, mut same) = (0, 0);
    let flips = 40;
    for k in 0..flips {
        let mut bytes = original.clone();
        // Spread over the data pages (past the leading magic `PAR1`).
        let bit = 4 * 8 + k * (data_end - 4) * 8 / flips + k % 8;
        bytes[bit / 8] ^= 1 << (bit % 8);
        fs::write(&file, &bytes).unwrap();
        let out = dir.path().join(format!("r{k}"));
        let o = reduce(&parts, &out);
        if o.status.success() {
            assert_eq!(
                fs::read(out.join("violations.csv")).unwrap(),
                want,
                "flip {bit} changed billing silently"
            );
            same += 1;
        } else {
            refused += 1;
        }
    }
    eprintln!("{flips} single-bit flips: {refused} refused, {same} same billing, 0 silent changes");
    assert_eq!(refused + same, flips);
    assert!(refused > flips / 2, "{refused} of {flips} flips refused");
}

#[test]
fn merge_refuses_parts_that_overlap() {
    let dir = TempDir::new().unwrap();
    let log = dir.path().join("a.log");
    let mut text = String::new();
    for ip in [
        "198.51.100.1",
        "198.51.100.2",
        "198.51.100.3",
        "203.0.113.4",
    ] {
        text.push_str(&format!(
            "{ip} - - [10/Oct/2026:13:55:36 +0000] \"GET /p HTTP/1.1\" 200 1\n"
        ));
    }
    fs::write(&log, text).unwrap();
    let parts = dir.path().join("parts");
    assert!(run(&[
        "map",
        s(&log),
        "--out",
        s(&parts),
        "--shard",
        "a",
        "--buckets",
        "2",
        "-q"
    ])
    .status
    .success());
    let buckets: Vec<PathBuf> = walk(&parts);
    assert_eq!(buckets.len(), 2, "{buckets:?}");
    let (a, b, all) = (
        dir.path().join("A"),
        dir.path().join("B"),
        dir.path().join("ALL"),
    );
    assert!(reduce(&buckets[0], &a).status.success());
    assert!(reduce(&buckets[1], &b).status.success());
    assert!(reduce(&parts, &all).status.success());
    // Disjoint parts merge into what one reduce writes.
    let m = dir.path().join("M");
    let o = run(&["reduce", "--merge", s(&a), s(&b), "--out", s(&m), "-q"]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(
        fs::read(m.join("violations.csv")).unwrap(),
        fs::read(all.join("violations.csv")).unwrap()
    );
    // The same part twice, by two spellings: refused (it doubled the money).
    let a2 = format!("{}/.", s(&a));
    for args in [[s(&a), s(&a)], [s(&a), a2.as_str()]] {
        let o = run(&[
            "reduce",
            "--merge",
            args[0],
            args[1],
            "--out",
            s(&dir.path().join("X")),
        ]);
        assert_eq!(o.status.code(), Some(2), "{}", err(&o));
        assert!(err(&o).contains("same part"), "{}", err(&o));
    }
    // Overlapping buckets: ALL holds both.
    let o = run(&[
        "reduce",
        "--merge",
        s(&a),
        s(&all),
        "--out",
        s(&dir.path().join("X")),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(err(&o).contains("both reduced bucket"), "{}", err(&o));
    // A merged output is a part too: merging it with one of its parts is refused.
    let o = run(&[
        "reduce",
        "--merge",
        s(&m),
        s(&b),
        "--out",
        s(&dir.path().join("X")),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(!dir.path().join("X").exists());
}
