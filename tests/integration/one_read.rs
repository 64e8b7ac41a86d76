//! One read (issue 14): what the second read finds through access points (gzip, plain)
//! or one more decompression that frames only the lines wanted (zstd), and the first
//! pass's records (evidence lines, top paths and user agents, breakdowns, organisation
//! members), equals what it finds reading every file whole again, on generated sets
//! with many reported clients, a multi-member gzip file, a multi-frame zstd file and
//! lines cut by access points; and a file changed between the passes is caught.

use scrapemeter::config::{Config, Overrides, SettingsFile};
use scrapemeter::engine::bill::{analyze, Analysis};
use scrapemeter::input::discover::discover;
use scrapemeter::input::reader::{scan_recording, ScanOutput};
use scrapemeter::input::second_read::{attach_with, Prefilter};
use scrapemeter_fixtures::{bench, BenchSpec, Compression};
use std::path::Path;

fn config(dir: &Path, orgs: Option<&Path>) -> Config {
    Config::resolve(
        vec![dir.display().to_string()],
        "out".into(),
        Overrides {
            // Low enough that hundreds of ordinary clients are reported, in every file.
            threshold: Some(40),
            threads: Some(2),
            orgs: orgs.map(Path::to_path_buf),
            ..Default::default()
        },
        SettingsFile::default(),
    )
    .unwrap()
}

/// Scans `dir` and fills the reported clients' details, recording in the first pass
/// (`Some(bar)`: the second read uses access points) or not (every file read again).
fn run(cfg: &Config, dir: &Path, record: Option<u32>) -> (Analysis, Vec<String>, ScanOutput) {
    let mut scan = scan_recording(
        &cfg.read,
        discover(&[dir.display().to_string()]),
        None,
        record,
    );
    let aggregate = std::mem::take(&mut scan.aggregate);
    let mut analysis = analyze(&cfg.policy, aggregate, &|k| cfg.read.identify(k));
    let notes = attach_with(&cfg.read, &scan, &[], &mut analysis, Prefilter::Auto);
    (analysis, notes, scan)
}

/// Inputs of the set written by [`write_set`], and how many are gzip or plain (with
/// access points).
const INPUTS: usize = 6;
const WITH_POINTS: usize = 4;

/// Two bench files, and a third made of two gzip members (one of each); a plain file
/// and a zstd file of other seeds, and a zstd file of two frames (one of each).
fn write_set(dir: &Path) {
    let spec = |compression| BenchSpec {
        files: 2,
        lines: 40_000,
        compression,
    };
    let joined = |written: &[scrapemeter_fixtures::Written], name: &str| {
        let mut both = Vec::new();
        for w in written {
            both.extend(std::fs::read(&w.path).unwrap());
        }
        std::fs::write(dir.join(name), both).unwrap();
    };
    joined(
        &bench(dir, 11, &spec(Compression::Gzip)).unwrap(),
        "joined.log.gz",
    );
    let plain = bench(&dir.join("plain"), 12, &spec(Compression::Plain)).unwrap();
    std::fs::remove_file(&plain[1].path).unwrap();
    let zst = bench(&dir.join("zst"), 13, &spec(Compression::Zstd)).unwrap();
    joined(&zst, "joined.log.zst");
    std::fs::remove_file(&zst[1].path).unwrap();
}

