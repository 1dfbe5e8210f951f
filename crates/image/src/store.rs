//! The on-disk image store: blobs and unpacked layers under `<root>/images`, and the
//! commit of verified images into the database.
//!
//! Crash and failure safety: layers are unpacked into `layers/.tmp-*` and renamed into place
//! only once their diff_id is verified; everything a load creates is recorded in a
//! [`Rollback`] that removes it unless the final database transaction commits. Image
//! mutations take an exclusive `flock` on `images/lock` so concurrent berth processes never
//! see or delete each other's half-made layers.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use berth_store::rusqlite::{params, OptionalExtension, Transaction};
use berth_store::Store;

use crate::archive::{self, PendingImage, PendingLayer, Staged};
use crate::compression::decompress;
use crate::digest::{Digest, HashingReader};
use crate::error::{io_err, ImageError};
use crate::reference::Reference;
use crate::unpack::unpack_layer;

/// An image that [`ImageStore::load`] or [`ImageStore::import`] stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadedImage {
    /// The image id: `sha256:<hex>` of its config.
    pub id: Digest,
    /// The tags now pointing at it (may be empty: an untagged image).
    pub tags: Vec<Reference>,
}

/// Handle on `<root>/images`. Cheap; holds no open files.
#[derive(Clone, Debug)]
pub struct ImageStore {
    dir: PathBuf,
}

impl ImageStore {
    /// Opens (creating) `<store_root>/images/{blobs/sha256,layers,tmp}`. Leftovers of a
    /// load killed mid-way (`tmp/.load-*`, `layers/.tmp-*`) are never read as images.
    ///
    /// Errors: [`ImageError::Io`] if a directory cannot be created.
    pub fn open(store_root: &Path) -> Result<Self, ImageError> {
        let store = Self {
            dir: store_root.join("images"),
        };
        for d in [store.blobs_dir(), store.layers_dir(), store.tmp_dir()] {
            fs::create_dir_all(&d).map_err(io_err("create directory", &d))?;
        }
        Ok(store)
    }

    /// `<root>/images/blobs/sha256`.
    pub(crate) fn blobs_dir(&self) -> PathBuf {
        self.dir.join("blobs").join("sha256")
    }

    /// `<root>/images/layers`.
    pub(crate) fn layers_dir(&self) -> PathBuf {
        self.dir.join("layers")
    }

