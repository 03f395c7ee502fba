//! Who the client is. A client connected directly is its TCP peer. Behind a reverse proxy every
//! client would look like the proxy, so a connection from a network in `http.trusted_proxies`
//! names its client in `Forwarded` (RFC 7239, its `for=` parameters) or, when that header is
//! absent, `X-Forwarded-For`. The client is the rightmost address in that list that is not itself
//! a trusted proxy: each trusted proxy appends the address it saw, and anything to the left of the
//! first untrusted hop was written by the client and may be forged. A hop that names no address
//! (`for=unknown`, an obfuscated `_name`) leaves the client unknown, which no access rule admits.
//! Headers from a connection that is not a trusted proxy are ignored.
//!
//! The access rules (`metrics.allow`) and the per-address limits use this address. The limits
//! count an IPv6 client per /64 ([`AddrKey`]), the block one subscriber line usually gets whole.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};

use axum::http::HeaderMap;
use axum::http::header::FORWARDED;

use crate::config::Network;

/// The client of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    /// Its address; `None` when a trusted proxy could not name it, or there was no peer.
    pub addr: Option<IpAddr>,
    /// The request came through a trusted proxy that named a client.
    pub proxied: bool,
}

/// What the per-address limits count under: an IPv4 address, or an IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddrKey {
    V4(Ipv4Addr),
    V6(u64),
}

impl AddrKey {
    pub fn of(ip: IpAddr) -> AddrKey {
        match canonical(ip) {
            IpAddr::V4(v4) => AddrKey::V4(v4),
            IpAddr::V6(v6) => AddrKey::V6((u128::from(v6) >> 64) as u64),
        }
    }
}

/// An IPv4 client seen as IPv4-mapped IPv6 (a dual-stack socket) is an IPv4 client.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The client of a request from `peer` with these headers.
pub fn resolve(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[Network]) -> Client {
    let direct = Client { addr: peer.map(canonical), proxied: false };
    let Some(peer) = peer else { return direct };
    if !trusted.iter().any(|n| n.contains(peer)) {
        return direct;
    }
    let forwarded: Vec<&str> = if headers.contains_key(FORWARDED) {
        values(headers, FORWARDED.as_str()).flat_map(|v| v.split(',')).filter_map(forwarded_for).collect()
    } else {
        values(headers, "x-forwarded-for").flat_map(|v| v.split(',')).map(str::trim).collect()
    };
    let mut hops = forwarded.iter().rev().map(|hop| node(hop)).peekable();
    if hops.peek().is_none() {
        // The proxy's own request (a health check): it is the client.
        return direct;
    }
    let mut leftmost = None;
    for hop in hops {
        match hop {
            Some(ip) if trusted.iter().any(|n| n.contains(ip)) => leftmost = Some(ip),
            Some(ip) => return Client { addr: Some(ip), proxied: true },
            None => return Client { addr: None, proxied: true },
        }
    }
    // Every hop is a trusted proxy: the first of them made the request.
    Client { addr: leftmost, proxied: true }
}

/// Every line of a header, as text (lines that are not text count as absent).
fn values<'a>(headers: &'a HeaderMap, name: &str) -> impl Iterator<Item = &'a str> {
    headers.get_all(name).into_iter().filter_map(|v| v.to_str().ok())
}

/// The `for=` value of one `Forwarded` element, if it has one.
fn forwarded_for(element: &str) -> Option<&str> {
    element.split(';').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        k.trim().eq_ignore_ascii_case("for").then_some(v.trim())
    })
}

/// The address of a node as proxies write it: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`,
/// `[2001:db8::1]:4711`, any of them in double quotes; `None` for `unknown` and obfuscated names.
fn node(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim().trim_matches('"');
    let ip = if let Some(rest) = hop.strip_prefix('[') {
        rest.split_once(']')?.0.parse().ok()?
    } else if let Ok(ip) = hop.parse::<IpAddr>() {
        ip
    } else {
        hop.rsplit_once(':').and_then(|(host, _port)| host.parse::<Ipv4Addr>().ok())?.into()
    };
    Some(canonical(ip))
}

/// Requests in flight per client behind trusted proxies, where one connection carries many
/// clients and the per-connection count cannot tell them apart.
#[derive(Default)]
pub struct InFlight(Arc<Mutex<HashMap<AddrKey, usize>>>);

/// One request counted in [`InFlight`]; it stops counting when dropped.
pub struct Counted {
    table: Arc<Mutex<HashMap<AddrKey, usize>>>,
    key: AddrKey,
}

