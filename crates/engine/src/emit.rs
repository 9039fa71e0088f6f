//! The packets a `reject` sends: TCP resets and ICMP port unreachables, as raw IP packets.
//!
//! Suricata's `reject` (= `rejectsrc`) answers the sender of the offending packet: a TCP RST
//! for TCP ([`tcp_rst_to_sender`]), an ICMP port unreachable for anything else
//! ([`icmp_unreachable`]). `rejectdst` resets the receiver instead ([`tcp_rst_to_receiver`]),
//! `rejectboth` does both. Which packets to send is the caller's decision; this module only
//! builds them, from an [`Offending`] packet description, with no I/O.
//!
//! Every builder returns a complete IPv4 or IPv6 packet (same family as the offending packet,
//! no link-layer header) with correct IP, TCP and ICMP checksums (etherparse computes them), or
//! `None` when no such packet may be sent (the rules are on each function). The reply's
//! TTL / hop limit is [`REPLY_TTL`]; IPv4 replies have identification 0 and DF set.
//!
//! Tunnels: [`Offending::from_packet`] describes the innermost packet, and the reply is a bare
//! inner packet; a driver that wants it back inside the tunnel must encapsulate it itself.

use std::net::IpAddr;

use etherparse::{
    icmpv4, icmpv6, Icmpv4Type, Icmpv6Type, IpHeaders, IpSlice, Ipv6ExtensionSlice, PacketBuilder,
    PacketBuilderStep,
};

use crate::decode::{tcp_flags, Packet, TcpInfo, Transport};

/// TTL (IPv4) / hop limit (IPv6) of every packet built here: Linux's default, so that the
/// reply does not stand out from the host it impersonates by an odd TTL.
pub const REPLY_TTL: u8 = 64;

/// Most bytes an ICMPv4 error may take in total, quote included (RFC 1812 4.3.2.3).
const ICMPV4_MAX: usize = 576;
/// Most bytes an ICMPv6 error may take in total, quote included: the IPv6 minimum MTU
/// (RFC 4443 2.4(c)).
const ICMPV6_MAX: usize = 1280;
/// IPv4 header (no options) + ICMP header: the room taken before the quote.
const ICMPV4_OVERHEAD: usize = 20 + 8;
/// IPv6 header (no extension headers) + ICMPv6 header.
const ICMPV6_OVERHEAD: usize = 40 + 8;

/// The packet a `reject` answers: what the reply builders need to know about it.
///
/// Build it with [`Offending::from_packet`] from a decoded [`Packet`], or by hand in tests.
/// `src`/`dst`/ports are as the offending packet travelled (its sender is `src`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offending<'a> {
    /// Sender of the offending packet (the address `rejectsrc` answers).
    pub src: IpAddr,
    /// Receiver of the offending packet.
    pub dst: IpAddr,
    /// Source port (0 without ports).
    pub src_port: u16,
    /// Destination port (0 without ports).
    pub dst_port: u16,
    /// IP protocol number of the transport (6 TCP, 17 UDP, ...).
    pub proto: u8,
    /// The TCP header facts (sequence, acknowledgment, flags), for a TCP segment; `None`
    /// otherwise. The resets need them; without them no reset is built.
    pub tcp: Option<TcpInfo>,
    /// Length of the TCP payload (sequence space the segment takes besides SYN and FIN).
    pub payload_len: usize,
    /// The offending packet from its innermost IP header to the end of the datagram
    /// ([`Packet::ip`]). Quoted by [`icmp_unreachable`] and read for its fragment offset and
    /// ICMP type; an empty slice means no ICMP error can be built.
    pub ip: &'a [u8],
}

impl<'a> Offending<'a> {
    /// Describes a decoded packet (its innermost layer) for the reply builders.
    pub fn from_packet(p: &Packet<'a>) -> Self {
        Offending {
            src: p.src,
            dst: p.dst,
            src_port: p.src_port,
            dst_port: p.dst_port,
            proto: p.proto,
            tcp: match p.transport {
                Transport::Tcp(t) => Some(t),
                _ => None,
            },
            payload_len: p.payload.len(),
            ip: p.ip,
        }
    }
}

