//! berth-sys: thin safe wrappers over the syscalls and netlink families the
//! upper layers need. This is the only berth crate allowed `unsafe`.
//!
//! - [`fd`]: inherited fds, SCM_RIGHTS passing, openat2 in a root, rlimits.
//! - [`netns`]: network namespaces pinned on files, running code inside one.
//! - [`link`]: interfaces and addresses (rtnetlink).
//! - [`route`]: routes of the main table (rtnetlink).
//! - [`sysctl`]: `/proc/sys/net` keys of the calling thread's namespace.
//! - [`sockdiag`]: listening sockets (sock_diag netlink).
//! - [`procfs`]: socket owners from `/proc`.
//! - [`failpoint`]: fault injection for the end-to-end suites (feature `failpoints`).

#![allow(unsafe_code)] // berth-sys is the one crate where unsafe lives (STYLE.md); each block has a SAFETY comment.

pub mod failpoint;
pub mod fd;
pub mod flock;
pub mod link;
mod netlink;
pub mod netns;
pub mod nftables;
pub mod process;
pub mod procfs;
pub mod route;
pub mod sockdiag;
pub mod sysctl;
#[cfg(feature = "test-support")]
pub mod testing;

pub use netlink::NetlinkError;
