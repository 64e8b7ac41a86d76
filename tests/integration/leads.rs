//! Property test of the `--also-by` leads ([`scrapemeter::engine::groups`]) against a
//! brute-force oracle written from the definition: a group is a lead when the group's
//! requests taken together would be billed (a window with strictly more posts than the
//! threshold, rolling or calendar) while none of its clients, with all of its own
//! requests, would be. `W(s)` is a full sum over every request for every candidate
//! start; nothing is shared with the engine's window scan.
//!
//! Random requests of a few clients in a few groups (a client may be in several, as
//! with user agents), on microsecond times around the epoch, through `Groups` and
//! `Aggregate` in two halves merged, then `groups::find_leads`; or, as for a subnet of
//! `ip` clients, each client in one group, derived from its key after the pass.

use proptest::prelude::*;
use scrapemeter::engine::aggregate::Aggregate;
use scrapemeter::engine::bill::{Identity, Policy};
use scrapemeter::engine::damages::{Rate, Rounding};
use scrapemeter::engine::groups::{find_leads, GroupBy, Groups, TOP_MEMBERS};
use scrapemeter::engine::window::Mode;

const SEC: i64 = 1_000_000;
const GROUPS: [&str; 3] = ["g0", "g1", "g2"];
const CLIENTS: [&str; 10] = ["c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9"];

/// One request: group index, client index, time, posts.
type Req = (usize, usize, i64, u64);
/// A window: start, posts, requests.
type Win = (i64, u64, u64);

/// `(posts, requests)` in `[s, s + len)`.
fn sums(events: &[(i64, u64)], s: i64, len: i64) -> (u64, u64) {
    events
        .iter()
        .filter(|&&(t, _)| s <= t && t < s + len)
        .fold((0, 0), |(p, r), &(_, w)| (p + w, r + 1))
}

fn post_times(events: &[(i64, u64)]) -> Vec<i64> {
    let mut ts: Vec<i64> = events.iter().filter(|e| e.1 > 0).map(|e| e.0).collect();
    ts.sort();
    ts.dedup();
    ts
}

/// The peak window `(start, posts, requests)`: the largest `W`, earliest on a tie.
fn peak(events: &[(i64, u64)], len: i64) -> Option<Win> {
    let mut best: Option<Win> = None;
    for s in post_times(events) {
        let (p, r) = sums(events, s, len);
        if best.is_none_or(|b| p > b.1) {
            best = Some((s, p, r));
        }
    }
    best
}

/// The billed windows' `(start, posts)`, greedy rolling or epoch-aligned calendar.
fn billed(events: &[(i64, u64)], len: i64, threshold: u64, mode: Mode) -> Vec<(i64, u64)> {
    let mut out: Vec<(i64, u64)> = Vec::new();
    match mode {
        Mode::Rolling => {
            for s in post_times(events) {
                if out.last().is_some_and(|w| s < w.0 + len) {
                    continue;
                }
                let (p, _) = sums(events, s, len);
                if p > threshold {
                    out.push((s, p));
                }
            }
        }
        Mode::Calendar => {
            let mut ks: Vec<i64> = events.iter().map(|e| e.0.div_euclid(len)).collect();
            ks.sort();
            ks.dedup();
            for k in ks {
                let (p, _) = sums(events, k * len, len);
                if p > threshold {
                    out.push((k * len, p));
                }
            }
        }
    }
    out
}

fn requests() -> impl Strategy<Value = Vec<Req>> {
    let time = (-30i64..60, 0usize..4, 0i64..SEC).prop_map(|(s, kind, frac)| {
        s * SEC
            + match kind {
                0 | 1 => 0,
                2 => SEC - 1,
                _ => frac,
            }
    });
    let posts = prop_oneof![5 => Just(1u64), 2 => Just(0u64), 2 => 2u64..5];
    prop::collection::vec((0..GROUPS.len(), 0..CLIENTS.len(), time, posts), 0..80)
}

