//! Decoder unit tests on real fixture frames (tests/fixtures) and hand-made corruptions of them.

use super::*;
use crate::config::{ChecksumMode, DefragConfig, EngineConfig};
use etherparse::checksum::Sum16BitWords;

fn frames(name: &str) -> (LinkType, Vec<Vec<u8>>) {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let mut reader = sekisho_pcap::CaptureReader::open(path).expect("fixture");
    let mut link = None;
    let mut out = Vec::new();
    while let Some(p) = reader.next_packet().expect("pcap") {
        link = Some(LinkType::from_linktype(p.link_type).expect("link"));
        out.push(p.data.to_vec());
    }
    (link.expect("a packet"), out)
}

fn t0() -> Timestamp {
    Timestamp::from_secs_micros(1_700_000_000, 0)
}

fn cfg_nocsum() -> EngineConfig {
    EngineConfig {
        checksums: ChecksumMode::None,
        ..EngineConfig::default()
    }
}

/// Decodes and returns (ok?, events).
fn dec(d: &mut PacketDecoder, link: LinkType, f: &[u8]) -> (bool, Vec<DecodeEvent>) {
    let ok = d.decode(t0(), link, f).is_ok();
    (ok, d.events().to_vec())
}

/// Recomputes the IPv4 header checksum of an Ethernet frame (after edits).
fn fix_ip_csum(f: &mut [u8]) {
    let hlen = usize::from(f[14] & 0x0f) * 4;
    f[24] = 0;
    f[25] = 0;
    let c = Sum16BitWords::new()
        .add_slice(&f[14..14 + hlen])
        .ones_complement();
    f[24..26].copy_from_slice(&c.to_ne_bytes());
}

#[test]
fn every_prefix_of_every_fixture_frame_is_total() {
    for name in [
        "lo-http.pcap",
        "lo-dns.pcap",
        "any-sll.pcap",
        "any-sll2.pcap",
        "ns-frag.pcap",
        "ns-tcp.pcap",
        "ns-vlan.pcap",
        "ns-geneve.pcap",
    ] {
        let (link, fs) = frames(name);
        let mut d = PacketDecoder::new(&EngineConfig::default());
        for f in &fs {
            for n in 0..=f.len() {
                let _ = d.decode(t0(), link, &f[..n]);
            }
            // Same bytes under every other link type: garbage for most of them.
            for other in [
                LinkType::Ethernet,
                LinkType::Raw,
                LinkType::LinuxSll,
                LinkType::LinuxSll2,
                LinkType::Null,
            ] {
                let _ = d.decode(t0(), other, f);
            }
        }
        assert!(
            d.stats().decoder.invalid > 0,
            "{name}: truncations detected"
        );
    }
}

#[test]
fn zero_length_frames_raise_link_events() {
    let mut d = PacketDecoder::new(&EngineConfig::default());
    for (link, ev) in [
        (LinkType::Ethernet, DecodeEvent::EthernetPktTooSmall),
        (LinkType::LinuxSll, DecodeEvent::SllPktTooSmall),
        (LinkType::LinuxSll2, DecodeEvent::Sll2PktTooSmall),
        (LinkType::Null, DecodeEvent::NullPktTooSmall),
        (LinkType::Raw, DecodeEvent::IpRawInvalidIpVersion),
        (LinkType::Ipv4, DecodeEvent::Ipv4PktTooSmall),
        (LinkType::Ipv6, DecodeEvent::Ipv6PktTooSmall),
    ] {
        assert_eq!(dec(&mut d, link, &[]), (false, vec![ev]));
    }
    assert_eq!(d.stats().decoder.invalid, 7);
    assert_eq!(
        d.stats().decoder.event[DecodeEvent::EthernetPktTooSmall as usize],
        1
    );
}

#[test]
fn ipv4_header_anomalies() {
    let (_, fs) = frames("ns-tcp.pcap");
    let syn = &fs[0];
    let mut d = PacketDecoder::new(&EngineConfig::default());
    assert_eq!(dec(&mut d, LinkType::Ethernet, syn), (true, vec![]));

    // A packet claiming 64 KB in a 60-byte frame.
    let mut f = syn.clone();
    f[16..18].copy_from_slice(&65535u16.to_be_bytes());
    f.truncate(60);
    assert_eq!(
        dec(&mut d, LinkType::Ethernet, &f),
        (false, vec![DecodeEvent::Ipv4TruncPkt])
    );
    // IHL 3 (12 bytes).
    let mut f = syn.clone();
    f[14] = 0x43;
    assert_eq!(
        dec(&mut d, LinkType::Ethernet, &f),
        (false, vec![DecodeEvent::Ipv4HlenTooSmall])
    );
    // Total length 16 < header length 20.
    let mut f = syn.clone();
    f[16..18].copy_from_slice(&16u16.to_be_bytes());
    assert_eq!(
        dec(&mut d, LinkType::Ethernet, &f),
        (false, vec![DecodeEvent::Ipv4IplenSmallerThanHlen])
    );
    // Version 5 behind ethertype IPv4.
    let mut f = syn.clone();
    f[14] = 0x55;
    assert_eq!(
        dec(&mut d, LinkType::Ethernet, &f),
        (false, vec![DecodeEvent::Ipv4WrongIpVersion])
    );
    // Unknown ethertype.
    let mut f = syn.clone();
    f[12..14].copy_from_slice(&0xfbbbu16.to_be_bytes());
    assert_eq!(
        dec(&mut d, LinkType::Ethernet, &f),
        (false, vec![DecodeEvent::EthernetUnknownEthertype])
    );
    assert_eq!(d.stats().decoder.unknown_ethertype, 1);
}

