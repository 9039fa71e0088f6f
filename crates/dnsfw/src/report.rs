//! The alert-first rollout report: what a query log says would have been blocked, by which
//! rule, how often, and which names no list covers (the allow-list candidates).
//!
//! "Not covered" means no rule matched the name, or only a catch-all list (one holding `*`)
//! did: exactly the names a walled garden in alert mode reports as would-be-blocked without
//! anyone having listed them. The sekisho extension fields of the log (`sekisho_rule`,
//! `sekisho_catch_all`, `sekisho_would_block`) make this exact; lines from AWS's own logs lack
//! them, so there every line without a firewall match counts as not covered.

use std::collections::HashMap;
use std::io::BufRead;

use serde::Serialize;
use serde_json::Value;

/// One row: a name (and rule) with its count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    /// Query name with trailing dot, lower-cased.
    pub name: String,
    /// Rule name (or domain list id when the log has no rule name); empty for uncovered names.
    pub rule: String,
    /// Rule group id; empty for uncovered names.
    pub group: String,
    /// Queries counted.
    pub count: u64,
}

/// The report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Lines read.
    pub lines: u64,
    /// Lines that were not JSON objects with a `query_name` (skipped).
    pub skipped: u64,
    /// Names blocked, or alerted by a BLOCK rule running in alert mode.
    pub would_block: Vec<Row>,
    /// Names matched by ALERT rules.
    pub alerted: Vec<Row>,
    /// Names no list covers, by count: allow-list candidates.
    pub not_covered: Vec<Row>,
}

type Key = (String, String, String);

fn rows(map: HashMap<Key, u64>) -> Vec<Row> {
    let mut v: Vec<Row> = map
        .into_iter()
        .map(|((name, rule, group), count)| Row {
            name,
            rule,
            group,
            count,
        })
        .collect();
    v.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.name.cmp(&b.name))
            .then_with(|| a.rule.cmp(&b.rule))
    });
    v
}

/// Summarises query-log lines.
pub fn summarise(input: impl BufRead) -> std::io::Result<Report> {
    let mut r = Report::default();
    let mut block: HashMap<Key, u64> = HashMap::new();
    let mut alert: HashMap<Key, u64> = HashMap::new();
    let mut uncovered: HashMap<Key, u64> = HashMap::new();
    let mut input = input;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if input.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        // A line that is not UTF-8 (a torn write, a binary file) is skipped, not fatal.
        let line = match std::str::from_utf8(&buf) {
            Ok(l) => l,
            Err(_) => {
                r.lines += 1;
                r.skipped += 1;
                continue;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        r.lines += 1;
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            r.skipped += 1;
            continue;
        };
        let Some(name) = v.get("query_name").and_then(Value::as_str) else {
            r.skipped += 1;
            continue;
        };
        let name = name.to_ascii_lowercase();
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let b = |k: &str| v.get(k).and_then(Value::as_bool).unwrap_or(false);
        let action = s("firewall_rule_action");
        let rule = s("sekisho_rule")
            .or_else(|| s("firewall_domain_list_id"))
            .unwrap_or_default();
        let group = s("firewall_rule_group_id").unwrap_or_default();
        let key = (name.clone(), rule.clone(), group);
        match action.as_deref() {
            Some("BLOCK") => *block.entry(key).or_default() += 1,
            Some("ALERT") if b("sekisho_would_block") => *block.entry(key).or_default() += 1,
            Some("ALERT") => *alert.entry(key).or_default() += 1,
            _ => {}
        }
        let matched = v.get("sekisho_rule").is_some() || action.is_some();
        if !matched || b("sekisho_catch_all") {
            *uncovered
                .entry((name, String::new(), String::new()))
                .or_default() += 1;
        }
    }
    r.would_block = rows(block);
    r.alerted = rows(alert);
    r.not_covered = rows(uncovered);
    Ok(r)
}

impl Report {
    /// Human-readable text, at most `top` rows per section (0 = all).
    pub fn render(&self, top: usize) -> String {
        let mut out = format!(
            "query log: {} lines ({} skipped)\n",
            self.lines, self.skipped
        );
        let section = |out: &mut String, title: &str, rows: &[Row], with_rule: bool| {
            let total: u64 = rows.iter().map(|r| r.count).sum();
            out.push_str(&format!(
                "\n{title}: {} names, {total} queries\n",
                rows.len()
            ));
            let n = if top == 0 {
                rows.len()
            } else {
                top.min(rows.len())
            };
            for r in &rows[..n] {
                if with_rule {
                    out.push_str(&format!(
                        "  {:>8}  {}  (rule {}, group {})\n",
                        r.count, r.name, r.rule, r.group
                    ));
                } else {
                    out.push_str(&format!("  {:>8}  {}\n", r.count, r.name));
                }
            }
            if n < rows.len() {
                out.push_str(&format!("  ... {} more\n", rows.len() - n));
            }
        };
        section(&mut out, "would be blocked", &self.would_block, true);
        section(&mut out, "alerted", &self.alerted, true);
        section(
            &mut out,
            "not covered by any list (allow-list candidates)",
            &self.not_covered,
            false,
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_utf8_line_is_skipped_not_fatal() {
        let mut log = b"{\"query_name\":\"a.example.\"}\n".to_vec();
        log.extend_from_slice(b"{\"query_name\":\"\xff\xfe.example.\"}\n");
        log.extend_from_slice(b"{\"query_name\":\"b.example.\"}\n");
        let r = summarise(&log[..]).unwrap();
        assert_eq!((r.lines, r.skipped), (3, 1));
        assert_eq!(r.not_covered.len(), 2);
    }

    #[test]
    fn counts_and_sorts() {
        let log = r#"{"query_name":"yahoo.co.jp.","firewall_rule_action":"ALERT","firewall_rule_group_id":"egress","firewall_domain_list_id":"everything","sekisho_rule":"block-rest","sekisho_catch_all":true,"sekisho_would_block":true}
{"query_name":"Yahoo.co.jp.","firewall_rule_action":"ALERT","firewall_rule_group_id":"egress","firewall_domain_list_id":"everything","sekisho_rule":"block-rest","sekisho_catch_all":true,"sekisho_would_block":true}
{"query_name":"x.bad.example.","firewall_rule_action":"BLOCK","firewall_rule_group_id":"egress","firewall_domain_list_id":"bad","sekisho_rule":"block-bad"}
{"query_name":"mx.bad.example.","firewall_rule_action":"ALERT","firewall_rule_group_id":"egress","firewall_domain_list_id":"bad","sekisho_rule":"mx-only"}
{"query_name":"gmail.com.","sekisho_rule":"allow-google"}
{"query_name":"unlisted.example."}
not json
"#;
        let r = summarise(log.as_bytes()).unwrap();
        assert_eq!((r.lines, r.skipped), (7, 1));
        assert_eq!(
            r.would_block[0],
            Row {
                name: "yahoo.co.jp.".into(),
                rule: "block-rest".into(),
                group: "egress".into(),
                count: 2
            }
        );
        assert_eq!(r.would_block[1].name, "x.bad.example.");
        assert_eq!(r.alerted.len(), 1);
        assert_eq!(r.alerted[0].rule, "mx-only");
        let nc: Vec<(&str, u64)> = r
            .not_covered
            .iter()
            .map(|r| (r.name.as_str(), r.count))
            .collect();
        assert_eq!(nc, [("yahoo.co.jp.", 2), ("unlisted.example.", 1)]);
        let text = r.render(10);
        assert!(
            text.contains("would be blocked: 2 names, 3 queries"),
            "{text}"
        );
    }
}
