//! Subnet choice for a new network: validation of the requested subnets and automatic picks
//! from the default pools ([`super::pool`]).

use std::net::IpAddr;

use ipnet::IpNet;
use rand::Rng;

use super::pool::{first_free_pool, free_ula, taken_by};
use super::span::{family_reserved, from_num, host_span, overlaps};
use super::{IpamError, Taken};
use crate::model::{SubnetConfig, SubnetState};

/// Accepted IPv4 prefix lengths (see the module docs of [`super`]).
const V4_PREFIX: (u8, u8) = (8, 30);
/// Accepted IPv6 prefix lengths.
const V6_PREFIX: (u8, u8) = (64, 126);

/// Validates `requested` and completes it into the subnets of a new network.
///
/// - Each requested subnet must be canonical (`172.20.0.0/16`, not `172.20.0.1/16`), have an
///   accepted prefix length (IPv4 /8../30, IPv6 /64../126), be IPv4 unless `ipv6`, overlap no
///   other requested subnet and nothing in `taken` (the error names the owner). Its gateway
///   (default: the first host address, network+1) must be a host address inside it; its
///   ip-range (canonical) and aux addresses inside it. A [`SubnetConfig`] with no subnet and
///   nothing else set is ignored (it means "pick one"); with a gateway, ip-range or aux address
///   but no subnet it is an error.
/// - With no IPv4 subnet requested, the first of [`super::default_pools`] overlapping nothing in
///   `taken` is used; with `ipv6` and no IPv6 subnet, a random ULA `fdXX:XXXX:XXXX::/64`
///   (RFC 4193) overlapping nothing.
///
/// Returns the IPv4 subnets then the IPv6 ones, each family in the order requested.
///
/// Errors: every validation failure has its [`IpamError`] variant; [`IpamError::NoFreePool`]
/// and [`IpamError::NoFreeUla`] when nothing free is left to pick.
pub fn choose_subnets(
    requested: &[SubnetConfig],
    ipv6: bool,
    taken: &[Taken],
) -> Result<Vec<SubnetState>, IpamError> {
    let mut rng = rand::thread_rng();
    choose_with(requested, ipv6, taken, &mut || rng.gen::<u64>())
}

/// [`choose_subnets`] with the ULA global ids drawn from `next_id` (tests pass a fixed sequence).
pub(crate) fn choose_with(
    requested: &[SubnetConfig],
    ipv6: bool,
    taken: &[Taken],
    next_id: &mut dyn FnMut() -> u64,
) -> Result<Vec<SubnetState>, IpamError> {
    let mut chosen = Vec::new();
    for cfg in requested {
        match cfg.subnet {
            Some(subnet) => chosen.push(validate(cfg, subnet, ipv6)?),
            None if cfg.gateway.is_none()
                && cfg.ip_range.is_none()
                && cfg.aux_addresses.is_empty() => {}
            None => return Err(IpamError::MissingSubnet),
        }
    }
    for (i, a) in chosen.iter().enumerate() {
        if let Some(b) = chosen[i + 1..]
            .iter()
            .find(|b| overlaps(&a.subnet, &b.subnet))
        {
            return Err(IpamError::SubnetsOverlap(a.subnet, b.subnet));
        }
        if let Some(t) = taken_by(&a.subnet, taken) {
            return Err(IpamError::SubnetTaken {
                subnet: a.subnet,
                net: t.net,
                owner: t.owner.clone(),
            });
        }
    }
    let (mut v4, mut v6): (Vec<_>, Vec<_>) = chosen
        .into_iter()
        .partition(|s| matches!(s.subnet, IpNet::V4(_)));
    if v4.is_empty() {
        v4.push(automatic(first_free_pool(taken)?));
    }
    if ipv6 && v6.is_empty() {
        v6.push(automatic(free_ula(taken, next_id)?));
    }
    v4.extend(v6);
    Ok(v4)
}

/// A picked subnet with the default gateway and nothing else.
fn automatic(subnet: IpNet) -> SubnetState {
    SubnetState {
        subnet,
        gateway: first_host(&subnet),
        ip_range: None,
        aux_addresses: Default::default(),
    }
}

/// network+1.
fn first_host(subnet: &IpNet) -> IpAddr {
    from_num(host_span(subnet).0, matches!(subnet, IpNet::V6(_)))
}

/// Checks one requested subnet with its gateway, ip-range and aux addresses.
fn validate(cfg: &SubnetConfig, subnet: IpNet, ipv6: bool) -> Result<SubnetState, IpamError> {
    canonical("subnet", subnet)?;
    let ((min, max), family) = match subnet {
        IpNet::V4(_) => (V4_PREFIX, "IPv4"),
        IpNet::V6(_) => (V6_PREFIX, "IPv6"),
    };
    if !(min..=max).contains(&subnet.prefix_len()) {
        return Err(IpamError::PrefixLength {
            subnet,
            family,
            min,
            max,
        });
    }
    if matches!(subnet, IpNet::V6(_)) && !ipv6 {
        return Err(IpamError::Ipv6Disabled(subnet));
    }
    let gateway = match cfg.gateway {
        Some(gateway) => check_gateway(subnet, gateway)?,
        None => first_host(&subnet),
    };
    if let Some(range) = cfg.ip_range {
        canonical("ip-range", range)?;
        if !subnet.contains(&range) {
            return Err(IpamError::RangeOutside { range, subnet });
        }
    }
    if let Some((name, addr)) = cfg.aux_addresses.iter().find(|(_, a)| !subnet.contains(*a)) {
        return Err(IpamError::AuxOutside {
            name: name.clone(),
            addr: *addr,
            subnet,
        });
    }
    if let Some((name, _)) = cfg.aux_addresses.iter().find(|(_, a)| **a == gateway) {
        return Err(IpamError::AuxIsGateway {
            name: name.clone(),
            gateway,
        });
    }
    let mut seen: std::collections::BTreeMap<IpAddr, &str> = Default::default();
    for (name, addr) in &cfg.aux_addresses {
        if let Some(first) = seen.insert(*addr, name) {
            return Err(IpamError::AuxTwice {
                first: first.to_string(),
                second: name.clone(),
                addr: *addr,
            });
        }
    }
    Ok(SubnetState {
        subnet,
        gateway,
        ip_range: cfg.ip_range,
        aux_addresses: cfg.aux_addresses.clone(),
    })
}

/// A gateway must be a host address inside its subnet.
fn check_gateway(subnet: IpNet, gateway: IpAddr) -> Result<IpAddr, IpamError> {
    if !subnet.contains(&gateway) {
        return Err(IpamError::GatewayOutside { gateway, subnet });
    }
    if let Some(what) = family_reserved(&subnet, gateway) {
        return Err(IpamError::GatewayReserved {
            gateway,
            subnet,
            what,
            suggest: first_host(&subnet),
        });
    }
    Ok(gateway)
}

/// Refuses a network with host bits set, as Docker does.
fn canonical(what: &'static str, given: IpNet) -> Result<(), IpamError> {
    let canonical = given.trunc();
    if canonical == given {
        Ok(())
    } else {
        Err(IpamError::NotCanonical {
            what,
            given,
            canonical,
        })
    }
}
