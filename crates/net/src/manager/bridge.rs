//! The network manager's bridge part: `network create -d bridge` validation (options, the
//! device name, subnets away from host routes, addresses and other networks) and the state
//! it records.

use std::net::IpAddr;

use super::{new_id, Manager, ManagerError, NetworkCreateRequest, DEFAULT_BRIDGE};
use crate::ipam::Taken;
use crate::kernel::Netlink;
use crate::model::{IfName, NetworkState};
use crate::netstate::{BridgeState, DriverState};

/// Known `-o` keys of the bridge driver (Docker's names).
pub(super) const OPT_BRIDGE_NAME: &str = "com.docker.network.bridge.name";
const OPT_ICC: &str = "com.docker.network.bridge.enable_icc";
const OPT_MTU: &str = "com.docker.network.driver.mtu";

impl Manager<'_> {
    /// The state of a new bridge network: options, the bridge's name (refused when it
    /// exists on the host or another network uses it), subnets chosen by IPAM. With `dns`
    /// false (the default network) `berth0` may exist already (it outlives a lost store).
    pub(super) fn bridge_state(
        &self,
        req: &NetworkCreateRequest,
        dns: bool,
    ) -> Result<NetworkState, ManagerError> {
        let opts = BridgeOptions::parse(req)?;
        let id = new_id();
        let bridge = match &opts.bridge_name {
            Some(b) => b.clone(),
            None => format!("br-{}", &id[..12]).parse().expect("valid ifname"),
        };
        if dns && bridge.as_str() == DEFAULT_BRIDGE {
            return Err(ManagerError::Invalid(format!(
                "bridge device {DEFAULT_BRIDGE} is reserved for the default network: choose \
                 another com.docker.network.bridge.name"
            )));
        }
        for s in req.subnets.iter().filter_map(|s| s.subnet) {
            check_usable_subnet(s)?;
        }
        // Only a bridge berth makes is berth's to delete (on a failed create and on `network
        // rm`): an interface that already exists is never adopted — except `berth0`, the
        // default network's own device, which outlives a lost state database.
        if dns && self.nl.link_by_name(bridge.as_str()).is_ok() {
            return Err(ManagerError::Invalid(format!(
                "interface {bridge} already exists on this host: choose another \
                 com.docker.network.bridge.name (berth only manages bridges it creates)"
            )));
        }
        let others = self.list()?;
        if let Some(o) = others.iter().find(|o| *o.device() == bridge) {
            return Err(ManagerError::Invalid(format!(
                "bridge device {bridge} is already used by network {}: choose another \
                 com.docker.network.bridge.name",
                o.name
            )));
        }
        let taken = taken_ranges(&*self.nl, &others);
        let subnets = self.ipam.choose_subnets(&req.subnets, req.ipv6, &taken)?;
        Ok(NetworkState {
            id,
            name: req.name.clone(),
            subnets,
            ipv6: req.ipv6,
            internal: req.internal,
            dns,
            mtu: req.mtu.or(opts.mtu).unwrap_or_else(|| host_mtu(&*self.nl)),
            labels: req.labels.clone(),
            options: req.options.clone(),
            created: chrono::Utc::now().to_rfc3339(),
            kind: DriverState::Bridge(BridgeState {
                bridge,
                icc: opts.icc,
            }),
        })
    }
}

/// Validated bridge `-o` options.
struct BridgeOptions {
    bridge_name: Option<IfName>,
    icc: bool,
    mtu: Option<u32>,
}

