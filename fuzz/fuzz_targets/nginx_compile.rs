//! Arbitrary nginx `log_format` strings (the first line of the input) compiled, then
//! the remaining lines parsed with whatever compiled.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scrapemeter::input::format::nginx::Nginx;
use scrapemeter::input::format::FormatChoice;
use scrapemeter_fuzz::{downstream, lines};

fuzz_target!(|data: &[u8]| {
    let (first, rest) = match data.iter().position(|&c| c == b'\n') {
        Some(p) => (&data[..p], &data[p + 1..]),
        None => (data, &b""[..]),
    };
    let log_format = String::from_utf8_lossy(first);
    // The `--format nginx:...` path, then the compiler itself with named fields.
    let _ = format!("nginx:{log_format}").parse::<FormatChoice>();
    if let Ok(mut f) = Nginx::compile(&log_format, &downstream().fields) {
        lines(&mut f, rest);
    }
});
