//! The bridge driver (Docker's `bridge`): one Linux bridge per network carrying
//! the gateway addresses, and one veth pair per endpoint, host end enslaved to
//! the bridge (hairpin on), container end moved into the sandbox and renamed
//! `eth0`, `eth1` ... with the endpoint's MAC, addresses and default routes.
//!
//! Host-side work happens in the calling thread's network namespace (the one
//! berth runs in); sandbox-side work on a dedicated thread inside the sandbox
//! ([`Netlink::run_in`]). NAT, isolation and published ports are the
//! firewall's, not this driver's.
//!
//! Sources: kernel doc `Documentation/networking/bridge.rst` (bridge ports,
//! hairpin), `Documentation/networking/ip-sysctl.rst` (`ip_forward`,
//! `route_localnet`, IPv6 `forwarding`), moby `libnetwork/netutils`
//! (`GenerateMACFromIP`: `02:42` + the IPv4 address).

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use berth_sys::link::{LinkError, MacAddr};
use berth_sys::netns::NetNsError;
use berth_sys::route::RouteError;
use berth_sys::sysctl::SysctlError;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::driver::Driver;
use crate::kernel::{in_netns, Netlink, SandboxNs};
use crate::model::{EndpointState, IfName, NetworkState};

/// Errors of the bridge driver; each names the network or endpoint and keeps
/// the kernel's errno ([`BridgeError::errno`]).
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// A change in the namespace berth runs in (bridge, gateway address, host
    /// end of a veth) failed.
    #[error("bridge network {network}: {source}")]
    Host {
        /// The network name.
        network: String,
        /// The link failure (errno kept).
        #[source]
        source: LinkError,
    },
    /// A gateway is not of its subnet's address family.
    #[error("bridge network {network}: gateway {gateway} does not fit subnet {subnet}; recreate the network with a gateway inside the subnet")]
    Gateway {
        /// The network name.
        network: String,
        /// The gateway.
        gateway: IpAddr,
        /// The subnet.
        subnet: IpNet,
    },
    /// A forwarding sysctl could not be set.
    #[error("bridge network {network}: {source}")]
    Sysctl {
        /// The network name.
        network: String,
        /// The sysctl failure.
        #[source]
        source: SysctlError,
    },
    /// The endpoint's MAC is not a MAC address.
    #[error("endpoint {ifname}: {source}")]
    Mac {
        /// The interface name inside the sandbox.
        ifname: String,
        /// The parse failure.
        #[source]
        source: LinkError,
    },
    /// The sandbox's namespace pin could not be opened or entered.
    #[error("cannot use sandbox netns {netns}: {source}; is the container's sandbox still there?")]
    Netns {
        /// The pin path.
        netns: PathBuf,
        /// The failure (`ENOENT` for a missing pin).
        #[source]
        source: NetNsError,
    },
    /// The sandbox's namespace pin could not be opened to move the veth.
    #[error(
        "cannot open sandbox netns {netns}: {source}; is the container's sandbox still there?"
    )]
    OpenNetns {
        /// The pin path.
        netns: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// Configuring the container end inside the sandbox failed.
    #[error("endpoint {ifname} in sandbox {netns}: {source}")]
    SandboxLink {
        /// The interface name inside the sandbox.
        ifname: String,
        /// The pin path.
        netns: PathBuf,
        /// The link failure (e.g. `EEXIST` when the sandbox already has `ifname`),
        /// boxed to keep the error small.
        #[source]
        source: Box<LinkError>,
    },
    /// Adding a default route inside the sandbox failed.
    #[error("endpoint {ifname} in sandbox {netns}: {source}; a sandbox can have one default route per address family")]
    SandboxRoute {
        /// The interface name inside the sandbox.
        ifname: String,
        /// The pin path.
        netns: PathBuf,
        /// The route failure (`EEXIST` if the sandbox already has a default route),
        /// boxed to keep the error small.
        #[source]
        source: Box<RouteError>,
    },
    /// A step failed and so did its undo (deleting the half-made veth).
    #[error("{error}; undoing it failed too: {undo}")]
    Undo {
        /// The step's failure.
        error: Box<BridgeError>,
        /// The undo's failure.
        undo: Box<BridgeError>,
    },
}

