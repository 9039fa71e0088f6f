//! Address and port variables (`vars.address-groups` / `vars.port-groups`) and resolution of
//! expressions into normalized range sets; duplicate-sid detection.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::IpAddr;

use sekisho_diag::{Diagnostic, SourceFile};

use crate::ast::{AddressExpr, PortExpr, Rule};
use crate::parse::{parse_address_str, parse_port_str};

/// Deepest chain of variables referring to variables; longer chains are reported as loops.
const MAX_VAR_DEPTH: usize = 64;

/// An inclusive IP range within one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    /// First address.
    pub start: IpAddr,
    /// Last address (inclusive, same family as `start`).
    pub end: IpAddr,
}

/// A normalized set of IP addresses: sorted, non-overlapping, non-adjacent ranges per family.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IpSet {
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
}

fn normalize<T: Copy + Ord + num_like::Succ>(mut v: Vec<(T, T)>) -> Vec<(T, T)> {
    v.sort();
    let mut out: Vec<(T, T)> = Vec::with_capacity(v.len());
    for (a, b) in v {
        if let Some(last) = out.last_mut() {
            if a <= last.1 || last.1.succ() == Some(a) {
                if b > last.1 {
                    last.1 = b;
                }
                continue;
            }
        }
        out.push((a, b));
    }
    out
}

fn complement<T: Copy + Ord + num_like::Succ>(v: &[(T, T)], min: T, max: T) -> Vec<(T, T)> {
    let mut out = Vec::new();
    let mut next = Some(min);
    for &(a, b) in v {
        if let Some(n) = next {
            if a > n {
                out.push((n, a.pred()));
            }
        }
        next = b.succ();
    }
    if let Some(n) = next {
        out.push((n, max));
    }
    out
}

mod num_like {
    /// Successor/predecessor without overflow.
    pub trait Succ: Sized {
        fn succ(self) -> Option<Self>;
        fn pred(self) -> Self;
    }
    macro_rules! imp {
        ($($t:ty),*) => {$(
            impl Succ for $t {
                fn succ(self) -> Option<Self> { self.checked_add(1) }
                fn pred(self) -> Self { self.saturating_sub(1) }
            }
        )*};
    }
    imp!(u16, u32, u128);
}

impl IpSet {
    /// Every IPv4 and IPv6 address.
    pub fn any() -> Self {
        IpSet {
            v4: vec![(0, u32::MAX)],
            v6: vec![(0, u128::MAX)],
        }
    }

    fn from_range(a: IpAddr, b: IpAddr) -> Self {
        match (a, b) {
            (IpAddr::V4(a), IpAddr::V4(b)) => IpSet {
                v4: vec![(u32::from(a), u32::from(b))],
                v6: vec![],
            },
            (IpAddr::V6(a), IpAddr::V6(b)) => IpSet {
                v4: vec![],
                v6: vec![(u128::from(a), u128::from(b))],
            },
            _ => IpSet::default(),
        }
    }

    fn union(mut self, o: &IpSet) -> Self {
        self.v4.extend_from_slice(&o.v4);
        self.v6.extend_from_slice(&o.v6);
        self.v4 = normalize(self.v4);
        self.v6 = normalize(self.v6);
        self
    }

    fn complement(&self) -> Self {
        IpSet {
            v4: complement(&self.v4, 0, u32::MAX),
            v6: complement(&self.v6, 0, u128::MAX),
        }
    }

    fn minus(&self, o: &IpSet) -> Self {
        let c = o.complement();
        IpSet {
            v4: intersect(&self.v4, &c.v4),
            v6: intersect(&self.v6, &c.v6),
        }
    }

    /// True if some address is in both sets.
    pub fn intersects(&self, o: &IpSet) -> bool {
        !intersect(&self.v4, &o.v4).is_empty() || !intersect(&self.v6, &o.v6).is_empty()
    }

