//! Precompiled single-pattern search for `content`, case-sensitive or ASCII-caseless.

use memchr::memmem;

/// A compiled content pattern; `find` returns the start of the first occurrence.
#[derive(Debug, Clone)]
pub(crate) enum Searcher {
    /// Case-sensitive (or caseless without ASCII letters): memmem with a precomputed table.
    Exact(Box<memmem::Finder<'static>>),
    /// ASCII-caseless: scan for an anchor byte (both cases) then verify the whole pattern.
    Caseless {
        /// Pattern, lower-cased.
        lower: Vec<u8>,
        /// Index of the anchor byte inside the pattern.
        anchor: usize,
        /// Anchor byte in lower and upper case.
        lo: u8,
        up: u8,
    },
}

/// Rough commonness of a byte in protocol text; the anchor is the least common byte so the
/// candidate scan stops rarely.
fn commonness(b: u8) -> u8 {
    match b {
        b'e' | b't' | b'a' | b'o' | b'i' | b'n' | b's' | b'r' | b' ' => 9,
        b'h' | b'l' | b'd' | b'c' | b'u' | b'm' | b'f' | b'p' | b'g' | b'.' | b'/' => 7,
        b'0'..=b'9' => 6,
        b'a'..=b'z' | b'A'..=b'Z' => 5,
        0 | b'\r' | b'\n' | b'-' | b'_' | b'=' | b':' => 5,
        _ => 2,
    }
}

impl Searcher {
    /// Compiles `pattern` (non-empty) for exact or ASCII-caseless search.
    pub(crate) fn new(pattern: &[u8], nocase: bool) -> Searcher {
        if !nocase || !pattern.iter().any(u8::is_ascii_alphabetic) {
            return Searcher::Exact(Box::new(memmem::Finder::new(pattern).into_owned()));
        }
        let lower = pattern.to_ascii_lowercase();
        let anchor = lower
            .iter()
            .enumerate()
            .min_by_key(|(_, &b)| commonness(b))
            .map_or(0, |(i, _)| i);
        let lo = lower[anchor];
        Searcher::Caseless {
            lo,
            up: lo.to_ascii_uppercase(),
            lower,
            anchor,
        }
    }

    /// Start of the first occurrence of the pattern in `hay`.
    pub(crate) fn find(&self, hay: &[u8]) -> Option<usize> {
        match self {
            Searcher::Exact(f) => f.find(hay),
            Searcher::Caseless {
                lower,
                anchor,
                lo,
                up,
            } => {
                let n = lower.len();
                if hay.len() < n {
                    return None;
                }
                // Candidates for the anchor lie in [anchor, hay.len() - n + anchor].
                let last = hay.len() - n + anchor;
                let mut from = *anchor;
                while from <= last {
                    let rel = if lo == up {
                        memchr::memchr(*lo, &hay[from..=last])
                    } else {
                        memchr::memchr2(*lo, *up, &hay[from..=last])
                    }?;
                    let start = from + rel - anchor;
                    if hay[start..start + n].eq_ignore_ascii_case(lower) {
                        return Some(start);
                    }
                    from += rel + 1;
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Searcher;

    #[test]
    fn caseless_finds_first() {
        let s = Searcher::new(b"HeLLo", true);
        assert_eq!(s.find(b"xxhellO hello"), Some(2));
        assert_eq!(s.find(b"hell"), None);
        assert_eq!(s.find(b"HELLO"), Some(0));
        let s = Searcher::new(b"a|b", true);
        assert_eq!(s.find(b"zzA|Bz"), Some(2));
        assert_eq!(Searcher::new(b"AB", false).find(b"abAB"), Some(2));
    }
}
