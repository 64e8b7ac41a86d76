//! Organisations files (`--orgs FILE`, CSV): IP ranges and client keys mapped to an
//! organisation, which is then the client in every output.
//!
//! Header `match,org` or `match,org,exempt`. Under the `ip` and `subnet` keys, CIDR and
//! address rows match each request's own IP, the longest prefix winning (IPv4-mapped
//! IPv6 is IPv4); every row also matches a client key equal to its text, which is how
//! `user`, `ua` and `field:NAME` keys (and host names under `ip`) are mapped. An exempt
//! organisation is computed and shown, never billed.

use crate::input::client::{parse_ip, ClientKind};
use crate::input::format::Request;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use rustc_hash::FxHashMap;
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::path::Path;

/// An organisation's index in [`Orgs::names`].
pub type OrgId = u32;

/// A loaded, validated organisations file.
#[derive(Debug, Clone, Default)]
pub struct Orgs {
    /// The file, as given.
    pub path: String,
    /// SHA-256 of the file's bytes, in hex, and their number.
    pub sha256: String,
    pub size: u64,
    /// Organisation names, in order of first appearance.
    pub names: Vec<String>,
    /// Whether each organisation is exempt.
    pub exempt: Vec<bool>,
    /// How many rows the file has.
    pub rows: usize,
    by_name: FxHashMap<Box<[u8]>, OrgId>,
    /// IPv4 networks by prefix length, longest first.
    v4: Vec<(u8, FxHashMap<u32, OrgId>)>,
    /// IPv6 networks by prefix length, longest first.
    v6: Vec<(u8, FxHashMap<u128, OrgId>)>,
    /// Rows matched against the client key, by their text.
    exact: FxHashMap<Box<[u8]>, OrgId>,
}

/// Why an organisations file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum OrgsError {
    #[error("cannot read organisations file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// The file does not parse; the message names the file, the line and the reason.
    #[error("{0}")]
    Invalid(String),
}

