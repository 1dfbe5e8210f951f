//! ImageStore tests on archives built in memory: load, reuse, failures leaving nothing,
//! resolve, remove, import.

use std::io::Write;
use std::path::Path;

use berth_image::{Digest, ImageError, ImageStore, Reference, RemoveAction};
use berth_store::Store;
use tar::{Builder, EntryType, Header};

fn layer(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = Header::new_gnu();
        h.set_entry_type(EntryType::Regular);
        h.set_mode(0o755);
        h.set_size(data.len() as u64);
        let raw = &mut h.as_old_mut().name;
        raw[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

fn config(diff_ids: &[Digest], cmd: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "created": "2024-01-02T03:04:05Z",
        "config": { "Cmd": [cmd], "Env": ["PATH=/bin"], "ExposedPorts": { "80/tcp": {} } },
        "rootfs": { "type": "layers", "diff_ids": diff_ids.iter().map(Digest::as_str).collect::<Vec<_>>() },
    }))
    .unwrap()
}

fn add(b: &mut Builder<Vec<u8>>, name: &str, data: &[u8]) {
    let mut h = Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, name, data).unwrap();
}

/// A docker-archive: `layers` are (stored bytes, uncompressed tar) pairs.
fn docker_archive(tags: &[&str], layers: &[(Vec<u8>, Vec<u8>)], cmd: &str) -> Vec<u8> {
    let diff_ids: Vec<Digest> = layers
        .iter()
        .map(|(_, raw)| Digest::of_bytes(raw))
        .collect();
    let cfg = config(&diff_ids, cmd);
    let cfg_name = format!("{}.json", Digest::of_bytes(&cfg).hex());
    let mut b = Builder::new(Vec::new());
    add(&mut b, &cfg_name, &cfg);
    let mut names = Vec::new();
    for (i, (stored, _)) in layers.iter().enumerate() {
        let name = format!("l{i}/layer.tar");
        add(&mut b, &name, stored);
        names.push(name);
    }
    let manifest = serde_json::json!([{ "Config": cfg_name, "RepoTags": tags, "Layers": names }]);
    add(&mut b, "manifest.json", manifest.to_string().as_bytes());
    b.into_inner().unwrap()
}

struct Env {
    _tmp: tempfile::TempDir,
    root: std::path::PathBuf,
    db: Store,
    images: ImageStore,
}

fn env() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    Env {
        db: Store::open(&root).unwrap(),
        images: ImageStore::open(&root).unwrap(),
        root,
        _tmp: tmp,
    }
}

fn dir_entries(p: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(p)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn count(db: &Store, table: &str) -> i64 {
    db.conn()
        .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

#[test]
fn loads_docker_archive_with_gzip_layers() {
    let mut e = env();
    let base = layer(&[("bin/sh", b"#!shell")]);
    let top = layer(&[("etc/motd", b"hi")]);
    let archive = docker_archive(
        &["busybox:latest", "localhost:5000/x:1"],
        &[(gzip(&base), base.clone()), (top.clone(), top.clone())],
        "sh",
    );
    let loaded = e.images.load(&mut e.db, &archive[..]).unwrap();
    assert_eq!(loaded.len(), 1);
    let tags: Vec<String> = loaded[0].tags.iter().map(ToString::to_string).collect();
    assert_eq!(tags, ["busybox:latest", "localhost:5000/x:1"]);
    let id = &loaded[0].id;
    assert_eq!(&e.images.resolve(&e.db, "busybox").unwrap(), id);
    assert_eq!(
        &e.images
            .resolve(&e.db, "docker.io/library/busybox:latest")
            .unwrap(),
        id
    );
    assert_eq!(&e.images.resolve(&e.db, &id.hex()[..6]).unwrap(), id);
    assert_eq!(&e.images.resolve(&e.db, id.as_str()).unwrap(), id);
    assert!(matches!(
        e.images.resolve(&e.db, "abc"),
        Err(ImageError::NotFound(_))
    ));
    let dirs = e.images.layer_dirs(&e.db, id).unwrap();
    assert_eq!(dirs.len(), 2);
    assert_eq!(
        std::fs::read(dirs[0].join("etc/motd")).unwrap(),
        b"hi",
        "top-most first"
    );
    assert_eq!(std::fs::read(dirs[1].join("bin/sh")).unwrap(), b"#!shell");
    assert!(e.root.join("images/blobs/sha256").join(id.hex()).exists());
    let cfg = e.images.config(&e.db, id).unwrap();
    assert_eq!(
        cfg.config().as_ref().unwrap().cmd().as_deref().unwrap(),
        ["sh"]
    );
    let list = e.images.list(&e.db).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].size, 9);
    let inspect = serde_json::to_value(e.images.inspect(&e.db, "busybox").unwrap()).unwrap();
    assert_eq!(inspect["Id"], id.as_str());
    assert_eq!(inspect["RepoTags"][0], "busybox:latest");
    assert_eq!(
        inspect["Config"]["ExposedPorts"]["80/tcp"],
        serde_json::json!({})
    );
    assert_eq!(inspect["RootFS"]["Type"], "layers");
    assert_eq!(inspect["Os"], "linux");
}

