//! Helpers for the SMTP detection tests: run `sekisho replay` on a capture with a policy,
//! read the EVE records, and find packets in the capture by what they carry.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A capture under tests/fixtures/captures/smtp/.
pub fn capture(name: &str) -> PathBuf {
    root().join("tests/fixtures/captures/smtp").join(name)
}

/// What one replay produced.
pub struct Run {
    /// Exit status.
    pub code: i32,
    /// Standard output (the `--explain` lines).
    pub stdout: String,
    /// Standard error (load report, summary line).
    pub stderr: String,
    /// Every EVE record.
    pub events: Vec<Value>,
}

impl Run {
    /// Records of one `event_type`.
    pub fn of(&self, t: &str) -> Vec<&Value> {
        self.events
            .iter()
            .filter(|e| e["event_type"] == t)
            .collect()
    }

    /// `(sid, pcap_cnt)` of every alert, in log order.
    pub fn alerts(&self) -> Vec<(u64, u64)> {
        self.of("alert")
            .iter()
            .map(|e| {
                (
                    e["alert"]["signature_id"].as_u64().unwrap_or(0),
                    e["pcap_cnt"].as_u64().unwrap_or(0),
                )
            })
            .collect()
    }

    /// The `drops=N` figure of the summary line.
    pub fn drops(&self) -> u64 {
        self.stderr
            .split_whitespace()
            .find_map(|w| w.strip_prefix("drops="))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no drops= in summary: {}", self.stderr))
    }
}

/// Runs `sekisho replay --out TMP EXTRA... PCAP` in the repository root.
pub fn replay(pcap: &Path, extra: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("sekisho")
        .unwrap()
        .current_dir(root())
        .arg("replay")
        .arg("--quiet")
        .arg("--out")
        .arg(dir.path())
        .args(extra)
        .arg(pcap)
        .output()
        .unwrap();
    let text = std::fs::read_to_string(dir.path().join("eve.json")).unwrap_or_default();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        events: text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect(),
    }
}

/// One TCP packet of a capture: 1-based number, ports, payload.
#[derive(Debug, Clone)]
pub struct TcpPkt {
    /// 1-based packet number (EVE `pcap_cnt`).
    pub num: u64,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// TCP flags.
    pub flags: u8,
    /// TCP payload.
    pub payload: Vec<u8>,
}

/// The TCP/IPv4 packets of a classic pcap with Ethernet or Linux SLL link type (what
/// tcpdump writes); other packets are skipped but counted.
pub fn tcp_packets(path: &Path) -> Vec<TcpPkt> {
    let b = std::fs::read(path).unwrap();
    let le = match &b[0..4] {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        m => panic!("not a classic pcap: {m:?}"),
    };
    let u32_at = |o: usize| {
        let a = [b[o], b[o + 1], b[o + 2], b[o + 3]];
        if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    let link = u32_at(20);
    let l2 = match link {
        1 => 14,
        113 => 16,
        276 => 20,
        other => panic!("link type {other}"),
    };
    let mut out = Vec::new();
    let (mut o, mut num) = (24usize, 0u64);
    while o + 16 <= b.len() {
        let incl = u32_at(o + 8) as usize;
        let frame = &b[o + 16..o + 16 + incl];
        o += 16 + incl;
        num += 1;
        if frame.len() < l2 + 20 {
            continue;
        }
        let ip = &frame[l2..];
        if ip[0] >> 4 != 4 || ip[9] != 6 {
            continue;
        }
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]])).min(ip.len());
        let tcp = &ip[ihl..total];
        let doff = usize::from(tcp[12] >> 4) * 4;
        out.push(TcpPkt {
            num,
            sport: u16::from_be_bytes([tcp[0], tcp[1]]),
            dport: u16::from_be_bytes([tcp[2], tcp[3]]),
            flags: tcp[13],
            payload: tcp[doff..].to_vec(),
        });
    }
    out
}

/// Number of the first packet whose payload starts with `prefix`.
pub fn first_with(pkts: &[TcpPkt], prefix: &[u8]) -> u64 {
    pkts.iter()
        .find(|p| p.payload.starts_with(prefix))
        .map(|p| p.num)
        .unwrap_or_else(|| {
            panic!(
                "no packet starts with {:?}",
                String::from_utf8_lossy(prefix)
            )
        })
}

/// Number of the first packet whose payload contains `needle`.
pub fn first_containing(pkts: &[TcpPkt], needle: &[u8]) -> u64 {
    pkts.iter()
        .find(|p| p.payload.windows(needle.len()).any(|w| w == needle))
        .map(|p| p.num)
        .unwrap_or_else(|| panic!("no packet contains {:?}", String::from_utf8_lossy(needle)))
}
