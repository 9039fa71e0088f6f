//! The UDP fast path: each UDP thread ([`Worker`]) owns a level-triggered epoll over its listen
//! socket and its own pool of upstream sockets, so a query is received, classified, sent
//! upstream, matched to its answer and answered on one thread, with no task hand-off or
//! cross-thread wake-up on the way. (The earlier design handed forwarded queries to tokio
//! tasks: an `eventfd` write and a thread switch per query, and a `getrandom` call per ID,
//! which cost a third of the forwarder's CPU under load.) TCP clients and TCP retries of
//! truncated answers stay on the tokio runtime.
//!
//! The upstream defences are the async client's ([`crate::server`] has them in full): each
//! attempt leaves on a socket picked at random from [`POOL_SOCKETS`] per upstream, each
//! connected from its own random ephemeral port and retired after [`SOCKET_QUERIES`] queries or
//! [`SOCKET_AGE`]; the ID is random ([`random_u16`]) and unused on that socket; only a reply
//! with that ID, QR=1 and the same question completes the query (anything else is ignored and
//! the real answer still awaited, RFC 5452 §9.1). ECONNREFUSED (ICMP port unreachable) moves
//! the socket's queries to their next attempt at once; `upstream_timeout` moves one that got no
//! answer. The in-flight cap ([`crate::server::MAX_INFLIGHT`]) is shared with the TCP path.
//!
//! Memory: at most [`crate::server::MAX_INFLIGHT`] queries wait (with their bytes), on at most
//! `POOL_SOCKETS` live sockets per upstream per thread plus retired ones still waiting for
//! answers (sockets idle past `SOCKET_AGE` are closed, so a quiet thread holds none); the
//! timeout queue holds at most [`DEADLINES_COMPACT`] 32-byte entries. A panic in a worker
//! stops the server (see `server::run`) rather than leaving its socket silently unserved.

use std::collections::VecDeque;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;
use tokio::sync::OwnedSemaphorePermit;

use crate::limits::{Admit, Inflight};
use crate::mmsg::{self, RecvBatch};
use crate::querylog::Transport;
use crate::server::{
    finish, is_response, prepare, random_u16, same_question, tcp_query, Ctx, Job, Step,
    POOL_SOCKETS, SOCKET_AGE, SOCKET_QUERIES,
};
use crate::wire;

/// The epoll token of the listen socket; pool sockets use their index in [`Worker::socks`].
const LISTEN: u64 = u64::MAX;
/// Longest sleep in `epoll_wait`, so the thread notices shutdown.
const TICK: Duration = Duration::from_millis(200);
/// Timeout-queue length at which entries of answered queries are dropped (amortised O(1): at
/// most [`crate::server::MAX_INFLIGHT`] survive).
const DEADLINES_COMPACT: usize = 8 * crate::server::MAX_INFLIGHT;
/// Upstream datagrams read per readiness event (then the other sockets get their turn).
const ANSWERS_PER_EVENT: usize = 16;
/// Events taken per `epoll_wait`.
const EVENTS: usize = 64;

/// One UDP thread's state: its listen socket, epoll, upstream sockets and waiting queries.
pub(crate) struct Worker {
    ctx: Arc<Ctx>,
    listen: Arc<UdpSocket>,
    rt: tokio::runtime::Handle,
    ep: Epoll,
    batch: RecvBatch,
    /// Answers to send at the end of this turn of the loop, in one `sendmmsg` per batch.
    out: Vec<(Vec<u8>, SocketAddr)>,
    /// Per upstream, [`POOL_SOCKETS`] slots, each the index of a socket in `socks`.
    slots: Vec<Vec<Option<usize>>>,
    /// Upstream sockets, live and retired; `None` entries are free (listed in `free`).
    socks: Vec<Option<PoolSock>>,
    free: Vec<usize>,
    /// Attempt deadlines in time order (every attempt waits the same `upstream_timeout`).
    deadlines: VecDeque<Deadline>,
    /// Numbers attempts, so a deadline never acts on a later query that reuses the ID.
    next_attempt: u64,
    /// Receive buffer for upstream answers (a UDP datagram's largest size).
    answer: Vec<u8>,
    /// When idle sockets were last closed ([`Worker::sweep`]).
    swept: Instant,
}

/// One upstream socket, connected to its upstream from a random port.
struct PoolSock {
    sock: UdpSocket,
    upstream: usize,
    slot: usize,
    pending: FxHashMap<u16, Pending>,
    born: Instant,
    used: u32,
    retired: bool,
}

