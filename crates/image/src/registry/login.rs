//! `login`: check credentials against a registry, then store them.
//!
//! The check follows Docker's (`registry/auth.go` `loginV2`): `GET /v2/`; a `Basic`
//! challenge is answered by repeating the request with the credentials, a `Bearer` challenge
//! by asking the realm for a token with them (distribution `docs/spec/auth/token.md`, with
//! `account=<user>` and no scope). Only credentials the registry accepted are stored.

use std::time::Duration;

use super::auth::Credentials;
use super::client::chain;
use super::error::transport_error;
use super::options::RegistryOptions;
use super::RegistryError;

/// A `berth login`.
#[derive(Clone, Debug)]
pub struct LoginRequest {
    /// `host[:port]` (`docker.io` for Docker Hub).
    pub registry: String,
    /// The credentials to check and store.
    pub credentials: Credentials,
}

/// Checks `req.credentials` against the registry and stores them in the credential file.
///
/// A registry that asks for no credentials accepts them (as with Docker).
///
/// Errors: [`RegistryError::Login`] (refused),
/// [`RegistryError::Connect`], [`RegistryError::Tls`], [`RegistryError::AuthFile`].
pub fn login(req: &LoginRequest, opts: &RegistryOptions) -> Result<(), RegistryError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| RegistryError::Other {
            registry: req.registry.clone(),
            detail: format!("cannot start the HTTP runtime: {e}"),
        })?;
    runtime.block_on(check(req, opts))?;
    opts.auth_file.store(&req.registry, &req.credentials)
}

async fn check(req: &LoginRequest, opts: &RegistryOptions) -> Result<(), RegistryError> {
    let tls = opts.tls_for(&req.registry)?;
    let host = match req.registry.as_str() {
        "docker.io" => "registry-1.docker.io",
        other => other,
    };
    let client = http_client(&tls)?;
    let mut response = None;
    let schemes: &[&str] = if tls.verify {
        &["https"]
    } else {
        &["https", "http"]
    };
    let mut last_err = String::new();
    for scheme in schemes {
        match client.get(format!("{scheme}://{host}/v2/")).send().await {
            Ok(r) => {
                response = Some((scheme, r));
                break;
            }
            Err(e) => last_err = chain(&e),
        }
    }
    let Some((scheme, first)) = response else {
        return Err(transport_error(
            &req.registry,
            last_err,
            tls.verify,
            &tls.certs_dir,
        ));
    };
    let failed = |detail: String| RegistryError::Login {
        registry: req.registry.clone(),
        detail,
    };
    let challenge = first
        .headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string);
    let user = &req.credentials.username;
    let pass = &req.credentials.password;
    let status = match challenge.as_deref() {
        // A registry that asks for nothing accepts any credentials (Docker and Podman report
        // success and store them too).
        None if first.status().is_success() => return Ok(()),
        None => return Err(failed(format!("GET /v2/ answered {}", first.status()))),
        Some(c) if c.to_ascii_lowercase().starts_with("bearer") => {
            let (realm, service) = parse_bearer(c)
                .ok_or_else(|| failed(format!("malformed WWW-Authenticate header {c:?}")))?;
            let mut query = vec![("account", user.as_str())];
            if let Some(s) = service.as_deref() {
                query.push(("service", s));
            }
            let r = client
                .get(&realm)
                .query(&query)
                .basic_auth(user, Some(pass))
                .send()
                .await
                .map_err(|e| failed(format!("token request to {realm}: {}", chain(&e))))?;
            r.status()
        }
        Some(_) => {
            let r = client
                .get(format!("{scheme}://{host}/v2/"))
                .basic_auth(user, Some(pass))
                .send()
                .await
                .map_err(|e| failed(chain(&e)))?;
            r.status()
        }
    };
    if status.is_success() {
        Ok(())
    } else if status == reqwest::StatusCode::UNAUTHORIZED
        || status == reqwest::StatusCode::FORBIDDEN
    {
        Err(failed(
            "unauthorized: incorrect username or password".into(),
        ))
    } else {
        Err(failed(format!("the registry answered {status}")))
    }
}

fn http_client(tls: &super::options::TlsPolicy) -> Result<reqwest::Client, RegistryError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .danger_accept_invalid_certs(!tls.verify);
    for pem in &tls.ca_pem {
        if let Ok(cert) = reqwest::Certificate::from_pem(pem) {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().map_err(|e| RegistryError::Other {
        registry: String::new(),
        detail: chain(&e),
    })
}

/// `Bearer realm="...",service="..."` → (realm, service) (RFC 6750 section 3).
fn parse_bearer(header: &str) -> Option<(String, Option<String>)> {
    let params = header.get(6..)?.trim();
    let mut realm = None;
    let mut service = None;
    for part in split_params(params) {
        let (k, v) = part.split_once('=')?;
        let v = v.trim().trim_matches('"').to_string();
        match k.trim().to_ascii_lowercase().as_str() {
            "realm" => realm = Some(v),
            "service" => service = Some(v),
            _ => {}
        }
    }
    Some((realm?, service))
}

/// Splits `a="x,y",b=z` at commas outside quotes.
fn split_params(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out.into_iter().filter(|p| !p.trim().is_empty()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_challenges() {
        let (realm, service) = parse_bearer(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        )
        .unwrap();
        assert_eq!(realm, "https://auth.example/token");
        assert_eq!(service.as_deref(), Some("registry.example"));
        assert!(parse_bearer("Bearer service=\"x\"").is_none());
    }
}
