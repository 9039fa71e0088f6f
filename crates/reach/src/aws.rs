//! Builds a [`Model`] from the JSON the AWS CLI prints, so a Network Firewall user can check
//! their real VPC's rules offline.
//!
//! Put the output of these commands in one directory (any file names ending in `.json`;
//! each file's kind is recognised by its top-level key):
//!
//! | command | top-level key |
//! |---|---|
//! | `aws ec2 describe-subnets` | `Subnets` |
//! | `aws ec2 describe-route-tables` | `RouteTables` |
//! | `aws ec2 describe-nat-gateways` | `NatGateways` |
//! | `aws ec2 describe-internet-gateways` | `InternetGateways` |
//! | `aws ec2 describe-instances` | `Reservations` |
//! | `aws ec2 describe-vpcs` (optional) | `Vpcs` |
//! | `aws network-firewall describe-firewall` (one per firewall) | `Firewall` |
//! | `aws network-firewall describe-firewall-policy` (one per policy) | `FirewallPolicy` |
//! | `aws network-firewall describe-rule-group` (one per stateful group) | `RuleGroup` |
//!
//! Mapping: subnets, route tables, NAT and internet gateways keep their AWS ids; a firewall
//! becomes one endpoint per `FirewallStatus.SyncStates` attachment, named by its `vpce-` id
//! (the id route tables use), in the attachment's subnet; an instance becomes a host named
//! by its `Name` tag (else its id). Route table associations: a subnet association sets the
//! subnet's table, the main association every other subnet's, a gateway association the
//! internet gateway's ingress table. Each firewall's policy is written as a sekisho policy
//! (`engine_profile: aws-nfw`, the policy's rule order, default actions, stream exception
//! policy and HOME_NET (default: the VPC's CIDR, as Network Firewall does), and one
//! `nfw_rule_group` per `StatefulRuleGroupReferences` entry in priority order) into a
//! directory the caller chooses; the rule groups are read by the policy crate's NFW importer
//! from the JSON files as they are. Security groups are not imported (hosts get no allow
//! lists); stateless rule groups are not evaluated (`aws:forward_to_sfe` is assumed).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;
use sekisho_diag::{Diagnostic, SourceFile};
use serde_json::Value;

use crate::model::{
    parse_cidr, Firewall, Host, InternetGateway, Model, NatGateway, Route, Subnet, Target,
};

/// One JSON file of the directory.
struct Doc {
    path: PathBuf,
    value: Value,
}

fn err(path: &Path, msg: impl Into<String>, hint: &str) -> Diagnostic {
    let d = Diagnostic::error(msg)
        .with_code("reach-aws")
        .in_file(path.display().to_string());
    if hint.is_empty() {
        d
    } else {
        d.with_hint(hint)
    }
}

fn s<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

fn arr<'a>(v: &'a Value, k: &str) -> &'a [Value] {
    v.get(k)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn name_tag(v: &Value) -> Option<&str> {
    arr(v, "Tags")
        .iter()
        .find(|t| s(t, "Key") == Some("Name"))
        .and_then(|t| s(t, "Value"))
}

/// Reads every `*.json` file of `dir`, then builds the model; the firewall policies it
/// generates go to `policy_dir` (created if missing).
pub fn import(dir: &Path, policy_dir: &Path) -> Result<Model, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    let mut docs = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| {
        vec![err(
            dir,
            format!("cannot read the directory: {e}"),
            "give --aws a directory of AWS CLI JSON files",
        )]
    })?;
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    for p in paths {
        let text = match std::fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) => {
                diags.push(err(&p, format!("cannot read: {e}"), ""));
                continue;
            }
        };
        match serde_json::from_str::<Value>(&text) {
            Ok(value) => docs.push(Doc { path: p, value }),
            Err(e) => {
                let src = SourceFile::new(p.display().to_string(), text.clone());
                let line_start: usize = text
                    .split_inclusive('\n')
                    .take(e.line().saturating_sub(1))
                    .map(str::len)
                    .sum();
                let off = (line_start + e.column().saturating_sub(1)).min(text.len());
                diags.push(
                    Diagnostic::error(format!("not valid JSON: {e}"))
                        .with_code("reach-aws")
                        .at_span(&src, off..off + 1)
                        .with_hint("save the AWS CLI's output as it is (--output json)"),
                );
            }
        }
    }
    if !diags.is_empty() {
        return Err(diags);
    }
    build(dir, &docs, policy_dir)
}

