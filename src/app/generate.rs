//! Deterministic synthetic access logs: the bundled sample (`--preset sample`) and
//! large benchmark sets (`--preset bench`), in the `combined` format.
//!
//! Every random choice comes from a small seeded SplitMix64 generator written here
//! (one stream per actor or file), and no floating-point function that depends on the
//! platform's maths library (`ln`, `exp`, `powf`, `sin`) is used, so the same seed
//! gives the same text on every machine. Addresses come from the documentation and
//! benchmarking ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 198.18.0.0/15,
//! 2001:db8::/32): no real host is ever named as a scraper.

use crate::engine::time::days_from_civil;
use clap::{Args, ValueEnum};
use flate2::write::GzEncoder;
use rayon::prelude::*;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
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

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Folder to write the generated logs into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Seed of the random generator: the same seed writes the same bytes.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,

    /// What to write: the bundled sample logs, or a large benchmark set.
    #[arg(long, value_enum, default_value_t = Preset::Sample)]
    pub preset: Preset,

    /// Number of files of the bench preset (default 4).
    #[arg(long, value_name = "N")]
    pub files: Option<usize>,

    /// Lines per file of the bench preset (default 2000000).
    #[arg(long, value_name = "N")]
    pub lines: Option<u64>,

    /// Compression of the bench preset's files (default gzip).
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
            let written = sample(&args.out, args.seed, &SampleSpec::FULL)?;
            report(&written, started);
            Ok(())
        }
        Preset::Bench => {
            let spec = BenchSpec {
                files: args.files.unwrap_or(4),
                lines: args.lines.unwrap_or(2_000_000),
                compression: args.compression.unwrap_or(Compression::Gzip),
            };
            if spec.files == 0 {
                return Err("--files must be at least 1".into());
            }
            let started = Instant::now();
            let written = bench(&args.out, args.seed, &spec)?;
            report(&written, started);
            Ok(())
        }
    }
}

