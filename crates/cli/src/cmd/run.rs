//! `sekisho run`: wiring between the command line, the sensor's settings and the NFQUEUE driver
//! (`sekisho_nfqueue`: workers, signals (SIGHUP reload, SIGTERM/SIGINT stop) and the metrics
//! server); what a reload loads is built here ([`Reload`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::builder::TypedValueParser;
use sekisho_eve::LogConfig;
use sekisho_nfqueue::{Control, Options};
use sekisho_policy::LogFormat;
use sekisho_sensor::{Mode, RuleSet, Settings};

use super::replay::{ChecksumArg, ModeArg};

const LONG_ABOUT: &str = "\
Run sekisho inline: packets come from Linux NFQUEUE, go through the same sensor as `replay`,
and get a verdict each (accept, or drop for drop, a flow drop and reject). A reject's answer
(TCP RST, ICMP port unreachable) is sent from a raw socket, marked 0x5e4150.

The kernel must send packets to the queue, e.g. on a gateway:
  iptables -A FORWARD -j NFQUEUE --queue-num 0
  iptables -A FORWARD -j NFQUEUE --queue-balance 0:3      (with --queues 0:3)
  nft add rule inet filter forward queue num 0-3 fanout   (nftables)
docs/inline.md has gateway (FORWARD) and single-host (OUTPUT) set-ups and a systemd unit.

One worker thread per queue, every worker sharing one compiled rule set; the kernel's queue
balancing hashes both directions of a flow alike, so a flow stays on one worker.

Queue full (the engine fell behind): --fail-closed (default) lets the kernel drop the packets,
--fail-open lets it accept them uninspected. The choice is logged at start and exported as the
sekisho_queue_fail_open gauge; the kernel's drops are sekisho_queue_dropped_total.

Signals: SIGHUP (or `sekisho reload --pid-file FILE` with --pid-file FILE) reloads the policy: the new rules are compiled beside the running ones and
swapped in only when they load without error, with the policy's exception policies
(engine_profile and rate_limits keep their values from start: a warning says when they
changed); a bad policy is refused with its diagnostics on
stderr and counted (sekisho_reload_failures_total), the old rules keep running. Flows and
their state survive a reload. SIGTERM/SIGINT stop: every flow ends (flow records are logged),
logs are flushed, the queues are unbound.

Rate limits: one table per name, shared by every worker (queue). SIGUSR1 writes each table to
DIR/ratelimit/NAME in the /proc/net/ipt_hashlimit format (also at exit), which
`sekisho ratelimit show NAME --out DIR --pid-file FILE` asks for and prints; --metrics has
each table's entries and counters.

