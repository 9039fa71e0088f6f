//! TLS: the record layer over the reassembled stream, the handshake messages that name the
//! peers (ClientHello, ServerHello, the server's Certificate for TLS ≤ 1.2), and the client
//! and server fingerprints (JA3, JA3S, JA4).
//!
//! Sans-I/O and total: the engine feeds in-order bytes per direction ([`TlsParser::feed`]).
//! The record layer is ours: records are reassembled across segments (a record header or
//! body may arrive a byte at a time), handshake messages across records (a ClientHello
//! split over several records or segments, as post-quantum key shares make common, still
//! yields its SNI once its last byte arrives). The messages themselves are decoded by
//! `tls-parser`, certificates by `x509-parser`.
//!
//! Memory is bounded: a partial record header is at most 5 bytes, a handshake message being
//! assembled at most [`MAX_HANDSHAKE_LEN`] bytes (a longer one raises
//! `HANDSHAKE_INVALID_LENGTH` and is skipped), at most [`MAX_CERTS`] certificates and
//! [`MAX_LIST`] entries of any list (ciphers, extensions, groups, ALPNs) are kept.
//!
//! One transaction per flow (tx id 0), as in Suricata: it is logged once the handshake is
//! done in both directions (encrypted records seen each way), or at flow end. After a
//! `ChangeCipherSpec` or the first encrypted record of a direction nothing more of that
//! direction is parsed. A record that is not TLS (an SSLv2-style hello, a bad version, an
//! oversized length) raises an event and stops the direction: it is not resynchronised.
//!
//! ```
//! use sekisho_engine::app::tls::TlsParser;
//! use sekisho_engine::Direction;
//! // A minimal ClientHello for "a.example" in two segments.
//! let sni = b"a.example";
//! let mut ext = vec![0, 0, 0, (sni.len() + 5) as u8, 0, (sni.len() + 3) as u8, 0, 0,
//!     sni.len() as u8];
//! ext.extend_from_slice(sni);
//! let mut body = vec![3, 3];
//! body.extend_from_slice(&[0; 32]);
//! body.extend_from_slice(&[0, 0, 2, 0x13, 0x01, 1, 0]);
//! body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
//! body.extend_from_slice(&ext);
//! let mut hs = vec![1, 0, (body.len() >> 8) as u8, body.len() as u8];
//! hs.extend_from_slice(&body);
//! let mut rec = vec![22, 3, 1, (hs.len() >> 8) as u8, hs.len() as u8];
//! rec.extend_from_slice(&hs);
//! let mut p = TlsParser::new();
//! p.feed(Direction::ToServer, &rec[..20]);
//! assert!(p.tx().sni.is_none());
//! p.feed(Direction::ToServer, &rec[20..]);
//! assert_eq!(p.tx().sni.as_deref(), Some(&b"a.example"[..]));
//! ```

use std::fmt::Write as _;

use md5::{Digest as _, Md5};
use sha1::Sha1;
use sha2::Sha256;
use tls_parser::{TlsMessage, TlsMessageHandshake};

use crate::app::detect::Probe;
use crate::app::registry::{AppProto, AppTxData, BufferDef, Feed, Parser, ProbeCtx, ProtoDef};
use crate::config::AppLayerConfig;
use crate::event::Direction;

/// Longest record body accepted (TLSCiphertext: 2^14 + 2048); longer is not TLS.
pub const MAX_RECORD_LEN: usize = 16384 + 2048;
/// Longest handshake message assembled (a certificate chain fits); longer ones are skipped.
pub const MAX_HANDSHAKE_LEN: usize = 64 * 1024;
/// Certificates of a chain kept.
pub const MAX_CERTS: usize = 16;
/// Entries kept of each list (ciphers, extensions, groups, ALPNs, SANs).
pub const MAX_LIST: usize = 512;
/// Anomaly events kept per flow.
pub const MAX_EVENTS: usize = 64;

/// An anomaly the parser raises, named like Suricata's `tls` app-layer events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlsEvent {
    /// A record type outside 20..=24 (or an SSLv2-style header): the direction stops.
    InvalidRecordType,
    /// A record version whose major byte is not 3: the direction stops.
    InvalidRecordVersion,
    /// A record longer than [`MAX_RECORD_LEN`]: the direction stops.
    InvalidRecordLength,
    /// A handshake message longer than [`MAX_HANDSHAKE_LEN`] (skipped).
    HandshakeInvalidLength,
    /// A handshake message that does not decode.
    InvalidHandshakeMessage,
    /// A certificate that does not decode.
    InvalidCertificate,
    /// A second ClientHello (after a HelloRetryRequest or a renegotiation): the first one's
    /// fields are kept.
    MultipleClientHello,
    /// A heartbeat record.
    HeartbeatMessage,
    /// Stream data lost (reassembly gap): the direction stops.
    StreamGap,
    /// sekisho's: a ClientHello without SNI, so a name allow list cannot see where it goes.
    SniAbsent,
    /// sekisho's: a ClientHello with Encrypted Client Hello, so its SNI is only the outer,
    /// public name.
    EncryptedClientHello,
    /// sekisho's: the server certificate (TLS ≤ 1.2, where it is visible) does not cover
    /// the ClientHello's SNI: the name a list allowed is not the server the client talks to
    /// (or the server is misconfigured). See [`cert_covers`].
    SniCertMismatch,
}

impl TlsEvent {
    /// The EVE `anomaly.event` name.
    pub fn name(self) -> &'static str {
        match self {
            TlsEvent::InvalidRecordType => "INVALID_RECORD_TYPE",
            TlsEvent::InvalidRecordVersion => "INVALID_RECORD_VERSION",
            TlsEvent::InvalidRecordLength => "INVALID_RECORD_LENGTH",
            TlsEvent::HandshakeInvalidLength => "HANDSHAKE_INVALID_LENGTH",
            TlsEvent::InvalidHandshakeMessage => "INVALID_HANDSHAKE_MESSAGE",
            TlsEvent::InvalidCertificate => "INVALID_CERTIFICATE",
            TlsEvent::MultipleClientHello => "MULTIPLE_CLIENT_HELLO",
            TlsEvent::HeartbeatMessage => "HEARTBEAT_MESSAGE",
            TlsEvent::StreamGap => "STREAM_GAP",
            TlsEvent::SniAbsent => "SNI_ABSENT",
            TlsEvent::EncryptedClientHello => "ENCRYPTED_CLIENT_HELLO",
            TlsEvent::SniCertMismatch => "SNI_CERT_MISMATCH",
        }
    }
}

