//! Log output: Suricata EVE JSON and the AWS Network Firewall log envelope.
//!
//! The engine produces facts (a flow ended, a transaction finished, counters); this crate turns
//! them into log lines the way Suricata 8 writes them (`eve.json`: `flow`, `netflow`, `stats`,
//! `alert`, `smtp` records,
//! key order as Suricata's) or the way AWS Network Firewall delivers them (`alert.log` and
//! `flow.log`, each line an envelope `{firewall_name, availability_zone, event_timestamp,
//! event}` around an EVE object, flow records being `netflow` events, one per direction).
//!
//! Records come straight from the engine's types ([`FlowRecord`], [`DecoderEventRecord`],
//! [`StreamEventRecord`], [`Timestamp`]); the structs here only define EVE's key order.
//!
//! Times are microseconds since the Unix epoch and are printed in UTC with Suricata's format
//! `2026-11-22T03:41:00.123456+0000` (Suricata prints local time; sekisho always prints UTC so
//! logs do not depend on the machine's time zone).
//!
//! All writers are buffered; call [`LogSink::flush`] before exit (and on SIGTERM): nothing
//! handed to the sink is lost once `flush` returned.
#![warn(missing_docs)]

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

mod detect;
mod dns;
mod http;
mod ratelimit;
mod smtp;
mod tls;
pub mod top;

use sekisho_engine::records::Record;
use sekisho_engine::{
    AppAnomalyRecord, AppTxData, AppTxRecord, DecoderEventRecord, Event, FlowRecord,
    StreamEventRecord, Timestamp,
};
use serde::Serialize;

/// Formats a time as `YYYY-MM-DDTHH:MM:SS.uuuuuu+0000` (UTC, microsecond precision).
///
/// Written digit by digit rather than with `format!`: every EVE record carries one to three
/// of these, and the formatting machinery cost more than the rest of a flow record
/// (callgrind on scripts/bench-replay.sh's capture). Years outside 0..=9999 fall back to
/// `format!` (same text).
pub fn format_timestamp(ts: Timestamp) -> String {
    let secs = ts.secs();
    let usec = ts.subsec_micros();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (rem / 3600, (rem / 60) % 60, rem % 60);
    if !(0..=9999).contains(&y) {
        return format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{usec:06}+0000");
    }
    let mut b = *b"0000-00-00T00:00:00.000000+0000";
    let mut put = |at: usize, width: usize, mut v: u64| {
        for i in (at..at + width).rev() {
            b[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, y as u64);
    put(5, 2, u64::from(m));
    put(8, 2, u64::from(d));
    put(11, 2, hh);
    put(14, 2, mm);
    put(17, 2, ss);
    put(20, 6, u64::from(usec));
    // Only ASCII digits and punctuation were written.
    String::from_utf8_lossy(&b).into_owned()
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (the era-based algorithm published by Howard Hinnant, "chrono-Compatible Low-Level Date
/// Algorithms").
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// An address as Suricata 8 prints it in EVE: IPv4 dotted, IPv6 in full (eight groups of four
/// hex digits, no `::` compression: `fd01:0000:0000:0000:0000:0000:0101:0101`). Suricata 9
/// compresses by default; 8.0 and NFW's 7.0 do not.
pub fn eve_ip(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => {
            // By hand: `to_string` goes through the formatting machinery (~10x the cost).
            let mut out = String::with_capacity(15);
            for (i, o) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                if o >= 100 {
                    out.push(char::from(b'0' + o / 100));
                }
                if o >= 10 {
                    out.push(char::from(b'0' + o / 10 % 10));
                }
                out.push(char::from(b'0' + o % 10));
            }
            out
        }
        std::net::IpAddr::V6(v6) => {
            let g = v6.segments();
            format!(
                "{:04x}:{:04x}:{:04x}:{:04x}:{:04x}:{:04x}:{:04x}:{:04x}",
                g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7]
            )
        }
    }
}

/// EVE `proto` text for an IP protocol number.
pub fn proto_name(proto: u8) -> String {
    match proto {
        1 => "ICMP".into(),
        6 => "TCP".into(),
        17 => "UDP".into(),
        58 => "IPv6-ICMP".into(),
        132 => "SCTP".into(),
        47 => "GRE".into(),
        n => n.to_string(),
    }
}

/// Two-digit lowercase hex of TCP flags, as EVE prints `tcp_flags`.
pub fn tcp_flags_hex(flags: u8) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(2);
    out.push(char::from(HEX[usize::from(flags >> 4)]));
    out.push(char::from(HEX[usize::from(flags & 15)]));
    out
}

/// True for IP protocols whose EVE records carry ports (TCP, UDP, SCTP).
fn has_ports(proto: u8) -> bool {
    matches!(proto, 6 | 17 | 132)
}

/// Which records to write and in which envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogFormat {
    /// Suricata EVE JSON into `eve.json`.
    Eve,
    /// AWS Network Firewall envelopes into `alert.log` and `flow.log`.
    Nfw {
        /// `firewall_name` of every envelope.
        firewall_name: String,
        /// `availability_zone` of every envelope.
        availability_zone: String,
    },
}

/// Configuration of a [`LogSink`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// Output format.
    pub format: LogFormat,
    /// EVE only: write `flow` records (Suricata default: yes).
    pub flow: bool,
    /// EVE only: write `netflow` records, one per direction (Suricata default: no).
    /// NFW always writes netflow records to `flow.log`.
    pub netflow: bool,
    /// EVE only: write the closing `stats` record.
    pub stats: bool,
    /// EVE only: write `alert` records.
    pub alert: bool,
    /// EVE only: write `drop` records (inline mode; Suricata's `drop` type with `alerts: yes`).
    pub drop: bool,
    /// EVE only: Suricata's drop option `flows: all` (a `drop` record for every dropped
    /// packet) instead of `flows: start` (default: in a flow whose drop action applies to
    /// the whole flow, only the first dropped packet of each direction is logged).
    /// Honouring it is up to the producer of drop records.
    pub drop_flows_all: bool,
    /// EVE only: write `anomaly` records of type `decode` (Suricata default: no).
    pub anomaly_decode: bool,
    /// EVE only: write `anomaly` records of type `stream` (Suricata default: no).
    pub anomaly_stream: bool,
    /// EVE only: write `anomaly` records of type `applayer` (parser events such as SMTP's
    /// `INVALID_REPLY`). Suricata's default is yes once the anomaly logger is enabled; off
    /// here so plain replays write no anomaly records unless asked (`replay --anomalies`).
    pub anomaly_app: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Eve,
            flow: true,
            netflow: false,
            stats: true,
            alert: true,
            drop: true,
            drop_flows_all: false,
            anomaly_decode: false,
            anomaly_stream: false,
            anomaly_app: false,
        }
    }
}

