//! `sekisho replay`: wiring between the command line, the replay driver
//! (`sekisho_pcap::replay`), the progress bar and the summary line.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;

use clap::ValueEnum;
use sekisho_eve::{LogConfig, LogFormat};
use sekisho_pcap::replay::{self, ReplayError, ReplayOptions};

/// Log format written by `sekisho replay`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormatArg {
    /// Suricata EVE JSON: DIR/eve.json (flow, netflow with --netflow, alert, stats records).
    Eve,
    /// AWS Network Firewall envelopes: DIR/alert.log and DIR/flow.log (netflow records).
    Nfw,
}

/// How verdicts are applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// Like a live firewall: a dropped packet never reaches the receiver's stream or app
    /// layer; a flow drop drops the rest of the flow.
    Inline,
    /// Only log what would be dropped.
    Monitor,
}

/// Checksum validation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ChecksumArg {
    /// Validate IP/TCP/UDP checksums; TCP segments with a bad checksum are not reassembled.
    All,
    /// Do not validate (captures taken on the sending host with checksum offload).
    None,
}

const LONG_ABOUT: &str = "\
Replay capture files through sekisho's engine and write EVE JSON or AWS Network Firewall logs.

Reads classic pcap (µs and ns, either byte order) and pcapng (several interfaces), plain or
gzip-compressed, with link types Ethernet (802.1Q/QinQ VLANs), raw IP, Linux cooked capture
SLL and SLL2 (`tcpdump -i any`). Several files are processed in timestamp order as one capture.

Output (in --out DIR, default ./sekisho-out, created if missing):
  --log-format eve  DIR/eve.json: one `flow` record per flow (and two `netflow` records with
                    --netflow), `alert` records, a closing `stats` record.
  --log-format nfw  DIR/alert.log and DIR/flow.log in the AWS Network Firewall envelope
                    (firewall_name, availability_zone, event_timestamp, event); flow.log holds
                    `netflow` records, one per direction.
Logs are flushed at exit and on SIGTERM/SIGINT (reading stops, what was read is logged).

On a terminal a progress bar shows input bytes read and packets/s. At the end one line goes to
stderr:
  packets=N bytes=N flows=N alerts=N drops=N wall=S.SSSs X.XX Mpps Y.YY Gbit/s
(bytes = captured bytes of all packets; Mpps and Gbit/s are per wall-clock second.)

Detection (--policy/--rules/--explain) belongs to a later release: the options are accepted,
and a note is printed that no rules are evaluated yet.

Exit status:
  0  every capture was read completely, or reading was stopped by SIGTERM/SIGINT (logs are
     flushed; malformed packets inside a well-formed capture are decoder events, not errors)
  1  input error: a capture is missing, not a capture, truncated or malformed, or has an
     unsupported link type (logs are still written for everything read before the error)
  2  usage or configuration error (bad option, --set key, unwritable output directory)

Examples:
  sekisho replay capture.pcap
  sekisho replay --out logs --netflow day1.pcapng.gz day2.pcap
  sekisho replay --log-format nfw --firewall-name egress-fw --out nfw-logs capture.pcap
  sekisho replay --checksum-validation none --set flow-timeouts.tcp.established=350 lo.pcap";

