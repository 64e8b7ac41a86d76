//! Formats: one log line → one [`Request`].
//!
//! Each format lives in its own file behind the [`LineFormat`] trait. A format only
//! reads fields; what they mean (the client key, the post weight) is decided later, in
//! `client` and `weigh`.

pub mod clf;

use crate::time::Micros;
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
}

/// What `--format` asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormatChoice {
    Auto,
    /// `combined` and `common` are one parser: referer and user agent are optional.
    Combined,
}

impl std::str::FromStr for FormatChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "combined" | "common" => Ok(Self::Combined),
            "vcombined" | "json" | "alb" | "cloudfront" => Err(format!(
                "format '{s}' is not supported yet (supported: auto, combined, common)"
            )),
            other if other.starts_with("nginx:") => Err(
                "nginx log_format strings are not supported yet (supported: auto, combined, common)"
                    .into(),
            ),
            _ => Err(format!(
                "unknown format '{s}' (use auto, combined, common, vcombined, json, alb, cloudfront or nginx:'<log_format>')"
            )),
        }
    }
}

impl FormatChoice {
    pub fn name(&self) -> String {
        match self {
            Self::Auto => "auto".into(),
            Self::Combined => "combined".into(),
        }
    }

    /// The formats to use: one for a fixed choice, every candidate for `auto`,
    /// in order of preference on a tie. Each fills the named `fields` it can.
    pub fn candidates(&self, _fields: &FieldSet) -> Vec<Box<dyn LineFormat>> {
        match self {
            Self::Auto | Self::Combined => vec![Box::new(clf::Clf)],
        }
    }
}

/// How many non-blank lines `auto` looks at.
pub const DETECT_LINES: usize = 100;

/// Picks the format that parses most of `sample` (ties go to the earlier candidate);
/// it must parse at least half of them. `None` when nothing fits.
pub fn detect(candidates: &[Box<dyn LineFormat>], sample: &[&[u8]]) -> Option<usize> {
    let mut best: Option<(usize, usize)> = None;
    for (i, f) in candidates.iter().enumerate() {
        let ok = sample.iter().filter(|l| f.parse(l).is_ok()).count();
        if best.is_none_or(|(_, b)| ok > b) {
            best = Some((i, ok));
        }
    }
    best.filter(|&(_, ok)| ok > 0 && 2 * ok >= sample.len())
        .map(|(i, _)| i)
}

/// Splits a request line into method and target. `None` unless it is
/// `METHOD TARGET` or `METHOD TARGET PROTOCOL`, with an RFC 9110 token as method.
pub fn split_request_line(req: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut parts = req.split(|&c| c == b' ');
    let method = parts.next()?;
    let target = parts.next()?;
    let protocol = parts.next();
    if parts.next().is_some()
        || method.is_empty()
        || target.is_empty()
        || protocol.is_some_and(|p| p.is_empty())
        || !method.iter().all(|&c| is_tchar(c))
    {
        return None;
    }
    Some((method, target))
}

fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}
