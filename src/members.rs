//! Members of an organisation: with an organisations file, the own client keys
//! (before the mapping) that contributed most posts to each flagged or exempt
//! organisation.
//!
//! The first pass keys requests by organisation only. This second pass runs only
//! when `--orgs` is given and some organisation is in the results; it reads the files
//! again (in parallel, like the evidence pass), keeps the requests of those
//! organisations, and counts posts per own key. Standard input cannot be read again,
//! so its requests are not in the counts.

use crate::analyze::Analysis;
use crate::client::{display_key, Keyed};
use crate::config::Config;
use crate::discover::Source;
use crate::format::Request;
use crate::scan::{read_input, OnRequest, ScanOutput};
use rayon::prelude::*;
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

/// Per organisation (index into `analysis.clients`): posts per own key.
type Counts = FxHashMap<usize, FxHashMap<Box<[u8]>, u64>>;

struct Counter<'a> {
    cfg: &'a Config,
    /// Organisation name (the client key) → index into `analysis.clients`.
    orgs: &'a FxHashMap<Box<[u8]>, usize>,
    own: Vec<u8>,
    counts: Counts,
}

impl OnRequest for Counter<'_> {
    fn request(&mut self, _: u64, req: &Request<'_>, key: &[u8], _: &[u8]) -> u64 {
        let Some(&client) = self.orgs.get(key) else {
            return 0;
        };
        let posts = self.cfg.weigher.weight(req);
        if posts == 0 {
            return 0;
        }
        if self.cfg.keyer.own_key_into(req, &mut self.own) == Keyed::Client {
            *self
                .counts
                .entry(client)
                .or_default()
                .entry(self.own.as_slice().into())
                .or_default() += posts;
        }
        posts
    }
}

/// Fills `members` of every organisation in `analysis` (top [`TOP_MEMBERS`] by posts,
/// ties by key). Does nothing without an organisations file.
pub fn attach(cfg: &Config, scan: &ScanOutput, analysis: &mut Analysis) {
    let Some(orgs) = &cfg.keyer.orgs else {
        return;
    };
    let wanted: FxHashMap<Box<[u8]>, usize> = analysis
        .clients
        .iter()
        .enumerate()
        .filter(|(_, c)| orgs.by_name(&c.key).is_some())
        .map(|(i, c)| (c.key.clone(), i))
        .collect();
    if wanted.is_empty() {
        return;
    }
    let merged: Counts = scan
        .inputs
        .par_iter()
        .filter(|i| matches!(i.source, Source::Path(_)))
        .map(|input| {
            let mut counter = Counter {
                cfg,
                orgs: &wanted,
                own: Vec::new(),
                counts: Counts::default(),
            };
            read_input(cfg, input, &mut counter);
            counter.counts
        })
        .reduce(Counts::default, |mut a, b| {
            for (client, keys) in b {
                let into = a.entry(client).or_default();
                for (k, n) in keys {
                    *into.entry(k).or_default() += n;
                }
            }
            a
        });
    for &client in wanted.values() {
        analysis.clients[client].members = Some(Vec::new());
    }
    for (client, keys) in merged {
        let mut top: Vec<(Box<[u8]>, u64)> = keys.into_iter().collect();
        top.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        top.truncate(TOP_MEMBERS);
        analysis.clients[client].members = Some(
            top.into_iter()
                .map(|(k, posts)| Member {
                    key: display_key(&k),
                    posts,
                })
                .collect(),
        );
    }
}
