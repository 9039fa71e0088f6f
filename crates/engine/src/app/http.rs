//! HTTP/1: request and response heads over the reassembled stream, with the body framing
//! that finds the next message (pipelining, keep-alive).
//!
//! Sans-I/O and total. Heads are collected per direction until their blank line (at most
//! [`MAX_HEAD_LEN`] bytes: longer raises `REQUEST_FIELD_TOO_LONG` / `RESPONSE_FIELD_TOO_LONG`
//! and stops the direction) and decoded by `httparse` (at most [`MAX_HEADERS`] headers).
//! Bodies are framed and skipped, never stored: `Content-Length`, `chunked` (chunk sizes and
//! trailers parsed), responses to `HEAD` and `1xx`/`204`/`304` without one, other responses
//! without framing until the connection closes. `100 Continue` and other interim responses
//! do not answer a request. A `CONNECT` answered with 2xx turns the rest of the flow into a
//! tunnel that is not parsed.
//!
//! Transactions pair a request with its response in order; at most [`MAX_LIVE_TXS`] are
//! live (a client pipelining more is an event and stops the request side). A transaction is
//! logged when its response is complete, or at flow end.
//!
//! What differs from Suricata (libhtp): `http.uri` is the path normalised by percent-decoding
//! (but not `%2F` or `%00`), removing `.`/`..` segments and collapsing `//`, with the query
//! kept raw; `http.header` holds the request's headers, and to-client rules read response
//! fields through their own buffers (`http.stat_code`, `http.server`, `http.location`).
//!
//! ```
//! use sekisho_engine::app::http::HttpParser;
//! use sekisho_engine::Direction;
//! let mut p = HttpParser::new();
//! p.feed(Direction::ToServer, b"GET /a/./b/../c%41?x=%41 HTTP/1.1\r\nHost: WWW.Example.com:8080\r\n");
//! // The request line is there, the headers are not: request-line buffers already are.
//! assert_eq!(p.txs().next().map(|t| t.method.as_slice()), Some(&b"GET"[..]));
//! p.feed(Direction::ToServer, b"\r\nPOST /up HTTP/1.1\r\nHost: e\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\n\r\n");
//! let t: Vec<_> = p.txs().collect();
//! assert_eq!(t.len(), 3);
//! assert_eq!(t[0].uri, b"/a/cA?x=%41");
//! assert_eq!(t[0].host.as_deref(), Some(&b"www.example.com"[..]));
//! assert_eq!(t[1].method, b"POST");
//! ```

use std::collections::VecDeque;

use crate::app::detect::{combine, prefix, Probe};
use crate::app::registry::{AppProto, AppTxData, BufferDef, Feed, Parser, ProbeCtx, ProtoDef};
use crate::config::AppLayerConfig;
use crate::event::Direction;

/// Longest request or response head (line and headers) collected.
pub const MAX_HEAD_LEN: usize = 64 * 1024;
/// Headers decoded per head; a head with more raises `REQUEST_HEADER_REPETITION`-style
/// `TOO_MANY_HEADERS` and stops the direction.
pub const MAX_HEADERS: usize = 128;
/// Live transactions per flow.
pub const MAX_LIVE_TXS: usize = 64;
/// Anomaly events kept per transaction.
pub const MAX_EVENTS_PER_TX: usize = 16;
/// Longest chunk-size or trailer line.
const MAX_CHUNK_LINE: usize = 1024;

/// An anomaly the parser raises, named like libhtp's events in Suricata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HttpEvent {
    /// A request head longer than [`MAX_HEAD_LEN`].
    RequestFieldTooLong,
    /// A response head longer than [`MAX_HEAD_LEN`].
    ResponseFieldTooLong,
    /// A request line or header that does not parse.
    InvalidRequest,
    /// A status line or header that does not parse.
    InvalidResponse,
    /// More than [`MAX_HEADERS`] headers.
    TooManyHeaders,
    /// The absolute URI's host and the Host header differ.
    HostHeaderAmbiguous,
    /// An HTTP/1.1 request without a Host header.
    MissingHostHeader,
    /// A chunk size that does not parse.
    InvalidChunkLen,
    /// A Content-Length that does not parse.
    InvalidContentLength,
    /// A response without a request.
    UnsolicitedResponse,
    /// More than [`MAX_LIVE_TXS`] requests without responses.
    TooManyTransactions,
}

impl HttpEvent {
    /// The EVE `anomaly.event` name.
    pub fn name(self) -> &'static str {
        match self {
            HttpEvent::RequestFieldTooLong => "REQUEST_FIELD_TOO_LONG",
            HttpEvent::ResponseFieldTooLong => "RESPONSE_FIELD_TOO_LONG",
            HttpEvent::InvalidRequest => "REQUEST_LINE_INVALID",
            HttpEvent::InvalidResponse => "RESPONSE_INVALID",
            HttpEvent::TooManyHeaders => "REQUEST_HEADER_INVALID",
            HttpEvent::HostHeaderAmbiguous => "HOST_HEADER_AMBIGUOUS",
            HttpEvent::MissingHostHeader => "MISSING_HOST_HEADER",
            HttpEvent::InvalidChunkLen => "INVALID_TRANSFER_ENCODING_VALUE_IN_REQUEST",
            HttpEvent::InvalidContentLength => "INVALID_CONTENT_LENGTH_FIELD_IN_REQUEST",
            HttpEvent::UnsolicitedResponse => "UNABLE_TO_MATCH_RESPONSE_TO_REQUEST",
            HttpEvent::TooManyTransactions => "TOO_MANY_TRANSACTIONS",
        }
    }
}

