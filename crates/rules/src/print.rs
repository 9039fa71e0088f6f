//! Canonical rule text: `Display` impls that parse back to an equal AST.

use std::fmt::{self, Display, Formatter, Write};

use crate::ast::*;
use crate::parse::pcre_flag_for_buffer;

impl Display for ActionSpec {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.as_str())?;
        if let Some(s) = self.scope {
            write!(f, ":{}", s.as_str())?;
        }
        Ok(())
    }
}

impl Display for Action {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.primary)?;
        for s in &self.secondary {
            write!(f, ",{s}")?;
        }
        Ok(())
    }
}

impl Display for Protocol {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.as_str())?;
        if let Some(h) = &self.hook {
            write!(f, ":{}{}", if h.and_earlier { "<" } else { "" }, h.name)?;
        }
        Ok(())
    }
}

impl Display for AddressExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            AddressExpr::Any => f.write_str("any"),
            AddressExpr::Ip(a) => write!(f, "{a}"),
            AddressExpr::Cidr(a, p) => write!(f, "{a}/{p}"),
            AddressExpr::Range(a, b) => write!(f, "{a}-{b}"),
            AddressExpr::Var(v) => write!(f, "${v}"),
            AddressExpr::Not(x) => write!(f, "!{x}"),
            AddressExpr::List(l) => write_list(f, l),
        }
    }
}

impl Display for PortExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            PortExpr::Any => f.write_str("any"),
            PortExpr::Port(p) => write!(f, "{p}"),
            PortExpr::Range(a, b) => write!(f, "{a}:{b}"),
            PortExpr::Var(v) => write!(f, "${v}"),
            PortExpr::Not(x) => write!(f, "!{x}"),
            PortExpr::List(l) => write_list(f, l),
        }
    }
}

/// `[a,b,c]`, the list form address and port expressions share.
fn write_list<T: Display>(f: &mut Formatter<'_>, items: &[T]) -> fmt::Result {
    f.write_char('[')?;
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            f.write_char(',')?;
        }
        write!(f, "{x}")?;
    }
    f.write_char(']')
}

impl Display for Value {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Value::Lit(n) => write!(f, "{n}"),
            Value::Var(v) => f.write_str(v),
        }
    }
}

impl Display for SizeCmp {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            SizeCmp::Eq(n) => write!(f, "{n}"),
            SizeCmp::Ne(n) => write!(f, "!{n}"),
            SizeCmp::Lt(n) => write!(f, "<{n}"),
            SizeCmp::Gt(n) => write!(f, ">{n}"),
            SizeCmp::Le(n) => write!(f, "<={n}"),
            SizeCmp::Ge(n) => write!(f, ">={n}"),
            SizeCmp::Between(a, b) => write!(f, "{a}<>{b}"),
        }
    }
}

/// Writes content bytes: printable ASCII as is, everything that needs escaping in hex.
fn write_content_bytes(f: &mut Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    let mut in_hex = false;
    for &b in bytes {
        let plain = (0x20..0x7f).contains(&b) && !matches!(b, b'"' | b';' | b'\\' | b'|');
        if plain {
            if in_hex {
                f.write_char('|')?;
                in_hex = false;
            }
            f.write_char(b as char)?;
        } else {
            if in_hex {
                write!(f, " {b:02X}")?;
            } else {
                write!(f, "|{b:02X}")?;
                in_hex = true;
            }
        }
    }
    if in_hex {
        f.write_char('|')?;
    }
    Ok(())
}

/// Writes text inside a quoted value, escaping `\`, `"` and `;`.
fn write_escaped(f: &mut Formatter<'_>, s: &str) -> fmt::Result {
    for c in s.chars() {
        if matches!(c, '\\' | '"' | ';') {
            f.write_char('\\')?;
        }
        f.write_char(c)?;
    }
    Ok(())
}

fn write_byte_opts(f: &mut Formatter<'_>, o: &ByteOpts, math: bool) -> fmt::Result {
    if o.relative {
        f.write_str(",relative")?;
    }
    match (o.endian, math) {
        (Some(Endian::Big), false) => f.write_str(",big")?,
        (Some(Endian::Little), false) => f.write_str(",little")?,
        (Some(Endian::Big), true) => f.write_str(",endian big")?,
        (Some(Endian::Little), true) => f.write_str(",endian little")?,
        (Some(Endian::Dce), _) => f.write_str(",dce")?,
        (None, _) => {}
    }
    if let Some(b) = o.string {
        let base = match b {
            NumBase::Hex => "hex",
            NumBase::Dec => "dec",
            NumBase::Oct => "oct",
        };
        if math {
            write!(f, ",string {base}")?;
        } else {
            write!(f, ",string,{base}")?;
        }
    }
    if let Some(m) = o.bitmask {
        write!(f, ",bitmask 0x{m:x}")?;
    }
    Ok(())
}

