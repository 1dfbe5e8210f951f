//! Bridges and bridge ports: `ip link add NAME type bridge`, `bridge link set dev NAME
//! hairpin on` (kernel doc `Documentation/networking/bridge.rst`).

use netlink_packet_core::{DefaultNla, NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::link::{
    InfoKind, LinkAttribute, LinkInfo, LinkMessage, LinkProtoInfoBridge,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::{by_name, link_by_name, link_index, send, set_link, set_mtu, LinkError, Request};

/// `IFLA_BRPORT_MODE` (include/uapi/linux/if_link.h): the bridge port's
/// hairpin ("reflective relay") flag inside a nested `IFLA_PROTINFO`.
const IFLA_BRPORT_MODE: u16 = 4;

fn hairpin_msg(index: u32, on: bool) -> LinkMessage {
    let mut msg = LinkMessage::default();
    // AF_BRIDGE routes the request to the bridge's port handler
    // (br_setlink), which only finds the port by index.
    msg.header.interface_family = AddressFamily::Bridge;
    msg.header.index = index;
    let mode = DefaultNla::new(IFLA_BRPORT_MODE, vec![u8::from(on)]);
    msg.attributes.push(LinkAttribute::ProtoInfoBridge(vec![
        LinkProtoInfoBridge::Other(mode),
    ]));
    msg
}

/// Turns hairpin mode of bridge port `name` on or off (`bridge link set dev
/// NAME hairpin on`): with it the bridge may send a frame back out of the port
/// it came in on, which a container needs to reach its own published port
/// through the host's address (kernel doc `Documentation/networking/bridge.rst`).
///
/// Errors: [`LinkError::NotFound`], [`LinkError::Netlink`] (`EOPNOTSUPP` if
/// `name` is not a bridge port).
pub fn set_bridge_port_hairpin(name: &str, on: bool) -> Result<(), LinkError> {
    let index = link_index(name)?;
    set_link(
        name,
        hairpin_msg(index, on),
        &format!("set hairpin {on} on bridge port {name}"),
    )
}

fn new_bridge_msg(name: &str, mtu: u32) -> LinkMessage {
    let mut msg = by_name(name);
    msg.attributes.push(LinkAttribute::Mtu(mtu));
    msg.attributes
        .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
            InfoKind::Bridge,
        )]));
    msg
}

/// Creates bridge `name` with `mtu` bytes, down (`ip link add NAME mtu MTU type
/// bridge`). Idempotent: if a bridge of that name exists its MTU is set and
/// that is success.
///
/// Errors: [`LinkError::NotBridge`] if `name` exists with another kind,
/// [`LinkError::Netlink`] otherwise.
pub fn create_bridge(name: &str, mtu: u32) -> Result<(), LinkError> {
    let req = Request {
        msg: RouteNetlinkMessage::NewLink(new_bridge_msg(name, mtu)),
        flags: NLM_F_CREATE | NLM_F_EXCL,
        what: "RTM_NEWLINK bridge",
    };
    match send(req, name, &format!("create bridge {name}")) {
        Ok(_) => Ok(()),
        Err(e) if e.errno() == Some(libc::EEXIST) => {
            let link = link_by_name(name)?;
            if link.kind.as_deref() != Some("bridge") {
                return Err(LinkError::NotBridge {
                    name: name.to_string(),
                    kind: link.kind.unwrap_or_else(|| "unknown".into()),
                });
            }
            if link.mtu != mtu {
                set_mtu(name, mtu)?;
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::wire;

    #[test]
    fn hairpin_is_a_nested_protinfo_brport_mode_for_af_bridge() {
        let bytes = wire(&hairpin_msg(7, true));
        // ifinfomsg: family AF_BRIDGE (7), index 7.
        assert_eq!(bytes[0], libc::AF_BRIDGE as u8);
        assert_eq!(u32::from_ne_bytes(bytes[4..8].try_into().unwrap()), 7);
        // IFLA_PROTINFO (12) | NLA_F_NESTED, holding IFLA_BRPORT_MODE (4) = 1.
        let nla = &bytes[16..];
        assert_eq!(u16::from_ne_bytes([nla[2], nla[3]]), 12 | 0x8000);
        assert_eq!(u16::from_ne_bytes([nla[4], nla[5]]), 5); // inner len: 4 + 1 byte
        assert_eq!(u16::from_ne_bytes([nla[6], nla[7]]), IFLA_BRPORT_MODE);
        assert_eq!(nla[8], 1);
        assert_eq!(wire(&hairpin_msg(7, false))[24], 0);
    }

    #[test]
    fn bridge_request_has_kind_bridge() {
        let br = new_bridge_msg("br-x", 1500);
        assert_eq!(
            br.attributes[2],
            LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Bridge)])
        );
    }
}
