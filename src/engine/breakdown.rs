//! What one reported client's requests were beyond their count: the raw spellings its
//! key was logged as, and its requests and posts by status class and by rule.
//!
//! Filled by the second read of `scan` ([`crate::input::second_read`]), shown in
//! report.json and report.html, so that a reader sees that `203.0.113.77` and
//! `::ffff:203.0.113.77` are one client, and why N requests are M posts.
//!
//! Spellings are counted exactly for the first [`KEPT`] distinct ones seen (in file
//! order); the requests of any later spelling are counted together, not by spelling,
//! and the list is marked not exact (a spelling kept overall but first seen past the
//! cap in one file may then be counted low). The reports list the [`SHOWN`] spellings
//! with most requests and sum up the rest.

use crate::engine::text::display_key;
use crate::engine::tops::{mark_ids, remap_ids, ById, Values};
use rustc_hash::FxHashMap;
use serde::Serialize;

/// Spellings listed per client.
pub const SHOWN: usize = 20;
/// Distinct spellings counted per client (and per file) before the rest are lumped.
pub const KEPT: usize = 1_000;

/// The status classes, in the order they are listed.
pub const CLASSES: [&str; 5] = ["2xx", "3xx", "4xx", "5xx", "other"];

/// The index into [`CLASSES`] of an HTTP status code.
pub fn class_of(status: u16) -> usize {
    match status {
        200..=299 => 0,
        300..=399 => 1,
        400..=499 => 2,
        500..=599 => 3,
        _ => 4,
    }
}

/// Requests and the posts they weighed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Count {
    pub requests: u64,
    pub posts: u64,
}

impl Count {
    fn add(&mut self, posts: u64) {
        self.requests += 1;
        self.posts = self.posts.saturating_add(posts);
    }
    fn merge(&mut self, o: Count) {
        self.requests += o.requests;
        self.posts = self.posts.saturating_add(o.posts);
    }
}

/// The counts of one client, as its requests are read.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    /// Requests per raw spelling (by its id in a [`Values`] the caller keeps), at most
    /// [`KEPT`] of them.
    spellings: FxHashMap<u32, u64>,
    /// The spelling counted last (in `spellings`) and its requests since, not yet added
    /// there: a client is mostly logged one way (see [`crate::engine::tops::Tally`]).
    last: Option<u32>,
    pending: u64,
    /// Whether the last spelling is the client's key (see [`Self::add`]).
    last_is_key: bool,
    /// Requests of spellings past the cap.
    lumped: u64,
    status: [Count; 5],
    /// With a rules file: per rule index; `None` without one.
    rules: Option<Vec<Count>>,
    /// With a rules file: requests no rule matched (0 posts).
    no_rule: Count,
}

/// Which rule decided a request's weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decided {
    /// The default rule (no rules file).
    Default,
    /// Rule `i` of the rules file.
    Rule(usize),
    /// A rules file, and no rule matched.
    NoRule,
}

impl Counts {
    /// Counts one request of client `key` logged as `spelling` (interned in `values`),
    /// with status `status`, weighing `posts` as `decided`.
    ///
    /// Most requests are logged as their key, as the last one was: that is seen by
    /// comparing `spelling` with `key`, both in cache, whereas the last spelling in
    /// `values` is not (with ~2,000 reported clients interleaved, reading it was ~2% of
    /// a `--threshold 75` scan of the bench set).
    #[inline]
    pub fn add(
        &mut self,
        values: &mut Values,
        key: &[u8],
        spelling: &[u8],
        status: u16,
        decided: Decided,
        posts: u64,
    ) {
        let is_key = spelling == key;
        match self.last {
            Some(_) if is_key && self.last_is_key => self.pending += 1,
            Some(last) if !is_key && !self.last_is_key && values.get(last) == spelling => {
                self.pending += 1
            }
            _ => {
                self.add_spelling(values.id(spelling), 1);
                self.last_is_key = is_key;
            }
        }
        self.status[class_of(status)].add(posts);
        match decided {
            Decided::Default => {}
            Decided::Rule(i) => {
                let rules = self.rules.get_or_insert_with(Vec::new);
                if rules.len() <= i {
                    rules.resize(i + 1, Count::default());
                }
                rules[i].add(posts);
            }
            Decided::NoRule => {
                self.rules.get_or_insert_with(Vec::new);
                self.no_rule.add(posts);
            }
        }
    }

