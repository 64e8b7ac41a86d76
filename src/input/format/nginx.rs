//! Any nginx `log_format` string (`--format nginx:'<log_format>'`).
//!
//! The string is compiled once into literal text and variables (`$name` or `${name}`,
//! quoted or bare). A line matches when it starts with the first literal and each
//! variable's value runs up to the first occurrence of the literal text after it (a
//! variable that ends the format, up to the next space: fields appended after the
//! format are ignored; `$time_local` keeps its own space). `combined` stands for nginx's predefined format;
//! the quoted pieces of a `log_format` directive (`'...' '...'`) and an `escape=`
//! parameter before them are accepted as pasted from nginx.conf.
//!
//! Used variables: `$remote_addr` (client), `$remote_user`, `$msec`, `$time_iso8601`
//! or `$time_local` (in that order of preference), `$request`, or `$request_method`
//! with `$request_uri` (or `$uri` and `$args`), `$status`, `$http_user_agent`, and
//! `$host`, `$http_host` or `$server_name`. Every variable is a named field under its
//! name without `$` (`field:http_x_api_key`, `field:upstream_http_x_post_count`).

use super::json::epoch_micros;
use super::{host_without_port, is_tchar, split_request_line, three_digits};
use super::{FieldSet, LineFormat, Malformed, Request};
use crate::engine::time::{parse_clf_time, parse_rfc3339};
use crate::engine::InvalidValue;
use std::borrow::Cow;

/// nginx's predefined `combined` format.
pub const COMBINED: &str = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent""#;

/// Envoy's default access-log format (`--format envoy`), as its documentation gives
/// it, with each `%COMMAND%` named as an nginx variable. Envoy's default logs no
/// downstream address: the client is the first address of `X-Forwarded-For`, which an
/// edge Envoy sets to the address it was connected from (`$remote_addr` here).
pub const ENVOY: &str = r#"[$time_iso8601] "$request" $status $response_flags $bytes_received $bytes_sent $duration $upstream_service_time "$remote_addr" "$http_user_agent" "$request_id" "$host" "$upstream_host""#;

/// The length of `10/Oct/2000:13:55:36 +0000`.
const TIME_LOCAL_LEN: usize = 26;

#[derive(Debug, Clone)]
enum Token {
    Literal(Vec<u8>),
    /// Index into the variable names.
    Var(usize),
}

/// Slots of the variables the run reads.
#[derive(Debug, Clone, Default)]
struct Slots {
    remote_addr: Option<usize>,
    remote_user: Option<usize>,
    msec: Option<usize>,
    time_iso8601: Option<usize>,
    time_local: Option<usize>,
    request: Option<usize>,
    request_method: Option<usize>,
    request_uri: Option<usize>,
    uri: Option<usize>,
    args: Option<usize>,
    status: Option<usize>,
    user_agent: Option<usize>,
    host: Option<usize>,
    http_host: Option<usize>,
    server_name: Option<usize>,
}

pub struct Nginx {
    tokens: Vec<Token>,
    vars: Vec<String>,
    slots: Slots,
    /// Variable slot of each wanted named field.
    named: Vec<Option<usize>>,
    /// `nginx`, or `envoy` for Envoy's default format.
    name: &'static str,
}

/// The `'...' '...'` pieces of a pasted `log_format` directive, joined; `None` when
/// `s` is not made of such pieces.
fn unquote_pieces(s: &str) -> Option<String> {
    let mut out = String::new();
    let mut rest = s.trim();
    if !rest.starts_with('\'') {
        return None;
    }
    while !rest.is_empty() {
        let body = rest.strip_prefix('\'')?;
        let end = body.find('\'')?;
        out.push_str(&body[..end]);
        rest = body[end + 1..].trim_start();
    }
    Some(out)
}

