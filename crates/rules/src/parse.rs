//! The rule parser: header fields and options (reference §2–§10).

// Errors are the cold path and `Diagnostic` is the crate-wide error type; boxing it would only
// add noise.
#![allow(clippy::result_large_err)]

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use sekisho_diag::{suggest, Diagnostic, SourceFile};

use crate::ast::*;
use crate::file::OffsetMap;
use crate::keywords;

/// Longest `proto:hook` field.
const MAX_PROTO_LEN: usize = 32;
/// Largest |distance| / within.
const MAX_RELATIVE: i64 = 1 << 20;
/// Deepest nesting of address/port lists; deeper input is rejected instead of recursing.
const MAX_LIST_DEPTH: usize = 32;

/// App-layer protocol names accepted in the protocol field (`suricata --list-app-layer-protos`
/// of 8.0 plus `http`).
pub(crate) const APP_PROTOS: &[&str] = &[
    "http",
    "http1",
    "http2",
    "ftp",
    "ftp-data",
    "tls",
    "smb",
    "dns",
    "dcerpc",
    "dhcp",
    "ssh",
    "smtp",
    "imap",
    "pop3",
    "nfs",
    "ike",
    "ikev2",
    "krb5",
    "ntp",
    "rdp",
    "snmp",
    "tftp",
    "sip",
    "quic",
    "mqtt",
    "pgsql",
    "ldap",
    "mdns",
    "modbus",
    "dnp3",
    "enip",
    "rfb",
    "telnet",
    "websocket",
    "bittorrent-dht",
    "doh2",
    "template",
];

const PACKET_HOOKS: &[&str] = &["flow_start", "pre_flow", "pre_stream", "all"];
const GENERIC_APP_HOOKS: &[&str] = &[
    "request_started",
    "request_complete",
    "response_started",
    "response_complete",
];
const HTTP1_HOOKS: &[&str] = &[
    "request_line",
    "request_headers",
    "request_body",
    "request_trailer",
    "response_line",
    "response_headers",
    "response_body",
    "response_trailer",
];
const TLS_HOOKS: &[&str] = &[
    "client_in_progress",
    "client_hello_done",
    "client_cert_done",
    "client_handshake_done",
    "client_finished",
    "server_in_progress",
    "server_hello",
    "server_cert_done",
    "server_hello_done",
    "server_handshake_done",
    "server_finished",
];
const SMTP_HOOKS: &[&str] = &["request_data", "response_data"];
const SSH_HOOKS: &[&str] = &[
    "request_in_progress",
    "request_banner_wait_eol",
    "request_banner_done",
    "request_finished",
    "response_in_progress",
    "response_banner_wait_eol",
    "response_banner_done",
    "response_finished",
];

/// The Suricata version whose rule language this parser implements (for `requires`).
pub const SURICATA_VERSION: &str = "8.0.6";
const OUR_VERSION: (u32, u32, u32) = (8, 0, 6);

/// Evaluates `requires:` options before anything else (as Suricata does: an unmet requirement
/// skips the rule even if the rest would not parse). Returns the first unmet condition with the
/// option's span.
fn unmet_requirement(text: &str) -> Option<(String, usize, usize)> {
    let open = text.find('(')?;
    let close = text.rfind(')').filter(|&c| c > open)?;
    let b = text.as_bytes();
    let mut pos = open + 1;
    while pos < close {
        let end = find_option_end(b, pos, close).unwrap_or(close);
        let (o0, o1) = trim_range(text, pos, end);
        let opt = &text[o0..o1];
        if let Some((name, value)) = opt.split_once(':') {
            if name.trim().eq_ignore_ascii_case("requires") {
                for cond in value.split(',') {
                    let cond = cond.trim();
                    if !requirement_met(cond) {
                        return Some((cond.to_string(), o0, o1));
                    }
                }
            }
        }
        pos = end + 1;
    }
    None
}

fn parse_version(s: &str) -> Option<(u32, u32, u32)> {
    let mut it = s.trim().split('.');
    let major = it.next()?.parse().ok()?;
    let minor = it.next().map_or(Some(0), |m| m.parse().ok())?;
    let patch = it.next().map_or(Some(0), |m| m.parse().ok())?;
    Some((major, minor, patch))
}

fn requirement_met(cond: &str) -> bool {
    let (kind, rest) = match cond.split_once(char::is_whitespace) {
        Some((k, r)) => (k, r.trim()),
        None => (cond, ""),
    };
    match kind {
        "version" => rest.split('|').any(|alt| {
            let toks: Vec<&str> = alt.split_whitespace().collect();
            let mut ok = true;
            let mut i = 0;
            while i < toks.len() {
                // Accept both "op ver" and "opver".
                let (op, ver) = match toks[i].find(|c: char| c.is_ascii_digit()) {
                    Some(0) => ("=", toks[i]),
                    Some(p) => (&toks[i][..p], &toks[i][p..]),
                    None => {
                        i += 1;
                        (toks[i - 1], toks.get(i).copied().unwrap_or(""))
                    }
                };
                i += 1;
                let Some(v) = parse_version(ver) else {
                    return false;
                };
                ok &= match op {
                    ">=" => OUR_VERSION >= v,
                    ">" => OUR_VERSION > v,
                    "<=" => OUR_VERSION <= v,
                    "<" => OUR_VERSION < v,
                    "=" | "==" => OUR_VERSION == v,
                    _ => false,
                };
            }
            ok
        }),
        // sekisho has none of Suricata's optional build features (lua, geoip, ...).
        "feature" => false,
        "keyword" => keywords::is_known_keyword(rest),
        _ => true,
    }
}

/// Parser state for one rule.
struct Ctx<'a> {
    src: &'a SourceFile,
    text: &'a str,
    map: &'a OffsetMap,
}

impl Ctx<'_> {
    fn span(&self, start: usize, end: usize) -> Span {
        let s = self.map.map(start);
        let e = if end > start {
            self.map.map(end - 1) + 1
        } else {
            s
        };
        Span::new(s, e.max(s))
    }

    fn warn(&self, code: &str, msg: impl Into<String>, start: usize, end: usize) -> Diagnostic {
        let sp = self.span(start, end);
        Diagnostic::warning(msg)
            .with_code(code)
            .at_span(self.src, sp.range())
    }

    fn err(&self, code: &str, msg: impl Into<String>, start: usize, end: usize) -> Diagnostic {
        let sp = self.span(start, end);
        Diagnostic::error(msg)
            .with_code(code)
            .at_span(self.src, sp.range())
    }
}

type PResult<T> = Result<T, Diagnostic>;

/// Parses the action keyword (without scope), case-insensitively.
pub(crate) fn parse_action_kind(s: &str) -> Option<ActionKind> {
    let k = match s.to_ascii_lowercase().as_str() {
        "alert" => ActionKind::Alert,
        "pass" => ActionKind::Pass,
        "drop" => ActionKind::Drop,
        "reject" => ActionKind::Reject,
        "rejectsrc" => ActionKind::RejectSrc,
        "rejectdst" => ActionKind::RejectDst,
        "rejectboth" => ActionKind::RejectBoth,
        "accept" => ActionKind::Accept,
        "config" => ActionKind::Config,
        _ => return None,
    };
    Some(k)
}

/// Returns (start, end) of the next token starting at `pos` (after skipping blanks). When
/// `list` is true, spaces inside `[...]` do not end the token.
fn next_token(text: &str, mut pos: usize, list: bool) -> Option<(usize, usize)> {
    let b = text.as_bytes();
    while pos < b.len() && (b[pos] == b' ' || b[pos] == b'\t') {
        pos += 1;
    }
    if pos >= b.len() {
        return None;
    }
    let start = pos;
    let mut depth = 0usize;
    while pos < b.len() {
        match b[pos] {
            b'[' if list => depth += 1,
            b']' if list => depth = depth.saturating_sub(1),
            b' ' | b'\t' if depth == 0 => break,
            b'(' if depth == 0 && pos == start => break,
            _ => {}
        }
        pos += 1;
    }
    if pos == start {
        return None;
    }
    Some((start, pos))
}

/// Byte offset of the first control character other than TAB/CR/LF (C0, DEL, or C1 encoded
/// as `C2 80..=9F`), scanning bytes rather than decoding chars.
fn find_control(b: &[u8]) -> Option<usize> {
    b.iter().enumerate().position(|(i, &c)| match c {
        b'\t' | b'\r' | b'\n' => false,
        0..=0x1f | 0x7f => true,
        0xc2 => b.get(i + 1).is_some_and(|n| (0x80..=0x9f).contains(n)),
        _ => false,
    })
}

/// Parses one logical rule (continuations joined). Spans map back to `src` via `map`.
pub(crate) fn parse_rule_text(
    src: &SourceFile,
    text: &str,
    map: &OffsetMap,
    line: u32,
    warnings: &mut Vec<Diagnostic>,
) -> PResult<Rule> {
    let cx = Ctx { src, text, map };
    if let Some(i) = find_control(text.as_bytes()) {
        let c = text[i..].chars().next().unwrap_or('\0');
        return Err(cx.err(
            "control-char",
            format!("rule contains control character U+{:04X}", c as u32),
            i,
            i + c.len_utf8(),
        ));
    }
    let lead = text.len() - text.trim_start().len();
    if text.contains("requires") {
        if let Some((cond, a, b)) = unmet_requirement(text) {
            return Err(Diagnostic::warning(format!(
                "rule skipped: requirement '{cond}' is not met by sekisho (Suricata {SURICATA_VERSION} compatible)"
            ))
            .with_code("requires-unmet")
            .at_span(src, cx.span(a, b).range()));
        }
    }
    let field = |pos: usize, list: bool, what: &str| -> PResult<(usize, usize)> {
        next_token(text, pos, list).ok_or_else(|| {
            cx.err(
                "incomplete-header",
                format!("rule header is incomplete: expected {what}"),
                text.trim_end().len().saturating_sub(1),
                text.trim_end().len(),
            )
            .with_hint("a rule is: ACTION PROTO SRC SPORT DIR DST DPORT (OPTIONS)")
        })
    };
    let (a0, a1) = field(lead, false, "an action")?;
    let action = parse_action(&cx, a0, a1)?;
    let (p0, p1) = field(a1, true, "a protocol")?;
    let protocol = parse_protocol(&cx, p0, p1)?;
    let (s0, s1) = field(p1, true, "a source address")?;
    let src_addr = parse_address(&cx, s0, s1, 0)?;
    let (sp0, sp1) = field(s1, true, "a source port")?;
    let src_port = parse_port(&cx, sp0, sp1, 0)?;
    let (d0, d1) = field(sp1, false, "a direction ('->', '<>' or '=>')")?;
    let direction =
        match &text[d0..d1] {
            "->" => Direction::ToDst,
            "<>" => Direction::Both,
            "=>" => Direction::Transactional,
            other => return Err(cx
                .err(
                    "bad-direction",
                    format!("invalid direction '{other}'"),
                    d0,
                    d1,
                )
                .with_hint(
                    "use '->' (source to destination), '<>' (both ways) or '=>' (transactional)",
                )),
        };
    let (da0, da1) = field(d1, true, "a destination address")?;
    let dst = parse_address(&cx, da0, da1, 0)?;
    let (dp0, dp1) = field(da1, true, "a destination port")?;
    let dst_port = parse_port(&cx, dp0, dp1, 0)?;

    // Option string: the rest with leading '('/blanks and trailing ')'/blanks stripped. Like
    // Suricata, missing parentheses are tolerated (with a warning).
    let bytes = text.as_bytes();
    let rest_start = dp1 + (text.len() - dp1 - text[dp1..].trim_start().len());
    let mut opts_start = rest_start;
    while opts_start < text.len()
        && (bytes[opts_start] == b'(' || bytes[opts_start].is_ascii_whitespace())
    {
        opts_start += 1;
    }
    let mut opts_end = text.len();
    while opts_end > opts_start
        && (bytes[opts_end - 1] == b')' || bytes[opts_end - 1].is_ascii_whitespace())
    {
        opts_end -= 1;
    }
    if opts_start >= opts_end {
        return Err(cx
            .err(
                "missing-options",
                "rule has no options",
                rest_start.min(text.len().saturating_sub(1)),
                text.len().max(rest_start + 1),
            )
            .with_hint("rule options go in parentheses after the header: (msg:\"...\"; sid:1;)"));
    }
    let trimmed_end = text.trim_end().len();
    if bytes.get(rest_start) != Some(&b'(') {
        warnings.push(
            cx.warn(
                "unopened-options",
                "rule options do not start with '('",
                rest_start,
                rest_start + 1,
            )
            .with_hint("put the options in parentheses: (msg:\"...\"; sid:1;)"),
        );
    } else if bytes.get(trimmed_end.wrapping_sub(1)) != Some(&b')') {
        warnings.push(
            cx.warn(
                "unclosed-options",
                "rule options are not closed with ')'",
                trimmed_end.saturating_sub(1),
                trimmed_end,
            )
            .with_hint("end the rule with ')' after the last ';' (Suricata tolerates its absence)"),
        );
    }
    let options = parse_options(&cx, opts_start, opts_end, &protocol, warnings)?;
    if direction == Direction::Transactional {
        if let Some(o) = options
            .iter()
            .find(|o| matches!(&o.node, RuleOption::Flow(f) if f.dir.is_some()))
        {
            return Err(Diagnostic::error(
                "a transactional rule ('=>') cannot use flow:to_server or flow:to_client",
            )
            .with_code("bad-direction")
            .at_span(src, o.span.range())
            .with_hint("the '=>' rule already covers both directions; use '->' with flow:to_server/to_client instead"));
        }
    }
    if !options.iter().any(|o| matches!(o.node, RuleOption::Sid(_))) {
        return Err(cx.err("missing-sid", "rule has no sid", a0, a1).with_hint(
            "add a unique rule id, e.g. 'sid:1000001;' (ids from 1000000 are for local rules)",
        ));
    }
    let span = cx.span(lead, trimmed_end);
    Ok(Rule {
        action,
        protocol,
        src: src_addr,
        src_port,
        direction,
        dst,
        dst_port,
        options,
        span,
        line,
    })
}

