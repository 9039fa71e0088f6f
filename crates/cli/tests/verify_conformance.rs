//! The conformance regression test and the runner's honesty tests.
//!
//! `expected_cases_hold` runs every suricata-verify case in `../shared/conformance` (or
//! `$SEKISHO_SHARED/conformance`) with `sekisho verify` and fails on any FAIL not listed in
//! `tests/conformance/expected-fail.txt`, on any case of `tests/conformance/expected-pass.txt`
//! that no longer passes, and on an exit status that does not match the failures; it prints
//! new passes and new failures so the lists can be updated (`sekisho verify --list-passing
//! FILE`). With `CI` set, a missing suite fails the test.
//!
//! The `loophole_*` tests copy a passing case (`tcp-fastopen-05`) into a temporary suite,
//! corrupt its `test.yaml` in one of the ways the runner used to accept, and check that the
//! runner no longer passes it (pristine copy: PASS).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;

const SUITE: &str = "conformance/suricata-verify";

fn read_list(name: &str) -> BTreeSet<String> {
    let path = sekisho_testutil::repo_root()
        .join("tests/conformance")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// What a `sekisho verify` run printed and returned.
struct Run {
    status: Option<i32>,
    stdout: String,
}

/// The verdict on a run: `errors` fail the test, `notes` are printed.
#[derive(Debug, Default)]
struct Verdict {
    errors: Vec<String>,
    notes: Vec<String>,
}

/// Compares a run with the expected lists.
fn judge(run: &Run, expected_pass: &BTreeSet<String>, expected_fail: &BTreeSet<String>) -> Verdict {
    let mut v = Verdict::default();
    let mut pass = BTreeSet::new();
    let mut fail = BTreeSet::new();
    let mut skip = BTreeSet::new();
    let mut closing = None;
    let name_of = |rest: &str| {
        rest.split_once(": ")
            .map_or(rest, |(n, _)| n)
            .trim()
            .to_string()
    };
    for line in run.stdout.lines() {
        if let Some(n) = line.strip_prefix("PASS ") {
            pass.insert(n.trim().to_string());
        } else if let Some(rest) = line.strip_prefix("FAIL ") {
            fail.insert(name_of(rest));
        } else if let Some(rest) = line.strip_prefix("SKIP ") {
            skip.insert(name_of(rest));
        } else {
            closing = Some(line.to_string());
        }
    }
    let line_of = |c: &str| {
        run.stdout
            .lines()
            .find(|l| l.split_whitespace().nth(1).map(|n| n.trim_end_matches(':')) == Some(c))
            .map(|l| l.chars().take(300).collect::<String>())
            .unwrap_or_else(|| format!("{c}: not reported"))
    };
    let want_closing = format!(
        "{} passed, {} failed, {} skipped",
        pass.len(),
        fail.len(),
        skip.len()
    );
    if closing.as_deref() != Some(want_closing.as_str()) {
        v.errors.push(format!(
            "closing line {closing:?} does not match the case lines ({want_closing})"
        ));
    }
    for c in expected_pass.intersection(expected_fail) {
        v.errors.push(format!(
            "{c} is listed in both expected-pass.txt and expected-fail.txt"
        ));
    }
    for c in fail.difference(expected_fail) {
        v.errors.push(format!(
            "new failure (fix it, or list it in tests/conformance/expected-fail.txt): {}",
            line_of(c)
        ));
    }
    for c in expected_pass.difference(&pass) {
        v.errors
            .push(format!("expected pass no longer passes: {}", line_of(c)));
    }
    let want_status = if fail.is_empty() { 0 } else { 1 };
    if run.status != Some(want_status) {
        v.errors.push(format!(
            "exit status {:?}, expected {want_status} ({} failed)",
            run.status,
            fail.len()
        ));
    }
    for c in pass.difference(expected_pass) {
        v.notes.push(format!(
            "newly passing (add to tests/conformance/expected-pass.txt): {c}"
        ));
    }
    for c in expected_fail.difference(&fail) {
        v.notes.push(format!(
            "listed failure no longer fails (remove from expected-fail.txt): {}",
            line_of(c)
        ));
    }
    v
}

fn verify(suite: &Path, cases: &[&str]) -> Run {
    let out = Command::cargo_bin("sekisho")
        .expect("sekisho binary")
        .arg("verify")
        .arg("--suite")
        .arg(suite)
        .args(cases)
        .output()
        .expect("run sekisho verify");
    Run {
        status: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
    }
}

#[test]
fn expected_cases_hold() {
    let Some(suite) = sekisho_testutil::require_shared(SUITE) else {
        return;
    };
    let expected_pass = read_list("expected-pass.txt");
    let expected_fail = read_list("expected-fail.txt");
    assert!(!expected_pass.is_empty(), "expected-pass.txt is empty");
    let run = verify(&suite, &[]);
    eprintln!("{}", run.stdout.lines().last().unwrap_or_default());
    let verdict = judge(&run, &expected_pass, &expected_fail);
    for n in &verdict.notes {
        eprintln!("{n}");
    }
    assert!(
        verdict.errors.is_empty(),
        "conformance regressions:\n{}",
        verdict.errors.join("\n")
    );
}

fn out(stdout: &str, status: i32) -> Run {
    Run {
        status: Some(status),
        stdout: stdout.to_string(),
    }
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Loophole: the regression test ignored new FAILs and the exit status.
#[test]
fn loophole_regression_test_catches_new_failures_and_exit_status() {
    let good = "PASS a\nFAIL b: check 1: x\nSKIP c: y\n1 passed, 1 failed, 1 skipped\n";
    let v = judge(&out(good, 1), &set(&["a"]), &set(&["b"]));
    assert!(v.errors.is_empty(), "{:?}", v.errors);

    // A FAIL not listed in expected-fail.txt (smtp-long-command was green this way).
    let v = judge(&out(good, 1), &set(&["a"]), &set(&[]));
    assert!(v
        .errors
        .iter()
        .any(|e| e.contains("new failure") && e.contains("b")));

    // An exit status that does not match the failures.
    let v = judge(&out(good, 0), &set(&["a"]), &set(&["b"]));
    assert!(v.errors.iter().any(|e| e.contains("exit status")));
    let clean = "PASS a\n1 passed, 0 failed, 0 skipped\n";
    assert!(!judge(&out(clean, 1), &set(&["a"]), &set(&[]))
        .errors
        .is_empty());
    assert!(!judge(&out(clean, 2), &set(&["a"]), &set(&[]))
        .errors
        .is_empty());

    // A listed pass that now skips or fails.
    let v = judge(
        &out("SKIP a: z\n0 passed, 0 failed, 1 skipped\n", 0),
        &set(&["a"]),
        &set(&[]),
    );
    assert!(v.errors.iter().any(|e| e.contains("no longer passes")));

    // A closing line that disagrees with the case lines.
    let v = judge(
        &out("PASS a\n2 passed, 0 failed, 0 skipped\n", 0),
        &set(&["a"]),
        &set(&[]),
    );
    assert!(v.errors.iter().any(|e| e.contains("closing line")));

    // New passes and fixed failures are reported, not errors.
    let v = judge(
        &out("PASS a\nPASS b\n2 passed, 0 failed, 0 skipped\n", 0),
        &set(&["a"]),
        &set(&["b"]),
    );
    assert!(v.errors.is_empty(), "{:?}", v.errors);
    assert_eq!(v.notes.len(), 2, "{:?}", v.notes);
}

/// A temporary suite holding copies of `tcp-fastopen-05` under new names.
struct TempSuite {
    root: tempfile::TempDir,
    original: PathBuf,
}

impl TempSuite {
    fn new() -> Option<TempSuite> {
        let suite = sekisho_testutil::require_shared(SUITE)?;
        let root = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(root.path().join("etc")).expect("etc");
        std::fs::copy(
            suite.join("etc/classification.config"),
            root.path().join("etc/classification.config"),
        )
        .expect("classification.config");
        Some(TempSuite {
            root,
            original: suite.join("tests/tcp-fastopen-05"),
        })
    }

    /// Copies the case as `name` with `edit` applied to its test.yaml.
    fn case(&self, name: &str, edit: impl Fn(&str) -> String) -> &Self {
        let dir = self.root.path().join("tests").join(name);
        std::fs::create_dir_all(&dir).expect("case dir");
        for f in ["test.rules", "tfo.pcap"] {
            std::fs::copy(self.original.join(f), dir.join(f)).expect("copy case file");
        }
        let yaml = std::fs::read_to_string(self.original.join("test.yaml")).expect("test.yaml");
        std::fs::write(dir.join("test.yaml"), edit(&yaml)).expect("write test.yaml");
        self
    }

    fn outcome(&self, name: &str) -> String {
        let run = verify(self.root.path(), &[name]);
        run.stdout.lines().next().unwrap_or_default().to_string()
    }
}

const FIRST_FILTER: &str =
    "      count: 2\n      match:\n        event_type: alert\n        alert.signature_id: 1\n";

fn replace(yaml: &str, from: &str, to: &str) -> String {
    assert!(
        yaml.contains(from),
        "tcp-fastopen-05/test.yaml changed: {from:?} not found"
    );
    yaml.replace(from, to)
}

fn add_filter(yaml: &str, filter: &str) -> String {
    format!("{}\n  - filter:\n{filter}", yaml.trim_end())
}

#[test]
fn loophole_control_pristine_copy_passes() {
    let Some(s) = TempSuite::new() else { return };
    s.case("pristine", |y| y.to_string());
    assert_eq!(s.outcome("pristine"), "PASS pristine");
}

/// Loophole: `alert.signature_id: "1"` matched the integer 1.
#[test]
fn loophole_string_does_not_equal_integer() {
    let Some(s) = TempSuite::new() else { return };
    s.case("typed", |y| {
        replace(y, "alert.signature_id: 1\n", "alert.signature_id: \"1\"\n")
    });
    let o = s.outcome("typed");
    assert!(o.starts_with("FAIL typed: check 1:"), "{o}");
    assert!(o.ends_with("expected 2 events, got 0"), "{o}");
}

/// Loophole: `proto.__endswith` looked up `proto.`, so `count: 0` held vacuously.
#[test]
fn loophole_dotted_operator_is_evaluated() {
    let Some(s) = TempSuite::new() else { return };
    for (name, key, value) in [
        ("endswith", "proto.__endswith", "CP"),
        ("startswith", "proto.__startswith", "TC"),
        ("find", "proto.__find", "C"),
        ("contains", "proto.__contains", "TCP"),
        ("len", "proto.__len", "3"),
        ("gt", "flow.pkts_toserver.__gt", "0"),
    ] {
        let filter = format!(
            "      count: 0\n      match:\n        event_type: flow\n        {key}: {value}\n"
        );
        s.case(name, |y| add_filter(y, &filter));
        let o = s.outcome(name);
        assert!(
            o.starts_with(&format!("FAIL {name}: check 3:"))
                && o.ends_with("expected 0 events, got 2"),
            "{key}: {o}"
        );
    }
}

/// Loophole: a filter-level `requires` with an unknown key dropped the filter.
#[test]
fn loophole_unknown_filter_requirement_skips_case() {
    let Some(s) = TempSuite::new() else { return };
    let filter = "      count: 99\n      requires:\n        env:\n          - SEKISHO_NO_SUCH_VAR\n      match:\n        event_type: alert\n";
    s.case("requires", |y| add_filter(y, filter));
    let o = s.outcome("requires");
    assert!(
        o.starts_with("SKIP requires:") && o.contains("`env`"),
        "{o}"
    );
    // A version requirement that does not hold leaves the filter out, as suricata-verify does.
    let filter = "      count: 99\n      requires:\n        min-version: 99\n      match:\n        event_type: alert\n";
    s.case("requires-version", |y| add_filter(y, filter));
    assert_eq!(s.outcome("requires-version"), "PASS requires-version");
}

/// Loophole: `--set stream.midstream=VALUE` with a value that is not a boolean meant
/// `false`. The sensor's settings parse it now, with the error `sekisho replay --set` gives;
/// like every setting the runner cannot honour, it skips the case naming the key.
#[test]
fn loophole_bad_midstream_value_is_reported() {
    let Some(s) = TempSuite::new() else { return };
    let args = "-k none --simulate-ips";
    s.case("midstream-bad", |y| {
        replace(y, args, &format!("{args} --set stream.midstream=maybe"))
    });
    assert_eq!(
        s.outcome("midstream-bad"),
        "SKIP midstream-bad: --set stream.midstream=maybe: expected true or false (also yes/no, on/off, 1/0)"
    );
    // Control: the same case with a boolean still runs and passes.
    s.case("midstream-yes", |y| {
        replace(y, args, &format!("{args} --set stream.midstream=yes"))
    });
    assert_eq!(s.outcome("midstream-yes"), "PASS midstream-yes");
}

/// Loophole: a `count` that is not an integer was read as "at least one".
#[test]
fn loophole_malformed_count_fails() {
    let Some(s) = TempSuite::new() else { return };
    for (name, count) in [
        ("quoted", "count: \"2\""),
        ("fraction", "count: 2.5"),
        ("text", "count: many"),
    ] {
        s.case(name, |y| {
            replace(y, FIRST_FILTER, &FIRST_FILTER.replace("count: 2", count))
        });
        let o = s.outcome(name);
        assert!(
            o.starts_with(&format!("FAIL {name}: check 1:")),
            "{count}: {o}"
        );
    }
    s.case("missing", |y| {
        replace(
            y,
            FIRST_FILTER,
            &FIRST_FILTER.replace("      count: 2\n", ""),
        )
    });
    let o = s.outcome("missing");
    assert!(
        o.starts_with("FAIL missing: check 1: filter check missing count"),
        "{o}"
    );
}

/// Loophole: fields of flow records were not checked against what sekisho writes, so a
/// probe on `flow.tx_cnt` (which Suricata writes) held vacuously.
#[test]
fn loophole_unwritten_flow_field_skips_case() {
    let Some(s) = TempSuite::new() else { return };
    for (name, m) in [
        ("has-tx-cnt", "has-key: flow.tx_cnt"),
        ("not-has-tx-cnt", "not-has-key: flow.tx_cnt"),
        ("tx-cnt-value", "flow.tx_cnt: 3"),
        ("whole-flow", "flow.__len: 12"),
    ] {
        let filter =
            format!("      count: 0\n      match:\n        event_type: flow\n        {m}\n");
        s.case(name, |y| add_filter(y, &filter));
        let o = s.outcome(name);
        assert!(
            o.starts_with(&format!("SKIP {name}:")) && o.contains("sekisho's flow records"),
            "{m}: {o}"
        );
    }
}

/// Loophole: a firewall-mode case whose capture speaks an app protocol sekisho's firewall has
/// no hooks for (TLS here) was judged on a firewall that let that protocol through, where
/// Suricata's default app policy drops it; with a check that holds vacuously (no alert) it
/// passed. A `packet:filter` default sekisho cannot honour must skip too, naming the key.
#[test]
fn loophole_firewall_cases_sekisho_cannot_evaluate_skip() {
    let Some(suite) = sekisho_testutil::require_shared(SUITE) else {
        return;
    };
    let root = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(root.path().join("etc")).expect("etc");
    std::fs::copy(
        suite.join("etc/classification.config"),
        root.path().join("etc/classification.config"),
    )
    .expect("classification.config");
    let tests = suite.join("tests");
    let fw60 = tests.join("firewall/ruletype-firewall-60-no-app-rules");
    let smtp = tests.join("firewall/ruletype-firewall-122-smtp");
    let vacuous =
        "args:\n  - -k none\nchecks:\n- filter:\n    count: 0\n    match:\n      event_type: alert\n      alert.signature_id: 1\n";
    let make = |name: &str, pcap: PathBuf, extra_config: &str| {
        let dir = root.path().join("tests").join(name);
        std::fs::create_dir_all(&dir).expect("case dir");
        std::fs::copy(fw60.join("firewall.rules"), dir.join("firewall.rules")).expect("rules");
        std::fs::copy(&pcap, dir.join("input.pcap")).expect("pcap");
        let cfg = std::fs::read_to_string(fw60.join("suricata.yaml")).expect("suricata.yaml");
        std::fs::write(dir.join("suricata.yaml"), format!("{cfg}\n{extra_config}"))
            .expect("write suricata.yaml");
        std::fs::write(dir.join("test.yaml"), vacuous).expect("write test.yaml");
    };
    make(
        "fw-tls",
        tests.join("tls/tls-client-hello-frag-01/dump_mtu300.pcap"),
        "",
    );
    make(
        "fw-smtp",
        smtp.join("smtp-simple-session.pcap"),
        "firewall:\n  enabled: yes\n",
    );
    make(
        "fw-smtp-accept-flow",
        smtp.join("smtp-simple-session.pcap"),
        "firewall:\n  policies:\n    packet:\n      filter: [\"accept:flow\"]\n",
    );
    let run = verify(root.path(), &["fw-tls", "fw-smtp", "fw-smtp-accept-flow"]);
    let line = |name: &str| {
        run.stdout
            .lines()
            .find(|l| l.split_whitespace().nth(1).map(|n| n.trim_end_matches(':')) == Some(name))
            .unwrap_or_default()
            .to_string()
    };
    let tls = line("fw-tls");
    assert!(
        tls.starts_with("SKIP fw-tls:") && tls.contains("firewall app hooks of tls"),
        "{tls}"
    );
    // Control: the same rules on SMTP, whose hooks are evaluated, run.
    assert_eq!(line("fw-smtp"), "PASS fw-smtp");
    let af = line("fw-smtp-accept-flow");
    assert!(
        af.starts_with("SKIP fw-smtp-accept-flow:")
            && af.contains("`firewall.policies.packet.filter: [accept:flow]`"),
        "{af}"
    );
}

/// A relative `--suite` (as a person types it: `--suite ../shared/conformance/suricata-verify`)
/// gives the same outcome as an absolute one. `${TEST_DIR}` in a case's `threshold-file` used
/// to be joined onto the case directory twice, so these cases were skipped with "No such file".
#[test]
fn relative_suite_path_finds_case_files() {
    let Some(suite) = sekisho_testutil::require_shared(SUITE) else {
        return;
    };
    let case = "threshold/threshold-config-rate-filter-alert-flow";
    let parent = suite.parent().expect("suite has a parent");
    let name = suite.file_name().expect("suite has a name");
    let out = Command::cargo_bin("sekisho")
        .expect("sekisho binary")
        .current_dir(parent)
        .arg("verify")
        .arg("--suite")
        .arg(name)
        .arg(case)
        .output()
        .expect("run sekisho verify");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("PASS {case}")),
        "relative --suite:\n{stdout}"
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}");
}

