//! Packet decoding: link layer, VLANs, MPLS, IPv4/IPv6 (+ fragments), TCP/UDP/ICMP, GENEVE,
//! VXLAN, IP-in-IPv6.
//!
//! A frame may hold at most 16 protocol layers (Suricata's `decoder.max-layers`) and 3 tunnel
//! levels; beyond that it is invalid with `decoder.too_many_layers`.
//!
//! Zero-copy: a [`Packet`] borrows the frame (or, for a reassembled fragmented datagram, the
//! engine's scratch buffer). Header fields come from `etherparse` header slices after our own
//! bounds checks, which decide the Suricata-named [`DecodeEvent`]s. Nothing here allocates in
//! the common path (fragment reassembly does, bounded by [`crate::config::DefragConfig`]).

mod checksum;
mod defrag;
mod event;

pub(crate) use defrag::{Defrag, FragKey, Fragment, Reassembly};
pub use event::DecodeEvent;

use checksum::Sum16;
use etherparse::{IpFragOffset, IpNumber, Ipv4HeaderSlice, Ipv6HeaderSlice, TcpHeaderSlice};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::config::{ChecksumMode, EngineConfig};
use crate::link::LinkType;
use crate::stats::Stats;
use crate::time::Timestamp;

/// Deepest tunnel nesting decoded (outer packet + this many GENEVE layers).
const MAX_TUNNEL_DEPTH: u8 = 3;

/// Most protocol layers (Ethernet, MPLS, IPv4, IPv6 headers) decoded in one frame; the frame
/// reaching this many is invalid with `decoder.too_many_layers`. Suricata's `decoder.max-layers`
/// default; stops pathological nesting such as Ethernet-over-MPLS-over-Ethernet loops.
const MAX_LAYERS: u8 = 16;

/// Most IPv6 extension headers walked in one packet (the Fragment header and, after
/// reassembly, the headers behind it included); more makes the packet invalid with
/// `ipv6.exthdr_too_many`. RFC 8200 §4.1 allows each header once (destination options twice),
/// so a conforming chain has at most 8; each header is at least 8 bytes, so without this cap
/// a 64 KB datagram could make the walk thousands of steps long.
const MAX_IPV6_EXT_HEADERS: u8 = 8;

/// TCP header facts the flow and stream layers need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpInfo {
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Flags byte (FIN 0x01 ... CWR 0x80).
    pub flags: u8,
    /// Raw window field (unscaled).
    pub window: u16,
    /// Window scale option (shift count), if present.
    pub wscale: Option<u8>,
    /// SACK-permitted option present.
    pub sack_permitted: bool,
    /// Timestamps option (value, echo reply), if present.
    pub timestamps: Option<(u32, u32)>,
    /// MSS option, if present.
    pub mss: Option<u16>,
}

/// TCP flag bits.
pub mod tcp_flags {
    /// FIN
    pub const FIN: u8 = 0x01;
    /// SYN
    pub const SYN: u8 = 0x02;
    /// RST
    pub const RST: u8 = 0x04;
    /// PSH
    pub const PSH: u8 = 0x08;
    /// ACK
    pub const ACK: u8 = 0x10;
    /// URG
    pub const URG: u8 = 0x20;
}

/// Transport-layer summary of a decoded packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// TCP segment.
    Tcp(TcpInfo),
    /// UDP datagram.
    Udp,
    /// ICMPv4 or ICMPv6 message: type, code.
    Icmp {
        /// ICMP type.
        icmp_type: u8,
        /// ICMP code.
        code: u8,
    },
    /// Another IP protocol (no ports).
    Other,
}

/// A decoded packet: a view over the frame (or reassembly buffer), innermost tunnel layer.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    /// VLAN ids, outermost first; `vlan_count` are valid.
    pub vlan: [u16; 3],
    /// Number of valid entries in `vlan`.
    pub vlan_count: u8,
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// IPv4 TTL / IPv6 hop limit.
    pub ttl: u8,
    /// IP protocol number of the transport.
    pub proto: u8,
    /// Source port (0 if none).
    pub src_port: u16,
    /// Destination port (0 if none).
    pub dst_port: u16,
    /// Transport details.
    pub transport: Transport,
    /// Transport payload.
    pub payload: &'a [u8],
    /// The innermost IP packet: its header through the end of the datagram, link padding
    /// trimmed. What a `reject` quotes in an ICMP error ([`crate::emit`]). For a reassembled
    /// datagram: the reassembled buffer, headed by the completing fragment's IP header with the
    /// fragment fields cleared and lengths fixed (IPv6: the fixed header, its next header the
    /// Fragment header's; the extension headers before the Fragment header are dropped, those
    /// after it are part of the reassembled payload); empty if the datagram is too long for one
    /// IPv4 header.
    pub ip: &'a [u8],
    /// False if checksum validation is on and a checksum was wrong.
    pub checksum_ok: bool,
    /// True if this is the inner packet of a tunnel (GENEVE, IP-in-IPv6).
    pub tunneled: bool,
    /// Tunnel nesting of this packet: 0 for the outermost IP packet, 1 inside one tunnel...
    pub tunnel_depth: u8,
    /// True if the transport came from reassembled IP fragments.
    pub reassembled: bool,
    /// Bytes the flow counts for this packet (frame length; for a tunnelled packet the length
    /// from the inner link/IP header; for a reassembled datagram IP header + payload).
    pub flow_bytes: u32,
    /// For an ICMPv4 destination-unreachable error: the TCP/UDP tuple of the packet it quotes
    /// (as that packet travelled). The engine counts the error in that flow, as Suricata does.
    pub icmp_error: Option<QuotedTuple>,
}

/// The transport tuple quoted inside an ICMP error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotedTuple {
    /// Source of the quoted (original) packet.
    pub src: IpAddr,
    /// Destination of the quoted packet.
    pub dst: IpAddr,
    /// Its protocol (6 or 17).
    pub proto: u8,
    /// Its source port.
    pub src_port: u16,
    /// Its destination port.
    pub dst_port: u16,
}

