//! Runs every suricata-verify case in ../shared/conformance with `sekisho verify` and fails if a
//! case listed in tests/conformance/expected-pass.txt no longer passes. Newly passing cases are
//! printed so the list can be extended (`sekisho verify --list-passing FILE`).

use std::path::PathBuf;
use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;

#[test]
fn expected_cases_still_pass() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let suite = root.join("../shared/conformance/suricata-verify");
    if !suite.join("tests").is_dir() {
        if std::env::var_os("CI").is_some() {
            panic!("conformance suite missing at {}", suite.display());
        }
        eprintln!("skipping: no conformance suite at {}", suite.display());
        return;
    }
    let expected_text =
        std::fs::read_to_string(root.join("tests/conformance/expected-pass.txt")).unwrap();
    let expected: Vec<&str> = expected_text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert!(!expected.is_empty());
    let out = Command::cargo_bin("sekisho")
        .unwrap()
        .arg("verify")
        .arg("--suite")
        .arg(&suite)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    eprintln!("{last}");
    let parts: Vec<&str> = last.split(", ").collect();
    assert!(
        parts.len() == 3
            && parts[0].ends_with(" passed")
            && parts[1].ends_with(" failed")
            && parts[2].ends_with(" skipped"),
        "closing line malformed: {last}"
    );
    let passed: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("PASS "))
        .collect();
    let regressions: Vec<String> = expected
        .iter()
        .filter(|c| !passed.contains(c))
        .map(|c| {
            stdout
                .lines()
                .find(|l| l.split_whitespace().nth(1).map(|n| n.trim_end_matches(':')) == Some(c))
                .unwrap_or(c)
                .to_string()
        })
        .collect();
    for c in passed.iter().filter(|c| !expected.contains(c)) {
        eprintln!("newly passing (add to tests/conformance/expected-pass.txt): {c}");
    }
    assert!(
        regressions.is_empty(),
        "expected-pass cases no longer pass:\n{}",
        regressions.join("\n")
    );
}
