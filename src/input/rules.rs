//! Rules files (`--rules FILE`, TOML): ordered rules that decide the post weight of a
//! request, replacing the default rule of SPEC.md.
//!
//! The first rule whose conditions (method, path, host, status) all hold gives the
//! weight; a request that no rule matches weighs 0. Everything is compiled once when
//! the file is loaded: globs become regexes, statuses a bit set, field names indexes
//! into [`FieldSet`]. Weighing a request allocates nothing.

use crate::engine::text::path_of;
use crate::input::format::{FieldSet, Request};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::path::Path;

/// The largest weight one request can have (query and field values are capped here,
/// so that sums over many requests cannot overflow).
pub const MAX_REQUEST_POSTS: u64 = 1_000_000_000;

/// A loaded, validated rules file.
#[derive(Debug, Clone)]
pub struct RuleSet {
    /// The file, as given.
    pub path: String,
    /// SHA-256 of the file's bytes, in hex.
    pub sha256: String,
    /// The file's text, as read (shown in the reports, for the record).
    pub text: String,
    pub rules: Vec<Rule>,
}

/// One compiled `[[rule]]`.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    /// Empty: any method.
    methods: Vec<Box<[u8]>>,
    path: Option<regex::bytes::Regex>,
    host: Option<Box<[u8]>>,
    status: StatusSet,
    pub posts: Posts,
}

/// Status codes 0–639 as a bit set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StatusSet([u64; 10]);

impl StatusSet {
    fn insert(&mut self, code: u16) {
        self.0[code as usize / 64] |= 1 << (code % 64);
    }
    #[inline]
    fn contains(&self, code: u16) -> bool {
        self.0
            .get(code as usize / 64)
            .is_some_and(|w| w & (1 << (code % 64)) != 0)
    }
}

/// Where a rule's weight comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Posts {
    Constant(u64),
    /// The first occurrence of a query parameter.
    Query {
        name: Box<[u8]>,
        default: u64,
        max: Option<u64>,
    },
    /// A logged named field, at `index` in [`Request::fields`].
    Field {
        name: String,
        index: usize,
        default: u64,
        max: Option<u64>,
    },
}

/// Why a rules file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("cannot read rules file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// The file does not compile; the message names the file, the rule and the reason.
    #[error("{0}")]
    Invalid(String),
}

