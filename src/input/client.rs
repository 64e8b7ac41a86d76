//! Client keys: which client a request belongs to, written canonically.
//!
//! IPs are written in RFC 5952 form (IPv4-mapped IPv6 as IPv4), subnets as CIDR
//! networks, other keys as the bytes logged. A key that is empty or `-` is no client.

use crate::engine::InvalidValue;
use crate::input::format::Request;
use serde::Serialize;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "key")]
pub enum ClientKind {
    Ip,
    Subnet {
        ipv4_prefix: u8,
        ipv6_prefix: u8,
    },
    User,
    Ua,
    /// A named field of a structured or custom format (e.g. an API key).
    Field {
        name: String,
    },
}

impl ClientKind {
    /// Parses `--client`; the subnet prefixes come from their own settings.
    pub fn parse(s: &str, ipv4_prefix: u8, ipv6_prefix: u8) -> Result<Self, InvalidValue> {
        if ipv4_prefix > 32 {
            return Err(format!("IPv4 subnet prefix /{ipv4_prefix} is longer than 32").into());
        }
        if ipv6_prefix > 128 {
            return Err(format!("IPv6 subnet prefix /{ipv6_prefix} is longer than 128").into());
        }
        match s {
            "ip" => Ok(Self::Ip),
            "subnet" => Ok(Self::Subnet {
                ipv4_prefix,
                ipv6_prefix,
            }),
            "user" => Ok(Self::User),
            "ua" => Ok(Self::Ua),
            f if f.starts_with("field:") => match &f["field:".len()..] {
                "" => Err("--client field:NAME needs a field name".into()),
                name => Ok(Self::Field {
                    name: name.to_string(),
                }),
            },
            _ => Err(
                format!("unknown client key '{s}' (use ip, subnet, user, ua or field:NAME)").into(),
            ),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Ip => "ip",
            Self::Subnet { .. } => "subnet",
            Self::User => "user",
            Self::Ua => "ua",
            Self::Field { .. } => "field",
        }
    }

    /// Whether keys come straight from log content (and so may need CSV formula guarding).
    pub fn is_free_text(&self) -> bool {
        matches!(self, Self::User | Self::Ua | Self::Field { .. })
    }
}

/// Turns a request into its client key, as configured.
#[derive(Debug, Clone)]
pub struct Keyer {
    pub kind: ClientKind,
    /// Index of the `field:NAME` key in [`crate::input::format::FieldSet`].
    pub field_index: Option<usize>,
    /// An organisations file: a request it maps is keyed by its organisation.
    pub orgs: Option<std::sync::Arc<crate::input::orgs::Orgs>>,
}

impl Keyer {
    pub fn new(kind: ClientKind, fields: &mut crate::input::format::FieldSet) -> Keyer {
        let field_index = match &kind {
            ClientKind::Field { name } => Some(fields.add(name)),
            _ => None,
        };
        Keyer {
            kind,
            field_index,
            orgs: None,
        }
    }

    /// Writes the client key of `req` into `buf` (cleared first): its organisation's
    /// name where the organisations file maps it, else its own key.
    #[inline]
    pub fn key_into(&self, req: &Request<'_>, buf: &mut Vec<u8>) -> Keyed {
        let keyed = self.own_key_into(req, buf);
        if let (Keyed::Client, Some(orgs)) = (&keyed, &self.orgs) {
            if let Some(id) = orgs.org_of(&self.kind, req, buf) {
                buf.clear();
                buf.extend_from_slice(orgs.name(id).as_bytes());
            }
        }
        keyed
    }

    /// The text the key is taken from, as logged (before canonicalisation and
    /// organisations): the remote address for `ip` and `subnet`, else the key's field;
    /// empty where the line lacks it.
    pub fn raw_field<'r>(&self, req: &'r Request<'_>) -> &'r [u8] {
        if let Some(i) = self.field_index {
            return req.fields.get(i).and_then(|v| v.as_deref()).unwrap_or(b"");
        }
        match &self.kind {
            ClientKind::Ip | ClientKind::Subnet { .. } => &req.remote,
            ClientKind::User => req.user.as_deref().unwrap_or(b""),
            ClientKind::Ua => req.user_agent.as_deref().unwrap_or(b""),
            ClientKind::Field { .. } => b"",
        }
    }

