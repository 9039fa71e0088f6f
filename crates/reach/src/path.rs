//! The path walk: from a start, hop by hop through route tables (longest prefix wins),
//! firewall endpoints, NAT and internet gateways, to where the packet is delivered or
//! stopped. Forward and return paths use the same walk; the return path starts where the
//! forward path was delivered, with the header reversed, and undoes the forward path's NAT.

use std::net::Ipv4Addr;

use crate::model::{Model, Route, Target};

/// A packet header as it enters or leaves a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Source address.
    pub src: Ipv4Addr,
    /// Source port.
    pub sport: u16,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Destination port.
    pub dport: u16,
    /// IP protocol number (6 TCP, 17 UDP).
    pub proto: u8,
}

impl Header {
    /// The reply's header.
    pub fn reversed(self) -> Header {
        Header {
            src: self.dst,
            sport: self.dport,
            dst: self.src,
            dport: self.sport,
            proto: self.proto,
        }
    }
}

/// What kind of component a hop is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A host of the model.
    Host,
    /// A route table lookup.
    RouteTable,
    /// A firewall endpoint.
    Firewall,
    /// A NAT gateway.
    NatGateway,
    /// An internet gateway.
    InternetGateway,
    /// An address on the internet (outside the VPC).
    Internet,
}

impl Kind {
    /// The kind's name in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Host => "host",
            Kind::RouteTable => "route-table",
            Kind::Firewall => "firewall",
            Kind::NatGateway => "nat-gateway",
            Kind::InternetGateway => "internet-gateway",
            Kind::Internet => "internet",
        }
    }
}

/// One hop of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    /// What it is.
    pub kind: Kind,
    /// Its name in the model (an address for [`Kind::Internet`]).
    pub id: String,
    /// The header entering it.
    pub inbound: Header,
    /// The header leaving it (differs from `inbound` at NAT).
    pub outbound: Header,
    /// For a route table: the route that carried the packet.
    pub route: Option<Route>,
    /// A note (e.g. the translation a NAT made).
    pub note: Option<String>,
}

/// Why a walk stopped before delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stop {
    /// AWS explanation code (`NO_ROUTE_TO_DESTINATION`, `BAD_STATE_ROUTE`, …).
    pub code: &'static str,
    /// The component where it stopped.
    pub component: String,
    /// What happened, for people.
    pub detail: String,
}

/// A walk's result: the hops taken, and the stop when it was not delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Walk {
    /// Hops in order, first the start.
    pub hops: Vec<Hop>,
    /// `None`: delivered to the last hop.
    pub stop: Option<Stop>,
}

impl Walk {
    /// Firewalls crossed, in order, with the header entering each.
    pub fn firewalls(&self) -> impl Iterator<Item = (&str, Header)> {
        self.hops
            .iter()
            .filter(|h| h.kind == Kind::Firewall)
            .map(|h| (h.id.as_str(), h.inbound))
    }

    /// The header delivered at the end.
    pub fn delivered(&self) -> Option<&Hop> {
        match self.stop {
            None => self.hops.last(),
            Some(_) => None,
        }
    }
}

/// Where a walk starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// At a host of the model (its subnet's route table comes next).
    Host(String),
    /// At an internet address, entering the VPC through this internet gateway.
    Internet(Ipv4Addr, String),
}

/// A NAT translation made on the forward path, undone on the return path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NatEntry {
    /// The original source (address, port).
    pub inside: (Ipv4Addr, u16),
    /// The translated source (address, port).
    pub outside: (Ipv4Addr, u16),
}

/// The source port NAT gateways translate to (ephemeral range 1024-65535; one is enough
/// for a single conversation).
pub const NAT_PORT: u16 = 61001;

/// The most hops a walk takes before calling it a routing loop.
const MAX_HOPS: usize = 64;

/// Walks from `start` with `header`. `nat` holds the translations made so far: a forward
/// walk adds to it, a return walk (`reply`) undoes what it finds there; a reply passes the
/// hosts' allow lists unchecked (they are stateful, like security groups).
pub fn walk(
    model: &Model,
    start: &Start,
    header: Header,
    nat: &mut Vec<NatEntry>,
    reply: bool,
) -> Walk {
    let mut w = Walker {
        model,
        hops: Vec::new(),
        nat,
        reply,
    };
    let stop = w.run(start, header).err();
    Walk { hops: w.hops, stop }
}

struct Walker<'a> {
    model: &'a Model,
    hops: Vec<Hop>,
    nat: &'a mut Vec<NatEntry>,
    reply: bool,
}

type Step = Result<(), Stop>;

fn stop(code: &'static str, component: &str, detail: String) -> Stop {
    Stop {
        code,
        component: component.to_string(),
        detail,
    }
}

