//! Recording fakes of the network core's seams: [`FakeNetlink`] (links, addresses, routes per
//! namespace) and [`FakeFirewall`] (network and endpoint policy), sharing one [`Journal`] that
//! logs every change in order, keeps what currently exists, and fails the change numbered
//! `n` (or every change from `n` on) on demand, as a kernel refusal (`EPERM`) would.
//!
//! The journal's [`Journal::events`] are `+kind name` when a top-level object is made (a link,
//! a firewall network or endpoint) and `-kind name` when it is deleted, so tests can check that
//! undo deletes what was made in reverse order; [`Journal::objects`] (links with their
//! addresses and routes, firewall elements) must be back to what it was after a failed
//! operation.

use std::collections::BTreeSet;
use std::io;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use berth_sys::link::{Addr, Link, LinkError, MacAddr};
use berth_sys::netns::NetNsError;
use berth_sys::route::{Route, RouteError};
use berth_sys::sysctl::SysctlError;
use berth_sys::NetlinkError;
use ipnet::IpNet;

use super::{ChildKind, ChildSpec, Netlink, SandboxNs};
use crate::firewall::{Firewall, FirewallError, NftError};
use crate::model::{EndpointState, NetworkState};

/// The namespace berth runs in, as the fake names it.
pub const HOST: &str = "host";

/// One fake link.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FakeLink {
    /// The namespace (`host` or a sandbox pin path).
    ns: String,
    /// The current name.
    name: String,
    /// The name it was created with (its identity in [`Journal::events`]).
    id: String,
    /// The other end of a veth pair (its id).
    peer: Option<String>,
    index: u32,
}

#[derive(Debug, Default)]
struct State {
    links: Vec<FakeLink>,
    /// `(ns, link id, address)`.
    addrs: BTreeSet<(String, String, IpNet)>,
    /// `(ns, destination, link id)`.
    routes: BTreeSet<(String, IpNet, String)>,
    /// Firewall elements: `network NAME`, `endpoint ID`.
    firewall: BTreeSet<String>,
    events: Vec<String>,
    calls: Vec<String>,
    fail_at: Option<usize>,
    fail_from: Option<usize>,
    ns: Option<String>,
    next_index: u32,
}

/// The shared record of both fakes.
#[derive(Debug, Default, Clone)]
pub struct Journal(Arc<Mutex<State>>);

impl Journal {
    /// An empty journal (no links: add the host's with [`Journal::add_host_link`]).
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a link that exists before the test (a host NIC, a parent), not logged.
    pub fn add_host_link(&self, name: &str) {
        let mut s = self.lock();
        s.next_index += 1;
        let index = s.next_index;
        s.links.push(FakeLink {
            ns: HOST.into(),
            name: name.into(),
            id: format!("{name}#{index}"),
            peer: None,
            index,
        });
    }

    /// Fails the change numbered `n` (0-based, counting every change of both fakes).
    pub fn fail_at(&self, n: usize) {
        self.lock().fail_at = Some(n);
    }

    /// Fails every change numbered `n` or more (so undo steps fail too).
    pub fn fail_from(&self, n: usize) {
        self.lock().fail_from = Some(n);
    }

    /// No more injected failures.
    pub fn heal(&self) {
        let mut s = self.lock();
        s.fail_at = None;
        s.fail_from = None;
    }

    /// How many changes were asked for so far (failed ones included).
    pub fn changes(&self) -> usize {
        self.lock().calls.len()
    }

    /// Every change asked for, in order (`create_bridge br-x`, `fw add_network n1` ...).
    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    /// The `+kind id` / `-kind id` events of top-level objects, in order.
    pub fn events(&self) -> Vec<String> {
        self.lock().events.clone()
    }

    /// What exists now: links (`link NS NAME`), addresses, routes and firewall elements.
    pub fn objects(&self) -> BTreeSet<String> {
        let s = self.lock();
        let links = s.links.iter().map(|l| format!("link {} {}", l.ns, l.name));
        let addrs = s
            .addrs
            .iter()
            .map(|(ns, l, a)| format!("addr {ns} {l} {a}"));
        let routes = s
            .routes
            .iter()
            .map(|(ns, d, l)| format!("route {ns} {d} {l}"));
        let fw = s.firewall.iter().map(|f| format!("fw {f}"));
        links.chain(addrs).chain(routes).chain(fw).collect()
    }