/// Inserts `opts` (multiple of 4) as IPv4 options into an Ethernet/IPv4 frame.
fn with_ipv4_options(f: &[u8], opts: &[u8]) -> Vec<u8> {
    let mut out = f[..34].to_vec();
    out.extend_from_slice(opts);
    out.extend_from_slice(&f[34..]);
    out[14] = 0x40 | (5 + opts.len() / 4) as u8;
    let total = u16::from_be_bytes([out[16], out[17]]) + opts.len() as u16;
    out[16..18].copy_from_slice(&total.to_be_bytes());
    fix_ip_csum(&mut out);
    out
}

#[test]
fn ipv4_options_and_header_checksum() {
    let (_, fs) = frames("ns-tcp.pcap");
    let mut d = PacketDecoder::new(&EngineConfig::default());
    // Router alert (148, len 4): valid, no event, checksums still right.
    let f = with_ipv4_options(&fs[0], &[148, 4, 0, 0]);
    assert_eq!(dec(&mut d, LinkType::Ethernet, &f), (true, vec![]));
    assert_eq!(d.stats().checksum.ipv4, 0);
    // Option length 9 in a 4-byte option area.
    let f = with_ipv4_options(&fs[0], &[7, 9, 4, 0]);
    assert_eq!(
        dec(&mut d, LinkType::Ethernet, &f),
        (true, vec![DecodeEvent::Ipv4OptInvalidLen])
    );
    // End-of-list followed by non-zero bytes.
    let f = with_ipv4_options(&fs[0], &[0, 1, 1, 1]);
    assert_eq!(
        dec(&mut d, LinkType::Ethernet, &f),
        (true, vec![DecodeEvent::Ipv4OptPadRequired])
    );
    // Corrupt the header checksum: counted, still decoded.
    let mut f = fs[0].clone();
    f[24] ^= 0xff;
    let mut d = PacketDecoder::new(&EngineConfig::default());
    assert!(d.decode(t0(), LinkType::Ethernet, &f).is_ok());
    assert_eq!(d.stats().checksum.ipv4, 1);
}

#[test]
fn tcp_options_from_a_real_syn() {
    let (_, fs) = frames("ns-tcp.pcap");
    let mut d = PacketDecoder::new(&EngineConfig::default());
    let p = d.decode(t0(), LinkType::Ethernet, &fs[0]).expect("syn");
    let Transport::Tcp(t) = p.transport else {
        panic!("not tcp")
    };
    assert_eq!(t.flags, tcp_flags::SYN);
    assert_eq!(t.mss, Some(1460));
    assert!(t.sack_permitted);
    assert_eq!(t.wscale, Some(10));
    assert_eq!(t.timestamps.map(|ts| ts.0), Some(628637427));
    assert_eq!((p.src_port, p.dst_port), (39540, 8080));
    assert!(p.checksum_ok);
}

#[test]
fn tcp_header_anomalies() {
    let (_, fs) = frames("ns-tcp.pcap");
    let syn = &fs[0];
    let mut d = PacketDecoder::new(&cfg_nocsum());
    // Data offset 4 (16 bytes).
    let mut f = syn.clone();
    f[46] = 0x40 | (f[46] & 0x0f);
    assert_eq!(
        dec(&mut d, LinkType::Ethernet, &f),
        (false, vec![DecodeEvent::TcpHlenTooSmall])
    );
    // Data offset 15 (60 bytes) in a 40-byte segment.
    let mut f = syn.clone();
    f[46] = 0xf0 | (f[46] & 0x0f);
    assert_eq!(
        dec(&mut d, LinkType::Ethernet, &f),
        (false, vec![DecodeEvent::TcpHlenTooSmall])
    );
    // Options of the SYN: MSS(4) SACKOK(2) TS(10) NOP WS(3). Make the MSS length 5.
    let mut f = syn.clone();
    assert_eq!(f[54], 2);
    f[55] = 5;
    let (ok, ev) = dec(&mut d, LinkType::Ethernet, &f);
    assert!(ok);
    assert_eq!(ev, vec![DecodeEvent::TcpOptInvalidLen]);
    // Too short for a TCP header.
    let mut f = syn[..14 + 20 + 10].to_vec();
    f[16..18].copy_from_slice(&30u16.to_be_bytes());
    assert_eq!(
        dec(&mut d, LinkType::Ethernet, &f),
        (false, vec![DecodeEvent::TcpPktTooSmall])
    );
}

