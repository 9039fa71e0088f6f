//! The packets `sekisho_engine::emit` builds, checked by an independent implementation:
//! tshark. Resets and ICMP errors are built from every packet of the real capture
//! `tests/fixtures/captures/smtp/swaks-plain.pcap` (and from an IPv6 copy of each), written
//! to a raw-IP pcap, and read back by tshark with checksum validation on. tshark must find
//! every IP, TCP and ICMP checksum good, and the sequence numbers must be the ones the peer
//! expects, which the capture itself shows: the ack of a segment is the seq of the next
//! segment its peer sent.
//!
//! `SEKISHO_KEEP_WORK=1` keeps the written pcap (its path is printed).
//!
//! Needs tshark. Without it the test fails when `CI` is set and is skipped (loudly) otherwise.

mod common;

use std::net::{IpAddr, Ipv6Addr};
use std::path::PathBuf;
use std::process::Command;

use etherparse::{PacketBuilder, TcpHeaderSlice};
use sekisho_engine::decode::{tcp_flags, PacketDecoder, TcpInfo, Transport};
use sekisho_engine::emit::{icmp_unreachable, tcp_rst_to_receiver, tcp_rst_to_sender, Offending};
use sekisho_engine::{EngineConfig, LinkType, Timestamp};
use sekisho_pcap::write::PcapWriter;
use sekisho_pcap::PacketTime;

/// LINKTYPE_RAW: each record is an IPv4 or IPv6 packet.
const LINKTYPE_RAW: u32 = 101;

fn swaks_plain() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/captures/smtp/swaks-plain.pcap")
}

/// A classic little-endian pcap with microsecond timestamps: packet N at N seconds.
fn pcap_file(link_type: u32, packets: &[Vec<u8>]) -> Vec<u8> {
    let mut w = PcapWriter::new(Vec::new(), link_type, false).expect("write to memory");
    for (i, p) in packets.iter().enumerate() {
        let ts = PacketTime {
            sec: i as u64 + 1,
            nsec: 0,
        };
        w.write_packet(ts, p, p.len() as u32)
            .expect("write to memory");
    }
    w.into_inner().expect("write to memory")
}

/// One segment of the capture, as the decoder saw it.
#[derive(Clone)]
struct Seg {
    frame: usize,
    from_client: bool,
    tcp: TcpInfo,
    /// The raw IP packet (`Packet::ip`).
    ip: Vec<u8>,
}

fn read_capture() -> Vec<Seg> {
    let (link, frames) = common::load_capture(&swaks_plain());
    let mut dec = PacketDecoder::new(&EngineConfig::default());
    let mut segs = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        let p = dec
            .decode(f.ts, link, &f.data)
            .expect("every frame decodes");
        let Transport::Tcp(tcp) = p.transport else {
            panic!("frame {} is not TCP", i + 1)
        };
        segs.push(Seg {
            frame: i + 1,
            from_client: p.dst_port == 25,
            tcp,
            ip: p.ip.to_vec(),
        });
    }
    segs
}

/// The same segment over IPv6 (documentation prefix, same ports, TCP header and payload),
/// so that the IPv6 builders face tshark too.
fn to_ipv6(ipv4: &[u8]) -> Vec<u8> {
    let hlen = usize::from(ipv4[0] & 0x0f) * 4;
    let tcp = TcpHeaderSlice::from_slice(&ipv4[hlen..]).expect("tcp header");
    let payload = &ipv4[hlen + tcp.slice().len()..];
    let v6 = |v4: &[u8]| {
        let mut a = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0).octets();
        a[12..].copy_from_slice(v4);
        a
    };
    let b = PacketBuilder::ipv6(v6(&ipv4[12..16]), v6(&ipv4[16..20]), ipv4[8])
        .tcp_header(tcp.to_header());
    let mut out = Vec::new();
    b.write(&mut out, payload).expect("write");
    out
}

/// What one emitted packet must look like to tshark.
#[derive(Debug)]
enum Want {
    /// A reset: seq, ack (None: the ACK flag is off), from the offending segment's frame.
    Rst {
        frame: usize,
        seq: u32,
        ack: Option<u32>,
    },
    /// An ICMP port unreachable quoting a segment with this seq.
    Icmp {
        frame: usize,
        v6: bool,
        quoted_seq: u32,
    },
}

