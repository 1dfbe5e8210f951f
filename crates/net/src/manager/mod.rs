//! The network manager (STYLE.md "Seams and orchestration"): the one place that orders
//! validate → IPAM → driver → firewall → record for every operation and undoes completed steps
//! in reverse when a later one fails, so bad input or a kernel refusal leaves no half-created
//! network, no leaked address, no stale rule and no orphan veth. Drivers, IPAM and the
//! firewall never call each other.
//!
//! Its kernel access is injected ([`Seams`]): the netlink handle the drivers use, the
//! firewall and the IPAM allocator; [`Manager::new`] wires the production ones.
//!
//! - [`bridge`]: validation and state of a new bridge network.
//! - [`macvlan`]: the same for macvlan/ipvlan networks, and their endpoint rules.
//! - [`endpoint`]: connect and disconnect.

mod bridge;
mod endpoint;
mod macvlan;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

use berth_store::Store;

use crate::driver::{AnyDriver, Driver, DriverError};
use crate::drivers::macvlan::MacvlanDriver;
use crate::firewall::{plan, Firewall, NftFirewall};
use crate::ipam::{self, Ipam, LocalIpam};
use crate::kernel::{Netlink, SysNetlink};
use crate::model::{DriverName, IfName, NetworkName, NetworkState, PortMapping, SubnetConfig};
use crate::records::{self, RecordError};

/// Name and device of Docker's default network (berth's device name: `berth0`).
pub const DEFAULT_NETWORK: &str = "bridge";
/// The default network's bridge device.
pub const DEFAULT_BRIDGE: &str = "berth0";

/// Errors of network operations.
#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    /// Records.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// Address management.
    #[error(transparent)]
    Ipam(#[from] ipam::IpamError),
    /// Kernel plumbing of a driver (boxed to keep the error small).
    #[error(transparent)]
    Driver(Box<DriverError>),
    /// Firewall.
    #[error(transparent)]
    Firewall(#[from] crate::firewall::FirewallError),
    /// The state database.
    #[error("state database: {0}")]
    Sql(#[from] berth_store::rusqlite::Error),
    /// Bad input.
    #[error("{0}")]
    Invalid(String),
    /// Published ports on a network that has none.
    #[error(transparent)]
    Publish(#[from] crate::policy::PublishRefused),
    /// The network still has containers.
    #[error(
        "network {network} has active endpoints ({containers}): disconnect or remove them first"
    )]
    InUse {
        /// The network.
        network: String,
        /// Names of the attached containers.
        containers: String,
    },
    /// A step failed, and so did some of the steps undoing what came before it.
    #[error("{error}; undoing it failed too: {}", list(undo))]
    Undo {
        /// The step's failure.
        error: Box<ManagerError>,
        /// The undo steps' failures, in the order they ran.
        undo: Vec<ManagerError>,
    },
}

impl From<DriverError> for ManagerError {
    fn from(e: DriverError) -> Self {
        Self::Driver(Box::new(e))
    }
}

impl From<crate::drivers::bridge::BridgeError> for ManagerError {
    fn from(e: crate::drivers::bridge::BridgeError) -> Self {
        DriverError::from(e).into()
    }
}

impl From<crate::drivers::macvlan::MacvlanError> for ManagerError {
    fn from(e: crate::drivers::macvlan::MacvlanError) -> Self {
        DriverError::from(e).into()
    }
}

fn list(errors: &[ManagerError]) -> String {
    let all: Vec<String> = errors.iter().map(ToString::to_string).collect();
    all.join("; ")
}

/// `error` after running the `undo` steps (already run, in reverse order of the steps they
/// undo): itself when every undo succeeded, else [`ManagerError::Undo`] carrying their errors.
fn rolled_back(
    error: ManagerError,
    undo: impl IntoIterator<Item = Result<(), ManagerError>>,
) -> ManagerError {
    let failed: Vec<ManagerError> = undo.into_iter().filter_map(Result::err).collect();
    if failed.is_empty() {
        error
    } else {
        ManagerError::Undo {
            error: Box::new(error),
            undo: failed,
        }
    }
}

/// `network create`, validated shapes (subnets still to be checked against the host).
#[derive(Debug, Clone)]
pub struct NetworkCreateRequest {
    /// Name.
    pub name: NetworkName,
    /// `-d`.
    pub driver: DriverName,
    /// `--subnet`/`--gateway`/`--ip-range`/`--aux-address`, grouped by subnet.
    pub subnets: Vec<SubnetConfig>,
    /// `--ipv6`.
    pub ipv6: bool,
    /// `--internal`.
    pub internal: bool,
    /// `--mtu`.
    pub mtu: Option<u32>,
    /// `--label`.
    pub labels: BTreeMap<String, String>,
    /// `-o`.
    pub options: BTreeMap<String, String>,
}

/// What a container asks of one endpoint.
#[derive(Debug, Clone, Default)]
pub struct EndpointRequest {
    /// `--ip`.
    pub ip: Option<Ipv4Addr>,
    /// `--ip6`.
    pub ip6: Option<Ipv6Addr>,
    /// `--mac-address`.
    pub mac: Option<String>,
    /// `--network-alias`.
    pub aliases: Vec<String>,
    /// Published ports with host ports already reserved.
    pub ports: Vec<PortMapping>,
    /// `eth0`, `eth1`, ...
    pub ifname: Option<IfName>,
    /// Install the default route through this network (the container's first network).
    pub default_route: bool,
}

/// The manager's kernel and allocator seams.
pub struct Seams {
    /// Link, address, route, sysctl and namespace calls.
    pub netlink: Box<dyn Netlink>,
    /// berth's packet policy.
    pub firewall: Box<dyn Firewall>,
    /// Subnets and addresses.
    pub ipam: Box<dyn Ipam>,
}

/// What a successful operation wants the user told (the CLI prints each as `warning: TEXT`
/// on stderr; net itself never prints).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Warning {
    /// A macvlan/ipvlan subnet that is not the segment of its parent's addresses.
    #[error("subnet {subnet} is not on the segment of parent {parent} (it has {}): containers reach gateway {gateway} only if that segment carries the subnet", have.join(", "))]
    OffSegment {
        /// The subnet.
        subnet: ipnet::IpNet,
        /// The parent link.
        parent: IfName,
        /// The parent's addresses of the subnet's family, `ADDR/LEN`.
        have: Vec<String>,
        /// The subnet's gateway.
        gateway: std::net::IpAddr,
    },
}

