//! The typed rule AST.
//!
//! Every node the engine needs is typed (numbers parsed, contents decoded, flags split), so the
//! engine compiles it without looking at rule text again. Spans are byte ranges into the
//! [`sekisho_diag::SourceFile`] the rule came from; they never take part in equality, so two
//! rules that mean the same compare equal wherever they were written.

use std::net::IpAddr;
use std::ops::Range;

/// A byte range in the source file. Equality ignores spans (always equal), see module docs.
#[derive(Debug, Clone, Copy, Default, Eq)]
pub struct Span {
    /// First byte (inclusive).
    pub start: usize,
    /// End byte (exclusive).
    pub end: usize,
}

impl PartialEq for Span {
    fn eq(&self, _: &Span) -> bool {
        true
    }
}

/// Consistent with equality: all spans hash alike.
impl std::hash::Hash for Span {
    fn hash<H: std::hash::Hasher>(&self, _: &mut H) {}
}

impl Span {
    /// A span from `start` to `end`.
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }

    /// The span as a `Range`, e.g. for [`sekisho_diag::Diagnostic::at_span`].
    pub fn range(&self) -> Range<usize> {
        self.start..self.end
    }
}

/// A node with the source span it was parsed from.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    /// The node.
    pub node: T,
    /// Where it was written.
    pub span: Span,
}

/// One parsed rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The action(s) with scope.
    pub action: Action,
    /// Protocol and optional hook.
    pub protocol: Protocol,
    /// Source addresses.
    pub src: AddressExpr,
    /// Source ports.
    pub src_port: PortExpr,
    /// `->`, `<>` or `=>`.
    pub direction: Direction,
    /// Destination addresses.
    pub dst: AddressExpr,
    /// Destination ports.
    pub dst_port: PortExpr,
    /// Options in rule order. Content modifiers are folded into their [`Content`].
    pub options: Vec<Spanned<RuleOption>>,
    /// Byte range of the whole rule in the source file (all continuation lines).
    pub span: Span,
    /// 1-based line of the rule's first line in the source file.
    pub line: u32,
}

/// Rules are equal when they mean the same: spans and line numbers are ignored.
impl PartialEq for Rule {
    fn eq(&self, o: &Rule) -> bool {
        self.action == o.action
            && self.protocol == o.protocol
            && self.src == o.src
            && self.src_port == o.src_port
            && self.direction == o.direction
            && self.dst == o.dst
            && self.dst_port == o.dst_port
            && self.options == o.options
    }
}

/// The rule action: a primary action plus, for firewall rules, secondary actions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    /// The first (deciding) action.
    pub primary: ActionSpec,
    /// Further comma-separated actions (`accept:flow,pass:flow,alert`); empty for IDS rules.
    pub secondary: Vec<ActionSpec>,
}

impl Action {
    /// Kind of the primary action.
    pub fn kind(&self) -> ActionKind {
        self.primary.kind
    }
    /// Scope of the primary action, if one was written.
    pub fn scope(&self) -> Option<ActionScope> {
        self.primary.scope
    }
}

/// One action with optional scope, e.g. `drop:flow`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ActionSpec {
    /// What to do.
    pub kind: ActionKind,
    /// `:packet|:flow|:hook|:tx`, when written.
    pub scope: Option<ActionScope>,
}

/// Rule action kinds (written case-insensitively).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionKind {
    /// `alert`
    Alert,
    /// `pass`
    Pass,
    /// `drop`
    Drop,
    /// `reject` (same as rejectsrc)
    Reject,
    /// `rejectsrc`
    RejectSrc,
    /// `rejectdst`
    RejectDst,
    /// `rejectboth`
    RejectBoth,
    /// `accept` (firewall rules)
    Accept,
    /// `config` (rules carrying the `config` keyword)
    Config,
}

impl ActionKind {
    /// The keyword as written in canonical form.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Alert => "alert",
            ActionKind::Pass => "pass",
            ActionKind::Drop => "drop",
            ActionKind::Reject => "reject",
            ActionKind::RejectSrc => "rejectsrc",
            ActionKind::RejectDst => "rejectdst",
            ActionKind::RejectBoth => "rejectboth",
            ActionKind::Accept => "accept",
            ActionKind::Config => "config",
        }
    }
}

/// Action scope suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionScope {
    /// `:packet`
    Packet,
    /// `:flow`
    Flow,
    /// `:hook`
    Hook,
    /// `:tx`
    Tx,
}