impl BridgeError {
    /// The errno behind this error, if there is one (`EEXIST`, `ENOENT`, `EPERM` ...).
    pub fn errno(&self) -> Option<i32> {
        match self {
            Self::Host { source, .. } | Self::Mac { source, .. } => source.errno(),
            Self::SandboxLink { source, .. } => source.errno(),
            Self::Gateway { .. } => None,
            Self::Sysctl { source, .. } => source.errno(),
            Self::Netns { source, .. } => match source {
                NetNsError::Open { source, .. } => source.raw_os_error(),
                NetNsError::Syscall { errno, .. } => Some(*errno as i32),
                _ => None,
            },
            Self::OpenNetns { source, .. } => source.raw_os_error(),
            Self::SandboxRoute { source, .. } => source.errno(),
            Self::Undo { error, .. } => error.errno(),
        }
    }
}

/// Docker's MAC for an endpoint with IPv4 address `ip`: `02:42` (locally
/// administered, unicast) followed by the four address bytes, so the MAC is
/// stable per address (moby `netutils.GenerateMACFromIP`).
pub fn mac_for(ip: Ipv4Addr) -> String {
    let [a, b, c, d] = ip.octets();
    MacAddr([0x02, 0x42, a, b, c, d]).to_string()
}

/// The first 11 hex characters of an endpoint id (fewer if it is shorter).
fn id_hex(endpoint_id: &str) -> String {
    endpoint_id
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(11)
        .collect::<String>()
        .to_ascii_lowercase()
}

/// The host end of an endpoint's veth pair: `vb` + the first 11 hex characters
/// of the endpoint id (13 bytes, within `IFNAMSIZ`), unique per endpoint so
/// concurrent joins never collide.
pub fn host_ifname_for(endpoint_id: &str) -> IfName {
    format!("vb{}", id_hex(endpoint_id))
        .parse()
        .expect("vb + at most 11 hex digits is a valid interface name")
}

/// The temporary name of the container end before it is moved and renamed:
/// `vp` + the same 11 hex characters, so it is unique like the host end.
fn peer_ifname_for(endpoint_id: &str) -> String {
    format!("vp{}", id_hex(endpoint_id))
}

/// The default routes an endpoint gets: for each address family, the gateway
/// of the first subnet that holds one of the endpoint's addresses.
fn default_gateways(network: &NetworkState, endpoint: &EndpointState) -> Vec<(IpNet, IpAddr)> {
    let mut out: Vec<(IpNet, IpAddr)> = Vec::new();
    for s in &network.subnets {
        let holds = endpoint
            .addresses
            .iter()
            .any(|a| s.subnet.contains(&a.addr()));
        // The default values are the default routes: 0.0.0.0/0 and ::/0.
        let dst = match s.gateway {
            IpAddr::V4(_) => IpNet::V4(Ipv4Net::default()),
            IpAddr::V6(_) => IpNet::V6(Ipv6Net::default()),
        };
        if holds && !out.iter().any(|(d, _)| *d == dst) {
            out.push((dst, s.gateway));
        }
    }
    out
}

/// The bridge driver. Stateless: everything it needs is in the
/// [`NetworkState`] and [`EndpointState`] it is given; kernel work goes through its
/// [`Netlink`] handle.
#[derive(Clone, Copy)]
pub struct BridgeDriver<'a> {
    nl: &'a dyn Netlink,
}

impl<'a> BridgeDriver<'a> {
    /// The driver, acting through `nl`.
    pub fn new(nl: &'a dyn Netlink) -> Self {
        Self { nl }
    }

    /// The network's bridge device.
    fn bridge(network: &NetworkState) -> &str {
        network.device().as_str()
    }
}

