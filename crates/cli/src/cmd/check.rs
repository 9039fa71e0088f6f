//! `sekisho check`: validate rule files, policies and NFW JSON, and show what they compile to.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use sekisho_detect::RuleSet;
use sekisho_diag::{Diagnostic, SourceFile};
use sekisho_policy::nfw::{self, NfwKind};
use sekisho_policy::{Checked, GroupSource, LoadOptions, Policy};
use sekisho_sensor::{Mode, Settings};

const EXAMPLES: &str = "\
Each PATH is checked by its kind:
  *.rules        Suricata rule file
  *.yaml, *.yml  sekisho policy (its rule files, inline rules, domain lists and NFW JSON too)
  *.json         NFW rule group (describe-rule-group output or a RuleGroup object) or
                 NFW firewall policy (describe-firewall-policy output)

Diagnostics and one summary line per file go to stderr; --print-rules, --coverage and
--format json write to stdout.

sids: every (gid, sid) must be unique across the rules a user wrote (rule files, inline
rules, NFW RulesString/StatefulRules, firewall rules). Rules generated from domain lists keep
NFW's numbering (sid 1, 2, ... per group) in their group's own sid namespace, as NFW does.

A PATH that cannot be read (missing, a directory, no permission) is reported as an `io`
diagnostic and the other PATHs are still checked. A DNS firewall config (top-level
`upstreams`, `domain_lists` or `listen`) is not a policy: check it with
`sekisho dns --config FILE --check`.

Exit status:
  0  every PATH is valid (warnings allowed)
  1  a PATH was read and is invalid (located diagnostics printed)
  2  usage error: a bad flag, or a PATH that could not be read at all (wins over 1)

