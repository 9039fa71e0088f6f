//! The driver's counters and their Prometheus text exposition (`--metrics ADDR`).

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::Control;

/// Counters of one run, shared by the workers (relaxed atomics: they are statistics).
#[derive(Debug, Default)]
pub struct Metrics {
    /// Packets that got a verdict.
    pub packets: AtomicU64,
    /// Bytes of those packets (IP packet lengths).
    pub bytes: AtomicU64,
    /// Packets accepted.
    pub accepted: AtomicU64,
    /// Packets dropped (drop rules, flow drops, exception policies, undecodable packets).
    pub dropped: AtomicU64,
    /// Packets dropped by a reject rule (and answered).
    pub rejected: AtomicU64,
    /// Reject answers sent.
    pub transmitted: AtomicU64,
    /// Reject answers that could not be sent.
    pub transmit_errors: AtomicU64,
    /// Alerts logged.
    pub alerts: AtomicU64,
    /// Receive errors survived (ENOBUFS: the socket buffer overflowed).
    pub recv_errors: AtomicU64,
    /// Log write errors.
    pub log_errors: AtomicU64,
    /// Flows handed to the kernel as passed (`--pass-mark`: the packet went back marked).
    pub marked_pass: AtomicU64,
    /// Flows handed to the kernel as dropped (`--drop-mark`).
    pub marked_drop: AtomicU64,
    /// Packets that came back to the queue carrying a decision mark: the iptables/nftables
    /// rules that act on the mark are missing (they got a plain verdict instead).
    pub mark_loops: AtomicU64,
    /// Batch verdicts sent (each answering several accepted packets).
    pub verdict_batches: AtomicU64,
    /// Reloads that took effect.
    pub reloads_ok: AtomicU64,
    /// Reloads refused (the old rules kept running).
    pub reloads_failed: AtomicU64,
    /// 1 when the last reload took effect, 0 when it was refused (1 before any reload).
    last_reload_failed: AtomicU64,
    /// Per queue: (number, flows tracked now).
    flows: Mutex<Vec<(u16, u64)>>,
    /// The queue configuration: fail-open and the kernel queue length.
    config: Mutex<(bool, u32)>,
}

impl Metrics {
    pub(crate) fn reload(&self, ok: bool) {
        if ok {
            self.reloads_ok.fetch_add(1, Ordering::Relaxed);
        } else {
            self.reloads_failed.fetch_add(1, Ordering::Relaxed);
        }
        self.last_reload_failed
            .store(u64::from(!ok), Ordering::Relaxed);
    }

    pub(crate) fn set_queues(&self, queues: &[u16], fail_open: bool, maxlen: u32) {
        if let Ok(mut f) = self.flows.lock() {
            *f = queues.iter().map(|&q| (q, 0)).collect();
        }
        if let Ok(mut c) = self.config.lock() {
            *c = (fail_open, maxlen);
        }
    }

    pub(crate) fn set_flows(&self, queue: u16, n: u64) {
        if let Ok(mut f) = self.flows.lock() {
            if let Some(e) = f.iter_mut().find(|e| e.0 == queue) {
                e.1 = n;
            }
        }
    }

    /// The counters in Prometheus' text exposition format (version 0.0.4). The kernel's own
    /// per-queue counters (`/proc/net/netfilter/nfnetlink_queue`) are read at the time.
    pub fn render(&self) -> String {
        let mut o = String::new();
        self.render_counters(&mut o);
        self.render_queues(&mut o);
        o
    }