/// Counts of records written, for the end-of-run summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SinkCounts {
    /// `alert` records.
    pub alerts: u64,
    /// `flow` records.
    pub flows: u64,
    /// `netflow` records.
    pub netflows: u64,
    /// App-layer transaction records (`smtp`).
    pub app_txs: u64,
}

/// The buffered log writer of one run.
pub struct LogSink {
    config: LogConfig,
    eve: Option<BufWriter<File>>,
    alert: Option<BufWriter<File>>,
    flow: Option<BufWriter<File>>,
    paths: Vec<PathBuf>,
    counts: SinkCounts,
    line: Vec<u8>,
    /// When the sink was created: the `stats.uptime` of [`LogSink::write`].
    created: std::time::Instant,
}

const BUF: usize = 256 * 1024;

fn create(path: &Path) -> io::Result<BufWriter<File>> {
    let f = File::create(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    Ok(BufWriter::with_capacity(BUF, f))
}

impl LogSink {
    /// Creates (truncating) the log files in `dir`: `eve.json` for EVE, `alert.log` and
    /// `flow.log` for NFW. The directory must exist.
    pub fn create(dir: &Path, config: LogConfig) -> io::Result<LogSink> {
        let mut paths = Vec::new();
        let (eve, alert, flow) = match &config.format {
            LogFormat::Eve => {
                let p = dir.join("eve.json");
                let w = create(&p)?;
                paths.push(p);
                (Some(w), None, None)
            }
            LogFormat::Nfw { .. } => {
                let pa = dir.join("alert.log");
                let pf = dir.join("flow.log");
                let a = create(&pa)?;
                let f = create(&pf)?;
                paths.push(pa);
                paths.push(pf);
                (None, Some(a), Some(f))
            }
        };
        Ok(LogSink {
            config,
            eve,
            alert,
            flow,
            paths,
            counts: SinkCounts::default(),
            line: Vec::with_capacity(1024),
            created: std::time::Instant::now(),
        })
    }

    /// Files this sink writes.
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// Records written so far.
    pub fn counts(&self) -> SinkCounts {
        self.counts
    }

    /// Writes the records of one ended flow: `flow` and/or two `netflow` (EVE), or two
    /// `netflow` envelopes into `flow.log` (NFW). `log_ts` is the time the records are logged
    /// (their `timestamp`; the replay driver uses the latest packet time, never before `f.end`).
    pub fn flow_end(&mut self, f: &FlowRecord, log_ts: Timestamp) -> io::Result<()> {
        match &self.config.format {
            LogFormat::Eve => {
                if self.config.flow {
                    write_line(&mut self.line, self.eve.as_mut(), &flow_event(f, log_ts))?;
                    self.counts.flows += 1;
                }
                if self.config.netflow {
                    for to_server in [true, false] {
                        write_line(
                            &mut self.line,
                            self.eve.as_mut(),
                            &netflow_event(f, log_ts, to_server, false),
                        )?;
                        self.counts.netflows += 1;
                    }
                }
            }
            LogFormat::Nfw {
                firewall_name,
                availability_zone,
            } => {
                for to_server in [true, false] {
                    let dir = if to_server {
                        &f.to_server
                    } else {
                        &f.to_client
                    };
                    // NFW writes a record only for a direction that carried packets.
                    if dir.pkts == 0 {
                        continue;
                    }
                    let env = Envelope {
                        firewall_name,
                        availability_zone,
                        event_timestamp: log_ts.secs().to_string(),
                        event: netflow_event(f, log_ts, to_server, true),
                    };
                    write_line(&mut self.line, self.flow.as_mut(), &env)?;
                    self.counts.netflows += 1;
                }
            }
        }
        Ok(())
    }

    /// Writes a decoder `anomaly` record (EVE only, when `anomaly_decode` is enabled).
    pub fn anomaly_decoder(&mut self, d: &DecoderEventRecord) -> io::Result<()> {
        if self.config.format != LogFormat::Eve || !self.config.anomaly_decode {
            return Ok(());
        }
        let t = d.tuple.as_ref();
        let ports = t.is_some_and(|t| has_ports(t.proto));
        let ev = AnomalyEvent {
            timestamp: format_timestamp(d.ts),
            flow_id: d.flow_id,
            pcap_cnt: d.pkt_num,
            event_type: "anomaly",
            vlan: &d.vlan,
            src_ip: t.map(|t| eve_ip(t.src_ip)),
            src_port: t.filter(|_| ports).map(|t| t.src_port),
            dest_ip: t.map(|t| eve_ip(t.dst_ip)),
            dest_port: t.filter(|_| ports).map(|t| t.dst_port),
            ip_v: t.map(|t| if t.src_ip.is_ipv4() { 4 } else { 6 }),
            proto: t.map(|t| proto_name(t.proto)),
            pkt_src: "wire/pcap",
            anomaly: AnomalyObj {
                r#type: "decode",
                event: format!("decoder.{}", d.event.name()),
            },
        };
        self.write_eve(&ev)
    }

    /// Writes a stream `anomaly` record (EVE only, when `anomaly_stream` is enabled). The
    /// engine's stream events carry no addresses, so the record has `flow_id` only.
    pub fn anomaly_stream(&mut self, s: &StreamEventRecord) -> io::Result<()> {
        if self.config.format != LogFormat::Eve || !self.config.anomaly_stream {
            return Ok(());
        }
        let ev = AnomalyEvent {
            timestamp: format_timestamp(s.ts),
            flow_id: Some(s.flow_id),
            pcap_cnt: s.pkt_num,
            event_type: "anomaly",
            vlan: &[],
            src_ip: None,
            src_port: None,
            dest_ip: None,
            dest_port: None,
            ip_v: None,
            proto: None,
            pkt_src: "wire/pcap",
            anomaly: AnomalyObj {
                r#type: "stream",
                event: format!("stream.{}", s.event),
            },
        };
        self.write_eve(&ev)
    }

    /// Writes an app-layer `anomaly` record (EVE only, when `anomaly_app` is enabled), shaped
    /// like Suricata's anomaly tx logger: packet header, `tx_id` when the event belongs to a
    /// transaction, then `anomaly{app_proto, type: "applayer", event, layer:
    /// "proto_parser"}`. An event raised by data flushed at flow end has no `pcap_cnt` and
    /// `pkt_src: "stream (flow timeout)"`.
    pub fn anomaly_app(&mut self, a: &AppAnomalyRecord) -> io::Result<()> {
        if self.config.format != LogFormat::Eve || !self.config.anomaly_app {
            return Ok(());
        }
        let t = &a.tuple;
        let ev = AppAnomalyEvent {
            head: RecordHead::app(
                "anomaly",
                a.ts,
                a.flow_id,
                a.pkt_num,
                a.pkt_num == 0,
                &a.vlan,
                t,
            ),
            tx_id: a.tx_id,
            anomaly: AppAnomalyObj {
                app_proto: a.app_proto,
                r#type: "applayer",
                event: a.event,
                layer: "proto_parser",
            },
        };
        self.write_eve(&ev)
    }

    /// Writes the record of one finished app-layer transaction: EVE `smtp` (header oriented
    /// client → server, `tx_id`, `smtp{helo, mail_from, rcpt_to[]}`, then
    /// `email{from, to[], cc[], status}` when the transaction saw DATA). A transaction logged at
    /// flow end has no `pcap_cnt` and `pkt_src: "stream (flow timeout)"`, as in Suricata.
    /// NFW format: nothing is written (Network Firewall logs only alert, flow and tls).
    pub fn app_tx(&mut self, t: &AppTxRecord) -> io::Result<()> {
        if self.config.format != LogFormat::Eve {
            return Ok(());
        }
        let name = t.app.proto().as_str();
        // DNS records follow the packet: a response comes from the server.
        let tuple = match &t.app {
            AppTxData::Dns(d) if d.response => sekisho_engine::PacketTuple {
                src_ip: t.tuple.dst_ip,
                dst_ip: t.tuple.src_ip,
                src_port: t.tuple.dst_port,
                dst_port: t.tuple.src_port,
                proto: t.tuple.proto,
            },
            _ => t.tuple.clone(),
        };
        let head = RecordHead::app(
            name, t.ts, t.flow_id, t.pkt_num, t.flow_end, &t.vlan, &tuple,
        );
        match &t.app {
            AppTxData::Smtp(s) => self.write_eve(&smtp::SmtpRecord::new(head, t.tx_id, s))?,
            AppTxData::Tls(s) => self.write_eve(&tls::TlsRecord {
                head,
                tls: tls::TlsObj::new(s, false),
            })?,
            AppTxData::Http(h) => self.write_eve(&http::HttpRecord {
                head,
                tx_id: t.tx_id,
                http: http::HttpObj::new(h, false),
            })?,
            AppTxData::Dns(d) => self.write_eve(&dns::DnsEvent {
                head,
                dns: dns::DnsObj::new(d),
            })?,
        }
        self.counts.app_txs += 1;
        Ok(())
    }

    fn write_eve(&mut self, ev: &impl Serialize) -> io::Result<()> {
        write_line(&mut self.line, self.eve.as_mut(), ev)
    }

    /// Writes one alert record. `event` is a complete EVE alert object (header, `alert{…}`,
    /// flow…), built by the detection layer; `ts` is its packet time (used for the NFW
    /// envelope's `event_timestamp`).
    pub fn alert(&mut self, ts: Timestamp, event: &serde_json::Value) -> io::Result<()> {
        match &self.config.format {
            LogFormat::Eve => {
                if !self.config.alert {
                    return Ok(());
                }
                write_line(&mut self.line, self.eve.as_mut(), event)?;
            }
            LogFormat::Nfw {
                firewall_name,
                availability_zone,
            } => {
                let env = Envelope {
                    firewall_name,
                    availability_zone,
                    event_timestamp: ts.secs().to_string(),
                    event,
                };
                write_line(&mut self.line, self.alert.as_mut(), &env)?;
            }
        }
        self.counts.alerts += 1;
        Ok(())
    }

    /// Writes a `stats` record (EVE only; NFW has no stats log). `counters` are dotted names
    /// (`decoder.pkts`), nested into objects as Suricata does; `uptime` is in seconds.
    pub fn stats<'a>(
        &mut self,
        ts: Timestamp,
        uptime: u64,
        counters: impl IntoIterator<Item = (&'a str, u64)>,
    ) -> io::Result<()> {
        if self.config.format != LogFormat::Eve || !self.config.stats {
            return Ok(());
        }
        let mut root = serde_json::Map::new();
        for (name, value) in counters {
            insert_dotted(&mut root, name, value);
        }
        let ev = StatsEvent {
            timestamp: format_timestamp(ts),
            event_type: "stats",
            stats: StatsObj {
                uptime,
                counters: root,
            },
        };
        write_line(&mut self.line, self.eve.as_mut(), &ev)?;
        Ok(())
    }

    /// Writes one sensor record (`--explain` lines are not logs: ignored here).
    /// Statistics get the sink's own uptime (seconds since it was created).
    pub fn write(&mut self, record: &Record) -> io::Result<()> {
        match record {
            Record::Alert(a) => self.alert_record(a),
            Record::Drop(d) | Record::Event(Event::Drop(d)) => self.drop_record(d),
            Record::Flow { record, log_ts } => self.flow_end(record, *log_ts),
            Record::Event(Event::FlowEnd(rec)) => self.flow_end(rec, rec.end),
            Record::Event(Event::Decoder(d)) => self.anomaly_decoder(d),
            Record::Event(Event::Stream(s)) => self.anomaly_stream(s),
            Record::Event(Event::AppTx(t)) => self.app_tx(t),
            Record::Event(Event::AppAnomaly(a)) => self.anomaly_app(a),
            // Recorded on the flow (`flow.exception_policy`); a drop it caused comes as a
            // drop record.
            Record::Event(Event::Exception(_)) => Ok(()),
            Record::Explain(_) => Ok(()),
            Record::RateLimit(r) => self.ratelimit_record(r),
            Record::Stats { ts, counters } => {
                let uptime = self.created.elapsed().as_secs();
                self.stats(*ts, uptime, counters.iter().copied())
            }
        }
    }

    /// Flushes every file to the operating system.
    pub fn flush(&mut self) -> io::Result<()> {
        for w in [&mut self.eve, &mut self.alert, &mut self.flow]
            .into_iter()
            .flatten()
        {
            w.flush()?;
        }
        Ok(())
    }
}

impl Drop for LogSink {
    fn drop(&mut self) {
        // Best effort: an explicit flush() reports errors, Drop cannot.
        let _ = self.flush();
    }
}

fn insert_dotted(map: &mut serde_json::Map<String, serde_json::Value>, name: &str, value: u64) {
    match name.split_once('.') {
        None => {
            map.insert(name.to_string(), value.into());
        }
        Some((head, rest)) => {
            let entry = map
                .entry(head.to_string())
                .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
            if !entry.is_object() {
                // A counter and a group with the same name: keep the group, the counter is
                // reachable as `<name>` nowhere else; Suricata never produces this.
                *entry = serde_json::Value::Object(serde_json::Map::new());
            }
            if let serde_json::Value::Object(m) = entry {
                insert_dotted(m, rest, value);
            }
        }
    }
}

#[derive(Serialize)]
struct Envelope<'a, E: Serialize> {
    firewall_name: &'a str,
    availability_zone: &'a str,
    event_timestamp: String,
    event: E,
}

