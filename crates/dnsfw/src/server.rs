//! The forwarder: UDP and TCP listeners, the upstream client, reload and shutdown. A driver
//! around the pure [`Policy`]: all decisions are made by `Policy::evaluate*`. UDP queries are
//! served by the epoll loops of `udp.rs` (one per UDP thread, each with its own upstream
//! sockets); TCP clients, and TCP retries of truncated answers, by tokio tasks here with the
//! async `Upstream` client. Both share `prepare` (classification) and `finish` (what
//! the client gets), so the two paths answer alike.
//!
//! Behaviour worth knowing:
//! - **Malformed queries**: fewer than 12 bytes, or a response (QR=1), are dropped silently;
//!   anything else that does not decode, or has other than one question, gets FORMERR; opcodes
//!   other than QUERY get NOTIMP. Nothing panics.
//! - **IDs and case**: the query goes upstream byte for byte apart from a fresh random ID (and
//!   the ECS option, below); the client's ID is put back, so the question keeps its case.
//! - **EDNS**: our own answers (blocks, errors) carry an OPT record when the query had one. The
//!   EDNS Client Subnet option is removed before forwarding unless `edns_client_subnet: true`.
//! - **Truncation**: a truncated (TC) upstream UDP answer is retried over TCP to the same
//!   upstream. A UDP answer larger than the client's limit (its EDNS payload size, at most
//!   `max_udp_payload`; 512 without EDNS) is replaced by a TC=1 header + question so the client
//!   retries over TCP.
//! - **Upstreams**: each attempt goes to the next upstream in order (failover), waiting
//!   `upstream_timeout`, for `upstream_attempts` attempts; a query starts at the upstream that
//!   answered last. An ICMP port unreachable (ECONNREFUSED) from an upstream moves on to the
//!   next attempt at once instead of waiting out the timeout. At most [`MAX_INFLIGHT`] queries
//!   are outstanding in all; beyond that an attempt counts as an upstream failure.
//! - **Spoofing (RFC 5452)**: each upstream query leaves on a socket picked at random from a
//!   pool of [`POOL_SOCKETS`] per upstream, each on its own random ephemeral port and retired
//!   after [`SOCKET_QUERIES`] queries or [`SOCKET_AGE`], with an ID from the OS CSPRNG; only a
//!   reply with that ID, QR=1 and the same question (name case-insensitively, type, class) is
//!   accepted; anything else is ignored and the real answer is still awaited. The same checks
//!   apply to an answer retried over TCP.
//! - **Fail mode** (reference §6) when no filtered answer can be produced (every upstream
//!   failed, or the answer cannot be decoded for redirection inspection): `closed` answers
//!   SERVFAIL; `open` lets resolution go on without the firewall: an undecodable answer is
//!   passed through unfiltered, and a query no upstream answered gets no reply at all, so the
//!   client's stub resolver moves on to its next configured server instead of failing.
//! - **Reload**: SIGHUP re-reads the config and lists and swaps the policy atomically; on any
//!   error the located diagnostic is printed and the old policy stays. Only the policy (`mode`,
//!   `domain_lists`, `rule_groups`) is reloaded; when a key that needs a restart changed
//!   (`listen`, `upstreams`, `user`, `allow_clients`, `limits`, `query_log`...: see
//!   [`ServerConfig::restart_keys_changed`]) a warning names it and the running value stays.
//! - **Shutdown**: SIGTERM or SIGINT stop the listeners, flush the query log and print counters.
//!
//! Under abuse (`docs/dns-firewall.md` has every limit, its default and what happens when hit):
//! - **`allow_clients`**: a client outside gets REFUSED (UDP and TCP), counted (`refused`), and
//!   a line on stderr at most every 10 s naming the client refused and how many more were
//!   refused since the previous line. Refused queries are not written to the query log (a
//!   flood would flood it).
//! - **Response rate limit** (`limits.client_qps`, `client_burst`, `slip`): a token bucket per
//!   client, checked first on UDP (before `allow_clients`, so REFUSED answers cannot be used
//!   for reflection either). Over it the query is dropped (`rate_limited`), except that every
//!   `slip`-th one gets a TC=1 answer (`slipped`): a real client retries over TCP and is
//!   answered there, a spoofed source cannot. TCP queries are not rate-limited (TCP cannot be
//!   spoofed and is bounded by the connection caps and one query at a time per connection).
//! - **In-flight cap** (`limits.client_inflight`): upstream queries in flight per client; over
//!   it a UDP query is dropped and a TCP query answered REFUSED (`inflight_limited`), so one
//!   client cannot take the whole [`MAX_INFLIGHT`] table from the others.
//! - **TCP** (`limits.tcp_clients`, `tcp_clients_per_client`, `tcp_idle_ms`, `tcp_write_ms`):
//!   a connection waiting longer than `tcp_idle_ms` for a complete query, or taking longer than
//!   `tcp_write_ms` to take an answer, is closed; at a cap the longest-idle connection under it
//!   is closed to make room, or the new one when none is idle (`tcp_rejected`). Accept errors
//!   (EMFILE, ENFILE, ENOBUFS, ENOMEM) pause accepting for 100 ms and are reported once a
//!   minute, instead of spinning. The soft open-file limit is raised to the hard limit at start.
//! - **Privileges**: started as root with `user:` set, the server drops to that user (and
//!   `group:`) once its sockets are bound and the query log is open ([`crate::privs`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use hickory_proto::op::Message;
use sekisho_diag::Diagnostic;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;

use crate::acl;
use crate::config::{self, FailMode, ServerConfig};
use crate::limits::{Clients, ConnSlot, TcpConns};
use crate::policy::{Action, Decision, Mode, Policy, Verdict};
use crate::privs;
use crate::query::{classify, redirection_chain, Classified};
use crate::querylog::{LogEvent, QueryLog, Transport};
use crate::wire::{self, rcode, EdnsInfo};