/// The packets built from one captured segment (IPv4 as captured, or its IPv6 copy).
fn emit_for(s: &Seg, ip: &[u8], out: &mut Vec<Vec<u8>>, want: &mut Vec<Want>, next_peer: &Seg) {
    let mut d = PacketDecoder::new(&EngineConfig::default());
    let p = d
        .decode(Timestamp::from_secs_micros(1, 0), LinkType::Raw, ip)
        .expect("decodes");
    let o = Offending::from_packet(&p);
    let t = s.tcp;
    let v6 = matches!(o.src, IpAddr::V6(_));

    let rst = tcp_rst_to_sender(&o).expect("a reset to the sender for every segment");
    if t.flags & tcp_flags::ACK != 0 {
        // The capture shows what the sender expects next from its peer: the seq of the
        // peer's next segment is the ack the sender had sent.
        assert_eq!(
            t.ack, next_peer.tcp.seq,
            "frame {}: ack = seq of the peer's next segment (frame {})",
            s.frame, next_peer.frame
        );
        want.push(Want::Rst {
            frame: s.frame,
            seq: next_peer.tcp.seq,
            ack: None,
        });
    } else {
        // The SYN: the SYN-ACK that answered it acks exactly what our RST|ACK must.
        assert_eq!(t.flags, tcp_flags::SYN, "frame {}", s.frame);
        want.push(Want::Rst {
            frame: s.frame,
            seq: 0,
            ack: Some(next_peer.tcp.ack),
        });
    }
    out.push(rst);

    match tcp_rst_to_receiver(&o) {
        Some(rst) => {
            want.push(Want::Rst {
                frame: s.frame,
                seq: t.seq,
                ack: Some(t.ack),
            });
            out.push(rst);
        }
        None => assert_eq!(
            t.flags,
            tcp_flags::SYN,
            "only a bare SYN has no receiver reset"
        ),
    }

    out.push(icmp_unreachable(&o).expect("an ICMP error for every segment"));
    want.push(Want::Icmp {
        frame: s.frame,
        v6,
        quoted_seq: t.seq,
    });
}

