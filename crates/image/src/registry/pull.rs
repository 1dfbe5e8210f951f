//! `pull`: resolve a reference to one image manifest (choosing a platform from an index),
//! fetch its config and missing layers concurrently, and commit the image into the store.
//!
//! Media types: OCI image spec (`manifest.md`, `image-index.md`, `config.md`) and Docker's
//! image manifest v2 schema 2 / manifest list (distribution `docs/spec/manifest-v2-2.md`).
//! Schema 1 (`manifest.v1+prettyjws`) is refused. The image is recorded only once every layer
//! is verified and unpacked, in one transaction: an interrupted pull leaves no image (only
//! complete blobs, reused by the next pull).

use std::fs;

use berth_store::rusqlite::{params, OptionalExtension};
use berth_store::Store;
use futures_util::{StreamExt, TryStreamExt};
use oci_client::manifest::OciDescriptor;
use oci_spec::image::ImageConfiguration;
use serde::Deserialize;

use super::client::{with_retries, Session, MAX_CONCURRENT_DOWNLOADS};
use super::fetch::{fetch_layer, FetchedLayer, LayerJob};
use super::options::RegistryOptions;
use super::platform::Platform;
use super::progress::{LayerState, PullEvent, PullProgress};
use super::RegistryError;
use crate::archive::PendingImage;
use crate::digest::Digest;
use crate::error::{io_err, ImageError};
use crate::reference::Reference;
use crate::store::{insert_image, ImageStore, LayerRow, Rollback};

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// Everything the manifest request accepts (schema 1 only to refuse it by name).
const ACCEPT: &[&str] = &[
    OCI_INDEX,
    DOCKER_LIST,
    OCI_MANIFEST,
    DOCKER_MANIFEST,
    DOCKER_SCHEMA1_SIGNED,
    DOCKER_SCHEMA1,
];

/// What to pull and how.
#[derive(Clone, Debug)]
pub struct PullOptions {
    /// The platform to pick from an image index (`--platform`, default the host's).
    pub platform: Platform,
    /// Whether `platform` was asked for (`--platform`): then a single-platform image of
    /// another platform is refused, as Docker does; otherwise it is pulled as it is.
    pub platform_explicit: bool,
    /// TLS and credentials.
    pub registry: RegistryOptions,
}

/// The result of a pull.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PullOutcome {
    /// The image id (`sha256:` of its config).
    pub id: Digest,
    /// The digest of what the reference resolved to (the index, for multi-platform images):
    /// Docker's `Digest:` line and RepoDigest.
    pub manifest_digest: Digest,
    /// Whether the tag already pointed at this image (`Image is up to date`).
    pub up_to_date: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    schema_version: u32,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    config: Option<RawDescriptor>,
    #[serde(default)]
    layers: Vec<RawDescriptor>,
    #[serde(default)]
    manifests: Vec<RawIndexEntry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDescriptor {
    #[serde(default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    size: i64,
}

#[derive(Deserialize)]
struct RawIndexEntry {
    digest: String,
    #[serde(default)]
    platform: Option<RawPlatform>,
}

#[derive(Deserialize)]
struct RawPlatform {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
    #[serde(default)]
    variant: Option<String>,
}

/// A layer of the image: already in the store, or fetched now.
enum PulledLayer {
    Existing(Digest),
    Fetched(FetchedLayer),
}

/// An image fetched but not yet committed.
struct FetchedImage {
    id: Digest,
    config_raw: String,
    config: ImageConfiguration,
    manifest_digest: Digest,
    layers: Vec<PulledLayer>,
}

impl ImageStore {
    /// Pulls `reference` from its registry: resolves the manifest (an index picks
    /// `opts.platform`), downloads the config and every layer the store lacks (up to
    /// [`MAX_CONCURRENT_DOWNLOADS`] at once, unpacking while downloading), then records the
    /// image, its tag and its repository digest in one transaction. Progress goes to
    /// `progress`; nothing is printed.
    ///
    /// Errors: [`ImageError::Registry`] (unreachable, TLS, credentials, unknown tag or
    /// repository, schema 1, no such platform, digest mismatch); [`ImageError::Unpack`],
    /// [`ImageError::DiffIdMismatch`]. On error no image is recorded; complete blobs stay
    /// for the next pull.
    pub fn pull(
        &self,
        db: &mut Store,
        reference: &Reference,
        opts: &PullOptions,
        progress: &dyn PullProgress,
    ) -> Result<PullOutcome, ImageError> {
        self.sweep_dead_pulls();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(io_err("start the pull runtime in", self.tmp_dir()))?;
        let fetched = runtime.block_on(self.fetch_image(db, reference, opts, progress))?;
        self.commit_pull(db, reference, fetched)
    }

