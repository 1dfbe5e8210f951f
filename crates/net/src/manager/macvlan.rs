//! The network manager's macvlan/ipvlan part (issue 4): `network create -d macvlan|ipvlan`
//! (options, parent checks and preparation, subnets, the host shim's address) and the
//! endpoint checks those networks need. These networks get no firewall rules and no
//! embedded DNS: their gateway is an external router, where berth cannot listen.

use std::net::IpAddr;

use berth_sys::link::Addr;
use ipnet::IpNet;

use super::{
    new_id, rolled_back, EndpointRequest, Manager, ManagerError, NetworkCreateRequest, Warning,
};
use crate::drivers::macvlan::{self, MacvlanDriver, MacvlanOptions, SHIM_AUX};
use crate::ipam::Taken;
use crate::model::{IfName, MacvlanMode, NetworkState, SubnetState};
use crate::netstate::{ChildMode, DriverState, HostShim, ParentLink};
use crate::records::{self, RecordError};

impl Manager<'_> {
    /// `network create -d macvlan|ipvlan`: options, sharing rules against other networks,
    /// the parent (checked, or an 802.1q/dummy parent created), subnets (overlapping only
    /// other networks: the subnet is usually the parent's own segment), then record and shim.
    /// A parent created here is deleted again if a later step fails.
    pub(super) fn create_parent_network(
        &mut self,
        req: NetworkCreateRequest,
    ) -> Result<NetworkState, ManagerError> {
        let opts = MacvlanOptions::parse(req.driver, req.name.as_str(), &req.options)?;
        match records::lookup_network(self.store.conn(), req.name.as_str()) {
            Ok(_) => return Err(RecordError::NameInUse(req.name.to_string()).into()),
            Err(RecordError::NoSuchNetwork(_)) => {}
            Err(e) => return Err(e.into()),
        }
        let id = new_id();
        // Docker: no parent, or --internal, means an internal network on a dummy parent.
        let dummy = req.internal || opts.parent.is_none();
        let parent = match &opts.parent {
            Some(p) if !dummy => p.clone(),
            _ => macvlan::dummy_parent_for(&id),
        };
        let others = self.list()?;
        macvlan::check_sharing(&parent, opts.mode, &others)?;
        let inherited = others.iter().any(|o| {
            o.kind
                .parent_link()
                .is_some_and(|(u, _)| u.parent == parent && u.parent_created)
        });
        let made_now =
            MacvlanDriver::new(&*self.nl).prepare_parent(req.name.as_str(), &parent, dummy)?;
        let link = ParentLink {
            parent: parent.clone(),
            parent_created: made_now || inherited,
            shim: None,
        };
        let built = self
            .parent_state(&req, &opts, id, link, &others)
            .and_then(|state| self.record_and_make(state));
        match built {
            Err(e) if made_now => {
                let undo = self.nl.delete_link(parent.as_str());
                Err(rolled_back(e, [undo.map_err(|l| macvlan_host(&req, l))]))
            }
            built => built,
        }
    }

    /// What an endpoint on a macvlan or ipvlan network may not ask for: published ports (the
    /// container's own address is reachable directly), a second endpoint on a passthru
    /// network, a MAC on ipvlan (children share the parent's).
    pub(super) fn check_parent_endpoint(
        &self,
        network: &NetworkState,
        req: &EndpointRequest,
    ) -> Result<(), ManagerError> {
        let Some((u, mode)) = network.kind.parent_link() else {
            return Ok(());
        };
        if mode == ChildMode::Macvlan(MacvlanMode::Passthru) {
            let attached = records::attached_containers(self.store.conn(), &network.id)?;
            if let Some((first, _)) = attached.first() {
                return Err(ManagerError::Invalid(format!(
                    "network {} is in passthru mode and its parent {} is taken by container \
                     {first}: passthru allows one endpoint; use macvlan_mode=bridge for more",
                    network.name, u.parent
                )));
            }
        }
        if matches!(mode, ChildMode::Ipvlan(..)) && req.mac.is_some() {
            return Err(ManagerError::Invalid(format!(
                "network {} is an ipvlan network: its endpoints use the MAC of parent {}; drop \
                 --mac-address",
                network.name, u.parent
            )));
        }
        Ok(())
    }
}