    /// The request's own client key, before organisations.
    #[inline]
    pub fn own_key_into(&self, req: &Request<'_>, buf: &mut Vec<u8>) -> Keyed {
        if let Some(i) = self.field_index {
            buf.clear();
            return match req.fields.get(i).and_then(|v| v.as_deref()) {
                Some(v) if !is_no_client(v) => {
                    buf.extend_from_slice(v);
                    Keyed::Client
                }
                _ => Keyed::NoClient,
            };
        }
        key_into(&self.kind, req, buf)
    }
}

/// The outcome of keying one request.
#[derive(Debug, PartialEq, Eq)]
pub enum Keyed {
    /// The key was written into the buffer.
    Client,
    /// The key is empty or `-`: counted, never billed.
    NoClient,
    /// The field the key needs could not be read.
    Malformed(&'static str),
}

/// Parses an address as logged: plain, or an IPv6 in brackets.
pub fn parse_ip(raw: &[u8]) -> Option<IpAddr> {
    if let Some(v4) = parse_canonical_ipv4(raw) {
        return Some(IpAddr::V4(v4));
    }
    let raw = match raw {
        [b'[', inner @ .., b']'] => inner,
        _ => raw,
    };
    let ip = match parse_plain_ipv6(raw) {
        Some(segments) => IpAddr::V6(Ipv6Addr::from(segments)),
        None => std::str::from_utf8(raw).ok()?.parse().ok()?,
    };
    Some(canonical_ip(ip))
}

/// An IPv6 address of hex groups only (no embedded dotted IPv4): up to eight groups
/// of one to four hex digits, at most one `::` standing for one group of zeros or more.
/// `None` for anything else, which the std parser then reads (or refuses) as before:
/// this only saves its UTF-8 check and general grammar on the common form. Agrees with
/// std on every input it accepts (tested below).
#[inline]
fn parse_plain_ipv6(raw: &[u8]) -> Option<[u16; 8]> {
    let (mut head, mut tail) = ([0u16; 8], [0u16; 8]);
    let (mut heads, mut tails) = (0usize, 0usize);
    let mut gap = false;
    let mut i = 0;
    if raw.starts_with(b"::") {
        gap = true;
        i = 2;
    }
    while i < raw.len() {
        let (mut value, mut digits) = (0u16, 0);
        while let Some(d) = raw.get(i).and_then(|&c| (c as char).to_digit(16)) {
            if digits == 4 {
                return None;
            }
            value = value << 4 | d as u16;
            digits += 1;
            i += 1;
        }
        if digits == 0 {
            return None;
        }
        if gap {
            tail[tails] = value;
            tails += 1;
        } else {
            head[heads] = value;
            heads += 1;
        }
        if heads + tails > 8 || (gap && heads + tails > 7) {
            return None;
        }
        match raw.get(i) {
            None => break,
            Some(b':') if raw.get(i + 1) == Some(&b':') && !gap && heads < 8 => {
                gap = true;
                i += 2;
            }
            Some(b':') if raw.get(i + 1).is_some() => i += 1,
            _ => return None,
        }
    }
    if !gap && heads != 8 {
        return None;
    }
    head[8 - tails..].copy_from_slice(&tail[..tails]);
    Some(head)
}

/// Writes an IPv6 address (not an IPv4-mapped one) as std's `Display` does (RFC 5952: lower-case hex, no
/// leading zeros, the first longest run of two zero groups or more as `::`), without
/// `core::fmt`: 12% of the bench preset's clients are IPv6, and formatting them took
/// a tenth of the parse thread.
fn write_ipv6(segments: &[u16; 8], buf: &mut Vec<u8>) {
    let (mut best, mut best_len, mut run, mut run_len) = (0, 0, 0, 0);
    for (i, &s) in segments.iter().enumerate() {
        if s == 0 {
            if run_len == 0 {
                run = i;
            }
            run_len += 1;
            if run_len > best_len {
                (best, best_len) = (run, run_len);
            }
        } else {
            run_len = 0;
        }
    }
    // Written into a stack buffer (39 bytes at most) and copied once: a `push` per
    // byte checked the vector's capacity each time.
    let mut text = [0u8; 39];
    let mut n = 0;
    let mut hex = |groups: &[u16], n: &mut usize| {
        for (k, &g) in groups.iter().enumerate() {
            if k > 0 {
                text[*n] = b':';
                *n += 1;
            }
            let digits = (16 - g.leading_zeros()).div_ceil(4).max(1);
            for d in (0..digits).rev() {
                text[*n] = b"0123456789abcdef"[(g >> (4 * d) & 0xf) as usize];
                *n += 1;
            }
        }
    };
    if best_len > 1 {
        hex(&segments[..best], &mut n);
        // The run's "::" ends where the groups after it start.
        let mut after = n + 2;
        hex(&segments[best + best_len..], &mut after);
        text[n] = b':';
        text[n + 1] = b':';
        n = after;
    } else {
        hex(segments, &mut n);
    }
    buf.extend_from_slice(&text[..n]);
}

/// A dotted-quad IPv4 address already in canonical form (no leading zeros), parsed
/// without UTF-8 validation or the general parser: most log lines start with one,
/// and this path took a tenth of the parse time in profiles.
#[inline]
pub fn parse_canonical_ipv4(raw: &[u8]) -> Option<Ipv4Addr> {
    if raw.len() < 7 || raw.len() > 15 {
        return None;
    }
    // Octet by octet: a digit, then up to two more unless it is a zero (no leading
    // zeros), then a dot between octets; a check per byte less than a loop over bytes.
    let digit = |i: usize| raw.get(i).map(|c| c.wrapping_sub(b'0')).filter(|&d| d <= 9);
    let mut octets = [0u8; 4];
    let mut i = 0;
    for (k, octet) in octets.iter_mut().enumerate() {
        if k > 0 {
            if raw.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
        let first = digit(i)?;
        let mut value = first as u32;
        i += 1;
        if first != 0 {
            for _ in 0..2 {
                let Some(d) = digit(i) else { break };
                value = value * 10 + d as u32;
                i += 1;
            }
        }
        *octet = u8::try_from(value).ok()?;
    }
    (i == raw.len()).then(|| Ipv4Addr::from(octets))
}

/// IPv4-mapped IPv6 addresses are their IPv4 address.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

pub fn network(ip: IpAddr, ipv4_prefix: u8, ipv6_prefix: u8) -> (IpAddr, u8) {
    match ip {
        IpAddr::V4(a) => {
            let mask = u32::MAX.checked_shl(32 - ipv4_prefix as u32).unwrap_or(0);
            (IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask)), ipv4_prefix)
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX.checked_shl(128 - ipv6_prefix as u32).unwrap_or(0);
            (
                IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask)),
                ipv6_prefix,
            )
        }
    }
}

