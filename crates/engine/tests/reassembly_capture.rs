//! TCP reassembly on real captures (Suricata's conformance corpus, read at run time from
//! `../shared/conformance` next to the repository):
//!
//! * the reassembled streams of a clean capture equal Wireshark's (`tshark -z follow,tcp,raw`),
//!   an independent implementation; the capture used has real out-of-order segments;
//! * a copy of the capture rewritten with segments split, reordered, duplicated and re-sent
//!   with overlaps reassembles to the same bytes as the clean capture.
//!
//! The captures are read with sekisho-pcap and decoded with etherparse directly, so this tests
//! the reassembly module alone; the engine's own capture replay test goes through the engine.
//! Needs the conformance corpus (and `tshark` for the Wireshark comparison): missing inputs
//! fail the test when `CI` is set and skip it otherwise.

mod common;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use sekisho_engine::reassembly::{
    CollectedStream, ReassemblyConfig, SegmentFlags, StreamCollector,
};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A real HTTP download (a 180 kB PDF) with genuinely out-of-order server segments.
const PDF_DOWNLOAD: &str = "filestore-v2.1-forced/suricata-update-pdf.pcap";
/// A real capture of a long-lived TCP connection with data both ways.
const TWO_WAY: &str = "truncate-applayer-test-01/input.pcap";

/// One TCP segment of a capture.
#[derive(Debug, Clone)]
struct Seg {
    seq: u32,
    flags: SegmentFlags,
    payload: Vec<u8>,
}

/// A direction: `(source, destination)`.
type Dir = (SocketAddr, SocketAddr);

/// Skips (or, under CI, fails) when an input is missing.
fn missing(what: &str) -> Option<()> {
    if std::env::var_os("CI").is_some() {
        panic!("{what} is missing (required when CI is set)");
    }
    eprintln!("skipping: {what} is missing");
    None
}

fn capture_path(name: &str) -> Option<PathBuf> {
    let root = sekisho_testutil::shared_path().join("conformance");
    let path = root.join("suricata-verify/tests").join(name);
    if path.is_file() {
        Some(path)
    } else {
        missing(&format!("capture {}", path.display()))?;
        None
    }
}

/// Every TCP segment of a capture file, per direction, in capture order.
fn tcp_segments(path: &Path) -> BTreeMap<Dir, Vec<Seg>> {
    let (packets, _) = common::capture_packets(path).expect("read capture");
    let mut dirs: BTreeMap<Dir, Vec<Seg>> = BTreeMap::new();
    for block in &packets {
        assert_eq!(
            block.data.len() as u32,
            block.orig_len,
            "truncated packet in capture"
        );
        // LINKTYPE_ETHERNET; LINKTYPE_RAW, _IPV4, _IPV6.
        let pkt = match block.link_type {
            1 => SlicedPacket::from_ethernet(&block.data),
            101 | 228 | 229 => SlicedPacket::from_ip(&block.data),
            other => panic!("unsupported link type {other}"),
        };
        let Ok(pkt) = pkt else { continue };
        let (Some(net), Some(TransportSlice::Tcp(tcp))) = (pkt.net, pkt.transport) else {
            continue;
        };
        let (src, dst) = match net {
            NetSlice::Ipv4(ip) => (
                ip.header().source_addr().into(),
                ip.header().destination_addr().into(),
            ),
            NetSlice::Ipv6(ip) => (
                ip.header().source_addr().into(),
                ip.header().destination_addr().into(),
            ),
            NetSlice::Arp(_) => continue,
        };
        let dir = (
            SocketAddr::new(src, tcp.source_port()),
            SocketAddr::new(dst, tcp.destination_port()),
        );
        dirs.entry(dir).or_default().push(Seg {
            seq: tcp.sequence_number(),
            flags: SegmentFlags {
                syn: tcp.syn(),
                fin: tcp.fin(),
                rst: tcp.rst(),
            },
            payload: tcp.payload().to_vec(),
        });
    }
    dirs
}

fn reassemble(segs: &[Seg]) -> (CollectedStream, u64) {
    let mut c = StreamCollector::new(ReassemblyConfig::default());
    let mut buffered = 0;
    for s in segs {
        buffered += c.push(s.seq, s.flags, &s.payload).buffered_bytes;
    }
    (c.finish(), buffered)
}

/// Deterministic PRNG (xorshift64*) for the rewrite.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn one_in(&mut self, n: u64) -> bool {
        self.next().is_multiple_of(n)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Rewrites a direction the way a bad network would deliver it: data segments split in two,
