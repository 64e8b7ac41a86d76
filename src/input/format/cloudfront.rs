//! AWS CloudFront standard access logs.
//!
//! Tab-separated columns. A `#Fields:` header line names them (and a new one mid-file
//! takes over from there); without one, the documented order is assumed. `date` and
//! `time` are UTC; the target is `cs-uri-stem`, plus `?cs-uri-query` when that is not
//! `-`; the host is `x-host-header`, else `cs(Host)`. Every column is a named field
//! under its header name (`x-forwarded-for`, `cs(Cookie)`, ...; case-insensitive).

use super::{three_digits, FieldSet, LineFormat, Malformed, Request};
use crate::engine::time::parse_rfc3339;
use std::borrow::Cow;

/// The documented column order, used when a file has no `#Fields:` header.
pub const DEFAULT_FIELDS: [&str; 33] = [
    "date",
    "time",
    "x-edge-location",
    "sc-bytes",
    "c-ip",
    "cs-method",
    "cs(Host)",
    "cs-uri-stem",
    "sc-status",
    "cs(Referer)",
    "cs(User-Agent)",
    "cs-uri-query",
    "cs(Cookie)",
    "x-edge-result-type",
    "x-edge-request-id",
    "x-host-header",
    "cs-protocol",
    "cs-bytes",
    "time-taken",
    "x-forwarded-for",
    "ssl-protocol",
    "ssl-cipher",
    "x-edge-response-result-type",
    "cs-protocol-version",
    "fle-status",
    "fle-encrypted-fields",
    "c-port",
    "time-to-first-byte",
    "x-edge-detailed-result-type",
    "sc-content-type",
    "sc-content-len",
    "sc-range-start",
    "sc-range-end",
];

/// Column indices of the current layout.
#[derive(Debug, Clone, Default)]
struct Layout {
    date: Option<usize>,
    time: Option<usize>,
    ip: Option<usize>,
    method: Option<usize>,
    stem: Option<usize>,
    status: Option<usize>,
    query: Option<usize>,
    user_agent: Option<usize>,
    host: Option<usize>,
    x_host: Option<usize>,
    /// Column of each wanted named field.
    named: Vec<Option<usize>>,
}

impl Layout {
    fn new<S: AsRef<str>>(columns: &[S], wanted: &FieldSet) -> Layout {
        let find = |name: &str| {
            columns
                .iter()
                .position(|c| c.as_ref().eq_ignore_ascii_case(name))
        };
        Layout {
            date: find("date"),
            time: find("time"),
            ip: find("c-ip"),
            method: find("cs-method"),
            stem: find("cs-uri-stem"),
            status: find("sc-status"),
            query: find("cs-uri-query"),
            user_agent: find("cs(User-Agent)"),
            host: find("cs(Host)"),
            x_host: find("x-host-header"),
            named: wanted.names.iter().map(|n| find(n)).collect(),
        }
    }
}

pub struct CloudFront {
    wanted: FieldSet,
    layout: Layout,
}

impl CloudFront {
    pub fn new(fields: &FieldSet) -> CloudFront {
        CloudFront {
            wanted: fields.clone(),
            layout: Layout::new(&DEFAULT_FIELDS, fields),
        }
    }
}

fn present(v: &[u8]) -> Option<&[u8]> {
    (!v.is_empty() && v != b"-").then_some(v)
}

impl LineFormat for CloudFront {
    fn name(&self) -> &str {
        "cloudfront"
    }

    fn comment(&mut self, line: &[u8]) {
        if let Some(rest) = line.strip_prefix(b"#Fields:") {
            let text = String::from_utf8_lossy(rest);
            let columns: Vec<&str> = text.split_whitespace().collect();
            self.layout = Layout::new(&columns, &self.wanted);
        }
    }

    fn reads_comments(&self) -> bool {
        true
    }