impl Manager<'_> {
    /// The record of a new macvlan/ipvlan network on `link`: subnets chosen away from other
    /// networks only, the parent's own addresses reserved, the shim's address chosen and
    /// reserved.
    fn parent_state(
        &mut self,
        req: &NetworkCreateRequest,
        opts: &MacvlanOptions,
        id: String,
        mut link: ParentLink,
        others: &[NetworkState],
    ) -> Result<NetworkState, ManagerError> {
        let taken: Vec<Taken> = others
            .iter()
            .flat_map(|n| {
                n.subnets.iter().map(move |s| Taken {
                    net: s.subnet,
                    owner: format!("network {}", n.name),
                })
            })
            .collect();
        let mut subnets = self.ipam.choose_subnets(&req.subnets, req.ipv6, &taken)?;
        let parent = link.parent.as_str();
        let parent_link = self.nl.link_by_name(parent).ok();
        let parent_addrs: Vec<Addr> = self
            .nl
            .list_addrs()
            .unwrap_or_default()
            .into_iter()
            .filter(|a| a.ifname == parent)
            .collect();
        let warnings = off_segment(&link.parent, &subnets, &parent_addrs);
        self.warnings.extend(warnings);
        reserve_parent_addresses(&link.parent, &mut subnets, &parent_addrs);
        link.shim = opts.host_access.then(|| HostShim {
            ifname: macvlan::shim_ifname_for(&id),
            addresses: subnets.iter_mut().filter_map(shim_address).collect(),
        });
        Ok(NetworkState {
            id,
            name: req.name.clone(),
            subnets,
            ipv6: req.ipv6,
            internal: req.internal || opts.parent.is_none(),
            dns: false,
            mtu: req
                .mtu
                .or(opts.mtu)
                .or(parent_link.map(|l| l.mtu))
                .unwrap_or(1500),
            labels: req.labels.clone(),
            options: req.options.clone(),
            created: chrono::Utc::now().to_rfc3339(),
            kind: DriverState::child(link, opts.mode),
        })
    }
}

fn macvlan_host(req: &NetworkCreateRequest, error: berth_sys::link::LinkError) -> ManagerError {
    macvlan::MacvlanError::Host {
        network: req.name.to_string(),
        error,
    }
    .into()
}

/// A [`Warning::OffSegment`] for each subnet that is not the segment of the parent's
/// addresses of its family: containers would then reach their gateway only if that segment
/// carries the subnet anyway.
fn off_segment(parent: &IfName, subnets: &[SubnetState], addrs: &[Addr]) -> Vec<Warning> {
    let mut out = Vec::new();
    for s in subnets {
        let same: Vec<&Addr> = addrs
            .iter()
            .filter(|a| a.addr.is_ipv4() == s.subnet.addr().is_ipv4())
            .filter(|a| !matches!(a.addr, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80))
            .collect();
        if !same.is_empty() && !same.iter().any(|a| s.subnet.contains(&a.addr)) {
            out.push(Warning::OffSegment {
                subnet: s.subnet,
                parent: parent.clone(),
                have: same
                    .iter()
                    .map(|a| format!("{}/{}", a.addr, a.prefix_len))
                    .collect(),
                gateway: s.gateway,
            });
        }
    }
    out
}

/// The parent's own addresses inside a subnet become aux addresses (`parent`, `parent2`...),
/// so IPAM never hands the host's address to a container.
fn reserve_parent_addresses(parent: &IfName, subnets: &mut [SubnetState], addrs: &[Addr]) {
    for s in subnets {
        let mine = addrs.iter().filter(|a| s.subnet.contains(&a.addr));
        for (i, a) in mine.enumerate() {
            if a.addr == s.gateway || s.aux_addresses.values().any(|x| *x == a.addr) {
                continue;
            }
            let key = if i == 0 {
                format!("parent-{parent}")
            } else {
                format!("parent-{parent}-{i}")
            };
            s.aux_addresses.insert(key, a.addr);
        }
    }
}

/// The shim's address in `s`: `--aux-address host=IP` if given, else the highest address of
/// the subnet that is not the gateway, an aux address or in the `--ip-range`, then recorded
/// as aux `host` so IPAM never hands it out.
fn shim_address(s: &mut SubnetState) -> Option<IpAddr> {
    if let Some(a) = s.aux_addresses.get(SHIM_AUX) {
        return Some(*a);
    }
    let pick = (1u32..=256)
        .filter_map(|k| from_end(s.subnet, k))
        .find(|a| {
            *a != s.gateway
                && !s.aux_addresses.values().any(|x| x == a)
                && !s.ip_range.is_some_and(|r| r.contains(a))
        })?;
    s.aux_addresses.insert(SHIM_AUX.to_string(), pick);
    Some(pick)
}