/// re-sends that overlap two neighbouring segments with identical bytes, duplicates, and
/// reordering within windows of 8. The first segment (SYN or midstream start) stays first,
/// RST segments and everything after them keep their place, FIN flags stay on the segment
/// that ends where the FIN was.
fn mangle(segs: &[Seg], seed: u64) -> Vec<Seg> {
    let mut rng = Rng(seed | 1);
    let Some((first, rest)) = segs.split_first() else {
        return Vec::new();
    };
    let tail_from = rest.iter().position(|s| s.flags.rst).unwrap_or(rest.len());
    let (body, tail) = rest.split_at(tail_from);
    let mut out: Vec<Seg> = Vec::new();
    for (i, s) in body.iter().enumerate() {
        if s.payload.len() >= 2 && !s.flags.syn && rng.one_in(3) {
            let cut = 1 + rng.below(s.payload.len() - 1);
            out.push(Seg {
                seq: s.seq,
                flags: SegmentFlags {
                    fin: false,
                    ..s.flags
                },
                payload: s.payload[..cut].to_vec(),
            });
            out.push(Seg {
                seq: s.seq.wrapping_add(cut as u32),
                flags: SegmentFlags {
                    syn: false,
                    ..s.flags
                },
                payload: s.payload[cut..].to_vec(),
            });
        } else {
            out.push(s.clone());
        }
        // An overlapping re-send spanning this segment's tail and the next one's head.
        if let Some(next) = body.get(i + 1) {
            let contiguous = !s.flags.syn
                && !s.payload.is_empty()
                && !next.payload.is_empty()
                && s.seq.wrapping_add(s.payload.len() as u32) == next.seq;
            if contiguous && rng.one_in(4) {
                let from = rng.below(s.payload.len());
                let upto = 1 + rng.below(next.payload.len());
                let mut payload = s.payload[from..].to_vec();
                payload.extend_from_slice(&next.payload[..upto]);
                out.push(Seg {
                    seq: s.seq.wrapping_add(from as u32),
                    flags: SegmentFlags::NONE,
                    payload,
                });
            }
        }
        if rng.one_in(5) {
            let dup = out[out.len() - 1].clone();
            out.push(dup);
        }
    }
    for w in out.chunks_mut(8) {
        for i in (1..w.len()).rev() {
            let j = rng.below(i + 1);
            w.swap(i, j);
        }
    }
    let mut all = vec![first.clone()];
    all.extend(out);
    all.extend_from_slice(tail);
    all
}

