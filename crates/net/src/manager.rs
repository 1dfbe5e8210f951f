//! The network manager (STYLE.md "Seams and orchestration"): the one place that orders
//! IPAM → driver → firewall for every operation and undoes completed steps in reverse when a
//! later one fails, so bad input or a kernel refusal leaves no half-created network, no leaked
//! address, no stale rule and no orphan veth. Drivers, IPAM and the firewall never call each
//! other.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use berth_store::Store;

use crate::drivers::bridge::{self, BridgeDriver};
use crate::drivers::underlay::{UnderlayDriver, UnderlayError};
use crate::firewall::{plan, Firewall, NftFirewall};
use crate::ipam::{self, Taken};
use crate::model::{
    DriverName, EndpointState, IfName, NetworkName, NetworkState, PortMapping, SubnetConfig,
    UnderlayMode,
};
use crate::records::{self, RecordError};

#[path = "manager_underlay.rs"]
mod underlay_ops;
pub use underlay_ops::check_no_ports;
use underlay_ops::parent_mac;

/// Name and device of Docker's default network (berth's device name: `berth0`).
pub const DEFAULT_NETWORK: &str = "bridge";
/// The default network's bridge device.
pub const DEFAULT_BRIDGE: &str = "berth0";

/// Known `-o` keys of the bridge driver (Docker's names).
const OPT_BRIDGE_NAME: &str = "com.docker.network.bridge.name";
const OPT_ICC: &str = "com.docker.network.bridge.enable_icc";
const OPT_MTU: &str = "com.docker.network.driver.mtu";

