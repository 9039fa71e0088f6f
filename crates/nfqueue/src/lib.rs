//! The inline driver: Linux NFQUEUE → [`sekisho_sensor::Sensor`] → verdicts, logs and rejects.
//!
//! A thin I/O shell around the sans-I/O sensor, used by `sekisho run`. One worker thread per
//! queue number; every worker owns its own [`Sensor`] and all of them share one compiled
//! [`RuleSet`] (`Arc`). The kernel's `--queue-balance` hash is symmetric, so both directions of
//! a flow land on the same queue and so on the same worker.
//!
//! Per packet a worker: takes the raw IP packet from the queue (NFQUEUE hands out layer-3
//! packets, so the link type is [`LinkType::Raw`]), feeds it with the wall-clock time, writes
//! the records the sensor hands out to the shared log sink, sends the packets the sensor wants
//! sent (a `reject`'s TCP RST or ICMP unreachable) from a raw socket, and returns the verdict:
//! accept, or drop for `drop`, a flow drop and `reject`.
//!
//! Verdicts go out on the queue's own netlink socket (`netlink.rs`): consecutive accepted
//! packets share one batch verdict ([`Options::verdict_batch`]); a packet that decides its
//! whole flow goes back marked ([`Mark`]) so that the kernel stops queueing the flow. The
//! rate-limit tables are one set behind every worker ([`RateLimitTables`]).
//!
//! Operations ([`run`]): the log sink is flushed on a timer and at exit; a reload
//! ([`Control::reload`], SIGHUP through [`handle_signals`]) builds the new rules beside the
//! old and hands them to every worker only when they load; [`Control::stop`] (SIGTERM/SIGINT)
//! makes every worker return, ending its flows (their records are logged) and unbinding its
//! queue, so the kernel stops queueing to it. Counters are kept in [`Metrics`] and served in Prometheus'
//! text format by [`serve_metrics`].
//!
//! Fail open or closed: the queue's `fail-open` flag ([`Options::fail_open`]) tells the kernel
//! what to do with packets when the queue is full because the engine fell behind: accept them
//! (fail-open) or drop them (fail-closed, the default). The choice is logged at start and is
//! the `sekisho_queue_fail_open` gauge; the kernel's per-queue drop counter is exported as
//! `sekisho_queue_dropped_total`.

#![warn(missing_docs)]

mod metrics;
mod netlink;
pub mod privs;
mod raw;
mod signals;
mod wake;

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sekisho_engine::records::Record;
use sekisho_engine::{LinkType, Timestamp, Verdict};
use sekisho_eve::{LogConfig, LogSink};
use sekisho_sensor::{FlowDecision, RateLimitTables, RuleSet, Sensor, Settings};

pub use metrics::{serve_metrics, Metrics};
pub use signals::handle_signals;

/// Mark put on the packets sekisho sends itself (rejects), so a host's OUTPUT chain can leave
/// them out of the queue (`-m mark ! --mark 0x5e4150`, docs/inline.md).
pub const SENT_MARK: u32 = 0x5e4150;

/// What to run and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// Queue numbers, one worker thread each (`--queue N` or `--queues N:M`).
    pub queues: Vec<u16>,
    /// Kernel fail-open flag: accept packets when the queue is full (else they are dropped).
    pub fail_open: bool,
    /// Ask the kernel for GSO/GRO super-packets whole instead of segmenting them first.
    pub gso: bool,
    /// Kernel queue length (packets waiting for a verdict) before fail-open/closed applies.
    pub queue_maxlen: u32,
    /// Directory the logs are written to (must exist).
    pub out_dir: PathBuf,
    /// Which logs to write.
    pub log: LogConfig,
    /// The sensor's settings.
    pub settings: Settings,
    /// How often the logs are flushed (and idle flows ended).
    pub flush_interval: Duration,
    /// Hand flows that are passed whole to the kernel with this packet mark (`None`: not).
    pub pass_mark: Option<Mark>,
    /// Hand flows that are dropped whole to the kernel with this packet mark (`None`: not).
    pub drop_mark: Option<Mark>,
    /// Most accepted packets answered by one batch verdict (`NFQNL_MSG_VERDICT_BATCH`); 1
    /// answers every packet on its own. A batch is also sent as soon as no packet waits, so
    /// batching never holds a packet while the worker is idle.
    pub verdict_batch: u32,
    /// Test-only switch: while this file exists the workers stop reading their queues, as an
    /// engine that fell behind would (the fail-open/fail-closed tests).
    pub stall_file: Option<PathBuf>,
}

