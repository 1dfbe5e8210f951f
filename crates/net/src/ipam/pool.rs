//! Automatic subnets: Docker's default IPv4 pools (moby `libnetwork/ipamutils`
//! `localScopeDefaultNetworks`: 172.17.0.0/16 to 172.31.0.0/16, then 192.168.0.0/16 cut into
//! /20s) and random IPv6 unique local /64s (RFC 4193 section 3.2: `fd00::/8`, a 40-bit
//! pseudo-random global id, subnet id 0).

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::span::overlaps;
use super::{IpamError, Taken};

/// The default pools, as written in error messages.
pub(crate) const POOLS_TEXT: &str = "172.17.0.0/16-172.31.0.0/16, 192.168.0.0/20-192.168.240.0/20";

/// How many random ULA global ids are tried before giving up.
const ULA_TRIES: u32 = 64;

/// Docker's default local IPv4 pools in the order they are tried: 172.17.0.0/16 ...
/// 172.31.0.0/16 (15 pools), then 192.168.0.0/20, 192.168.16.0/20 ... 192.168.240.0/20 (16).
pub fn default_pools() -> Vec<IpNet> {
    let b = (17u8..=31).map(|o| Ipv4Net::new(Ipv4Addr::new(172, o, 0, 0), 16));
    let c = (0u8..16).map(|i| Ipv4Net::new(Ipv4Addr::new(192, 168, i * 16, 0), 20));
    b.chain(c)
        .map(|n| IpNet::V4(n.expect("prefix lengths 16 and 20 are valid")))
        .collect()
}

/// The owner of the first `taken` range overlapping `net`, if any (default routes ignored).
pub(crate) fn taken_by<'a>(net: &IpNet, taken: &'a [Taken]) -> Option<&'a Taken> {
    taken
        .iter()
        .find(|t| t.net.prefix_len() > 0 && overlaps(net, &t.net))
}

/// The first default pool overlapping nothing in `taken`.
///
/// Errors: [`IpamError::NoFreePool`].
pub(crate) fn first_free_pool(taken: &[Taken]) -> Result<IpNet, IpamError> {
    default_pools()
        .into_iter()
        .find(|p| taken_by(p, taken).is_none())
        .ok_or(IpamError::NoFreePool { pools: POOLS_TEXT })
}

/// The ULA /64 `fdXX:XXXX:XXXX::/64` for a 40-bit global id (high bits of `id` ignored).
pub(crate) fn ula_for(id: u64) -> IpNet {
    let id = u128::from(id & 0xff_ffff_ffff);
    let addr = (0xfd_u128 << 120) | (id << 80);
    IpNet::V6(Ipv6Net::new(Ipv6Addr::from(addr), 64).expect("64 is a valid prefix length"))
}

/// A ULA /64 from random global ids drawn from `next_id`, the first overlapping nothing.
///
/// Errors: [`IpamError::NoFreeUla`] after [`ULA_TRIES`] overlapping draws.
pub(crate) fn free_ula(
    taken: &[Taken],
    next_id: &mut dyn FnMut() -> u64,
) -> Result<IpNet, IpamError> {
    (0..ULA_TRIES)
        .map(|_| ula_for(next_id()))
        .find(|n| taken_by(n, taken).is_none())
        .ok_or(IpamError::NoFreeUla { tries: ULA_TRIES })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_are_dockers() {
        let p = default_pools();
        assert_eq!(p.len(), 31);
        assert_eq!(p[0].to_string(), "172.17.0.0/16");
        assert_eq!(p[14].to_string(), "172.31.0.0/16");
        assert_eq!(p[15].to_string(), "192.168.0.0/20");
        assert_eq!(p[16].to_string(), "192.168.16.0/20");
        assert_eq!(p[30].to_string(), "192.168.240.0/20");
    }

    #[test]
    fn ula_shape() {
        assert_eq!(ula_for(0x12_3456_789a).to_string(), "fd12:3456:789a::/64");
        assert_eq!(ula_for(u64::MAX).to_string(), "fdff:ffff:ffff::/64");
    }
}