#[test]
fn tcp_checksum_validation_switch() {
    let (_, fs) = frames("ns-tcp.pcap");
    let mut f = fs[3].clone(); // GET with payload
    let last = f.len() - 1;
    f[last] ^= 0x20;
    let mut d = PacketDecoder::new(&EngineConfig::default());
    let p = d.decode(t0(), LinkType::Ethernet, &f).expect("decoded");
    assert!(!p.checksum_ok);
    assert_eq!(d.stats().tcp.invalid_checksum, 1);
    let mut d = PacketDecoder::new(&cfg_nocsum());
    let p = d.decode(t0(), LinkType::Ethernet, &f).expect("decoded");
    assert!(p.checksum_ok);
    assert_eq!(d.stats().tcp.invalid_checksum, 0);
    // The unmodified frame passes.
    let mut d = PacketDecoder::new(&EngineConfig::default());
    assert!(
        d.decode(t0(), LinkType::Ethernet, &fs[3])
            .expect("ok")
            .checksum_ok
    );
}

#[test]
fn udp_length_anomalies() {
    let (_, fs) = frames("lo-dns.pcap");
    let mut d = PacketDecoder::new(&cfg_nocsum());
    let mut f = fs[0].clone();
    f[38..40].copy_from_slice(&4u16.to_be_bytes());
    assert_eq!(
        dec(&mut d, LinkType::Ethernet, &f),
        (false, vec![DecodeEvent::UdpHlenInvalid])
    );
    let mut f = fs[0].clone();
    f[38..40].copy_from_slice(&2000u16.to_be_bytes());
    assert_eq!(
        dec(&mut d, LinkType::Ethernet, &f),
        (false, vec![DecodeEvent::UdpLenInvalid])
    );
}

#[test]
fn vlan_tags() {
    let (_, fs) = frames("ns-vlan.pcap");
    let mut d = PacketDecoder::new(&EngineConfig::default());
    let p = d.decode(t0(), LinkType::Ethernet, &fs[0]).expect("vlan");
    assert_eq!(p.vlans(), &[100]);
    let n = fs.len() / 2;
    let p = d.decode(t0(), LinkType::Ethernet, &fs[n]).expect("qinq");
    assert_eq!(p.vlans(), &[200, 300]);
    assert_eq!((p.src_port, p.dst_port), (39540, 8080));
    // Four tags: one too many.
    let mut f = fs[n][..12].to_vec();
    for id in [1u16, 2, 3, 4] {
        f.extend_from_slice(&0x8100u16.to_be_bytes());
        f.extend_from_slice(&id.to_be_bytes());
    }
    f.extend_from_slice(&fs[n][20..]);
    assert_eq!(
        dec(&mut d, LinkType::Ethernet, &f),
        (false, vec![DecodeEvent::VlanTooManyLayers])
    );
    // Truncated tag.
    assert_eq!(
        dec(&mut d, LinkType::Ethernet, &fs[0][..16]),
        (false, vec![DecodeEvent::VlanHeaderTooSmall])
    );
}

#[test]
fn sll_and_sll2_headers() {
    let (_, fs) = frames("any-sll2.pcap");
    let mut d = PacketDecoder::new(&cfg_nocsum());
    let p = d.decode(t0(), LinkType::LinuxSll2, &fs[0]).expect("sll2");
    assert_eq!(p.dst_port, 18080);
    let (_, fs) = frames("any-sll.pcap");
    let p = d.decode(t0(), LinkType::LinuxSll, &fs[0]).expect("sll");
    assert_eq!(p.dst_port, 18080);
    assert_eq!(
        dec(&mut d, LinkType::LinuxSll2, &fs[0][..19]),
        (false, vec![DecodeEvent::Sll2PktTooSmall])
    );
}

/// The IPv6 SYN of lo-http.pcap with extension headers inserted before TCP.
fn ipv6_with_ext(exts: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let (_, fs) = frames("lo-http.pcap");
    let syn = fs
        .iter()
        .find(|f| f[12..14] == [0x86, 0xdd])
        .expect("v6 syn");
    let mut out = syn[..54].to_vec();
    // exts: (this header's type, body with next-header byte placeholder at [0]).
    let mut next_types: Vec<u8> = exts.iter().skip(1).map(|e| e.0).collect();
    next_types.push(6);
    let mut added = 0;
    for (i, (_, body)) in exts.iter().enumerate() {
        let mut b = body.clone();
        b[0] = next_types[i];
        added += b.len();
        out.extend_from_slice(&b);
    }
    out.extend_from_slice(&syn[54..]);
    out[20] = exts[0].0;
    let plen = u16::from_be_bytes([out[18], out[19]]) + added as u16;
    out[18..20].copy_from_slice(&plen.to_be_bytes());
    out
}

#[test]
fn ipv6_extension_headers() {
    let hbh = vec![0, 0, 1, 4, 0, 0, 0, 0]; // PadN
    let dst = vec![0, 0, 1, 4, 0, 0, 0, 0];
    let mut d = PacketDecoder::new(&cfg_nocsum());
    let f = ipv6_with_ext(&[(0, hbh.clone()), (60, dst.clone())]);
    let p = d.decode(t0(), LinkType::Ethernet, &f).expect("v6 + ext");
    assert_eq!((p.proto, p.dst_port), (6, 18080));
    assert!(d.events().is_empty());
    // Hop-by-hop after a destination options header.
    let f = ipv6_with_ext(&[(60, dst.clone()), (0, hbh.clone())]);
    let (ok, ev) = dec(&mut d, LinkType::Ethernet, &f);
    assert!(ok);
    assert_eq!(ev, vec![DecodeEvent::Ipv6ExthdrDuplHh]);
    // Fragment header with offset 0 and M=0: useless, packet still decoded.
    let fh = vec![0, 0, 0, 0, 0, 0, 0, 1];
    let f = ipv6_with_ext(&[(44, fh)]);
    let (ok, ev) = dec(&mut d, LinkType::Ethernet, &f);
    assert!(ok);
    assert_eq!(ev, vec![DecodeEvent::Ipv6ExthdrUselessFh]);
    // Extension header length past the packet.
    let f = ipv6_with_ext(&[(60, vec![0, 200, 1, 4, 0, 0, 0, 0])]);
    assert_eq!(
        dec(&mut d, LinkType::Ethernet, &f),
        (false, vec![DecodeEvent::Ipv6TruncExthdr])
    );
}