/// A packet mark and the bits of it sekisho owns (`VALUE/MASK`, as iptables writes marks).
///
/// When a packet decides its whole flow (a `pass` of the flow, a flow drop; see
/// [`sekisho_sensor::FlowDecision`]), the worker answers it with `NF_REPEAT` and
/// `mark = (mark & !mask) | value`: the kernel runs the packet through the same chain again,
/// where the documented rules copy the mark to the connection (`CONNMARK --save-mark`) and
/// accept or drop every packet of a connection carrying it before the `NFQUEUE` rule, so the
/// rest of the flow is never queued (docs/inline.md, "Flows decided whole").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    /// The bits set.
    pub value: u32,
    /// The bits sekisho owns (the rest of the packet's mark is kept).
    pub mask: u32,
}

impl Mark {
    /// Parses `VALUE[/MASK]` (decimal or `0x` hex; the mask defaults to the value's bits).
    pub fn parse(s: &str) -> Result<Mark, String> {
        let num = |t: &str| {
            let t = t.trim();
            let r = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                Some(h) => u32::from_str_radix(h, 16),
                None => t.parse::<u32>(),
            };
            r.map_err(|_| format!("`{t}` is not a 32-bit mark (decimal or 0x hex)"))
        };
        let (value, mask) = match s.split_once('/') {
            Some((v, m)) => (num(v)?, num(m)?),
            None => {
                let v = num(s)?;
                (v, v)
            }
        };
        if value == 0 {
            return Err(format!(
                "`{s}`: the mark must not be 0 (every unmarked packet carries 0)"
            ));
        }
        if value & !mask != 0 {
            return Err(format!(
                "`{s}`: the value {value:#x} has bits outside the mask {mask:#x}"
            ));
        }
        Ok(Mark { value, mask })
    }

    /// True when `mark` carries this decision.
    fn carried_by(self, mark: u32) -> bool {
        mark & self.mask == self.value
    }

    /// `mark` with this decision set.
    fn apply(self, mark: u32) -> u32 {
        (mark & !self.mask) | self.value
    }
}

impl std::fmt::Display for Mark {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#x}/{:#x}", self.value, self.mask)
    }
}

/// Why the driver could not run at all.
#[derive(Debug)]
pub enum RunError {
    /// A queue could not be opened, bound or configured (not root, queue taken, module
    /// missing).
    Queue(u16, std::io::Error),
    /// The raw socket for rejects could not be opened.
    RawSocket(std::io::Error),
    /// Logs could not be written.
    Output(std::io::Error),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Queue(n, e) => write!(
                f,
                "queue {n}: {e} (needs root or CAP_NET_ADMIN, the nfnetlink_queue module, and no other program bound to the queue)"
            ),
            RunError::RawSocket(e) => write!(f, "raw socket for rejects: {e} (needs CAP_NET_RAW)"),
            RunError::Output(e) => write!(f, "writing logs: {e}"),
        }
    }
}

impl std::error::Error for RunError {}

