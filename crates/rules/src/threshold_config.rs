//! Suricata's global `threshold.config` file: `threshold` / `event_filter`, `suppress` and
//! `rate_filter` lines that change how rules alert and act without editing the rules.
//!
//! Syntax (suricata-rules.md §9), one directive per line, `#` comments, blank lines ignored:
//!
//! ```text
//! threshold gen_id 1, sig_id 10, type limit, track by_src, count 1, seconds 60
//! event_filter gen_id 1, sig_id 11, type both, track by_dst, count 5, seconds 60
//! suppress gen_id 1, sig_id 12
//! suppress gen_id 1, sig_id 13, track by_src, ip [10.0.0.0/8,$TRUSTED]
//! rate_filter gen_id 1, sig_id 14, track by_rule, count 100, seconds 60, new_action drop, timeout 30
//! ```
//!
//! The parser is total: every bad line gives a diagnostic with file, line and column and the
//! good lines still load. Addresses of `suppress ... ip` are kept as expressions and resolved
//! against the policy's variables when the rules compile.

use sekisho_diag::{Diagnostic, SourceFile};

use crate::ast::{AddressExpr, Threshold, ThresholdKind, Track};
use crate::parse::parse_address_str;

/// Which packet addresses a `suppress ... ip` list is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuppressTrack {
    /// `by_src`: the packet's source.
    Src,
    /// `by_dst`: the packet's destination.
    Dst,
    /// `by_either`: source or destination.
    Either,
}

/// The action a `rate_filter` switches a rule to while it is active.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateAction {
    /// `alert`: only alert (a drop rule stops dropping).
    Alert,
    /// `drop`: drop the packet (the flow, for a flow-scoped rule).
    Drop,
    /// `pass`: pass without alerting.
    Pass,
    /// `reject`: drop and send a reset / unreachable.
    Reject,
}

/// One directive of a threshold.config file.
#[derive(Debug, Clone, PartialEq)]
pub enum ThresholdDirective {
    /// `threshold` / `event_filter`: replaces the rule's own `threshold` or
    /// `detection_filter`.
    Threshold {
        /// `gen_id`.
        gid: u32,
        /// `sig_id` (never 0: wildcards are not supported for this form).
        sid: u32,
        /// The threshold.
        threshold: Threshold,
    },
    /// `suppress`: the rule's alerts are not logged (its actions still apply), for every
    /// packet or only those whose address is in `ip`.
    Suppress {
        /// `gen_id` (0: any).
        gid: u32,
        /// `sig_id` (0: every rule).
        sid: u32,
        /// `track` with `ip`: which address is compared; `None` suppresses every alert.
        by: Option<(SuppressTrack, AddressExpr)>,
    },
    /// `rate_filter`: once more than `count` matches happen within `seconds` (per
    /// `track` key), the rule acts as `new_action` for `timeout` seconds.
    RateFilter {
        /// `gen_id`.
        gid: u32,
        /// `sig_id`.
        sid: u32,
        /// `track` (by_src, by_dst, by_rule, by_both, by_flow).
        track: Track,
        /// `count N`.
        count: u32,
        /// `seconds T`.
        seconds: u32,
        /// `new_action`.
        new_action: RateAction,
        /// `timeout X`, seconds.
        timeout: u32,
    },
}

/// A directive and the line it came from (1-based), for messages.
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdEntry {
    /// The directive.
    pub directive: ThresholdDirective,
    /// Line in the file.
    pub line: u32,
}

/// A parsed threshold.config: its good directives in file order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ThresholdConfig {
    /// File name as given (for messages).
    pub file: String,
    /// The directives that parsed.
    pub entries: Vec<ThresholdEntry>,
}