    /// Logs change `what`; `Err(())` when it is to fail.
    fn change(&self, what: String) -> Result<(), ()> {
        let mut s = self.lock();
        let n = s.calls.len();
        let fail = s.fail_at == Some(n) || s.fail_from.is_some_and(|f| n >= f);
        s.calls
            .push(if fail { format!("{what} FAILED") } else { what });
        if fail {
            Err(())
        } else {
            Ok(())
        }
    }

    fn current_ns(&self) -> String {
        self.lock().ns.clone().unwrap_or_else(|| HOST.into())
    }
}

fn refused(op: &str) -> LinkError {
    LinkError::Netlink {
        op: op.to_string(),
        source: NetlinkError::Kernel {
            request: op.to_string(),
            source: io::Error::from_raw_os_error(nix::libc::EPERM),
        },
    }
}

fn not_found(name: &str) -> LinkError {
    LinkError::NotFound {
        name: name.to_string(),
    }
}

/// The fake kernel: links, addresses and routes per namespace.
#[derive(Debug, Clone)]
pub struct FakeNetlink(pub Journal);

impl FakeNetlink {
    fn step(&self, what: String) -> Result<(), LinkError> {
        self.0.change(what.clone()).map_err(|()| refused(&what))
    }

    /// Adds link `name` in `ns` (its id: `name#index`, unique across namespaces); with
    /// `log`, as a top-level object in the events.
    fn add_link(&self, ns: &str, name: &str, log: bool) -> Result<String, LinkError> {
        let mut s = self.0.lock();
        if s.links.iter().any(|l| l.ns == ns && l.name == name) {
            return Err(LinkError::Netlink {
                op: format!("create {name}"),
                source: NetlinkError::Kernel {
                    request: "RTM_NEWLINK".into(),
                    source: io::Error::from_raw_os_error(nix::libc::EEXIST),
                },
            });
        }
        s.next_index += 1;
        let index = s.next_index;
        let id = format!("{name}#{index}");
        s.links.push(FakeLink {
            ns: ns.into(),
            name: name.into(),
            id: id.clone(),
            peer: None,
            index,
        });
        if log {
            s.events.push(format!("+link {id}"));
        }
        Ok(id)
    }

    /// The id of link `name` in the current namespace.
    fn id_of(&self, name: &str) -> Result<String, LinkError> {
        let ns = self.0.current_ns();
        let s = self.0.lock();
        s.links
            .iter()
            .find(|l| l.ns == ns && l.name == name)
            .map(|l| l.id.clone())
            .ok_or_else(|| not_found(name))
    }

    fn link_of(l: &FakeLink) -> Link {
        Link {
            name: l.name.clone(),
            index: l.index,
            up: true,
            mtu: 1500,
            mac: Some(MacAddr([0x02, 0, 0, 0, 0, l.index as u8])),
            kind: Some("veth".into()),
            master: None,
        }
    }

    /// Changes that only need `name` to exist.
    fn touch(&self, what: String, name: &str) -> Result<(), LinkError> {
        self.step(what)?;
        self.id_of(name).map(|_| ())
    }
}

