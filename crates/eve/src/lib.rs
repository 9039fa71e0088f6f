//! Log output: Suricata EVE JSON and the AWS Network Firewall log envelope.
//!
//! The engine produces facts (a flow ended, counters); this crate turns them into log lines
//! the way Suricata 8 writes them (`eve.json`: `flow`, `netflow`, `stats`, `alert` records,
//! key order as Suricata's) or the way AWS Network Firewall delivers them (`alert.log` and
//! `flow.log`, each line an envelope `{firewall_name, availability_zone, event_timestamp,
//! event}` around an EVE object, flow records being `netflow` events, one per direction).
//!
//! Times are microseconds since the Unix epoch and are printed in UTC with Suricata's format
//! `2026-11-22T03:41:00.123456+0000` (Suricata prints local time; sekisho always prints UTC so
//! logs do not depend on the machine's time zone).
//!
//! All writers are buffered; call [`LogSink::flush`] before exit (and on SIGTERM): nothing
//! handed to the sink is lost once `flush` returned.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// Formats microseconds since the epoch as `YYYY-MM-DDTHH:MM:SS.uuuuuu+0000` (UTC).
pub fn format_timestamp(micros: u64) -> String {
    let secs = micros / 1_000_000;
    let usec = micros % 1_000_000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{usec:06}+0000",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
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
    format!("{flags:02x}")
}

/// Per-direction counters of a flow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirCounters {
    /// Packets seen in this direction.
    pub pkts: u64,
    /// Bytes seen in this direction (whole frames as captured on the wire, link header included,
    /// like Suricata's `bytes_toserver`).
    pub bytes: u64,
    /// OR of the TCP flags seen in this direction (0 for non-TCP).
    pub tcp_flags: u8,
    /// Lowest IP TTL / hop limit seen (0 if no packet).
    pub min_ttl: u8,
    /// Highest IP TTL / hop limit seen.
    pub max_ttl: u8,
}

/// TCP state of a flow at logging time, Suricata's names (`syn_sent`, `established`, `closed`…).
pub type TcpStateName = &'static str;

/// Everything a `flow` / `netflow` record needs about one ended flow.
///
/// Orientation is client → server (`src` is the client).
#[derive(Debug, Clone, PartialEq)]
pub struct FlowLog {
    /// Flow id (< 2^51), shared by every record of the flow.
    pub flow_id: u64,
    /// Time the record is logged (µs since epoch).
    pub log_ts: u64,
    /// Client address.
    pub src_ip: IpAddr,
    /// Server address.
    pub dst_ip: IpAddr,
    /// Client port (0 when the protocol has none).
    pub src_port: u16,
    /// Server port.
    pub dst_port: u16,
    /// IP protocol number.
    pub proto: u8,
    /// ICMP type and code of the first packet (ICMP flows only).
    pub icmp: Option<(u8, u8)>,
    /// ICMP type and code of the first server-to-client packet (EVE `response_icmp_type`,
    /// `response_icmp_code`); `None` when the peer never answered.
    pub icmp_response: Option<(u8, u8)>,
    /// VLAN ids, outermost first (empty when untagged).
    pub vlan: Vec<u16>,
    /// Detected application protocol, if any.
    pub app_proto: Option<String>,
    /// Client → server counters.
    pub to_server: DirCounters,
    /// Server → client counters.
    pub to_client: DirCounters,
    /// Time of the first packet (µs).
    pub start: u64,
    /// Time of the last packet (µs).
    pub end: u64,
    /// `new`, `established`, `closed` (Suricata's flow states).
    pub state: &'static str,
    /// `timeout`, `forced`, `shutdown`, `tcp_reuse`, `unknown`.
    pub reason: &'static str,
    /// Whether an alert fired on the flow.
    pub alerted: bool,
    /// `drop` / `accept` / `pass` when a verdict applied to the flow.
    pub action: Option<&'static str>,
    /// TCP session state name (TCP flows only).
    pub tcp_state: Option<TcpStateName>,
}

