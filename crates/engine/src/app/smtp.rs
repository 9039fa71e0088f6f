//! SMTP app-layer parser, following Suricata 8.0.7+ behaviour
//! (`shared/reference/suricata-smtp-parser.md`).
//!
//! Sans-I/O: the engine feeds in-order reassembled bytes of each direction
//! ([`SmtpParser::to_server`], [`SmtpParser::to_client`]) and reports lost
//! data with [`SmtpParser::gap`]. Client command lines are queued in a FIFO;
//! each complete server reply (a multi-line `NNN-` reply counts once) answers
//! the oldest queued command. Transactions ([`SmtpTx`]) follow Suricata's
//! boundaries so `tx_id`s match Suricata's `smtp` EVE records.
//!
//! Memory is bounded: partial lines are buffered up to [`MAX_LINE_LEN`]
//! bytes per direction, the command queue holds at most [`MAX_QUEUE`]
//! entries, at most [`MAX_LIVE_TXS`] transactions are live at once, and each
//! transaction records at most [`MAX_RECORDS_PER_TX`] command offsets and
//! [`MAX_RCPT_PER_TX`] recipients. Message bodies are scanned for the end
//! marker (and over-long top-level header lines) but never stored; only the
//! message's top-level header block is kept, up to [`MAX_HEADER_BYTES`] per
//! transaction, for the `email` object ([`EmailEve`]: `from`, `to[]`, `cc[]`,
//! `status`). MIME parts (attachments, `file.data`, URLs) are not decoded.
//!
//! ```
//! use sekisho_engine::app::smtp::{SmtpParser, Status};
//! let mut p = SmtpParser::new();
//! p.to_client(b"220 mx.example ESMTP\r\n");
//! p.to_server(b"EHLO client.example\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.net>\r\n");
//! let tx = p.tx(0).expect("first command opened tx 0");
//! assert_eq!(tx.rcpt_to, vec![b"<b@example.net>".to_vec()]);
//! // Where the RCPT TO line starts in the client stream (for inline drops).
//! assert_eq!(tx.commands[2].offset, 48);
//! assert_eq!(p.to_client(b"250 hi\r\n250 ok\r\n250 ok\r\n"), Status::Continue);
//! ```

use std::collections::VecDeque;

/// Longest command or reply line kept, in bytes (Suricata's
/// `SMTP_LINE_BUFFER_LIMIT`); longer lines are cut and raise
/// [`SmtpEvent::TruncatedLine`], the rest up to the next LF is discarded.
pub const MAX_LINE_LEN: usize = 4096;
/// Capacity of the command queue; a command beyond it is a parser error.
pub const MAX_QUEUE: usize = 65535;
/// Default cap on live (not yet taken) transactions, Suricata's
/// `app-layer.protocols.smtp.max-tx`; creating one more is a parser error.
pub const MAX_LIVE_TXS: usize = 256;
/// Cap on [`CommandRecord`]s kept per transaction; later commands are still
/// parsed but not recorded ([`SmtpTx::records_truncated`] is set).
pub const MAX_RECORDS_PER_TX: usize = 1024;
/// Cap on recipients stored per transaction; later RCPT TO are parsed but
/// not stored ([`SmtpTx::records_truncated`] is set).
pub const MAX_RCPT_PER_TX: usize = 1024;
/// Cap on the bytes of recipients stored per transaction (a recipient token can be a whole
/// command line long, so the count alone would allow 1,024 × 4 KiB per transaction); beyond
/// it later recipients are parsed but not stored ([`SmtpTx::records_truncated`] is set, and a
/// drop rule reading `smtp.rcpt_to` then follows the `detect_limit` exception policy).
pub const MAX_RCPT_BYTES_PER_TX: usize = 64 * 1024;
/// Bytes of a DATA message's top-level header block kept per transaction (for
/// [`EmailEve`]); the rest of a longer block is dropped, the body is never kept.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Anomaly events kept per transaction (and per connection); later ones are counted in the
/// stats only, so a message whose header never ends cannot grow the list without bound.
pub const MAX_EVENTS_PER_TX: usize = 64;
/// Transaction events kept for [`SmtpParser::take_raised`] between two calls; later ones
/// are still recorded on their transaction but not reported as newly raised.
pub const MAX_RAISED: usize = 1024;

/// Reply codes Suricata accepts. Any other code is `INVALID_REPLY`; a well-formed one
/// (RFC 5321 syntax, see [`ReplyCode::Unknown`]) is parsed on, anything else is a parser error.
const KNOWN_CODES: [u16; 39] = [
    211, 214, 220, 221, 235, 250, 251, 252, 334, 354, 401, 402, 421, 435, 450, 451, 452, 454, 455,
    500, 501, 502, 503, 504, 511, 521, 522, 525, 530, 534, 535, 541, 543, 550, 551, 552, 553, 554,
    555,
];

/// Direction of a stream; the engine's own type, re-exported so parser users need one import.
pub use crate::event::Direction;

/// Anomaly raised by the parser, named like Suricata's `smtp` app-layer events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SmtpEvent {
    /// Reply line that is not a reply (shorter than 3 bytes, non-digits, a code outside
    /// RFC 5321's syntax: fatal), the connection's first well-formed code outside
    /// Suricata's table (not fatal: the reply still answers its command; later ones are
    /// only counted, [`SmtpParser::unknown_replies`]), or a non-220 greeting (not fatal).
    InvalidReply,
    /// A complete reply arrived while no command was waiting for one.
    UnableToMatchReplyWithRequest,
    /// A command argument longer than 65535 bytes (unreachable with the
    /// 4096-byte line cap; kept for name parity).
    MaxCommandLineLenExceeded,
    /// A reply longer than allowed (name parity; over-long replies raise
    /// [`SmtpEvent::TruncatedLine`] like Suricata).
    MaxReplyLineLenExceeded,
    /// A command queued behind an unanswered DATA or STARTTLS.
    InvalidPipelinedSequence,
    /// BDAT chunk accounting overflowed (never raised: chunks are counted
    /// per BDAT as in 8.0.7+).
    BdatChunkLenExceeded,
    /// The client spoke before any server reply.
    NoServerWelcomeMessage,
    /// STARTTLS answered with something other than 220.
    TlsRejected,
    /// DATA answered with something other than 354.
    DataCommandRejected,
    /// Second HELO/EHLO in the connection, or second MAIL FROM in a tx.
    DuplicateFields,
    /// Second DATA in a transaction that already had one.
    UnparsableContent,
    /// A command or reply line longer than [`MAX_LINE_LEN`] was cut.
    TruncatedLine,
    /// `BDAT` with invalid syntax (8.0.7+).
    InvalidBdat,
    /// The command queue or the transaction table was full.
    TooManyTransactions,
}

impl SmtpEvent {
    /// The rule-language name, as used in `app-layer-event:smtp.<name>`.
    pub fn name(self) -> &'static str {
        match self {
            SmtpEvent::InvalidReply => "smtp.invalid_reply",
            SmtpEvent::UnableToMatchReplyWithRequest => "smtp.unable_to_match_reply_with_request",
            SmtpEvent::MaxCommandLineLenExceeded => "smtp.max_command_line_len_exceeded",
            SmtpEvent::MaxReplyLineLenExceeded => "smtp.max_reply_line_len_exceeded",
            SmtpEvent::InvalidPipelinedSequence => "smtp.invalid_pipelined_sequence",
            SmtpEvent::BdatChunkLenExceeded => "smtp.bdat_chunk_len_exceeded",
            SmtpEvent::NoServerWelcomeMessage => "smtp.no_server_welcome_message",
            SmtpEvent::TlsRejected => "smtp.tls_rejected",
            SmtpEvent::DataCommandRejected => "smtp.data_command_rejected",
            SmtpEvent::DuplicateFields => "smtp.duplicate_fields",
            SmtpEvent::UnparsableContent => "smtp.unparsable_content",
            SmtpEvent::TruncatedLine => "smtp.truncated_line",
            SmtpEvent::InvalidBdat => "smtp.invalid_bdat",
            SmtpEvent::TooManyTransactions => "smtp.too_many_transactions",
        }
    }

    /// The EVE `anomaly.event` spelling (upper case, no `smtp.` prefix).
    pub fn anomaly_name(self) -> &'static str {
        match self {
            SmtpEvent::InvalidReply => "INVALID_REPLY",
            SmtpEvent::UnableToMatchReplyWithRequest => "UNABLE_TO_MATCH_REPLY_WITH_REQUEST",
            SmtpEvent::MaxCommandLineLenExceeded => "MAX_COMMAND_LINE_LEN_EXCEEDED",
            SmtpEvent::MaxReplyLineLenExceeded => "MAX_REPLY_LINE_LEN_EXCEEDED",
            SmtpEvent::InvalidPipelinedSequence => "INVALID_PIPELINED_SEQUENCE",
            SmtpEvent::BdatChunkLenExceeded => "BDAT_CHUNK_LEN_EXCEEDED",
            SmtpEvent::NoServerWelcomeMessage => "NO_SERVER_WELCOME_MESSAGE",
            SmtpEvent::TlsRejected => "TLS_REJECTED",
            SmtpEvent::DataCommandRejected => "DATA_COMMAND_REJECTED",
            SmtpEvent::DuplicateFields => "DUPLICATE_FIELDS",
            SmtpEvent::UnparsableContent => "UNPARSABLE_CONTENT",
            SmtpEvent::TruncatedLine => "TRUNCATED_LINE",
            SmtpEvent::InvalidBdat => "INVALID_BDAT",
            SmtpEvent::TooManyTransactions => "TOO_MANY_TRANSACTIONS",
        }
    }
}

