//! Network drivers: the kernel plumbing of one network type each (STYLE.md "Seams and
//! orchestration"), implementing [`crate::driver::Driver`]. Drivers talk to the kernel
//! through the injected [`crate::kernel::Netlink`] handle only and never call IPAM, the
//! firewall or DNS: the network manager orders those around them.
//!
//! - [`bridge`]: Linux bridge + veth pairs (Docker's `bridge` driver).
//! - [`macvlan`]: macvlan and ipvlan children of a parent interface (Docker's `macvlan`,
//!   `ipvlan`).

pub mod bridge;
pub mod macvlan;
