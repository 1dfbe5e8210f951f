//! The paths the runtime and berth write or mount onto inside a container's root filesystem,
//! made safe before the runtime starts: Docker's "init layer" (moby
//! `daemon/initlayer/setup_unix.go`) done in the container's own overlay layer.
//!
//! An image controls every name in its rootfs. A layer with `dev -> /tmp/x` (or a parent
//! such as `etc -> /x`) makes a runtime that joins `rootfs + "/dev"` with plain path
//! operations write onto the host (runc 1.1 creates `/dev/ptmx`, `/dev/fd`, ... that way).
//! So every mount target must be a real directory (or, for file bind mounts, a real regular
//! file) at every path component when the runtime starts:
//! - a component that is a symbolic link is replaced by a real directory (or an empty file
//!   for the last component of a file target), in the container's upper layer (an unlink on
//!   overlayfs leaves a whiteout, so the image's layers are untouched) — as Docker's init
//!   layer hides such links;
//! - a missing component is created (`0755` directories, `0644` empty files, owned by root);
//! - anything else of the wrong type (a file where a directory is needed, a directory where
//!   a file is bind-mounted, a device, a fifo) refuses the start with [`InitLayerError`].
//!
//! Every step is relative to a directory descriptor opened with `O_NOFOLLOW`, so no symlink
//! is ever followed, even one swapped in between two steps.
//!
//! The working directory is different: the runtime `chdir`s into it after `pivot_root`,
//! inside the container, so symlinks in it are legitimate (`WORKDIR /app` with
//! `app -> /srv/app`). [`ensure_workdir`] resolves it with `openat2(RESOLVE_IN_ROOT)`
//! (Linux 5.6) and creates missing parts relative to descriptors resolved the same way, so
//! nothing is created outside the rootfs (moby does the same with a scoped path join).

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use oci_spec::runtime::Spec;
use rustix::fs::{
    mkdirat, openat, openat2, statat, unlinkat, AtFlags, FileType, Mode, OFlags, ResolveFlags, CWD,
};
use rustix::io::Errno;

/// Errors of preparing the rootfs.
#[derive(Debug, thiserror::Error)]
pub enum InitLayerError {
    /// A component of a mount target exists with a type the mount cannot use.
    #[error("the image cannot run: {path} in its root filesystem is {found}, but the runtime mounts {target} there and needs a {needed}; rebuild the image without it")]
    WrongType {
        /// The component, as a path inside the container.
        path: String,
        /// The mount target it belongs to.
        target: String,
        /// What it is (`a regular file`, `a directory`, ...).
        found: &'static str,
        /// `directory` or `regular file`.
        needed: &'static str,
    },
    /// A target path has `..` or is not absolute.
    #[error("mount target {0:?} is not a plain absolute path (no `..` allowed)")]
    BadTarget(String),
    /// The working directory exists but is not a directory.
    #[error(
        "working directory {0:?} exists in the image but is not a directory: choose another -w"
    )]
    WorkdirNotDir(String),
    /// The working directory passes through a symbolic link whose target is missing.
    #[error("working directory {0:?} passes through a symbolic link to a missing directory in the image: create its target in the image or choose another -w")]
    WorkdirDangling(String),
    /// A filesystem call failed.
    #[error("preparing {path} in the container's root filesystem: {source}")]
    Io {
        /// The path inside the container.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// What a mount target must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// A directory (kernel filesystems, directory bind mounts).
    Dir,
    /// A regular file (file bind mounts such as `/etc/hosts`).
    File,
}

/// The mount targets of `spec` that lie in the image's rootfs: a destination below an
/// earlier mount's destination (`/dev/pts` under the `/dev` tmpfs, `/sys/fs/cgroup` under
/// sysfs) lands in that fresh mount, not in the image, and is skipped. Bind mounts of a
/// regular file need a file; everything else a directory.
pub fn targets(spec: &Spec) -> Vec<(PathBuf, TargetKind)> {
    let mut out: Vec<(PathBuf, TargetKind)> = Vec::new();
    let mut seen: Vec<PathBuf> = Vec::new();
    for m in spec.mounts().iter().flatten() {
        let dest = m.destination().clone();
        let nested = seen.iter().any(|s| dest != *s && dest.starts_with(s));
        seen.push(dest.clone());
        if nested {
            continue;
        }
        let is_file =
            m.typ().as_deref() == Some("bind") && m.source().as_ref().is_some_and(|s| s.is_file());
        let kind = if is_file {
            TargetKind::File
        } else {
            TargetKind::Dir
        };
        out.push((dest, kind));
    }
    out
}

