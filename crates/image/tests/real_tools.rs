//! Loads archives made by real tools: a busybox-static rootfs packed with umoci (one
//! layer with the files, one with a whiteout), exported by skopeo as docker-archive and
//! oci-archive. Skips, saying why, when a tool is missing.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use berth_image::ImageStore;
use berth_store::Store;

fn run(cmd: &str, args: &[&str], cwd: &Path) {
    let out = Command::new(cmd)
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn missing_tool() -> Option<String> {
    for tool in ["umoci", "skopeo"] {
        if Command::new(tool).arg("--version").output().is_err() {
            return Some(format!("{tool} is not installed"));
        }
    }
    let busybox = Path::new("/bin/busybox");
    if !busybox.exists() {
        return Some("busybox-static (/bin/busybox) is not installed".into());
    }
    if !rustix::process::geteuid().is_root() {
        return Some("needs root (whiteout device nodes, chown)".into());
    }
    None
}

/// Builds `oci:t` under `dir` with umoci unpack/repack (one layer with busybox, one
/// deleting `/etc/removed`) and exports it as `d.tar` (docker-archive, tag busybox:test)
/// and `o.tar` (oci-archive, ref name localhost/bb:oci). (`umoci insert` of 0.4.7 writes
/// truncated tars, which berth, like GNU tar, refuses.)
fn build_archives(dir: &Path) {
    run("umoci", &["init", "--layout", "oci"], dir);
    run("umoci", &["new", "--image", "oci:t"], dir);
    run("umoci", &["unpack", "--image", "oci:t", "bundle"], dir);
    let rootfs = dir.join("bundle/rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::create_dir_all(rootfs.join("etc")).unwrap();
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", rootfs.join("bin/sh")).unwrap();
    std::fs::write(rootfs.join("etc/removed"), b"gone").unwrap();
    run(
        "umoci",
        &["repack", "--refresh-bundle", "--image", "oci:t", "bundle"],
        dir,
    );
    std::fs::remove_file(rootfs.join("etc/removed")).unwrap();
    run("umoci", &["repack", "--image", "oci:t", "bundle"], dir);
    let cfg = [
        "config",
        "--image",
        "oci:t",
        "--config.cmd",
        "sh",
        "--config.env",
        "A=1",
    ];
    run("umoci", &cfg, dir);
    let copy = |dest: &str| {
        run(
            "skopeo",
            &["--insecure-policy", "copy", "oci:oci:t", dest],
            dir,
        )
    };
    copy("docker-archive:d.tar:busybox:test");
    copy("oci-archive:o.tar:localhost/bb:oci");
}

#[test]
fn loads_umoci_image_via_skopeo_docker_and_oci_archives() {
    if let Some(reason) = missing_tool() {
        berth_sys::testing::skip_or_fail(&reason);
        return;
    }
    let work = tempfile::tempdir().unwrap();
    build_archives(work.path());
    let root = work.path().join("state");
    let mut db = Store::open(&root).unwrap();
    let images = ImageStore::open(&root).unwrap();

    let d = std::fs::File::open(work.path().join("d.tar")).unwrap();
    let docker = images.load(&mut db, d).unwrap();
    assert_eq!(docker.len(), 1);
    assert_eq!(docker[0].tags[0].to_string(), "busybox:test");
    let o = std::fs::File::open(work.path().join("o.tar")).unwrap();
    let oci = images.load(&mut db, o).unwrap();
    assert_eq!(oci[0].tags[0].to_string(), "localhost/bb:oci");
    // Same config, same image: the two archives are one image with two tags.
    assert_eq!(docker[0].id, oci[0].id);
    let layers_dir = root.join("images/layers");
    assert_eq!(
        std::fs::read_dir(&layers_dir).unwrap().count(),
        2,
        "layers shared"
    );

    let id = images.resolve(&db, "busybox:test").unwrap();
    let dirs = images.layer_dirs(&db, &id).unwrap();
    assert_eq!(dirs.len(), 2);
    let whiteout = std::fs::symlink_metadata(dirs[0].join("etc/removed")).unwrap();
    assert!(
        whiteout.file_type().is_char_device(),
        "top layer holds the whiteout"
    );
    let bb = std::fs::metadata(dirs[1].join("bin/busybox")).unwrap();
    assert!(
        bb.permissions().mode() & 0o111 != 0,
        "busybox stays executable"
    );
    let sh = std::fs::read_link(dirs[1].join("bin/sh")).unwrap();
    assert_eq!(sh, Path::new("busybox"));
    let out = Command::new(dirs[1].join("bin/busybox"))
        .arg("true")
        .status()
        .unwrap();
    assert!(out.success(), "the unpacked busybox runs");

    let inspect = images.inspect(&db, "localhost/bb:oci").unwrap();
    assert_eq!(inspect.config.cmd.as_deref().unwrap(), ["sh"]);
    assert!(inspect.config.env.unwrap().contains(&"A=1".to_string()));
    assert_eq!(inspect.repo_tags, ["busybox:test", "localhost/bb:oci"]);

    // Loading again changes nothing on disk.
    let d = std::fs::File::open(work.path().join("d.tar")).unwrap();
    assert_eq!(images.load(&mut db, d).unwrap(), docker);
    assert_eq!(std::fs::read_dir(&layers_dir).unwrap().count(), 2);
    assert_eq!(images.list(&db).unwrap().len(), 1);
}
