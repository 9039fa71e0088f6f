//! NFW domain-list rule groups (`RulesSourceList`) and the Suricata rules they compile to.
//!
//! The generated text follows the AWS Network Firewall documentation (NFW reference §5.3)
//! byte for byte for the documented cases:
//!
//! * rules are generated per target type, TLS SNI first, then HTTP Host; within a type one
//!   rule per target in list order, then (allow lists only) the catch-all drop for that type;
//! * sids count from 1 within the group, `rev:1`;
//! * `.example.com` matches the apex and every subdomain via `dotprefix`; `example.com`
//!   matches exactly (`startswith; endswith`);
//! * TLS matches use `nocase`; HTTP matches rely on Suricata lower-casing `http.host`, so
//!   HTTP targets are lower-cased here;
//! * under action order every rule carries `priority:1;`; under strict order the keyword is
//!   not allowed, so it is left out (the exact strict text is not documented by AWS).
//!
//! `reject` / `alert` lists use the action word and `rejectlisted` / `alertlisted` in the
//! message (AWS does not document their exact text).

use crate::settings::{ParseError, RuleOrder};

/// What a domain list generates: the NFW `GeneratedRulesType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListType {
    /// Pass listed names; drop TLS ClientHellos / HTTP requests to anything else.
    Allowlist,
    /// Drop listed names.
    Denylist,
    /// Reject (drop + RST) listed names.
    Rejectlist,
    /// Alert on listed names.
    Alertlist,
}

impl ListType {
    /// The YAML spellings.
    pub const NAMES: &'static [&'static str] =
        &["allowlist", "denylist", "rejectlist", "alertlist"];

    /// Parses `allowlist` … (YAML) or `ALLOWLIST` … (NFW JSON).
    pub fn parse(word: &str) -> Result<Self, ParseError> {
        match word.to_ascii_lowercase().as_str() {
            "allowlist" => Ok(Self::Allowlist),
            "denylist" => Ok(Self::Denylist),
            "rejectlist" => Ok(Self::Rejectlist),
            "alertlist" => Ok(Self::Alertlist),
            _ => Err(unknown("domain list type", word, Self::NAMES)),
        }
    }

    /// The YAML spelling.
    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    fn action(self) -> &'static str {
        match self {
            Self::Allowlist => "pass",
            Self::Denylist => "drop",
            Self::Rejectlist => "reject",
            Self::Alertlist => "alert",
        }
    }

    fn adjective(self) -> &'static str {
        match self {
            Self::Allowlist => "allowlisted",
            Self::Denylist => "denylisted",
            Self::Rejectlist => "rejectlisted",
            Self::Alertlist => "alertlisted",
        }
    }
}

/// Which name a domain list matches: the NFW `TargetTypes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TargetType {
    /// The TLS ClientHello SNI.
    TlsSni,
    /// The HTTP Host header.
    HttpHost,
}

impl TargetType {
    /// The YAML spellings.
    pub const NAMES: &'static [&'static str] = &["tls_sni", "http_host"];

    /// Parses `tls_sni` / `http_host` in any case (NFW JSON uses `TLS_SNI`).
    pub fn parse(word: &str) -> Result<Self, ParseError> {
        match word.to_ascii_lowercase().as_str() {
            "tls_sni" => Ok(Self::TlsSni),
            "http_host" => Ok(Self::HttpHost),
            "aws_route_53_resolved_domain" => Err(ParseError {
                message: format!("target type '{word}' is not supported by sekisho"),
                hint: Some(
                    "use tls_sni and http_host; resolved-domain matching needs the DNS firewall"
                        .into(),
                ),
            }),
            _ => Err(unknown("target type", word, Self::NAMES)),
        }
    }

    /// The YAML spelling.
    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

fn unknown(what: &str, word: &str, expected: &[&str]) -> ParseError {
    // NFW JSON spells these in upper case; answer in the spelling the user wrote.
    let upper = word.chars().any(|c| c.is_ascii_uppercase())
        && !word.chars().any(|c| c.is_ascii_lowercase());
    let case = |s: &str| {
        if upper {
            s.to_ascii_uppercase()
        } else {
            s.to_string()
        }
    };
    let list = expected
        .iter()
        .map(|s| case(s))
        .collect::<Vec<_>>()
        .join(", ");
    let hint = match sekisho_diag::suggest(&word.to_ascii_lowercase(), expected.iter().copied()) {
        Some(s) => format!("did you mean '{}'? expected one of: {list}", case(s)),
        None => format!("expected one of: {list}"),
    };
    ParseError {
        message: format!("unknown {what} '{word}'"),
        hint: Some(hint),
    }
}