Logs (--out DIR; format per --log-format, else the policy's logging.format) are flushed every
--flush-interval and at exit. --metrics ADDR serves Prometheus text (packets, bytes, verdicts
by kind, flows, alerts, queue drops, reloads and the last result).

Flows decided whole (--pass-mark, --drop-mark): the packet that passes or drops its whole flow
goes back to the kernel marked, and rules before the NFQUEUE rule keep the rest of the flow
out of the queue, e.g. with --pass-mark 0x1/0x3 --drop-mark 0x2/0x3:
  iptables -A FORWARD -m mark ! --mark 0/0x3 -j CONNMARK --save-mark --mask 0x3
  iptables -A FORWARD -m connmark --mark 0x1/0x3 -j ACCEPT
  iptables -A FORWARD -m connmark --mark 0x2/0x3 -j DROP
  iptables -A FORWARD -j NFQUEUE --queue-num 0

Exit status:
  0  stopped by SIGTERM/SIGINT
  1  the policy is invalid, a worker failed, or a queue could not be opened
  2  usage or configuration error

Examples:
  sekisho run --policy examples/smtp/recipients-strict.yaml --queue 0 --out /var/log/sekisho
  sekisho run --policy policy.yaml --queues 0:3 --fail-open --metrics 127.0.0.1:9101 --user nobody";

/// Arguments of `sekisho run`.
#[derive(clap::Args)]
#[command(after_long_help = LONG_ABOUT)]
pub struct Args {
    /// Firewall policy file (engine_profile, rule_order, default_actions, logging apply).
    #[arg(long, value_name = "FILE")]
    pub policy: PathBuf,
    /// Queue number.
    #[arg(long, value_name = "N", conflicts_with = "queues", default_value = "0")]
    pub queue: u16,
    /// Queue numbers N to M (inclusive), one worker thread each (iptables --queue-balance N:M).
    #[arg(long, value_name = "N:M")]
    pub queues: Option<String>,
    /// When the queue is full, the kernel accepts packets uninspected.
    #[arg(long, conflicts_with = "fail_closed")]
    pub fail_open: bool,
    /// When the queue is full, the kernel drops packets (the default).
    #[arg(long)]
    pub fail_closed: bool,
    /// Kernel queue length per queue (packets waiting for a verdict).
    #[arg(long, value_name = "N", default_value = "4096")]
    pub queue_maxlen: u32,
    /// Do not ask the kernel for GSO super-packets whole (it segments them first).
    #[arg(long)]
    pub no_gso: bool,
    /// Output directory (created if missing) [default: the policy's logging.dir, else
    /// sekisho-out].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Log format: eve or nfw [default: the policy's logging.format, else eve].
    #[arg(
        long,
        value_name = "FORMAT",
        value_parser = clap::builder::PossibleValuesParser::new(LogFormat::NAMES)
            .try_map(|s| s.parse::<LogFormat>())
    )]
    pub log_format: Option<LogFormat>,
    /// Also write decoder, stream and app-layer `anomaly` records to eve.json (TLS:
    /// `SNI_ABSENT`, `ENCRYPTED_CLIENT_HELLO`, `SNI_CERT_MISMATCH`: where a name list is
    /// blind; docs/names.md).
    #[arg(long)]
    pub anomalies: bool,
    /// Seconds between log flushes.
    #[arg(long, value_name = "SECS", default_value = "1")]
    pub flush_interval: f64,
    /// Serve Prometheus metrics on ADDR (e.g. 127.0.0.1:9101).
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
    /// Verdict mode (monitor: every packet is accepted, drops are only logged).
    #[arg(long, value_enum, default_value = "inline")]
    pub mode: ModeArg,
    /// Checksum validation (none by default: packets from the local stack and GSO
    /// super-packets carry checksums the NIC would fill in).
    #[arg(long, value_enum, default_value = "none")]
    pub checksum_validation: ChecksumArg,
    /// Engine setting override, KEY=VALUE; repeatable (keys: `sekisho replay --help`).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// After opening the queues, the raw socket and the logs, switch to this user (and its
    /// primary group), keeping only CAP_NET_ADMIN (verdicts) and CAP_NET_RAW.
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Run even when a drop or reject rule cannot be evaluated (it is left out).
    #[arg(long)]
    pub allow_unsupported: bool,
    /// Write the process id to this file once every queue is bound (for `sekisho reload`);
    /// removed at exit.
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Write `ready` to this file once every queue is bound.
    #[arg(long, value_name = "FILE")]
    pub ready_file: Option<PathBuf>,
    /// Take flows that are passed whole (a `pass` rule acting on the flow, an exception
    /// policy `pass-flow`/`bypass`) out of the queue: their deciding packet goes back to the
    /// kernel (NF_REPEAT) with this mark, for rules that copy it to the connection and accept
    /// the connection before the NFQUEUE rule (docs/inline.md, "Flows decided whole").
    #[arg(long, value_name = "VALUE[/MASK]", value_parser = sekisho_nfqueue::Mark::parse)]
    pub pass_mark: Option<sekisho_nfqueue::Mark>,
    /// The same for flows dropped whole (flow drops, rejects of the flow): the rules drop
    /// the connection before the NFQUEUE rule.
    #[arg(long, value_name = "VALUE[/MASK]", value_parser = sekisho_nfqueue::Mark::parse)]
    pub drop_mark: Option<sekisho_nfqueue::Mark>,
    /// Most accepted packets answered by one batch verdict (NFQNL_MSG_VERDICT_BATCH); a batch
    /// is sent as soon as no packet waits, so it never holds an idle flow. 1: one verdict per
    /// packet.
    #[arg(long, value_name = "N", default_value = "16", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub verdict_batch: u32,
    /// Test-only: while FILE exists the workers stop reading their queues (a stalled engine).
    #[arg(long, value_name = "FILE", hide = true)]
    pub test_stall_file: Option<PathBuf>,
}

