//! The `sekisho dns` YAML configuration: typed, validated, with located errors.
//!
//! The keys follow the issue's contract (`listen`, `upstreams`, `fail_mode`, `mode`,
//! `query_log`, `domain_lists`, `rule_groups`); everything else is an addition beside them.
//! Unknown keys are errors (serde `deny_unknown_fields`), as in the packet-firewall policy.
//! Domain list files are read relative to the config file's directory. AWS JSON exports can be
//! imported: a domain list as `{aws_json: file}` (the `ListFirewallDomains` output,
//! `{"Domains": [...]}`), a rule group as `{name, priority, aws_json: file}` (the
//! `ListFirewallRules` output, `{"FirewallRules": [...]}` whose `FirewallDomainListId`s name
//! lists of this file).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sekisho_diag::yaml::{from_yaml, YamlIndex};
use sekisho_diag::{suggest, Diagnostic, SourceFile};
use serde::Deserialize;

use crate::acl::{self, Cidr};
use crate::domains::DomainSet;
use crate::limits::LimitsConfig;
use crate::policy::{
    Action, BlockResponse, DomainList, Mode, Policy, Redirection, Rule, RuleGroup,
};
use crate::privs::RunAs;

/// Largest override TTL AWS accepts, seconds.
pub const MAX_OVERRIDE_TTL: u32 = 604_800;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default = "default_listen")]
    listen: Vec<String>,
    upstreams: Vec<String>,
    #[serde(default)]
    upstream_timeout_ms: Option<u64>,
    #[serde(default)]
    upstream_attempts: Option<u32>,
    #[serde(default)]
    fail_mode: RawFailMode,
    #[serde(default)]
    mode: RawMode,
    #[serde(default)]
    query_log: Option<RawQueryLog>,
    #[serde(default)]
    edns_client_subnet: bool,
    #[serde(default)]
    max_udp_payload: Option<u16>,
    #[serde(default)]
    allowed_resolvers: Vec<String>,
    #[serde(default)]
    doh_list: Option<String>,
    #[serde(default)]
    domain_lists: BTreeMap<String, RawList>,
    #[serde(default)]
    rule_groups: Vec<RawGroup>,
    #[serde(default)]
    allow_clients: Option<Vec<String>>,
    #[serde(default)]
    limits: Option<RawLimits>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    group: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    #[serde(default)]
    client_qps: Option<u32>,
    #[serde(default)]
    client_burst: Option<u32>,
    #[serde(default)]
    slip: Option<u32>,
    #[serde(default)]
    client_inflight: Option<u32>,
    #[serde(default)]
    exempt_clients: Option<Vec<String>>,
    #[serde(default)]
    clients_tracked: Option<usize>,
    #[serde(default)]
    tcp_clients: Option<usize>,
    #[serde(default)]
    tcp_clients_per_client: Option<usize>,
    #[serde(default)]
    tcp_idle_ms: Option<u64>,
    #[serde(default)]
    tcp_write_ms: Option<u64>,
}

