//! Possible evasion leads (`scan --also-by subnet|ua`): groups of clients — a network,
//! a user agent — whose requests taken together breach the threshold while no member
//! of the group breaches on its own (a program rotating addresses inside one /24, say).
//!
//! Leads are for investigation, never billed: they are in no CSV row of
//! `violations.csv` or `clients.csv` and in no damages total. The first pass adds each
//! request to its group's series beside its client's ([`GroupCollector`]); after it,
//! each group is billed by the one billing function ([`bill::bill`]) as if it were a
//! client, and the members of every group that breaches are billed on their own from
//! the client aggregate, so a group's figures and its members' figures cannot disagree
//! with what `scan` bills.

use crate::engine::aggregate::{Bucket, Series};
use crate::engine::bill::{self, Horizon, Identify, Identity, Policy};
use crate::engine::damages::Cents;
use crate::engine::limits;
use crate::engine::text::{display_key, guard_formula};
use crate::engine::time::Micros;
use crate::engine::window::Span;
use crate::engine::InvalidValue;
use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};

/// How many members of each lead are listed (the highest own peaks); the rest are
/// counted.
pub const TOP_MEMBERS: usize = 20;

/// What requests are grouped by, besides their client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    /// The network of the request's address: IPv4 /`ipv4_prefix`, IPv6 /`ipv6_prefix`
    /// (the `--subnet-v4`/`--subnet-v6` settings, /24 and /64 by default).
    Subnet { ipv4_prefix: u8, ipv6_prefix: u8 },
    /// The user agent string, as logged.
    Ua,
}

impl GroupBy {
    /// Parses one `--also-by` value; the subnet prefixes come from their own settings.
    pub fn parse(s: &str, ipv4_prefix: u8, ipv6_prefix: u8) -> Result<GroupBy, InvalidValue> {
        match s.trim() {
            "subnet" => Ok(GroupBy::Subnet {
                ipv4_prefix,
                ipv6_prefix,
            }),
            "ua" => Ok(GroupBy::Ua),
            other => Err(format!("--also-by '{other}': use subnet or ua").into()),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            GroupBy::Subnet { .. } => "subnet",
            GroupBy::Ua => "ua",
        }
    }
}

/// A client key as a member of a group: keys of up to 15 bytes (every IPv4 address)
/// packed with their length into a `u128`, so that the set of a group's members is
/// looked up without hashing and comparing byte slices (profiled: the byte-slice set
/// took most of the first pass's extra time on the bench set).
fn short_member(key: &[u8]) -> Option<u128> {
    if key.len() > 15 {
        return None;
    }
    let mut b = [0u8; 16];
    b[..key.len()].copy_from_slice(key);
    b[15] = key.len() as u8;
    Some(u128::from_le_bytes(b))
}

fn short_member_bytes(k: u128) -> Box<[u8]> {
    let b = k.to_le_bytes();
    b[..b[15] as usize].into()
}

/// One group as the first pass collects it: its requests summed per instant, and the
/// client keys seen in it.
#[derive(Debug, Default)]
struct Collected {
    series: Series,
    short: FxHashSet<u128>,
    long: FxHashSet<Box<[u8]>>,
}

impl Collected {
    #[inline]
    fn add_member(&mut self, client: &[u8]) {
        match short_member(client) {
            Some(k) => {
                self.short.insert(k);
            }
            None => {
                if !self.long.contains(client) {
                    self.long.insert(client.into());
                }
            }
        }
    }

    fn merge(&mut self, other: Collected) {
        self.series.merge(other.series);
        self.short.extend(other.short);
        self.long.extend(other.long);
    }

    /// The member keys, sorted.
    fn members(&self) -> Vec<Box<[u8]>> {
        let mut m: Vec<Box<[u8]>> = self.short.iter().map(|&k| short_member_bytes(k)).collect();
        m.extend(self.long.iter().cloned());
        m.sort_unstable();
        m
    }
}

