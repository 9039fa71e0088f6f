//! `sekisho check`.

use std::process::ExitCode;

/// Arguments of `sekisho check`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `sekisho check`.
pub fn run(_args: Args) -> ExitCode {
    eprintln!("sekisho check: not implemented yet");
    ExitCode::from(2)
}
