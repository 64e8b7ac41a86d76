//! Top paths and top user agents of one client: what it fetched, and as what.
//!
//! Shared by `scrapemeter explain` and the second read of `scan` (report.json and
//! report.html). A path is the request target up to `?`, with every run of digits
//! written `{n}` (`/api/v2/post/12345?x=1` → `/api/v{n}/post/{n}`: which endpoint, not
//! which post); a request without a request line counts as `(no request line)`. A
//! user agent is counted as logged (`-` when there is none). Every request of the
//! client counts, whatever its post weight.
//!
//! Counts are exact as long as a client shows at most [`MAX_DISTINCT`] distinct paths
//! (or user agents) in one file and over the whole run. Past that, to bound memory,
//! the rarer half is dropped and the lists are marked not exact (`exact: false`): a
//! value dropped and seen again starts counting afresh.

use crate::engine::text::{display_key, path_of};
use indexmap::IndexSet;
use rustc_hash::{FxBuildHasher, FxHashMap};
use serde::Serialize;

/// Rows of each list.
pub const TOP: usize = 10;
/// Distinct values counted before the rarer half is dropped.
pub const MAX_DISTINCT: usize = 100_000;

/// `/post/12345?x=1` → `/post/{n}`: what endpoint, not which post.
pub fn path_template(target: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    path_template_into(target, &mut out);
    out
}

/// [`path_template`] written into `out` (cleared first), so that a caller counting
/// many requests reuses one buffer: a `Vec` made per request (and grown by a `realloc`
/// when `{n}` is longer than the digits it stands for) was ~1.5% of the second read's
/// samples with ~500 reported clients (29 of 1,993: malloc, realloc and free; one bench
/// file, `--threshold 75`).
pub fn path_template_into(target: &[u8], out: &mut Vec<u8>) {
    let path = path_of(target);
    out.clear();
    let mut i = 0;
    while i < path.len() {
        if path[i].is_ascii_digit() {
            while i < path.len() && path[i].is_ascii_digit() {
                i += 1;
            }
            out.extend_from_slice(b"{n}");
        } else {
            out.push(path[i]);
            i += 1;
        }
    }
}

/// Distinct values one reader keeps before [`Values::compact_with`] drops those no
/// counter holds any more (a pruned [`Tally`] forgets values, its [`Values`] does not).
pub const KEEP_VALUES: usize = 1 << 20;

/// An id no value has (one dropped by [`Values::compact_with`]).
const GONE: u32 = u32::MAX;

/// The distinct byte strings (path templates, user agents, spellings) one reader counts,
/// each known by a dense `u32` id: shared by every client the reader counts, so that a
/// client's counters are keyed by ids (no boxed keys to compare) and the table of
/// values, touched by every request, stays in cache. With ~2,000 reported clients
/// interleaved, counters keyed by boxed values took a cold hash probe and a `memcmp` on
/// cold memory per counter per request.
#[derive(Debug, Clone, Default)]
pub struct Values {
    set: IndexSet<Box<[u8]>, FxBuildHasher>,
    /// Values held past which [`Self::should_compact`] (0: [`KEEP_VALUES`]).
    bound: usize,
}

impl Values {
    /// With another bound than [`KEEP_VALUES`] on the values kept (tests use a small one).
    pub fn with_bound(bound: usize) -> Values {
        Values {
            set: IndexSet::default(),
            bound,
        }
    }

    /// The id of `value`, interned if new.
    #[inline]
    pub fn id(&mut self, value: &[u8]) -> u32 {
        let i = match self.set.get_index_of(value) {
            Some(i) => i,
            None => self.set.insert_full(value.into()).0,
        };
        // A reader never holds 4 G distinct values (compacted past KEEP_VALUES).
        i as u32
    }

    /// The value of `id`.
    pub fn get(&self, id: u32) -> &[u8] {
        &self.set[id as usize]
    }

