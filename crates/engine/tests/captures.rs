//! Real captures (see tests/fixtures/make-fixtures.sh) through the whole engine. Per-flow
//! packet and byte counts are the ones `tshark -q -z conv,tcp|udp -r FILE` reports.

mod common;

use common::*;
use sekisho_engine::{
    ChecksumMode, Direction, EngineConfig, Event, FlowEndReason, FlowState, LinkType, TcpState,
};

#[test]
fn lo_http_flows_match_tshark_and_streams_reassemble() {
    let r = run(no_csum(), "lo-http.pcap");
    assert_eq!(r.flows.len(), 3);
    // tshark conv,tcp (A = client): A->B frames/bytes, then B->A.
    for (port, ts_pkts, ts_bytes, tc_pkts, tc_bytes) in [
        (48918u16, 7u64, 559u64, 5u64, 589u64),
        (48934, 7, 556, 5, 858),
        (50482, 6, 609, 6, 775),
    ] {
        let f = r.flow_by_port(port);
        assert_eq!(f.src_port, port, "client is the SYN sender");
        assert_eq!(f.dst_port, 18080);
        assert_eq!(f.proto, 6);
        assert_eq!((f.to_server.pkts, f.to_server.bytes), (ts_pkts, ts_bytes));
        assert_eq!((f.to_client.pkts, f.to_client.bytes), (tc_pkts, tc_bytes));
        assert_eq!(f.reason, FlowEndReason::Shutdown);
        assert_eq!(f.state, FlowState::Closed);
        assert_eq!(f.tcp_state, Some(TcpState::Closed));
        assert_eq!(
            f.to_server.tcp_flags, 0x1b,
            "SYN|ACK|PSH|FIN from the client"
        );
        assert_eq!(f.to_client.tcp_flags, 0x1b);
        assert_eq!(f.to_server.min_ttl, 64);
        assert!(f.flow_id < 1 << 51 && f.flow_id > 0);
    }
    assert!(r.flow_by_port(50482).src_ip.is_ipv6());
    let f = r.flow_by_port(48918);
    let req = r.engine.inspector().stream(f.flow_id, Direction::ToServer);
    assert!(req.starts_with(b"GET /index.html HTTP/1.1\r\n"), "{req:?}");
    let resp = r.engine.inspector().stream(f.flow_id, Direction::ToClient);
    assert!(resp.starts_with(b"HTTP/1.0 200 OK"));
    assert!(resp.ends_with(b"sekisho fixture body: the quick brown fox jumps over the lazy dog\n"));
    let f = r.flow_by_port(48934);
    let resp = r.engine.inspector().stream(f.flow_id, Direction::ToClient);
    assert!(resp.starts_with(b"HTTP/1.0 404"));
    let s = r.engine.stats();
    assert_eq!(s.decoder.pkts, 36);
    assert_eq!(s.decoder.ethernet, 36);
    assert_eq!(s.decoder.ipv4, 24);
    assert_eq!(s.decoder.ipv6, 12);
    assert_eq!(s.decoder.tcp, 36);
    assert_eq!(s.flow.total, 3);
    assert_eq!(s.flow.tcp, 3);
    assert_eq!(s.tcp.sessions, 3);
    assert_eq!(s.tcp.syn, 3);
    assert_eq!(s.tcp.synack, 3);
    assert_eq!(s.decoder.invalid, 0);
}

#[test]
fn loopback_checksums_fail_validation_and_skip_reassembly() {
    // tcpdump on lo sees partial (offloaded) checksums; with validation on every segment is
    // counted invalid, the flows are still counted but not reassembled (Suricata's behaviour).
    let r = run(EngineConfig::default(), "lo-http.pcap");
    assert_eq!(r.engine.stats().tcp.invalid_checksum, 36);
    assert_eq!(r.flows.len(), 3);
    assert_eq!(r.flow_by_port(48918).to_server.pkts, 7);
    assert!(r.engine.inspector().chunks.is_empty());
    assert_eq!(r.engine.stats().tcp.sessions, 0);
    assert!(r.flows.iter().all(|f| f.state == FlowState::New));
}