#[derive(Serialize)]
struct StatsEvent {
    timestamp: String,
    event_type: &'static str,
    stats: StatsObj,
}

#[derive(Serialize)]
struct StatsObj {
    uptime: u64,
    #[serde(flatten)]
    counters: serde_json::Map<String, serde_json::Value>,
}

#[derive(Serialize)]
struct AnomalyEvent<'a> {
    timestamp: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    flow_id: Option<u64>,
    pcap_cnt: u64,
    event_type: &'static str,
    #[serde(skip_serializing_if = "<[u16]>::is_empty")]
    vlan: &'a [u16],
    #[serde(skip_serializing_if = "Option::is_none")]
    src_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    src_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dest_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dest_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip_v: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    proto: Option<String>,
    pkt_src: &'static str,
    anomaly: AnomalyObj,
}

/// The header every per-packet and per-transaction record starts with (Suricata's
/// `CreateEveHeader` key order); records embed it flattened.
#[derive(Serialize)]
pub(crate) struct RecordHead<'a> {
    pub(crate) timestamp: String,
    pub(crate) flow_id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) pcap_cnt: Option<u64>,
    pub(crate) event_type: &'static str,
    #[serde(skip_serializing_if = "<[u16]>::is_empty")]
    pub(crate) vlan: &'a [u16],
    pub(crate) src_ip: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) src_port: Option<u16>,
    pub(crate) dest_ip: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) dest_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) ip_v: Option<u8>,
    pub(crate) proto: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) pkt_src: Option<&'static str>,
}

