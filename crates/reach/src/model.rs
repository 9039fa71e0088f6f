//! The network model: a VPC's subnets, route tables, firewall endpoints, NAT and internet
//! gateways and hosts, read from YAML (`docs/reach.md`) or built by the AWS importer
//! ([`crate::aws`]). Every name a route or subnet refers to is checked when the model loads,
//! so the path walk never meets a dangling reference.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;
use sekisho_diag::yaml::{from_yaml, YamlIndex};
use sekisho_diag::{Diagnostic, SourceFile};
use serde::Deserialize;

/// A loaded, checked network model.
#[derive(Debug, Clone)]
pub struct Model {
    /// Where the model came from (shown in reports; firewall policy paths are already
    /// resolved against it).
    pub source: String,
    /// The VPC's CIDR: routed `local` implicitly in every route table.
    pub vpc: Ipv4Net,
    /// Hosts by name.
    pub hosts: BTreeMap<String, Host>,
    /// Subnets by name.
    pub subnets: BTreeMap<String, Subnet>,
    /// Route tables by name: their explicit routes (the implicit `local` route is added by
    /// the lookup).
    pub route_tables: BTreeMap<String, Vec<Route>>,
    /// Firewall endpoints by name.
    pub firewalls: BTreeMap<String, Firewall>,
    /// NAT gateways by name.
    pub nat_gateways: BTreeMap<String, NatGateway>,
    /// Internet gateways by name.
    pub internet_gateways: BTreeMap<String, InternetGateway>,
}

/// A host (an instance's network interface).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// Its subnet.
    pub subnet: String,
    /// Its private address (inside the subnet).
    pub address: Ipv4Addr,
    /// A public address the internet gateway maps to `address` (none: private only).
    pub public_ip: Option<Ipv4Addr>,
    /// Security-group-like allow list for traffic the host receives (`None`: all allowed).
    /// Stateful: replies to an allowed connection are not checked again.
    pub ingress: Option<Vec<Allow>>,
    /// Allow list for connections the host opens (`None`: all allowed).
    pub egress: Option<Vec<Allow>>,
}

/// One allow-list entry of a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allow {
    /// IP protocol number (6 TCP, 17 UDP); `None` for any.
    pub proto: Option<u8>,
    /// Destination port range, inclusive (ingress: the host's port; egress: the peer's).
    pub ports: (u16, u16),
    /// The peer's addresses.
    pub cidr: Ipv4Net,
}

impl Allow {
    /// True when this entry admits `proto` to/from `peer` on `port`.
    pub fn admits(&self, proto: u8, peer: Ipv4Addr, port: u16) -> bool {
        self.proto.is_none_or(|p| p == proto)
            && (self.ports.0..=self.ports.1).contains(&port)
            && self.cidr.contains(&peer)
    }
}

/// A subnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subnet {
    /// Its CIDR (inside the VPC's).
    pub cidr: Ipv4Net,
    /// Its route table's name.
    pub route_table: String,
}

/// One route: packets to `dest` go to `target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Destination CIDR.
    pub dest: Ipv4Net,
    /// Where the packet goes.
    pub target: Target,
    /// True for the VPC's implicit `local` route (not written in the model).
    pub implicit: bool,
}

/// Where a route sends packets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Delivered inside the VPC to the interface that holds the destination address.
    Local,
    /// Dropped (a route whose target is gone).
    Blackhole,
    /// A firewall endpoint by name.
    Firewall(String),
    /// A NAT gateway by name.
    Nat(String),
    /// An internet gateway by name.
    Igw(String),
    /// A host by name (an appliance that forwards).
    Host(String),
}

impl Target {
    /// The target as written in the model (`local`, `blackhole` or the component's name).
    pub fn name(&self) -> &str {
        match self {
            Target::Local => "local",
            Target::Blackhole => "blackhole",
            Target::Firewall(n) | Target::Nat(n) | Target::Igw(n) | Target::Host(n) => n,
        }
    }
}

/// A firewall endpoint running a sekisho policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firewall {
    /// The subnet of the endpoint: packets leaving it use this subnet's route table.
    pub subnet: String,
    /// The policy file (resolved against the model's directory).
    pub policy: PathBuf,
    /// Variable overrides (`NAME=VALUE` as `sekisho check --var`), applied after the
    /// policy's own variables.
    pub vars: Vec<(String, String)>,
}

