//! Route 53 Resolver query log lines (reference `aws-dns-firewall.md` §8, Athena table in
//! `aws-log-tables.md` §3), written off the answering path.
//!
//! Answering tasks hand a [`LogEvent`] to a bounded channel with `try_send`; a writer thread
//! decodes and formats them. An event keeps only what the line prints: the query's header and
//! question, the answer's header, question and answer section ([`LogEvent::new`] cuts the
//! rest: authority, additional, OPT) and the decision. The queue is capped twice: `queue`
//! entries and `queue_bytes` bytes (the sum of the kept bytes plus a fixed per-entry overhead).
//! When either is full the new entry is **dropped and counted** ([`QueryLog::dropped`]) rather
//! than delaying an answer or growing memory.
//!
//! The file is opened with `O_NOFOLLOW` (a symbolic link at `path` is refused: ELOOP) and
//! created with mode 0640. It rotates by size (`path` → `path.1` → … → `path.N`); when a
//! rotation cannot reopen the file (e.g. the directory is not writable after dropping root),
//! the writer keeps appending to the open file and says so once on stderr. Lines are flushed
//! whenever the queue runs empty and at shutdown.
//!
//! Besides the AWS fields, lines carry sekisho extensions that the Athena table ignores:
//! `sekisho_rule` (name of the rule that matched, ALLOW included), `sekisho_catch_all` (the
//! matching list holds `*`), `sekisho_would_block` (a BLOCK demoted to ALERT by alert mode),
//! `sekisho_chain_name` (the CNAME/DNAME chain member that decided, when not the query name).

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hickory_proto::op::Message;
use hickory_proto::rr::{DNSClass, RData, RecordType};
use serde_json::Value;

use crate::config::QueryLogConfig;
use crate::policy::{Decision, Policy, Verdict};

/// The `version` field, as AWS's samples print it.
pub const VERSION: &str = "1.100000";

/// Transport a query arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
}

/// One answered query, as handed to the writer.
#[derive(Debug, Clone)]
pub struct LogEvent {
    /// When the query was answered.
    pub time: SystemTime,
    /// Client address.
    pub client: SocketAddr,
    /// Transport.
    pub transport: Transport,
    /// The query's header and question (for the question when `response` cannot be decoded).
    pub query: Vec<u8>,
    /// The response's header, question and answer section.
    pub response: Vec<u8>,
    /// The decision and the policy it refers to.
    pub decision: Option<(Arc<Policy>, Decision, Option<String>)>,
}

/// Fixed cost of one queued entry besides its bytes, for `queue_bytes` (the event, the channel
/// slot, the decision).
pub const ENTRY_OVERHEAD: usize = 160;

impl LogEvent {
    /// An event keeping only what the log line prints of `query` and `response` (see the
    /// module docs).
    pub fn new(
        time: SystemTime,
        client: SocketAddr,
        transport: Transport,
        query: &[u8],
        response: &[u8],
        decision: Option<(Arc<Policy>, Decision, Option<String>)>,
    ) -> LogEvent {
        let q = match crate::wire::question_end(query) {
            Some(end) => trim_counts(&query[..end], 1, 0),
            // Malformed: the header is all a line can use.
            None => query[..query.len().min(crate::wire::HEADER_LEN)].to_vec(),
        };
        LogEvent {
            time,
            client,
            transport,
            query: q,
            response: crate::wire::answer_part(response),
            decision,
        }
    }

    /// Bytes this entry holds, as counted against `queue_bytes`.
    pub fn cost(&self) -> usize {
        self.query.len() + self.response.len() + ENTRY_OVERHEAD
    }
}

/// `msg` (header + sections up to some point) with QDCOUNT/ANCOUNT set and NS/AR counts zeroed.
fn trim_counts(msg: &[u8], qd: u16, an: u16) -> Vec<u8> {
    let mut v = msg.to_vec();
    if v.len() >= crate::wire::HEADER_LEN {
        v[4..6].copy_from_slice(&qd.to_be_bytes());
        v[6..8].copy_from_slice(&an.to_be_bytes());
        v[8..12].fill(0);
    }
    v
}

