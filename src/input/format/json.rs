//! JSON lines: one object per line (Caddy's access log, nginx `escape=json`, ...).
//!
//! Fields are found by dotted paths (`request.headers.User-Agent`, `a.b[0]`); a key
//! that itself contains dots is found too. An array where one value is wanted gives
//! its first element (Caddy logs headers as lists). Out of the box:
//!
//! | field | paths tried, in order |
//! |---|---|
//! | time | `msec`, `time_iso8601`, `time`, `@timestamp`, `time_local`, `ts`, `start_time` |
//! | client | `request.client_ip`, `request.remote_ip`, `remote_addr`, `client_ip`, `remote_ip`, `downstream_remote_address` |
//! | method + uri | `request.method`, `request_method`, `method` + `request.uri`, `request_uri`, `uri`, `x-envoy-origin-path`, `path` |
//! | request (line) | `request`, when a string (`GET /x HTTP/1.1`) |
//! | status | `status`, `response_code` |
//! | user | `user_id`, `remote_user` |
//! | user agent | `request.headers.User-Agent`, `http_user_agent`, `user_agent`, `user-agent` |
//! | host | `request.host`, `host`, `http_host`, `server_name`, `:authority` |
//!
//! (`start_time`, `downstream_remote_address`, `x-envoy-origin-path`, `response_code`,
//! `:authority` are Envoy's; a client logged as `address:port` gives its address.)
//!
//! The settings file's `[json]` table replaces any of these with one path. Times are
//! epoch numbers (or numeric strings; 1e11 or more is milliseconds), RFC 3339 strings
//! or CLF times; epoch fractions are read from the number's text, truncated to the
//! microsecond. A line without a time, a status or a request is malformed (Caddy's
//! non-access lines, say); a status must be three digits.

use super::{host_without_port, is_tchar, split_request_line, three_digits};
use super::{FieldSet, LineFormat, Malformed, Request};
use crate::engine::time::{parse_clf_time, parse_rfc3339, Micros};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::cell::OnceCell;
use std::fmt;

/// Field paths for JSON lines, from the settings file's `[json]` table. Each one set
/// replaces the paths tried by default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JsonFields {
    pub time: Option<String>,
    pub client: Option<String>,
    pub method: Option<String>,
    pub uri: Option<String>,
    /// The whole request line (`GET /x HTTP/1.1`), when the log has one.
    pub request: Option<String>,
    pub status: Option<String>,
    pub user: Option<String>,
    #[serde(alias = "user-agent")]
    pub user_agent: Option<String>,
    pub host: Option<String>,
}

const TIME: &[&str] = &[
    "msec",
    "time_iso8601",
    "time",
    "@timestamp",
    "time_local",
    "ts",
    "start_time",
];
const CLIENT: &[&str] = &[
    "request.client_ip",
    "request.remote_ip",
    "remote_addr",
    "client_ip",
    "remote_ip",
    "downstream_remote_address",
];
const METHOD: &[&str] = &["request.method", "request_method", "method"];
const URI: &[&str] = &[
    "request.uri",
    "request_uri",
    "uri",
    "x-envoy-origin-path",
    "path",
];
const REQUEST: &[&str] = &["request"];
const STATUS: &[&str] = &["status", "response_code"];
const USER: &[&str] = &["user_id", "remote_user"];
const USER_AGENT: &[&str] = &[
    "request.headers.User-Agent",
    "http_user_agent",
    "user_agent",
    "user-agent",
];
const HOST: &[&str] = &[
    "request.host",
    "host",
    "http_host",
    "server_name",
    ":authority",
];

/// A field path: the name as given and its segments.
#[derive(Debug, Clone)]
struct Path {
    whole: String,
    segments: Vec<String>,
}

impl Path {
    fn new(p: &str) -> Path {
        let segments = p
            .split('.')
            .flat_map(|s| s.split(['[', ']']))
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        Path {
            whole: p.to_string(),
            segments,
        }
    }
}