impl FlowLog {
    fn ip_v(&self) -> u8 {
        if self.src_ip.is_ipv4() {
            4
        } else {
            6
        }
    }
    fn has_ports(&self) -> bool {
        matches!(self.proto, 6 | 17 | 132)
    }
    fn is_tcp(&self) -> bool {
        self.proto == 6
    }
}

/// Kind of a packet anomaly (EVE `anomaly.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnomalyKind {
    /// A decoder event (`anomaly.event` is `decoder.<name>`).
    Decode,
    /// A TCP stream event (`anomaly.event` is `stream.<name>`).
    Stream,
}

/// A packet anomaly to log as an EVE `anomaly` record.
#[derive(Debug, Clone, PartialEq)]
pub struct AnomalyLog {
    /// Packet time (µs).
    pub ts: u64,
    /// Flow the packet belongs to, if it got that far.
    pub flow_id: Option<u64>,
    /// 1-based packet number (`pcap_cnt`).
    pub pcap_cnt: u64,
    /// Decode or stream.
    pub kind: AnomalyKind,
    /// Event name without the `decoder.`/`stream.` prefix (e.g. `ipv4.trunc_pkt`).
    pub event: &'static str,
    /// VLAN ids of the packet.
    pub vlan: Vec<u16>,
    /// (src, dst, src port, dst port, proto) of the packet when known.
    pub tuple: Option<(IpAddr, IpAddr, u16, u16, u8)>,
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
    /// EVE only: write `anomaly` records of type `decode` (Suricata default: no).
    pub anomaly_decode: bool,
    /// EVE only: write `anomaly` records of type `stream` (Suricata default: no).
    pub anomaly_stream: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Eve,
            flow: true,
            netflow: false,
            stats: true,
            alert: true,
            anomaly_decode: false,
            anomaly_stream: false,
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
    /// `netflow` envelopes into `flow.log` (NFW).
    pub fn flow_end(&mut self, f: &FlowLog) -> io::Result<()> {
        match &self.config.format {
            LogFormat::Eve => {
                if self.config.flow {
                    self.line.clear();
                    serde_json::to_writer(&mut self.line, &flow_event(f))
                        .map_err(io::Error::other)?;
                    self.line.push(b'\n');
                    if let Some(w) = &mut self.eve {
                        w.write_all(&self.line)?;
                    }
                    self.counts.flows += 1;
                }
                if self.config.netflow {
                    for to_server in [true, false] {
                        self.line.clear();
                        serde_json::to_writer(&mut self.line, &netflow_event(f, to_server, false))
                            .map_err(io::Error::other)?;
                        self.line.push(b'\n');
                        if let Some(w) = &mut self.eve {
                            w.write_all(&self.line)?;
                        }
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
                        event_timestamp: (f.log_ts / 1_000_000).to_string(),
                        event: netflow_event(f, to_server, true),
                    };
                    self.line.clear();
                    serde_json::to_writer(&mut self.line, &env).map_err(io::Error::other)?;
                    self.line.push(b'\n');
                    if let Some(w) = &mut self.flow {
                        w.write_all(&self.line)?;
                    }
                    self.counts.netflows += 1;
                }
            }
        }
        Ok(())
    }

