//! Runner for suricata-verify style conformance cases.
//!
//! A case is a directory with a `test.yaml` descriptor (see `../shared/conformance/README.md`).
//! For each case the runner decides whether sekisho can run it honestly: every requirement,
//! argument, configuration setting, rule and check must be something sekisho implements,
//! otherwise the case is SKIPPED with the name of the missing piece. A case PASSES only when
//! every applicable check was evaluated against sekisho's own EVE output and held.
//!
//! A filter without `event_type` is evaluated over every record, as suricata-verify does: its
//! keys select the records carrying them (`alert.signature_id` → alert and drop records,
//! `smtp.helo` → smtp records and alerts); it is skipped when one of those record types, or
//! one of its keys, is something sekisho does not write, or when it names only keys every
//! record has (`pcap_cnt`), which would count record types sekisho does not write.
//!
//! Checks are evaluated exactly as suricata-verify's runner (`run.py`, OISF/suricata-verify)
//! evaluates them, with Python's semantics (module [`py`]): typed equality, the dotted path
//! operators, `count` compared with `==`, a filter's `requires:` left out when unmet. Where the
//! runner cannot tell what suricata-verify would do — a requirement it cannot evaluate, a
//! `shell` or `file-compare` check, a field sekisho does not write (`written_fields` lists
//! them per record type), a YAML scalar PyYAML reads differently — the case is skipped with
//! the reason, never passed.
//!
//! A Suricata 8 firewall-mode case (`firewall.rules`, optionally with `td.rules`, which
//! suricata-verify runs with `--firewall-rules-exclusive`) is handed to the replay inline with
//! its firewall table as [`RuleLoad::firewall`] (only when [`Capabilities::firewall`]); a
//! `firewall.policies` setting other than the `packet:filter` default and Suricata's own
//! `drop:flow` app default skips the case naming the key.
//!
//! The replay itself is supplied by the caller as a [`Replayer`] so this crate stays a pure
//! interpreter of descriptors and checks (the CLI wires in the real replay driver).
#![warn(missing_docs)]

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value as Json;
use serde_yaml_ng::Value as Yaml;

pub mod py;
use py::Py;

/// The Suricata version sekisho claims compatibility with, for `min-version` / `lt-version`.
///
/// 8.0.7 rather than 8.0.6 because sekisho's SMTP parser follows 8.0.7 (per-direction
/// progress, replies bound to their tx, mid-session EHLO = RSET, no trailing QUIT tx), and
/// suricata-verify encodes that behaviour in cases marked `min-version: 8.0.7`; evaluated as
/// 8.0.6, `smtp-keywords` fails on 8.0.6's extra QUIT transaction and `smtp-quit` is never
/// run. Across the suite the switch changed no other pass or fail (2026-12 snapshot).
pub const COMPAT_VERSION: (u64, u64, u64) = (8, 0, 7);

/// What a case asks the replay to do, after its descriptor was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRequest {
    /// Capture files to replay, in order.
    pub pcaps: Vec<PathBuf>,
    /// Directory to write `eve.json` into (exists, empty).
    pub out_dir: PathBuf,
    /// `-k none`: do not validate checksums.
    pub no_checksums: bool,
    /// Sensor settings as the case wrote them, in `sekisho replay --set` form
    /// (`stream.midstream`, `flow-timeouts.tcp.new`, ...), in the order written (a later
    /// one wins). Not parsed here: the replay applies each with the sensor's
    /// `Settings::set`, so a bad value is the same error as on the command line.
    pub sets: Vec<(String, String)>,
    /// `--simulate-ips`: inline mode.
    pub inline: bool,
    /// Write `flow` records.
    pub flow: bool,
    /// Write `netflow` records.
    pub netflow: bool,
    /// Write decoder `anomaly` records.
    pub anomaly_decode: bool,
    /// Write stream `anomaly` records.
    pub anomaly_stream: bool,
    /// Write app-layer `anomaly` records (only set when the capabilities list app-layer
    /// anomaly events, see [`Capabilities::app_anomaly_events`]).
    pub anomaly_app: bool,
    /// Write `alert` records (Suricata's default configuration logs them).
    pub alert: bool,
    /// Write `drop` records (commented out in Suricata's default configuration).
    pub drop: bool,
    /// The case's drop option is `flows: all` (every dropped packet logged) rather than
    /// `flows: start`.
    pub drop_flows_all: bool,
    /// The case's rules, when it has any: the replay compiles and evaluates them.
    pub rules: Option<RuleLoad>,
}

/// The rules of a case and what compiling them needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleLoad {
    /// Rule files, in load order.
    pub files: Vec<PathBuf>,
    /// Address and port variables (`HOME_NET`, `HTTP_PORTS`, ...): Suricata's default
    /// configuration's, replaced by the case's own `vars:` where it sets them.
    pub vars: Vec<(String, String)>,
    /// `classification.config` of the suite, when present (alert `category` and severity).
    pub classification: Option<PathBuf>,
    /// Suricata 8 firewall mode: the firewall table evaluated before the threat-detection
    /// rules of [`RuleLoad::files`] (`None`: not a firewall-mode case).
    pub firewall: Option<FirewallLoad>,
    /// `threshold-file` (threshold.config: thresholds, suppressions, rate filters).
    pub threshold_file: Option<PathBuf>,
}

/// The firewall side of a firewall-mode case, as suricata-verify runs it: the case's
/// `firewall.rules` is passed as `--firewall-rules-exclusive` (a `td.rules` beside it is the
/// threat-detection rule file, `-S`), which turns firewall mode on; firewall mode is inline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirewallLoad {
    /// The firewall rules file (file order is evaluation order); it may hold no rules, in
    /// which case only the default policies decide.
    pub rules: PathBuf,
    /// `firewall.policies.packet.filter` of the case's configuration: the default policy
    /// of the `packet:filter` table as written, first the primary action with its scope
    /// (`"accept:hook"`), then secondary actions (`"alert"`). `None`: Suricata's default
    /// (`drop:packet`). The replay maps it onto its firewall configuration or reports the
    /// case unsupported.
    pub packet_filter: Option<Vec<String>>,
}

/// Why a replay did not produce output to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayError {
    /// The case needs something sekisho cannot evaluate (a rule that did not load, a rule
    /// sekisho does not parse): the case is skipped with this reason.
    Unsupported(String),
    /// The replay itself failed: the case fails with this message.
    Failed(String),
}

impl From<String> for ReplayError {
    fn from(m: String) -> Self {
        ReplayError::Failed(m)
    }
}

/// Runs one replay for the verifier (the real implementation calls sekisho's replay driver).
pub trait Replayer {
    /// Replays `req.pcaps` writing `eve.json` into `req.out_dir`.
    fn replay(&self, req: &RunRequest) -> Result<(), ReplayError>;
}

impl<F: Fn(&RunRequest) -> Result<(), ReplayError>> Replayer for F {
    fn replay(&self, req: &RunRequest) -> Result<(), ReplayError> {
        self(req)
    }
}

/// Variables suricata-verify's configuration defines beyond Suricata's default
/// `suricata.yaml` (those are `sekisho_rules::DEFAULT_ADDRESS_VARS` / `DEFAULT_PORT_VARS`).
const EXTRA_VARS: &[(&str, &str)] = &[("SIP_PORTS", "[5060,5061]")];

/// What sekisho implements, so the runner can skip what it cannot evaluate honestly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// EVE event types sekisho writes.
    pub event_types: BTreeSet<String>,
    /// Whether rule files can be loaded and matched (detection).
    pub detection: bool,
    /// Whether Suricata 8 firewall mode is evaluated: a case's `firewall.rules` (with its
    /// `td.rules`) compiled as firewall and threat-detection rules. Without it every
    /// firewall-mode case is skipped.
    pub firewall: bool,
    /// Whether app-layer protocols are detected (`app_proto` on flows).
    pub app_layer: bool,
    /// Stats counters sekisho writes (dotted names); a stats check on any other is skipped.
    pub counters: BTreeSet<String>,
    /// Whether `drop` records honour the eve-log drop option `flows: all` (every dropped
    /// packet logged); without it, drop filters of such cases are skipped.
    pub drop_flows_all: bool,
    /// App-layer anomaly events sekisho writes as `anomaly` records (type `applayer`), as
    /// `(app_proto, event)`, e.g. `("smtp", "INVALID_REPLY")`. Empty: none, and filters on
    /// app-layer anomalies are skipped. A filter is evaluable only when it names one of
    /// these events, since an unrestricted count would include events (other protocols,
    /// protocol detection, MIME) sekisho does not raise.
    pub app_anomaly_events: BTreeSet<(String, String)>,
}

/// SMTP parser events sekisho raises like Suricata 8 (for
/// [`Capabilities::app_anomaly_events`]); MIME decoder events and `FAILED_PROTOCOL_CHANGE`
/// are not raised.
pub const SMTP_ANOMALY_EVENTS: &[&str] = &[
    "INVALID_REPLY",
    "UNABLE_TO_MATCH_REPLY_WITH_REQUEST",
    "MAX_COMMAND_LINE_LEN_EXCEEDED",
    "MAX_REPLY_LINE_LEN_EXCEEDED",
    "INVALID_PIPELINED_SEQUENCE",
    "BDAT_CHUNK_LEN_EXCEEDED",
    "NO_SERVER_WELCOME_MESSAGE",
    "TLS_REJECTED",
    "DATA_COMMAND_REJECTED",
    "DUPLICATE_FIELDS",
    "UNPARSABLE_CONTENT",
    "TRUNCATED_LINE",
    "INVALID_BDAT",
];

impl Capabilities {
    /// The `(app_proto, event)` pairs of [`SMTP_ANOMALY_EVENTS`].
    pub fn smtp_anomaly_events() -> BTreeSet<(String, String)> {
        SMTP_ANOMALY_EVENTS
            .iter()
            .map(|e| ("smtp".to_string(), e.to_string()))
            .collect()
    }
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities {
            event_types: ["flow", "netflow", "stats", "anomaly"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            detection: false,
            firewall: false,
            app_layer: false,
            counters: BTreeSet::new(),
            drop_flows_all: false,
            app_anomaly_events: BTreeSet::new(),
        }
    }
}

/// Outcome of one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every applicable check was evaluated and held.
    Pass,
    /// A check failed (message names it, with expected and actual values).
    Fail(String),
    /// Not run, with the reason (a missing feature, an unmet requirement).
    Skip(String),
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Pass => write!(f, "PASS"),
            Outcome::Fail(m) => write!(f, "FAIL: {m}"),
            Outcome::Skip(m) => write!(f, "SKIP: {m}"),
        }
    }
}

/// Lists case names (paths under `suite/tests/` holding a `test.yaml`), sorted.
pub fn discover(suite: &Path) -> std::io::Result<Vec<String>> {
    let root = suite.join("tests");
    let mut out = Vec::new();
    walk(&root, &root, 0, &mut out)?;
    out.sort();
    Ok(out)
}

fn walk(root: &Path, dir: &Path, depth: u32, out: &mut Vec<String>) -> std::io::Result<()> {
    if dir.join("test.yaml").is_file() {
        if let Ok(rel) = dir.strip_prefix(root) {
            out.push(rel.to_string_lossy().into_owned());
        }
        return Ok(());
    }
    if depth > 3 {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir)? {
        let p = entry?.path();
        if p.is_dir() {
            walk(root, &p, depth + 1, out)?;
        }
    }
    Ok(())
}

fn parse_version(v: &Yaml) -> Option<(u64, u64, u64)> {
    let s = match v {
        Yaml::String(s) => s.clone(),
        Yaml::Number(n) => n.to_string(),
        _ => return None,
    };
    let mut it = s.trim().split('.').map(|p| p.trim().parse::<u64>().ok());
    let major = it.next()??;
    let minor = it.next().unwrap_or(Some(0))?;
    let patch = it.next().unwrap_or(Some(0))?;
    Some((major, minor, patch))
}

/// Number of components given in a version string (`8` = 1, `8.0` = 2, `8.0.1` = 3).
fn version_parts(v: &Yaml) -> usize {
    match v {
        Yaml::String(s) => s.split('.').count(),
        Yaml::Number(n) => n.to_string().split('.').count(),
        _ => 0,
    }
}

fn get<'a>(m: &'a Yaml, key: &str) -> Option<&'a Yaml> {
    m.as_mapping()
        .and_then(|m| m.get(Yaml::String(key.to_string())))
}

/// Why a `requires:` block does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Unmet {
    /// A requirement suricata-verify evaluates and that does not hold for sekisho (a
    /// version, a build feature): a case is skipped, a filter check is left out.
    Unmet(String),
    /// A requirement sekisho cannot evaluate (`env`, `script`, `files`, `lambda`, an
    /// unknown key): the whole case is skipped, naming it, at case and at filter level.
    Unsupported(String),
}

impl Unmet {
    fn reason(self) -> String {
        match self {
            Unmet::Unmet(r) | Unmet::Unsupported(r) => r,
        }
    }
}

/// Suricata's optional build features whose behaviour sekisho has: JA3/JA3S and JA4
/// fingerprints (the TLS parser computes them). Cases needing any other feature are skipped.
const HAVE_FEATURES: &[&str] = &["HAVE_JA3", "HAVE_JA4"];

