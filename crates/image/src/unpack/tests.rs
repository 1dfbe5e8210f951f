//! Unpacking tests: whiteouts, metadata, and every escape an evil layer may try.
//! Needs root (mknod, chown, trusted.* xattrs); skips with a printed reason otherwise.

use super::*;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use tar::{Builder, Header};

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

macro_rules! require_root {
    () => {
        if !is_root() {
            berth_sys::testing::skip_or_fail("needs root (mknod, chown, trusted.* xattrs)");
            return;
        }
    };
}

/// A tar under construction whose names are written raw, so tests can produce the `..`
/// and absolute paths that `tar::Builder` itself refuses to write.
struct EvilTar(Builder<Vec<u8>>);

impl EvilTar {
    fn new() -> Self {
        Self(Builder::new(Vec::new()))
    }

    fn header(kind: EntryType, name: &str, mode: u32) -> Header {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_mtime(1_000_000);
        h.set_uid(0);
        h.set_gid(0);
        let raw = &mut h.as_old_mut().name;
        raw[..name.len()].copy_from_slice(name.as_bytes());
        h
    }

    fn add(mut self, mut h: Header, data: &[u8]) -> Self {
        h.set_size(data.len() as u64);
        h.set_cksum();
        self.0.append(&h, data).unwrap();
        self
    }

    fn file(self, name: &str, data: &[u8]) -> Self {
        let h = Self::header(EntryType::Regular, name, 0o644);
        self.add(h, data)
    }

    fn dir(self, name: &str) -> Self {
        let h = Self::header(EntryType::Directory, name, 0o755);
        self.add(h, b"")
    }

    fn link(self, kind: EntryType, name: &str, target: &str) -> Self {
        let mut h = Self::header(kind, name, 0o777);
        let raw = &mut h.as_old_mut().linkname;
        raw[..target.len()].copy_from_slice(target.as_bytes());
        self.add(h, b"")
    }

    fn device(self, kind: EntryType, name: &str, major: u32, minor: u32) -> Self {
        let mut h = Self::header(kind, name, 0o600);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        self.add(h, b"")
    }

    fn bytes(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

/// Unpacks into `<tmp>/root`, returning the result and the temp dir (so tests can check
/// that nothing landed beside `root`).
fn unpack(tar: Vec<u8>) -> (Result<UnpackStats, UnpackError>, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("root")).unwrap();
    let res = unpack_layer(&tar[..], &tmp.path().join("root"));
    (res, tmp)
}

fn entries_beside_root(tmp: &tempfile::TempDir) -> Vec<String> {
    std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "root")
        .collect()
}

#[test]
fn refuses_parent_escape() {
    let (res, tmp) = unpack(EvilTar::new().file("../x", b"pwned").bytes());
    let err = res.unwrap_err();
    assert!(
        matches!(&err, UnpackError::Escape { entry } if entry == "../x"),
        "{err}"
    );
    assert!(err.to_string().contains("\"../x\""));
    assert!(entries_beside_root(&tmp).is_empty());
    // `..` that stays inside is fine.
    let (res, tmp) = unpack(EvilTar::new().file("a/../b", b"ok").bytes());
    res.unwrap();
    assert_eq!(std::fs::read(tmp.path().join("root/b")).unwrap(), b"ok");
}

#[test]
fn refuses_absolute_path() {
    let (res, _tmp) = unpack(EvilTar::new().file("/etc/evil-berth-test", b"x").bytes());
    assert!(
        matches!(res, Err(UnpackError::Absolute { ref entry }) if entry == "/etc/evil-berth-test")
    );
    assert!(!Path::new("/etc/evil-berth-test").exists());
}

#[test]
fn refuses_file_through_symlinked_dir() {
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().to_str().unwrap();
    let tar = EvilTar::new()
        .link(EntryType::Symlink, "d", target)
        .file("d/pwned", b"x")
        .bytes();
    let (res, tmp) = unpack(tar);
    let err = res.unwrap_err();
    assert!(
        matches!(&err, UnpackError::SymlinkInPath { entry, component } if entry == "d/pwned" && component == "d"),
        "{err}"
    );
    assert!(!outside.path().join("pwned").exists());
    // The symlink itself was created verbatim, not followed.
    let meta = std::fs::symlink_metadata(tmp.path().join("root/d")).unwrap();
    assert!(meta.file_type().is_symlink());
    // Relative symlink to `..` then a file through it: same refusal.
    let tar = EvilTar::new()
        .link(EntryType::Symlink, "up", "..")
        .file("up/escaped", b"x")
        .bytes();
    let (res, tmp) = unpack(tar);
    assert!(matches!(res, Err(UnpackError::SymlinkInPath { .. })));
    assert!(entries_beside_root(&tmp).is_empty());
}

#[test]
fn replaces_symlink_leaf_instead_of_writing_through_it() {
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim");
    std::fs::write(&victim, b"original").unwrap();
    let tar = EvilTar::new()
        .link(EntryType::Symlink, "f", victim.to_str().unwrap())
        .file("f", b"new")
        .bytes();
    let (res, tmp) = unpack(tar);
    res.unwrap();
    assert_eq!(std::fs::read(&victim).unwrap(), b"original");
    assert_eq!(std::fs::read(tmp.path().join("root/f")).unwrap(), b"new");
}

