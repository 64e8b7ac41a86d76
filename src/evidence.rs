//! Evidence: the first and last request of every billed window, as raw log lines with
//! their file and line number, so a reader can find them with `grep`.
//!
//! The first pass keeps no lines. It does know each file's time range, so this second
//! pass reads only the files whose range covers the first or last instant of a billed
//! window, and keeps only the lines of those clients at those instants. Of several
//! requests at the same instant, the first is the one first in (path, line) order and
//! the last the one last in it.

use crate::analyze::Analysis;
use crate::client::display_key;
use crate::config::Config;
use crate::discover::Source;
use crate::format::Request;
use crate::scan::{read_input, OnRequest, ScanOutput};
use crate::time::Micros;
use rayon::prelude::*;
use rustc_hash::FxHashMap;
use serde::Serialize;

/// How much of an evidence line is kept.
const EVIDENCE_BYTES: usize = 4096;

/// One raw log line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    pub file: String,
    pub line: u64,
    #[serde(serialize_with = "crate::report::json::time")]
    pub time: Micros,
    /// The line as logged (non-UTF-8 bytes as `\xhh`; cut at 4 KiB).
    pub text: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WindowEvidence {
    pub first: Option<Evidence>,
    pub last: Option<Evidence>,
}

/// What to look for: per client key, (client index, window index, first, last).
type Targets = FxHashMap<Box<[u8]>, Vec<(usize, usize, Micros, Micros)>>;

struct Found {
    client: usize,
    window: usize,
    is_first: bool,
    file: usize,
    evidence: Evidence,
}

struct Finder<'a> {
    targets: &'a Targets,
    file: usize,
    name: &'a str,
    found: Vec<Found>,
}

impl OnRequest for Finder<'_> {
    fn request(&mut self, line_no: u64, req: &Request<'_>, key: &[u8], line: &[u8]) -> u64 {
        let Some(windows) = self.targets.get(key) else {
            return 0;
        };
        for &(client, window, first, last) in windows {
            for (is_first, t) in [(true, first), (false, last)] {
                if req.time == t {
                    self.found.push(Found {
                        client,
                        window,
                        is_first,
                        file: self.file,
                        evidence: Evidence {
                            file: self.name.to_string(),
                            line: line_no,
                            time: req.time,
                            text: display_key(&line[..line.len().min(EVIDENCE_BYTES)]),
                        },
                    });
                }
            }
        }
        0
    }
}

/// Finds the evidence lines of every billed window and stores them in `analysis`.
/// Inputs that cannot be read again (standard input) give none.
pub fn attach(cfg: &Config, scan: &ScanOutput, analysis: &mut Analysis) {
    let mut targets: Targets = FxHashMap::default();
    let mut instants: Vec<Micros> = Vec::new();
    for (ci, c) in analysis.clients.iter().enumerate() {
        for (wi, w) in c.windows.iter().enumerate() {
            // A window billed final by an earlier run keeps the evidence it had then.
            if !w.new_in_this_run {
                continue;
            }
            targets
                .entry(c.key.clone())
                .or_default()
                .push((ci, wi, w.start, w.last_request));
            instants.extend([w.start, w.last_request]);
        }
    }
    if targets.is_empty() {
        return;
    }
    instants.sort_unstable();
    let covers = |first: Option<Micros>, last: Option<Micros>| match (first, last) {
        (Some(a), Some(b)) => {
            let i = instants.partition_point(|&t| t < a);
            i < instants.len() && instants[i] <= b
        }
        _ => false,
    };
    let wanted: Vec<(usize, &crate::discover::Input)> = scan
        .inputs
        .iter()
        .filter(|i| matches!(i.source, Source::Path(_)))
        .filter(|i| {
            scan.files
                .iter()
                .find(|f| f.path == i.name)
                .is_some_and(|f| covers(f.first_request, f.last_request))
        })
        .enumerate()
        .collect();
    let found: Vec<Found> = wanted
        .par_iter()
        .flat_map_iter(|&(file, input)| {
            let mut finder = Finder {
                targets: &targets,
                file,
                name: &input.name,
                found: Vec::new(),
            };
            read_input(cfg, input, &mut finder);
            finder.found
        })
        .collect();
    // In (file, line) order, the first candidate is the first request and the
    // last one the last.
    let mut found = found;
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
