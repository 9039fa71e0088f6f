//! The policy model and its loader.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};

use sekisho_diag::yaml::{from_yaml, YamlIndex};
use sekisho_diag::{Diagnostic, SourceFile};
use sekisho_rules::{ActionKind, IpSet, PortSet, Rule, RuleOption, VarError, Variables};
use serde::Deserialize;

use crate::domain::{check_target, DomainList, ListType, TargetType};
use crate::nfw::{self, NfwSource};
use crate::origin::{literal_block, Origin};
use crate::settings::{
    check_default_actions, DefaultAction, EngineProfile, LogFormat, ParseError, RuleOrder,
    StreamExceptionPolicy,
};
use crate::vars::{RawVar, VarDef, VarKind};
use crate::{passtrap, suricata8};

/// Firewall name used when the policy does not set `name`.
pub const DEFAULT_NAME: &str = "sekisho";

/// A loaded firewall policy: everything the engine needs, typed, with every rule parsed.
///
/// Build one with [`Policy::load`] (a YAML policy), [`Policy::from_rules_files`] (plain rule
/// files with default settings) or the `check_*` functions, which also return what was
/// accepted from invalid input. A `Policy` is never partially updated: a caller reloading a
/// changed file gets a new value or errors, and keeps its old `Policy` on errors.
#[derive(Debug, Clone)]
pub struct Policy {
    /// `firewall_name` in NFW-format logs.
    pub name: String,
    /// `availability_zone` in NFW-format logs.
    pub availability_zone: Option<String>,
    /// Address and port groups: Suricata's defaults, then the policy's `variables` (which
    /// replace defaults of the same name), then `--var` overrides.
    pub variables: Vec<VarDef>,
    /// Which engine's semantics to follow.
    pub engine_profile: EngineProfile,
    /// Stateful rule order.
    pub rule_order: RuleOrder,
    /// Strict-order default actions (empty under action order).
    pub default_actions: Vec<DefaultAction>,
    /// Handling of TCP flows first seen mid-stream (NFW's key; an alias of
    /// `exception_policy.stream_midstream`).
    pub stream_exception_policy: StreamExceptionPolicy,
    /// Whether `stream_exception_policy` was written (else `exception_policy` decides).
    pub stream_exception_policy_set: bool,
    /// What the engine does where it cannot see what the rules need (Suricata's exception
    /// policies; `auto` everywhere by default: `drop-flow` inline).
    pub exception_policy: sekisho_engine::ExceptionPolicies,
    /// Suricata 8 firewall-mode rules, evaluated before the groups.
    pub firewall_rules: Option<RuleGroup>,
    /// Threat-detection rule groups, in the order listed.
    pub rule_groups: Vec<RuleGroup>,
    /// Log output settings.
    pub logging: Logging,
    /// Rate limits (`rate_limits:`), evaluated before the rule groups, in order.
    pub rate_limits: Vec<crate::ratelimit::RateLimit>,
    /// Suricata threshold.config directives (`threshold_config:` FILE, or Suricata's
    /// `threshold-file` setting): thresholds, suppressions and rate filters applied to the
    /// rules by sid when they compile.
    pub threshold_config: Option<sekisho_rules::ThresholdConfig>,
}

/// One rule group: its name, where its rules came from and the parsed rules in file order.
#[derive(Debug, Clone)]
pub struct RuleGroup {
    /// The group's `name` (for rule files loaded directly: the file name).
    pub name: String,
    /// Where the rules came from.
    pub source: GroupSource,
    /// The rules, in file (= generation) order.
    pub rules: Vec<Rule>,
    /// Group-level variables (NFW `RuleVariables`); each overrides the policy variable of the
    /// same name for this group only.
    pub variables: Vec<VarDef>,
    /// Whether the group's sids must be unique across the policy or only within the group.
    pub sid_scope: SidScope,
    /// The Suricata text sekisho generated for this group (domain lists, NFW `StatefulRules`),
    /// one rule per line; rule `r` came from line `r.line`. `None` for rules a user wrote.
    pub generated_text: Option<String>,
}

impl RuleGroup {
    /// The text to show for `rule` of this group: the generated text exactly as NFW documents
    /// it for generated groups, else the canonical form of the parsed rule.
    pub fn rule_text(&self, rule: &Rule) -> String {
        self.generated_text
            .as_deref()
            .and_then(|t| t.lines().nth((rule.line as usize).wrapping_sub(1)))
            .map_or_else(|| rule.to_string(), str::to_string)
    }
}

/// Where a group's rules were read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupSource {
    /// A Suricata rules file (path as resolved, i.e. joined to the policy's directory).
    File(PathBuf),
    /// `rules_text` inside the policy.
    Inline,
    /// A domain list; the rules are generated from it.
    DomainList(DomainList),
    /// An NFW rule group JSON file.
    NfwRuleGroup {
        /// The JSON file.
        path: PathBuf,
        /// Which `RulesSource` form it held.
        form: NfwForm,
    },
}

/// The `RulesSource` form of an imported NFW rule group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NfwForm {
    /// `RulesString`.
    RulesString,
    /// `StatefulRules` (5-tuple).
    StatefulRules,
    /// `RulesSourceList`, i.e. a domain list.
    RulesSourceList(DomainList),
}

/// How unique a group's sids must be.
///
/// NFW numbers the rules it generates for each domain list from 1, and allows that because
/// every rule group is separate. sekisho keeps those numbers (so alert logs show what NFW
/// would show) and gives generated groups their own sid namespace: their sids must be unique
/// within the group only. Every rule a user wrote (rule files, inline rules, NFW
/// `RulesString` and `StatefulRules`, firewall rules) shares one namespace: `(gid, sid)` must
/// be unique across the whole policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SidScope {
    /// Unique across the policy (user-written rules).
    Policy,
    /// Unique within this group (rules generated from a domain list).
    Group,
}

/// `logging:` settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Logging {
    /// EVE or NFW envelope.
    pub format: LogFormat,
    /// Output directory, joined to the policy file's directory; `None` = the caller decides.
    pub dir: Option<PathBuf>,
}

/// Options for loading and checking.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `NAME=VALUE` overrides (from `sekisho check --var`), applied after the policy's own
    /// variables. The kind is decided as for YAML variables.
    pub vars: Vec<(String, String)>,
}

/// The result of checking an input: what was accepted, plus every diagnostic.
///
/// `policy` holds the groups and rules that were valid even when other parts were not, so
/// `check` can count and print them; only use it to run traffic when [`Checked::is_valid`].
#[derive(Debug, Clone)]
pub struct Checked {
    /// What was accepted.
    pub policy: Policy,
    /// Errors and warnings, in the order found.
    pub diagnostics: Vec<Diagnostic>,
}

impl Checked {
    /// True when no diagnostic is an error.
    pub fn is_valid(&self) -> bool {
        !self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// `Ok((policy, warnings))` when valid, else `Err(all diagnostics)`.
    pub fn into_result(self) -> Result<(Policy, Vec<Diagnostic>), Vec<Diagnostic>> {
        if self.is_valid() {
            Ok((self.policy, self.diagnostics))
        } else {
            Err(self.diagnostics)
        }
    }
}

impl Policy {
    /// The exception policies the engine applies: `exception_policy`, with NFW's
    /// `stream_exception_policy` (when written) as the `stream_midstream` value unless
    /// `exception_policy` names that target itself.
    pub fn exceptions(&self) -> sekisho_engine::ExceptionPolicies {
        use sekisho_engine::ExceptionTarget;
        let mut p = self.exception_policy;
        let own = p.targets[ExceptionTarget::ALL
            .iter()
            .position(|t| *t == ExceptionTarget::StreamMidstream)
            .unwrap_or(0)];
        if self.stream_exception_policy_set && own.is_none() {
            p.set(
                ExceptionTarget::StreamMidstream,
                self.stream_exception_policy.as_exception(),
            );
        }
        p
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            name: DEFAULT_NAME.into(),
            availability_zone: None,
            variables: default_variables(),
            engine_profile: EngineProfile::default(),
            rule_order: RuleOrder::default(),
            default_actions: Vec::new(),
            stream_exception_policy: StreamExceptionPolicy::default(),
            stream_exception_policy_set: false,
            exception_policy: Default::default(),
            firewall_rules: None,
            rule_groups: Vec::new(),
            logging: Logging::default(),
            rate_limits: Vec::new(),
            threshold_config: None,
        }
    }
}

