//! The progress bar on stderr while the inputs are read: stored bytes read of the
//! total, files done of total, requests per second. Shown only when stderr is a
//! terminal and `--quiet` is off. It watches the reader's
//! [`ReadCounters`] from a small thread of its own.

use crate::input::discover::{Input, Source};
use crate::input::progress::ReadCounters;
use crate::report::summary::thousands;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The progress display; cleared when dropped.
pub struct Progress {
    stop: Arc<AtomicBool>,
    drawer: Option<JoinHandle<()>>,
    counters: Arc<ReadCounters>,
}

impl Progress {
    /// The counters the reader should bump.
    pub fn counters(&self) -> Arc<ReadCounters> {
        self.counters.clone()
    }
}

/// Starts a display for `inputs`, or nothing when stderr is not a terminal. The bar
/// measures stored bytes read out of the files' total size (standard input, of unknown
/// size, only adds to the count).
pub fn start(inputs: &[Input], quiet: bool) -> Option<Progress> {
    if quiet || !std::io::stderr().is_terminal() {
        return None;
    }
    let files = inputs.len();
    let total: u64 = inputs
        .iter()
        .filter_map(|i| match &i.source {
            Source::Path(p) => std::fs::metadata(p).ok().map(|m| m.len()),
            Source::Stdin => None,
        })
        .sum();
    let counters = Arc::new(ReadCounters::default());
    let bar = ProgressBar::with_draw_target(Some(total.max(1)), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{bar:24} {binary_bytes}/{binary_total_bytes} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let watched = counters.clone();
    let drawer = std::thread::spawn(move || {
        let started = Instant::now();
        while !stopped.load(Ordering::Relaxed) {
            let requests = watched.requests.load(Ordering::Relaxed);
            let secs = started.elapsed().as_secs_f64().max(0.001);
            bar.set_position(watched.bytes.load(Ordering::Relaxed));
            bar.set_message(format!(
                "{}/{files} files, {} requests/s",
                watched.files.load(Ordering::Relaxed),
                thousands((requests as f64 / secs) as u64)
            ));
            std::thread::sleep(Duration::from_millis(200));
        }
        bar.finish_and_clear();
    });
    Some(Progress {
        stop,
        drawer: Some(drawer),
        counters,
    })
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(d) = self.drawer.take() {
            let _ = d.join();
        }
    }
}
