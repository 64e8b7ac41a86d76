//! NCSA Common and Combined Log Format (Apache `common`/`combined`, nginx `combined`).
//!
//! `host ident user [time] "request" status bytes ["referer" ["user agent"]] [extra...]`
//! One parser serves both: referer and user agent are optional, and extra trailing
//! fields (nginx's `"$http_x_forwarded_for"`, say) are ignored.
//!
//! [`VCombined`] is Apache's `vhost_combined`: the same line after a `host[:port]`
//! field, which becomes the request's host (without its port).

use super::{
    host_without_port, is_tchar, split_request_line, three_digits, LineFormat, Malformed, Request,
};
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

    #[inline]
    fn parse<'a>(&self, line: &'a [u8]) -> Result<Request<'a>, Malformed> {
        // `parse_common` writes its `Request` where this returns it (an `Option` in
        // between was a `memmove` call per line).
        let common = parse_common(line);
        if matches!(common, Err(NOT_COMMON)) {
            return parse_general(line);
        }
        common
    }
}

/// Reads the common shape of a line in one forward walk, with no call per field:
/// `host ident user [time] "request" ddd bytes` then, optionally, ` "referer"` and
/// ` "user agent"` (and anything after), single spaces between fields. Anything else
/// (extra spaces, an unquoted or unclosed field, a quote inside the request) is left
/// to [`parse_general`], which reads it the same way or names what is wrong: `Some` is
/// always what `parse_general` returns (tested on mutated lines below). Measured with
/// `perf record` on one bench-preset file (2M lines, `--threads 1 --no-evidence`): the
/// parser with its memchr calls per field was about 15% of the samples, this is 11%.
#[inline]
fn parse_common(line: &[u8]) -> Result<Request<'_>, Malformed> {
    parse_common_shape(line).ok_or(NOT_COMMON)
}

/// What [`parse_common`] says of a line it leaves to [`parse_general`].
const NOT_COMMON: Malformed = "not the common shape";

#[inline(always)]
fn parse_common_shape(line: &[u8]) -> Option<Request<'_>> {
    let n = line.len();
    let at = |i: usize| line.get(i).copied();
    // host and ident: tokens ending in one space.
    let mut i = 0;
    while i < n && line[i] != b' ' {
        i += 1;
    }
    if i == 0 || i == n {
        return None;
    }
    let remote = &line[..i];
    i += 1;
    let ident = i;
    while i < n && line[i] != b' ' {
        i += 1;
    }
    if i == ident || i == n {
        return None;
    }
    i += 1;
    // The user, then ` [`.
    let user = i;
    while i < n && line[i] != b' ' {
        if matches!(line[i], b'"' | b'[') {
            return None;
        }
        i += 1;
    }
    if i == user || at(i + 1) != Some(b'[') {
        return None;
    }
    let user = &line[user..i];
    i += 2;
    let time = i;
    i += memchr::memchr(b']', &line[i..])?;
    let time = parse_clf_time(&line[time..i])?;
    if at(i + 1) != Some(b' ') || at(i + 2) != Some(b'"') {
        return None;
    }
    i += 3;
    // The request, up to its closing quote, noting its first two spaces.
    let request = i;
    let (mut spaces, mut sp) = (0usize, [0usize; 2]);
    // From space to space: three searches a request (`GET /path HTTP/1.1"`) where a
    // loop took a branch per byte (that loop was half of this walk's samples).
    loop {
        i += memchr::memchr3(b'"', b'\\', b' ', line.get(i..)?)?;
        match line[i] {
            b'"' => break,
            // An escaped space would count as a space below: leave it to the general parser.
            b'\\' if at(i + 1) == Some(b' ') => return None,
            b'\\' => i += 2,
            _ => {
                if spaces < 2 {
                    sp[spaces] = i;
                }
                spaces += 1;
                i += 1;
            }
        }
    }
    let request_end = i;
    // ` ddd` then a space (the bytes field is required).
    if at(i + 1) != Some(b' ') || at(i + 5) != Some(b' ') {
        return None;
    }
    let status = three_digits(&line[i + 2..i + 5])?;
    i += 6;
    let bytes = i;
    while i < n && line[i] != b' ' {
        i += 1;
    }
    let bytes = &line[bytes..i];
    if bytes.is_empty() || (bytes != b"-" && !bytes.iter().all(u8::is_ascii_digit)) {
        return None;
    }
    // Optional ` "referer"`, then optional ` "user agent"`; the rest is ignored.
    let mut quoted = || -> Option<Option<&[u8]>> {
        if i == n {
            return Some(None);
        }
        if line[i] != b' ' || at(i + 1) != Some(b'"') {
            return None;
        }
        i += 2;
        let start = i;
        // Referers and user agents run to 100 bytes and more: there one SIMD search
        // beats a byte loop (the loop cost 7% of the parse thread, this 2%).
        loop {
            i += memchr::memchr2(b'"', b'\\', line.get(i..)?)?;
            if line[i] == b'"' {
                break;
            }
            i += 2;
        }
        let field = &line[start..i];
        i += 1;
        Some(Some(field))
    };
    let referer = quoted()?;
    let user_agent = match referer {
        Some(_) => quoted()?,
        None => None,
    };
    // METHOD TARGET [PROTOCOL], as `split_request_line` reads it.
    let (method, target) = {
        let (m, t) = match spaces {
            1 => (&line[request..sp[0]], &line[sp[0] + 1..request_end]),
            2 if sp[1] + 1 < request_end => (&line[request..sp[0]], &line[sp[0] + 1..sp[1]]),
            _ => (&b""[..], &b""[..]),
        };
        if m.is_empty() || t.is_empty() || !m.iter().all(|&c| is_tchar(c)) {
            (None, None)
        } else {
            (Some(Cow::Borrowed(m)), Some(Cow::Borrowed(t)))
        }
    };
    Some(Request {
        time,
        remote: Cow::Borrowed(remote),
        user: Some(Cow::Borrowed(user)),
        user_agent: user_agent.map(Cow::Borrowed),
        user_agent_damaged: false,
        method,
        target,
        host: None,
        status,
        fields: Vec::new(),
    })
}