    /// The run's own counters and gauges (packets, verdicts, reloads, marks), one family each.
    fn render_counters(&self, o: &mut String) {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut one = |name: &str, kind: &str, help: &str, v: u64| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        };
        one(
            "sekisho_packets_total",
            "counter",
            "Packets that got a verdict.",
            get(&self.packets),
        );
        one(
            "sekisho_bytes_total",
            "counter",
            "Bytes of those packets.",
            get(&self.bytes),
        );
        one(
            "sekisho_alerts_total",
            "counter",
            "Alerts logged.",
            get(&self.alerts),
        );
        one(
            "sekisho_transmitted_total",
            "counter",
            "Reject answers sent.",
            get(&self.transmitted),
        );
        one(
            "sekisho_transmit_errors_total",
            "counter",
            "Reject answers that could not be sent.",
            get(&self.transmit_errors),
        );
        one(
            "sekisho_recv_errors_total",
            "counter",
            "Queue receive errors survived (ENOBUFS).",
            get(&self.recv_errors),
        );
        one(
            "sekisho_log_errors_total",
            "counter",
            "Log write errors.",
            get(&self.log_errors),
        );
        one(
            "sekisho_reloads_total",
            "counter",
            "Policy reloads that took effect.",
            get(&self.reloads_ok),
        );
        one(
            "sekisho_reload_failures_total",
            "counter",
            "Policy reloads refused (the old rules kept running).",
            get(&self.reloads_failed),
        );
        one(
            "sekisho_last_reload_success",
            "gauge",
            "1 when the last reload took effect (or none was tried), 0 when it was refused.",
            1 - get(&self.last_reload_failed).min(1),
        );
        one(
            "sekisho_verdict_batches_total",
            "counter",
            "Batch verdicts sent, each answering several accepted packets (--verdict-batch).",
            get(&self.verdict_batches),
        );
        one(
            "sekisho_mark_loops_total",
            "counter",
            "Packets that came back to the queue with a decision mark (the rules acting on --pass-mark/--drop-mark are missing).",
            get(&self.mark_loops),
        );
        let _ = writeln!(o, "# HELP sekisho_flows_marked_total Flows handed to the kernel with a conntrack mark, by decision.\n# TYPE sekisho_flows_marked_total counter");
        for (k, a) in [("pass", &self.marked_pass), ("drop", &self.marked_drop)] {
            let _ = writeln!(
                o,
                "sekisho_flows_marked_total{{decision=\"{k}\"}} {}",
                get(a)
            );
        }
        let _ = writeln!(o, "# HELP sekisho_verdicts_total Verdicts by kind.\n# TYPE sekisho_verdicts_total counter");
        for (k, a) in [
            ("accept", &self.accepted),
            ("drop", &self.dropped),
            ("reject", &self.rejected),
        ] {
            let _ = writeln!(o, "sekisho_verdicts_total{{verdict=\"{k}\"}} {}", get(a));
        }
    }

    /// The per-queue gauges: flows, the queue's configuration, and the kernel's own counters
    /// of the queues this run bound.
    fn render_queues(&self, o: &mut String) {
        let (fail_open, maxlen) = self.config.lock().map(|c| *c).unwrap_or_default();
        let flows = self.flows.lock().map(|f| f.clone()).unwrap_or_default();
        let _ = writeln!(
            o,
            "# HELP sekisho_flows Flows tracked now, per queue.\n# TYPE sekisho_flows gauge"
        );
        for (q, n) in &flows {
            let _ = writeln!(o, "sekisho_flows{{queue=\"{q}\"}} {n}");
        }
        let _ = writeln!(o, "# HELP sekisho_queue_fail_open 1 when a full queue accepts packets (fail-open), 0 when it drops them (fail-closed).\n# TYPE sekisho_queue_fail_open gauge");
        for (q, _) in &flows {
            let _ = writeln!(
                o,
                "sekisho_queue_fail_open{{queue=\"{q}\"}} {}",
                u8::from(fail_open)
            );
        }
        let _ = writeln!(o, "# HELP sekisho_queue_maxlen Kernel queue length per queue.\n# TYPE sekisho_queue_maxlen gauge");
        for (q, _) in &flows {
            let _ = writeln!(o, "sekisho_queue_maxlen{{queue=\"{q}\"}} {maxlen}");
        }
        let kernel =
            std::fs::read_to_string("/proc/net/netfilter/nfnetlink_queue").unwrap_or_default();
        let rows = kernel_queue_rows(&kernel);
        let _ = writeln!(o, "# HELP sekisho_queue_waiting Packets waiting in the kernel queue.\n# TYPE sekisho_queue_waiting gauge");
        for r in rows.iter().filter(|r| flows.iter().any(|f| f.0 == r.queue)) {
            let _ = writeln!(
                o,
                "sekisho_queue_waiting{{queue=\"{}\"}} {}",
                r.queue, r.waiting
            );
        }
        let _ = writeln!(o, "# HELP sekisho_queue_packets_total Packets the kernel queued, per queue.\n# TYPE sekisho_queue_packets_total counter");
        for r in rows.iter().filter(|r| flows.iter().any(|f| f.0 == r.queue)) {
            let _ = writeln!(
                o,
                "sekisho_queue_packets_total{{queue=\"{}\"}} {}",
                r.queue, r.queued
            );
        }
        let _ = writeln!(o, "# HELP sekisho_queue_dropped_total Packets the kernel dropped because the queue was full (fail-closed).\n# TYPE sekisho_queue_dropped_total counter");
        for r in rows.iter().filter(|r| flows.iter().any(|f| f.0 == r.queue)) {
            let _ = writeln!(
                o,
                "sekisho_queue_dropped_total{{queue=\"{}\"}} {}",
                r.queue, r.dropped
            );
        }
        let _ = writeln!(o, "# HELP sekisho_queue_user_dropped_total Packets the kernel could not hand to sekisho (netlink buffer full).\n# TYPE sekisho_queue_user_dropped_total counter");
        for r in rows.iter().filter(|r| flows.iter().any(|f| f.0 == r.queue)) {
            let _ = writeln!(
                o,
                "sekisho_queue_user_dropped_total{{queue=\"{}\"}} {}",
                r.queue, r.user_dropped
            );
        }
    }
}

