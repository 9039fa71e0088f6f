//! `sekisho run` refuses bad arguments and bad policies before it touches a queue: usage
//! errors are exit status 2, an invalid policy 1 with its located diagnostic. (Runs without
//! root: nothing here opens a queue.)

use assert_cmd::Command;

fn run(args: &[&str]) -> (i32, String) {
    let out = Command::cargo_bin("sekisho")
        .expect("binary")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("run")
        .args(args)
        .output()
        .expect("run");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_queue_ranges_and_conflicting_flags_are_usage_errors() {
    let policy = "../../examples/smtp/recipients-strict.yaml";
    let (code, err) = run(&["--policy", policy, "--queues", "3:1"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--queues 3:1: the first queue must not be above the last"),
        "{err}"
    );
    let (code, err) = run(&["--policy", policy, "--queue", "1", "--queues", "0:1"]);
    assert_eq!(code, 2, "{err}");
    let (code, err) = run(&["--policy", policy, "--fail-open", "--fail-closed"]);
    assert_eq!(code, 2, "{err}");
    let (code, err) = run(&["--policy", policy, "--set", "flow.nope=1"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn an_invalid_policy_is_refused_with_its_location() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("bad.yaml");
    std::fs::write(
        &p,
        "rule_groups:\n  - name: x\n    rules_text: |\n      pass tcp any any -> any 80 (msg:\"x\" sid:1;)\n",
    )
    .expect("write");
    let (code, err) = run(&["--policy", &p.display().to_string()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("bad.yaml:4:"), "{err}");
    assert!(err.contains("the policy is invalid"), "{err}");
}
