//! Tests of the harness itself that need no berth binary: namespaces, the client veth,
//! fixture images and the malicious archives.

use std::io::Read;
use std::path::Path;

use crate::{escaping_archive, fixture_images, Client, Escape, Netns};

#[test]
fn netns_and_client_carry_traffic_and_vanish_on_drop() {
    if !crate::is_root() {
        crate::skip!("needs root");
    }
    let host = Netns::new(&format!("berth-t-{}", crate::random_suffix(8))).unwrap();
    let client = Client::new(host.name(), 3).unwrap();
    assert_eq!(client.host_addr(), "10.77.3.1");
    let ping = client.sh("busybox ping -c1 -W2 10.77.3.1");
    assert!(ping.success(), "{ping}");
    let (hpath, cpath) = (host.path(), client.netns().path());
    assert!(hpath.exists() && cpath.exists());
    drop(client);
    drop(host);
    assert!(!hpath.exists(), "{} left behind", hpath.display());
    assert!(!cpath.exists(), "{} left behind", cpath.display());
}

#[test]
fn fixture_images_are_built_with_the_web_image_config() {
    if !crate::is_root() {
        crate::skip!("needs root (umoci keeps ownership)");
    }
    let fx = fixture_images();
    let manifest = entry(&fx.docker_archive, "manifest.json");
    assert!(manifest.contains("web:latest"), "{manifest}");
    let index = entry(&fx.oci_archive, "index.json");
    assert!(
        index.contains("\"org.opencontainers.image.ref.name\":\"web:latest\""),
        "{index}"
    );
    let names = names(&fx.rootfs_tar);
    for want in [
        "./bin/busybox",
        "./bin/httpd",
        "./bin/start-web",
        "./etc/passwd",
        "./www",
    ] {
        assert!(
            names.iter().any(|n| n.trim_end_matches('/') == want),
            "{want} missing: {names:?}"
        );
    }
}

#[test]
fn escaping_archives_carry_the_raw_escape_entries() {
    let dir = tempfile::tempdir().unwrap();
    let target = Path::new("/var/tmp/berth-escape-x/pwned");
    for kind in [
        Escape::DotDot,
        Escape::Absolute,
        Escape::Symlink,
        Escape::Hardlink,
    ] {
        let out = dir.path().join("evil.tar");
        escaping_archive(kind, target, &out).unwrap();
        let layer = entry_bytes(&out, "layer.tar");
        let mut ar = tar::Archive::new(&layer[..]);
        let entries: Vec<(String, String)> = ar
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
                let link = e
                    .link_name_bytes()
                    .map(|l| String::from_utf8_lossy(&l).into_owned());
                (name, link.unwrap_or_default())
            })
            .collect();
        let hit = entries.iter().any(|(n, l)| match kind {
            Escape::DotDot => n.starts_with("../") && n.ends_with("var/tmp/berth-escape-x/pwned"),
            Escape::Absolute => n == "/var/tmp/berth-escape-x/pwned",
            Escape::Symlink => n == "evil" && l == "/var/tmp/berth-escape-x",
            Escape::Hardlink => n == "leak" && l.starts_with("../"),
        });
        assert!(hit, "{kind:?}: {entries:?}");
    }
}

fn entry_bytes(archive: &Path, name: &str) -> Vec<u8> {
    let mut ar = tar::Archive::new(std::fs::File::open(archive).unwrap());
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_str() == Some(name) {
            let mut buf = Vec::new();
            e.read_to_end(&mut buf).unwrap();
            return buf;
        }
    }
    panic!("{name} not in {}", archive.display());
}

fn entry(archive: &Path, name: &str) -> String {
    String::from_utf8(entry_bytes(archive, name)).unwrap()
}

fn names(archive: &Path) -> Vec<String> {
    let mut ar = tar::Archive::new(std::fs::File::open(archive).unwrap());
    ar.entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect()
}

/// A stand-in for berth: `leak` starts a detached sleep in the sandbox netns and mounts a
/// tmpfs under the runroot, exactly what a buggy engine could leave behind.
const FAKE_BERTH: &str = r#"#!/bin/sh
root=$2 runroot=$4
shift 4
case "$1" in
  ps) exit 0 ;;
  leak)
    setsid sleep 300 </dev/null >/dev/null 2>&1 &
    echo "$!" > "$root/leaked.pid"
    mkdir -p "$runroot/m" && mount -t tmpfs berth-test "$runroot/m" ;;
  *) echo "berth: unknown command $1" >&2; exit 125 ;;
esac
"#;

#[test]
fn teardown_fails_on_leaks_and_still_cleans_them() {
    use std::os::unix::fs::PermissionsExt;
    if !crate::is_root() {
        crate::skip!("needs root");
    }
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("berth");
    std::fs::write(&fake, FAKE_BERTH).unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let host = crate::SandboxHost::with_binary(fake);
    host.cli(&["leak"]).ok();
    let pid = std::fs::read_to_string(host.root().join("leaked.pid")).unwrap();
    let mount = host.runroot().join("m");
    let ns = host.netns().path();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(host)));
    let msg = caught.expect_err("leaks must fail the test");
    let msg = msg.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        msg.contains(&format!("leaked process {}", pid.trim())),
        "{msg}"
    );
    assert!(msg.contains("leaked mount"), "{msg}");
    assert!(
        !Path::new(&format!("/proc/{}", pid.trim())).exists(),
        "leaked sleep not killed"
    );
    assert!(!mount.exists(), "tmpfs not unmounted / dirs not removed");
    assert!(!ns.exists(), "netns not deleted");
}