impl ActionScope {
    /// The suffix without the colon.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionScope::Packet => "packet",
            ActionScope::Flow => "flow",
            ActionScope::Hook => "hook",
            ActionScope::Tx => "tx",
        }
    }
}

/// The protocol field, e.g. `tcp`, `smtp`, `tls:<client_hello_done`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protocol {
    /// The protocol.
    pub kind: ProtoKind,
    /// Explicit hook (`proto:hook`), if any.
    pub hook: Option<Hook>,
}

/// Protocol names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ProtoKind {
    /// `ip` (also `pkthdr`-free any-IP)
    Ip,
    /// `tcp`
    Tcp,
    /// `udp`
    Udp,
    /// `icmp` (v4 and v6)
    Icmp,
    /// `tcp-pkt`
    TcpPkt,
    /// `tcp-stream`
    TcpStream,
    /// `icmpv4`
    Icmpv4,
    /// `icmpv6`
    Icmpv6,
    /// `ipv4`
    Ipv4,
    /// `ipv6`
    Ipv6,
    /// `pkthdr`
    Pkthdr,
    /// `ether`
    Ether,
    /// `arp`
    Arp,
    /// `sctp`
    Sctp,
    /// `igmp` (IP protocol 2)
    Igmp,
    /// An app-layer protocol, lower-case canonical name (`smtp`, `tls`, `http1`...).
    App(String),
}

impl ProtoKind {
    /// The name as written in canonical form.
    pub fn as_str(&self) -> &str {
        match self {
            ProtoKind::Ip => "ip",
            ProtoKind::Tcp => "tcp",
            ProtoKind::Udp => "udp",
            ProtoKind::Icmp => "icmp",
            ProtoKind::TcpPkt => "tcp-pkt",
            ProtoKind::TcpStream => "tcp-stream",
            ProtoKind::Icmpv4 => "icmpv4",
            ProtoKind::Icmpv6 => "icmpv6",
            ProtoKind::Ipv4 => "ipv4",
            ProtoKind::Ipv6 => "ipv6",
            ProtoKind::Pkthdr => "pkthdr",
            ProtoKind::Ether => "ether",
            ProtoKind::Arp => "arp",
            ProtoKind::Sctp => "sctp",
            ProtoKind::Igmp => "igmp",
            ProtoKind::App(s) => s,
        }
    }

    /// True for app-layer protocols.
    pub fn is_app(&self) -> bool {
        matches!(self, ProtoKind::App(_))
    }
}

/// An explicit hook (`tls:client_hello_done`, `tls:<client_hello_done`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    /// Hook name, lower case.
    pub name: String,
    /// `<` form: this hook and all earlier ones.
    pub and_earlier: bool,
}

/// Address expression as written (variables unresolved; see [`crate::Variables`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressExpr {
    /// `any`
    Any,
    /// A single address.
    Ip(IpAddr),
    /// `addr/prefix`, host bits already masked off.
    Cidr(IpAddr, u8),
    /// `a-b` inclusive, a <= b, same family.
    Range(IpAddr, IpAddr),
    /// `$NAME` (name without `$`).
    Var(String),
    /// `!x`
    Not(Box<AddressExpr>),
    /// `[x, y, ...]`
    List(Vec<AddressExpr>),
}

/// Port expression as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortExpr {
    /// `any`
    Any,
    /// A single port.
    Port(u16),
    /// `a:b` inclusive (`a:` = a..65535, `:b` = 0..b), a <= b.
    Range(u16, u16),
    /// `$NAME` (name without `$`).
    Var(String),
    /// `!x`
    Not(Box<PortExpr>),
    /// `[x, y, ...]`
    List(Vec<PortExpr>),
}

/// Rule direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// `->`
    ToDst,
    /// `<>`
    Both,
    /// `=>` transactional
    Transactional,
}

impl Direction {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::ToDst => "->",
            Direction::Both => "<>",
            Direction::Transactional => "=>",
        }
    }
}

/// A numeric modifier value: literal or `byte_extract`/`byte_math` variable.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Value {
    /// A number.
    Lit(i64),
    /// A variable defined earlier in the rule by `byte_extract` / `byte_math`.
    Var(String),
}

/// `fast_pattern` forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FastPattern {
    /// `fast_pattern`
    Yes,
    /// `fast_pattern:only` (accepted, treated like `fast_pattern`)
    Only,
    /// `fast_pattern:offset,length`
    Slice(u16, u16),
}

