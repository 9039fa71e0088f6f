//! Policy variables: address and port groups as written in YAML or NFW JSON.
//!
//! Suricata keeps address groups and port groups in two YAML sections; a sekisho policy has one
//! `variables:` map, so the kind is decided per variable:
//!
//! 1. a name ending in `_PORTS` or `_PORT` is a port group;
//! 2. otherwise, a value whose items are all port-shaped (`80`, `1024:`, `80:90`, `!25`, a
//!    number) is a port group;
//! 3. everything else is an address group.
//!
//! Values are normalised to Suricata's text syntax: a YAML list `[10.0.0.0/8, 25]` becomes
//! `[10.0.0.0/8, 25]`, a string is kept as written (`"!$HOME_NET"`), a number becomes its
//! decimal text.

use serde::Deserialize;

/// Address group or port group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VarKind {
    /// `vars.address-groups` in Suricata terms.
    Address,
    /// `vars.port-groups` in Suricata terms.
    Port,
}

/// One variable definition: name (without `$`), kind, value in Suricata syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarDef {
    /// Name without `$`, e.g. `HOME_NET`.
    pub name: String,
    /// Address or port group.
    pub kind: VarKind,
    /// Value as Suricata would read it from suricata.yaml, e.g. `[10.0.0.0/16]`, `!$HOME_NET`.
    pub value: String,
}

impl VarDef {
    /// A definition from parts.
    pub fn new(name: &str, kind: VarKind, value: impl Into<String>) -> Self {
        VarDef {
            name: name.to_string(),
            kind,
            value: value.into(),
        }
    }
}

/// A variable's value as YAML allows it: a list, a string or a number.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawVar {
    List(Vec<RawScalar>),
    Scalar(RawScalar),
}

/// One scalar item of a variable value.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawScalar {
    Int(i64),
    Str(String),
}

impl RawScalar {
    fn text(&self) -> String {
        match self {
            RawScalar::Int(n) => n.to_string(),
            RawScalar::Str(s) => s.trim().to_string(),
        }
    }
}

/// True when `s` looks like a port expression item rather than an address.
fn port_shaped(s: &str) -> bool {
    let s = s.trim().trim_start_matches('!').trim();
    let s = s.trim_start_matches('[').trim_end_matches(']');
    !s.is_empty()
        && s.split(',').all(|item| {
            let item = item.trim().trim_start_matches('!');
            !item.is_empty()
                && item.chars().all(|c| c.is_ascii_digit() || c == ':')
                && item.chars().filter(|&c| c == ':').count() <= 1
                && item != ":"
        })
}

impl RawVar {
    /// The value in Suricata syntax.
    pub(crate) fn to_suricata(&self) -> String {
        match self {
            RawVar::List(items) => {
                let parts: Vec<String> = items.iter().map(RawScalar::text).collect();
                format!("[{}]", parts.join(", "))
            }
            RawVar::Scalar(s) => s.text(),
        }
    }

    /// Decides the kind (see the module docs).
    pub(crate) fn kind(&self, name: &str) -> VarKind {
        if name.ends_with("_PORTS") || name.ends_with("_PORT") {
            return VarKind::Port;
        }
        let all_ports = match self {
            RawVar::List(items) => {
                !items.is_empty()
                    && items.iter().all(|i| match i {
                        RawScalar::Int(_) => true,
                        RawScalar::Str(s) => port_shaped(s),
                    })
            }
            RawVar::Scalar(RawScalar::Int(_)) => true,
            RawVar::Scalar(RawScalar::Str(s)) => port_shaped(s),
        };
        if all_ports {
            VarKind::Port
        } else {
            VarKind::Address
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(y: &str) -> RawVar {
        sekisho_diag::yaml::from_yaml(&sekisho_diag::SourceFile::new("v", y)).unwrap()
    }

    #[test]
    fn kinds_follow_the_documented_rule() {
        assert_eq!(raw("[10.0.0.0/16]").kind("HOME_NET"), VarKind::Address);
        assert_eq!(raw("\"!$HOME_NET\"").kind("EXTERNAL_NET"), VarKind::Address);
        assert_eq!(raw("[25, 465, 587]").kind("SMTP_PORTS"), VarKind::Port);
        assert_eq!(raw("[25, 465]").kind("MAIL"), VarKind::Port);
        assert_eq!(raw("\"1024:\"").kind("HIGH"), VarKind::Port);
        assert_eq!(raw("8080").kind("PROXY"), VarKind::Port);
        assert_eq!(raw("\"[80, !81]\"").kind("W"), VarKind::Port);
        assert_eq!(
            raw("\"[10.0.0.0/8, !10.1.0.0/16]\"").kind("X"),
            VarKind::Address
        );
        assert_eq!(raw("any").kind("X"), VarKind::Address);
    }

    #[test]
    fn values_become_suricata_text() {
        assert_eq!(
            raw("[10.0.0.0/16, 10.2.0.0/16]").to_suricata(),
            "[10.0.0.0/16, 10.2.0.0/16]"
        );
        assert_eq!(raw("\"!$HOME_NET\"").to_suricata(), "!$HOME_NET");
        assert_eq!(raw("[25, 465]").to_suricata(), "[25, 465]");
        assert_eq!(raw("25").to_suricata(), "25");
    }
}
