//! Evidence: the first and last request of every billed window, as raw log lines with
//! their file and line number, so a reader can find them with `grep`.
//!
//! The first pass keeps no lines. The second read ([`crate::input::second_read`]) reads again the
//! files whose time range meets a reported client's, and keeps only the lines of those
//! clients at the first and last instants of their windows. Of several requests at the
//! same instant, the first is the one first in (path, line) order and the last the one
//! last in it.

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

/// Keeps the request at `time` (of client `client`) when it is at the edge of one of
/// `edges`.
pub fn look(edges: &Edges, client: usize, time: Micros, at: &At<'_>, found: &mut Vec<Found>) {
    for &(window, first, last) in edges {
        for (is_first, t) in [(true, first), (false, last)] {
            if time == t {
                found.push(Found {
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

/// Stores the candidates found in every file into `analysis`: in (file, line) order,
/// the first candidate is the first request and the last one the last.
pub fn place(mut found: Vec<Found>, analysis: &mut Analysis) {
    found.sort_by_key(|f| (f.client, f.window, f.file, f.evidence.line));
    for f in found {
        let slot = &mut analysis.clients[f.client].windows[f.window].evidence;
        if f.is_first {
            slot.first.get_or_insert(f.evidence);
        } else {
            slot.last = Some(f.evidence);
        }
    }
}
