//! TLS: detected from the client's first handshake record (no parser yet).

use crate::app::detect::Probe;
use crate::app::registry::{AppProto, ProbeCtx, ProtoDef};
use crate::event::Direction;

/// Registry entry.
pub(crate) const DEF: ProtoDef = ProtoDef {
    proto: AppProto::Tls,
    name: "tls",
    exclusive_ports: &[],
    probe,
    buffers: &[],
    hooks: [&[], &[]],
    parser: None,
    counters: ["app_layer.flow.tls", "app_layer.tx.tls"],
    greeting: "",
};

fn probe(cx: &ProbeCtx<'_>, data: &[u8]) -> Probe {
    if cx.l4 == 6 && cx.dir == Direction::ToServer {
        probe_tls(data)
    } else {
        Probe::NoMatch
    }
}

/// A TLS handshake record header: content type 22, major version 3, minor 0..=4.
pub fn probe_tls(data: &[u8]) -> Probe {
    match data {
        [] | [0x16] | [0x16, 0x03] => Probe::NeedMore,
        [0x16, 0x03, minor, ..] if *minor <= 0x04 => Probe::Match(AppProto::Tls),
        _ => Probe::NoMatch,
    }
}
