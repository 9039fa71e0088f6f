//! Compiler-style diagnostics shared by every sekisho crate.
//!
//! A [`Diagnostic`] says what was wrong, where (file, 1-based line and column), and how to fix it.
//! It renders as a person reads compiler output:
//!
//! ```text
//! rules/mail.rules:3:41: error: unknown keyword 'smtp.rcpt'
//!     3 | alert smtp any any -> any any (msg:"x"; smtp.rcpt; content:"x"; sid:9;)
//!       |                                         ^^^^^^^^^
//!   hint: did you mean 'smtp.rcpt_to'?
//! ```
//!
//! and as JSON (one object per diagnostic) for editors and CI. Parsers produce byte spans into a
//! [`SourceFile`]; the source file turns them into [`Location`]s so that every crate reports
//! positions the same way.
#![warn(missing_docs)]

use std::fmt;
use std::ops::Range;

use serde::Serialize;

pub mod yaml;

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The input is invalid; the thing it describes is not loaded.
    Error,
    /// Legal but suspicious input; it is loaded.
    Warning,
    /// Additional information, e.g. a summary.
    Note,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        })
    }
}

/// A resolved position in a file: what a person needs to find the spot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    /// The file as the user named it (relative paths stay relative).
    pub file: String,
    /// 1-based line number.
    pub line: u32,
    /// 1-based column, counted in characters (not bytes).
    pub column: u32,
    /// Number of characters the caret underline covers (at least 1).
    #[serde(skip_serializing_if = "is_one")]
    pub len: u32,
    /// The whole offending line, without its line terminator.
    #[serde(skip)]
    pub line_text: String,
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

/// One message about the input: severity, message, optional location and hint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Error, warning or note.
    pub severity: Severity,
    /// A short stable identifier for the class of problem, e.g. `unknown-keyword`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// What was wrong, in one line; lower-case start, no final period.
    pub message: String,
    /// Where it was wrong, when the problem has a position.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// How to fix it, when there is an obvious fix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Diagnostic {
    /// A new diagnostic with no location or hint.
    pub fn new(severity: Severity, message: impl Into<String>) -> Self {
        Diagnostic {
            severity,
            code: None,
            message: message.into(),
            location: None,
            hint: None,
        }
    }

    /// A new error.
    pub fn error(message: impl Into<String>) -> Self {
        Self::new(Severity::Error, message)
    }

    /// A new warning.
    pub fn warning(message: impl Into<String>) -> Self {
        Self::new(Severity::Warning, message)
    }

    /// A new note.
    pub fn note(message: impl Into<String>) -> Self {
        Self::new(Severity::Note, message)
    }

    /// Sets the stable problem code (e.g. `duplicate-sid`).
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    /// Sets the location.
    pub fn at(mut self, location: Location) -> Self {
        self.location = Some(location);
        self
    }

    /// Sets the location from a byte span in `source`.
    pub fn at_span(self, source: &SourceFile, span: Range<usize>) -> Self {
        let loc = source.location(span);
        self.at(loc)
    }

    /// Sets the location to a file as a whole (no line), e.g. for a missing file.
    pub fn in_file(mut self, file: impl Into<String>) -> Self {
        self.location = Some(Location {
            file: file.into(),
            line: 0,
            column: 0,
            len: 1,
            line_text: String::new(),
        });
        self
    }

    /// Sets the hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// True for errors.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Renders the diagnostic as compiler-style text (several lines, ending in a newline).
    pub fn render(&self) -> String {
        let mut out = String::new();
        match &self.location {
            Some(loc) if loc.line > 0 => {
                out.push_str(&format!(
                    "{}:{}:{}: {}: {}\n",
                    loc.file, loc.line, loc.column, self.severity, self.message
                ));
                if !loc.line_text.is_empty() {
                    let num = loc.line.to_string();
                    let pad = " ".repeat(num.len());
                    let shown = loc.line_text.replace('\t', " ");
                    out.push_str(&format!("{pad} |\n{num} | {shown}\n"));
                    let col = loc.column.max(1) as usize - 1;
                    let avail = shown.chars().count().saturating_sub(col).max(1);
                    let len = (loc.len.max(1) as usize).min(avail);
                    out.push_str(&format!("{pad} | {}{}\n", " ".repeat(col), "^".repeat(len)));
                }
            }
            Some(loc) => {
                out.push_str(&format!(
                    "{}: {}: {}\n",
                    loc.file, self.severity, self.message
                ));
            }
            None => out.push_str(&format!("{}: {}\n", self.severity, self.message)),
        }
        if let Some(h) = &self.hint {
            out.push_str(&format!("  hint: {h}\n"));
        }
        out
    }

    /// The diagnostic as a JSON value: `severity`, `code`, `message`, `file`, `line`, `column`,
    /// `len`, `hint` (absent fields omitted).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

