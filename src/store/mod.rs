//! Store: the saved forms of a run's results, read back by later runs: the nightly
//! state ([`nightly`]) and the Parquet partials of `map`/`reduce` ([`partials`]); and the
//! aggregate spilled to disk when it outgrows `--memory-limit` ([`spill`]).

pub mod fingerprint;
pub mod key;
pub mod ledger;
pub mod nightly;
pub mod out_lock;
pub mod partials;
pub mod spill;
