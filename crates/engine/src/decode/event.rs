//! Decoder events: what was wrong with a packet the decoder could not take at face value.

use serde::Serialize;

macro_rules! decode_events {
    ($( $(#[$doc:meta])* $variant:ident => $name:literal, )*) => {
        /// A decoder anomaly, named as Suricata names it (`anomaly.event` is `decoder.` + name,
        /// the stats counter `decoder.event.` + name).
        ///
        /// Raised instead of panicking or guessing; each occurrence increments its counter in
        /// [`crate::Stats`] and is queued as [`crate::Event::Decoder`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
        #[repr(u8)]
        pub enum DecodeEvent {
            $( $(#[$doc])* #[serde(rename = $name)] $variant, )*
        }

        impl DecodeEvent {
            /// Every event, in declaration order (`ALL[e as usize] == e`).
            pub const ALL: &'static [DecodeEvent] = &[$(DecodeEvent::$variant,)*];

            /// Suricata's event name without the `decoder.` prefix, e.g. `ipv4.trunc_pkt`.
            pub fn name(self) -> &'static str {
                match self { $(DecodeEvent::$variant => $name,)* }
            }

            /// The stats counter key, e.g. `decoder.event.ipv4.trunc_pkt`.
            pub fn stats_key(self) -> &'static str {
                match self { $(DecodeEvent::$variant => concat!("decoder.event.", $name),)* }
            }

            /// The EVE `anomaly.event` value, e.g. `decoder.ipv4.trunc_pkt`.
            pub fn anomaly_name(self) -> &'static str {
                match self { $(DecodeEvent::$variant => concat!("decoder.", $name),)* }
            }
        }
    };
}

decode_events! {
    /// Frame shorter than the link header (Ethernet: 14 bytes).
    EthernetPktTooSmall => "ethernet.pkt_too_small",
    /// Ethertype the decoder does not handle.
    EthernetUnknownEthertype => "ethernet.unknown_ethertype",
    /// Frame shorter than a Linux cooked v1 header (16 bytes).
    SllPktTooSmall => "sll.pkt_too_small",
    /// Frame shorter than a Linux cooked v2 header (20 bytes).
    Sll2PktTooSmall => "sll2.pkt_too_small",
    /// Frame shorter than the 4-byte BSD loopback header.
    NullPktTooSmall => "null.pkt_too_small",
    /// BSD loopback address family the decoder does not handle.
    NullUnsupportedType => "null.unsupported_type",
    /// Raw-IP frame whose first nibble is neither 4 nor 6.
    IpRawInvalidIpVersion => "ipraw.invalid_ip_version",
    /// 802.1Q tag truncated.
    VlanHeaderTooSmall => "vlan.header_too_small",
    /// More than three VLAN tags.
    VlanTooManyLayers => "vlan.too_many_layers",
    /// Tunnels nested deeper than the decoder allows.
    TooManyLayers => "too_many_layers",
    /// Fewer than 20 bytes for an IPv4 header.
    Ipv4PktTooSmall => "ipv4.pkt_too_small",
    /// IHL below 5 (20 bytes).
    Ipv4HlenTooSmall => "ipv4.hlen_too_small",
    /// Total length smaller than the header length.
    Ipv4IplenSmallerThanHlen => "ipv4.iplen_smaller_than_hlen",
    /// Total length (or the header) larger than the bytes captured.
    Ipv4TruncPkt => "ipv4.trunc_pkt",
    /// Version field is not 4.
    Ipv4WrongIpVersion => "ipv4.wrong_ip_version",
    /// An option with an invalid length byte.
    Ipv4OptInvalidLen => "ipv4.opt_invalid_len",
    /// Options not padded to the header end.
    Ipv4OptPadRequired => "ipv4.opt_pad_required",
    /// An option that appears twice.
    Ipv4OptDuplicate => "ipv4.opt_duplicate",
    /// An option type the decoder does not know.
    Ipv4OptUnknown => "ipv4.opt_unknown",
    /// ICMPv6 carried over IPv4.
    Ipv4WithIcmpv6 => "ipv4.icmpv6",
    /// Reassembled fragments would exceed 65535 bytes.
    Ipv4FragPktTooLarge => "ipv4.frag_pkt_too_large",
    /// Fragments overlap. With the same bytes (a retransmission) the datagram is still
    /// reassembled; with different bytes it is discarded, later fragments included.
    Ipv4FragOverlap => "ipv4.frag_overlap",
    /// Fragment dropped: reassembly limits reached, or fragments disagree on the datagram's
    /// length (one beyond the end the last fragment set; the datagram is then discarded), or
    /// its datagram was discarded before.
    Ipv4FragIgnored => "ipv4.frag_ignored",
    /// Fewer than 40 bytes for an IPv6 header.
    Ipv6PktTooSmall => "ipv6.pkt_too_small",
    /// Payload length larger than the bytes captured.
    Ipv6TruncPkt => "ipv6.trunc_pkt",
    /// An extension header runs past the packet.
    Ipv6TruncExthdr => "ipv6.trunc_exthdr",
    /// Two fragment headers.
    Ipv6ExthdrDuplFh => "ipv6.exthdr_dupl_fh",
    /// Fragment header with offset 0 and no more fragments.
    Ipv6ExthdrUselessFh => "ipv6.exthdr_useless_fh",
    /// Two routing headers.
    Ipv6ExthdrDuplRh => "ipv6.exthdr_dupl_rh",
    /// Two hop-by-hop headers, or hop-by-hop not first.
    Ipv6ExthdrDuplHh => "ipv6.exthdr_dupl_hh",
    /// Version field is not 6.
    Ipv6WrongIpVersion => "ipv6.wrong_ip_version",
    /// ICMPv4 carried over IPv6.
    Ipv6WithIcmpv4 => "ipv6.icmpv4",
    /// Reassembled fragments would exceed 65535 bytes of payload.
    Ipv6FragPktTooLarge => "ipv6.frag_pkt_too_large",
    /// Fragments overlap. With the same bytes (a retransmission) the datagram is still
    /// reassembled; with different bytes it is discarded (RFC 5722), later fragments included.
    Ipv6FragOverlap => "ipv6.frag_overlap",
    /// Non-final fragment whose length is not a multiple of 8.
    Ipv6FragInvalidLength => "ipv6.frag_invalid_length",
    /// Fragment dropped: reassembly limits reached, or fragments disagree on the datagram's
    /// length (the datagram is then discarded), or its datagram was discarded before.
    Ipv6FragIgnored => "ipv6.frag_ignored",
    /// More IPv6 extension headers than the decoder walks (8). sekisho's own name: Suricata has
    /// no such limit.
    Ipv6ExthdrTooMany => "ipv6.exthdr_too_many",
    /// Next header value the decoder does not handle.
    Ipv6UnknownNextHeader => "ipv6.unknown_next_header",
    /// IPv4-in-IPv6 payload whose version is not 4.
    Ipv6Ipv4InIpv6WrongVersion => "ipv6.ipv4_in_ipv6_wrong_version",
    /// Fewer than 20 bytes for a TCP header.
    TcpPktTooSmall => "tcp.pkt_too_small",
    /// Data offset below 5 or past the segment end.
    TcpHlenTooSmall => "tcp.hlen_too_small",
    /// An option length byte that runs past the header.
    TcpInvalidOptlen => "tcp.invalid_optlen",
    /// A known option with the wrong length (e.g. window scale not 3 bytes).
    TcpOptInvalidLen => "tcp.opt_invalid_len",
    /// The same option twice.
    TcpOptDuplicate => "tcp.opt_duplicate",
    /// Fewer than 8 bytes for a UDP header.
    UdpPktTooSmall => "udp.pkt_too_small",
    /// UDP length field below 8.
    UdpHlenInvalid => "udp.hlen_invalid",
    /// UDP length field disagrees with the IP payload length.
    UdpLenInvalid => "udp.len_invalid",
    /// Fewer than 8 bytes for an ICMPv4 header.
    Icmpv4PktTooSmall => "icmpv4.pkt_too_small",
    /// ICMPv4 type not defined.
    Icmpv4UnknownType => "icmpv4.unknown_type",
    /// ICMPv4 code not defined for its (known) type, e.g. an echo request with code 1.
    Icmpv4UnknownCode => "icmpv4.unknown_code",
    /// ICMPv4 error quoting a truncated IPv4 header.
    Icmpv4Ipv4TruncPkt => "icmpv4.ipv4_trunc_pkt",
    /// Fewer than 8 bytes for an ICMPv6 header.
    Icmpv6PktTooSmall => "icmpv6.pkt_too_small",
    /// ICMPv6 type not defined.
    Icmpv6UnknownType => "icmpv6.unknown_type",
    /// GENEVE header truncated or options past the packet.
    GenevePktTooSmall => "geneve.pkt_too_small",
    /// GENEVE protocol type the decoder does not handle.
    GeneveUnknownPayloadType => "geneve.unknown_payload_type",
    /// MPLS label stack entry truncated (fewer than 4 bytes).
    MplsHeaderTooSmall => "mpls.header_too_small",
    /// MPLS pseudowire control word truncated.
    MplsPktTooSmall => "mpls.pkt_too_small",
    /// Bottom-of-stack label 1 (router alert), which carries no payload of its own.
    MplsBadLabelRouterAlert => "mpls.bad_label_router_alert",
    /// Bottom-of-stack label 3 (implicit null), which must never appear on the wire.
    MplsBadLabelImplicitNull => "mpls.bad_label_implicit_null",
    /// Bottom-of-stack label in the reserved range 4-15.
    MplsBadLabelReserved => "mpls.bad_label_reserved",
    /// MPLS payload neither IPv4, IPv6 nor an Ethernet pseudowire.
    MplsUnknownPayloadType => "mpls.unknown_payload_type",
}

impl DecodeEvent {
    /// Number of distinct events (size of the per-event counter array).
    pub const COUNT: usize = Self::ALL.len();
}