/// The text of one input file, indexed by line so byte spans become locations cheaply.
#[derive(Debug, Clone)]
pub struct SourceFile {
    name: String,
    text: String,
    /// Byte offset of the start of each line.
    line_starts: Vec<usize>,
}

impl SourceFile {
    /// Wraps `text`, read from the file the user called `name`.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        let text = text.into();
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        SourceFile {
            name: name.into(),
            text,
            line_starts,
        }
    }

    /// The file name as given.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The whole text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// 1-based line number and byte offset of that line's start for a byte offset.
    fn line_of(&self, offset: usize) -> (usize, usize) {
        let idx = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        (idx + 1, self.line_starts[idx])
    }

    /// The text of 1-based line `line` without its terminator (empty past the end).
    pub fn line_text(&self, line: usize) -> &str {
        let Some(&start) = self.line_starts.get(line.wrapping_sub(1)) else {
            return "";
        };
        let end = self
            .line_starts
            .get(line)
            .copied()
            .unwrap_or(self.text.len());
        self.text[start..end].trim_end_matches(['\n', '\r'])
    }

    /// Resolves a byte span into a location. Offsets are clamped to the text and to char
    /// boundaries; a span crossing a line end is cut at the end of its first line.
    pub fn location(&self, span: Range<usize>) -> Location {
        let start = floor_char_boundary(&self.text, span.start.min(self.text.len()));
        let end = floor_char_boundary(&self.text, span.end.clamp(start, self.text.len()));
        let (line, line_start) = self.line_of(start);
        let line_text = self.line_text(line).to_string();
        let line_end = line_start + line_text.len();
        let column = self.text[line_start..start].chars().count() + 1;
        let len = self.text[start..end.min(line_end).max(start)]
            .chars()
            .count();
        Location {
            file: self.name.clone(),
            line: line as u32,
            column: column as u32,
            len: len.max(1) as u32,
            line_text,
        }
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Suggests the candidate closest to `word` (edit distance at most a third of its length), for
/// "did you mean" hints.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance over characters, case-insensitive.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().flat_map(char::to_lowercase).collect();
    let b: Vec<char> = b.chars().flat_map(char::to_lowercase).collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// Renders diagnostics as a JSON array (the `--format json` output).
pub fn to_json_array(diags: &[Diagnostic]) -> String {
    let values: Vec<_> = diags.iter().map(Diagnostic::to_json).collect();
    serde_json::to_string_pretty(&values).unwrap_or_else(|_| "[]".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_caret_under_span() {
        let src = SourceFile::new(
            "r.rules",
            "# c\nalert tcp any any -> any any (msg:\"x\"; foo; sid:1;)\n",
        );
        let text = src.text();
        let at = text.find("foo").unwrap();
        let d = Diagnostic::error("unknown keyword 'foo'")
            .at_span(&src, at..at + 3)
            .with_hint("remove it");
        let r = d.render();
        assert_eq!(
            r,
            "r.rules:2:40: error: unknown keyword 'foo'\n  |\n2 | alert tcp any any -> any any (msg:\"x\"; foo; sid:1;)\n  |                                        ^^^\n  hint: remove it\n"
        );
        let j = d.to_json();
        assert_eq!(j["line"], 2);
        assert_eq!(j["column"], 40);
        assert_eq!(j["len"], 3);
        assert_eq!(j["file"], "r.rules");
        assert_eq!(j["severity"], "error");
        assert_eq!(j["hint"], "remove it");
    }

    #[test]
    fn columns_count_characters() {
        let src = SourceFile::new("f", "é x\n");
        let loc = src.location(3..4);
        assert_eq!((loc.line, loc.column, loc.len), (1, 3, 1));
    }

    #[test]
    fn out_of_range_spans_are_clamped() {
        let src = SourceFile::new("f", "abc");
        let loc = src.location(10..20);
        assert_eq!((loc.line, loc.column), (1, 4));
        let src = SourceFile::new("f", "");
        assert_eq!(src.location(0..5).line, 1);
    }

    #[test]
    fn suggests_close_names() {
        assert_eq!(
            suggest("smtp.rcpt", ["smtp.rcpt_to", "smtp.helo"]),
            Some("smtp.rcpt_to")
        );
        assert_eq!(suggest("zzzz", ["smtp.helo"]), None);
    }
}
