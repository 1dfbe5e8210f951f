//! Network interfaces and their addresses in the calling thread's network
//! namespace, over rtnetlink (`RTM_GETLINK`, `RTM_GETADDR`, `RTM_SETLINK`).
//!
//! Protocol facts: rtnetlink(7), `include/uapi/linux/if_link.h`.

use std::fmt;
use std::net::IpAddr;

use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::protocols::NETLINK_ROUTE;

use crate::netlink::{self, NetlinkError};

/// Errors of link queries and changes.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The netlink exchange failed.
    #[error("{op} failed: {source}")]
    Netlink {
        /// What was being done (`list links`, `set lo up`, ...).
        op: String,
        /// The netlink failure (keeps the errno).
        #[source]
        source: NetlinkError,
    },
    /// No interface with that name exists in the current namespace.
    #[error("no network interface named {name:?} in this network namespace; check the name with `ip link`")]
    NotFound {
        /// The interface name that was looked up.
        name: String,
    },
}

/// A 48-bit IEEE 802 MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

/// One network interface as the kernel reports it (`ip link`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Interface name (`IFLA_IFNAME`), at most 15 bytes.
    pub name: String,
    /// Interface index (`ifi_index`), unique per namespace.
    pub index: u32,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// MTU in bytes (`IFLA_MTU`); 0 if the kernel did not report one.
    pub mtu: u32,
    /// Link-layer address when it is 6 bytes long (Ethernet-like links, including `lo`'s all-zero one).
    pub mac: Option<MacAddr>,
}

/// One interface address (`ip addr`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addr {
    /// Index of the interface that carries the address.
    pub index: u32,
    /// Name of that interface (empty if it vanished between the two dumps).
    pub ifname: String,
    /// The address (`IFA_LOCAL` for IPv4, else `IFA_ADDRESS`).
    pub addr: IpAddr,
    /// Prefix length in bits.
    pub prefix_len: u8,
}

fn nl_err(op: &str) -> impl FnOnce(NetlinkError) -> LinkError + '_ {
    move |source| LinkError::Netlink {
        op: op.to_string(),
        source,
    }
}

/// Lists every interface of the calling thread's network namespace, by index.
///
/// Errors: [`LinkError::Netlink`] if the dump fails.
pub fn list_links() -> Result<Vec<Link>, LinkError> {
    let msgs = netlink::dump(
        NETLINK_ROUTE,
        RouteNetlinkMessage::GetLink(LinkMessage::default()),
        "RTM_GETLINK dump",
    )
    .map_err(nl_err("list links"))?;
    let mut links: Vec<Link> = msgs
        .into_iter()
        .filter_map(|m| match m {
            RouteNetlinkMessage::NewLink(l) => Some(link_from(&l)),
            _ => None,
        })
        .collect();
    links.sort_by_key(|l| l.index);
    Ok(links)
}

fn link_from(msg: &LinkMessage) -> Link {
    let mut link = Link {
        name: String::new(),
        index: msg.header.index,
        up: msg.header.flags.contains(LinkFlags::Up),
        mtu: 0,
        mac: None,
    };
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfName(name) => link.name = name.clone(),
            LinkAttribute::Mtu(mtu) => link.mtu = *mtu,
            LinkAttribute::Address(bytes) => {
                link.mac = <[u8; 6]>::try_from(bytes.as_slice()).ok().map(MacAddr);
            }
            _ => {}
        }
    }
    link
}

/// Lists every IPv4 and IPv6 address of the calling thread's network namespace.
///
/// Errors: [`LinkError::Netlink`] if a dump fails.
pub fn list_addrs() -> Result<Vec<Addr>, LinkError> {
    let links = list_links()?;
    let msgs = netlink::dump(
        NETLINK_ROUTE,
        RouteNetlinkMessage::GetAddress(AddressMessage::default()),
        "RTM_GETADDR dump",
    )
    .map_err(nl_err("list addresses"))?;
    let addrs = msgs
        .into_iter()
        .filter_map(|m| match m {
            RouteNetlinkMessage::NewAddress(a) => addr_from(&a, &links),
            _ => None,
        })
        .collect();
    Ok(addrs)
}

fn addr_from(msg: &AddressMessage, links: &[Link]) -> Option<Addr> {
    let mut address = None;
    let mut local = None;
    for attr in &msg.attributes {
        match attr {
            AddressAttribute::Address(a) => address = Some(*a),
            AddressAttribute::Local(a) => local = Some(*a),
            _ => {}
        }
    }
    // For point-to-point IPv4 links IFA_ADDRESS is the peer; IFA_LOCAL is ours.
    let addr = local.or(address)?;
    let index = msg.header.index;
    let ifname = links
        .iter()
        .find(|l| l.index == index)
        .map(|l| l.name.clone())
        .unwrap_or_default();
    Some(Addr {
        index,
        ifname,
        addr,
        prefix_len: msg.header.prefix_len,
    })
}

/// Sets interface `name` administratively up (`ip link set NAME up`) in the
/// calling thread's network namespace.
///
/// Errors: [`LinkError::NotFound`] if no such interface, [`LinkError::Netlink`]
/// if the kernel refuses (errno kept, e.g. `EPERM` when not root).
pub fn set_up(name: &str) -> Result<(), LinkError> {
    let link = list_links()?
        .into_iter()
        .find(|l| l.name == name)
        .ok_or_else(|| LinkError::NotFound {
            name: name.to_string(),
        })?;
    let mut msg = LinkMessage::default();
    msg.header.index = link.index;
    msg.header.flags = LinkFlags::Up;
    msg.header.change_mask = LinkFlags::Up;
    let op = format!("set {name} up");
    netlink::request_ack(
        NETLINK_ROUTE,
        RouteNetlinkMessage::SetLink(msg),
        "RTM_SETLINK",
    )
    .map_err(nl_err(&op))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_displays_lowercase_colon_separated() {
        let mac = MacAddr([0x02, 0x42, 0xac, 0x11, 0x00, 0x0a]);
        assert_eq!(mac.to_string(), "02:42:ac:11:00:0a");
    }

    #[test]
    fn lo_is_listed_unprivileged() {
        // Listing links needs no privilege; every namespace has `lo` at index 1.
        let links = list_links().expect("list links");
        let lo = links.iter().find(|l| l.name == "lo").expect("lo present");
        assert_eq!(lo.index, 1);
        assert_eq!(lo.mac, Some(MacAddr([0; 6])));
    }
}