fn parse_action(cx: &Ctx, a0: usize, a1: usize) -> PResult<Action> {
    let tok = &cx.text[a0..a1];
    let mut specs = Vec::new();
    let mut pos = a0;
    for part in tok.split(',') {
        let (p0, p1) = (pos, pos + part.len());
        pos = p1 + 1;
        let (kind_s, scope_s) = match part.split_once(':') {
            Some((k, s)) => (k, Some(s)),
            None => (part, None),
        };
        let Some(kind) = parse_action_kind(kind_s) else {
            let names = [
                "alert",
                "pass",
                "drop",
                "reject",
                "rejectsrc",
                "rejectdst",
                "rejectboth",
                "accept",
            ];
            let mut d = cx.err("bad-action", format!("unknown action '{kind_s}'"), p0, p1);
            d = match suggest(kind_s, names) {
                Some(s) => d.with_hint(format!("did you mean '{s}'?")),
                None => d.with_hint(
                    "actions are alert, pass, drop, reject, rejectsrc, rejectdst, rejectboth, accept",
                ),
            };
            return Err(d);
        };
        let scope = match scope_s.map(|s| s.to_ascii_lowercase()) {
            None => None,
            Some(s) => Some(match s.as_str() {
                "packet" => ActionScope::Packet,
                "flow" => ActionScope::Flow,
                "hook" => ActionScope::Hook,
                "tx" => ActionScope::Tx,
                _ => {
                    return Err(cx
                        .err("bad-action", format!("unknown action scope '{s}'"), p0, p1)
                        .with_hint("scopes are :packet, :flow, :hook and :tx"))
                }
            }),
        };
        specs.push((ActionSpec { kind, scope }, p0, p1));
    }
    let (primary, _, _) = specs[0];
    for (s, p0, p1) in &specs[1..] {
        if !matches!(s.kind, ActionKind::Alert | ActionKind::Pass) {
            return Err(cx
                .err(
                    "bad-action",
                    format!("'{}' cannot be a secondary action", s.kind.as_str()),
                    *p0,
                    *p1,
                )
                .with_hint("secondary actions are 'alert' and 'pass[:flow|:packet]'"));
        }
    }
    Ok(Action {
        primary,
        secondary: specs[1..].iter().map(|s| s.0).collect(),
    })
}

fn parse_protocol(cx: &Ctx, p0: usize, p1: usize) -> PResult<Protocol> {
    let tok = &cx.text[p0..p1];
    if tok.len() > MAX_PROTO_LEN {
        return Err(cx.err(
            "bad-protocol",
            format!("protocol field is longer than {MAX_PROTO_LEN} characters"),
            p0,
            p1,
        ));
    }
    let lower = tok.to_ascii_lowercase();
    let (name, hook) = match lower.split_once(':') {
        Some((n, h)) => (n, Some(h)),
        None => (lower.as_str(), None),
    };
    let kind = match name {
        "ip" => ProtoKind::Ip,
        "tcp" => ProtoKind::Tcp,
        "udp" => ProtoKind::Udp,
        "icmp" => ProtoKind::Icmp,
        "tcp-pkt" => ProtoKind::TcpPkt,
        "tcp-stream" => ProtoKind::TcpStream,
        "icmpv4" => ProtoKind::Icmpv4,
        "icmpv6" => ProtoKind::Icmpv6,
        "ipv4" | "ip4" => ProtoKind::Ipv4,
        "ipv6" | "ip6" => ProtoKind::Ipv6,
        "pkthdr" => ProtoKind::Pkthdr,
        "ether" => ProtoKind::Ether,
        "arp" => ProtoKind::Arp,
        "sctp" => ProtoKind::Sctp,
        "igmp" => ProtoKind::Igmp,
        n if APP_PROTOS.contains(&n) => ProtoKind::App(n.to_string()),
        n => {
            let all = [
                "ip",
                "tcp",
                "udp",
                "icmp",
                "tcp-pkt",
                "tcp-stream",
                "icmpv4",
                "icmpv6",
                "ipv4",
                "ipv6",
                "pkthdr",
                "ether",
                "arp",
                "sctp",
            ]
            .into_iter()
            .chain(APP_PROTOS.iter().copied());
            let d = cx.err(
                "bad-protocol",
                format!("unknown protocol '{n}'"),
                p0,
                p0 + n.len(),
            );
            return Err(match suggest(n, all) {
                Some(s) => d.with_hint(format!("did you mean '{s}'?")),
                None => d.with_hint("see `suricata --list-app-layer-protos` for app-layer names"),
            });
        }
    };
    let hook = match hook {
        None => None,
        Some(h) => {
            let (le, hname) = match h.strip_prefix('<') {
                Some(r) => (true, r),
                None => (false, h),
            };
            let valid: Vec<&str> = hooks_for(&kind);
            if !valid.contains(&hname) {
                let h0 = p0 + name.len() + 1;
                let d = cx.err(
                    "bad-hook",
                    format!("unknown hook '{hname}' for protocol '{name}'"),
                    h0,
                    p1,
                );
                return Err(match suggest(hname, valid.iter().copied()) {
                    Some(s) => d.with_hint(format!("did you mean '{s}'?")),
                    None => d.with_hint(format!("hooks for '{name}': {}", valid.join(", "))),
                });
            }
            Some(Hook {
                name: hname.to_string(),
                and_earlier: le,
            })
        }
    };
    Ok(Protocol { kind, hook })
}

fn hooks_for(kind: &ProtoKind) -> Vec<&'static str> {
    match kind {
        ProtoKind::App(n) => {
            let mut v = GENERIC_APP_HOOKS.to_vec();
            match n.as_str() {
                "http1" | "http" => v.extend_from_slice(HTTP1_HOOKS),
                "tls" => v.extend_from_slice(TLS_HOOKS),
                "smtp" => v.extend_from_slice(SMTP_HOOKS),
                "ssh" => v.extend_from_slice(SSH_HOOKS),
                _ => {}
            }
            v
        }
        _ => PACKET_HOOKS.to_vec(),
    }
}

/// Splits the inside of a `[...]` list at top-level commas: (start, end) offsets.
fn split_list(text: &str, start: usize, end: usize) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut item = start;
    for (i, &c) in b.iter().enumerate().take(end).skip(start) {
        match c {
            b'[' => depth += 1,
            b']' => depth = depth.saturating_sub(1),
            b',' if depth == 0 => {
                out.push((item, i));
                item = i + 1;
            }
            _ => {}
        }
    }
    out.push((item, end));
    out
}

/// Trims blanks off a (start, end) range of `text`.
fn trim_range(text: &str, mut s: usize, mut e: usize) -> (usize, usize) {
    let b = text.as_bytes();
    while s < e && b[s].is_ascii_whitespace() {
        s += 1;
    }
    while e > s && b[e - 1].is_ascii_whitespace() {
        e -= 1;
    }
    (s, e)
}

