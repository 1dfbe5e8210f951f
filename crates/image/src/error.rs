//! The error of the image store's public operations, aggregating the module errors.

use std::io;
use std::path::PathBuf;

use crate::archive::ArchiveError;
use crate::change::ChangeError;
use crate::digest::DigestError;
use crate::reference::ReferenceError;
use crate::unpack::UnpackError;

/// Errors of [`crate::ImageStore`] operations.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// A file or directory of the image store could not be used.
    #[error("cannot {op} {path}: {source}")]
    Io {
        /// What was being done, e.g. `create directory`.
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The state database failed.
    #[error(transparent)]
    Store(#[from] berth_store::StoreError),
    /// A query failed.
    #[error("image database: {0}")]
    Sql(#[from] berth_store::rusqlite::Error),
    /// The archive is malformed or fails verification.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// A layer could not be unpacked (or is malicious).
    #[error(transparent)]
    Unpack(#[from] UnpackError),
    /// A `--change` is invalid.
    #[error(transparent)]
    Change(#[from] ChangeError),
    /// A reference is invalid.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// A digest is invalid.
    #[error(transparent)]
    Digest(#[from] DigestError),
    /// A layer's uncompressed content does not match the diff_id its config declares.
    #[error("layer content hashes to {actual} but the image config declares {expected}; the archive is corrupt or was tampered with")]
    DiffIdMismatch {
        /// The declared diff_id.
        expected: String,
        /// What the content hashes to.
        actual: String,
    },
    /// Talking to a registry failed.
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
    /// No image matches a name or id.
    #[error("no such image: {0}; see `berth images`, or `berth pull` it")]
    NotFound(String),
    /// An id prefix matches several images.
    #[error("image id prefix {prefix:?} is ambiguous ({count} images); give more characters")]
    Ambiguous {
        /// The prefix given.
        prefix: String,
        /// How many images match.
        count: usize,
    },
    /// Removing by id an image that has several tags needs `force`.
    #[error(
        "image {id} is referenced by several tags ({tags}); remove them one by one or use --force"
    )]
    MultipleTags {
        /// The image id.
        id: String,
        /// The tags, comma separated.
        tags: String,
    },
    /// A stored record is unreadable (config or layer list JSON).
    #[error("stored record of image {id} is corrupt: {reason}; remove and reload the image")]
    Corrupt {
        /// The image id.
        id: String,
        /// The parse error.
        reason: String,
    },
    /// A layer directory the database lists is missing on disk.
    #[error("layer {diff_id} of image {id} is missing at {path}; remove and reload the image")]
    LayerMissing {
        /// The image id.
        id: String,
        /// The layer's diff_id.
        diff_id: String,
        /// Where it should be.
        path: PathBuf,
    },
}

/// Shorthand for an [`ImageError::Io`] mapper.
pub(crate) fn io_err(
    op: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(io::Error) -> ImageError {
    let path = path.into();
    move |source| ImageError::Io { op, path, source }
}
