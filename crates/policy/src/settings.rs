//! The small enumerated settings of a policy: engine profile, rule order, default actions,
//! stream exception policy, log format.
//!
//! Each parses from the word a user writes in YAML (or the value NFW JSON uses) and reports an
//! unknown word with a did-you-mean hint; see [`ParseError`].

use std::fmt;

/// Why a setting word was not accepted: the message and an optional hint, ready to become a
/// located [`sekisho_diag::Diagnostic`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// What was wrong, e.g. `unknown rule_order 'strikt'`.
    pub message: String,
    /// How to fix it, e.g. `did you mean 'strict'? expected one of: strict, action`.
    pub hint: Option<String>,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(h) = &self.hint {
            write!(f, " ({h})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ParseError {}

fn unknown(what: &str, word: &str, expected: &[&str]) -> ParseError {
    let list = expected.join(", ");
    let hint = match sekisho_diag::suggest(word, expected.iter().copied()) {
        Some(s) => format!("did you mean '{s}'? expected one of: {list}"),
        None => format!("expected one of: {list}"),
    };
    ParseError {
        message: format!("unknown {what} '{word}'"),
        hint: Some(hint),
    }
}

/// Which engine's semantics the policy follows where Suricata 8 and AWS Network Firewall differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum EngineProfile {
    /// Suricata 8 semantics (the default).
    #[default]
    Suricata8,
    /// AWS Network Firewall (Suricata 7 based) semantics.
    AwsNfw,
}

impl EngineProfile {
    /// The YAML spellings, in documentation order.
    pub const NAMES: &'static [&'static str] = &["suricata-8", "aws-nfw"];

    /// Parses `suricata-8` or `aws-nfw`.
    pub fn parse(word: &str) -> Result<Self, ParseError> {
        match word {
            "suricata-8" => Ok(Self::Suricata8),
            "aws-nfw" => Ok(Self::AwsNfw),
            _ => Err(unknown("engine_profile", word, Self::NAMES)),
        }
    }

    /// The YAML spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Suricata8 => "suricata-8",
            Self::AwsNfw => "aws-nfw",
        }
    }
}

/// How stateful rules are ordered for evaluation (NFW `RuleOrder`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RuleOrder {
    /// NFW `DEFAULT_ACTION_ORDER` and Suricata's default: pass, drop, reject, alert; then the
    /// `priority` keyword; then load order. Group order does not matter. The default.
    #[default]
    Action,
    /// NFW `STRICT_ORDER`: groups in the order listed, rules in file order; the first
    /// pass/drop/reject match decides. Default actions apply to what no rule decided.
    Strict,
}

impl RuleOrder {
    /// The YAML spellings.
    pub const NAMES: &'static [&'static str] = &["strict", "action"];

    /// Parses `strict` / `action` (YAML) or `STRICT_ORDER` / `DEFAULT_ACTION_ORDER` (NFW JSON).
    pub fn parse(word: &str) -> Result<Self, ParseError> {
        match word {
            "strict" | "STRICT_ORDER" => Ok(Self::Strict),
            "action" | "DEFAULT_ACTION_ORDER" => Ok(Self::Action),
            _ if word.chars().any(|c| c.is_ascii_uppercase()) => Err(unknown(
                "rule order",
                word,
                &["STRICT_ORDER", "DEFAULT_ACTION_ORDER"],
            )),
            _ => Err(unknown("rule_order", word, Self::NAMES)),
        }
    }

    /// The YAML spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Strict => "strict",
            Self::Action => "action",
        }
    }

    /// The NFW API spelling.
    pub fn nfw_name(self) -> &'static str {
        match self {
            Self::Strict => "STRICT_ORDER",
            Self::Action => "DEFAULT_ACTION_ORDER",
        }
    }
}

/// A strict-order stateful default action (NFW `StatefulDefaultActions`), applied to packets
/// that no rule decided. See the NFW reference §2.3 for the exact effect of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DefaultAction {
    /// `aws:drop_strict`: drop every undecided packet, handshake included.
    DropStrict,
    /// `aws:drop_established`: drop undecided packets of established flows.
    DropEstablished,
    /// `aws:alert_strict`: alert on every undecided packet.
    AlertStrict,
    /// `aws:alert_established`: alert on undecided packets of established flows.
    AlertEstablished,
    /// `aws:drop_established_app_layer`: like drop_established, but only once the app layer
    /// was parsed; both directions.
    DropEstablishedAppLayer,
    /// `aws:drop_established_app_layer_to_server`: as above, client-to-server only.
    DropEstablishedAppLayerToServer,
    /// `aws:alert_established_app_layer`: log-only twin of `drop_established_app_layer`.
    AlertEstablishedAppLayer,
    /// `aws:alert_established_app_layer_to_server`: log-only twin of the `_to_server` drop.
    AlertEstablishedAppLayerToServer,
}

