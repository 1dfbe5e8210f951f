//! Interface addresses (`RTM_NEWADDR`, rtnetlink(7), include/uapi/linux/if_addr.h).

use std::net::IpAddr;

use ipnet::IpNet;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::{link_index, send, LinkError, Request};

fn new_addr_msg(index: u32, addr: IpNet) -> AddressMessage {
    let mut msg = AddressMessage::default();
    msg.header.index = index;
    msg.header.prefix_len = addr.prefix_len();
    let ip = addr.addr();
    match ip {
        IpAddr::V4(_) => {
            msg.header.family = AddressFamily::Inet;
            // IPv4 wants both: IFA_LOCAL is the address, IFA_ADDRESS the
            // (same, on non point-to-point links) destination (rtnetlink(7)).
            msg.attributes.push(AddressAttribute::Local(ip));
            msg.attributes.push(AddressAttribute::Address(ip));
        }
        IpAddr::V6(_) => {
            msg.header.family = AddressFamily::Inet6;
            // No duplicate address detection: berth's IPAM owns the subnet, and
            // a tentative address cannot be used (nor routed via) for ~1 s.
            msg.header.flags = AddressHeaderFlags::Nodad;
            msg.attributes.push(AddressAttribute::Address(ip));
            msg.attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
    }
    msg
}

/// Adds `addr` (address and prefix length, e.g. `172.18.0.1/16`) to `name`
/// (`ip addr add ADDR dev NAME`; IPv6 with `nodad`). An address already there
/// is success (`EEXIST`).
///
/// Errors: [`LinkError::NotFound`], [`LinkError::Netlink`].
pub fn add_address(name: &str, addr: IpNet) -> Result<(), LinkError> {
    let index = link_index(name)?;
    let req = Request {
        msg: RouteNetlinkMessage::NewAddress(new_addr_msg(index, addr)),
        flags: NLM_F_CREATE | NLM_F_EXCL,
        what: "RTM_NEWADDR",
    };
    match send(req, name, &format!("add address {addr} to {name}")) {
        Err(e) if e.errno() == Some(libc::EEXIST) => Ok(()),
        other => other.map(|_| ()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_requests_per_family() {
        let v4 = new_addr_msg(3, "172.18.0.2/16".parse().unwrap());
        assert_eq!(v4.header.family, AddressFamily::Inet);
        assert_eq!(v4.header.prefix_len, 16);
        assert_eq!(v4.header.index, 3);
        let ip: IpAddr = "172.18.0.2".parse().unwrap();
        assert_eq!(
            v4.attributes,
            vec![AddressAttribute::Local(ip), AddressAttribute::Address(ip)]
        );
        let v6 = new_addr_msg(3, "fd00::2/64".parse().unwrap());
        assert_eq!(v6.header.family, AddressFamily::Inet6);
        assert_eq!(v6.header.flags, AddressHeaderFlags::Nodad);
        assert!(v6
            .attributes
            .contains(&AddressAttribute::Flags(AddressFlags::Nodad)));
    }
}
