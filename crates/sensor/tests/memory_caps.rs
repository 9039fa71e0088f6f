//! Memory caps that fail closed, inline:
//! - the app-layer hold budget: flows that talk a protocol no probe recognises while the
//!   other side stays silent each hold up to `max_hold_bytes` for the parser; together they
//!   may hold at most `app-layer.hold-memcap`. Past it, a flow gives up detection and the
//!   `app_layer_error` exception policy applies (inline default: drop-flow), instead of the
//!   engine's memory growing with the number of such flows;
//! - the reassembly memcap: out-of-order bytes that do not fit turn the holes before them
//!   into gaps, so the `stream_reassembly_memcap` policy applies to the flow;
//! - the SMTP command queue: a client that pipelines more than `MAX_QUEUE` (65,535) commands
//!   without a reply stops the parser (a parser error), and the `app_layer_error` policy
//!   applies instead of the parser going blind.

use etherparse::PacketBuilder;
use sekisho_engine::app::smtp::MAX_QUEUE;
use sekisho_engine::event::Event;
use sekisho_engine::{ExceptionAction, ExceptionTarget, LinkType, Timestamp};
use sekisho_sensor::{Mode, Record, Sensor, Settings};

const SERVER: [u8; 4] = [203, 0, 113, 9];

fn frame(
    client: [u8; 4],
    to_server: bool,
    seq: u32,
    ack: u32,
    flags: &str,
    data: &[u8],
) -> Vec<u8> {
    frame_port(5555, client, to_server, seq, ack, flags, data)
}

/// [`frame`] to or from server port `port`.
fn frame_port(
    port: u16,
    client: [u8; 4],
    to_server: bool,
    seq: u32,
    ack: u32,
    flags: &str,
    data: &[u8],
) -> Vec<u8> {
    let (src, dst, sport, dport) = if to_server {
        (client, SERVER, 41000, port)
    } else {
        (SERVER, client, port, 41000)
    };
    let mut b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4(src, dst, 64)
        .tcp(sport, dport, seq, 65535);
    if flags.contains('S') {
        b = b.syn();
    }
    if flags.contains('A') {
        b = b.ack(ack);
    }
    let mut out = Vec::new();
    b.write(&mut out, data).expect("frame");
    out
}

/// `flows` sessions of 48 KiB of unrecognisable client bytes each (the server never
/// answers after the handshake), one after the other; returns per flow whether any of its
/// packets was dropped, and the drop reasons.
fn run(hold_memcap: &str, flows: u8) -> (Vec<bool>, Vec<String>) {
    let mut settings = Settings::new(Mode::Inline);
    settings
        .set("app-layer.hold-memcap", hold_memcap)
        .expect("hold-memcap");
    let mut sensor = Sensor::new(&settings, None);
    let mut ts = 1_000_000_000u64;
    let mut dropped = Vec::new();
    let mut reasons = Vec::new();
    let junk = [0xa5u8; 1200];
    for f in 0..flows {
        let client = [10, 0, 0, 10 + f];
        let (mut c, s) = (1000u32, 9000u32);
        let mut any = false;
        let mut feed = |sensor: &mut Sensor, fr: Vec<u8>, ts: &mut u64| {
            *ts += 10;
            any |= sensor
                .handle_packet(Timestamp(*ts), LinkType::Ethernet, &fr)
                .is_drop();
        };
        feed(&mut sensor, frame(client, true, c, 0, "S", &[]), &mut ts);
        feed(
            &mut sensor,
            frame(client, false, s, c + 1, "SA", &[]),
            &mut ts,
        );
        c += 1;
        feed(
            &mut sensor,
            frame(client, true, c, s + 1, "A", &[]),
            &mut ts,
        );
        for _ in 0..40 {
            feed(
                &mut sensor,
                frame(client, true, c, s + 1, "A", &junk),
                &mut ts,
            );
            c += junk.len() as u32;
        }
        while let Some(r) = sensor.poll_record() {
            if let Record::Drop(d) = r {
                reasons.push(d.reason.to_string());
            }
        }
        dropped.push(any);
    }
    (dropped, reasons)
}

#[test]
fn flows_holding_unrecognised_bytes_share_one_budget_and_fail_closed_past_it() {
    // Plenty of budget: every flow holds its 48 KiB, nothing is dropped.
    let (dropped, reasons) = run("64mb", 12);
    assert!(dropped.iter().all(|d| !d), "{dropped:?} {reasons:?}");
    // 256 KiB for twelve flows of 48 KiB: the first ones fit, the later ones cannot hold
    // their bytes, give up detection and are dropped by the app_layer_error policy.
    let (dropped, reasons) = run("256kb", 12);
    assert!(!dropped[0] && !dropped[1] && !dropped[2], "{dropped:?}");
    assert!(dropped[8..].iter().all(|d| *d), "{dropped:?}");
    assert!(
        !reasons.is_empty() && reasons.iter().all(|r| r == "applayer error"),
        "{reasons:?}"
    );
}