    pub fn len(&self) -> usize {
        self.set.len()
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// Whether the values no counter holds any more should be dropped (see
    /// [`Self::compact_with`]).
    #[inline]
    pub fn should_compact(&self) -> bool {
        let bound = if self.bound == 0 {
            KEEP_VALUES
        } else {
            self.bound
        };
        self.set.len() > bound
    }

    /// Keeps only the values `mark` marks live (it is handed a slice of one flag per
    /// id), and returns, per old id, its new id, for the counters to be remapped; the
    /// next compaction waits until the values have doubled (at least their bound).
    pub fn compact_with(&mut self, mark: impl FnOnce(&mut [bool])) -> Vec<u32> {
        let mut live = vec![false; self.set.len()];
        mark(&mut live);
        let old = std::mem::take(&mut self.set);
        let mut map = vec![GONE; old.len()];
        for ((v, keep), new) in old.into_iter().zip(live).zip(map.iter_mut()) {
            if keep {
                *new = self.set.insert_full(v).0 as u32;
            }
        }
        let base = if self.bound == 0 {
            KEEP_VALUES
        } else {
            self.bound
        };
        self.bound = base.max(2 * self.set.len());
        map
    }

    /// [`Self::compact_with`] if [`Self::should_compact`], marking with and remapping
    /// `counters`, every counter that counts by these ids.
    pub fn compact_if_due<'c, C: ById + 'c>(&mut self, counters: impl Iterator<Item = &'c mut C>) {
        if !self.should_compact() {
            return;
        }
        let mut counters: Vec<&mut C> = counters.collect();
        let map = self.compact_with(|live| counters.iter().for_each(|c| c.mark(live)));
        counters.iter_mut().for_each(|c| c.remap(&map));
    }

    /// Interns every value of `other`; returns, per id of `other`, its id here.
    pub fn absorb(&mut self, other: Values) -> Vec<u32> {
        other
            .set
            .into_iter()
            .map(|v| self.set.insert_full(v).0 as u32)
            .collect()
    }

    /// [`Self::absorb`] of the values of `other` that `mark` marks (it is handed a
    /// slice of one flag per id of `other`), which stay where they are; the others map
    /// to no id.
    pub fn absorb_marked(&mut self, other: &Values, mark: impl FnOnce(&mut [bool])) -> Vec<u32> {
        let mut wanted = vec![false; other.len()];
        mark(&mut wanted);
        other
            .set
            .iter()
            .zip(wanted)
            .map(|(v, wanted)| if wanted { self.id(v) } else { GONE })
            .collect()
    }
}

/// A counter of values by their ids in a [`Values`]: what compacting the values needs
/// of it (see [`Values::compact_if_due`]).
pub trait ById {
    /// Marks the ids it holds in `live` (see [`Values::compact_with`]).
    fn mark(&self, live: &mut [bool]);
    /// Turns its ids into others (`map`: per old id, the new one).
    fn remap(&mut self, map: &[u32]);
}

/// Requests per distinct value (by its id in a [`Values`] the caller keeps), bounded by
/// [`MAX_DISTINCT`].
#[derive(Debug, Clone, Default)]
pub struct Tally {
    counts: FxHashMap<u32, u64>,
    /// Some values were dropped (see the module comment).
    pruned: bool,
    /// The value counted last (in `counts`), and its requests since, not yet added
    /// there: a client mostly repeats its user agent, and a scraper its path, so that a
    /// request costs a comparison with a value in cache rather than interning it and
    /// probing the client's table (see [`Self::add_value`]).
    last: Option<u32>,
    pending: u64,
}

impl Tally {
    /// Counts `n` requests of `value`, interned in `values` unless it is the value
    /// counted last.
    #[inline]
    pub fn add_value(&mut self, value: &[u8], n: u64, values: &mut Values) {
        self.add_value_capped(value, n, values, MAX_DISTINCT)
    }

    #[inline]
    fn add_value_capped(&mut self, value: &[u8], n: u64, values: &mut Values, cap: usize) {
        match self.last {
            Some(last) if values.get(last) == value => self.pending += n,
            _ => {
                let id = values.id(value);
                self.add_capped(id, n, values, cap);
            }
        }
    }

    /// Counts `n` requests of value `id`.
    #[inline]
    pub fn add(&mut self, id: u32, n: u64, values: &Values) {
        self.add_capped(id, n, values, MAX_DISTINCT)
    }

    #[inline]
    fn add_capped(&mut self, id: u32, n: u64, values: &Values, cap: usize) {
        if self.last == Some(id) {
            self.pending += n;
            return;
        }
        self.flush();
        self.last = Some(id);
        if let Some(c) = self.counts.get_mut(&id) {
            *c += n;
            return;
        }
        if self.counts.len() >= cap {
            self.prune(values, cap);
        }
        self.counts.insert(id, n);
    }

    /// Adds the requests pending for the last value to its count.
    fn flush(&mut self) {
        if let Some(last) = self.last {
            if let Some(c) = self.counts.get_mut(&last) {
                *c += std::mem::take(&mut self.pending);
            }
        }
    }

