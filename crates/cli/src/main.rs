//! The `sekisho` command: parses arguments and hands each subcommand to the crate that does the
//! work. Nothing here knows about packets, rules or DNS.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;

/// sekisho (関所): an egress firewall that speaks Suricata rules, AWS Network Firewall policies
/// and Route 53 Resolver DNS Firewall semantics.
#[derive(Parser)]
#[command(
    name = "sekisho",
    version,
    about,
    long_about = None,
    propagate_version = true,
    after_help = "Examples:
  sekisho check examples/egress/policy.yaml --print-rules
  sekisho check --coverage ../shared/rulesets/et-open-2024-04/*.rules
  sekisho replay --policy examples/egress/policy.yaml --out out capture.pcap
  sekisho run --policy examples/smtp/recipients-strict.yaml --queue 0 --out /var/log/sekisho
  sekisho verify smtp-pipelining
  sekisho dns --config examples/dns/walled-garden.yaml --dry-run
  sekisho dns report query.log
  sekisho reach --model examples/reach/vpc.yaml --from app --to dev.example.com:443 --proto tls
  sekisho logs top tls.sni out/eve.json
  sekisho ratelimit explain '295 103.54.60.244:0->0.0.0.0:0 17688640 115200000 57600000'

Run `sekisho help COMMAND` for a command's options, exit statuses and more examples."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate rule files, policy files and NFW rule-group JSON.
    Check(cmd::check::Args),
    /// Replay captures through a policy and write EVE / NFW logs.
    Replay(cmd::replay::Args),
    /// Run inline on Linux NFQUEUE: verdicts on live packets, logs, rejects.
    Run(cmd::run::Args),
    /// Ask a running `sekisho run` to reload its policy (SIGHUP via its --pid-file).
    Reload(cmd::reload::Args),
    /// Run suricata-verify style conformance cases against sekisho.
    Verify(cmd::verify::Args),
    /// Run the DNS firewall (a filtering forwarder), or work with its query logs.
    Dns(cmd::dns::Args),
    /// Read rate-limit tables: explain a /proc/net/ipt_hashlimit line, show a replay's table.
    Ratelimit(cmd::ratelimit::Args),
    /// Reachability on a network model: routes, NAT, and each firewall's real verdict.
    Reach(cmd::reach::Args),
    /// Query sekisho's own EVE / NFW logs (`logs top tls.sni`: the most frequent SNIs).
    Logs(cmd::logs::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check(a) => cmd::check::run(a),
        Command::Replay(a) => cmd::replay::run(a),
        Command::Run(a) => cmd::run::run(a),
        Command::Reload(a) => cmd::reload::run(a),
        Command::Verify(a) => cmd::verify::run(a),
        Command::Dns(a) => cmd::dns::run(a),
        Command::Ratelimit(a) => cmd::ratelimit::run(a),
        Command::Reach(a) => cmd::reach::run(a),
        Command::Logs(a) => cmd::logs::run(a),
    }
}
