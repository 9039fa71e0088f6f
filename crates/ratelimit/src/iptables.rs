//! Importing one iptables-save rule with `-m hashlimit` (or `-m limit`) unchanged.

use std::ops::Range;

use crate::rate::{parse_bytes, Rate, RateError};
use crate::table::{Config, KeyFields};

/// What the imported rule does with the traffic it singles out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportAction {
    /// Over-limit traffic is dropped (`--hashlimit-above … -j DROP`, and `--hashlimit-upto
    /// … -j ACCEPT`, whose over-limit traffic fell through to rules sekisho cannot see).
    Drop,
    /// Over-limit traffic is rejected (`--hashlimit-above … -j REJECT`).
    Reject,
    /// Over-limit traffic is logged only (`--hashlimit-above … -j LOG`).
    Alert,
}

/// An imported rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// The table (name, rate, burst, mode, masks, expire, max, gc interval).
    pub config: Config,
    /// The Suricata rule header the iptables matches translate to (`tcp any any -> any 25`).
    pub header: String,
    /// `-m state --state NEW` / `-m conntrack --ctstate NEW`: only first packets of flows
    /// count.
    pub new_flows: bool,
    /// What over-limit traffic gets.
    pub action: ImportAction,
    /// The rule's target as written (`ACCEPT`).
    pub target: String,
    /// Things the import changed or could not carry over, for `sekisho check` warnings, each
    /// with the byte range of the words it is about.
    pub warnings: Vec<(String, Range<usize>)>,
}

/// An import error: what is wrong, the hint, and the byte range in the rule text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportError {
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
    /// Where in the rule text.
    pub span: Range<usize>,
}

/// Splits a rule into words with their byte ranges; `"…"` quotes group words.
fn words(text: &str) -> Vec<(String, Range<usize>)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut start = None;
    let mut quoted = false;
    for (i, c) in text.char_indices() {
        match c {
            '"' => {
                quoted = !quoted;
                start.get_or_insert(i);
            }
            c if c.is_whitespace() && !quoted => {
                if let Some(s) = start.take() {
                    out.push((std::mem::take(&mut cur), s..i));
                }
            }
            c => {
                start.get_or_insert(i);
                cur.push(c);
            }
        }
    }
    if let Some(s) = start {
        out.push((cur, s..text.len()));
    }
    out
}

/// Imports `text`, one iptables-save rule (`-A INPUT -p tcp --dport 25 -m state --state NEW
/// -m hashlimit … -j ACCEPT`). `fallback_name` names a `-m limit` table (it has no name).
pub fn import(text: &str, fallback_name: &str) -> Result<Imported, ImportError> {
    let w = words(text);
    let parsed = parse_words(&w)?;
    build(text, &w, parsed, fallback_name)
}

/// What the words of a rule say, before the table is built from them.
struct Parsed {
    proto: String,
    src: String,
    dst: String,
    sport: String,
    dport: String,
    new_flows: bool,
    /// The rate and the range of its word.
    rate: Option<(Rate, Range<usize>)>,
    /// `--hashlimit-above` (or a negated `--hashlimit-upto`): the rule singles out traffic
    /// over the rate.
    above: bool,
    burst: Option<(String, Range<usize>)>,
    fields: KeyFields,
    name: Option<String>,
    srcmask: Option<u8>,
    dstmask: Option<u8>,
    expire: Option<u64>,
    max: Option<u64>,
    gc: Option<u64>,
    target: Option<(String, Range<usize>)>,
    /// `-m limit`: the table has no name of its own.
    limit_module: bool,
    warnings: Vec<(String, Range<usize>)>,
}

fn err(m: String, h: &str, span: Range<usize>) -> ImportError {
    ImportError {
        message: m,
        hint: h.to_string(),
        span,
    }
}

fn rate_err(e: RateError, span: Range<usize>) -> ImportError {
    ImportError {
        message: e.message,
        hint: e.hint,
        span,
    }
}

