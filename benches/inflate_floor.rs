//! Floors under `scan` on gzip input: each file inflated with the same inflater
//! (flate2 over zlib-rs, gzip CRC checked; a `.zst` file decompressed with the zstd
//! crate, as `scan` does), the files shared by `--threads N` threads
//! as `scan` shares them, and per line only:
//!
//! - `--mode lines` (default): the line counted;
//! - `--mode walk`: the fields `scan` needs found the cheapest way a combined line
//!   allows (client up to the first space, the `%t` digits after `[`, the request's two
//!   quotes, the status after them), no validation, no time zone, nothing kept;
//! - `--mode count`: that walk, and each (client, second) counted in a hash map of the
//!   file's (the client by a 64-bit hash of its text: no key kept, no series, no
//!   weights) — the plain design `scan`'s aggregate is measured against, not a floor;
//! - `--mode aggregate`: that walk, and each request added to `scan`'s own
//!   [`Aggregate`] (the client by its text, as `scan` keys a plain IPv4; one aggregate
//!   a file, merged into one at the end, as `scan` does): the floor of `scan`'s
//!   counting design, with no validation, time zone, weights, digest or record.
//!
//! `scripts/bench.sh` times them beside `scan` and the decompressors, so that what
//! `scan` costs on top of inflating, and what bounds the targets set against
//! `libdeflate-gunzip`, are measured in the same rounds. Not a parser: it is wrong on
//! anything but well-formed combined lines, and is only timed.
//!
//! With `--split`, the files are read one after another, each inflated on one thread
//! and its blocks shared by `--threads N` workers, as `scan` reads one file.
//!
//! `cargo bench --bench inflate_floor -- [--threads N] [--mode M] [--split] FILE...` prints a
//! checksum (lines, or fields, or each file's pairs summed, or the clients counted).

use rustc_hash::{FxHashMap, FxHasher};
use scrapemeter::engine::aggregate::Aggregate;
use std::hash::Hasher;
use std::io::Read;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Lines,
    Walk,
    Count,
    Aggregate,
}

fn main() {
    let mut threads = 2;
    let mut mode = Mode::Lines;
    let mut split = false;
    let mut files = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            // What `cargo bench` passes to a bench without the harness.
            "--bench" => {}
            "--split" => split = true,
            "--threads" => {
                threads = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("--threads N")
            }
            "--mode" => {
                mode = match args.next().as_deref() {
                    Some("lines") => Mode::Lines,
                    Some("walk") => Mode::Walk,
                    Some("count") => Mode::Count,
                    Some("aggregate") => Mode::Aggregate,
                    m => panic!("--mode lines|walk|count|aggregate, not {m:?}"),
                }
            }
            _ => files.push(a),
        }
    }
    let sum = AtomicU64::new(0);
    let total = Mutex::new(Aggregate::new());
    if split {
        for path in &files {
            sum.fetch_add(read_split(path, mode, threads, &total), Ordering::Relaxed);
        }
    } else {
        read_side_by_side(&files, threads, mode, &sum, &total);
    }
    let clients = total.into_inner().unwrap().len() as u64;
    println!("{}", sum.into_inner() + clients);
}

/// The files shared by `threads` threads, each file read by one.
fn read_side_by_side(
    files: &[String],
    threads: usize,
    mode: Mode,
    sum: &AtomicU64,
    total: &Mutex<Aggregate>,
) {
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                while let Some(path) = files.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let mut counter = Counter::new(mode);
                    inflate_blocks(path, &mut |block, cut| counter.block(&block[..cut]));
                    counter.finish(sum, total);
                }
            });
        }
    });
}

