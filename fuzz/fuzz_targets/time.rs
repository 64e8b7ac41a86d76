//! The time parsers (CLF `%t`, RFC 3339, UTC offsets, epoch numbers, durations) and the
//! printing of what they return.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scrapemeter::input::format::json::epoch_micros;
use scrapemeter::engine::time::{
    format_duration, format_rfc3339, parse_clf_time, parse_duration, parse_offset, parse_rfc3339,
};

fuzz_target!(|data: &[u8]| {
    for t in [parse_clf_time(data), parse_rfc3339(data)]
        .into_iter()
        .flatten()
    {
        let printed = format_rfc3339(t);
        // What is printed reads back as the same instant (four-digit years only:
        // an offset can move year 0000 or 9999 out of RFC 3339's range).
        if matches!(printed.len(), 20 | 27) {
            assert_eq!(parse_rfc3339(printed.as_bytes()), Some(t), "{printed}");
        }
    }
    let _ = parse_offset(data);
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(t) = epoch_micros(text) {
            let _ = format_rfc3339(t);
        }
        if let Ok(d) = parse_duration(text) {
            let _ = format_duration(d);
        }
    }
});