impl Driver for BridgeDriver<'_> {
    type Error = BridgeError;

    /// Creates the network's bridge with `network.mtu`, gives
    /// it each subnet's gateway with the subnet's prefix length, sets the
    /// forwarding sysctls and brings it up, all in the calling thread's
    /// namespace. Sysctls: `net.ipv4.ip_forward=1`,
    /// `net.ipv4.conf.<bridge>.route_localnet=1` (so DNAT of published ports
    /// on 127.0.0.1 may route to containers), and with IPv6 subnets
    /// `net.ipv6.conf.all.forwarding=1` (which also makes the host ignore
    /// router advertisements unless `accept_ra=2`, as with Docker).
    /// Idempotent: an existing bridge is reused and converged.
    ///
    /// Errors: [`BridgeError::Host`] (e.g. `EEXIST`-kind `NotBridge` when the
    /// name is taken by another link kind), [`BridgeError::Gateway`],
    /// [`BridgeError::Sysctl`].
    fn create_network(&self, network: &NetworkState) -> Result<(), BridgeError> {
        let br = Self::bridge(network);
        let host = |source| BridgeError::Host {
            network: network.name.to_string(),
            source,
        };
        self.nl.create_bridge(br, network.mtu).map_err(host)?;
        // A fixed MAC: without one a bridge takes the lowest MAC of its ports and changes it as
        // containers come and go, and every container's ARP entry for the gateway goes stale
        // (~25 s without DNS or egress). Setting it also stops the kernel from following ports
        // (net/bridge/br_stp_if.c, `addr_assign_type` NET_ADDR_SET).
        self.nl.set_mac(br, bridge_mac(&network.id)).map_err(host)?;
        for s in &network.subnets {
            let gw = IpNet::new(s.gateway, s.subnet.prefix_len())
                .ok()
                .filter(|_| s.gateway.is_ipv4() == s.subnet.addr().is_ipv4())
                .ok_or_else(|| BridgeError::Gateway {
                    network: network.name.to_string(),
                    gateway: s.gateway,
                    subnet: s.subnet,
                })?;
            self.nl.add_address(br, gw).map_err(host)?;
        }
        set_forwarding(self.nl, network)?;
        self.nl.set_up(br).map_err(host)
    }

    /// Deletes the network's bridge; a missing bridge is success. Any veth
    /// still enslaved is released (not deleted) by the kernel.
    ///
    /// Errors: [`BridgeError::Host`].
    fn delete_network(
        &self,
        network: &NetworkState,
        _others: &[NetworkState],
    ) -> Result<(), BridgeError> {
        let br = Self::bridge(network);
        self.nl.delete_link(br).map_err(|source| BridgeError::Host {
            network: network.name.to_string(),
            source,
        })
    }

    /// Attaches the sandbox whose namespace is pinned at `netns` to `network`:
    /// creates the veth pair `endpoint.host_ifname` <-> a temporary peer (both
    /// `network.mtu`), enslaves the host end to the bridge with hairpin on and
    /// brings it up, moves the peer into the sandbox and there renames it
    /// `endpoint.ifname`, sets `endpoint.mac`, adds `endpoint.addresses`,
    /// brings it up and, when `default_route`, adds a default route per
    /// address family via the gateway of the subnet holding the address.
    ///
    /// A host end left by an interrupted join of the same endpoint is deleted
    /// first, so re-running converges. On failure the host end is deleted,
    /// which destroys the peer wherever it is: nothing is left attached.
    ///
    /// Errors: [`BridgeError::Host`], [`BridgeError::Mac`],
    /// [`BridgeError::OpenNetns`], [`BridgeError::Netns`],
    /// [`BridgeError::SandboxLink`] (`EEXIST`: the sandbox already has
    /// `endpoint.ifname`), [`BridgeError::SandboxRoute`] (`EEXIST`: it already
    /// has a default route).
    fn join(
        &self,
        network: &NetworkState,
        endpoint: &EndpointState,
        netns: &Path,
        default_route: bool,
    ) -> Result<(), BridgeError> {
        let host_if = endpoint.host_ifname.as_str();
        let host = |source| BridgeError::Host {
            network: network.name.to_string(),
            source,
        };
        let mac: MacAddr = endpoint.mac.parse().map_err(|source| BridgeError::Mac {
            ifname: endpoint.ifname.to_string(),
            source,
        })?;
        self.nl.delete_link(host_if).map_err(host)?;
        let ns_file = SandboxNs::open(netns).map_err(|source| BridgeError::OpenNetns {
            netns: netns.to_path_buf(),
            source,
        })?;
        // The sandbox end is born in the sandbox under a temporary name (the final one could
        // be taken by a leftover of a crashed join; rename settles it).
        let peer = peer_ifname_for(&endpoint.id);
        self.nl
            .create_veth_into(host_if, &peer, network.mtu, &ns_file)
            .map_err(host)?;
        let wired = wire(self.nl, network, endpoint, &peer, mac, netns, default_route);
        if let Err(e) = wired {
            // Deleting one end of a veth pair deletes the other, in any namespace.
            return match self.nl.delete_link(host_if) {
                Ok(()) => Err(e),
                Err(undo) => Err(BridgeError::Undo {
                    error: Box::new(e),
                    undo: Box::new(host(undo)),
                }),
            };
        }
        Ok(())
    }

    /// Detaches `endpoint`: deletes the host end of its veth pair, which
    /// removes the container end from the sandbox too. A missing veth is
    /// success (already left, or the sandbox is gone and took the pair).
    ///
    /// Errors: [`BridgeError::Host`].
    fn leave(
        &self,
        network: &NetworkState,
        endpoint: &EndpointState,
        _netns: &Path,
    ) -> Result<(), BridgeError> {
        self.nl
            .delete_link(endpoint.host_ifname.as_str())
            .map_err(|source| BridgeError::Host {
                network: network.name.to_string(),
                source,
            })
    }
}