/// The server certificate fields rules and logs use (the leaf of the chain).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertInfo {
    /// Subject DN as Suricata prints it (`C=US, O=Example, CN=www.example.com`).
    pub subject: String,
    /// Issuer DN.
    pub issuer: String,
    /// Serial number: upper-case hex bytes joined by `:`.
    pub serial: String,
    /// SHA-1 of the DER: lower-case hex bytes joined by `:`.
    pub fingerprint: String,
    /// `notBefore`, `YYYY-MM-DDTHH:MM:SS` (UTC, no zone).
    pub not_before: String,
    /// `notAfter`, same format.
    pub not_after: String,
    /// DNS names of the subjectAltName extension.
    pub san: Vec<String>,
    /// The subject's common names (what names the server when there is no DNS SAN).
    pub common_names: Vec<String>,
}

/// The TLS session of a flow (its one transaction).
#[derive(Debug, Clone, Default)]
pub struct TlsTx {
    /// The ClientHello was parsed (`ssl_state:client_hello`, hook `client_hello_done`).
    pub client_hello: bool,
    /// The ServerHello was parsed.
    pub server_hello: bool,
    /// The client sent its key exchange (TLS ≤ 1.2 ClientKeyExchange).
    pub client_keyx: bool,
    /// The server sent a ServerKeyExchange.
    pub server_keyx: bool,
    /// The server's Certificate was parsed.
    pub server_cert: bool,
    /// ServerHelloDone seen.
    pub server_hello_done: bool,
    /// The client's side of the handshake is over (ChangeCipherSpec or encrypted data).
    pub client_done: bool,
    /// The server's side of the handshake is over.
    pub server_done: bool,
    /// The client sent a fatal alert or its stream ended.
    pub client_finished: bool,
    /// The server sent a fatal alert or its stream ended.
    pub server_finished: bool,
    /// The record version of the client's first record.
    pub record_version: u16,
    /// ClientHello `legacy_version`.
    pub client_version: u16,
    /// ServerHello version: `supported_versions` when present (TLS 1.3), else legacy.
    pub server_version: Option<u16>,
    /// The SNI host name (first `host_name` entry).
    pub sni: Option<Vec<u8>>,
    /// Client cipher suites, in order (GREASE included).
    pub ciphers: Vec<u16>,
    /// Client extension types, in order (GREASE included).
    pub extensions: Vec<u16>,
    /// `supported_groups`, in order.
    pub groups: Vec<u16>,
    /// `ec_point_formats`, in order.
    pub point_formats: Vec<u8>,
    /// `signature_algorithms`, in order.
    pub sig_algs: Vec<u16>,
    /// `supported_versions` offered by the client, in order.
    pub versions: Vec<u16>,
    /// ALPN protocols offered by the client.
    pub alpn: Vec<Vec<u8>>,
    /// ALPN protocol the server chose.
    pub server_alpn: Vec<Vec<u8>>,
    /// The ClientHello carries Encrypted Client Hello (extension 0xfe0d): its SNI is the
    /// outer, public name only.
    pub ech: bool,
    /// The server's chosen cipher suite.
    pub server_cipher: Option<u16>,
    /// The server's extension types, in order.
    pub server_extensions: Vec<u16>,
    /// JA3 string and MD5 (after the ClientHello).
    pub ja3: Option<(String, String)>,
    /// JA3S string and MD5 (after the ServerHello).
    pub ja3s: Option<(String, String)>,
    /// JA4 (after the ClientHello).
    pub ja4: Option<String>,
    /// The server's certificate chain, DER, leaf first.
    pub certs: Vec<Vec<u8>>,
    /// The leaf certificate's fields.
    pub cert: Option<CertInfo>,
    /// Anomalies raised.
    pub events: Vec<TlsEvent>,
}

/// A TLS version as Suricata's EVE prints it (`TLS 1.2`, `TLSv1`, `SSLv3`...).
pub fn version_name(v: u16) -> String {
    match v {
        0x0002 => "SSLv2".into(),
        0x0300 => "SSLv3".into(),
        0x0301 => "TLSv1".into(),
        0x0302 => "TLS 1.1".into(),
        0x0303 => "TLS 1.2".into(),
        0x0304 => "TLS 1.3".into(),
        v if v >> 8 == 0x7f => format!("TLS 1.3 draft-{}", v & 0xff),
        _ => "UNDETERMINED".into(),
    }
}

/// GREASE values (RFC 8701): `0x?a?a` with equal bytes; left out of fingerprints.
pub fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && v >> 8 == v & 0xff
}

impl TlsTx {
    /// The session's version: the server's when known, else the client's (EVE `version`).
    pub fn version(&self) -> Option<u16> {
        self.server_version.or_else(|| {
            self.client_hello.then(|| {
                self.versions
                    .iter()
                    .copied()
                    .filter(|v| !is_grease(*v))
                    .max()
                    .unwrap_or(self.client_version)
            })
        })
    }

    /// The record for the log writers.
    pub fn eve(&self) -> TlsEve {
        let cert = self.cert.clone().unwrap_or_default();
        let text = |v: &Vec<u8>| String::from_utf8_lossy(v).into_owned();
        TlsEve {
            subject: self.cert.as_ref().map(|_| cert.subject.clone()),
            issuerdn: self.cert.as_ref().map(|_| cert.issuer.clone()),
            serial: self.cert.as_ref().map(|_| cert.serial.clone()),
            fingerprint: self.cert.as_ref().map(|_| cert.fingerprint.clone()),
            sni: self.sni.as_ref().map(text),
            version: self.version().map(version_name),
            notbefore: self.cert.as_ref().map(|_| cert.not_before.clone()),
            notafter: self.cert.as_ref().map(|_| cert.not_after.clone()),
            ja3: self.ja3.clone(),
            ja3s: self.ja3s.clone(),
            ja4: self.ja4.clone(),
            client_alpns: self.alpn.iter().map(text).collect(),
            server_alpns: self.server_alpn.iter().map(text).collect(),
            ech: self.ech,
            san: cert.san,
        }
    }
}