    async fn fetch_image(
        &self,
        db: &Store,
        reference: &Reference,
        opts: &PullOptions,
        progress: &dyn PullProgress,
    ) -> Result<FetchedImage, ImageError> {
        let session = Session::connect(reference, &opts.registry).await?;
        let (manifest, manifest_digest) = resolve_manifest(&session, &opts.platform).await?;
        let (config_raw, config) = match self.stored_config(db, &manifest) {
            Some(stored) => stored,
            None => fetch_config(&session, &manifest).await?,
        };
        if opts.platform_explicit {
            check_platform(&session, &opts.platform, &config)?;
        }
        let diff_ids = config.rootfs().diff_ids();
        if diff_ids.len() != manifest.layers.len() {
            return Err(RegistryError::LayerCount {
                reference: session.reference.clone(),
                manifest: manifest.layers.len(),
                config: diff_ids.len(),
            }
            .into());
        }
        let mut jobs = Vec::new();
        for (layer, diff_id) in manifest.layers.iter().zip(diff_ids) {
            jobs.push(LayerJob {
                descriptor: oci_descriptor(layer),
                blob: Digest::parse(&layer.digest)?,
                diff_id: Digest::parse(diff_id)?,
            });
        }
        progress.event(PullEvent::Resolved {
            layers: jobs.iter().map(|j| j.blob.clone()).collect(),
        });
        let layers = futures_util::stream::iter(jobs)
            .map(|job| self.layer(db, &session, job, progress))
            .buffered(MAX_CONCURRENT_DOWNLOADS)
            .try_collect()
            .await?;
        Ok(FetchedImage {
            id: Digest::of_bytes(config_raw.as_bytes()),
            config_raw,
            config,
            manifest_digest,
            layers,
        })
    }

    /// The config of `manifest` if the store has that image already (a re-pull fetches no
    /// blob at all, like Docker's).
    fn stored_config(
        &self,
        db: &Store,
        manifest: &RawManifest,
    ) -> Option<(String, ImageConfiguration)> {
        let id = Digest::parse(&manifest.config.as_ref()?.digest).ok()?;
        let row = self.row(db, &id).ok()?;
        let config = crate::archive::parse_image_config(&row.config).ok()?;
        Some((row.config, config))
    }

    /// One layer: skipped if the store has it unpacked, else fetched.
    async fn layer(
        &self,
        db: &Store,
        session: &Session,
        job: LayerJob,
        progress: &dyn PullProgress,
    ) -> Result<PulledLayer, ImageError> {
        if self.has_layer(db, &job.diff_id)? {
            progress.event(PullEvent::Layer {
                digest: job.blob.clone(),
                state: LayerState::AlreadyExists,
            });
            return Ok(PulledLayer::Existing(job.diff_id));
        }
        progress.event(PullEvent::Layer {
            digest: job.blob.clone(),
            state: LayerState::Waiting,
        });
        Ok(PulledLayer::Fetched(
            fetch_layer(session, self, &job, progress).await?,
        ))
    }

    /// The size of a layer the store has (row and directory), if it has it.
    fn layer_size(&self, db: &Store, diff_id: &Digest) -> Result<Option<u64>, ImageError> {
        let size: Option<i64> = db
            .conn()
            .query_row(
                "SELECT size FROM layers WHERE diff_id = ?1",
                [diff_id.as_str()],
                |r| r.get(0),
            )
            .optional()?;
        Ok(size
            .filter(|_| self.layer_dir(diff_id).is_dir())
            .map(|s| u64::try_from(s).unwrap_or(0)))
    }

    fn has_layer(&self, db: &Store, diff_id: &Digest) -> Result<bool, ImageError> {
        Ok(self.layer_size(db, diff_id)?.is_some())
    }