fn default_listen() -> Vec<String> {
    vec!["127.0.0.1:53".into()]
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum RawFailMode {
    #[default]
    Closed,
    Open,
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum RawMode {
    #[default]
    Enforce,
    Alert,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQueryLog {
    path: String,
    #[serde(default)]
    max_size_mb: Option<u64>,
    #[serde(default)]
    keep: Option<u32>,
    #[serde(default)]
    queue: Option<usize>,
    #[serde(default)]
    queue_bytes: Option<usize>,
    #[serde(default)]
    account_id: Option<String>,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    vpc_id: Option<String>,
    #[serde(default)]
    resolver_endpoint: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawList {
    Inline(Vec<String>),
    Source(RawListSource),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawListSource {
    #[serde(default)]
    file: Option<String>,
    #[serde(default)]
    aws_json: Option<String>,
    #[serde(default)]
    domains: Option<Vec<String>>,
    #[serde(default)]
    id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    name: String,
    priority: u32,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    rules: Vec<RawRule>,
    #[serde(default)]
    aws_json: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: String,
    priority: u32,
    domain_list: String,
    action: RawAction,
    #[serde(default)]
    qtype: Option<String>,
    #[serde(default)]
    block_response: Option<RawBlockResponse>,
    #[serde(default)]
    override_domain: Option<String>,
    #[serde(default)]
    override_ttl: Option<u32>,
    #[serde(default)]
    redirection: Option<RawRedirection>,
}

#[derive(Deserialize, Clone, Copy, PartialEq)]
#[serde(rename_all = "lowercase")]
enum RawAction {
    Allow,
    Alert,
    Block,
}

#[derive(Deserialize, Clone, Copy, PartialEq)]
#[serde(rename_all = "lowercase")]
enum RawBlockResponse {
    Nodata,
    Nxdomain,
    Override,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum RawRedirection {
    Inspect,
    Trust,
}

/// What to do when the firewall cannot give a filtered answer (reference §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailMode {
    /// Answer SERVFAIL (the AWS default).
    Closed,
    /// Let resolution proceed without the firewall (see `server` module docs).
    Open,
}

/// Query log settings.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryLogConfig {
    /// Destination file.
    pub path: PathBuf,
    /// Rotate when the file reaches this many bytes (default 100 MiB).
    pub max_bytes: u64,
    /// Rotated files kept (`path.1` … `path.N`, default 5).
    pub keep: u32,
    /// Lines buffered between answering and writing; when full, lines are dropped and counted
    /// (default 65536).
    pub queue: usize,
    /// Bytes the queued entries may hold in all (each entry keeps the question, the answer
    /// section and the decision, not whole messages); when full, new entries are dropped and
    /// counted (default 8 MiB).
    pub queue_bytes: usize,
    /// `account_id` field (default `"000000000000"`).
    pub account_id: String,
    /// `region` field (default `"local"`).
    pub region: String,
    /// `vpc_id` field (default `"vpc-sekisho"`).
    pub vpc_id: String,
    /// `srcids.resolver_endpoint` (default `"sekisho"`); `srcids.instance` is the client address.
    pub resolver_endpoint: String,
}

/// Everything `sekisho dns` needs besides the policy.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Addresses to listen on, UDP and TCP each.
    pub listen: Vec<SocketAddr>,
    /// Upstream resolvers, tried in order (failover).
    pub upstreams: Vec<SocketAddr>,
    /// Time to wait for one upstream attempt.
    pub upstream_timeout: Duration,
    /// Attempts per query across the upstream list (each attempt goes to the next upstream).
    pub upstream_attempts: u32,
    /// Closed (SERVFAIL) or open.
    pub fail_mode: FailMode,
    /// Query log, if configured.
    pub query_log: Option<QueryLogConfig>,
    /// Pass EDNS Client Subnet options upstream (default false: they are stripped).
    pub edns_client_subnet: bool,
    /// Largest UDP answer sent to clients, bytes, whatever they advertise (default 1232).
    pub max_udp_payload: u16,
    /// Resolvers clients may use directly (for `--emit-bypass-rules`).
    pub allowed_resolvers: Vec<String>,
    /// DoH endpoint list (for `--emit-bypass-rules`), resolved relative to the config file.
    pub doh_list: Option<PathBuf>,
    /// Clients that get answers; others get REFUSED (default [`acl::default_allow`]: loopback
    /// and the networks of the listen addresses).
    pub allow_clients: Vec<Cidr>,
    /// Per-client limits and TCP connection limits.
    pub limits: LimitsConfig,
    /// `user:` as written (dropped to after binding when started as root).
    pub user: Option<String>,
    /// `group:` as written (default: the user's primary group).
    pub group: Option<String>,
    /// `user:`/`group:` resolved.
    pub run_as: Option<RunAs>,
}

impl ServerConfig {
    /// Keys whose change a SIGHUP reload cannot apply (they need a restart), comparing the
    /// running config with `new`.
    pub fn restart_keys_changed(&self, new: &ServerConfig) -> Vec<&'static str> {
        let mut v = Vec::new();
        let mut check = |changed: bool, key: &'static str| {
            if changed {
                v.push(key);
            }
        };
        check(self.listen != new.listen, "listen");
        check(self.upstreams != new.upstreams, "upstreams");
        check(
            self.upstream_timeout != new.upstream_timeout,
            "upstream_timeout_ms",
        );
        check(
            self.upstream_attempts != new.upstream_attempts,
            "upstream_attempts",
        );
        check(self.fail_mode != new.fail_mode, "fail_mode");
        check(self.query_log != new.query_log, "query_log");
        check(
            self.edns_client_subnet != new.edns_client_subnet,
            "edns_client_subnet",
        );
        check(
            self.max_udp_payload != new.max_udp_payload,
            "max_udp_payload",
        );
        check(self.allow_clients != new.allow_clients, "allow_clients");
        check(self.limits != new.limits, "limits");
        check(self.user != new.user, "user");
        check(self.group != new.group, "group");
        v
    }
}

/// A loaded configuration: server settings and the policy.
#[derive(Debug, Clone)]
pub struct Config {
    /// Server settings.
    pub server: ServerConfig,
    /// The firewall policy.
    pub policy: Policy,
}

/// Code of the diagnostic when the config file itself cannot be read (missing, a directory, no
/// permission): a usage error (exit 2), unlike bad content (exit 1).
pub const UNREADABLE: &str = "io";

/// Loads and validates the configuration file at `path`. Errors are located diagnostics; a
/// file that cannot be read at all has code [`UNREADABLE`].
pub fn load(path: &Path) -> Result<Config, Diagnostic> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Diagnostic::error(format!("cannot read config: {e}"))
            .in_file(path.display().to_string())
            .with_code(UNREADABLE)
            .with_hint("--config takes the path of the DNS firewall YAML file")
    })?;
    let src = SourceFile::new(path.display().to_string(), text);
    let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    parse(&src, &base)
}

/// Parses configuration text; list files are read relative to `base`.
pub fn parse(src: &SourceFile, base: &Path) -> Result<Config, Diagnostic> {
    let idx = YamlIndex::new(src.text());
    let raw: RawConfig = from_yaml(src).map_err(|d| improve_serde_error(d, src, &idx))?;
    let at = |path: &str, msg: String| {
        Diagnostic::error(msg)
            .at_span(src, idx.nearest(path))
            .with_code("dns-config")
    };
    let (listen, upstreams) = addresses(&raw, &at)?;
    let mut lists = Vec::new();
    for (name, spec) in &raw.domain_lists {
        lists.push(domain_list(name, spec, src, &idx, base, &at)?);
    }
    let groups = rule_groups(&raw, &lists, base, &at)?;
    let mut policy = Policy {
        lists,
        groups,
        mode: match raw.mode {
            RawMode::Enforce => Mode::Enforce,
            RawMode::Alert => Mode::Alert,
        },
    };
    policy.sort();
    let query_log = query_log(&raw, base, &at)?;
    let allow_clients = match &raw.allow_clients {
        Some(l) => cidrs(l, "allow_clients", &at)?,
        None => acl::default_allow(&listen),
    };
    let limits = limits(raw.limits.as_ref(), &at)?;
    if raw.group.is_some() && raw.user.is_none() {
        return Err(at("group", "'group' needs 'user'".into()).with_hint(
            "add user: NAME (e.g. user: nobody); group: defaults to the user's primary group",
        ));
    }
    let run_as = match &raw.user {
        None => None,
        Some(u) => Some(crate::privs::lookup(u, raw.group.as_deref()).map_err(|m| {
            let key = if m.contains("group") { "group" } else { "user" };
            at(key, m).with_hint(
                "name an existing account (see /etc/passwd, /etc/group), e.g. user: nobody",
            )
        })?),
    };
    let server = ServerConfig {
        listen,
        upstreams,
        upstream_timeout: Duration::from_millis(raw.upstream_timeout_ms.unwrap_or(1500).max(1)),
        upstream_attempts: raw.upstream_attempts.unwrap_or(3).max(1),
        fail_mode: match raw.fail_mode {
            RawFailMode::Closed => FailMode::Closed,
            RawFailMode::Open => FailMode::Open,
        },
        query_log,
        edns_client_subnet: raw.edns_client_subnet,
        max_udp_payload: raw.max_udp_payload.unwrap_or(1232).max(512),
        allowed_resolvers: raw.allowed_resolvers.clone(),
        doh_list: raw.doh_list.as_ref().map(|d| base.join(d)),
        allow_clients,
        limits,
        user: raw.user.clone(),
        group: raw.group.clone(),
        run_as,
    };
    Ok(Config { server, policy })
}

/// Makes the error of the key at a YAML path (`limits.client_burst`, `listen[0]`).
type At<'a> = &'a dyn Fn(&str, String) -> Diagnostic;

