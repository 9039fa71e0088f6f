//! `sekisho check` on inputs that are not what it checks: unreadable PATHs become `io`
//! diagnostics without stopping the other PATHs (exit 2, JSON still printed), and a DNS
//! firewall config gets one error naming the command that checks it (exit 1).

#[path = "support/check.rs"]
mod common;

use common::*;

#[test]
fn unreadable_paths_do_not_stop_the_others() {
    let (code, stdout, stderr) = check(&[
        "examples/egress/fw.rules",
        "no/such/file.rules",
        "examples/errors/missing-sid.rules",
        "crates",
    ]);
    assert_eq!(stdout, "");
    let expected = r#"no/such/file.rules: error: cannot read 'no/such/file.rules': No such file or directory (os error 2)
examples/errors/missing-sid.rules:2:1: error: rule has no sid
  |
2 | alert tcp any any -> any 25 (msg:"no sid"; content:"x";)
  | ^^^^^
  hint: add a unique rule id, e.g. 'sid:1000001;' (ids from 1000000 are for local rules)
crates: error: cannot read 'crates': Is a directory (os error 21)
examples/egress/fw.rules: ok (3 rules)
no/such/file.rules: 1 error, 0 warnings
examples/errors/missing-sid.rules: 1 error, 0 warnings
crates: 1 error, 0 warnings
"#;
    assert_eq!(stderr, expected);
    // Unreadable wins over invalid.
    assert_eq!(code, 2);
}

#[test]
fn invalid_without_unreadable_exits_1() {
    let (code, _, _) = check(&[
        "examples/egress/fw.rules",
        "examples/errors/missing-sid.rules",
    ]);
    assert_eq!(code, 1);
}

#[test]
fn json_is_printed_even_when_a_path_is_unreadable() {
    let (code, stdout, stderr) = check(&[
        "--format",
        "json",
        "no/such/file.rules",
        "examples/egress/fw.rules",
    ]);
    assert_eq!(code, 2);
    assert!(
        stdout.ends_with("}\n"),
        "JSON must end with a newline: {stdout:?}"
    );
    assert_eq!(stderr, "");
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let files = doc["files"].as_array().unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(files[0]["path"], "no/such/file.rules");
    assert_eq!(files[0]["readable"], false);
    assert_eq!(files[0]["valid"], false);
    assert_eq!(files[1]["path"], "examples/egress/fw.rules");
    assert_eq!(files[1]["readable"], true);
    assert_eq!(files[1]["valid"], true);
    assert_eq!(files[1]["rules"], 3);
    let diags = doc["diagnostics"].as_array().unwrap();
    assert_eq!(diags.len(), 1);
    assert_eq!(diags[0]["code"], "io");
    assert_eq!(diags[0]["file"], "no/such/file.rules");
    assert_eq!(
        diags[0]["message"],
        "cannot read 'no/such/file.rules': No such file or directory (os error 2)"
    );
}

#[test]
fn dns_firewall_config_is_pointed_to_sekisho_dns() {
    let (code, stdout, stderr) = check(&["examples/errors/dns-config.yaml"]);
    assert_eq!(stdout, "");
    assert_eq!(
        stderr,
        "examples/errors/dns-config.yaml:3:1: error: this looks like a DNS firewall config; \
check it with `sekisho dns --config examples/errors/dns-config.yaml --check`
  |
3 | listen: [\"127.0.0.1:5353\"]
  | ^^^^^^
examples/errors/dns-config.yaml: 1 error, 0 warnings
"
    );
    assert_eq!(code, 1);

    // The bundled DNS example: one error, no policy-key noise.
    let (code, _, stderr) = check(&["examples/dns/walled-garden.yaml"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("error: this looks like a DNS firewall config; check it with `sekisho dns --config examples/dns/walled-garden.yaml --check`"),
        "{stderr}"
    );
    assert_eq!(stderr.matches("error:").count(), 1, "{stderr}");
    assert!(!stderr.contains("unknown key"), "{stderr}");
}
