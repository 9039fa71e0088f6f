//! `--set app-layer.protocols.<name>.enabled=yes|no|detection-only` (Suricata's key), on the
//! real captures of tests/fixtures/captures/names (curl and wget against python3's
//! http.server; dig against dnsmasq):
//!
//! * `no`: the protocol is never detected: its flows carry no `app_proto` and no
//!   transaction records; other protocols are untouched.
//! * `detection-only`: flows carry the `app_proto`, but nothing is parsed: no transaction
//!   records and no `app_layer.tx` counts.
//! * A protocol name sekisho does not know, or a value other than yes/no/detection-only,
//!   is refused with the key and the accepted values.

use std::path::PathBuf;
use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;

fn capture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/captures/names")
        .join(name)
}

/// Every EVE record of `sekisho replay --mode monitor` over `name` with `sets`.
fn replay(name: &str, sets: &[&str]) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::cargo_bin("sekisho").unwrap();
    cmd.args(["replay", "-q", "--mode", "monitor"]);
    for s in sets {
        cmd.args(["--set", s]);
    }
    let out = cmd
        .arg("--out")
        .arg(dir.path())
        .arg(capture(name))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "replay failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(dir.path().join("eve.json"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn count(recs: &[Value], event_type: &str) -> usize {
    recs.iter()
        .filter(|r| r["event_type"] == event_type)
        .count()
}

fn flows_with_proto(recs: &[Value], proto: &str) -> usize {
    recs.iter()
        .filter(|r| r["event_type"] == "flow" && r["app_proto"] == proto)
        .count()
}

fn stat(recs: &[Value], path: &[&str]) -> u64 {
    let mut v = &recs
        .iter()
        .rev()
        .find(|r| r["event_type"] == "stats")
        .expect("a stats record")["stats"];
    for p in path {
        v = &v[*p];
    }
    v.as_u64()
        .unwrap_or_else(|| panic!("stats.{} missing", path.join(".")))
}

#[test]
fn http_off_detection_only_and_on() {
    let on = replay("http.pcap", &[]);
    let http_flows = flows_with_proto(&on, "http");
    assert!(http_flows > 0, "the capture holds HTTP flows");
    assert!(count(&on, "http") >= http_flows);
    assert_eq!(
        stat(&on, &["app_layer", "tx", "http"]),
        count(&on, "http") as u64
    );

    let off = replay("http.pcap", &["app-layer.protocols.http.enabled=no"]);
    assert_eq!(flows_with_proto(&off, "http"), 0);
    assert_eq!(count(&off, "http"), 0);
    assert_eq!(
        count(&off, "flow"),
        count(&on, "flow"),
        "flows are still tracked"
    );

    let det = replay(
        "http.pcap",
        &["app-layer.protocols.http.enabled=detection-only"],
    );
    assert_eq!(flows_with_proto(&det, "http"), http_flows);
    assert_eq!(count(&det, "http"), 0);
    assert_eq!(stat(&det, &["app_layer", "tx", "http"]), 0);
}

#[test]
fn dns_off_leaves_its_port_to_no_one_and_other_protocols_alone() {
    let on = replay("dns.pcap", &[]);
    let dns_txs = count(&on, "dns");
    assert!(dns_txs > 0, "the capture holds DNS");
    // Switching HTTP off changes nothing for DNS.
    let other = replay("dns.pcap", &["app-layer.protocols.http.enabled=no"]);
    assert_eq!(count(&other, "dns"), dns_txs);
    let off = replay("dns.pcap", &["app-layer.protocols.dns.enabled=false"]);
    assert_eq!(count(&off, "dns"), 0);
    assert_eq!(flows_with_proto(&off, "dns"), 0);
    assert_eq!(stat(&off, &["app_layer", "flow", "dns"]), 0);
}

