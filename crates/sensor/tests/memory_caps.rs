//! Memory caps that fail closed, inline:
//! - the app-layer hold budget: flows that talk a protocol no probe recognises while the
//!   other side stays silent each hold up to `max_hold_bytes` for the parser; together they
//!   may hold at most `app-layer.hold-memcap`. Past it, a flow gives up detection and the
//!   `app_layer_error` exception policy applies (inline default: drop-flow), instead of the
//!   engine's memory growing with the number of such flows;
//! - the reassembly memcap: out-of-order bytes that do not fit turn the holes before them
//!   into gaps, so the `stream_reassembly_memcap` policy applies to the flow.

use etherparse::PacketBuilder;
use sekisho_engine::{LinkType, Timestamp};
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
    let (src, dst, sport, dport) = if to_server {
        (client, SERVER, 41000, 5555)
    } else {
        (SERVER, client, 5555, 41000)
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
