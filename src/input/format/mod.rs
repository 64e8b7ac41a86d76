//! Formats: one log line → one [`Request`].
//!
//! Each format lives in its own file behind the [`LineFormat`] trait. A format only
//! reads fields; what they mean (the client key, the post weight) is decided later, in
//! `client` and `weigh`.

pub mod alb;
pub mod clf;
pub mod cloudfront;
pub mod cri;
pub mod json;
pub mod nginx;

pub use json::JsonFields;

use crate::engine::time::Micros;
use crate::engine::InvalidValue;
use std::borrow::Cow;

/// The parts of a log line the run can use. Borrowed from the line where possible.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request<'a> {
    pub time: Micros,
    /// The remote address as logged (an IP, or a host name).
    pub remote: Cow<'a, [u8]>,
    /// The authenticated user (`-` when none).
    pub user: Option<Cow<'a, [u8]>>,
    pub user_agent: Option<Cow<'a, [u8]>>,
    /// The user agent field was present but could not be read (no closing quote).
    pub user_agent_damaged: bool,
    /// `None` when the request field is not `METHOD TARGET [PROTOCOL]`.
    pub method: Option<Cow<'a, [u8]>>,
    pub target: Option<Cow<'a, [u8]>>,
    /// The virtual host, where the format logs one.
    pub host: Option<Cow<'a, [u8]>>,
    pub status: u16,
    /// Values of the named fields the run asked for ([`FieldSet`]), in its order;
    /// `None` where the line lacks one. Empty when none are wanted.
    pub fields: Vec<Option<Cow<'a, [u8]>>>,
}

/// Named fields the run needs from structured formats (the `field:NAME` client key,
/// rules that weigh by a logged field), in a fixed order. Formats fill
/// [`Request::fields`] in this order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet {
    pub names: Vec<String>,
}

impl FieldSet {
    /// Adds `name` if absent; returns its index.
    pub fn add(&mut self, name: &str) -> usize {
        match self.index_of(name) {
            Some(i) => i,
            None => {
                self.names.push(name.to_string());
                self.names.len() - 1
            }
        }
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// Why a line could not be read; shown in the report next to its file and line number.
pub type Malformed = &'static str;

pub trait LineFormat: Send + Sync {
    /// The name shown in the manifest (`combined`, `json`, ...).
    fn name(&self) -> &str;
    fn parse<'a>(&self, line: &'a [u8]) -> Result<Request<'a>, Malformed>;
    /// Sees every `#` comment line of the file, in order (CloudFront's `#Fields:`
    /// header, say). A format is made per file, so it may keep what it learns.
    fn comment(&mut self, _line: &[u8]) {}

    /// Whether [`Self::comment`] changes how later lines parse (a `#Fields:` header):
    /// then the lines of a file are parsed in order, by one worker.
    fn reads_comments(&self) -> bool {
        false
    }

    /// Whether a line this format could not read as a request (for `reason`) is still
    /// one of its own lines, not an access line (a Caddy log's other loggers, a request
    /// Caddy logged with status 0): `auto` does not count it against the format.
    fn neutral(&self, _line: &[u8], _reason: Malformed) -> bool {
        false
    }
}

/// What `--format` asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormatChoice {
    Auto,
    /// `combined` and `common` are one parser: referer and user agent are optional.
    Combined,
    /// Apache `vhost_combined`: a `host[:port]` field before the client.
    VCombined,
    /// JSON lines (Caddy, nginx `escape=json`, or fields named in the settings).
    Json,
    /// AWS Application Load Balancer.
    Alb,
    /// AWS CloudFront standard logs.
    CloudFront,
    /// An nginx `log_format` string (checked when parsed).
    Nginx(String),
    /// Any of these inside the CRI container-log wrapper (`TIMESTAMP stdout F MESSAGE`).
    Cri(Box<FormatChoice>),
}

impl std::str::FromStr for FormatChoice {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        match s {
            "auto" => Ok(Self::Auto),
            "combined" | "common" => Ok(Self::Combined),
            "vcombined" => Ok(Self::VCombined),
            "json" => Ok(Self::Json),
            "alb" => Ok(Self::Alb),
            "cloudfront" => Ok(Self::CloudFront),
            "envoy" => Ok(Self::Nginx("envoy".into())),
            other if other.starts_with("cri+") => match other["cri+".len()..].parse()? {
                Self::Auto | Self::Cri(_) => Err(format!(
                    "--format {other}: cri+ takes one format (cri+json, cri+combined, ...)"
                )
                .into()),
                inner => Ok(Self::Cri(Box::new(inner))),
            },
            other if other.starts_with("nginx:") => {
                let log_format = &other["nginx:".len()..];
                nginx::Nginx::compile(log_format, &FieldSet::default())
                    .map_err(|e| format!("--format nginx: {e}"))?;
                Ok(Self::Nginx(log_format.to_string()))
            }
            _ => Err(format!(
                "unknown format '{s}' (use auto, combined, common, vcombined, json, alb, cloudfront, nginx:'<log_format>', or cri+ before one of them)"
            )
            .into()),
        }
    }
}

