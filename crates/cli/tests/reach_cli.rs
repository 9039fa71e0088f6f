//! `sekisho reach` on the command line: exit statuses, the AWS-shaped JSON, sweeps, and
//! located errors for a bad model.

use assert_cmd::Command;
use serde_json::Value;

fn reach(args: &[&str]) -> assert_cmd::assert::Assert {
    Command::cargo_bin("sekisho")
        .expect("binary")
        .current_dir(sekisho_testutil::repo_root())
        .arg("reach")
        .args(args)
        .assert()
}

fn stdout(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stdout).into_owned()
}

#[test]
fn json_uses_the_aws_analysis_field_names_and_status() {
    let a = reach(&[
        "--model",
        "examples/reach/vpc.yaml",
        "--from",
        "app",
        "--to",
        "203.0.113.10:80",
        "--proto",
        "http",
        "--format",
        "json",
    ])
    .code(1);
    let v: Value = serde_json::from_str(&stdout(&a)).expect("JSON");
    assert_eq!(v["status"], "blocked");
    assert_eq!(v["NetworkPathFound"], false);
    let fwd = v["ForwardPathComponents"].as_array().expect("forward");
    assert_eq!(fwd[0]["SequenceNumber"], 1);
    assert_eq!(fwd[0]["Component"]["Id"], "app");
    assert_eq!(
        fwd[0]["OutboundHeader"]["DestinationPortRanges"][0]["From"],
        80
    );
    assert_eq!(fwd[0]["OutboundHeader"]["Protocol"], "6");
    assert_eq!(fwd[1]["RouteTableRoute"]["DestinationCidr"], "0.0.0.0/0");
    assert_eq!(fwd[1]["RouteTableRoute"]["GatewayId"], "fw-a");
    assert_eq!(fwd[2]["Firewall"]["Sid"], 1002);
    assert_eq!(fwd[2]["Firewall"]["Blocked"], true);
    assert_eq!(
        fwd[4]["OutboundHeader"]["SourceAddresses"][0], "198.51.100.10/32",
        "NAT"
    );
    assert!(!v["ReturnPathComponents"]
        .as_array()
        .expect("return")
        .is_empty());
    let e = &v["Explanations"][0];
    assert_eq!(e["ExplanationCode"], "FIREWALL_RULES_RESTRICTION");
    assert_eq!(e["FirewallStatefulRule"]["Msg"], "reject plain HTTP");
    assert_eq!(e["DecidingPacket"]["Index"], 4);
    assert!(e["Explain"][0]
        .as_str()
        .is_some_and(|l| l.starts_with("pkt 4 flow 1")));
}

#[test]
fn reachable_exits_zero_and_names_the_rule_and_packet() {
    let a = reach(&[
        "--model",
        "examples/reach/vpc-drop-established.yaml",
        "--from",
        "app",
        "--to",
        "dev.example.com:443",
        "--proto",
        "tls",
    ])
    .success();
    let out = stdout(&a);
    assert!(out.contains("status: reachable"), "{out}");
    assert!(out.contains("decided by rule: group egress, sid 1001, rev 1, action pass, msg \"pass TLS to the internet\""), "{out}");
    assert!(
        out.contains(
            "at packet 4 of the conversation (client to server, ClientHello (SNI dev.example.com))"
        ),
        "{out}"
    );
}