/// A NAT gateway: source NAT to `public_ip`, ephemeral source port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatGateway {
    /// Its subnet: translated packets use this subnet's route table.
    pub subnet: String,
    /// The address it translates to.
    pub public_ip: Ipv4Addr,
    /// Its private address (what an internet gateway's ingress route table sees replies
    /// addressed to); default: the subnet's first assignable address (network + 4: AWS
    /// reserves four).
    pub address: Ipv4Addr,
}

/// An internet gateway: addresses outside the VPC are the internet, reached through it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InternetGateway {
    /// Its ingress (edge) route table: routes for traffic arriving from the internet.
    pub route_table: Option<String>,
}

// ---- YAML ----------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    vpc: RawVpc,
    #[serde(default)]
    hosts: BTreeMap<String, RawHost>,
    #[serde(default)]
    subnets: BTreeMap<String, RawSubnet>,
    #[serde(default)]
    route_tables: BTreeMap<String, Option<Vec<RawRoute>>>,
    #[serde(default)]
    firewalls: BTreeMap<String, RawFirewall>,
    #[serde(default)]
    nat_gateways: BTreeMap<String, RawNat>,
    #[serde(default)]
    internet_gateways: BTreeMap<String, Option<RawIgw>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVpc {
    cidr: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    subnet: String,
    address: String,
    #[serde(default)]
    public_ip: Option<String>,
    #[serde(default)]
    ingress: Option<Vec<RawAllow>>,
    #[serde(default)]
    egress: Option<Vec<RawAllow>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAllow {
    #[serde(default)]
    proto: Option<String>,
    #[serde(default)]
    ports: Option<serde_yaml_ports::Ports>,
    #[serde(default)]
    cidr: Option<String>,
}

mod serde_yaml_ports {
    use serde::Deserialize;
    /// A port (`443`) or a range (`"1024-65535"`).
    #[derive(Deserialize)]
    #[serde(untagged)]
    pub enum Ports {
        One(u16),
        Text(String),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSubnet {
    cidr: String,
    route_table: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    dest: String,
    target: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFirewall {
    subnet: String,
    policy: String,
    #[serde(default)]
    vars: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNat {
    subnet: String,
    public_ip: String,
    #[serde(default)]
    address: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawIgw {
    #[serde(default)]
    route_table: Option<String>,
}

/// Parses a port or an inclusive range `A-B`.
pub fn parse_ports(s: &str) -> Option<(u16, u16)> {
    let s = s.trim();
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
            (a <= b).then_some((a, b))
        }
        None => s.parse().ok().map(|p| (p, p)),
    }
}

/// Parses a CIDR; a bare address is a /32. Host bits must be zero.
pub fn parse_cidr(s: &str) -> Option<Ipv4Net> {
    let s = s.trim();
    let net: Ipv4Net = match s.parse() {
        Ok(n) => n,
        Err(_) => Ipv4Net::new(s.parse().ok()?, 32).ok()?,
    };
    (net.trunc() == net).then_some(net)
}

/// Collects diagnostics located by key path.
struct Checker<'a> {
    src: &'a SourceFile,
    index: YamlIndex,
    diags: Vec<Diagnostic>,
}

impl Checker<'_> {
    fn err(&mut self, path: &str, msg: String, hint: &str) {
        let d = Diagnostic::error(msg)
            .with_code("reach-model")
            .at_span(self.src, self.index.nearest(path));
        self.diags.push(if hint.is_empty() {
            d
        } else {
            d.with_hint(hint)
        });
    }

    fn cidr(&mut self, path: &str, s: &str) -> Option<Ipv4Net> {
        let n = parse_cidr(s);
        if n.is_none() {
            self.err(
                path,
                format!("'{s}' is not an IPv4 CIDR"),
                "write a network address and prefix length, e.g. 10.1.0.0/16 (host bits zero)",
            );
        }
        n
    }

    fn addr(&mut self, path: &str, s: &str) -> Option<Ipv4Addr> {
        let a = s.trim().parse().ok();
        if a.is_none() {
            self.err(
                path,
                format!("'{s}' is not an IPv4 address"),
                "write a dotted quad, e.g. 10.1.1.10",
            );
        }
        a
    }
}

impl Model {
    /// Reads and checks a model file. Errors name the file, line and column and say what
    /// was expected.
    pub fn load(path: &Path) -> Result<Model, Vec<Diagnostic>> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            vec![Diagnostic::error(format!("cannot read the model: {e}"))
                .in_file(path.display().to_string())]
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Model::parse(&path.display().to_string(), &text, base)
    }

    /// Parses and checks model text named `name`; relative policy paths resolve against
    /// `base`.
    pub fn parse(name: &str, text: &str, base: &Path) -> Result<Model, Vec<Diagnostic>> {
        let src = SourceFile::new(name, text);
        let raw: RawModel = from_yaml(&src).map_err(|d| {
            vec![d.with_hint(
                "top-level keys: vpc, hosts, subnets, route_tables, firewalls, nat_gateways, internet_gateways (docs/reach.md)",
            )]
        })?;
        let mut c = Checker {
            src: &src,
            index: YamlIndex::new(text),
            diags: Vec::new(),
        };
        let vpc = c.cidr("vpc.cidr", &raw.vpc.cidr).unwrap_or_default();
        let mut m = Model {
            source: name.to_string(),
            vpc,
            hosts: BTreeMap::new(),
            subnets: BTreeMap::new(),
            route_tables: BTreeMap::new(),
            firewalls: BTreeMap::new(),
            nat_gateways: BTreeMap::new(),
            internet_gateways: BTreeMap::new(),
        };
        for (n, s) in &raw.subnets {
            let p = format!("subnets.{n}.cidr");
            if let Some(cidr) = c.cidr(&p, &s.cidr) {
                if !vpc.contains(&cidr) {
                    c.err(
                        &p,
                        format!("subnet {n}'s {cidr} is not inside the VPC's {vpc}"),
                        "a subnet's CIDR must be a part of vpc.cidr",
                    );
                }
                m.subnets.insert(
                    n.clone(),
                    Subnet {
                        cidr,
                        route_table: s.route_table.clone(),
                    },
                );
            }
        }
        for (n, h) in &raw.hosts {
            let addr = c.addr(&format!("hosts.{n}.address"), &h.address);
            let public_ip = h
                .public_ip
                .as_ref()
                .and_then(|p| c.addr(&format!("hosts.{n}.public_ip"), p));
            let ingress = h
                .ingress
                .as_ref()
                .map(|l| allows(&mut c, &format!("hosts.{n}.ingress"), l));
            let egress = h
                .egress
                .as_ref()
                .map(|l| allows(&mut c, &format!("hosts.{n}.egress"), l));
            if let Some(address) = addr {
                m.hosts.insert(
                    n.clone(),
                    Host {
                        subnet: h.subnet.clone(),
                        address,
                        public_ip,
                        ingress,
                        egress,
                    },
                );
            }
        }
        for (n, f) in &raw.firewalls {
            m.firewalls.insert(
                n.clone(),
                Firewall {
                    subnet: f.subnet.clone(),
                    policy: base.join(&f.policy),
                    vars: f.vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                },
            );
        }
        for (n, g) in &raw.nat_gateways {
            let public_ip = c.addr(&format!("nat_gateways.{n}.public_ip"), &g.public_ip);
            let address = g
                .address
                .as_ref()
                .and_then(|a| c.addr(&format!("nat_gateways.{n}.address"), a));
            if let Some(public_ip) = public_ip {
                let address = address.unwrap_or_else(|| {
                    raw.subnets
                        .get(&g.subnet)
                        .and_then(|s| parse_cidr(&s.cidr))
                        .map(|c| Ipv4Addr::from(u32::from(c.network()).wrapping_add(4)))
                        .unwrap_or(Ipv4Addr::UNSPECIFIED)
                });
                m.nat_gateways.insert(
                    n.clone(),
                    NatGateway {
                        subnet: g.subnet.clone(),
                        public_ip,
                        address,
                    },
                );
            }
        }
        for (n, g) in &raw.internet_gateways {
            m.internet_gateways.insert(
                n.clone(),
                InternetGateway {
                    route_table: g.as_ref().and_then(|g| g.route_table.clone()),
                },
            );
        }
        // Route targets name components; resolve them now that every name is known.
        let mut tables = BTreeMap::new();
        for (rt, routes) in &raw.route_tables {
            let mut out = Vec::new();
            for (i, r) in routes.iter().flatten().enumerate() {
                let Some(dest) = c.cidr(&format!("route_tables.{rt}[{i}].dest"), &r.dest) else {
                    continue;
                };
                match m.target(&r.target) {
                    Ok(target) => out.push(Route {
                        dest,
                        target,
                        implicit: false,
                    }),
                    Err(msg) => c.err(
                        &format!("route_tables.{rt}[{i}].target"),
                        msg,
                        "a target is `local`, `blackhole`, or the name of a firewall, NAT gateway, internet gateway or host of this model",
                    ),
                }
            }
            tables.insert(rt.clone(), out);
        }
        m.route_tables = tables;
        m.check_references(&mut c);
        if c.diags.is_empty() {
            Ok(m)
        } else {
            Err(c.diags)
        }
    }

    /// Resolves a route target's name.
    fn target(&self, name: &str) -> Result<Target, String> {
        let mut found = Vec::new();
        match name {
            "local" => return Ok(Target::Local),
            "blackhole" => return Ok(Target::Blackhole),
            _ => {}
        }
        if self.firewalls.contains_key(name) {
            found.push(Target::Firewall(name.into()));
        }
        if self.nat_gateways.contains_key(name) {
            found.push(Target::Nat(name.into()));
        }
        if self.internet_gateways.contains_key(name) {
            found.push(Target::Igw(name.into()));
        }
        if self.hosts.contains_key(name) {
            found.push(Target::Host(name.into()));
        }
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => {
                let all = self
                    .firewalls
                    .keys()
                    .chain(self.nat_gateways.keys())
                    .chain(self.internet_gateways.keys())
                    .chain(self.hosts.keys())
                    .map(String::as_str)
                    .chain(["local", "blackhole"]);
                Err(match sekisho_diag::suggest(name, all) {
                    Some(s) => format!("unknown route target '{name}' (did you mean '{s}'?)"),
                    None => format!("unknown route target '{name}'"),
                })
            }
            _ => Err(format!(
                "route target '{name}' names more than one component; give each component a distinct name"
            )),
        }
    }

    /// Every subnet names a route table, every component a subnet, addresses sit in their
    /// subnets.
    fn check_references(&self, c: &mut Checker<'_>) {
        let tables: Vec<&str> = self.route_tables.keys().map(String::as_str).collect();
        let subnets: Vec<&str> = self.subnets.keys().map(String::as_str).collect();
        for (n, s) in &self.subnets {
            if !self.route_tables.contains_key(&s.route_table) {
                let hint = sekisho_diag::suggest(&s.route_table, tables.iter().copied())
                    .map(|t| format!("did you mean '{t}'?"))
                    .unwrap_or_else(|| "add it under route_tables:".into());
                c.err(
                    &format!("subnets.{n}.route_table"),
                    format!(
                        "subnet {n} names route table '{}', which is not defined",
                        s.route_table
                    ),
                    &hint,
                );
            }
        }
        let subnet_ref = |c: &mut Checker<'_>, path: String, what: &str, subnet: &str| {
            if !self.subnets.contains_key(subnet) {
                let hint = sekisho_diag::suggest(subnet, subnets.iter().copied())
                    .map(|t| format!("did you mean '{t}'?"))
                    .unwrap_or_else(|| "add it under subnets:".into());
                c.err(
                    &path,
                    format!("{what} names subnet '{subnet}', which is not defined"),
                    &hint,
                );
            }
        };
        for (n, h) in &self.hosts {
            subnet_ref(
                c,
                format!("hosts.{n}.subnet"),
                &format!("host {n}"),
                &h.subnet,
            );
            if let Some(s) = self.subnets.get(&h.subnet) {
                if !s.cidr.contains(&h.address) {
                    c.err(
                        &format!("hosts.{n}.address"),
                        format!(
                            "host {n}'s address {} is not in subnet {} ({})",
                            h.address, h.subnet, s.cidr
                        ),
                        "an address must lie inside its subnet's CIDR",
                    );
                }
            }
        }
        for (n, f) in &self.firewalls {
            subnet_ref(
                c,
                format!("firewalls.{n}.subnet"),
                &format!("firewall {n}"),
                &f.subnet,
            );
        }
        for (n, g) in &self.nat_gateways {
            subnet_ref(
                c,
                format!("nat_gateways.{n}.subnet"),
                &format!("NAT gateway {n}"),
                &g.subnet,
            );
        }
        for (n, g) in &self.internet_gateways {
            if let Some(rt) = &g.route_table {
                if !self.route_tables.contains_key(rt) {
                    c.err(
                        &format!("internet_gateways.{n}.route_table"),
                        format!(
                            "internet gateway {n} names route table '{rt}', which is not defined"
                        ),
                        "add it under route_tables: (an ingress route table may be empty: [])",
                    );
                }
            }
        }
    }

    /// The longest-prefix route of `table` for `dst`, the VPC's implicit `local` route
    /// included (an explicit route of the same length wins over it). `None`: no route.
    pub fn lookup(&self, table: &str, dst: Ipv4Addr) -> Option<Route> {
        let local = Route {
            dest: self.vpc,
            target: Target::Local,
            implicit: true,
        };
        let routes = self.route_tables.get(table)?;
        let mut best: Option<&Route> = None;
        for r in routes.iter().chain(std::iter::once(&local)) {
            if r.dest.contains(&dst)
                && best.is_none_or(|b| r.dest.prefix_len() > b.dest.prefix_len())
            {
                best = Some(r);
            }
        }
        best.cloned()
    }

    /// The host whose private address is `a`.
    pub fn host_by_address(&self, a: Ipv4Addr) -> Option<(&str, &Host)> {
        self.hosts
            .iter()
            .find(|(_, h)| h.address == a)
            .map(|(n, h)| (n.as_str(), h))
    }
}

