//! The protocol registry: the one list of app-layer protocols, and the seam through which
//! the engine, detection and the log writers reach them.
//!
//! Each protocol is one module (`app/<proto>.rs`) that owns its probes, its parser and
//! transactions, the detection buffers it fills (by their rule-language names), the names of
//! its progress states (firewall hooks), its counters and its anomaly events. It describes
//! itself with a [`ProtoDef`]; [`PROTOCOLS`] lists them. A protocol with a parser is also
//! one variant of [`Parser`], [`TxRef`] and [`AppTxData`] (static dispatch: no trait objects
//! on the per-packet path). Nothing outside this file and the protocol's module names a
//! protocol: adding one is one new module plus its lines here (the checklist is in
//! `docs/architecture.md`).

use serde::Serialize;

#[path = "dns.rs"]
pub mod dns;
#[path = "http.rs"]
pub mod http;
#[path = "smtp.rs"]
pub mod smtp;
#[path = "ssh.rs"]
pub mod ssh;
#[path = "tls.rs"]
pub mod tls;

use super::detect::Probe;
use crate::config::{AppLayerConfig, ProtocolMode};
use crate::event::Direction;

/// An application-layer protocol, as EVE's `app_proto` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AppProto {
    /// Not (yet) known: no payload, or detection still undecided.
    Unknown,
    /// SMTP (parsed: transactions, `smtp` records).
    Smtp,
    /// TLS (parsed: ClientHello, ServerHello, certificates; after SMTP STARTTLS too).
    Tls,
    /// HTTP/1 (parsed: request and response heads, bodies framed and skipped).
    Http,
    /// DNS over UDP and TCP (parsed: one transaction per message).
    Dns,
    /// SSH (detected from either side's identification string; not parsed).
    Ssh,
    /// Detection gave up (see [`crate::app`] for the rule).
    Failed,
}

impl AppProto {
    /// EVE's name: `unknown`, `failed`, or the protocol's [`ProtoDef::name`].
    pub fn as_str(self) -> &'static str {
        match self {
            AppProto::Unknown => "unknown",
            AppProto::Failed => "failed",
            p => p.def().map_or("unknown", |d| d.name),
        }
    }

    /// The protocol a rule or setting names (`unknown`, `failed` and every registered name).
    pub fn from_name(name: &str) -> Option<AppProto> {
        match name {
            "unknown" => Some(AppProto::Unknown),
            "failed" => Some(AppProto::Failed),
            _ => PROTOCOLS.iter().find(|d| d.name == name).map(|d| d.proto),
        }
    }

    /// The registry entry of a real protocol (`None` for `Unknown` and `Failed`).
    pub fn def(self) -> Option<&'static ProtoDef> {
        PROTOCOLS.iter().find(|d| d.proto == self)
    }

    /// Position in [`PROTOCOLS`] (per-protocol counter tables); `None` for `Unknown` and
    /// `Failed`.
    pub fn index(self) -> Option<usize> {
        PROTOCOLS.iter().position(|d| d.proto == self)
    }
}

/// What probing needs to know of the flow besides the bytes.
#[derive(Debug, Clone, Copy)]
pub struct ProbeCtx<'c> {
    /// App-layer settings.
    pub cfg: &'c AppLayerConfig,
    /// IP protocol (6 TCP, 17 UDP).
    pub l4: u8,
    /// Direction of the bytes.
    pub dir: Direction,
    /// The client's port.
    pub client_port: u16,
    /// The server's port.
    pub server_port: u16,
}

/// A detection buffer a protocol fills, by its rule-language name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferDef {
    /// Sticky-buffer keyword, e.g. `smtp.rcpt_to`.
    pub name: &'static str,
    /// One instance per item (a multi-buffer): a rule matches when one instance does.
    pub multi: bool,
}