/// Outstanding upstream queries in all (one UDP socket, so one file descriptor, each); an
/// attempt that finds none free counts as an upstream failure and `fail_mode` applies. At a
/// 50 ms upstream round trip it still carries ~10,000 forwarded queries per second; the
/// per-client `limits.client_inflight` keeps one client from taking all of it.
pub const MAX_INFLIGHT: usize = 512;
/// Pause after an accept error that a retry would only repeat (EMFILE, ENFILE...).
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Receive buffer asked for the UDP listen sockets, so a burst waits instead of being dropped
/// by the kernel before the rate limit can tell clients apart.
pub const UDP_RCVBUF: i32 = 4 << 20;

/// How to run the forwarder.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Config file.
    pub config: PathBuf,
    /// Turn every BLOCK into ALERT (like `mode: alert`).
    pub dry_run: bool,
    /// Worker threads: 1 runs everything on one thread (`current_thread` runtime).
    pub threads: usize,
}

/// Counters printed at exit.
#[derive(Debug, Default)]
pub struct Stats {
    /// Queries received.
    pub queries: AtomicU64,
    /// Answered with a block response.
    pub blocked: AtomicU64,
    /// Matched an ALERT (or demoted BLOCK).
    pub alerted: AtomicU64,
    /// Sent upstream.
    pub forwarded: AtomicU64,
    /// Queries no upstream answered.
    pub upstream_failures: AtomicU64,
    /// Answered FORMERR / NOTIMP.
    pub malformed: AtomicU64,
    /// Clients outside `allow_clients` answered REFUSED.
    pub refused: AtomicU64,
    /// UDP queries dropped by the rate limit.
    pub rate_limited: AtomicU64,
    /// UDP queries over the rate answered TC=1 (slip).
    pub slipped: AtomicU64,
    /// Queries over the client's in-flight cap (UDP dropped, TCP REFUSED).
    pub inflight_limited: AtomicU64,
    /// TCP accept errors (each followed by a pause when the cause is resource exhaustion).
    pub accept_errors: AtomicU64,
}

/// A stderr message printed at most once per period, with a count of the ones held back.
struct RateLog {
    every: Duration,
    state: Mutex<(Option<Instant>, u64)>,
}

impl RateLog {
    fn new(every: Duration) -> RateLog {
        RateLog {
            every,
            state: Mutex::new((None, 0)),
        }
    }

    /// Prints `msg(held_back)` unless a message went out less than a period ago.
    fn note(&self, msg: impl FnOnce(u64) -> String) {
        let mut g = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if g.0.is_none_or(|t| now.duration_since(t) >= self.every) {
            eprintln!("{}", msg(g.1));
            *g = (Some(now), 0);
        } else {
            g.1 += 1;
        }
    }
}

/// `" (N more since the last message)"`, or nothing.
fn held_back(n: u64) -> String {
    if n == 0 {
        String::new()
    } else {
        format!(" ({n} more since the last message)")
    }
}

pub(crate) struct Ctx {
    pub(crate) policy: ArcSwap<Policy>,
    pub(crate) cfg: ServerConfig,
    log: Option<QueryLog>,
    pub(crate) up: Upstream,
    pub(crate) stats: Stats,
    pub(crate) stop: std::sync::atomic::AtomicBool,
    pub(crate) clients: Arc<Clients>,
    tcp: Arc<TcpConns>,
    refuse_log: RateLog,
    accept_log: RateLog,
}

/// Loads the config and runs the forwarder until SIGTERM/SIGINT.
pub fn run(opts: &RunOptions) -> Result<(), Diagnostic> {
    let cfg = load(opts)?;
    privs::raise_nofile();
    let rt = if opts.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(opts.threads)
            .enable_all()
            .build()
    }
    .map_err(|e| Diagnostic::error(format!("cannot start the runtime: {e}")))?;
    let result = rt.block_on(serve(opts, cfg));
    if let Ok((_, threads)) = &result {
        // They see `stop` within one epoll tick.
        while threads.iter().any(|t| !t.is_finished()) {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    rt.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok((ctx, threads)) => {
            let failed = threads
                .into_iter()
                .map(|t| t.join())
                .filter(|r| !matches!(r, Ok(true)))
                .count();
            let mut ctx = Arc::into_inner(ctx);
            if let Some(ctx) = ctx.as_mut() {
                let dropped = ctx.log.as_ref().map(QueryLog::dropped).unwrap_or(0);
                if let Some(log) = ctx.log.as_mut() {
                    log.shutdown();
                }
                let s = &ctx.stats;
                let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
                eprintln!(
                    "sekisho dns: stopped; queries {} blocked {} alerted {} forwarded {} upstream_failures {} malformed {} log_dropped {} \
                     refused {} rate_limited {} slipped {} inflight_limited {} tcp_rejected {} tcp_evicted {} accept_errors {}",
                    n(&s.queries),
                    n(&s.blocked),
                    n(&s.alerted),
                    n(&s.forwarded),
                    n(&s.upstream_failures),
                    n(&s.malformed),
                    dropped,
                    n(&s.refused),
                    n(&s.rate_limited),
                    n(&s.slipped),
                    n(&s.inflight_limited),
                    n(&ctx.tcp.rejected),
                    n(&ctx.tcp.evicted),
                    n(&s.accept_errors),
                );
            }
            if failed > 0 {
                return Err(Diagnostic::error(format!(
                    "{failed} UDP thread(s) failed (the panic message is above); the server stopped instead of going on without them"
                ))
                .with_hint("please report this as a bug, with the lines above"));
            }
            Ok(())
        }
        Err(d) => Err(d),
    }
}

fn load(opts: &RunOptions) -> Result<config::Config, Diagnostic> {
    let mut cfg = config::load(&opts.config)?;
    if opts.dry_run {
        cfg.policy.mode = Mode::Alert;
    }
    Ok(cfg)
}

