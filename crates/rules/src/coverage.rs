//! How much of a rule set sekisho models.

use std::collections::HashMap;
use std::fmt;

use crate::ast::Rule;

/// Keyword coverage of a set of rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Rules counted.
    pub total: usize,
    /// Rules without any unsupported keyword.
    pub fully_modelled: usize,
    /// Rules with at least one unsupported keyword.
    pub with_unsupported: usize,
    /// Unsupported keywords with the number of rules using them, most used first (ties by name).
    pub top_unsupported: Vec<(String, usize)>,
}

impl Coverage {
    /// Computes coverage over `rules`, counting as unsupported the keywords the rule
    /// language does not model ([`Rule::unsupported`]).
    pub fn of<'a>(rules: impl IntoIterator<Item = &'a Rule>) -> Coverage {
        Coverage::of_with(rules, |r| {
            r.unsupported().map(|(n, _, _)| n.to_string()).collect()
        })
    }

    /// Computes coverage over `rules` with `missing` naming, per rule, the keywords that
    /// cannot be evaluated: the detection engine passes its own compiler's answer, so the
    /// table says what really loads (a keyword the language leaves unmodelled but detection
    /// evaluates, such as `urilen`, is not missing; a buffer no parser fills is).
    pub fn of_with<'a>(
        rules: impl IntoIterator<Item = &'a Rule>,
        missing: impl Fn(&Rule) -> Vec<String>,
    ) -> Coverage {
        let mut c = Coverage::default();
        let mut counts: HashMap<String, usize> = HashMap::new();
        for r in rules {
            c.total += 1;
            let mut names = missing(r);
            if names.is_empty() {
                c.fully_modelled += 1;
                continue;
            }
            c.with_unsupported += 1;
            names.sort_unstable();
            names.dedup();
            for n in names {
                *counts.entry(n).or_default() += 1;
            }
        }
        let mut top: Vec<(String, usize)> = counts.into_iter().collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        c.top_unsupported = top;
        c
    }
}

impl fmt::Display for Coverage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pct = |n: usize| {
            if self.total == 0 {
                0.0
            } else {
                n as f64 * 100.0 / self.total as f64
            }
        };
        writeln!(f, "rules                      {:>7}", self.total)?;
        writeln!(
            f,
            "fully modelled             {:>7}  {:5.1}%",
            self.fully_modelled,
            pct(self.fully_modelled)
        )?;
        writeln!(
            f,
            "with unsupported keywords  {:>7}  {:5.1}%",
            self.with_unsupported,
            pct(self.with_unsupported)
        )?;
        if !self.top_unsupported.is_empty() {
            writeln!(f, "unsupported keyword           rules")?;
            for (k, n) in self.top_unsupported.iter().take(20) {
                writeln!(f, "  {k:<26} {n:>7}  {:5.1}%", pct(*n))?;
            }
        }
        Ok(())
    }
}
