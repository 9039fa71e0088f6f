//! The crafted decoder attacks (tests/fixtures/captures/crafted, made by
//! scripts/captures/make-crafted-captures.sh; what each attacks is in its README) replayed
//! inline with the recipient allow list (examples/smtp/recipients-strict.yaml), one test per
//! class: `sekisho replay` exits 0 (no crash), and the packet carrying the disallowed
//! recipient `b@yahoo.example` is dropped with a `drop` record naming why:
//! - fragments whose datagram has no single reading (beyond its end, overlapping with other
//!   bytes): the fragment that would complete it is undecodable, dropped with reason
//!   `decode error`, so the recipient never reaches the server;
//! - IPv6 with a Destination Options header behind the Fragment header: the recipient rule
//!   sees the RCPT through it and drops the flow (`rules`);
//! - VXLAN / GENEVE: the rule sees the inner session and drops it (`rules`); a malformed
//!   inner packet is `decode error`, never the outer UDP packet passed.
//!
//! Packet numbers come from the captures themselves (parsed here), never from sekisho.

#[path = "support/smtp.rs"]
mod support;

use std::path::{Path, PathBuf};

use serde_json::Value;
use support::{replay, root, Run};

const STRICT: &str = "examples/smtp/recipients-strict.yaml";
const RCPT: &[u8] = b"RCPT TO:<b@yahoo.example>";

fn crafted(name: &str) -> PathBuf {
    root().join("tests/fixtures/captures/crafted").join(name)
}

/// The frames of a classic little-endian pcap, numbered from 1 (EVE `pcap_cnt`).
fn frames(path: &Path) -> Vec<(u64, Vec<u8>)> {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[0..4], &[0xd4, 0xc3, 0xb2, 0xa1], "{}", path.display());
    let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]) as usize;
    assert_eq!(u32_at(20), 1, "Ethernet link type");
    let (mut out, mut o) = (Vec::new(), 24usize);
    while o + 16 <= b.len() {
        let incl = u32_at(o + 8);
        out.push((out.len() as u64 + 1, b[o + 16..o + 16 + incl].to_vec()));
        o += 16 + incl;
    }
    out
}

fn has(frame: &[u8], needle: &[u8]) -> bool {
    frame.windows(needle.len()).any(|w| w == needle)
}

/// Numbers of the frames containing `needle`.
fn containing(frames: &[(u64, Vec<u8>)], needle: &[u8]) -> Vec<u64> {
    frames
        .iter()
        .filter(|(_, f)| has(f, needle))
        .map(|(n, _)| *n)
        .collect()
}

/// (more fragments, offset in bytes) of an untunnelled IPv4 frame that is a fragment.
fn ipv4_fragment(frame: &[u8]) -> Option<(bool, usize)> {
    if frame.get(12..14)? != [0x08, 0x00] {
        return None;
    }
    let ff = u16::from_be_bytes([frame[20], frame[21]]);
    let (mf, off) = (ff & 0x2000 != 0, usize::from(ff & 0x1fff) * 8);
    (mf || off > 0).then_some((mf, off))
}

