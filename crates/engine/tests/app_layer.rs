//! App-layer detection and SMTP wiring inside the engine, on real captures: the repo's
//! swaks → Postfix smtp-sink capture (`tests/fixtures/captures/real-eth.pcap`) under both
//! detection profiles (Suricata 8 banner probing on / off), and the inspector seam
//! (`on_packet_end`, `PacketContext::app`).

mod common;

use std::path::PathBuf;

use sekisho_engine::app::smtp::{EmailEve, SmtpEve};
use sekisho_engine::{
    AppLayerConfig, AppProto, AppTxData, AppTxRecord, ChecksumMode, Direction, Engine,
    EngineConfig, Event, FlowRecord, Inspector, LinkType, PacketContext, Timestamp, Verdict,
};

/// What the inspector saw at one packet.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    pkt_num: u64,
    src_port: u16,
    dst_port: u16,
    tcp_flags: u8,
    payload_len: usize,
    established: bool,
    first_in_direction: bool,
    flow_pkts: u64,
    /// Proto in `on_packet` (before the packet's data) and `on_packet_end` (after).
    before: Option<AppProto>,
    after: Option<AppProto>,
    detected_at: Option<(Direction, u64)>,
    /// Live SMTP transactions visible at `on_packet_end`.
    smtp_txs: usize,
    /// SMTP connection-level anomalies so far.
    smtp_conn_events: usize,
}

#[derive(Default)]
struct Probe {
    seen: Vec<Seen>,
    pending_before: Option<AppProto>,
}

impl Inspector for Probe {
    fn on_packet(&mut self, p: &PacketContext<'_>) -> Verdict {
        self.pending_before = p.app.map(|a| a.proto());
        Verdict::Accept
    }
    fn on_packet_end(&mut self, p: &PacketContext<'_>) -> Verdict {
        self.seen.push(Seen {
            pkt_num: p.pkt_num,
            src_port: p.src_port,
            dst_port: p.dst_port,
            tcp_flags: p.tcp_flags,
            payload_len: p.payload.len(),
            established: p.established,
            first_in_direction: p.first_in_direction,
            flow_pkts: p.flow_pkts,
            before: self.pending_before.take(),
            after: p.app.map(|a| a.proto()),
            detected_at: p.app.and_then(|a| a.detected_at()),
            smtp_txs: p.app.and_then(|a| a.smtp()).map_or(0, |s| s.txs().count()),
            smtp_conn_events: p
                .app
                .and_then(|a| a.smtp())
                .map_or(0, |s| s.connection_events().len()),
        });
        Verdict::Accept
    }
}

/// A committed capture under tests/fixtures/captures; `None` (a loud skip, or a panic in
/// CI) when it is missing.
fn capture(name: &str) -> Option<PathBuf> {
    sekisho_testutil::require_fixture(format!("tests/fixtures/captures/{name}"))
}

/// real-eth.pcap as tshark reads it (`tshark -r real-eth.pcap -q -z conv,tcp -z conv,udp`,
/// `tshark -r real-eth.pcap | wc -l`): 171 frames, 2 of them ARP; 8 conversations: TCP to
/// ports 25, 53 and 3× 8080, UDP to port 53 three times.
const REAL_ETH_FRAMES: usize = 171;
const REAL_ETH_ARP_FRAMES: usize = 2;
const REAL_ETH_CONVERSATIONS: usize = 8;
const REAL_ETH_DNS_CONVERSATIONS: usize = 4;

struct Out {
    seen: Vec<Seen>,
    flows: Vec<FlowRecord>,
    txs: Vec<AppTxRecord>,
    /// Every event in queue order.
    events: Vec<Event>,
}

