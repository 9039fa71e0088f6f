//! `sekisho check --print-rules` on the NFW reference examples: domain lists and 5-tuple
//! rules compile to exactly the Suricata text AWS documents; firewall policy JSON is validated.

#[path = "support/check.rs"]
mod common;

use common::*;

#[test]
fn denylist_reference_example() {
    let (code, stdout, stderr) = check(&["--print-rules", "examples/nfw/denylist.json"]);
    assert_eq!(
        stderr,
        "examples/nfw/denylist.json: ok (1 group, 2 rules)\n"
    );
    assert_eq!(code, 0);
    assert_eq!(
        stdout,
        r#"# policy: sekisho (rule_order: action, engine_profile: suricata-8)
# group: denylist (denylist generated from a domain list; sids local to this group)
drop tls $HOME_NET any -> $EXTERNAL_NET any (ssl_state:client_hello; tls.sni; content:"evil.com"; startswith; nocase; endswith; msg:"matching TLS denylisted FQDNs"; priority:1; flow:to_server, established; sid:1; rev:1;)
drop http $HOME_NET any -> $EXTERNAL_NET any (http.host; content:"evil.com"; startswith; endswith; msg:"matching HTTP denylisted FQDNs"; priority:1; flow:to_server, established; sid:2; rev:1;)
"#
    );
}

#[test]
fn http_allowlist_reference_example() {
    let (code, stdout, _) = check(&["--print-rules", "examples/nfw/allowlist-http.json"]);
    assert_eq!(code, 0);
    assert_eq!(
        stdout,
        r#"# policy: sekisho (rule_order: action, engine_profile: suricata-8)
# group: allowlist-http (allowlist generated from a domain list; sids local to this group)
pass http $HOME_NET any -> $EXTERNAL_NET any (http.host; dotprefix; content:".amazon.com"; endswith; msg:"matching HTTP allowlisted FQDNs"; priority:1; flow:to_server, established; sid:1; rev:1;)
pass http $HOME_NET any -> $EXTERNAL_NET any (http.host; content:"example.com"; startswith; endswith; msg:"matching HTTP allowlisted FQDNs"; priority:1; flow:to_server, established; sid:2; rev:1;)
drop http $HOME_NET any -> $EXTERNAL_NET any (http.header_names; content:"|0d 0a|"; startswith; msg:"not matching any HTTP allowlisted FQDNs"; priority:1; flow:to_server, established; sid:3; rev:1;)
"#
    );
}

#[test]
fn tls_allowlist_reference_example() {
    // A bare RulesSource object (no RuleGroup wrapper) is accepted too.
    let (code, stdout, stderr) = check(&["--print-rules", "examples/nfw/allowlist-tls.json"]);
    assert_eq!(
        stderr,
        "examples/nfw/allowlist-tls.json: ok (1 group, 3 rules)\n"
    );
    assert_eq!(code, 0);
    assert_eq!(
        stdout,
        r#"# policy: sekisho (rule_order: action, engine_profile: suricata-8)
# group: allowlist-tls (allowlist generated from a domain list; sids local to this group)
pass tls $HOME_NET any -> $EXTERNAL_NET any (ssl_state:client_hello; tls.sni; dotprefix; content:".amazon.com"; nocase; endswith; msg:"matching TLS allowlisted FQDNs"; priority:1; flow:to_server, established; sid:1; rev:1;)
pass tls $HOME_NET any -> $EXTERNAL_NET any (ssl_state:client_hello; tls.sni; content:"example.com"; startswith; nocase; endswith; msg:"matching TLS allowlisted FQDNs"; priority:1; flow:to_server, established; sid:2; rev:1;)
drop tls $HOME_NET any -> $EXTERNAL_NET any (msg:"not matching any TLS allowlisted FQDNs"; priority:1; ssl_state:client_hello; flow:to_server, established; sid:3; rev:1;)
"#
    );
}

#[test]
fn five_tuple_reference_example() {
    let (code, stdout, _) = check(&["--print-rules", "examples/nfw/five-tuple.json"]);
    assert_eq!(code, 0);
    assert_eq!(
        stdout,
        r#"# policy: sekisho (rule_order: action, engine_profile: suricata-8)
# group: five-tuple (NFW StatefulRules from examples/nfw/five-tuple.json)
drop http $HOME_NET any <> $EXTERNAL_NET any (msg:"this is a stateful drop rule"; sid:1234;)
"#
    );
}

