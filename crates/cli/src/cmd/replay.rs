//! `sekisho replay`.

use std::process::ExitCode;

/// Arguments of `sekisho replay`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `sekisho replay`.
pub fn run(_args: Args) -> ExitCode {
    eprintln!("sekisho replay: not implemented yet");
    ExitCode::from(2)
}
