//! The kernel seam of the network core (issue 12 item 2, STYLE.md "kernel access behind
//! seams"): every link, address, route, sysctl and namespace call the drivers and the network
//! manager make goes through [`Netlink`]. [`SysNetlink`] is the production implementation
//! (rtnetlink and `/proc/sys` through `berth-sys`); tests inject the recording fake of
//! [`fake`] (feature `test-support`), which can fail any step on demand.

use std::fs::File;
use std::io;
use std::net::IpAddr;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use berth_sys::link::MacvlanMode;
use berth_sys::link::{self, Addr, ChildLink, IpvlanFlag, IpvlanMode, Link, LinkError, MacAddr};
use berth_sys::netns::{self, NetNsError};
use berth_sys::route::{self, Route, RouteError};
use berth_sys::sysctl::{self, SysctlError};
use ipnet::IpNet;

#[cfg(any(test, feature = "test-support"))]
pub mod fake;

/// A sandbox's network namespace, opened from its pin (a bind mount under the runroot) so
/// links can be created in it or moved into it.
#[derive(Debug)]
pub struct SandboxNs {
    path: PathBuf,
    file: File,
}

impl SandboxNs {
    /// Opens the pin at `path`.
    ///
    /// Errors: the I/O error (`ENOENT` when the sandbox is gone).
    pub fn open(path: &Path) -> io::Result<Self> {
        Ok(Self {
            path: path.to_path_buf(),
            file: File::open(path)?,
        })
    }

    /// The pin's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// A macvlan/ipvlan child to create: on `parent`, named `name`, born inside `netns` (or in
/// the namespace berth runs in when `None`).
#[derive(Debug, Clone, Copy)]
pub struct ChildSpec<'a> {
    /// The child's name.
    pub name: &'a str,
    /// Its parent link (in the namespace berth runs in).
    pub parent: &'a str,
    /// Its MTU; `None` keeps the parent's.
    pub mtu: Option<u32>,
    /// Its MAC (macvlan only); `None` lets the kernel choose.
    pub mac: Option<MacAddr>,
    /// Where it is born.
    pub netns: Option<&'a SandboxNs>,
}

/// The kind of child link to create, with its mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildKind {
    /// A macvlan child.
    Macvlan(MacvlanMode),
    /// An ipvlan child.
    Ipvlan(IpvlanMode, IpvlanFlag),
}