/// A `content` with all its modifiers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Content {
    /// Decoded bytes (1..=65535).
    pub pattern: Vec<u8>,
    /// `content:!"..."`
    pub negated: bool,
    /// `nocase`
    pub nocase: bool,
    /// `depth` (absolute, counted from offset)
    pub depth: Option<Value>,
    /// `offset` (absolute)
    pub offset: Option<Value>,
    /// `distance` (relative)
    pub distance: Option<Value>,
    /// `within` (relative)
    pub within: Option<Value>,
    /// `startswith`
    pub startswith: bool,
    /// `endswith`
    pub endswith: bool,
    /// `fast_pattern`
    pub fast_pattern: Option<FastPattern>,
    /// `rawbytes` (no effect)
    pub rawbytes: bool,
    /// Buffer chosen by a legacy modifier (`http_uri`) or by `uricontent`; `None` means the
    /// current sticky buffer (or packet payload).
    pub buffer: Option<Buffer>,
}

impl Content {
    /// True if the content has a relative modifier (distance/within).
    pub fn is_relative(&self) -> bool {
        self.distance.is_some() || self.within.is_some()
    }
}

macro_rules! buffers {
    ($( $(#[$m:meta])* $v:ident = $name:literal $(, legacy $leg:literal)? $(, alias $al:literal)* ;)*) => {
        /// Inspection buffers the parser models (sticky names and legacy modifier forms).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Buffer {
            $( $(#[$m])* #[doc = concat!("`", $name, "`")] $v, )*
        }
        impl Buffer {
            /// Canonical sticky-buffer keyword.
            pub fn as_str(self) -> &'static str {
                match self { $( Buffer::$v => $name, )* }
            }
            /// Legacy content-modifier keyword for this buffer (`http_uri`), if any.
            pub fn legacy_modifier(self) -> Option<&'static str> {
                match self { $( Buffer::$v => { None $(.or(Some($leg)))? } )* }
            }
            /// Looks up a sticky-buffer keyword or alias (lower case).
            pub fn from_sticky(name: &str) -> Option<Buffer> {
                match name { $( $name $(| $al)* => Some(Buffer::$v), )* _ => None }
            }
            /// Looks up a legacy content-modifier keyword (lower case).
            pub fn from_legacy(name: &str) -> Option<Buffer> {
                match name { $( $($leg => Some(Buffer::$v),)? )* _ => None }
            }
            /// All modelled buffers.
            pub const ALL: &'static [Buffer] = &[ $( Buffer::$v, )* ];
        }
    };
}

buffers! {
    PktData = "pkt_data";
    FileData = "file.data", alias "file_data";
    HttpUri = "http.uri", legacy "http_uri";
    HttpUriRaw = "http.uri.raw", legacy "http_raw_uri";
    HttpHost = "http.host", legacy "http_host";
    HttpHostRaw = "http.host.raw", legacy "http_raw_host";
    HttpMethod = "http.method", legacy "http_method";
    HttpUserAgent = "http.user_agent", legacy "http_user_agent";
    HttpHeader = "http.header", legacy "http_header";
    HttpHeaderRaw = "http.header.raw", legacy "http_raw_header";
    HttpCookie = "http.cookie", legacy "http_cookie";
    HttpRequestBody = "http.request_body", legacy "http_client_body";
    HttpResponseBody = "http.response_body", legacy "http_server_body";
    HttpStatCode = "http.stat_code", legacy "http_stat_code";
    HttpStatMsg = "http.stat_msg", legacy "http_stat_msg";
    HttpRequestLine = "http.request_line", alias "http_request_line";
    HttpResponseLine = "http.response_line", alias "http_response_line";
    HttpProtocol = "http.protocol", alias "http_protocol";
    HttpStart = "http.start", alias "http_start";
    HttpReferer = "http.referer", alias "http_referer";
    HttpContentType = "http.content_type", alias "http_content_type";
    HttpContentLen = "http.content_len", alias "http_content_len";
    HttpAccept = "http.accept", alias "http_accept";
    HttpAcceptLang = "http.accept_lang", alias "http_accept_lang";
    HttpAcceptEnc = "http.accept_enc", alias "http_accept_enc";
    HttpConnection = "http.connection", alias "http_connection";
    HttpServer = "http.server", alias "http_server";
    HttpLocation = "http.location", alias "http_location";
    HttpHeaderNames = "http.header_names", alias "http_header_names";
    SmtpHelo = "smtp.helo";
    SmtpMailFrom = "smtp.mail_from";
    SmtpRcptTo = "smtp.rcpt_to";
    EmailFrom = "email.from";
    EmailTo = "email.to";
    EmailCc = "email.cc";
    EmailSubject = "email.subject";
    EmailDate = "email.date";
    TlsSni = "tls.sni", alias "tls_sni";
    TlsCertSubject = "tls.cert_subject", alias "tls_cert_subject";
    TlsCertIssuer = "tls.cert_issuer", alias "tls_cert_issuer";
    TlsCertSerial = "tls.cert_serial", alias "tls_cert_serial";
    TlsCertFingerprint = "tls.cert_fingerprint", alias "tls_cert_fingerprint";
    TlsSubjectAltName = "tls.subjectaltname";
    TlsCerts = "tls.certs";
    TlsAlpn = "tls.alpn";
    Ja3Hash = "ja3.hash", alias "ja3_hash";
    Ja3String = "ja3.string", alias "ja3_string";
    Ja3sHash = "ja3s.hash", alias "ja3s_hash";
    Ja3sString = "ja3s.string", alias "ja3s_string";
    Ja4Hash = "ja4.hash";
    DnsQuery = "dns.query", alias "dns_query";
    DnsQueriesRrname = "dns.queries.rrname";
    DnsAnswersRrname = "dns.answers.rrname";
    DnsAuthoritiesRrname = "dns.authorities.rrname";
    DnsAdditionalsRrname = "dns.additionals.rrname";
    DnsResponseRrname = "dns.response.rrname";
}

impl Buffer {
    /// True when the buffer may hold several instances per transaction (group matches if any
    /// instance matches).
    pub fn is_multi(self) -> bool {
        matches!(
            self,
            Buffer::SmtpRcptTo
                | Buffer::FileData
                | Buffer::DnsQuery
                | Buffer::DnsQueriesRrname
                | Buffer::DnsAnswersRrname
                | Buffer::DnsAuthoritiesRrname
                | Buffer::DnsAdditionalsRrname
                | Buffer::DnsResponseRrname
                | Buffer::TlsSubjectAltName
                | Buffer::TlsCerts
                | Buffer::TlsAlpn
        )
    }

    /// The app-layer protocol this buffer implies, if any (`smtp`, `tls`, `dns`, `http`).
    /// The JA3/JA4 buffers imply none: TLS and QUIC both fill them.
    pub fn implied_protocol(self) -> Option<&'static str> {
        let s = self.as_str();
        if s.starts_with("http.") {
            Some("http")
        } else if s.starts_with("smtp.") || s.starts_with("email.") {
            Some("smtp")
        } else if s.starts_with("tls.") {
            Some("tls")
        } else if s.starts_with("dns.") {
            Some("dns")
        } else {
            None
        }
    }
}

