//! Exception policies (docs/exception-policies.md) on real captures made by
//! scripts/captures/make-exception-captures.sh (tests/fixtures/captures/exceptions/README.md):
//! swaks against Postfix's smtp-sink or a scripted server, tcpdump on the client's veth.
//!
//! With the recipient allow list (examples/smtp/recipients-strict.yaml, inline replay):
//! 1. `midstream.pcap` (no handshake): `stream_midstream` drops the flow from its first packet
//!    (`stream midstream`); monitor mode and `ignore` drop nothing; `--midstream` keeps the
//!    target quiet; `stream_exception_policy: reject` also answers with a RST.
//! 2. `many-rcpts.pcap` (1,101 recipients, the disallowed one last): the recipient list is
//!    truncated at 1,024 and `detect_limit` drops the flow (`detect limit`). The domain allow
//!    list (recipients-domains.yaml) is used there: recipients-strict.yaml already drops at
//!    `r1@example.com`, which this test also shows.
//! 3. `bad-reply.pcap` (a server reply line `hello`): `app_layer_error` drops the flow
//!    (`applayer error`) before the recipient is seen.
//! 4. `forged-rst.pcap` (a client RST 1,000 bytes past the next expected sequence number):
//!    `stream_invalid` drops the flow at the RST (`stream error`); with `stream_invalid: ignore`
//!    the engine is not blinded by the RST and the recipient rule drops the flow at RCPT TO.
//! 5. `sekisho check` locates unknown exception-policy targets and values.
//! 6. The other values on `midstream.pcap`: `drop-packet` drops every packet (one record),
//!    `pass-flow` / `bypass` pass the rest of the flow uninspected from the first packet,
//!    `pass-packet` passes each packet and meets every one.
//! 7. `unknown-reply.pcap` (the server answers one RCPT TO with RFC 7504's 556, a valid code
//!    outside Suricata's table): an `INVALID_REPLY` anomaly, no `app_layer_error`; the parser
//!    reads on and the recipient rule drops the flow at the disallowed RCPT TO.
//! 8. `paws-ts.pcap` (a forged client segment, far out of the window, with a TSval 2^30
//!    ahead): the client's later genuine segments fail PAWS; `stream_invalid` drops the flow
//!    at the first of them (`stream error`), before the RCPT TO; monitor mode drops nothing.
//! 9. A drop rule whose pcre backtracks catastrophically (smtp/swaks-plain.pcap): PCRE2's
//!    match limit is hit, `detect_limit` drops the flow (`detect limit`); monitor mode records
//!    it and drops nothing.
//!
//! Packet numbers come from the captures themselves (parsed here), never from sekisho's
//! output. A missing fixture fails when `CI` is set (sekisho-testutil).

#[path = "support/smtp.rs"]
mod support;

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use support::{replay, root, Run};

const STRICT: &str = "examples/smtp/recipients-strict.yaml";
const DOMAINS: &str = "examples/smtp/recipients-domains.yaml";

/// A capture under tests/fixtures/captures/exceptions/, or `None` (SKIP, or a failure in CI).
fn capture(name: &str) -> Option<PathBuf> {
    sekisho_testutil::require_fixture(format!("tests/fixtures/captures/exceptions/{name}"))
}

/// One IPv4/TCP packet of a capture.
#[derive(Debug, Clone)]
struct Pkt {
    /// 1-based packet number (EVE `pcap_cnt`).
    num: u64,
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: Vec<u8>,
}

const RST: u8 = 0x04;
const SYN: u8 = 0x02;

/// The IPv4/TCP packets of a classic little-endian pcap (what tcpdump and sekisho write),
/// Ethernet or raw-IP link type.
fn packets(path: &Path) -> Vec<Pkt> {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[0..4], &[0xd4, 0xc3, 0xb2, 0xa1], "{}", path.display());
    let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
    let l2 = match u32_at(20) {
        1 => 14,
        101 | 228 => 0,
        other => panic!("link type {other}"),
    };
    let be16 = |s: &[u8]| u16::from_be_bytes([s[0], s[1]]);
    let be32 = |s: &[u8]| u32::from_be_bytes([s[0], s[1], s[2], s[3]]);
    let mut out = Vec::new();
    let (mut o, mut num) = (24usize, 0u64);
    while o + 16 <= b.len() {
        let incl = u32_at(o + 8) as usize;
        let frame = &b[o + 16..o + 16 + incl];
        o += 16 + incl;
        num += 1;
        let ip = &frame[l2..];
        if ip[0] >> 4 != 4 || ip[9] != 6 {
            continue;
        }
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let tcp = &ip[ihl..usize::from(be16(&ip[2..]))];
        let doff = usize::from(tcp[12] >> 4) * 4;
        out.push(Pkt {
            num,
            src: ip[12..16].try_into().unwrap(),
            dst: ip[16..20].try_into().unwrap(),
            sport: be16(tcp),
            dport: be16(&tcp[2..]),
            seq: be32(&tcp[4..]),
            ack: be32(&tcp[8..]),
            flags: tcp[13],
            payload: tcp[doff..].to_vec(),
        });
    }
    out
}

/// The first packet whose payload contains `needle`.
fn containing<'a>(pkts: &'a [Pkt], needle: &[u8]) -> &'a Pkt {
    pkts.iter()
        .find(|p| p.payload.windows(needle.len()).any(|w| w == needle))
        .unwrap_or_else(|| panic!("no packet contains {:?}", String::from_utf8_lossy(needle)))
}

/// Number of packets from `from` to the end (each capture holds one flow).
fn from_on(pkts: &[Pkt], from: u64) -> u64 {
    pkts.iter().filter(|p| p.num >= from).count() as u64
}

