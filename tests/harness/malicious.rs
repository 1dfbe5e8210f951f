//! Malicious docker-archives whose layer tries to write outside the rootfs it is unpacked
//! into, for the image-escape tests. Built with the `tar` crate's raw headers, because its
//! safe path setters (rightly) refuse `..` and absolute names.

use std::path::Path;

use sha2::{Digest, Sha256};

/// How the layer tries to escape. `target` is always a host path the test owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// A regular file named `../../…/<target>`.
    DotDot,
    /// A regular file with the absolute name `<target>`.
    Absolute,
    /// A symlink `evil -> <dir of target>` followed by a file `evil/<file name of target>`.
    Symlink,
    /// A hard link `leak` whose link name is `../../…/<target>` (an existing host file).
    Hardlink,
}

/// Writes a docker-archive tagged `evil:latest` to `out` whose single layer attempts
/// `kind` against `target` (an absolute host path). The config's diff_ids are correct, so
/// only the escape itself should make an engine refuse it.
///
/// Errors: I/O on `out`.
pub fn escaping_archive(kind: Escape, target: &Path, out: &Path) -> anyhow::Result<()> {
    let layer = layer_tar(kind, target)?;
    let diff_id = format!("sha256:{}", hex::encode(Sha256::digest(&layer)));
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": { "Cmd": ["/bin/sh"] },
        "rootfs": { "type": "layers", "diff_ids": [diff_id] },
    })
    .to_string();
    let config_name = format!("{}.json", hex::encode(Sha256::digest(config.as_bytes())));
    let manifest = serde_json::json!([{
        "Config": config_name,
        "RepoTags": ["evil:latest"],
        "Layers": ["layer.tar"],
    }])
    .to_string();
    let mut ar = tar::Builder::new(std::fs::File::create(out)?);
    append_file(&mut ar, &config_name, config.as_bytes())?;
    append_file(&mut ar, "layer.tar", &layer)?;
    append_file(&mut ar, "manifest.json", manifest.as_bytes())?;
    ar.into_inner()?;
    Ok(())
}

fn layer_tar(kind: Escape, target: &Path) -> anyhow::Result<Vec<u8>> {
    let target = target.to_str().expect("utf-8 target path");
    let dotdot = format!("{}{}", "../".repeat(12), target.trim_start_matches('/'));
    let mut ar = tar::Builder::new(Vec::new());
    raw_entry(&mut ar, tar::EntryType::Directory, "bin/", "", b"")?;
    match kind {
        Escape::DotDot => raw_entry(&mut ar, tar::EntryType::Regular, &dotdot, "", b"pwned\n")?,
        Escape::Absolute => raw_entry(&mut ar, tar::EntryType::Regular, target, "", b"pwned\n")?,
        Escape::Symlink => {
            let t = Path::new(target);
            let dir = t
                .parent()
                .and_then(|d| d.to_str())
                .expect("target has a parent");
            let file = t
                .file_name()
                .and_then(|f| f.to_str())
                .expect("target has a name");
            raw_entry(&mut ar, tar::EntryType::Symlink, "evil", dir, b"")?;
            raw_entry(
                &mut ar,
                tar::EntryType::Regular,
                &format!("evil/{file}"),
                "",
                b"pwned\n",
            )?;
        }
        Escape::Hardlink => raw_entry(&mut ar, tar::EntryType::Link, "leak", &dotdot, b"")?,
    }
    Ok(ar.into_inner()?)
}

/// Appends an entry whose name and link name are written verbatim (both under 100 bytes).
fn raw_entry(
    ar: &mut tar::Builder<Vec<u8>>,
    kind: tar::EntryType,
    name: &str,
    link: &str,
    data: &[u8],
) -> anyhow::Result<()> {
    anyhow::ensure!(
        name.len() < 100 && link.len() < 100,
        "name too long for a raw header: {name}"
    );
    let mut h = tar::Header::new_old();
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
    h.set_entry_type(kind);
    h.set_mode(if kind == tar::EntryType::Directory {
        0o755
    } else {
        0o644
    });
    h.set_size(data.len() as u64);
    h.set_mtime(0);
    h.set_cksum();
    ar.append(&h, data)?;
    Ok(())
}

fn append_file(
    ar: &mut tar::Builder<std::fs::File>,
    name: &str,
    data: &[u8],
) -> anyhow::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_path(name)?;
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_cksum();
    ar.append(&h, data)?;
    Ok(())
}

/// Writes to `out` a flat rootfs tar (for `berth import`) made of `base` (a rootfs tar such
/// as the fixture's) without its entries under each linked name, plus a symlink per
/// `(name, target)` pair: `("dev", "/tmp/x")` gives `dev -> /tmp/x`. The runtime mounts onto
/// such names, so an engine that follows them writes onto the host.
///
/// Errors: I/O on `base` or `out`, or a name too long for a raw header.
pub fn linked_rootfs_archive(
    base: &Path,
    links: &[(&str, &str)],
    out: &Path,
) -> anyhow::Result<()> {
    let mut src = tar::Archive::new(std::fs::File::open(base)?);
    let mut ar = tar::Builder::new(Vec::new());
    for entry in src.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.to_string_lossy().into_owned();
        let name = path.trim_start_matches("./");
        let linked = links.iter().any(|(l, _)| {
            name == *l || name.trim_end_matches('/') == *l || name.starts_with(&format!("{l}/"))
        });
        if linked {
            continue;
        }
        let header = entry.header().clone();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data)?;
        ar.append(&header, data.as_slice())?;
    }
    for (name, target) in links {
        raw_entry(&mut ar, tar::EntryType::Symlink, name, target, b"")?;
    }
    std::fs::write(out, ar.into_inner()?)?;
    Ok(())
}
