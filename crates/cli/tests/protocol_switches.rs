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
