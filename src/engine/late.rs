//! Late requests (nightly state): older than the previous run's watermark, so they
//! can no longer change a final window and are never merged, but they are counted,
//! per client and per file, so that they are never quiet.

use crate::engine::time::Micros;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Late requests counted together: how many, their posts, and the oldest and newest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Late {
    pub requests: u64,
    pub posts: u64,
    /// The oldest late request (meaningless while `requests` is 0).
    pub earliest: Micros,
    /// The newest late request (meaningless while `requests` is 0).
    pub latest: Micros,
}

impl Late {
    /// Counts one late request at `t` of `posts` posts.
    pub fn add(&mut self, t: Micros, posts: u64) {
        self.merge(&Late {
            requests: 1,
            posts,
            earliest: t,
            latest: t,
        });
    }

    /// Adds `other`'s counts to these.
    pub fn merge(&mut self, other: &Late) {
        if other.requests == 0 {
            return;
        }
        if self.requests == 0 {
            *self = *other;
            return;
        }
        self.requests += other.requests;
        self.posts += other.posts;
        self.earliest = self.earliest.min(other.earliest);
        self.latest = self.latest.max(other.latest);
    }

    /// How far before `watermark` the oldest request was (0 when none was late).
    pub fn behind(&self, watermark: Micros) -> Micros {
        if self.requests == 0 {
            0
        } else {
            watermark.saturating_sub(self.earliest).max(0)
        }
    }
}

/// Late requests per client key, in key order.
pub type LateByClient = BTreeMap<Box<[u8]>, Late>;

/// Adds every count of `from` into `into`.
pub fn merge_by_client(into: &mut LateByClient, from: LateByClient) {
    for (k, l) in from {
        into.entry(k).or_default().merge(&l);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_and_keep_the_range() {
        let mut a = Late::default();
        a.add(50, 2);
        a.add(20, 1);
        let mut b = Late::default();
        b.add(70, 0);
        a.merge(&b);
        a.merge(&Late::default());
        assert_eq!(
            a,
            Late {
                requests: 3,
                posts: 3,
                earliest: 20,
                latest: 70
            }
        );
        assert_eq!(a.behind(100), 80);
        assert_eq!(Late::default().behind(100), 0);
        let mut by = LateByClient::new();
        merge_by_client(&mut by, [(b"c".to_vec().into(), a)].into());
        merge_by_client(&mut by, [(b"c".to_vec().into(), b)].into());
        assert_eq!(by[&b"c"[..]].requests, 4);
    }
}
