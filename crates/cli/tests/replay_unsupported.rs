//! A drop or reject rule the engine cannot evaluate fails the load (fail closed): leaving it
//! out would let through what it was written to stop. `--allow-unsupported` downgrades that
//! to a warning; an alert rule the engine cannot evaluate is only a warning either way.

#[path = "support/smtp.rs"]
mod support;

use support::{capture, replay};

fn rules(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

// `file.data` is a buffer no parser fills yet (SMTP MIME bodies are not decoded).
const DROP: &str =
    r#"drop smtp any any -> any any (msg:"evil body"; file.data; content:"evil"; sid:7;)"#;
const ALERT: &str =
    r#"alert smtp any any -> any any (msg:"evil body"; file.data; content:"evil"; sid:8;)"#;

#[test]
fn an_unloadable_drop_rule_fails_the_load() {
    let dir = tempfile::tempdir().unwrap();
    let r = rules(&dir, "drop.rules", DROP);
    let run = replay(&capture("swaks-plain.pcap"), &["--rules", &r]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("error: 1 drop/reject rule cannot be evaluated (sid 7)"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("--allow-unsupported"), "{}", run.stderr);
    assert!(run.events.is_empty(), "nothing was replayed");
}

#[test]
fn allow_unsupported_leaves_it_out_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let r = rules(&dir, "drop.rules", DROP);
    let run = replay(
        &capture("swaks-plain.pcap"),
        &["--allow-unsupported", "--rules", &r],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("warning: 1 drop/reject rule left out (--allow-unsupported): sid 7"),
        "{}",
        run.stderr
    );
    assert_eq!(run.of("flow").len(), 1);
}

#[test]
fn an_unloadable_alert_rule_is_only_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let r = rules(&dir, "alert.rules", ALERT);
    let run = replay(&capture("swaks-plain.pcap"), &["--rules", &r]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("sid 8 (alert.rules): file.data"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("drop/reject rule"), "{}", run.stderr);
}
