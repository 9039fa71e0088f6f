//! DNS firewall with Route 53 Resolver DNS Firewall semantics: policy, forwarder, query log.
//!
//! - [`domains`]: domain list syntax and the O(labels) matcher;
//! - [`policy`]: pure evaluation, `(name, type, answer chain) → decision`;
//! - [`config`]: the YAML config (and AWS JSON imports) with located errors;
//! - [`query`]: pure per-query processing (classify, redirection chain), used by fuzz targets;
//! - [`wire`]: answers built from query bytes (block responses, errors, truncation);
//! - [`server`]: the UDP/TCP forwarder (a driver around the policy); its UDP fast path, one
//!   epoll loop per thread with its own upstream sockets, is `udp.rs`;
//! - [`querylog`]: Route 53 Resolver query log lines, written asynchronously;
//! - [`report`]: the alert-first rollout report over a query log;
//! - [`bypass`]: Suricata rules that catch clients walking around the firewall;
//! - [`acl`]: client address prefixes (`allow_clients`, `exempt_clients`);
//! - [`limits`]: per-client rate and in-flight limits, the TCP connection table;
//! - [`privs`]: dropping root after binding (`user:`).
#![warn(missing_docs)]
// `Diagnostic` is the house error type and is returned by value across sekisho; boxing it here
// alone would make this crate's API differ from the others.
#![allow(clippy::result_large_err)]

pub mod acl;
pub mod bypass;
pub mod config;
pub mod domains;
pub mod limits;
mod mmsg;
pub mod policy;
pub mod privs;
pub mod query;
pub mod querylog;
pub mod report;
pub mod server;
mod udp;
pub mod wire;

use std::path::Path;

use sekisho_diag::Diagnostic;

/// Loads and validates a config; returns a one-line summary of what it holds.
pub fn check(config: &Path) -> Result<String, Diagnostic> {
    let c = config::load(config)?;
    let names: usize = c.policy.lists.iter().map(|l| l.set.len()).sum();
    let rules: usize = c.policy.groups.iter().map(|g| g.rules.len()).sum();
    Ok(format!(
        "{}: ok; {}, {}, {}, {}",
        config.display(),
        count(c.policy.lists.len(), "domain list"),
        count(names, "name"),
        count(c.policy.groups.len(), "rule group"),
        count(rules, "rule")
    ))
}

/// `1 rule`, `2 rules`.
fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// The bypass rule group for a config: its `allowed_resolvers` (default: the listen
/// addresses; never the upstreams, which clients must not reach directly: sekisho's own upstream
/// traffic is exempted by the `$DNS_FIREWALL` source variable instead) and the DoH names of its
/// `doh_list` file (none when unset).
pub fn bypass_rules(config: &Path, action: bypass::BypassAction) -> Result<String, Diagnostic> {
    let c = config::load(config)?;
    let allowed = if c.server.allowed_resolvers.is_empty() {
        let mut v: Vec<String> = Vec::new();
        for a in &c.server.listen {
            let ip = a.ip().to_string();
            if !v.contains(&ip) {
                v.push(ip);
            }
        }
        v
    } else {
        c.server.allowed_resolvers.clone()
    };
    let mut doh = domains::DomainSet::new();
    if let Some(p) = &c.server.doh_list {
        let text = std::fs::read_to_string(p).map_err(|e| {
            Diagnostic::error(format!("cannot read doh_list '{}': {e}", p.display()))
                .in_file(config.display().to_string())
        })?;
        doh.extend_from_text(&text).map_err(|e| {
            let src = sekisho_diag::SourceFile::new(p.display().to_string(), text.clone());
            Diagnostic::error(e.message).at_span(&src, e.offset..e.offset + e.len)
        })?;
    }
    Ok(bypass::emit(&allowed, &doh, action))
}
