//! `sekisho replay`: wiring between the command line, the sensor's settings, the replay
//! driver (`sekisho_replay`), the progress bar and the summary line.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;

use clap::builder::TypedValueParser;
use clap::ValueEnum;
use sekisho_eve::LogConfig;
use sekisho_policy::LogFormat;
use sekisho_replay::{ReplayError, ReplayOptions};
use sekisho_sensor::{Mode, RuleSet, Settings};

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

Output (in --out DIR, created if missing):
  --log-format eve  DIR/eve.json: one `flow` record per flow (and two `netflow` records with
                    --netflow), `alert` records, a closing `stats` record.
  --log-format nfw  DIR/alert.log and DIR/flow.log in the AWS Network Firewall envelope
                    (firewall_name, availability_zone, event_timestamp, event); flow.log holds
                    `netflow` records, one per direction.
Settings taken from --policy FILE: `name` (firewall_name), `availability_zone`,
`logging.format` and `logging.dir`. Precedence: command-line flag > policy > built-in default
(out dir ./sekisho-out, format eve, firewall_name sekisho, availability_zone local).
`logging.dir` is relative to the policy file's directory, like every other path in a policy;
--out is relative to the current directory.

Logs are flushed at exit and on SIGTERM/SIGINT (reading stops, what was read is logged).

On a terminal a progress bar shows input bytes read and packets/s. At the end one line goes to
stderr:
  packets=N bytes=N flows=N alerts=N drops=N wall=S.SSSs X.XX Mpps Y.YY Gbit/s
(bytes = captured bytes of all packets; Mpps and Gbit/s are per wall-clock second.)

Detection: the rules of --policy (or --rules files, action order) are compiled and evaluated on
every packet after the app layer saw it (semantics: docs/detection.md). A load report on stderr
says how many rules were loaded and lists every rule that was not (sid and keyword; a long list
goes to DIR/rules-not-loaded.txt). --mode inline (default) applies drops and writes `drop`
records; --mode monitor only logs. --explain prints on stdout, for each packet that changes
something, the rules considered, which matched, and the verdict with its reason, e.g.
  pkt 6 flow 1 (10.0.0.150:50390 -> 203.0.113.25:25, smtp) sid 1000008 pass: flow passed; later packets of this flow are not inspected (app-layer rule)
engine_profile aws-nfw recognises SMTP from the client's first command only (Suricata 7.0).

Exit status:
  0  every capture was read completely, or reading was stopped by SIGTERM/SIGINT (logs are
     flushed; malformed packets inside a well-formed capture are decoder events, not errors)
  1  input error: a capture is not a capture, truncated or malformed, or has an unsupported
     link type (logs are still written for everything read before the error); or the
     --policy/--rules content is invalid (diagnostics printed, nothing replayed)
  2  usage or configuration error: bad option, --set key, unwritable output directory, or a
     PCAP/--policy/--rules path that cannot be read at all (missing, a directory, no
     permission; checked before anything is replayed)

Examples:
  sekisho replay capture.pcap
  sekisho replay --out logs --netflow day1.pcapng.gz day2.pcap
  sekisho replay --log-format nfw --firewall-name egress-fw --out nfw-logs capture.pcap
  sekisho replay --checksum-validation none --set flow-timeouts.tcp.established=350 lo.pcap
  sekisho replay --explain --policy examples/smtp/blog-aws-nfw.yaml tests/fixtures/captures/smtp/postfix-pipelined.pcap";

