//! Network sysctls (`/proc/sys/net/...`) of the calling thread's network
//! namespace.
//!
//! Why per thread: the `net` subtree of `/proc/sys` is resolved against the
//! network namespace of the task that *opens* the file (`net/sysctl_net.c`
//! looks at `current->nsproxy->net_ns`), so a thread that entered a namespace
//! with `setns` (`netns::run_in`) reads and writes that namespace's values.
//! Keys are given in path form under `/proc/sys`, e.g. `net/ipv4/ip_forward`
//! or `net/ipv4/conf/br-x/route_localnet` (interface names may contain `.`,
//! which the dotted `net.ipv4...` form cannot express).
//!
//! Source: Documentation/networking/ip-sysctl.rst, proc(5).

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

/// Errors of sysctl access.
#[derive(Debug, thiserror::Error)]
pub enum SysctlError {
    /// The key is not a relative path under `net/` without `..`.
    #[error("invalid sysctl key {key:?}: use a path under /proc/sys/net like net/ipv4/ip_forward")]
    BadKey {
        /// The key given.
        key: String,
    },
    /// Reading or writing the file failed.
    #[error("cannot {op} sysctl {path}: {source}; check that the key exists in this kernel (and the interface in this namespace) and that berth runs as root")]
    Io {
        /// `read` or `write`.
        op: &'static str,
        /// The full path under `/proc/sys`.
        path: PathBuf,
        /// The underlying error (`ENOENT` for an unknown key or interface).
        source: io::Error,
    },
}

impl SysctlError {
    /// The errno behind this error, if any.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Self::BadKey { .. } => Some(libc::EINVAL),
            Self::Io { source, .. } => source.raw_os_error(),
        }
    }
}

/// `/proc/sys/<key>` after checking that `key` stays inside `/proc/sys/net`.
fn path_of(key: &str) -> Result<PathBuf, SysctlError> {
    let rel = Path::new(key);
    let normal = rel.components().all(|c| matches!(c, Component::Normal(_)));
    if !normal || !rel.starts_with("net") || rel.components().count() < 2 {
        return Err(SysctlError::BadKey {
            key: key.to_string(),
        });
    }
    Ok(Path::new("/proc/sys").join(rel))
}

/// Reads sysctl `key` (e.g. `net/ipv4/ip_forward`) of the calling thread's
/// network namespace, without the trailing newline.
///
/// Errors: [`SysctlError::BadKey`], [`SysctlError::Io`].
pub fn get(key: &str) -> Result<String, SysctlError> {
    let path = path_of(key)?;
    match fs::read_to_string(&path) {
        Ok(v) => Ok(v.trim_end_matches('\n').to_string()),
        Err(source) => Err(SysctlError::Io {
            op: "read",
            path,
            source,
        }),
    }
}

/// Writes `value` to sysctl `key` of the calling thread's network namespace
/// (`sysctl -w`); skipped when the value is already `value`, so read-only
/// `/proc/sys` mounts do not fail a no-op.
///
/// Errors: [`SysctlError::BadKey`], [`SysctlError::Io`].
pub fn set(key: &str, value: &str) -> Result<(), SysctlError> {
    let path = path_of(key)?;
    if get(key).is_ok_and(|v| v == value) {
        return Ok(());
    }
    fs::write(&path, value).map_err(|source| SysctlError::Io {
        op: "write",
        path,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_outside_net_are_refused() {
        for bad in [
            "",
            "net",
            "kernel/hostname",
            "net/../kernel/hostname",
            "/proc/sys/net/ipv4/ip_forward",
            "./net/ipv4/ip_forward",
        ] {
            assert!(
                matches!(path_of(bad), Err(SysctlError::BadKey { .. })),
                "{bad:?} should be refused"
            );
        }
        assert_eq!(
            path_of("net/ipv4/conf/br-a.b/route_localnet").unwrap(),
            Path::new("/proc/sys/net/ipv4/conf/br-a.b/route_localnet")
        );
    }

    #[test]
    fn reads_a_net_key() {
        let v = get("net/ipv4/ip_forward").expect("read ip_forward");
        assert!(v == "0" || v == "1", "{v:?}");
        let err = get("net/ipv4/conf/no-such-if0/forwarding").unwrap_err();
        assert_eq!(err.errno(), Some(libc::ENOENT), "{err}");
    }
}
