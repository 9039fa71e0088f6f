//! The field report's VPC (issue 14, `examples/reach/`): every answer the report got wrong
//! from the AWS analyser, answered by running the firewall's real sensor on a synthesised
//! conversation.

use std::path::PathBuf;

use sekisho_reach::analysis::NAMED_ADDR;
use sekisho_reach::{Analysis, Analyzer, Dest, Model, Proto, Question, Status, Talk};

fn example(name: &str) -> PathBuf {
    sekisho_testutil::repo_root()
        .join("examples/reach")
        .join(name)
}

fn analyzer(model: &str) -> Analyzer {
    let m = Model::load(&example(model)).unwrap_or_else(|d| panic!("{model}: {d:#?}"));
    Analyzer::new(m).unwrap_or_else(|d| panic!("{model}: {d:#?}"))
}

fn ask(a: &Analyzer, to: Dest, port: u16, talk: Talk) -> Analysis {
    a.analyze(&Question {
        from: "app".into(),
        to,
        port,
        talk,
    })
    .expect("question")
}

fn tls(sni: &str) -> Talk {
    let mut t = Talk::new(Proto::Tls);
    t.sni = Some(sni.into());
    t
}

fn internet() -> Dest {
    Dest::Addr("203.0.113.10".parse().expect("addr"))
}

#[test]
fn tls_443_is_reachable_by_the_pass_tls_rule_with_and_without_drop_established() {
    for model in [
        "vpc.yaml",
        "vpc-drop-established.yaml",
        "vpc-app-layer.yaml",
    ] {
        let a = analyzer(model);
        let r = ask(
            &a,
            Dest::Name("dev.example.com".into()),
            443,
            tls("dev.example.com"),
        );
        assert_eq!(r.status, Status::Reachable, "{model}:\n{}", r.to_text());
        let v = r.verdict("fw-a").expect("fw-a on the path");
        assert!(
            v.forward && v.on_return,
            "{model}: both directions cross fw-a"
        );
        let rule = v.rule.as_ref().expect("a rule decided");
        assert_eq!((rule.sid, rule.group.as_str()), (1001, "egress"), "{model}");
        assert_eq!(rule.msg, "pass TLS to the internet");
        // Decided at the ClientHello (packet 4: after the three handshake packets).
        let (i, _, label) = v.packet.clone().expect("deciding packet");
        assert_eq!(i, 4, "{model}");
        assert!(
            label.starts_with("ClientHello (SNI dev.example.com)"),
            "{label}"
        );
        assert!(
            v.explain.iter().any(|l| l.contains("sid 1001 pass")),
            "{model}: {:?}",
            v.explain
        );
        // The path: private -> fw-a -> NAT (source translated) -> igw, and back through
        // the edge route 10.1.1.0/24 -> fw-a.
        let ids: Vec<&str> = r.forward.hops.iter().map(|h| h.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "app",
                "rt-private",
                "fw-a",
                "rt-firewall",
                "nat-a",
                "rt-public",
                "igw",
                &NAMED_ADDR.to_string()
            ]
        );
        let nat = &r.forward.hops[4];
        assert_eq!(nat.outbound.src.to_string(), "198.51.100.10");
        let back: Vec<&str> = r
            .ret
            .as_ref()
            .expect("return")
            .hops
            .iter()
            .map(|h| h.id.as_str())
            .collect();
        assert_eq!(back[3..], ["rt-public", "fw-a", "rt-firewall", "app"]);
    }
}