impl<'a> RecordHead<'a> {
    /// The header of an app-layer record about `tuple`, written on packet `pkt_num`, or at
    /// flow end (`at_end`: no `pcap_cnt`, `pkt_src: "stream (flow timeout)"`, as Suricata).
    fn app(
        event_type: &'static str,
        ts: Timestamp,
        flow_id: u64,
        pkt_num: u64,
        at_end: bool,
        vlan: &'a [u16],
        tuple: &sekisho_engine::PacketTuple,
    ) -> Self {
        let ports = has_ports(tuple.proto);
        RecordHead {
            timestamp: format_timestamp(ts),
            flow_id,
            pcap_cnt: (!at_end).then_some(pkt_num),
            event_type,
            vlan,
            src_ip: eve_ip(tuple.src_ip),
            src_port: ports.then_some(tuple.src_port),
            dest_ip: eve_ip(tuple.dst_ip),
            dest_port: ports.then_some(tuple.dst_port),
            ip_v: Some(if tuple.src_ip.is_ipv4() { 4 } else { 6 }),
            proto: proto_name(tuple.proto),
            pkt_src: Some(if at_end {
                "stream (flow timeout)"
            } else {
                "wire/pcap"
            }),
        }
    }
}

/// An app-layer EVE `anomaly` record (Suricata's `output-json-anomaly.c` key order).
#[derive(Serialize)]
struct AppAnomalyEvent<'a> {
    #[serde(flatten)]
    head: RecordHead<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tx_id: Option<u64>,
    anomaly: AppAnomalyObj,
}

#[derive(Serialize)]
struct AppAnomalyObj {
    app_proto: &'static str,
    r#type: &'static str,
    event: &'static str,
    layer: &'static str,
}

#[derive(Serialize)]
struct AnomalyObj {
    r#type: &'static str,
    event: String,
}

