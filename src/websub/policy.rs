//! Which addresses the hub may connect to on a stranger's behalf: the callback address policy.
//!
//! A callback URL comes from anyone who can reach `/websub`, so the hub refuses to connect to an
//! address that is not on the public Internet (loopback, private, shared, link-local, multicast,
//! documentation and other special-purpose ranges of the IANA registries), unless the operator
//! allowed its network (`websub.allow_callbacks`). IPv6 forms that carry an IPv4 address
//! (IPv4-mapped, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) are judged by that IPv4 address; the
//! deprecated IPv4-compatible form and Teredo are refused outright. The check runs on the
//! address the socket then connects to (see `client`), never on a name. It never does IO.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::config::Network;

/// Why an address is not public, or `None` when it is.
pub fn special(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => special_v4(v4),
        IpAddr::V6(v6) => special_v6(v6),
    }
}

fn special_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, _, _) => "unspecified (\"this network\", 0.0.0.0/8)",
        (10, _, _) => "private (RFC 1918)",
        (100, 64..=127, _) => "shared address space (CGNAT, 100.64.0.0/10)",
        (127, _, _) => "loopback",
        (169, 254, _) => "link-local",
        (172, 16..=31, _) => "private (RFC 1918)",
        (192, 0, 0) => "IETF protocol assignments (192.0.0.0/24)",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (192, 88, 99) => "6to4 relay anycast",
        (192, 168, _) => "private (RFC 1918)",
        (198, 18..=19, _) => "benchmarking",
        (224..=239, _, _) => "multicast",
        (255, 255, 255) if ip == Ipv4Addr::BROADCAST => "broadcast",
        (240..=255, _, _) => "reserved (240.0.0.0/4)",
        _ => return None,
    })
}

fn special_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return special_v4(v4).map(|_| "IPv4-mapped form of a non-public address");
    }
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    Some(match s {
        [0, 0, 0, 0, 0, 0, 0, 0] => "unspecified",
        [0, 0, 0, 0, 0, 0, 0, 1] => "loopback",
        [0, 0, 0, 0, 0, 0, _, _] => "IPv4-compatible (deprecated)",
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => {
            return special_v4(embedded(hi, lo)).map(|_| "NAT64 form of a non-public address");
        }
        [0x64, 0xff9b, 1, ..] => "NAT64 local use (64:ff9b:1::/48)",
        [0x2002, hi, lo, ..] => return special_v4(embedded(hi, lo)).map(|_| "6to4 form of a non-public address"),
        [0x2001, 0x0db8, ..] | [0x3fff, 0..=0x0fff, ..] => "documentation",
        [0x2001, 0..=0x01ff, ..] => "IETF protocol assignments (2001::/23: Teredo, benchmarking, …)",
        [first, ..] if first & 0xe000 == 0x2000 => return None,
        [first, ..] if first & 0xfe00 == 0xfc00 => "unique local (fc00::/7)",
        [first, ..] if first & 0xffc0 == 0xfe80 => "link-local",
        [first, ..] if first & 0xffc0 == 0xfec0 => "site-local (deprecated)",
        [first, ..] if first & 0xff00 == 0xff00 => "multicast",
        [0x0100, 0, 0, 0, ..] => "discard-only (100::/64)",
        _ => "not global unicast (outside 2000::/3)",
    })
}

/// The callback address policy: public addresses, plus the networks the operator allowed.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub allow: Vec<Network>,
}

impl Policy {
    /// `Err(reason)` when the hub must not connect to `ip` for a subscriber.
    pub fn check(&self, ip: IpAddr) -> Result<(), String> {
        match special(ip) {
            None => Ok(()),
            Some(_) if self.allow.iter().any(|n| n.contains(ip)) => Ok(()),
            Some(why) => Err(format!("{ip} is {why}, and not in websub.allow_callbacks")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(addr: &str, public: bool) {
        let ip: IpAddr = addr.parse().unwrap();
        assert_eq!(special(ip).is_none(), public, "{addr}: {:?}", special(ip));
    }

    #[test]
    fn ipv4_table() {
        for a in [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "10.255.255.255",
            "100.64.0.1",
            "100.127.255.255",
            "127.0.0.1",
            "127.255.0.9",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.170",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
        ] {
            check(a, false);
        }
        for a in ["1.1.1.1", "8.8.8.8", "100.63.255.255", "100.128.0.0", "172.15.255.255", "172.32.0.0", "192.0.1.1"] {
            check(a, true);
        }
        check("198.20.0.1", true);
        check("223.255.255.255", true);
    }

    #[test]
    fn ipv6_table_with_embedded_ipv4() {
        for a in [
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:7f00:1",
            "::ffff:10.1.2.3",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "::8.8.8.8",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::1",
            "2002:7f00:1::",
            "2002:c0a8:101::1",
            "2001::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:2::1",
            "2001:db8::1",
            "3fff::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
            "ff0e::1",
            "100::1",
            "5f00::1",
            "4000::1",
            "1::",
        ] {
            check(a, false);
        }
        for a in ["2606:4700:4700::1111", "2a00:1450::1", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"] {
            check(a, true);
        }
    }

    #[test]
    fn allowed_networks_open_only_themselves() {
        let policy = Policy { allow: vec![Network::parse("127.0.0.0/8").unwrap()] };
        assert!(policy.check("127.0.0.1".parse().unwrap()).is_ok());
        assert!(policy.check("::ffff:127.0.0.1".parse().unwrap()).is_ok(), "mapped counts as IPv4");
        assert!(policy.check("::1".parse().unwrap()).is_err());
        assert!(policy.check("10.0.0.1".parse().unwrap()).is_err());
        assert!(policy.check("8.8.8.8".parse().unwrap()).is_ok());
        let err = Policy::default().check("169.254.169.254".parse().unwrap()).unwrap_err();
        assert!(err.contains("link-local"), "{err}");
    }
}