    /// `<root>/images/tmp`, where archives are staged.
    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.dir.join("tmp")
    }

    /// The directory of the unpacked layer with `diff_id`.
    pub fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.layers_dir().join(diff_id.hex())
    }

    /// Takes the exclusive image-store lock (released when the file is dropped).
    pub(crate) fn lock(&self) -> Result<File, ImageError> {
        let file = berth_sys::flock::lock_exclusive(&self.dir.join("lock")).map_err(|e| {
            let op = match e {
                berth_sys::flock::FlockError::Open { .. } => "open lock file",
                berth_sys::flock::FlockError::Lock { .. } => "lock",
            };
            ImageError::Io {
                op,
                path: e.path().to_path_buf(),
                source: e.into_io(),
            }
        })?;
        self.sweep_leftovers();
        Ok(file)
    }

    /// Removes what loads and pulls killed mid-way left behind. Called with the lock held, so
    /// any `layers/.del-*` (removal) belongs to a dead process; `layers/.tmp-<pid>-*`
    /// (unpacking: pulls unpack before they take the lock), `blobs/sha256/.pull-<pid>-*`
    /// (downloading) and `tmp/.load-<pid>-*` (staging) are removed only when their pid is gone.
    /// Best effort: a failure leaves the entry for next time.
    fn sweep_leftovers(&self) {
        let entries = |d: PathBuf| fs::read_dir(d).into_iter().flatten().flatten();
        for e in entries(self.layers_dir()) {
            if e.file_name().to_string_lossy().starts_with(".del-") {
                let _ = fs::remove_dir_all(e.path());
            }
        }
        self.sweep_dead_pulls();
        for e in entries(self.tmp_dir()) {
            let name = e.file_name();
            let pid = name
                .to_string_lossy()
                .strip_prefix(".load-")
                .and_then(|r| r.split('-').next().map(str::to_string))
                .and_then(|p| p.parse::<u32>().ok());
            if let Some(pid) = pid {
                if !Path::new(&format!("/proc/{pid}")).exists() {
                    let _ = fs::remove_dir_all(e.path());
                }
            }
        }
    }

    /// Removes `layers/.tmp-<pid>-*` and `blobs/sha256/.pull-<pid>-*` whose pid is gone (or
    /// that carry none): what killed pulls and loads left. Safe without the lock, since a
    /// live process's entries are kept; pulls call it first so repeated kills never pile up.
    pub(crate) fn sweep_dead_pulls(&self) {
        let entries = |d: PathBuf| fs::read_dir(d).into_iter().flatten().flatten();
        let dead = |name: &std::ffi::OsStr, prefix: &str| {
            name.to_string_lossy()
                .strip_prefix(prefix)
                .is_some_and(|rest| !pid_alive(rest))
        };
        for e in entries(self.layers_dir()) {
            if dead(&e.file_name(), ".tmp-") {
                let _ = fs::remove_dir_all(e.path());
            }
        }
        for e in entries(self.blobs_dir()) {
            if dead(&e.file_name(), ".pull-") {
                let _ = fs::remove_file(e.path());
            }
        }
    }

    /// Loads every image of a docker-archive or OCI-layout archive (optionally gzip or zstd
    /// compressed) read from `reader`: verifies all digests, unpacks new layers, stores the
    /// config blobs and writes the database rows in one transaction. Tags already pointing
    /// elsewhere are moved (the old image stays, untagged). Prints nothing.
    ///
    /// Errors: [`ImageError::Archive`] for malformed or unverifiable archives,
    /// [`ImageError::Unpack`] for malicious layers, [`ImageError::DiffIdMismatch`]; on any
    /// error nothing is left behind (no blob, layer directory or row).
    pub fn load(&self, db: &mut Store, reader: impl Read) -> Result<Vec<LoadedImage>, ImageError> {
        let staged = Staged::extract(reader, &self.tmp_dir())?;
        let images = archive::parse(&staged)?;
        let _lock = self.lock()?;
        self.commit(db, images)
    }

    /// Unpacks and records `images`; see [`ImageStore::load`].
    pub(crate) fn commit(
        &self,
        db: &mut Store,
        images: Vec<PendingImage>,
    ) -> Result<Vec<LoadedImage>, ImageError> {
        let mut rollback = Rollback::default();
        let mut rows = Vec::new();
        for image in images {
            let mut layer_rows = Vec::new();
            for layer in &image.layers {
                layer_rows.push(self.ensure_layer(layer, &mut rollback)?);
            }
            self.write_blob(&image.id, image.config_raw.as_bytes(), &mut rollback)?;
            rows.push((image, layer_rows));
        }
        let loaded = db.write(|tx| {
            rows.iter()
                .map(|(image, layers)| insert_image(tx, image, layers))
                .collect()
        })?;
        rollback.disarm();
        Ok(loaded)
    }

    /// Makes sure the layer is unpacked under `layers/<hex>`, verifying its diff_id either
    /// way, and keeps its blob (as it came, compressed or not) under `blobs/sha256/` so that
    /// `save` can write it back. Returns the layer row: diff_id, size (regular-file bytes) and
    /// the blob's digest.
    fn ensure_layer(
        &self,
        layer: &PendingLayer,
        rollback: &mut Rollback,
    ) -> Result<LayerRow, ImageError> {
        let dest = self.layer_dir(&layer.diff_id);
        let blob = File::open(&layer.blob).map_err(io_err("open layer blob", &layer.blob))?;
        let mut blob_hashing = HashingReader::new(blob);
        let (tar, _) =
            decompress(&mut blob_hashing).map_err(io_err("read layer blob", &layer.blob))?;
        let mut hashing = HashingReader::new(tar);
        let size = if dest.exists() {
            let size = scan_size(&mut hashing).map_err(io_err("read layer blob", &layer.blob))?;
            check_diff_id(hashing, &layer.diff_id, &layer.blob)?;
            size
        } else {
            let tmp = self.layer_tmp_dir()?;
            let stats = unpack_layer(&mut hashing, tmp.path())?;
            check_diff_id(hashing, &layer.diff_id, &layer.blob)?;
            fs::rename(tmp.path(), &dest).map_err(io_err("rename layer into", &dest))?;
            rollback.push(dest);
            stats.size
        };
        // The tar reader may stop at the end-of-archive blocks: hash the rest of the blob.
        std::io::copy(&mut blob_hashing, &mut std::io::sink())
            .map_err(io_err("read layer blob", &layer.blob))?;
        let (blob_digest, _) = blob_hashing
            .finish()
            .map_err(io_err("read layer blob", &layer.blob))?;
        self.link_blob(&layer.blob, &blob_digest, rollback)?;
        Ok(LayerRow {
            diff_id: layer.diff_id.clone(),
            size,
            blob: Some(blob_digest),
        })
    }

    /// A fresh `layers/.tmp-<pid>-*` directory (mode 0755) to unpack into; the pid lets
    /// [`ImageStore::sweep_leftovers`] tell a live unpack from a dead one.
    pub(crate) fn layer_tmp_dir(&self) -> Result<tempfile::TempDir, ImageError> {
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".tmp-{}-", std::process::id()))
            .tempdir_in(self.layers_dir())
            .map_err(io_err("create temp layer in", self.layers_dir()))?;
        fs::set_permissions(
            tmp.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .map_err(io_err("chmod", tmp.path()))?;
        Ok(tmp)
    }

    /// Hard-links (or copies, across filesystems) `src` to `blobs/sha256/<hex>` unless a blob
    /// of that digest is already stored.
    fn link_blob(
        &self,
        src: &Path,
        digest: &Digest,
        rollback: &mut Rollback,
    ) -> Result<(), ImageError> {
        let path = self.blob_path(digest);
        if path.exists() {
            return Ok(());
        }
        if fs::hard_link(src, &path).is_err() {
            fs::copy(src, &path).map_err(io_err("store blob", &path))?;
        }
        rollback.push(path);
        Ok(())
    }

    /// `blobs/sha256/<hex of digest>`.
    pub(crate) fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs_dir().join(digest.hex())
    }

    /// Stores `bytes` as `blobs/sha256/<hex of digest>` (atomically, if not already there).
    pub(crate) fn write_blob(
        &self,
        digest: &Digest,
        bytes: &[u8],
        rollback: &mut Rollback,
    ) -> Result<(), ImageError> {
        let path = self.blobs_dir().join(digest.hex());
        if path.exists() {
            return Ok(());
        }
        let mut tmp = tempfile::NamedTempFile::new_in(self.blobs_dir())
            .map_err(io_err("create blob in", self.blobs_dir()))?;
        tmp.write_all(bytes).map_err(io_err("write blob", &path))?;
        tmp.persist(&path).map_err(|e| ImageError::Io {
            op: "store blob",
            path: path.clone(),
            source: e.error,
        })?;
        rollback.push(path);
        Ok(())
    }
}

