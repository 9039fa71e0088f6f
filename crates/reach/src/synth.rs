//! Conversation synthesis: the packets a real client and server would exchange for the
//! question asked (a TCP handshake, then a TLS ClientHello with the SNI, an HTTP request
//! with the Host, an SMTP session, a DNS query, or one data segment each way), built with
//! etherparse so the sensor decodes, reassembles and parses them like captured traffic.

use std::fmt;

use etherparse::PacketBuilder;

use crate::path::Header;

/// The protocol of a question.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    /// TCP: handshake, one data segment each way.
    Tcp,
    /// UDP: one datagram each way.
    Udp,
    /// TLS over TCP: handshake, ClientHello (SNI), ServerHello.
    Tls,
    /// HTTP/1.1 over TCP: a GET with the Host, a 200 reply.
    Http,
    /// SMTP over TCP: banner, EHLO, MAIL FROM, RCPT TO (each), DATA, message, QUIT.
    Smtp,
    /// DNS over UDP: an A query and its answer.
    Dns,
}

impl Proto {
    /// Every protocol's name, as `--proto` takes it.
    pub const NAMES: [&'static str; 6] = ["tcp", "udp", "tls", "http", "smtp", "dns"];

    /// Parses a `--proto` value.
    pub fn parse(s: &str) -> Option<Proto> {
        Some(match s.to_ascii_lowercase().as_str() {
            "tcp" => Proto::Tcp,
            "udp" => Proto::Udp,
            "tls" => Proto::Tls,
            "http" => Proto::Http,
            "smtp" => Proto::Smtp,
            "dns" => Proto::Dns,
            _ => return None,
        })
    }

    /// The IP protocol number it runs on.
    pub fn ip_proto(self) -> u8 {
        match self {
            Proto::Udp | Proto::Dns => 17,
            _ => 6,
        }
    }

    /// The port asked when the question names none.
    pub fn default_port(self) -> Option<u16> {
        match self {
            Proto::Tls => Some(443),
            Proto::Http => Some(80),
            Proto::Smtp => Some(25),
            Proto::Dns => Some(53),
            Proto::Tcp | Proto::Udp => None,
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Tls => "tls",
            Proto::Http => "http",
            Proto::Smtp => "smtp",
            Proto::Dns => "dns",
        })
    }
}

/// What the client says, beyond the addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Talk {
    /// The protocol.
    pub proto: Proto,
    /// TLS: the ClientHello's server name (none: no SNI extension).
    pub sni: Option<String>,
    /// HTTP: the Host header.
    pub host: Option<String>,
    /// SMTP: MAIL FROM.
    pub mail_from: String,
    /// SMTP: the RCPT TO addresses, in order.
    pub rcpt: Vec<String>,
    /// DNS: the name asked.
    pub qname: String,
}

impl Talk {
    /// A conversation of `proto` with the defaults filled in.
    pub fn new(proto: Proto) -> Talk {
        Talk {
            proto,
            sni: None,
            host: None,
            mail_from: "sender@example.net".into(),
            rcpt: vec!["postmaster@example.com".into()],
            qname: "example.com".into(),
        }
    }
}

/// Which way a segment goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Client to server (forward path).
    ToServer,
    /// Server to client (return path).
    ToClient,
}

/// One packet of a conversation, independent of the addresses it is sent with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Its direction.
    pub dir: Dir,
    /// TCP flags (etherparse bit order is not used; see the `FLAG_*` constants).
    pub flags: u8,
    /// TCP sequence number (0 for UDP).
    pub seq: u32,
    /// TCP acknowledgement number (0: no ACK flag).
    pub ack: u32,
    /// Transport payload.
    pub payload: Vec<u8>,
    /// What it is, for reports (`SYN`, `ClientHello (SNI dev.example.com)`, `RCPT TO:<a@b>`).
    pub label: String,
    /// The packet the question is about (the ClientHello, the request, a RCPT TO, the
    /// query, the client's data): a rule deciding here is the one reports name first.
    pub key: bool,
}

