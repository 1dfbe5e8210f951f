//! `import`: a rootfs tarball becomes a one-layer image, like `docker import`.

use std::fs::File;
use std::io::{self, Read};

use berth_store::Store;
use oci_spec::image::{Config, ImageConfiguration};

use crate::archive::{host_arch, PendingImage, PendingLayer};
use crate::change::apply_changes;
use crate::compression::decompress;
use crate::digest::{Digest, HashingReader};
use crate::error::{io_err, ImageError};
use crate::reference::{Reference, ReferenceError};
use crate::store::{ImageStore, LoadedImage};

impl ImageStore {
    /// Imports the rootfs tarball `reader` (plain, gzip or zstd) as a one-layer image for
    /// linux and this host's architecture, with `changes` (`--change`, see
    /// [`crate::apply_changes`]) applied to its config, tagged `reference` if given.
    ///
    /// Errors: [`ImageError::Change`] before anything is read; [`ImageError::Reference`] if
    /// `reference` pins a digest instead of a tag; [`ImageError::Unpack`] for a malformed or
    /// malicious tar. Nothing is left behind on error.
    pub fn import(
        &self,
        db: &mut Store,
        reader: impl Read,
        reference: Option<&Reference>,
        changes: &[String],
    ) -> Result<LoadedImage, ImageError> {
        let mut exec = Config::default();
        apply_changes(&mut exec, changes)?;
        if let Some(r) = reference.filter(|r| r.tag().is_none()) {
            return Err(ReferenceError::Invalid {
                input: r.to_string(),
                reason: "import needs a tag, not a digest".into(),
            }
            .into());
        }
        let staged = self.stage(reader)?;
        let diff_id = diff_id_of(staged.path())?;
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let config_json = serde_json::json!({
            "created": now,
            "architecture": host_arch(),
            "os": "linux",
            "config": exec,
            "rootfs": { "type": "layers", "diff_ids": [diff_id.as_str()] },
            "history": [{ "created": now, "created_by": "berth import", "comment": "Imported from tarball" }],
        });
        let config_raw = config_json.to_string();
        let config: ImageConfiguration =
            serde_json::from_str(&config_raw).map_err(|e| ImageError::Corrupt {
                id: "(new import)".into(),
                reason: e.to_string(),
            })?;
        let image = PendingImage {
            id: Digest::of_bytes(config_raw.as_bytes()),
            config_raw,
            config,
            layers: vec![PendingLayer {
                blob: staged.path().to_path_buf(),
                diff_id,
            }],
            tags: reference.cloned().into_iter().collect(),
        };
        let _lock = self.lock()?;
        let mut loaded = self.commit(db, vec![image])?;
        Ok(loaded.remove(0))
    }

    /// Copies `reader` into a temp file under `images/tmp` (removed on drop).
    fn stage(&self, mut reader: impl Read) -> Result<tempfile::NamedTempFile, ImageError> {
        let tmp_dir = self.tmp_dir();
        let mut staged = tempfile::Builder::new()
            .prefix(".import-")
            .tempfile_in(&tmp_dir)
            .map_err(io_err("create temp file in", &tmp_dir))?;
        io::copy(&mut reader, staged.as_file_mut())
            .map_err(io_err("stage import into", staged.path()))?;
        Ok(staged)
    }
}

/// sha256 of the decompressed content of the file at `path`.
fn diff_id_of(path: &std::path::Path) -> Result<Digest, ImageError> {
    let file = File::open(path).map_err(io_err("open", path))?;
    let (tar, _) = decompress(file).map_err(io_err("read", path))?;
    let (digest, _) = HashingReader::new(tar)
        .finish()
        .map_err(io_err("read", path))?;
    Ok(digest)
}