/// Progress of one side of a transaction (Suricata 8.0.7+ progress values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Progress {
    /// `request_started` / `response_started` (0).
    Started,
    /// `request_data` / `response_data` (1): DATA/BDAT seen.
    Data,
    /// `request_complete` / `response_complete` (2).
    Complete,
}

/// The kind of a client command as the parser recognised it (prefix match).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandKind {
    /// `HELO`/`EHLO`.
    Helo,
    /// `MAIL FROM`.
    MailFrom,
    /// `RCPT TO`.
    RcptTo,
    /// `DATA`.
    Data,
    /// `BDAT` (valid or not).
    Bdat,
    /// `RSET`.
    Rset,
    /// `QUIT`.
    Quit,
    /// `STARTTLS`.
    StartTls,
    /// The lone `.` ending a DATA message.
    EndOfData,
    /// Anything else (AUTH, NOOP, AUTH continuation lines, garbage).
    Other,
}

/// Where a command began in the client stream, so detection can map a
/// command (e.g. a disallowed RCPT TO) to the segment that carried it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandRecord {
    /// Recognised command.
    pub kind: CommandKind,
    /// Offset of the line's first byte in the to-server stream (bytes since
    /// the first byte given to the parser, gaps included).
    pub offset: u64,
    /// Line length in bytes, without the LF.
    pub len: usize,
}

/// One SMTP transaction (Suricata boundaries; see module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpTx {
    /// Transaction id, from 0 per connection (Suricata's `tx_id`).
    pub tx_id: u64,
    /// Connection-wide first HELO/EHLO token (copied into every tx).
    pub helo: Option<Vec<u8>>,
    /// First MAIL FROM token of the tx, brackets kept; `Some(empty)` for `MAIL FROM:`.
    pub mail_from: Option<Vec<u8>>,
    /// Every RCPT TO token in command order, brackets kept, rejected ones included.
    pub rcpt_to: Vec<Vec<u8>>,
    /// A DATA command was seen (even if rejected): Suricata logs `email`.
    pub had_data: bool,
    /// A BDAT command with valid syntax was seen.
    pub had_bdat: bool,
    /// The message (DATA terminator or final BDAT chunk) was fully received.
    pub data_complete: bool,
    /// Bytes of message data seen (DATA lines incl. delimiters, or BDAT octets).
    pub data_len: u64,
    /// The DATA message's top-level header block as received (LF-terminated lines, the
    /// empty line ending the block included), capped at [`MAX_HEADER_BYTES`].
    pub message_headers: Vec<u8>,
    /// Client-side progress.
    pub request: Progress,
    /// Server-side progress.
    pub response: Progress,
    /// Anomalies attributed to this tx, in order.
    pub events: Vec<SmtpEvent>,
    /// Commands of this tx with their to-server stream offsets.
    pub commands: Vec<CommandRecord>,
    /// Some commands or recipients were not stored because of the caps.
    pub records_truncated: bool,
    /// Each AUTH mechanism named (credentials are never stored).
    pub auth_mechanisms: Vec<Vec<u8>>,
}

impl SmtpTx {
    fn new(tx_id: u64, helo: Option<Vec<u8>>) -> Self {
        SmtpTx {
            tx_id,
            helo,
            mail_from: None,
            rcpt_to: Vec::new(),
            had_data: false,
            had_bdat: false,
            data_complete: false,
            data_len: 0,
            message_headers: Vec::new(),
            request: Progress::Started,
            response: Progress::Started,
            events: Vec::new(),
            commands: Vec::new(),
            records_truncated: false,
            auth_mechanisms: Vec::new(),
        }
    }

    /// Both sides complete: Suricata logs the `smtp` record now.
    pub fn is_complete(&self) -> bool {
        self.request == Progress::Complete && self.response == Progress::Complete
    }

    /// The `smtp` EVE object for this tx, with its `email` object when the tx saw DATA.
    pub fn eve(&self) -> SmtpEve {
        let s = |v: &Vec<u8>| String::from_utf8_lossy(v).into_owned();
        SmtpEve {
            helo: self.helo.as_ref().filter(|v| !v.is_empty()).map(s),
            mail_from: self.mail_from.as_ref().filter(|v| !v.is_empty()).map(s),
            rcpt_to: self.rcpt_to.iter().map(s).collect(),
            email: self
                .had_data
                .then(|| EmailEve::from_headers(&self.message_headers)),
        }
    }

    /// Keeps header bytes up to the cap; returns how many were kept.
    fn keep_header_bytes(&mut self, bytes: &[u8]) -> usize {
        let room = MAX_HEADER_BYTES.saturating_sub(self.message_headers.len());
        let n = bytes.len().min(room);
        self.message_headers.extend_from_slice(&bytes[..n]);
        n
    }

    /// Heap bytes the transaction keeps, as the parser counts them for the app-layer
    /// memcap ([`SmtpParser::mem_bytes`]): every stored string with an allocator header,
    /// list entries by their size. Walks the lists: called once per transaction, when it
    /// leaves the parser.
    fn heap_bytes(&self) -> usize {
        let s = |v: &Vec<u8>| v.len() + ALLOC_HEADER;
        let item = std::mem::size_of::<Vec<u8>>();
        self.helo.as_ref().map_or(0, s)
            + self.mail_from.as_ref().map_or(0, s)
            + self.rcpt_to.iter().map(|v| s(v) + item).sum::<usize>()
            + self
                .auth_mechanisms
                .iter()
                .map(|v| s(v) + item)
                .sum::<usize>()
            + self.message_headers.len()
            + self.commands.len() * std::mem::size_of::<CommandRecord>()
            + self.events.len() * std::mem::size_of::<SmtpEvent>()
    }
}

/// The EVE `email` object Suricata writes next to `smtp` for a tx that saw a DATA command
/// (even a rejected one), default fields only (suricata-eve.md §6): `from`, `to[]`, `cc[]`
/// from the message's top-level headers, and `status`. The log writers serialise it
/// (`sekisho-eve`), omitting absent headers and empty lists.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EmailEve {
    /// `email.from`: the first `From:` header's value as sent.
    pub from: Option<String>,
    /// `email.to[]`: the first `To:` header split on commas outside double quotes.
    pub to: Vec<String>,
    /// `email.cc[]`: the first `Cc:` header, split like `to`.
    pub cc: Vec<String>,
    /// `email.status`: Suricata 8 always logs `PARSE_DONE`.
    pub status: &'static str,
}

impl EmailEve {
    /// Builds the object from a raw header block (lines split on LF, one trailing CR
    /// stripped, parsing stops at the first empty line). As Suricata's MIME parser: a
    /// header line is `name:` then the value with leading blanks skipped; a line starting
    /// with a blank continues the previous value, minus that one blank; lines without a
    /// colon are ignored; names compare case-insensitively; the first header of a name wins.
    pub fn from_headers(block: &[u8]) -> Self {
        let mut headers: Vec<(&[u8], Vec<u8>)> = Vec::new();
        for raw in block.split(|&b| b == b'\n') {
            let line = raw.strip_suffix(b"\r").unwrap_or(raw);
            if line.is_empty() {
                break;
            }
            if matches!(line[0], b' ' | b'\t') {
                if let Some((_, v)) = headers.last_mut() {
                    v.extend_from_slice(&line[1..]);
                }
                continue;
            }
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                continue;
            };
            let value = &line[colon + 1..];
            let start = value
                .iter()
                .position(|&b| !matches!(b, b' ' | b'\t'))
                .unwrap_or(value.len());
            headers.push((&line[..colon], value[start..].to_vec()));
        }
        let find = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
                .map(|(_, v)| v.as_slice())
        };
        EmailEve {
            from: find("from").map(|v| String::from_utf8_lossy(v).into_owned()),
            to: find("to").map(split_addresses).unwrap_or_default(),
            cc: find("cc").map(split_addresses).unwrap_or_default(),
            status: "PARSE_DONE",
        }
    }
}

/// Splits an address-list header value on commas outside double quotes, leading blanks
/// of each element trimmed, empty elements dropped (`"a,b" <x>, y` → two elements).
fn split_addresses(value: &[u8]) -> Vec<String> {
    let mut parts = Vec::new();
    let mut quoted = false;
    let mut start = 0;
    for (i, &b) in value.iter().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => {
                parts.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    // An unbalanced quote keeps the rest as one element.
    parts.push(&value[start..]);
    parts
        .into_iter()
        .filter_map(|p| {
            let skip = p.iter().position(|&c| !matches!(c, b' ' | b'\t'))?;
            Some(String::from_utf8_lossy(&p[skip..]).into_owned())
        })
        .collect()
}

/// The EVE `smtp` object: keys with `None` / an empty `rcpt_to` are omitted.
/// Values are printed as sent, angle brackets kept (suricata-eve.md §6);
/// invalid UTF-8 is replaced lossily (the log crate may escape instead).
/// The log writers serialise it (`sekisho-eve`), keys in Suricata's order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SmtpEve {
    /// `smtp.helo`.
    pub helo: Option<String>,
    /// `smtp.mail_from`.
    pub mail_from: Option<String>,
    /// `smtp.rcpt_to[]`.
    pub rcpt_to: Vec<String>,
    /// The tx's `email` object, a sibling of `smtp` in EVE records; `None` when the tx saw
    /// no DATA command.
    pub email: Option<EmailEve>,
}

/// What the caller must do after feeding bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Keep feeding.
    Continue,
    /// STARTTLS was accepted: hand the flow to the TLS parser. Returned
    /// again for every later call; nothing more is parsed as SMTP.
    TlsUpgrade {
        /// Offset in the to-server stream where TLS starts: the end of the
        /// client data fed before the 220 was parsed (commands the client
        /// pipelined behind STARTTLS were parsed as SMTP, as Suricata does).
        to_server_offset: u64,
        /// Offset in the to-client stream just after the accepting 220.
        to_client_offset: u64,
    },
    /// Parsing stopped for good (invalid reply, table full). Suricata counts
    /// this as `app_layer.error.smtp.parser`.
    Error,
}

