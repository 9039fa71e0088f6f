//! Link-layer types the engine decodes.

use serde::Serialize;

/// The link-layer header type of a frame, as pcap's `LINKTYPE_*` values name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum LinkType {
    /// `LINKTYPE_ETHERNET` (1): Ethernet II, with optional 802.1Q/802.1ad VLAN tags.
    Ethernet,
    /// `LINKTYPE_RAW` (101, also DLT 12/14 on some systems): an IPv4 or IPv6 packet, version from
    /// the first nibble.
    Raw,
    /// `LINKTYPE_IPV4` (228): an IPv4 packet.
    Ipv4,
    /// `LINKTYPE_IPV6` (229): an IPv6 packet.
    Ipv6,
    /// `LINKTYPE_LINUX_SLL` (113): Linux cooked capture v1 (16-byte header).
    LinuxSll,
    /// `LINKTYPE_LINUX_SLL2` (276): Linux cooked capture v2 (20-byte header), what
    /// `tcpdump -i any` writes.
    LinuxSll2,
    /// `LINKTYPE_NULL` (0): BSD loopback, 4-byte address family in host byte order.
    Null,
    /// `LINKTYPE_LOOP` (108): OpenBSD loopback, 4-byte address family in network byte order.
    Loop,
}

impl LinkType {
    /// Maps a pcap/pcapng link-type number to a supported link type; `None` if unsupported.
    pub fn from_linktype(n: u32) -> Option<LinkType> {
        Some(match n {
            0 => LinkType::Null,
            1 => LinkType::Ethernet,
            12 | 14 | 101 => LinkType::Raw,
            108 => LinkType::Loop,
            113 => LinkType::LinuxSll,
            228 => LinkType::Ipv4,
            229 => LinkType::Ipv6,
            276 => LinkType::LinuxSll2,
            _ => return None,
        })
    }

    /// The canonical pcap `LINKTYPE_*` number.
    pub fn to_linktype(self) -> u32 {
        match self {
            LinkType::Null => 0,
            LinkType::Ethernet => 1,
            LinkType::Raw => 101,
            LinkType::Loop => 108,
            LinkType::LinuxSll => 113,
            LinkType::Ipv4 => 228,
            LinkType::Ipv6 => 229,
            LinkType::LinuxSll2 => 276,
        }
    }
}
