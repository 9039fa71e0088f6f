//! The sensor's settings: one typed struct, filled once from the policy and every
//! `--set KEY=VALUE`, then handed to each part of the pipeline.

use sekisho_detect::{CompileOptions, DetectConfig, EstablishedScope};
use sekisho_engine::app::registry::PROTOCOLS;
use sekisho_engine::{
    AppProto, ChecksumMode, EngineConfig, ExceptionAction, ExceptionTarget, ProtocolMode,
};
use sekisho_policy::{EngineProfile, Policy};

/// How verdicts are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Like a live firewall (IPS): a dropped packet never reaches the receiver's stream or
    /// app layer, a flow drop drops the rest of the flow, rejects are answered.
    #[default]
    Inline,
    /// Only log what would be dropped (IDS).
    Monitor,
}

/// Every key `--set` takes, with what it expects (shown in errors and `--help`).
pub const SETTING_KEYS: &[(&str, &str)] = &[
    (
        "flow-timeouts.<default|tcp|udp|icmp>.<new|established|closed>",
        "seconds",
    ),
    ("flow.memcap", "bytes, or with kb/mb/gb (e.g. 128mb)"),
    ("flow.max-flows", "count"),
    (
        "stream.memcap",
        "size (default 64mb): TCP session state of all flows; a new session past it meets the stream_memcap policy",
    ),
    (
        "stream.reassembly.memcap",
        "size (default 64mb): out-of-order bytes buffered by all TCP streams",
    ),
    ("stream.midstream", "true|false"),
    (
        "defrag.memcap",
        "size (default 32mb): fragment bytes held by all datagrams being reassembled",
    ),
    (
        "defrag.trackers",
        "count (default 65535): datagrams being reassembled at once",
    ),
    ("decoder.recursion-level.use-for-tracking", "true|false"),
    ("decoder.vxlan.enabled", "true|false"),
    ("app-layer.enabled", "true|false"),
    (
        "app-layer.protocols.<name>.enabled",
        "yes|no|detection-only: one protocol parsed, not detected at all, or detected without a parser; a rule needing what is switched off is not loaded, and a drop rule among them fails the load unless --allow-unsupported (names: dns, tls, smtp, http, ssh)",
    ),
    (
        "app-layer.hold-memcap",
        "size (default 64mb): bytes all flows may hold while their protocol is unknown",
    ),
    (
        "app-layer.memcap",
        "size (default 64mb): parser state of all flows (transactions, recipient lists, headers, command queues, line buffers); a flow past it meets the app_layer_error policy",
    ),
    (
        "app-layer.smtp.server-banner",
        "true|false (false: Suricata 7 / AWS Network Firewall detection, from the client's first command only)",
    ),
    ("detect.stream-depth", "bytes, 0 = no limit"),
    (
        "drop.flows",
        "start|all: a drop record for the first dropped packet of each direction of a dropped flow (default), or for every one",
    ),
    (
        "exception-policy",
        "drop-flow|drop-packet|pass-flow|pass-packet|bypass|reject|ignore|auto (every target)",
    ),
    (
        "<stream.midstream|stream.memcap|stream.reassembly.memcap|flow.memcap|defrag.memcap>-policy, app-layer.error-policy",
        "one target's exception policy (Suricata's keys; docs/exception-policies.md)",
    ),
    (
        "detect.established-scope",
        "to_server|both (direction of NFW's *_established default actions)",
    ),
];

/// The names `app-layer.protocols.<name>.enabled` takes: every registered protocol, as EVE's
/// `app_proto` spells it.
pub fn app_protocol_names() -> Vec<&'static str> {
    PROTOCOLS.iter().map(|d| d.name).collect()
}

/// The exception target a Suricata `*-policy` setting key names.
fn exception_target(key: &str) -> Option<ExceptionTarget> {
    Some(match key {
        "stream.midstream-policy" => ExceptionTarget::StreamMidstream,
        "stream.memcap-policy" => ExceptionTarget::StreamMemcap,
        "stream.reassembly.memcap-policy" => ExceptionTarget::StreamReassemblyMemcap,
        "flow.memcap-policy" => ExceptionTarget::FlowMemcap,
        "defrag.memcap-policy" => ExceptionTarget::DefragMemcap,
        "app-layer.error-policy" => ExceptionTarget::AppLayerError,
        _ => return None,
    })
}

/// An exception action in Suricata's spelling.
fn exception_action(value: &str) -> Option<ExceptionAction> {
    ExceptionAction::parse(value)
}

/// A `--set` that could not be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingError {
    /// The key as given.
    pub key: String,
    /// The value as given.
    pub value: String,
    /// What was expected.
    pub expected: String,
}

