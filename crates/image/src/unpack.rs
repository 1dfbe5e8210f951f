//! Applying one layer tar to a directory, converting whiteouts for overlayfs.
//!
//! The tar is untrusted. Every entry path is cleaned lexically (refusing absolute paths and
//! `..` that climbs above the root), and every directory on the way is opened relative to
//! its parent with `O_NOFOLLOW | O_DIRECTORY`, so a symlink planted by an earlier entry is
//! never followed: an entry that would go through one is refused. Leaves are created with
//! `*at` calls that do not follow symlinks either (`O_EXCL | O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`).
//!
//! Whiteouts (OCI image spec, `layer.md`, "Whiteouts") become what overlayfs expects
//! (kernel `Documentation/filesystems/overlayfs.rst`): `.wh.NAME` a 0/0 character device
//! `NAME`, and `.wh..wh..opq` the `trusted.overlay.opaque=y` xattr on its directory.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{
    self as rfs, AtFlags, FileType, Gid, Mode, OFlags, Timespec, Timestamps, Uid, XattrFlags,
};
use rustix::io::Errno;
use tar::EntryType;

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
const PAX_XATTR_PREFIX: &str = "SCHILY.xattr.";

/// Errors of layer unpacking. Each names the offending tar entry.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// The tar stream itself could not be read.
    #[error("cannot read the layer tar: {source}; the archive is truncated or not a tar")]
    Read {
        /// The I/O error.
        source: io::Error,
    },
    /// An entry's path is absolute.
    #[error(
        "layer entry {entry:?} has an absolute path; refusing the layer (malformed or malicious)"
    )]
    Absolute {
        /// The entry path.
        entry: String,
    },
    /// An entry's path climbs above the layer root with `..`.
    #[error(
        "layer entry {entry:?} escapes the layer root with '..'; refusing the layer (malicious)"
    )]
    Escape {
        /// The entry path.
        entry: String,
    },
    /// An entry would be created through a symlink.
    #[error("layer entry {entry:?} goes through symlink {component:?}; refusing the layer (symlinks are never followed while unpacking)")]
    SymlinkInPath {
        /// The entry path.
        entry: String,
        /// The path component that is a symlink.
        component: String,
    },
    /// A hardlink whose target is outside the layer (absolute, `..`, or through a symlink).
    #[error("layer entry {entry:?} is a hardlink to {target:?} outside the layer; refusing the layer (malicious)")]
    HardlinkEscape {
        /// The entry path.
        entry: String,
        /// The link target.
        target: String,
    },
    /// A block or character device (other than a 0/0 whiteout device).
    #[error("layer entry {entry:?} is a {kind} device node; refusing the layer (images may not ship device nodes)")]
    Device {
        /// The entry path.
        entry: String,
        /// `block` or `char`.
        kind: &'static str,
    },
    /// A whiteout naming nothing usable (`.wh.`, `.wh..`).
    #[error("layer entry {entry:?} is an invalid whiteout; refusing the layer")]
    BadWhiteout {
        /// The entry path.
        entry: String,
    },
    /// A filesystem operation failed.
    #[error("cannot {op} for layer entry {entry:?}: {source}")]
    Io {
        /// The entry path.
        entry: String,
        /// What was being done, e.g. `create file`.
        op: &'static str,
        /// The OS error.
        source: io::Error,
    },
}

/// What unpacking a layer produced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UnpackStats {
    /// Bytes of regular-file content written (what Docker reports as layer size).
    pub size: u64,
    /// Number of tar entries applied.
    pub entries: u64,
}

/// Applies the (already decompressed) layer tar `reader` onto the existing directory
/// `dest`, which should be empty. Modes (including setuid/setgid/sticky), uid/gid, mtimes
/// and `SCHILY.xattr.*` PAX xattrs are preserved (xattrs the filesystem refuses are
/// skipped).
///
/// Errors: see [`UnpackError`]; on error `dest` holds a partial tree the caller must remove.
pub fn unpack_layer(reader: impl Read, dest: &Path) -> Result<UnpackStats, UnpackError> {
    let root = rfs::open(
        dest,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io_err(&dest.display().to_string(), "open the layer directory", e))?;
    let mut unpacker = Unpacker {
        root,
        last_parent: None,
        dir_times: Vec::new(),
        stats: UnpackStats::default(),
    };
    let mut archive = tar::Archive::new(reader);
    let entries = archive
        .entries()
        .map_err(|source| UnpackError::Read { source })?;
    for entry in entries {
        let entry = entry.map_err(|source| UnpackError::Read { source })?;
        unpacker.apply(entry)?;
        unpacker.stats.entries += 1;
    }
    unpacker.finish_dir_times()?;
    Ok(unpacker.stats)
}