/// The keyword table: one arm per iptables option sekisho understands.
fn parse_words(w: &[(String, Range<usize>)]) -> Result<Parsed, ImportError> {
    let mut i = 0;
    let mut proto = "ip".to_string();
    let (mut src, mut dst) = ("any".to_string(), "any".to_string());
    let (mut sport, mut dport) = ("any".to_string(), "any".to_string());
    let mut new_flows = false;
    let mut rate: Option<(Rate, Range<usize>)> = None;
    let mut above = false;
    let mut burst: Option<(String, Range<usize>)> = None;
    let mut fields = KeyFields::default();
    let mut name: Option<String> = None;
    let (mut srcmask, mut dstmask) = (None, None);
    let (mut expire, mut max, mut gc) = (None, None, None);
    let mut target: Option<(String, Range<usize>)> = None;
    let mut limit_module = false;
    let mut warnings = Vec::new();
    let mut negate = false;
    while i < w.len() {
        let (word, span) = (&w[i].0, w[i].1.clone());
        let value = |k: usize| -> Result<(String, Range<usize>), ImportError> {
            w.get(k).cloned().ok_or_else(|| {
                err(
                    format!("'{word}' needs a value"),
                    "write the option's value after it",
                    span.clone(),
                )
            })
        };
        let neg = std::mem::take(&mut negate);
        let bang = if neg { "!" } else { "" };
        match word.as_str() {
            "!" => {
                negate = true;
                i += 1;
                continue;
            }
            "-A" | "--append" | "-I" | "--insert" => {
                value(i + 1)?;
                i += 2;
                // `-I CHAIN N`: skip the position.
                if word.starts_with("-I") || word == "--insert" {
                    if let Some((n, _)) = w.get(i) {
                        if n.parse::<u32>().is_ok() {
                            i += 1;
                        }
                    }
                }
                continue;
            }
            "-p" | "--protocol" => {
                let (v, vs) = value(i + 1)?;
                if neg {
                    return Err(err(format!("'! -p {v}' cannot be imported"), "name the protocol the limit is for", vs));
                }
                proto = match v.to_ascii_lowercase().as_str() {
                    "tcp" | "6" => "tcp".into(),
                    "udp" | "17" => "udp".into(),
                    "icmp" | "1" => "icmp".into(),
                    "all" | "0" => "ip".into(),
                    _ => {
                        return Err(err(
                            format!("protocol '{v}' is not supported"),
                            "use tcp, udp, icmp or all",
                            vs,
                        ))
                    }
                };
                i += 2;
            }
            "-s" | "--source" | "-d" | "--destination" => {
                let (v, _) = value(i + 1)?;
                let a = format!("{bang}{v}");
                if word.starts_with("-s") || word == "--source" {
                    src = a;
                } else {
                    dst = a;
                }
                i += 2;
            }
            "--dport" | "--destination-port" | "--sport" | "--source-port" | "--dports"
            | "--sports" | "--destination-ports" | "--source-ports" => {
                let (v, _) = value(i + 1)?;
                // iptables writes ranges as a:b (as Suricata) and lists with commas.
                let list = if v.contains(',') {
                    format!("{bang}[{v}]")
                } else {
                    format!("{bang}{v}")
                };
                if word.contains("dport") || word.contains("destination") {
                    dport = list;
                } else {
                    sport = list;
                }
                i += 2;
            }
            "-m" | "--match" => {
                let (v, _) = value(i + 1)?;
                if v == "limit" {
                    limit_module = true;
                }
                i += 2;
            }
            "--state" | "--ctstate" => {
                let (v, vs) = value(i + 1)?;
                if v.eq_ignore_ascii_case("NEW") && !neg {
                    new_flows = true;
                } else {
                    return Err(err(
                        format!("state '{bang}{v}' cannot be imported"),
                        "only NEW (count the first packet of each flow) is supported",
                        vs,
                    ));
                }
                i += 2;
            }
            "--hashlimit" | "--hashlimit-upto" | "--hashlimit-above" | "--limit" => {
                let (v, vs) = value(i + 1)?;
                let r = Rate::parse(&v).map_err(|e| rate_err(e, vs.clone()))?;
                above = (word == "--hashlimit-above") != neg;
                rate = Some((r, vs));
                i += 2;
            }
            "--hashlimit-burst" | "--limit-burst" => {
                burst = Some(value(i + 1)?);
                i += 2;
            }
            "--hashlimit-mode" => {
                let (v, vs) = value(i + 1)?;
                fields = KeyFields::parse_list(&v).map_err(|e| rate_err(e, vs))?;
                i += 2;
            }
            "--hashlimit-name" => {
                name = Some(value(i + 1)?.0);
                i += 2;
            }
            "--hashlimit-srcmask" | "--hashlimit-dstmask" | "--hashlimit-mask" => {
                let (v, vs) = value(i + 1)?;
                let m = v.parse::<u8>().ok().filter(|m| *m <= 128).ok_or_else(|| {
                    err(format!("bad prefix length '{v}'"), "0 to 32 (IPv4) or 0 to 128 (IPv6)", vs)
                })?;
                if word == "--hashlimit-dstmask" {
                    dstmask = Some(m);
                } else {
                    srcmask = Some(m);
                }
                i += 2;
            }
            "--hashlimit-htable-expire" | "--hashlimit-htable-max"
            | "--hashlimit-htable-gcinterval" | "--hashlimit-htable-size" => {
                let (v, vs) = value(i + 1)?;
                let n = v.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| {
                    err(format!("'{word}' needs a positive number, not '{v}'"), "write a whole number", vs)
                })?;
                match word.as_str() {
                    "--hashlimit-htable-expire" => expire = Some(n),
                    "--hashlimit-htable-max" => max = Some(n),
                    "--hashlimit-htable-gcinterval" => gc = Some(n),
                    _ => {} // the hash's bucket count: no meaning here
                }
                i += 2;
            }
            "-j" | "--jump" => {
                target = Some(value(i + 1)?);
                i += 2;
                // Target options (--reject-with …, --log-prefix …) follow; keep going.
            }
            "-i" | "--in-interface" | "-o" | "--out-interface" => {
                let (v, vs) = value(i + 1)?;
                warnings.push((format!("interface match '{word} {v}' is ignored: the limit applies to traffic on every interface sekisho sees"), span.start..vs.end));
                i += 2;
            }
            "--comment" | "--reject-with" | "--log-prefix" | "--log-level" => {
                value(i + 1)?;
                i += 2;
            }
            "-t" | "--table" => {
                value(i + 1)?;
                i += 2;
            }
            w2 if w2.starts_with('-') => {
                return Err(err(
                    format!("iptables option '{w2}' cannot be imported"),
                    "the import understands -p, -s, -d, --sport/--dport(s), -m state/conntrack NEW, -m hashlimit, -m limit and -j",
                    span,
                ))
            }
            w2 => {
                return Err(err(
                    format!("unexpected word '{w2}'"),
                    "paste one line of iptables-save output",
                    span,
                ))
            }
        }
    }
    Ok(Parsed {
        proto,
        src,
        dst,
        sport,
        dport,
        new_flows,
        rate,
        above,
        burst,
        fields,
        name,
        srcmask,
        dstmask,
        expire,
        max,
        gc,
        target,
        limit_module,
        warnings,
    })
}

