//! SSH: detected, not parsed. Both sides open with an identification string
//! `SSH-protoversion-softwareversion` (RFC 4253 §4.2), so either direction's first bytes
//! identify it; rules on the `ssh` protocol (`drop ssh ...`, NFW's `SSH` header) apply from
//! there. No buffers, hooks or transactions yet.
//!
//! RFC 4253 lets a server send other lines before its identification string; such a server's
//! greeting does not match here, and the flow is still identified by the client's bytes.

use crate::app::detect::Probe;
use crate::app::registry::{AppProto, ProbeCtx, ProtoDef};

/// The registry entry.
pub(crate) const DEF: ProtoDef = ProtoDef {
    proto: AppProto::Ssh,
    name: "ssh",
    exclusive_ports: &[],
    probe,
    buffers: &[],
    hooks: [&[], &[]],
    parser: None,
    counters: ["app_layer.flow.ssh", "app_layer.tx.ssh"],
    greeting: "an SSH identification string (SSH-2.0-...)",
};

const MAGIC: &[u8] = b"SSH-";

fn probe(cx: &ProbeCtx<'_>, data: &[u8]) -> Probe {
    if cx.l4 != 6 {
        return Probe::NoMatch;
    }
    probe_ssh(data)
}

/// `SSH-` at the start of a TCP direction.
pub fn probe_ssh(data: &[u8]) -> Probe {
    let n = data.len().min(MAGIC.len());
    if data[..n] != MAGIC[..n] {
        Probe::NoMatch
    } else if n < MAGIC.len() {
        Probe::NeedMore
    } else {
        Probe::Match(AppProto::Ssh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identification_string_matches_and_prefixes_wait() {
        assert_eq!(
            probe_ssh(b"SSH-2.0-OpenSSH_9.2p1\r\n"),
            Probe::Match(AppProto::Ssh)
        );
        assert_eq!(probe_ssh(b"SSH-1.99-x\r\n"), Probe::Match(AppProto::Ssh));
        assert_eq!(probe_ssh(b"SS"), Probe::NeedMore);
        assert_eq!(probe_ssh(b""), Probe::NeedMore);
        assert_eq!(probe_ssh(b"EHLO x\r\n"), Probe::NoMatch);
        assert_eq!(probe_ssh(b"ssh-2.0-lower"), Probe::NoMatch);
    }
}