Examples:
  sekisho check rules/mail.rules
  sekisho check examples/egress/policy.yaml --print-rules
  sekisho check examples/nfw/denylist.json --print-rules
  sekisho check --var 'HOME_NET=[10.0.0.0/8]' local.rules
  sekisho check --coverage rulesets/et-open/*.rules
  sekisho check --format json policy.yaml | jq '.diagnostics[] | .message'

JSON output is one document:
  {\"files\": [{\"path\", \"kind\", \"readable\", \"valid\", \"rules\", \"groups\", \"errors\", \"warnings\"}],
   \"diagnostics\": [{\"severity\", \"code\", \"message\", \"file\", \"line\", \"column\", \"len\", \"hint\"}]}
(line/column are 1-based; absent fields are omitted; with --print-rules each file also has
\"effective_rules\", the printed lines).";

/// Output format of diagnostics.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Compiler-style text on stderr.
    Text,
    /// One JSON document on stdout.
    Json,
}

/// Arguments of `sekisho check`.
#[derive(clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// Files to check: rule files, policies, NFW rule group / firewall policy JSON.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Diagnostics as compiler-style text or as one JSON document.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Print the effective rules in evaluation order (generated rules included).
    #[arg(long)]
    print_rules: bool,
    /// Print how many rules use keywords sekisho models vs does not model.
    #[arg(long)]
    coverage: bool,
    /// Define or override a variable, e.g. --var 'HOME_NET=[10.0.0.0/8]' (repeatable).
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_var)]
    vars: Vec<(String, String)>,
    /// Report drop/reject rules the engine cannot evaluate as warnings, not errors (as
    /// `replay --allow-unsupported` leaves them out instead of refusing to load).
    #[arg(long)]
    allow_unsupported: bool,
}

fn parse_var(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((n, v)) if !n.is_empty() && !v.is_empty() => {
            Ok((n.trim_start_matches('$').to_string(), v.to_string()))
        }
        _ => Err(format!("expected NAME=VALUE, got '{s}'")),
    }
}

/// What one PATH turned out to be and what checking it found.
struct FileReport {
    path: String,
    kind: &'static str,
    checked: Option<Checked>,
    fw_policy: Option<nfw::NfwFirewallPolicy>,
    diagnostics: Vec<Diagnostic>,
    /// The PATH could not be read at all (missing, a directory, permission): exit status 2.
    unreadable: bool,
    /// The rules the detection compiler did not load, `(group, sid, keyword)` (for
    /// `--coverage`).
    not_loaded: Vec<(String, u64, String)>,
}

impl FileReport {
    fn errors(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }
    fn warnings(&self) -> usize {
        self.diagnostics.len() - self.errors()
    }
    fn rules(&self) -> usize {
        self.checked.as_ref().map_or(0, |c| c.policy.rule_count())
    }
    fn groups(&self) -> usize {
        self.checked
            .as_ref()
            .map_or(0, |c| c.policy.rule_groups.len())
    }

    fn summary(&self) -> String {
        let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
        if self.errors() > 0 {
            return format!(
                "{}: {}, {}",
                self.path,
                plural(self.errors(), "error"),
                plural(self.warnings(), "warning")
            );
        }
        let mut parts = Vec::new();
        match self.kind {
            "policy" | "nfw-rule-group" => {
                parts.push(plural(self.groups(), "group"));
                parts.push(plural(self.rules(), "rule"));
            }
            "nfw-firewall-policy" => {
                if let Some(p) = &self.fw_policy {
                    parts.push(format!("firewall policy, {}", p.rule_order.nfw_name()));
                    parts.push(plural(p.default_actions.len(), "default action"));
                }
            }
            _ => parts.push(plural(self.rules(), "rule")),
        }
        if self.warnings() > 0 {
            parts.push(plural(self.warnings(), "warning"));
        }
        format!("{}: ok ({})", self.path, parts.join(", "))
    }
}

/// How a PATH is treated, from its extension, else from its content.
fn kind_of(path: &Path, text: &str) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("rules") => "rules",
        Some("yaml" | "yml") => "policy",
        Some("json") => json_kind(text),
        _ if text.trim_start().starts_with('{') => json_kind(text),
        _ if text
            .lines()
            .any(|l| l.starts_with("rule_groups:") || l.starts_with("firewall_rules:")) =>
        {
            "policy"
        }
        _ => "rules",
    }
}

fn json_kind(text: &str) -> &'static str {
    match nfw::detect_kind(text) {
        Some(NfwKind::FirewallPolicy) => "nfw-firewall-policy",
        // Unknown JSON goes to the rule-group reader, which says what it expected.
        _ => "nfw-rule-group",
    }
}

/// Top-level keys that only a `sekisho dns` configuration has.
const DNS_CONFIG_KEYS: &[&str] = &["upstreams", "domain_lists", "listen"];

/// The byte span of the first top-level DNS-firewall key in a YAML text, if any.
fn dns_config_key(text: &str) -> Option<std::ops::Range<usize>> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if let Some(key) = DNS_CONFIG_KEYS
            .iter()
            .find(|k| line.strip_prefix(**k).is_some_and(|r| r.starts_with(':')))
        {
            return Some(offset..offset + key.len());
        }
        offset += line.len();
    }
    None
}

fn check_one(path: &Path, opts: &LoadOptions, allow_unsupported: bool) -> FileReport {
    let name = path.display().to_string();
    let mut report = FileReport {
        path: name.clone(),
        kind: kind_of(path, ""),
        checked: None,
        fw_policy: None,
        diagnostics: Vec::new(),
        unreadable: false,
        not_loaded: Vec::new(),
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            report.unreadable = true;
            report.diagnostics.push(
                Diagnostic::error(format!("cannot read '{name}': {e}"))
                    .with_code("io")
                    .in_file(name),
            );
            return report;
        }
    };
    let kind = kind_of(path, &text);
    report.kind = kind;
    if kind == "policy" {
        if let Some(span) = dns_config_key(&text) {
            report.kind = "dns-config";
            let src = SourceFile::new(name, text);
            report.diagnostics.push(
                Diagnostic::error(format!(
                    "this looks like a DNS firewall config; check it with `sekisho dns --config {} --check`",
                    path.display()
                ))
                .with_code("dns-config")
                .at_span(&src, span),
            );
            return report;
        }
    }
    let checked = match kind {
        "policy" => Some(Policy::check_file(path, opts)),
        "rules" => Some(Policy::check_rules_files(&[path.to_path_buf()], opts)),
        "nfw-rule-group" => Some(Policy::check_nfw_rule_group(path, opts)),
        _ => {
            let src = SourceFile::new(name.clone(), text);
            report.fw_policy = nfw::parse_firewall_policy(&src, &mut report.diagnostics);
            None
        }
    };
    if let Some(c) = checked {
        report.diagnostics = c.diagnostics.clone();
        if c.is_valid() {
            let (diags, not_loaded) = unloadable_blocking_rules(&c, allow_unsupported, &name);
            report.diagnostics.extend(diags);
            report.not_loaded = not_loaded;
        }
        report.checked = Some(c);
    }
    report
}

/// Drop and reject rules the engine cannot evaluate, one diagnostic each at the rule: an
/// error (a replay or a live sensor refuses to load them, since what they were written to
/// stop would pass), or a warning with `--allow-unsupported`. Also every rule not loaded,
/// `(group, sid, keyword)`.
#[allow(clippy::type_complexity)]
fn unloadable_blocking_rules(
    c: &Checked,
    allow: bool,
    file: &str,
) -> (Vec<Diagnostic>, Vec<(String, u64, String)>) {
    let mut settings = Settings::new(Mode::Inline);
    settings.apply_policy(&c.policy);
    let rs = RuleSet::from_policy(&c.policy, settings.compile_options());
    let not_loaded = rs
        .not_loaded()
        .iter()
        .map(|n| (n.group.clone(), n.sid, n.keyword.clone()))
        .collect();
    let mut out = Vec::new();
    let mut sources: Vec<(PathBuf, Option<SourceFile>)> = Vec::new();
    for n in rs.not_loaded().iter().filter(|n| n.blocks) {
        let message = format!(
            "sid {}: this rule drops or rejects, but sekisho cannot evaluate `{}` ({}), so what it was written to stop would pass",
            n.sid, n.keyword, n.reason
        );
        let d = if allow {
            Diagnostic::warning(message)
        } else {
            Diagnostic::error(message)
        }
        .with_code("unsupported-blocking-rule")
        .with_hint(
            "rewrite the rule with keywords sekisho models (`sekisho check --coverage` lists them), remove it, or pass --allow-unsupported to leave it out",
        );
        let found = c.policy.rule_groups.iter().find_map(|g| {
            let r = g
                .rules
                .iter()
                .find(|r| r.sid() == n.sid && g.name == n.group)?;
            Some((g, r))
        });
        let d = match found {
            Some((g, r)) => match &g.source {
                GroupSource::File(path) => {
                    let src = match sources.iter().position(|(p, _)| p == path) {
                        Some(i) => &sources[i].1,
                        None => {
                            let text = std::fs::read_to_string(path).ok();
                            let src = text.map(|t| SourceFile::new(path.display().to_string(), t));
                            sources.push((path.clone(), src));
                            &sources[sources.len() - 1].1
                        }
                    };
                    match src {
                        Some(src) => d.at_span(src, r.span.start..r.span.end),
                        None => d.in_file(path.display().to_string()),
                    }
                }
                // Inline or generated rules: the policy file, and where in the group.
                _ => {
                    let mut d = d.in_file(file);
                    d.message = format!("{} (group `{}`, rule line {})", d.message, g.name, r.line);
                    d
                }
            },
            None => d.in_file(file),
        };
        out.push(d);
    }
    (out, not_loaded)
}

/// Runs `sekisho check`.
pub fn run(args: Args) -> ExitCode {
    let opts = LoadOptions {
        vars: args.vars.clone(),
    };
    let reports: Vec<FileReport> = args
        .paths
        .iter()
        .map(|p| check_one(p, &opts, args.allow_unsupported))
        .collect();
    let valid = reports.iter().all(|r| r.errors() == 0);
    let unreadable = reports.iter().any(|r| r.unreadable);
    match args.format {
        Format::Text => {
            for r in &reports {
                for d in &r.diagnostics {
                    eprint!("{}", d.render());
                }
            }
            for r in &reports {
                eprintln!("{}", r.summary());
            }
            if args.print_rules {
                for r in &reports {
                    if let Some(c) = &r.checked {
                        print!("{}", c.policy.render_rules());
                    }
                }
            }
            if args.coverage {
                print!("{}", coverage(&reports));
            }
        }
        Format::Json => {
            let files: Vec<serde_json::Value> = reports
                .iter()
                .map(|r| {
                    let mut v = serde_json::json!({
                        "path": r.path,
                        "kind": r.kind,
                        "readable": !r.unreadable,
                        "valid": r.errors() == 0,
                        "rules": r.rules(),
                        "groups": r.groups(),
                        "errors": r.errors(),
                        "warnings": r.warnings(),
                    });
                    if args.print_rules {
                        if let Some(c) = &r.checked {
                            v["effective_rules"] = c
                                .policy
                                .render_rules()
                                .lines()
                                .map(|l| serde_json::Value::from(l.to_string()))
                                .collect();
                        }
                    }
                    v
                })
                .collect();
            let diags: Vec<serde_json::Value> = reports
                .iter()
                .flat_map(|r| r.diagnostics.iter().map(Diagnostic::to_json))
                .collect();
            let mut doc = serde_json::json!({ "files": files, "diagnostics": diags });
            if args.coverage {
                doc["coverage"] = serde_json::Value::from(coverage(&reports));
            }
            match serde_json::to_string_pretty(&doc) {
                Ok(s) => println!("{s}"),
                Err(e) => {
                    eprintln!("sekisho check: cannot write JSON: {e}");
                    return ExitCode::from(2);
                }
            }
        }
    }
    if unreadable {
        ExitCode::from(2)
    } else if valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The coverage table over every rule loaded from all PATHs: a rule counts as fully
/// modelled exactly when the detection compiler loads it. Its missing keywords are those
/// `unevaluated_keywords` names, or else the compiler's reason (a protocol without
/// detection, `xbits` outside firewall mode...).
fn coverage(reports: &[FileReport]) -> String {
    let mut rules: Vec<&sekisho_rules::Rule> = Vec::new();
    // Per rule compiled: `None` loaded, `Some(keyword)` not loaded. Rules of a file that
    // did not compile (errors) are judged by the keyword lists alone.
    let mut compiled: std::collections::HashMap<*const sekisho_rules::Rule, Option<String>> =
        std::collections::HashMap::new();
    for r in reports {
        let Some(c) = r.checked.as_ref() else {
            continue;
        };
        let dropped: std::collections::HashMap<(&str, u64), &str> = r
            .not_loaded
            .iter()
            .map(|(g, sid, k)| ((g.as_str(), *sid), k.as_str()))
            .collect();
        for g in c.policy.firewall_rules.iter().chain(&c.policy.rule_groups) {
            for rule in &g.rules {
                if c.is_valid() {
                    let k = dropped.get(&(g.name.as_str(), rule.sid()));
                    compiled.insert(rule as *const _, k.map(|k| (*k).to_string()));
                }
                rules.push(rule);
            }
        }
    }
    sekisho_policy::coverage_table_with(&rules, |rule| {
        let mut missing = sekisho_detect::sig::unevaluated_keywords(rule);
        match compiled.get(&(rule as *const _)) {
            // Loaded: modelled, whatever the keyword lists say.
            Some(None) => missing.clear(),
            // Not loaded for a reason the lists do not show (a protocol sekisho does not
            // detect, xbits outside firewall mode...).
            Some(Some(k)) if missing.is_empty() => missing.push(k.clone()),
            _ => {}
        }
        missing
    })
}