/// Evaluates a `requires:` block as suricata-verify's `check_requires` does, for sekisho
/// as Suricata [`COMPAT_VERSION`] on Linux with the optional build features sekisho has
/// ([`HAVE_FEATURES`]).
fn requirements(req: &Yaml) -> Result<(), Unmet> {
    let Some(map) = req.as_mapping() else {
        if req.is_null() {
            return Ok(());
        }
        return Err(Unmet::Unsupported(format!(
            "requires is not a mapping: {}",
            yaml_text(req)
        )));
    };
    for (k, v) in map {
        let key = k.as_str().unwrap_or_default();
        let version = |what: &str| {
            parse_version(v)
                .ok_or_else(|| Unmet::Unsupported(format!("unreadable {what} {}", yaml_text(v))))
        };
        match key {
            "min-version" => {
                if COMPAT_VERSION < version(key)? {
                    return Err(Unmet::Unmet(format!(
                        "requires at least version {}",
                        yaml_text(v)
                    )));
                }
            }
            "lt-version" => {
                if COMPAT_VERSION >= version(key)? {
                    return Err(Unmet::Unmet(format!(
                        "requires version below {}",
                        yaml_text(v)
                    )));
                }
            }
            "gt-version" => {
                if COMPAT_VERSION <= version(key)? {
                    return Err(Unmet::Unmet(format!(
                        "requires version above {}",
                        yaml_text(v)
                    )));
                }
            }
            "version" => {
                let want = version(key)?;
                let parts = version_parts(v);
                let have = [COMPAT_VERSION.0, COMPAT_VERSION.1, COMPAT_VERSION.2];
                let w = [want.0, want.1, want.2];
                if have[..parts.min(3)] != w[..parts.min(3)] {
                    return Err(Unmet::Unmet(format!("requires version {}", yaml_text(v))));
                }
            }
            "features" | "feature" => {
                let list = yaml_list(v);
                if let Some(first) = list.iter().find(|f| !HAVE_FEATURES.contains(&f.as_str())) {
                    return Err(Unmet::Unmet(format!("requires build feature {first}")));
                }
            }
            "pcap" => {
                if v.as_bool() == Some(false) {
                    return Err(Unmet::Unsupported(
                        "no capture (configuration/rule-load test)".into(),
                    ));
                }
            }
            "os" => {
                if !yaml_list(v)
                    .iter()
                    .any(|o| "linux".starts_with(&o.to_ascii_lowercase()))
                {
                    return Err(Unmet::Unmet(format!("requires os {}", yaml_text(v))));
                }
            }
            "arch" => {
                if !std::env::consts::ARCH.starts_with(&yaml_text(v).to_ascii_lowercase()) {
                    return Err(Unmet::Unmet(format!("requires arch {}", yaml_text(v))));
                }
            }
            "files" => {
                return Err(Unmet::Unsupported(
                    "requirement `files` (Suricata source files) not supported".into(),
                ))
            }
            other => {
                return Err(Unmet::Unsupported(format!(
                    "requirement `{other}` not supported"
                )))
            }
        }
    }
    Ok(())
}

/// [`requirements`] for a whole case: any unmet requirement is a skip reason.
fn requirements_met(req: &Yaml) -> Result<(), String> {
    requirements(req).map_err(Unmet::reason)
}

