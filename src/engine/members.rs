//! Members of an organisation: with an organisations file, the own client keys
//! (before the mapping) that contributed most posts to each flagged or exempt
//! organisation.
//!
//! The first pass keys requests by organisation only. With `--orgs`, the second read
//! ([`crate::input::second_read`]) keeps the requests of the organisations in the results and
//! counts posts per own key. Standard input cannot be read again, so its requests are
//! not in the counts; with `--no-evidence` there is no second read and no members.

use crate::engine::text::display_key;
use rustc_hash::FxHashMap;
use serde::Serialize;

/// How many members each organisation lists.
pub const TOP_MEMBERS: usize = 10;

/// One member key and the posts it contributed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    /// The own client key, as written (`\xHH` for non-UTF-8 bytes).
    pub key: String,
    pub posts: u64,
}

/// Posts per own key, of one organisation.
pub type Counts = FxHashMap<Box<[u8]>, u64>;

pub fn merge(into: &mut Counts, other: Counts) {
    for (k, n) in other {
        *into.entry(k).or_default() += n;
    }
}

/// The top [`TOP_MEMBERS`] keys by posts, ties by key.
pub fn top(counts: Counts) -> Vec<Member> {
    let mut top: Vec<(Box<[u8]>, u64)> = counts.into_iter().collect();
    top.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    top.truncate(TOP_MEMBERS);
    top.into_iter()
        .map(|(k, posts)| Member {
            key: display_key(&k),
            posts,
        })
        .collect()
}
