//! Errors of talking to a registry, worded for the user: what failed and what to do.

use std::path::PathBuf;

/// Errors of [`crate::ImageStore::pull`] and [`crate::registry::login`] that come from the
/// registry or its configuration.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// No TCP/TLS connection could be made.
    #[error("cannot reach registry {registry}: {detail}; check the address (and that the registry runs), or use --tls-verify=false for a plain-HTTP registry")]
    Connect {
        /// `host[:port]`.
        registry: String,
        /// The underlying error chain.
        detail: String,
    },
    /// TLS failed: untrusted or invalid certificate.
    #[error("TLS with registry {registry} failed: {detail}; put the registry's CA certificate in {certs_dir}/ca.crt, or use --tls-verify=false")]
    Tls {
        /// `host[:port]`.
        registry: String,
        /// The underlying error chain.
        detail: String,
        /// Where a CA certificate for it would be read from.
        certs_dir: PathBuf,
    },
    /// The registry refused the credentials (or demands some).
    #[error("pull access denied for {reference}: the repository does not exist or needs credentials; run `berth login {registry}`")]
    Unauthorized {
        /// The image reference.
        reference: String,
        /// `host[:port]`.
        registry: String,
    },
    /// The repository exists but not the tag (OCI distribution `MANIFEST_UNKNOWN`).
    #[error("manifest for {reference} not found: repository {repository} has no such tag (or the repository does not exist); check the name and tag")]
    ManifestUnknown {
        /// The image reference.
        reference: String,
        /// The repository.
        repository: String,
    },
    /// The repository does not exist (OCI distribution `NAME_UNKNOWN`).
    #[error("repository {repository} not found in registry {registry} (pulling {reference}); check the name")]
    RepositoryUnknown {
        /// The image reference.
        reference: String,
        /// The repository.
        repository: String,
        /// `host[:port]`.
        registry: String,
    },
    /// Docker image manifest schema 1 (deprecated in 2017, removed from Docker 20.10 pulls).
    #[error("{reference} is a Docker schema 1 image, which berth does not support; push it again with a current docker or skopeo (schema 2 / OCI)")]
    Schema1 {
        /// The image reference.
        reference: String,
    },
    /// A manifest or config of an unknown kind.
    #[error("{reference}: unsupported manifest media type {media_type:?}")]
    UnsupportedMediaType {
        /// The image reference.
        reference: String,
        /// What the registry sent.
        media_type: String,
    },
    /// The image index has no manifest for the wanted platform.
    #[error("{reference} has no image for platform {wanted}; available: {available}; choose one with --platform")]
    NoPlatform {
        /// The image reference.
        reference: String,
        /// The platform asked for.
        wanted: String,
        /// The index's platforms, comma separated.
        available: String,
    },
    /// A downloaded blob does not hash to its digest.
    #[error("blob {expected} from {registry} hashes to {actual}: the download is corrupt or the registry is misbehaving; it was discarded")]
    DigestMismatch {
        /// `host[:port]`.
        registry: String,
        /// The digest the manifest names.
        expected: String,
        /// What the bytes hash to.
        actual: String,
    },
    /// The manifest and the config disagree (layer count).
    #[error("{reference}: the manifest lists {manifest} layers but the image config {config}; the image is malformed")]
    LayerCount {
        /// The image reference.
        reference: String,
        /// Layers in the manifest.
        manifest: usize,
        /// diff_ids in the config.
        config: usize,
    },
    /// Any other registry failure.
    #[error("registry {registry}: {detail}")]
    Other {
        /// `host[:port]`.
        registry: String,
        /// The underlying error chain.
        detail: String,
    },
    /// The credential file cannot be read or written.
    #[error("credentials file {path}: {detail}; fix or remove it")]
    AuthFile {
        /// Its path.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// `--platform` is malformed.
    #[error("invalid platform {input:?}: use OS/ARCH[/VARIANT], e.g. linux/arm64")]
    Platform {
        /// What was given.
        input: String,
    },
    /// `login` failed.
    #[error("login to {registry} failed: {detail}")]
    Login {
        /// `host[:port]`.
        registry: String,
        /// Why.
        detail: String,
    },
}
