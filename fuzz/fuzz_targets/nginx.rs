//! Lines of two fixed nginx `log_format`s → requests → client keys and weights.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scrapemeter::input::format::nginx::Nginx;
use scrapemeter_fuzz::downstream;
use std::sync::OnceLock;

/// `combined` plus appended fields, and one with `$msec`, the split request and
/// braced variables.
const FORMATS: [&str; 2] = [
    r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" "$http_x_api_key" $upstream_http_x_post_count $host"#,
    r#"${msec}|$time_iso8601|$remote_addr|$http_host|$request_method $uri?$args|$status|${http_user_agent}"#,
];

fuzz_target!(|data: &[u8]| {
    static COMPILED: OnceLock<Vec<Nginx>> = OnceLock::new();
    let formats = COMPILED.get_or_init(|| {
        FORMATS
            .iter()
            .map(|f| Nginx::compile(f, &downstream().fields).expect("the fuzz formats compile"))
            .collect()
    });
    for f in formats {
        // `Nginx` learns nothing from comments, so a shared one can be parsed with.
        let d = downstream();
        for line in data.split(|&c| c == b'\n') {
            if let Ok(req) = scrapemeter::input::format::LineFormat::parse(f, line) {
                d.request(&req);
            }
        }
    }
});