    /// Writes an `anomaly` record (EVE only, and only for the kinds enabled in the config).
    pub fn anomaly(&mut self, a: &AnomalyLog) -> io::Result<()> {
        let enabled = match a.kind {
            AnomalyKind::Decode => self.config.anomaly_decode,
            AnomalyKind::Stream => self.config.anomaly_stream,
        };
        if self.config.format != LogFormat::Eve || !enabled {
            return Ok(());
        }
        let (kind, prefix) = match a.kind {
            AnomalyKind::Decode => ("decode", "decoder."),
            AnomalyKind::Stream => ("stream", "stream."),
        };
        let ports = a.tuple.is_some_and(|t| matches!(t.4, 6 | 17 | 132));
        let ev = AnomalyEvent {
            timestamp: format_timestamp(a.ts),
            flow_id: a.flow_id,
            pcap_cnt: a.pcap_cnt,
            event_type: "anomaly",
            vlan: &a.vlan,
            src_ip: a.tuple.map(|t| t.0.to_string()),
            src_port: a.tuple.filter(|_| ports).map(|t| t.2),
            dest_ip: a.tuple.map(|t| t.1.to_string()),
            dest_port: a.tuple.filter(|_| ports).map(|t| t.3),
            ip_v: a.tuple.map(|t| if t.0.is_ipv4() { 4 } else { 6 }),
            proto: a.tuple.map(|t| proto_name(t.4)),
            pkt_src: "wire/pcap",
            anomaly: AnomalyObj {
                r#type: kind,
                event: format!("{prefix}{}", a.event),
            },
        };
        self.line.clear();
        serde_json::to_writer(&mut self.line, &ev).map_err(io::Error::other)?;
        self.line.push(b'\n');
        if let Some(w) = &mut self.eve {
            w.write_all(&self.line)?;
        }
        Ok(())
    }

    /// Writes one alert record. `event` is a complete EVE alert object (header, `alert{…}`,
    /// flow…), built by the detection layer; `ts_micros` is its packet time (used for the NFW
    /// envelope's `event_timestamp`).
    pub fn alert(&mut self, ts_micros: u64, event: &serde_json::Value) -> io::Result<()> {
        self.line.clear();
        match &self.config.format {
            LogFormat::Eve => {
                if !self.config.alert {
                    return Ok(());
                }
                serde_json::to_writer(&mut self.line, event).map_err(io::Error::other)?;
                self.line.push(b'\n');
                if let Some(w) = &mut self.eve {
                    w.write_all(&self.line)?;
                }
            }
            LogFormat::Nfw {
                firewall_name,
                availability_zone,
            } => {
                let env = Envelope {
                    firewall_name,
                    availability_zone,
                    event_timestamp: (ts_micros / 1_000_000).to_string(),
                    event,
                };
                serde_json::to_writer(&mut self.line, &env).map_err(io::Error::other)?;
                self.line.push(b'\n');
                if let Some(w) = &mut self.alert {
                    w.write_all(&self.line)?;
                }
            }
        }
        self.counts.alerts += 1;
        Ok(())
    }

    /// Writes a `stats` record (EVE only; NFW has no stats log). `counters` are dotted names
    /// (`decoder.pkts`), nested into objects as Suricata does; `uptime` is in seconds.
    pub fn stats<'a>(
        &mut self,
        ts_micros: u64,
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
            timestamp: format_timestamp(ts_micros),
            event_type: "stats",
            stats: StatsObj {
                uptime,
                counters: root,
            },
        };
        self.line.clear();
        serde_json::to_writer(&mut self.line, &ev).map_err(io::Error::other)?;
        self.line.push(b'\n');
        if let Some(w) = &mut self.eve {
            w.write_all(&self.line)?;
        }
        Ok(())
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

