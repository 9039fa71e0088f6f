//! `sekisho verify`: runs suricata-verify style cases against sekisho's replay, in-process.

use std::path::PathBuf;
use std::process::ExitCode;

use std::sync::Arc;

use sekisho_detect::firewall::DefaultPolicy;
use sekisho_detect::{parse_classification, CompileOptions, RuleSet};
use sekisho_eve::LogConfig;
use sekisho_policy::{GroupSource, LoadOptions, Policy, RuleGroup};
use sekisho_replay::ReplayOptions;
use sekisho_rules::{ActionKind, ActionScope, ActionSpec};
use sekisho_sensor::{Mode, Settings};
use sekisho_verify::{Capabilities, Outcome, ReplayError, RuleLoad, RunRequest};

const LONG_ABOUT: &str = "\
Run suricata-verify style conformance cases against sekisho.

Each case (a directory with test.yaml under SUITE/tests/) is run or skipped: a case needing
something sekisho does not implement yet (a Suricata feature, an argument or setting, a rule
that does not load, an event type or a field sekisho does not write, a counter, a shell or
file-compare check) is SKIPPED with the reason. A case's rules (test.rules or its `rules:`
file) are loaded with the variables of Suricata's default configuration (replaced by the
case's own `vars:`) and the suite's etc/classification.config, and evaluated.

A Suricata 8 firewall-mode case (firewall.rules, optionally with td.rules) runs inline with
firewall.rules as the policy's firewall rules and td.rules as its threat-detection rules;
firewall.policies.packet.filter sets the packet:filter default. It is SKIPPED when it needs
what sekisho's firewall does not do: the hooks of a protocol it has none for (all but SMTP
today), whether named in a rule, in a per-hook firewall.policies.app default, or spoken by
the capture's flows (including flows whose protocol sekisho does not identify);
pre-flow/pre-stream tables; an accept:packet or accept:flow default policy.

A case PASSES only when every applicable check was evaluated on sekisho's own EVE output and
held. Version requirements are evaluated as Suricata 8.0.7 (the SMTP behaviour sekisho
follows). A filter without `event_type` counts every record carrying its keys, as
suricata-verify does.
One line per case (`PASS name`, `FAIL name: why`, `SKIP name: why`), then
`N passed, N failed, N skipped`.

--suite defaults to ../shared/conformance/suricata-verify next to the repository root (found
by walking up from the current directory to the workspace Cargo.toml).

Exit status: 0 no case failed; 1 a case failed; 2 usage error (suite not found, unknown case).

Examples:
  sekisho verify                                   # every case
  sekisho verify netflow-eve eve-flow-vlan         # selected cases
  sekisho verify --list-passing tests/conformance/expected-pass.txt";

/// Arguments of `sekisho verify`.
#[derive(clap::Args)]
#[command(after_long_help = LONG_ABOUT)]
pub struct Args {
    /// Suite directory (holds tests/).
    #[arg(long, value_name = "DIR")]
    pub suite: Option<PathBuf>,
    /// Case names, paths under tests/ (e.g. netflow-eve, firewall/ruletype-firewall-04-ruleset-vs-sni).
    #[arg(value_name = "CASE")]
    pub cases: Vec<String>,
    /// Write the names of passing cases to FILE (one per line, sorted).
    #[arg(long, value_name = "FILE")]
    pub list_passing: Option<PathBuf>,
    /// Print only failures and the closing line.
    #[arg(long, short)]
    pub quiet: bool,
}

/// What sekisho can evaluate today.
pub fn capabilities() -> Capabilities {
    let mut caps = Capabilities {
        detection: true,
        firewall: true,
        app_layer: true,
        // `flows: all` is the detector's `drop.flows=all` setting.
        drop_flows_all: true,
        app_anomaly_events: Capabilities::smtp_anomaly_events(),
        ..Capabilities::default()
    };
    for t in ["alert", "drop", "smtp", "tls", "dns", "http"] {
        caps.event_types.insert(t.to_string());
    }
    let engine = sekisho_engine::Engine::new(sekisho_engine::EngineConfig::default());
    engine.stats().for_each(|k, _| {
        caps.counters.insert(k.to_string());
    });
    // The sensor's verdict counters (`ips.*`; `firewall.*` in firewall mode, the only
    // cases that check them).
    caps.counters
        .extend(sekisho_sensor::verdict_counter_names().map(str::to_string));
    caps
}