/// A cleaned entry path: components below the root, none of them `.`, `..` or empty.
#[derive(Clone)]
struct EntryPath {
    display: String,
    parent: Vec<OsString>,
    name: Option<OsString>,
}

/// Cleans `raw` lexically. `..` may only cancel an earlier component. An absolute path is
/// refused, except `/` alone: umoci writes the layer root itself as `/`.
fn clean(raw: &Path) -> Result<Vec<OsString>, CleanError> {
    if raw
        .components()
        .all(|c| matches!(c, Component::RootDir | Component::CurDir))
    {
        return Ok(Vec::new());
    }
    let mut out: Vec<OsString> = Vec::new();
    for comp in raw.components() {
        match comp {
            Component::RootDir | Component::Prefix(_) => return Err(CleanError::Absolute),
            Component::CurDir => {}
            Component::ParentDir => {
                if out.pop().is_none() {
                    return Err(CleanError::Escape);
                }
            }
            Component::Normal(c) => out.push(c.to_os_string()),
        }
    }
    Ok(out)
}

enum CleanError {
    Absolute,
    Escape,
}

impl EntryPath {
    fn new(raw: &Path) -> Result<Self, UnpackError> {
        let display = raw.display().to_string();
        let mut comps = clean(raw).map_err(|e| match e {
            CleanError::Absolute => UnpackError::Absolute {
                entry: display.clone(),
            },
            CleanError::Escape => UnpackError::Escape {
                entry: display.clone(),
            },
        })?;
        let name = comps.pop();
        Ok(Self {
            display,
            parent: comps,
            name,
        })
    }
}

struct Unpacker {
    root: OwnedFd,
    /// The parent directory of the previous entry, by its components. Tar entries come
    /// grouped by directory, so most entries reuse it instead of walking from the root (one
    /// `openat` per component). It cannot go stale: an entry only changes names inside its
    /// own parent, never a component of the parent's own path.
    last_parent: Option<(Vec<OsString>, OwnedFd)>,
    /// Directory mtimes, applied last: creating children changes a directory's mtime.
    dir_times: Vec<(EntryPath, u64)>,
    stats: UnpackStats,
}

impl Unpacker {
    fn apply<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<(), UnpackError> {
        let raw = entry
            .path()
            .map_err(|source| UnpackError::Read { source })?;
        let path = EntryPath::new(&raw)?;
        let kind = entry.header().entry_type();
        let xattrs = pax_xattrs(&mut entry).map_err(|source| UnpackError::Read { source })?;
        let Some(name) = path.name.clone() else {
            // The root itself ("./"): take its metadata, create nothing.
            if kind == EntryType::Directory {
                let root = self
                    .root
                    .try_clone()
                    .map_err(|e| io_err(&path.display, "dup", e))?;
                apply_meta(&root, entry.header(), &xattrs, &path.display)?;
                self.push_dir_time(path, entry.header());
            }
            return Ok(());
        };
        let parent = self.take_parent(&path.parent, &path.display)?;
        let result = self.apply_in(&parent, &name, &path, kind, entry, &xattrs);
        self.last_parent = Some((path.parent, parent));
        result
    }

    /// The entry `name` of `path` inside its (open) parent directory.
    fn apply_in<R: Read>(
        &mut self,
        parent: &OwnedFd,
        name: &OsStr,
        path: &EntryPath,
        kind: EntryType,
        mut entry: tar::Entry<'_, R>,
        xattrs: &[(String, Vec<u8>)],
    ) -> Result<(), UnpackError> {
        let name_str = name.to_string_lossy();
        if name_str == OPAQUE_MARKER {
            return set_xattr(parent, OPAQUE_XATTR, b"y", &path.display);
        }
        if let Some(hidden) = name_str.strip_prefix(WHITEOUT_PREFIX) {
            return make_whiteout(parent, hidden, &path.display);
        }
        match kind {
            EntryType::Directory => {
                self.make_dir(parent, name, &entry, xattrs, &path.display)?;
                self.push_dir_time(path.clone(), entry.header());
                Ok(())
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.make_file(parent, name, &mut entry, xattrs, &path.display)
            }
            EntryType::Symlink => make_symlink(parent, name, &entry, &path.display),
            EntryType::Link => self.make_hardlink(parent, name, &entry, &path.display),
            EntryType::Fifo => make_fifo(parent, name, entry.header(), &path.display),
            EntryType::Char | EntryType::Block => make_device(parent, name, &entry, &path.display),
            other => {
                tracing::debug!(entry = %path.display, kind = ?other, "skipping tar entry of unsupported kind");
                Ok(())
            }
        }
    }