fn allows(c: &mut Checker<'_>, path: &str, list: &[RawAllow]) -> Vec<Allow> {
    let mut out = Vec::new();
    for (i, a) in list.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let proto = match a.proto.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("any") | Some("-1") | Some("all") => None,
            Some("tcp") | Some("6") => Some(6),
            Some("udp") | Some("17") => Some(17),
            Some(other) => {
                c.err(
                    &format!("{p}.proto"),
                    format!("unknown protocol '{other}'"),
                    "write tcp, udp or any",
                );
                continue;
            }
        };
        let ports = match &a.ports {
            None => (0, 65535),
            Some(serde_yaml_ports::Ports::One(p)) => (*p, *p),
            Some(serde_yaml_ports::Ports::Text(t)) => match parse_ports(t) {
                Some(r) => r,
                None => {
                    c.err(
                        &format!("{p}.ports"),
                        format!("'{t}' is not a port or port range"),
                        "write 443 or \"1024-65535\"",
                    );
                    continue;
                }
            },
        };
        let cidr = match &a.cidr {
            None => Ipv4Net::default(),
            Some(s) => match c.cidr(&format!("{p}.cidr"), s) {
                Some(n) => n,
                None => continue,
            },
        };
        out.push(Allow { proto, ports, cidr });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODEL: &str = "\
vpc: {cidr: 10.1.0.0/16}
hosts: {app: {subnet: a, address: 10.1.1.10}}
subnets: {a: {cidr: 10.1.1.0/24, route_table: rt}}
route_tables:
  rt: [{dest: 0.0.0.0/0, target: igw}, {dest: 10.1.0.0/16, target: blackhole}, {dest: 10.1.2.0/24, target: app}]