fn summary(p: &Policy) -> String {
    let names: usize = p.lists.iter().map(|l| l.set.len()).sum();
    let rules: usize = p.groups.iter().map(|g| g.rules.len()).sum();
    format!(
        "{} lists, {names} names, {} groups, {rules} rules, mode {}",
        p.lists.len(),
        p.groups.len(),
        if p.mode == Mode::Alert {
            "alert"
        } else {
            "enforce"
        }
    )
}

async fn serve(
    opts: &RunOptions,
    cfg: config::Config,
) -> Result<(Arc<Ctx>, Vec<std::thread::JoinHandle<bool>>), Diagnostic> {
    // Handlers first: a SIGHUP that arrives while the sockets are being bound must not kill
    // the process (the default action), and SIGTERM must still stop it cleanly.
    use tokio::signal::unix::{signal, SignalKind};
    let sig =
        |k| signal(k).map_err(|e| Diagnostic::error(format!("cannot install signal handler: {e}")));
    let mut hup = sig(SignalKind::hangup())?;
    let mut term = sig(SignalKind::terminate())?;
    let mut int = sig(SignalKind::interrupt())?;
    let log = match &cfg.server.query_log {
        Some(q) => Some(QueryLog::start(q).map_err(|e| {
            Diagnostic::error(format!("cannot open query log '{}': {e}", q.path.display()))
        })?),
        None => None,
    };
    let up = Upstream::new(
        cfg.server.upstreams.clone(),
        cfg.server.upstream_timeout,
        cfg.server.upstream_attempts,
    );
    let mut udp = Vec::new();
    let mut tcp = Vec::new();
    for addr in &cfg.server.listen {
        let err = |e: std::io::Error| Diagnostic::error(format!("cannot listen on {addr}: {e}"));
        let u = std::net::UdpSocket::bind(addr).map_err(err)?;
        grow_rcvbuf(&u, UDP_RCVBUF);
        udp.push(Arc::new(u));
        tcp.push(TcpListener::bind(addr).await.map_err(err)?);
    }
    if let (Some(to), Some(user)) = (cfg.server.run_as, &cfg.server.user) {
        if privs::is_root() {
            if to.uid != 0 {
                if let Some(q) = &cfg.server.query_log {
                    // lchown: never through a link. The writer keeps its open descriptor; this
                    // lets it reopen the file after a rotation.
                    let _ = std::os::unix::fs::lchown(&q.path, Some(to.uid), Some(to.gid));
                }
            }
            privs::drop_to(to).map_err(|e| {
                Diagnostic::error(format!("cannot drop privileges to user '{user}': {e}"))
                    .with_hint("check the user: and group: keys; or start sekisho as that user")
            })?;
            eprintln!(
                "sekisho dns: running as user {} (uid {}, gid {})",
                privs::user_name(to.uid),
                to.uid,
                to.gid
            );
        } else {
            eprintln!("sekisho dns: warning: not started as root; 'user: {user}' is ignored");
        }
    }
    let info = summary(&cfg.policy);
    let lim = cfg.server.limits.clone();
    let ctx = Arc::new(Ctx {
        policy: ArcSwap::from_pointee(cfg.policy),
        cfg: cfg.server,
        log,
        up,
        stats: Stats::default(),
        stop: std::sync::atomic::AtomicBool::new(false),
        tcp: Arc::new(TcpConns::new(lim.tcp_clients, lim.tcp_clients_per_client)),
        clients: Arc::new(Clients::new(lim)),
        refuse_log: RateLog::new(Duration::from_secs(10)),
        accept_log: RateLog::new(Duration::from_secs(60)),
    });
    let mut threads = Vec::new();
    for s in &udp {
        for _ in 0..opts.threads.max(1) {
            let w =
                crate::udp::Worker::new(ctx.clone(), s.clone(), tokio::runtime::Handle::current())
                    .map_err(|e| Diagnostic::error(format!("cannot start a UDP thread: {e}")))?;
            let c = ctx.clone();
            let t = std::thread::Builder::new()
                .name("dns-udp".into())
                .spawn(move || {
                    let ok =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| w.run())).is_ok();
                    if !ok {
                        // A bug, not input (the parsers are total): stop the whole server, so
                        // the failure is seen instead of UDP going quiet while TCP answers.
                        c.stop.store(true, Ordering::Relaxed);
                        // SAFETY: signalling our own process; the main loop exits on SIGTERM.
                        unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
                    }
                    ok
                })
                .map_err(|e| Diagnostic::error(format!("cannot start a UDP thread: {e}")))?;
            threads.push(t);
        }
    }
    for l in tcp {
        tokio::spawn(tcp_accept(ctx.clone(), l));
    }
    let listen: Vec<String> = ctx.cfg.listen.iter().map(|a| a.to_string()).collect();
    eprintln!(
        "sekisho dns: listening on {} (UDP, TCP); {info}",
        listen.join(", ")
    );

    loop {
        tokio::select! {
            _ = hup.recv() => {
                let o = opts.clone();
                match tokio::task::spawn_blocking(move || load(&o)).await {
                    Ok(Ok(new)) => {
                        let info = summary(&new.policy);
                        let restart = ctx.cfg.restart_keys_changed(&new.server);
                        ctx.policy.store(Arc::new(new.policy));
                        eprintln!("sekisho dns: reloaded; {info}");
                        if !restart.is_empty() {
                            eprintln!(
                                "sekisho dns: warning: changed keys need a restart to apply: {}; still running with the old values",
                                restart.join(", ")
                            );
                        }
                    }
                    Ok(Err(d)) => eprintln!("{}sekisho dns: reload failed; keeping the previous policy", d.render()),
                    Err(e) => eprintln!("sekisho dns: reload failed ({e}); keeping the previous policy"),
                }
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    ctx.stop.store(true, Ordering::Relaxed);
    Ok((ctx, threads))
}

/// Asks for a larger receive buffer (SO_RCVBUFFORCE as root, else SO_RCVBUF up to the
/// system's `rmem_max`); best effort.
fn grow_rcvbuf(s: &std::net::UdpSocket, bytes: i32) {
    use std::os::fd::AsRawFd;
    for opt in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
        // SAFETY: a valid fd and a pointer to an int of the size given.
        let rc = unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&bytes as *const i32).cast(),
                std::mem::size_of::<i32>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            return;
        }
    }
}