/// Progress of one side of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Progress {
    /// Nothing yet.
    #[default]
    Started,
    /// The request line arrived, the headers not all yet (request-line buffers are there:
    /// a rule on the URI decides on the first segment, as in Suricata).
    Line,
    /// Line and headers parsed.
    Headers,
    /// Body being skipped.
    Body,
    /// Message complete.
    Complete,
}

/// One request and its response.
#[derive(Debug, Clone, Default)]
pub struct HttpTx {
    /// Transaction id within the flow.
    pub tx_id: u64,
    /// Request progress.
    pub request: Progress,
    /// Response progress.
    pub response: Progress,
    /// Method.
    pub method: Vec<u8>,
    /// Request target as sent.
    pub uri_raw: Vec<u8>,
    /// Normalised path (and raw query).
    pub uri: Vec<u8>,
    /// `HTTP/1.1`.
    pub protocol: Vec<u8>,
    /// Request line without its line end.
    pub request_line: Vec<u8>,
    /// Request line and header block as sent (through the blank line).
    pub request_start: Vec<u8>,
    /// Request header block as sent (without the request line and blank line).
    pub request_headers_raw: Vec<u8>,
    /// Request headers `(name, value)`.
    pub request_headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// Host: the absolute URI's, else the Host header's, lower-cased, without port.
    pub host: Option<Vec<u8>>,
    /// The Host header (or absolute-URI authority) as sent.
    pub host_raw: Option<Vec<u8>>,
    /// `Name: Value\r\n` per request header, Cookie left out (Suricata's `http.header`).
    pub header_buf: Vec<u8>,
    /// `\r\nName\r\n…\r\n` (Suricata's `http.header_names`).
    pub header_names: Vec<u8>,
    /// Status line without its line end.
    pub response_line: Vec<u8>,
    /// Status code digits.
    pub status: Option<u16>,
    /// Status code as text.
    pub stat_code: Vec<u8>,
    /// Reason phrase.
    pub stat_msg: Vec<u8>,
    /// Response headers `(name, value)`.
    pub response_headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// Response header block as sent (without the status line and blank line).
    pub response_headers_raw: Vec<u8>,
    /// `Name: Value\r\n` per response header, Set-Cookie left out.
    pub response_header_buf: Vec<u8>,
    /// `\r\nName\r\n…\r\n` of the response.
    pub response_header_names: Vec<u8>,
    /// Response body bytes seen (skipped).
    pub response_len: u64,
    /// Anomalies of this transaction.
    pub events: Vec<HttpEvent>,
    /// What [`HttpTx::heap_bytes`] said when the parser last counted it.
    kept: usize,
}

impl HttpTx {
    /// Heap bytes the transaction keeps (its strings and header lists, each allocation
    /// with a 16-byte header), for the app-layer memcap. Walks the header lists: computed
    /// when a head is parsed into the transaction, work of the same order as the parse.
    fn heap_bytes(&self) -> usize {
        let v = |b: &Vec<u8>| {
            if b.capacity() == 0 {
                0
            } else {
                b.capacity() + 16
            }
        };
        let o = |b: &Option<Vec<u8>>| b.as_ref().map_or(0, v);
        let list = |l: &Vec<(Vec<u8>, Vec<u8>)>| {
            l.capacity() * std::mem::size_of::<(Vec<u8>, Vec<u8>)>()
                + l.iter().map(|(n, x)| v(n) + v(x)).sum::<usize>()
        };
        [
            &self.method,
            &self.uri_raw,
            &self.uri,
            &self.protocol,
            &self.request_line,
            &self.request_start,
            &self.request_headers_raw,
            &self.header_buf,
            &self.header_names,
            &self.response_line,
            &self.stat_code,
            &self.stat_msg,
            &self.response_headers_raw,
            &self.response_header_buf,
            &self.response_header_names,
        ]
        .into_iter()
        .map(v)
        .sum::<usize>()
            + o(&self.host)
            + o(&self.host_raw)
            + list(&self.request_headers)
            + list(&self.response_headers)
            + self.events.capacity() * std::mem::size_of::<HttpEvent>()
    }

    fn header<'a>(list: &'a [(Vec<u8>, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
        list.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v.as_slice())
    }

    /// A request header's value (first one with that name, any case).
    pub fn request_header(&self, name: &str) -> Option<&[u8]> {
        Self::header(&self.request_headers, name)
    }

    /// A response header's value.
    pub fn response_header(&self, name: &str) -> Option<&[u8]> {
        Self::header(&self.response_headers, name)
    }

    /// True when both sides are complete.
    pub fn is_complete(&self) -> bool {
        self.request == Progress::Complete && self.response == Progress::Complete
    }

    /// The record for the log writers.
    pub fn eve(&self) -> HttpEve {
        let text = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
        HttpEve {
            hostname: self.host.as_deref().map(text),
            url: (!self.uri_raw.is_empty()).then(|| text(&self.uri_raw)),
            user_agent: self.request_header("user-agent").map(text),
            content_type: self.response_header("content-type").map(text),
            referer: self.request_header("referer").map(text),
            method: (!self.method.is_empty()).then(|| text(&self.method)),
            protocol: (!self.protocol.is_empty()).then(|| text(&self.protocol)),
            status: self.status,
            redirect: self.response_header("location").map(text),
            length: self.response_len,
        }
    }
}

/// What an `http` record and the `http` object of an alert hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpEve {
    /// `hostname`.
    pub hostname: Option<String>,
    /// `url` (the request target as sent).
    pub url: Option<String>,
    /// `http_user_agent`.
    pub user_agent: Option<String>,
    /// `http_content_type` (of the response).
    pub content_type: Option<String>,
    /// `http_refer`.
    pub referer: Option<String>,
    /// `http_method`.
    pub method: Option<String>,
    /// `protocol`.
    pub protocol: Option<String>,
    /// `status`.
    pub status: Option<u16>,
    /// `redirect` (Location).
    pub redirect: Option<String>,
    /// `length`: response body bytes.
    pub length: u64,
}

