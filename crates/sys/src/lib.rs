//! berth-sys: thin safe wrappers over the syscalls and netlink families the
//! upper layers need. This is the only berth crate allowed `unsafe`.
//!
//! - [`netns`]: network namespaces pinned on files, running code inside one.
//! - [`link`]: interfaces and addresses (rtnetlink).
//! - [`sockdiag`]: listening sockets (sock_diag netlink).
//! - [`procfs`]: socket owners from `/proc`.

pub mod link;
mod netlink;
pub mod netns;
pub mod procfs;
pub mod sockdiag;
#[cfg(feature = "test-support")]
pub mod testing;

pub use netlink::NetlinkError;
