//! How berth reaches registries: TLS verification per registry, extra CA certificates, and
//! where credentials live.
//!
//! Per-registry settings follow Docker's layout under berth's config directory
//! (`$BERTH_CONFIG_DIR`, default `/etc/berth`): `certs.d/<host[:port]>/*.crt` are extra trusted
//! CA certificates (Docker: `/etc/docker/certs.d`), and `registries.json` `{"insecure":
//! ["host:port", ...]}` lists registries reached without TLS verification, plain HTTP allowed
//! (Docker's `insecure-registries`; Podman's `--tls-verify=false` per registry).

use std::fs;
use std::path::PathBuf;

use super::auth::AuthFile;
use super::RegistryError;

/// Registry access options of one command.
#[derive(Clone, Debug)]
pub struct RegistryOptions {
    /// `--tls-verify`: `Some(false)` allows plain HTTP and unverified certificates for every
    /// registry of this command; `None` uses the per-registry setting (default: verify).
    pub tls_verify: Option<bool>,
    /// berth's config directory (`certs.d/`, `registries.json`).
    pub config_dir: PathBuf,
    /// Where credentials are read and stored.
    pub auth_file: AuthFile,
}

/// The TLS policy for one registry.
#[derive(Clone, Debug)]
pub struct TlsPolicy {
    /// Verify certificates and refuse plain HTTP.
    pub verify: bool,
    /// Extra trusted CA certificates (PEM), from `certs.d/<registry>/*.crt`.
    pub ca_pem: Vec<Vec<u8>>,
    /// `certs.d/<registry>`, named in TLS errors.
    pub certs_dir: PathBuf,
}

impl RegistryOptions {
    /// Options from the environment: `$BERTH_CONFIG_DIR` (default `/etc/berth`) and Docker's
    /// credential file ([`AuthFile::default_path`]).
    pub fn from_env(tls_verify: Option<bool>) -> Self {
        let config_dir = std::env::var_os("BERTH_CONFIG_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/etc/berth"));
        Self {
            tls_verify,
            config_dir,
            auth_file: AuthFile::at(AuthFile::default_path()),
        }
    }

    /// The TLS policy for `registry` (`host[:port]`).
    ///
    /// Errors: [`RegistryError::Other`] if `registries.json` exists but is malformed (a
    /// silently ignored setting would be worse).
    pub fn tls_for(&self, registry: &str) -> Result<TlsPolicy, RegistryError> {
        let verify = match self.tls_verify {
            Some(v) => v,
            None => !self.listed_insecure(registry)?,
        };
        let certs_dir = self.config_dir.join("certs.d").join(registry);
        let mut ca_pem = Vec::new();
        if let Ok(entries) = fs::read_dir(&certs_dir) {
            let mut paths: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "crt"))
                .collect();
            paths.sort();
            for p in paths {
                if let Ok(pem) = fs::read(&p) {
                    ca_pem.push(pem);
                }
            }
        }
        Ok(TlsPolicy {
            verify,
            ca_pem,
            certs_dir,
        })
    }

    fn listed_insecure(&self, registry: &str) -> Result<bool, RegistryError> {
        let path = self.config_dir.join("registries.json");
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(_) => return Ok(false),
        };
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct RegistriesFile {
            #[serde(default)]
            insecure: Vec<String>,
        }
        let file: RegistriesFile =
            serde_json::from_str(&text).map_err(|e| RegistryError::Other {
                registry: registry.to_string(),
                detail: format!(
                    "{} is malformed ({e}); expected {{\"insecure\": [\"host:port\"]}}",
                    path.display()
                ),
            })?;
        Ok(file.insecure.iter().any(|r| r == registry))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_registry_insecure_and_certs() {
        let dir = tempfile::tempdir().unwrap();
        let opts = RegistryOptions {
            tls_verify: None,
            config_dir: dir.path().to_path_buf(),
            auth_file: AuthFile::at(dir.path().join("config.json")),
        };
        assert!(opts.tls_for("r:5000").unwrap().verify);
        fs::write(
            dir.path().join("registries.json"),
            r#"{"insecure":["r:5000"]}"#,
        )
        .unwrap();
        assert!(!opts.tls_for("r:5000").unwrap().verify);
        assert!(opts.tls_for("other:5000").unwrap().verify);
        let certs = dir.path().join("certs.d/other:5000");
        fs::create_dir_all(&certs).unwrap();
        fs::write(certs.join("ca.crt"), "PEM").unwrap();
        fs::write(certs.join("notes.txt"), "x").unwrap();
        assert_eq!(
            opts.tls_for("other:5000").unwrap().ca_pem,
            vec![b"PEM".to_vec()]
        );
        let forced = RegistryOptions {
            tls_verify: Some(false),
            ..opts.clone()
        };
        assert!(!forced.tls_for("other:5000").unwrap().verify);
        fs::write(dir.path().join("registries.json"), r#"{"insecure":"x"}"#).unwrap();
        assert!(opts.tls_for("r:5000").is_err());
    }
}