async fn tcp_accept(ctx: Arc<Ctx>, l: TcpListener) {
    loop {
        let (stream, src) = match l.accept().await {
            Ok(x) => x,
            Err(e) => {
                ctx.stats.accept_errors.fetch_add(1, Ordering::Relaxed);
                let exhausted = matches!(
                    e.raw_os_error(),
                    Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
                );
                if exhausted {
                    ctx.accept_log.note(|n| {
                        format!(
                            "sekisho dns: TCP accept failed: {e}; pausing accepts for {} ms{}",
                            ACCEPT_BACKOFF.as_millis(),
                            held_back(n)
                        )
                    });
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
                // Other errors (ECONNABORTED: the client left first) concern one connection.
                continue;
            }
        };
        let exempt = ctx.clients.exempt(src.ip());
        let Some(slot) = ctx.tcp.admit(src.ip(), exempt) else {
            drop(stream);
            continue;
        };
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let _ = tcp_client(&ctx, stream, src, &slot).await;
            drop(slot);
        });
    }
}

async fn tcp_client(
    ctx: &Ctx,
    mut s: TcpStream,
    src: SocketAddr,
    slot: &ConnSlot,
) -> std::io::Result<()> {
    let lim = ctx.clients.config();
    let allowed = ctx.allowed(src);
    loop {
        slot.set_idle(true);
        let mut len = [0u8; 2];
        tokio::select! {
            r = tokio::time::timeout(lim.tcp_idle, s.read_exact(&mut len)) => match r {
                Ok(Ok(_)) => {}
                _ => return Ok(()),
            },
            // Closed to make room for a new connection.
            _ = slot.kill.notified() => return Ok(()),
        }
        slot.set_idle(false);
        let mut query = vec![0u8; u16::from_be_bytes(len) as usize];
        tokio::time::timeout(lim.tcp_idle, s.read_exact(&mut query))
            .await
            .map_err(|_| std::io::ErrorKind::TimedOut)??;
        let resp = if !allowed {
            if query.len() < wire::HEADER_LEN || query[2] & 0x80 != 0 {
                None
            } else {
                ctx.refuse(&query, src)
            }
        } else {
            match prepare(ctx, query, src, Transport::Tcp) {
                Step::Answer(r) => Some(r),
                Step::Drop => None,
                Step::Forward(job) => match ctx.clients.begin_upstream(src.ip()) {
                    Some(_slot) => forward(ctx, job).await,
                    None => {
                        ctx.stats.inflight_limited.fetch_add(1, Ordering::Relaxed);
                        let qend = wire::question_end(&job.query);
                        wire::respond(
                            &job.query,
                            qend,
                            rcode::REFUSED,
                            &[],
                            0,
                            job.edns,
                            ctx.cfg.max_udp_payload,
                        )
                    }
                },
            }
        };
        let Some(resp) = resp else { continue };
        let n = u16::try_from(resp.len()).unwrap_or(u16::MAX);
        let mut out = Vec::with_capacity(resp.len() + 2);
        out.extend_from_slice(&n.to_be_bytes());
        out.extend_from_slice(&resp[..n as usize]);
        tokio::time::timeout(lim.tcp_write, s.write_all(&out))
            .await
            .map_err(|_| std::io::ErrorKind::TimedOut)??;
    }
}

pub(crate) enum Step {
    Answer(Vec<u8>),
    Forward(Job),
    Drop,
}

pub(crate) struct Job {
    query: Vec<u8>,
    pub(crate) upstream_query: Vec<u8>,
    pub(crate) client: SocketAddr,
    transport: Transport,
    qend: usize,
    qname: String,
    qtype: u16,
    edns: Option<EdnsInfo>,
    policy: Arc<Policy>,
    decision: Decision,
}

impl Ctx {
    /// Whether `client` is inside `allow_clients`.
    pub(crate) fn allowed(&self, client: SocketAddr) -> bool {
        acl::any_contains(&self.cfg.allow_clients, client.ip())
    }

    /// The REFUSED answer for a client outside `allow_clients` (counted, and noted on stderr
    /// at most every 10 s); `None` when the query is too broken to answer.
    pub(crate) fn refuse(&self, query: &[u8], client: SocketAddr) -> Option<Vec<u8>> {
        self.stats.refused.fetch_add(1, Ordering::Relaxed);
        self.refuse_log.note(|n| {
            format!(
                "sekisho dns: refused a query from {} (not in allow_clients){}",
                client.ip(),
                held_back(n)
            )
        });
        wire::respond(
            query,
            wire::question_end(query),
            rcode::REFUSED,
            &[],
            0,
            None,
            self.cfg.max_udp_payload,
        )
    }