/// Identity fields stamped on every line.
#[derive(Debug, Clone)]
pub struct Identity {
    /// `account_id`.
    pub account_id: String,
    /// `region`.
    pub region: String,
    /// `vpc_id`.
    pub vpc_id: String,
    /// `srcids.resolver_endpoint`.
    pub resolver_endpoint: String,
}

/// Formats a UNIX time as ISO 8601 UTC with second precision (`2021-02-04T17:51:55Z`).
pub fn iso8601(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil-from-days (proleptic Gregorian), after H. Hinnant's public-domain algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// RCODE mnemonic as the query log prints it.
pub fn rcode_name(code: u16) -> String {
    match code {
        0 => "NOERROR".into(),
        1 => "FORMERR".into(),
        2 => "SERVFAIL".into(),
        3 => "NXDOMAIN".into(),
        4 => "NOTIMP".into(),
        5 => "REFUSED".into(),
        6 => "YXDOMAIN".into(),
        7 => "YXRRSET".into(),
        8 => "NXRRSET".into(),
        9 => "NOTAUTH".into(),
        10 => "NOTZONE".into(),
        16 => "BADVERS".into(),
        n => format!("RCODE{n}"),
    }
}

fn type_name(t: RecordType) -> String {
    match t {
        RecordType::Unknown(n) => format!("TYPE{n}"),
        t => t.to_string(),
    }
}

fn class_name(c: DNSClass) -> String {
    match c {
        DNSClass::IN => "IN".into(),
        DNSClass::CH => "CH".into(),
        DNSClass::HS => "HS".into(),
        DNSClass::NONE => "NONE".into(),
        DNSClass::ANY => "ANY".into(),
        other => format!("CLASS{}", u16::from(other)),
    }
}

fn rdata_text(d: &RData) -> String {
    match d {
        RData::A(a) => a.0.to_string(),
        RData::AAAA(a) => a.0.to_string(),
        RData::CNAME(c) => c.0.to_ascii(),
        RData::NS(n) => n.0.to_ascii(),
        RData::PTR(p) => p.0.to_ascii(),
        RData::MX(mx) => format!("{} {}", mx.preference, mx.exchange.to_ascii()),
        other => other.to_string(),
    }
}

/// One query-log line for `ev` as a JSON tree (for tests and tools; the writer serializes
/// [`Line`] directly).
pub fn format_line(ev: &LogEvent, id: &Identity) -> Value {
    serde_json::to_value(line(ev, id)).unwrap_or(Value::Null)
}

/// One query-log line: the fields in the order AWS writes them, then sekisho's own.
/// Serialized straight to the file by the writer (no intermediate JSON tree).
#[derive(serde::Serialize)]
pub struct Line<'a> {
    version: &'static str,
    account_id: &'a str,
    region: &'a str,
    vpc_id: &'a str,
    query_timestamp: String,
    query_name: String,
    query_type: String,
    query_class: String,
    rcode: String,
    answers: Vec<LineAnswer>,
    srcaddr: String,
    /// An int, as the Athena table declares `srcport` (AWS's sample prints a string; the
    /// OpenX SerDe reads either into an int column, but a string would break a strict reader).
    srcport: u16,
    transport: &'static str,
    srcids: SrcIds<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    firewall_rule_group_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    firewall_rule_action: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    firewall_domain_list_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sekisho_rule: Option<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    sekisho_catch_all: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    sekisho_would_block: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    sekisho_chain_name: Option<&'a str>,
}

/// One answer record of a [`Line`], spelled as AWS does.
#[derive(serde::Serialize)]
struct LineAnswer {
    #[serde(rename = "Rdata")]
    rdata: String,
    #[serde(rename = "Type")]
    rtype: String,
    #[serde(rename = "Class")]
    class: String,
}

/// The `srcids` object of a [`Line`].
#[derive(serde::Serialize)]
struct SrcIds<'a> {
    instance: String,
    resolver_endpoint: &'a str,
}

