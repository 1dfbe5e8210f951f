//! Reading image archives into verified, not-yet-committed images.
//!
//! Two formats, told apart by their files:
//! - docker-archive (`docker save`, `skopeo copy ... docker-archive:`): `manifest.json`
//!   listing `Config`, `RepoTags` and `Layers` (Docker's `image/spec/v1.2.md`, "Combined
//!   Image JSON + Filesystem Changeset Format"). Duplicate layers may be symlinks.
//! - OCI image layout (`skopeo copy ... oci-archive:`): `oci-layout` + `index.json` +
//!   `blobs/<alg>/<hex>` (OCI image spec `image-layout.md`); tags from the
//!   `org.opencontainers.image.ref.name` (or containerd's `io.containerd.image.name`)
//!   annotation.
//!
//! The outer tar is staged file by file into a private temp directory (never by its own
//! paths, so its names cannot escape); every blob digest and size is checked here; the
//! diff_ids are checked while layers are unpacked ([`crate::ImageStore`]).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest};
use serde::Deserialize;

use crate::compression::decompress;
use crate::digest::{Digest, DigestError, HashingReader};
use crate::reference::{Reference, ReferenceError};

/// Largest JSON document (manifest, index, config) read into memory, in bytes.
const MAX_JSON: u64 = 32 << 20;
/// How many symlink hops are followed between archive members.
const MAX_LINK_HOPS: usize = 16;

/// Errors of reading an image archive.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The archive could not be read or staged.
    #[error("cannot read the image archive: {source}; is it a complete tar file?")]
    Read {
        /// The I/O error.
        source: io::Error,
    },
    /// The input is not a tar stream (plain, gzip or zstd) at all.
    #[error("not a docker-archive or OCI archive: {what}; give a file that `docker save`, `podman save` or `skopeo copy ... docker-archive:FILE` (or `oci-archive:FILE`) wrote")]
    NotTar {
        /// What was found instead.
        what: &'static str,
    },
    /// Neither `manifest.json` nor `oci-layout` + `index.json` was found.
    #[error("not an image archive: neither manifest.json (docker-archive) nor oci-layout and index.json (OCI layout) found; use docker save or skopeo copy to produce one")]
    Unrecognised,
    /// A file the manifest names is missing.
    #[error("image archive is missing {name:?}; the archive is incomplete")]
    Missing {
        /// The member name.
        name: String,
    },
    /// A JSON document is malformed.
    #[error("invalid JSON in {name:?}: {reason}")]
    Json {
        /// The member name.
        name: String,
        /// The parser's message.
        reason: String,
    },
    /// A blob's content does not match its digest or size.
    #[error("{name:?} does not match its digest: expected {expected}, found {actual}; the archive is corrupt or was tampered with")]
    Mismatch {
        /// The member name.
        name: String,
        /// What the manifest/config says.
        expected: String,
        /// What the content hashes to.
        actual: String,
    },
    /// Manifest and config disagree on the number of layers.
    #[error(
        "image config {config} lists {diff_ids} diff_ids but the manifest has {layers} layers"
    )]
    LayerCount {
        /// The config's id.
        config: String,
        /// Number of rootfs.diff_ids.
        diff_ids: usize,
        /// Number of layers in the manifest.
        layers: usize,
    },
    /// A digest is malformed or not sha256.
    #[error(transparent)]
    Digest(#[from] DigestError),
    /// A tag in the archive is not a valid reference.
    #[error("invalid tag {tag:?} in the archive: {source}")]
    Tag {
        /// The tag text.
        tag: String,
        /// Why it is invalid.
        source: ReferenceError,
    },
    /// An OCI index has no manifest for this host's platform.
    #[error("no image for linux/{arch} in the OCI index {name:?}; load an archive built for this platform")]
    NoPlatform {
        /// The index member name.
        name: String,
        /// This host's architecture (GOARCH naming).
        arch: String,
    },
}

/// An image read from an archive, verified except for its diff_ids.
#[derive(Debug)]
pub(crate) struct PendingImage {
    /// `sha256` of `config_raw`: the image id.
    pub(crate) id: Digest,
    /// The config JSON exactly as shipped (its digest is the id).
    pub(crate) config_raw: String,
    /// Parsed config.
    pub(crate) config: ImageConfiguration,
    /// Layers, base first.
    pub(crate) layers: Vec<PendingLayer>,
    /// Tags to point at this image.
    pub(crate) tags: Vec<Reference>,
}

