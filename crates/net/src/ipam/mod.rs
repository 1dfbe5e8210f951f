//! IPAM: which subnets a network gets and which address each endpoint gets.
//!
//! - [`choose_subnets`] (pure): validates `--subnet/--gateway/--ip-range/--aux-address`, refuses
//!   overlaps with what the host already uses ([`Taken`]), and picks free subnets from Docker's
//!   default pools (and an RFC 4193 ULA /64 for `--ipv6`) when none is given.
//! - [`allocate`] / [`release`]: addresses in the `ipam_allocations` table, inside the caller's
//!   transaction, so the endpoint row and its addresses commit together (shared/DESIGN.md
//!   "IPAM"); the table's primary key `(network_id, address)` makes a double allocation
//!   impossible even across processes.
//!
//! The network manager reaches both through the [`Ipam`] seam: [`LocalIpam`] is the
//! single-host allocator above; an overlay brings one backed by the cluster store.
//!
//! Prefix lengths accepted for a subnet: IPv4 /8 to /30 (a /30 still holds a gateway and one
//! container; anything shorter than /8 is surely a typo), IPv6 /64 to /126 (a /64 is the usual
//! IPv6 link, a /126 the smallest holding the anycast address, a gateway and two containers).

mod alloc;
mod pool;
mod span;
mod subnet;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use berth_store::rusqlite::Transaction;
use ipnet::IpNet;

use crate::model::{NetworkState, SubnetConfig, SubnetState};

pub use alloc::{allocate, release};
pub use pool::default_pools;
pub use subnet::choose_subnets;

/// Address management as the network manager sees it: subnets for a new network, addresses
/// for an endpoint inside the manager's store transaction, and their release.
pub trait Ipam {
    /// The subnets of a new network (see [`choose_subnets`]).
    ///
    /// Errors: [`IpamError`] for invalid or overlapping requests, or exhausted pools.
    fn choose_subnets(
        &self,
        requested: &[SubnetConfig],
        ipv6: bool,
        taken: &[Taken],
    ) -> Result<Vec<SubnetState>, IpamError>;

    /// Addresses for endpoint `endpoint_id` on `network` (see [`allocate`]).
    ///
    /// Errors: [`IpamError`] when a wanted address is taken or the range is full.
    fn allocate(
        &self,
        tx: &Transaction<'_>,
        network: &NetworkState,
        endpoint_id: &str,
        want_v4: Option<Ipv4Addr>,
        want_v6: Option<Ipv6Addr>,
    ) -> Result<Vec<IpNet>, IpamError>;

    /// Releases the addresses of endpoint `endpoint_id`; returns how many there were.
    ///
    /// Errors: [`IpamError`] when the store fails.
    fn release(
        &self,
        tx: &Transaction<'_>,
        network_id: &str,
        endpoint_id: &str,
    ) -> Result<usize, IpamError>;
}

/// The single-host allocator: Docker's default pools and the store's `ipam_allocations`.
#[derive(Debug, Default, Clone, Copy)]
pub struct LocalIpam;

impl Ipam for LocalIpam {
    fn choose_subnets(
        &self,
        requested: &[SubnetConfig],
        ipv6: bool,
        taken: &[Taken],
    ) -> Result<Vec<SubnetState>, IpamError> {
        choose_subnets(requested, ipv6, taken)
    }

    fn allocate(
        &self,
        tx: &Transaction<'_>,
        network: &NetworkState,
        endpoint_id: &str,
        want_v4: Option<Ipv4Addr>,
        want_v6: Option<Ipv6Addr>,
    ) -> Result<Vec<IpNet>, IpamError> {
        allocate(tx, network, endpoint_id, want_v4, want_v6)
    }

    fn release(
        &self,
        tx: &Transaction<'_>,
        network_id: &str,
        endpoint_id: &str,
    ) -> Result<usize, IpamError> {
        release(tx, network_id, endpoint_id)
    }
}