/// The [`Line`] for `ev`.
pub fn line<'a>(ev: &'a LogEvent, id: &'a Identity) -> Line<'a> {
    let msg = Message::from_vec(&ev.response)
        .ok()
        .or_else(|| Message::from_vec(&ev.query).ok());
    let (query_name, query_type, query_class) = msg
        .as_ref()
        .and_then(|m| m.queries.first())
        .map(|q| {
            (
                q.name().to_ascii(),
                type_name(q.query_type()),
                class_name(q.query_class()),
            )
        })
        .unwrap_or_else(|| (".".into(), "TYPE0".into(), "IN".into()));
    let rcode = crate::wire::rcode_of(&ev.response)
        .map(|r| {
            let high = msg
                .as_ref()
                .and_then(|m| m.edns.as_ref())
                .map(|e| u16::from(e.rcode_high()))
                .unwrap_or(0);
            rcode_name((high << 4) | u16::from(r))
        })
        .unwrap_or_else(|| "SERVFAIL".into());
    let answers = msg
        .as_ref()
        .map(|m| {
            m.answers
                .iter()
                .map(|r| LineAnswer {
                    rdata: rdata_text(&r.data),
                    rtype: type_name(r.record_type()),
                    class: class_name(r.dns_class),
                })
                .collect()
        })
        .unwrap_or_default();
    let srcaddr = ev.client.ip().to_string();
    let mut l = Line {
        version: VERSION,
        account_id: &id.account_id,
        region: &id.region,
        vpc_id: &id.vpc_id,
        query_timestamp: iso8601(ev.time),
        query_name,
        query_type,
        query_class,
        rcode,
        answers,
        srcids: SrcIds {
            instance: srcaddr.clone(),
            resolver_endpoint: &id.resolver_endpoint,
        },
        srcaddr,
        srcport: ev.client.port(),
        transport: match ev.transport {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        },
        firewall_rule_group_id: None,
        firewall_rule_action: None,
        firewall_domain_list_id: None,
        sekisho_rule: None,
        sekisho_catch_all: false,
        sekisho_would_block: false,
        sekisho_chain_name: None,
    };
    if let Some((policy, d, chain_name)) = &ev.decision {
        if let Some(hit) = d.hit {
            let (g, r, list) = policy.parts(hit);
            match d.verdict {
                Verdict::Alert | Verdict::Block => {
                    l.firewall_rule_group_id = Some(&g.id);
                    l.firewall_rule_action = Some(if d.verdict == Verdict::Block {
                        "BLOCK"
                    } else {
                        "ALERT"
                    });
                    l.firewall_domain_list_id = Some(&list.id);
                }
                Verdict::Resolve => {}
            }
            l.sekisho_rule = Some(&r.name);
            l.sekisho_catch_all = list.set.is_match_all();
            l.sekisho_would_block = d.demoted;
            l.sekisho_chain_name = chain_name.as_deref();
        }
    }
    l
}