/// Result of protocol probing on a stream's first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeResult {
    /// Looks like SMTP.
    Smtp,
    /// Starts with `QUIT`: SMTP only if the port says so (FTP shares it).
    SmtpIfPort,
    /// Not SMTP.
    NotSmtp,
    /// Too few bytes to tell.
    NeedMore,
}

/// Probe the client's first bytes: `EHLO`, `HELO` (and `QUIT`) prefixes,
/// ASCII case-insensitive, as Suricata's SMTP patterns.
pub fn probe_to_server(data: &[u8]) -> ProbeResult {
    let n = data.len().min(4);
    let mut partial = false;
    for (verb, res) in [
        (&b"EHLO"[..], ProbeResult::Smtp),
        (&b"HELO"[..], ProbeResult::Smtp),
        (&b"QUIT"[..], ProbeResult::SmtpIfPort),
    ] {
        if data[..n].eq_ignore_ascii_case(&verb[..n]) {
            if n == 4 {
                return res;
            }
            partial = true;
        }
    }
    if partial {
        ProbeResult::NeedMore
    } else {
        ProbeResult::NotSmtp
    }
}

/// Probe the server's first bytes for a `220` banner (`220 ` or `220-`),
/// Suricata 8's server-side probing; the engine should use it only on SMTP
/// ports (FTP also greets with 220).
pub fn probe_to_client(data: &[u8]) -> ProbeResult {
    let want = b"220";
    let n = data.len().min(3);
    if data[..n] != want[..n] {
        return ProbeResult::NotSmtp;
    }
    match data.get(3) {
        None => ProbeResult::NeedMore,
        Some(b' ') | Some(b'-') => ProbeResult::Smtp,
        Some(_) => ProbeResult::NotSmtp,
    }
}

/// Queued command awaiting its reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    Helo {
        resets: bool,
    },
    StartTls,
    Data,
    EndOfData,
    Bdat {
        last: bool,
    },
    Rset,
    Quit,
    /// `RCPT TO` (its reply may reject the recipient).
    Rcpt,
    /// `AUTH` and its continuation lines (answered 334 until the exchange ends).
    Auth,
    Other,
}

#[derive(Debug, Clone, Copy)]
struct QueueEntry {
    what: Pending,
    tx: Option<u64>,
}

/// Where the client side is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientMode {
    Command,
    /// DATA message.
    Data {
        tx: u64,
        state: DataState,
    },
    /// BDAT chunk: `remaining` octets left.
    Bdat {
        tx: u64,
        remaining: u64,
        last: bool,
    },
    /// After an accepted STARTTLS, or after a fatal error: ignore everything.
    Stopped,
}

/// State of the current message line for end-of-data detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DataLine {
    Start,
    Dot,
    DotCr,
    Other,
}

/// Per-direction line splitter state.
#[derive(Debug, Default, Clone)]
struct LineBuf {
    buf: Vec<u8>,
    /// Offset of `buf[0]` in the stream.
    start: u64,
    /// Discarding the tail of an over-long line up to the next LF.
    discarding: bool,
}

/// One complete (or truncated) line produced by the splitter.
struct Line {
    bytes: Vec<u8>,
    offset: u64,
    truncated: bool,
}

impl LineBuf {
    /// Take the next line from `data[*pos..]` (stream offset of `data[0]` is
    /// `base`), advancing `*pos`. Returns `None` when more data is needed.
    fn next_line(&mut self, data: &[u8], pos: &mut usize, base: u64) -> Option<Line> {
        while *pos < data.len() {
            let rest = &data[*pos..];
            if self.discarding {
                match rest.iter().position(|&b| b == b'\n') {
                    Some(i) => {
                        *pos += i + 1;
                        self.discarding = false;
                        continue;
                    }
                    None => {
                        *pos = data.len();
                        return None;
                    }
                }
            }
            if self.buf.is_empty() {
                self.start = base + *pos as u64;
            }
            match rest.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    *pos += i + 1;
                    let mut bytes = std::mem::take(&mut self.buf);
                    if bytes.len() + i >= MAX_LINE_LEN {
                        let take = MAX_LINE_LEN.saturating_sub(bytes.len()).min(i);
                        bytes.extend_from_slice(&rest[..take]);
                        bytes.truncate(MAX_LINE_LEN);
                        return Some(Line {
                            bytes,
                            offset: self.start,
                            truncated: true,
                        });
                    }
                    bytes.extend_from_slice(&rest[..i]);
                    if bytes.last() == Some(&b'\r') {
                        bytes.pop();
                    }
                    return Some(Line {
                        bytes,
                        offset: self.start,
                        truncated: false,
                    });
                }
                None => {
                    let room = MAX_LINE_LEN - self.buf.len();
                    if rest.len() < room {
                        self.buf.extend_from_slice(rest);
                        *pos = data.len();
                        return None;
                    }
                    // Buffer full without a delimiter: emit the cut line and
                    // drop the rest of it, as Suricata does.
                    *pos += room;
                    let mut bytes = std::mem::take(&mut self.buf);
                    bytes.extend_from_slice(&rest[..room]);
                    self.discarding = true;
                    return Some(Line {
                        bytes,
                        offset: self.start,
                        truncated: true,
                    });
                }
            }
        }
        None
    }

    fn reset(&mut self) {
        self.buf.clear();
        self.discarding = false;
    }
}

/// Per-flow SMTP parser. See the module docs for the model.
#[derive(Debug, Clone)]
pub struct SmtpParser {
    txs: VecDeque<SmtpTx>,
    next_tx_id: u64,
    /// Id of the current (newest) tx, if any tx was ever created.
    cur: Option<u64>,
    helo: Option<Vec<u8>>,
    queue: VecDeque<QueueEntry>,
    client: LineBuf,
    server: LineBuf,
    mode: ClientMode,
    ts_offset: u64,
    tc_offset: u64,
    reply_seen: bool,
    in_multiline: bool,
    pipelining: bool,
    failed: bool,
    tls: bool,
    conn_events: Vec<SmtpEvent>,
    /// Transaction events raised since the last [`SmtpParser::take_raised`].
    raised: Vec<(u64, SmtpEvent)>,
    updated: Vec<u64>,
    max_live_txs: usize,
    /// Transactions already reported by [`SmtpParser::take_stats`].
    stats_txs: u64,
    /// The flow itself was already reported by [`SmtpParser::take_stats`].
    stats_flow: bool,
    /// An AUTH exchange is going on (its lines are answered 334 until it ends).
    in_auth: bool,
    /// AUTH exchanges the server ended with 535 (credentials rejected).
    auth_failures: u64,
    /// RCPT TO commands answered 550, 551 or 553 (recipient refused).
    rcpt_rejected: u64,
    /// Replies with a well-formed code outside Suricata's table ([`ReplyCode::Unknown`]).
    unknown_replies: u64,
    /// Heap bytes the live transactions keep ([`SmtpTx::heap_bytes`]), kept up to date
    /// where they store something, so [`SmtpParser::mem_bytes`] is O(1).
    heap: usize,
}

impl Default for SmtpParser {
    fn default() -> Self {
        Self::new()
    }
}