/// Serialises `ev` as one JSON line into the reused buffer `line` and writes it to `out` when
/// that log is open. A free function so callers can borrow the sink's config at the same time.
fn write_line(
    line: &mut Vec<u8>,
    out: Option<&mut BufWriter<File>>,
    ev: &impl Serialize,
) -> io::Result<()> {
    line.clear();
    serde_json::to_writer(&mut *line, ev).map_err(io::Error::other)?;
    line.push(b'\n');
    if let Some(w) = out {
        w.write_all(line)?;
    }
    Ok(())
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Serialize)]
struct FlowEvent<'a> {
    timestamp: String,
    flow_id: u64,
    event_type: &'static str,
    #[serde(skip_serializing_if = "<[u16]>::is_empty")]
    vlan: &'a [u16],
    src_ip: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    src_port: Option<u16>,
    dest_ip: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    dest_port: Option<u16>,
    ip_v: u8,
    proto: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    icmp_type: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icmp_code: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_icmp_type: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_icmp_code: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    app_proto: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    app_proto_ts: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    app_proto_tc: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    app_proto_orig: Option<&'static str>,
    flow: FlowObj,
    #[serde(skip_serializing_if = "Option::is_none")]
    tcp: Option<TcpObj>,
}

#[derive(Serialize)]
struct FlowObj {
    pkts_toserver: u64,
    pkts_toclient: u64,
    bytes_toserver: u64,
    bytes_toclient: u64,
    start: String,
    end: String,
    age: u64,
    state: &'static str,
    reason: &'static str,
    alerted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    action: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    exception_policy: Vec<ExceptionObj>,
}

/// One entry of `flow.exception_policy` (Suricata 7+).
#[derive(Serialize)]
struct ExceptionObj {
    target: &'static str,
    policy: &'static str,
}

#[derive(Serialize, Default)]
struct TcpObj {
    tcp_flags: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    tcp_flags_ts: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tcp_flags_tc: Option<String>,
    #[serde(skip_serializing_if = "is_false")]
    syn: bool,
    #[serde(skip_serializing_if = "is_false")]
    fin: bool,
    #[serde(skip_serializing_if = "is_false")]
    rst: bool,
    #[serde(skip_serializing_if = "is_false")]
    psh: bool,
    #[serde(skip_serializing_if = "is_false")]
    ack: bool,
    #[serde(skip_serializing_if = "is_false")]
    urg: bool,
    #[serde(skip_serializing_if = "is_false")]
    ecn: bool,
    #[serde(skip_serializing_if = "is_false")]
    cwr: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<&'static str>,
}

impl TcpObj {
    fn from_flags(flags: u8) -> TcpObj {
        TcpObj {
            tcp_flags: tcp_flags_hex(flags),
            fin: flags & 0x01 != 0,
            syn: flags & 0x02 != 0,
            rst: flags & 0x04 != 0,
            psh: flags & 0x08 != 0,
            ack: flags & 0x10 != 0,
            urg: flags & 0x20 != 0,
            ecn: flags & 0x40 != 0,
            cwr: flags & 0x80 != 0,
            ..TcpObj::default()
        }
    }
}

fn flow_event(f: &FlowRecord, log_ts: Timestamp) -> FlowEvent<'_> {
    let ports = has_ports(f.proto);
    let tcp = (f.proto == 6).then(|| {
        let mut t = TcpObj::from_flags(f.to_server.tcp_flags | f.to_client.tcp_flags);
        t.tcp_flags_ts = Some(tcp_flags_hex(f.to_server.tcp_flags));
        t.tcp_flags_tc = Some(tcp_flags_hex(f.to_client.tcp_flags));
        t.state = f.tcp_state.map(|s| s.as_str());
        t
    });
    FlowEvent {
        timestamp: format_timestamp(log_ts),
        flow_id: f.flow_id,
        event_type: "flow",
        vlan: &f.vlan,
        src_ip: eve_ip(f.src_ip),
        src_port: ports.then_some(f.src_port),
        dest_ip: eve_ip(f.dst_ip),
        dest_port: ports.then_some(f.dst_port),
        ip_v: f.ip_version(),
        proto: proto_name(f.proto),
        icmp_type: f.icmp.map(|i| i.0),
        icmp_code: f.icmp.map(|i| i.1),
        response_icmp_type: f.icmp_response.map(|i| i.0),
        response_icmp_code: f.icmp_response.map(|i| i.1),
        app_proto: f.app_proto.as_deref(),
        app_proto_ts: f.app_proto_ts,
        app_proto_tc: f.app_proto_tc,
        app_proto_orig: f.app_proto_orig,
        flow: FlowObj {
            pkts_toserver: f.to_server.pkts,
            pkts_toclient: f.to_client.pkts,
            bytes_toserver: f.to_server.bytes,
            bytes_toclient: f.to_client.bytes,
            start: format_timestamp(f.start),
            end: format_timestamp(f.end),
            age: f.age_secs(),
            state: f.state.as_str(),
            reason: f.reason.as_str(),
            alerted: f.alerted,
            action: f.action.map(|a| a.as_str()),
            exception_policy: f
                .exception_policy
                .iter()
                .map(|(t, a)| ExceptionObj {
                    target: t.as_str(),
                    policy: a.counter_name(),
                })
                .collect(),
        },
        tcp,
    }
}

#[derive(Serialize)]
struct NetflowEvent<'a> {
    timestamp: String,
    flow_id: u64,
    event_type: &'static str,
    #[serde(skip_serializing_if = "<[u16]>::is_empty")]
    vlan: &'a [u16],
    src_ip: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    src_port: Option<u16>,
    dest_ip: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    dest_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip_v: Option<u8>,
    proto: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    app_proto: Option<&'a str>,
    netflow: NetflowObj,
    #[serde(skip_serializing_if = "Option::is_none")]
    tcp: Option<TcpObj>,
}