/// Finds the `]` closing the `[` at `open`, within `end`.
fn matching_bracket(text: &str, open: usize, end: usize) -> Option<usize> {
    let b = text.as_bytes();
    let mut depth = 0usize;
    for (i, &c) in b.iter().enumerate().take(end).skip(open) {
        match c {
            b'[' => depth += 1,
            b']' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

fn valid_var_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
}

pub(crate) fn parse_address_str(s: &str) -> Result<AddressExpr, String> {
    let src = SourceFile::new("<var>", s);
    let map = OffsetMap::identity();
    let cx = Ctx {
        src: &src,
        text: s,
        map: &map,
    };
    let (a, b) = trim_range(s, 0, s.len());
    parse_address(&cx, a, b, 0).map_err(|d| d.message)
}

pub(crate) fn parse_port_str(s: &str) -> Result<PortExpr, String> {
    let src = SourceFile::new("<var>", s);
    let map = OffsetMap::identity();
    let cx = Ctx {
        src: &src,
        text: s,
        map: &map,
    };
    let (a, b) = trim_range(s, 0, s.len());
    parse_port(&cx, a, b, 0).map_err(|d| d.message)
}

fn bad_addr(cx: &Ctx, s: usize, e: usize, why: &str) -> Diagnostic {
    let tok = &cx.text[s..e];
    cx.err(
        "bad-address",
        format!("invalid address '{tok}': {why}"),
        s,
        e,
    )
    .with_hint(
        "use any, an IP, a CIDR (10.0.0.0/8), a range (10.0.0.1-10.0.0.9), $VAR, !x or a [list]",
    )
}

/// The grammar address and port expressions share: `any`, `$VAR`, `!x`, `[a, b]` (nestable)
/// and bare comma lists. Only the leaf (an IP, CIDR or range; a port or range) differs.
trait HeaderExpr: Sized + PartialEq {
    /// What the empty token is called in the error ("empty address").
    const EMPTY: &'static str;
    /// `any`.
    fn any() -> Self;
    /// `$NAME`.
    fn var(name: String) -> Self;
    /// `!x`.
    fn not(inner: Self) -> Self;
    /// `[a, b]` or `a,b`.
    fn list(items: Vec<Self>) -> Self;
    /// The error for token `s..e`, with its fix hint.
    fn bad(cx: &Ctx, s: usize, e: usize, why: &str) -> Diagnostic;
    /// A single value: no list, negation, `any` or variable.
    fn leaf(cx: &Ctx, tok: &str, s: usize, e: usize) -> PResult<Self>;
}

fn parse_header_expr<T: HeaderExpr>(cx: &Ctx, s: usize, e: usize, depth: usize) -> PResult<T> {
    let (s, e) = trim_range(cx.text, s, e);
    let tok = &cx.text[s..e];
    if tok.is_empty() {
        return Err(T::bad(cx, s, e.max(s + 1), T::EMPTY));
    }
    if depth > MAX_LIST_DEPTH {
        return Err(T::bad(cx, s, e, "lists nested too deeply"));
    }
    // Suricata also accepts a bare comma list (`1.1.1.1,2.2.2.2`) as a list.
    let items = split_list(cx.text, s, e);
    if items.len() > 1 {
        let mut list = Vec::with_capacity(items.len());
        for (a, b) in items {
            list.push(parse_header_expr(cx, a, b, depth + 1)?);
        }
        return Ok(T::list(list));
    }
    if tok.starts_with('!') {
        let inner = parse_header_expr(cx, s + 1, e, depth + 1)?;
        if inner == T::any() {
            return Err(T::bad(cx, s, e, "'!any' matches nothing"));
        }
        return Ok(T::not(inner));
    }
    if tok.starts_with('[') {
        let close =
            matching_bracket(cx.text, s, e).ok_or_else(|| T::bad(cx, s, e, "unbalanced '['"))?;
        if close != e - 1 {
            return Err(T::bad(cx, s, e, "text after ']'"));
        }
        let mut items = Vec::new();
        for (a, b) in split_list(cx.text, s + 1, e - 1) {
            items.push(parse_header_expr(cx, a, b, depth + 1)?);
        }
        return Ok(T::list(items));
    }
    if tok.contains(['[', ']']) {
        return Err(T::bad(cx, s, e, "unbalanced brackets"));
    }
    if tok.eq_ignore_ascii_case("any") {
        return Ok(T::any());
    }
    if let Some(name) = tok.strip_prefix('$') {
        if !valid_var_name(name) {
            return Err(T::bad(cx, s, e, "bad variable name"));
        }
        return Ok(T::var(name.to_string()));
    }
    T::leaf(cx, tok, s, e)
}

fn parse_address(cx: &Ctx, s: usize, e: usize, depth: usize) -> PResult<AddressExpr> {
    parse_header_expr(cx, s, e, depth)
}

fn parse_port(cx: &Ctx, s: usize, e: usize, depth: usize) -> PResult<PortExpr> {
    parse_header_expr(cx, s, e, depth)
}

impl HeaderExpr for AddressExpr {
    const EMPTY: &'static str = "empty address";
    fn any() -> Self {
        AddressExpr::Any
    }
    fn var(name: String) -> Self {
        AddressExpr::Var(name)
    }
    fn not(inner: Self) -> Self {
        AddressExpr::Not(Box::new(inner))
    }
    fn list(items: Vec<Self>) -> Self {
        AddressExpr::List(items)
    }
    fn bad(cx: &Ctx, s: usize, e: usize, why: &str) -> Diagnostic {
        bad_addr(cx, s, e, why)
    }
    fn leaf(cx: &Ctx, tok: &str, s: usize, e: usize) -> PResult<Self> {
        if let Some((ip, mask)) = tok.split_once('/') {
            let addr: IpAddr = ip
                .parse()
                .map_err(|_| bad_addr(cx, s, e, "not an IP address"))?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let prefix: u8 = if let Ok(p) = mask.parse::<u8>() {
                if p > max {
                    return Err(bad_addr(cx, s, e, "prefix length too large"));
                }
                p
            } else if let (true, Ok(m)) = (addr.is_ipv4(), mask.parse::<Ipv4Addr>()) {
                let m = u32::from(m);
                let p = m.leading_ones();
                if m.checked_shl(p).unwrap_or(0) != 0 {
                    return Err(bad_addr(cx, s, e, "netmask is not contiguous"));
                }
                p as u8
            } else {
                return Err(bad_addr(cx, s, e, "bad netmask"));
            };
            return Ok(AddressExpr::Cidr(mask_addr(addr, prefix), prefix));
        }
        if let Some((a, b)) = tok.split_once('-') {
            let a: IpAddr = a
                .parse()
                .map_err(|_| bad_addr(cx, s, e, "range start is not an IP address"))?;
            let b: IpAddr = b
                .parse()
                .map_err(|_| bad_addr(cx, s, e, "range end is not an IP address"))?;
            if a.is_ipv4() != b.is_ipv4() {
                return Err(bad_addr(cx, s, e, "range mixes IPv4 and IPv6"));
            }
            if a > b {
                return Err(bad_addr(cx, s, e, "range start is after its end"));
            }
            return Ok(AddressExpr::Range(a, b));
        }
        tok.parse::<IpAddr>()
            .map(AddressExpr::Ip)
            .map_err(|_| bad_addr(cx, s, e, "not an IP address"))
    }
}

/// Clears host bits.
pub(crate) fn mask_addr(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let m = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(prefix))
            };
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & m))
        }
        IpAddr::V6(a) => {
            let m = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(prefix))
            };
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & m))
        }
    }
}

fn bad_port(cx: &Ctx, s: usize, e: usize, why: &str) -> Diagnostic {
    let tok = &cx.text[s..e];
    cx.err("bad-port", format!("invalid port '{tok}': {why}"), s, e)
        .with_hint(
            "use any, a port 0-65535, a range (1024:65535, 1024:, :1023), $VAR, !x or a [list]",
        )
}

impl HeaderExpr for PortExpr {
    const EMPTY: &'static str = "empty port";
    fn any() -> Self {
        PortExpr::Any
    }
    fn var(name: String) -> Self {
        PortExpr::Var(name)
    }
    fn not(inner: Self) -> Self {
        PortExpr::Not(Box::new(inner))
    }
    fn list(items: Vec<Self>) -> Self {
        PortExpr::List(items)
    }
    fn bad(cx: &Ctx, s: usize, e: usize, why: &str) -> Diagnostic {
        bad_port(cx, s, e, why)
    }
    fn leaf(cx: &Ctx, tok: &str, s: usize, e: usize) -> PResult<Self> {
        let num = |t: &str| -> PResult<u16> {
            if t.is_empty() || !t.bytes().all(|c| c.is_ascii_digit()) {
                return Err(bad_port(cx, s, e, "not a number"));
            }
            t.parse::<u16>()
                .map_err(|_| bad_port(cx, s, e, "port is larger than 65535"))
        };
        if let Some((a, b)) = tok.split_once(':') {
            let lo = if a.is_empty() { 0 } else { num(a)? };
            let hi = if b.is_empty() { 65535 } else { num(b)? };
            if a.is_empty() && b.is_empty() {
                return Err(bad_port(cx, s, e, "empty range"));
            }
            if lo > hi {
                return Err(bad_port(cx, s, e, "range start is after its end"));
            }
            return Ok(PortExpr::Range(lo, hi));
        }
        Ok(PortExpr::Port(num(tok)?))
    }
}

/// Per-rule option parsing state.
struct OptState {
    options: Vec<Spanned<RuleOption>>,
    /// Index of the last content in `options`, with the modifiers already applied (bit set).
    last_content: Option<(usize, u32)>,
    /// Variables defined by byte_extract / byte_math.
    vars: Vec<String>,
    has_msg: bool,
    has_flow: bool,
    has_threshold: bool,
    fast_pattern_seen: bool,
}

/// Modifier bits for duplicate detection.
const M_NOCASE: u32 = 1;
const M_DEPTH: u32 = 2;
const M_OFFSET: u32 = 4;
const M_DISTANCE: u32 = 8;
const M_WITHIN: u32 = 16;
const M_STARTS: u32 = 32;
const M_ENDS: u32 = 64;
const M_FAST: u32 = 128;
const M_RAW: u32 = 256;
const M_BUF: u32 = 512;

/// Finds the end of one option: the first `;` not preceded by `\`.
fn find_option_end(b: &[u8], from: usize, end: usize) -> Option<usize> {
    let mut at = from;
    while at < end {
        let i = at + b[at..end].iter().position(|&c| c == b';')?;
        if i == 0 || b[i - 1] != b'\\' {
            return Some(i);
        }
        at = i + 1;
    }
    None
}

fn parse_options(
    cx: &Ctx,
    start: usize,
    end: usize,
    protocol: &Protocol,
    warnings: &mut Vec<Diagnostic>,
) -> PResult<Vec<Spanned<RuleOption>>> {
    let b = cx.text.as_bytes();
    let mut st = OptState {
        options: Vec::with_capacity(16),
        last_content: None,
        vars: Vec::new(),
        has_msg: false,
        has_flow: false,
        has_threshold: false,
        fast_pattern_seen: false,
    };
    let mut pos = start;
    loop {
        while pos < end && b[pos].is_ascii_whitespace() {
            pos += 1;
        }
        if pos >= end {
            break;
        }
        let Some(semi) = find_option_end(b, pos, end) else {
            let (s, e) = trim_range(cx.text, pos, end);
            let name = cx.text[s..e].split(':').next().unwrap_or("").trim();
            return Err(cx
                .err(
                    "unterminated-option",
                    format!("option '{name}' is not terminated with ';'"),
                    s,
                    e,
                )
                .with_hint("end every option with ';', including the last one"));
        };
        let (o0, o1) = trim_range(cx.text, pos, semi);
        let raw = &cx.text[o0..o1];
        let (name_raw, value) = match raw.find(':') {
            Some(i) => {
                let (v0, v1) = trim_range(cx.text, o0 + i + 1, o1);
                (raw[..i].trim_end(), Some((v0, v1)))
            }
            None => (raw, None),
        };
        let name: Cow<str> = if name_raw.bytes().any(|c| c.is_ascii_uppercase()) {
            Cow::Owned(name_raw.to_ascii_lowercase())
        } else {
            Cow::Borrowed(name_raw)
        };
        let kw = Kw {
            name: &name,
            n0: o0,
            n1: o0 + name_raw.len(),
            o0,
            o1,
            value,
        };
        parse_one(cx, &kw, &mut st, warnings)?;
        pos = semi + 1;
    }
    post_checks(cx, &st, protocol, warnings)?;
    Ok(st.options)
}

/// One option being parsed.
struct Kw<'a> {
    name: &'a str,
    /// Name span.
    n0: usize,
    n1: usize,
    /// Whole option span (without the `;`).
    o0: usize,
    o1: usize,
    /// Value span (trimmed), when there was a ':'.
    value: Option<(usize, usize)>,
}

impl Kw<'_> {
    fn value<'t>(&self, cx: &Ctx<'t>) -> Option<&'t str> {
        self.value.map(|(a, b)| &cx.text[a..b])
    }
}

fn need_value<'t>(cx: &Ctx<'t>, kw: &Kw) -> PResult<(&'t str, usize, usize)> {
    match kw.value {
        Some((a, b)) if b > a => Ok((&cx.text[a..b], a, b)),
        _ => Err(cx
            .err(
                "missing-value",
                format!("keyword '{}' needs a value", kw.name),
                kw.o0,
                kw.o1,
            )
            .with_hint(format!("write it as '{}:<value>;'", kw.name))),
    }
}

fn no_value(cx: &Ctx, kw: &Kw) -> PResult<()> {
    match kw.value {
        Some((a, b)) => Err(cx
            .err(
                "unexpected-value",
                format!("keyword '{}' takes no value", kw.name),
                a,
                b.max(a + 1),
            )
            .with_hint(format!("write it as '{};'", kw.name))),
        None => Ok(()),
    }
}

fn bad_value(cx: &Ctx, kw: &Kw, what: impl Into<String>) -> Diagnostic {
    let (a, b) = kw.value.unwrap_or((kw.o0, kw.o1));
    cx.err(
        "bad-value",
        format!("invalid value for '{}': {}", kw.name, what.into()),
        a,
        b.max(a + 1),
    )
}