/// A stable, locally administered unicast MAC for a network's bridge, from its id:
/// `02:42:` and four bytes of the id (the `02` bit pattern marks it locally administered,
/// IEEE 802 "U/L bit").
pub fn bridge_mac(network_id: &str) -> MacAddr {
    let mut b = [0x02, 0x42, 0, 0, 0, 0];
    for (i, pair) in network_id.as_bytes().chunks(2).take(4).enumerate() {
        let hex = std::str::from_utf8(pair).unwrap_or("00");
        b[2 + i] = u8::from_str_radix(hex, 16).unwrap_or(0);
    }
    // Keep clear of Docker-style 02:42:<IPv4> endpoint MACs: a third byte of 0xf0 or more is
    // not the first octet of any private IPv4 subnet berth hands out.
    b[2] |= 0xf0;
    MacAddr(b)
}

/// The forwarding sysctls of [`BridgeDriver::create_network`].
fn set_forwarding(nl: &dyn Netlink, network: &NetworkState) -> Result<(), BridgeError> {
    let err = |source| BridgeError::Sysctl {
        network: network.name.to_string(),
        source,
    };
    nl.set_sysctl("net/ipv4/ip_forward", "1").map_err(err)?;
    let localnet = format!("net/ipv4/conf/{}/route_localnet", network.device());
    nl.set_sysctl(&localnet, "1").map_err(err)?;
    if network.subnets.iter().any(|s| s.subnet.addr().is_ipv6()) {
        nl.set_sysctl("net/ipv6/conf/all/forwarding", "1")
            .map_err(err)?;
    }
    Ok(())
}

/// Join after the veth exists: host end onto the bridge, peer into the sandbox
/// and configured there.
fn wire(
    nl: &dyn Netlink,
    network: &NetworkState,
    endpoint: &EndpointState,
    peer: &str,
    mac: MacAddr,
    netns: &Path,
    default_route: bool,
) -> Result<(), BridgeError> {
    let host_if = endpoint.host_ifname.as_str();
    let host = |source| BridgeError::Host {
        network: network.name.to_string(),
        source,
    };
    nl.set_master(host_if, network.device().as_str())
        .map_err(host)?;
    nl.set_hairpin(host_if, true).map_err(host)?;
    nl.set_up(host_if).map_err(host)?;
    let gateways = if default_route {
        default_gateways(network, endpoint)
    } else {
        Vec::new()
    };
    in_netns(nl, netns, || {
        configure_sandbox_end(nl, endpoint, peer, mac, netns, &gateways)
    })
    .map_err(|source| BridgeError::Netns {
        netns: netns.to_path_buf(),
        source,
    })?
}