/// The firewall's `packet:filter` default policy from the case's
/// `firewall.policies.packet.filter` actions: a primary `drop`/`reject` (`:packet` or
/// `:flow`) or `accept:hook`, optionally followed by `alert`. Anything else (an
/// `accept:packet`/`accept:flow` default, which sekisho's firewall would treat as
/// `accept:hook`, or an unknown action) is unsupported, naming the key.
fn packet_filter_policy(actions: &[String]) -> Result<DefaultPolicy, ReplayError> {
    let unsupported = || {
        ReplayError::Unsupported(format!(
            "setting `firewall.policies.packet.filter: [{}]` not supported (sekisho's default \
             packet policy is drop, reject or accept:hook, with alert)",
            actions.join(", ")
        ))
    };
    let (primary, secondary) = actions.split_first().ok_or_else(unsupported)?;
    let (kind, scope) = match primary.trim() {
        "drop:packet" => (ActionKind::Drop, ActionScope::Packet),
        "drop:flow" => (ActionKind::Drop, ActionScope::Flow),
        "reject:packet" => (ActionKind::Reject, ActionScope::Packet),
        "reject:flow" => (ActionKind::Reject, ActionScope::Flow),
        "accept:hook" => (ActionKind::Accept, ActionScope::Hook),
        _ => return Err(unsupported()),
    };
    let mut alert = false;
    for a in secondary {
        match a.trim() {
            "alert" => alert = true,
            _ => return Err(unsupported()),
        }
    }
    Ok(DefaultPolicy {
        action: ActionSpec {
            kind,
            scope: Some(scope),
        },
        alert,
    })
}

/// The policy of a case's rules: with a firewall file, that file is the policy's
/// `firewall_rules` (even when it holds no `accept` rule, which plain rule loading would
/// take for threat-detection rules) and the others its threat-detection groups.
fn case_policy(load: &RuleLoad) -> Result<Policy, ReplayError> {
    let mut files: Vec<PathBuf> = load.firewall.iter().map(|f| f.rules.clone()).collect();
    files.extend(load.files.iter().cloned());
    let checked = Policy::check_rules_files(
        &files,
        &LoadOptions {
            vars: load.vars.clone(),
        },
    );
    if !checked.is_valid() {
        let first = checked
            .diagnostics
            .iter()
            .find(|d| d.is_error())
            .map(|d| d.message.clone())
            .unwrap_or_default();
        return Err(ReplayError::Unsupported(format!(
            "rules not accepted by sekisho: {first}"
        )));
    }
    let mut policy = checked.policy;
    if let Some(t) = &load.threshold_file {
        let diags = policy.set_threshold_file(t);
        if let Some(e) = diags.iter().find(|d| d.is_error()) {
            return Err(ReplayError::Unsupported(format!(
                "threshold file not accepted by sekisho: {}",
                e.message
            )));
        }
    }
    let Some(fw) = &load.firewall else {
        return Ok(policy);
    };
    let from_fw = |g: &RuleGroup| g.source == GroupSource::File(fw.rules.clone());
    match &policy.firewall_rules {
        Some(g) if from_fw(g) => {}
        Some(g) => {
            return Err(ReplayError::Unsupported(format!(
                "{} holds accept rules, which are only valid in firewall rules",
                g.name
            )))
        }
        None => {
            // No accept rule: the file was loaded as a threat-detection group. Without rules
            // it is an empty firewall table (the default policies decide); rules in it were
            // checked as threat-detection rules, not as firewall rules.
            match policy.rule_groups.iter().position(from_fw) {
                Some(i) if policy.rule_groups[i].rules.is_empty() => {
                    policy.firewall_rules = Some(policy.rule_groups.remove(i));
                }
                _ => {
                    return Err(ReplayError::Unsupported(
                        "firewall rules without an accept rule not supported (sekisho loads \
                         such a file as threat-detection rules)"
                            .into(),
                    ))
                }
            }
        }
    }
    Ok(policy)
}