fn tokenize(fmt: &str) -> (Vec<Token>, Vec<String>) {
    let b = fmt.as_bytes();
    let mut tokens = Vec::new();
    let mut vars: Vec<String> = Vec::new();
    let mut lit = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' {
            let (name, next) = if b.get(i + 1) == Some(&b'{') {
                match b[i + 2..].iter().position(|&c| c == b'}') {
                    Some(e) => (&fmt[i + 2..i + 2 + e], i + 3 + e),
                    None => ("", i + 1),
                }
            } else {
                let n = b[i + 1..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
                    .count();
                (&fmt[i + 1..i + 1 + n], i + 1 + n)
            };
            if !name.is_empty() {
                if !lit.is_empty() {
                    tokens.push(Token::Literal(std::mem::take(&mut lit)));
                }
                let slot = match vars.iter().position(|v| v == name) {
                    Some(s) => s,
                    None => {
                        vars.push(name.to_string());
                        vars.len() - 1
                    }
                };
                tokens.push(Token::Var(slot));
                i = next;
                continue;
            }
        }
        lit.push(b[i]);
        i += 1;
    }
    if !lit.is_empty() {
        tokens.push(Token::Literal(lit));
    }
    (tokens, vars)
}

/// The first address of a forwarded-for list (`203.0.113.9, 10.0.0.1`); an address as
/// `$remote_addr` logs it has no comma and is itself.
fn first_forwarded(v: &[u8]) -> &[u8] {
    let first = v.split(|&c| c == b',').next().unwrap_or(v);
    first.trim_ascii()
}

impl Nginx {
    /// Compiles a `log_format` string; refuses one the run cannot use.
    pub fn compile(log_format: &str, fields: &FieldSet) -> Result<Nginx, InvalidValue> {
        let mut fmt = log_format.trim();
        if let Some(rest) = fmt.strip_prefix("escape=") {
            fmt = rest
                .split_once(char::is_whitespace)
                .map_or("", |(_, r)| r)
                .trim();
        }
        let fmt = match fmt {
            "combined" => COMBINED.to_string(),
            "envoy" => ENVOY.to_string(),
            f => unquote_pieces(f).unwrap_or_else(|| f.to_string()),
        };
        if fmt.is_empty() {
            return Err("the log_format is empty".into());
        }
        let (tokens, vars) = tokenize(&fmt);
        for w in tokens.windows(2) {
            if let [Token::Var(a), Token::Var(b)] = w {
                return Err(format!(
                    "${} and ${} must be separated by some text to be told apart",
                    vars[*a], vars[*b]
                )
                .into());
            }
        }
        let slot = |name: &str| vars.iter().position(|v| v == name);
        let slots = Slots {
            remote_addr: slot("remote_addr"),
            remote_user: slot("remote_user"),
            msec: slot("msec"),
            time_iso8601: slot("time_iso8601"),
            time_local: slot("time_local"),
            request: slot("request"),
            request_method: slot("request_method"),
            request_uri: slot("request_uri"),
            uri: slot("uri"),
            args: slot("args"),
            status: slot("status"),
            user_agent: slot("http_user_agent"),
            host: slot("host"),
            http_host: slot("http_host"),
            server_name: slot("server_name"),
        };
        if slots.msec.is_none() && slots.time_iso8601.is_none() && slots.time_local.is_none() {
            return Err("the log_format logs no time ($time_local, $time_iso8601 or $msec)".into());
        }
        if slots.status.is_none() {
            return Err("the log_format logs no $status".into());
        }
        if slots.request.is_none()
            && (slots.request_method.is_none()
                || (slots.request_uri.is_none() && slots.uri.is_none()))
        {
            return Err(
                "the log_format logs no request ($request, or $request_method with $request_uri or $uri)"
                    .into(),
            );
        }
        let named = fields
            .names
            .iter()
            .map(|n| vars.iter().position(|v| v == n.trim_start_matches('$')))
            .collect();
        Ok(Nginx {
            tokens,
            vars,
            slots,
            named,
            name: if fmt == ENVOY { "envoy" } else { "nginx" },
        })
    }