/// The TCP reset that makes the **sender** of the offending segment (`rejectsrc`) abort.
///
/// Goes from the offending segment's destination address and port to its source (addresses
/// and ports swapped), window 0, TTL [`REPLY_TTL`]. Sequence numbers follow RFC 9293 3.10.7.1
/// ("reset generation"), because the sender's stack accepts a reset only at the exact
/// sequence number it expects next from its peer (Linux, RFC 5961 3.2: `seq == rcv_nxt`,
/// anything else in the window only draws a challenge ACK):
/// * offending segment with ACK: `seq = its ack`, flags RST. Its ACK field is exactly the
///   sender's `rcv_nxt` when it sent the segment ("if the incoming segment has an ACK field,
///   the reset takes its sequence number from the ACK field").
/// * without ACK (a SYN, typically): `seq = 0`, flags RST|ACK,
///   `ack = its seq + payload_len + SYN + FIN` (the sequence space it used). A sender in
///   SYN-SENT has no `rcv_nxt` yet and checks only that the ACK acknowledges its SYN.
///
/// `None` when: not TCP (`proto != 6` or `tcp` is `None`), the offending segment is itself a
/// RST (RFC 9293: a reset is never answered), the two addresses are of different families, or
/// either address is not unicast (unspecified, multicast, IPv4 broadcast): TCP has no such
/// peers, so such a segment is forged or broken and a reply would go nowhere useful.
pub fn tcp_rst_to_sender(p: &Offending<'_>) -> Option<Vec<u8>> {
    let t = resettable(p)?;
    let (seq, ack) = if t.flags & tcp_flags::ACK != 0 {
        (t.ack, None)
    } else {
        (0, Some(seq_end(p, &t)))
    };
    build_rst(p.dst, p.src, p.dst_port, p.src_port, seq, ack)
}

/// The TCP reset that makes the **receiver** of the offending segment (`rejectdst`) abort.
///
/// Keeps the offending segment's addresses and ports (it impersonates the sender), window 0,
/// TTL [`REPLY_TTL`]. A reject drops the offending segment inline, so the receiver never saw
/// it and still expects exactly its sequence number (`rcv_nxt`, which Linux requires a reset
/// to carry exactly, RFC 5961 3.2):
/// * `seq = its seq`; with ACK set: flags RST|ACK and `ack = its ack` (the receiver in
///   SYN-SENT, answered by a dropped SYN-ACK, accepts a reset only if it acknowledges its
///   SYN, which this ack does);
/// * without ACK: flags RST, ack 0 (its ack field carries nothing to echo).
///
/// `None` for a SYN without ACK: the dropped SYN was the connection's start, so the receiver
/// has no connection to reset (and a RST to a listener is ignored). Otherwise `None` as for
/// [`tcp_rst_to_sender`].
pub fn tcp_rst_to_receiver(p: &Offending<'_>) -> Option<Vec<u8>> {
    let t = resettable(p)?;
    if t.flags & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::SYN {
        return None;
    }
    let ack = (t.flags & tcp_flags::ACK != 0).then_some(t.ack);
    build_rst(p.src, p.dst, p.src_port, p.dst_port, t.seq, ack)
}

