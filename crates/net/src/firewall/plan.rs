//! Firewall planning, backend neutral and pure: what a network and an endpoint's published
//! ports mean as policy [`Element`]s, and which elements each firewall operation adds or
//! removes ([`Plan`]). No kernel access; the nftables rendering is in [`super::nft`].

use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::model::{EndpointState, IfName, NetworkName, NetworkState, PortMapping};
use crate::port::Proto;

/// Errors of planning: inputs that cannot be expressed as policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// Published ports on a network that has none ([`crate::policy::check_publish`]).
    #[error(transparent)]
    Publish(#[from] crate::policy::PublishRefused),
    /// A port published on an address of a family the endpoint has no address of.
    #[error("container {container} has no {family} address on network {network} to publish {host}:{port} to; publish on an address of the other family or enable it on the network")]
    NoAddress {
        /// The container id.
        container: String,
        /// The network.
        network: NetworkName,
        /// `IPv4` or `IPv6`.
        family: Family,
        /// The host address asked for.
        host: IpAddr,
        /// The host port.
        port: u16,
    },
}

/// An address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// The family of `ip`.
    pub fn of(ip: IpAddr) -> Family {
        match ip {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        })
    }
}

/// Where a published port listens on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Listen {
    /// Every local address of the family (`-p 8080:80`, `0.0.0.0:`, `[::]:`), including
    /// loopback and the bridges' gateways.
    Any(Family),
    /// One host address (`-p 127.0.0.1:8080:80`).
    Addr(IpAddr),
}

/// One published port: traffic to `listen`:`host_port`/`proto` is sent to
/// `target`:`container_port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// The network of the endpoint.
    pub network: NetworkName,
    /// The container id (64 hex).
    pub container: String,
    /// The host side.
    pub listen: Listen,
    /// Protocol.
    pub proto: Proto,
    /// Host port.
    pub host_port: u16,
    /// The endpoint's address (same family as `listen`).
    pub target: IpAddr,
    /// Port inside the container.
    pub container_port: u16,
}

impl Publish {
    /// The family of both sides.
    pub fn family(&self) -> Family {
        Family::of(self.target)
    }
}

/// One fact of berth's policy. Each is added and removed on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Element {
    /// `bridge` is a berth network's bridge: routed traffic between it and another berth bridge
    /// is dropped unless DNAT'ed (isolation), routed traffic in and out of it passes, and
    /// DNAT'ed traffic in and out of it is masqueraded (hairpin).
    Bridge {
        /// The network.
        network: NetworkName,
        /// Its bridge device.
        bridge: IfName,
    },
    /// `bridge` belongs to an internal network: no routed traffic to or from anything else.
    Internal {
        /// The network.
        network: NetworkName,
        /// Its bridge device.
        bridge: IfName,
    },
    /// Masquerade for one subnet of a non-internal network: traffic from `subnet` leaving by an
    /// interface that is not a berth bridge (egress), and DNAT'ed traffic from `subnet` going
    /// back out `bridge` (hairpin: without it the reply would bypass the host's conntrack).
    Masquerade {
        /// The network.
        network: NetworkName,
        /// Its bridge device.
        bridge: IfName,
        /// One of its subnets (host bits cleared).
        subnet: IpNet,
    },
    /// The network's gateway address on its bridge: the embedded DNS server listens there,
    /// and port 53 on it answers only packets arriving from this bridge (never other hosts,
    /// never other networks' containers: no open resolver).
    Gateway {
        /// The network.
        network: NetworkName,
        /// Its bridge device.
        bridge: IfName,
        /// One gateway address (one per subnet).
        gateway: IpAddr,
    },
    /// Bridged frames from this endpoint's host-side veth to other ports are dropped (icc off).
    NoIcc {
        /// The network.
        network: NetworkName,
        /// The container id.
        container: String,
        /// The host-side veth.
        port: IfName,
    },
    /// A published port (DNAT).
    Publish(Publish),
}

/// What one firewall operation does, in order: delete berth's tables (`reset`), create the base
/// (`base`), remove elements, add elements.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Delete berth's tables first (reconcile, last network removed).
    pub reset: bool,
    /// Create the tables, sets, maps and fixed rules (idempotent; keeps elements).
    pub base: bool,
    /// Elements to remove (absent ones are ignored).
    pub remove: Vec<Element>,
    /// Elements to add.
    pub add: Vec<Element>,
    /// Replace the generation stamped in berth's tables with this one ([`generation`] of the
    /// networks the tables hold after this plan): set by every plan that changes which
    /// networks the rules cover.
    pub generation: Option<u32>,
}

