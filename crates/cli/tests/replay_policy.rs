//! `sekisho replay --policy FILE` takes `name`, `availability_zone` and `logging{format,dir}`
//! from the policy (logging.dir relative to the policy file), and explicit flags override
//! them: flag > policy > built-in default.

use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/captures")
        .join(name)
}

/// Writes the policy into `dir` and returns its path.
fn write_policy(dir: &Path) -> PathBuf {
    let p = dir.join("policy.yaml");
    std::fs::write(
        &p,
        "name: my-fw\navailability_zone: az-test\nlogging: {format: nfw, dir: polout}\n",
    )
    .unwrap();
    p
}

/// Runs `sekisho replay -q --policy POLICY EXTRA... real-eth.pcap` in `cwd`.
fn replay(cwd: &Path, policy: &Path, extra: &[&str]) {
    let o = Command::cargo_bin("sekisho")
        .unwrap()
        .current_dir(cwd)
        .args(["replay", "-q", "--policy"])
        .arg(policy)
        .args(extra)
        .arg(fixture("real-eth.pcap"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn flow_log_lines(dir: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(dir.join("flow.log")).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!lines.is_empty(), "flow.log in {} is empty", dir.display());
    lines
}

#[test]
fn policy_name_zone_format_and_dir_are_the_defaults() {
    let pol_dir = tempfile::tempdir().unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let policy = write_policy(pol_dir.path());
    replay(cwd.path(), &policy, &[]);

    // logging.dir is relative to the policy file, not to the working directory.
    let out = pol_dir.path().join("polout");
    assert!(!cwd.path().join("polout").exists());
    assert!(!cwd.path().join("sekisho-out").exists());
    assert!(out.join("alert.log").is_file());
    assert!(!out.join("eve.json").exists());
    for v in flow_log_lines(&out) {
        assert_eq!(v["firewall_name"], "my-fw", "{v}");
        assert_eq!(v["availability_zone"], "az-test", "{v}");
    }
}

#[test]
fn flags_override_the_policy() {
    let pol_dir = tempfile::tempdir().unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let policy = write_policy(pol_dir.path());

    // --out wins over logging.dir; the policy's format, name and zone still apply.
    replay(cwd.path(), &policy, &["--out", "X"]);
    assert!(!pol_dir.path().join("polout").exists());
    let x = cwd.path().join("X");
    for v in flow_log_lines(&x) {
        assert_eq!(v["firewall_name"], "my-fw");
    }

    // --firewall-name / --availability-zone win over name / availability_zone.
    replay(
        cwd.path(),
        &policy,
        &[
            "--out",
            "named",
            "--firewall-name",
            "cli-fw",
            "--availability-zone",
            "cli-az",
        ],
    );
    for v in flow_log_lines(&cwd.path().join("named")) {
        assert_eq!(v["firewall_name"], "cli-fw");
        assert_eq!(v["availability_zone"], "cli-az");
    }

    // --log-format eve wins over logging.format.
    replay(cwd.path(), &policy, &["--log-format", "eve"]);
    let out = pol_dir.path().join("polout");
    assert!(out.join("eve.json").is_file());
    assert!(!out.join("flow.log").exists());
}

#[test]
fn bad_log_format_is_a_usage_error_listing_the_policy_vocabulary() {
    let o = Command::cargo_bin("sekisho")
        .unwrap()
        .args(["replay", "--log-format", "nwf"])
        .arg(fixture("real-eth.pcap"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("[possible values: eve, nfw]"), "{err}");
}
