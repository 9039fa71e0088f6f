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

/// A session whose server never answered the SYN carries a whole SMTP dialogue: data nobody
/// would accept into a stream, used to stay "not established" under rules that need an
/// established flow. The stream_invalid policy drops the flow at its first data segment.
///
/// The capture opens with a stray SYN/ACK and RST on the same ports. A flow whose first
/// packet is a SYN/ACK is a mid-stream pick-up (as in Suricata), so with pick-up off the
/// stream_midstream policy drops the whole tuple at once; with it on, the stray flow is
/// picked up, reset and reused by the SYN, and the session's data meets stream_invalid.
#[test]
fn data_on_a_session_the_server_never_answered_fails_closed() {
    let pcap = root().join("tests/fixtures/captures/crafted/synsent-data-without-answer.pcap");
    let refused = replay(&pcap, &["--policy", "examples/smtp/recipients-strict.yaml"]);
    assert_eq!(refused.code, 0, "{}", refused.stderr);
    let reasons: Vec<&str> = refused
        .of("drop")
        .iter()
        .map(|d| d["drop"]["reason"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(reasons.first(), Some(&"stream midstream"), "{reasons:?}");
    assert!(refused.of("smtp").is_empty(), "{:?}", refused.of("smtp"));

    let run = replay(
        &pcap,
        &[
            "--policy",
            "examples/smtp/recipients-strict.yaml",
            "--set",
            "stream.midstream=true",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let drops: Vec<&str> = run
        .of("drop")
        .iter()
        .map(|d| d["drop"]["reason"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(drops, ["stream error"], "{}", run.stderr);
    let flows = run.of("flow");
    let last = flows.last().expect("flow records");
    assert_eq!(last["flow"]["action"], "drop");
    assert_eq!(
        last["flow"]["exception_policy"],
        serde_json::json!([{"target": "stream_invalid", "policy": "drop_flow"}])
    );
    // No SMTP transaction reached the parser: the session's data was never delivered.
    assert!(run.of("smtp").is_empty(), "{:?}", run.of("smtp"));
}
