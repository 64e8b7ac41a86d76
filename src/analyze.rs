//! Analysis: the merged aggregate → per-client windows, damages and population statistics.

use crate::aggregate::{Aggregate, Bucket};
use crate::client::{display_key, guard_formula};
use crate::config::Config;
use crate::damages::{window_damages, Cents};
use crate::time::Micros;
use crate::window::{self, Span};
use hdrhistogram::Histogram;
use rayon::prelude::*;

/// One billed window of one client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BilledWindow {
    /// 1, 2, … per client.
    pub index: usize,
    pub start: Micros,
    pub end: Micros,
    pub posts: u64,
    pub requests: u64,
    pub damages: Cents,
    /// Time of the last request in the window (the first is at `start`).
    pub last_request: Micros,
    /// The raw log lines of the first and last request, when found.
    pub evidence: crate::evidence::WindowEvidence,
    /// `final` once the window's end is at or before the watermark (always without state).
    pub status: WindowStatus,
    /// False for a window billed final by an earlier run (nightly state).
    pub new_in_this_run: bool,
}

/// Whether later data can still change a billed window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WindowStatus {
    /// Its end is at or before the watermark: no later run changes it.
    Final,
    /// Its end is after the watermark: a later run derives it again.
    Provisional,
}

impl WindowStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Final => "final",
            Self::Provisional => "provisional",
        }
    }
}

/// Everything computed for one client.
#[derive(Debug, Clone)]
pub struct ClientResult {
    pub key: Box<[u8]>,
    /// The key as written in JSON and on the terminal (`\xHH` for non-UTF-8 bytes).
    pub name: String,
    /// The key as written in CSV (formula-guarded where it comes from log text).
    pub cell: String,
    pub windows: Vec<BilledWindow>,
    pub peak: Option<Span>,
    pub total_posts: u64,
    pub total_requests: u64,
    pub first_request: Micros,
    pub last_request: Micros,
    pub exempt: bool,
    /// The client's buckets, kept only for flagged and exempt clients (for the charts
    /// and rate profile of report.html); empty for everyone else.
    pub buckets: Vec<Bucket>,
    /// With an organisations file, for an organisation: its top member keys by posts
    /// ([`crate::members`]); `None` otherwise.
    pub members: Option<Vec<crate::members::Member>>,
    /// Top paths and user agents of the client's requests ([`crate::tops`]), from the
    /// second read; `None` without it (`--no-evidence`, `reduce`).
    pub tops: Option<crate::tops::TopLists>,
}

impl ClientResult {
    pub fn damages(&self) -> Cents {
        self.windows.iter().map(|w| w.damages).sum()
    }
    pub fn billed_posts(&self) -> u64 {
        self.windows.iter().map(|w| w.posts).sum()
    }
    pub fn billed_requests(&self) -> u64 {
        self.windows.iter().map(|w| w.requests).sum()
    }
}

/// Every client with a request, in numbers.
#[derive(Debug, Clone)]
pub struct Population {
    pub clients: u64,
    /// Distinct (client, instant) pairs held in memory: what the aggregate's size grows with.
    pub buckets: u64,
    pub clients_with_posts: u64,
    /// Peak rolling-window posts of every client (0 for a client without posts).
    pub peak_posts: Histogram<u64>,
    /// Exact counts of clients per decade of peak posts: `[0,1)`, `[1,10)`, `[10,100)`, …
    pub decades: Vec<(u64, u64, u64)>,
}

#[derive(Debug, Clone)]
pub struct Analysis {
    /// Flagged and exempt clients, sorted by their written key.
    pub clients: Vec<ClientResult>,
    pub population: Population,
    /// What the nightly state carried in and out (`--state`), else `None`.
    pub nightly: Option<crate::state::Nightly>,
}

impl Analysis {
    pub fn total_damages(&self) -> Cents {
        self.clients
            .iter()
            .filter(|c| !c.exempt)
            .map(|c| c.damages())
            .sum()
    }
    /// Billed windows: an exempt client's windows are not billed.
    pub fn total_windows(&self) -> usize {
        self.clients
            .iter()
            .filter(|c| !c.exempt)
            .map(|c| c.windows.len())
            .sum()
    }
}