/// Suricata's default address and port groups (suricata.yaml `vars`).
pub fn default_variables() -> Vec<VarDef> {
    let a = |n: &str, v: &str| VarDef::new(n, VarKind::Address, v);
    let p = |n: &str, v: &str| VarDef::new(n, VarKind::Port, v);
    vec![
        a("HOME_NET", "[192.168.0.0/16,10.0.0.0/8,172.16.0.0/12]"),
        a("EXTERNAL_NET", "!$HOME_NET"),
        a("HTTP_SERVERS", "$HOME_NET"),
        a("SMTP_SERVERS", "$HOME_NET"),
        a("SQL_SERVERS", "$HOME_NET"),
        a("DNS_SERVERS", "$HOME_NET"),
        a("TELNET_SERVERS", "$HOME_NET"),
        a("AIM_SERVERS", "$EXTERNAL_NET"),
        a("DC_SERVERS", "$HOME_NET"),
        a("DNP3_SERVER", "$HOME_NET"),
        a("DNP3_CLIENT", "$HOME_NET"),
        a("MODBUS_CLIENT", "$HOME_NET"),
        a("MODBUS_SERVER", "$HOME_NET"),
        a("ENIP_CLIENT", "$HOME_NET"),
        a("ENIP_SERVER", "$HOME_NET"),
        p("HTTP_PORTS", "80"),
        p("SHELLCODE_PORTS", "!80"),
        p("ORACLE_PORTS", "1521"),
        p("SSH_PORTS", "22"),
        p("DNP3_PORTS", "20000"),
        p("MODBUS_PORTS", "502"),
        p("FILE_DATA_PORTS", "[$HTTP_PORTS,110,143]"),
        p("FTP_PORTS", "21"),
        p("GENEVE_PORTS", "6081"),
        p("VXLAN_PORTS", "4789"),
        p("TEREDO_PORTS", "3544"),
    ]
}

fn set_var(vars: &mut Vec<VarDef>, def: VarDef) {
    match vars.iter_mut().find(|v| v.name == def.name) {
        Some(v) => *v = def,
        None => vars.push(def),
    }
}

