//! The replay driver: captures → [`sekisho_engine::Engine`] → [`sekisho_eve::LogSink`].
//!
//! This is the I/O shell around the sans-I/O engine used by `sekisho replay` and by the
//! conformance runner: it reads packets in timestamp order, feeds them with their capture
//! time, drains the engine's events into the log sink after every packet, and at the end of
//! input ends all flows (`reason: shutdown`) and writes the closing `stats` record.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use sekisho_detect::{DetectStats, Detector, Output};
use sekisho_engine::decode::PacketDecoder;
use sekisho_engine::{ChecksumMode, Engine, EngineConfig, Event, Inspector, LinkType, Timestamp};
use sekisho_eve::{LogConfig, LogSink};
use std::io::Write;

use crate::{CaptureError, MergedCaptures, PacketTime};

/// What to replay and how.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Capture files, merged in timestamp order.
    pub pcaps: Vec<PathBuf>,
    /// Directory the logs are written to (must exist).
    pub out_dir: PathBuf,
    /// Which logs to write.
    pub log: LogConfig,
    /// Inline mode: verdicts are applied (dropped packets do not reach the stream).
    pub inline: bool,
    /// Validate checksums.
    pub checksums: bool,
    /// Track TCP sessions picked up mid-stream.
    pub midstream: bool,
    /// Only read and decode with the engine's decoder (benchmark ceiling): no flows, no logs.
    pub decode_only: bool,
    /// `--set KEY=VALUE` overrides (see [`engine_config`]).
    pub sets: Vec<(String, String)>,
}

/// Progress snapshot handed to the progress callback.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    /// Bytes of the input files read from disk so far.
    pub bytes_read: u64,
    /// Packets processed so far.
    pub packets: u64,
}

/// What a replay did.
#[derive(Debug, Clone, Default)]
pub struct ReplayReport {
    /// Packets processed.
    pub packets: u64,
    /// Captured bytes of those packets.
    pub bytes: u64,
    /// Flows ended (each logged).
    pub flows: u64,
    /// Alerts logged.
    pub alerts: u64,
    /// Packets dropped (inline verdict Drop).
    pub drops: u64,
    /// Wall-clock seconds spent.
    pub wall_secs: f64,
    /// Capture errors met (the packets before each error were processed).
    pub input_errors: Vec<String>,
    /// Stopped early by a signal.
    pub interrupted: bool,
}

impl ReplayReport {
    /// Million packets per wall second.
    pub fn mpps(&self) -> f64 {
        self.packets as f64 / self.wall_secs.max(1e-9) / 1e6
    }
    /// Gigabits per wall second (captured bytes × 8).
    pub fn gbps(&self) -> f64 {
        self.bytes as f64 * 8.0 / self.wall_secs.max(1e-9) / 1e9
    }
    /// `packets=N bytes=N flows=N alerts=N drops=N wall=1.234s 1.23 Mpps 4.56 Gbit/s`.
    pub fn summary_line(&self) -> String {
        format!(
            "packets={} bytes={} flows={} alerts={} drops={} wall={:.3}s {:.2} Mpps {:.2} Gbit/s",
            self.packets,
            self.bytes,
            self.flows,
            self.alerts,
            self.drops,
            self.wall_secs,
            self.mpps(),
            self.gbps()
        )
    }
}

/// Why a replay could not run at all.
#[derive(Debug)]
pub enum ReplayError {
    /// A capture could not be opened (missing file, not a capture).
    Input(CaptureError),
    /// Bad configuration (unknown `--set` key, bad value).
    Config(String),
    /// Logs could not be written.
    Output(std::io::Error),
}

impl std::fmt::Display for ReplayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplayError::Input(e) => write!(f, "{e}"),
            ReplayError::Config(m) => write!(f, "{m}"),
            ReplayError::Output(e) => write!(f, "writing logs: {e}"),
        }
    }
}

impl std::error::Error for ReplayError {}