/// Handles the driver's owner uses while it runs: stop, reload, and the counters.
pub struct Control {
    stop: AtomicBool,
    /// The rules every worker should use, and their generation (bumped on every swap).
    rules: Mutex<Option<Arc<RuleSet>>>,
    /// Settings a reload brought (their live part is applied with the rules).
    settings: Mutex<Option<Settings>>,
    generation: AtomicU64,
    /// Counters, exported by [`serve_metrics`].
    pub metrics: Metrics,
    /// The rate-limit tables every worker shares (set by [`run`] when the policy has
    /// `rate_limits:`).
    rate_limits: Mutex<Option<RateLimitTables>>,
}

/// Folder of `--out` where [`Control::write_rate_limits`] writes the tables (as `sekisho
/// replay` does).
pub const RATELIMIT_DIR: &str = "ratelimit";

impl Control {
    /// A control block starting with `rules`.
    pub fn new(rules: Option<Arc<RuleSet>>) -> Arc<Control> {
        Arc::new(Control {
            stop: AtomicBool::new(false),
            rules: Mutex::new(rules),
            settings: Mutex::new(None),
            generation: AtomicU64::new(0),
            metrics: Metrics::default(),
            rate_limits: Mutex::new(None),
        })
    }

    /// Asks every worker to stop (they end their flows, flush and unbind).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// True once [`Control::stop`] was called.
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// A reload: `load` builds the new rules beside the running ones; they are handed to the
    /// workers only when it succeeds. On error the old rules keep running; the error is
    /// returned (for the log) and counted.
    pub fn reload(
        &self,
        load: impl FnOnce() -> Result<Arc<RuleSet>, String>,
    ) -> Result<(), String> {
        match load() {
            Ok(rules) => {
                if let Ok(mut slot) = self.rules.lock() {
                    *slot = Some(rules);
                }
                self.generation.fetch_add(1, Ordering::SeqCst);
                self.metrics.reload(true);
                Ok(())
            }
            Err(e) => {
                self.metrics.reload(false);
                Err(e)
            }
        }
    }

    /// A reload that also brings the policy's settings: the rules as [`Control::reload`],
    /// and the settings' live part ([`Sensor::apply_live_settings`]: the exception policies)
    /// for every worker, both only when `load` succeeds.
    pub fn reload_with_settings(
        &self,
        load: impl FnOnce() -> Result<(Arc<RuleSet>, Settings), String>,
    ) -> Result<(), String> {
        match load() {
            Ok((rules, settings)) => {
                // Both in place before the generation moves: a worker that sees the new
                // generation reads both.
                if let Ok(mut slot) = self.settings.lock() {
                    *slot = Some(settings);
                }
                if let Ok(mut slot) = self.rules.lock() {
                    *slot = Some(rules);
                }
                self.generation.fetch_add(1, Ordering::SeqCst);
                self.metrics.reload(true);
                Ok(())
            }
            Err(e) => {
                self.metrics.reload(false);
                Err(e)
            }
        }
    }

    /// The shared rate-limit tables, once [`run`] made them (`None` without `rate_limits:`).
    pub fn rate_limits(&self) -> Option<RateLimitTables> {
        self.rate_limits.lock().ok().and_then(|t| t.clone())
    }

    /// Everything `--metrics` serves: the counters, then per rate-limit table its entries
    /// and counters.
    pub fn render_metrics(&self) -> String {
        let mut o = self.metrics.render();
        if let Some(t) = self.rate_limits() {
            metrics::render_rate_limits(&mut o, &t.summaries());
        }
        o
    }

