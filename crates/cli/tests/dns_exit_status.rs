//! Exit statuses and `--help` of `sekisho dns` through the real binary: 0 success, 1 a config
//! that was read and is invalid, 2 a usage error or a path that cannot be read at all.

use assert_cmd::Command;

const OK: &str =
    "upstreams: [\"127.0.0.1:5300\"]\ndomain_lists:\n  bad: [\"bad.example\"]\nrule_groups: []\n";

fn sekisho(args: &[&str]) -> (i32, String, String) {
    let out = Command::cargo_bin("sekisho")
        .unwrap()
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_exit_statuses() {
    let d = tempfile::tempdir().unwrap();
    let good = d.path().join("ok.yaml");
    std::fs::write(&good, OK).unwrap();
    let (rc, out, _) = sekisho(&["dns", "--config", good.to_str().unwrap(), "--check"]);
    assert_eq!(rc, 0, "{out}");
    assert!(
        out.trim_end()
            .ends_with(": ok; 1 domain list, 1 name, 0 rule groups, 0 rules"),
        "{out}"
    );

    let bad = d.path().join("bad.yaml");
    std::fs::write(&bad, format!("fail_mode: closd\n{OK}")).unwrap();
    let (rc, _, err) = sekisho(&["dns", "--config", bad.to_str().unwrap(), "--check"]);
    assert_eq!(rc, 1, "{err}");
    assert!(
        err.contains("bad.yaml:1:12: error: unknown value 'closd' for fail_mode"),
        "{err}"
    );

    let missing = d.path().join("nonexist.yaml");
    let (rc, _, err) = sekisho(&["dns", "--config", missing.to_str().unwrap(), "--check"]);
    assert_eq!(rc, 2, "{err}");
    assert!(
        err.contains("nonexist.yaml: error: cannot read config: No such file"),
        "{err}"
    );

    let (rc, _, err) = sekisho(&["dns", "--config", d.path().to_str().unwrap(), "--check"]);
    assert_eq!(rc, 2, "a directory is unreadable as a config: {err}");

    let (rc, _, err) = sekisho(&["dns", "--no-such-flag"]);
    assert_eq!(rc, 2, "{err}");
}

#[test]
fn report_exit_statuses_and_non_utf8_lines() {
    let d = tempfile::tempdir().unwrap();
    let (rc, _, err) = sekisho(&["dns", "report", d.path().to_str().unwrap()]);
    assert_eq!(rc, 2, "{err}");
    assert!(err.contains("it is a directory"), "{err}");

    let missing = d.path().join("query.log");
    let (rc, _, err) = sekisho(&["dns", "report", missing.to_str().unwrap()]);
    assert_eq!(rc, 2, "{err}");

    let mut log = b"{\"query_name\":\"a.example.\"}\n\xff\xfe garbage\n".to_vec();
    log.extend_from_slice(b"{\"query_name\":\"b.example.\"}\n");
    std::fs::write(&missing, log).unwrap();
    let (rc, out, err) = sekisho(&["dns", "report", missing.to_str().unwrap()]);
    assert_eq!(rc, 0, "{err}");
    assert!(out.starts_with("query log: 3 lines (1 skipped)"), "{out}");
    assert!(
        out.contains("b.example."),
        "the line after the bad one is read: {out}"
    );
}

#[test]
fn help_shows_examples_and_exit_statuses() {
    let (rc, out, _) = sekisho(&["dns", "--help"]);
    assert_eq!(rc, 0);
    for needle in [
        "sekisho dns --config dns.yaml --dry-run",
        "--check",
        "--emit-bypass-rules --bypass-action drop",
        "sekisho dns report query.log",
        "Exit status:",
        "2  usage error",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    let (rc, out, _) = sekisho(&["dns", "report", "--help"]);
    assert_eq!(rc, 0);
    assert!(out.contains("--top 0 --json"), "{out}");
    assert!(out.contains("Exit status:"), "{out}");
}