/// Makes every target a real directory or file inside `rootfs`, as the module doc says.
///
/// # Errors
/// [`InitLayerError::WrongType`] (refused image), [`InitLayerError::BadTarget`],
/// [`InitLayerError::Io`].
pub fn prepare(rootfs: &Path, targets: &[(PathBuf, TargetKind)]) -> Result<(), InitLayerError> {
    let root = open_dir_path(CWD, rootfs).map_err(|e| io_err(&rootfs.display().to_string(), e))?;
    for (target, kind) in targets {
        prepare_one(&root, target, *kind)?;
    }
    Ok(())
}

/// Walks `target` from `root`, one `O_NOFOLLOW` step per component.
fn prepare_one(root: &OwnedFd, target: &Path, kind: TargetKind) -> Result<(), InitLayerError> {
    let parts = plain_components(target)?;
    let shown = target.display().to_string();
    let mut dir = root.try_clone().map_err(|e| io_err(&shown, e))?;
    let mut inside = PathBuf::from("/");
    for (i, name) in parts.iter().enumerate() {
        inside.push(name);
        let want = if i + 1 == parts.len() {
            kind
        } else {
            TargetKind::Dir
        };
        let here = inside.display().to_string();
        ensure_entry(&dir, name, want, &here, &shown)?;
        if want == TargetKind::Dir {
            dir = open_dir_path(&dir, Path::new(name)).map_err(|e| io_err(&here, e))?;
        }
    }
    Ok(())
}

/// Makes `name` in `dir` a real entry of kind `want`: kept if right, replaced if a symlink,
/// created if missing, refused otherwise.
fn ensure_entry(
    dir: &OwnedFd,
    name: &str,
    want: TargetKind,
    here: &str,
    target: &str,
) -> Result<(), InitLayerError> {
    let found = match statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Some(FileType::from_raw_mode(st.st_mode)),
        Err(Errno::NOENT) => None,
        Err(e) => return Err(io_err(here, e.into())),
    };
    match (found, want) {
        (Some(FileType::Directory), TargetKind::Dir)
        | (Some(FileType::RegularFile), TargetKind::File) => return Ok(()),
        (Some(FileType::Symlink), _) => {
            // The image's link is hidden, never followed (an overlayfs whiteout in the upper).
            tracing::warn!(path = here, "replacing a symbolic link in the image's rootfs with a real entry: the runtime mounts {target} there");
            unlinkat(dir, name, AtFlags::empty()).map_err(|e| io_err(here, e.into()))?;
        }
        (Some(other), _) => {
            return Err(InitLayerError::WrongType {
                path: here.to_string(),
                target: target.to_string(),
                found: type_name(other),
                needed: match want {
                    TargetKind::Dir => "directory",
                    TargetKind::File => "regular file",
                },
            })
        }
        (None, _) => {}
    }
    let made = match want {
        TargetKind::Dir => mkdirat(dir, name, Mode::from_raw_mode(0o755)),
        TargetKind::File => openat(
            dir,
            name,
            OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::WRONLY | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )
        .map(drop),
    };
    made.map_err(|e| io_err(here, e.into()))
}

/// Creates the working directory `cwd` inside `rootfs` if missing (owned by `uid:gid`, as
/// Docker does), resolving every component inside the rootfs.
///
/// # Errors
/// [`InitLayerError::WorkdirNotDir`] when it exists as something else,
/// [`InitLayerError::Io`] when a component cannot be created.
pub fn ensure_workdir(rootfs: &Path, cwd: &str, uid: u32, gid: u32) -> Result<(), InitLayerError> {
    let root = open_dir_path(CWD, rootfs).map_err(|e| io_err(&rootfs.display().to_string(), e))?;
    let names: Vec<&str> = Path::new(cwd)
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => n.to_str(),
            Component::ParentDir => Some(".."),
            _ => None,
        })
        .collect();
    let mut parent = root.try_clone().map_err(|e| io_err(cwd, e))?;
    for i in 0..names.len() {
        let prefix = names[..=i].join("/");
        parent = match open_in_root(&root, &prefix) {
            Ok(fd) => fd,
            Err(Errno::NOTDIR) => return Err(InitLayerError::WorkdirNotDir(cwd.to_string())),
            Err(Errno::NOENT) => {
                // `parent` was resolved inside the root, and mkdirat never follows the last
                // component, so the new directory is inside the rootfs.
                match mkdirat(&parent, names[i], Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(io_err(cwd, e.into())),
                }
                let _ = rustix::fs::chownat(
                    &parent,
                    names[i],
                    Some(rustix::fs::Uid::from_raw(uid)),
                    Some(rustix::fs::Gid::from_raw(gid)),
                    AtFlags::SYMLINK_NOFOLLOW,
                );
                open_in_root(&root, &prefix).map_err(|e| match e {
                    // EEXIST above and still missing: a symlink to a missing target.
                    Errno::NOENT => InitLayerError::WorkdirDangling(cwd.to_string()),
                    Errno::NOTDIR | Errno::LOOP => InitLayerError::WorkdirNotDir(cwd.to_string()),
                    e => io_err(cwd, e.into()),
                })?
            }
            Err(e) => return Err(io_err(cwd, e.into())),
        };
    }
    Ok(())
}

