//! The application: flags → settings → the pipeline → an exit status. One file per
//! command; nothing below this layer reads a flag or prints an error.

pub mod cli;
pub mod error;
pub mod explain;
pub mod generate;
pub mod interrupt;
pub mod map;
pub mod progress;
pub mod reduce;
pub mod rules;
pub mod scan;