    /// Moves the fetched layers into place and records the image, under the store lock.
    fn commit_pull(
        &self,
        db: &mut Store,
        reference: &Reference,
        image: FetchedImage,
    ) -> Result<PullOutcome, ImageError> {
        let _lock = self.lock()?;
        let mut rollback = Rollback::default();
        let mut rows = Vec::new();
        for layer in image.layers {
            rows.push(self.place_layer(db, layer, &mut rollback)?);
        }
        self.write_blob(&image.id, image.config_raw.as_bytes(), &mut rollback)?;
        let pending = PendingImage {
            id: image.id.clone(),
            config_raw: image.config_raw,
            config: image.config,
            layers: Vec::new(),
            tags: reference
                .tag()
                .map(|_| reference.clone())
                .into_iter()
                .collect(),
        };
        let repo_digest = format!(
            "{}/{}@{}",
            reference.registry(),
            reference.repository(),
            image.manifest_digest
        );
        let up_to_date = db.write(|tx| {
            // Up to date: the name pulled (the tag, or the digest for a pull by digest)
            // already named this image; a new tag of a known image is "newer", as in Docker.
            let (table, name) = match reference.tag() {
                Some(_) => ("image_tags", reference.normalized()),
                None => ("repo_digests", repo_digest.clone()),
            };
            let before: Option<String> = tx
                .query_row(
                    &format!("SELECT image_id FROM {table} WHERE name = ?1"),
                    [name],
                    |r| r.get(0),
                )
                .optional()?;
            insert_image(tx, &pending, &rows)?;
            tx.execute(
                "INSERT INTO repo_digests(name, image_id) VALUES (?1, ?2) \
                 ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id",
                params![repo_digest, image.id.as_str()],
            )?;
            Ok::<_, ImageError>(before.as_deref() == Some(image.id.as_str()))
        })?;
        rollback.disarm();
        Ok(PullOutcome {
            id: image.id,
            manifest_digest: image.manifest_digest,
            up_to_date,
        })
    }

    /// Renames a fetched layer to `layers/<hex>` (unless a concurrent pull got there first)
    /// and returns its row; re-checks an existing one (an `rmi` may have raced).
    fn place_layer(
        &self,
        db: &Store,
        layer: PulledLayer,
        rollback: &mut Rollback,
    ) -> Result<LayerRow, ImageError> {
        match layer {
            PulledLayer::Existing(diff_id) => match self.layer_size(db, &diff_id)? {
                Some(size) => Ok(LayerRow {
                    diff_id,
                    size,
                    blob: None,
                }),
                None => Err(ImageError::LayerMissing {
                    id: "(being pulled)".into(),
                    path: self.layer_dir(&diff_id),
                    diff_id: diff_id.to_string(),
                }),
            },
            PulledLayer::Fetched(f) => {
                let dest = self.layer_dir(&f.diff_id);
                if !dest.exists() {
                    let src = f.unpacked.keep();
                    fs::rename(&src, &dest).map_err(io_err("rename layer into", &dest))?;
                    rollback.push(dest);
                }
                Ok(LayerRow {
                    diff_id: f.diff_id,
                    size: f.size,
                    blob: Some(f.blob),
                })
            }
        }
    }
}

/// Fetches the manifest `session` points at; an index or manifest list resolves to the entry
/// for `platform`. Returns the image manifest and the digest of what the reference named.
async fn resolve_manifest(
    session: &Session,
    platform: &Platform,
) -> Result<(RawManifest, Digest), ImageError> {
    let (top, top_digest) = fetch_manifest(session, &session.oci_ref).await?;
    if !is_index(&top) {
        return Ok((top, top_digest));
    }
    let chosen = top.manifests.iter().find(|m| {
        m.platform
            .as_ref()
            .is_some_and(|p| platform.matches(&p.os, &p.architecture, p.variant.as_deref()))
    });
    let Some(entry) = chosen else {
        let available = top
            .manifests
            .iter()
            .filter_map(|m| m.platform.as_ref())
            .map(|p| match &p.variant {
                Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
                None => format!("{}/{}", p.os, p.architecture),
            })
            .collect::<Vec<_>>()
            .join(", ");
        return Err(RegistryError::NoPlatform {
            reference: session.reference.clone(),
            wanted: platform.to_string(),
            available,
        }
        .into());
    };
    let by_digest = session.oci_ref.clone_with_digest(entry.digest.clone());
    let (manifest, _) = fetch_manifest(session, &by_digest).await?;
    if is_index(&manifest) {
        return Err(RegistryError::UnsupportedMediaType {
            reference: session.reference.clone(),
            media_type: "an index nested in an index".into(),
        }
        .into());
    }
    Ok((manifest, top_digest))
}

