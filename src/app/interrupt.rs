//! Ctrl-C (SIGINT): never silent, never half a report. Before the
//! reports are committed the run simply stops, and says that nothing was written;
//! while they are being committed (temporary files renamed into place, the state
//! last) the commit is let finish, all or nothing, and the run then exits saying so.
//! Either way the exit status is 130, as shells expect after SIGINT.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

static COMMITTING: AtomicBool = AtomicBool::new(false);
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// The exit status after an interrupt.
pub const INTERRUPTED_STATUS: i32 = 130;

/// Installs the handler for a run that writes into `out`. A second install (another
/// command in the same process, as in tests) keeps the first handler.
pub fn install(out: &Path) {
    let out = out.display().to_string();
    let _ = ctrlc::set_handler(move || {
        if COMMITTING.load(Ordering::SeqCst) {
            INTERRUPTED.store(true, Ordering::SeqCst);
            return;
        }
        // Clear a progress bar's line, then say what was kept.
        if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            eprint!("\r\x1b[2K");
        }
        eprintln!(
            "scrapemeter: interrupted: nothing written; the reports in {} are as they were",
            crate::engine::text::terminal_safe(&out)
        );
        std::process::exit(INTERRUPTED_STATUS);
    });
}

/// Runs `commit` with interrupts held back until it is done; returns its outcome and
/// whether an interrupt came meanwhile.
pub fn while_committing<T>(commit: impl FnOnce() -> T) -> (T, bool) {
    COMMITTING.store(true, Ordering::SeqCst);
    let out = commit();
    COMMITTING.store(false, Ordering::SeqCst);
    (out, INTERRUPTED.swap(false, Ordering::SeqCst))
}