#[test]
fn emitted_resets_and_icmp_errors_pass_tshark() {
    if Command::new("tshark").arg("--version").output().is_err() {
        if std::env::var_os("CI").is_some() {
            panic!("tshark is missing (apt-get install tshark); CI must run this test");
        }
        eprintln!("SKIPPED emitted_resets_and_icmp_errors_pass_tshark: tshark is not installed");
        return;
    }
    let segs = read_capture();
    assert!(segs.len() >= 17, "swaks-plain has the whole session");
    let mut out = Vec::new();
    let mut want = Vec::new();
    let mut checked_ack = 0;
    for (i, s) in segs.iter().enumerate() {
        // The peer's next segment: the capture's record of what it expected. Segments with
        // no later peer segment (the final ACK) have nothing to check against.
        let Some(next_peer) = segs[i + 1..]
            .iter()
            .find(|n| n.from_client != s.from_client)
        else {
            continue;
        };
        if s.tcp.flags & tcp_flags::ACK != 0 {
            checked_ack += 1;
        }
        emit_for(s, &s.ip, &mut out, &mut want, next_peer);
        emit_for(s, &to_ipv6(&s.ip), &mut out, &mut want, next_peer);
    }
    assert!(checked_ack >= 15, "{checked_ack} segments with ACK checked");

    let dir = std::env::temp_dir().join(format!("sekisho-emit-tshark-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("emitted.pcap");
    std::fs::write(&file, pcap_file(LINKTYPE_RAW, &out)).expect("write pcap");
    // The columns, in this order (`f(i)` below is column i).
    const FIELDS: [&str; 15] = [
        "frame.number",           // 0
        "ip.version",             // 1
        "ipv6.version",           // 2
        "tcp.seq_raw",            // 3
        "tcp.ack_raw",            // 4
        "tcp.flags",              // 5
        "tcp.checksum.status",    // 6
        "ip.checksum.status",     // 7
        "icmp.type",              // 8
        "icmp.code",              // 9
        "icmp.checksum.status",   // 10
        "icmpv6.type",            // 11
        "icmpv6.code",            // 12
        "icmpv6.checksum.status", // 13
        "tcp.seq",                // 14
    ];
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(&file);
    cmd.args([
        "-o",
        "tcp.check_checksum:TRUE",
        "-o",
        "ip.check_checksum:TRUE",
    ]);
    // Absolute tcp.seq: in an ICMPv4 quote tshark gives no tcp.seq_raw, only tcp.seq.
    cmd.args(["-o", "tcp.analyze_sequence_numbers:FALSE"]);
    cmd.args(["-o", "tcp.relative_sequence_numbers:FALSE"]);
    // First occurrence: the outer packet's fields, not those of the quote in an ICMP error
    // (except tcp.*, which only the quote has in an ICMP row).
    cmd.args(["-T", "fields", "-E", "occurrence=f"]);
    for f in FIELDS {
        cmd.args(["-e", f]);
    }
    let res = cmd.output().expect("tshark runs");
    // SEKISHO_KEEP_WORK=1 keeps the pcap for a look with tshark or Wireshark.
    if std::env::var_os("SEKISHO_KEEP_WORK").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        eprintln!("kept {}", file.display());
    }
    assert!(
        res.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&res.stderr)
    );
    let text = String::from_utf8(res.stdout).expect("utf-8");
    let rows: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .collect();
    assert_eq!(rows.len(), want.len(), "one tshark row per emitted packet");

    // tshark prints checksum statuses as numbers: 1 is "Good" (0 bad, 2 unverified).
    const GOOD: &str = "1";
    let num = |s: &str| s.parse::<u64>().unwrap_or_else(|_| panic!("number: {s:?}"));
    let flags = |s: &str| u8::from_str_radix(s.trim_start_matches("0x"), 16).expect("flags");
    let (mut rsts, mut icmps) = (0, 0);
    for (row, w) in rows.iter().zip(&want) {
        let f = |i: usize| row.get(i).copied().unwrap_or("");
        let v6 = f(2) == "6";
        let (Want::Rst { frame, .. } | Want::Icmp { frame, .. }) = *w;
        let ctx = format!("from capture frame {frame}: {w:?} -> tshark {row:?}");
        if v6 {
            // tshark's IPv6 dissector fills ip.version too.
            assert_eq!(f(1), "6", "{ctx}");
        } else {
            assert_eq!(f(1), "4", "{ctx}");
            assert_eq!(f(7), GOOD, "IPv4 header checksum: {ctx}");
        }
        match *w {
            Want::Rst { seq, ack, .. } => {
                rsts += 1;
                assert_eq!(f(6), GOOD, "TCP checksum: {ctx}");
                assert_eq!(num(f(3)), u64::from(seq), "seq: {ctx}");
                let fl = flags(f(5));
                match ack {
                    Some(a) => {
                        assert_eq!(fl, tcp_flags::RST | tcp_flags::ACK, "{ctx}");
                        assert_eq!(num(f(4)), u64::from(a), "ack: {ctx}");
                    }
                    None => assert_eq!(fl, tcp_flags::RST, "{ctx}"),
                }
            }
            Want::Icmp {
                v6: want_v6,
                quoted_seq,
                ..
            } => {
                icmps += 1;
                assert_eq!(v6, want_v6, "{ctx}");
                let (t, c, sum) = if v6 { (11, 12, 13) } else { (8, 9, 10) };
                let want_tc = if v6 { ("1", "4") } else { ("3", "3") };
                assert_eq!((f(t), f(c)), want_tc, "type/code: {ctx}");
                assert_eq!(f(sum), GOOD, "ICMP checksum: {ctx}");
                // tshark dissects the quote: it is the offending segment as sent.
                assert_eq!(num(f(14)), u64::from(quoted_seq), "quoted seq: {ctx}");
                assert_eq!(f(6), GOOD, "quoted TCP checksum: {ctx}");
            }
        }
    }
    assert!(
        rsts > 30 && icmps > 30,
        "{rsts} resets, {icmps} ICMP errors checked"
    );
}