// ---------------------------------------------------------------------------------------------
// YAML model (private: the public model above is typed and validated).

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    name: Option<String>,
    availability_zone: Option<String>,
    #[serde(default)]
    variables: BTreeMap<String, RawVar>,
    engine_profile: Option<String>,
    rule_order: Option<String>,
    #[serde(default)]
    default_actions: Vec<String>,
    stream_exception_policy: Option<String>,
    exception_policy: Option<crate::settings::RawExceptionPolicy>,
    firewall_rules: Option<String>,
    #[serde(default)]
    rule_groups: Vec<RawGroup>,
    logging: Option<RawLogging>,
    #[serde(default)]
    rate_limits: Vec<serde_json::Value>,
    threshold_config: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    name: String,
    rules: Option<String>,
    rules_text: Option<String>,
    domain_list: Option<RawDomainList>,
    nfw_rule_group: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDomainList {
    targets: Vec<String>,
    target_types: Vec<String>,
    #[serde(rename = "type")]
    list_type: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLogging {
    format: Option<String>,
    dir: Option<String>,
}

/// The keys of a policy's top-level mapping, in documentation order (= [`RawPolicy`]).
const POLICY_KEYS: &[&str] = &[
    "name",
    "availability_zone",
    "variables",
    "engine_profile",
    "rule_order",
    "default_actions",
    "stream_exception_policy",
    "exception_policy",
    "firewall_rules",
    "rule_groups",
    "logging",
];
/// Top-level keys accepted and suggested but not (yet) in the `expected one of` list of the
/// unknown-key hint, whose exact text a golden test pins (`check_policy.rs`); fold them into
/// [`POLICY_KEYS`] together with that test's text.
const LATER_POLICY_KEYS: &[&str] = &["rate_limits", "threshold_config"];
/// The keys of one `rule_groups` entry (= [`RawGroup`]).
const GROUP_KEYS: &[&str] = &[
    "name",
    "rules",
    "rules_text",
    "domain_list",
    "nfw_rule_group",
];
/// The keys of a `domain_list` (= [`RawDomainList`]).
const DOMAIN_LIST_KEYS: &[&str] = &["targets", "target_types", "type"];
/// The keys of `logging` (= [`RawLogging`]).
const LOGGING_KEYS: &[&str] = &["format", "dir"];

/// One located error per key the policy schema does not know, each with a did-you-mean hint.
/// Empty when the document is not YAML with string keys (the deserialiser then reports what
/// is wrong) or when every key is known.
fn unknown_key_diags(src: &SourceFile) -> Vec<Diagnostic> {
    use serde_json::Value;
    let Ok(Value::Object(top)) = from_yaml::<Value>(src) else {
        return Vec::new();
    };
    let idx = YamlIndex::new(src.text());
    let mut out = Vec::new();
    let mut check = |map: &serde_json::Map<String, Value>, path: &str, known: &[&str]| {
        let later: &[&str] = if path.is_empty() {
            LATER_POLICY_KEYS
        } else {
            &[]
        };
        for k in map
            .keys()
            .filter(|k| !known.contains(&k.as_str()) && !later.contains(&k.as_str()))
        {
            let (key_path, msg) = if path.is_empty() {
                (k.clone(), format!("unknown key '{k}'"))
            } else {
                (
                    format!("{path}.{k}"),
                    format!("unknown key '{k}' in {path}"),
                )
            };
            let list = known.join(", ");
            let hint = match sekisho_diag::suggest(k, known.iter().chain(later).copied()) {
                Some(s) => format!("did you mean '{s}'? expected one of: {list}"),
                None => format!("expected one of: {list}"),
            };
            out.push(located(
                Diagnostic::error(msg)
                    .with_code("unknown-key")
                    .with_hint(hint),
                src,
                idx.key(&key_path),
            ));
        }
    };
    check(&top, "", POLICY_KEYS);
    if let Some(Value::Array(groups)) = top.get("rule_groups") {
        for (i, g) in groups.iter().enumerate() {
            if let Value::Object(m) = g {
                let path = format!("rule_groups[{i}]");
                check(m, &path, GROUP_KEYS);
                if let Some(Value::Object(dl)) = m.get("domain_list") {
                    check(dl, &format!("{path}.domain_list"), DOMAIN_LIST_KEYS);
                }
            }
        }
    }
    if let Some(Value::Object(lg)) = top.get("logging") {
        check(lg, "logging", LOGGING_KEYS);
    }
    out
}

/// Turns serde's "unknown field `x`, expected one of `a`, `b`" into a did-you-mean hint.
fn improve_serde_error(mut d: Diagnostic) -> Diagnostic {
    let msg = d.message.clone();
    if let Some(i) = msg.find("unknown field `") {
        let prefix = msg[..i].trim_end_matches([':', ' ']).to_string();
        let rest = &msg[i + "unknown field `".len()..];
        let Some(end) = rest.find('`') else { return d };
        let word = rest[..end].to_string();
        let expected: Vec<&str> = rest[end + 1..].split('`').skip(1).step_by(2).collect();
        d.message = if prefix.is_empty() {
            format!("unknown key '{word}'")
        } else {
            format!("unknown key '{word}' in {prefix}")
        };
        let list = expected.join(", ");
        d.hint = Some(
            match sekisho_diag::suggest(&word, expected.iter().copied()) {
                Some(s) => format!("did you mean '{s}'? expected one of: {list}"),
                None => format!("expected one of: {list}"),
            },
        );
        d.code = Some("unknown-key".into());
        // serde points at the key's first character; underline the whole key.
        if let Some(loc) = d.location.as_mut() {
            let col = (loc.column as usize).saturating_sub(1);
            let tail: String = loc.line_text.chars().skip(col).collect();
            if tail.starts_with(word.as_str()) {
                loc.len = word.chars().count() as u32;
            }
        }
    } else if let Some(i) = msg.find("missing field `") {
        let prefix = msg[..i].trim_end_matches([':', ' ']);
        let rest = &msg[i + "missing field `".len()..];
        let word = rest.split('`').next().unwrap_or(rest);
        d.message = if prefix.is_empty() {
            format!("missing key '{word}'")
        } else {
            format!("missing key '{word}' in {prefix}")
        };
        d.hint = Some(format!("add '{word}: ...' here"));
        d.code = Some("missing-key".into());
    } else if let Some(loc) = &d.location {
        if loc.line_text.contains(": !") {
            let prefix = msg.split(": ").next().unwrap_or("value");
            d.message = format!("{prefix}: unquoted value starting with '!' is read as a YAML tag");
            d.hint = Some("quote the value, e.g. \"!$HOME_NET\"".into());
        }
    }
    d
}

fn located(d: Diagnostic, src: &SourceFile, span: Option<Range<usize>>) -> Diagnostic {
    match span {
        Some(s) => d.at_span(src, s),
        None => d.in_file(src.name()),
    }
}

fn with_hint(d: Diagnostic, hint: Option<String>) -> Diagnostic {
    match hint {
        Some(h) => d.with_hint(h),
        None => d,
    }
}

fn parse_error(
    e: ParseError,
    code: &str,
    src: &SourceFile,
    span: Option<Range<usize>>,
) -> Diagnostic {
    with_hint(
        located(Diagnostic::error(e.message).with_code(code), src, span),
        e.hint,
    )
}

/// Joins `rel` to the directory of `base` (a relative `base` stays relative, so diagnostics
/// name files the way the user did).
fn resolve(base: &Path, rel: &str) -> PathBuf {
    let rel = Path::new(rel);
    if rel.is_absolute() {
        return rel.to_path_buf();
    }
    let joined = match base.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(rel),
        _ => rel.to_path_buf(),
    };
    // Lexically drop `dir/..` pairs so diagnostics show `examples/nfw/x.json`, not
    // `examples/errors/../nfw/x.json`. Leading `..` stay (nothing to pop).
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            std::path::Component::ParentDir
                if matches!(
                    out.components().next_back(),
                    Some(std::path::Component::Normal(_))
                ) =>
            {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn display(p: &Path) -> String {
    p.display().to_string()
}

/// State shared while one input is loaded: diagnostics and where each group's rules came from.
struct Loader {
    diags: Vec<Diagnostic>,
    /// Where each accepted group's rules came from (same index as the policy's groups).
    origins: Vec<Origin>,
    /// Where the firewall rules came from.
    fw_origin: Option<Origin>,
}

impl Loader {
    fn new() -> Self {
        Loader {
            diags: Vec::new(),
            origins: Vec::new(),
            fw_origin: None,
        }
    }

    /// Parses rule text from `origin`, keeping the rules that parsed.
    fn parse(&mut self, origin: &Origin) -> Vec<Rule> {
        let file = sekisho_rules::parse_file(origin.source());
        for d in file.diagnostics {
            self.diags.push(origin.fix(d));
        }
        file.rules
    }

    /// Reads a file named in the policy; a missing file is an error at `at` (the YAML value).
    fn read(
        &mut self,
        path: &Path,
        what: &str,
        policy: &SourceFile,
        at: Option<Range<usize>>,
    ) -> Option<String> {
        match std::fs::read_to_string(path) {
            Ok(t) => Some(t),
            Err(e) => {
                let d = Diagnostic::error(format!("cannot read {what} '{}': {e}", display(path)))
                    .with_code("missing-file");
                self.diags.push(
                    located(d, policy, at)
                        .with_hint("paths are relative to the policy file's directory"),
                );
                None
            }
        }
    }
}

impl Policy {
    /// Loads a YAML policy file: `Ok((policy, warnings))`, or `Err(diagnostics)` (errors and
    /// warnings) when anything is invalid. On `Err` nothing is half-applied: keep using the
    /// previous policy.
    pub fn load(path: &Path) -> Result<(Policy, Vec<Diagnostic>), Vec<Diagnostic>> {
        Self::check_file(path, &LoadOptions::default()).into_result()
    }

    /// Plain Suricata rule files with default settings (action order, Suricata variables), one
    /// group per file named after the file: what `sekisho replay --rules FILE...` runs. A file
    /// holding `accept` rules is taken as the (single) Suricata 8 firewall rules file.
    pub fn from_rules_files(
        paths: &[PathBuf],
    ) -> Result<(Policy, Vec<Diagnostic>), Vec<Diagnostic>> {
        Self::check_rules_files(paths, &LoadOptions::default()).into_result()
    }

    /// Checks plain rule files (see [`Policy::from_rules_files`]).
    pub fn check_rules_files(paths: &[PathBuf], opts: &LoadOptions) -> Checked {
        let mut policy = Policy::default();
        let mut l = Loader::new();
        for path in paths {
            let text = match std::fs::read_to_string(path) {
                Ok(t) => t,
                Err(e) => {
                    l.diags.push(unreadable(path, &e));
                    continue;
                }
            };
            let origin = Origin::File(SourceFile::new(display(path), text));
            let rules = l.parse(&origin);
            let group = RuleGroup {
                name: path
                    .file_name()
                    .map_or_else(|| display(path), |n| n.to_string_lossy().into_owned()),
                source: GroupSource::File(path.clone()),
                rules,
                variables: Vec::new(),
                sid_scope: SidScope::Policy,
                generated_text: None,
            };
            // A file with `accept` rules is a Suricata 8 firewall rules file.
            let firewall = group
                .rules
                .iter()
                .any(|r| r.action.kind() == ActionKind::Accept);
            if firewall && policy.firewall_rules.is_none() {
                l.fw_origin = Some(origin);
                policy.firewall_rules = Some(group);
            } else {
                if firewall {
                    l.diags.push(
                        Diagnostic::error(
                            "only one firewall rules file (with 'accept' rules) can be loaded",
                        )
                        .with_code("firewall-rule")
                        .in_file(display(path))
                        .with_hint(
                            "merge the firewall rules into one file: they run in file order",
                        ),
                    );
                }
                l.origins.push(origin);
                policy.rule_groups.push(group);
            }
        }
        let mut checked = finish(policy, l, opts);
        for d in &mut checked.diagnostics {
            if d.code.as_deref() == Some("undefined-variable") {
                if let Some(h) = d.hint.as_deref().and_then(rules_file_var_hint) {
                    d.hint = Some(h);
                }
            }
        }
        checked
    }

    /// Checks an NFW rule group JSON file on its own: a policy with that one group, in the
    /// rule order the group declares (action order when it declares none).
    pub fn check_nfw_rule_group(path: &Path, opts: &LoadOptions) -> Checked {
        let mut policy = Policy::default();
        let mut l = Loader::new();
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let src = SourceFile::new(display(path), text);
                let mut d = Vec::new();
                let g = nfw::parse_rule_group(&src, &mut d);
                l.diags.append(&mut d);
                if let Some(g) = g {
                    if let Some(o) = g.rule_order {
                        policy.rule_order = o;
                    }
                    let name = g.name.clone().unwrap_or_else(|| {
                        path.file_stem()
                            .map_or_else(|| display(path), |n| n.to_string_lossy().into_owned())
                    });
                    let group = import_nfw_group(&mut l, path, g, name, policy.rule_order);
                    policy.rule_groups.push(group);
                }
            }
            Err(e) => l.diags.push(unreadable(path, &e)),
        }
        finish(policy, l, opts)
    }

    /// Checks a YAML policy file, returning what was accepted and every diagnostic.
    pub fn check_file(path: &Path, opts: &LoadOptions) -> Checked {
        let mut l = Loader::new();
        let mut policy = Policy::default();
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                l.diags.push(unreadable(path, &e));
                return Checked {
                    policy,
                    diagnostics: in_reading_order(l.diags),
                };
            }
        };
        let src = SourceFile::new(display(path), text);
        // Every misspelt key in one pass (the deserialiser stops at the first).
        let unknown = unknown_key_diags(&src);
        if !unknown.is_empty() {
            l.diags.extend(unknown);
            return Checked {
                policy,
                diagnostics: in_reading_order(l.diags),
            };
        }
        let raw: RawPolicy = match from_yaml(&src) {
            Ok(r) => r,
            Err(d) => {
                l.diags.push(improve_serde_error(d));
                return Checked {
                    policy,
                    diagnostics: in_reading_order(l.diags),
                };
            }
        };
        let idx = YamlIndex::new(src.text());
        policy.load_raw(raw, path, &src, &idx, &mut l);
        finish(policy, l, opts)
    }

    fn load_raw(
        &mut self,
        raw: RawPolicy,
        path: &Path,
        src: &SourceFile,
        idx: &YamlIndex,
        l: &mut Loader,
    ) {
        if let Some(n) = raw.name {
            self.name = n;
        }
        self.availability_zone = raw.availability_zone;
        macro_rules! setting {
            ($field:ident, $ty:ty, $key:literal) => {
                if let Some(w) = &raw.$field {
                    match <$ty>::parse(w) {
                        Ok(v) => self.$field = v,
                        Err(e) => l
                            .diags
                            .push(parse_error(e, "setting", src, idx.value($key))),
                    }
                }
            };
        }
        setting!(engine_profile, EngineProfile, "engine_profile");
        setting!(rule_order, RuleOrder, "rule_order");
        setting!(
            stream_exception_policy,
            StreamExceptionPolicy,
            "stream_exception_policy"
        );
        self.stream_exception_policy_set = raw.stream_exception_policy.is_some();
        if let Some(e) = &raw.exception_policy {
            match crate::settings::parse_exception_policy(e) {
                Ok(p) => self.exception_policy = p,
                Err((path, e, on_key)) => {
                    let at = if on_key {
                        idx.key(&path)
                    } else {
                        idx.value(&path)
                    };
                    l.diags.push(parse_error(
                        e,
                        "setting",
                        src,
                        at.or_else(|| idx.value("exception_policy")),
                    ))
                }
            }
        }
        for (name, v) in &raw.variables {
            let span = idx.key(&format!("variables.{name}"));
            if !valid_var_name(name) {
                l.diags.push(located(
                    Diagnostic::error(format!("invalid variable name '{name}'"))
                        .with_code("variable")
                        .with_hint("names start with a letter and use letters, digits and '_'"),
                    src,
                    span,
                ));
                continue;
            }
            let def = VarDef::new(name, v.kind(name), v.to_suricata());
            if let Err(why) = set_def(&mut Variables::empty(), &def) {
                l.diags.push(located(
                    Diagnostic::error(format!(
                        "invalid {} group '{name}': {why}",
                        if def.kind == VarKind::Port { "port" } else { "address" }
                    ))
                    .with_code("bad-variable")
                    .with_hint("port groups are names ending in _PORTS or lists of ports; everything else is an address group"),
                    src,
                    idx.value(&format!("variables.{name}")),
                ));
                continue;
            }
            set_var(&mut self.variables, def);
        }
        let var_errors = build_variables(&self.variables).check();
        for (name, err) in root_variable_errors(&self.variables, &var_errors) {
            let d = match err {
                VarError::Loop(n) if n == name => {
                    Diagnostic::error(format!("variable '{name}' refers to itself"))
                        .with_code("variable-loop")
                        .with_hint(
                            "a variable cannot contain itself; define it from addresses or ports, or from other variables",
                        )
                }
                VarError::Loop(n) => Diagnostic::error(format!(
                    "variable '{name}' refers to itself through '${n}'"
                ))
                    .with_code("variable-loop")
                    .with_hint("variables refer to each other in a cycle; break the cycle"),
                _ => Diagnostic::error(format!("variable '{name}': {err}"))
                    .with_code("bad-variable"),
            };
            l.diags
                .push(located(d, src, idx.value(&format!("variables.{name}"))));
        }
        self.rate_limits = crate::ratelimit::load(
            &raw.rate_limits,
            src,
            idx,
            &build_variables(&self.variables),
            &mut l.diags,
        );
        // Default actions: parse each, then NFW's combination rules.
        let mut spans = Vec::new();
        for (i, w) in raw.default_actions.iter().enumerate() {
            let span = idx.value(&format!("default_actions[{i}]"));
            match DefaultAction::parse(w) {
                Ok(a) => {
                    self.default_actions.push(a);
                    spans.push(span);
                }
                Err(e) => l.diags.push(parse_error(e, "default-action", src, span)),
            }
        }
        for (i, e) in check_default_actions(&self.default_actions) {
            l.diags.push(parse_error(
                e,
                "default-action",
                src,
                spans.get(i).cloned().flatten(),
            ));
        }
        if self.rule_order == RuleOrder::Action && !raw.default_actions.is_empty() {
            l.diags.push(located(
                Diagnostic::error("default_actions are only allowed with rule_order: strict")
                    .with_code("default-action")
                    .with_hint("set 'rule_order: strict', or remove default_actions: under action order, traffic no rule decided passes"),
                src,
                idx.key("default_actions"),
            ));
            self.default_actions.clear();
        }
        if let Some(lg) = raw.logging {
            if let Some(f) = lg.format {
                match LogFormat::parse(&f) {
                    Ok(v) => self.logging.format = v,
                    Err(e) => {
                        l.diags
                            .push(parse_error(e, "setting", src, idx.value("logging.format")))
                    }
                }
            }
            self.logging.dir = lg.dir.map(|d| resolve(path, &d));
        }
        if let Some(fw) = &raw.firewall_rules {
            let p = resolve(path, fw);
            if let Some(text) = l.read(&p, "firewall rules file", src, idx.value("firewall_rules"))
            {
                let origin = Origin::File(SourceFile::new(display(&p), text));
                let rules = l.parse(&origin);
                l.fw_origin = Some(origin);
                self.firewall_rules = Some(RuleGroup {
                    name: "firewall".into(),
                    source: GroupSource::File(p),
                    rules,
                    variables: Vec::new(),
                    sid_scope: SidScope::Policy,
                    generated_text: None,
                });
            }
        }
        if let Some(t) = &raw.threshold_config {
            let p = resolve(path, t);
            if let Some(text) = l.read(
                &p,
                "threshold config file",
                src,
                idx.value("threshold_config"),
            ) {
                let file = SourceFile::new(display(&p), text);
                let (cfg, diags) = sekisho_rules::parse_threshold_config(&file);
                l.diags.extend(diags);
                self.threshold_config = Some(cfg);
            }
        }
        let mut names: HashMap<String, usize> = HashMap::new();
        for (i, g) in raw.rule_groups.into_iter().enumerate() {
            let at = |k: &str| format!("rule_groups[{i}].{k}");
            if let Some(first) = names.insert(g.name.clone(), i) {
                l.diags.push(located(
                    Diagnostic::error(format!("rule group name '{}' is used twice", g.name))
                        .with_code("duplicate-group")
                        .with_hint(format!(
                            "rule_groups[{first}] already has this name; names must be unique"
                        )),
                    src,
                    idx.value(&at("name")),
                ));
            }
            let present: Vec<&str> = [
                ("rules", g.rules.is_some()),
                ("rules_text", g.rules_text.is_some()),
                ("domain_list", g.domain_list.is_some()),
                ("nfw_rule_group", g.nfw_rule_group.is_some()),
            ]
            .iter()
            .filter(|(_, p)| *p)
            .map(|(k, _)| *k)
            .collect();
            if present.len() != 1 {
                let msg = if present.is_empty() {
                    format!("rule group '{}' has no rules source", g.name)
                } else {
                    format!(
                        "rule group '{}' has {} rules sources ({}); exactly one is allowed",
                        g.name,
                        present.len(),
                        present.join(", ")
                    )
                };
                let span = match present.get(1) {
                    Some(k) => idx.key(&at(k)),
                    None => idx.value(&format!("rule_groups[{i}]")),
                };
                l.diags.push(located(
                    Diagnostic::error(msg).with_code("group-source").with_hint(
                        "give each group one of: rules, rules_text, domain_list, nfw_rule_group",
                    ),
                    src,
                    span,
                ));
                continue;
            }
            let group = if let Some(file) = &g.rules {
                let p = resolve(path, file);
                let Some(text) = l.read(&p, "rules file", src, idx.value(&at("rules"))) else {
                    continue;
                };
                let origin = Origin::File(SourceFile::new(display(&p), text));
                let rules = l.parse(&origin);
                l.origins.push(origin);
                RuleGroup {
                    name: g.name,
                    source: GroupSource::File(p),
                    rules,
                    variables: Vec::new(),
                    sid_scope: SidScope::Policy,
                    generated_text: None,
                }
            } else if let Some(text) = &g.rules_text {
                let origin = match idx
                    .key(&at("rules_text"))
                    .and_then(|k| literal_block(src.text(), k))
                    .filter(|(block, _, _)| block.trim_end() == text.trim_end())
                {
                    Some((block, first_line, indent)) => Origin::Inline {
                        text: SourceFile::new(src.name(), block),
                        policy: src.clone(),
                        first_line,
                        indent,
                    },
                    // Not a literal block: positions are relative to the string itself.
                    None => Origin::File(SourceFile::new(
                        format!("{}#{}", src.name(), at("rules_text")),
                        text.clone(),
                    )),
                };
                let rules = l.parse(&origin);
                l.origins.push(origin);
                RuleGroup {
                    name: g.name,
                    source: GroupSource::Inline,
                    rules,
                    variables: Vec::new(),
                    sid_scope: SidScope::Policy,
                    generated_text: None,
                }
            } else if let Some(dl) = g.domain_list {
                let Some(list) = domain_list(dl, src, idx, &at("domain_list"), &mut l.diags) else {
                    continue;
                };
                let origin = generated_origin(&g.name, &list, self.rule_order);
                let origin_text = origin.source().text().to_string();
                let rules = l.parse(&origin);
                l.origins.push(origin);
                RuleGroup {
                    name: g.name,
                    source: GroupSource::DomainList(list),
                    rules,
                    variables: Vec::new(),
                    sid_scope: SidScope::Group,
                    generated_text: Some(origin_text),
                }
            } else if let Some(file) = &g.nfw_rule_group {
                let p = resolve(path, file);
                let Some(text) =
                    l.read(&p, "NFW rule group", src, idx.value(&at("nfw_rule_group")))
                else {
                    continue;
                };
                let jsrc = SourceFile::new(display(&p), text);
                let mut d = Vec::new();
                let parsed = nfw::parse_rule_group(&jsrc, &mut d);
                l.diags.append(&mut d);
                let Some(ng) = parsed else { continue };
                if let Some(o) = ng.rule_order {
                    if o != self.rule_order {
                        let span = nfw_string_span(jsrc.text(), o.nfw_name());
                        l.diags.push(located(
                            Diagnostic::error(format!(
                                "rule group declares RuleOrder {} but the policy uses rule_order: {}",
                                o.nfw_name(),
                                self.rule_order.as_str()
                            ))
                            .with_code("rule-order")
                            .with_hint("NFW requires every stateful rule group to use the policy's rule order"),
                            &jsrc,
                            span,
                        ));
                    }
                }
                import_nfw_group(l, &p, ng, g.name, self.rule_order)
            } else {
                continue;
            };
            self.rule_groups.push(group);
        }
        // A drop_strict default drops every handshake packet no rule passed, so domain list
        // rules (which need an established flow) never see a ClientHello or a request.
        if let Some(i) = self
            .default_actions
            .iter()
            .position(|a| *a == DefaultAction::DropStrict)
        {
            let lists: Vec<&str> = self
                .rule_groups
                .iter()
                .filter(|g| {
                    matches!(
                        g.source,
                        GroupSource::DomainList(_)
                            | GroupSource::NfwRuleGroup {
                                form: NfwForm::RulesSourceList(_),
                                ..
                            }
                    )
                })
                .map(|g| g.name.as_str())
                .collect();
            if !lists.is_empty() {
                let span = raw_default_span(idx, i);
                l.diags.push(located(
                    Diagnostic::warning(format!(
                        "aws:drop_strict drops TCP handshakes, so the domain list rules of {} never see a TLS ClientHello or HTTP request",
                        lists.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ")
                    ))
                    .with_code("drop-strict-domain-list")
                    .with_hint("use drop_established (or an *_app_layer* variant) with domain lists, as AWS recommends"),
                    src,
                    span,
                ));
            }
        }
    }

    /// Cross-rule checks: priority under strict order, unique sids across groups (a repeat
    /// inside one file is reported, and dropped, by the rules parser), undefined variables.
    /// A rule whose sid repeats one of an earlier group is dropped, as Suricata keeps the
    /// first rule with a given (gid, sid).
    fn validate(&mut self, l: &mut Loader) {
        let strict = self.rule_order == RuleOrder::Strict;
        // (gid, sid) -> (group index, "file:line") of the first user-written rule.
        let mut seen: HashMap<(u64, u64), (usize, String)> = HashMap::new();
        let mut out = Vec::new();
        let mut drops: Vec<Vec<usize>> = Vec::new();
        let n_groups = self.rule_groups.len();
        for gi in 0..=n_groups {
            // Firewall rules first (they are evaluated first), then the groups in order.
            let (g, origin) = if gi == 0 {
                match (&self.firewall_rules, &l.fw_origin) {
                    (Some(g), Some(o)) => (g, o),
                    _ => {
                        drops.push(Vec::new());
                        continue;
                    }
                }
            } else {
                match (self.rule_groups.get(gi - 1), l.origins.get(gi - 1)) {
                    (Some(g), Some(o)) => (g, o),
                    _ => {
                        drops.push(Vec::new());
                        continue;
                    }
                }
            };
            let mut dropped = Vec::new();
            let vars = self.variables_for(g);
            let broken_vars: Vec<String> = build_variables(&self.variables)
                .check()
                .into_iter()
                .map(|(n, _)| n)
                .collect();
            let nfw = self.engine_profile == EngineProfile::AwsNfw;
            for (ri, rule) in g.rules.iter().enumerate() {
                let ctx = ShapeCtx {
                    firewall: gi == 0,
                    nfw,
                    first: ri == 0,
                    generated: g.generated_text.is_some(),
                };
                check_rule_shape(rule, ctx, origin, &mut out);
                if strict {
                    for o in &rule.options {
                        if let RuleOption::Priority(_) = o.node {
                            out.push(origin.at(
                                Diagnostic::error("the priority keyword is not allowed under rule_order: strict")
                                    .with_code("priority-strict")
                                    .with_hint("remove it: strict order evaluates groups in order and rules in file order"),
                                o.span.range(),
                            ));
                        }
                    }
                }
                if g.sid_scope == SidScope::Policy {
                    let key = (rule.gid(), rule.sid());
                    let sid_span = rule
                        .options
                        .iter()
                        .find(|o| matches!(o.node, RuleOption::Sid(_)))
                        .map_or(rule.span.range(), |o| o.span.range());
                    match seen.get(&key) {
                        Some((first_group, first)) if *first_group != gi => {
                            let gid = if key.0 == 1 {
                                String::new()
                            } else {
                                format!(" (gid {})", key.0)
                            };
                            out.push(origin.at(
                                Diagnostic::error(format!("duplicate sid {}{gid}: first used at {first}", key.1))
                                    .with_code("duplicate-sid")
                                    .with_hint("each (gid, sid) must be unique across the policy; pick an unused sid"),
                                sid_span,
                            ));
                            dropped.push(ri);
                            continue;
                        }
                        Some(_) => {}
                        None => {
                            seen.insert(key, (gi, origin.place(sid_span)));
                        }
                    }
                }
                for d in sekisho_rules::validate_variables_in(rule, &vars, origin.source()) {
                    // A broken variable definition is reported once, at the definition.
                    let from_broken =
                        matches!(d.code.as_deref(), Some("variable-loop" | "bad-variable"))
                            && broken_vars
                                .iter()
                                .any(|n| d.message.starts_with(&format!("variable '${n}' ")));
                    if !from_broken {
                        out.push(origin.fix(d));
                    }
                }
            }
            drops.push(dropped);
        }
        for (gi, dropped) in drops.into_iter().enumerate() {
            if dropped.is_empty() {
                continue;
            }
            let g = if gi == 0 {
                self.firewall_rules.as_mut()
            } else {
                self.rule_groups.get_mut(gi - 1)
            };
            if let Some(g) = g {
                let mut i = 0;
                g.rules.retain(|_| {
                    i += 1;
                    !dropped.contains(&(i - 1))
                });
            }
        }
        l.diags.append(&mut out);
    }

    /// Loads a Suricata threshold.config file (the `threshold-file` setting) in place of
    /// any `threshold_config:` of the policy, and checks it against the rules: a line whose
    /// rule is not in the policy, or whose `ip` names an undefined variable, is reported.
    /// Returns the diagnostics (errors leave the previous config in place).
    pub fn set_threshold_file(&mut self, path: &Path) -> Vec<Diagnostic> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                return vec![Diagnostic::error(format!(
                    "cannot read threshold config file '{}': {e}",
                    display(path)
                ))
                .with_code("missing-file")]
            }
        };
        let file = SourceFile::new(display(path), text);
        let (cfg, mut diags) = sekisho_rules::parse_threshold_config(&file);
        if !diags.iter().any(Diagnostic::is_error) {
            self.threshold_config = Some(cfg);
            diags.extend(self.check_threshold_config());
        }
        diags
    }

    /// Checks the threshold config against the loaded rules: warnings for lines naming a
    /// rule that is not in the policy, errors for `ip` values that do not resolve.
    pub fn check_threshold_config(&self) -> Vec<Diagnostic> {
        use sekisho_rules::ThresholdDirective as D;
        let Some(cfg) = &self.threshold_config else {
            return Vec::new();
        };
        let vars = build_variables(&self.variables);
        // (gid, sid) of every rule, and the sids alone for `gen_id 0` (any generator).
        let ids: std::collections::HashSet<(u64, u64)> = self
            .rule_groups
            .iter()
            .flat_map(|g| g.rules.iter())
            .map(|r| (r.gid(), r.sid()))
            .collect();
        let sids: std::collections::HashSet<u64> = ids.iter().map(|&(_, s)| s).collect();
        let mut out = Vec::new();
        for e in &cfg.entries {
            let at = |d: Diagnostic| {
                d.at(sekisho_diag::Location {
                    file: cfg.file.clone(),
                    line: e.line,
                    column: 1,
                    len: 1,
                    line_text: String::new(),
                })
            };
            let (gid, sid) = match &e.directive {
                D::Threshold { gid, sid, .. } | D::RateFilter { gid, sid, .. } => (*gid, *sid),
                D::Suppress { gid, sid, by } => {
                    if let Some((_, ip)) = by {
                        if let Err(err) = vars.resolve_address(ip) {
                            out.push(at(Diagnostic::error(format!(
                                "suppress ip does not resolve: {err}"
                            ))
                            .with_code("bad-threshold-config")
                            .with_hint("define the variable under `variables:` in the policy")));
                        }
                    }
                    (*gid, *sid)
                }
            };
            let named = sid == 0
                || if gid == 0 {
                    sids.contains(&u64::from(sid))
                } else {
                    ids.contains(&(u64::from(gid), u64::from(sid)))
                };
            if !named {
                out.push(at(Diagnostic::warning(format!(
                    "gen_id {gid}, sig_id {sid}: no such rule in the policy; this line has no effect"
                ))
                .with_code("threshold-unknown-sid")
                .with_hint("check the sid, or remove the line")));
            }
        }
        out
    }

    /// The variables as the rules of `group` see them: the policy's, with the group's own
    /// (NFW `RuleVariables`) replacing same-named ones. As in NFW, a policy variable the group
    /// does not set keeps its policy value even when it refers to one the group overrides
    /// (group `HOME_NET` does not change the policy's `EXTERNAL_NET = !$HOME_NET`).
    ///
    /// Definitions that do not parse are left out (the loader reported them).
    pub fn variables_for(&self, group: &RuleGroup) -> Variables {
        let policy = build_variables(&self.variables);
        if group.variables.is_empty() {
            return policy;
        }
        let mut v = Variables::empty();
        for def in &self.variables {
            if group.variables.iter().any(|g| g.name == def.name) {
                continue;
            }
            // Pin the policy's value so group overrides do not leak into it.
            let pinned = match def.kind {
                VarKind::Address => policy
                    .address(&def.name)
                    .and_then(|e| policy.resolve_address(e).ok())
                    .map(|set| ip_set_text(&set)),
                VarKind::Port => policy
                    .port(&def.name)
                    .and_then(|e| policy.resolve_port(e).ok())
                    .map(|set| port_set_text(&set)),
            };
            if let Some(text) = pinned {
                let _ = set_def(&mut v, &VarDef::new(&def.name, def.kind, text));
            }
        }
        for def in &group.variables {
            let _ = set_def(&mut v, def);
        }
        v
    }

    /// The policy-level variables as a resolvable [`Variables`] set.
    pub fn variables(&self) -> Variables {
        build_variables(&self.variables)
    }

    /// Number of rules in the policy (firewall rules included).
    pub fn rule_count(&self) -> usize {
        self.firewall_rules
            .iter()
            .chain(&self.rule_groups)
            .map(|g| g.rules.len())
            .sum()
    }

    /// The threat-detection rules in the order sekisho evaluates them, each with its group.
    ///
    /// Strict order: groups in order, rules in file order. Action order: by action class
    /// (pass, drop, reject, alert), then the `priority` keyword (3 when absent, classtype
    /// priorities not applied), then load order. Firewall rules are not included; they run
    /// first, in file order.
    pub fn evaluation_order(&self) -> Vec<(&RuleGroup, &Rule)> {
        let mut all: Vec<(&RuleGroup, &Rule)> = self
            .rule_groups
            .iter()
            .flat_map(|g| g.rules.iter().map(move |r| (g, r)))
            .collect();
        if self.rule_order == RuleOrder::Action {
            all.sort_by_key(|(_, r)| (action_class(r.action.kind()), r.priority().unwrap_or(3)));
        }
        all
    }

    /// The effective rule list as text, for `sekisho check --print-rules`: one canonical rule
    /// per line, with `# group: NAME` headers, firewall rules first and default actions last
    /// (as comments saying what they do).
    pub fn render_rules(&self) -> String {
        let mut out = format!(
            "# policy: {} (rule_order: {}, engine_profile: {})\n",
            self.name,
            self.rule_order.as_str(),
            self.engine_profile.as_str()
        );
        if let Some(fw) = &self.firewall_rules {
            out.push_str(&format!(
                "# firewall rules: {} (evaluated first, in file order)\n",
                group_origin(fw)
            ));
            for r in &fw.rules {
                out.push_str(&format!("{r}\n"));
            }
        }
        let mut last: Option<*const RuleGroup> = None;
        for (g, r) in self.evaluation_order() {
            if last != Some(g as *const _) {
                out.push_str(&format!("# group: {}{}\n", g.name, group_note(g)));
                last = Some(g as *const _);
            }
            out.push_str(&g.rule_text(r));
            out.push('\n');
        }
        if self.rule_order == RuleOrder::Strict {
            if self.default_actions.is_empty() {
                out.push_str("# default actions: none (traffic no rule decided passes)\n");
            } else {
                out.push_str(
                    "# default actions (applied after all groups to traffic no rule decided):\n",
                );
                for a in &self.default_actions {
                    out.push_str(&format!("#   {a}: {}\n", a.describe()));
                }
            }
        }
        out
    }
}