/// What a `tls` record and the `tls` object of an alert hold (absent fields are omitted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsEve {
    /// Leaf certificate subject.
    pub subject: Option<String>,
    /// Leaf certificate issuer.
    pub issuerdn: Option<String>,
    /// Leaf certificate serial.
    pub serial: Option<String>,
    /// Leaf certificate SHA-1 fingerprint.
    pub fingerprint: Option<String>,
    /// SNI.
    pub sni: Option<String>,
    /// Version name.
    pub version: Option<String>,
    /// Leaf certificate notBefore.
    pub notbefore: Option<String>,
    /// Leaf certificate notAfter.
    pub notafter: Option<String>,
    /// JA3 `(string, hash)`.
    pub ja3: Option<(String, String)>,
    /// JA3S `(string, hash)`.
    pub ja3s: Option<(String, String)>,
    /// JA4.
    pub ja4: Option<String>,
    /// ALPNs the client offered.
    pub client_alpns: Vec<String>,
    /// ALPN the server chose.
    pub server_alpns: Vec<String>,
    /// The ClientHello carried Encrypted Client Hello.
    pub ech: bool,
    /// DNS names of the leaf certificate's subjectAltName.
    pub san: Vec<String>,
}

/// Record-layer state of one direction.
#[derive(Debug, Clone, Default)]
struct DirState {
    /// A partial record header.
    hdr: Vec<u8>,
    /// Body bytes of the current record still to come.
    remaining: usize,
    /// Content type of the current record.
    rtype: u8,
    /// Handshake bytes being assembled into messages (plaintext handshake records only).
    hs: Vec<u8>,
    /// Handshake bytes still to skip (an over-long message).
    hs_skip: usize,
    /// The direction switched to encrypted records: handshake records are not parsed.
    encrypted: bool,
    /// Records seen.
    records: u64,
    /// Parsing stopped (not TLS, or a gap).
    stopped: bool,
}

/// The TLS parser of one flow.
#[derive(Debug, Clone, Default)]
pub struct TlsParser {
    dirs: [DirState; 2],
    /// The client's first flight is over for detection: a handshake message (a ClientHello
    /// or anything else), an over-long one, or a record that is not a handshake arrived.
    client_decided: bool,
    tx: TlsTx,
    logged: bool,
    raised: Vec<TlsEvent>,
    new_flow: bool,
    new_tx: bool,
    /// Heap bytes of `tx`, counted after each handshake message.
    kept: usize,
}

/// Heap bytes of the session's stored fields (certificates, lists, strings), each
/// allocation with a 16-byte header, for the app-layer memcap.
fn tx_heap(t: &TlsTx) -> usize {
    let v = |n: usize| if n == 0 { 0 } else { n + 16 };
    let s = |x: &String| v(x.capacity());
    let vv =
        |l: &Vec<Vec<u8>>| v(l.capacity() * 24) + l.iter().map(|b| v(b.capacity())).sum::<usize>();
    let cert = t.cert.as_ref().map_or(0, |c| {
        [
            &c.subject,
            &c.issuer,
            &c.serial,
            &c.fingerprint,
            &c.not_before,
            &c.not_after,
        ]
        .into_iter()
        .map(s)
        .sum::<usize>()
            + c.san
                .iter()
                .chain(&c.common_names)
                .map(|x| s(x) + 24)
                .sum::<usize>()
    });
    v(t.ciphers.capacity() * 2)
        + v(t.extensions.capacity() * 2)
        + v(t.groups.capacity() * 2)
        + v(t.point_formats.capacity())
        + v(t.sig_algs.capacity() * 2)
        + v(t.versions.capacity() * 2)
        + v(t.server_extensions.capacity() * 2)
        + t.sni.as_ref().map_or(0, |x| v(x.capacity()))
        + vv(&t.alpn)
        + vv(&t.server_alpn)
        + vv(&t.certs)
        + t.ja3.as_ref().map_or(0, |(a, b)| s(a) + s(b))
        + t.ja3s.as_ref().map_or(0, |(a, b)| s(a) + s(b))
        + t.ja4.as_ref().map_or(0, s)
        + cert
        + v(t.events.capacity() * std::mem::size_of::<TlsEvent>())
}

impl TlsParser {
    /// Bytes the parser keeps, for the app-layer memcap
    /// ([`crate::config::AppLayerConfig::memcap`]): the boxed parser, both directions'
    /// record-header and handshake buffers by capacity, the session's stored fields
    /// (counted after each handshake message) and pending events. O(1).
    pub fn mem_bytes(&self) -> usize {
        std::mem::size_of::<TlsParser>()
            + 16
            + self
                .dirs
                .iter()
                .map(|d| d.hdr.capacity() + d.hs.capacity())
                .sum::<usize>()
            + self.raised.capacity() * std::mem::size_of::<TlsEvent>()
            + self.kept
    }

    /// A parser for a new flow.
    pub fn new() -> Self {
        TlsParser {
            new_flow: true,
            new_tx: true,
            ..TlsParser::default()
        }
    }

    /// The flow's TLS session.
    pub fn tx(&self) -> &TlsTx {
        &self.tx
    }

    /// True when neither direction can be parsed any more (not TLS, or gaps).
    pub fn has_failed(&self) -> bool {
        self.dirs.iter().all(|d| d.stopped)
    }

    /// The ClientHello was parsed, or the client's stream cannot give one any more: what
    /// detection needs from the client's first flight is there (the app-layer default
    /// actions wait for this).
    /// Fails closed: anything but the start of a ClientHello ends the wait, so a client
    /// cannot keep the default action away by never finishing one (the wait is bounded by
    /// [`MAX_HANDSHAKE_LEN`]).
    pub fn client_ready(&self) -> bool {
        self.tx.client_hello
            || self.client_decided
            || self.dirs[0].stopped
            || self.dirs[0].encrypted
    }