/// A registered protocol.
#[derive(Debug)]
pub struct ProtoDef {
    /// The protocol.
    pub proto: AppProto,
    /// Its EVE / rule-language name.
    pub name: &'static str,
    /// The protocol claims flows on these ports exclusively: when either port matches, only
    /// its probe runs (DNS on 53).
    pub exclusive_ports: &'static [u16],
    /// Probes a direction's first bytes (TCP: what arrived so far; UDP: one datagram).
    pub probe: fn(&ProbeCtx<'_>, &[u8]) -> Probe,
    /// Detection buffers filled from its transactions.
    pub buffers: &'static [BufferDef],
    /// Progress state names per direction (`[request, response]`), in progress order: the
    /// firewall hooks `<name>:<state>`.
    pub hooks: [&'static [&'static str]; 2],
    /// Builds the flow's parser once the protocol is detected (`None`: detected only).
    pub parser: Option<fn(&AppLayerConfig, u8) -> Option<Parser>>,
    /// Counter keys `[app_layer.flow.<name>, app_layer.tx.<name>]` (protocols with a parser).
    pub counters: [&'static str; 2],
    /// What the server's first bytes are when they identify the protocol (`--explain` text,
    /// e.g. a banner); empty when only the client's bytes do.
    pub greeting: &'static str,
}

/// Every protocol, in probing order. The one list of protocols.
pub const PROTOCOLS: &[ProtoDef] = &[dns::DEF, tls::DEF, smtp::DEF, http::DEF, ssh::DEF];

/// Probes `data` against every registered protocol: a protocol claiming one of the flow's
/// ports exclusively is the only one probed; otherwise any match wins, else any "need
/// more", else no match.
pub fn probe_all(cx: &ProbeCtx<'_>, data: &[u8]) -> Probe {
    let ports = [cx.client_port, cx.server_port];
    // A protocol switched off is not registered at all (its ports are no one's).
    let switches = cx.cfg.protocol_switches;
    let on = |d: &&ProtoDef| switches.mode(d.proto) != ProtocolMode::Off;
    if let Some(d) = PROTOCOLS
        .iter()
        .filter(on)
        .find(|d| d.exclusive_ports.iter().any(|p| ports.contains(p)))
    {
        return (d.probe)(cx, data);
    }
    let mut out = Probe::NoMatch;
    for d in PROTOCOLS
        .iter()
        .filter(on)
        .filter(|d| d.exclusive_ports.is_empty())
    {
        match (d.probe)(cx, data) {
            r @ Probe::Match(_) => return r,
            Probe::NeedMore => out = Probe::NeedMore,
            Probe::NoMatch => {}
        }
    }
    out
}

/// A detection buffer of some protocol: a dense index over every registered protocol's
/// buffers (so per-buffer tables are plain vectors).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BufferId(u16);

impl BufferId {
    /// The buffer a rule keyword names (`smtp.rcpt_to`), if a protocol registered it.
    pub fn by_name(name: &str) -> Option<BufferId> {
        let mut i = 0u16;
        for d in PROTOCOLS {
            for b in d.buffers {
                if b.name == name {
                    return Some(BufferId(i));
                }
                i += 1;
            }
        }
        None
    }

    /// Every registered buffer, in id order.
    pub fn all() -> impl Iterator<Item = BufferId> {
        (0..Self::count() as u16).map(BufferId)
    }

    /// Number of registered buffers.
    pub fn count() -> usize {
        BUFFER_COUNT
    }

    /// Dense index, `0..count()`.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }

    /// One array access: detection asks a transaction for its buffers per packet, each
    /// ask checking the buffer's protocol and local index.
    fn locate(self) -> Option<(&'static ProtoDef, usize)> {
        let &(p, i) = BUFFER_LOC.get(usize::from(self.0))?;
        Some((&PROTOCOLS[usize::from(p)], usize::from(i)))
    }

    /// The keyword, e.g. `smtp.rcpt_to`.
    pub fn name(self) -> &'static str {
        self.locate().map_or("?", |(d, i)| d.buffers[i].name)
    }

    /// The protocol that fills it.
    pub fn proto(self) -> AppProto {
        self.locate().map_or(AppProto::Unknown, |(d, _)| d.proto)
    }

    /// True for a multi-buffer (one instance per item).
    pub fn multi(self) -> bool {
        self.locate().is_some_and(|(d, i)| d.buffers[i].multi)
    }