    fn log(&self, ev: LogEvent) {
        if let Some(l) = &self.log {
            l.log(ev);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn log_answer(
        &self,
        client: SocketAddr,
        transport: Transport,
        query: &[u8],
        response: &[u8],
        decision: Option<(Arc<Policy>, Decision, Option<String>)>,
    ) {
        if self.log.is_some() {
            self.log(LogEvent::new(
                SystemTime::now(),
                client,
                transport,
                query,
                response,
                decision,
            ));
        }
    }
}

pub(crate) fn prepare(ctx: &Ctx, query: Vec<u8>, client: SocketAddr, transport: Transport) -> Step {
    ctx.stats.queries.fetch_add(1, Ordering::Relaxed);
    let policy = ctx.policy.load_full();
    match classify(
        &policy,
        &query,
        ctx.cfg.max_udp_payload,
        ctx.cfg.edns_client_subnet,
    ) {
        Classified::Drop => Step::Drop,
        Classified::Error(r) => {
            ctx.stats.malformed.fetch_add(1, Ordering::Relaxed);
            ctx.log_answer(client, transport, &query, &r, None);
            Step::Answer(r)
        }
        Classified::Blocked(r, decision) => {
            ctx.stats.blocked.fetch_add(1, Ordering::Relaxed);
            ctx.log_answer(
                client,
                transport,
                &query,
                &r,
                Some((policy, decision, None)),
            );
            Step::Answer(r)
        }
        Classified::Forward(f) => Step::Forward(Job {
            upstream_query: f.upstream_query,
            query,
            client,
            transport,
            qend: f.qend,
            qname: f.qname,
            qtype: f.qtype,
            edns: f.edns,
            policy,
            decision: f.decision,
        }),
    }
}

/// Forwards `job` upstream (the TCP path; UDP queries are forwarded by [`crate::udp`]) and
/// returns what the client gets, as [`finish`] makes it.
async fn forward(ctx: &Ctx, job: Job) -> Option<Vec<u8>> {
    ctx.stats.forwarded.fetch_add(1, Ordering::Relaxed);
    let resp = ctx.up.query(&job.upstream_query).await;
    finish(ctx, job, resp)
}

/// What the client gets for a forwarded query once the upstream answered (`resp`, with the
/// upstream's ID) or every attempt failed (`None`): the answer with the client's ID back,
/// unless redirection inspection blocks it, truncation replaces it, or `fail_mode` turns a
/// failure into SERVFAIL (closed) or silence (open). Logged here, once per query.
pub(crate) fn finish(ctx: &Ctx, job: Job, resp: Option<Vec<u8>>) -> Option<Vec<u8>> {
    let our_payload = ctx.cfg.max_udp_payload;
    let closed = ctx.cfg.fail_mode == FailMode::Closed;
    let servfail = |decision| {
        let r = wire::respond(
            &job.query,
            Some(job.qend),
            rcode::SERVFAIL,
            &[],
            0,
            job.edns,
            our_payload,
        )?;
        ctx.log_answer(job.client, job.transport, &job.query, &r, decision);
        Some(r)
    };
    let first = Some((job.policy.clone(), job.decision, None));
    let Some(mut resp) = resp else {
        ctx.stats.upstream_failures.fetch_add(1, Ordering::Relaxed);
        return if closed { servfail(first) } else { None };
    };
    wire::set_id(&mut resp, wire::id(&job.query).unwrap_or(0));
    let mut decision = job.decision;
    let mut chain_name = None;
    let trusted = decision
        .hit
        .is_some_and(|h| job.policy.parts(h).1.redirection == crate::policy::Redirection::Trust);
    let may_chain = resp.len() >= 8 && u16::from_be_bytes([resp[6], resp[7]]) > 0;
    if !trusted && may_chain && job.policy.inspects_chains() {
        match Message::from_vec(&resp) {
            Ok(m) => {
                let chain = redirection_chain(&m);
                if !chain.is_empty() {
                    let refs: Vec<&str> = chain.iter().map(String::as_str).collect();
                    decision = job.policy.evaluate_response(&job.qname, job.qtype, &refs);
                    chain_name = decision.chain_index.and_then(|i| chain.get(i).cloned());
                }
            }
            Err(_) if closed => return servfail(first),
            Err(_) => {}
        }
    }
    let logged = Some((job.policy.clone(), decision, chain_name));
    if decision.verdict == Verdict::Block {
        ctx.stats.blocked.fetch_add(1, Ordering::Relaxed);
        if let Some((_, r, _)) = decision.hit.map(|h| job.policy.parts(h)) {
            if let Action::Block(br) = &r.action {
                let out = wire::block_answer(&job.query, job.qend, br, job.edns, our_payload)?;
                ctx.log_answer(job.client, job.transport, &job.query, &out, logged);
                return Some(out);
            }
        }
    }
    if decision.verdict == Verdict::Alert {
        ctx.stats.alerted.fetch_add(1, Ordering::Relaxed);
    }
    if job.transport == Transport::Udp {
        let limit = job
            .edns
            .map(|e| e.payload.clamp(512, our_payload.max(512)))
            .unwrap_or(512) as usize;
        if resp.len() > limit {
            let rc = wire::rcode_of(&resp).unwrap_or(0);
            let mut tc = wire::respond(
                &job.query,
                Some(job.qend),
                rc,
                &[],
                0,
                job.edns,
                our_payload,
            )?;
            tc[2] |= 0x02;
            // Keep the upstream's AA bit; RA as we answer.
            tc[2] |= resp[2] & 0x04;
            ctx.log_answer(job.client, job.transport, &job.query, &tc, logged);
            return Some(tc);
        }
    }
    ctx.log_answer(job.client, job.transport, &job.query, &resp, logged);
    Some(resp)
}

/// Sockets per upstream in the pool (see [`Upstream`]).
pub const POOL_SOCKETS: usize = 32;
/// Queries one pooled socket carries before it is retired and replaced by a socket on a new
/// random port.
pub const SOCKET_QUERIES: u32 = 32;
/// Age after which a pooled socket takes no new query (so ports move under light load too).
pub const SOCKET_AGE: Duration = Duration::from_millis(500);

/// The upstream client, with RFC 5452 defences. Each upstream has a pool of
/// [`POOL_SOCKETS`] UDP sockets, each connected to it from its own random ephemeral port
/// (the kernel's choice at `connect`). A query goes out on a socket picked at random from the
/// pool, with a DNS ID from the OS CSPRNG that no other query on that socket is waiting with;
/// a socket is retired after [`SOCKET_QUERIES`] queries or [`SOCKET_AGE`], whichever comes
/// first, and replaced by a new one on a new random port. So every query's source port is
/// random and moves all the time, and an off-path attacker must hit one of the 32 open ports
/// (of ~28,000) and the 16-bit ID and the question, for a window that closes within half a
/// second; in exchange, a forwarded query costs a `send` and a `recv` instead of five more
/// system calls for a socket of its own (most of the forwarder's CPU under load).
///
/// A reader task per socket accepts a datagram only as the answer to a waiting query with that
/// ID, QR=1 and the same question (name case-insensitively, type, class); anything else is
/// ignored and the real answer is still awaited (RFC 5452 §9.1). An ICMP port unreachable
/// (ECONNREFUSED on the connected socket) fails the queries waiting on that socket at once, so
/// they move on to the next upstream instead of waiting out the timeout.
pub(crate) struct Upstream {
    pub(crate) addrs: Vec<SocketAddr>,
    pools: Vec<Pool>,
    pub(crate) timeout: Duration,
    pub(crate) attempts: u32,
    /// One permit per outstanding upstream query, TCP and UDP paths together. When none is
    /// free the attempt counts as an upstream failure (fail_mode).
    pub(crate) inflight: Arc<Semaphore>,
    /// The upstream that answered last; queries start there, so a dead first upstream costs
    /// one timeout, not one per query.
    pub(crate) preferred: AtomicUsize,
}

/// How one attempt against one upstream ended.
#[derive(Debug)]
enum Attempt {
    Answer(Vec<u8>),
    /// Refused, unreachable, or no matching answer before the timeout.
    Failed,
}

/// A query waiting on a pooled socket: its bytes (for the question check) and where the
/// answer goes.
struct Waiter {
    q: Vec<u8>,
    qend: usize,
    tx: tokio::sync::oneshot::Sender<Attempt>,
}

/// One pooled socket, connected to one upstream.
struct PoolSock {
    sock: UdpSocket,
    pending: Mutex<rustc_hash::FxHashMap<u16, Waiter>>,
    born: Instant,
    used: std::sync::atomic::AtomicU32,
    retired: std::sync::atomic::AtomicBool,
}

/// The sockets of one upstream.
struct Pool {
    addr: SocketAddr,
    slots: Mutex<Vec<Option<Arc<PoolSock>>>>,
}

impl PoolSock {
    fn fail_all(&self) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        for (_, w) in p.drain() {
            let _ = w.tx.send(Attempt::Failed);
        }
    }

    fn idle_and_retired(&self) -> bool {
        self.retired.load(Ordering::Relaxed)
            && self.pending.lock().map(|p| p.is_empty()).unwrap_or(true)
    }

    /// Reads answers and hands each to the query it answers; ends once the socket is retired
    /// and no query waits on it.
    async fn read(self: Arc<Self>, idle: Duration) {
        // Uninitialised capacity (`recv_buf`): zeroing 64 KiB per datagram costs qps.
        let mut buf: Vec<u8> = Vec::with_capacity(65_535);
        loop {
            buf.clear();
            match tokio::time::timeout(idle, self.sock.recv_buf(&mut buf)).await {
                Err(_) => {}
                Ok(Ok(n)) => {
                    let Some(r) = buf.get(..n) else { continue };
                    let Some(id) = wire::id(r) else { continue };
                    let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
                    let ok = p
                        .get(&id)
                        .is_some_and(|w| is_response(r) && same_question(r, &w.q, w.qend));
                    if ok {
                        if let Some(w) = p.remove(&id) {
                            let _ = w.tx.send(Attempt::Answer(r.to_vec()));
                        }
                    }
                    // Otherwise forged or stray: ignored, the real answer is still awaited.
                }
                Ok(Err(e)) => {
                    // ECONNREFUSED (ICMP port unreachable) and the like: whoever waits here
                    // moves on to the next upstream now.
                    self.fail_all();
                    if e.raw_os_error() != Some(libc::ECONNREFUSED) {
                        self.retired.store(true, Ordering::Relaxed);
                    }
                }
            }
            if self.idle_and_retired() {
                return;
            }
        }
    }
}

impl Pool {
    fn new(addr: SocketAddr) -> Pool {
        Pool {
            addr,
            slots: Mutex::new(vec![None; POOL_SOCKETS]),
        }
    }