impl Netlink for FakeNetlink {
    fn list_links(&self) -> Result<Vec<Link>, LinkError> {
        let ns = self.0.current_ns();
        let s = self.0.lock();
        Ok(s.links
            .iter()
            .filter(|l| l.ns == ns)
            .map(Self::link_of)
            .collect())
    }
    fn link_by_name(&self, name: &str) -> Result<Link, LinkError> {
        let ns = self.0.current_ns();
        let s = self.0.lock();
        s.links
            .iter()
            .find(|l| l.ns == ns && l.name == name)
            .map(Self::link_of)
            .ok_or_else(|| not_found(name))
    }
    fn list_addrs(&self) -> Result<Vec<Addr>, LinkError> {
        Ok(Vec::new())
    }
    fn list_routes(&self) -> Result<Vec<Route>, RouteError> {
        Ok(Vec::new())
    }
    fn create_bridge(&self, name: &str, _mtu: u32) -> Result<(), LinkError> {
        self.step(format!("create_bridge {name}"))?;
        let ns = self.0.current_ns();
        match self.id_of(name) {
            Ok(_) => Ok(()),
            Err(_) => self.add_link(&ns, name, true).map(drop),
        }
    }
    fn create_veth_into(
        &self,
        name: &str,
        peer: &str,
        _mtu: u32,
        netns: &SandboxNs,
    ) -> Result<(), LinkError> {
        self.step(format!("create_veth {name} {peer}"))?;
        let ns = self.0.current_ns();
        let host = self.add_link(&ns, name, true)?;
        let sandbox = self.add_link(&netns.path().display().to_string(), peer, false)?;
        let mut s = self.0.lock();
        for l in s.links.iter_mut() {
            if l.id == host {
                l.peer = Some(sandbox.clone());
            } else if l.id == sandbox {
                l.peer = Some(host.clone());
            }
        }
        Ok(())
    }
    fn create_child(&self, c: &ChildSpec<'_>, _kind: ChildKind) -> Result<(), LinkError> {
        self.step(format!("create_child {} on {}", c.name, c.parent))?;
        if self.link_by_name(c.parent).is_err() {
            return Err(not_found(c.parent));
        }
        let ns = match c.netns {
            Some(n) => n.path().display().to_string(),
            None => self.0.current_ns(),
        };
        self.add_link(&ns, c.name, true).map(drop)
    }
    fn create_dummy(&self, name: &str) -> Result<(), LinkError> {
        self.step(format!("create_dummy {name}"))?;
        self.add_link(&self.0.current_ns(), name, true).map(drop)
    }
    fn create_vlan(&self, name: &str, parent: &str, _id: u16) -> Result<(), LinkError> {
        self.step(format!("create_vlan {name} on {parent}"))?;
        self.id_of(parent)?;
        self.add_link(&self.0.current_ns(), name, true).map(drop)
    }
    fn delete_link(&self, name: &str) -> Result<(), LinkError> {
        self.step(format!("delete_link {name}"))?;
        let Ok(id) = self.id_of(name) else {
            return Ok(());
        };
        let mut s = self.0.lock();
        let peer = s
            .links
            .iter()
            .find(|l| l.id == id)
            .and_then(|l| l.peer.clone());
        let gone = |l: &str| l == id || peer.as_deref() == Some(l);
        s.links.retain(|l| !gone(&l.id));
        s.addrs.retain(|(_, l, _)| !gone(l));
        s.routes.retain(|(_, _, l)| !gone(l));
        let made = if s.events.contains(&format!("+link {id}")) {
            id
        } else {
            // A veth's peer end: the pair was logged by its host end.
            peer.unwrap_or(id)
        };
        s.events.push(format!("-link {made}"));
        Ok(())
    }
    fn set_mac(&self, name: &str, mac: MacAddr) -> Result<(), LinkError> {
        self.touch(format!("set_mac {name} {mac}"), name)
    }
    fn set_up(&self, name: &str) -> Result<(), LinkError> {
        self.touch(format!("set_up {name}"), name)
    }
    fn rename(&self, name: &str, new_name: &str) -> Result<(), LinkError> {
        self.touch(format!("rename {name} {new_name}"), name)?;
        let ns = self.0.current_ns();
        let mut s = self.0.lock();
        if let Some(l) = s.links.iter_mut().find(|l| l.ns == ns && l.name == name) {
            l.name = new_name.into();
        }
        Ok(())
    }
    fn set_master(&self, name: &str, bridge: &str) -> Result<(), LinkError> {
        self.touch(format!("set_master {name} {bridge}"), name)
    }
    fn set_hairpin(&self, name: &str, on: bool) -> Result<(), LinkError> {
        self.touch(format!("set_hairpin {name} {on}"), name)
    }
    fn add_address(&self, name: &str, addr: IpNet) -> Result<(), LinkError> {
        self.touch(format!("add_address {name} {addr}"), name)?;
        let (ns, id) = (self.0.current_ns(), self.id_of(name)?);
        self.0.lock().addrs.insert((ns, id, addr));
        Ok(())
    }
    fn add_route(
        &self,
        dst: IpNet,
        gateway: Option<IpAddr>,
        dev: Option<&str>,
    ) -> Result<(), RouteError> {
        let dev = dev.unwrap_or("-");
        let what = format!("add_route {dst} via {gateway:?} dev {dev}");
        self.step(what)?;
        let (ns, id) = (self.0.current_ns(), self.id_of(dev)?);
        self.0.lock().routes.insert((ns, dst, id));
        Ok(())
    }
    fn set_sysctl(&self, key: &str, value: &str) -> Result<(), SysctlError> {
        self.0
            .change(format!("sysctl {key}={value}"))
            .map_err(|()| SysctlError::Io {
                op: "write",
                path: Path::new("/proc/sys").join(key),
                source: io::Error::from_raw_os_error(nix::libc::EPERM),
            })
    }
    fn run_in(&self, netns: &Path, f: &mut (dyn FnMut() + Send)) -> Result<(), NetNsError> {
        let before = self.0.lock().ns.replace(netns.display().to_string());
        f();
        self.0.lock().ns = before;
        Ok(())
    }
}

