//! Resolution of Docker's `-u USER[:GROUP]` against the image rootfs `/etc/passwd` and
//! `/etc/group`.
//!
//! The semantics follow runc's `libcontainer/user.GetExecUser`, which Docker (moby
//! `daemon/oci_linux.go`, `getUser`) calls with no defaults:
//! - no user (or an empty string) means `root`, i.e. uid 0;
//! - the user part matches a passwd entry by name, or by uid when numeric; the first match wins;
//!   a numeric uid without an entry is allowed (gid 0, home `/`), an unknown name is an error;
//! - the group part matches a group entry by name, or by gid when numeric; a numeric gid without
//!   an entry is allowed, an unknown name is an error;
//! - supplementary groups (every group whose member list names the user) are only added when
//!   no group was given explicitly.
//!
//! The two files are opened with `openat2(RESOLVE_IN_ROOT)`, so every symlink on the way
//! (absolute or `..`) is resolved as if the rootfs were `/`: an image cannot make berth read a
//! host file such as the host's `/etc/shadow`.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Largest file we read as `/etc/passwd` or `/etc/group` (bytes); bigger is refused so a
/// hostile image cannot make berth allocate without bound.
const MAX_DB_BYTES: u64 = 16 * 1024 * 1024;

/// The identity the container process runs as, resolved from `-u`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecUser {
    /// Numeric user id (`process.user.uid`).
    pub uid: u32,
    /// Numeric primary group id (`process.user.gid`).
    pub gid: u32,
    /// Supplementary group ids from `/etc/group` membership (`process.user.additionalGids`),
    /// in file order, without duplicates.
    pub additional_gids: Vec<u32>,
    /// Home directory from the passwd entry, `/` when there is none; the default for `HOME`.
    pub home: String,
}

impl ExecUser {
    /// Root (0:0) with home `/`, what a container gets when neither `-u` nor the rootfs say more.
    pub fn root() -> Self {
        Self {
            uid: 0,
            gid: 0,
            additional_gids: Vec::new(),
            home: "/".to_owned(),
        }
    }
}

