//! scrapemeter: counts the posts each client fetched in every rolling 24-hour window of
//! web server access logs, and reports the liquidated damages owed over the threshold.
//!
//! The crate is built in layers; each may use only the layers listed before it (the
//! test `layers` in `tests/integration/` fails otherwise):
//!
//! 1. [`engine`]: pure computation, no file system, no flags, no clock: time, the
//!    aggregate of posts per client and instant, windows, damages, and the one billing
//!    function every command calls ([`engine::bill::bill`]).
//! 2. [`input`]: the only code that opens a log: discovery, decompression, framing,
//!    formats, client keys and organisations, post weights, and the reader.
//! 3. [`config`]: the settings, resolved once from flags, the settings file and the
//!    defaults into a [`config::Config`].
//! 4. [`store`]: what is saved between runs: the nightly state and the Parquet partials.
//! 5. [`report`]: the report files and the summary on stdout.
//! 6. [`app`]: the command line: one file per command, errors to exit statuses.
//!
//! `docs/architecture.md` says where each kind of change goes.

pub mod app;
pub mod config;
pub mod engine;
pub mod input;
pub mod report;
pub mod store;