/// The fake firewall: which networks and endpoints have policy.
#[derive(Debug, Clone)]
pub struct FakeFirewall(pub Journal);

impl FakeFirewall {
    fn step(&self, what: String) -> Result<(), FirewallError> {
        self.0.change(what.clone()).map_err(|()| {
            FirewallError::Nft(NftError::Failed {
                what,
                status: "exit status: 1".into(),
                stderr: "Operation not permitted (injected)".into(),
            })
        })
    }

    fn add(&self, element: String) {
        let mut s = self.0.lock();
        if s.firewall.insert(element.clone()) {
            s.events.push(format!("+fw {element}"));
        }
    }

    fn remove(&self, element: String) {
        let mut s = self.0.lock();
        if s.firewall.remove(&element) {
            s.events.push(format!("-fw {element}"));
        }
    }
}

impl Firewall for FakeFirewall {
    fn ensure_base(&self) -> Result<(), FirewallError> {
        self.step("fw ensure_base".into())
    }
    fn add_network(&self, net: &NetworkState, _generation: u32) -> Result<(), FirewallError> {
        self.step(format!("fw add_network {}", net.name))?;
        self.add(format!("network {}", net.name));
        Ok(())
    }
    fn remove_network(&self, net: &NetworkState, _generation: u32) -> Result<(), FirewallError> {
        self.step(format!("fw remove_network {}", net.name))?;
        self.remove(format!("network {}", net.name));
        Ok(())
    }
    fn is_current(&self, _generation: u32) -> Result<bool, FirewallError> {
        Ok(true)
    }
    fn add_endpoint(&self, _net: &NetworkState, ep: &EndpointState) -> Result<(), FirewallError> {
        self.step(format!("fw add_endpoint {}", &ep.id[..12]))?;
        self.add(format!("endpoint {}", &ep.id[..12]));
        Ok(())
    }
    fn remove_endpoint(
        &self,
        _net: &NetworkState,
        ep: &EndpointState,
    ) -> Result<(), FirewallError> {
        self.step(format!("fw remove_endpoint {}", &ep.id[..12]))?;
        self.remove(format!("endpoint {}", &ep.id[..12]));
        Ok(())
    }
    fn reconcile(
        &self,
        networks: &[NetworkState],
        endpoints: &[EndpointState],
    ) -> Result<(), FirewallError> {
        self.step("fw reconcile".into())?;
        let mut s = self.0.lock();
        s.firewall = networks
            .iter()
            .map(|n| format!("network {}", n.name))
            .chain(
                endpoints
                    .iter()
                    .map(|e| format!("endpoint {}", &e.id[..12])),
            )
            .collect();
        Ok(())
    }
}
