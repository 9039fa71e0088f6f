//! Exact rendered text of each error class users hit most (one test per class).

use sekisho_diag::SourceFile;
use sekisho_rules::{
    find_duplicate_sids, parse_file, parse_rule, validate_variables, validate_variables_in,
    Variables,
};

/// Parses `text` as file `a.rules` and renders all diagnostics.
fn render(text: &str) -> String {
    let src = SourceFile::new("a.rules", text);
    let f = parse_file(&src);
    f.diagnostics.iter().map(|d| d.render()).collect()
}

#[test]
fn unknown_keyword_with_did_you_mean() {
    assert_eq!(
        render("alert smtp any any -> any any (msg:\"x\"; smtp.rcpt; content:\"x\"; sid:9;)\n"),
        "a.rules:1:41: error: unknown keyword 'smtp.rcpt'
  |
1 | alert smtp any any -> any any (msg:\"x\"; smtp.rcpt; content:\"x\"; sid:9;)
  |                                         ^^^^^^^^^
  hint: did you mean 'smtp.rcpt_to'?
"
    );
}

#[test]
fn bad_address() {
    assert_eq!(
        render("alert tcp 10.0.0.300 any -> any any (sid:1;)\n"),
        "a.rules:1:11: error: invalid address '10.0.0.300': not an IP address
  |
1 | alert tcp 10.0.0.300 any -> any any (sid:1;)
  |           ^^^^^^^^^^
  hint: use any, an IP, a CIDR (10.0.0.0/8), a range (10.0.0.1-10.0.0.9), $VAR, !x or a [list]
"
    );
}

#[test]
fn bad_port() {
    assert_eq!(
        render("alert tcp any 70000 -> any any (sid:1;)\n"),
        "a.rules:1:15: error: invalid port '70000': port is larger than 65535
  |
1 | alert tcp any 70000 -> any any (sid:1;)
  |               ^^^^^
  hint: use any, a port 0-65535, a range (1024:65535, 1024:, :1023), $VAR, !x or a [list]
"
    );
}

#[test]
fn unterminated_quote_from_unescaped_semicolon() {
    assert_eq!(
        render("alert tcp any any -> any any (content:\"abc; sid:1;)\n"),
        "a.rules:1:39: error: unterminated quote in 'content' value
  |
1 | alert tcp any any -> any any (content:\"abc; sid:1;)
  |                                       ^^^^
  hint: escape ';' inside content as \\; or |3B|
"
    );
}

#[test]
fn missing_sid() {
    assert_eq!(
        render("alert tcp any any -> any any (msg:\"no sid\"; content:\"abc\";)\n"),
        "a.rules:1:1: error: rule has no sid
  |
1 | alert tcp any any -> any any (msg:\"no sid\"; content:\"abc\";)
  | ^^^^^
  hint: add a unique rule id, e.g. 'sid:1000001;' (ids from 1000000 are for local rules)
"
    );
}

#[test]
fn duplicate_sid_names_first_line() {
    let text = "alert tcp any any -> any any (msg:\"a\"; sid:7;)\nalert tcp any any -> any any (msg:\"b\"; sid:7;)\n";
    assert_eq!(
        render(text),
        "a.rules:2:40: error: duplicate sid 7: first used on line 1
  |
2 | alert tcp any any -> any any (msg:\"b\"; sid:7;)
  |                                        ^^^^^
  hint: give every rule a unique sid; bump 'rev' instead when updating a rule
"
    );
    let src = SourceFile::new("a.rules", text);
    // The file keeps the first rule only; across groups the policy crate uses the free fn.
    assert_eq!(parse_file(&src).rules.len(), 1);
    let a = parse_rule("alert tcp any any -> any any (msg:\"a\"; sid:7;)").unwrap();
    let b = parse_rule("alert udp any any -> any any (msg:\"b\"; sid:7;)").unwrap();
    let c = parse_rule("alert udp any any -> any any (msg:\"c\"; sid:7; gid:2;)").unwrap();
    let d = find_duplicate_sids(&[a, b, c]);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].message, "duplicate sid 7: first used on line 1");
}

#[test]
fn duplicate_sid_with_higher_rev_replaces() {
    let text = "alert tcp any any -> any any (msg:\"a\"; sid:7; rev:1;)\nalert tcp any any -> any any (msg:\"b\"; sid:7; rev:2;)\n";
    let src = SourceFile::new("a.rules", text);
    let f = parse_file(&src);
    assert_eq!(f.rules.len(), 1);
    assert_eq!(f.rules[0].msg(), Some("b"));
    assert!(!f.has_errors());
    assert_eq!(f.diagnostics.len(), 1);
}

#[test]
fn undefined_variable() {
    let text = "alert tcp $FOO any -> $HOME_NET $HTTP_PORTS (sid:1;)";
    let rule = parse_rule(text).unwrap();
    let src = SourceFile::new("b.rules", format!("{text}\n"));
    let vars = Variables::suricata_defaults();
    let d: String = validate_variables_in(&rule, &vars, &src)
        .iter()
        .map(|d| d.render())
        .collect();
    assert_eq!(
        d,
        "b.rules:1:11: error: undefined variable '$FOO' in rule sid 1 (source address)
  |
1 | alert tcp $FOO any -> $HOME_NET $HTTP_PORTS (sid:1;)
  |           ^^^^
  hint: define it under 'variables:' in the policy, e.g. FOO: \"[10.0.0.0/8]\"
"
    );
    // Without a source file the message and hint are the same, with no location.
    let d = validate_variables(&rule, &vars);
    assert_eq!(d.len(), 1);
    assert_eq!(
        d[0].render(),
        "error: undefined variable '$FOO' in rule sid 1 (source address)
  hint: define it under 'variables:' in the policy, e.g. FOO: \"[10.0.0.0/8]\"
"
    );
}

#[test]
fn undefined_port_variable_hint_gives_a_port_example() {
    let src = SourceFile::new(
        "p.rules",
        "alert tcp any any -> any $SMTP_PORTS (sid:1;)\nalert tcp any $APP_PORTS -> any 80 (sid:2;)\n",
    );
    let vars = Variables::suricata_defaults();
    let hints: Vec<String> = parse_file(&src)
        .rules
        .iter()
        .flat_map(|r| validate_variables_in(r, &vars, &src))
        .map(|d| d.hint.unwrap_or_default())
        .collect();
    assert_eq!(
        hints,
        [
            "define it under 'variables:' in the policy, e.g. SMTP_PORTS: \"[25, 465, 587]\"",
            "define it under 'variables:' in the policy, e.g. APP_PORTS: \"[80, 443]\"",
        ]
    );
}

#[test]
fn not_any_variable() {
    let mut vars = Variables::suricata_defaults();
    vars.set_address("HOME_NET", "any").unwrap();
    let rule = parse_rule("alert tcp $EXTERNAL_NET any -> any any (sid:3;)").unwrap();
    let d = validate_variables(&rule, &vars);
    assert_eq!(d.len(), 1);
    assert_eq!(
        d[0].message,
        "expression matches no address or port (\"not any\") in rule sid 3 (source address)"
    );
}

#[test]
fn indented_rule_warning() {
    assert_eq!(
        render("# c\n  alert tcp any any -> any any (msg:\"a\"; sid:7;)\n"),
        "a.rules:2:3: warning: indented rule is ignored: Suricata skips lines starting with whitespace
  |
2 |   alert tcp any any -> any any (msg:\"a\"; sid:7;)
  |   ^^^^^
  hint: remove the leading whitespace to load this rule, or start the line with '#' to comment it out
"
    );
    // An indented comment is not a rule: no warning.
    assert_eq!(render("   # just text (with parens)\n"), "");
}

#[test]
fn continuation_lines_keep_file_positions() {
    // The error is on the second physical line; line and column must point there.
    assert_eq!(
        render("alert tcp any any -> any any (msg:\"a\"; \\\n  flow:establisehd; sid:7;)\n"),
        "a.rules:2:8: error: invalid value for 'flow': unknown flow option 'establisehd'
  |
2 |   flow:establisehd; sid:7;)
  |        ^^^^^^^^^^^
  hint: did you mean 'established'?
"
    );
}

#[test]
fn http_host_case_is_an_error() {
    assert_eq!(
        render("alert http any any -> any any (msg:\"a\"; \\\n  http.host; content:\"Example.com\"; sid:7;)\n"),
        "a.rules:2:14: error: http.host content contains upper-case letters and can never match: the buffer is lower-cased
  |
2 |   http.host; content:\"Example.com\"; sid:7;)
  |              ^^^^^^^^^^^^^^^^^^^^^
  hint: write the host name in lower case
"
    );
    let e =
        parse_rule("alert http any any -> any any (http.host; content:\"a.com\"; nocase; sid:7;)")
            .unwrap_err();
    assert_eq!(
        e.message,
        "'nocase' is not allowed on http.host content: the buffer is already lower-cased"
    );
}

#[test]
fn stray_semicolon_is_an_empty_option_not_an_unknown_keyword() {
    let out = render("alert tcp any any -> any 25 (msg:\"x\"; content:\"BB\";; sid:9;)\n");
    assert!(
        out.starts_with("a.rules:1:52: error: empty option (a stray ';'?)\n"),
        "{out}"
    );
    assert!(
        out.ends_with("  hint: remove the extra ';' between the options\n"),
        "{out}"
    );
    assert!(!out.contains("unknown keyword"), "{out}");
}
