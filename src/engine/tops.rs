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
use rustc_hash::FxHashMap;
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

/// Requests per distinct value, bounded by [`MAX_DISTINCT`].
#[derive(Debug, Clone, Default)]
pub struct Tally {
    counts: FxHashMap<Box<[u8]>, u64>,
    /// Some values were dropped (see the module comment).
    pruned: bool,
}

impl Tally {
    pub fn add(&mut self, value: &[u8], n: u64) {
        if let Some(c) = self.counts.get_mut(value) {
            *c += n;
            return;
        }
        if self.counts.len() >= MAX_DISTINCT {
            self.prune();
        }
        self.counts.insert(value.into(), n);
    }

    pub fn merge(&mut self, other: Tally) {
        self.pruned |= other.pruned;
        for (k, n) in other.counts {
            *self.counts.entry(k).or_default() += n;
        }
        if self.counts.len() > MAX_DISTINCT {
            self.prune();
        }
    }

    /// Keeps the larger half: most requests first, ties by value (so the outcome does
    /// not depend on the hash map's order).
    fn prune(&mut self) {
        let mut all: Vec<(Box<[u8]>, u64)> = self.counts.drain().collect();
        let keep = MAX_DISTINCT / 2;
        if all.len() > keep {
            all.select_nth_unstable_by(keep, |a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            all.truncate(keep);
        }
        self.counts.extend(all);
        self.pruned = true;
    }

    /// The [`TOP`] values with most requests (ties by value), as written.
    pub fn top(&self) -> Vec<(String, u64)> {
        let mut v: Vec<(&Box<[u8]>, &u64)> = self.counts.iter().collect();
        v.sort_unstable_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        v.into_iter()
            .take(TOP)
            .map(|(k, n)| (display_key(k), *n))
            .collect()
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

/// Paths and user agents of one client's requests, as they are read.
#[derive(Debug, Clone, Default)]
pub struct Tops {
    pub paths: Tally,
    pub agents: Tally,
}

impl Tops {
    /// Counts one request with request target `target` and user agent `agent`.
    pub fn add(&mut self, target: Option<&[u8]>, agent: Option<&[u8]>) {
        self.add_with(target, agent, &mut Vec::new());
    }

    /// [`Self::add`] with a scratch buffer for the path template (see
    /// [`path_template_into`]).
    pub fn add_with(&mut self, target: Option<&[u8]>, agent: Option<&[u8]>, scratch: &mut Vec<u8>) {
        match target {
            Some(t) => {
                path_template_into(t, scratch);
                self.paths.add(scratch, 1)
            }
            None => self.paths.add(b"(no request line)", 1),
        }
        self.agents.add(agent.unwrap_or(b"-"), 1);
    }

    pub fn merge(&mut self, other: Tops) {
        self.paths.merge(other.paths);
        self.agents.merge(other.agents);
    }

    pub fn lists(&self) -> TopLists {
        TopLists {
            paths: self
                .paths
                .top()
                .into_iter()
                .map(|(path, requests)| TopPath { path, requests })
                .collect(),
            user_agents: self
                .agents
                .top()
                .into_iter()
                .map(|(user_agent, requests)| TopUserAgent {
                    user_agent,
                    requests,
                })
                .collect(),
            exact: self.paths.is_exact() && self.agents.is_exact(),
        }
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
        let mut a = Tally::default();
        for i in 0..MAX_DISTINCT as u64 {
            a.add(format!("v{i}").as_bytes(), 1 + (i == 7) as u64 * 5);
        }
        assert!(a.is_exact());
        let mut b = Tally::default();
        b.add(b"v7", 4);
        b.add(b"w", 1);
        a.merge(b);
        // One value too many: the rarer half goes, the most frequent keep their counts.
        assert!(!a.is_exact());
        assert_eq!(a.counts.len(), MAX_DISTINCT / 2);
        assert_eq!(a.top()[0], ("v7".to_string(), 10));
    }
}