/// Strips one pair of outer quotes (mandatory when `required`), handling negation first when
/// `negatable`. Returns (negated, inner, inner_start).
fn unquote<'t>(
    cx: &Ctx<'t>,
    kw: &Kw,
    v: &'t str,
    v0: usize,
    negatable: bool,
    required: bool,
) -> PResult<(bool, &'t str, usize)> {
    let mut s = v;
    let mut off = v0;
    let mut neg = false;
    if negatable {
        if let Some(r) = s.strip_prefix('!') {
            neg = true;
            let t = r.trim_start();
            off += 1 + (r.len() - t.len());
            s = t;
        }
    }
    if let Some(inner) = s.strip_prefix('"') {
        if let Some(body) = inner.strip_suffix('"') {
            return Ok((neg, body, off + 1));
        }
        let d = cx
            .err(
                "unterminated-quote",
                format!("unterminated quote in '{}' value", kw.name),
                off,
                off + s.len(),
            )
            .with_hint("escape ';' inside content as \\; or |3B|");
        return Err(d);
    }
    if required {
        return Err(cx
            .err(
                "missing-quotes",
                format!("value of '{}' must be in double quotes", kw.name),
                off,
                off + s.len().max(1),
            )
            .with_hint(format!("write it as '{}:\"...\";'", kw.name)));
    }
    Ok((neg, s, off))
}

fn parse_u64(s: &str) -> Option<u64> {
    let s = s.trim();
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        return u64::from_str_radix(h, 16).ok();
    }
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn parse_i64(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Some(r) = s.strip_prefix('-') {
        return parse_u64(r).and_then(|v| i64::try_from(v).ok()).map(|v| -v);
    }
    parse_u64(s.strip_prefix('+').unwrap_or(s)).and_then(|v| i64::try_from(v).ok())
}

fn parse_value(cx: &Ctx, kw: &Kw, st: &OptState, s: &str) -> PResult<Value> {
    let s = s.trim();
    if let Some(v) = parse_i64(s) {
        return Ok(Value::Lit(v));
    }
    if !s.is_empty()
        && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
        && !s.as_bytes()[0].is_ascii_digit()
    {
        if st.vars.iter().any(|v| v == s) {
            return Ok(Value::Var(s.to_string()));
        }
        return Err(bad_value(
            cx,
            kw,
            format!(
                "'{s}' is neither a number nor a byte_extract/byte_math variable defined earlier"
            ),
        ));
    }
    Err(bad_value(cx, kw, format!("'{s}' is not a number")))
}

fn push(st: &mut OptState, cx: &Ctx, kw: &Kw, node: RuleOption) {
    st.options.push(Spanned {
        node,
        span: cx.span(kw.o0, kw.o1),
    });
}

fn parse_one(cx: &Ctx, kw: &Kw, st: &mut OptState, warnings: &mut Vec<Diagnostic>) -> PResult<()> {
    let name = kw.name;
    match name {
        "msg" => {
            let (v, v0, _) = need_value(cx, kw)?;
            let (_, inner, _) = unquote(cx, kw, v, v0, false, true)?;
            if st.has_msg {
                return Err(cx
                    .err("duplicate-msg", "duplicate 'msg' option", kw.o0, kw.o1)
                    .with_hint("a rule has exactly one msg"));
            }
            st.has_msg = true;
            let mut out = String::with_capacity(inner.len());
            let mut it = inner.chars();
            while let Some(c) = it.next() {
                if c == '\\' {
                    if let Some(n) = it.next() {
                        out.push(n);
                    }
                } else {
                    out.push(c);
                }
            }
            push(st, cx, kw, RuleOption::Msg(out));
        }
        "sid" | "rev" | "gid" => {
            let (v, _, _) = need_value(cx, kw)?;
            let n = parse_u64(v)
                .filter(|n| *n <= u64::from(u32::MAX))
                .ok_or_else(|| bad_value(cx, kw, "expected a number up to 4294967295"))?;
            let dup = st.options.iter().any(|o| o.node.keyword() == name);
            if dup {
                return Err(cx.err(
                    "duplicate-option",
                    format!("duplicate '{name}' option"),
                    kw.o0,
                    kw.o1,
                ));
            }
            let node = match name {
                "sid" => {
                    if n == 0 {
                        return Err(bad_value(cx, kw, "sid must be greater than 0"));
                    }
                    RuleOption::Sid(n)
                }
                "rev" => RuleOption::Rev(n),
                _ => RuleOption::Gid(n),
            };
            push(st, cx, kw, node);
        }
        "classtype" => {
            let (v, _, _) = need_value(cx, kw)?;
            if !v
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
            {
                return Err(bad_value(
                    cx,
                    kw,
                    "classtype names are letters, digits, '-' and '_'",
                ));
            }
            push(st, cx, kw, RuleOption::Classtype(v.to_string()));
        }
        "priority" => {
            let (v, _, _) = need_value(cx, kw)?;
            let p = parse_u64(v)
                .filter(|p| (1..=255).contains(p))
                .ok_or_else(|| bad_value(cx, kw, "priority must be 1..255"))?;
            push(st, cx, kw, RuleOption::Priority(p as u8));
        }
        "reference" => {
            let (v, _, _) = need_value(cx, kw)?;
            let (k, val) = v
                .split_once(',')
                .ok_or_else(|| bad_value(cx, kw, "expected 'type,value'"))?;
            let (k, val) = (k.trim(), val.trim());
            if k.is_empty() || val.is_empty() {
                return Err(bad_value(cx, kw, "expected 'type,value'"));
            }
            push(
                st,
                cx,
                kw,
                RuleOption::Reference {
                    kind: k.to_string(),
                    value: val.to_string(),
                },
            );
        }
        "metadata" => {
            let (v, _, _) = need_value(cx, kw)?;
            let mut entries = Vec::new();
            for item in v.split(',') {
                let item = item.trim();
                if item.is_empty() {
                    continue;
                }
                let (k, val) = match item.split_once(char::is_whitespace) {
                    Some((k, val)) => (k, val.trim()),
                    None => (item, ""),
                };
                entries.push((k.to_string(), val.to_string()));
            }
            push(st, cx, kw, RuleOption::Metadata(entries));
        }
        "target" => {
            let (v, _, _) = need_value(cx, kw)?;
            let t = match v {
                "src_ip" => Target::SrcIp,
                "dest_ip" => Target::DestIp,
                _ => return Err(bad_value(cx, kw, "expected src_ip or dest_ip")),
            };
            push(st, cx, kw, RuleOption::Target(t));
        }
        "requires" => {
            let (v, _, _) = need_value(cx, kw)?;
            push(st, cx, kw, RuleOption::Requires(v.to_string()));
        }
        "noalert" => {
            no_value(cx, kw)?;
            push(st, cx, kw, RuleOption::NoAlert);
        }
        "alert" => {
            no_value(cx, kw)?;
            push(st, cx, kw, RuleOption::Alert);
        }
        "content" | "uricontent" => {
            let (v, v0, _) = need_value(cx, kw)?;
            let (negated, inner, i0) = unquote(cx, kw, v, v0, true, true)?;
            let pattern = decode_content(cx, inner, i0)?;
            let content = Content {
                pattern,
                negated,
                buffer: (name == "uricontent").then_some(Buffer::HttpUri),
                ..Content::default()
            };
            push(st, cx, kw, RuleOption::Content(content));
            let bits = if name == "uricontent" { M_BUF } else { 0 };
            st.last_content = Some((st.options.len() - 1, bits));
        }
        "nocase" | "rawbytes" | "startswith" | "endswith" => {
            no_value(cx, kw)?;
            let bit = match name {
                "nocase" => M_NOCASE,
                "rawbytes" => M_RAW,
                "startswith" => M_STARTS,
                _ => M_ENDS,
            };
            let c = modifier_target(cx, kw, st, bit)?;
            match name {
                "nocase" => c.nocase = true,
                "rawbytes" => c.rawbytes = true,
                "startswith" => {
                    if c.depth.is_some()
                        || c.offset.is_some()
                        || c.distance.is_some()
                        || c.within.is_some()
                    {
                        return Err(cx
                            .err(
                                "bad-modifier",
                                "'startswith' cannot be combined with depth, offset, distance or within",
                                kw.o0,
                                kw.o1,
                            )
                            .with_hint("startswith already means 'depth:<len>; offset:0'"));
                    }
                    c.startswith = true;
                }
                _ => c.endswith = true,
            }
        }
        "depth" | "offset" | "distance" | "within" => {
            let (v, _, _) = need_value(cx, kw)?;
            let val = parse_value(cx, kw, st, v)?;
            let bit = match name {
                "depth" => M_DEPTH,
                "offset" => M_OFFSET,
                "distance" => M_DISTANCE,
                _ => M_WITHIN,
            };
            let c = modifier_target(cx, kw, st, bit)?;
            let relative = matches!(name, "distance" | "within");
            let conflict = if relative {
                c.depth.is_some() || c.offset.is_some()
            } else {
                c.distance.is_some() || c.within.is_some()
            };
            if conflict {
                return Err(cx
                    .err(
                        "bad-modifier",
                        format!(
                            "'{name}' cannot be mixed with {} on the same content",
                            if relative { "depth/offset" } else { "distance/within" }
                        ),
                        kw.o0,
                        kw.o1,
                    )
                    .with_hint("use either absolute (depth, offset) or relative (distance, within) modifiers"));
            }
            if c.startswith {
                return Err(cx.err(
                    "bad-modifier",
                    format!("'{name}' cannot be combined with 'startswith'"),
                    kw.o0,
                    kw.o1,
                ));
            }
            let len = c.pattern.len() as i64;
            if let Value::Lit(n) = val {
                match name {
                    "depth" if n < len => {
                        return Err(bad_value(
                            cx,
                            kw,
                            format!("depth {n} is smaller than the content length {len}"),
                        ))
                    }
                    "within" if n < len => {
                        return Err(bad_value(
                            cx,
                            kw,
                            format!("within {n} is smaller than the content length {len}"),
                        ))
                    }
                    "within" if n > MAX_RELATIVE => {
                        return Err(bad_value(cx, kw, "within is larger than 1 MiB"))
                    }
                    "distance" if n.abs() > MAX_RELATIVE => {
                        return Err(bad_value(cx, kw, "distance is outside -1 MiB..1 MiB"))
                    }
                    "depth" | "offset" if !(0..=65535).contains(&n) => {
                        return Err(bad_value(cx, kw, "must be 0..65535"))
                    }
                    _ => {}
                }
            }
            match name {
                "depth" => c.depth = Some(val),
                "offset" => c.offset = Some(val),
                "distance" => c.distance = Some(val),
                _ => c.within = Some(val),
            }
        }
        "fast_pattern" => {
            let fp = match kw.value(cx) {
                None => FastPattern::Yes,
                Some("only") => FastPattern::Only,
                Some(v) => {
                    let (a, b) = v.split_once(',').ok_or_else(|| {
                        bad_value(cx, kw, "expected 'only' or '<offset>,<length>'")
                    })?;
                    let a = parse_u64(a).and_then(|a| u16::try_from(a).ok());
                    let b = parse_u64(b).and_then(|b| u16::try_from(b).ok());
                    match (a, b) {
                        (Some(a), Some(b)) => FastPattern::Slice(a, b),
                        _ => return Err(bad_value(cx, kw, "expected '<offset>,<length>'")),
                    }
                }
            };
            if st.fast_pattern_seen {
                return Err(cx
                    .err(
                        "bad-modifier",
                        "'fast_pattern' can be used on only one content per rule",
                        kw.o0,
                        kw.o1,
                    )
                    .with_hint("remove the extra fast_pattern"));
            }
            st.fast_pattern_seen = true;
            let c = modifier_target(cx, kw, st, M_FAST)?;
            if let FastPattern::Slice(o, l) = fp {
                if l == 0 || usize::from(o) + usize::from(l) > c.pattern.len() {
                    return Err(bad_value(
                        cx,
                        kw,
                        "offset + length exceed the content length",
                    ));
                }
            }
            c.fast_pattern = Some(fp);
        }
        "pcre" => {
            let (v, v0, _) = need_value(cx, kw)?;
            let p = parse_pcre(cx, kw, v, v0)?;
            push(st, cx, kw, RuleOption::Pcre(p));
        }
        "isdataat" => {
            let (v, _, _) = need_value(cx, kw)?;
            let (negated, body) = match v.strip_prefix('!') {
                Some(r) => (true, r.trim_start()),
                None => (false, v),
            };
            let mut parts = body.split(',').map(str::trim);
            let value = parse_value(cx, kw, st, parts.next().unwrap_or(""))?;
            let (mut relative, mut rawbytes) = (false, false);
            for p in parts {
                match p {
                    "relative" => relative = true,
                    "rawbytes" => rawbytes = true,
                    _ => return Err(bad_value(cx, kw, format!("unknown option '{p}'"))),
                }
            }
            push(
                st,
                cx,
                kw,
                RuleOption::IsDataAt(IsDataAt {
                    negated,
                    value,
                    relative,
                    rawbytes,
                }),
            );
        }
        "bsize" | "dsize" => {
            let (v, _, _) = need_value(cx, kw)?;
            let cmp = parse_size_cmp(v)
                .ok_or_else(|| bad_value(cx, kw, "expected N, =N, !N, <N, >N, <=N, >=N or A<>B"))?;
            if name == "dsize" && size_cmp_max(cmp) > 65535 {
                return Err(bad_value(cx, kw, "dsize is at most 65535"));
            }
            push(
                st,
                cx,
                kw,
                if name == "bsize" {
                    RuleOption::Bsize(cmp)
                } else {
                    RuleOption::Dsize(cmp)
                },
            );
        }
        "itype" | "icode" => {
            let (v, _, _) = need_value(cx, kw)?;
            let cmp = parse_size_cmp(v)
                .ok_or_else(|| bad_value(cx, kw, "expected N, <N, >N or A<>B (0 to 255)"))?;
            if size_cmp_max(cmp) > 255 {
                return Err(bad_value(cx, kw, format!("{name} is at most 255")));
            }
            push(
                st,
                cx,
                kw,
                if name == "itype" {
                    RuleOption::Itype(cmp)
                } else {
                    RuleOption::Icode(cmp)
                },
            );
        }
        "byte_test" => {
            let (v, _, _) = need_value(cx, kw)?;
            let bt = parse_byte_test(cx, kw, st, v)?;
            push(st, cx, kw, RuleOption::ByteTest(bt));
        }
        "byte_jump" => {
            let (v, _, _) = need_value(cx, kw)?;
            let bj = parse_byte_jump(cx, kw, st, v)?;
            push(st, cx, kw, RuleOption::ByteJump(bj));
        }
        "byte_extract" => {
            let (v, _, _) = need_value(cx, kw)?;
            let be = parse_byte_extract(cx, kw, v)?;
            st.vars.push(be.name.clone());
            push(st, cx, kw, RuleOption::ByteExtract(be));
        }
        "byte_math" => {
            let (v, _, _) = need_value(cx, kw)?;
            let bm = parse_byte_math(cx, kw, st, v)?;
            st.vars.push(bm.result.clone());
            push(st, cx, kw, RuleOption::ByteMath(bm));
        }
        "flow" => {
            let (v, _, _) = need_value(cx, kw)?;
            if st.has_flow {
                return Err(cx
                    .err("duplicate-option", "duplicate 'flow' option", kw.o0, kw.o1)
                    .with_hint("combine the options into one: flow:established,to_server;"));
            }
            st.has_flow = true;
            let f = parse_flow(cx, kw, v)?;
            push(st, cx, kw, RuleOption::Flow(f));
        }
        "flowbits" => {
            let (v, _, _) = need_value(cx, kw)?;
            let fb = parse_flowbits(cx, kw, v)?;
            push(st, cx, kw, RuleOption::Flowbits(fb));
        }
        "xbits" => {
            let (v, _, _) = need_value(cx, kw)?;
            let xb = parse_xbits(cx, kw, v)?;
            push(st, cx, kw, RuleOption::Xbits(xb));
        }
        "threshold" | "detection_filter" => {
            let (v, _, _) = need_value(cx, kw)?;
            if st.has_threshold {
                return Err(cx.err(
                    "duplicate-option",
                    "only one threshold or detection_filter per rule",
                    kw.o0,
                    kw.o1,
                ));
            }
            st.has_threshold = true;
            let node = parse_threshold(cx, kw, v, name == "detection_filter")?;
            push(st, cx, kw, node);
        }
        "app-layer-protocol" => {
            let (v, v0, _) = need_value(cx, kw)?;
            let (negated, body, _) = unquote(cx, kw, v, v0, true, false)?;
            let (proto, mode) = match body.split_once(',') {
                Some((p, m)) => (p.trim(), Some(m.trim())),
                None => (body.trim(), None),
            };
            if let Some(m) = mode {
                if !matches!(
                    m,
                    "direction" | "to_server" | "to_client" | "either" | "final" | "original"
                ) {
                    return Err(bad_value(cx, kw, format!("unknown mode '{m}'")));
                }
            }
            let known = APP_PROTOS.contains(&proto) || matches!(proto, "failed" | "unknown");
            if !known {
                let d = bad_value(cx, kw, format!("unknown app-layer protocol '{proto}'"));
                return Err(match suggest(proto, APP_PROTOS.iter().copied()) {
                    Some(s) => d.with_hint(format!("did you mean '{s}'?")),
                    None => d,
                });
            }
            if negated && proto == "unknown" {
                return Err(bad_value(cx, kw, "'unknown' cannot be negated"));
            }
            push(
                st,
                cx,
                kw,
                RuleOption::AppLayerProtocol(AppLayerProtocol {
                    negated,
                    proto: proto.to_string(),
                    mode: mode.map(str::to_string),
                }),
            );
        }
        "app-layer-event" => {
            let (v, _, _) = need_value(cx, kw)?;
            if v.contains(char::is_whitespace) {
                return Err(bad_value(cx, kw, "event names contain no spaces"));
            }
            push(st, cx, kw, RuleOption::AppLayerEvent(v.to_string()));
        }
        "ssl_state" => {
            let (v, _, _) = need_value(cx, kw)?;
            let mut states = Vec::new();
            for part in v.split(['|', ',']) {
                let part = part.trim();
                let (neg, n) = match part.strip_prefix('!') {
                    Some(r) => (true, r.trim()),
                    None => (false, part),
                };
                if !matches!(
                    n,
                    "client_hello" | "server_hello" | "client_keyx" | "server_keyx" | "unknown"
                ) {
                    return Err(bad_value(cx, kw, format!("unknown ssl state '{n}'")));
                }
                states.push((neg, n.to_string()));
            }
            push(st, cx, kw, RuleOption::SslState(states));
        }
        "flags" => {
            let (v, _, _) = need_value(cx, kw)?;
            let f = parse_tcp_flags(v).ok_or_else(|| {
                bad_value(
                    cx,
                    kw,
                    "expected flags from FSRPAUCE0 with optional +*! and ,ignore-mask",
                )
            })?;
            push(st, cx, kw, RuleOption::Flags(f));
        }
        "absent" => {
            let or_else = match kw.value(cx) {
                None => false,
                Some("or_else") => true,
                Some(_) => return Err(bad_value(cx, kw, "expected nothing or 'or_else'")),
            };
            push(st, cx, kw, RuleOption::Absent { or_else });
        }
        _ => {
            if let Some(buf) = Buffer::from_sticky(name) {
                let node = match kw.value(cx) {
                    None => RuleOption::Buffer(buf),
                    Some("to_server") => RuleOption::BufferDir {
                        buffer: buf,
                        dir: FlowDir::ToServer,
                    },
                    Some("to_client") => RuleOption::BufferDir {
                        buffer: buf,
                        dir: FlowDir::ToClient,
                    },
                    Some(_) => return Err(bad_value(
                        cx,
                        kw,
                        "a sticky buffer takes no value, or 'to_server'/'to_client' in '=>' rules",
                    )),
                };
                push(st, cx, kw, node);
                return Ok(());
            }
            if let Some(buf) = Buffer::from_legacy(name) {
                no_value(cx, kw)?;
                let c = modifier_target(cx, kw, st, M_BUF)?;
                c.buffer = Some(buf);
                return Ok(());
            }
            if keywords::TRANSFORMS.contains(&name) {
                let t = parse_transform(cx, kw)?;
                push(st, cx, kw, RuleOption::Transform(t));
                return Ok(());
            }
            if keywords::is_unsupported(name) {
                let value = kw.value(cx).map(str::to_string);
                push(
                    st,
                    cx,
                    kw,
                    RuleOption::Unsupported {
                        name: name.to_string(),
                        value,
                    },
                );
                return Ok(());
            }
            if name.is_empty() {
                // Suricata rejects an empty option too; say what it most likely is.
                return Err(cx
                    .err(
                        "empty-option",
                        "empty option (a stray ';'?)",
                        kw.n0,
                        kw.n1.max(kw.n0 + 1),
                    )
                    .with_hint("remove the extra ';' between the options"));
            }
            let d = cx.err(
                "unknown-keyword",
                format!("unknown keyword '{name}'"),
                kw.n0,
                kw.n1.max(kw.n0 + 1),
            );
            let d = match suggest(name, keywords::known_keywords()) {
                Some(s) => d.with_hint(format!("did you mean '{s}'?")),
                None => d.with_hint("see `suricata --list-keywords` for valid keywords"),
            };
            let _ = warnings;
            return Err(d);
        }
    }
    Ok(())
}

