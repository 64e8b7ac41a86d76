//! Reading progress as counters: the reader bumps them, and whoever wants to show
//! progress watches them (the command line's progress bar, `crate::app::progress`).
//! No globals: a scan is handed its counters, or none.

use crate::input::format::Request;
use crate::input::reader::{FileReport, RequestSink, SplitSink};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Requests counted locally before they are added to the shared counter.
const BATCH: u64 = 1 << 16;

/// Told each input's report and how many inputs are done.
pub type FileDone = Box<dyn Fn(&FileReport, u64) + Send + Sync>;

/// What the reading has done so far.
#[derive(Default)]
pub struct ReadCounters {
    /// Inputs read.
    pub files: AtomicU64,
    /// Requests read.
    pub requests: AtomicU64,
    /// Compressed (stored) bytes read.
    pub bytes: AtomicU64,
    /// The input most recently begun.
    pub current: Mutex<String>,
    /// Called with each input's report as it is done (one line per file for cron
    /// logs, `--progress plain`).
    pub on_file_done: Option<FileDone>,
}

impl std::fmt::Debug for ReadCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadCounters")
            .field("files", &self.files)
            .field("requests", &self.requests)
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

impl ReadCounters {
    /// `n` more stored bytes read (called by [`crate::input::decompress::Tap`]).
    #[inline]
    pub fn bytes_read(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
    }

    /// One more input read: `report` says what happened to it.
    pub fn file_done(&self, report: &FileReport) {
        let done = self.files.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(f) = &self.on_file_done {
            f(report, done);
        }
    }

    /// An input is begun.
    pub fn file_begun(&self, name: &str) {
        if let Ok(mut c) = self.current.lock() {
            c.clear();
            c.push_str(name);
        }
    }
}

/// Wraps a pass, counting its requests into `counters` (when there are any).
pub struct Counting<S> {
    pub inner: S,
    counters: Option<Arc<ReadCounters>>,
    pending: u64,
}

impl<S> Counting<S> {
    pub fn new(inner: S, counters: Option<Arc<ReadCounters>>) -> Self {
        Counting {
            inner,
            counters,
            pending: 0,
        }
    }
}

impl<S: RequestSink> RequestSink for Counting<S> {
    #[inline]
    fn request(&mut self, line_no: u64, req: &Request<'_>, key: &[u8], line: &[u8]) -> u64 {
        self.pending += 1;
        if self.pending == BATCH {
            if let Some(c) = &self.counters {
                c.requests.fetch_add(BATCH, Ordering::Relaxed);
            }
            self.pending = 0;
        }
        self.inner.request(line_no, req, key, line)
    }

    #[inline]
    fn keep(&self, line: &[u8]) -> bool {
        self.inner.keep(line)
    }

    fn late(&mut self, req: &Request<'_>, key: &[u8], posts: u64) {
        self.inner.late(req, key, posts);
    }

    fn counters(&self) -> Option<Arc<ReadCounters>> {
        self.counters.clone()
    }

    fn gzip_index(&self) -> Option<Arc<std::sync::Mutex<crate::input::gzip_index::GzIndex>>> {
        self.inner.gzip_index()
    }

    fn begin(&mut self, name: &str) {
        self.inner.begin(name);
        if let Some(c) = &self.counters {
            c.file_begun(name);
        }
    }

    fn finish(&mut self, report: &FileReport) {
        self.inner.finish(report);
        if let Some(c) = &self.counters {
            c.file_done(report);
        }
    }
}

/// Each part counts into the same counters.
impl<S: SplitSink> SplitSink for Counting<S> {
    type Part = Counting<S::Part>;

    fn part(&self) -> Self::Part {
        Counting::new(self.inner.part(), self.counters.clone())
    }

    fn absorb(&mut self, part: &mut Self::Part) {
        self.inner.absorb(&mut part.inner);
    }
}

impl<S> Drop for Counting<S> {
    fn drop(&mut self) {
        if let Some(c) = &self.counters {
            c.requests.fetch_add(self.pending, Ordering::Relaxed);
        }
    }
}
