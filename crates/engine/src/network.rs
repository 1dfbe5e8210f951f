//! Networks from the engine's side: `network` commands, and attaching a container's sandbox
//! to its networks at start (published ports reserved by the monitor, endpoints through the
//! network manager, /etc/hosts and resolv.conf to match) and detaching it at teardown.

use std::net::IpAddr;
use std::path::Path;

use serde_json::{json, Value};

use berth_net::attach;
use berth_net::manager::{EndpointRequest, Manager, DEFAULT_NETWORK};
use berth_net::ports::Reservation;
use berth_net::{EndpointState, NetworkMode, NetworkState, PortMapping, Proto, PublishRequest};

use crate::state::{Container, Status};
use crate::{Engine, EngineError};

pub use berth_net::manager::NetworkCreateRequest;

/// Network uses a user can get wrong: connect/disconnect, `--ip`, `--mac-address`, `-p`.
#[derive(Debug, thiserror::Error)]
pub enum NetworkUseError {
    /// `network connect` of a container without a sandbox of its own.
    #[error("container {container} is not running with a network of its own: start it first (host and container: modes cannot join networks)")]
    NotConnectable {
        /// The container's name.
        container: String,
    },
    /// `network connect` of a container already on the network.
    #[error("container {container} is already connected to network {network}")]
    AlreadyConnected {
        /// The container's name.
        container: String,
        /// The network's name.
        network: String,
    },
    /// `network disconnect` of a container not on the network.
    #[error("container {container} is not connected to network {network}")]
    NotConnected {
        /// The container's name.
        container: String,
        /// The network's name.
        network: String,
    },
    /// `--ip`/`--ip6` on the default bridge.
    #[error("--ip/--ip6 need a user-defined network (Docker refuses them on the default bridge too): create one with --subnet and use --net NAME")]
    IpNeedsUserNetwork,
    /// `--ip`/`--ip6` that the network cannot give.
    #[error("{flag} {ip}: {reason}")]
    RequestedIp {
        /// `--ip` or `--ip6`.
        flag: &'static str,
        /// The address asked for.
        ip: IpAddr,
        /// Why it cannot be given.
        reason: IpRefusal,
    },
    /// `--mac-address` held by another endpoint of the network.
    #[error("--mac-address {mac} is already used on network {network} by container {holder}: choose another address or leave it out")]
    MacInUse {
        /// The address.
        mac: String,
        /// The network's name.
        network: String,
        /// The holder's name (or short id).
        holder: String,
    },
    /// An IPv6 host address in `-p` on an IPv4-only network.
    #[error("-p {spec}: host address {ip} is IPv6, but network {network} is IPv4-only and berth publishes ports on IPv4 host addresses only for now: use an IPv4 address (or none, for every IPv4 address), e.g. -p 127.0.0.1:PORT:PORT")]
    PublishIpv6 {
        /// The `-p` value.
        spec: String,
        /// Its host address.
        ip: IpAddr,
        /// The network's name.
        network: String,
    },
}

/// Why a network cannot give a requested address ([`NetworkUseError::RequestedIp`]).
#[derive(Debug, thiserror::Error)]
pub enum IpRefusal {
    /// In none of its subnets.
    #[error("not in network {network}'s subnets ({subnets})")]
    NotInSubnets {
        /// The network's name.
        network: String,
        /// Its subnets, comma-separated.
        subnets: String,
    },
    /// Outside the subnet's `--ip-range`.
    #[error("outside the network's --ip-range {0}")]
    OutsideRange(ipnet::IpNet),
    /// The gateway's address.
    #[error("it is the network's gateway")]
    Gateway,
    /// Reserved with `--aux-address NAME=IP`.
    #[error("it is reserved as --aux-address {0}")]
    AuxAddress(String),
    /// The subnet's network or broadcast address.
    #[error("it is the subnet's network or broadcast address")]
    NetworkOrBroadcast,
}