/// Arguments of `sekisho replay`.
#[derive(clap::Args)]
#[command(after_long_help = LONG_ABOUT)]
pub struct Args {
    /// Capture files (pcap, pcapng, optionally gzip-compressed).
    #[arg(required = true, value_name = "PCAP")]
    pub pcaps: Vec<PathBuf>,
    /// Firewall policy file: its rules are evaluated (engine_profile, rule_order,
    /// default_actions apply); its name, availability_zone and logging settings apply.
    #[arg(long, value_name = "FILE", conflicts_with = "rules")]
    pub policy: Option<PathBuf>,
    /// Suricata rule file (repeatable: --rules a.rules --rules b.rules), evaluated in
    /// Suricata's action order.
    #[arg(long, value_name = "FILE")]
    pub rules: Vec<PathBuf>,
    /// Output directory (created if missing) [default: the policy's logging.dir, else
    /// sekisho-out].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Log format: eve (DIR/eve.json) or nfw (DIR/alert.log, DIR/flow.log) [default: the
    /// policy's logging.format, else eve].
    #[arg(
        long,
        value_name = "FORMAT",
        value_parser = clap::builder::PossibleValuesParser::new(LogFormat::NAMES)
            .try_map(|s| s.parse::<LogFormat>())
    )]
    pub log_format: Option<LogFormat>,
    /// Verdict mode.
    #[arg(long, value_enum, default_value = "inline")]
    pub mode: ModeArg,
    /// Print, per packet that changes something, the rules considered, which matched, and
    /// the verdict with its reason (stdout).
    #[arg(long)]
    pub explain: bool,
    /// Checksum validation (like Suricata's -k).
    #[arg(long, value_enum, default_value = "all")]
    pub checksum_validation: ChecksumArg,
    /// Also write `netflow` records (two per flow) to eve.json.
    #[arg(long)]
    pub netflow: bool,
    /// Also write decoder, stream and app-layer (SMTP parser) `anomaly` records to eve.json
    /// (Suricata logs them when `anomaly.types.decode/stream/applayer` are enabled).
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
    /// flow.memcap (bytes), flow.max-flows, stream.midstream (true/false),
    /// defrag.memcap (bytes), defrag.trackers, <target>-policy (exception policies),
    /// app-layer.smtp.server-banner (true/false), detect.stream-depth (bytes, 0 = no limit),
    /// detect.established-scope (to_server|both: direction of NFW's *_established defaults).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// `firewall_name` in NFW envelopes [default: the policy's name, else sekisho].
    #[arg(long, value_name = "NAME")]
    pub firewall_name: Option<String>,
    /// `availability_zone` in NFW envelopes [default: the policy's availability_zone, else
    /// local].
    #[arg(long, value_name = "AZ")]
    pub availability_zone: Option<String>,
    /// Benchmark ceiling: read and decode headers only (no flows, no reassembly, no logs).
    #[arg(long)]
    pub decode_only: bool,
    /// No progress bar even on a terminal.
    #[arg(long, short)]
    pub quiet: bool,
    /// Run even when a drop or reject rule cannot be evaluated (it is left out, with a
    /// warning). Without it such a rule is an error: leaving it out would let through what
    /// it was written to stop.
    #[arg(long)]
    pub allow_unsupported: bool,
}

/// Runs `sekisho replay`.
pub fn run(args: Args) -> ExitCode {
    // A path that cannot be read at all is a usage error (2); content that was read and is
    // invalid is an input error (1), as for `sekisho check`.
    for p in args.policy.iter().chain(&args.rules).chain(&args.pcaps) {
        if let Err(e) = readable_file(p) {
            eprintln!("sekisho replay: error: {}: cannot read: {e}", p.display());
            return ExitCode::from(2);
        }
    }
    let checked = match check_rules(&args) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let policy = checked
        .as_ref()
        .filter(|_| args.policy.is_some())
        .map(|c| &c.policy);
    let out = output_settings(&args, policy);
    let settings = match settings(&args, checked.as_ref()) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let ruleset = match checked.as_ref() {
        Some(c) => {
            let rs = RuleSet::from_policy(&c.policy, settings.compile_options());
            report_load(&rs, &c.policy, &out.dir);
            if !blocking_rules_loaded(&rs, args.allow_unsupported) {
                return ExitCode::from(1);
            }
            Some(std::sync::Arc::new(rs))
        }
        None => None,
    };
    if let Err(e) = std::fs::create_dir_all(&out.dir) {
        eprintln!(
            "sekisho replay: error: cannot create output directory {}: {e}",
            out.dir.display()
        );
        return ExitCode::from(2);
    }
    let opts = ReplayOptions {
        pcaps: args.pcaps.clone(),
        out_dir: out.dir.clone(),
        log: LogConfig {
            format: out.eve_format(),
            flow: !args.no_flow,
            netflow: args.netflow,
            anomaly_decode: args.anomalies,
            anomaly_stream: args.anomalies,
            anomaly_app: args.anomalies,
            ..LogConfig::default()
        },
        settings,
        decode_only: args.decode_only,
    };
    let stop = match sekisho_pcap::install_stop_flag() {
        Ok(f) => Some(f),
        Err(e) => {
            eprintln!("sekisho replay: warning: cannot install signal handlers: {e}");
            None
        }
    };
    let bar = (!args.quiet && std::io::stderr().is_terminal()).then(|| progress_bar(&args));
    let started = std::time::Instant::now();
    let mut progress = |p: sekisho_replay::Progress| {
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
    if args.explain && ruleset.is_none() {
        eprintln!("sekisho replay: note: --explain without --policy or --rules: there are no rules to explain");
    }
    let stdout = std::io::stdout();
    let mut explain = std::io::BufWriter::new(stdout.lock());
    let result = sekisho_replay::run(&opts, ruleset, stop.as_deref(), &mut progress, &mut explain);
    let _ = std::io::Write::flush(&mut explain);
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let interrupted = stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed));
    report(result, interrupted, &out.dir)
}