fn group_origin(g: &RuleGroup) -> String {
    match &g.source {
        GroupSource::File(p) => display(p),
        GroupSource::NfwRuleGroup { path, .. } => display(path),
        GroupSource::Inline => "rules_text".into(),
        GroupSource::DomainList(_) => "domain_list".into(),
    }
}

fn group_note(g: &RuleGroup) -> String {
    let generated = match &g.source {
        GroupSource::DomainList(l)
        | GroupSource::NfwRuleGroup {
            form: NfwForm::RulesSourceList(l),
            ..
        } => Some(l.list_type.as_str()),
        _ => None,
    };
    match (&g.source, generated) {
        (_, Some(t)) => format!(" ({t} generated from a domain list; sids local to this group)"),
        (GroupSource::NfwRuleGroup { path, form }, None) => format!(
            " (NFW {} from {})",
            match form {
                NfwForm::StatefulRules => "StatefulRules",
                _ => "RulesString",
            },
            display(path)
        ),
        (GroupSource::File(p), _) => format!(" ({})", display(p)),
        _ => String::new(),
    }
}

fn action_class(k: ActionKind) -> u8 {
    match k {
        ActionKind::Pass => 0,
        ActionKind::Drop => 1,
        ActionKind::Reject
        | ActionKind::RejectSrc
        | ActionKind::RejectDst
        | ActionKind::RejectBoth => 2,
        ActionKind::Alert => 3,
        ActionKind::Accept | ActionKind::Config => 4,
    }
}