/// The listen and upstream addresses (port 53 when left out).
fn addresses(raw: &RawConfig, at: At) -> Result<(Vec<SocketAddr>, Vec<SocketAddr>), Diagnostic> {
    let parse_addr = |s: &str, default_port: u16| -> Option<SocketAddr> {
        s.parse::<SocketAddr>().ok().or_else(|| {
            s.parse::<std::net::IpAddr>()
                .ok()
                .map(|ip| SocketAddr::new(ip, default_port))
        })
    };
    let mut listen = Vec::new();
    for (i, l) in raw.listen.iter().enumerate() {
        listen.push(parse_addr(l, 53).ok_or_else(|| {
            at(&format!("listen[{i}]"), format!("'{l}' is not an address"))
                .with_hint("write IP:PORT, e.g. 127.0.0.1:53 or [::1]:53")
        })?);
    }
    if raw.upstreams.is_empty() {
        return Err(at("upstreams", "no upstream resolver configured".into())
            .with_hint("add at least one, e.g. upstreams: [\"127.0.0.1:5300\"]"));
    }
    let mut upstreams = Vec::new();
    for (i, u) in raw.upstreams.iter().enumerate() {
        upstreams.push(parse_addr(u, 53).ok_or_else(|| {
            at(
                &format!("upstreams[{i}]"),
                format!("'{u}' is not an address"),
            )
            .with_hint("write IP or IP:PORT, e.g. 9.9.9.9 or 127.0.0.1:5300")
        })?);
    }
    Ok((listen, upstreams))
}

/// Adds inline domain entries (at YAML path `base_path`) to `set`; an invalid entry's error
/// points at the entry itself.
fn add_inline(
    set: &mut DomainSet,
    entries: &[String],
    base_path: &str,
    src: &SourceFile,
    idx: &YamlIndex,
) -> Result<(), Diagnostic> {
    for (i, e) in entries.iter().enumerate() {
        set.insert(e).map_err(|err| {
            let p = format!("{base_path}[{i}]");
            let span = idx.nearest(&p);
            let quoted = matches!(src.text().as_bytes().get(span.start), Some(b'"' | b'\''));
            let start = span.start + usize::from(quoted) + err.offset;
            Diagnostic::error(format!("invalid domain '{e}': {}", err.message))
                .at_span(src, start..start + err.len)
                .with_code("domain-entry")
                .with_hint("entries are 'example.com', '*.example.com' or '*'")
        })?;
    }
    Ok(())
}

/// One domain list: inline entries, or one of a list file, an AWS JSON export or a
/// `domains:` list (files relative to `base`).
fn domain_list(
    name: &str,
    spec: &RawList,
    src: &SourceFile,
    idx: &YamlIndex,
    base: &Path,
    at: At,
) -> Result<DomainList, Diagnostic> {
    let path = format!("domain_lists.{name}");
    let mut set = DomainSet::new();
    let mut id = name.to_string();
    match spec {
        RawList::Inline(entries) => add_inline(&mut set, entries, &path, src, idx)?,
        RawList::Source(s) => {
            if let Some(i) = &s.id {
                id = i.clone();
            }
            let sources = [s.file.is_some(), s.aws_json.is_some(), s.domains.is_some()]
                .iter()
                .filter(|b| **b)
                .count();
            if sources != 1 {
                return Err(at(
                    &path,
                    format!(
                        "domain list '{name}' needs exactly one of 'file', 'aws_json' or 'domains'"
                    ),
                ));
            }
            if let Some(entries) = &s.domains {
                add_inline(&mut set, entries, &format!("{path}.domains"), src, idx)?;
            }
            if let Some(file) = &s.file {
                let full = base.join(file);
                let text = std::fs::read_to_string(&full).map_err(|e| {
                    at(
                        &format!("{path}.file"),
                        format!("cannot read domain list file '{}': {e}", full.display()),
                    )
                })?;
                set = DomainSet::with_capacity(text.len() / 20);
                set.extend_from_text(&text).map_err(|e| {
                    let lsrc = SourceFile::new(full.display().to_string(), text.clone());
                    Diagnostic::error(e.message)
                        .at_span(&lsrc, e.offset..e.offset + e.len)
                        .with_code("domain-entry")
                        .with_hint("one entry per line: 'example.com', '*.example.com', '*', or a hosts-file line '0.0.0.0 example.com'")
                })?;
            }
            if let Some(file) = &s.aws_json {
                let full = base.join(file);
                let domains =
                    read_aws_domains(&full).map_err(|m| at(&format!("{path}.aws_json"), m))?;
                for d in &domains {
                    set.insert(d).map_err(|e| {
                        at(
                            &format!("{path}.aws_json"),
                            format!("{}: invalid domain '{d}': {}", full.display(), e.message),
                        )
                    })?;
                }
            }
        }
    }
    Ok(DomainList {
        name: name.to_string(),
        id,
        set,
    })
}

/// The rule groups, each priority used once, their rules checked against the domain lists.
fn rule_groups(
    raw: &RawConfig,
    lists: &[DomainList],
    base: &Path,
    at: At,
) -> Result<Vec<RuleGroup>, Diagnostic> {
    let list_names: Vec<&str> = lists.iter().map(|l| l.name.as_str()).collect();
    let mut groups = Vec::new();
    let mut group_prios: BTreeMap<u32, usize> = BTreeMap::new();
    for (gi, g) in raw.rule_groups.iter().enumerate() {
        let gpath = format!("rule_groups[{gi}]");
        if let Some(prev) = group_prios.insert(g.priority, gi) {
            return Err(at(
                &format!("{gpath}.priority"),
                format!(
                    "rule group priority {} is already used by '{}'",
                    g.priority, raw.rule_groups[prev].name
                ),
            )
            .with_hint("rule group priorities must be unique"));
        }
        groups.push(rule_group(g, &gpath, &list_names, base, at)?);
    }
    Ok(groups)
}