    /// The parent directory `comps`: the previous entry's if it is the same, else opened
    /// (and created) from the root.
    fn take_parent(&mut self, comps: &[OsString], entry: &str) -> Result<OwnedFd, UnpackError> {
        match self.last_parent.take() {
            Some((cached, fd)) if cached == comps => Ok(fd),
            _ => self.open_dir(comps, true, entry),
        }
    }

    fn push_dir_time(&mut self, path: EntryPath, header: &tar::Header) {
        self.dir_times.push((path, header.mtime().unwrap_or(0)));
    }

    /// Opens the directory `comps` below the root, component by component, never following
    /// a symlink; missing directories are created (0755, root-owned) when `create`.
    fn open_dir(
        &self,
        comps: &[OsString],
        create: bool,
        entry: &str,
    ) -> Result<OwnedFd, UnpackError> {
        let mut cur = self.root.try_clone().map_err(|e| io_err(entry, "dup", e))?;
        for comp in comps {
            cur = open_child_dir(&cur, comp, create, entry)?;
        }
        Ok(cur)
    }

    fn make_dir<R: Read>(
        &self,
        parent: &OwnedFd,
        name: &OsStr,
        entry: &tar::Entry<'_, R>,
        xattrs: &[(String, Vec<u8>)],
        display: &str,
    ) -> Result<(), UnpackError> {
        match rfs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {}
            Ok(_) => {
                remove_existing(parent, name, display)?;
                mkdir(parent, name, display)?;
            }
            Err(Errno::NOENT) => mkdir(parent, name, display)?,
            Err(e) => return Err(io_err(display, "inspect", e)),
        }
        let dir = open_child_dir(parent, name, false, display)?;
        apply_meta(&dir, entry.header(), xattrs, display)
    }

    fn make_file<R: Read>(
        &mut self,
        parent: &OwnedFd,
        name: &OsStr,
        entry: &mut tar::Entry<'_, R>,
        xattrs: &[(String, Vec<u8>)],
        display: &str,
    ) -> Result<(), UnpackError> {
        let create = || {
            rfs::openat(
                parent,
                name,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )
        };
        // Create first; only a name that exists (a later entry replacing an earlier one)
        // costs the removal.
        let fd = match create() {
            Err(Errno::EXIST) => {
                remove_existing(parent, name, display)?;
                create()
            }
            other => other,
        }
        .map_err(|e| io_err(display, "create file", e))?;
        let mut file = File::from(fd);
        let written = io::copy(entry, &mut file).map_err(|source| UnpackError::Read { source })?;
        self.stats.size += written;
        apply_meta(&file, entry.header(), xattrs, display)?;
        set_times_fd(&file, entry.header(), display)
    }

    fn make_hardlink<R: Read>(
        &self,
        parent: &OwnedFd,
        name: &OsStr,
        entry: &tar::Entry<'_, R>,
        display: &str,
    ) -> Result<(), UnpackError> {
        let target = link_name(entry, display)?;
        let target_display = target.display().to_string();
        let escape = || UnpackError::HardlinkEscape {
            entry: display.to_string(),
            target: target_display.clone(),
        };
        let mut comps = clean(&target).map_err(|_| escape())?;
        let target_name = comps.pop().ok_or_else(escape)?;
        let target_dir = self.open_dir(&comps, false, display).map_err(|e| match e {
            UnpackError::SymlinkInPath { .. } => escape(),
            other => other,
        })?;
        remove_existing(parent, name, display)?;
        rfs::linkat(&target_dir, &target_name, parent, name, AtFlags::empty())
            .map_err(|e| io_err(display, "create hardlink", e))
    }

    fn finish_dir_times(&self) -> Result<(), UnpackError> {
        for (path, mtime) in &self.dir_times {
            let mut comps = path.parent.clone();
            comps.extend(path.name.clone());
            let dir = self.open_dir(&comps, false, &path.display)?;
            futimens(&dir, *mtime, &path.display)?;
        }
        Ok(())
    }
}

fn open_child_dir(
    parent: &OwnedFd,
    name: &OsStr,
    create: bool,
    entry: &str,
) -> Result<OwnedFd, UnpackError> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    match rfs::openat(parent, name, flags, Mode::empty()) {
        Ok(fd) => Ok(fd),
        Err(Errno::NOENT) if create => {
            mkdir(parent, name, entry)?;
            rfs::openat(parent, name, flags, Mode::empty())
                .map_err(|e| io_err(entry, "open directory", e))
        }
        Err(e @ (Errno::LOOP | Errno::NOTDIR)) => {
            let is_link = rfs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)
                .map(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink)
                .unwrap_or(false);
            if is_link {
                Err(UnpackError::SymlinkInPath {
                    entry: entry.to_string(),
                    component: name.to_string_lossy().into_owned(),
                })
            } else {
                Err(io_err(entry, "open parent directory", e))
            }
        }
        Err(e) => Err(io_err(entry, "open parent directory", e)),
    }
}