impl Packet<'_> {
    /// The vlan ids as a slice.
    pub fn vlans(&self) -> &[u16] {
        &self.vlan[..self.vlan_count as usize]
    }

    fn empty() -> Self {
        Packet {
            vlan: [0; 3],
            vlan_count: 0,
            src: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            dst: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            ttl: 0,
            proto: 0,
            src_port: 0,
            dst_port: 0,
            transport: Transport::Other,
            payload: &[],
            ip: &[],
            checksum_ok: true,
            tunneled: false,
            tunnel_depth: 0,
            reassembled: false,
            flow_bytes: 0,
            icmp_error: None,
        }
    }
}

/// Why a frame produced no [`Packet`] (the events say more).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoPacket {
    /// Malformed; decoder events were raised.
    Invalid,
    /// A fragment was stored, datagram not complete yet.
    FragmentHeld,
    /// Well-formed but nothing to track (ARP, unknown ethertype, ...).
    Ignored,
    /// A fragment the reassembler could not hold: its tracker table or byte budget
    /// (`defrag.memcap`) is full. The `defrag_memcap` exception policy decides.
    DefragFull,
}

/// The stateful decoder (owns fragment reassembly).
pub(crate) struct Decoder {
    validate: bool,
    geneve: bool,
    geneve_ports: Vec<u16>,
    vxlan: bool,
    vxlan_ports: Vec<u16>,
    pub defrag: Defrag,
    /// Events of the packet being decoded (cleared by the caller).
    pub events: Vec<DecodeEvent>,
    /// After a frame that produced no packet: the addresses and protocol of its innermost
    /// IP header whose addresses could be read (the outer packet's when a tunnel's inner
    /// header is cut short), ports 0; `None` when there was none. What a drop record of an
    /// undecodable packet can name. Meaningless after a frame that decoded.
    pub failed: Option<crate::event::PacketTuple>,
}

/// Per-call decoding state.
struct Cx<'a, 's> {
    stats: &'s mut Stats,
    now: Timestamp,
    scratch: Option<&'a mut Vec<u8>>,
    pkt: Packet<'a>,
    depth: u8,
    /// Protocol layers decoded so far (see [`MAX_LAYERS`]).
    layers: u8,
}

/// State of one IPv6 extension-header walk (see [`Decoder::ipv6_ext_headers`]).
#[derive(Default)]
struct ExtWalk {
    /// Extension headers walked so far (see [`MAX_IPV6_EXT_HEADERS`]).
    count: u8,
    seen_fh: bool,
    seen_rh: bool,
}

