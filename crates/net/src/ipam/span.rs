//! Address arithmetic for IPAM: addresses as integers (IPv4 in the low 32 bits of a `u128`),
//! and the span of host addresses a subnet can hand out.
//!
//! Reserved by the address family itself: in IPv4 the network address and the broadcast address
//! (RFC 919, RFC 922); in IPv6 only the Subnet-Router anycast address, which is the network
//! address (RFC 4291 section 2.6.1). IPv6 has no broadcast, so its last address is usable.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// `addr` as an integer (IPv4 in the low 32 bits).
pub(crate) fn to_num(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// The address of family `v6` whose integer is `n` (for IPv4 only the low 32 bits count).
pub(crate) fn from_num(n: u128, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(n))
    } else {
        // Truncation is intended: IPv4 numbers never exceed u32::MAX here.
        IpAddr::V4(Ipv4Addr::from((n & u128::from(u32::MAX)) as u32))
    }
}

/// First and last address of `net` (network and broadcast/last address) as integers.
pub(crate) fn bounds(net: &IpNet) -> (u128, u128) {
    (to_num(net.network()), to_num(net.broadcast()))
}

/// The host addresses of `subnet`, inclusive: network+1 ..= broadcast-1 for IPv4,
/// network+1 ..= last for IPv6. Empty (first > last) for IPv4 /31, /32 and IPv6 /128.
pub(crate) fn host_span(subnet: &IpNet) -> (u128, u128) {
    let (net, last) = bounds(subnet);
    match subnet {
        IpNet::V4(_) => (net + 1, last.saturating_sub(1)),
        IpNet::V6(_) => (net.saturating_add(1), last),
    }
}

/// What the family reserves at `addr` in `subnet`, if anything: "network address" or
/// "broadcast address" (IPv4), "subnet-router anycast address" (IPv6).
pub(crate) fn family_reserved(subnet: &IpNet, addr: IpAddr) -> Option<&'static str> {
    let (net, last) = bounds(subnet);
    let n = to_num(addr);
    match subnet {
        IpNet::V4(_) if n == net => Some("network address"),
        IpNet::V4(_) if n == last => Some("broadcast address"),
        IpNet::V6(_) if n == net => Some("subnet-router anycast address"),
        _ => None,
    }
}

/// Whether two networks share any address (same family, one contains the other's start).
pub(crate) fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    let (a, b) = (a.trunc(), b.trunc());
    a.contains(&b.network()) || b.contains(&a.network())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn spans() {
        let (lo, hi) = host_span(&net("10.0.0.0/30"));
        assert_eq!(from_num(lo, false), "10.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(from_num(hi, false), "10.0.0.2".parse::<IpAddr>().unwrap());
        let (lo, hi) = host_span(&net("fd00::/126"));
        assert_eq!(from_num(lo, true), "fd00::1".parse::<IpAddr>().unwrap());
        assert_eq!(from_num(hi, true), "fd00::3".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn overlap_rules() {
        assert!(overlaps(&net("10.0.0.0/8"), &net("10.1.0.0/16")));
        assert!(overlaps(&net("10.1.0.0/16"), &net("10.0.0.0/8")));
        assert!(overlaps(&net("192.168.1.5/24"), &net("192.168.1.0/28")));
        assert!(!overlaps(&net("10.0.0.0/16"), &net("10.1.0.0/16")));
        assert!(!overlaps(&net("10.0.0.0/8"), &net("fd00::/8")));
    }

    #[test]
    fn reserved_by_family() {
        let s = net("10.0.0.0/24");
        assert_eq!(
            family_reserved(&s, "10.0.0.0".parse().unwrap()),
            Some("network address")
        );
        assert_eq!(
            family_reserved(&s, "10.0.0.255".parse().unwrap()),
            Some("broadcast address")
        );
        assert_eq!(family_reserved(&s, "10.0.0.7".parse().unwrap()), None);
        let s6 = net("fd00::/64");
        assert!(family_reserved(&s6, "fd00::".parse().unwrap()).is_some());
        assert!(family_reserved(&s6, "fd00::ffff:ffff:ffff:ffff".parse().unwrap()).is_none());
    }
}