fn plain(k: &[u8]) -> Identity {
    let name = String::from_utf8_lossy(k).into_owned();
    Identity {
        cell: name.clone(),
        name,
        exempt: false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn leads_equal_the_oracle(
        reqs in requests(),
        cut in 0usize..80,
        window_s in 1i64..40,
        threshold in 0u64..14,
        calendar in any::<bool>(),
        derived in any::<bool>(),
    ) {
        // Derived: a client's group is its index modulo the number of groups.
        let reqs: Vec<Req> = if derived {
            reqs.into_iter().map(|(_, c, t, p)| (c % GROUPS.len(), c, t, p)).collect()
        } else {
            reqs
        };
        let len = window_s * SEC;
        let mode = if calendar { Mode::Calendar } else { Mode::Rolling };
        let policy = Policy {
            threshold,
            window: len,
            rate: "15000".parse::<Rate>().unwrap(),
            per: 1_000_000,
            rounding: Rounding::ProRata,
            mode,
        };
        // Two workers' halves, merged, as the reader does.
        let cut = cut.min(reqs.len());
        let fill = |part: &[Req]| {
            let collected = if derived { vec![] } else { vec![GroupBy::Ua] };
            let mut groups = Groups::new(&collected);
            let mut clients = Aggregate::new();
            for &(g, c, t, p) in part {
                clients.add(CLIENTS[c].as_bytes(), t, p, 1);
                if !derived {
                    groups.by[0].add(GROUPS[g].as_bytes(), CLIENTS[c].as_bytes(), t, p);
                }
            }
            (groups, clients)
        };
        let (mut groups, mut clients) = fill(&reqs[..cut]);
        let (g2, c2) = fill(&reqs[cut..]);
        groups.merge(g2);
        clients.merge(c2);
        let clients = clients.into_sorted_series();
        let group_of = |_: GroupBy, key: &[u8], buf: &mut Vec<u8>| {
            let c = CLIENTS.iter().position(|c| c.as_bytes() == key).unwrap();
            buf.clear();
            buf.extend_from_slice(GROUPS[c % GROUPS.len()].as_bytes());
            true
        };
        let found = find_leads(&policy, &[GroupBy::Ua], groups, &clients, &plain, &group_of)
            .pop()
            .unwrap();

        let of_client = |c: usize| -> Vec<(i64, u64)> {
            reqs.iter().filter(|r| r.1 == c).map(|r| (r.2, r.3)).collect()
        };
        let mut want = Vec::new();
        let mut over = 0;
        for (g, name) in GROUPS.iter().enumerate() {
            let ev: Vec<(i64, u64)> = reqs.iter().filter(|r| r.0 == g).map(|r| (r.2, r.3)).collect();
            let windows = billed(&ev, len, threshold, mode);
            if windows.is_empty() {
                continue;
            }
            over += 1;
            let mut members: Vec<usize> = reqs.iter().filter(|r| r.0 == g).map(|r| r.1).collect();
            members.sort();
            members.dedup();
            if members.iter().any(|&c| !billed(&of_client(c), len, threshold, mode).is_empty()) {
                continue;
            }
            // Members by own peak (highest first), then name.
            let mut own: Vec<(u64, &str, Option<Win>)> = members
                .iter()
                .map(|&c| {
                    let p = peak(&of_client(c), len);
                    (p.map_or(0, |p| p.1), CLIENTS[c], p)
                })
                .collect();
            own.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
            // Damages at USD 15,000 per 1,000,000 posts: 1.5 cents a post, half up.
            let cents: u128 = windows.iter().map(|w| (w.1 as u128 * 3).div_ceil(2)).sum();
            want.push((
                name.to_string(),
                peak(&ev, len).unwrap(),
                windows,
                cents,
                members.len(),
                own.into_iter().take(TOP_MEMBERS).map(|o| (o.1.to_string(), o.2)).collect::<Vec<_>>(),
            ));
        }
        want.sort_by(|a, b| b.1 .1.cmp(&a.1 .1).then(a.0.cmp(&b.0)));
        let got: Vec<_> = found
            .leads
            .iter()
            .map(|l| (
                l.name.clone(),
                (l.peak.start, l.peak.posts, l.peak.requests),
                l.windows.iter().map(|w| (w.start, w.posts)).collect::<Vec<_>>(),
                l.damages().0,
                l.members_total,
                l.members
                    .iter()
                    .map(|m| (m.name.clone(), m.peak.map(|p| (p.start, p.posts, p.requests))))
                    .collect::<Vec<_>>(),
            ))
            .collect();
        prop_assert_eq!(got, want);
        prop_assert_eq!(found.over_threshold, over);
        prop_assert_eq!(
            found.groups,
            GROUPS.iter().enumerate().filter(|(g, _)| reqs.iter().any(|r| r.0 == *g)).count() as u64
        );
    }
}