/// The link/address/route/sysctl calls of the network core, in the namespace of the calling
/// thread (inside [`Netlink::run_in`], the sandbox's). Each method is the `berth-sys` call of
/// the same name; see there for errors and kernel sources.
pub trait Netlink: Sync {
    /// Every link.
    fn list_links(&self) -> Result<Vec<Link>, LinkError>;
    /// The link `name` (`LinkError::NotFound` if there is none).
    fn link_by_name(&self, name: &str) -> Result<Link, LinkError>;
    /// Every address.
    fn list_addrs(&self) -> Result<Vec<Addr>, LinkError>;
    /// Every route of the main table.
    fn list_routes(&self) -> Result<Vec<Route>, RouteError>;
    /// Creates (or converges) bridge `name` with `mtu`.
    fn create_bridge(&self, name: &str, mtu: u32) -> Result<(), LinkError>;
    /// Creates the veth pair `name` <-> `peer`, the peer born inside `netns`.
    fn create_veth_into(
        &self,
        name: &str,
        peer: &str,
        mtu: u32,
        netns: &SandboxNs,
    ) -> Result<(), LinkError>;
    /// Creates a macvlan or ipvlan child.
    fn create_child(&self, child: &ChildSpec<'_>, kind: ChildKind) -> Result<(), LinkError>;
    /// Creates dummy link `name`.
    fn create_dummy(&self, name: &str) -> Result<(), LinkError>;
    /// Creates 802.1q link `name` with VLAN `id` on `parent`.
    fn create_vlan(&self, name: &str, parent: &str, id: u16) -> Result<(), LinkError>;
    /// Deletes link `name`; a missing link is success.
    fn delete_link(&self, name: &str) -> Result<(), LinkError>;
    /// Sets the MAC of `name`.
    fn set_mac(&self, name: &str, mac: MacAddr) -> Result<(), LinkError>;
    /// Brings `name` up.
    fn set_up(&self, name: &str) -> Result<(), LinkError>;
    /// Renames `name` to `new_name`.
    fn rename(&self, name: &str, new_name: &str) -> Result<(), LinkError>;
    /// Enslaves `name` to bridge `bridge`.
    fn set_master(&self, name: &str, bridge: &str) -> Result<(), LinkError>;
    /// Sets hairpin mode on bridge port `name`.
    fn set_hairpin(&self, name: &str, on: bool) -> Result<(), LinkError>;
    /// Adds `addr` (with its prefix length) to `name`.
    fn add_address(&self, name: &str, addr: IpNet) -> Result<(), LinkError>;
    /// Adds a route to `dst` via `gateway` and/or out of `dev`.
    fn add_route(
        &self,
        dst: IpNet,
        gateway: Option<IpAddr>,
        dev: Option<&str>,
    ) -> Result<(), RouteError>;
    /// Writes `value` to sysctl `key` (a path under `/proc/sys`, e.g. `net/ipv4/ip_forward`).
    fn set_sysctl(&self, key: &str, value: &str) -> Result<(), SysctlError>;
    /// Runs `f` inside the network namespace pinned at `netns` (on a dedicated thread in
    /// production; the calling thread never changes namespace).
    ///
    /// Errors: [`NetNsError`] when the pin cannot be opened or entered.
    fn run_in(&self, netns: &Path, f: &mut (dyn FnMut() + Send)) -> Result<(), NetNsError>;
}

/// Runs `f` in the sandbox at `netns` through `nl` and returns its result.
///
/// Errors: [`NetNsError`] from [`Netlink::run_in`]; `f`'s own error inside the `Ok`.
pub fn in_netns<T: Send>(
    nl: &dyn Netlink,
    netns: &Path,
    f: impl FnOnce() -> T + Send,
) -> Result<T, NetNsError> {
    let mut f = Some(f);
    let mut out = None;
    nl.run_in(netns, &mut || out = f.take().map(|f| f()))?;
    Ok(out.expect("run_in ran the closure"))
}

/// The kernel itself, through `berth-sys`.
#[derive(Debug, Default, Clone, Copy)]
pub struct SysNetlink;

impl Netlink for SysNetlink {
    fn list_links(&self) -> Result<Vec<Link>, LinkError> {
        link::list_links()
    }
    fn link_by_name(&self, name: &str) -> Result<Link, LinkError> {
        link::link_by_name(name)
    }
    fn list_addrs(&self) -> Result<Vec<Addr>, LinkError> {
        link::list_addrs()
    }
    fn list_routes(&self) -> Result<Vec<Route>, RouteError> {
        route::list_routes()
    }
    fn create_bridge(&self, name: &str, mtu: u32) -> Result<(), LinkError> {
        link::create_bridge(name, mtu)
    }
    fn create_veth_into(
        &self,
        name: &str,
        peer: &str,
        mtu: u32,
        netns: &SandboxNs,
    ) -> Result<(), LinkError> {
        link::create_veth_into(name, peer, mtu, netns.file.as_fd())
    }
    fn create_child(&self, c: &ChildSpec<'_>, kind: ChildKind) -> Result<(), LinkError> {
        let child = ChildLink {
            name: c.name,
            parent: c.parent,
            mtu: c.mtu,
            mac: c.mac,
            netns: c.netns.map(|n| n.file.as_fd()),
        };
        match kind {
            ChildKind::Macvlan(m) => link::create_macvlan(&child, m),
            ChildKind::Ipvlan(m, f) => link::create_ipvlan(&child, m, f),
        }
    }
    fn create_dummy(&self, name: &str) -> Result<(), LinkError> {
        link::create_dummy(name)
    }
    fn create_vlan(&self, name: &str, parent: &str, id: u16) -> Result<(), LinkError> {
        link::create_vlan(name, parent, id)
    }
    fn delete_link(&self, name: &str) -> Result<(), LinkError> {
        link::delete_link(name)
    }
    fn set_mac(&self, name: &str, mac: MacAddr) -> Result<(), LinkError> {
        link::set_mac(name, mac)
    }
    fn set_up(&self, name: &str) -> Result<(), LinkError> {
        link::set_up(name)
    }
    fn rename(&self, name: &str, new_name: &str) -> Result<(), LinkError> {
        link::rename(name, new_name)
    }
    fn set_master(&self, name: &str, bridge: &str) -> Result<(), LinkError> {
        link::set_master(name, bridge)
    }
    fn set_hairpin(&self, name: &str, on: bool) -> Result<(), LinkError> {
        link::set_bridge_port_hairpin(name, on)
    }
    fn add_address(&self, name: &str, addr: IpNet) -> Result<(), LinkError> {
        link::add_address(name, addr)
    }
    fn add_route(
        &self,
        dst: IpNet,
        gateway: Option<IpAddr>,
        dev: Option<&str>,
    ) -> Result<(), RouteError> {
        route::add_route(dst, gateway, dev)
    }
    fn set_sysctl(&self, key: &str, value: &str) -> Result<(), SysctlError> {
        sysctl::set(key, value)
    }
    fn run_in(&self, netns: &Path, f: &mut (dyn FnMut() + Send)) -> Result<(), NetNsError> {
        netns::run_in(netns, f)
    }
}