/// Loophole 5 on the other record types whose fields the runner lists: a probe on a field
/// sekisho does not write in `netflow`, `anomaly` or `stats` records skips the case (it
/// used to hold vacuously for `not-has-key` and `count: 0`).
#[test]
fn loophole_unwritten_fields_of_netflow_anomaly_and_stats_skip_case() {
    let Some(s) = TempSuite::new() else { return };
    for (name, t, m) in [
        ("netflow-community", "netflow", "not-has-key: community_id"),
        ("anomaly-code", "anomaly", "anomaly.code: 7"),
        ("stats-http2", "stats", "stats.app_layer.flow.http2: 0"),
    ] {
        let filter =
            format!("      count: 0\n      match:\n        event_type: {t}\n        {m}\n");
        s.case(name, |y| add_filter(y, &filter));
        // The default configuration logs no netflow: enable every type probed here, so the
        // field (not the event type) is what decides.
        std::fs::write(
            s.root.path().join("tests").join(name).join("suricata.yaml"),
            "%YAML 1.1\n---\noutputs:\n  - eve-log:\n      enabled: yes\n      filetype: regular\n      filename: eve.json\n      types:\n        - alert\n        - anomaly\n        - flow\n        - netflow\n        - stats\n",
        )
        .expect("suricata.yaml");
        let o = s.outcome(name);
        assert!(o.starts_with(&format!("SKIP {name}:")), "{m}: {o}");
        let field = m
            .trim_start_matches("not-has-key: ")
            .split(':')
            .next()
            .unwrap_or_default();
        assert!(o.contains(field), "{m}: the reason names the field: {o}");
    }
}

