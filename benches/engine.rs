//! Criterion benches: the parser (lines/s) and the window scan (buckets/s) on
//! 1k / 100k / 1M-element inputs. `cargo bench --bench engine`.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use scrapemeter::engine::aggregate::{Aggregate, Bucket};
use scrapemeter::engine::window;
use scrapemeter::input::client::{key_into, ClientKind};
use scrapemeter::input::format::clf::Clf;
use scrapemeter::input::format::LineFormat;
use scrapemeter::input::post_weight::default_weight;

const SIZES: [usize; 3] = [1_000, 100_000, 1_000_000];

/// Deterministic combined lines: a few hundred clients, posts, assets and errors.
fn combined_lines(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n * 200);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let ip = format!("203.0.{}.{}", (x >> 8) % 4, x % 250);
        let secs = i / 20;
        let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
        let path = match x % 10 {
            0 => "/static/app.css".to_string(),
            1 => "/img/logo.png".to_string(),
            _ => format!("/post/{}", x % 100_000),
        };
        let status = [200, 200, 200, 304, 404][(x % 5) as usize];
        out.extend_from_slice(
            format!(
                "{ip} - - [10/Oct/2026:{h:02}:{m:02}:{s:02} +0200] \"GET {path} HTTP/1.1\" {status} 5120 \"https://example.com/\" \"Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0\"\n"
            )
            .as_bytes(),
        );
    }
    out
}

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse_combined");
    for n in SIZES {
        let text = combined_lines(n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &text, |b, text| {
            b.iter(|| {
                let mut posts = 0u64;
                for line in text.split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
                    if let Ok(req) = Clf.parse(line) {
                        posts += default_weight(&req);
                    }
                }
                black_box(posts)
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("parse_key_aggregate");
    for n in SIZES {
        let text = combined_lines(n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &text, |b, text| {
            b.iter(|| {
                let mut agg = Aggregate::new();
                let mut key = Vec::new();
                for line in text.split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
                    if let Ok(req) = Clf.parse(line) {
                        key_into(&ClientKind::Ip, &req, &mut key);
                        agg.add(&key, req.time, default_weight(&req), 1);
                    }
                }
                black_box(agg.len())
            })
        });
    }
    group.finish();
}

fn windows(c: &mut Criterion) {
    let mut group = c.benchmark_group("window_scan");
    for n in SIZES {
        // One client, a bucket a second with a post in most.
        let buckets: Vec<Bucket> = (0..n as i64)
            .map(|i| Bucket {
                t: i * 1_000_000,
                posts: (i % 7 != 0) as u64,
                requests: 1,
            })
            .collect();
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &buckets, |b, buckets| {
            b.iter(|| {
                let peak = window::peak(buckets, 86_400_000_000);
                let billed = window::billed_rolling(buckets, 86_400_000_000, 1_000);
                black_box((peak, billed.len()))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, parse, windows);
criterion_main!(benches);
