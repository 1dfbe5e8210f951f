//! Address allocation in the `ipam_allocations(network_id, address, endpoint_id)` table, inside
//! the caller's transaction (shared/DESIGN.md "IPAM").
//!
//! Addresses are stored as text in their standard form (`172.18.0.2`, RFC 5952 for IPv6), one
//! row per address, without a prefix length. Finding the lowest free address reads the
//! network's rows once through the primary-key index (`network_id` prefix), sorts them as
//! integers and walks the gaps: one query and O(n log n) in-memory work for n endpoints
//! (measured by the `allocation_cost_with_1000_endpoints` test).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use berth_store::rusqlite::{self, ffi, params, OptionalExtension, Transaction};
use ipnet::IpNet;

use super::span::{bounds, family_reserved, from_num, host_span, to_num};
use super::IpamError;
use crate::model::{NetworkState, SubnetState};

/// The network's allocated addresses, per family, as sorted integers.
struct Allocated {
    v4: Vec<u128>,
    v6: Vec<u128>,
}

impl Allocated {
    /// Reads only `address`, so SQLite answers from the primary-key index alone (a covering
    /// index scan over the `network_id` prefix) without visiting the table rows: about half
    /// the cost of also reading `endpoint_id`.
    fn load(tx: &Transaction<'_>, network_id: &str) -> Result<Self, IpamError> {
        let mut stmt =
            tx.prepare_cached("SELECT address FROM ipam_allocations WHERE network_id = ?1")?;
        let mut rows = stmt.query(params![network_id])?;
        let mut out = Self {
            v4: Vec::new(),
            v6: Vec::new(),
        };
        while let Some(row) = rows.next()? {
            let text = row.get_ref(0)?.as_str().map_err(sql_type)?;
            let addr: IpAddr = text.parse().map_err(|_| IpamError::BadStoredAddress {
                network: network_id.to_string(),
                text: text.to_string(),
            })?;
            match addr {
                IpAddr::V4(_) => out.v4.push(to_num(addr)),
                IpAddr::V6(_) => out.v6.push(to_num(addr)),
            }
        }
        out.v4.sort_unstable();
        out.v6.sort_unstable();
        Ok(out)
    }

    fn family(&self, v6: bool) -> &[u128] {
        if v6 {
            &self.v6
        } else {
            &self.v4
        }
    }
}

/// A column of the wrong type, as a query error.
fn sql_type(e: rusqlite::types::FromSqlError) -> IpamError {
    IpamError::Sql(rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Text,
        Box::new(e),
    ))
}

/// Allocates one address per address family of `network` to `endpoint_id`: for each family
/// the network has a subnet of, the wanted address (`--ip`/`--ip6`) if given, otherwise the
/// lowest free host address of the ip-range (or the subnet), trying the family's subnets in
/// order. Never handed out: the network and broadcast addresses (IPv6: the subnet-router
/// anycast address), the gateway, the aux addresses and anything already allocated.
///
/// Inserts the rows into `ipam_allocations` in `tx`; the network row and the endpoint row must
/// already be in `tx` (foreign keys), and the caller commits them together. Returns the
/// addresses with their subnet's prefix length (`172.18.0.2/16`), IPv4 first.
///
/// Errors: [`IpamError::NoSubnetFor`], [`IpamError::AddressOutside`],
/// [`IpamError::AddressReserved`], [`IpamError::AddressOutsideRange`],
/// [`IpamError::AddressInUse`] (naming the container holding it) for a wanted address;
/// [`IpamError::Exhausted`]; [`IpamError::NotRecorded`] without the endpoint row;
/// [`IpamError::Sql`].
///
/// Call it once per endpoint: a second call gives the endpoint a second address of each family
/// (the table has no index on `endpoint_id` to check that cheaply; a new endpoint id per
/// attachment makes it moot).
pub fn allocate(
    tx: &Transaction<'_>,
    network: &NetworkState,
    endpoint_id: &str,
    want_v4: Option<Ipv4Addr>,
    want_v6: Option<Ipv6Addr>,
) -> Result<Vec<IpNet>, IpamError> {
    let used = Allocated::load(tx, &network.id)?;
    let mut out = Vec::new();
    for (v6, want) in [
        (false, want_v4.map(IpAddr::V4)),
        (true, want_v6.map(IpAddr::V6)),
    ] {
        let subnets: Vec<&SubnetState> = network
            .subnets
            .iter()
            .filter(|s| matches!(s.subnet, IpNet::V6(_)) == v6)
            .collect();
        if subnets.is_empty() {
            match want {
                Some(addr) => return Err(no_subnet_for(network, addr)),
                None => continue,
            }
        }
        let (addr, subnet) = match want {
            Some(addr) => check_wanted(tx, network, &subnets, used.family(v6), addr)?,
            None => lowest_free(network, &subnets, used.family(v6))?,
        };
        insert(tx, network, endpoint_id, addr)?;
        out.push(IpNet::new(addr, subnet.prefix_len()).expect("prefix of a valid subnet"));
    }
    Ok(out)
}

/// Frees every address `endpoint_id` holds in network `network_id`; returns how many.
/// (Deleting the endpoint row frees them too: `ON DELETE CASCADE`.)
///
/// Errors: [`IpamError::Sql`].
pub fn release(
    tx: &Transaction<'_>,
    network_id: &str,
    endpoint_id: &str,
) -> Result<usize, IpamError> {
    Ok(tx.execute(
        "DELETE FROM ipam_allocations WHERE network_id = ?1 AND endpoint_id = ?2",
        params![network_id, endpoint_id],
    )?)
}