    /// True when [`Self::take_stats`], [`Self::take_raised`] or [`Self::take_log`] (not at
    /// the end) would hand out something: lets the engine skip draining the parser on
    /// packets that changed nothing it logs.
    pub fn has_output(&self) -> bool {
        !self.raised.is_empty()
            || self.new_flow
            || self.new_tx
            || (!self.logged && self.handshake_done())
    }

    /// `(flows, transactions)` created since the last call.
    pub fn take_stats(&mut self) -> (u64, u64) {
        let r = (u64::from(self.new_flow), u64::from(self.new_tx));
        self.new_flow = false;
        self.new_tx = false;
        r
    }

    /// Events raised since the last call.
    pub fn take_raised(&mut self) -> std::vec::Drain<'_, TlsEvent> {
        self.raised.drain(..)
    }

    /// True once the session was taken for logging ([`Self::take_log`]).
    pub fn logged(&self) -> bool {
        self.logged
    }

    /// The session, once, when both directions finished their handshake (or `at_end`).
    pub fn take_log(&mut self, at_end: bool) -> Option<TlsTx> {
        if self.logged || !(at_end || self.handshake_done()) {
            return None;
        }
        if at_end && self.dirs.iter().all(|d| d.records == 0) {
            return None;
        }
        self.logged = true;
        Some(self.tx.clone())
    }

    fn handshake_done(&self) -> bool {
        let t = &self.tx;
        (t.client_done || t.client_finished) && (t.server_done || t.server_finished)
    }

    fn raise(&mut self, e: TlsEvent) {
        if self.tx.events.len() < MAX_EVENTS {
            self.tx.events.push(e);
            self.raised.push(e);
        }
    }

    /// `len` bytes of `dir` were lost: the direction stops (records cannot be found again).
    pub fn gap(&mut self, dir: Direction, _len: u64) {
        let d = &mut self.dirs[dir.index()];
        if !d.stopped && !d.encrypted {
            d.stopped = true;
            self.raise(TlsEvent::StreamGap);
        } else {
            d.stopped = true;
        }
    }

    /// Feeds in-order bytes of `dir`.
    pub fn feed(&mut self, dir: Direction, mut data: &[u8]) {
        let di = dir.index();
        while !data.is_empty() && !self.dirs[di].stopped {
            let d = &mut self.dirs[di];
            if d.remaining == 0 {
                let need = 5 - d.hdr.len();
                let n = need.min(data.len());
                d.hdr.extend_from_slice(&data[..n]);
                data = &data[n..];
                if d.hdr.len() < 5 {
                    return;
                }
                let h = std::mem::take(&mut d.hdr);
                let (rtype, major, minor) = (h[0], h[1], h[2]);
                let len = usize::from(u16::from_be_bytes([h[3], h[4]]));
                if !(20..=24).contains(&rtype) {
                    d.stopped = true;
                    self.raise(TlsEvent::InvalidRecordType);
                    return;
                }
                if major != 3 {
                    d.stopped = true;
                    self.raise(TlsEvent::InvalidRecordVersion);
                    return;
                }
                if len > MAX_RECORD_LEN {
                    d.stopped = true;
                    self.raise(TlsEvent::InvalidRecordLength);
                    return;
                }
                if d.records == 0 && dir == Direction::ToServer {
                    self.tx.record_version = u16::from_be_bytes([major, minor]);
                }
                d.records += 1;
                d.rtype = rtype;
                d.remaining = len;
                if dir == Direction::ToServer && rtype != 22 {
                    self.client_decided = true;
                }
                self.record_start(dir, rtype);
                continue;
            }
            let n = d.remaining.min(data.len());
            let (chunk, rest) = data.split_at(n);
            data = rest;
            d.remaining -= n;
            let rtype = d.rtype;
            let end = d.remaining == 0;
            match rtype {
                22 if !d.encrypted => self.handshake_bytes(dir, chunk),
                21 if end && !d.encrypted => {}
                _ => {}
            }
            if end {
                self.record_end(dir, rtype, chunk);
            }
        }
    }

    fn record_start(&mut self, dir: Direction, rtype: u8) {
        let t = &mut self.tx;
        match (rtype, dir) {
            // Application data (TLS 1.3 encrypted handshake included): the side is done.
            (23, Direction::ToServer) => {
                t.client_done = true;
                self.dirs[0].encrypted = true;
            }
            (23, Direction::ToClient) => {
                t.server_done = true;
                self.dirs[1].encrypted = true;
            }
            (24, _) => self.raise(TlsEvent::HeartbeatMessage),
            _ => {}
        }
    }

    fn record_end(&mut self, dir: Direction, rtype: u8, last: &[u8]) {
        match rtype {
            20 => {
                self.dirs[dir.index()].encrypted = true;
                match dir {
                    Direction::ToServer => self.tx.client_done = true,
                    Direction::ToClient => self.tx.server_done = true,
                }
            }
            // A plaintext fatal alert (level 2) ends that side.
            21 if !self.dirs[dir.index()].encrypted && last.first() == Some(&2) => match dir {
                Direction::ToServer => self.tx.client_finished = true,
                Direction::ToClient => self.tx.server_finished = true,
            },
            _ => {}
        }
    }

    /// Assembles handshake messages across records and handles each complete one.
    fn handshake_bytes(&mut self, dir: Direction, mut chunk: &[u8]) {
        let di = dir.index();
        loop {
            let d = &mut self.dirs[di];
            if d.hs_skip > 0 {
                let n = d.hs_skip.min(chunk.len());
                d.hs_skip -= n;
                chunk = &chunk[n..];
            }
            if chunk.is_empty() && d.hs.len() < 4 {
                return;
            }
            // Take what completes the header, then what completes the message.
            if d.hs.len() < 4 {
                let n = (4 - d.hs.len()).min(chunk.len());
                d.hs.extend_from_slice(&chunk[..n]);
                chunk = &chunk[n..];
                if d.hs.len() < 4 {
                    return;
                }
            }
            let len =
                (usize::from(d.hs[1]) << 16) | (usize::from(d.hs[2]) << 8) | usize::from(d.hs[3]);
            if len > MAX_HANDSHAKE_LEN {
                d.hs.clear();
                d.hs_skip = len;
                if dir == Direction::ToServer {
                    self.client_decided = true;
                }
                self.raise(TlsEvent::HandshakeInvalidLength);
                continue;
            }
            let want = 4 + len - d.hs.len();
            let n = want.min(chunk.len());
            d.hs.extend_from_slice(&chunk[..n]);
            chunk = &chunk[n..];
            if d.hs.len() < 4 + len {
                return;
            }
            let msg = std::mem::take(&mut self.dirs[di].hs);
            self.handshake_message(dir, &msg);
            self.kept = tx_heap(&self.tx);
            if chunk.is_empty() {
                return;
            }
        }
    }

    fn handshake_message(&mut self, dir: Direction, msg: &[u8]) {
        if dir == Direction::ToServer {
            self.client_decided = true;
        }
        let parsed = tls_parser::parse_tls_message_handshake(msg);
        let hs = match parsed {
            Ok((_, TlsMessage::Handshake(hs))) => hs,
            _ => {
                // Types tls-parser does not know (or malformed bodies).
                if msg.first() == Some(&1) || msg.first() == Some(&2) {
                    self.raise(TlsEvent::InvalidHandshakeMessage);
                }
                return;
            }
        };
        match (dir, hs) {
            (Direction::ToServer, TlsMessageHandshake::ClientHello(ch)) => {
                if self.tx.client_hello {
                    self.raise(TlsEvent::MultipleClientHello);
                    return;
                }
                self.client_hello(ch.version.0, &ch.ciphers, ch.ext);
            }
            (Direction::ToClient, TlsMessageHandshake::ServerHello(sh)) => {
                self.server_hello(sh.version.0, sh.cipher.0, sh.ext);
            }
            (Direction::ToClient, TlsMessageHandshake::Certificate(c)) => {
                if self.tx.server_cert {
                    return;
                }
                self.tx.server_cert = true;
                for raw in c.cert_chain.iter().take(MAX_CERTS) {
                    self.tx.certs.push(raw.data.to_vec());
                }
                if let Some(leaf) = c.cert_chain.first() {
                    match cert_info(leaf.data) {
                        Some(ci) => {
                            // SNI honesty: the certificate is the server's claim to the name.
                            let mismatch = self
                                .tx
                                .sni
                                .as_deref()
                                .is_some_and(|sni| !cert_covers(&ci, sni));
                            self.tx.cert = Some(ci);
                            if mismatch {
                                self.raise(TlsEvent::SniCertMismatch);
                            }
                        }
                        None => self.raise(TlsEvent::InvalidCertificate),
                    }
                }
            }
            (Direction::ToClient, TlsMessageHandshake::ServerKeyExchange(_)) => {
                self.tx.server_keyx = true
            }
            (Direction::ToClient, TlsMessageHandshake::ServerDone(_)) => {
                self.tx.server_hello_done = true
            }
            (Direction::ToServer, TlsMessageHandshake::ClientKeyExchange(_)) => {
                self.tx.client_keyx = true
            }
            _ => {}
        }
    }

    fn client_hello(
        &mut self,
        version: u16,
        ciphers: &[tls_parser::TlsCipherSuiteID],
        ext: Option<&[u8]>,
    ) {
        let t = &mut self.tx;
        t.client_hello = true;
        t.client_version = version;
        t.ciphers = ciphers.iter().take(MAX_LIST).map(|c| c.0).collect();
        for (typ, body) in extensions(ext.unwrap_or_default()) {
            if t.extensions.len() < MAX_LIST {
                t.extensions.push(typ);
            }
            match typ {
                0 if t.sni.is_none() => t.sni = sni(body),
                10 => t.groups = u16_list(body, 2),
                11 => {
                    t.point_formats = body
                        .split_first()
                        .map(|(n, rest)| {
                            rest.iter()
                                .take(usize::from(*n).min(MAX_LIST))
                                .copied()
                                .collect()
                        })
                        .unwrap_or_default()
                }
                13 => t.sig_algs = u16_list(body, 2),
                16 => t.alpn = alpn(body),
                43 => {
                    t.versions = body
                        .split_first()
                        .map(|(n, rest)| u16_items(&rest[..usize::from(*n).min(rest.len())]))
                        .unwrap_or_default()
                }
                0xfe0d => t.ech = true,
                _ => {}
            }
        }
        let ja3 = ja3_string(t);
        let hash = md5_hex(ja3.as_bytes());
        t.ja3 = Some((ja3, hash));
        t.ja4 = Some(ja4(t));
        // SNI honesty: what a name allow list cannot see shows in the logs.
        let (no_sni, ech) = (t.sni.is_none(), t.ech);
        if no_sni {
            self.raise(TlsEvent::SniAbsent);
        }
        if ech {
            self.raise(TlsEvent::EncryptedClientHello);
        }
    }

    fn server_hello(&mut self, version: u16, cipher: u16, ext: Option<&[u8]>) {
        let t = &mut self.tx;
        t.server_hello = true;
        t.server_cipher = Some(cipher);
        let mut negotiated = version;
        for (typ, body) in extensions(ext.unwrap_or_default()) {
            if t.server_extensions.len() < MAX_LIST {
                t.server_extensions.push(typ);
            }
            match typ {
                43 if body.len() == 2 => negotiated = u16::from_be_bytes([body[0], body[1]]),
                16 => t.server_alpn = alpn(body),
                _ => {}
            }
        }
        t.server_version = Some(negotiated);
        let exts: Vec<String> = t.server_extensions.iter().map(u16::to_string).collect();
        let s = format!("{version},{cipher},{}", exts.join("-"));
        let hash = md5_hex(s.as_bytes());
        t.ja3s = Some((s, hash));
    }
}

