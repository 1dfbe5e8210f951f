//! The container's root filesystem: an overlayfs mount of the image layers (read-only lower
//! dirs, top-most first) under a per-container upper/work pair (kernel doc
//! `filesystems/overlayfs.rst`), plus resolution of the command to run inside it.

use std::path::{Component, Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::EngineError;

/// Mounts the overlay at `target`, creating `upper`, `work` and `target` if needed. Already
/// mounted (a restart) is fine.
pub fn mount_overlay(layers: &[PathBuf], dir: &Path, target: &Path) -> Result<(), EngineError> {
    let upper = dir.join("upper");
    let work = dir.join("work");
    for d in [&upper, &work, &target.to_path_buf()] {
        std::fs::create_dir_all(d).map_err(|e| EngineError::io(d, e))?;
    }
    if is_mounted(target) {
        return Ok(());
    }
    let lower = if layers.is_empty() {
        // overlayfs needs at least one lower dir; an image without layers gets an empty one.
        let empty = dir.join("empty");
        std::fs::create_dir_all(&empty).map_err(|e| EngineError::io(&empty, e))?;
        empty.display().to_string()
    } else {
        layers
            .iter()
            .map(|l| l.display().to_string())
            .collect::<Vec<_>>()
            .join(":")
    };
    let data = format!(
        "lowerdir={lower},upperdir={},workdir={}",
        upper.display(),
        work.display()
    );
    mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::empty(),
        Some(data.as_str()),
    )
    .map_err(|errno| EngineError::Mount {
        path: target.to_path_buf(),
        message: format!("overlay mount failed ({errno}); is overlayfs available and is {} on a filesystem overlayfs accepts as upper (not overlayfs itself)?", dir.display()),
    })
}

/// Unmounts `target` if mounted (lazy, so a straggling process cannot keep it busy).
pub fn unmount(target: &Path) -> Result<(), EngineError> {
    if !is_mounted(target) {
        return Ok(());
    }
    umount2(target, MntFlags::MNT_DETACH).map_err(|errno| EngineError::Mount {
        path: target.to_path_buf(),
        message: format!("unmount failed: {errno}"),
    })
}

/// Whether `path` is a mount point: `statx(2)`'s `STATX_ATTR_MOUNT_ROOT` (Linux 5.8), one
/// syscall; on older kernels, /proc/self/mountinfo (field 5; octal escapes decoded as
/// proc(5) describes), whose size — and the kernel's cost of generating it — grows with every
/// container's overlay and netns mount (with 300 containers it cost ~10 ms per read).
pub fn is_mounted(path: &Path) -> bool {
    use rustix::fs::{statx, AtFlags, StatxAttributes, StatxFlags, CWD};
    match statx(
        CWD,
        path,
        AtFlags::NO_AUTOMOUNT | AtFlags::SYMLINK_NOFOLLOW,
        StatxFlags::empty(),
    ) {
        Ok(st) if st.stx_attributes_mask.contains(StatxAttributes::MOUNT_ROOT) => {
            return st.stx_attributes.contains(StatxAttributes::MOUNT_ROOT);
        }
        Ok(_) | Err(rustix::io::Errno::NOSYS) => {}
        Err(_) => return false,
    }
    is_mounted_by_mountinfo(path)
}

fn is_mounted_by_mountinfo(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = path.to_string_lossy();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|m| unescape_mountinfo(m) == want)
}

fn unescape_mountinfo(s: &str) -> String {
    let mut out = String::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 4], 8) {
                out.push(v as char);
                i += 4;
                continue;
            }
        }
        out.push(b[i] as char);
        i += 1;
    }
    out
}

/// Why a command cannot run, mapped to Docker's exit codes (126 / 127).
#[derive(Debug, PartialEq, Eq)]
pub enum LookupError {
    /// No such file on PATH: exit 127.
    NotFound,
    /// Found but not an executable regular file: exit 126.
    NotExecutable,
}

