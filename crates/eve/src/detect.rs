//! EVE `alert` and `drop` records for detection's [`AlertRecord`] / [`DropRecord`].
//!
//! Key order is Suricata's (suricata-eve.md §3, §9). Under the NFW envelope the alert event
//! carries the fields of AWS's samples (no `gid`, `pcap_cnt`, `ip_v`, `pkt_src`,
//! `direction`); NFW has no drop log, so drops are EVE only.
//!
//! Not written (the engine does not carry them to detection yet): the alert's `flow{…}`
//! counters object, and in `drop{…}` the IP header fields (`len`, `tos`, `ttl`, `ipid`) and
//! TCP sequence numbers; `drop` holds the TCP flag booleans and `reason`.

use sekisho_engine::app::AppTxData;
use sekisho_engine::records::{AlertInfo, AlertRecord, DropRecord, PacketHead};
use sekisho_engine::Direction;
use serde::Serialize;

use crate::dns::DnsObj;
use crate::http::HttpObj;
use crate::smtp::SmtpObj;
use crate::tls::TlsObj;
use crate::{format_timestamp, has_ports, proto_name, RecordHead};

#[derive(Serialize)]
struct AlertObj<'a> {
    action: &'static str,
    /// `"fw"` for firewall-mode alerts (Suricata writes `engine` only in firewall mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    engine: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gid: Option<u64>,
    signature_id: u64,
    rev: u64,
    signature: &'a str,
    category: &'a str,
    severity: u8,
}

impl<'a> AlertObj<'a> {
    fn new(a: &'a AlertInfo, nfw: bool) -> Self {
        AlertObj {
            action: if a.blocked { "blocked" } else { "allowed" },
            engine: None,
            gid: (!nfw).then_some(a.gid),
            signature_id: a.sid,
            rev: a.rev,
            signature: &a.signature,
            category: &a.category,
            severity: a.severity,
        }
    }
}

/// The header of a per-packet record about `h`; NFW's alert samples have no `pcap_cnt`,
/// `ip_v` or `pkt_src`.
pub(crate) fn head(h: &PacketHead, event_type: &'static str, nfw: bool) -> RecordHead<'static> {
    let ports = has_ports(h.proto);
    RecordHead {
        timestamp: format_timestamp(h.ts),
        flow_id: h.flow_id,
        pcap_cnt: (!nfw).then_some(h.pkt_num),
        event_type,
        vlan: &[],
        src_ip: crate::eve_ip(h.src_ip),
        src_port: ports.then_some(h.src_port),
        dest_ip: crate::eve_ip(h.dst_ip),
        dest_port: ports.then_some(h.dst_port),
        ip_v: (!nfw).then_some(if h.src_ip.is_ipv4() { 4 } else { 6 }),
        proto: proto_name(h.proto),
        pkt_src: (!nfw).then_some("wire/pcap"),
    }
}

fn dir_str(d: Direction) -> &'static str {
    match d {
        Direction::ToServer => "to_server",
        Direction::ToClient => "to_client",
    }
}

/// An `alert` record (EVE or NFW shape).
#[derive(Serialize)]
pub(crate) struct AlertEvent<'a> {
    #[serde(flatten)]
    head: RecordHead<'static>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tx_id: Option<u64>,
    alert: AlertObj<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    firewall: Option<FwObj<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    smtp: Option<SmtpObj<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls: Option<TlsObj<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http: Option<HttpObj<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dns: Option<DnsObj<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    app_proto: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    direction: Option<&'static str>,
}

#[derive(Serialize)]
struct FwObj<'a> {
    hook: &'a str,
    policy: &'a str,
}

