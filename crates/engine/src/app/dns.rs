//! DNS: detected on port 53 from the message header; each message (a UDP datagram, or a
//! length-prefixed message on TCP) is one transaction, decoded by `hickory-proto` (names
//! decompressed with its pointer and length limits). DNS claims port 53 exclusively:
//! nothing else is probed there.
//!
//! Bounded: at most [`MAX_LIVE_TXS`] messages wait to be logged, at most [`MAX_RECORDS`]
//! records of each section are kept, a TCP message being assembled is at most 65,535 + 2
//! bytes. A message that does not decode raises `MALFORMED_DATA` and is not a transaction.

use std::collections::VecDeque;

use crate::app::detect::Probe;
use crate::app::registry::{AppProto, AppTxData, BufferDef, Feed, Parser, ProbeCtx, ProtoDef};
use crate::config::AppLayerConfig;
use crate::event::Direction;

/// Messages kept until logged.
pub const MAX_LIVE_TXS: usize = 256;
/// Records kept per section of a message.
pub const MAX_RECORDS: usize = 64;

/// One resource record, as EVE prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsRecord {
    /// Owner name, without the trailing dot.
    pub rrname: String,
    /// Type mnemonic (`A`, `AAAA`, `CNAME`...).
    pub rrtype: String,
    /// Type code (1 = A), for `dns.rrtype`.
    pub rrtype_code: u16,
    /// TTL (answers and authorities).
    pub ttl: u32,
    /// Record data as Suricata prints it (answers and authorities): addresses, names
    /// without the trailing dot (CNAME, NS, PTR, and MX: the exchange only), one TXT
    /// character-string; empty for SOA and SRV, which have their own objects.
    pub rdata: String,
    /// SOA data (EVE `soa`).
    pub soa: Option<DnsSoa>,
    /// SRV data (EVE `srv`).
    pub srv: Option<DnsSrv>,
}

/// The fields of an SOA record (EVE `soa{mname, rname, serial, refresh, retry, expire,
/// minimum}`); times in seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsSoa {
    /// Primary name server, without the trailing dot.
    pub mname: String,
    /// Responsible mailbox as a name, without the trailing dot.
    pub rname: String,
    /// Zone serial.
    pub serial: u32,
    /// Refresh interval.
    pub refresh: u32,
    /// Retry interval.
    pub retry: u32,
    /// Expiry.
    pub expire: u32,
    /// Negative-caching TTL.
    pub minimum: u32,
}

/// The fields of an SRV record (EVE `srv{priority, weight, port, name}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsSrv {
    /// Priority.
    pub priority: u16,
    /// Weight.
    pub weight: u16,
    /// Port.
    pub port: u16,
    /// Target, without the trailing dot.
    pub name: String,
}

/// One DNS message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsTx {
    /// Transaction id within the flow.
    pub tx_id: u64,
    /// A response (QR set).
    pub response: bool,
    /// Message id.
    pub id: u16,
    /// The header's flags word (bytes 2..4).
    pub flags: u16,
    /// Opcode.
    pub opcode: u8,
    /// Response code mnemonic (`NOERROR`, `NXDOMAIN`...).
    pub rcode: String,
    /// Questions.
    pub queries: Vec<DnsRecord>,
    /// Answers.
    pub answers: Vec<DnsRecord>,
    /// Authorities.
    pub authorities: Vec<DnsRecord>,
    /// Additionals (EDNS OPT left out).
    pub additionals: Vec<DnsRecord>,
}

