//! Errors of talking to a registry, worded for the user: what failed and what to do.

use std::path::{Path, PathBuf};

/// Errors of [`crate::ImageStore::pull`] and [`crate::registry::login`] that come from the
/// registry or its configuration.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// No TCP/TLS connection could be made.
    #[error("cannot reach registry {registry}: {detail}; {hint}")]
    Connect {
        /// `host[:port]`.
        registry: String,
        /// The underlying error chain.
        detail: String,
        /// What to do, given the error and the TLS policy.
        hint: String,
    },
    /// TLS failed: untrusted or invalid certificate.
    #[error("TLS with registry {registry} failed: {detail}; {hint}")]
    Tls {
        /// `host[:port]`.
        registry: String,
        /// The underlying error chain.
        detail: String,
        /// What to do (names `certs.d/<registry>/ca.crt`).
        hint: String,
    },
    /// The registry refused the credentials (or demands some).
    #[error("pull access denied for {reference}: the repository does not exist or needs credentials; run `{login}`")]
    Unauthorized {
        /// The image reference.
        reference: String,
        /// The login command to run (with `--tls-verify=false` when the pull had it).
        login: String,
    },
    /// The repository exists but not the tag (OCI distribution `MANIFEST_UNKNOWN`).
    #[error("manifest for {reference} not found: repository {repository} has no such {what} (or the repository does not exist); check the name and {what}")]
    ManifestUnknown {
        /// `tag` or `digest`, whichever the reference names.
        what: &'static str,
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
    /// A single-platform image is not of the platform `--platform` asked for.
    #[error(
        "{reference} does not match the specified platform: wanted {wanted}, actual: {actual}"
    )]
    PlatformMismatch {
        /// The image reference.
        reference: String,
        /// The platform asked for.
        wanted: String,
        /// The image's.
        actual: String,
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

/// The error for a request that got no HTTP answer: a TLS problem or a connection problem,
/// with a hint that fits (no `--tls-verify=false` advice when it is already off; a plain-HTTP
/// registry and a CA certificate served as the registry's own are named).
pub(crate) fn transport_error(
    registry: &str,
    detail: String,
    verify: bool,
    certs_dir: &Path,
) -> RegistryError {
    let lower = detail.to_ascii_lowercase();
    let registry = registry.to_string();
    if lower.contains("invalidcontenttype") || lower.contains("corrupt message") {
        return RegistryError::Connect {
            registry,
            detail,
            hint: "the registry answers in plain HTTP, not HTTPS: use --tls-verify=false (or list it under \"insecure\" in registries.json)".into(),
        };
    }
    if lower.contains("causedasendentity") {
        return RegistryError::Tls {
            registry,
            detail,
            hint: format!(
                "the registry presents a CA certificate (CA:TRUE, as `openssl req -x509` makes) as its own, which is refused even when trusted; give the registry a server certificate signed by that CA (the CA in {}/ca.crt), or use --tls-verify=false",
                certs_dir.display()
            ),
        };
    }
    let tls_words = ["certificate", "tls", "handshake", "unknownissuer", "ssl"];
    if tls_words.iter().any(|k| lower.contains(k)) {
        return RegistryError::Tls {
            registry,
            detail,
            hint: format!(
                "put the registry's CA certificate in {}/ca.crt, or use --tls-verify=false",
                certs_dir.display()
            ),
        };
    }
    let hint = if verify {
        "check the address and that the registry runs, or use --tls-verify=false for a plain-HTTP registry"
    } else {
        "check the address and that the registry runs"
    };
    RegistryError::Connect {
        registry,
        detail,
        hint: hint.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_hints_fit_the_cause() {
        let d = Path::new("/etc/berth/certs.d/r:1");
        let plain = transport_error(
            "r:1",
            "received corrupt message of type InvalidContentType".into(),
            true,
            d,
        );
        assert!(plain.to_string().contains("plain HTTP"), "{plain}");
        let ca = transport_error(
            "r:1",
            "invalid peer certificate: Other(OtherError(CaUsedAsEndEntity))".into(),
            true,
            d,
        );
        assert!(
            ca.to_string()
                .contains("server certificate signed by that CA"),
            "{ca}"
        );
        let issuer = transport_error(
            "r:1",
            "invalid peer certificate: UnknownIssuer".into(),
            true,
            d,
        );
        assert!(
            issuer.to_string().contains("/etc/berth/certs.d/r:1/ca.crt"),
            "{issuer}"
        );
        let refused = transport_error("r:1", "Connection refused".into(), false, d);
        assert!(!refused.to_string().contains("--tls-verify"), "{refused}");
        let refused = transport_error("r:1", "Connection refused".into(), true, d);
        assert!(
            refused.to_string().contains("--tls-verify=false"),
            "{refused}"
        );
    }
}