    /// True if the set holds no address.
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// True if `ip` is in the set.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                self.v4.iter().any(|&(s, e)| s <= a && a <= e)
            }
            IpAddr::V6(a) => {
                let a = u128::from(a);
                self.v6.iter().any(|&(s, e)| s <= a && a <= e)
            }
        }
    }

    /// The ranges, IPv4 first, ascending.
    pub fn ranges(&self) -> Vec<IpRange> {
        let v4 = self.v4.iter().map(|&(a, b)| IpRange {
            start: IpAddr::V4(a.into()),
            end: IpAddr::V4(b.into()),
        });
        let v6 = self.v6.iter().map(|&(a, b)| IpRange {
            start: IpAddr::V6(a.into()),
            end: IpAddr::V6(b.into()),
        });
        v4.chain(v6).collect()
    }
}

fn intersect<T: Copy + Ord>(a: &[(T, T)], b: &[(T, T)]) -> Vec<(T, T)> {
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let lo = a[i].0.max(b[j].0);
        let hi = a[i].1.min(b[j].1);
        if lo <= hi {
            out.push((lo, hi));
        }
        if a[i].1 < b[j].1 {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// A normalized set of ports (sorted, merged inclusive ranges).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PortSet {
    ranges: Vec<(u16, u16)>,
}

impl PortSet {
    /// All ports.
    pub fn any() -> Self {
        PortSet {
            ranges: vec![(0, u16::MAX)],
        }
    }

    /// True if `port` is in the set.
    pub fn contains(&self, port: u16) -> bool {
        self.ranges.iter().any(|&(a, b)| a <= port && port <= b)
    }

    /// True if some port is in both sets.
    pub fn intersects(&self, o: &PortSet) -> bool {
        !intersect(&self.ranges, &o.ranges).is_empty()
    }

    /// True if no port is in the set.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The ranges, ascending, inclusive.
    pub fn ranges(&self) -> &[(u16, u16)] {
        &self.ranges
    }
}

/// Why a variable or expression could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VarError {
    /// `$NAME` is not defined.
    Undefined(String),
    /// `$NAME` refers to itself (directly or through other variables).
    Loop(String),
    /// The expression matches nothing ("not any"), e.g. `!$HOME_NET` with `HOME_NET: any`.
    Empty,
    /// A variable's value does not parse.
    BadValue(String, String),
}

impl fmt::Display for VarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VarError::Undefined(n) => write!(f, "undefined variable '${n}'"),
            VarError::Loop(n) => write!(f, "variable '${n}' refers to itself"),
            VarError::Empty => f.write_str("expression matches no address or port (\"not any\")"),
            VarError::BadValue(n, why) => write!(f, "variable '${n}' has an invalid value: {why}"),
        }
    }
}

/// The address variables of Suricata's default `suricata.yaml` (`vars.address-groups`).
pub const DEFAULT_ADDRESS_VARS: &[(&str, &str)] = &[
    ("HOME_NET", "[192.168.0.0/16,10.0.0.0/8,172.16.0.0/12]"),
    ("EXTERNAL_NET", "!$HOME_NET"),
    ("HTTP_SERVERS", "$HOME_NET"),
    ("SMTP_SERVERS", "$HOME_NET"),
    ("SQL_SERVERS", "$HOME_NET"),
    ("DNS_SERVERS", "$HOME_NET"),
    ("TELNET_SERVERS", "$HOME_NET"),
    ("AIM_SERVERS", "$EXTERNAL_NET"),
    ("DC_SERVERS", "$HOME_NET"),
    ("DNP3_SERVER", "$HOME_NET"),
    ("DNP3_CLIENT", "$HOME_NET"),
    ("MODBUS_CLIENT", "$HOME_NET"),
    ("MODBUS_SERVER", "$HOME_NET"),
    ("ENIP_CLIENT", "$HOME_NET"),
    ("ENIP_SERVER", "$HOME_NET"),
];