/// Which family a default action belongs to; the established and app-layer families cannot
/// be mixed (NFW rejects it), strict may go with either.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DefaultFamily {
    /// `*_strict`.
    Strict,
    /// `drop_established`, `alert_established`.
    Established,
    /// `*_app_layer*`.
    AppLayer,
}

impl DefaultAction {
    /// Every value, in the order of the NFW reference table.
    pub const ALL: [DefaultAction; 8] = [
        Self::DropStrict,
        Self::DropEstablished,
        Self::AlertStrict,
        Self::AlertEstablished,
        Self::DropEstablishedAppLayer,
        Self::DropEstablishedAppLayerToServer,
        Self::AlertEstablishedAppLayer,
        Self::AlertEstablishedAppLayerToServer,
    ];

    /// The name without the `aws:` prefix, e.g. `drop_established`.
    pub fn short_name(self) -> &'static str {
        match self {
            Self::DropStrict => "drop_strict",
            Self::DropEstablished => "drop_established",
            Self::AlertStrict => "alert_strict",
            Self::AlertEstablished => "alert_established",
            Self::DropEstablishedAppLayer => "drop_established_app_layer",
            Self::DropEstablishedAppLayerToServer => "drop_established_app_layer_to_server",
            Self::AlertEstablishedAppLayer => "alert_established_app_layer",
            Self::AlertEstablishedAppLayerToServer => "alert_established_app_layer_to_server",
        }
    }

    /// The NFW name, e.g. `aws:drop_established`.
    pub fn nfw_name(self) -> String {
        format!("aws:{}", self.short_name())
    }

    /// Parses a name with or without the `aws:` prefix.
    pub fn parse(word: &str) -> Result<Self, ParseError> {
        let short = word.strip_prefix("aws:").unwrap_or(word);
        Self::ALL
            .into_iter()
            .find(|a| a.short_name() == short)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|a| a.short_name()).collect();
                let mut e = unknown("default action", word, &names);
                // Suggest on the short name so `aws:drop_establised` still finds its match.
                if let Some(s) = sekisho_diag::suggest(short, names.iter().copied()) {
                    e.hint = Some(format!(
                        "did you mean '{}{s}'? expected one of: {}",
                        if word.starts_with("aws:") { "aws:" } else { "" },
                        names.join(", ")
                    ));
                }
                e
            })
    }

    /// True for the two drop families (`drop_*`).
    pub fn is_drop(self) -> bool {
        self.short_name().starts_with("drop_")
    }

    /// The family for the no-mixing check.
    pub fn family(self) -> DefaultFamily {
        let n = self.short_name();
        if n.ends_with("_strict") {
            DefaultFamily::Strict
        } else if n.contains("_app_layer") {
            DefaultFamily::AppLayer
        } else {
            DefaultFamily::Established
        }
    }

    /// One line on what it does to undecided packets, for `check --print-rules`.
    pub fn describe(self) -> &'static str {
        match self {
            Self::DropStrict => "drop every packet no rule decided, handshake included (silent)",
            Self::DropEstablished => {
                "drop packets of established flows no rule decided; handshakes pass (silent)"
            }
            Self::AlertStrict => "alert on every packet no rule decided",
            Self::AlertEstablished => "alert on packets of established flows no rule decided",
            Self::DropEstablishedAppLayer => {
                "drop established flows no rule decided once the app layer is parsed, both directions (silent)"
            }
            Self::DropEstablishedAppLayerToServer => {
                "drop established flows no rule decided once the app layer is parsed, client to server only (silent)"
            }
            Self::AlertEstablishedAppLayer => {
                "alert on established flows no rule decided once the app layer is parsed, both directions"
            }
            Self::AlertEstablishedAppLayerToServer => {
                "alert on established flows no rule decided once the app layer is parsed, client to server only"
            }
        }
    }
}

impl fmt::Display for DefaultAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "aws:{}", self.short_name())
    }
}