/// A domain list rule group, as written by the user (validated by [`check_target`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainList {
    /// Names; a leading `.` means the name and all its subdomains.
    pub targets: Vec<String>,
    /// Which fields to match, deduplicated, in the order given.
    pub target_types: Vec<TargetType>,
    /// What the generated rules do.
    pub list_type: ListType,
}

/// Checks one target name; `Err` says what is wrong with it.
///
/// Accepted: letters, digits, `-`, `_`, `.`, optionally one leading `.`; no empty labels. Such
/// names never need escaping inside a rule's `content:"..."`.
pub fn check_target(target: &str) -> Result<(), ParseError> {
    let err = |message: String, hint: &str| {
        Err(ParseError {
            message,
            hint: Some(hint.to_string()),
        })
    };
    if target.is_empty() || target == "." {
        return err(
            "empty domain list target".into(),
            "write a name like 'example.com' or '.example.com'",
        );
    }
    if let Some(rest) = target.strip_prefix("*.") {
        return err(
            format!("wildcard target '{target}' is not supported"),
            &format!("write '.{rest}' to match {rest} and all its subdomains"),
        );
    }
    if let Some(bad) = target
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return err(
            format!("invalid character '{bad}' in domain list target '{target}'"),
            "targets are host names: letters, digits, '-', '_' and '.'",
        );
    }
    let body = target.strip_prefix('.').unwrap_or(target);
    if body.split('.').any(str::is_empty) {
        return err(
            format!("empty label in domain list target '{target}'"),
            "remove the doubled or trailing '.'",
        );
    }
    Ok(())
}

