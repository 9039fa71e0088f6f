//! Domain lists: entry syntax, list-file formats and the matcher.
//!
//! # Matching semantics
//!
//! Route 53 Resolver DNS Firewall (reference `aws-dns-firewall.md` §3, "Matching semantics";
//! AWS's own text leaves these **unconfirmed**, we implement them as the reference states):
//!
//! - `example.com` (no wildcard) matches only the exact name `example.com`, not its subdomains;
//! - `*.example.com` matches every name ending in `.example.com` at any depth
//!   (`a.example.com`, `x.y.example.com`) but **not** `example.com` itself: list both to cover
//!   apex and subdomains;
//! - `*` alone matches every name (the walled garden's final catch-all);
//! - comparison is case-insensitive and one trailing dot is ignored on both sides.
//!
//! # Lookup cost
//!
//! Entries live in one hash map keyed by the normalised name (lower case, no trailing dot) with
//! a flag byte saying whether the key is an exact entry, a wildcard parent (`*.key`) or both. A
//! lookup hashes the name and each of its parent suffixes: O(labels), independent of how many
//! names the list holds.
//!
//! # File syntax
//!
//! One entry per line. Accepted: plain names (`example.com`), wildcard names (`*.example.com`,
//! `*`), hosts-file lines (`0.0.0.0 ads.example.com [more names]`, exact matches; the usual
//! `localhost`-style housekeeping names are skipped), comments after `#` and lines starting with
//! `!` (adblock headers). Labels may use `A-Z a-z 0-9 -` as in AWS, plus `_` because real names
//! such as `_dmarc.example.com` carry it.

use std::net::IpAddr;

use rustc_hash::FxHashMap;

const EXACT: u8 = 1;
const WILDCARD: u8 = 2;

/// Longest accepted entry, in characters (the AWS limit for a domain list entry).
pub const MAX_ENTRY_LEN: usize = 255;

/// A set of domain entries with Route 53 DNS Firewall matching semantics (see module docs).
#[derive(Debug, Default, Clone)]
pub struct DomainSet {
    // FxHash: lookups hash attacker-chosen query names, but the table's contents come only from
    // trusted lists, so queries cannot grow collision chains; speed wins over SipHash here.
    names: FxHashMap<Box<str>, u8>,
    match_all: bool,
    entries: usize,
}

/// Why one entry was rejected; `offset`/`len` are in bytes within the entry text given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryError {
    /// What is wrong, lower-case, no final period.
    pub message: String,
    /// Byte offset of the offending part inside the entry.
    pub offset: usize,
    /// Length in bytes of the offending part (at least 1).
    pub len: usize,
}

/// A rejected line of a list file: 1-based line, byte offset in the whole text, length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// 1-based line number.
    pub line: usize,
    /// Byte offset of the offending part in the whole text.
    pub offset: usize,
    /// Length in bytes of the offending part.
    pub len: usize,
    /// What is wrong.
    pub message: String,
}

/// Normalises a DNS name for matching: lower-case ASCII, one trailing dot removed.
pub fn normalise(name: &str) -> String {
    let n = name.strip_suffix('.').unwrap_or(name);
    n.to_ascii_lowercase()
}

