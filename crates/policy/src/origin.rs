//! Where a group's rule text came from, so rule spans become locations in the right file.
//!
//! Rules from a file (or from text sekisho generated) have spans into that file. Rules written
//! inline in the policy under `rules_text: |` are parsed from the de-indented block; their
//! locations are moved back onto the policy file's lines and columns, so a caret lands under
//! the spot in `policy.yaml`.

use std::ops::Range;

use sekisho_diag::{Diagnostic, SourceFile};

/// The text a group's rules were parsed from.
#[derive(Debug, Clone)]
pub(crate) enum Origin {
    /// A file (or a virtual file for generated text); spans index into it.
    File(SourceFile),
    /// A YAML literal block: `text` is the de-indented block, whose line 1 is `first_line` of
    /// `policy` and whose columns are shifted by `indent` characters.
    Inline {
        text: SourceFile,
        policy: SourceFile,
        first_line: u32,
        indent: u32,
    },
}

impl Origin {
    /// The text that spans index into.
    pub(crate) fn source(&self) -> &SourceFile {
        match self {
            Origin::File(s) => s,
            Origin::Inline { text, .. } => text,
        }
    }

    /// Moves a diagnostic located in [`Self::source`] to where the user wrote it.
    pub(crate) fn fix(&self, mut d: Diagnostic) -> Diagnostic {
        if let Origin::Inline {
            policy,
            first_line,
            indent,
            ..
        } = self
        {
            if let Some(loc) = d.location.as_mut() {
                if loc.line > 0 {
                    loc.line = first_line + loc.line - 1;
                    loc.column += indent;
                    loc.line_text = policy.line_text(loc.line as usize).to_string();
                }
                loc.file = policy.name().to_string();
            }
            // The rules parser names the first of two equal sids by its line in the block.
            if let Some(i) = d.message.find("first used on line ") {
                let at = i + "first used on line ".len();
                let digits: String = d.message[at..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                if let Ok(n) = digits.parse::<u32>() {
                    d.message = format!(
                        "{}{}{}",
                        &d.message[..at],
                        first_line + n - 1,
                        &d.message[at + digits.len()..]
                    );
                }
            }
        }
        d
    }

    /// Locates `d` at `span` of [`Self::source`], then [`Self::fix`]es it.
    pub(crate) fn at(&self, d: Diagnostic, span: Range<usize>) -> Diagnostic {
        self.fix(d.at_span(self.source(), span))
    }

    /// `file:line` of a span, for messages that point at another place ("first used at").
    pub(crate) fn place(&self, span: Range<usize>) -> String {
        let d = self.at(Diagnostic::note(""), span);
        match d.location {
            Some(l) => format!("{}:{}", l.file, l.line),
            None => self.source().name().to_string(),
        }
    }
}

/// Finds the literal block scalar that is the value of the key at `key_span` in `policy`, and
/// returns its de-indented text, the 1-based line of its first line and its indentation.
///
/// Only `key: |` (with optional `-`/`+` chomping) is recognised; for any other form (quoted,
/// folded `>`, explicit indentation) `None`, and the caller falls back to the parsed string.
pub(crate) fn literal_block(policy: &str, key_span: Range<usize>) -> Option<(String, u32, u32)> {
    let rest = policy.get(key_span.end..)?;
    let line_end = rest.find('\n')?;
    let head = rest[..line_end].trim_end_matches('\r');
    let head = head.strip_prefix(':')?.trim_start();
    let head = head.split(" #").next().unwrap_or(head).trim_end();
    if !matches!(head, "|" | "|-" | "|+") {
        return None;
    }
    let key_line_start = policy[..key_span.start].rfind('\n').map_or(0, |i| i + 1);
    let key_indent = policy[key_line_start..key_span.start].chars().count();
    let first_line = policy[..key_span.end + line_end + 1].matches('\n').count() as u32 + 1;
    let body = &rest[line_end + 1..];
    let mut indent = None;
    let mut out = String::new();
    for line in body.split_inclusive('\n') {
        let bare = line.trim_end_matches(['\n', '\r']);
        if bare.trim().is_empty() {
            out.push('\n');
            continue;
        }
        let n = bare.len() - bare.trim_start_matches(' ').len();
        let want = *indent.get_or_insert(n);
        if n < want || n <= key_indent {
            break;
        }
        out.push_str(&bare[want..]);
        out.push('\n');
    }
    let indent = indent?;
    // Trailing blank lines belong to the YAML after the block, not to the rules.
    while out.ends_with("\n\n") {
        out.pop();
    }
    Some((out, first_line, indent as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_block_maps_lines_and_columns() {
        let y = "rule_groups:\n  - name: x\n    rules_text: |\n      alert tcp any any -> any any (sid:1;)\n\n      alert tcp any any -> any any (foo; sid:2;)\n  - name: y\n";
        let k = y.find("rules_text").unwrap();
        let (text, first, indent) = literal_block(y, k..k + 10).unwrap();
        assert_eq!(first, 4);
        assert_eq!(indent, 6);
        assert_eq!(
            text,
            "alert tcp any any -> any any (sid:1;)\n\nalert tcp any any -> any any (foo; sid:2;)\n"
        );
        let policy = SourceFile::new("p.yaml", y);
        let o = Origin::Inline {
            text: SourceFile::new("p.yaml", text.clone()),
            policy,
            first_line: first,
            indent,
        };
        let at = text.find("foo").unwrap();
        let d = o.at(Diagnostic::error("x"), at..at + 3);
        let l = d.location.unwrap();
        assert_eq!((l.line, l.column, l.len), (6, 37, 3));
        assert_eq!(
            l.line_text,
            "      alert tcp any any -> any any (foo; sid:2;)"
        );
    }

    #[test]
    fn other_forms_are_not_literal_blocks() {
        let y = "rules_text: \"alert\"\n";
        assert!(literal_block(y, 0..10).is_none());
        let y = "rules_text: >\n  a\n";
        assert!(literal_block(y, 0..10).is_none());
    }
}
