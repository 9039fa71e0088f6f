//! `sekisho check` on the SMTP examples (issue 4): the pass trap of the report's rules, the
//! recipient recipes, Suricata-8-only syntax under `engine_profile: aws-nfw`, and the rule
//! validations Suricata applies (dsize with app-layer buffers, content vs case transforms).

#[path = "support/check.rs"]
mod common;

use std::path::Path;

use common::*;

/// Runs `sekisho check ARGS` in `dir`: (exit code, stdout, stderr).
fn check_in(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sekisho"))
        .current_dir(dir)
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

/// A temporary directory holding `files` (name, text).
fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(d.path().join(name), text).unwrap();
    }
    d
}

fn example(name: &str) -> String {
    std::fs::read_to_string(root().join("examples/smtp").join(name)).unwrap()
}

#[test]
fn the_reports_pass_rule_is_a_trap_under_every_profile_and_order() {
    for (policy, first) in [
        ("blog-aws-nfw.yaml", "for SMTP that is the EHLO packet under aws-nfw"),
        (
            "blog-suricata-8.yaml",
            "for SMTP that is the first packet after the 220 banner under suricata-8",
        ),
        (
            "blog-action-order.yaml",
            "under rule_order: action every pass rule is evaluated before all drop, reject and alert rules",
        ),
    ] {
        let path = format!("examples/smtp/{policy}");
        let (code, stdout, stderr) = check(&[&path]);
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(stdout, "");
        assert!(
            stderr.starts_with(
                "examples/smtp/blog.rules:11:1: warning: this pass (sid 1000008) keeps sids 1000000, 1000001, 1000002, 1000003, 1000004 from seeing the rest of the smtp flow: a pass on a TCP flow passes the whole flow at its first match; "
            ),
            "{stderr}"
        );
        assert!(stderr.contains(first), "{policy}: {stderr}");
        assert!(
            stderr.contains("hint: put the rules that must see later commands before it and make them drop/reject, or scope it with pass:packet (suricata-8), see docs/smtp-recipient-policy.md"),
            "{stderr}"
        );
        // sid 1000007 matches on the same first packet as the pass: it is not blinded.
        assert!(!stderr.contains("1000007"), "{stderr}");
        assert!(
            stderr.ends_with(&format!("{path}: ok (1 group, 7 rules, 1 warning)\n")),
            "{stderr}"
        );
    }
}

#[test]
fn the_reports_variants_check_clean_apart_from_the_trap() {
    for (name, sids) in [
        ("yamashita", "sid 1000010 "),
        ("yahoo", "sid 1000011 "),
        (
            "rcpt-offset",
            "sids 1000002, 1000000, 1000001, 1000003, 1000004 ",
        ),
    ] {
        let path = format!("examples/smtp/blog-variants/{name}.yaml");
        let (code, _, stderr) = check(&[&path]);
        assert_eq!(code, 0, "{stderr}");
        assert!(
            stderr.contains(&format!("(sid 1000008) keeps {sids}")),
            "{stderr}"
        );
        assert!(stderr.ends_with(", 1 warning)\n"), "{stderr}");
    }
}

#[test]
fn the_reports_tcp_variant_is_an_ip_only_pass() {
    // A header-only `pass tcp` is IP-only: it matches the SYN and passes the flow, so the
    // content rule before it never sees a data packet.
    let path = "examples/smtp/blog-variants/tcp.yaml";
    let (code, stdout, stderr) = check(&[path]);
    assert_eq!((code, stdout.as_str()), (0, ""), "{stderr}");
    assert_eq!(
        stderr,
        r#"examples/smtp/blog-variants/tcp.rules:4:1: warning: this pass (sid 1000008) is an IP-only rule, so sid 1000010 never sees the payload of the flows it covers: a tcp rule with only a header is evaluated on the first packet of each direction (the SYN and the SYN-ACK) and passes the whole flow there; the rules after it never see a packet of the flow, and those before it only ever see the handshake
  |
4 | pass tcp $HOME_NET any -> any 25 (msg:"pass TCP any"; sid:1000008; rev:1;)
  | ^^^^
  hint: make the pass decide on the traffic: add flow:established plus content or app-layer conditions (e.g. pass smtp ... with smtp.* keywords), or scope it with pass:packet (suricata-8), see docs/smtp-recipient-policy.md
examples/smtp/blog-variants/tcp.yaml: ok (1 group, 2 rules, 1 warning)
"#
    );
    // With flow:established the pass is no longer IP-only (and not an app-layer pass either).
    let rules = example("blog-variants/tcp.rules").replace(
        "(msg:\"pass TCP any\";",
        "(msg:\"pass TCP any\"; flow:established;",
    );
    let d = dir_with(&[("r.rules", &rules)]);
    let (code, _, stderr) = check_in(d.path(), &["r.rules"]);
    assert_eq!((code, stderr.as_str()), (0, "r.rules: ok (2 rules)\n"));
}