fn valid_var_name(n: &str) -> bool {
    let mut c = n.chars();
    matches!(c.next(), Some(f) if f.is_ascii_alphabetic())
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
        && n.len() <= 64
}

/// The diagnostic for an input path that cannot be read at all.
fn unreadable(path: &Path, e: &std::io::Error) -> Diagnostic {
    Diagnostic::error(format!("cannot read '{}': {e}", display(path)))
        .with_code("missing-file")
        .in_file(display(path))
}

/// The common end of every check: `--var` overrides, policy-wide validation, diagnostics in
/// reading order.
fn finish(mut policy: Policy, mut l: Loader, opts: &LoadOptions) -> Checked {
    apply_var_overrides(&mut policy, opts, &mut l.diags);
    policy.validate(&mut l);
    l.diags.extend(policy.check_threshold_config());
    let order = policy.evaluation_order();
    for (pass, d) in passtrap::findings(&policy) {
        let Some((g, r)) = order.get(pass).copied() else {
            continue;
        };
        let gi = policy.rule_groups.iter().position(|x| std::ptr::eq(x, g));
        if let Some(origin) = gi.and_then(|i| l.origins.get(i)) {
            l.diags.push(origin.at(d, action_span(r)));
        }
    }
    Checked {
        policy,
        diagnostics: in_reading_order(l.diags),
    }
}