/// The ICMP "port unreachable" error sent to the sender of the offending packet: ICMPv4
/// type 3 code 3, or ICMPv6 type 1 code 4 for IPv6.
///
/// From the offending packet's destination to its source, TTL / hop limit [`REPLY_TTL`],
/// quoting [`Offending::ip`] from its IP header on: as much as fits in 576 bytes in total for
/// ICMPv4 (RFC 1812 4.3.2.3), 1280 for ICMPv6 (RFC 4443 2.4(c)). The sender's stack matches the
/// quoted header and transport ports against its socket, so the quote is the packet as sent.
///
/// `None` (RFC 1812 4.3.2.7, RFC 1122 3.2.2, RFC 4443 2.4(e)) when the offending packet is:
/// * itself an ICMP error (ICMPv4 types 3, 4, 5, 11, 12; ICMPv6 types below 128): errors
///   about errors can loop. To be safe, an ICMPv4 message is answered only if its type is
///   known to be a query (0, 8, 13 to 18), and an ICMP message whose type cannot be read not
///   at all;
/// * addressed to a multicast or broadcast destination (IPv4 limited broadcast; a directed
///   broadcast cannot be told from the addresses alone, the caller must know its subnets);
/// * from a source that names no single host (unspecified, multicast, broadcast);
/// * a non-first fragment (it has no transport header to quote; the first fragment's reject
///   answers for the datagram);
/// * of unknown shape: `ip` empty or not an IP packet of the family of `src`/`dst`.
pub fn icmp_unreachable(p: &Offending<'_>) -> Option<Vec<u8>> {
    if !unicast(p.src) || !unicast(p.dst) {
        return None;
    }
    let ip = IpSlice::from_slice(p.ip).ok()?;
    if non_first_fragment(&ip) {
        return None;
    }
    let payload = ip.payload();
    let icmp_type = || payload.payload.first().copied();
    let mut out = Vec::new();
    match (p.dst, p.src, &ip) {
        (IpAddr::V4(from), IpAddr::V4(to), IpSlice::Ipv4(_)) => {
            if payload.ip_number.0 == 1 && !matches!(icmp_type()?, 0 | 8 | 13..=18) {
                // Errors (3, 4, 5, 11, 12) and types we do not know: stay silent.
                return None;
            }
            let quote = &p.ip[..p.ip.len().min(ICMPV4_MAX - ICMPV4_OVERHEAD)];
            PacketBuilder::ipv4(from.octets(), to.octets(), REPLY_TTL)
                .icmpv4(Icmpv4Type::DestinationUnreachable(
                    icmpv4::DestUnreachableHeader::Port,
                ))
                .write(&mut out, quote)
                .ok()?;
        }
        (IpAddr::V6(from), IpAddr::V6(to), IpSlice::Ipv6(_)) => {
            if payload.ip_number.0 == 58 && icmp_type()? < 128 {
                return None;
            }
            let quote = &p.ip[..p.ip.len().min(ICMPV6_MAX - ICMPV6_OVERHEAD)];
            PacketBuilder::ipv6(from.octets(), to.octets(), REPLY_TTL)
                .icmpv6(Icmpv6Type::DestinationUnreachable(
                    icmpv6::DestUnreachableCode::Port,
                ))
                .write(&mut out, quote)
                .ok()?;
        }
        _ => return None,
    }
    Some(out)
}

/// The TCP facts of a segment a reset may answer (see [`tcp_rst_to_sender`]).
fn resettable(p: &Offending<'_>) -> Option<TcpInfo> {
    let t = p.tcp.filter(|_| p.proto == 6)?;
    if t.flags & tcp_flags::RST != 0 || !unicast(p.src) || !unicast(p.dst) {
        return None;
    }
    Some(t)
}

/// The sequence number just after the offending segment: SYN and FIN each take one.
fn seq_end(p: &Offending<'_>, t: &TcpInfo) -> u32 {
    let flags = u32::from(t.flags & tcp_flags::SYN != 0) + u32::from(t.flags & tcp_flags::FIN != 0);
    // Sequence arithmetic is mod 2^32; a payload is far below 4 GiB, truncation is the intent.
    t.seq.wrapping_add(p.payload_len as u32).wrapping_add(flags)
}

/// True for an address a single host can have (what may be answered or impersonated).
fn unicast(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(a) => !(a.is_unspecified() || a.is_multicast() || a.is_broadcast()),
        IpAddr::V6(a) => !(a.is_unspecified() || a.is_multicast()),
    }
}

/// True if the packet is a fragment other than the first (offset > 0).
fn non_first_fragment(ip: &IpSlice<'_>) -> bool {
    match ip {
        IpSlice::Ipv4(v4) => v4.header().fragments_offset().value() != 0,
        IpSlice::Ipv6(v6) => v6.extensions().clone().into_iter().any(
            |e| matches!(e, Ipv6ExtensionSlice::Fragment(f) if f.fragment_offset().value() != 0),
        ),
    }
}

/// An IPv4 or IPv6 builder from `src` to `dst`, or `None` for mixed families.
fn ip_builder(src: IpAddr, dst: IpAddr) -> Option<PacketBuilderStep<IpHeaders>> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            Some(PacketBuilder::ipv4(s.octets(), d.octets(), REPLY_TTL))
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            Some(PacketBuilder::ipv6(s.octets(), d.octets(), REPLY_TTL))
        }
        _ => None,
    }
}