/// ASCII case-insensitive prefix test.
fn has_prefix(line: &[u8], prefix: &[u8]) -> bool {
    line.len() >= prefix.len() && line[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// Suricata's argument token: skip `verb_len` + 1 bytes, then spaces, then
/// take up to the next space.
fn token(line: &[u8], verb_len: usize) -> Vec<u8> {
    let rest = line.get(verb_len + 1..).unwrap_or(&[]);
    let start = rest.iter().position(|&b| b != b' ').unwrap_or(rest.len());
    let rest = &rest[start..];
    let end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
    rest[..end].to_vec()
}

/// `BDAT <decimal> [LAST]` → `(size, last)`; `None` for invalid syntax.
fn parse_bdat(line: &[u8]) -> Option<(u64, bool)> {
    let rest = line.get(4..)?;
    if rest.first() != Some(&b' ') {
        return None;
    }
    let mut parts = rest.split(|&b| b == b' ').filter(|p| !p.is_empty());
    let size = parts.next()?;
    if size.is_empty() || size.len() > 19 || !size.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let size = std::str::from_utf8(size).ok()?.parse::<u64>().ok()?;
    let last = match parts.next() {
        None => false,
        Some(p) if p.eq_ignore_ascii_case(b"LAST") => true,
        Some(_) => return None,
    };
    if parts.next().is_some() {
        return None;
    }
    Some((size, last))
}

/// Allocator header counted per stored string (glibc: 16 bytes).
const ALLOC_HEADER: usize = 16;

/// Records `ev` on `t` (up to [`MAX_EVENTS_PER_TX`]) and, when kept, as newly raised;
/// `heap` counts the stored event.
fn tx_event(t: &mut SmtpTx, raised: &mut Vec<(u64, SmtpEvent)>, ev: SmtpEvent, heap: &mut usize) {
    if t.events.len() < MAX_EVENTS_PER_TX {
        t.events.push(ev);
        *heap += std::mem::size_of::<SmtpEvent>();
        // Suricata's SMTP parser has no such event (the failure is a parser error only),
        // so it is never logged as an anomaly.
        if raised.len() < MAX_RAISED && ev != SmtpEvent::TooManyTransactions {
            raised.push((t.tx_id, ev));
        }
    }
}

/// What a server line's first bytes say about it as a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReplyCode {
    /// A code of Suricata's table.
    Known(u16),
    /// A well-formed reply code outside Suricata's table (RFC 5321 §4.2 `Reply-code =
    /// %x32-35 %x30-35 %x30-39`, followed by SP, `-` or the end of the line), e.g. RFC 7504's
    /// 556 or a server's own 254: an `INVALID_REPLY` anomaly, but the line is a reply and
    /// parsing goes on (Suricata stops there; a firewall that stopped would stop inspecting
    /// a legitimate session).
    Unknown(u16),
    /// Not a reply line (fewer than 3 bytes, non-digits, a code outside the RFC's syntax):
    /// `INVALID_REPLY` and a parser error.
    Malformed,
}

fn reply_code(line: &[u8]) -> ReplyCode {
    if line.len() < 3 || !line[..3].iter().all(u8::is_ascii_digit) {
        return ReplyCode::Malformed;
    }
    let code = u16::from(line[0] - b'0') * 100
        + u16::from(line[1] - b'0') * 10
        + u16::from(line[2] - b'0');
    if KNOWN_CODES.contains(&code) {
        return ReplyCode::Known(code);
    }
    let rfc_digits = (b'2'..=b'5').contains(&line[0]) && (b'0'..=b'5').contains(&line[1]);
    let rfc_end = matches!(line.get(3), None | Some(b' ' | b'-'));
    if rfc_digits && rfc_end {
        ReplyCode::Unknown(code)
    } else {
        ReplyCode::Malformed
    }
}

impl SmtpParser {
    /// A parser for a new connection.
    pub fn new() -> Self {
        SmtpParser {
            txs: VecDeque::new(),
            next_tx_id: 0,
            cur: None,
            helo: None,
            queue: VecDeque::new(),
            client: LineBuf::default(),
            server: LineBuf::default(),
            mode: ClientMode::Command,
            ts_offset: 0,
            tc_offset: 0,
            reply_seen: false,
            in_multiline: false,
            pipelining: false,
            failed: false,
            tls: false,
            conn_events: Vec::new(),
            raised: Vec::new(),
            updated: Vec::new(),
            max_live_txs: MAX_LIVE_TXS,
            stats_txs: 0,
            stats_flow: false,
            in_auth: false,
            auth_failures: 0,
            rcpt_rejected: 0,
            unknown_replies: 0,
            heap: 0,
        }
    }

    /// Bytes the parser keeps, for the app-layer memcap
    /// ([`crate::config::AppLayerConfig::memcap`]): the boxed parser itself, its
    /// transaction and command queues and line buffers by allocated capacity, the
    /// transactions' stored strings and lists ([`SmtpTx::heap_bytes`]) and the pending
    /// event lists. O(1).
    pub fn mem_bytes(&self) -> usize {
        std::mem::size_of::<SmtpParser>()
            + ALLOC_HEADER
            + self.txs.capacity() * std::mem::size_of::<SmtpTx>()
            + self.queue.capacity() * std::mem::size_of::<QueueEntry>()
            + self.client.buf.capacity()
            + self.server.buf.capacity()
            + self
                .helo
                .as_ref()
                .map_or(0, |h| h.capacity() + ALLOC_HEADER)
            + self.conn_events.capacity() * std::mem::size_of::<SmtpEvent>()
            + self.raised.capacity() * std::mem::size_of::<(u64, SmtpEvent)>()
            + self.updated.capacity() * std::mem::size_of::<u64>()
            + self.heap
    }

    /// Stops counting a transaction that leaves the parser.
    fn forget(&mut self, tx: &SmtpTx) {
        self.heap = self.heap.saturating_sub(tx.heap_bytes());
    }

    /// AUTH exchanges the server answered 535 so far (a failed login; the credentials are
    /// never kept).
    pub fn auth_failures(&self) -> u64 {
        self.auth_failures
    }

    /// RCPT TO commands the server answered 550, 551 or 553 so far (recipient harvesting).
    pub fn rcpt_rejected(&self) -> u64 {
        self.rcpt_rejected
    }

    /// Replies whose code is well-formed (RFC 5321) but outside Suricata's table, so far: each
    /// raised `INVALID_REPLY` and parsing went on. Suricata's parser stops at the first one
    /// (`app_layer.error.smtp.parser`); sekisho keeps inspecting the session.
    pub fn unknown_replies(&self) -> u64 {
        self.unknown_replies
    }

    /// An app event counter by its rate-limit name (`count:` in `rate_limits:`):
    /// `smtp_auth_failure`, `smtp_rcpt_rejected`.
    pub fn event_count(&self, name: &str) -> Option<u64> {
        match name {
            "smtp_auth_failure" => Some(self.auth_failures),
            "smtp_rcpt_rejected" => Some(self.rcpt_rejected),
            _ => None,
        }
    }

    /// True when [`Self::take_stats`], [`Self::take_raised`] or [`Self::take_complete`]
    /// would hand out something: lets the engine skip draining the parser on packets that
    /// changed nothing it logs (most of them).
    pub fn has_output(&self) -> bool {
        !self.raised.is_empty()
            || !self.stats_flow
            || self.next_tx_id != self.stats_txs
            || self.txs.iter().any(SmtpTx::is_complete)
    }

    /// Counter increments since the last call: `(1 the first time, else 0; transactions
    /// created since)`, for the engine's `app_layer.flow.smtp` / `app_layer.tx.smtp`. Kept
    /// in the parser so the engine needs no per-flow bookkeeping of its own.
    pub fn take_stats(&mut self) -> (u64, u64) {
        let flow = u64::from(!self.stats_flow);
        self.stats_flow = true;
        let txs = self.next_tx_id - self.stats_txs;
        self.stats_txs = self.next_tx_id;
        (flow, txs)
    }

    /// Set the cap on live transactions (Suricata `smtp.max-tx`).
    pub fn with_max_live_txs(mut self, max: usize) -> Self {
        self.max_live_txs = max.max(1);
        self
    }

    /// Live transactions (not yet removed with [`SmtpParser::take_complete`]), oldest first.
    pub fn txs(&self) -> impl Iterator<Item = &SmtpTx> {
        self.txs.iter()
    }

    /// The live transaction with this id.
    pub fn tx(&self, tx_id: u64) -> Option<&SmtpTx> {
        self.txs.iter().find(|t| t.tx_id == tx_id)
    }

    /// Remove and return the transactions complete in both directions
    /// (those Suricata logs now), oldest first.
    pub fn take_complete(&mut self) -> Vec<SmtpTx> {
        if !self.txs.iter().any(SmtpTx::is_complete) {
            return Vec::new();
        }
        let mut done = Vec::new();
        let mut keep = VecDeque::with_capacity(self.txs.len());
        for tx in std::mem::take(&mut self.txs) {
            if tx.is_complete() {
                self.forget(&tx);
                done.push(tx);
            } else {
                keep.push_back(tx);
            }
        }
        self.txs = keep;
        done
    }

    /// Remove and return all live transactions (flow end).
    pub fn take_all(&mut self) -> Vec<SmtpTx> {
        self.heap = 0;
        self.txs.drain(..).collect()
    }

    /// Ids of the transactions created or changed since the last call.
    pub fn take_updated(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.updated)
    }

    /// Transaction events raised since the last call, in order, as `(tx_id, event)`: what
    /// Suricata logs as app-layer `anomaly` records when they are raised. Events without a
    /// transaction ([`SmtpParser::connection_events`]) are not included: Suricata drops
    /// those (it sets events on the current transaction only); neither is
    /// [`SmtpEvent::TooManyTransactions`], which is not a Suricata event. At most
    /// [`MAX_RAISED`].
    pub fn take_raised(&mut self) -> std::vec::Drain<'_, (u64, SmtpEvent)> {
        self.raised.drain(..)
    }

    /// Anomalies not attributable to a transaction (e.g. a bad greeting).
    pub fn connection_events(&self) -> &[SmtpEvent] {
        &self.conn_events
    }

    /// The connection's HELO/EHLO token.
    pub fn helo(&self) -> Option<&[u8]> {
        self.helo.as_deref()
    }

    /// The server advertised `250-PIPELINING` in its EHLO reply.
    pub fn server_pipelining(&self) -> bool {
        self.pipelining
    }

    /// Parsing stopped after a fatal error.
    pub fn has_failed(&self) -> bool {
        self.failed
    }

    /// STARTTLS was accepted; the rest of the flow is TLS.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// Bytes held in partial-line buffers (both directions); at most
    /// `2 * MAX_LINE_LEN`.
    pub fn buffered(&self) -> usize {
        self.client.buf.len() + self.server.buf.len()
    }

    /// Commands waiting for a reply; at most [`MAX_QUEUE`].
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Bytes consumed so far in each direction `(to_server, to_client)`.
    pub fn offsets(&self) -> (u64, u64) {
        (self.ts_offset, self.tc_offset)
    }

    fn status(&self) -> Status {
        if self.failed {
            Status::Error
        } else if self.tls {
            Status::TlsUpgrade {
                to_server_offset: self.ts_offset,
                to_client_offset: self.tc_offset,
            }
        } else {
            Status::Continue
        }
    }

    fn touch(&mut self, id: u64) {
        if self.updated.last() == Some(&id) || self.updated.contains(&id) {
            return;
        }
        if self.updated.len() >= 2 * self.max_live_txs {
            // The caller is not draining updates: forget ids of txs that
            // are gone so the list stays bounded by the live tx count.
            let live = &self.txs;
            self.updated.retain(|u| live.iter().any(|t| t.tx_id == *u));
        }
        self.updated.push(id);
    }

    fn tx_mut(&mut self, id: u64) -> Option<&mut SmtpTx> {
        self.touch(id);
        self.txs.iter_mut().find(|t| t.tx_id == id)
    }

    fn event(&mut self, tx: Option<u64>, ev: SmtpEvent) {
        // Not through `tx_mut`: `raised` is borrowed alongside the transaction.
        if let Some(id) = tx {
            self.touch(id);
        }
        match tx.and_then(|id| self.txs.iter_mut().find(|t| t.tx_id == id)) {
            Some(t) => tx_event(t, &mut self.raised, ev, &mut self.heap),
            None => {
                if self.conn_events.len() < MAX_EVENTS_PER_TX {
                    self.conn_events.push(ev);
                }
            }
        }
    }

    fn fail(&mut self) {
        self.failed = true;
        self.mode = ClientMode::Stopped;
    }

    /// Feed in-order bytes of `dir` ([`SmtpParser::to_server`] or
    /// [`SmtpParser::to_client`]).
    pub fn feed(&mut self, dir: Direction, data: &[u8]) -> Status {
        match dir {
            Direction::ToServer => self.to_server(data),
            Direction::ToClient => self.to_client(data),
        }
    }

    /// Feed in-order client→server bytes.
    pub fn to_server(&mut self, data: &[u8]) -> Status {
        let base = self.ts_offset;
        let mut pos = 0;
        while pos < data.len() && !self.failed && !self.tls {
            match self.mode {
                ClientMode::Stopped => break,
                ClientMode::Command => {
                    let Some(line) = self.client.next_line(data, &mut pos, base) else {
                        break;
                    };
                    self.on_command(line);
                }
                ClientMode::Data { tx, mut state } => {
                    if self.client.discarding {
                        // Tail of an over-long command line: now message data.
                        self.client.discarding = false;
                        state.line = DataLine::Other;
                    }
                    // Carry over a line start buffered in command mode
                    // before a 354 switched us into data mode.
                    let carried = std::mem::take(&mut self.client.buf);
                    if state.headers && !carried.is_empty() {
                        if let Some(t) = self.tx_mut(tx) {
                            let n = t.keep_header_bytes(&carried);
                            self.heap += n;
                        }
                    }
                    for b in carried {
                        state.step(b);
                    }
                    let (used, ended, long, hdr) = state.scan(&data[pos..]);
                    self.touch(tx);
                    if let Some(t) = self.txs.iter_mut().find(|t| t.tx_id == tx) {
                        self.heap += t.keep_header_bytes(&data[pos..pos + hdr]);
                        t.data_len += used as u64;
                        for _ in 0..long {
                            tx_event(
                                t,
                                &mut self.raised,
                                SmtpEvent::TruncatedLine,
                                &mut self.heap,
                            );
                        }
                    }
                    pos += used;
                    match ended {
                        Some(dot_len) => {
                            // The `.` line starts dot_len bytes before its LF.
                            let line_offset =
                                (base + pos as u64).saturating_sub(1 + dot_len as u64);
                            self.mode = ClientMode::Command;
                            self.end_of_data(tx, line_offset, dot_len);
                        }
                        None => self.mode = ClientMode::Data { tx, state },
                    }
                }
                ClientMode::Bdat {
                    tx,
                    remaining,
                    last,
                } => {
                    let avail = (data.len() - pos) as u64;
                    let used = avail.min(remaining);
                    pos += used as usize;
                    if let Some(t) = self.tx_mut(tx) {
                        t.data_len += used;
                    }
                    if used == remaining {
                        self.mode = ClientMode::Command;
                        if last {
                            if let Some(t) = self.tx_mut(tx) {
                                t.request = Progress::Complete;
                                t.data_complete = true;
                            }
                        }
                    } else {
                        self.mode = ClientMode::Bdat {
                            tx,
                            remaining: remaining - used,
                            last,
                        };
                    }
                }
            }
        }
        if self.tls {
            // Bytes after STARTTLS pipelined by the client are TLS, not ours.
            self.ts_offset = base + pos as u64;
        } else {
            self.ts_offset = base + data.len() as u64;
        }
        self.status()
    }

    /// Feed in-order server→client bytes.
    pub fn to_client(&mut self, data: &[u8]) -> Status {
        let base = self.tc_offset;
        let mut pos = 0;
        if self.server.buf.is_empty() && !self.server.discarding && data.first() == Some(&b'\n') {
            pos = 1;
        }
        while pos < data.len() && !self.failed && !self.tls {
            let Some(line) = self.server.next_line(data, &mut pos, base) else {
                break;
            };
            self.on_reply(line);
        }
        self.tc_offset = base + if self.tls { pos } else { data.len() } as u64;
        self.status()
    }

    /// Report `len` lost bytes in `dir`. A BDAT chunk just shrinks; otherwise
    /// the partial line is dropped and the parser resynchronises at the next
    /// LF (message data stays message data).
    pub fn gap(&mut self, dir: Direction, len: u64) {
        match dir {
            Direction::ToServer => {
                self.ts_offset = self.ts_offset.saturating_add(len);
                match self.mode {
                    ClientMode::Bdat {
                        tx,
                        remaining,
                        last,
                    } if len < remaining => {
                        self.mode = ClientMode::Bdat {
                            tx,
                            remaining: remaining - len,
                            last,
                        };
                    }
                    ClientMode::Bdat { .. } => {
                        self.mode = ClientMode::Command;
                        self.client.reset();
                        self.client.discarding = true;
                    }
                    ClientMode::Data { tx, mut state } => {
                        self.client.reset();
                        state.line = DataLine::Other;
                        self.mode = ClientMode::Data { tx, state };
                    }
                    ClientMode::Command => {
                        self.client.reset();
                        self.client.discarding = true;
                    }
                    ClientMode::Stopped => {}
                }
            }
            Direction::ToClient => {
                self.tc_offset = self.tc_offset.saturating_add(len);
                self.server.reset();
                self.server.discarding = true;
            }
        }
    }

    fn new_tx(&mut self) -> Option<u64> {
        if self.txs.len() >= self.max_live_txs {
            self.event(None, SmtpEvent::TooManyTransactions);
            self.fail();
            return None;
        }
        let id = self.next_tx_id;
        self.next_tx_id += 1;
        self.heap += self.helo.as_ref().map_or(0, |h| h.len() + ALLOC_HEADER);
        self.txs.push_back(SmtpTx::new(id, self.helo.clone()));
        self.cur = Some(id);
        self.touch(id);
        Some(id)
    }

    fn push(&mut self, what: Pending, tx: Option<u64>) {
        if let Some(prev) = self.queue.back() {
            if matches!(prev.what, Pending::Data | Pending::StartTls) {
                self.event(tx, SmtpEvent::InvalidPipelinedSequence);
            }
        }
        if self.queue.len() >= MAX_QUEUE {
            self.event(tx, SmtpEvent::TooManyTransactions);
            self.fail();
            return;
        }
        self.queue.push_back(QueueEntry { what, tx });
    }

    fn record(&mut self, tx: u64, kind: CommandKind, line: &Line) {
        if let Some(t) = self.tx_mut(tx) {
            if t.commands.len() < MAX_RECORDS_PER_TX {
                t.commands.push(CommandRecord {
                    kind,
                    offset: line.offset,
                    len: line.bytes.len(),
                });
                self.heap += std::mem::size_of::<CommandRecord>();
            } else {
                t.records_truncated = true;
            }
        }
    }

    fn on_command(&mut self, line: Line) {
        let l = &line.bytes;
        let is_rset_quit = has_prefix(l, b"rset") || has_prefix(l, b"quit");
        // Only the connection's first command can precede the greeting.
        let no_welcome = !self.reply_seen && self.next_tx_id == 0;
        let create = match self.cur {
            None => true,
            Some(id) => {
                let done = self.tx(id).is_none_or(|t| t.request == Progress::Complete);
                done && !is_rset_quit
            }
        };
        if create && self.new_tx().is_none() {
            return;
        }
        let Some(tx) = self.cur else { return };
        if line.truncated {
            self.event(Some(tx), SmtpEvent::TruncatedLine);
        }
        if no_welcome {
            self.event(Some(tx), SmtpEvent::NoServerWelcomeMessage);
        }
        let kind;
        if has_prefix(l, b"starttls") {
            kind = CommandKind::StartTls;
            self.push(Pending::StartTls, Some(tx));
        } else if has_prefix(l, b"data") {
            kind = CommandKind::Data;
            let had = self.tx(tx).is_some_and(|t| t.had_data);
            if had {
                self.event(Some(tx), SmtpEvent::UnparsableContent);
                self.record(tx, kind, &line);
                return;
            }
            if let Some(t) = self.tx_mut(tx) {
                t.had_data = true;
                t.request = t.request.max(Progress::Data);
            }
            self.push(Pending::Data, Some(tx));
            if self.pipelining {
                self.mode = ClientMode::Data {
                    tx,
                    state: DataState::new(),
                };
            }
        } else if has_prefix(l, b"bdat") {
            kind = CommandKind::Bdat;
            match parse_bdat(l) {
                Some((size, last)) => {
                    if let Some(t) = self.tx_mut(tx) {
                        t.had_bdat = true;
                        t.request = t.request.max(Progress::Data);
                        if size == 0 && last {
                            t.request = Progress::Complete;
                            t.data_complete = true;
                        }
                    }
                    if size > 0 {
                        self.mode = ClientMode::Bdat {
                            tx,
                            remaining: size,
                            last,
                        };
                    }
                    self.push(Pending::Bdat { last }, Some(tx));
                }
                None => {
                    self.event(Some(tx), SmtpEvent::InvalidBdat);
                    self.push(Pending::Other, Some(tx));
                }
            }
        } else if has_prefix(l, b"helo") || has_prefix(l, b"ehlo") {
            kind = CommandKind::Helo;
            if self.helo.is_none() {
                let h = token(l, 4);
                for t in self.txs.iter_mut() {
                    self.heap += h.len() + ALLOC_HEADER;
                    if let Some(old) = t.helo.replace(h.clone()) {
                        self.heap = self.heap.saturating_sub(old.len() + ALLOC_HEADER);
                    }
                }
                self.helo = Some(h);
            } else {
                self.event(Some(tx), SmtpEvent::DuplicateFields);
            }
            let resets = self.tx(tx).is_some_and(|t| {
                t.mail_from.is_some() || !t.rcpt_to.is_empty() || t.request > Progress::Started
            });
            self.push(Pending::Helo { resets }, Some(tx));
        } else if has_prefix(l, b"mail from") {
            kind = CommandKind::MailFrom;
            let v = token(l, 9);
            let mut added = 0;
            let dup = match self.tx_mut(tx) {
                Some(t) if t.mail_from.is_none() => {
                    added = v.len() + ALLOC_HEADER;
                    t.mail_from = Some(v);
                    false
                }
                Some(_) => true,
                None => false,
            };
            self.heap += added;
            if dup {
                self.event(Some(tx), SmtpEvent::DuplicateFields);
            }
            self.push(Pending::Other, Some(tx));
        } else if has_prefix(l, b"rcpt to") {
            kind = CommandKind::RcptTo;
            let v = token(l, 7);
            let mut added = 0;
            if let Some(t) = self.tx_mut(tx) {
                let held: usize = t.rcpt_to.iter().map(Vec::len).sum();
                if t.rcpt_to.len() < MAX_RCPT_PER_TX && held + v.len() <= MAX_RCPT_BYTES_PER_TX {
                    added = v.len() + ALLOC_HEADER + std::mem::size_of::<Vec<u8>>();
                    t.rcpt_to.push(v);
                } else {
                    t.records_truncated = true;
                }
            }
            self.heap += added;
            self.push(Pending::Rcpt, Some(tx));
        } else if has_prefix(l, b"rset") {
            kind = CommandKind::Rset;
            self.push(Pending::Rset, Some(tx));
        } else if has_prefix(l, b"quit") {
            kind = CommandKind::Quit;
            self.push(Pending::Quit, Some(tx));
        } else {
            kind = CommandKind::Other;
            let auth = has_prefix(l, b"auth ");
            if auth {
                // Mechanism only: the initial response (credentials) after
                // it is never stored.
                let mech = token(l, 4);
                let mut added = 0;
                if let Some(t) = self.tx_mut(tx) {
                    if t.auth_mechanisms.len() < 16 {
                        added = mech.len() + ALLOC_HEADER + std::mem::size_of::<Vec<u8>>();
                        t.auth_mechanisms.push(mech);
                    }
                }
                self.heap += added;
                self.in_auth = true;
            }
            // A line of an AUTH exchange (the command or a continuation) is answered as
            // part of it.
            let what = if auth || self.in_auth {
                Pending::Auth
            } else {
                Pending::Other
            };
            self.push(what, Some(tx));
        }
        self.record(tx, kind, &line);
    }

    fn end_of_data(&mut self, tx: u64, offset: u64, len: usize) {
        if let Some(t) = self.tx_mut(tx) {
            t.request = Progress::Complete;
            t.data_complete = true;
            if t.commands.len() < MAX_RECORDS_PER_TX {
                t.commands.push(CommandRecord {
                    kind: CommandKind::EndOfData,
                    offset,
                    len,
                });
                self.heap += std::mem::size_of::<CommandRecord>();
            } else {
                t.records_truncated = true;
            }
        }
        self.push(Pending::EndOfData, Some(tx));
    }

    fn on_reply(&mut self, line: Line) {
        let l = &line.bytes;
        let target = self.queue.front().and_then(|e| e.tx).or(self.cur);
        if line.truncated {
            self.event(target, SmtpEvent::TruncatedLine);
        }
        let code = match reply_code(l) {
            ReplyCode::Known(code) => code,
            ReplyCode::Unknown(code) => {
                // Counted once per reply (on its first line), raised for the connection's
                // first one only: Suricata logs exactly one INVALID_REPLY there (and stops),
                // so the anomaly log stays Suricata's. The reply is then handled like any
                // other: it answers the oldest queued command.
                if !self.in_multiline {
                    if self.unknown_replies == 0 {
                        self.event(target, SmtpEvent::InvalidReply);
                    }
                    self.unknown_replies += 1;
                }
                code
            }
            ReplyCode::Malformed => {
                self.event(target, SmtpEvent::InvalidReply);
                self.fail();
                return;
            }
        };
        if l.len() >= 4 && l[3] == b'-' {
            self.in_multiline = true;
            let in_ehlo = matches!(
                self.queue.front(),
                Some(QueueEntry {
                    what: Pending::Helo { .. },
                    ..
                })
            );
            if in_ehlo
                && self.reply_seen
                && l.len() == 14
                && l.eq_ignore_ascii_case(b"250-PIPELINING")
            {
                self.pipelining = true;
            }
            return;
        }
        self.in_multiline = false;
        let Some(entry) = self.queue.pop_front() else {
            if !self.reply_seen {
                self.reply_seen = true;
                if code != 220 {
                    self.event(None, SmtpEvent::InvalidReply);
                }
            } else {
                self.event(self.cur, SmtpEvent::UnableToMatchReplyWithRequest);
            }
            return;
        };
        match entry.what {
            // The AUTH exchange goes on while the server answers 334; any other reply ends
            // it, 535 as a failed login.
            Pending::Auth if code != 334 => {
                self.in_auth = false;
                if code == 535 {
                    self.auth_failures += 1;
                }
            }
            Pending::Rcpt if matches!(code, 550 | 551 | 553) => self.rcpt_rejected += 1,
            _ => {}
        }
        // A reply that answers a command is not the greeting, even the
        // first one (client spoke first): the greeting flag stays unset.
        let Some(tx) = entry.tx else { return };
        match entry.what {
            Pending::StartTls => {
                if code == 220 {
                    self.complete(tx);
                    self.tls = true;
                    self.mode = ClientMode::Stopped;
                } else {
                    self.event(Some(tx), SmtpEvent::TlsRejected);
                }
            }
            Pending::Data => {
                let terminated = self.tx(tx).is_some_and(|t| t.data_complete);
                if code == 354 {
                    if let Some(t) = self.tx_mut(tx) {
                        t.response = t.response.max(Progress::Data);
                    }
                    // A 354 after the client's `.` must not re-arm data mode
                    // (reference §4.1 recommendation).
                    if !terminated && self.mode == ClientMode::Command {
                        self.mode = ClientMode::Data {
                            tx,
                            state: DataState::new(),
                        };
                    }
                } else {
                    self.event(Some(tx), SmtpEvent::DataCommandRejected);
                    if matches!(self.mode, ClientMode::Data { tx: t, .. } if t == tx) {
                        self.mode = ClientMode::Command;
                    }
                }
            }
            Pending::EndOfData => {
                if let Some(t) = self.tx_mut(tx) {
                    t.response = Progress::Complete;
                }
            }
            Pending::Bdat { last } => {
                if let Some(t) = self.tx_mut(tx) {
                    t.response = if last {
                        Progress::Complete
                    } else {
                        t.response.max(Progress::Data)
                    };
                }
            }
            Pending::Rset if code == 250 => self.complete(tx),
            Pending::Helo { resets: true } if code == 250 => self.complete(tx),
            Pending::Quit if code == 221 => self.complete(tx),
            _ => {}
        }
    }

    fn complete(&mut self, tx: u64) {
        if let Some(t) = self.tx_mut(tx) {
            t.request = Progress::Complete;
            t.response = Progress::Complete;
        }
    }
}

