//! SIGTERM during a replay: reading stops, flows in progress are ended (`reason: shutdown`)
//! and logged, the closing stats record is written, every line is complete JSON, exit 0.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use assert_cmd::cargo::CommandCargoExt;
use sekisho_pcap::write::PcapWriter;
use sekisho_pcap::{MergedCaptures, PacketTime};

#[test]
fn sigterm_flushes_logs() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/captures/real-eth.pcap");
    let mut frames = Vec::new();
    MergedCaptures::open(&[&fixture])
        .unwrap()
        .for_each(None, |p| frames.push((p.ts, p.data.to_vec())));
    // The real traffic replayed 1,500 times, 100 s apart (256,500 packets): long enough to
    // interrupt even an optimised build (~0.4 Mpps at opt-level 1 on the 2-core CI box).
    let big = dir.path().join("long.pcap");
    let mut w = PcapWriter::new(
        std::io::BufWriter::new(std::fs::File::create(&big).unwrap()),
        1,
        false,
    )
    .unwrap();
    let mut total = 0u64;
    for round in 0..1_500u64 {
        for (ts, data) in &frames {
            let t = PacketTime {
                sec: ts.sec + round * 100,
                nsec: ts.nsec,
            };
            w.write_packet(t, data, data.len() as u32).unwrap();
            total += 1;
        }
    }
    w.into_inner().unwrap();
    let out = dir.path().join("out");
    let child = Command::cargo_bin("sekisho")
        .unwrap()
        .args(["replay", "-q", "--out"])
        .arg(&out)
        .arg(&big)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt as soon as the replay is under way (its log file exists).
    let started = std::time::Instant::now();
    while !out.join("eve.json").exists() && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(20));
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("interrupted; logs flushed"), "{err}");
    let summary = err.lines().find(|l| l.starts_with("packets=")).unwrap();
    let read: u64 = summary["packets=".len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        read > 0 && read < total,
        "read {read} of {total}: not interrupted mid-way"
    );
    let eve = std::fs::read_to_string(out.join("eve.json")).unwrap();
    let events: Vec<serde_json::Value> = eve
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let last = events.last().unwrap();
    assert_eq!(last["event_type"], "stats");
    assert_eq!(last["stats"]["decoder"]["pkts"], read);
    assert!(events
        .iter()
        .any(|e| e["event_type"] == "flow" && e["flow"]["reason"] == "shutdown"));
}