fn no_subnet_for(network: &NetworkState, addr: IpAddr) -> IpamError {
    let (family, hint) = if addr.is_ipv6() {
        ("IPv6", " and --ipv6")
    } else {
        ("IPv4", "")
    };
    IpamError::NoSubnetFor {
        network: network.name.to_string(),
        family,
        addr,
        hint,
    }
}

/// The inclusive integer span addresses of `s` are handed out from.
fn alloc_span(s: &SubnetState) -> (u128, u128) {
    let (lo, hi) = host_span(&s.subnet);
    match s.ip_range {
        Some(r) => {
            let (rlo, rhi) = bounds(&r);
            (lo.max(rlo), hi.min(rhi))
        }
        None => (lo, hi),
    }
}

/// The lowest address of the first subnet with one free.
fn lowest_free(
    network: &NetworkState,
    subnets: &[&SubnetState],
    used: &[u128],
) -> Result<(IpAddr, IpNet), IpamError> {
    for s in subnets {
        let (lo, hi) = alloc_span(s);
        let start = used.partition_point(|&u| u < lo);
        let end = used.partition_point(|&u| u <= hi);
        let mut blocked: Vec<u128> = used[start..end].to_vec();
        let reserved = std::iter::once(s.gateway).chain(s.aux_addresses.values().copied());
        blocked.extend(reserved.map(to_num).filter(|n| (lo..=hi).contains(n)));
        blocked.sort_unstable();
        blocked.dedup();
        let mut cand = lo;
        for b in blocked {
            if b != cand {
                break;
            }
            cand += 1;
        }
        if cand <= hi {
            return Ok((from_num(cand, s.subnet.addr().is_ipv6()), s.subnet));
        }
    }
    let last = subnets.last().expect("called with at least one subnet");
    Err(IpamError::Exhausted {
        network: network.name.to_string(),
        subnet: last.ip_range.unwrap_or(last.subnet),
    })
}

/// Checks a wanted address against the subnets, reservations, ip-range and allocations.
fn check_wanted(
    tx: &Transaction<'_>,
    network: &NetworkState,
    subnets: &[&SubnetState],
    used: &[u128],
    addr: IpAddr,
) -> Result<(IpAddr, IpNet), IpamError> {
    let name = || network.name.to_string();
    let Some(s) = subnets.iter().find(|s| s.subnet.contains(&addr)) else {
        let list: Vec<String> = subnets.iter().map(|s| s.subnet.to_string()).collect();
        return Err(IpamError::AddressOutside {
            addr,
            network: name(),
            subnets: list.join(", "),
        });
    };
    let reserved = family_reserved(&s.subnet, addr)
        .map(str::to_string)
        .or_else(|| (s.gateway == addr).then(|| "gateway".to_string()))
        .or_else(|| {
            let aux = s.aux_addresses.iter().find(|(_, a)| **a == addr);
            aux.map(|(n, _)| format!("aux-address {n}"))
        });
    if let Some(what) = reserved {
        return Err(IpamError::AddressReserved {
            addr,
            network: name(),
            what,
        });
    }
    if let Some(range) = s.ip_range.filter(|r| !r.contains(&addr)) {
        return Err(IpamError::AddressOutsideRange {
            addr,
            network: name(),
            range,
        });
    }
    if used.binary_search(&to_num(addr)).is_ok() {
        return Err(in_use(tx, network, addr)?);
    }
    Ok((addr, s.subnet))
}

/// Inserts one row; the primary key refuses an address someone else holds (a concurrent
/// writer in a non-IMMEDIATE transaction) and the foreign keys a missing endpoint row.
fn insert(
    tx: &Transaction<'_>,
    network: &NetworkState,
    endpoint_id: &str,
    addr: IpAddr,
) -> Result<(), IpamError> {
    let r = tx
        .prepare_cached(
            "INSERT INTO ipam_allocations(network_id, address, endpoint_id) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![network.id, addr.to_string(), endpoint_id]);
    match r {
        Ok(_) => Ok(()),
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.extended_code == ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
        {
            Err(in_use(tx, network, addr)?)
        }
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.extended_code == ffi::SQLITE_CONSTRAINT_FOREIGNKEY =>
        {
            Err(IpamError::NotRecorded {
                endpoint: endpoint_id.to_string(),
                network: network.name.to_string(),
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// [`IpamError::AddressInUse`] naming the container holding `addr` (or its endpoint).
fn in_use(
    tx: &Transaction<'_>,
    network: &NetworkState,
    addr: IpAddr,
) -> Result<IpamError, IpamError> {
    let row: Option<(Option<String>, Option<String>, Option<String>)> = tx
        .query_row(
            "SELECT a.endpoint_id, e.container_id, c.name FROM ipam_allocations a \
             LEFT JOIN endpoints e ON e.id = a.endpoint_id \
             LEFT JOIN containers c ON c.id = e.container_id \
             WHERE a.network_id = ?1 AND a.address = ?2",
            params![network.id, addr.to_string()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let holder = match row {
        Some((_, _, Some(name))) => format!("container {name}"),
        Some((_, Some(cid), None)) => format!("container {}", &cid[..cid.len().min(12)]),
        Some((Some(eid), None, None)) => format!("endpoint {eid}"),
        _ => "another endpoint".to_string(),
    };
    Ok(IpamError::AddressInUse {
        addr,
        network: network.name.to_string(),
        holder,
    })
}
