//! scrapemeter: counts the posts each client fetched in every rolling 24-hour window of
//! web server access logs, and reports the liquidated damages owed over the threshold.
//!
//! The modules follow the data:
//! `discover` → `decompress` → `lines` → `format` → `client` + `weigh` →
//! `aggregate` → `window` → `damages` → `analyze` → `report`.
//! `scan` drives the reading in parallel; `second` reads the logs again for the reported
//! clients (evidence, tops, members); `cli` turns flags into a [`config::Config`].

pub mod aggregate;
pub mod analyze;
pub mod cli;
pub mod client;
pub mod config;
pub mod damages;
pub mod decompress;
pub mod discover;
pub mod evidence;
pub mod explain;
pub mod format;
pub mod generate;
pub mod lines;
pub mod members;
pub mod orgs;
pub mod partials;
pub mod profile;
pub mod progress;
pub mod report;
pub mod rules;
pub mod rules_check;
pub mod scan;
pub mod second;
pub mod state;
pub mod time;
pub mod tops;
pub mod weigh;
pub mod window;
