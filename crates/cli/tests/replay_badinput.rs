//! Bad input: truncated capture, garbage, a missing file, zero-length packets, a packet whose
//! IP header claims 64 KB inside a 60-byte frame. Each gives a clear message and the documented
//! exit status (1 = input error, logs still written for what was read; 2 = a path that cannot
//! be read at all; 0 when the capture is well-formed and only packets are malformed, which
//! become decoder counters), never a panic.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use assert_cmd::cargo::CommandCargoExt;
use sekisho_pcap::write::PcapWriter;
use sekisho_pcap::{CaptureReader, PacketTime};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/captures")
        .join(name)
}

fn replay(out: &Path, file: &Path) -> Output {
    Command::cargo_bin("sekisho")
        .unwrap()
        .args(["replay", "-q", "--out"])
        .arg(out)
        .arg(file)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn no_panic(o: &Output) {
    let e = stderr(o);
    assert!(!e.contains("panicked"), "panic: {e}");
    assert_ne!(o.status.code(), Some(101), "panic exit: {e}");
}

fn last_stats(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("eve.json")).unwrap();
    let line = text
        .lines()
        .rev()
        .find(|l| l.contains("\"event_type\":\"stats\""))
        .unwrap();
    serde_json::from_str::<serde_json::Value>(line).unwrap()["stats"].clone()
}

/// The first frame of the real Ethernet fixture (a complete packet).
fn first_frame() -> Vec<u8> {
    let mut r = CaptureReader::open(fixture("real-eth.pcap")).unwrap();
    loop {
        let p = r.next_packet().unwrap().unwrap();
        // An IPv4 frame (skip ARP).
        if p.data.len() > 34 && p.data[12..14] == [0x08, 0x00] {
            return p.data.to_vec();
        }
    }
}

#[test]
fn truncated_capture_exits_1_and_logs_what_was_read() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fixture("real-eth.pcap")).unwrap();
    let cut = dir.path().join("cut.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let out = dir.path().join("out");
    let o = replay(&out, &cut);
    no_panic(&o);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("cut.pcap: truncated capture: file ends inside a record at byte offset"),
        "{e}"
    );
    assert!(
        e.contains("packets=") && !e.contains("packets=0 "),
        "summary missing: {e}"
    );
    // Flows before the cut are still logged.
    let eve = std::fs::read_to_string(out.join("eve.json")).unwrap();
    assert!(eve.contains("\"event_type\":\"flow\""));
    assert!(last_stats(&out)["decoder"]["pkts"].as_u64().unwrap() > 10);
}

#[test]
fn garbage_file_exits_1_with_magic() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.bin");
    std::fs::write(&junk, b"GET / HTTP/1.1\r\nHost: example\r\n\r\n").unwrap();
    let o = replay(&dir.path().join("out"), &junk);
    no_panic(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("junk.bin: not a pcap or pcapng file (magic 0x47455420)"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn empty_file_exits_1_missing_file_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pcap");
    std::fs::write(&empty, b"").unwrap();
    let o = replay(&dir.path().join("out"), &empty);
    no_panic(&o);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("empty.pcap: not a pcap or pcapng file (magic 0x00000000)"),
        "{}",
        stderr(&o)
    );
    let o = replay(&dir.path().join("out"), &dir.path().join("nope.pcap"));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("nope.pcap: cannot read"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn zero_length_packets_are_counted_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zero.pcap");
    let mut w = PcapWriter::new(std::fs::File::create(&path).unwrap(), 1, false).unwrap();
    let frame = first_frame();
    w.write_packet(
        PacketTime {
            sec: 1_700_000_000,
            nsec: 0,
        },
        &[],
        0,
    )
    .unwrap();
    w.write_packet(
        PacketTime {
            sec: 1_700_000_000,
            nsec: 1000,
        },
        &frame,
        frame.len() as u32,
    )
    .unwrap();
    w.write_packet(
        PacketTime {
            sec: 1_700_000_000,
            nsec: 2000,
        },
        &[],
        60,
    )
    .unwrap();
    w.into_inner().unwrap();
    let out = dir.path().join("out");
    let o = replay(&out, &path);
    no_panic(&o);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let stats = last_stats(&out);
    assert_eq!(stats["decoder"]["pkts"], 3);
    assert_eq!(stats["decoder"]["invalid"], 2, "{stats}");
    assert_eq!(stats["flow"]["total"], 1);
}

#[test]
fn ip_length_claiming_64k_in_60_byte_frame_is_a_decoder_event() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.pcap");
    let mut frame = first_frame();
    frame.truncate(60);
    // IPv4 total length = 65535 while only 46 bytes of IP follow the Ethernet header.
    frame[16] = 0xff;
    frame[17] = 0xff;
    let mut w = PcapWriter::new(std::fs::File::create(&path).unwrap(), 1, false).unwrap();
    w.write_packet(
        PacketTime {
            sec: 1_700_000_000,
            nsec: 0,
        },
        &frame,
        65_549,
    )
    .unwrap();
    w.into_inner().unwrap();
    let out = dir.path().join("out");
    let o = replay(&out, &path);
    no_panic(&o);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let stats = last_stats(&out);
    assert_eq!(stats["decoder"]["invalid"], 1, "{stats}");
    assert_eq!(stats["flow"]["total"], 0, "{stats}");
}

#[test]
fn record_larger_than_any_packet_is_malformed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.pcap");
    let mut bytes = std::fs::read(fixture("real-eth.pcap")).unwrap();
    // First record's caplen (offset 24 + 8) set to 16 MB.
    bytes[32..36].copy_from_slice(&(16u32 << 20).to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let o = replay(&dir.path().join("out"), &path);
    no_panic(&o);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("huge.pcap"), "{}", stderr(&o));
}

#[test]
fn invalid_rules_exit_1_config_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("bad.rules");
    std::fs::write(
        &rules,
        "alert tcp any any -> any 80 (msg:\"x\"; contnt:\"GET\"; sid:1;)\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        Command::cargo_bin("sekisho")
            .unwrap()
            .args(["replay", "-q", "--out"])
            .arg(dir.path().join("out"))
            .args(args)
            .arg(fixture("real-eth.pcap"))
            .output()
            .unwrap()
    };
    let o = run(&["--rules", rules.to_str().unwrap()]);
    no_panic(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("bad.rules:1:39: error: unknown keyword 'contnt'"),
        "{}",
        stderr(&o)
    );
    let o = run(&["--set", "flow-timeouts.tcp.establishd=5"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("unknown state `establishd`"),
        "{}",
        stderr(&o)
    );
    let o = run(&["--set", "nonsense"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("expected KEY=VALUE"), "{}", stderr(&o));
    let o = run(&["--rules", dir.path().join("none.rules").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("none.rules: cannot read: No such file or directory"),
        "{}",
        stderr(&o)
    );
    let o = run(&["--policy", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains(": cannot read: "), "{}", stderr(&o));
}