    /// A random socket of the pool, replaced first when it is missing, retired, too old or
    /// has carried its share of queries.
    fn pick(&self, idle: Duration) -> Option<Arc<PoolSock>> {
        let i = usize::from(random_u16()?) % POOL_SOCKETS;
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = &slots[i] {
            let fresh = !s.retired.load(Ordering::Relaxed)
                && s.used.load(Ordering::Relaxed) < SOCKET_QUERIES
                && s.born.elapsed() < SOCKET_AGE;
            if fresh {
                return Some(s.clone());
            }
            s.retired.store(true, Ordering::Relaxed);
        }
        let local: SocketAddr = if self.addr.is_ipv4() {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let std_sock = std::net::UdpSocket::bind(local).ok()?;
        std_sock.connect(self.addr).ok()?;
        std_sock.set_nonblocking(true).ok()?;
        let sock = UdpSocket::from_std(std_sock).ok()?;
        let ps = Arc::new(PoolSock {
            sock,
            pending: Mutex::new(Default::default()),
            born: Instant::now(),
            used: Default::default(),
            retired: Default::default(),
        });
        tokio::spawn(ps.clone().read(idle));
        slots[i] = Some(ps.clone());
        Some(ps)
    }
}

impl Upstream {
    fn new(addrs: Vec<SocketAddr>, timeout: Duration, attempts: u32) -> Upstream {
        Upstream {
            pools: addrs.iter().map(|a| Pool::new(*a)).collect(),
            addrs,
            timeout,
            attempts,
            inflight: Arc::new(Semaphore::new(MAX_INFLIGHT)),
            preferred: AtomicUsize::new(0),
        }
    }

    /// Sends `query` upstream with failover; returns the answer (ID as sent upstream).
    async fn query(&self, query: &[u8]) -> Option<Vec<u8>> {
        let n = self.addrs.len();
        if n == 0 {
            return None;
        }
        let qend = wire::question_end(query)?;
        let start = self.preferred.load(Ordering::Relaxed);
        for attempt in 0..self.attempts as usize {
            let i = (start + attempt) % n;
            let Ok(_permit) = self.inflight.try_acquire() else {
                continue;
            };
            let mut q = query.to_vec();
            let resp = match self.attempt(&self.pools[i], &mut q, qend).await {
                Attempt::Answer(r) => r,
                Attempt::Failed => continue,
            };
            self.preferred.store(i, Ordering::Relaxed);
            if wire::is_truncated(&resp) {
                if let Some(full) = tcp_query(self.addrs[i], &q, self.timeout).await {
                    return Some(full);
                }
            }
            return Some(resp);
        }
        None
    }