/// Builds the table, the rule header and the action from what the words of `text` said.
fn build(
    text: &str,
    w: &[(String, Range<usize>)],
    mut p: Parsed,
    fallback_name: &str,
) -> Result<Imported, ImportError> {
    let whole = 0..text.len();
    let Some((rate, rate_span)) = p.rate else {
        return Err(err(
            "the rule has no -m hashlimit (--hashlimit-upto/--hashlimit-above) or -m limit (--limit)".into(),
            "the iptables: form imports rate-limit rules only",
            whole,
        ));
    };
    let jspan = w
        .iter()
        .rev()
        .find(|(x, _)| x == "-j" || x == "--jump")
        .map_or(0, |(_, r)| r.start);
    let (target, tspan) = p.target.ok_or_else(|| {
        err(
            "the rule has no -j target".into(),
            "add -j ACCEPT, -j DROP or -j REJECT",
            whole.clone(),
        )
    })?;
    let name = match p.name {
        Some(n) => n,
        None if p.limit_module => fallback_name.to_string(),
        None => {
            return Err(err(
                "--hashlimit-name is missing".into(),
                "hashlimit needs a table name: add --hashlimit-name NAME",
                rate_span,
            ))
        }
    };
    let mut config = Config::new(name, rate);
    config.fields = p.fields;
    config.srcmask = p.srcmask;
    config.dstmask = p.dstmask;
    if let Some((b, bs)) = p.burst {
        config.burst = if rate.is_bytes() {
            parse_bytes(&b).map_err(|e| rate_err(e, bs.clone()))?
        } else {
            b.parse::<u64>().map_err(|_| {
                err(
                    format!("bad burst '{b}'"),
                    "burst is a whole number of packets, 1 to 10000",
                    bs.clone(),
                )
            })?
        };
        config.burst_given = true;
        config.expire_ms = rate.default_expire_ms(true);
    }
    if let Some(e) = p.expire {
        config.expire_ms = e;
    }
    if let Some(m) = p.max {
        config.max = usize::try_from(m).unwrap_or(usize::MAX);
    }
    if let Some(g) = p.gc {
        config.gc_interval_ms = g;
    }
    config.validate().map_err(|e| rate_err(e, whole.clone()))?;
    let action = action(
        &target,
        p.above,
        rate,
        jspan.min(tspan.start)..tspan.end,
        tspan,
        &mut p.warnings,
    )?;
    let header = format!("{} {} {} -> {} {}", p.proto, p.src, p.sport, p.dst, p.dport);
    Ok(Imported {
        config,
        header,
        new_flows: p.new_flows,
        action,
        target,
        warnings: p.warnings,
    })
}