/// Body framing of the message being skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    None,
    Len(u64),
    Chunked(Chunk),
    UntilClose,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    Size,
    Data(u64),
    DataEnd,
    Trailer,
}

#[derive(Debug, Clone, Default)]
struct Side {
    head: Vec<u8>,
    body: Option<Body>,
    line: Vec<u8>,
    stopped: bool,
    tunnel: bool,
}

/// The HTTP/1 parser of one flow.
#[derive(Debug, Clone, Default)]
pub struct HttpParser {
    sides: [Side; 2],
    txs: VecDeque<HttpTx>,
    next_id: u64,
    /// Index into `txs` of the transaction whose response comes next.
    resp_idx: usize,
    raised: Vec<(u64, HttpEvent)>,
    new_flow: bool,
    new_txs: u64,
    saw_request: bool,
    /// The newest transaction has only its request line so far.
    partial: bool,
    /// Heap bytes of the live transactions (the sum of their `kept`).
    kept: usize,
}

impl HttpParser {
    /// A parser for a new flow.
    pub fn new() -> Self {
        HttpParser {
            new_flow: true,
            ..HttpParser::default()
        }
    }

    /// Live transactions, oldest first.
    pub fn txs(&self) -> impl Iterator<Item = &HttpTx> {
        self.txs.iter()
    }

    /// True when neither side can be parsed any more.
    pub fn has_failed(&self) -> bool {
        self.sides.iter().all(|s| s.stopped)
    }

    /// A request head was parsed, or the client side stopped.
    pub fn client_ready(&self) -> bool {
        self.saw_request || self.sides[0].stopped || self.sides[0].tunnel
    }

    /// True when [`Self::take_stats`], [`Self::take_raised`] or [`Self::take_done`] (not at
    /// the end) would hand out something: lets the engine skip draining the parser on
    /// packets that changed nothing it logs (every body segment of a download).
    pub fn has_output(&self) -> bool {
        !self.raised.is_empty()
            || self.new_flow
            || self.new_txs != 0
            || self.txs.front().is_some_and(HttpTx::is_complete)
    }

    /// `(flows, transactions)` since the last call.
    pub fn take_stats(&mut self) -> (u64, u64) {
        let r = (u64::from(self.new_flow), self.new_txs);
        self.new_flow = false;
        self.new_txs = 0;
        r
    }