/// One flow whose first 1000 client bytes never arrive while `behind` segments of 1000 bytes
/// behind them do (all buffered out of order), then (`recover`) the missing segment is
/// retransmitted, as a sender does after a loss; returns whether a packet was dropped and
/// the drop reasons.
fn lossy(reassembly_memcap: &str, behind: u32, recover: bool) -> (bool, Vec<String>) {
    let mut settings = Settings::new(Mode::Inline);
    settings
        .set("stream.reassembly.memcap", reassembly_memcap)
        .expect("stream.reassembly.memcap");
    let mut sensor = Sensor::new(&settings, None);
    let client = [10, 0, 0, 99];
    let (c, s) = (1000u32, 9000u32);
    let mut ts = 1_000_000_000u64;
    let mut dropped = false;
    let mut feed = |fr: Vec<u8>| {
        ts += 10;
        dropped |= sensor
            .handle_packet(Timestamp(ts), LinkType::Ethernet, &fr)
            .is_drop();
    };
    feed(frame(client, true, c, 0, "S", &[]));
    feed(frame(client, false, s, c + 1, "SA", &[]));
    feed(frame(client, true, c + 1, s + 1, "A", &[]));
    let data = [b'x'; 1000];
    for i in 1..=behind {
        feed(frame(client, true, c + 1 + i * 1000, s + 1, "A", &data));
    }
    if recover {
        feed(frame(client, true, c + 1, s + 1, "A", &data));
    }
    let mut reasons = Vec::new();
    while let Some(r) = sensor.poll_record() {
        if let Record::Drop(d) = r {
            reasons.push(d.reason.to_string());
        }
    }
    (dropped, reasons)
}

/// 40 KB behind a hole.
fn out_of_order(reassembly_memcap: &str) -> (bool, Vec<String>) {
    lossy(reassembly_memcap, 40, false)
}

/// A fast flow loses one segment (a full NFQUEUE, a lossy link) and the sender retransmits
/// it after a window's worth of later data: 4 MB here, within Linux's default maximum
/// receive window (`tcp_rmem` 6 MiB), which the receiver buffers too. That is ordinary TCP
/// loss recovery and must not trip the reassembly cap and its drop-flow policy (it did with
/// a 1 MiB per-direction cap: inline iperf3 flows died after their first loss).
#[test]
fn loss_recovery_within_a_receive_window_keeps_the_flow() {
    let (dropped, reasons) = lossy("64mb", 4_000, true);
    assert!(!dropped, "{reasons:?}");
    assert!(reasons.is_empty(), "{reasons:?}");
}

#[test]
fn a_reassembly_cap_that_turns_holes_into_gaps_fails_closed() {
    let (dropped, reasons) = out_of_order("64mb");
    assert!(!dropped, "{reasons:?}");
    let (dropped, reasons) = out_of_order("16kb");
    assert!(dropped);
    assert_eq!(reasons, ["stream reassembly"]);
}