    /// Position among its protocol's [`ProtoDef::buffers`].
    pub fn local(self) -> usize {
        self.locate().map_or(usize::MAX, |(_, i)| i)
    }
}

/// Number of buffers of all protocols.
const BUFFER_COUNT: usize = {
    let (mut n, mut p) = (0, 0);
    while p < PROTOCOLS.len() {
        n += PROTOCOLS[p].buffers.len();
        p += 1;
    }
    n
};

/// Per [`BufferId`]: (position of its protocol in [`PROTOCOLS`], its local index).
static BUFFER_LOC: [(u8, u8); BUFFER_COUNT] = {
    let mut t = [(0u8, 0u8); BUFFER_COUNT];
    let (mut p, mut k) = (0, 0);
    while p < PROTOCOLS.len() {
        let mut j = 0;
        while j < PROTOCOLS[p].buffers.len() {
            assert!(j <= u8::MAX as usize);
            t[k] = (p as u8, j as u8);
            k += 1;
            j += 1;
        }
        p += 1;
    }
    t
};

// [`BUFFER_LOC`] entries fit in a byte.
const _: () = assert!(PROTOCOLS.len() <= 255);

/// Application events a rate limit can count (`count:` in `rate_limits:`), with the
/// protocol that reports them ([`Parser::event_count`]).
pub const APP_EVENTS: &[(&str, AppProto)] = &[
    ("smtp_auth_failure", AppProto::Smtp),
    ("smtp_rcpt_rejected", AppProto::Smtp),
];

/// A flow's parser: one variant per protocol with a parser.
#[derive(Debug, Clone)]
pub enum Parser {
    /// See [`smtp::SmtpParser`].
    Smtp(Box<smtp::SmtpParser>),
    /// See [`tls::TlsParser`].
    Tls(Box<tls::TlsParser>),
    /// See [`http::HttpParser`].
    Http(Box<http::HttpParser>),
    /// See [`dns::DnsParser`].
    Dns(Box<dns::DnsParser>),
}

/// What a parser asks of the app layer after it was fed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    /// Keep feeding.
    Continue,
    /// The flow switches protocol (SMTP STARTTLS → TLS): this parser gets no more bytes.
    Upgrade(AppProto),
}

impl Parser {
    /// The protocol it parses.
    pub fn proto(&self) -> AppProto {
        match self {
            Parser::Smtp(_) => AppProto::Smtp,
            Parser::Tls(_) => AppProto::Tls,
            Parser::Http(_) => AppProto::Http,
            Parser::Dns(_) => AppProto::Dns,
        }
    }

    /// Feeds in-order bytes of `dir`.
    pub fn feed(&mut self, dir: Direction, data: &[u8]) -> Feed {
        match self {
            Parser::Smtp(p) => smtp::feed(p, dir, data),
            Parser::Tls(p) => tls::feed(p, dir, data),
            Parser::Http(p) => http::feed(p, dir, data),
            Parser::Dns(p) => dns::feed(p, dir, data),
        }
    }

    /// `len` bytes of `dir` are lost for good (reassembly gap).
    pub fn gap(&mut self, dir: Direction, len: u64) {
        match self {
            Parser::Smtp(p) => p.gap(dir, len),
            Parser::Tls(p) => p.gap(dir, len),
            Parser::Http(p) => p.gap(dir, len),
            Parser::Dns(p) => p.gap(dir, len),
        }
    }

    /// Bytes the parser keeps (its state, transactions, queues and buffers), charged to
    /// the app-layer memcap ([`crate::config::AppLayerConfig::memcap`]). O(1): each
    /// protocol keeps its count up to date where it stores something.
    pub fn mem_bytes(&self) -> usize {
        match self {
            Parser::Smtp(p) => p.mem_bytes(),
            Parser::Tls(p) => p.mem_bytes(),
            Parser::Http(p) => p.mem_bytes(),
            Parser::Dns(p) => p.mem_bytes(),
        }
    }

    /// The parser stopped for good (a message it cannot resynchronise after): later bytes
    /// of the flow are not parsed, so rules on its buffers cannot see them.
    pub fn failed(&self) -> bool {
        match self {
            Parser::Smtp(p) => p.has_failed(),
            Parser::Tls(p) => p.has_failed(),
            Parser::Http(p) => p.has_failed(),
            Parser::Dns(p) => p.has_failed(),
        }
    }