/// One rule group (at YAML path `gpath`): its YAML rules, then those of its AWS JSON export;
/// each rule priority used once.
fn rule_group(
    g: &RawGroup,
    gpath: &str,
    list_names: &[&str],
    base: &Path,
    at: At,
) -> Result<RuleGroup, Diagnostic> {
    let mut rules = Vec::new();
    let mut raw_rules: Vec<(String, RawRuleRef)> = g
        .rules
        .iter()
        .enumerate()
        .map(|(ri, r)| (format!("{gpath}.rules[{ri}]"), RawRuleRef::Yaml(r)))
        .collect();
    let imported;
    if let Some(file) = &g.aws_json {
        let full = base.join(file);
        imported = read_aws_rules(&full).map_err(|m| at(&format!("{gpath}.aws_json"), m))?;
        raw_rules.extend(
            imported
                .iter()
                .map(|r| (format!("{gpath}.aws_json"), RawRuleRef::Aws(r))),
        );
    }
    let mut rule_prios: BTreeMap<u32, String> = BTreeMap::new();
    for (rpath, r) in &raw_rules {
        let r = match r {
            RawRuleRef::Yaml(r) => build_rule(r, rpath, list_names, at)?,
            RawRuleRef::Aws(r) => {
                let yr = aws_to_raw(r).map_err(|m| at(rpath, m))?;
                build_rule(&yr, rpath, list_names, at)?
            }
        };
        if let Some(prev) = rule_prios.insert(r.priority, r.name.clone()) {
            return Err(at(
                &format!("{rpath}.priority"),
                format!(
                    "rule priority {} is already used by '{prev}' in this group",
                    r.priority
                ),
            )
            .with_hint(
                "rule priorities must be unique inside a group; leave gaps (100, 200, ...)",
            ));
        }
        rules.push(r);
    }
    Ok(RuleGroup {
        name: g.name.clone(),
        id: g.id.clone().unwrap_or_else(|| g.name.clone()),
        priority: g.priority,
        rules,
    })
}

/// The query log's settings (defaults filled in); its path must not be a symbolic link.
fn query_log(raw: &RawConfig, base: &Path, at: At) -> Result<Option<QueryLogConfig>, Diagnostic> {
    let query_log = raw.query_log.as_ref().map(|q| QueryLogConfig {
        path: base.join(&q.path),
        queue_bytes: q.queue_bytes.unwrap_or(8 << 20).max(1024),
        max_bytes: q.max_size_mb.unwrap_or(100).saturating_mul(1 << 20).max(1),
        keep: q.keep.unwrap_or(5),
        queue: q.queue.unwrap_or(65_536).max(1),
        account_id: q
            .account_id
            .clone()
            .unwrap_or_else(|| "000000000000".into()),
        region: q.region.clone().unwrap_or_else(|| "local".into()),
        vpc_id: q.vpc_id.clone().unwrap_or_else(|| "vpc-sekisho".into()),
        resolver_endpoint: q
            .resolver_endpoint
            .clone()
            .unwrap_or_else(|| "sekisho".into()),
    });
    if let Some(q) = &query_log {
        if std::fs::symlink_metadata(&q.path).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(at(
                "query_log.path",
                format!(
                    "query log path '{}' is a symbolic link; sekisho does not follow links for the query log",
                    q.path.display()
                ),
            )
            .with_hint("point query_log.path at a regular file or at a path that does not exist yet (it is created with mode 0640)"));
        }
    }
    Ok(query_log)
}

/// Address prefixes, from the list at YAML key `key`.
fn cidrs(list: &[String], key: &str, at: At) -> Result<Vec<Cidr>, Diagnostic> {
    let mut v = Vec::new();
    for (i, c) in list.iter().enumerate() {
        v.push(Cidr::parse(c).map_err(|m| {
            at(
                &format!("{key}[{i}]"),
                format!("'{c}' is not an address prefix: {m}"),
            )
            .with_hint("write ADDRESS/LENGTH or ADDRESS, e.g. 10.0.0.0/8, 192.0.2.7 or fd00::/8")
        })?);
    }
    Ok(v)
}

/// The per-client limits (`limits:`), defaults for the keys left out; counts must be at
/// least 1.
fn limits(rl: Option<&RawLimits>, at: At) -> Result<LimitsConfig, Diagnostic> {
    let d = LimitsConfig::default();
    let positive = |v: Option<u64>, key: &str, default: u64| -> Result<u64, Diagnostic> {
        match v {
            Some(0) => Err(at(
                &format!("limits.{key}"),
                format!("limits.{key} must be at least 1"),
            )
            .with_hint(format!("leave it out for the default, {default}"))),
            Some(n) => Ok(n),
            None => Ok(default),
        }
    };
    let client_qps = rl.and_then(|l| l.client_qps).unwrap_or(d.client_qps);
    Ok(LimitsConfig {
        client_qps,
        client_burst: positive(
            rl.and_then(|l| l.client_burst).map(u64::from),
            "client_burst",
            u64::from(client_qps.saturating_mul(2).max(1)),
        )? as u32,
        slip: rl.and_then(|l| l.slip).unwrap_or(d.slip),
        client_inflight: positive(
            rl.and_then(|l| l.client_inflight).map(u64::from),
            "client_inflight",
            u64::from(d.client_inflight),
        )? as u32,
        exempt_clients: match rl.and_then(|l| l.exempt_clients.as_ref()) {
            Some(l) => cidrs(l, "limits.exempt_clients", at)?,
            None => Vec::new(),
        },
        clients_tracked: positive(
            rl.and_then(|l| l.clients_tracked).map(|n| n as u64),
            "clients_tracked",
            d.clients_tracked as u64,
        )? as usize,
        tcp_clients: positive(
            rl.and_then(|l| l.tcp_clients).map(|n| n as u64),
            "tcp_clients",
            d.tcp_clients as u64,
        )? as usize,
        tcp_clients_per_client: positive(
            rl.and_then(|l| l.tcp_clients_per_client).map(|n| n as u64),
            "tcp_clients_per_client",
            d.tcp_clients_per_client as u64,
        )? as usize,
        tcp_idle: Duration::from_millis(positive(
            rl.and_then(|l| l.tcp_idle_ms),
            "tcp_idle_ms",
            d.tcp_idle.as_millis() as u64,
        )?),
        tcp_write: Duration::from_millis(positive(
            rl.and_then(|l| l.tcp_write_ms),
            "tcp_write_ms",
            d.tcp_write.as_millis() as u64,
        )?),
    })
}