/// Message scanning state: end-of-data detection and the 4096-byte limit
/// on top-level header lines (body lines are not limited, as in Suricata).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DataState {
    line: DataLine,
    /// Still in the message's header block (before the first empty line).
    headers: bool,
    /// Where, in the chunk being scanned, the header block ended (just after the LF of
    /// its empty line).
    hdr_end: Option<usize>,
    /// Bytes of the current line so far, LF excluded.
    len: usize,
    /// The last byte of the current line so far is CR.
    last_cr: bool,
}

impl DataState {
    fn new() -> Self {
        DataState {
            line: DataLine::Start,
            headers: true,
            hdr_end: None,
            len: 0,
            last_cr: false,
        }
    }

    /// A non-LF byte of the current line.
    fn step(&mut self, b: u8) {
        self.line = data_step(self.line, b);
        self.len = self.len.saturating_add(1);
        self.last_cr = b == b'\r';
    }

    /// The current line's LF, at `at` bytes into the chunk being scanned: returns whether
    /// it was an over-long header line.
    fn end_line(&mut self, at: usize) -> bool {
        let long = self.headers && self.len >= MAX_LINE_LEN;
        if self.headers && self.len - usize::from(self.last_cr) == 0 {
            self.headers = false;
            self.hdr_end = Some(at);
        }
        self.line = DataLine::Start;
        self.len = 0;
        self.last_cr = false;
        long
    }