/// What one generated file holds: its path, lines, text bytes and bytes on disk.
#[derive(Debug, Clone)]
pub struct Written {
    pub path: PathBuf,
    pub lines: u64,
    pub text_bytes: u64,
    pub disk_bytes: u64,
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

// ---------------------------------------------------------------------------------
// Randomness

/// SplitMix64: small, fast, and the same on every platform.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    /// Stream `stream` of seed `seed`; different streams are independent for our purposes.
    fn new(seed: u64, stream: u64) -> Self {
        let mut r = Rng(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03));
        r.next_u64();
        r
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Uniform in `lo..hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo) as u64) as i64
    }

    /// True with probability `per_mille / 1000`.
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }

    /// An index drawn with the given integer weights.
    fn weighted(&mut self, weights: &[u64]) -> usize {
        let total: u64 = weights.iter().sum();
        let mut x = self.below(total);
        for (i, &w) in weights.iter().enumerate() {
            if x < w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }
}

/// A stateless hash of one number, for values that must follow from an id (a post's size).
fn mix(x: u64) -> u64 {
    Rng(x).next_u64()
}

// ---------------------------------------------------------------------------------
// Formatting

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// The date of a day since the epoch (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn push_u64(buf: &mut Vec<u8>, mut n: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&tmp[i..]);
}

fn push_2(buf: &mut Vec<u8>, n: u32) {
    buf.push(b'0' + (n / 10) as u8);
    buf.push(b'0' + (n % 10) as u8);
}

/// `dd/Mon/yyyy:HH:MM:SS +ZZZZ` of UTC second `t` on a server at `offset_min` minutes.
fn push_clf_time(buf: &mut Vec<u8>, t: i64, offset_min: i32) {
    let local = t + offset_min as i64 * 60;
    let (y, m, d) = civil_from_days(local.div_euclid(86_400));
    let s = local.rem_euclid(86_400) as u32;
    push_2(buf, d);
    buf.push(b'/');
    buf.extend_from_slice(MONTHS[m as usize - 1]);
    buf.push(b'/');
    push_u64(buf, y as u64);
    buf.push(b':');
    push_2(buf, s / 3600);
    buf.push(b':');
    push_2(buf, s / 60 % 60);
    buf.push(b':');
    push_2(buf, s % 60);
    buf.push(b' ');
    buf.push(if offset_min < 0 { b'-' } else { b'+' });
    let off = offset_min.unsigned_abs();
    push_2(buf, off / 60);
    push_2(buf, off % 60);
}

/// One request, as the `combined` format writes it.
struct Req<'a> {
    ip: &'a str,
    user: &'a str,
    time: i64,
    offset_min: i32,
    method: &'a str,
    target: &'a str,
    status: u16,
    bytes: u64,
    referer: &'a str,
    ua: &'a str,
}

/// Appends `r` as one `combined` line, newline included.
fn push_combined(buf: &mut Vec<u8>, r: &Req) {
    buf.extend_from_slice(r.ip.as_bytes());
    buf.extend_from_slice(b" - ");
    buf.extend_from_slice(r.user.as_bytes());
    buf.extend_from_slice(b" [");
    push_clf_time(buf, r.time, r.offset_min);
    buf.extend_from_slice(b"] \"");
    buf.extend_from_slice(r.method.as_bytes());
    if r.target.is_empty() {
        // Not a request line at all (binary junk): logged as it came.
        buf.extend_from_slice(b"\" ");
    } else {
        buf.push(b' ');
        buf.extend_from_slice(r.target.as_bytes());
        buf.extend_from_slice(b" HTTP/1.1\" ");
    }
    push_u64(buf, r.status as u64);
    buf.push(b' ');
    push_u64(buf, r.bytes);
    buf.extend_from_slice(b" \"");
    buf.extend_from_slice(r.referer.as_bytes());
    buf.extend_from_slice(b"\" \"");
    buf.extend_from_slice(r.ua.as_bytes());
    buf.extend_from_slice(b"\"\n");
}

// ---------------------------------------------------------------------------------
// Output files

/// A file being written: counts the text that goes in, compresses it on the way out.
struct Sink {
    path: PathBuf,
    enc: Encoder,
    lines: u64,
    text_bytes: u64,
}

enum Encoder {
    Gzip(GzEncoder<BufWriter<File>>),
    Zstd(zstd::Encoder<'static, BufWriter<File>>),
    Plain(BufWriter<File>),
}

/// How hard to compress: the sample is written once and shipped, a bench set often.
#[derive(Debug, Clone, Copy)]
enum Effort {
    Best,
    Fast,
}

fn io_err(path: &Path, e: io::Error) -> String {
    format!("{}: {e}", path.display())
}

impl Sink {
    fn create(path: PathBuf, how: Compression, effort: Effort) -> Result<Sink, String> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        }
        let file = File::create(&path).map_err(|e| io_err(&path, e))?;
        let out = BufWriter::with_capacity(1 << 16, file);
        let enc = match (how, effort) {
            (Compression::Gzip, Effort::Best) => {
                Encoder::Gzip(GzEncoder::new(out, flate2::Compression::best()))
            }
            (Compression::Gzip, Effort::Fast) => {
                Encoder::Gzip(GzEncoder::new(out, flate2::Compression::new(6)))
            }
            (Compression::Zstd, effort) => {
                let level = match effort {
                    // 19 shrinks the sample's zstd file by 6% more, at eight times the time.
                    Effort::Best => 17,
                    Effort::Fast => 3,
                };
                let mut z = zstd::Encoder::new(out, level).map_err(|e| io_err(&path, e))?;
                if let Effort::Best = effort {
                    z.long_distance_matching(true)
                        .and_then(|_| z.window_log(24))
                        .map_err(|e| io_err(&path, e))?;
                }
                Encoder::Zstd(z)
            }
            (Compression::Plain, _) => Encoder::Plain(out),
        };
        Ok(Sink {
            path,
            enc,
            lines: 0,
            text_bytes: 0,
        })
    }

    /// Writes whole lines (each ending in a newline).
    fn write(&mut self, text: &[u8]) -> Result<(), String> {
        self.lines += memchr::memchr_iter(b'\n', text).count() as u64;
        self.text_bytes += text.len() as u64;
        let r = match &mut self.enc {
            Encoder::Gzip(w) => w.write_all(text),
            Encoder::Zstd(w) => w.write_all(text),
            Encoder::Plain(w) => w.write_all(text),
        };
        r.map_err(|e| io_err(&self.path, e))
    }

    fn finish(self) -> Result<Written, String> {
        let out = match self.enc {
            Encoder::Gzip(w) => w.finish(),
            Encoder::Zstd(w) => w.finish(),
            Encoder::Plain(w) => Ok(w),
        };
        let file = out
            .and_then(|w| w.into_inner().map_err(|e| e.into_error()))
            .map_err(|e| io_err(&self.path, e))?;
        file.sync_all().map_err(|e| io_err(&self.path, e))?;
        let disk_bytes = file.metadata().map_err(|e| io_err(&self.path, e))?.len();
        Ok(Written {
            path: self.path,
            lines: self.lines,
            text_bytes: self.text_bytes,
            disk_bytes,
        })
    }
}

// ---------------------------------------------------------------------------------
// The sample preset

const HOST: &str = "https://example.social";

struct Server {
    name: &'static str,
    offset_min: i32,
}

/// Frankfurt at +0100 and New York at -0500 (both before their 2026 DST switch).
const SERVERS: [Server; 2] = [
    Server {
        name: "fra1",
        offset_min: 60,
    },
    Server {
        name: "nyc1",
        offset_min: -300,
    },
];
const FRA1: usize = 0;
const NYC1: usize = 1;

/// UTC seconds of a date at midnight.
fn utc_midnight(y: i64, m: u32, d: u32) -> i64 {
    days_from_civil(y, m, d) * 86_400
}

/// How big the sample is: the full one, or a miniature for tests.
#[derive(Debug, Clone, Copy)]
pub struct SampleSpec {
    /// Background (ordinary) clients.
    pub clients: usize,
    /// The scrapers run for 1/`scraper_divisor` of their full-size time.
    pub scraper_divisor: i64,
    /// Seconds between two probes of the uptime checker.
    pub probe_every: i64,
}

impl SampleSpec {
    pub const FULL: SampleSpec = SampleSpec {
        clients: 3000,
        scraper_divisor: 1,
        probe_every: 30,
    };
    pub const MINI: SampleSpec = SampleSpec {
        clients: 40,
        scraper_divisor: 2000,
        probe_every: 1800,
    };
}

/// One line, ready to write: when the server wrote it and to which server.
struct Event {
    /// UTC second the line was written (orders the file; picks the rotated file).
    t: i64,
    server: usize,
    line: Vec<u8>,
}

/// The file a server writes at UTC second `t`: one per local day, rotated at local
/// midnight. The last days are written differently: nyc1's 2026-03-04 is zstd, fra1's
/// unrotated `access.log` (local 2026-03-05) is plain.
fn sample_file(server: usize, t: i64) -> (String, Compression) {
    let s = &SERVERS[server];
    let local_day = (t + s.offset_min as i64 * 60).div_euclid(86_400);
    let (y, m, d) = civil_from_days(local_day);
    let stamp = format!("{y:04}{m:02}{d:02}");
    match (server, stamp.as_str()) {
        (FRA1, "20260305") => (format!("{}/access.log", s.name), Compression::Plain),
        (NYC1, "20260304") => (
            format!("{}/access.log-{stamp}.zst", s.name),
            Compression::Zstd,
        ),
        _ => (
            format!("{}/access.log-{stamp}.gz", s.name),
            Compression::Gzip,
        ),
    }
}

/// Writes the sample logs into `out`: an extract of 2026-03-02 to 2026-03-04 (UTC) from
/// two servers of a small social network.
pub fn sample(out: &Path, seed: u64, spec: &SampleSpec) -> Result<Vec<Written>, String> {
    let start = utc_midnight(2026, 3, 2);
    let end = utc_midnight(2026, 3, 5);
    let mut actors: Vec<Box<dyn Iterator<Item = Event>>> = vec![
        Box::new(background(seed, spec.clients, start, end).into_iter()),
        Box::new(HealthCheck::new(start, end, spec.probe_every)),
        Box::new(TimelinePoller::new(seed, start, spec.scraper_divisor)),
        Box::new(IdWalker::new(seed, start, spec.scraper_divisor)),
    ];
    // Each server's files are compressed on a thread of their own, fed in chunks.
    std::thread::scope(|scope| {
        let mut feeds = Vec::new();
        let mut workers = Vec::new();
        for _ in &SERVERS {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Chunk>(8);
            feeds.push(tx);
            workers.push(scope.spawn(move || compress_chunks(rx)));
        }
        let mut pending: Vec<Option<Chunk>> = SERVERS.iter().map(|_| None).collect();
        let mut heads: Vec<Option<Event>> = actors.iter_mut().map(|a| a.next()).collect();
        let mut failed = false;
        // The earliest head next; ties go to the earlier actor.
        while let Some(i) = (0..heads.len())
            .filter(|&i| heads[i].is_some())
            .min_by_key(|&i| heads[i].as_ref().map(|e| e.t))
        {
            let ev = heads[i].take().expect("chosen head is present");
            heads[i] = actors[i].next();
            let (name, how) = sample_file(ev.server, ev.t);
            let path = out.join(&name);
            let slot = &mut pending[ev.server];
            if slot
                .as_ref()
                .is_some_and(|c| c.path != path || c.text.len() >= 1 << 18)
            {
                let chunk = slot.take().expect("checked above");
                failed |= feeds[ev.server].send(chunk).is_err();
            }
            slot.get_or_insert_with(|| Chunk {
                path,
                how,
                text: Vec::with_capacity(1 << 18 | 1 << 10),
            })
            .text
            .extend_from_slice(&ev.line);
            if failed {
                break;
            }
        }
        for (chunk, feed) in pending.into_iter().zip(feeds) {
            if let Some(chunk) = chunk {
                let _ = feed.send(chunk);
            }
        }
        let mut written = Vec::new();
        for w in workers {
            written.extend(
                w.join()
                    .map_err(|_| "a compression thread panicked".to_string())??,
            );
        }
        written.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(written)
    })
}

/// Lines for one file, in order.
struct Chunk {
    path: PathBuf,
    how: Compression,
    text: Vec<u8>,
}

/// Writes chunks as they come, closing a file when the next chunk is for another.
fn compress_chunks(rx: std::sync::mpsc::Receiver<Chunk>) -> Result<Vec<Written>, String> {
    let mut written = Vec::new();
    let mut open: Option<Sink> = None;
    for chunk in rx {
        if open.as_ref().is_none_or(|s| s.path != chunk.path) {
            if let Some(done) = open.take() {
                written.push(done.finish()?);
            }
            open = Some(Sink::create(chunk.path, chunk.how, Effort::Best)?);
        }
        open.as_mut().expect("opened above").write(&chunk.text)?;
    }
    if let Some(done) = open {
        written.push(done.finish()?);
    }
    Ok(written)
}

/// A steady uptime probe on both servers (every 30 seconds in the full sample): harmless, but `/healthz`
/// is not static, so under the default rule each probe weighs one post.
struct HealthCheck {
    t: i64,
    end: i64,
    every: i64,
    server: usize,
    buf: Vec<u8>,
}

impl HealthCheck {
    fn new(start: i64, end: i64, every: i64) -> Self {
        HealthCheck {
            t: start + 7,
            end,
            every,
            server: 0,
            buf: Vec::new(),
        }
    }
}

impl Iterator for HealthCheck {
    type Item = Event;
    fn next(&mut self) -> Option<Event> {
        if self.t >= self.end {
            return None;
        }
        let server = self.server;
        self.buf.clear();
        push_combined(
            &mut self.buf,
            &Req {
                ip: "192.0.2.10",
                user: "-",
                time: self.t,
                offset_min: SERVERS[server].offset_min,
                method: "GET",
                target: "/healthz",
                status: 200,
                bytes: 2,
                referer: "-",
                ua: "UptimeProbe/1.4 (+https://status.example.net)",
            },
        );
        let ev = Event {
            t: self.t,
            server,
            line: self.buf.clone(),
        };
        if server == 1 {
            self.t += self.every;
        }
        self.server = 1 - server;
        Some(ev)
    }
}

/// Requests per second of the scrapers: 13 to 15, about 14 (1.2 million a day).
fn scraper_burst(rng: &mut Rng) -> u64 {
    13 + rng.below(3)
}

/// Scraper 1: `198.51.100.23` polls the public timeline, cycling through four pages,
/// from 2026-03-02 01:40Z to 23:20Z (one UTC day: `calendar` mode catches it too).
/// It keeps a connection to one server for a while, then reconnects to either.
struct TimelinePoller {
    rng: Rng,
    t: i64,
    end: i64,
    server: usize,
    switch_at: i64,
    page: u64,
    sizes: [u64; 4],
    queue: std::collections::VecDeque<Event>,
}

impl TimelinePoller {
    fn new(seed: u64, day: i64, divisor: i64) -> Self {
        let t = day + 6_000;
        let mut rng = Rng::new(seed, 2);
        let sizes = [0; 4].map(|_| 28_000 + rng.below(6_000));
        TimelinePoller {
            rng,
            t,
            end: t + 78_000 / divisor,
            server: FRA1,
            switch_at: t,
            page: 0,
            sizes,
            queue: Default::default(),
        }
    }
}

impl Iterator for TimelinePoller {
    type Item = Event;
    fn next(&mut self) -> Option<Event> {
        while self.queue.is_empty() {
            if self.t >= self.end {
                return None;
            }
            if self.t >= self.switch_at {
                self.server = self.rng.below(2) as usize;
                self.switch_at = self.t + self.rng.range(900, 5_400);
            }
            if self.t % 60 == 0 {
                // New posts arrive: the pages change size once a minute.
                let i = self.rng.below(4) as usize;
                self.sizes[i] = 28_000 + self.rng.below(6_000);
            }
            for _ in 0..scraper_burst(&mut self.rng) {
                let page = self.page % 4 + 1;
                self.page += 1;
                let target = format!("/api/v1/timelines/public?limit=40&page={page}");
                let mut line = Vec::with_capacity(200);
                push_combined(
                    &mut line,
                    &Req {
                        ip: "198.51.100.23",
                        user: "-",
                        time: self.t,
                        offset_min: SERVERS[self.server].offset_min,
                        method: "GET",
                        target: &target,
                        status: 200,
                        bytes: self.sizes[page as usize - 1],
                        referer: "-",
                        ua: "FeedHarvester/2.1 (+https://harvester.example/bot)",
                    },
                );
                self.queue.push_back(Event {
                    t: self.t,
                    server: self.server,
                    line,
                });
            }
            self.t += 1;
        }
        self.queue.pop_front()
    }
}

/// Scraper 2: `203.0.113.77` walks post ids one by one, from 2026-03-03 13:00Z to
/// 2026-03-04 11:00Z: its window straddles UTC midnight, so only `rolling` mode sees
/// it (each calendar day holds about 0.55 million). It mostly reaches nyc1, whose
/// dual-stack listener logs it as `::ffff:203.0.113.77`. It is a mirror re-validating
/// its copy with conditional requests: most answers are 304 Not Modified (a post all
/// the same), 7% are 200 (edited posts), 3% are 404 (deleted posts, weight 0).
struct IdWalker {
    rng: Rng,
    t: i64,
    end: i64,
    server: usize,
    switch_at: i64,
    id: u64,
    queue: std::collections::VecDeque<Event>,
}

impl IdWalker {
    fn new(seed: u64, start: i64, divisor: i64) -> Self {
        let t = start + 86_400 + 13 * 3600;
        IdWalker {
            rng: Rng::new(seed, 3),
            t,
            end: t + 22 * 3600 / divisor,
            server: NYC1,
            switch_at: t,
            id: 111_800_000_000_000_000,
            queue: Default::default(),
        }
    }
}

impl Iterator for IdWalker {
    type Item = Event;
    fn next(&mut self) -> Option<Event> {
        while self.queue.is_empty() {
            if self.t >= self.end {
                return None;
            }
            if self.t >= self.switch_at {
                self.server = if self.rng.chance(800) { NYC1 } else { FRA1 };
                self.switch_at = self.t + self.rng.range(600, 3_600);
            }
            let ip = if self.server == NYC1 {
                "::ffff:203.0.113.77"
            } else {
                "203.0.113.77"
            };
            for _ in 0..scraper_burst(&mut self.rng) {
                self.id += 1;
                let h = mix(self.id);
                let (status, bytes) = match h % 100 {
                    0..=2 => (404, 71),
                    3..=9 => (200, 1_500 + (h >> 8) % 2_500),
                    _ => (304, 0),
                };
                let target = format!("/api/v1/statuses/{}", self.id);
                let mut line = Vec::with_capacity(200);
                push_combined(
                    &mut line,
                    &Req {
                        ip,
                        user: "-",
                        time: self.t,
                        offset_min: SERVERS[self.server].offset_min,
                        method: "GET",
                        target: &target,
                        status,
                        bytes,
                        referer: "-",
                        ua: "Go-http-client/1.1",
                    },
                );
                self.queue.push_back(Event {
                    t: self.t,
                    server: self.server,
                    line,
                });
            }
            self.t += 1;
        }
        self.queue.pop_front()
    }
}

const BROWSER_UAS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0.0.0 Safari/537.36 Edg/121.0.0.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:123.0) Gecko/20100101 Firefox/123.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3 Safari/605.1.15",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_3_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.6261.64 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0.6167.178 Mobile Safari/537.36",
];

const APP_UAS: &[&str] = &[
    "ExampleSocial/5.2.1 (iPhone; iOS 17.3.1; Scale/3.00)",
    "ExampleSocial/5.2.0 (Android 14; Pixel 7)",
    "Tusky/24.1 Android/13",
    "Ivory/1.9 (iPad; iPadOS 17.3)",
];

const CRAWLER_UA: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

const USERS: &[&str] = &[
    "alice", "bob", "chen", "dana", "emeka", "farah", "gus", "hana", "ivan", "jo", "kai", "lena",
    "mo", "nia", "oskar", "pia", "quinn", "rafa", "sol", "tove",
];

const TAGS: &[&str] = &[
    "photography",
    "rust",
    "cats",
    "news",
    "music",
    "gardening",
    "art",
    "climate",
    "football",
    "books",
];

const EXTERNAL_REFERERS: &[&str] = &[
    "-",
    "-",
    "https://www.google.com/",
    "https://duckduckgo.com/",
    "https://news.ycombinator.example/item?id=39211",
    "https://t.co/Xa81kPz",
];

/// What kind of ordinary client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Browser,
    App,
    Crawler,
    Admin,
    Prober,
}

struct Client {
    /// The address as each server logs it.
    ip: [String; 2],
    ua: &'static str,
    user: String,
    kind: Kind,
    home: usize,
}

fn random_ipv4(rng: &mut Rng) -> String {
    // 198.18.0.0/15, with a little of 192.0.2.0/24 and 203.0.113.0/24.
    match rng.below(20) {
        0 => format!("192.0.2.{}", 20 + rng.below(230)),
        1 => format!("203.0.113.{}", 100 + rng.below(150)),
        _ => format!(
            "198.{}.{}.{}",
            18 + rng.below(2),
            rng.below(256),
            1 + rng.below(254)
        ),
    }
}

fn random_ipv6(rng: &mut Rng) -> String {
    format!(
        "2001:db8:{:x}:{:x}::{:x}",
        rng.below(0x1_0000),
        rng.below(0x100),
        1 + rng.below(0xffff)
    )
}

fn clients(rng: &mut Rng, n: usize) -> Vec<Client> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let home = if rng.chance(550) { FRA1 } else { NYC1 };
        let kind = match i {
            0 => Kind::Crawler,
            1..=3 => Kind::Prober,
            4..=9 => Kind::Admin,
            _ if rng.chance(250) => Kind::App,
            _ => Kind::Browser,
        };
        let (ip, mapped) = if rng.chance(180) {
            (random_ipv6(rng), false)
        } else {
            (random_ipv4(rng), rng.chance(15))
        };
        // nyc1 logs a few IPv4 clients through its dual-stack listener.
        let nyc = if mapped {
            format!("::ffff:{ip}")
        } else {
            ip.clone()
        };
        let ua = match kind {
            Kind::Browser | Kind::Admin => *rng.pick(BROWSER_UAS),
            Kind::App => *rng.pick(APP_UAS),
            Kind::Crawler => CRAWLER_UA,
            Kind::Prober => "Mozilla/5.0 zgrab/0.x",
        };
        let user = match kind {
            Kind::Admin => format!("mod-{}", USERS[i % USERS.len()]),
            _ => "-".to_string(),
        };
        out.push(Client {
            ip: [ip, nyc],
            ua,
            user,
            kind,
            home,
        });
    }
    out
}

/// Relative activity of each local hour (people sleep at night).
const HOURLY: [u64; 24] = [
    30, 18, 10, 6, 5, 6, 12, 25, 45, 60, 65, 70, 75, 72, 68, 66, 70, 78, 88, 95, 100, 90, 70, 48,
];

/// A page a browser or app shows: its target, status, size, and whether it pulls assets.
struct Page {
    target: String,
    status: u16,
    bytes: u64,
}

fn random_post(rng: &mut Rng) -> u64 {
    111_700_000_000_000_000 + rng.below(120_000_000_000_000)
}

fn browser_page(rng: &mut Rng) -> Page {
    let user = rng.pick(USERS);
    let (target, status, bytes) = match rng.weighted(&[12, 40, 14, 8, 6, 4, 3, 2, 2]) {
        0 => ("/".to_string(), 200, 38_000 + rng.below(9_000)),
        1 => {
            let id = random_post(rng);
            if rng.chance(25) {
                (format!("/@{user}/{id}"), 404, 1_610)
            } else {
                (format!("/@{user}/{id}"), 200, 21_000 + rng.below(30_000))
            }
        }
        2 => (format!("/@{user}"), 200, 30_000 + rng.below(25_000)),
        3 => (
            format!("/tags/{}", rng.pick(TAGS)),
            200,
            33_000 + rng.below(20_000),
        ),
        4 => ("/explore".to_string(), 200, 41_000 + rng.below(8_000)),
        5 => (
            format!("/search?q={}", rng.pick(TAGS)),
            200,
            27_000 + rng.below(9_000),
        ),
        // Old-style links are redirected.
        6 => (format!("/users/{user}"), 301, 162),
        7 => ("/about/".to_string(), 301, 162),
        _ => ("/about".to_string(), 200, 12_400),
    };
    Page {
        target,
        status,
        bytes,
    }
}

fn app_call(rng: &mut Rng) -> Page {
    let (target, bytes) = match rng.weighted(&[40, 20, 20, 10, 10]) {
        0 => (
            "/api/v1/timelines/home?limit=20".to_string(),
            18_000 + rng.below(12_000),
        ),
        1 => (
            "/api/v1/notifications?limit=15".to_string(),
            6_000 + rng.below(9_000),
        ),
        2 => (
            format!("/api/v1/statuses/{}/context", random_post(rng)),
            2_000 + rng.below(15_000),
        ),
        3 => (
            format!("/api/v1/statuses/{}", random_post(rng)),
            1_500 + rng.below(2_500),
        ),
        _ => (
            format!("/api/v1/accounts/{}/statuses", 100_000 + rng.below(90_000)),
            12_000 + rng.below(20_000),
        ),
    };
    Page {
        target,
        status: 200,
        bytes,
    }
}

fn media_path(rng: &mut Rng) -> String {
    let ext = *rng.pick(&["png", "jpg", "jpeg", "webp", "gif"]);
    format!(
        "/system/media_attachments/files/{:03}/{:03}/{:03}/small/{:016x}.{ext}",
        rng.below(1000),
        rng.below(1000),
        rng.below(1000),
        rng.next_u64()
    )
}

fn avatar_path(rng: &mut Rng) -> String {
    format!(
        "/system/accounts/avatars/000/{:03}/{:03}/original/{:08x}.png",
        rng.below(1000),
        rng.below(1000),
        rng.next_u64() as u32
    )
}

/// The ordinary traffic of the sample: browsing sessions, apps, a polite crawler,
/// moderators, vulnerability probes, and a few damaged lines; sorted by time.
fn background(seed: u64, n: usize, start: i64, end: i64) -> Vec<Event> {
    let mut rng = Rng::new(seed, 1);
    let clients = clients(&mut rng, n);
    let days = (end - start) / 86_400;
    let mut events = Vec::new();
    let mut buf = Vec::new();
    let mut emit = |events: &mut Vec<Event>,
                    rng: &mut Rng,
                    c: &Client,
                    server: usize,
                    t: i64,
                    method: &str,
                    target: &str,
                    status: u16,
                    bytes: u64,
                    referer: &str| {
        // A line is written when the response ends; its time is when the request began.
        let took = if rng.chance(900) { 0 } else { rng.range(1, 4) };
        buf.clear();
        push_combined(
            &mut buf,
            &Req {
                ip: &c.ip[server],
                user: &c.user,
                time: t,
                offset_min: SERVERS[server].offset_min,
                method,
                target,
                status,
                bytes,
                referer,
                ua: c.ua,
            },
        );
        if (start..end).contains(&(t + took)) {
            events.push(Event {
                t: t + took,
                server,
                line: buf.clone(),
            });
        }
    };
    for c in &clients {
        let sessions = match c.kind {
            Kind::Crawler => (4 * days as u64 * n as u64).div_ceil(3000),
            Kind::Prober => 2,
            Kind::Admin => 2 + rng.below(5),
            _ => *rng.pick(&[1, 1, 1, 1, 1, 2, 2, 3, 4, 6]),
        };
        for _ in 0..sessions {
            let server = if rng.chance(920) { c.home } else { 1 - c.home };
            let off = SERVERS[c.home].offset_min as i64 * 60;
            // A local hour by its activity, on a random day of the extract.
            let hour = match c.kind {
                Kind::Crawler | Kind::Prober => rng.below(24) as usize,
                _ => rng.weighted(&HOURLY),
            };
            let day = start + rng.below(days as u64 + 1) as i64 * 86_400;
            let mut t = day - off + hour as i64 * 3600 + rng.range(0, 3600);
            match c.kind {
                Kind::Crawler => {
                    // Two hours of one fetch every few seconds, robots.txt first.
                    emit(
                        &mut events,
                        &mut rng,
                        c,
                        server,
                        t,
                        "GET",
                        "/robots.txt",
                        200,
                        118,
                        "-",
                    );
                    let stop = t + 2 * 3600;
                    while t < stop {
                        t += rng.range(3, 12);
                        let p = browser_page(&mut rng);
                        emit(
                            &mut events,
                            &mut rng,
                            c,
                            server,
                            t,
                            "GET",
                            &p.target,
                            p.status,
                            p.bytes,
                            "-",
                        );
                    }
                }
                Kind::Prober => {
                    for target in [
                        "/wp-login.php",
                        "/.env",
                        "/xmlrpc.php",
                        "/.git/config",
                        "/cgi-bin/luci/;stok=/locale",
                        "/phpmyadmin/index.php",
                        "/api/v1/instance/../../../etc/passwd",
                    ] {
                        t += rng.range(0, 2);
                        emit(
                            &mut events,
                            &mut rng,
                            c,
                            server,
                            t,
                            "GET",
                            target,
                            404,
                            1_610,
                            "-",
                        );
                    }
                    // A TLS handshake on the plain-HTTP port: nginx logs it, status 400.
                    emit(
                        &mut events,
                        &mut rng,
                        c,
                        server,
                        t,
                        "\\x16\\x03\\x01\\x02\\x00\\x01\\x00\\x01\\xFC\\x03\\x03",
                        "",
                        400,
                        157,
                        "-",
                    );
                }
                Kind::Admin => {
                    for _ in 0..3 + rng.below(10) {
                        t += rng.range(4, 90);
                        let target = match rng.below(4) {
                            0 => "/admin/reports".to_string(),
                            1 => format!("/admin/reports/{}", 9_000 + rng.below(900)),
                            2 => format!("/admin/accounts/{}", 100_000 + rng.below(90_000)),
                            _ => "/admin/dashboard".to_string(),
                        };
                        let size = 9_000 + rng.below(20_000);
                        emit(
                            &mut events,
                            &mut rng,
                            c,
                            server,
                            t,
                            "GET",
                            &target,
                            200,
                            size,
                            "-",
                        );
                        if rng.chance(200) {
                            let action =
                                format!("/admin/reports/{}/resolve", 9_000 + rng.below(900));
                            emit(
                                &mut events,
                                &mut rng,
                                c,
                                server,
                                t + 5,
                                "POST",
                                &action,
                                302,
                                0,
                                "-",
                            );
                        }
                    }
                }
                Kind::App => {
                    for _ in 0..1 + rng.below(15) {
                        t += rng.range(2, 120);
                        let p = app_call(&mut rng);
                        emit(
                            &mut events,
                            &mut rng,
                            c,
                            server,
                            t,
                            "GET",
                            &p.target,
                            p.status,
                            p.bytes,
                            "-",
                        );
                        for _ in 0..rng.below(4) {
                            let m = media_path(&mut rng);
                            let size = 20_000 + rng.below(200_000);
                            emit(
                                &mut events,
                                &mut rng,
                                c,
                                server,
                                t + 1,
                                "GET",
                                &m,
                                200,
                                size,
                                "-",
                            );
                        }
                    }
                }
                Kind::Browser => {
                    let mut referer = (*rng.pick(EXTERNAL_REFERERS)).to_string();
                    let cached = rng.chance(400);
                    for view in 0..1 + rng.below(8) {
                        if view > 0 {
                            t += rng.range(3, 150);
                        }
                        let p = browser_page(&mut rng);
                        emit(
                            &mut events,
                            &mut rng,
                            c,
                            server,
                            t,
                            "GET",
                            &p.target,
                            p.status,
                            p.bytes,
                            &referer,
                        );
                        if p.status != 200 {
                            if p.status == 301 {
                                let to = p.target.trim_end_matches('/').replace("/users/", "/@");
                                let size = 12_000 + rng.below(20_000);
                                emit(
                                    &mut events,
                                    &mut rng,
                                    c,
                                    server,
                                    t,
                                    "GET",
                                    &to,
                                    200,
                                    size,
                                    &referer,
                                );
                            }
                            continue;
                        }
                        let page_url = format!("{HOST}{}", p.target);
                        if view == 0 {
                            for (asset, size) in [
                                ("/packs/css/common-3f9a1c2e.css", 48_213),
                                ("/packs/js/common-9b2e7d41.js", 211_337),
                                ("/packs/js/locale_en-0c1d2e3f.js", 18_002),
                                ("/favicon.ico", 5_430),
                            ] {
                                let (status, bytes) = if cached { (304, 0) } else { (200, size) };
                                emit(
                                    &mut events,
                                    &mut rng,
                                    c,
                                    server,
                                    t,
                                    "GET",
                                    asset,
                                    status,
                                    bytes,
                                    &page_url,
                                );
                            }
                        }
                        for _ in 0..rng.below(4) {
                            let a = avatar_path(&mut rng);
                            let (status, bytes) = if cached && rng.chance(500) {
                                (304, 0)
                            } else {
                                (200, 3_000 + rng.below(40_000))
                            };
                            emit(
                                &mut events,
                                &mut rng,
                                c,
                                server,
                                t + 1,
                                "GET",
                                &a,
                                status,
                                bytes,
                                &page_url,
                            );
                        }
                        for _ in 0..rng.below(3) {
                            let m = media_path(&mut rng);
                            let size = 30_000 + rng.below(300_000);
                            emit(
                                &mut events,
                                &mut rng,
                                c,
                                server,
                                t + 1,
                                "GET",
                                &m,
                                200,
                                size,
                                &page_url,
                            );
                        }
                        if rng.chance(80) {
                            // Liking a post; the API answers with the post.
                            let like =
                                format!("/api/v1/statuses/{}/favourite", random_post(&mut rng));
                            emit(
                                &mut events,
                                &mut rng,
                                c,
                                server,
                                t + 2,
                                "POST",
                                &like,
                                200,
                                2_900,
                                &page_url,
                            );
                        }
                        referer = page_url;
                    }
                }
            }
        }
    }
    // Damaged lines: an error-log line written into the access log by a misconfigured
    // include, and a line cut short when a worker died mid-write.
    let t = start + 86_400 + 11 * 3600 + 1_234;
    let mut err = Vec::new();
    push_error_log_line(&mut err, t, SERVERS[NYC1].offset_min);
    events.push(Event {
        t,
        server: NYC1,
        line: err,
    });
    let t = start + 2 * 86_400 + 15 * 3600 + 321;
    let mut cut = Vec::new();
    push_combined(
        &mut cut,
        &Req {
            ip: "198.18.7.41",
            user: "-",
            time: t,
            offset_min: SERVERS[FRA1].offset_min,
            method: "GET",
            target: "/@lena/111790000000004242",
            status: 200,
            bytes: 23_456,
            referer: "-",
            ua: BROWSER_UAS[0],
        },
    );
    cut.truncate(60);
    cut.push(b'\n');
    events.push(Event {
        t,
        server: FRA1,
        line: cut,
    });
    events.sort_by_key(|e| e.t);
    events
}

/// An nginx error-log line: not an access-log line at all.
fn push_error_log_line(buf: &mut Vec<u8>, t: i64, offset_min: i32) {
    let local = t + offset_min as i64 * 60;
    let (y, m, d) = civil_from_days(local.div_euclid(86_400));
    let s = local.rem_euclid(86_400);
    buf.extend_from_slice(
        format!(
            "{y:04}/{m:02}/{d:02} {:02}:{:02}:{:02} [error] 2291#2291: *8812273 upstream timed out (110: Connection timed out) while reading response header from upstream, client: 198.18.44.9, server: example.social, request: \"GET /api/v1/timelines/home HTTP/1.1\", upstream: \"http://127.0.0.1:3000/api/v1/timelines/home\", host: \"example.social\"\n",
            s / 3600,
            s / 60 % 60,
            s % 60
        )
        .as_bytes(),
    );
}

/// How many lines the sample deliberately damages.
pub const SAMPLE_MALFORMED: usize = 2;

// ---------------------------------------------------------------------------------
// The bench preset

#[derive(Debug, Clone, Copy)]
pub struct BenchSpec {
    pub files: usize,
    pub lines: u64,
    pub compression: Compression,
}

/// Distinct ordinary clients of a bench set.
const BENCH_CLIENTS: usize = 100_000;

/// A heavy scraper of the bench set: its share of every file's lines while active.
struct BenchScraper {
    ip: &'static str,
    ua: &'static str,
    /// Active from/until, in seconds from the start of the set.
    from: i64,
    until: i64,
    /// Per mille of the lines while active.
    share: u64,
}

const BENCH_SCRAPERS: [BenchScraper; 3] = [
    BenchScraper {
        ip: "198.51.100.23",
        ua: "FeedHarvester/2.1 (+https://harvester.example/bot)",
        from: 6 * 3600,
        until: 30 * 3600,
        share: 300,
    },
    BenchScraper {
        ip: "2001:db8:4d2:7::1b",
        ua: "Go-http-client/1.1",
        from: 20 * 3600,
        until: 44 * 3600,
        share: 280,
    },
    BenchScraper {
        ip: "203.0.113.77",
        ua: "python-requests/2.31.0",
        from: 0,
        until: 48 * 3600,
        share: 40,
    },
];

/// The ordinary clients of a bench set, and Zipf (s = 1) weights over them.
struct Population {
    ips: Vec<String>,
    uas: Vec<&'static str>,
    /// Cumulative weights `sum 1/k`, scaled to integers.
    cumulative: Vec<u64>,
}

impl Population {
    fn new(seed: u64) -> Population {
        let mut rng = Rng::new(seed, 7);
        let mut ips = Vec::with_capacity(BENCH_CLIENTS);
        let mut uas = Vec::with_capacity(BENCH_CLIENTS);
        for i in 0..BENCH_CLIENTS as u64 {
            if rng.chance(150) {
                ips.push(format!(
                    "2001:db8:{:x}:{:x}::{:x}",
                    i >> 8,
                    i & 0xff,
                    1 + rng.below(0xfff)
                ));
            } else {
                // A distinct address of 198.18.0.0/15 for each client.
                let a = (i * 0x9E37 + 1) % 131_071;
                ips.push(format!(
                    "198.{}.{}.{}",
                    18 + (a >> 16),
                    (a >> 8) & 0xff,
                    a & 0xff
                ));
            }
            uas.push(if rng.chance(200) {
                *rng.pick(APP_UAS)
            } else {
                *rng.pick(BROWSER_UAS)
            });
        }
        let mut cumulative = Vec::with_capacity(BENCH_CLIENTS);
        let mut acc = 0u64;
        for k in 1..=BENCH_CLIENTS as u64 {
            acc += (1u64 << 40) / k;
            cumulative.push(acc);
        }
        Population {
            ips,
            uas,
            cumulative,
        }
    }

    fn draw(&self, rng: &mut Rng) -> usize {
        let x = rng.below(*self.cumulative.last().expect("clients exist"));
        self.cumulative.partition_point(|&c| c <= x)
    }
}

/// Writes `spec.files` files of `spec.lines` lines each into `out`, in parallel.
pub fn bench(out: &Path, seed: u64, spec: &BenchSpec) -> Result<Vec<Written>, String> {
    fs::create_dir_all(out).map_err(|e| io_err(out, e))?;
    let pop = Population::new(seed);
    let ext = match spec.compression {
        Compression::Gzip => ".log.gz",
        Compression::Zstd => ".log.zst",
        Compression::Plain => ".log",
    };
    (0..spec.files)
        .into_par_iter()
        .map(|i| {
            let path = out.join(format!("bench-{i:03}{ext}"));
            bench_file(path, seed, i, spec, &pop)
        })
        .collect()
}

fn bench_file(
    path: PathBuf,
    seed: u64,
    index: usize,
    spec: &BenchSpec,
    pop: &Population,
) -> Result<Written, String> {
    const OFFSETS: [i32; 6] = [0, 60, -300, 540, -480, 330];
    let offset_min = OFFSETS[index % OFFSETS.len()];
    let start = utc_midnight(2026, 3, 2) + (index as i64 % 7) * 97;
    let span = 2 * 86_400i64;
    let mut rng = Rng::new(seed, 1_000 + index as u64);
    let mut sink = Sink::create(path, spec.compression, Effort::Fast)?;
    let mut buf = Vec::with_capacity(1 << 17);
    let mut target = String::with_capacity(128);
    for k in 0..spec.lines {
        let base = (k as u128 * span as u128 / spec.lines.max(1) as u128) as i64;
        let rel = (base + rng.range(-2, 3)).max(0);
        let t = start + rel;
        let roll = rng.below(1000);
        let mut acc = 0;
        let scraper = BENCH_SCRAPERS.iter().find(|s| {
            if (s.from..s.until).contains(&rel) {
                acc += s.share;
                roll < acc
            } else {
                false
            }
        });
        target.clear();
        let req = if let Some(s) = scraper {
            use std::fmt::Write as _;
            let _ = write!(
                target,
                "/api/v1/statuses/{}",
                111_800_000_000_000_000 + rng.below(1 << 40)
            );
            Req {
                ip: s.ip,
                user: "-",
                time: t,
                offset_min,
                method: "GET",
                target: &target,
                status: if rng.chance(30) { 404 } else { 200 },
                bytes: 1_500 + rng.below(2_500),
                referer: "-",
                ua: s.ua,
            }
        } else {
            let c = pop.draw(&mut rng);
            let (status, bytes) = match rng.below(100) {
                0..=49 => {
                    let p = browser_page(&mut rng);
                    target.push_str(&p.target);
                    (p.status, p.bytes)
                }
                50..=79 => {
                    target.push_str(&media_path(&mut rng));
                    if rng.chance(200) {
                        (304, 0)
                    } else {
                        (200, 20_000 + rng.below(200_000))
                    }
                }
                80..=94 => {
                    let p = app_call(&mut rng);
                    target.push_str(&p.target);
                    (p.status, p.bytes)
                }
                _ => {
                    target.push_str("/packs/js/common-9b2e7d41.js");
                    (304, 0)
                }
            };
            Req {
                ip: &pop.ips[c],
                user: "-",
                time: t,
                offset_min,
                method: "GET",
                target: &target,
                status,
                bytes,
                referer: if c.is_multiple_of(3) {
                    "-"
                } else {
                    "https://example.social/explore"
                },
                ua: pop.uas[c],
            }
        };
        push_combined(&mut buf, &req);
        if buf.len() >= 1 << 16 {
            sink.write(&buf)?;
            buf.clear();
        }
    }
    sink.write(&buf)?;
    sink.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::format::clf::Clf;
    use crate::input::format::LineFormat;
    use std::io::Read;

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

    fn contents(written: &[Written]) -> Vec<(String, Vec<u8>)> {
        written
            .iter()
            .map(|w| {
                let name = w.path.file_name().unwrap().to_string_lossy().into_owned();
                (name, fs::read(&w.path).unwrap())
            })
            .collect()
    }

    #[test]
    fn clf_time_and_days_round_trip() {
        let mut b = Vec::new();
        push_clf_time(
            &mut b,
            utc_midnight(2026, 3, 4) + 23 * 3600 + 30 * 60 + 5,
            60,
        );
        assert_eq!(b, b"05/Mar/2026:00:30:05 +0100");
        b.clear();
        push_clf_time(&mut b, utc_midnight(2024, 2, 29) + 3 * 3600, -300);
        assert_eq!(b, b"28/Feb/2024:22:00:00 -0500");
        for day in [-800_000i64, -1, 0, 59, 19_000, 20_513, 2_000_000] {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
    }

    #[test]
    fn same_seed_same_bytes_different_seed_different_bytes() {
        let (a, b, c) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        let wa = sample(a.path(), 7, &SampleSpec::MINI).unwrap();
        let wb = sample(b.path(), 7, &SampleSpec::MINI).unwrap();
        let wc = sample(c.path(), 8, &SampleSpec::MINI).unwrap();
        assert_eq!(contents(&wa), contents(&wb));
        assert_ne!(contents(&wa), contents(&wc));
        let spec = BenchSpec {
            files: 2,
            lines: 3_000,
            compression: Compression::Zstd,
        };
        let ba = bench(a.path(), 7, &spec).unwrap();
        let bb = bench(b.path(), 7, &spec).unwrap();
        let bc = bench(c.path(), 8, &spec).unwrap();
        assert_eq!(contents(&ba), contents(&bb));
        assert_ne!(contents(&ba), contents(&bc));
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