/// Loads and compiles the policy; `Err` carries the diagnostics text.
fn load(path: &Path, settings: &Settings, allow_unsupported: bool) -> Result<Arc<RuleSet>, String> {
    let checked = sekisho_policy::Policy::check_file(path, &Default::default());
    let mut text = String::new();
    for d in checked.diagnostics.iter().filter(|d| d.is_error()) {
        text.push_str(&d.render());
    }
    if !checked.is_valid() {
        return Err(format!("{}: the policy is invalid\n{text}", path.display()));
    }
    let rs = RuleSet::from_policy(&checked.policy, settings.compile_options());
    let blocking: Vec<String> = rs
        .not_loaded()
        .iter()
        .filter(|n| n.blocks)
        .map(|n| format!("sid {} ({})", n.sid, n.keyword))
        .collect();
    if !blocking.is_empty() && !allow_unsupported {
        return Err(format!(
            "{}: {} drop/reject rule(s) cannot be evaluated: {}\n  hint: change or remove them, or run with --allow-unsupported",
            path.display(),
            blocking.len(),
            blocking.join(", ")
        ));
    }
    let st = rs.load_stats();
    eprintln!(
        "sekisho run: rules: {} loaded of {} in {:.1} ms ({} not loaded)",
        st.loaded,
        st.rules,
        st.compile_secs * 1e3,
        rs.not_loaded().len()
    );
    Ok(Arc::new(rs))
}

/// Runs `sekisho run`: checks the flags, loads the policy, hands the queues to the NFQUEUE
/// driver and reports how the run ended.
pub fn run(args: Args) -> ExitCode {
    match start(&args) {
        Ok(code) | Err(code) => code,
    }
}

/// The body of [`run`]; `Err` carries the exit status of a run that could not start.
fn start(args: &Args) -> Result<ExitCode, ExitCode> {
    let (queues, run_as) = check_flags(args)?;
    let loaded = load_policy(args)?;
    let opts = options(args, queues, &loaded)?;
    let control = Control::new(Some(loaded.rules));
    if let Some(addr) = args.metrics {
        match sekisho_nfqueue::serve_metrics(addr, Arc::clone(&control)) {
            Ok(a) => eprintln!("sekisho run: metrics on http://{a}/metrics"),
            Err(e) => {
                eprintln!("sekisho run: error: --metrics {addr}: {e}");
                return Err(ExitCode::from(2));
            }
        }
    }
    let reload = Reload {
        base: loaded.base,
        sets: args.sets.clone(),
        running: loaded.settings,
    };
    let (policy, allow_unsupported) = (args.policy.clone(), args.allow_unsupported);
    if let Err(e) = sekisho_nfqueue::handle_signals(
        Arc::clone(&control),
        args.policy.clone(),
        opts.out_dir.clone(),
        move || reload.load(&policy, allow_unsupported),
    ) {
        eprintln!("sekisho run: error: cannot install signal handlers: {e}");
        return Err(ExitCode::from(2));
    }
    let mut drop_err = None;
    let mut ready = || {
        if let Err(e) = on_ready(args, &opts, run_as) {
            drop_err = Some(e);
            control.stop();
        }
    };
    let result = sekisho_nfqueue::run(&opts, &control, &mut ready);
    Ok(finish(args, &control, &opts, drop_err, result))
}

/// The flags checked before the policy is read: the queue numbers and the `--user` to run as.
fn check_flags(args: &Args) -> Result<(Vec<u16>, Option<sekisho_dnsfw::privs::RunAs>), ExitCode> {
    let queues = match &args.queues {
        Some(q) => match sekisho_nfqueue::parse_queues(q) {
            Ok(q) => q,
            Err(e) => {
                eprintln!("sekisho run: error: --queues {e}");
                return Err(ExitCode::from(2));
            }
        },
        None => vec![args.queue],
    };
    if !(args.flush_interval > 0.0 && args.flush_interval < 86_400.0) {
        eprintln!("sekisho run: error: --flush-interval must be between 0 and 86400 seconds");
        return Err(ExitCode::from(2));
    }
    let run_as = match &args.user {
        Some(u) => match sekisho_dnsfw::privs::lookup(u, None) {
            Ok(r) => Some(r),
            Err(e) => {
                eprintln!("sekisho run: error: --user: {e}");
                return Err(ExitCode::from(2));
            }
        },
        None => None,
    };
    Ok((queues, run_as))
}

