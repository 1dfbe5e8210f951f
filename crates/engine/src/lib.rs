//! Container lifecycle: create/start/stop/rm, the per-container monitor, logs, exec and
//! restart policies; the OCI bundle (`spec`) and the OCI runtime binary that runs it.
//!
//! One file per verb (`create`, `start`, `stop`, `remove`, `exec`), the monitor process
//! (`monitor`), and the pieces they share (`state`, `paths`, `rootfs`, `init_layer`, `runtime`,
//! `attach`, `logs`, `etc_files`, `reconcile`).

pub mod attach;
pub mod boot;
pub mod bundle;
pub mod config;
pub mod create;
pub mod dns;
pub mod etc_files;
pub mod exec;
pub mod init_layer;
pub mod inspect;
pub mod joined;
pub mod lock;
pub mod logs;
pub mod monitor;
pub mod network;
pub mod paths;
pub mod ports;
pub mod ready;
pub mod reconcile;
pub mod remove;
pub mod rootfs;
pub mod runroot;
pub mod runtime;
pub mod spec;
pub mod start;
pub mod state;
pub mod status;
pub mod stop;
pub mod user;

use std::path::{Path, PathBuf};

use berth_image::ImageStore;
use berth_store::{rusqlite, Store};

pub use config::{ContainerConfig, ContainerName, RestartPolicy};
pub use paths::Paths;
pub use runtime::Runtime;
pub use state::{Container, ContainerState, Status};