impl FormatChoice {
    pub fn name(&self) -> String {
        match self {
            Self::Auto => "auto".into(),
            Self::Combined => "combined".into(),
            Self::VCombined => "vcombined".into(),
            Self::Json => "json".into(),
            Self::Alb => "alb".into(),
            Self::CloudFront => "cloudfront".into(),
            Self::Nginx(f) if f == "envoy" => "envoy".into(),
            Self::Nginx(f) => format!("nginx:{f}"),
            Self::Cri(inner) => format!("cri+{}", inner.name()),
        }
    }

    /// The formats to use: one for a fixed choice, every candidate for `auto`,
    /// in order of preference on a tie. Each fills the named `fields` it can; `json`
    /// holds the field names the settings file gave for JSON lines.
    pub fn candidates(&self, fields: &FieldSet, json: &JsonFields) -> Vec<Box<dyn LineFormat>> {
        match self {
            // Every format, then each inside the CRI wrapper.
            Self::Auto => {
                let plain = || -> Vec<Box<dyn LineFormat>> {
                    vec![
                        Box::new(clf::Clf),
                        Box::new(clf::VCombined),
                        Box::new(json::Json::new(json, fields)),
                        Box::new(alb::Alb::new(fields)),
                        Box::new(cloudfront::CloudFront::new(fields)),
                        Box::new(
                            nginx::Nginx::compile(nginx::ENVOY, fields)
                                .expect("Envoy's format compiles"),
                        ),
                    ]
                };
                let wrapped = plain()
                    .into_iter()
                    .map(|f| Box::new(cri::Cri::new(f)) as Box<dyn LineFormat>);
                plain().into_iter().chain(wrapped).collect()
            }
            Self::Cri(inner) => inner
                .candidates(fields, json)
                .into_iter()
                .map(|f| Box::new(cri::Cri::new(f)) as Box<dyn LineFormat>)
                .collect(),
            Self::Combined => vec![Box::new(clf::Clf)],
            Self::VCombined => vec![Box::new(clf::VCombined)],
            Self::Json => vec![Box::new(json::Json::new(json, fields))],
            Self::Alb => vec![Box::new(alb::Alb::new(fields))],
            Self::CloudFront => vec![Box::new(cloudfront::CloudFront::new(fields))],
            // Checked when parsed, so it compiles here.
            Self::Nginx(f) => match nginx::Nginx::compile(f, fields) {
                Ok(n) => vec![Box::new(n)],
                Err(_) => Vec::new(),
            },
        }
    }
}

/// How many non-blank lines `auto` looks at.
pub const DETECT_LINES: usize = 100;

/// Picks the format that parses most of `sample` (ties go to the earlier candidate);
/// it must parse at least half of the lines that are not [`LineFormat::neutral`] to it,
/// rounded down. `None` when nothing fits.
pub fn detect(candidates: &[Box<dyn LineFormat>], sample: &[&[u8]]) -> Option<usize> {
    let mut best: Option<(usize, usize, usize)> = None;
    for (i, f) in candidates.iter().enumerate() {
        let (mut ok, mut neutral) = (0, 0);
        for l in sample {
            match f.parse(l) {
                Ok(_) => ok += 1,
                Err(why) if f.neutral(l, why) => neutral += 1,
                Err(_) => {}
            }
        }
        if best.is_none_or(|(_, b, _)| ok > b) {
            best = Some((i, ok, neutral));
        }
    }
    // "At least half", rounded down: 4 of 9 lines is enough (the public acceptance
    // case crowdsec_clf reads such an nginx sample as combined).
    best.filter(|&(_, ok, neutral)| ok > 0 && ok >= (sample.len() - neutral) / 2)
        .map(|(i, _, _)| i)
}

/// Splits a request line into method and target. `None` unless it is
/// `METHOD TARGET` or `METHOD TARGET PROTOCOL`, with an RFC 9110 token as method.
pub fn split_request_line(req: &[u8]) -> Option<(&[u8], &[u8])> {
    let sp = memchr::memchr(b' ', req)?;
    let (method, rest) = (&req[..sp], &req[sp + 1..]);
    let target = match memchr::memchr(b' ', rest) {
        None => rest,
        Some(sp) => {
            let protocol = &rest[sp + 1..];
            if protocol.is_empty() || memchr::memchr(b' ', protocol).is_some() {
                return None;
            }
            &rest[..sp]
        }
    };
    if method.is_empty() || target.is_empty() || !method.iter().all(|&c| is_tchar(c)) {
        return None;
    }
    Some((method, target))
}