/// The base alone.
pub fn ensure_base() -> Plan {
    Plan {
        base: true,
        ..Plan::default()
    }
}

/// Deletes berth's tables (used when the last network is gone).
pub fn drop_tables() -> Plan {
    Plan {
        reset: true,
        ..Plan::default()
    }
}

/// The base plus `net`'s elements, stamped with `generation` (that of every network the
/// tables cover once `net` is added).
pub fn add_network(net: &NetworkState, generation: u32) -> Plan {
    Plan {
        base: true,
        add: network_elements(net),
        generation: Some(generation),
        ..Plan::default()
    }
}

/// Removal of `net`'s elements, with the base first so that it works (and stays one
/// transaction) even when the tables are gone; stamped with `generation` (that of the
/// networks left).
pub fn remove_network(net: &NetworkState, generation: u32) -> Plan {
    Plan {
        base: true,
        remove: network_elements(net),
        generation: Some(generation),
        ..Plan::default()
    }
}

/// The generation of a set of networks: a 32-bit digest (the first four bytes of SHA-256)
/// of what the rules of each network depend on (id, bridge, internal, icc, subnets and
/// gateways), independent of order. Stamped into berth's tables by every network change and
/// computed from the store before each firewall change: a mismatch (or no stamp) means the
/// rules do not cover the store's networks (an external `nft flush ruleset`, a command
/// killed between its firewall step and its record) and must be rebuilt.
pub fn generation(networks: &[NetworkState]) -> u32 {
    use sha2::{Digest, Sha256};
    let mut lines: Vec<String> = networks
        .iter()
        .map(|n| {
            let subnets: Vec<String> = n
                .subnets
                .iter()
                .map(|s| format!("{}@{}", s.subnet, s.gateway))
                .collect();
            format!(
                "{} {} internal={} icc={} {}",
                n.id,
                n.device(),
                n.internal,
                n.icc(),
                subnets.join(",")
            )
        })
        .collect();
    lines.sort();
    let digest = Sha256::digest(lines.join("\n").as_bytes());
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// `ep`'s elements on `net`.
///
/// Errors: [`PlanError`] when a port cannot be published (see its variants).
pub fn add_endpoint(net: &NetworkState, ep: &EndpointState) -> Result<Plan, PlanError> {
    Ok(Plan {
        add: endpoint_elements(net, ep)
            .into_iter()
            .collect::<Result<_, _>>()?,
        ..Plan::default()
    })
}

/// Removal of `ep`'s elements; ports that could never have been added are skipped.
pub fn remove_endpoint(net: &NetworkState, ep: &EndpointState) -> Plan {
    Plan {
        remove: endpoint_elements(net, ep).into_iter().flatten().collect(),
        ..Plan::default()
    }
}

/// Everything from scratch: reset, then (with any network) the base and all elements.
/// Endpoints of unlisted networks and unplannable ports are skipped; of two publishes of one
/// host port the first wins.
pub fn reconcile(networks: &[NetworkState], endpoints: &[EndpointState]) -> Plan {
    let mut add: Vec<Element> = networks.iter().flat_map(network_elements).collect();
    let mut seen = HashSet::new();
    for ep in endpoints {
        let Some(net) = networks.iter().find(|n| n.id == ep.network_id) else {
            continue;
        };
        for el in endpoint_elements(net, ep).into_iter().flatten() {
            if let Element::Publish(p) = &el {
                if !seen.insert((p.listen, p.proto, p.host_port)) {
                    continue;
                }
            }
            add.push(el);
        }
    }
    Plan {
        reset: true,
        base: !networks.is_empty(),
        remove: Vec::new(),
        add,
        generation: (!networks.is_empty()).then(|| generation(networks)),
    }
}

/// The elements a network stands for: its bridge, its gateways, and either `internal` or NAT
/// per subnet.
pub fn network_elements(net: &NetworkState) -> Vec<Element> {
    let mut out = vec![Element::Bridge {
        network: net.name.clone(),
        bridge: net.device().clone(),
    }];
    out.extend(net.subnets.iter().map(|s| Element::Gateway {
        network: net.name.clone(),
        bridge: net.device().clone(),
        gateway: s.gateway,
    }));
    if net.internal {
        out.push(Element::Internal {
            network: net.name.clone(),
            bridge: net.device().clone(),
        });
    } else {
        out.extend(net.subnets.iter().map(|s| Element::Masquerade {
            network: net.name.clone(),
            bridge: net.device().clone(),
            subnet: s.subnet.trunc(),
        }));
    }
    out
}

/// The elements an endpoint stands for: the icc block (icc off) and one publish per port and
/// matching address family; each failure is reported in place.
pub fn endpoint_elements(
    net: &NetworkState,
    ep: &EndpointState,
) -> Vec<Result<Element, PlanError>> {
    let mut out = Vec::new();
    if !net.icc() {
        out.push(Ok(Element::NoIcc {
            network: net.name.clone(),
            container: ep.container_id.clone(),
            port: ep.host_ifname.clone(),
        }));
    }
    if let Err(e) = crate::policy::check_publish(net, !ep.ports.is_empty()) {
        out.push(Err(e.into()));
        return out;
    }
    for pm in &ep.ports {
        out.extend(publishes(net, ep, pm));
    }
    out
}

/// One mapping to elements: an any-address mapping goes to every family the endpoint has an
/// address of; `0.0.0.0`/`::` mean any address of that family (Docker's reading); a specific
/// address needs an endpoint address of its family.
fn publishes(
    net: &NetworkState,
    ep: &EndpointState,
    pm: &PortMapping,
) -> Vec<Result<Element, PlanError>> {
    let target = |fam: Family| {
        ep.addresses
            .iter()
            .map(|a| a.addr())
            .find(|a| Family::of(*a) == fam)
    };
    let listens: Vec<Listen> = match pm.host_ip {
        None => vec![Listen::Any(Family::V4), Listen::Any(Family::V6)],
        Some(ip) if ip.is_unspecified() => vec![Listen::Any(Family::of(ip))],
        Some(ip) => vec![Listen::Addr(ip)],
    };
    let mut out = Vec::new();
    for listen in listens {
        let fam = match listen {
            Listen::Any(f) => f,
            Listen::Addr(ip) => Family::of(ip),
        };
        match (target(fam), listen) {
            (Some(target), _) => out.push(Ok(Element::Publish(Publish {
                network: net.name.clone(),
                container: ep.container_id.clone(),
                listen,
                proto: pm.proto,
                host_port: pm.host_port,
                target,
                container_port: pm.container_port,
            }))),
            (None, Listen::Any(_)) => {}
            (None, Listen::Addr(host)) => out.push(Err(PlanError::NoAddress {
                container: ep.container_id.clone(),
                network: net.name.clone(),
                family: fam,
                host,
                port: pm.host_port,
            })),
        }
    }
    out
}

impl fmt::Display for Element {
    /// One line per element, for golden tests and logs: `bridge br-x net=web`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Element::Bridge { network, bridge } => write!(f, "bridge {bridge} net={network}"),
            Element::Internal { network, bridge } => write!(f, "internal {bridge} net={network}"),
            Element::Masquerade {
                network,
                bridge,
                subnet,
            } => write!(f, "nat {subnet} via {bridge} net={network}"),
            Element::Gateway {
                network,
                bridge,
                gateway,
            } => write!(f, "gateway {gateway} on {bridge} net={network}"),
            Element::NoIcc {
                network,
                container,
                port,
            } => write!(f, "no-icc {port} net={network} ctr={}", short(container)),
            Element::Publish(p) => {
                let listen = match p.listen {
                    Listen::Any(Family::V4) => "0.0.0.0".to_string(),
                    Listen::Any(Family::V6) => "[::]".to_string(),
                    Listen::Addr(IpAddr::V6(a)) => format!("[{a}]"),
                    Listen::Addr(a) => a.to_string(),
                };
                let target = match p.target {
                    IpAddr::V6(a) => format!("[{a}]"),
                    a => a.to_string(),
                };
                write!(
                    f,
                    "publish {listen}:{}/{} -> {target}:{} net={} ctr={}",
                    p.host_port,
                    p.proto.as_str(),
                    p.container_port,
                    p.network,
                    short(&p.container)
                )
            }
        }
    }
}

/// The first 12 characters of a container id, as Docker prints it.
pub fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}