#[test]
fn firewall_policy_json_is_validated() {
    let (code, stdout, stderr) = check(&["examples/nfw/firewall-policy.json"]);
    assert_eq!(
        stderr,
        "examples/nfw/firewall-policy.json: ok (firewall policy, STRICT_ORDER, 2 default actions)\n"
    );
    assert_eq!(stdout, "");
    assert_eq!(code, 0);

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("fp.json");
    std::fs::write(
        &bad,
        "{\"FirewallPolicy\": {\n  \"StatefulDefaultActions\": [\"aws:drop_strict\", \"aws:drop_establised\"],\n  \"StatefulEngineOptions\": {\"RuleOrder\": \"DEFAULT_ACTION_ORDER\"}}}\n",
    )
    .unwrap();
    let (code, _, stderr) = check(&[bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    let shown = stderr.replace(&bad.display().to_string(), "fp.json");
    assert_eq!(
        shown,
        r#"fp.json:2:49: error: unknown default action 'aws:drop_establised'
  |
2 |   "StatefulDefaultActions": ["aws:drop_strict", "aws:drop_establised"],
  |                                                 ^^^^^^^^^^^^^^^^^^^^^
  hint: did you mean 'aws:drop_established'? expected one of: drop_strict, drop_established, alert_strict, alert_established, drop_established_app_layer, drop_established_app_layer_to_server, alert_established_app_layer, alert_established_app_layer_to_server
fp.json:2:3: error: StatefulDefaultActions are only allowed with RuleOrder STRICT_ORDER
  |
2 |   "StatefulDefaultActions": ["aws:drop_strict", "aws:drop_establised"],
  |   ^^^^^^^^^^^^^^^^^^^^^^^^
  hint: set StatefulEngineOptions.RuleOrder to STRICT_ORDER, or remove the default actions
fp.json: 2 errors, 0 warnings
"#
    );
}

#[test]
fn rules_string_errors_name_the_embedded_rules() {
    let dir = tempfile::tempdir().unwrap();
    let rg = dir.path().join("rg.json");
    std::fs::write(
        &rg,
        r#"{"RuleGroup": {"RulesSource": {"RulesString": "alert tcp any any -> any any (msg:\"x\"; sid:1;)\nalert tcp any any -> any 99999 (msg:\"y\"; sid:2;)\n"}}}"#,
    )
    .unwrap();
    let (code, _, stderr) = check(&[rg.to_str().unwrap()]);
    assert_eq!(code, 1);
    let shown = stderr.replace(&rg.display().to_string(), "rg.json");
    assert_eq!(
        shown,
        r#"rg.json#RulesString:2:26: error: invalid port '99999': port is larger than 65535
  |
2 | alert tcp any any -> any 99999 (msg:"y"; sid:2;)
  |                          ^^^^^
  hint: use any, a port 0-65535, a range (1024:65535, 1024:, :1023), $VAR, !x or a [list]
rg.json: 1 error, 0 warnings
"#
    );
}

#[test]
fn domain_list_json_errors_are_located() {
    let dir = tempfile::tempdir().unwrap();
    let rg = dir.path().join("dl.json");
    std::fs::write(
        &rg,
        r#"{"RulesSource": {"RulesSourceList": {"Targets": ["*.evil.com"], "TargetTypes": ["TLS_SNI", "HTTP_HOTS"], "GeneratedRulesType": "DENYLIST"}}}"#,
    )
    .unwrap();
    let (code, _, stderr) = check(&[rg.to_str().unwrap()]);
    assert_eq!(code, 1);
    let shown = stderr.replace(&rg.display().to_string(), "dl.json");
    assert!(
        shown.starts_with("dl.json:1:50: error: wildcard target '*.evil.com' is not supported\n"),
        "{shown}"
    );
    assert!(
        shown.contains("  hint: did you mean 'HTTP_HOST'? expected one of: TLS_SNI, HTTP_HOST\n"),
        "{shown}"
    );
    assert!(
        shown.contains("dl.json:1:92: error: unknown target type 'HTTP_HOTS'\n"),
        "{shown}"
    );
    assert!(
        shown.contains("  hint: write '.evil.com' to match evil.com and all its subdomains\n"),
        "{shown}"
    );
}

#[test]
fn json_output_carries_the_printed_rules() {
    let (code, stdout, stderr) = check(&[
        "--format",
        "json",
        "--print-rules",
        "examples/nfw/five-tuple.json",
        "examples/nfw/firewall-policy.json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["diagnostics"], serde_json::json!([]));
    assert_eq!(v["files"][0]["kind"], "nfw-rule-group");
    assert_eq!(
        v["files"][0]["effective_rules"][2],
        "drop http $HOME_NET any <> $EXTERNAL_NET any (msg:\"this is a stateful drop rule\"; sid:1234;)"
    );
    assert_eq!(v["files"][1]["kind"], "nfw-firewall-policy");
    assert_eq!(v["files"][1]["valid"], true);
}