fn paths(configured: &Option<String>, defaults: &[&str]) -> Vec<Path> {
    match configured {
        Some(p) => vec![Path::new(p)],
        None => defaults.iter().map(|p| Path::new(p)).collect(),
    }
}

pub struct Json {
    time: Vec<Path>,
    client: Vec<Path>,
    method: Vec<Path>,
    uri: Vec<Path>,
    request: Vec<Path>,
    status: Vec<Path>,
    user: Vec<Path>,
    user_agent: Vec<Path>,
    host: Vec<Path>,
    named: Vec<Path>,
}

impl Json {
    pub fn new(cfg: &JsonFields, fields: &FieldSet) -> Json {
        // Naming any part of the request replaces all of the request defaults.
        let request_set = cfg.method.is_some() || cfg.uri.is_some() || cfg.request.is_some();
        let req = |c: &Option<String>, d: &[&str]| {
            if request_set {
                paths(c, &[])
            } else {
                paths(c, d)
            }
        };
        Json {
            time: paths(&cfg.time, TIME),
            client: paths(&cfg.client, CLIENT),
            method: req(&cfg.method, METHOD),
            uri: req(&cfg.uri, URI),
            request: req(&cfg.request, REQUEST),
            status: paths(&cfg.status, STATUS),
            user: paths(&cfg.user, USER),
            user_agent: paths(&cfg.user_agent, USER_AGENT),
            host: paths(&cfg.host, HOST),
            named: fields.names.iter().map(|n| Path::new(n)).collect(),
        }
    }
}

/// A parsed JSON value; numbers keep their text. Members are parsed when first
/// looked at, so the parts of a line no field needs are only skimmed.
#[derive(Debug)]
enum J<'a> {
    Null,
    Bool(bool),
    Num(&'a str),
    Str(Cow<'a, str>),
    Arr(Vec<Lazy<'a>>),
    Obj(Vec<(Cow<'a, str>, Lazy<'a>)>),
}

/// A value not parsed until needed.
#[derive(Debug)]
struct Lazy<'a> {
    raw: &'a RawValue,
    value: OnceCell<Option<J<'a>>>,
}

impl<'a> Lazy<'a> {
    fn new(raw: &'a RawValue) -> Lazy<'a> {
        Lazy {
            raw,
            value: OnceCell::new(),
        }
    }

    fn get(&self) -> Option<&J<'a>> {
        self.value.get_or_init(|| tree(self.raw.get())).as_ref()
    }
}

/// A string, borrowed from the line unless it had escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

/// An object's members, values still raw.
struct RawObject<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for RawObject<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawObject<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut v = Vec::new();
                while let Some((k, val)) = m.next_entry::<Text<'de>, &'de RawValue>()? {
                    v.push((k.0, val));
                }
                Ok(RawObject(v))
            }
        }
        d.deserialize_map(V)
    }
}

/// Parses one level of a value.
fn tree(raw: &str) -> Option<J<'_>> {
    let t = raw.trim();
    Some(match t.as_bytes().first()? {
        b'{' => {
            let o: RawObject<'_> = serde_json::from_str(t).ok()?;
            J::Obj(o.0.into_iter().map(|(k, v)| (k, Lazy::new(v))).collect())
        }
        b'[' => {
            let a: Vec<&RawValue> = serde_json::from_str(t).ok()?;
            J::Arr(a.into_iter().map(Lazy::new).collect())
        }
        b'"' => J::Str(serde_json::from_str::<Text<'_>>(t).ok()?.0),
        b't' => J::Bool(true),
        b'f' => J::Bool(false),
        b'n' => J::Null,
        _ => J::Num(t),
    })
}

