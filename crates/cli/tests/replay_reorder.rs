//! Ordinary reordering is not an attack: tests/fixtures/captures/reorder/http-reorder.pcap
//! (scripts/captures/make-reorder-capture.sh: two curl downloads through an HTB whose slow
//! class holds one packet in four back, so later segments overtake them; TCP timestamps on,
//! as Linux negotiates them) replayed inline without rules must pass every packet.
//!
//! Before the fix inline replay dropped both flows as `stream_invalid`:
//! * a segment that arrives ahead of a hole set the sender's newest TSval, so the older
//!   segments that fill the hole failed PAWS (RFC 7323 §4.3: only in-order segments move
//!   TS.Recent);
//! * a delayed pure ACK, and the late original of a segment whose retransmission was already
//!   delivered, failed PAWS: they bring nothing new, the receiver drops them, and so
//!   nothing is hidden by ignoring them;
//! * the RST a closed client socket answers such a late segment with (sequence number = the
//!   segment's ACK, before the FIN) failed the RST check though both sides had closed.
//!
//! The attack these checks exist for stays covered by replay_exceptions.rs (a forged high
//! TSval, then genuine new data failing PAWS; an inexact RST on an open connection).

use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;

fn capture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/captures/reorder/http-reorder.pcap")
}

/// `(stream, from server, seq, len, tsval)` of every TCP segment, by tshark.
fn segments(file: &Path) -> Vec<(u32, bool, u64, u64, u64)> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(["-Y", "tcp", "-T", "fields"])
        .args(["-e", "tcp.stream", "-e", "tcp.srcport", "-e", "tcp.seq"])
        .args(["-e", "tcp.len", "-e", "tcp.options.timestamp.tsval"])
        .output()
        .expect("tshark runs");
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let n = |i: usize| f[i].parse::<u64>().unwrap_or(0);
            (n(0) as u32, f[1] == "8080", n(2), n(3), n(4))
        })
        .collect()
}

#[test]
fn reordered_downloads_pass_inline() {
    if !sekisho_testutil::lab::require_tool("tshark") {
        return;
    }
    let pcap = capture();
    // The capture does what it claims, by an independent reader: in the server's
    // direction some segment arrives ahead of a hole with a newer TSval than a segment that
    // later fills the hole (the case RFC 7323 §4.3 is about).
    let segs = segments(&pcap);
    let mut overtaken = 0;
    for stream in [0, 1] {
        let data: Vec<_> = segs
            .iter()
            .filter(|s| s.0 == stream && s.1 && s.3 > 0)
            .collect();
        for (i, later) in data.iter().enumerate() {
            if data[..i].iter().any(|e| e.2 > later.2 && e.4 > later.4) {
                overtaken += 1;
            }
        }
    }
    assert!(overtaken > 0, "no reordering in the capture");

    let dir = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("sekisho")
        .unwrap()
        .args(["replay", "--mode", "inline", "--out"])
        .arg(dir.path())
        .arg(&pcap)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("drops=0"), "{stderr}");
    let recs: Vec<Value> = std::fs::read_to_string(dir.path().join("eve.json"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let of = |t: &'static str| recs.iter().filter(move |r| r["event_type"] == t);
    assert_eq!(of("drop").count(), 0);
    let flows: Vec<&Value> = of("flow").collect();
    assert_eq!(flows.len(), 2);
    for f in &flows {
        assert!(f["flow"]["action"].is_null(), "{f}");
        assert!(f["flow"]["exception_policy"].is_null(), "{f}");
        assert_eq!(f["app_proto"], "http");
    }
    // Both downloads were reassembled whole: 96 KiB each, as curl received them.
    let lengths: Vec<u64> = of("http")
        .map(|r| r["http"]["length"].as_u64().unwrap())
        .collect();
    assert_eq!(lengths, [98_304, 98_304]);
    // The segments that failed PAWS were seen and ignored, not passed unseen.
    let stats = &of("stats").next_back().unwrap()["stats"];
    assert!(stats["stream"]["pkt_invalid_timestamp"].as_u64().unwrap() > 0);
    assert_eq!(stats["ips"]["blocked"], 0);
}