/// Orders diagnostics as a person reads them: files in the order they were first reported,
/// then by line and column (stable, so an error stays before a warning at the same spot).
fn in_reading_order(mut diags: Vec<Diagnostic>) -> Vec<Diagnostic> {
    let mut rank: HashMap<String, usize> = HashMap::new();
    for d in &diags {
        let file = d.location.as_ref().map_or("", |l| l.file.as_str());
        let next = rank.len();
        rank.entry(file.to_string()).or_insert(next);
    }
    diags.sort_by_key(|d| match &d.location {
        Some(l) => (rank.get(&l.file).copied().unwrap_or(0), l.line, l.column),
        None => (rank.get("").copied().unwrap_or(0), 0, 0),
    });
    diags
}

/// Keywords AWS Network Firewall (Suricata 7) rejects or does not have (NFW reference §6).
/// Keywords that are errors instead ([`suricata8::only`]) are not listed here.
const NFW_MISSING_KEYWORDS: &[&str] = &[
    "dataset",
    "datarep",
    "iprep",
    "lua",
    "luajit",
    "threshold",
    "detection_filter",
    "hostbits",
];

/// Per-rule checks that depend on where the rule is used: firewall-mode shape (explicit hook
/// and scope, accept/drop/reject only) for `firewall_rules`, no `accept` among
/// threat-detection rules, keywords sekisho does not model, and under the `aws-nfw` profile
/// what AWS Network Firewall would reject.
/// Where a rule sits, for [`check_rule_shape`].
#[derive(Clone, Copy)]
struct ShapeCtx {
    /// In `firewall_rules`.
    firewall: bool,
    /// Under the `aws-nfw` engine profile.
    nfw: bool,
    /// First rule of its group (file-level warnings are given once).
    first: bool,
    /// Generated by sekisho (the user cannot edit it, so no keyword-coverage warnings).
    generated: bool,
}