/// Compiles a case's rules; a rule that is invalid or does not load makes the case a skip
/// naming the first such rule and the missing feature.
fn compile(load: &RuleLoad) -> Result<RuleSet, ReplayError> {
    let policy = case_policy(load)?;
    let firewall_packet_filter = match load
        .firewall
        .as_ref()
        .and_then(|f| f.packet_filter.as_ref())
    {
        Some(actions) => Some(packet_filter_policy(actions)?),
        None => None,
    };
    let classtypes = match &load.classification {
        Some(p) => parse_classification(
            &std::fs::read_to_string(p)
                .map_err(|e| ReplayError::Failed(format!("{}: {e}", p.display())))?,
        ),
        None => Vec::new(),
    };
    let rs = RuleSet::from_policy(
        &policy,
        CompileOptions {
            classtypes,
            firewall_packet_filter,
            ..CompileOptions::default()
        },
    );
    if let Some(n) = rs.not_loaded().first() {
        return Err(ReplayError::Unsupported(format!(
            "rule sid {} not loaded: {} ({})",
            n.sid, n.keyword, n.reason
        )));
    }
    Ok(rs)
}

/// Replays one case in-process.
pub fn replay_case(req: &RunRequest) -> Result<(), ReplayError> {
    let mut settings = Settings::new(if req.inline {
        Mode::Inline
    } else {
        Mode::Monitor
    });
    settings.checksums(!req.no_checksums);
    settings.detect.drop_flows_all = req.drop_flows_all;
    // The case's sensor settings (`stream.midstream`, `flow-timeouts.*`, ...) are parsed
    // here only, by the same `Settings::set` as `--set`: a value it rejects is a setting
    // sekisho cannot honour, so the case is skipped with that error, naming the key.
    for (k, v) in &req.sets {
        settings
            .set(k, v)
            .map_err(|e| ReplayError::Unsupported(e.to_string()))?;
    }
    let rules = match &req.rules {
        Some(load) => Some(Arc::new(compile(load)?)),
        None => None,
    };
    let opts = ReplayOptions {
        pcaps: req.pcaps.clone(),
        out_dir: req.out_dir.clone(),
        log: LogConfig {
            flow: req.flow,
            netflow: req.netflow,
            anomaly_decode: req.anomaly_decode,
            anomaly_stream: req.anomaly_stream,
            anomaly_app: req.anomaly_app,
            alert: req.alert,
            drop: req.drop,
            drop_flows_all: req.drop_flows_all,
            ..LogConfig::default()
        },
        settings,
        decode_only: false,
    };
    if let Some(rs) = rules.as_ref().filter(|r| r.firewall().is_some()) {
        firewall_app_protos(&opts, rs)?;
    }
    // Suricata processes what it can of a damaged capture and still logs; so do we: the
    // report's input errors do not fail the case, the checks decide.
    sekisho_replay::run(&opts, rules, None, &mut |_| {}, &mut std::io::sink())
        .map_err(|e| ReplayError::Failed(e.to_string()))?;
    Ok(())
}