/// Per rate-limit table: `sekisho_ratelimit_entries{table}`, `..._lookups_total`,
/// `..._over_total` (over the rate) and
/// `..._table_full_total`.
pub(crate) fn render_rate_limits(o: &mut String, tables: &[sekisho_sensor::TableSummary]) {
    type Get = fn(&sekisho_sensor::TableSummary) -> u64;
    let series: [(&str, &str, &str, Get); 4] = [
        (
            "sekisho_ratelimit_entries",
            "gauge",
            "Keys held now, per rate-limit table.",
            |t| t.entries as u64,
        ),
        (
            "sekisho_ratelimit_lookups_total",
            "counter",
            "Packets (or app events) that looked a key up, per table.",
            |t| t.stats.lookups,
        ),
        (
            "sekisho_ratelimit_over_total",
            "counter",
            "Lookups over the rate, per table (new keys a full table refused are counted apart).",
            |t| t.stats.over,
        ),
        (
            "sekisho_ratelimit_table_full_total",
            "counter",
            "New keys refused because the table held htable_max entries, per table.",
            |t| t.stats.table_full,
        ),
    ];
    for (name, kind, help, get) in series {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for t in tables {
            let _ = writeln!(o, "{name}{{table=\"{}\"}} {}", t.name, get(t));
        }
    }
}

/// One row of `/proc/net/netfilter/nfnetlink_queue`.
#[derive(Debug, PartialEq, Eq)]
struct KernelQueue {
    queue: u16,
    waiting: u64,
    dropped: u64,
    user_dropped: u64,
    /// Packet ids handed out so far (the packets queued since the queue was bound).
    queued: u64,
}

/// Parses the kernel's queue table: `queue portid waiting copy_mode copy_range
/// queue_dropped user_dropped id_sequence 1` per line; malformed lines are skipped.
fn kernel_queue_rows(text: &str) -> Vec<KernelQueue> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some(KernelQueue {
                queue: f.first()?.parse().ok()?,
                waiting: f.get(2)?.parse().ok()?,
                dropped: f.get(5)?.parse().ok()?,
                user_dropped: f.get(6)?.parse().ok()?,
                queued: f.get(7)?.parse().ok()?,
            })
        })
        .collect()
}

/// Serves `control`'s metrics over HTTP on `addr` (every request gets them) from a thread
/// of its own. Returns the bound address (port 0 picks one).
pub fn serve_metrics(addr: SocketAddr, control: Arc<Control>) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let local = listener.local_addr()?;
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(2)));
                // Read the request head (its content does not matter), then answer.
                let mut buf = [0u8; 2048];
                let _ = conn.read(&mut buf);
                let body = control.render_metrics();
                let _ = write!(
                    conn,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        })?;
    Ok(local)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_table_and_exposition() {
        let rows =
            kernel_queue_rows("    0  12345     3 2 65535    7     1      100  1\ngarbage\n");
        assert_eq!(
            rows,
            vec![KernelQueue {
                queue: 0,
                waiting: 3,
                dropped: 7,
                user_dropped: 1,
                queued: 100
            }]
        );
        let m = Metrics::default();
        m.set_queues(&[0, 1], true, 64);
        m.reload(false);
        let text = m.render();
        assert!(text.contains("sekisho_reload_failures_total 1"), "{text}");
        assert!(text.contains("sekisho_last_reload_success 0"), "{text}");
        assert!(
            text.contains("sekisho_queue_fail_open{queue=\"1\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("sekisho_verdicts_total{verdict=\"drop\"} 0"),
            "{text}"
        );
    }
}