fn check_rule_shape(rule: &Rule, ctx: ShapeCtx, origin: &Origin, out: &mut Vec<Diagnostic>) {
    let ShapeCtx {
        firewall,
        nfw,
        first,
        generated,
    } = ctx;
    let head = rule.span.start..rule.span.start + rule.action.primary.kind.as_str().len();
    let kind = rule.action.kind();
    if firewall {
        let deciding = matches!(
            kind,
            ActionKind::Accept
                | ActionKind::Drop
                | ActionKind::Reject
                | ActionKind::RejectSrc
                | ActionKind::RejectDst
                | ActionKind::RejectBoth
        );
        if !deciding || rule.action.scope().is_none() || rule.protocol.hook.is_none() {
            out.push(origin.at(
                Diagnostic::error("firewall rules need accept, drop or reject with an explicit scope and a hook")
                    .with_code("firewall-rule")
                    .with_hint("e.g. 'accept:hook tcp:all any any -> any any (sid:1;)' or 'drop:flow tls:client_hello_done ...'"),
                head.clone(),
            ));
        }
        if nfw && first {
            out.push(origin.at(
                Diagnostic::warning("AWS Network Firewall has no Suricata 8 firewall mode; under engine_profile aws-nfw these rules have no NFW equivalent")
                    .with_code("nfw-compat"),
                head.clone(),
            ));
        }
    } else if kind == ActionKind::Accept {
        out.push(
            origin.at(
                Diagnostic::error("'accept' is only valid in firewall rules")
                    .with_code("firewall-rule")
                    .with_hint("move the rule to the policy's firewall_rules file, or use pass"),
                head.clone(),
            ),
        );
    }
    // `accept` outside firewall rules is already an error above.
    if let (true, false, false, Some(scope)) = (
        nfw,
        firewall,
        kind == ActionKind::Accept,
        rule.action.scope(),
    ) {
        let written = format!("{}:{}", kind.as_str(), scope.as_str());
        out.push(origin.at(
            Diagnostic::error(format!(
                "AWS Network Firewall runs Suricata 7.0, which has no action scopes: '{written}' is Suricata 8.0 syntax"
            ))
            .with_code("nfw-action-scope")
            .with_hint(suricata8::scope_hint(kind, scope)),
            action_span(rule),
        ));
    }
    if nfw
        && matches!(
            kind,
            ActionKind::RejectSrc | ActionKind::RejectDst | ActionKind::RejectBoth
        )
    {
        out.push(
            origin.at(
                Diagnostic::warning(format!(
                    "AWS Network Firewall does not support the '{}' action",
                    kind.as_str()
                ))
                .with_code("nfw-compat")
                .with_hint("use reject"),
                head.clone(),
            ),
        );
    }
    for o in &rule.options {
        let name = o.node.keyword();
        if matches!(o.node, RuleOption::Unsupported { .. })
            && !generated
            && !sekisho_rules::EVALUATED_FROM_VALUE.contains(&name)
        {
            out.push(origin.at(
                Diagnostic::warning(format!("sekisho does not model keyword '{name}' yet"))
                    .with_code("unsupported-keyword")
                    .with_hint("the rule is loaded; see `sekisho check --coverage` for what is modelled"),
                o.span.range(),
            ));
        }
        if nfw {
            if let Some(hint) = suricata8::only(name) {
                out.push(origin.at(
                    Diagnostic::error(format!(
                        "AWS Network Firewall runs Suricata 7.0, which has no '{name}' keyword (added in Suricata 8.0)"
                    ))
                    .with_code("nfw-keyword")
                    .with_hint(hint),
                    o.span.range(),
                ));
                continue;
            }
        }
        if nfw && NFW_MISSING_KEYWORDS.contains(&name) {
            out.push(origin.at(
                Diagnostic::warning(format!("AWS Network Firewall (Suricata 7) does not support keyword '{name}'"))
                    .with_code("nfw-compat")
                    .with_hint("NFW would reject this rule group; use engine_profile suricata-8 to keep the rule"),
                o.span.range(),
            ));
        }
    }
}

/// Span of a rule's action token, scope included (`drop:flow`).
fn action_span(rule: &Rule) -> Range<usize> {
    let mut len = rule.action.primary.kind.as_str().len();
    if let Some(scope) = rule.action.scope() {
        len += 1 + scope.as_str().len();
    }
    rule.span.start..rule.span.start + len
}

/// Span of the `i`-th default action in the YAML (when all parsed, accepted index = YAML index).
fn raw_default_span(idx: &YamlIndex, i: usize) -> Option<Range<usize>> {
    idx.value(&format!("default_actions[{i}]"))
        .or_else(|| idx.key("default_actions"))
}

fn set_def(v: &mut Variables, def: &VarDef) -> Result<(), String> {
    match def.kind {
        VarKind::Address => v.set_address(&def.name, &def.value),
        VarKind::Port => v.set_port(&def.name, &def.value),
    }
}

/// Rewords the rules crate's undefined-variable hint (`define it under 'variables:' in the
/// policy, e.g. NAME: "EXAMPLE"`) for a rules file checked without a policy, where `--var`
/// is the way to define it. `None` when the hint is not in that form.
fn rules_file_var_hint(hint: &str) -> Option<String> {
    let example = hint.split_once("e.g. ")?.1;
    let (name, value) = example.split_once(": ")?;
    let value = value.strip_prefix('"')?.strip_suffix('"')?;
    Some(format!(
        "define it with --var '{name}={value}', or under 'variables:' in a policy, e.g. {example}"
    ))
}

/// The `$NAME` references in a variable's value text.
fn var_refs(value: &str) -> impl Iterator<Item = &str> {
    value.split('$').skip(1).map(|r| {
        let end = r
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(r.len());
        &r[..end]
    })
}

/// The variable errors worth reporting: those whose cause is in the variable's own
/// definition. A variable that fails only because a variable it refers to failed (defaults
/// such as `EXTERNAL_NET: "!$HOME_NET"` when `HOME_NET` loops) is left out; the root is
/// reported. Variables in one cycle reach each other, so each of them is reported.
fn root_variable_errors<'a>(
    defs: &[VarDef],
    errors: &'a [(String, VarError)],
) -> Vec<(&'a str, &'a VarError)> {
    let failed: std::collections::BTreeSet<&str> = errors.iter().map(|(n, _)| n.as_str()).collect();
    let value_of = |n: &str| defs.iter().find(|d| d.name == n).map(|d| d.value.as_str());
    // Whether `to` is reachable from `from` through references (bounded by the number of
    // definitions: each is visited once).
    let reaches = |from: &str, to: &str| {
        let mut seen = std::collections::BTreeSet::new();
        let mut stack = vec![from.to_string()];
        while let Some(n) = stack.pop() {
            if n == to {
                return true;
            }
            if !seen.insert(n.clone()) {
                continue;
            }
            if let Some(v) = value_of(&n) {
                stack.extend(var_refs(v).map(str::to_string));
            }
        }
        false
    };
    errors
        .iter()
        .filter(|(name, _)| {
            let derived = value_of(name).is_some_and(|v| {
                var_refs(v).any(|r| r != name && failed.contains(r) && !reaches(r, name))
            });
            !derived
        })
        .map(|(n, e)| (n.as_str(), e))
        .collect()
}

fn build_variables(defs: &[VarDef]) -> Variables {
    let mut v = Variables::empty();
    for d in defs {
        let _ = set_def(&mut v, d);
    }
    v
}

fn ip_set_text(set: &IpSet) -> String {
    let parts: Vec<String> = set
        .ranges()
        .iter()
        .map(|r| {
            if r.start == r.end {
                r.start.to_string()
            } else {
                format!("{}-{}", r.start, r.end)
            }
        })
        .collect();
    format!("[{}]", parts.join(","))
}

fn port_set_text(set: &PortSet) -> String {
    let parts: Vec<String> = set
        .ranges()
        .iter()
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}:{b}")
            }
        })
        .collect();
    format!("[{}]", parts.join(","))
}

fn nfw_string_span(text: &str, value: &str) -> Option<Range<usize>> {
    let lit = format!("\"{value}\"");
    text.find(&lit).map(|i| i..i + lit.len())
}

fn generated_origin(group: &str, list: &DomainList, order: RuleOrder) -> Origin {
    let mut text = list.generate(order).join("\n");
    text.push('\n');
    Origin::File(SourceFile::new(format!("<generated:{group}>"), text))
}

/// Builds a group from an imported NFW rule group; rule text diagnostics are located in a
/// virtual file `PATH#RulesString` / `PATH#StatefulRules` whose lines are the rules.
fn import_nfw_group(
    l: &mut Loader,
    path: &Path,
    ng: nfw::NfwRuleGroup,
    name: String,
    order: RuleOrder,
) -> RuleGroup {
    let (origin, form, scope) = match ng.source {
        NfwSource::RulesString(s) => (
            Origin::File(SourceFile::new(format!("{}#RulesString", display(path)), s)),
            NfwForm::RulesString,
            SidScope::Policy,
        ),
        NfwSource::StatefulRules(v) => (
            Origin::File(SourceFile::new(
                format!("{}#StatefulRules", display(path)),
                v.join("\n") + "\n",
            )),
            NfwForm::StatefulRules,
            SidScope::Policy,
        ),
        NfwSource::DomainList(list) => (
            generated_origin(&name, &list, order),
            NfwForm::RulesSourceList(list),
            SidScope::Group,
        ),
    };
    let generated_text = match form {
        NfwForm::RulesString => None,
        _ => Some(origin.source().text().to_string()),
    };
    let rules = l.parse(&origin);
    l.origins.push(origin);
    RuleGroup {
        name,
        generated_text,
        source: GroupSource::NfwRuleGroup {
            path: path.to_path_buf(),
            form,
        },
        rules,
        variables: ng.variables,
        sid_scope: scope,
    }
}