/// Reads any line the format allows (see the module comment), or says what is wrong.
fn parse_general(line: &[u8]) -> Result<Request<'_>, Malformed> {
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

    /// The one-walk reader agrees with the general one wherever it answers: on real
    /// shapes of lines and on those lines with bytes changed, inserted or removed at
    /// random (spaces, quotes, brackets, backslashes, digits...).
    mod one_walk {
        use super::super::{parse_common_shape, parse_general};
        use proptest::prelude::*;

        const LINES: [&str; 7] = [
            r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 "http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)""#,
            r#"2001:db8::7 - - [02/Mar/2026:00:01:02 +0000] "GET /search?q=cats HTTP/1.1" 304 - "-" "curl/8.1""#,
            r#"::1 - - [10/Oct/2000:13:55:36.250 +0000] "GET / HTTP/1.1" 304 -"#,
            r#"1.2.3.4 - - [17/Oct/2023:05:57:49 +1100] "GET /a\"b HTTP/1.1" 200 1 "-" "x" "-""#,
            r#"1.2.3.4 - - [17/Oct/2023:05:57:49 +1100] "\x16\x03\x01 \x02" 400 226 "-" "-""#,
            r#"1.2.3.4 - - [17/Oct/2023:05:57:49 +1100] "-" 408 0 "ref" "Mozilla/5.0 (trunc""#,
            r#"1.2.3.4 - u [17/Oct/2023:05:57:49 +1100] "POST /x?y HTTP/2.0 extra" 201 12"#,
        ];

        fn mutated() -> impl Strategy<Value = Vec<u8>> {
            let edit = (
                0usize..3,
                any::<prop::sample::Index>(),
                prop::sample::select(b" \"[]\\-0123456789aZ:/.\r\t".to_vec()),
            );
            (
                prop::sample::select(LINES.to_vec()),
                prop::collection::vec(edit, 0..4),
            )
                .prop_map(|(line, edits)| {
                    let mut l = line.as_bytes().to_vec();
                    for (kind, at, c) in edits {
                        let i = at.index(l.len() + 1);
                        match kind {
                            0 if i < l.len() => l[i] = c,
                            1 if i < l.len() => {
                                l.remove(i);
                            }
                            _ => l.insert(i, c),
                        }
                    }
                    l
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(4000))]
            #[test]
            fn agrees_with_the_general_reader(line in mutated()) {
                if let Some(r) = parse_common_shape(&line) {
                    prop_assert_eq!(Ok(r), parse_general(&line));
                }
            }
        }

        #[test]
        fn reads_the_common_shapes_itself() {
            for line in &LINES[..3] {
                assert!(parse_common_shape(line.as_bytes()).is_some(), "{line}");
            }
        }
    }
}