    /// Scan message bytes: `(bytes consumed, Some(dot line length) if the
    /// terminator was found, over-long header lines seen, leading bytes consumed
    /// that belong to the top-level header block)`.
    fn scan(&mut self, rest: &[u8]) -> (usize, Option<usize>, usize, usize) {
        let (used, ended, long) = self.scan_lines(rest);
        let hdr = match (self.hdr_end.take(), ended) {
            (Some(end), _) => end,
            // The terminator line is not part of the headers.
            (None, Some(dot)) if self.headers => used.saturating_sub(dot + 1),
            (None, _) if self.headers => used,
            (None, _) => 0,
        };
        (used, ended, long, hdr)
    }

    fn scan_lines(&mut self, rest: &[u8]) -> (usize, Option<usize>, usize) {
        let mut i = 0;
        let mut long = 0;
        while i < rest.len() {
            if self.line == DataLine::Other {
                // Mid-line: only the next LF matters.
                let tail = &rest[i..];
                match tail.iter().position(|&b| b == b'\n') {
                    Some(j) => {
                        if j > 0 {
                            self.len = self.len.saturating_add(j);
                            self.last_cr = tail[j - 1] == b'\r';
                        }
                        i += j + 1;
                        long += usize::from(self.end_line(i));
                    }
                    None => {
                        self.len = self.len.saturating_add(tail.len());
                        self.last_cr = tail.last() == Some(&b'\r');
                        i = rest.len();
                    }
                }
                continue;
            }
            let b = rest[i];
            i += 1;
            if b == b'\n' {
                match self.line {
                    DataLine::Dot => return (i, Some(1), long),
                    DataLine::DotCr => return (i, Some(2), long),
                    _ => long += usize::from(self.end_line(i)),
                }
            } else {
                self.step(b);
            }
        }
        (i, None, long)
    }
}