/// One layer blob (possibly compressed) and the diff_id its uncompressed tar must have.
#[derive(Debug)]
pub(crate) struct PendingLayer {
    pub(crate) blob: PathBuf,
    pub(crate) diff_id: Digest,
}

/// Size of a tar header block (POSIX ustar, `pax(1)`).
const TAR_BLOCK: usize = 512;

/// Reads the first tar block of `reader` and checks that it is one: all zeros (an empty
/// archive) or a header whose checksum (bytes 148..156, octal) matches the sum of its bytes
/// with that field counted as spaces (POSIX ustar). Returns a reader of the whole stream.
///
/// Errors: [`ArchiveError::NotTar`] for empty, short or non-tar input; [`ArchiveError::Read`].
fn tar_start<'a>(mut reader: Box<dyn Read + 'a>) -> Result<impl Read + 'a, ArchiveError> {
    let mut block = vec![0u8; TAR_BLOCK];
    let mut filled = 0;
    while filled < TAR_BLOCK {
        match reader.read(&mut block[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(ArchiveError::Read {
                    source: printable(e),
                })
            }
        }
    }
    let what = if filled == 0 {
        Some("the input is empty")
    } else if filled < TAR_BLOCK {
        Some("the input is shorter than one tar block (512 bytes)")
    } else if block.iter().all(|b| *b == 0) {
        None
    } else {
        let stored = std::str::from_utf8(&block[148..156])
            .ok()
            .map(|s| s.trim_matches(|c: char| c == '\0' || c == ' '))
            .and_then(|s| u32::from_str_radix(s, 8).ok());
        let sum: u32 = block
            .iter()
            .enumerate()
            .map(|(i, b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u32::from(*b)
                }
            })
            .sum();
        (stored != Some(sum))
            .then_some("the input does not start with a tar header (nor gzip or zstd data)")
    };
    match what {
        Some(what) => Err(ArchiveError::NotTar { what }),
        None => Ok(io::Cursor::new(block).chain(reader)),
    }
}

/// `e` with its message made printable: the tar reader quotes raw header bytes in some
/// errors; control and non-ASCII characters are escaped and the text is cut at 200 characters,
/// so a broken archive never writes binary to the terminal.
fn printable(e: io::Error) -> io::Error {
    let text = e.to_string();
    if text.chars().all(|c| c.is_ascii_graphic() || c == ' ') {
        return e;
    }
    let mut clean: String = text.escape_default().collect();
    if clean.len() > 200 {
        clean.truncate(200);
        clean.push_str("...");
    }
    io::Error::new(e.kind(), clean)
}

/// The members of an archive, staged as numbered files in a private temp directory.
pub(crate) struct Staged {
    dir: tempfile::TempDir,
    files: HashMap<String, PathBuf>,
    links: HashMap<String, String>,
}

impl Staged {
    /// Reads the (optionally gzip/zstd compressed) tar `reader` into a temp dir under
    /// `tmp_parent`. Only regular files and symlinks are kept; the temp dir goes on drop.
    pub(crate) fn extract(reader: impl Read, tmp_parent: &Path) -> Result<Self, ArchiveError> {
        let read = |source| ArchiveError::Read {
            source: printable(source),
        };
        // The pid in the name lets a later process tell a dead load's leftovers from a live
        // one's (see `ImageStore::sweep_leftovers`).
        let prefix = format!(".load-{}-", std::process::id());
        let dir = tempfile::Builder::new()
            .prefix(&prefix)
            .tempdir_in(tmp_parent)
            .map_err(read)?;
        let (reader, _) = decompress(reader).map_err(read)?;
        let reader = tar_start(reader)?;
        let mut archive = tar::Archive::new(reader);
        let mut staged = Self {
            dir,
            files: HashMap::new(),
            links: HashMap::new(),
        };
        for entry in archive.entries().map_err(read)? {
            let mut entry = entry.map_err(read)?;
            let Some(name) = member_name(&entry.path().map_err(read)?) else {
                continue;
            };
            match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let path = staged.dir.path().join(staged.files.len().to_string());
                    let mut file = File::create(&path).map_err(read)?;
                    io::copy(&mut entry, &mut file).map_err(read)?;
                    staged.files.insert(name, path);
                }
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    let Some(target) = entry.link_name().map_err(read)? else {
                        continue;
                    };
                    let base = match entry.header().entry_type() {
                        tar::EntryType::Symlink => Path::new(&name)
                            .parent()
                            .unwrap_or(Path::new(""))
                            .join(target),
                        _ => target.into_owned(),
                    };
                    if let Some(resolved) = member_name(&base) {
                        staged.links.insert(name, resolved);
                    }
                }
                _ => {}
            }
        }
        Ok(staged)
    }

    /// The staged file of member `name`, following symlinks between members.
    pub(crate) fn path(&self, name: &str) -> Result<&Path, ArchiveError> {
        let mut key = member_name(Path::new(name)).unwrap_or_default();
        for _ in 0..MAX_LINK_HOPS {
            if let Some(path) = self.files.get(&key) {
                return Ok(path);
            }
            match self.links.get(&key) {
                Some(next) => key = next.clone(),
                None => break,
            }
        }
        Err(ArchiveError::Missing {
            name: name.to_string(),
        })
    }

    fn has(&self, name: &str) -> bool {
        self.path(name).is_ok()
    }

    /// Reads member `name` (at most [`MAX_JSON`] bytes) as UTF-8 text.
    fn read_text(&self, name: &str) -> Result<String, ArchiveError> {
        let file = File::open(self.path(name)?).map_err(|source| ArchiveError::Read { source })?;
        let mut text = String::new();
        file.take(MAX_JSON)
            .read_to_string(&mut text)
            .map_err(|e| json_err(name, e))?;
        Ok(text)
    }
}