/// Arguments of `sekisho replay`.
#[derive(clap::Args)]
#[command(after_long_help = LONG_ABOUT)]
pub struct Args {
    /// Capture files (pcap, pcapng, optionally gzip-compressed).
    #[arg(required = true, value_name = "PCAP")]
    pub pcaps: Vec<PathBuf>,
    /// Firewall policy file; validated, not evaluated yet.
    #[arg(long, value_name = "FILE", conflicts_with = "rules")]
    pub policy: Option<PathBuf>,
    /// Suricata rule file (repeatable: --rules a.rules --rules b.rules); validated, not
    /// evaluated yet.
    #[arg(long, value_name = "FILE")]
    pub rules: Vec<PathBuf>,
    /// Output directory (created if missing).
    #[arg(long, value_name = "DIR", default_value = "sekisho-out")]
    pub out: PathBuf,
    /// Log format.
    #[arg(long, value_enum, default_value = "eve")]
    pub log_format: LogFormatArg,
    /// Verdict mode.
    #[arg(long, value_enum, default_value = "inline")]
    pub mode: ModeArg,
    /// Explain rule decisions (reserved for detection).
    #[arg(long)]
    pub explain: bool,
    /// Checksum validation (like Suricata's -k).
    #[arg(long, value_enum, default_value = "all")]
    pub checksum_validation: ChecksumArg,
    /// Also write `netflow` records (two per flow) to eve.json.
    #[arg(long)]
    pub netflow: bool,
    /// Also write decoder and stream `anomaly` records to eve.json (Suricata logs them only
    /// when `anomaly.types.decode/stream` are enabled).
    #[arg(long)]
    pub anomalies: bool,
    /// Do not write `flow` records to eve.json.
    #[arg(long)]
    pub no_flow: bool,
    /// Pick up TCP sessions whose handshake was not captured (Suricata's stream.midstream).
    #[arg(long)]
    pub midstream: bool,
    /// Engine setting override, KEY=VALUE; repeatable. Keys:
    /// flow-timeouts.{default,tcp,udp,icmp}.{new,established,closed} (seconds),
    /// flow.memcap (bytes), flow.max-flows, stream.midstream (true/false).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// `firewall_name` in NFW envelopes.
    #[arg(long, default_value = "sekisho")]
    pub firewall_name: String,
    /// `availability_zone` in NFW envelopes.
    #[arg(long, default_value = "local")]
    pub availability_zone: String,
    /// Benchmark ceiling: read and decode headers only (no flows, no reassembly, no logs).
    #[arg(long)]
    pub decode_only: bool,
    /// No progress bar even on a terminal.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Runs `sekisho replay`.
pub fn run(args: Args) -> ExitCode {
    // Validate the policy / rules now (their diagnostics are worth having), even though the
    // detection engine that would evaluate them is not part of this release.
    let checked = match (&args.policy, args.rules.is_empty()) {
        (Some(p), _) => Some(sekisho_policy::Policy::check_file(p, &Default::default())),
        (None, false) => Some(sekisho_policy::Policy::check_rules_files(
            &args.rules,
            &Default::default(),
        )),
        (None, true) => None,
    };
    if let Some(c) = &checked {
        for d in &c.diagnostics {
            eprint!("{}", d.render());
        }
        if !c.is_valid() {
            eprintln!("sekisho replay: error: the policy/rules are invalid (see above)");
            return ExitCode::from(2);
        }
    }
    if checked.is_some() || args.explain {
        eprintln!(
            "sekisho replay: note: detection is not implemented yet; the policy/rules were validated but no rules are evaluated"
        );
    }
    let mut sets = Vec::new();
    for s in &args.sets {
        match s.split_once('=') {
            Some((k, v)) => sets.push((k.trim().to_string(), v.trim().to_string())),
            None => {
                eprintln!("sekisho replay: error: --set {s}: expected KEY=VALUE");
                return ExitCode::from(2);
            }
        }
    }
    if let Err(e) = std::fs::create_dir_all(&args.out) {
        eprintln!(
            "sekisho replay: error: cannot create output directory {}: {e}",
            args.out.display()
        );
        return ExitCode::from(2);
    }
    let format = match args.log_format {
        LogFormatArg::Eve => LogFormat::Eve,
        LogFormatArg::Nfw => LogFormat::Nfw {
            firewall_name: args.firewall_name.clone(),
            availability_zone: args.availability_zone.clone(),
        },
    };
    let opts = ReplayOptions {
        pcaps: args.pcaps.clone(),
        out_dir: args.out.clone(),
        log: LogConfig {
            format,
            flow: !args.no_flow,
            netflow: args.netflow,
            anomaly_decode: args.anomalies,
            anomaly_stream: args.anomalies,
            ..LogConfig::default()
        },
        inline: args.mode == ModeArg::Inline,
        checksums: args.checksum_validation == ChecksumArg::All,
        midstream: args.midstream,
        decode_only: args.decode_only,
        sets,
    };
    let stop = match sekisho_pcap::install_stop_flag() {
        Ok(f) => Some(f),
        Err(e) => {
            eprintln!("sekisho replay: warning: cannot install signal handlers: {e}");
            None
        }
    };
    let show_bar = !args.quiet && std::io::stderr().is_terminal();
    let bar = show_bar.then(|| {
        let total: u64 = args
            .pcaps
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum();
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40.cyan/blue} {bytes}/{total_bytes} {binary_bytes_per_sec} {msg} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let started = std::time::Instant::now();
    let mut progress = |p: replay::Progress| {
        if let Some(bar) = &bar {
            bar.set_position(p.bytes_read);
            let secs = started.elapsed().as_secs_f64().max(1e-6);
            bar.set_message(format!(
                "{} pkts {:.0} pkts/s",
                p.packets,
                p.packets as f64 / secs
            ));
        }
    };
    let result = replay::run(&opts, stop.as_deref(), &mut progress);
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    match result {
        Ok(report) => {
            for e in &report.input_errors {
                eprintln!("sekisho replay: error: {e}");
            }
            if stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed)) {
                eprintln!("sekisho replay: interrupted; logs flushed");
            }
            eprintln!("{}", report.summary_line());
            if report.input_errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(ReplayError::Config(m)) => {
            eprintln!("sekisho replay: error: {m}");
            ExitCode::from(2)
        }
        Err(ReplayError::Output(e)) => {
            eprintln!("sekisho replay: error: writing logs: {e}");
            ExitCode::from(2)
        }
        Err(ReplayError::Input(e)) => {
            eprintln!("sekisho replay: error: {e}");
            ExitCode::from(1)
        }
    }
}