#[test]
fn unknown_protocol_or_value_is_refused() {
    for (set, want) in [
        (
            "app-layer.protocols.ftp.enabled=no",
            "unknown protocol `ftp`",
        ),
        (
            "app-layer.protocols.http.enabled=maybe",
            "yes, no or detection-only",
        ),
    ] {
        let out = Command::cargo_bin("sekisho")
            .unwrap()
            .args(["replay", "-q", "--set", set, "--out"])
            .arg(tempfile::tempdir().unwrap().path())
            .arg(capture("http.pcap"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{set} was accepted");
        assert!(err.contains(want), "{set}: {err}");
        assert!(
            err.contains("app-layer.protocols"),
            "{set}: names the key: {err}"
        );
    }
}

/// `sekisho replay --mode inline` over `http.pcap` with `rules` and `args`: (exit success,
/// stderr, EVE records).
fn replay_rules(rules: &str, args: &[&str]) -> (bool, String, Vec<Value>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("switch.rules");
    std::fs::write(&path, rules).unwrap();
    let out_dir = dir.path().join("out");
    let out = Command::cargo_bin("sekisho")
        .unwrap()
        .args(["replay", "--mode", "inline", "--rules"])
        .arg(&path)
        .args(args)
        .arg("--out")
        .arg(&out_dir)
        .arg(capture("http.pcap"))
        .output()
        .unwrap();
    let recs = std::fs::read_to_string(out_dir.join("eve.json"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        recs,
    )
}

/// A rule that needs a protocol switched off (or a buffer of one only detected) could load and
/// then never match: a drop rule would silently stop dropping. Such rules are not loaded and
/// say why; a drop rule among them fails the load unless `--allow-unsupported`.
#[test]
fn rules_needing_a_switched_off_parser_are_refused_not_silently_dead() {
    let drop_host =
        "drop http any any -> any any (msg:\"host\"; http.host; content:\"www.sekisho.test\"; sid:1;)\n";
    // Parsed: the drop rule works on the real capture.
    let (ok, err, recs) = replay_rules(drop_host, &[]);
    assert!(ok, "{err}");
    assert!(
        recs.iter()
            .any(|r| r["event_type"] == "drop" || r["alert"]["action"] == "blocked"),
        "the rule drops with the parser on: {err}"
    );
    for (mode, want) in [
        (
            "detection-only",
            "http.host is filled by the http parser, which app-layer.protocols.http.enabled: detection-only turns off",
        ),
        (
            "no",
            "protocol http is disabled (app-layer.protocols.http.enabled: no)",
        ),
    ] {
        let set = format!("app-layer.protocols.http.enabled={mode}");
        let (ok, err, _) = replay_rules(drop_host, &["--set", &set]);
        assert!(!ok, "{mode}: a dead drop rule was accepted");
        assert!(err.contains("sid 1") && err.contains(want), "{mode}: {err}");
        assert!(err.contains("--allow-unsupported"), "{err}");
        // Downgraded on request: loads without it, and says so.
        let (ok, err, recs) = replay_rules(drop_host, &["--set", &set, "--allow-unsupported"]);
        assert!(ok, "{mode}: {err}");
        assert!(err.contains("left out"), "{err}");
        assert!(!recs.iter().any(|r| r["event_type"] == "alert"), "{mode}");
    }
    // A transaction field (not a buffer) counts for its own protocol: dns.rcode needs the DNS
    // parser, and switching TLS off does not touch it.
    let rcode = "drop dns any any -> any any (msg:\"rc\"; dns.rcode:3; sid:4;)\n";
    let (ok, err, _) = replay_rules(
        rcode,
        &["--set", "app-layer.protocols.dns.enabled=detection-only"],
    );
    assert!(!ok, "a dead dns.rcode drop rule was accepted");
    assert!(
        err.contains("sid 4") && err.contains("dns.rcode is filled by the dns parser"),
        "{err}"
    );
    let (ok, err, _) = replay_rules(rcode, &["--set", "app-layer.protocols.tls.enabled=no"]);
    assert!(ok, "{err}");
    // An alert rule on a switched-off protocol is a warning, and the rest of the rules load.
    let rules = "alert dns any any -> any any (msg:\"q\"; dns.query; content:\"a\"; sid:2;)\n\
                 alert tcp any any -> any any (msg:\"get\"; content:\"GET\"; sid:3;)\n";
    let (ok, err, recs) = replay_rules(rules, &["--set", "app-layer.protocols.dns.enabled=no"]);
    assert!(ok, "{err}");
    assert!(
        err.contains("sid 2") && err.contains("app-layer.protocols.dns.enabled: no"),
        "{err}"
    );
    assert!(recs
        .iter()
        .any(|r| r["event_type"] == "alert" && r["alert"]["signature_id"] == 3));
}

/// Firewall mode too: the recipient allow list's hooks need the SMTP parser. With it only
/// detected, the drop rule on `smtp.rcpt_to` would never fire, so the load fails naming it.
#[test]
fn firewall_hooks_of_an_unparsed_protocol_fail_the_load() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let run = |sets: &[&str]| {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::cargo_bin("sekisho").unwrap();
        cmd.args(["replay", "--mode", "inline", "--policy"])
            .arg(root.join("examples/smtp/recipients-firewall.yaml"));
        for s in sets {
            cmd.args(["--set", s]);
        }
        let out = cmd
            .arg("--out")
            .arg(dir.path())
            .arg(root.join("tests/fixtures/captures/smtp/postfix-two-rcpt.pcap"))
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, err) = run(&[]);
    assert!(ok, "{err}");
    let (ok, err) = run(&["app-layer.protocols.smtp.enabled=detection-only"]);
    assert!(!ok, "the firewall loaded without its SMTP parser: {err}");
    assert!(
        err.contains("sid 3001")
            && err.contains(
                "the smtp hooks need the smtp parser, which app-layer.protocols.smtp.enabled: detection-only turns off"
            ),
        "{err}"
    );
}