#[derive(Serialize)]
struct NetflowObj {
    pkts: u64,
    bytes: u64,
    start: String,
    end: String,
    age: u64,
    min_ttl: u8,
    max_ttl: u8,
    /// NFW only: the flags as booleans. The Athena netflow table AWS publishes declares
    /// `netflow.tcp_flags` as `struct<syn,fin,rst,psh,ack,urg: boolean>`, while AWS's own
    /// sample record carries only the top-level `tcp` object; writing both lets the published
    /// table and queries written against the sample read the same file.
    #[serde(skip_serializing_if = "Option::is_none")]
    tcp_flags: Option<NfwTcpFlags>,
}

/// `netflow.tcp_flags` as the NFW Athena table declares it: every flag present, true or false.
#[derive(Serialize)]
struct NfwTcpFlags {
    syn: bool,
    fin: bool,
    rst: bool,
    psh: bool,
    ack: bool,
    urg: bool,
}

impl NfwTcpFlags {
    fn from_flags(flags: u8) -> NfwTcpFlags {
        NfwTcpFlags {
            fin: flags & 0x01 != 0,
            syn: flags & 0x02 != 0,
            rst: flags & 0x04 != 0,
            psh: flags & 0x08 != 0,
            ack: flags & 0x10 != 0,
            urg: flags & 0x20 != 0,
        }
    }
}