/// Errors of [`resolve_user`].
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// The user part names no passwd entry and is not a number.
    #[error("no user {name:?} in the image's /etc/passwd (rootfs {rootfs}): use a numeric uid or add the user to the image")]
    UnknownUser {
        /// The user as given.
        name: String,
        /// The rootfs searched.
        rootfs: PathBuf,
    },
    /// The group part names no group entry and is not a number.
    #[error("no group {name:?} in the image's /etc/group (rootfs {rootfs}): use a numeric gid or add the group to the image")]
    UnknownGroup {
        /// The group as given.
        name: String,
        /// The rootfs searched.
        rootfs: PathBuf,
    },
    /// The `-u` value is malformed (empty user part, or a numeric id out of range).
    #[error("invalid user {spec:?}: expected name, uid, name:group, uid:gid or uid:group with ids below 2^31")]
    InvalidSpec {
        /// The `-u` value as given.
        spec: String,
    },
    /// `/etc/passwd` or `/etc/group` exists but could not be read.
    #[error("cannot read {file} in rootfs {rootfs}: {source}; check the image's file permissions and type")]
    Read {
        /// The file inside the rootfs (`/etc/passwd` or `/etc/group`).
        file: &'static str,
        /// The rootfs.
        rootfs: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// One parsed `/etc/passwd` line (`name:password:uid:gid:gecos:home:shell`).
#[derive(Debug)]
struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

/// One parsed `/etc/group` line (`name:password:gid:member,member`).
#[derive(Debug)]
struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// Resolves a Docker `-u` value against `rootfs`'s `/etc/passwd` and `/etc/group`.
///
/// `spec` is `None` (or empty) for the default, root; otherwise one of `name`, `uid`,
/// `name:group`, `uid:gid`, `uid:group` (`user:` with an empty group means no group).
/// Missing files are treated as empty (numeric ids still work).
///
/// # Errors
/// [`UserError::UnknownUser`] / [`UserError::UnknownGroup`] for names with no entry,
/// [`UserError::InvalidSpec`] for malformed values or ids above `i32::MAX`, and
/// [`UserError::Read`] when a file exists but cannot be read (or is over 16 MiB).
pub fn resolve_user(rootfs: &Path, spec: Option<&str>) -> Result<ExecUser, UserError> {
    let spec = spec.unwrap_or("");
    let (user_arg, group_arg) = match spec.split_once(':') {
        Some((u, g)) => (u, g),
        None => (spec, ""),
    };
    if user_arg.is_empty() && !spec.is_empty() {
        return Err(UserError::InvalidSpec {
            spec: spec.to_owned(),
        });
    }
    let user_arg = if user_arg.is_empty() { "0" } else { user_arg };
    let invalid = || UserError::InvalidSpec {
        spec: spec.to_owned(),
    };
    let uid_num = parse_id(user_arg).map_err(|()| invalid())?;
    let gid_num = parse_id(group_arg).map_err(|()| invalid())?;

    let passwd = parse_passwd(&read_db(rootfs, "/etc/passwd")?);
    let entry = passwd
        .iter()
        .find(|e| e.name == user_arg || Some(e.uid) == uid_num);
    let mut user = match (entry, uid_num) {
        (Some(e), _) => ExecUser {
            uid: e.uid,
            gid: e.gid,
            additional_gids: Vec::new(),
            home: e.home.clone(),
        },
        (None, Some(uid)) => ExecUser {
            uid,
            ..ExecUser::root()
        },
        (None, None) => {
            return Err(UserError::UnknownUser {
                name: user_arg.to_owned(),
                rootfs: rootfs.to_owned(),
            })
        }
    };

    let groups = parse_group(&read_db(rootfs, "/etc/group")?);
    if !group_arg.is_empty() {
        user.gid = groups
            .iter()
            .find(|g| g.name == group_arg || Some(g.gid) == gid_num)
            .map(|g| g.gid)
            .or(gid_num)
            .ok_or_else(|| UserError::UnknownGroup {
                name: group_arg.to_owned(),
                rootfs: rootfs.to_owned(),
            })?;
    } else if let Some(e) = entry {
        for g in groups.iter().filter(|g| g.members.contains(&e.name)) {
            if !user.additional_gids.contains(&g.gid) {
                user.additional_gids.push(g.gid);
            }
        }
    }
    Ok(user)
}

/// Parses a numeric id: `Ok(None)` for a name, `Err` for a number out of `0..=i32::MAX`
/// (the range runc accepts).
fn parse_id(arg: &str) -> Result<Option<u32>, ()> {
    if arg.is_empty() || !arg.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    match arg.parse::<u32>() {
        Ok(id) if i32::try_from(id).is_ok() => Ok(Some(id)),
        _ => Err(()),
    }
}

/// Reads `file` (an absolute path inside the container) from `rootfs`, resolving symlinks
/// inside the rootfs only; a missing file (or a missing directory on the way) reads as empty.
fn read_db(rootfs: &Path, file: &'static str) -> Result<String, UserError> {
    let err = |source: io::Error| UserError::Read {
        file,
        rootfs: rootfs.to_owned(),
        source,
    };
    let Some(f) = open_in_root(rootfs, file).map_err(err)? else {
        return Ok(String::new());
    };
    let mut bytes = Vec::new();
    f.take(MAX_DB_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(err)?;
    if bytes.len() as u64 > MAX_DB_BYTES {
        return Err(err(io::Error::new(
            io::ErrorKind::InvalidData,
            "file larger than 16 MiB",
        )));
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Opens `path` inside `rootfs` without letting symlinks or `..` leave it
/// (berth-sys `open_in_root`, openat2(2) `RESOLVE_IN_ROOT`). `Ok(None)` when missing.
fn open_in_root(rootfs: &Path, path: &str) -> io::Result<Option<File>> {
    berth_sys::fd::open_in_root(rootfs, path)
}

/// Parses passwd lines, skipping comments and malformed lines (as runc does).
fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            Some(PasswdEntry {
                name: (*f.first()?).to_owned(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
                home: f
                    .get(5)
                    .map_or("/", |h| if h.is_empty() { "/" } else { h })
                    .to_owned(),
            })
        })
        .collect()
}

/// Parses group lines, skipping comments and malformed lines (as runc does).
fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            Some(GroupEntry {
                name: (*f.first()?).to_owned(),
                gid: f.get(2)?.parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    const PASSWD: &str = "\
root:x:0:0:root:/root:/bin/sh
# a comment
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
alice:x:1000:1000:Alice:/home/alice:/bin/sh
broken line
bob:x:1001:1001::/home/bob:/bin/sh
";
    const GROUP: &str = "\
root:x:0:
wheel:x:10:root,alice
alice:x:1000:
bob:x:1001:
audio:x:29:alice, bob
staff:x:50:
";

    fn rootfs() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("etc")).unwrap();
        fs::write(dir.path().join("etc/passwd"), PASSWD).unwrap();
        fs::write(dir.path().join("etc/group"), GROUP).unwrap();
        dir
    }

    fn user(uid: u32, gid: u32, sgids: &[u32], home: &str) -> ExecUser {
        ExecUser {
            uid,
            gid,
            additional_gids: sgids.to_vec(),
            home: home.to_owned(),
        }
    }

    #[test]
    fn default_is_root_with_its_groups_and_home() {
        let r = rootfs();
        let want = user(0, 0, &[10], "/root");
        assert_eq!(resolve_user(r.path(), None).unwrap(), want);
        assert_eq!(resolve_user(r.path(), Some("")).unwrap(), want);
        assert_eq!(resolve_user(r.path(), Some("root")).unwrap(), want);
    }

    #[test]
    fn name_gives_primary_and_supplementary_groups() {
        let r = rootfs();
        let got = resolve_user(r.path(), Some("alice")).unwrap();
        assert_eq!(got, user(1000, 1000, &[10, 29], "/home/alice"));
        let bob = resolve_user(r.path(), Some("bob")).unwrap();
        assert_eq!(bob, user(1001, 1001, &[29], "/home/bob"));
    }

    #[test]
    fn uid_with_entry_uses_entry() {
        let r = rootfs();
        let got = resolve_user(r.path(), Some("1000")).unwrap();
        assert_eq!(got, user(1000, 1000, &[10, 29], "/home/alice"));
    }

    #[test]
    fn uid_without_entry_is_allowed_with_gid_zero() {
        let r = rootfs();
        assert_eq!(
            resolve_user(r.path(), Some("4242")).unwrap(),
            user(4242, 0, &[], "/")
        );
    }

    #[test]
    fn name_colon_group_sets_gid_and_no_supplementary() {
        let r = rootfs();
        let got = resolve_user(r.path(), Some("alice:staff")).unwrap();
        assert_eq!(got, user(1000, 50, &[], "/home/alice"));
    }

    #[test]
    fn uid_colon_gid_allows_unknown_ids() {
        let r = rootfs();
        assert_eq!(
            resolve_user(r.path(), Some("5000:6000")).unwrap(),
            user(5000, 6000, &[], "/")
        );
        assert_eq!(
            resolve_user(r.path(), Some("1001:10")).unwrap(),
            user(1001, 10, &[], "/home/bob")
        );
    }

    #[test]
    fn uid_colon_group_name() {
        let r = rootfs();
        assert_eq!(
            resolve_user(r.path(), Some("5000:wheel")).unwrap(),
            user(5000, 10, &[], "/")
        );
    }

    #[test]
    fn unknown_user_names_it() {
        let r = rootfs();
        let err = resolve_user(r.path(), Some("mallory")).unwrap_err();
        assert!(matches!(&err, UserError::UnknownUser { name, .. } if name == "mallory"));
        assert!(err.to_string().contains("\"mallory\""), "{err}");
    }

    #[test]
    fn unknown_group_names_it() {
        let r = rootfs();
        let err = resolve_user(r.path(), Some("alice:nogroup")).unwrap_err();
        assert!(matches!(&err, UserError::UnknownGroup { name, .. } if name == "nogroup"));
    }

    #[test]
    fn malformed_specs_are_rejected() {
        let r = rootfs();
        for bad in [":10", "99999999999", "0:3000000000"] {
            let err = resolve_user(r.path(), Some(bad)).unwrap_err();
            assert!(matches!(err, UserError::InvalidSpec { .. }), "{bad}: {err}");
        }
    }

    #[test]
    fn missing_files_allow_numeric_ids_only() {
        let r = tempfile::tempdir().unwrap();
        assert_eq!(resolve_user(r.path(), None).unwrap(), ExecUser::root());
        assert_eq!(
            resolve_user(r.path(), Some("7:8")).unwrap(),
            user(7, 8, &[], "/")
        );
        assert!(resolve_user(r.path(), Some("alice")).is_err());
    }

    #[test]
    fn absolute_symlink_escaping_the_rootfs_is_resolved_inside_it() {
        // A host-side passwd that names "evil"; the image's /etc/passwd points at it by its
        // host path. Resolution must stay inside the rootfs, where that path does not exist.
        let host = tempfile::tempdir().unwrap();
        let host_passwd = host.path().join("passwd");
        fs::write(&host_passwd, "evil:x:0:0::/:/bin/sh\n").unwrap();
        let r = tempfile::tempdir().unwrap();
        fs::create_dir_all(r.path().join("etc")).unwrap();
        symlink(&host_passwd, r.path().join("etc/passwd")).unwrap();
        let err = resolve_user(r.path(), Some("evil")).unwrap_err();
        assert!(matches!(err, UserError::UnknownUser { .. }), "{err}");
    }

    #[test]
    fn relative_symlink_climbing_out_is_clamped() {
        let host = tempfile::tempdir().unwrap();
        fs::write(host.path().join("passwd"), "evil:x:0:0::/:/bin/sh\n").unwrap();
        let r = host.path().join("rootfs");
        fs::create_dir_all(r.join("etc")).unwrap();
        symlink("../../passwd", r.join("etc/passwd")).unwrap();
        assert!(resolve_user(&r, Some("evil")).is_err());
    }

    #[test]
    fn absolute_symlink_inside_the_rootfs_is_followed() {
        let r = tempfile::tempdir().unwrap();
        fs::create_dir_all(r.path().join("etc")).unwrap();
        fs::create_dir_all(r.path().join("usr/lib")).unwrap();
        fs::write(r.path().join("usr/lib/passwd"), PASSWD).unwrap();
        symlink("/usr/lib/passwd", r.path().join("etc/passwd")).unwrap();
        let got = resolve_user(r.path(), Some("bob")).unwrap();
        assert_eq!(got.uid, 1001);
    }

    #[test]
    fn directory_as_passwd_is_a_read_error() {
        let r = tempfile::tempdir().unwrap();
        fs::create_dir_all(r.path().join("etc/passwd")).unwrap();
        let err = resolve_user(r.path(), Some("alice")).unwrap_err();
        assert!(
            matches!(
                err,
                UserError::Read {
                    file: "/etc/passwd",
                    ..
                }
            ),
            "{err}"
        );
    }
}