    /// Writes every rate-limit table, as of now, to `DIR/ratelimit/NAME` in the
    /// `/proc/net/ipt_hashlimit` format (each file replaced whole: written beside, then
    /// renamed, so a reader never sees half a table). Returns the tables written (0 without
    /// `rate_limits:`). SIGUSR1 in `sekisho run`, and at exit.
    pub fn write_rate_limits(&self, out_dir: &std::path::Path) -> std::io::Result<usize> {
        let Some(t) = self.rate_limits() else {
            return Ok(0);
        };
        let tables = t.proc_tables(now_ts());
        let dir = out_dir.join(RATELIMIT_DIR);
        let ctx = |p: &std::path::Path, e: std::io::Error| {
            std::io::Error::new(e.kind(), format!("{}: {e}", p.display()))
        };
        std::fs::create_dir_all(&dir).map_err(|e| ctx(&dir, e))?;
        for (name, text) in &tables {
            let tmp = dir.join(format!(".{name}.tmp"));
            std::fs::write(&tmp, text).map_err(|e| ctx(&tmp, e))?;
            let p = dir.join(name);
            std::fs::rename(&tmp, &p).map_err(|e| ctx(&p, e))?;
        }
        Ok(tables.len())
    }

    fn current(&self) -> (u64, Option<Arc<RuleSet>>) {
        // Generation first: a swap between the two reads is seen again next time.
        let g = self.generation.load(Ordering::SeqCst);
        let r = self.rules.lock().map(|r| r.clone()).unwrap_or(None);
        (g, r)
    }
}

/// What a run did, summed over the workers.
#[derive(Debug, Clone, Default)]
pub struct RunReport {
    /// Packets that got a verdict.
    pub packets: u64,
    /// Packets dropped (drop, flow drop, reject).
    pub drops: u64,
    /// Packets sent (reject answers).
    pub transmitted: u64,
    /// Alerts logged.
    pub alerts: u64,
    /// Errors met by workers (they stopped).
    pub errors: Vec<String>,
}

/// The wall clock as the sensor's timestamp.
fn now_ts() -> Timestamp {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp::from_secs_nanos(d.as_secs(), u64::from(d.subsec_nanos()))
}

/// Opens and configures one queue.
fn open_queue(n: u16, opts: &Options) -> std::io::Result<netlink::Queue> {
    let mut q = netlink::Queue::open(n)?;
    q.set_maxlen(opts.queue_maxlen)?;
    q.set_flag(netlink::F_FAIL_OPEN, opts.fail_open)?;
    q.set_flag(netlink::F_GSO, opts.gso)?;
    Ok(q)
}