/// `network connect` options.
#[derive(Debug, Clone, Default)]
pub struct ConnectRequest {
    /// `--ip`.
    pub ip: Option<std::net::Ipv4Addr>,
    /// `--ip6`.
    pub ip6: Option<std::net::Ipv6Addr>,
    /// `--alias`.
    pub aliases: Vec<String>,
}

/// What attaching a container's first network produced, for the bundle.
#[derive(Debug)]
pub struct Attached {
    /// The network.
    pub network: NetworkState,
    /// The endpoint made.
    pub endpoint: EndpointState,
    /// The held host ports (kept by the monitor for the container's life).
    pub reservation: Reservation,
}

/// `bridge` and `default` both mean the default network.
pub fn network_key(name: &str) -> &str {
    if name == "default" {
        DEFAULT_NETWORK
    } else {
        name
    }
}

impl Engine {
    fn manager(&mut self) -> Manager<'_> {
        Manager::new(&mut self.store, &self.paths.runroot)
    }

    /// Serialises every change of networks and endpoints across berth processes (flock(2) on
    /// `<runroot>/locks/networks`): subnet choice against the other networks, `network rm`
    /// against joins, connect against disconnect. Each holder keeps it for milliseconds.
    /// Not re-entrant: take it only at the entry points below, never around recovery.
    fn network_lock(&self) -> Result<std::fs::File, EngineError> {
        Ok(attach::network_lock(&self.paths.runroot)?)
    }

    /// Checks in O(1) that berth's firewall tables cover the store's networks and rebuilds
    /// them from the store when not (issue 11: an external `nft flush ruleset`, a reboot, a
    /// network command killed midway). Call with the network lock held, before any firewall
    /// change; every command that touches the firewall does.
    fn ensure_firewall(&mut self) -> Result<(), EngineError> {
        if self.manager().ensure_firewall()? {
            tracing::warn!("berth's firewall rules were missing or stale: rebuilt from the store");
        }
        Ok(())
    }

    /// `network reload`: rebuilds every firewall rule and element from the store in one
    /// transaction, whatever their state (Docker's firewalld-reload handling, netavark's
    /// `firewall-reload`).
    pub fn network_reload(&mut self) -> Result<(), EngineError> {
        self.reconcile_all()?;
        let _lock = self.network_lock()?;
        self.manager().reconcile_firewall()?;
        Ok(())
    }

    /// `network create`: the network, and the warnings for the user (net never prints).
    pub fn network_create(
        &mut self,
        req: NetworkCreateRequest,
    ) -> Result<(NetworkState, Vec<berth_net::manager::Warning>), EngineError> {
        let _lock = self.network_lock()?;
        self.ensure_firewall()?;
        let mut manager = self.manager();
        let n = manager.create(req)?;
        let warnings = manager.take_warnings();
        crate::dns::reload(&self.paths);
        Ok((n, warnings))
    }

    /// Every network, the default one included once it exists.
    pub fn networks(&mut self) -> Result<Vec<NetworkState>, EngineError> {
        Ok(self.manager().list()?)
    }

    /// `network rm`.
    pub fn network_remove(&mut self, key: &str) -> Result<NetworkState, EngineError> {
        self.reconcile_all()?;
        let _lock = self.network_lock()?;
        self.ensure_firewall()?;
        let n = self.manager().remove(key)?;
        crate::dns::reload(&self.paths);
        Ok(n)
    }

    /// `network prune`: removes every network without endpoints (the default one stays).
    pub fn network_prune(&mut self) -> Result<Vec<String>, EngineError> {
        self.reconcile_all()?;
        let _lock = self.network_lock()?;
        self.ensure_firewall()?;
        let mut removed = Vec::new();
        for n in self.networks()? {
            if n.name.as_str() == DEFAULT_NETWORK {
                continue;
            }
            if self.manager().remove(n.id.as_str()).is_ok() {
                removed.push(n.name.to_string());
            }
        }
        crate::dns::reload(&self.paths);
        Ok(removed)
    }

    /// `network inspect`: Docker's shape.
    pub fn network_inspect(&mut self, key: &str) -> Result<Value, EngineError> {
        let n = self.manager().lookup(network_key(key))?;
        let attached = berth_net::records::attached_containers(self.store.conn(), &n.id)
            .map_err(berth_net::manager::ManagerError::from)?;
        let mut containers = serde_json::Map::new();
        for (name, cfg) in attached {
            let ep: EndpointState = serde_json::from_str(&cfg)?;
            containers.insert(ep.container_id.clone(), endpoint_json(&name, &ep));
        }
        let config: Vec<Value> = n
            .subnets
            .iter()
            .map(|s| {
                let mut o =
                    json!({"Subnet": s.subnet.to_string(), "Gateway": s.gateway.to_string()});
                if let Some(r) = s.ip_range {
                    o["IPRange"] = json!(r.to_string());
                }
                if !s.aux_addresses.is_empty() {
                    o["AuxiliaryAddresses"] = json!(s.aux_addresses);
                }
                o
            })
            .collect();
        Ok(json!({
            "Name": n.name.as_str(),
            "Id": n.id,
            "Created": n.created,
            "Scope": "local",
            "Driver": n.driver().to_string(),
            "EnableIPv6": n.ipv6,
            "IPAM": {"Driver": "default", "Options": {}, "Config": config},
            "Internal": n.internal,
            "Attachable": false,
            "Ingress": false,
            "Containers": containers,
            "Options": n.options,
            "Labels": n.labels,
            "berth": {"Bridge": n.device().as_str(), "MTU": n.mtu, "ICC": n.icc(), "DNS": n.dns},
        }))
    }

    /// `network connect` of a running container (a created one is attached when it starts).
    pub fn network_connect(
        &mut self,
        net: &str,
        key: &str,
        req: ConnectRequest,
    ) -> Result<EndpointState, EngineError> {
        req.aliases
            .iter()
            .try_for_each(|a| crate::config::validate_alias(a))?;
        let c = self.container(key)?;
        let c = self.reconcile_one(c)?;
        if c.state.status != Status::Running || c.state.sandbox_key.is_empty() {
            return Err(NetworkUseError::NotConnectable {
                container: c.name.to_string(),
            }
            .into());
        }
        let manager = Manager::new(&mut self.store, &self.paths.runroot);
        let mut at = attach::Attacher::begin(manager, &self.paths.runroot)?;
        if at.ensure_firewall()? {
            tracing::warn!("berth's firewall rules were missing or stale: rebuilt from the store");
        }
        let n = resolve_in(at.manager(), net)?;
        let ereq = EndpointRequest {
            ip: req.ip,
            ip6: req.ip6,
            aliases: req.aliases.clone(),
            ..EndpointRequest::default()
        };
        let sandbox = Path::new(&c.state.sandbox_key);
        let ep = match at.connect(&c.id, sandbox, &n, ereq)? {
            attach::Connected::Already => {
                return Err(NetworkUseError::AlreadyConnected {
                    container: c.name.to_string(),
                    network: n.name.to_string(),
                }
                .into())
            }
            attach::Connected::New(new) => {
                let attach::NewEndpoint { endpoint, stale } = *new;
                // A connect killed between recording the endpoint and making its interface:
                // its record (rules, address) was dropped and the connect made afresh.
                if let Some(cleanup) = stale {
                    tracing::warn!(container = %c.name, network = %n.name, "endpoint without its interface: dropped it");
                    if let Some(e) = cleanup {
                        tracing::info!(error = %e, "stale endpoint removed (its cleanup reported)");
                    }
                }
                endpoint
            }
        };
        let _lock = at.into_lock();
        crate::dns::ensure(&self.paths, &n);
        let primary = self.primary_network_id(&c);
        crate::state::update_config(&mut self.store, &c.id, |cfg| {
            if primary.as_deref() == Some(n.id.as_str()) {
                cfg.net.primary_detached = false;
            } else if !cfg.net.connected.iter().any(|x| x.network_id == n.id) {
                cfg.net.connected.push(crate::config::ConnectedNetwork {
                    network_id: n.id.clone(),
                    ip: req.ip,
                    ip6: req.ip6,
                    aliases: req.aliases,
                });
            }
        })?;
        Ok(ep)
    }

    /// `network disconnect`.
    pub fn network_disconnect(
        &mut self,
        net: &str,
        key: &str,
        force: bool,
    ) -> Result<(), EngineError> {
        let c = self.container(key)?;
        let manager = Manager::new(&mut self.store, &self.paths.runroot);
        let mut at = attach::Attacher::begin(manager, &self.paths.runroot)?;
        if at.ensure_firewall()? {
            tracing::warn!("berth's firewall rules were missing or stale: rebuilt from the store");
        }
        let n = resolve_in(at.manager(), net)?;
        let key = self.paths.sandbox_key(&c.id);
        let resolv =
            crate::etc_files::EtcPaths::in_dir(&self.paths.container_dir(&c.id)).resolv_conf;
        match at.disconnect(&c.id, &key, &n, &resolv)? {
            attach::Disconnected::NotConnected if force => return Ok(()),
            attach::Disconnected::NotConnected => {
                return Err(NetworkUseError::NotConnected {
                    container: c.name.to_string(),
                    network: n.name.to_string(),
                }
                .into())
            }
            // Best effort, as Docker: a route or resolver that cannot move is logged.
            attach::Disconnected::Done { repair } => {
                if let Err(e) = repair {
                    tracing::debug!(container = %c.name, error = %e, "repair after disconnect");
                }
            }
        }
        let _lock = at.into_lock();
        let primary = self.primary_network_id(&c);
        crate::state::update_config(&mut self.store, &c.id, |cfg| {
            cfg.net.connected.retain(|x| x.network_id != n.id);
            if primary.as_deref() == Some(n.id.as_str()) {
                cfg.net.primary_detached = true;
            }
        })?;
        Ok(())
    }

    /// The id of the network `--net` named, if it is a network that exists.
    fn primary_network_id(&self, c: &Container) -> Option<String> {
        match &c.config.network {
            NetworkMode::Network(name) => {
                berth_net::records::lookup_network(self.store.conn(), network_key(name))
                    .ok()
                    .map(|n| n.id)
            }
            _ => None,
        }
    }

    /// The network a mode names, creating the default one on first use.
    pub fn resolve_network(&mut self, name: &str) -> Result<NetworkState, EngineError> {
        resolve_in(&mut self.manager(), name)
    }

    /// Checks at create time that a named network exists and the publish options fit it,
    /// then takes and drops the explicit host ports (the same code path as the monitor's
    /// reservation at start, [`reserve_host_ports`]), so a conflict is refused before
    /// any record is written.
    pub(crate) fn validate_network(
        &mut self,
        name: &str,
        net: &crate::config::NetOptions,
    ) -> Result<(), EngineError> {
        let key = network_key(name);
        let network = if key == DEFAULT_NETWORK {
            if net.ip.is_some() || net.ip6.is_some() {
                return Err(NetworkUseError::IpNeedsUserNetwork.into());
            }
            self.manager().lookup(key).ok()
        } else {
            let n = self.manager().lookup(key)?;
            berth_net::policy::check_publish(&n, net.publishes())
                .map_err(berth_net::manager::ManagerError::from)?;
            let wanted = [net.ip.map(IpAddr::V4), net.ip6.map(IpAddr::V6)];
            for ip in wanted.into_iter().flatten() {
                check_requested_ip(&n, ip)?;
            }
            Some(n)
        };
        if let Some(n) = &network {
            check_mac_free(self.store.conn(), n, net.mac_address, None)?;
        }
        let v6 = network.as_ref().is_some_and(has_ipv6_subnet);
        if !v6 {
            check_publish_families_v4(network.as_ref().map_or(key, |n| n.name.as_str()), net)?;
        }
        let explicit: Vec<PublishRequest> = net
            .publish_requests()
            .filter(|r| r.host_port != 0)
            .copied()
            .collect();
        // The reservation is dropped at once: the monitor's at start is the real arbiter,
        // this spares a doomed container record.
        reserve_host_ports(self.store.conn(), &explicit).map(drop)
    }

    /// Attaches the sandbox at `netns` of container `c` to its networks (called by the
    /// monitor) through [`attach::Attacher`]: under the network lock, host ports reserved
    /// first (a conflict is refused before anything is made), then the endpoints; the DNS
    /// server is started for each network joined.
    pub fn attach_networks(
        &mut self,
        c: &Container,
        netns: &Path,
    ) -> Result<Attached, EngineError> {
        let NetworkMode::Network(name) = &c.config.network else {
            return Err(EngineError::Internal(
                "attach_networks needs a network mode",
            ));
        };
        let requests = self.publish_requests(c)?;
        let manager = Manager::new(&mut self.store, &self.paths.runroot);
        let mut at = attach::Attacher::begin(manager, &self.paths.runroot)?;
        if at.ensure_firewall()? {
            tracing::warn!("berth's firewall rules were missing or stale: rebuilt from the store");
        }
        let net = &c.config.net;
        // The `--net` network, unless `network disconnect` took it away and another remains.
        let extras: Vec<(NetworkState, EndpointRequest)> = net
            .connected
            .iter()
            .filter_map(|x| {
                let n = at.manager().lookup_ready(&x.network_id).ok()?;
                let req = EndpointRequest {
                    ip: x.ip,
                    ip6: x.ip6,
                    aliases: x.aliases.clone(),
                    ..EndpointRequest::default()
                };
                Some((n, req))
            })
            .collect();
        let (network, mut req) = match extras.first() {
            Some((n, x)) if net.primary_detached => (n.clone(), x.clone()),
            _ => {
                let req = EndpointRequest {
                    ip: net.ip,
                    ip6: net.ip6,
                    aliases: net.aliases.clone(),
                    ..EndpointRequest::default()
                };
                (resolve_in(at.manager(), name)?, req)
            }
        };
        let (mappings, reservation) = reserve_host_ports(at.conn(), &requests)?;
        req.mac = net.mac_address.map(|m| m.to_string());
        req.ports = mappings;
        req.default_route = !network.internal;
        // Under the network lock: no other start can take the MAC between check and connect.
        check_mac_free(at.conn(), &network, net.mac_address, Some(&c.id))?;
        let joined = at.join(&c.id, netns, (&network, &req), &extras)?;
        for n in &joined.networks {
            crate::dns::ensure(&self.paths, n);
        }
        drop(at);
        // A network that cannot be joined again (its range filled up meanwhile) is reported
        // and skipped: the container still starts on its others.
        for (n, e) in &joined.skipped {
            tracing::warn!(network = %n.name, error = %e, "cannot reconnect");
        }
        Ok(Attached {
            network,
            endpoint: joined.endpoint,
            reservation,
        })
    }

    /// The `-p` requests (parsed at create) and `-P`'s: every declared port on an ephemeral
    /// host port, unless a `-p` already publishes it.
    fn publish_requests(&self, c: &Container) -> Result<Vec<PublishRequest>, EngineError> {
        let mut out: Vec<PublishRequest> = c.config.net.publish_requests().copied().collect();
        if c.config.net.publish_all {
            for spec in self.declared_ports(c)? {
                if !out
                    .iter()
                    .any(|r| r.container_port == spec.port && r.proto == spec.proto)
                {
                    out.push(PublishRequest {
                        host_ip: None,
                        host_port: 0,
                        container_port: spec.port,
                        proto: spec.proto,
                    });
                }
            }
        }
        Ok(out)
    }

    /// Detaches every endpoint of container `id` (teardown). When running containers joined
    /// its namespace (`--net container:`), its links are deleted explicitly: the namespace
    /// outlives the teardown (see `joined`).
    pub(crate) fn detach_networks(&mut self, id: &str) -> Vec<EngineError> {
        let key = self.paths.sandbox_key(id);
        // Nothing to detach (most teardowns of none/host containers): no lock, no manager.
        if berth_net::records::endpoints_of_container(self.store.conn(), id)
            .map(|e| e.is_empty())
            .unwrap_or(false)
        {
            return Vec::new();
        }
        let shared = match self.joined_running(id) {
            Ok(joined) => !joined.is_empty(),
            Err(e) => {
                tracing::warn!(id, error = %e, "cannot list joined containers: deleting links");
                true
            }
        };
        let manager = Manager::new(&mut self.store, &self.paths.runroot);
        let mut at = match attach::Attacher::begin(manager, &self.paths.runroot) {
            Ok(at) => at,
            Err(e) => return vec![e.into()],
        };
        let mut errors: Vec<EngineError> = match at.ensure_firewall() {
            Ok(true) => {
                tracing::warn!(
                    "berth's firewall rules were missing or stale: rebuilt from the store"
                );
                Vec::new()
            }
            Ok(false) => Vec::new(),
            Err(e) => vec![e.into()],
        };
        errors.extend(
            at.detach_all(id, &key, shared)
                .into_iter()
                .map(EngineError::from),
        );
        errors
    }

    /// The endpoints of a container with their networks.
    pub fn container_endpoints(&self, id: &str) -> Vec<(NetworkState, EndpointState)> {
        let conn = self.store.conn();
        let eps = berth_net::records::endpoints_of_container(conn, id).unwrap_or_default();
        eps.into_iter()
            .filter_map(|e| {
                let n = berth_net::records::lookup_network(conn, &e.network_id).ok()?;
                Some((n, e))
            })
            .collect()
    }

    /// Every published mapping of a container (all its endpoints).
    pub fn published_ports(&self, id: &str) -> Vec<PortMapping> {
        self.container_endpoints(id)
            .into_iter()
            .flat_map(|(_, e)| e.ports)
            .collect()
    }
}