internet_gateways: {igw: {}}
";

    #[test]
    fn longest_prefix_wins_and_an_explicit_route_beats_local_of_equal_length() {
        let m = Model::parse("m.yaml", MODEL, Path::new(".")).expect("model");
        let t = |a: &str| m.lookup("rt", a.parse().expect("addr")).map(|r| r.target);
        assert_eq!(t("8.8.8.8"), Some(Target::Igw("igw".into())));
        assert_eq!(t("10.1.2.7"), Some(Target::Host("app".into())));
        assert_eq!(
            t("10.1.9.9"),
            Some(Target::Blackhole),
            "explicit /16 over local /16"
        );
        assert_eq!(m.lookup("nope", "8.8.8.8".parse().expect("addr")), None);
    }

    #[test]
    fn cidrs_and_ports_parse_strictly() {
        assert_eq!(parse_cidr("10.1.0.0/16").map(|n| n.prefix_len()), Some(16));
        assert_eq!(parse_cidr("10.1.2.3").map(|n| n.prefix_len()), Some(32));
        assert_eq!(parse_cidr("10.1.2.3/16"), None, "host bits set");
        assert_eq!(parse_cidr("10.1.0.0/33"), None);
        assert_eq!(parse_ports("1-1024"), Some((1, 1024)));
        assert_eq!(parse_ports("443"), Some((443, 443)));
        assert_eq!(parse_ports("9-1"), None);
    }

    #[test]
    fn errors_are_located_and_suggest() {
        let bad = MODEL.replace("address: 10.1.1.10", "address: 10.1.7.10");
        let e = Model::parse("m.yaml", &bad, Path::new(".")).expect_err("outside subnet");
        let text: String = e.iter().map(|d| d.render()).collect();
        assert!(text.contains("m.yaml:2:"), "{text}");
        assert!(text.contains("is not in subnet a (10.1.1.0/24)"), "{text}");
        let bad = MODEL.replace("route_table: rt}", "route_table: rtt}");
        let e = Model::parse("m.yaml", &bad, Path::new(".")).expect_err("unknown table");
        let text: String = e.iter().map(|d| d.render()).collect();
        assert!(text.contains("did you mean 'rt'?"), "{text}");
    }
}