fn mkdir(parent: &OwnedFd, name: &OsStr, entry: &str) -> Result<(), UnpackError> {
    match rfs::mkdirat(parent, name, Mode::from_raw_mode(0o755)) {
        Ok(()) | Err(Errno::EXIST) => Ok(()),
        Err(e) => Err(io_err(entry, "create directory", e)),
    }
}

/// Removes whatever `name` is (a later entry replaces an earlier one), recursing into
/// directories without following symlinks.
fn remove_existing(parent: &OwnedFd, name: &OsStr, entry: &str) -> Result<(), UnpackError> {
    let st = match rfs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(io_err(entry, "inspect", e)),
    };
    if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
        let dir = open_child_dir(parent, name, false, entry)?;
        let children: Vec<OsString> = rfs::Dir::read_from(&dir)
            .map_err(|e| io_err(entry, "list directory", e))?
            .filter_map(Result::ok)
            .map(|d| OsStr::from_bytes(d.file_name().to_bytes()).to_os_string())
            .filter(|n| n != "." && n != "..")
            .collect();
        for child in children {
            remove_existing(&dir, &child, entry)?;
        }
        rfs::unlinkat(parent, name, AtFlags::REMOVEDIR)
            .map_err(|e| io_err(entry, "remove directory", e))
    } else {
        rfs::unlinkat(parent, name, AtFlags::empty()).map_err(|e| io_err(entry, "remove file", e))
    }
}

fn make_whiteout(parent: &OwnedFd, hidden: &str, entry: &str) -> Result<(), UnpackError> {
    if hidden.is_empty() || hidden == "." || hidden == ".." {
        return Err(UnpackError::BadWhiteout {
            entry: entry.to_string(),
        });
    }
    remove_existing(parent, OsStr::new(hidden), entry)?;
    // overlayfs treats a 0/0 character device as "deleted in this layer".
    rfs::mknodat(
        parent,
        hidden,
        FileType::CharacterDevice,
        Mode::empty(),
        rfs::makedev(0, 0),
    )
    .map_err(|e| io_err(entry, "create whiteout device", e))
}

fn make_symlink<R: Read>(
    parent: &OwnedFd,
    name: &OsStr,
    entry: &tar::Entry<'_, R>,
    display: &str,
) -> Result<(), UnpackError> {
    // The target is stored verbatim: it is never followed here, and at run time it resolves
    // inside the container's root.
    let target = link_name(entry, display)?;
    remove_existing(parent, name, display)?;
    rfs::symlinkat(&target, parent, name).map_err(|e| io_err(display, "create symlink", e))?;
    let header = entry.header();
    let (uid, gid) = owner(header);
    chown_ok(
        rfs::chownat(
            parent,
            name,
            Some(uid),
            Some(gid),
            AtFlags::SYMLINK_NOFOLLOW,
        ),
        display,
    )?;
    let times = timestamps(header.mtime().unwrap_or(0));
    rfs::utimensat(parent, name, &times, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| io_err(display, "set symlink times", e))
}

fn make_fifo(
    parent: &OwnedFd,
    name: &OsStr,
    header: &tar::Header,
    display: &str,
) -> Result<(), UnpackError> {
    remove_existing(parent, name, display)?;
    rfs::mknodat(parent, name, FileType::Fifo, Mode::from_raw_mode(0o600), 0)
        .map_err(|e| io_err(display, "create fifo", e))?;
    let (uid, gid) = owner(header);
    chown_ok(
        rfs::chownat(
            parent,
            name,
            Some(uid),
            Some(gid),
            AtFlags::SYMLINK_NOFOLLOW,
        ),
        display,
    )?;
    let mode = Mode::from_raw_mode(header.mode().unwrap_or(0o644) & 0o7777);
    rfs::chmodat(parent, name, mode, AtFlags::empty())
        .map_err(|e| io_err(display, "chmod fifo", e))?;
    let times = timestamps(header.mtime().unwrap_or(0));
    rfs::utimensat(parent, name, &times, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| io_err(display, "set fifo times", e))
}