impl DomainList {
    /// The Suricata rule text this list compiles to, one rule per entry, sids from 1.
    ///
    /// Targets are assumed valid (see [`check_target`]); invalid ones are skipped.
    pub fn generate(&self, order: RuleOrder) -> Vec<String> {
        let prio = match order {
            RuleOrder::Action => " priority:1;",
            RuleOrder::Strict => "",
        };
        let act = self.list_type.action();
        let adj = self.list_type.adjective();
        let mut types = self.target_types.clone();
        types.sort();
        types.dedup();
        let mut out = Vec::new();
        let mut sid = 0u32;
        let mut next_sid = || {
            sid += 1;
            sid
        };
        for ty in types {
            for t in self.targets.iter().filter(|t| check_target(t).is_ok()) {
                let sid = next_sid();
                out.push(match ty {
                    TargetType::TlsSni => {
                        let m = if t.starts_with('.') {
                            format!("tls.sni; dotprefix; content:\"{t}\"; nocase; endswith;")
                        } else {
                            format!("tls.sni; content:\"{t}\"; startswith; nocase; endswith;")
                        };
                        format!("{act} tls $HOME_NET any -> $EXTERNAL_NET any (ssl_state:client_hello; {m} msg:\"matching TLS {adj} FQDNs\";{prio} flow:to_server, established; sid:{sid}; rev:1;)")
                    }
                    TargetType::HttpHost => {
                        let t = t.to_ascii_lowercase();
                        let m = if t.starts_with('.') {
                            format!("http.host; dotprefix; content:\"{t}\"; endswith;")
                        } else {
                            format!("http.host; content:\"{t}\"; startswith; endswith;")
                        };
                        format!("{act} http $HOME_NET any -> $EXTERNAL_NET any ({m} msg:\"matching HTTP {adj} FQDNs\";{prio} flow:to_server, established; sid:{sid}; rev:1;)")
                    }
                });
            }
            if self.list_type == ListType::Allowlist {
                let sid = next_sid();
                out.push(match ty {
                    TargetType::TlsSni => format!("drop tls $HOME_NET any -> $EXTERNAL_NET any (msg:\"not matching any TLS allowlisted FQDNs\";{prio} ssl_state:client_hello; flow:to_server, established; sid:{sid}; rev:1;)"),
                    TargetType::HttpHost => format!("drop http $HOME_NET any -> $EXTERNAL_NET any (http.header_names; content:\"|0d 0a|\"; startswith; msg:\"not matching any HTTP allowlisted FQDNs\";{prio} flow:to_server, established; sid:{sid}; rev:1;)"),
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The exact texts of the NFW reference §5.3.
    const DENY_TLS: &str = "drop tls $HOME_NET any -> $EXTERNAL_NET any (ssl_state:client_hello; tls.sni; content:\"evil.com\"; startswith; nocase; endswith; msg:\"matching TLS denylisted FQDNs\"; priority:1; flow:to_server, established; sid:1; rev:1;)";
    const DENY_HTTP: &str = "drop http $HOME_NET any -> $EXTERNAL_NET any (http.host; content:\"evil.com\"; startswith; endswith; msg:\"matching HTTP denylisted FQDNs\"; priority:1; flow:to_server, established; sid:2; rev:1;)";
    const ALLOW_HTTP: [&str; 3] = [
        "pass http $HOME_NET any -> $EXTERNAL_NET any (http.host; dotprefix; content:\".amazon.com\"; endswith; msg:\"matching HTTP allowlisted FQDNs\"; priority:1; flow:to_server, established; sid:1; rev:1;)",
        "pass http $HOME_NET any -> $EXTERNAL_NET any (http.host; content:\"example.com\"; startswith; endswith; msg:\"matching HTTP allowlisted FQDNs\"; priority:1; flow:to_server, established; sid:2; rev:1;)",
        "drop http $HOME_NET any -> $EXTERNAL_NET any (http.header_names; content:\"|0d 0a|\"; startswith; msg:\"not matching any HTTP allowlisted FQDNs\"; priority:1; flow:to_server, established; sid:3; rev:1;)",
    ];
    const ALLOW_TLS_DROP: &str = "drop tls $HOME_NET any -> $EXTERNAL_NET any (msg:\"not matching any TLS allowlisted FQDNs\"; priority:1; ssl_state:client_hello; flow:to_server, established; sid:3; rev:1;)";

    #[test]
    fn denylist_matches_reference() {
        let l = DomainList {
            targets: vec!["evil.com".into()],
            target_types: vec![TargetType::HttpHost, TargetType::TlsSni],
            list_type: ListType::Denylist,
        };
        assert_eq!(l.generate(RuleOrder::Action), vec![DENY_TLS, DENY_HTTP]);
    }

    #[test]
    fn allowlist_matches_reference() {
        let l = DomainList {
            targets: vec![".amazon.com".into(), "Example.COM".into()],
            target_types: vec![TargetType::HttpHost],
            list_type: ListType::Allowlist,
        };
        assert_eq!(l.generate(RuleOrder::Action), ALLOW_HTTP);
        let tls = DomainList {
            target_types: vec![TargetType::TlsSni],
            ..l
        };
        let got = tls.generate(RuleOrder::Action);
        assert_eq!(got.len(), 3);
        assert_eq!(got[2], ALLOW_TLS_DROP);
        assert!(got[0].contains("tls.sni; dotprefix; content:\".amazon.com\"; nocase; endswith;"));
        // TLS keeps the case as written: the match is nocase anyway.
        assert!(got[1].contains("content:\"Example.COM\"; startswith; nocase; endswith;"));
    }

    #[test]
    fn strict_order_drops_priority() {
        let l = DomainList {
            targets: vec!["evil.com".into()],
            target_types: vec![TargetType::TlsSni, TargetType::HttpHost],
            list_type: ListType::Rejectlist,
        };
        let got = l.generate(RuleOrder::Strict);
        assert!(got.iter().all(|r| !r.contains("priority")));
        assert!(got[0].starts_with("reject tls "));
        assert!(got[1].contains("msg:\"matching HTTP rejectlisted FQDNs\"; flow:"));
    }

    #[test]
    fn targets_are_checked() {
        assert!(check_target(".example.com").is_ok());
        assert!(check_target("api.github.com").is_ok());
        let e = check_target("*.example.com").unwrap_err();
        assert_eq!(
            e.hint.as_deref(),
            Some("write '.example.com' to match example.com and all its subdomains")
        );
        assert!(check_target("ex\"ample.com").is_err());
        assert!(check_target("a..b").is_err());
        assert!(check_target("").is_err());
    }
}