#[test]
fn no_route_is_reported_with_the_route_table() {
    let dir = std::env::temp_dir().join(format!("sekisho-reach-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let root = sekisho_testutil::repo_root().join("examples/reach");
    let text = std::fs::read_to_string(root.join("vpc.yaml")).expect("model");
    let text = text
        .replace(
            "rt-private:  [{dest: 0.0.0.0/0, target: fw-a}]",
            "rt-private:  [{dest: 192.0.2.0/24, target: fw-a}]",
        )
        .replace(
            "policy: policy.yaml",
            &format!("policy: {}", root.join("policy.yaml").display()),
        );
    let model = dir.join("no-default.yaml");
    std::fs::write(&model, text).expect("write");
    let a = reach(&[
        "--model",
        &model.display().to_string(),
        "--from",
        "app",
        "--to",
        "203.0.113.10:443",
        "--format",
        "json",
    ])
    .code(1);
    let v: Value = serde_json::from_str(&stdout(&a)).expect("JSON");
    assert_eq!(v["status"], "no-route");
    assert_eq!(
        v["Explanations"][0]["ExplanationCode"],
        "NO_ROUTE_TO_DESTINATION"
    );
    assert_eq!(v["Explanations"][0]["Component"]["Id"], "rt-private");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sweeps_print_one_line_per_port_name_and_recipient() {
    let a = reach(&[
        "--model",
        "examples/reach/vpc.yaml",
        "--from",
        "app",
        "--to",
        "203.0.113.10",
        "--proto",
        "http",
        "--ports",
        "79-81",
    ])
    .success();
    let lines: Vec<String> = stdout(&a).lines().map(String::from).collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(
        lines[1].starts_with("79") && lines[1].contains("reachable"),
        "{lines:?}"
    );
    assert!(
        lines[2].starts_with("80") && lines[2].contains("blocked") && lines[2].contains("sid 1002"),
        "{lines:?}"
    );
    assert!(
        lines[3].starts_with("81") && lines[3].contains("reachable"),
        "{lines:?}"
    );

    let dir = std::env::temp_dir().join(format!("sekisho-reach-sweep-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let names = dir.join("names.txt");
    std::fs::write(&names, "dev.example.com\n# skipped\n\nevil.test\n").expect("write");
    let a = reach(&[
        "--model",
        "examples/reach/vpc-domains.yaml",
        "--from",
        "app",
        "--to",
        "203.0.113.10",
        "--sni-list",
        &names.display().to_string(),
        "--format",
        "json",
    ])
    .success();
    let v: Value = serde_json::from_str(&stdout(&a)).expect("JSON");
    assert_eq!(v[0]["sni"], "dev.example.com");
    assert_eq!(v[0]["status"], "reachable");
    assert_eq!(v[1]["sni"], "evil.test");
    assert_eq!(v[1]["status"], "blocked");
    assert!(
        v[1]["DecidedBy"]
            .as_str()
            .is_some_and(|d| d.contains("not matching any TLS allowlisted FQDNs")),
        "{v}"
    );

    let rcpts = dir.join("rcpt.txt");
    std::fs::write(&rcpts, "a@gmail.example\nb@yahoo.example\n").expect("write");
    let a = reach(&[
        "--model",
        "examples/reach/vpc-smtp.yaml",
        "--from",
        "app",
        "--to",
        "203.0.113.25",
        "--proto",
        "smtp",
        "--rcpt-list",
        &rcpts.display().to_string(),
    ])
    .success();
    let out = stdout(&a);
    assert!(
        out.lines()
            .any(|l| l.starts_with("a@gmail.example") && l.contains("reachable")),
        "{out}"
    );
    assert!(
        out.lines().any(|l| l.starts_with("b@yahoo.example")
            && l.contains("blocked")
            && l.contains("sid 2000041")),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bad_model_is_a_located_error_with_a_hint() {
    let dir = std::env::temp_dir().join(format!("sekisho-reach-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let model = dir.join("bad.yaml");
    std::fs::write(
        &model,
        "vpc: {cidr: 10.1.0.0/16}\nsubnets:\n  a: {cidr: 10.1.1.0/24, route_table: rt}\nroute_tables:\n  rt: [{dest: 0.0.0.0/0, target: fw-b}]\nfirewalls: {fw-a: {subnet: a, policy: p.yaml}}\n",
    )
    .expect("write");
    let a = reach(&[
        "--model",
        &model.display().to_string(),
        "--from",
        "x",
        "--to",
        "1.2.3.4:1",
    ])
    .code(2);
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(err.contains("bad.yaml:5:"), "{err}");
    assert!(
        err.contains("unknown route target 'fw-b' (did you mean 'fw-a'?)"),
        "{err}"
    );
    std::fs::write(&model, "vpc: {cidr: 10.1.0.0/16}\nsubnet: {}\n").expect("write");
    let a = reach(&[
        "--model",
        &model.display().to_string(),
        "--from",
        "x",
        "--to",
        "1.2.3.4:1",
    ])
    .code(2);
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(
        err.contains("bad.yaml:2:1: error: unknown field `subnet`"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
