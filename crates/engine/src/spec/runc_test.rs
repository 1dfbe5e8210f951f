//! One real-runtime test: a busybox rootfs, config.json from [`build_spec`], run by runc in a
//! throwaway network namespace. Skips (printing `SKIP: reason`) without root, runc or busybox.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::tests::input;
use super::*;

/// Busybox-static as installed by Debian's `busybox-static` package.
const BUSYBOX: &str = "/bin/busybox";

/// A named network namespace (`ip netns add`), deleted on drop, pass or fail.
struct NetNs {
    name: String,
}

impl NetNs {
    fn create() -> Self {
        let name = format!("berth-t-{:08x}", rand::random::<u32>());
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .expect("run ip netns add")
            .success();
        assert!(ok, "ip netns add {name} failed");
        Self { name }
    }

    fn path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.name)
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A runc container id under a private `--root`, force-deleted on drop.
struct RuncContainer {
    root: PathBuf,
    id: String,
}

impl Drop for RuncContainer {
    fn drop(&mut self) {
        let _ = Command::new("runc")
            .arg("--root")
            .arg(&self.root)
            .args(["delete", "--force", &self.id])
            .stderr(Stdio::null())
            .status();
    }
}

/// Why this test cannot run here, if it cannot.
fn skip_reason() -> Option<String> {
    if !rustix::process::geteuid().is_root() {
        return Some("not root".to_owned());
    }
    let runc = Command::new("runc").arg("--version").output();
    if !runc.is_ok_and(|o| o.status.success()) {
        return Some("runc not found".to_owned());
    }
    if !Path::new(BUSYBOX).exists() {
        return Some(format!(
            "{BUSYBOX} missing (apt-get install busybox-static)"
        ));
    }
    None
}

/// A rootfs holding busybox and the applets the test uses.
fn busybox_rootfs(dir: &Path) -> PathBuf {
    let rootfs = dir.join("rootfs");
    fs::create_dir_all(rootfs.join("bin")).unwrap();
    fs::create_dir_all(rootfs.join("etc")).unwrap();
    fs::copy(BUSYBOX, rootfs.join("bin/busybox")).unwrap();
    for applet in ["sh", "id", "cat", "ls", "ip", "grep", "hostname"] {
        symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
    }
    fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    rootfs
}

/// Extracts the hex value of a `/proc/<pid>/status` field such as `CapEff`.
fn status_hex(output: &str, field: &str) -> u64 {
    let line = output
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in output:\n{output}"));
    u64::from_str_radix(line.trim(), 16).unwrap()
}

#[test]
fn runc_runs_the_spec_in_its_netns_with_dockers_caps() {
    if let Some(reason) = skip_reason() {
        berth_sys::testing::skip_or_fail(&reason);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rootfs = busybox_rootfs(dir.path());
    let netns = NetNs::create();
    for (name, body) in [
        ("hosts", "127.0.0.1 localhost\n"),
        ("hostname", "berthtest\n"),
        ("resolv.conf", "nameserver 127.0.0.53\n"),
    ] {
        fs::write(dir.path().join(name), body).unwrap();
    }
    let id = netns.name.clone();
    let mut i = input();
    i.user = crate::user::resolve_user(&rootfs, None).unwrap();
    i.rootfs = rootfs;
    i.netns = NetNsSpec::Path(netns.path());
    i.hostname = Some("berthtest".to_owned());
    i.cgroups_path = format!("/{id}");
    i.etc_files = EtcFiles {
        hosts: dir.path().join("hosts"),
        hostname: dir.path().join("hostname"),
        resolv_conf: dir.path().join("resolv.conf"),
    };
    i.args = ["/bin/sh", "-c"]
        .into_iter()
        .map(String::from)
        .chain([concat!(
            "echo uid=$(id -u) gid=$(id -g); grep -E '^Cap(Eff|Bnd|Inh|Amb):' /proc/self/status; ",
            "echo links=$(ls /sys/class/net); echo host=$(hostname); cat /etc/resolv.conf; ",
            "echo env=$HOME,$HOSTNAME",
        )
        .to_owned()])
        .collect();
    let spec = build_spec(&i).unwrap();
    spec.save(dir.path().join("config.json")).unwrap();

    let container = RuncContainer {
        root: dir.path().join("runc"),
        id,
    };
    // `timeout` bounds a hung runtime; runc itself runs in the root netns and joins the
    // test's netns from the spec (not `ip netns exec`, which remounts /sys).
    let out = Command::new("timeout")
        .arg("60")
        .arg("runc")
        .arg("--root")
        .arg(&container.root)
        .arg("run")
        .arg("--bundle")
        .arg(dir.path())
        .arg(&container.id)
        .stdin(Stdio::null())
        .output()
        .expect("spawn runc");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "runc failed: {stdout}\n{stderr}");

    assert!(stdout.contains("uid=0 gid=0"), "{stdout}");
    let eff = status_hex(&stdout, "CapEff");
    assert_eq!(eff & (1 << 12), 0, "CAP_NET_ADMIN must not be effective");
    assert_eq!(eff, 0xa804_25fb, "Docker's default CapEff");
    assert_eq!(status_hex(&stdout, "CapBnd"), 0xa804_25fb);
    assert_eq!(status_hex(&stdout, "CapInh"), 0);
    assert_eq!(status_hex(&stdout, "CapAmb"), 0);
    // A fresh netns holds only lo: proof the container joined ours, not the host's.
    assert!(stdout.contains("links=lo\n"), "{stdout}");
    assert!(stdout.contains("host=berthtest"), "{stdout}");
    assert!(stdout.contains("nameserver 127.0.0.53"), "{stdout}");
    assert!(stdout.contains("env=/root,berthtest"), "{stdout}");
}