/// Walks an extensions block: `(type, body)` pairs; stops at a truncated entry.
fn extensions(mut b: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while b.len() >= 4 && out.len() < MAX_LIST {
        let typ = u16::from_be_bytes([b[0], b[1]]);
        let len = usize::from(u16::from_be_bytes([b[2], b[3]]));
        let Some(body) = b.get(4..4 + len) else { break };
        out.push((typ, body));
        b = &b[4 + len..];
    }
    out
}

/// A list of big-endian u16 behind a length prefix of `prefix` bytes (2).
fn u16_list(b: &[u8], prefix: usize) -> Vec<u16> {
    if b.len() < prefix {
        return Vec::new();
    }
    let n = usize::from(u16::from_be_bytes([b[0], b[1]]));
    u16_items(b.get(prefix..prefix + n).unwrap_or(&b[prefix..]))
}

fn u16_items(b: &[u8]) -> Vec<u16> {
    b.chunks_exact(2)
        .take(MAX_LIST)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect()
}

/// The first `host_name` of a server_name extension body.
fn sni(b: &[u8]) -> Option<Vec<u8>> {
    let list = b.get(2..)?;
    let mut l =
        list.get(..usize::from(u16::from_be_bytes([*b.first()?, *b.get(1)?])).min(list.len()))?;
    while l.len() >= 3 {
        let typ = l[0];
        let n = usize::from(u16::from_be_bytes([l[1], l[2]]));
        let name = l.get(3..3 + n)?;
        if typ == 0 {
            return Some(name.to_vec());
        }
        l = &l[3 + n..];
    }
    None
}