fn run(path: &std::path::Path, app: AppLayerConfig) -> Out {
    let (link, frames) = common::load_capture(path);
    let cfg = EngineConfig {
        checksums: ChecksumMode::None,
        app_layer: app,
        ..EngineConfig::default()
    };
    let mut e = Engine::with_inspector(cfg, Probe::default());
    let mut events = Vec::new();
    let mut last = Timestamp(0);
    for f in &frames {
        e.handle_packet(f.ts, link, &f.data);
        last = f.ts;
        events.extend(std::iter::from_fn(|| e.poll_event()));
    }
    e.finish(last);
    events.extend(std::iter::from_fn(|| e.poll_event()));
    let flows = events
        .iter()
        .filter_map(|ev| match ev {
            Event::FlowEnd(r) => Some((**r).clone()),
            _ => None,
        })
        .collect();
    // SMTP transactions only: the captures' HTTP flows have their own tests.
    let txs = events
        .iter()
        .filter_map(|ev| match ev {
            Event::AppTx(t) if matches!(t.app, AppTxData::Smtp(_)) => Some((**t).clone()),
            _ => None,
        })
        .collect();
    Out {
        seen: std::mem::take(&mut e.inspector_mut().seen),
        flows,
        txs,
        events,
    }
}

fn profile(banner: bool) -> AppLayerConfig {
    AppLayerConfig {
        server_greeting_probe: banner,
        ..AppLayerConfig::default()
    }
}

fn smtp_packets(o: &Out) -> Vec<&Seen> {
    o.seen
        .iter()
        .filter(|s| s.src_port == 25 || s.dst_port == 25)
        .collect()
}

/// The banner packet (first server payload) and the client's EHLO packet of the SMTP flow.
fn banner_and_ehlo(o: &Out) -> (u64, u64, u64) {
    let p = smtp_packets(o);
    let banner = p
        .iter()
        .find(|s| s.src_port == 25 && s.payload_len > 0)
        .expect("banner packet");
    let ack = p
        .iter()
        .find(|s| s.dst_port == 25 && s.pkt_num > banner.pkt_num)
        .expect("client packet after the banner");
    let ehlo = p
        .iter()
        .find(|s| s.dst_port == 25 && s.payload_len > 0)
        .expect("EHLO packet");
    assert_eq!(
        ack.payload_len, 0,
        "the client's first packet after the banner is an ACK"
    );
    (banner.pkt_num, ack.pkt_num, ehlo.pkt_num)
}

fn expected_tx() -> SmtpEve {
    SmtpEve {
        helo: Some("client.example.test".into()),
        mail_from: Some("<sender@example.test>".into()),
        rcpt_to: vec!["<rcpt@example.test>".into()],
        // The message's own headers (tshark's IMF dissector reads the same).
        email: Some(EmailEve {
            from: Some("sender@example.test".into()),
            to: vec!["rcpt@example.test".into()],
            cc: vec![],
            status: "PARSE_DONE",
        }),
    }
}

#[test]
fn real_capture_suricata8_banner_detection() {
    let Some(path) = capture("real-eth.pcap") else {
        return;
    };
    let o = run(&path, profile(true));
    let (banner, ack, ehlo) = banner_and_ehlo(&o);
    let at = |n: u64| o.seen.iter().find(|s| s.pkt_num == n).expect("packet seen");
    // Detected from the server's 220 banner, on the banner packet itself.
    assert_eq!(
        at(banner).before,
        None,
        "no app state before the first payload"
    );
    assert_eq!(at(banner).after, Some(AppProto::Smtp));
    assert_eq!(at(banner).detected_at, Some((Direction::ToClient, banner)));
    // The client's first ACK after the banner already sees SMTP (Suricata 8).
    assert_eq!(at(ack).before, Some(AppProto::Smtp));
    assert_eq!(at(ack).after, Some(AppProto::Smtp));
    assert!(at(ack).established);
    assert_eq!(at(ehlo).after, Some(AppProto::Smtp));
    assert_eq!(at(ehlo).detected_at, Some((Direction::ToClient, banner)));
    check_smtp_tx_and_flows(&o);
}

#[test]
fn real_capture_suricata7_client_detection() {
    let Some(path) = capture("real-eth.pcap") else {
        return;
    };
    let o = run(&path, profile(false));
    let (banner, ack, ehlo) = banner_and_ehlo(&o);
    let at = |n: u64| o.seen.iter().find(|s| s.pkt_num == n).expect("packet seen");
    // The banner alone decides nothing without the probing parser.
    assert_eq!(at(banner).after, Some(AppProto::Unknown));
    assert_eq!(at(ack).after, Some(AppProto::Unknown));
    assert_eq!(at(ehlo).before, Some(AppProto::Unknown));
    assert_eq!(at(ehlo).after, Some(AppProto::Smtp));
    assert_eq!(at(ehlo).detected_at, Some((Direction::ToServer, ehlo)));
    // The held banner was parsed too: the EHLO's tx exists and the greeting was accepted
    // (the record is the same as with banner detection).
    assert_eq!(at(ehlo).smtp_txs, 1);
    assert_eq!(at(ehlo).smtp_conn_events, 0, "no NO_SERVER_WELCOME_MESSAGE");
    check_smtp_tx_and_flows(&o);
}

