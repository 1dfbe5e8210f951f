//! The fast path of [`super::backend`]: a plan that only adds or removes published-port map
//! elements (what starting and removing a container does) is sent as one nf_tables netlink
//! batch instead of an `nft` script. The element layout mirrors the map types of the base
//! (`super::nft`): keys `[addr .] inet_proto . inet_service`, values `addr . inet_service`.

use std::net::IpAddr;

use berth_sys::nftables::{concat, SetElem, NFPROTO_INET};

use super::plan::{Element, Family, Listen, Plan, Publish};
use crate::port::Proto;

/// Berth's table (`table inet berth`).
const TABLE: &str = "berth";

/// IANA protocol numbers (as `meta l4proto` compares them).
fn proto_number(p: Proto) -> u8 {
    match p {
        Proto::Tcp => 6,
        Proto::Udp => 17,
        Proto::Sctp => 132,
    }
}

fn addr_bytes(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

fn publish_elem(p: &Publish, add: bool) -> SetElem {
    let proto = [proto_number(p.proto)];
    let port = p.host_port.to_be_bytes();
    let (set, key) = match (p.family(), p.listen) {
        (Family::V4, Listen::Any(_)) => ("pub4_any", concat(&[&proto, &port])),
        (Family::V6, Listen::Any(_)) => ("pub6_any", concat(&[&proto, &port])),
        (Family::V4, Listen::Addr(a)) => ("pub4_addr", concat(&[&addr_bytes(a), &proto, &port])),
        (Family::V6, Listen::Addr(a)) => ("pub6_addr", concat(&[&addr_bytes(a), &proto, &port])),
    };
    let data = concat(&[&addr_bytes(p.target), &p.container_port.to_be_bytes()]);
    let id12 = p.container.get(..12).unwrap_or(&p.container);
    SetElem {
        add,
        family: NFPROTO_INET,
        table: TABLE.to_string(),
        set: set.to_string(),
        key,
        data: Some(data),
        comment: Some(format!("ctr {id12} net {}", p.network)),
    }
}

/// The element operations of `plan` when it is only published ports; `None` otherwise.
/// Removals are sent as add-then-delete, so removing an absent element is not an error (the
/// same idiom the rendered scripts use).
pub fn element_ops(plan: &Plan) -> Option<Vec<SetElem>> {
    if plan.reset || plan.base || (plan.add.is_empty() && plan.remove.is_empty()) {
        return None;
    }
    let publish = |e: &Element| match e {
        Element::Publish(p) => Some(p.clone()),
        _ => None,
    };
    let removes: Vec<Publish> = plan.remove.iter().map(publish).collect::<Option<_>>()?;
    let adds: Vec<Publish> = plan.add.iter().map(publish).collect::<Option<_>>()?;
    let mut ops = Vec::new();
    for p in &removes {
        ops.push(publish_elem(p, true));
        ops.push(publish_elem(p, false));
    }
    ops.extend(adds.iter().map(|p| publish_elem(p, true)));
    Some(ops)
}
