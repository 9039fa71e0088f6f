//! Client address lists: CIDR prefixes (`allow_clients`, `limits.exempt_clients`) and the
//! default allow list (loopback plus the networks of the listen addresses).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// An address prefix, `10.0.0.0/8` or `2001:db8::/32`; a bare address is a /32 (/128).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    /// The network address (host bits cleared).
    pub addr: IpAddr,
    /// Prefix length in bits.
    pub prefix: u8,
}

impl Cidr {
    /// Parses `ADDR/LEN` or `ADDR`; host bits are cleared. Returns a message on error.
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| format!("'{a}' is not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|n| *n <= max)
                .ok_or_else(|| format!("prefix length '{p}' is not a number in 0..={max}"))?,
        };
        Ok(Cidr::new(addr, prefix))
    }

    /// The prefix of `addr` with `prefix` bits (clamped to the address width).
    pub fn new(addr: IpAddr, prefix: u8) -> Cidr {
        let addr = addr.to_canonical();
        let (addr, prefix) = match addr {
            IpAddr::V4(a) => {
                let p = prefix.min(32);
                let m = mask32(p);
                (IpAddr::V4(Ipv4Addr::from(u32::from(a) & m)), p)
            }
            IpAddr::V6(a) => {
                let p = prefix.min(128);
                let m = mask128(p);
                (IpAddr::V6(Ipv6Addr::from(u128::from(a) & m)), p)
            }
        };
        Cidr { addr, prefix }
    }

    /// Whether `ip` (v4-mapped IPv6 addresses count as IPv4) is inside this prefix.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(n), IpAddr::V4(a)) => u32::from(a) & mask32(self.prefix) == u32::from(n),
            (IpAddr::V6(n), IpAddr::V6(a)) => u128::from(a) & mask128(self.prefix) == u128::from(n),
            _ => false,
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn mask32(p: u8) -> u32 {
    if p == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(p.min(32)))
    }
}

fn mask128(p: u8) -> u128 {
    if p == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(p.min(128)))
    }
}

/// Whether any prefix of `list` holds `ip`.
pub fn any_contains(list: &[Cidr], ip: IpAddr) -> bool {
    list.iter().any(|c| c.contains(ip))
}

/// The default `allow_clients`: `127.0.0.0/8`, `::1/128`, and for each listen address the
/// network of the interface that holds it (every interface's network for `0.0.0.0` / `::`).
/// A listen address no interface holds (yet) adds itself as a /32 (/128).
pub fn default_allow(listen: &[SocketAddr]) -> Vec<Cidr> {
    let mut v = vec![
        Cidr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8),
        Cidr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 128),
    ];
    let nets = interface_networks();
    for l in listen {
        let ip = l.ip().to_canonical();
        let mut found = false;
        for (a, n) in &nets {
            let take = if ip.is_unspecified() {
                // `[::]` also takes IPv4 clients (v4-mapped) on Linux by default.
                a.is_ipv4() == ip.is_ipv4() || ip.is_ipv6()
            } else {
                *a == ip
            };
            if take {
                found = true;
                if !v.contains(n) {
                    v.push(*n);
                }
            }
        }
        if !found && !ip.is_unspecified() {
            let c = Cidr::new(ip, 128);
            if !v.iter().any(|n| n.contains(ip)) {
                v.push(c);
            }
        }
    }
    v
}

/// Every interface address with its network (`getifaddrs`); empty if that fails.
fn interface_networks() -> Vec<(IpAddr, Cidr)> {
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we free below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return out;
    }
    let mut p = head;
    while !p.is_null() {
        // SAFETY: `p` walks the list getifaddrs returned; each node is valid until freed.
        let ifa = unsafe { &*p };
        // SAFETY: the sockaddr pointers are null or point at a sockaddr of the family given.
        if let (Some(a), Some(m)) =
            unsafe { (sockaddr_ip(ifa.ifa_addr), sockaddr_ip(ifa.ifa_netmask)) }
        {
            let prefix = match m {
                IpAddr::V4(m) => u32::from(m).count_ones(),
                IpAddr::V6(m) => u128::from(m).count_ones(),
            };
            out.push((a, Cidr::new(a, prefix as u8)));
        }
        p = ifa.ifa_next;
    }
    // SAFETY: `head` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    out
}

/// The address in a `sockaddr` of family AF_INET or AF_INET6.
///
/// # Safety
/// `sa` is null or points at a valid sockaddr whose size matches its family.
unsafe fn sockaddr_ip(sa: *const libc::sockaddr) -> Option<IpAddr> {
    if sa.is_null() {
        return None;
    }
    match i32::from((*sa).sa_family) {
        libc::AF_INET => {
            let s = &*(sa as *const libc::sockaddr_in);
            Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(s.sin_addr.s_addr))))
        }
        libc::AF_INET6 => {
            let s = &*(sa as *const libc::sockaddr_in6);
            Some(IpAddr::V6(Ipv6Addr::from(s.sin6_addr.s6_addr)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_parse_and_match() {
        let c = Cidr::parse("10.1.2.3/8").unwrap();
        assert_eq!(c.to_string(), "10.0.0.0/8");
        assert!(c.contains("10.200.0.1".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.0.0.9".parse().unwrap()));
        let h = Cidr::parse("127.0.0.2").unwrap();
        assert!(h.contains("127.0.0.2".parse().unwrap()));
        assert!(!h.contains("127.0.0.1".parse().unwrap()));
        let all = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        assert!(!all.contains("::1".parse().unwrap()));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8:1::1".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("ten/8").is_err());
    }

    #[test]
    fn default_allows_loopback_and_the_listen_network() {
        let d = default_allow(&["127.0.0.1:53".parse().unwrap()]);
        assert!(any_contains(&d, "127.9.9.9".parse().unwrap()));
        assert!(any_contains(&d, "::1".parse().unwrap()));
        assert!(!any_contains(&d, "192.0.2.1".parse().unwrap()));
        // An address no interface holds still allows itself.
        let d = default_allow(&["192.0.2.53:53".parse().unwrap()]);
        assert!(any_contains(&d, "192.0.2.53".parse().unwrap()));
    }
}