/// `sekisho replay --explain --policy POLICY PCAP` (inline): it must exit 0.
fn replay_inline(pcap: &Path, policy: &str) -> Run {
    let run = replay(pcap, &["--explain", "--policy", policy]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run
}

/// (pcap_cnt, reason) of every drop record.
fn drops(run: &Run) -> Vec<(u64, String)> {
    run.of("drop")
        .iter()
        .map(|d| {
            (
                d["pcap_cnt"].as_u64().unwrap(),
                d["drop"]["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The drop records with reason `decode error`.
fn decode_errors(run: &Run) -> Vec<&Value> {
    run.of("drop")
        .into_iter()
        .filter(|d| d["drop"]["reason"] == "decode error")
        .collect()
}

fn counter(run: &Run, path: &str) -> u64 {
    let stats = run.of("stats");
    let mut v = &stats.last().expect("a stats record")["stats"];
    for k in path.split('.') {
        v = &v[k];
    }
    v.as_u64().unwrap_or_else(|| panic!("no counter {path}"))
}

/// The smtp transactions' recipients, all together.
fn recipients(run: &Run) -> Vec<String> {
    run.of("smtp")
        .iter()
        .flat_map(|e| e["smtp"]["rcpt_to"].as_array().cloned().unwrap_or_default())
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

// ---- fragments -------------------------------------------------------------------------------

#[test]
fn fragments_beyond_the_datagrams_end_drop_the_recipient_as_a_decode_error() {
    let pcap = crafted("ipv4-frag-beyond-end.pcap");
    let fr = frames(&pcap);
    // The fragment that tells the end (MF=0) comes last and contradicts those beyond it.
    let last: Vec<u64> = fr
        .iter()
        .filter(|(_, f)| matches!(ipv4_fragment(f), Some((false, off)) if off > 0))
        .map(|(n, _)| *n)
        .collect();
    assert_eq!(last.len(), 1);
    let run = replay_inline(&pcap, STRICT);
    let errs = decode_errors(&run);
    assert_eq!(errs.len(), 1, "{:?}", drops(&run));
    let d = errs[0];
    assert_eq!(d["pcap_cnt"], last[0]);
    assert_eq!(d["src_ip"], "10.0.0.150");
    assert_eq!(d["dest_ip"], "203.0.113.25");
    assert_eq!(d["proto"], "TCP");
    assert_eq!(counter(&run, "ips.drop_reason.decode_error"), 1);
    // The recipient never reached detection, nor the server.
    assert!(!recipients(&run).iter().any(|r| r.contains("yahoo")));
    assert!(
        run.stdout.lines().any(|l| l
            == format!(
                "pkt {}: drop: decode error (the packet could not be decoded: nothing it \
                 carries was inspected)",
                last[0]
            )),
        "{}",
        run.stdout
    );
}

#[test]
fn overlapping_fragments_drop_the_recipient_as_a_decode_error() {
    let pcap = crafted("ipv4-frag-overlap-rcpt.pcap");
    let fr = frames(&pcap);
    let rcpt = containing(&fr, RCPT);
    assert_eq!(rcpt.len(), 1);
    // The TCP header (offset 0) arrives after the second copy: its datagram is gone too.
    let head: Vec<u64> = fr
        .iter()
        .filter(|(n, f)| *n > rcpt[0] && matches!(ipv4_fragment(f), Some((true, 0))))
        .map(|(n, _)| *n)
        .collect();
    assert_eq!(head.len(), 1);
    let run = replay_inline(&pcap, STRICT);
    let got: Vec<u64> = decode_errors(&run)
        .iter()
        .map(|d| d["pcap_cnt"].as_u64().unwrap())
        .collect();
    assert_eq!(got, vec![rcpt[0], head[0]], "{:?}", drops(&run));
    assert_eq!(counter(&run, "ips.drop_reason.decode_error"), 2);
    assert!(!recipients(&run).iter().any(|r| r.contains("yahoo")));
}

// ---- IPv6 extension headers ------------------------------------------------------------------

/// recipients-strict.yaml with the crafted IPv6 client's network in HOME_NET (its rules by
/// absolute path).
fn strict_with_ipv6(dir: &Path) -> String {
    let strict = std::fs::read_to_string(root().join(STRICT)).unwrap();
    let rules = root()
        .join("examples/smtp/recipients.rules")
        .canonicalize()
        .unwrap();
    for shape in ["HOME_NET: [10.0.0.0/24]", "rules: recipients.rules}"] {
        assert!(
            strict.contains(shape),
            "recipients-strict.yaml changed: {strict}"
        );
    }
    let text = strict
        .replace(
            "HOME_NET: [10.0.0.0/24]",
            "HOME_NET: [10.0.0.0/24, \"fd00::/64\"]",
        )
        .replace(
            "rules: recipients.rules}",
            &format!("rules: {}}}", rules.display()),
        );
    let path = dir.join("strict-v6.yaml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn recipient_behind_ipv6_destination_options_is_dropped_by_the_rule() {
    let pcap = crafted("ipv6-frag-dstopts-smtp.pcap");
    let fr = frames(&pcap);
    // The RCPT segment's second fragment completes its datagram.
    let rcpt = containing(&fr, RCPT);
    assert_eq!(rcpt.len(), 1);
    let tmp = tempfile::tempdir().unwrap();
    let policy = strict_with_ipv6(tmp.path());
    let run = replay_inline(&pcap, &policy);
    assert_eq!(drops(&run).first(), Some(&(rcpt[0], "rules".to_string())));
    assert_eq!(run.alerts(), vec![(2000001, rcpt[0])]);
    let d = &run.of("drop")[0];
    assert_eq!(d["src_ip"], "fd00:0000:0000:0000:0000:0000:0000:0150");
    assert_eq!(
        (d["proto"].as_str(), d["dest_port"].as_u64()),
        (Some("TCP"), Some(25))
    );
    let flows = run.of("flow");
    assert_eq!(flows.len(), 1, "one TCP/25 flow, not protocol 60");
    assert_eq!(flows[0]["flow"]["action"], "drop");
    // The alert carries the recipient's transaction; the dropped flow logs no open
    // transaction at its end (as Suricata).
    assert_eq!(
        run.of("alert")[0]["smtp"]["rcpt_to"],
        serde_json::json!(["<b@yahoo.example>"])
    );
    assert!(recipients(&run).is_empty());
    assert!(decode_errors(&run).is_empty());
}

// ---- tunnels ----------------------------------------------------------------------------------

/// The tunnelled session: the recipient rule drops the inner flow at the RCPT.
fn tunnelled_session_is_dropped_by_the_rule(name: &str) {
    let pcap = crafted(name);
    let rcpt = containing(&frames(&pcap), RCPT);
    assert_eq!(rcpt.len(), 1);
    let run = replay_inline(&pcap, STRICT);
    assert_eq!(
        drops(&run).first(),
        Some(&(rcpt[0], "rules".to_string())),
        "{name}"
    );
    assert_eq!(run.alerts(), vec![(2000001, rcpt[0])], "{name}");
    let d = &run.of("drop")[0];
    assert_eq!(
        (d["src_ip"].as_str(), d["dest_port"].as_u64()),
        (Some("10.0.0.150"), Some(25)),
        "{name}: the inner packet"
    );
    assert!(decode_errors(&run).is_empty(), "{name}");
}

/// The malformed inner packets: each a `decode error` drop naming the innermost IP header
/// whose addresses could be read (the tunnel endpoints when the inner header is cut short,
/// the inner packet's when only its length lies), no flow at all, and never the outer UDP
/// packet passed.
fn malformed_inner_is_a_decode_error(name: &str) {
    let pcap = crafted(name);
    let fr = frames(&pcap);
    let run = replay_inline(&pcap, STRICT);
    let errs = decode_errors(&run);
    let got: Vec<u64> = errs
        .iter()
        .map(|d| d["pcap_cnt"].as_u64().unwrap())
        .collect();
    assert_eq!(got, vec![1, 2], "{name}: {:?}", drops(&run));
    assert_eq!(fr.len(), 2);
    assert!(
        has(&fr[1].1, RCPT),
        "{name}: the second carries the recipient"
    );
    let named = |d: &Value| {
        (
            d["src_ip"].as_str().unwrap().to_string(),
            d["dest_ip"].as_str().unwrap().to_string(),
            d["proto"].as_str().unwrap().to_string(),
        )
    };
    // 1: the inner IPv4 header is cut after 10 bytes: the outer header is the last read.
    assert_eq!(
        named(errs[0]),
        ("192.0.2.1".into(), "192.0.2.2".into(), "UDP".into()),
        "{name}"
    );
    // 2: the inner header is whole, its total length is not.
    assert_eq!(
        named(errs[1]),
        ("10.0.0.150".into(), "203.0.113.25".into(), "TCP".into()),
        "{name}"
    );
    for d in &errs {
        assert_eq!(d["flow_id"], 0, "{name}: no flow");
    }
    assert_eq!(run.drops(), 2, "{name}");
    assert!(run.of("flow").is_empty(), "{name}: {:?}", run.of("flow"));
    assert_eq!(counter(&run, "ips.drop_reason.decode_error"), 2, "{name}");
}

#[test]
fn vxlan_session_is_dropped_by_the_rule_and_a_malformed_inner_packet_is_a_decode_error() {
    tunnelled_session_is_dropped_by_the_rule("vxlan-smtp.pcap");
    malformed_inner_is_a_decode_error("vxlan-malformed-inner.pcap");
}

#[test]
fn geneve_session_is_dropped_by_the_rule_and_a_malformed_inner_packet_is_a_decode_error() {
    tunnelled_session_is_dropped_by_the_rule("geneve-smtp.pcap");
    malformed_inner_is_a_decode_error("geneve-malformed-inner.pcap");
}

// ---- monitor mode -----------------------------------------------------------------------------

#[test]
fn monitor_mode_drops_nothing_undecodable_and_writes_no_drop_record() {
    let pcap = crafted("vxlan-malformed-inner.pcap");
    let run = replay(&pcap, &["--policy", STRICT, "--mode", "monitor"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.of("drop").is_empty());
    assert_eq!(counter(&run, "ips.drop_reason.decode_error"), 0);
    assert_eq!(counter(&run, "decoder.invalid"), 2);
}