/// Handle to the asynchronous query-log writer.
pub struct QueryLog {
    tx: Option<SyncSender<LogEvent>>,
    /// Bytes queued now (see [`LogEvent::cost`]) and the cap.
    pending: Arc<AtomicUsize>,
    max_pending: usize,
    dropped: Arc<AtomicU64>,
    written: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl QueryLog {
    /// Opens (appends to) the log file and starts the writer thread.
    pub fn start(cfg: &QueryLogConfig) -> std::io::Result<QueryLog> {
        let file = open_append(&cfg.path)?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let (tx, rx) = sync_channel(cfg.queue);
        let written = Arc::new(AtomicU64::new(0));
        let pending = Arc::new(AtomicUsize::new(0));
        let w = Writer {
            path: cfg.path.clone(),
            out: BufWriter::with_capacity(1 << 16, file),
            size,
            max_bytes: cfg.max_bytes,
            keep: cfg.keep,
            id: Identity {
                account_id: cfg.account_id.clone(),
                region: cfg.region.clone(),
                vpc_id: cfg.vpc_id.clone(),
                resolver_endpoint: cfg.resolver_endpoint.clone(),
            },
            written: written.clone(),
            pending: pending.clone(),
            warned: false,
            line: Vec::with_capacity(1024),
        };
        let thread = std::thread::Builder::new()
            .name("dns-querylog".into())
            .spawn(move || w.run(rx))?;
        Ok(QueryLog {
            tx: Some(tx),
            pending,
            max_pending: cfg.queue_bytes,
            dropped: Arc::new(AtomicU64::new(0)),
            written,
            thread: Some(thread),
        })
    }

    /// Queues a line; never blocks. Returns false (and counts it) when the queue is full, in
    /// entries or in bytes.
    pub fn log(&self, ev: LogEvent) -> bool {
        let cost = ev.cost();
        if self.pending.fetch_add(cost, Ordering::Relaxed) + cost > self.max_pending {
            self.pending.fetch_sub(cost, Ordering::Relaxed);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        match self.tx.as_ref().map(|tx| tx.try_send(ev)) {
            Some(Ok(())) => true,
            Some(Err(TrySendError::Full(_) | TrySendError::Disconnected(_))) | None => {
                self.pending.fetch_sub(cost, Ordering::Relaxed);
                self.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Lines dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Lines written so far.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Stops accepting lines, writes what is queued, flushes and joins the writer.
    pub fn shutdown(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for QueryLog {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Opens `path` for appending without following a symbolic link (`O_NOFOLLOW`), creating it
/// with mode 0640. A link gives an error that names the path.
pub fn open_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                std::io::Error::new(
                    e.kind(),
                    format!(
                        "'{}' is a symbolic link; the query log is never opened through a link",
                        path.display()
                    ),
                )
            } else {
                e
            }
        })
}

struct Writer {
    path: PathBuf,
    out: BufWriter<File>,
    size: u64,
    max_bytes: u64,
    keep: u32,
    id: Identity,
    written: Arc<AtomicU64>,
    pending: Arc<AtomicUsize>,
    warned: bool,
    /// The line being written, reused.
    line: Vec<u8>,
}

impl Writer {
    fn run(mut self, rx: Receiver<LogEvent>) {
        loop {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(ev) => {
                    self.write(&ev);
                    // Drain what is already queued before flushing.
                    while let Ok(ev) = rx.try_recv() {
                        self.write(&ev);
                    }
                    let _ = self.out.flush();
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        let _ = self.out.flush();
    }

    fn write(&mut self, ev: &LogEvent) {
        self.pending.fetch_sub(ev.cost(), Ordering::Relaxed);
        self.line.clear();
        if serde_json::to_writer(&mut self.line, &line(ev, &self.id)).is_err() {
            return;
        }
        self.line.push(b'\n');
        if self.size > 0 && self.size + self.line.len() as u64 > self.max_bytes {
            self.rotate();
        }
        if self.out.write_all(&self.line).is_ok() {
            self.size += self.line.len() as u64;
            self.written.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn rotate(&mut self) {
        let _ = self.out.flush();
        let name = |i: u32| {
            let mut p = self.path.clone().into_os_string();
            p.push(format!(".{i}"));
            PathBuf::from(p)
        };
        if self.keep == 0 {
            let _ = std::fs::remove_file(&self.path);
        } else {
            for i in (1..self.keep).rev() {
                let _ = std::fs::rename(name(i), name(i + 1));
            }
            let _ = std::fs::rename(&self.path, name(1));
        }
        match open_append(&self.path) {
            Ok(f) => self.out = BufWriter::with_capacity(1 << 16, f),
            Err(e) if !self.warned => {
                self.warned = true;
                eprintln!(
                    "sekisho dns: cannot rotate the query log '{}': {e}; appending to the open file",
                    self.path.display()
                );
            }
            Err(_) => {}
        }
        // Also after a failed rotation: the next attempt is another max_bytes away, not at
        // every line.
        self.size = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::tests::walled_garden;
    use crate::wire;

    #[test]
    fn timestamps_are_iso8601_utc() {
        assert_eq!(iso8601(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_612_461_115);
        assert_eq!(iso8601(t), "2021-02-04T17:51:55Z");
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(iso8601(t), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn written_lines_keep_aws_field_order() {
        let (ev, id) = blocked_event();
        let text = serde_json::to_string(&line(&ev, &id)).unwrap();
        let keys: Vec<&str> = [
            "version",
            "account_id",
            "region",
            "vpc_id",
            "query_timestamp",
            "query_name",
            "query_type",
            "query_class",
            "rcode",
            "answers",
            "srcaddr",
            "srcport",
            "transport",
            "srcids",
            "firewall_rule_group_id",
            "firewall_rule_action",
            "firewall_domain_list_id",
            "sekisho_rule",
        ]
        .into_iter()
        .collect();
        let pos: Vec<usize> = keys
            .iter()
            .map(|k| {
                text.find(&format!("\"{k}\":"))
                    .unwrap_or_else(|| panic!("{k}: {text}"))
            })
            .collect();
        assert!(pos.windows(2).all(|w| w[0] < w[1]), "{text}");
        // The same line as the JSON tree tests read.
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v, format_line(&ev, &id));
        assert!(!text.contains("sekisho_would_block") && !text.contains("sekisho_chain_name"));
    }

    fn blocked_event() -> (LogEvent, Identity) {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        wire::encode_name("yahoo.co.jp", &mut q);
        q.extend_from_slice(&[0, 15, 0, 1]);
        let p = Arc::new(walled_garden());
        let d = p.evaluate("yahoo.co.jp", 15);
        let end = wire::question_end(&q).unwrap();
        let (_, r, _) = p.parts(d.hit.unwrap());
        let crate::policy::Action::Block(br) = &r.action else {
            panic!()
        };
        let resp = wire::block_answer(&q, end, br, None, 1232).unwrap();
        let ev = LogEvent {
            time: UNIX_EPOCH + Duration::from_secs(1_612_461_115),
            client: "10.0.1.25:48211".parse().unwrap(),
            transport: Transport::Udp,
            query: q,
            response: resp,
            decision: Some((p, d, None)),
        };
        let id = Identity {
            account_id: "111122223333".into(),
            region: "us-east-1".into(),
            vpc_id: "vpc-7example".into(),
            resolver_endpoint: "sekisho".into(),
        };
        (ev, id)
    }

    #[test]
    fn block_line_has_every_field() {
        let (ev, id) = blocked_event();
        let v = format_line(&ev, &id);
        assert_eq!(v["version"], "1.100000");
        assert_eq!(v["account_id"], "111122223333");
        assert_eq!(v["region"], "us-east-1");
        assert_eq!(v["vpc_id"], "vpc-7example");
        assert_eq!(v["query_timestamp"], "2021-02-04T17:51:55Z");
        assert_eq!(v["query_name"], "yahoo.co.jp.");
        assert_eq!(v["query_type"], "MX");
        assert_eq!(v["query_class"], "IN");
        assert_eq!(v["rcode"], "NXDOMAIN");
        assert_eq!(v["answers"], serde_json::json!([]));
        assert_eq!(v["srcaddr"], "10.0.1.25");
        assert_eq!(v["srcport"], 48211);
        assert_eq!(v["transport"], "UDP");
        assert_eq!(v["srcids"]["instance"], "10.0.1.25");
        assert_eq!(v["firewall_rule_action"], "BLOCK");
        assert_eq!(v["firewall_rule_group_id"], "egress");
        assert_eq!(v["firewall_domain_list_id"], "everything");
        assert_eq!(v["sekisho_rule"], "block-rest");
        assert_eq!(v["sekisho_catch_all"], true);
    }

    fn cfg(path: PathBuf) -> QueryLogConfig {
        QueryLogConfig {
            path,
            max_bytes: 1 << 20,
            keep: 1,
            queue: 1024,
            queue_bytes: 1 << 20,
            account_id: "a".into(),
            region: "r".into(),
            vpc_id: "v".into(),
            resolver_endpoint: "e".into(),
        }
    }

    #[test]
    fn log_file_is_created_0640_and_never_opened_through_a_link() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("q.log");
        let mut log = QueryLog::start(&cfg(path.clone())).unwrap();
        log.shutdown();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640 & !current_umask());
        let target = d.path().join("target");
        std::fs::write(&target, "").unwrap();
        let link = d.path().join("link.log");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = QueryLog::start(&cfg(link.clone()))
            .err()
            .expect("a link is refused");
        assert!(
            e.to_string()
                .contains(&format!("'{}' is a symbolic link", link.display())),
            "{e}"
        );
        assert_eq!(std::fs::read(&target).unwrap(), b"");
    }

    fn current_umask() -> u32 {
        // SAFETY: umask only swaps the process mask; it is put back at once.
        unsafe {
            let m = libc::umask(0o022);
            libc::umask(m);
            m as u32
        }
    }

    #[test]
    fn queue_is_capped_in_bytes_and_entries_keep_only_what_lines_print() {
        let d = tempfile::tempdir().unwrap();
        let (ev, _) = blocked_event();
        // A query with an OPT record and a big additional section is cut to header + question.
        let mut q = ev.query.clone();
        q[11] = 1;
        q.extend_from_slice(&[0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 0]);
        let mut resp = ev.response.clone();
        resp[11] = 1;
        resp.extend_from_slice(&[0, 0, 16, 0, 1, 0, 0, 0, 0, 3, 0xe8]);
        resp.extend_from_slice(&[b'x'; 1000]);
        let small = LogEvent::new(
            ev.time,
            ev.client,
            ev.transport,
            &q,
            &resp,
            ev.decision.clone(),
        );
        assert_eq!(small.query.len(), wire::question_end(&ev.query).unwrap());
        assert!(
            small.response.len() <= ev.response.len(),
            "the 1 kB TXT is gone"
        );
        assert_eq!(
            &small.response[8..12],
            &[0, 0, 0, 0],
            "no authority or additional kept"
        );
        assert_eq!(
            format_line(&small, &blocked_event().1)["query_name"],
            "yahoo.co.jp."
        );
        // Room for exactly three entries: the fourth is dropped and counted.
        let mut c = cfg(d.path().join("q.log"));
        c.queue_bytes = 3 * small.cost();
        let (tx, _rx) = sync_channel(1024);
        let log = QueryLog {
            tx: Some(tx),
            pending: Arc::new(AtomicUsize::new(0)),
            max_pending: c.queue_bytes,
            dropped: Arc::new(AtomicU64::new(0)),
            written: Arc::new(AtomicU64::new(0)),
            thread: None,
        };
        for _ in 0..3 {
            assert!(log.log(small.clone()));
        }
        assert!(!log.log(small.clone()));
        assert_eq!(log.dropped(), 1);
    }

    #[test]
    fn writer_rotates_by_size_and_flushes_on_shutdown() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("q.log");
        let cfg = QueryLogConfig {
            path: path.clone(),
            max_bytes: 2000,
            keep: 2,
            queue: 1024,
            queue_bytes: 1 << 20,
            account_id: "a".into(),
            region: "r".into(),
            vpc_id: "v".into(),
            resolver_endpoint: "e".into(),
        };
        let (ev, _) = blocked_event();
        let mut log = QueryLog::start(&cfg).unwrap();
        for _ in 0..40 {
            assert!(log.log(ev.clone()));
        }
        log.shutdown();
        assert_eq!(log.written(), 40);
        let lines = |p: &Path| {
            std::fs::read_to_string(p)
                .map(|t| t.lines().count())
                .unwrap_or(0)
        };
        let p1 = d.path().join("q.log.1");
        let p2 = d.path().join("q.log.2");
        let p3 = d.path().join("q.log.3");
        assert!(std::fs::metadata(&path).unwrap().len() <= 2000);
        assert!(std::fs::metadata(&p1).unwrap().len() <= 2000);
        assert!(lines(&path) > 0 && lines(&p1) > 0 && lines(&p2) > 0);
        assert!(!p3.exists(), "keep: 2 keeps two rotated files");
        // Every kept line is one complete JSON object.
        for p in [&path, &p1, &p2] {
            for l in std::fs::read_to_string(p).unwrap().lines() {
                let v: Value = serde_json::from_str(l).unwrap();
                assert_eq!(v["query_name"], "yahoo.co.jp.");
            }
        }
    }
}
