//! `sekisho dns`: argument parsing only; the work is in `sekisho-dnsfw`.

use std::io::BufReader;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};
use sekisho_dnsfw::bypass::BypassAction;
use sekisho_dnsfw::server::RunOptions;

const EXIT_STATUS: &str = "\
Exit status:
  0  success
  1  the input was read and is invalid (bad config content; located diagnostics printed)
  2  usage error: bad flags, or a path that cannot be read at all (missing file, directory,
     no permission)";

const DNS_EXAMPLES: &str = "\
Examples:
  sekisho dns --config dns.yaml                      # run the filtering forwarder
  sekisho dns --config dns.yaml --dry-run            # every BLOCK acts as ALERT (trial period)
  sekisho dns --config dns.yaml --check              # validate config and lists, then exit
  sekisho dns --config dns.yaml --emit-bypass-rules --bypass-action drop > dns-bypass.rules
                                                     # Suricata rules against resolver bypass
  sekisho dns report query.log                       # what would be blocked, allow-list candidates";

const REPORT_AFTER_HELP: &str = "\
Examples:
  sekisho dns report query.log                 # text summary, top 50 rows per section
  sekisho dns report query.log --top 0 --json  # everything, as JSON

Lines that are not JSON (or not UTF-8) are counted as skipped.";

/// Arguments of `sekisho dns`.
#[derive(clap::Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = dns_after_help(),
    after_long_help = dns_after_help()
)]
pub struct Args {
    #[command(subcommand)]
    command: Option<DnsCommand>,
    /// The DNS firewall config (YAML).
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// Turn every BLOCK into ALERT (same as `mode: alert`).
    #[arg(long)]
    dry_run: bool,
    /// Validate the config and its domain lists, print a summary and exit.
    #[arg(long, conflicts_with_all = ["dry_run", "emit_bypass_rules"])]
    check: bool,
    /// Print a Suricata rule group that flags DNS bypassing the firewall, then exit.
    #[arg(long)]
    emit_bypass_rules: bool,
    /// Action of the emitted bypass rules.
    #[arg(long, value_enum, default_value_t = Action::Alert, requires = "emit_bypass_rules")]
    bypass_action: Action,
    /// UDP threads per listen address, each serving its own queries end to end (its own epoll
    /// loop and upstream sockets); also the TCP runtime's worker count (1 = single-threaded).
    /// One thread answers tens of thousands of queries a second; add threads for more cores.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    threads: u16,
}

#[derive(Clone, Copy, ValueEnum)]
enum Action {
    Alert,
    Drop,
}

#[derive(Subcommand)]
enum DnsCommand {
    /// Summarise a query log: would-be-blocked names by rule, alerts, and names no list covers.
    #[command(
        after_help = report_after_help(),
        after_long_help = report_after_help()
    )]
    Report {
        /// Query log file (Route 53 Resolver JSON lines).
        querylog: PathBuf,
        /// Rows shown per section (0 = all).
        #[arg(long, default_value_t = 50)]
        top: usize,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn dns_after_help() -> String {
    format!("{DNS_EXAMPLES}\n\n{EXIT_STATUS}")
}

fn report_after_help() -> String {
    format!("{REPORT_AFTER_HELP}\n\n{EXIT_STATUS}")
}

/// Runs `sekisho dns`.
pub fn run(args: Args) -> ExitCode {
    if let Some(DnsCommand::Report {
        querylog,
        top,
        json,
    }) = args.command
    {
        if querylog.is_dir() {
            eprintln!(
                "{}: error: cannot read query log: it is a directory\n  hint: give the log file, e.g. {}/query.log",
                querylog.display(),
                querylog.display()
            );
            return ExitCode::from(2);
        }
        let f = match std::fs::File::open(&querylog) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("{}: error: cannot read query log: {e}", querylog.display());
                return ExitCode::from(2);
            }
        };
        return match sekisho_dnsfw::report::summarise(BufReader::new(f)) {
            Ok(r) if json => {
                println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
                ExitCode::SUCCESS
            }
            Ok(r) => {
                print!("{}", r.render(top));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{}: error: {e}", querylog.display());
                ExitCode::from(2)
            }
        };
    }
    let Some(config) = args.config else {
        eprintln!("error: sekisho dns needs --config FILE (or the 'report' subcommand)");
        return ExitCode::from(2);
    };
    let result = if args.check {
        sekisho_dnsfw::check(&config).map(|s| println!("{s}"))
    } else if args.emit_bypass_rules {
        let action = match args.bypass_action {
            Action::Alert => BypassAction::Alert,
            Action::Drop => BypassAction::Drop,
        };
        sekisho_dnsfw::bypass_rules(&config, action).map(|t| print!("{t}"))
    } else {
        sekisho_dnsfw::server::run(&RunOptions {
            config,
            dry_run: args.dry_run,
            threads: usize::from(args.threads),
        })
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(d) => {
            eprint!("{}", d.render());
            // The config path itself could not be read: a usage error, not bad content.
            if d.code.as_deref() == Some(sekisho_dnsfw::config::UNREADABLE) {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}
