//! The second read: what the reports show of the reported (flagged and exempt)
//! clients' requests beyond their counts, found by reading the logs once more.
//!
//! The first pass keeps counts only. One more read, of the files that can hold a
//! request of a reported client, finds at once:
//! - the evidence lines of each billed window ([`crate::evidence`]);
//! - with `--orgs`, the top member keys of each organisation ([`crate::members`]);
//! - each client's top paths and top user agents ([`crate::tops`]).
//!
//! Only files whose time range (known from the first pass) meets a reported client's
//! first-to-last request span are read, in parallel; standard input cannot be read
//! again and gives nothing. With `--no-evidence` there is no second read, and none of
//! the three is in the reports.
//!
//! When every reported client is a plain IPv4 address, lines that cannot be theirs are
//! not even parsed (see [`ipv4_prefilter`]).

use crate::analyze::Analysis;
use crate::client::{parse_canonical_ipv4, ClientKind};
use crate::config::Config;
use crate::discover::{Input, Source};
use crate::evidence::{self, At, Edges, Found};
use crate::format::Request;
use crate::members;
use crate::scan::{read_input, OnRequest, ScanOutput};
use crate::time::Micros;
use crate::tops::Tops;
use aho_corasick::AhoCorasick;
use rayon::prelude::*;
use rustc_hash::FxHashMap;

/// Whether the second read may skip lines by a prefilter on their raw bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefilter {
    /// Where it is sound (see [`ipv4_prefilter`]).
    Auto,
    /// Parse every line (for tests: the prefilter must not change the outcome).
    Off,
}

/// Fills the evidence, members and tops of every client in `analysis`.
pub fn attach(cfg: &Config, scan: &ScanOutput, analysis: &mut Analysis) {
    attach_with(cfg, scan, analysis, Prefilter::Auto);
}

/// [`attach`], choosing whether lines may be skipped unparsed.
pub fn attach_with(cfg: &Config, scan: &ScanOutput, analysis: &mut Analysis, pre: Prefilter) {
    if analysis.clients.is_empty() {
        return;
    }
    let clients: FxHashMap<Box<[u8]>, usize> = analysis
        .clients
        .iter()
        .enumerate()
        .map(|(i, c)| (c.key.clone(), i))
        .collect();
    let edges = evidence::wanted(analysis);
    let orgs: Vec<bool> = analysis
        .clients
        .iter()
        .map(|c| members::is_org(cfg, &c.key))
        .collect();
    let filter = match pre {
        Prefilter::Auto => ipv4_prefilter(cfg, analysis.clients.iter().map(|c| &*c.key)),
        Prefilter::Off => None,
    };
    let spans = spans(
        analysis
            .clients
            .iter()
            .map(|c| (c.first_request, c.last_request)),
    );
    let files: Vec<(usize, &Input)> = scan
        .inputs
        .iter()
        .enumerate()
        .filter(|(_, i)| matches!(i.source, Source::Path(_)))
        .filter(|(_, i)| {
            scan.files
                .iter()
                .find(|f| f.path == i.name)
                .is_some_and(|f| match (f.first_request, f.last_request) {
                    (Some(a), Some(b)) => meets(&spans, a, b),
                    _ => false,
                })
        })
        .collect();
    let mut all = Part::default();
    in_file_order(
        &files,
        |&(file, input)| {
            let mut reader = Reader {
                cfg,
                clients: &clients,
                edges: &edges,
                orgs: &orgs,
                filter: filter.as_ref(),
                file,
                name: &input.name,
                own: Vec::new(),
                part: Part::default(),
            };
            read_input(cfg, input, &mut reader);
            reader.part
        },
        |part| all.merge(part),
    );
    evidence::place(all.found, analysis);
    for (i, c) in analysis.clients.iter_mut().enumerate() {
        c.tops = Some(all.tops.remove(&i).unwrap_or_default().lists());
        if orgs[i] {
            c.members = Some(members::top(all.members.remove(&i).unwrap_or_default()));
        }
    }
}

/// A prefilter over raw lines when the client key is `ip`, there is no organisations
/// file, and every reported client is an IPv4 address written canonically (dotted
/// quad, no leading zeros): only lines holding one of these byte strings are parsed
/// - every client key, as is;
/// - `ffff:`, in any case;
/// - `\u`.
///
/// Why no line of a reported client is skipped: an IPv4 key comes from a remote
/// address ([`crate::client::key_into`]) that is either that dotted quad (bare or in
/// brackets: it holds the key), or an IPv4-mapped IPv6 address, whose sixth group
/// `ffff` is always followed by `:` (however it is compressed or written: hex groups
/// such as `::ffff:c633:6417` do not hold the key, but hold `ffff:`). Every format
/// takes the remote address from the line as bytes, except JSON, which unescapes its
/// strings: a digit there may be written `\u0031`, and such lines are parsed too.
/// Lines that are kept are parsed and keyed as in the first pass, so a line of
/// another client that happens to hold a key's bytes is simply not counted.
pub fn ipv4_prefilter<'a>(
    cfg: &Config,
    keys: impl Iterator<Item = &'a [u8]>,
) -> Option<AhoCorasick> {
    if cfg.client != ClientKind::Ip || cfg.keyer.orgs.is_some() || cfg.keyer.field_index.is_some() {
        return None;
    }
    let mut patterns: Vec<&[u8]> = Vec::new();
    for k in keys {
        parse_canonical_ipv4(k)?;
        patterns.push(k);
    }
    patterns.extend([b"ffff:".as_slice(), b"\\u".as_slice()]);
    AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build(patterns)
        .ok()
}

