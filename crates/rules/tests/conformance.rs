//! Parses the rule files of Suricata's own verification cases (suricata-verify, read from
//! `shared/conformance/` at run time).
//!
//! For every case Suricata 8.0.6 passes (per `suricata-8.0.6-results.tsv`), every rule must
//! parse, except the rules listed in [`EXPECTED_FAILURES`]: rules that Suricata 8.0.6 itself
//! rejects (the cases check that the bad rule is skipped, e.g. via `exit-code: 1` or a
//! stats/alert count), each with the reason. Cases Suricata skips or fails are parsed and
//! reported, but not asserted.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use sekisho_diag::SourceFile;
use sekisho_rules::parse_file;

fn shared_dir() -> PathBuf {
    match std::env::var_os("SEKISHO_SHARED") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    }
}

/// (case, rule file, line, our message). Every one is a rule Suricata 8.0.6 rejects too: the
/// case either expects `exit-code: 1` (`-T` / strict loading) or checks for the engine's
/// load-error event (`test-bad-*`, `test-content-limits-1`, `requires-fail` line 17 whose
/// `requires` is met but whose protocol does not exist).
const EXPECTED_FAILURES: &[(&str, &str, u32, &str)] = &[
    ("bug-3463", "test.rules", 1, "only one threshold or detection_filter per rule"),
    ("content-incomplete-hex-t-version-6-strict", "test.rules", 1, "odd number of hex digits in content"),
    ("content-incomplete-hex-t-version-7-plus", "test.rules", 1, "odd number of hex digits in content"),
    ("detect-bytejump-03", "test.rules", 1, "invalid value for 'byte_jump': 'no_var' is neither a number nor a byte_extract/byte_math v"),
    ("detect-to_lowercase-02", "input.rules", 1, "content contains upper-case letters and can never match after 'to_lowercase'"),
    ("detect-to_uppercase-02", "input.rules", 1, "content contains lower-case letters and can never match after 'to_uppercase'"),
    ("detect-pcrexform-04", "test.rules", 1, "value of 'pcrexform' must be in double quotes"),
    ("requires-fail", "test.rules", 17, "unknown protocol 'asdf'"),
    ("test-bad-byte-extract-rule-1", "test.rules", 1, "invalid value for 'depth': 'd' is neither a number nor a byte_extract/byte_math variable d"),
    ("test-bad-content-quotes-rule-1", "test.rules", 1, "unescaped '\"' inside content"),
    ("test-bad-depth-depth-rule-1", "test.rules", 1, "'depth' is given twice for the same content"),
    ("test-bad-depth-distance-rule-1", "test.rules", 1, "'distance' cannot be mixed with depth/offset on the same content"),
    ("test-bad-depth-distance-rule-2", "test.rules", 1, "'distance' cannot be mixed with depth/offset on the same content"),
    ("test-bad-depth-rule-1", "test.rules", 1, "'depth' needs a preceding 'content'"),
    ("test-bad-hex-rule-2", "test.rules", 1, "invalid character 'j' in hex content"),
    ("test-bad-http-host-rule-1", "test.rules", 1, "http.host content contains upper-case letters and can never match: the buffer is lower-cas"),
    ("test-bad-http-host-rule-2", "test.rules", 1, "'nocase' is not allowed on http.host content: the buffer is already lower-cased"),
    ("test-bad-offset-offset-rule-1", "test.rules", 1, "'offset' is given twice for the same content"),
    ("test-bad-quotation-marks-rule-1", "test.rules", 1, "value of 'content' must be in double quotes"),
    ("test-bad-semicolon-rule-1", "test.rules", 1, "unterminated quote in 'content' value"),
    ("test-bad-semicolon-rule-2", "test.rules", 1, "unknown keyword ''"),
    ("test-content-limits-1", "test.rules", 1, "invalid value for 'within': within is larger than 1 MiB"),
    ("test-content-limits-1", "test.rules", 2, "invalid value for 'within': within -1048577 is smaller than the content length 1"),
    ("test-content-limits-1", "test.rules", 3, "invalid value for 'distance': distance is outside -1 MiB..1 MiB"),
    ("test-content-limits-1", "test.rules", 4, "invalid value for 'distance': distance is outside -1 MiB..1 MiB"),
];

fn rule_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "rules") && p.is_file() {
            out.push(p);
        }
    }
}

#[test]
fn suricata_verify_rules() {
    let root = shared_dir().join("conformance");
    let results =
        std::fs::read_to_string(root.join("suricata-8.0.6-results.tsv")).unwrap_or_else(|e| {
            panic!(
                "cannot read results in {}: {e} (set SEKISHO_SHARED)",
                root.display()
            )
        });
    let status: BTreeMap<&str, &str> = results.lines().filter_map(|l| l.split_once('\t')).collect();
    let tests = root.join("suricata-verify/tests");
    let mut total = 0;
    let mut failures: BTreeSet<(String, String, u32)> = BTreeSet::new();
    let mut messages = Vec::new();
    let mut other_fail = 0;
    for (case, st) in &status {
        let dir = tests.join(case);
        let mut files = Vec::new();
        rule_files(&dir, &mut files);
        files.sort();
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap_or_default();
            let name = f.file_name().unwrap().to_string_lossy().to_string();
            let src = SourceFile::new(format!("{case}/{name}"), text);
            let parsed = parse_file(&src);
            total += parsed.rules.len();
            for d in parsed.diagnostics.iter().filter(|d| d.is_error()) {
                total += 1;
                let line = d.location.as_ref().map_or(0, |l| l.line);
                if *st == "PASS" {
                    failures.insert((case.to_string(), name.clone(), line));
                    messages.push(d.render());
                } else {
                    other_fail += 1;
                    if std::env::var_os("SHOW_OTHER").is_some() {
                        println!("[{st}] {}", d.render().lines().next().unwrap_or(""));
                    }
                }
            }
        }
    }
    for m in &messages {
        println!("{m}");
    }
    println!(
        "conformance: {total} rules, {} rejected in cases Suricata 8.0.6 passes, {other_fail} in other cases",
        failures.len()
    );
    let expected: BTreeSet<(String, String, u32)> = EXPECTED_FAILURES
        .iter()
        .map(|(c, f, l, _)| (c.to_string(), f.to_string(), *l))
        .collect();
    let unexpected: Vec<_> = failures.difference(&expected).collect();
    let missing: Vec<_> = expected.difference(&failures).collect();
    assert!(
        unexpected.is_empty(),
        "rules rejected that Suricata accepts: {unexpected:#?}"
    );
    assert!(
        missing.is_empty(),
        "rules Suricata rejects that now parse: {missing:#?}"
    );
}