/// Buffer transforms (§10), applied in order to the current sticky buffer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Transform {
    /// `dotprefix`
    DotPrefix,
    /// `strip_whitespace`
    StripWhitespace,
    /// `compress_whitespace`
    CompressWhitespace,
    /// `to_lowercase`
    ToLowercase,
    /// `to_uppercase`
    ToUppercase,
    /// `to_md5`
    ToMd5,
    /// `to_sha1`
    ToSha1,
    /// `to_sha256`
    ToSha256,
    /// `url_decode`
    UrlDecode,
    /// `domain`
    Domain,
    /// `tld`
    Tld,
    /// `header_lowercase`
    HeaderLowercase,
    /// `strip_pseudo_headers`
    StripPseudoHeaders,
    /// `xor:"hexkey"` (decoded key bytes)
    Xor(Vec<u8>),
    /// `pcrexform:"re"` (regex source)
    PcreXform(String),
    /// `from_base64[:options]` (options text as written, empty when none)
    FromBase64(String),
}

impl Transform {
    /// Keyword name.
    pub fn name(&self) -> &'static str {
        match self {
            Transform::DotPrefix => "dotprefix",
            Transform::StripWhitespace => "strip_whitespace",
            Transform::CompressWhitespace => "compress_whitespace",
            Transform::ToLowercase => "to_lowercase",
            Transform::ToUppercase => "to_uppercase",
            Transform::ToMd5 => "to_md5",
            Transform::ToSha1 => "to_sha1",
            Transform::ToSha256 => "to_sha256",
            Transform::UrlDecode => "url_decode",
            Transform::Domain => "domain",
            Transform::Tld => "tld",
            Transform::HeaderLowercase => "header_lowercase",
            Transform::StripPseudoHeaders => "strip_pseudo_headers",
            Transform::Xor(_) => "xor",
            Transform::PcreXform(_) => "pcrexform",
            Transform::FromBase64(_) => "from_base64",
        }
    }
}