#[test]
fn loading_twice_reuses_layers() {
    let mut e = env();
    let base = layer(&[("a", b"1")]);
    let archive = docker_archive(&["a:1"], &[(base.clone(), base.clone())], "x");
    let first = e.images.load(&mut e.db, &archive[..]).unwrap();
    let dir = e.images.layer_dirs(&e.db, &first[0].id).unwrap()[0].clone();
    let ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(dir.join("a")).unwrap());
    let second = e.images.load(&mut e.db, &archive[..]).unwrap();
    assert_eq!(first, second);
    assert_eq!(
        std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(dir.join("a")).unwrap()),
        ino
    );
    // A second image on the same base shares the directory.
    let other = docker_archive(&["b:1"], &[(gzip(&base), base.clone())], "y");
    let b = e.images.load(&mut e.db, &other[..]).unwrap();
    assert_eq!(e.images.layer_dirs(&e.db, &b[0].id).unwrap(), vec![dir]);
    assert_eq!(dir_entries(&e.root.join("images/layers")).len(), 1);
    assert_eq!(count(&e.db, "layers"), 1);
}

fn assert_nothing_left(e: &Env) {
    assert!(dir_entries(&e.root.join("images/layers")).is_empty());
    assert!(dir_entries(&e.root.join("images/blobs/sha256")).is_empty());
    assert!(dir_entries(&e.root.join("images/tmp")).is_empty());
    for t in ["images", "image_tags", "layers"] {
        assert_eq!(count(&e.db, t), 0, "{t}");
    }
}

#[test]
fn failed_load_leaves_nothing() {
    let mut e = env();
    let good = layer(&[("ok", b"1")]);
    let evil = layer(&[("../escape", b"x")]);
    let archive = docker_archive(
        &["evil:1"],
        &[(good.clone(), good.clone()), (evil.clone(), evil.clone())],
        "x",
    );
    let err = e.images.load(&mut e.db, &archive[..]).unwrap_err();
    assert!(err.to_string().contains("../escape"), "{err}");
    assert_nothing_left(&e);
    // Wrong diff_id: config says one content, the layer holds another.
    let other = layer(&[("other", b"2")]);
    let mut archive = docker_archive(&["bad:1"], &[(good.clone(), good.clone())], "x");
    archive = {
        // Same manifest, but the layer file swapped for different content.
        let mut b = Builder::new(Vec::new());
        let mut a = tar::Archive::new(&archive[..]);
        for entry in a.entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
            add(
                &mut b,
                &name,
                if name.ends_with("layer.tar") {
                    &other
                } else {
                    &data
                },
            );
        }
        b.into_inner().unwrap()
    };
    let err = e.images.load(&mut e.db, &archive[..]).unwrap_err();
    assert!(matches!(err, ImageError::DiffIdMismatch { .. }), "{err}");
    assert_nothing_left(&e);
    // Not an archive at all.
    let err = e
        .images
        .load(&mut e.db, &layer(&[("x", b"")])[..])
        .unwrap_err();
    assert!(err.to_string().contains("not an image archive"), "{err}");
    assert_nothing_left(&e);
    // Not even a tar file: random bytes, and nothing. The message names the formats and
    // carries no raw input bytes.
    let noise: Vec<u8> = (0..70_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for input in [&noise[..], &[][..]] {
        let err = e.images.load(&mut e.db, input).unwrap_err().to_string();
        assert!(err.contains("not a docker-archive or OCI archive"), "{err}");
        assert!(
            err.chars().all(|c| c.is_ascii_graphic() || c == ' '),
            "printable: {err:?}"
        );
        assert_nothing_left(&e);
    }
}