    #[inline]
    fn add_spelling(&mut self, spelling: u32, n: u64) {
        self.flush();
        if let Some(c) = self.spellings.get_mut(&spelling) {
            *c += n;
            self.last = Some(spelling);
        } else if self.spellings.len() < KEPT {
            self.spellings.insert(spelling, n);
            self.last = Some(spelling);
        } else {
            self.lumped += n;
        }
    }

    /// Adds `other` (the counts of a later file), whose ids `map` turns into ids of
    /// `values`.
    pub fn merge(&mut self, mut other: Counts, map: &[u32], values: &Values) {
        self.flush();
        other.flush();
        // In a fixed order, so that which spellings are kept does not depend on the
        // hash map's order (nor on the ids).
        let mut spellings: Vec<(u32, u64)> = other
            .spellings
            .into_iter()
            .map(|(id, n)| (map[id as usize], n))
            .collect();
        spellings.sort_unstable_by(|a, b| values.get(a.0).cmp(values.get(b.0)));
        for (s, n) in spellings {
            self.add_spelling(s, n);
        }
        self.lumped += other.lumped;
        for (a, b) in self.status.iter_mut().zip(other.status) {
            a.merge(b);
        }
        if let Some(theirs) = other.rules {
            let mine = self.rules.get_or_insert_with(Vec::new);
            if mine.len() < theirs.len() {
                mine.resize(theirs.len(), Count::default());
            }
            for (a, b) in mine.iter_mut().zip(theirs) {
                a.merge(b);
            }
        }
        self.no_rule.merge(other.no_rule);
    }

    /// Adds the requests pending for the last spelling to its count.
    fn flush(&mut self) {
        if let Some(last) = self.last.take() {
            if let Some(c) = self.spellings.get_mut(&last) {
                *c += std::mem::take(&mut self.pending);
            }
        }
    }

    /// Whether every spelling was counted on its own (none lumped past the cap).
    pub fn is_exact(&self) -> bool {
        self.lumped == 0
    }
}

impl ById for Counts {
    fn mark(&self, live: &mut [bool]) {
        mark_ids(&self.spellings, live);
    }

    fn remap(&mut self, map: &[u32]) {
        self.flush();
        remap_ids(&mut self.spellings, map);
    }
}

impl Counts {
    /// The finished breakdown; `values` holds its spellings, `rule_names` are the rules
    /// file's rule names, in order.
    pub fn finish(&self, values: &Values, rule_names: &[String]) -> Breakdown {
        let mut all: Vec<(&[u8], u64)> = self
            .spellings
            .iter()
            .map(|(&id, &n)| {
                let pending = if self.last == Some(id) {
                    self.pending
                } else {
                    0
                };
                (values.get(id), n + pending)
            })
            .collect();
        let order = |a: &(&[u8], u64), b: &(&[u8], u64)| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0));
        if all.len() > SHOWN {
            all.select_nth_unstable_by(SHOWN - 1, order);
            all[..SHOWN].sort_unstable_by(order);
        } else {
            all.sort_unstable_by(order);
        }
        let rest = all.split_off(all.len().min(SHOWN));
        let logged_as = LoggedAs {
            spellings: all
                .into_iter()
                .map(|(s, n)| Spelling {
                    spelling: display_key(s),
                    requests: n,
                })
                .collect(),
            other_spellings: rest.len() as u64,
            other_requests: rest.iter().map(|r| r.1).sum::<u64>() + self.lumped,
            exact: self.lumped == 0,
        };
        let by_status = self
            .status
            .iter()
            .enumerate()
            .filter(|(_, c)| c.requests > 0)
            .map(|(i, c)| StatusRow {
                class: CLASSES[i],
                requests: c.requests,
                posts: c.posts,
            })
            .collect();
        let by_rule = self.rules.as_ref().map(|rules| {
            let mut rows: Vec<RuleRow> = rules
                .iter()
                .enumerate()
                .filter(|(_, c)| c.requests > 0)
                .map(|(i, c)| RuleRow {
                    rule: Some(
                        rule_names
                            .get(i)
                            .cloned()
                            .unwrap_or_else(|| format!("rule {}", i + 1)),
                    ),
                    requests: c.requests,
                    posts: c.posts,
                })
                .collect();
            if self.no_rule.requests > 0 {
                rows.push(RuleRow {
                    rule: None,
                    requests: self.no_rule.requests,
                    posts: self.no_rule.posts,
                });
            }
            rows
        });
        Breakdown {
            logged_as,
            by_status,
            by_rule,
        }
    }
}

