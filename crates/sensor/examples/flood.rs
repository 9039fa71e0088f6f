//! Floods through the sensor, with peak memory: how the caps hold under attack.
//!
//! ```sh
//! cargo run --release -p sekisho-sensor --example flood -- syn 1000000
//! cargo run --release -p sekisho-sensor --example flood -- frag 100000
//! cargo run --release -p sekisho-sensor --example flood -- rcpt 100000
//! ```
//! - `syn N`: N SYNs from N distinct sources to one mail server (the flow table fills and
//!   evicts; its cap is `flow.memcap` / the honest per-flow size).
//! - `frag N`: N IPv4 datagrams of which only the first fragment ever arrives (defrag caps).
//! - `rcpt N`: one SMTP session, inline with the recipient allow list, whose one message has
//!   N allowed recipients (alice and bob in turn), the disallowed one last (the list is
//!   truncated at its cap, `MAX_RCPT_PER_TX`; the flow must still be dropped, by the
//!   `detect_limit` exception policy).
//!
//! Prints the packets fed, the peak resident memory (VmHWM) and the counters that show the
//! caps at work, one `key=value` per line, so runs compare line by line. These are the
//! full-size figures (default caps: `flow.memcap` 128 MiB, `defrag.memcap` 32 MiB with
//! 65,535 trackers) recorded in docs/exception-policies.md, "Floods"; the same floods, scaled
//! down with small caps and asserted bounds, run in CI as
//! `cargo test -p sekisho-sensor --test flood_memory` (each in a process of its own).

use std::sync::Arc;

use etherparse::PacketBuilder;
use sekisho_engine::{LinkType, Timestamp};
use sekisho_sensor::{Mode, Record, RuleSet, Sensor, Settings};

/// The two recipients the allow list allows, taken in turn by the recipient flood.
const ALLOWED: [&[u8]; 2] = [
    b"RCPT TO:<alice@example.com>\r\n",
    b"RCPT TO:<bob@example.org>\r\n",
];

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn tcp(src: [u8; 4], sport: u16, seq: u32, ack: Option<u32>, syn: bool, data: &[u8]) -> Vec<u8> {
    let mut b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4(src, [203, 0, 113, 25], 64)
        .tcp(sport, 25, seq, 65535);
    if syn {
        b = b.syn();
    }
    if let Some(a) = ack {
        b = b.ack(a);
    }
    let mut out = Vec::new();
    b.write(&mut out, data).expect("frame");
    out
}

fn reply(dst: [u8; 4], dport: u16, seq: u32, ack: u32, syn: bool, data: &[u8]) -> Vec<u8> {
    let mut b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1])
        .ipv4([203, 0, 113, 25], dst, 64)
        .tcp(25, dport, seq, 65535);
    if syn {
        b = b.syn();
    }
    let mut out = Vec::new();
    b.ack(ack).write(&mut out, data).expect("frame");
    out
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let kind = args.get(1).map_or("syn", String::as_str);
    let n: u64 = args
        .get(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let checked = sekisho_policy::Policy::check_file(
        &root.join("examples/smtp/recipients-strict.yaml"),
        &Default::default(),
    );
    let mut settings = Settings::new(Mode::Inline);
    settings.apply_policy(&checked.policy);
    let rules = Arc::new(RuleSet::from_policy(
        &checked.policy,
        settings.compile_options(),
    ));
    let mut sensor = Sensor::new(&settings, Some(rules));
    let started = std::time::Instant::now();
    let mut ts = 1_000_000_000u64;
    let (mut drops, mut drop_records, mut exceptions) = (0u64, 0u64, Vec::new());
    let mut feed = |sensor: &mut Sensor, f: &[u8], ts: u64| {
        if sensor
            .handle_packet(Timestamp(ts), LinkType::Ethernet, f)
            .is_drop()
        {
            drops += 1;
        }
        while let Some(r) = sensor.poll_record() {
            if let Record::Drop(d) = r {
                drop_records += 1;
                if d.reason != "rules" && exceptions.len() < 4 {
                    exceptions.push(d.reason);
                }
            }
        }
    };
    match kind {
        "syn" => {
            for i in 0..n {
                ts += 10;
                let src = (0x0a00_0000u32 + i as u32).to_be_bytes();
                feed(&mut sensor, &tcp(src, 40000, 1, None, true, &[]), ts);
            }
        }
        "frag" => {
            for i in 0..n {
                ts += 10;
                let src = (0x0a00_0000u32 + i as u32).to_be_bytes();
                let mut f = tcp(src, 40000, 1, Some(1), false, &[b'x'; 64]);
                // First fragment only: MF set, offset 0.
                f[14 + 6] = 0x20;
                f[14 + 10] = 0;
                f[14 + 11] = 0;
                feed(&mut sensor, &f, ts);
            }
        }
        "rcpt" => {
            let src = [10, 0, 0, 150];
            let (mut c, mut s) = (1000u32, 5000u32);
            feed(&mut sensor, &tcp(src, 40000, c, None, true, &[]), ts);
            feed(&mut sensor, &reply(src, 40000, s, c + 1, true, &[]), ts + 1);
            c += 1;
            s += 1;
            feed(
                &mut sensor,
                &tcp(src, 40000, c, Some(s), false, &[]),
                ts + 2,
            );
            let mut send = |sensor: &mut Sensor, to_server: bool, data: &[u8], ts: u64| {
                let f = if to_server {
                    tcp(src, 40000, c, Some(s), false, data)
                } else {
                    reply(src, 40000, s, c, false, data)
                };
                feed(sensor, &f, ts);
                if to_server {
                    c = c.wrapping_add(data.len() as u32);
                } else {
                    s = s.wrapping_add(data.len() as u32);
                }
            };
            send(&mut sensor, false, b"220 mx ESMTP\r\n", ts + 3);
            send(&mut sensor, true, b"EHLO c\r\n", ts + 4);
            send(&mut sensor, false, b"250 ok\r\n", ts + 5);
            send(&mut sensor, true, b"MAIL FROM:<a@example.com>\r\n", ts + 6);
            send(&mut sensor, false, b"250 ok\r\n", ts + 7);
            ts += 10;
            let mut batch = Vec::new();
            for i in 0..n {
                batch.extend_from_slice(ALLOWED[i as usize % 2]);
                if batch.len() > 1200 {
                    ts += 1;
                    send(&mut sensor, true, &batch, ts);
                    batch.clear();
                }
            }
            batch.extend_from_slice(b"RCPT TO:<b@yahoo.example>\r\n");
            ts += 1;
            send(&mut sensor, true, &batch, ts);
        }
        other => {
            eprintln!("unknown flood '{other}' (syn, frag, rcpt)");
            std::process::exit(2);
        }
    }
    sensor.finish(Timestamp(ts + 1));
    let mut counters = Vec::new();
    while let Some(r) = sensor.poll_record() {
        if let Record::Stats { counters: c, .. } = r {
            counters = c;
        }
    }
    println!("flood={kind}");
    println!("packets={n}");
    println!("wall_secs={:.2}", started.elapsed().as_secs_f64());
    println!("peak_rss_kib={}", peak_rss_kib());
    println!("dropped_packets={drops}");
    println!("drop_records={drop_records}");
    println!("drop_reasons={exceptions:?}");
    for (k, v) in counters {
        let interesting = k.starts_with("flow.memcap")
            || k.starts_with("flow.emerg")
            || k == "flow.total"
            || k.starts_with("defrag.")
            || (k.contains("exception_policy") && v > 0);
        if interesting {
            println!("{k}={v}");
        }
    }
}