impl RuleSet {
    /// Reads and compiles `path`; registers the fields its rules weigh by in `fields`.
    pub fn load(path: &Path, fields: &mut FieldSet) -> Result<RuleSet, RulesError> {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| RulesError::Read {
            path: shown.clone(),
            source,
        })?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| RulesError::Invalid(format!("rules file {shown}: not UTF-8 text")))?;
        let mut set = RuleSet::parse(text, &shown, fields)?;
        set.sha256 = hex::encode(Sha256::digest(&bytes));
        set.text = text.to_string();
        Ok(set)
    }

    /// Compiles the text of a rules file; `source` names it in errors.
    pub fn parse(text: &str, source: &str, fields: &mut FieldSet) -> Result<RuleSet, RulesError> {
        let file: RulesFileDef = toml::from_str(text)
            .map_err(|e| RulesError::Invalid(format!("rules file {source}: {e}")))?;
        if file.rule.is_empty() {
            return Err(RulesError::Invalid(format!(
                "rules file {source}: no [[rule]] (a rules file replaces the default rule, so it needs at least one)"
            )));
        }
        let rules = file
            .rule
            .into_iter()
            .enumerate()
            .map(|(i, table)| {
                let label = match table.get("name").and_then(|n| n.as_str()) {
                    Some(n) => format!("rule {} (\"{n}\")", i + 1),
                    None => format!("rule {}", i + 1),
                };
                compile_rule(i, table, fields)
                    .map_err(|e| RulesError::Invalid(format!("rules file {source}: {label}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RuleSet {
            path: source.to_string(),
            sha256: String::new(),
            text: text.to_string(),
            rules,
        })
    }

    /// The post weight of `req`: the first matching rule's, else 0. A request whose
    /// request field could not be read weighs 0 whatever the rules say.
    #[inline]
    pub fn weight(&self, req: &Request<'_>) -> u64 {
        let Some(target) = req.target.as_deref() else {
            return 0;
        };
        let path = path_of(target);
        self.rules
            .iter()
            .find(|r| r.matches(req, path))
            .map_or(0, |r| r.posts.weigh(req, target))
    }

    /// The index of the rule that decides `req`'s weight, with the weight; `None` when
    /// no rule matches or the request field could not be read (weight 0).
    pub fn matching(&self, req: &Request<'_>) -> Option<(usize, u64)> {
        let target = req.target.as_deref()?;
        let path = path_of(target);
        let i = self.rules.iter().position(|r| r.matches(req, path))?;
        Some((i, self.rules[i].posts.weigh(req, target)))
    }

    pub fn names(&self) -> Vec<&str> {
        self.rules.iter().map(|r| r.name.as_str()).collect()
    }
}

impl Rule {
    #[inline]
    fn matches(&self, req: &Request<'_>, path: &[u8]) -> bool {
        if !self.status.contains(req.status) {
            return false;
        }
        if !self.methods.is_empty() {
            match req.method.as_deref() {
                Some(m) if self.methods.iter().any(|x| x.eq_ignore_ascii_case(m)) => {}
                _ => return false,
            }
        }
        if let Some(host) = &self.host {
            match req.host.as_deref() {
                Some(h) if host_matches(host, h) => {}
                _ => return false,
            }
        }
        self.path.as_ref().is_none_or(|re| re.is_match(path))
    }
}

/// Host names compare case-insensitively; a logged `:port` is ignored unless the rule
/// names one.
fn host_matches(rule: &[u8], logged: &[u8]) -> bool {
    if logged.eq_ignore_ascii_case(rule) {
        return true;
    }
    logged.len() > rule.len() + 1
        && logged[..rule.len()].eq_ignore_ascii_case(rule)
        && logged[rule.len()] == b':'
        && logged[rule.len() + 1..].iter().all(u8::is_ascii_digit)
}

impl Posts {
    #[inline]
    pub fn weigh(&self, req: &Request<'_>, target: &[u8]) -> u64 {
        match self {
            Posts::Constant(n) => *n,
            Posts::Query { name, default, max } => {
                let value = query_param(target, name);
                capped(value.and_then(digits).unwrap_or(*default), *max)
            }
            Posts::Field {
                index,
                default,
                max,
                ..
            } => {
                let value = req.fields.get(*index).and_then(|v| v.as_deref());
                capped(value.and_then(digits).unwrap_or(*default), *max)
            }
        }
    }
}

fn capped(n: u64, max: Option<u64>) -> u64 {
    n.min(max.unwrap_or(MAX_REQUEST_POSTS))
        .min(MAX_REQUEST_POSTS)
}

/// A non-empty run of ASCII digits as a number (saturating); anything else is `None`.
fn digits(v: &[u8]) -> Option<u64> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0u64, |n, &d| {
        n.saturating_mul(10).saturating_add((d - b'0') as u64)
    }))
}

