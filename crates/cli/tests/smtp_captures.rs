//! SMTP envelopes in EVE agree with tshark on real captures (tests/fixtures/captures/smtp,
//! made by scripts/captures/make-smtp-captures.sh: Postfix, swaks and python3 smtplib against
//! smtp-sink and a STARTTLS-capable Postfix smtpd in network namespaces).
//!
//! For each `NAME.pcap`, `NAME.tshark.json` holds what tshark's SMTP dissector shows, grouped
//! into transactions by Suricata's rules: a list of sessions (one per TCP stream), each a list
//! of `{helo, mail_from, rcpt_to}`. `sekisho replay` must log one `smtp` record per
//! transaction with the same values, in `tx_id` order within each flow.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;

/// One SMTP transaction's envelope: HELO/EHLO argument, MAIL FROM and RCPT TO tokens.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Tx {
    helo: Option<String>,
    mail_from: Option<String>,
    rcpt_to: Vec<String>,
}

impl Tx {
    /// Reads the envelope from an object shaped like Suricata's `smtp` EVE object (also the
    /// shape of the expected files); absent keys mean "not seen".
    fn from_json(v: &Value) -> Tx {
        let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let rcpt_to = match v.get("rcpt_to") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|r| r.as_str().expect("rcpt_to entries are strings").to_string())
                .collect(),
            Some(other) => panic!("rcpt_to is not an array: {other}"),
        };
        Tx {
            helo: text("helo"),
            mail_from: text("mail_from"),
            rcpt_to,
        }
    }
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/captures/smtp")
}

fn expected(name: &str) -> Vec<Vec<Tx>> {
    let path = dir().join(format!("{name}.tshark.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: Value = serde_json::from_str(&text).unwrap();
    let mut sessions: Vec<Vec<Tx>> = v
        .as_array()
        .expect("a list of sessions")
        .iter()
        .map(|s| {
            s.as_array()
                .expect("a session is a list of transactions")
                .iter()
                .map(Tx::from_json)
                .collect()
        })
        .collect();
    sessions.sort();
    sessions
}

/// Flow identity of an EVE record: `flow_id` when present, else the 5-tuple.
fn flow_key(ev: &Value) -> String {
    match ev.get("flow_id") {
        Some(id) if !id.is_null() => id.to_string(),
        _ => format!(
            "{} {}:{} {}:{}",
            ev["proto"], ev["src_ip"], ev["src_port"], ev["dest_ip"], ev["dest_port"]
        ),
    }
}

/// Replays `pcap` and returns the `smtp` records' envelopes, one list per flow in `tx_id`
/// order, the flows sorted (the expected file lists sessions by tshark's stream number, which
/// need not match any order of the EVE file).
fn sekisho(pcap: &Path) -> Vec<Vec<Tx>> {
    let out_dir = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("sekisho")
        .unwrap()
        .args(["replay", "-q", "--out"])
        .arg(out_dir.path())
        .arg(pcap)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sekisho replay {}: {}",
        pcap.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(out_dir.path().join("eve.json")).unwrap();
    let mut flows: BTreeMap<String, Vec<(u64, Tx)>> = BTreeMap::new();
    for line in text.lines() {
        let ev: Value = serde_json::from_str(line).unwrap();
        if ev["event_type"] != "smtp" {
            continue;
        }
        let tx_id = ev["tx_id"]
            .as_u64()
            .unwrap_or_else(|| panic!("smtp record without a numeric tx_id: {line}"));
        let smtp = ev
            .get("smtp")
            .unwrap_or_else(|| panic!("smtp record without an smtp object: {line}"));
        flows
            .entry(flow_key(&ev))
            .or_default()
            .push((tx_id, Tx::from_json(smtp)));
    }
    let mut sessions: Vec<Vec<Tx>> = flows
        .into_values()
        .map(|mut txs| {
            txs.sort_by_key(|(id, _)| *id);
            let ids: Vec<u64> = txs.iter().map(|(id, _)| *id).collect();
            let mut dedup = ids.clone();
            dedup.dedup();
            assert_eq!(ids, dedup, "one smtp record per tx_id in a flow");
            txs.into_iter().map(|(_, tx)| tx).collect()
        })
        .collect();
    sessions.sort();
    sessions
}

fn check(name: &str) {
    let pcap = dir().join(format!("{name}.pcap"));
    assert_eq!(
        sekisho(&pcap),
        expected(name),
        "{name}: sekisho's smtp records (left) vs tshark (right)"
    );
}

#[test]
fn every_capture_has_expected_data_and_a_test() {
    // A capture added by the script without a test here (or the reverse) is a mistake.
    let mut pcaps: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".pcap").map(str::to_string)
        })
        .collect();
    pcaps.sort();
    for name in &pcaps {
        assert!(
            dir().join(format!("{name}.tshark.json")).is_file(),
            "{name}.tshark.json missing"
        );
    }
    let mut tested = TESTED.to_vec();
    tested.sort();
    assert_eq!(pcaps, tested);
}

/// The captures the tests below cover.
const TESTED: &[&str] = &[
    "postfix-pipelined",
    "postfix-two-rcpt",
    "swaks-pipeline",
    "swaks-plain",
    "swaks-plain-disallowed",
    "two-messages",
    "rset",
    "starttls",
    "retransmit-rcpt",
];

/// Postfix relaying via sendmail: MAIL FROM, RCPT TO and DATA in one TCP segment.
#[test]
fn postfix_pipelined() {
    check("postfix-pipelined");
}

/// Postfix, one message to two recipients (one allowed-looking, one not), pipelined.
#[test]
fn postfix_two_rcpt() {
    check("postfix-two-rcpt");
}

/// swaks --pipeline: MAIL FROM, two RCPT TO and DATA in one segment.
#[test]
fn swaks_pipeline() {
    check("swaks-pipeline");
}

/// swaks in lock-step, one command per segment.
#[test]
fn swaks_plain() {
    check("swaks-plain");
}

/// swaks in lock-step to a recipient a policy would not allow.
#[test]
fn swaks_plain_disallowed() {
    check("swaks-plain-disallowed");
}

/// swaks in lock-step; the segment carrying the disallowed RCPT was lost once and
/// retransmitted: the recipient is still logged once.
#[test]
fn retransmit_rcpt() {
    check("retransmit-rcpt");
}

/// Two messages in one session with RSET between them: two transactions.
#[test]
fn two_messages() {
    check("two-messages");
}

/// An envelope abandoned by RSET, then a delivered message: two transactions.
#[test]
fn rset() {
    check("rset");
}

/// EHLO then STARTTLS: one transaction with only the HELO name; the rest is TLS.
#[test]
fn starttls() {
    check("starttls");
}