impl DomainSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty set with room for about `n` entries (avoids rehashing while loading big lists).
    pub fn with_capacity(n: usize) -> Self {
        DomainSet {
            names: FxHashMap::with_capacity_and_hasher(n, Default::default()),
            ..Self::default()
        }
    }

    /// Number of entries added (duplicates counted once per distinct entry).
    pub fn len(&self) -> usize {
        self.entries + usize::from(self.match_all)
    }

    /// True when the set holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when the set holds the catch-all `*`.
    pub fn is_match_all(&self) -> bool {
        self.match_all
    }

    /// Adds one entry in AWS syntax (`name`, `*.name` or `*`).
    pub fn insert(&mut self, entry: &str) -> Result<(), EntryError> {
        let (kind, name, off) = if entry == "*" {
            self.match_all = true;
            return Ok(());
        } else if let Some(rest) = entry.strip_prefix("*.") {
            (WILDCARD, rest, 2)
        } else {
            (EXACT, entry, 0)
        };
        validate(name).map_err(|mut e| {
            e.offset += off;
            e
        })?;
        let key = normalise(name);
        let flags = self.names.entry(key.into_boxed_str()).or_insert(0);
        if *flags & kind == 0 {
            self.entries += 1;
        }
        *flags |= kind;
        Ok(())
    }

    /// Adds every entry of a list file's text (see module docs for the syntax). Stops at the
    /// first invalid entry and says where it is.
    pub fn extend_from_text(&mut self, text: &str) -> Result<(), LineError> {
        let mut offset = 0;
        for (i, raw) in text.split_inclusive('\n').enumerate() {
            let line_start = offset;
            offset += raw.len();
            let line = match raw.find('#') {
                Some(c) => &raw[..c],
                None => raw,
            };
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('!') {
                continue;
            }
            let mut tokens = tokens_with_offsets(line);
            let Some((first_off, first)) = tokens.next() else {
                continue;
            };
            let err = |off: usize, e: EntryError| LineError {
                line: i + 1,
                offset: line_start + off + e.offset,
                len: e.len.max(1),
                message: e.message,
            };
            let looks_like_ip =
                first.starts_with(|c: char| c.is_ascii_digit()) || first.contains(':');
            if looks_like_ip && first.parse::<IpAddr>().is_ok() {
                for (off, name) in tokens {
                    if is_housekeeping(name) {
                        continue;
                    }
                    self.insert(name).map_err(|e| err(off, e))?;
                }
            } else {
                self.insert(first).map_err(|e| err(first_off, e))?;
                if let Some((off, extra)) = tokens.next() {
                    return Err(LineError {
                        line: i + 1,
                        offset: line_start + off,
                        len: extra.len(),
                        message: format!("unexpected '{extra}' after the domain name"),
                    });
                }
            }
        }
        Ok(())
    }

    /// True when `name` (already normalised, see [`normalise`]) matches an entry.
    pub fn matches(&self, name: &str) -> bool {
        if self.match_all {
            return true;
        }
        if self.names.get(name).is_some_and(|f| f & EXACT != 0) {
            return true;
        }
        let mut rest = name;
        while let Some(dot) = rest.find('.') {
            rest = &rest[dot + 1..];
            if self.names.get(rest).is_some_and(|f| f & WILDCARD != 0) {
                return true;
            }
        }
        false
    }

    /// Iterates the entries in AWS syntax (`*.name` for wildcards), in no particular order.
    pub fn entries(&self) -> impl Iterator<Item = String> + '_ {
        let all = self.match_all.then(|| "*".to_string());
        all.into_iter().chain(self.names.iter().flat_map(|(k, f)| {
            let e = (f & EXACT != 0).then(|| k.to_string());
            let w = (f & WILDCARD != 0).then(|| format!("*.{k}"));
            e.into_iter().chain(w)
        }))
    }
}

fn tokens_with_offsets(line: &str) -> impl Iterator<Item = (usize, &str)> {
    let base = line.as_ptr() as usize;
    line.split_ascii_whitespace()
        .map(move |t| (t.as_ptr() as usize - base, t))
}

fn is_housekeeping(name: &str) -> bool {
    matches!(
        name,
        "localhost"
            | "localhost.localdomain"
            | "local"
            | "broadcasthost"
            | "ip6-localhost"
            | "ip6-loopback"
            | "ip6-localnet"
            | "ip6-mcastprefix"
            | "ip6-allnodes"
            | "ip6-allrouters"
            | "ip6-allhosts"
            | "0.0.0.0"
    )
}

