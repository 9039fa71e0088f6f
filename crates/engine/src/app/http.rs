//! HTTP/1: detected from a request method or a status line (no parser yet).

use crate::app::detect::{combine, prefix, Probe};
use crate::app::registry::{AppProto, ProbeCtx, ProtoDef};
use crate::event::Direction;

/// Registry entry.
pub(crate) const DEF: ProtoDef = ProtoDef {
    proto: AppProto::Http,
    name: "http",
    exclusive_ports: &[],
    probe,
    buffers: &[],
    hooks: [&[], &[]],
    parser: None,
    counters: ["app_layer.flow.http", "app_layer.tx.http"],
    greeting: "",
};

/// HTTP/1 request methods recognised at the start of a client stream (followed by a space).
const HTTP_METHODS: [&[u8]; 9] = [
    b"GET ",
    b"POST ",
    b"HEAD ",
    b"PUT ",
    b"DELETE ",
    b"OPTIONS ",
    b"CONNECT ",
    b"PATCH ",
    b"TRACE ",
];

fn probe(cx: &ProbeCtx<'_>, data: &[u8]) -> Probe {
    match (cx.l4, cx.dir) {
        (6, Direction::ToServer) => probe_http_request(data),
        (6, Direction::ToClient) => probe_http_response(data),
        _ => Probe::NoMatch,
    }
}

/// An HTTP/1 request line start: a known method followed by a space (case-sensitive, as
/// methods are).
pub fn probe_http_request(data: &[u8]) -> Probe {
    combine(HTTP_METHODS.iter().map(|m| prefix(data, m, AppProto::Http)))
}

/// An HTTP/1 response status line start: `HTTP/1.`.
pub fn probe_http_response(data: &[u8]) -> Probe {
    prefix(data, b"HTTP/1.", AppProto::Http)
}