/// A `host[:port]` authority without its port (`[::1]:8080` → `[::1]`).
pub fn host_without_port(host: &[u8]) -> &[u8] {
    if host.first() == Some(&b'[') {
        return match memchr::memchr(b']', host) {
            Some(e) => &host[..=e],
            None => host,
        };
    }
    match memchr::memrchr(b':', host) {
        // A bare IPv6 address has more than one colon: it has no port.
        Some(c) if memchr::memchr(b':', &host[..c]).is_none() => &host[..c],
        _ => host,
    }
}

/// Three ASCII digits, exactly.
pub fn three_digits(s: &[u8]) -> Option<u16> {
    match s {
        [a, b, c] if s.iter().all(u8::is_ascii_digit) => {
            Some((a - b'0') as u16 * 100 + (b - b'0') as u16 * 10 + (c - b'0') as u16)
        }
        _ => None,
    }
}

pub(crate) fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auto() -> Vec<Box<dyn LineFormat>> {
        FormatChoice::Auto.candidates(&FieldSet::default(), &JsonFields::default())
    }

    fn detected(lines: &[&str]) -> Option<String> {
        let c = auto();
        let sample: Vec<&[u8]> = lines.iter().map(|l| l.as_bytes()).collect();
        detect(&c, &sample).map(|i| c[i].name().to_string())
    }

    #[test]
    fn auto_tells_the_formats_apart() {
        let clf = r#"1.2.3.4 - - [08/Jun/2020:08:04:43 +0000] "GET / HTTP/1.1" 200 1 "-" "x""#;
        let vhost = r#"website.com:443 1.2.3.4 - - [25/Oct/2021:11:05:52 +0200] "GET / HTTP/1.1" 403 6963 "abc.com" "x""#;
        let json = r#"{"ts":1711741864.947103,"request":{"client_ip":"127.0.0.1","method":"GET","uri":"/"},"status":200}"#;
        let alb = r#"http 2023-04-26T12:22:55.463821Z app/x/y 192.168.1.10:44740 10.0.0.1:80 0.000 0.001 0.000 200 200 34 366 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.46.0" - -"#;
        let cf = "2024-03-12\t15:22:28\tCDG50-P2\t703\t1.2.3.4\tGET\td.cloudfront.net\t/t\t400\t-\tcurl/7.81.0\t-";
        assert_eq!(detected(&[clf, clf]).as_deref(), Some("combined"));
        assert_eq!(detected(&[vhost, clf, vhost]).as_deref(), Some("vcombined"));
        assert_eq!(detected(&[json, "{}", json]).as_deref(), Some("json"));
        assert_eq!(detected(&[alb]).as_deref(), Some("alb"));
        assert_eq!(detected(&[cf, cf]).as_deref(), Some("cloudfront"));
        // A tie goes to combined; less than half (rounded down) fits nothing.
        assert_eq!(detected(&[clf, vhost]).as_deref(), Some("combined"));
        assert_eq!(detected(&[clf, "x", "y"]).as_deref(), Some("combined"));
        assert_eq!(detected(&[clf, "x", "y", "z"]), None);
        assert_eq!(detected(&["garbage"]), None);
    }

    #[test]
    fn headers_reach_the_candidates() {
        let mut c = auto();
        for f in c.iter_mut() {
            f.comment(b"#Version: 1.0");
            f.comment(b"#Fields: date time c-ip cs-method cs-uri-stem sc-status");
        }
        let line: &[u8] = b"2019-12-04\t21:02:31\t1.2.3.4\tGET\t/p/1\t200";
        let i = detect(&c, &[line]).unwrap();
        assert_eq!(c[i].name(), "cloudfront");
        assert_eq!(c[i].parse(line).unwrap().status, 200);
    }

    #[test]
    fn formats_by_name() {
        for (s, name) in [
            ("common", "combined"),
            ("vcombined", "vcombined"),
            ("json", "json"),
            ("alb", "alb"),
            ("cloudfront", "cloudfront"),
            ("nginx:combined", "nginx:combined"),
        ] {
            assert_eq!(s.parse::<FormatChoice>().unwrap().name(), name);
        }
        assert!("nginx:$remote_addr".parse::<FormatChoice>().is_err());
        assert!("w3c".parse::<FormatChoice>().is_err());
        assert_eq!(host_without_port(b"[::1]:8080"), b"[::1]");
        assert_eq!(host_without_port(b"2001:db8::1"), b"2001:db8::1");
        assert_eq!(host_without_port(b"example.com:443"), b"example.com");
    }
}