#[test]
fn veth_capture_has_valid_checksums() {
    let r = run(EngineConfig::default(), "ns-tcp.pcap");
    let s = r.engine.stats();
    assert_eq!(s.tcp.invalid_checksum, 0);
    assert_eq!(s.checksum.ipv4, 0);
    let f = r.flow_by_port(39540);
    assert_eq!((f.to_server.pkts, f.to_server.bytes), (6, 492));
    assert_eq!((f.to_client.pkts, f.to_client.bytes), (6, 655));
    assert_eq!(f.state, FlowState::Closed);
    let req = r.engine.inspector().stream(f.flow_id, Direction::ToServer);
    assert!(req.starts_with(b"GET /index.html"));
}

#[test]
fn sll2_any_capture() {
    let r = run(no_csum(), "any-sll2.pcap");
    let s = r.engine.stats();
    // decode-sll2-01 in suricata-verify compares exactly these three.
    assert_eq!(
        (s.decoder.sll2, s.decoder.ipv4, s.decoder.tcp),
        (12, 12, 12)
    );
    assert_eq!(r.flows.len(), 1);
    let f = r.flow_by_port(48950);
    assert_eq!(f.src_port, 48950);
    assert_eq!((f.to_server.pkts, f.to_server.bytes), (7, 601));
    assert_eq!((f.to_client.pkts, f.to_client.bytes), (5, 619));
    assert_eq!(f.state, FlowState::Closed);
    let resp = r.engine.inspector().stream(f.flow_id, Direction::ToClient);
    assert!(resp.starts_with(b"HTTP/1.0 200 OK"));
}

#[test]
fn sll_any_capture_server_closes_first() {
    let r = run(no_csum(), "any-sll.pcap");
    assert_eq!(r.engine.stats().decoder.sll, 12);
    let f = r.flow_by_port(48952);
    assert_eq!((f.to_server.pkts, f.to_server.bytes), (6, 505));
    assert_eq!((f.to_client.pkts, f.to_client.bytes), (6, 667));
    // Server FIN first, then client FIN, then the server's final ACK.
    assert_eq!(f.tcp_state, Some(TcpState::Closed));
}

#[test]
fn dns_over_udp_flows() {
    let r = run(no_csum(), "lo-dns.pcap");
    assert_eq!(r.flows.len(), 2);
    for (port, q, a) in [(33634u16, 103u64, 107u64), (53403, 103, 119)] {
        let f = r.flow_by_port(port);
        assert_eq!(f.src_port, port, "client is the first packet's sender");
        assert_eq!(f.dst_port, 18053);
        assert_eq!(f.proto, 17);
        assert_eq!((f.to_server.pkts, f.to_server.bytes), (1, q));
        assert_eq!((f.to_client.pkts, f.to_client.bytes), (1, a));
        assert_eq!(f.state, FlowState::Established);
        assert_eq!(f.tcp_state, None);
        let query = r.engine.inspector().stream(f.flow_id, Direction::ToServer);
        // DNS question name in wire form.
        assert!(query.windows(8).any(|w| w == b"\x07fixture"));
    }
    assert_eq!(r.engine.stats().flow.udp, 2);
}