#[test]
fn remove_untags_then_deletes_unshared_layers() {
    let mut e = env();
    let base = layer(&[("base", b"b")]);
    let top = layer(&[("top", b"t")]);
    let a = docker_archive(
        &["a:1", "a:2"],
        &[(base.clone(), base.clone()), (top.clone(), top.clone())],
        "a",
    );
    let b = docker_archive(&["b:1"], &[(base.clone(), base.clone())], "b");
    let a_id = e.images.load(&mut e.db, &a[..]).unwrap()[0].id.clone();
    let b_id = e.images.load(&mut e.db, &b[..]).unwrap()[0].id.clone();
    let err = e
        .images
        .remove(&mut e.db, &a_id.hex()[..8], false)
        .unwrap_err();
    assert!(matches!(err, ImageError::MultipleTags { .. }), "{err}");
    let out = e.images.remove(&mut e.db, "a:1", false).unwrap();
    assert_eq!(
        out,
        vec![RemoveAction::Untagged(Reference::parse("a:1").unwrap())]
    );
    let out = e.images.remove(&mut e.db, "a:2", false).unwrap();
    let lines: Vec<String> = out.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "Untagged: a:2".to_string(),
            format!("Deleted: {a_id}"),
            format!("Deleted: {}", Digest::of_bytes(&top)),
        ]
    );
    assert_eq!(
        dir_entries(&e.root.join("images/layers")),
        [Digest::of_bytes(&base).hex().to_string()]
    );
    assert!(e.images.layer_dirs(&e.db, &b_id).is_ok());
    assert!(!e.root.join("images/blobs/sha256").join(a_id.hex()).exists());
    let out = e.images.remove(&mut e.db, b_id.as_str(), false).unwrap();
    assert_eq!(out.len(), 3);
    assert_nothing_left(&e);
}

#[test]
fn import_builds_one_layer_image_with_changes() {
    let mut e = env();
    let rootfs = gzip(&layer(&[("bin/app", b"app")]));
    let reference = Reference::parse("imported:v1").unwrap();
    let changes = vec![
        r#"CMD ["/bin/app"]"#.to_string(),
        "ENV A=1".to_string(),
        "EXPOSE 8080".to_string(),
        "WORKDIR /srv".to_string(),
        "USER nobody".to_string(),
        "LABEL k=v".to_string(),
        "ENTRYPOINT /bin/app --x".to_string(),
    ];
    let img = e
        .images
        .import(&mut e.db, &rootfs[..], Some(&reference), &changes)
        .unwrap();
    assert_eq!(img.tags, vec![reference]);
    let inspect = e.images.inspect(&e.db, "imported:v1").unwrap();
    assert_eq!(inspect.config.cmd.as_deref().unwrap(), ["/bin/app"]);
    assert_eq!(
        inspect.config.entrypoint.as_deref().unwrap(),
        ["/bin/sh", "-c", "/bin/app --x"]
    );
    assert_eq!(inspect.config.working_dir, "/srv");
    assert_eq!(inspect.config.user, "nobody");
    assert!(inspect
        .config
        .exposed_ports
        .unwrap()
        .contains_key("8080/tcp"));
    assert_eq!(inspect.config.labels.unwrap()["k"], "v");
    assert_eq!(inspect.root_fs.layers.len(), 1);
    let dirs = e.images.layer_dirs(&e.db, &img.id).unwrap();
    assert_eq!(std::fs::read(dirs[0].join("bin/app")).unwrap(), b"app");
    let err = e
        .images
        .import(&mut e.db, &rootfs[..], None, &["FROM scratch".to_string()])
        .unwrap_err();
    assert!(matches!(err, ImageError::Change(_)), "{err}");
}

#[test]
fn leftovers_of_dead_loads_are_swept_under_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = Store::open(dir.path()).unwrap();
    let images = ImageStore::open(dir.path()).unwrap();
    let root = dir.path().join("images");
    let dead_unpack = root.join("layers/.tmp-abc");
    let dead_remove = root.join("layers/.del-abc");
    // Pid 4194304 is above the kernel's pid_max limit: never a live process.
    let dead_stage = root.join("tmp/.load-4194304-xyz");
    let live_stage = root.join(format!("tmp/.load-{}-xyz", std::process::id()));
    for d in [&dead_unpack, &dead_remove, &dead_stage, &live_stage] {
        std::fs::create_dir_all(d).unwrap();
    }
    // Any operation that takes the store lock sweeps; removing an unknown image does.
    assert!(images.remove(&mut db, "nothing:here", false).is_err());
    assert!(!dead_unpack.exists() && !dead_remove.exists() && !dead_stage.exists());
    assert!(
        live_stage.exists(),
        "a live process's staging dir must stay"
    );
}