/// Firewall mode applies the default app policy (`drop:flow`) at every hook of every
/// app-layer protocol a flow speaks; sekisho's firewall evaluates the hooks only of the
/// protocols whose registry entry names progress states. A capture with flows of another
/// protocol would be judged on a firewall that let them through, so the case is
/// unsupported, naming the protocol. So is a flow whose protocol sekisho could not identify
/// (`app_proto: failed`): Suricata parses protocols sekisho does not (SSH, FTP, HTTP/2, ...)
/// and would apply their hooks' default policy. The app protocols are taken from the flow
/// records of a replay with the case's rules and settings (into a scratch directory, so the
/// case's own `eve.json` keeps exactly the records it asked for).
fn firewall_app_protos(opts: &ReplayOptions, rules: &Arc<RuleSet>) -> Result<(), ReplayError> {
    let scratch = opts.out_dir.join("firewall-app-protos");
    std::fs::create_dir_all(&scratch)
        .map_err(|e| ReplayError::Failed(format!("{}: {e}", scratch.display())))?;
    let probe = ReplayOptions {
        out_dir: scratch.clone(),
        log: LogConfig {
            flow: true,
            netflow: false,
            stats: false,
            alert: false,
            drop: false,
            anomaly_decode: false,
            anomaly_stream: false,
            anomaly_app: false,
            ..LogConfig::default()
        },
        ..opts.clone()
    };
    let ran = sekisho_replay::run(
        &probe,
        Some(Arc::clone(rules)),
        None,
        &mut |_| {},
        &mut std::io::sink(),
    );
    let text = std::fs::read_to_string(scratch.join("eve.json"));
    let _ = std::fs::remove_dir_all(&scratch);
    ran.map_err(|e| ReplayError::Failed(e.to_string()))?;
    let text = text.map_err(|e| ReplayError::Failed(format!("flow records: {e}")))?;
    let hooked: Vec<&str> = sekisho_engine::app::PROTOCOLS
        .iter()
        .filter(|d| d.hooks.iter().any(|h| !h.is_empty()))
        .map(|d| d.name)
        .collect();
    let mut unhooked = std::collections::BTreeSet::new();
    for line in text.lines() {
        let Ok(rec) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if rec.get("event_type").and_then(|t| t.as_str()) != Some("flow") {
            continue;
        }
        for key in [
            "app_proto",
            "app_proto_ts",
            "app_proto_tc",
            "app_proto_orig",
        ] {
            if let Some(p) = rec.get(key).and_then(|v| v.as_str()) {
                if !hooked.contains(&p) && p != "unknown" {
                    unhooked.insert(p.to_string());
                }
            }
        }
    }
    if unhooked.remove("failed") && unhooked.is_empty() {
        return Err(ReplayError::Unsupported(
            "firewall app hooks of flows whose protocol sekisho did not identify (app_proto \
             failed) not evaluated (Suricata may parse it and apply its default app policy)"
                .into(),
        ));
    }
    if unhooked.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = unhooked.into_iter().collect();
    Err(ReplayError::Unsupported(format!(
        "firewall app hooks of {} not evaluated (the capture has such flows; Suricata applies \
         its default app policy there)",
        list.join(", ")
    )))
}

/// Runs `sekisho verify`.
pub fn run(args: Args) -> ExitCode {
    let suite = match args.suite.clone().or_else(|| {
        std::env::current_dir()
            .ok()
            .and_then(|d| sekisho_verify::default_suite(&d))
            .or_else(|| {
                std::env::current_exe()
                    .ok()
                    .and_then(|e| sekisho_verify::default_suite(&e))
            })
    }) {
        Some(s) => s,
        None => {
            eprintln!("sekisho verify: error: no suite found; pass --suite DIR (the suricata-verify checkout)");
            return ExitCode::from(2);
        }
    };
    if !suite.join("tests").is_dir() {
        eprintln!(
            "sekisho verify: error: {}: no tests/ directory",
            suite.display()
        );
        return ExitCode::from(2);
    }
    let caps = capabilities();
    let quiet = args.quiet;
    let summary = sekisho_verify::run_suite(&suite, &args.cases, &caps, &replay_case, |name, o| {
        if !quiet || matches!(o, Outcome::Fail(_)) {
            println!("{}", sekisho_verify::case_line(name, o));
        }
    });
    let summary = match summary {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sekisho verify: error: {}: {e}", suite.display());
            return ExitCode::from(2);
        }
    };
    println!("{}", summary.closing_line());
    if let Some(path) = &args.list_passing {
        let mut names: Vec<&str> = summary.passed().collect();
        names.sort();
        let mut text = names.join("\n");
        text.push('\n');
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("sekisho verify: error: {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    if summary
        .results
        .iter()
        .any(|(_, o)| matches!(o, Outcome::Fail(_)))
    {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
