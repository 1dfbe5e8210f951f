//! Network sandboxes: the network namespace a container runs in, chosen by
//! its [`NetworkMode`]. `none` and named networks get a namespace of their own
//! pinned at `<runroot>/netns/<container-id>` with `lo` up (drivers attach
//! interfaces to it later); `host` gets none; `container:X` joins the
//! namespace the engine resolved for X.

use std::path::{Path, PathBuf};

use berth_sys::netns::{NetNs, NetNsError};

use crate::mode::NetworkMode;

/// Errors of sandbox setup and teardown.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The container id cannot be used as a file name.
    #[error("invalid container id {id:?} for a sandbox; use the 64-hex container id")]
    InvalidId {
        /// The rejected id.
        id: String,
    },
    /// `container:X` mode without the target's namespace.
    #[error("network mode {mode} needs the target container's namespace; resolve it (is the target running?) and pass it as the join target")]
    MissingTarget {
        /// The mode as given.
        mode: String,
    },
    /// Creating, opening or removing the namespace failed.
    #[error("sandbox namespace: {0}")]
    NetNs(#[from] NetNsError),
}

/// Which network namespace the OCI runtime should put the container in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetNsSpec {
    /// Share the namespace berth runs in: omit the `network` entry from
    /// `linux.namespaces` in config.json.
    Host,
    /// Join the namespace at this path: a `network` entry with this `path`
    /// (a pin under the run root or `/proc/PID/ns/net`).
    Path(PathBuf),
}

/// What the engine needs to write the OCI spec for a sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxSpec {
    /// The network namespace to use.
    pub netns: NetNsSpec,
}

/// A container's network sandbox.
#[derive(Debug)]
pub struct Sandbox {
    spec: SandboxSpec,
    owned: bool,
}

impl Sandbox {
    /// Path where the sandbox of `container_id` is pinned: `<runroot>/netns/<id>`.
    pub fn netns_path(runroot: &Path, container_id: &str) -> PathBuf {
        runroot.join("netns").join(container_id)
    }

    /// Sets up the sandbox for `mode`. `join` is the namespace of the target
    /// container for `container:X` (ignored otherwise); a `Path` target is
    /// checked to be a live network namespace.
    ///
    /// Errors: [`SandboxError::InvalidId`], [`SandboxError::MissingTarget`],
    /// [`SandboxError::NetNs`] (creation or a dead target).
    pub fn create(
        runroot: &Path,
        container_id: &str,
        mode: &NetworkMode,
        join: Option<NetNsSpec>,
    ) -> Result<Sandbox, SandboxError> {
        validate_id(container_id)?;
        let (netns, owned) = match mode {
            NetworkMode::Host => (NetNsSpec::Host, false),
            NetworkMode::None | NetworkMode::Network(_) => {
                let path = Self::netns_path(runroot, container_id);
                NetNs::create(&path)?;
                (NetNsSpec::Path(path), true)
            }
            NetworkMode::Container(_) => match join {
                Some(NetNsSpec::Path(path)) => {
                    NetNs::open(&path)?;
                    (NetNsSpec::Path(path), false)
                }
                Some(NetNsSpec::Host) => (NetNsSpec::Host, false),
                None => {
                    return Err(SandboxError::MissingTarget {
                        mode: mode.to_string(),
                    })
                }
            },
        };
        berth_sys::failpoint::hit("run::after-sandbox");
        Ok(Sandbox {
            spec: SandboxSpec { netns },
            owned,
        })
    }

    /// The spec to turn into the OCI `linux.namespaces` entry.
    pub fn spec(&self) -> &SandboxSpec {
        &self.spec
    }

    /// True if berth created the namespace (and [`Sandbox::remove`] deletes it).
    pub fn owns_namespace(&self) -> bool {
        self.owned
    }

    /// Removes the namespace berth created for `container_id`, if any.
    /// Idempotent, and harmless for host/container-mode sandboxes (they own
    /// no pin).
    ///
    /// Errors: [`SandboxError::InvalidId`], [`SandboxError::NetNs`] if the
    /// unmount or unlink fails for another reason than "already gone".
    pub fn remove(runroot: &Path, container_id: &str) -> Result<(), SandboxError> {
        validate_id(container_id)?;
        NetNs::remove(&Self::netns_path(runroot, container_id))?;
        Ok(())
    }
}

/// Ids become file names: non-empty, `[A-Za-z0-9_.-]`, no leading dot.
fn validate_id(id: &str) -> Result<(), SandboxError> {
    let ok = !id.is_empty()
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(SandboxError::InvalidId { id: id.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_mode_has_no_namespace() {
        let dir = tempfile::tempdir().unwrap();
        let sb = Sandbox::create(dir.path(), "c1", &NetworkMode::Host, None).unwrap();
        assert_eq!(sb.spec().netns, NetNsSpec::Host);
        assert!(!sb.owns_namespace());
        assert!(!dir.path().join("netns").exists());
    }

    #[test]
    fn container_mode_needs_a_target() {
        let dir = tempfile::tempdir().unwrap();
        let mode = NetworkMode::Container("web".into());
        let err = Sandbox::create(dir.path(), "c1", &mode, None).unwrap_err();
        assert!(matches!(err, SandboxError::MissingTarget { .. }), "{err}");
        // A host-mode target means sharing the host namespace.
        let sb = Sandbox::create(dir.path(), "c1", &mode, Some(NetNsSpec::Host)).unwrap();
        assert_eq!(sb.spec().netns, NetNsSpec::Host);
        // A path that is not a namespace is refused.
        let bogus = dir.path().join("nope");
        let err = Sandbox::create(dir.path(), "c1", &mode, Some(NetNsSpec::Path(bogus)));
        assert!(matches!(err, Err(SandboxError::NetNs(_))));
    }

    #[test]
    fn ids_must_be_file_names() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["", "../x", "a/b", ".hidden"] {
            let err = Sandbox::create(dir.path(), bad, &NetworkMode::None, None).unwrap_err();
            assert!(matches!(err, SandboxError::InvalidId { .. }), "{bad:?}");
            assert!(Sandbox::remove(dir.path(), bad).is_err());
        }
        Sandbox::remove(dir.path(), "never-created").expect("remove is idempotent");
    }
}