/// The policy with the settings and rules built from it at start.
struct Loaded {
    /// The checked policy (its logging keys and name are read after the rules).
    policy: sekisho_policy::Policy,
    /// The settings from the flags alone: what a reload starts from.
    base: Settings,
    /// The settings of the run: flags, then the policy, then `--set`.
    settings: Settings,
    /// The compiled rules.
    rules: Arc<RuleSet>,
}

/// Checks the policy (its errors on stderr), builds the settings (flags, policy, `--set`) and
/// compiles the rules.
fn load_policy(args: &Args) -> Result<Loaded, ExitCode> {
    let checked = sekisho_policy::Policy::check_file(&args.policy, &Default::default());
    for d in &checked.diagnostics {
        if d.is_error() {
            eprint!("{}", d.render());
        }
    }
    if !checked.is_valid() {
        eprintln!("sekisho run: error: the policy is invalid (see above)");
        return Err(ExitCode::from(1));
    }
    let policy = checked.policy;
    let mut settings = Settings::new(match args.mode {
        ModeArg::Inline => Mode::Inline,
        ModeArg::Monitor => Mode::Monitor,
    });
    settings.checksums(args.checksum_validation == ChecksumArg::All);
    // What a reload starts from: the flags, before the policy and --set.
    let base = settings.clone();
    settings.apply_policy(&policy);
    for s in &args.sets {
        if let Err(e) = settings.set_text(s) {
            eprintln!("sekisho run: error: {e}");
            return Err(ExitCode::from(2));
        }
    }
    let rules = match load(&args.policy, &settings, args.allow_unsupported) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sekisho run: error: {e}");
            return Err(ExitCode::from(1));
        }
    };
    Ok(Loaded {
        policy,
        base,
        settings,
        rules,
    })
}

/// The driver's options: the output directory (created here), the log format and the flags
/// passed through; checks that `--pass-mark` and `--drop-mark` can be told apart.
fn options(args: &Args, queues: Vec<u16>, loaded: &Loaded) -> Result<Options, ExitCode> {
    let policy = &loaded.policy;
    let out_dir = args
        .out
        .clone()
        .or_else(|| policy.logging.dir.clone())
        .unwrap_or_else(|| PathBuf::from("sekisho-out"));
    if let Err(e) = std::fs::create_dir_all(&out_dir) {
        eprintln!(
            "sekisho run: error: cannot create output directory {}: {e}",
            out_dir.display()
        );
        return Err(ExitCode::from(2));
    }
    let format = match args.log_format.unwrap_or(policy.logging.format) {
        LogFormat::Eve => sekisho_eve::LogFormat::Eve,
        LogFormat::Nfw => sekisho_eve::LogFormat::Nfw {
            firewall_name: policy.name.clone(),
            availability_zone: policy
                .availability_zone
                .clone()
                .unwrap_or_else(|| "local".into()),
        },
    };
    let opts = Options {
        queues,
        fail_open: args.fail_open,
        gso: !args.no_gso,
        queue_maxlen: args.queue_maxlen,
        out_dir,
        log: LogConfig {
            format,
            anomaly_decode: args.anomalies,
            anomaly_stream: args.anomalies,
            anomaly_app: args.anomalies,
            ..LogConfig::default()
        },
        settings: loaded.settings.clone(),
        flush_interval: Duration::from_secs_f64(args.flush_interval),
        stall_file: args.test_stall_file.clone(),
        pass_mark: args.pass_mark,
        verdict_batch: args.verdict_batch,
        drop_mark: args.drop_mark,
    };
    if let (Some(p), Some(d)) = (args.pass_mark, args.drop_mark) {
        if p.value & d.mask == d.value || d.value & p.mask == p.value {
            eprintln!(
                "sekisho run: error: --pass-mark {p} and --drop-mark {d} must be told apart (one carries the other)"
            );
            return Err(ExitCode::from(2));
        }
    }
    Ok(opts)
}

