//! `sekisho reload`: asks a running `sekisho run` to reload its policy (SIGHUP to the pid in
//! its `--pid-file`). The outcome (reloaded, or refused with the error) is on that process's
//! stderr and in its metrics (`sekisho_reloads_total`, `sekisho_reload_failures_total`).

use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `sekisho reload`.
#[derive(clap::Args)]
pub struct Args {
    /// The `--pid-file` of the `sekisho run` to reload.
    #[arg(long, value_name = "FILE")]
    pub pid_file: PathBuf,
}

/// Runs `sekisho reload`.
pub fn run(args: Args) -> ExitCode {
    let text = match std::fs::read_to_string(&args.pid_file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("sekisho reload: error: {}: {e}", args.pid_file.display());
            return ExitCode::from(2);
        }
    };
    let pid = match text.trim().parse::<libc::pid_t>() {
        Ok(p) if p > 1 => p,
        _ => {
            eprintln!(
                "sekisho reload: error: {}: not a process id: {:?}",
                args.pid_file.display(),
                text.trim()
            );
            return ExitCode::from(2);
        }
    };
    // SAFETY: kill with a positive pid and a valid signal number.
    if unsafe { libc::kill(pid, libc::SIGHUP) } != 0 {
        let e = std::io::Error::last_os_error();
        eprintln!("sekisho reload: error: signalling process {pid}: {e}");
        return ExitCode::from(1);
    }
    eprintln!("sekisho reload: asked process {pid} to reload (its stderr says how it went)");
    ExitCode::SUCCESS
}