fn docs_with<'a>(docs: &'a [Doc], key: &str) -> Vec<&'a Doc> {
    docs.iter().filter(|d| d.value.get(key).is_some()).collect()
}

fn build(dir: &Path, docs: &[Doc], policy_dir: &Path) -> Result<Model, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    let need = |diags: &mut Vec<Diagnostic>, key: &str, cmd: &str| {
        if docs_with(docs, key).is_empty() {
            diags.push(err(
                dir,
                format!("no `{cmd}` output (a JSON file with top-level key {key})"),
                &format!(
                    "run `aws {cmd} --output json > {}/<name>.json`",
                    dir.display()
                ),
            ));
        }
    };
    need(&mut diags, "Subnets", "ec2 describe-subnets");
    need(&mut diags, "RouteTables", "ec2 describe-route-tables");
    if !diags.is_empty() {
        return Err(diags);
    }
    let tables: Vec<(&Doc, &Value)> = docs_with(docs, "RouteTables")
        .into_iter()
        .flat_map(|d| arr(&d.value, "RouteTables").iter().map(move |t| (d, t)))
        .collect();
    let (vpc_id, vpc_cidr) = vpc(dir, docs, &tables)?;
    let mut m = Model {
        source: format!("{} (AWS CLI JSON, {vpc_id})", dir.display()),
        vpc: vpc_cidr,
        hosts: BTreeMap::new(),
        subnets: BTreeMap::new(),
        route_tables: BTreeMap::new(),
        firewalls: BTreeMap::new(),
        nat_gateways: BTreeMap::new(),
        internet_gateways: BTreeMap::new(),
    };
    let assoc = associations(&tables, &mut m);
    subnets(docs, &vpc_id, &assoc, &mut m, &mut diags);
    nat_gateways(docs, &mut m, &mut diags);
    internet_gateways(docs, &vpc_id, &assoc, &mut m);
    let instance_names = instances(docs, &mut m);
    firewalls(docs, dir, policy_dir, vpc_cidr, &mut m, &mut diags);
    // Routes, now that every target is known.
    for (doc, t) in &tables {
        routes(doc, t, &instance_names, &mut m, &mut diags);
    }
    check_references(dir, &vpc_id, &m, &mut diags);
    if diags.iter().any(Diagnostic::is_error) {
        Err(diags)
    } else {
        Ok(m)
    }
}

/// The VPC's id and CIDR: describe-vpcs if given, else the route tables' local route.
fn vpc(
    dir: &Path,
    docs: &[Doc],
    tables: &[(&Doc, &Value)],
) -> Result<(String, Ipv4Net), Vec<Diagnostic>> {
    let mut vpc: Option<(String, Ipv4Net)> = None;
    for d in docs_with(docs, "Vpcs") {
        if let Some(v) = arr(&d.value, "Vpcs").first() {
            if let (Some(id), Some(c)) = (s(v, "VpcId"), s(v, "CidrBlock").and_then(parse_cidr)) {
                vpc = Some((id.to_string(), c));
            }
        }
    }
    if vpc.is_none() {
        vpc = tables.iter().find_map(|(_, t)| {
            arr(t, "Routes").iter().find_map(|r| {
                (s(r, "GatewayId") == Some("local"))
                    .then(|| s(r, "DestinationCidrBlock").and_then(parse_cidr))
                    .flatten()
                    .map(|c| (s(t, "VpcId").unwrap_or("vpc").to_string(), c))
            })
        });
    }
    vpc.ok_or_else(|| {
        vec![err(
            dir,
            "cannot tell the VPC's CIDR: no describe-vpcs output and no route table has a `local` route",
            "add `aws ec2 describe-vpcs` output",
        )]
    })
}