impl<'a> J<'a> {
    fn member(&self, key: &str) -> Option<&J<'a>> {
        match self {
            J::Obj(m) => m.iter().find(|(k, _)| k == key)?.1.get(),
            J::Arr(a) => a.get(key.parse::<usize>().ok()?)?.get(),
            _ => None,
        }
    }

    fn at(&self, path: &Path) -> Option<&J<'a>> {
        if let Some(v) = self.member(&path.whole) {
            return Some(v);
        }
        let mut v = self;
        for s in &path.segments {
            v = v.member(s)?;
        }
        Some(v)
    }

    /// A value as bytes: strings as they read, numbers as written, the first element
    /// of an array; `None` for null, objects and empty arrays.
    fn bytes(&self) -> Option<Vec<u8>> {
        match self {
            J::Str(s) => Some(s.as_bytes().to_vec()),
            J::Num(n) => Some(n.as_bytes().to_vec()),
            J::Bool(b) => Some(if *b {
                b"true".to_vec()
            } else {
                b"false".to_vec()
            }),
            J::Arr(a) => a.first()?.get()?.bytes(),
            J::Null | J::Obj(_) => None,
        }
    }

    /// The first of `paths` present (and not null).
    fn first(&self, paths: &[Path]) -> Option<&J<'a>> {
        paths
            .iter()
            .filter_map(|p| self.at(p))
            .find(|v| !matches!(v, J::Null))
    }
}

/// An epoch time as written (`1693840791.7564995`, `1693840791756`, `1.69e9`):
/// seconds, or milliseconds from 1e11 on; truncated (floored) to the microsecond.
pub fn epoch_micros(text: &str) -> Option<Micros> {
    let b = text.trim().as_bytes();
    let (neg, b) = match b.first()? {
        b'-' => (true, &b[1..]),
        _ => (false, b),
    };
    let int_len = b.iter().take_while(|c| c.is_ascii_digit()).count();
    let mut rest = &b[int_len..];
    let mut digits: Vec<u8> = b[..int_len].to_vec();
    let mut exp: i32 = 0;
    if let Some(r) = rest.strip_prefix(b".") {
        let n = r.iter().take_while(|c| c.is_ascii_digit()).count();
        // Digits past the 18th after the point cannot change the microsecond.
        let kept = n.min(18);
        digits.extend_from_slice(&r[..kept]);
        exp -= kept as i32;
        rest = &r[n..];
    }
    if digits.is_empty() || digits.len() > 36 {
        return None;
    }
    if let Some(r) = rest.strip_prefix(b"e").or_else(|| rest.strip_prefix(b"E")) {
        let (sign, r) = match r.first() {
            Some(b'-') => (-1, &r[1..]),
            Some(b'+') => (1, &r[1..]),
            _ => (1, r),
        };
        if r.is_empty() || r.len() > 3 || !r.iter().all(u8::is_ascii_digit) {
            return None;
        }
        exp += sign * std::str::from_utf8(r).ok()?.parse::<i32>().ok()?;
        rest = b"";
    }
    if !rest.is_empty() {
        return None;
    }
    let mantissa: i128 = digits.iter().try_fold(0i128, |v, &c| {
        v.checked_mul(10)?.checked_add((c - b'0') as i128)
    })?;
    let scale = |m: i128, e: i32| -> Option<i128> {
        if e >= 0 {
            m.checked_mul(10i128.checked_pow(e as u32)?)
        } else {
            // Floor towards the past (the mantissa is non-negative here).
            Some(m / 10i128.checked_pow((-e) as u32).unwrap_or(i128::MAX))
        }
    };
    let whole = scale(mantissa, exp)?;
    let unit_exp = if whole >= 100_000_000_000 { 3 } else { 6 };
    let mut micros = scale(mantissa, exp + unit_exp)?;
    if neg {
        // Floor for negative times: a remainder rounds one microsecond down.
        let exact = scale(micros, -(exp + unit_exp)).is_some_and(|back| back == mantissa);
        micros = -micros - if exact { 0 } else { 1 };
    }
    // Years 0000 to 9999.
    const LIMIT: i128 = 253_402_300_800_000_000;
    (-62_167_219_200_000_000..LIMIT)
        .contains(&micros)
        .then_some(micros as Micros)
}