fn data_step(state: DataLine, b: u8) -> DataLine {
    match (state, b) {
        (_, b'\n') => DataLine::Start,
        (DataLine::Start, b'.') => DataLine::Dot,
        (DataLine::Dot, b'\r') => DataLine::DotCr,
        _ => DataLine::Other,
    }
}

// ---- The protocol registry's view of SMTP -------------------------------------------------

use super::{AppProto, BufferDef, Feed, Parser, ProbeCtx, ProtoDef};
use crate::app::detect::Probe;
use crate::app::AppLayer;
use crate::config::AppLayerConfig;

/// Server ports of SMTP submission/relay where a client `QUIT` is taken as SMTP.
const SMTP_PORTS: [u16; 3] = [25, 465, 587];
/// Server ports where the `220` banner probe runs (Suricata 8's probing-parser ports).
const SMTP_BANNER_PORTS: [u16; 2] = [25, 465];

/// Detection buffers, in [`buffer`]'s local order.
const BUFFERS: [BufferDef; 3] = [
    // The connection's first HELO/EHLO argument.
    BufferDef {
        name: "smtp.helo",
        multi: false,
    },
    // The transaction's MAIL FROM token.
    BufferDef {
        name: "smtp.mail_from",
        multi: false,
    },
    // One instance per recipient.
    BufferDef {
        name: "smtp.rcpt_to",
        multi: true,
    },
];

/// Registry entry.
pub(crate) const DEF: ProtoDef = ProtoDef {
    proto: AppProto::Smtp,
    name: "smtp",
    exclusive_ports: &[],
    probe,
    buffers: &BUFFERS,
    hooks: [
        &["request_started", "request_data", "request_complete"],
        &["response_started", "response_data", "response_complete"],
    ],
    parser: Some(new_parser),
    counters: ["app_layer.flow.smtp", "app_layer.tx.smtp"],
    greeting: "the SMTP 220 banner",
};

/// TCP to_server: `EHLO`/`HELO` (`QUIT` only on an SMTP port: FTP uses it too). TCP
/// to_client: the `220 `/`220-` banner, only with
/// [`AppLayerConfig::server_greeting_probe`] and on server ports 25/465 (FTP greets with 220).
fn probe(cx: &ProbeCtx<'_>, data: &[u8]) -> Probe {
    match (cx.l4, cx.dir) {
        (6, Direction::ToServer) => match probe_to_server(data) {
            ProbeResult::Smtp => Probe::Match(AppProto::Smtp),
            ProbeResult::SmtpIfPort if SMTP_PORTS.contains(&cx.server_port) => {
                Probe::Match(AppProto::Smtp)
            }
            ProbeResult::NeedMore => Probe::NeedMore,
            ProbeResult::SmtpIfPort | ProbeResult::NotSmtp => Probe::NoMatch,
        },
        (6, Direction::ToClient)
            if cx.cfg.server_greeting_probe && SMTP_BANNER_PORTS.contains(&cx.server_port) =>
        {
            match probe_to_client(data) {
                ProbeResult::Smtp | ProbeResult::SmtpIfPort => Probe::Match(AppProto::Smtp),
                ProbeResult::NeedMore => Probe::NeedMore,
                ProbeResult::NotSmtp => Probe::NoMatch,
            }
        }
        _ => Probe::NoMatch,
    }
}

fn new_parser(_cfg: &AppLayerConfig, l4: u8) -> Option<Parser> {
    (l4 == 6).then(|| Parser::Smtp(Box::default()))
}

/// Feeds the parser; an accepted STARTTLS hands the flow to TLS.
pub(crate) fn feed(p: &mut SmtpParser, dir: Direction, data: &[u8]) -> Feed {
    p.feed(dir, data);
    if p.is_tls() {
        Feed::Upgrade(AppProto::Tls)
    } else {
        Feed::Continue
    }
}

/// Progress of one side as an index into [`DEF`]'s hooks.
pub(crate) fn progress(t: &SmtpTx, dir: Direction) -> usize {
    let p = match dir {
        Direction::ToServer => t.request,
        Direction::ToClient => t.response,
    };
    match p {
        Progress::Started => 0,
        Progress::Data => 1,
        Progress::Complete => 2,
    }
}

/// Instance `i` of local buffer `local` of transaction `t`.
pub(crate) fn buffer<'a>(
    p: &'a SmtpParser,
    t: &'a SmtpTx,
    local: usize,
    i: usize,
) -> Option<&'a [u8]> {
    match (local, i) {
        (0, 0) => p.helo(),
        (1, 0) => t.mail_from.as_deref(),
        (2, i) => t.rcpt_to.get(i).map(Vec::as_slice),
        _ => None,
    }
}

impl AppLayer {
    /// The SMTP parser, once the flow was detected as SMTP (kept after STARTTLS, no longer
    /// fed).
    pub fn smtp(&self) -> Option<&SmtpParser> {
        self.parser().and_then(Parser::as_smtp)
    }

    /// The SMTP parser, mutably.
    pub fn smtp_mut(&mut self) -> Option<&mut SmtpParser> {
        self.parser_mut().and_then(Parser::as_smtp_mut)
    }
}

#[cfg(test)]
mod app_layer_tests {
    //! The app layer's detection rules, exercised with this protocol.
    use super::SmtpEvent;
    use crate::app::{AppLayer, AppProto};
    use crate::config::AppLayerConfig;
    use crate::event::Direction;
    use Direction::{ToClient, ToServer};

    /// The O(1) count ([`SmtpParser::mem_bytes`]) agrees with a walk of the live
    /// transactions at every step, and drops back when they leave the parser.
    #[test]
    fn kept_bytes_are_counted_incrementally_and_released() {
        use super::{SmtpParser, SmtpTx};
        let mut p = SmtpParser::new();
        let walk = |p: &SmtpParser| p.txs.iter().map(SmtpTx::heap_bytes).sum::<usize>();
        let empty = p.mem_bytes();
        p.to_client(b"220 mx ESMTP\r\n");
        p.to_server(b"EHLO c.example\r\nAUTH PLAIN xyz\r\n");
        assert_eq!(p.heap, walk(&p));
        p.to_client(b"250 hi\r\n235 ok\r\n");
        p.to_server(b"MAIL FROM:<a@example.com>\r\n");
        for i in 0..200 {
            p.to_server(format!("RCPT TO:<user{i}@example.net>\r\n").as_bytes());
            assert_eq!(p.heap, walk(&p));
        }
        p.to_server(b"DATA\r\n");
        p.to_client(b"250 ok\r\n");
        for _ in 0..200 {
            p.to_client(b"250 ok\r\n");
        }
        p.to_client(b"354 go\r\n");
        p.to_server(b"From: a@example.com\r\nTo: b@example.net\r\n\r\nbody\r\n.\r\n");
        assert_eq!(p.heap, walk(&p));
        assert!(p.mem_bytes() > empty + 200 * 40, "{}", p.mem_bytes());
        p.to_client(b"250 queued\r\n");
        let done = p.take_complete();
        assert_eq!(done.len(), 1);
        assert_eq!(p.heap, walk(&p));
        let _ = p.take_all();
        assert_eq!(p.heap, 0);
    }

    fn cfg(banner: bool) -> AppLayerConfig {
        AppLayerConfig {
            server_greeting_probe: banner,
            ..AppLayerConfig::default()
        }
    }

    const BANNER: &[u8] = b"220 mx.example ESMTP\r\n";

    #[test]
    fn banner_detects_smtp_only_with_suricata8_profile() {
        let mut a = AppLayer::new(6, 40000, 25);
        a.feed(&cfg(true), ToClient, BANNER, 4);
        assert_eq!(a.proto(), AppProto::Smtp);
        assert_eq!(a.detected_at(), Some((ToClient, 4)));
        assert_eq!(a.proto_dir(ToServer), AppProto::Unknown);
        a.feed(&cfg(true), ToServer, b"EHLO c\r\n", 6);
        assert_eq!(a.proto_dir(ToServer), AppProto::Smtp);
        assert_eq!(a.smtp().and_then(|s| s.helo()), Some(&b"c"[..]));

        let mut b = AppLayer::new(6, 40000, 25);
        b.feed(&cfg(false), ToClient, BANNER, 4);
        assert_eq!(b.proto(), AppProto::Unknown);
        assert!(b.smtp().is_none());
        // EHLO split over two chunks: needs both.
        b.feed(&cfg(false), ToServer, b"EH", 6);
        assert_eq!(b.proto(), AppProto::Unknown);
        b.feed(&cfg(false), ToServer, b"LO c\r\nMAIL FROM:<a@b>\r\n", 7);
        assert_eq!(b.proto(), AppProto::Smtp);
        assert_eq!(b.detected_at(), Some((ToServer, 7)));
        // The held banner went to the parser first: greeting accepted, no anomaly; the held
        // and current bytes were parsed (helo and envelope).
        let s = b.smtp().expect("parser");
        assert!(s.connection_events().is_empty());
        assert_eq!(s.helo(), Some(&b"c"[..]));
        assert_eq!(
            s.tx(0).and_then(|t| t.mail_from.clone()),
            Some(b"<a@b>".to_vec())
        );
        // The banner direction matched nothing: it takes the flow's protocol.
        assert_eq!(b.proto_dir(ToClient), AppProto::Smtp);
    }