    /// Adds `other`, whose ids `map` turns into ids of `values`.
    pub fn merge(&mut self, other: Tally, map: &[u32], values: &Values) {
        self.merge_capped(other, map, values, MAX_DISTINCT)
    }

    fn merge_capped(&mut self, mut other: Tally, map: &[u32], values: &Values, cap: usize) {
        self.flush();
        other.flush();
        self.last = None;
        self.pruned |= other.pruned;
        self.counts.reserve(other.counts.len());
        for (id, n) in other.counts {
            *self.counts.entry(map[id as usize]).or_default() += n;
        }
        if self.counts.len() > cap {
            self.prune(values, cap);
        }
    }

    /// Keeps the larger half: most requests first, ties by value (so the outcome does
    /// not depend on the hash map's order, nor on the ids). Pending requests are
    /// counted (flushed) before.
    fn prune(&mut self, values: &Values, cap: usize) {
        let mut all: Vec<(u32, u64)> = self.counts.drain().collect();
        let keep = cap / 2;
        if all.len() > keep {
            all.select_nth_unstable_by(keep, |a, b| {
                b.1.cmp(&a.1)
                    .then_with(|| values.get(a.0).cmp(values.get(b.0)))
            });
            all.truncate(keep);
        }
        self.counts.extend(all);
        self.pruned = true;
    }

    /// Each value's id and requests.
    fn iter(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
        self.counts.iter().map(|(&id, &n)| {
            let pending = if self.last == Some(id) {
                self.pending
            } else {
                0
            };
            (id, n + pending)
        })
    }

    /// The [`TOP`] values with most requests (ties by value), as written.
    pub fn top(&self, values: &Values) -> Vec<(String, u64)> {
        let mut v: Vec<(&[u8], u64)> = self.iter().map(|(id, n)| (values.get(id), n)).collect();
        let order = |a: &(&[u8], u64), b: &(&[u8], u64)| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0));
        if v.len() > TOP {
            v.select_nth_unstable_by(TOP - 1, order);
            v.truncate(TOP);
        }
        v.sort_unstable_by(order);
        v.into_iter().map(|(k, n)| (display_key(k), n)).collect()
    }

    pub fn is_exact(&self) -> bool {
        !self.pruned
    }

    /// Distinct values counted.
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }
}

/// For a [`ById`] counter keyed by id in a map: marks its ids in `live`.
pub fn mark_ids(counts: &FxHashMap<u32, u64>, live: &mut [bool]) {
    for &id in counts.keys() {
        live[id as usize] = true;
    }
}

/// For a [`ById`] counter keyed by id in a map: `counts` with its ids turned into
/// others (`map`: per old id, the new one).
pub fn remap_ids(counts: &mut FxHashMap<u32, u64>, map: &[u32]) {
    *counts = std::mem::take(counts)
        .into_iter()
        .map(|(id, n)| (map[id as usize], n))
        .collect();
}

impl ById for Tally {
    fn mark(&self, live: &mut [bool]) {
        mark_ids(&self.counts, live);
    }

    fn remap(&mut self, map: &[u32]) {
        self.flush();
        self.last = None;
        remap_ids(&mut self.counts, map);
    }
}

/// The values [`TopCounts`] count by id: path templates and user agents apart, so that
/// the user agents (few, and shared by many clients) stay in cache beside the many
/// distinct paths (a media file each, on the bench set). One table of both (and of
/// spellings) cost about as much as the per-client boxed keys it replaced: most
/// lookups missed the cache three times over (its index, its entry, the value).
#[derive(Debug, Clone, Default)]
pub struct TopValues {
    pub paths: Values,
    pub agents: Values,
}

/// Per id of another [`TopValues`], its id in one (see [`TopValues::absorb`]).
#[derive(Debug, Clone, Default)]
pub struct TopMap {
    pub paths: Vec<u32>,
    pub agents: Vec<u32>,
}

impl TopValues {
    /// Interns every value of `other`: see [`Values::absorb`].
    pub fn absorb(&mut self, other: TopValues) -> TopMap {
        TopMap {
            paths: self.paths.absorb(other.paths),
            agents: self.agents.absorb(other.agents),
        }
    }
}

/// Paths and user agents of one client's requests, as they are read, by their ids in a
/// [`TopValues`] shared with other clients.
#[derive(Debug, Clone, Default)]
pub struct TopCounts {
    pub paths: Tally,
    pub agents: Tally,
}

