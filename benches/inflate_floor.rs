//! The floor under `scan` on gzip input: each file inflated with the same inflater
//! (flate2 over zlib-rs, gzip CRC checked) and its lines counted, and nothing else
//! (no SHA-256, no parse), the files shared by `--threads N` threads as `scan` shares
//! them. `scripts/bench.sh` times it beside `scan` and the decompressors, so that what
//! the parse costs on top of inflating, and what bounds the targets set against
//! `libdeflate-gunzip`, are measured in the same rounds.
//!
//! `cargo bench --bench inflate_floor -- [--threads N] FILE...` prints the lines.

use std::io::Read;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

fn main() {
    let mut threads = 2;
    let mut files = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            // What `cargo bench` passes to a bench without the harness.
            "--bench" => {}
            "--threads" => {
                threads = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("--threads N")
            }
            _ => files.push(a),
        }
    }
    let next = AtomicUsize::new(0);
    let lines = AtomicU64::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                while let Some(path) = files.get(next.fetch_add(1, Ordering::Relaxed)) {
                    lines.fetch_add(count_lines(path), Ordering::Relaxed);
                }
            });
        }
    });
    println!("{}", lines.into_inner());
}

fn count_lines(path: &str) -> u64 {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut gz =
        flate2::read::MultiGzDecoder::new(std::io::BufReader::with_capacity(1 << 16, file));
    // The size of `scan`'s inflate blocks.
    let mut buf = vec![0u8; 1 << 20];
    let mut lines = 0;
    loop {
        let n = gz.read(&mut buf).unwrap_or_else(|e| panic!("{path}: {e}"));
        if n == 0 {
            return lines;
        }
        lines += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
    }
}
