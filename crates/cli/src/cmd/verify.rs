//! `sekisho verify`: runs suricata-verify style cases against sekisho's replay, in-process.

use std::path::PathBuf;
use std::process::ExitCode;

use std::sync::Arc;

use sekisho_detect::{parse_classification, CompileOptions, RuleSet};
use sekisho_eve::LogConfig;
use sekisho_policy::{LoadOptions, Policy};
use sekisho_replay::ReplayOptions;
use sekisho_sensor::{Mode, Settings};
use sekisho_verify::{Capabilities, Outcome, ReplayError, RuleLoad, RunRequest};

const LONG_ABOUT: &str = "\
Run suricata-verify style conformance cases against sekisho.

Each case (a directory with test.yaml under SUITE/tests/) is run or skipped: a case needing
something sekisho does not implement yet (a Suricata feature, an argument or setting, a rule
that does not load, firewall mode, an event type or a field sekisho does not write, a counter,
a shell or file-compare check) is SKIPPED with the reason. A case's rules (test.rules or its
`rules:` file) are loaded with the variables of Suricata's default configuration (replaced by
the case's own `vars:`) and the suite's etc/classification.config, and evaluated. A case
PASSES only when every applicable check was evaluated on sekisho's own EVE output and held.
Version requirements are evaluated as Suricata 8.0.7 (the SMTP behaviour sekisho follows). A
filter without `event_type` counts every record carrying its keys, as suricata-verify does.
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
        app_layer: true,
        // Drop records follow `flows: start` whatever LogConfig::drop_flows_all says, until
        // the engine logs every dropped packet for `flows: all`.
        drop_flows_all: false,
        app_anomaly_events: Capabilities::smtp_anomaly_events(),
        ..Capabilities::default()
    };
    for t in ["alert", "drop", "smtp"] {
        caps.event_types.insert(t.to_string());
    }
    let engine = sekisho_engine::Engine::new(sekisho_engine::EngineConfig::default());
    engine.stats().for_each(|k, _| {
        caps.counters.insert(k.to_string());
    });
    caps
}

/// Compiles a case's rules; a rule that is invalid or does not load makes the case a skip
/// naming the first such rule and the missing feature.
fn compile(load: &RuleLoad) -> Result<RuleSet, ReplayError> {
    let checked = Policy::check_rules_files(
        &load.files,
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
    let classtypes = match &load.classification {
        Some(p) => parse_classification(
            &std::fs::read_to_string(p)
                .map_err(|e| ReplayError::Failed(format!("{}: {e}", p.display())))?,
        ),
        None => Vec::new(),
    };
    let rs = RuleSet::from_policy(
        &checked.policy,
        CompileOptions {
            classtypes,
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
    settings.engine.midstream = req.midstream;
    for (k, v) in &req.sets {
        settings
            .set(k, v)
            .map_err(|e| ReplayError::Failed(e.to_string()))?;
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
    // Suricata processes what it can of a damaged capture and still logs; so do we: the
    // report's input errors do not fail the case, the checks decide.
    sekisho_replay::run(&opts, rules, None, &mut |_| {}, &mut std::io::sink())
        .map_err(|e| ReplayError::Failed(e.to_string()))?;
    Ok(())
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
