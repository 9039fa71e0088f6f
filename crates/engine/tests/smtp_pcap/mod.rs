//! Test helper: walk a capture (Ethernet or BSD loopback), reassemble
//! each TCP flow's two directions in sequence order, and feed the payload
//! to an `SmtpParser` in capture order.

use sekisho_engine::app::smtp::{SmtpEvent, SmtpParser, SmtpTx, Status};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// (address, port) of one endpoint.
type Endpoint = (String, u16);
/// Flow index keyed by (client, server).
type FlowIndex = HashMap<(Endpoint, Endpoint), usize>;

/// Parsed result of one TCP flow.
pub struct FlowResult {
    /// Client (ip, port).
    pub client: (String, u16),
    /// Server (ip, port).
    pub server: (String, u16),
    /// All transactions, in id order.
    pub txs: Vec<SmtpTx>,
    /// Anomalies not tied to a transaction.
    pub conn_events: Vec<SmtpEvent>,
    /// STARTTLS was accepted: the rest of the flow is TLS.
    pub tls: bool,
    /// The parser stopped on a fatal error.
    pub failed: bool,
    /// Replies with a well-formed code outside Suricata's table: sekisho parses on, where
    /// Suricata stops at the first one with a parser error.
    pub unknown_replies: u64,
    /// Reassembled to-server bytes (up to where the parser stopped being fed).
    pub to_server: Vec<u8>,
    /// Reassembled to-client bytes (likewise).
    pub to_client: Vec<u8>,
}

#[derive(Default)]
struct Half {
    isn: Option<u32>,
    next: u64,
    pending: BTreeMap<u64, Vec<u8>>,
}

impl Half {
    /// Add a segment; return the newly in-order bytes.
    fn add(&mut self, seq: u32, syn: bool, payload: &[u8]) -> Vec<u8> {
        if syn {
            self.isn = Some(seq.wrapping_add(1));
            return Vec::new();
        }
        if payload.is_empty() {
            return Vec::new();
        }
        let isn = *self.isn.get_or_insert(seq);
        let rel = u64::from(seq.wrapping_sub(isn));
        if rel > 1 << 31 {
            return Vec::new(); // before the stream start: retransmission of old data
        }
        let e = self.pending.entry(rel).or_default();
        if payload.len() > e.len() {
            *e = payload.to_vec();
        }
        let mut out = Vec::new();
        while let Some((&start, _)) = self.pending.iter().next() {
            if start > self.next {
                break;
            }
            let seg = self.pending.remove(&start).unwrap_or_default();
            let end = start + seg.len() as u64;
            if end > self.next {
                out.extend_from_slice(&seg[(self.next - start) as usize..]);
                self.next = end;
            }
        }
        out
    }
}

struct Flow {
    client: (String, u16),
    server: (String, u16),
    halves: [Half; 2],
    parser: SmtpParser,
    stopped: bool,
    to_server: Vec<u8>,
    to_client: Vec<u8>,
    done: Vec<SmtpTx>,
}

const SMTP_PORTS: [u16; 4] = [25, 465, 587, 2525];

/// Read the capture and run every TCP flow through an `SmtpParser`.
pub fn parse_flows(path: &Path) -> Result<Vec<FlowResult>, String> {
    // A record that cannot be read is a corrupt tail (smtp-to-comma's capture, packet 19,
    // claims more than the reader's buffer): like Suricata and tshark, keep the packets read
    // so far and stop (`capture_packets` does).
    let (packets, _tail) = crate::common::capture_packets(path).map_err(|e| e.to_string())?;
    let mut flows: Vec<Flow> = Vec::new();
    let mut index: FlowIndex = HashMap::new();
    for p in &packets {
        handle_packet(p.link_type, &p.data, &mut flows, &mut index);
    }
    Ok(flows
        .into_iter()
        .map(|mut f| {
            let mut txs = f.done;
            txs.extend(f.parser.take_all());
            txs.sort_by_key(|t| t.tx_id);
            FlowResult {
                client: f.client,
                server: f.server,
                failed: f.parser.has_failed(),
                unknown_replies: f.parser.unknown_replies(),
                tls: f.parser.is_tls(),
                conn_events: f.parser.connection_events().to_vec(),
                txs,
                to_server: f.to_server,
                to_client: f.to_client,
            }
        })
        .collect())
}

/// LINKTYPE_NULL: BSD loopback, a 4-byte address family before the IP header.
const LINKTYPE_NULL: u32 = 0;

fn handle_packet(linktype: u32, data: &[u8], flows: &mut Vec<Flow>, index: &mut FlowIndex) {
    let sliced = if linktype == LINKTYPE_NULL {
        data.get(4..)
            .and_then(|d| etherparse::SlicedPacket::from_ip(d).ok())
    } else {
        etherparse::SlicedPacket::from_ethernet(data).ok()
    };
    let Some(p) = sliced else { return };
    let (src, dst) = match &p.net {
        Some(etherparse::NetSlice::Ipv4(ip)) => (
            ip.header().source_addr().to_string(),
            ip.header().destination_addr().to_string(),
        ),
        Some(etherparse::NetSlice::Ipv6(ip)) => (
            ip.header().source_addr().to_string(),
            ip.header().destination_addr().to_string(),
        ),
        _ => return,
    };
    let Some(etherparse::TransportSlice::Tcp(tcp)) = &p.transport else {
        return;
    };
    let a = (src, tcp.source_port());
    let b = (dst, tcp.destination_port());
    let idx = if let Some(&i) = index.get(&(a.clone(), b.clone())) {
        i
    } else if let Some(&i) = index.get(&(b.clone(), a.clone())) {
        i
    } else {
        // Client: the SYN sender, else whoever talks to an SMTP port.
        let a_is_client = if tcp.syn() {
            !tcp.ack()
        } else {
            SMTP_PORTS.contains(&b.1) || !SMTP_PORTS.contains(&a.1)
        };
        let (client, server) = if a_is_client {
            (a.clone(), b.clone())
        } else {
            (b.clone(), a.clone())
        };
        flows.push(Flow {
            client: client.clone(),
            server: server.clone(),
            halves: [Half::default(), Half::default()],
            parser: SmtpParser::new(),
            stopped: false,
            to_server: Vec::new(),
            to_client: Vec::new(),
            done: Vec::new(),
        });
        index.insert((client, server), flows.len() - 1);
        flows.len() - 1
    };
    let f = &mut flows[idx];
    let to_server = a == f.client;
    let half = &mut f.halves[usize::from(!to_server)];
    let bytes = half.add(tcp.sequence_number(), tcp.syn(), tcp.payload());
    if bytes.is_empty() || f.stopped {
        return;
    }
    let status = if to_server {
        f.to_server.extend_from_slice(&bytes);
        f.parser.to_server(&bytes)
    } else {
        f.to_client.extend_from_slice(&bytes);
        f.parser.to_client(&bytes)
    };
    f.done.extend(f.parser.take_complete());
    if status != Status::Continue {
        f.stopped = true;
    }
}
