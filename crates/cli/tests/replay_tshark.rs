//! Flow records agree with tshark on real captures (tests/fixtures/captures, made by
//! scripts/captures/make-captures.sh: curl, wget, dig, swaks against python http.server,
//! dnsmasq and smtp-sink in network namespaces). Per flow, packets and bytes in each direction
//! must equal tshark's `-z conv,tcp -z conv,udp` (and, where conv abbreviates bytes as "kB",
//! the sum of tshark's `frame.len` per direction).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;

/// (proto, endpoint A, endpoint B) with A < B as text; value: (frames A→B, bytes A→B, frames B→A, bytes B→A).
type Conv = BTreeMap<(String, String, String), (u64, u64, u64, u64)>;

/// Like [`Conv`], bytes `None` where tshark printed an abbreviated size ("43 kB").
type ConvTable = BTreeMap<(String, String, String), (u64, Option<u64>, u64, Option<u64>)>;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/captures")
        .join(name)
}

fn key(proto: &str, a: &str, b: &str) -> ((String, String, String), bool) {
    if a <= b {
        ((proto.to_string(), a.to_string(), b.to_string()), false)
    } else {
        ((proto.to_string(), b.to_string(), a.to_string()), true)
    }
}

fn add(map: &mut Conv, proto: &str, src: &str, dst: &str, pkts: u64, bytes: u64) {
    let (k, swapped) = key(proto, src, dst);
    let e = map.entry(k).or_default();
    if swapped {
        e.2 += pkts;
        e.3 += bytes;
    } else {
        e.0 += pkts;
        e.1 += bytes;
    }
}

/// Per-direction totals from tshark's per-packet fields.
fn tshark_fields(file: &PathBuf) -> Conv {
    let out = Command::new("tshark")
        .args(["-r"])
        .arg(file)
        .args([
            "-T",
            "fields",
            "-E",
            "separator=,",
            "-e",
            "frame.len",
            "-e",
            "ip.src",
            "-e",
            "ip.dst",
        ])
        .args([
            "-e",
            "tcp.srcport",
            "-e",
            "tcp.dstport",
            "-e",
            "udp.srcport",
            "-e",
            "udp.dstport",
        ])
        .args(["-Y", "tcp or udp"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut map = Conv::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.split(',').collect();
        let len: u64 = f[0].parse().unwrap();
        let (proto, sp, dp) = if !f[3].is_empty() {
            ("TCP", f[3], f[4])
        } else {
            ("UDP", f[5], f[6])
        };
        add(
            &mut map,
            proto,
            &format!("{}:{sp}", f[1]),
            &format!("{}:{dp}", f[2]),
            1,
            len,
        );
    }
    map
}

/// tshark's conversation tables: frames always, bytes only when printed exactly (`N bytes`).
fn tshark_conv(file: &PathBuf) -> ConvTable {
    let out = Command::new("tshark")
        .args(["-q", "-z", "conv,tcp", "-z", "conv,udp", "-r"])
        .arg(file)
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut proto = "";
    let mut map = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if line.starts_with("TCP Conversations") {
            proto = "TCP";
        } else if line.starts_with("UDP Conversations") {
            proto = "UDP";
        }
        let t: Vec<&str> = line.split_whitespace().collect();
        if t.len() < 8 || t[1] != "<->" {
            continue;
        }
        // A <-> B  frames(B→A) bytes unit  frames(A→B) bytes unit ...
        let exact = |n: &str, unit: &str| (unit == "bytes").then(|| n.parse::<u64>().unwrap());
        let (b_a_f, b_a_b) = (t[3].parse::<u64>().unwrap(), exact(t[4], t[5]));
        let (a_b_f, a_b_b) = (t[6].parse::<u64>().unwrap(), exact(t[7], t[8]));
        let (k, swapped) = key(proto, t[0], t[2]);
        let v = if swapped {
            (b_a_f, b_a_b, a_b_f, a_b_b)
        } else {
            (a_b_f, a_b_b, b_a_f, b_a_b)
        };
        map.insert(k, v);
    }
    map
}

fn sekisho_flows(file: &PathBuf) -> Conv {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("sekisho")
        .unwrap()
        .args(["replay", "-q", "--out"])
        .arg(dir.path())
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(dir.path().join("eve.json")).unwrap();
    let mut map = Conv::new();
    for line in text.lines() {
        let ev: serde_json::Value = serde_json::from_str(line).unwrap();
        if ev["event_type"] != "flow" {
            continue;
        }
        let proto = ev["proto"].as_str().unwrap();
        if proto != "TCP" && proto != "UDP" {
            continue;
        }
        let client = format!("{}:{}", ev["src_ip"].as_str().unwrap(), ev["src_port"]);
        let server = format!("{}:{}", ev["dest_ip"].as_str().unwrap(), ev["dest_port"]);
        let f = &ev["flow"];
        let n = |k: &str| f[k].as_u64().unwrap();
        add(
            &mut map,
            proto,
            &client,
            &server,
            n("pkts_toserver"),
            n("bytes_toserver"),
        );
        add(
            &mut map,
            proto,
            &server,
            &client,
            n("pkts_toclient"),
            n("bytes_toclient"),
        );
    }
    map
}

fn check(name: &str) {
    if !sekisho_testutil::lab::require_tool("tshark") {
        return;
    }
    let file = fixture(name);
    let ours = sekisho_flows(&file);
    let fields = tshark_fields(&file);
    let conv = tshark_conv(&file);
    assert!(
        ours.len() >= 8,
        "{name}: expected the fixture's 8+ TCP/UDP flows, got {}",
        ours.len()
    );
    assert_eq!(
        ours, fields,
        "{name}: per-direction packets/bytes differ from tshark frame.len sums"
    );
    assert_eq!(
        conv.len(),
        ours.len(),
        "{name}: conversation count differs from tshark conv"
    );
    for (k, (f_ab, b_ab, f_ba, b_ba)) in &conv {
        let o = ours
            .get(k)
            .unwrap_or_else(|| panic!("{name}: tshark conversation {k:?} missing"));
        assert_eq!((o.0, o.2), (*f_ab, *f_ba), "{name}: frames of {k:?}");
        if let Some(b) = b_ab {
            assert_eq!(o.1, *b, "{name}: bytes A→B of {k:?}");
        }
        if let Some(b) = b_ba {
            assert_eq!(o.3, *b, "{name}: bytes B→A of {k:?}");
        }
    }
}

#[test]
fn ethernet_capture_matches_tshark() {
    check("real-eth.pcap");
}

#[test]
fn sll2_any_capture_matches_tshark() {
    check("real-any-sll2.pcap");
}

#[test]
fn gzipped_pcapng_matches_tshark() {
    check("real-eth.pcapng.gz");
}
