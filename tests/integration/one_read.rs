//! One read of gzip inputs (issue 14): what the second read finds through access points
//! and the first pass's records (evidence lines, top paths and user agents, breakdowns,
//! organisation members) equals what it finds reading every file whole again, on
//! generated sets with many reported clients, a multi-member gzip file and lines cut by
//! access points; and a file changed between the passes is caught.

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

/// Two bench files, and a third made of two gzip members (one of each).
fn write_set(dir: &Path) {
    let spec = BenchSpec {
        files: 2,
        lines: 40_000,
        compression: Compression::Gzip,
    };
    let written = bench(dir, 11, &spec).unwrap();
    let mut both = Vec::new();
    for w in &written {
        both.extend(std::fs::read(&w.path).unwrap());
    }
    std::fs::write(dir.join("joined.log.gz"), both).unwrap();
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
            assert_eq!(scan.recorded.len(), 3, "every gzip input is recorded");
            assert!(scan.recorded.values().all(|r| r.index.points.len() >= 2));
            assert_eq!(
                format!("{:?}", spans.clients),
                format!("{:?}", whole.clients),
                "bar {bar}, orgs {orgs:?}, {windows} windows"
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
    // Change one byte in each span of the joined file (its size stays).
    let path = dir.path().join("joined.log.gz");
    let mut bytes = std::fs::read(&path).unwrap();
    let name = scan
        .recorded
        .keys()
        .find(|k| k.ends_with("joined.log.gz"))
        .unwrap();
    for p in &scan.recorded[name].index.points {
        let at = (p.input as usize + 5000).min(bytes.len() - 20);
        bytes[at] ^= 0x55;
    }
    std::fs::write(&path, bytes).unwrap();
    let notes = attach_with(&cfg.read, &scan, &[], &mut analysis, Prefilter::Auto);
    assert!(
        notes
            .iter()
            .any(|n| n.contains("joined.log.gz") && n.contains("changed since it was read")),
        "{notes:?}"
    );
}