/// The route tables' associations, by table id.
struct Associations {
    /// The VPC's main table (subnets without an association of their own use it).
    main: Option<String>,
    /// Subnet id → its table.
    subnet: BTreeMap<String, String>,
    /// Gateway id → its ingress table.
    gateway: BTreeMap<String, String>,
}

/// Reads the route tables' associations and enters every table (routes still empty) in `m`.
fn associations(tables: &[(&Doc, &Value)], m: &mut Model) -> Associations {
    let mut a = Associations {
        main: None,
        subnet: BTreeMap::new(),
        gateway: BTreeMap::new(),
    };
    for (_, t) in tables {
        let Some(id) = s(t, "RouteTableId") else {
            continue;
        };
        for x in arr(t, "Associations") {
            if x.get("Main").and_then(Value::as_bool) == Some(true) {
                a.main = Some(id.to_string());
            }
            if let Some(sn) = s(x, "SubnetId") {
                a.subnet.insert(sn.to_string(), id.to_string());
            }
            if let Some(g) = s(x, "GatewayId") {
                a.gateway.insert(g.to_string(), id.to_string());
            }
        }
        m.route_tables.insert(id.to_string(), Vec::new());
    }
    a
}

/// The VPC's subnets, each with its route table.
fn subnets(
    docs: &[Doc],
    vpc_id: &str,
    assoc: &Associations,
    m: &mut Model,
    diags: &mut Vec<Diagnostic>,
) {
    for d in docs_with(docs, "Subnets") {
        for sn in arr(&d.value, "Subnets") {
            let (Some(id), Some(cidr)) = (s(sn, "SubnetId"), s(sn, "CidrBlock")) else {
                continue;
            };
            if s(sn, "VpcId").is_some_and(|v| v != vpc_id) {
                continue;
            }
            let Some(cidr) = parse_cidr(cidr) else {
                diags.push(err(
                    &d.path,
                    format!("subnet {id}: CidrBlock '{cidr}' is not an IPv4 CIDR"),
                    "",
                ));
                continue;
            };
            let Some(rt) = assoc.subnet.get(id).cloned().or(assoc.main.clone()) else {
                diags.push(err(
                    &d.path,
                    format!("subnet {id} has no route table (no association and no main table)"),
                    "include every route table of the VPC",
                ));
                continue;
            };
            m.subnets.insert(
                id.to_string(),
                Subnet {
                    cidr,
                    route_table: rt,
                },
            );
        }
    }
}

/// The available public NAT gateways.
fn nat_gateways(docs: &[Doc], m: &mut Model, diags: &mut Vec<Diagnostic>) {
    for d in docs_with(docs, "NatGateways") {
        for g in arr(&d.value, "NatGateways") {
            let Some(id) = s(g, "NatGatewayId") else {
                continue;
            };
            if s(g, "State").is_some_and(|st| st != "available") {
                continue;
            }
            let addr = arr(g, "NatGatewayAddresses").first();
            let public = addr
                .and_then(|a| s(a, "PublicIp"))
                .and_then(|p| p.parse::<Ipv4Addr>().ok());
            let private = addr
                .and_then(|a| s(a, "PrivateIp"))
                .and_then(|p| p.parse::<Ipv4Addr>().ok());
            let (Some(subnet), Some(public_ip)) = (s(g, "SubnetId"), public) else {
                diags.push(err(
                    &d.path,
                    format!("NAT gateway {id}: no SubnetId or NatGatewayAddresses[0].PublicIp"),
                    "private NAT gateways are not modelled",
                ));
                continue;
            };
            let address = private.unwrap_or_else(|| {
                m.subnets
                    .get(subnet)
                    .map(|s| Ipv4Addr::from(u32::from(s.cidr.network()).wrapping_add(4)))
                    .unwrap_or(Ipv4Addr::UNSPECIFIED)
            });
            m.nat_gateways.insert(
                id.to_string(),
                NatGateway {
                    subnet: subnet.to_string(),
                    public_ip,
                    address,
                },
            );
        }
    }
}