/// The port variables of Suricata's default `suricata.yaml` (`vars.port-groups`).
pub const DEFAULT_PORT_VARS: &[(&str, &str)] = &[
    ("HTTP_PORTS", "80"),
    ("SHELLCODE_PORTS", "!80"),
    ("ORACLE_PORTS", "1521"),
    ("SSH_PORTS", "22"),
    ("DNP3_PORTS", "20000"),
    ("MODBUS_PORTS", "502"),
    ("FILE_DATA_PORTS", "[$HTTP_PORTS,110,143]"),
    ("FTP_PORTS", "21"),
    ("GENEVE_PORTS", "6081"),
    ("VXLAN_PORTS", "4789"),
    ("TEREDO_PORTS", "3544"),
];

/// Address groups and port groups.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Variables {
    addresses: BTreeMap<String, AddressExpr>,
    ports: BTreeMap<String, PortExpr>,
}

impl Variables {
    /// No variables at all.
    pub fn empty() -> Self {
        Variables::default()
    }

    /// Suricata's default `vars` from suricata.yaml (HOME_NET, EXTERNAL_NET, *_SERVERS,
    /// *_PORTS...).
    pub fn suricata_defaults() -> Self {
        let mut v = Variables::default();
        for &(n, s) in DEFAULT_ADDRESS_VARS {
            // Defaults are constants known to parse.
            let _ = v.set_address(n, s);
        }
        for &(n, s) in DEFAULT_PORT_VARS {
            let _ = v.set_port(n, s);
        }
        v
    }

    /// Defines (or replaces) an address group from its text, e.g. `"[10.0.0.0/8,!10.1.0.0/16]"`.
    /// A leading `$` on the name is ignored.
    pub fn set_address(&mut self, name: &str, text: &str) -> Result<(), String> {
        let e = parse_address_str(text)?;
        self.addresses
            .insert(name.trim_start_matches('$').to_string(), e);
        Ok(())
    }

    /// Defines (or replaces) a port group from its text, e.g. `"[80,8080:8090]"`.
    pub fn set_port(&mut self, name: &str, text: &str) -> Result<(), String> {
        let e = parse_port_str(text)?;
        self.ports
            .insert(name.trim_start_matches('$').to_string(), e);
        Ok(())
    }

    /// Defines an address group from a list of entries (YAML list form).
    pub fn set_address_list(&mut self, name: &str, items: &[&str]) -> Result<(), String> {
        self.set_address(name, &format!("[{}]", items.join(",")))
    }

    /// Defines a port group from a list of entries.
    pub fn set_port_list(&mut self, name: &str, items: &[&str]) -> Result<(), String> {
        self.set_port(name, &format!("[{}]", items.join(",")))
    }

    /// The expression of an address group.
    pub fn address(&self, name: &str) -> Option<&AddressExpr> {
        self.addresses.get(name)
    }

    /// The expression of a port group.
    pub fn port(&self, name: &str) -> Option<&PortExpr> {
        self.ports.get(name)
    }

    /// Resolves an address expression into a set; errors for undefined variables, loops and
    /// empty ("not any") results.
    pub fn resolve_address(&self, e: &AddressExpr) -> Result<IpSet, VarError> {
        let set = self.addr_set(e, &mut Vec::new())?;
        if set.is_empty() {
            return Err(VarError::Empty);
        }
        Ok(set)
    }

