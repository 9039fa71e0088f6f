//! The process signals of an inline run, handled on a thread of their own: SIGHUP reloads,
//! SIGUSR1 writes the rate-limit tables, SIGTERM/SIGINT stop.

use std::path::PathBuf;
use std::sync::Arc;

use sekisho_sensor::{RuleSet, Settings};

use crate::Control;

/// Installs the handlers of an inline run and starts the thread that serves them:
/// SIGHUP reloads through `load` ([`Control::reload_with_settings`]: the rules and settings it
/// builds replace the running ones only when it succeeds; `policy` names what was reloaded in
/// the messages), SIGUSR1 writes the rate-limit tables to `out_dir/ratelimit/NAME`
/// ([`Control::write_rate_limits`]), SIGTERM/SIGINT [`Control::stop`] the run. `Err` when the
/// handlers or the thread cannot be set up.
pub fn handle_signals<F>(
    control: Arc<Control>,
    policy: PathBuf,
    out_dir: PathBuf,
    mut load: F,
) -> std::io::Result<()>
where
    F: FnMut() -> Result<(Arc<RuleSet>, Settings), String> + Send + 'static,
{
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
    let mut signals = signal_hook::iterator::Signals::new([SIGHUP, SIGINT, SIGTERM, SIGUSR1])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if sig == SIGHUP {
                    match control.reload_with_settings(&mut load) {
                        Ok(()) => eprintln!("sekisho run: reloaded {}", policy.display()),
                        Err(e) => eprintln!(
                            "sekisho run: error: reload refused, the previous rules keep running: {e}"
                        ),
                    }
                } else if sig == SIGUSR1 {
                    if let Err(e) = control.write_rate_limits(&out_dir) {
                        eprintln!("sekisho run: error: writing the rate-limit tables: {e}");
                    }
                } else {
                    control.stop();
                }
            }
        })?;
    Ok(())
}