impl Walker<'_> {
    fn hop(&mut self, kind: Kind, id: &str, inbound: Header, outbound: Header) {
        self.hops.push(Hop {
            kind,
            id: id.to_string(),
            inbound,
            outbound,
            route: None,
            note: None,
        });
    }

    fn run(&mut self, start: &Start, h: Header) -> Step {
        match start {
            Start::Host(name) => {
                let host = self.model.hosts.get(name).ok_or_else(|| {
                    stop("NO_SOURCE_OR_DESTINATION", name, format!("no host {name}"))
                })?;
                self.hop(Kind::Host, name, h, h);
                // A reply leaves through a stateful allow list without a check.
                if let (Some(eg), false) = (&host.egress, self.reply) {
                    if !eg.iter().any(|a| a.admits(h.proto, h.dst, h.dport)) {
                        return Err(stop(
                            "ENI_SG_RULES_MISMATCH",
                            name,
                            format!(
                                "host {name}'s egress allow list has no entry for {}/{} to {}",
                                proto_name(h.proto),
                                h.dport,
                                h.dst
                            ),
                        ));
                    }
                }
                let subnet = &self.model.subnets[&host.subnet];
                self.route(&subnet.route_table.clone(), h)
            }
            Start::Internet(addr, igw) => {
                self.hop(Kind::Internet, &addr.to_string(), h, h);
                self.ingress_internet(igw, h)
            }
        }
    }

    /// Routes `h` by `table` and follows the target.
    fn route(&mut self, table: &str, h: Header) -> Step {
        let route = self.model.lookup(table, h.dst);
        self.hops.push(Hop {
            kind: Kind::RouteTable,
            id: table.to_string(),
            inbound: h,
            outbound: h,
            route: route.clone(),
            note: None,
        });
        match route {
            Some(route) => self.target(table, &route, h),
            None => Err(stop(
                "NO_ROUTE_TO_DESTINATION",
                table,
                format!("route table {table} has no route for {}", h.dst),
            )),
        }
    }

    fn target(&mut self, table: &str, route: &Route, h: Header) -> Step {
        if self.hops.len() > MAX_HOPS {
            return Err(stop(
                "NO_PATH",
                table,
                format!("more than {MAX_HOPS} hops: a routing loop"),
            ));
        }
        match &route.target {
            Target::Blackhole => Err(stop(
                "BAD_STATE_ROUTE",
                table,
                format!("route {} in {table} is a blackhole", route.dest),
            )),
            Target::Local => self.local(table, h),
            Target::Firewall(f) => {
                self.hop(Kind::Firewall, f, h, h);
                let subnet = &self.model.firewalls[f].subnet;
                let rt = self.model.subnets[subnet].route_table.clone();
                self.route(&rt, h)
            }
            Target::Nat(n) => self.nat_gateway(n, h),
            Target::Igw(g) => self.egress_internet(g, h),
            Target::Host(name) => {
                let host = &self.model.hosts[name];
                if host.address == h.dst {
                    self.deliver_host(name, h)
                } else {
                    // An appliance: it forwards by its own subnet's route table.
                    self.hop(Kind::Host, name, h, h);
                    let rt = self.model.subnets[&host.subnet].route_table.clone();
                    self.route(&rt, h)
                }
            }
        }
    }

    /// `local`: to the interface in the VPC holding the destination address.
    fn local(&mut self, table: &str, h: Header) -> Step {
        if let Some((name, _)) = self.model.host_by_address(h.dst) {
            let name = name.to_string();
            return self.deliver_host(&name, h);
        }
        if let Some((name, _)) = self
            .model
            .nat_gateways
            .iter()
            .find(|(_, g)| g.address == h.dst)
        {
            let name = name.clone();
            return self.nat_gateway(&name, h);
        }
        Err(stop(
            "NO_POSSIBLE_DESTINATION",
            table,
            format!(
                "{} is inside the VPC ({}) but no host or gateway of the model holds it",
                h.dst, self.model.vpc
            ),
        ))
    }

    fn deliver_host(&mut self, name: &str, h: Header) -> Step {
        self.hop(Kind::Host, name, h, h);
        let host = &self.model.hosts[name];
        if let (Some(ing), false) = (&host.ingress, self.reply) {
            if !ing.iter().any(|a| a.admits(h.proto, h.src, h.dport)) {
                return Err(stop(
                    "ENI_SG_RULES_MISMATCH",
                    name,
                    format!(
                        "host {name}'s ingress allow list has no entry for {}/{} from {}",
                        proto_name(h.proto),
                        h.dport,
                        h.src
                    ),
                ));
            }
        }
        Ok(())
    }

    fn nat_gateway(&mut self, name: &str, h: Header) -> Step {
        let g = &self.model.nat_gateways[name];
        let (out, note) = if h.dst == g.public_ip || h.dst == g.address {
            // A reply: undo the translation made on the way out.
            match self
                .nat
                .iter()
                .find(|e| e.outside == (g.public_ip, h.dport))
            {
                Some(e) => (
                    Header {
                        dst: e.inside.0,
                        dport: e.inside.1,
                        ..h
                    },
                    format!(
                        "destination {}:{} translated back to {}:{}",
                        g.public_ip, h.dport, e.inside.0, e.inside.1
                    ),
                ),
                None => {
                    self.hop(Kind::NatGateway, name, h, h);
                    return Err(stop(
                        "NO_PATH",
                        name,
                        format!("NAT gateway {name} has no translation for port {}", h.dport),
                    ));
                }
            }
        } else {
            let e = NatEntry {
                inside: (h.src, h.sport),
                outside: (g.public_ip, NAT_PORT),
            };
            self.nat.push(e);
            (
                Header {
                    src: g.public_ip,
                    sport: NAT_PORT,
                    ..h
                },
                format!(
                    "source {}:{} translated to {}:{}",
                    h.src, h.sport, g.public_ip, NAT_PORT
                ),
            )
        };
        self.hops.push(Hop {
            kind: Kind::NatGateway,
            id: name.to_string(),
            inbound: h,
            outbound: out,
            route: None,
            note: Some(note),
        });
        let rt = self.model.subnets[&g.subnet].route_table.clone();
        self.route(&rt, out)
    }

    fn egress_internet(&mut self, igw: &str, h: Header) -> Step {
        if self.model.vpc.contains(&h.dst) {
            self.hop(Kind::InternetGateway, igw, h, h);
            return Err(stop(
                "IGW_DESTINATION_ADDRESS_IN_VPC_CIDRS",
                igw,
                format!(
                    "{} is inside the VPC; an internet gateway does not route it",
                    h.dst
                ),
            ));
        }
        // The source must be public: a NAT gateway's address, or a host's public address
        // (the gateway translates the host's private one).
        let mut out = h;
        let mut note = None;
        if self.model.vpc.contains(&h.src) {
            match self.model.hosts.iter().find(|(_, x)| x.address == h.src) {
                Some((n, x)) if x.public_ip.is_some() => {
                    let p = x.public_ip.unwrap_or(h.src);
                    out.src = p;
                    note = Some(format!(
                        "source {} ({n}) translated to its public address {p}",
                        h.src
                    ));
                }
                _ => {
                    self.hop(Kind::InternetGateway, igw, h, h);
                    return Err(stop(
                        "IGW_PUBLIC_IP_ASSOCIATION_FOR_EGRESS",
                        igw,
                        format!(
                            "source {} has no public address: route it through a NAT gateway or give the host a public_ip",
                            h.src
                        ),
                    ));
                }
            }
        }
        self.hops.push(Hop {
            kind: Kind::InternetGateway,
            id: igw.to_string(),
            inbound: h,
            outbound: out,
            route: None,
            note,
        });
        self.hop(Kind::Internet, &out.dst.to_string(), out, out);
        Ok(())
    }

    /// A packet from the internet entering through `igw`.
    fn ingress_internet(&mut self, igw: &str, h: Header) -> Step {
        let g = &self.model.internet_gateways[igw];
        // Public address → private: a host's public_ip, or a NAT gateway's address.
        let mut inside = h;
        let note;
        if let Some((n, x)) = self
            .model
            .hosts
            .iter()
            .find(|(_, x)| x.public_ip == Some(h.dst))
        {
            inside.dst = x.address;
            note = Some(format!(
                "destination {} translated to {n}'s address {}",
                h.dst, x.address
            ));
        } else if let Some((n, _)) = self
            .model
            .nat_gateways
            .iter()
            .find(|(_, x)| x.public_ip == h.dst)
        {
            note = Some(format!(
                "destination {} is NAT gateway {n}'s public address",
                h.dst
            ));
        } else {
            self.hop(Kind::InternetGateway, igw, h, h);
            return Err(stop(
                "IGW_PRIVATE_IP_ASSOCIATION_FOR_INGRESS",
                igw,
                format!("no interface of the VPC has the public address {}", h.dst),
            ));
        }
        self.hops.push(Hop {
            kind: Kind::InternetGateway,
            id: igw.to_string(),
            inbound: h,
            outbound: inside,
            route: None,
            note,
        });
        // The edge route table sees the private address (a NAT's own address for replies).
        let lookup_addr = self
            .model
            .nat_gateways
            .values()
            .find(|x| x.public_ip == h.dst)
            .map_or(inside.dst, |x| x.address);
        match &g.route_table {
            Some(rt) => {
                let rt = rt.clone();
                let probe = Header {
                    dst: lookup_addr,
                    ..inside
                };
                match self.model.lookup(&rt, probe.dst) {
                    Some(route) if route.target != Target::Local => {
                        self.hops.push(Hop {
                            kind: Kind::RouteTable,
                            id: rt.clone(),
                            inbound: inside,
                            outbound: inside,
                            route: Some(route.clone()),
                            note: None,
                        });
                        self.target(&rt, &route, inside)
                    }
                    _ => self.deliver_inside(inside),
                }
            }
            None => self.deliver_inside(inside),
        }
    }

    /// Delivery of a packet that entered from the internet (no edge route applied).
    fn deliver_inside(&mut self, h: Header) -> Step {
        if let Some((name, _)) = self
            .model
            .nat_gateways
            .iter()
            .find(|(_, g)| g.public_ip == h.dst)
        {
            let name = name.clone();
            return self.nat_gateway(&name, h);
        }
        self.local("internet-gateway", h)
    }
}

/// `tcp`, `udp` or the number.
pub fn proto_name(p: u8) -> String {
    match p {
        6 => "tcp".into(),
        17 => "udp".into(),
        n => n.to_string(),
    }
}