/// One raw spelling of the client's key and its requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Spelling {
    /// As logged (`\xHH` for non-UTF-8 bytes).
    #[serde(rename = "as")]
    pub spelling: String,
    pub requests: u64,
}

/// The spellings a client was logged as.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoggedAs {
    /// The [`SHOWN`] spellings with most requests (ties by spelling).
    pub spellings: Vec<Spelling>,
    /// Distinct spellings not listed (a lower bound when not `exact`).
    pub other_spellings: u64,
    /// Requests of the spellings not listed.
    pub other_requests: u64,
    /// False when more than [`KEPT`] distinct spellings were seen.
    pub exact: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusRow {
    pub class: &'static str,
    pub requests: u64,
    pub posts: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleRow {
    /// The rule's name; `None` for the requests no rule matched.
    pub rule: Option<String>,
    pub requests: u64,
    pub posts: u64,
}

/// The finished breakdown of one client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Breakdown {
    pub logged_as: LoggedAs,
    /// The status classes with at least one request, in the order of [`CLASSES`].
    pub by_status: Vec<StatusRow>,
    /// With a rules file: the rules that matched at least one request, in file
    /// order, then the requests no rule matched; `None` without a rules file.
    pub by_rule: Option<Vec<RuleRow>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert_eq!(class_of(200), 0);
        assert_eq!(class_of(304), 1);
        assert_eq!(class_of(404), 2);
        assert_eq!(class_of(599), 3);
        assert_eq!(class_of(0), 4);
        assert_eq!(class_of(199), 4);
        assert_eq!(class_of(600), 4);
    }

    #[test]
    fn counts_split_and_merge() {
        let mut values = Values::default();
        let mut a = Counts::default();
        a.add(
            &mut values,
            b"10.0.0.1",
            b"10.0.0.1",
            200,
            Decided::Rule(1),
            40,
        );
        a.add(
            &mut values,
            b"10.0.0.1",
            b"::ffff:10.0.0.1",
            404,
            Decided::NoRule,
            0,
        );
        let mut theirs = Values::default();
        let mut b = Counts::default();
        b.add(
            &mut theirs,
            b"10.0.0.1",
            b"10.0.0.2",
            200,
            Decided::Default,
            0,
        );
        for _ in 0..2 {
            b.add(
                &mut theirs,
                b"10.0.0.1",
                b"10.0.0.1",
                200,
                Decided::Rule(0),
                1,
            );
        }
        let map = values.absorb(theirs);
        a.merge(b, &map, &values);
        let names = ["one".to_string(), "two".to_string()];
        let d = a.finish(&values, &names);
        assert_eq!(
            d.logged_as.spellings,
            [
                Spelling {
                    spelling: "10.0.0.1".into(),
                    requests: 3
                },
                Spelling {
                    spelling: "10.0.0.2".into(),
                    requests: 1
                },
                Spelling {
                    spelling: "::ffff:10.0.0.1".into(),
                    requests: 1
                }
            ]
        );
        assert!(d.logged_as.exact);
        assert_eq!(d.by_status.len(), 2);
        assert_eq!((d.by_status[0].requests, d.by_status[0].posts), (4, 42));
        let rules = d.by_rule.unwrap();
        assert_eq!(rules.len(), 3);
        assert_eq!(rules[0].rule.as_deref(), Some("one"));
        assert_eq!(rules[2].rule, None);
    }

    #[test]
    fn spellings_are_bounded() {
        let mut values = Values::default();
        let mut a = Counts::default();
        for i in 0..(KEPT + 5) {
            a.add(
                &mut values,
                b"s0",
                format!("s{i}").as_bytes(),
                200,
                Decided::Default,
                1,
            );
        }
        a.add(&mut values, b"s0", b"s0", 200, Decided::Default, 1);
        let d = a.finish(&values, &[]);
        assert!(d.by_rule.is_none());
        assert_eq!(d.logged_as.spellings.len(), SHOWN);
        assert_eq!(d.logged_as.spellings[0].requests, 2);
        assert!(!d.logged_as.exact);
        let listed: u64 = d.logged_as.spellings.iter().map(|s| s.requests).sum();
        assert_eq!(listed + d.logged_as.other_requests, KEPT as u64 + 6);
        assert_eq!(d.logged_as.other_spellings, (KEPT - SHOWN) as u64);
    }

    /// Past the cap, a later file's spellings are kept in the order of their bytes,
    /// whatever their ids.
    #[test]
    fn a_merge_past_the_cap_keeps_spellings_in_byte_order() {
        let mut values = Values::default();
        let mut a = Counts::default();
        for i in 0..KEPT - 1 {
            a.add(
                &mut values,
                b"m0",
                format!("m{i}").as_bytes(),
                200,
                Decided::Default,
                1,
            );
        }
        let mut theirs = Values::default();
        let mut b = Counts::default();
        b.add(&mut theirs, b"10.0.0.1", b"z", 200, Decided::Default, 1);
        b.add(&mut theirs, b"10.0.0.1", b"a", 200, Decided::Default, 1);
        let map = values.absorb(theirs);
        a.merge(b, &map, &values);
        assert!(!a.is_exact());
        let d = a.finish(&values, &[]);
        assert_eq!(d.logged_as.spellings[0].spelling, "a");
        assert_eq!(d.logged_as.other_requests, (KEPT - SHOWN) as u64 + 1);
    }

    proptest::proptest! {
        /// Counted by ids, with a shortcut for the spelling counted last and for the
        /// client's key, and merged across two readers' values, spellings are counted
        /// as a plain map of them would.
        #[test]
        fn spellings_count_as_a_plain_map_does(
            a in proptest::collection::vec(0u8..6, 0..60),
            b in proptest::collection::vec(0u8..6, 0..60),
        ) {
            let key = b"s0";
            let mut plain: std::collections::HashMap<Vec<u8>, u64> = Default::default();
            let mut count = |seq: &[u8], values: &mut Values| {
                let mut c = Counts::default();
                for i in seq {
                    let s = format!("s{i}");
                    c.add(values, key, s.as_bytes(), 200, Decided::Default, 1);
                    *plain.entry(s.into_bytes()).or_default() += 1;
                }
                c
            };
            let mut values = Values::default();
            let mut theirs = Values::default();
            let mut ca = count(&a, &mut values);
            let cb = count(&b, &mut theirs);
            let map = values.absorb(theirs);
            ca.merge(cb, &map, &values);
            let mut want: Vec<(Vec<u8>, u64)> = plain.into_iter().collect();
            want.sort_by(|x, y| y.1.cmp(&x.1).then_with(|| x.0.cmp(&y.0)));
            let got: Vec<(Vec<u8>, u64)> = ca
                .finish(&values, &[])
                .logged_as
                .spellings
                .into_iter()
                .map(|s| (s.spelling.into_bytes(), s.requests))
                .collect();
            proptest::prop_assert_eq!(got, want);
        }
    }
}