    #[test]
    fn auth_failures_and_rejected_recipients_are_counted() {
        let mut a = AppLayer::new(6, 40000, 25);
        let c = cfg(true);
        a.feed(&c, ToClient, BANNER, 1);
        a.feed(&c, ToServer, b"EHLO c\r\n", 2);
        a.feed(&c, ToClient, b"250-mx\r\n250 AUTH PLAIN LOGIN\r\n", 3);
        // AUTH PLAIN with its initial response: 535.
        a.feed(&c, ToServer, b"AUTH PLAIN AGJvYgBzZWNyZXQ=\r\n", 4);
        a.feed(
            &c,
            ToClient,
            b"535 5.7.8 Error: authentication failed\r\n",
            5,
        );
        // AUTH LOGIN: two 334 rounds, then 535.
        a.feed(&c, ToServer, b"AUTH LOGIN\r\n", 6);
        a.feed(&c, ToClient, b"334 VXNlcm5hbWU6\r\n", 7);
        a.feed(&c, ToServer, b"Ym9i\r\n", 8);
        a.feed(&c, ToClient, b"334 UGFzc3dvcmQ6\r\n", 9);
        a.feed(&c, ToServer, b"c2VjcmV0\r\n", 10);
        a.feed(
            &c,
            ToClient,
            b"535 5.7.8 Error: authentication failed\r\n",
            11,
        );
        // A 535 to something that is not AUTH does not count; nor does a 334.
        a.feed(&c, ToServer, b"NOOP\r\n", 12);
        a.feed(&c, ToClient, b"250 ok\r\n", 13);
        // Recipients: one accepted, two refused (550, 553), one deferred (450).
        a.feed(
            &c,
            ToServer,
            b"MAIL FROM:<a@b>\r\nRCPT TO:<x@y>\r\nRCPT TO:<n1@y>\r\nRCPT TO:<n2@y>\r\nRCPT TO:<n3@y>\r\n",
            14,
        );
        a.feed(
            &c,
            ToClient,
            b"250 ok\r\n250 ok\r\n550 5.1.1 no\r\n553 5.1.3 bad\r\n450 4.2.0 later\r\n",
            15,
        );
        let p = a.parser().expect("parser");
        assert_eq!(p.event_count("smtp_auth_failure"), Some(2));
        assert_eq!(p.event_count("smtp_rcpt_rejected"), Some(2));
        assert_eq!(p.event_count("nope"), None);
        // The credentials are nowhere in the transaction: only the mechanisms.
        let t = a.smtp().and_then(|s| s.tx(0)).expect("tx");
        assert_eq!(
            t.auth_mechanisms,
            vec![b"PLAIN".to_vec(), b"LOGIN".to_vec()]
        );
        assert!(!format!("{t:?}").contains("c2VjcmV0"));
    }

    #[test]
    fn both_directions_unmatched_fail() {
        let mut a = AppLayer::new(6, 40000, 9999);
        a.feed(&cfg(true), ToServer, b"hello there\r\n", 4);
        assert_eq!(a.proto(), AppProto::Unknown);
        a.feed(&cfg(true), ToClient, b"garbage\r\n", 5);
        assert_eq!(a.proto(), AppProto::Failed);
        assert_eq!(a.proto_dir(ToServer), AppProto::Failed);
        assert_eq!(a.detected_at(), None);
        // Nothing is detected afterwards.
        a.feed(&cfg(true), ToServer, b"EHLO x\r\n", 6);
        assert_eq!(a.proto(), AppProto::Failed);
    }

    #[test]
    fn one_sided_unmatched_fails_after_max_hold_bytes() {
        let c = AppLayerConfig {
            max_detect_bytes: 8,
            max_hold_bytes: 32,
            ..cfg(true)
        };
        let mut a = AppLayer::new(6, 40000, 9999);
        a.feed(&c, ToServer, &[b'x'; 32], 4);
        assert_eq!(a.proto(), AppProto::Unknown, "at the limit: still waiting");
        a.feed(&c, ToServer, b"y", 5);
        assert_eq!(a.proto(), AppProto::Failed);
        assert_eq!(a.proto_dir(ToClient), AppProto::Unknown, "no data that way");
    }

    /// A direction still undecided past `max_detect_bytes` gives up (no match), and the
    /// long held greeting still reaches the parser once the client is detected.
    #[test]
    fn long_greeting_then_client_detection() {
        let c = AppLayerConfig {
            max_detect_bytes: 8,
            ..cfg(false)
        };
        let mut a = AppLayer::new(6, 40000, 25);
        let mut greeting = b"220 ".to_vec();
        greeting.extend_from_slice(&[b'x'; 5000]);
        greeting.extend_from_slice(b"\r\n");
        a.feed(&c, ToClient, &greeting, 4);
        assert_eq!(a.proto(), AppProto::Unknown);
        // Pending ("EH") with more than max_detect_bytes: that direction gives up.
        let mut b = AppLayer::new(6, 40000, 25);
        b.feed(&c, ToServer, b"EH", 1);
        b.feed(&c, ToServer, &[b' '; 8], 2);
        b.feed(&c, ToClient, b"junk\r\n", 3);
        assert_eq!(b.proto(), AppProto::Failed);
        // The first one: EHLO arrives, SMTP; the truncated greeting was parsed first.
        a.feed(&c, ToServer, b"EHLO c\r\n", 6);
        assert_eq!(a.proto(), AppProto::Smtp);
        let s = a.smtp().expect("parser");
        assert_eq!(s.offsets().1, greeting.len() as u64);
        // The greeting was seen (cut at the line limit), before the EHLO.
        let ev = s.connection_events();
        assert!(ev.contains(&SmtpEvent::TruncatedLine), "{ev:?}");
        assert!(!ev.contains(&SmtpEvent::NoServerWelcomeMessage), "{ev:?}");
    }

    #[test]
    fn gap_before_detection_fails() {
        let mut a = AppLayer::new(6, 40000, 25);
        a.gap(ToServer, 100);
        assert_eq!(a.proto(), AppProto::Failed);
    }

    #[test]
    fn tls_client_to_smtp_server_mismatch() {
        // smtp-tls-protodetect: ClientHello first, then the server's banner.
        let mut a = AppLayer::new(6, 40000, 25);
        a.feed(
            &cfg(true),
            ToServer,
            &[0x16, 0x03, 0x01, 0x00, 0x10, 0x01],
            4,
        );
        assert_eq!(a.proto(), AppProto::Tls);
        a.feed(&cfg(true), ToClient, BANNER, 5);
        assert_eq!(a.proto(), AppProto::Tls);
        assert_eq!(a.proto_dir(ToServer), AppProto::Tls);
        assert_eq!(a.proto_dir(ToClient), AppProto::Smtp);
        assert!(a.smtp().is_none(), "no SMTP parser on a TLS flow");
    }

    #[test]
    fn starttls_switches_to_tls() {
        let mut a = AppLayer::new(6, 40000, 25);
        let c = cfg(true);
        a.feed(&c, ToClient, BANNER, 1);
        a.feed(&c, ToServer, b"EHLO c\r\n", 2);
        a.feed(&c, ToClient, b"250 ok\r\n", 3);
        a.feed(&c, ToServer, b"STARTTLS\r\n", 4);
        assert_eq!(a.proto(), AppProto::Smtp);
        a.feed(&c, ToClient, b"220 go ahead\r\n", 5);
        assert_eq!(a.proto(), AppProto::Tls);
        assert_eq!(a.proto_orig(), Some(AppProto::Smtp));
        assert_eq!(a.proto_dir(ToServer), AppProto::Tls);
        assert_eq!(a.proto_dir(ToClient), AppProto::Tls);
        let before = a.smtp().map(|s| s.offsets());
        a.feed(&c, ToServer, &[0x16, 0x03, 0x01, 0, 5, 1, 2, 3, 4, 5], 6);
        assert_eq!(
            a.smtp().map(|s| s.offsets()),
            before,
            "parser no longer fed"
        );
    }

    #[test]
    fn http_and_dns_hooks_set_proto_only() {
        let mut h = AppLayer::new(6, 40000, 8080);
        h.feed(&cfg(true), ToServer, b"GET / HTTP/1.1\r\n", 3);
        assert_eq!(h.proto(), AppProto::Http);
        assert!(h.smtp().is_none());
        h.feed(&cfg(true), ToClient, b"HTTP/1.1 200 OK\r\n", 4);
        assert_eq!(h.proto_dir(ToClient), AppProto::Http);

        let q = [
            0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 1, b'a', 0, 0, 1, 0, 1,
        ];
        let mut d = AppLayer::new(17, 40000, 53);
        d.feed(&cfg(true), ToServer, &q, 1);
        assert_eq!(d.proto(), AppProto::Dns);
        assert_eq!(d.detected_at(), Some((ToServer, 1)));
        // A UDP datagram that is not DNS, both ways: failed.
        let mut u = AppLayer::new(17, 40000, 9999);
        u.feed(&cfg(true), ToServer, &q, 1);
        u.feed(&cfg(true), ToClient, &q, 2);
        assert_eq!(u.proto(), AppProto::Failed);
    }

    #[test]
    fn names() {
        for (p, n) in [
            (AppProto::Unknown, "unknown"),
            (AppProto::Smtp, "smtp"),
            (AppProto::Tls, "tls"),
            (AppProto::Http, "http"),
            (AppProto::Dns, "dns"),
            (AppProto::Failed, "failed"),
        ] {
            assert_eq!(p.as_str(), n);
            assert_eq!(serde_json::to_value(p).ok(), Some(serde_json::json!(n)));
        }
    }
}
