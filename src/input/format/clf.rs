//! NCSA Common and Combined Log Format (Apache `common`/`combined`, nginx `combined`).
//!
//! `host ident user [time] "request" status bytes ["referer" ["user agent"]] [extra...]`
//! One parser serves both: referer and user agent are optional, and extra trailing
//! fields (nginx's `"$http_x_forwarded_for"`, say) are ignored.
//!
//! [`VCombined`] is Apache's `vhost_combined`: the same line after a `host[:port]`
//! field, which becomes the request's host (without its port).

use super::{host_without_port, split_request_line, LineFormat, Malformed, Request};
use crate::engine::time::parse_clf_time;
use std::borrow::Cow;

pub struct Clf;

/// Apache `vhost_combined`: `host[:port]` then a combined line.
pub struct VCombined;

impl LineFormat for VCombined {
    fn name(&self) -> &str {
        "vcombined"
    }

    fn parse<'a>(&self, line: &'a [u8]) -> Result<Request<'a>, Malformed> {
        let (vhost, rest) = token(line).ok_or("empty line")?;
        let mut r = Clf.parse(rest)?;
        r.host = Some(Cow::Borrowed(host_without_port(vhost)));
        Ok(r)
    }
}

/// Splits off the next space-delimited token.
fn token(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let s = skip_spaces(s);
    if s.is_empty() {
        return None;
    }
    let end = memchr::memchr(b' ', s).unwrap_or(s.len());
    Some((&s[..end], &s[end..]))
}

fn skip_spaces(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&c| c == b' ').count();
    &s[n..]
}

/// Index of the quote closing a field that starts after an opening quote, honouring
/// backslash escapes (`\"`, `\\`).
fn closing_quote(s: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < s.len() {
        match memchr::memchr2(b'"', b'\\', &s[i..]) {
            None => return None,
            Some(p) if s[i + p] == b'\\' => i += p + 2,
            Some(p) => return Some(i + p),
        }
    }
    None
}

/// `ddd` followed by a space or the end of the line.
fn status_at(s: &[u8]) -> Option<u16> {
    if s.len() < 3 || !s[..3].iter().all(u8::is_ascii_digit) || s.get(3).is_some_and(|&c| c != b' ')
    {
        return None;
    }
    Some(s[..3].iter().fold(0u16, |v, c| v * 10 + (c - b'0') as u16))
}

/// A quoted field: `Some(Ok(content, rest))`, `Some(Err(()))` when the quote never closes,
/// `None` when there is no field at all.
/// A field's content and what follows it.
type Field<'a> = (&'a [u8], &'a [u8]);

fn quoted(s: &[u8]) -> Option<Result<Field<'_>, ()>> {
    let s = skip_spaces(s);
    match s.first() {
        None => None,
        Some(b'"') => Some(match closing_quote(&s[1..]) {
            Some(q) => Ok((&s[1..1 + q], &s[2 + q..])),
            None => Err(()),
        }),
        // An unquoted field (some servers log `-` bare): take one token.
        Some(_) => token(s).map(Ok),
    }
}

impl LineFormat for Clf {
    fn name(&self) -> &str {
        "combined"
    }