#[test]
fn vlan_and_qinq_are_part_of_the_flow_key() {
    let r = run(EngineConfig::default(), "ns-vlan.pcap");
    let s = r.engine.stats();
    assert_eq!(s.decoder.vlan, 24);
    assert_eq!(s.decoder.vlan_qinq, 12);
    assert_eq!(r.flows.len(), 2, "same 5-tuple, different VLANs: two flows");
    let single = r
        .flows
        .iter()
        .find(|f| f.vlan == [100])
        .expect("vlan 100 flow");
    let qinq = r
        .flows
        .iter()
        .find(|f| f.vlan == [200, 300])
        .expect("qinq flow");
    // ns-tcp.pcap counts + 4 (one tag) or 8 (two tags) bytes per frame; tshark conv merges both.
    assert_eq!(
        (single.to_server.pkts, single.to_server.bytes),
        (6, 492 + 24)
    );
    assert_eq!((qinq.to_server.pkts, qinq.to_server.bytes), (6, 492 + 48));
    assert_eq!((qinq.to_client.pkts, qinq.to_client.bytes), (6, 655 + 48));
    assert_ne!(single.flow_id, qinq.flow_id);
}

#[test]
fn geneve_inner_flow_is_tracked() {
    let r = run(EngineConfig::default(), "ns-geneve.pcap");
    let s = r.engine.stats();
    assert_eq!(s.decoder.geneve, 12);
    assert_eq!(s.decoder.udp, 12);
    assert_eq!(s.decoder.tcp, 12);
    assert_eq!(s.decoder.ipv4, 24, "outer and inner IPv4");
    assert_eq!(
        r.flows.len(),
        1,
        "only the inner TCP flow, not the outer UDP"
    );
    let f = &r.flows[0];
    assert_eq!((f.src_port, f.dst_port, f.proto), (39540, 8080, 6));
    // Bytes count the inner frame (from the inner Ethernet header), like Suricata's tunnel
    // pseudo-packets; tshark's conv counts outer frames (6 x 50 bytes more).
    assert_eq!((f.to_server.pkts, f.to_server.bytes), (6, 492));
    assert_eq!((f.to_client.pkts, f.to_client.bytes), (6, 655));
    let req = r.engine.inspector().stream(f.flow_id, Direction::ToServer);
    assert!(req.starts_with(b"GET /index.html"));
}

#[test]
fn geneve_disabled_tracks_outer_udp() {
    let cfg = EngineConfig {
        geneve: false,
        ..EngineConfig::default()
    };
    let r = run(cfg, "ns-geneve.pcap");
    assert_eq!(r.engine.stats().decoder.geneve, 0);
    assert!(r.flows.iter().all(|f| f.proto == 17 && f.dst_port == 6081));
}

#[test]
fn ip_fragments_reassembled() {
    let r = run(EngineConfig::default(), "ns-frag.pcap");
    let s = r.engine.stats();
    assert_eq!(s.defrag.ipv4_fragments, 6);
    assert_eq!(s.defrag.ipv4_reassembled, 2);
    assert_eq!(s.defrag.ipv6_fragments, 6);
    assert_eq!(s.defrag.ipv6_reassembled, 2);
    assert_eq!(
        s.checksum.icmpv4, 0,
        "checksum over the reassembled datagram"
    );
    assert_eq!(s.checksum.icmpv6, 0);
    let v4 = r.flows.iter().find(|f| f.proto == 1).expect("icmp flow");
    assert_eq!((v4.to_server.pkts, v4.to_client.pkts), (1, 1));
    assert_eq!(v4.icmp, Some((8, 0)));
    assert_eq!(v4.icmp_response, Some((0, 0)));
    let v6 = r
        .flows
        .iter()
        .find(|f| f.proto == 58 && f.dst_ip.to_string() == "fd99::2")
        .expect("icmpv6 flow");
    assert_eq!((v6.to_server.pkts, v6.to_client.pkts), (1, 1));
    assert_eq!(v6.icmp, Some((128, 0)));
    assert_eq!(v6.icmp_response, Some((129, 0)));
}