impl Orgs {
    /// Reads an organisations file.
    pub fn load(path: &Path) -> Result<Orgs, OrgsError> {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| OrgsError::Read {
            path: shown.clone(),
            source,
        })?;
        let mut orgs = Orgs::parse(&bytes, &shown)?;
        orgs.sha256 = hex::encode(Sha256::digest(&bytes));
        orgs.size = bytes.len() as u64;
        Ok(orgs)
    }

    /// Reads the CSV text of an organisations file; `source` names it in errors.
    pub fn parse(bytes: &[u8], source: &str) -> Result<Orgs, OrgsError> {
        Self::parse_text(bytes, source).map_err(OrgsError::Invalid)
    }

    fn parse_text(bytes: &[u8], source: &str) -> Result<Orgs, String> {
        let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
        let at = |line: u64, msg: String| format!("organisations file {source}:{line}: {msg}");
        let text = std::str::from_utf8(bytes).map_err(|e| {
            let line = 1 + bytes[..e.valid_up_to()]
                .iter()
                .filter(|&&c| c == b'\n')
                .count();
            at(line as u64, "not UTF-8 text".into())
        })?;
        // Line by line (blank lines skipped), so that every error names its line.
        let mut records = text
            .split('\n')
            .enumerate()
            .map(|(i, l)| (i as u64 + 1, l.strip_suffix('\r').unwrap_or(l)))
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(n, l)| record(l).map(|r| (n, r)).map_err(|e| at(n, e)));
        let (header_line, header) = match records.next() {
            Some(r) => r?,
            None => {
                return Err(format!(
                    "organisations file {source}: empty (the first line must be match,org or match,org,exempt)"
                ))
            }
        };
        let columns: Vec<String> = header.iter().map(|c| c.to_ascii_lowercase()).collect();
        let with_exempt = match columns.as_slice() {
            [m, o] if m == "match" && o == "org" => false,
            [m, o, e] if m == "match" && o == "org" && e == "exempt" => true,
            _ => {
                return Err(at(
                    header_line,
                    format!(
                        "the header must be match,org or match,org,exempt, not '{}'",
                        header.iter().collect::<Vec<_>>().join(",")
                    ),
                ))
            }
        };
        let mut orgs = Orgs {
            path: source.to_string(),
            ..Default::default()
        };
        // Where each match and each org's exempt value was first given, for errors.
        let mut seen: FxHashMap<Key, (OrgId, u64)> = FxHashMap::default();
        let mut exempt_from: Vec<Option<(bool, u64)>> = Vec::new();
        let mut v4: FxHashMap<u8, FxHashMap<u32, OrgId>> = FxHashMap::default();
        let mut v6: FxHashMap<u8, FxHashMap<u128, OrgId>> = FxHashMap::default();
        for row in records {
            let (line, record) = row?;
            let width = if with_exempt { 3 } else { 2 };
            if record.len() > width || record.len() < 2 {
                return Err(at(
                    line,
                    format!(
                        "expected {width} fields ({}), found {}",
                        if with_exempt {
                            "match,org,exempt"
                        } else {
                            "match,org"
                        },
                        record.len()
                    ),
                ));
            }
            let (m, org) = (&record[0], &record[1]);
            if m.is_empty() {
                return Err(at(line, "match is empty".into()));
            }
            if org.is_empty() {
                return Err(at(line, "org is empty".into()));
            }
            if org == "-" {
                return Err(at(line, "'-' is not an organisation name".into()));
            }
            let exempt = match record.get(2).unwrap_or("") {
                "" => None,
                e if e.eq_ignore_ascii_case("true") => Some(true),
                e if e.eq_ignore_ascii_case("false") => Some(false),
                e => return Err(at(line, format!("exempt must be true or false, not '{e}'"))),
            };
            let key = parse_match(m).map_err(|e| at(line, e))?;
            let id = match orgs.by_name.get(org.as_bytes()) {
                Some(&id) => id,
                None => {
                    let id = orgs.names.len() as OrgId;
                    orgs.names.push(org.to_string());
                    orgs.by_name.insert(org.as_bytes().into(), id);
                    exempt_from.push(None);
                    id
                }
            };
            if let Some(e) = exempt {
                match exempt_from[id as usize] {
                    Some((prev, prev_line)) if prev != e => {
                        return Err(at(
                            line,
                            format!(
                            "'{org}' is exempt = {e} here but exempt = {prev} on line {prev_line}"
                        ),
                        ))
                    }
                    Some(_) => {}
                    None => exempt_from[id as usize] = Some((e, line)),
                }
            }
            match seen.get(&key) {
                Some(&(prev, _)) if prev == id => {}
                Some(&(prev, prev_line)) => {
                    return Err(at(
                        line,
                        format!(
                            "'{m}' is mapped to '{}' on line {prev_line} and to '{org}' here",
                            orgs.names[prev as usize]
                        ),
                    ))
                }
                None => {
                    seen.insert(key.clone(), (id, line));
                    match key {
                        Key::V4(net) => {
                            v4.entry(net.prefix_len())
                                .or_default()
                                .insert(u32::from(net.network()), id);
                        }
                        Key::V6(net) => {
                            v6.entry(net.prefix_len())
                                .or_default()
                                .insert(u128::from(net.network()), id);
                        }
                        Key::Exact(_) => {}
                    }
                }
            }
            // Every row also matches a client key spelled as written.
            orgs.exact.entry(m.as_bytes().into()).or_insert(id);
            orgs.rows += 1;
        }
        orgs.exempt = exempt_from
            .iter()
            .map(|e| e.is_some_and(|(e, _)| e))
            .collect();
        orgs.v4 = v4.into_iter().collect();
        orgs.v4.sort_by_key(|e| std::cmp::Reverse(e.0));
        orgs.v6 = v6.into_iter().collect();
        orgs.v6.sort_by_key(|e| std::cmp::Reverse(e.0));
        Ok(orgs)
    }

    /// Only the organisations' names and exemptions: what analysing an aggregate needs
    /// (which client keys are organisations, and which of those are exempt). It maps no
    /// request; `reduce` rebuilds it from the metadata of Parquet partials.
    pub fn from_names(names: Vec<String>, exempt: Vec<bool>) -> Orgs {
        let by_name = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_bytes().into(), i as OrgId))
            .collect();
        Orgs {
            names,
            exempt,
            by_name,
            ..Default::default()
        }
    }

    /// The organisation of a request whose own client key (under `kind`) is `key`.
    #[inline]
    pub fn org_of(&self, kind: &ClientKind, req: &Request<'_>, key: &[u8]) -> Option<OrgId> {
        let by_ip = match kind {
            ClientKind::Ip | ClientKind::Subnet { .. }
                if !(self.v4.is_empty() && self.v6.is_empty()) =>
            {
                parse_ip(&req.remote).and_then(|ip| self.org_of_ip(ip))
            }
            _ => None,
        };
        by_ip.or_else(|| self.exact.get(key).copied())
    }

    /// The longest-prefix network holding `ip` (already canonical: mapped IPv6 is IPv4).
    pub fn org_of_ip(&self, ip: IpAddr) -> Option<OrgId> {
        match ip {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                self.v4.iter().find_map(|(len, nets)| {
                    let mask = u32::MAX.checked_shl(32 - *len as u32).unwrap_or(0);
                    nets.get(&(a & mask)).copied()
                })
            }
            IpAddr::V6(a) => {
                let a = u128::from(a);
                self.v6.iter().find_map(|(len, nets)| {
                    let mask = u128::MAX.checked_shl(128 - *len as u32).unwrap_or(0);
                    nets.get(&(a & mask)).copied()
                })
            }
        }
    }

    /// The organisation named `key`, when a client key is an organisation.
    pub fn by_name(&self, key: &[u8]) -> Option<OrgId> {
        self.by_name.get(key).copied()
    }

    pub fn name(&self, id: OrgId) -> &str {
        &self.names[id as usize]
    }

    pub fn is_exempt(&self, id: OrgId) -> bool {
        self.exempt[id as usize]
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    V4(Ipv4Net),
    V6(Ipv6Net),
    Exact(String),
}