/// The internet gateways attached to the VPC, each with its ingress route table.
fn internet_gateways(docs: &[Doc], vpc_id: &str, assoc: &Associations, m: &mut Model) {
    for d in docs_with(docs, "InternetGateways") {
        for g in arr(&d.value, "InternetGateways") {
            let Some(id) = s(g, "InternetGatewayId") else {
                continue;
            };
            let attached = arr(g, "Attachments")
                .iter()
                .any(|a| s(a, "VpcId") == Some(vpc_id));
            if attached {
                m.internet_gateways.insert(
                    id.to_string(),
                    InternetGateway {
                        route_table: assoc.gateway.get(id).cloned(),
                    },
                );
            }
        }
    }
}

/// The instances, as hosts named by their Name tag (else their id); returns instance and
/// network interface ids → host name, for the routes that target them.
fn instances(docs: &[Doc], m: &mut Model) -> BTreeMap<String, String> {
    let mut instance_names = BTreeMap::new();
    for d in docs_with(docs, "Reservations") {
        for r in arr(&d.value, "Reservations") {
            for i in arr(r, "Instances") {
                let Some(id) = s(i, "InstanceId") else {
                    continue;
                };
                let (Some(subnet), Some(addr)) = (
                    s(i, "SubnetId"),
                    s(i, "PrivateIpAddress").and_then(|a| a.parse::<Ipv4Addr>().ok()),
                ) else {
                    continue;
                };
                let name = name_tag(i)
                    .filter(|n| !m.hosts.contains_key(*n))
                    .unwrap_or(id)
                    .to_string();
                instance_names.insert(id.to_string(), name.clone());
                if let Some(eni) = arr(i, "NetworkInterfaces")
                    .first()
                    .and_then(|n| s(n, "NetworkInterfaceId"))
                {
                    instance_names.insert(eni.to_string(), name.clone());
                }
                m.hosts.insert(
                    name,
                    Host {
                        subnet: subnet.to_string(),
                        address: addr,
                        public_ip: s(i, "PublicIpAddress").and_then(|a| a.parse().ok()),
                        ingress: None,
                        egress: None,
                    },
                );
            }
        }
    }
    instance_names
}

/// One route table's routes (`t`, from `doc`), now that every target is known.
fn routes(
    doc: &Doc,
    t: &Value,
    instance_names: &BTreeMap<String, String>,
    m: &mut Model,
    diags: &mut Vec<Diagnostic>,
) {
    let Some(id) = s(t, "RouteTableId") else {
        return;
    };
    let mut routes = Vec::new();
    for r in arr(t, "Routes") {
        let Some(dest) = s(r, "DestinationCidrBlock") else {
            continue; // IPv6 and prefix-list routes are not modelled
        };
        let Some(dest) = parse_cidr(dest) else {
            diags.push(err(
                &doc.path,
                format!("route table {id}: '{dest}' is not an IPv4 CIDR"),
                "",
            ));
            continue;
        };
        let target = if s(r, "State") == Some("blackhole") {
            Target::Blackhole
        } else if let Some(n) = s(r, "NatGatewayId") {
            Target::Nat(n.to_string())
        } else if let Some(g) = s(r, "GatewayId") {
            match g {
                "local" => continue, // the implicit local route
                g if g.starts_with("vpce-") => Target::Firewall(g.to_string()),
                g => Target::Igw(g.to_string()),
            }
        } else if let Some(h) = s(r, "InstanceId").or(s(r, "NetworkInterfaceId")) {
            match instance_names.get(h) {
                Some(n) => Target::Host(n.clone()),
                None => {
                    diags.push(err(&doc.path, format!("route table {id}: route {dest} targets {h}, which is not among the instances"), "add its describe-instances output"));
                    continue;
                }
            }
        } else {
            diags.push(err(&doc.path, format!("route table {id}: route {dest} has a target sekisho does not model (transit gateway, peering, VPN, …)"), "the route is left out"));
            continue;
        };
        let known = match &target {
            Target::Firewall(n) => m.firewalls.contains_key(n),
            Target::Nat(n) => m.nat_gateways.contains_key(n),
            Target::Igw(n) => m.internet_gateways.contains_key(n),
            _ => true,
        };
        if !known {
            diags.push(err(
                &doc.path,
                format!("route table {id}: route {dest} targets {}, which the other files do not describe", target.name()),
                "add the describe-firewall / describe-nat-gateways / describe-internet-gateways output for it",
            ));
            continue;
        }
        routes.push(Route {
            dest,
            target,
            implicit: false,
        });
    }
    m.route_tables.insert(id.to_string(), routes);
}