/// What over-limit traffic gets, from the rule's target and whether it singles out traffic
/// over the rate (`above`); `-j ACCEPT` within the rate is imported as a drop over it, with a
/// warning at `accept_span`. `Err` (at `tspan`) for a target that does not act on traffic
/// over the rate.
fn action(
    target: &str,
    above: bool,
    rate: Rate,
    accept_span: Range<usize>,
    tspan: Range<usize>,
    warnings: &mut Vec<(String, Range<usize>)>,
) -> Result<ImportAction, ImportError> {
    match (target.to_ascii_uppercase().as_str(), above) {
        ("ACCEPT", false) => {
            warnings.push((format!("'-j ACCEPT' lets traffic within {rate} through and leaves the rest to the rules after it in the chain, which sekisho cannot see; imported as action: drop for traffic over the limit"), accept_span));
            Ok(ImportAction::Drop)
        }
        ("DROP", true) => Ok(ImportAction::Drop),
        ("REJECT", true) => Ok(ImportAction::Reject),
        ("LOG", true) => Ok(ImportAction::Alert),
        (t, _) => {
            let (what, fix) = if above {
                (
                    "traffic over the limit",
                    "use -j DROP, -j REJECT or -j LOG with --hashlimit-above",
                )
            } else {
                (
                    "traffic within the limit",
                    "use -j ACCEPT with --hashlimit-upto, or --hashlimit-above with -j DROP",
                )
            };
            Err(err(
                format!("'-j {t}' on {what} cannot be imported: a rate limit acts on traffic over its rate"),
                fix,
                tspan,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = "-A INPUT -p tcp --dport 25 -m state --state NEW -m hashlimit --hashlimit-name smtp_limit --hashlimit 2/h --hashlimit-burst 2 --hashlimit-mode srcip --hashlimit-htable-expire 3600000 -j ACCEPT";

    #[test]
    fn the_seed_rule() {
        let r = import(SEED, "x").unwrap();
        assert_eq!(r.config.name, "smtp_limit");
        assert_eq!(r.config.burst, 2);
        assert_eq!(r.config.expire_ms, 3_600_000);
        assert!(r.config.fields.srcip && !r.config.fields.dstip);
        assert_eq!(r.config.cost(), 57_600_000);
        assert_eq!(r.config.credit_cap(), 115_200_000);
        assert_eq!(r.header, "tcp any any -> any 25");
        assert!(r.new_flows);
        assert_eq!(r.action, ImportAction::Drop);
        assert_eq!(r.warnings.len(), 1);
        assert!(r.warnings[0].0.contains("-j ACCEPT"));
        assert_eq!(&SEED[r.warnings[0].1.clone()], "-j ACCEPT");
    }

    #[test]
    fn iptables_save_forms() {
        let r = import("-A INPUT -s 10.0.0.0/8 ! -d 10.1.0.0/16 -p udp -m udp --dport 53 -m hashlimit --hashlimit-above 100/sec --hashlimit-mode srcip,dstport --hashlimit-srcmask 24 --hashlimit-name dns -j REJECT --reject-with icmp-port-unreachable", "x").unwrap();
        assert_eq!(r.header, "udp 10.0.0.0/8 any -> !10.1.0.0/16 53");
        assert_eq!(r.action, ImportAction::Reject);
        assert_eq!(r.config.srcmask, Some(24));
        assert_eq!(r.config.burst, 5);
        assert_eq!(r.config.expire_ms, 1000);
        let r = import("-A INPUT -p tcp -m multiport --dports 25,465,587 -m limit --limit 3/min --limit-burst 7 -j ACCEPT", "lim0").unwrap();
        assert_eq!(r.config.name, "lim0");
        assert!(r.config.fields.is_empty());
        assert_eq!(r.header, "tcp any any -> any [25,465,587]");
        assert_eq!(r.config.burst, 7);
        let r = import("-A FORWARD -m hashlimit --hashlimit-above 512kb/s --hashlimit-burst 1mb --hashlimit-mode dstip --hashlimit-name big -j DROP", "x").unwrap();
        assert_eq!(r.config.burst, 1_048_576);
        assert_eq!(r.config.expire_ms, 60_000);
    }

    #[test]
    fn errors_point_at_the_word() {
        let t = "-A INPUT -p tcp -m hashlimit --hashlimit-upto 2/fortnight --hashlimit-name a -j ACCEPT";
        let e = import(t, "x").unwrap_err();
        assert_eq!(&t[e.span.clone()], "2/fortnight");
        let t = "-A INPUT -m hashlimit --hashlimit-upto 2/h --hashlimit-name a -j DROP";
        let e = import(t, "x").unwrap_err();
        assert_eq!(&t[e.span.clone()], "DROP");
        let t = "-A INPUT -m hashlimit --hashlimit-upto 2/h -j ACCEPT";
        assert!(import(t, "x")
            .unwrap_err()
            .message
            .contains("--hashlimit-name"));
        let t = "-A INPUT -m state --state ESTABLISHED -m hashlimit --hashlimit-upto 2/h --hashlimit-name a -j ACCEPT";
        assert!(import(t, "x").is_err());
        let t = "-A INPUT --frobnicate -j ACCEPT";
        let e = import(t, "x").unwrap_err();
        assert_eq!(&t[e.span], "--frobnicate");
        assert!(import("-A INPUT -p tcp -j ACCEPT", "x").is_err());
        assert!(import("-A INPUT -m hashlimit --hashlimit-upto 2/h --hashlimit-name a --hashlimit-burst 0 -j ACCEPT", "x").is_err());
    }
}