#[test]
fn geneve_inner_packet() {
    let (_, fs) = frames("ns-geneve.pcap");
    let mut d = PacketDecoder::new(&EngineConfig::default());
    let p = d.decode(t0(), LinkType::Ethernet, &fs[0]).expect("geneve");
    assert!(p.tunneled);
    assert_eq!((p.proto, p.src_port, p.dst_port), (6, 39540, 8080));
    assert_eq!(p.flow_bytes as usize, fs[0].len() - 50);
    // GENEVE version 1 is unknown: the outer UDP packet stands, with an event.
    let mut f = fs[0].clone();
    f[42] |= 0x40;
    let p = d.decode(t0(), LinkType::Ethernet, &f).expect("outer");
    assert!(!p.tunneled);
    assert_eq!((p.proto, p.dst_port), (17, 6081));
    assert_eq!(d.events(), &[DecodeEvent::GenevePktTooSmall]);
    // Unknown protocol type.
    let mut f = fs[0].clone();
    f[44..46].copy_from_slice(&0x1234u16.to_be_bytes());
    let p = d.decode(t0(), LinkType::Ethernet, &f).expect("outer");
    assert!(!p.tunneled);
    assert_eq!(d.events(), &[DecodeEvent::GeneveUnknownPayloadType]);
}

/// The three fragments of the first IPv4 echo request and the three of the IPv6 one.
fn frag_sets() -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let (_, fs) = frames("ns-frag.pcap");
    (fs[0..3].to_vec(), fs[8..11].to_vec())
}

fn feed(d: &mut PacketDecoder, fs: &[&Vec<u8>]) -> Option<(usize, Vec<u8>, Vec<DecodeEvent>)> {
    let mut evs = Vec::new();
    for (i, f) in fs.iter().enumerate() {
        let r = d
            .decode(t0(), LinkType::Ethernet, f)
            .map(|p| p.payload.to_vec());
        evs.extend_from_slice(d.events());
        if let Ok(payload) = r {
            return Some((i, payload, evs));
        }
    }
    None
}

#[test]
fn ipv4_fragments_in_order_and_out_of_order() {
    let (v4, _) = frag_sets();
    let mut d = PacketDecoder::new(&EngineConfig::default());
    let (i, in_order, ev) = feed(&mut d, &[&v4[0], &v4[1], &v4[2]]).expect("reassembled");
    assert_eq!((i, ev.len()), (2, 0));
    assert_eq!(in_order.len(), 3000, "ping -s 3000 payload");
    let mut d = PacketDecoder::new(&EngineConfig::default());
    let (i, reversed, _) = feed(&mut d, &[&v4[2], &v4[1], &v4[0]]).expect("reassembled");
    assert_eq!(i, 2);
    assert_eq!(reversed, in_order);
    assert_eq!(d.stats().defrag.ipv4_reassembled, 1);
    assert_eq!(d.stats().checksum.icmpv4, 0);
}

#[test]
fn ipv4_fragment_overlap_with_different_data_discards_the_datagram() {
    let (v4, _) = frag_sets();
    let mut evil = v4[1].clone();
    let n = evil.len();
    for b in &mut evil[n - 100..] {
        *b = b'X';
    }
    // The first copy of the second fragment says one thing, the retransmission another: no
    // reading of the datagram is delivered (neither the first copy nor the second).
    let mut d = PacketDecoder::new(&cfg_nocsum());
    assert!(feed(&mut d, &[&v4[0], &evil, &v4[1], &v4[2]]).is_none());
    assert_eq!(
        d.stats().decoder.event[DecodeEvent::Ipv4FragOverlap as usize],
        1
    );
    assert_eq!(d.stats().defrag.ipv4_reassembled, 0);
    // Its later fragments are dropped too (the third, then even a complete clean set with
    // the same id).
    assert!(feed(&mut d, &[&v4[0], &v4[1], &v4[2]]).is_none());
    assert_eq!(
        d.stats().decoder.event[DecodeEvent::Ipv4FragIgnored as usize],
        4
    );
    assert_eq!(
        d.stats().decoder.invalid,
        5,
        "each dropped fragment is invalid"
    );
}

