//! `sekisho dns`.

use std::process::ExitCode;

/// Arguments of `sekisho dns`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `sekisho dns`.
pub fn run(_args: Args) -> ExitCode {
    eprintln!("sekisho dns: not implemented yet");
    ExitCode::from(2)
}