fn yaml_text(v: &Yaml) -> String {
    match v {
        Yaml::String(s) => s.clone(),
        Yaml::Number(n) => n.to_string(),
        Yaml::Bool(b) => b.to_string(),
        other => serde_yaml_ng::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

fn yaml_list(v: &Yaml) -> Vec<String> {
    match v {
        Yaml::Sequence(s) => s.iter().map(yaml_text).collect(),
        Yaml::Null => Vec::new(),
        other => vec![yaml_text(other)],
    }
}

/// Reads a YAML file, tolerating Suricata's `%YAML 1.1` directive.
fn read_yaml(path: &Path) -> Result<Yaml, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let cleaned: String = text
        .lines()
        .filter(|l| !l.starts_with('%'))
        .collect::<Vec<_>>()
        .join("\n");
    if cleaned.trim().is_empty() || cleaned.trim() == "---" {
        return Ok(Yaml::Null);
    }
    serde_yaml_ng::from_str(&cleaned).map_err(|e| format!("{}: {e}", path.display()))
}

/// Options taken from the case's `args` and `suricata.yaml`.
#[derive(Default)]
struct Settings {
    no_checksums: bool,
    inline: bool,
    eve_types: Option<Vec<String>>,
    sets: Vec<(String, String)>,
    /// `anomaly.types` of the eve-log: (decode, stream, applayer); Suricata's defaults are
    /// decode no, stream no, applayer yes.
    anomaly: (bool, bool, bool),
    /// `vars:` of the case's configuration: (name, value), address and port groups.
    vars: Vec<(String, String)>,
    /// `firewall.enabled: true` in the case's configuration.
    firewall: bool,
    /// `firewall.policies.packet.filter` (see [`FirewallLoad::packet_filter`]).
    fw_packet_filter: Option<Vec<String>>,
    /// `firewall.rule-path` / `firewall.rule-files` are set (ignored when the case has a
    /// `firewall.rules`, which suricata-verify loads exclusively).
    fw_rule_files: bool,
    /// A setting that only matters with rules and that sekisho does not honour (e.g. a
    /// non-default `action-order`): the case is skipped if it has rules.
    rules_unsupported: Option<String>,
    /// `threshold-file` as written (`${TEST_DIR}` resolved when the rules load).
    threshold_file: Option<String>,
    /// A `drop` output option sekisho does not honour: filters on drop events are skipped.
    drop_unsupported: Option<String>,
    /// The drop option `flows: all`.
    drop_flows_all: bool,
}

/// Suricata's default `action-order`.
const DEFAULT_ACTION_ORDER: [&str; 4] = ["pass", "drop", "reject", "alert"];

fn check_action_order(list: &[String], s: &mut Settings) {
    let got: Vec<&str> = list.iter().map(|a| a.trim()).collect();
    if got != DEFAULT_ACTION_ORDER {
        s.rules_unsupported = Some(format!(
            "action-order [{}] not supported (only the default pass, drop, reject, alert)",
            got.join(", ")
        ));
    }
}

/// A Suricata boolean setting the runner itself decides (`yes`/`true`/`on`/`1` or
/// `no`/`false`/`off`/`0`); any other value is an error naming the key, not a silent
/// `false`.
fn suricata_flag(key: &str, value: &str) -> Result<bool, String> {
    match value.trim() {
        "yes" | "true" | "on" | "1" => Ok(true),
        "no" | "false" | "off" | "0" => Ok(false),
        other => Err(format!(
            "setting `{key}={other}` not supported (expected yes or no)"
        )),
    }
}

/// `stream.inline`: a flag, or `auto` (inline when the case runs as IPS, which the
/// runner decides from `--simulate-ips`, the case name and firewall mode).
fn stream_inline(key: &str, value: &str, s: &mut Settings) -> Result<(), String> {
    if value.trim() != "auto" {
        s.inline = suricata_flag(key, value)?;
    }
    Ok(())
}

fn apply_set(key: &str, value: &str, s: &mut Settings) -> Result<(), String> {
    match key {
        // Suricata's `stream.inline` and `stream.checksum-validation` choose the mode and
        // `-k`, which the runner decides (the sensor has no such keys).
        "stream.inline" => stream_inline(key, value, s),
        "stream.checksum-validation" => {
            s.no_checksums = !suricata_flag(key, value)?;
            Ok(())
        }
        // `-S` (the case's rules) replaces rule-files, and the suite's classification file
        // is the one used, so these do not change the outcome.
        "default-rule-path" | "classification-file" | "reference-config-file" => Ok(()),
        "threshold-file" => {
            s.threshold_file = Some(value.trim_matches('"').to_string());
            Ok(())
        }
        "action-order" => {
            let list: Vec<String> = value.split(',').map(str::to_string).collect();
            check_action_order(&list, s);
            Ok(())
        }
        k if k.starts_with("vars.address-groups.") || k.starts_with("vars.port-groups.") => {
            let name = k.rsplit('.').next().unwrap_or_default();
            s.vars.push((name.to_string(), value.to_string()));
            Ok(())
        }
        // sekisho writes one final stats record, which is what checks read.
        "stats.interval" | "stats.enabled" | "runmode" => Ok(()),
        // Output/log settings that do not change what sekisho computes.
        "outputs.0.eve-log.enabled" | "logging.outputs.0.console.enabled" => Ok(()),
        // Keys of the sensor's settings: recorded as written, parsed by `Settings::set`.
        "stream.midstream"
        | "decoder.recursion-level.use-for-tracking"
        | "decoder.vxlan.enabled" => {
            s.sets.push((key.to_string(), value.to_string()));
            Ok(())
        }
        // `app-layer.protocols.<name>.enabled`: a protocol sekisho does not know is refused by
        // `Settings::set`, which skips the case naming it.
        k if k.starts_with("app-layer.protocols.")
            && k.ends_with(".enabled")
            && k.split('.').count() == 4 =>
        {
            s.sets.push((key.to_string(), value.to_string()));
            Ok(())
        }
        k if k.starts_with("flow-timeouts.") && k.split('.').count() == 3 => {
            s.sets.push((key.to_string(), value.to_string()));
            Ok(())
        }
        // Exception policies: the sensor takes Suricata's keys and values as they are.
        "exception-policy"
        | "stream.midstream-policy"
        | "stream.memcap-policy"
        | "stream.reassembly.memcap-policy"
        | "flow.memcap-policy"
        | "defrag.memcap-policy"
        | "app-layer.error-policy" => {
            s.sets.push((key.to_string(), value.to_string()));
            Ok(())
        }
        _ => Err(format!("setting `{key}` not supported")),
    }
}

fn parse_args(args: &Yaml, s: &mut Settings) -> Result<(), String> {
    let mut words: Vec<String> = Vec::new();
    for a in yaml_list(args) {
        words.extend(a.split_whitespace().map(str::to_string));
    }
    let mut i = 0;
    while i < words.len() {
        let w = words[i].as_str();
        match w {
            "-k" => {
                let v = words.get(i + 1).map(String::as_str).unwrap_or("");
                match v {
                    "none" => s.no_checksums = true,
                    "all" => s.no_checksums = false,
                    _ => return Err(format!("argument `-k {v}` not supported")),
                }
                i += 1;
            }
            "--simulate-ips" => s.inline = true,
            "--runmode=single" | "--runmode" | "-v" | "-vv" | "-vvv" => {
                if w == "--runmode" {
                    i += 1;
                }
            }
            "--set" => {
                let kv = words.get(i + 1).cloned().unwrap_or_default();
                let (k, v) = kv
                    .split_once('=')
                    .ok_or_else(|| format!("malformed --set {kv}"))?;
                apply_set(k, v, s)?;
                i += 1;
            }
            other => return Err(format!("argument `{other}` not supported")),
        }
        i += 1;
    }
    Ok(())
}

/// Accepts the parts of a case's `suricata.yaml` sekisho honours; anything else is a skip.
fn parse_config(cfg: &Yaml, s: &mut Settings) -> Result<(), String> {
    let Some(map) = cfg.as_mapping() else {
        return Ok(());
    };
    for (k, v) in map {
        let key = k.as_str().unwrap_or_default();
        match key {
            "outputs" => {
                for out in v.as_sequence().into_iter().flatten() {
                    let Some(m) = out.as_mapping() else { continue };
                    for (ok, ov) in m {
                        let oname = ok.as_str().unwrap_or_default();
                        if oname != "eve-log" {
                            if get(ov, "enabled").and_then(yaml_bool) == Some(false) {
                                continue;
                            }
                            return Err(format!("output `{oname}` not supported"));
                        }
                        if get(ov, "enabled").and_then(yaml_bool) == Some(false) {
                            continue;
                        }
                        let mut types = Vec::new();
                        for t in get(ov, "types")
                            .and_then(Yaml::as_sequence)
                            .into_iter()
                            .flatten()
                        {
                            match t {
                                Yaml::String(name) => types.push(name.clone()),
                                Yaml::Mapping(tm) => {
                                    for (tk, tv) in tm {
                                        let name = tk.as_str().unwrap_or_default().to_string();
                                        if name == "anomaly" {
                                            s.anomaly = anomaly_types(tv)?;
                                        }
                                        if name == "drop" {
                                            match drop_options(tv) {
                                                Ok(all) => s.drop_flows_all = all,
                                                Err(why) => s.drop_unsupported = Some(why),
                                            }
                                        }
                                        // Options of a type sekisho does not write cannot
                                        // change what it checks (such filters are skipped).
                                        if !tv.is_null()
                                            && matches!(name.as_str(), "flow" | "netflow")
                                        {
                                            return Err(format!(
                                                "eve-log `{name}` options not supported"
                                            ));
                                        }
                                        types.push(name);
                                    }
                                }
                                _ => {}
                            }
                        }
                        for (ek, _) in ov.as_mapping().into_iter().flatten() {
                            let ek = ek.as_str().unwrap_or_default();
                            if !matches!(ek, "enabled" | "filetype" | "filename" | "types") {
                                return Err(format!("eve-log option `{ek}` not supported"));
                            }
                        }
                        s.eve_types = Some(types);
                    }
                }
            }
            "stream" => {
                for (sk, sv) in v.as_mapping().into_iter().flatten() {
                    match sk.as_str().unwrap_or_default() {
                        "midstream" => s.sets.push(("stream.midstream".into(), yaml_text(sv))),
                        "inline" => stream_inline("stream.inline", &yaml_text(sv), s)?,
                        "checksum-validation" => {
                            s.no_checksums =
                                !suricata_flag("stream.checksum-validation", &yaml_text(sv))?
                        }
                        other => return Err(format!("setting `stream.{other}` not supported")),
                    }
                }
            }
            "stats" => {
                for (sk, sv) in v.as_mapping().into_iter().flatten() {
                    match sk.as_str().unwrap_or_default() {
                        // sekisho writes one stats record at the end; the last record is
                        // what checks read, so the periodic interval does not matter.
                        "enabled" | "interval" => {}
                        other => {
                            let _ = sv;
                            return Err(format!("setting `stats.{other}` not supported"));
                        }
                    }
                }
            }
            // Console/file logging and threading do not change what sekisho computes.
            "logging" | "runmode" | "max-pending-packets" => {}
            "vars" => {
                for (group, defs) in v.as_mapping().into_iter().flatten() {
                    if !matches!(
                        group.as_str().unwrap_or_default(),
                        "address-groups" | "port-groups"
                    ) {
                        return Err(format!("setting `vars.{}` not supported", yaml_text(group)));
                    }
                    for (name, val) in defs.as_mapping().into_iter().flatten() {
                        s.vars.push((yaml_text(name), yaml_text(val)));
                    }
                }
            }
            "action-order" => check_action_order(&yaml_list(v), s),
            "threshold-file" => s.threshold_file = Some(yaml_text(v)),
            // The case's rules (`-S`) replace rule-files; the suite's classification file is
            // the one used.
            "default-rule-path"
            | "rule-files"
            | "classification-file"
            | "reference-config-file" => {}
            "firewall" => parse_firewall(v, s)?,
            "flow-timeouts" => {
                for (class, states) in v.as_mapping().into_iter().flatten() {
                    for (state, val) in states.as_mapping().into_iter().flatten() {
                        let key =
                            format!("flow-timeouts.{}.{}", yaml_text(class), yaml_text(state));
                        if !matches!(yaml_text(state).as_str(), "new" | "established" | "closed") {
                            return Err(format!("setting `{key}` not supported"));
                        }
                        s.sets.push((key, yaml_text(val)));
                    }
                }
            }
            other => return Err(format!("setting `{other}` not supported")),
        }
    }
    Ok(())
}

/// The `firewall:` node of a case's configuration (Suricata 8.0.7 layout, the version the
/// runner evaluates as). What sekisho's firewall cannot honour is an error naming the key.
fn parse_firewall(v: &Yaml, s: &mut Settings) -> Result<(), String> {
    let Some(map) = v.as_mapping() else {
        // `firewall: true` sets no `firewall.enabled`; reading it either way would be a guess.
        return Err(format!(
            "setting `firewall: {}` not supported (expected a mapping)",
            yaml_text(v)
        ));
    };
    for (k, val) in map {
        match yaml_text(k).as_str() {
            "enabled" => match yaml_bool(val) {
                Some(on) => s.firewall = on,
                None => {
                    return Err(format!(
                        "setting `firewall.enabled: {}` not supported",
                        yaml_text(val)
                    ))
                }
            },
            // suricata-verify loads the case's firewall.rules with
            // --firewall-rules-exclusive, which ignores the configured rule files.
            "rule-path" | "rule-files" => s.fw_rule_files = true,
            "policies" => parse_firewall_policies(val, s)?,
            other => return Err(format!("setting `firewall.{other}` not supported")),
        }
    }
    Ok(())
}

/// Suricata's default of every app-layer hook.
const DEFAULT_APP_POLICY: &[&str] = &["drop:flow"];

/// `firewall.policies` (8.0.7 layout: `packet: {filter, pre-flow, pre-stream}`,
/// `app: {PROTO: {HOOK: [actions]}}`). Only the `packet:filter` default is handed to the
/// replay; a per-hook app default other than Suricata's `drop:flow`, a pre-flow/pre-stream
/// default and any other key are errors naming the key (sekisho's firewall has one default
/// for all app hooks and no pre-flow/pre-stream tables).
fn parse_firewall_policies(v: &Yaml, s: &mut Settings) -> Result<(), String> {
    let actions = |key: &str, val: &Yaml| -> Result<Vec<String>, String> {
        match val {
            Yaml::Sequence(items) => items
                .iter()
                .map(|i| match i {
                    Yaml::String(a) => Ok(a.clone()),
                    other => Err(format!(
                        "setting `{key}` entry `{}` not supported (expected an action)",
                        yaml_text(other)
                    )),
                })
                .collect(),
            other => Err(format!(
                "setting `{key}: {}` not supported (expected a list of actions)",
                yaml_text(other)
            )),
        }
    };
    for (k, val) in v.as_mapping().into_iter().flatten() {
        let key = yaml_text(k);
        match key.as_str() {
            "packet" => {
                for (tk, tv) in val.as_mapping().into_iter().flatten() {
                    let table = yaml_text(tk);
                    let full = format!("firewall.policies.packet.{table}");
                    match table.as_str() {
                        "filter" => s.fw_packet_filter = Some(actions(&full, tv)?),
                        _ => {
                            return Err(format!(
                                "setting `{full}` not supported (sekisho's firewall has only \
                                 the packet:filter table)"
                            ))
                        }
                    }
                }
            }
            "app" => {
                for (pk, pv) in val.as_mapping().into_iter().flatten() {
                    for (hk, hv) in pv.as_mapping().into_iter().flatten() {
                        let full =
                            format!("firewall.policies.app.{}.{}", yaml_text(pk), yaml_text(hk));
                        if actions(&full, hv)? != DEFAULT_APP_POLICY {
                            return Err(format!(
                                "setting `{full}` not supported (per-hook app default \
                                 policies; sekisho applies drop:flow at every app hook)"
                            ));
                        }
                    }
                }
            }
            other => return Err(format!("setting `firewall.policies.{other}` not supported")),
        }
    }
    Ok(())
}

/// sekisho's `drop` records are Suricata's with `alerts: yes`; `Ok(true)` for `flows: all`,
/// `Ok(false)` for `flows: start` (the default).
fn drop_options(v: &Yaml) -> Result<bool, String> {
    let mut all = false;
    for (k, val) in v.as_mapping().into_iter().flatten() {
        let key = k.as_str().unwrap_or_default();
        let ok = match key {
            "alerts" => yaml_bool(val) == Some(true),
            "flows" => {
                all = yaml_text(val) == "all";
                matches!(yaml_text(val).as_str(), "start" | "all")
            }
            "enabled" => true,
            _ => false,
        };
        if !ok {
            return Err(format!(
                "eve-log drop option `{key}: {}` not supported",
                yaml_text(val)
            ));
        }
    }
    Ok(all)
}

fn anomaly_types(v: &Yaml) -> Result<(bool, bool, bool), String> {
    let mut t = (false, false, true);
    for (k, val) in v.as_mapping().into_iter().flatten() {
        match k.as_str().unwrap_or_default() {
            "enabled" => {}
            "types" => {
                for (tk, tv) in val.as_mapping().into_iter().flatten() {
                    let on = yaml_bool(tv).unwrap_or(false);
                    match tk.as_str().unwrap_or_default() {
                        "decode" => t.0 = on,
                        "stream" => t.1 = on,
                        "applayer" => t.2 = on,
                        other => return Err(format!("anomaly type `{other}` not supported")),
                    }
                }
            }
            other => return Err(format!("anomaly option `{other}` not supported")),
        }
    }
    Ok(t)
}

fn yaml_bool(v: &Yaml) -> Option<bool> {
    match v {
        Yaml::Bool(b) => Some(*b),
        Yaml::String(s) => match s.as_str() {
            "yes" | "true" | "on" => Some(true),
            "no" | "false" | "off" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn has_rules(path: &Path) -> bool {
    std::fs::read_to_string(path)
        .map(|t| {
            t.lines()
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        })
        .unwrap_or(false)
}

/// The last component of a case name (`firewall/x` → `x`), which suricata-verify calls the
/// test's name.
fn basename_of(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// suricata-verify loads `minX.rules` only when the engine is at least version X.
fn rule_file_applies(path: &Path) -> bool {
    let base = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    match base
        .strip_prefix("min")
        .and_then(|r| r.strip_suffix(".rules"))
    {
        Some(v) => parse_version(&Yaml::String(v.to_string())).is_some_and(|v| COMPAT_VERSION >= v),
        None => true,
    }
}

/// Splits a case's sorted rule files as suricata-verify does: `(firewall rules, the
/// other rule files)`. One file ending in `firewall.rules`, or two ending in
/// `firewall.rules` and `td.rules` (in that order), are firewall mode; one other file is
/// plain rules; anything else is a skip (suricata-verify refuses it).
fn split_firewall_rules(files: Vec<PathBuf>) -> Result<(Option<PathBuf>, Vec<PathBuf>), Outcome> {
    let ends = |p: &PathBuf, n: &str| {
        p.file_name()
            .is_some_and(|f| f.to_string_lossy().ends_with(n))
    };
    match files.as_slice() {
        [fw] if ends(fw, "firewall.rules") => Ok((Some(fw.clone()), Vec::new())),
        [fw, td] if ends(fw, "firewall.rules") && ends(td, "td.rules") => {
            Ok((Some(fw.clone()), vec![td.clone()]))
        }
        [_, _, ..] => Err(Outcome::Skip(
            "more than one rule file (suricata-verify refuses this too)".into(),
        )),
        _ => Ok((None, files)),
    }
}

/// Runs one case. `name` is its path under `suite/tests/`.
pub fn run_case(suite: &Path, name: &str, caps: &Capabilities, replayer: &dyn Replayer) -> Outcome {
    match run_case_inner(suite, name, caps, replayer) {
        Ok(o) => o,
        Err(o) => o,
    }
}

fn run_case_inner(
    suite: &Path,
    name: &str,
    caps: &Capabilities,
    replayer: &dyn Replayer,
) -> Result<Outcome, Outcome> {
    let dir = suite.join("tests").join(name);
    let desc = read_yaml(&dir.join("test.yaml"))
        .map_err(|e| Outcome::Fail(format!("bad test.yaml: {e}")))?;
    if let Some(req) = get(&desc, "requires") {
        requirements_met(req).map_err(Outcome::Skip)?;
    }
    if let Some(skip) = get(&desc, "skip") {
        skip_conditions(skip)?;
    }
    if get(&desc, "command").is_some() {
        return Err(Outcome::Skip("custom command line not supported".into()));
    }
    let mut settings = case_settings(&dir, &desc)?;
    let (firewall_rules, rule_files) = case_rule_files(&dir, &settings)?;
    if basename_of(name).contains("ips") {
        // suricata-verify runs every case whose name contains "ips" with --simulate-ips.
        settings.inline = true;
    }
    if firewall_rules.is_some() {
        // Firewall mode is an IPS mode: verdicts take effect.
        settings.inline = true;
    }
    let rules = rule_load(suite, &dir, caps, &settings, firewall_rules, rule_files)?;
    if get(&desc, "exit-code").and_then(Yaml::as_u64).unwrap_or(0) != 0 {
        return Err(Outcome::Skip("expects a non-zero exit code".into()));
    }
    let pcaps = case_captures(&dir, &desc)?;
    let types = settings.eve_types.clone();
    let enabled = |t: &str| match &types {
        // Suricata's default configuration: netflow and drop commented out; anomaly on
        // for app-layer anomalies only, so on when sekisho writes some.
        None => match t {
            "netflow" | "drop" => false,
            "anomaly" => !caps.app_anomaly_events.is_empty(),
            _ => true,
        },
        // The config names fileinfo records `files`.
        Some(list) => list
            .iter()
            .any(|x| x == t || (t == "fileinfo" && x == "files")),
    };
    // Decide which checks apply and whether each can be evaluated, before running anything.
    let applicable = applicable_checks(&desc, caps, &settings, &enabled)?;
    let req = RunRequest {
        pcaps,
        out_dir: PathBuf::new(),
        no_checksums: settings.no_checksums,
        sets: settings.sets.clone(),
        inline: settings.inline,
        flow: enabled("flow"),
        netflow: enabled("netflow"),
        anomaly_decode: enabled("anomaly") && settings.anomaly.0,
        anomaly_stream: enabled("anomaly") && settings.anomaly.1,
        anomaly_app: enabled("anomaly")
            && settings.anomaly.2
            && !caps.app_anomaly_events.is_empty(),
        alert: enabled("alert"),
        drop: enabled("drop"),
        drop_flows_all: settings.drop_flows_all,
        rules,
    };
    let events = replay_events(name, req, replayer)?;
    for (i, check) in applicable.iter().enumerate() {
        check
            .evaluate(&events)
            .map_err(|m| Outcome::Fail(format!("check {}: {m}", i + 1)))?;
    }
    Ok(Outcome::Pass)
}

/// Evaluates a case's `skip:` list: a condition that holds (a version, not a `feature:`,
/// which never holds since sekisho has no optional features) skips the case with its `msg`.
fn skip_conditions(skip: &Yaml) -> Result<(), Outcome> {
    for entry in skip.as_sequence().into_iter().flatten() {
        let mut m = entry.clone();
        if let Some(mm) = m.as_mapping_mut() {
            mm.remove(Yaml::String("msg".into()));
            if mm.contains_key(Yaml::String("feature".into())) {
                continue;
            }
            if mm.is_empty() {
                continue;
            }
        }
        for key in ["uid", "config"] {
            if get(&m, key).is_some() {
                return Err(Outcome::Skip(format!(
                    "skip condition `{key}` not evaluated"
                )));
            }
        }
        match requirements(&m) {
            Ok(()) => {
                let msg = get(entry, "msg")
                    .map(yaml_text)
                    .unwrap_or_else(|| "skip condition holds".into());
                return Err(Outcome::Skip(msg));
            }
            Err(Unmet::Unmet(_)) => {}
            Err(Unmet::Unsupported(why)) => {
                return Err(Outcome::Skip(format!("skip condition: {why}")))
            }
        }
    }
    Ok(())
}

/// The case's settings: its `args`, then its `suricata.yaml` (when it has one). What
/// sekisho does not honour is a skip naming it.
fn case_settings(dir: &Path, desc: &Yaml) -> Result<Settings, Outcome> {
    let mut settings = Settings {
        anomaly: (false, false, true),
        ..Settings::default()
    };
    if let Some(args) = get(desc, "args") {
        parse_args(args, &mut settings).map_err(Outcome::Skip)?;
    }
    let cfg_path = dir.join("suricata.yaml");
    if cfg_path.is_file() {
        let cfg = read_yaml(&cfg_path)
            .map_err(|e| Outcome::Skip(format!("unreadable suricata.yaml: {e}")))?;
        parse_config(&cfg, &mut settings).map_err(Outcome::Skip)?;
    }
    Ok(settings)
}

/// Rules as suricata-verify's runner finds them (sorted `*.rules` of the case directory):
/// one file is the rules (`-S`), unless its name ends in `firewall.rules`, which is
/// firewall mode (`--firewall-rules-exclusive`); two files are firewall mode when they are
/// `*firewall.rules` and `*td.rules` (the threat-detection rules, `-S`). A file named
/// `minX.rules` only applies from version X on. Returns `(firewall rules, other rules)`.
fn case_rule_files(
    dir: &Path,
    settings: &Settings,
) -> Result<(Option<PathBuf>, Vec<PathBuf>), Outcome> {
    let mut rule_files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Outcome::Fail(e.to_string()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.to_string_lossy().ends_with(".rules"))
        .collect();
    rule_files.sort();
    let (firewall_rules, mut rule_files) = split_firewall_rules(rule_files)?;
    if settings.firewall && firewall_rules.is_none() {
        return Err(Outcome::Skip(
            "firewall.enabled without a firewall.rules file not supported \
             (firewall rules from firewall.rule-files are not loaded)"
                .into(),
        ));
    }
    if firewall_rules.is_none() {
        if settings.fw_packet_filter.is_some() || settings.fw_rule_files {
            return Err(Outcome::Skip(
                "firewall settings without firewall mode not supported".into(),
            ));
        }
        rule_files.retain(|p| rule_file_applies(p));
    }
    Ok((firewall_rules, rule_files))
}

/// What the replay needs to compile the case's rules; `None` when the case has no rules.
/// Rules sekisho cannot evaluate (no detection, firewall mode, a setting it does not honour
/// with rules) are a skip.
fn rule_load(
    suite: &Path,
    dir: &Path,
    caps: &Capabilities,
    settings: &Settings,
    firewall_rules: Option<PathBuf>,
    rule_files: Vec<PathBuf>,
) -> Result<Option<RuleLoad>, Outcome> {
    if firewall_rules.is_none() && !rule_files.iter().any(|f| has_rules(f)) {
        return Ok(None);
    }
    if !caps.detection {
        return Err(Outcome::Skip(
            "detection not implemented (case has rules)".into(),
        ));
    }
    if firewall_rules.is_some() && !caps.firewall {
        return Err(Outcome::Skip("firewall mode not evaluated".into()));
    }
    if let Some(why) = &settings.rules_unsupported {
        return Err(Outcome::Skip(why.clone()));
    }
    let mut vars: Vec<(String, String)> = sekisho_rules::DEFAULT_ADDRESS_VARS
        .iter()
        .chain(sekisho_rules::DEFAULT_PORT_VARS)
        .chain(EXTRA_VARS)
        .filter(|(n, _)| !settings.vars.iter().any(|(m, _)| m == n))
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    vars.extend(settings.vars.iter().cloned());
    let classification = suite.join("etc").join("classification.config");
    Ok(Some(RuleLoad {
        files: rule_files,
        vars,
        classification: classification.is_file().then_some(classification),
        firewall: firewall_rules.map(|rules| FirewallLoad {
            rules,
            packet_filter: settings.fw_packet_filter.clone(),
        }),
        // `${TEST_DIR}/x` already names the case directory; joining it onto `dir` again
        // broke every relative `--suite` (the path doubled).
        threshold_file: settings.threshold_file.as_ref().map(|f| {
            match f.strip_prefix("${TEST_DIR}") {
                Some(rest) => dir.join(rest.trim_start_matches('/')),
                None => dir.join(f),
            }
        }),
    }))
}

/// The case's capture: its `pcap:` (which may name another case's capture), else the
/// captures in its directory. Exactly one is supported.
fn case_captures(dir: &Path, desc: &Yaml) -> Result<Vec<PathBuf>, Outcome> {
    let pcaps: Vec<PathBuf> = match get(desc, "pcap") {
        Some(Yaml::String(p)) => {
            let path = dir.join(p);
            // Cases may point at another case's capture; the conformance selection does not
            // always hold it.
            if !path.is_file() {
                return Err(Outcome::Skip(format!(
                    "capture {p} is not in this conformance selection"
                )));
            }
            vec![path]
        }
        Some(Yaml::Bool(false)) => return Err(Outcome::Skip("no capture".into())),
        _ => {
            let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
                .map_err(|e| Outcome::Fail(e.to_string()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    let s = p.to_string_lossy();
                    s.ends_with(".pcap") || s.ends_with(".pcapng") || s.ends_with(".pcap.gz")
                })
                .collect();
            v.sort();
            v
        }
    };
    if pcaps.is_empty() {
        return Err(Outcome::Skip("no capture in the case".into()));
    }
    if pcaps.len() > 1 {
        return Err(Outcome::Skip(
            "several captures in one case not supported".into(),
        ));
    }
    Ok(pcaps)
}

/// The case's checks that apply (a filter whose `requires:` does not hold is left out, as
/// suricata-verify does), each validated as evaluable by sekisho; one that is not makes the
/// case a skip naming why. No applicable check is a skip too.
fn applicable_checks(
    desc: &Yaml,
    caps: &Capabilities,
    settings: &Settings,
    enabled: &dyn Fn(&str) -> bool,
) -> Result<Vec<Check>, Outcome> {
    let checks = get(desc, "checks")
        .and_then(Yaml::as_sequence)
        .cloned()
        .unwrap_or_default();
    let mut applicable = Vec::new();
    for check in &checks {
        let Some(m) = check.as_mapping() else {
            continue;
        };
        for (ck, cv) in m {
            let kind = ck.as_str().unwrap_or_default();
            match kind {
                "filter" => {
                    if let Some(c) = filter_check(cv, caps, settings, enabled)? {
                        applicable.push(c);
                    }
                }
                "stats" => applicable.push(stats_check(cv, caps)?),
                // Both read files sekisho does not write (fast.log, stats.log, files/…) or
                // run commands against Suricata itself; evaluating them would need those.
                "shell" => {
                    return Err(Outcome::Skip(
                        "shell checks not supported (they read Suricata's other outputs)".into(),
                    ))
                }
                "file-compare" => {
                    return Err(Outcome::Skip(
                        "file-compare checks not supported (sekisho writes only eve.json)".into(),
                    ))
                }
                other => return Err(Outcome::Skip(format!("check type `{other}` not supported"))),
            }
        }
    }
    if applicable.is_empty() {
        return Err(Outcome::Skip("no applicable checks".into()));
    }
    Ok(applicable)
}

/// One `filter` check: `Ok(None)` when its `requires:` does not hold (left out), a skip
/// when sekisho cannot evaluate it.
fn filter_check(
    cv: &Yaml,
    caps: &Capabilities,
    settings: &Settings,
    enabled: &dyn Fn(&str) -> bool,
) -> Result<Option<Check>, Outcome> {
    // suricata-verify leaves out a filter whose requirements do not hold; one it could
    // evaluate but sekisho cannot makes the whole case a skip.
    if let Some(req) = get(cv, "requires") {
        match requirements(req) {
            Ok(()) => {}
            Err(Unmet::Unmet(_)) => return Ok(None),
            Err(Unmet::Unsupported(why)) => return Err(Outcome::Skip(format!("filter {why}"))),
        }
    }
    for (fk, _) in cv.as_mapping().into_iter().flatten() {
        let fk = fk.as_str().unwrap_or_default();
        if !matches!(fk, "count" | "match" | "requires" | "filename" | "comment") {
            return Err(Outcome::Skip(format!("filter option `{fk}` not supported")));
        }
    }
    if let Some(f) = get(cv, "filename").and_then(Yaml::as_str) {
        if f != "eve.json" {
            return Err(Outcome::Skip(format!(
                "output file {f} not written by sekisho"
            )));
        }
    }
    let matches = get(cv, "match");
    if !matches.is_some_and(Yaml::is_mapping) {
        // suricata-verify fails such a filter; so does evaluation.
        return Ok(Some(Check::Filter(cv.clone())));
    }
    // Without `event_type` suricata-verify matches every event and a key selects the
    // records that carry it: those record types are what the filter is about, and each of
    // them must be one sekisho writes.
    let et = matches.and_then(|m| get(m, "event_type")).map(yaml_text);
    let types: Vec<String> = match &et {
        Some(t) => vec![t.clone()],
        None => implied_types(matches)
            .map_err(Outcome::Skip)?
            .into_iter()
            .filter(|t| *t == "stats" || enabled(t))
            .collect(),
    };
    if types.is_empty() {
        return Err(Outcome::Skip(
            "filter without event_type: no record type the case enables carries all its keys"
                .into(),
        ));
    }
    for t in &types {
        check_filter_type(t, cv, matches, caps, settings, enabled).map_err(Outcome::Skip)?;
    }
    if !caps.app_layer {
        for (mk, _) in matches.and_then(Yaml::as_mapping).into_iter().flatten() {
            let mk = mk.as_str().unwrap_or_default();
            if mk.starts_with("app_proto") {
                return Err(Outcome::Skip(
                    "app-layer protocol detection not implemented".into(),
                ));
            }
        }
    }
    check_expected_values(cv).map_err(Outcome::Skip)?;
    Ok(Some(Check::Filter(cv.clone())))
}

/// One `stats` check: every counter must be one sekisho writes, every value one PyYAML and
/// sekisho read alike.
fn stats_check(cv: &Yaml, caps: &Capabilities) -> Result<Check, Outcome> {
    for (sk, sv) in cv.as_mapping().into_iter().flatten() {
        let sk = yaml_text(sk);
        let path = KeyPath::parse(&sk);
        if let Some(op) = &path.glued_operator {
            return Err(Outcome::Skip(glued_message(&sk, op)));
        }
        let counter = path.fields.join(".");
        if !counter_written(caps, &counter, path.len || path.operator.is_some()) {
            return Err(Outcome::Skip(format!(
                "stats counter `{counter}` not implemented"
            )));
        }
        check_yaml_value(sv).map_err(Outcome::Skip)?;
    }
    Ok(Check::Stats(cv.clone()))
}

/// Replays the case into a fresh temporary directory (set as `req.out_dir`) and reads the
/// EVE records it wrote; the directory is removed either way.
fn replay_events(
    name: &str,
    mut req: RunRequest,
    replayer: &dyn Replayer,
) -> Result<Vec<Json>, Outcome> {
    // A per-run sequence number keeps concurrent runs of same-named cases apart.
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let out_dir = std::env::temp_dir().join(format!(
        "sekisho-verify-{}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        name.replace('/', "_")
    ));
    let _ = std::fs::remove_dir_all(&out_dir);
    std::fs::create_dir_all(&out_dir).map_err(|e| Outcome::Fail(format!("temp dir: {e}")))?;
    req.out_dir = out_dir.clone();
    let result = replayer.replay(&req).map_err(|e| match e {
        ReplayError::Unsupported(m) => Outcome::Skip(m),
        ReplayError::Failed(m) => Outcome::Fail(format!("replay failed: {m}")),
    });
    let events = read_events(&out_dir.join("eve.json"));
    let _ = std::fs::remove_dir_all(&out_dir);
    result?;
    events.map_err(Outcome::Fail)
}

/// Validates one filter for records of `event_type` `t`: the type must be one sekisho
/// writes and the case enables, and every key must be a field sekisho writes in it.
/// `Err(reason)` makes the case a skip.
fn check_filter_type(
    t: &str,
    filter: &Yaml,
    matches: Option<&Yaml>,
    caps: &Capabilities,
    settings: &Settings,
    enabled: &dyn Fn(&str) -> bool,
) -> Result<(), String> {
    if t == "anomaly" {
        // sekisho writes decode and stream anomalies and the app-layer events listed in the
        // capabilities: a filter is evaluable if it is restricted to decode/stream, names one
        // of those app-layer events, or the case's config turns app-layer anomalies off.
        let m = matches.cloned().unwrap_or(Yaml::Null);
        let ty = get(&m, "anomaly.type").map(yaml_text);
        let ev = get(&m, "anomaly.event").map(yaml_text).unwrap_or_default();
        let restricted = matches!(ty.as_deref(), Some("decode" | "stream"))
            || ev.starts_with("decoder.")
            || ev.starts_with("stream.");
        if !restricted && settings.anomaly.2 {
            let proto = get(&m, "anomaly.app_proto").map(yaml_text);
            let count_zero = get(filter, "count").and_then(Yaml::as_u64) == Some(0);
            let type_ok = matches!(ty.as_deref(), None | Some("applayer"));
            // "No app-layer anomaly at all" is evaluable once sekisho raises some (a spurious
            // one fails it); a positive count without an event name may include kinds
            // sekisho does not raise.
            let no_anomaly = count_zero
                && type_ok
                && ev.is_empty()
                && !caps.app_anomaly_events.is_empty()
                && proto
                    .as_deref()
                    .is_none_or(|x| caps.app_anomaly_events.iter().any(|(p, _)| p == x));
            let named = type_ok
                && caps
                    .app_anomaly_events
                    .iter()
                    .any(|(p, e)| *e == ev && proto.as_deref().is_none_or(|x| x == p));
            let known = no_anomaly || named;
            if !known {
                return Err(if ev.is_empty() {
                    "app-layer anomaly filter not restricted to an implemented event".into()
                } else {
                    format!("app-layer anomaly event `{ev}` not implemented")
                });
            }
            // Suricata (IDS) logs an event on the packet acknowledging the data that raised
            // it, sekisho on the data packet itself: packet numbers and times differ.
            if get(&m, "pcap_cnt").is_some() || get(&m, "timestamp").is_some() {
                return Err("pcap_cnt/timestamp of app-layer anomalies not modelled".into());
            }
        }
    }
    if !caps.event_types.contains(t) {
        return Err(format!("event type `{t}` not implemented"));
    }
    if !enabled(t) && t != "stats" {
        return Err(format!("event type `{t}` disabled by the case config"));
    }
    // `flows: all` logs a superset of `flows: start`: "no drop at all" reads the same under
    // both, other counts do not.
    let count_zero = get(filter, "count").and_then(Yaml::as_u64) == Some(0);
    if t == "drop" && !count_zero {
        if let Some(why) = &settings.drop_unsupported {
            return Err(why.clone());
        }
        if settings.drop_flows_all && !caps.drop_flows_all {
            return Err("eve-log drop option `flows: all` not supported".into());
        }
    }
    for (mk, mv) in matches.and_then(Yaml::as_mapping).into_iter().flatten() {
        let mk = yaml_text(mk);
        if mk == "event_type" {
            continue;
        }
        // An app-layer protocol sekisho does not detect can never be expected of it
        // honestly.
        if mk.starts_with("app_proto") {
            let want = yaml_text(mv);
            if !KNOWN_APP_PROTOS.contains(&want.as_str()) {
                return Err(format!(
                    "app-layer protocol `{want}` not detected by sekisho"
                ));
            }
        }
        let presence = mk == "has-key" || mk == "not-has-key";
        let paths = if presence { yaml_list(mv) } else { vec![mk] };
        for path in paths {
            let kp = KeyPath::parse(&path);
            if let Some(op) = kp.glued_operator {
                return Err(glued_message(&path, op));
            }
            // A `not-has-key` on a field sekisho never writes would hold trivially, and a
            // count of records with a value sekisho never writes would be 0 whatever
            // Suricata does; comparing a whole object (or its `__len`) would depend on
            // fields sekisho does not write.
            if !field_written(t, &kp, presence, caps) {
                let object = !presence && field_written(t, &kp, true, caps);
                return Err(if object {
                    format!(
                        "`{path}` compares a whole object of sekisho's {t} records, which \
                         lack some of Suricata's fields"
                    )
                } else {
                    format!("`{path}` not written in sekisho's {t} records")
                });
            }
        }
    }
    Ok(())
}

/// A match or stats key as suricata-verify's `find_value` walks it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct KeyPath {
    /// The field names walked, without `[i]` indexes, up to `__len` or an operator.
    fields: Vec<String>,
    /// The walk ends in `.__len`.
    len: bool,
    /// The operator component that ends the walk (`.__endswith`, `.__gt`, …).
    operator: Option<&'static str>,
    /// A component with an operator suffix glued to a field name (`proto__endswith`):
    /// suricata-verify looks that up as a literal field name, which no record has.
    glued_operator: Option<&'static str>,
}

impl KeyPath {
    fn parse(key: &str) -> KeyPath {
        let mut kp = KeyPath {
            fields: Vec::new(),
            len: false,
            operator: None,
            glued_operator: None,
        };
        let ops = py::MATCH_OPERATORS
            .iter()
            .chain(py::COMPARISON_OPERATORS)
            .chain(&["__len"]);
        let ops: Vec<&'static str> = ops.copied().collect();
        for part in key.split('.') {
            if part == "__len" {
                kp.len = true;
                break;
            }
            if let Some(op) = ops.iter().find(|op| **op == part) {
                kp.operator = Some(op);
                break;
            }
            let (name, _) = py::split_index(part);
            if let Some(op) = ops.iter().find(|op| name.ends_with(**op)) {
                kp.glued_operator.get_or_insert(op);
            }
            kp.fields.push(name.to_string());
        }
        kp
    }
}

fn glued_message(key: &str, op: &str) -> String {
    let dotted = match key.rfind(op) {
        Some(i) => format!("{}.{}", &key[..i], &key[i..]),
        None => format!("field.{op}"),
    };
    format!(
        "match key `{key}` glues `{op}` to a field name: suricata-verify looks up a field \
         literally named so, which no record has (the operator form is `{dotted}`)"
    )
}

/// Whether a stats counter path (`decoder.pkts`, without `stats.`) is one sekisho writes;
/// with `presence_only`, an object holding counters (`decoder`) counts too.
fn counter_written(caps: &Capabilities, counter: &str, presence_only: bool) -> bool {
    counter == "uptime"
        || caps.counters.contains(counter)
        || (presence_only
            && caps
                .counters
                .iter()
                .any(|c| c.starts_with(&format!("{counter}."))))
}

/// Rejects expected values PyYAML may read differently from this crate's loader (see
/// [`py::pyyaml_reads_differently`]); `Err(reason)` makes the case a skip.
fn check_yaml_value(v: &Yaml) -> Result<(), String> {
    match v {
        Yaml::String(s) if py::pyyaml_reads_differently(s) => Err(format!(
            "expected value `{s}` is not a string to suricata-verify's YAML 1.1 loader \
             unless quoted, and the quoting is not known here"
        )),
        Yaml::Sequence(items) => items.iter().try_for_each(check_yaml_value),
        Yaml::Mapping(m) => m.iter().try_for_each(|(k, v)| {
            check_yaml_value(k)?;
            check_yaml_value(v)
        }),
        Yaml::Tagged(t) => check_yaml_value(&t.value),
        _ => Ok(()),
    }
}

/// [`check_yaml_value`] over a filter's `count` and `match` values.
fn check_expected_values(filter: &Yaml) -> Result<(), String> {
    if let Some(c) = get(filter, "count") {
        check_yaml_value(c)?;
    }
    for (_, v) in get(filter, "match")
        .and_then(Yaml::as_mapping)
        .into_iter()
        .flatten()
    {
        check_yaml_value(v)?;
    }
    Ok(())
}

/// Top-level objects of EVE records, with the record types that carry each one in
/// Suricata's output (an alert carries the metadata of its transaction's protocol).
/// fileinfo records also carry their protocol's object, but only for extracted files;
/// sekisho writes none, so such a count comes out short (a FAIL), never a false PASS.
const OBJECT_CARRIERS: &[(&str, &[&str])] = &[
    ("alert", &["alert", "drop"]),
    ("drop", &["drop"]),
    ("anomaly", &["anomaly"]),
    ("stats", &["stats"]),
    ("flow", &["flow", "alert"]),
    ("netflow", &["netflow"]),
    ("smtp", &["smtp", "alert"]),
    ("email", &["smtp", "alert"]),
    ("fileinfo", &["fileinfo"]),
    ("files", &["alert"]),
];

/// Protocols whose records carry an object of the same name (and whose alerts carry it too).
const APP_LAYER_OBJECTS: &[&str] = &[
    "dns",
    "http",
    "http2",
    "tls",
    "ssh",
    "ftp",
    "ftp_data",
    "smb",
    "nfs",
    "dhcp",
    "krb5",
    "snmp",
    "sip",
    "rdp",
    "rfb",
    "mqtt",
    "quic",
    "ike",
    "dcerpc",
    "modbus",
    "dnp3",
    "pgsql",
    "tftp",
    "bittorrent_dht",
    "ldap",
    "websocket",
    "pop3",
    "mdns",
    "doh2",
    "enip",
    "arp",
    "frame",
    "template",
];

/// The record types a filter without `event_type` can match: those carrying every object
/// its keys (and positive `has-key`s) name. Keys every record may have (`pcap_cnt`,
/// `tx_id`…) and `not-has-key` do not narrow; a filter made only of those would count
/// records of types sekisho does not write, so it is an `Err` (skip).
fn implied_types(matches: Option<&Yaml>) -> Result<Vec<String>, String> {
    let mut types: Option<Vec<String>> = None;
    for (k, v) in matches.and_then(Yaml::as_mapping).into_iter().flatten() {
        let key = yaml_text(k);
        let paths = match key.as_str() {
            "not-has-key" => continue,
            "has-key" => yaml_list(v),
            _ => vec![key],
        };
        for path in paths {
            let top = path
                .split(['.', '['])
                .next()
                .unwrap_or_default()
                .to_string();
            let carriers: Vec<String> = match OBJECT_CARRIERS.iter().find(|(name, _)| *name == top)
            {
                Some((_, list)) => list.iter().map(|t| t.to_string()).collect(),
                None if APP_LAYER_OBJECTS.contains(&top.as_str()) => {
                    vec![top.clone(), "alert".to_string()]
                }
                None => continue,
            };
            types = Some(match types {
                None => carriers,
                Some(prev) => prev.into_iter().filter(|t| carriers.contains(t)).collect(),
            });
        }
    }
    types.ok_or_else(|| "filter without event_type on fields every record has".to_string())
}

/// The `app_proto` values sekisho's protocol detection can produce.
const KNOWN_APP_PROTOS: &[&str] = &["smtp", "tls", "http", "dns", "failed"];

/// The header of per-packet and transaction records (`RecordHead` in sekisho-eve: alert,
/// drop, smtp and app-layer anomaly records).
const PACKET_HEADER: &[&str] = &[
    "timestamp",
    "flow_id",
    "pcap_cnt",
    "event_type",
    "src_ip",
    "src_port",
    "dest_ip",
    "dest_port",
    "ip_v",
    "proto",
    "pkt_src",
];

/// The `alert{…}` object of alert and drop records.
const ALERT_OBJECT: &[&str] = &[
    "alert.action",
    "alert.engine",
    "alert.gid",
    "alert.signature_id",
    "alert.rev",
    "alert.signature",
    "alert.category",
    "alert.severity",
];

/// The `tcp{…}` object of flow records (`tcp_flags_ts`/`_tc` and `state` are flow only).
const FLOW_TCP: &[&str] = &[
    "tcp.tcp_flags",
    "tcp.tcp_flags_ts",
    "tcp.tcp_flags_tc",
    "tcp.syn",
    "tcp.fin",
    "tcp.rst",
    "tcp.psh",
    "tcp.ack",
    "tcp.urg",
    "tcp.ecn",
    "tcp.cwr",
    "tcp.state",
];

/// The `tls{…}` object of tls records and of alerts on a TLS session (`tls.rs` in
/// sekisho-eve, Suricata's extended set).
const TLS_OBJECT: &[&str] = &[
    "tls.subject",
    "tls.issuerdn",
    "tls.serial",
    "tls.fingerprint",
    "tls.sni",
    "tls.version",
    "tls.notbefore",
    "tls.notafter",
    "tls.ja3.hash",
    "tls.ja3.string",
    "tls.ja3s.hash",
    "tls.ja3s.string",
    "tls.ja4",
    "tls.client_alpns",
    "tls.server_alpns",
];

/// dns.rs `DnsObj`: the `dns` object of dns records and of alerts on DNS.
const DNS_OBJECT: &[&str] = &[
    "dns.version",
    "dns.type",
    "dns.tx_id",
    "dns.id",
    "dns.flags",
    "dns.qr",
    "dns.aa",
    "dns.tc",
    "dns.rd",
    "dns.ra",
    "dns.z",
    "dns.opcode",
    "dns.rcode",
    "dns.queries",
    "dns.answers",
    "dns.grouped",
    "dns.authorities",
];

/// The fields sekisho writes per event type, as dotted paths (`alert.signature_id`), read
/// from sekisho-eve's record structs; `stats` records are `timestamp`, `event_type` and
/// `stats.<counter>` for the counters in [`Capabilities::counters`]. A filter testing any
/// other field would compare against something sekisho never writes, so the case is
/// skipped. `None`: sekisho writes no such records.
fn written_fields(event_type: &str) -> Option<Vec<&'static str>> {
    let with = |head: &[&'static str], rest: &[&[&'static str]]| {
        let mut v = head.to_vec();
        for r in rest {
            v.extend_from_slice(r);
        }
        v
    };
    Some(match event_type {
        // detect.rs `AlertEvent`: header without vlan, tx_id, alert{}, firewall{}, smtp{},
        // app_proto, direction.
        "alert" => with(
            PACKET_HEADER,
            &[
                ALERT_OBJECT,
                &[
                    "tx_id",
                    "firewall.hook",
                    "firewall.policy",
                    "smtp.helo",
                    "smtp.mail_from",
                    "smtp.rcpt_to",
                    "app_proto",
                    "direction",
                ],
                TLS_OBJECT,
                DNS_OBJECT,
            ],
        ),
        // tls.rs `TlsRecord`: header with vlan, tls{} (no tx_id, as Suricata).
        "tls" => with(PACKET_HEADER, &[&["vlan"], TLS_OBJECT]),
        // dns.rs `DnsEvent`: header with vlan, dns{} (v3 detailed; no root tx_id).
        "dns" => with(PACKET_HEADER, &[&["vlan"], DNS_OBJECT]),
        // detect.rs `DropEvent`: header without vlan, direction, drop{}, alert{}.
        "drop" => with(
            PACKET_HEADER,
            &[
                ALERT_OBJECT,
                &[
                    "direction",
                    "drop.syn",
                    "drop.ack",
                    "drop.psh",
                    "drop.rst",
                    "drop.urg",
                    "drop.fin",
                    "drop.payload_len",
                    "drop.reason",
                ],
            ],
        ),
        // lib.rs `SmtpEvent`: header with vlan, tx_id, smtp{}, email{}.
        "smtp" => with(
            PACKET_HEADER,
            &[&[
                "vlan",
                "tx_id",
                "smtp.helo",
                "smtp.mail_from",
                "smtp.rcpt_to",
                "email.from",
                "email.to",
                "email.cc",
                "email.status",
            ]],
        ),
        // lib.rs `FlowEvent`: no pcap_cnt or pkt_src.
        "flow" => with(
            &[
                "timestamp",
                "flow_id",
                "event_type",
                "vlan",
                "src_ip",
                "src_port",
                "dest_ip",
                "dest_port",
                "ip_v",
                "proto",
                "icmp_type",
                "icmp_code",
                "response_icmp_type",
                "response_icmp_code",
                "app_proto",
                "app_proto_ts",
                "app_proto_tc",
                "app_proto_orig",
                "flow.pkts_toserver",
                "flow.pkts_toclient",
                "flow.bytes_toserver",
                "flow.bytes_toclient",
                "flow.start",
                "flow.end",
                "flow.age",
                "flow.state",
                "flow.reason",
                "flow.alerted",
                "flow.action",
            ],
            &[FLOW_TCP],
        ),
        // lib.rs `NetflowEvent` in EVE form (`netflow.tcp_flags` is NFW only).
        "netflow" => vec![
            "timestamp",
            "flow_id",
            "event_type",
            "vlan",
            "src_ip",
            "src_port",
            "dest_ip",
            "dest_port",
            "ip_v",
            "proto",
            "app_proto",
            "netflow.pkts",
            "netflow.bytes",
            "netflow.start",
            "netflow.end",
            "netflow.age",
            "netflow.min_ttl",
            "netflow.max_ttl",
            "tcp.tcp_flags",
            "tcp.syn",
            "tcp.fin",
            "tcp.rst",
            "tcp.psh",
            "tcp.ack",
            "tcp.urg",
            "tcp.ecn",
            "tcp.cwr",
        ],
        // lib.rs `AnomalyEvent` (decode, stream) and `AppAnomalyEvent` (applayer).
        "anomaly" => with(
            PACKET_HEADER,
            &[&[
                "vlan",
                "tx_id",
                "anomaly.type",
                "anomaly.event",
                "anomaly.app_proto",
                "anomaly.layer",
            ]],
        ),
        "stats" => vec!["timestamp", "event_type"],
        _ => return None,
    })
}

/// True when the key `kp` names a field sekisho writes in `event_type` records: a listed
/// field or something inside one (`smtp.rcpt_to[0]`, `flow.start`). An object holding
/// listed fields (`alert`, `stats.decoder`) counts only for `has-key`/`not-has-key`
/// (`presence_only`): compared as a whole, or by `__len`, it would include fields sekisho
/// does not write.
fn field_written(event_type: &str, kp: &KeyPath, presence_only: bool, caps: &Capabilities) -> bool {
    let Some(fields) = written_fields(event_type) else {
        return false;
    };
    let clean = kp.fields.join(".");
    if event_type == "stats" {
        if clean == "stats" {
            return presence_only;
        }
        if let Some(counter) = clean.strip_prefix("stats.") {
            return counter_written(caps, counter, presence_only);
        }
    }
    fields.iter().any(|f| {
        clean == *f
            || clean.starts_with(&format!("{f}."))
            || (presence_only && f.starts_with(&format!("{clean}.")))
    })
}

fn read_events(path: &Path) -> Result<Vec<Json>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).map_err(|e| format!("invalid EVE line: {e}")))
        .collect()
}