    /// One attempt on `pool`; sets the ID of `q` to the one it went out with.
    async fn attempt(&self, pool: &Pool, q: &mut [u8], qend: usize) -> Attempt {
        let Some(ps) = pool.pick(self.timeout) else {
            return Attempt::Failed;
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let id = {
            let mut p = ps.pending.lock().unwrap_or_else(|e| e.into_inner());
            let mut id = None;
            for _ in 0..8 {
                match random_u16() {
                    Some(c) if !p.contains_key(&c) => {
                        id = Some(c);
                        break;
                    }
                    Some(_) => {}
                    None => return Attempt::Failed,
                }
            }
            let Some(id) = id else {
                return Attempt::Failed;
            };
            wire::set_id(q, id);
            p.insert(
                id,
                Waiter {
                    q: q[..qend].to_vec(),
                    qend,
                    tx,
                },
            );
            id
        };
        ps.used.fetch_add(1, Ordering::Relaxed);
        let forget = || {
            ps.pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
        };
        if ps.sock.send(q).await.is_err() {
            forget();
            return Attempt::Failed;
        }
        match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(a)) => a,
            _ => {
                forget();
                Attempt::Failed
            }
        }
    }
}

/// 16 random bits from the OS CSPRNG (`getrandom`), for DNS IDs and pool slots; `None` if the
/// OS fails, and then the query fails rather than going out with a guessable ID. Each thread
/// takes [`RANDOM_BUF`] bytes per system call and hands them out two at a time: the bytes are
/// the kernel's, only the call is shared (a `getrandom` per ID was a tenth of the forwarder's
/// system calls), and they never leave the thread that drew them.
pub(crate) fn random_u16() -> Option<u16> {
    use std::cell::RefCell;
    thread_local! {
        static POOL: RefCell<([u8; RANDOM_BUF], usize)> = const { RefCell::new(([0; RANDOM_BUF], RANDOM_BUF)) };
    }
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        let (buf, used) = &mut *p;
        if *used + 2 > RANDOM_BUF {
            getrandom::fill(buf).ok()?;
            *used = 0;
        }
        let v = u16::from_ne_bytes([buf[*used], buf[*used + 1]]);
        // Spent bytes are wiped so a later look at memory does not show past IDs.
        buf[*used] = 0;
        buf[*used + 1] = 0;
        *used += 2;
        Some(v)
    })
}

/// Bytes of OS randomness each thread draws at once for [`random_u16`].
pub(crate) const RANDOM_BUF: usize = 256;

/// Whether `r` is a response (QR=1).
pub(crate) fn is_response(r: &[u8]) -> bool {
    r.len() > 2 && r[2] & 0x80 != 0
}

/// Whether `resp` answers the question of `q` (which ends at `qend`): the name compared
/// case-insensitively (some servers change its case; the client still gets its own case back),
/// type and class exactly.
pub(crate) fn same_question(resp: &[u8], q: &[u8], qend: usize) -> bool {
    let Some(name_end) = qend.checked_sub(4) else {
        return false;
    };
    if resp.len() < qend || name_end < wire::HEADER_LEN {
        return false;
    }
    // Same QDCOUNT, then the name (ASCII case folded: label lengths are < 64 so never folded),
    // then QTYPE and QCLASS byte for byte.
    resp[4..6] == q[4..6]
        && resp[wire::HEADER_LEN..name_end].eq_ignore_ascii_case(&q[wire::HEADER_LEN..name_end])
        && resp[name_end..qend] == q[name_end..qend]
}