impl InFlight {
    /// Counts a request of `key`, or `None` when that client already has `max` in flight.
    pub fn enter(&self, key: AddrKey, max: usize) -> Option<Counted> {
        let mut table = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = table.entry(key).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Counted { table: self.0.clone(), key })
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = table.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                table.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<Network> {
        list.iter().map(|n| Network::parse(n).unwrap()).collect()
    }

    fn headers(lines: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in lines {
            h.append(axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        h
    }

    fn client(peer: &str, lines: &[(&str, &str)], trusted: &[&str]) -> Option<IpAddr> {
        resolve(Some(peer.parse().unwrap()), &headers(lines), &nets(trusted)).addr
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn headers_count_only_from_trusted_proxies() {
        let xff = [("x-forwarded-for", "203.0.113.9")];
        assert_eq!(client("198.51.100.1", &xff, &[]), ip("198.51.100.1"), "no proxy trusted");
        assert_eq!(client("198.51.100.1", &xff, &["10.0.0.0/8"]), ip("198.51.100.1"), "not from the proxy");
        assert_eq!(client("10.0.0.2", &xff, &["10.0.0.0/8"]), ip("203.0.113.9"));
        assert_eq!(client("10.0.0.2", &[], &["10.0.0.0/8"]), ip("10.0.0.2"), "the proxy's own request");
        assert_eq!(client("::ffff:10.0.0.2", &xff, &["10.0.0.0/8"]), ip("203.0.113.9"), "mapped IPv4 peer");
    }

    #[test]
    fn the_client_is_the_rightmost_untrusted_hop() {
        let trusted = ["10.0.0.0/8", "192.0.2.0/24"];
        // The client forged the first entry; the proxies appended the rest.
        let chain = [("x-forwarded-for", "127.0.0.1, 203.0.113.9, 192.0.2.7")];
        assert_eq!(client("10.0.0.2", &chain, &trusted), ip("203.0.113.9"));
        let lines = [("x-forwarded-for", "127.0.0.1"), ("x-forwarded-for", "203.0.113.9:5555")];
        assert_eq!(client("10.0.0.2", &lines, &trusted), ip("203.0.113.9"), "lines in order, ports dropped");
        let all_trusted = [("x-forwarded-for", "10.1.1.1, 192.0.2.7")];
        assert_eq!(client("10.0.0.2", &all_trusted, &trusted), ip("10.1.1.1"));
        let junk = [("x-forwarded-for", "203.0.113.9, not-an-address")];
        assert_eq!(client("10.0.0.2", &junk, &trusted), None, "an unreadable hop is an unknown client");
    }

    #[test]
    fn forwarded_wins_over_x_forwarded_for() {
        let trusted = ["10.0.0.0/8"];
        let both = [
            ("x-forwarded-for", "198.51.100.77"),
            ("forwarded", "for=127.0.0.1, For=\"[2001:db8:cafe::17]:4711\";proto=https;by=10.0.0.2"),
        ];
        assert_eq!(client("10.0.0.2", &both, &trusted), ip("2001:db8:cafe::17"));
        let v4 = [("forwarded", "for=\"198.51.100.4:80\"")];
        assert_eq!(client("10.0.0.2", &v4, &trusted), ip("198.51.100.4"));
        for hidden in ["for=unknown", "for=_gazonk", "for=\"_hidden:80\""] {
            assert_eq!(client("10.0.0.2", &[("forwarded", hidden)], &trusted), None, "{hidden}");
        }
        let proxied = resolve(Some("10.0.0.2".parse().unwrap()), &headers(&v4), &nets(&trusted));
        assert!(proxied.proxied);
    }

    #[test]
    fn ipv6_clients_count_per_64() {
        let a = AddrKey::of("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = AddrKey::of("2001:db8:1:2:ffff:ffff:ffff:ffff".parse().unwrap());
        let c = AddrKey::of("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(AddrKey::of("::ffff:192.0.2.1".parse().unwrap()), AddrKey::of("192.0.2.1".parse().unwrap()));
        assert_ne!(AddrKey::of("192.0.2.1".parse().unwrap()), AddrKey::of("192.0.2.2".parse().unwrap()));
    }

    #[test]
    fn in_flight_requests_are_bounded_per_client() {
        let table = InFlight::default();
        let key = AddrKey::of("203.0.113.9".parse().unwrap());
        let other = AddrKey::of("203.0.113.10".parse().unwrap());
        let first = table.enter(key, 2).unwrap();
        let _second = table.enter(key, 2).unwrap();
        assert!(table.enter(key, 2).is_none());
        assert!(table.enter(other, 2).is_some(), "another client has its own count");
        drop(first);
        assert!(table.enter(key, 2).is_some(), "a finished request frees its place");
    }
}
