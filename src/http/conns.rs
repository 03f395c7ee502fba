//! The connections open at once, by client address. The accept loop asks
//! [`Connections::admit`] for every new one:
//!
//! - One address (an IPv6 /64, see `client`) holds at most `http.max_connections_per_address`
//!   connections; a connection past that is answered 503 and closed at once, so one client
//!   cannot take the slots every other client needs. Connections from a trusted proxy are not
//!   counted per address: their clients are, per request (see `gate`).
//! - When the open connections come within an eighth of `http.max_connections`, idle ones are
//!   asked to close (hyper's graceful shutdown: a connection with a response in progress
//!   finishes it first). Those that never completed a request go first, oldest first, then
//!   kept-alive connections idle the longest, until a quarter of the slots is free again. A new
//!   client is thus answered at once rather than waiting for an idle connection's timeout.
//!
//! Each connection holds a [`Ticket`]; [`server`](super::server) marks it busy while a request
//! is in flight and closes the connection when the ticket says so.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::Notify;

use super::client::AddrKey;
use crate::config::{HttpLimits, Network};

/// The registry of open connections.
pub struct Connections {
    max: usize,
    per_address: usize,
    trusted: Vec<Network>,
    epoch: Instant,
    state: Mutex<Registry>,
}

#[derive(Default)]
struct Registry {
    next_id: u64,
    open: HashMap<u64, Arc<Conn>>,
    per_key: HashMap<AddrKey, usize>,
    /// Connections asked to close that are still open.
    closing: usize,
}

/// What the registry knows of one connection.
pub struct Conn {
    /// The address it counts under; `None` for a trusted proxy.
    key: Option<AddrKey>,
    /// Requests in progress.
    busy: AtomicU32,
    /// Requests completed.
    served: AtomicU64,
    /// When it last became idle, in milliseconds since the registry's epoch.
    idle_since: AtomicU64,
    closing: AtomicBool,
    close: Notify,
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Its address already holds as many connections as one may.
    PerAddress,
}

impl Connections {
    /// A registry for at most `max` connections (the configured limit, or what the open-file
    /// limit allows).
    pub fn new(limits: &HttpLimits, max: usize) -> Arc<Connections> {
        Arc::new(Connections {
            max: max.max(1),
            per_address: limits.max_connections_per_address,
            trusted: limits.trusted_proxies.clone(),
            epoch: Instant::now(),
            state: Mutex::new(Registry::default()),
        })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts a new connection from `peer`, or refuses it when its address is at its limit.
    /// Asks idle connections to close when the open ones come near the limit.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<Ticket, Refused> {
        let key = (!self.trusted.iter().any(|n| n.contains(peer))).then(|| AddrKey::of(peer));
        let mut reg = self.registry();
        if let Some(key) = key {
            let n = reg.per_key.entry(key).or_insert(0);
            if *n >= self.per_address {
                return Err(Refused::PerAddress);
            }
            *n += 1;
        }
        let conn = Arc::new(Conn {
            key,
            busy: AtomicU32::new(0),
            served: AtomicU64::new(0),
            idle_since: AtomicU64::new(self.now_ms()),
            closing: AtomicBool::new(false),
            close: Notify::new(),
        });
        // Room is made before the newcomer joins: it is the client the room is for.
        self.make_room_in(&mut reg, 1);
        let id = reg.next_id;
        reg.next_id += 1;
        reg.open.insert(id, conn.clone());
        Ok(Ticket { id, conn, owner: self.clone() })
    }

    /// Asks idle connections to close when fewer than an eighth of the slots are free (not
    /// counting connections already closing), until a quarter is. Returns how many were asked.
    pub fn make_room(&self) -> usize {
        self.make_room_in(&mut self.registry(), 0)
    }

    /// [`Connections::make_room`], with `incoming` connections about to join.
    fn make_room_in(&self, reg: &mut Registry, incoming: usize) -> usize {
        let reserve = (self.max / 8).max(1);
        let staying = reg.open.len() + incoming - reg.closing;
        if staying + reserve <= self.max {
            return 0;
        }
        let wanted = (staying + 2 * reserve).saturating_sub(self.max);
        // Never served first, then idle longest; ids (in order of arrival) break ties.
        type Order = (bool, u64, u64);
        let mut idle: Vec<(Order, &Arc<Conn>)> = reg
            .open
            .iter()
            .filter(|(_, c)| !c.closing.load(Ordering::Relaxed) && c.busy.load(Ordering::Relaxed) == 0)
            .map(|(id, c)| ((c.served.load(Ordering::Relaxed) > 0, c.idle_since.load(Ordering::Relaxed), *id), c))
            .collect();
        let n = wanted.min(idle.len());
        if n == 0 {
            return 0;
        }
        if n < idle.len() {
            idle.select_nth_unstable_by_key(n - 1, |(order, _)| *order);
        }
        for (_, c) in &idle[..n] {
            c.closing.store(true, Ordering::Relaxed);
            c.close.notify_one();
        }
        reg.closing += n;
        tracing::debug!(asked = n, open = reg.open.len(), "near the connection limit: closing idle connections");
        n
    }