/// The network manager over one store.
pub struct Manager<'a> {
    store: &'a mut Store,
    warnings: Vec<Warning>,
    nl: Box<dyn Netlink>,
    firewall: Box<dyn Firewall>,
    ipam: Box<dyn Ipam>,
}

impl<'a> Manager<'a> {
    /// A manager acting in the network namespace the calling process runs in; firewall
    /// changes are serialised across berth processes by `<runroot>/locks/firewall`.
    pub fn new(store: &'a mut Store, runroot: &Path) -> Self {
        let firewall = NftFirewall::from_env().with_lock(&runroot.join("locks").join("firewall"));
        Self::with_seams(
            store,
            Seams {
                netlink: Box::new(SysNetlink),
                firewall: Box::new(firewall),
                ipam: Box::new(LocalIpam),
            },
        )
    }

    /// A manager over `store` acting through `seams` (tests inject recording fakes).
    pub fn with_seams(store: &'a mut Store, seams: Seams) -> Self {
        Self {
            store,
            warnings: Vec::new(),
            nl: seams.netlink,
            firewall: seams.firewall,
            ipam: seams.ipam,
        }
    }

    /// The driver of `network`.
    fn driver(&self, network: &NetworkState) -> AnyDriver<'_> {
        AnyDriver::of(network, &*self.nl)
    }

    /// Every network.
    pub fn list(&self) -> Result<Vec<NetworkState>, ManagerError> {
        Ok(records::list_networks(self.store.conn())?)
    }

    /// A network by name, id or unique id prefix.
    pub fn lookup(&self, key: &str) -> Result<NetworkState, ManagerError> {
        Ok(records::lookup_network(self.store.conn(), key)?)
    }

    /// The network `key`, its kernel objects recreated if they are gone (after a host reboot
    /// the record outlives the bridge and the rules).
    pub fn lookup_ready(&mut self, key: &str) -> Result<NetworkState, ManagerError> {
        let n = self.lookup(key)?;
        self.ready(n)
    }

    fn ready(&mut self, n: NetworkState) -> Result<NetworkState, ManagerError> {
        let Some((u, _)) = n.kind.parent_link() else {
            // One netlink query on the hot path; the rest only when the bridge is missing.
            if self.nl.link_by_name(n.device().as_str()).is_err() {
                self.driver(&n).create_network(&n)?;
                let generation = plan::generation(&self.bridge_networks()?);
                self.firewall.add_network(&n, generation)?;
            }
            return Ok(n);
        };
        // No bridge and no rules: only berth-made links can be missing (parent, shim).
        let gone = |name: &IfName| self.nl.link_by_name(name.as_str()).is_err();
        if u.shim.as_ref().is_some_and(|s| gone(&s.ifname)) || gone(&u.parent) {
            if !u.parent_created {
                MacvlanDriver::new(&*self.nl).prepare_parent(n.name.as_str(), &u.parent, false)?;
            }
            self.driver(&n).create_network(&n)?;
        }
        Ok(n)
    }

    /// The default `bridge` network, created on first use (device `berth0`, no embedded DNS,
    /// as Docker's default bridge has no name resolution).
    pub fn ensure_default(&mut self) -> Result<NetworkState, ManagerError> {
        match records::lookup_network(self.store.conn(), DEFAULT_NETWORK) {
            Ok(n) => self.ready(n),
            Err(RecordError::NoSuchNetwork(_)) => {
                let mut options = BTreeMap::new();
                options.insert(
                    bridge::OPT_BRIDGE_NAME.to_string(),
                    DEFAULT_BRIDGE.to_string(),
                );
                let req = NetworkCreateRequest {
                    name: DEFAULT_NETWORK.parse().expect("valid name"),
                    driver: DriverName::Bridge,
                    subnets: Vec::new(),
                    ipv6: false,
                    internal: false,
                    mtu: None,
                    labels: BTreeMap::new(),
                    options,
                };
                match self.create_with_dns(req, false) {
                    // Another process created it a moment ago.
                    Err(ManagerError::Record(RecordError::NameInUse(_))) => {
                        Ok(records::lookup_network(self.store.conn(), DEFAULT_NETWORK)?)
                    }
                    other => other,
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// `network create`: validate, choose subnets away from host routes, addresses and other
    /// networks, record, make the kernel objects, add the firewall rules; undo on failure.
    pub fn create(&mut self, req: NetworkCreateRequest) -> Result<NetworkState, ManagerError> {
        if req.name.as_str() == DEFAULT_NETWORK
            || ["host", "none", "default"].contains(&req.name.as_str())
        {
            return Err(ManagerError::Invalid(format!(
                "network name {} is reserved (it names a built-in network mode): choose another",
                req.name
            )));
        }
        self.create_with_dns(req, true)
    }

    /// The kernel seam the manager acts through (for [`crate::attach`]).
    pub(crate) fn netlink(&self) -> &dyn Netlink {
        &*self.nl
    }

    /// The store's connection, for reads.
    pub(crate) fn conn(&self) -> &berth_store::rusqlite::Connection {
        self.store.conn()
    }

    /// The warnings of the operations so far (`network create` of a macvlan/ipvlan network
    /// whose subnet is off its parent's segment), for the caller to show; drained.
    pub fn take_warnings(&mut self) -> Vec<Warning> {
        std::mem::take(&mut self.warnings)
    }

    fn create_with_dns(
        &mut self,
        req: NetworkCreateRequest,
        dns: bool,
    ) -> Result<NetworkState, ManagerError> {
        match req.driver {
            DriverName::Bridge => {
                let state = self.bridge_state(&req, dns)?;
                self.record_and_make(state)
            }
            DriverName::Macvlan | DriverName::Ipvlan => self.create_parent_network(req),
            DriverName::Overlay => Err(ManagerError::Invalid(format!(
                "network driver {} is not available yet: berth supports bridge, macvlan \
                 and ipvlan networks today",
                req.driver
            ))),
        }
    }

    /// Records `state`, then adds its rules (networks that have some) and makes its kernel
    /// objects; on failure undoes the completed steps in reverse.
    fn record_and_make(&mut self, state: NetworkState) -> Result<NetworkState, ManagerError> {
        // The rules' generation without and with this network, read before the record exists
        // (so nothing can fail between the record and its rules but the steps below).
        let mut covered = self.bridge_networks()?;
        let without = plan::generation(&covered);
        covered.push(state.clone());
        let with = plan::generation(&covered);
        self.store.write(|tx| records::insert_network(tx, &state))?;
        berth_sys::failpoint::hit("network-create::after-record");
        // Rules before the bridge: a crash in between leaves rules without a bridge, which the
        // next use repairs (`ready` recreates a missing bridge and re-adds the rules); the other
        // order could leave a bridge without isolation or masquerade.
        if has_rules(&state) {
            if let Err(e) = self.firewall.add_network(&state, with) {
                return Err(rolled_back(e.into(), [self.unrecord(&state)]));
            }
            berth_sys::failpoint::hit("network-create::after-firewall");
        }
        if let Err(e) = self.driver(&state).create_network(&state) {
            // The objects may exist half-configured: delete them with the rules and the record.
            let undo = [
                self.list().and_then(|others| {
                    self.driver(&state)
                        .delete_network(&state, &others)
                        .map_err(ManagerError::from)
                }),
                self.remove_rules(&state, without),
                self.unrecord(&state),
            ];
            return Err(rolled_back(e.into(), undo));
        }
        berth_sys::failpoint::hit("network-create::after-bridge");
        Ok(state)
    }

    /// Deletes the record of network `state` (and its addresses).
    fn unrecord(&mut self, state: &NetworkState) -> Result<(), ManagerError> {
        Ok(self
            .store
            .write(|tx| records::delete_network(tx, &state.id))?)
    }

    /// Removes the rules of `state` (none for networks without rules), stamping `generation`.
    fn remove_rules(&self, state: &NetworkState, generation: u32) -> Result<(), ManagerError> {
        if !has_rules(state) {
            return Ok(());
        }
        Ok(self.firewall.remove_network(state, generation)?)
    }

    /// `network rm`: refused while containers are attached (naming them); then removes exactly
    /// the network's rules, its kernel objects and its record. Best effort: every step runs;
    /// the first failure is returned.
    pub fn remove(&mut self, key: &str) -> Result<NetworkState, ManagerError> {
        let n = self.lookup(key)?;
        if n.name.as_str() == DEFAULT_NETWORK {
            return Err(ManagerError::Invalid(
                "bridge is a pre-defined network and cannot be removed".into(),
            ));
        }
        let attached = records::attached_containers(self.store.conn(), &n.id)?;
        if !attached.is_empty() {
            let names: Vec<String> = attached.into_iter().map(|(name, _)| name).collect();
            return Err(ManagerError::InUse {
                network: n.name.to_string(),
                containers: names.join(", "),
            });
        }
        // The rules go first, stamped with the generation of the networks left: killed
        // before the record is deleted, the next command sees the store's generation
        // differ from the tables' and rebuilds this network's rules (issue 11 item 6).
        let rules = if has_rules(&n) {
            let without = self.generation_without(&n.id)?;
            let removed = self.remove_rules(&n, without);
            berth_sys::failpoint::hit("network-rm::after-firewall");
            removed
        } else {
            Ok(())
        };
        let others = self.list()?;
        let objects = self
            .driver(&n)
            .delete_network(&n, &others)
            .map_err(ManagerError::from);
        berth_sys::failpoint::hit("network-rm::after-bridge");
        self.unrecord(&n)?;
        rules.and(objects).map(|()| n)
    }

    /// Rebuilds berth's firewall tables from the records in one transaction (recovery, and
    /// `network reload`): every bridge network, every endpoint's published ports and icc
    /// blocks, stamped with the networks' generation.
    pub fn reconcile_firewall(&mut self) -> Result<(), ManagerError> {
        let networks = self.bridge_networks()?;
        let mut endpoints = records::all_endpoints(self.store.conn())?;
        endpoints.retain(|e| networks.iter().any(|n| n.id == e.network_id));
        self.firewall.reconcile(&networks, &endpoints)?;
        Ok(())
    }

    /// Checks that berth's tables cover exactly the store's bridge networks (their generation
    /// stamp, one netlink lookup per table: O(1) in containers) and rebuilds everything with
    /// [`Manager::reconcile_firewall`] when they do not (an external `nft flush ruleset`, a
    /// reboot, a network command killed midway). Returns whether it rebuilt. Call it with the
    /// engine's network lock held, before any other firewall change.
    pub fn ensure_firewall(&mut self) -> Result<bool, ManagerError> {
        let networks = self.bridge_networks()?;
        if networks.is_empty() || self.firewall.is_current(plan::generation(&networks))? {
            return Ok(false);
        }
        self.reconcile_firewall()?;
        Ok(true)
    }

    /// The networks that have firewall rules (bridge networks; macvlan/ipvlan ones have none).
    fn bridge_networks(&self) -> Result<Vec<NetworkState>, ManagerError> {
        let mut networks = self.list()?;
        networks.retain(has_rules);
        Ok(networks)
    }

    /// The generation of the bridge networks but the one with id `id`.
    fn generation_without(&self, id: &str) -> Result<u32, ManagerError> {
        let mut networks = self.bridge_networks()?;
        networks.retain(|n| n.id != id);
        Ok(plan::generation(&networks))
    }
}

/// Whether `network` has firewall rules: bridge networks do; macvlan/ipvlan networks have no
/// NAT, no published port and no isolation chain.
fn has_rules(network: &NetworkState) -> bool {
    network.bridge().is_some()
}

/// A new 64-hex id.
pub fn new_id() -> String {
    let b: [u8; 32] = rand::random();
    b.iter().map(|x| format!("{x:02x}")).collect()
}