    fn parse<'a>(&self, line: &'a [u8]) -> Result<Request<'a>, Malformed> {
        let (remote, rest) = token(line).ok_or("empty line")?;
        let (_ident, rest) = token(rest).ok_or("no ident field")?;
        let rest = skip_spaces(rest);
        // The user runs up to the bracket of the time; it may itself be `-`.
        let open = memchr::memchr(b'[', rest).ok_or("no [time] field")?;
        let user = trim(&rest[..open]);
        if user.is_empty() || user.contains(&b' ') || user.contains(&b'"') {
            return Err("no user field");
        }
        let rest = &rest[open + 1..];
        let close = memchr::memchr(b']', rest).ok_or("time field not closed")?;
        let time = parse_clf_time(&rest[..close]).ok_or("invalid time")?;
        let rest = skip_spaces(&rest[close + 1..]);
        if rest.first() != Some(&b'"') {
            return Err("no quoted request field");
        }
        let body = &rest[1..];
        // The request ends at the closing quote that is followed by a status. An
        // unescaped quote inside a request (some old servers) is skipped over.
        let mut from = 0;
        let (request, after_status, status) = loop {
            let q = from + closing_quote(&body[from..]).ok_or("request field not closed")?;
            let after = &body[q + 1..];
            if after.first() == Some(&b' ') {
                let after = skip_spaces(after);
                if let Some(status) = status_at(after) {
                    break (&body[..q], &after[3..], status);
                }
                if after
                    .first()
                    .is_some_and(|c| c.is_ascii_digit() || *c == b'-')
                {
                    return Err("status is not three digits");
                }
            }
            from = q + 1;
        };
        // Bytes sent: not needed, but required (`-` or digits), so that a line cut
        // right after its status is malformed (SPEC.md, "Malformed").
        let rest = match token(after_status) {
            Some((b"-", rest)) => rest,
            Some((bytes, rest)) if bytes.iter().all(u8::is_ascii_digit) => rest,
            Some(_) => return Err("bytes field is not - or digits"),
            None => return Err("no bytes field"),
        };
        let (referer, rest) = match quoted(rest) {
            Some(Ok((r, rest))) => (Some(r), rest),
            Some(Err(())) => (None, &b""[..]),
            None => (None, rest),
        };
        let _ = referer;
        let (user_agent, user_agent_damaged) = match quoted(rest) {
            Some(Ok((ua, _))) => (Some(Cow::Borrowed(ua)), false),
            Some(Err(())) => (None, true),
            None => (None, false),
        };
        let (method, target) = match split_request_line(request) {
            Some((m, t)) => (Some(Cow::Borrowed(m)), Some(Cow::Borrowed(t))),
            None => (None, None),
        };
        Ok(Request {
            time,
            remote: Cow::Borrowed(remote),
            user: Some(Cow::Borrowed(user)),
            user_agent,
            user_agent_damaged,
            method,
            target,
            host: None,
            status,
            fields: Vec::new(),
        })
    }
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&c| c != b' ').unwrap_or(s.len());
    let end = s.iter().rposition(|&c| c != b' ').map_or(start, |e| e + 1);
    &s[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::time::format_rfc3339;

    fn parse(l: &str) -> Result<Request<'_>, Malformed> {
        Clf.parse(l.as_bytes())
    }

    #[test]
    fn combined_line() {
        let r = parse(r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 "http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)""#).unwrap();
        assert_eq!(&*r.remote, b"127.0.0.1");
        assert_eq!(r.user.as_deref(), Some(&b"frank"[..]));
        assert_eq!(format_rfc3339(r.time), "2000-10-10T20:55:36Z");
        assert_eq!(r.method.as_deref(), Some(&b"GET"[..]));
        assert_eq!(r.target.as_deref(), Some(&b"/apache_pb.gif"[..]));
        assert_eq!(r.status, 200);
        assert_eq!(
            r.user_agent.as_deref(),
            Some(&b"Mozilla/4.08 [en] (Win98; I ;Nav)"[..])
        );
    }

    #[test]
    fn common_line_and_trailing_fields() {
        let r = parse(r#"::1 - - [10/Oct/2000:13:55:36 +0000] "GET / HTTP/1.1" 304 -"#).unwrap();
        assert_eq!((r.status, r.user_agent), (304, None));
        let r = parse(
            r#"1.2.3.4 - - [22/Jan/2019:03:56:14 +0330] "GET /x HTTP/1.1" 200 30577 "-" "UA" "-""#,
        )
        .unwrap();
        assert_eq!(r.user_agent.as_deref(), Some(&b"UA"[..]));
        // The bytes field is required: a line cut right after its status is malformed.
        assert_eq!(
            parse(r#"1.2.3.4 - - [22/Jan/2019:03:56:14 +0330] "GET /x HTTP/1.1" 200"#).err(),
            Some("no bytes field")
        );
    }

    #[test]
    fn escaped_quotes_and_junk_requests() {
        let r =
            parse(r#"1.2.3.4 - - [17/Oct/2023:05:57:49 +1100] "GET /a\"b HTTP/1.1" 200 1 "-" "x""#)
                .unwrap();
        assert_eq!(r.target.as_deref(), Some(&br#"/a\"b"#[..]));
        let r = parse(
            r#"1.2.3.4 - - [17/Oct/2023:05:57:49 +1100] "\x16\x03\x01\x01 \x02" 400 226 "-" "-""#,
        )
        .unwrap();
        assert_eq!((r.method, r.status), (None, 400));
        let r = parse(r#"1.2.3.4 - - [17/Oct/2023:05:57:49 +1100] "-" 408 0 "-" "-""#).unwrap();
        assert_eq!(r.method, None);
        // An unescaped quote inside the request of an old server.
        let r =
            parse(r#"1.2.3.4 - - [17/Oct/2023:05:57:49 +1100] "GET /a"b HTTP/1.1" 200 1"#).unwrap();
        assert_eq!(r.status, 200);
    }

    #[test]
    fn damaged_user_agent_is_not_fatal() {
        let r = parse(r#"1.2.3.4 - - [17/Oct/2023:05:57:49 +1100] "GET / HTTP/1.1" 200 1 "-" "Mozilla/5.0 (trunc"#).unwrap();
        assert!(r.user_agent_damaged);
        assert_eq!(r.status, 200);
    }

    #[test]
    fn vhost_combined() {
        // From crowdsecurity/hub `.tests/apache2-logs` (MIT).
        let l = r#"website.com:443 1.2.3.4 - - [25/Oct/2021:11:05:52 +0200] "GET /web/.well-known HTTP/1.1" 403 6963 "abc.com" "User-agent-string""#;
        let r = VCombined.parse(l.as_bytes()).unwrap();
        assert_eq!(r.host.as_deref(), Some(&b"website.com"[..]));
        assert_eq!(&*r.remote, b"1.2.3.4");
        assert_eq!(format_rfc3339(r.time), "2021-10-25T09:05:52Z");
        assert_eq!(
            (r.target.as_deref(), r.status),
            (Some(&b"/web/.well-known"[..]), 403)
        );
        assert_eq!(r.user_agent.as_deref(), Some(&b"User-agent-string"[..]));
        let r = VCombined.parse(br#"www.crowdsec.net 192.168.1.1 - - [08/Jun/2020:08:04:43 +0000] "GET /solr/admin/info/system?wt=json HTTP/1.1" 500 803 "-" "-""#).unwrap();
        assert_eq!(r.host.as_deref(), Some(&b"www.crowdsec.net"[..]));
        // A combined line is not a vhost_combined one, nor the other way round.
        let c = &l["website.com:443 ".len()..];
        assert!(VCombined.parse(c.as_bytes()).is_err());
        assert!(Clf.parse(l.as_bytes()).is_err());
        assert!(VCombined
            .parse(br#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 2326"#)
            .is_err());
    }

    #[test]
    fn malformed_lines() {
        for bad in [
            "",
            "garbage",
            r#"1.2.3.4 - - [31/Feb/2023:05:57:49 +1100] "GET / HTTP/1.1" 200 1"#,
            r#"1.2.3.4 - - [17/Oct/2023:05:57:49 +1100] "GET / HTTP/1.1" - 1"#,
            r#"1.2.3.4 - - [17/Oct/2023:05:57:49 +1100] "GET / HTTP/1.1" 20 1"#,
            r#"1.2.3.4 - - [17/Oct/2023:05:57:49 +1100] "GET / HTTP/1.1" 2000 1"#,
            r#"1.2.3.4 - - [17/Oct/2023:05:57:49 +1100] "GET / HTTP/1.1"#,
            r#"1.2.3.4 - - [17/Oct/2023:05:57:49] "GET / HTTP/1.1" 200 1"#,
            r#"www.example.com:80 1.2.3.4 - - [17/Oct/2023:05:57:49 +1100] "GET / HTTP/1.1" 200 1"#,
            "2023/10/17 05:57:49 [error] 1234#0: *1 open() failed",
            // Issue 15: cut right after the status; a bytes field that is no number;
            // a request with no closing quote.
            r#"192.0.2.9 - - [10/Oct/2026:13:55:36 +0000] "OPTIONS /x HTTP/2" 200"#,
            r#"192.0.2.9 - - [10/Oct/2026:13:55:36 +0000] "OPTIONS /x HTTP/2" 200 "-" "x""#,
            r#"192.0.2.9 - - [10/Oct/2026:13:55:36 +0000] "GET http://example.com:8443"#,
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