/// `openat2(root, path, O_PATH|O_DIRECTORY, RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS)`.
fn open_in_root(root: &OwnedFd, path: &str) -> Result<OwnedFd, Errno> {
    openat2(
        root,
        path,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
}

/// Opens a directory without following a symlink at its last component.
fn open_dir_path<Fd: AsFd>(dir: Fd, path: &Path) -> Result<OwnedFd, std::io::Error> {
    openat(
        dir,
        path,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(Into::into)
}

/// The names of an absolute path without `.`/`..`; `..` is refused.
fn plain_components(target: &Path) -> Result<Vec<&str>, InitLayerError> {
    let bad = || InitLayerError::BadTarget(target.display().to_string());
    if !target.is_absolute() {
        return Err(bad());
    }
    let mut out = Vec::new();
    for c in target.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => out.push(n.to_str().ok_or_else(bad)?),
            _ => return Err(bad()),
        }
    }
    Ok(out)
}

fn type_name(t: FileType) -> &'static str {
    match t {
        FileType::RegularFile => "a regular file",
        FileType::Directory => "a directory",
        FileType::Symlink => "a symbolic link",
        FileType::Fifo => "a fifo",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Unknown => "of an unknown type",
    }
}

fn io_err(path: &str, source: std::io::Error) -> InitLayerError {
    InitLayerError::Io {
        path: path.to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn targets() -> Vec<(PathBuf, TargetKind)> {
        vec![
            ("/dev".into(), TargetKind::Dir),
            ("/proc".into(), TargetKind::Dir),
            ("/etc/hosts".into(), TargetKind::File),
        ]
    }

    #[test]
    fn links_out_of_the_root_are_replaced_not_followed() {
        let host = tempfile::tempdir().unwrap();
        std::fs::write(host.path().join("ptmx"), b"host").unwrap();
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        symlink(host.path(), r.join("dev")).unwrap();
        symlink(host.path(), r.join("etc")).unwrap();
        prepare(r, &targets()).unwrap();
        assert!(r.join("dev").symlink_metadata().unwrap().is_dir());
        assert!(r.join("proc").is_dir());
        assert!(r.join("etc/hosts").symlink_metadata().unwrap().is_file());
        let left: Vec<_> = std::fs::read_dir(host.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "the host directory was written to");
        assert_eq!(std::fs::read(host.path().join("ptmx")).unwrap(), b"host");
    }

    #[test]
    fn wrong_types_are_refused_and_good_entries_kept() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("etc/hosts")).unwrap();
        std::fs::write(r.join("dev"), b"x").unwrap();
        let err = prepare(r, &targets()).unwrap_err().to_string();
        assert!(
            err.contains("/dev") && err.contains("a regular file"),
            "{err}"
        );
        std::fs::remove_file(r.join("dev")).unwrap();
        let err = prepare(r, &targets()).unwrap_err().to_string();
        assert!(
            err.contains("/etc/hosts") && err.contains("a directory"),
            "{err}"
        );
        std::fs::remove_dir(r.join("etc/hosts")).unwrap();
        std::fs::write(r.join("etc/hosts"), b"keep").unwrap();
        prepare(r, &targets()).unwrap();
        assert_eq!(std::fs::read(r.join("etc/hosts")).unwrap(), b"keep");
    }

    #[test]
    fn workdir_is_created_inside_the_root_through_links() {
        let host = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        symlink(host.path(), r.join("app")).unwrap();
        assert!(matches!(
            ensure_workdir(r, "/app/sub", 0, 0),
            Err(InitLayerError::WorkdirDangling(_))
        ));
        // `app -> <host dir>` resolves to <root>/<host dir> inside the root.
        let inside = r.join(host.path().strip_prefix("/").unwrap());
        std::fs::create_dir_all(&inside).unwrap();
        ensure_workdir(r, "/app/sub/dir", 0, 0).unwrap();
        let inner = inside.join("sub/dir");
        assert!(inner.is_dir(), "{}", inner.display());
        assert_eq!(std::fs::read_dir(host.path()).unwrap().count(), 0);
        std::fs::write(r.join("file"), b"x").unwrap();
        assert!(matches!(
            ensure_workdir(r, "/file", 0, 0),
            Err(InitLayerError::WorkdirNotDir(_))
        ));
        assert!(matches!(
            ensure_workdir(r, "/file/x", 0, 0),
            Err(InitLayerError::WorkdirNotDir(_))
        ));
    }
}
