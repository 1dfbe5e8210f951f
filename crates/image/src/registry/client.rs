//! A session with one registry for one repository: an oci-client [`Client`] configured with
//! the registry's TLS policy and credentials, and the translation of its errors into
//! [`RegistryError`]s that say what to do.

use std::time::Duration;

use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, RegistryOperation};

use super::auth::Credentials;
use super::error::transport_error;
use super::options::{RegistryOptions, TlsPolicy};
use super::RegistryError;
use crate::reference::Reference;

/// Docker's default `max-concurrent-downloads`.
pub(crate) const MAX_CONCURRENT_DOWNLOADS: usize = 3;

/// A connected, authenticated client for one reference.
pub(crate) struct Session {
    pub(crate) client: Client,
    pub(crate) oci_ref: oci_client::Reference,
    /// `host[:port]`.
    pub(crate) registry: String,
    /// The reference as the user wrote it (normalised), for messages.
    pub(crate) reference: String,
    pub(crate) repository: String,
    /// The TLS policy the client was built with.
    pub(crate) tls: TlsPolicy,
    /// The credentials (anonymous when none are stored).
    pub(crate) auth: RegistryAuth,
}

/// Installs rustls' ring provider once per process (reqwest is built without a default one).
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Builds an oci-client for `tls` speaking HTTPS, or plain HTTP when `plain_http`.
pub(crate) fn build_client(registry: &str, tls: &TlsPolicy, plain_http: bool) -> Client {
    install_crypto_provider();
    let protocol = if plain_http {
        ClientProtocol::HttpsExcept(vec![registry.to_string()])
    } else {
        ClientProtocol::Https
    };
    Client::new(ClientConfig {
        protocol,
        accept_invalid_certificates: !tls.verify,
        extra_root_certificates: tls
            .ca_pem
            .iter()
            .map(|pem| Certificate {
                encoding: CertificateEncoding::Pem,
                data: pem.clone(),
            })
            .collect(),
        max_concurrent_download: MAX_CONCURRENT_DOWNLOADS,
        connect_timeout: Some(Duration::from_secs(10)),
        read_timeout: Some(Duration::from_secs(60)),
        platform_resolver: None,
        ..ClientConfig::default()
    })
}

/// The oci-client credentials for `creds`.
pub(crate) fn registry_auth(creds: Option<Credentials>) -> RegistryAuth {
    match creds {
        Some(c) => RegistryAuth::Basic(c.username, c.password),
        None => RegistryAuth::Anonymous,
    }
}

impl Session {
    /// Connects to `reference`'s registry and authenticates for pulling (running the
    /// `WWW-Authenticate` challenge: Bearer token from the realm, or Basic). With TLS
    /// verification off, HTTPS is tried first and plain HTTP if no TLS connection can be
    /// made (Podman's `--tls-verify=false` behaviour).
    ///
    /// Errors: [`RegistryError::Connect`], [`RegistryError::Tls`],
    /// [`RegistryError::Unauthorized`], [`RegistryError::AuthFile`].
    pub(crate) async fn connect(
        reference: &Reference,
        opts: &RegistryOptions,
    ) -> Result<Self, RegistryError> {
        let registry = reference.registry().to_string();
        let tls = opts.tls_for(&registry)?;
        // An unreadable credentials file must not block anonymous pulls (Docker warns and
        // goes on); a registry that needs credentials then says so.
        let creds = opts.auth_file.lookup(&registry).unwrap_or_else(|e| {
            tracing::warn!("{e}; pulling without credentials");
            None
        });
        let auth = registry_auth(creds);
        let oci_ref = match reference.digest() {
            Some(d) => oci_client::Reference::with_digest(
                registry.clone(),
                reference.repository().to_string(),
                d.to_string(),
            ),
            None => oci_client::Reference::with_tag(
                registry.clone(),
                reference.repository().to_string(),
                reference.tag().unwrap_or("latest").to_string(),
            ),
        };
        let mut session = Self {
            client: build_client(&registry, &tls, false),
            oci_ref,
            registry,
            reference: reference.to_string(),
            repository: reference.repository().to_string(),
            tls: tls.clone(),
            auth: auth.clone(),
        };
        let first = session
            .client
            .auth(&session.oci_ref, &auth, RegistryOperation::Pull)
            .await;
        match first {
            Ok(_) => return Ok(session),
            Err(OciDistributionError::RequestError(e)) if !tls.verify && is_transport(&e) => {
                tracing::debug!(registry = %session.registry, error = %e, "HTTPS failed; trying plain HTTP");
            }
            Err(e) => return Err(session.classify(e)),
        }
        session.client = build_client(&session.registry, &tls, true);
        session
            .client
            .auth(&session.oci_ref, &auth, RegistryOperation::Pull)
            .await
            .map_err(|e| session.classify(e))?;
        Ok(session)
    }