impl BridgeOptions {
    fn parse(req: &NetworkCreateRequest) -> Result<Self, ManagerError> {
        let mut o = Self {
            bridge_name: None,
            icc: true,
            mtu: None,
        };
        for (k, v) in &req.options {
            match k.as_str() {
                OPT_BRIDGE_NAME => {
                    o.bridge_name = Some(v.parse().map_err(|e: crate::model::ModelError| {
                        ManagerError::Invalid(format!("-o {k}={v}: {e}"))
                    })?)
                }
                OPT_ICC => {
                    o.icc = v.parse().map_err(|_| {
                        ManagerError::Invalid(format!("-o {k}={v}: use true or false"))
                    })?
                }
                OPT_MTU => o.mtu = Some(parse_mtu(v)?),
                _ => {
                    return Err(ManagerError::Invalid(format!(
                        "unknown bridge option -o {k}: berth knows {OPT_BRIDGE_NAME}, {OPT_ICC} \
                         and {OPT_MTU}"
                    )))
                }
            }
        }
        if let Some(m) = req.mtu {
            parse_mtu(&m.to_string())?;
        }
        Ok(o)
    }
}

/// Refuses subnets no network can use: loopback (127/8, ::1), multicast (224/4, ff00::/8),
/// "this network" (0/8), limited broadcast and link-local (169.254/16, fe80::/10), per
/// RFC 6890's special-purpose registries.
fn check_usable_subnet(s: ipnet::IpNet) -> Result<(), ManagerError> {
    let a = s.network();
    let special = match a {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_multicast()
                || v4.octets()[0] == 0
                || v4.is_broadcast()
                || v4.octets()[0] == 255
                || v4.is_link_local()
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_multicast()
                || v6.is_unspecified()
                || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    };
    if special {
        return Err(ManagerError::Invalid(format!(
            "subnet {s} is a special-purpose range (loopback, multicast, link-local or \
             reserved, RFC 6890): choose a private range such as 10.x, 172.16-31.x, 192.168.x \
             or an IPv6 ULA fd00::/8"
        )));
    }
    Ok(())
}

/// MTU limits: 68 (RFC 791 minimum for IPv4) to 65535.
fn parse_mtu(v: &str) -> Result<u32, ManagerError> {
    match v.parse::<u32>() {
        Ok(m) if (68..=65535).contains(&m) => Ok(m),
        _ => Err(ManagerError::Invalid(format!(
            "invalid MTU {v:?}: use a number from 68 to 65535"
        ))),
    }
}

/// Host routes, host addresses and other networks' subnets: what a new subnet must not overlap.
fn taken_ranges(nl: &dyn Netlink, others: &[NetworkState]) -> Vec<Taken> {
    let mut taken: Vec<Taken> = others
        .iter()
        .flat_map(|n| {
            n.subnets.iter().map(move |s| Taken {
                net: s.subnet,
                owner: format!("network {}", n.name),
            })
        })
        .collect();
    if let Ok(routes) = nl.list_routes() {
        for r in routes {
            if r.dst.prefix_len() == 0 {
                continue;
            }
            taken.push(Taken {
                net: r.dst,
                owner: format!("route {} dev {}", r.dst, r.dev.as_deref().unwrap_or("?")),
            });
        }
    }
    if let Ok(addrs) = nl.list_addrs() {
        for a in addrs {
            if a.addr.is_loopback()
                || matches!(a.addr, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80)
            {
                continue;
            }
            if let Ok(net) = ipnet::IpNet::new(a.addr, a.prefix_len) {
                taken.push(Taken {
                    net: net.trunc(),
                    owner: format!("address {}/{} on {}", a.addr, a.prefix_len, a.ifname),
                });
            }
        }
    }
    taken
}

/// The MTU of the interface holding the host's default route; 1500 when there is none.
fn host_mtu(nl: &dyn Netlink) -> u32 {
    let dev = nl
        .list_routes()
        .ok()
        .and_then(|rs| {
            rs.into_iter()
                .find(|r| r.dst.prefix_len() == 0 && r.dst.addr().is_ipv4())
        })
        .and_then(|r| r.dev);
    let links = nl.list_links().unwrap_or_default();
    dev.and_then(|d| links.into_iter().find(|l| l.name == d))
        .map_or(1500, |l| l.mtu)
}
