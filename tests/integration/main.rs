//! The integration tests: one test binary, built and linked once, with one module per
//! theme. `cli` runs the `scrapemeter` binary end to end (its shared helpers, such as
//! `Fixture`, are in `cli/mod.rs`); `layers` reads `src/` and checks the crate's
//! layering; the other modules test one command or one part of the library each.
//!
//! Fixtures are written into temporary folders at test time; the few committed inputs
//! live under `tests/data/` and are found through `env!("CARGO_MANIFEST_DIR")`.
//! Proptest saves the failing cases it finds in `tests/proptest-regressions/<module>.txt`
//! (its default for a test crate whose root is `main.rs`) and replays them first.
//!
//! `fuzz_regressions` installs a global allocator for the whole binary: it counts the
//! bytes each thread holds and hands every call on to the system allocator.

mod cli;
mod engine_oracle;
mod explain;
mod formats;
mod fuzz_regressions;
mod html_report;
mod layers;
mod leads;
mod nightly_engine;
mod one_read;
mod partials;
mod partials_lie;
mod rules_check;
mod rules_orgs;