    fn parse<'a>(&self, line: &'a [u8]) -> Result<Request<'a>, Malformed> {
        let l = &self.layout;
        let cols: Vec<&'a [u8]> = line.split(|&c| c == b'\t').collect();
        let col = |i: Option<usize>| i.and_then(|i| cols.get(i).copied());
        let (date, time) = match (col(l.date), col(l.time)) {
            (Some(d), Some(t)) => (d, t),
            _ => return Err("no date and time columns"),
        };
        let mut stamp = Vec::with_capacity(date.len() + time.len() + 2);
        stamp.extend_from_slice(date);
        stamp.push(b'T');
        stamp.extend_from_slice(time);
        stamp.push(b'Z');
        let time = parse_rfc3339(&stamp).ok_or("invalid time")?;
        let status = col(l.status).ok_or("no sc-status column")?;
        let status = three_digits(status).ok_or("status is not three digits")?;
        let remote = col(l.ip).ok_or("no c-ip column")?;
        let method = col(l.method).ok_or("no cs-method column")?;
        let stem = col(l.stem).ok_or("no cs-uri-stem column")?;
        let request_ok = present(method).is_some()
            && method.iter().all(|&c| super::is_tchar(c))
            && present(stem).is_some();
        let (method, target) = if request_ok {
            let target = match col(l.query).and_then(present) {
                Some(q) => {
                    let mut t = Vec::with_capacity(stem.len() + 1 + q.len());
                    t.extend_from_slice(stem);
                    t.push(b'?');
                    t.extend_from_slice(q);
                    Cow::Owned(t)
                }
                None => Cow::Borrowed(stem),
            };
            (Some(Cow::Borrowed(method)), Some(target))
        } else {
            (None, None)
        };
        let host = col(l.x_host)
            .and_then(present)
            .or_else(|| col(l.host).and_then(present))
            .map(Cow::Borrowed);
        let fields = l.named.iter().map(|&i| col(i).map(Cow::Borrowed)).collect();
        Ok(Request {
            time,
            remote: Cow::Borrowed(remote),
            user: None,
            user_agent: col(l.user_agent).map(Cow::Borrowed),
            user_agent_damaged: false,
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

    // From crowdsecurity/hub `.tests/aws-cloudfront-logs` (MIT).
    const LINE: &str = "2024-03-12\t15:22:28\tCDG50-P2\t703\t1.2.3.4\tGET\td6rcaj0q1hys9.cloudfront.net\t/testseb\t400\t-\tcurl/7.81.0\tquery_param=42\t-\tError\t375WZmnR4hhhnlZKNn0D_LvkWhAqvWvBsUqySq8f_GOoAPP3k8R8fw==\thub-cdn.crowdsec.net\thttps\t62\t0.113\t-\tTLSv1.3\tTLS_AES_128_GCM_SHA256\tError\tHTTP/2.0\t-\t-\t51754\t0.113\tError\ttext/plain;%20charset=utf-8\t20\t-\t-";

    fn names(n: &[&str]) -> FieldSet {
        FieldSet {
            names: n.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn real_line_without_header() {
        let cf = CloudFront::new(&names(&["x-edge-request-id", "c-port", "nope"]));
        let r = cf.parse(LINE.as_bytes()).unwrap();
        assert_eq!(format_rfc3339(r.time), "2024-03-12T15:22:28Z");
        assert_eq!(&*r.remote, b"1.2.3.4");
        assert_eq!(r.status, 400);
        assert_eq!(r.method.as_deref(), Some(&b"GET"[..]));
        assert_eq!(r.target.as_deref(), Some(&b"/testseb?query_param=42"[..]));
        assert_eq!(r.host.as_deref(), Some(&b"hub-cdn.crowdsec.net"[..]));
        assert_eq!(r.user_agent.as_deref(), Some(&b"curl/7.81.0"[..]));
        let f: Vec<Option<&[u8]>> = r.fields.iter().map(|v| v.as_deref()).collect();
        assert_eq!(
            f,
            [
                Some(&b"375WZmnR4hhhnlZKNn0D_LvkWhAqvWvBsUqySq8f_GOoAPP3k8R8fw=="[..]),
                Some(&b"51754"[..]),
                None
            ]
        );
    }

    #[test]
    fn header_changes_the_layout() {
        let mut cf = CloudFront::new(&names(&["cs(Cookie)"]));
        cf.comment(b"#Version: 1.0");
        cf.comment(b"#Fields: date time c-ip cs-method cs-uri-stem sc-status cs-uri-query cs(Host) cs(Cookie)");
        let r = cf
            .parse(
                b"2019-12-04\t21:02:31\t2001:db8::1\tGET\t/p/1\t200\t-\td1.cloudfront.net\tsid=42",
            )
            .unwrap();
        assert_eq!(format_rfc3339(r.time), "2019-12-04T21:02:31Z");
        assert_eq!(&*r.remote, b"2001:db8::1");
        assert_eq!(r.target.as_deref(), Some(&b"/p/1"[..]));
        assert_eq!(r.host.as_deref(), Some(&b"d1.cloudfront.net"[..]));
        assert_eq!(r.fields, [Some(Cow::Borrowed(&b"sid=42"[..]))]);
        assert_eq!(r.user_agent, None);
        // A header without a status column makes every line malformed.
        cf.comment(b"#Fields: date time c-ip cs-method cs-uri-stem");
        assert!(cf
            .parse(b"2019-12-04\t21:02:31\t1.2.3.4\tGET\t/p/1")
            .is_err());
    }

    #[test]
    fn malformed_lines() {
        let cf = CloudFront::new(&FieldSet::default());
        let bad_time = LINE.replace("15:22:28", "15:22:60");
        let dash_status = LINE.replace("\t400\t", "\t-\t");
        for bad in [
            "",
            "garbage",
            "2024-03-12\t15:22:28\tCDG50-P2",
            &bad_time,
            &dash_status,
            r#"127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 2326"#,
        ] {
            assert!(cf.parse(bad.as_bytes()).is_err(), "{bad}");
        }
        // A `-` method is a request of weight 0, not a malformed line.
        let dash_method = LINE.replace("\tGET\t", "\t-\t");
        let r = cf.parse(dash_method.as_bytes()).unwrap();
        assert_eq!(r.method, None);
    }
}
