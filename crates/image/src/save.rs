//! `save`: write images as a docker-archive (`docker save` format) that `docker load`,
//! `skopeo` (`docker-archive:`) and `berth load` read.
//!
//! Layout (moby `image/tarexport`, the form skopeo writes too): `manifest.json` — an array of
//! `{"Config": "<hex>.json", "RepoTags": [...], "Layers": ["<diff_id hex>.tar", ...]}` —,
//! each config blob as `<hex>.json`, each layer as its uncompressed tar named by its diff_id,
//! so every file in the archive hashes to the name it is referenced by.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Write};

use berth_store::Store;

use crate::compression::decompress;
use crate::digest::Digest;
use crate::error::{io_err, ImageError};
use crate::query::parse_layers;
use crate::reference::Reference;
use crate::store::ImageStore;

impl ImageStore {
    /// Writes the images `names` resolve to (tags, ids or id prefixes) to `out` as one
    /// docker-archive. An image named by a tag carries that tag (`RepoTags`; several tags of
    /// one image make one entry with all of them); one named by id carries none, as with
    /// `docker save`. Layers shared by several images are written once. Every name is
    /// resolved before anything is written.
    ///
    /// Errors: as [`ImageStore::resolve`]; [`ImageError::LayerMissing`] if a layer's blob is
    /// not stored (an image loaded before berth kept blobs: pull or load it again);
    /// [`ImageError::Io`] writing `out`.
    pub fn save(&self, db: &Store, names: &[String], out: impl Write) -> Result<(), ImageError> {
        // Resolve every name before writing a byte: an unknown image leaves no output.
        let mut images: Vec<(Digest, Vec<String>)> = Vec::new();
        for name in names {
            let id = self.resolve(db, name)?;
            let tag = Reference::parse(name)
                .ok()
                .filter(|r| r.tag().is_some() && r.digest().is_none())
                .map(|r| r.to_string());
            match images.iter_mut().find(|(i, _)| *i == id) {
                Some((_, tags)) => tags.extend(tag.filter(|t| !tags.contains(t))),
                None => images.push((id, tag.into_iter().collect())),
            }
        }
        let mut archive = tar::Builder::new(out);
        let mut manifest = Vec::new();
        let mut written = HashSet::new();
        for (id, repo_tags) in images {
            let row = self.row(db, &id)?;
            let config_name = format!("{}.json", id.hex());
            append(&mut archive, &config_name, row.config.as_bytes())?;
            let mut layer_names = Vec::new();
            for diff_id in parse_layers(&id, &row.layers)? {
                let layer_name = format!("{}.tar", diff_id.hex());
                if written.insert(layer_name.clone()) {
                    self.append_layer(db, &mut archive, &id, &diff_id, &layer_name)?;
                }
                layer_names.push(layer_name);
            }
            manifest.push(serde_json::json!({
                "Config": config_name,
                "RepoTags": repo_tags,
                "Layers": layer_names,
            }));
        }
        let text = serde_json::to_vec(&manifest).unwrap_or_default();
        append(&mut archive, "manifest.json", &text)?;
        archive
            .into_inner()
            .and_then(|mut w| w.flush())
            .map_err(io_err("write archive", "(output)"))
    }

    /// Appends the uncompressed tar of layer `diff_id` (its blob decompressed to a temp file
    /// first when compressed: a tar header needs the size up front).
    fn append_layer(
        &self,
        db: &Store,
        archive: &mut tar::Builder<impl Write>,
        image: &Digest,
        diff_id: &Digest,
        name: &str,
    ) -> Result<(), ImageError> {
        let blob = crate::store::layer_blob(db.conn(), diff_id)?;
        let missing = || ImageError::LayerMissing {
            id: image.to_string(),
            diff_id: diff_id.to_string(),
            path: self.blobs_dir(),
        };
        let blob = blob.ok_or_else(missing)?;
        let path = self.blob_path(&blob);
        let file = File::open(&path).map_err(|_| missing())?;
        let mut tmp = tempfile::tempfile_in(self.tmp_dir())
            .map_err(io_err("create temp file in", self.tmp_dir()))?;
        let (mut tar, _) = decompress(file).map_err(io_err("read blob", &path))?;
        io::copy(&mut tar, &mut tmp).map_err(io_err("decompress blob", &path))?;
        let mut header = tar::Header::new_gnu();
        header.set_size(tmp.metadata().map_err(io_err("stat temp of", &path))?.len());
        header.set_mode(0o644);
        io::Seek::rewind(&mut tmp).map_err(io_err("rewind temp of", &path))?;
        archive
            .append_data(&mut header, name, tmp)
            .map_err(io_err("write archive", "(output)"))
    }
}

fn append(
    archive: &mut tar::Builder<impl Write>,
    name: &str,
    bytes: &[u8],
) -> Result<(), ImageError> {
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    archive
        .append_data(&mut header, name, bytes)
        .map_err(io_err("write archive", "(output)"))
}
