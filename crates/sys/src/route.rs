//! Routes of the main routing table in the calling thread's network namespace,
//! over rtnetlink (`RTM_GETROUTE` dump, `RTM_NEWROUTE`): listing them (the
//! network manager keeps subnets off host routes) and adding one (a
//! container's default route).
//!
//! Protocol facts: rtnetlink(7) (`rtmsg`, `RTA_*`), `include/uapi/linux/rtnetlink.h`
//! (`RT_TABLE_MAIN` = 254, `RTPROT_BOOT`, `RT_SCOPE_*`).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::protocols::NETLINK_ROUTE;

use crate::link::{self, LinkError};
use crate::netlink::{self, NetlinkError};

/// Errors of route queries and changes.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// The netlink exchange failed.
    #[error("{op} failed: {source}")]
    Netlink {
        /// What was being done (`list routes`, `add route 0.0.0.0/0 via 172.18.0.1`).
        op: String,
        /// The netlink failure (keeps the errno: `EEXIST`, `ENETUNREACH` ...).
        #[source]
        source: NetlinkError,
    },
    /// The device of the route could not be resolved, or links could not be listed.
    #[error("route device: {0}")]
    Link(#[from] LinkError),
    /// Destination and gateway are of different address families.
    #[error(
        "route to {dst} via {gateway}: the gateway must be of the destination's address family"
    )]
    FamilyMismatch {
        /// The destination.
        dst: IpNet,
        /// The gateway given.
        gateway: IpAddr,
    },
}

impl RouteError {
    /// The errno behind this error, if any (`EEXIST` for a route already there).
    pub fn errno(&self) -> Option<i32> {
        match self {
            Self::Netlink { source, .. } => source.errno(),
            Self::Link(e) => e.errno(),
            Self::FamilyMismatch { .. } => Some(libc::EINVAL),
        }
    }
}

/// One route of the main table (`ip route` / `ip -6 route`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Destination network (`RTA_DST` and `rtm_dst_len`); `0.0.0.0/0` or `::/0` for a default route.
    pub dst: IpNet,
    /// Next hop (`RTA_GATEWAY`), `None` for on-link and multipath routes.
    pub gateway: Option<IpAddr>,
    /// Output interface name (`RTA_OIF`), `None` if the route has none (multipath, blackhole).
    pub dev: Option<String>,
}

/// Lists the IPv4 and IPv6 routes of the main table (`RT_TABLE_MAIN`) of the
/// calling thread's network namespace.
///
/// Errors: [`RouteError::Netlink`] if the dump fails, [`RouteError::Link`] if
/// links cannot be listed (to name devices).
pub fn list_routes() -> Result<Vec<Route>, RouteError> {
    let names: HashMap<u32, String> = link::list_links()?
        .into_iter()
        .map(|l| (l.index, l.name))
        .collect();
    // AF_UNSPEC dumps every family.
    let msgs = netlink::dump(
        NETLINK_ROUTE,
        RouteNetlinkMessage::GetRoute(RouteMessage::default()),
        "RTM_GETROUTE dump",
    )
    .map_err(|source| RouteError::Netlink {
        op: "list routes".into(),
        source,
    })?;
    Ok(msgs
        .iter()
        .filter_map(|m| match m {
            RouteNetlinkMessage::NewRoute(r) => route_from(r, &names),
            _ => None,
        })
        .collect())
}

fn route_from(msg: &RouteMessage, names: &HashMap<u32, String>) -> Option<Route> {
    let mut table = u32::from(msg.header.table);
    let (mut dst, mut gateway, mut dev) = (None, None, None);
    for attr in &msg.attributes {
        match attr {
            // Tables above 255 are only in RTA_TABLE (header says RT_TABLE_COMPAT).
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Destination(a) => dst = ip_of(a),
            RouteAttribute::Gateway(a) => gateway = ip_of(a),
            RouteAttribute::Oif(i) => dev = names.get(i).cloned(),
            _ => {}
        }
    }
    if table != u32::from(RouteHeader::RT_TABLE_MAIN) {
        return None;
    }
    let dst = match (dst, msg.header.address_family) {
        (Some(ip), _) => ip,
        (None, AddressFamily::Inet) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        (None, AddressFamily::Inet6) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        _ => return None,
    };
    let dst = IpNet::new(dst, msg.header.destination_prefix_length).ok()?;
    Some(Route { dst, gateway, dev })
}

