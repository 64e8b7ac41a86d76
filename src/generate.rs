//! Deterministic synthetic access logs (sample logs and benchmark sets). Work in progress.

use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Folder to write the generated logs into.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

pub fn run(args: &GenerateArgs) -> Result<(), String> {
    Err(format!(
        "generate into {}: not built yet",
        args.out.display()
    ))
}