/// The value of the first occurrence of parameter `name` in the query of `target`
/// (split on `&`, no percent-decoding; `name` alone has an empty value).
pub fn query_param<'t>(target: &'t [u8], name: &[u8]) -> Option<&'t [u8]> {
    let q = memchr::memchr(b'?', target)?;
    let query = &target[q + 1..];
    let query = match memchr::memchr(b'#', query) {
        Some(h) => &query[..h],
        None => query,
    };
    query.split(|&c| c == b'&').find_map(|pair| {
        let (k, v) = match memchr::memchr(b'=', pair) {
            Some(e) => (&pair[..e], &pair[e + 1..]),
            None => (pair, &pair[pair.len()..]),
        };
        (k == name).then_some(v)
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFileDef {
    #[serde(default)]
    rule: Vec<toml::Table>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleDef {
    name: Option<String>,
    method: Option<toml::Value>,
    path: Option<String>,
    path_regex: Option<String>,
    host: Option<String>,
    status: Option<Vec<toml::Value>>,
    posts: Option<toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PostsDef {
    query: Option<String>,
    field: Option<String>,
    default: Option<i64>,
    max: Option<i64>,
}

fn compile_rule(i: usize, table: toml::Table, fields: &mut FieldSet) -> Result<Rule, String> {
    let def: RuleDef = toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| e.message().to_string())?;
    let name = match def.name {
        Some(n) if n.trim().is_empty() => return Err("name is empty".into()),
        Some(n) => n,
        None => format!("rule {}", i + 1),
    };
    let methods = match def.method {
        None => Vec::new(),
        Some(toml::Value::String(s)) => vec![method(&s)?],
        Some(toml::Value::Array(a)) if !a.is_empty() => a
            .iter()
            .map(|v| match v {
                toml::Value::String(s) => method(s),
                other => Err(format!("method: expected a string, got {other}")),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(format!(
                "method: expected a list of methods like [\"GET\"], got {other}"
            ))
        }
    };
    let path = match (def.path, def.path_regex) {
        (Some(_), Some(_)) => return Err("give path or path_regex, not both".into()),
        (Some(glob), None) => Some(compile_glob(&glob)?),
        (None, Some(re)) => Some(
            regex::bytes::Regex::new(&re)
                .map_err(|e| format!("path_regex '{re}' is not a valid regex: {e}"))?,
        ),
        (None, None) => None,
    };
    let host = match def.host {
        Some(h) if h.is_empty() => return Err("host is empty".into()),
        Some(h) => Some(h.into_bytes().into_boxed_slice()),
        None => None,
    };
    let status = match def.status {
        None => {
            let mut s = StatusSet([0; 10]);
            (200..300).chain([304]).for_each(|c| s.insert(c));
            s
        }
        Some(list) if list.is_empty() => {
            return Err("status is empty (leave it out for the default [\"2xx\", \"304\"])".into())
        }
        Some(list) => {
            let mut s = StatusSet([0; 10]);
            for v in &list {
                status(v, &mut s)?;
            }
            s
        }
    };
    let posts = match def.posts {
        None => return Err("posts is missing (a number, or { query = ... } or { field = ... })".into()),
        Some(toml::Value::Integer(n)) => Posts::Constant(weight_value("posts", n)?),
        Some(toml::Value::Table(t)) => {
            let p: PostsDef = toml::Value::Table(t)
                .try_into()
                .map_err(|e: toml::de::Error| format!("posts: {}", e.message()))?;
            let default = p
                .default
                .map(|d| weight_value("posts.default", d))
                .transpose()?
                .unwrap_or(0);
            let max = p.max.map(|m| weight_value("posts.max", m)).transpose()?;
            match (p.query, p.field) {
                (Some(q), None) if !q.is_empty() => Posts::Query {
                    name: q.into_bytes().into_boxed_slice(),
                    default,
                    max,
                },
                (None, Some(f)) if !f.is_empty() => Posts::Field {
                    index: fields.add(&f),
                    name: f,
                    default,
                    max,
                },
                (Some(_), Some(_)) => return Err("posts: give query or field, not both".into()),
                (None, None) => {
                    return Err("posts: a table needs query = \"NAME\" or field = \"NAME\"".into())
                }
                _ => return Err("posts: the query or field name is empty".into()),
            }
        }
        Some(other) => {
            return Err(format!(
                "posts: expected a number or a table like {{ query = \"count\", default = 20 }}, got {other}"
            ))
        }
    };
    Ok(Rule {
        name,
        methods,
        path,
        host,
        status,
        posts,
    })
}

fn method(s: &str) -> Result<Box<[u8]>, String> {
    if s.is_empty()
        || !s
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c))
    {
        return Err(format!("method '{s}' is not an HTTP method"));
    }
    Ok(s.as_bytes().into())
}

fn weight_value(what: &str, n: i64) -> Result<u64, String> {
    if n < 0 {
        return Err(format!("{what} = {n}: a weight cannot be negative"));
    }
    if n as u64 > MAX_REQUEST_POSTS {
        return Err(format!(
            "{what} = {n}: more than {MAX_REQUEST_POSTS} posts for one request"
        ));
    }
    Ok(n as u64)
}

/// `"2xx"` (any class 1xx–5xx) or an exact code, as a string or an integer.
fn status(v: &toml::Value, set: &mut StatusSet) -> Result<(), String> {
    let bad = || format!("status {v} is not a class like \"2xx\" or a code from 100 to 599");
    match v {
        toml::Value::Integer(n) if (100..=599).contains(n) => set.insert(*n as u16),
        toml::Value::String(s) => match s.as_bytes() {
            [c @ b'1'..=b'5', x, y]
                if x.eq_ignore_ascii_case(&b'x') && y.eq_ignore_ascii_case(&b'x') =>
            {
                let base = (c - b'0') as u16 * 100;
                (base..base + 100).for_each(|code| set.insert(code));
            }
            [a, b, c] if [a, b, c].iter().all(|d| d.is_ascii_digit()) => {
                let code: u16 = s.parse().map_err(|_| bad())?;
                if !(100..=599).contains(&code) {
                    return Err(bad());
                }
                set.insert(code);
            }
            _ => return Err(bad()),
        },
        _ => return Err(bad()),
    }
    Ok(())
}

/// A path glob as SPEC.md has it: `*` within one segment, `**` across segments.
/// globset parses it; its regex is matched on the path bytes directly.
fn compile_glob(glob: &str) -> Result<regex::bytes::Regex, String> {
    let g = globset::GlobBuilder::new(glob)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map_err(|e| format!("path '{glob}' is not a valid glob: {e}"))?;
    regex::bytes::RegexBuilder::new(g.regex())
        .dot_matches_new_line(true)
        .build()
        .map_err(|e| format!("path '{glob}' is not a valid glob: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn set(text: &str) -> RuleSet {
        RuleSet::parse(text, "test.toml", &mut FieldSet::default()).unwrap()
    }

    fn err(text: &str) -> String {
        RuleSet::parse(text, "test.toml", &mut FieldSet::default())
            .unwrap_err()
            .to_string()
    }

    fn req(method: &str, target: &str, status: u16) -> Request<'static> {
        Request {
            method: Some(Cow::Owned(method.as_bytes().to_vec())),
            target: Some(Cow::Owned(target.as_bytes().to_vec())),
            status,
            ..Default::default()
        }
    }

    fn get(target: &str) -> Request<'static> {
        req("GET", target, 200)
    }

    fn glob_matches(glob: &str, path: &str) -> bool {
        compile_glob(glob).unwrap().is_match(path.as_bytes())
    }

    #[test]
    fn glob_semantics() {
        assert!(glob_matches("/api/*/timeline/**", "/api/v2/timeline/home"));
        assert!(glob_matches("/api/*/timeline/**", "/api/v2/timeline/a/b/c"));
        assert!(!glob_matches(
            "/api/*/timeline/**",
            "/api/v2/x/timeline/home"
        ));
        assert!(!glob_matches("/api/*/timeline/**", "/api/v2/timeline"));
        // `*` stays within one segment, `**` crosses them.
        assert!(glob_matches("/x/*", "/x/a"));
        assert!(!glob_matches("/x/*", "/x/a/b"));
        assert!(glob_matches("/x/**", "/x/a/b"));
        assert!(!glob_matches("/x/**", "/x"));
        assert!(glob_matches("/x/**/y", "/x/y"));
        assert!(glob_matches("/x/**/y", "/x/a/b/y"));
        assert!(glob_matches("/*.json", "/feed.json"));
        assert!(!glob_matches("/*.json", "/a/feed.json"));
        // The whole path must match.
        assert!(!glob_matches("/x", "/x/y"));
        assert!(!glob_matches("/x", "/a/x"));
        assert!(glob_matches("/p/[0-9]*", "/p/12"));
        assert!(glob_matches("/p/{a,b}", "/p/b"));
        // Non-UTF-8 paths are matched as bytes.
        assert!(compile_glob("/u/*").unwrap().is_match(b"/u/\xff\xfe"));
    }

    #[test]
    fn globs_match_the_path_without_query() {
        let r = set("[[rule]]\nname = \"t\"\npath = \"/t/*\"\nposts = 1");
        assert_eq!(r.weight(&get("/t/1?x=/y/z")), 1);
        assert_eq!(r.weight(&get("http://h.example/t/1?x")), 1);
        assert_eq!(r.weight(&get("/t/1/2")), 0);
    }

    #[test]
    fn regex_searches_the_path() {
        let r = set("[[rule]]\nname = \"s\"\npath_regex = 'status/\\d+'\nposts = 1");
        assert_eq!(r.weight(&get("/jack/status/12")), 1);
        assert_eq!(r.weight(&get("/jack/status/12/likes")), 1);
        assert_eq!(r.weight(&get("/jack/status/x?q=status/1")), 0);
        let r = set("[[rule]]\nname = \"s\"\npath_regex = '^/[^/]+/status/\\d+$'\nposts = 1");
        assert_eq!(r.weight(&get("/jack/status/12")), 1);
        assert_eq!(r.weight(&get("/jack/status/12/likes")), 0);
        assert_eq!(r.weight(&get("/a/jack/status/12")), 0);
    }

    #[test]
    fn status_classes_and_codes() {
        let r = set("[[rule]]\nname = \"d\"\nposts = 1");
        for (code, w) in [(200, 1), (299, 1), (304, 1), (301, 0), (404, 0), (500, 0)] {
            assert_eq!(r.weight(&req("GET", "/a", code)), w, "{code}");
        }
        let r = set("[[rule]]\nname = \"d\"\nstatus = [\"4xx\", \"503\", 200]\nposts = 1");
        for (code, w) in [(200, 1), (201, 0), (404, 1), (499, 1), (503, 1), (500, 0)] {
            assert_eq!(r.weight(&req("GET", "/a", code)), w, "{code}");
        }
        for bad in ["\"2x\"", "\"6xx\"", "\"abc\"", "\"099\"", "600", "true"] {
            let e = err(&format!(
                "[[rule]]\nname = \"d\"\nstatus = [{bad}]\nposts = 1"
            ));
            assert!(e.contains("rule 1 (\"d\")") && e.contains("status"), "{e}");
        }
    }

    #[test]
    fn query_weights() {
        let r =
            set("[[rule]]\nname = \"q\"\nposts = { query = \"count\", default = 20, max = 200 }");
        assert_eq!(r.weight(&get("/tl?count=50")), 50);
        assert_eq!(r.weight(&get("/tl?a=1&count=7&b")), 7);
        assert_eq!(r.weight(&get("/tl")), 20);
        assert_eq!(r.weight(&get("/tl?counts=5")), 20);
        assert_eq!(r.weight(&get("/tl?count=")), 20);
        assert_eq!(r.weight(&get("/tl?count")), 20);
        assert_eq!(r.weight(&get("/tl?count=5x")), 20);
        assert_eq!(r.weight(&get("/tl?count=-5")), 20);
        assert_eq!(r.weight(&get("/tl?count=%35")), 20);
        assert_eq!(r.weight(&get("/tl?count=500")), 200);
        assert_eq!(r.weight(&get("/tl?count=99999999999999999999999")), 200);
        assert_eq!(r.weight(&get("/tl?count=0")), 0);
        // The first occurrence counts, even when it is not a number.
        assert_eq!(r.weight(&get("/tl?count=3&count=9")), 3);
        assert_eq!(r.weight(&get("/tl?count=x&count=9")), 20);
        assert_eq!(r.weight(&get("/tl?count=3#count=9")), 3);
        // Without max, only the sanity cap applies; without default, 0.
        let r = set("[[rule]]\nname = \"q\"\nposts = { query = \"n\" }");
        assert_eq!(r.weight(&get("/?n=123456")), 123456);
        assert_eq!(
            r.weight(&get("/?n=99999999999999999999")),
            MAX_REQUEST_POSTS
        );
        assert_eq!(r.weight(&get("/?m=1")), 0);
        // max also caps the default.
        let r = set("[[rule]]\nname = \"q\"\nposts = { query = \"n\", default = 50, max = 10 }");
        assert_eq!(r.weight(&get("/")), 10);
    }

    #[test]
    fn field_weights() {
        let mut fields = FieldSet::default();
        fields.add("api_key");
        let text =
            "[[rule]]\nname = \"f\"\nposts = { field = \"x_posts\", default = 2, max = 100 }";
        let r = RuleSet::parse(text, "t", &mut fields).unwrap();
        assert_eq!(fields.index_of("x_posts"), Some(1));
        let mut q = get("/graphql");
        assert_eq!(r.weight(&q), 2, "field not extracted");
        q.fields = vec![None, Some(Cow::Borrowed(b"17".as_slice()))];
        assert_eq!(r.weight(&q), 17);
        q.fields[1] = Some(Cow::Borrowed(b"-".as_slice()));
        assert_eq!(r.weight(&q), 2);
        q.fields[1] = Some(Cow::Borrowed(b"1000".as_slice()));
        assert_eq!(r.weight(&q), 100);
        q.fields[1] = None;
        assert_eq!(r.weight(&q), 2);
    }

    #[test]
    fn methods() {
        let r = set("[[rule]]\nname = \"m\"\nmethod = [\"GET\", \"HEAD\"]\nposts = 1");
        assert_eq!(r.weight(&req("GET", "/", 200)), 1);
        assert_eq!(r.weight(&req("HEAD", "/", 200)), 1);
        assert_eq!(r.weight(&req("POST", "/", 200)), 0);
        // A request field that is not METHOD TARGET weighs 0, whatever the rules.
        let r = set("[[rule]]\nname = \"all\"\nposts = 5");
        let mut junk = get("/");
        junk.method = None;
        junk.target = None;
        assert_eq!(r.weight(&junk), 0);
        assert_eq!(r.weight(&req("DELETE", "/x.css", 204)), 5);
    }

    #[test]
    fn host_never_matches_without_a_logged_host() {
        let r = set("[[rule]]\nname = \"h\"\nhost = \"api.example.com\"\nposts = 3");
        let mut q = get("/");
        assert_eq!(r.weight(&q), 0);
        q.host = Some(Cow::Borrowed(b"API.example.com".as_slice()));
        assert_eq!(r.weight(&q), 3);
        q.host = Some(Cow::Borrowed(b"api.example.com:8443".as_slice()));
        assert_eq!(r.weight(&q), 3);
        q.host = Some(Cow::Borrowed(b"api.example.com.evil".as_slice()));
        assert_eq!(r.weight(&q), 0);
        q.host = Some(Cow::Borrowed(b"www.example.com".as_slice()));
        assert_eq!(r.weight(&q), 0);
    }

    #[test]
    fn first_matching_rule_wins_and_none_weighs_zero() {
        let r = set(concat!(
            "[[rule]]\nname = \"statics\"\npath_regex = '\\.css$'\nposts = 0\n",
            "[[rule]]\nname = \"timeline\"\npath = \"/api/*/timeline/**\"\nposts = { query = \"count\", default = 20 }\n",
            "[[rule]]\nname = \"api\"\npath = \"/api/**\"\nposts = 2\n",
            "[[rule]]\nname = \"errors too\"\nstatus = [\"4xx\"]\npath = \"/p/*\"\nposts = 1\n",
        ));
        assert_eq!(r.names(), ["statics", "timeline", "api", "errors too"]);
        assert_eq!(r.weight(&get("/api/v1/timeline/home.css")), 0);
        assert_eq!(r.weight(&get("/api/v1/timeline/home?count=30")), 30);
        assert_eq!(r.weight(&get("/api/v1/users")), 2);
        assert_eq!(r.weight(&req("GET", "/p/1", 404)), 1);
        assert_eq!(r.weight(&get("/p/1")), 0);
        assert_eq!(r.weight(&get("/other")), 0);
    }

    #[test]
    fn bad_files_are_refused_with_the_rule_named() {
        for (text, needle) in [
            ("", "no [[rule]]"),
            ("[[rules]]\nposts = 1", "unknown field"),
            ("[[rule]]\nname = \"a\"\npaht = \"/x\"\nposts = 1", "rule 1 (\"a\"): unknown field `paht`"),
            ("[[rule]]\nname = \"a\"\nposts = 1\n[[rule]]\nname = \"b\"\npath = \"/x\"\npath_regex = \"x\"\nposts = 1", "rule 2 (\"b\"): give path or path_regex"),
            ("[[rule]]\nname = \"a\"\npath_regex = \"(x\"\nposts = 1", "not a valid regex"),
            ("[[rule]]\nname = \"a\"\npath = \"/[x\"\nposts = 1", "not a valid glob"),
            ("[[rule]]\nname = \"a\"", "posts is missing"),
            ("[[rule]]\nname = \"a\"\nposts = -1", "negative"),
            ("[[rule]]\nname = \"a\"\nposts = 2000000000", "more than 1000000000 posts"),
            ("[[rule]]\nname = \"a\"\nposts = 1.5", "expected a number"),
            ("[[rule]]\nname = \"a\"\nposts = { query = \"c\", field = \"f\" }", "not both"),
            ("[[rule]]\nname = \"a\"\nposts = { qeury = \"c\" }", "unknown field `qeury`"),
            ("[[rule]]\nname = \"a\"\nposts = { default = 3 }", "needs query"),
            ("[[rule]]\nname = \"a\"\nmethod = [\"G T\"]\nposts = 1", "not an HTTP method"),
            ("[[rule]]\nname = \"a\"\nstatus = []\nposts = 1", "status is empty"),
            ("[[rule]]\nname = \"a\"\nhost = \"\"\nposts = 1", "host is empty"),
        ] {
            let e = err(text);
            assert!(e.contains(needle), "{text:?}: {e}");
            assert!(e.starts_with("rules file test.toml"), "{e}");
        }
        // A rule without a name is named by its position.
        assert_eq!(set("[[rule]]\nposts = 1").names(), ["rule 1"]);
    }
}