/// A CIDR (host bits are cleared), an address (a /32 or /128), or an exact key.
/// IPv4-mapped IPv6 addresses and networks are IPv4.
fn parse_match(m: &str) -> Result<Key, String> {
    if let Ok(net) = m.parse::<IpNet>() {
        return Ok(match net.trunc() {
            IpNet::V4(n) => Key::V4(n),
            IpNet::V6(n) => match n.network().to_ipv4_mapped() {
                Some(v4) if n.prefix_len() >= 96 => {
                    Key::V4(Ipv4Net::new(v4, n.prefix_len() - 96).expect("prefix at most 32"))
                }
                _ => Key::V6(n),
            },
        });
    }
    if let Some(ip) = parse_ip(m.as_bytes()) {
        return Ok(match ip {
            IpAddr::V4(a) => Key::V4(Ipv4Net::new(a, 32).expect("/32 is valid")),
            IpAddr::V6(a) => Key::V6(Ipv6Net::new(a, 128).expect("/128 is valid")),
        });
    }
    // Something shaped like a CIDR that does not parse is a mistake, not a key.
    if let Some((addr, len)) = m.split_once('/') {
        if parse_ip(addr.as_bytes()).is_some() || len.bytes().all(|c| c.is_ascii_digit()) {
            return Err(format!("'{m}' is not a valid CIDR network"));
        }
    }
    Ok(Key::Exact(m.to_string()))
}