fn domain_list(
    dl: RawDomainList,
    src: &SourceFile,
    idx: &YamlIndex,
    at: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<DomainList> {
    let before = diags.len();
    let mut target_types = Vec::new();
    for (i, t) in dl.target_types.iter().enumerate() {
        match TargetType::parse(t) {
            Ok(t) => target_types.push(t),
            Err(e) => diags.push(parse_error(
                e,
                "domain-list",
                src,
                idx.value(&format!("{at}.target_types[{i}]")),
            )),
        }
    }
    if dl.target_types.is_empty() {
        diags.push(located(
            Diagnostic::error("target_types is empty")
                .with_code("domain-list")
                .with_hint("list tls_sni, http_host or both"),
            src,
            idx.key(&format!("{at}.target_types")),
        ));
    }
    if dl.targets.is_empty() {
        diags.push(located(
            Diagnostic::error("targets is empty")
                .with_code("domain-list")
                .with_hint("list names like 'example.com' or '.example.com'"),
            src,
            idx.key(&format!("{at}.targets")),
        ));
    }
    for (i, t) in dl.targets.iter().enumerate() {
        if let Err(e) = check_target(t) {
            diags.push(parse_error(
                e,
                "domain-list",
                src,
                idx.value(&format!("{at}.targets[{i}]")),
            ));
        }
    }
    let list_type = ListType::parse(&dl.list_type)
        .map_err(|e| {
            diags.push(parse_error(
                e,
                "domain-list",
                src,
                idx.value(&format!("{at}.type")),
            ))
        })
        .ok();
    if diags.len() > before {
        return None;
    }
    Some(DomainList {
        targets: dl.targets,
        target_types,
        list_type: list_type?,
    })
}

fn apply_var_overrides(policy: &mut Policy, opts: &LoadOptions, diags: &mut Vec<Diagnostic>) {
    for (name, value) in &opts.vars {
        if !valid_var_name(name) {
            diags.push(
                Diagnostic::error(format!("invalid variable name '{name}' in --var"))
                    .with_code("variable"),
            );
            continue;
        }
        let raw = RawVar::Scalar(crate::vars::RawScalar::Str(value.clone()));
        set_var(
            &mut policy.variables,
            VarDef::new(name, raw.kind(name), value.clone()),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, text).unwrap();
        p
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn loads_every_key_into_the_typed_model() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "r/a.rules",
            "alert tcp $HOME_NET any -> any $SMTP_PORTS (msg:\"a\"; sid:1;)\n",
        );
        write(
            dir.path(),
            "fw.rules",
            "accept:hook tcp:all any any -> any any (sid:50;)\n",
        );
        let p = write(
            dir.path(),
            "p.yaml",
            "name: fw1\navailability_zone: az1\nvariables:\n  HOME_NET: [10.1.0.0/16]\n  SMTP_PORTS: [25, 587]\nengine_profile: aws-nfw\nrule_order: strict\ndefault_actions: [aws:drop_strict, alert_strict]\nstream_exception_policy: continue\nfirewall_rules: fw.rules\nrule_groups:\n  - name: a\n    rules: r/a.rules\n  - name: d\n    domain_list: {targets: [x.org], target_types: [tls_sni], type: denylist}\nlogging: {format: nfw, dir: out}\n",
        );
        let (pol, warnings) = Policy::load(&p).unwrap();
        // Legal but suspicious: drop_strict starves the domain list; aws-nfw has no firewall mode.
        let codes: Vec<_> = warnings
            .iter()
            .map(|w| w.code.as_deref().unwrap_or(""))
            .collect();
        assert_eq!(
            codes,
            ["drop-strict-domain-list", "nfw-compat"],
            "{warnings:?}"
        );
        assert_eq!(pol.name, "fw1");
        assert_eq!(pol.availability_zone.as_deref(), Some("az1"));
        assert_eq!(pol.engine_profile, EngineProfile::AwsNfw);
        assert_eq!(pol.rule_order, RuleOrder::Strict);
        assert_eq!(
            pol.default_actions,
            [DefaultAction::DropStrict, DefaultAction::AlertStrict]
        );
        assert_eq!(pol.stream_exception_policy, StreamExceptionPolicy::Continue);
        assert_eq!(pol.firewall_rules.as_ref().unwrap().rules.len(), 1);
        assert_eq!(pol.rule_groups.len(), 2);
        assert_eq!(
            pol.rule_groups[0].source,
            GroupSource::File(dir.path().join("r/a.rules"))
        );
        assert_eq!(pol.rule_groups[1].sid_scope, SidScope::Group);
        assert_eq!(pol.logging.format, LogFormat::Nfw);
        assert_eq!(pol.logging.dir, Some(dir.path().join("out")));
        let vars = pol.variables();
        let home = vars
            .resolve_address(vars.address("HOME_NET").unwrap())
            .unwrap();
        assert!(home.contains(ip("10.1.2.3")) && !home.contains(ip("10.2.0.1")));
        let ext = vars
            .resolve_address(vars.address("EXTERNAL_NET").unwrap())
            .unwrap();
        assert!(ext.contains(ip("10.2.0.1")) && !ext.contains(ip("10.1.2.3")));
        let smtp = vars.resolve_port(vars.port("SMTP_PORTS").unwrap()).unwrap();
        assert!(smtp.contains(587) && !smtp.contains(80));
    }

    #[test]
    fn invalid_input_is_an_error_and_nothing_is_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "p.yaml",
            "rule_groups:\n  - name: a\n    rules_text: |\n      alert tcp any any -> any any (msg:\"a\"; sid:1;)\n      alert tcp any any -> any any (msg:\"b\"; bogus; sid:2;)\n",
        );
        let errs = Policy::load(&p).unwrap_err();
        assert_eq!(errs.len(), 1);
        let loc = errs[0].location.as_ref().unwrap();
        assert_eq!((loc.line, loc.column), (5, 46));
        // check_file still reports what was accepted, for `check` to count and print.
        let c = Policy::check_file(&p, &LoadOptions::default());
        assert!(!c.is_valid());
        assert_eq!(c.policy.rule_count(), 1);
    }

    #[test]
    fn group_variables_override_individually_like_nfw() {
        // Policy HOME_NET 11/8; the group sets HOME_NET 10/8 but not EXTERNAL_NET, so the
        // group's EXTERNAL_NET stays the policy's !11/8 (NFW reference §4).
        let mut pol = Policy::default();
        set_var(
            &mut pol.variables,
            VarDef::new("HOME_NET", VarKind::Address, "11.0.0.0/8"),
        );
        let g = RuleGroup {
            name: "g".into(),
            source: GroupSource::Inline,
            rules: Vec::new(),
            variables: vec![VarDef::new("HOME_NET", VarKind::Address, "10.0.0.0/8")],
            sid_scope: SidScope::Policy,
            generated_text: None,
        };
        let v = pol.variables_for(&g);
        let home = v.resolve_address(v.address("HOME_NET").unwrap()).unwrap();
        assert!(home.contains(ip("10.0.0.1")) && !home.contains(ip("11.0.0.1")));
        let ext = v
            .resolve_address(v.address("EXTERNAL_NET").unwrap())
            .unwrap();
        assert!(!ext.contains(ip("11.0.0.1")));
        assert!(
            ext.contains(ip("10.0.0.1")),
            "EXTERNAL_NET must not follow the group's HOME_NET"
        );
        let http = v.resolve_port(v.port("HTTP_PORTS").unwrap()).unwrap();
        assert!(http.contains(80));
    }

    #[test]
    fn rules_files_form_one_group_each_with_unique_sids_across_them() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(
            dir.path(),
            "a.rules",
            "alert tcp any any -> any 1 (msg:\"a\"; sid:7;)\n",
        );
        let b = write(
            dir.path(),
            "b.rules",
            "alert tcp any any -> any 2 (msg:\"b\"; sid:7;)\nalert tcp any any -> any 2 (msg:\"c\"; gid:2; sid:7;)\n",
        );
        let c = Policy::check_rules_files(&[a.clone(), b.clone()], &LoadOptions::default());
        let errs: Vec<_> = c.diagnostics.iter().filter(|d| d.is_error()).collect();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0]
            .message
            .starts_with("duplicate sid 7: first used at "));
        // The repeated rule is dropped, the one with another gid is kept.
        assert_eq!(c.policy.rule_groups[1].rules.len(), 1);
        assert_eq!(c.policy.rule_groups[1].rules[0].gid(), 2);
        assert!(Policy::from_rules_files(&[a]).is_ok());
    }

    #[test]
    fn bad_variable_values_are_located() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "p.yaml",
            "variables:\n  HOME_NET: [10.0.0.0/33]\n  MAIL: \"$NOPE\"\n",
        );
        let errs = Policy::load(&p).unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(
            errs[0]
                .message
                .starts_with("invalid address group 'HOME_NET': "),
            "{}",
            errs[0].message
        );
        assert_eq!(errs[0].location.as_ref().unwrap().line, 2);
        assert!(
            errs[1].message.contains("undefined variable '$NOPE'"),
            "{}",
            errs[1].message
        );
        assert_eq!(errs[1].location.as_ref().unwrap().line, 3);
    }

    #[test]
    fn quoted_rules_text_falls_back_to_its_own_positions() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "p.yaml",
            "rule_groups:\n  - name: q\n    rules_text: \"alert tcp any any -> any any (msg:\\\"x\\\"; sid:1; bogus;)\"\n",
        );
        let errs = Policy::load(&p).unwrap_err();
        let loc = errs[0].location.as_ref().unwrap();
        assert!(
            loc.file.ends_with("p.yaml#rule_groups[0].rules_text"),
            "{}",
            loc.file
        );
        assert_eq!(loc.line, 1);
    }
}
