//! Per-client limits: the response rate limit (a token bucket per client), the cap on upstream
//! queries in flight per client, and the TCP connection table (global and per-client caps,
//! longest-idle eviction). Pure bookkeeping; the server decides what to send.
//!
//! A "client" is an IPv4 address, or an IPv6 /56 (as BIND RRL's default `ipv6-prefix-length`):
//! one host can hold a whole /64, so per-address IPv6 limits would not limit anything.
//!
//! Tables are capped ([`LimitsConfig::clients_tracked`], [`LimitsConfig::tcp_clients`]):
//! - the client table, when full, first forgets clients that are quiet (bucket refilled,
//!   nothing in flight), at most once a second; if it is still full, new clients share one
//!   overflow entry (so a spoofed-source flood cannot grow memory, and shares one budget);
//! - the TCP table, when a cap is reached, closes the connection that has been idle (waiting
//!   for its next query) the longest under that cap; when none is idle the new connection is
//!   closed at once.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;
use tokio::sync::Notify;

use crate::acl::{any_contains, Cidr};

/// The `limits:` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitsConfig {
    /// Queries per second a client may send (token bucket refill rate); 0 turns the rate limit
    /// off. Default 1000.
    pub client_qps: u32,
    /// Bucket size: queries a quiet client may send at once. Default 2 × `client_qps`.
    pub client_burst: u32,
    /// Every `slip`-th query over the rate gets a TC=1 answer (the client retries over TCP,
    /// which a spoofed source cannot do) instead of silence; 0 = never. Default 2 (BIND RRL).
    pub slip: u32,
    /// Upstream queries in flight per client; over it a UDP query is dropped, a TCP query gets
    /// REFUSED. Default 100.
    pub client_inflight: u32,
    /// Clients none of the per-client limits apply to (a benchmark host, a trusted NAT).
    pub exempt_clients: Vec<Cidr>,
    /// Entries in the client table. Default 65536.
    pub clients_tracked: usize,
    /// Client TCP connections in all. Default 1024.
    pub tcp_clients: usize,
    /// Client TCP connections per client. Default 16.
    pub tcp_clients_per_client: usize,
    /// A TCP connection with no complete query for this long is closed. Default 10 s.
    pub tcp_idle: Duration,
    /// Writing one answer to a TCP client must finish within this. Default 5 s.
    pub tcp_write: Duration,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            client_qps: 1000,
            client_burst: 2000,
            slip: 2,
            client_inflight: 100,
            exempt_clients: Vec::new(),
            clients_tracked: 65_536,
            tcp_clients: 1024,
            tcp_clients_per_client: 16,
            tcp_idle: Duration::from_secs(10),
            tcp_write: Duration::from_secs(5),
        }
    }
}

/// The table key of a client address: the IPv4 address, or the IPv6 /56.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(a) => IpAddr::V4(a),
        IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) & (u128::MAX << 72))),
    }
}

/// The key new clients share when the table is full.
const OVERFLOW: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

/// What the rate limit says about one query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Within the rate.
    Pass,
    /// Over the rate: send nothing.
    Drop,
    /// Over the rate, but this one gets a TC=1 answer.
    Slip,
}

struct Client {
    tokens: f64,
    last: Instant,
    inflight: u32,
    over: u32,
}

struct ClientsInner {
    map: FxHashMap<IpAddr, Client>,
    last_purge: Option<Instant>,
}

/// Per-client rate and in-flight state.
pub struct Clients {
    cfg: LimitsConfig,
    inner: Mutex<ClientsInner>,
    /// Times the table was full and a new client went to the overflow entry.
    pub overflowed: AtomicU64,
}

impl Clients {
    /// An empty table.
    pub fn new(cfg: LimitsConfig) -> Clients {
        Clients {
            cfg,
            inner: Mutex::new(ClientsInner {
                map: FxHashMap::default(),
                last_purge: None,
            }),
            overflowed: AtomicU64::new(0),
        }
    }

