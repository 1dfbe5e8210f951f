//! Network interfaces and their addresses in the calling thread's network
//! namespace, over rtnetlink: listing (`RTM_GETLINK`, `RTM_GETADDR`), creating
//! bridges and veth pairs (`RTM_NEWLINK`), changing links (`RTM_SETLINK`:
//! up/down, MTU, MAC, name, master, namespace, bridge-port hairpin), deleting
//! them (`RTM_DELLINK`) and adding addresses (`RTM_NEWADDR`).
//!
//! Every request is built by a small pure function (the netlink message `ip`
//! would send) and then sent; unit tests check the messages, privileged tests
//! in `tests/` check what the kernel does with them.
//!
//! One file per link kind, as rtnetlink does: [`bridge`] (bridges and their ports),
//! [`veth`], [`macvlan`] (macvlan and ipvlan children of a parent), [`vlan`] (802.1q),
//! [`dummy`]; addresses in [`address`]. This file holds what every kind shares: errors,
//! [`MacAddr`], listing, generic `RTM_SETLINK` changes and deletion.
//!
//! Protocol facts: rtnetlink(7), `include/uapi/linux/if_link.h`,
//! `include/uapi/linux/if_addr.h`, `net/core/rtnetlink.c` (links addressed by
//! `IFLA_IFNAME` when `ifi_index` is 0), kernel doc
//! `Documentation/networking/bridge.rst` (bridge ports, hairpin mode).

use std::fmt;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::str::FromStr;

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::protocols::NETLINK_ROUTE;

use crate::netlink::{self, NetlinkError};

mod address;
mod bridge;
mod dummy;
mod macvlan;
mod veth;
mod vlan;

pub use address::add_address;
pub use bridge::{create_bridge, set_bridge_port_hairpin};
pub use dummy::create_dummy;
pub use macvlan::{create_ipvlan, create_macvlan, ChildLink, IpvlanFlag, IpvlanMode, MacvlanMode};
pub use veth::{create_veth, create_veth_into};
pub use vlan::create_vlan;

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
    /// A link that should be a bridge exists with another kind.
    #[error("interface {name:?} exists but is a {kind} link, not a bridge; remove it (`ip link del {name}`) or choose another bridge name")]
    NotBridge {
        /// The interface name.
        name: String,
        /// Its kind (`IFLA_INFO_KIND`), `unknown` if it has none (e.g. a physical NIC).
        kind: String,
    },
    /// A MAC address string could not be parsed.
    #[error("invalid MAC address {0:?}: use six colon-separated hex bytes like 02:42:ac:11:00:02")]
    BadMac(String),
    /// The kernel has no driver for a link kind: `RTM_NEWLINK` answered `EOPNOTSUPP`
    /// ("Unknown device type", net/core/rtnetlink.c) because the module is not built.
    #[error("this kernel has no {kind} links (RTM_NEWLINK: \"Unknown device type\"): use a kernel built with {config} or load its module (modprobe {module})")]
    KindUnsupported {
        /// The link kind (`ipvlan`, `vlan`, `dummy`, `macvlan`).
        kind: &'static str,
        /// The kernel option that provides it (`CONFIG_IPVLAN`, ...).
        config: &'static str,
        /// The module name.
        module: &'static str,
    },
    /// The parent refused another child: the kernel allows one receive handler per device
    /// (`netdev_rx_handler_register` answers `EBUSY`), so a bridge or bond port, or a parent
    /// that already carries ipvlan (for macvlan) or macvlan (for ipvlan) children, cannot take it.
    #[error("parent {parent} cannot take a {kind} child (EBUSY): the kernel allows one receive handler per device, so it must not be a bridge or bond port and macvlan and ipvlan children cannot share one parent; use another parent")]
    ParentBusy {
        /// The parent interface.
        parent: String,
        /// The child kind asked for.
        kind: &'static str,
    },
}

impl LinkError {
    /// The errno behind this error: the kernel's for [`LinkError::Netlink`],
    /// `ENODEV` for [`LinkError::NotFound`], `EEXIST` for [`LinkError::NotBridge`].
    pub fn errno(&self) -> Option<i32> {
        match self {
            Self::Netlink { source, .. } => source.errno(),
            Self::NotFound { .. } => Some(libc::ENODEV),
            Self::NotBridge { .. } => Some(libc::EEXIST),
            Self::BadMac(_) => Some(libc::EINVAL),
            Self::KindUnsupported { .. } => Some(libc::EOPNOTSUPP),
            Self::ParentBusy { .. } => Some(libc::EBUSY),
        }
    }
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

impl FromStr for MacAddr {
    type Err = LinkError;

