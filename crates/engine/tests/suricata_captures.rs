//! Engine behaviour on captures of Suricata's own verification suite, read at run time from
//! `../shared/conformance/suricata-verify` or `$SEKISHO_SHARED` (never copied into the
//! repository). Without that directory the tests skip, unless `CI` is set, where they fail.

mod common;

use common::*;
use sekisho_engine::{DecodeEvent, EngineConfig, Event, FlowState, LinkType, TcpState};

fn suite_pcap(case: &str) -> Option<(LinkType, Vec<Frame>)> {
    let path =
        sekisho_testutil::require_shared(&format!("conformance/suricata-verify/tests/{case}"))?;
    Some(load_capture(&path))
}

#[test]
fn ethernet_over_mpls_loop_hits_the_layer_limit() {
    let Some((link, frames)) = suite_pcap("decode-too-many-layers/input.pcap") else {
        return;
    };
    let r = run_frames(no_csum(), link, &frames);
    let s = r.engine.stats();
    assert_eq!(s.decoder.too_many_layers, 1);
    assert_eq!(s.decoder.event[DecodeEvent::TooManyLayers as usize], 1);
    assert!(s.decoder.mpls >= 1, "MPLS labels were decoded");
    assert_eq!(s.decoder.invalid, 1);
    assert!(r.flows.is_empty());
}

/// tunnel-pkt-flows.pcap: an ICMP echo request/reply at the outer layer and the same
/// addresses' reply/request tunnelled in IPv6 (IPv4-in-IPv6).
fn icmp_flows(cfg: EngineConfig) -> Option<Vec<(u64, u64)>> {
    let (link, frames) = suite_pcap("flow-pkt-recursion/tunnel-pkt-flows.pcap")?;
    let r = run_frames(cfg, link, &frames);
    let mut v: Vec<(u64, u64)> = r
        .flows
        .iter()
        .filter(|f| f.proto == 1)
        .map(|f| (f.to_server.pkts, f.to_client.pkts))
        .collect();
    v.sort();
    Some(v)
}

#[test]
fn tunnel_depth_keeps_inner_and_outer_flows_apart() {
    let Some(flows) = icmp_flows(EngineConfig::default()) else {
        return;
    };
    // Request and reply travel the same way at each layer: four one-packet flows.
    assert_eq!(flows, vec![(1, 0); 4]);
}

#[test]
fn without_recursion_tracking_request_and_reply_pair_up_across_layers() {
    let cfg = EngineConfig {
        recursion_tracking: false,
        ..EngineConfig::default()
    };
    let Some(flows) = icmp_flows(cfg) else {
        return;
    };
    assert_eq!(flows, vec![(1, 1); 2]);
}

#[test]
fn geneve_icmp_echo_is_one_flow_with_its_response_type() {
    let Some((link, frames)) = suite_pcap("geneve-decoder/input.pcap") else {
        return;
    };
    let r = run_frames(no_csum(), link, &frames);
    let icmp: Vec<_> = r.flows.iter().filter(|f| f.proto == 1).collect();
    assert_eq!(icmp.len(), 1);
    let f = icmp[0];
    assert_eq!(f.icmp, Some((8, 0)));
    assert_eq!(f.icmp_response, Some((0, 0)));
    assert_eq!((f.to_server.pkts, f.to_client.pkts), (4, 4));
    assert_eq!(f.state, FlowState::Established);
}

#[test]
fn rst_with_stale_timestamp_is_ignored_and_reported() {
    let Some((link, frames)) = suite_pcap("output-eve-anomaly-02/input.pcap") else {
        return;
    };
    let r = run_frames(no_csum(), link, &frames);
    let names: Vec<&str> = r
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Stream(s) => Some(s.event),
            _ => None,
        })
        .collect();
    assert_eq!(names, vec!["pkt_invalid_timestamp"]);
    assert_eq!(r.engine.stats().tcp.pkt_invalid_timestamp, 1);
    // The RST (TSval 0 after 31081368) did not close the session.
    assert_eq!(r.flows.len(), 1);
    assert_eq!(r.flows[0].tcp_state, Some(TcpState::Established));
    assert_eq!(r.engine.stats().tcp.rst, 1);
}

#[test]
fn vxlan_inner_flows_are_tracked_only_when_enabled() {
    let Some((link, frames)) = suite_pcap("vxlan-decoder-01/input.pcap") else {
        return;
    };
    let ports = |cfg: EngineConfig| {
        let r = run_frames(cfg, link, &frames);
        let mut v: Vec<(u16, u16)> = r.flows.iter().map(|f| (f.src_port, f.dst_port)).collect();
        v.sort();
        (v, r.engine.stats().decoder.vxlan)
    };
    let (on, n) = ports(no_csum());
    assert!(on.contains(&(53, 12345)), "{on:?}");
    assert!(on.contains(&(32021, 12345)), "{on:?}");
    assert!(n >= 1);
    let (off, n) = ports(EngineConfig {
        vxlan: false,
        ..no_csum()
    });
    assert!(!off.contains(&(53, 12345)), "{off:?}");
    assert!(
        off.iter().any(|p| p.1 == 4789),
        "outer flow tracked instead: {off:?}"
    );
    assert_eq!(n, 0);
}