enum Check {
    Filter(Yaml),
    Stats(Yaml),
}

impl Check {
    /// Evaluates the check as suricata-verify's `FilterCheck.run` / `StatsCheck.run` do.
    fn evaluate(&self, events: &[Json]) -> Result<(), String> {
        match self {
            Check::Filter(f) => {
                // Validated before anything else, as FilterCheck does.
                let expected = get(f, "count").ok_or("filter check missing count")?;
                let matches = get(f, "match").ok_or("filter check missing match")?;
                let Some(matches) = matches.as_mapping() else {
                    return Err(format!(
                        "filter check failed: match is not a mapping: {}",
                        yaml_text(matches)
                    ));
                };
                let matchers: Vec<(Py, Py)> = matches
                    .iter()
                    .map(|(k, v)| (Py::from_yaml(k), Py::from_yaml(v)))
                    .collect();
                let mut count: i128 = 0;
                for e in events {
                    if py::match_event(&matchers, &Py::from_json(e))
                        .map_err(|m| format!("filter check failed: {m}"))?
                    {
                        count += 1;
                    }
                }
                // `count == self.config["count"]`: Python equality, so a count written as
                // a string or a fraction never holds.
                let want = Py::from_yaml(expected);
                if Py::Int(count).py_eq(&want) {
                    return Ok(());
                }
                let summary: Vec<String> = matchers
                    .iter()
                    .map(|(k, v)| format!("{}={}", k.py_str(), v.py_str()))
                    .collect();
                Err(format!(
                    "filter [{}]: expected {} events, got {count}",
                    summary.join(", "),
                    want.py_repr()
                ))
            }
            Check::Stats(s) => {
                let last = events
                    .iter()
                    .rev()
                    .find(|e| e.get("event_type").and_then(Json::as_str) == Some("stats"))
                    .and_then(|e| e.get("stats"))
                    .ok_or("no stats event found in eve.json")?;
                let stats = Py::from_json(last);
                for (k, v) in s.as_mapping().into_iter().flatten() {
                    let key = yaml_text(k);
                    let got = py::find_value(&key, &stats);
                    let want = Py::from_yaml(v);
                    let holds = match py::comparison_operator(&key) {
                        Some(op) => py::compare_values(&got, &want, op),
                        None => got.py_eq(&want),
                    };
                    if !holds {
                        return Err(format!(
                            "stats.{key}: expected {}, got {}",
                            want.py_str(),
                            got.py_str()
                        ));
                    }
                }
                Ok(())
            }
        }
    }
}