/// Where an IPv6 extension-header chain ended.
enum ExtEnd<'a> {
    /// At the upper-layer protocol `next`, whose bytes are `rest`.
    Upper { next: u8, rest: &'a [u8] },
    /// At a Fragment header (offset in bytes, more fragments, identification); `rest` is the
    /// fragmentable part behind it, `next` its next header.
    Fragment {
        off: usize,
        more: bool,
        id: u32,
        next: u8,
        rest: &'a [u8],
    },
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

impl Decoder {
    pub fn new(cfg: &EngineConfig) -> Self {
        Decoder {
            validate: cfg.checksums == ChecksumMode::Validate,
            geneve: cfg.geneve,
            geneve_ports: cfg.geneve_ports.clone(),
            vxlan: cfg.vxlan,
            vxlan_ports: cfg.vxlan_ports.clone(),
            defrag: Defrag::new(cfg.defrag),
            events: Vec::with_capacity(8),
            failed: None,
        }
    }

    fn ev(&mut self, cx: &mut Cx<'_, '_>, e: DecodeEvent) {
        cx.stats.decoder.event[e as usize] += 1;
        self.events.push(e);
    }

    /// Counts one more protocol layer; the frame is invalid once [`MAX_LAYERS`] is reached.
    fn layer(&mut self, cx: &mut Cx<'_, '_>) -> Result<(), NoPacket> {
        cx.layers = cx.layers.saturating_add(1);
        if cx.layers >= MAX_LAYERS {
            cx.stats.decoder.too_many_layers += 1;
            self.ev(cx, DecodeEvent::TooManyLayers);
            return Err(NoPacket::Invalid);
        }
        Ok(())
    }

    /// Decodes one frame. Counts `decoder.*` stats and pushes events to `self.events`.
    pub fn decode<'a>(
        &mut self,
        stats: &mut Stats,
        now: Timestamp,
        link: LinkType,
        frame: &'a [u8],
        scratch: &'a mut Vec<u8>,
    ) -> Result<Packet<'a>, NoPacket> {
        let mut cx = Cx {
            stats,
            now,
            scratch: Some(scratch),
            pkt: Packet::empty(),
            depth: 0,
            layers: 0,
        };
        cx.pkt.flow_bytes = frame.len().min(u32::MAX as usize) as u32;
        self.failed = None;
        let r = self.link(&mut cx, link, frame);
        r.map(|()| cx.pkt)
    }

    /// Notes the addresses of an IP header as soon as they can be read (before the rest of
    /// it is checked), for [`Decoder::failed`].
    fn note_ip(&mut self, src: IpAddr, dst: IpAddr, proto: u8) {
        self.failed = Some(crate::event::PacketTuple {
            src_ip: src,
            dst_ip: dst,
            src_port: 0,
            dst_port: 0,
            proto,
        });
    }

    fn link<'a>(
        &mut self,
        cx: &mut Cx<'a, '_>,
        link: LinkType,
        frame: &'a [u8],
    ) -> Result<(), NoPacket> {
        match link {
            LinkType::Ethernet => {
                cx.stats.decoder.ethernet += 1;
                self.ethernet(cx, frame)
            }
            LinkType::Raw | LinkType::Ipv4 | LinkType::Ipv6 => {
                cx.stats.decoder.raw += 1;
                match (link, frame.first().map(|b| b >> 4)) {
                    (LinkType::Ipv4, _) | (LinkType::Raw, Some(4)) => self.ipv4(cx, frame),
                    (LinkType::Ipv6, _) | (LinkType::Raw, Some(6)) => self.ipv6(cx, frame),
                    _ => {
                        self.ev(cx, DecodeEvent::IpRawInvalidIpVersion);
                        Err(NoPacket::Invalid)
                    }
                }
            }
            LinkType::LinuxSll => {
                cx.stats.decoder.sll += 1;
                if frame.len() < 16 {
                    self.ev(cx, DecodeEvent::SllPktTooSmall);
                    return Err(NoPacket::Invalid);
                }
                let et = u16::from_be_bytes([frame[14], frame[15]]);
                self.ethertype(cx, et, &frame[16..])
            }
            LinkType::LinuxSll2 => {
                cx.stats.decoder.sll2 += 1;
                if frame.len() < 20 {
                    self.ev(cx, DecodeEvent::Sll2PktTooSmall);
                    return Err(NoPacket::Invalid);
                }
                let et = u16::from_be_bytes([frame[0], frame[1]]);
                self.ethertype(cx, et, &frame[20..])
            }
            LinkType::Null | LinkType::Loop => {
                cx.stats.decoder.null += 1;
                if frame.len() < 4 {
                    self.ev(cx, DecodeEvent::NullPktTooSmall);
                    return Err(NoPacket::Invalid);
                }
                let b = [frame[0], frame[1], frame[2], frame[3]];
                // NULL is host byte order of the capturing machine: accept either.
                let fam = if link == LinkType::Loop {
                    u32::from_be_bytes(b)
                } else {
                    let le = u32::from_le_bytes(b);
                    if le <= 0xFFFF {
                        le
                    } else {
                        u32::from_be_bytes(b)
                    }
                };
                match fam {
                    2 => self.ipv4(cx, &frame[4..]),
                    10 | 24 | 28 | 30 => self.ipv6(cx, &frame[4..]),
                    _ => {
                        self.ev(cx, DecodeEvent::NullUnsupportedType);
                        Err(NoPacket::Invalid)
                    }
                }
            }
        }
    }

    fn ethernet<'a>(&mut self, cx: &mut Cx<'a, '_>, frame: &'a [u8]) -> Result<(), NoPacket> {
        if frame.len() < 14 {
            self.ev(cx, DecodeEvent::EthernetPktTooSmall);
            return Err(NoPacket::Invalid);
        }
        self.layer(cx)?;
        let et = u16::from_be_bytes([frame[12], frame[13]]);
        self.ethertype(cx, et, &frame[14..])
    }

    fn ethertype<'a>(
        &mut self,
        cx: &mut Cx<'a, '_>,
        mut et: u16,
        mut data: &'a [u8],
    ) -> Result<(), NoPacket> {
        let mut tags = 0u8;
        while matches!(et, 0x8100 | 0x88a8 | 0x9100) {
            if data.len() < 4 {
                self.ev(cx, DecodeEvent::VlanHeaderTooSmall);
                return Err(NoPacket::Invalid);
            }
            if cx.pkt.vlan_count as usize >= cx.pkt.vlan.len() {
                self.ev(cx, DecodeEvent::VlanTooManyLayers);
                return Err(NoPacket::Invalid);
            }
            let id = u16::from_be_bytes([data[0], data[1]]) & 0x0fff;
            cx.pkt.vlan[cx.pkt.vlan_count as usize] = id;
            cx.pkt.vlan_count += 1;
            tags += 1;
            et = u16::from_be_bytes([data[2], data[3]]);
            data = &data[4..];
        }
        match tags {
            0 => {}
            1 => cx.stats.decoder.vlan += 1,
            2 => {
                cx.stats.decoder.vlan += 1;
                cx.stats.decoder.vlan_qinq += 1
            }
            _ => {
                cx.stats.decoder.vlan += 1;
                cx.stats.decoder.vlan_qinqinq += 1
            }
        }
        match et {
            0x0800 => self.ipv4(cx, data),
            0x86dd => self.ipv6(cx, data),
            0x8847 | 0x8848 => self.mpls(cx, data),
            // ARP and other well-known link protocols carry nothing to track.
            0x0806 | 0x8035 | 0x88cc | 0x8809 | 0x888e => Err(NoPacket::Ignored),
            _ => {
                cx.stats.decoder.unknown_ethertype += 1;
                self.ev(cx, DecodeEvent::EthernetUnknownEthertype);
                Err(NoPacket::Ignored)
            }
        }
    }

    /// MPLS (RFC 3032): skips the label stack; the payload is IPv4 or IPv6 (explicit-null
    /// labels 0 and 2, else the first nibble), or an Ethernet pseudowire behind a 4-byte
    /// control word (RFC 4385, first nibble 0).
    fn mpls<'a>(&mut self, cx: &mut Cx<'a, '_>, mut data: &'a [u8]) -> Result<(), NoPacket> {
        self.layer(cx)?;
        cx.stats.decoder.mpls += 1;
        let label = loop {
            let Some(shim) = data.get(..4) else {
                self.ev(cx, DecodeEvent::MplsHeaderTooSmall);
                return Err(NoPacket::Invalid);
            };
            let shim = u32::from_be_bytes([shim[0], shim[1], shim[2], shim[3]]);
            data = &data[4..];
            if shim & 0x100 != 0 {
                break shim >> 12;
            }
        };
        match label {
            0 => return self.ipv4(cx, data),
            2 => return self.ipv6(cx, data),
            1 => {
                self.ev(cx, DecodeEvent::MplsBadLabelRouterAlert);
                return Err(NoPacket::Invalid);
            }
            3 => {
                self.ev(cx, DecodeEvent::MplsBadLabelImplicitNull);
                return Err(NoPacket::Invalid);
            }
            4..=15 => {
                self.ev(cx, DecodeEvent::MplsBadLabelReserved);
                return Err(NoPacket::Invalid);
            }
            _ => {}
        }
        match data.first().map(|b| b >> 4) {
            Some(4) => self.ipv4(cx, data),
            Some(6) => self.ipv6(cx, data),
            Some(0) => match data.get(4..) {
                Some(eth) => self.ethernet(cx, eth),
                None => {
                    self.ev(cx, DecodeEvent::MplsPktTooSmall);
                    Err(NoPacket::Invalid)
                }
            },
            _ => {
                self.ev(cx, DecodeEvent::MplsUnknownPayloadType);
                Err(NoPacket::Invalid)
            }
        }
    }

    fn ipv4<'a>(&mut self, cx: &mut Cx<'a, '_>, data: &'a [u8]) -> Result<(), NoPacket> {
        self.layer(cx)?;
        if data.len() < 20 {
            self.ev(cx, DecodeEvent::Ipv4PktTooSmall);
            return Err(NoPacket::Invalid);
        }
        if data[0] >> 4 != 4 {
            self.ev(cx, DecodeEvent::Ipv4WrongIpVersion);
            return Err(NoPacket::Invalid);
        }
        self.note_ip(
            IpAddr::V4(Ipv4Addr::new(data[12], data[13], data[14], data[15])),
            IpAddr::V4(Ipv4Addr::new(data[16], data[17], data[18], data[19])),
            data[9],
        );
        let hlen = usize::from(data[0] & 0x0f) * 4;
        if hlen < 20 {
            self.ev(cx, DecodeEvent::Ipv4HlenTooSmall);
            return Err(NoPacket::Invalid);
        }
        if hlen > data.len() {
            self.ev(cx, DecodeEvent::Ipv4TruncPkt);
            return Err(NoPacket::Invalid);
        }
        let total = usize::from(u16::from_be_bytes([data[2], data[3]]));
        if total < hlen {
            self.ev(cx, DecodeEvent::Ipv4IplenSmallerThanHlen);
            return Err(NoPacket::Invalid);
        }
        if total > data.len() {
            self.ev(cx, DecodeEvent::Ipv4TruncPkt);
            return Err(NoPacket::Invalid);
        }
        // Ethernet padding beyond the IP total length is not payload.
        let data = &data[..total];
        cx.pkt.ip = data;
        let Ok(h) = Ipv4HeaderSlice::from_slice(data) else {
            self.ev(cx, DecodeEvent::Ipv4TruncPkt);
            return Err(NoPacket::Invalid);
        };
        cx.stats.decoder.ipv4 += 1;
        cx.pkt.tunnel_depth = cx.depth;
        if hlen > 20 {
            self.ipv4_options(cx, h.options());
        }
        if self.validate && Sum16::new().add_slice(&data[..hlen]).ones_complement() != 0 {
            cx.stats.checksum.ipv4 += 1;
            cx.pkt.checksum_ok = false;
        }
        let src = h.source();
        let dst = h.destination();
        cx.pkt.src = IpAddr::V4(Ipv4Addr::from(src));
        cx.pkt.dst = IpAddr::V4(Ipv4Addr::from(dst));
        cx.pkt.ttl = h.ttl();
        let proto = h.protocol().0;
        cx.pkt.proto = proto;
        let payload = &data[hlen..];
        let mf = h.more_fragments();
        let off = usize::from(h.fragments_offset().value()) * 8;
        if mf || off > 0 {
            cx.stats.defrag.ipv4_fragments += 1;
            let mut key = FragKey {
                v6: false,
                src: [0; 16],
                dst: [0; 16],
                id: u32::from(h.identification()),
                proto,
                vlan: cx.pkt.vlan,
            };
            key.src[..4].copy_from_slice(&src);
            key.dst[..4].copy_from_slice(&dst);
            return self.fragment(
                cx,
                key,
                Fragment {
                    offset: off,
                    more: mf,
                    proto: Some(proto),
                    data: payload,
                },
                &data[..hlen],
                hlen,
            );
        }
        let pseudo = Sum16::new().add_4bytes(src).add_4bytes(dst);
        self.transport(cx, proto, payload, pseudo)
    }

    fn ipv4_options(&mut self, cx: &mut Cx<'_, '_>, mut opts: &[u8]) {
        let mut seen = 0u32;
        while let Some(&kind) = opts.first() {
            match kind {
                0 => {
                    // End of list: the rest must be padding zeros.
                    if opts.iter().any(|&b| b != 0) {
                        self.ev(cx, DecodeEvent::Ipv4OptPadRequired);
                    }
                    return;
                }
                1 => opts = &opts[1..],
                _ => {
                    let Some(&len) = opts.get(1) else {
                        self.ev(cx, DecodeEvent::Ipv4OptInvalidLen);
                        return;
                    };
                    let len = usize::from(len);
                    if len < 2 || len > opts.len() {
                        self.ev(cx, DecodeEvent::Ipv4OptInvalidLen);
                        return;
                    }
                    let bit = 1u32 << (kind & 31);
                    if seen & bit != 0 {
                        self.ev(cx, DecodeEvent::Ipv4OptDuplicate);
                    }
                    seen |= bit;
                    // Known: RR 7, TS 68, SEC 130, LSRR 131, CIPSO 134, SID 136, SSRR 137,
                    // RTRALT 148.
                    if !matches!(kind, 7 | 68 | 130 | 131 | 133 | 134 | 136 | 137 | 148) {
                        self.ev(cx, DecodeEvent::Ipv4OptUnknown);
                    }
                    opts = &opts[len..];
                }
            }
        }
    }

    fn ipv6<'a>(&mut self, cx: &mut Cx<'a, '_>, data: &'a [u8]) -> Result<(), NoPacket> {
        self.layer(cx)?;
        if data.len() < 40 {
            self.ev(cx, DecodeEvent::Ipv6PktTooSmall);
            return Err(NoPacket::Invalid);
        }
        if data[0] >> 4 != 6 {
            self.ev(cx, DecodeEvent::Ipv6WrongIpVersion);
            return Err(NoPacket::Invalid);
        }
        let Ok(h) = Ipv6HeaderSlice::from_slice(data) else {
            self.ev(cx, DecodeEvent::Ipv6PktTooSmall);
            return Err(NoPacket::Invalid);
        };
        self.note_ip(
            IpAddr::V6(Ipv6Addr::from(h.source())),
            IpAddr::V6(Ipv6Addr::from(h.destination())),
            h.next_header().0,
        );
        let plen = usize::from(h.payload_length());
        if 40 + plen > data.len() {
            self.ev(cx, DecodeEvent::Ipv6TruncPkt);
            return Err(NoPacket::Invalid);
        }
        cx.stats.decoder.ipv6 += 1;
        cx.pkt.tunnel_depth = cx.depth;
        cx.pkt.ip = &data[..40 + plen];
        let src = h.source();
        let dst = h.destination();
        cx.pkt.src = IpAddr::V6(Ipv6Addr::from(src));
        cx.pkt.dst = IpAddr::V6(Ipv6Addr::from(dst));
        cx.pkt.ttl = h.hop_limit();
        let mut walk = ExtWalk::default();
        let (next, rest, frag) =
            match self.ipv6_ext_headers(cx, h.next_header().0, &data[40..40 + plen], &mut walk)? {
                ExtEnd::Upper { next, rest } => (next, rest, None),
                ExtEnd::Fragment {
                    off,
                    more,
                    id,
                    next,
                    rest,
                } => (next, rest, Some((off, more, id))),
            };
        if let Some((off, more, id)) = frag {
            cx.stats.defrag.ipv6_fragments += 1;
            if more && !rest.len().is_multiple_of(8) {
                self.ev(cx, DecodeEvent::Ipv6FragInvalidLength);
                return Err(NoPacket::Invalid);
            }
            let key = FragKey {
                v6: true,
                src,
                dst,
                id,
                proto: 0,
                vlan: cx.pkt.vlan,
            };
            let unfrag = (40 + plen).saturating_sub(rest.len());
            return self.fragment(
                cx,
                key,
                Fragment {
                    offset: off,
                    more,
                    // Only the first fragment's next header is the upper-layer protocol.
                    proto: if off == 0 { Some(next) } else { None },
                    data: rest,
                },
                &data[..40],
                unfrag,
            );
        }
        cx.pkt.proto = next;
        let pseudo = Sum16::new().add_16bytes(src).add_16bytes(dst);
        self.transport(cx, next, rest, pseudo)
    }

    /// Walks IPv6 extension headers from `next` over `rest` to the upper-layer protocol, or to
    /// a Fragment header that is not atomic. Hop-by-hop options are only valid first
    /// (`ipv6.exthdr_dupl_hh` otherwise, walked past as Linux does not); a second Fragment
    /// header is invalid; more than [`MAX_IPV6_EXT_HEADERS`] headers are invalid
    /// (`ipv6.exthdr_too_many`).
    fn ipv6_ext_headers<'a>(
        &mut self,
        cx: &mut Cx<'a, '_>,
        mut next: u8,
        mut rest: &'a [u8],
        walk: &mut ExtWalk,
    ) -> Result<ExtEnd<'a>, NoPacket> {
        loop {
            if !matches!(next, 0 | 43 | 44 | 51 | 60 | 135) {
                return Ok(ExtEnd::Upper { next, rest });
            }
            let first = walk.count == 0;
            walk.count += 1;
            if walk.count > MAX_IPV6_EXT_HEADERS {
                self.ev(cx, DecodeEvent::Ipv6ExthdrTooMany);
                return Err(NoPacket::Invalid);
            }
            if rest.len() < 8 {
                self.ev(cx, DecodeEvent::Ipv6TruncExthdr);
                return Err(NoPacket::Invalid);
            }
            match next {
                // Hop-by-hop (0), routing (43), destination options (60), mobility (135).
                0 | 43 | 60 | 135 => {
                    if next == 0 && !first {
                        self.ev(cx, DecodeEvent::Ipv6ExthdrDuplHh);
                    }
                    if next == 43 {
                        if walk.seen_rh {
                            self.ev(cx, DecodeEvent::Ipv6ExthdrDuplRh);
                        }
                        walk.seen_rh = true;
                    }
                    let len = (usize::from(rest[1]) + 1) * 8;
                    let Some(after) = rest.get(len..) else {
                        self.ev(cx, DecodeEvent::Ipv6TruncExthdr);
                        return Err(NoPacket::Invalid);
                    };
                    next = rest[0];
                    rest = after;
                }
                // Authentication header: length in 4-byte units minus 2.
                51 => {
                    let len = (usize::from(rest[1]) + 2) * 4;
                    let Some(after) = rest.get(len..) else {
                        self.ev(cx, DecodeEvent::Ipv6TruncExthdr);
                        return Err(NoPacket::Invalid);
                    };
                    next = rest[0];
                    rest = after;
                }
                // Fragment (44).
                _ => {
                    if walk.seen_fh {
                        self.ev(cx, DecodeEvent::Ipv6ExthdrDuplFh);
                        return Err(NoPacket::Invalid);
                    }
                    walk.seen_fh = true;
                    let offm = u16::from_be_bytes([rest[2], rest[3]]);
                    let off = usize::from(offm >> 3) * 8;
                    let more = offm & 1 == 1;
                    let id = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]);
                    next = rest[0];
                    rest = &rest[8..];
                    if off == 0 && !more {
                        self.ev(cx, DecodeEvent::Ipv6ExthdrUselessFh);
                    } else {
                        return Ok(ExtEnd::Fragment {
                            off,
                            more,
                            id,
                            next,
                            rest,
                        });
                    }
                }
            }
        }
    }

    fn fragment<'a>(
        &mut self,
        cx: &mut Cx<'a, '_>,
        key: FragKey,
        frag: Fragment<'_>,
        ip_hdr: &[u8],
        ip_hlen: usize,
    ) -> Result<(), NoPacket> {
        let Some(scratch) = cx.scratch.take() else {
            // A second reassembly inside one frame (fragments inside a tunnel of fragments).
            self.ev(
                cx,
                if key.v6 {
                    DecodeEvent::Ipv6FragIgnored
                } else {
                    DecodeEvent::Ipv4FragIgnored
                },
            );
            return Err(NoPacket::Invalid);
        };
        let before = self.events.len();
        let r = self.defrag.insert(
            key,
            frag,
            cx.now,
            &mut cx.stats.defrag,
            &mut self.events,
            scratch,
        );
        for e in &self.events[before..] {
            cx.stats.decoder.event[*e as usize] += 1;
        }
        let proto = match r {
            Reassembly::Complete(proto) => proto,
            Reassembly::Held => return Err(NoPacket::FragmentHeld),
            // Dropped, or its datagram discarded: nothing of it may be delivered.
            Reassembly::Dropped => return Err(NoPacket::Invalid),
            Reassembly::Full => return Err(NoPacket::DefragFull),
        };
        let hdr_len = prepend_reassembled_header(scratch, ip_hdr, key.v6, proto);
        let whole: &'a [u8] = scratch;
        cx.pkt.ip = if hdr_len > 0 { whole } else { &[] };
        let mut payload = whole.get(hdr_len..).unwrap_or_default();
        cx.pkt.reassembled = true;
        cx.pkt.flow_bytes = (ip_hlen + payload.len()).min(u32::MAX as usize) as u32;
        let mut proto = proto;
        if key.v6 {
            // The Fragment header's next header may be another extension header
            // (destination options, routing, ...): the transport is behind them.
            let mut walk = ExtWalk {
                count: 1,
                seen_fh: true,
                seen_rh: false,
            };
            match self.ipv6_ext_headers(cx, proto, payload, &mut walk)? {
                ExtEnd::Upper { next, rest } => {
                    proto = next;
                    payload = rest;
                }
                ExtEnd::Fragment { .. } => {
                    // Unreachable: `seen_fh` makes a second Fragment header an error.
                    self.ev(cx, DecodeEvent::Ipv6ExthdrDuplFh);
                    return Err(NoPacket::Invalid);
                }
            }
        }
        cx.pkt.proto = proto;
        let pseudo = if key.v6 {
            Sum16::new().add_16bytes(key.src).add_16bytes(key.dst)
        } else {
            let mut s = [0u8; 4];
            let mut d = [0u8; 4];
            s.copy_from_slice(&key.src[..4]);
            d.copy_from_slice(&key.dst[..4]);
            Sum16::new().add_4bytes(s).add_4bytes(d)
        };
        self.transport(cx, proto, payload, pseudo)
    }

    fn transport<'a>(
        &mut self,
        cx: &mut Cx<'a, '_>,
        proto: u8,
        data: &'a [u8],
        pseudo: Sum16,
    ) -> Result<(), NoPacket> {
        let is_v6 = cx.pkt.src.is_ipv6();
        match proto {
            6 => self.tcp(cx, data, pseudo, is_v6),
            17 => self.udp(cx, data, pseudo, is_v6),
            1 => {
                if is_v6 {
                    self.ev(cx, DecodeEvent::Ipv6WithIcmpv4);
                }
                if data.len() < 8 {
                    self.ev(cx, DecodeEvent::Icmpv4PktTooSmall);
                    return Err(NoPacket::Invalid);
                }
                cx.stats.decoder.icmpv4 += 1;
                let (t, c) = (data[0], data[1]);
                if !matches!(t, 0 | 3..=5 | 8..=18 | 30 | 40 | 42 | 43) {
                    self.ev(cx, DecodeEvent::Icmpv4UnknownType);
                }
                // Codes defined per type (RFC 792/950/1256): anything else is unknown.
                let max_code = match t {
                    0 | 4 | 8 | 13..=18 => Some(0),
                    3 => Some(15),
                    5 => Some(3),
                    11 => Some(1),
                    12 => Some(2),
                    _ => None,
                };
                if max_code.is_some_and(|m| c > m) {
                    self.ev(cx, DecodeEvent::Icmpv4UnknownCode);
                }
                if self.validate && Sum16::new().add_slice(data).ones_complement() != 0 {
                    cx.stats.checksum.icmpv4 += 1;
                    cx.pkt.checksum_ok = false;
                }
                if t == 3 {
                    cx.pkt.icmp_error = self.quoted_ipv4(cx, &data[8..]);
                }
                self.icmp_done(cx, t, c, data)
            }
            58 => {
                if !is_v6 {
                    self.ev(cx, DecodeEvent::Ipv4WithIcmpv6);
                }
                if data.len() < 8 {
                    self.ev(cx, DecodeEvent::Icmpv6PktTooSmall);
                    return Err(NoPacket::Invalid);
                }
                cx.stats.decoder.icmpv6 += 1;
                let (t, c) = (data[0], data[1]);
                if !matches!(t, 1..=4 | 100 | 101 | 127..=161 | 200 | 201 | 255) {
                    self.ev(cx, DecodeEvent::Icmpv6UnknownType);
                }
                if self.validate {
                    let len = (data.len() as u32).to_be_bytes();
                    let s = pseudo
                        .add_4bytes(len)
                        .add_2bytes([0, 58])
                        .add_slice(data)
                        .ones_complement();
                    if s != 0 {
                        cx.stats.checksum.icmpv6 += 1;
                        cx.pkt.checksum_ok = false;
                    }
                }
                self.icmp_done(cx, t, c, data)
            }
            4 | 41 if is_v6 => {
                // IP-in-IPv6: track the inner packet.
                if cx.depth >= MAX_TUNNEL_DEPTH {
                    cx.stats.decoder.too_many_layers += 1;
                    self.ev(cx, DecodeEvent::TooManyLayers);
                    return Err(NoPacket::Invalid);
                }
                cx.depth += 1;
                cx.pkt.tunneled = true;
                cx.pkt.flow_bytes = data.len().min(u32::MAX as usize) as u32;
                if proto == 4 {
                    cx.stats.decoder.ipv4_in_ipv6 += 1;
                    if data.first().map(|b| b >> 4) != Some(4) {
                        self.ev(cx, DecodeEvent::Ipv6Ipv4InIpv6WrongVersion);
                        return Err(NoPacket::Invalid);
                    }
                    self.ipv4(cx, data)
                } else {
                    cx.stats.decoder.ipv6_in_ipv6 += 1;
                    self.ipv6(cx, data)
                }
            }
            _ => {
                cx.pkt.transport = Transport::Other;
                cx.pkt.payload = data;
                Ok(())
            }
        }
    }

    /// The IPv4 header + first 8 bytes an ICMPv4 error quotes (RFC 792), if TCP or UDP.
    fn quoted_ipv4(&mut self, cx: &mut Cx<'_, '_>, q: &[u8]) -> Option<QuotedTuple> {
        let hlen = usize::from(q.first()? & 0x0f) * 4;
        if q.len() < 20 || q[0] >> 4 != 4 || hlen < 20 || q.len() < hlen + 4 {
            self.ev(cx, DecodeEvent::Icmpv4Ipv4TruncPkt);
            return None;
        }
        let proto = q[9];
        if proto != 6 && proto != 17 {
            return None;
        }
        Some(QuotedTuple {
            src: IpAddr::V4(Ipv4Addr::new(q[12], q[13], q[14], q[15])),
            dst: IpAddr::V4(Ipv4Addr::new(q[16], q[17], q[18], q[19])),
            proto,
            src_port: u16::from_be_bytes([q[hlen], q[hlen + 1]]),
            dst_port: u16::from_be_bytes([q[hlen + 2], q[hlen + 3]]),
        })
    }

    fn icmp_done<'a>(
        &mut self,
        cx: &mut Cx<'a, '_>,
        icmp_type: u8,
        code: u8,
        data: &'a [u8],
    ) -> Result<(), NoPacket> {
        cx.pkt.transport = Transport::Icmp { icmp_type, code };
        cx.pkt.src_port = 0;
        cx.pkt.dst_port = 0;
        cx.pkt.payload = &data[8..];
        Ok(())
    }

    fn tcp<'a>(
        &mut self,
        cx: &mut Cx<'a, '_>,
        data: &'a [u8],
        pseudo: Sum16,
        is_v6: bool,
    ) -> Result<(), NoPacket> {
        if data.len() < 20 {
            self.ev(cx, DecodeEvent::TcpPktTooSmall);
            return Err(NoPacket::Invalid);
        }
        let hlen = usize::from(data[12] >> 4) * 4;
        if hlen < 20 || hlen > data.len() {
            self.ev(cx, DecodeEvent::TcpHlenTooSmall);
            return Err(NoPacket::Invalid);
        }
        let Ok(h) = TcpHeaderSlice::from_slice(data) else {
            self.ev(cx, DecodeEvent::TcpHlenTooSmall);
            return Err(NoPacket::Invalid);
        };
        cx.stats.decoder.tcp += 1;
        let mut info = TcpInfo {
            seq: h.sequence_number(),
            ack: h.acknowledgment_number(),
            flags: data[13],
            window: h.window_size(),
            ..TcpInfo::default()
        };
        if hlen > 20 {
            self.tcp_options(cx, &data[20..hlen], &mut info);
        }
        if self.validate {
            let s = if is_v6 {
                pseudo
                    .add_4bytes((data.len() as u32).to_be_bytes())
                    .add_2bytes([0, 6])
            } else {
                pseudo
                    .add_2bytes([0, 6])
                    .add_2bytes((data.len() as u16).to_be_bytes())
            };
            if s.add_slice(data).ones_complement() != 0 {
                cx.stats.tcp.invalid_checksum += 1;
                cx.pkt.checksum_ok = false;
            }
        }
        cx.pkt.src_port = h.source_port();
        cx.pkt.dst_port = h.destination_port();
        cx.pkt.transport = Transport::Tcp(info);
        cx.pkt.payload = &data[hlen..];
        Ok(())
    }

    /// Parses TCP options (RFC 9293 §3.1 kinds; unknown kinds are skipped by their length).
    ///
    /// Own loop rather than etherparse's `TcpOptionsIterator`: that one stops at kinds it does
    /// not model (MPTCP, TFO, ...) and was the single largest decode cost per packet.
    fn tcp_options(&mut self, cx: &mut Cx<'_, '_>, mut o: &[u8], info: &mut TcpInfo) {
        let mut seen = 0u8;
        while let Some(&kind) = o.first() {
            match kind {
                0 => return,
                1 => {
                    o = &o[1..];
                    continue;
                }
                _ => {}
            }
            let Some(&len) = o.get(1) else {
                self.ev(cx, DecodeEvent::TcpInvalidOptlen);
                return;
            };
            let len = usize::from(len);
            if len < 2 || len > o.len() {
                self.ev(cx, DecodeEvent::TcpInvalidOptlen);
                return;
            }
            let body = &o[2..len];
            let (bit, want) = match kind {
                2 => (1u8, Some(4)),
                3 => (2, Some(3)),
                4 => (4, Some(2)),
                // SACK blocks: 8 bytes each, 1 to 4 of them.
                5 => (8, (len >= 10 && (len - 2) % 8 == 0).then_some(len)),
                8 => (16, Some(10)),
                _ => (0, None),
            };
            if bit != 0 {
                if want != Some(len) {
                    // The rest of the option area cannot be trusted after this.
                    self.ev(cx, DecodeEvent::TcpOptInvalidLen);
                    return;
                } else {
                    if seen & bit != 0 {
                        self.ev(cx, DecodeEvent::TcpOptDuplicate);
                    }
                    seen |= bit;
                    match kind {
                        2 => info.mss = Some(u16::from_be_bytes([body[0], body[1]])),
                        3 => info.wscale = Some(body[0].min(14)),
                        4 => info.sack_permitted = true,
                        8 => {
                            let v = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
                            let e = u32::from_be_bytes([body[4], body[5], body[6], body[7]]);
                            info.timestamps = Some((v, e));
                        }
                        _ => {}
                    }
                }
            }
            o = &o[len..];
        }
    }

    fn udp<'a>(
        &mut self,
        cx: &mut Cx<'a, '_>,
        data: &'a [u8],
        pseudo: Sum16,
        is_v6: bool,
    ) -> Result<(), NoPacket> {
        if data.len() < 8 {
            self.ev(cx, DecodeEvent::UdpPktTooSmall);
            return Err(NoPacket::Invalid);
        }
        let ulen = usize::from(u16::from_be_bytes([data[4], data[5]]));
        if ulen < 8 {
            self.ev(cx, DecodeEvent::UdpHlenInvalid);
            return Err(NoPacket::Invalid);
        }
        if ulen != data.len() {
            self.ev(cx, DecodeEvent::UdpLenInvalid);
            if ulen > data.len() {
                return Err(NoPacket::Invalid);
            }
        }
        let data = &data[..ulen];
        cx.stats.decoder.udp += 1;
        let sport = u16::from_be_bytes([data[0], data[1]]);
        let dport = u16::from_be_bytes([data[2], data[3]]);
        let csum = u16::from_be_bytes([data[6], data[7]]);
        // A zero UDP checksum over IPv4 means "not computed".
        if self.validate && (csum != 0 || is_v6) {
            let s = if is_v6 {
                pseudo
                    .add_4bytes((ulen as u32).to_be_bytes())
                    .add_2bytes([0, 17])
            } else {
                pseudo
                    .add_2bytes([0, 17])
                    .add_2bytes((ulen as u16).to_be_bytes())
            };
            if s.add_slice(data).ones_complement() != 0 {
                cx.stats.checksum.udp += 1;
                cx.pkt.checksum_ok = false;
            }
        }
        cx.pkt.src_port = sport;
        cx.pkt.dst_port = dport;
        cx.pkt.transport = Transport::Udp;
        cx.pkt.payload = &data[8..];
        if self.geneve && self.geneve_ports.contains(&dport) {
            return self.geneve(cx, &data[8..]);
        }
        if self.vxlan && self.vxlan_ports.contains(&dport) {
            return self.vxlan(cx, &data[8..]);
        }
        Ok(())
    }

    /// VXLAN (RFC 7348): 8-byte header with the I flag (valid VNI) set, then an Ethernet
    /// frame. A header without the I flag is left as the outer UDP packet (a VTEP drops it
    /// undelivered). Once the header is valid the inner frame is what the VTEP delivers, so
    /// it must decode: a malformed or too deeply nested inner frame makes the whole frame
    /// invalid, never the outer UDP packet (which would let the inner flow pass unseen).
    fn vxlan<'a>(&mut self, cx: &mut Cx<'a, '_>, data: &'a [u8]) -> Result<(), NoPacket> {
        if data.len() < 8 || data[0] & 0x08 == 0 {
            return Ok(());
        }
        let inner = &data[8..];
        cx.stats.decoder.vxlan += 1;
        self.tunnel(cx, inner, |d, cx| d.ethernet(cx, inner))
    }

    /// GENEVE (RFC 8926). A malformed GENEVE header (wrong version, options past the packet,
    /// unknown protocol type: an endpoint drops these undelivered) leaves the outer UDP packet
    /// with an event, as Suricata does. Once the header is valid the packet becomes the inner
    /// packet, and an inner packet that does not decode makes the whole frame invalid: the
    /// outer UDP packet never stands in for it.
    fn geneve<'a>(&mut self, cx: &mut Cx<'a, '_>, data: &'a [u8]) -> Result<(), NoPacket> {
        if data.len() < 8 || data[0] >> 6 != 0 {
            self.ev(cx, DecodeEvent::GenevePktTooSmall);
            return Ok(());
        }
        let optlen = usize::from(data[0] & 0x3f) * 4;
        let Some(inner) = data.get(8 + optlen..) else {
            self.ev(cx, DecodeEvent::GenevePktTooSmall);
            return Ok(());
        };
        let Some(proto) = be16(data, 2) else {
            return Ok(());
        };
        if !matches!(proto, 0x6558 | 0x0800 | 0x86dd) {
            self.ev(cx, DecodeEvent::GeneveUnknownPayloadType);
            return Ok(());
        }
        cx.stats.decoder.geneve += 1;
        self.tunnel(cx, inner, |d, cx| match proto {
            0x6558 => d.ethernet(cx, inner),
            0x0800 => d.ipv4(cx, inner),
            _ => d.ipv6(cx, inner),
        })
    }

    /// Decodes a UDP tunnel's inner packet with `decode_inner`, one tunnel level deeper. The
    /// result is the inner packet's: an error (too deep with `decoder.too_many_layers`, or
    /// malformed with the inner decoder's events) is the frame's error.
    fn tunnel<'a>(
        &mut self,
        cx: &mut Cx<'a, '_>,
        inner: &'a [u8],
        decode_inner: impl FnOnce(&mut Self, &mut Cx<'a, '_>) -> Result<(), NoPacket>,
    ) -> Result<(), NoPacket> {
        if cx.depth >= MAX_TUNNEL_DEPTH {
            cx.stats.decoder.too_many_layers += 1;
            self.ev(cx, DecodeEvent::TooManyLayers);
            return Err(NoPacket::Invalid);
        }
        cx.depth += 1;
        cx.pkt.tunneled = true;
        cx.pkt.checksum_ok = true;
        cx.pkt.flow_bytes = inner.len().min(u32::MAX as usize) as u32;
        let r = decode_inner(self, cx);
        cx.depth -= 1;
        r
    }
}