impl<'a> AlertEvent<'a> {
    pub(crate) fn new(r: &'a AlertRecord, nfw: bool) -> Self {
        let mut alert = AlertObj::new(&r.alert, nfw);
        if r.firewall.is_some() {
            alert.engine = Some("fw");
        }
        AlertEvent {
            head: head(&r.head, "alert", nfw),
            tx_id: r.tx.as_ref().map(|(id, _)| *id),
            alert,
            firewall: r
                .firewall
                .as_ref()
                .map(|(hook, policy)| FwObj { hook, policy }),
            smtp: r.tx.as_ref().and_then(|(_, t)| match t {
                AppTxData::Smtp(s) => Some(SmtpObj::from(s)),
                _ => None,
            }),
            tls: r.tx.as_ref().and_then(|(_, t)| match t {
                AppTxData::Tls(s) => Some(TlsObj::new(s, nfw)),
                _ => None,
            }),
            http: r.tx.as_ref().and_then(|(_, t)| match t {
                AppTxData::Http(h) => Some(HttpObj::new(h, nfw)),
                _ => None,
            }),
            // NFW's alert logs carry no DNS object; EVE alerts carry the message's.
            dns: r.tx.as_ref().and_then(|(_, t)| match t {
                AppTxData::Dns(d) if !nfw => Some(DnsObj::new(d)),
                _ => None,
            }),
            app_proto: r.head.app_proto.map(|a| a.as_str()),
            direction: (!nfw).then_some(dir_str(r.head.direction)),
        }
    }
}

#[derive(Serialize)]
struct DropObj {
    #[serde(skip_serializing_if = "Option::is_none")]
    syn: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ack: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    psh: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rst: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    urg: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fin: Option<bool>,
    payload_len: usize,
    reason: &'static str,
}

/// A `drop` record (EVE only).
#[derive(Serialize)]
pub(crate) struct DropEvent<'a> {
    #[serde(flatten)]
    head: RecordHead<'static>,
    direction: &'static str,
    drop: DropObj,
    #[serde(skip_serializing_if = "Option::is_none")]
    alert: Option<AlertObj<'a>>,
}

impl<'a> DropEvent<'a> {
    pub(crate) fn new(r: &'a DropRecord) -> Self {
        let tcp = r.head.proto == 6;
        let f = |bit: u8| tcp.then_some(r.tcp_flags & bit != 0);
        DropEvent {
            head: head(&r.head, "drop", false),
            direction: dir_str(r.head.direction),
            drop: DropObj {
                syn: f(0x02),
                ack: f(0x10),
                psh: f(0x08),
                rst: f(0x04),
                urg: f(0x20),
                fin: f(0x01),
                payload_len: r.payload_len,
                reason: r.reason,
            },
            alert: r.alert.as_ref().map(|a| AlertObj::new(a, false)),
        }
    }
}

impl crate::LogSink {
    /// Writes an `alert` record from detection: EVE into `eve.json` (when alerts are
    /// enabled), or the NFW shape in its envelope into `alert.log`.
    pub fn alert_record(&mut self, r: &AlertRecord) -> std::io::Result<()> {
        match &self.config.format {
            crate::LogFormat::Eve => {
                if !self.config.alert {
                    return Ok(());
                }
                crate::write_line(
                    &mut self.line,
                    self.eve.as_mut(),
                    &AlertEvent::new(r, false),
                )?;
            }
            crate::LogFormat::Nfw {
                firewall_name,
                availability_zone,
            } => {
                let env = crate::Envelope {
                    firewall_name,
                    availability_zone,
                    event_timestamp: r.head.ts.secs().to_string(),
                    event: AlertEvent::new(r, true),
                };
                crate::write_line(&mut self.line, self.alert.as_mut(), &env)?;
            }
        }
        self.counts.alerts += 1;
        Ok(())
    }

    /// Writes a `drop` record (EVE only; NFW has no drop log).
    pub fn drop_record(&mut self, r: &DropRecord) -> std::io::Result<()> {
        if self.config.format != crate::LogFormat::Eve || !self.config.drop {
            return Ok(());
        }
        crate::write_line(&mut self.line, self.eve.as_mut(), &DropEvent::new(r))
    }
}
