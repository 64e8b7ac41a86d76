//! `scrapemeter generate`: writes deterministic synthetic access logs, the bundled
//! sample (`--preset sample`) or a large benchmark set (`--preset bench`), and prints
//! what it wrote. The logs themselves come from the `scrapemeter-fixtures` crate
//! (`crates/fixtures/`), which sits beside the product.

use clap::{Args, ValueEnum};
use scrapemeter_fixtures::{self as fixtures, BenchSpec, SampleSpec, Written};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Preset {
    /// The bundled sample logs: two servers, three days, two scrapers over the threshold.
    Sample,
    /// Large files for benchmarks (see --files, --lines, --compression).
    Bench,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Compression {
    /// gzip, level 6.
    Gzip,
    /// zstd, level 3.
    Zstd,
    /// Uncompressed text.
    Plain,
}

impl From<Compression> for fixtures::Compression {
    fn from(c: Compression) -> Self {
        match c {
            Compression::Gzip => fixtures::Compression::Gzip,
            Compression::Zstd => fixtures::Compression::Zstd,
            Compression::Plain => fixtures::Compression::Plain,
        }
    }
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Folder to write the generated logs into (created if missing).
    #[arg(long, short, value_name = "DIR")]
    pub out: PathBuf,

    /// Seed of the random generator (default: 1): the same seed writes the same bytes.
    #[arg(long, value_name = "N", default_value_t = 1, hide_default_value = true)]
    pub seed: u64,

    /// What to write (default: sample): the bundled sample logs, or a large benchmark set.
    #[arg(long, value_enum, default_value_t = Preset::Sample, hide_default_value = true)]
    pub preset: Preset,

    /// Number of files of the bench preset (default: 4).
    #[arg(long, value_name = "N")]
    pub files: Option<usize>,

    /// Lines per file of the bench preset (default: 2000000).
    #[arg(long, value_name = "N")]
    pub lines: Option<u64>,

    /// Compression of the bench preset's files (default: gzip).
    #[arg(long, value_enum, value_name = "HOW")]
    pub compression: Option<Compression>,
}

/// Writes the preset `args` asks for; returns a one-line error on failure.
pub fn run(args: &GenerateArgs) -> Result<(), String> {
    match args.preset {
        Preset::Sample => {
            if args.files.is_some() || args.lines.is_some() || args.compression.is_some() {
                return Err(
                    "--files, --lines and --compression apply to --preset bench only".into(),
                );
            }
            let started = Instant::now();
            let written = fixtures::sample(&args.out, args.seed, &SampleSpec::FULL)?;
            report(&written, started);
            Ok(())
        }
        Preset::Bench => {
            let spec = BenchSpec {
                files: args.files.unwrap_or(4),
                lines: args.lines.unwrap_or(2_000_000),
                compression: args.compression.unwrap_or(Compression::Gzip).into(),
            };
            if spec.files == 0 {
                return Err("--files must be at least 1".into());
            }
            let started = Instant::now();
            let written = fixtures::bench(&args.out, args.seed, &spec)?;
            report(&written, started);
            Ok(())
        }
    }
}

fn report(written: &[Written], started: Instant) {
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    let text: u64 = written.iter().map(|w| w.text_bytes).sum();
    let disk: u64 = written.iter().map(|w| w.disk_bytes).sum();
    let lines: u64 = written.iter().map(|w| w.lines).sum();
    for w in written {
        eprintln!(
            "{}: {} lines, {} bytes of text, {} bytes on disk",
            w.path.display(),
            w.lines,
            w.text_bytes,
            w.disk_bytes
        );
    }
    eprintln!(
        "wrote {} files, {lines} lines, {:.1} MB of text ({:.1} MB on disk) in {secs:.2} s: {:.1} MB/s of text",
        written.len(),
        text as f64 / 1e6,
        disk as f64 / 1e6,
        text as f64 / 1e6 / secs
    );
}

/// The product's parser reads what the fixtures write (the fixtures' own tests, in
/// `crates/fixtures/`, check determinism; these check the lines against `Clf`).
#[cfg(test)]
mod tests {
    use crate::input::format::clf::Clf;
    use crate::input::format::LineFormat;
    use scrapemeter_fixtures::{
        bench, sample, BenchSpec, Compression, SampleSpec, SAMPLE_MALFORMED,
    };
    use std::fs;
    use std::io::Read;
    use std::path::Path;

    fn read_text(path: &Path) -> Vec<u8> {
        let raw = fs::read(path).unwrap();
        let mut text = Vec::new();
        match raw.get(..4) {
            Some([0x1f, 0x8b, ..]) => {
                flate2::read::MultiGzDecoder::new(&raw[..])
                    .read_to_end(&mut text)
                    .unwrap();
            }
            Some([0x28, 0xb5, 0x2f, 0xfd]) => text = zstd::decode_all(&raw[..]).unwrap(),
            _ => text = raw,
        }
        text
    }

    #[test]
    fn sample_lines_parse_except_the_damaged_ones() {
        let dir = tempfile::tempdir().unwrap();
        let written = sample(dir.path(), 1, &SampleSpec::MINI).unwrap();
        let names: Vec<_> = written
            .iter()
            .map(|w| {
                w.path
                    .strip_prefix(dir.path())
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert!(names.contains(&"fra1/access.log".to_string()), "{names:?}");
        assert!(
            names.contains(&"nyc1/access.log-20260304.zst".to_string()),
            "{names:?}"
        );
        let mut bad = Vec::new();
        let mut good = 0;
        for w in &written {
            let text = read_text(&w.path);
            assert!(text.ends_with(b"\n"));
            let mut last = i64::MIN;
            for line in text.split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
                match Clf.parse(line) {
                    Ok(r) => {
                        good += 1;
                        // Roughly time-ordered: never more than a few seconds back.
                        assert!(
                            r.time >= last.saturating_sub(5_000_000),
                            "{}",
                            String::from_utf8_lossy(line)
                        );
                        last = last.max(r.time);
                    }
                    Err(_) => bad.push(String::from_utf8_lossy(line).into_owned()),
                }
            }
        }
        assert_eq!(bad.len(), SAMPLE_MALFORMED, "{bad:#?}");
        assert!(bad.iter().any(|l| l.contains("[error]")));
        assert!(good > 1_000);
    }

    #[test]
    fn bench_lines_parse_and_cover_two_days() {
        let dir = tempfile::tempdir().unwrap();
        let spec = BenchSpec {
            files: 3,
            lines: 2_000,
            compression: Compression::Gzip,
        };
        let written = bench(dir.path(), 1, &spec).unwrap();
        assert_eq!(written.len(), 3);
        for w in &written {
            let text = read_text(&w.path);
            let lines: Vec<_> = text
                .split(|&c| c == b'\n')
                .filter(|l| !l.is_empty())
                .collect();
            assert_eq!(lines.len(), 2_000);
            let times: Vec<_> = lines.iter().map(|l| Clf.parse(l).unwrap().time).collect();
            let span = times.last().unwrap() - times.first().unwrap();
            assert!(span > 47 * 3600 * 1_000_000, "{span}");
        }
    }
}