/// Parses a threshold.config file; returns the directives that parsed and a diagnostic for
/// every line that did not.
pub fn parse_threshold_config(src: &SourceFile) -> (ThresholdConfig, Vec<Diagnostic>) {
    let mut cfg = ThresholdConfig {
        file: src.name().to_string(),
        entries: Vec::new(),
    };
    let mut diags = Vec::new();
    let mut offset = 0usize;
    for (i, raw) in src.text().split_inclusive('\n').enumerate() {
        let line_start = offset;
        offset += raw.len();
        let body = raw.trim_end_matches(['\n', '\r']);
        let content = body.split('#').next().unwrap_or("");
        if content.trim().is_empty() {
            continue;
        }
        match parse_line(content, line_start) {
            Ok(d) => cfg.entries.push(ThresholdEntry {
                directive: d,
                line: i as u32 + 1,
            }),
            Err(e) => diags.push(
                Diagnostic::error(e.message)
                    .with_code("bad-threshold-config")
                    .at_span(src, e.span)
                    .with_hint(e.hint),
            ),
        }
    }
    (cfg, diags)
}

struct LineError {
    message: String,
    span: std::ops::Range<usize>,
    hint: String,
}

const FORMS: &str = "forms: `threshold|event_filter gen_id G, sig_id S, type limit|threshold|both|backoff, track by_src|by_dst|by_rule|by_both|by_flow, count N, seconds T`; `suppress gen_id G, sig_id S[, track by_src|by_dst|by_either, ip ADDR]`; `rate_filter gen_id G, sig_id S, track ..., count N, seconds T, new_action alert|drop|pass|reject, timeout X`";