    /// Events raised since the last call, with their transaction.
    pub fn take_raised(&mut self) -> std::vec::Drain<'_, (u64, HttpEvent)> {
        self.raised.drain(..)
    }

    /// Appends a transaction, counting its heap bytes.
    fn push_tx(&mut self, mut t: HttpTx) {
        t.kept = t.heap_bytes();
        self.kept += t.kept;
        self.txs.push_back(t);
    }

    /// Bytes the parser keeps, for the app-layer memcap
    /// ([`crate::config::AppLayerConfig::memcap`]): the boxed parser, both sides' head
    /// and line buffers and the transaction queue by capacity, the transactions' heap
    /// bytes (counted when their heads were parsed) and pending events. O(1).
    pub fn mem_bytes(&self) -> usize {
        std::mem::size_of::<HttpParser>()
            + 16
            + self
                .sides
                .iter()
                .map(|s| s.head.capacity() + s.line.capacity())
                .sum::<usize>()
            + self.txs.capacity() * std::mem::size_of::<HttpTx>()
            + self.raised.capacity() * std::mem::size_of::<(u64, HttpEvent)>()
            + self.kept
    }

    /// Removes the complete transactions at the front (all of them when `at_end`).
    pub fn take_done(&mut self, at_end: bool) -> Vec<HttpTx> {
        let mut out = Vec::new();
        while let Some(t) = self.txs.front() {
            if !(at_end || t.is_complete()) {
                break;
            }
            if let Some(t) = self.txs.pop_front() {
                self.kept = self.kept.saturating_sub(t.kept);
                out.push(t);
            }
            self.resp_idx = self.resp_idx.saturating_sub(1);
        }
        out
    }

    fn raise(&mut self, idx: Option<usize>, e: HttpEvent) {
        let id = idx
            .and_then(|i| self.txs.get_mut(i))
            .map(|t| {
                if t.events.len() < MAX_EVENTS_PER_TX {
                    t.events.push(e);
                }
                t.tx_id
            })
            .unwrap_or(self.next_id);
        if self.raised.len() < 1024 {
            self.raised.push((id, e));
        }
    }

    /// `len` bytes of `dir` were lost: that side stops.
    pub fn gap(&mut self, dir: Direction, _len: u64) {
        self.sides[dir.index()].stopped = true;
    }

    /// Feeds in-order bytes of `dir`.
    pub fn feed(&mut self, dir: Direction, mut data: &[u8]) {
        let d = dir.index();
        while !data.is_empty() {
            let side = &mut self.sides[d];
            if side.stopped || side.tunnel {
                return;
            }
            if let Some(body) = side.body {
                let used = self.skip_body(dir, body, data);
                data = &data[used..];
                continue;
            }
            // Collect the head up to its blank line.
            let start = side.head.len().saturating_sub(3);
            let room = MAX_HEAD_LEN.saturating_sub(side.head.len());
            let take = data.len().min(room);
            side.head.extend_from_slice(&data[..take]);
            let end = find_head_end(&side.head, start);
            match end {
                Some(end) => {
                    let extra = side.head.len() - end;
                    let head = std::mem::take(&mut side.head);
                    let consumed = take - extra;
                    data = &data[consumed..];
                    match dir {
                        Direction::ToServer => self.request_head(&head[..end]),
                        Direction::ToClient => self.response_head(&head[..end]),
                    }
                }
                None if take == data.len() && side.head.len() < MAX_HEAD_LEN => {
                    if dir == Direction::ToServer {
                        self.request_line_early();
                    }
                    return;
                }
                None => {
                    side.stopped = true;
                    side.head = Vec::new();
                    let e = match dir {
                        Direction::ToServer => HttpEvent::RequestFieldTooLong,
                        Direction::ToClient => HttpEvent::ResponseFieldTooLong,
                    };
                    self.raise(None, e);
                    return;
                }
            }
        }
    }

    /// The flow ended: a body framed by the close is complete.
    pub fn close(&mut self) {
        if self.sides[1].body == Some(Body::UntilClose) {
            self.sides[1].body = None;
            if let Some(t) = self.txs.get_mut(self.resp_idx.saturating_sub(1)) {
                t.response = Progress::Complete;
            }
        }
    }

    /// A request whose head is still incomplete: once its first line is there, a
    /// transaction with the request-line fields (completed by [`Self::request_head`]).
    fn request_line_early(&mut self) {
        if self.partial || self.txs.len() >= MAX_LIVE_TXS {
            return;
        }
        let head = trim_leading_crlf(&self.sides[0].head);
        let Some(nl) = head.iter().position(|&b| b == b'\n') else {
            return;
        };
        let line = trim_cr(&head[..nl]);
        let mut parts = line.split(|&b| b == b' ').filter(|p| !p.is_empty());
        let (Some(method), Some(target), Some(version)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return;
        };
        if parts.next().is_some()
            || !version.starts_with(b"HTTP/1.")
            || !method.iter().all(u8::is_ascii_alphabetic)
        {
            return;
        }
        let (path_host, path) = split_absolute(target);
        let t = HttpTx {
            tx_id: self.next_id,
            request: Progress::Line,
            method: method.to_vec(),
            uri_raw: target.to_vec(),
            uri: normalize_uri(path),
            protocol: version.to_vec(),
            request_line: line.to_vec(),
            host: path_host
                .as_deref()
                .map(|h| strip_port(h).to_ascii_lowercase()),
            host_raw: path_host,
            ..HttpTx::default()
        };
        self.next_id += 1;
        self.new_txs += 1;
        self.push_tx(t);
        self.partial = true;
    }

    fn request_head(&mut self, head: &[u8]) {
        // Leading blank lines between requests are tolerated (RFC 9112 §2.2).
        let trimmed = trim_leading_crlf(head);
        if trimmed.is_empty() {
            return;
        }
        // The transaction opened by the request line is completed here, under its id.
        let reuse = if std::mem::take(&mut self.partial) {
            self.txs.pop_back().map(|t| {
                self.kept = self.kept.saturating_sub(t.kept);
                t.tx_id
            })
        } else {
            None
        };
        let mut hs = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut hs);
        let parsed = req.parse(trimmed);
        let ok = matches!(parsed, Ok(httparse::Status::Complete(_)));
        if !ok {
            self.sides[0].stopped = true;
            let e = match parsed {
                Err(httparse::Error::TooManyHeaders) => HttpEvent::TooManyHeaders,
                _ => HttpEvent::InvalidRequest,
            };
            self.raise(None, e);
            return;
        }
        if self.txs.len() >= MAX_LIVE_TXS {
            self.sides[0].stopped = true;
            self.raise(None, HttpEvent::TooManyTransactions);
            return;
        }
        let mut t = HttpTx {
            tx_id: reuse.unwrap_or(self.next_id),
            request: Progress::Headers,
            method: req.method.unwrap_or_default().as_bytes().to_vec(),
            uri_raw: req.path.unwrap_or_default().as_bytes().to_vec(),
            protocol: format!("HTTP/1.{}", req.version.unwrap_or(1)).into_bytes(),
            ..HttpTx::default()
        };
        if reuse.is_none() {
            self.next_id += 1;
            self.new_txs += 1;
        }
        self.saw_request = true;
        let line_end = trimmed
            .iter()
            .position(|&b| b == b'\n')
            .unwrap_or(trimmed.len());
        t.request_line = trim_cr(&trimmed[..line_end]).to_vec();
        t.request_start = trimmed.to_vec();
        t.request_headers_raw = trimmed.get(line_end + 1..).unwrap_or_default().to_vec();
        strip_blank_line(&mut t.request_headers_raw);
        t.header_names.extend_from_slice(b"\r\n");
        for h in req.headers.iter() {
            let (n, v) = (h.name.as_bytes().to_vec(), h.value.to_vec());
            t.header_names.extend_from_slice(&n);
            t.header_names.extend_from_slice(b"\r\n");
            if !n.eq_ignore_ascii_case(b"cookie") {
                t.header_buf.extend_from_slice(&n);
                t.header_buf.extend_from_slice(b": ");
                t.header_buf.extend_from_slice(&v);
                t.header_buf.extend_from_slice(b"\r\n");
            }
            t.request_headers.push((n, v));
        }
        t.header_names.extend_from_slice(b"\r\n");
        let (path_host, path) = split_absolute(&t.uri_raw);
        t.uri = normalize_uri(path);
        let header_host = t.request_header("host").map(<[u8]>::to_vec);
        let norm = |h: &[u8]| -> Vec<u8> { strip_port(h).to_ascii_lowercase() };
        let mut events = Vec::new();
        match (&path_host, &header_host) {
            (Some(u), Some(h)) if norm(u) != norm(h) => events.push(HttpEvent::HostHeaderAmbiguous),
            (None, None) if req.version == Some(1) => events.push(HttpEvent::MissingHostHeader),
            _ => {}
        }
        t.host_raw = path_host.clone().or(header_host);
        t.host = t.host_raw.as_deref().map(norm);
        let body = request_body(&t, &mut events);
        t.request = if body == Body::None {
            Progress::Complete
        } else {
            Progress::Body
        };
        self.push_tx(t);
        let idx = self.txs.len() - 1;
        for e in events {
            self.raise(Some(idx), e);
        }
        if body != Body::None {
            self.sides[0].body = Some(body);
        }
    }

    fn response_head(&mut self, head: &[u8]) {
        let trimmed = trim_leading_crlf(head);
        if trimmed.is_empty() {
            return;
        }
        let mut hs = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut hs);
        let parsed = resp.parse(trimmed);
        if !matches!(parsed, Ok(httparse::Status::Complete(_))) {
            self.sides[1].stopped = true;
            let e = match parsed {
                Err(httparse::Error::TooManyHeaders) => HttpEvent::TooManyHeaders,
                _ => HttpEvent::InvalidResponse,
            };
            self.raise(None, e);
            return;
        }
        let code = resp.code.unwrap_or(0);
        // Interim responses (100 Continue...) answer nothing; 101 switches protocols.
        if (100..200).contains(&code) && code != 101 {
            return;
        }
        if self.resp_idx >= self.txs.len() {
            // A response nobody asked for: a transaction of its own.
            if self.txs.len() >= MAX_LIVE_TXS {
                self.sides[1].stopped = true;
                return;
            }
            let t = HttpTx {
                tx_id: self.next_id,
                request: Progress::Complete,
                ..HttpTx::default()
            };
            self.next_id += 1;
            self.new_txs += 1;
            self.push_tx(t);
            let i = self.txs.len() - 1;
            self.raise(Some(i), HttpEvent::UnsolicitedResponse);
        }
        let idx = self.resp_idx;
        self.resp_idx += 1;
        let Some(t) = self.txs.get_mut(idx) else {
            return;
        };
        let line_end = trimmed
            .iter()
            .position(|&b| b == b'\n')
            .unwrap_or(trimmed.len());
        t.response_line = trim_cr(&trimmed[..line_end]).to_vec();
        t.status = Some(code);
        t.stat_code = code.to_string().into_bytes();
        t.stat_msg = resp.reason.unwrap_or_default().as_bytes().to_vec();
        t.response_headers_raw = trimmed.get(line_end + 1..).unwrap_or_default().to_vec();
        strip_blank_line(&mut t.response_headers_raw);
        t.response_header_names.extend_from_slice(b"\r\n");
        for h in resp.headers.iter() {
            let (n, v) = (h.name.as_bytes().to_vec(), h.value.to_vec());
            t.response_header_names.extend_from_slice(&n);
            t.response_header_names.extend_from_slice(b"\r\n");
            if !n.eq_ignore_ascii_case(b"set-cookie") {
                t.response_header_buf.extend_from_slice(&n);
                t.response_header_buf.extend_from_slice(b": ");
                t.response_header_buf.extend_from_slice(&v);
                t.response_header_buf.extend_from_slice(b"\r\n");
            }
            t.response_headers.push((n, v));
        }
        t.response_header_names.extend_from_slice(b"\r\n");
        let head_req = t.method.eq_ignore_ascii_case(b"HEAD");
        let connect = t.method.eq_ignore_ascii_case(b"CONNECT");
        let mut events = Vec::new();
        let body = if head_req || code == 204 || code == 304 {
            Body::None
        } else if (connect && (200..300).contains(&code)) || code == 101 {
            // The rest of the flow is a tunnel (or another protocol).
            self.sides[0].tunnel = true;
            self.sides[1].tunnel = true;
            Body::None
        } else {
            match framing(&t.response_headers, &mut events) {
                Some(b) => b,
                None => Body::UntilClose,
            }
        };
        t.response = if body == Body::None {
            Progress::Complete
        } else {
            Progress::Body
        };
        let now = t.heap_bytes();
        self.kept = self.kept.saturating_sub(t.kept) + now;
        t.kept = now;
        for e in events {
            self.raise(Some(idx), e);
        }
        if body != Body::None {
            self.sides[1].body = Some(body);
        }
    }

    /// Skips body bytes; returns how many of `data` were used.
    fn skip_body(&mut self, dir: Direction, body: Body, data: &[u8]) -> usize {
        let d = dir.index();
        let (used, next) = match body {
            Body::None => (0, None),
            Body::UntilClose => (data.len(), Some(Body::UntilClose)),
            Body::Len(n) => {
                let k = (data.len() as u64).min(n);
                let left = n - k;
                (k as usize, (left > 0).then_some(Body::Len(left)))
            }
            Body::Chunked(c) => {
                let (used, next) = self.chunk_step(d, c, data);
                (used, next.map(Body::Chunked))
            }
        };
        if dir == Direction::ToClient {
            let counted = match body {
                Body::Chunked(Chunk::Data(_)) | Body::Len(_) | Body::UntilClose => used as u64,
                _ => 0,
            };
            if let Some(t) = self.txs.get_mut(self.resp_idx.saturating_sub(1)) {
                t.response_len = t.response_len.saturating_add(counted);
            }
        }
        self.sides[d].body = next;
        if next.is_none() {
            let done = match dir {
                Direction::ToServer => self.txs.back_mut(),
                Direction::ToClient => self.txs.get_mut(self.resp_idx.saturating_sub(1)),
            };
            if let Some(t) = done {
                match dir {
                    Direction::ToServer => t.request = Progress::Complete,
                    Direction::ToClient => t.response = Progress::Complete,
                }
            }
        }
        used
    }

    /// One step of chunked framing: returns bytes used and the next state (`None`: done).
    fn chunk_step(&mut self, d: usize, c: Chunk, data: &[u8]) -> (usize, Option<Chunk>) {
        match c {
            Chunk::Data(n) => {
                let k = (data.len() as u64).min(n);
                let left = n - k;
                (
                    k as usize,
                    Some(if left > 0 {
                        Chunk::Data(left)
                    } else {
                        Chunk::DataEnd
                    }),
                )
            }
            Chunk::Size | Chunk::DataEnd | Chunk::Trailer => {
                let Some(nl) = data.iter().position(|&b| b == b'\n') else {
                    let side = &mut self.sides[d];
                    if side.line.len() + data.len() > MAX_CHUNK_LINE {
                        side.stopped = true;
                        return (data.len(), Some(c));
                    }
                    side.line.extend_from_slice(data);
                    return (data.len(), Some(c));
                };
                let side = &mut self.sides[d];
                side.line.extend_from_slice(&data[..nl]);
                let line = std::mem::take(&mut side.line);
                let line = trim_cr(&line);
                let next = match c {
                    Chunk::DataEnd => Some(Chunk::Size),
                    Chunk::Trailer if line.is_empty() => None,
                    Chunk::Trailer => Some(Chunk::Trailer),
                    _ => {
                        let size = line.split(|&b| b == b';').next().unwrap_or_default();
                        let size = std::str::from_utf8(size)
                            .ok()
                            .and_then(|s| u64::from_str_radix(s.trim(), 16).ok());
                        match size {
                            Some(0) => Some(Chunk::Trailer),
                            Some(n) => Some(Chunk::Data(n)),
                            None => {
                                self.sides[d].stopped = true;
                                self.raise(None, HttpEvent::InvalidChunkLen);
                                None
                            }
                        }
                    }
                };
                (nl + 1, next)
            }
        }
    }
}