    /// True when what detection needs from the client's first message is there (TLS: the
    /// ClientHello was parsed; a parser that cannot get it any more counts too): the NFW
    /// `*_app_layer` default actions wait for this before dropping.
    pub fn client_ready(&self) -> bool {
        match self {
            Parser::Smtp(_) => true,
            Parser::Tls(p) => p.client_ready(),
            Parser::Http(p) => p.client_ready(),
            Parser::Dns(_) => true,
        }
    }

    /// True when [`Self::take_anomalies`], [`Self::take_counts`] or [`Self::take_txs`] (not
    /// at the end) would hand out something. Cheap (a few loads): checked per packet so
    /// the engine drains parsers only when there is something to drain.
    pub fn has_output(&self) -> bool {
        match self {
            Parser::Smtp(p) => p.has_output(),
            Parser::Tls(p) => p.has_output(),
            Parser::Http(p) => p.has_output(),
            Parser::Dns(p) => p.has_output(),
        }
    }

    /// Anomaly events raised since the last call: `(tx id, EVE anomaly.event name)`.
    pub fn take_anomalies(&mut self, out: &mut Vec<(u64, &'static str)>) {
        match self {
            Parser::Smtp(p) => out.extend(p.take_raised().map(|(id, e)| (id, e.anomaly_name()))),
            Parser::Tls(p) => out.extend(p.take_raised().map(|e| (0, e.name()))),
            Parser::Http(p) => out.extend(p.take_raised().map(|(id, e)| (id, e.name()))),
            Parser::Dns(p) => out.extend(p.take_raised()),
        }
    }

    /// Counter increments since the last call: `(flows, transactions)`, for
    /// `app_layer.flow.<name>` / `app_layer.tx.<name>`.
    pub fn take_counts(&mut self) -> (u64, u64) {
        match self {
            Parser::Smtp(p) => p.take_stats(),
            Parser::Tls(p) => p.take_stats(),
            Parser::Http(p) => p.take_stats(),
            Parser::Dns(p) => p.take_stats(),
        }
    }

    /// Removes and returns the transactions to log now (`at_end`: every live one, the flow
    /// is ending), oldest first, as `(tx id, log data)`.
    pub fn take_txs(&mut self, at_end: bool) -> Vec<(u64, AppTxData)> {
        match self {
            Parser::Smtp(p) => {
                let txs = if at_end {
                    p.take_all()
                } else {
                    p.take_complete()
                };
                txs.into_iter()
                    .map(|t| (t.tx_id, AppTxData::Smtp(t.eve())))
                    .collect()
            }
            Parser::Tls(p) => p
                .take_log(at_end)
                .map(|t| (0, tls::log(&t)))
                .into_iter()
                .collect(),
            Parser::Http(p) => p
                .take_done(at_end)
                .into_iter()
                .map(|t| (t.tx_id, http::log(&t)))
                .collect(),
            Parser::Dns(p) => p
                .take_done()
                .into_iter()
                .map(|t| (t.tx_id, dns::log(&t)))
                .collect(),
        }
    }

    /// The live transactions, oldest first (what detection inspects).
    pub fn txs(&self) -> Vec<TxRef<'_>> {
        match self {
            Parser::Smtp(p) => p.txs().map(|t| TxRef::Smtp(p, t)).collect(),
            // Once logged (handshake done both ways) the session is no longer inspected:
            // what follows is encrypted, and re-evaluating its buffers per packet would only
            // cost time.
            Parser::Tls(p) if p.logged() => Vec::new(),
            Parser::Tls(p) => vec![TxRef::Tls(p.tx())],
            Parser::Http(p) => p
                .txs()
                .map(|t| TxRef::Http(t, Direction::ToServer))
                .collect(),
            Parser::Dns(p) => p.txs().map(TxRef::Dns).collect(),
        }
    }