pub fn analyze_client(cfg: &Config, key: Box<[u8]>, buckets: &[Bucket]) -> ClientResult {
    let orgs = cfg.keyer.orgs.as_deref();
    let org = orgs.and_then(|o| o.by_name(&key));
    // An exempt organisation's windows are computed and shown, never billed.
    let exempt = org.is_some_and(|id| orgs.is_some_and(|o| o.is_exempt(id)));
    let windows = window::billed(buckets, cfg.window, cfg.threshold, cfg.mode)
        .into_iter()
        .enumerate()
        .map(|(i, s)| BilledWindow {
            index: i + 1,
            start: s.start,
            end: s.start.saturating_add(cfg.window),
            posts: s.posts,
            requests: s.requests,
            damages: if exempt {
                Cents(0)
            } else {
                window_damages(s.posts, cfg.rate, cfg.per, cfg.rounding)
            },
            last_request: last_before(buckets, s.start.saturating_add(cfg.window)),
            evidence: Default::default(),
            status: WindowStatus::Final,
            new_in_this_run: true,
        })
        .collect();
    let name = display_key(&key);
    // Organisation names are written as they are; other keys from log text are guarded.
    let cell = if cfg.client.is_free_text() && org.is_none() {
        guard_formula(&name)
    } else {
        name.clone()
    };
    let mut result = ClientResult {
        name,
        cell,
        key,
        windows,
        peak: window::peak(buckets, cfg.window),
        total_posts: buckets.iter().map(|b| b.posts).sum(),
        total_requests: buckets.iter().map(|b| b.requests).sum(),
        first_request: buckets.first().map_or(0, |b| b.t),
        last_request: buckets.last().map_or(0, |b| b.t),
        exempt,
        buckets: Vec::new(),
        members: None,
        tops: None,
    };
    if !result.windows.is_empty() || result.exempt {
        result.buckets = buckets.to_vec();
    }
    result
}

pub fn analyze(cfg: &Config, aggregate: Aggregate) -> Analysis {
    // Each client's buckets are built, used and dropped in turn.
    let (all, counts): (Vec<ClientResult>, Vec<u64>) = aggregate
        .into_sorted_series()
        .into_par_iter()
        .map(|(key, series)| {
            let buckets = series.into_buckets();
            (analyze_client(cfg, key, &buckets), buckets.len() as u64)
        })
        .unzip();
    assemble(all, counts.iter().sum())
}

/// Every client's result → the population statistics and the flagged and exempt
/// clients, sorted. `buckets` is the number of (client, instant) pairs held.
pub fn assemble(all: Vec<ClientResult>, buckets: u64) -> Analysis {
    let mut peak_posts = Histogram::<u64>::new(3).expect("3 significant figures is valid");
    let mut decades: Vec<(u64, u64, u64)> = Vec::new();
    let mut with_posts = 0;
    for c in &all {
        let p = c.peak.map_or(0, |s| s.posts);
        // `record` grows the histogram; `saturating_record` would clamp to its top.
        if peak_posts.record(p).is_err() {
            peak_posts.saturating_record(p);
        }
        with_posts += (p > 0) as u64;
        let (lo, hi) = decade(p);
        match decades.iter_mut().find(|d| d.0 == lo) {
            Some(d) => d.2 += 1,
            None => decades.push((lo, hi, 1)),
        }
    }
    decades.sort();
    let mut clients: Vec<ClientResult> = all
        .into_iter()
        .filter(|c| !c.windows.is_empty() || c.exempt)
        .collect();
    // Rows are ordered by the bytes of the written client.
    clients.sort_by(|a, b| a.cell.cmp(&b.cell).then_with(|| a.key.cmp(&b.key)));
    Analysis {
        population: Population {
            clients: peak_posts.len(),
            buckets,
            clients_with_posts: with_posts,
            peak_posts,
            decades,
        },
        clients,
        nightly: None,
    }
}

/// Time of the last bucket before `end` (buckets are sorted).
pub fn last_before(buckets: &[Bucket], end: Micros) -> Micros {
    let j = buckets.partition_point(|b| b.t < end);
    buckets[j.saturating_sub(1)].t
}

/// `[0,1)` for 0, else the power-of-ten range holding `p`.
fn decade(p: u64) -> (u64, u64) {
    if p == 0 {
        return (0, 1);
    }
    let mut lo = 1u64;
    while lo <= p / 10 {
        lo *= 10;
    }
    (lo, lo.saturating_mul(10))
}

#[cfg(test)]
mod tests {
    use super::decade;

    #[test]
    fn decades() {
        assert_eq!(decade(0), (0, 1));
        assert_eq!(decade(1), (1, 10));
        assert_eq!(decade(9), (1, 10));
        assert_eq!(decade(10), (10, 100));
        assert_eq!(decade(1_000_001), (1_000_000, 10_000_000));
    }
}