    fn addr_set(&self, e: &AddressExpr, stack: &mut Vec<String>) -> Result<IpSet, VarError> {
        Ok(match e {
            AddressExpr::Any => IpSet::any(),
            AddressExpr::Ip(a) => IpSet::from_range(*a, *a),
            AddressExpr::Cidr(a, p) => {
                let (s, end) = cidr_bounds(*a, *p);
                IpSet::from_range(s, end)
            }
            AddressExpr::Range(a, b) => IpSet::from_range(*a, *b),
            AddressExpr::Var(n) => {
                if stack.contains(n) || stack.len() > MAX_VAR_DEPTH {
                    return Err(VarError::Loop(n.clone()));
                }
                let inner = self
                    .addresses
                    .get(n)
                    .ok_or_else(|| VarError::Undefined(n.clone()))?;
                stack.push(n.clone());
                let r = self.addr_set(inner, stack);
                stack.pop();
                r?
            }
            AddressExpr::Not(x) => self.addr_set(x, stack)?.complement(),
            AddressExpr::List(items) => {
                let mut pos = IpSet::default();
                let mut neg = IpSet::default();
                let mut any_pos = false;
                for it in items {
                    if let AddressExpr::Not(x) = it {
                        neg = neg.union(&self.addr_set(x, stack)?);
                    } else {
                        any_pos = true;
                        pos = pos.union(&self.addr_set(it, stack)?);
                    }
                }
                if !any_pos {
                    pos = IpSet::any();
                }
                pos.minus(&neg)
            }
        })
    }

    /// Resolves a port expression into a set; errors as for addresses.
    pub fn resolve_port(&self, e: &PortExpr) -> Result<PortSet, VarError> {
        let r = self.port_set(e, &mut Vec::new())?;
        if r.is_empty() {
            return Err(VarError::Empty);
        }
        Ok(PortSet { ranges: r })
    }

    fn port_set(&self, e: &PortExpr, stack: &mut Vec<String>) -> Result<Vec<(u16, u16)>, VarError> {
        Ok(match e {
            PortExpr::Any => vec![(0, u16::MAX)],
            PortExpr::Port(p) => vec![(*p, *p)],
            PortExpr::Range(a, b) => vec![(*a, *b)],
            PortExpr::Var(n) => {
                if stack.contains(n) || stack.len() > MAX_VAR_DEPTH {
                    return Err(VarError::Loop(n.clone()));
                }
                let inner = self
                    .ports
                    .get(n)
                    .ok_or_else(|| VarError::Undefined(n.clone()))?;
                stack.push(n.clone());
                let r = self.port_set(inner, stack);
                stack.pop();
                r?
            }
            PortExpr::Not(x) => complement(&self.port_set(x, stack)?, 0, u16::MAX),
            PortExpr::List(items) => {
                let mut pos = Vec::new();
                let mut neg = Vec::new();
                let mut any_pos = false;
                for it in items {
                    if let PortExpr::Not(x) = it {
                        neg.extend(self.port_set(x, stack)?);
                    } else {
                        any_pos = true;
                        pos.extend(self.port_set(it, stack)?);
                    }
                }
                if !any_pos {
                    pos = vec![(0, u16::MAX)];
                }
                let pos = normalize(pos);
                let keep = complement(&normalize(neg), 0, u16::MAX);
                intersect(&pos, &keep)
            }
        })
    }

    /// Checks every variable definition resolves (no undefined names, loops or empty sets).
    pub fn check(&self) -> Vec<(String, VarError)> {
        let mut out = Vec::new();
        for (n, e) in &self.addresses {
            if let Err(err) = self.resolve_address(e) {
                out.push((n.clone(), err));
            }
        }
        for (n, e) in &self.ports {
            if let Err(err) = self.resolve_port(e) {
                out.push((n.clone(), err));
            }
        }
        out
    }
}

fn cidr_bounds(a: IpAddr, p: u8) -> (IpAddr, IpAddr) {
    match a {
        IpAddr::V4(x) => {
            let x = u32::from(x);
            let host = if p >= 32 { 0 } else { u32::MAX >> p };
            (IpAddr::V4(x.into()), IpAddr::V4((x | host).into()))
        }
        IpAddr::V6(x) => {
            let x = u128::from(x);
            let host = if p >= 128 { 0 } else { u128::MAX >> p };
            (IpAddr::V6(x.into()), IpAddr::V6((x | host).into()))
        }
    }
}