#[test]
fn access_points_give_what_a_whole_read_gives() {
    let dir = tempfile::tempdir().unwrap();
    write_set(dir.path());
    let elsewhere = tempfile::tempdir().unwrap();
    let orgs = elsewhere.path().join("orgs.csv");
    std::fs::write(
        &orgs,
        "match,org\n198.18.0.0/17,Low Org\n2001:db8::/36,Six Org\n",
    )
    .unwrap();
    for orgs in [None, Some(orgs.as_path())] {
        let cfg = config(dir.path(), orgs);
        let (whole, notes, _) = run(&cfg, dir.path(), None);
        assert!(notes.is_empty(), "{notes:?}");
        assert!(
            whole.clients.len() >= 20,
            "{} reported",
            whole.clients.len()
        );
        let windows: usize = whole.clients.iter().map(|c| c.windows.len()).sum();
        assert!(whole
            .clients
            .iter()
            .flat_map(|c| &c.windows)
            .all(|w| w.evidence.first.is_some() && w.evidence.last.is_some()));
        // Several bars: from nearly every client's details in the first pass to none.
        for bar in [32, 200, u32::MAX] {
            let (spans, notes, scan) = run(&cfg, dir.path(), Some(bar));
            assert!(notes.is_empty(), "{notes:?}");
            assert_eq!(scan.recorded.len(), INPUTS, "every input is recorded");
            let with_points = scan
                .recorded
                .values()
                .filter(|r| !r.index.points.is_empty());
            assert_eq!(with_points.clone().count(), WITH_POINTS);
            assert!(with_points.clone().all(|r| r.index.points.len() >= 2));
            assert_eq!(
                format!("{:?}", spans.clients),
                format!("{:?}", whole.clients),
                "bar {bar}, orgs {orgs:?}, {windows} windows"
            );
        }
    }
}

/// One file and more threads than files: its blocks are shared by several parse
/// workers, each recording what it reads; the record put together gives what a whole
/// read gives (gzip, plain and zstd; several bars).
#[test]
fn a_file_shared_by_several_workers_is_recorded_too() {
    let dir = tempfile::tempdir().unwrap();
    write_set(dir.path());
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .unwrap();
    for file in ["joined.log.gz", "plain/bench-000.log", "joined.log.zst"] {
        let one = tempfile::tempdir().unwrap();
        let path = one.path().join(file.replace('/', "-"));
        std::fs::copy(dir.path().join(file), &path).unwrap();
        let cfg = config(one.path(), None);
        let (whole, notes, _) = pool.install(|| run(&cfg, one.path(), None));
        assert!(notes.is_empty(), "{notes:?}");
        assert!(
            whole.clients.len() >= 10,
            "{file}: {} reported",
            whole.clients.len()
        );
        for bar in [32, 2_000, u32::MAX] {
            let (spans, notes, scan) = pool.install(|| run(&cfg, one.path(), Some(bar)));
            assert!(notes.is_empty(), "{notes:?}");
            assert_eq!(scan.recorded.len(), 1, "{file} is recorded");
            let rec = scan.recorded.values().next().unwrap();
            if bar == 32 {
                // Some promoted clients' details come from several workers' blocks.
                assert!(rec.covered.values().any(|r| r.len() > 1), "{file}");
            }
            assert_eq!(
                format!("{:?}", spans.clients),
                format!("{:?}", whole.clients),
                "{file}, bar {bar}"
            );
        }
    }
}

#[test]
fn a_file_changed_between_the_passes_is_not_used() {
    let dir = tempfile::tempdir().unwrap();
    write_set(dir.path());
    let cfg = config(dir.path(), None);
    let mut scan = scan_recording(
        &cfg.read,
        discover(&[dir.path().display().to_string()]),
        None,
        Some(32),
    );
    let aggregate = std::mem::take(&mut scan.aggregate);
    let mut analysis = analyze(&cfg.policy, aggregate, &|k| cfg.read.identify(k));
    let changed = ["joined.log.gz", "bench-000.log", "joined.log.zst"];
    for file in changed {
        // Change one byte in each span (gzip, plain; its size stays), or one byte of
        // its last frame (zstd: the file's digest is checked).
        let name = scan.recorded.keys().find(|k| k.ends_with(file)).unwrap();
        let path = Path::new(name);
        let mut bytes = std::fs::read(path).unwrap();
        for p in &scan.recorded[name].index.points {
            let at = (p.input as usize + 5000).min(bytes.len() - 20);
            bytes[at] ^= 0x55;
        }
        let last = bytes.len() - 100;
        if scan.recorded[name].index.points.is_empty() {
            bytes[last] ^= 0x55;
        }
        std::fs::write(path, bytes).unwrap();
    }
    let notes = attach_with(&cfg.read, &scan, &[], &mut analysis, Prefilter::Auto);
    for file in changed {
        assert!(
            notes
                .iter()
                .any(|n| n.contains(file) && n.contains("changed since it was read")),
            "{file}: {notes:?}"
        );
    }
}