/// Puts an IP header for a reassembled datagram in front of its payload in `buf`, so that
/// [`Packet::ip`] is one well-formed IP packet; returns the header length, or 0 (nothing
/// added) when the datagram is too long for one IP header.
///
/// `hdr` is the completing fragment's header (IPv4 with options, or the fixed IPv6 header):
/// it carries the addresses, TTL and identity the sender used. The fragment fields are
/// cleared and the length fixed so that a quote of it (an ICMP error) reads as the datagram
/// the sender's stack handed down. Costs a copy of the datagram; reassembly already copies.
fn prepend_reassembled_header(buf: &mut Vec<u8>, hdr: &[u8], v6: bool, proto: u8) -> usize {
    if v6 {
        let Ok(h) = Ipv6HeaderSlice::from_slice(hdr) else {
            return 0;
        };
        let mut h = h.to_header();
        if h.set_payload_length(buf.len()).is_err() {
            return 0;
        }
        h.next_header = IpNumber(proto);
        let bytes = h.to_bytes();
        buf.splice(0..0, bytes);
        bytes.len()
    } else {
        let Ok(h) = Ipv4HeaderSlice::from_slice(hdr) else {
            return 0;
        };
        let mut h = h.to_header();
        if h.set_payload_len(buf.len()).is_err() {
            return 0;
        }
        // DF stays as sent; etherparse does not model the reserved bit, so it is cleared.
        h.more_fragments = false;
        h.fragment_offset = IpFragOffset::ZERO;
        h.header_checksum = h.calc_header_checksum();
        let bytes = h.to_bytes();
        buf.splice(0..0, bytes.iter().copied());
        bytes.len()
    }
}

