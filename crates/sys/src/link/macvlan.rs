//! Children of a parent interface: macvlan (kernel doc `Documentation/networking/macvlan.rst`)
//! and ipvlan (`Documentation/networking/ipvlan.rst`), born in the namespace they serve.

use std::os::fd::{AsRawFd, BorrowedFd};

use netlink_packet_route::link::{
    InfoData, InfoIpVlan, InfoKind, InfoMacVlan, IpVlanFlags, IpVlanMode, LinkAttribute, LinkInfo,
    LinkMessage, MacVlanMode,
};

use super::{by_name, create_kind, link_index, LinkError, MacAddr, IPVLAN, MACVLAN};

/// The mode of a macvlan child (`MACVLAN_MODE_*`, include/uapi/linux/if_link.h; kernel doc
/// `Documentation/networking/macvlan.rst`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MacvlanMode {
    /// Children of one parent cannot talk to each other at all.
    Private,
    /// Traffic between children goes out to the switch (it must reflect it, 802.1Qbg).
    Vepa,
    /// Children of one parent talk directly inside the kernel (Docker's default).
    Bridge,
    /// One child takes the parent over (the parent goes promiscuous).
    Passthru,
}

/// The mode of an ipvlan child (`IPVLAN_MODE_*`, kernel doc `Documentation/networking/ipvlan.rst`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpvlanMode {
    /// Switching at layer 2 on the parent (ARP/ND through the parent).
    L2,
    /// Routing at layer 3; no broadcast or multicast.
    L3,
    /// L3 with the netfilter hooks of the parent's namespace (l3 "symmetric").
    L3s,
}

/// The flag of an ipvlan child (`IPVLAN_F_*`): how children of one parent reach each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpvlanFlag {
    /// Directly in the kernel (no flag; the default).
    Bridge,
    /// Not at all (`IPVLAN_F_PRIVATE`).
    Private,
    /// Through the external switch (`IPVLAN_F_VEPA`).
    Vepa,
}

/// A child link of a parent interface to create (`ip link add link PARENT name NAME ...`).
#[derive(Debug, Clone, Copy)]
pub struct ChildLink<'a> {
    /// The child's name (in the namespace it is born in).
    pub name: &'a str,
    /// The parent interface, in the calling thread's namespace.
    pub parent: &'a str,
    /// MTU in bytes; `None` inherits the parent's.
    pub mtu: Option<u32>,
    /// Link-layer address; `None` lets the kernel choose (ipvlan always uses the parent's).
    pub mac: Option<MacAddr>,
    /// The namespace to create the child in (`IFLA_NET_NS_FD`); `None` is the calling thread's.
    /// Born there, it costs no namespace move (an RCU grace period, ~18 ms here).
    pub netns: Option<BorrowedFd<'a>>,
}

pub(super) fn child_msg(
    child: &ChildLink<'_>,
    parent_index: u32,
    info: Vec<LinkInfo>,
) -> LinkMessage {
    let mut msg = by_name(child.name);
    // IFLA_LINK names the parent by index in the requester's namespace, even when the child
    // is born in another one (the kernel resolves it in the source namespace).
    msg.attributes.push(LinkAttribute::Link(parent_index));
    if let Some(mtu) = child.mtu {
        msg.attributes.push(LinkAttribute::Mtu(mtu));
    }
    if let Some(mac) = child.mac {
        msg.attributes.push(LinkAttribute::Address(mac.0.to_vec()));
    }
    if let Some(fd) = child.netns {
        msg.attributes.push(LinkAttribute::NetNsFd(fd.as_raw_fd()));
    }
    msg.attributes.push(LinkAttribute::LinkInfo(info));
    msg
}

fn new_macvlan_msg(child: &ChildLink<'_>, parent_index: u32, mode: MacvlanMode) -> LinkMessage {
    let mode = match mode {
        MacvlanMode::Private => MacVlanMode::Private,
        MacvlanMode::Vepa => MacVlanMode::Vepa,
        MacvlanMode::Bridge => MacVlanMode::Bridge,
        MacvlanMode::Passthru => MacVlanMode::Passthrough,
    };
    let info = vec![
        LinkInfo::Kind(InfoKind::MacVlan),
        LinkInfo::Data(InfoData::MacVlan(vec![InfoMacVlan::Mode(mode)])),
    ];
    child_msg(child, parent_index, info)
}

fn new_ipvlan_msg(
    child: &ChildLink<'_>,
    parent_index: u32,
    mode: IpvlanMode,
    flag: IpvlanFlag,
) -> LinkMessage {
    let mode = match mode {
        IpvlanMode::L2 => IpVlanMode::L2,
        IpvlanMode::L3 => IpVlanMode::L3,
        IpvlanMode::L3s => IpVlanMode::L3S,
    };
    let flags = match flag {
        IpvlanFlag::Bridge => IpVlanFlags::empty(),
        IpvlanFlag::Private => IpVlanFlags::Private,
        IpvlanFlag::Vepa => IpVlanFlags::Vepa,
    };
    let info = vec![
        LinkInfo::Kind(InfoKind::IpVlan),
        LinkInfo::Data(InfoData::IpVlan(vec![
            InfoIpVlan::Mode(mode),
            InfoIpVlan::Flags(flags),
        ])),
    ];
    // ipvlan children share the parent's MAC: the kernel refuses another one.
    let child = ChildLink {
        mac: None,
        ..*child
    };
    child_msg(&child, parent_index, info)
}