#[derive(Serialize)]
struct AnomalyObj {
    r#type: &'static str,
    event: String,
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

fn age(start: u64, end: u64) -> u64 {
    (end / 1_000_000).saturating_sub(start / 1_000_000)
}

fn flow_event(f: &FlowLog) -> FlowEvent<'_> {
    let ports = f.has_ports();
    let tcp = f.is_tcp().then(|| {
        let mut t = TcpObj::from_flags(f.to_server.tcp_flags | f.to_client.tcp_flags);
        t.tcp_flags_ts = Some(tcp_flags_hex(f.to_server.tcp_flags));
        t.tcp_flags_tc = Some(tcp_flags_hex(f.to_client.tcp_flags));
        t.state = f.tcp_state;
        t
    });
    FlowEvent {
        timestamp: format_timestamp(f.log_ts),
        flow_id: f.flow_id,
        event_type: "flow",
        vlan: &f.vlan,
        src_ip: f.src_ip.to_string(),
        src_port: ports.then_some(f.src_port),
        dest_ip: f.dst_ip.to_string(),
        dest_port: ports.then_some(f.dst_port),
        ip_v: f.ip_v(),
        proto: proto_name(f.proto),
        icmp_type: f.icmp.map(|i| i.0),
        icmp_code: f.icmp.map(|i| i.1),
        response_icmp_type: f.icmp_response.map(|i| i.0),
        response_icmp_code: f.icmp_response.map(|i| i.1),
        app_proto: f.app_proto.as_deref(),
        flow: FlowObj {
            pkts_toserver: f.to_server.pkts,
            pkts_toclient: f.to_client.pkts,
            bytes_toserver: f.to_server.bytes,
            bytes_toclient: f.to_client.bytes,
            start: format_timestamp(f.start),
            end: format_timestamp(f.end),
            age: age(f.start, f.end),
            state: f.state,
            reason: f.reason,
            alerted: f.alerted,
            action: f.action,
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
fn netflow_event(f: &FlowLog, to_server: bool, nfw: bool) -> NetflowEvent<'_> {
    let ports = f.has_ports();
    let (d, src_ip, dst_ip, sp, dp) = if to_server {
        (&f.to_server, f.src_ip, f.dst_ip, f.src_port, f.dst_port)
    } else {
        (&f.to_client, f.dst_ip, f.src_ip, f.dst_port, f.src_port)
    };
    NetflowEvent {
        timestamp: format_timestamp(f.log_ts),
        flow_id: f.flow_id,
        event_type: "netflow",
        vlan: if nfw { &[] } else { &f.vlan },
        src_ip: src_ip.to_string(),
        src_port: ports.then_some(sp),
        dest_ip: dst_ip.to_string(),
        dest_port: ports.then_some(dp),
        ip_v: (!nfw).then(|| f.ip_v()),
        proto: proto_name(f.proto),
        app_proto: f.app_proto.as_deref(),
        netflow: NetflowObj {
            pkts: d.pkts,
            bytes: d.bytes,
            start: format_timestamp(f.start),
            end: format_timestamp(f.end),
            age: age(f.start, f.end),
            min_ttl: d.min_ttl,
            max_ttl: d.max_ttl,
            tcp_flags: (nfw && f.is_tcp()).then(|| NfwTcpFlags::from_flags(d.tcp_flags)),
        },
        tcp: f.is_tcp().then(|| TcpObj::from_flags(d.tcp_flags)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_format_matches_suricata() {
        // 2009-10-05T06:06:15.106015+0000 from the smtp-eve example.
        assert_eq!(
            format_timestamp(1_254_722_775_106_015),
            "2009-10-05T06:06:15.106015+0000"
        );
        assert_eq!(format_timestamp(0), "1970-01-01T00:00:00.000000+0000");
        // Leap day.
        assert_eq!(
            format_timestamp(951_782_400_000_001),
            "2000-02-29T00:00:00.000001+0000"
        );
    }

    fn sample() -> FlowLog {
        FlowLog {
            flow_id: 42,
            log_ts: 1_464_332_171_900_923,
            src_ip: "10.16.1.11".parse().unwrap(),
            dst_ip: "82.165.177.154".parse().unwrap(),
            src_port: 46652,
            dst_port: 80,
            proto: 6,
            icmp: None,
            icmp_response: None,
            vlan: vec![],
            app_proto: Some("http".into()),
            to_server: DirCounters {
                pkts: 6,
                bytes: 425,
                tcp_flags: 0x1b,
                min_ttl: 64,
                max_ttl: 64,
            },
            to_client: DirCounters {
                pkts: 4,
                bytes: 495,
                tcp_flags: 0x1b,
                min_ttl: 50,
                max_ttl: 50,
            },
            start: 1_464_332_171_304_062,
            end: 1_464_332_171_900_923,
            state: "closed",
            reason: "shutdown",
            alerted: false,
            action: None,
            tcp_state: Some("closed"),
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
        sink.flow_end(&sample()).unwrap();
        sink.stats(
            1_464_332_171_900_923,
            1,
            [("decoder.pkts", 10u64), ("flow.tcp", 1)],
        )
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
        sink.flow_end(&sample()).unwrap();
        sink.alert(
            1_602_627_001_006_481,
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
}