/// A member path cleaned lexically (`./a//b` -> `a/b`); `None` for the root or escapes.
fn member_name(path: &Path) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for comp in path.components() {
        match comp {
            Component::Normal(c) => parts.push(c.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

fn json_err(name: &str, e: impl std::fmt::Display) -> ArchiveError {
    ArchiveError::Json {
        name: name.to_string(),
        reason: e.to_string(),
    }
}

/// Finds the format and reads every image of a staged archive.
pub(crate) fn parse(staged: &Staged) -> Result<Vec<PendingImage>, ArchiveError> {
    if staged.has("manifest.json") {
        parse_docker(staged)
    } else if staged.has("index.json") && staged.has("oci-layout") {
        parse_oci(staged)
    } else {
        Err(ArchiveError::Unrecognised)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn parse_docker(staged: &Staged) -> Result<Vec<PendingImage>, ArchiveError> {
    let text = staged.read_text("manifest.json")?;
    let entries: Vec<DockerManifestEntry> =
        serde_json::from_str(&text).map_err(|e| json_err("manifest.json", e))?;
    let mut images = Vec::new();
    for entry in entries {
        let config_raw = staged.read_text(&entry.config)?;
        let blobs = entry
            .layers
            .iter()
            .map(|l| staged.path(l).map(Path::to_path_buf))
            .collect::<Result<Vec<_>, _>>()?;
        let tags = entry.repo_tags.unwrap_or_default();
        images.push(pending(&entry.config, config_raw, blobs, &tags)?);
    }
    Ok(images)
}

/// Builds a [`PendingImage`], pairing layer blobs with the config's diff_ids.
fn pending(
    name: &str,
    config_raw: String,
    blobs: Vec<PathBuf>,
    tags: &[String],
) -> Result<PendingImage, ArchiveError> {
    let config = parse_image_config(&config_raw).map_err(|e| json_err(name, e))?;
    let id = Digest::of_bytes(config_raw.as_bytes());
    let diff_ids = config.rootfs().diff_ids();
    if diff_ids.len() != blobs.len() {
        return Err(ArchiveError::LayerCount {
            config: id.to_string(),
            diff_ids: diff_ids.len(),
            layers: blobs.len(),
        });
    }
    let layers = blobs
        .into_iter()
        .zip(diff_ids)
        .map(|(blob, d)| {
            Ok(PendingLayer {
                blob,
                diff_id: Digest::parse(d)?,
            })
        })
        .collect::<Result<Vec<_>, ArchiveError>>()?;
    let tags = tags
        .iter()
        .map(|t| {
            Reference::parse(t).map_err(|source| ArchiveError::Tag {
                tag: t.clone(),
                source,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(PendingImage {
        id,
        config_raw,
        config,
        layers,
        tags,
    })
}

fn parse_oci(staged: &Staged) -> Result<Vec<PendingImage>, ArchiveError> {
    let text = staged.read_text("index.json")?;
    let index: ImageIndex = serde_json::from_str(&text).map_err(|e| json_err("index.json", e))?;
    let mut images = Vec::new();
    for desc in index.manifests() {
        let tag = oci_tag(desc);
        let manifest = resolve_manifest(staged, desc, 0)?;
        images.push(oci_image(staged, &manifest, tag)?);
    }
    Ok(images)
}

/// The tag an index entry carries: containerd's full name, else the OCI ref name.
fn oci_tag(desc: &Descriptor) -> Option<String> {
    let ann = desc.annotations().as_ref()?;
    ann.get("io.containerd.image.name")
        .or_else(|| ann.get("org.opencontainers.image.ref.name"))
        .cloned()
}

/// Follows nested indexes to the manifest for linux and this host's architecture.
fn resolve_manifest(
    staged: &Staged,
    desc: &Descriptor,
    depth: usize,
) -> Result<ImageManifest, ArchiveError> {
    let (name, text) = read_blob_text(staged, desc)?;
    let media = desc.media_type().to_string();
    let is_index = media.contains("image.index") || media.contains("manifest.list");
    if !is_index || depth > 4 {
        return serde_json::from_str(&text).map_err(|e| json_err(&name, e));
    }
    let index: ImageIndex = serde_json::from_str(&text).map_err(|e| json_err(&name, e))?;
    let arch = host_arch();
    let chosen = index.manifests().iter().find(|m| {
        m.platform()
            .as_ref()
            .is_some_and(|p| p.os().to_string() == "linux" && p.architecture().to_string() == arch)
    });
    match chosen {
        Some(m) => resolve_manifest(staged, m, depth + 1),
        None => Err(ArchiveError::NoPlatform { name, arch }),
    }
}

fn oci_image(
    staged: &Staged,
    manifest: &ImageManifest,
    tag: Option<String>,
) -> Result<PendingImage, ArchiveError> {
    let (config_name, config_raw) = read_blob_text(staged, manifest.config())?;
    let mut blobs = Vec::new();
    for layer in manifest.layers() {
        let (_, path) = verified_blob(staged, layer)?;
        blobs.push(path);
    }
    pending(&config_name, config_raw, blobs, tag.as_slice())
}

fn blob_name(desc: &Descriptor) -> Result<(String, Digest), ArchiveError> {
    let digest = Digest::parse(desc.digest().as_ref())?;
    Ok((format!("blobs/sha256/{}", digest.hex()), digest))
}

/// Checks a blob's size and digest against its descriptor; returns its member name and file.
fn verified_blob(staged: &Staged, desc: &Descriptor) -> Result<(String, PathBuf), ArchiveError> {
    let (name, digest) = blob_name(desc)?;
    let path = staged.path(&name)?.to_path_buf();
    let file = File::open(&path).map_err(|source| ArchiveError::Read { source })?;
    let (actual, size) = HashingReader::new(file)
        .finish()
        .map_err(|source| ArchiveError::Read { source })?;
    if actual != digest || size != desc.size() {
        return Err(ArchiveError::Mismatch {
            name,
            expected: format!("{digest} ({} bytes)", desc.size()),
            actual: format!("{actual} ({size} bytes)"),
        });
    }
    Ok((name, path))
}

fn read_blob_text(staged: &Staged, desc: &Descriptor) -> Result<(String, String), ArchiveError> {
    let (name, _) = verified_blob(staged, desc)?;
    let text = staged.read_text(&name)?;
    Ok((name, text))
}

/// Parses an image config, tolerating what the OCI spec allows but `oci-spec` 0.7 does not
/// (a missing `history`).
pub(crate) fn parse_image_config(raw: &str) -> Result<ImageConfiguration, serde_json::Error> {
    let mut value: serde_json::Value = serde_json::from_str(raw)?;
    if let Some(obj) = value.as_object_mut() {
        obj.entry("history")
            .or_insert_with(|| serde_json::Value::Array(Vec::new()));
    }
    serde_json::from_value(value)
}

/// This host's architecture in GOARCH naming, as image configs and indexes use it.
pub(crate) fn host_arch() -> String {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_names_are_cleaned() {
        assert_eq!(member_name(Path::new("./a//b/")).as_deref(), Some("a/b"));
        assert_eq!(member_name(Path::new("a/../b")).as_deref(), Some("b"));
        assert_eq!(member_name(Path::new("../b")), None);
        assert_eq!(member_name(Path::new("/b")), None);
        assert_eq!(member_name(Path::new("./")), None);
    }
}
