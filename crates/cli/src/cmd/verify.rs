//! `sekisho verify`.

use std::process::ExitCode;

/// Arguments of `sekisho verify`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `sekisho verify`.
pub fn run(_args: Args) -> ExitCode {
    eprintln!("sekisho verify: not implemented yet");
    ExitCode::from(2)
}
