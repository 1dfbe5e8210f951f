//! Network namespaces pinned by a bind mount on a file (the scheme of
//! `ip netns add`), and running code inside one on a dedicated thread.
//!
//! Why a thread: `unshare(CLONE_NEWNET)` and `setns` change only the calling
//! thread's namespace, and a thread that already ran arbitrary code may be
//! reused by others (thread pools, the main thread). So every namespace switch
//! happens on a fresh thread that ends when the work is done; the caller's
//! thread never changes namespace.
//!
//! Sources: network_namespaces(7), setns(2), mount(2), `ip-netns(8)`.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::statfs::fstatfs;

use crate::link::{self, LinkError};

/// `NSFS_MAGIC` from `include/uapi/linux/magic.h`: the filesystem type of
/// namespace files (`/proc/*/ns/*` and their bind mounts).
const NSFS_MAGIC: i64 = 0x6e73_6673;

/// Errors of network namespace handling.
#[derive(Debug, thiserror::Error)]
pub enum NetNsError {
    /// Creating the pin file or its parent directory failed.
    #[error("cannot create netns file {path}: {source}; remove a stale file with NetNs::remove")]
    CreateFile {
        /// The pin path.
        path: PathBuf,
        /// The underlying I/O error (`EEXIST` if the file is already there).
        source: io::Error,
    },
    /// A namespace syscall failed.
    #[error("{op} for netns {path} failed: {errno}; berth needs root (CAP_SYS_ADMIN) for this")]
    Syscall {
        /// The syscall (`unshare`, `setns`, `mount --bind`, `umount`, `fstatfs`).
        op: &'static str,
        /// The pin path involved.
        path: PathBuf,
        /// The errno.
        errno: Errno,
    },
    /// Opening the pin file failed.
    #[error("cannot open netns {path}: {source}; does the sandbox still exist?")]
    Open {
        /// The pin path.
        path: PathBuf,
        /// The underlying I/O error.
        source: io::Error,
    },
    /// The file exists but is not a namespace file (no bind mount on it).
    #[error("{path} is not a network namespace (no nsfs mount on it); remove it with NetNs::remove and recreate the sandbox")]
    NotNamespace {
        /// The path that was opened.
        path: PathBuf,
    },
    /// Bringing `lo` up inside the new namespace failed.
    #[error("cannot bring lo up in netns {path}: {source}")]
    Loopback {
        /// The pin path.
        path: PathBuf,
        /// The link error.
        #[source]
        source: LinkError,
    },
    /// Unlinking the pin file failed.
    #[error("cannot remove netns file {path}: {source}")]
    Unlink {
        /// The pin path.
        path: PathBuf,
        /// The underlying I/O error.
        source: io::Error,
    },
    /// The dedicated namespace thread could not be spawned.
    #[error("cannot spawn a thread to enter netns {path}: {source}")]
    Thread {
        /// The pin path.
        path: PathBuf,
        /// The underlying I/O error.
        source: io::Error,
    },
}

/// An open handle on a network namespace pinned at a path.
#[derive(Debug)]
pub struct NetNs {
    path: PathBuf,
    file: File,
}

