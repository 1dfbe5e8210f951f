//! The network manager's endpoint part: connect (record and addresses → driver join →
//! firewall elements, undone in reverse on failure) and disconnect.

use std::net::IpAddr;
use std::path::Path;

use super::{has_rules, EndpointRequest};
use super::{new_id, rolled_back, Manager, ManagerError};
use crate::driver::Driver;
use crate::drivers::bridge;
use crate::model::{EndpointState, NetworkState};
use crate::netstate::ChildMode;
use crate::records;

impl Manager<'_> {
    /// Attaches the sandbox pinned at `netns` of container `container_id` to `network`:
    /// the endpoint row and its addresses in one transaction, then the driver's join, then
    /// the rules; on failure undoes the completed steps in reverse.
    pub fn connect(
        &mut self,
        network: &NetworkState,
        container_id: &str,
        netns: &Path,
        req: &EndpointRequest,
    ) -> Result<EndpointState, ManagerError> {
        crate::policy::check_publish(network, !req.ports.is_empty())?;
        if network.kind.parent_link().is_some() {
            self.check_parent_endpoint(network, req)?;
        }
        let id = new_id();
        let ep = self.record_endpoint(network, container_id, &id, req)?;
        berth_sys::failpoint::hit("attach::after-ipam");
        if let Err(e) = self
            .driver(network)
            .join(network, &ep, netns, req.default_route)
        {
            return Err(rolled_back(e.into(), [self.unrecord_endpoint(&ep)]));
        }
        berth_sys::failpoint::hit("attach::after-veth");
        if has_rules(network) {
            if let Err(e) = self.firewall.add_endpoint(network, &ep) {
                let undo = [
                    self.driver(network)
                        .leave(network, &ep, netns)
                        .map_err(ManagerError::from),
                    self.unrecord_endpoint(&ep),
                ];
                return Err(rolled_back(e.into(), undo));
            }
        }
        berth_sys::failpoint::hit("attach::after-firewall");
        Ok(ep)
    }

    /// Deletes the record of `ep` and releases its addresses.
    fn unrecord_endpoint(&mut self, ep: &EndpointState) -> Result<(), ManagerError> {
        let ipam = &*self.ipam;
        self.store.write(|tx| -> Result<(), ManagerError> {
            ipam.release(tx, &ep.network_id, &ep.id)?;
            records::delete_endpoint(tx, &ep.id)?;
            Ok(())
        })
    }

    fn record_endpoint(
        &mut self,
        network: &NetworkState,
        container_id: &str,
        id: &str,
        req: &EndpointRequest,
    ) -> Result<EndpointState, ManagerError> {
        // The lowest ethN no endpoint of the container uses (after a disconnect, the count of
        // endpoints could name an interface that still exists).
        let taken: Vec<String> = records::endpoints_of_container(self.store.conn(), container_id)?
            .into_iter()
            .map(|e| e.ifname.to_string())
            .collect();
        let index = (0..)
            .find(|i| !taken.contains(&format!("eth{i}")))
            .expect("a free index");
        let mut ep = EndpointState {
            id: id.to_string(),
            network_id: network.id.clone(),
            container_id: container_id.to_string(),
            ifname: req
                .ifname
                .clone()
                .unwrap_or_else(|| format!("eth{index}").parse().expect("valid ifname")),
            host_ifname: bridge::host_ifname_for(id),
            mac: String::new(),
            addresses: Vec::new(),
            aliases: req.aliases.clone(),
            ports: req.ports.clone(),
        };
        let ipam = &*self.ipam;
        let parent_mac = self.parent_mac(network);
        self.store.write(|tx| -> Result<(), ManagerError> {
            records::insert_endpoint(tx, &ep)?;
            ep.addresses = ipam.allocate(tx, network, id, req.ip, req.ip6)?;
            ep.mac = match (&req.mac, parent_mac) {
                (Some(m), _) => m.clone(),
                (None, Some(m)) => m,
                (None, None) => mac_of(&ep),
            };
            records::update_endpoint(tx, &ep)?;
            Ok(())
        })?;
        Ok(ep)
    }

    /// The MAC of an ipvlan network's parent (its children's MAC), empty if unknown; `None`
    /// for other networks.
    fn parent_mac(&self, network: &NetworkState) -> Option<String> {
        let (u, ChildMode::Ipvlan(..)) = network.kind.parent_link()? else {
            return None;
        };
        let mac = self
            .nl
            .link_by_name(u.parent.as_str())
            .ok()
            .and_then(|l| l.mac);
        Some(mac.map(|m| m.to_string()).unwrap_or_default())
    }

    /// Detaches one endpoint: its rules, its link (if the sandbox still exists), its record and
    /// addresses. Best effort: every step runs; the first failure is returned.
    pub fn disconnect(&mut self, ep: &EndpointState, netns: &Path) -> Result<(), ManagerError> {
        self.disconnect_with(ep, netns, false)
    }

    /// [`Manager::disconnect`]; with `sandbox_going` the link is left to die with the sandbox's
    /// namespace (deleting a veth explicitly costs an RCU grace period, ~18 ms here, while the
    /// kernel tears a dead namespace down asynchronously, its links with it).
    fn disconnect_with(
        &mut self,
        ep: &EndpointState,
        netns: &Path,
        sandbox_going: bool,
    ) -> Result<(), ManagerError> {
        let network = records::lookup_network(self.store.conn(), &ep.network_id).ok();
        let mut first_err = None;
        if let Some(n) = &network {
            if has_rules(n) {
                if let Err(e) = self.firewall.remove_endpoint(n, ep) {
                    first_err.get_or_insert(ManagerError::from(e));
                }
                berth_sys::failpoint::hit("detach::after-firewall");
            }
            if !sandbox_going {
                if let Err(e) = self.driver(n).leave(n, ep, netns) {
                    first_err.get_or_insert(ManagerError::from(e));
                }
            }
        }
        self.unrecord_endpoint(ep)?;
        first_err.map_or(Ok(()), Err)
    }

    /// Detaches every endpoint of a container whose sandbox at `netns` is about to be
    /// removed (its teardown), collecting failures. Call it before removing the namespace.
    /// With `shared` (another container still uses the namespace, so it will not die) the
    /// links are deleted explicitly instead of left to die with it.
    pub fn disconnect_all(
        &mut self,
        container_id: &str,
        netns: &Path,
        shared: bool,
    ) -> Vec<ManagerError> {
        let eps = match records::endpoints_of_container(self.store.conn(), container_id) {
            Ok(e) => e,
            Err(e) => return vec![e.into()],
        };
        eps.iter()
            .filter_map(|ep| {
                self.disconnect_with(ep, netns, netns.exists() && !shared)
                    .err()
            })
            .collect()
    }

    /// The endpoints of a container.
    pub fn endpoints_of(&self, container_id: &str) -> Result<Vec<EndpointState>, ManagerError> {
        Ok(records::endpoints_of_container(
            self.store.conn(),
            container_id,
        )?)
    }
}

/// Docker's MAC for an IPv4 endpoint (02:42 + the address), else a random local unicast one.
fn mac_of(ep: &EndpointState) -> String {
    match ep.addresses.iter().find_map(|a| match a.addr() {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(_) => None,
    }) {
        Some(v4) => bridge::mac_for(v4),
        None => {
            let b: [u8; 4] = rand::random();
            format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3])
        }
    }
}