/// PCRE flags (after the closing `/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct PcreFlags {
    /// `i`
    pub caseless: bool,
    /// `s`
    pub dotall: bool,
    /// `m`
    pub multiline: bool,
    /// `x`
    pub extended: bool,
    /// `A`
    pub anchored: bool,
    /// `E`
    pub dollar_endonly: bool,
    /// `G`
    pub ungreedy: bool,
    /// `O`
    pub override_limit: bool,
    /// `R`
    pub relative: bool,
    /// `B` (ignored)
    pub rawbytes: bool,
}

/// A `pcre` keyword.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pcre {
    /// Regex source between the slashes, as written (escapes kept).
    pub pattern: String,
    /// Flags.
    pub flags: PcreFlags,
    /// `pcre:!"..."`
    pub negated: bool,
    /// Buffer chosen by a legacy flag (`U`, `H`, ...).
    pub buffer: Option<Buffer>,
    /// Capture variable names after the closing quote (`flow:name`, `pkt:name`, `alert:name`).
    pub captures: Vec<String>,
}

/// Comparison used by `bsize`, `dsize`, `urilen`-like keywords.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SizeCmp {
    /// `=N` or `N`
    Eq(u64),
    /// `!N`
    Ne(u64),
    /// `<N`
    Lt(u64),
    /// `>N`
    Gt(u64),
    /// `<=N`
    Le(u64),
    /// `>=N`
    Ge(u64),
    /// `a<>b`, exclusive at both ends
    Between(u64, u64),
}

/// `isdataat`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsDataAt {
    /// `!N`
    pub negated: bool,
    /// N
    pub value: Value,
    /// `,relative`
    pub relative: bool,
    /// `,rawbytes`
    pub rawbytes: bool,
}

/// Byte order for `byte_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endian {
    /// `big`
    Big,
    /// `little`
    Little,
    /// `dce` (from the DCE/RPC header)
    Dce,
}

/// String number base for `byte_*` with `string`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NumBase {
    /// `hex`
    Hex,
    /// `dec`
    Dec,
    /// `oct`
    Oct,
}

/// Options shared by the `byte_*` keywords.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ByteOpts {
    /// `relative`
    pub relative: bool,
    /// `big|little|dce`
    pub endian: Option<Endian>,
    /// `string,<base>`
    pub string: Option<NumBase>,
    /// `bitmask M`
    pub bitmask: Option<u64>,
}

/// `byte_test` operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ByteTestOp {
    /// `<`
    Lt,
    /// `>`
    Gt,
    /// `=`
    Eq,
    /// `<=`
    Le,
    /// `>=`
    Ge,
    /// `&`
    And,
    /// `^`
    Xor,
}

impl ByteTestOp {
    /// Operator text.
    pub fn as_str(self) -> &'static str {
        match self {
            ByteTestOp::Lt => "<",
            ByteTestOp::Gt => ">",
            ByteTestOp::Eq => "=",
            ByteTestOp::Le => "<=",
            ByteTestOp::Ge => ">=",
            ByteTestOp::And => "&",
            ByteTestOp::Xor => "^",
        }
    }
}

/// `byte_test`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ByteTest {
    /// Bytes to read (1..=8, up to 23 with `string`; 0 with `string` = rest of buffer), or a
    /// `byte_extract` variable.
    pub nbytes: Value,
    /// `!op`
    pub negated: bool,
    /// Operator.
    pub op: ByteTestOp,
    /// Value compared against.
    pub value: Value,
    /// Offset.
    pub offset: Value,
    /// Shared options.
    pub opts: ByteOpts,
}

/// `byte_jump`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ByteJump {
    /// Bytes to read, or a `byte_extract` variable.
    pub nbytes: Value,
    /// Offset.
    pub offset: Value,
    /// Shared options.
    pub opts: ByteOpts,
    /// `multiplier M`
    pub multiplier: Option<u32>,
    /// `align` (round up to 4)
    pub align: bool,
    /// `from_beginning`
    pub from_beginning: bool,
    /// `from_end`
    pub from_end: bool,
    /// `post_offset N`
    pub post_offset: Option<i64>,
}

/// `byte_extract`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ByteExtract {
    /// Bytes to read.
    pub nbytes: u8,
    /// Offset.
    pub offset: i64,
    /// Variable name defined.
    pub name: String,
    /// Shared options.
    pub opts: ByteOpts,
    /// `multiplier M`
    pub multiplier: Option<u32>,
    /// `align N`
    pub align: Option<u8>,
}

/// `byte_math` operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MathOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `<<`
    Shl,
    /// `>>`
    Shr,
}

