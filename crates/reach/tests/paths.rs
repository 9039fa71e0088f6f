//! The path walk on models without a firewall: allow lists, blackholes, missing routes,
//! internet gateways with and without a public address, east-west local delivery, and an
//! appliance host as a route target.

use std::path::Path;

use sekisho_reach::{Analyzer, Dest, Model, Proto, Question, Status, Talk};

const MODEL: &str = "\
vpc: {cidr: 10.2.0.0/16}
hosts:
  web:  {subnet: public, address: 10.2.1.10, public_ip: 198.51.100.20,
         egress: [{proto: tcp, ports: 443}], ingress: [{proto: tcp, ports: 443, cidr: 10.2.0.0/16}]}
  db:   {subnet: private, address: 10.2.2.10, ingress: [{proto: tcp, ports: 5432, cidr: 10.2.1.0/24}]}
  lone: {subnet: private, address: 10.2.2.20}
  box:  {subnet: appliance, address: 10.2.3.10}
  far:  {subnet: isolated, address: 10.2.4.10}
subnets:
  public:    {cidr: 10.2.1.0/24, route_table: rt-public}
  private:   {cidr: 10.2.2.0/24, route_table: rt-private}
  appliance: {cidr: 10.2.3.0/24, route_table: rt-appliance}
  isolated:  {cidr: 10.2.4.0/24, route_table: rt-isolated}
route_tables:
  rt-public:    [{dest: 0.0.0.0/0, target: igw}]
  rt-private:   [{dest: 0.0.0.0/0, target: igw}, {dest: 192.0.2.0/24, target: blackhole}, {dest: 203.0.113.0/24, target: box}]
  rt-appliance: [{dest: 0.0.0.0/0, target: igw}]
  rt-isolated:  [{dest: 10.2.0.0/16, target: blackhole}]
internet_gateways: {igw: {}}
";

fn ask(from: &str, to: Dest, port: u16) -> sekisho_reach::Analysis {
    let m = Model::parse("paths.yaml", MODEL, Path::new(".")).unwrap_or_else(|d| panic!("{d:#?}"));
    let a = Analyzer::new(m).expect("no firewalls to compile");
    a.analyze(&Question {
        from: from.into(),
        to,
        port,
        talk: Talk::new(Proto::Tcp),
    })
    .expect("question")
}

fn code(a: &sekisho_reach::Analysis) -> String {
    a.explanations
        .first()
        .and_then(|e| e["ExplanationCode"].as_str())
        .unwrap_or("")
        .to_string()
}

fn addr(a: &str) -> Dest {
    Dest::Addr(a.parse().expect("addr"))
}

#[test]
fn a_public_host_reaches_the_internet_through_the_gateway_within_its_allow_list() {
    let r = ask("web", addr("203.0.113.7"), 443);
    assert_eq!(r.status, Status::Reachable, "{}", r.to_text());
    let igw = r.forward.hops.iter().find(|h| h.id == "igw").expect("igw");
    assert_eq!(
        igw.outbound.src.to_string(),
        "198.51.100.20",
        "public address"
    );
    let back = r.ret.as_ref().expect("return");
    assert_eq!(back.hops.last().map(|h| h.id.as_str()), Some("web"));
    // The egress allow list admits 443 only.
    let r = ask("web", addr("203.0.113.7"), 587);
    assert_eq!(r.status, Status::Blocked);
    assert_eq!(code(&r), "ENI_SG_RULES_MISMATCH");
}

#[test]
fn a_private_host_without_nat_cannot_use_the_internet_gateway() {
    let r = ask("lone", addr("8.8.8.8"), 443);
    assert_eq!(r.status, Status::NoRoute, "{}", r.to_text());
    assert_eq!(code(&r), "IGW_PUBLIC_IP_ASSOCIATION_FOR_EGRESS");
}

#[test]
fn blackholes_missing_routes_and_appliances() {
    let r = ask("lone", addr("192.0.2.9"), 80);
    assert_eq!(
        (r.status, code(&r).as_str()),
        (Status::NoRoute, "BAD_STATE_ROUTE")
    );
    let r = ask("far", addr("8.8.8.8"), 80);
    assert_eq!(
        (r.status, code(&r).as_str()),
        (Status::NoRoute, "NO_ROUTE_TO_DESTINATION")
    );
    let r = ask("far", Dest::Host("lone".into()), 80);
    assert_eq!(
        (r.status, code(&r).as_str()),
        (Status::NoRoute, "BAD_STATE_ROUTE"),
        "explicit /16 beats local"
    );
    // 203.0.113.0/24 goes through the appliance `box`, which forwards by its own table; box
    // has no public address, so the gateway refuses.
    let r = ask("lone", addr("203.0.113.9"), 80);
    let ids: Vec<&str> = r.forward.hops.iter().map(|h| h.id.as_str()).collect();
    assert!(
        ids.contains(&"box") && ids.contains(&"rt-appliance"),
        "{ids:?}"
    );
    assert_eq!(code(&r), "IGW_PUBLIC_IP_ASSOCIATION_FOR_EGRESS");
}

#[test]
fn east_west_is_delivered_locally_and_checked_by_the_ingress_allow_list() {
    let r = ask("web", Dest::Host("db".into()), 5432);
    assert_eq!(
        r.status,
        Status::Blocked,
        "web's egress list has only 443:\n{}",
        r.to_text()
    );
    let r = ask("lone", Dest::Host("web".into()), 443);
    assert_eq!(r.status, Status::Reachable, "{}", r.to_text());
    let route = r.forward.hops[1].route.clone().expect("route");
    assert!(route.implicit, "the VPC local route");
    let r = ask("lone", Dest::Host("db".into()), 5432);
    assert_eq!(
        r.status,
        Status::Blocked,
        "db admits 5432 from 10.2.1.0/24 only"
    );
    assert_eq!(code(&r), "ENI_SG_RULES_MISMATCH");
    let r = ask("lone", addr("10.2.9.9"), 80);
    assert_eq!(code(&r), "NO_POSSIBLE_DESTINATION");
}
