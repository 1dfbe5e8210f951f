//! Images: load docker/OCI archives (file and stdin), import with --change, images/rmi/
//! image inspect, rmi refused while a container uses the image, escaping archives refused
//! with nothing written outside the store.

use std::os::unix::fs::MetadataExt;
use std::process::Stdio;

use berth_tests::{escaping_archive, fixture_images, require_root, Escape, SandboxHost};

fn path(p: &std::path::Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn load_docker_archive_lists_and_inspects_web() {
    require_root!();
    let host = SandboxHost::new();
    let out = host
        .cli(&["load", "-i", path(&fixture_images().docker_archive)])
        .ok();
    assert_eq!(out, "Loaded image: web:latest");
    let table = host.cli(&["images"]).ok();
    let mut lines = table.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"],
        "{table}"
    );
    let row: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(&row[..2], ["web", "latest"], "{table}");
    let ids = host.cli(&["images", "-q"]).ok();
    assert_eq!(ids.lines().count(), 1, "{ids}");
    assert!(
        row[2].starts_with(ids.trim()) || ids.trim().starts_with(row[2]),
        "{table} vs {ids}"
    );

    let text = host.cli(&["image", "inspect", "web"]).ok();
    let v: serde_json::Value = serde_json::from_str(&text).expect("image inspect prints JSON");
    let img = &v[0];
    assert!(
        img["Id"]
            .as_str()
            .unwrap_or_default()
            .starts_with("sha256:"),
        "{text}"
    );
    assert_eq!(
        img["Config"]["Cmd"],
        serde_json::json!(["/bin/start-web"]),
        "{text}"
    );
    assert!(
        img["Config"]["ExposedPorts"].get("80/tcp").is_some(),
        "{text}"
    );
    let tags = img["RepoTags"].to_string();
    assert!(tags.contains("web:latest"), "{text}");
}

#[test]
fn load_oci_archive_and_from_stdin() {
    require_root!();
    let host = SandboxHost::new();
    let out = host
        .cli(&["load", "-i", path(&fixture_images().oci_archive)])
        .ok();
    assert!(out.contains("Loaded image: web:latest"), "{out}");
    assert_eq!(
        host.cli(&["run", "--rm", "web", "echo", "from-oci"]).ok(),
        "from-oci"
    );
    host.cli(&["rmi", "web"]).ok();
    assert_eq!(host.cli(&["images", "-q"]).ok(), "");

    let archive = std::fs::File::open(&fixture_images().docker_archive).unwrap();
    let mut cmd = host.berth_command(&["load"]);
    cmd.stdin(Stdio::from(archive));
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Loaded image: web:latest"));
}

#[test]
fn import_rootfs_with_changes() {
    require_root!();
    let host = SandboxHost::new();
    let rootfs = path(&fixture_images().rootfs_tar);
    let id = host
        .cli(&[
            "import",
            "--change",
            r#"CMD ["/bin/echo","imported"]"#,
            "--change",
            "EXPOSE 8080/tcp",
            rootfs,
            "imp:1",
        ])
        .ok();
    assert!(
        id.trim_start_matches("sha256:").len() >= 12,
        "import prints the id: {id}"
    );
    let text = host.cli(&["image", "inspect", "imp:1"]).ok();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        v[0]["Config"]["Cmd"],
        serde_json::json!(["/bin/echo", "imported"]),
        "{text}"
    );
    assert!(
        v[0]["Config"]["ExposedPorts"].get("8080/tcp").is_some(),
        "{text}"
    );
    assert_eq!(host.cli(&["run", "--rm", "imp:1"]).ok(), "imported");

    let file = std::fs::File::open(rootfs).unwrap();
    let mut cmd = host.berth_command(&["import", "-", "imp:stdin"]);
    cmd.stdin(Stdio::from(file));
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        host.cli(&["run", "--rm", "imp:stdin", "echo", "ok"]).ok(),
        "ok"
    );
}

#[test]
fn rmi_is_refused_while_a_container_uses_the_image() {
    require_root!();
    let host = SandboxHost::with_web();
    host.cli(&["create", "--name", "user1", "web"]).ok();
    let err = host.cli(&["rmi", "web"]).fails();
    assert!(err.starts_with("berth: "), "{err}");
    assert!(
        err.contains("user1"),
        "the refusal names the container: {err}"
    );
    assert_eq!(host.cli(&["images", "-q"]).ok().lines().count(), 1);
    host.cli(&["rm", "user1"]).ok();
    host.cli(&["rmi", "web"]).ok();
    assert_eq!(host.cli(&["images", "-q"]).ok(), "");
    let err = host.cli(&["rmi", "web"]).fails();
    assert!(err.starts_with("berth: "), "{err}");
    let err = host.cli(&["image", "inspect", "nosuch"]).fails();
    assert!(err.starts_with("berth: "), "{err}");
}

/// Loads an escaping archive and, if the load is accepted, creates a container from it.
/// Returns whether berth refused at either step.
fn try_escape(host: &SandboxHost, kind: Escape, target: &std::path::Path) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("evil.tar");
    escaping_archive(kind, target, &archive).unwrap();
    let load = host.cli(&["load", "-i", path(&archive)]);
    if !load.success() {
        assert!(load.stderr.starts_with("berth: "), "{load}");
        assert!(
            !host.cli(&["images"]).ok().contains("evil"),
            "a refused load left an image"
        );
        return true;
    }
    let create = host.cli(&[
        "create",
        "--name",
        &format!("evil-{kind:?}").to_lowercase(),
        "evil",
    ]);
    let _ = host.cli(&["rm", "-f", &format!("evil-{kind:?}").to_lowercase()]);
    let _ = host.cli(&["rmi", "-f", "evil"]);
    !create.success()
}

#[test]
fn escaping_archives_write_nothing_outside() {
    require_root!();
    let host = SandboxHost::new();
    let outside = tempfile::tempdir_in("/var/tmp").unwrap();
    for kind in [Escape::DotDot, Escape::Absolute, Escape::Symlink] {
        let target = outside.path().join(format!("pwned-{kind:?}"));
        let refused = try_escape(&host, kind, &target);
        assert!(
            !target.exists(),
            "{kind:?}: the layer wrote {}",
            target.display()
        );
        if kind == Escape::DotDot {
            assert!(refused, "a `../` layer entry must be refused");
        }
    }
    let victim = outside.path().join("victim");
    std::fs::write(&victim, "secret\n").unwrap();
    let refused = try_escape(&host, Escape::Hardlink, &victim);
    assert!(
        refused,
        "a hard link to a file outside the layer must be refused"
    );
    assert_eq!(
        std::fs::metadata(&victim).unwrap().nlink(),
        1,
        "a hard link to the host file was made"
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "secret\n");
}