/// A RST segment (RST|ACK when `ack` is given) with window 0 and no payload.
fn build_rst(
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    seq: u32,
    ack: Option<u32>,
) -> Option<Vec<u8>> {
    let b = ip_builder(src, dst)?.tcp(sport, dport, seq, 0).rst();
    let b = match ack {
        Some(a) => b.ack(a),
        None => b,
    };
    let mut out = Vec::with_capacity(b.size(0));
    b.write(&mut out, &[]).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EngineConfig;
    use crate::decode::PacketDecoder;
    use crate::link::LinkType;
    use crate::time::Timestamp;
    use etherparse::{
        Icmpv4Slice, Icmpv6Slice, Ipv4Header, NetSlice, SlicedPacket, TcpHeader, TransportSlice,
    };
    use std::net::{Ipv4Addr, Ipv6Addr};

    const C4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 150);
    const S4: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 25);
    const C6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x150);
    const S6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x25);

    fn tcp(seq: u32, ack: u32, flags: u8) -> Option<TcpInfo> {
        Some(TcpInfo {
            seq,
            ack,
            flags,
            ..TcpInfo::default()
        })
    }

    fn off(src: IpAddr, dst: IpAddr, t: Option<TcpInfo>, len: usize) -> Offending<'static> {
        Offending {
            src,
            dst,
            src_port: 40000,
            dst_port: 25,
            proto: 6,
            tcp: t,
            payload_len: len,
            ip: &[],
        }
    }

    /// Parses an emitted TCP packet, checks its IP and TCP checksums against etherparse's own
    /// computation, and returns (src, dst, tcp header).
    fn parse_tcp(pkt: &[u8]) -> (IpAddr, IpAddr, TcpHeader) {
        let s = SlicedPacket::from_ip(pkt).expect("emitted packet parses");
        let Some(TransportSlice::Tcp(t)) = s.transport else {
            panic!("not TCP: {s:?}")
        };
        assert!(t.payload().is_empty());
        let (src, dst) = match s.net.expect("net layer") {
            NetSlice::Ipv4(v4) => {
                let h = v4.header().to_header();
                assert_eq!(h.header_checksum, h.calc_header_checksum(), "IPv4 checksum");
                assert_eq!(h.time_to_live, REPLY_TTL);
                assert_eq!(h.identification, 0);
                assert!(h.dont_fragment);
                let want = t.to_header().calc_checksum_ipv4(&h, &[]).expect("sum");
                assert_eq!(t.checksum(), want, "TCP checksum over IPv4");
                (
                    IpAddr::V4(h.source.into()),
                    IpAddr::V4(h.destination.into()),
                )
            }
            NetSlice::Ipv6(v6) => {
                let h = v6.header().to_header();
                assert_eq!(h.hop_limit, REPLY_TTL);
                let want = t.to_header().calc_checksum_ipv6(&h, &[]).expect("sum");
                assert_eq!(t.checksum(), want, "TCP checksum over IPv6");
                (
                    IpAddr::V6(h.source.into()),
                    IpAddr::V6(h.destination.into()),
                )
            }
            other => panic!("unexpected net layer {other:?}"),
        };
        let t = t.to_header();
        assert_eq!(t.window_size, 0);
        (src, dst, t)
    }

    #[test]
    fn rst_to_sender_of_an_acking_segment_takes_seq_from_its_ack() {
        for (c, s) in [
            (IpAddr::V4(C4), IpAddr::V4(S4)),
            (IpAddr::V6(C6), IpAddr::V6(S6)),
        ] {
            let p = off(
                c,
                s,
                tcp(1000, 0xffff_fff0, tcp_flags::ACK | tcp_flags::PSH),
                26,
            );
            let pkt = tcp_rst_to_sender(&p).expect("rst");
            let (src, dst, t) = parse_tcp(&pkt);
            assert_eq!((src, dst), (s, c), "addresses swapped");
            assert_eq!((t.source_port, t.destination_port), (25, 40000));
            assert_eq!(t.sequence_number, 0xffff_fff0);
            assert!(t.rst && !t.ack && !t.syn && !t.fin);
            assert_eq!(t.acknowledgment_number, 0);
        }
    }

    #[test]
    fn rst_to_sender_of_a_syn_acks_it() {
        for (c, s) in [
            (IpAddr::V4(C4), IpAddr::V4(S4)),
            (IpAddr::V6(C6), IpAddr::V6(S6)),
        ] {
            // A SYN: the ack covers the SYN's one unit of sequence space, wrapping mod 2^32.
            let p = off(c, s, tcp(u32::MAX, 0, tcp_flags::SYN), 0);
            let (src, dst, t) = parse_tcp(&tcp_rst_to_sender(&p).expect("rst"));
            assert_eq!((src, dst), (s, c));
            assert_eq!(t.sequence_number, 0);
            assert!(t.rst && t.ack && !t.syn);
            assert_eq!(t.acknowledgment_number, 0);
        }
        // No ACK, data and FIN (odd, but legal): ack = seq + len + FIN.
        let p = off(C4.into(), S4.into(), tcp(500, 7, tcp_flags::FIN), 10);
        let (_, _, t) = parse_tcp(&tcp_rst_to_sender(&p).expect("rst"));
        assert_eq!((t.sequence_number, t.acknowledgment_number), (0, 511));
        assert!(t.rst && t.ack);
    }

    #[test]
    fn rst_to_receiver_carries_the_dropped_segments_seq() {
        for (c, s) in [
            (IpAddr::V4(C4), IpAddr::V4(S4)),
            (IpAddr::V6(C6), IpAddr::V6(S6)),
        ] {
            let p = off(c, s, tcp(1000, 2000, tcp_flags::ACK | tcp_flags::PSH), 26);
            let (src, dst, t) = parse_tcp(&tcp_rst_to_receiver(&p).expect("rst"));
            assert_eq!((src, dst), (c, s), "addresses kept");
            assert_eq!((t.source_port, t.destination_port), (40000, 25));
            assert_eq!((t.sequence_number, t.acknowledgment_number), (1000, 2000));
            assert!(t.rst && t.ack);
        }
        // A dropped SYN-ACK: the client in SYN-SENT needs the ack of its SYN.
        let p = off(
            S4.into(),
            C4.into(),
            tcp(77, 1001, tcp_flags::SYN | tcp_flags::ACK),
            0,
        );
        let (_, _, t) = parse_tcp(&tcp_rst_to_receiver(&p).expect("rst"));
        assert_eq!((t.sequence_number, t.acknowledgment_number), (77, 1001));
        assert!(t.rst && t.ack && !t.syn);
        // No ACK and no SYN: plain RST.
        let p = off(C4.into(), S4.into(), tcp(5, 9, tcp_flags::PSH), 3);
        let (_, _, t) = parse_tcp(&tcp_rst_to_receiver(&p).expect("rst"));
        assert_eq!((t.sequence_number, t.acknowledgment_number), (5, 0));
        assert!(t.rst && !t.ack);
    }

    #[test]
    fn resets_that_must_not_be_sent() {
        let (c, s) = (IpAddr::V4(C4), IpAddr::V4(S4));
        // A dropped SYN: the receiver has no connection.
        assert!(tcp_rst_to_receiver(&off(c, s, tcp(1, 0, tcp_flags::SYN), 0)).is_none());
        assert!(tcp_rst_to_sender(&off(c, s, tcp(1, 0, tcp_flags::SYN), 0)).is_some());
        // Never answer a reset.
        let rst = off(c, s, tcp(1, 2, tcp_flags::RST | tcp_flags::ACK), 0);
        assert!(tcp_rst_to_sender(&rst).is_none());
        assert!(tcp_rst_to_receiver(&rst).is_none());
        // Not TCP, or no TCP facts.
        let mut udp = off(c, s, None, 4);
        udp.proto = 17;
        assert!(tcp_rst_to_sender(&udp).is_none());
        assert!(tcp_rst_to_sender(&off(c, s, None, 0)).is_none());
        // Mixed families, multicast, broadcast, unspecified.
        let ack = tcp(1, 2, tcp_flags::ACK);
        assert!(tcp_rst_to_sender(&off(c, IpAddr::V6(S6), ack, 0)).is_none());
        for bad in [
            IpAddr::V4(Ipv4Addr::new(224, 0, 0, 1)),
            IpAddr::V4(Ipv4Addr::BROADCAST),
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        ] {
            assert!(tcp_rst_to_sender(&off(c, bad, ack, 0)).is_none());
            assert!(tcp_rst_to_receiver(&off(bad, s, ack, 0)).is_none());
        }
    }

    /// A UDP datagram of `len` payload bytes, raw IP, as a sender would put it on the wire.
    fn udp_packet(src: IpAddr, dst: IpAddr, len: usize) -> Vec<u8> {
        let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let b = ip_builder(src, dst).expect("same family").udp(5353, 53);
        let mut v = Vec::new();
        b.write(&mut v, &payload).expect("write");
        v
    }

    fn decoded<R>(frame: &[u8], f: impl FnOnce(Offending<'_>) -> R) -> R {
        let mut d = PacketDecoder::new(&EngineConfig::default());
        let pkt = d
            .decode(Timestamp::from_secs_micros(1, 0), LinkType::Raw, frame)
            .expect("decodes");
        f(Offending::from_packet(&pkt))
    }

    #[test]
    fn icmpv4_port_unreachable_quotes_the_datagram() {
        let orig = udp_packet(C4.into(), S4.into(), 30);
        let pkt = decoded(&orig, |o| {
            assert_eq!(o.ip, &orig[..]);
            assert_eq!(
                (o.proto, o.src_port, o.dst_port, o.payload_len),
                (17, 5353, 53, 30)
            );
            assert!(o.tcp.is_none());
            icmp_unreachable(&o).expect("icmp")
        });
        let s = SlicedPacket::from_ip(&pkt).expect("parses");
        let Some(NetSlice::Ipv4(v4)) = &s.net else {
            panic!("not IPv4")
        };
        let h = v4.header().to_header();
        assert_eq!((h.source, h.destination), (S4.octets(), C4.octets()));
        assert_eq!(h.header_checksum, h.calc_header_checksum());
        assert_eq!(h.time_to_live, REPLY_TTL);
        let Some(TransportSlice::Icmpv4(i)) = s.transport else {
            panic!("not ICMPv4")
        };
        assert_eq!((i.type_u8(), i.code_u8()), (3, 3));
        assert_eq!(i.payload(), &orig[..], "whole datagram quoted");
        assert_eq!(i.checksum(), i.icmp_type().calc_checksum(i.payload()));
    }

    #[test]
    fn icmpv4_quote_stops_at_576_bytes() {
        let orig = udp_packet(C4.into(), S4.into(), 1000);
        let pkt = decoded(&orig, |o| icmp_unreachable(&o).expect("icmp"));
        assert_eq!(pkt.len(), 576);
        let i = Icmpv4Slice::from_slice(&pkt[20..]).expect("icmp");
        assert_eq!(i.payload(), &orig[..548]);
        assert_eq!(i.checksum(), i.icmp_type().calc_checksum(i.payload()));
    }

    #[test]
    fn icmpv6_port_unreachable_quotes_up_to_1280_bytes() {
        for (len, quoted) in [(30usize, 30 + 48), (2000, 1232)] {
            let orig = udp_packet(C6.into(), S6.into(), len);
            let pkt = decoded(&orig, |o| icmp_unreachable(&o).expect("icmp"));
            let s = SlicedPacket::from_ip(&pkt).expect("parses");
            let Some(NetSlice::Ipv6(v6)) = &s.net else {
                panic!("not IPv6")
            };
            let h = v6.header().to_header();
            assert_eq!((h.source, h.destination), (S6.octets(), C6.octets()));
            assert_eq!(h.hop_limit, REPLY_TTL);
            let Some(TransportSlice::Icmpv6(i)) = s.transport else {
                panic!("not ICMPv6")
            };
            assert_eq!((i.type_u8(), i.code_u8()), (1, 4));
            assert_eq!(i.payload(), &orig[..quoted]);
            assert!(pkt.len() <= 1280);
            let want = i
                .icmp_type()
                .calc_checksum(h.source, h.destination, i.payload())
                .expect("sum");
            assert_eq!(i.checksum(), want);
            // The slice parser agrees with a standalone parse of the ICMPv6 part.
            assert_eq!(
                Icmpv6Slice::from_slice(&pkt[40..])
                    .expect("icmp")
                    .checksum(),
                want
            );
        }
    }

    #[test]
    fn icmp_for_tcp_quotes_the_segment() {
        let b = PacketBuilder::ipv4(C4.octets(), S4.octets(), 61)
            .tcp(40000, 25, 1000, 512)
            .ack(2000)
            .psh();
        let mut orig = Vec::new();
        b.write(&mut orig, b"RCPT TO:<b@yahoo.example>\r\n")
            .expect("write");
        let pkt = decoded(&orig, |o| {
            assert_eq!(o.tcp.map(|t| (t.seq, t.ack)), Some((1000, 2000)));
            assert_eq!(o.payload_len, 27);
            icmp_unreachable(&o).expect("icmp")
        });
        assert_eq!(&pkt[28..], &orig[..]);
    }

    #[test]
    fn no_icmp_error_about_errors_multicast_or_later_fragments() {
        // An ICMPv4 port unreachable is not answered; an echo request is.
        let err = PacketBuilder::ipv4(C4.octets(), S4.octets(), 64).icmpv4(
            Icmpv4Type::DestinationUnreachable(icmpv4::DestUnreachableHeader::Port),
        );
        let mut e = Vec::new();
        err.write(&mut e, &[0; 28]).expect("write");
        assert!(decoded(&e, |o| icmp_unreachable(&o)).is_none());
        let echo = PacketBuilder::ipv4(C4.octets(), S4.octets(), 64).icmpv4_echo_request(1, 1);
        let mut e = Vec::new();
        echo.write(&mut e, &[0; 8]).expect("write");
        assert!(decoded(&e, |o| icmp_unreachable(&o)).is_some());
        // ICMPv6 errors (< 128) likewise; echo request (128) is answered.
        for (ty, answered) in [
            (
                Icmpv6Type::DestinationUnreachable(icmpv6::DestUnreachableCode::Port),
                false,
            ),
            (Icmpv6Type::PacketTooBig { mtu: 1280 }, false),
            (
                Icmpv6Type::EchoRequest(etherparse::IcmpEchoHeader { id: 1, seq: 1 }),
                true,
            ),
        ] {
            let b = PacketBuilder::ipv6(C6.octets(), S6.octets(), 64).icmpv6(ty);
            let mut e = Vec::new();
            b.write(&mut e, &[0; 48]).expect("write");
            assert_eq!(decoded(&e, |o| icmp_unreachable(&o)).is_some(), answered);
        }
        // Multicast or broadcast destination, unspecified source.
        for (src, dst) in [
            (IpAddr::V4(C4), IpAddr::V4(Ipv4Addr::new(239, 1, 2, 3))),
            (IpAddr::V4(C4), IpAddr::V4(Ipv4Addr::BROADCAST)),
            (IpAddr::V4(Ipv4Addr::UNSPECIFIED), IpAddr::V4(S4)),
            (
                IpAddr::V6(C6),
                IpAddr::V6("ff02::fb".parse().expect("addr")),
            ),
        ] {
            let orig = udp_packet(src, dst, 8);
            assert!(decoded(&orig, |o| icmp_unreachable(&o)).is_none(), "{dst}");
        }
        // Empty `ip`, mixed families.
        let mut o = off(C4.into(), S4.into(), None, 0);
        o.proto = 17;
        assert!(icmp_unreachable(&o).is_none());
        let orig = udp_packet(C4.into(), S4.into(), 8);
        o.ip = &orig;
        assert!(icmp_unreachable(&o).is_some());
        o.src = IpAddr::V6(C6);
        assert!(icmp_unreachable(&o).is_none());
    }

    /// Splits an IPv4 datagram's payload at `at` (a multiple of 8) into two fragments.
    fn fragments_v4(orig: &[u8], at: usize) -> [Vec<u8>; 2] {
        let h = Ipv4Header::from_slice(orig).expect("header").0;
        let body = &orig[h.header_len()..];
        let frag = |off: usize, more: bool, data: &[u8]| {
            let mut f = h.clone();
            f.dont_fragment = false;
            f.identification = 0x4242;
            f.more_fragments = more;
            f.fragment_offset = etherparse::IpFragOffset::try_new((off / 8) as u16).expect("off");
            f.set_payload_len(data.len()).expect("len");
            f.header_checksum = f.calc_header_checksum();
            let mut v = f.to_bytes().to_vec();
            v.extend_from_slice(data);
            v
        };
        [frag(0, true, &body[..at]), frag(at, false, &body[at..])]
    }

    #[test]
    fn fragments_first_yes_later_no_reassembled_is_one_packet() {
        let orig = udp_packet(C4.into(), S4.into(), 100);
        let [f1, f2] = fragments_v4(&orig, 48);
        // Each fragment alone, as an inline driver without defrag state would see it.
        let o1 = Offending {
            ip: &f1,
            ..off(C4.into(), S4.into(), None, 0)
        };
        assert!(icmp_unreachable(&Offending { proto: 17, ..o1 }).is_some());
        let o2 = Offending { ip: &f2, ..o1 };
        assert!(icmp_unreachable(&Offending { proto: 17, ..o2 }).is_none());
        // Through the decoder: the reassembled datagram's `ip` is one unfragmented packet.
        let mut d = PacketDecoder::new(&EngineConfig::default());
        let ts = Timestamp::from_secs_micros(1, 0);
        assert!(d.decode(ts, LinkType::Raw, &f1).is_err(), "held");
        let pkt = d.decode(ts, LinkType::Raw, &f2).expect("reassembled");
        assert!(pkt.reassembled);
        assert_eq!(pkt.payload, &orig[28..]);
        let ip = IpSlice::from_slice(pkt.ip).expect("one IP packet");
        assert!(!ip.is_fragmenting_payload());
        let IpSlice::Ipv4(v4) = &ip else { panic!("v4") };
        let h = v4.header().to_header();
        assert_eq!(h.header_checksum, h.calc_header_checksum());
        assert_eq!(usize::from(h.total_len), orig.len());
        assert_eq!(&pkt.ip[20..], &orig[20..], "UDP header and payload as sent");
        let icmp = icmp_unreachable(&Offending::from_packet(&pkt)).expect("icmp");
        assert_eq!(&icmp[28..], pkt.ip);
    }
    #[test]
    fn reassembled_ipv6_datagram_is_one_packet_without_the_fragment_header() {
        let orig = udp_packet(C6.into(), S6.into(), 100);
        let body = &orig[40..];
        // Fragment header (next header 17 = UDP, offset in 8-byte units, M flag, id).
        let frag = |off: usize, more: bool, data: &[u8]| {
            let mut v = orig[..40].to_vec();
            v[4..6].copy_from_slice(&((8 + data.len()) as u16).to_be_bytes());
            v[6] = 44;
            v.extend_from_slice(&[17, 0]);
            v.extend_from_slice(&(((off / 8) as u16) << 3 | u16::from(more)).to_be_bytes());
            v.extend_from_slice(&0x4242_4242u32.to_be_bytes());
            v.extend_from_slice(data);
            v
        };
        let (f1, f2) = (frag(0, true, &body[..48]), frag(48, false, &body[48..]));
        let o2 = Offending {
            ip: &f2,
            proto: 17,
            ..off(C6.into(), S6.into(), None, 0)
        };
        assert!(icmp_unreachable(&o2).is_none(), "non-first IPv6 fragment");
        assert!(icmp_unreachable(&Offending { ip: &f1, ..o2 }).is_some());
        let mut d = PacketDecoder::new(&EngineConfig::default());
        let ts = Timestamp::from_secs_micros(1, 0);
        assert!(d.decode(ts, LinkType::Raw, &f1).is_err(), "held");
        let pkt = d.decode(ts, LinkType::Raw, &f2).expect("reassembled");
        assert!(pkt.reassembled);
        assert_eq!(
            pkt.ip,
            &orig[..],
            "the datagram as it was before fragmentation"
        );
        assert_eq!(pkt.payload, &orig[48..]);
    }
}