impl std::fmt::Display for SettingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "--set {}={}: {}", self.key, self.value, self.expected)
    }
}

impl std::error::Error for SettingError {}

/// Everything that configures a [`crate::Sensor`], parsed once.
///
/// Build with [`Settings::new`], apply the policy ([`Settings::apply_policy`]) and then each
/// `--set` ([`Settings::set`]); the engine, compiler and detector configurations are derived
/// from it, so a setting (such as the mode) is decided in one place.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Inline or monitor.
    pub mode: Mode,
    /// Collect `--explain` lines.
    pub explain: bool,
    /// Engine configuration (its `inline` follows [`Settings::mode`]).
    pub engine: EngineConfig,
    /// Rule compilation options.
    pub compile: CompileOptions,
    /// Detection configuration (its `inline` and `explain` follow the fields above).
    pub detect: DetectConfig,
    /// The policy's rate limits (`rate_limits:`), evaluated before detection, in order.
    pub rate_limits: Vec<sekisho_policy::ratelimit::RateLimit>,
}

impl Settings {
    /// Defaults (Suricata 8's) in `mode`.
    pub fn new(mode: Mode) -> Settings {
        Settings {
            mode,
            explain: false,
            engine: EngineConfig::default(),
            compile: CompileOptions::default(),
            detect: DetectConfig::default(),
            rate_limits: Vec::new(),
        }
    }

    /// True in inline mode.
    pub fn inline(&self) -> bool {
        self.mode == Mode::Inline
    }

    /// Takes what the policy decides about the pipeline: its engine profile (AWS Network
    /// Firewall runs Suricata 7.0, which recognises SMTP from the client's first command
    /// only) and its exception policies.
    pub fn apply_policy(&mut self, policy: &Policy) {
        if policy.engine_profile == EngineProfile::AwsNfw {
            self.engine.app_layer.server_greeting_probe = false;
        }
        self.engine.exceptions = policy.exceptions();
        self.rate_limits = policy.rate_limits.clone();
    }

    /// Validate checksums (`true`, the default) or not (captures taken on the sending host).
    pub fn checksums(&mut self, on: bool) {
        self.engine.checksums = if on {
            ChecksumMode::Validate
        } else {
            ChecksumMode::None
        };
    }

