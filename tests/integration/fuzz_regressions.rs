//! Inputs the fuzzers (fuzz/, `scripts/fuzz.sh`) found, kept as tests so that normal
//! `cargo test` replays them (CI does not run the fuzzers).
//!
//! Each saved input lives in `tests/data/fuzz/<target>/<name>` and is fed to the same
//! code its fuzz target drives (the functions below mirror `fuzz/fuzz_targets/*.rs`).
//! `every_saved_input_runs_clean` replays them all; the named tests say what each one
//! broke and check the fixed behaviour.

use scrapemeter::config::{Config, Overrides, SettingsFile};
use scrapemeter::engine::aggregate::Aggregate;
use scrapemeter::engine::time::{format_rfc3339, parse_clf_time, parse_duration, parse_rfc3339};
use scrapemeter::input::client::{ClientKind, Keyer};
use scrapemeter::input::decompress;
use scrapemeter::input::format::{FieldSet, FormatChoice, JsonFields, LineFormat, Request};
use scrapemeter::input::framing::{for_each_line, Frame, MAX_LINE};
use scrapemeter::input::orgs::Orgs;
use scrapemeter::input::rules::RuleSet;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;

/// Counts the bytes allocated and freed on each thread, to bound what a scan holds.
struct PerThread;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for PerThread {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = LIVE.try_with(|l| {
            l.set(l.get() + layout.size() as isize);
            let _ = PEAK.try_with(|p| p.set(p.get().max(l.get())));
        });
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let _ = LIVE.try_with(|l| l.set(l.get() - layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: PerThread = PerThread;

/// The most bytes this thread held at once while `f` ran, above what it held before.
fn peak_bytes_of(f: impl FnOnce()) -> isize {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    f();
    PEAK.with(Cell::get) - base
}

fn data(target: &str, name: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/fuzz")
        .join(target)
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn fields() -> FieldSet {
    let mut f = FieldSet::default();
    for n in [
        "http_x_api_key",
        "upstream_http_x_post_count",
        "client_port",
    ] {
        f.add(n);
    }
    f
}

/// Parses every line with `format` and keys and weighs what parses, as a scan does.
fn lines(format: &mut dyn LineFormat, input: &[u8]) {
    let mut fields = fields();
    let keyers: Vec<Keyer> = [
        ClientKind::Ip,
        ClientKind::Subnet {
            ipv4_prefix: 24,
            ipv6_prefix: 64,
        },
        ClientKind::User,
        ClientKind::Ua,
        ClientKind::Field {
            name: "http_x_api_key".into(),
        },
    ]
    .into_iter()
    .map(|k| Keyer::new(k, &mut fields))
    .collect();
    let mut buf = Vec::new();
    for line in input.split(|&c| c == b'\n') {
        if line.first() == Some(&b'#') {
            format.comment(line);
            continue;
        }
        if let Ok(req) = format.parse(line) {
            for k in &keyers {
                let _ = k.key_into(&req, &mut buf);
            }
            let _ = scrapemeter::input::post_weight::default_weight(&req);
            let _ = format_rfc3339(req.time);
        }
    }
}

fn parse_with(choice: &str, input: &[u8]) {
    let choice: FormatChoice = choice.parse().unwrap();
    for mut f in choice.candidates(&fields(), &JsonFields::default()) {
        lines(f.as_mut(), input);
    }
}

fn nginx_compile(input: &[u8]) {
    let (first, rest) = match input.iter().position(|&c| c == b'\n') {
        Some(p) => (&input[..p], &input[p + 1..]),
        None => (input, &b""[..]),
    };
    let log_format = String::from_utf8_lossy(first);
    if let Ok(mut f) = scrapemeter::input::format::nginx::Nginx::compile(&log_format, &fields()) {
        lines(&mut f, rest);
    }
}

fn default_config() -> Config {
    Config::resolve(
        vec!["-".into()],
        "out".into(),
        Overrides::default(),
        SettingsFile::default(),
    )
    .unwrap()
}

fn decompress_and_scan(input: &[u8]) {
    for cap in [MAX_LINE, 16] {
        let (_, mut text) = decompress::open(input).unwrap();
        for_each_line(&mut text, cap, |_, f| {
            if let Frame::Line(l) = f {
                assert!(l.len() <= cap);
            }
        });
    }
    let cfg = default_config().read;
    let mut agg = Aggregate::new();
    let report =
        scrapemeter::input::reader::scan_reader(&cfg, "fuzz", input, &mut (&cfg, &mut agg));
    assert_eq!(report.size, Some(input.len() as u64));
}

fn settings(input: &[u8]) {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    let Ok(mut file) = toml::from_str::<SettingsFile>(text) else {
        return;
    };
    file.rules = None;
    file.orgs = None;
    let _ = Config::resolve(vec!["-".into()], "out".into(), Overrides::default(), file);
}

fn rules(input: &[u8]) {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    let (rules, requests) = text.split_once("\n---\n").unwrap_or((text, ""));
    let mut fields = FieldSet::default();
    if let Ok(set) = RuleSet::parse(rules, "fuzz", &mut fields) {
        for line in requests.lines() {
            let mut parts = line.split(' ');
            let req = Request {
                method: parts.next().map(|m| m.as_bytes().into()),
                target: parts.next().map(|t| t.as_bytes().into()),
                status: 200,
                fields: vec![None; fields.names.len()],
                ..Request::default()
            };
            let _ = set.weight(&req);
        }
    }
}

fn orgs(input: &[u8]) {
    if let Ok(orgs) = Orgs::parse(input, "fuzz") {
        for key in input.split(|&c| c == b'\n') {
            if let Some(ip) = scrapemeter::input::client::parse_ip(key) {
                let _ = orgs.org_of_ip(ip);
            }
            let _ = orgs.by_name(key);
        }
    }
}

fn time(input: &[u8]) {
    for t in [parse_clf_time(input), parse_rfc3339(input)]
        .into_iter()
        .flatten()
    {
        let printed = format_rfc3339(t);
        if matches!(printed.len(), 20 | 27) {
            assert_eq!(parse_rfc3339(printed.as_bytes()), Some(t), "{printed}");
        }
    }
    if let Ok(text) = std::str::from_utf8(input) {
        let _ = scrapemeter::input::format::json::epoch_micros(text);
        let _ = parse_duration(text);
    }
}

/// Runs the input saved for `target` through that target's code.
fn replay(target: &str, input: &[u8]) {
    match target {
        "combined" => parse_with("combined", input),
        "vcombined" => parse_with("vcombined", input),
        "json" => parse_with("json", input),
        "alb" => parse_with("alb", input),
        "cloudfront" => parse_with("cloudfront", input),
        "nginx" => parse_with("nginx:combined", input),
        "nginx_compile" => nginx_compile(input),
        "decompress" => decompress_and_scan(input),
        "settings" => settings(input),
        "rules" => rules(input),
        "orgs" => orgs(input),
        "time" => time(input),
        other => panic!("tests/data/fuzz/{other}: no such fuzz target"),
    }
}

#[test]
fn every_saved_input_runs_clean() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz");
    let Ok(targets) = std::fs::read_dir(&root) else {
        return;
    };
    for t in targets {
        let t = t.unwrap();
        let target = t.file_name().to_string_lossy().to_string();
        for f in std::fs::read_dir(t.path()).unwrap() {
            let f = f.unwrap();
            let input = std::fs::read(f.path()).unwrap();
            replay(&target, &input);
        }
    }
}

/// A 300-byte zstd file that inflates to one 8 MiB line: streamed through the fixed line
/// buffer and reported as one over-long line, never held whole.
#[test]
fn zstd_bomb_is_one_long_line_not_a_buffer() {
    let input = data("decompress", "zstd-bomb-8mib-one-line.zst");
    let cfg = default_config().read;
    let mut agg = Aggregate::new();
    let r =
        scrapemeter::input::reader::scan_reader(&cfg, "bomb", &input[..], &mut (&cfg, &mut agg));
    assert_eq!((r.lines, r.malformed, r.requests), (1, 1, 0));
    assert!(r.complete);
    assert_eq!(r.malformed_examples[0].reason, "line longer than 1 MiB");
}

/// A gzip line of 4 MiB, then a request: the long line is skipped and the next line
/// still read.
#[test]
fn gzip_long_line_is_skipped_and_the_next_line_read() {
    let input = data("decompress", "gzip-4mib-line-then-request.gz");
    let cfg = scrapemeter::input::spec::ReadSpec {
        format: FormatChoice::Combined,
        ..default_config().read
    };
    let mut agg = Aggregate::new();
    let r =
        scrapemeter::input::reader::scan_reader(&cfg, "long", &input[..], &mut (&cfg, &mut agg));
    assert_eq!((r.lines, r.malformed, r.requests, r.posts), (2, 1, 1, 1));
    assert!(r.complete);
}

/// `--format auto` held every line before a file's 100th request, blank and comment
/// lines included: a 3 KB zstd file of 100 million newlines made the scan ask for 2 GiB
/// (libFuzzer: out-of-memory in `decompress`). Blank lines are now only counted while
/// detecting, and comments past 4 MiB too; the counts and the header replay are kept.
#[test]
fn blank_and_comment_floods_are_counted_not_held() {
    let input = data(
        "decompress",
        "blank-and-comment-flood-before-cloudfront.zst",
    );
    let cfg = default_config().read;
    let mut agg = Aggregate::new();
    let mut r = None;
    // The parsing side of a scan runs on this thread: the line buffer (1.5 MiB), the
    // held comments (4 MiB) and small change. Holding the floods took over 40 MiB.
    let peak = peak_bytes_of(|| {
        r = Some(scrapemeter::input::reader::scan_reader(
            &cfg,
            "flood",
            &input[..],
            &mut (&cfg, &mut agg),
        ))
    });
    assert!(peak < 12 << 20, "the scan held {peak} bytes");
    let r = r.unwrap();
    assert_eq!(r.format.as_deref(), Some("cloudfront"));
    assert_eq!((r.blank, r.comments), (1_000_000, 5_002));
    assert_eq!((r.lines, r.requests, r.malformed), (1_005_003, 1, 0));
}