    /// Parses `aa:bb:cc:dd:ee:ff` (six hex bytes, either case).
    fn from_str(s: &str) -> Result<Self, LinkError> {
        let bad = || LinkError::BadMac(s.to_string());
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for byte in &mut out {
            let part = parts.next().ok_or_else(bad)?;
            if part.len() != 2 {
                return Err(bad());
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| bad())?;
        }
        match parts.next() {
            Some(_) => Err(bad()),
            None => Ok(MacAddr(out)),
        }
    }
}

/// One network interface as the kernel reports it (`ip -d link`).
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
    /// Link kind (`IFLA_INFO_KIND`: `bridge`, `veth`, ...); `None` for devices without one (`lo`, NICs).
    pub kind: Option<String>,
    /// Index of the master device (`IFLA_MASTER`), e.g. the bridge a port is enslaved to.
    pub master: Option<u32>,
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

/// One rtnetlink request as built: the message, the extra header flags
/// (besides `NLM_F_REQUEST | NLM_F_ACK`) and a short description for errors.
#[derive(Debug)]
struct Request {
    msg: RouteNetlinkMessage,
    flags: u16,
    what: &'static str,
}

/// Sends `req` in the calling thread's namespace; `ENODEV` becomes
/// [`LinkError::NotFound`] for `name`, other failures [`LinkError::Netlink`] for `op`.
fn send(req: Request, name: &str, op: &str) -> Result<Vec<RouteNetlinkMessage>, LinkError> {
    netlink::request_ack_flags(NETLINK_ROUTE, req.msg, req.flags, req.what).map_err(|source| {
        if source.errno() == Some(libc::ENODEV) {
            LinkError::NotFound {
                name: name.to_string(),
            }
        } else {
            LinkError::Netlink {
                op: op.to_string(),
                source,
            }
        }
    })
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

/// The interface `name` of the calling thread's namespace (one `RTM_GETLINK`,
/// not a dump).
///
/// Errors: [`LinkError::NotFound`] if there is none, [`LinkError::Netlink`] otherwise.
pub fn link_by_name(name: &str) -> Result<Link, LinkError> {
    let replies = send(
        Request {
            msg: RouteNetlinkMessage::GetLink(by_name(name)),
            flags: 0,
            what: "RTM_GETLINK",
        },
        name,
        &format!("look up interface {name}"),
    )?;
    replies
        .iter()
        .find_map(|m| match m {
            RouteNetlinkMessage::NewLink(l) => Some(link_from(l)),
            _ => None,
        })
        .ok_or_else(|| LinkError::NotFound {
            name: name.to_string(),
        })
}

/// The index of interface `name` (`ip link show NAME`).
///
/// Errors: as [`link_by_name`].
pub fn link_index(name: &str) -> Result<u32, LinkError> {
    link_by_name(name).map(|l| l.index)
}

fn link_from(msg: &LinkMessage) -> Link {
    let mut link = Link {
        name: String::new(),
        index: msg.header.index,
        up: msg.header.flags.contains(LinkFlags::Up),
        mtu: 0,
        mac: None,
        kind: None,
        master: None,
    };
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfName(name) => link.name = name.clone(),
            LinkAttribute::Mtu(mtu) => link.mtu = *mtu,
            LinkAttribute::Address(bytes) => {
                link.mac = <[u8; 6]>::try_from(bytes.as_slice()).ok().map(MacAddr);
            }
            LinkAttribute::Controller(index) => link.master = Some(*index),
            LinkAttribute::LinkInfo(infos) => {
                link.kind = infos.iter().find_map(|i| match i {
                    LinkInfo::Kind(kind) => Some(kind.to_string()),
                    _ => None,
                });
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

/// A link message that names its link by `IFLA_IFNAME` with index 0, which
/// `RTM_GETLINK`/`RTM_SETLINK`/`RTM_DELLINK` accept (net/core/rtnetlink.c);
/// saves looking the index up first.
fn by_name(name: &str) -> LinkMessage {
    let mut msg = LinkMessage::default();
    msg.attributes.push(LinkAttribute::IfName(name.to_string()));
    msg
}

/// Sends an `RTM_SETLINK` for `name` carrying `msg`'s header and attributes.
fn set_link(name: &str, msg: LinkMessage, op: &str) -> Result<(), LinkError> {
    let req = Request {
        msg: RouteNetlinkMessage::SetLink(msg),
        flags: 0,
        what: "RTM_SETLINK",
    };
    send(req, name, op).map(|_| ())
}

fn up_down_msg(name: &str, up: bool) -> LinkMessage {
    let mut msg = by_name(name);
    if up {
        msg.header.flags = LinkFlags::Up;
    }
    msg.header.change_mask = LinkFlags::Up;
    msg
}

/// Sets interface `name` administratively up (`ip link set NAME up`) in the
/// calling thread's network namespace.
///
/// Errors: [`LinkError::NotFound`] if no such interface, [`LinkError::Netlink`]
/// if the kernel refuses (errno kept, e.g. `EPERM` when not root).
pub fn set_up(name: &str) -> Result<(), LinkError> {
    set_link(name, up_down_msg(name, true), &format!("set {name} up"))
}

/// Sets interface `name` administratively down (`ip link set NAME down`).
///
/// Errors: as [`set_up`].
pub fn set_down(name: &str) -> Result<(), LinkError> {
    set_link(name, up_down_msg(name, false), &format!("set {name} down"))
}

fn mtu_msg(name: &str, mtu: u32) -> LinkMessage {
    let mut msg = by_name(name);
    msg.attributes.push(LinkAttribute::Mtu(mtu));
    msg
}

/// Sets the MTU of `name` in bytes (`ip link set NAME mtu MTU`).
///
/// Errors: [`LinkError::NotFound`], [`LinkError::Netlink`] (`EINVAL` when the
/// MTU is outside the device's min/max).
pub fn set_mtu(name: &str, mtu: u32) -> Result<(), LinkError> {
    set_link(
        name,
        mtu_msg(name, mtu),
        &format!("set mtu {mtu} on {name}"),
    )
}

fn mac_msg(name: &str, mac: MacAddr) -> LinkMessage {
    let mut msg = by_name(name);
    msg.attributes.push(LinkAttribute::Address(mac.0.to_vec()));
    msg
}

/// Sets the link-layer address of `name` (`ip link set NAME address MAC`).
///
/// Errors: [`LinkError::NotFound`], [`LinkError::Netlink`] (`EADDRNOTAVAIL` for
/// a multicast MAC).
pub fn set_mac(name: &str, mac: MacAddr) -> Result<(), LinkError> {
    set_link(
        name,
        mac_msg(name, mac),
        &format!("set mac {mac} on {name}"),
    )
}

fn rename_msg(index: u32, new_name: &str) -> LinkMessage {
    let mut msg = LinkMessage::default();
    // A rename needs the index: with index 0 IFLA_IFNAME selects the link.
    msg.header.index = index;
    msg.attributes
        .push(LinkAttribute::IfName(new_name.to_string()));
    msg
}

/// Renames `name` to `new_name` (`ip link set NAME name NEW`); the link must be down.
///
/// Errors: [`LinkError::NotFound`], [`LinkError::Netlink`] (`EEXIST` if
/// `new_name` is taken, `EBUSY` if the link is up).
pub fn rename(name: &str, new_name: &str) -> Result<(), LinkError> {
    let index = link_index(name)?;
    set_link(
        name,
        rename_msg(index, new_name),
        &format!("rename {name} to {new_name}"),
    )
}

fn master_msg(name: &str, master_index: u32) -> LinkMessage {
    let mut msg = by_name(name);
    msg.attributes.push(LinkAttribute::Controller(master_index));
    msg
}

/// Enslaves `name` to the bridge `bridge` (`ip link set NAME master BRIDGE`).
///
/// Errors: [`LinkError::NotFound`] naming whichever is missing, [`LinkError::Netlink`].
pub fn set_master(name: &str, bridge: &str) -> Result<(), LinkError> {
    let master = link_index(bridge)?;
    set_link(
        name,
        master_msg(name, master),
        &format!("set master {bridge} on {name}"),
    )
}

fn netns_msg(name: &str, netns_fd: BorrowedFd<'_>) -> LinkMessage {
    let mut msg = by_name(name);
    msg.attributes
        .push(LinkAttribute::NetNsFd(netns_fd.as_raw_fd()));
    msg
}

/// Moves `name` into the network namespace open at `netns_fd` (`IFLA_NET_NS_FD`,
/// `ip link set NAME netns NS`). The link keeps its name there; its index may change.
///
/// Errors: [`LinkError::NotFound`], [`LinkError::Netlink`] (`EEXIST` if the
/// target namespace has a link of that name, `EINVAL` if the fd is not a netns).
pub fn move_to_netns(name: &str, netns_fd: BorrowedFd<'_>) -> Result<(), LinkError> {
    set_link(
        name,
        netns_msg(name, netns_fd),
        &format!("move {name} to another netns"),
    )
}

/// Deletes interface `name` (`ip link del NAME`); deleting one end of a veth
/// pair deletes both. A missing interface is success (`ENODEV`).
///
/// Errors: [`LinkError::Netlink`] for other failures.
pub fn delete_link(name: &str) -> Result<(), LinkError> {
    let req = Request {
        msg: RouteNetlinkMessage::DelLink(by_name(name)),
        flags: 0,
        what: "RTM_DELLINK",
    };
    match send(req, name, &format!("delete interface {name}")) {
        Ok(_) | Err(LinkError::NotFound { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Sends a creating `RTM_NEWLINK` and names the failures a missing module (`EOPNOTSUPP`) or a
/// busy parent (`EBUSY`) cause.
fn create_kind(
    msg: LinkMessage,
    name: &str,
    parent: &str,
    kind: (&'static str, &'static str, &'static str),
) -> Result<(), LinkError> {
    let req = Request {
        msg: RouteNetlinkMessage::NewLink(msg),
        flags: NLM_F_CREATE | NLM_F_EXCL,
        what: "RTM_NEWLINK",
    };
    let op = format!("create {} link {name} on {parent}", kind.0);
    send(req, name, &op)
        .map(|_| ())
        .map_err(|e| match e.errno() {
            Some(libc::EOPNOTSUPP) => LinkError::KindUnsupported {
                kind: kind.0,
                config: kind.1,
                module: kind.2,
            },
            Some(libc::EBUSY) if !parent.is_empty() => LinkError::ParentBusy {
                parent: parent.to_string(),
                kind: kind.0,
            },
            _ => e,
        })
}

const MACVLAN: (&str, &str, &str) = ("macvlan", "CONFIG_MACVLAN", "macvlan");
const IPVLAN: (&str, &str, &str) = ("ipvlan", "CONFIG_IPVLAN", "ipvlan");
const VLAN: (&str, &str, &str) = ("802.1q vlan", "CONFIG_VLAN_8021Q", "8021q");
const DUMMY: (&str, &str, &str) = ("dummy", "CONFIG_DUMMY", "dummy");

/// The bytes the kernel would receive for `msg` (header + attributes), for the message tests.
#[cfg(test)]
fn wire(msg: &LinkMessage) -> Vec<u8> {
    use netlink_packet_core::Emitable;
    let mut buf = vec![0; msg.buffer_len()];
    msg.emit(&mut buf);
    buf
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
    fn mac_parses_and_round_trips() {
        let mac: MacAddr = "02:42:AC:11:00:0a".parse().unwrap();
        assert_eq!(mac, MacAddr([0x02, 0x42, 0xac, 0x11, 0x00, 0x0a]));
        assert_eq!(mac.to_string().parse::<MacAddr>().unwrap(), mac);
        for bad in [
            "",
            "02:42:ac:11:00",
            "02:42:ac:11:00:0a:01",
            "2:42:ac:11:00:0a",
            "zz:42:ac:11:00:0a",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn set_requests_name_the_link_by_ifname() {
        let up = up_down_msg("vb1", true);
        assert_eq!(up.header.index, 0);
        assert_eq!(up.header.flags, LinkFlags::Up);
        assert_eq!(up.header.change_mask, LinkFlags::Up);
        assert_eq!(up.attributes, vec![LinkAttribute::IfName("vb1".into())]);
        let down = up_down_msg("vb1", false);
        assert!(down.header.flags.is_empty());
        assert_eq!(down.header.change_mask, LinkFlags::Up);
        assert_eq!(mtu_msg("vb1", 1400).attributes[1], LinkAttribute::Mtu(1400));
        let mac = MacAddr([2, 0x42, 0, 0, 0, 1]);
        assert_eq!(
            mac_msg("vb1", mac).attributes[1],
            LinkAttribute::Address(mac.0.to_vec())
        );
        assert_eq!(
            master_msg("vb1", 9).attributes[1],
            LinkAttribute::Controller(9)
        );
        // A rename must address the link by index: IFLA_IFNAME is the new name.
        let rn = rename_msg(12, "eth0");
        assert_eq!(rn.header.index, 12);
        assert_eq!(rn.attributes, vec![LinkAttribute::IfName("eth0".into())]);
    }

    #[test]
    fn errors_keep_errno() {
        assert_eq!(
            LinkError::NotFound { name: "x".into() }.errno(),
            Some(libc::ENODEV)
        );
    }

    #[test]
    fn missing_link_by_name_is_not_found_unprivileged() {
        let err = link_by_name("berth-none0").unwrap_err();
        assert!(matches!(err, LinkError::NotFound { .. }), "{err}");
        assert_eq!(link_index("lo").unwrap(), 1);
    }

    #[test]
    fn lo_is_listed_unprivileged() {
        // Listing links needs no privilege; every namespace has `lo` at index 1.
        let links = list_links().expect("list links");
        let lo = links.iter().find(|l| l.name == "lo").expect("lo present");
        assert_eq!(lo.index, 1);
        assert_eq!(lo.mac, Some(MacAddr([0; 6])));
    }

    #[test]
    fn missing_kind_names_the_kernel_option() {
        let e = LinkError::KindUnsupported {
            kind: IPVLAN.0,
            config: IPVLAN.1,
            module: IPVLAN.2,
        };
        assert!(e.to_string().contains("CONFIG_IPVLAN"), "{e}");
        assert_eq!(e.errno(), Some(libc::EOPNOTSUPP));
    }
}
