//! The replay driver: capture files → [`sekisho_sensor::Sensor`] → log files.
//!
//! A thin I/O shell around the sans-I/O sensor, used by `sekisho replay` and by the
//! conformance runner: it reads packets in timestamp order (several files merged), feeds
//! them with their capture time, writes every record the sensor hands out to the log sink
//! (and `--explain` lines to a writer), writes the packets the sensor wants sent (reject
//! answers) to `DIR/transmitted.pcap`, and at the end of input ends every flow and writes
//! the closing `stats` record.

#![warn(missing_docs)]

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use sekisho_engine::decode::PacketDecoder;
use sekisho_engine::records::Record;
use sekisho_engine::{LinkType, Timestamp};
use sekisho_eve::{LogConfig, LogSink};
use sekisho_pcap::write::PcapWriter;
use sekisho_pcap::{CaptureError, MergedCaptures, PacketTime};
use sekisho_sensor::{RuleSet, Sensor, Settings};

/// File the packets a live firewall would have sent go to, in the output directory.
pub const TRANSMITTED_PCAP: &str = "transmitted.pcap";

/// The folder of `--out DIR` that holds one file per rate-limit table, in the
/// `/proc/net/ipt_hashlimit/NAME` format.
pub const RATELIMIT_DIR: &str = "ratelimit";

/// What to replay and how.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Capture files, merged in timestamp order.
    pub pcaps: Vec<PathBuf>,
    /// Directory the logs are written to (must exist).
    pub out_dir: PathBuf,
    /// Which logs to write.
    pub log: LogConfig,
    /// The sensor's settings (mode, engine, detection).
    pub settings: Settings,
    /// Only read and decode with the engine's decoder (benchmark ceiling): no flows, no logs.
    pub decode_only: bool,
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
    /// Flows seen.
    pub flows: u64,
    /// Alerts logged.
    pub alerts: u64,
    /// Packets dropped (inline verdict other than accept).
    pub drops: u64,
    /// Packets the sensor wanted sent (written to `transmitted.pcap`).
    pub transmitted: u64,
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
    /// Logs could not be written.
    Output(std::io::Error),
}

impl std::fmt::Display for ReplayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplayError::Input(e) => write!(f, "{e}"),
            ReplayError::Output(e) => write!(f, "writing logs: {e}"),
        }
    }
}

impl std::error::Error for ReplayError {}

/// The engine's timestamp of a capture record.
pub fn ts_of(t: PacketTime) -> Timestamp {
    Timestamp::from_secs_nanos(t.sec, u64::from(t.nsec))
}

/// The capture-record time of an engine timestamp.
fn packet_time(ts: Timestamp) -> PacketTime {
    PacketTime {
        sec: ts.0 / 1_000_000,
        nsec: ((ts.0 % 1_000_000) * 1000) as u32,
    }
}

/// Linktype of `transmitted.pcap`: raw IP (the sensor hands out IP packets).
const LINKTYPE_RAW: u32 = 101;

/// Where the packets the sensor wants sent go: `transmitted.pcap`, created on the first one.
struct TransmitLog {
    path: PathBuf,
    writer: Option<PcapWriter<std::io::BufWriter<std::fs::File>>>,
    count: u64,
}

impl TransmitLog {
    #[inline]
    fn drain(&mut self, sensor: &mut Sensor) -> std::io::Result<()> {
        if !sensor.has_transmit() {
            return Ok(());
        }
        while let Some(t) = sensor.poll_transmit() {
            if self.writer.is_none() {
                let f = std::fs::File::create(&self.path).map_err(|e| {
                    std::io::Error::new(e.kind(), format!("{}: {e}", self.path.display()))
                })?;
                self.writer = Some(PcapWriter::new(
                    std::io::BufWriter::new(f),
                    LINKTYPE_RAW,
                    false,
                )?);
            }
            if let Some(w) = self.writer.as_mut() {
                w.write_packet(packet_time(t.ts), &t.packet, t.packet.len() as u32)?;
            }
            self.count += 1;
        }
        Ok(())
    }

    fn finish(self) -> std::io::Result<()> {
        if let Some(w) = self.writer {
            w.into_inner()?.flush()?;
        }
        Ok(())
    }
}

/// Writes each rate-limit table as `DIR/ratelimit/NAME` in the `/proc/net/ipt_hashlimit`
/// line format, as of the end of input (nothing without rate limits).
fn write_rate_limit_tables(sensor: &Sensor, out_dir: &std::path::Path) -> std::io::Result<()> {
    let tables = sensor.rate_limit_tables();
    if tables.is_empty() {
        return Ok(());
    }
    let dir = out_dir.join(RATELIMIT_DIR);
    std::fs::create_dir_all(&dir)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
    for (name, text) in tables {
        let p = dir.join(name);
        std::fs::write(&p, text)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", p.display())))?;
    }
    Ok(())
}

/// Replays the captures through a sensor built from `opts.settings` and `rules`. Records go
/// to the log sink after every packet, `--explain` lines to `explain`.
pub fn run(
    opts: &ReplayOptions,
    rules: Option<Arc<RuleSet>>,
    stop: Option<&AtomicBool>,
    progress: &mut dyn FnMut(Progress),
    explain: &mut dyn Write,
) -> Result<ReplayReport, ReplayError> {
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
        let mut decoder = PacketDecoder::new(&opts.settings.engine_config());
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
        return Ok(report);
    }

    let mut sink = LogSink::create(&opts.out_dir, opts.log.clone()).map_err(ReplayError::Output)?;
    let mut sensor = Sensor::new(&opts.settings, rules);
    let mut transmit = TransmitLog {
        path: opts.out_dir.join(TRANSMITTED_PCAP),
        writer: None,
        count: 0,
    };
    let mut last_ts = Timestamp::default();
    let mut write_err: Option<std::io::Error> = None;
    let mut unsupported: Vec<(u32, u64)> = Vec::new();
    let mut drain = |sensor: &mut Sensor,
                     sink: &mut LogSink,
                     transmit: &mut TransmitLog,
                     err: &mut Option<std::io::Error>| {
        while let Some(r) = sensor.poll_record() {
            let res = match &r {
                Record::Explain(line) => writeln!(explain, "{line}"),
                r => sink.write(r),
            };
            if let Err(e) = res {
                err.get_or_insert(e);
            }
        }
        if let Err(e) = transmit.drain(sensor) {
            err.get_or_insert(e);
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
        if sensor.handle_packet(ts, link, p.data).is_drop() {
            report.drops += 1;
        }
        drain(&mut sensor, &mut sink, &mut transmit, &mut write_err);
        if report.packets % 65_536 == 0 {
            progress(Progress {
                bytes_read: bytes_read(),
                packets: report.packets,
            });
        }
    });
    sensor.finish(last_ts);
    drain(&mut sensor, &mut sink, &mut transmit, &mut write_err);
    write_rate_limit_tables(&sensor, &opts.out_dir).map_err(ReplayError::Output)?;
    report.wall_secs = started.elapsed().as_secs_f64();
    sink.flush().map_err(ReplayError::Output)?;
    report.transmitted = transmit.count;
    transmit.finish().map_err(ReplayError::Output)?;
    if let Some(e) = write_err {
        return Err(ReplayError::Output(e));
    }
    report.flows = sensor.stats().flow.total;
    report.alerts = sink.counts().alerts;
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
    Ok(report)
}