/// `sekisho replay --explain --policy POLICY EXTRA... PCAP` (inline unless EXTRA says
/// otherwise); the run must succeed.
fn replay_inline(pcap: &Path, policy: &str, extra: &[&str]) -> Run {
    let mut args = vec!["--explain", "--policy", policy];
    args.extend_from_slice(extra);
    let run = replay(pcap, &args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run
}

/// A counter of the (last) `stats` record by its dotted path; absent counts as a failure.
fn counter(run: &Run, path: &str) -> u64 {
    let stats = run.of("stats");
    let mut v = &stats.last().expect("a stats record")["stats"];
    for k in path.split('.') {
        v = &v[k];
    }
    v.as_u64()
        .unwrap_or_else(|| panic!("no counter {path} in the stats record"))
}

/// Every `<prefix>.<action>` counter of the exception policies, as (path, value), non-zero
/// ones only.
fn nonzero_exception_counters(run: &Run) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for prefix in [
        "tcp.midstream_exception_policy",
        "app_layer.error.exception_policy",
        "flow.memcap_exception_policy",
        "tcp.invalid_exception_policy",
        "detect.limit_exception_policy",
    ] {
        for action in [
            "drop_flow",
            "drop_packet",
            "pass_flow",
            "pass_packet",
            "bypass",
            "reject",
        ] {
            let path = format!("{prefix}.{action}");
            let n = counter(run, &path);
            if n != 0 {
                out.push((path, n));
            }
        }
    }
    out
}