#[test]
fn ipv4_fragment_overlap_with_the_same_data_is_a_retransmission() {
    let (v4, _) = frag_sets();
    let mut d = PacketDecoder::new(&cfg_nocsum());
    let (_, clean, _) = feed(&mut d, &[&v4[0], &v4[1], &v4[2]]).expect("clean");
    let mut d = PacketDecoder::new(&cfg_nocsum());
    let (_, payload, ev) = feed(&mut d, &[&v4[0], &v4[1], &v4[1], &v4[2]]).expect("reassembled");
    assert_eq!(payload, clean);
    assert_eq!(ev, vec![DecodeEvent::Ipv4FragOverlap]);
    // A partial overlap repeating the bytes held is fine as well.
    let data: Vec<u8> = (0u8..32).collect();
    let mut d = PacketDecoder::new(&cfg_nocsum());
    let (_, payload, ev) = feed(
        &mut d,
        &[
            &v4_frag(9, 0, true, 253, &data[..16]),
            &v4_frag(9, 8, true, 253, &data[8..24]),
            &v4_frag(9, 24, false, 253, &data[24..]),
        ],
    )
    .expect("reassembled");
    assert_eq!(payload, data);
    assert_eq!(ev, vec![DecodeEvent::Ipv4FragOverlap]);
}

#[test]
fn ipv6_fragment_overlap_with_different_data_discards_the_datagram() {
    let data: Vec<u8> = (0u8..32).collect();
    let mut other = data.clone();
    other[12] = b'!';
    let mut d = PacketDecoder::new(&cfg_nocsum());
    let r = feed(
        &mut d,
        &[
            &v6_frag(9, 0, true, 253, &data[..16]),
            &v6_frag(9, 8, true, 253, &other[8..24]),
            &v6_frag(9, 24, false, 253, &data[24..]),
            &v6_frag(9, 8, true, 253, &data[8..24]),
        ],
    );
    assert!(r.is_none(), "RFC 5722: the whole datagram is discarded");
    assert_eq!(
        d.stats().decoder.event[DecodeEvent::Ipv6FragOverlap as usize],
        1
    );
    // With the same bytes it reassembles.
    let mut d = PacketDecoder::new(&cfg_nocsum());
    let (_, payload, _) = feed(
        &mut d,
        &[
            &v6_frag(9, 0, true, 253, &data[..16]),
            &v6_frag(9, 8, true, 253, &data[8..24]),
            &v6_frag(9, 24, false, 253, &data[24..]),
        ],
    )
    .expect("reassembled");
    assert_eq!(payload, data);
}

/// Ethernet + IPv4 fragment 10.9.0.1 -> 10.9.0.2: identification `id`, payload byte offset
/// `off` (multiple of 8), MF flag `more`, protocol `proto`.
fn v4_frag(id: u16, off: usize, more: bool, proto: u8, data: &[u8]) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    let total = (20 + data.len()) as u16;
    let offm = (off / 8) as u16 | if more { 0x2000 } else { 0 };
    f.extend_from_slice(&[0x45, 0]);
    f.extend_from_slice(&total.to_be_bytes());
    f.extend_from_slice(&id.to_be_bytes());
    f.extend_from_slice(&offm.to_be_bytes());
    f.extend_from_slice(&[64, proto, 0, 0, 10, 9, 0, 1, 10, 9, 0, 2]);
    f.extend_from_slice(data);
    fix_ip_csum(&mut f);
    f
}

/// Ethernet + IPv6 fd00::1 -> fd00::2 + Fragment header (identification `id`, offset `off`,
/// M flag `more`, next header `next`) + `data`.
fn v6_frag(id: u32, off: usize, more: bool, next: u8, data: &[u8]) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x86, 0xdd];
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&((8 + data.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[44, 64]);
    let mut src = [0u8; 16];
    src[0] = 0xfd;
    let mut dst = src;
    src[15] = 1;
    dst[15] = 2;
    f.extend_from_slice(&src);
    f.extend_from_slice(&dst);
    let offm = ((off / 8) as u16 * 8) | u16::from(more);
    f.extend_from_slice(&[next, 0]);
    f.extend_from_slice(&offm.to_be_bytes());
    f.extend_from_slice(&id.to_be_bytes());
    f.extend_from_slice(data);
    f
}

#[test]
fn ipv4_fragments_beyond_the_last_fragments_end_drop_the_datagram_without_a_panic() {
    // Offsets 0, 24 and 16 (all MF), then the last fragment at 8 saying the datagram is 16
    // bytes long: two fragments lie beyond its end. Before: a slice index panic.
    let mut d = PacketDecoder::new(&cfg_nocsum());
    let fs = [
        v4_frag(7, 0, true, 17, &[b'a'; 8]),
        v4_frag(7, 24, true, 17, &[b'b'; 8]),
        v4_frag(7, 16, true, 17, &[b'c'; 8]),
        v4_frag(7, 8, false, 17, &[b'd'; 8]),
    ];
    for f in &fs[..3] {
        assert_eq!(
            d.decode(t0(), LinkType::Ethernet, f).err(),
            Some(NoPacket::FragmentHeld)
        );
    }
    assert_eq!(
        d.decode(t0(), LinkType::Ethernet, &fs[3]).err(),
        Some(NoPacket::Invalid)
    );
    assert_eq!(d.events(), &[DecodeEvent::Ipv4FragIgnored]);
    // The datagram is gone: what would complete it now is dropped as well.
    assert!(feed(&mut d, &[&fs[0], &fs[3]]).is_none());
    assert_eq!(d.stats().defrag.ipv4_reassembled, 0);
    // The other order: the last fragment first, then one beyond its end.
    let mut d = PacketDecoder::new(&cfg_nocsum());
    assert!(feed(&mut d, &[&fs[3], &fs[2], &fs[0]]).is_none());
    assert_eq!(
        d.stats().decoder.event[DecodeEvent::Ipv4FragIgnored as usize],
        2
    );
}

