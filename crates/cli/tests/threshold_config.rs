//! threshold.config in a policy (`threshold_config:`), on the real swaks capture of a mail to a
//! disallowed recipient (scripts/captures/make-smtp-captures.sh) with the recipient allow list
//! of examples/smtp/:
//!
//! - `suppress ... track by_src, ip ...` silences the rule's alert for that source while its
//!   drop still applies (the disallowed recipient never passes);
//! - `rate_filter ... new_action drop` turns an alert rule into a drop once its count is
//!   exceeded, with drop reason `threshold detection_filter`;
//! - a bad line is an error naming the threshold file, line and column, with a hint, and a
//!   line naming no rule of the policy is a warning.
//!
//! The suricata-verify `threshold/threshold-config-*` cases (run by verify_conformance.rs)
//! pin the semantics against Suricata's own expectations.

#[path = "support/smtp.rs"]
mod support;

use std::path::Path;

use support::{capture, replay, root};

/// Writes a strict-order policy with `extra_rules` first, then
/// examples/smtp/recipients.rules (as examples/smtp/recipients-strict.yaml has it), with
/// `threshold_config: thr.config` holding `thr` (when given), into `dir`.
fn policy(dir: &Path, thr: Option<&str>, extra_rules: &str) -> String {
    let rules = root().join("examples/smtp/recipients.rules");
    let text = extra_rules.to_string() + &std::fs::read_to_string(&rules).expect("rules");
    std::fs::write(dir.join("all.rules"), text).expect("write rules");
    let mut yaml = "engine_profile: suricata-8\nrule_order: strict\ndefault_actions: [aws:drop_established]\nvariables:\n  HOME_NET: [10.0.0.0/24]\nrule_groups:\n  - {name: recipients, rules: all.rules}\n".to_string();
    if let Some(t) = thr {
        std::fs::write(dir.join("thr.config"), t).expect("write threshold config");
        yaml.push_str("threshold_config: thr.config\n");
    }
    let p = dir.join("policy.yaml");
    std::fs::write(&p, yaml).expect("write policy");
    p.display().to_string()
}

#[test]
fn suppress_silences_the_alert_and_keeps_the_drop() {
    let dir = tempfile::tempdir().expect("tmp");
    let pcap = capture("swaks-plain-disallowed.pcap");
    let plain = replay(
        &pcap,
        &[
            "--mode",
            "inline",
            "--policy",
            &policy(dir.path(), None, ""),
        ],
    );
    assert_eq!(plain.code, 0, "{}", plain.stderr);
    let sids: Vec<u64> = plain.alerts().iter().map(|a| a.0).collect();
    assert_eq!(sids, [2000001], "{}", plain.stderr);
    let dropped = plain.drops();
    assert!(dropped > 0);

    let thr = "# the lab's clients are trusted: no alert, but still the drop\n\
               suppress gen_id 1, sig_id 2000001, track by_src, ip $HOME_NET\n";
    let quiet = replay(
        &pcap,
        &[
            "--mode",
            "inline",
            "--policy",
            &policy(dir.path(), Some(thr), ""),
        ],
    );
    assert_eq!(quiet.code, 0, "{}", quiet.stderr);
    assert!(quiet.alerts().is_empty(), "{:?}", quiet.alerts());
    assert_eq!(
        quiet.drops(),
        dropped,
        "the suppression changed what is dropped"
    );

    // Suppressing another source changes nothing.
    let other = "suppress gen_id 1, sig_id 2000001, track by_src, ip 192.0.2.0/24\n";
    let run = replay(
        &pcap,
        &[
            "--mode",
            "inline",
            "--policy",
            &policy(dir.path(), Some(other), ""),
        ],
    );
    assert_eq!(run.alerts().len(), 1);
}

#[test]
fn rate_filter_turns_an_alert_rule_into_a_drop_past_its_count() {
    let dir = tempfile::tempdir().expect("tmp");
    let pcap = capture("swaks-plain.pcap");
    // An alert on every packet the client sends once the flow is established; the rate
    // filter lets 3 through per source, then drops for an hour.
    let rule = "alert tcp $HOME_NET any -> any 25 (msg:\"client segment\"; flow:established,to_server; sid:9000001; rev:1;)\n";
    let thr = "rate_filter gen_id 1, sig_id 9000001, track by_src, count 3, seconds 60, new_action drop, timeout 3600\n";
    let plain = replay(
        &pcap,
        &[
            "--mode",
            "inline",
            "--policy",
            &policy(dir.path(), None, rule),
        ],
    );
    let n = plain.alerts().iter().filter(|a| a.0 == 9000001).count();
    assert!(n > 4, "the capture has too few client segments: {n}");
    assert_eq!(plain.drops(), 0);

    let run = replay(
        &pcap,
        &[
            "--mode",
            "inline",
            "--policy",
            &policy(dir.path(), Some(thr), rule),
        ],
    );
    let alerts: Vec<&serde_json::Value> = run
        .of("alert")
        .into_iter()
        .filter(|a| a["alert"]["signature_id"] == 9000001)
        .collect();
    let actions: Vec<&str> = alerts
        .iter()
        .map(|a| a["alert"]["action"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        &actions[..4],
        ["allowed", "allowed", "allowed", "blocked"],
        "{actions:?}"
    );
    let drops = run.of("drop");
    assert!(
        drops
            .iter()
            .any(|d| d["drop"]["reason"] == "threshold detection_filter"),
        "{drops:?}"
    );
}

#[test]
fn a_bad_line_is_an_error_with_its_location_and_an_unknown_sid_a_warning() {
    let dir = tempfile::tempdir().expect("tmp");
    let bad = "suppress gen_id 1, sig_id 2000001\nsupress gen_id 1, sig_id 2000002\n";
    let out = assert_cmd::Command::cargo_bin("sekisho")
        .expect("bin")
        .args(["check", &policy(dir.path(), Some(bad), "")])
        .output()
        .expect("run");
    let err =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("thr.config:2:1"), "{err}");
    assert!(err.contains("did you mean `suppress`"), "{err}");

    let unknown = "suppress gen_id 1, sig_id 4242\n";
    let out = assert_cmd::Command::cargo_bin("sekisho")
        .expect("bin")
        .args(["check", &policy(dir.path(), Some(unknown), "")])
        .output()
        .expect("run");
    let err =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("sig_id 4242: no such rule in the policy"),
        "{err}"
    );
}
