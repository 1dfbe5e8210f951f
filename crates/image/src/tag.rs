//! `tag`: another name for an image (`image_tags` row), Docker's `docker tag SOURCE TARGET`.

use berth_store::rusqlite::params;
use berth_store::Store;

use crate::digest::Digest;
use crate::error::ImageError;
use crate::reference::{Reference, ReferenceError};
use crate::store::ImageStore;

impl ImageStore {
    /// Points tag `target` at the image `source` resolves to (moving it if it named another
    /// image, which then stays, possibly untagged). Returns the image id.
    ///
    /// Errors: as [`ImageStore::resolve`]; [`ImageError::Reference`] if `target` pins a
    /// digest (a digest is content, not a name one can give).
    pub fn tag(
        &self,
        db: &mut Store,
        source: &str,
        target: &Reference,
    ) -> Result<Digest, ImageError> {
        if target.digest().is_some() {
            return Err(ReferenceError::Invalid {
                input: target.to_string(),
                reason: "a tag target cannot contain a digest".into(),
            }
            .into());
        }
        let _lock = self.lock()?;
        let id = self.resolve(db, source)?;
        db.write(|tx| {
            tx.execute(
                "INSERT INTO image_tags(name, image_id) VALUES (?1, ?2) \
                 ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id",
                params![target.normalized(), id.as_str()],
            )?;
            Ok::<_, ImageError>(())
        })?;
        Ok(id)
    }
}