/// Checks `requests` for two taking one host port, then binds every host port (choosing the
/// ephemeral ones), naming the holder of a port in use ([`attach::reserve_host_ports`]).
///
/// Errors: [`EngineError::PortConflict`].
fn reserve_host_ports(
    conn: &berth_store::rusqlite::Connection,
    requests: &[PublishRequest],
) -> Result<(Vec<PortMapping>, Reservation), EngineError> {
    Ok(attach::reserve_host_ports(requests, |port, proto| {
        port_owner(conn, port, proto)
    })?)
}

/// The network a mode names, through `manager`, creating the default one on first use.
fn resolve_in(manager: &mut Manager<'_>, name: &str) -> Result<NetworkState, EngineError> {
    let key = network_key(name);
    if key == DEFAULT_NETWORK {
        return Ok(manager.ensure_default()?);
    }
    Ok(manager.lookup_ready(key)?)
}

/// Who holds host port `port`: a berth container by its endpoint record, else the process
/// listening on it, else nobody known.
fn port_owner(conn: &berth_store::rusqlite::Connection, port: u16, proto: Proto) -> String {
    let eps = berth_net::records::all_endpoints(conn).unwrap_or_default();
    if let Some(ep) = eps.iter().find(|e| {
        e.ports
            .iter()
            .any(|m| m.host_port == port && m.proto == proto)
    }) {
        if let Ok(Some(c)) = crate::state::by_id(conn, &ep.container_id) {
            return format!(" by container {}", c.name);
        }
    }
    let wanted = [berth_net::PortSpec { port, proto }];
    match berth_net::check_host_ports(&wanted) {
        Ok(conflicts) => conflicts
            .iter()
            .find(|k| !k.owners.is_empty())
            .map(|k| format!(" by {}", crate::ports::describe_owners(conn, &k.owners)))
            .unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Refuses `mac` when an endpoint of network `n` (other than container `except`'s)
/// already has it, naming the holder: two interfaces with one MAC on a bridge make its
/// forwarding table flap between them.
fn check_mac_free(
    conn: &berth_store::rusqlite::Connection,
    n: &NetworkState,
    mac: Option<crate::config::EndpointMac>,
    except: Option<&str>,
) -> Result<(), EngineError> {
    let Some(mac) = mac.map(|m| m.to_string()) else {
        return Ok(());
    };
    let eps = berth_net::records::endpoints_of_network(conn, &n.id)
        .map_err(berth_net::manager::ManagerError::from)?;
    let Some(holder) = eps
        .iter()
        .find(|e| e.mac.eq_ignore_ascii_case(&mac) && Some(e.container_id.as_str()) != except)
    else {
        return Ok(());
    };
    let name = crate::state::by_id(conn, &holder.container_id)
        .ok()
        .flatten()
        .map(|c| c.name.to_string())
        .unwrap_or_else(|| holder.container_id.chars().take(12).collect());
    Err(NetworkUseError::MacInUse {
        mac,
        network: n.name.to_string(),
        holder: name,
    }
    .into())
}

/// Whether network `n` has an IPv6 subnet (IPv6 host addresses in `-p` can answer there).
fn has_ipv6_subnet(n: &NetworkState) -> bool {
    n.subnets.iter().any(|s| s.subnet.addr().is_ipv6())
}

/// Refuses IPv6 host addresses in `-p` on network `name`, known to be IPv4-only: nothing
/// would answer there (IPv6 publishing is not built yet).
fn check_publish_families_v4(
    name: &str,
    net: &crate::config::NetOptions,
) -> Result<(), EngineError> {
    for p in &net.publish {
        if let Some(ip) = p
            .requests()
            .iter()
            .find_map(|r| r.host_ip.filter(IpAddr::is_ipv6))
        {
            return Err(NetworkUseError::PublishIpv6 {
                spec: p.to_string(),
                ip,
                network: name.to_string(),
            }
            .into());
        }
    }
    Ok(())
}

/// Checks `--ip`/`--ip6` against a network's subnets, ranges and reserved addresses before
/// anything is recorded (IPAM checks again, authoritatively, when it allocates).
fn check_requested_ip(n: &NetworkState, ip: IpAddr) -> Result<(), EngineError> {
    let flag = if ip.is_ipv4() { "--ip" } else { "--ip6" };
    let bad = |reason| NetworkUseError::RequestedIp { flag, ip, reason };
    let Some(s) = n.subnets.iter().find(|s| s.subnet.contains(&ip)) else {
        let subnets: Vec<String> = n.subnets.iter().map(|s| s.subnet.to_string()).collect();
        return Err(bad(IpRefusal::NotInSubnets {
            network: n.name.to_string(),
            subnets: subnets.join(", "),
        })
        .into());
    };
    if let Some(r) = s.ip_range.filter(|r| !r.contains(&ip)) {
        return Err(bad(IpRefusal::OutsideRange(r)).into());
    }
    if ip == s.gateway {
        return Err(bad(IpRefusal::Gateway).into());
    }
    if let Some((name, _)) = s.aux_addresses.iter().find(|(_, a)| **a == ip) {
        return Err(bad(IpRefusal::AuxAddress(name.clone())).into());
    }
    if ip == s.subnet.network() || (ip.is_ipv4() && ip == s.subnet.broadcast()) {
        return Err(bad(IpRefusal::NetworkOrBroadcast).into());
    }
    Ok(())
}

/// One published mapping as `ps` shows it: `0.0.0.0:8080->80/tcp`.
pub fn mapping_label(m: &PortMapping) -> String {
    let ip = match m.host_ip {
        None => "0.0.0.0".to_string(),
        Some(std::net::IpAddr::V6(v6)) => format!("[{v6}]"),
        Some(ip) => ip.to_string(),
    };
    format!("{ip}:{}->{}/{}", m.host_port, m.container_port, m.proto)
}

fn endpoint_json(name: &str, ep: &EndpointState) -> Value {
    let v4 = ep.addresses.iter().find(|a| a.addr().is_ipv4());
    let v6 = ep.addresses.iter().find(|a| a.addr().is_ipv6());
    json!({
        "Name": name,
        "EndpointID": ep.id,
        "MacAddress": ep.mac,
        "IPv4Address": v4.map(|a| a.to_string()).unwrap_or_default(),
        "IPv6Address": v6.map(|a| a.to_string()).unwrap_or_default(),
    })
}
