//! `image prune`: remove dangling images (no tag), or with `all` every image no container
//! uses (Docker's `docker image prune [-a]`).

use std::collections::HashSet;

use berth_store::Store;

use crate::digest::Digest;
use crate::error::ImageError;
use crate::remove::RemoveAction;
use crate::store::ImageStore;

impl ImageStore {
    /// Removes every image that is not in `in_use` (ids of images containers were created
    /// from) and is dangling (no tag), or any such image when `all`. Returns what was
    /// untagged and deleted, in order.
    ///
    /// Errors: as [`ImageStore::remove`]; images removed before an error stay removed.
    pub fn prune(
        &self,
        db: &mut Store,
        all: bool,
        in_use: &HashSet<Digest>,
    ) -> Result<Vec<RemoveAction>, ImageError> {
        let mut actions = Vec::new();
        for image in self.list(db)? {
            let id = image.id;
            // Dangling = no tag and no repository digest (an image pulled by digest is named).
            let named = !image.tags.is_empty() || !self.repo_digests_of(db, &id)?.is_empty();
            if in_use.contains(&id) || (!all && named) {
                continue;
            }
            actions.extend(self.remove(db, id.as_str(), true)?);
        }
        Ok(actions)
    }
}
