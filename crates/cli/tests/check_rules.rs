//! `sekisho check` on Suricata rule files: one test per error class with the exact diagnostic,
//! warnings, exit codes and JSON output. Inputs are the files in `examples/errors/`.

#[path = "support/check.rs"]
mod common;

use common::*;

use assert_cmd::Command;

#[test]
fn unknown_keyword() {
    assert_invalid(
        "examples/errors/unknown-keyword.rules",
        r#"examples/errors/unknown-keyword.rules:2:44: error: unknown keyword 'smtp.rcpt'
  |
2 | alert smtp any any -> any any (msg:"rcpt"; smtp.rcpt; content:"x"; sid:1;)
  |                                            ^^^^^^^^^
  hint: did you mean 'smtp.rcpt_to'?
examples/errors/unknown-keyword.rules: 1 error, 0 warnings
"#,
    );
}

#[test]
fn bad_address() {
    assert_invalid(
        "examples/errors/bad-address.rules",
        r#"examples/errors/bad-address.rules:2:11: error: invalid address '10.0.0.300': not an IP address
  |
2 | alert tcp 10.0.0.300 any -> any any (msg:"x"; sid:2;)
  |           ^^^^^^^^^^
  hint: use any, an IP, a CIDR (10.0.0.0/8), a range (10.0.0.1-10.0.0.9), $VAR, !x or a [list]
examples/errors/bad-address.rules: 1 error, 0 warnings
"#,
    );
}

#[test]
fn bad_port() {
    assert_invalid(
        "examples/errors/bad-port.rules",
        r#"examples/errors/bad-port.rules:2:26: error: invalid port '70000': port is larger than 65535
  |
2 | alert tcp any any -> any 70000 (msg:"x"; sid:3;)
  |                          ^^^^^
  hint: use any, a port 0-65535, a range (1024:65535, 1024:, :1023), $VAR, !x or a [list]
examples/errors/bad-port.rules: 1 error, 0 warnings
"#,
    );
}

#[test]
fn unterminated_quote() {
    assert_invalid(
        "examples/errors/unterminated-quote.rules",
        r#"examples/errors/unterminated-quote.rules:2:55: error: unterminated quote in 'content' value
  |
2 | alert tcp any any -> any 25 (msg:"semicolon"; content:"a;b"; sid:4;)
  |                                                       ^^
  hint: escape ';' inside content as \; or |3B|
examples/errors/unterminated-quote.rules: 1 error, 0 warnings
"#,
    );
}

#[test]
fn missing_sid() {
    assert_invalid(
        "examples/errors/missing-sid.rules",
        r#"examples/errors/missing-sid.rules:2:1: error: rule has no sid
  |
2 | alert tcp any any -> any 25 (msg:"no sid"; content:"x";)
  | ^^^^^
  hint: add a unique rule id, e.g. 'sid:1000001;' (ids from 1000000 are for local rules)
examples/errors/missing-sid.rules: 1 error, 0 warnings
"#,
    );
}

#[test]
fn duplicate_sid() {
    assert_invalid(
        "examples/errors/duplicate-sid.rules",
        r#"examples/errors/duplicate-sid.rules:3:44: error: duplicate sid 6: first used on line 2
  |
3 | alert tcp any any -> any 26 (msg:"second"; sid:6;)
  |                                            ^^^^^
  hint: give every rule a unique sid; bump 'rev' instead when updating a rule
examples/errors/duplicate-sid.rules: 1 error, 0 warnings
"#,
    );
}

#[test]
fn undefined_variable() {
    assert_invalid(
        "examples/errors/undefined-variable.rules",
        r#"examples/errors/undefined-variable.rules:2:28: error: undefined variable '$MAIL_SERVERS' in rule sid 7 (destination address)
  |
2 | alert tcp $HOME_NET any -> $MAIL_SERVERS 25 (msg:"x"; sid:7;)
  |                            ^^^^^^^^^^^^^
  hint: define it with --var 'MAIL_SERVERS=[10.0.0.0/8]', or under 'variables:' in a policy, e.g. MAIL_SERVERS: "[10.0.0.0/8]"
examples/errors/undefined-variable.rules: 1 error, 0 warnings
"#,
    );
}

