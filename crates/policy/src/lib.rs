//! sekisho firewall policy: the YAML policy file, NFW rule-group import, domain lists and
//! validation.
//!
//! * [`Policy`] is the typed, validated policy the engine compiles: settings, variables and
//!   rule groups whose rules are already parsed ([`sekisho_rules::Rule`]).
//! * [`Policy::load`] reads a YAML policy; [`Policy::from_rules_files`] wraps plain rule files;
//!   [`Policy::check_file`], [`Policy::check_rules_files`] and [`Policy::check_nfw_rule_group`]
//!   return what was accepted together with every diagnostic (for `sekisho check`).
//! * [`domain::DomainList::generate`] and [`nfw`] turn NFW rule group forms into Suricata text
//!   exactly as AWS documents.
//!
//! # The policy file
//!
//! ```yaml
//! name: egress-fw                 # firewall_name in NFW-format logs; default "sekisho"
//! availability_zone: local        # optional, for NFW-format logs
//! variables:                      # address and port groups, on top of Suricata's defaults
//!   HOME_NET: [10.0.0.0/16]
//!   EXTERNAL_NET: "!$HOME_NET"    # quote values starting with '!' (YAML tag syntax)
//!   SMTP_PORTS: [25, 465, 587]    # *_PORTS / *_PORT names and all-port values: port groups
//! engine_profile: suricata-8      # suricata-8 (default) | aws-nfw
//! rule_order: strict              # strict | action (default)
//! default_actions: [drop_established, alert_established]   # strict only; "aws:" optional
//! stream_exception_policy: drop   # drop (default) | continue | reject (NFW's; = exception_policy.stream_midstream)
//! exception_policy: auto          # or a map: {master: auto, app_layer_error: drop-flow, stream_midstream: reject, ...}
//!                                 # drop-flow | drop-packet | pass-flow | pass-packet | bypass | reject | ignore | auto
//! firewall_rules: fw.rules        # Suricata 8 firewall-mode rules, evaluated first
//! rule_groups:                    # in order; each has a name and exactly one source:
//!   - {name: mail, rules: rules/mail.rules}         # a rules file
//!   - name: extra
//!     rules_text: |                                 # inline rules (positions map into
//!       alert tcp any any -> any 25 (msg:"x"; sid:9;)  # this file for diagnostics)
//!   - name: web
//!     domain_list: {targets: [.example.com], target_types: [tls_sni, http_host], type: allowlist}
//!   - {name: imported, nfw_rule_group: nfw/rg.json} # describe-rule-group output
//! logging: {format: eve, dir: logs}                 # eve (default) | nfw
//! ```
//!
//! Every key is optional except each group's `name` and source. Unknown keys are errors with
//! a did-you-mean hint. Paths are relative to the policy file.
//!
//! # Validation (mirrors NFW where NFW is stricter)
//!
//! Every rule parses; `(gid, sid)` is unique across all user-written rules of the policy
//! (generated domain-list rules keep NFW's per-group numbering, see [`SidScope`]); `priority`
//! is an error under strict order; default actions need strict order, at most one of them
//! drops, and the established and app-layer families do not mix; variables used by rules are
//! defined; an imported NFW group declares the policy's rule order; firewall rules carry an
//! explicit scope and hook; under `aws-nfw`, Suricata 8.0 syntax NFW's Suricata 7.0 lacks
//! (`smtp.*`, `email.*` and the `dns.*.rrname` buffers, action scopes such as `drop:flow`)
//! is an error with a hint. Warnings: indented (ignored) rules, keywords sekisho does not
//! model, other things NFW would reject, and the pass trap (a flow-wide `pass` for an
//! app-layer protocol that keeps other rules from seeing the rest of the flow) and the IP-only
//! pass (a header-only `pass ip/tcp/udp/icmp` that passes flows at their first packet, before
//! any payload); both conditions are documented in `passtrap.rs`.
//!
//! # Reloading
//!
//! Loading never mutates an existing policy: a reload yields a new [`Policy`] or
//! diagnostics, so a caller keeps the old one on error.
#![warn(missing_docs)]

pub mod domain;
pub mod nfw;
mod origin;
mod passtrap;
mod policy;
pub mod ratelimit;
pub mod settings;
mod suricata8;
pub mod vars;

pub use policy::{
    default_variables, Checked, GroupSource, LoadOptions, Logging, NfwForm, Policy, RuleGroup,
    SidScope, DEFAULT_NAME,
};
pub use settings::{DefaultAction, EngineProfile, LogFormat, RuleOrder, StreamExceptionPolicy};
pub use vars::{VarDef, VarKind};

/// The keyword coverage table (how many rules use keywords sekisho does not model) over
/// `rules`, as printed by `sekisho check --coverage`.
pub fn coverage_table(rules: &[&sekisho_rules::Rule]) -> String {
    sekisho_rules::Coverage::of(rules.iter().copied()).to_string()
}

/// The coverage table with `missing` naming each rule's keywords that cannot be evaluated
/// (the detection compiler's answer: `sekisho_detect::sig::unevaluated_keywords`).
pub fn coverage_table_with(
    rules: &[&sekisho_rules::Rule],
    missing: impl Fn(&sekisho_rules::Rule) -> Vec<String>,
) -> String {
    sekisho_rules::Coverage::of_with(rules.iter().copied(), missing).to_string()
}