/// ALPN protocol names.
fn alpn(b: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut l = b.get(2..).unwrap_or_default();
    while let Some((&n, rest)) = l.split_first() {
        let Some(name) = rest.get(..usize::from(n)) else {
            break;
        };
        if out.len() < MAX_LIST {
            out.push(name.to_vec());
        }
        l = &rest[usize::from(n)..];
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn md5_hex(b: &[u8]) -> String {
    hex(&Md5::digest(b))
}

fn joined<T: ToString>(v: impl Iterator<Item = T>, sep: &str) -> String {
    v.map(|x| x.to_string()).collect::<Vec<_>>().join(sep)
}

/// `SSLVersion,Ciphers,Extensions,EllipticCurves,EllipticCurvePointFormats`, GREASE left out.
fn ja3_string(t: &TlsTx) -> String {
    let ng = |v: &&u16| !is_grease(**v);
    format!(
        "{},{},{},{},{}",
        t.client_version,
        joined(t.ciphers.iter().filter(ng), "-"),
        joined(t.extensions.iter().filter(ng), "-"),
        joined(t.groups.iter().filter(ng), "-"),
        joined(t.point_formats.iter(), "-"),
    )
}

/// JA4 (FoxIO): `t{version}{d|i}{ciphers:02}{extensions:02}{alpn}_{sha256(ciphers)[..12]}_
/// {sha256(extensions_sigalgs)[..12]}`.
fn ja4(t: &TlsTx) -> String {
    let ver = t
        .versions
        .iter()
        .copied()
        .filter(|v| !is_grease(*v))
        .max()
        .unwrap_or(t.client_version);
    let v = match ver {
        0x0304 => "13",
        0x0303 => "12",
        0x0302 => "11",
        0x0301 => "10",
        0x0300 => "s3",
        0x0002 => "s2",
        _ => "00",
    };
    let ciphers: Vec<u16> = t
        .ciphers
        .iter()
        .copied()
        .filter(|c| !is_grease(*c))
        .collect();
    let exts: Vec<u16> = t
        .extensions
        .iter()
        .copied()
        .filter(|c| !is_grease(*c))
        .collect();
    let alpn = match t.alpn.first() {
        Some(a) if !a.is_empty() => {
            let (f, l) = (a[0], a[a.len() - 1]);
            if f.is_ascii_alphanumeric() && l.is_ascii_alphanumeric() {
                format!("{}{}", f as char, l as char)
            } else {
                let h = hex(&[f, l]);
                format!("{}{}", &h[..1], &h[3..])
            }
        }
        _ => "00".into(),
    };
    let trunc = |s: &str| -> String {
        if s.is_empty() {
            "000000000000".into()
        } else {
            hex(&Sha256::digest(s.as_bytes()))[..12].to_string()
        }
    };
    let mut sc = ciphers.clone();
    sc.sort_unstable();
    let b = trunc(&joined(sc.iter().map(|c| format!("{c:04x}")), ","));
    let mut se: Vec<u16> = exts
        .iter()
        .copied()
        .filter(|e| *e != 0 && *e != 16)
        .collect();
    se.sort_unstable();
    let mut cs = joined(se.iter().map(|c| format!("{c:04x}")), ",");
    let sigs: Vec<u16> = t
        .sig_algs
        .iter()
        .copied()
        .filter(|s| !is_grease(*s))
        .collect();
    if !sigs.is_empty() {
        cs.push('_');
        cs.push_str(&joined(sigs.iter().map(|c| format!("{c:04x}")), ","));
    }
    let c = if se.is_empty() {
        "000000000000".to_string()
    } else {
        trunc(&cs)
    };
    format!(
        "t{v}{}{:02}{:02}{alpn}_{b}_{c}",
        if t.sni.is_some() { 'd' } else { 'i' },
        ciphers.len().min(99),
        exts.len().min(99),
    )
}

fn asn1_time(t: x509_parser::time::ASN1Time) -> String {
    let d = t.to_datetime();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        d.year(),
        u8::from(d.month()),
        d.day(),
        d.hour(),
        d.minute(),
        d.second()
    )
}

/// True when certificate `c` names host `sni` (RFC 6125 as browsers apply it): the DNS
/// subjectAltNames when there are any, else the subject's common names; compared without
/// case and a trailing dot; a wildcard only as the whole leftmost label (`*.example.com`
/// covers `a.example.com`, not `example.com` nor `a.b.example.com`).
pub fn cert_covers(c: &CertInfo, sni: &[u8]) -> bool {
    let host = String::from_utf8_lossy(sni)
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let names = if c.san.is_empty() {
        &c.common_names
    } else {
        &c.san
    };
    names.iter().any(|n| {
        let n = n.trim_end_matches('.').to_ascii_lowercase();
        match n.strip_prefix("*.") {
            Some(rest) => host
                .split_once('.')
                .is_some_and(|(first, tail)| !first.is_empty() && tail == rest),
            None => n == host,
        }
    })
}

/// The fields of a DER certificate, `None` when it does not decode.
pub fn cert_info(der: &[u8]) -> Option<CertInfo> {
    let (_, c) = x509_parser::parse_x509_certificate(der).ok()?;
    let tbs = &c.tbs_certificate;
    let serial = joined(tbs.raw_serial().iter().map(|b| format!("{b:02X}")), ":");
    let fingerprint = joined(Sha1::digest(der).iter().map(|b| format!("{b:02x}")), ":");
    let mut san = Vec::new();
    if let Ok(Some(ext)) = c.subject_alternative_name() {
        for n in &ext.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(d) = n {
                if san.len() < MAX_LIST {
                    san.push((*d).to_string());
                }
            }
        }
    }
    let common_names = tbs
        .subject
        .iter_common_name()
        .filter_map(|a| a.as_str().ok())
        .take(MAX_LIST)
        .map(str::to_string)
        .collect();
    Some(CertInfo {
        common_names,
        subject: tbs.subject.to_string(),
        issuer: tbs.issuer.to_string(),
        serial,
        fingerprint,
        not_before: asn1_time(tbs.validity.not_before),
        not_after: asn1_time(tbs.validity.not_after),
        san,
    })
}

