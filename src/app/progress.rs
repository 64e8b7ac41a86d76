//! The progress bar on stderr while the inputs are read: stored bytes read of the
//! total, files done of total, requests per second. Shown only when stderr is a
//! terminal and `--quiet` is off. It watches the reader's
//! [`ReadCounters`] from a small thread of its own.

use crate::input::discover::{Input, Source};
use crate::input::progress::ReadCounters;
use crate::input::reader::FileReport;
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

/// How progress is shown on stderr (`--progress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ProgressMode {
    /// A bar when stderr is a terminal, else nothing (the default).
    #[default]
    Auto,
    /// A bar when stderr is a terminal, else one line per input read (`--progress`).
    On,
    /// One line per input read, for cron logs.
    Plain,
    /// Nothing.
    None,
}

/// Starts a display for `inputs`: a bar or one line per input, as `mode` and the
/// terminal say, or nothing. The bar measures stored bytes read out of the files'
/// total size (standard input, of unknown size, only adds to the count), with the
/// time left and the input being read.
pub fn start(inputs: &[Input], quiet: bool) -> Option<Progress> {
    start_with(inputs, quiet, ProgressMode::Auto)
}

/// [`start`], in the given `mode`.
pub fn start_with(inputs: &[Input], quiet: bool, mode: ProgressMode) -> Option<Progress> {
    let terminal = std::io::stderr().is_terminal();
    let plain = match mode {
        _ if quiet => return None,
        ProgressMode::None => return None,
        ProgressMode::Auto if !terminal => return None,
        ProgressMode::Plain => true,
        ProgressMode::On => !terminal,
        ProgressMode::Auto => false,
    };
    if plain {
        return Some(plain_lines(inputs.len()));
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
        ProgressStyle::with_template(
            "{bar:24} {binary_bytes}/{binary_total_bytes} {eta} left, {msg}",
        )
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
            let current = watched
                .current
                .lock()
                .map(|c| crate::engine::text::terminal_safe(&c).into_owned())
                .unwrap_or_default();
            bar.set_message(format!(
                "{}/{files} files, {} requests/s, {}",
                watched.files.load(Ordering::Relaxed),
                thousands((requests as f64 / secs) as u64),
                short_name(&current)
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

/// The end of a path, to fit a terminal line: `…/nyc1/access.log-20260304.zst`.
fn short_name(path: &str) -> String {
    const KEEP: usize = 40;
    let n = path.chars().count();
    if n <= KEEP {
        path.to_string()
    } else {
        let tail: String = path.chars().skip(n - (KEEP - 1)).collect();
        format!("…{tail}")
    }
}

/// One line on stderr per input read: `read 3/8 PATH: N lines, N requests[, problem]`.
fn plain_lines(files: usize) -> Progress {
    let started = Instant::now();
    let counters = ReadCounters {
        on_file_done: Some(Box::new(move |r: &FileReport, done: u64| {
            let problem = r
                .bad
                .as_deref()
                .map(|b| format!(", bad input: {b}"))
                .unwrap_or_default();
            eprintln!(
                "scrapemeter: read {done}/{files} {}: {} lines, {} requests{} ({:.1} s)",
                crate::engine::text::terminal_safe(&r.path),
                thousands(r.lines),
                thousands(r.requests),
                crate::engine::text::terminal_safe(&problem),
                started.elapsed().as_secs_f64()
            );
        })),
        ..Default::default()
    };
    Progress {
        stop: Arc::new(AtomicBool::new(true)),
        drawer: None,
        counters: Arc::new(counters),
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(d) = self.drawer.take() {
            let _ = d.join();
        }
    }
}