/// What the first pass collects for one grouping: each group's requests summed per
/// instant, and the client keys seen in it (one lookup of the group per request).
#[derive(Debug)]
pub struct GroupCollector {
    pub by: GroupBy,
    groups: FxHashMap<Box<[u8]>, Collected>,
}

impl GroupCollector {
    pub fn new(by: GroupBy) -> Self {
        GroupCollector {
            by,
            groups: FxHashMap::default(),
        }
    }

    /// One request of `client` in `group`, at `t`, of `posts` posts.
    #[inline]
    pub fn add(&mut self, group: &[u8], client: &[u8], t: Micros, posts: u64) {
        // The group's key is copied only on first sight.
        let g = match self.groups.get_mut(group) {
            Some(g) => g,
            None => self.groups.entry(group.into()).or_default(),
        };
        g.series.add(t, posts, 1);
        g.add_member(client);
    }

    pub fn merge(&mut self, other: GroupCollector) {
        if self.groups.len() < other.groups.len() {
            let mine = std::mem::replace(&mut self.groups, other.groups);
            return self.merge(GroupCollector {
                by: self.by,
                groups: mine,
            });
        }
        for (g, c) in other.groups {
            match self.groups.get_mut(&g) {
                Some(mine) => mine.merge(c),
                None => {
                    self.groups.insert(g, c);
                }
            }
        }
    }
}

/// Every grouping the first pass collects (empty without `--also-by`, and for a
/// grouping derived from the clients after the pass: see [`find_leads`]).
#[derive(Debug, Default)]
pub struct Groups {
    pub by: Vec<GroupCollector>,
}

impl Groups {
    pub fn new(by: &[GroupBy]) -> Self {
        Groups {
            by: by.iter().map(|&b| GroupCollector::new(b)).collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.by.is_empty()
    }

    /// Merges another worker's groups (made with the same groupings, or empty).
    pub fn merge(&mut self, other: Groups) {
        if self.by.is_empty() {
            *self = other;
            return;
        }
        for (mine, theirs) in self.by.iter_mut().zip(other.by) {
            mine.merge(theirs);
        }
    }
}

/// One member of a lead: a client, with its own figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadMember {
    /// The client as written in JSON and on the terminal, and in CSV.
    pub name: String,
    pub cell: String,
    /// Its own peak window (`None` when it fetched no post).
    pub peak: Option<Span>,
    pub total_posts: u64,
    pub total_requests: u64,
}

/// A window the group would be billed for if it were one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WouldBeWindow {
    pub start: Micros,
    pub end: Micros,
    pub posts: u64,
    pub requests: u64,
    pub damages: Cents,
}

/// A group whose combined requests breach while none of its members does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lead {
    /// The group as written in JSON and HTML, and in CSV (formula-guarded).
    pub name: String,
    pub cell: String,
    /// The group's combined peak window.
    pub peak: Span,
    /// The windows it would be billed for as one client, with their damages.
    pub windows: Vec<WouldBeWindow>,
    pub total_posts: u64,
    pub total_requests: u64,
    /// How many clients the group holds; the [`TOP_MEMBERS`] with the highest own
    /// peaks are listed in `members` (highest first).
    pub members_total: usize,
    pub members: Vec<LeadMember>,
}

impl Lead {
    /// What the group would owe as one client: the sum of its windows' damages.
    pub fn damages(&self) -> Cents {
        self.windows.iter().map(|w| w.damages).sum()
    }
    pub fn would_be_posts(&self) -> u64 {
        self.windows.iter().map(|w| w.posts).sum()
    }
}

/// The leads of one grouping, with the counts that put them in context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupLeads {
    pub by: GroupBy,
    /// Groups with a request.
    pub groups: u64,
    /// Groups that would be billed as one client.
    pub over_threshold: u64,
    /// Of those, the groups left out because a member breaches on its own (it is
    /// billed, or shown exempt, in its own right).
    pub with_breaching_member: u64,
    /// Groups refused because their counts or times cannot be reported (by name).
    pub refused: Vec<String>,
    /// Highest combined peak first; ties by the written group.
    pub leads: Vec<Lead>,
}