/// The content a modifier binds to (the last content), checking the modifier is not repeated.
fn modifier_target<'s>(
    cx: &Ctx,
    kw: &Kw,
    st: &'s mut OptState,
    bit: u32,
) -> PResult<&'s mut Content> {
    let Some((idx, seen)) = st.last_content.as_mut() else {
        return Err(cx
            .err(
                "modifier-without-content",
                format!("'{}' needs a preceding 'content'", kw.name),
                kw.o0,
                kw.o1,
            )
            .with_hint("content modifiers apply to the content right before them"));
    };
    if *seen & bit != 0 {
        return Err(cx.err(
            "bad-modifier",
            format!("'{}' is given twice for the same content", kw.name),
            kw.o0,
            kw.o1,
        ));
    }
    *seen |= bit;
    match st.options.get_mut(*idx).map(|o| &mut o.node) {
        Some(RuleOption::Content(c)) => Ok(c),
        _ => Err(cx.err("internal", "content modifier target lost", kw.o0, kw.o1)),
    }
}

/// Decodes a content string (outer quotes already removed). `base` is the offset of `s`.
fn decode_content(cx: &Ctx, s: &str, base: usize) -> PResult<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut hex = false;
    let mut hex_start = 0;
    let mut nibble: Option<u8> = None;
    let mut i = 0;
    let err = |code: &str, msg: String, a: usize, e: usize, hint: &str| {
        cx.err(code, msg, base + a, base + e)
            .with_hint(hint.to_string())
    };
    while i < b.len() {
        let c = b[i];
        if c == b'|' {
            if hex && nibble.is_some() {
                return Err(err(
                    "bad-content",
                    "odd number of hex digits in content".into(),
                    hex_start,
                    i + 1,
                    "hex bytes are pairs of digits, e.g. |0D 0A|",
                ));
            }
            hex = !hex;
            hex_start = i;
            i += 1;
            continue;
        }
        if hex {
            match c {
                b' ' | b',' => {}
                _ if c.is_ascii_hexdigit() => {
                    let d = (c as char).to_digit(16).unwrap_or(0) as u8;
                    match nibble.take() {
                        Some(h) => out.push(h << 4 | d),
                        None => nibble = Some(d),
                    }
                }
                _ => {
                    return Err(err(
                        "bad-content",
                        format!("invalid character '{}' in hex content", c as char),
                        i,
                        i + 1,
                        "inside |...| only hex digit pairs and spaces are allowed",
                    ))
                }
            }
            i += 1;
            continue;
        }
        match c {
            b'\\' => {
                match b.get(i + 1) {
                    Some(&n @ (b'\\' | b'"' | b';' | b':')) => out.push(n),
                    Some(_) => {
                        let ch = s[i + 1..].chars().next().unwrap_or('?');
                        return Err(err(
                            "bad-content",
                            format!("invalid escape '\\{ch}' in content"),
                            i,
                            i + 1 + ch.len_utf8(),
                            "only \\\\, \\\", \\; and \\: are escapes; write other bytes in hex, e.g. |5C|",
                        ));
                    }
                    None => {
                        return Err(err(
                            "bad-content",
                            "content ends with a lone '\\'".into(),
                            i,
                            i + 1,
                            "write a backslash as \\\\ or |5C|",
                        ))
                    }
                }
                i += 2;
            }
            b'"' => {
                return Err(err(
                    "bad-content",
                    "unescaped '\"' inside content".into(),
                    i,
                    i + 1,
                    "write a quote as \\\" or |22|",
                ))
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    if hex {
        return Err(err(
            "bad-content",
            "unclosed '|' hex section in content".into(),
            hex_start,
            hex_start + 1,
            "close the hex bytes with '|'; write a literal pipe as |7C|",
        ));
    }
    if out.is_empty() {
        return Err(cx
            .err(
                "bad-content",
                "empty content",
                base.saturating_sub(1),
                base + b.len() + 1,
            )
            .with_hint("a content needs at least one byte"));
    }
    if out.len() > 65535 {
        return Err(cx.err(
            "bad-content",
            "content is longer than 65535 bytes",
            base,
            base + b.len(),
        ));
    }
    Ok(out)
}

fn parse_pcre(cx: &Ctx, kw: &Kw, v: &str, v0: usize) -> PResult<Pcre> {
    // Suricata accepts an unquoted regex too (`pcre:/one/R;`).
    let (negated, inner, _) = unquote(cx, kw, v, v0, true, false)?;
    // Capture lists come after the regex: ", flow:name, pkt:name, alert:name".
    let mut cut = inner.len();
    for tag in ["flow:", "pkt:", "alert:"] {
        let mut from = 0;
        while let Some(i) = inner[from..].find(tag) {
            let at = from + i;
            let before = inner[..at].trim_end();
            if before.ends_with(',') && before.len() > 1 {
                let slash_before = before[..before.len() - 1].trim_end();
                if slash_before.rfind('/').is_some() {
                    let comma = before.len() - 1;
                    let flags = &slash_before[slash_before.rfind('/').map_or(0, |p| p + 1)..];
                    if flags.bytes().all(|c| c.is_ascii_alphabetic()) {
                        cut = cut.min(comma);
                    }
                }
            }
            from = at + tag.len();
        }
    }
    let (re_part, cap_part) = (&inner[..cut], &inner[cut..]);
    let re_part = re_part.trim_end();
    let captures: Vec<String> = cap_part
        .trim_start_matches(',')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let Some(body) = re_part.strip_prefix('/') else {
        return Err(bad_value(cx, kw, "pcre must look like \"/regex/flags\""));
    };
    let Some(last) = body.rfind('/') else {
        return Err(bad_value(cx, kw, "pcre is missing the closing '/'"));
    };
    let pattern = &body[..last];
    let flag_s = &body[last + 1..];
    let mut flags = PcreFlags::default();
    let mut buffer = None;
    for f in flag_s.chars() {
        let b = match f {
            'i' => {
                flags.caseless = true;
                None
            }
            's' => {
                flags.dotall = true;
                None
            }
            'm' => {
                flags.multiline = true;
                None
            }
            'x' => {
                flags.extended = true;
                None
            }
            'A' => {
                flags.anchored = true;
                None
            }
            'E' => {
                flags.dollar_endonly = true;
                None
            }
            'G' => {
                flags.ungreedy = true;
                None
            }
            'O' => {
                flags.override_limit = true;
                None
            }
            'R' => {
                flags.relative = true;
                None
            }
            'B' => {
                flags.rawbytes = true;
                None
            }
            c => match pcre_buffer_flag(c) {
                Some(b) => Some(b),
                None => return Err(bad_value(cx, kw, format!("unknown pcre flag '{f}'"))),
            },
        };
        if let Some(b) = b {
            if buffer.is_some() {
                return Err(bad_value(cx, kw, "more than one buffer flag"));
            }
            buffer = Some(b);
        }
    }
    for c in &captures {
        let ok = c
            .split_once(':')
            .is_some_and(|(k, n)| matches!(k, "flow" | "pkt" | "alert") && !n.is_empty());
        if !ok {
            return Err(bad_value(cx, kw, format!("bad capture '{c}'")));
        }
    }
    Ok(Pcre {
        pattern: pattern.to_string(),
        flags,
        negated,
        buffer,
        captures,
    })
}

/// Legacy pcre buffer flag letters.
pub(crate) fn pcre_buffer_flag(c: char) -> Option<Buffer> {
    Some(match c {
        'U' => Buffer::HttpUri,
        'I' => Buffer::HttpUriRaw,
        'P' => Buffer::HttpRequestBody,
        'Q' => Buffer::HttpResponseBody,
        'H' => Buffer::HttpHeader,
        'D' => Buffer::HttpHeaderRaw,
        'M' => Buffer::HttpMethod,
        'C' => Buffer::HttpCookie,
        'S' => Buffer::HttpStatCode,
        'Y' => Buffer::HttpStatMsg,
        'V' => Buffer::HttpUserAgent,
        'W' => Buffer::HttpHost,
        'Z' => Buffer::HttpHostRaw,
        _ => return None,
    })
}

/// Inverse of [`pcre_buffer_flag`].
pub(crate) fn pcre_flag_for_buffer(b: Buffer) -> Option<char> {
    "UIPQHDMCSYVWZ"
        .chars()
        .find(|&c| pcre_buffer_flag(c) == Some(b))
}

/// The largest number a size comparison names (for range checks of `dsize`, `itype`...).
fn size_cmp_max(c: SizeCmp) -> u64 {
    match c {
        SizeCmp::Between(_, b) => b,
        SizeCmp::Eq(n)
        | SizeCmp::Ne(n)
        | SizeCmp::Lt(n)
        | SizeCmp::Gt(n)
        | SizeCmp::Le(n)
        | SizeCmp::Ge(n) => n,
    }
}

fn parse_size_cmp(v: &str) -> Option<SizeCmp> {
    let v = v.trim();
    if let Some((a, b)) = v.split_once("<>") {
        let (a, b) = (parse_u64(a)?, parse_u64(b)?);
        return (a < b).then_some(SizeCmp::Between(a, b));
    }
    let (op, rest) = if let Some(r) = v.strip_prefix("<=") {
        ("<=", r)
    } else if let Some(r) = v.strip_prefix(">=") {
        (">=", r)
    } else if let Some(r) = v.strip_prefix('<') {
        ("<", r)
    } else if let Some(r) = v.strip_prefix('>') {
        (">", r)
    } else if let Some(r) = v.strip_prefix('!') {
        ("!", r)
    } else if let Some(r) = v.strip_prefix('=') {
        ("=", r)
    } else {
        ("=", v)
    };
    if op == "=" {
        if let Some((a, b)) = rest.split_once('-') {
            let (a, b) = (parse_u64(a)?, parse_u64(b)?);
            return (a < b).then_some(SizeCmp::Between(a, b));
        }
    }
    let n = parse_u64(rest)?;
    Some(match op {
        "<=" => SizeCmp::Le(n),
        ">=" => SizeCmp::Ge(n),
        "<" => SizeCmp::Lt(n),
        ">" => SizeCmp::Gt(n),
        "!" => SizeCmp::Ne(n),
        _ => SizeCmp::Eq(n),
    })
}

/// Parses the shared `byte_*` flags; returns false for an unknown word.
fn byte_flag(opts: &mut ByteOpts, word: &str) -> bool {
    match word {
        "relative" => opts.relative = true,
        "big" => opts.endian = Some(Endian::Big),
        "little" => opts.endian = Some(Endian::Little),
        "dce" => opts.endian = Some(Endian::Dce),
        "string" => {
            if opts.string.is_none() {
                opts.string = Some(NumBase::Dec);
            }
        }
        "hex" => opts.string = Some(NumBase::Hex),
        "dec" => opts.string = Some(NumBase::Dec),
        "oct" => opts.string = Some(NumBase::Oct),
        _ => return false,
    }
    true
}

/// Byte count that may also be a variable (byte_test / byte_jump).
fn parse_nbytes_value(
    cx: &Ctx,
    kw: &Kw,
    st: &OptState,
    s: &str,
    opts: &ByteOpts,
) -> PResult<Value> {
    if parse_u64(s).is_none() && valid_ident(s.trim()) {
        return parse_value(cx, kw, st, s);
    }
    parse_nbytes(cx, kw, s, opts).map(|n| Value::Lit(i64::from(n)))
}

fn parse_nbytes(cx: &Ctx, kw: &Kw, s: &str, opts: &ByteOpts) -> PResult<u8> {
    let n = parse_u64(s).ok_or_else(|| bad_value(cx, kw, format!("'{s}' is not a byte count")))?;
    let max = if opts.string.is_some() { 23 } else { 8 };
    // With `string`, 0 means "the rest of the buffer" (used by ET Open on http.content_len).
    if (n == 0 && opts.string.is_none()) || n > max {
        return Err(bad_value(
            cx,
            kw,
            if max == 8 {
                "byte count must be 1..8 without 'string'".to_string()
            } else {
                format!("byte count must be 0..{max} with 'string'")
            },
        ));
    }
    Ok(n as u8)
}

fn parse_byte_test(cx: &Ctx, kw: &Kw, st: &OptState, v: &str) -> PResult<ByteTest> {
    let parts: Vec<&str> = v.split(',').map(str::trim).collect();
    if parts.len() < 4 {
        return Err(bad_value(
            cx,
            kw,
            "expected 'bytes,op,value,offset[,options]'",
        ));
    }
    let mut opts = ByteOpts::default();
    for p in &parts[4..] {
        if byte_flag(&mut opts, p) {
            continue;
        }
        if let Some(m) = p.strip_prefix("bitmask") {
            opts.bitmask =
                Some(parse_u64(m.trim()).ok_or_else(|| bad_value(cx, kw, "bad bitmask"))?);
            continue;
        }
        return Err(bad_value(cx, kw, format!("unknown option '{p}'")));
    }
    let nbytes = parse_nbytes_value(cx, kw, st, parts[0], &opts)?;
    let (negated, op_s) = match parts[1].strip_prefix('!') {
        Some(r) => (true, r.trim()),
        None => (false, parts[1]),
    };
    let op = match op_s {
        "<" => ByteTestOp::Lt,
        ">" => ByteTestOp::Gt,
        "=" => ByteTestOp::Eq,
        "<=" => ByteTestOp::Le,
        ">=" => ByteTestOp::Ge,
        "&" => ByteTestOp::And,
        "^" => ByteTestOp::Xor,
        _ => return Err(bad_value(cx, kw, format!("unknown operator '{op_s}'"))),
    };
    Ok(ByteTest {
        nbytes,
        negated,
        op,
        value: parse_value(cx, kw, st, parts[2])?,
        offset: parse_value(cx, kw, st, parts[3])?,
        opts,
    })
}

fn parse_byte_jump(cx: &Ctx, kw: &Kw, st: &OptState, v: &str) -> PResult<ByteJump> {
    let parts: Vec<&str> = v.split(',').map(str::trim).collect();
    if parts.len() < 2 {
        return Err(bad_value(cx, kw, "expected 'bytes,offset[,options]'"));
    }
    let mut bj = ByteJump {
        nbytes: Value::Lit(0),
        offset: Value::Lit(0),
        opts: ByteOpts::default(),
        multiplier: None,
        align: false,
        from_beginning: false,
        from_end: false,
        post_offset: None,
    };
    for p in &parts[2..] {
        if byte_flag(&mut bj.opts, p) {
            continue;
        }
        let (k, arg) = match p.split_once(char::is_whitespace) {
            Some((k, a)) => (k, Some(a.trim())),
            None => (*p, None),
        };
        match (k, arg) {
            ("align", None) => bj.align = true,
            ("from_beginning", None) => bj.from_beginning = true,
            ("from_end", None) => bj.from_end = true,
            ("multiplier", Some(a)) => {
                bj.multiplier = Some(
                    parse_u64(a)
                        .and_then(|m| u32::try_from(m).ok())
                        .filter(|m| *m > 0)
                        .ok_or_else(|| bad_value(cx, kw, "bad multiplier"))?,
                )
            }
            ("post_offset", Some(a)) => {
                bj.post_offset =
                    Some(parse_i64(a).ok_or_else(|| bad_value(cx, kw, "bad post_offset"))?)
            }
            ("bitmask", Some(a)) => {
                bj.opts.bitmask =
                    Some(parse_u64(a).ok_or_else(|| bad_value(cx, kw, "bad bitmask"))?)
            }
            _ => return Err(bad_value(cx, kw, format!("unknown option '{p}'"))),
        }
    }
    if bj.from_beginning && bj.from_end {
        return Err(bad_value(
            cx,
            kw,
            "from_beginning and from_end exclude each other",
        ));
    }
    bj.nbytes = parse_nbytes_value(cx, kw, st, parts[0], &bj.opts)?;
    bj.offset = parse_value(cx, kw, st, parts[1])?;
    Ok(bj)
}

fn valid_ident(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
        && !s.as_bytes()[0].is_ascii_digit()
}

fn parse_byte_extract(cx: &Ctx, kw: &Kw, v: &str) -> PResult<ByteExtract> {
    let parts: Vec<&str> = v.split(',').map(str::trim).collect();
    if parts.len() < 3 {
        return Err(bad_value(cx, kw, "expected 'bytes,offset,name[,options]'"));
    }
    let mut be = ByteExtract {
        nbytes: 0,
        offset: parse_i64(parts[1]).ok_or_else(|| bad_value(cx, kw, "bad offset"))?,
        name: parts[2].to_string(),
        opts: ByteOpts::default(),
        multiplier: None,
        align: None,
    };
    if !valid_ident(parts[2]) {
        return Err(bad_value(
            cx,
            kw,
            format!("bad variable name '{}'", parts[2]),
        ));
    }
    for p in &parts[3..] {
        if byte_flag(&mut be.opts, p) {
            continue;
        }
        let (k, arg) = match p.split_once(char::is_whitespace) {
            Some((k, a)) => (k, a.trim()),
            None => (*p, ""),
        };
        match k {
            "multiplier" => {
                be.multiplier = Some(
                    parse_u64(arg)
                        .and_then(|m| u32::try_from(m).ok())
                        .filter(|m| *m > 0)
                        .ok_or_else(|| bad_value(cx, kw, "bad multiplier"))?,
                )
            }
            "align" => {
                be.align = Some(
                    parse_u64(arg)
                        .filter(|a| *a == 2 || *a == 4)
                        .ok_or_else(|| bad_value(cx, kw, "align must be 2 or 4"))?
                        as u8,
                )
            }
            "bitmask" => {
                be.opts.bitmask =
                    Some(parse_u64(arg).ok_or_else(|| bad_value(cx, kw, "bad bitmask"))?)
            }
            _ => return Err(bad_value(cx, kw, format!("unknown option '{p}'"))),
        }
    }
    be.nbytes = parse_nbytes(cx, kw, parts[0], &be.opts)?;
    Ok(be)
}

fn parse_byte_math(cx: &Ctx, kw: &Kw, st: &OptState, v: &str) -> PResult<ByteMath> {
    let mut nbytes = None;
    let mut offset = None;
    let mut oper = None;
    let mut rvalue = None;
    let mut result = None;
    let mut opts = ByteOpts::default();
    for p in v.split(',').map(str::trim) {
        let (k, arg) = match p.split_once(char::is_whitespace) {
            Some((k, a)) => (k, a.trim()),
            None => (p, ""),
        };
        match k {
            "bytes" => nbytes = Some(arg),
            "offset" => {
                offset = Some(parse_i64(arg).ok_or_else(|| bad_value(cx, kw, "bad offset"))?)
            }
            "oper" => {
                oper = Some(match arg {
                    "+" => MathOp::Add,
                    "-" => MathOp::Sub,
                    "*" => MathOp::Mul,
                    "/" => MathOp::Div,
                    "<<" => MathOp::Shl,
                    ">>" => MathOp::Shr,
                    _ => return Err(bad_value(cx, kw, format!("unknown oper '{arg}'"))),
                })
            }
            "rvalue" => rvalue = Some(parse_value(cx, kw, st, arg)?),
            "result" => {
                if !valid_ident(arg) {
                    return Err(bad_value(cx, kw, format!("bad result name '{arg}'")));
                }
                result = Some(arg.to_string())
            }
            "endian" => {
                opts.endian = Some(match arg {
                    "big" => Endian::Big,
                    "little" => Endian::Little,
                    _ => return Err(bad_value(cx, kw, "endian must be big or little")),
                })
            }
            "string" => {
                opts.string = Some(match arg {
                    "hex" => NumBase::Hex,
                    "dec" => NumBase::Dec,
                    "oct" => NumBase::Oct,
                    _ => return Err(bad_value(cx, kw, "string must be hex, dec or oct")),
                })
            }
            "bitmask" => {
                opts.bitmask = Some(parse_u64(arg).ok_or_else(|| bad_value(cx, kw, "bad bitmask"))?)
            }
            "relative" if arg.is_empty() => opts.relative = true,
            "dce" if arg.is_empty() => opts.endian = Some(Endian::Dce),
            _ => return Err(bad_value(cx, kw, format!("unknown option '{p}'"))),
        }
    }
    let missing = |what: &str| bad_value(cx, kw, format!("'{what}' is required"));
    let nb = nbytes.ok_or_else(|| missing("bytes"))?;
    let nbytes = parse_nbytes(cx, kw, nb, &opts)?;
    if nbytes > 4 && opts.string.is_none() {
        return Err(bad_value(cx, kw, "byte_math reads at most 4 bytes"));
    }
    Ok(ByteMath {
        nbytes,
        offset: offset.ok_or_else(|| missing("offset"))?,
        oper: oper.ok_or_else(|| missing("oper"))?,
        rvalue: rvalue.ok_or_else(|| missing("rvalue"))?,
        result: result.ok_or_else(|| missing("result"))?,
        opts,
    })
}

fn parse_flow(cx: &Ctx, kw: &Kw, v: &str) -> PResult<Flow> {
    let mut f = Flow::default();
    let parts: Vec<&str> = v.split(',').map(str::trim).collect();
    if parts.len() > 3 {
        return Err(bad_value(cx, kw, "at most 3 flow options"));
    }
    for p in parts {
        let lower = p.to_ascii_lowercase();
        let dup = || {
            bad_value(
                cx,
                kw,
                format!("'{p}' conflicts with an earlier flow option"),
            )
        };
        match lower.as_str() {
            "to_server" | "from_client" | "to_client" | "from_server" => {
                if f.dir.is_some() {
                    return Err(dup());
                }
                f.dir = Some(if matches!(lower.as_str(), "to_server" | "from_client") {
                    FlowDir::ToServer
                } else {
                    FlowDir::ToClient
                });
            }
            "established" | "not_established" | "stateless" => {
                if f.state.is_some() {
                    return Err(dup());
                }
                f.state = Some(match lower.as_str() {
                    "established" => FlowState::Established,
                    "not_established" => FlowState::NotEstablished,
                    _ => FlowState::Stateless,
                });
            }
            "only_stream" | "no_stream" => {
                if f.stream.is_some() {
                    return Err(dup());
                }
                f.stream = Some(if lower == "only_stream" {
                    FlowStream::OnlyStream
                } else {
                    FlowStream::NoStream
                });
            }
            "only_frag" | "no_frag" => {
                if f.frag.is_some() {
                    return Err(dup());
                }
                f.frag = Some(if lower == "only_frag" {
                    FlowFrag::OnlyFrag
                } else {
                    FlowFrag::NoFrag
                });
            }
            _ => {
                let names = [
                    "to_server",
                    "to_client",
                    "from_client",
                    "from_server",
                    "established",
                    "not_established",
                    "stateless",
                    "only_stream",
                    "no_stream",
                    "only_frag",
                    "no_frag",
                ];
                let d = bad_value(cx, kw, format!("unknown flow option '{p}'"));
                return Err(match suggest(&lower, names) {
                    Some(s) => d.with_hint(format!("did you mean '{s}'?")),
                    None => d,
                });
            }
        }
    }
    Ok(f)
}

fn valid_bit_name(s: &str) -> bool {
    !s.is_empty() && !s.contains(char::is_whitespace)
}

fn bits_cmd(s: &str) -> Option<BitsCmd> {
    Some(match s {
        "set" => BitsCmd::Set,
        "unset" => BitsCmd::Unset,
        "toggle" => BitsCmd::Toggle,
        "isset" => BitsCmd::IsSet,
        "isnotset" => BitsCmd::IsNotSet,
        _ => return None,
    })
}

fn parse_flowbits(cx: &Ctx, kw: &Kw, v: &str) -> PResult<Flowbits> {
    if v == "noalert" {
        return Ok(Flowbits::NoAlert);
    }
    let (c, names) = v.split_once(',').ok_or_else(|| {
        bad_value(
            cx,
            kw,
            "expected 'set|unset|toggle|isset|isnotset,name' or 'noalert'",
        )
    })?;
    let cmd = bits_cmd(c.trim())
        .ok_or_else(|| bad_value(cx, kw, format!("unknown flowbits command '{}'", c.trim())))?;
    let list: Vec<String> = names.split('|').map(|n| n.trim().to_string()).collect();
    if list.iter().any(|n| !valid_bit_name(n)) {
        return Err(bad_value(
            cx,
            kw,
            "flowbit names are non-empty and contain no spaces",
        ));
    }
    Ok(Flowbits::Cmd(cmd, list))
}

fn parse_xbits(cx: &Ctx, kw: &Kw, v: &str) -> PResult<Xbits> {
    let parts: Vec<&str> = v.split(',').map(str::trim).collect();
    if parts.len() < 3 {
        return Err(bad_value(
            cx,
            kw,
            "expected 'cmd,name,track ip_src|ip_dst|ip_pair|tx[,expire N]'",
        ));
    }
    let cmd = bits_cmd(parts[0])
        .ok_or_else(|| bad_value(cx, kw, format!("unknown xbits command '{}'", parts[0])))?;
    if !valid_bit_name(parts[1]) {
        return Err(bad_value(cx, kw, "bad xbit name"));
    }
    let track = match parts[2].split_whitespace().collect::<Vec<_>>().as_slice() {
        ["track", "ip_src"] => Track::Src,
        ["track", "ip_dst"] => Track::Dst,
        ["track", "ip_pair"] => Track::Pair,
        ["track", "tx"] => Track::Tx,
        _ => {
            return Err(bad_value(
                cx,
                kw,
                "expected 'track ip_src|ip_dst|ip_pair|tx'",
            ))
        }
    };
    let mut expire = None;
    for p in &parts[3..] {
        match p.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["expire", n] => {
                expire = Some(
                    parse_u64(n)
                        .and_then(|n| u32::try_from(n).ok())
                        .filter(|n| *n > 0)
                        .ok_or_else(|| bad_value(cx, kw, "bad expire"))?,
                )
            }
            _ => return Err(bad_value(cx, kw, format!("unknown option '{p}'"))),
        }
    }
    Ok(Xbits {
        cmd,
        name: parts[1].to_string(),
        track,
        expire,
    })
}

fn parse_threshold(cx: &Ctx, kw: &Kw, v: &str, filter: bool) -> PResult<RuleOption> {
    let mut kind = None;
    let mut track = None;
    let mut count = None;
    let mut seconds = None;
    let mut multiplier = None;
    let mut unique_on = None;
    for p in v.split(',').map(str::trim) {
        let words: Vec<&str> = p.split_whitespace().collect();
        let [k, a] = words.as_slice() else {
            return Err(bad_value(
                cx,
                kw,
                format!("expected 'key value', got '{p}'"),
            ));
        };
        let num = |s: &str| {
            parse_u64(s)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| bad_value(cx, kw, format!("'{s}' is not a number")))
        };
        match *k {
            "type" if !filter => {
                kind = Some(match *a {
                    "limit" => ThresholdKind::Limit,
                    "threshold" => ThresholdKind::Threshold,
                    "both" => ThresholdKind::Both,
                    "backoff" => ThresholdKind::Backoff,
                    _ => return Err(bad_value(cx, kw, format!("unknown type '{a}'"))),
                })
            }
            "track" => {
                track = Some(match *a {
                    "by_src" => Track::Src,
                    "by_dst" => Track::Dst,
                    "by_rule" => Track::Rule,
                    "by_both" => Track::Both,
                    "by_flow" => Track::Flow,
                    _ => return Err(bad_value(cx, kw, format!("unknown track '{a}'"))),
                })
            }
            "count" => count = Some(num(a)?),
            "seconds" => seconds = Some(num(a)?),
            "multiplier" if !filter => multiplier = Some(num(a)?),
            "unique_on" if filter => {
                unique_on = Some(match *a {
                    "src_port" => UniqueOn::SrcPort,
                    "dst_port" => UniqueOn::DstPort,
                    _ => {
                        return Err(bad_value(
                            cx,
                            kw,
                            format!("unique_on is src_port or dst_port, got '{a}'"),
                        ))
                    }
                })
            }
            _ => return Err(bad_value(cx, kw, format!("unknown key '{k}'"))),
        }
    }
    let missing = |w: &str| bad_value(cx, kw, format!("'{w}' is required"));
    let track = track.ok_or_else(|| missing("track"))?;
    let count = count.ok_or_else(|| missing("count"))?;
    if filter {
        return Ok(RuleOption::DetectionFilter(DetectionFilter {
            track,
            count,
            seconds: seconds.ok_or_else(|| missing("seconds"))?,
            unique_on,
        }));
    }
    let kind = kind.ok_or_else(|| missing("type"))?;
    let seconds = if kind == ThresholdKind::Backoff {
        if track != Track::Flow {
            return Err(bad_value(cx, kw, "backoff needs 'track by_flow'"));
        }
        multiplier.ok_or_else(|| missing("multiplier"))?;
        seconds.unwrap_or(0)
    } else {
        seconds.ok_or_else(|| missing("seconds"))?
    };
    Ok(RuleOption::Threshold(Threshold {
        kind,
        track,
        count,
        seconds,
        multiplier,
    }))
}