/// Something already using addresses on the host, which a new network must not overlap.
///
/// A `net` with prefix length 0 (a default route) is ignored: it overlaps everything and says
/// nothing about which addresses are in use (moby `netutils.CheckRouteOverlaps` skips it too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    /// The range in use; host bits may be set (an interface address like `192.168.1.5/24`).
    pub net: IpNet,
    /// Who uses it, for error messages: `network frontend`, `route 10.0.0.0/8 dev eth0`,
    /// `address 192.168.1.5/24 on eth0`.
    pub owner: String,
}

/// Errors of subnet choice and address allocation. Messages say what to change.
#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    /// A subnet or ip-range has host bits set (Docker refuses these too).
    #[error("invalid {what} {given}: it should be {canonical}")]
    NotCanonical {
        /// `subnet` or `ip-range`.
        what: &'static str,
        /// As given.
        given: IpNet,
        /// With the host bits cleared.
        canonical: IpNet,
    },
    /// A subnet's prefix length is outside what berth accepts (see the module docs).
    #[error("invalid subnet {subnet}: an {family} subnet must be /{min} to /{max}")]
    PrefixLength {
        /// The subnet.
        subnet: IpNet,
        /// `IPv4` or `IPv6`.
        family: &'static str,
        /// Shortest accepted prefix.
        min: u8,
        /// Longest accepted prefix.
        max: u8,
    },
    /// An IPv6 subnet was given for a network without `--ipv6`.
    #[error("subnet {0} is IPv6 but the network is not: add --ipv6")]
    Ipv6Disabled(IpNet),
    /// `--gateway`, `--ip-range` or `--aux-address` was given without a `--subnet`.
    #[error(
        "--gateway, --ip-range and --aux-address need the --subnet they belong to: add --subnet"
    )]
    MissingSubnet,
    /// The gateway is not inside its subnet.
    #[error("gateway {gateway} is not inside subnet {subnet}: pick an address inside the subnet")]
    GatewayOutside {
        /// The gateway.
        gateway: IpAddr,
        /// The subnet.
        subnet: IpNet,
    },
    /// The gateway is the subnet's network or broadcast address.
    #[error(
        "gateway {gateway} is the {what} of subnet {subnet}: pick a host address such as {suggest}"
    )]
    GatewayReserved {
        /// The gateway.
        gateway: IpAddr,
        /// The subnet.
        subnet: IpNet,
        /// `network address`, `broadcast address` or `subnet-router anycast address`.
        what: &'static str,
        /// The first host address of the subnet.
        suggest: IpAddr,
    },
    /// The ip-range is not inside its subnet.
    #[error("ip-range {range} is not inside subnet {subnet}: pick a range inside the subnet")]
    RangeOutside {
        /// The ip-range.
        range: IpNet,
        /// The subnet.
        subnet: IpNet,
    },
    /// An aux address is not inside its subnet.
    #[error("aux-address {name}={addr} is not inside subnet {subnet}: pick an address inside the subnet")]
    AuxOutside {
        /// The aux address's name.
        name: String,
        /// The address.
        addr: IpAddr,
        /// The subnet.
        subnet: IpNet,
    },
    /// An aux address is the subnet's gateway (given or the default first address).
    #[error("aux-address {name}={gateway} is the gateway of its subnet: an aux address reserves an address for a device outside berth, and the gateway is the bridge's own; pick another address (or another --gateway)")]
    AuxIsGateway {
        /// The aux address's name.
        name: String,
        /// The gateway.
        gateway: IpAddr,
    },
    /// Two aux addresses name the same address.
    #[error(
        "aux-addresses {first} and {second} are both {addr}: give each device its own address"
    )]
    AuxTwice {
        /// The first name.
        first: String,
        /// The second name.
        second: String,
        /// The shared address.
        addr: IpAddr,
    },
    /// Two requested subnets overlap each other.
    #[error("subnets {0} and {1} overlap: give each --subnet its own range")]
    SubnetsOverlap(IpNet, IpNet),
    /// A requested subnet overlaps something the host already uses.
    #[error("subnet {subnet} overlaps {owner} ({net}): choose another --subnet")]
    SubnetTaken {
        /// The requested subnet.
        subnet: IpNet,
        /// The range in use.
        net: IpNet,
        /// Who uses it ([`Taken::owner`]).
        owner: String,
    },
    /// Every default IPv4 pool overlaps something in use.
    #[error("no free IPv4 subnet left in the default pools ({pools}): every one overlaps another network, route or address; pass --subnet to choose one")]
    NoFreePool {
        /// The pools tried, for the message.
        pools: &'static str,
    },
    /// No ULA /64 free after several random tries.
    #[error(
        "could not find a free IPv6 subnet in fd00::/8 after {tries} tries: pass an IPv6 --subnet"
    )]
    NoFreeUla {
        /// How many random global ids were tried.
        tries: u32,
    },
    /// `--ip`/`--ip6` of a family the network has no subnet of.
    #[error("network {network} has no {family} subnet for address {addr}: create the network with one (--subnet{hint}) or drop the address")]
    NoSubnetFor {
        /// Network name.
        network: String,
        /// `IPv4` or `IPv6`.
        family: &'static str,
        /// The address requested.
        addr: IpAddr,
        /// ` and --ipv6` for IPv6, empty otherwise.
        hint: &'static str,
    },
    /// A requested address is in none of the network's subnets.
    #[error("address {addr} is not in the subnet of network {network} ({subnets}): pick an address inside it")]
    AddressOutside {
        /// The address requested.
        addr: IpAddr,
        /// Network name.
        network: String,
        /// The network's subnets of that family, comma-separated.
        subnets: String,
    },
    /// A requested address is in the subnet but outside its ip-range.
    #[error("address {addr} is outside the ip-range {range} of network {network}: pick an address inside the ip-range")]
    AddressOutsideRange {
        /// The address requested.
        addr: IpAddr,
        /// Network name.
        network: String,
        /// The ip-range.
        range: IpNet,
    },
    /// A requested address is the network/broadcast address, the gateway or an aux address.
    #[error("address {addr} is reserved in network {network} as its {what}: pick another address")]
    AddressReserved {
        /// The address requested.
        addr: IpAddr,
        /// Network name.
        network: String,
        /// `gateway`, `aux-address NAME`, `network address`, `broadcast address` ...
        what: String,
    },
    /// A requested address is allocated to another endpoint.
    #[error("address {addr} is already in use in network {network} by {holder}: pick another address or remove that container")]
    AddressInUse {
        /// The address requested.
        addr: IpAddr,
        /// Network name.
        network: String,
        /// `container web1`, or `endpoint <id>` when the container is unknown.
        holder: String,
    },
    /// No free address is left.
    #[error("no free address left in subnet {subnet} of network {network}: remove containers from it, or create a network with a larger --subnet or --ip-range")]
    Exhausted {
        /// Network name.
        network: String,
        /// The subnet (or ip-range) searched.
        subnet: IpNet,
    },
    /// The endpoint (or network) row does not exist: the foreign key refused the allocation.
    #[error("cannot allocate for endpoint {endpoint} in network {network}: the network and endpoint rows must be inserted first, in the same transaction")]
    NotRecorded {
        /// Endpoint id.
        endpoint: String,
        /// Network name.
        network: String,
    },
    /// The table holds something that is not an address.
    #[error("state database: network {network} has an invalid allocated address {text:?}; remove that row from ipam_allocations")]
    BadStoredAddress {
        /// Network id.
        network: String,
        /// The stored text.
        text: String,
    },
    /// A query failed.
    #[error("state database: {0}")]
    Sql(#[from] berth_store::rusqlite::Error),
}

#[cfg(test)]
mod alloc_tests;
#[cfg(test)]
mod subnet_tests;