    /// Applies one `--set KEY=VALUE` (keys: [`SETTING_KEYS`]).
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), SettingError> {
        let (key, value) = (key.trim(), value.trim());
        let err = |expected: &str| SettingError {
            key: key.to_string(),
            value: value.to_string(),
            expected: expected.to_string(),
        };
        let num = || value.parse::<u64>().map_err(|_| err("expected a number"));
        // Suricata's sizes: a number of bytes, or with kb/mb/gb (powers of 1024).
        let size = || {
            parse_size(value).ok_or_else(|| err("expected a size such as 134217728, 128mb or 1gb"))
        };
        // Suricata's spellings of a boolean (its ConfValIsTrue / ConfValIsFalse), any case.
        let flag = || match value.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Ok(true),
            "false" | "no" | "off" | "0" => Ok(false),
            _ => Err(err("expected true or false (also yes/no, on/off, 1/0)")),
        };
        let cfg = &mut self.engine;
        let parts: Vec<&str> = key.split('.').collect();
        match parts.as_slice() {
            ["flow-timeouts", class, state] => {
                let t = match *class {
                    "default" => &mut cfg.timeouts.default,
                    "tcp" => &mut cfg.timeouts.tcp,
                    "udp" => &mut cfg.timeouts.udp,
                    "icmp" => &mut cfg.timeouts.icmp,
                    _ => {
                        return Err(err(&format!(
                            "unknown protocol class `{class}` (default, tcp, udp, icmp)"
                        )))
                    }
                };
                match *state {
                    "new" => t.new = num()?,
                    "established" => t.established = num()?,
                    "closed" => t.closed = num()?,
                    _ => {
                        return Err(err(&format!(
                            "unknown state `{state}` (new, established, closed)"
                        )))
                    }
                }
            }
            ["decoder", "recursion-level", "use-for-tracking"] => {
                cfg.recursion_tracking = flag()?
            }
            ["decoder", "vxlan", "enabled"] => cfg.vxlan = flag()?,
            ["app-layer", "smtp", "server-banner"] => {
                cfg.app_layer.server_greeting_probe = flag()?
            }
            ["app-layer", "enabled"] => cfg.app_layer.enabled = flag()?,
            ["app-layer", "protocols", name, "enabled"] => {
                let proto = AppProto::from_name(name)
                    .filter(|p| p.def().is_some())
                    .ok_or_else(|| {
                        err(&format!(
                            "unknown protocol `{name}` (one of: {})",
                            app_protocol_names().join(", ")
                        ))
                    })?;
                let mode = match value {
                    "detection-only" => ProtocolMode::DetectionOnly,
                    _ => match flag() {
                        Ok(true) => ProtocolMode::On,
                        Ok(false) => ProtocolMode::Off,
                        Err(_) => return Err(err("expected yes, no or detection-only")),
                    },
                };
                cfg.app_layer.protocol_switches.set(proto, mode);
            }
            ["app-layer", "hold-memcap"] => cfg.app_layer.hold_memcap = size()?,
            ["app-layer", "memcap"] => cfg.app_layer.memcap = size()?,
            ["flow", "memcap"] => cfg.flow_memcap = size()?,
            ["stream", "memcap"] => cfg.stream_memcap = size()?,
            ["stream", "reassembly", "memcap"] => cfg.reassembly_memcap = size()?,
            ["flow", "max-flows"] => cfg.max_flows = Some(num()? as usize),
            ["stream", "midstream"] => cfg.midstream = flag()?,
            ["defrag", "memcap"] => cfg.defrag.memcap = size()?,
            ["defrag", "trackers"] => {
                cfg.defrag.max_trackers = usize::try_from(num()?).unwrap_or(usize::MAX)
            }
            ["detect", "stream-depth"] => self.detect.stream_depth = num()?,
            ["drop", "flows"] => {
                self.detect.drop_flows_all = match value {
                    "start" => false,
                    "all" => true,
                    _ => return Err(err("expected start or all")),
                }
            }
            ["exception-policy"] => {
                cfg.exceptions.master = exception_action(value).ok_or_else(|| {
                    err(&format!("expected one of: {}", ExceptionAction::NAMES.join(", ")))
                })?
            }
            _ if exception_target(key).is_some() => {
                let a = exception_action(value).ok_or_else(|| {
                    err(&format!("expected one of: {}", ExceptionAction::NAMES.join(", ")))
                })?;
                if let Some(t) = exception_target(key) {
                    cfg.exceptions.set(t, a);
                }
            }
            ["detect", "established-scope"] => {
                self.compile.established_scope = match value {
                    "to_server" => EstablishedScope::ToServer,
                    "both" => EstablishedScope::Both,
                    _ => return Err(err("expected to_server or both")),
                }
            }
            ["detect", ..] => {
                return Err(err(
                    "unknown detection setting (detect.established-scope=to_server|both, detect.stream-depth=BYTES, 0 = no limit)",
                ))
            }
            _ => {
                let known: Vec<&str> = SETTING_KEYS.iter().map(|(k, _)| *k).collect();
                return Err(err(&format!("unknown key (known: {})", known.join(", "))));
            }
        }
        Ok(())
    }

    /// Applies `KEY=VALUE` text as given on the command line.
    pub fn set_text(&mut self, kv: &str) -> Result<(), SettingError> {
        match kv.split_once('=') {
            Some((k, v)) => self.set(k, v),
            None => Err(SettingError {
                key: kv.to_string(),
                value: String::new(),
                expected: "expected KEY=VALUE".to_string(),
            }),
        }
    }

    /// The engine configuration, with the mode applied.
    pub fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            inline: self.inline(),
            ..self.engine.clone()
        }
    }

    /// The rule compiler's options, with explain applied.
    pub fn compile_options(&self) -> CompileOptions {
        CompileOptions {
            explain: self.explain,
            protocols: self.engine.app_layer.protocol_switches,
            ..self.compile.clone()
        }
    }

    /// The detector's configuration, with mode and explain applied.
    pub fn detect_config(&self) -> DetectConfig {
        DetectConfig {
            inline: self.inline(),
            explain: self.explain,
            ..self.detect.clone()
        }
    }
}