/// The address `k` below the end of `net` (IPv4: `k`=1 is the last before broadcast), or
/// `None` when that leaves the subnet or hits its network address.
fn from_end(net: IpNet, k: u32) -> Option<IpAddr> {
    match net {
        IpNet::V4(n) => {
            let a = u32::from(n.broadcast()).checked_sub(k)?;
            (a > u32::from(n.network())).then(|| IpAddr::V4(a.into()))
        }
        IpNet::V6(n) => {
            let a = u128::from(n.broadcast()).checked_sub(u128::from(k) - 1)?;
            (a > u128::from(n.network())).then(|| IpAddr::V6(a.into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subnet(net: &str, gw: &str) -> SubnetState {
        SubnetState {
            subnet: net.parse().unwrap(),
            gateway: gw.parse().unwrap(),
            ip_range: None,
            aux_addresses: Default::default(),
        }
    }

    #[test]
    fn shim_takes_the_top_of_the_subnet_or_the_given_aux() {
        let mut s = subnet("192.168.50.0/24", "192.168.50.254");
        let ip = |x: &str| x.parse::<IpAddr>().unwrap();
        assert_eq!(shim_address(&mut s), Some(ip("192.168.50.253")));
        assert_eq!(s.aux_addresses[SHIM_AUX], ip("192.168.50.253"));
        let mut s = subnet("192.168.50.0/24", "192.168.50.1");
        s.ip_range = Some("192.168.50.128/25".parse().unwrap());
        assert_eq!(shim_address(&mut s), Some(ip("192.168.50.127")));
        let mut s = subnet("192.168.50.0/24", "192.168.50.1");
        s.aux_addresses.insert(SHIM_AUX.into(), ip("192.168.50.9"));
        assert_eq!(shim_address(&mut s), Some(ip("192.168.50.9")));
        let mut s = subnet("fd00:1::/64", "fd00:1::1");
        assert_eq!(
            shim_address(&mut s),
            Some(ip("fd00:1::ffff:ffff:ffff:ffff"))
        );
        assert_eq!(
            from_end("10.0.0.0/30".parse().unwrap(), 2),
            Some(ip("10.0.0.1"))
        );
        assert_eq!(from_end("10.0.0.0/30".parse().unwrap(), 3), None);
    }

    #[test]
    fn parent_addresses_are_reserved() {
        let mut subnets = vec![subnet("192.168.50.0/24", "192.168.50.1")];
        let addr = |a: &str| Addr {
            index: 2,
            ifname: "nicA".into(),
            addr: a.parse().unwrap(),
            prefix_len: 24,
        };
        let parent: IfName = "nicA".parse().unwrap();
        let addrs = [
            addr("192.168.50.10"),
            addr("10.9.9.9"),
            addr("192.168.50.1"),
        ];
        reserve_parent_addresses(&parent, &mut subnets, &addrs);
        let aux = &subnets[0].aux_addresses;
        assert_eq!(aux.len(), 1, "{aux:?}");
        assert_eq!(
            aux["parent-nicA"],
            "192.168.50.10".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn a_subnet_off_the_parents_segment_is_a_warning_returned_not_printed() {
        let addr = |a: &str, len| Addr {
            index: 2,
            ifname: "nicA".into(),
            addr: a.parse().unwrap(),
            prefix_len: len,
        };
        let parent: IfName = "nicA".parse().unwrap();
        let addrs = [addr("192.168.50.10", 24), addr("fe80::1", 64)];
        let on = [subnet("192.168.50.0/24", "192.168.50.1")];
        assert_eq!(off_segment(&parent, &on, &addrs), Vec::new());
        let off = [
            subnet("10.38.0.0/24", "10.38.0.1"),
            subnet("fd00:9::/64", "fd00:9::1"),
        ];
        let warnings = off_segment(&parent, &off, &addrs);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert_eq!(
            warnings[0].to_string(),
            "subnet 10.38.0.0/24 is not on the segment of parent nicA (it has \
             192.168.50.10/24): containers reach gateway 10.38.0.1 only if that segment carries \
             the subnet"
        );
    }
}