impl NetNs {
    /// Creates a new network namespace pinned by a bind mount at `path`
    /// (parent directories are created; `path` must not exist yet), with `lo`
    /// brought up inside. On failure nothing is left behind.
    ///
    /// Errors: [`NetNsError::CreateFile`] (`EEXIST` if `path` exists),
    /// [`NetNsError::Syscall`] for unshare/mount, [`NetNsError::Loopback`].
    pub fn create(path: &Path) -> Result<NetNs, NetNsError> {
        let create_err = |source| NetNsError::CreateFile {
            path: path.to_path_buf(),
            source,
        };
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(create_err)?;
        }
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(create_err)?;
        let pinned = spawn_scoped(path, || pin_new_netns(path)).and_then(|r| r);
        match pinned.and_then(|()| NetNs::open(path)) {
            Ok(ns) => Ok(ns),
            Err(e) => {
                // Rollback: best effort, the original error is what matters.
                let _ = NetNs::remove(path);
                Err(e)
            }
        }
    }

    /// Opens the namespace pinned at `path`.
    ///
    /// Errors: [`NetNsError::Open`] if missing, [`NetNsError::NotNamespace`]
    /// if the file is not an nsfs mount (e.g. a stale pin file).
    pub fn open(path: &Path) -> Result<NetNs, NetNsError> {
        let file = File::open(path).map_err(|source| NetNsError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        let st = fstatfs(file.as_fd()).map_err(|errno| NetNsError::Syscall {
            op: "fstatfs",
            path: path.to_path_buf(),
            errno,
        })?;
        // Why: a plain file left after a crash opens fine but setns on it
        // would fail with EINVAL far from here; say it clearly instead.
        #[allow(clippy::useless_conversion)]
        if i64::from(st.filesystem_type().0) != NSFS_MAGIC {
            return Err(NetNsError::NotNamespace {
                path: path.to_path_buf(),
            });
        }
        Ok(NetNs {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Unmounts (lazily, `MNT_DETACH`) and unlinks the pin at `path`.
    /// Idempotent: a missing file or one that is not mounted is fine.
    ///
    /// Errors: [`NetNsError::Syscall`] for umount errors other than
    /// `EINVAL`/`ENOENT`, [`NetNsError::Unlink`] for unlink errors other than `ENOENT`.
    pub fn remove(path: &Path) -> Result<(), NetNsError> {
        match umount2(path, MntFlags::MNT_DETACH) {
            Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => {}
            Err(errno) => {
                return Err(NetNsError::Syscall {
                    op: "umount",
                    path: path.to_path_buf(),
                    errno,
                })
            }
        }
        match fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(NetNsError::Unlink {
                path: path.to_path_buf(),
                source: e,
            }),
            _ => Ok(()),
        }
    }

    /// The pin path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on a fresh thread that has joined this namespace and returns
    /// its result; panics in `f` are resumed on the caller.
    ///
    /// Errors: [`NetNsError::Thread`], [`NetNsError::Syscall`] (`setns`).
    pub fn run<F, T>(&self, f: F) -> Result<T, NetNsError>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        spawn_scoped(&self.path, || {
            setns(self.file.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|errno| {
                NetNsError::Syscall {
                    op: "setns",
                    path: self.path.clone(),
                    errno,
                }
            })?;
            Ok(f())
        })
        .and_then(|r| r)
    }
}

/// Runs `f` inside the network namespace pinned at `path`, on a dedicated
/// thread (the calling thread never changes namespace).
///
/// Errors: those of [`NetNs::open`] and [`NetNs::run`].
pub fn run_in<F, T>(path: &Path, f: F) -> Result<T, NetNsError>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    NetNs::open(path)?.run(f)
}

/// Body of the creation thread: new netns, bind mount it on `path`, lo up.
fn pin_new_netns(path: &Path) -> Result<(), NetNsError> {
    let sys_err = |op| {
        move |errno| NetNsError::Syscall {
            op,
            path: path.to_path_buf(),
            errno,
        }
    };
    unshare(CloneFlags::CLONE_NEWNET).map_err(sys_err("unshare"))?;
    // thread-self, not self: only this thread is in the new namespace.
    mount(
        Some("/proc/thread-self/ns/net"),
        path,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(sys_err("mount --bind"))?;
    link::set_up("lo").map_err(|source| NetNsError::Loopback {
        path: path.to_path_buf(),
        source,
    })
}

/// Runs `f` on a scoped thread, mapping spawn failure and resuming panics.
fn spawn_scoped<F, T>(path: &Path, f: F) -> Result<T, NetNsError>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    std::thread::scope(|s| {
        let handle = std::thread::Builder::new()
            .name("berth-netns".into())
            .spawn_scoped(s, f)
            .map_err(|source| NetNsError::Thread {
                path: path.to_path_buf(),
                source,
            })?;
        match handle.join() {
            Ok(v) => Ok(v),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}
