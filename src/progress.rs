//! Progress on stderr while the inputs are read: files done of total, requests read and
//! requests per second. Shown only when stderr is a terminal and `--quiet` is off;
//! otherwise every hook here is one relaxed atomic load.
//!
//! The reading code only bumps counters ([`file_done`], [`Counting`]); a small thread
//! of this module draws them.

use crate::format::Request;
use crate::scan::OnRequest;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

static ON: AtomicBool = AtomicBool::new(false);
static FILES: AtomicU64 = AtomicU64::new(0);
static REQUESTS: AtomicU64 = AtomicU64::new(0);

/// Requests counted locally before they are added to the shared counter.
const BATCH: u64 = 1 << 16;

/// The progress display; cleared when dropped.
pub struct Progress {
    stop: Arc<AtomicBool>,
    drawer: Option<JoinHandle<()>>,
}

/// Starts a display for `files` inputs, or nothing when stderr is not a terminal.
pub fn start(files: usize, quiet: bool) -> Option<Progress> {
    if quiet || !std::io::stderr().is_terminal() {
        return None;
    }
    FILES.store(0, Ordering::Relaxed);
    REQUESTS.store(0, Ordering::Relaxed);
    ON.store(true, Ordering::Relaxed);
    let bar = ProgressBar::with_draw_target(Some(files as u64), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} files  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let drawer = std::thread::spawn(move || {
        let started = Instant::now();
        while !stopped.load(Ordering::Relaxed) {
            let requests = REQUESTS.load(Ordering::Relaxed);
            let secs = started.elapsed().as_secs_f64().max(0.001);
            bar.set_position(FILES.load(Ordering::Relaxed));
            bar.set_message(format!(
                "{} requests, {}/s",
                crate::report::summary::thousands(requests),
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