    /// Translates an oci-client error into what the user should know.
    pub(crate) fn classify(&self, e: OciDistributionError) -> RegistryError {
        classify(e, self, &self.tls)
    }

    /// What an unknown manifest means for this reference: a missing `tag` or `digest`.
    pub(crate) fn missing_what(&self) -> &'static str {
        if self.oci_ref.digest().is_some() {
            "digest"
        } else {
            "tag"
        }
    }

    /// The error for a refused or missing credential.
    pub(crate) fn unauthorized(&self) -> RegistryError {
        let flag = if self.tls.verify {
            ""
        } else {
            " --tls-verify=false"
        };
        RegistryError::Unauthorized {
            reference: self.reference.clone(),
            login: format!("berth login{flag} {}", self.registry),
        }
    }
}

/// Whether an oci-client error is worth retrying: no answer (connect, timeout), a body cut
/// short, or a server-side status (5xx, 429 Too Many Requests).
pub(crate) fn is_transient(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::RequestError(re) => {
            is_transport(re) || re.is_body() || re.is_decode()
        }
        OciDistributionError::ServerError { code, .. } => *code >= 500 || *code == 429,
        _ => false,
    }
}

/// Runs `op` until it succeeds, fails for good, or [`MAX_ATTEMPTS`] attempts failed
/// transiently ([`is_transient`]), sleeping [`BACKOFF`] doubled per attempt in between.
pub(crate) async fn with_retries<T, F, Fut>(
    what: &str,
    mut op: F,
) -> Result<T, OciDistributionError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, OciDistributionError>>,
{
    let mut attempt = 1;
    loop {
        match op().await {
            Err(e) if attempt < MAX_ATTEMPTS && is_transient(&e) => {
                tracing::debug!(what, attempt, error = %e, "transient registry error; retrying");
                tokio::time::sleep(BACKOFF * 2u32.pow(attempt - 1)).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Attempts per request before a transient error is final.
pub(crate) const MAX_ATTEMPTS: u32 = 4;
/// First back-off; doubles per attempt (0.5 s, 1 s, 2 s).
pub(crate) const BACKOFF: Duration = Duration::from_millis(500);

/// Whether a request failed before any HTTP exchange (connect, TLS handshake, timeout).
pub(crate) fn is_transport(e: &reqwest::Error) -> bool {
    e.is_connect() || e.is_timeout() || (e.is_request() && e.status().is_none())
}

/// The error and its causes, `: `-joined (reqwest hides the TLS reason in its sources).
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(c) = cur {
        let s = c.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = c.source();
    }
    parts.join(": ")
}

/// Whether a transport error is about certificates or the TLS handshake.
pub(crate) fn is_tls(detail: &str) -> bool {
    let d = detail.to_ascii_lowercase();
    ["certificate", "tls", "handshake", "unknownissuer", "ssl"]
        .iter()
        .any(|k| d.contains(k))
}

fn classify(e: OciDistributionError, s: &Session, tls: &TlsPolicy) -> RegistryError {
    let registry = s.registry.clone();
    match e {
        OciDistributionError::RequestError(re) => {
            let detail = chain(&re);
            if is_transport(&re) || is_tls(&detail) {
                transport_error(&registry, detail, tls.verify, &tls.certs_dir)
            } else {
                RegistryError::Other { registry, detail }
            }
        }
        OciDistributionError::UnauthorizedError { .. }
        | OciDistributionError::AuthenticationFailure(_) => s.unauthorized(),
        OciDistributionError::RegistryError { envelope, .. } => {
            let code = envelope.errors.first().map(|e| &e.code);
            match code {
                Some(OciErrorCode::ManifestUnknown) | Some(OciErrorCode::NotFound) => {
                    RegistryError::ManifestUnknown {
                        what: s.missing_what(),
                        reference: s.reference.clone(),
                        repository: s.repository.clone(),
                    }
                }
                Some(OciErrorCode::NameUnknown) => RegistryError::RepositoryUnknown {
                    reference: s.reference.clone(),
                    repository: s.repository.clone(),
                    registry,
                },
                Some(OciErrorCode::Unauthorized) | Some(OciErrorCode::Denied) => s.unauthorized(),
                _ => RegistryError::Other {
                    registry,
                    detail: envelope.to_string(),
                },
            }
        }
        OciDistributionError::ServerError { code: 404, .. } => RegistryError::ManifestUnknown {
            what: s.missing_what(),
            reference: s.reference.clone(),
            repository: s.repository.clone(),
        },
        OciDistributionError::UnsupportedSchemaVersionError(1) => RegistryError::Schema1 {
            reference: s.reference.clone(),
        },
        other => RegistryError::Other {
            registry,
            detail: chain(&other),
        },
    }
}