fn track_str(t: Track, bits: bool) -> &'static str {
    match (t, bits) {
        (Track::Src, true) => "ip_src",
        (Track::Dst, true) => "ip_dst",
        (Track::Pair, _) => "ip_pair",
        (Track::Tx, _) => "tx",
        (Track::Src, false) => "by_src",
        (Track::Dst, false) => "by_dst",
        (Track::Rule, _) => "by_rule",
        (Track::Both, _) => "by_both",
        (Track::Flow, _) => "by_flow",
    }
}

impl Display for RuleOption {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            RuleOption::Msg(m) => {
                f.write_str("msg:\"")?;
                write_escaped(f, m)?;
                f.write_str("\";")
            }
            RuleOption::Sid(n) => write!(f, "sid:{n};"),
            RuleOption::Rev(n) => write!(f, "rev:{n};"),
            RuleOption::Gid(n) => write!(f, "gid:{n};"),
            RuleOption::Classtype(c) => write!(f, "classtype:{c};"),
            RuleOption::Priority(p) => write!(f, "priority:{p};"),
            RuleOption::Reference { kind, value } => write!(f, "reference:{kind},{value};"),
            RuleOption::Metadata(m) => {
                f.write_str("metadata:")?;
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    f.write_str(k)?;
                    if !v.is_empty() {
                        write!(f, " {v}")?;
                    }
                }
                f.write_char(';')
            }
            RuleOption::Target(t) => write!(
                f,
                "target:{};",
                match t {
                    Target::SrcIp => "src_ip",
                    Target::DestIp => "dest_ip",
                }
            ),
            RuleOption::Requires(r) => write!(f, "requires:{r};"),
            RuleOption::NoAlert => f.write_str("noalert;"),
            RuleOption::Alert => f.write_str("alert;"),
            RuleOption::Content(c) => {
                f.write_str("content:")?;
                if c.negated {
                    f.write_char('!')?;
                }
                f.write_char('"')?;
                write_content_bytes(f, &c.pattern)?;
                f.write_str("\";")?;
                if let Some(b) = c.buffer {
                    match b.legacy_modifier() {
                        Some(m) => write!(f, " {m};")?,
                        None => write!(f, " {};", b.as_str())?,
                    }
                }
                if c.nocase {
                    f.write_str(" nocase;")?;
                }
                if c.rawbytes {
                    f.write_str(" rawbytes;")?;
                }
                if let Some(v) = &c.offset {
                    write!(f, " offset:{v};")?;
                }
                if let Some(v) = &c.depth {
                    write!(f, " depth:{v};")?;
                }
                if let Some(v) = &c.distance {
                    write!(f, " distance:{v};")?;
                }
                if let Some(v) = &c.within {
                    write!(f, " within:{v};")?;
                }
                if c.startswith {
                    f.write_str(" startswith;")?;
                }
                if c.endswith {
                    f.write_str(" endswith;")?;
                }
                match c.fast_pattern {
                    None => {}
                    Some(FastPattern::Yes) => f.write_str(" fast_pattern;")?,
                    Some(FastPattern::Only) => f.write_str(" fast_pattern:only;")?,
                    Some(FastPattern::Slice(o, l)) => write!(f, " fast_pattern:{o},{l};")?,
                }
                Ok(())
            }
            RuleOption::Buffer(b) => write!(f, "{};", b.as_str()),
            RuleOption::BufferDir { buffer, dir } => write!(
                f,
                "{}:{};",
                buffer.as_str(),
                match dir {
                    FlowDir::ToServer => "to_server",
                    FlowDir::ToClient => "to_client",
                }
            ),
            RuleOption::Transform(t) => match t {
                Transform::Xor(k) => {
                    f.write_str("xor:\"")?;
                    for b in k {
                        write!(f, "{b:02x}")?;
                    }
                    f.write_str("\";")
                }
                Transform::PcreXform(r) => write!(f, "pcrexform:\"{r}\";"),
                Transform::FromBase64(o) if !o.is_empty() => write!(f, "from_base64:{o};"),
                t => write!(f, "{};", t.name()),
            },
            RuleOption::Pcre(p) => {
                f.write_str("pcre:")?;
                if p.negated {
                    f.write_char('!')?;
                }
                write!(f, "\"/{}/", p.pattern)?;
                let fl = &p.flags;
                for (on, c) in [
                    (fl.caseless, 'i'),
                    (fl.dotall, 's'),
                    (fl.multiline, 'm'),
                    (fl.extended, 'x'),
                    (fl.anchored, 'A'),
                    (fl.dollar_endonly, 'E'),
                    (fl.ungreedy, 'G'),
                    (fl.override_limit, 'O'),
                    (fl.relative, 'R'),
                    (fl.rawbytes, 'B'),
                ] {
                    if on {
                        f.write_char(c)?;
                    }
                }
                if let Some(c) = p.buffer.and_then(pcre_flag_for_buffer) {
                    f.write_char(c)?;
                }
                for c in &p.captures {
                    write!(f, ", {c}")?;
                }
                f.write_str("\";")
            }
            RuleOption::IsDataAt(i) => {
                f.write_str("isdataat:")?;
                if i.negated {
                    f.write_char('!')?;
                }
                write!(f, "{}", i.value)?;
                if i.relative {
                    f.write_str(",relative")?;
                }
                if i.rawbytes {
                    f.write_str(",rawbytes")?;
                }
                f.write_char(';')
            }
            RuleOption::Bsize(c) => write!(f, "bsize:{c};"),
            RuleOption::Dsize(c) => write!(f, "dsize:{c};"),
            RuleOption::Itype(c) => write!(f, "itype:{c};"),
            RuleOption::Icode(c) => write!(f, "icode:{c};"),
            RuleOption::ByteTest(b) => {
                write!(
                    f,
                    "byte_test:{},{}{},{},{}",
                    b.nbytes,
                    if b.negated { "!" } else { "" },
                    b.op.as_str(),
                    b.value,
                    b.offset
                )?;
                write_byte_opts(f, &b.opts, false)?;
                f.write_char(';')
            }
            RuleOption::ByteJump(b) => {
                write!(f, "byte_jump:{},{}", b.nbytes, b.offset)?;
                write_byte_opts(f, &b.opts, false)?;
                if let Some(m) = b.multiplier {
                    write!(f, ",multiplier {m}")?;
                }
                if b.align {
                    f.write_str(",align")?;
                }
                if b.from_beginning {
                    f.write_str(",from_beginning")?;
                }
                if b.from_end {
                    f.write_str(",from_end")?;
                }
                if let Some(p) = b.post_offset {
                    write!(f, ",post_offset {p}")?;
                }
                f.write_char(';')
            }
            RuleOption::ByteExtract(b) => {
                write!(f, "byte_extract:{},{},{}", b.nbytes, b.offset, b.name)?;
                write_byte_opts(f, &b.opts, false)?;
                if let Some(m) = b.multiplier {
                    write!(f, ",multiplier {m}")?;
                }
                if let Some(a) = b.align {
                    write!(f, ",align {a}")?;
                }
                f.write_char(';')
            }
            RuleOption::ByteMath(b) => {
                write!(
                    f,
                    "byte_math:bytes {},offset {},oper {},rvalue {},result {}",
                    b.nbytes,
                    b.offset,
                    b.oper.as_str(),
                    b.rvalue,
                    b.result
                )?;
                write_byte_opts(f, &b.opts, true)?;
                f.write_char(';')
            }
            RuleOption::Flow(fl) => {
                let mut parts = Vec::new();
                if let Some(s) = fl.state {
                    parts.push(match s {
                        FlowState::Established => "established",
                        FlowState::NotEstablished => "not_established",
                        FlowState::Stateless => "stateless",
                    });
                }
                if let Some(d) = fl.dir {
                    parts.push(match d {
                        FlowDir::ToServer => "to_server",
                        FlowDir::ToClient => "to_client",
                    });
                }
                if let Some(s) = fl.stream {
                    parts.push(match s {
                        FlowStream::OnlyStream => "only_stream",
                        FlowStream::NoStream => "no_stream",
                    });
                }
                if let Some(s) = fl.frag {
                    parts.push(match s {
                        FlowFrag::OnlyFrag => "only_frag",
                        FlowFrag::NoFrag => "no_frag",
                    });
                }
                write!(f, "flow:{};", parts.join(","))
            }
            RuleOption::Flowbits(Flowbits::NoAlert) => f.write_str("flowbits:noalert;"),
            RuleOption::Flowbits(Flowbits::Cmd(c, names)) => {
                write!(f, "flowbits:{},{};", c.as_str(), names.join("|"))
            }
            RuleOption::Xbits(x) => {
                write!(
                    f,
                    "xbits:{},{},track {}",
                    x.cmd.as_str(),
                    x.name,
                    track_str(x.track, true)
                )?;
                if let Some(e) = x.expire {
                    write!(f, ",expire {e}")?;
                }
                f.write_char(';')
            }
            RuleOption::Threshold(t) => {
                let kind = match t.kind {
                    ThresholdKind::Limit => "limit",
                    ThresholdKind::Threshold => "threshold",
                    ThresholdKind::Both => "both",
                    ThresholdKind::Backoff => "backoff",
                };
                write!(
                    f,
                    "threshold:type {kind},track {},count {}",
                    track_str(t.track, false),
                    t.count
                )?;
                if t.kind != ThresholdKind::Backoff || t.seconds != 0 {
                    write!(f, ",seconds {}", t.seconds)?;
                }
                if let Some(m) = t.multiplier {
                    write!(f, ",multiplier {m}")?;
                }
                f.write_char(';')
            }
            RuleOption::DetectionFilter(d) => {
                write!(
                    f,
                    "detection_filter:track {},count {},seconds {}",
                    track_str(d.track, false),
                    d.count,
                    d.seconds
                )?;
                match d.unique_on {
                    Some(UniqueOn::SrcPort) => f.write_str(",unique_on src_port")?,
                    Some(UniqueOn::DstPort) => f.write_str(",unique_on dst_port")?,
                    None => {}
                }
                f.write_char(';')
            }
            RuleOption::AppLayerProtocol(a) => {
                write!(
                    f,
                    "app-layer-protocol:{}{}",
                    if a.negated { "!" } else { "" },
                    a.proto
                )?;
                if let Some(m) = &a.mode {
                    write!(f, ",{m}")?;
                }
                f.write_char(';')
            }
            RuleOption::AppLayerEvent(e) => write!(f, "app-layer-event:{e};"),
            RuleOption::SslState(s) => {
                f.write_str("ssl_state:")?;
                for (i, (neg, n)) in s.iter().enumerate() {
                    if i > 0 {
                        f.write_char('|')?;
                    }
                    if *neg {
                        f.write_char('!')?;
                    }
                    f.write_str(n)?;
                }
                f.write_char(';')
            }
            RuleOption::Flags(t) => {
                f.write_str("flags:")?;
                let letters = |f: &mut Formatter<'_>, bits: u8| -> fmt::Result {
                    for (b, c) in [
                        (1, 'F'),
                        (2, 'S'),
                        (4, 'R'),
                        (8, 'P'),
                        (16, 'A'),
                        (32, 'U'),
                        (64, 'E'),
                        (128, 'C'),
                    ] {
                        if bits & b != 0 {
                            f.write_char(c)?;
                        }
                    }
                    Ok(())
                };
                if let Some(m) = t.modifier {
                    f.write_char(m)?;
                }
                if t.flags == 0 {
                    f.write_char('0')?;
                } else {
                    letters(f, t.flags)?;
                }
                if t.ignore != 0 {
                    f.write_char(',')?;
                    letters(f, t.ignore)?;
                }
                f.write_char(';')
            }
            RuleOption::Absent { or_else } => f.write_str(if *or_else {
                "absent:or_else;"
            } else {
                "absent;"
            }),
            RuleOption::Unsupported { name, value } => match value {
                Some(v) => write!(f, "{name}:{v};"),
                None => write!(f, "{name};"),
            },
        }
    }
}

impl Display for Rule {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {} {} {} {} (",
            self.action,
            self.protocol,
            self.src,
            self.src_port,
            self.direction.as_str(),
            self.dst,
            self.dst_port
        )?;
        for (i, o) in self.options.iter().enumerate() {
            if i > 0 {
                f.write_char(' ')?;
            }
            write!(f, "{}", o.node)?;
        }
        f.write_char(')')
    }
}