/// What one SMTP session that queues more than `MAX_QUEUE` commands left in the records.
struct QueueRun {
    /// Packet numbers of the client segments: [0] the first NOOP segment, [last] the RCPT TO.
    noop_pkts: Vec<u64>,
    /// The packet carrying the `MAX_QUEUE + 1`th queued command.
    overflow_pkt: u64,
    rcpt_pkt: u64,
    /// (packet number, reason) of each drop record.
    drops: Vec<(u64, &'static str)>,
    /// (packet number, target, action, inline) of each exception record not turned into a
    /// drop record.
    exceptions: Vec<(u64, ExceptionTarget, ExceptionAction, bool)>,
    /// The flow record's `exception_policy`.
    flow_exceptions: Vec<(ExceptionTarget, ExceptionAction)>,
    /// Packets whose verdict was drop.
    dropped: Vec<u64>,
}

/// An SMTP session on port 25 whose client, after EHLO and MAIL FROM (both answered), sends
/// `MAX_QUEUE + 1` NOOPs in full segments and then a RCPT TO, while the server never answers
/// again. Synthetic (built here, not captured): a real capture of 65,536 pipelined commands
/// would be ~400 KB of NOOPs in the repository, and the cap, not any client, is under test.
fn queue_flood(mode: Mode) -> QueueRun {
    let settings = Settings::new(mode);
    let mut sensor = Sensor::new(&settings, None);
    let client = [10, 0, 0, 7];
    let (mut c, mut s) = (1000u32, 9000u32);
    let mut ts = 1_000_000_000u64;
    let mut pkt = 0u64;
    let mut dropped = Vec::new();
    let mut send =
        |sensor: &mut Sensor, to_server: bool, c: u32, s: u32, flags: &str, data: &[u8]| {
            let fr = if to_server {
                frame_port(25, client, true, c, s, flags, data)
            } else {
                frame_port(25, client, false, s, c, flags, data)
            };
            ts += 10;
            pkt += 1;
            if sensor
                .handle_packet(Timestamp(ts), LinkType::Ethernet, &fr)
                .is_drop()
            {
                dropped.push(pkt);
            }
            pkt
        };
    send(&mut sensor, true, c, 0, "S", &[]);
    send(&mut sensor, false, c + 1, s, "SA", &[]);
    c += 1;
    s += 1;
    send(&mut sensor, true, c, s, "A", &[]);
    let mut talk = |sensor: &mut Sensor, to_server: bool, data: &[u8]| {
        let n = send(sensor, to_server, c, s, "A", data);
        if to_server {
            c += data.len() as u32;
        } else {
            s += data.len() as u32;
        }
        n
    };
    talk(&mut sensor, false, b"220 mx.example ESMTP\r\n");
    talk(&mut sensor, true, b"EHLO client.example\r\n");
    talk(&mut sensor, false, b"250 mx.example\r\n");
    talk(&mut sensor, true, b"MAIL FROM:<a@example.com>\r\n");
    talk(&mut sensor, false, b"250 2.1.0 Ok\r\n");
    // The queue is empty again: MAX_QUEUE NOOPs fill it, the next one overflows it.
    let per_seg = 1400 / b"NOOP\r\n".len();
    let total = MAX_QUEUE + 1;
    let mut sent = 0;
    let mut noop_pkts = Vec::new();
    let mut overflow_pkt = 0;
    while sent < total {
        let k = per_seg.min(total - sent);
        let n = talk(&mut sensor, true, &b"NOOP\r\n".repeat(k));
        noop_pkts.push(n);
        sent += k;
        if sent >= total && overflow_pkt == 0 {
            overflow_pkt = n;
        }
    }
    let rcpt_pkt = talk(&mut sensor, true, b"RCPT TO:<b@yahoo.example>\r\n");
    sensor.finish(Timestamp(ts + 1_000_000));
    let mut drops = Vec::new();
    let mut exceptions = Vec::new();
    let mut flow_exceptions = Vec::new();
    while let Some(r) = sensor.poll_record() {
        match r {
            Record::Drop(d) => drops.push((d.head.pkt_num, d.reason)),
            Record::Event(Event::Exception(x)) => {
                exceptions.push((x.packet.pkt_num, x.target, x.action, x.inline))
            }
            Record::Flow { record, .. } => flow_exceptions = record.exception_policy.clone(),
            _ => {}
        }
    }
    QueueRun {
        noop_pkts,
        overflow_pkt,
        rcpt_pkt,
        drops,
        exceptions,
        flow_exceptions,
        dropped,
    }
}

#[test]
fn an_smtp_command_queue_past_its_cap_is_a_parser_error_that_drops_the_flow_inline() {
    let r = queue_flood(Mode::Inline);
    // The last NOOP segment carries command MAX_QUEUE + 1: the parser stops there, and the
    // app_layer_error policy (inline default drop-flow) drops that packet and the rest.
    assert_eq!(r.overflow_pkt, *r.noop_pkts.last().unwrap());
    assert_eq!(r.drops, vec![(r.overflow_pkt, "applayer error")]);
    assert_eq!(r.exceptions, vec![]);
    assert_eq!(
        r.flow_exceptions,
        vec![(ExceptionTarget::AppLayerError, ExceptionAction::DropFlow)]
    );
    assert_eq!(r.dropped, vec![r.overflow_pkt, r.rcpt_pkt]);
}

#[test]
fn an_smtp_command_queue_past_its_cap_is_recorded_but_not_dropped_in_monitor_mode() {
    let r = queue_flood(Mode::Monitor);
    assert_eq!(r.drops, vec![]);
    assert!(r.dropped.is_empty(), "{:?}", r.dropped);
    // `auto` is `ignore` in monitor mode: the record says what was met, nothing is done.
    assert_eq!(
        r.exceptions,
        vec![(
            r.overflow_pkt,
            ExceptionTarget::AppLayerError,
            ExceptionAction::Ignore,
            false
        )]
    );
    assert_eq!(
        r.flow_exceptions,
        vec![(ExceptionTarget::AppLayerError, ExceptionAction::Ignore)]
    );
}
