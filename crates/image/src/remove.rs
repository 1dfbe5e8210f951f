//! `rmi`: untag, and delete images with the layers and blobs no other image uses.

use std::collections::HashSet;
use std::fmt;
use std::fs;

use berth_store::rusqlite::Transaction;
use berth_store::Store;

use crate::digest::Digest;
use crate::error::ImageError;
use crate::query::parse_layers;
use crate::reference::Reference;
use crate::store::ImageStore;

/// One line of `rmi` output, in Docker's words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemoveAction {
    /// A tag was removed: `Untagged: busybox:latest`.
    Untagged(Reference),
    /// An image (its id) or a layer (its diff_id) was deleted: `Deleted: sha256:...`.
    Deleted(Digest),
}

impl fmt::Display for RemoveAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Untagged(r) => write!(f, "Untagged: {r}"),
            Self::Deleted(d) => write!(f, "Deleted: {d}"),
        }
    }
}

impl ImageStore {
    /// Removes `name_or_id`. A tag is untagged, and the image deleted if that was its last
    /// tag; an id (or id prefix) deletes the image with all its tags, which needs `force`
    /// if it has more than one. Deleting removes the config blob and every layer no other
    /// image uses (rows in one transaction, then the files). Whether a container still uses
    /// the image is the engine's check, made before calling this.
    ///
    /// Errors: as [`ImageStore::resolve`]; [`ImageError::MultipleTags`] without `force`.
    pub fn remove(
        &self,
        db: &mut Store,
        name_or_id: &str,
        force: bool,
    ) -> Result<Vec<RemoveAction>, ImageError> {
        let _lock = self.lock()?;
        let id = self.resolve(db, name_or_id)?;
        let tags = self.tags_of(db, &id)?;
        let by_tag = Reference::parse(name_or_id)
            .ok()
            .filter(|r| tags.contains(r));
        let (untag, delete) = match by_tag {
            Some(tag) => (vec![tag], tags.len() == 1),
            None if tags.len() > 1 && !force => {
                return Err(ImageError::MultipleTags {
                    id: id.to_string(),
                    tags: tags
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                })
            }
            None => (tags, true),
        };
        let (mut actions, orphans) = db.write(|tx| {
            let mut actions = Vec::new();
            for tag in untag {
                tx.execute("DELETE FROM image_tags WHERE name = ?1", [tag.normalized()])?;
                actions.push(RemoveAction::Untagged(tag));
            }
            let orphans = if delete {
                delete_image(tx, &id)?
            } else {
                Vec::new()
            };
            Ok::<_, ImageError>((actions, orphans))
        })?;
        if delete {
            self.remove_files(&id, &orphans);
            actions.push(RemoveAction::Deleted(id));
            actions.extend(
                orphans
                    .into_iter()
                    .map(|o| RemoveAction::Deleted(o.diff_id)),
            );
        }
        Ok(actions)
    }

    /// Best-effort removal after the rows are gone: a leftover file is garbage, never a
    /// dangling reference. Layers are renamed aside first so a half-deleted tree is never
    /// visible under its diff_id.
    fn remove_files(&self, id: &Digest, orphan_layers: &[OrphanLayer]) {
        let blob = self.blobs_dir().join(id.hex());
        if let Err(e) = fs::remove_file(&blob) {
            tracing::warn!(path = %blob.display(), error = %e, "cannot remove image config blob");
        }
        for OrphanLayer { diff_id, blob } in orphan_layers {
            if let Some(blob) = blob {
                let path = self.blob_path(blob);
                if let Err(e) = fs::remove_file(&path) {
                    tracing::warn!(path = %path.display(), error = %e, "cannot remove layer blob");
                }
            }
            let dir = self.layer_dir(diff_id);
            let aside = self.layers_dir().join(format!(".del-{}", diff_id.hex()));
            let res = fs::rename(&dir, &aside).and_then(|()| fs::remove_dir_all(&aside));
            if let Err(e) = res {
                tracing::warn!(path = %dir.display(), error = %e, "cannot remove layer");
            }
        }
    }
}

/// A layer no image uses any more: its directory and blob go.
struct OrphanLayer {
    diff_id: Digest,
    blob: Option<Digest>,
}

/// Deletes the image row and the rows of its layers no remaining image uses; returns those
/// layers.
fn delete_image(tx: &Transaction<'_>, id: &Digest) -> Result<Vec<OrphanLayer>, ImageError> {
    let raw: String = tx.query_row(
        "SELECT layers FROM images WHERE id = ?1",
        [id.as_str()],
        |r| r.get(0),
    )?;
    let layers = parse_layers(id, &raw)?;
    tx.execute("DELETE FROM image_tags WHERE image_id = ?1", [id.as_str()])?;
    tx.execute("DELETE FROM images WHERE id = ?1", [id.as_str()])?;
    let mut in_use = HashSet::new();
    let mut stmt = tx.prepare("SELECT id, layers FROM images")?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    for (other, raw) in rows {
        in_use.extend(parse_layers(&Digest::parse(&other)?, &raw)?);
    }
    let mut orphans: Vec<OrphanLayer> = Vec::new();
    for diff_id in layers {
        if !in_use.contains(&diff_id) && !orphans.iter().any(|o| o.diff_id == diff_id) {
            let blob = crate::store::layer_blob(tx, &diff_id)?;
            tx.execute("DELETE FROM layers WHERE diff_id = ?1", [diff_id.as_str()])?;
            orphans.push(OrphanLayer { diff_id, blob });
        }
    }
    Ok(orphans)
}