/// Refuses an image whose config names another platform than the one asked for.
fn check_platform(
    session: &Session,
    wanted: &Platform,
    config: &ImageConfiguration,
) -> Result<(), RegistryError> {
    let os = config.os().to_string();
    let arch = config.architecture().to_string();
    let variant = config.variant().clone();
    if wanted.matches(&os, &arch, variant.as_deref()) {
        return Ok(());
    }
    let actual = match variant {
        Some(v) => format!("{os}/{arch}/{v}"),
        None => format!("{os}/{arch}"),
    };
    Err(RegistryError::PlatformMismatch {
        reference: session.reference.clone(),
        wanted: wanted.to_string(),
        actual,
    })
}

fn is_index(m: &RawManifest) -> bool {
    matches!(m.media_type.as_deref(), Some(OCI_INDEX | DOCKER_LIST))
        || (m.media_type.is_none() && !m.manifests.is_empty())
}

/// One manifest request; refuses schema 1 by name.
async fn fetch_manifest(
    session: &Session,
    oci_ref: &oci_client::Reference,
) -> Result<(RawManifest, Digest), ImageError> {
    let (body, digest) = with_retries("manifest", || {
        session
            .client
            .pull_manifest_raw(oci_ref, &session.auth, ACCEPT)
    })
    .await
    .map_err(|e| session.classify(e))?;
    let manifest: RawManifest =
        serde_json::from_slice(&body).map_err(|e| RegistryError::Other {
            registry: session.registry.clone(),
            detail: format!("manifest of {} is not valid JSON: {e}", session.reference),
        })?;
    let media = manifest.media_type.as_deref();
    if manifest.schema_version == 1 || matches!(media, Some(DOCKER_SCHEMA1 | DOCKER_SCHEMA1_SIGNED))
    {
        return Err(RegistryError::Schema1 {
            reference: session.reference.clone(),
        }
        .into());
    }
    if let Some(m) = media.filter(|m| !ACCEPT.contains(m)) {
        return Err(RegistryError::UnsupportedMediaType {
            reference: session.reference.clone(),
            media_type: m.to_string(),
        }
        .into());
    }
    Ok((manifest, Digest::parse(&digest)?))
}

/// Downloads and verifies the image config named by `manifest`.
async fn fetch_config(
    session: &Session,
    manifest: &RawManifest,
) -> Result<(String, ImageConfiguration), ImageError> {
    let unsupported = |media_type: String| RegistryError::UnsupportedMediaType {
        reference: session.reference.clone(),
        media_type,
    };
    let desc = manifest
        .config
        .as_ref()
        .ok_or_else(|| unsupported("a manifest without a config".into()))?;
    if !desc.media_type.is_empty()
        && ![OCI_CONFIG, DOCKER_CONFIG].contains(&desc.media_type.as_str())
    {
        return Err(unsupported(desc.media_type.clone()).into());
    }
    let descriptor = oci_descriptor(desc);
    let raw = with_retries("image config", || async {
        let mut raw = Vec::new();
        session
            .client
            .pull_blob(&session.oci_ref, &descriptor, &mut raw)
            .await
            .map(|()| raw)
    })
    .await
    .map_err(|e| session.classify(e))?;
    let actual = Digest::of_bytes(&raw);
    if actual.as_str() != desc.digest {
        return Err(RegistryError::DigestMismatch {
            registry: session.registry.clone(),
            expected: desc.digest.clone(),
            actual: actual.to_string(),
        }
        .into());
    }
    let text =
        String::from_utf8(raw).map_err(|_| unsupported("a config that is not UTF-8".into()))?;
    let config = crate::archive::parse_image_config(&text).map_err(|e| RegistryError::Other {
        registry: session.registry.clone(),
        detail: format!("image config of {} is malformed: {e}", session.reference),
    })?;
    Ok((text, config))
}

fn oci_descriptor(d: &RawDescriptor) -> OciDescriptor {
    OciDescriptor {
        media_type: d.media_type.clone(),
        digest: d.digest.clone(),
        size: d.size,
        ..OciDescriptor::default()
    }
}
