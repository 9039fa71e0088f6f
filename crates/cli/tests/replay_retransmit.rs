//! Inline means decided before delivery (issue 9): a packet dropped inline never counts as
//! delivered, so the sender's retransmission of it is inspected afresh and dropped again.
//!
//! The capture (scripts/captures/make-retransmit-capture.sh) is a real swaks session whose
//! segment carrying `RCPT TO:<b@yahoo.example>` was lost once on the way and retransmitted
//! by the client's TCP: two segments with the same sequence number and payload. With a
//! packet-scoped drop on that recipient, both copies must be dropped, whether the rule reads
//! the parsed recipient (`smtp.rcpt_to`, an app-layer transaction buffer) or the raw stream
//! (`content`). Before, the first copy's bytes stayed in reassembly and in the SMTP parser,
//! the retransmission counted as already delivered, and the server got the recipient.

#[path = "support/smtp.rs"]
mod support;

use support::{capture, replay, tcp_packets};

/// Packet numbers of the segments carrying `needle`, from an independent reading of the
/// capture.
fn carrying(needle: &[u8]) -> Vec<u64> {
    tcp_packets(&capture("retransmit-rcpt.pcap"))
        .iter()
        .filter(|p| p.payload.windows(needle.len()).any(|w| w == needle))
        .map(|p| p.num)
        .collect()
}

fn rules_file(dir: &tempfile::TempDir, text: &str) -> String {
    let p = dir.path().join("r.rules");
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

/// (pcap_cnt, signature_id) of every drop record.
fn drops(run: &support::Run) -> Vec<(u64, u64)> {
    run.of("drop")
        .iter()
        .map(|d| {
            (
                d["pcap_cnt"].as_u64().unwrap(),
                d["alert"]["signature_id"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

#[test]
fn both_copies_of_a_dropped_segment_are_dropped() {
    let copies = carrying(b"RCPT TO:<b@yahoo.example>");
    assert_eq!(
        copies.len(),
        2,
        "the fixture holds the segment and its retransmission"
    );
    let dir = tempfile::tempdir().unwrap();
    for (sid, rule) in [
        (
            1,
            r#"drop:packet smtp any any -> any any (msg:"recipient b"; smtp.rcpt_to; content:"b@yahoo.example"; sid:1;)"#,
        ),
        (
            2,
            r#"drop:packet tcp any any -> any 25 (msg:"raw recipient b"; content:"b@yahoo.example"; sid:2;)"#,
        ),
    ] {
        let rules = rules_file(&dir, rule);
        let run = replay(&capture("retransmit-rcpt.pcap"), &["--rules", &rules]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let want: Vec<(u64, u64)> = copies.iter().map(|&n| (n, sid)).collect();
        assert_eq!(drops(&run), want, "sid {sid}");
        assert_eq!(run.drops(), 2, "sid {sid}: {}", run.stderr);
        // Each copy alerts as blocked.
        let alerts: Vec<u64> = run
            .of("alert")
            .iter()
            .filter(|a| a["alert"]["action"] == "blocked")
            .map(|a| a["pcap_cnt"].as_u64().unwrap())
            .collect();
        assert_eq!(alerts, copies, "sid {sid}");
        // The dropped recipient never counts as delivered: the transaction logged is what
        // the server received, the envelope without it.
        let smtp = run.of("smtp");
        assert_eq!(smtp.len(), 1, "sid {sid}");
        assert_eq!(smtp[0]["smtp"]["mail_from"], "<a@example.com>");
        assert!(
            smtp[0]["smtp"].get("rcpt_to").is_none(),
            "sid {sid}: {}",
            smtp[0]
        );
    }
}

/// In monitor mode nothing is dropped and nothing is undone: the first copy is delivered,
/// alerts once, and the retransmission adds nothing new to the stream.
#[test]
fn monitor_mode_sees_the_segment_once() {
    let copies = carrying(b"RCPT TO:<b@yahoo.example>");
    let dir = tempfile::tempdir().unwrap();
    let rules = rules_file(
        &dir,
        r#"drop:packet smtp any any -> any any (msg:"recipient b"; smtp.rcpt_to; content:"b@yahoo.example"; sid:1;)"#,
    );
    let run = replay(
        &capture("retransmit-rcpt.pcap"),
        &["--mode", "monitor", "--rules", &rules],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.of("drop").is_empty());
    let alerts: Vec<u64> = run
        .of("alert")
        .iter()
        .map(|a| a["pcap_cnt"].as_u64().unwrap())
        .collect();
    assert_eq!(alerts, vec![copies[0]]);
}