/// The hint for an undefined variable `name`, with an example value that fits where it is
/// used: an address list, or a port list in a port position.
fn undefined_variable_hint(name: &str, port: bool) -> String {
    let example = match port {
        false => "[10.0.0.0/8]",
        true if name.contains("SMTP") || name.contains("MAIL") => "[25, 465, 587]",
        true => "[80, 443]",
    };
    format!("define it under 'variables:' in the policy, e.g. {name}: \"{example}\"")
}

fn var_diag(err: &VarError, field: &str, rule: &Rule, src: Option<&SourceFile>) -> Diagnostic {
    let mut d = Diagnostic::error(format!("{err} in rule sid {} ({field})", rule.sid())).with_code(
        match err {
            VarError::Undefined(_) => "undefined-variable",
            VarError::Loop(_) => "variable-loop",
            VarError::Empty => "not-any",
            VarError::BadValue(..) => "bad-variable",
        },
    );
    if let Some(src) = src {
        let text = src.text();
        let (s, e) = (
            rule.span.start.min(text.len()),
            rule.span.end.min(text.len()),
        );
        let needle = match err {
            VarError::Undefined(n) | VarError::Loop(n) | VarError::BadValue(n, _) => {
                Some(format!("${n}"))
            }
            VarError::Empty => None,
        };
        let at = needle.as_ref().and_then(|n| {
            text.get(s..e)
                .and_then(|t| t.find(n.as_str()))
                .map(|i| (s + i, n.len()))
        });
        d = match at {
            Some((i, l)) => d.at_span(src, i..i + l),
            None => d.at_span(src, s..s + 1),
        };
    }
    match err {
        VarError::Undefined(n) => {
            d.with_hint(undefined_variable_hint(n, field.ends_with("port")))
        }
        VarError::Loop(_) => d.with_hint("a variable cannot contain itself"),
        VarError::Empty => d.with_hint(
            "the expression excludes everything; check HOME_NET/EXTERNAL_NET (e.g. HOME_NET: any makes !$HOME_NET empty)",
        ),
        VarError::BadValue(..) => d,
    }
}

/// Resolves the rule's four address/port fields against `vars`; returns one error per field
/// that does not resolve (undefined variable, loop, "not any"). Diagnostics have no location;
/// see [`validate_variables_in`] for located ones.
pub fn validate_variables(rule: &Rule, vars: &Variables) -> Vec<Diagnostic> {
    validate_inner(rule, vars, None)
}

/// Like [`validate_variables`], with locations in the rule's source file.
pub fn validate_variables_in(rule: &Rule, vars: &Variables, src: &SourceFile) -> Vec<Diagnostic> {
    validate_inner(rule, vars, Some(src))
}

fn validate_inner(rule: &Rule, vars: &Variables, src: Option<&SourceFile>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (e, field) in [
        (&rule.src, "source address"),
        (&rule.dst, "destination address"),
    ] {
        if let Err(err) = vars.resolve_address(e) {
            out.push(var_diag(&err, field, rule, src));
        }
    }
    for (e, field) in [
        (&rule.src_port, "source port"),
        (&rule.dst_port, "destination port"),
    ] {
        if let Err(err) = vars.resolve_port(e) {
            out.push(var_diag(&err, field, rule, src));
        }
    }
    out
}

/// Finds rules whose (gid, sid) was already used by an earlier rule in `rules`. One error per
/// repeat, naming the line of the first occurrence. Diagnostics have no location.
pub fn find_duplicate_sids(rules: &[Rule]) -> Vec<Diagnostic> {
    duplicates(rules)
        .into_iter()
        .map(|(i, first)| dup_diag(&rules[i], &rules[first]))
        .collect()
}

