//! Where a container's files live: persistent ones under `--root`, runtime ones (sockets,
//! pid files, netns bind mounts) under `--runroot` (shared/DESIGN.md, "Storage").

use std::path::{Path, PathBuf};

/// File name of the monitor's attach socket in the run dir. Socket paths may exceed
/// `sun_path` under a deep `--runroot`: bind and connect through
/// [`berth_sys::fd::SocketPath`].
pub const ATTACH_SOCKET: &str = "attach.sock";

/// The two roots of one berth installation.
#[derive(Debug, Clone)]
pub struct Paths {
    /// `--root`, e.g. `/var/lib/berth`.
    pub root: PathBuf,
    /// `--runroot`, e.g. `/run/berth`.
    pub runroot: PathBuf,
}

impl Paths {
    /// `<root>/containers/<id>`: the OCI bundle (config.json), overlay dirs, etc files, log.
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.root.join("containers").join(id)
    }
    /// The merged overlay mount, the bundle's `root.path`.
    pub fn rootfs(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("rootfs")
    }
    /// The json-file log (`<id>-json.log`, Docker's name).
    pub fn log_file(&self, id: &str) -> PathBuf {
        self.container_dir(id).join(format!("{id}-json.log"))
    }
    /// `<runroot>/containers/<id>`: sockets and pid file of the running container.
    pub fn run_dir(&self, id: &str) -> PathBuf {
        self.runroot.join("containers").join(id)
    }
    /// The monitor's attach socket.
    pub fn attach_socket(&self, id: &str) -> PathBuf {
        self.run_dir(id).join(ATTACH_SOCKET)
    }
    /// The console socket the runtime sends the pty master to.
    pub fn console_socket(&self, id: &str) -> PathBuf {
        self.run_dir(id).join("console.sock")
    }
    /// The runtime writes the init pid here.
    pub fn pid_file(&self, id: &str) -> PathBuf {
        self.run_dir(id).join("init.pid")
    }
    /// The monitor lock (see `lock`), `<runroot>/locks/<id>`.
    pub fn monitor_lock(&self, id: &str) -> PathBuf {
        self.runroot.join("locks").join(id)
    }
    /// The network sandbox bind mount, `<runroot>/netns/<id>`.
    pub fn sandbox_key(&self, id: &str) -> PathBuf {
        berth_net::Sandbox::netns_path(&self.runroot, id)
    }
    /// Whether `p` is inside one of the roots (for leak checks).
    pub fn owns(&self, p: &Path) -> bool {
        p.starts_with(&self.root) || p.starts_with(&self.runroot)
    }
}
