//! Suricata rules that make walking around the DNS firewall visible (or impossible) in the
//! packet engine: plain DNS to any resolver other than the allowed ones (UDP and TCP 53), DNS
//! over TLS (TCP 853) and DNS over QUIC (UDP 853) to them, and TLS to known DNS-over-HTTPS
//! endpoints by SNI.
//!
//! `allowed` must list only sekisho's own listen addresses: listing its upstreams would let
//! clients talk to them directly, which is the walk-around these rules exist to catch. The
//! sources are `[$HOME_NET,!$DNS_FIREWALL]`: the host running sekisho must be defined as the
//! address variable `DNS_FIREWALL` (the address its upstream queries leave from), so its own
//! upstream traffic is not flagged. SIDs start at [`SID_BASE`]. DoH entries are exact
//! names (`startswith; endswith;` on `tls.sni`), or whole subtrees for `*.name` entries
//! (`endswith` on `.name`).

use crate::domains::DomainSet;

/// Source of every emitted rule: the clients, less the firewall host itself.
pub const SRC: &str = "[$HOME_NET,!$DNS_FIREWALL]";

/// First SID used by emitted rules.
pub const SID_BASE: u32 = 9_530_001;

/// What the emitted rules do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BypassAction {
    /// Log only.
    Alert,
    /// Drop (IPS mode).
    Drop,
}

/// Emits the rule group text: header comment, then one rule per line.
///
/// `allowed` are the resolver addresses clients may use (IPs or CIDRs, as Suricata accepts);
/// `doh` the DoH endpoint names (entries of a [`DomainSet`]).
pub fn emit(allowed: &[String], doh: &DomainSet, action: BypassAction) -> String {
    let act = match action {
        BypassAction::Alert => "alert",
        BypassAction::Drop => "drop",
    };
    let dst = if allowed.is_empty() {
        "any".to_string()
    } else {
        format!("![{}]", allowed.join(","))
    };
    let mut out = String::new();
    out.push_str("# sekisho dns --emit-bypass-rules: DNS that bypasses the DNS firewall\n");
    out.push_str(
        "# Define DNS_FIREWALL (address-groups) as the address(es) of the host running sekisho:\n\
         # its own queries to its upstreams are exempt. Allowed resolvers must be sekisho's own\n\
         # listen addresses only, never its upstreams.\n",
    );
    out.push_str(&format!(
        "# allowed resolvers: {}\n",
        if allowed.is_empty() {
            "none".to_string()
        } else {
            allowed.join(", ")
        }
    ));
    let mut sid = SID_BASE;
    let mut rule = |body: String| {
        out.push_str(&format!("{act} {body} sid:{sid}; rev:1;)\n"));
        sid += 1;
    };
    rule(format!(
        "udp {SRC} any -> {dst} 53 (msg:\"sekisho dns bypass: DNS over UDP to a resolver that is not allowed\";"
    ));
    rule(format!(
        "tcp {SRC} any -> {dst} 53 (msg:\"sekisho dns bypass: DNS over TCP to a resolver that is not allowed\"; flow:to_server;"
    ));
    rule(format!(
        "tcp {SRC} any -> {dst} 853 (msg:\"sekisho dns bypass: DNS over TLS to a resolver that is not allowed\"; flow:to_server;"
    ));
    rule(format!(
        "udp {SRC} any -> {dst} 853 (msg:\"sekisho dns bypass: DNS over QUIC to a resolver that is not allowed\";"
    ));
    let mut names: Vec<String> = doh.entries().filter(|e| e != "*").collect();
    names.sort();
    for n in names {
        let cond = match n.strip_prefix("*.") {
            Some(parent) => format!("content:\".{parent}\"; nocase; endswith;"),
            None => format!("content:\"{n}\"; nocase; startswith; endswith;"),
        };
        rule(format!(
            "tls {SRC} any -> any any (msg:\"sekisho dns bypass: DNS over HTTPS endpoint {n}\"; flow:to_server,established; tls.sni; {cond}"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doh() -> DomainSet {
        let mut s = DomainSet::new();
        for e in ["dns.google", "*.doh.example", "cloudflare-dns.com"] {
            s.insert(e).unwrap();
        }
        s
    }

    #[test]
    fn rules_cover_port_53_853_and_doh_sni() {
        let text = emit(
            &["127.0.0.1".into(), "10.0.0.2".into()],
            &doh(),
            BypassAction::Drop,
        );
        let rules: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(rules.len(), 7);
        let src = "[$HOME_NET,!$DNS_FIREWALL] any";
        assert!(rules[0].starts_with(&format!("drop udp {src} -> ![127.0.0.1,10.0.0.2] 53 (")));
        assert!(rules[1].starts_with(&format!("drop tcp {src} -> ![127.0.0.1,10.0.0.2] 53 (")));
        assert!(rules[2].starts_with(&format!("drop tcp {src} -> ![127.0.0.1,10.0.0.2] 853 (")));
        assert!(rules[3].starts_with(&format!("drop udp {src} -> ![127.0.0.1,10.0.0.2] 853 (")));
        assert!(rules[5]
            .contains("tls.sni; content:\"cloudflare-dns.com\"; nocase; startswith; endswith;"));
        assert!(rules[4].contains("tls.sni; content:\".doh.example\"; nocase; endswith;"));
        assert!(text.contains("DNS_FIREWALL"));
        // SIDs are unique and consecutive; every rule is closed.
        for (i, r) in rules.iter().enumerate() {
            assert!(
                r.ends_with(&format!("sid:{}; rev:1;)", SID_BASE + i as u32)),
                "{r}"
            );
            assert_eq!(r.matches('(').count(), 1, "{r}");
            assert_eq!(r.matches('"').count() % 2, 0, "{r}");
        }
    }

    #[test]
    fn no_allowed_resolver_means_any() {
        let text = emit(&[], &DomainSet::new(), BypassAction::Alert);
        assert!(text.contains("alert udp [$HOME_NET,!$DNS_FIREWALL] any -> any 53 ("));
        assert_eq!(text.lines().filter(|l| !l.starts_with('#')).count(), 4);
    }

    #[test]
    fn real_doh_list_emits_one_rule_per_name() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/blocklists/hagezi-doh-vpn-proxy-bypass.txt"
        );
        let Ok(t) = std::fs::read_to_string(path) else {
            eprintln!("skipping: {path} not present");
            return;
        };
        let mut s = DomainSet::new();
        s.extend_from_text(&t).unwrap();
        let text = emit(&["127.0.0.1".into()], &s, BypassAction::Alert);
        assert_eq!(
            text.lines().filter(|l| l.starts_with("alert tls")).count(),
            s.len()
        );
        assert!(text.contains(
            "content:\"1dot1dot1dot1.cloudflare-dns.com\"; nocase; startswith; endswith;"
        ));
    }
}