fn parse_transform(cx: &Ctx, kw: &Kw) -> PResult<Transform> {
    let t = match kw.name {
        "dotprefix" => Transform::DotPrefix,
        "strip_whitespace" => Transform::StripWhitespace,
        "compress_whitespace" => Transform::CompressWhitespace,
        "to_lowercase" => Transform::ToLowercase,
        "to_uppercase" => Transform::ToUppercase,
        "to_md5" => Transform::ToMd5,
        "to_sha1" => Transform::ToSha1,
        "to_sha256" => Transform::ToSha256,
        "url_decode" => Transform::UrlDecode,
        "domain" => Transform::Domain,
        "tld" => Transform::Tld,
        "header_lowercase" => Transform::HeaderLowercase,
        "strip_pseudo_headers" => Transform::StripPseudoHeaders,
        "xor" => {
            let (v, v0, _) = need_value(cx, kw)?;
            let (_, inner, _) = unquote(cx, kw, v, v0, false, true)?;
            let hexs = inner.as_bytes();
            if hexs.is_empty() || hexs.len() % 2 != 0 || !hexs.iter().all(u8::is_ascii_hexdigit) {
                return Err(bad_value(
                    cx,
                    kw,
                    "xor key must be an even number of hex digits",
                ));
            }
            let key = hexs
                .chunks(2)
                .map(|p| {
                    let s = std::str::from_utf8(p).unwrap_or("00");
                    u8::from_str_radix(s, 16).unwrap_or(0)
                })
                .collect();
            return Ok(Transform::Xor(key));
        }
        "pcrexform" => {
            let (v, v0, _) = need_value(cx, kw)?;
            let (_, inner, _) = unquote(cx, kw, v, v0, false, true)?;
            return Ok(Transform::PcreXform(inner.to_string()));
        }
        "from_base64" => {
            return Ok(Transform::FromBase64(
                kw.value(cx).unwrap_or("").to_string(),
            ))
        }
        _ => return Err(cx.err("internal", "unknown transform", kw.o0, kw.o1)),
    };
    no_value(cx, kw)?;
    Ok(t)
}

