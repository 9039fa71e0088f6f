//! Test helpers shared by sekisho's crates: finding the shared reference tree (`../shared`
//! beside the repository, or `$SEKISHO_SHARED`) and committed fixtures, so that a test whose
//! input is missing never passes silently.
//!
//! When an input is missing, the helpers panic with the missing path if `CI` is set to a
//! truthy value (CI must run every test), and otherwise print a loud `SKIP: … missing` line to
//! stderr and return `None`, so a developer without the shared tree still gets a green run of
//! everything else. Use them as:
//!
//! ```no_run
//! let Some(suite) = sekisho_testutil::require_shared("conformance/suricata-verify/tests") else {
//!     return;
//! };
//! ```
#![warn(missing_docs)]

use std::path::{Path, PathBuf};

pub mod lab;

/// The repository root (the workspace directory holding `crates/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Whether `CI` is set to a truthy value (anything but empty, `0`, `false`, `no`, `off`).
pub fn in_ci() -> bool {
    truthy(std::env::var("CI").ok().as_deref())
}

fn truthy(v: Option<&str>) -> bool {
    match v {
        None => false,
        Some(v) => !matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "" | "0" | "false" | "no" | "off"
        ),
    }
}

/// Where the shared reference tree should be: `$SEKISHO_SHARED` when set, else `../shared`
/// beside the repository. Not checked for existence.
pub fn shared_path() -> PathBuf {
    match std::env::var_os("SEKISHO_SHARED") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => repo_root().join("../shared"),
    }
}

/// Reports a missing test input: panics naming it in CI, else prints `SKIP: … missing` to
/// stderr. Always returns `None` so callers can `return` on it.
pub fn missing<T>(what: &str, path: &Path) -> Option<T> {
    let msg = format!(
        "{what} missing: {} (set SEKISHO_SHARED or lay out ../shared beside the repository)",
        path.display()
    );
    if in_ci() {
        panic!("CI=true and a test input is missing: {msg}");
    }
    eprintln!("SKIP: {msg}");
    eprintln!("SKIP: this test checked nothing; CI=true makes this a failure");
    None
}

/// The shared reference tree, or `None` (after [`missing`]) when it is absent.
pub fn shared_dir() -> Option<PathBuf> {
    let p = shared_path();
    if p.is_dir() {
        Some(p)
    } else {
        missing("shared reference tree", &p)
    }
}

/// `rel` inside the shared tree (e.g. `conformance/suricata-verify/tests`), or `None` (after
/// [`missing`]) when it does not exist.
pub fn require_shared(rel: &str) -> Option<PathBuf> {
    let p = shared_path().join(rel);
    if p.exists() {
        Some(p)
    } else {
        missing("shared test input", &p)
    }
}

/// A committed fixture (relative paths are taken from the repository root), or `None`
/// (after [`missing`]) when it does not exist.
pub fn require_fixture(path: impl AsRef<Path>) -> Option<PathBuf> {
    let path = path.as_ref();
    let p = if path.is_absolute() {
        path.to_path_buf()
    } else {
        repo_root().join(path)
    };
    if p.exists() {
        Some(p)
    } else {
        missing("test fixture", &p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ci_values() {
        assert!(!truthy(None));
        for v in ["", "0", "false", "FALSE", "no", "off", " "] {
            assert!(!truthy(Some(v)), "{v:?}");
        }
        for v in ["true", "1", "yes", "TRUE"] {
            assert!(truthy(Some(v)), "{v:?}");
        }
    }

    #[test]
    fn present_inputs_are_returned() {
        let f = require_fixture("Cargo.toml").expect("workspace Cargo.toml");
        assert!(f.is_file());
        let abs = require_fixture(&f).expect("absolute path");
        assert_eq!(abs, f);
    }

    /// Runs this test binary's `missing_input_fails_in_ci` as a child with `CI` set to `ci`.
    fn child(ci: &str) -> std::process::Output {
        std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args(["--exact", "tests::missing_input_fails_in_ci", "--nocapture"])
            .env("SEKISHO_TESTUTIL_CHILD", "1")
            .env("CI", ci)
            .env("SEKISHO_SHARED", "/nonexistent-sekisho-shared")
            .output()
            .expect("run child")
    }

    /// With `CI` set, a missing input fails the test and names the path; without it, the
    /// test passes with a loud SKIP line.
    #[test]
    fn missing_input_fails_in_ci() {
        if std::env::var_os("SEKISHO_TESTUTIL_CHILD").is_some() {
            assert!(require_shared("conformance/suricata-verify").is_none());
            return;
        }
        let out = child("true");
        let text = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "{text}");
        assert!(
            text.contains("/nonexistent-sekisho-shared/conformance/suricata-verify"),
            "{text}"
        );
        let out = child("false");
        let text = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{text}");
        assert!(text.contains("SKIP: shared test input missing"), "{text}");
    }
}
