//! Suricata 8 rule language: typed AST with source spans, parser, canonical printer.
//!
//! * [`parse_file`] reads a whole `.rules` file (comments, `\` continuations, 8 KiB limit) and
//!   returns every rule that parsed plus diagnostics for the ones that did not; a bad rule never
//!   stops the rest of the file from loading.
//! * [`parse_rule`] parses one rule from a string.
//! * The AST ([`Rule`], [`RuleOption`]...) is fully typed so an engine compiles it without
//!   re-parsing text; keywords Suricata knows but sekisho does not model are kept as
//!   [`RuleOption::Unsupported`] so callers decide whether to warn or reject.
//! * `impl Display for Rule` prints canonical text that parses back to an equal AST.
//! * [`Variables`] holds address/port groups and resolves expressions into IP/port range sets.
//!
//! How the AST maps to matching (what the engine relies on):
//! * Content modifiers (`nocase`, `depth`, `distance`, `fast_pattern`, legacy `http_uri`...)
//!   are folded into the [`Content`] they follow; each content therefore carries its whole
//!   window. A legacy modifier sets [`Content::buffer`]; otherwise the content belongs to the
//!   sticky buffer selected by the closest preceding [`RuleOption::Buffer`] (or the packet
//!   payload when none).
//! * Transforms ([`RuleOption::Transform`]) apply, in order, to the sticky buffer before them.
//! * Numeric modifier values are [`Value::Lit`] or [`Value::Var`] (a `byte_extract` /
//!   `byte_math` name defined earlier in the same rule, checked by the parser).
//! * `requires:` is evaluated while parsing against Suricata [`SURICATA_VERSION`]; an unmet
//!   requirement skips the rule with a warning, like Suricata.
//!
//! The parser is total: any input yields rules or diagnostics, never a panic.

#![warn(missing_docs)]

mod ast;
mod coverage;
mod file;
mod keywords;
mod parse;
mod print;
mod threshold_config;
mod vars;

pub use ast::*;
pub use coverage::Coverage;
pub use file::{parse_file, parse_file_bytes, RuleFile, MAX_RULE_LEN};
pub use keywords::{is_known_keyword, known_keywords, EVALUATED_FROM_VALUE};
pub use parse::SURICATA_VERSION;
pub use threshold_config::{
    parse_threshold_config, RateAction, SuppressTrack, ThresholdConfig, ThresholdDirective,
    ThresholdEntry,
};
pub use vars::{
    find_duplicate_sids, validate_variables, validate_variables_in, IpRange, IpSet, PortSet,
    VarError, Variables, DEFAULT_ADDRESS_VARS, DEFAULT_PORT_VARS,
};

use sekisho_diag::{Diagnostic, SourceFile};

/// Parses a single rule given as a string (no comment or continuation handling).
///
/// Diagnostics refer to a pseudo file named `<rule>`. Warnings are dropped; use [`parse_file`]
/// to see them. A rule whose `requires:` is not met is returned as `Err` with a
/// warning-severity diagnostic (code `requires-unmet`): it is skipped, not invalid.
#[allow(clippy::result_large_err)] // Diagnostic is the crate-wide error type.
pub fn parse_rule(text: &str) -> Result<Rule, Diagnostic> {
    let src = SourceFile::new("<rule>", text);
    let map = file::OffsetMap::identity();
    let mut warnings = Vec::new();
    parse::parse_rule_text(&src, text, &map, 1, &mut warnings)
}
