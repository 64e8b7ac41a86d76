//! What the commands can fail with, and the exit status each failure means. Errors
//! are printed once, by [`crate::app::cli::main`], as `scrapemeter: error: …`.

use crate::config::SettingsError;
use crate::engine::InvalidValue;
use crate::input::rules::RulesError;
use crate::report::WriteError;
use crate::store::nightly::StateError;
use crate::store::out_lock::OutError;
use crate::store::partials::PartialsError;

/// What each exit status means (the README's table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Success = 0,
    /// `--strict` saw a bad input (missing, unreadable, unrecognised, incomplete, over
    /// the malformed share), or `--strict-lines` any malformed line; or `explain` found
    /// no request of the client asked for.
    StrictFailure = 1,
    /// Bad flags, settings, rules or orgs files; a path that does not exist or a glob
    /// that matches nothing (without `--allow-missing`); a refused state, or a state
    /// folder another run holds.
    Usage = 2,
    /// The outputs or the state could not be written.
    Output = 3,
    /// With `--state`: the reports were written, but some requests were late (older
    /// than the watermark) and not billed.
    LateData = 4,
    /// Ctrl-C (SIGINT): nothing written, or the reports written in full (the message
    /// says which).
    Interrupted = 130,
}

/// A command that could not do its work.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad flags or settings (exit 2).
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// A rules file that does not compile (exit 2).
    #[error(transparent)]
    Rules(#[from] RulesError),
    /// The nightly state cannot be used (exit 2), or its folder cannot be written
    /// (exit 3).
    #[error(transparent)]
    State(#[from] StateError),
    /// Partials that cannot be reduced (exit 2), or cannot be written (exit 3).
    #[error(transparent)]
    Partials(#[from] PartialsError),
    /// The reports could not be written (exit 3).
    #[error(transparent)]
    Write(#[from] WriteError),
    /// A flag's value that does not parse (exit 2).
    #[error(transparent)]
    Value(#[from] InvalidValue),
    /// Any other usage error: a flag's value, a missing argument (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The output folder is held by another run, or is not a writable folder (exit 3).
    #[error(transparent)]
    OutFolder(#[from] OutError),
    /// Any other output that could not be written (exit 3).
    #[error("{0}")]
    Output(String),
    /// What was asked for is not in the inputs: `explain` of a client with no request
    /// (exit 1, as grep when nothing matches).
    #[error("{0}")]
    NotFound(String),
}

impl Error {
    /// The exit status this error ends the run with.
    pub fn exit(&self) -> Exit {
        match self {
            Error::Settings(_) | Error::Rules(_) | Error::Value(_) | Error::Usage(_) => Exit::Usage,
            Error::NotFound(_) => Exit::StrictFailure,
            Error::State(e) if e.is_output() => Exit::Output,
            Error::State(_) => Exit::Usage,
            Error::Partials(e) if e.is_output() => Exit::Output,
            Error::Partials(_) => Exit::Usage,
            Error::Write(_) | Error::Output(_) | Error::OutFolder(_) => Exit::Output,
        }
    }
}