#[test]
fn ipv6_fragments_beyond_the_last_fragments_end_drop_the_datagram_without_a_panic() {
    let mut d = PacketDecoder::new(&cfg_nocsum());
    let fs = [
        v6_frag(7, 0, true, 17, &[b'a'; 8]),
        v6_frag(7, 24, true, 17, &[b'b'; 8]),
        v6_frag(7, 16, true, 17, &[b'c'; 8]),
        v6_frag(7, 8, false, 17, &[b'd'; 8]),
    ];
    assert!(feed(&mut d, &[&fs[0], &fs[1], &fs[2], &fs[3]]).is_none());
    assert_eq!(d.events(), &[DecodeEvent::Ipv6FragIgnored]);
    assert!(feed(&mut d, &[&fs[0], &fs[3]]).is_none());
    assert_eq!(d.stats().defrag.ipv6_reassembled, 0);
}

/// The IPv6 SYN of lo-http.pcap as two fragments whose fragmentable part is `exts` (each an
/// 8-byte destination options header; next-header bytes filled in) and then the TCP segment.
fn ipv6_syn_fragmented_behind(exts: usize) -> Vec<Vec<u8>> {
    let (_, fs) = frames("lo-http.pcap");
    let syn = fs
        .iter()
        .find(|f| f[12..14] == [0x86, 0xdd])
        .expect("v6 syn");
    let mut part = Vec::new();
    for i in 0..exts {
        let next = if i + 1 == exts { 6 } else { 60 };
        part.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]);
    }
    part.extend_from_slice(&syn[54..]);
    let first_next = if exts == 0 { 6 } else { 60 };
    let cut = part.len() / 16 * 8;
    [(0, true, &part[..cut]), (cut, false, &part[cut..])]
        .iter()
        .map(|&(off, more, data)| {
            let mut f = syn[..54].to_vec();
            f[20] = 44;
            f[18..20].copy_from_slice(&((8 + data.len()) as u16).to_be_bytes());
            let offm = ((off / 8) as u16 * 8) | u16::from(more);
            f.extend_from_slice(&[first_next, 0]);
            f.extend_from_slice(&offm.to_be_bytes());
            f.extend_from_slice(&0x5e15_u32.to_be_bytes());
            f.extend_from_slice(data);
            f
        })
        .collect()
}

#[test]
fn ipv6_destination_options_behind_the_fragment_header_do_not_hide_the_transport() {
    let mut d = PacketDecoder::new(&cfg_nocsum());
    let fs = ipv6_syn_fragmented_behind(1);
    assert_eq!(
        d.decode(t0(), LinkType::Ethernet, &fs[0]).err(),
        Some(NoPacket::FragmentHeld)
    );
    let p = d
        .decode(t0(), LinkType::Ethernet, &fs[1])
        .expect("reassembled");
    assert!(p.reassembled);
    assert_eq!(p.proto, 6, "the transport, not destination options (60)");
    assert!(matches!(p.transport, Transport::Tcp(t) if t.flags == tcp_flags::SYN));
    assert_eq!(p.dst_port, 18080);
    assert!(p.payload.is_empty());
    assert!(d.events().is_empty(), "{:?}", d.events());
    // Two of them (RFC 8200 allows destination options twice) still lead to TCP.
    let fs = ipv6_syn_fragmented_behind(2);
    let (_, _, ev) = feed(&mut d, &[&fs[0], &fs[1]]).expect("reassembled");
    assert!(ev.is_empty());
    // A chain longer than the walk allows is invalid, fragmented or not.
    let fs = ipv6_syn_fragmented_behind(8);
    assert!(feed(&mut d, &[&fs[0], &fs[1]]).is_none());
    assert_eq!(d.events(), &[DecodeEvent::Ipv6ExthdrTooMany]);
    let dst = vec![0, 0, 1, 4, 0, 0, 0, 0];
    let f = ipv6_with_ext(&vec![(60, dst.clone()); 9]);
    assert_eq!(
        dec(&mut d, LinkType::Ethernet, &f),
        (false, vec![DecodeEvent::Ipv6ExthdrTooMany])
    );
    let f = ipv6_with_ext(&vec![(60, dst); 8]);
    assert!(dec(&mut d, LinkType::Ethernet, &f).0, "8 headers are fine");
}

