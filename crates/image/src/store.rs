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
use rustix::fs::{flock, FlockOperation};

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
        let path = self.dir.join("lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err("open lock file", &path))?;
        flock(&file, FlockOperation::LockExclusive).map_err(|e| ImageError::Io {
            op: "lock",
            path,
            source: e.into(),
        })?;
        self.sweep_leftovers();
        Ok(file)
    }

    /// Removes what loads killed mid-way left behind. Called with the lock held, so any
    /// `layers/.tmp-*` (unpacking) or `layers/.del-*` (removal) belongs to a dead process;
    /// `tmp/.load-<pid>-*` staging dirs are made before the lock and are removed only when
    /// their pid is gone. Best effort: a failure leaves the entry for next time.
    fn sweep_leftovers(&self) {
        let entries = |d: PathBuf| fs::read_dir(d).into_iter().flatten().flatten();
        for e in entries(self.layers_dir()) {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(".tmp-") || name.starts_with(".del-") {
                let _ = fs::remove_dir_all(e.path());
            }
        }
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
                let size = self.ensure_layer(layer, &mut rollback)?;
                layer_rows.push((layer.diff_id.clone(), size));
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
    /// way. Returns its size (regular-file bytes).
    fn ensure_layer(
        &self,
        layer: &PendingLayer,
        rollback: &mut Rollback,
    ) -> Result<u64, ImageError> {
        let dest = self.layer_dir(&layer.diff_id);
        let blob = File::open(&layer.blob).map_err(io_err("open layer blob", &layer.blob))?;
        let (tar, _) = decompress(blob).map_err(io_err("read layer blob", &layer.blob))?;
        let mut hashing = HashingReader::new(tar);
        if dest.exists() {
            let size = scan_size(&mut hashing).map_err(io_err("read layer blob", &layer.blob))?;
            check_diff_id(hashing, &layer.diff_id, &layer.blob)?;
            return Ok(size);
        }
        let tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempdir_in(self.layers_dir())
            .map_err(io_err("create temp layer in", self.layers_dir()))?;
        fs::set_permissions(
            tmp.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .map_err(io_err("chmod", tmp.path()))?;
        let stats = unpack_layer(&mut hashing, tmp.path())?;
        check_diff_id(hashing, &layer.diff_id, &layer.blob)?;
        fs::rename(tmp.path(), &dest).map_err(io_err("rename layer into", &dest))?;
        rollback.push(dest);
        Ok(stats.size)
    }

    /// Stores `bytes` as `blobs/sha256/<hex of digest>` (atomically, if not already there).
    fn write_blob(
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

fn insert_image(
    tx: &Transaction<'_>,
    image: &PendingImage,
    layers: &[(Digest, u64)],
) -> Result<LoadedImage, ImageError> {
    for (diff_id, size) in layers {
        tx.execute(
            "INSERT OR IGNORE INTO layers(diff_id, size) VALUES (?1, ?2)",
            params![diff_id.as_str(), i64::try_from(*size).unwrap_or(i64::MAX)],
        )?;
    }
    let diff_ids: Vec<&str> = layers.iter().map(|(d, _)| d.as_str()).collect();
    let total: u64 = layers.iter().map(|(_, s)| s).sum();
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