/// Errors of the engine. [`EngineError::exit_code`] maps them to Docker's CLI exit codes.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The state database failed.
    #[error(transparent)]
    Store(#[from] berth_store::StoreError),
    /// A query failed.
    #[error("state database: {0}")]
    Sql(#[from] rusqlite::Error),
    /// A stored JSON document could not be read or written.
    #[error("state database: bad JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A mount or unmount failed.
    #[error("mount {path}: {message}")]
    Mount {
        /// The mount point.
        path: PathBuf,
        /// What failed and what to do.
        message: String,
    },
    /// The OCI runtime failed.
    #[error("{message}")]
    Runtime {
        /// The runtime verb (`create`, `start`, ...).
        op: &'static str,
        /// The runtime's explanation, with advice.
        message: String,
    },
    /// The container's command does not exist (exit 127).
    #[error("{0}")]
    CommandNotFound(String),
    /// The container's command exists but cannot be executed (exit 126).
    #[error("{0}")]
    CannotInvoke(String),
    /// No container has this name, id or id prefix.
    #[error("no such container: {0} (see `berth ps -a`)")]
    NoSuchContainer(String),
    /// An id prefix matches several containers.
    #[error("container id prefix {0} is ambiguous: give more characters or the name")]
    AmbiguousContainer(String),
    /// The name is taken.
    #[error("the container name \"/{name}\" is already in use by container {id}: remove that container (berth rm {name}) or choose another --name")]
    NameInUse {
        /// The name.
        name: String,
        /// The container holding it.
        id: String,
    },
    /// Bad creation options.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// The image store failed.
    #[error(transparent)]
    Image(#[from] berth_image::ImageError),
    /// Networking failed.
    #[error(transparent)]
    Net(#[from] berth_net::NetError),
    /// A network operation failed.
    #[error(transparent)]
    Network(Box<berth_net::manager::ManagerError>),
    /// Attaching or detaching a sandbox failed (its namespace, a route, resolv.conf).
    #[error(transparent)]
    Attach(Box<berth_net::attach::AttachError>),
    /// Bad `--network` value.
    #[error(transparent)]
    Mode(#[from] berth_net::ModeError),
    /// A network namespace could not be made or removed.
    #[error(transparent)]
    NetNs(#[from] berth_sys::netns::NetNsError),
    /// The OCI spec could not be built.
    #[error(transparent)]
    Spec(#[from] spec::SpecError),
    /// `-u` could not be resolved.
    #[error(transparent)]
    User(#[from] user::UserError),
    /// The image's root filesystem cannot take the container's mounts safely.
    #[error(transparent)]
    InitLayer(#[from] init_layer::InitLayerError),
    /// The operation needs a running container.
    #[error("container {0} is not running: start it first (berth start {0})")]
    NotRunning(String),
    /// A host-mode container's ports are held by someone else.
    #[error("{0}")]
    PortConflict(String),
    /// Options `create` refuses together.
    #[error(transparent)]
    Create(#[from] create::CreateError),
    /// A network use `create`, `network connect`/`disconnect` or a start refuses.
    #[error(transparent)]
    NetworkUse(#[from] network::NetworkUseError),
    /// A container cannot start.
    #[error(transparent)]
    Start(#[from] start::StartError),
    /// `rm` refused or failed.
    #[error(transparent)]
    Remove(#[from] remove::RemoveError),
    /// `stop`/`kill`/`restart` refused or failed.
    #[error(transparent)]
    Stop(#[from] stop::StopError),
    /// `exec` without a command.
    #[error("exec needs a command")]
    ExecNoCommand,
    /// A broken invariant of berth itself (a bug, not an input): what was expected.
    #[error("internal error: {0}")]
    Internal(&'static str),
    /// The runroot differs from the one the root is used with.
    #[error(transparent)]
    Runroot(#[from] runroot::RunrootError),
    /// The monitor failed or died.
    #[error(transparent)]
    Monitor(#[from] monitor::MonitorError),
    /// The monitor reported that the container could not be created or started (its
    /// message, as the user sees it; the monitor's [`ready::ReadyMessage::Failed`]).
    #[error("{0}")]
    StartFailed(String),
}

impl From<berth_net::attach::AttachError> for EngineError {
    fn from(e: berth_net::attach::AttachError) -> Self {
        use berth_net::attach::AttachError;
        match e {
            AttachError::PortConflict(message) => Self::PortConflict(message),
            AttachError::Manager(e) => e.into(),
            AttachError::Lock(e) => {
                let path = e.path().to_path_buf();
                Self::io(&path, e.into_io())
            }
            AttachError::LockDir { path, source } => Self::io(&path, source),
            e => Self::Attach(Box::new(e)),
        }
    }
}

impl From<berth_net::manager::ManagerError> for EngineError {
    fn from(e: berth_net::manager::ManagerError) -> Self {
        Self::Network(Box::new(e))
    }
}

impl EngineError {
    /// Wraps an io error with the path it concerns.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Docker's CLI exit code for this error: 126 cannot invoke, 127 command not found,
    /// 125 for every other engine error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::CommandNotFound(_) => 127,
            Self::CannotInvoke(_) => 126,
            _ => 125,
        }
    }
}

/// An open berth installation: store, image store, paths and runtime.
#[derive(Debug)]
pub struct Engine {
    /// Where things live.
    pub paths: Paths,
    /// The SQLite state.
    pub store: Store,
    /// The image store.
    pub images: ImageStore,
    /// The OCI runtime.
    pub runtime: Runtime,
    /// The runtime as the user named it (passed on to monitors).
    pub runtime_name: String,
}

impl Engine {
    /// Opens the state under `root`/`runroot` with the OCI runtime `runtime` (name or path).
    ///
    /// Errors: besides the store's, [`runroot::RunrootError::InUse`] when `root` is in use
    /// with another runroot (see [`runroot::claim`]).
    pub fn open(root: &Path, runroot: &Path, runtime: &str) -> Result<Self, EngineError> {
        let locks = runroot.join("locks");
        for d in [root, runroot, locks.as_path()] {
            std::fs::create_dir_all(d).map_err(|e| EngineError::io(d, e))?;
        }
        let mut store = Store::open(root)?;
        runroot::claim(&mut store, runroot)?;
        let images = ImageStore::open(root)?;
        Ok(Self {
            paths: Paths {
                root: root.to_path_buf(),
                runroot: runroot.to_path_buf(),
            },
            store,
            images,
            runtime: Runtime::new(runtime, runroot)?,
            runtime_name: runtime.to_string(),
        })
    }

    /// Looks a container up by name, id or unique id prefix.
    pub fn container(&self, key: &str) -> Result<Container, EngineError> {
        state::lookup(self.store.conn(), key)
    }

    /// The OCI config of image `id` (`sha256:...`).
    pub fn image_config(
        &self,
        id: &str,
    ) -> Result<oci_spec::image::ImageConfiguration, EngineError> {
        let digest = berth_image::Digest::parse(id).map_err(berth_image::ImageError::from)?;
        Ok(self.images.config(&self.store, &digest)?)
    }

    /// Every container.
    pub fn containers(&self) -> Result<Vec<Container>, EngineError> {
        state::list(self.store.conn())
    }
}