/// One `smtp` tx (helo, envelope) completed by the server's reply to the end of DATA, queued
/// before the flow record; flow protocols of the other conversations.
fn check_smtp_tx_and_flows(o: &Out) {
    assert_eq!(o.txs.len(), 1, "{:#?}", o.txs);
    let tx = &o.txs[0];
    assert_eq!(tx.tx_id, 0);
    assert_eq!(tx.app, AppTxData::Smtp(expected_tx()));
    assert!(!tx.flow_end);
    assert_eq!(tx.tuple.dst_port, 25, "client → server orientation");
    // Logged at the 250 that answers the end of DATA (8.0.7 timing): the server packet
    // right after the client's message body.
    let p = smtp_packets(o);
    let body = p
        .iter()
        .rfind(|s| s.dst_port == 25 && s.payload_len > 100)
        .expect("message body packet");
    let reply = p
        .iter()
        .find(|s| s.src_port == 25 && s.pkt_num > body.pkt_num && s.payload_len > 0)
        .expect("reply to end of data");
    assert_eq!(tx.pkt_num, reply.pkt_num);
    let tx_pos = o
        .events
        .iter()
        .position(|e| matches!(e, Event::AppTx(_)))
        .expect("tx event");
    let flow_pos = o
        .events
        .iter()
        .position(|e| matches!(e, Event::FlowEnd(r) if r.flow_id == tx.flow_id))
        .expect("flow event");
    assert!(tx_pos < flow_pos);
    let flow = |port: u16| {
        o.flows
            .iter()
            .find(|f| f.dst_port == port)
            .unwrap_or_else(|| panic!("flow to {port}"))
    };
    let smtp = flow(25);
    assert_eq!(smtp.app_proto.as_deref(), Some("smtp"));
    assert_eq!(
        (smtp.app_proto_ts, smtp.app_proto_tc, smtp.app_proto_orig),
        (None, None, None)
    );
    // DNS over UDP and over TCP (the capture has both on port 53).
    assert_eq!(o.flows.len(), REAL_ETH_CONVERSATIONS, "{:#?}", o.flows);
    assert_eq!(
        o.flows.iter().filter(|f| f.dst_port == 53).count(),
        REAL_ETH_DNS_CONVERSATIONS
    );
    for f in o.flows.iter().filter(|f| f.dst_port == 53) {
        assert_eq!(f.app_proto.as_deref(), Some("dns"), "{f:?}");
    }
    assert_eq!(flow(8080).app_proto.as_deref(), Some("http"));
}

#[test]
fn app_layer_disabled_does_nothing() {
    let Some(path) = capture("real-eth.pcap") else {
        return;
    };
    let o = run(
        &path,
        AppLayerConfig {
            enabled: false,
            ..AppLayerConfig::default()
        },
    );
    assert!(o.txs.is_empty());
    // Every flow and every IP packet was seen, and none got an app-layer protocol.
    assert_eq!(o.flows.len(), REAL_ETH_CONVERSATIONS);
    assert!(o.flows.iter().all(|f| f.app_proto.is_none()));
    assert_eq!(o.seen.len(), REAL_ETH_FRAMES - REAL_ETH_ARP_FRAMES);
    assert!(o.seen.iter().all(|s| s.after.is_none()));
}

