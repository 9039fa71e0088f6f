//! Helpers shared by the `sekisho check` integration tests (each test file is its own crate,
//! so not every helper is used by every file).
#![allow(dead_code)]

use std::path::PathBuf;

use assert_cmd::Command;

/// The repository root, where the examples live and where the tests run the binary.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `sekisho check ARGS` in the repository root: (exit code, stdout, stderr).
pub fn check(args: &[&str]) -> (i32, String, String) {
    let out = Command::cargo_bin("sekisho")
        .unwrap()
        .current_dir(root())
        .arg("check")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Asserts that `sekisho check FILE` exits 1, prints nothing on stdout, and exactly `expected`
/// (diagnostics and summary) on stderr.
pub fn assert_invalid(file: &str, expected: &str) {
    let (code, stdout, stderr) = check(&[file]);
    assert_eq!(stderr, expected, "stderr of sekisho check {file}");
    assert_eq!(stdout, "");
    assert_eq!(code, 1);
}