impl MathOp {
    /// Operator text.
    pub fn as_str(self) -> &'static str {
        match self {
            MathOp::Add => "+",
            MathOp::Sub => "-",
            MathOp::Mul => "*",
            MathOp::Div => "/",
            MathOp::Shl => "<<",
            MathOp::Shr => ">>",
        }
    }
}

/// `byte_math`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ByteMath {
    /// Bytes to read.
    pub nbytes: u8,
    /// Offset.
    pub offset: i64,
    /// Operator.
    pub oper: MathOp,
    /// Right-hand value.
    pub rvalue: Value,
    /// Result variable name.
    pub result: String,
    /// Shared options.
    pub opts: ByteOpts,
}

/// `flow` direction option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlowDir {
    /// `to_server` / `from_client`
    ToServer,
    /// `to_client` / `from_server`
    ToClient,
}

/// `flow` state option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlowState {
    /// `established`
    Established,
    /// `not_established`
    NotEstablished,
    /// `stateless`
    Stateless,
}

/// `flow` stream option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlowStream {
    /// `only_stream`
    OnlyStream,
    /// `no_stream`
    NoStream,
}

/// `flow` fragment option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlowFrag {
    /// `only_frag`
    OnlyFrag,
    /// `no_frag`
    NoFrag,
}

/// `flow:` (1–3 options, valid combinations only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Flow {
    /// Direction.
    pub dir: Option<FlowDir>,
    /// Connection state.
    pub state: Option<FlowState>,
    /// Stream / packet restriction.
    pub stream: Option<FlowStream>,
    /// Fragment restriction.
    pub frag: Option<FlowFrag>,
}

/// `flowbits` / `xbits` command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BitsCmd {
    /// `set`
    Set,
    /// `unset`
    Unset,
    /// `toggle`
    Toggle,
    /// `isset`
    IsSet,
    /// `isnotset`
    IsNotSet,
}

impl BitsCmd {
    /// Keyword text.
    pub fn as_str(self) -> &'static str {
        match self {
            BitsCmd::Set => "set",
            BitsCmd::Unset => "unset",
            BitsCmd::Toggle => "toggle",
            BitsCmd::IsSet => "isset",
            BitsCmd::IsNotSet => "isnotset",
        }
    }
}

/// `flowbits`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flowbits {
    /// `flowbits:noalert`
    NoAlert,
    /// `flowbits:cmd,a|b` (names OR-ed; more than one only for isset/isnotset... as written)
    Cmd(BitsCmd, Vec<String>),
}

/// Tracking for xbits / thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Track {
    /// `ip_src` / `by_src`
    Src,
    /// `ip_dst` / `by_dst`
    Dst,
    /// `ip_pair`
    Pair,
    /// `tx`
    Tx,
    /// `by_rule`
    Rule,
    /// `by_both`
    Both,
    /// `by_flow`
    Flow,
}

/// `xbits`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Xbits {
    /// Command.
    pub cmd: BitsCmd,
    /// Bit name.
    pub name: String,
    /// `track ...` (Src/Dst/Pair/Tx).
    pub track: Track,
    /// `expire N` seconds.
    pub expire: Option<u32>,
}

/// `threshold` type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ThresholdKind {
    /// `limit`
    Limit,
    /// `threshold`
    Threshold,
    /// `both`
    Both,
    /// `backoff`
    Backoff,
}

/// `threshold`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Threshold {
    /// Type.
    pub kind: ThresholdKind,
    /// Track (by_src/by_dst/by_rule/by_both/by_flow).
    pub track: Track,
    /// `count N`
    pub count: u32,
    /// `seconds T` (0 for backoff)
    pub seconds: u32,
    /// `multiplier M` (backoff only)
    pub multiplier: Option<u32>,
}

/// `detection_filter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DetectionFilter {
    /// Track.
    pub track: Track,
    /// `count N`
    pub count: u32,
    /// `seconds T`
    pub seconds: u32,
    /// `unique_on src_port|dst_port`: count distinct ports instead of matches.
    pub unique_on: Option<UniqueOn>,
}

/// The field a `detection_filter ... unique_on` counts distinct values of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UniqueOn {
    /// `src_port`
    SrcPort,
    /// `dst_port`
    DstPort,
}

/// `app-layer-protocol`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppLayerProtocol {
    /// `!proto`
    pub negated: bool,
    /// Protocol name (or `failed` / `unknown`).
    pub proto: String,
    /// Mode (`direction`, `to_server`, `to_client`, `either`, `final`, `original`).
    pub mode: Option<String>,
}