/// Where the head's blank line ends (index after it), searching from `from`.
fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    // Skip leading empty lines: they are not the end of a head.
    let lead = buf.len() - trim_leading_crlf(buf).len();
    let from = from.max(lead);
    let mut i = from;
    while let Some(p) = buf
        .get(i..)
        .and_then(|b| b.iter().position(|&c| c == b'\n'))
    {
        let nl = i + p;
        // "\n\n" or "\n\r\n" ends the head.
        match buf.get(nl + 1) {
            Some(b'\n') => return Some(nl + 2),
            Some(b'\r') if buf.get(nl + 2) == Some(&b'\n') => return Some(nl + 3),
            _ => {}
        }
        i = nl + 1;
    }
    None
}

fn trim_leading_crlf(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|&&c| c == b'\r' || c == b'\n').count();
    &b[n..]
}

fn trim_cr(b: &[u8]) -> &[u8] {
    b.strip_suffix(b"\r").unwrap_or(b)
}

fn strip_blank_line(v: &mut Vec<u8>) {
    if v.ends_with(b"\r\n\r\n") {
        v.truncate(v.len() - 2);
    } else if v.ends_with(b"\n\n") {
        v.truncate(v.len() - 1);
    }
}

fn strip_port(h: &[u8]) -> &[u8] {
    let h = trim_ascii(h);
    if h.first() == Some(&b'[') {
        // [v6]:port
        return match h.iter().position(|&c| c == b']') {
            Some(e) => &h[..=e],
            None => h,
        };
    }
    match h.iter().rposition(|&c| c == b':') {
        Some(p) if h[p + 1..].iter().all(u8::is_ascii_digit) => &h[..p],
        _ => h,
    }
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    let s = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let e = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(s, |e| e + 1);
    &b[s..e.max(s)]
}

