//! The network driver interface (DESIGN.md, "Network model"): one implementation per network
//! type (bridge, macvlan/ipvlan, overlay next) plugs in here, and [`AnyDriver`] is the one
//! dispatch the network manager calls for create, delete, join and leave (as youki's
//! `AnyCgroupManager`). Adding a driver is a new file under [`crate::drivers`], a new
//! [`crate::netstate::DriverState`] variant and a new arm here. `host`, `none` and
//! `container:` are sandbox modes, not drivers.
//!
//! Drivers do kernel plumbing through the injected [`Netlink`] handle only; IPAM, firewall
//! and DNS are ordered around them by the network manager, which also owns rollback.

use std::path::Path;

use crate::drivers::bridge::{BridgeDriver, BridgeError};
use crate::drivers::macvlan::{MacvlanDriver, MacvlanError};
use crate::kernel::Netlink;
use crate::model::{EndpointState, NetworkState};
use crate::netstate::DriverState;

/// A network driver: creates/deletes the kernel objects of a network and joins/leaves a
/// sandbox to/from it.
///
/// Contract: every method is idempotent (re-running after a crash converges), and a failing
/// `join` undoes what it did before returning.
pub trait Driver {
    /// The driver's error type (keeps errnos).
    type Error: std::error::Error + Send + Sync + 'static;

    /// Creates the network's kernel objects (e.g. the bridge device).
    ///
    /// Errors: `Self::Error` when the kernel refuses.
    fn create_network(&self, network: &NetworkState) -> Result<(), Self::Error>;

    /// Deletes them; absent objects are not an error. `others` are the other recorded
    /// networks (a parent link shared with one of them stays).
    ///
    /// Errors: `Self::Error` when the kernel refuses.
    fn delete_network(
        &self,
        network: &NetworkState,
        others: &[NetworkState],
    ) -> Result<(), Self::Error>;

    /// Attaches the sandbox whose namespace is pinned at `netns` to the network as
    /// `endpoint` (interface, addresses, routes inside); with `default_route` the sandbox's
    /// default routes go via this network's gateways (the manager passes false for internal
    /// networks and for every network but the one that provides the default route).
    ///
    /// Errors: `Self::Error`; nothing is left half-attached.
    fn join(
        &self,
        network: &NetworkState,
        endpoint: &EndpointState,
        netns: &Path,
        default_route: bool,
    ) -> Result<(), Self::Error>;

    /// Detaches `endpoint` from the sandbox at `netns`; absent objects are not an error.
    ///
    /// Errors: `Self::Error` when the kernel refuses.
    fn leave(
        &self,
        network: &NetworkState,
        endpoint: &EndpointState,
        netns: &Path,
    ) -> Result<(), Self::Error>;
}

/// The error of any driver.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The bridge driver's.
    #[error(transparent)]
    Bridge(#[from] BridgeError),
    /// The macvlan/ipvlan driver's.
    #[error(transparent)]
    Macvlan(#[from] MacvlanError),
}

impl DriverError {
    /// The errno behind this error, if any.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Self::Bridge(e) => e.errno(),
            Self::Macvlan(e) => e.errno(),
        }
    }
}

/// The driver of one network, chosen by its [`DriverState`].
#[derive(Clone, Copy)]
pub enum AnyDriver<'a> {
    /// Linux bridge + veth pairs.
    Bridge(BridgeDriver<'a>),
    /// macvlan and ipvlan children of a parent link.
    Macvlan(MacvlanDriver<'a>),
}

impl<'a> AnyDriver<'a> {
    /// The driver of `network`, doing its kernel work through `nl`.
    pub fn of(network: &NetworkState, nl: &'a dyn Netlink) -> Self {
        match network.kind {
            DriverState::Bridge(_) => Self::Bridge(BridgeDriver::new(nl)),
            DriverState::Macvlan { .. } | DriverState::Ipvlan { .. } => {
                Self::Macvlan(MacvlanDriver::new(nl))
            }
        }
    }
}

impl Driver for AnyDriver<'_> {
    type Error = DriverError;

    fn create_network(&self, network: &NetworkState) -> Result<(), DriverError> {
        match self {
            Self::Bridge(d) => Ok(d.create_network(network)?),
            Self::Macvlan(d) => Ok(d.create_network(network)?),
        }
    }

    fn delete_network(
        &self,
        network: &NetworkState,
        others: &[NetworkState],
    ) -> Result<(), DriverError> {
        match self {
            Self::Bridge(d) => Ok(Driver::delete_network(d, network, others)?),
            Self::Macvlan(d) => Ok(Driver::delete_network(d, network, others)?),
        }
    }

    fn join(
        &self,
        network: &NetworkState,
        endpoint: &EndpointState,
        netns: &Path,
        default_route: bool,
    ) -> Result<(), DriverError> {
        match self {
            Self::Bridge(d) => Ok(d.join(network, endpoint, netns, default_route)?),
            Self::Macvlan(d) => Ok(d.join(network, endpoint, netns, default_route)?),
        }
    }

    fn leave(
        &self,
        network: &NetworkState,
        endpoint: &EndpointState,
        netns: &Path,
    ) -> Result<(), DriverError> {
        match self {
            Self::Bridge(d) => Ok(d.leave(network, endpoint, netns)?),
            Self::Macvlan(d) => Ok(d.leave(network, endpoint, netns)?),
        }
    }
}
