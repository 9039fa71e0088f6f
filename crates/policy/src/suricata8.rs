//! Suricata 8.0 syntax that AWS Network Firewall's Suricata 7.0 does not have, with the hint
//! `sekisho check` gives under `engine_profile: aws-nfw` (NFW reference §6, §9).
//!
//! Only keywords known to be new in 8.0 are listed (the SMTP envelope buffers, the `email.*`
//! MIME header buffers and the DNS resource-record name buffers); NFW would reject a rule
//! group using them, so they are errors. Other keywords NFW lacks stay warnings.

use sekisho_rules::{ActionKind, ActionScope};

/// NFW runs the whole rule group or none of it: explain the way out first.
const PROFILE: &str = "use engine_profile: suricata-8";

/// The hint for a keyword that exists only since Suricata 8.0, or `None` if `name` is not
/// such a keyword.
pub(crate) fn only(name: &str) -> Option<String> {
    let raw = |buffer: &str, content: &str| {
        format!(
            "Network Firewall runs Suricata 7.0, which has no {buffer} buffer; {PROFILE}, or (weaker) match the raw stream: content:\"{content}\"; nocase; (raw content also sees pipelined commands, and nothing once a pass rule has passed the flow)"
        )
    };
    Some(match name {
        "smtp.helo" => raw("smtp.helo", "EHLO "),
        "smtp.mail_from" => raw("smtp.mail_from", "MAIL FROM:<"),
        "smtp.rcpt_to" => raw("smtp.rcpt_to", "RCPT TO:<"),
        "email.from" | "email.to" | "email.cc" | "email.subject" | "email.date"
        | "email.message_id" | "email.x_mailer" | "email.url" | "email.received" => format!(
            "Network Firewall runs Suricata 7.0, which has no {name} buffer (MIME header buffers are Suricata 8.0); {PROFILE}"
        ),
        "dns.queries.rrname" => format!(
            "Network Firewall runs Suricata 7.0, which has no {name} buffer; {PROFILE}, or use dns.query (query names of requests only)"
        ),
        "dns.answers.rrname"
        | "dns.authorities.rrname"
        | "dns.additionals.rrname"
        | "dns.response.rrname" => format!(
            "Network Firewall runs Suricata 7.0, which has no {name} buffer (DNS response names are Suricata 8.0); {PROFILE}"
        ),
        _ => return None,
    })
}

/// The hint for an action scope (`drop:flow`, `pass:packet`...) under `aws-nfw`.
pub(crate) fn scope_hint(kind: ActionKind, scope: ActionScope) -> String {
    let action = kind.as_str();
    let what = match (kind, scope) {
        (ActionKind::Pass, ActionScope::Packet) => {
            return "Suricata 7.0 decides the scope from the rule type: a pass on an app-layer rule passes the whole flow, so without ':packet' this rule would become a flow-wide pass; use engine_profile: suricata-8".into();
        }
        (_, ActionScope::Flow) => {
            "Suricata 7.0 decides the scope from the rule type: a plain action on an app-layer or stream rule already covers the rest of the flow"
        }
        _ => "Suricata 7.0 decides the scope from the rule type",
    };
    format!("{what}; write '{action}' without the scope, or {PROFILE}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_buffers_are_eight_only_and_point_at_the_raw_command() {
        let h = only("smtp.rcpt_to").unwrap_or_default();
        assert!(h.contains("no smtp.rcpt_to buffer"), "{h}");
        assert!(h.contains("content:\"RCPT TO:<\""), "{h}");
        assert!(only("dns.answers.rrname").is_some());
        // Suricata 7.0 has these: not errors.
        for k in ["dns.query", "tls.sni", "http.host", "file.data", "dataset"] {
            assert!(only(k).is_none(), "{k}");
        }
    }
}