/// Runs inside the sandbox: rename, MAC, addresses, up, default routes. The
/// MTU was set when the pair was created.
fn configure_sandbox_end(
    nl: &dyn Netlink,
    endpoint: &EndpointState,
    peer: &str,
    mac: MacAddr,
    netns: &Path,
    gateways: &[(IpNet, IpAddr)],
) -> Result<(), BridgeError> {
    let ifname = endpoint.ifname.as_str();
    let sandbox = |source| BridgeError::SandboxLink {
        ifname: ifname.to_string(),
        netns: netns.to_path_buf(),
        source: Box::new(source),
    };
    nl.rename(peer, ifname).map_err(sandbox)?;
    nl.set_mac(ifname, mac).map_err(sandbox)?;
    for addr in &endpoint.addresses {
        nl.add_address(ifname, *addr).map_err(sandbox)?;
    }
    nl.set_up(ifname).map_err(sandbox)?;
    for (dst, gw) in gateways {
        nl.add_route(*dst, Some(*gw), Some(ifname))
            .map_err(|source| BridgeError::SandboxRoute {
                ifname: ifname.to_string(),
                netns: netns.to_path_buf(),
                source: Box::new(source),
            })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::SysNetlink;
    use crate::model::SubnetState;
    use crate::netstate::{BridgeState, DriverState};

    #[test]
    fn mac_is_02_42_then_the_ipv4_address() {
        assert_eq!(mac_for(Ipv4Addr::new(172, 17, 0, 2)), "02:42:ac:11:00:02");
        assert_eq!(mac_for(Ipv4Addr::new(10, 0, 255, 1)), "02:42:0a:00:ff:01");
    }

    #[test]
    fn veth_names_come_from_the_endpoint_id() {
        let id = "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef";
        assert_eq!(host_ifname_for(id).as_str(), "vb0123456789a");
        assert_eq!(peer_ifname_for(id), "vp0123456789a");
        assert_eq!(host_ifname_for("ab").as_str(), "vbab");
    }

    fn network(subnets: &[(&str, &str)]) -> NetworkState {
        NetworkState {
            id: "f".repeat(64),
            name: "n1".parse().unwrap(),
            subnets: subnets
                .iter()
                .map(|(s, g)| SubnetState {
                    subnet: s.parse().unwrap(),
                    gateway: g.parse().unwrap(),
                    ip_range: None,
                    aux_addresses: Default::default(),
                })
                .collect(),
            ipv6: false,
            internal: false,
            dns: true,
            mtu: 1500,
            kind: DriverState::Bridge(BridgeState {
                bridge: "br-test".parse().unwrap(),
                icc: true,
            }),
            labels: Default::default(),
            options: Default::default(),
            created: String::new(),
        }
    }

    fn endpoint(addresses: &[&str]) -> EndpointState {
        EndpointState {
            id: "e".repeat(64),
            network_id: "f".repeat(64),
            container_id: "c".repeat(64),
            ifname: "eth0".parse().unwrap(),
            host_ifname: host_ifname_for(&"e".repeat(64)),
            mac: "02:42:0a:58:00:02".into(),
            addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
            aliases: vec![],
            ports: vec![],
        }
    }

    #[test]
    fn default_gateway_per_family_of_subnets_holding_an_address() {
        let n = network(&[
            ("10.88.0.0/24", "10.88.0.1"),
            ("10.99.0.0/24", "10.99.0.1"),
            ("fd00:88::/64", "fd00:88::1"),
        ]);
        let gws = default_gateways(&n, &endpoint(&["10.99.0.5/24", "fd00:88::5/64"]));
        let want: Vec<(IpNet, IpAddr)> = vec![
            ("0.0.0.0/0".parse().unwrap(), "10.99.0.1".parse().unwrap()),
            ("::/0".parse().unwrap(), "fd00:88::1".parse().unwrap()),
        ];
        assert_eq!(gws, want);
        assert!(default_gateways(&n, &endpoint(&[])).is_empty());
    }

    #[test]
    fn a_bad_mac_fails_before_anything_is_created() {
        let mut ep = endpoint(&["10.88.0.2/24"]);
        ep.mac = "not-a-mac".into();
        let err = BridgeDriver::new(&SysNetlink)
            .join(
                &network(&[("10.88.0.0/24", "10.88.0.1")]),
                &ep,
                Path::new("/nonexistent"),
                true,
            )
            .unwrap_err();
        assert!(matches!(err, BridgeError::Mac { .. }), "{err}");
    }
}