enum RawRuleRef<'a> {
    Yaml(&'a RawRule),
    Aws(&'a AwsRule),
}

fn build_rule(
    r: &RawRule,
    rpath: &str,
    list_names: &[&str],
    at: &dyn Fn(&str, String) -> Diagnostic,
) -> Result<Rule, Diagnostic> {
    let list = list_names
        .iter()
        .position(|n| *n == r.domain_list)
        .ok_or_else(|| {
            let d = at(
                &format!("{rpath}.domain_list"),
                format!("unknown domain list '{}'", r.domain_list),
            )
            .with_code("unknown-domain-list");
            match suggest(&r.domain_list, list_names.iter().copied()) {
                Some(s) => d.with_hint(format!("did you mean '{s}'?")),
                None => d.with_hint(format!(
                    "define it under 'domain_lists:'; known lists: {}",
                    if list_names.is_empty() {
                        "none".to_string()
                    } else {
                        list_names.join(", ")
                    }
                )),
            }
        })?;
    let qtype = match &r.qtype {
        None => None,
        Some(q) => Some(parse_qtype(q).ok_or_else(|| {
            let usage = "use a type name such as A, AAAA, MX, TXT, or TYPE<n> with n in 1..=65534";
            at(
                &format!("{rpath}.qtype"),
                format!("unknown value '{q}' for qtype"),
            )
            .with_hint(match suggest(&q.to_ascii_uppercase(), COMMON_QTYPES) {
                Some(s) => format!("did you mean '{s}'? {usage}"),
                None => usage.to_string(),
            })
        })?),
    };
    let action = match r.action {
        RawAction::Allow | RawAction::Alert => {
            if r.block_response.is_some() || r.override_domain.is_some() || r.override_ttl.is_some()
            {
                let key = if r.block_response.is_some() {
                    "block_response"
                } else if r.override_domain.is_some() {
                    "override_domain"
                } else {
                    "override_ttl"
                };
                return Err(at(
                    &format!("{rpath}.{key}"),
                    format!("'{key}' only applies to action: block"),
                )
                .with_hint("remove it, or set action: block"));
            }
            if r.action == RawAction::Allow {
                Action::Allow
            } else {
                Action::Alert
            }
        }
        RawAction::Block => {
            let resp = r.block_response.ok_or_else(|| {
                at(
                    &format!("{rpath}.action"),
                    "action: block needs a block_response".into(),
                )
                .with_hint("add block_response: nodata | nxdomain | override")
            })?;
            match resp {
                RawBlockResponse::Nodata | RawBlockResponse::Nxdomain => {
                    if let Some(key) = r
                        .override_domain
                        .as_ref()
                        .map(|_| "override_domain")
                        .or(r.override_ttl.map(|_| "override_ttl"))
                    {
                        return Err(at(
                            &format!("{rpath}.{key}"),
                            format!("'{key}' only applies to block_response: override"),
                        ));
                    }
                    Action::Block(if resp == RawBlockResponse::Nodata {
                        BlockResponse::NoData
                    } else {
                        BlockResponse::NxDomain
                    })
                }
                RawBlockResponse::Override => {
                    let domain = r.override_domain.clone().ok_or_else(|| {
                        at(&format!("{rpath}.block_response"), "block_response: override needs override_domain".into())
                            .with_hint("add override_domain: NAME (the CNAME target) and override_ttl: SECONDS")
                    })?;
                    let mut check = DomainSet::new();
                    if domain.starts_with('*') {
                        return Err(at(
                            &format!("{rpath}.override_domain"),
                            "override_domain cannot be a wildcard".into(),
                        ));
                    }
                    check.insert(&domain).map_err(|e| {
                        at(
                            &format!("{rpath}.override_domain"),
                            format!("invalid override_domain '{domain}': {}", e.message),
                        )
                    })?;
                    let ttl = r.override_ttl.unwrap_or(0);
                    if ttl > MAX_OVERRIDE_TTL {
                        return Err(at(
                            &format!("{rpath}.override_ttl"),
                            format!("override_ttl {ttl} is above {MAX_OVERRIDE_TTL} (one week)"),
                        ));
                    }
                    Action::Block(BlockResponse::Override {
                        domain: crate::domains::normalise(&domain),
                        ttl,
                    })
                }
            }
        }
    };
    Ok(Rule {
        name: r.name.clone(),
        priority: r.priority,
        list,
        action,
        qtype,
        redirection: match r.redirection {
            Some(RawRedirection::Trust) => Redirection::Trust,
            _ => Redirection::Inspect,
        },
    })
}

/// Query type names offered as did-you-mean suggestions.
const COMMON_QTYPES: [&str; 18] = [
    "A", "AAAA", "ANY", "CAA", "CNAME", "DNSKEY", "DS", "HTTPS", "MX", "NAPTR", "NS", "PTR", "SOA",
    "SPF", "SRV", "SVCB", "TLSA", "TXT",
];

/// Rewrites serde's "unknown variant/field `x`, expected ..." into sekisho's form: "unknown
/// value 'x' for key" / "unknown key 'x' in path", a did-you-mean hint, and a caret under the
/// whole value or key (serde marks one character).
fn improve_serde_error(mut d: Diagnostic, src: &SourceFile, idx: &YamlIndex) -> Diagnostic {
    let msg = d.message.clone();
    let (prefix, kind, rest) = if let Some(i) = msg.find("unknown variant `") {
        (&msg[..i], "variant", &msg[i + "unknown variant `".len()..])
    } else if let Some(i) = msg.find("unknown field `") {
        (&msg[..i], "field", &msg[i + "unknown field `".len()..])
    } else {
        return d;
    };
    let path = prefix.trim_end_matches([':', ' ']);
    let Some(end) = rest.find('`') else { return d };
    let word = &rest[..end];
    let expected: Vec<&str> = rest[end + 1..].split('`').skip(1).step_by(2).collect();
    let list = expected.join(", ");
    let hint = match suggest(word, expected.iter().copied()) {
        Some(s) => format!("did you mean '{s}'? expected one of: {list}"),
        None => format!("expected one of: {list}"),
    };
    // The error's own position, as a byte offset: where serde pointed.
    let at = d.location.as_ref().map(|l| {
        let line_start: usize = src
            .text()
            .split_inclusive('\n')
            .take((l.line as usize).saturating_sub(1))
            .map(str::len)
            .sum();
        let col_bytes: usize = l
            .line_text
            .chars()
            .take((l.column as usize).saturating_sub(1))
            .map(char::len_utf8)
            .sum();
        line_start + col_bytes
    });
    let whole = |start: usize| start..start + word.len();
    if kind == "variant" {
        let key = path.rsplit(['.', ']']).next().unwrap_or(path);
        d.message = format!("unknown value '{word}' for {key}");
        d.code = Some("unknown-value".into());
        let span = idx
            .value(path)
            .filter(|v| src.text().get(v.clone()).is_some_and(|t| t.contains(word)))
            .or_else(|| at.map(whole));
        if let Some(span) = span {
            d = d.at_span(src, span);
        }
    } else {
        d.message = if path.is_empty() {
            format!("unknown key '{word}'")
        } else {
            format!("unknown key '{word}' in {path}")
        };
        d.code = Some("unknown-key".into());
        let key_path = if path.is_empty() {
            word.to_string()
        } else {
            format!("{path}.{word}")
        };
        if let Some(span) = idx.key(&key_path).or_else(|| at.map(whole)) {
            d = d.at_span(src, span);
        }
    }
    d.with_hint(hint)
}

/// Parses a query type as AWS writes it: a mnemonic (`A`, `MX`...) or `TYPE<n>`, n in 1–65534.
pub fn parse_qtype(s: &str) -> Option<u16> {
    let up = s.to_ascii_uppercase();
    if let Some(n) = up.strip_prefix("TYPE") {
        return n.parse::<u16>().ok().filter(|n| (1..=65534).contains(n));
    }
    let t: hickory_proto::rr::RecordType = up.parse().ok()?;
    match u16::from(t) {
        0 => None,
        n => Some(n),
    }
}

#[derive(Deserialize)]
struct AwsDomains {
    #[serde(rename = "Domains")]
    domains: Vec<String>,
}

fn read_aws_domains(path: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read '{}': {e}", path.display()))?;
    serde_json::from_str::<AwsDomains>(&text)
        .map(|d| d.domains)
        .map_err(|e| {
            format!(
                "{}:{}:{}: not an AWS domain list export ({{\"Domains\": [...]}}): {e}",
                path.display(),
                e.line(),
                e.column()
            )
        })
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct AwsRules {
    FirewallRules: Vec<AwsRule>,
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct AwsRule {
    Name: String,
    Priority: u32,
    FirewallDomainListId: String,
    Action: String,
    #[serde(default)]
    BlockResponse: Option<String>,
    #[serde(default)]
    BlockOverrideDomain: Option<String>,
    #[serde(default)]
    BlockOverrideTtl: Option<u32>,
    #[serde(default)]
    Qtype: Option<String>,
    #[serde(default)]
    FirewallDomainRedirectionAction: Option<String>,
}

fn read_aws_rules(path: &Path) -> Result<Vec<AwsRule>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read '{}': {e}", path.display()))?;
    serde_json::from_str::<AwsRules>(&text)
        .map(|r| r.FirewallRules)
        .map_err(|e| {
            format!(
                "{}:{}:{}: not an AWS rule export ({{\"FirewallRules\": [...]}}): {e}",
                path.display(),
                e.line(),
                e.column()
            )
        })
}

fn aws_to_raw(r: &AwsRule) -> Result<RawRule, String> {
    let action = match r.Action.as_str() {
        "ALLOW" => RawAction::Allow,
        "ALERT" => RawAction::Alert,
        "BLOCK" => RawAction::Block,
        other => {
            return Err(format!(
                "rule '{}': unknown Action '{other}' (ALLOW, ALERT or BLOCK)",
                r.Name
            ))
        }
    };
    let block_response = match r.BlockResponse.as_deref() {
        None => None,
        Some("NODATA") => Some(RawBlockResponse::Nodata),
        Some("NXDOMAIN") => Some(RawBlockResponse::Nxdomain),
        Some("OVERRIDE") => Some(RawBlockResponse::Override),
        Some(other) => {
            return Err(format!(
                "rule '{}': unknown BlockResponse '{other}'",
                r.Name
            ))
        }
    };
    let redirection = match r.FirewallDomainRedirectionAction.as_deref() {
        None | Some("INSPECT_REDIRECTION_DOMAIN") => None,
        Some("TRUST_REDIRECTION_DOMAIN") => Some(RawRedirection::Trust),
        Some(other) => {
            return Err(format!(
                "rule '{}': unknown FirewallDomainRedirectionAction '{other}'",
                r.Name
            ))
        }
    };
    Ok(RawRule {
        name: r.Name.clone(),
        priority: r.Priority,
        domain_list: r.FirewallDomainListId.clone(),
        action,
        qtype: r.Qtype.clone(),
        block_response: if action == RawAction::Block {
            block_response
        } else {
            None
        },
        override_domain: r
            .BlockOverrideDomain
            .clone()
            .filter(|_| block_response == Some(RawBlockResponse::Override)),
        override_ttl: r
            .BlockOverrideTtl
            .filter(|_| block_response == Some(RawBlockResponse::Override)),
        redirection,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Verdict;

    const ISSUE: &str = r#"listen: ["127.0.0.1:53"]            # UDP and TCP on each
upstreams: ["127.0.0.1:5300"]
fail_mode: closed                   # closed (SERVFAIL) | open
mode: enforce                       # enforce | alert (every BLOCK acts as ALERT)
query_log: {path: query.log}
domain_lists:
  google: ["gmail.com", "*.google.com"]
  everything: ["*"]
  bad: {file: lists/bad.txt}        # one name per line; hosts-file and "*." wildcard syntaxes accepted
rule_groups:
  - name: egress
    priority: 100
    rules:
      - {name: allow-google, priority: 100, domain_list: google, action: allow}
      - {name: mx-only, priority: 150, domain_list: bad, action: alert, qtype: MX}
      - {name: block-rest, priority: 900, domain_list: everything, action: block, block_response: nxdomain}
"#;

    fn dir_with_bad_list() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("lists")).unwrap();
        std::fs::write(
            d.path().join("lists/bad.txt"),
            "# bad\n*.bad.example\n0.0.0.0 tracker.example\n",
        )
        .unwrap();
        d
    }

    fn parse_text(text: &str, base: &Path) -> Result<Config, Diagnostic> {
        parse(&SourceFile::new("dns.yaml", text), base)
    }

    #[test]
    fn issue_example_loads() {
        let d = dir_with_bad_list();
        let c = parse_text(ISSUE, d.path()).unwrap();
        assert_eq!(c.server.listen, ["127.0.0.1:53".parse().unwrap()]);
        assert_eq!(c.server.upstreams, ["127.0.0.1:5300".parse().unwrap()]);
        assert_eq!(c.server.fail_mode, FailMode::Closed);
        assert_eq!(c.server.query_log.unwrap().path, d.path().join("query.log"));
        let p = &c.policy;
        assert_eq!(p.evaluate("x.bad.example", 15).verdict, Verdict::Alert);
        assert_eq!(p.evaluate("tracker.example", 15).verdict, Verdict::Alert);
        assert_eq!(p.evaluate("x.bad.example", 1).verdict, Verdict::Block);
        assert_eq!(p.evaluate("mail.google.com", 1).verdict, Verdict::Resolve);
    }

    #[test]
    fn unknown_list_is_located_with_suggestion() {
        let d = dir_with_bad_list();
        let text = ISSUE.replace("domain_list: everything", "domain_list: everythin");
        let e = parse_text(&text, d.path()).unwrap_err();
        let r = e.render();
        assert!(
            r.starts_with("dns.yaml:16:56: error: unknown domain list 'everythin'"),
            "{r}"
        );
        assert!(r.contains("did you mean 'everything'?"), "{r}");
        assert!(r.contains("^^^^^^^^^"), "{r}");
    }

    #[test]
    fn unknown_key_is_located() {
        let d = dir_with_bad_list();
        let text = ISSUE.replace("fail_mode: closed", "fail_mod: closed");
        let e = parse_text(&text, d.path()).unwrap_err();
        let loc = e.location.clone().unwrap();
        assert_eq!(loc.line, 3, "{}", e.render());
        assert!(e.message.contains("fail_mod"), "{}", e.message);
    }

    #[test]
    fn bad_inline_entry_is_located_at_the_character() {
        let d = dir_with_bad_list();
        let text = ISSUE.replace("\"*.google.com\"", "\"*.goo gle.com\"");
        let e = parse_text(&text, d.path()).unwrap_err();
        let loc = e.location.clone().unwrap();
        assert_eq!((loc.line, loc.column), (7, 31), "{}", e.render());
    }

    #[test]
    fn bad_list_file_entry_is_located_in_that_file() {
        let d = dir_with_bad_list();
        std::fs::write(
            d.path().join("lists/bad.txt"),
            "ok.example\nnot/ok.example\n",
        )
        .unwrap();
        let e = parse_text(ISSUE, d.path()).unwrap_err();
        let loc = e.location.clone().unwrap();
        assert!(loc.file.ends_with("lists/bad.txt"), "{}", e.render());
        assert_eq!((loc.line, loc.column), (2, 4));
    }

    #[test]
    fn missing_list_file_is_located_at_the_key() {
        let d = tempfile::tempdir().unwrap();
        let e = parse_text(ISSUE, d.path()).unwrap_err();
        assert_eq!(e.location.clone().unwrap().line, 9, "{}", e.render());
        assert!(e.message.contains("cannot read domain list file"));
    }

    #[test]
    fn block_needs_response_and_override_needs_domain() {
        let d = dir_with_bad_list();
        let text = ISSUE.replace(", block_response: nxdomain", "");
        let e = parse_text(&text, d.path()).unwrap_err();
        assert!(
            e.message.contains("needs a block_response"),
            "{}",
            e.render()
        );
        let text = ISSUE.replace("block_response: nxdomain", "block_response: override");
        let e = parse_text(&text, d.path()).unwrap_err();
        assert!(e.message.contains("override_domain"), "{}", e.render());
        let text = ISSUE.replace(
            "block_response: nxdomain",
            "block_response: override, override_domain: sinkhole.example, override_ttl: 700000",
        );
        let e = parse_text(&text, d.path()).unwrap_err();
        assert!(e.message.contains("above 604800"), "{}", e.render());
    }

    #[test]
    fn duplicate_priorities_and_bad_qtype_are_errors() {
        let d = dir_with_bad_list();
        let text = ISSUE.replace("priority: 150", "priority: 100");
        let e = parse_text(&text, d.path()).unwrap_err();
        assert!(
            e.message.contains("already used by 'allow-google'"),
            "{}",
            e.render()
        );
        let text = ISSUE.replace("qtype: MX", "qtype: MXX");
        let e = parse_text(&text, d.path()).unwrap_err();
        assert!(
            e.message.contains("unknown value 'MXX' for qtype"),
            "{}",
            e.render()
        );
    }

    /// The rendered error for ISSUE with `from` replaced by `to`.
    fn rendered(from: &str, to: &str) -> String {
        let d = dir_with_bad_list();
        assert!(ISSUE.contains(from));
        parse_text(&ISSUE.replacen(from, to, 1), d.path())
            .unwrap_err()
            .render()
    }

    #[test]
    fn unknown_values_and_keys_get_did_you_mean_and_a_whole_caret() {
        assert_eq!(
            rendered("fail_mode: closed", "fail_mode: closd"),
            "dns.yaml:3:12: error: unknown value 'closd' for fail_mode\n\
             \x20 |\n\
             3 | fail_mode: closd                   # closed (SERVFAIL) | open\n\
             \x20 |            ^^^^^\n\
             \x20 hint: did you mean 'closed'? expected one of: closed, open\n"
        );
        assert_eq!(
            rendered("action: block,", "action: blok,"),
            "dns.yaml:16:76: error: unknown value 'blok' for action\n\
             \x20  |\n\
             16 |       - {name: block-rest, priority: 900, domain_list: everything, action: blok, block_response: nxdomain}\n\
             \x20  |                                                                            ^^^^\n\
             \x20 hint: did you mean 'block'? expected one of: allow, alert, block\n"
        );
        assert_eq!(
            rendered("qtype: MX}", "qtype: MXX}"),
            "dns.yaml:15:80: error: unknown value 'MXX' for qtype\n\
             \x20  |\n\
             15 |       - {name: mx-only, priority: 150, domain_list: bad, action: alert, qtype: MXX}\n\
             \x20  |                                                                                ^^^\n\
             \x20 hint: did you mean 'MX'? use a type name such as A, AAAA, MX, TXT, or TYPE<n> with n in 1..=65534\n"
        );
        assert_eq!(
            rendered("mode: enforce  ", "modee: enforce "),
            "dns.yaml:4:1: error: unknown key 'modee'\n\
             \x20 |\n\
             4 | modee: enforce                      # enforce | alert (every BLOCK acts as ALERT)\n\
             \x20 | ^^^^^\n\
             \x20 hint: did you mean 'mode'? expected one of: listen, upstreams, upstream_timeout_ms, \
             upstream_attempts, fail_mode, mode, query_log, edns_client_subnet, max_udp_payload, \
             allowed_resolvers, doh_list, domain_lists, rule_groups, allow_clients, limits, user, group\n"
        );
    }

    #[test]
    fn hardening_keys_load_with_defaults_and_located_errors() {
        let d = dir_with_bad_list();
        let c = parse_text(ISSUE, d.path()).unwrap();
        let l = &c.server.limits;
        assert_eq!(l, &LimitsConfig::default());
        assert!(crate::acl::any_contains(
            &c.server.allow_clients,
            "127.0.0.1".parse().unwrap()
        ));
        assert!(!crate::acl::any_contains(
            &c.server.allow_clients,
            "192.0.2.1".parse().unwrap()
        ));
        assert_eq!(c.server.query_log.as_ref().unwrap().queue_bytes, 8 << 20);
        let text = ISSUE.replace(
            "fail_mode: closed",
            "allow_clients: [10.0.0.0/8, 192.0.2.7]\nuser: root\nlimits: {client_qps: 50, slip: 0, exempt_clients: [127.0.0.1/32], tcp_idle_ms: 2000}\nfail_mode: closed",
        );
        let c = parse_text(&text, d.path()).unwrap();
        assert_eq!(c.server.allow_clients.len(), 2);
        assert_eq!(c.server.limits.client_qps, 50);
        assert_eq!(c.server.limits.client_burst, 100);
        assert_eq!(c.server.limits.slip, 0);
        assert_eq!(c.server.limits.tcp_idle, Duration::from_secs(2));
        assert_eq!(c.server.run_as, Some(RunAs { uid: 0, gid: 0 }));
        // Restart-only keys are named on reload.
        let old = parse_text(ISSUE, d.path()).unwrap();
        assert_eq!(
            old.server.restart_keys_changed(&c.server),
            ["allow_clients", "limits", "user"]
        );

        let r = rendered(
            "fail_mode: closed",
            "allow_clients: [10.0.0.0/40]\nfail_mode: closed",
        );
        assert!(
            r.starts_with("dns.yaml:3:17: error: '10.0.0.0/40' is not an address prefix"),
            "{r}"
        );
        assert!(r.contains("hint: write ADDRESS/LENGTH"), "{r}");
        let r = rendered(
            "fail_mode: closed",
            "limits:\n  tcp_clients: 0\nfail_mode: closed",
        );
        assert!(
            r.starts_with("dns.yaml:4:16: error: limits.tcp_clients must be at least 1"),
            "{r}"
        );
        let r = rendered(
            "fail_mode: closed",
            "limits: {tcp_idle_m: 5}\nfail_mode: closed",
        );
        assert!(r.contains("unknown key 'tcp_idle_m' in limits"), "{r}");
        assert!(r.contains("did you mean 'tcp_idle_ms'?"), "{r}");
        let r = rendered(
            "fail_mode: closed",
            "user: no-such-user-sekisho\nfail_mode: closed",
        );
        assert!(
            r.starts_with("dns.yaml:3:7: error: unknown user 'no-such-user-sekisho'"),
            "{r}"
        );
        let r = rendered("fail_mode: closed", "group: nogroup\nfail_mode: closed");
        assert!(r.contains("'group' needs 'user'"), "{r}");
    }

    #[test]
    fn symlinked_query_log_path_is_refused_at_the_key() {
        let d = dir_with_bad_list();
        std::fs::write(d.path().join("elsewhere"), "").unwrap();
        std::os::unix::fs::symlink(d.path().join("elsewhere"), d.path().join("query.log")).unwrap();
        let e = parse_text(ISSUE, d.path()).unwrap_err();
        let r = e.render();
        let shown = d.path().join("query.log").display().to_string();
        assert!(
            r.starts_with("dns.yaml:5:19: error: query log path '"),
            "{r}"
        );
        assert!(r.contains(&format!("'{shown}' is a symbolic link")), "{r}");
        assert!(r.contains("hint:"), "{r}");
    }

    #[test]
    fn qtypes_parse_like_aws() {
        assert_eq!(parse_qtype("MX"), Some(15));
        assert_eq!(parse_qtype("aaaa"), Some(28));
        assert_eq!(parse_qtype("TYPE28"), Some(28));
        assert_eq!(parse_qtype("TYPE0"), None);
        assert_eq!(parse_qtype("TYPE65535"), None);
        assert_eq!(parse_qtype("BOGUS"), None);
    }

    #[test]
    fn aws_json_imports() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("list.json"),
            r#"{"Domains": ["bad.example.", "*.bad.example."], "NextToken": null}"#,
        )
        .unwrap();
        std::fs::write(
            d.path().join("rules.json"),
            r#"{"FirewallRules": [{"FirewallRuleGroupId":"rslvr-frg-1","Name":"block-bad","Priority":200,
 "FirewallDomainListId":"rslvr-fdl-1","Qtype":"A","Action":"BLOCK","BlockResponse":"OVERRIDE",
 "BlockOverrideDomain":"sinkhole.example.internal","BlockOverrideDnsType":"CNAME","BlockOverrideTtl":60,
 "FirewallDomainRedirectionAction":"TRUST_REDIRECTION_DOMAIN"}]}"#,
        )
        .unwrap();
        let text = "upstreams: [127.0.0.1]\ndomain_lists:\n  rslvr-fdl-1: {aws_json: list.json}\nrule_groups:\n  - {name: imported, priority: 100, aws_json: rules.json}\n";
        let c = parse_text(text, d.path()).unwrap();
        let p = &c.policy;
        let dec = p.evaluate("x.bad.example", 1);
        assert_eq!(dec.verdict, Verdict::Block);
        let (_, r, _) = p.parts(dec.hit.unwrap());
        assert_eq!(
            r.action,
            Action::Block(BlockResponse::Override {
                domain: "sinkhole.example.internal".into(),
                ttl: 60
            })
        );
        assert_eq!(r.redirection, Redirection::Trust);
        assert_eq!(p.evaluate("x.bad.example", 28).verdict, Verdict::Resolve);
        assert_eq!(c.server.upstreams, ["127.0.0.1:53".parse().unwrap()]);
    }
}