impl TopCounts {
    /// Counts one request with request target `target` and user agent `agent`;
    /// `scratch` is a buffer for the path template (see [`path_template_into`]).
    #[inline]
    pub fn add(
        &mut self,
        values: &mut TopValues,
        target: Option<&[u8]>,
        agent: Option<&[u8]>,
        scratch: &mut Vec<u8>,
    ) {
        let path: &[u8] = match target {
            Some(t) => {
                path_template_into(t, scratch);
                scratch
            }
            None => b"(no request line)",
        };
        self.paths.add_value(path, 1, &mut values.paths);
        self.agents
            .add_value(agent.unwrap_or(b"-"), 1, &mut values.agents);
    }

    /// Adds `other`, whose ids `map` turns into ids of `values`.
    pub fn merge(&mut self, other: TopCounts, map: &TopMap, values: &TopValues) {
        self.paths.merge(other.paths, &map.paths, &values.paths);
        self.agents.merge(other.agents, &map.agents, &values.agents);
    }

    pub fn is_exact(&self) -> bool {
        self.paths.is_exact() && self.agents.is_exact()
    }

    pub fn lists(&self, values: &TopValues) -> TopLists {
        TopLists {
            paths: self
                .paths
                .top(&values.paths)
                .into_iter()
                .map(|(path, requests)| TopPath { path, requests })
                .collect(),
            user_agents: self
                .agents
                .top(&values.agents)
                .into_iter()
                .map(|(user_agent, requests)| TopUserAgent {
                    user_agent,
                    requests,
                })
                .collect(),
            exact: self.is_exact(),
        }
    }
}

/// The top paths and user agents of one client, with values of their own (for a
/// reader that counts a single client: `explain`).
#[derive(Debug, Clone, Default)]
pub struct Tops {
    values: TopValues,
    counts: TopCounts,
    scratch: Vec<u8>,
}

impl Tops {
    /// Counts one request with request target `target` and user agent `agent`.
    pub fn add(&mut self, target: Option<&[u8]>, agent: Option<&[u8]>) {
        self.counts
            .add(&mut self.values, target, agent, &mut self.scratch);
        let (values, counts) = (&mut self.values, &mut self.counts);
        values
            .paths
            .compact_if_due(std::iter::once(&mut counts.paths));
        values
            .agents
            .compact_if_due(std::iter::once(&mut counts.agents));
    }

    pub fn merge(&mut self, other: Tops) {
        let map = self.values.absorb(other.values);
        self.counts.merge(other.counts, &map, &self.values);
    }