/// Indices `(repeat, first)` of duplicate (gid, sid) pairs.
pub(crate) fn duplicates(rules: &[Rule]) -> Vec<(usize, usize)> {
    let mut seen: HashMap<(u64, u64), usize> = HashMap::with_capacity(rules.len());
    let mut out = Vec::new();
    for (i, r) in rules.iter().enumerate() {
        match seen.entry((r.gid(), r.sid())) {
            std::collections::hash_map::Entry::Occupied(o) => out.push((i, *o.get())),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(i);
            }
        }
    }
    out
}

pub(crate) fn dup_diag(rule: &Rule, first: &Rule) -> Diagnostic {
    let gid = if rule.gid() == 1 {
        String::new()
    } else {
        format!(" (gid {})", rule.gid())
    };
    Diagnostic::error(format!(
        "duplicate sid {}{gid}: first used on line {}",
        rule.sid(),
        first.line
    ))
    .with_code("duplicate-sid")
    .with_hint("give every rule a unique sid; bump 'rev' instead when updating a rule")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_resolve() {
        let v = Variables::suricata_defaults();
        assert!(v.check().is_empty(), "{:?}", v.check());
        let home = v
            .resolve_address(&AddressExpr::Var("HOME_NET".into()))
            .unwrap();
        assert!(home.contains("10.1.2.3".parse().unwrap()));
        assert!(!home.contains("8.8.8.8".parse().unwrap()));
        let ext = v
            .resolve_address(&AddressExpr::Var("EXTERNAL_NET".into()))
            .unwrap();
        assert!(ext.contains("8.8.8.8".parse().unwrap()));
        assert!(ext.contains("2001:db8::1".parse().unwrap()));
        assert!(!ext.contains("192.168.1.1".parse().unwrap()));
        let fp = v
            .resolve_port(&PortExpr::Var("FILE_DATA_PORTS".into()))
            .unwrap();
        assert_eq!(fp.ranges(), &[(80, 80), (110, 110), (143, 143)]);
        let sc = v
            .resolve_port(&PortExpr::Var("SHELLCODE_PORTS".into()))
            .unwrap();
        assert_eq!(sc.ranges(), &[(0, 79), (81, 65535)]);
    }

    #[test]
    fn list_minus_negation() {
        let mut v = Variables::empty();
        v.set_address("X", "[10.0.0.0/24, !10.0.0.5]").unwrap();
        let s = v.resolve_address(&AddressExpr::Var("X".into())).unwrap();
        assert!(s.contains("10.0.0.4".parse().unwrap()));
        assert!(!s.contains("10.0.0.5".parse().unwrap()));
        assert_eq!(s.ranges().len(), 2);
        v.set_port("P", "[80:100,!99]").unwrap();
        let p = v.resolve_port(&PortExpr::Var("P".into())).unwrap();
        assert_eq!(p.ranges(), &[(80, 98), (100, 100)]);
        v.set_port("Q", "[1:80,![2,4]]").unwrap();
        let q = v.resolve_port(&PortExpr::Var("Q".into())).unwrap();
        assert_eq!(q.ranges(), &[(1, 1), (3, 3), (5, 80)]);
    }

    #[test]
    fn loops_undefined_and_not_any() {
        let mut v = Variables::empty();
        v.set_address("A", "$B").unwrap();
        v.set_address("B", "[1.1.1.1,$A]").unwrap();
        assert_eq!(
            v.resolve_address(&AddressExpr::Var("A".into())),
            Err(VarError::Loop("A".into()))
        );
        assert_eq!(
            v.resolve_address(&AddressExpr::Var("NOPE".into())),
            Err(VarError::Undefined("NOPE".into()))
        );
        v.set_address("HOME_NET", "any").unwrap();
        v.set_address("EXTERNAL_NET", "!$HOME_NET").unwrap();
        assert_eq!(
            v.resolve_address(&AddressExpr::Var("EXTERNAL_NET".into())),
            Err(VarError::Empty)
        );
    }
}