/// What to do with a TCP flow first seen mid-stream (NFW `StreamExceptionPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum StreamExceptionPolicy {
    /// Drop all packets of that flow (NFW default, fail closed).
    #[default]
    Drop,
    /// Keep applying rules without the missing context.
    Continue,
    /// Drop and send a TCP RST so the client reconnects.
    Reject,
}

impl StreamExceptionPolicy {
    /// The YAML spellings.
    pub const NAMES: &'static [&'static str] = &["drop", "continue", "reject"];

    /// Parses `drop` / `continue` / `reject` (any case, so NFW's `DROP` works too).
    pub fn parse(word: &str) -> Result<Self, ParseError> {
        match word.to_ascii_lowercase().as_str() {
            "drop" => Ok(Self::Drop),
            "continue" => Ok(Self::Continue),
            "reject" => Ok(Self::Reject),
            _ => Err(unknown("stream_exception_policy", word, Self::NAMES)),
        }
    }

    /// The YAML spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Drop => "drop",
            Self::Continue => "continue",
            Self::Reject => "reject",
        }
    }
}

/// Parses the `exception_policy` of a policy: one value for every target (`drop-flow`), or
/// a map of target keys (`master`, `app_layer_error`, `stream_midstream`, ...) to values.
/// Returns the policies or the first error with its key path (for locating it) and whether
/// the error is about the key itself (an unknown target) rather than its value.
pub fn parse_exception_policy(
    raw: &RawExceptionPolicy,
) -> Result<sekisho_engine::ExceptionPolicies, (String, ParseError, bool)> {
    use sekisho_engine::{ExceptionAction, ExceptionPolicies, ExceptionTarget};
    let action = |key: String, w: &str| {
        ExceptionAction::parse(w).ok_or_else(|| {
            (
                key,
                unknown("exception policy", w, ExceptionAction::NAMES),
                false,
            )
        })
    };
    let mut p = ExceptionPolicies::default();
    match raw {
        RawExceptionPolicy::All(w) => p.master = action("exception_policy".into(), w)?,
        RawExceptionPolicy::Targets(m) => {
            let mut keys: Vec<&str> = vec!["master"];
            keys.extend(ExceptionTarget::ALL.iter().map(|t| t.as_str()));
            for (k, w) in m {
                let path = format!("exception_policy.{k}");
                if k != "master" && ExceptionTarget::parse(k).is_none() {
                    return Err((path, unknown("exception policy target", k, &keys), true));
                }
                let a = action(path.clone(), w)?;
                if k == "master" {
                    p.master = a;
                } else {
                    match ExceptionTarget::parse(k) {
                        Some(t) => p.set(t, a),
                        None => {
                            return Err((path, unknown("exception policy target", k, &keys), true))
                        }
                    }
                }
            }
        }
    }
    Ok(p)
}

/// `exception_policy:` as written: one value, or a map of targets to values.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(untagged)]
pub enum RawExceptionPolicy {
    /// `exception_policy: drop-flow`: every target.
    All(String),
    /// `exception_policy: {master: auto, stream_midstream: drop-flow}`.
    Targets(std::collections::BTreeMap<String, String>),
}

impl StreamExceptionPolicy {
    /// The exception action NFW's `StreamExceptionPolicy` means for mid-stream flows:
    /// `drop` → `drop-flow`, `continue` → `ignore`, `reject` → `reject`.
    pub fn as_exception(self) -> sekisho_engine::ExceptionAction {
        use sekisho_engine::ExceptionAction;
        match self {
            Self::Drop => ExceptionAction::DropFlow,
            Self::Continue => ExceptionAction::Ignore,
            Self::Reject => ExceptionAction::Reject,
        }
    }
}

/// Log format of `logging.format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LogFormat {
    /// Suricata EVE JSON lines (the default).
    #[default]
    Eve,
    /// EVE events inside the AWS Network Firewall log envelope.
    Nfw,
}

impl LogFormat {
    /// The YAML spellings.
    pub const NAMES: &'static [&'static str] = &["eve", "nfw"];

    /// Parses `eve` / `nfw`.
    pub fn parse(word: &str) -> Result<Self, ParseError> {
        match word {
            "eve" => Ok(Self::Eve),
            "nfw" => Ok(Self::Nfw),
            _ => Err(unknown("logging format", word, Self::NAMES)),
        }
    }

    /// The YAML spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Eve => "eve",
            Self::Nfw => "nfw",
        }
    }
}