/// Detection buffers, in local-index order (see [`buffer`]).
const BUFFERS: [BufferDef; 13] = [
    BufferDef {
        name: "tls.sni",
        multi: false,
    },
    BufferDef {
        name: "tls.cert_subject",
        multi: false,
    },
    BufferDef {
        name: "tls.cert_issuer",
        multi: false,
    },
    BufferDef {
        name: "tls.cert_serial",
        multi: false,
    },
    BufferDef {
        name: "tls.cert_fingerprint",
        multi: false,
    },
    BufferDef {
        name: "tls.subjectaltname",
        multi: true,
    },
    BufferDef {
        name: "tls.certs",
        multi: true,
    },
    BufferDef {
        name: "ja3.hash",
        multi: false,
    },
    BufferDef {
        name: "ja3.string",
        multi: false,
    },
    BufferDef {
        name: "ja3s.hash",
        multi: false,
    },
    BufferDef {
        name: "ja3s.string",
        multi: false,
    },
    BufferDef {
        name: "ja4.hash",
        multi: false,
    },
    BufferDef {
        name: "tls.alpn",
        multi: true,
    },
];

/// Suricata 8's TLS progress states per direction (`tls:client_hello_done`...), the indices
/// [`progress`] returns.
pub const HOOKS: [&[&str]; 2] = [
    &[
        "client_in_progress",
        "client_hello_done",
        "client_cert_done",
        "client_handshake_done",
        "client_finished",
    ],
    &[
        "server_in_progress",
        "server_hello",
        "server_cert_done",
        "server_hello_done",
        "server_handshake_done",
        "server_finished",
    ],
];