/// Runs the workers until [`Control::stop`]. Every queue is opened before anything else
/// starts, so a queue that cannot be opened fails the run before a packet is decided.
/// `on_ready` is called once every queue is bound (privileges can be dropped there).
pub fn run(
    opts: &Options,
    control: &Arc<Control>,
    on_ready: &mut dyn FnMut(),
) -> Result<RunReport, RunError> {
    let mut queues = Vec::new();
    for &n in &opts.queues {
        queues.push((n, open_queue(n, opts).map_err(|e| RunError::Queue(n, e))?));
    }
    let raw = Arc::new(raw::Sender::open().map_err(RunError::RawSocket)?);
    // One set of rate-limit tables behind every worker: the kernel spreads one source's
    // flows over the queues (its hash covers both addresses), a limit must hold across them.
    let limits = RateLimitTables::new(&opts.settings.rate_limits);
    if let Ok(mut slot) = control.rate_limits.lock() {
        *slot = limits.clone();
    }
    let sink = Arc::new(Mutex::new(
        LogSink::create(&opts.out_dir, opts.log.clone()).map_err(RunError::Output)?,
    ));
    control
        .metrics
        .set_queues(&opts.queues, opts.fail_open, opts.queue_maxlen);
    wake::install().map_err(RunError::Output)?;
    on_ready();

    // Each worker's thread id, for the wake-up signal.
    let ids: Mutex<Vec<libc::pthread_t>> = Mutex::new(Vec::new());
    let reports: Vec<Result<WorkerReport, String>> = std::thread::scope(|s| {
        let mut threads = Vec::new();
        for (n, q) in queues {
            let (ctl, sink, raw) = (Arc::clone(control), Arc::clone(&sink), Arc::clone(&raw));
            let limits = limits.clone();
            let ids = &ids;
            let h = std::thread::Builder::new()
                .name(format!("nfq-{n}"))
                .spawn_scoped(s, move || {
                    // SAFETY: pthread_self has no preconditions.
                    let me = unsafe { libc::pthread_self() };
                    if let Ok(mut ids) = ids.lock() {
                        ids.push(me);
                    }
                    let mut w = Worker::new(n, q, opts, ctl, sink, raw, limits);
                    let r = w.run();
                    w.finish();
                    r.map(|()| w.report)
                });
            match h {
                Ok(h) => threads.push(h),
                Err(e) => {
                    control.stop();
                    eprintln!("sekisho run: cannot start the worker of queue {n}: {e}");
                }
            }
        }
        let ids = || ids.lock().map(|v| v.clone()).unwrap_or_default();
        // The housekeeping loop: flush the logs, wake idle workers (for their timers and to
        // see a stop or a reload).
        let tick = opts.flush_interval.min(Duration::from_millis(200));
        let mut last_flush = Instant::now();
        // A worker that ended on its own (an error) ends the run: its queue would otherwise
        // sit unbound while the others go on.
        while !control.stopping() && threads.iter().all(|h| !h.is_finished()) {
            std::thread::sleep(tick);
            if last_flush.elapsed() >= opts.flush_interval {
                if let Ok(mut sink) = sink.lock() {
                    if let Err(e) = sink.flush() {
                        eprintln!("sekisho run: error: flushing logs: {e}");
                    }
                }
                last_flush = Instant::now();
            }
            wake::wake(&ids());
        }
        control.stop();
        // Workers blocked in recv return on the wake-up signal; repeat it until they did.
        while threads.iter().any(|h| !h.is_finished()) {
            wake::wake(&ids());
            std::thread::sleep(Duration::from_millis(20));
        }
        threads
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("worker panicked".into())))
            .collect()
    });
    let mut report = RunReport::default();
    for r in reports {
        match r {
            Ok(w) => {
                report.packets += w.packets;
                report.drops += w.drops;
                report.transmitted += w.transmitted;
            }
            Err(e) => report.errors.push(e),
        }
    }
    let mut sink = sink
        .lock()
        .map_err(|_| RunError::Output(std::io::Error::other("log sink poisoned")))?;
    sink.flush().map_err(RunError::Output)?;
    report.alerts = sink.counts().alerts;
    Ok(report)
}

#[derive(Default)]
struct WorkerReport {
    packets: u64,
    drops: u64,
    transmitted: u64,
}

/// One queue's worker: its queue, its sensor, its view of the rules.
struct Worker<'a> {
    num: u16,
    queue: netlink::Queue,
    /// Accepted packets whose verdict is not sent yet: (highest id, how many).
    batch: Option<(u32, u32)>,
    opts: &'a Options,
    control: Arc<Control>,
    sink: Arc<Mutex<LogSink>>,
    raw: Arc<raw::Sender>,
    sensor: Sensor,
    generation: u64,
    records: Vec<Record>,
    last_ts: Timestamp,
    /// When the timers are looked at next.
    next_tick: Instant,
    report: WorkerReport,
}

