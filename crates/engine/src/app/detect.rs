//! Content probes for app-layer protocol detection: each looks at the first bytes of one
//! direction (TCP) or at one datagram (UDP) and says match / no match / need more bytes.
//!
//! Ports matter only where Suricata also checks them: the SMTP `220` banner probe runs on
//! server ports 25/465, a client `QUIT` counts as SMTP only on an SMTP port (FTP uses it
//! too), and DNS is looked for on UDP port 53.

use super::smtp::{probe_to_client, probe_to_server, ProbeResult};
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

/// Server ports of SMTP submission/relay where a client `QUIT` is taken as SMTP.
const SMTP_PORTS: [u16; 3] = [25, 465, 587];
/// Server ports where the `220` banner probe runs (Suricata 8's probing-parser ports).
const SMTP_BANNER_PORTS: [u16; 2] = [25, 465];

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

/// Combines the answers of several probes: any match wins, else any "need more", else none.
fn combine(results: impl IntoIterator<Item = Probe>) -> Probe {
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
fn prefix(data: &[u8], pat: &[u8], proto: AppProto) -> Probe {
    let n = data.len().min(pat.len());
    if data[..n] != pat[..n] {
        Probe::NoMatch
    } else if n == pat.len() {
        Probe::Match(proto)
    } else {
        Probe::NeedMore
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

/// An HTTP/1 request line start: a known method followed by a space (case-sensitive, as
/// methods are).
pub fn probe_http_request(data: &[u8]) -> Probe {
    combine(HTTP_METHODS.iter().map(|m| prefix(data, m, AppProto::Http)))
}

/// An HTTP/1 response status line start: `HTTP/1.`.
pub fn probe_http_response(data: &[u8]) -> Probe {
    prefix(data, b"HTTP/1.", AppProto::Http)
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

fn smtp_client(data: &[u8], server_port: u16) -> Probe {
    match probe_to_server(data) {
        ProbeResult::Smtp => Probe::Match(AppProto::Smtp),
        ProbeResult::SmtpIfPort if SMTP_PORTS.contains(&server_port) => {
            Probe::Match(AppProto::Smtp)
        }
        ProbeResult::NeedMore => Probe::NeedMore,
        ProbeResult::SmtpIfPort | ProbeResult::NotSmtp => Probe::NoMatch,
    }
}

fn smtp_banner(data: &[u8]) -> Probe {
    match probe_to_client(data) {
        ProbeResult::Smtp | ProbeResult::SmtpIfPort => Probe::Match(AppProto::Smtp),
        ProbeResult::NeedMore => Probe::NeedMore,
        ProbeResult::NotSmtp => Probe::NoMatch,
    }
}

/// Probes the first bytes `data` of direction `dir` of a flow with IP protocol `l4`
/// (6 TCP, 17 UDP) whose server listens on `server_port`.
///
/// TCP to_server: TLS handshake record, SMTP `EHLO`/`HELO` (`QUIT` on an SMTP port), HTTP/1
/// request method. TCP to_client: SMTP `220 `/`220-` banner (only with
/// [`AppLayerConfig::smtp_server_banner`] and server port 25/465), `HTTP/1.`. DNS (UDP, or
/// TCP with its length prefix) when either port is 53; on port 53 nothing else is probed.
/// Anything else never matches.
pub fn probe(
    cfg: &AppLayerConfig,
    l4: u8,
    dir: Direction,
    client_port: u16,
    server_port: u16,
    data: &[u8],
) -> Probe {
    let dns_port = server_port == 53 || client_port == 53;
    match (l4, dir) {
        (6, _) if dns_port => probe_dns_tcp(data, dir),
        (6, Direction::ToServer) => combine([
            probe_tls(data),
            smtp_client(data, server_port),
            probe_http_request(data),
        ]),
        (6, Direction::ToClient) => {
            let banner = if cfg.smtp_server_banner && SMTP_BANNER_PORTS.contains(&server_port) {
                smtp_banner(data)
            } else {
                Probe::NoMatch
            };
            combine([banner, probe_http_response(data)])
        }
        (17, _) if dns_port => probe_dns_udp(data, dir),
        _ => Probe::NoMatch,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(banner: bool) -> AppLayerConfig {
        AppLayerConfig {
            smtp_server_banner: banner,
            ..AppLayerConfig::default()
        }
    }

    #[test]
    fn smtp_client_commands_any_case() {
        let c = cfg(false);
        for d in [&b"EHLO x\r\n"[..], b"helo x", b"eHlO"] {
            assert_eq!(
                probe(&c, 6, Direction::ToServer, 40000, 2525, d),
                Probe::Match(AppProto::Smtp),
                "{d:?}"
            );
        }
        assert_eq!(
            probe(&c, 6, Direction::ToServer, 40000, 25, b"EH"),
            Probe::NeedMore
        );
        // QUIT is FTP too: only SMTP on an SMTP port.
        assert_eq!(
            probe(&c, 6, Direction::ToServer, 40000, 25, b"QUIT\r\n"),
            Probe::Match(AppProto::Smtp)
        );
        assert_eq!(
            probe(&c, 6, Direction::ToServer, 40000, 21, b"QUIT\r\n"),
            Probe::NoMatch
        );
        assert_eq!(
            probe(
                &c,
                6,
                Direction::ToServer,
                40000,
                25,
                b"MAIL FROM:<a@b>\r\n"
            ),
            Probe::NoMatch
        );
    }

    #[test]
    fn smtp_banner_only_with_profile_and_port() {
        let banner = b"220 mx.example ESMTP\r\n";
        assert_eq!(
            probe(&cfg(true), 6, Direction::ToClient, 40000, 25, banner),
            Probe::Match(AppProto::Smtp)
        );
        assert_eq!(
            probe(&cfg(true), 6, Direction::ToClient, 40000, 465, b"220-x"),
            Probe::Match(AppProto::Smtp)
        );
        assert_eq!(
            probe(&cfg(true), 6, Direction::ToClient, 40000, 25, b"22"),
            Probe::NeedMore
        );
        // Suricata 7 / NFW: no banner probing at all.
        assert_eq!(
            probe(&cfg(false), 6, Direction::ToClient, 40000, 25, banner),
            Probe::NoMatch
        );
        // FTP greets with 220 too: not on port 21 (or 587).
        for port in [21, 587, 2525] {
            assert_eq!(
                probe(&cfg(true), 6, Direction::ToClient, 40000, port, banner),
                Probe::NoMatch
            );
        }
    }

    #[test]
    fn tls_http_dns_hooks() {
        let c = cfg(true);
        let hello = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01];
        assert_eq!(
            probe(&c, 6, Direction::ToServer, 40000, 25, &hello),
            Probe::Match(AppProto::Tls)
        );
        assert_eq!(
            probe(&c, 6, Direction::ToServer, 40000, 443, &[0x16, 0x03]),
            Probe::NeedMore
        );
        assert_eq!(
            probe(&c, 6, Direction::ToServer, 40000, 443, &[0x16, 0x03, 0x05]),
            Probe::NoMatch
        );
        assert_eq!(
            probe(&c, 6, Direction::ToServer, 40000, 443, &[0x17, 0x03, 0x03]),
            Probe::NoMatch
        );
        assert_eq!(
            probe(
                &c,
                6,
                Direction::ToServer,
                40000,
                8080,
                b"GET / HTTP/1.1\r\n"
            ),
            Probe::Match(AppProto::Http)
        );
        assert_eq!(
            probe(&c, 6, Direction::ToServer, 40000, 8080, b"OPTIO"),
            Probe::NeedMore
        );
        assert_eq!(
            probe(&c, 6, Direction::ToServer, 40000, 8080, b"GETX / HTTP/1.1"),
            Probe::NoMatch
        );
        assert_eq!(
            probe(
                &c,
                6,
                Direction::ToClient,
                40000,
                8080,
                b"HTTP/1.1 200 OK\r\n"
            ),
            Probe::Match(AppProto::Http)
        );
        let query = [
            0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 3, b'c', b'o', b'm', 0, 0, 1, 0,
            1,
        ];
        assert_eq!(
            probe(&c, 17, Direction::ToServer, 40000, 53, &query),
            Probe::Match(AppProto::Dns)
        );
        // Not on port 53, or no question, or a "response" sent to the server: no.
        assert_eq!(
            probe(&c, 17, Direction::ToServer, 40000, 5353, &query),
            Probe::NoMatch
        );
        let mut noq = query;
        noq[5] = 0;
        assert_eq!(
            probe(&c, 17, Direction::ToServer, 40000, 53, &noq),
            Probe::NoMatch
        );
        let mut resp = query;
        resp[2] |= 0x80;
        assert_eq!(
            probe(&c, 17, Direction::ToServer, 40000, 53, &resp),
            Probe::NoMatch
        );
        assert_eq!(
            probe(&c, 17, Direction::ToClient, 40000, 53, &resp),
            Probe::Match(AppProto::Dns)
        );
        assert_eq!(
            probe(&c, 17, Direction::ToServer, 40000, 53, &query[..11]),
            Probe::NoMatch
        );
        // DNS over TCP: the same message behind its length prefix.
        let mut tcp = vec![0, query.len() as u8];
        tcp.extend_from_slice(&query);
        assert_eq!(
            probe(&c, 6, Direction::ToServer, 40000, 53, &tcp),
            Probe::Match(AppProto::Dns)
        );
        assert_eq!(
            probe(&c, 6, Direction::ToServer, 40000, 53, &tcp[..5]),
            Probe::NeedMore
        );
        assert_eq!(
            probe(&c, 6, Direction::ToServer, 40000, 53, b"GET / HTTP/1.1\r\n"),
            Probe::NoMatch
        );
    }
}