#[test]
fn refuses_hardlink_out() {
    for target in ["../outside", "/etc/passwd"] {
        let (res, tmp) = unpack(EvilTar::new().link(EntryType::Link, "h", target).bytes());
        let err = res.unwrap_err();
        assert!(
            matches!(&err, UnpackError::HardlinkEscape { entry, target: t } if entry == "h" && t == target),
            "{target}: {err}"
        );
        assert!(!tmp.path().join("root/h").exists());
    }
    // Through a symlinked directory.
    let tar = EvilTar::new()
        .link(EntryType::Symlink, "etc", "/etc")
        .link(EntryType::Link, "h", "etc/passwd")
        .bytes();
    let (res, _tmp) = unpack(tar);
    assert!(
        matches!(res, Err(UnpackError::HardlinkEscape { .. })),
        "{res:?}"
    );
}

#[test]
fn hardlink_inside_works() {
    let tar = EvilTar::new()
        .file("a", b"data")
        .link(EntryType::Link, "b", "./a")
        .bytes();
    let (res, tmp) = unpack(tar);
    res.unwrap();
    let a = std::fs::metadata(tmp.path().join("root/a")).unwrap();
    let b = std::fs::metadata(tmp.path().join("root/b")).unwrap();
    assert_eq!(a.ino(), b.ino());
}

#[test]
fn refuses_device_nodes() {
    require_root!();
    let (res, tmp) = unpack(
        EvilTar::new()
            .device(EntryType::Block, "dev/sda", 8, 0)
            .bytes(),
    );
    assert!(
        matches!(res, Err(UnpackError::Device { ref entry, kind: "block" }) if entry == "dev/sda")
    );
    assert!(!tmp.path().join("root/dev/sda").exists());
    let (res, _tmp) = unpack(EvilTar::new().device(EntryType::Char, "mem", 1, 1).bytes());
    assert!(matches!(res, Err(UnpackError::Device { kind: "char", .. })));
    // FIFOs are fine.
    let mut h = EvilTar::header(EntryType::Fifo, "pipe", 0o640);
    h.set_size(0);
    let (res, tmp) = unpack(EvilTar::new().add(h, b"").bytes());
    res.unwrap();
    let meta = std::fs::symlink_metadata(tmp.path().join("root/pipe")).unwrap();
    assert!(meta.file_type().is_fifo());
    assert_eq!(meta.permissions().mode() & 0o7777, 0o640);
}

#[test]
fn converts_whiteouts_for_overlayfs() {
    require_root!();
    let tar = EvilTar::new()
        .dir("etc")
        .file("etc/.wh.passwd", b"")
        .dir("opaque")
        .file("opaque/.wh..wh..opq", b"")
        .file("opaque/kept", b"k")
        .bytes();
    let (res, tmp) = unpack(tar);
    res.unwrap();
    let root = tmp.path().join("root");
    let wh = std::fs::symlink_metadata(root.join("etc/passwd")).unwrap();
    assert!(wh.file_type().is_char_device());
    assert_eq!(wh.rdev(), 0);
    assert!(!root.join("etc/.wh.passwd").exists());
    let mut buf = [0u8; 8];
    let n = rustix::fs::getxattr(root.join("opaque"), OPAQUE_XATTR, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"y");
    assert!(!root.join("opaque/.wh..wh..opq").exists());
    assert!(root.join("opaque/kept").exists());
}

#[test]
fn preserves_metadata() {
    require_root!();
    let mut b = Builder::new(Vec::new());
    let mut h = Header::new_ustar();
    h.set_entry_type(EntryType::Regular);
    h.set_path("bin/su").unwrap();
    h.set_mode(0o4755);
    h.set_uid(1234);
    h.set_gid(5678);
    h.set_mtime(1_234_567);
    h.set_size(3);
    h.set_cksum();
    b.append_pax_extensions([("SCHILY.xattr.user.berth", &b"v"[..])])
        .unwrap();
    b.append(&h, &b"abc"[..]).unwrap();
    let mut d = Header::new_gnu();
    d.set_entry_type(EntryType::Directory);
    d.set_path("bin").unwrap();
    d.set_mode(0o1777);
    d.set_mtime(42);
    d.set_size(0);
    d.set_cksum();
    b.append(&d, &b""[..]).unwrap();
    let (res, tmp) = unpack(b.into_inner().unwrap());
    let stats = res.unwrap();
    assert_eq!(stats.size, 3);
    let f = std::fs::metadata(tmp.path().join("root/bin/su")).unwrap();
    assert_eq!(f.mode() & 0o7777, 0o4755, "setuid kept");
    assert_eq!((f.uid(), f.gid()), (1234, 5678));
    assert_eq!(f.mtime(), 1_234_567);
    let dir = std::fs::metadata(tmp.path().join("root/bin")).unwrap();
    assert_eq!(dir.mode() & 0o7777, 0o1777);
    assert_eq!(
        dir.mtime(),
        42,
        "directory mtime applied after its children"
    );
    let mut buf = [0u8; 4];
    let n = rustix::fs::getxattr(tmp.path().join("root/bin/su"), "user.berth", &mut buf).unwrap();
    assert_eq!(&buf[..n], b"v");
}
