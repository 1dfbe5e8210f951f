//! veth pairs (`ip link add NAME type veth peer name PEER [netns NS]`; veth(4)).

use std::os::fd::{AsRawFd, BorrowedFd};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkInfo, LinkMessage,
};
use netlink_packet_route::RouteNetlinkMessage;

use super::{by_name, send, LinkError, Request};

fn new_veth_msg(name: &str, peer: &str, mtu: u32) -> LinkMessage {
    new_veth_msg_into(name, peer, mtu, None)
}

fn new_veth_msg_into(
    name: &str,
    peer: &str,
    mtu: u32,
    peer_netns: Option<BorrowedFd<'_>>,
) -> LinkMessage {
    let mut peer_msg = by_name(peer);
    peer_msg.attributes.push(LinkAttribute::Mtu(mtu));
    if let Some(fd) = peer_netns {
        peer_msg
            .attributes
            .push(LinkAttribute::NetNsFd(fd.as_raw_fd()));
    }
    let mut msg = by_name(name);
    msg.attributes.push(LinkAttribute::Mtu(mtu));
    msg.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::Veth),
        LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer_msg))),
    ]));
    msg
}

/// Creates the veth pair `name` <-> `peer`, both with `mtu` bytes and down
/// (`ip link add NAME mtu MTU type veth peer name PEER mtu MTU`).
///
/// Errors: [`LinkError::Netlink`] (`EEXIST` if either name is taken).
pub fn create_veth(name: &str, peer: &str, mtu: u32) -> Result<(), LinkError> {
    let req = Request {
        msg: RouteNetlinkMessage::NewLink(new_veth_msg(name, peer, mtu)),
        flags: NLM_F_CREATE | NLM_F_EXCL,
        what: "RTM_NEWLINK veth",
    };
    send(req, name, &format!("create veth pair {name}/{peer}")).map(|_| ())
}

/// Creates the veth pair `name` <-> `peer` with the peer born inside the network namespace
/// open at `peer_netns` (`ip link add NAME type veth peer name PEER netns NS`). Unlike
/// creating it here and moving it, this costs no RCU grace period (moving a link between
/// namespaces unregisters and re-registers it: ~18 ms measured here).
///
/// Errors: [`LinkError::Netlink`] (`EEXIST` if `name` is taken here or `peer` there).
pub fn create_veth_into(
    name: &str,
    peer: &str,
    mtu: u32,
    peer_netns: BorrowedFd<'_>,
) -> Result<(), LinkError> {
    let req = Request {
        msg: RouteNetlinkMessage::NewLink(new_veth_msg_into(name, peer, mtu, Some(peer_netns))),
        flags: NLM_F_CREATE | NLM_F_EXCL,
        what: "RTM_NEWLINK veth",
    };
    send(
        req,
        name,
        &format!("create veth pair {name}/{peer} into a netns"),
    )
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn veth_request_carries_peer_name_and_mtu() {
        let msg = new_veth_msg("vbA", "vpA", 1450);
        let Some(LinkAttribute::LinkInfo(info)) = msg.attributes.get(2) else {
            panic!("no IFLA_LINKINFO: {msg:?}");
        };
        assert_eq!(info[0], LinkInfo::Kind(InfoKind::Veth));
        let LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))) = &info[1] else {
            panic!("no veth peer: {info:?}");
        };
        assert_eq!(
            peer.attributes,
            vec![
                LinkAttribute::IfName("vpA".into()),
                LinkAttribute::Mtu(1450)
            ]
        );
    }
}