fn is_no_client(raw: &[u8]) -> bool {
    raw.is_empty() || raw == b"-"
}

/// Writes the client key of `req` into `buf` (cleared first).
pub fn key_into(kind: &ClientKind, req: &Request<'_>, buf: &mut Vec<u8>) -> Keyed {
    buf.clear();
    match kind {
        ClientKind::Ip | ClientKind::Subnet { .. } => {
            let raw = &*req.remote;
            if is_no_client(raw) {
                return Keyed::NoClient;
            }
            // The common case: a plain IPv4 is already canonical as logged.
            if matches!(kind, ClientKind::Ip) && parse_canonical_ipv4(raw).is_some() {
                buf.extend_from_slice(raw);
                return Keyed::Client;
            }
            match (parse_ip(raw), kind) {
                (
                    Some(ip),
                    ClientKind::Subnet {
                        ipv4_prefix,
                        ipv6_prefix,
                    },
                ) => {
                    let (net, len) = network(ip, *ipv4_prefix, *ipv6_prefix);
                    let _ = write!(buf, "{net}/{len}");
                }
                (Some(IpAddr::V6(v6)), _) => write_ipv6(&v6.segments(), buf),
                // An IPv4 not as logged (IPv4-mapped IPv6: plain ones were taken above).
                (Some(ip), _) => {
                    let _ = write!(buf, "{ip}");
                }
                // A host name (HostnameLookups) is its own key.
                (None, _) => buf.extend_from_slice(raw),
            }
        }
        ClientKind::User => match req.user.as_deref() {
            Some(u) if !is_no_client(u) => buf.extend_from_slice(u),
            _ => return Keyed::NoClient,
        },
        ClientKind::Ua => {
            if req.user_agent_damaged {
                return Keyed::Malformed("user agent not closed");
            }
            match req.user_agent.as_deref() {
                Some(u) if !is_no_client(u) => buf.extend_from_slice(u),
                _ => return Keyed::NoClient,
            }
        }
        ClientKind::Field { .. } => return Keyed::NoClient,
    }
    Keyed::Client
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::text::{display_key, guard_formula};
    use std::borrow::Cow;

    fn key(kind: &ClientKind, remote: &str) -> Option<String> {
        let req = Request {
            remote: Cow::Owned(remote.as_bytes().to_vec()),
            ..Default::default()
        };
        let mut buf = Vec::new();
        (key_into(kind, &req, &mut buf) == Keyed::Client).then(|| display_key(&buf))
    }

    #[test]
    fn fast_ipv4_agrees_with_std() {
        for s in [
            "0.0.0.0",
            "1.2.3.4",
            "255.255.255.255",
            "256.1.1.1",
            "01.2.3.4",
            "1.2.3",
            "1.2.3.4.5",
            "1..2.3",
            "1.2.3.",
            ".1.2.3",
            "10.0.0.10",
            "1.2.3.4 ",
            "a.b.c.d",
            "1.2.3.04",
        ] {
            let std: Option<Ipv4Addr> = s.parse().ok();
            assert_eq!(parse_canonical_ipv4(s.as_bytes()), std, "{s}");
        }
    }

    mod ipv4 {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(4000))]
            #[test]
            fn fast_ipv4_agrees_with_std_on_dotted_text(s in "[0-9.]{0,16}|[0-9]{1,4}(\\.[0-9]{1,4}){3}") {
                let std: Option<Ipv4Addr> = s.parse().ok();
                prop_assert_eq!(parse_canonical_ipv4(s.as_bytes()), std, "{}", s);
            }
        }
    }

    mod ipv6 {
        use super::super::*;
        use proptest::prelude::*;

        /// Addresses with runs of zero groups (where `::` goes), as `u16` groups.
        fn segments() -> impl Strategy<Value = [u16; 8]> {
            prop::array::uniform8(prop_oneof![Just(0u16), Just(1), Just(0xffff), any::<u16>()])
        }

        /// How an address may be logged: std's form, full groups, upper case, leading
        /// zeros, `::` anywhere a run of zeros is, and damage.
        fn spelling(s: [u16; 8], style: u8) -> String {
            let groups: Vec<String> = s
                .iter()
                .map(|g| match style % 3 {
                    0 => format!("{g:x}"),
                    1 => format!("{g:04X}"),
                    _ => format!("{g:X}"),
                })
                .collect();
            match style / 3 % 4 {
                0 => Ipv6Addr::from(s).to_string(),
                1 => groups.join(":"),
                2 => match s.iter().position(|&g| g == 0) {
                    Some(z) => format!("{}::{}", groups[..z].join(":"), groups[z + 1..].join(":")),
                    None => groups.join(":"),
                },
                _ => format!("{}:", groups.join(":")),
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(4000))]
            #[test]
            fn canonical_text_is_std_display(s in segments()) {
                // IPv4-mapped addresses are keyed as IPv4 before this.
                prop_assume!(Ipv6Addr::from(s).to_ipv4_mapped().is_none());
                let mut buf = Vec::new();
                write_ipv6(&s, &mut buf);
                prop_assert_eq!(String::from_utf8(buf).unwrap(), Ipv6Addr::from(s).to_string());
            }

            #[test]
            fn plain_parser_agrees_with_std(s in segments(), style in 0u8..12, cut in 0usize..48) {
                let text = spelling(s, style);
                for t in [text.clone(), text[..cut.min(text.len())].to_string()] {
                    let std: Option<Ipv6Addr> = t.parse().ok();
                    if let Some(mine) = parse_plain_ipv6(t.as_bytes()) {
                        prop_assert_eq!(Some(Ipv6Addr::from(mine)), std, "{}", t);
                    }
                }
                // Plain spellings are the fast path's; std writes an IPv4-mapped address
                // with a dotted tail (`::ffff:0.0.0.0`), which goes to std.
                if style / 3 % 4 < 3 && !text.contains('.') {
                    prop_assert!(parse_plain_ipv6(text.as_bytes()).is_some(), "{}", text);
                }
            }
        }

        #[test]
        fn odd_spellings_go_to_std() {
            for s in [
                "::",
                "::1",
                "1::",
                "1:2:3:4:5:6:7::",
                "::2:3:4:5:6:7:8",
                "1:2:3:4:5:6:7:8",
            ] {
                assert_eq!(
                    parse_plain_ipv6(s.as_bytes()).map(Ipv6Addr::from),
                    s.parse().ok(),
                    "{s}"
                );
            }
            for s in [
                "1:2:3:4:5:6:7:8::",
                ":1",
                "1:",
                "1:::2",
                "1::2::3",
                "12345::",
                "::ffff:1.2.3.4",
                "g::",
                "1:2:3:4:5:6:7::8",
            ] {
                assert_eq!(parse_plain_ipv6(s.as_bytes()), None, "{s}");
            }
        }
    }

    #[test]
    fn ips_are_canonical() {
        let ip = ClientKind::Ip;
        assert_eq!(key(&ip, "192.0.2.1").unwrap(), "192.0.2.1");
        assert_eq!(key(&ip, "::ffff:192.0.2.1").unwrap(), "192.0.2.1");
        assert_eq!(key(&ip, "2001:DB8:0:0:0:0:0:1").unwrap(), "2001:db8::1");
        assert_eq!(key(&ip, "[2001:db8::1]").unwrap(), "2001:db8::1");
        assert_eq!(
            key(&ip, "crawler.example.com").unwrap(),
            "crawler.example.com"
        );
        assert_eq!(key(&ip, "-"), None);
    }

    #[test]
    fn subnets_are_cidr() {
        let s = ClientKind::parse("subnet", 24, 64).unwrap();
        assert_eq!(key(&s, "198.51.100.77").unwrap(), "198.51.100.0/24");
        assert_eq!(
            key(&s, "2001:db8:4d2:7:1:2:3:4").unwrap(),
            "2001:db8:4d2:7::/64"
        );
        assert_eq!(key(&s, "::ffff:198.51.100.77").unwrap(), "198.51.100.0/24");
        let s = ClientKind::parse("subnet", 0, 128).unwrap();
        assert_eq!(key(&s, "198.51.100.77").unwrap(), "0.0.0.0/0");
        assert_eq!(key(&s, "2001:db8::1").unwrap(), "2001:db8::1/128");
    }

    #[test]
    fn organisations_replace_keys() {
        let orgs = crate::input::orgs::Orgs::parse(
            b"match,org\n198.51.100.0/24,Acme\nalice,Alice Corp\n",
            "orgs.csv",
        )
        .unwrap();
        let mut keyer = Keyer::new(ClientKind::Ip, &mut Default::default());
        keyer.orgs = Some(std::sync::Arc::new(orgs));
        let mut buf = Vec::new();
        let mut req = Request {
            remote: Cow::Borrowed(b"::ffff:198.51.100.9".as_slice()),
            user: Some(Cow::Borrowed(b"alice".as_slice())),
            ..Default::default()
        };
        assert_eq!(keyer.key_into(&req, &mut buf), Keyed::Client);
        assert_eq!(buf, b"Acme");
        req.remote = Cow::Borrowed(b"2001:DB8::1".as_slice());
        assert_eq!(keyer.key_into(&req, &mut buf), Keyed::Client);
        assert_eq!(buf, b"2001:db8::1");
        req.remote = Cow::Borrowed(b"-".as_slice());
        assert_eq!(keyer.key_into(&req, &mut buf), Keyed::NoClient);
        keyer.kind = ClientKind::User;
        req.remote = Cow::Borrowed(b"198.51.100.9".as_slice());
        assert_eq!(keyer.key_into(&req, &mut buf), Keyed::Client);
        assert_eq!(buf, b"Alice Corp");
        req.user = Some(Cow::Borrowed(b"bob".as_slice()));
        assert_eq!(keyer.key_into(&req, &mut buf), Keyed::Client);
        assert_eq!(buf, b"bob");
    }

    #[test]
    fn display_and_guard() {
        assert_eq!(display_key(b"a\xffb\xc3\xa9"), "a\\xffb\u{e9}");
        assert_eq!(guard_formula("=cmd()"), "'=cmd()");
        assert_eq!(guard_formula("-x"), "'-x");
        assert_eq!(guard_formula("curl/8"), "curl/8");
    }
}