/// SYN.
pub const FLAG_SYN: u8 = 0x02;
/// ACK.
pub const FLAG_ACK: u8 = 0x10;
/// PSH.
pub const FLAG_PSH: u8 = 0x08;

/// Client's initial sequence number.
const CISN: u32 = 1_000;
/// Server's initial sequence number.
const SISN: u32 = 500_000;

/// Builds TCP segments with consistent sequence numbers.
struct TcpTalk {
    c: u32,
    s: u32,
    out: Vec<Segment>,
}

impl TcpTalk {
    fn handshake() -> TcpTalk {
        let mut t = TcpTalk {
            c: CISN,
            s: SISN,
            out: Vec::new(),
        };
        t.out.push(Segment {
            dir: Dir::ToServer,
            flags: FLAG_SYN,
            seq: CISN,
            ack: 0,
            payload: Vec::new(),
            label: "SYN".into(),
            key: false,
        });
        t.out.push(Segment {
            dir: Dir::ToClient,
            flags: FLAG_SYN | FLAG_ACK,
            seq: SISN,
            ack: CISN + 1,
            payload: Vec::new(),
            label: "SYN-ACK".into(),
            key: false,
        });
        t.c += 1;
        t.s += 1;
        t.out.push(Segment {
            dir: Dir::ToServer,
            flags: FLAG_ACK,
            seq: t.c,
            ack: t.s,
            payload: Vec::new(),
            label: "ACK (handshake)".into(),
            key: false,
        });
        t
    }

    fn data(&mut self, dir: Dir, payload: Vec<u8>, label: String) {
        let (seq, ack) = match dir {
            Dir::ToServer => (self.c, self.s),
            Dir::ToClient => (self.s, self.c),
        };
        let n = payload.len() as u32;
        self.out.push(Segment {
            dir,
            flags: FLAG_ACK | FLAG_PSH,
            seq,
            ack,
            payload,
            label,
            key: false,
        });
        match dir {
            Dir::ToServer => self.c = self.c.wrapping_add(n),
            Dir::ToClient => self.s = self.s.wrapping_add(n),
        }
    }

    /// Marks the last segment as the question's key packet.
    fn key(&mut self) {
        if let Some(s) = self.out.last_mut() {
            s.key = true;
        }
    }

    fn ack(&mut self, dir: Dir) {
        let (seq, ack) = match dir {
            Dir::ToServer => (self.c, self.s),
            Dir::ToClient => (self.s, self.c),
        };
        self.out.push(Segment {
            dir,
            flags: FLAG_ACK,
            seq,
            ack,
            payload: Vec::new(),
            label: "ACK".into(),
            key: false,
        });
    }
}

fn line_label(b: &[u8]) -> String {
    String::from_utf8_lossy(b).trim_end().to_string()
}