    pub fn lists(&self) -> TopLists {
        self.counts.lists(&self.values)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopPath {
    /// The path template (digits as `{n}`), as written (`\xHH` for non-UTF-8 bytes).
    pub path: String,
    pub requests: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopUserAgent {
    pub user_agent: String,
    pub requests: u64,
}

/// The finished lists of one client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopLists {
    pub paths: Vec<TopPath>,
    pub user_agents: Vec<TopUserAgent>,
    /// False when values were dropped to bound memory (the counts may be low).
    pub exact: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() {
        assert_eq!(
            path_template(b"/api/v2/post/12345?x=9"),
            b"/api/v{n}/post/{n}"
        );
        assert_eq!(path_template(b"https://example.com/p/7?x"), b"/p/{n}");
    }

    #[test]
    fn counts_are_exact_until_the_cap() {
        let mut values = Values::default();
        let mut a = Tally::default();
        for i in 0..MAX_DISTINCT as u64 {
            a.add_value(
                format!("v{i}").as_bytes(),
                1 + (i == 7) as u64 * 5,
                &mut values,
            );
        }
        assert!(a.is_exact());
        let mut theirs = Values::default();
        let mut b = Tally::default();
        b.add(theirs.id(b"w"), 1, &theirs);
        b.add(theirs.id(b"v7"), 4, &theirs);
        let map = values.absorb(theirs);
        a.merge(b, &map, &values);
        // One value too many: the rarer half goes, the most frequent keep their counts.
        assert!(!a.is_exact());
        assert_eq!(a.len(), MAX_DISTINCT / 2);
        assert_eq!(a.top(&values)[0], ("v7".to_string(), 10));
    }

    /// What a [`Tally`] counts, as a plain map of values (the semantics it must keep).
    #[derive(Default)]
    struct Plain {
        counts: std::collections::HashMap<Vec<u8>, u64>,
        pruned: bool,
    }

    impl Plain {
        fn add(&mut self, v: &[u8], n: u64, cap: usize) {
            if let Some(c) = self.counts.get_mut(v) {
                *c += n;
                return;
            }
            if self.counts.len() >= cap {
                self.prune(cap);
            }
            self.counts.insert(v.to_vec(), n);
        }
        fn merge(&mut self, other: Plain, cap: usize) {
            self.pruned |= other.pruned;
            for (v, n) in other.counts {
                *self.counts.entry(v).or_default() += n;
            }
            if self.counts.len() > cap {
                self.prune(cap);
            }
        }
        fn prune(&mut self, cap: usize) {
            let mut all = self.sorted();
            all.truncate(cap / 2);
            self.counts = all.into_iter().collect();
            self.pruned = true;
        }
        fn sorted(&self) -> Vec<(Vec<u8>, u64)> {
            let mut all: Vec<(Vec<u8>, u64)> =
                self.counts.iter().map(|(v, n)| (v.clone(), *n)).collect();
            all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            all
        }
    }

    /// A tally's counts as values, most first (ties by value).
    fn sorted(t: &Tally, values: &Values) -> Vec<(Vec<u8>, u64)> {
        let mut all: Vec<(Vec<u8>, u64)> = t
            .iter()
            .map(|(id, n)| (values.get(id).to_vec(), n))
            .collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        all
    }

    /// Counts `adds` into a tally with values of its own that are compacted whenever
    /// they pass `bound`, as a reader does.
    fn count(adds: &[(u8, u64)], cap: usize, bound: usize) -> (Tally, Values, Plain) {
        let mut values = Values::with_bound(bound);
        let (mut t, mut plain) = (Tally::default(), Plain::default());
        for &(v, n) in adds {
            let v = format!("/p/{v}");
            t.add_value_capped(v.as_bytes(), n, &mut values, cap);
            plain.add(v.as_bytes(), n, cap);
            if values.should_compact() {
                let map = values.compact_with(|live| t.mark(live));
                t.remap(&map);
            }
        }
        (t, values, plain)
    }

    proptest::proptest! {
        /// Counted by ids (pruned past a small cap, values compacted past a small bound,
        /// merged across two readers' values), a tally keeps what a plain map of values
        /// would: the same counts, the same values dropped, the same top list.
        #[test]
        fn ids_count_as_values_do(
            a in proptest::collection::vec((0u8..24, 1u64..4), 0..200),
            b in proptest::collection::vec((0u8..24, 1u64..4), 0..200),
            cap in 2usize..20,
            bound in 1usize..16,
        ) {
            let (mut ta, mut va, mut pa) = count(&a, cap, bound);
            let (tb, vb, pb) = count(&b, cap, bound);
            proptest::prop_assert_eq!(sorted(&tb, &vb), pb.sorted());
            proptest::prop_assert_eq!(tb.is_exact(), !pb.pruned);
            let map = va.absorb(vb);
            ta.merge_capped(tb, &map, &va, cap);
            pa.merge(pb, cap);
            proptest::prop_assert_eq!(sorted(&ta, &va), pa.sorted());
            proptest::prop_assert_eq!(ta.is_exact(), !pa.pruned);
            let top: Vec<(String, u64)> = pa
                .sorted()
                .into_iter()
                .take(TOP)
                .map(|(v, n)| (display_key(&v), n))
                .collect();
            proptest::prop_assert_eq!(ta.top(&va), top);
        }
    }

    #[test]
    fn compaction_keeps_only_live_values() {
        let mut values = Values::with_bound(2);
        let ids: Vec<u32> = [b"a", b"b", b"c", b"d"]
            .iter()
            .map(|v| values.id(*v))
            .collect();
        assert!(values.should_compact());
        let map = values.compact_with(|live| {
            live[ids[1] as usize] = true;
            live[ids[3] as usize] = true;
        });
        assert_eq!(values.len(), 2);
        assert_eq!(values.get(map[ids[1] as usize]), b"b");
        assert_eq!(values.get(map[ids[3] as usize]), b"d");
        assert_eq!(map[ids[0] as usize], GONE);
        // The next compaction waits for twice the live values (at least the bound).
        assert!(!values.should_compact());
        values.id(b"e");
        values.id(b"f");
        assert!(!values.should_compact());
        values.id(b"g");
        assert!(values.should_compact());
    }
}