/// A member's own figures, and whether it breaches on its own.
#[derive(Debug, Clone)]
struct Own {
    member: LeadMember,
    breaches: bool,
}

/// Writes the group of client `key` under a grouping into the buffer; false when
/// it has none. Given for the groupings derived from the clients after the pass.
pub type GroupOfClient<'a> = dyn Fn(GroupBy, &[u8], &mut Vec<u8>) -> bool + Sync + 'a;

/// Where a group's requests come from.
enum Source {
    /// Collected by the first pass.
    Collected(Collected),
    /// Derived after the pass: the group is the union of these clients (indices into
    /// the sorted clients), each of whose requests all fall in it.
    Clients(Vec<usize>),
}

/// The leads of every grouping of `also_by`, in its order. `collected` holds the
/// groupings the first pass collected; any other is derived from `clients` (sorted by
/// key, as [`crate::engine::aggregate::Aggregate::into_sorted_series`] gives them) through `group_of`, which must
/// then put all of a client's requests in one group (a subnet of `ip` clients: the key
/// is the address). `clients` is also where the members' own figures come from; it is
/// left as it was, for billing. `identify` names a client key as the reports do.
pub fn find_leads(
    policy: &Policy,
    also_by: &[GroupBy],
    collected: Groups,
    clients: &[(Box<[u8]>, Series)],
    identify: &Identify<'_>,
    group_of: &GroupOfClient<'_>,
) -> Vec<GroupLeads> {
    let mut collected = collected.by;
    also_by
        .iter()
        .map(|&by| {
            let sources: Vec<(Box<[u8]>, Source)> = match collected.iter().position(|c| c.by == by)
            {
                Some(i) => collected
                    .swap_remove(i)
                    .groups
                    .into_iter()
                    .map(|(k, c)| (k, Source::Collected(c)))
                    .collect(),
                None => derive(by, clients, group_of),
            };
            leads_of(policy, by, sources, clients, identify)
        })
        .collect()
}

/// The groups of clients under `by`, each with the clients in it.
fn derive(
    by: GroupBy,
    clients: &[(Box<[u8]>, Series)],
    group_of: &GroupOfClient<'_>,
) -> Vec<(Box<[u8]>, Source)> {
    let mut buf = Vec::new();
    let mut groups: FxHashMap<Box<[u8]>, Vec<usize>> = FxHashMap::default();
    for (i, (key, _)) in clients.iter().enumerate() {
        if group_of(by, key, &mut buf) {
            match groups.get_mut(buf.as_slice()) {
                Some(v) => v.push(i),
                None => {
                    groups.insert(buf.as_slice().into(), vec![i]);
                }
            }
        }
    }
    groups
        .into_iter()
        .map(|(k, v)| (k, Source::Clients(v)))
        .collect()
}

/// Buckets (any order) in canonical form: sorted, one per instant.
fn canonical(mut buckets: Vec<Bucket>) -> Vec<Bucket> {
    buckets.sort_unstable_by_key(|b| b.t);
    let mut out: Vec<Bucket> = Vec::with_capacity(buckets.len());
    for b in buckets {
        match out.last_mut() {
            Some(last) if last.t == b.t => {
                last.posts = last.posts.saturating_add(b.posts);
                last.requests = last.requests.saturating_add(b.requests);
            }
            _ => out.push(b),
        }
    }
    out
}