#[test]
fn udp_flows_time_out_after_300s_established() {
    let (link, frames) = read_pcap("lo-dns.pcap");
    let mut e = sekisho_engine::Engine::new(no_csum());
    for f in &frames {
        e.handle_packet(f.ts, link, &f.data);
    }
    let last = frames.last().expect("frames").ts;
    e.handle_timeout(last.add_secs(299));
    assert!(std::iter::from_fn(|| e.poll_event()).all(|ev| !matches!(ev, Event::FlowEnd(_))));
    assert_eq!(e.active_flows(), 2);
    e.handle_timeout(last.add_secs(301));
    let ends: Vec<_> = std::iter::from_fn(|| e.poll_event())
        .filter_map(|ev| match ev {
            Event::FlowEnd(r) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(ends.len(), 2);
    assert!(ends.iter().all(|r| r.reason == FlowEndReason::Timeout));
    assert_eq!(e.active_flows(), 0);
    assert_eq!(e.stats().flow.end_timeout, 2);
}

#[test]
fn closed_tcp_times_out_after_closed_timeout_and_new_after_new_timeout() {
    let (link, frames) = read_pcap("ns-tcp.pcap");
    let mut e = sekisho_engine::Engine::new(EngineConfig::default());
    for f in &frames {
        e.handle_packet(f.ts, link, &f.data);
    }
    let last = frames.last().expect("frames").ts;
    e.handle_timeout(last.add_secs(59));
    assert_eq!(e.active_flows(), 1);
    e.handle_timeout(last.add_secs(60));
    assert_eq!(e.active_flows(), 0, "tcp closed timeout is 60 s");

    // Only the SYN: state new, tcp new timeout 60 s.
    let mut e = sekisho_engine::Engine::new(EngineConfig::default());
    e.handle_packet(frames[0].ts, link, &frames[0].data);
    e.handle_timeout(frames[0].ts.add_secs(59));
    assert_eq!(e.active_flows(), 1);
    // Packets advance time too: a later packet of another flow triggers the pass.
    e.handle_timeout(frames[0].ts.add_secs(61));
    let rec = std::iter::from_fn(|| e.poll_event())
        .find_map(|ev| match ev {
            Event::FlowEnd(r) => Some(r),
            _ => None,
        })
        .expect("flow end");
    assert_eq!(rec.state, FlowState::New);
    assert_eq!(rec.tcp_state, Some(TcpState::SynSent));
}

#[test]
fn timeouts_fire_from_packet_time() {
    // Two DNS exchanges 400 s apart (second one re-timed): the first flows end while the
    // second capture is processed, without any handle_timeout call.
    let (link, frames) = read_pcap("lo-dns.pcap");
    let mut e = sekisho_engine::Engine::new(no_csum());
    e.handle_packet(frames[0].ts, link, &frames[0].data);
    e.handle_packet(frames[1].ts, link, &frames[1].data);
    e.handle_packet(frames[2].ts.add_secs(400), link, &frames[2].data);
    let ends: Vec<_> = std::iter::from_fn(|| e.poll_event())
        .filter_map(|ev| match ev {
            Event::FlowEnd(r) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(ends.len(), 1);
    assert_eq!(ends[0].src_port, 33634);
    assert_eq!(ends[0].reason, FlowEndReason::Timeout);
}

#[test]
fn emergency_eviction_when_table_full() {
    let cfg = EngineConfig {
        max_flows: Some(2),
        ..no_csum()
    };
    let r = run(cfg, "lo-http.pcap");
    let s = r.engine.stats();
    assert_eq!(s.flow.memcap, 1);
    assert_eq!(s.flow.emerg_mode_entered, 1);
    assert_eq!(s.flow.emerg_evicted, 1);
    assert_eq!(r.flows.len(), 3);
    let first = &r.flows[0];
    assert_eq!(first.src_port, 48918, "oldest flow evicted first");
    assert_eq!(first.reason, FlowEndReason::Forced);
    assert!(first.emergency);
    assert_eq!(first.to_server.pkts, 7, "evicted after it completed");
    assert!(r.flows[1..]
        .iter()
        .all(|f| f.reason == FlowEndReason::Shutdown));
}

#[test]
fn midstream_pickup_is_configurable() {
    let (link, frames) = read_pcap("ns-tcp.pcap");
    // Drop the handshake: the capture starts with the GET.
    let mid = &frames[3..];
    let r = run_frames(EngineConfig::default(), link, mid);
    let f = &r.flows[0];
    assert_eq!(f.src_port, 39540, "first packet's sender is the client");
    assert!(!f.midstream);
    assert_eq!(f.tcp_state, Some(TcpState::None));
    assert!(
        r.engine.inspector().chunks.is_empty(),
        "no reassembly without midstream"
    );
    assert_eq!(r.engine.stats().tcp.midstream_pickups, 0);

    let cfg = EngineConfig {
        midstream: true,
        ..EngineConfig::default()
    };
    let r = run_frames(cfg, link, mid);
    let f = &r.flows[0];
    assert!(f.midstream);
    assert_eq!(f.state, FlowState::Closed);
    assert_eq!(r.engine.stats().tcp.midstream_pickups, 1);
    let req = r.engine.inspector().stream(f.flow_id, Direction::ToServer);
    assert!(req.starts_with(b"GET /index.html"));
}

#[test]
fn direction_from_synack_when_syn_missing() {
    let (link, frames) = read_pcap("ns-tcp.pcap");
    let r = run_frames(EngineConfig::default(), link, &frames[1..]);
    let f = &r.flows[0];
    assert_eq!((f.src_port, f.dst_port), (39540, 8080));
    assert_eq!(f.to_server.pkts, 5);
    assert_eq!(f.to_client.pkts, 6);
}

#[test]
fn tcp_port_reuse_starts_a_new_flow() {
    let (link, frames) = read_pcap("ns-tcp.pcap");
    let mut twice = frames.clone();
    twice.extend(frames.iter().map(|f| Frame {
        ts: f.ts.add_secs(5),
        data: f.data.clone(),
    }));
    let r = run_frames(EngineConfig::default(), link, &twice);
    assert_eq!(r.flows.len(), 2);
    assert_eq!(r.flows[0].reason, FlowEndReason::TcpReuse);
    assert_ne!(r.flows[0].flow_id, r.flows[1].flow_id);
    assert_eq!(r.engine.stats().flow.tcp_reuse, 1);
    assert_eq!(r.flows[1].to_server.pkts, 6);
}

#[test]
fn flow_id_is_stable_per_seed_and_start_time() {
    let a = run(no_csum(), "lo-dns.pcap");
    let b = run(no_csum(), "lo-dns.pcap");
    let ids = |r: &Run| r.flows.iter().map(|f| f.flow_id).collect::<Vec<_>>();
    assert_eq!(ids(&a), ids(&b));
    let c = run(
        EngineConfig {
            flow_id_seed: 7,
            ..no_csum()
        },
        "lo-dns.pcap",
    );
    assert_ne!(ids(&a), ids(&c));
}

#[test]
fn stats_serialise_nested_like_suricata() {
    let r = run(no_csum(), "any-sll2.pcap");
    let v = serde_json::to_value(r.engine.stats()).expect("serialise");
    assert_eq!(v["decoder"]["sll2"], 12);
    assert_eq!(v["decoder"]["pkts"], 12);
    assert_eq!(v["flow"]["tcp"], 1);
    assert_eq!(v["decoder"]["event"]["ipv4"]["trunc_pkt"], 0);
    assert_eq!(r.engine.stats().get("decoder.bytes"), Some(1220));
    let rec = serde_json::to_value(&r.flows[0]).expect("serialise record");
    assert_eq!(rec["state"], "closed");
    assert_eq!(rec["reason"], "shutdown");
}

#[test]
fn zero_length_and_garbage_frames_never_panic() {
    let mut e = sekisho_engine::Engine::new(EngineConfig::default());
    let t = sekisho_engine::Timestamp::from_secs_micros(1, 0);
    for link in [
        LinkType::Ethernet,
        LinkType::Raw,
        LinkType::Ipv4,
        LinkType::Ipv6,
        LinkType::LinuxSll,
        LinkType::LinuxSll2,
        LinkType::Null,
        LinkType::Loop,
    ] {
        e.handle_packet(t, link, &[]);
    }
    assert_eq!(e.stats().decoder.invalid, 8);
    assert_eq!(e.stats().decoder.pkts, 8);
    let _ = ChecksumMode::None;
}

#[test]
fn decoder_events_carry_tuple_and_flow() {
    let (link, frames) = read_pcap("lo-dns.pcap");
    let mut f = frames[0].data.clone();
    // UDP length one byte short of the datagram: decoded, but anomalous.
    let ulen = u16::from_be_bytes([f[38], f[39]]) - 1;
    f[38..40].copy_from_slice(&ulen.to_be_bytes());
    let mut e = sekisho_engine::Engine::new(no_csum());
    assert_eq!(e.poll_timeout(), None);
    e.handle_packet(frames[0].ts, link, &f);
    assert!(e.poll_timeout().is_some(), "a flow is tracked");
    let ev = e.poll_event().expect("decoder event");
    let Event::Decoder(d) = ev else {
        panic!("expected decoder event, got {ev:?}")
    };
    assert_eq!(d.event.anomaly_name(), "decoder.udp.len_invalid");
    assert_eq!(d.pkt_num, 1);
    let t = d.tuple.expect("tuple");
    assert_eq!((t.src_port, t.dst_port, t.proto), (33634, 18053, 17));
    assert!(d.flow_id.is_some());
    assert_eq!(e.stats().get("decoder.event.udp.len_invalid"), Some(1));
    e.finish(frames[0].ts);
    assert_eq!(e.poll_timeout(), None);
}

#[test]
fn icmp_port_unreachable_counts_in_the_quoted_flow() {
    // The DNS query of lo-dns.pcap, answered by an ICMP port unreachable quoting it (as a
    // closed port would): Suricata links the error to the UDP flow, direction to_client.
    let (link, frames) = read_pcap("lo-dns.pcap");
    let icmp = Frame {
        ts: frames[0].ts.add_secs(1),
        data: port_unreachable_for(&frames[0].data),
    };
    let r = run_frames(no_csum(), link, &[frames[0].clone(), icmp]);
    assert_eq!(r.flows.len(), 1, "no separate ICMP flow");
    let fl = &r.flows[0];
    assert_eq!((fl.proto, fl.src_port), (17, 33634));
    assert_eq!((fl.to_server.pkts, fl.to_client.pkts), (1, 1));
    assert_eq!(fl.to_client.bytes, 14 + 20 + 8 + 28);
    assert_eq!(r.engine.stats().decoder.icmpv4, 1);

    // Without the original flow the error is its own ICMP flow.
    let r = run_frames(
        no_csum(),
        link,
        &[Frame {
            ts: frames[0].ts,
            data: port_unreachable_for(&frames[0].data),
        }],
    );
    assert_eq!(r.flows.len(), 1);
    assert_eq!(r.flows[0].proto, 1);
    assert_eq!(r.flows[0].icmp, Some((3, 3)));
}

/// An ICMPv4 port unreachable quoting the Ethernet/IPv4/UDP frame `q` (IP header + 8 bytes).
fn port_unreachable_for(q: &[u8]) -> Vec<u8> {
    let mut f = q[..14 + 20].to_vec();
    f[14 + 9] = 1;
    f[16..18].copy_from_slice(&56u16.to_be_bytes());
    f.extend_from_slice(&[3, 3, 0, 0, 0, 0, 0, 0]);
    f.extend_from_slice(&q[14..14 + 28]);
    f
}

#[test]
fn engine_and_outputs_are_send() {
    // Drivers move engines to worker threads and events to writer threads.
    fn send<T: Send>() {}
    send::<sekisho_engine::Engine>();
    send::<Event>();
    send::<sekisho_engine::Stats>();
}