#[test]
fn recipient_recipes_check_clean() {
    for (file, rules) in [
        ("recipients-strict.yaml", 3),
        ("recipients-domains.yaml", 3),
        ("recipients-action-order.yaml", 1),
    ] {
        let path = format!("examples/smtp/{file}");
        let (code, stdout, stderr) = check(&[&path]);
        let s = if rules == 1 { "" } else { "s" };
        assert_eq!(stderr, format!("{path}: ok (1 group, {rules} rule{s})\n"));
        assert_eq!((code, stdout.as_str()), (0, ""));
    }
}

#[test]
fn aws_nfw_rejects_the_recipe_with_located_hints() {
    let rules = example("recipients.rules");
    let d = dir_with(&[
        ("recipients.rules", &rules),
        (
            "nfw.yaml",
            "engine_profile: aws-nfw\nrule_order: strict\ndefault_actions: [aws:drop_established]\nrule_groups:\n  - {name: r, rules: recipients.rules}\n",
        ),
    ]);
    let (code, stdout, stderr) = check_in(d.path(), &["nfw.yaml"]);
    assert_eq!((code, stdout.as_str()), (1, ""), "{stderr}");
    let line = rules
        .lines()
        .position(|l| l.starts_with("drop:flow"))
        .unwrap()
        + 1;
    let col = rules
        .lines()
        .nth(line - 1)
        .unwrap()
        .find("smtp.rcpt_to")
        .unwrap()
        + 1;
    assert!(
        stderr.contains(&format!(
            "recipients.rules:{line}:{col}: error: AWS Network Firewall runs Suricata 7.0, which has no 'smtp.rcpt_to' keyword (added in Suricata 8.0)"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: Network Firewall runs Suricata 7.0, which has no smtp.rcpt_to buffer; use engine_profile: suricata-8, or (weaker) match the raw stream: content:\"RCPT TO:<\"; nocase;"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "recipients.rules:{line}:1: error: AWS Network Firewall runs Suricata 7.0, which has no action scopes: 'drop:flow' is Suricata 8.0 syntax"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "recipients.rules:{}:1: error: AWS Network Firewall runs Suricata 7.0, which has no action scopes: 'pass:packet' is Suricata 8.0 syntax",
            line + 1
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: Suricata 7.0 decides the scope from the rule type: a pass on an app-layer rule passes the whole flow, so without ':packet' this rule would become a flow-wide pass"),
        "{stderr}"
    );
    assert!(
        stderr.ends_with("nfw.yaml: 4 errors, 0 warnings\n"),
        "{stderr}"
    );

    // The same rules under suricata-8: valid.
    let s8 = dir_with(&[
        ("recipients.rules", &rules),
        (
            "s8.yaml",
            "engine_profile: suricata-8\nrule_order: strict\nrule_groups:\n  - {name: r, rules: recipients.rules}\n",
        ),
    ]);
    let (code, _, stderr) = check_in(s8.path(), &["s8.yaml"]);
    assert_eq!(
        (code, stderr.as_str()),
        (0, "s8.yaml: ok (1 group, 3 rules)\n")
    );
}

#[test]
fn dsize_with_a_buffer_and_unmatchable_case_are_errors() {
    let d = dir_with(&[(
        "bad.rules",
        "alert smtp any any -> any 25 (smtp.rcpt_to; content:\"@x\"; dsize:>10; sid:1;)\n\
         alert smtp any any -> any 25 (smtp.helo; to_lowercase; content:\"Relay\"; sid:2;)\n\
         alert smtp any any -> any 25 (content:\"QUIT\"; nocase; endswith; sid:3;)\n",
    )]);
    let (code, _, stderr) = check_in(d.path(), &["bad.rules"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("bad.rules:1:59: error: dsize is not allowed with app-layer buffers (this rule also uses 'smtp.rcpt_to')"),
        "{stderr}"
    );
    assert!(
        stderr.contains("bad.rules:2:56: error: content contains upper-case letters and can never match after 'to_lowercase'"),
        "{stderr}"
    );
    // `endswith` on a line-oriented command match is legal: no diagnostic for line 3.
    assert!(!stderr.contains("bad.rules:3:"), "{stderr}");
    assert!(
        stderr.ends_with("bad.rules: 2 errors, 0 warnings\n"),
        "{stderr}"
    );
}
