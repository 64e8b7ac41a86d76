//! Evidence: the first and last request of every billed window, as raw log lines with
//! their file and line number, so a reader can find them with `grep`.
//!
//! The first pass keeps no lines. The second read ([`crate::input::second_read`]) reads again the
//! files whose time range meets a reported client's, and keeps only the lines of those
//! clients at the first and last instants of their windows. Of several requests at the
//! same instant, the first is the one first in (path, line) order and the last the one
//! last in it. Only those two are held per window ([`Kept`]): memory does not grow with
//! the number of requests at one instant (a gzip of one line repeated 18 million times
//! once took 6 GB here).

use crate::engine::bill::Analysis;
use crate::engine::text::display_key;
use crate::engine::time::Micros;
use serde::Serialize;

/// How much of an evidence line is kept.
const EVIDENCE_BYTES: usize = 4096;

/// One raw log line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    pub file: String,
    pub line: u64,
    #[serde(serialize_with = "crate::engine::time::time")]
    pub time: Micros,
    /// The line as logged (non-UTF-8 bytes as `\xhh`; cut at 4 KiB).
    pub text: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WindowEvidence {
    pub first: Option<Evidence>,
    pub last: Option<Evidence>,
    /// Why a request is missing, when the reason is known (an input that cannot be
    /// read twice); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
}

/// The billed windows whose edges are looked for, of one client:
/// (window index, time of its first request, time of its last request).
pub type Edges = Vec<(usize, Micros, Micros)>;

/// The windows of every client in `analysis` whose evidence is wanted: those billed
/// in this run (a window billed final by an earlier run keeps the evidence it had then).
pub fn wanted(analysis: &Analysis) -> Vec<Edges> {
    analysis
        .clients
        .iter()
        .map(|c| {
            c.windows
                .iter()
                .enumerate()
                .filter(|(_, w)| w.new_in_this_run)
                .map(|(wi, w)| (wi, w.start, w.last_request))
                .collect()
        })
        .collect()
}

/// A candidate line: a request of a client at the first or last instant of one of its
/// windows.
pub struct Found {
    client: usize,
    window: usize,
    is_first: bool,
    /// The input's place in the sorted inputs.
    file: usize,
    evidence: Evidence,
}

/// Where a request of client `client` is read: the file's place in the sorted inputs
/// and its name, and the line.
pub struct At<'a> {
    pub file: usize,
    pub name: &'a str,
    pub line_no: u64,
    pub line: &'a [u8],
}

/// The candidates kept: per (client, window, edge) only the best so far, the first in
/// (file, line) order for a window's first request and the last for its last.
#[derive(Default)]
pub struct Kept {
    best: rustc_hash::FxHashMap<(usize, usize, bool), Found>,
}

impl Kept {
    /// Whether a line at (`file`, `line`) would beat what is kept for this edge.
    fn wants(&self, key: (usize, usize, bool), file: usize, line: u64) -> bool {
        match self.best.get(&key) {
            None => true,
            Some(k) if key.2 => (file, line) < (k.file, k.evidence.line),
            Some(k) => (file, line) > (k.file, k.evidence.line),
        }
    }

    fn offer(&mut self, f: Found) {
        let key = (f.client, f.window, f.is_first);
        if self.wants(key, f.file, f.evidence.line) {
            self.best.insert(key, f);
        }
    }

    /// Adds the candidates of another part (any order: the choice is by position).
    pub fn merge(&mut self, other: Kept) {
        for f in other.best.into_values() {
            self.offer(f);
        }
    }

    /// Candidates held (at most two per window).
    pub fn len(&self) -> usize {
        self.best.len()
    }

    pub fn is_empty(&self) -> bool {
        self.best.is_empty()
    }
}

/// Keeps the request at `time` (of client `client`) when it is at the edge of one of
/// `edges` and beats what is kept for that edge.
pub fn look(edges: &Edges, client: usize, time: Micros, at: &At<'_>, found: &mut Kept) {
    for &(window, first, last) in edges {
        for (is_first, t) in [(true, first), (false, last)] {
            if time == t && found.wants((client, window, is_first), at.file, at.line_no) {
                found.offer(Found {
                    client,
                    window,
                    is_first,
                    file: at.file,
                    evidence: Evidence {
                        file: at.name.to_string(),
                        line: at.line_no,
                        time,
                        text: display_key(&at.line[..at.line.len().min(EVIDENCE_BYTES)]),
                    },
                });
            }
        }
    }
}

/// Stores the first and last request of every window found into `analysis`.
pub fn place(found: Kept, analysis: &mut Analysis) {
    for f in found.best.into_values() {
        let slot = &mut analysis.clients[f.client].windows[f.window].evidence;
        if f.is_first {
            slot.first = Some(f.evidence);
        } else {
            slot.last = Some(f.evidence);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_first_and_one_last_per_window_whatever_the_lines() {
        let edges: Edges = vec![(0, 10, 20)];
        let mut kept = Kept::default();
        for (file, name) in [(1usize, "b.log"), (0, "a.log")] {
            let mut part = Kept::default();
            for line_no in 1..=100_000u64 {
                let t = if line_no % 2 == 0 { 10 } else { 20 };
                let at = At {
                    file,
                    name,
                    line_no,
                    line: b"x",
                };
                look(&edges, 0, t, &at, &mut part);
                assert!(part.len() <= 2);
            }
            kept.merge(part);
        }
        assert_eq!(kept.len(), 2);
        let first = &kept.best[&(0, 0, true)].evidence;
        let last = &kept.best[&(0, 0, false)].evidence;
        assert_eq!((first.file.as_str(), first.line), ("a.log", 2));
        assert_eq!((last.file.as_str(), last.line), ("b.log", 99_999));
    }
}