fn parse_tcp_flags(v: &str) -> Option<TcpFlags> {
    let (main, ignore) = match v.split_once(',') {
        Some((m, i)) => (m.trim(), Some(i.trim())),
        None => (v.trim(), None),
    };
    let bit = |c: char| -> Option<u8> {
        Some(match c.to_ascii_uppercase() {
            'F' => 1,
            'S' => 2,
            'R' => 4,
            'P' => 8,
            'A' => 16,
            'U' => 32,
            'E' | '2' => 64,
            'C' | '1' => 128,
            _ => return None,
        })
    };
    let mut f = TcpFlags::default();
    let mut zero = false;
    for c in main.chars() {
        match c {
            '+' | '*' | '!' => {
                if f.modifier.is_some() {
                    return None;
                }
                f.modifier = Some(c);
            }
            '0' => zero = true,
            c => f.flags |= bit(c)?,
        }
    }
    if zero && f.flags != 0 {
        return None;
    }
    if !zero && f.flags == 0 {
        return None;
    }
    if let Some(i) = ignore {
        for c in i.chars() {
            f.ignore |= bit(c)?;
        }
    }
    Some(f)
}

/// Checks that need the whole option list.
fn post_checks(
    cx: &Ctx,
    st: &OptState,
    protocol: &Protocol,
    warnings: &mut Vec<Diagnostic>,
) -> PResult<()> {
    let mut sticky: Option<Buffer> = None;
    // Case transforms of the current sticky buffer: (transform, where it was written).
    let mut case: Vec<(Transform, Span)> = Vec::new();
    for o in &st.options {
        match &o.node {
            RuleOption::Buffer(b) | RuleOption::BufferDir { buffer: b, .. } => {
                sticky = Some(*b);
                case.clear();
            }
            // Most value-less unsupported keywords are sticky buffers (http.header_names,
            // ja3.hash...): the current buffer is no longer known.
            RuleOption::Unsupported { value: None, .. } => {
                sticky = None;
                case.clear();
            }
            RuleOption::Transform(t @ (Transform::ToLowercase | Transform::ToUppercase)) => {
                case.push((t.clone(), o.span));
            }
            RuleOption::Content(c) => {
                if c.buffer.is_none() {
                    if let Some(d) = case_conflict(cx, &case, c, o.span) {
                        return Err(d);
                    }
                }
                let buf = c.buffer.or(sticky);
                if buf == Some(Buffer::HttpHost) {
                    let span = o.span;
                    let d = if c.nocase {
                        Some(("'nocase' is not allowed on http.host content: the buffer is already lower-cased",
                              "remove 'nocase'"))
                    } else if c.pattern.iter().any(u8::is_ascii_uppercase) {
                        Some(("http.host content contains upper-case letters and can never match: the buffer is lower-cased",
                              "write the host name in lower case"))
                    } else {
                        None
                    };
                    if let Some((msg, hint)) = d {
                        return Err(Diagnostic::error(msg)
                            .with_code("http-host-case")
                            .at_span(cx.src, span.range())
                            .with_hint(hint));
                    }
                }
            }
            RuleOption::Pcre(p) if p.buffer.is_some() && sticky.is_some() => {}
            _ => {}
        }
    }
    // Suricata: "dsize is not allowed with app-layer buffers" (dsize is a packet property; an
    // app-layer buffer is built from the stream, not from one packet).
    let app_buffer = st.options.iter().find(|o| match &o.node {
        RuleOption::Buffer(b) | RuleOption::BufferDir { buffer: b, .. } => *b != Buffer::PktData,
        RuleOption::Content(c) => c.buffer.is_some(),
        RuleOption::Pcre(p) => p.buffer.is_some(),
        _ => false,
    });
    let dsize = st
        .options
        .iter()
        .find(|o| matches!(o.node, RuleOption::Dsize(_)));
    if let (Some(b), Some(d)) = (app_buffer, dsize) {
        let name = match &b.node {
            RuleOption::Content(Content {
                buffer: Some(x), ..
            }) => x.as_str(),
            other => other.keyword(),
        };
        return Err(Diagnostic::error(format!(
            "dsize is not allowed with app-layer buffers (this rule also uses '{name}')"
        ))
        .with_code("dsize-app-buffer")
        .at_span(cx.src, d.span.range())
        .with_hint("dsize is the size of one packet's payload; to limit the buffer's length use bsize after the buffer"));
    }
    // An app-layer buffer on a non-matching app protocol can never match.
    if let ProtoKind::App(p) = &protocol.kind {
        for o in &st.options {
            if let RuleOption::Buffer(b) | RuleOption::BufferDir { buffer: b, .. } = &o.node {
                if let Some(ip) = b.implied_protocol() {
                    let compatible = match ip {
                        "http" => matches!(p.as_str(), "http" | "http1" | "http2"),
                        "smtp" => p == "smtp",
                        _ => p == ip,
                    };
                    let file_ok = matches!(b, Buffer::FileData);
                    if !compatible && !file_ok {
                        return Err(Diagnostic::error(format!(
                            "buffer '{}' belongs to protocol '{ip}' but the rule is for '{p}'",
                            b.as_str()
                        ))
                        .with_code("protocol-conflict")
                        .at_span(cx.src, o.span.range())
                        .with_hint(format!("change the rule protocol to '{ip}'")));
                    }
                }
            }
        }
    }
    let _ = warnings;
    Ok(())
}