/// Whether the pid that starts `rest` (`<pid>-<random>`) is a live process; leftovers whose
/// name carries no pid are treated as dead.
fn pid_alive(rest: &str) -> bool {
    rest.split('-')
        .next()
        .and_then(|p| p.parse::<u32>().ok())
        .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists())
}

/// Sums the regular-file sizes of a tar without unpacking it, reading it to the end.
fn scan_size(reader: &mut impl Read) -> std::io::Result<u64> {
    let mut archive = tar::Archive::new(reader);
    let mut size = 0;
    for entry in archive.entries()? {
        let entry = entry?;
        if entry.header().entry_type().is_file() {
            size += entry.size();
        }
    }
    Ok(size)
}

fn check_diff_id(
    hashing: HashingReader<impl Read>,
    expected: &Digest,
    blob: &Path,
) -> Result<(), ImageError> {
    let (actual, _) = hashing.finish().map_err(io_err("read layer blob", blob))?;
    if &actual != expected {
        return Err(ImageError::DiffIdMismatch {
            expected: expected.to_string(),
            actual: actual.to_string(),
        });
    }
    Ok(())
}

/// The blob layer `diff_id` was stored from, if the `layers` row records one.
///
/// Errors: [`ImageError::Sql`]; [`ImageError::Digest`] for a corrupt stored digest.
pub(crate) fn layer_blob(
    conn: &berth_store::rusqlite::Connection,
    diff_id: &Digest,
) -> Result<Option<Digest>, ImageError> {
    let blob: Option<String> = conn
        .query_row(
            "SELECT blob FROM layers WHERE diff_id = ?1",
            [diff_id.as_str()],
            |r| r.get(0),
        )
        .optional()?
        .flatten();
    Ok(blob.map(|b| Digest::parse(&b)).transpose()?)
}

