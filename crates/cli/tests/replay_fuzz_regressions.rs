//! Regressions found by the `sensor_smtp_flows` fuzz target (fuzz/), replayed from the
//! captures it wrote (`tests/fixtures/captures/crafted/README.md` describes each).

#[path = "support/smtp.rs"]
mod support;

use support::{replay, root};

/// The handshake completes on the client's first data segment (its ACK came early), and
/// that segment carries `RCPT TO:<b@yahoo.example>`: the recipient rule must see it.
#[test]
fn data_on_the_packet_completing_the_handshake_is_inspected_as_established() {
    let pcap = root().join("tests/fixtures/captures/crafted/early-ack-vxlan-frag.pcap");
    let run = replay(&pcap, &["--policy", "examples/smtp/recipients-strict.yaml"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let drops: Vec<(u64, &str)> = run
        .of("drop")
        .iter()
        .map(|d| {
            (
                d["alert"]["signature_id"].as_u64().unwrap_or(0),
                d["drop"]["reason"].as_str().unwrap_or(""),
            )
        })
        .collect();
    // The disallowed-recipient rule (sid 2000001 of examples/smtp/recipients.rules) drops
    // the flow at that segment.
    assert_eq!(drops.first(), Some(&(2000001, "rules")), "{drops:?}");
    assert_eq!(run.alerts().len(), 1);
    let flow = run.of("flow");
    assert_eq!(flow.len(), 1);
    assert_eq!(flow[0]["flow"]["action"], "drop");
    assert_eq!(flow[0]["app_proto"], "smtp");
}