    /// The live transactions as a packet of `dir` sees them (what detection inspects).
    pub fn txs_for(&self, dir: Direction) -> Vec<TxRef<'_>> {
        match self {
            Parser::Http(p) => p.txs().map(|t| TxRef::Http(t, dir)).collect(),
            _ => self.txs(),
        }
    }

    /// Live transactions, without collecting them.
    pub fn tx_count(&self) -> usize {
        match self {
            Parser::Smtp(p) => p.txs().count(),
            Parser::Tls(p) => usize::from(!p.logged()),
            Parser::Http(p) => p.txs().count(),
            Parser::Dns(p) => p.txs().count(),
        }
    }

    /// How many of the app event `name` (an [`APP_EVENTS`] name) the flow has seen so
    /// far; `None` when this protocol has no such event.
    pub fn event_count(&self, name: &str) -> Option<u64> {
        match self {
            Parser::Smtp(p) => p.event_count(name),
            Parser::Tls(_) | Parser::Http(_) | Parser::Dns(_) => None,
        }
    }

    /// The SMTP parser, when this is one (protocol-specific tests and tools).
    pub fn as_smtp(&self) -> Option<&smtp::SmtpParser> {
        match self {
            Parser::Smtp(p) => Some(p),
            _ => None,
        }
    }

    /// The SMTP parser, mutably.
    pub fn as_smtp_mut(&mut self) -> Option<&mut smtp::SmtpParser> {
        match self {
            Parser::Smtp(p) => Some(p),
            _ => None,
        }
    }

    /// The TLS parser, when this is one.
    pub fn as_tls(&self) -> Option<&tls::TlsParser> {
        match self {
            Parser::Tls(p) => Some(p),
            _ => None,
        }
    }
}

/// A live transaction borrowed from its parser.
#[derive(Debug, Clone, Copy)]
pub enum TxRef<'a> {
    /// An SMTP transaction and its connection.
    Smtp(&'a smtp::SmtpParser, &'a smtp::SmtpTx),
    /// The TLS session of a flow.
    Tls(&'a tls::TlsTx),
    /// An HTTP/1 request and its response, as a packet of that direction sees it (the
    /// header buffers of a to-client packet are the response's).
    Http(&'a http::HttpTx, Direction),
    /// A DNS message.
    Dns(&'a dns::DnsTx),
}

impl<'a> TxRef<'a> {
    /// Transaction id within the flow (EVE `tx_id`).
    pub fn id(&self) -> u64 {
        match self {
            TxRef::Smtp(_, t) => t.tx_id,
            TxRef::Tls(_) => 0,
            TxRef::Http(t, _) => t.tx_id,
            TxRef::Dns(t) => t.tx_id,
        }
    }

    /// The protocol.
    pub fn proto(&self) -> AppProto {
        match self {
            TxRef::Smtp(..) => AppProto::Smtp,
            TxRef::Tls(_) => AppProto::Tls,
            TxRef::Http(..) => AppProto::Http,
            TxRef::Dns(_) => AppProto::Dns,
        }
    }

    /// Progress of one side: an index into [`ProtoDef::hooks`] of that direction.
    pub fn progress(&self, dir: Direction) -> usize {
        match self {
            TxRef::Smtp(_, t) => smtp::progress(t, dir),
            TxRef::Tls(t) => tls::progress(t, dir),
            TxRef::Http(t, _) => http::progress(t, dir),
            // A message is complete once decoded.
            TxRef::Dns(_) => 0,
        }
    }

    /// Instance `i` of buffer `buf` (`i` is 0 for a single buffer); `None` when the
    /// transaction has no such instance, or the buffer belongs to another protocol.
    pub fn buffer(&self, buf: BufferId, i: usize) -> Option<&'a [u8]> {
        if buf.proto() != self.proto() {
            return None;
        }
        match *self {
            TxRef::Smtp(p, t) => smtp::buffer(p, t, buf.local(), i),
            TxRef::Tls(t) => tls::buffer(t, buf.local(), i),
            TxRef::Http(t, dir) => http::buffer(t, dir, buf.local(), i),
            TxRef::Dns(t) => dns::buffer(t, buf.local(), i),
        }
    }

    /// A named state flag of the transaction (`ssl_state`'s `client_hello`...), `None` when
    /// the protocol has no such flag.
    pub fn state_flag(&self, name: &str) -> Option<bool> {
        match self {
            TxRef::Smtp(..) | TxRef::Http(..) | TxRef::Dns(_) => None,
            TxRef::Tls(t) => tls::state_flag(t, name),
        }
    }

    /// The negotiated protocol version (TLS: `0x0303` for 1.2), when the protocol has one.
    pub fn version(&self) -> Option<u16> {
        match self {
            TxRef::Smtp(..) | TxRef::Http(..) | TxRef::Dns(_) => None,
            TxRef::Tls(t) => t.version(),
        }
    }

    /// Instance `i` of the integer field keyword `keyword` tests (`dns.rcode`,
    /// `dns.rrtype`...), `None` past the last instance or when the protocol has no such
    /// field: integer keywords, like buffers, name no protocol in detection.
    pub fn uint(&self, keyword: &str, i: usize) -> Option<u64> {
        match self {
            TxRef::Smtp(..) | TxRef::Tls(_) | TxRef::Http(..) => None,
            TxRef::Dns(t) => dns::uint(t, keyword, i),
        }
    }

    /// True when the instances of `buf` detection can read are not all the transaction
    /// had (a cap was hit): a rule reading it cannot see everything.
    pub fn truncated(&self, buf: BufferId) -> bool {
        match self {
            TxRef::Smtp(_, t) => buf.proto() == AppProto::Smtp && t.records_truncated,
            TxRef::Tls(_) | TxRef::Http(..) | TxRef::Dns(_) => false,
        }
    }

    /// The transaction's log data (for the alert record's protocol object).
    pub fn log(&self) -> AppTxData {
        match self {
            TxRef::Smtp(_, t) => AppTxData::Smtp(t.eve()),
            TxRef::Tls(t) => tls::log(t),
            TxRef::Http(t, _) => http::log(t),
            TxRef::Dns(t) => dns::log(t),
        }
    }
}

/// The parsed content of one app-layer transaction, for the log writers (which own its
/// serialisation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppTxData {
    /// An SMTP transaction.
    Smtp(smtp::SmtpEve),
    /// A TLS session.
    Tls(Box<tls::TlsEve>),
    /// An HTTP/1 transaction.
    Http(Box<http::HttpEve>),
    /// A DNS message.
    Dns(Box<dns::DnsTx>),
}