/// Finds `cmd` inside `rootfs` the way execvp does (a name with `/` is taken as a path; else
/// each PATH entry), following symlinks as if `rootfs` were `/`.
pub fn lookup_command(rootfs: &Path, path_env: &str, cmd: &str) -> Result<PathBuf, LookupError> {
    let candidates: Vec<PathBuf> = if cmd.contains('/') {
        vec![PathBuf::from(cmd)]
    } else {
        path_env
            .split(':')
            .filter(|d| !d.is_empty())
            .map(|d| Path::new(d).join(cmd))
            .collect()
    };
    let mut saw_non_exec = false;
    for c in candidates {
        let Some(host) = resolve_in_root(rootfs, &c) else {
            continue;
        };
        let Ok(meta) = std::fs::metadata(&host) else {
            continue;
        };
        use std::os::unix::fs::PermissionsExt;
        if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
            return Ok(c);
        }
        saw_non_exec = true;
    }
    Err(if saw_non_exec {
        LookupError::NotExecutable
    } else {
        LookupError::NotFound
    })
}

/// Resolves `p` (absolute or relative to `/`) inside `root`, following symlinks with `root` as
/// `/` (at most 40 links, as the kernel's MAXSYMLINKS). `None` if a component is missing.
pub fn resolve_in_root(root: &Path, p: &Path) -> Option<PathBuf> {
    let mut parts: Vec<std::ffi::OsString> = Vec::new();
    let mut todo: Vec<std::ffi::OsString> = p
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .rev()
        .collect();
    let mut links = 0;
    while let Some(part) = todo.pop() {
        if part == ".." {
            parts.pop();
            continue;
        }
        let mut cur = root.to_path_buf();
        cur.extend(&parts);
        cur.push(&part);
        match std::fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > 40 {
                    return None;
                }
                let target = std::fs::read_link(&cur).ok()?;
                if target.is_absolute() {
                    parts.clear();
                }
                for c in target.components().rev() {
                    match c {
                        Component::Normal(n) => todo.push(n.to_os_string()),
                        Component::ParentDir => todo.push("..".into()),
                        _ => {}
                    }
                }
            }
            Ok(_) => parts.push(part),
            Err(_) => return None,
        }
    }
    let mut out = root.to_path_buf();
    out.extend(&parts);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    #[test]
    fn lookup_follows_links_inside_root() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir_all(r.join("bin")).unwrap();
        std::fs::write(r.join("bin/busybox"), b"x").unwrap();
        std::fs::set_permissions(
            r.join("bin/busybox"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        symlink("/bin/busybox", r.join("bin/sh")).unwrap();
        symlink("busybox", r.join("bin/ls")).unwrap();
        std::fs::write(r.join("bin/data"), b"x").unwrap();
        symlink("/etc/passwd", r.join("bin/escape")).unwrap();
        let path = "/usr/bin:/bin";
        assert_eq!(lookup_command(r, path, "sh").unwrap(), Path::new("/bin/sh"));
        assert!(lookup_command(r, path, "ls").is_ok());
        assert!(lookup_command(r, path, "/bin/sh").is_ok());
        assert_eq!(lookup_command(r, path, "nope"), Err(LookupError::NotFound));
        assert_eq!(
            lookup_command(r, path, "data"),
            Err(LookupError::NotExecutable)
        );
        // An absolute link resolves inside the root, not on the host.
        assert_eq!(
            lookup_command(r, path, "escape"),
            Err(LookupError::NotFound)
        );
    }

    #[test]
    fn mount_roots_are_told_from_plain_directories() {
        // `/` and /proc are mount points on every Linux; a fresh directory is not.
        assert!(is_mounted(Path::new("/")));
        assert!(is_mounted(Path::new("/proc")));
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_mounted(dir.path()));
        assert!(!is_mounted(&dir.path().join("missing")));
        assert!(is_mounted_by_mountinfo(Path::new("/proc")));
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mountinfo("/a\\040b"), "/a b");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
    }
}