/// TCP `flags` keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct TcpFlags {
    /// Bits that must be set (FIN=1 SYN=2 RST=4 PSH=8 ACK=16 URG=32 ECE=64 CWR=128); 0 = none.
    pub flags: u8,
    /// `+` (all + any others), `*` (any of), `!` (not these), or `=` exact (none written).
    pub modifier: Option<char>,
    /// Bits to ignore (after `,`).
    pub ignore: u8,
}

/// `target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// `src_ip`
    SrcIp,
    /// `dest_ip`
    DestIp,
}

/// One rule option. Content modifiers are folded into [`Content`].
#[derive(Debug, Clone, PartialEq)]
pub enum RuleOption {
    /// `msg` (decoded).
    Msg(String),
    /// `sid`
    Sid(u64),
    /// `rev`
    Rev(u64),
    /// `gid`
    Gid(u64),
    /// `classtype`
    Classtype(String),
    /// `priority` 1..=255
    Priority(u8),
    /// `reference:type,value`
    Reference {
        /// Reference type (`url`, `cve`...).
        kind: String,
        /// Value after the first comma.
        value: String,
    },
    /// `metadata` entries (`key value` pairs split at the first space; value may be empty).
    Metadata(Vec<(String, String)>),
    /// `target`
    Target(Target),
    /// `requires` (raw text; evaluated by the loader).
    Requires(String),
    /// `noalert` (also `flowbits:noalert`)
    NoAlert,
    /// `alert` keyword (force alert)
    Alert,
    /// `content` / `uricontent` with modifiers.
    Content(Content),
    /// Sticky buffer selection.
    Buffer(Buffer),
    /// Sticky buffer with an explicit direction (`http.connection:to_client;`), used in
    /// transactional (`=>`) rules for buffers that exist in both directions.
    BufferDir {
        /// The buffer.
        buffer: Buffer,
        /// The direction given.
        dir: FlowDir,
    },
    /// Transform on the current buffer.
    Transform(Transform),
    /// `pcre`
    Pcre(Pcre),
    /// `isdataat`
    IsDataAt(IsDataAt),
    /// `bsize`
    Bsize(SizeCmp),
    /// `dsize`
    Dsize(SizeCmp),
    /// `itype` (ICMP / ICMPv6 type; values up to 255)
    Itype(SizeCmp),
    /// `icode` (ICMP / ICMPv6 code; values up to 255)
    Icode(SizeCmp),
    /// `byte_test`
    ByteTest(ByteTest),
    /// `byte_jump`
    ByteJump(ByteJump),
    /// `byte_extract`
    ByteExtract(ByteExtract),
    /// `byte_math`
    ByteMath(ByteMath),
    /// `flow`
    Flow(Flow),
    /// `flowbits`
    Flowbits(Flowbits),
    /// `xbits`
    Xbits(Xbits),
    /// `threshold`
    Threshold(Threshold),
    /// `detection_filter`
    DetectionFilter(DetectionFilter),
    /// `app-layer-protocol`
    AppLayerProtocol(AppLayerProtocol),
    /// `app-layer-event` (event name as written, e.g. `smtp.invalid_reply`)
    AppLayerEvent(String),
    /// `ssl_state` (each state with its negation)
    SslState(Vec<(bool, String)>),
    /// `flags`
    Flags(TcpFlags),
    /// `absent` (`or_else` when `absent:or_else`)
    Absent {
        /// `absent:or_else`
        or_else: bool,
    },
    /// A real Suricata keyword that sekisho does not model (yet).
    Unsupported {
        /// Keyword name, lower case.
        name: String,
        /// Raw value after the `:` (trimmed), if any.
        value: Option<String>,
    },
}