    /// The value of every variable, or `None` when the line does not match.
    fn values<'a>(&self, line: &'a [u8]) -> Option<Vec<&'a [u8]>> {
        let mut values: Vec<&'a [u8]> = vec![b""; self.vars.len()];
        let mut pos = 0;
        for (i, t) in self.tokens.iter().enumerate() {
            match t {
                Token::Literal(l) => {
                    if !line[pos..].starts_with(l) {
                        return None;
                    }
                    pos += l.len();
                }
                Token::Var(v) => {
                    // `$time_local` holds a space of its own.
                    let from = if Some(*v) == self.slots.time_local {
                        (pos + TIME_LOCAL_LEN).min(line.len())
                    } else {
                        pos
                    };
                    let end = match self.tokens.get(i + 1) {
                        Some(Token::Literal(l)) => from + memchr::memmem::find(&line[from..], l)?,
                        _ => memchr::memchr(b' ', &line[from..]).map_or(line.len(), |e| from + e),
                    };
                    values[*v] = &line[pos..end];
                    pos = end;
                }
            }
        }
        Some(values)
    }
}

fn present(v: &[u8]) -> Option<&[u8]> {
    (!v.is_empty() && v != b"-").then_some(v)
}

impl LineFormat for Nginx {
    fn name(&self) -> &str {
        self.name
    }

