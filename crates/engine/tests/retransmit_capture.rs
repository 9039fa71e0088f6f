//! Pins the fixture `tests/fixtures/captures/smtp/retransmit-rcpt.pcap`
//! (scripts/captures/make-retransmit-capture.sh): the client's `RCPT TO:<b@yahoo.example>`
//! segment is in it twice, the first copy (dropped by the server's iptables) and the TCP
//! retransmission of it, with the same sequence number and payload. Read with sekisho-pcap and
//! our decoder, independently of the tshark run that made `retransmit-rcpt.tshark.json`, so
//! that a regenerated capture of a different shape fails here first, not in the engine tests
//! that rely on it.

mod common;

use std::path::PathBuf;

use sekisho_engine::decode::{PacketDecoder, Transport};
use sekisho_engine::{EngineConfig, LinkType};

const RCPT: &[u8] = b"RCPT TO:<b@yahoo.example>\r\n";

fn capture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/captures/smtp")
        .join(name)
}

/// (frame number as tshark counts, seq, ack, payload) of every TCP segment with payload.
fn segments() -> Vec<(usize, u32, u32, u16, Vec<u8>)> {
    let (link, frames) = common::load_capture(&capture("retransmit-rcpt.pcap"));
    assert_eq!(link, LinkType::Ethernet);
    let mut dec = PacketDecoder::new(&EngineConfig::default());
    let mut out = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        let p = dec
            .decode(f.ts, link, &f.data)
            .expect("every frame decodes");
        assert!(p.checksum_ok, "frame {} checksums", i + 1);
        let Transport::Tcp(t) = p.transport else {
            panic!("frame {} is not TCP", i + 1)
        };
        if !p.payload.is_empty() {
            out.push((i + 1, t.seq, t.ack, p.src_port, p.payload.to_vec()));
        }
    }
    out
}

#[test]
fn the_rcpt_segment_is_there_twice_with_the_same_seq() {
    let rcpt: Vec<_> = segments()
        .into_iter()
        .filter(|s| s.4.windows(RCPT.len()).any(|w| w == RCPT))
        .collect();
    assert_eq!(rcpt.len(), 2, "two copies of the RCPT segment: {rcpt:?}");
    let (a, b) = (&rcpt[0], &rcpt[1]);
    assert_eq!(
        (a.0, b.0),
        (11, 13),
        "frame numbers the README and later tests name"
    );
    assert_ne!(a.3, 25, "sent by the client");
    assert_eq!(a.3, b.3, "same client port");
    assert_eq!(a.1, b.1, "same sequence number");
    assert_eq!(a.2, b.2, "same acknowledgment number");
    assert_eq!(
        a.4, RCPT,
        "the segment holds exactly the command (no pipelining)"
    );
    assert_eq!(a.4, b.4, "same payload");
}

#[test]
fn tshark_sees_one_transaction_with_the_recipient_once() {
    let text = std::fs::read_to_string(capture("retransmit-rcpt.tshark.json")).expect("json");
    let v: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    assert_eq!(
        v,
        serde_json::json!([[{
            "helo": "client.example",
            "mail_from": "<a@example.com>",
            "rcpt_to": ["<b@yahoo.example>"]
        }]])
    );
}
