//! Attaching a container's sandbox to its networks and detaching it, for the engine's
//! lifecycle glue (the monitor at start and teardown, `network connect`/`disconnect`):
//! the network lock, host-port reservation, and after a disconnect the repair of the
//! sandbox's default route and resolv.conf. Endpoints, firewall elements and the records the
//! embedded DNS server answers from are the manager's ([`Manager::connect`],
//! [`Manager::disconnect`]); this module orders the steps around them. Starting the DNS
//! server process stays in the engine (process management is not net's).
//!
//! Kernel access goes through the manager's [`crate::kernel::Netlink`] seam, so the repair is
//! unit-tested over the recording fake.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use berth_sys::flock::{self, FlockError};
use berth_sys::link::LinkError;
use ipnet::IpNet;

use crate::kernel::in_netns;
use crate::manager::{EndpointRequest, Manager, ManagerError};
use crate::model::{EndpointState, NetworkState, PortMapping, PublishRequest};
use crate::port::Proto;
use crate::ports::{self, Reservation};
use crate::records;

/// Errors of attaching and detaching.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// The network lock's directory cannot be made.
    #[error("{path}: {source}")]
    LockDir {
        /// `<runroot>/locks`.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The network lock cannot be taken.
    #[error(transparent)]
    Lock(#[from] FlockError),
    /// A host port of `-p` cannot be had: the message names the port and its holder.
    #[error("{0}")]
    PortConflict(String),
    /// The network manager.
    #[error(transparent)]
    Manager(#[from] ManagerError),
    /// The sandbox's namespace cannot be entered.
    #[error(transparent)]
    NetNs(#[from] berth_sys::netns::NetNsError),
    /// A route of the sandbox cannot be listed or added.
    #[error(transparent)]
    Route(#[from] berth_sys::route::RouteError),
    /// The sandbox's resolv.conf cannot be rewritten.
    #[error("{path}: {source}")]
    Resolv {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Serialises every change of networks and endpoints across berth processes (flock(2) on
/// `<runroot>/locks/networks`, its directory made if missing): subnet choice against the
/// other networks, `network rm` against joins, connect against disconnect. Each holder keeps
/// it for milliseconds; it is released when the returned file is dropped. Not re-entrant.
///
/// Errors: [`AttachError::LockDir`], [`AttachError::Lock`].
pub fn network_lock(runroot: &Path) -> Result<File, AttachError> {
    let dir = runroot.join("locks");
    std::fs::create_dir_all(&dir).map_err(|source| AttachError::LockDir {
        path: dir.clone(),
        source,
    })?;
    Ok(flock::lock_exclusive(&dir.join("networks"))?)
}

/// A sandbox's attach or detach in progress: the network lock held for its life, the
/// manager to act through.
pub struct Attacher<'a> {
    manager: Manager<'a>,
    _lock: File,
}

/// What [`Attacher::join`] made.
#[derive(Debug)]
pub struct Joined {
    /// The endpoint on the primary network.
    pub endpoint: EndpointState,
    /// Every network joined, the primary first (for the engine's DNS server).
    pub networks: Vec<NetworkState>,
    /// The other networks that could not be joined again, with why (the container still
    /// starts on the rest).
    pub skipped: Vec<(NetworkState, ManagerError)>,
}

/// What [`Attacher::connect`] did.
#[derive(Debug)]
pub enum Connected {
    /// The container already has an endpoint with its interface on the network.
    Already,
    /// A new endpoint.
    New(Box<NewEndpoint>),
}

/// The endpoint [`Attacher::connect`] made.
#[derive(Debug)]
pub struct NewEndpoint {
    /// The endpoint.
    pub endpoint: EndpointState,
    /// Set when a recorded endpoint without its interface was dropped first: its cleanup's
    /// failure, if any.
    pub stale: Option<Option<ManagerError>>,
}

/// What [`Attacher::disconnect`] did.
#[derive(Debug)]
pub enum Disconnected {
    /// The container has no endpoint on the network.
    NotConnected,
    /// The endpoint is gone; `repair` says how moving the route and resolver went.
    Done {
        /// [`repair_after_disconnect`]'s outcome.
        repair: Result<(), AttachError>,
    },
}

impl<'a> Attacher<'a> {
    /// Takes the network lock of `runroot` ([`network_lock`]) for `manager`'s operations.
    ///
    /// Errors: [`AttachError::LockDir`], [`AttachError::Lock`].
    pub fn begin(manager: Manager<'a>, runroot: &Path) -> Result<Self, AttachError> {
        let lock = network_lock(runroot)?;
        Ok(Self {
            manager,
            _lock: lock,
        })
    }

    /// The manager, under the lock.
    pub fn manager(&mut self) -> &mut Manager<'a> {
        &mut self.manager
    }

    /// The store's connection, for reads under the lock.
    pub fn conn(&self) -> &berth_store::rusqlite::Connection {
        self.manager.conn()
    }

    /// Checks that berth's firewall covers the store's networks, rebuilding it when not
    /// ([`Manager::ensure_firewall`]); returns whether it rebuilt. Call before any change.
    ///
    /// Errors: [`AttachError::Manager`].
    pub fn ensure_firewall(&mut self) -> Result<bool, AttachError> {
        Ok(self.manager.ensure_firewall()?)
    }

    /// Attaches the sandbox at `netns` of container `container_id`: its endpoint on `primary`
    /// (a failure undoes it and is returned), then one on each of `others` (one that fails is
    /// skipped and reported in [`Joined::skipped`]).
    ///
    /// Errors: [`AttachError::Manager`] from the primary network's connect.
    pub fn join(
        &mut self,
        container_id: &str,
        netns: &Path,
        primary: (&NetworkState, &EndpointRequest),
        others: &[(NetworkState, EndpointRequest)],
    ) -> Result<Joined, AttachError> {
        let (network, req) = primary;
        let endpoint = self.manager.connect(network, container_id, netns, req)?;
        let mut joined = Joined {
            endpoint,
            networks: vec![network.clone()],
            skipped: Vec::new(),
        };
        for (n, req) in others.iter().filter(|(n, _)| n.id != network.id) {
            match self.manager.connect(n, container_id, netns, req) {
                Ok(_) => joined.networks.push(n.clone()),
                Err(e) => joined.skipped.push((n.clone(), e)),
            }
        }
        Ok(joined)
    }

    /// `network connect` of container `container_id`, running in the sandbox at `netns`, to
    /// `network`: an endpoint recorded without its interface (a connect killed midway) is
    /// dropped first; the new endpoint carries the default route when it is the container's
    /// only one.
    ///
    /// Errors: [`AttachError::Manager`] (records, the connect itself, undone on failure).
    pub fn connect(
        &mut self,
        container_id: &str,
        netns: &Path,
        network: &NetworkState,
        mut req: EndpointRequest,
    ) -> Result<Connected, AttachError> {
        let mut existing = self.manager.endpoints_of(container_id)?;
        let mut stale = None;
        if let Some(ep) = existing.iter().find(|e| e.network_id == network.id) {
            if interface_present(&self.manager, netns, ep) {
                return Ok(Connected::Already);
            }
            stale = Some(self.manager.disconnect(ep, netns).err());
            existing = self.manager.endpoints_of(container_id)?;
        }
        req.default_route = existing.is_empty();
        let endpoint = self.manager.connect(network, container_id, netns, &req)?;
        Ok(Connected::New(Box::new(NewEndpoint { endpoint, stale })))
    }

    /// `network disconnect` of container `container_id` (sandbox at `netns`, resolv.conf at
    /// `resolv_conf`) from `network`: its endpoint, then the default route and resolver
    /// moved to a remaining network ([`repair_after_disconnect`]).
    ///
    /// Errors: [`AttachError::Manager`] (records, the disconnect's first failing step).
    pub fn disconnect(
        &mut self,
        container_id: &str,
        netns: &Path,
        network: &NetworkState,
        resolv_conf: &Path,
    ) -> Result<Disconnected, AttachError> {
        let eps = self.manager.endpoints_of(container_id)?;
        let Some(ep) = eps.into_iter().find(|e| e.network_id == network.id) else {
            return Ok(Disconnected::NotConnected);
        };
        self.manager.disconnect(&ep, netns)?;
        let repair =
            repair_after_disconnect(&self.manager, container_id, network, netns, resolv_conf);
        Ok(Disconnected::Done { repair })
    }

    /// Ends the manager's use, keeping the network lock for the caller's last steps (its own
    /// records of what was connected).
    pub fn into_lock(self) -> File {
        self._lock
    }

    /// Detaches every endpoint of container `container_id` at its teardown
    /// ([`Manager::disconnect_all`]): every endpoint is tried, the failures returned. With
    /// `shared` (another container still uses the namespace) the links are deleted explicitly.
    pub fn detach_all(
        &mut self,
        container_id: &str,
        netns: &Path,
        shared: bool,
    ) -> Vec<ManagerError> {
        self.manager.disconnect_all(container_id, netns, shared)
    }
}

/// Checks `requests` for two taking one host port, then binds every host port (choosing the
/// ephemeral ones), naming the holder of a port in use with `owner_of` (`" by container
/// web"`, or empty). The one code path of host-port reservation: create's early check and the
/// monitor's reservation for the container's life.
///
/// Errors: [`AttachError::PortConflict`].
pub fn reserve_host_ports(
    requests: &[PublishRequest],
    owner_of: impl Fn(u16, Proto) -> String,
) -> Result<(Vec<PortMapping>, Reservation), AttachError> {
    check_duplicate_host_ports(requests)?;
    ports::reserve(requests, |addr: SocketAddr, proto| {
        owner_of(addr.port(), proto)
    })
    .map_err(|e| AttachError::PortConflict(format!("{e}: choose another host port")))
}

/// Refuses two `-p` of one command that take the same host port (same protocol, same
/// address or one of them on every address of the family), before any socket is tried.
fn check_duplicate_host_ports(reqs: &[PublishRequest]) -> Result<(), AttachError> {
    let overlaps = |a: Option<IpAddr>, b: Option<IpAddr>| {
        let a = a.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let b = b.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        a.is_ipv4() == b.is_ipv4() && (a == b || a.is_unspecified() || b.is_unspecified())
    };
    for (i, a) in reqs.iter().enumerate().filter(|(_, r)| r.host_port != 0) {
        if reqs[..i].iter().any(|b| {
            b.proto == a.proto && b.host_port == a.host_port && overlaps(a.host_ip, b.host_ip)
        }) {
            return Err(AttachError::PortConflict(format!(
                "host port {}/{} is published twice in this command: each -p needs its own host \
                 port (or a different host address); remove the duplicate",
                a.host_port, a.proto
            )));
        }
    }
    Ok(())
}

/// Whether endpoint `ep`'s interface exists inside the sandbox at `netns` (a not-found lookup
/// means it does not; any other failure counts as present, so nothing is dropped on doubt).
pub fn interface_present(manager: &Manager<'_>, netns: &Path, ep: &EndpointState) -> bool {
    let nl = manager.netlink();
    let name = ep.ifname.to_string();
    !matches!(
        in_netns(nl, netns, || nl.link_by_name(&name)),
        Ok(Err(LinkError::NotFound { .. }))
    )
}

/// After network `gone` left container `container_id`'s running sandbox at `netns`: if it
/// carried the default route, route via the first remaining network that is not internal;
/// if `resolv_conf` pointed at `gone`'s gateways, point it at a remaining network's DNS
/// server instead (Docker moves both the same way). Every step runs.
///
/// Errors: the first failure: [`AttachError::Manager`] (records), [`AttachError::NetNs`],
/// [`AttachError::Route`], [`AttachError::Resolv`].
pub fn repair_after_disconnect(
    manager: &Manager<'_>,
    container_id: &str,
    gone: &NetworkState,
    netns: &Path,
    resolv_conf: &Path,
) -> Result<(), AttachError> {
    let conn = manager.conn();
    let remaining: Vec<(NetworkState, EndpointState)> =
        records::endpoints_of_container(conn, container_id)
            .map_err(ManagerError::from)?
            .into_iter()
            .filter_map(|e| Some((records::lookup_network(conn, &e.network_id).ok()?, e)))
            .collect();
    let Some((next, ep)) = remaining.iter().find(|(n, _)| !n.internal) else {
        return Ok(());
    };
    let routed = restore_default_route(manager, next, ep, netns);
    let dns = remaining.iter().find(|(n, _)| n.dns).map(|(n, _)| n);
    let resolv = repoint_resolv_conf(resolv_conf, gone, dns);
    routed.and(resolv)
}

/// Adds a default route per family via `next`'s gateways out of its endpoint `ep` where the
/// sandbox at `netns` has none.
fn restore_default_route(
    manager: &Manager<'_>,
    next: &NetworkState,
    ep: &EndpointState,
    netns: &Path,
) -> Result<(), AttachError> {
    let nl = manager.netlink();
    let dev = ep.ifname.to_string();
    let gateways: Vec<(IpNet, IpAddr)> = next
        .subnets
        .iter()
        .map(|s| {
            let any: IpNet = if s.gateway.is_ipv4() {
                "0.0.0.0/0".parse().expect("valid")
            } else {
                "::/0".parse().expect("valid")
            };
            (any, s.gateway)
        })
        .collect();
    let added = in_netns(nl, netns, || -> Result<(), AttachError> {
        let routes = nl.list_routes()?;
        for (dst, gw) in gateways {
            let has_default = routes
                .iter()
                .any(|r| r.dst.prefix_len() == 0 && r.dst.addr().is_ipv4() == dst.addr().is_ipv4());
            if !has_default {
                nl.add_route(dst, Some(gw), Some(&dev))?;
            }
        }
        Ok(())
    })?;
    added
}

/// Replaces the `nameserver` lines of `gone`'s gateways in `path` by `next`'s gateways
/// (none when no remaining network has DNS). Written in place: the container sees this file
/// through a bind mount of its inode. A missing file, or one not naming `gone`, is left alone.
fn repoint_resolv_conf(
    path: &Path,
    gone: &NetworkState,
    next: Option<&NetworkState>,
) -> Result<(), AttachError> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    let servers = |n: &NetworkState| -> Vec<String> {
        n.subnets
            .iter()
            .map(|s| format!("nameserver {}", s.gateway))
            .collect()
    };
    let old = servers(gone);
    if !text.lines().any(|l| old.iter().any(|o| l.trim() == o)) {
        return Ok(());
    }
    let mut out: Vec<String> = text
        .lines()
        .filter(|l| !old.iter().any(|o| l.trim() == o))
        .map(str::to_string)
        .collect();
    out.splice(0..0, next.map(servers).unwrap_or_default());
    std::fs::write(path, out.join("\n") + "\n").map_err(|source| AttachError::Resolv {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests;