/// One row of the `layers` table.
#[derive(Clone, Debug)]
pub(crate) struct LayerRow {
    /// sha256 of the uncompressed tar.
    pub(crate) diff_id: Digest,
    /// Regular-file bytes.
    pub(crate) size: u64,
    /// The stored blob the layer came from, if known.
    pub(crate) blob: Option<Digest>,
}

pub(crate) fn insert_image(
    tx: &Transaction<'_>,
    image: &PendingImage,
    layers: &[LayerRow],
) -> Result<LoadedImage, ImageError> {
    for layer in layers {
        // A layer first stored without its blob (schema 1) learns it now.
        tx.execute(
            "INSERT INTO layers(diff_id, size, blob) VALUES (?1, ?2, ?3) \
             ON CONFLICT(diff_id) DO UPDATE SET blob = coalesce(layers.blob, excluded.blob)",
            params![
                layer.diff_id.as_str(),
                i64::try_from(layer.size).unwrap_or(i64::MAX),
                layer.blob.as_ref().map(Digest::as_str)
            ],
        )?;
    }
    let diff_ids: Vec<&str> = layers.iter().map(|l| l.diff_id.as_str()).collect();
    let total: u64 = layers.iter().map(|l| l.size).sum();
    let created =
        image.config.created().clone().unwrap_or_else(|| {
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        });
    let exists: Option<i64> = tx
        .query_row(
            "SELECT 1 FROM images WHERE id = ?1",
            [image.id.as_str()],
            |r| r.get(0),
        )
        .optional()?;
    if exists.is_none() {
        tx.execute(
            "INSERT INTO images(id, config, layers, size, created) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                image.id.as_str(),
                image.config_raw,
                serde_json::to_string(&diff_ids).unwrap_or_default(),
                i64::try_from(total).unwrap_or(i64::MAX),
                created
            ],
        )?;
    }
    for tag in &image.tags {
        tx.execute(
            "INSERT INTO image_tags(name, image_id) VALUES (?1, ?2) \
             ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id",
            params![tag.normalized(), image.id.as_str()],
        )?;
    }
    Ok(LoadedImage {
        id: image.id.clone(),
        tags: image.tags.clone(),
    })
}

/// Paths created by an operation, removed (in reverse) on drop unless disarmed.
#[derive(Default)]
pub(crate) struct Rollback {
    paths: Vec<PathBuf>,
}

impl Rollback {
    pub(crate) fn push(&mut self, path: PathBuf) {
        self.paths.push(path);
    }

    pub(crate) fn disarm(mut self) {
        self.paths.clear();
    }
}

impl Drop for Rollback {
    fn drop(&mut self) {
        for path in self.paths.iter().rev() {
            let res = if path.is_dir() {
                fs::remove_dir_all(path)
            } else {
                fs::remove_file(path)
            };
            if let Err(e) = res {
                tracing::warn!(path = %path.display(), error = %e, "rollback could not remove");
            }
        }
    }
}