/// Validates the policy or rule files (their diagnostics are worth having before anything is
/// replayed): errors always; warnings in full only when there are few (a large ruleset such
/// as ET Open has thousands, which `sekisho check` lists; the load report names every rule
/// that is not evaluated). Invalid content is exit status 1.
fn check_rules(args: &Args) -> Result<Option<sekisho_policy::Checked>, ExitCode> {
    let checked = match (&args.policy, args.rules.is_empty()) {
        (Some(p), _) => sekisho_policy::Policy::check_file(p, &Default::default()),
        (None, false) => {
            sekisho_policy::Policy::check_rules_files(&args.rules, &Default::default())
        }
        (None, true) => return Ok(None),
    };
    let warnings = checked
        .diagnostics
        .iter()
        .filter(|d| d.severity != sekisho_diag::Severity::Error)
        .count();
    for d in &checked.diagnostics {
        if d.severity == sekisho_diag::Severity::Error || warnings <= MAX_LISTED {
            eprint!("{}", d.render());
        }
    }
    if warnings > MAX_LISTED {
        eprintln!(
            "sekisho replay: {warnings} warnings about the policy/rules not shown; `sekisho check` lists them"
        );
    }
    if !checked.is_valid() {
        eprintln!("sekisho replay: error: the policy/rules are invalid (see above)");
        return Err(ExitCode::from(1));
    }
    Ok(Some(checked))
}

/// Every setting, parsed once: mode, explain, checksums, midstream, the policy's engine
/// profile, then each `--set` in order (a bad one is exit status 2).
fn settings(args: &Args, checked: Option<&sekisho_policy::Checked>) -> Result<Settings, ExitCode> {
    let mut settings = Settings::new(match args.mode {
        ModeArg::Inline => Mode::Inline,
        ModeArg::Monitor => Mode::Monitor,
    });
    settings.explain = args.explain;
    settings.checksums(args.checksum_validation == ChecksumArg::All);
    settings.engine.midstream = args.midstream;
    if let Some(c) = checked {
        settings.apply_policy(&c.policy);
    }
    for s in &args.sets {
        if let Err(e) = settings.set_text(s) {
            eprintln!("sekisho replay: error: {e}");
            return Err(ExitCode::from(2));
        }
    }
    Ok(settings)
}

/// The progress bar: input bytes read of the captures' total size, packets per second.
fn progress_bar(args: &Args) -> indicatif::ProgressBar {
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
}