/// Result of a whole run.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    /// (case name, outcome), in run order.
    pub results: Vec<(String, Outcome)>,
}

impl Summary {
    /// Cases that passed.
    pub fn passed(&self) -> impl Iterator<Item = &str> {
        self.results
            .iter()
            .filter(|(_, o)| *o == Outcome::Pass)
            .map(|(n, _)| n.as_str())
    }
    /// The closing line: `N passed, N failed, N skipped`.
    pub fn closing_line(&self) -> String {
        let p = self
            .results
            .iter()
            .filter(|(_, o)| matches!(o, Outcome::Pass))
            .count();
        let f = self
            .results
            .iter()
            .filter(|(_, o)| matches!(o, Outcome::Fail(_)))
            .count();
        let s = self
            .results
            .iter()
            .filter(|(_, o)| matches!(o, Outcome::Skip(_)))
            .count();
        format!("{p} passed, {f} failed, {s} skipped")
    }
}

/// Formats one case line: `PASS name`, `FAIL name: why`, `SKIP name: why`.
pub fn case_line(name: &str, outcome: &Outcome) -> String {
    match outcome {
        Outcome::Pass => format!("PASS {name}"),
        Outcome::Fail(m) => format!("FAIL {name}: {m}"),
        Outcome::Skip(m) => format!("SKIP {name}: {m}"),
    }
}

