//! berth-image: the local image store.
//!
//! Images arrive from registries ([`ImageStore::pull`], module [`registry`]), as `docker save`
//! / `skopeo copy` archives ([`ImageStore::load`]) or rootfs tarballs ([`ImageStore::import`]),
//! and leave as docker-archives ([`ImageStore::save`]). Config and layer blobs live under
//! `<root>/images/blobs/sha256/<hex>`, unpacked layers (whiteouts converted for overlayfs)
//! under `<root>/images/layers/<hex of diff_id>/`, shared between images; the `images`,
//! `image_tags` and `layers` tables of `berth-store` index them.
//!
//! Modules: [`reference`] (names), [`digest`], [`compression`], [`unpack`] (the
//! security-critical layer applier), `archive` (docker-archive / OCI layout reading),
//! [`change`] (`--change`), `store` / `import` / `query` / `remove` (the [`ImageStore`]
//! verbs) and [`inspect`].

mod archive;
pub mod change;
pub mod compression;
pub mod digest;
mod error;
mod import;
pub mod inspect;
mod prune;
mod query;
pub mod reference;
pub mod registry;
mod remove;
mod save;
mod store;
mod tag;
pub mod unpack;

pub use archive::ArchiveError;
pub use change::{apply_changes, ChangeError};
pub use digest::{Digest, DigestError};
pub use error::ImageError;
pub use inspect::{ImageInspect, InspectConfig, InspectRootFs};
pub use query::{ImageSummary, MIN_ID_PREFIX};
pub use reference::{Reference, ReferenceError};
pub use registry::{PullOptions, PullOutcome, RegistryError};
pub use remove::RemoveAction;
pub use store::{ImageStore, LoadedImage};
pub use unpack::{unpack_layer, UnpackError, UnpackStats};