/// The conversation for `talk`.
pub fn conversation(talk: &Talk) -> Vec<Segment> {
    match talk.proto {
        Proto::Udp => vec![
            Segment {
                dir: Dir::ToServer,
                flags: 0,
                seq: 0,
                ack: 0,
                payload: b"sekisho reach probe\n".to_vec(),
                label: "datagram (client)".into(),
                key: true,
            },
            Segment {
                dir: Dir::ToClient,
                flags: 0,
                seq: 0,
                ack: 0,
                payload: b"sekisho reach reply\n".to_vec(),
                label: "datagram (server)".into(),
                key: false,
            },
        ],
        Proto::Dns => {
            let q = dns_message(&talk.qname, false);
            let a = dns_message(&talk.qname, true);
            vec![
                Segment {
                    dir: Dir::ToServer,
                    flags: 0,
                    seq: 0,
                    ack: 0,
                    payload: q,
                    label: format!("DNS query {} A", talk.qname),
                    key: true,
                },
                Segment {
                    dir: Dir::ToClient,
                    flags: 0,
                    seq: 0,
                    ack: 0,
                    payload: a,
                    label: format!("DNS answer {} A", talk.qname),
                    key: false,
                },
            ]
        }
        Proto::Tcp => {
            let mut t = TcpTalk::handshake();
            t.data(
                Dir::ToServer,
                b"sekisho reach probe\n".to_vec(),
                "data (client)".into(),
            );
            t.key();
            t.data(
                Dir::ToClient,
                b"sekisho reach reply\n".to_vec(),
                "data (server)".into(),
            );
            t.ack(Dir::ToServer);
            t.out
        }
        Proto::Tls => {
            let mut t = TcpTalk::handshake();
            let label = match &talk.sni {
                Some(s) => format!("ClientHello (SNI {s})"),
                None => "ClientHello (no SNI)".into(),
            };
            t.data(Dir::ToServer, client_hello(talk.sni.as_deref()), label);
            t.key();
            t.data(
                Dir::ToClient,
                server_hello(),
                "ServerHello, ServerHelloDone".into(),
            );
            t.ack(Dir::ToServer);
            t.out
        }
        Proto::Http => {
            let mut t = TcpTalk::handshake();
            let host = talk.host.as_deref().unwrap_or("example.com");
            let req = format!(
                "GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: sekisho-reach\r\nAccept: */*\r\n\r\n"
            );
            t.data(
                Dir::ToServer,
                req.into_bytes(),
                format!("GET / (Host {host})"),
            );
            t.key();
            t.data(
                Dir::ToClient,
                b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec(),
                "HTTP/1.1 200 OK".into(),
            );
            t.ack(Dir::ToServer);
            t.out
        }
        Proto::Smtp => {
            let mut t = TcpTalk::handshake();
            let say = |t: &mut TcpTalk, dir: Dir, b: Vec<u8>| {
                let l = line_label(&b);
                t.data(dir, b, l);
            };
            say(&mut t, Dir::ToClient, b"220 mx.example ESMTP\r\n".to_vec());
            say(&mut t, Dir::ToServer, b"EHLO client.example\r\n".to_vec());
            say(
                &mut t,
                Dir::ToClient,
                b"250-mx.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n".to_vec(),
            );
            say(
                &mut t,
                Dir::ToServer,
                format!("MAIL FROM:<{}>\r\n", talk.mail_from).into_bytes(),
            );
            say(&mut t, Dir::ToClient, b"250 2.1.0 Ok\r\n".to_vec());
            for r in &talk.rcpt {
                say(
                    &mut t,
                    Dir::ToServer,
                    format!("RCPT TO:<{r}>\r\n").into_bytes(),
                );
                t.key();
                say(&mut t, Dir::ToClient, b"250 2.1.5 Ok\r\n".to_vec());
            }
            say(&mut t, Dir::ToServer, b"DATA\r\n".to_vec());
            say(
                &mut t,
                Dir::ToClient,
                b"354 End data with <CR><LF>.<CR><LF>\r\n".to_vec(),
            );
            let mut msg = format!("From: <{}>\r\n", talk.mail_from);
            msg.push_str(&format!("To: <{}>\r\n", talk.rcpt.join(">, <")));
            msg.push_str("Subject: sekisho reach\r\n\r\nreachability probe\r\n.\r\n");
            t.data(
                Dir::ToServer,
                msg.into_bytes(),
                "message and <CRLF>.<CRLF>".into(),
            );
            say(&mut t, Dir::ToClient, b"250 2.0.0 Ok: queued\r\n".to_vec());
            say(&mut t, Dir::ToServer, b"QUIT\r\n".to_vec());
            say(&mut t, Dir::ToClient, b"221 2.0.0 Bye\r\n".to_vec());
            t.ack(Dir::ToServer);
            t.out
        }
    }
}