/// Wireshark's reassembly of every TCP conversation, per direction.
fn tshark_follow(path: &PathBuf, streams: usize) -> Option<BTreeMap<Dir, Vec<u8>>> {
    if Command::new("tshark").arg("--version").output().is_err() {
        missing("tshark (apt package tshark)")?;
    }
    let mut out = BTreeMap::new();
    for n in 0..streams {
        let o = Command::new("tshark")
            .arg("-r")
            .arg(path)
            .args(["-q", "-z", &format!("follow,tcp,raw,{n}")])
            .output()
            .expect("run tshark");
        assert!(o.status.success(), "tshark failed: {o:?}");
        let text = String::from_utf8(o.stdout).expect("tshark output is text");
        let node = |k: &str| -> SocketAddr {
            let line = text
                .lines()
                .find_map(|l| l.strip_prefix(k))
                .expect("node line");
            line.trim().parse().expect("node address")
        };
        let (a, b) = (node("Node 0: "), node("Node 1: "));
        let (mut ab, mut ba) = (Vec::new(), Vec::new());
        let body = text
            .split_once(&format!("Node 1: {b}\n"))
            .expect("follow body")
            .1;
        for line in body.lines().take_while(|l| !l.starts_with("====")) {
            let (to, hex) = match line.strip_prefix('\t') {
                Some(h) => (&mut ba, h),
                None => (&mut ab, line),
            };
            to.extend(
                (0..hex.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex")),
            );
        }
        out.insert((a, b), ab);
        out.insert((b, a), ba);
    }
    Some(out)
}

#[test]
fn clean_capture_reassembles_like_wireshark() {
    for name in [PDF_DOWNLOAD, TWO_WAY] {
        let Some(path) = capture_path(name) else {
            return;
        };
        let dirs = tcp_segments(&path);
        let Some(oracle) = tshark_follow(&path, dirs.len() / 2) else {
            return;
        };
        assert_eq!(oracle.len(), dirs.len(), "{name}: conversations differ");
        for (dir, segs) in &dirs {
            let (got, _) = reassemble(segs);
            assert!(got.gaps.is_empty(), "{name} {dir:?}: gaps {:?}", got.gaps);
            // The PDF download ends with FINs; the other capture with a RST from one side,
            // so the other direction ends when the collector closes it.
            assert!(got.end.is_some(), "{name} {dir:?}");
            let want = &oracle[dir];
            assert!(!want.is_empty(), "{name} {dir:?}: no data");
            assert_eq!(got.data.len(), want.len(), "{name} {dir:?}: length");
            assert!(got.data == *want, "{name} {dir:?}: bytes differ");
        }
    }
}

#[test]
fn pdf_download_body_matches_its_content_length() {
    let Some(path) = capture_path(PDF_DOWNLOAD) else {
        return;
    };
    let dirs = tcp_segments(&path);
    let server: SocketAddr = "162.209.114.75:80".parse().expect("addr");
    let (dir, segs) = dirs
        .iter()
        .find(|(d, _)| d.0 == server)
        .expect("server direction");
    let (got, buffered) = reassemble(segs);
    // The capture's own reordering made the reassembler buffer data.
    assert!(buffered > 0, "{dir:?}: nothing was out of order");
    let text = &got.data;
    let head_end = text
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers")
        + 4;
    let head = String::from_utf8_lossy(&text[..head_end]);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .expect("Content-Length")
        .trim()
        .parse()
        .expect("number");
    assert_eq!(text.len() - head_end, len);
    assert!(text[head_end..].starts_with(b"%PDF-"));
}

#[test]
fn rewritten_capture_reassembles_to_the_same_bytes_as_the_clean_one() {
    for name in [PDF_DOWNLOAD, TWO_WAY] {
        let Some(path) = capture_path(name) else {
            return;
        };
        for (dir, segs) in &tcp_segments(&path) {
            let (clean, _) = reassemble(segs);
            for seed in 1..=8u64 {
                let mangled = mangle(segs, seed);
                assert!(
                    mangled.len() > segs.len() || segs.len() < 4,
                    "{name}: no rewrite"
                );
                let (got, _) = reassemble(&mangled);
                assert_eq!(got.gaps, clean.gaps, "{name} {dir:?} seed {seed}");
                assert_eq!(got.end, clean.end, "{name} {dir:?} seed {seed}");
                assert!(
                    got.data == clean.data,
                    "{name} {dir:?} seed {seed}: bytes differ"
                );
                assert_eq!(got.stats.overlap_diff_data, 0);
                if segs.iter().filter(|s| !s.payload.is_empty()).count() > 20 {
                    let s = got.stats;
                    assert!(
                        s.overlap + s.pkt_retransmission > 0,
                        "{name} {dir:?} seed {seed}: rewrite made no overlap"
                    );
                }
            }
        }
    }
}

#[test]
fn losing_segments_of_a_real_capture_gives_gaps_exactly_where_data_is_missing() {
    let Some(path) = capture_path(PDF_DOWNLOAD) else {
        return;
    };
    for (dir, segs) in &tcp_segments(&path) {
        let (clean, _) = reassemble(segs);
        // Drop every 7th data segment (never the SYN, FIN or RST).
        let mut kept = Vec::new();
        let mut n = 0;
        for s in segs {
            let plain = !(s.flags.syn || s.flags.fin || s.flags.rst);
            if plain && !s.payload.is_empty() {
                n += 1;
                if n % 7 == 0 {
                    continue;
                }
            }
            kept.push(s.clone());
        }
        let (got, _) = reassemble(&kept);
        let filled = got.with_gaps_filled(0);
        assert_eq!(filled.len(), clean.data.len(), "{dir:?}");
        // Every byte outside the gaps is the original byte at that offset.
        let mut in_gap = vec![false; filled.len()];
        for &(off, len) in &got.gaps {
            in_gap[off as usize..(off + len) as usize].fill(true);
        }
        for (i, (&a, &b)) in filled.iter().zip(&clean.data).enumerate() {
            assert!(in_gap[i] || a == b, "{dir:?}: byte {i}");
        }
        if n >= 7 {
            assert!(!got.gaps.is_empty(), "{dir:?}: lost data but no gap");
        }
    }
}