fn leads_of(
    policy: &Policy,
    by: GroupBy,
    sources: Vec<(Box<[u8]>, Source)>,
    clients: &[(Box<[u8]>, Series)],
    identify: &Identify<'_>,
) -> GroupLeads {
    let groups = sources.len() as u64;
    let own_buckets = |i: usize| clients[i].1.clone().into_buckets();
    let index_of = |k: &[u8]| clients.binary_search_by(|c| (*c.0).cmp(k)).ok();
    // Each group billed as if it were one client, by the one billing function; only
    // the groups that would be billed are kept, with their member keys.
    type Over = (bill::ClientResult, Vec<Box<[u8]>>);
    let billed: Vec<Result<Over, String>> = sources
        .into_par_iter()
        .filter_map(|(key, source)| {
            let (buckets, members) = match source {
                Source::Collected(c) => {
                    let m = c.members();
                    (c.series.into_buckets(), m)
                }
                Source::Clients(ix) => (
                    canonical(ix.iter().flat_map(|&i| own_buckets(i)).collect()),
                    ix.iter().map(|&i| clients[i].0.clone()).collect(),
                ),
            };
            let id = group_identity(&key);
            if let Err(e) = limits::check_client(&id.name, &buckets, (0, 0), policy.window) {
                return Some(Err(e.replacen("client", "group", 1)));
            }
            let b = bill::bill(policy, &Horizon::Complete, key, id, buckets, None).result;
            (!b.windows.is_empty()).then_some(Ok((b, members)))
        })
        .collect();
    let mut refused = Vec::new();
    let mut over = Vec::new();
    for b in billed {
        match b {
            Ok(b) => over.push(b),
            Err(e) => refused.push(e),
        }
    }
    // Every member of those groups, billed on its own (once, if in several groups).
    let mut wanted: Vec<usize> = over
        .iter()
        .flat_map(|(_, m)| m.iter().filter_map(|k| index_of(k)))
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    let own: FxHashMap<Box<[u8]>, Own> = wanted
        .into_par_iter()
        .map(|i| {
            let key = clients[i].0.clone();
            let id = identify(&key);
            let r = bill::bill(policy, &Horizon::Complete, key, id, own_buckets(i), None).result;
            let own = Own {
                breaches: !r.windows.is_empty(),
                member: LeadMember {
                    name: r.name,
                    cell: r.cell,
                    peak: r.peak,
                    total_posts: r.total_posts,
                    total_requests: r.total_requests,
                },
            };
            (r.key, own)
        })
        .collect();
    let over_threshold = over.len() as u64;
    let mut with_breaching_member = 0;
    let mut leads = Vec::new();
    for (g, keys) in over {
        let mut list: Vec<&Own> = keys.iter().filter_map(|k| own.get(k)).collect();
        if list.iter().any(|o| o.breaches) {
            with_breaching_member += 1;
            continue;
        }
        let peak_of = |o: &Own| o.member.peak.map_or(0, |p| p.posts);
        list.sort_by(|a, b| {
            peak_of(b)
                .cmp(&peak_of(a))
                .then_with(|| a.member.cell.cmp(&b.member.cell))
        });
        leads.push(Lead {
            name: g.name,
            cell: g.cell,
            peak: g.peak.expect("a group with a billed window has a peak"),
            windows: g
                .windows
                .iter()
                .map(|w| WouldBeWindow {
                    start: w.start,
                    end: w.end,
                    posts: w.posts,
                    requests: w.requests,
                    damages: w.damages,
                })
                .collect(),
            total_posts: g.total_posts,
            total_requests: g.total_requests,
            members_total: list.len(),
            members: list
                .iter()
                .take(TOP_MEMBERS)
                .map(|o| o.member.clone())
                .collect(),
        });
    }
    leads.sort_by(|a, b| {
        b.peak
            .posts
            .cmp(&a.peak.posts)
            .then_with(|| a.cell.cmp(&b.cell))
    });
    GroupLeads {
        by,
        groups,
        over_threshold,
        with_breaching_member,
        refused,
        leads,
    }
}