/// A forwarded query waiting for its upstream answer.
struct Pending {
    /// `job.upstream_query` carries the ID it went out with.
    job: Job,
    qend: usize,
    upstream: usize,
    /// Attempts made before this one.
    attempt: u32,
    number: u64,
    /// The client's in-flight slot and the global in-flight permit, both held to the end.
    slot: Inflight,
    permit: OwnedSemaphorePermit,
}

impl Pending {
    /// Moves to the next attempt, at the next upstream.
    fn advance(&mut self) {
        self.attempt += 1;
        self.upstream += 1;
    }

    /// What the client gets ([`finish`] with the upstream's answer, or `None` when every
    /// attempt failed), and where it goes; the in-flight slot and permit are given back.
    fn finish(self, ctx: &Ctx, resp: Option<Vec<u8>>) -> Option<(Vec<u8>, SocketAddr)> {
        let Pending {
            job, slot, permit, ..
        } = self;
        let client = job.client;
        let out = finish(ctx, job, resp);
        drop((slot, permit));
        out.map(|r| (r, client))
    }
}

struct Deadline {
    at: Instant,
    sock: usize,
    id: u16,
    number: u64,
}

impl Worker {
    /// A worker on `listen`; fails only when the kernel refuses an epoll instance.
    pub(crate) fn new(
        ctx: Arc<Ctx>,
        listen: Arc<UdpSocket>,
        rt: tokio::runtime::Handle,
    ) -> io::Result<Worker> {
        let ep = Epoll::new()?;
        // EPOLLEXCLUSIVE: with several threads on one socket, a datagram wakes one of them
        // (Linux 4.5 and later; older kernels refuse the flag and all of them wake).
        if let Err(e) = ep.add(listen.as_raw_fd(), LISTEN, libc::EPOLLEXCLUSIVE as u32) {
            if e.raw_os_error() != Some(libc::EINVAL) {
                return Err(e);
            }
            ep.add(listen.as_raw_fd(), LISTEN, 0)?;
        }
        let n = ctx.up.addrs.len();
        Ok(Worker {
            ctx,
            listen,
            rt,
            ep,
            batch: RecvBatch::new(),
            out: Vec::with_capacity(mmsg::BATCH),
            slots: vec![vec![None; POOL_SOCKETS]; n],
            socks: Vec::new(),
            free: Vec::new(),
            deadlines: VecDeque::new(),
            next_attempt: 0,
            answer: vec![0u8; 65_535],
            swept: Instant::now(),
        })
    }

    /// Serves until the server stops.
    pub(crate) fn run(mut self) {
        // SAFETY: epoll_event is plain data; all-zero is a valid value.
        let mut events: [libc::epoll_event; EVENTS] = unsafe { std::mem::zeroed() };
        while !self.ctx.stop.load(Ordering::Relaxed) {
            let wait = self
                .deadlines
                .front()
                .map(|d| d.at.saturating_duration_since(Instant::now()))
                .unwrap_or(TICK)
                .min(TICK);
            // Rounded up: waking a millisecond early would only spin.
            let ms = i32::try_from(wait.as_micros().div_ceil(1000)).unwrap_or(200);
            let n = self.ep.wait(&mut events, ms);
            let now = Instant::now();
            for ev in &events[..n] {
                match ev.u64 {
                    LISTEN => self.on_queries(now),
                    k => self.on_answer(k as usize, now),
                }
            }
            let now = Instant::now();
            self.expire(now);
            if now.duration_since(self.swept) >= SOCKET_AGE {
                self.sweep(now);
            }
            mmsg::send_all(self.listen.as_raw_fd(), &mut self.out);
        }
        // Stopping: queries still waiting get what a failed upstream gives them (SERVFAIL when
        // fail_mode is closed), are counted and logged, instead of vanishing.
        let waiting: Vec<Pending> = self
            .socks
            .iter_mut()
            .flatten()
            .flat_map(|s| s.pending.drain().map(|(_, p)| p))
            .collect();
        for p in waiting {
            self.fail(p);
        }
        mmsg::send_all(self.listen.as_raw_fd(), &mut self.out);
    }

    /// Closes pool sockets past [`SOCKET_AGE`] that nothing waits on, so an idle thread does
    /// not keep its pool open (each UDP thread has its own: `--threads` multiplies them).
    fn sweep(&mut self, now: Instant) {
        self.swept = now;
        for k in 0..self.socks.len() {
            if let Some(s) = self.socks[k].as_mut() {
                if now.duration_since(s.born) >= SOCKET_AGE {
                    s.retired = true;
                }
            }
            self.close_if_done(k);
        }
    }