/// Every reference must resolve, as the YAML loader checks, so the walk never indexes a
/// missing component (an instance in a subnet of another VPC, say).
fn check_references(dir: &Path, vpc_id: &str, m: &Model, diags: &mut Vec<Diagnostic>) {
    let missing_subnet = |what: String, subnet: &str| {
        err(dir, format!("{what} is in subnet {subnet}, which no describe-subnets output of VPC {vpc_id} lists"), "include the describe-subnets output of the whole VPC")
    };
    for (n, h) in &m.hosts {
        if !m.subnets.contains_key(&h.subnet) {
            diags.push(missing_subnet(format!("instance {n}"), &h.subnet));
        }
    }
    for (n, f) in &m.firewalls {
        if !m.subnets.contains_key(&f.subnet) {
            diags.push(missing_subnet(format!("firewall endpoint {n}"), &f.subnet));
        }
    }
    for (n, g) in &m.nat_gateways {
        if !m.subnets.contains_key(&g.subnet) {
            diags.push(missing_subnet(format!("NAT gateway {n}"), &g.subnet));
        }
    }
}

/// Firewalls: one endpoint per attachment, each with the generated sekisho policy.
fn firewalls(
    docs: &[Doc],
    dir: &Path,
    policy_dir: &Path,
    vpc_cidr: Ipv4Net,
    m: &mut Model,
    diags: &mut Vec<Diagnostic>,
) {
    let policies = docs_with(docs, "FirewallPolicy");
    let groups = docs_with(docs, "RuleGroup");
    for d in docs_with(docs, "Firewall") {
        let fw = &d.value["Firewall"];
        let name = s(fw, "FirewallName").unwrap_or("firewall");
        let Some(policy_arn) = s(fw, "FirewallPolicyArn") else {
            diags.push(err(
                &d.path,
                format!("firewall {name} has no FirewallPolicyArn"),
                "",
            ));
            continue;
        };
        let Some(pdoc) = policies.iter().find(|p| {
            s(&p.value["FirewallPolicyResponse"], "FirewallPolicyArn") == Some(policy_arn)
        }) else {
            diags.push(err(
                dir,
                format!("firewall {name} uses policy {policy_arn}, and no describe-firewall-policy output has that FirewallPolicyArn"),
                &format!("run `aws network-firewall describe-firewall-policy --firewall-policy-arn {policy_arn}`"),
            ));
            continue;
        };
        let Some(policy_file) = write_policy(pdoc, &groups, policy_dir, vpc_cidr, name, diags)
        else {
            continue;
        };
        let states = fw_sync_states(&d.value);
        if states.is_empty() {
            diags.push(err(&d.path, format!("firewall {name}: no FirewallStatus.SyncStates attachment (endpoint id and subnet)"), "save the whole describe-firewall output"));
        }
        for (endpoint, subnet) in states {
            m.firewalls.insert(
                endpoint,
                Firewall {
                    subnet,
                    policy: policy_file.clone(),
                    vars: Vec::new(),
                },
            );
        }
    }
}