impl<'a> Worker<'a> {
    fn new(
        num: u16,
        queue: netlink::Queue,
        opts: &'a Options,
        control: Arc<Control>,
        sink: Arc<Mutex<LogSink>>,
        raw: Arc<raw::Sender>,
        limits: Option<RateLimitTables>,
    ) -> Worker<'a> {
        let (generation, rules) = control.current();
        Worker {
            num,
            queue,
            batch: None,
            opts,
            sensor: Sensor::with_rate_limit_tables(&opts.settings, rules, limits),
            control,
            sink,
            raw,
            generation,
            records: Vec::new(),
            last_ts: Timestamp::default(),
            next_tick: Instant::now(),
            report: WorkerReport::default(),
        }
    }

    fn run(&mut self) -> Result<(), String> {
        while !self.control.stopping() {
            self.housekeeping();
            if self.opts.stall_file.as_ref().is_some_and(|p| p.exists()) {
                self.flush()?;
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            // With verdicts owed, look without blocking: when nothing waits, send them first.
            match self.queue.recv(self.batch.is_some()) {
                Ok(p) => self.packet(p)?,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => self.flush()?,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                    // A verdict for packets the kernel no longer held (their device went
                    // away): nothing was decided wrongly.
                    self.control
                        .metrics
                        .recv_errors
                        .fetch_add(1, Ordering::Relaxed);
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    self.control
                        .metrics
                        .recv_errors
                        .fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => return Err(format!("queue {}: receiving: {e}", self.num)),
            }
        }
        Ok(())
    }

    /// Takes new rules (checked every packet: one atomic load); every 100 ms ends idle flows
    /// and updates the flow gauge.
    fn housekeeping(&mut self) {
        if self.control.generation.load(Ordering::Relaxed) != self.generation {
            let (g, rules) = self.control.current();
            let live = self.control.settings.lock().ok().and_then(|s| s.clone());
            let settings = live.as_ref().unwrap_or(&self.opts.settings);
            if live.is_some() {
                self.sensor.apply_live_settings(settings);
            }
            if let Some(rules) = rules {
                self.sensor.swap_rules(rules, settings);
            }
            self.generation = g;
        }
        let tick = Instant::now();
        if tick < self.next_tick {
            return;
        }
        self.next_tick = tick + Duration::from_millis(100);
        let now = now_ts().max(self.last_ts);
        if self.sensor.poll_timeout().is_some_and(|t| t <= now) {
            self.last_ts = now;
            self.sensor.handle_timeout(now);
            self.drain();
        }
        self.control
            .metrics
            .set_flows(self.num, self.sensor.active_flows() as u64);
    }

    /// Sends the batch verdict owed, if any.
    fn flush(&mut self) -> Result<(), String> {
        if let Some((id, n)) = self.batch.take() {
            let r = if n == 1 {
                self.queue.verdict(id, netlink::Verdict::Accept, None)
            } else {
                self.control
                    .metrics
                    .verdict_batches
                    .fetch_add(1, Ordering::Relaxed);
                self.queue.verdict_batch(id, netlink::Verdict::Accept)
            };
            r.map_err(|e| format!("queue {}: verdict: {e}", self.num))?;
        }
        Ok(())
    }

    fn packet(&mut self, p: netlink::Packet) -> Result<(), String> {
        let ts = now_ts().max(self.last_ts);
        self.last_ts = ts;
        let payload = self.queue.payload(&p);
        let len = payload.len() as u64;
        let v = self.sensor.handle_packet(ts, LinkType::Raw, payload);
        self.drain();
        let m = &self.control.metrics;
        m.packets.fetch_add(1, Ordering::Relaxed);
        m.bytes.fetch_add(len, Ordering::Relaxed);
        self.report.packets += 1;
        let kernel = match v {
            Verdict::Accept => {
                m.accepted.fetch_add(1, Ordering::Relaxed);
                netlink::Verdict::Accept
            }
            Verdict::Drop | Verdict::DropFlow => {
                m.dropped.fetch_add(1, Ordering::Relaxed);
                netlink::Verdict::Drop
            }
            Verdict::Reject { .. } => {
                m.rejected.fetch_add(1, Ordering::Relaxed);
                netlink::Verdict::Drop
            }
        };
        if kernel == netlink::Verdict::Drop {
            self.report.drops += 1;
        }
        match self.mark_flow(p.mark, kernel) {
            None if kernel == netlink::Verdict::Accept => {
                // Consecutive accepts share one batch verdict (ids only grow, and a packet
                // answered on its own in between is no longer held, so "every packet up to
                // this id" is exactly the accepted ones).
                let n = self.batch.map_or(0, |b| b.1) + 1;
                self.batch = Some((p.id, n));
                if n >= self.opts.verdict_batch.max(1) {
                    self.flush()?;
                }
            }
            mark => {
                // The verdict first: the kernel holds the packet (and the queue slot) until
                // then.
                let kv = if mark.is_some() {
                    netlink::Verdict::Repeat
                } else {
                    kernel
                };
                self.queue
                    .verdict(p.id, kv, mark)
                    .map_err(|e| format!("queue {}: verdict: {e}", self.num))?;
            }
        }
        self.transmit();
        Ok(())
    }

    /// A packet that decided its flow goes back to the kernel marked (`NF_REPEAT`), so that
    /// the rules acting on the mark take the flow out of the queue (see [`Mark`]). A packet
    /// that arrives already carrying a decision mark came round again: those rules are
    /// missing, so it gets the plain verdict (never a loop), counted and warned about once.
    /// Returns the packet's new mark when it goes back `NF_REPEAT`.
    fn mark_flow(&mut self, now: u32, kernel: netlink::Verdict) -> Option<u32> {
        let mark = match (self.sensor.flow_decision(), kernel) {
            (Some(FlowDecision::Pass), netlink::Verdict::Accept) => self.opts.pass_mark,
            (Some(FlowDecision::Drop), netlink::Verdict::Drop) => self.opts.drop_mark,
            _ => None,
        }?;
        let m = &self.control.metrics;
        if [self.opts.pass_mark, self.opts.drop_mark]
            .into_iter()
            .flatten()
            .any(|d| d.carried_by(now))
        {
            if m.mark_loops.fetch_add(1, Ordering::Relaxed) == 0 {
                eprintln!(
                    "sekisho run: warning: queue {}: a packet came back with the decision mark {mark}: the rules that act on --pass-mark/--drop-mark are missing before the NFQUEUE rule (docs/inline.md); giving plain verdicts",
                    self.num
                );
            }
            return None;
        }
        match kernel {
            netlink::Verdict::Accept => m.marked_pass.fetch_add(1, Ordering::Relaxed),
            _ => m.marked_drop.fetch_add(1, Ordering::Relaxed),
        };
        Some(mark.apply(now))
    }

    /// Sends what the sensor wants sent (reject answers).
    fn transmit(&mut self) {
        if !self.sensor.has_transmit() {
            return;
        }
        while let Some(t) = self.sensor.poll_transmit() {
            match self.raw.send(&t.packet) {
                Ok(()) => {
                    self.report.transmitted += 1;
                    self.control
                        .metrics
                        .transmitted
                        .fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    self.control
                        .metrics
                        .transmit_errors
                        .fetch_add(1, Ordering::Relaxed);
                    eprintln!("sekisho run: warning: sending a reject answer: {e}");
                }
            }
        }
    }

    /// Moves the sensor's records to the shared sink (one lock per packet that has any).
    fn drain(&mut self) {
        while let Some(r) = self.sensor.poll_record() {
            match &r {
                Record::Explain(line) => {
                    let _ = writeln!(std::io::stderr(), "{line}");
                    continue;
                }
                Record::Alert(_) => {
                    self.control.metrics.alerts.fetch_add(1, Ordering::Relaxed);
                }
                _ => {}
            }
            self.records.push(r);
        }
        if self.records.is_empty() {
            return;
        }
        if let Ok(mut sink) = self.sink.lock() {
            for r in self.records.drain(..) {
                if let Err(e) = sink.write(&r) {
                    self.control
                        .metrics
                        .log_errors
                        .fetch_add(1, Ordering::Relaxed);
                    eprintln!("sekisho run: error: writing logs: {e}");
                    break;
                }
            }
        }
        self.records.clear();
    }

    /// End of the run: the packets already queued get their verdicts (at most one queue
    /// length of them, so a busy queue cannot keep the stop waiting), every flow ends (their
    /// records are logged), the queue is unbound.
    fn finish(&mut self) {
        for _ in 0..self.opts.queue_maxlen.max(1) {
            let Ok(p) = self.queue.recv(true) else { break };
            if self.packet(p).is_err() {
                break;
            }
        }
        if let Err(e) = self.flush() {
            eprintln!("sekisho run: warning: {e}");
        }
        let now = now_ts().max(self.last_ts);
        self.sensor.finish(now);
        self.drain();
        self.transmit();
        if let Err(e) = self.queue.unbind() {
            eprintln!("sekisho run: warning: queue {}: unbinding: {e}", self.num);
        }
    }
}

