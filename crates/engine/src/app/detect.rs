//! Content probes for app-layer protocol detection: each looks at the first bytes of one
//! direction (TCP) or at one datagram (UDP) and says match / no match / need more bytes.
//!
//! The probes themselves live in each protocol's module (registered in
//! [`super::registry::PROTOCOLS`]); this module has what they share.

use super::registry::ProbeCtx;
use super::AppProto;
use crate::config::AppLayerConfig;
use crate::event::Direction;

/// Outcome of probing one direction's first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// The bytes identify this protocol.
    Match(AppProto),
    /// Could still match something once more bytes arrive.
    NeedMore,
    /// No known protocol starts like this.
    NoMatch,
}

/// Bytes of a direction's start any probe needs at most (`OPTIONS ` / `CONNECT ` are 8).
pub const PROBE_LEN: usize = 16;

/// Combines the answers of several probes: any match wins, else any "need more", else none.
pub fn combine(results: impl IntoIterator<Item = Probe>) -> Probe {
    let mut out = Probe::NoMatch;
    for r in results {
        match r {
            Probe::Match(_) => return r,
            Probe::NeedMore => out = Probe::NeedMore,
            Probe::NoMatch => {}
        }
    }
    out
}

/// `data` starts with `pat` (Match), is a proper prefix of it (NeedMore), or neither.
pub fn prefix(data: &[u8], pat: &[u8], proto: AppProto) -> Probe {
    let n = data.len().min(pat.len());
    if data[..n] != pat[..n] {
        Probe::NoMatch
    } else if n == pat.len() {
        Probe::Match(proto)
    } else {
        Probe::NeedMore
    }
}

/// Probes the first bytes `data` of one direction against every registered protocol
/// ([`super::registry::probe_all`]: a protocol claiming one of the flow's ports exclusively, such
/// as DNS on 53, is the only one probed; otherwise any match wins).
pub fn probe(
    cfg: &AppLayerConfig,
    l4: u8,
    dir: Direction,
    client_port: u16,
    server_port: u16,
    data: &[u8],
) -> Probe {
    super::registry::probe_all(
        &ProbeCtx {
            cfg,
            l4,
            dir,
            client_port,
            server_port,
        },
        data,
    )
}