/// A case-level `requires` with a key the runner does not know skips the case, naming the
/// key (suricata-verify itself would stop with an error; counting the case either way would
/// be a guess).
#[test]
fn unknown_case_requirement_skips_naming_the_key() {
    let Some(s) = TempSuite::new() else { return };
    s.case("case-requires", |y| {
        format!("requires:\n  sekisho-no-such-key: 1\n\n{y}")
    });
    let o = s.outcome("case-requires");
    assert!(
        o.starts_with("SKIP case-requires:") && o.contains("`sekisho-no-such-key`"),
        "{o}"
    );
}

/// `shell` and `file-compare` checks are not evaluated: a case with one is skipped with the
/// reason, never passed on its other checks.
#[test]
fn shell_and_file_compare_checks_skip_the_case() {
    let Some(s) = TempSuite::new() else { return };
    for (name, check) in [
        ("shell", "  - shell:\n      args: test -e eve.json\n"),
        (
            "file-compare",
            "  - file-compare:\n      filename: eve.json\n      expected: expected/eve.json\n",
        ),
    ] {
        s.case(name, |y| format!("{}\n{check}", y.trim_end()));
        let o = s.outcome(name);
        assert!(
            o.starts_with(&format!("SKIP {name}:")) && o.contains(name),
            "{name}: {o}"
        );
    }
}
