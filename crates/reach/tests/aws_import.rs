//! The AWS CLI importer: the field report's VPC written by hand in the shapes the AWS CLI
//! prints (`examples/reach/aws/`) gives the same answers as the YAML model
//! (`examples/reach/vpc*.yaml`), for the report's questions, also after the same edits
//! (default action drop_established; the public subnet's return route deleted).

use std::path::{Path, PathBuf};

use sekisho_reach::{Analysis, Analyzer, Dest, Model, Proto, Question, Talk};

fn root() -> PathBuf {
    sekisho_testutil::repo_root()
}

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch(tag: &str) -> Scratch {
    let d = std::env::temp_dir().join(format!("sekisho-reach-test-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("scratch");
    Scratch(d)
}

/// Copies examples/reach/aws into `dir`, applying `edit(file name, text)`.
fn aws_copy(dir: &Path, edit: impl Fn(&str, String) -> String) -> PathBuf {
    let src = root().join("examples/reach/aws");
    let out = dir.join("aws");
    std::fs::create_dir_all(&out).expect("dir");
    for e in std::fs::read_dir(&src)
        .expect("examples/reach/aws")
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(e.path()).expect("read");
        std::fs::write(out.join(&name), edit(&name, text)).expect("write");
    }
    out
}

fn questions() -> Vec<(Dest, u16, Talk)> {
    let mut tls = Talk::new(Proto::Tls);
    tls.sni = Some("dev.example.com".into());
    let mut http = Talk::new(Proto::Http);
    http.host = Some("dev.example.com".into());
    let internet = || Dest::Addr("203.0.113.10".parse().expect("addr"));
    vec![
        (Dest::Name("dev.example.com".into()), 443, tls),
        (internet(), 80, http),
        (internet(), 587, Talk::new(Proto::Tcp)),
        (internet(), 53, Talk::new(Proto::Dns)),
    ]
}

/// Status, (sid, default action, packet) per firewall, forward and return hop kinds.
type Summary = (
    String,
    Vec<(Option<u64>, Option<String>, Option<usize>)>,
    Vec<&'static str>,
    Vec<&'static str>,
);

/// What must agree: status, who decided (rule sid or default action), at which packet,
/// and the shape of both paths (component kinds in order).
fn summary(a: &Analysis) -> Summary {
    (
        a.status.as_str().to_string(),
        a.firewalls
            .iter()
            .map(|v| {
                (
                    v.rule.as_ref().map(|r| r.sid),
                    v.default_action.clone(),
                    v.packet.as_ref().map(|p| p.0),
                )
            })
            .collect(),
        a.forward.hops.iter().map(|h| h.kind.as_str()).collect(),
        a.ret
            .iter()
            .flat_map(|r| r.hops.iter().map(|h| h.kind.as_str()))
            .collect(),
    )
}

fn compare(yaml: &str, aws_dir: &Path, policies: &Path) {
    let y =
        Analyzer::new(Model::load(&root().join("examples/reach").join(yaml)).expect("yaml model"))
            .expect("yaml analyzer");
    let m =
        sekisho_reach::aws::import(aws_dir, policies).unwrap_or_else(|d| panic!("import: {d:#?}"));
    assert!(
        m.hosts.contains_key("app"),
        "the instance is named by its Name tag"
    );
    let a = Analyzer::new(m).unwrap_or_else(|d| panic!("aws analyzer: {d:#?}"));
    for (to, port, talk) in questions() {
        let q = |from: &str| Question {
            from: from.into(),
            to: to.clone(),
            port,
            talk: talk.clone(),
        };
        let ya = y.analyze(&q("app")).expect("yaml answer");
        let aa = a
            .analyze(&q("10.1.1.10"))
            .expect("aws answer (source by address)");
        assert_eq!(
            summary(&ya),
            summary(&aa),
            "{yaml} vs AWS import, {} {port}:\n{}\n{}",
            talk.proto,
            ya.to_text(),
            aa.to_text()
        );
    }
}

#[test]
fn imported_vpc_answers_like_the_yaml_model() {
    let s = scratch("plain");
    let dir = aws_copy(&s.0, |_, t| t);
    compare("vpc.yaml", &dir, &s.0.join("policies"));
    // The firewall endpoint keeps its vpce id (what route tables name).
    let m = sekisho_reach::aws::import(&dir, &s.0.join("policies")).expect("import");
    assert!(m.firewalls.contains_key("vpce-0fw0123456789abc"));
    assert_eq!(m.vpc.to_string(), "10.1.0.0/16");
    assert_eq!(
        m.internet_gateways["igw-0eee5555igw00001"]
            .route_table
            .as_deref(),
        Some("rtb-0fff6666igwedge1"),
        "the gateway association makes the edge route table"
    );
}

#[test]
fn imported_vpc_with_drop_established_answers_like_the_yaml_model() {
    let s = scratch("drop-established");
    let dir = aws_copy(&s.0, |name, t| {
        if name == "firewall-policy.json" {
            t.replace(
                "\"StatefulDefaultActions\": []",
                "\"StatefulDefaultActions\": [\"aws:drop_established\"]",
            )
        } else {
            t
        }
    });
    compare("vpc-drop-established.yaml", &dir, &s.0.join("policies"));
}

#[test]
fn imported_vpc_without_the_return_route_answers_like_the_yaml_model() {
    let s = scratch("no-return");
    let dir = aws_copy(&s.0, |name, t| {
        if name == "route-tables.json" {
            t.replace(
                ",\n                {\"DestinationCidrBlock\": \"10.1.1.0/24\", \"GatewayId\": \"vpce-0fw0123456789abc\", \"Origin\": \"CreateRoute\", \"State\": \"active\"}",
                "",
            )
        } else {
            t
        }
    });
    let text = std::fs::read_to_string(dir.join("route-tables.json")).expect("read");
    assert!(
        !text.contains("\"10.1.1.0/24\""),
        "the edit removed the route"
    );
    compare("vpc-no-return-route.yaml", &dir, &s.0.join("policies"));
}

#[test]
fn missing_pieces_are_named_with_the_command_to_run() {
    let s = scratch("missing");
    let dir = aws_copy(&s.0, |_, t| t);
    std::fs::remove_file(dir.join("rule-group-egress.json")).expect("rm");
    let e = sekisho_reach::aws::import(&dir, &s.0.join("policies")).expect_err("incomplete");
    let text: String = e.iter().map(|d| d.render()).collect();
    assert!(text.contains("describe-rule-group --rule-group-arn arn:aws:network-firewall:us-east-1:111122223333:stateful-rulegroup/egress"), "{text}");
    std::fs::write(
        dir.join("subnets.json"),
        "{\"Subnets\": [\n  {\"SubnetId\": }\n]}",
    )
    .expect("write");
    let e = sekisho_reach::aws::import(&dir, &s.0.join("policies")).expect_err("bad json");
    let text: String = e.iter().map(|d| d.render()).collect();
    assert!(text.contains("subnets.json:2:"), "located: {text}");
}