/// How the reports name a group: its key as written; formula-guarded in CSV (a user
/// agent is log text; a network never starts with a guarded character). Never exempt.
fn group_identity(key: &[u8]) -> Identity {
    let name = display_key(key);
    Identity {
        cell: guard_formula(&name),
        name,
        exempt: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::damages::{Rate, Rounding};
    use crate::engine::window::Mode;

    const H: i64 = 3_600_000_000;

    fn policy(threshold: u64) -> Policy {
        Policy {
            threshold,
            window: 24 * H,
            rate: "15000".parse::<Rate>().unwrap(),
            per: 1_000_000,
            rounding: Rounding::ProRata,
            mode: Mode::Rolling,
        }
    }

    fn plain(k: &[u8]) -> Identity {
        group_identity(k)
    }

    /// Requests `(group, client, hour, posts)` into a client aggregate and the groups
    /// (collected as the first pass does, or derived from the clients after it when
    /// `derived`: the group is then the client key's first byte); the leads, and the
    /// clients billed on their own.
    fn leads_and_billed(
        threshold: u64,
        requests: &[(&str, &str, i64, u64)],
        derived: bool,
    ) -> (GroupLeads, Vec<bill::ClientResult>) {
        let by = GroupBy::Ua;
        let collected = if derived { vec![] } else { vec![by] };
        let mut groups = Groups::new(&collected);
        let mut clients = crate::engine::aggregate::Aggregate::new();
        for &(g, c, h, p) in requests {
            clients.add(c.as_bytes(), h * H, p, 1);
            if !derived {
                groups.by[0].add(g.as_bytes(), c.as_bytes(), h * H, p);
            }
        }
        let clients = clients.into_sorted_series();
        let first_byte = |_: GroupBy, k: &[u8], buf: &mut Vec<u8>| {
            buf.clear();
            buf.extend_from_slice(&k[..1]);
            true
        };
        let leads = find_leads(
            &policy(threshold),
            &[by],
            groups,
            &clients,
            &plain,
            &first_byte,
        )
        .pop()
        .unwrap();
        let billed = bill::bill_all(
            &policy(threshold),
            &Horizon::Complete,
            clients.into_par_iter().map(|(key, new)| bill::ToBill {
                key,
                carry: None,
                new,
            }),
            &plain,
        )
        .0
        .clients;
        (leads, billed)
    }

    fn run(
        threshold: u64,
        requests: &[(&str, &str, i64, u64)],
    ) -> (GroupLeads, Vec<bill::ClientResult>) {
        leads_and_billed(threshold, requests, false)
    }

    #[test]
    fn groups_derived_from_the_clients_equal_groups_collected() {
        // Clients whose first letter is their group: a1..a4 in "a", b1 in "b".
        let reqs = [
            ("a", "a1", 0, 3),
            ("a", "a2", 1, 3),
            ("a", "a3", 2, 3),
            ("a", "a4", 3, 3),
            ("b", "b1", 0, 3),
            ("a", "a1", 30, 0),
        ];
        let (collected, _) = leads_and_billed(10, &reqs, false);
        let (derived, _) = leads_and_billed(10, &reqs, true);
        assert_eq!(collected, derived);
        assert_eq!(derived.leads[0].name, "a");
        assert_eq!(derived.leads[0].members_total, 4);
        assert_eq!((derived.groups, derived.leads[0].total_requests), (2, 5));
    }

    #[test]
    fn four_members_below_whose_sum_breaches_make_one_lead() {
        let reqs = [
            ("g", "a", 0, 3),
            ("g", "b", 1, 3),
            ("g", "c", 2, 3),
            ("g", "d", 3, 3),
            ("h", "e", 0, 3),
        ];
        let (l, billed) = run(10, &reqs);
        assert!(billed.is_empty(), "no client is billed on its own");
        assert_eq!(
            (l.groups, l.over_threshold, l.with_breaching_member),
            (2, 1, 0)
        );
        let lead = &l.leads[0];
        assert_eq!(lead.name, "g");
        assert_eq!((lead.peak.start, lead.peak.posts), (0, 12));
        assert_eq!(lead.members_total, 4);
        assert_eq!(
            lead.members
                .iter()
                .map(|m| m.name.as_str())
                .collect::<Vec<_>>(),
            ["a", "b", "c", "d"]
        );
        assert!(lead.members.iter().all(|m| m.peak.unwrap().posts == 3));
        // As one client it would owe USD 15,000 per 1,000,000 posts of its window.
        assert_eq!(lead.windows.len(), 1);
        assert_eq!(lead.damages(), Cents(18)); // 12 posts × 0.015 USD = 0.18
    }

    #[test]
    fn threshold_exactly_is_no_lead_and_one_more_is() {
        let reqs = [("g", "a", 0, 5), ("g", "b", 1, 5)];
        let (l, _) = run(10, &reqs);
        assert!(l.leads.is_empty());
        assert_eq!(l.over_threshold, 0);
        let (l, _) = run(9, &reqs);
        assert_eq!(l.leads.len(), 1);
        assert_eq!(l.leads[0].peak.posts, 10);
    }

    #[test]
    fn a_group_with_a_member_over_the_threshold_is_left_out_and_counted() {
        // "a" breaches on its own (it is billed); "b" does not.
        let reqs = [("g", "a", 0, 11), ("g", "b", 1, 5)];
        let (l, billed) = run(10, &reqs);
        assert_eq!(billed.len(), 1);
        assert!(l.leads.is_empty());
        assert_eq!((l.over_threshold, l.with_breaching_member), (1, 1));
    }

    #[test]
    fn a_member_counts_with_all_its_requests_not_only_the_groups() {
        // "a" sends 6 posts as agent g and 6 as agent h: billed on its own (12 > 10),
        // so neither agent is a lead, though g alone sums 6 + 5 = 11.
        let reqs = [
            ("g", "a", 0, 6),
            ("h", "a", 1, 6),
            ("g", "b", 2, 5),
            ("h", "c", 2, 5),
        ];
        let (l, billed) = run(10, &reqs);
        assert_eq!(billed.len(), 1);
        assert!(l.leads.is_empty());
        assert_eq!(l.with_breaching_member, 2);
    }

    #[test]
    fn the_group_window_is_rolling_and_half_open() {
        // 6 posts at hour 0 and 6 at hour 24: never in one window.
        let reqs = [("g", "a", 0, 6), ("g", "b", 24, 6)];
        let (l, _) = run(10, &reqs);
        assert!(l.leads.is_empty());
        let reqs = [("g", "a", 0, 6), ("g", "b", 23, 6)];
        let (l, _) = run(10, &reqs);
        assert_eq!(l.leads[0].peak.posts, 12);
    }

    #[test]
    fn members_are_capped_and_leads_sorted_by_peak() {
        let mut reqs: Vec<(String, String, i64, u64)> = (0..30)
            .map(|i| ("big".to_string(), format!("m{i:02}"), 0, 1 + (i % 3) as u64))
            .collect();
        reqs.extend((0..3).map(|i| ("small".to_string(), format!("s{i}"), 0, 4)));
        let borrowed: Vec<(&str, &str, i64, u64)> = reqs
            .iter()
            .map(|(g, c, h, p)| (g.as_str(), c.as_str(), *h, *p))
            .collect();
        let (l, _) = run(5, &borrowed);
        assert_eq!(
            l.leads.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(),
            ["big", "small"]
        );
        let big = &l.leads[0];
        assert_eq!(big.members_total, 30);
        assert_eq!(big.members.len(), TOP_MEMBERS);
        assert_eq!(big.members[0].name, "m02");
        assert!(big
            .members
            .windows(2)
            .all(|w| w[0].peak.unwrap().posts >= w[1].peak.unwrap().posts));
    }

    #[test]
    fn also_by_values() {
        assert_eq!(GroupBy::parse("ua", 24, 64).unwrap(), GroupBy::Ua);
        assert_eq!(
            GroupBy::parse("subnet", 20, 48).unwrap(),
            GroupBy::Subnet {
                ipv4_prefix: 20,
                ipv6_prefix: 48
            }
        );
        assert!(GroupBy::parse("ip", 24, 64).is_err());
    }
}
