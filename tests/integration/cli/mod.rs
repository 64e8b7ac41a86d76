//! End-to-end tests of the `scrapemeter` binary, one module per theme, and the helpers
//! they share.
//!
//! Fixtures are written into temporary folders at test time (gzip and zstd made with
//! flate2 and zstd); nothing large is committed. Real logs from `../shared/real-logs`
//! are used when that folder exists.

mod breakdown;
mod byte_identical;
mod conventions;
mod determinism;
mod disk_faults;
mod edges;
mod inputs;
mod leads;
mod memory;
mod nightly;
mod nightly_readme;
mod real_logs;
mod reproduce;
mod safety;
mod sample_logs;
mod second_read;

use assert_cmd::Command;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const BIN: &str = env!("CARGO_BIN_EXE_scrapemeter");

/// A combined-format line. `time` as logged: `10/Oct/2000:13:55:36 +0000`.
pub fn line(ip: &str, time: &str, target: &str, status: u16) -> String {
    format!("{ip} - - [{time}] \"GET {target} HTTP/1.1\" {status} 123 \"-\" \"test-agent/1.0\"\n")
}

/// `n` post lines of one client, one a second from `hh:mm:ss` on 10/Oct/2026 UTC.
pub fn posts(ip: &str, hh: u32, mm: u32, ss: u32, n: u32) -> String {
    (0..n)
        .map(|i| {
            let s = hh * 3600 + mm * 60 + ss + i;
            let t = format!(
                "10/Oct/2026:{:02}:{:02}:{:02} +0000",
                s / 3600,
                s / 60 % 60,
                s % 60
            );
            line(ip, &t, &format!("/post/{i}"), 200)
        })
        .collect()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).unwrap()
}

/// A temporary folder with log files in it and an output folder beside them.
pub struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Default for Fixture {
    fn default() -> Self {
        Self::new()
    }
}

impl Fixture {
    pub fn new() -> Fixture {
        Fixture {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `bytes` to `name` (creating folders) and returns its path as a string.
    pub fn file(&self, name: &str, bytes: impl AsRef<[u8]>) -> String {
        let p = self.path(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, bytes).unwrap();
        p.display().to_string()
    }

    pub fn out(&self) -> PathBuf {
        self.path("out")
    }

    /// `scrapemeter scan ARGS --out DIR -q`.
    pub fn scan(&self, args: &[&str]) -> assert_cmd::assert::Assert {
        self.scan_into(&self.out(), args)
    }

    pub fn scan_into(&self, out: &Path, args: &[&str]) -> assert_cmd::assert::Assert {
        Command::new(BIN)
            .arg("scan")
            .args(args)
            .arg("--out")
            .arg(out)
            .arg("-q")
            .assert()
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.out().join(name)).unwrap()
    }

    /// Rows of `violations.csv` (header checked, then dropped).
    pub fn violations(&self) -> Vec<Vec<String>> {
        csv_rows(&self.read("violations.csv"), VIOLATIONS_HEADER)
    }

    pub fn clients(&self) -> Vec<Vec<String>> {
        csv_rows(&self.read("clients.csv"), CLIENTS_HEADER)
    }

    pub fn report(&self) -> serde_json::Value {
        serde_json::from_str(&self.read("report.json")).unwrap()
    }

    /// The manifest entry of the one input whose path ends with `suffix`.
    pub fn input(&self, suffix: &str) -> serde_json::Value {
        let r = self.report();
        let found: Vec<&serde_json::Value> = r["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["path"].as_str().unwrap().ends_with(suffix))
            .collect();
        assert_eq!(
            found.len(),
            1,
            "inputs ending in {suffix}: {:#?}",
            r["inputs"]
        );
        found[0].clone()
    }
}

pub const VIOLATIONS_HEADER: &str =
    "client,window,window_start,window_end,posts,requests,damages_usd";
pub const CLIENTS_HEADER: &str =
    "client,windows,posts,requests,damages_usd,peak_start,peak_end,peak_posts,exempt";

pub fn csv_rows(text: &str, header: &str) -> Vec<Vec<String>> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes());
    let mut rows: Vec<Vec<String>> = r
        .records()
        .map(|rec| rec.unwrap().iter().map(str::to_string).collect())
        .collect();
    assert!(!rows.is_empty(), "no header in {text:?}");
    assert_eq!(rows.remove(0).join(","), header);
    rows
}

/// A violations row as `client,window,start,end,posts,requests,damages`.
pub fn joined(rows: &[Vec<String>]) -> Vec<String> {
    rows.iter().map(|r| r.join(",")).collect()
}