/// Parses `N` or `N:M` (inclusive) into queue numbers.
pub fn parse_queues(s: &str) -> Result<Vec<u16>, String> {
    let num = |t: &str| {
        t.trim()
            .parse::<u16>()
            .map_err(|_| format!("`{t}` is not a queue number (0-65535)"))
    };
    match s.split_once(':') {
        None => Ok(vec![num(s)?]),
        Some((a, b)) => {
            let (a, b) = (num(a)?, num(b)?);
            if a > b {
                return Err(format!(
                    "{a}:{b}: the first queue must not be above the last"
                ));
            }
            if b - a >= 64 {
                return Err(format!("{a}:{b}: at most 64 queues (one thread each)"));
            }
            Ok((a..=b).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_reload_keeps_the_running_rules_and_is_counted() {
        let settings = Settings::new(sekisho_sensor::Mode::Inline);
        let empty = || {
            Arc::new(RuleSet::from_policy(
                &Default::default(),
                settings.compile_options(),
            ))
        };
        let first = empty();
        let control = Control::new(Some(Arc::clone(&first)));
        let (g0, r0) = control.current();
        assert!(r0.is_some_and(|r| Arc::ptr_eq(&r, &first)));
        let e = control.reload(|| Err("bad.yaml:3:7: error: nope".into()));
        assert_eq!(e.unwrap_err(), "bad.yaml:3:7: error: nope");
        let (g1, r1) = control.current();
        assert_eq!(g1, g0, "a refused reload is not a new generation");
        assert!(
            r1.is_some_and(|r| Arc::ptr_eq(&r, &first)),
            "the old rules keep running"
        );
        let second = empty();
        control.reload(|| Ok(Arc::clone(&second))).unwrap();
        let (g2, r2) = control.current();
        assert_ne!(g2, g0);
        assert!(r2.is_some_and(|r| Arc::ptr_eq(&r, &second)));
        let m = control.metrics.render();
        assert!(m.contains("sekisho_reloads_total 1\n"), "{m}");
        assert!(m.contains("sekisho_reload_failures_total 1\n"), "{m}");
        assert!(m.contains("sekisho_last_reload_success 1\n"), "{m}");
    }

    #[test]
    fn marks() {
        let m = Mark::parse("0x1/0x3").unwrap();
        assert_eq!((m.value, m.mask), (1, 3));
        assert_eq!(m.apply(0x5e4152), 0x5e4151);
        assert!(m.carried_by(0xf1));
        assert!(!m.carried_by(0xf2));
        assert_eq!(Mark::parse("4").unwrap(), Mark { value: 4, mask: 4 });
        assert!(Mark::parse("0").is_err());
        assert!(Mark::parse("0x4/0x3").is_err());
        assert!(Mark::parse("x").is_err());
    }

    #[test]
    fn queue_ranges() {
        assert_eq!(parse_queues("3").unwrap(), vec![3]);
        assert_eq!(parse_queues("0:3").unwrap(), vec![0, 1, 2, 3]);
        assert!(parse_queues("3:1").is_err());
        assert!(parse_queues("x").is_err());
        assert!(parse_queues("0:100").is_err());
        assert!(parse_queues("70000").is_err());
    }
}