#[test]
fn http_80_is_blocked_by_the_reject_http_rule_with_sid_and_msg() {
    let a = analyzer("vpc.yaml");
    let mut talk = Talk::new(Proto::Http);
    talk.host = Some("dev.example.com".into());
    let r = ask(&a, internet(), 80, talk);
    assert_eq!(r.status, Status::Blocked, "{}", r.to_text());
    let v = r.verdict("fw-a").expect("fw-a");
    assert!(v.blocked);
    assert_eq!(v.action, "reject");
    let rule = v.rule.as_ref().expect("rule");
    assert_eq!(rule.sid, 1002);
    assert_eq!(rule.msg, "reject plain HTTP");
    let (i, _, label) = v.packet.clone().expect("packet");
    assert_eq!(i, 4, "decided at the request, not the handshake");
    assert!(label.contains("GET /"), "{label}");
    let json = r.to_json();
    assert_eq!(json["status"], "blocked");
    assert_eq!(json["NetworkPathFound"], false);
    let e = &json["Explanations"][0];
    assert_eq!(e["ExplanationCode"], "FIREWALL_RULES_RESTRICTION");
    assert_eq!(e["Component"]["Id"], "fw-a");
    assert_eq!(e["FirewallStatefulRule"]["Sid"], 1002);
    assert_eq!(e["FirewallStatefulRule"]["Msg"], "reject plain HTTP");
    assert_eq!(e["FirewallStatefulRule"]["RuleGroupArn"], "egress");
    assert_eq!(e["FirewallStatefulRule"]["RuleAction"], "reject");
}

#[test]
fn tcp_587_is_reachable_without_default_actions_and_blocked_by_drop_established() {
    let open = ask(
        &analyzer("vpc.yaml"),
        internet(),
        587,
        Talk::new(Proto::Tcp),
    );
    assert_eq!(open.status, Status::Reachable, "{}", open.to_text());
    let v = open.verdict("fw-a").expect("fw-a");
    assert!(v.rule.is_none(), "no rule decides TCP/587");
    assert!(
        v.default_action
            .as_deref()
            .unwrap_or("")
            .starts_with("none"),
        "{v:?}"
    );
    assert_eq!(
        v.packets_seen, 6,
        "handshake, one data segment each way, the last ACK"
    );

    let closed = ask(
        &analyzer("vpc-drop-established.yaml"),
        internet(),
        587,
        Talk::new(Proto::Tcp),
    );
    assert_eq!(closed.status, Status::Blocked, "{}", closed.to_text());
    let v = closed.verdict("fw-a").expect("fw-a");
    assert_eq!(v.default_action.as_deref(), Some("aws:drop_established"));
    assert!(v.rule.is_none());
    // The handshake passes; the first established data packet is dropped.
    let (i, _, label) = v.packet.clone().expect("packet");
    assert_eq!((i, label.as_str()), (4, "data (client)"));
    let json = closed.to_json();
    assert_eq!(
        json["Explanations"][0]["FirewallStatefulRule"]["RuleGroupArn"],
        "network-firewall-policy-default"
    );
}

#[test]
fn deleting_the_public_return_route_is_asymmetric_with_both_paths_shown() {
    let a = analyzer("vpc-no-return-route.yaml");
    let r = ask(
        &a,
        Dest::Name("dev.example.com".into()),
        443,
        tls("dev.example.com"),
    );
    assert_eq!(r.status, Status::Asymmetric, "{}", r.to_text());
    assert!(!r.reachable());
    let ret = r.ret.as_ref().expect("return path shown");
    assert!(
        ret.stop.is_none(),
        "the reply is delivered, around the firewall"
    );
    let local = ret
        .hops
        .iter()
        .find(|h| h.id == "rt-public")
        .and_then(|h| h.route.clone())
        .expect("rt-public on the return path");
    assert!(local.implicit, "the VPC local route carries the reply");
    assert!(ret.hops.iter().all(|h| h.id != "fw-a"));
    let v = r.verdict("fw-a").expect("fw-a");
    assert!(v.forward && !v.on_return);
    let json = r.to_json();
    assert_eq!(json["status"], "asymmetric");
    assert_eq!(json["NetworkPathFound"], false);
    assert!(json["ForwardPathComponents"]
        .as_array()
        .is_some_and(|c| !c.is_empty()));
    assert!(json["ReturnPathComponents"]
        .as_array()
        .is_some_and(|c| !c.is_empty()));
    assert_eq!(
        json["Explanations"][0]["ExplanationCode"],
        "ASYMMETRIC_PATH"
    );
}