#[test]
fn undefined_port_variable_gets_a_port_example() {
    assert_invalid(
        "examples/errors/undefined-port-variable.rules",
        r#"examples/errors/undefined-port-variable.rules:2:37: error: undefined variable '$WEB_PORTS' in rule sid 8 (destination port)
  |
2 | alert tcp $HOME_NET any -> any [22, $WEB_PORTS] (msg:"x"; sid:8;)
  |                                     ^^^^^^^^^^
  hint: define it with --var 'WEB_PORTS=[80, 443]', or under 'variables:' in a policy, e.g. WEB_PORTS: "[80, 443]"
examples/errors/undefined-port-variable.rules: 1 error, 0 warnings
"#,
    );
}

#[test]
fn var_flag_defines_the_missing_variable() {
    let (code, _, stderr) = check(&[
        "--var",
        "MAIL_SERVERS=[10.0.5.0/24]",
        "examples/errors/undefined-variable.rules",
    ]);
    assert_eq!(
        stderr,
        "examples/errors/undefined-variable.rules: ok (1 rule)\n"
    );
    assert_eq!(code, 0);
}

#[test]
fn warnings_keep_the_file_valid() {
    let (code, _, stderr) = check(&["examples/errors/warnings.rules"]);
    assert_eq!(
        stderr,
        r#"examples/errors/warnings.rules:2:2: warning: indented rule is ignored: Suricata skips lines starting with whitespace
  |
2 |  alert tcp any any -> any 25 (msg:"indented, so Suricata ignores it"; sid:20;)
  |  ^^^^^
  hint: remove the leading whitespace to load this rule, or start the line with '#' to comment it out
examples/errors/warnings.rules: ok (1 rule, 1 warning)
"#
    );
    assert_eq!(code, 0);
}

#[test]
fn json_output_has_files_and_located_diagnostics() {
    let (code, stdout, stderr) = check(&[
        "--format",
        "json",
        "examples/errors/warnings.rules",
        "examples/errors/bad-port.rules",
    ]);
    assert_eq!(code, 1);
    assert_eq!(stderr, "");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        v["files"],
        serde_json::json!([
            {"path": "examples/errors/warnings.rules", "kind": "rules", "readable": true, "valid": true,
             "rules": 1, "groups": 1, "errors": 0, "warnings": 1},
            {"path": "examples/errors/bad-port.rules", "kind": "rules", "readable": true, "valid": false,
             "rules": 0, "groups": 1, "errors": 1, "warnings": 0}
        ])
    );
    assert_eq!(
        v["diagnostics"][1],
        serde_json::json!({
            "severity": "error", "code": "bad-port",
            "message": "invalid port '70000': port is larger than 65535",
            "file": "examples/errors/bad-port.rules", "line": 2, "column": 26, "len": 5,
            "hint": "use any, a port 0-65535, a range (1024:65535, 1024:, :1023), $VAR, !x or a [list]"
        })
    );
    assert_eq!(v["diagnostics"][0]["severity"], "warning");
}

#[test]
fn usage_errors_exit_2() {
    let (code, _, stderr) = check(&["examples/errors/no-such-file.rules"]);
    assert_eq!(code, 2);
    assert!(
        stderr.starts_with(
            "examples/errors/no-such-file.rules: error: cannot read 'examples/errors/no-such-file.rules': "
        ),
        "{stderr}"
    );
    let (code, _, _) = check(&["--bogus-flag", "examples/errors/bad-port.rules"]);
    assert_eq!(code, 2);
    let (code, _, _) = check(&[]);
    assert_eq!(code, 2);
}

#[test]
fn et_open_coverage_table() {
    let Some(dir) = sekisho_testutil::require_shared("rulesets/et-open-2024-04") else {
        return;
    };
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "rules"))
        .map(|p| p.display().to_string())
        .collect();
    files.sort();
    // The 2024-04 snapshot holds 51 rule files (`ls *.rules | wc -l`).
    assert_eq!(files.len(), 51, "{files:?}");
    let mut args = vec!["--coverage"];
    args.extend(files.iter().map(String::as_str));
    let (code, stdout, _) = check(&args);
    assert_eq!(code, 0, "ET Open should load without errors");
    println!("{stdout}");
    let first = stdout.lines().next().unwrap();
    assert!(first.starts_with("rules "), "{stdout}");
    let total: usize = first.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(total > 20_000, "{total}");
    assert!(stdout.contains("fully modelled"), "{stdout}");
    assert!(stdout.contains("unsupported keyword"), "{stdout}");
}