    fn release(&self, id: u64) {
        let mut reg = self.registry();
        let Some(conn) = reg.open.remove(&id) else { return };
        if conn.closing.load(Ordering::Relaxed) {
            reg.closing -= 1;
        }
        if let Some(key) = conn.key
            && let Some(n) = reg.per_key.get_mut(&key)
        {
            *n -= 1;
            if *n == 0 {
                reg.per_key.remove(&key);
            }
        }
    }

    /// Connections open now.
    #[cfg(test)]
    pub fn open(&self) -> usize {
        self.registry().open.len()
    }
}

/// A connection's place in the registry, given up when dropped.
pub struct Ticket {
    id: u64,
    conn: Arc<Conn>,
    owner: Arc<Connections>,
}

impl Ticket {
    /// Marks a request in progress until the returned guard is dropped. The guard holds the
    /// connection's own ticket, not the registry shared by every thread, so counting a request
    /// touches nothing another connection touches.
    pub fn busy(self: &Arc<Self>) -> Busy {
        self.conn.busy.fetch_add(1, Ordering::Relaxed);
        Busy(self.clone())
    }

    /// Whether the registry has asked this connection to close (set before `close_requested`
    /// resolves).
    pub fn close_asked(&self) -> bool {
        self.conn.closing.load(Ordering::Relaxed)
    }

    /// Resolves once the registry asks this connection to close.
    pub async fn close_requested(&self) {
        self.conn.close.notified().await
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.owner.release(self.id);
    }
}

/// A request in progress on a connection.
pub struct Busy(Arc<Ticket>);

impl Drop for Busy {
    fn drop(&mut self) {
        let Ticket { conn, owner, .. } = &*self.0;
        conn.served.fetch_add(1, Ordering::Relaxed);
        conn.idle_since.store(owner.now_ms(), Ordering::Relaxed);
        conn.busy.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(max: usize, per_address: usize, trusted: &[&str]) -> Arc<Connections> {
        let mut limits =
            crate::config::Config::for_test(std::path::Path::new("/r"), std::path::Path::new("/s.db")).http;
        limits.max_connections_per_address = per_address;
        limits.trusted_proxies = trusted.iter().map(|n| Network::parse(n).unwrap()).collect();
        Connections::new(&limits, max)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn asked(t: &Ticket) -> bool {
        t.conn.closing.load(Ordering::Relaxed)
    }

    #[test]
    fn one_address_holds_at_most_its_share() {
        let conns = registry(1000, 3, &["10.0.0.0/8"]);
        let held: Vec<Ticket> = (0..3).map(|_| conns.admit(ip("192.0.2.1")).unwrap()).collect();
        assert_eq!(conns.admit(ip("192.0.2.1")).err(), Some(Refused::PerAddress));
        assert_eq!(conns.admit(ip("::ffff:192.0.2.1")).err(), Some(Refused::PerAddress), "mapped IPv4");
        assert!(conns.admit(ip("192.0.2.2")).is_ok(), "another address has its own share");
        let v6: Vec<Ticket> = (0..3).map(|i| conns.admit(ip(&format!("2001:db8:0:1::{i}"))).unwrap()).collect();
        assert_eq!(conns.admit(ip("2001:db8:0:1:ffff::9")).err(), Some(Refused::PerAddress), "one /64");
        assert!(conns.admit(ip("2001:db8:0:2::1")).is_ok());
        let proxy: Vec<Ticket> = (0..10).map(|_| conns.admit(ip("10.0.0.2")).unwrap()).collect();
        assert_eq!(proxy.len(), 10, "a trusted proxy is not limited per address");
        drop(held);
        assert!(conns.admit(ip("192.0.2.1")).is_ok(), "closed connections free the address's share");
        drop(v6);
    }

    #[test]
    fn near_the_limit_idle_connections_close_first() {
        let conns = registry(16, 100, &[]);
        // A client that has been served and is busy now, one served and idle, and idle sockets
        // that never sent a request.
        let busy_client = Arc::new(conns.admit(ip("192.0.2.1")).unwrap());
        let _request = busy_client.busy();
        let kept_alive = Arc::new(conns.admit(ip("192.0.2.2")).unwrap());
        drop(kept_alive.busy());
        let mut idle = Vec::new();
        for _ in 0..12 {
            idle.push(conns.admit(ip("198.51.100.1")).unwrap());
        }
        assert!(idle.iter().all(|t| !asked(t)), "14 of 16 open: two slots are free, none asked yet");
        idle.push(conns.admit(ip("198.51.100.1")).unwrap());
        // 15 of 16: fewer than an eighth free; asked until a quarter (4) is free.
        let asked_now: Vec<usize> = (0..idle.len()).filter(|&i| asked(&idle[i])).collect();
        assert_eq!(asked_now, [0, 1, 2], "the oldest never-served connections go first");
        assert!(!asked(&busy_client) && !asked(&kept_alive));
        assert_eq!(conns.make_room(), 0, "those asked already count as leaving");
        // Once only served connections are left idle, the one idle longest goes.
        drop(idle);
        let mut active = Vec::new();
        for _ in 0..13 {
            let t = Arc::new(conns.admit(ip("198.51.100.7")).unwrap());
            let request = t.busy();
            active.push((t, request));
        }
        assert!(asked(&kept_alive), "{} open", conns.open());
        assert!(!asked(&busy_client), "a connection with a request in progress is never asked");
        assert!(active.iter().all(|(t, _)| !asked(t)));
    }
}