impl RuleOption {
    /// The keyword name this option was written with (canonical form).
    pub fn keyword(&self) -> &str {
        match self {
            RuleOption::Msg(_) => "msg",
            RuleOption::Sid(_) => "sid",
            RuleOption::Rev(_) => "rev",
            RuleOption::Gid(_) => "gid",
            RuleOption::Classtype(_) => "classtype",
            RuleOption::Priority(_) => "priority",
            RuleOption::Reference { .. } => "reference",
            RuleOption::Metadata(_) => "metadata",
            RuleOption::Target(_) => "target",
            RuleOption::Requires(_) => "requires",
            RuleOption::NoAlert => "noalert",
            RuleOption::Alert => "alert",
            RuleOption::Content(_) => "content",
            RuleOption::Buffer(b) | RuleOption::BufferDir { buffer: b, .. } => b.as_str(),
            RuleOption::Transform(t) => t.name(),
            RuleOption::Pcre(_) => "pcre",
            RuleOption::IsDataAt(_) => "isdataat",
            RuleOption::Bsize(_) => "bsize",
            RuleOption::Dsize(_) => "dsize",
            RuleOption::Itype(_) => "itype",
            RuleOption::Icode(_) => "icode",
            RuleOption::ByteTest(_) => "byte_test",
            RuleOption::ByteJump(_) => "byte_jump",
            RuleOption::ByteExtract(_) => "byte_extract",
            RuleOption::ByteMath(_) => "byte_math",
            RuleOption::Flow(_) => "flow",
            RuleOption::Flowbits(_) => "flowbits",
            RuleOption::Xbits(_) => "xbits",
            RuleOption::Threshold(_) => "threshold",
            RuleOption::DetectionFilter(_) => "detection_filter",
            RuleOption::AppLayerProtocol(_) => "app-layer-protocol",
            RuleOption::AppLayerEvent(_) => "app-layer-event",
            RuleOption::SslState(_) => "ssl_state",
            RuleOption::Flags(_) => "flags",
            RuleOption::Absent { .. } => "absent",
            RuleOption::Unsupported { name, .. } => name,
        }
    }
}

impl Rule {
    fn find<'a, T>(&'a self, f: impl Fn(&'a RuleOption) -> Option<T>) -> Option<T> {
        self.options.iter().find_map(|o| f(&o.node))
    }

    /// The `sid` (always present on a parsed rule).
    pub fn sid(&self) -> u64 {
        self.find(|o| match o {
            RuleOption::Sid(s) => Some(*s),
            _ => None,
        })
        .unwrap_or(0)
    }

    /// The `gid` (default 1).
    pub fn gid(&self) -> u64 {
        self.find(|o| match o {
            RuleOption::Gid(s) => Some(*s),
            _ => None,
        })
        .unwrap_or(1)
    }

    /// The `rev` (default 0).
    pub fn rev(&self) -> u64 {
        self.find(|o| match o {
            RuleOption::Rev(s) => Some(*s),
            _ => None,
        })
        .unwrap_or(0)
    }

    /// The decoded `msg`, if any.
    pub fn msg(&self) -> Option<&str> {
        self.find(|o| match o {
            RuleOption::Msg(s) => Some(s.as_str()),
            _ => None,
        })
    }

    /// The explicit `priority`, if any (classtype priority is resolved by the loader).
    pub fn priority(&self) -> Option<u8> {
        self.find(|o| match o {
            RuleOption::Priority(p) => Some(*p),
            _ => None,
        })
    }

    /// The first `classtype`, if any.
    pub fn classtype(&self) -> Option<&str> {
        self.find(|o| match o {
            RuleOption::Classtype(s) => Some(s.as_str()),
            _ => None,
        })
    }

    /// The `flow` option, if any.
    pub fn flow(&self) -> Option<Flow> {
        self.find(|o| match o {
            RuleOption::Flow(f) => Some(*f),
            _ => None,
        })
    }

    /// True if an option with this canonical keyword name is present (`"content"`,
    /// `"smtp.rcpt_to"`, `"ja3.hash"`...).
    pub fn has_keyword(&self, name: &str) -> bool {
        self.options.iter().any(|o| o.node.keyword() == name)
    }

    /// Options that sekisho does not model: `(name, value, span)`.
    pub fn unsupported(&self) -> impl Iterator<Item = (&str, Option<&str>, Span)> {
        self.options.iter().filter_map(|o| match &o.node {
            RuleOption::Unsupported { name, value } => {
                Some((name.as_str(), value.as_deref(), o.span))
            }
            _ => None,
        })
    }

    /// Every buffer the rule inspects, in order of first use (sticky buffers, legacy modifiers
    /// and pcre buffer flags).
    pub fn buffers(&self) -> Vec<Buffer> {
        let mut out = Vec::new();
        for o in &self.options {
            let b = match &o.node {
                RuleOption::Buffer(b) | RuleOption::BufferDir { buffer: b, .. } => Some(*b),
                RuleOption::Content(c) => c.buffer,
                RuleOption::Pcre(p) => p.buffer,
                _ => None,
            };
            if let Some(b) = b {
                if !out.contains(&b) {
                    out.push(b);
                }
            }
        }
        out
    }

    /// True if the rule produces no alert by itself (`noalert` / `flowbits:noalert`).
    pub fn is_noalert(&self) -> bool {
        self.options.iter().any(|o| {
            matches!(
                o.node,
                RuleOption::NoAlert | RuleOption::Flowbits(Flowbits::NoAlert)
            )
        })
    }
}
