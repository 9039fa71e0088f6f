//! `--log-format nfw` on a real capture: every flow.log line is an AWS Network Firewall
//! envelope whose fields have the names and JSON types of the Athena netflow table
//! (docs: aws-log-tables.md §2), one netflow record per direction, and the per-direction
//! packets/bytes equal those of the EVE `flow` records of the same replay.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/captures")
        .join(name)
}

fn replay(out: &Path, extra: &[&str]) {
    let o = Command::cargo_bin("sekisho")
        .unwrap()
        .args(["replay", "-q", "--out"])
        .arg(out)
        .args(extra)
        .arg(fixture("real-eth.pcap"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn nfw_flow_log_matches_athena_schema_and_eve_counts() {
    let dir = tempfile::tempdir().unwrap();
    let nfw = dir.path().join("nfw");
    let eve = dir.path().join("eve");
    replay(
        &nfw,
        &[
            "--log-format",
            "nfw",
            "--firewall-name",
            "egress-fw",
            "--availability-zone",
            "us-east-1a",
        ],
    );
    replay(&eve, &[]);
    assert!(nfw.join("alert.log").is_file());
    assert!(!nfw.join("eve.json").exists());

    let mut halves: BTreeMap<(String, String, u64, u64), (u64, u64)> = BTreeMap::new();
    let text = std::fs::read_to_string(nfw.join("flow.log")).unwrap();
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let mut top: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        top.sort_unstable();
        assert_eq!(
            top,
            [
                "availability_zone",
                "event",
                "event_timestamp",
                "firewall_name"
            ]
        );
        assert_eq!(v["firewall_name"], "egress-fw");
        assert_eq!(v["availability_zone"], "us-east-1a");
        let ts = v["event_timestamp"]
            .as_str()
            .expect("event_timestamp is a string");
        assert!(
            ts.len() == 10 && ts.chars().all(|c| c.is_ascii_digit()),
            "{ts}"
        );
        let e = &v["event"];
        assert_eq!(e["event_type"], "netflow");
        assert!(e["timestamp"].as_str().unwrap().ends_with("+0000"));
        assert!(e["flow_id"].as_u64().is_some());
        for k in ["src_ip", "dest_ip", "proto"] {
            assert!(e[k].is_string(), "{k}");
        }
        for k in ["src_port", "dest_port"] {
            assert!(e[k].as_u64().is_some_and(|p| p <= 65535), "{k}");
        }
        let n = &e["netflow"];
        for k in ["pkts", "bytes", "age", "min_ttl", "max_ttl"] {
            assert!(n[k].as_u64().is_some(), "netflow.{k}");
        }
        for k in ["start", "end"] {
            assert!(
                n[k].as_str().is_some_and(|s| s.ends_with("+0000")),
                "netflow.{k}"
            );
        }
        if e["proto"] == "TCP" {
            let flags = e["tcp"]["tcp_flags"].as_str().unwrap();
            assert!(flags.len() == 2 && u8::from_str_radix(flags, 16).is_ok());
        }
        let key = (
            e["src_ip"].as_str().unwrap().to_string(),
            e["dest_ip"].as_str().unwrap().to_string(),
            e["src_port"].as_u64().unwrap(),
            e["dest_port"].as_u64().unwrap(),
        );
        halves.insert(
            key,
            (n["pkts"].as_u64().unwrap(), n["bytes"].as_u64().unwrap()),
        );
    }
    let mut flows = 0;
    for line in std::fs::read_to_string(eve.join("eve.json"))
        .unwrap()
        .lines()
    {
        let e: Value = serde_json::from_str(line).unwrap();
        if e["event_type"] != "flow" {
            continue;
        }
        flows += 1;
        let (c, s) = (
            e["src_ip"].as_str().unwrap().to_string(),
            e["dest_ip"].as_str().unwrap().to_string(),
        );
        let (cp, sp) = (
            e["src_port"].as_u64().unwrap(),
            e["dest_port"].as_u64().unwrap(),
        );
        let f = &e["flow"];
        assert_eq!(
            halves[&(c.clone(), s.clone(), cp, sp)],
            (
                f["pkts_toserver"].as_u64().unwrap(),
                f["bytes_toserver"].as_u64().unwrap()
            )
        );
        if f["pkts_toclient"].as_u64().unwrap() > 0 {
            assert_eq!(
                halves[&(s, c, sp, cp)],
                (
                    f["pkts_toclient"].as_u64().unwrap(),
                    f["bytes_toclient"].as_u64().unwrap()
                )
            );
        }
    }
    assert!(flows >= 8);
    assert_eq!(
        halves.len(),
        text.lines().count(),
        "one line per direction, no duplicates"
    );
}