/// A content that can never match after a case transform of its buffer (Suricata rejects
/// such a rule: the transform's content validation fails).
fn case_conflict(
    cx: &Ctx,
    case: &[(Transform, Span)],
    c: &Content,
    span: Span,
) -> Option<Diagnostic> {
    for (t, _) in case {
        let (bad, which, fix): (fn(&u8) -> bool, &str, &str) = match t {
            Transform::ToLowercase => (u8::is_ascii_uppercase, "upper-case", "lower case"),
            Transform::ToUppercase => (u8::is_ascii_lowercase, "lower-case", "upper case"),
            _ => continue,
        };
        if c.pattern.iter().any(bad) {
            return Some(
                Diagnostic::error(format!(
                    "content contains {which} letters and can never match after '{}'",
                    t.name()
                ))
                .with_code("transform-content")
                .at_span(cx.src, span.range())
                .with_hint(format!(
                    "write the content in {fix}: '{}' has turned every letter of the buffer into {fix}",
                    t.name()
                )),
            );
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse() {
        assert_eq!(parse_tcp_flags("S").map(|f| f.flags), Some(2));
        assert_eq!(parse_tcp_flags("S,12").map(|f| f.ignore), Some(192));
        assert_eq!(parse_tcp_flags("A+").map(|f| f.modifier), Some(Some('+')));
        assert!(parse_tcp_flags("Q").is_none());
    }

    #[test]
    fn size_cmp_parse() {
        assert_eq!(parse_size_cmp("10"), Some(SizeCmp::Eq(10)));
        assert_eq!(parse_size_cmp(">=10"), Some(SizeCmp::Ge(10)));
        assert_eq!(parse_size_cmp("1<>5"), Some(SizeCmp::Between(1, 5)));
        assert_eq!(parse_size_cmp("5<>1"), None);
    }
}