pub(crate) async fn tcp_query(addr: SocketAddr, q: &[u8], timeout: Duration) -> Option<Vec<u8>> {
    let fut = async {
        let mut s = TcpStream::connect(addr).await.ok()?;
        let mut out = Vec::with_capacity(q.len() + 2);
        out.extend_from_slice(&u16::try_from(q.len()).ok()?.to_be_bytes());
        out.extend_from_slice(q);
        s.write_all(&out).await.ok()?;
        let mut len = [0u8; 2];
        s.read_exact(&mut len).await.ok()?;
        let mut resp = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut resp).await.ok()?;
        // As over UDP: our ID, QR=1 and our question, or no answer at all (a connection
        // carries one query, so anything else is not the answer we wait for).
        let qend = wire::question_end(q)?;
        (wire::id(&resp) == wire::id(q) && is_response(&resp) && same_question(&resp, q, qend))
            .then_some(resp)
    };
    tokio::time::timeout(timeout, fut).await.ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// A query for `name` type A, class IN, ID 0x1234, RD.
    fn query(name: &str) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in name.split('.') {
            q.push(l.len() as u8);
            q.extend_from_slice(l.as_bytes());
        }
        q.extend_from_slice(&[0, 0, 1, 0, 1]);
        q
    }

    /// An answer to `q` (same ID and question) with one A record `addr`.
    fn answer(q: &[u8], addr: [u8; 4]) -> Vec<u8> {
        let mut r = q.to_vec();
        r[2] = 0x81;
        r[3] = 0x80;
        r[7] = 1;
        r.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        r.extend_from_slice(&addr);
        r
    }

    /// A fake upstream on loopback: for each query, first sends a forged answer with the right
    /// ID and source but the wrong question, then the real answer. Records source ports.
    async fn forging_upstream() -> (SocketAddr, tokio::sync::mpsc::UnboundedReceiver<u16>) {
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sock.local_addr().unwrap();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            while let Ok((n, from)) = sock.recv_from(&mut buf).await {
                let q = buf[..n].to_vec();
                let _ = tx.send(from.port());
                let mut forged_q = query("evil.example");
                forged_q[..2].copy_from_slice(&q[..2]);
                let _ = sock.send_to(&answer(&forged_q, [6, 6, 6, 6]), from).await;
                // Right name, wrong type (AAAA): also forged.
                let mut wrong_type = answer(&q, [6, 6, 6, 7]);
                wrong_type[n - 3] = 28;
                let _ = sock.send_to(&wrong_type, from).await;
                // The real answer, with the name's case changed as some servers do.
                let mut real = answer(&q, [192, 0, 2, 1]);
                real[13] = real[13].to_ascii_uppercase();
                let _ = sock.send_to(&real, from).await;
            }
        });
        (addr, rx)
    }

    #[tokio::test]
    async fn forged_reply_with_right_id_wrong_question_does_not_discard_real_answer() {
        let (addr, _ports) = forging_upstream().await;
        let up = Upstream::new(vec![addr], Duration::from_secs(2), 1);
        let q = query("www.example.com");
        let resp = up.query(&q).await.expect("the real answer is delivered");
        assert_eq!(&resp[resp.len() - 4..], &[192, 0, 2, 1]);
        assert_ne!(wire::id(&resp), None);
    }

    #[tokio::test]
    async fn source_ports_and_ids_vary_across_queries() {
        let (addr, mut ports) = forging_upstream().await;
        let up = Upstream::new(vec![addr], Duration::from_secs(2), 1);
        let mut ids = std::collections::HashSet::new();
        // Random sockets of the pool, each retired after SOCKET_QUERIES queries: 200 queries
        // leave from many ports, each port used by few of them.
        let mut per_port = std::collections::HashMap::<u16, usize>::new();
        for _ in 0..200 {
            let resp = up.query(&query("www.example.com")).await.unwrap();
            ids.insert(wire::id(&resp));
        }
        while let Ok(p) = ports.try_recv() {
            *per_port.entry(p).or_default() += 1;
        }
        assert!(
            per_port.len() >= 20,
            "source ports barely vary: {per_port:?}"
        );
        assert!(
            per_port.values().all(|n| *n <= SOCKET_QUERIES as usize),
            "a port carried more than {SOCKET_QUERIES} queries: {per_port:?}"
        );
        assert!(ids.len() >= 190, "IDs barely vary: {}", ids.len());
        // Once the pool's sockets are older than SOCKET_AGE, queries leave from new ports.
        tokio::time::sleep(SOCKET_AGE + Duration::from_millis(50)).await;
        for _ in 0..50 {
            up.query(&query("www.example.com")).await.unwrap();
        }
        let mut reused = 0;
        while let Ok(p) = ports.try_recv() {
            reused += usize::from(per_port.contains_key(&p));
        }
        assert!(reused <= 2, "{reused} queries left from old ports");
    }

    #[tokio::test]
    async fn full_inflight_table_fails_at_once() {
        let (addr, _ports) = forging_upstream().await;
        let up = Upstream::new(vec![addr], Duration::from_secs(3), 2);
        let all = up.inflight.try_acquire_many(MAX_INFLIGHT as u32).unwrap();
        let t = Instant::now();
        assert!(up.query(&query("www.example.com")).await.is_none());
        assert!(t.elapsed() < Duration::from_millis(100));
        drop(all);
        assert!(up.query(&query("www.example.com")).await.is_some());
    }

    /// A TCP upstream answering one query per connection with `mangle(answer)`.
    async fn tcp_upstream(mangle: fn(&[u8], Vec<u8>) -> Vec<u8>) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let mut len = [0u8; 2];
                s.read_exact(&mut len).await.unwrap();
                let mut q = vec![0u8; u16::from_be_bytes(len) as usize];
                s.read_exact(&mut q).await.unwrap();
                let r = mangle(&q, answer(&q, [192, 0, 2, 1]));
                let mut out = (r.len() as u16).to_be_bytes().to_vec();
                out.extend_from_slice(&r);
                let _ = s.write_all(&out).await;
            }
        });
        addr
    }

    #[tokio::test]
    async fn tcp_upstream_answer_needs_qr_and_the_same_question() {
        let t = Duration::from_secs(2);
        let q = query("www.example.com");
        let good = tcp_upstream(|_, r| r).await;
        assert!(tcp_query(good, &q, t).await.is_some());
        // Right ID, QR=0: not an answer.
        let no_qr = tcp_upstream(|_, mut r| {
            r[2] &= 0x7f;
            r
        })
        .await;
        assert!(tcp_query(no_qr, &q, t).await.is_none());
        // Right ID and QR, another name.
        let other = tcp_upstream(|q, _| {
            let mut f = query("evil.example");
            f[..2].copy_from_slice(&q[..2]);
            answer(&f, [6, 6, 6, 6])
        })
        .await;
        assert!(tcp_query(other, &q, t).await.is_none());
        // Right name, another type.
        let wrong_type = tcp_upstream(|q, mut r| {
            r[q.len() - 3] = 28;
            r
        })
        .await;
        assert!(tcp_query(wrong_type, &q, t).await.is_none());
    }

    #[tokio::test]
    async fn closed_upstream_port_fails_over_at_once() {
        // A port with nothing listening: bind, note it, close.
        let closed = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let (good, _ports) = forging_upstream().await;
        let up = Upstream::new(vec![closed, good], Duration::from_secs(3), 2);
        let t = Instant::now();
        let resp = up.query(&query("www.example.com")).await.unwrap();
        assert_eq!(&resp[resp.len() - 4..], &[192, 0, 2, 1]);
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "{:?}",
            t.elapsed()
        );
        // Only the refused upstream: every attempt fails fast.
        let up = Upstream::new(vec![closed], Duration::from_secs(3), 3);
        let t = Instant::now();
        assert!(up.query(&query("www.example.com")).await.is_none());
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "{:?}",
            t.elapsed()
        );
    }
}
