//! Rules files (TOML) compiled, then requests weighed by them. The input is the rules
//! text, optionally followed by a line `---` and request lines
//! (`METHOD TARGET STATUS HOST FIELD`) to weigh.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scrapemeter::input::format::{FieldSet, Request};
use scrapemeter::input::rules::RuleSet;
use std::borrow::Cow;

const FIXED: &[&[u8]] = &[
    b"GET /api/v1/timeline/home?count=50 200 api.example.com 7",
    b"POST /graphql/q 204 api.example.com:8443 99999999999999999999999",
    b"GET http://h/x/status/12?count=&count=3 304 - -",
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (rules, requests) = text.split_once("\n---\n").unwrap_or((text, ""));
    let mut fields = FieldSet::default();
    let Ok(set) = RuleSet::parse(rules, "fuzz", &mut fields) else {
        return;
    };
    let _ = set.names();
    let lines = FIXED
        .iter()
        .copied()
        .chain(requests.lines().map(str::as_bytes));
    for line in lines {
        let mut parts = line.split(|&c| c == b' ');
        let method = parts.next().map(Cow::Borrowed);
        let target = parts.next().map(Cow::Borrowed);
        let status = parts
            .next()
            .and_then(|s| std::str::from_utf8(s).ok()?.parse().ok())
            .unwrap_or(200);
        let host = parts.next().map(Cow::Borrowed);
        let value = parts.next().map(Cow::Borrowed);
        let req = Request {
            method,
            target,
            status,
            host,
            fields: vec![value; fields.names.len()],
            ..Request::default()
        };
        let _ = set.weight(&req);
    }
});
