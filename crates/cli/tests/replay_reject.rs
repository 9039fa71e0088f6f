//! Pins what `sekisho replay` writes to `DIR/transmitted.pcap` for `reject` rules (inline):
//! the answers a live firewall would send, checked with tshark against the offending packets
//! tshark finds in the capture itself.
//!
//! 1. `reject` on a disallowed SMTP recipient (swaks-plain-disallowed.pcap, `RCPT
//!    TO:<mallory@evil.example>` in its own segment): exactly one packet, a TCP RST from the
//!    server's address and port to the client's (the segment's sender, addresses swapped),
//!    `seq` = the offending segment's ACK number (the next sequence number the client expects
//!    from the server, RFC 9293 3.10.7.1), flags RST only, good TCP and IP checksums.
//! 2. The same with a retransmitted offending segment (retransmit-rcpt.pcap, `RCPT
//!    TO:<b@yahoo.example>` sent twice with the same seq/ack): still exactly one RST.
//! 3. `rejectboth`: two RSTs, one each way; the one to the client as in 1, the one to the
//!    server from the client's address with `seq` = the offending segment's seq and `ack` =
//!    its ack (RST|ACK).
//! 4. `reject udp any any -> any 53` on real-eth.pcap (three DNS queries over UDP): one ICMP
//!    port unreachable (type 3 code 3) per query, from the query's destination to its sender,
//!    quoting the query (tshark's fields of the quoted `ip`/`udp`, and the quoted bytes equal
//!    the query's IP datagram), good checksums.
//! 5. `--mode monitor`: nothing is sent, no transmitted.pcap.
//!
//! tshark is required: without it the test fails when `CI` is set and is skipped loudly
//! otherwise.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `tshark -r FILE [-Y FILTER] -T fields -e F...` with checksum validation on, one row per
/// packet, each field's occurrences joined by `,`.
fn tshark(file: &Path, filter: Option<&str>, fields: &[&str]) -> Vec<Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(file);
    for o in [
        "tcp.check_checksum:TRUE",
        "udp.check_checksum:TRUE",
        "ip.check_checksum:TRUE",
    ] {
        cmd.args(["-o", o]);
    }
    if let Some(f) = filter {
        cmd.args(["-Y", f]);
    }
    cmd.args(["-T", "fields", "-E", "occurrence=a", "-E", "aggregator=,"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("run tshark");
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

/// Runs `sekisho replay --out DIR --rules R EXTRA... CAPTURE` with `rule` as R.
fn replay(rule: &str, capture: &Path, extra: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let rules = dir.path().join("reject.rules");
    std::fs::write(&rules, format!("{rule}\n")).expect("write rules");
    let out_dir = dir.path().join("out");
    let out = assert_cmd::Command::cargo_bin("sekisho")
        .expect("sekisho binary")
        .current_dir(root())
        .arg("replay")
        .arg("--quiet")
        .arg("--out")
        .arg(&out_dir)
        .arg("--rules")
        .arg(&rules)
        .args(extra)
        .arg(capture)
        .output()
        .expect("run sekisho");
    assert!(
        out.status.success(),
        "sekisho replay failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

fn transmitted(dir: &tempfile::TempDir) -> PathBuf {
    let p = dir.path().join("out/transmitted.pcap");
    assert!(p.is_file(), "{} was not written", p.display());
    p
}

/// Fields of the answers in transmitted.pcap.
const RST_FIELDS: &[&str] = &[
    "ip.src",
    "ip.dst",
    "tcp.srcport",
    "tcp.dstport",
    "tcp.seq_raw",
    "tcp.ack_raw",
    "tcp.flags",
    "tcp.checksum.status",
    "ip.checksum.status",
];

/// The offending segment, as tshark sees it in the capture: src, dst, sport, dport, seq, ack.
fn offending(capture: &Path, filter: &str) -> Vec<[String; 6]> {
    tshark(
        capture,
        Some(filter),
        &[
            "ip.src",
            "ip.dst",
            "tcp.srcport",
            "tcp.dstport",
            "tcp.seq_raw",
            "tcp.ack_raw",
        ],
    )
    .into_iter()
    .map(|r| r.try_into().expect("six fields"))
    .collect()
}

fn smtp_capture(name: &str) -> PathBuf {
    root().join("tests/fixtures/captures/smtp").join(name)
}

const REJECT_MALLORY: &str = r#"reject smtp any any -> any any (msg:"recipient not allowed"; smtp.rcpt_to; content:"mallory@evil.example"; sid:1;)"#;

#[test]
fn reject_resets_the_sender_at_the_sequence_number_it_expects() {
    if !sekisho_testutil::lab::require_tool("tshark") {
        return;
    }
    let cap = smtp_capture("swaks-plain-disallowed.pcap");
    let off = offending(
        &cap,
        r#"smtp.req.parameter contains "mallory@evil.example""#,
    );
    assert_eq!(off.len(), 1, "one RCPT segment: {off:?}");
    let [src, dst, sport, dport, _seq, ack] = off[0].clone();
    let dir = replay(REJECT_MALLORY, &cap, &[]);
    let rst = tshark(&transmitted(&dir), None, RST_FIELDS);
    // To the sender: addresses and ports swapped, seq = the segment's ack, RST only, good
    // checksum (tcp.checksum.status 1).
    assert_eq!(
        rst,
        vec![vec![
            dst,
            src,
            dport,
            sport,
            ack,
            "0".into(),
            "0x0004".into(),
            "1".into(),
            "1".into(),
        ]]
    );
}

#[test]
fn a_retransmitted_offending_segment_is_reset_once() {
    if !sekisho_testutil::lab::require_tool("tshark") {
        return;
    }
    let cap = smtp_capture("retransmit-rcpt.pcap");
    let off = offending(&cap, r#"tcp.payload contains "RCPT TO:<b@yahoo.example>""#);
    assert_eq!(off.len(), 2, "sent and retransmitted: {off:?}");
    assert_eq!(
        off[0], off[1],
        "the retransmission has the same seq and ack"
    );
    let [src, dst, sport, dport, _seq, ack] = off[0].clone();
    let rule = r#"reject smtp any any -> any any (msg:"no rcpt b"; smtp.rcpt_to; content:"b@yahoo.example"; sid:1;)"#;
    let dir = replay(rule, &cap, &[]);
    let rst = tshark(&transmitted(&dir), None, RST_FIELDS);
    assert_eq!(
        rst,
        vec![vec![
            dst,
            src,
            dport,
            sport,
            ack,
            "0".into(),
            "0x0004".into(),
            "1".into(),
            "1".into(),
        ]]
    );
}

#[test]
fn rejectboth_resets_each_side_at_its_expected_sequence_number() {
    if !sekisho_testutil::lab::require_tool("tshark") {
        return;
    }
    let cap = smtp_capture("swaks-plain-disallowed.pcap");
    let off = offending(
        &cap,
        r#"smtp.req.parameter contains "mallory@evil.example""#,
    );
    assert_eq!(off.len(), 1);
    let [src, dst, sport, dport, seq, ack] = off[0].clone();
    let rule = REJECT_MALLORY.replacen("reject", "rejectboth", 1);
    let dir = replay(&rule, &cap, &[]);
    let mut rst = tshark(&transmitted(&dir), None, RST_FIELDS);
    rst.sort();
    let mut want = vec![
        // To the client (the sender of the RCPT): seq = its ack.
        vec![
            dst.clone(),
            src.clone(),
            dport.clone(),
            sport.clone(),
            ack.clone(),
            "0".into(),
            "0x0004".into(),
            "1".into(),
            "1".into(),
        ],
        // To the server, as if from the client: seq = the dropped segment's seq, ack = its
        // ack, RST|ACK.
        vec![
            src,
            dst,
            sport,
            dport,
            seq,
            ack,
            "0x0014".into(),
            "1".into(),
            "1".into(),
        ],
    ];
    want.sort();
    assert_eq!(rst, want);
}

#[test]
fn reject_on_udp_answers_each_query_with_icmp_port_unreachable_quoting_it() {
    if !sekisho_testutil::lab::require_tool("tshark") {
        return;
    }
    let cap = root().join("tests/fixtures/captures/real-eth.pcap");
    let query_fields = [
        "ip.src",
        "ip.dst",
        "ip.id",
        "ip.len",
        "udp.srcport",
        "udp.dstport",
        "udp.checksum",
        "dns.id",
    ];
    let queries = tshark(&cap, Some("udp.dstport == 53"), &query_fields);
    assert_eq!(queries.len(), 3, "three DNS queries over UDP: {queries:?}");
    let dir = replay(r#"reject udp any any -> any 53 (sid:2;)"#, &cap, &[]);
    let sent = transmitted(&dir);
    // Outer and quoted fields (tshark dissects the quote as ip/udp/dns): with occurrence=a
    // the IP fields hold "outer,inner".
    let icmp = tshark(
        &sent,
        None,
        &[
            "ip.src",
            "ip.dst",
            "ip.id",
            "ip.len",
            "icmp.type",
            "icmp.code",
            "icmp.checksum.status",
            "udp.srcport",
            "udp.dstport",
            "udp.checksum",
            "dns.id",
            "ip.checksum.status",
        ],
    );
    assert_eq!(icmp.len(), queries.len(), "{icmp:?}");
    for (a, q) in icmp.iter().zip(&queries) {
        let (outer_src, inner_src) = a[0].split_once(',').expect("outer,inner ip.src");
        let (outer_dst, inner_dst) = a[1].split_once(',').expect("outer,inner ip.dst");
        let inner_id = a[2].split_once(',').expect("outer,inner ip.id").1;
        let inner_len = a[3].split_once(',').expect("outer,inner ip.len").1;
        // From the query's destination to its sender.
        assert_eq!((outer_src, outer_dst), (q[1].as_str(), q[0].as_str()));
        // Type 3 code 3, good ICMP checksum.
        assert_eq!(&a[4..7], ["3", "3", "1"]);
        // The quote is the query.
        assert_eq!(
            [inner_src, inner_dst, inner_id, inner_len],
            [&q[0], &q[1], &q[2], &q[3]].map(String::as_str)
        );
        assert_eq!(&a[7..11], &q[4..8]);
        // Good IP checksums, outer and quoted.
        assert_eq!(a[11], "1,1");
    }
    // Byte for byte: each ICMP payload after its 8-byte header is the query's IP datagram.
    let ips = |p: &Path, skip: usize| {
        let mut v = Vec::new();
        sekisho_pcap::MergedCaptures::open(&[p.to_path_buf()])
            .expect("open")
            .for_each(None, |pkt| v.push(pkt.data[skip..].to_vec()));
        v
    };
    let sent_packets = ips(&sent, 0);
    let capture_ips: Vec<Vec<u8>> = ips(&cap, 14)
        .into_iter()
        .filter(|ip| ip.len() > 23 && ip[9] == 17 && ip[22..24] == [0, 53])
        .collect();
    assert_eq!(capture_ips.len(), 3);
    for (s, q) in sent_packets.iter().zip(&capture_ips) {
        let ihl = usize::from(s[0] & 0x0f) * 4;
        assert_eq!(
            &s[ihl + 8..],
            &q[..usize::from(u16::from_be_bytes([q[2], q[3]]))]
        );
    }
}

#[test]
fn monitor_mode_sends_nothing() {
    let cap = smtp_capture("swaks-plain-disallowed.pcap");
    let dir = replay(REJECT_MALLORY, &cap, &["--mode", "monitor"]);
    let out = dir.path().join("out");
    assert!(out.join("eve.json").is_file(), "the replay ran and logged");
    let eve = std::fs::read_to_string(out.join("eve.json")).expect("eve.json");
    let alerts: Vec<serde_json::Value> = eve
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("eve line"))
        .filter(|e| e["event_type"] == "alert")
        .collect();
    assert_eq!(alerts.len(), 1, "the reject rule matched once: {alerts:?}");
    assert_eq!(alerts[0]["alert"]["signature_id"], 1);
    assert!(!out.join("transmitted.pcap").exists());
}
