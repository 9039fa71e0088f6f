//! `logs top`: the count-by report over sekisho's own logs, streaming (one line at a time,
//! one counter per distinct value, no database).
//!
//! It reads EVE records (`{"event_type":"tls","tls":{"sni":...}}`) and NFW envelopes
//! (`{"firewall_name":...,"event":{"event_type":"alert","tls":{"sni":...}}}`) alike: a field
//! is looked up in the record, then inside its `event` object, and a leading `event.` (the
//! NFW form the CloudWatch query uses: `event.tls.sni`) is dropped when the record has no
//! `event`. Arrays on the path are walked, each element counting once (`dns.queries.rrname`).
//!
//! Which records count: a field of a protocol (`tls.*`, `http.*`, `dns.*`) is counted in that
//! protocol's own records when the input has any (EVE's `tls` record: one per session; the
//! alerts carrying the same `tls` object would count a session twice), otherwise in every
//! record carrying it (NFW alert logs, which have no `tls` records). A `--where` on
//! `event_type` chooses the records itself.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;

/// Short names for the fields people count, with the path they stand for.
pub const ALIASES: &[(&str, &str, &str)] = &[
    ("sni", "tls.sni", "TLS server name (ClientHello SNI)"),
    ("host", "http.hostname", "HTTP Host"),
    (
        "dns.rrname",
        "dns.queries.rrname",
        "DNS question name (requests only, so a lookup counts once)",
    ),
    ("dns.query", "dns.queries.rrname", "same as dns.rrname"),
];

/// One `--where` condition: `PATH=VALUE` or `PATH!=VALUE` (the value compared as text; a
/// missing field equals nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cond {
    path: Vec<String>,
    value: String,
    negated: bool,
}

impl Cond {
    /// Parses `PATH=VALUE` / `PATH!=VALUE`; `Err` says what was expected.
    pub fn parse(text: &str) -> Result<Cond, String> {
        let (path, value, negated) = if let Some((p, v)) = text.split_once("!=") {
            (p, v, true)
        } else if let Some((p, v)) = text.split_once('=') {
            (p, v, false)
        } else {
            return Err(format!(
                "--where '{text}': expected FIELD=VALUE or FIELD!=VALUE (e.g. event_type=alert, alert.action=blocked)"
            ));
        };
        let path = path.trim();
        if path.is_empty() {
            return Err(format!("--where '{text}': the field name is empty"));
        }
        Ok(Cond {
            path: split(path),
            value: value.trim().to_string(),
            negated,
        })
    }

    fn holds(&self, rec: &Value) -> bool {
        let mut found = false;
        lookup(rec, &self.path, &mut |v| {
            found |= text(v).as_deref() == Some(self.value.as_str())
        });
        found != self.negated
    }

    fn on_event_type(&self) -> bool {
        self.path.last().is_some_and(|p| p == "event_type")
    }
}

fn split(path: &str) -> Vec<String> {
    path.split('.').map(str::to_string).collect()
}

/// A value as the report prints it: strings as they are, numbers and booleans as JSON.
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(_) | Value::Bool(_) => Some(v.to_string()),
        _ => None,
    }
}

/// Calls `f` with every value at `path` in `rec` (arrays walked), trying the record itself,
/// then its NFW `event` object, and `event.X` as `X` on an EVE record.
fn lookup(rec: &Value, path: &[String], f: &mut dyn FnMut(&Value)) {
    let mut n = 0;
    walk(rec, path, &mut |v| {
        n += 1;
        f(v)
    });
    if n > 0 {
        return;
    }
    if let Some(ev) = rec.get("event").filter(|e| e.is_object()) {
        walk(ev, path, f);
    } else if path.first().is_some_and(|p| p == "event") {
        walk(rec, &path[1..], f);
    }
}

fn walk(v: &Value, path: &[String], f: &mut dyn FnMut(&Value)) {
    match v {
        Value::Array(items) => {
            for i in items {
                walk(i, path, f);
            }
        }
        _ => match path.split_first() {
            None => f(v),
            Some((k, rest)) => {
                if let Some(next) = v.get(k.as_str()) {
                    walk(next, rest, f);
                }
            }
        },
    }
}

/// The record's event type (EVE: `event_type`; NFW: `event.event_type`).
fn event_type(rec: &Value) -> Option<&str> {
    rec.get("event_type")
        .or_else(|| rec.get("event").and_then(|e| e.get("event_type")))
        .and_then(Value::as_str)
}

/// The counting state: feed records, then [`Top::report`].
#[derive(Debug)]
pub struct Top {
    field: String,
    path: Vec<String>,
    /// The protocol whose own records count (`tls` for `tls.sni`), if the field names one.
    own_type: Option<String>,
    /// Only DNS requests count for the question-name alias.
    requests_only: bool,
    conds: Vec<Cond>,
    records: u64,
    own: Counts,
    any: Counts,
}

#[derive(Debug, Default)]
struct Counts {
    records: u64,
    values: HashMap<String, u64>,
}

/// One row of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    /// The field's value.
    pub value: String,
    /// How many times it was seen (NFW's `access_count`).
    pub count: u64,
}

/// The report: the top values, most frequent first (ties by value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The field counted, as its full path.
    pub field: String,
    /// Which records were counted: `"tls records"` (the protocol's own) or `"records"` (all).
    pub counted: String,
    /// Records read (JSON lines).
    pub records: u64,
    /// Records that carried the field and passed the conditions.
    pub matched: u64,
    /// Distinct values.
    pub distinct: u64,
    /// The top rows.
    pub top: Vec<Row>,
}

