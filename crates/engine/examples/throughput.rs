//! Decode-only vs full-engine throughput on the fixture captures, replicated into many flows.
//!
//! Run: `cargo run --release -p sekisho-engine --example throughput -- [FLOWS] [ROUNDS]`
//! (default 20000 flows x 3 rounds). Each flow is one of the fixture conversations
//! (ns-tcp.pcap: a full HTTP/TCP exchange, 12 packets; lo-dns.pcap: DNS/UDP, 2 packets per
//! flow) with the client port rewritten, so the flow table holds FLOWS distinct entries.
//! Checksum validation is off in both passes (rewritten ports invalidate the checksums).
//!
//! Env: `THROUGHPUT_DECODE_ONLY=1` / `THROUGHPUT_ENGINE_ONLY=1` run one pass only (for
//! profilers: `valgrind --tool=callgrind` instruction counts are stable on a busy machine);
//! `THROUGHPUT_VERBOSE=1` splits engine time into packets and `finish`; `THROUGHPUT_NO_APP=1`
//! turns app-layer detection off (for A/B runs: the HTTP and DNS flows are detected when on).

use std::time::Instant;

use sekisho_engine::decode::PacketDecoder;
use sekisho_engine::{ChecksumMode, Engine, EngineConfig, Event, LinkType, Timestamp};

fn read(name: &str) -> Vec<(Timestamp, Vec<u8>)> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let mut reader =
        sekisho_pcap::CaptureReader::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut out = Vec::new();
    while let Some(p) = reader.next_packet().unwrap_or_else(|e| panic!("{e}")) {
        let ts = Timestamp::from_secs_micros(p.ts.sec, u64::from(p.ts.usec()));
        out.push((ts, p.data.to_vec()));
    }
    out
}

/// Rewrites the client port of an Ethernet/IPv4 TCP or UDP frame.
fn set_client_port(frame: &mut [u8], client: u16, new: u16) {
    let l4 = 14 + usize::from(frame[14] & 0x0f) * 4;
    let sport = u16::from_be_bytes([frame[l4], frame[l4 + 1]]);
    let at = if sport == client { l4 } else { l4 + 2 };
    frame[at..at + 2].copy_from_slice(&new.to_be_bytes());
}

fn main() {
    let mut args = std::env::args().skip(1);
    // Client ports 1024.. keep tuples distinct, so at most 64000 flows.
    let flows: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000)
        .min(64_000);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let tcp = read("ns-tcp.pcap");
    let dns: Vec<_> = read("lo-dns.pcap").into_iter().take(2).collect();
    let base = tcp[0].0;
    let mut corpus: Vec<(Timestamp, Vec<u8>)> = Vec::new();
    for i in 0..flows {
        // 3 of 4 flows TCP, 1 of 4 DNS; start a flow every 100 µs.
        let (tmpl, client) = if i % 4 == 3 {
            (&dns, 33634u16)
        } else {
            (&tcp, 39540u16)
        };
        let port = 1024 + i as u16;
        let t0 = tmpl[0].0;
        for (ts, f) in tmpl {
            let mut f = f.clone();
            set_client_port(&mut f, client, port);
            let off = ts.micros_since(t0) + (i as u64) * 100;
            corpus.push((Timestamp(base.0 + off), f));
        }
    }
    corpus.sort_by_key(|(ts, _)| *ts);
    let pkts = corpus.len() as f64;
    let bytes: usize = corpus.iter().map(|(_, f)| f.len()).sum();
    let cfg = EngineConfig {
        checksums: ChecksumMode::None,
        app_layer: sekisho_engine::AppLayerConfig {
            enabled: std::env::var_os("THROUGHPUT_NO_APP").is_none(),
            ..Default::default()
        },
        ..EngineConfig::default()
    };
    println!(
        "corpus: {} packets, {} flows, {:.1} MB",
        corpus.len(),
        flows,
        bytes as f64 / 1e6
    );
    let mut best_decode = f64::MAX;
    let mut best_engine = f64::MAX;
    let engine_only = std::env::var_os("THROUGHPUT_ENGINE_ONLY").is_some();
    for _ in 0..rounds {
        let mut d = PacketDecoder::new(&cfg);
        if engine_only {
            best_decode = 1.0;
        } else {
            let start = Instant::now();
            let mut n = 0usize;
            for (ts, f) in &corpus {
                if let Ok(p) = d.decode(*ts, LinkType::Ethernet, f) {
                    n += p.payload.len();
                }
            }
            let el = start.elapsed().as_secs_f64();
            std::hint::black_box(n);
            best_decode = best_decode.min(el);
        }

        if std::env::var_os("THROUGHPUT_DECODE_ONLY").is_some() {
            best_engine = 1.0;
            continue;
        }
        let mut e = Engine::new(cfg.clone());
        let start = Instant::now();
        let mut ends = 0usize;
        for (ts, f) in &corpus {
            e.handle_packet(*ts, LinkType::Ethernet, f);
            while let Some(ev) = e.poll_event() {
                ends += usize::from(matches!(ev, Event::FlowEnd(_)));
            }
        }
        let packets_done = start.elapsed().as_secs_f64();
        let last = corpus.last().map(|c| c.0).unwrap_or_default();
        e.finish(last);
        while let Some(ev) = e.poll_event() {
            ends += usize::from(matches!(ev, Event::FlowEnd(_)));
        }
        let el = start.elapsed().as_secs_f64();
        assert_eq!(ends, flows, "one flow end per flow");
        if std::env::var_os("THROUGHPUT_VERBOSE").is_some() {
            eprintln!(
                "  packets {packets_done:.3}s, finish {:.3}s",
                el - packets_done
            );
        }
        best_engine = best_engine.min(el);
    }
    println!(
        "decode-only: {:.2} Mpps ({:.0} ns/pkt)",
        pkts / best_decode / 1e6,
        best_decode / pkts * 1e9
    );
    println!(
        "full engine (decode + flows + TCP state + reassembly): {:.2} Mpps ({:.0} ns/pkt)",
        pkts / best_engine / 1e6,
        best_engine / pkts * 1e9
    );
    println!(
        "engine / decode-only cost ratio: {:.2}x",
        best_engine / best_decode
    );
}
