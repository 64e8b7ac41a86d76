//! Arbitrary bytes through the reading layer: magic-byte detection and decompression
//! (`decompress::open`), framing (`framing::for_each_line`, at the real 1 MiB cap and at a
//! tiny one), the pipelined reader, and a whole `scan::scan_reader` with the default
//! settings (`--format auto`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use scrapemeter::engine::aggregate::Aggregate;
use scrapemeter::config::{Config, Overrides, SettingsFile};
use scrapemeter::input::decompress;
use scrapemeter::input::framing::{for_each_line, Frame, MAX_LINE};
use std::sync::OnceLock;

fn config() -> &'static Config {
    static C: OnceLock<Config> = OnceLock::new();
    C.get_or_init(|| {
        Config::resolve(
            vec!["-".into()],
            "out".into(),
            Overrides::default(),
            SettingsFile::default(),
        )
        .expect("the default settings resolve")
    })
}

fn frames(text: &mut dyn std::io::Read, cap: usize) {
    let mut total = 0usize;
    let end = for_each_line(text, cap, |_, f| {
        if let Frame::Line(l) = f {
            assert!(l.len() <= cap, "a line longer than the cap was delivered");
            total += l.len();
        }
    });
    let _ = (end.lines, end.error, end.dropped_partial_line, total);
}

fuzz_target!(|data: &[u8]| {
    if let Ok((_, mut text)) = decompress::open(data) {
        frames(&mut text, MAX_LINE);
    }
    if let Ok((_, mut text)) = decompress::open(data) {
        frames(&mut text, 16);
    }
    if let Ok((_, text)) = decompress::open(data) {
        // Blocks of whole lines, shared by two readers, as the scan's parse workers do.
        decompress::pipelined(text, 64, |blocks| {
            let read = || {
                while let Some(block) = blocks.next() {
                    block.for_each_line(64, |_, f| {
                        if let Frame::Line(l) = f {
                            assert!(l.len() <= 64, "a line longer than the cap was delivered");
                        }
                    });
                    blocks.recycle(block);
                }
            };
            std::thread::scope(|s| {
                s.spawn(read);
                read();
            });
        });
    }
    let cfg = config();
    let mut agg = Aggregate::new();
    let report = scrapemeter::input::reader::scan_reader(cfg, "fuzz", data, &mut (cfg, &mut agg));
    assert_eq!(
        report.size,
        Some(data.len() as u64),
        "every raw byte is hashed"
    );
});