/// `http://host:port/path?q` → `(Some(host:port), /path?q)`; other targets unchanged.
fn split_absolute(uri: &[u8]) -> (Option<Vec<u8>>, &[u8]) {
    let lower: Vec<u8> = uri.iter().take(8).map(u8::to_ascii_lowercase).collect();
    let rest = if lower.starts_with(b"http://") {
        &uri[7..]
    } else if lower.starts_with(b"https://") {
        &uri[8..]
    } else {
        return (None, uri);
    };
    let end = rest
        .iter()
        .position(|&c| c == b'/' || c == b'?')
        .unwrap_or(rest.len());
    let mut auth = &rest[..end];
    if let Some(at) = auth.iter().rposition(|&c| c == b'@') {
        auth = &auth[at + 1..];
    }
    let path = &rest[end..];
    (
        Some(auth.to_vec()),
        if path.is_empty() { b"/" } else { path },
    )
}

fn hexval(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Suricata-like `http.uri`: percent-decoding of the path (not `%2F` or `%00`), `.`/`..`
/// segments removed, `//` collapsed; the query is kept as sent.
pub fn normalize_uri(uri: &[u8]) -> Vec<u8> {
    let q = uri.iter().position(|&c| c == b'?').unwrap_or(uri.len());
    let (path, query) = uri.split_at(q);
    let mut dec = Vec::with_capacity(path.len());
    let mut i = 0;
    while i < path.len() {
        if path[i] == b'%' && i + 2 < path.len() {
            if let (Some(h), Some(l)) = (hexval(path[i + 1]), hexval(path[i + 2])) {
                let v = h * 16 + l;
                if v != b'/' && v != 0 {
                    dec.push(v);
                    i += 3;
                    continue;
                }
            }
        }
        dec.push(path[i]);
        i += 1;
    }
    // Remove dot segments (RFC 3986 §5.2.4) and collapse empty segments.
    let absolute = dec.first() == Some(&b'/');
    let trailing = dec.ends_with(b"/") || dec.ends_with(b"/.") || dec.ends_with(b"/..");
    let mut segs: Vec<&[u8]> = Vec::new();
    for s in dec.split(|&c| c == b'/') {
        match s {
            b"" | b"." => {}
            b".." => {
                segs.pop();
            }
            s => segs.push(s),
        }
    }
    let mut out = Vec::with_capacity(uri.len());
    if absolute {
        out.push(b'/');
    }
    out.extend_from_slice(&segs.join(&b'/'));
    if trailing && !segs.is_empty() {
        out.push(b'/');
    }
    out.extend_from_slice(query);
    out
}

/// Body framing from headers: chunked wins over Content-Length; `None`: neither.
fn framing(headers: &[(Vec<u8>, Vec<u8>)], events: &mut Vec<HttpEvent>) -> Option<Body> {
    let te = HttpTx::header(headers, "transfer-encoding");
    if te.is_some_and(|v| {
        v.split(|&c| c == b',')
            .next_back()
            .is_some_and(|last| trim_ascii(last).eq_ignore_ascii_case(b"chunked"))
    }) {
        return Some(Body::Chunked(Chunk::Size));
    }
    let cl = HttpTx::header(headers, "content-length")?;
    match std::str::from_utf8(trim_ascii(cl))
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    {
        Some(0) => Some(Body::None),
        Some(n) => Some(Body::Len(n)),
        None => {
            events.push(HttpEvent::InvalidContentLength);
            None
        }
    }
}

fn request_body(t: &HttpTx, events: &mut Vec<HttpEvent>) -> Body {
    framing(&t.request_headers, events).unwrap_or(Body::None)
}

/// Detection buffers, in local-index order (see [`buffer`]).
const BUFFERS: [BufferDef; 27] = [
    BufferDef {
        name: "http.uri",
        multi: false,
    },
    BufferDef {
        name: "http.uri.raw",
        multi: false,
    },
    BufferDef {
        name: "http.method",
        multi: false,
    },
    BufferDef {
        name: "http.host",
        multi: false,
    },
    BufferDef {
        name: "http.host.raw",
        multi: false,
    },
    BufferDef {
        name: "http.user_agent",
        multi: false,
    },
    BufferDef {
        name: "http.header",
        multi: false,
    },
    BufferDef {
        name: "http.header.raw",
        multi: false,
    },
    BufferDef {
        name: "http.header_names",
        multi: false,
    },
    BufferDef {
        name: "http.cookie",
        multi: false,
    },
    BufferDef {
        name: "http.content_type",
        multi: false,
    },
    BufferDef {
        name: "http.content_len",
        multi: false,
    },
    BufferDef {
        name: "http.accept",
        multi: false,
    },
    BufferDef {
        name: "http.accept_enc",
        multi: false,
    },
    BufferDef {
        name: "http.accept_lang",
        multi: false,
    },
    BufferDef {
        name: "http.referer",
        multi: false,
    },
    BufferDef {
        name: "http.connection",
        multi: false,
    },
    BufferDef {
        name: "http.request_line",
        multi: false,
    },
    BufferDef {
        name: "http.start",
        multi: false,
    },
    BufferDef {
        name: "http.protocol",
        multi: false,
    },
    BufferDef {
        name: "http.stat_code",
        multi: false,
    },
    BufferDef {
        name: "http.stat_msg",
        multi: false,
    },
    BufferDef {
        name: "http.response_line",
        multi: false,
    },
    BufferDef {
        name: "http.server",
        multi: false,
    },
    BufferDef {
        name: "http.location",
        multi: false,
    },
    BufferDef {
        name: "http.request_body",
        multi: false,
    },
    BufferDef {
        name: "http.response_body",
        multi: false,
    },
];

/// Registry entry.
pub(crate) const DEF: ProtoDef = ProtoDef {
    proto: AppProto::Http,
    name: "http",
    exclusive_ports: &[],
    probe,
    buffers: &BUFFERS,
    hooks: [
        &[
            "request_started",
            "request_line",
            "request_headers",
            "request_body",
            "request_trailer",
            "request_complete",
        ],
        &[
            "response_started",
            "response_line",
            "response_headers",
            "response_body",
            "response_trailer",
            "response_complete",
        ],
    ],
    parser: Some(new_parser),
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

fn new_parser(_cfg: &AppLayerConfig, l4: u8) -> Option<Parser> {
    (l4 == 6).then(|| Parser::Http(Box::new(HttpParser::new())))
}

/// Feeds the parser.
pub(crate) fn feed(p: &mut HttpParser, dir: Direction, data: &[u8]) -> Feed {
    p.feed(dir, data);
    Feed::Continue
}

/// Progress of one side as an index into [`DEF`]'s hooks.
pub(crate) fn progress(t: &HttpTx, dir: Direction) -> usize {
    let p = match dir {
        Direction::ToServer => t.request,
        Direction::ToClient => t.response,
    };
    match p {
        Progress::Started => 0,
        Progress::Line => 1,
        Progress::Headers => 2,
        Progress::Body => 3,
        Progress::Complete => 5,
    }
}

fn nonempty(v: &[u8]) -> Option<&[u8]> {
    (!v.is_empty()).then_some(v)
}

/// Instance `i` of local buffer `local` (all single buffers: `i` must be 0), as seen by a
/// packet of `dir`: to the client, the header buffers (`http.header`, `.raw`, `_names`,
/// `http.content_type`, `http.content_len`, `http.connection`) are the response's, as in
/// Suricata.
pub(crate) fn buffer(t: &HttpTx, dir: Direction, local: usize, i: usize) -> Option<&[u8]> {
    if i != 0 {
        return None;
    }
    let line = t.request >= Progress::Line;
    let req = t.request >= Progress::Headers;
    let resp = t.response >= Progress::Headers;
    if dir == Direction::ToClient {
        match local {
            6 if resp => return nonempty(&t.response_header_buf),
            7 if resp => return nonempty(&t.response_headers_raw),
            8 if resp => return Some(&t.response_header_names),
            10 => return t.response_header("content-type"),
            11 => return t.response_header("content-length"),
            16 => return t.response_header("connection"),
            6..=8 => return None,
            _ => {}
        }
    }
    match local {
        0 if line => Some(&t.uri),
        1 if line => Some(&t.uri_raw),
        2 if line => Some(&t.method),
        3 => t.host.as_deref(),
        4 => t.host_raw.as_deref(),
        5 => t.request_header("user-agent"),
        6 if req => nonempty(&t.header_buf),
        7 if req => nonempty(&t.request_headers_raw),
        8 if req => Some(&t.header_names),
        9 => t.request_header("cookie"),
        10 => t.request_header("content-type"),
        11 => t.request_header("content-length"),
        12 => t.request_header("accept"),
        13 => t.request_header("accept-encoding"),
        14 => t.request_header("accept-language"),
        15 => t.request_header("referer"),
        16 => t.request_header("connection"),
        17 if line => Some(&t.request_line),
        18 if req => Some(&t.request_start),
        19 if line => Some(&t.protocol),
        20 if resp => Some(&t.stat_code),
        21 if resp => Some(&t.stat_msg),
        22 if resp => Some(&t.response_line),
        23 => t.response_header("server"),
        24 => t.response_header("location"),
        // Bodies are skipped, never kept: a rule on them loads but can only see absence.
        _ => None,
    }
}

/// Log data of a transaction.
pub(crate) fn log(t: &HttpTx) -> AppTxData {
    AppTxData::Http(Box::new(t.eve()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipelined_requests_and_chunked_responses() {
        let mut p = HttpParser::new();
        p.feed(
            Direction::ToServer,
            b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /2 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nHEAD /3 HTTP/1.1\r\nHost: a\r\n\r\n",
        );
        assert_eq!(p.txs().count(), 3);
        let resp = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nT: 1\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nnoHTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n";
        // Byte by byte: framing must hold across every split.
        for b in resp.iter() {
            p.feed(Direction::ToClient, std::slice::from_ref(b));
        }
        let done = p.take_done(false);
        assert_eq!(done.len(), 3);
        assert_eq!(done[0].status, Some(200));
        assert_eq!(done[0].response_len, 5);
        assert_eq!(done[1].stat_msg, b"Not Found");
        assert_eq!(done[2].status, Some(200), "HEAD response has no body");
        assert_eq!(done[1].method, b"POST");
        assert!(!p.has_failed());
    }

    #[test]
    fn request_line_before_the_headers() {
        let mut p = HttpParser::new();
        p.feed(
            Direction::ToServer,
            b"GET /x/../y HTTP/1.1\r\nUser-Agent: a",
        );
        let t: Vec<_> = p.txs().collect();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].request, Progress::Line);
        assert_eq!(t[0].uri, b"/y");
        assert!(!p.client_ready(), "the Host header decides: not yet");
        p.feed(Direction::ToServer, b"\r\nHost: h\r\n\r\n");
        let t: Vec<_> = p.txs().collect();
        assert_eq!(t.len(), 1);
        assert_eq!((t[0].tx_id, t[0].request), (0, Progress::Complete));
        assert_eq!(t[0].host.as_deref(), Some(&b"h"[..]));
        assert_eq!(p.take_stats(), (1, 1));
        assert!(p.client_ready());
    }

    #[test]
    fn host_and_events() {
        let mut p = HttpParser::new();
        p.feed(
            Direction::ToServer,
            b"GET http://Evil.Example:80/x HTTP/1.1\r\nHost: good.example\r\nCookie: c=1\r\n\r\n",
        );
        let t = p.txs().next().unwrap();
        assert_eq!(t.host.as_deref(), Some(&b"evil.example"[..]));
        assert_eq!(t.uri, b"/x");
        assert_eq!(t.events, vec![HttpEvent::HostHeaderAmbiguous]);
        assert_eq!(t.header_buf, b"Host: good.example\r\n");
        assert_eq!(t.header_names, b"\r\nHost\r\nCookie\r\n\r\n");
        let mut p = HttpParser::new();
        p.feed(Direction::ToServer, b"GET / HTTP/1.1\r\nBad Header\r\n\r\n");
        assert!(p.client_ready());
        assert_eq!(
            p.take_raised().next().map(|e| e.1),
            Some(HttpEvent::InvalidRequest)
        );
    }

    #[test]
    fn connect_tunnel_is_not_parsed() {
        let mut p = HttpParser::new();
        p.feed(
            Direction::ToServer,
            b"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n",
        );
        p.feed(
            Direction::ToClient,
            b"HTTP/1.1 200 Connection established\r\n\r\n",
        );
        p.feed(Direction::ToServer, &[0x16, 3, 1, 0, 5, 1, 2, 3, 4, 5]);
        p.feed(Direction::ToClient, b"garbage");
        let t: Vec<_> = p.take_done(false);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].host.as_deref(), Some(&b"a.example"[..]));
        assert!(p.take_raised().next().is_none());
    }

    #[test]
    fn uri_normalisation() {
        assert_eq!(
            normalize_uri(b"/a//b/./c/../d%2e%2Fx?q=%2e"),
            b"/a/b/d.%2Fx?q=%2e"
        );
        assert_eq!(normalize_uri(b"/../../etc/passwd"), b"/etc/passwd");
        assert_eq!(normalize_uri(b"/dir/"), b"/dir/");
        assert_eq!(normalize_uri(b"/%"), b"/%");
        assert_eq!(normalize_uri(b"/%4"), b"/%4");
    }
}