fn is_numeric(s: &str) -> bool {
    let s = s.trim();
    !s.is_empty()
        && s.bytes()
            .next()
            .is_some_and(|c| c.is_ascii_digit() || c == b'-')
        && s.bytes()
            .all(|c| c.is_ascii_digit() || b".-+eE".contains(&c))
}

fn time_of(v: &J<'_>) -> Option<Micros> {
    match v {
        J::Num(n) => epoch_micros(n),
        J::Str(s) if is_numeric(s) => epoch_micros(s),
        J::Str(s) => parse_rfc3339(s.as_bytes()).or_else(|| parse_clf_time(s.as_bytes())),
        _ => None,
    }
}

fn status_of(v: &J<'_>) -> Option<u16> {
    match v {
        J::Num(n) => three_digits(n.as_bytes()),
        J::Str(s) => three_digits(s.as_bytes()),
        _ => None,
    }
}

fn owned<'a>(v: Option<&J<'_>>) -> Option<Cow<'a, [u8]>> {
    v.and_then(J::bytes).map(Cow::Owned)
}

impl LineFormat for Json {
    fn name(&self) -> &str {
        "json"
    }

    /// A JSON object that is no access line (another logger's message, or a request
    /// Caddy logged with status 0) does not count against JSON in `auto`.
    fn neutral(&self, _line: &[u8], reason: Malformed) -> bool {
        reason != "not a JSON object"
    }

