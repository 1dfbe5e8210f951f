//! Read-only queries: list, resolve, config, layer directories, inspect.

use std::path::PathBuf;

use berth_store::rusqlite::{params, OptionalExtension};
use berth_store::Store;
use oci_spec::image::ImageConfiguration;

use crate::digest::{is_sha256_hex, Digest};
use crate::error::ImageError;
use crate::inspect::ImageInspect;
use crate::reference::Reference;
use crate::store::ImageStore;

/// Shortest id prefix [`ImageStore::resolve`] accepts, in hex characters.
pub const MIN_ID_PREFIX: usize = 4;

/// One row of `berth images`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSummary {
    /// The image id.
    pub id: Digest,
    /// Tags pointing at it, sorted; empty for a dangling image.
    pub tags: Vec<Reference>,
    /// Creation time (RFC 3339) from the config.
    pub created: String,
    /// Unpacked size in bytes.
    pub size: u64,
}

/// The stored row of one image.
/// A row of the `images` table.
pub(crate) struct ImageRow {
    /// The config JSON exactly as shipped.
    pub(crate) config: String,
    /// JSON array of diff_ids, base first.
    pub(crate) layers: String,
    size: u64,
    created: String,
}

impl ImageStore {
    /// Every image, newest first.
    ///
    /// Errors: [`ImageError::Sql`], [`ImageError::Digest`] for a corrupt id.
    pub fn list(&self, db: &Store) -> Result<Vec<ImageSummary>, ImageError> {
        let mut stmt = db
            .conn()
            .prepare("SELECT id, size, created FROM images ORDER BY created DESC, id")?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(id, size, created)| {
                let id = Digest::parse(&id)?;
                Ok(ImageSummary {
                    tags: self.tags_of(db, &id)?,
                    id,
                    created,
                    size: u64::try_from(size).unwrap_or(0),
                })
            })
            .collect()
    }

    /// The tags pointing at image `id`, sorted by normalised name.
    ///
    /// Errors: [`ImageError::Sql`], [`ImageError::Reference`] for a corrupt stored tag.
    pub fn tags_of(&self, db: &Store, id: &Digest) -> Result<Vec<Reference>, ImageError> {
        let mut stmt = db
            .conn()
            .prepare("SELECT name FROM image_tags WHERE image_id = ?1 ORDER BY name")?;
        let names = stmt
            .query_map([id.as_str()], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(names
            .iter()
            .map(|n| Reference::parse(n))
            .collect::<Result<_, _>>()?)
    }

    /// Finds an image by tag (`busybox`, `localhost:5000/x:1`), full id (`sha256:<hex>`) or
    /// unique id prefix of at least [`MIN_ID_PREFIX`] hex characters (with or without
    /// `sha256:`). Tags win over id prefixes, as in Docker.
    ///
    /// Errors: [`ImageError::NotFound`], [`ImageError::Ambiguous`].
    pub fn resolve(&self, db: &Store, name_or_id: &str) -> Result<Digest, ImageError> {
        let conn = db.conn();
        if let Ok(id) = Digest::parse(name_or_id) {
            if self.exists(db, &id)? {
                return Ok(id);
            }
        }
        if let Ok(reference) = Reference::parse(name_or_id) {
            let id: Option<String> = conn
                .query_row(
                    "SELECT image_id FROM image_tags WHERE name = ?1",
                    [reference.normalized()],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(id) = id {
                return Ok(Digest::parse(&id)?);
            }
            if let Some(digest) = reference.digest() {
                let name = format!(
                    "{}/{}@{digest}",
                    reference.registry(),
                    reference.repository()
                );
                let id: Option<String> = conn
                    .query_row(
                        "SELECT image_id FROM repo_digests WHERE name = ?1",
                        [name],
                        |r| r.get(0),
                    )
                    .optional()?;
                if let Some(id) = id {
                    return Ok(Digest::parse(&id)?);
                }
            }
        }
        let hex = name_or_id.strip_prefix("sha256:").unwrap_or(name_or_id);
        let is_prefix = hex.len() >= MIN_ID_PREFIX
            && hex.len() <= 64
            && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !is_prefix {
            return Err(ImageError::NotFound(name_or_id.to_string()));
        }
        let mut stmt = conn.prepare("SELECT id FROM images WHERE substr(id, 8, ?1) = ?2")?;
        let ids = stmt
            .query_map(params![hex.len() as i64, hex], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        match ids.as_slice() {
            [one] => Ok(Digest::parse(one)?),
            [] => Err(ImageError::NotFound(name_or_id.to_string())),
            many => Err(ImageError::Ambiguous {
                prefix: hex.to_string(),
                count: many.len(),
            }),
        }
    }

    fn exists(&self, db: &Store, id: &Digest) -> Result<bool, ImageError> {
        let found: Option<i64> = db
            .conn()
            .query_row("SELECT 1 FROM images WHERE id = ?1", [id.as_str()], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(found.is_some())
    }

    pub(crate) fn row(&self, db: &Store, id: &Digest) -> Result<ImageRow, ImageError> {
        db.conn()
            .query_row(
                "SELECT config, layers, size, created FROM images WHERE id = ?1",
                [id.as_str()],
                |r| {
                    Ok(ImageRow {
                        config: r.get(0)?,
                        layers: r.get(1)?,
                        size: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                        created: r.get(3)?,
                    })
                },
            )
            .optional()?
            .ok_or_else(|| ImageError::NotFound(id.to_string()))
    }

    /// The OCI image configuration of image `id` (Env, Cmd, ExposedPorts, ...).
    ///
    /// Errors: [`ImageError::NotFound`], [`ImageError::Corrupt`].
    pub fn config(&self, db: &Store, id: &Digest) -> Result<ImageConfiguration, ImageError> {
        let row = self.row(db, id)?;
        parse_config(id, &row.config)
    }

    /// The unpacked layer directories of image `id`, top-most first (the order overlayfs
    /// `lowerdir=` wants). Each is checked to exist.
    ///
    /// Errors: [`ImageError::NotFound`], [`ImageError::Corrupt`], [`ImageError::LayerMissing`].
    pub fn layer_dirs(&self, db: &Store, id: &Digest) -> Result<Vec<PathBuf>, ImageError> {
        let row = self.row(db, id)?;
        let mut out = Vec::new();
        for diff_id in parse_layers(id, &row.layers)?.iter().rev() {
            let path = self.layer_dir(diff_id);
            if !path.is_dir() {
                return Err(ImageError::LayerMissing {
                    id: id.to_string(),
                    diff_id: diff_id.to_string(),
                    path,
                });
            }
            out.push(path);
        }
        Ok(out)
    }

    /// Docker-shaped inspect data of the image `name_or_id` resolves to.
    ///
    /// Errors: as [`ImageStore::resolve`] and [`ImageStore::config`].
    pub fn inspect(&self, db: &Store, name_or_id: &str) -> Result<ImageInspect, ImageError> {
        let id = self.resolve(db, name_or_id)?;
        let row = self.row(db, &id)?;
        let config = parse_config(&id, &row.config)?;
        let tags = self
            .tags_of(db, &id)?
            .iter()
            .map(ToString::to_string)
            .collect();
        let mut inspect = ImageInspect::new(id.to_string(), tags, row.created, row.size, &config);
        inspect.repo_digests = self.repo_digests_of(db, &id)?;
        Ok(inspect)
    }

    /// The repository digests (`repo@sha256:<manifest digest>`, familiar form) of image
    /// `id`: where it was pulled from.
    ///
    /// Errors: [`ImageError::Sql`].
    pub fn repo_digests_of(&self, db: &Store, id: &Digest) -> Result<Vec<String>, ImageError> {
        let mut stmt = db
            .conn()
            .prepare("SELECT name FROM repo_digests WHERE image_id = ?1 ORDER BY name")?;
        let names = stmt
            .query_map([id.as_str()], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(names
            .iter()
            .map(|n| Reference::parse(n).map_or_else(|_| n.clone(), |r| r.to_string()))
            .collect())
    }
}

fn parse_config(id: &Digest, raw: &str) -> Result<ImageConfiguration, ImageError> {
    crate::archive::parse_image_config(raw).map_err(|e| ImageError::Corrupt {
        id: id.to_string(),
        reason: e.to_string(),
    })
}

/// The stored diff_id list (base first) of an image.
pub(crate) fn parse_layers(id: &Digest, raw: &str) -> Result<Vec<Digest>, ImageError> {
    let list: Vec<String> = serde_json::from_str(raw).map_err(|e| ImageError::Corrupt {
        id: id.to_string(),
        reason: e.to_string(),
    })?;
    list.iter()
        .map(|d| {
            if d.strip_prefix("sha256:").is_some_and(is_sha256_hex) {
                Ok(Digest::parse(d)?)
            } else {
                Err(ImageError::Corrupt {
                    id: id.to_string(),
                    reason: format!("bad layer digest {d:?}"),
                })
            }
        })
        .collect()
}