/// A size in Suricata's spelling: `134217728`, `128mb`, `64kb`, `1gb` (case-insensitive,
/// powers of 1024); `None` when malformed or too large.
fn parse_size(v: &str) -> Option<usize> {
    let v = v.trim().to_ascii_lowercase();
    let (digits, unit) = match v.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => v.split_at(i),
        None => (v.as_str(), ""),
    };
    let n: usize = digits.parse().ok()?;
    let mult: usize = match unit.trim() {
        "" | "b" => 1,
        "kb" | "k" | "kib" => 1 << 10,
        "mb" | "m" | "mib" => 1 << 20,
        "gb" | "g" | "gib" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_applies_and_bad_values_say_what_was_expected() {
        let mut s = Settings::new(Mode::Monitor);
        s.set("flow-timeouts.tcp.established", "7").unwrap();
        s.set("flow.max-flows", "10").unwrap();
        s.set("stream.midstream", "yes").unwrap();
        s.set("decoder.vxlan.enabled", "Off").unwrap();
        assert!(!s.engine.vxlan);
        s.set("decoder.vxlan.enabled", "on").unwrap();
        assert!(s.engine.vxlan);
        assert!(s.set("decoder.vxlan.enabled", "maybe").is_err());
        s.set("app-layer.smtp.server-banner", "false").unwrap();
        s.set("detect.stream-depth", "0").unwrap();
        s.set("detect.established-scope", "both").unwrap();
        s.set("stream.memcap", "2mb").unwrap();
        s.set("stream.reassembly.memcap", "3mb").unwrap();
        s.set("app-layer.memcap", "5mb").unwrap();
        s.set("stream.memcap-policy", "drop-packet").unwrap();
        assert_eq!(s.engine.stream_memcap, 2 << 20);
        assert_eq!(s.engine.reassembly_memcap, 3 << 20);
        assert_eq!(s.engine.app_layer.memcap, 5 << 20);
        assert_eq!(
            s.engine
                .exceptions
                .resolve(ExceptionTarget::StreamMemcap, true),
            ExceptionAction::DropPacket
        );
        assert!(s.set("app-layer.memcap", "lots").is_err());
        assert_eq!(s.engine.timeouts.tcp.established, 7);
        assert_eq!(s.engine.max_flows, Some(10));
        assert!(s.engine.midstream);
        assert!(!s.engine.app_layer.server_greeting_probe);
        assert_eq!(s.detect.stream_depth, 0);
        assert_eq!(s.compile.established_scope, EstablishedScope::Both);
        assert!(!s.engine_config().inline && !s.detect_config().inline);
        let e = s.set("flow.max-flows", "lots").unwrap_err();
        assert_eq!(
            e.to_string(),
            "--set flow.max-flows=lots: expected a number"
        );
        let e = s.set("detect.nope", "1").unwrap_err();
        assert!(e.expected.starts_with("unknown detection setting"), "{e}");
        let e = s.set("flow.nope", "1").unwrap_err();
        assert!(
            e.expected.starts_with("unknown key (known: flow-timeouts."),
            "{e}"
        );
        assert!(s.set_text("stream.midstream").is_err());
    }

    #[test]
    fn protocol_switches_take_suricata_values_and_the_help_names_every_protocol() {
        let mut s = Settings::new(Mode::Monitor);
        s.set("app-layer.protocols.http.enabled", "no").unwrap();
        s.set("app-layer.protocols.tls.enabled", "detection-only")
            .unwrap();
        s.set("app-layer.protocols.dns.enabled", "yes").unwrap();
        let sw = s.engine.app_layer.protocol_switches;
        assert_eq!(sw.mode(AppProto::Http), ProtocolMode::Off);
        assert_eq!(sw.mode(AppProto::Tls), ProtocolMode::DetectionOnly);
        assert_eq!(sw.mode(AppProto::Dns), ProtocolMode::On);
        assert_eq!(sw.mode(AppProto::Smtp), ProtocolMode::On);
        // The last value wins.
        s.set("app-layer.protocols.http.enabled", "true").unwrap();
        assert_eq!(
            s.engine.app_layer.protocol_switches.mode(AppProto::Http),
            ProtocolMode::On
        );
        let e = s
            .set("app-layer.protocols.failed.enabled", "no")
            .unwrap_err();
        assert!(e.expected.starts_with("unknown protocol `failed`"), "{e}");
        let help = SETTING_KEYS
            .iter()
            .find(|(k, _)| *k == "app-layer.protocols.<name>.enabled")
            .expect("documented")
            .1;
        assert!(
            help.ends_with(&format!("(names: {})", app_protocol_names().join(", "))),
            "{help}"
        );
    }

    #[test]
    fn memcap_takes_suricata_sizes() {
        let mut s = Settings::new(Mode::Monitor);
        s.set("flow.memcap", "16mb").expect("16mb");
        assert_eq!(s.engine.flow_memcap, 16 << 20);
        s.set("flow.memcap", "1GB").expect("1GB");
        assert_eq!(s.engine.flow_memcap, 1 << 30);
        s.set("flow.memcap", "65536").expect("bytes");
        assert_eq!(s.engine.flow_memcap, 65536);
        let e = s.set("flow.memcap", "12 parsecs").expect_err("bad unit");
        assert!(e.expected.contains("128mb"), "{e:?}");
        assert!(s.set("flow.memcap", "99999999999999999999gb").is_err());
    }
}