/// Ethernet + IPv4 10.1.0.1 -> 10.1.0.2 + UDP 40000 -> `dport` (checksum 0) + `payload`.
fn udp_frame(dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    f.extend_from_slice(&[0x45, 0]);
    f.extend_from_slice(&((28 + payload.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 1, 0x40, 0, 64, 17, 0, 0, 10, 1, 0, 1, 10, 1, 0, 2]);
    f.extend_from_slice(&40000u16.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    fix_ip_csum(&mut f);
    f
}

/// `inner` (an Ethernet frame) in VXLAN (VNI 42) over UDP 4789.
fn vxlan(inner: &[u8]) -> Vec<u8> {
    let mut p = vec![0x08, 0, 0, 0, 0, 0, 42, 0];
    p.extend_from_slice(inner);
    udp_frame(4789, &p)
}

/// `inner` (an Ethernet frame) in GENEVE (Ethernet payload, VNI 42) over UDP 6081.
fn geneve(inner: &[u8]) -> Vec<u8> {
    let mut p = vec![0, 0, 0x65, 0x58, 0, 0, 42, 0];
    p.extend_from_slice(inner);
    udp_frame(6081, &p)
}

#[test]
fn a_malformed_inner_packet_of_a_tunnel_is_a_decode_error_not_the_outer_packet() {
    let (_, fs) = frames("ns-tcp.pcap");
    let syn = &fs[0];
    // The inner IPv4 header cut after 10 bytes.
    let truncated = &syn[..14 + 10];
    for (wrap, port) in [(vxlan as fn(&[u8]) -> Vec<u8>, 4789), (geneve, 6081)] {
        let mut d = PacketDecoder::new(&cfg_nocsum());
        let valid = wrap(syn);
        let p = d.decode(t0(), LinkType::Ethernet, &valid).expect("valid");
        assert!(p.tunneled);
        assert_eq!((p.proto, p.dst_port), (6, 8080), "port {port}");
        assert_eq!(
            dec(&mut d, LinkType::Ethernet, &wrap(truncated)),
            (false, vec![DecodeEvent::Ipv4PktTooSmall]),
            "port {port}: no fallback to the outer UDP packet"
        );
        // An inner IPv4 total length beyond the bytes there.
        let mut long = syn.clone();
        long[16..18].copy_from_slice(&1400u16.to_be_bytes());
        fix_ip_csum(&mut long);
        assert_eq!(
            dec(&mut d, LinkType::Ethernet, &wrap(&long)),
            (false, vec![DecodeEvent::Ipv4TruncPkt])
        );
        // An inner Ethernet frame too short for its header.
        assert_eq!(
            dec(&mut d, LinkType::Ethernet, &wrap(&syn[..10])),
            (false, vec![DecodeEvent::EthernetPktTooSmall])
        );
        // Nested deeper than the decoder goes: the innermost flow would pass unseen.
        let nested3 = wrap(&wrap(&wrap(syn)));
        let p = d
            .decode(t0(), LinkType::Ethernet, &nested3)
            .expect("3 deep");
        assert_eq!((p.proto, p.tunnel_depth), (6, 3));
        assert_eq!(
            dec(&mut d, LinkType::Ethernet, &wrap(&nested3)),
            (false, vec![DecodeEvent::TooManyLayers])
        );
    }
}

#[test]
fn fragment_limits() {
    let (v4, v6) = frag_sets();
    // Per-datagram fragment cap.
    let cfg = EngineConfig {
        defrag: DefragConfig {
            max_frags_per_datagram: 2,
            ..DefragConfig::default()
        },
        ..EngineConfig::default()
    };
    let mut d = PacketDecoder::new(&cfg);
    assert!(feed(&mut d, &[&v4[0], &v4[1], &v4[2]]).is_none());
    assert_eq!(
        d.stats().decoder.event[DecodeEvent::Ipv4FragIgnored as usize],
        1
    );
    // Byte budget.
    let cfg = EngineConfig {
        defrag: DefragConfig {
            memcap: 2000,
            ..DefragConfig::default()
        },
        ..EngineConfig::default()
    };
    let mut d = PacketDecoder::new(&cfg);
    assert!(feed(&mut d, &[&v4[0], &v4[1], &v4[2]]).is_none());
    assert!(d.stats().defrag.memcap_exception >= 1);
    // Tracker cap: the IPv6 datagram cannot start while the IPv4 one is pending.
    let cfg = EngineConfig {
        defrag: DefragConfig {
            max_trackers: 1,
            ..DefragConfig::default()
        },
        ..EngineConfig::default()
    };
    let mut d = PacketDecoder::new(&cfg);
    assert!(feed(&mut d, &[&v4[0], &v6[0]]).is_none());
    assert_eq!(d.stats().defrag.max_trackers_reached, 1);
    // Timeout: the first fragment expires, the rest cannot complete it.
    let mut d = PacketDecoder::new(&EngineConfig::default());
    assert!(feed(&mut d, &[&v4[0]]).is_none());
    d.inner
        .defrag
        .expire(t0().add_secs(61), &mut d.stats.defrag);
    assert_eq!(d.stats().defrag.tracker_timeout, 1);
    assert!(feed(&mut d, &[&v4[1], &v4[2]]).is_none());
}

#[test]
fn ipv6_fragments() {
    let (_, v6) = frag_sets();
    let mut d = PacketDecoder::new(&EngineConfig::default());
    let (i, payload, ev) = feed(&mut d, &[&v6[1], &v6[0], &v6[2]]).expect("reassembled");
    assert_eq!((i, ev.len()), (2, 0));
    assert_eq!(payload.len(), 3000);
    assert_eq!(d.stats().defrag.ipv6_reassembled, 1);
    assert_eq!(d.stats().checksum.icmpv6, 0);
    // A non-final fragment whose length is not a multiple of 8.
    let mut f = v6[0].clone();
    f.pop();
    let plen = u16::from_be_bytes([f[18], f[19]]) - 1;
    f[18..20].copy_from_slice(&plen.to_be_bytes());
    let mut d = PacketDecoder::new(&EngineConfig::default());
    assert_eq!(
        dec(&mut d, LinkType::Ethernet, &f),
        (false, vec![DecodeEvent::Ipv6FragInvalidLength])
    );
}

#[test]
fn geneve_with_gwlb_style_options_and_raw_ipv4_inner() {
    // AWS Gateway Load Balancer hands the original IP packet (protocol type 0x0800, no inner
    // Ethernet) with three TLVs of class 0x0108: 8-byte GWLBE/VPCE id, 8-byte attachment id,
    // 4-byte flow cookie (RFC 8926 option format: class, type, length in 4-byte words).
    let (_, fs) = frames("ns-geneve.pcap");
    let outer = &fs[3]; // GET, client -> server
    let inner_eth = &outer[14 + 20 + 8 + 8..];
    let inner_ip = &inner_eth[14..];
    let mut opts = Vec::new();
    for (typ, len) in [(1u8, 8usize), (2, 8), (3, 4)] {
        opts.extend_from_slice(&0x0108u16.to_be_bytes());
        opts.push(typ);
        opts.push((len / 4) as u8);
        opts.extend(std::iter::repeat_n(0xab, len));
    }
    assert_eq!(opts.len(), 32);
    let mut gnv = vec![(opts.len() / 4) as u8, 0, 0x08, 0x00, 0, 0, 42, 0];
    gnv.extend_from_slice(&opts);
    gnv.extend_from_slice(inner_ip);
    let mut f = outer[..14 + 20].to_vec();
    let udp_len = (8 + gnv.len()) as u16;
    f.extend_from_slice(&outer[34..36]); // source port
    f.extend_from_slice(&6081u16.to_be_bytes());
    f.extend_from_slice(&udp_len.to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(&gnv);
    let total = (20 + udp_len) as u16;
    f[16..18].copy_from_slice(&total.to_be_bytes());
    fix_ip_csum(&mut f);
    let mut d = PacketDecoder::new(&EngineConfig::default());
    let p = d.decode(t0(), LinkType::Ethernet, &f).expect("decoded");
    assert!(p.tunneled);
    assert_eq!((p.proto, p.src_port, p.dst_port), (6, 39540, 8080));
    assert!(p.payload.starts_with(b"GET /index.html"));
    assert!(p.checksum_ok, "inner TCP checksum verified");
    assert_eq!(p.flow_bytes as usize, inner_ip.len());
    assert!(d.events().is_empty(), "{:?}", d.events());
    // Options claiming more words than the packet has.
    let mut bad = f.clone();
    bad[14 + 20 + 8] = 0x3f;
    let p = d.decode(t0(), LinkType::Ethernet, &bad).map(|p| p.tunneled);
    assert!(matches!(p, Ok(false)), "outer UDP packet stands");
    assert_eq!(d.events(), &[DecodeEvent::GenevePktTooSmall]);
}

#[test]
fn random_fragment_soup_never_panics_and_delivers_only_what_every_held_fragment_says() {
    // Random offsets, lengths, MF flags and ids; most fragments carry `offset % 251` at each
    // offset (honest overlaps agree), one in 32 lies (0xee). Whatever is delivered must agree
    // with every fragment of its datagram that was held: no reading is picked among several.
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut d = PacketDecoder::new(&cfg_nocsum());
    // (IPv6?, id) -> the fragments held for that datagram: (offset, bytes).
    type Held = Vec<(usize, Vec<u8>)>;
    let mut held: std::collections::HashMap<(bool, u16), Held> = Default::default();
    let mut delivered = 0;
    for _ in 0..50_000 {
        let r = next();
        let v6 = (r >> 40) % 2 == 0;
        let id = (r % 1024) as u16;
        // Each datagram has its length; one fragment in 32 lies about it.
        let total = 48 + usize::from(id % 5) * 8 + usize::from(id % 3);
        let off = ((r >> 8) as usize % total.div_ceil(8)) * 8;
        let more = (r >> 24) % 3 != 0;
        let stretch = if (r >> 48) % 32 == 0 { 16 } else { 0 };
        let len = if more {
            (8 * (1 + (r >> 16) as usize % 3)).min((total - off) / 8 * 8) + stretch
        } else {
            total - off + stretch
        };
        if len == 0 || (off == 0 && !more) {
            continue; // not a fragment
        }
        let liar = (r >> 32) % 32 == 0;
        let data: Vec<u8> = (off..off + len)
            .map(|i| if liar { 0xee } else { (i % 251) as u8 })
            .collect();
        let f = if v6 {
            v6_frag(u32::from(id), off, more, 253, &data)
        } else {
            v4_frag(id, off, more, 253, &data)
        };
        let frags = held.entry((v6, id)).or_default();
        match d.decode(t0(), LinkType::Ethernet, &f) {
            Ok(p) => {
                delivered += 1;
                frags.push((off, data));
                for (o, bytes) in frags.drain(..) {
                    assert_eq!(p.payload.get(o..o + bytes.len()), Some(&bytes[..]));
                }
            }
            Err(NoPacket::FragmentHeld) => frags.push((off, data)),
            Err(_) => {}
        }
    }
    assert!(delivered > 1000, "only {delivered} datagrams");
}