/// A 0/0 character device is already an overlay whiteout and harmless (opening it gives
/// ENXIO); every other device node is refused.
fn make_device<R: Read>(
    parent: &OwnedFd,
    name: &OsStr,
    entry: &tar::Entry<'_, R>,
    display: &str,
) -> Result<(), UnpackError> {
    let header = entry.header();
    let major = header.device_major().ok().flatten().unwrap_or(u32::MAX);
    let minor = header.device_minor().ok().flatten().unwrap_or(u32::MAX);
    if header.entry_type() == EntryType::Char && major == 0 && minor == 0 {
        return make_whiteout(parent, &name.to_string_lossy(), display);
    }
    let kind = if header.entry_type() == EntryType::Block {
        "block"
    } else {
        "char"
    };
    Err(UnpackError::Device {
        entry: display.to_string(),
        kind,
    })
}

fn link_name<R: Read>(entry: &tar::Entry<'_, R>, display: &str) -> Result<PathBuf, UnpackError> {
    match entry.link_name() {
        Ok(Some(t)) => Ok(t.into_owned()),
        Ok(None) => Err(io_err(display, "read link target", Errno::INVAL)),
        Err(source) => Err(UnpackError::Read { source }),
    }
}

/// Owner, mode (after chown, which clears setuid/setgid) and xattrs (after chown, which
/// clears `security.capability`) of an open file or directory.
fn apply_meta(
    fd: impl AsFd,
    header: &tar::Header,
    xattrs: &[(String, Vec<u8>)],
    entry: &str,
) -> Result<(), UnpackError> {
    let (uid, gid) = owner(header);
    chown_ok(rfs::fchown(&fd, Some(uid), Some(gid)), entry)?;
    let mode = header
        .mode()
        .map_err(|source| UnpackError::Read { source })?
        & 0o7777;
    rfs::fchmod(&fd, Mode::from_raw_mode(mode)).map_err(|e| io_err(entry, "chmod", e))?;
    for (name, value) in xattrs {
        set_xattr(&fd, name, value, entry)?;
    }
    Ok(())
}

fn set_times_fd(fd: impl AsFd, header: &tar::Header, entry: &str) -> Result<(), UnpackError> {
    futimens(fd, header.mtime().unwrap_or(0), entry)
}

fn futimens(fd: impl AsFd, mtime: u64, entry: &str) -> Result<(), UnpackError> {
    rfs::futimens(&fd, &timestamps(mtime)).map_err(|e| io_err(entry, "set times", e))
}

fn timestamps(mtime: u64) -> Timestamps {
    let t = Timespec {
        tv_sec: i64::try_from(mtime).unwrap_or(i64::MAX),
        tv_nsec: 0,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

/// Sets an xattr; filesystems or namespaces that do not support it are skipped (Docker does
/// the same for e.g. `security.selinux` on hosts without SELinux).
fn set_xattr(fd: impl AsFd, name: &str, value: &[u8], entry: &str) -> Result<(), UnpackError> {
    match rfs::fsetxattr(&fd, name, value, XattrFlags::empty()) {
        Ok(()) => Ok(()),
        Err(Errno::NOTSUP | Errno::PERM) if name != OPAQUE_XATTR => {
            tracing::debug!(entry, xattr = name, "xattr not supported here, skipped");
            Ok(())
        }
        Err(e) => Err(io_err(entry, "set xattr", e)),
    }
}

fn owner(header: &tar::Header) -> (Uid, Gid) {
    let uid = header
        .uid()
        .ok()
        .and_then(|u| u32::try_from(u).ok())
        .unwrap_or(0);
    let gid = header
        .gid()
        .ok()
        .and_then(|g| u32::try_from(g).ok())
        .unwrap_or(0);
    (Uid::from_raw_unchecked(uid), Gid::from_raw_unchecked(gid))
}

/// chown fails with EPERM when not root (rootless); ownership then stays the caller's.
fn chown_ok(res: rustix::io::Result<()>, entry: &str) -> Result<(), UnpackError> {
    match res {
        Ok(()) | Err(Errno::PERM) => Ok(()),
        Err(e) => Err(io_err(entry, "chown", e)),
    }
}

fn pax_xattrs<R: Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    if let Some(exts) = entry.pax_extensions()? {
        for ext in exts {
            let ext = ext?;
            if let Ok(key) = ext.key() {
                if let Some(name) = key.strip_prefix(PAX_XATTR_PREFIX) {
                    out.push((name.to_string(), ext.value_bytes().to_vec()));
                }
            }
        }
    }
    Ok(out)
}

fn io_err(entry: &str, op: &'static str, e: impl Into<io::Error>) -> UnpackError {
    UnpackError::Io {
        entry: entry.to_string(),
        op,
        source: e.into(),
    }
}

#[cfg(test)]
mod tests;