    /// One batch from the listen socket (level-triggered: anything left wakes us again).
    fn on_queries(&mut self, now: Instant) {
        let Ok(n) = self.batch.recv(self.listen.as_raw_fd(), false) else {
            return;
        };
        for i in 0..n {
            let Some((q, src)) = self.batch.get(i) else {
                continue;
            };
            // Responses (QR=1) and runts are never answered: not even REFUSED or TC.
            if q.len() < wire::HEADER_LEN || q[2] & 0x80 != 0 {
                continue;
            }
            let ctx = &self.ctx;
            match ctx.clients.admit(src.ip(), now) {
                Admit::Pass => {}
                Admit::Drop => {
                    ctx.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                Admit::Slip => {
                    ctx.stats.slipped.fetch_add(1, Ordering::Relaxed);
                    if let Some(r) = wire::truncated(q, None, ctx.cfg.max_udp_payload) {
                        self.out.push((r, src));
                    }
                    continue;
                }
            }
            if !ctx.allowed(src) {
                if let Some(r) = ctx.refuse(q, src) {
                    self.out.push((r, src));
                }
                continue;
            }
            match prepare(ctx, q.to_vec(), src, Transport::Udp) {
                Step::Answer(r) => self.out.push((r, src)),
                Step::Drop => {}
                Step::Forward(job) => self.forward(job, now),
            }
        }
    }

    /// Starts a forwarded query: the client's in-flight slot, the global permit, then the
    /// first attempt at the upstream that answered last.
    fn forward(&mut self, job: Job, now: Instant) {
        let ctx = &self.ctx;
        let Some(slot) = ctx.clients.begin_upstream(job.client.ip()) else {
            ctx.stats.inflight_limited.fetch_add(1, Ordering::Relaxed);
            return;
        };
        ctx.stats.forwarded.fetch_add(1, Ordering::Relaxed);
        let (Ok(permit), Some(qend)) = (
            ctx.up.inflight.clone().try_acquire_owned(),
            wire::question_end(&job.upstream_query),
        ) else {
            // No permit: the table is full, which counts as an upstream failure (fail_mode).
            let client = job.client;
            if let Some(r) = finish(ctx, job, None) {
                self.out.push((r, client));
            }
            return;
        };
        let upstream = ctx.up.preferred.load(Ordering::Relaxed);
        self.launch(
            Pending {
                job,
                qend,
                upstream,
                attempt: 0,
                number: 0,
                slot,
                permit,
            },
            now,
        );
    }

    /// Sends `p` on its attempt, moving to the next upstream while sending fails; once its
    /// attempts are spent the query fails ([`finish`] applies `fail_mode`).
    fn launch(&mut self, mut p: Pending, now: Instant) {
        let n = self.ctx.up.addrs.len();
        while n > 0 && p.attempt < self.ctx.up.attempts {
            p.upstream %= n;
            match self.send(p, now) {
                Ok(()) => return,
                Err(back) => {
                    p = back;
                    p.advance();
                }
            }
        }
        self.fail(p);
    }

    /// `p` got no answer from any upstream: [`finish`] applies `fail_mode`.
    fn fail(&mut self, p: Pending) {
        self.out.extend(p.finish(&self.ctx, None));
    }

    /// `p`'s attempt failed (no answer in time, or the socket failed): the next one.
    fn retry(&mut self, mut p: Pending, now: Instant) {
        p.advance();
        self.launch(p, now);
    }

    /// One attempt: a pool socket of `p.upstream`, a fresh ID, a non-blocking `send`; on
    /// success `p` waits on that socket with a deadline.
    fn send(&mut self, mut p: Pending, now: Instant) -> Result<(), Pending> {
        let Some(k) = self.pick(p.upstream, now) else {
            return Err(p);
        };
        let Some(ps) = self.socks[k].as_mut() else {
            return Err(p);
        };
        let mut id = None;
        for _ in 0..8 {
            match random_u16() {
                Some(c) if !ps.pending.contains_key(&c) => {
                    id = Some(c);
                    break;
                }
                Some(_) => {}
                None => return Err(p),
            }
        }
        let Some(id) = id else { return Err(p) };
        wire::set_id(&mut p.job.upstream_query, id);
        ps.used += 1;
        match ps.sock.send(&p.job.upstream_query) {
            Ok(_) => {}
            // A full send buffer: as if the datagram was lost on the way; the attempt waits
            // out its timeout like any unanswered one, instead of burning through upstreams.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            // ECONNREFUSED from an earlier ICMP error, and the like: next attempt now.
            Err(_) => return Err(p),
        }
        self.next_attempt += 1;
        p.number = self.next_attempt;
        self.deadlines.push_back(Deadline {
            at: now + self.ctx.up.timeout,
            sock: k,
            id,
            number: p.number,
        });
        ps.pending.insert(id, p);
        if self.deadlines.len() > DEADLINES_COMPACT {
            // Most entries are for queries already answered; keep the waiting ones (at most
            // MAX_INFLIGHT), so the queue stays small however fast answers come back.
            let socks = &self.socks;
            self.deadlines.retain(|d| {
                socks
                    .get(d.sock)
                    .and_then(Option::as_ref)
                    .and_then(|s| s.pending.get(&d.id))
                    .is_some_and(|p| p.number == d.number)
            });
        }
        Ok(())
    }

    /// A random socket of upstream `u`'s pool, replaced first when it is missing, retired,
    /// too old or has carried its share of queries.
    fn pick(&mut self, u: usize, now: Instant) -> Option<usize> {
        let slot = usize::from(random_u16()?) % POOL_SOCKETS;
        if let Some(k) = self.slots[u][slot] {
            if let Some(s) = self.socks[k].as_mut() {
                if !s.retired && s.used < SOCKET_QUERIES && now.duration_since(s.born) < SOCKET_AGE
                {
                    return Some(k);
                }
                s.retired = true;
            }
            self.slots[u][slot] = None;
            self.close_if_done(k);
        }
        let addr = *self.ctx.up.addrs.get(u)?;
        let local: SocketAddr = if addr.is_ipv4() {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        // The kernel picks a random ephemeral port at bind.
        let sock = UdpSocket::bind(local).ok()?;
        sock.connect(addr).ok()?;
        sock.set_nonblocking(true).ok()?;
        let k = self.free.pop().unwrap_or_else(|| {
            self.socks.push(None);
            self.socks.len() - 1
        });
        if self.ep.add(sock.as_raw_fd(), k as u64, 0).is_err() {
            self.free.push(k);
            return None;
        }
        self.socks[k] = Some(PoolSock {
            sock,
            upstream: u,
            slot,
            pending: FxHashMap::default(),
            born: now,
            used: 0,
            retired: false,
        });
        self.slots[u][slot] = Some(k);
        Some(k)
    }

    /// Closes socket `k` once it is retired and nothing waits on it.
    fn close_if_done(&mut self, k: usize) {
        let done = self.socks[k]
            .as_ref()
            .is_some_and(|s| s.retired && s.pending.is_empty());
        if !done {
            return;
        }
        if let Some(s) = self.socks[k].take() {
            self.ep.del(s.sock.as_raw_fd());
            if self.slots[s.upstream][s.slot] == Some(k) {
                self.slots[s.upstream][s.slot] = None;
            }
            self.free.push(k);
        }
    }

    /// Up to [`ANSWERS_PER_EVENT`] datagrams from upstream socket `k` (level-triggered:
    /// anything left wakes us again).
    fn on_answer(&mut self, k: usize, now: Instant) {
        for _ in 0..ANSWERS_PER_EVENT {
            if !self.answer_one(k, now) {
                return;
            }
        }
    }

    /// One datagram from upstream socket `k`; false when there was none (or the socket is
    /// gone or failed).
    fn answer_one(&mut self, k: usize, now: Instant) -> bool {
        let Some(ps) = self.socks.get_mut(k).and_then(Option::as_mut) else {
            return false;
        };
        match ps.sock.recv(&mut self.answer) {
            Ok(n) => {
                let Some(r) = self.answer.get(..n) else {
                    return true;
                };
                let Some(id) = wire::id(r) else { return true };
                let ok = ps.pending.get(&id).is_some_and(|p| {
                    is_response(r) && same_question(r, &p.job.upstream_query, p.qend)
                });
                // Otherwise forged or stray: ignored, the real answer is still awaited.
                if !ok {
                    return true;
                }
                let Some(p) = ps.pending.remove(&id) else {
                    return true;
                };
                let resp = r.to_vec();
                self.close_if_done(k);
                self.complete(p, resp);
                true
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
            Err(e) => {
                // ECONNREFUSED (ICMP port unreachable) and the like: whoever waits here moves
                // on to the next attempt now. Other errors retire the socket.
                if e.raw_os_error() != Some(libc::ECONNREFUSED) {
                    ps.retired = true;
                }
                let waiting: Vec<Pending> = ps.pending.drain().map(|(_, p)| p).collect();
                self.close_if_done(k);
                for p in waiting {
                    self.retry(p, now);
                }
                false
            }
        }
    }

    /// The upstream answered `p`: the answer goes to the client, unless it is truncated, in
    /// which case the runtime retries over TCP to the same upstream (and the truncated answer
    /// is the fallback if that fails).
    fn complete(&mut self, p: Pending, resp: Vec<u8>) {
        self.ctx.up.preferred.store(p.upstream, Ordering::Relaxed);
        if wire::is_truncated(&resp) {
            let ctx = self.ctx.clone();
            let listen = self.listen.clone();
            let addr = ctx.up.addrs[p.upstream];
            self.rt.spawn(async move {
                let full = tcp_query(addr, &p.job.upstream_query, ctx.up.timeout).await;
                if let Some((r, client)) = p.finish(&ctx, Some(full.unwrap_or(resp))) {
                    let _ = listen.send_to(&r, client);
                }
            });
            return;
        }
        self.out.extend(p.finish(&self.ctx, Some(resp)));
    }

    /// Moves every attempt whose deadline passed to its next attempt.
    fn expire(&mut self, now: Instant) {
        while self.deadlines.front().is_some_and(|d| d.at <= now) {
            let Some(d) = self.deadlines.pop_front() else {
                break;
            };
            let Some(ps) = self.socks.get_mut(d.sock).and_then(Option::as_mut) else {
                continue;
            };
            if ps.pending.get(&d.id).is_none_or(|p| p.number != d.number) {
                continue; // answered, or the ID now belongs to a later query
            }
            let Some(p) = ps.pending.remove(&d.id) else {
                continue;
            };
            self.close_if_done(d.sock);
            self.retry(p, now);
        }
    }
}

/// A level-triggered epoll instance (closed on drop).
struct Epoll(OwnedFd);

impl Epoll {
    fn new() -> io::Result<Epoll> {
        // SAFETY: no pointers; a negative return is an error.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a new descriptor we own.
        Ok(Epoll(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Watches `fd` for reading (and errors, always reported) under `token`.
    fn add(&self, fd: RawFd, token: u64, flags: u32) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32 | flags,
            u64: token,
        };
        // SAFETY: `ev` is a valid epoll_event for the duration of the call.
        let rc = unsafe { libc::epoll_ctl(self.0.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Stops watching `fd` (closing it would too; this keeps the order explicit).
    fn del(&self, fd: RawFd) {
        // SAFETY: a null event pointer is allowed for EPOLL_CTL_DEL.
        unsafe {
            libc::epoll_ctl(
                self.0.as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                fd,
                std::ptr::null_mut(),
            )
        };
    }

    /// Waits up to `ms` for events; returns how many were stored (0 on timeout or EINTR).
    fn wait(&self, evs: &mut [libc::epoll_event], ms: i32) -> usize {
        let len = i32::try_from(evs.len()).unwrap_or(i32::MAX);
        // SAFETY: `evs` is valid for `len` entries.
        let n = unsafe { libc::epoll_wait(self.0.as_raw_fd(), evs.as_mut_ptr(), len, ms) };
        usize::try_from(n).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoll_reports_a_readable_socket_until_it_is_read() {
        let ep = Epoll::new().unwrap();
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        ep.add(a.as_raw_fd(), 7, 0).unwrap();
        // SAFETY: plain data.
        let mut evs: [libc::epoll_event; 4] = unsafe { std::mem::zeroed() };
        assert_eq!(ep.wait(&mut evs, 0), 0);
        b.send_to(b"x", a.local_addr().unwrap()).unwrap();
        b.send_to(b"y", a.local_addr().unwrap()).unwrap();
        assert_eq!(ep.wait(&mut evs, 1000), 1);
        let token = evs[0].u64;
        assert_eq!(token, 7);
        // Level-triggered: one of two datagrams read, still readable.
        let mut buf = [0u8; 8];
        a.recv(&mut buf).unwrap();
        assert_eq!(ep.wait(&mut evs, 0), 1);
        a.recv(&mut buf).unwrap();
        assert_eq!(ep.wait(&mut evs, 0), 0);
        ep.del(a.as_raw_fd());
        b.send_to(b"z", a.local_addr().unwrap()).unwrap();
        assert_eq!(ep.wait(&mut evs, 50), 0);
    }
}