/// Runs `cases` (all cases of the suite when empty), calling `each` after every case.
pub fn run_suite(
    suite: &Path,
    cases: &[String],
    caps: &Capabilities,
    replayer: &dyn Replayer,
    mut each: impl FnMut(&str, &Outcome),
) -> std::io::Result<Summary> {
    let names = if cases.is_empty() {
        discover(suite)?
    } else {
        cases.to_vec()
    };
    let mut summary = Summary::default();
    for name in names {
        let name = name.trim_end_matches('/').to_string();
        let outcome = if suite.join("tests").join(&name).join("test.yaml").is_file() {
            run_case(suite, &name, caps, replayer)
        } else {
            Outcome::Fail(format!("no such case (no tests/{name}/test.yaml)"))
        };
        each(&name, &outcome);
        summary.results.push((name, outcome));
    }
    Ok(summary)
}

/// Finds the default suite: `../shared/conformance/suricata-verify` relative to the repository
/// root, found by walking up from `start` to the directory whose `Cargo.toml` is a workspace.
pub fn default_suite(start: &Path) -> Option<PathBuf> {
    let mut dir = Some(start);
    while let Some(d) = dir {
        let toml = d.join("Cargo.toml");
        if std::fs::read_to_string(&toml).is_ok_and(|t| t.contains("[workspace]")) {
            let suite = d
                .join("..")
                .join("shared")
                .join("conformance")
                .join("suricata-verify");
            if suite.is_dir() {
                return Some(suite);
            }
        }
        dir = d.parent();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert!(requirements_met(&serde_yaml_ng::from_str("min-version: 8").unwrap()).is_ok());
        assert!(requirements_met(&serde_yaml_ng::from_str("min-version: 9").unwrap()).is_err());
        // sekisho's SMTP parser follows 8.0.7, so 8.0.7 cases run and later ones do not.
        assert!(requirements_met(&serde_yaml_ng::from_str("min-version: 8.0.7").unwrap()).is_ok());
        assert!(requirements_met(&serde_yaml_ng::from_str("min-version: 8.0.8").unwrap()).is_err());
        assert!(requirements_met(&serde_yaml_ng::from_str("lt-version: 8.0.7").unwrap()).is_err());
        assert!(requirements_met(&serde_yaml_ng::from_str("lt-version: 8").unwrap()).is_err());
        assert!(requirements_met(&serde_yaml_ng::from_str("version: 8.0").unwrap()).is_ok());
        assert!(requirements_met(&serde_yaml_ng::from_str("version: 7").unwrap()).is_err());
    }

    fn case(files: &[(&str, &str)]) -> (PathBuf, String) {
        // Tests run in parallel: every case gets its own directory.
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let root = std::env::temp_dir().join(format!(
            "sekisho-verify-unit-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let dir = root.join("tests").join("c");
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
        (root, "c".to_string())
    }

    /// A replayer that writes a fixed eve.json, standing in for the engine.
    fn fake(lines: &'static str) -> impl Fn(&RunRequest) -> Result<(), ReplayError> {
        move |req: &RunRequest| {
            std::fs::write(req.out_dir.join("eve.json"), lines)
                .map_err(|e| ReplayError::Failed(e.to_string()))
        }
    }

    /// Sensor keys (`stream.midstream`) reach the replay as written, in order, for the
    /// sensor's `Settings::set` to parse (a bad value is its error, not a silent `false`);
    /// the keys the runner decides itself take only boolean values, naming the key.
    #[test]
    fn stream_settings_are_not_read_loosely() {
        let eve = "{\"event_type\":\"flow\"}\n";
        let run = |args: &str, cfg: Option<&str>| {
            let yaml = format!(
                "args:\n  - {args}\nchecks:\n- filter:\n    count: 1\n    match:\n      event_type: flow\n"
            );
            let mut files = vec![("test.yaml", yaml.as_str()), ("input.pcap", "")];
            if let Some(cfg) = cfg {
                files.push(("suricata.yaml", cfg));
            }
            let (root, name) = case(&files);
            let seen = std::cell::RefCell::new(None);
            let spy = |req: &RunRequest| {
                *seen.borrow_mut() = Some((req.sets.clone(), req.inline, req.no_checksums));
                fake(eve)(req)
            };
            let o = run_case(&root, &name, &Capabilities::default(), &spy);
            let _ = std::fs::remove_dir_all(&root);
            (o, seen.into_inner())
        };
        let midstream = |v: &str| vec![("stream.midstream".to_string(), v.to_string())];
        let (o, seen) = run("--set stream.midstream=maybe", None);
        assert_eq!(o, Outcome::Pass);
        assert_eq!(seen.map(|s| s.0), Some(midstream("maybe")));
        // The case's suricata.yaml comes after its args and wins, as in Suricata.
        let (_, seen) = run(
            "--set stream.midstream=true",
            Some("stream:\n  midstream: false\n"),
        );
        let mut both = midstream("true");
        both.extend(midstream("false"));
        assert_eq!(seen.map(|s| s.0), Some(both));
        for (args, cfg, key) in [
            ("--set stream.inline=maybe", None, "stream.inline=maybe"),
            (
                "--set stream.checksum-validation=none",
                None,
                "stream.checksum-validation=none",
            ),
            (
                "-v",
                Some("stream:\n  inline: sometimes\n"),
                "stream.inline=sometimes",
            ),
            (
                "-v",
                Some("stream:\n  checksum-validation: maybe\n"),
                "stream.checksum-validation=maybe",
            ),
        ] {
            let (o, seen) = run(args, cfg);
            assert_eq!(
                o,
                Outcome::Skip(format!(
                    "setting `{key}` not supported (expected yes or no)"
                )),
                "{args} {cfg:?}"
            );
            assert!(seen.is_none(), "not replayed");
        }
        // `auto` keeps the mode the runner decided (inline with --simulate-ips).
        let (_, seen) = run("--simulate-ips", Some("stream:\n  inline: auto\n"));
        assert_eq!(seen.map(|s| s.1), Some(true));
        let (_, seen) = run(
            "--set stream.inline=no --set stream.checksum-validation=no",
            None,
        );
        assert_eq!(seen.map(|s| (s.1, s.2)), Some((false, true)));
    }

    #[test]
    fn cases_with_rules() {
        let caps = Capabilities {
            detection: true,
            event_types: ["flow", "alert", "drop", "smtp", "stats"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            ..Capabilities::default()
        };
        let eve = "{\"event_type\":\"alert\",\"alert\":{\"signature_id\":7}}\n";
        let yaml = "checks:\n- filter:\n    count: 1\n    match:\n      event_type: alert\n      alert.signature_id: 7\n";
        let (root, name) = case(&[
            ("test.yaml", yaml),
            ("input.pcap", ""),
            ("test.rules", "alert ip any any -> any any (sid:7;)\n"),
            (
                "suricata.yaml",
                "vars:\n  address-groups:\n    HOME_NET: \"[10.1.0.0/16]\"\n",
            ),
        ]);
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/classification.config"), "").unwrap();
        // The replay receives the rules, the case's HOME_NET instead of the default, the
        // other defaults, and the suite's classification file.
        let seen = std::cell::RefCell::new(None);
        let spy = |req: &RunRequest| {
            *seen.borrow_mut() = req.rules.clone();
            fake(eve)(req)
        };
        assert_eq!(run_case(&root, &name, &caps, &spy), Outcome::Pass);
        let load = seen.borrow().clone().unwrap();
        assert_eq!(load.files, vec![root.join("tests/c/test.rules")]);
        let var = |n: &str| {
            load.vars
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(var("HOME_NET").as_deref(), Some("[10.1.0.0/16]"));
        assert_eq!(var("EXTERNAL_NET").as_deref(), Some("!$HOME_NET"));
        assert_eq!(load.vars.iter().filter(|(k, _)| k == "HOME_NET").count(), 1);
        assert_eq!(
            load.classification,
            Some(root.join("etc/classification.config"))
        );
        // A rule the replay cannot load is a skip naming it, not a failure.
        let unloaded = |_: &RunRequest| -> Result<(), ReplayError> {
            Err(ReplayError::Unsupported("rule sid 7 not loaded: x".into()))
        };
        assert_eq!(
            run_case(&root, &name, &caps, &unloaded),
            Outcome::Skip("rule sid 7 not loaded: x".into())
        );
        // A field sekisho does not write in alerts is a skip even though the count is 0.
        let yaml2 = "checks:\n- filter:\n    count: 0\n    match:\n      event_type: alert\n      alert.metadata.x[0]: y\n";
        std::fs::write(root.join("tests/c/test.yaml"), yaml2).unwrap();
        assert!(
            matches!(run_case(&root, &name, &caps, &fake(eve)), Outcome::Skip(m) if m.contains("alert.metadata.x[0]"))
        );
        // A non-default action-order is not honoured: skip.
        std::fs::write(root.join("tests/c/test.yaml"), yaml).unwrap();
        std::fs::write(
            root.join("tests/c/suricata.yaml"),
            "action-order:\n  - drop\n  - pass\n  - reject\n  - alert\n",
        )
        .unwrap();
        assert!(
            matches!(run_case(&root, &name, &caps, &fake(eve)), Outcome::Skip(m) if m.contains("action-order"))
        );
        // The default order is fine, and a wrong signature id fails.
        std::fs::write(
            root.join("tests/c/suricata.yaml"),
            "action-order:\n  - pass\n  - drop\n  - reject\n  - alert\n",
        )
        .unwrap();
        let eve2 = "{\"event_type\":\"alert\",\"alert\":{\"signature_id\":8}}\n";
        assert!(matches!(
            run_case(&root, &name, &caps, &fake(eve2)),
            Outcome::Fail(m) if m.contains("expected 1 events, got 0")
        ));
        // A firewall.rules beside a test.rules is not a firewall-mode pair.
        std::fs::write(
            root.join("tests/c/firewall.rules"),
            "accept:hook tcp:all any any -> any any (sid:1;)\n",
        )
        .unwrap();
        assert!(matches!(
            run_case(&root, &name, &caps, &fake(eve)),
            Outcome::Skip(m) if m.contains("more than one rule file")
        ));
        // Without the firewall capability firewall-mode cases are not evaluated.
        std::fs::remove_file(root.join("tests/c/test.rules")).unwrap();
        assert_eq!(
            run_case(&root, &name, &caps, &fake(eve)),
            Outcome::Skip("firewall mode not evaluated".into())
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    fn firewall_caps() -> Capabilities {
        Capabilities {
            firewall: true,
            ..detect_caps()
        }
    }

    /// Runs the case with a replayer that records the request and writes `eve`.
    fn firewall_run(root: &Path, eve: &'static str) -> (Outcome, Option<RunRequest>) {
        let seen = std::cell::RefCell::new(None);
        let spy = |req: &RunRequest| {
            *seen.borrow_mut() = Some(req.clone());
            fake(eve)(req)
        };
        let o = run_case(root, "c", &firewall_caps(), &spy);
        (o, seen.into_inner())
    }

    #[test]
    fn firewall_mode_cases() {
        let eve = "{\"event_type\":\"alert\",\"alert\":{\"signature_id\":7}}\n";
        let yaml = "checks:\n- filter:\n    count: 1\n    match:\n      event_type: alert\n      alert.signature_id: 7\n";
        let fw = "accept:hook tcp:all any any -> any any (sid:7;)\n";
        let (root, _) = case(&[
            ("test.yaml", yaml),
            ("input.pcap", ""),
            ("firewall.rules", fw),
        ]);
        let dir = root.join("tests/c");
        // firewall.rules alone: firewall mode, no threat-detection rules, inline.
        let (o, req) = firewall_run(&root, eve);
        assert_eq!(o, Outcome::Pass);
        let req = req.unwrap();
        assert!(req.inline, "firewall mode is an IPS mode");
        let load = req.rules.unwrap();
        assert!(load.files.is_empty());
        assert_eq!(
            load.firewall,
            Some(FirewallLoad {
                rules: dir.join("firewall.rules"),
                packet_filter: None,
            })
        );
        // With td.rules: those are the threat-detection rules.
        std::fs::write(
            dir.join("td.rules"),
            "drop ip any any -> any any (sid:8;)\n",
        )
        .unwrap();
        let (o, req) = firewall_run(&root, eve);
        assert_eq!(o, Outcome::Pass);
        let load = req.unwrap().rules.unwrap();
        assert_eq!(load.files, vec![dir.join("td.rules")]);
        assert_eq!(
            load.firewall.map(|f| f.rules),
            Some(dir.join("firewall.rules"))
        );
        // An empty firewall.rules is still firewall mode (the default policies decide).
        std::fs::remove_file(dir.join("td.rules")).unwrap();
        std::fs::write(dir.join("firewall.rules"), "# nothing accepted\n").unwrap();
        let (o, req) = firewall_run(&root, eve);
        assert_eq!(o, Outcome::Pass);
        assert!(req.unwrap().rules.unwrap().firewall.is_some());
        std::fs::write(dir.join("firewall.rules"), fw).unwrap();
        // The packet:filter default is handed over as written; Suricata's default app
        // policy is accepted, any other app default skips naming the key.
        std::fs::write(
            dir.join("suricata.yaml"),
            "firewall:\n  enabled: yes\n  policies:\n    packet:\n      filter: [\"accept:hook\", \"alert\"]\n    app:\n      smtp:\n        request-data: [\"drop:flow\"]\n",
        )
        .unwrap();
        let (o, req) = firewall_run(&root, eve);
        assert_eq!(o, Outcome::Pass);
        assert_eq!(
            req.unwrap().rules.unwrap().firewall.unwrap().packet_filter,
            Some(vec!["accept:hook".to_string(), "alert".to_string()])
        );
        for (cfg, key) in [
            (
                "firewall:\n  policies:\n    app:\n      tls:\n        client-hello-done: [\"accept:hook\"]\n",
                "`firewall.policies.app.tls.client-hello-done`",
            ),
            (
                "firewall:\n  policies:\n    packet:\n      pre-flow: [\"drop:packet\"]\n",
                "`firewall.policies.packet.pre-flow`",
            ),
            (
                "firewall:\n  policies:\n    packet-filter: [\"drop:packet\"]\n",
                "`firewall.policies.packet-filter`",
            ),
            (
                "firewall:\n  policies:\n    packet:\n      filter: accept:hook\n",
                "`firewall.policies.packet.filter: accept:hook`",
            ),
            ("firewall:\n  mode: x\n", "`firewall.mode`"),
            ("firewall: true\n", "`firewall: true`"),
        ] {
            std::fs::write(dir.join("suricata.yaml"), cfg).unwrap();
            let (o, req) = firewall_run(&root, eve);
            assert!(
                matches!(&o, Outcome::Skip(m) if m.contains(key)),
                "{key}: {o:?}"
            );
            assert!(req.is_none(), "{key}: replayed");
        }
        // firewall.enabled without a firewall.rules: the rules would come from rule-files.
        std::fs::write(dir.join("suricata.yaml"), "firewall:\n  enabled: yes\n").unwrap();
        std::fs::remove_file(dir.join("firewall.rules")).unwrap();
        std::fs::write(dir.join("test.rules"), fw).unwrap();
        assert!(matches!(
            firewall_run(&root, eve).0,
            Outcome::Skip(m) if m.contains("firewall.enabled without a firewall.rules")
        ));
        // Two files that are not firewall.rules + td.rules are refused as before.
        std::fs::remove_file(dir.join("suricata.yaml")).unwrap();
        std::fs::write(dir.join("firewall.rules"), fw).unwrap();
        assert!(matches!(
            firewall_run(&root, eve).0,
            Outcome::Skip(m) if m.contains("more than one rule file")
        ));
        // What the replay cannot evaluate (an app protocol without hooks) is a skip.
        std::fs::remove_file(dir.join("test.rules")).unwrap();
        let unhooked = |_: &RunRequest| -> Result<(), ReplayError> {
            Err(ReplayError::Unsupported(
                "firewall app hooks of tls not evaluated".into(),
            ))
        };
        assert_eq!(
            run_case(&root, "c", &firewall_caps(), &unhooked),
            Outcome::Skip("firewall app hooks of tls not evaluated".into())
        );
        // Checks stay as strict as everywhere: a missing alert fails.
        let (o, _) = firewall_run(&root, "");
        assert!(matches!(o, Outcome::Fail(m) if m.contains("expected 1 events, got 0")));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn honest_outcomes() {
        let caps = Capabilities {
            counters: ["decoder.pkts".to_string()].into(),
            ..Capabilities::default()
        };
        let eve = "{\"event_type\":\"flow\",\"vlan\":[6]}\n{\"event_type\":\"stats\",\"stats\":{\"decoder\":{\"pkts\":3}}}\n";
        let yaml = "checks:\n- filter:\n    count: 1\n    match:\n      event_type: flow\n      vlan: [6]\n- stats:\n    decoder.pkts: 3\n";
        let (root, name) = case(&[("test.yaml", yaml), ("input.pcap", "")]);
        assert_eq!(run_case(&root, &name, &caps, &fake(eve)), Outcome::Pass);
        // Same checks, but the case has rules: detection is missing, so it is not a pass.
        std::fs::write(
            root.join("tests/c/test.rules"),
            "alert ip any any -> any any (sid:1;)\n",
        )
        .unwrap();
        assert!(
            matches!(run_case(&root, &name, &caps, &fake(eve)), Outcome::Skip(m) if m.contains("detection"))
        );
        std::fs::remove_file(root.join("tests/c/test.rules")).unwrap();
        // A counter sekisho does not have is a skip, not a pass or a fail.
        let yaml2 = "checks:\n- stats:\n    decoder.sll9: 3\n";
        std::fs::write(root.join("tests/c/test.yaml"), yaml2).unwrap();
        assert!(
            matches!(run_case(&root, &name, &caps, &fake(eve)), Outcome::Skip(m) if m.contains("decoder.sll9"))
        );
        // A wrong count fails and names expected and actual.
        let yaml3 = "checks:\n- filter:\n    count: 2\n    match:\n      event_type: flow\n";
        std::fs::write(root.join("tests/c/test.yaml"), yaml3).unwrap();
        assert!(
            matches!(run_case(&root, &name, &caps, &fake(eve)), Outcome::Fail(m) if m.contains("expected 2 events, got 1"))
        );
        // An event type sekisho does not write is skipped even for count: 0.
        let yaml4 = "checks:\n- filter:\n    count: 0\n    match:\n      event_type: alert\n";
        std::fs::write(root.join("tests/c/test.yaml"), yaml4).unwrap();
        assert!(matches!(
            run_case(&root, &name, &caps, &fake(eve)),
            Outcome::Skip(_)
        ));
        std::fs::remove_dir_all(&root).unwrap();
    }

    fn detect_caps() -> Capabilities {
        Capabilities {
            detection: true,
            event_types: ["flow", "alert", "drop", "smtp", "stats"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            ..Capabilities::default()
        }
    }

    #[test]
    fn filters_without_event_type() {
        let caps = detect_caps();
        let eve = concat!(
            "{\"event_type\":\"alert\",\"alert\":{\"signature_id\":1},\"smtp\":{\"helo\":\"h\"}}\n",
            "{\"event_type\":\"smtp\",\"smtp\":{\"helo\":\"h\"}}\n",
            "{\"event_type\":\"flow\",\"flow\":{\"pkts_toserver\":1}}\n",
        );
        let run = |yaml: &str| {
            let (root, name) = case(&[
                ("test.yaml", yaml),
                ("input.pcap", ""),
                ("test.rules", "alert ip any any -> any any (sid:1;)\n"),
            ]);
            std::fs::create_dir_all(root.join("etc")).unwrap();
            let out = run_case(&root, &name, &caps, &fake(eve));
            std::fs::remove_dir_all(&root).unwrap();
            out
        };
        let filter = |count: u32, m: &str| {
            format!("checks:\n- filter:\n    count: {count}\n    match:\n{m}")
        };
        // A key selects the records carrying it, whatever their type.
        assert_eq!(
            run(&filter(1, "      alert.signature_id: 1\n")),
            Outcome::Pass
        );
        assert_eq!(run(&filter(2, "      smtp.helo: h\n")), Outcome::Pass);
        assert!(matches!(
            run(&filter(1, "      smtp.helo: h\n")),
            Outcome::Fail(m) if m.contains("expected 1 events, got 2")
        ));
        assert_eq!(
            run(&filter(1, "      smtp.helo: h\n      has-key: alert\n")),
            Outcome::Pass
        );
        // Keys every record may have would count records sekisho does not write.
        assert!(matches!(
            run(&filter(1, "      pcap_cnt: 1\n")),
            Outcome::Skip(m) if m.contains("every record has")
        ));
        // A protocol sekisho does not log, or a field it does not write, stays a skip.
        assert_eq!(
            run(&filter(4, "      dns.type: request\n")),
            Outcome::Skip("event type `dns` not implemented".into())
        );
        assert!(matches!(
            run(&filter(1, "      alert.signature_id: 1\n      stream: 0\n")),
            Outcome::Skip(m) if m.contains("`stream`")
        ));
        assert!(matches!(
            run(&filter(1, "      smtp.helo: h\n      not-has-key: email.attachment\n")),
            Outcome::Skip(m) if m.contains("`email.attachment`")
        ));
    }

    #[test]
    fn drop_flows_all() {
        let cfg = "outputs:\n  - eve-log:\n      types:\n        - alert\n        - drop:\n            alerts: yes\n            flows: all\n";
        let eve = "{\"event_type\":\"drop\",\"drop\":{\"reason\":\"rules\"}}\n{\"event_type\":\"drop\",\"drop\":{\"reason\":\"flow drop\"}}\n";
        let yaml = "checks:\n- filter:\n    count: 2\n    match:\n      event_type: drop\n";
        let (root, name) = case(&[
            ("test.yaml", yaml),
            ("input.pcap", ""),
            ("test.rules", "drop ip any any -> any any (sid:1;)\n"),
            ("suricata.yaml", cfg),
        ]);
        std::fs::create_dir_all(root.join("etc")).unwrap();
        let mut caps = detect_caps();
        assert_eq!(
            run_case(&root, &name, &caps, &fake(eve)),
            Outcome::Skip("eve-log drop option `flows: all` not supported".into())
        );
        // "No drop at all" reads the same under `start` and `all`.
        let none = "checks:\n- filter:\n    count: 0\n    match:\n      event_type: drop\n";
        std::fs::write(root.join("tests/c/test.yaml"), none).unwrap();
        assert_eq!(
            run_case(&root, &name, &caps, &fake("{\"event_type\":\"flow\"}\n")),
            Outcome::Pass
        );
        // Once drop records honour it, the option reaches the replay and the case runs.
        std::fs::write(root.join("tests/c/test.yaml"), yaml).unwrap();
        caps.drop_flows_all = true;
        let seen = std::cell::Cell::new(false);
        let spy = |req: &RunRequest| {
            seen.set(req.drop_flows_all && req.drop);
            fake(eve)(req)
        };
        assert_eq!(run_case(&root, &name, &caps, &spy), Outcome::Pass);
        assert!(seen.get());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn app_layer_anomaly_filters() {
        let eve = "{\"event_type\":\"anomaly\",\"src_port\":49740,\"tx_id\":0,\"anomaly\":{\"app_proto\":\"smtp\",\"type\":\"applayer\",\"event\":\"INVALID_REPLY\",\"layer\":\"proto_parser\"}}\n";
        let named = "checks:\n- filter:\n    count: 1\n    match:\n      event_type: anomaly\n      anomaly.event: INVALID_REPLY\n      src_port: 49740\n";
        let (root, name) = case(&[("test.yaml", named), ("input.pcap", "")]);
        // Without app-layer anomaly support: skipped, and nothing asked of the replay.
        let mut caps = Capabilities::default();
        assert_eq!(
            run_case(&root, &name, &caps, &fake(eve)),
            Outcome::Skip("app-layer anomaly event `INVALID_REPLY` not implemented".into())
        );
        caps.app_anomaly_events = Capabilities::smtp_anomaly_events();
        // Suricata's default configuration logs app-layer anomalies: the replay is asked to.
        let asked = std::cell::Cell::new(false);
        let spy = |req: &RunRequest| {
            asked.set(req.anomaly_app && !req.anomaly_decode && !req.anomaly_stream);
            fake(eve)(req)
        };
        assert_eq!(run_case(&root, &name, &caps, &spy), Outcome::Pass);
        assert!(asked.get());
        assert!(matches!(
            run_case(&root, &name, &caps, &fake("{\"event_type\":\"flow\"}\n")),
            Outcome::Fail(_)
        ));
        // Unrestricted counts, other protocols, events sekisho does not raise, packet
        // numbers: skipped.
        for (m, why) in [
            ("event_type: anomaly\n", "not restricted"),
            (
                "event_type: anomaly\n      anomaly.app_proto: smtp\n",
                "not restricted",
            ),
            (
                "event_type: anomaly\n      anomaly.event: MIME_LONG_LINE\n",
                "MIME_LONG_LINE",
            ),
            (
                "event_type: anomaly\n      anomaly.app_proto: http\n      anomaly.event: INVALID_REPLY\n",
                "INVALID_REPLY",
            ),
            (
                "event_type: anomaly\n      anomaly.event: INVALID_REPLY\n      pcap_cnt: 7\n",
                "pcap_cnt",
            ),
        ] {
            let yaml = format!("checks:\n- filter:\n    count: 1\n    match:\n      {m}");
            std::fs::write(root.join("tests/c/test.yaml"), yaml).unwrap();
            let out = run_case(&root, &name, &caps, &fake(eve));
            assert!(matches!(&out, Outcome::Skip(r) if r.contains(why)), "{m}: {out}");
        }
        // "No app-layer anomaly at all" is evaluable, and fails on a spurious one.
        let none = "checks:\n- filter:\n    count: 0\n    match:\n      event_type: anomaly\n";
        std::fs::write(root.join("tests/c/test.yaml"), none).unwrap();
        assert_eq!(
            run_case(&root, &name, &caps, &fake("{\"event_type\":\"flow\"}\n")),
            Outcome::Pass
        );
        assert!(matches!(
            run_case(&root, &name, &caps, &fake(eve)),
            Outcome::Fail(_)
        ));
        // A config turning app-layer anomalies off makes every anomaly count evaluable.
        let off = "outputs:\n  - eve-log:\n      types:\n        - anomaly:\n            types:\n              applayer: no\n";
        std::fs::write(root.join("tests/c/suricata.yaml"), off).unwrap();
        let asked = std::cell::Cell::new(true);
        let spy = |req: &RunRequest| {
            asked.set(req.anomaly_app);
            fake("")(req)
        };
        assert_eq!(run_case(&root, &name, &caps, &spy), Outcome::Pass);
        assert!(!asked.get());
        std::fs::remove_dir_all(&root).unwrap();
    }

    /// Runs a one-case suite with `yaml` over the fixed `eve` output.
    fn outcome(
        caps: &Capabilities,
        yaml: &str,
        extra: &[(&str, &str)],
        eve: &'static str,
    ) -> Outcome {
        let mut files = vec![("test.yaml", yaml), ("input.pcap", "")];
        files.extend_from_slice(extra);
        let (root, name) = case(&files);
        let o = run_case(&root, &name, caps, &fake(eve));
        std::fs::remove_dir_all(&root).unwrap();
        o
    }

    fn all_caps() -> Capabilities {
        Capabilities {
            detection: true,
            event_types: [
                "flow", "netflow", "anomaly", "alert", "drop", "smtp", "stats",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            counters: ["decoder.pkts".to_string(), "flow.tcp".to_string()].into(),
            ..Capabilities::default()
        }
    }

    const ALL_TYPES_CFG: &str = "outputs:\n  - eve-log:\n      enabled: yes\n      types:\n        - alert\n        - drop:\n            alerts: yes\n        - flow\n        - netflow\n        - smtp\n        - stats\n        - anomaly:\n            types:\n              decode: yes\n              stream: yes\n              applayer: no\n";

    const ONE_OF_EACH: &str = concat!(
        "{\"event_type\":\"flow\",\"proto\":\"TCP\",\"flow\":{\"age\":1}}\n",
        "{\"event_type\":\"netflow\",\"netflow\":{\"pkts\":1}}\n",
        "{\"event_type\":\"anomaly\",\"anomaly\":{\"type\":\"decode\",\"event\":\"decoder.x\"}}\n",
        "{\"event_type\":\"alert\",\"alert\":{\"signature_id\":9}}\n",
        "{\"event_type\":\"drop\",\"drop\":{\"reason\":\"rules\"}}\n",
        "{\"event_type\":\"smtp\",\"smtp\":{\"helo\":\"h\"}}\n",
        "{\"event_type\":\"stats\",\"stats\":{\"uptime\":1,\"decoder\":{\"pkts\":3},\"flow\":{\"tcp\":1}}}\n",
    );

    fn filter(count: &str, lines: &[&str]) -> String {
        let mut y = format!("checks:\n- filter:\n    {count}\n    match:\n");
        for l in lines {
            y.push_str(&format!("      {l}\n"));
        }
        y
    }

    /// Rule: every record type sekisho writes has a field list; a probe on a field sekisho
    /// does not write skips the case (whatever the operator), a written one is evaluated.
    #[test]
    fn unwritten_fields_skip_for_every_record_type() {
        let caps = all_caps();
        let cfg = [("suricata.yaml", ALL_TYPES_CFG)];
        for (t, unwritten, written) in [
            ("flow", "flow.tx_cnt", "flow.age"),
            ("netflow", "netflow.tx_cnt", "netflow.pkts"),
            ("anomaly", "anomaly.code", "anomaly.event"),
            ("alert", "alert.metadata", "alert.signature_id"),
            ("drop", "drop.len", "drop.reason"),
            ("smtp", "smtp.rcpt_to_count", "smtp.helo"),
            ("stats", "stats.flow.tx_cnt", "stats.decoder.pkts"),
        ] {
            for probe in [
                format!("not-has-key: {unwritten}"),
                format!("has-key: {unwritten}"),
                format!("{unwritten}: 1"),
                format!("{unwritten}.__len: 1"),
                format!("{unwritten}.__gt: 1"),
            ] {
                let y = filter("count: 0", &[&format!("event_type: {t}"), &probe]);
                let o = outcome(&caps, &y, &cfg, ONE_OF_EACH);
                assert!(
                    matches!(&o, Outcome::Skip(m) if m.contains(unwritten)),
                    "{t} {probe}: {o}"
                );
            }
            // The same probe on a written field is evaluated: one record of the type has it.
            let y = filter(
                "count: 1",
                &[&format!("event_type: {t}"), &format!("has-key: {written}")],
            );
            assert_eq!(
                outcome(&caps, &y, &cfg, ONE_OF_EACH),
                Outcome::Pass,
                "{t} {written}"
            );
        }
        // A whole object compared or measured would depend on fields sekisho lacks.
        for probe in ["flow: {age: 1}", "flow.__len: 1", "alert.__len: 8"] {
            let t = probe.split(['.', ':']).next().unwrap_or_default();
            let y = filter("count: 0", &[&format!("event_type: {t}"), probe]);
            let o = outcome(&caps, &y, &cfg, ONE_OF_EACH);
            assert!(
                matches!(&o, Outcome::Skip(m) if m.contains("whole object")),
                "{probe}: {o}"
            );
        }
    }

    /// Rule: a filter's `requires` is evaluated like the case's: unmet versions leave the
    /// filter out, keys sekisho cannot evaluate skip the case naming the key.
    #[test]
    fn filter_requirements() {
        let caps = all_caps();
        let cfg = [("suricata.yaml", ALL_TYPES_CFG)];
        let with_req = |req: &str| {
            format!("checks:\n- filter:\n    count: 5\n    requires:\n      {req}\n    match:\n      event_type: flow\n")
        };
        for (req, key) in [
            ("env: [X]", "env"),
            ("script: [\"true\"]", "script"),
            ("lambda: \"True\"", "lambda"),
            ("files: [src/x.c]", "files"),
            ("command: [tshark]", "command"),
            ("no-such-key: 1", "no-such-key"),
        ] {
            let o = outcome(&caps, &with_req(req), &cfg, ONE_OF_EACH);
            assert!(
                matches!(&o, Outcome::Skip(m) if m.contains(&format!("`{key}`"))),
                "{req}: {o}"
            );
        }
        // Unmet: left out (the only check, so nothing applicable remains).
        for req in [
            "min-version: 9",
            "lt-version: 8",
            "gt-version: 8.0.7",
            "features: [HAVE_LUA]",
            "os: windows",
        ] {
            let o = outcome(&caps, &with_req(req), &cfg, ONE_OF_EACH);
            assert_eq!(o, Outcome::Skip("no applicable checks".into()), "{req}");
        }
        // Met: evaluated, and the wrong count fails.
        for req in [
            "min-version: 8",
            "lt-version: 9",
            "gt-version: 7",
            "version: 8.0",
            "os: linux",
        ] {
            let o = outcome(&caps, &with_req(req), &cfg, ONE_OF_EACH);
            assert!(
                matches!(&o, Outcome::Fail(m) if m.contains("expected 5 events, got 1")),
                "{req}: {o}"
            );
        }
    }

    /// Rule: `count == config["count"]` with Python equality; a missing count or match fails.
    #[test]
    fn count_is_compared_like_python() {
        let caps = all_caps();
        let cfg = [("suricata.yaml", ALL_TYPES_CFG)];
        let flow = ["event_type: flow"];
        for (count, pass) in [
            ("count: 1", true),
            ("count: 1.0", true),
            ("count: true", true), // True == 1 in Python
            ("count: \"1\"", false),
            ("count: 1.5", false),
            ("count: one", false),
            ("count: null", false),
            ("count: [1]", false),
        ] {
            let o = outcome(&caps, &filter(count, &flow), &cfg, ONE_OF_EACH);
            assert_eq!(o == Outcome::Pass, pass, "{count}: {o}");
        }
        let no_count = "checks:\n- filter:\n    match:\n      event_type: flow\n";
        let o = outcome(&caps, no_count, &cfg, ONE_OF_EACH);
        assert!(
            matches!(&o, Outcome::Fail(m) if m.contains("missing count")),
            "{o}"
        );
        let no_match = "checks:\n- filter:\n    count: 1\n    comment: x\n- filter:\n    count: 1\n    match:\n      event_type: flow\n";
        let o = outcome(&caps, no_match, &cfg, ONE_OF_EACH);
        assert!(
            matches!(&o, Outcome::Fail(m) if m.contains("missing match")),
            "{o}"
        );
    }

    /// Rule: typed equality in filters and stats (`"9"` is not 9), dotted operators evaluated.
    #[test]
    fn typed_values_and_operators_in_cases() {
        let caps = all_caps();
        let cfg = [("suricata.yaml", ALL_TYPES_CFG)];
        let alert = |m: &str| filter("count: 1", &["event_type: alert", m]);
        assert_eq!(
            outcome(&caps, &alert("alert.signature_id: 9"), &cfg, ONE_OF_EACH),
            Outcome::Pass
        );
        assert!(matches!(
            outcome(
                &caps,
                &alert("alert.signature_id: \"9\""),
                &cfg,
                ONE_OF_EACH
            ),
            Outcome::Fail(_)
        ));
        assert_eq!(
            outcome(
                &caps,
                &alert("alert.signature_id.__gte: 9"),
                &cfg,
                ONE_OF_EACH
            ),
            Outcome::Pass
        );
        let flow0 = |m: &str| filter("count: 0", &["event_type: flow", m]);
        assert!(matches!(
            outcome(&caps, &flow0("proto.__endswith: CP"), &cfg, ONE_OF_EACH),
            Outcome::Fail(_)
        ));
        assert_eq!(
            outcome(&caps, &flow0("proto.__endswith: UDP"), &cfg, ONE_OF_EACH),
            Outcome::Pass
        );
        // The glued spelling names a field no record has: a skip, not a vacuous pass.
        let o = outcome(&caps, &flow0("proto__endswith: CP"), &cfg, ONE_OF_EACH);
        assert!(
            matches!(&o, Outcome::Skip(m) if m.contains("proto.__endswith")),
            "{o}"
        );
        let stats = |body: &str| format!("checks:\n- stats:\n    {body}\n");
        assert_eq!(
            outcome(&caps, &stats("decoder.pkts: 3"), &cfg, ONE_OF_EACH),
            Outcome::Pass
        );
        assert!(matches!(
            outcome(&caps, &stats("decoder.pkts: \"3\""), &cfg, ONE_OF_EACH),
            Outcome::Fail(_)
        ));
        assert_eq!(
            outcome(&caps, &stats("decoder.pkts.__gt: 2"), &cfg, ONE_OF_EACH),
            Outcome::Pass
        );
        assert!(matches!(
            outcome(&caps, &stats("decoder.pkts.__lt: 2"), &cfg, ONE_OF_EACH),
            Outcome::Fail(_)
        ));
        let o = outcome(&caps, &stats("decoder: {pkts: 3}"), &cfg, ONE_OF_EACH);
        assert!(
            matches!(&o, Outcome::Skip(m) if m.contains("decoder")),
            "{o}"
        );
        // No stats record at all fails.
        let o = outcome(
            &caps,
            &stats("decoder.pkts: 3"),
            &cfg,
            "{\"event_type\":\"flow\"}\n",
        );
        assert!(
            matches!(&o, Outcome::Fail(m) if m.contains("no stats event")),
            "{o}"
        );
    }

    /// Rule: shell and file-compare checks are not evaluated, so the case is a skip that says
    /// why; so are values PyYAML reads differently and skip conditions sekisho cannot test.
    #[test]
    fn unevaluated_checks_skip_with_reason() {
        let caps = all_caps();
        let cfg = [("suricata.yaml", ALL_TYPES_CFG)];
        let shell = "checks:\n- filter:\n    count: 1\n    match:\n      event_type: flow\n- shell:\n    args: cat fast.log | wc -l\n    expect: 1\n";
        let o = outcome(&caps, shell, &cfg, ONE_OF_EACH);
        assert!(matches!(&o, Outcome::Skip(m) if m.contains("shell")), "{o}");
        let fc = "checks:\n- file-compare:\n    filename: x\n    expected: y\n";
        let o = outcome(&caps, fc, &cfg, ONE_OF_EACH);
        assert!(
            matches!(&o, Outcome::Skip(m) if m.contains("file-compare")),
            "{o}"
        );
        let yes = filter("count: 1", &["event_type: smtp", "smtp.helo: yes"]);
        let o = outcome(&caps, &yes, &cfg, ONE_OF_EACH);
        assert!(
            matches!(&o, Outcome::Skip(m) if m.contains("YAML 1.1")),
            "{o}"
        );
        for skip in ["uid: 0", "config:\n      stream.midstream: true"] {
            let y = format!(
                "skip:\n  - {skip}\n{}",
                filter("count: 1", &["event_type: flow"])
            );
            let o = outcome(&caps, &y, &cfg, ONE_OF_EACH);
            assert!(
                matches!(&o, Outcome::Skip(m) if m.contains("skip condition")),
                "{skip}: {o}"
            );
        }
    }
}