/// Registry entry.
pub(crate) const DEF: ProtoDef = ProtoDef {
    proto: AppProto::Tls,
    name: "tls",
    exclusive_ports: &[],
    probe,
    buffers: &BUFFERS,
    // Not registered yet: TLS firewall hooks (`HOOKS`) are not checked against the
    // conformance firewall cases, so firewall mode keeps treating TLS flows as unevaluated
    // (the verify runner skips such cases).
    hooks: [&[], &[]],
    parser: Some(new_parser),
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

fn new_parser(_cfg: &AppLayerConfig, l4: u8) -> Option<Parser> {
    (l4 == 6).then(|| Parser::Tls(Box::new(TlsParser::new())))
}

/// Feeds the parser.
pub(crate) fn feed(p: &mut TlsParser, dir: Direction, data: &[u8]) -> Feed {
    p.feed(dir, data);
    Feed::Continue
}

/// Progress of one side as an index into [`DEF`]'s hooks.
pub(crate) fn progress(t: &TlsTx, dir: Direction) -> usize {
    match dir {
        Direction::ToServer => {
            if t.client_finished {
                4
            } else if t.client_done {
                3
            } else if t.client_hello {
                1
            } else {
                0
            }
        }
        Direction::ToClient => {
            if t.server_finished {
                5
            } else if t.server_done {
                4
            } else if t.server_hello_done {
                3
            } else if t.server_cert {
                2
            } else if t.server_hello {
                1
            } else {
                0
            }
        }
    }
}

/// Instance `i` of local buffer `local`.
pub(crate) fn buffer(t: &TlsTx, local: usize, i: usize) -> Option<&[u8]> {
    let cert = t.cert.as_ref();
    match (local, i) {
        (0, 0) => t.sni.as_deref(),
        (1, 0) => cert.map(|c| c.subject.as_bytes()),
        (2, 0) => cert.map(|c| c.issuer.as_bytes()),
        (3, 0) => cert.map(|c| c.serial.as_bytes()),
        (4, 0) => cert.map(|c| c.fingerprint.as_bytes()),
        (5, i) => cert.and_then(|c| c.san.get(i)).map(String::as_bytes),
        (6, i) => t.certs.get(i).map(Vec::as_slice),
        (7, 0) => t.ja3.as_ref().map(|j| j.1.as_bytes()),
        (8, 0) => t.ja3.as_ref().map(|j| j.0.as_bytes()),
        (9, 0) => t.ja3s.as_ref().map(|j| j.1.as_bytes()),
        (10, 0) => t.ja3s.as_ref().map(|j| j.0.as_bytes()),
        (11, 0) => t.ja4.as_deref().map(str::as_bytes),
        (12, i) => t.alpn.get(i).map(Vec::as_slice),
        _ => None,
    }
}

/// `ssl_state` flags of a session: `client_hello`, `server_hello`, `client_keyx`,
/// `server_keyx`, `unknown` (Suricata's names); `None` for another name.
pub(crate) fn state_flag(t: &TlsTx, name: &str) -> Option<bool> {
    Some(match name {
        "client_hello" => t.client_hello,
        "server_hello" => t.server_hello,
        "client_keyx" => t.client_keyx,
        "server_keyx" => t.server_keyx,
        "unknown" => false,
        _ => return None,
    })
}

/// Log data of the session.
pub(crate) fn log(t: &TlsTx) -> AppTxData {
    AppTxData::Tls(Box::new(t.eve()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(rtype: u8, body: &[u8]) -> Vec<u8> {
        let mut r = vec![rtype, 3, 3, (body.len() >> 8) as u8, body.len() as u8];
        r.extend_from_slice(body);
        r
    }

    fn client_hello(sni_name: Option<&[u8]>, extra: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut ext = Vec::new();
        if let Some(s) = sni_name {
            let mut e = Vec::new();
            e.extend_from_slice(&((s.len() + 3) as u16).to_be_bytes());
            e.push(0);
            e.extend_from_slice(&(s.len() as u16).to_be_bytes());
            e.extend_from_slice(s);
            ext.push((0u16, e));
        }
        ext.extend(extra.iter().cloned());
        let mut eb = Vec::new();
        for (t, b) in &ext {
            eb.extend_from_slice(&t.to_be_bytes());
            eb.extend_from_slice(&(b.len() as u16).to_be_bytes());
            eb.extend_from_slice(b);
        }
        let mut body = vec![3, 3];
        body.extend_from_slice(&[7; 32]);
        body.push(0);
        body.extend_from_slice(&[0, 4, 0x0a, 0x0a, 0x13, 0x01, 1, 0]);
        body.extend_from_slice(&(eb.len() as u16).to_be_bytes());
        body.extend_from_slice(&eb);
        let mut hs = vec![1, 0, (body.len() >> 8) as u8, body.len() as u8];
        hs.extend_from_slice(&body);
        hs
    }

    #[test]
    fn hello_split_byte_by_byte_and_across_records() {
        let hs = client_hello(Some(b"Split.Example"), &[(0xfe0d, vec![1, 2])]);
        // Two records, then fed a byte at a time.
        let (a, b) = hs.split_at(30);
        let mut wire = record(22, a);
        wire.extend(record(22, b));
        let mut p = TlsParser::new();
        for (i, byte) in wire.iter().enumerate() {
            assert!(!p.tx().client_hello, "at {i}");
            p.feed(Direction::ToServer, std::slice::from_ref(byte));
        }
        let t = p.tx();
        assert!(t.client_hello && t.ech);
        assert_eq!(t.events, vec![TlsEvent::EncryptedClientHello]);
        assert_eq!(t.sni.as_deref(), Some(&b"Split.Example"[..]));
        assert_eq!(t.ciphers, vec![0x0a0a, 0x1301]);
        let ja3 = &t.ja3.as_ref().unwrap().0;
        assert_eq!(ja3, "771,4865,0-65037,,");
        assert!(t.ja4.as_ref().unwrap().starts_with("t12d0102"));
    }

    #[test]
    fn not_tls_stops_cleanly() {
        // An SSLv2-style hello: length with the high bit set.
        let mut p = TlsParser::new();
        p.feed(Direction::ToServer, &[0x80, 0x2e, 0x01, 0x03, 0x01, 0, 0]);
        assert!(p.dirs[0].stopped);
        assert_eq!(p.tx().events, vec![TlsEvent::InvalidRecordType]);
        let mut p = TlsParser::new();
        p.feed(Direction::ToServer, &[22, 3, 1, 0xff, 0xff]);
        assert_eq!(p.tx().events, vec![TlsEvent::InvalidRecordLength]);
    }

    #[test]
    fn oversized_handshake_is_skipped() {
        let mut p = TlsParser::new();
        let mut body = vec![11, 0x10, 0, 0];
        body.extend_from_slice(&[0; 100]);
        p.feed(Direction::ToClient, &record(22, &body));
        assert_eq!(p.tx().events, vec![TlsEvent::HandshakeInvalidLength]);
        assert!(!p.dirs[1].stopped);
    }

    #[test]
    fn client_cannot_hold_off_the_default_action() {
        // A first handshake message that is not a ClientHello.
        let mut p = TlsParser::new();
        p.feed(Direction::ToServer, &record(22, &[99, 0, 0, 1, 0]));
        assert!(p.client_ready() && !p.tx().client_hello);
        // An alert record before any hello.
        let mut p = TlsParser::new();
        p.feed(Direction::ToServer, &record(21, &[1, 0]));
        assert!(p.client_ready());
        // A ClientHello claiming more than MAX_HANDSHAKE_LEN.
        let mut p = TlsParser::new();
        p.feed(Direction::ToServer, &record(22, &[1, 0x10, 0, 0, 3, 3]));
        assert!(p.client_ready());
        // The start of a real ClientHello: still waiting.
        let hs = client_hello(Some(b"a.example"), &[]);
        let mut p = TlsParser::new();
        p.feed(Direction::ToServer, &record(22, &hs)[..30]);
        assert!(!p.client_ready());
    }

    #[test]
    fn grease() {
        assert!(is_grease(0x0a0a) && is_grease(0xfafa));
        assert!(!is_grease(0x0a1a) && !is_grease(0x1301));
    }

    #[test]
    fn certificate_names_cover_the_sni() {
        let c = CertInfo {
            san: vec!["sekisho.test".into(), "*.sekisho.test".into()],
            common_names: vec!["ignored.example".into()],
            ..CertInfo::default()
        };
        for ok in [
            "sekisho.test",
            "a.sekisho.test",
            "WWW.Sekisho.TEST",
            "a.sekisho.test.",
        ] {
            assert!(cert_covers(&c, ok.as_bytes()), "{ok}");
        }
        for bad in [
            "a.b.sekisho.test",
            "ignored.example",
            "sekisho.test.evil",
            "xsekisho.test",
            ".sekisho.test",
        ] {
            assert!(!cert_covers(&c, bad.as_bytes()), "{bad}");
        }
        // No DNS SAN: the common name counts.
        let cn = CertInfo {
            common_names: vec!["Mail.Example.COM".into()],
            ..CertInfo::default()
        };
        assert!(cert_covers(&cn, b"mail.example.com"));
        assert!(!cert_covers(&cn, b"www.example.com"));
    }
}