/// (EndpointId, SubnetId) of each attachment.
fn fw_sync_states(v: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(states) = v["FirewallStatus"]["SyncStates"].as_object() {
        for st in states.values() {
            let a = &st["Attachment"];
            if let (Some(e), Some(sn)) = (s(a, "EndpointId"), s(a, "SubnetId")) {
                out.push((e.to_string(), sn.to_string()));
            }
        }
    }
    out
}

/// Writes the sekisho policy for a describe-firewall-policy document.
fn write_policy(
    pdoc: &Doc,
    groups: &[&Doc],
    policy_dir: &Path,
    vpc_cidr: Ipv4Net,
    fw_name: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<PathBuf> {
    let text = std::fs::read_to_string(&pdoc.path).unwrap_or_default();
    let src = SourceFile::new(pdoc.path.display().to_string(), text);
    let parsed = sekisho_policy::nfw::parse_firewall_policy(&src, diags)?;
    let p = &pdoc.value["FirewallPolicy"];
    let mut refs: Vec<(i64, &str)> = arr(p, "StatefulRuleGroupReferences")
        .iter()
        .filter_map(|r| {
            Some((
                r.get("Priority").and_then(Value::as_i64).unwrap_or(0),
                s(r, "ResourceArn")?,
            ))
        })
        .collect();
    refs.sort();
    let mut y = String::new();
    y.push_str(&format!(
        "# Generated by `sekisho reach --aws` from {} (firewall {fw_name}).\nengine_profile: aws-nfw\nrule_order: {}\n",
        pdoc.path.display(),
        parsed.rule_order.as_str()
    ));
    if !parsed.default_actions.is_empty() {
        let d: Vec<String> = parsed
            .default_actions
            .iter()
            .map(|d| d.to_string())
            .collect();
        y.push_str(&format!("default_actions: [{}]\n", d.join(", ")));
    }
    y.push_str(&format!(
        "stream_exception_policy: {}\n",
        parsed.stream_exception_policy.as_str()
    ));
    let home = parsed
        .home_net
        .clone()
        .unwrap_or_else(|| vec![vpc_cidr.to_string()]);
    y.push_str(&format!(
        "variables:\n  HOME_NET: [{}]\n  EXTERNAL_NET: \"!$HOME_NET\"\nrule_groups:\n",
        home.join(", ")
    ));
    let mut n = 0;
    for (_, arn) in refs {
        let Some(g) = groups
            .iter()
            .find(|g| s(&g.value["RuleGroupResponse"], "RuleGroupArn") == Some(arn))
        else {
            diags.push(err(
                &pdoc.path,
                format!("rule group {arn} is referenced, and no describe-rule-group output has that RuleGroupArn"),
                &format!("run `aws network-firewall describe-rule-group --rule-group-arn {arn} --type STATEFUL`"),
            ));
            return None;
        };
        let name = s(&g.value["RuleGroupResponse"], "RuleGroupName").unwrap_or(arn);
        let abs = std::fs::canonicalize(&g.path).unwrap_or_else(|_| g.path.clone());
        y.push_str(&format!(
            "  - {{name: {}, nfw_rule_group: {}}}\n",
            serde_json::to_string(name).unwrap_or_default(),
            serde_json::to_string(&abs.display().to_string()).unwrap_or_default()
        ));
        n += 1;
    }
    if n == 0 {
        y.push_str("  []\n");
        y = y.replace("rule_groups:\n  []\n", "rule_groups: []\n");
    }
    if let Err(e) = std::fs::create_dir_all(policy_dir) {
        diags.push(err(
            policy_dir,
            format!("cannot create the directory for generated policies: {e}"),
            "",
        ));
        return None;
    }
    let safe: String = fw_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let out = policy_dir.join(format!("{safe}.policy.yaml"));
    if let Err(e) = std::fs::write(&out, y) {
        diags.push(err(
            &out,
            format!("cannot write the generated policy: {e}"),
            "",
        ));
        return None;
    }
    Some(out)
}
