//! 802.1q sub-interfaces (`ip link add link PARENT name NAME type vlan id ID`).

use netlink_packet_route::link::{InfoData, InfoKind, InfoVlan, LinkInfo, LinkMessage};

use super::macvlan::{child_msg, ChildLink};
use super::{create_kind, link_index, LinkError, VLAN};

fn new_vlan_msg(name: &str, parent_index: u32, id: u16) -> LinkMessage {
    let child = ChildLink {
        name,
        parent: "",
        mtu: None,
        mac: None,
        netns: None,
    };
    let info = vec![
        LinkInfo::Kind(InfoKind::Vlan),
        LinkInfo::Data(InfoData::Vlan(vec![InfoVlan::Id(id)])),
    ];
    child_msg(&child, parent_index, info)
}

/// Creates the 802.1q sub-interface `name` of `parent` with VLAN id `id` (1..=4094), down
/// (`ip link add link PARENT name NAME type vlan id ID`).
///
/// Errors: [`LinkError::NotFound`] (the parent), [`LinkError::KindUnsupported`] (no
/// `CONFIG_VLAN_8021Q`), [`LinkError::Netlink`] (`EEXIST`, `ERANGE` for a bad id).
pub fn create_vlan(name: &str, parent: &str, id: u16) -> Result<(), LinkError> {
    let index = link_index(parent)?;
    create_kind(new_vlan_msg(name, index, id), name, parent, VLAN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_route::link::LinkAttribute;

    #[test]
    fn vlan_request_names_parent_and_id() {
        let msg = new_vlan_msg("nic0.10", 5, 10);
        assert_eq!(
            msg.attributes,
            vec![
                LinkAttribute::IfName("nic0.10".into()),
                LinkAttribute::Link(5),
                LinkAttribute::LinkInfo(vec![
                    LinkInfo::Kind(InfoKind::Vlan),
                    LinkInfo::Data(InfoData::Vlan(vec![InfoVlan::Id(10)])),
                ]),
            ]
        );
    }
}