/// Builds the engine configuration from the options and `--set` overrides.
///
/// Keys: `flow-timeouts.{default,tcp,udp,icmp}.{new,established,closed}` (seconds),
/// `flow.memcap` (bytes), `flow.max-flows`, `stream.midstream` (true/false),
/// `decoder.recursion-level.use-for-tracking`, `decoder.vxlan.enabled`, `app-layer.enabled`,
/// `app-layer.smtp.server-banner` (true/false; false = Suricata 7 / AWS Network Firewall SMTP
/// detection, from the client's first command only).
pub fn engine_config(opts: &ReplayOptions) -> Result<EngineConfig, String> {
    let mut cfg = EngineConfig {
        midstream: opts.midstream,
        inline: opts.inline,
        checksums: if opts.checksums {
            ChecksumMode::Validate
        } else {
            ChecksumMode::None
        },
        ..EngineConfig::default()
    };
    for (k, v) in &opts.sets {
        let num = || {
            v.parse::<u64>()
                .map_err(|_| format!("--set {k}={v}: expected a number"))
        };
        let parts: Vec<&str> = k.split('.').collect();
        match parts.as_slice() {
            ["flow-timeouts", class, state] => {
                let t = match *class {
                    "default" => &mut cfg.timeouts.default,
                    "tcp" => &mut cfg.timeouts.tcp,
                    "udp" => &mut cfg.timeouts.udp,
                    "icmp" => &mut cfg.timeouts.icmp,
                    _ => return Err(format!("--set {k}: unknown protocol class `{class}` (default, tcp, udp, icmp)")),
                };
                match *state {
                    "new" => t.new = num()?,
                    "established" => t.established = num()?,
                    "closed" => t.closed = num()?,
                    _ => return Err(format!("--set {k}: unknown state `{state}` (new, established, closed)")),
                }
            }
            ["decoder", "recursion-level", "use-for-tracking"] => {
                cfg.recursion_tracking = match v.as_str() {
                    "true" | "yes" | "1" => true,
                    "false" | "no" | "0" => false,
                    _ => return Err(format!("--set {k}={v}: expected true or false")),
                }
            }
            ["decoder", "vxlan", "enabled"] => {
                cfg.vxlan = match v.as_str() {
                    "true" | "yes" | "1" => true,
                    "false" | "no" | "0" => false,
                    _ => return Err(format!("--set {k}={v}: expected true or false")),
                }
            }
            ["app-layer", "smtp", "server-banner"] => {
                cfg.app_layer.server_greeting_probe = match v.as_str() {
                    "true" | "yes" | "1" => true,
                    "false" | "no" | "0" => false,
                    _ => return Err(format!("--set {k}={v}: expected true or false")),
                }
            }
            ["app-layer", "enabled"] => {
                cfg.app_layer.enabled = match v.as_str() {
                    "true" | "yes" | "1" => true,
                    "false" | "no" | "0" => false,
                    _ => return Err(format!("--set {k}={v}: expected true or false")),
                }
            }
            ["flow", "memcap"] => cfg.flow_memcap = num()? as usize,
            ["flow", "max-flows"] => cfg.max_flows = Some(num()? as usize),
            ["stream", "midstream"] => {
                cfg.midstream = match v.as_str() {
                    "true" | "yes" | "1" => true,
                    "false" | "no" | "0" => false,
                    _ => return Err(format!("--set {k}={v}: expected true or false")),
                }
            }
            _ => {
                return Err(format!(
                    "--set {k}: unknown key (known: flow-timeouts.<class>.<state>, flow.memcap, flow.max-flows, stream.midstream, decoder.recursion-level.use-for-tracking, decoder.vxlan.enabled, app-layer.enabled, app-layer.smtp.server-banner)"
                ))
            }
        }
    }
    Ok(cfg)
}

fn ts_of(t: PacketTime) -> Timestamp {
    Timestamp::from_secs_nanos(t.sec, u64::from(t.nsec))
}

/// Replays the captures with no inspector (flow tracking, reassembly, logs).
pub fn run(
    opts: &ReplayOptions,
    stop: Option<&AtomicBool>,
    progress: &mut dyn FnMut(Progress),
) -> Result<ReplayReport, ReplayError> {
    run_with(opts, (), stop, progress, |_| ()).map(|(r, _)| r)
}

/// Replays the captures through an engine built around `inspector` (app-layer consumers,
/// tests collecting stream bytes); `finish` extracts what the caller needs from the inspector
/// once the replay ended (the engine owns it while running).
pub fn run_with<I: Inspector, R>(
    opts: &ReplayOptions,
    inspector: I,
    stop: Option<&AtomicBool>,
    progress: &mut dyn FnMut(Progress),
    finish: impl FnOnce(&I) -> R,
) -> Result<(ReplayReport, R), ReplayError> {
    run_core(opts, inspector, stop, progress, finish, |_, _| Ok(()))
}

/// Replays the captures through an engine whose inspector is the detector: alerts and drops
/// go to the log sink after every packet (before the packet's transaction and flow records,
/// as Suricata orders them), `--explain` lines to `explain`. Returns the report and the
/// detector's counters.
pub fn run_detect(
    opts: &ReplayOptions,
    detector: Detector,
    stop: Option<&AtomicBool>,
    progress: &mut dyn FnMut(Progress),
    explain: &mut dyn Write,
) -> Result<(ReplayReport, DetectStats), ReplayError> {
    let mut explain_err: Option<std::io::Error> = None;
    let r = run_core(
        opts,
        detector,
        stop,
        progress,
        |d: &Detector| d.stats(),
        |d: &mut Detector, sink: &mut LogSink| {
            while let Some(o) = d.poll_output() {
                match o {
                    Output::Alert(a) => sink.alert_record(&a)?,
                    Output::Drop(x) => sink.drop_record(&x)?,
                }
            }
            for line in d.take_explain() {
                if let Err(e) = writeln!(explain, "{line}") {
                    explain_err.get_or_insert(e);
                }
            }
            Ok(())
        },
    );
    if let Some(e) = explain_err {
        return Err(ReplayError::Output(e));
    }
    r
}

