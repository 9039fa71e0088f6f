//! YAML configuration files with located errors.
//!
//! sekisho's policy and DNS firewall configs are YAML. Syntax and type errors come from the
//! deserialiser with a position; semantic errors (an unknown list name, a missing rules file) are
//! found later, on typed values that no longer know where they came from. [`YamlIndex`] maps a key
//! path such as `rule_groups[2].rules` back to its place in the file so those errors can still say
//! `policy.yaml:14:12`.

use std::collections::HashMap;
use std::ops::Range;

use serde::de::DeserializeOwned;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

use crate::{Diagnostic, SourceFile};

/// Deserialises `source` as YAML into `T`; on failure, one error diagnostic at the failing spot.
pub fn from_yaml<T: DeserializeOwned>(source: &SourceFile) -> Result<T, Diagnostic> {
    serde_yaml_ng::from_str(source.text()).map_err(|e| {
        // The deserialiser's message ends in "at line L column C"; the location says that already.
        let msg = e.to_string();
        let msg = match msg.find(" at line ") {
            Some(i) => msg[..i].to_string(),
            None => msg,
        };
        let d = Diagnostic::error(msg).with_code("yaml");
        match e.location() {
            Some(loc) => {
                let off = offset_of(source.text(), loc.line(), loc.column());
                d.at_span(source, off..off + 1)
            }
            None => d.in_file(source.name()),
        }
    })
}

/// Byte offset of 1-based `line` and 1-based character `col` (clamped to the text).
fn offset_of(text: &str, line: usize, col: usize) -> usize {
    let mut start = 0;
    for _ in 1..line {
        match text[start..].find('\n') {
            Some(i) => start += i + 1,
            None => return text.len(),
        }
    }
    let rest = &text[start..];
    let line_len = rest.find('\n').unwrap_or(rest.len());
    let byte = rest[..line_len]
        .char_indices()
        .nth(col.saturating_sub(1))
        .map(|(i, _)| i)
        .unwrap_or(line_len);
    start + byte
}

/// Where each key and value of a YAML document stands, by path (`a.b[2].c`; the root is `""`).
#[derive(Debug, Default, Clone)]
pub struct YamlIndex {
    values: HashMap<String, Range<usize>>,
    keys: HashMap<String, Range<usize>>,
}

impl YamlIndex {
    /// Indexes `text`. A document that does not parse gives an empty index (the deserialiser
    /// reports that error with its own position).
    pub fn new(text: &str) -> Self {
        let mut b = Builder {
            text,
            stack: Vec::new(),
            index: YamlIndex::default(),
        };
        let mut parser = Parser::new_from_str(text);
        if parser.load(&mut b, false).is_err() {
            return YamlIndex::default();
        }
        b.index
    }

    /// Span of the value at `path` (for a mapping or sequence: its first character).
    pub fn value(&self, path: &str) -> Option<Range<usize>> {
        self.values.get(path).cloned()
    }

    /// Span of the key naming `path` (`rule_groups[0].rules` → the word `rules`).
    pub fn key(&self, path: &str) -> Option<Range<usize>> {
        self.keys.get(path).cloned()
    }

    /// Span of the value at `path`, or of its closest indexed ancestor, or the start of the file.
    /// Use it for diagnostics about a path that may be absent (a missing key is reported at
    /// the mapping that should hold it).
    pub fn nearest(&self, path: &str) -> Range<usize> {
        let mut p = path;
        loop {
            if let Some(s) = self.values.get(p) {
                return s.clone();
            }
            match p.rfind(['.', '[']) {
                Some(i) => p = &p[..i],
                None => return self.values.get("").cloned().unwrap_or(0..1),
            }
        }
    }
}

enum Frame {
    Map { path: String, key: Option<String> },
    Seq { path: String, next: usize },
}

struct Builder<'a> {
    text: &'a str,
    stack: Vec<Frame>,
    index: YamlIndex,
}