    fn parse<'a>(&self, line: &'a [u8]) -> Result<Request<'a>, Malformed> {
        if line.iter().find(|c| !c.is_ascii_whitespace()) != Some(&b'{') {
            return Err("not a JSON object");
        }
        // JSON is UTF-8; other bytes are read as U+FFFD rather than lose the line.
        let text = String::from_utf8_lossy(line);
        let root = tree(&text).ok_or("not a JSON object")?;
        let time = root.first(&self.time).ok_or("no time field")?;
        let time = time_of(time).ok_or("invalid time")?;
        let status = root.first(&self.status).ok_or("no status field")?;
        let status = status_of(status).ok_or("status is not three digits")?;
        let (method, target) = match (
            root.first(&self.method).and_then(J::bytes),
            root.first(&self.uri).and_then(J::bytes),
        ) {
            (Some(m), Some(u)) => {
                if !m.is_empty() && m.iter().all(|&c| is_tchar(c)) && !u.is_empty() {
                    (Some(Cow::Owned(m)), Some(Cow::Owned(u)))
                } else {
                    (None, None)
                }
            }
            _ => match root.first(&self.request) {
                Some(J::Str(r)) => match split_request_line(r.as_bytes()) {
                    Some((m, t)) => (Some(Cow::Owned(m.to_vec())), Some(Cow::Owned(t.to_vec()))),
                    None => (None, None),
                },
                _ => return Err("no request field"),
            },
        };
        let mut remote = root
            .first(&self.client)
            .and_then(J::bytes)
            .unwrap_or_default();
        // An address with its port (Envoy's `downstream_remote_address`): the address.
        if let Some(a) = std::str::from_utf8(&remote)
            .ok()
            .and_then(|s| s.parse::<std::net::SocketAddr>().ok())
        {
            remote = a.ip().to_string().into_bytes();
        }
        let host = root
            .first(&self.host)
            .and_then(J::bytes)
            .map(|h| Cow::Owned(host_without_port(&h).to_vec()));
        Ok(Request {
            time,
            remote: Cow::Owned(remote),
            user: owned(root.first(&self.user)),
            user_agent: owned(root.first(&self.user_agent)),
            user_agent_damaged: false,
            method,
            target,
            host,
            status,
            fields: self.named.iter().map(|p| owned(root.at(p))).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::time::format_rfc3339;

    // From crowdsecurity/hub `.tests/caddy-logs` (MIT), shortened.
    const CADDY: &str = r#"{"level":"info","ts":1711741864.947103,"logger":"http.log.access.log0","msg":"handled request","request":{"remote_ip":"127.0.0.1","remote_port":"43498","client_ip":"127.0.0.1","proto":"HTTP/1.1","method":"GET","host":"localhost:9080","uri":"/","headers":{"Authorization":[],"User-Agent":["curl/7.88.1"],"Accept":["*/*"]}},"bytes_read":0,"user_id":"Bob","duration":0.794682124,"size":18630,"status":200,"resp_headers":{"Server":["Caddy"]}}"#;
    const CADDY_PROXIED: &str = r#"{"level":"info","ts":1693840791.7564995,"logger":"http.log.access","msg":"handled request","request":{"remote_ip":"172.17.0.1","remote_port":"44790","client_ip":"127.0.0.1","proto":"HTTP/1.0","method":"GET","host":"127.0.0.1:8080","uri":"/","headers":{"X-Forwarded-For":["127.0.0.1"],"User-Agent":["curl/7.74.0"]}},"bytes_read":0,"user_id":"","duration":0.000002701,"size":0,"status":0,"resp_headers":{"Server":["Caddy"]}}"#;
    const CADDY_DEBUG: &str = r#"{"level":"debug","ts":1742400753.0547564,"logger":"http.handlers.reverse_proxy","msg":"selected upstream","dial":"immich_server:2283","total_upstreams":1}"#;

    fn json(fields: &[&str]) -> Json {
        let set = FieldSet {
            names: fields.iter().map(|s| s.to_string()).collect(),
        };
        Json::new(&JsonFields::default(), &set)
    }

    #[test]
    fn caddy_access_line() {
        let j = json(&["request.remote_port", "request.headers.Accept[0]", "nope"]);
        let r = j.parse(CADDY.as_bytes()).unwrap();
        assert_eq!(format_rfc3339(r.time), "2024-03-29T19:51:04.947103Z");
        assert_eq!(&*r.remote, b"127.0.0.1");
        assert_eq!(r.status, 200);
        assert_eq!(r.method.as_deref(), Some(&b"GET"[..]));
        assert_eq!(r.target.as_deref(), Some(&b"/"[..]));
        assert_eq!(r.host.as_deref(), Some(&b"localhost"[..]));
        assert_eq!(r.user.as_deref(), Some(&b"Bob"[..]));
        assert_eq!(r.user_agent.as_deref(), Some(&b"curl/7.88.1"[..]));
        let f: Vec<Option<&[u8]>> = r.fields.iter().map(|v| v.as_deref()).collect();
        assert_eq!(f, [Some(&b"43498"[..]), Some(&b"*/*"[..]), None]);
    }

    #[test]
    fn client_ip_is_preferred_and_status_zero_is_malformed() {
        let j = json(&[]);
        assert_eq!(
            j.parse(CADDY_PROXIED.as_bytes()).err(),
            Some("status is not three digits")
        );
        let line = CADDY_PROXIED.replace("\"status\":0", "\"status\":304");
        let r = j.parse(line.as_bytes()).unwrap();
        assert_eq!(&*r.remote, b"127.0.0.1");
        // Never rounded up across a microsecond (or a second).
        assert_eq!(format_rfc3339(r.time), "2023-09-04T15:19:51.756499Z");
        assert_eq!(r.host.as_deref(), Some(&b"127.0.0.1"[..]));
    }

    #[test]
    fn non_access_lines_are_malformed() {
        let j = json(&[]);
        for bad in [
            CADDY_DEBUG,
            "",
            "{",
            "[1,2]",
            "not json",
            r#"{"ts":1,"status":200}"#,
            r#"{"ts":"yesterday","status":200,"request":"GET / HTTP/1.1"}"#,
            r#"{"time_local":"31/Feb/2023:05:57:49 +1100","status":200,"request":"GET / HTTP/1.1"}"#,
            r#"{"ts":1,"status":"-","request":"GET / HTTP/1.1"}"#,
        ] {
            assert!(j.parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn flat_nginx_objects() {
        let j = json(&["http_x_api_key"]);
        let line = r#"{"msec":"1693840791.999","time_local":"04/Sep/2023:15:19:51 +0000","remote_addr":"2001:db8::1","remote_user":"-","request":"GET /p/1?x=2 HTTP/1.1","status":"200","http_user_agent":"Mozilla\/5.0 \"x\"","host":"example.com","http_x_api_key":"k1"}"#;
        let r = j.parse(line.as_bytes()).unwrap();
        // msec wins over time_local.
        assert_eq!(format_rfc3339(r.time), "2023-09-04T15:19:51.999000Z");
        assert_eq!(&*r.remote, b"2001:db8::1");
        assert_eq!(r.target.as_deref(), Some(&b"/p/1?x=2"[..]));
        assert_eq!(r.user_agent.as_deref(), Some(&br#"Mozilla/5.0 "x""#[..]));
        assert_eq!(r.host.as_deref(), Some(&b"example.com"[..]));
        assert_eq!(r.fields, [Some(Cow::Borrowed(&b"k1"[..]))]);
        let line = r#"{"time_local":"04/Sep/2023:17:19:51 +0200","remote_addr":"1.2.3.4","request_method":"POST","request_uri":"/a","status":201}"#;
        let r = j.parse(line.as_bytes()).unwrap();
        assert_eq!(format_rfc3339(r.time), "2023-09-04T15:19:51Z");
        assert_eq!((r.method.as_deref(), r.status), (Some(&b"POST"[..]), 201));
        // A request field that is not METHOD TARGET is weight 0, not malformed.
        let line = r#"{"time_iso8601":"2023-09-04T17:19:51+02:00","remote_addr":"1.2.3.4","request":"\u0016\u0003","status":400}"#;
        let r = j.parse(line.as_bytes()).unwrap();
        assert_eq!((r.method, r.status), (None, 400));
    }

    #[test]
    fn configured_paths_replace_the_defaults() {
        let cfg = JsonFields {
            time: Some("when".into()),
            client: Some("who.ip".into()),
            request: Some("req".into()),
            status: Some("code".into()),
            ..Default::default()
        };
        let j = Json::new(&cfg, &FieldSet::default());
        let line = r#"{"when":"2023-09-04T15:19:51.5Z","ts":1,"who":{"ip":"9.9.9.9"},"req":"GET /z HTTP/2.0","code":"200","request_method":"PUT","request_uri":"/no"}"#;
        let r = j.parse(line.as_bytes()).unwrap();
        assert_eq!(format_rfc3339(r.time), "2023-09-04T15:19:51.500000Z");
        assert_eq!(&*r.remote, b"9.9.9.9");
        assert_eq!(r.target.as_deref(), Some(&b"/z"[..]));
    }

    #[test]
    fn epoch_numbers() {
        let t = |s: &str| epoch_micros(s).map(format_rfc3339);
        assert_eq!(t("1693840791").unwrap(), "2023-09-04T15:19:51Z");
        assert_eq!(
            t("1693840791.7564995").unwrap(),
            "2023-09-04T15:19:51.756499Z"
        );
        assert_eq!(
            t("1693840791.9999999").unwrap(),
            "2023-09-04T15:19:51.999999Z"
        );
        assert_eq!(t("1693840791756").unwrap(), "2023-09-04T15:19:51.756000Z");
        assert_eq!(t("1693840791756.5").unwrap(), "2023-09-04T15:19:51.756500Z");
        assert_eq!(t("99999999999").unwrap(), "5138-11-16T09:46:39Z");
        assert_eq!(
            t("1.6938407917564995e9").unwrap(),
            "2023-09-04T15:19:51.756499Z"
        );
        assert_eq!(t("-0.5").unwrap(), "1969-12-31T23:59:59.500000Z");
        for bad in ["", "-", "1.2.3", "abc", "1e", "12x", "1e999"] {
            assert_eq!(epoch_micros(bad), None, "{bad}");
        }
    }
}