fn ip_of(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

/// Builds the `RTM_NEWROUTE` of `ip route add DST [via GW] [dev IF]` in the main
/// table (`dev_index` resolved by the caller).
fn new_route_msg(dst: IpNet, gateway: Option<IpAddr>, dev_index: Option<u32>) -> RouteMessage {
    let mut msg = RouteMessage::default();
    msg.header.address_family = match dst {
        IpNet::V4(_) => AddressFamily::Inet,
        IpNet::V6(_) => AddressFamily::Inet6,
    };
    msg.header.destination_prefix_length = dst.prefix_len();
    msg.header.table = RouteHeader::RT_TABLE_MAIN;
    msg.header.protocol = RouteProtocol::Boot;
    msg.header.kind = RouteType::Unicast;
    // Without a gateway the destination is directly on the link.
    msg.header.scope = if gateway.is_some() {
        RouteScope::Universe
    } else {
        RouteScope::Link
    };
    if dst.prefix_len() > 0 {
        msg.attributes
            .push(RouteAttribute::Destination(dst.network().into()));
    }
    if let Some(gw) = gateway {
        msg.attributes.push(RouteAttribute::Gateway(gw.into()));
    }
    if let Some(index) = dev_index {
        msg.attributes.push(RouteAttribute::Oif(index));
    }
    msg
}

/// Adds a route to `dst` (`0.0.0.0/0` or `::/0` for the default route) via
/// `gateway` and/or out of `dev` to the main table (`ip route add`). The
/// gateway must be reachable on a link that is up.
///
/// Errors: [`RouteError::FamilyMismatch`], [`RouteError::Link`] if `dev` does
/// not exist, [`RouteError::Netlink`] (`EEXIST` if the route is there,
/// `ENETUNREACH` if the gateway is not on any link).
pub fn add_route(dst: IpNet, gateway: Option<IpAddr>, dev: Option<&str>) -> Result<(), RouteError> {
    if let Some(gw) = gateway {
        if gw.is_ipv4() != matches!(dst, IpNet::V4(_)) {
            return Err(RouteError::FamilyMismatch { dst, gateway: gw });
        }
    }
    let dev_index = dev.map(link::link_index).transpose()?;
    let msg = new_route_msg(dst, gateway, dev_index);
    netlink::request_ack_flags(
        NETLINK_ROUTE,
        RouteNetlinkMessage::NewRoute(msg),
        NLM_F_CREATE | NLM_F_EXCL,
        "RTM_NEWROUTE",
    )
    .map(|_| ())
    .map_err(|source| RouteError::Netlink {
        op: match gateway {
            Some(gw) => format!("add route {dst} via {gw}"),
            None => format!("add route {dst} dev {}", dev.unwrap_or("?")),
        },
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_route_message_has_no_destination_and_universe_scope() {
        let gw: IpAddr = "172.18.0.1".parse().unwrap();
        let msg = new_route_msg("0.0.0.0/0".parse().unwrap(), Some(gw), None);
        assert_eq!(msg.header.address_family, AddressFamily::Inet);
        assert_eq!(msg.header.destination_prefix_length, 0);
        assert_eq!(msg.header.table, 254);
        assert_eq!(msg.header.scope, RouteScope::Universe);
        assert_eq!(msg.header.kind, RouteType::Unicast);
        assert_eq!(msg.attributes, vec![RouteAttribute::Gateway(gw.into())]);
    }

    #[test]
    fn on_link_route_message_is_link_scoped_with_oif() {
        let msg = new_route_msg("fd00:1::/64".parse().unwrap(), None, Some(7));
        assert_eq!(msg.header.address_family, AddressFamily::Inet6);
        assert_eq!(msg.header.destination_prefix_length, 64);
        assert_eq!(msg.header.scope, RouteScope::Link);
        let dst: IpAddr = "fd00:1::".parse().unwrap();
        assert_eq!(
            msg.attributes,
            vec![
                RouteAttribute::Destination(dst.into()),
                RouteAttribute::Oif(7)
            ]
        );
    }

    #[test]
    fn route_from_keeps_main_table_only_and_names_devices() {
        let names = HashMap::from([(3, "eth0".to_string())]);
        let mut msg = new_route_msg("10.1.0.0/16".parse().unwrap(), None, Some(3));
        let route = route_from(&msg, &names).expect("main table route");
        assert_eq!(route.dst, "10.1.0.0/16".parse::<IpNet>().unwrap());
        assert_eq!(route.dev.as_deref(), Some("eth0"));
        assert_eq!(route.gateway, None);
        msg.header.table = 255; // local table
        assert_eq!(route_from(&msg, &names), None);
    }

    #[test]
    fn gateway_of_other_family_is_refused_before_sending() {
        let err = add_route(
            "0.0.0.0/0".parse().unwrap(),
            Some("fe80::1".parse().unwrap()),
            None,
        )
        .unwrap_err();
        assert!(matches!(err, RouteError::FamilyMismatch { .. }), "{err}");
    }

    #[test]
    fn routes_are_listed_unprivileged() {
        // Dumping routes needs no privilege; every result is in the main table.
        let routes = list_routes().expect("list routes");
        for r in routes {
            assert!(r.dst.prefix_len() <= r.dst.max_prefix_len());
        }
    }
}
