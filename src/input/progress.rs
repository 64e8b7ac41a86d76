//! Progress on stderr while the inputs are read: stored bytes read of the total, files
//! done of total, requests per second. Shown only when stderr is a terminal and
//! `--quiet` is off; otherwise every hook here is one relaxed atomic load.
//!
//! The reading code only bumps counters ([`bytes_read`], [`file_done`], [`Counting`]);
//! a small thread of this module draws them.

use crate::input::format::Request;
use crate::input::reader::OnRequest;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

static ON: AtomicBool = AtomicBool::new(false);
static FILES: AtomicU64 = AtomicU64::new(0);
static REQUESTS: AtomicU64 = AtomicU64::new(0);
/// Compressed (stored) bytes read so far, out of the inputs' total size.
static BYTES: AtomicU64 = AtomicU64::new(0);

/// Requests counted locally before they are added to the shared counter.
const BATCH: u64 = 1 << 16;

/// The progress display; cleared when dropped.
pub struct Progress {
    stop: Arc<AtomicBool>,
    drawer: Option<JoinHandle<()>>,
}

/// Starts a display for `inputs`, or nothing when stderr is not a terminal. The bar
/// measures stored bytes read out of the files' total size (standard input, of unknown
/// size, only adds to the count).
pub fn start(inputs: &[crate::input::discover::Input], quiet: bool) -> Option<Progress> {
    if quiet || !std::io::stderr().is_terminal() {
        return None;
    }
    let files = inputs.len();
    let total: u64 = inputs
        .iter()
        .filter_map(|i| match &i.source {
            crate::input::discover::Source::Path(p) => std::fs::metadata(p).ok().map(|m| m.len()),
            crate::input::discover::Source::Stdin => None,
        })
        .sum();
    FILES.store(0, Ordering::Relaxed);
    REQUESTS.store(0, Ordering::Relaxed);
    BYTES.store(0, Ordering::Relaxed);
    ON.store(true, Ordering::Relaxed);
    let bar = ProgressBar::with_draw_target(Some(total.max(1)), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{bar:24} {binary_bytes}/{binary_total_bytes} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let drawer = std::thread::spawn(move || {
        let started = Instant::now();
        while !stopped.load(Ordering::Relaxed) {
            let requests = REQUESTS.load(Ordering::Relaxed);
            let secs = started.elapsed().as_secs_f64().max(0.001);
            bar.set_position(BYTES.load(Ordering::Relaxed));
            bar.set_message(format!(
                "{}/{files} files, {} requests/s",
                FILES.load(Ordering::Relaxed),
                crate::report::summary::thousands((requests as f64 / secs) as u64)
            ));
            std::thread::sleep(Duration::from_millis(200));
        }
        bar.finish_and_clear();
    });
    Some(Progress {
        stop,
        drawer: Some(drawer),
    })
}

impl Drop for Progress {
    fn drop(&mut self) {
        ON.store(false, Ordering::Relaxed);
        self.stop.store(true, Ordering::Relaxed);
        if let Some(d) = self.drawer.take() {
            let _ = d.join();
        }
    }
}

/// `n` more stored bytes read (called by [`crate::input::decompress::Tap`] as they pass).
#[inline]
pub fn bytes_read(n: u64) {
    if ON.load(Ordering::Relaxed) {
        BYTES.fetch_add(n, Ordering::Relaxed);
    }
}

/// One more input read.
pub fn file_done() {
    if ON.load(Ordering::Relaxed) {
        FILES.fetch_add(1, Ordering::Relaxed);
    }
}

/// Wraps a pass, counting its requests for the display.
pub struct Counting<S> {
    pub inner: S,
    pending: u64,
}

impl<S> Counting<S> {
    pub fn new(inner: S) -> Self {
        Counting { inner, pending: 0 }
    }
}

impl<S: OnRequest> OnRequest for Counting<S> {
    #[inline]
    fn request(&mut self, line_no: u64, req: &Request<'_>, key: &[u8], line: &[u8]) -> u64 {
        self.pending += 1;
        if self.pending == BATCH {
            if ON.load(Ordering::Relaxed) {
                REQUESTS.fetch_add(BATCH, Ordering::Relaxed);
            }
            self.pending = 0;
        }
        self.inner.request(line_no, req, key, line)
    }

    #[inline]
    fn keep(&self, line: &[u8]) -> bool {
        self.inner.keep(line)
    }
}

impl<S> Drop for Counting<S> {
    fn drop(&mut self) {
        if ON.load(Ordering::Relaxed) {
            REQUESTS.fetch_add(self.pending, Ordering::Relaxed);
        }
    }
}