/// Once every queue is bound: writes the pid and ready files (while still root: the files'
/// directory may be root's), drops to `--user` and announces the run. `Err` when the
/// privileges cannot be dropped (the run must then stop).
fn on_ready(
    args: &Args,
    opts: &Options,
    run_as: Option<sekisho_dnsfw::privs::RunAs>,
) -> std::io::Result<()> {
    if let Some(p) = &args.pid_file {
        if let Err(e) = std::fs::write(p, format!("{}\n", std::process::id())) {
            eprintln!("sekisho run: warning: {}: {e}", p.display());
        }
    }
    if let Some(p) = &args.ready_file {
        if let Err(e) = std::fs::write(p, "ready\n") {
            eprintln!("sekisho run: warning: {}: {e}", p.display());
        }
    }
    if let Some(to) = run_as {
        sekisho_nfqueue::privs::drop_to(to.uid, to.gid)?;
    }
    let queues = &opts.queues;
    eprintln!(
        "sekisho run: inline on queue{} {} ({}; queue-maxlen {}){}",
        if queues.len() == 1 { "" } else { "s" },
        queues
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(","),
        if args.fail_open {
            "fail-open: a full queue accepts packets uninspected"
        } else {
            "fail-closed: a full queue drops packets"
        },
        args.queue_maxlen,
        run_as
            .map(|r| format!(", running as uid {} with CAP_NET_ADMIN, CAP_NET_RAW", r.uid))
            .unwrap_or_default()
    );
    Ok(())
}

/// After the driver returned: writes the rate-limit tables, removes the pid file and prints
/// how the run ended; the exit status.
fn finish(
    args: &Args,
    control: &Control,
    opts: &Options,
    drop_err: Option<std::io::Error>,
    result: Result<sekisho_nfqueue::RunReport, sekisho_nfqueue::RunError>,
) -> ExitCode {
    // The tables as the run left them, as `replay --out` writes them at the end of input.
    if let Err(e) = control.write_rate_limits(&opts.out_dir) {
        eprintln!("sekisho run: error: writing the rate-limit tables: {e}");
    }
    if let Some(p) = &args.pid_file {
        let _ = std::fs::remove_file(p);
    }
    if let Some(e) = drop_err {
        eprintln!("sekisho run: error: --user: {e}");
        return ExitCode::from(1);
    }
    match result {
        Ok(r) => {
            for e in &r.errors {
                eprintln!("sekisho run: error: {e}");
            }
            let m = &control.metrics;
            let get =
                |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
            eprintln!(
                "sekisho run: stopped; packets={} drops={} transmitted={} alerts={} reloads={} reload_failures={}",
                r.packets,
                r.drops,
                r.transmitted,
                r.alerts,
                get(&m.reloads_ok),
                get(&m.reloads_failed)
            );
            if r.errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("sekisho run: error: {e}");
            ExitCode::from(1)
        }
    }
}

/// What a reload rebuilds the settings from.
struct Reload {
    /// The settings from the flags alone.
    base: Settings,
    /// The `--set` overrides, applied after the policy as at start.
    sets: Vec<String>,
    /// The settings the run started with.
    running: Settings,
}

impl Reload {
    /// The policy's settings and rules, built beside the running ones. Settings that cannot
    /// change while running (`Sensor::apply_live_settings` takes the exception policies
    /// only) are reported when the new policy changes them.
    fn load(
        &self,
        path: &Path,
        allow_unsupported: bool,
    ) -> Result<(Arc<RuleSet>, Settings), String> {
        let checked = sekisho_policy::Policy::check_file(path, &Default::default());
        let mut settings = self.base.clone();
        if checked.is_valid() {
            settings.apply_policy(&checked.policy);
        }
        for s in &self.sets {
            settings.set_text(s).map_err(|e| e.to_string())?;
        }
        let rules = load(path, &settings, allow_unsupported)?;
        let mut fixed = Vec::new();
        if format!("{:?}", settings.rate_limits) != format!("{:?}", self.running.rate_limits) {
            fixed.push("rate_limits");
        }
        if settings.engine.app_layer.server_greeting_probe
            != self.running.engine.app_layer.server_greeting_probe
        {
            fixed.push("engine_profile");
        }
        if !fixed.is_empty() {
            eprintln!(
                "sekisho run: warning: reload: {} changed in {}: kept as at start (restart sekisho to apply)",
                fixed.join(" and "),
                path.display()
            );
        }
        Ok((rules, settings))
    }
}