    /// The settings.
    pub fn config(&self) -> &LimitsConfig {
        &self.cfg
    }

    /// Whether no per-client limit applies to `ip`.
    pub fn exempt(&self, ip: IpAddr) -> bool {
        any_contains(&self.cfg.exempt_clients, ip)
    }

    /// Runs `f` on the entry of `ip` (or the overflow entry); returns its result and the key
    /// of the entry used.
    fn with_client<R>(
        &self,
        ip: IpAddr,
        now: Instant,
        f: impl FnOnce(&mut Client) -> R,
    ) -> (R, IpAddr) {
        let key = client_key(ip);
        let burst = f64::from(self.cfg.client_burst.max(1));
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let inner = &mut *g;
        if !inner.map.contains_key(&key) && inner.map.len() >= self.cfg.clients_tracked.max(1) {
            let due = inner
                .last_purge
                .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1));
            if due {
                inner.last_purge = Some(now);
                let qps = f64::from(self.cfg.client_qps.max(1));
                inner.map.retain(|_, c| {
                    let refilled = c.tokens + now.duration_since(c.last).as_secs_f64() * qps;
                    c.inflight > 0 || refilled < burst
                });
            }
        }
        let key =
            if inner.map.contains_key(&key) || inner.map.len() < self.cfg.clients_tracked.max(1) {
                key
            } else {
                self.overflowed.fetch_add(1, Ordering::Relaxed);
                OVERFLOW
            };
        let c = inner.map.entry(key).or_insert(Client {
            tokens: burst,
            last: now,
            inflight: 0,
            over: 0,
        });
        (f(c), key)
    }

    /// Takes one token for a query from `ip` at `now`.
    pub fn admit(&self, ip: IpAddr, now: Instant) -> Admit {
        if self.cfg.client_qps == 0 || self.exempt(ip) {
            return Admit::Pass;
        }
        let qps = f64::from(self.cfg.client_qps);
        let burst = f64::from(self.cfg.client_burst.max(1));
        let slip = self.cfg.slip;
        let (admit, _) = self.with_client(ip, now, |c| {
            let dt = now.saturating_duration_since(c.last).as_secs_f64();
            c.last = now;
            c.tokens = (c.tokens + dt * qps).min(burst);
            if c.tokens >= 1.0 {
                c.tokens -= 1.0;
                c.over = 0;
                Admit::Pass
            } else {
                c.over = c.over.wrapping_add(1);
                if slip > 0 && c.over % slip == 0 {
                    Admit::Slip
                } else {
                    Admit::Drop
                }
            }
        });
        admit
    }

    /// Counts one more upstream query in flight for `ip`; `None` when the client is at its cap.
    /// The guard gives the slot back when dropped.
    pub fn begin_upstream(self: &Arc<Self>, ip: IpAddr) -> Option<Inflight> {
        if self.exempt(ip) {
            return Some(Inflight {
                owner: None,
                key: ip,
            });
        }
        let cap = self.cfg.client_inflight.max(1);
        let (ok, key) = self.with_client(ip, Instant::now(), |c| {
            if c.inflight >= cap {
                false
            } else {
                c.inflight += 1;
                true
            }
        });
        ok.then(|| Inflight {
            owner: Some(self.clone()),
            key,
        })
    }

    /// Clients currently in the table.
    pub fn len(&self) -> usize {
        self.inner.lock().map(|g| g.map.len()).unwrap_or(0)
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One upstream query in flight for a client; released on drop.
pub struct Inflight {
    owner: Option<Arc<Clients>>,
    /// The entry counted (the client's, or the overflow entry).
    key: IpAddr,
}

impl Drop for Inflight {
    fn drop(&mut self) {
        if let Some(o) = self.owner.take() {
            let mut g = o.inner.lock().unwrap_or_else(|e| e.into_inner());
            // Never purged while something is in flight, so the entry is still there.
            if let Some(c) = g.map.get_mut(&self.key) {
                c.inflight = c.inflight.saturating_sub(1);
            }
        }
    }
}

struct Conn {
    key: IpAddr,
    idle_since: Option<Instant>,
    kill: Arc<Notify>,
}

#[derive(Default)]
struct ConnsInner {
    next: u64,
    conns: FxHashMap<u64, Conn>,
    per_client: FxHashMap<IpAddr, usize>,
}

/// Client TCP connections: global and per-client caps with longest-idle eviction.
pub struct TcpConns {
    total: usize,
    per_client: usize,
    inner: Mutex<ConnsInner>,
    /// Connections closed to make room for a new one.
    pub evicted: AtomicU64,
    /// New connections closed at once (a cap reached and nothing idle to close).
    pub rejected: AtomicU64,
}

/// A registered TCP connection; unregisters on drop. Wait on `kill` to learn of eviction.
pub struct ConnSlot {
    owner: Arc<TcpConns>,
    id: u64,
    /// Notified when the connection is evicted to make room.
    pub kill: Arc<Notify>,
}

impl TcpConns {
    /// An empty table with `total` and `per_client` caps (exempt clients count only in `total`).
    pub fn new(total: usize, per_client: usize) -> TcpConns {
        TcpConns {
            total: total.max(1),
            per_client: per_client.max(1),
            inner: Mutex::new(ConnsInner::default()),
            evicted: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
        }
    }

    /// Registers a new connection from `ip`, closing the longest-idle one under a full cap;
    /// `None` (close the new one) when a cap is full and nothing under it is idle.
    pub fn admit(self: &Arc<Self>, ip: IpAddr, exempt: bool) -> Option<ConnSlot> {
        let key = client_key(ip);
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let inner = &mut *g;
        if !exempt
            && inner.per_client.get(&key).copied().unwrap_or(0) >= self.per_client
            && !Self::evict_idle(inner, Some(key))
        {
            self.rejected.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        if inner.conns.len() >= self.total && !Self::evict_idle(inner, None) {
            self.rejected.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let id = inner.next;
        inner.next += 1;
        let kill = Arc::new(Notify::new());
        inner.conns.insert(
            id,
            Conn {
                key,
                idle_since: Some(Instant::now()),
                kill: kill.clone(),
            },
        );
        *inner.per_client.entry(key).or_insert(0) += 1;
        Some(ConnSlot {
            owner: self.clone(),
            id,
            kill,
        })
    }

    /// Closes the longest-idle connection (of client `key`, or any); false if none is idle.
    fn evict_idle(inner: &mut ConnsInner, key: Option<IpAddr>) -> bool {
        let victim = inner
            .conns
            .iter()
            .filter(|(_, c)| key.is_none_or(|k| c.key == k))
            .filter_map(|(id, c)| c.idle_since.map(|t| (t, *id)))
            .min()
            .map(|(_, id)| id);
        let Some(id) = victim else { return false };
        if let Some(c) = inner.conns.remove(&id) {
            // notify_one stores a permit: the task sees it even if not waiting yet.
            c.kill.notify_one();
            Self::dec(inner, c.key);
        }
        true
    }

    fn dec(inner: &mut ConnsInner, key: IpAddr) {
        if let Some(n) = inner.per_client.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                inner.per_client.remove(&key);
            }
        }
    }

    /// Connections open now.
    pub fn len(&self) -> usize {
        self.inner.lock().map(|g| g.conns.len()).unwrap_or(0)
    }

    /// Whether no connection is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ConnSlot {
    /// Marks the connection idle (waiting for a query: evictable) or busy.
    pub fn set_idle(&self, idle: bool) {
        let mut g = self.owner.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = g.conns.get_mut(&self.id) {
            c.idle_since = idle.then(Instant::now);
        }
    }
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        let mut g = self.owner.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = g.conns.remove(&self.id) {
            TcpConns::dec(&mut g, c.key);
        } else {
            self.owner.evicted.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn bucket_refills_and_slips_every_second_drop() {
        let c = Clients::new(LimitsConfig {
            client_qps: 10,
            client_burst: 5,
            ..LimitsConfig::default()
        });
        let t0 = Instant::now();
        for _ in 0..5 {
            assert_eq!(c.admit(ip("10.0.0.1"), t0), Admit::Pass);
        }
        assert_eq!(c.admit(ip("10.0.0.1"), t0), Admit::Drop);
        assert_eq!(c.admit(ip("10.0.0.1"), t0), Admit::Slip);
        assert_eq!(c.admit(ip("10.0.0.1"), t0), Admit::Drop);
        // Another client has its own bucket.
        assert_eq!(c.admit(ip("10.0.0.2"), t0), Admit::Pass);
        // 100 ms later: one token back.
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(c.admit(ip("10.0.0.1"), t1), Admit::Pass);
        assert_ne!(c.admit(ip("10.0.0.1"), t1), Admit::Pass);
    }

    #[test]
    fn exempt_clients_and_ipv6_prefixes() {
        let c = Clients::new(LimitsConfig {
            client_qps: 1,
            client_burst: 1,
            exempt_clients: vec![Cidr::parse("10.9.0.0/16").unwrap()],
            ..LimitsConfig::default()
        });
        let t = Instant::now();
        for _ in 0..10 {
            assert_eq!(c.admit(ip("10.9.1.1"), t), Admit::Pass);
        }
        assert_eq!(c.admit(ip("2001:db8:0:1::1"), t), Admit::Pass);
        // Same /56: same bucket.
        assert_ne!(c.admit(ip("2001:db8:0:2::9"), t), Admit::Pass);
    }

    #[test]
    fn inflight_cap_and_release() {
        let c = Arc::new(Clients::new(LimitsConfig {
            client_inflight: 2,
            ..LimitsConfig::default()
        }));
        let a = c.begin_upstream(ip("10.0.0.1")).unwrap();
        let _b = c.begin_upstream(ip("10.0.0.1")).unwrap();
        assert!(c.begin_upstream(ip("10.0.0.1")).is_none());
        assert!(c.begin_upstream(ip("10.0.0.2")).is_some());
        drop(a);
        assert!(c.begin_upstream(ip("10.0.0.1")).is_some());
    }

    #[test]
    fn full_client_table_uses_the_overflow_entry() {
        let c = Clients::new(LimitsConfig {
            client_qps: 1,
            client_burst: 1,
            clients_tracked: 2,
            ..LimitsConfig::default()
        });
        let t = Instant::now();
        assert_eq!(c.admit(ip("10.0.0.1"), t), Admit::Pass);
        assert_eq!(c.admit(ip("10.0.0.2"), t), Admit::Pass);
        // Both busy (bucket empty): nothing to purge; a third client overflows.
        c.admit(ip("10.0.0.3"), t);
        assert!(c.len() <= 3);
        assert_eq!(c.overflowed.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn tcp_caps_evict_the_longest_idle() {
        let t = Arc::new(TcpConns::new(3, 2));
        let a1 = t.admit(ip("10.0.0.1"), false).unwrap();
        std::thread::sleep(Duration::from_millis(2));
        let a2 = t.admit(ip("10.0.0.1"), false).unwrap();
        a2.set_idle(false);
        // Per-client cap: a1 (idle) is evicted for a3.
        let _a3 = t.admit(ip("10.0.0.1"), false).unwrap();
        assert_eq!(t.len(), 2);
        drop(a1);
        assert_eq!(t.evicted.load(Ordering::Relaxed), 1);
        let b1 = t.admit(ip("10.0.0.2"), false).unwrap();
        b1.set_idle(false);
        // Global cap 3: the only idle one left is a3.
        let b2 = t.admit(ip("10.0.0.2"), false).unwrap();
        assert_eq!(t.len(), 3);
        // Everything busy: nothing to evict.
        b2.set_idle(false);
        let c1 = t.admit(ip("10.0.0.3"), false);
        assert!(c1.is_none(), "nothing idle: the new connection is closed");
        assert_eq!(t.rejected.load(Ordering::Relaxed), 1);
    }
}
