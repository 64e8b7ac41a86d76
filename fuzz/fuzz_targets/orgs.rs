//! Organisations files (CSV) read, then looked up: the first field of every line is
//! also tried as a request's IP and as a client key of every kind.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scrapemeter::input::client::{parse_ip, ClientKind};
use scrapemeter::input::format::Request;
use scrapemeter::input::orgs::Orgs;
use std::borrow::Cow;

fuzz_target!(|data: &[u8]| {
    let Ok(orgs) = Orgs::parse(data, "fuzz") else {
        return;
    };
    let kinds = [
        ClientKind::Ip,
        ClientKind::Subnet {
            ipv4_prefix: 24,
            ipv6_prefix: 64,
        },
        ClientKind::User,
    ];
    let probes = data
        .split(|&c| c == b'\n')
        .map(|l| l.split(|&c| c == b',').next().unwrap_or(l))
        .chain([&b"1.2.3.4"[..], b"::ffff:10.0.0.1", b"2001:db8::1", b"-"]);
    for key in probes {
        if let Some(ip) = parse_ip(key) {
            if let Some(id) = orgs.org_of_ip(ip) {
                let _ = (orgs.name(id), orgs.is_exempt(id));
            }
        }
        let req = Request {
            remote: Cow::Borrowed(key),
            ..Request::default()
        };
        for k in &kinds {
            if let Some(id) = orgs.org_of(k, &req, key) {
                let _ = (orgs.name(id), orgs.is_exempt(id));
            }
        }
        if let Some(id) = orgs.by_name(key) {
            let _ = orgs.name(id);
        }
    }
});