/// The closing lines on stderr and the exit status of a finished replay.
fn report(
    result: Result<sekisho_replay::ReplayReport, ReplayError>,
    interrupted: bool,
    out_dir: &std::path::Path,
) -> ExitCode {
    match result {
        Ok(report) => {
            for e in &report.input_errors {
                eprintln!("sekisho replay: error: {e}");
            }
            if interrupted {
                eprintln!("sekisho replay: interrupted; logs flushed");
            }
            if report.transmitted > 0 {
                eprintln!(
                    "sekisho replay: {} packet{} a live firewall would have sent (reject): {}",
                    report.transmitted,
                    if report.transmitted == 1 { "" } else { "s" },
                    out_dir.join(sekisho_replay::TRANSMITTED_PCAP).display()
                );
            }
            eprintln!("{}", report.summary_line());
            if report.input_errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
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

/// Where and how logs are written, after applying flag > policy > built-in default.
#[derive(Debug, Clone, PartialEq, Eq)]
struct OutputSettings {
    dir: PathBuf,
    format: LogFormat,
    firewall_name: String,
    availability_zone: String,
}

impl OutputSettings {
    /// The one place the policy's log vocabulary maps onto the log writer's configuration.
    fn eve_format(&self) -> sekisho_eve::LogFormat {
        match self.format {
            LogFormat::Eve => sekisho_eve::LogFormat::Eve,
            LogFormat::Nfw => sekisho_eve::LogFormat::Nfw {
                firewall_name: self.firewall_name.clone(),
                availability_zone: self.availability_zone.clone(),
            },
        }
    }
}

/// Resolves the output settings: a flag wins, then the policy's value, then the built-in
/// default. The policy's `logging.dir` is already joined to the policy file's directory.
fn output_settings(args: &Args, policy: Option<&sekisho_policy::Policy>) -> OutputSettings {
    OutputSettings {
        dir: args
            .out
            .clone()
            .or_else(|| policy.and_then(|p| p.logging.dir.clone()))
            .unwrap_or_else(|| PathBuf::from("sekisho-out")),
        format: args
            .log_format
            .or(policy.map(|p| p.logging.format))
            .unwrap_or_default(),
        firewall_name: args
            .firewall_name
            .clone()
            .or_else(|| policy.map(|p| p.name.clone()))
            .unwrap_or_else(|| "sekisho".into()),
        availability_zone: args
            .availability_zone
            .clone()
            .or_else(|| policy.and_then(|p| p.availability_zone.clone()))
            .unwrap_or_else(|| "local".into()),
    }
}

/// Ok when `path` can be opened for reading and is not a directory.
fn readable_file(path: &std::path::Path) -> std::io::Result<()> {
    let meta = std::fs::File::open(path)?.metadata()?;
    if meta.is_dir() {
        return Err(std::io::Error::other("is a directory"));
    }
    Ok(())
}

/// False (after saying why) when a drop or reject rule could not be loaded and
/// `--allow-unsupported` was not given: such a policy fails closed at load.
fn blocking_rules_loaded(rs: &RuleSet, allow: bool) -> bool {
    let blocking: Vec<&sekisho_detect::NotLoaded> =
        rs.not_loaded().iter().filter(|n| n.blocks).collect();
    if blocking.is_empty() {
        return true;
    }
    let sids: Vec<String> = blocking.iter().take(8).map(|n| n.sid.to_string()).collect();
    let more = if blocking.len() > 8 {
        format!(" and {} more", blocking.len() - 8)
    } else {
        String::new()
    };
    if allow {
        eprintln!(
            "sekisho replay: warning: {} drop/reject rule{} left out (--allow-unsupported): sid {}{more}",
            blocking.len(),
            if blocking.len() == 1 { "" } else { "s" },
            sids.join(", ")
        );
        return true;
    }
    eprintln!(
        "sekisho replay: error: {} drop/reject rule{} cannot be evaluated (sid {}{more}), so what {} written to stop would pass\n  hint: change or remove {}, or run with --allow-unsupported to leave {} out",
        blocking.len(),
        if blocking.len() == 1 { "" } else { "s" },
        sids.join(", "),
        if blocking.len() == 1 { "it was" } else { "they were" },
        if blocking.len() == 1 { "it" } else { "them" },
        if blocking.len() == 1 { "it" } else { "them" },
    );
    false
}

/// Most not-loaded rules listed on stderr; beyond that they go to `DIR/rules-not-loaded.txt`.
const MAX_LISTED: usize = 20;

/// Prints the load report: how many rules compiled, in what order semantics, and every rule
/// that was not loaded with the keyword responsible (once each; a long list goes to a file
/// in the output directory, with a per-keyword summary on stderr).
fn report_load(rs: &RuleSet, policy: &sekisho_policy::Policy, out_dir: &std::path::Path) {
    let st = rs.load_stats();
    let defaults: Vec<&str> = rs.defaults().iter().map(|d| d.name()).collect();
    eprintln!(
        "sekisho replay: rules: {} loaded of {} in {:.1} ms (engine_profile {}, rule_order {}{}); prefilter: {} patterns, {} rules without a fast pattern",
        st.loaded,
        st.rules,
        st.compile_secs * 1e3,
        policy.engine_profile.as_str(),
        policy.rule_order.as_str(),
        if defaults.is_empty() {
            String::new()
        } else {
            format!(", default actions {}", defaults.join(" "))
        },
        st.prefilter.patterns,
        st.prefilter.always,
    );
    let nl = rs.not_loaded();
    if nl.is_empty() {
        return;
    }
    let line = |n: &sekisho_detect::NotLoaded| {
        let gid = if n.gid == 1 {
            String::new()
        } else {
            format!("{}:", n.gid)
        };
        format!(
            "sid {gid}{} ({}): {}: {}",
            n.sid, n.group, n.keyword, n.reason
        )
    };
    eprintln!(
        "sekisho replay: warning: {} rule{} not loaded (they use something the engine cannot evaluate yet):",
        nl.len(),
        if nl.len() == 1 { "" } else { "s" }
    );
    if nl.len() <= MAX_LISTED {
        for n in nl {
            eprintln!("  {}", line(n));
        }
        return;
    }
    let mut by_kw: std::collections::BTreeMap<&str, usize> = Default::default();
    for n in nl {
        *by_kw.entry(n.keyword.as_str()).or_default() += 1;
    }
    let mut counts: Vec<(&str, usize)> = by_kw.into_iter().collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    for (kw, n) in counts.iter().take(12) {
        eprintln!("  {n:>6}  {kw}");
    }
    if counts.len() > 12 {
        eprintln!("  ({} more keywords)", counts.len() - 12);
    }
    let path = out_dir.join("rules-not-loaded.txt");
    let text: String = nl.iter().map(|n| line(n) + "\n").collect();
    match std::fs::create_dir_all(out_dir).and_then(|()| std::fs::write(&path, text)) {
        Ok(()) => eprintln!("  every rule with its sid and keyword: {}", path.display()),
        Err(e) => eprintln!("  (cannot write {}: {e})", path.display()),
    }
}
