//! `pcre` compiled with PCRE2 (JIT when available), flags mapped like Suricata.

use pcre2::bytes::{Regex, RegexBuilder};
use sekisho_rules::Pcre;

use super::Unmodelled;

/// Suricata's default `pcre.match-limit` / `match-limit-recursion`; without the `O` flag the
/// same limits bound the work per match (a pcre that hits them does not match).
const MATCH_LIMIT: u32 = 3500;
const DEPTH_LIMIT: u32 = 1500;

/// A compiled pcre keyword.
#[derive(Debug, Clone)]
pub(crate) struct CompiledPcre {
    pub(crate) re: Regex,
    pub(crate) negated: bool,
    pub(crate) relative: bool,
    /// `A`: the match must start at the search start.
    pub(crate) anchored: bool,
}

/// Splits leading start-of-pattern items such as `(*UTF)` or `(*LIMIT_MATCH=10)`, which
/// PCRE2 accepts only at the very beginning.
fn split_leading_verbs(p: &str) -> (&str, &str) {
    let b = p.as_bytes();
    let mut i = 0;
    while b[i..].starts_with(b"(*") {
        let Some(close) = p[i..].find(')') else { break };
        let name = &p[i + 2..i + close];
        if name.is_empty()
            || !name
                .bytes()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_' || c == b'=')
        {
            break;
        }
        i += close + 1;
    }
    p.split_at(i)
}

impl CompiledPcre {
    /// Compiles a pcre keyword, rejecting what cannot be reproduced exactly.
    pub(crate) fn compile(p: &Pcre) -> Result<CompiledPcre, Unmodelled> {
        if !p.captures.is_empty() {
            return Err(Unmodelled::new(
                "pcre",
                "capture into flow/pkt/alert variables is not modelled",
            ));
        }
        let f = p.flags;
        // PCRE2_DOLLAR_ENDONLY has no inline form; without a `$` (or with `m`, which makes
        // PCRE ignore it) the flag changes nothing.
        if f.dollar_endonly && !f.multiline && p.pattern.contains('$') {
            return Err(Unmodelled::new(
                "pcre",
                "flag E (dollar_endonly) with '$' in the pattern is not modelled",
            ));
        }
        let (verbs, body) = split_leading_verbs(&p.pattern);
        let mut src = String::with_capacity(p.pattern.len() + 48);
        if !f.override_limit {
            src.push_str(&format!(
                "(*LIMIT_MATCH={MATCH_LIMIT})(*LIMIT_DEPTH={DEPTH_LIMIT})"
            ));
        }
        src.push_str(verbs);
        if f.ungreedy {
            src.push_str("(?U)");
        }
        src.push_str(body);
        let re = RegexBuilder::new()
            .caseless(f.caseless)
            .dotall(f.dotall)
            .multi_line(f.multiline)
            .extended(f.extended)
            .jit_if_available(true)
            .build(&src)
            .map_err(|e| Unmodelled::new("pcre", format!("PCRE2 rejects the regex: {e}")))?;
        Ok(CompiledPcre {
            re,
            negated: p.negated,
            relative: f.relative,
            anchored: f.anchored,
        })
    }

    /// Searches `subject` from `start`; `Ok(None)` = no match, `Err` = PCRE2 error (limits).
    pub(crate) fn find_at(
        &self,
        subject: &[u8],
        start: usize,
    ) -> Result<Option<(usize, usize)>, ()> {
        if start > subject.len() {
            return Err(());
        }
        match self.re.find_at(subject, start) {
            Ok(Some(m)) => {
                // An unanchored search finds the leftmost match; an anchored match exists
                // exactly when that match starts at `start`.
                if self.anchored && m.start() != start {
                    Ok(None)
                } else {
                    Ok(Some((m.start(), m.end())))
                }
            }
            Ok(None) => Ok(None),
            Err(_) => Err(()),
        }
    }
}