impl AppTxData {
    /// The protocol.
    pub fn proto(&self) -> AppProto {
        match self {
            AppTxData::Smtp(_) => AppProto::Smtp,
            AppTxData::Tls(_) => AppProto::Tls,
            AppTxData::Http(_) => AppProto::Http,
            AppTxData::Dns(_) => AppProto::Dns,
        }
    }
}

/// Per-protocol counters (`app_layer.flow.<name>`, `app_layer.tx.<name>`), indexed like
/// [`PROTOCOLS`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppCounters {
    /// Flows detected as the protocol (counted at detection).
    pub flow: [u64; 8],
    /// Transactions the protocol's parser created.
    pub tx: [u64; 8],
}

impl AppCounters {
    /// Calls `f(key, value)` for the counters of every protocol with a parser, in registry
    /// order.
    pub fn for_each(&self, f: &mut impl FnMut(&'static str, u64)) {
        for (i, d) in PROTOCOLS.iter().enumerate() {
            if d.parser.is_some() {
                f(d.counters[0], self.flow[i]);
                f(d.counters[1], self.tx[i]);
            }
        }
    }

    /// Adds a parser's `(flows, transactions)` increments.
    pub fn add(&mut self, proto: AppProto, (flows, txs): (u64, u64)) {
        if let Some(i) = proto.index() {
            self.flow[i] += flows;
            self.tx[i] += txs;
        }
    }
}

// [`AppCounters`] has room for every protocol.
const _: () = assert!(PROTOCOLS.len() <= 8);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::detect::{probe, Probe};
    use crate::config::AppLayerConfig;
    use crate::event::Direction;

    fn cfg(banner: bool) -> AppLayerConfig {
        AppLayerConfig {
            server_greeting_probe: banner,
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