/// A standalone decoder without flow tracking: decode-only passes, benchmarks, fuzzing.
///
/// Counts `decoder.*`/`defrag.*` statistics like the engine and keeps fragment state, so
/// fragmented datagrams come out reassembled.
pub struct PacketDecoder {
    inner: Decoder,
    stats: Stats,
    scratch: Vec<u8>,
}

impl PacketDecoder {
    /// A decoder honouring `cfg`'s checksum, GENEVE and defrag settings.
    pub fn new(cfg: &EngineConfig) -> Self {
        PacketDecoder {
            inner: Decoder::new(cfg),
            stats: Stats::default(),
            scratch: Vec::new(),
        }
    }

    /// Decodes one frame; the packet borrows `frame` (or the reassembly buffer).
    pub fn decode<'a>(
        &'a mut self,
        ts: Timestamp,
        link: LinkType,
        frame: &'a [u8],
    ) -> Result<Packet<'a>, NoPacket> {
        self.inner.events.clear();
        self.stats.decoder.pkts += 1;
        self.stats.decoder.bytes += frame.len() as u64;
        let r = self
            .inner
            .decode(&mut self.stats, ts, link, frame, &mut self.scratch);
        if matches!(r, Err(NoPacket::Invalid)) {
            self.stats.decoder.invalid += 1;
        }
        r
    }

    /// Decoder events raised by the last [`PacketDecoder::decode`] call.
    pub fn events(&self) -> &[DecodeEvent] {
        &self.inner.events
    }

    /// Counters so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
}

#[cfg(test)]
mod tests;