impl std::str::FromStr for LogFormat {
    type Err = ParseError;

    /// Same as [`LogFormat::parse`]; lets a command line parse the policy's vocabulary.
    fn from_str(word: &str) -> Result<Self, ParseError> {
        Self::parse(word)
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Checks a set of default actions as NFW does; returns one message per violation, each
/// naming the indexes (into `actions`) it is about so callers can locate it.
///
/// Rules: at most one drop action; the established and app-layer families cannot be mixed
/// (`*_strict` goes with either); no value twice.
pub fn check_default_actions(actions: &[DefaultAction]) -> Vec<(usize, ParseError)> {
    let mut out = Vec::new();
    for (i, a) in actions.iter().enumerate() {
        if let Some(j) = actions[..i].iter().position(|b| b == a) {
            let _ = j;
            out.push((
                i,
                ParseError {
                    message: format!("default action '{a}' is listed twice"),
                    hint: Some("remove the repeated value".into()),
                },
            ));
        }
    }
    let drops: Vec<usize> = (0..actions.len())
        .filter(|&i| actions[i].is_drop())
        .collect();
    if let [first, second, ..] = drops[..] {
        if actions[first] != actions[second] {
            out.push((
                second,
                ParseError {
                    message: format!(
                        "at most one drop default action is allowed, found '{}' and '{}'",
                        actions[first], actions[second]
                    ),
                    hint: Some(
                        "keep one drop_* action; pair it with its alert_* twin to log the drops"
                            .into(),
                    ),
                },
            ));
        }
    }
    let est = actions
        .iter()
        .position(|a| a.family() == DefaultFamily::Established);
    let app = actions
        .iter()
        .position(|a| a.family() == DefaultFamily::AppLayer);
    if let (Some(e), Some(a)) = (est, app) {
        out.push((
            e.max(a),
            ParseError {
                message: format!(
                    "default actions '{}' and '{}' cannot exist together: the established and app-layer families cannot be mixed",
                    actions[e], actions[a]
                ),
                hint: Some("use drop_established with alert_established, or the *_app_layer* actions together".into()),
            },
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_actions_accept_both_spellings() {
        for a in DefaultAction::ALL {
            assert_eq!(DefaultAction::parse(a.short_name()), Ok(a));
            assert_eq!(DefaultAction::parse(&a.nfw_name()), Ok(a));
        }
        let e = DefaultAction::parse("aws:drop_establised").unwrap_err();
        assert_eq!(e.message, "unknown default action 'aws:drop_establised'");
        assert!(
            e.hint
                .as_deref()
                .unwrap()
                .starts_with("did you mean 'aws:drop_established'?"),
            "{e:?}"
        );
    }

    #[test]
    fn default_action_validation_matches_nfw() {
        use DefaultAction::*;
        assert!(check_default_actions(&[DropEstablished, AlertEstablished]).is_empty());
        assert!(check_default_actions(&[DropStrict, AlertEstablished]).is_empty());
        assert!(check_default_actions(&[DropEstablishedAppLayerToServer, AlertStrict]).is_empty());
        let two_drops = check_default_actions(&[DropStrict, AlertStrict, DropEstablished]);
        assert_eq!(two_drops.len(), 1);
        assert_eq!(two_drops[0].0, 2);
        assert!(two_drops[0].1.message.starts_with("at most one drop"));
        let mixed = check_default_actions(&[DropEstablished, AlertEstablishedAppLayer]);
        assert_eq!(mixed.len(), 1);
        assert!(mixed[0].1.message.contains("cannot exist together"));
        let dup = check_default_actions(&[AlertStrict, AlertStrict]);
        assert_eq!(dup.len(), 1);
    }

    #[test]
    fn settings_suggest_close_words() {
        let e = RuleOrder::parse("strikt").unwrap_err();
        assert_eq!(e.message, "unknown rule_order 'strikt'");
        assert_eq!(
            e.hint.as_deref(),
            Some("did you mean 'strict'? expected one of: strict, action")
        );
        assert_eq!(RuleOrder::parse("STRICT_ORDER"), Ok(RuleOrder::Strict));
        assert!(EngineProfile::parse("suricata8").is_err());
        assert_eq!(
            StreamExceptionPolicy::parse("REJECT"),
            Ok(StreamExceptionPolicy::Reject)
        );
    }
}