/// Checks a domain name (without the `*.` prefix) against the entry syntax.
fn validate(name: &str) -> Result<(), EntryError> {
    let bare = name.strip_suffix('.').unwrap_or(name);
    if bare.is_empty() {
        return Err(EntryError {
            message: "empty domain name".into(),
            offset: 0,
            len: 1,
        });
    }
    if name.len() > MAX_ENTRY_LEN {
        return Err(EntryError {
            message: format!(
                "domain name is {} characters long; the limit is {MAX_ENTRY_LEN}",
                name.len()
            ),
            offset: 0,
            len: name.len(),
        });
    }
    let mut off = 0;
    for label in bare.split('.') {
        if label.is_empty() {
            return Err(EntryError {
                message: "empty label (two dots in a row, or a leading dot)".into(),
                offset: off,
                len: 1,
            });
        }
        if label.len() > 63 {
            return Err(EntryError {
                message: format!("label '{label}' is longer than 63 characters"),
                offset: off,
                len: label.len(),
            });
        }
        if let Some((i, c)) = label
            .char_indices()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            let msg = if c == '*' {
                "'*' is only allowed as the whole first label ('*.example.com') or alone".into()
            } else {
                format!("character '{c}' is not allowed in a domain name (A-Z a-z 0-9 - _ and '.' between labels)")
            };
            return Err(EntryError {
                message: msg,
                offset: off + i,
                len: c.len_utf8(),
            });
        }
        off += label.len() + 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(entries: &[&str]) -> DomainSet {
        let mut s = DomainSet::new();
        for e in entries {
            s.insert(e).unwrap();
        }
        s
    }

    #[test]
    fn exact_entry_matches_only_itself() {
        // Reference §3: `example.com` matches only the exact name (unconfirmed by AWS text).
        let s = set(&["example.com"]);
        assert!(s.matches("example.com"));
        assert!(!s.matches("www.example.com"));
        assert!(!s.matches("com"));
        assert!(!s.matches("badexample.com"));
    }

    #[test]
    fn wildcard_matches_subdomains_at_any_depth_but_not_apex() {
        // Reference §3: `*.example.com` matches any depth below but not the apex.
        let s = set(&["*.example.com"]);
        assert!(s.matches("a.example.com"));
        assert!(s.matches("x.y.example.com"));
        assert!(!s.matches("example.com"));
        assert!(!s.matches("notexample.com"));
        assert!(!s.matches("example.com.evil"));
    }

    #[test]
    fn star_matches_everything() {
        let s = set(&["*"]);
        assert!(s.matches("anything.at.all"));
        assert!(s.matches("com"));
        assert!(s.is_match_all());
    }

    #[test]
    fn case_and_trailing_dot_are_normalised() {
        let s = set(&["Gmail.COM.", "*.Google.com"]);
        assert!(s.matches(&normalise("GMAIL.com.")));
        assert!(s.matches(&normalise("Smtp.GOOGLE.com")));
    }

    #[test]
    fn exact_and_wildcard_on_same_key_are_both_kept() {
        let s = set(&["example.com", "*.example.com", "example.com"]);
        assert_eq!(s.len(), 2);
        assert!(s.matches("example.com") && s.matches("a.example.com"));
        let mut e: Vec<_> = s.entries().collect();
        e.sort();
        assert_eq!(e, ["*.example.com", "example.com"]);
    }

    #[test]
    fn bad_entries_are_rejected_with_position() {
        let mut s = DomainSet::new();
        let e = s.insert("exa mple.com").unwrap_err();
        assert_eq!(e.offset, 3);
        let e = s.insert("*.a..b").unwrap_err();
        assert_eq!(e.offset, 4, "{e:?}");
        assert!(s.insert("a.*.b").unwrap_err().message.contains("'*'"));
        assert!(s.insert("").is_err());
        assert!(s.insert(&"a".repeat(64)).is_err());
        assert!(s.insert(&format!("{}.com", "a.".repeat(130))).is_err());
    }

    #[test]
    fn file_syntaxes() {
        let text = "# header\n! adblock comment\n*.ads.example\nplain.example # trailing\n0.0.0.0 hosts1.example hosts2.example\n127.0.0.1 localhost\n::1 ip6-localhost\n\n  \n";
        let mut s = DomainSet::new();
        s.extend_from_text(text).unwrap();
        assert!(s.matches("x.ads.example"));
        assert!(!s.matches("ads.example"));
        assert!(s.matches("plain.example"));
        assert!(s.matches("hosts1.example") && s.matches("hosts2.example"));
        assert!(!s.matches("sub.hosts1.example"));
        assert!(!s.matches("localhost"));
        assert_eq!(s.len(), 4);
    }

    #[test]
    fn file_errors_point_at_the_line() {
        let text = "good.example\n0.0.0.0 bad!name.example\n";
        let e = DomainSet::new().extend_from_text(text).unwrap_err();
        assert_eq!(e.line, 2);
        assert_eq!(&text[e.offset..e.offset + e.len], "!");
        let e = DomainSet::new()
            .extend_from_text("a.example b.example\n")
            .unwrap_err();
        assert_eq!(e.offset, 10);
    }

    #[test]
    fn real_blocklist_loads() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/blocklists/hagezi-light-wildcard.txt"
        );
        let Ok(text) = std::fs::read_to_string(path) else {
            eprintln!("skipping: {path} not present");
            return;
        };
        let mut s = DomainSet::with_capacity(130_000);
        s.extend_from_text(&text).unwrap();
        assert_eq!(s.len(), 122_680);
        assert!(s.matches("x.000free.us"));
        assert!(!s.matches("000free.us"));
    }
}