/// Creates the macvlan child `child` of `child.parent` in `mode`, down (`ip link add link
/// PARENT name NAME [address MAC] [mtu MTU] [netns NS] type macvlan mode MODE`).
///
/// Errors: [`LinkError::NotFound`] (the parent), [`LinkError::KindUnsupported`] (no
/// `CONFIG_MACVLAN`), [`LinkError::ParentBusy`] (`EBUSY`: bridge port, ipvlan parent),
/// [`LinkError::Netlink`] (`EEXIST` for a taken name, `EINVAL` for a second child of a
/// passthru parent or a passthru child of a parent that has children).
pub fn create_macvlan(child: &ChildLink<'_>, mode: MacvlanMode) -> Result<(), LinkError> {
    let parent = link_index(child.parent)?;
    create_kind(
        new_macvlan_msg(child, parent, mode),
        child.name,
        child.parent,
        MACVLAN,
    )
}

/// Creates the ipvlan child `child` of `child.parent`, down (`ip link add link PARENT name
/// NAME [mtu MTU] [netns NS] type ipvlan mode MODE FLAG`); `child.mac` is ignored (ipvlan
/// children use the parent's MAC).
///
/// Errors: [`LinkError::NotFound`] (the parent), [`LinkError::KindUnsupported`] (no
/// `CONFIG_IPVLAN`), [`LinkError::ParentBusy`] (`EBUSY`: bridge port, macvlan parent),
/// [`LinkError::Netlink`].
pub fn create_ipvlan(
    child: &ChildLink<'_>,
    mode: IpvlanMode,
    flag: IpvlanFlag,
) -> Result<(), LinkError> {
    let parent = link_index(child.parent)?;
    create_kind(
        new_ipvlan_msg(child, parent, mode, flag),
        child.name,
        child.parent,
        IPVLAN,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::wire;

    fn child<'a>(mac: Option<MacAddr>) -> ChildLink<'a> {
        ChildLink {
            name: "eth0",
            parent: "nic0",
            mtu: Some(1400),
            mac,
            netns: None,
        }
    }

    #[test]
    fn macvlan_request_names_parent_by_index_and_carries_mode() {
        let mac = MacAddr([2, 0x42, 10, 0, 0, 2]);
        let msg = new_macvlan_msg(&child(Some(mac)), 5, MacvlanMode::Private);
        assert_eq!(
            msg.attributes,
            vec![
                LinkAttribute::IfName("eth0".into()),
                LinkAttribute::Link(5),
                LinkAttribute::Mtu(1400),
                LinkAttribute::Address(mac.0.to_vec()),
                LinkAttribute::LinkInfo(vec![
                    LinkInfo::Kind(InfoKind::MacVlan),
                    LinkInfo::Data(InfoData::MacVlan(vec![InfoMacVlan::Mode(
                        MacVlanMode::Private
                    )])),
                ]),
            ]
        );
        // On the wire: IFLA_MACVLAN_MODE is a u32, MACVLAN_MODE_PRIVATE = 1, BRIDGE = 4,
        // PASSTHRU = 8 (include/uapi/linux/if_link.h).
        for (mode, value) in [
            (MacvlanMode::Private, 1u32),
            (MacvlanMode::Vepa, 2),
            (MacvlanMode::Bridge, 4),
            (MacvlanMode::Passthru, 8),
        ] {
            let bytes = wire(&new_macvlan_msg(&child(None), 5, mode));
            assert_eq!(
                u32::from_ne_bytes(bytes[bytes.len() - 4..].try_into().unwrap()),
                value
            );
        }
    }

    #[test]
    fn ipvlan_request_has_mode_and_flags_and_never_a_mac() {
        let mac = MacAddr([2, 0x42, 10, 0, 0, 2]);
        let msg = new_ipvlan_msg(&child(Some(mac)), 5, IpvlanMode::L3, IpvlanFlag::Private);
        assert!(!msg
            .attributes
            .iter()
            .any(|a| matches!(a, LinkAttribute::Address(_))));
        assert_eq!(
            msg.attributes.last(),
            Some(&LinkAttribute::LinkInfo(vec![
                LinkInfo::Kind(InfoKind::IpVlan),
                LinkInfo::Data(InfoData::IpVlan(vec![
                    InfoIpVlan::Mode(IpVlanMode::L3),
                    InfoIpVlan::Flags(IpVlanFlags::Private),
                ])),
            ]))
        );
        // IPVLAN_MODE_L3S = 2, IPVLAN_F_VEPA = 2: mode (u16) then flags (u16), each padded.
        let bytes = wire(&new_ipvlan_msg(
            &child(None),
            5,
            IpvlanMode::L3s,
            IpvlanFlag::Vepa,
        ));
        let n = bytes.len();
        assert_eq!(u16::from_ne_bytes([bytes[n - 4], bytes[n - 3]]), 2);
        assert_eq!(u16::from_ne_bytes([bytes[n - 12], bytes[n - 11]]), 2);
        assert!(String::from_utf8_lossy(&wire(&msg)).contains("ipvlan"));
    }
}