    fn parse<'a>(&self, line: &'a [u8]) -> Result<Request<'a>, Malformed> {
        let v = self
            .values(line)
            .ok_or("line does not match the log_format")?;
        let s = &self.slots;
        let get = |slot: Option<usize>| slot.map(|i| v[i]);
        let time = if let Some(t) = get(s.msec) {
            std::str::from_utf8(t).ok().and_then(epoch_micros)
        } else if let Some(t) = get(s.time_iso8601) {
            parse_rfc3339(t)
        } else {
            get(s.time_local).and_then(parse_clf_time)
        }
        .ok_or("invalid time")?;
        let status = get(s.status)
            .and_then(three_digits)
            .ok_or("status is not three digits")?;
        let (method, target) = if let Some(r) = get(s.request) {
            match split_request_line(r) {
                Some((m, t)) => (Some(Cow::Borrowed(m)), Some(Cow::Borrowed(t))),
                None => (None, None),
            }
        } else {
            let m = get(s.request_method).unwrap_or_default();
            let target = match (get(s.request_uri), get(s.uri)) {
                (Some(u), _) => present(u).map(Cow::Borrowed),
                (None, Some(u)) => present(u).map(|u| match get(s.args).and_then(present) {
                    Some(a) => Cow::Owned([u, b"?", a].concat()),
                    None => Cow::Borrowed(u),
                }),
                (None, None) => None,
            };
            match target {
                Some(t) if !m.is_empty() && m.iter().all(|&c| is_tchar(c)) => {
                    (Some(Cow::Borrowed(m)), Some(t))
                }
                _ => (None, None),
            }
        };
        let host = get(s.host)
            .and_then(present)
            .or_else(|| get(s.http_host).and_then(present))
            .or_else(|| get(s.server_name).and_then(present))
            .map(|h| Cow::Borrowed(host_without_port(h)));
        Ok(Request {
            time,
            remote: Cow::Borrowed(first_forwarded(get(s.remote_addr).unwrap_or_default())),
            user: get(s.remote_user).map(Cow::Borrowed),
            user_agent: get(s.user_agent).map(Cow::Borrowed),
            user_agent_damaged: false,
            method,
            target,
            host,
            status,
            fields: self
                .named
                .iter()
                .map(|&i| i.map(|i| Cow::Borrowed(v[i])))
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::time::format_rfc3339;

    fn names(n: &[&str]) -> FieldSet {
        FieldSet {
            names: n.iter().map(|s| s.to_string()).collect(),
        }
    }

    // From crowdsecurity/hub `.tests/nginx_http-logs` (MIT).
    const COMBINED_LINE: &str = r#"192.168.1.1 - - [04/Jan/2020:07:25:02 +0000] "GET /.well-known/acme-challenge/FMuukC2JOJ5HKmLBujjE_BkDo HTTP/1.1" 404 522 "-" "Go-http-client/1.1""#;

    #[test]
    fn combined_by_name_and_pasted_directive() {
        for f in [
            "combined",
            COMBINED,
            r#"'$remote_addr - $remote_user [$time_local] ' '"$request" $status $body_bytes_sent ' '"$http_referer" "$http_user_agent"'"#,
            r#"escape=default '$remote_addr - ${remote_user} [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"'"#,
        ] {
            let n = Nginx::compile(f, &FieldSet::default()).unwrap();
            let r = n.parse(COMBINED_LINE.as_bytes()).unwrap();
            assert_eq!(format_rfc3339(r.time), "2020-01-04T07:25:02Z", "{f}");
            assert_eq!(&*r.remote, b"192.168.1.1");
            assert_eq!(
                r.target.as_deref(),
                Some(&b"/.well-known/acme-challenge/FMuukC2JOJ5HKmLBujjE_BkDo"[..])
            );
            assert_eq!(r.status, 404);
            assert_eq!(r.user_agent.as_deref(), Some(&b"Go-http-client/1.1"[..]));
        }
    }

    #[test]
    fn custom_format_with_named_fields() {
        let f = r#"$host $remote_addr [$time_iso8601] $request_method "$uri" "$args" $status $request_time "$http_user_agent" key=$http_x_api_key posts=$upstream_http_x_post_count"#;
        let n = Nginx::compile(
            f,
            &names(&["http_x_api_key", "upstream_http_x_post_count", "cookie_sid"]),
        )
        .unwrap();
        let line = r#"api.example.com:443 2001:db8::7 [2025-01-29T10:12:14.250+01:00] GET "/api/timeline" "count=50" 200 0.012 "curl/8 (x)" key=abc posts=50"#;
        let r = n.parse(line.as_bytes()).unwrap();
        assert_eq!(format_rfc3339(r.time), "2025-01-29T09:12:14.250000Z");
        assert_eq!(&*r.remote, b"2001:db8::7");
        assert_eq!(r.host.as_deref(), Some(&b"api.example.com"[..]));
        assert_eq!(r.method.as_deref(), Some(&b"GET"[..]));
        assert_eq!(r.target.as_deref(), Some(&b"/api/timeline?count=50"[..]));
        assert_eq!(r.user_agent.as_deref(), Some(&b"curl/8 (x)"[..]));
        let f: Vec<Option<&[u8]>> = r.fields.iter().map(|v| v.as_deref()).collect();
        assert_eq!(f, [Some(&b"abc"[..]), Some(&b"50"[..]), None]);
    }

    #[test]
    fn msec_and_malformed_lines() {
        let n = Nginx::compile(
            "$msec $remote_addr \"$request\" $status",
            &FieldSet::default(),
        )
        .unwrap();
        let r = n
            .parse(br#"1693840791.756 1.2.3.4 "GET /x HTTP/1.1" 304 extra"#)
            .unwrap();
        assert_eq!(format_rfc3339(r.time), "2023-09-04T15:19:51.756000Z");
        assert!(n
            .parse(br#"1693840791.756 1.2.3.4 "GET /x HTTP/1.1" 304"#)
            .is_ok());
        for bad in [
            &br#"1693840791.756 1.2.3.4 "GET /x HTTP/1.1" -"#[..],
            br#"1693840791.756 1.2.3.4 "GET /x HTTP/1.1""#,
            br#"soon 1.2.3.4 "GET /x HTTP/1.1" 200"#,
            b"",
        ] {
            assert!(n.parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        let r = n.parse(br#"1693840791 1.2.3.4 "\x16\x03" 400"#).unwrap();
        assert_eq!((r.method, r.status), (None, 400));
        let n = Nginx::compile(
            "$time_local $remote_addr $request_method $request_uri $status",
            &FieldSet::default(),
        )
        .unwrap();
        let r = n
            .parse(b"10/Oct/2000:13:55:36 -0700 ::1 GET /a 200")
            .unwrap();
        assert_eq!(
            (format_rfc3339(r.time).as_str(), &*r.remote),
            ("2000-10-10T20:55:36Z", &b"::1"[..])
        );
    }

    #[test]
    fn unusable_formats_are_refused() {
        for f in [
            "",
            "$remote_addr $status",
            "$remote_addr [$time_local] $status",
            "$remote_addr$remote_user [$time_local] \"$request\" $status",
            "[$time_local] \"$request\"",
        ] {
            assert!(Nginx::compile(f, &FieldSet::default()).is_err(), "{f}");
        }
    }
}
