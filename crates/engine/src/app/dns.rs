//! DNS: detected on port 53 from the message header (no parser yet). DNS claims port 53
//! exclusively: nothing else is probed there.

use crate::app::detect::Probe;
use crate::app::registry::{AppProto, ProbeCtx, ProtoDef};
use crate::event::Direction;

/// Registry entry.
pub(crate) const DEF: ProtoDef = ProtoDef {
    proto: AppProto::Dns,
    name: "dns",
    exclusive_ports: &[53],
    probe,
    buffers: &[],
    hooks: [&[], &[]],
    parser: None,
    counters: ["app_layer.flow.dns", "app_layer.tx.dns"],
    greeting: "",
};

fn probe(cx: &ProbeCtx<'_>, data: &[u8]) -> Probe {
    match cx.l4 {
        6 => probe_dns_tcp(data, cx.dir),
        17 => probe_dns_udp(data, cx.dir),
        _ => Probe::NoMatch,
    }
}

/// A DNS message header (one whole UDP datagram): at least 12 bytes, a standard opcode
/// (0..=6 except the unassigned 3), 1 to 16 questions, and the QR bit matching the
/// direction (queries to the server, with rcode 0 and no answers; responses to the client).
pub fn probe_dns_udp(data: &[u8], dir: Direction) -> Probe {
    if data.len() < 12 {
        return Probe::NoMatch;
    }
    let qr = data[2] & 0x80 != 0;
    let opcode = (data[2] >> 3) & 0x0f;
    let rcode = data[3] & 0x0f;
    let qdcount = u16::from_be_bytes([data[4], data[5]]);
    let ancount = u16::from_be_bytes([data[6], data[7]]);
    let dir_ok = match dir {
        Direction::ToServer => !qr && rcode == 0 && ancount == 0,
        Direction::ToClient => qr,
    };
    if (1..=16).contains(&qdcount) && opcode <= 6 && opcode != 3 && dir_ok {
        Probe::Match(AppProto::Dns)
    } else {
        Probe::NoMatch
    }
}

/// DNS over TCP (port 53): a 2-byte length prefix (at least a header's 12 bytes), then a
/// message header as for UDP.
pub fn probe_dns_tcp(data: &[u8], dir: Direction) -> Probe {
    if data.len() < 14 {
        return Probe::NeedMore;
    }
    if usize::from(u16::from_be_bytes([data[0], data[1]])) < 12 {
        return Probe::NoMatch;
    }
    probe_dns_udp(&data[2..], dir)
}
