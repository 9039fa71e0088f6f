//! EVE `ratelimit` records: a key going over a rate limit, a full table, the end-of-input
//! summary per table (`docs/rate-limits.md`). EVE only: the NFW envelope has no such log.

use sekisho_engine::records::{RateLimitEvent, RateLimitRecord};
use serde::Serialize;

use crate::format_timestamp;

#[derive(Serialize)]
struct RateLimitObj<'a> {
    event: &'static str,
    table: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    key: &'a str,
    rate: &'a str,
    burst: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    tokens: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    credit: Option<u64>,
    cost: u64,
    action: &'static str,
    count: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    blocked: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    blocked_until: Option<String>,
    #[serde(flatten)]
    counters: serde_json::Map<String, serde_json::Value>,
}

#[derive(Serialize)]
struct PacketEvent<'a> {
    #[serde(flatten)]
    head: crate::RecordHead<'static>,
    ratelimit: RateLimitObj<'a>,
}

#[derive(Serialize)]
struct SummaryEvent<'a> {
    timestamp: String,
    event_type: &'static str,
    ratelimit: RateLimitObj<'a>,
}

impl crate::LogSink {
    /// Writes a `ratelimit` record (EVE only).
    pub fn ratelimit_record(&mut self, r: &RateLimitRecord) -> std::io::Result<()> {
        if self.config.format != crate::LogFormat::Eve {
            return Ok(());
        }
        let summary = r.event == RateLimitEvent::Summary;
        let obj = RateLimitObj {
            event: match r.event {
                RateLimitEvent::OverLimit => "over_limit",
                RateLimitEvent::TableFull => "table_full",
                RateLimitEvent::Summary => "summary",
                RateLimitEvent::Blocked => "blocked",
            },
            table: &r.table,
            key: &r.key,
            rate: &r.rate,
            burst: r.burst,
            tokens: (!summary)
                .then(|| (r.credit as f64 / r.cost.max(1) as f64 * 100.0).round() / 100.0),
            credit: (!summary).then_some(r.credit),
            cost: r.cost,
            action: r.action,
            count: r.count,
            blocked: (!summary).then_some(r.blocked),
            blocked_until: r.blocked_until.map(format_timestamp),
            counters: r
                .counters
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).into()))
                .collect(),
        };
        match &r.head {
            Some(h) => crate::write_line(
                &mut self.line,
                self.eve.as_mut(),
                &PacketEvent {
                    head: crate::detect::head(h, "ratelimit", false),
                    ratelimit: obj,
                },
            ),
            None => crate::write_line(
                &mut self.line,
                self.eve.as_mut(),
                &SummaryEvent {
                    timestamp: format_timestamp(r.ts),
                    event_type: "ratelimit",
                    ratelimit: obj,
                },
            ),
        }
    }
}