fn run_core<I: Inspector, R>(
    opts: &ReplayOptions,
    inspector: I,
    stop: Option<&AtomicBool>,
    progress: &mut dyn FnMut(Progress),
    finish: impl FnOnce(&I) -> R,
    mut findings: impl FnMut(&mut I, &mut LogSink) -> std::io::Result<()>,
) -> Result<(ReplayReport, R), ReplayError> {
    let cfg = engine_config(opts).map_err(ReplayError::Config)?;
    let mut captures = MergedCaptures::open(&opts.pcaps).map_err(ReplayError::Input)?;
    let counters = captures.bytes_read_counters();
    let bytes_read = move || {
        counters
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum::<u64>()
    };
    let started = Instant::now();
    let mut report = ReplayReport::default();

    if opts.decode_only {
        // The engine's own decoder (same checksum/tunnel/defrag work as the full pass), so the
        // two passes differ only by flow tracking, reassembly and logging.
        let mut decoder = PacketDecoder::new(&cfg);
        let mut decoded = 0u64;
        captures.for_each(stop, |p| {
            report.packets += 1;
            report.bytes += p.data.len() as u64;
            if let Some(link) = LinkType::from_linktype(p.link_type) {
                if decoder.decode(ts_of(p.ts), link, p.data).is_ok() {
                    decoded += 1;
                }
            }
            if report.packets % 65_536 == 0 {
                progress(Progress {
                    bytes_read: bytes_read(),
                    packets: report.packets,
                });
            }
        });
        std::hint::black_box(decoded);
        report.wall_secs = started.elapsed().as_secs_f64();
        report.input_errors = captures.errors().iter().map(|e| e.to_string()).collect();
        report.interrupted = stop.is_some_and(|s| s.load(Ordering::Relaxed));
        let out = finish(&inspector);
        return Ok((report, out));
    }

    let mut sink = LogSink::create(&opts.out_dir, opts.log.clone()).map_err(ReplayError::Output)?;
    let mut engine = Engine::with_inspector(cfg, inspector);
    let mut last_ts = Timestamp::default();
    let mut write_err: Option<std::io::Error> = None;
    let mut unsupported: Vec<(u32, u64)> = Vec::new();
    let mut drain = |engine: &mut Engine<I>,
                     sink: &mut LogSink,
                     now: Timestamp,
                     err: &mut Option<std::io::Error>| {
        if let Err(e) = findings(engine.inspector_mut(), sink) {
            err.get_or_insert(e);
        }
        while let Some(ev) = engine.poll_event() {
            let r = match ev {
                Event::FlowEnd(rec) => sink.flow_end(&rec, now.max(rec.end)),
                Event::Decoder(d) => sink.anomaly_decoder(&d),
                Event::Stream(s) => sink.anomaly_stream(&s),
                Event::AppTx(t) => sink.app_tx(&t),
                Event::AppAnomaly(a) => sink.anomaly_app(&a),
            };
            if let Err(e) = r {
                err.get_or_insert(e);
            }
        }
    };
    captures.for_each(stop, |p| {
        let ts = ts_of(p.ts);
        last_ts = last_ts.max(ts);
        report.packets += 1;
        report.bytes += p.data.len() as u64;
        let Some(link) = LinkType::from_linktype(p.link_type) else {
            match unsupported.iter_mut().find(|(lt, _)| *lt == p.link_type) {
                Some(e) => e.1 += 1,
                None => unsupported.push((p.link_type, 1)),
            }
            return;
        };
        if engine.handle_packet(ts, link, p.data).is_drop() {
            report.drops += 1;
        }
        drain(&mut engine, &mut sink, last_ts, &mut write_err);
        if report.packets % 65_536 == 0 {
            progress(Progress {
                bytes_read: bytes_read(),
                packets: report.packets,
            });
        }
    });
    engine.finish(last_ts);
    drain(&mut engine, &mut sink, last_ts, &mut write_err);
    report.wall_secs = started.elapsed().as_secs_f64();
    let uptime = report.wall_secs as u64;
    let mut counters: Vec<(&'static str, u64)> = Vec::new();
    engine.stats().for_each(|k, v| counters.push((k, v)));
    sink.stats(last_ts, uptime, counters.iter().copied())
        .map_err(ReplayError::Output)?;
    sink.flush().map_err(ReplayError::Output)?;
    if let Some(e) = write_err {
        return Err(ReplayError::Output(e));
    }
    let counts = sink.counts();
    report.flows = engine.stats().flow.total;
    report.alerts = counts.alerts;
    report.input_errors = captures.errors().iter().map(|e| e.to_string()).collect();
    for (lt, n) in unsupported {
        report.input_errors.push(format!(
            "unsupported link type {lt}: {n} packets skipped (supported: Ethernet 1, raw IP 101/228/229, Linux SLL 113, SLL2 276, Null 0, Loop 108)"
        ));
    }
    report.interrupted = stop.is_some_and(|s| s.load(Ordering::Relaxed));
    progress(Progress {
        bytes_read: bytes_read(),
        packets: report.packets,
    });
    let out = finish(engine.inspector());
    Ok((report, out))
}

/// A stop flag shared with signal handlers; see [`crate::install_stop_flag`].
pub type StopFlag = Arc<AtomicBool>;