/// One file with its blocks shared by `workers` threads, each counting on its own
/// (as `scan` shares one file among its workers); the file is inflated on the calling
/// thread. Blocks are handed over whole and their buffers come back for reuse, as
/// `scan`'s framer does, so that no block is copied.
fn read_split(path: &str, mode: Mode, workers: usize, total: &Mutex<Aggregate>) -> u64 {
    let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<(Vec<u8>, usize)>(4);
    let (free_tx, free_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let full_rx = Mutex::new(full_rx);
    let sum = AtomicU64::new(0);
    std::thread::scope(|s| {
        for _ in 0..workers {
            let (free_tx, full_rx, sum) = (free_tx.clone(), &full_rx, &sum);
            s.spawn(move || {
                let mut counter = Counter::new(mode);
                while let Ok((block, cut)) = full_rx.lock().unwrap().recv() {
                    counter.block(&block[..cut]);
                    let _ = free_tx.send(block);
                }
                counter.finish(sum, total);
            });
        }
        inflate_blocks(path, &mut |block, cut| {
            let spare = free_rx.try_recv().unwrap_or_else(|_| vec![0; block.len()]);
            full_tx
                .send((std::mem::replace(block, spare), cut))
                .unwrap();
        });
        drop(full_tx);
    });
    sum.into_inner()
}

/// Inflates `path` and hands `each` a buffer whose first `cut` bytes are whole lines.
/// `each` may keep the buffer and leave another of the same length in its place: the
/// partial line after `cut` is kept aside and put at the start of whichever is there.
fn inflate_blocks(path: &str, each: &mut dyn FnMut(&mut Vec<u8>, usize)) {
    const BLOCK: usize = 1 << 20;
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let raw = std::io::BufReader::with_capacity(1 << 16, file);
    // zstd files by their name (a bench, not a reader: `scan` goes by magic bytes).
    let mut gz: Box<dyn Read> = if path.ends_with(".zst") {
        Box::new(zstd::stream::read::Decoder::with_buffer(raw).expect("zstd"))
    } else {
        Box::new(flate2::read::MultiGzDecoder::new(raw))
    };
    let mut buf = vec![0u8; 2 * BLOCK];
    let mut tail = Vec::new();
    let mut have = 0;
    loop {
        if have == buf.len() {
            buf.resize(2 * buf.len(), 0);
        }
        let n = gz
            .read(&mut buf[have..])
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        let end = have + n;
        let cut = match memchr::memrchr(b'\n', &buf[..end]) {
            Some(i) if n == 0 || end >= BLOCK => i + 1,
            _ if n == 0 => return,
            _ => {
                have = end;
                continue;
            }
        };
        tail.clear();
        tail.extend_from_slice(&buf[cut..end]);
        each(&mut buf, cut);
        if buf.len() < tail.len() {
            buf.resize(2 * BLOCK.max(tail.len()), 0);
        }
        buf[..tail.len()].copy_from_slice(&tail);
        have = tail.len();
        if n == 0 && have == 0 {
            return;
        }
    }
}

/// What one thread counts of the blocks it is given.
struct Counter {
    mode: Mode,
    pairs: FxHashMap<(u64, u32), u32>,
    aggregate: Aggregate,
    sum: u64,
}

impl Counter {
    fn new(mode: Mode) -> Counter {
        Counter {
            mode,
            pairs: FxHashMap::default(),
            aggregate: Aggregate::new(),
            sum: 0,
        }
    }

    fn block(&mut self, block: &[u8]) {
        if self.mode == Mode::Lines {
            self.sum += memchr::memchr_iter(b'\n', block).count() as u64;
            return;
        }
        let mut start = 0;
        for nl in memchr::memchr_iter(b'\n', block) {
            let line = &block[start..nl];
            if let Some((client, second, status)) = walk(line) {
                match self.mode {
                    Mode::Count => *self.pairs.entry((client, second)).or_default() += 1,
                    Mode::Aggregate => {
                        let key = &line[..memchr::memchr(b' ', line).unwrap_or(0)];
                        self.aggregate.add(key, second as i64 * 1_000_000, 1, 1);
                    }
                    _ => {
                        self.sum = self
                            .sum
                            .wrapping_add(client ^ second as u64 ^ status as u64)
                    }
                }
            }
            start = nl + 1;
        }
    }

    /// Adds the checksum (lines, or fields, or the distinct pairs counted) to `sum`,
    /// and the aggregate to `total`.
    fn finish(self, sum: &AtomicU64, total: &Mutex<Aggregate>) {
        sum.fetch_add(self.sum + self.pairs.len() as u64, Ordering::Relaxed);
        if self.mode == Mode::Aggregate {
            total.lock().unwrap().merge(self.aggregate);
        }
    }
}

/// (hash of the client, second of the month, status) of a combined line.
#[inline]
fn walk(line: &[u8]) -> Option<(u64, u32, u16)> {
    let space = memchr::memchr(b' ', line)?;
    let mut h = FxHasher::default();
    h.write(&line[..space]);
    let open = space + memchr::memchr(b'[', &line[space..])?;
    let t = line.get(open + 1..open + 21)?;
    let digit = |i: usize| t[i].wrapping_sub(b'0') as u32;
    let second = (digit(0) * 10 + digit(1)) * 86_400
        + (digit(12) * 10 + digit(13)) * 3_600
        + (digit(15) * 10 + digit(16)) * 60
        + digit(18) * 10
        + digit(19);
    let request = open + 28 + memchr::memchr(b'"', line.get(open + 28..)?)?;
    let end = request + 1 + memchr::memchr(b'"', &line[request + 1..])?;
    let s = line.get(end + 2..end + 5)?;
    let status = s
        .iter()
        .fold(0u16, |n, &c| n * 10 + c.wrapping_sub(b'0') as u16);
    Some((h.finish(), second, status))
}
