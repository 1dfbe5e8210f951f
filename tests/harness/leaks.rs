//! Leak detection after a sandbox host's containers are removed: processes, mounts and
//! cgroup directories that should be gone, found from /proc and /sys/fs/cgroup, and their
//! forced cleanup (SIGKILL by pid, lazy unmount, rmdir) so one failed test cannot poison others.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::mount::{umount2, MntFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// A process that outlived its sandbox host, and why it counts as leaked.
#[derive(Debug, Clone)]
pub(crate) struct LeakedProcess {
    pub pid: i32,
    pub comm: String,
    pub why: String,
}

fn pids() -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|&pid: &i32| pid != std::process::id() as i32)
        .collect()
}

fn comm(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Processes that (a) sit in a cgroup `/berth/<id>` of one of `ids`, (b) live in the network
/// namespace with inode `netns_ino`, or (c) have `dir` (the host's root) in their command line
/// (monitors).
pub(crate) fn processes(
    ids: &[String],
    netns_ino: Option<u64>,
    dirs: &[&Path],
) -> Vec<LeakedProcess> {
    let mut found = Vec::new();
    for pid in pids() {
        if is_zombie(pid) {
            // Dead already; only its parent's wait() is missing, which holds nothing.
            continue;
        }
        let why = cgroup_reason(pid, ids)
            .or_else(|| netns_reason(pid, netns_ino))
            .or_else(|| cmdline_reason(pid, dirs));
        if let Some(why) = why {
            let why = format!("{why}; cmdline: {}", cmdline(pid));
            found.push(LeakedProcess {
                pid,
                comm: comm(pid),
                why,
            });
        }
    }
    found
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

fn cgroup_reason(pid: i32, ids: &[String]) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let line = text
        .lines()
        .find(|l| ids.iter().any(|id| l.contains(&format!("/berth/{id}"))))?;
    Some(format!("in cgroup {line}"))
}

fn netns_reason(pid: i32, ino: Option<u64>) -> Option<String> {
    let ino = ino?;
    let meta = std::fs::metadata(format!("/proc/{pid}/ns/net")).ok()?;
    (meta.ino() == ino).then(|| "in the sandbox host's netns".to_string())
}

fn cmdline(pid: i32) -> String {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    String::from_utf8_lossy(&raw)
        .replace('\0', " ")
        .trim()
        .to_string()
}

fn cmdline_reason(pid: i32, dirs: &[&Path]) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
    let dir = dirs
        .iter()
        .find(|d| cmdline.contains(&*d.to_string_lossy()))?;
    Some(format!(
        "command line names {}: {}",
        dir.display(),
        cmdline.trim()
    ))
}

/// Mount points (from /proc/self/mountinfo) at or below any of `dirs`, deepest first.
pub(crate) fn mounts_under(dirs: &[&Path]) -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut found: Vec<PathBuf> = text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(unescape(m)))
        .filter(|m| dirs.iter().any(|d| m.starts_with(d)))
        .collect();
    found.sort_by_key(|m| std::cmp::Reverse(m.as_os_str().len()));
    found.dedup();
    found
}

/// Undoes mountinfo's octal escapes (`\040` for space, `\011`, `\012`, `\134`).
fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let code = rest
            .get(i + 1..i + 4)
            .and_then(|c| u8::from_str_radix(c, 8).ok());
        match code {
            Some(c) => {
                out.push(c as char);
                rest = &rest[i + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Cgroup directories `/sys/fs/cgroup/<controller>/berth/<id>` (and the unified hierarchy's)
/// left for any of `ids`.
pub(crate) fn cgroup_dirs(ids: &[String]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(ctrls) = std::fs::read_dir("/sys/fs/cgroup") else {
        return found;
    };
    for ctrl in ctrls.flatten() {
        for id in ids {
            let dir = ctrl.path().join("berth").join(id);
            if dir.is_dir() {
                found.push(dir);
            }
        }
    }
    found
}

/// SIGKILLs every leaked process by pid, then waits (up to 5 s) for them to go.
pub(crate) fn kill_all(procs: &[LeakedProcess]) {
    for p in procs {
        let _ = kill(Pid::from_raw(p.pid), Signal::SIGKILL);
    }
    crate::wait_until(Duration::from_secs(5), || {
        procs
            .iter()
            .all(|p| !Path::new(&format!("/proc/{}", p.pid)).exists())
    });
}

/// Lazily unmounts every mount point given (deepest first), ignoring failures.
pub(crate) fn unmount_all(mounts: &[PathBuf]) {
    for m in mounts {
        // MNT_DETACH: a busy mount (a process still holds it) must not stop the cleanup.
        let _ = umount2(m, MntFlags::MNT_DETACH);
    }
}

/// Removes leftover cgroup directories (only empty cgroups can be removed; retried briefly).
pub(crate) fn remove_cgroups(dirs: &[PathBuf]) {
    crate::wait_until(Duration::from_secs(3), || {
        dirs.iter()
            .all(|d| !d.exists() || std::fs::remove_dir(d).is_ok())
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescape_handles_octal_and_stray_backslash() {
        assert_eq!(unescape(r"/a\040b/c\134d"), r"/a b/c\d");
        assert_eq!(unescape(r"/x\y"), r"/x\y");
    }
}
