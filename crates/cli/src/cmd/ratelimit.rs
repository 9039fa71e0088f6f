//! `sekisho ratelimit`: reading rate-limit tables (`/proc/net/ipt_hashlimit` lines).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

const LONG_ABOUT: &str = "\
Read rate-limit tables in the /proc/net/ipt_hashlimit/NAME line format:
  <seconds to expiry> <srcip>:<srcport>-><dstip>:<dstport> <credit> <credit cap> <cost>

explain LINE turns one line (the kernel's or sekisho's) into words: the rate, the burst, the
tokens left, when the key is under the limit again and when the entry expires. Revision-1
numbers (32000 credits per second, sekisho's and kernels up to 4.x), revision-1 numbers of
5.10+ kernels (cost = avg x 3) and revision-2/3 numbers (64-bit) are recognised.

show NAME prints table NAME as `sekisho replay --out DIR` wrote it at the end of its input
(DIR/ratelimit/NAME), each line followed by its meaning with --explain; with --pid-file FILE
it first asks the running `sekisho run --out DIR --pid-file FILE` for the table as of now
(SIGUSR1: it writes DIR/ratelimit/NAME); show --file PATH reads
any file of such lines, such as the kernel's /proc/net/ipt_hashlimit/NAME.

Exit status: 0 done; 1 the line or table could not be read; 2 usage error.

Examples:
  sekisho ratelimit explain '295 103.54.60.244:0->0.0.0.0:0 17688640 115200000 57600000'
  sekisho ratelimit show smtp_limit --out out --explain
  sekisho ratelimit show smtp_limit --out /var/log/sekisho --pid-file /run/sekisho.pid
  sekisho ratelimit show --file /proc/net/ipt_hashlimit/smtp_limit --explain";

/// Arguments of `sekisho ratelimit`.
#[derive(clap::Args)]
#[command(after_long_help = LONG_ABOUT)]
pub struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Explain one /proc/net/ipt_hashlimit line in words.
    Explain {
        /// The line (quote it), e.g. '295 103.54.60.244:0->0.0.0.0:0 17688640 115200000 57600000'.
        #[arg(value_name = "LINE", num_args = 1.., required = true)]
        line: Vec<String>,
    },
    /// Print a table written by `sekisho replay --out DIR` (DIR/ratelimit/NAME), or any file
    /// of such lines (--file /proc/net/ipt_hashlimit/NAME reads the kernel's).
    Show {
        /// Table name (`name:` of the rate limit, or its --hashlimit-name).
        #[arg(value_name = "NAME", required_unless_present = "file")]
        name: Option<String>,
        /// The replay's output directory.
        #[arg(long, value_name = "DIR", default_value = ".")]
        out: PathBuf,
        /// Read this file instead (e.g. /proc/net/ipt_hashlimit/smtp_limit).
        #[arg(long, value_name = "PATH", conflicts_with = "name")]
        file: Option<PathBuf>,
        /// Follow each line with its meaning.
        #[arg(long)]
        explain: bool,
        /// Ask the running `sekisho run` with this --pid-file for its table now (SIGUSR1: it
        /// writes DIR/ratelimit/NAME under its --out DIR, which --out must name).
        #[arg(long, value_name = "FILE", conflicts_with = "file")]
        pid_file: Option<PathBuf>,
    },
}

/// Runs `sekisho ratelimit`.
pub fn run(args: Args) -> ExitCode {
    match args.command {
        Cmd::Explain { line } => match sekisho_ratelimit::explain(&line.join(" ")) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!(
                    "sekisho ratelimit explain: error: {}\n  hint: {}",
                    e.message, e.hint
                );
                ExitCode::from(1)
            }
        },
        Cmd::Show {
            name,
            out,
            file,
            explain,
            pid_file,
        } => {
            let path = match (file, name.as_deref()) {
                (Some(f), _) => f,
                (None, Some(n))
                    if !n.is_empty() && !n.starts_with('.') && !n.contains(['/', '\\']) =>
                {
                    out.join(sekisho_replay::RATELIMIT_DIR).join(n)
                }
                (None, n) => {
                    eprintln!(
                        "sekisho ratelimit show: error: bad table name '{}'",
                        n.unwrap_or("")
                    );
                    return ExitCode::from(2);
                }
            };
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if let Some(pf) = &pid_file {
                if let Err(e) = ask_running(pf, &path) {
                    eprintln!("sekisho ratelimit show: error: {e}");
                    return ExitCode::from(1);
                }
            }
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!(
                        "sekisho ratelimit show: error: {}: {e}\n  hint: tables are written by `sekisho replay --policy P --out DIR` for each rate limit of P; pass that DIR with --out",
                        path.display()
                    );
                    return ExitCode::from(1);
                }
            };
            let mut status = ExitCode::SUCCESS;
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                println!("{line}");
                if explain {
                    match sekisho_ratelimit::explain(line) {
                        Ok(t) => {
                            for l in t.lines().skip(1) {
                                println!("    {l}");
                            }
                        }
                        Err(e) => {
                            eprintln!(
                                "sekisho ratelimit show: error: {}: {}",
                                path.display(),
                                e.message
                            );
                            status = ExitCode::from(1);
                        }
                    }
                }
            }
            if text.trim().is_empty() {
                println!("(table {name} is empty: every entry expired or none was created)");
            }
            status
        }
    }
}

/// Asks the `sekisho run` whose pid is in `pid_file` to write its tables (SIGUSR1) and waits
/// until `path` is a new file (the instance replaces each table file whole by a rename, so a
/// new inode means a fresh table), at most 5 s.
fn ask_running(pid_file: &std::path::Path, path: &std::path::Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let text =
        std::fs::read_to_string(pid_file).map_err(|e| format!("{}: {e}", pid_file.display()))?;
    let pid = match text.trim().parse::<libc::pid_t>() {
        Ok(p) if p > 1 => p,
        _ => {
            return Err(format!(
                "{}: not a process id: {:?}",
                pid_file.display(),
                text.trim()
            ))
        }
    };
    let id = |p: &std::path::Path| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
    let before = id(path);
    // SAFETY: kill with a positive pid and a valid signal number.
    if unsafe { libc::kill(pid, libc::SIGUSR1) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err(format!("signalling process {pid}: {e}"));
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let now = id(path);
        if now.is_some() && now != before {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(format!(
                "process {pid} did not write {} within 5 s\n  hint: --out must be the instance's --out directory, and NAME one of its policy's rate limits",
                path.display()
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