/// One half of a flow as a `netflow` record. `nfw` drops the fields NFW does not write
/// (`ip_v`, `vlan`).
fn netflow_event(
    f: &FlowRecord,
    log_ts: Timestamp,
    to_server: bool,
    nfw: bool,
) -> NetflowEvent<'_> {
    let ports = has_ports(f.proto);
    let (d, src_ip, dst_ip, sp, dp) = if to_server {
        (&f.to_server, f.src_ip, f.dst_ip, f.src_port, f.dst_port)
    } else {
        (&f.to_client, f.dst_ip, f.src_ip, f.dst_port, f.src_port)
    };
    NetflowEvent {
        timestamp: format_timestamp(log_ts),
        flow_id: f.flow_id,
        event_type: "netflow",
        vlan: if nfw { &[] } else { &f.vlan },
        src_ip: eve_ip(src_ip),
        src_port: ports.then_some(sp),
        dest_ip: eve_ip(dst_ip),
        dest_port: ports.then_some(dp),
        ip_v: (!nfw).then(|| f.ip_version()),
        proto: proto_name(f.proto),
        // Each half carries its direction's protocol (`app_proto_ts`/`_tc`, which the
        // record holds only where they differ from `app_proto`).
        app_proto: if to_server {
            f.app_proto_ts
        } else {
            f.app_proto_tc
        }
        .or(f.app_proto.as_deref()),
        netflow: NetflowObj {
            pkts: d.pkts,
            bytes: d.bytes,
            start: format_timestamp(f.start),
            end: format_timestamp(f.end),
            age: f.age_secs(),
            min_ttl: d.min_ttl,
            max_ttl: d.max_ttl,
            tcp_flags: (nfw && f.proto == 6).then(|| NfwTcpFlags::from_flags(d.tcp_flags)),
        },
        tcp: (f.proto == 6).then(|| TcpObj::from_flags(d.tcp_flags)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sekisho_engine::app::smtp::{EmailEve, SmtpEve};
    use sekisho_engine::{DirStats, FlowEndReason, FlowState, TcpState};

    /// The hand-written formatters print exactly what `format!` / `Display` print.
    #[test]
    fn fast_formatters_match_std() {
        for secs in [0u64, 59, 86_399, 951_782_400, 1_700_000_000, 4_102_444_799] {
            for usec in [0u32, 7, 123_456, 999_999] {
                let ts = Timestamp::from_micros(secs * 1_000_000 + u64::from(usec));
                let days = (secs / 86_400) as i64;
                let rem = secs % 86_400;
                let (y, m, d) = civil_from_days(days);
                let want = format!(
                    "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{usec:06}+0000",
                    rem / 3600,
                    (rem / 60) % 60,
                    rem % 60
                );
                assert_eq!(format_timestamp(ts), want);
            }
        }
        for a in [0u8, 1, 9, 10, 99, 100, 199, 255] {
            let ip = std::net::Ipv4Addr::new(a, 255 - a, a / 2, 7);
            assert_eq!(eve_ip(ip.into()), ip.to_string());
        }
        for f in 0..=255u8 {
            assert_eq!(tcp_flags_hex(f), format!("{f:02x}"));
        }
    }
    #[test]
    fn timestamp_format_matches_suricata() {
        // 2009-10-05T06:06:15.106015+0000 from the smtp-eve example.
        assert_eq!(
            format_timestamp(Timestamp(1_254_722_775_106_015)),
            "2009-10-05T06:06:15.106015+0000"
        );
        assert_eq!(
            format_timestamp(Timestamp(0)),
            "1970-01-01T00:00:00.000000+0000"
        );
        // Leap day.
        assert_eq!(
            format_timestamp(Timestamp(951_782_400_000_001)),
            "2000-02-29T00:00:00.000001+0000"
        );
    }

    const LOG_TS: Timestamp = Timestamp(1_464_332_171_900_923);

    fn sample() -> FlowRecord {
        let start = Timestamp(1_464_332_171_304_062);
        let end = Timestamp(1_464_332_171_900_923);
        let dir = |pkts, bytes, ttl| DirStats {
            pkts,
            bytes,
            start: Some(start),
            end: Some(end),
            min_ttl: ttl,
            max_ttl: ttl,
            tcp_flags: 0x1b,
            gap: false,
        };
        FlowRecord {
            flow_id: 42,
            src_ip: "10.16.1.11".parse().unwrap(),
            src_port: 46652,
            dst_ip: "82.165.177.154".parse().unwrap(),
            dst_port: 80,
            proto: 6,
            icmp: None,
            icmp_response: None,
            vlan: vec![],
            app_proto: Some("http".into()),
            app_proto_ts: None,
            app_proto_tc: None,
            app_proto_orig: None,
            to_server: dir(6, 425, 64),
            to_client: dir(4, 495, 50),
            start,
            end,
            state: FlowState::Closed,
            tcp_state: Some(TcpState::Closed),
            reason: FlowEndReason::Shutdown,
            alerted: false,
            action: None,
            emergency: false,
            midstream: false,
            exception_policy: Vec::new(),
        }
    }

    #[test]
    fn flow_and_netflow_lines() {
        let dir = std::env::temp_dir().join(format!("sekisho-eve-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut sink = LogSink::create(
            &dir,
            LogConfig {
                netflow: true,
                ..LogConfig::default()
            },
        )
        .unwrap();
        sink.flow_end(&sample(), LOG_TS).unwrap();
        sink.stats(LOG_TS, 1, [("decoder.pkts", 10u64), ("flow.tcp", 1)])
            .unwrap();
        sink.flush().unwrap();
        let text = std::fs::read_to_string(dir.join("eve.json")).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[0].starts_with(
            r#"{"timestamp":"2016-05-27T06:56:11.900923+0000","flow_id":42,"event_type":"flow","src_ip":"10.16.1.11","src_port":46652,"dest_ip":"82.165.177.154","dest_port":80,"ip_v":4,"proto":"TCP","app_proto":"http","flow":{"pkts_toserver":6"#
        ));
        assert!(lines[0].ends_with(r#""tcp":{"tcp_flags":"1b","tcp_flags_ts":"1b","tcp_flags_tc":"1b","syn":true,"fin":true,"psh":true,"ack":true,"state":"closed"}}"#));
        assert!(
            lines[2].contains(r#""src_ip":"82.165.177.154","src_port":80,"dest_ip":"10.16.1.11""#)
        );
        assert!(lines[2].contains(r#""netflow":{"pkts":4,"bytes":495,"start":"2016-05-27T06:56:11.304062+0000","end":"2016-05-27T06:56:11.900923+0000","age":0,"min_ttl":50,"max_ttl":50}"#));
        assert!(lines[3].contains(r#""stats":{"uptime":1,"decoder":{"pkts":10},"flow":{"tcp":1}}"#));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn nfw_envelope() {
        let dir = std::env::temp_dir().join(format!("sekisho-nfw-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fmt = LogFormat::Nfw {
            firewall_name: "fw".into(),
            availability_zone: "az1".into(),
        };
        let mut sink = LogSink::create(
            &dir,
            LogConfig {
                format: fmt,
                ..LogConfig::default()
            },
        )
        .unwrap();
        sink.flow_end(&sample(), LOG_TS).unwrap();
        sink.alert(
            Timestamp(1_602_627_001_006_481),
            &serde_json::json!({"event_type":"alert"}),
        )
        .unwrap();
        sink.flush().unwrap();
        let flow = std::fs::read_to_string(dir.join("flow.log")).unwrap();
        let first = flow.lines().next().unwrap();
        assert!(first.starts_with(r#"{"firewall_name":"fw","availability_zone":"az1","event_timestamp":"1464332171","event":{"timestamp":"2016-05-27T06:56:11.900923+0000","flow_id":42,"event_type":"netflow","src_ip":"10.16.1.11","src_port":46652"#));
        assert!(first.ends_with(
            r#""tcp":{"tcp_flags":"1b","syn":true,"fin":true,"psh":true,"ack":true}}}"#
        ));
        assert_eq!(flow.lines().count(), 2);
        // The Athena table's netflow.tcp_flags struct, every flag spelled out.
        let v: serde_json::Value = serde_json::from_str(first).unwrap();
        assert_eq!(
            v["event"]["netflow"]["tcp_flags"],
            serde_json::json!({"syn":true,"fin":true,"rst":false,"psh":true,"ack":true,"urg":false})
        );
        let alert = std::fs::read_to_string(dir.join("alert.log")).unwrap();
        assert_eq!(
            alert.trim(),
            r#"{"firewall_name":"fw","availability_zone":"az1","event_timestamp":"1602627001","event":{"event_type":"alert"}}"#
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn smtp_tx(flow_end: bool) -> AppTxRecord {
        AppTxRecord {
            ts: Timestamp(1_254_722_772_387_595),
            pkt_num: if flow_end { 0 } else { 53 },
            flow_id: 1_124_577_434_212_891,
            tuple: sekisho_engine::PacketTuple {
                src_ip: "10.10.1.4".parse().unwrap(),
                dst_ip: "74.53.140.153".parse().unwrap(),
                src_port: 1470,
                dst_port: 25,
                proto: 6,
            },
            vlan: vec![],
            tx_id: 0,
            app: AppTxData::Smtp(SmtpEve {
                helo: Some("GP".into()),
                mail_from: Some("<gurpartap@patriots.in>".into()),
                rcpt_to: vec!["<raj_deol2002in@yahoo.co.in>".into()],
                email: Some(EmailEve::from_headers(
                    b"From: \"Gurpartap Singh\" <gurpartap@patriots.in>\r\nTo: <raj_deol2002in@yahoo.co.in>\r\nSubject: SMTP\r\n\r\n",
                )),
            }),
            flow_end,
        }
    }

    /// The `smtp-eve` example of suricata-eve.md §6 (without `email.attachment`: MIME parts
    /// are not decoded); a tx without DATA has no `email` object.
    #[test]
    fn smtp_record_matches_suricata() {
        let dir = std::env::temp_dir().join(format!("sekisho-eve-smtp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut sink = LogSink::create(&dir, LogConfig::default()).unwrap();
        sink.app_tx(&smtp_tx(false)).unwrap();
        let mut open = smtp_tx(true);
        open.app = AppTxData::Smtp(SmtpEve {
            helo: Some("h".into()),
            ..SmtpEve::default()
        });
        sink.app_tx(&open).unwrap();
        sink.flush().unwrap();
        assert_eq!(sink.counts().app_txs, 2);
        let text = std::fs::read_to_string(dir.join("eve.json")).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            r#"{"timestamp":"2009-10-05T06:06:12.387595+0000","flow_id":1124577434212891,"pcap_cnt":53,"event_type":"smtp","src_ip":"10.10.1.4","src_port":1470,"dest_ip":"74.53.140.153","dest_port":25,"ip_v":4,"proto":"TCP","pkt_src":"wire/pcap","tx_id":0,"smtp":{"helo":"GP","mail_from":"<gurpartap@patriots.in>","rcpt_to":["<raj_deol2002in@yahoo.co.in>"]},"email":{"from":"\"Gurpartap Singh\" <gurpartap@patriots.in>","to":["<raj_deol2002in@yahoo.co.in>"],"status":"PARSE_DONE"}}"#
        );
        // Logged at flow end: no pcap_cnt, pseudo-packet source; absent keys omitted.
        assert_eq!(
            lines[1],
            r#"{"timestamp":"2009-10-05T06:06:12.387595+0000","flow_id":1124577434212891,"event_type":"smtp","src_ip":"10.10.1.4","src_port":1470,"dest_ip":"74.53.140.153","dest_port":25,"ip_v":4,"proto":"TCP","pkt_src":"stream (flow timeout)","tx_id":0,"smtp":{"helo":"h"}}"#
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// After STARTTLS: `app_proto` tls, `app_proto_orig` smtp; a to-client protocol that
    /// differs shows as `app_proto_tc` and is that netflow half's `app_proto`.
    #[test]
    fn flow_app_proto_variants() {
        let dir = std::env::temp_dir().join(format!("sekisho-eve-app-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut sink = LogSink::create(
            &dir,
            LogConfig {
                netflow: true,
                ..LogConfig::default()
            },
        )
        .unwrap();
        let mut f = sample();
        f.app_proto = Some("tls".into());
        f.app_proto_orig = Some("smtp");
        sink.flow_end(&f, LOG_TS).unwrap();
        let mut g = sample();
        g.app_proto = Some("tls".into());
        g.app_proto_tc = Some("smtp");
        sink.flow_end(&g, LOG_TS).unwrap();
        sink.flush().unwrap();
        let text = std::fs::read_to_string(dir.join("eve.json")).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0]
            .contains(r#""proto":"TCP","app_proto":"tls","app_proto_orig":"smtp","flow":{"#));
        assert!(lines[1].contains(r#""app_proto":"tls","netflow""#));
        assert!(
            lines[3].contains(r#""proto":"TCP","app_proto":"tls","app_proto_tc":"smtp","flow":{"#)
        );
        assert!(lines[4]
            .contains(r#""dest_port":80,"ip_v":4,"proto":"TCP","app_proto":"tls","netflow""#));
        assert!(lines[5].contains(r#""src_port":80,"dest_ip":"10.16.1.11","dest_port":46652,"ip_v":4,"proto":"TCP","app_proto":"smtp","netflow""#));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Network Firewall logs no transaction records.
    #[test]
    fn nfw_writes_no_smtp() {
        let dir = std::env::temp_dir().join(format!("sekisho-nfw-smtp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut sink = LogSink::create(
            &dir,
            LogConfig {
                format: LogFormat::Nfw {
                    firewall_name: "fw".into(),
                    availability_zone: "az1".into(),
                },
                ..LogConfig::default()
            },
        )
        .unwrap();
        sink.app_tx(&smtp_tx(false)).unwrap();
        sink.flush().unwrap();
        assert_eq!(sink.counts().app_txs, 0);
        for f in ["alert.log", "flow.log"] {
            assert_eq!(std::fs::read_to_string(dir.join(f)).unwrap(), "");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn app_anomaly(pkt_num: u64) -> AppAnomalyRecord {
        AppAnomalyRecord {
            ts: Timestamp(1_392_836_559_994_093),
            pkt_num,
            flow_id: 7,
            tuple: sekisho_engine::PacketTuple {
                src_ip: "192.168.1.10".parse().unwrap(),
                dst_ip: "10.0.0.25".parse().unwrap(),
                src_port: 49740,
                dst_port: 25,
                proto: 6,
            },
            vlan: vec![],
            tx_id: Some(0),
            app_proto: "smtp",
            event: "INVALID_REPLY",
        }
    }

    /// Suricata's app-layer anomaly shape; nothing unless `anomaly_app` is on (and never in
    /// the NFW format).
    #[test]
    fn app_anomaly_record_matches_suricata() {
        let dir = std::env::temp_dir().join(format!("sekisho-eve-appanom-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut off = LogSink::create(&dir, LogConfig::default()).unwrap();
        off.anomaly_app(&app_anomaly(12)).unwrap();
        off.flush().unwrap();
        drop(off);
        assert_eq!(std::fs::read_to_string(dir.join("eve.json")).unwrap(), "");
        let cfg = LogConfig {
            anomaly_app: true,
            ..LogConfig::default()
        };
        let mut sink = LogSink::create(&dir, cfg).unwrap();
        sink.anomaly_app(&app_anomaly(12)).unwrap();
        let mut at_end = app_anomaly(0);
        at_end.tx_id = None;
        sink.anomaly_app(&at_end).unwrap();
        sink.flush().unwrap();
        let text = std::fs::read_to_string(dir.join("eve.json")).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                r#"{"timestamp":"2014-02-19T19:02:39.994093+0000","flow_id":7,"pcap_cnt":12,"event_type":"anomaly","src_ip":"192.168.1.10","src_port":49740,"dest_ip":"10.0.0.25","dest_port":25,"ip_v":4,"proto":"TCP","pkt_src":"wire/pcap","tx_id":0,"anomaly":{"app_proto":"smtp","type":"applayer","event":"INVALID_REPLY","layer":"proto_parser"}}"#,
                r#"{"timestamp":"2014-02-19T19:02:39.994093+0000","flow_id":7,"event_type":"anomaly","src_ip":"192.168.1.10","src_port":49740,"dest_ip":"10.0.0.25","dest_port":25,"ip_v":4,"proto":"TCP","pkt_src":"stream (flow timeout)","anomaly":{"app_proto":"smtp","type":"applayer","event":"INVALID_REPLY","layer":"proto_parser"}}"#,
            ]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
