//! Container and image safety (issue 11): an image cannot make `run` write outside its root
//! filesystem, Docker's default seccomp profile and `--security-opt`, and the validation of
//! options written into a container's hosts and resolv.conf files.

use std::collections::BTreeMap;
use std::path::Path;

use berth_tests::{fixture_images, linked_rootfs_archive, require_root, SandboxHost};

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Every file under `dir` (relative name, kind and content), to compare before and after.
fn listing(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let meta = std::fs::symlink_metadata(e.path()).unwrap();
        let what = if meta.file_type().is_symlink() {
            format!("link {}", std::fs::read_link(e.path()).unwrap().display())
        } else if meta.is_dir() {
            "dir".to_string()
        } else {
            format!(
                "file {:?}",
                std::fs::read_to_string(e.path()).unwrap_or_default()
            )
        };
        out.insert(e.file_name().to_string_lossy().into_owned(), what);
    }
    out
}

/// Imports the fixture rootfs with `links` replacing those names, tagged `tag`.
fn import_linked(host: &SandboxHost, links: &[(&str, &str)], tag: &str) {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("linked.tar");
    linked_rootfs_archive(&fixture_images().rootfs_tar, links, &archive).unwrap();
    host.cli(&[
        "import",
        "--change",
        r#"CMD ["/bin/sh"]"#,
        path(&archive),
        tag,
    ])
    .ok();
}

#[test]
fn image_links_on_mount_targets_never_reach_the_host() {
    require_root!();
    let host = SandboxHost::new();
    let dev = tempfile::tempdir_in("/var/tmp").unwrap();
    let etc = tempfile::tempdir_in("/var/tmp").unwrap();
    std::fs::write(dev.path().join("ptmx"), "host ptmx\n").unwrap();
    std::fs::write(etc.path().join("keep"), "host file\n").unwrap();
    let (dev_before, etc_before) = (listing(dev.path()), listing(etc.path()));
    import_linked(
        &host,
        &[("dev", path(dev.path())), ("etc", path(etc.path()))],
        "evil:links",
    );
    // Docker's init layer: the links are hidden by real entries in the container's layer,
    // and the container runs normally with its own /dev and /etc files.
    let out = host
        .cli(&[
            "run",
            "--rm",
            "--net",
            "none",
            "--hostname",
            "safe",
            "evil:links",
            "sh",
            "-c",
            "test -d /dev -a ! -L /dev -a -d /etc -a ! -L /etc && cat /etc/hostname && ls /dev",
        ])
        .ok();
    assert!(out.starts_with("safe"), "{out}");
    assert!(out.contains("null"), "the runtime's /dev is there: {out}");
    assert_eq!(
        listing(dev.path()),
        dev_before,
        "host dir behind `dev` touched"
    );
    assert_eq!(
        listing(etc.path()),
        etc_before,
        "host dir behind `etc` touched"
    );
}

#[test]
fn workdir_through_an_image_link_stays_inside_the_rootfs() {
    require_root!();
    let host = SandboxHost::new();
    let app = tempfile::tempdir_in("/var/tmp").unwrap();
    import_linked(&host, &[("app", path(app.path()))], "evil:workdir");
    // `app` points at a path that does not exist inside the image: refused, nothing created.
    let err = host
        .cli(&[
            "run",
            "--rm",
            "--net",
            "none",
            "-w",
            "/app/sub",
            "evil:workdir",
            "true",
        ])
        .code(125);
    assert!(
        err.contains("symbolic link to a missing directory"),
        "{err}"
    );
    assert!(
        listing(app.path()).is_empty(),
        "host dir behind `app` touched"
    );
    // A workdir through a link that resolves inside the image works, and is made there.
    let out = host
        .cli(&[
            "run",
            "--rm",
            "--net",
            "none",
            "-w",
            "/bin/../www/new",
            "evil:workdir",
            "pwd",
        ])
        .ok();
    assert_eq!(out, "/www/new");
    assert!(listing(app.path()).is_empty());
}