#[test]
fn the_recipient_question_is_decided_at_the_rcpt() {
    let a = analyzer("vpc-smtp.yaml");
    let mut ok = Talk::new(Proto::Smtp);
    ok.rcpt = vec!["a@gmail.example".into()];
    let r = ask(&a, internet(), 25, ok);
    assert_eq!(r.status, Status::Reachable, "{}", r.to_text());
    let v = r.verdict("fw-a").expect("fw-a");
    assert_eq!(v.rule.as_ref().map(|r| r.sid), Some(2000042), "{v:?}");
    assert!(v
        .packet
        .as_ref()
        .is_some_and(|p| p.2 == "RCPT TO:<a@gmail.example>"));

    let mut bad = Talk::new(Proto::Smtp);
    bad.rcpt = vec!["b@yahoo.example".into()];
    let r = ask(&a, internet(), 25, bad);
    assert_eq!(r.status, Status::Blocked, "{}", r.to_text());
    let v = r.verdict("fw-a").expect("fw-a");
    let rule = v.rule.as_ref().expect("rule");
    assert_eq!(rule.sid, 2000041);
    assert_eq!(rule.msg, "SMTP recipient domain not on the allow list");
    assert_eq!(
        v.packet.as_ref().map(|p| p.2.as_str()),
        Some("RCPT TO:<b@yahoo.example>")
    );
    assert!(
        v.explain
            .iter()
            .any(|l| l.contains("smtp.rcpt_to <b@yahoo.example>")),
        "{:?}",
        v.explain
    );
}

/// The recipe shipped in examples/smtp (alice@example.com, bob@example.org) answers the
/// same way on this VPC, with HOME_NET overridden by the model's `vars`.
#[test]
fn the_examples_smtp_recipe_through_the_model() {
    let text = std::fs::read_to_string(example("vpc-smtp.yaml")).expect("model");
    let text = text.replace(
        "policy: recipients.yaml}",
        "policy: ../smtp/recipients-strict.yaml, vars: {HOME_NET: \"[10.1.0.0/16]\"}}",
    );
    let m = Model::parse("vpc-smtp-strict.yaml", &text, &example("")).expect("model");
    let a = Analyzer::new(m).expect("analyzer");
    for (rcpt, status) in [
        ("alice@example.com", Status::Reachable),
        ("mallory@evil.example", Status::Blocked),
    ] {
        let mut t = Talk::new(Proto::Smtp);
        t.rcpt = vec![rcpt.into()];
        let r = ask(&a, internet(), 25, t);
        assert_eq!(r.status, status, "{rcpt}:\n{}", r.to_text());
    }
}

#[test]
fn dns_passes_without_defaults_and_is_dropped_at_the_answer_by_the_app_layer_default() {
    let mut q = Talk::new(Proto::Dns);
    q.qname = "www.example.com".into();
    let r = ask(&analyzer("vpc.yaml"), internet(), 53, q.clone());
    assert_eq!(r.status, Status::Reachable, "{}", r.to_text());
    assert_eq!(r.to_json()["NetworkPathFound"], true);
    assert_eq!(r.to_json()["status"], "reachable");
    let r = ask(&analyzer("vpc-app-layer.yaml"), internet(), 53, q);
    assert_eq!(r.status, Status::Blocked, "{}", r.to_text());
    let v = r.verdict("fw-a").expect("fw-a");
    assert_eq!(
        v.default_action.as_deref(),
        Some("aws:drop_established_app_layer")
    );
    let (i, _, label) = v.packet.clone().expect("packet");
    assert_eq!((i, label.as_str()), (2, "DNS answer www.example.com A"));
}