#[test]
fn drop_rule_the_engine_cannot_evaluate_fails_check() {
    let file = "examples/errors/unsupported-drop.rules";
    let (code, _out, err) = check(&[file]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(
            "examples/errors/unsupported-drop.rules:5:1: error: sid 2: this rule drops or rejects, but sekisho cannot evaluate `lua`"
        ),
        "{err}"
    );
    assert!(
        err.contains("pass --allow-unsupported to leave it out"),
        "{err}"
    );
    assert!(
        err.ends_with("examples/errors/unsupported-drop.rules: 1 error, 1 warning\n"),
        "{err}"
    );
    // JSON names the diagnostic by code, with its location.
    let (code, out, _) = check(&["--format", "json", file]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    let d = v["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .find(|d| d["code"] == "unsupported-blocking-rule")
        .expect("unsupported-blocking-rule diagnostic");
    assert_eq!(d["severity"], "error");
    assert_eq!(d["line"], 5);
    // --allow-unsupported: a warning, and the file is valid.
    let (code, _, err) = check(&["--allow-unsupported", file]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains(":5:1: warning: sid 2:"), "{err}");
    assert!(
        err.contains("unsupported-drop.rules: ok (2 rules, 2 warnings)"),
        "{err}"
    );
}

/// `--coverage` says what the detection compiler accepts: `urilen` and the `dns.*` integer
/// keywords load (the rule language leaves them unmodelled, detection evaluates them), a
/// buffer no parser fills (`file.data`), a value detection cannot read or a protocol it does
/// not detect does not. The table's "fully modelled" count equals replay's "loaded" count
/// for the same file.
#[test]
fn coverage_agrees_with_the_compiler() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("cov.rules");
    std::fs::write(
        &rules,
        r#"alert http any any -> any any (msg:"long uri"; http.uri; content:"/a"; urilen:>10; sid:1;)
alert dns any any -> any any (msg:"nxdomain"; dns.rcode:3; sid:2;)
alert tls any any -> any any (msg:"tls 1.2"; tls.version:1.2; sid:3;)
alert http any any -> any any (msg:"body"; file.data; content:"x"; sid:4;)
alert dns any any -> any any (msg:"bad type"; dns.rrtype:bogus; sid:5;)
alert ftp any any -> any any (msg:"no ftp detection"; content:"USER"; sid:6;)
"#,
    )
    .unwrap();
    let path = rules.to_str().unwrap();
    let (code, stdout, stderr) = check(&["--coverage", "--allow-unsupported", path]);
    assert_eq!(code, 0, "{stderr}");
    let row = |name: &str| {
        stdout
            .lines()
            .find(|l| l.trim_start().starts_with(name))
            .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
    };
    assert_eq!(row("fully modelled").unwrap()[2], "3", "{stdout}");
    assert_eq!(row("file.data").unwrap()[1], "1", "{stdout}");
    assert_eq!(row("dns.rrtype").unwrap()[1], "1", "{stdout}");
    // Not a keyword: the compiler's reason (no ftp detection) is what the table shows.
    assert_eq!(row("ftp").unwrap()[1], "1", "{stdout}");
    for evaluated in ["urilen", "dns.rcode", "tls.version"] {
        assert!(row(evaluated).is_none(), "{evaluated} listed: {stdout}");
    }
    let out_dir = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("sekisho")
        .unwrap()
        .current_dir(root())
        .args(["replay", "--rules", path, "--out"])
        .arg(out_dir.path())
        .arg("tests/fixtures/captures/names/dns.pcap")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("rules: 3 loaded of 6"), "{stderr}");
}

/// Keywords the parser keeps raw but the engine evaluates (`urilen`, `tls.version`,
/// `dns.rrtype`...) get no "does not model" warning; one it does not evaluate still does.
#[test]
fn keywords_evaluated_from_their_value_are_not_called_unmodelled() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.rules");
    std::fs::write(
        &path,
        "alert http any any -> any any (msg:\"u\"; urilen:>5; sid:7;)\n\
         alert tls any any -> any any (msg:\"v\"; tls.version:1.2; sid:8;)\n\
         alert dns any any -> any any (msg:\"r\"; dns.rrtype:MX; dns.rcode:nxdomain; sid:9;)\n\
         alert tcp any any -> any any (msg:\"w\"; tcp.mss:<536; sid:10;)\n",
    )
    .unwrap();
    let out = Command::cargo_bin("sekisho")
        .unwrap()
        .arg("check")
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(err.matches("does not model keyword").count(), 1, "{err}");
    assert!(err.contains("does not model keyword 'tcp.mss'"), "{err}");
}