/// A name as Suricata shows it (EVE and the `dns.*` buffers): the label bytes joined with
/// dots, unescaped (hickory's presentation form would escape `=` and the like, which the
/// wire does not carry), no trailing dot; the root is empty.
fn name_text(n: &hickory_proto::rr::Name) -> String {
    let mut out = Vec::with_capacity(n.len());
    for (i, label) in n.iter().enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        out.extend_from_slice(label);
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The records of one section as EVE shows them. A TXT record with several
/// character-strings becomes one record per string, as Suricata logs it.
fn records(rs: &[hickory_proto::rr::Record]) -> Vec<DnsRecord> {
    use hickory_proto::rr::RData;
    let mut out = Vec::new();
    for r in rs
        .iter()
        .filter(|r| r.record_type() != hickory_proto::rr::RecordType::OPT)
    {
        let rec = |rdata: String| DnsRecord {
            rrname: name_text(&r.name),
            rrtype: r.record_type().to_string(),
            rrtype_code: u16::from(r.record_type()),
            ttl: r.ttl,
            rdata,
            soa: None,
            srv: None,
        };
        match &r.data {
            RData::CNAME(n) => out.push(rec(name_text(&n.0))),
            RData::NS(n) => out.push(rec(name_text(&n.0))),
            RData::PTR(n) => out.push(rec(name_text(&n.0))),
            RData::MX(mx) => out.push(rec(name_text(&mx.exchange))),
            RData::TXT(t) if !t.txt_data.is_empty() => {
                for part in t.txt_data.iter() {
                    out.push(rec(String::from_utf8_lossy(part).into_owned()));
                }
            }
            RData::SOA(soa) => out.push(DnsRecord {
                soa: Some(DnsSoa {
                    mname: name_text(&soa.mname),
                    rname: name_text(&soa.rname),
                    serial: soa.serial,
                    refresh: soa.refresh as u32,
                    retry: soa.retry as u32,
                    expire: soa.expire as u32,
                    minimum: soa.minimum,
                }),
                ..rec(String::new())
            }),
            RData::SRV(srv) => out.push(DnsRecord {
                srv: Some(DnsSrv {
                    priority: srv.priority,
                    weight: srv.weight,
                    port: srv.port,
                    name: name_text(&srv.target),
                }),
                ..rec(String::new())
            }),
            other => out.push(rec(other.to_string())),
        }
        if out.len() >= MAX_RECORDS {
            out.truncate(MAX_RECORDS);
            break;
        }
    }
    out
}

impl DnsTx {
    /// Decodes one message, `None` when it does not decode.
    pub fn decode(tx_id: u64, msg: &[u8]) -> Option<DnsTx> {
        let m = hickory_proto::op::Message::from_vec(msg).ok()?;
        let flags = u16::from_be_bytes([*msg.get(2)?, *msg.get(3)?]);
        let queries = m
            .queries
            .iter()
            .take(MAX_RECORDS)
            .map(|q| DnsRecord {
                rrname: name_text(q.name()),
                rrtype: q.query_type().to_string(),
                rrtype_code: u16::from(q.query_type()),
                ttl: 0,
                rdata: String::new(),
                soa: None,
                srv: None,
            })
            .collect();
        Some(DnsTx {
            tx_id,
            response: flags & 0x8000 != 0,
            id: u16::from_be_bytes([msg[0], msg[1]]),
            flags,
            opcode: ((flags >> 11) & 0x0f) as u8,
            rcode: rcode_name(flags & 0x000f),
            queries,
            answers: records(&m.answers),
            authorities: records(&m.authorities),
            additionals: records(&m.additionals),
        })
    }

    /// The record for the log writers.
    pub fn eve(&self) -> DnsTx {
        self.clone()
    }
}

fn rcode_name(c: u16) -> String {
    match c {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        _ => return c.to_string(),
    }
    .to_string()
}

/// The DNS parser of one flow.
#[derive(Debug, Clone, Default)]
pub struct DnsParser {
    tcp: bool,
    bufs: [Vec<u8>; 2],
    stopped: [bool; 2],
    txs: VecDeque<DnsTx>,
    next_id: u64,
    raised: Vec<(u64, &'static str)>,
    new_flow: bool,
    new_txs: u64,
    /// Estimated heap bytes of the decoded messages not yet logged.
    kept: usize,
}

impl DnsParser {
    /// A parser for a flow over TCP (`tcp`: length-prefixed messages) or UDP.
    pub fn new(tcp: bool) -> Self {
        DnsParser {
            tcp,
            new_flow: true,
            ..DnsParser::default()
        }
    }

    /// Messages not yet logged, oldest first.
    pub fn txs(&self) -> impl Iterator<Item = &DnsTx> {
        self.txs.iter()
    }

    /// True when neither direction can be parsed any more.
    pub fn has_failed(&self) -> bool {
        self.stopped.iter().all(|s| *s)
    }

    /// True when [`Self::take_stats`], [`Self::take_raised`] or [`Self::take_done`] would
    /// hand out something: lets the engine skip draining the parser on packets that
    /// changed nothing it logs.
    pub fn has_output(&self) -> bool {
        !self.raised.is_empty() || self.new_flow || self.new_txs != 0 || !self.txs.is_empty()
    }

    /// `(flows, transactions)` since the last call.
    pub fn take_stats(&mut self) -> (u64, u64) {
        let r = (u64::from(self.new_flow), self.new_txs);
        self.new_flow = false;
        self.new_txs = 0;
        r
    }

    /// Events since the last call.
    pub fn take_raised(&mut self) -> std::vec::Drain<'_, (u64, &'static str)> {
        self.raised.drain(..)
    }

    /// Every message so far (each is complete once decoded).
    pub fn take_done(&mut self) -> Vec<DnsTx> {
        self.kept = 0;
        self.txs.drain(..).collect()
    }

    /// Bytes the parser keeps, for the app-layer memcap
    /// ([`crate::config::AppLayerConfig::memcap`]): the boxed parser, both directions'
    /// message buffers and the transaction queue by capacity, an estimate of the decoded
    /// messages not yet logged (their length plus a fixed size per record) and pending
    /// events. O(1).
    pub fn mem_bytes(&self) -> usize {
        std::mem::size_of::<DnsParser>()
            + 16
            + self.bufs.iter().map(Vec::capacity).sum::<usize>()
            + self.txs.capacity() * std::mem::size_of::<DnsTx>()
            + self.raised.capacity() * std::mem::size_of::<(u64, &'static str)>()
            + self.kept
    }

    /// `len` bytes of `dir` were lost (TCP): the direction stops.
    pub fn gap(&mut self, dir: Direction, _len: u64) {
        self.stopped[dir.index()] = true;
        self.bufs[dir.index()] = Vec::new();
    }

    fn message(&mut self, msg: &[u8]) {
        match DnsTx::decode(self.next_id, msg) {
            Some(t) if self.txs.len() < MAX_LIVE_TXS => {
                self.next_id += 1;
                self.new_txs += 1;
                // Decoded strings are about the message's size (names may expand from
                // compression pointers, by at most a name per record).
                let records =
                    t.queries.len() + t.answers.len() + t.authorities.len() + t.additionals.len();
                self.kept += msg.len() + records * (std::mem::size_of::<DnsRecord>() + 64);
                self.txs.push_back(t);
            }
            Some(_) => {}
            None => {
                if self.raised.len() < 256 {
                    self.raised.push((self.next_id, "MALFORMED_DATA"));
                }
            }
        }
    }

    /// Feeds a datagram (UDP) or in-order stream bytes (TCP) of `dir`.
    pub fn feed(&mut self, dir: Direction, data: &[u8]) {
        let d = dir.index();
        if self.stopped[d] {
            return;
        }
        if !self.tcp {
            self.message(data);
            return;
        }
        self.bufs[d].extend_from_slice(data);
        loop {
            let b = &self.bufs[d];
            if b.len() < 2 {
                return;
            }
            let len = usize::from(u16::from_be_bytes([b[0], b[1]]));
            if b.len() < 2 + len {
                return;
            }
            let msg: Vec<u8> = self.bufs[d].drain(..2 + len).skip(2).collect();
            self.message(&msg);
        }
    }
}

/// Detection buffers, in local-index order (see [`buffer`]).
const BUFFERS: [BufferDef; 5] = [
    BufferDef {
        name: "dns.query",
        multi: true,
    },
    BufferDef {
        name: "dns.queries.rrname",
        multi: true,
    },
    BufferDef {
        name: "dns.answers.rrname",
        multi: true,
    },
    BufferDef {
        name: "dns.authorities.rrname",
        multi: true,
    },
    BufferDef {
        name: "dns.additionals.rrname",
        multi: true,
    },
];

/// Instance `i` of local buffer `local`: `dns.query` holds the questions of requests only
/// (Suricata 8), the `rrname` buffers their section of either kind of message.
pub(crate) fn buffer(t: &DnsTx, local: usize, i: usize) -> Option<&[u8]> {
    let list = match local {
        0 if !t.response => &t.queries,
        1 => &t.queries,
        2 => &t.answers,
        3 => &t.authorities,
        4 => &t.additionals,
        _ => return None,
    };
    list.get(i).map(|r| r.rrname.as_bytes())
}

/// Instance `i` of the integer field a keyword tests: `dns.opcode` and `dns.rcode` (one
/// instance, from the message header) and `dns.rrtype` (the type of each question, as
/// Suricata 8 reads it, in requests and responses alike).
pub(crate) fn uint(t: &DnsTx, keyword: &str, i: usize) -> Option<u64> {
    match keyword {
        "dns.opcode" if i == 0 => Some(u64::from(t.opcode)),
        "dns.rcode" if i == 0 => Some(u64::from(t.flags & 0x000f)),
        "dns.rrtype" => t.queries.get(i).map(|q| u64::from(q.rrtype_code)),
        _ => None,
    }
}

fn new_parser(_cfg: &AppLayerConfig, l4: u8) -> Option<Parser> {
    Some(Parser::Dns(Box::new(DnsParser::new(l4 == 6))))
}

/// Feeds the parser.
pub(crate) fn feed(p: &mut DnsParser, dir: Direction, data: &[u8]) -> Feed {
    p.feed(dir, data);
    Feed::Continue
}

/// Log data of a message.
pub(crate) fn log(t: &DnsTx) -> AppTxData {
    AppTxData::Dns(Box::new(t.eve()))
}

/// Registry entry.
pub(crate) const DEF: ProtoDef = ProtoDef {
    proto: AppProto::Dns,
    name: "dns",
    exclusive_ports: &[53],
    probe,
    buffers: &BUFFERS,
    hooks: [&[], &[]],
    parser: Some(new_parser),
    counters: ["app_layer.flow.dns", "app_layer.tx.dns"],
    greeting: "",
};

fn probe(cx: &ProbeCtx<'_>, data: &[u8]) -> Probe {
    match cx.l4 {
        6 => probe_dns_tcp(data, cx.dir),
        17 => probe_dns_udp(data, cx.dir),
        _ => Probe::NoMatch,
    }
}

/// A DNS message header (one whole UDP datagram): at least 12 bytes, a standard opcode
/// (0..=6 except the unassigned 3), 1 to 16 questions, and the QR bit matching the
/// direction (queries to the server, with rcode 0 and no answers; responses to the client).
pub fn probe_dns_udp(data: &[u8], dir: Direction) -> Probe {
    if data.len() < 12 {
        return Probe::NoMatch;
    }
    let qr = data[2] & 0x80 != 0;
    let opcode = (data[2] >> 3) & 0x0f;
    let rcode = data[3] & 0x0f;
    let qdcount = u16::from_be_bytes([data[4], data[5]]);
    let ancount = u16::from_be_bytes([data[6], data[7]]);
    let dir_ok = match dir {
        Direction::ToServer => !qr && rcode == 0 && ancount == 0,
        Direction::ToClient => qr,
    };
    if (1..=16).contains(&qdcount) && opcode <= 6 && opcode != 3 && dir_ok {
        Probe::Match(AppProto::Dns)
    } else {
        Probe::NoMatch
    }
}

/// DNS over TCP (port 53): a 2-byte length prefix (at least a header's 12 bytes), then a
/// message header as for UDP.
pub fn probe_dns_tcp(data: &[u8], dir: Direction) -> Probe {
    if data.len() < 14 {
        return Probe::NeedMore;
    }
    if usize::from(u16::from_be_bytes([data[0], data[1]])) < 12 {
        return Probe::NoMatch;
    }
    probe_dns_udp(&data[2..], dir)
}
