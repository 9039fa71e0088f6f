//! Detection semantics found in review, on a real capture (swaks → smtp-sink):
//! protocol-detection-only rules fire once per direction and decide the flow; a
//! retransmitted segment is not inspected again by stream rules; a content repeated in later
//! packets alerts on each of them despite the stream window.

#[path = "support/smtp.rs"]
mod support;

use std::path::Path;

use support::{capture, replay, tcp_packets};

fn rules(dir: &Path, text: &str) -> String {
    let p = dir.join("t.rules");
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[test]
fn protocol_detection_only_rules_fire_once_and_decide_the_flow() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = capture("swaks-plain.pcap");
    let r = rules(
        dir.path(),
        "alert tcp any any -> any 25 (msg:\"pd only\"; app-layer-protocol:smtp; sid:1;)\n",
    );
    let run = replay(&pcap, &["--rules", &r]);
    assert_eq!(run.alerts().len(), 1, "{:?}", run.alerts());
    let r = rules(
        dir.path(),
        "drop tcp any any -> any 25 (msg:\"not tls\"; app-layer-protocol:!tls; sid:2;)\n",
    );
    let run = replay(&pcap, &["--mode", "inline", "--rules", &r]);
    assert_eq!(run.alerts().len(), 1);
    assert_eq!(run.of("flow")[0]["flow"]["action"], "drop");
}

/// Writes `src` with frame `dup` (1-based) appended again at the end.
fn with_retransmission(src: &Path, dup: usize, out: &Path) {
    let b = std::fs::read(src).unwrap();
    assert_eq!(&b[0..4], &[0xd4, 0xc3, 0xb2, 0xa1], "little-endian µs pcap");
    let mut o = 24usize;
    let mut frames = Vec::new();
    while o + 16 <= b.len() {
        let incl = u32::from_le_bytes([b[o + 8], b[o + 9], b[o + 10], b[o + 11]]) as usize;
        frames.push(b[o..o + 16 + incl].to_vec());
        o += 16 + incl;
    }
    let mut copy = frames[dup - 1].clone();
    // One second after the last frame.
    let last = &frames[frames.len() - 1];
    let secs = u32::from_le_bytes([last[0], last[1], last[2], last[3]]) + 1;
    copy[0..4].copy_from_slice(&secs.to_le_bytes());
    let mut w = b[..24].to_vec();
    for f in &frames {
        w.extend_from_slice(f);
    }
    w.extend_from_slice(&copy);
    std::fs::write(out, w).unwrap();
}

#[test]
fn a_retransmitted_segment_is_not_inspected_again() {
    let dir = tempfile::tempdir().unwrap();
    let src = capture("swaks-plain.pcap");
    let ehlo = tcp_packets(&src)
        .iter()
        .find(|p| p.payload.starts_with(b"EHLO"))
        .map(|p| p.num as usize)
        .unwrap();
    let pcap = dir.path().join("retx.pcap");
    with_retransmission(&src, ehlo, &pcap);
    let r = rules(
        dir.path(),
        "alert tcp any any -> any 25 (msg:\"ehlo\"; content:\"EHLO\"; sid:40;)\n",
    );
    let run = replay(&pcap, &["--mode", "monitor", "--rules", &r]);
    assert_eq!(run.alerts(), vec![(40, ehlo as u64)]);
}

#[test]
fn a_content_repeated_in_later_packets_alerts_each_time() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = capture("swaks-plain.pcap");
    let expected: Vec<u64> = tcp_packets(&pcap)
        .iter()
        .filter(|p| p.sport == 25 && p.payload.windows(4).any(|w| w == b"250 "))
        .map(|p| p.num)
        .collect();
    assert!(expected.len() >= 3);
    let r = rules(
        dir.path(),
        "alert tcp any 25 -> any any (msg:\"250\"; content:\"250 \"; sid:11;)\n",
    );
    let run = replay(&pcap, &["--rules", &r]);
    let got: Vec<u64> = run.alerts().iter().map(|(_, n)| *n).collect();
    assert_eq!(got, expected);
}