#[test]
fn packet_context_facts() {
    let Some(path) = capture("real-eth.pcap") else {
        return;
    };
    let o = run(&path, profile(true));
    let p = smtp_packets(&o);
    // SYN, SYN/ACK, ACK: established only from the handshake's final ACK on.
    assert_eq!(p[0].tcp_flags & 0x12, 0x02);
    assert!(!p[0].established && p[0].first_in_direction && p[0].flow_pkts == 1);
    assert!(!p[1].established && p[1].first_in_direction && p[1].flow_pkts == 2);
    assert!(p[2].established && !p[2].first_in_direction && p[2].flow_pkts == 3);
    assert_eq!((p[0].dst_port, p[1].src_port), (25, 25));
    // UDP (DNS): established once both directions were seen.
    let dns: Vec<_> = o
        .seen
        .iter()
        .filter(|s| s.src_port == 53 || s.dst_port == 53)
        .collect();
    assert!(!dns[0].established);
    let first_reply = dns.iter().find(|s| s.src_port == 53).expect("dns reply");
    assert!(first_reply.established && first_reply.first_in_direction);
    assert_eq!(dns[0].after, Some(AppProto::Dns));
}

/// Drops in `on_packet` (packet `drop_pkt`) or `on_packet_end` (flow drop at `end_drop_pkt`)
/// and records what `on_packet_end` saw.
#[derive(Default)]
struct Dropper {
    drop_pkt: u64,
    end_drop_pkt: u64,
    ends: Vec<(u64, Option<AppProto>)>,
}

impl Inspector for Dropper {
    fn on_packet(&mut self, p: &PacketContext<'_>) -> Verdict {
        if p.pkt_num == self.drop_pkt {
            Verdict::Drop
        } else {
            Verdict::Accept
        }
    }
    fn on_packet_end(&mut self, p: &PacketContext<'_>) -> Verdict {
        self.ends.push((p.pkt_num, p.app.map(|a| a.proto())));
        if p.pkt_num == self.end_drop_pkt {
            Verdict::DropFlow
        } else {
            Verdict::Accept
        }
    }
}

fn run_inline(path: &std::path::Path, d: Dropper) -> (Dropper, Vec<Verdict>, Vec<FlowRecord>) {
    let (_, frames) = common::load_capture(path);
    let cfg = EngineConfig {
        checksums: ChecksumMode::None,
        inline: true,
        app_layer: profile(false),
        ..EngineConfig::default()
    };
    let mut e = Engine::with_inspector(cfg, d);
    let mut verdicts = Vec::new();
    let mut flows = Vec::new();
    let mut last = Timestamp(0);
    for f in &frames {
        verdicts.push(e.handle_packet(f.ts, LinkType::Ethernet, &f.data));
        last = f.ts;
    }
    e.finish(last);
    while let Some(ev) = e.poll_event() {
        if let Event::FlowEnd(r) = ev {
            flows.push(*r);
        }
    }
    let d = std::mem::take(e.inspector_mut());
    (d, verdicts, flows)
}

#[test]
fn on_packet_end_after_inline_drop_and_flow_drop() {
    let Some(path) = capture("real-eth.pcap") else {
        return;
    };
    let (_, _, ehlo) = banner_and_ehlo(&run(&path, profile(false)));
    // Inline drop of the EHLO in on_packet: on_packet_end still runs, but the EHLO never
    // reached the app layer (client detection needs it).
    let (d, verdicts, _) = run_inline(
        &path,
        Dropper {
            drop_pkt: ehlo,
            ..Dropper::default()
        },
    );
    let idx = usize::try_from(ehlo - 1).expect("index");
    assert_eq!(verdicts[idx], Verdict::Drop);
    assert!(
        d.ends.contains(&(ehlo, Some(AppProto::Unknown))),
        "{:?}",
        d.ends
    );
    // A flow drop from on_packet_end: the packet's verdict, the flow's action, and later
    // packets of the flow dropped uninspected (no more on_packet_end calls).
    let (d, verdicts, flows) = run_inline(
        &path,
        Dropper {
            end_drop_pkt: ehlo,
            ..Dropper::default()
        },
    );
    assert_eq!(verdicts[idx], Verdict::DropFlow);
    assert!(d.ends.contains(&(ehlo, Some(AppProto::Smtp))));
    assert_eq!(verdicts[idx + 1], Verdict::DropFlow);
    assert!(!d.ends.iter().any(|&(n, _)| n == ehlo + 1));
    let f = flows.iter().find(|f| f.dst_port == 25).expect("smtp flow");
    assert_eq!(f.action, Some(sekisho_engine::FlowAction::Drop));
}