/// (pcap_cnt, direction, reason) of every drop record.
fn drop_records(run: &Run) -> Vec<(u64, String, String)> {
    run.of("drop")
        .iter()
        .map(|d| {
            (
                d["pcap_cnt"].as_u64().unwrap(),
                d["direction"].as_str().unwrap().to_string(),
                d["drop"]["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The single flow record.
fn flow(run: &Run) -> Value {
    let flows = run.of("flow");
    assert_eq!(flows.len(), 1, "one flow record: {flows:?}");
    flows[0]["flow"].clone()
}

/// A policy file in `dir`: the recipient allow list of recipients-strict.yaml (its rules file
/// by absolute path) with `extra` YAML added at the top level.
fn policy_with(dir: &Path, name: &str, extra: &str) -> String {
    let strict = std::fs::read_to_string(root().join(STRICT)).unwrap();
    let rules = root().join("examples/smtp/recipients.rules");
    let rules = rules.canonicalize().unwrap();
    assert!(
        strict.contains("rules: recipients.rules}"),
        "recipients-strict.yaml changed shape: {strict}"
    );
    let text = strict.replace(
        "rules: recipients.rules}",
        &format!("rules: {}}}", rules.display()),
    ) + extra;
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

// ---- 1. stream_midstream -------------------------------------------------------------------

#[test]
fn midstream_capture_really_lacks_the_handshake() {
    let Some(pcap) = capture("midstream.pcap") else {
        return;
    };
    let pkts = packets(&pcap);
    assert!(pkts.iter().all(|p| p.flags & SYN == 0));
    // It starts with the server's banner and still holds the disallowed recipient.
    assert!(pkts[0].payload.starts_with(b"220 "), "{:?}", pkts[0]);
    assert_eq!(pkts[0].sport, 25);
    containing(&pkts, b"RCPT TO:<b@yahoo.example>\r\n");
}

#[test]
fn midstream_flow_is_dropped_from_its_first_packet_by_default() {
    let Some(pcap) = capture("midstream.pcap") else {
        return;
    };
    let pkts = packets(&pcap);
    let run = replay_inline(&pcap, STRICT, &[]);
    let first = &pkts[0];
    assert_eq!(
        drop_records(&run),
        vec![(first.num, "to_client".into(), "stream midstream".into())],
        "one drop record, on the first packet (the banner; the flow's first packet sets its \
         direction)"
    );
    let f = flow(&run);
    assert_eq!(f["action"], "drop");
    assert_eq!(
        f["exception_policy"],
        json!([{"target": "stream_midstream", "policy": "drop_flow"}])
    );
    assert_eq!(
        nonzero_exception_counters(&run),
        vec![("tcp.midstream_exception_policy.drop_flow".to_string(), 1)]
    );
    // Every packet of the flow is dropped, the recipient rule never gets to look.
    assert_eq!(run.drops(), pkts.len() as u64);
    assert_eq!(run.alerts(), vec![]);
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with(&format!("pkt {} flow ", first.num))
                && l.ends_with(
                    ": exception policy stream_midstream: drop-flow (TCP flow without its \
                 handshake and mid-stream pick-up is off)"
                )),
        "{}",
        run.stdout
    );
}

#[test]
fn midstream_monitor_mode_and_ignore_drop_nothing() {
    let Some(pcap) = capture("midstream.pcap") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    // AWS Network Firewall's key: `continue` is `ignore`.
    let nfw = policy_with(
        tmp.path(),
        "continue.yaml",
        "stream_exception_policy: continue\n",
    );
    for (policy, extra) in [
        (STRICT, &["--mode", "monitor"][..]),
        (STRICT, &["--set", "stream.midstream-policy=ignore"][..]),
        (nfw.as_str(), &[][..]),
    ] {
        let run = replay_inline(&pcap, policy, extra);
        assert_eq!(run.drops(), 0, "{extra:?}");
        assert!(run.of("drop").is_empty(), "{extra:?}: {:?}", run.of("drop"));
        // `ignore` (auto in monitor mode) is recorded on the flow and counted nowhere.
        let f = flow(&run);
        assert_eq!(
            f["exception_policy"],
            json!([{"target": "stream_midstream", "policy": "ignore"}]),
            "{extra:?}"
        );
        assert_ne!(f["action"], "drop", "{extra:?}");
        assert_eq!(nonzero_exception_counters(&run), vec![], "{extra:?}");
    }
}

#[test]
fn midstream_pickup_keeps_the_target_quiet() {
    let Some(pcap) = capture("midstream.pcap") else {
        return;
    };
    let run = replay_inline(&pcap, STRICT, &["--midstream"]);
    assert!(
        drop_records(&run)
            .iter()
            .all(|(_, _, reason)| reason != "stream midstream"),
        "{:?}",
        drop_records(&run)
    );
    assert!(flow(&run).get("exception_policy").is_none());
    assert_eq!(nonzero_exception_counters(&run), vec![]);
    assert!(!run.stdout.contains("exception policy"), "{}", run.stdout);
}

#[test]
fn midstream_pickup_lets_the_recipient_rule_drop_at_rcpt() {
    let Some(pcap) = capture("midstream.pcap") else {
        return;
    };
    let pkts = packets(&pcap);
    let rcpt = containing(&pkts, b"RCPT TO:<b@yahoo.example>").num;
    let run = replay_inline(&pcap, STRICT, &["--midstream"]);
    let drops = drop_records(&run);
    assert_eq!(
        drops.first(),
        Some(&(rcpt, "to_server".to_string(), "rules".to_string())),
        "{drops:?}"
    );
    assert_eq!(run.alerts(), vec![(2000001, rcpt)]);
    assert_eq!(run.drops(), from_on(&pkts, rcpt));
    assert_eq!(flow(&run)["action"], "drop");
}

#[test]
fn midstream_reject_resets_the_sender_of_the_first_packet() {
    let Some(pcap) = capture("midstream.pcap") else {
        return;
    };
    let pkts = packets(&pcap);
    let tmp = tempfile::tempdir().unwrap();
    let policy = policy_with(
        tmp.path(),
        "reject.yaml",
        "stream_exception_policy: reject\n",
    );
    let out = tmp.path().join("out");
    let cmd = assert_cmd::Command::cargo_bin("sekisho")
        .unwrap()
        .current_dir(root())
        .args(["replay", "--quiet", "--out"])
        .arg(&out)
        .args(["--policy", &policy])
        .arg(&pcap)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&cmd.stderr);
    assert_eq!(cmd.status.code(), Some(0), "{stderr}");
    let events: Vec<Value> = std::fs::read_to_string(out.join("eve.json"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let run = Run {
        code: 0,
        stdout: String::new(),
        stderr: stderr.into_owned(),
        events,
    };
    let first = &pkts[0];
    assert_eq!(
        drop_records(&run),
        vec![(first.num, "to_client".into(), "stream midstream".into())]
    );
    assert_eq!(
        flow(&run)["exception_policy"],
        json!([{"target": "stream_midstream", "policy": "reject"}])
    );
    assert_eq!(
        nonzero_exception_counters(&run),
        vec![("tcp.midstream_exception_policy.reject".to_string(), 1)]
    );
    assert_eq!(run.drops(), pkts.len() as u64);
    // One RST to the sender of the first packet (the server), from its receiver, seq = the
    // first packet's ACK number (RFC 9293 3.10.7.1).
    let sent = packets(&out.join("transmitted.pcap"));
    assert_eq!(sent.len(), 1, "{sent:?}");
    let rst = &sent[0];
    assert_eq!(rst.flags, RST);
    assert_eq!((rst.src, rst.sport), (first.dst, first.dport));
    assert_eq!((rst.dst, rst.dport), (first.src, first.sport));
    assert_eq!(rst.seq, first.ack);
    assert!(rst.payload.is_empty());
}

// ---- 2. detect_limit: a recipient list truncated at 1,024 -----------------------------------

/// The client's command lines, from its segments in capture order, each with the number of
/// the packet that completed it. Bytes already seen (a retransmission: many-rcpts.pcap has
/// one) are skipped; a gap fails the test.
fn client_lines(pkts: &[Pkt]) -> Vec<(u64, String)> {
    let mut buf = Vec::new();
    let mut lines = Vec::new();
    let mut next: Option<u32> = None;
    for p in pkts
        .iter()
        .filter(|p| p.dport == 25 && !p.payload.is_empty())
    {
        let seen = next.map_or(0, |n| n.wrapping_sub(p.seq) as usize);
        assert!(
            seen < 1 << 30,
            "client segment {} leaves a gap before it",
            p.num
        );
        if seen >= p.payload.len() {
            continue;
        }
        next = Some(p.seq.wrapping_add(p.payload.len() as u32));
        buf.extend_from_slice(&p.payload[seen..]);
        while let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
            let line: Vec<u8> = buf.drain(..i + 2).collect();
            lines.push((p.num, String::from_utf8_lossy(&line[..i]).into_owned()));
        }
    }
    lines
}

#[test]
fn many_rcpts_capture_holds_1101_recipients_the_disallowed_one_last() {
    let Some(pcap) = capture("many-rcpts.pcap") else {
        return;
    };
    let Some(expect) = capture("many-rcpts.tshark.json") else {
        return;
    };
    let lines = client_lines(&packets(&pcap));
    let rcpts: Vec<&str> = lines
        .iter()
        .filter_map(|(_, l)| l.strip_prefix("RCPT TO:"))
        .collect();
    let mut want: Vec<String> = (1..=1100).map(|i| format!("<r{i}@example.com>")).collect();
    want.push("<b@yahoo.example>".into());
    assert_eq!(rcpts, want);
    // tshark's reassembled client stream says the same.
    let env: Value = serde_json::from_str(&std::fs::read_to_string(expect).unwrap()).unwrap();
    assert_eq!(env[0][0]["rcpt_to"], json!(want));
    assert_eq!(env[0][0]["mail_from"], "<a@example.com>");
}

#[test]
fn truncated_recipient_list_drops_the_flow_by_detect_limit() {
    let Some(pcap) = capture("many-rcpts.pcap") else {
        return;
    };
    let pkts = packets(&pcap);
    let lines = client_lines(&pkts);
    let rcpt_lines: Vec<&(u64, String)> = lines
        .iter()
        .filter(|(_, l)| l.starts_with("RCPT TO:"))
        .collect();
    // The 1,025th recipient is the first one past MAX_RCPT_PER_TX: the packet completing
    // its line is where the list is truncated.
    let truncated_at = rcpt_lines[1024].0;
    let disallowed = rcpt_lines[1100];
    assert_eq!(disallowed.1, "RCPT TO:<b@yahoo.example>");
    assert!(disallowed.0 >= truncated_at);

    let run = replay_inline(&pcap, DOMAINS, &[]);
    assert_eq!(
        drop_records(&run),
        vec![(truncated_at, "to_server".into(), "detect limit".into())]
    );
    // The rule never matched: it never saw b@yahoo.example.
    assert_eq!(run.alerts(), vec![]);
    let f = flow(&run);
    assert_eq!(f["action"], "drop");
    assert_eq!(
        f["exception_policy"],
        json!([{"target": "detect_limit", "policy": "drop_flow"}])
    );
    assert_eq!(
        nonzero_exception_counters(&run),
        vec![("detect.limit_exception_policy.drop_flow".to_string(), 1)]
    );
    assert_eq!(counter(&run, "detect.limit_exception_policy.drop_flow"), 1);
    assert_eq!(run.drops(), from_on(&pkts, truncated_at));
    // A dropped flow logs no transaction still open at its end (as Suricata); in monitor
    // mode the transaction is logged, holding exactly the first 1,024 recipients.
    assert_eq!(run.of("smtp").len(), 0);
    let monitor = replay_inline(&pcap, DOMAINS, &["--mode", "monitor"]);
    let smtp = monitor.of("smtp");
    assert_eq!(smtp.len(), 1, "{smtp:?}");
    let want: Vec<String> = (1..=1024).map(|i| format!("<r{i}@example.com>")).collect();
    assert_eq!(smtp[0]["smtp"]["rcpt_to"], json!(want));
    assert!(run
        .stdout
        .lines()
        .any(|l| l.starts_with(&format!("pkt {truncated_at} flow "))
            && l.ends_with(
                "sid 2000011 drop: cannot see what it needs (a list it reads was truncated): \
             detect_limit exception policy"
            )));
}

#[test]
fn many_rcpts_under_the_address_list_drops_at_the_first_recipient() {
    // recipients-strict.yaml allows only alice@example.com and bob@example.org: the rule
    // itself drops at r1@example.com, long before any list is truncated.
    let Some(pcap) = capture("many-rcpts.pcap") else {
        return;
    };
    let pkts = packets(&pcap);
    let r1 = containing(&pkts, b"RCPT TO:<r1@example.com>\r\n").num;
    let run = replay_inline(&pcap, STRICT, &[]);
    assert_eq!(
        drop_records(&run)[0],
        (r1, "to_server".into(), "rules".into())
    );
    assert_eq!(run.alerts(), vec![(2000001, r1)]);
    assert_eq!(nonzero_exception_counters(&run), vec![]);
    assert!(flow(&run).get("exception_policy").is_none());
}

// ---- 3. app_layer_error ----------------------------------------------------------------------

#[test]
fn bad_reply_line_stops_the_parser_and_drops_the_flow() {
    let Some(pcap) = capture("bad-reply.pcap") else {
        return;
    };
    let Some(expect) = capture("bad-reply.tshark.json") else {
        return;
    };
    let pkts = packets(&pcap);
    // The server's answer to MAIL FROM starts with a line that is not a reply.
    let bad = containing(&pkts, b"hello\r\n250 2.1.0 Ok\r\n");
    assert_eq!(bad.sport, 25);
    assert!(bad.payload.starts_with(b"hello\r\n"));
    let rcpt = containing(&pkts, b"RCPT TO:<b@yahoo.example>\r\n").num;
    assert!(rcpt > bad.num);
    // tshark sees the recipient the parser never gets to.
    let env: Value = serde_json::from_str(&std::fs::read_to_string(expect).unwrap()).unwrap();
    assert_eq!(env[0][0]["rcpt_to"], json!(["<b@yahoo.example>"]));

    let run = replay_inline(&pcap, STRICT, &[]);
    // The policy meets the flow on the packet the parser stopped on (it carries data).
    assert_eq!(
        drop_records(&run),
        vec![(bad.num, "to_client".into(), "applayer error".into())]
    );
    let f = flow(&run);
    assert_eq!(f["action"], "drop");
    assert_eq!(
        f["exception_policy"],
        json!([{"target": "app_layer_error", "policy": "drop_flow"}])
    );
    assert_eq!(
        nonzero_exception_counters(&run),
        vec![("app_layer.error.exception_policy.drop_flow".to_string(), 1)]
    );
    // That packet and everything after it, the RCPT TO segment included, is dropped.
    assert_eq!(run.drops(), from_on(&pkts, bad.num));
    assert_eq!(run.alerts(), vec![]);
    assert!(run.stdout.lines().any(|l| {
        l
        .starts_with(&format!("pkt {} flow ", bad.num))
        && l.ends_with(
            ": exception policy app_layer_error: drop-flow (the flow's app-layer parser stopped)"
        )
    }));
    // The parser stopped before the recipient: its one transaction has none (logged in
    // monitor mode; inline the dropped flow logs no open transaction, as Suricata).
    assert_eq!(run.of("smtp").len(), 0);
    let monitor = replay_inline(&pcap, STRICT, &["--mode", "monitor"]);
    let smtp = monitor.of("smtp");
    assert_eq!(smtp.len(), 1, "{smtp:?}");
    assert_eq!(
        smtp[0]["smtp"],
        json!({"helo": "client.example", "mail_from": "<a@example.com>"})
    );
}

// ---- 4. stream_invalid -----------------------------------------------------------------------

/// The forged RST and the RCPT TO segment of forged-rst.pcap.
fn forged(pkts: &[Pkt]) -> (&Pkt, u64) {
    let mail = containing(pkts, b"MAIL FROM:<a@example.com>\r\n");
    let rsts: Vec<&Pkt> = pkts.iter().filter(|p| p.flags & RST != 0).collect();
    assert_eq!(rsts.len(), 1, "{rsts:?}");
    let rst = rsts[0];
    assert_eq!(rst.dport, 25, "the RST goes from the client to the server");
    // 1,000 past the next sequence number the server expects from the client.
    let next = mail.seq.wrapping_add(mail.payload.len() as u32);
    assert_eq!(rst.seq, next.wrapping_add(1000));
    let rcpt = containing(pkts, b"RCPT TO:<b@yahoo.example>\r\n");
    assert!(rst.num > mail.num && rst.num < rcpt.num);
    // The server did not reset: the RCPT segment carries exactly the next sequence number.
    assert_eq!(rcpt.seq, next);
    (rst, rcpt.num)
}

#[test]
fn forged_rst_drops_the_flow_by_stream_invalid_by_default() {
    let Some(pcap) = capture("forged-rst.pcap") else {
        return;
    };
    let pkts = packets(&pcap);
    let (rst, _) = forged(&pkts);
    let run = replay_inline(&pcap, STRICT, &[]);
    assert_eq!(
        drop_records(&run),
        vec![(rst.num, "to_server".into(), "stream error".into())]
    );
    let f = flow(&run);
    assert_eq!(f["action"], "drop");
    assert_eq!(
        f["exception_policy"],
        json!([{"target": "stream_invalid", "policy": "drop_flow"}])
    );
    assert_eq!(
        nonzero_exception_counters(&run),
        vec![("tcp.invalid_exception_policy.drop_flow".to_string(), 1)]
    );
    assert_eq!(run.drops(), from_on(&pkts, rst.num));
    assert!(run.stdout.lines().any(|l| {
        l
        .starts_with(&format!("pkt {} flow ", rst.num))
        && l.ends_with(
            ": exception policy stream_invalid: drop-flow (a segment was not valid for the stream)"
        )
    }));
}

#[test]
fn forged_rst_with_stream_invalid_ignore_does_not_blind_the_engine() {
    let Some(pcap) = capture("forged-rst.pcap") else {
        return;
    };
    let pkts = packets(&pcap);
    let (_, rcpt) = forged(&pkts);
    let tmp = tempfile::tempdir().unwrap();
    let policy = policy_with(
        tmp.path(),
        "invalid-ignore.yaml",
        "exception_policy:\n  stream_invalid: ignore\n",
    );
    let run = replay_inline(&pcap, &policy, &[]);
    let drops = drop_records(&run);
    assert_eq!(
        drops[0],
        (rcpt, "to_server".into(), "rules".into()),
        "{drops:?}"
    );
    assert_eq!(run.alerts(), vec![(2000001, rcpt)]);
    assert_eq!(run.drops(), from_on(&pkts, rcpt));
    let f = flow(&run);
    assert_eq!(f["action"], "drop");
    assert_eq!(
        f["exception_policy"],
        json!([{"target": "stream_invalid", "policy": "ignore"}])
    );
    assert_eq!(nonzero_exception_counters(&run), vec![]);
    // The rule saw the recipient: its alert carries the transaction (the dropped flow logs
    // no open transaction at its end, as Suricata).
    let alerts = run.of("alert");
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["smtp"]["rcpt_to"], json!(["<b@yahoo.example>"]));
    assert_eq!(run.of("smtp").len(), 0);
}

// ---- 6. the other values: drop-packet, pass-flow, pass-packet, bypass -------------------------

/// midstream.pcap inline with `exception_policy: {stream_midstream: VALUE}`.
fn midstream_with(value: &str) -> Option<(Vec<Pkt>, Run)> {
    let pcap = capture("midstream.pcap")?;
    let pkts = packets(&pcap);
    let tmp = tempfile::tempdir().unwrap();
    let policy = policy_with(
        tmp.path(),
        "value.yaml",
        &format!("exception_policy:\n  stream_midstream: {value}\n"),
    );
    Some((pkts, replay_inline(&pcap, &policy, &[])))
}

#[test]
fn midstream_drop_packet_drops_every_packet_and_logs_the_first() {
    let Some((pkts, run)) = midstream_with("drop-packet") else {
        return;
    };
    // Each packet meets the policy again (the flow is never picked up) and is dropped.
    assert_eq!(run.drops(), pkts.len() as u64);
    assert_eq!(
        nonzero_exception_counters(&run),
        vec![(
            "tcp.midstream_exception_policy.drop_packet".to_string(),
            pkts.len() as u64
        )]
    );
    // One drop record: the first packet it fired on in the flow.
    assert_eq!(
        drop_records(&run),
        vec![(pkts[0].num, "to_client".into(), "stream midstream".into())]
    );
    let f = flow(&run);
    assert_eq!(
        f["exception_policy"],
        json!([{"target": "stream_midstream", "policy": "drop_packet"}])
    );
    // Not a flow drop: the flow itself was never marked dropped.
    assert_ne!(f["action"], "drop");
    assert_eq!(run.alerts(), vec![]);
}

#[test]
fn midstream_pass_flow_and_bypass_pass_the_rest_of_the_flow_uninspected() {
    for (value, counted) in [("pass-flow", "pass_flow"), ("bypass", "bypass")] {
        let Some((pkts, run)) = midstream_with(value) else {
            return;
        };
        // Decided once, at the first packet: the rest is never inspected, the disallowed
        // recipient included (what the operator asked for).
        assert_eq!(run.drops(), 0, "{value}");
        assert!(run.of("drop").is_empty(), "{value}");
        assert_eq!(run.alerts(), vec![], "{value}");
        assert_eq!(
            nonzero_exception_counters(&run),
            vec![(format!("tcp.midstream_exception_policy.{counted}"), 1)],
            "{value}"
        );
        let f = flow(&run);
        assert_eq!(
            f["exception_policy"],
            json!([{"target": "stream_midstream", "policy": counted}]),
            "{value}"
        );
        assert_ne!(f["action"], "drop", "{value}");
        assert!(
            run.stdout
                .lines()
                .any(|l| l.starts_with(&format!("pkt {} flow ", pkts[0].num))
                    && l.ends_with(&format!(
                        ": exception policy stream_midstream: {value} (TCP flow without its \
                     handshake and mid-stream pick-up is off)"
                    ))),
            "{value}: {}",
            run.stdout
        );
    }
}

#[test]
fn midstream_pass_packet_passes_each_packet_and_meets_every_one() {
    let Some((pkts, run)) = midstream_with("pass-packet") else {
        return;
    };
    assert_eq!(run.drops(), 0);
    assert!(run.of("drop").is_empty());
    assert_eq!(run.alerts(), vec![]);
    // Unlike pass-flow, every packet meets the policy (and is counted).
    assert_eq!(
        nonzero_exception_counters(&run),
        vec![(
            "tcp.midstream_exception_policy.pass_packet".to_string(),
            pkts.len() as u64
        )]
    );
    assert_eq!(
        flow(&run)["exception_policy"],
        json!([{"target": "stream_midstream", "policy": "pass_packet"}])
    );
}

// ---- 6. an unknown but well-formed reply code is an anomaly, not a parser error -----------

#[test]
fn unknown_reply_code_is_an_anomaly_and_the_recipient_rule_still_drops() {
    let Some(pcap) = capture("unknown-reply.pcap") else {
        return;
    };
    let Some(expect) = capture("unknown-reply.tshark.json") else {
        return;
    };
    let pkts = packets(&pcap);
    // The server answers bob's RCPT TO with RFC 7504's 556 (outside Suricata's table);
    // swaks goes on with the next recipient, which the allow list does not hold.
    let bob = containing(&pkts, b"RCPT TO:<bob@example.org>\r\n").num;
    let reply = containing(&pkts, b"556 5.1.10 ");
    assert_eq!(reply.sport, 25);
    assert!(reply.payload.starts_with(b"556 5.1.10 "));
    let rcpt = containing(&pkts, b"RCPT TO:<b@yahoo.example>\r\n").num;
    assert!(bob < reply.num && reply.num < rcpt);
    let env: Value = serde_json::from_str(&std::fs::read_to_string(expect).unwrap()).unwrap();
    assert_eq!(
        env[0][0]["rcpt_to"],
        json!(["<bob@example.org>", "<b@yahoo.example>"])
    );

    let run = replay_inline(&pcap, STRICT, &["--anomalies"]);
    // No app_layer_error: the parser read on past the 556, paired it with bob's RCPT TO
    // and saw the next recipient, which the rule drops.
    assert_eq!(nonzero_exception_counters(&run), vec![]);
    assert!(flow(&run).get("exception_policy").is_none());
    let drops = drop_records(&run);
    assert_eq!(
        drops[0],
        (rcpt, "to_server".into(), "rules".into()),
        "{drops:?}"
    );
    assert!(
        drops
            .iter()
            .all(|(_, _, r)| r == "rules" || r == "flow drop"),
        "{drops:?}"
    );
    assert_eq!(run.alerts(), vec![(2000001, rcpt)]);
    assert_eq!(run.drops(), from_on(&pkts, rcpt));
    assert_eq!(flow(&run)["action"], "drop");
    // The anomaly record: Suricata's INVALID_REPLY, on the 556's transaction.
    let anomalies: Vec<(&str, &str)> = run
        .of("anomaly")
        .iter()
        .map(|a| {
            (
                a["anomaly"]["app_proto"].as_str().unwrap_or(""),
                a["anomaly"]["event"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(anomalies, vec![("smtp", "INVALID_REPLY")]);
    // The parser read on past the 556: the rule's alert carries both recipients (the
    // dropped flow logs no open transaction at its end, as Suricata).
    let alerts = run.of("alert");
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(
        alerts[0]["smtp"]["rcpt_to"],
        json!(["<bob@example.org>", "<b@yahoo.example>"])
    );
    assert_eq!(run.of("smtp").len(), 0);
}

// ---- 7. stream_invalid: a forged bogus high TCP timestamp (PAWS) -----------------------------

/// The forged segment of paws-ts.pcap and the client's first genuine segment after it.
fn forged_ts(pkts: &[Pkt]) -> (&Pkt, &Pkt) {
    let mail = containing(pkts, b"MAIL FROM:<a@example.com>\r\n");
    // A pure ACK from the client, 100,000 bytes below the MAIL FROM's sequence number.
    let forged = pkts
        .iter()
        .find(|p| p.dport == 25 && p.seq == mail.seq.wrapping_sub(100_000))
        .expect("the forged segment");
    assert!(forged.payload.is_empty() && forged.num > mail.num);
    let next = pkts
        .iter()
        .find(|p| p.dport == 25 && p.num > forged.num)
        .expect("a client segment after the forged one");
    let rcpt = containing(pkts, b"RCPT TO:<b@yahoo.example>\r\n");
    assert!(next.num <= rcpt.num);
    // The server ignored it (it lies far outside its window): the RCPT TO carries exactly
    // the next sequence number, the session went on.
    assert_eq!(rcpt.seq, mail.seq.wrapping_add(mail.payload.len() as u32));
    (forged, next)
}

/// TSval of a packet's TCP timestamps option, read from the capture itself.
fn tsval(path: &Path, num: u64) -> u32 {
    let out = std::process::Command::new("tshark")
        .arg("-r")
        .arg(path)
        .args(["-Y", &format!("frame.number == {num}")])
        .args(["-T", "fields", "-e", "tcp.options.timestamp.tsval"])
        .output();
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("no TSval in frame {num}")),
        _ => {
            let _: Option<()> = sekisho_testutil::missing("tshark", Path::new("tshark"));
            0
        }
    }
}

#[test]
fn bogus_high_timestamp_makes_later_segments_fail_paws_and_drops_the_flow() {
    let Some(pcap) = capture("paws-ts.pcap") else {
        return;
    };
    let pkts = packets(&pcap);
    let (forged, next) = forged_ts(&pkts);
    let (bogus, genuine) = (tsval(&pcap, forged.num), tsval(&pcap, next.num));
    if bogus != 0 || genuine != 0 {
        // 2^30 ahead of the client's clock: every later genuine TSval is "older".
        assert!(bogus.wrapping_sub(genuine) > 1 << 29, "{bogus} {genuine}");
    }

    let run = replay_inline(&pcap, STRICT, &["--anomalies"]);
    // The forged segment is taken (it fails nothing); the client's next genuine segment
    // fails PAWS against it and is not passed silently: stream_invalid drops the flow.
    assert_eq!(
        drop_records(&run),
        vec![(next.num, "to_server".into(), "stream error".into())]
    );
    let f = flow(&run);
    assert_eq!(f["action"], "drop");
    assert_eq!(
        f["exception_policy"],
        json!([{"target": "stream_invalid", "policy": "drop_flow"}])
    );
    assert_eq!(
        nonzero_exception_counters(&run),
        vec![("tcp.invalid_exception_policy.drop_flow".to_string(), 1)]
    );
    assert!(counter(&run, "stream.pkt_invalid_timestamp") >= 1);
    assert_eq!(run.drops(), from_on(&pkts, next.num));
    assert!(run.stdout.lines().any(|l| {
        l.starts_with(&format!("pkt {} flow ", next.num))
            && l.ends_with(
                ": exception policy stream_invalid: drop-flow (a segment was not valid for \
                 the stream)",
            )
    }));
    // The stream anomaly names why, on that packet.
    let why: Vec<(u64, &str)> = run
        .of("anomaly")
        .iter()
        .filter(|a| a["anomaly"]["type"] == "stream")
        .map(|a| {
            (
                a["pcap_cnt"].as_u64().unwrap_or(0),
                a["anomaly"]["event"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(why, vec![(next.num, "stream.pkt_invalid_timestamp")]);
    // The recipient the rule would have dropped is never passed: it is in the dropped part.
    let rcpt = containing(&pkts, b"RCPT TO:<b@yahoo.example>\r\n").num;
    assert!(rcpt >= next.num);
}

#[test]
fn bogus_high_timestamp_in_monitor_mode_is_recorded_and_drops_nothing() {
    let Some(pcap) = capture("paws-ts.pcap") else {
        return;
    };
    let pkts = packets(&pcap);
    let (_, next) = forged_ts(&pkts);
    let run = replay_inline(&pcap, STRICT, &["--mode", "monitor"]);
    assert!(run.of("drop").is_empty(), "{:?}", run.of("drop"));
    assert_eq!(run.drops(), 0);
    assert_eq!(
        flow(&run)["exception_policy"],
        json!([{"target": "stream_invalid", "policy": "ignore"}])
    );
    assert!(counter(&run, "stream.pkt_invalid_timestamp") >= 1);
    assert!(run
        .stdout
        .lines()
        .any(|l| l.starts_with(&format!("pkt {} flow ", next.num))
            && l.contains("exception policy stream_invalid")));
}

// ---- 8. detect_limit: a PCRE match limit on a drop rule -------------------------------------

/// A policy in `dir` with one drop rule whose pcre backtracks catastrophically on the
/// client's message (`(?:\w+\s?)+` over "exception policy fixture" has 2^21 ways to split
/// the run; no `!` or `?` follows it, and a class is no required literal PCRE2 could look for
/// first), so PCRE2 hits its match limit (Suricata's default `pcre.match-limit`, 3,500) and
/// gives up: not a verdict on the data.
fn backtracking_policy(dir: &Path) -> String {
    let rules = dir.join("backtrack.rules");
    std::fs::write(
        &rules,
        "drop tcp $HOME_NET any -> any 25 (msg:\"catastrophic backtracking\"; \
         flow:established,to_server; content:\"fixture\"; pcre:\"/(?:\\w+\\s?)+[!?]/\"; \
         sid:3000001; rev:1;)\n",
    )
    .unwrap();
    let path = dir.join("backtrack.yaml");
    std::fs::write(
        &path,
        format!(
            "engine_profile: suricata-8\nrule_order: strict\nvariables:\n  HOME_NET: \
             [10.0.0.0/24]\nrule_groups:\n  - {{name: backtrack, rules: {}}}\n",
            rules.display()
        ),
    )
    .unwrap();
    path.to_str().unwrap().to_string()
}

/// swaks-plain.pcap from the SMTP captures (tests/fixtures/captures/smtp/README.md): swaks to
/// Postfix, one allowed recipient; its message carries `Subject: sekisho fixture`.
fn plain_capture() -> Option<PathBuf> {
    sekisho_testutil::require_fixture("tests/fixtures/captures/smtp/swaks-plain.pcap")
}

#[test]
fn pcre_match_limit_on_a_drop_rule_drops_the_flow_by_detect_limit() {
    let Some(pcap) = plain_capture() else {
        return;
    };
    let pkts = packets(&pcap);
    // The first client segment holding the rule's content: the message.
    let msg = containing(&pkts, b"Subject: sekisho fixture\r\n");
    assert_eq!(msg.dport, 25);
    let tmp = tempfile::tempdir().unwrap();
    let policy = backtracking_policy(tmp.path());
    let run = replay_inline(&pcap, &policy, &[]);
    assert_eq!(
        drop_records(&run),
        vec![(msg.num, "to_server".into(), "detect limit".into())]
    );
    // The rule did not match (PCRE2 gave up), so no alert; the policy dropped instead.
    assert_eq!(run.alerts(), vec![]);
    let f = flow(&run);
    assert_eq!(f["action"], "drop");
    assert_eq!(
        f["exception_policy"],
        json!([{"target": "detect_limit", "policy": "drop_flow"}])
    );
    assert_eq!(
        nonzero_exception_counters(&run),
        vec![("detect.limit_exception_policy.drop_flow".to_string(), 1)]
    );
    assert_eq!(run.drops(), from_on(&pkts, msg.num));
    assert!(run.stdout.lines().any(|l| {
        l.starts_with(&format!("pkt {} flow ", msg.num))
            && l.ends_with(
                "sid 3000001 drop: cannot see what it needs (an inspection limit was hit): \
                 detect_limit exception policy",
            )
    }));
}

#[test]
fn pcre_match_limit_in_monitor_mode_is_recorded_and_drops_nothing() {
    let Some(pcap) = plain_capture() else {
        return;
    };
    let pkts = packets(&pcap);
    let msg = containing(&pkts, b"Subject: sekisho fixture\r\n");
    let tmp = tempfile::tempdir().unwrap();
    let policy = backtracking_policy(tmp.path());
    let run = replay_inline(&pcap, &policy, &["--mode", "monitor"]);
    assert!(run.of("drop").is_empty(), "{:?}", run.of("drop"));
    assert_eq!(run.drops(), 0);
    assert_eq!(run.alerts(), vec![]);
    assert_eq!(
        flow(&run)["exception_policy"],
        json!([{"target": "detect_limit", "policy": "ignore"}])
    );
    assert_eq!(nonzero_exception_counters(&run), vec![]);
    assert!(run.stdout.lines().any(|l| {
        l.starts_with(&format!("pkt {} flow ", msg.num)) && l.contains("detect_limit")
    }));
}

/// Without the backtracking (the same rule with a pattern PCRE2 finishes: `\w+` once), the
/// rule simply does not match: no exception, nothing dropped. So the drop above is the
/// limit's doing, not the rule's.
#[test]
fn the_same_rule_without_backtracking_drops_nothing() {
    let Some(pcap) = plain_capture() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let policy = backtracking_policy(tmp.path());
    let rules = tmp.path().join("backtrack.rules");
    let text = std::fs::read_to_string(&rules).unwrap();
    std::fs::write(&rules, text.replace("(?:\\w+\\s?)+[!?]", "\\w+\\s[!?]")).unwrap();
    assert!(std::fs::read_to_string(&rules)
        .unwrap()
        .contains("\\w+\\s[!?]"));
    let run = replay_inline(&pcap, &policy, &[]);
    assert_eq!(run.drops(), 0);
    assert!(flow(&run).get("exception_policy").is_none());
    assert_eq!(nonzero_exception_counters(&run), vec![]);
}

// ---- 5. sekisho check ------------------------------------------------------------------------

/// `sekisho check FILE` in the repository root: (exit code, stdout, stderr).
fn check(file: &str) -> (i32, String, String) {
    let out = assert_cmd::Command::cargo_bin("sekisho")
        .unwrap()
        .current_dir(root())
        .args(["check", file])
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// A policy whose 4th line is `line`, under `exception_policy:`.
fn exception_policy_file(dir: &Path, line: &str) -> String {
    let rules = root()
        .join("examples/smtp/recipients.rules")
        .canonicalize()
        .unwrap();
    let path = dir.join("policy.yaml");
    std::fs::write(
        &path,
        format!(
            "engine_profile: suricata-8\nrule_order: strict\nexception_policy:\n{line}\n\
             variables:\n  HOME_NET: [10.0.0.0/24]\nrule_groups:\n  - {{name: recipients, rules: {}}}\n",
            rules.display()
        ),
    )
    .unwrap();
    path.to_str().unwrap().to_string()
}

const TARGETS: &str = "master, app_layer_error, stream_memcap, stream_midstream, \
                       stream_reassembly_memcap, flow_memcap, defrag_memcap, stream_invalid, \
                       detect_limit";

#[test]
fn check_locates_an_unknown_exception_policy_target() {
    let tmp = tempfile::tempdir().unwrap();
    let file = exception_policy_file(tmp.path(), "  stream_midstrem: drop-flow");
    let (code, stdout, stderr) = check(&file);
    assert_eq!(
        stderr,
        format!(
            "{file}:4:3: error: unknown exception policy target 'stream_midstrem'
  |
4 |   stream_midstrem: drop-flow
  |   ^^^^^^^^^^^^^^^
  hint: did you mean 'stream_midstream'? expected one of: {TARGETS}
{file}: 1 error, 0 warnings
"
        )
    );
    assert_eq!(stdout, "");
    assert_eq!(code, 1);
}

#[test]
fn check_names_an_unknown_exception_policy_target_with_a_hint() {
    // What holds today of the above: the message, the line and the hint.
    let tmp = tempfile::tempdir().unwrap();
    let file = exception_policy_file(tmp.path(), "  stream_midstrem: drop-flow");
    let (code, stdout, stderr) = check(&file);
    let first = stderr.lines().next().unwrap_or("");
    assert!(first.starts_with(&format!("{file}:4:")), "{stderr}");
    assert!(
        first.ends_with(": error: unknown exception policy target 'stream_midstrem'"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "\n  hint: did you mean 'stream_midstream'? expected one of: {TARGETS}\n"
        )),
        "{stderr}"
    );
    assert!(stderr.ends_with(&format!("{file}: 1 error, 0 warnings\n")));
    assert_eq!(stdout, "");
    assert_eq!(code, 1);
}

#[test]
fn check_locates_an_unknown_exception_policy_value() {
    let tmp = tempfile::tempdir().unwrap();
    let file = exception_policy_file(tmp.path(), "  stream_midstream: drop-flows");
    let (code, stdout, stderr) = check(&file);
    assert_eq!(
        stderr,
        format!(
            "{file}:4:21: error: unknown exception policy 'drop-flows'
  |
4 |   stream_midstream: drop-flows
  |                     ^^^^^^^^^^
  hint: did you mean 'drop-flow'? expected one of: drop-flow, drop-packet, pass-flow, pass-packet, bypass, reject, ignore, auto
{file}: 1 error, 0 warnings
"
        )
    );
    assert_eq!(stdout, "");
    assert_eq!(code, 1);
}
