//! One module per subcommand; each exposes `Args` (clap) and `run(Args) -> ExitCode`.

pub mod check;
pub mod dns;
pub mod logs;
pub mod ratelimit;
pub mod reach;
pub mod reload;
pub mod replay;
pub mod run;
pub mod verify;