/// Errors of network operations.
#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    /// Records.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// Address management.
    #[error(transparent)]
    Ipam(#[from] ipam::IpamError),
    /// Kernel plumbing.
    #[error(transparent)]
    Driver(#[from] bridge::BridgeError),
    /// Kernel plumbing of macvlan/ipvlan networks.
    #[error(transparent)]
    Underlay(#[from] UnderlayError),
    /// Firewall.
    #[error(transparent)]
    Firewall(#[from] crate::firewall::FirewallError),
    /// The state database.
    #[error("state database: {0}")]
    Sql(#[from] berth_store::rusqlite::Error),
    /// Bad input.
    #[error("{0}")]
    Invalid(String),
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

/// The network manager over one store.
pub struct Manager<'a> {
    store: &'a mut Store,
    driver: BridgeDriver,
    underlay: UnderlayDriver,
    firewall: NftFirewall,
}

impl<'a> Manager<'a> {
    /// A manager acting in the network namespace the calling process runs in; firewall
    /// changes are serialised across berth processes by `<runroot>/locks/firewall`.
    pub fn new(store: &'a mut Store, runroot: &Path) -> Self {
        Self {
            store,
            driver: BridgeDriver,
            underlay: UnderlayDriver,
            firewall: NftFirewall::from_env().with_lock(&runroot.join("locks").join("firewall")),
        }
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
        if let Some(u) = &n.underlay {
            // No bridge and no rules: only berth-made links can be missing (parent, shim).
            let shim_gone = u
                .shim
                .as_ref()
                .is_some_and(|s| berth_sys::link::link_index(s.ifname.as_str()).is_err());
            if shim_gone || berth_sys::link::link_index(u.parent.as_str()).is_err() {
                if !u.parent_created {
                    self.underlay
                        .prepare_parent(n.name.as_str(), &u.parent, false)?;
                }
                self.underlay.create_network(&n)?;
            }
            return Ok(n);
        }
        // One netlink query on the hot path; the rest only when the bridge is missing.
        if berth_sys::link::link_index(n.bridge.as_str()).is_err() {
            self.driver.create_network(&n)?;
            let generation = plan::generation(&self.bridge_networks()?);
            self.firewall.add_network(&n, generation)?;
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
                options.insert(OPT_BRIDGE_NAME.to_string(), DEFAULT_BRIDGE.to_string());
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
    /// networks, record, make the bridge, add the firewall rules; undo on failure.
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

    fn create_with_dns(
        &mut self,
        req: NetworkCreateRequest,
        dns: bool,
    ) -> Result<NetworkState, ManagerError> {
        match req.driver {
            DriverName::Bridge => {}
            DriverName::Macvlan | DriverName::Ipvlan => return self.create_underlay(req),
            DriverName::Overlay => {
                return Err(ManagerError::Invalid(format!(
                    "network driver {} is not available yet: berth supports bridge, macvlan \
                     and ipvlan networks today",
                    req.driver
                )))
            }
        }
        let opts = BridgeOptions::parse(&req)?;
        let id = new_id();
        let bridge = match &opts.bridge_name {
            Some(b) => b.clone(),
            None => format!("br-{}", &id[..12]).parse().expect("valid ifname"),
        };
        if dns && bridge.as_str() == DEFAULT_BRIDGE {
            return Err(ManagerError::Invalid(format!(
                "bridge device {DEFAULT_BRIDGE} is reserved for the default network: choose \
                 another com.docker.network.bridge.name"
            )));
        }
        for s in req.subnets.iter().filter_map(|s| s.subnet) {
            check_usable_subnet(s)?;
        }
        // Only a bridge berth makes is berth's to delete (on a failed create and on `network
        // rm`): an interface that already exists is never adopted — except `berth0`, the
        // default network's own device, which outlives a lost state database.
        if dns && berth_sys::link::link_index(bridge.as_str()).is_ok() {
            return Err(ManagerError::Invalid(format!(
                "interface {bridge} already exists on this host: choose another \
                 com.docker.network.bridge.name (berth only manages bridges it creates)"
            )));
        }
        let others = self.list()?;
        if let Some(o) = others.iter().find(|o| o.bridge == bridge) {
            return Err(ManagerError::Invalid(format!(
                "bridge device {bridge} is already used by network {}: choose another \
                 com.docker.network.bridge.name",
                o.name
            )));
        }
        let taken = taken_ranges(&others);
        let subnets = ipam::choose_subnets(&req.subnets, req.ipv6, &taken)?;
        let state = NetworkState {
            id,
            name: req.name.clone(),
            driver: req.driver,
            subnets,
            ipv6: req.ipv6,
            internal: req.internal,
            icc: opts.icc,
            dns,
            mtu: req.mtu.or(opts.mtu).unwrap_or_else(host_mtu),
            bridge,
            labels: req.labels.clone(),
            options: req.options.clone(),
            created: chrono::Utc::now().to_rfc3339(),
            underlay: None,
        };
        self.record_and_make(state)
    }

    /// Records `state`, then makes its kernel objects and rules; undoes the record on failure.
    fn record_and_make(&mut self, state: NetworkState) -> Result<NetworkState, ManagerError> {
        // The rules' generation without and with this network, read before the record exists
        // (so nothing can fail between the record and its rules but the steps below).
        let mut covered = self.bridge_networks()?;
        let without = plan::generation(&covered);
        covered.push(state.clone());
        let with = plan::generation(&covered);
        self.store.write(|tx| records::insert_network(tx, &state))?;
        if state.underlay.is_some() {
            // Underlay networks have no rules: no NAT, no published ports, no isolation chain.
            if let Err(e) = self.underlay.create_network(&state) {
                let _ = self
                    .store
                    .write(|tx| records::delete_network(tx, &state.id));
                return Err(e.into());
            }
            return Ok(state);
        }
        // Rules before the bridge: a crash in between leaves rules without a bridge, which the
        // next use repairs (`ready` recreates a missing bridge and re-adds the rules); the other
        // order could leave a bridge without isolation or masquerade.
        if let Err(e) = self.firewall.add_network(&state, with) {
            let _ = self
                .store
                .write(|tx| records::delete_network(tx, &state.id));
            return Err(e.into());
        }
        if let Err(e) = self.driver.create_network(&state) {
            // The bridge may exist half-configured: delete it with the rules and the record.
            let _ = self.driver.delete_network(&state);
            let _ = self.firewall.remove_network(&state, without);
            let _ = self
                .store
                .write(|tx| records::delete_network(tx, &state.id));
            return Err(e.into());
        }
        Ok(state)
    }

    /// `network rm`: refused while containers are attached (naming them); then removes exactly
    /// the network's rules, its bridge and its record.
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
        let mut first_err = None;
        if let Some(u) = &n.underlay {
            let others = self.list()?;
            let in_use = others
                .iter()
                .any(|o| o.id != n.id && o.underlay.as_ref().is_some_and(|x| x.parent == u.parent));
            if let Err(e) = self.underlay.delete_network(&n, in_use) {
                first_err.get_or_insert(ManagerError::from(e));
            }
        } else {
            // The rules go first, stamped with the generation of the networks left: killed
            // before the record is deleted, the next command sees the store's generation
            // differ from the tables' and rebuilds this network's rules (issue 11 item 6).
            let without = self.generation_without(&n.id)?;
            if let Err(e) = self.firewall.remove_network(&n, without) {
                first_err.get_or_insert(ManagerError::from(e));
            }
            crate::test_hooks::pause_at(crate::test_hooks::NETWORK_RM_AFTER_FIREWALL);
            if let Err(e) = self.driver.delete_network(&n) {
                first_err.get_or_insert(ManagerError::from(e));
            }
        }
        self.store.write(|tx| records::delete_network(tx, &n.id))?;
        match first_err {
            Some(e) => Err(e),
            None => Ok(n),
        }
    }

    /// Attaches the sandbox pinned at `netns` of container `container_id` to `network`:
    /// the endpoint row and its addresses in one transaction, then the veth, then the rules.
    pub fn connect(
        &mut self,
        network: &NetworkState,
        container_id: &str,
        netns: &Path,
        req: &EndpointRequest,
    ) -> Result<EndpointState, ManagerError> {
        if network.internal && !req.ports.is_empty() {
            return Err(ManagerError::Invalid(format!(
                "network {} is internal: it has no published ports; drop -p/-P or use another \
                 network",
                network.name
            )));
        }
        if network.underlay.is_some() {
            self.check_underlay_endpoint(network, req)?;
        }
        let id = new_id();
        let ep = self.record_endpoint(network, container_id, &id, req)?;
        berth_sys::process::pause_at("connect-after-record");
        let joined = match network.underlay {
            Some(_) => self
                .underlay
                .join(network, &ep, netns, req.default_route)
                .map_err(ManagerError::from),
            None => self
                .driver
                .join(network, &ep, netns, req.default_route)
                .map_err(ManagerError::from),
        };
        if let Err(e) = joined {
            let _ = self.store.write(|tx| records::delete_endpoint(tx, &ep.id));
            return Err(e);
        }
        if network.underlay.is_some() {
            return Ok(ep);
        }
        if let Err(e) = self.firewall.add_endpoint(network, &ep) {
            let _ = self.driver.leave(network, &ep, netns);
            let _ = self.store.write(|tx| records::delete_endpoint(tx, &ep.id));
            return Err(e.into());
        }
        Ok(ep)
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
        self.store.write(|tx| -> Result<(), ManagerError> {
            records::insert_endpoint(tx, &ep)?;
            ep.addresses = ipam::allocate(tx, network, id, req.ip, req.ip6)?;
            ep.mac = match (&req.mac, &network.underlay) {
                (Some(m), _) => m.clone(),
                (None, Some(u)) if matches!(u.mode, UnderlayMode::Ipvlan(..)) => parent_mac(u),
                (None, _) => mac_of(&ep),
            };
            records::update_endpoint(tx, &ep)?;
            Ok(())
        })?;
        Ok(ep)
    }

    /// Detaches one endpoint: its rules, its veth (if the sandbox still exists), its record and
    /// addresses. Best effort: every step runs; the first failure is returned.
    pub fn disconnect(&mut self, ep: &EndpointState, netns: &Path) -> Result<(), ManagerError> {
        self.disconnect_with(ep, netns, false)
    }

    /// [`Manager::disconnect`]; with `sandbox_going` the veth is left to die with the sandbox's
    /// namespace (deleting it explicitly costs an RCU grace period, ~18 ms here, while the
    /// kernel tears a dead namespace down asynchronously, its links with it).
    fn disconnect_with(
        &mut self,
        ep: &EndpointState,
        netns: &Path,
        sandbox_going: bool,
    ) -> Result<(), ManagerError> {
        let network = records::lookup_network(self.store.conn(), &ep.network_id).ok();
        let mut first_err = None;
        if let Some(n) = network.as_ref().filter(|n| n.underlay.is_some()) {
            // The child dies with the sandbox's namespace; only an explicit disconnect deletes it.
            if !sandbox_going {
                if let Err(e) = self.underlay.leave(n, ep, netns) {
                    first_err.get_or_insert(ManagerError::from(e));
                }
            }
        } else if let Some(n) = &network {
            if let Err(e) = self.firewall.remove_endpoint(n, ep) {
                first_err.get_or_insert(ManagerError::from(e));
            }
            if !sandbox_going {
                if let Err(e) = self.driver.leave(n, ep, netns) {
                    first_err.get_or_insert(ManagerError::from(e));
                }
            }
        }
        self.store
            .write(|tx| records::delete_endpoint(tx, &ep.id))?;
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
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

    /// The networks that have firewall rules (bridge networks; underlay ones have none).
    fn bridge_networks(&self) -> Result<Vec<NetworkState>, ManagerError> {
        let mut networks = self.list()?;
        networks.retain(|n| n.underlay.is_none());
        Ok(networks)
    }

    /// The generation of the bridge networks but the one with id `id`.
    fn generation_without(&self, id: &str) -> Result<u32, ManagerError> {
        let mut networks = self.bridge_networks()?;
        networks.retain(|n| n.id != id);
        Ok(plan::generation(&networks))
    }
}

/// Validated bridge `-o` options.
struct BridgeOptions {
    bridge_name: Option<IfName>,
    icc: bool,
    mtu: Option<u32>,
}

impl BridgeOptions {
    fn parse(req: &NetworkCreateRequest) -> Result<Self, ManagerError> {
        let mut o = Self {
            bridge_name: None,
            icc: true,
            mtu: None,
        };
        for (k, v) in &req.options {
            match k.as_str() {
                OPT_BRIDGE_NAME => {
                    o.bridge_name = Some(v.parse().map_err(|e: crate::model::ModelError| {
                        ManagerError::Invalid(format!("-o {k}={v}: {e}"))
                    })?)
                }
                OPT_ICC => {
                    o.icc = v.parse().map_err(|_| {
                        ManagerError::Invalid(format!("-o {k}={v}: use true or false"))
                    })?
                }
                OPT_MTU => o.mtu = Some(parse_mtu(v)?),
                _ => {
                    return Err(ManagerError::Invalid(format!(
                        "unknown bridge option -o {k}: berth knows {OPT_BRIDGE_NAME}, {OPT_ICC} \
                         and {OPT_MTU}"
                    )))
                }
            }
        }
        if let Some(m) = req.mtu {
            parse_mtu(&m.to_string())?;
        }
        Ok(o)
    }
}

/// Refuses subnets no network can use: loopback (127/8, ::1), multicast (224/4, ff00::/8),
/// "this network" (0/8), limited broadcast and link-local (169.254/16, fe80::/10), per
/// RFC 6890's special-purpose registries.
fn check_usable_subnet(s: ipnet::IpNet) -> Result<(), ManagerError> {
    let a = s.network();
    let special = match a {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_multicast()
                || v4.octets()[0] == 0
                || v4.is_broadcast()
                || v4.octets()[0] == 255
                || v4.is_link_local()
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_multicast()
                || v6.is_unspecified()
                || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    };
    if special {
        return Err(ManagerError::Invalid(format!(
            "subnet {s} is a special-purpose range (loopback, multicast, link-local or \
             reserved, RFC 6890): choose a private range such as 10.x, 172.16-31.x, 192.168.x \
             or an IPv6 ULA fd00::/8"
        )));
    }
    Ok(())
}

/// MTU limits: 68 (RFC 791 minimum for IPv4) to 65535.
fn parse_mtu(v: &str) -> Result<u32, ManagerError> {
    match v.parse::<u32>() {
        Ok(m) if (68..=65535).contains(&m) => Ok(m),
        _ => Err(ManagerError::Invalid(format!(
            "invalid MTU {v:?}: use a number from 68 to 65535"
        ))),
    }
}

/// Host routes, host addresses and other networks' subnets: what a new subnet must not overlap.
fn taken_ranges(others: &[NetworkState]) -> Vec<Taken> {
    let mut taken: Vec<Taken> = others
        .iter()
        .flat_map(|n| {
            n.subnets.iter().map(move |s| Taken {
                net: s.subnet,
                owner: format!("network {}", n.name),
            })
        })
        .collect();
    if let Ok(routes) = berth_sys::route::list_routes() {
        for r in routes {
            if r.dst.prefix_len() == 0 {
                continue;
            }
            taken.push(Taken {
                net: r.dst,
                owner: format!("route {} dev {}", r.dst, r.dev.as_deref().unwrap_or("?")),
            });
        }
    }
    if let Ok(addrs) = berth_sys::link::list_addrs() {
        for a in addrs {
            if a.addr.is_loopback()
                || matches!(a.addr, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80)
            {
                continue;
            }
            if let Ok(net) = ipnet::IpNet::new(a.addr, a.prefix_len) {
                taken.push(Taken {
                    net: net.trunc(),
                    owner: format!("address {}/{} on {}", a.addr, a.prefix_len, a.ifname),
                });
            }
        }
    }
    taken
}

/// The MTU of the interface holding the host's default route; 1500 when there is none.
fn host_mtu() -> u32 {
    let dev = berth_sys::route::list_routes()
        .ok()
        .and_then(|rs| {
            rs.into_iter()
                .find(|r| r.dst.prefix_len() == 0 && r.dst.addr().is_ipv4())
        })
        .and_then(|r| r.dev);
    let links = berth_sys::link::list_links().unwrap_or_default();
    dev.and_then(|d| links.into_iter().find(|l| l.name == d))
        .map_or(1500, |l| l.mtu)
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

/// A new 64-hex id.
pub fn new_id() -> String {
    let b: [u8; 32] = rand::random();
    b.iter().map(|x| format!("{x:02x}")).collect()
}