/// The raw IPv4 packet of `seg` as seen where the client side is `h.src:h.sport` and the
/// server side `h.dst:h.dport`.
pub fn packet(h: &Header, seg: &Segment) -> Vec<u8> {
    let (src, dst, sport, dport) = match seg.dir {
        Dir::ToServer => (h.src, h.dst, h.sport, h.dport),
        Dir::ToClient => (h.dst, h.src, h.dport, h.sport),
    };
    let ip = PacketBuilder::ipv4(src.octets(), dst.octets(), 64);
    let mut out = Vec::with_capacity(60 + seg.payload.len());
    // Writing to a Vec cannot fail; the payload sizes are far below the IPv4 limit.
    if h.proto == 17 {
        let _ = ip.udp(sport, dport).write(&mut out, &seg.payload);
    } else {
        let mut b = ip.tcp(sport, dport, seg.seq, 64240);
        if seg.flags & FLAG_SYN != 0 {
            b = b.syn();
        }
        if seg.flags & FLAG_PSH != 0 {
            b = b.psh();
        }
        if seg.flags & FLAG_ACK != 0 {
            b = b.ack(seg.ack);
        }
        let _ = b.write(&mut out, &seg.payload);
    }
    out
}

/// A TLS 1.2-compatible ClientHello record (the shape browsers send: TLS 1.3 in
/// supported_versions), with the server_name extension when `sni` is given.
pub fn client_hello(sni: Option<&str>) -> Vec<u8> {
    let mut ext = Vec::new();
    if let Some(name) = sni {
        let n = name.as_bytes();
        let mut sn = Vec::new();
        sn.extend_from_slice(&((n.len() + 3) as u16).to_be_bytes()); // server_name_list
        sn.push(0); // host_name
        sn.extend_from_slice(&(n.len() as u16).to_be_bytes());
        sn.extend_from_slice(n);
        ext.extend_from_slice(&[0x00, 0x00]);
        ext.extend_from_slice(&(sn.len() as u16).to_be_bytes());
        ext.extend_from_slice(&sn);
    }
    // supported_groups (x25519, secp256r1)
    ext.extend_from_slice(&[0x00, 0x0a, 0x00, 0x06, 0x00, 0x04, 0x00, 0x1d, 0x00, 0x17]);
    // signature_algorithms (ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256)
    ext.extend_from_slice(&[0x00, 0x0d, 0x00, 0x06, 0x00, 0x04, 0x04, 0x03, 0x08, 0x04]);
    // supported_versions (TLS 1.3, 1.2)
    ext.extend_from_slice(&[0x00, 0x2b, 0x00, 0x05, 0x04, 0x03, 0x04, 0x03, 0x03]);
    let mut body = Vec::new();
    body.extend_from_slice(&[0x03, 0x03]);
    body.extend_from_slice(&[0x5e; 32]); // random
    body.push(0); // session id
    let suites: [u16; 4] = [0x1301, 0x1302, 0xc02b, 0xc02f];
    body.extend_from_slice(&((suites.len() * 2) as u16).to_be_bytes());
    for s in suites {
        body.extend_from_slice(&s.to_be_bytes());
    }
    body.extend_from_slice(&[1, 0]); // compression: null
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    handshake_record(1, &body)
}

/// A TLS 1.2 ServerHello and ServerHelloDone in one record.
pub fn server_hello() -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&[0x03, 0x03]);
    body.extend_from_slice(&[0x7a; 32]);
    body.push(0);
    body.extend_from_slice(&0xc02fu16.to_be_bytes());
    body.push(0);
    let mut hs = handshake(2, &body);
    hs.extend_from_slice(&handshake(14, &[]));
    record(0x16, &hs)
}

fn handshake(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![kind];
    out.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(body);
    out
}

fn handshake_record(kind: u8, body: &[u8]) -> Vec<u8> {
    record(0x16, &handshake(kind, body))
}

fn record(ct: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![ct, 0x03, 0x01];
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// A DNS A query for `qname` (RD set), or its answer (one A record, 192.0.2.1).
pub fn dns_message(qname: &str, answer: bool) -> Vec<u8> {
    let mut m = vec![0x5e, 0x4b];
    m.extend_from_slice(if answer { &[0x81, 0x80] } else { &[0x01, 0x00] });
    m.extend_from_slice(&[0, 1, 0, u8::from(answer), 0, 0, 0, 0]);
    for label in qname
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        let b = &label.as_bytes()[..label.len().min(63)];
        m.push(b.len() as u8);
        m.extend_from_slice(b);
    }
    m.push(0);
    m.extend_from_slice(&[0, 1, 0, 1]);
    if answer {
        m.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
    }
    m
}