impl Top {
    /// Counting `field` (a path or an alias from [`ALIASES`]) in records satisfying every
    /// condition.
    pub fn new(field: &str, conds: Vec<Cond>) -> Top {
        let full = ALIASES
            .iter()
            .find(|(a, _, _)| *a == field)
            .map_or(field, |(_, p, _)| p);
        let bare = full.strip_prefix("event.").unwrap_or(full);
        let proto = bare.split('.').next().unwrap_or_default();
        let own_type = ["tls", "http", "dns", "smtp", "ssh"]
            .contains(&proto)
            .then(|| proto.to_string());
        Top {
            field: full.to_string(),
            path: split(full),
            // The short names count lookups; the full path counts every record's questions.
            requests_only: field == "dns.rrname" || field == "dns.query",
            own_type,
            conds,
            records: 0,
            own: Counts::default(),
            any: Counts::default(),
        }
    }

    /// Counts one record (a parsed JSON line).
    pub fn add(&mut self, rec: &Value) {
        self.records += 1;
        if !self.conds.iter().all(|c| c.holds(rec)) {
            return;
        }
        if self.requests_only {
            let t = rec
                .get("dns")
                .or_else(|| rec.get("event").and_then(|e| e.get("dns")))
                .and_then(|d| d.get("type"))
                .and_then(Value::as_str);
            if t.is_some_and(|t| t != "request" && t != "query") {
                return;
            }
        }
        let mut vals = Vec::new();
        lookup(rec, &self.path, &mut |v| {
            if let Some(t) = text(v) {
                vals.push(t)
            }
        });
        if vals.is_empty() {
            return;
        }
        let own = self.own_type.is_some() && event_type(rec) == self.own_type.as_deref();
        for c in if own {
            vec![&mut self.own, &mut self.any]
        } else {
            vec![&mut self.any]
        } {
            c.records += 1;
            for v in &vals {
                *c.values.entry(v.clone()).or_default() += 1;
            }
        }
    }

    /// The `limit` most frequent values.
    pub fn report(&self, limit: usize) -> Report {
        let chosen_by_where = self.conds.iter().any(Cond::on_event_type);
        let (counts, counted) = match &self.own_type {
            Some(t) if !chosen_by_where && self.own.records > 0 => {
                (&self.own, format!("{t} records"))
            }
            _ => (&self.any, "records".to_string()),
        };
        let mut rows: Vec<Row> = counts
            .values
            .iter()
            .map(|(v, n)| Row {
                value: v.clone(),
                count: *n,
            })
            .collect();
        rows.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
        let distinct = rows.len() as u64;
        rows.truncate(limit);
        Report {
            field: self.field.clone(),
            counted,
            records: self.records,
            matched: counts.records,
            distinct,
            top: rows,
        }
    }
}

impl Report {
    /// The terminal table: `access_count` and the field, then a summary line.
    pub fn table(&self) -> String {
        let mut s = format!("{:>12}  {}\n", "access_count", self.field);
        for r in &self.top {
            s.push_str(&format!("{:>12}  {}\n", r.count, r.value));
        }
        s.push_str(&format!(
            "# {} records read, {} {} with {}, {} distinct values\n",
            self.records, self.matched, self.counted, self.field, self.distinct
        ));
        s
    }

    /// CSV: a header (`FIELD,access_count`), then one row per value (quoted as RFC 4180).
    pub fn csv(&self) -> String {
        let q = |s: &str| {
            if s.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s.to_string()
            }
        };
        let mut s = format!("{},access_count\n", q(&self.field));
        for r in &self.top {
            s.push_str(&format!("{},{}\n", q(&r.value), r.count));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn counts_own_records_then_falls_back_to_alerts() {
        let mut t = Top::new("tls.sni", vec![]);
        t.add(&json!({"event_type":"tls","tls":{"sni":"a"}}));
        t.add(&json!({"event_type":"alert","tls":{"sni":"a"}}));
        t.add(&json!({"event_type":"tls","tls":{"sni":"b"}}));
        t.add(&json!({"event_type":"tls","tls":{"sni":"a"}}));
        let r = t.report(10);
        assert_eq!(r.counted, "tls records");
        assert_eq!(
            r.top,
            [
                Row {
                    value: "a".into(),
                    count: 2
                },
                Row {
                    value: "b".into(),
                    count: 1
                }
            ]
        );
        // NFW envelopes of alerts only, asked in the CloudWatch form.
        let mut t = Top::new("event.tls.sni", vec![]);
        for s in ["x", "y", "x"] {
            t.add(&json!({"firewall_name":"f","event":{"event_type":"alert","tls":{"sni":s}}}));
        }
        let r = t.report(1);
        assert_eq!(
            (r.counted.as_str(), r.matched, r.distinct),
            ("records", 3, 2)
        );
        assert_eq!(
            r.top,
            [Row {
                value: "x".into(),
                count: 2
            }]
        );
    }

    #[test]
    fn where_and_arrays() {
        let c = Cond::parse("dns.rcode!=NOERROR").unwrap();
        let mut t = Top::new("dns.rrname", vec![c]);
        t.add(&json!({"event_type":"dns","dns":{"type":"request","queries":[{"rrname":"q"}]}}));
        t.add(&json!({"event_type":"dns","dns":{"type":"response","rcode":"NXDOMAIN","queries":[{"rrname":"q"}]}}));
        assert_eq!(t.report(5).matched, 1, "the response is not a request");
        assert!(Cond::parse("nonsense").is_err());
    }
}
