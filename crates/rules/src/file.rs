//! Rule files: line handling, continuations, limits.

use sekisho_diag::{Diagnostic, SourceFile};

use crate::ast::Rule;
use crate::parse;

/// Longest accepted rule (after joining continuation lines), in bytes.
pub const MAX_RULE_LEN: usize = 8192;

/// The result of parsing a rule file.
#[derive(Debug, Clone, Default)]
pub struct RuleFile {
    /// Rules that parsed, in file order.
    pub rules: Vec<Rule>,
    /// Errors for skipped rules and warnings for suspicious ones, in file order.
    pub diagnostics: Vec<Diagnostic>,
}

impl RuleFile {
    /// True if any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Maps offsets in a joined (logical) rule back to offsets in the file.
///
/// Each segment is `(logical_start, file_start)`; an offset belongs to the last segment that
/// starts at or before it.
#[derive(Debug, Clone)]
pub(crate) struct OffsetMap {
    segments: Vec<(usize, usize)>,
}

impl OffsetMap {
    /// Logical offset == file offset.
    pub(crate) fn identity() -> Self {
        OffsetMap {
            segments: vec![(0, 0)],
        }
    }

    /// File offset for a logical offset.
    pub(crate) fn map(&self, off: usize) -> usize {
        let idx = match self.segments.binary_search_by(|s| s.0.cmp(&off)) {
            Ok(i) => i,
            Err(0) => 0,
            Err(i) => i - 1,
        };
        let (l, f) = self.segments[idx];
        f + off.saturating_sub(l)
    }
}

/// Parses every rule in `src`.
///
/// Lines starting with `#`, CR or LF are skipped; lines starting with a space or tab are
/// skipped too (as Suricata does) but get a warning when they look like a rule. A line ending
/// in `\` is joined with the next one.
pub fn parse_file(src: &SourceFile) -> RuleFile {
    let text = src.text();
    let mut out = RuleFile::default();
    let bytes = text.as_bytes();
    let mut pos = 0;
    let mut line_no: u32 = 0;
    while pos < bytes.len() {
        // Collect one logical rule: physical lines joined while they end in '\'.
        let first_line_start = pos;
        line_no += 1;
        let first_line_no = line_no;
        // Fast path: a plain one-line rule is parsed in place, without copying.
        {
            let line_end = text[pos..].find('\n').map_or(bytes.len(), |i| pos + i);
            let line = text[pos..line_end].trim_end_matches('\r');
            let plain = !line.is_empty()
                && !matches!(line.as_bytes()[0], b'#' | b' ' | b'\t')
                && !line.trim_end().ends_with('\\')
                && line.len() <= MAX_RULE_LEN;
            if plain {
                let map = OffsetMap {
                    segments: vec![(0, pos)],
                };
                match parse::parse_rule_text(src, line, &map, first_line_no, &mut out.diagnostics) {
                    Ok(rule) => out.rules.push(rule),
                    Err(d) => out.diagnostics.push(d),
                }
                pos = line_end + 1;
                continue;
            }
        }
        let mut logical = String::new();
        let mut map = OffsetMap {
            segments: Vec::new(),
        };
        let mut cur = pos;
        let mut too_long = false;
        let end_of_rule;
        loop {
            let line_end = text[cur..].find('\n').map_or(bytes.len(), |i| cur + i);
            let next = (line_end + 1).min(bytes.len().max(line_end));
            let line = text[cur..line_end].trim_end_matches('\r');
            let skip_line = cur == first_line_start
                && (line.is_empty() || matches!(line.as_bytes()[0], b'#' | b' ' | b'\t'));
            if skip_line {
                if cur == first_line_start && matches!(line.as_bytes().first(), Some(b' ' | b'\t'))
                {
                    let trimmed = line.trim_start();
                    if looks_like_rule(trimmed) {
                        let off = cur + (line.len() - trimmed.len());
                        out.diagnostics.push(
                            Diagnostic::warning(
                                "indented rule is ignored: Suricata skips lines starting with whitespace",
                            )
                            .with_code("indented-rule")
                            .at_span(src, off..off + trimmed.split_whitespace().next().map_or(1, str::len))
                            .with_hint("remove the leading whitespace to load this rule, or start the line with '#' to comment it out"),
                        );
                    }
                }
                end_of_rule = next;
                logical.clear();
                break;
            }
            let body = line.trim_end();
            if let Some(stripped) = body.strip_suffix('\\') {
                map.segments.push((logical.len(), cur));
                if logical.len() + stripped.len() <= MAX_RULE_LEN {
                    logical.push_str(stripped);
                } else {
                    too_long = true;
                }
                if next >= bytes.len() || line_end >= bytes.len() {
                    end_of_rule = bytes.len();
                    break;
                }
                cur = next;
                line_no += 1;
                continue;
            }
            map.segments.push((logical.len(), cur));
            if logical.len() + line.len() <= MAX_RULE_LEN {
                logical.push_str(line);
            } else {
                too_long = true;
            }
            end_of_rule = next;
            break;
        }
        pos = end_of_rule.max(pos + 1);
        if map.segments.is_empty() {
            continue;
        }
        if too_long || logical.len() > MAX_RULE_LEN {
            out.diagnostics.push(
                Diagnostic::error(format!("rule is longer than the {MAX_RULE_LEN}-byte limit"))
                    .with_code("rule-too-long")
                    .at_span(src, first_line_start..first_line_start + 1)
                    .with_hint("split long content or pcre values, or remove options"),
            );
            continue;
        }
        if logical.trim().is_empty() {
            continue;
        }
        match parse::parse_rule_text(src, &logical, &map, first_line_no, &mut out.diagnostics) {
            Ok(rule) => out.rules.push(rule),
            Err(d) => out.diagnostics.push(d),
        }
    }
    // Suricata keeps one rule per (gid, sid): a repeat with a higher rev replaces the earlier
    // rule (warning), any other repeat is rejected (error).
    let mut kept: std::collections::HashMap<(u64, u64), usize> =
        std::collections::HashMap::with_capacity(out.rules.len());
    let mut dropped = vec![false; out.rules.len()];
    for i in 0..out.rules.len() {
        let r = &out.rules[i];
        let key = (r.gid(), r.sid());
        let Some(&k) = kept.get(&key) else {
            kept.insert(key, i);
            continue;
        };
        let sid_span = |r: &Rule| {
            r.options
                .iter()
                .find(|o| matches!(o.node, crate::ast::RuleOption::Sid(_)))
                .map_or(r.span, |o| o.span)
        };
        let old = &out.rules[k];
        if r.rev() > old.rev() {
            let sp = sid_span(old);
            out.diagnostics.push(
                Diagnostic::warning(format!(
                    "sid {} is defined again on line {} with a higher rev ({} > {}): this rule is replaced",
                    r.sid(),
                    r.line,
                    r.rev(),
                    old.rev()
                ))
                .with_code("sid-replaced")
                .at_span(src, sp.start..sp.end),
            );
            dropped[k] = true;
            kept.insert(key, i);
        } else {
            let sp = sid_span(r);
            out.diagnostics
                .push(crate::vars::dup_diag(r, old).at_span(src, sp.start..sp.end));
            dropped[i] = true;
        }
    }
    let mut i = 0;
    out.rules.retain(|_| {
        i += 1;
        !dropped[i - 1]
    });
    out
}

/// Parses a rule file given as raw bytes (as read from disk).
///
/// Suricata rejects a rule that is not valid UTF-8 but loads the rest of the file; this does
/// the same: each line with invalid UTF-8 gets an error and is turned into a comment (so the
/// returned [`SourceFile`] text, which spans refer to, is valid UTF-8 and keeps the line
/// numbering).
pub fn parse_file_bytes(name: &str, bytes: &[u8]) -> (SourceFile, RuleFile) {
    let mut text = String::with_capacity(bytes.len());
    let mut bad_lines = Vec::new();
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if i > 0 {
            text.push('\n');
        }
        match std::str::from_utf8(line) {
            Ok(l) => text.push_str(l),
            Err(_) => {
                bad_lines.push((text.len(), i + 1));
                text.push('#');
                text.push_str(&String::from_utf8_lossy(line));
            }
        }
    }
    let src = SourceFile::new(name, text);
    let mut out = parse_file(&src);
    for (off, line) in bad_lines {
        out.diagnostics.push(
            Diagnostic::error(format!(
                "line {line} is not valid UTF-8; the rule is skipped"
            ))
            .with_code("invalid-utf8")
            .at_span(&src, off..off + 1)
            .with_hint(
                "save the rule file as UTF-8; write non-ASCII content bytes in hex, e.g. |C3 A9|",
            ),
        );
    }
    (src, out)
}

/// True if a skipped indented line starts with an action keyword (so it was meant as a rule).
fn looks_like_rule(s: &str) -> bool {
    let word = s.split(|c: char| c.is_whitespace()).next().unwrap_or("");
    let kind = word.split([':', ',']).next().unwrap_or("");
    crate::parse::parse_action_kind(kind).is_some() && s.contains('(')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_map_maps_segments() {
        let m = OffsetMap {
            segments: vec![(0, 0), (10, 12), (20, 30)],
        };
        assert_eq!(m.map(5), 5);
        assert_eq!(m.map(10), 12);
        assert_eq!(m.map(15), 17);
        assert_eq!(m.map(25), 35);
    }
}