/// One CSV record on one line: fields may be quoted (`"Acme, Inc."`), not span lines.
fn record(line: &str) -> Result<csv::StringRecord, String> {
    if line.bytes().filter(|&c| c == b'"').count() % 2 == 1 {
        return Err("unclosed quote (a field cannot span lines)".into());
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(line.as_bytes());
    match reader.records().next() {
        Some(Ok(r)) => Ok(r),
        Some(Err(e)) => Err(e.to_string()),
        None => Ok(csv::StringRecord::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn orgs(text: &str) -> Orgs {
        Orgs::parse(text.as_bytes(), "orgs.csv").unwrap()
    }

    fn err(text: &str) -> String {
        Orgs::parse(text.as_bytes(), "orgs.csv")
            .unwrap_err()
            .to_string()
    }

    fn org_of_ip(o: &Orgs, ip: &str) -> Option<String> {
        let ip = parse_ip(ip.as_bytes()).unwrap();
        o.org_of_ip(ip).map(|id| o.name(id).to_string())
    }

    fn org_of(o: &Orgs, kind: &ClientKind, remote: &str, key: &str) -> Option<String> {
        let req = Request {
            remote: Cow::Owned(remote.as_bytes().to_vec()),
            ..Default::default()
        };
        o.org_of(kind, &req, key.as_bytes())
            .map(|id| o.name(id).to_string())
    }

    #[test]
    fn longest_prefix_wins() {
        let o =
            orgs("match,org\n10.0.0.0/8,Big\n10.1.0.0/16,Mid\n10.1.2.0/24,Small\n10.1.2.3,One\n");
        assert_eq!(org_of_ip(&o, "10.9.9.9").unwrap(), "Big");
        assert_eq!(org_of_ip(&o, "10.1.9.9").unwrap(), "Mid");
        assert_eq!(org_of_ip(&o, "10.1.2.9").unwrap(), "Small");
        assert_eq!(org_of_ip(&o, "10.1.2.3").unwrap(), "One");
        assert_eq!(org_of_ip(&o, "11.0.0.1"), None);
        // Row order does not matter.
        let o = orgs("match,org\n10.1.2.0/24,Small\n10.0.0.0/8,Big\n");
        assert_eq!(org_of_ip(&o, "10.1.2.9").unwrap(), "Small");
        let o = orgs("match,org\n0.0.0.0/0,Anyone\n");
        assert_eq!(org_of_ip(&o, "192.0.2.1").unwrap(), "Anyone");
        assert_eq!(org_of_ip(&o, "2001:db8::1"), None);
    }

    #[test]
    fn ipv6_and_mapped_ipv4() {
        let o = orgs(concat!(
            "match,org\n",
            "2001:db8::/32,Six\n",
            "2001:DB8:1::/48,SixSmall\n",
            "::ffff:198.51.100.0/120,Mapped\n",
            "::ffff:192.0.2.7,MappedOne\n",
            "[2001:db8:ffff::1],Bracketed\n",
        ));
        assert_eq!(org_of_ip(&o, "2001:db8:2::1").unwrap(), "Six");
        assert_eq!(org_of_ip(&o, "2001:db8:1:5::1").unwrap(), "SixSmall");
        assert_eq!(org_of_ip(&o, "2001:db8:ffff::1").unwrap(), "Bracketed");
        // A mapped network is an IPv4 network, and matches plain and mapped requests.
        assert_eq!(org_of_ip(&o, "198.51.100.200").unwrap(), "Mapped");
        assert_eq!(org_of_ip(&o, "::ffff:198.51.100.200").unwrap(), "Mapped");
        assert_eq!(org_of_ip(&o, "192.0.2.7").unwrap(), "MappedOne");
        assert_eq!(org_of_ip(&o, "2001:db9::1"), None);
    }

    #[test]
    fn host_bits_are_cleared() {
        let o = orgs("match,org\n203.0.113.77/24,Net\n");
        assert_eq!(org_of_ip(&o, "203.0.113.1").unwrap(), "Net");
    }

    #[test]
    fn keys_match_by_kind() {
        let o =
            orgs("match,org\n203.0.113.0/24,Net\nalice,Alice Corp\ncrawler.example.com,Crawler\n");
        let ip = ClientKind::Ip;
        let subnet = ClientKind::parse("subnet", 24, 64).unwrap();
        assert_eq!(
            org_of(&o, &ip, "203.0.113.9", "203.0.113.9").unwrap(),
            "Net"
        );
        // Under subnet, the request's own IP is matched, not its /24.
        let o2 = orgs("match,org\n203.0.113.128/25,Half\n");
        assert_eq!(
            org_of(&o2, &subnet, "203.0.113.200", "203.0.113.0/24").unwrap(),
            "Half"
        );
        assert_eq!(org_of(&o2, &subnet, "203.0.113.1", "203.0.113.0/24"), None);
        // Host names under ip, and user keys, match exactly.
        assert_eq!(
            org_of(&o, &ip, "crawler.example.com", "crawler.example.com").unwrap(),
            "Crawler"
        );
        assert_eq!(
            org_of(&o, &ClientKind::User, "203.0.113.9", "alice").unwrap(),
            "Alice Corp"
        );
        assert_eq!(org_of(&o, &ClientKind::User, "203.0.113.9", "Alice"), None);
        assert_eq!(org_of(&o, &ClientKind::User, "203.0.113.9", "bob"), None);
        // Under user, CIDR rows do not match the request's IP.
        let field = ClientKind::Field {
            name: "api_key".into(),
        };
        assert_eq!(org_of(&o, &field, "203.0.113.9", "k-1"), None);
        assert_eq!(org_of(&o, &ip, "198.51.100.1", "198.51.100.1"), None);
    }

    #[test]
    fn exempt_organisations() {
        let o = orgs(concat!(
            "match,org,exempt\n",
            "66.249.64.0/19,Googlebot,true\n",
            "2001:4860:4801::/48,Googlebot,\n",
            "198.51.100.0/24,Scraper,false\n",
            "192.0.2.0/24,Other\n",
        ));
        assert_eq!(o.names, ["Googlebot", "Scraper", "Other"]);
        assert_eq!(o.exempt, [true, false, false]);
        assert_eq!(o.rows, 4);
        assert!(o.is_exempt(o.by_name(b"Googlebot").unwrap()));
        assert!(!o.is_exempt(o.by_name(b"Other").unwrap()));
        assert_eq!(o.by_name(b"googlebot"), None);
        let o = orgs("\u{feff}Match,Org,Exempt\r\n\"10.0.0.0/8\",\"Acme, Inc.\",TRUE\r\n");
        assert_eq!(o.names, ["Acme, Inc."]);
        assert_eq!(o.exempt, [true]);
    }

    #[test]
    fn bad_files_name_the_line() {
        for (text, needle) in [
            ("", "empty"),
            ("10.0.0.0/8,Acme\n", "orgs.csv:1: the header must be"),
            ("match,organisation\n", "the header must be"),
            (
                "match,org\n10.0.0.0/33,Acme\n",
                "orgs.csv:2: '10.0.0.0/33' is not a valid CIDR",
            ),
            (
                "match,org\n10.0.0.300/8,Acme\n",
                "orgs.csv:2: '10.0.0.300/8' is not a valid CIDR",
            ),
            ("match,org\n2001:db8::/129,Acme\n", "not a valid CIDR"),
            ("match,org\n10.0.0.0/8,\n", "orgs.csv:2: org is empty"),
            ("match,org\n\n,Acme\n", "orgs.csv:3: match is empty"),
            ("match,org\n10.0.0.0/8\n", "orgs.csv:2: expected 2 fields"),
            ("match,org\n10.0.0.0/8,Acme,true\n", "expected 2 fields"),
            (
                "match,org,exempt\n10.0.0.0/8,Acme,yes\n",
                "exempt must be true or false",
            ),
            (
                "match,org,exempt\n10.0.0.0/8,Acme,true\n11.0.0.0/8,Acme,false\n",
                "orgs.csv:3: 'Acme' is exempt = false here but exempt = true on line 2",
            ),
            (
                "match,org\n10.0.0.0/8,Acme\n10.0.0.0/8,Other\n",
                "orgs.csv:3: '10.0.0.0/8' is mapped to 'Acme' on line 2 and to 'Other' here",
            ),
            ("match,org\n10.0.0.1,A\n10.0.0.1/32,B\n", "mapped to 'A'"),
            (
                "match,org\n10.0.0.0/8,\"Acme\n",
                "orgs.csv:2: unclosed quote",
            ),
            (
                "match,org\r\n\r\n\r\n10.0.0.0/x,Acme\r\n",
                "orgs.csv:4: '10.0.0.0/x' is not a valid CIDR",
            ),
        ] {
            let e = err(text);
            assert!(e.contains(needle), "{text:?}: {e}");
        }
        let e = Orgs::parse(b"match,org\n10.0.0.0/8,\xff\n", "orgs.csv")
            .unwrap_err()
            .to_string();
        assert!(e.contains("orgs.csv:2: not UTF-8"), "{e}");
        // The same row twice for one organisation is harmless.
        let o = orgs("match,org\n10.0.0.0/8,Acme\n10.0.0.0/8,Acme\n");
        assert_eq!(o.names, ["Acme"]);
    }
}