impl Builder<'_> {
    fn span(&self, mark: Marker, scalar: Option<&str>) -> Range<usize> {
        let start = offset_of(self.text, mark.line(), mark.col() + 1);
        let len = match scalar {
            Some(s) => {
                // Quoted scalars start at the quote; cover the quotes too when present.
                let quoted = matches!(self.text.as_bytes().get(start), Some(b'"' | b'\''));
                s.len().max(1) + if quoted { 2 } else { 0 }
            }
            None => 1,
        };
        start..(start + len).min(self.text.len()).max(start)
    }

    /// Path of the node that is about to be read, or `None` when it is a mapping key.
    fn place_node(&mut self, key_text: Option<&str>, span: Range<usize>) -> Option<String> {
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Seq { path, next }) => {
                let p = format!("{path}[{next}]");
                *next += 1;
                Some(p)
            }
            Some(Frame::Map { path, key }) => match key.take() {
                Some(k) => Some(join(path, &k)),
                None => {
                    let k = key_text.unwrap_or("?").to_string();
                    self.index.keys.insert(join(path, &k), span);
                    *key = Some(k);
                    None
                }
            },
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

impl MarkedEventReceiver for Builder<'_> {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(s, ..) => {
                let span = self.span(mark, Some(&s));
                if let Some(p) = self.place_node(Some(&s), span.clone()) {
                    self.index.values.insert(p, span);
                }
            }
            Event::Alias(_) => {
                let span = self.span(mark, None);
                if let Some(p) = self.place_node(None, span.clone()) {
                    self.index.values.insert(p, span);
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let span = self.span(mark, None);
                let path = self
                    .place_node(None, span.clone())
                    .unwrap_or_else(|| "?".into());
                self.index.values.insert(path.clone(), span);
                self.stack.push(if matches!(ev, Event::MappingStart(..)) {
                    Frame::Map { path, key: None }
                } else {
                    Frame::Seq { path, next: 0 }
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "name: egress-fw\nvariables:\n  HOME_NET: [10.0.0.0/16]\nrule_groups:\n  - name: mail\n    rules: \"rules/mail.rules\"\n  - name: web\n    domain_list:\n      targets: [.example.com, api.github.com]\n";

    #[test]
    fn paths_point_at_values_and_keys() {
        let idx = YamlIndex::new(DOC);
        let at = |r: Range<usize>| &DOC[r];
        assert_eq!(at(idx.value("name").unwrap()), "egress-fw");
        assert_eq!(
            at(idx.value("rule_groups[0].rules").unwrap()),
            "\"rules/mail.rules\""
        );
        assert_eq!(
            at(idx.key("rule_groups[1].domain_list").unwrap()),
            "domain_list"
        );
        assert_eq!(
            at(idx.value("rule_groups[1].domain_list.targets[1]").unwrap()),
            "api.github.com"
        );
        assert_eq!(
            at(idx.value("variables.HOME_NET[0]").unwrap()),
            "10.0.0.0/16"
        );
        // Absent paths fall back to the nearest ancestor.
        assert_eq!(
            idx.nearest("rule_groups[1].nope"),
            idx.value("rule_groups[1]").unwrap()
        );
    }

    #[test]
    fn located_type_errors() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Cfg {
            name: String,
            port: u16,
        }
        let src = SourceFile::new("c.yaml", "name: x\nport: seventy\n");
        let d = from_yaml::<Cfg>(&src).unwrap_err();
        let loc = d.location.clone().unwrap();
        assert_eq!((loc.file.as_str(), loc.line, loc.column), ("c.yaml", 2, 7));
        assert!(d.message.contains("invalid type"), "{}", d.message);
        assert!(!d.message.contains(" at line "), "{}", d.message);
    }

    #[test]
    fn broken_yaml_gives_empty_index() {
        let idx = YamlIndex::new("a: [1, 2\nb: }");
        assert!(idx.value("a").is_none());
    }
}