/// One directive; `base` is the byte offset of the line in the file.
fn parse_line(line: &str, base: usize) -> Result<ThresholdDirective, LineError> {
    let lead = line.len() - line.trim_start().len();
    let rest = &line[lead..];
    let kw_len = rest.find(char::is_whitespace).unwrap_or(rest.len());
    let kw = &rest[..kw_len];
    let err = |msg: String, s: usize, e: usize, hint: &str| LineError {
        message: msg,
        span: base + s..base + e.max(s + 1),
        hint: hint.to_string(),
    };
    let kind = match kw {
        "threshold" | "event_filter" | "suppress" | "rate_filter" => kw,
        _ => {
            let hint = match sekisho_diag::suggest(
                kw,
                ["threshold", "event_filter", "suppress", "rate_filter"],
            ) {
                Some(s) => format!("did you mean `{s}`? {FORMS}"),
                None => FORMS.to_string(),
            };
            return Err(err(
                format!("unknown threshold.config directive '{kw}'"),
                lead,
                lead + kw_len,
                &hint,
            ));
        }
    };
    // Key/value pairs: "key value" separated by commas. The `ip` value may itself be a
    // bracketed list with commas, so split only at commas outside brackets.
    let args_start = lead + kw_len;
    let mut items: Vec<(usize, usize)> = Vec::new();
    let mut depth = 0i32;
    let mut start = args_start;
    for (i, &c) in line.as_bytes().iter().enumerate().skip(args_start) {
        match c {
            b'[' => depth += 1,
            b']' => depth -= 1,
            b',' if depth <= 0 => {
                items.push((start, i));
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push((start, line.len()));
    let mut pairs: Vec<(&str, &str, usize, usize)> = Vec::new();
    for (s, e) in items {
        let part = &line[s..e];
        let t = part.trim();
        if t.is_empty() {
            return Err(err(
                "empty item between commas".into(),
                s,
                e,
                "write `key value` items separated by single commas",
            ));
        }
        let off = s + (part.len() - part.trim_start().len());
        let (k, v) = match t.find(char::is_whitespace) {
            Some(i) => (&t[..i], t[i..].trim()),
            None => (t, ""),
        };
        pairs.push((k, v, off, off + t.len()));
    }

    let mut gid = None;
    let mut sid = None;
    let mut ttype = None;
    let mut track = None;
    let mut count = None;
    let mut seconds = None;
    let mut multiplier = None;
    let mut ip = None;
    let mut new_action = None;
    let mut timeout = None;
    for &(k, v, s, e) in &pairs {
        let num = |v: &str| -> Result<u32, LineError> {
            v.parse::<u32>().map_err(|_| {
                err(
                    format!("'{k}' needs a number, got '{v}'"),
                    s,
                    e,
                    "write a whole number, e.g. `count 10`",
                )
            })
        };
        if v.is_empty() {
            return Err(err(
                format!("'{k}' has no value"),
                s,
                e,
                "write `key value`, e.g. `sig_id 2002087`",
            ));
        }
        match (kind, k) {
            (_, "gen_id") => gid = Some(num(v)?),
            (_, "sig_id") => sid = Some(num(v)?),
            ("threshold" | "event_filter", "type") => {
                ttype = Some(match v {
                    "limit" => ThresholdKind::Limit,
                    "threshold" => ThresholdKind::Threshold,
                    "both" => ThresholdKind::Both,
                    "backoff" => ThresholdKind::Backoff,
                    _ => {
                        return Err(err(
                            format!("unknown threshold type '{v}'"),
                            s,
                            e,
                            "type is one of limit, threshold, both, backoff",
                        ))
                    }
                })
            }
            ("threshold" | "event_filter" | "rate_filter", "track") => {
                track = Some(match v {
                    "by_src" => Track::Src,
                    "by_dst" => Track::Dst,
                    "by_rule" => Track::Rule,
                    "by_both" => Track::Both,
                    "by_flow" => Track::Flow,
                    _ => {
                        return Err(err(
                            format!("unknown track '{v}'"),
                            s,
                            e,
                            "track is one of by_src, by_dst, by_rule, by_both, by_flow",
                        ))
                    }
                })
            }
            ("suppress", "track") => {
                ttype = None;
                track = Some(match v {
                    "by_src" => Track::Src,
                    "by_dst" => Track::Dst,
                    "by_either" => Track::Pair,
                    _ => {
                        return Err(err(
                            format!("unknown suppress track '{v}'"),
                            s,
                            e,
                            "suppress tracks by_src, by_dst or by_either",
                        ))
                    }
                })
            }
            ("suppress", "ip") => {
                let vs = e - v.len();
                ip = Some(parse_address_str(v).map_err(|m| {
                    err(
                        format!("bad address '{v}': {m}"),
                        vs,
                        e,
                        "use an IP, a CIDR, a [list] or a $VARIABLE defined in the policy",
                    )
                })?);
            }
            ("threshold" | "event_filter" | "rate_filter", "count") => count = Some(num(v)?),
            ("threshold" | "event_filter" | "rate_filter", "seconds") => seconds = Some(num(v)?),
            ("threshold" | "event_filter", "multiplier") => multiplier = Some(num(v)?),
            ("rate_filter", "new_action") => {
                new_action = Some(match v {
                    "alert" => RateAction::Alert,
                    "drop" => RateAction::Drop,
                    "pass" => RateAction::Pass,
                    "reject" => RateAction::Reject,
                    _ => {
                        return Err(err(
                            format!("unknown new_action '{v}'"),
                            s,
                            e,
                            "new_action is one of alert, drop, pass, reject",
                        ))
                    }
                })
            }
            ("rate_filter", "timeout") => timeout = Some(num(v)?),
            _ => return Err(err(format!("'{k}' is not a key of {kind}"), s, e, FORMS)),
        }
    }
    let end = line.len();
    let missing = |what: &str| err(format!("{kind} needs '{what}'"), lead, end, FORMS);
    let gid = gid.ok_or_else(|| missing("gen_id"))?;
    let sid = sid.ok_or_else(|| missing("sig_id"))?;
    match kind {
        "suppress" => {
            let by = match (track, ip) {
                (None, None) => None,
                (Some(t), Some(ip)) => Some((
                    match t {
                        Track::Src => SuppressTrack::Src,
                        Track::Dst => SuppressTrack::Dst,
                        _ => SuppressTrack::Either,
                    },
                    ip,
                )),
                (Some(_), None) => return Err(missing("ip")),
                (None, Some(_)) => return Err(missing("track")),
            };
            Ok(ThresholdDirective::Suppress { gid, sid, by })
        }
        "rate_filter" => {
            if sid == 0 {
                return Err(err(
                    "rate_filter needs a rule's sig_id (0 is a wildcard only for suppress)".into(),
                    lead,
                    end,
                    "name one rule per rate_filter line",
                ));
            }
            Ok(ThresholdDirective::RateFilter {
                gid,
                sid,
                track: track.ok_or_else(|| missing("track"))?,
                count: count.ok_or_else(|| missing("count"))?,
                seconds: seconds.ok_or_else(|| missing("seconds"))?,
                new_action: new_action.ok_or_else(|| missing("new_action"))?,
                timeout: timeout.ok_or_else(|| missing("timeout"))?,
            })
        }
        _ => {
            if sid == 0 {
                return Err(err(
                    format!("{kind} needs a rule's sig_id (0 is a wildcard only for suppress)"),
                    lead,
                    end,
                    "name one rule per line, or put the threshold in the rule itself",
                ));
            }
            let kind_t = ttype.ok_or_else(|| missing("type"))?;
            let track = track.ok_or_else(|| missing("track"))?;
            let seconds = if kind_t == ThresholdKind::Backoff {
                if track != Track::Flow {
                    return Err(err(
                        "backoff needs 'track by_flow'".into(),
                        lead,
                        end,
                        "write `track by_flow, count N, multiplier M`",
                    ));
                }
                multiplier.ok_or_else(|| missing("multiplier"))?;
                seconds.unwrap_or(0)
            } else {
                seconds.ok_or_else(|| missing("seconds"))?
            };
            Ok(ThresholdDirective::Threshold {
                gid,
                sid,
                threshold: Threshold {
                    kind: kind_t,
                    track,
                    count: count.ok_or_else(|| missing("count"))?,
                    seconds,
                    multiplier,
                },
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (ThresholdConfig, Vec<Diagnostic>) {
        parse_threshold_config(&SourceFile::new("threshold.config", text))
    }

    #[test]
    fn every_form_parses() {
        let (c, d) = parse(
            "# comment\n\
             threshold gen_id 1, sig_id 10, type limit, track by_src, count 1, seconds 60\n\
             event_filter gen_id 1, sig_id 11, type backoff, track by_flow, count 1, multiplier 10\n\
             suppress gen_id 1, sig_id 12\n\
             suppress gen_id 1, sig_id 13, track by_either, ip [10.0.0.0/8, 192.168.1.1]  # trailing\n\
             \n\
             rate_filter gen_id 1, sig_id 14, track by_rule, count 100, seconds 60, new_action drop, timeout 30\n",
        );
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(c.entries.len(), 5);
        assert_eq!(c.entries[0].line, 2);
        assert!(matches!(
            &c.entries[3].directive,
            ThresholdDirective::Suppress {
                sid: 13,
                by: Some((SuppressTrack::Either, AddressExpr::List(l))),
                ..
            } if l.len() == 2
        ));
        assert_eq!(
            c.entries[4].directive,
            ThresholdDirective::RateFilter {
                gid: 1,
                sid: 14,
                track: Track::Rule,
                count: 100,
                seconds: 60,
                new_action: RateAction::Drop,
                timeout: 30
            }
        );
    }

    #[test]
    fn bad_lines_name_line_and_column_and_good_lines_still_load() {
        let (c, d) = parse(
            "supress gen_id 1, sig_id 1\n\
             rate_filter gen_id 1, sig_id 2, track by_rule, count 1, seconds 60, new_action block, timeout 5\n\
             suppress gen_id 1, sig_id 3, track by_src\n\
             threshold gen_id 1, sig_id 4, type limit, track by_src, count x, seconds 60\n\
             suppress gen_id 1, sig_id 5\n",
        );
        assert_eq!(c.entries.len(), 1);
        assert_eq!(d.len(), 4);
        let r0 = d[0].render();
        assert!(
            r0.contains("threshold.config:1:1") && r0.contains("did you mean `suppress`"),
            "{r0}"
        );
        let r1 = d[1].render();
        assert!(
            r1.contains(":2:") && r1.contains("new_action 'block'"),
            "{r1}"
        );
        assert!(d[2].render().contains("needs 'ip'"));
        let r3 = d[3].render();
        assert!(r3.contains(":4:") && r3.contains("count"), "{r3}");
    }
}