/// The clients' first-to-last request spans, merged where they overlap, sorted.
fn spans(all: impl Iterator<Item = (Micros, Micros)>) -> Vec<(Micros, Micros)> {
    let mut all: Vec<(Micros, Micros)> = all.collect();
    all.sort_unstable();
    let mut out: Vec<(Micros, Micros)> = Vec::new();
    for (a, b) in all {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// Whether `[a, b]` meets one of the (merged, sorted) `spans`.
fn meets(spans: &[(Micros, Micros)], a: Micros, b: Micros) -> bool {
    let i = spans.partition_point(|s| s.1 < a);
    i < spans.len() && spans[i].0 <= b
}

/// Runs `read` over `items` in parallel and hands the results to `merge` in the order
/// of `items`, a few at a time (so that at most a few results are held at once, and a
/// merge that drops values, as [`Tops`] may, gives the same outcome on any number of
/// threads).
pub fn in_file_order<I: Sync, T: Send>(
    items: &[I],
    read: impl Fn(&I) -> T + Sync,
    mut merge: impl FnMut(T),
) {
    let at_once = rayon::current_num_threads().max(1) * 8;
    for group in items.chunks(at_once) {
        let parts: Vec<T> = group.par_iter().map(&read).collect();
        parts.into_iter().for_each(&mut merge);
    }
}

/// What the second read finds in one file.
#[derive(Default)]
struct Part {
    found: Vec<Found>,
    /// Per client (index into `analysis.clients`).
    members: FxHashMap<usize, members::Counts>,
    tops: FxHashMap<usize, Tops>,
}

impl Part {
    fn merge(&mut self, other: Part) {
        self.found.extend(other.found);
        for (client, counts) in other.members {
            members::merge(self.members.entry(client).or_default(), counts);
        }
        for (client, tops) in other.tops {
            self.tops.entry(client).or_default().merge(tops);
        }
    }
}

struct Reader<'a> {
    cfg: &'a Config,
    /// Client key → index into `analysis.clients`.
    clients: &'a FxHashMap<Box<[u8]>, usize>,
    edges: &'a [Edges],
    orgs: &'a [bool],
    filter: Option<&'a AhoCorasick>,
    /// The input's place among the sorted inputs, and its name.
    file: usize,
    name: &'a str,
    own: Vec<u8>,
    part: Part,
}

impl OnRequest for Reader<'_> {
    #[inline]
    fn keep(&self, line: &[u8]) -> bool {
        self.filter.is_none_or(|f| f.is_match(line))
    }

    fn request(&mut self, line_no: u64, req: &Request<'_>, key: &[u8], line: &[u8]) -> u64 {
        let Some(&client) = self.clients.get(key) else {
            return 0;
        };
        let at = At {
            file: self.file,
            name: self.name,
            line_no,
            line,
        };
        evidence::look(&self.edges[client], client, req, &at, &mut self.part.found);
        if self.orgs[client] {
            let counts = self.part.members.entry(client).or_default();
            members::count(self.cfg, req, &mut self.own, counts);
        }
        self.part.tops.entry(client).or_default().add(req);
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Overrides, SettingsFile};

    fn cfg(client: &str) -> Config {
        Config::resolve(
            vec!["x".into()],
            "out".into(),
            Overrides {
                client: Some(client.into()),
                ..Default::default()
            },
            SettingsFile::default(),
        )
        .unwrap()
    }

    #[test]
    fn spans_merge_and_meet() {
        let s = spans([(10, 20), (15, 30), (40, 50)].into_iter());
        assert_eq!(s, [(10, 30), (40, 50)]);
        assert!(meets(&s, 0, 10));
        assert!(meets(&s, 30, 35));
        assert!(!meets(&s, 31, 39));
        assert!(meets(&s, 35, 45));
        assert!(!meets(&s, 51, 60));
    }

    #[test]
    fn prefilter_only_for_canonical_ipv4_keys() {
        let ip = cfg("ip");
        let keys = |k: &'static [&'static str]| k.iter().map(|s| s.as_bytes());
        assert!(ipv4_prefilter(&ip, keys(&["198.51.100.23", "10.0.0.1"])).is_some());
        for k in ["2001:db8::1", "crawler.example.com", "010.0.0.1"] {
            let two = [b"10.0.0.1".as_slice(), k.as_bytes()];
            assert!(ipv4_prefilter(&ip, two.into_iter()).is_none());
        }
        for other in ["subnet", "user", "ua"] {
            assert!(ipv4_prefilter(&cfg(other), keys(&["10.0.0.1"])).is_none());
        }
    }

    /// Every way a line can be keyed `198.51.100.23` passes the filter.
    #[test]
    fn prefilter_keeps_every_form_of_the_address() {
        let c = cfg("ip");
        let f = ipv4_prefilter(&c, [b"198.51.100.23".as_slice()].into_iter()).unwrap();
        for remote in [
            "198.51.100.23",
            "[198.51.100.23]",
            "::ffff:198.51.100.23",
            "::FFFF:c633:6417",
            "0:0:0:0:0:ffff:c633:6417",
            "[::ffff:C633:6417]",
        ] {
            let req = Request {
                remote: remote.as_bytes().into(),
                ..Default::default()
            };
            let mut key = Vec::new();
            c.keyer.key_into(&req, &mut key);
            assert_eq!(key, b"198.51.100.23", "{remote}");
            let line =
                format!("{remote} - - [10/Oct/2026:10:00:00 +0000] \"GET / HTTP/1.1\" 200 1");
            assert!(f.is_match(line.as_bytes()), "{remote}");
        }
        let json = r#"{"remote_addr":"\u0031\u0039\u0038.51.100.23","status":200}"#;
        assert!(f.is_match(json.as_bytes()));
        assert!(!f
            .is_match(b"198.51.100.24 - - [10/Oct/2026:10:00:00 +0000] \"GET /1 HTTP/1.1\" 200 1"));
    }
}
