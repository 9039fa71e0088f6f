//! App-layer `anomaly` events (`Event::AppAnomaly`) on real suricata-verify SMTP captures
//! (read from ../shared; a loud skip when absent, a failure with `CI` set): one event per
//! raised SMTP event, at the packet that raised it, oriented as Suricata logs it, queued
//! before the transaction's `AppTx`, and bounded by `max_queued_events`.

mod common;

use std::path::PathBuf;

use common::{load_capture, run_frames, Frame};
use sekisho_engine::{AppAnomalyRecord, ChecksumMode, EngineConfig, Event, LinkType, PacketTuple};

/// A case's capture from the shared suite; `None` (a loud skip, or a panic in CI) when the
/// shared tree is absent.
fn case_pcap(case: &str, file: &str) -> Option<(LinkType, Vec<Frame>)> {
    let path: PathBuf = sekisho_testutil::require_shared(&format!(
        "conformance/suricata-verify/tests/{case}/{file}"
    ))?;
    Some(load_capture(&path))
}

/// suricata-verify runs these cases with `-k none`.
fn cfg() -> EngineConfig {
    EngineConfig {
        checksums: ChecksumMode::None,
        ..EngineConfig::default()
    }
}

fn anomalies(events: &[Event]) -> Vec<AppAnomalyRecord> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::AppAnomaly(a) => Some((**a).clone()),
            _ => None,
        })
        .collect()
}

fn ports(t: &PacketTuple) -> (u16, u16) {
    (t.src_port, t.dst_port)
}

#[test]
fn long_ehlo_raises_one_truncated_line_before_its_transaction() {
    let Some((link, frames)) = case_pcap("smtp-long-command", "input.pcap") else {
        return;
    };
    let run = run_frames(cfg(), link, &frames);
    let got = anomalies(&run.events);
    assert_eq!(got.len(), 1, "{got:#?}");
    let a = &got[0];
    assert_eq!(
        (a.app_proto, a.event, a.tx_id),
        ("smtp", "TRUNCATED_LINE", Some(0))
    );
    // Client data, logged (IDS) on the server's acknowledgement: server → client.
    assert_eq!(ports(&a.tuple), (25, 59096));
    assert_eq!(a.tuple.src_ip.to_string(), "83.215.238.27");
    assert_eq!(a.tuple.proto, 6);
    // Raised while the EHLO was parsed: long before tx 0 is logged (pcap_cnt 25).
    assert!(a.pkt_num > 0 && a.pkt_num < 25, "pkt {}", a.pkt_num);
    let anomaly_at = run
        .events
        .iter()
        .position(|e| matches!(e, Event::AppAnomaly(_)))
        .unwrap();
    let tx_at = run
        .events
        .iter()
        .position(|e| matches!(e, Event::AppTx(t) if t.tx_id == 0))
        .unwrap();
    assert!(anomaly_at < tx_at);
    let Event::AppTx(tx) = &run.events[tx_at] else {
        unreachable!()
    };
    assert_eq!(a.flow_id, tx.flow_id);
}

#[test]
fn bad_reply_codes_raise_invalid_reply_once_per_flow() {
    let Some((link, frames)) = case_pcap("smtp-errors", "smtperr.pcap") else {
        return;
    };
    let run = run_frames(cfg(), link, &frames);
    let got = anomalies(&run.events);
    let mut invalid: Vec<(u16, u16)> = got
        .iter()
        .filter(|a| a.event == "INVALID_REPLY")
        .map(|a| ports(&a.tuple))
        .collect();
    invalid.sort_unstable();
    // Server replies, logged on the client's acknowledgement: client → server. The
    // `4.7.0` reply on port 49448's flow comes after its tx was logged: no event (8.0.7+).
    assert_eq!(
        invalid,
        vec![(49274, 25), (49448, 25), (49740, 25), (50649, 465)],
        "{got:#?}"
    );
    assert!(got
        .iter()
        .all(|a| a.tx_id.is_some() && a.app_proto == "smtp"));
    // Each record is about a packet of its own flow, numbered as it was read.
    for a in &got {
        assert!(a.pkt_num >= 1 && a.pkt_num <= frames.len() as u64);
    }
}

#[test]
fn inline_mode_orients_the_record_like_the_data() {
    let Some((link, frames)) = case_pcap("smtp-long-command", "input.pcap") else {
        return;
    };
    let inline = EngineConfig {
        inline: true,
        ..cfg()
    };
    let got = anomalies(&run_frames(inline, link, &frames).events);
    assert_eq!(got.len(), 1);
    assert_eq!(ports(&got[0].tuple), (59096, 25));
}

#[test]
fn app_anomalies_are_bounded_by_max_queued_events() {
    let Some((link, frames)) = case_pcap("smtp-errors", "smtperr.pcap") else {
        return;
    };
    let mut kinds: Vec<&str> = anomalies(&run_frames(cfg(), link, &frames).events)
        .iter()
        .map(|a| a.event)
        .collect();
    kinds.sort_unstable();
    // The four INVALID_REPLY events the suite expects (8.0.7+) and the missing greeting.
    assert_eq!(
        kinds,
        [
            "INVALID_REPLY",
            "INVALID_REPLY",
            "INVALID_REPLY",
            "INVALID_REPLY",
            "NO_SERVER_WELCOME_MESSAGE"
        ]
    );
    let full = kinds.len();
    // A queue that is never below its cap (events are drained after each packet, so a cap
    // of 0 rejects every bounded event) drops them all and counts them.
    let tight = EngineConfig {
        max_queued_events: 0,
        ..cfg()
    };
    let run = run_frames(tight, link, &frames);
    assert!(anomalies(&run.events).is_empty());
    // Every bounded event of the run is dropped and counted: the five app-layer anomalies
    // and the one other bounded event this capture raises.
    assert_eq!(run.engine.dropped_events(), full as u64 + 1);
    // Transactions are never dropped.
    assert!(run.events.iter().any(|e| matches!(e, Event::AppTx(_))));
}
