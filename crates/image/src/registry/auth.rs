//! Registry credentials in Docker's client configuration file (`config.json`, `auths`).
//!
//! Format (docker/cli `cli/config/configfile`): `{"auths": {"<registry>": {"auth":
//! base64("user:password")}}}`; Docker Hub's key is `https://index.docker.io/v1/`. The file
//! lives at `$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`), so `docker login`
//! and `berth login` share it. Other keys of the file are kept untouched; credential helpers
//! (`credsStore`) are not supported.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{Map, Value};

use super::RegistryError;

/// The key Docker uses for Docker Hub in `auths`.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// Docker's credential file.
#[derive(Clone, Debug)]
pub struct AuthFile {
    path: PathBuf,
}

/// A user name and password (or token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password or access token.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, <redacted>)", self.username)
    }
}

impl AuthFile {
    /// The file at `path`.
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json` (docker/cli's lookup).
    pub fn default_path() -> PathBuf {
        let dir = std::env::var_os("DOCKER_CONFIG")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
                Path::new(&home).join(".docker")
            });
        dir.join("config.json")
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The credentials stored for `registry` (`host[:port]`), if any. Keys written as URLs
    /// (`https://host/`, Docker Hub's `https://index.docker.io/v1/`) match too.
    ///
    /// Errors: [`RegistryError::AuthFile`] if the file exists but is unreadable or malformed.
    pub fn lookup(&self, registry: &str) -> Result<Option<Credentials>, RegistryError> {
        let doc = self.read()?;
        let Some(auths) = doc.get("auths").and_then(Value::as_object) else {
            return Ok(None);
        };
        let Some(entry) = auths
            .iter()
            .find(|(k, _)| key_host(k) == key_host(&key_for(registry)))
            .map(|(_, v)| v)
        else {
            return Ok(None);
        };
        // docker/cli `AuthConfig`: "auth" is base64(user:password); "username" and
        // "password" may stand instead.
        let field = |k: &str| entry.get(k).and_then(Value::as_str).map(str::to_string);
        if let (None, Some(username), Some(password)) =
            (field("auth"), field("username"), field("password"))
        {
            return Ok(Some(Credentials { username, password }));
        }
        let encoded = entry.get("auth").and_then(Value::as_str).unwrap_or("");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| {
                s.split_once(':')
                    .map(|(u, p)| (u.to_string(), p.to_string()))
            });
        match decoded {
            Some((username, password)) => Ok(Some(Credentials { username, password })),
            None => Err(self.err(format!(
                "the \"auth\" of {registry} is not base64(user:password)"
            ))),
        }
    }

    /// Stores `creds` for `registry`, keeping every other key, written atomically with mode
    /// 0600 (the directory is created 0700 if missing).
    ///
    /// Errors: [`RegistryError::AuthFile`].
    pub fn store(&self, registry: &str, creds: &Credentials) -> Result<(), RegistryError> {
        let mut doc = self.read()?;
        let auth = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", creds.username, creds.password));
        let auths = doc
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        let Some(auths) = auths.as_object_mut() else {
            return Err(self.err("\"auths\" is not an object".into()));
        };
        auths.retain(|k, _| key_host(k) != key_host(&key_for(registry)));
        auths.insert(key_for(registry), serde_json::json!({ "auth": auth }));
        self.write(&doc)
    }

    /// Removes the credentials of `registry`. Returns whether there were any.
    ///
    /// Errors: [`RegistryError::AuthFile`].
    pub fn remove(&self, registry: &str) -> Result<bool, RegistryError> {
        let mut doc = self.read()?;
        let Some(auths) = doc.get_mut("auths").and_then(Value::as_object_mut) else {
            return Ok(false);
        };
        let before = auths.len();
        auths.retain(|k, _| key_host(k) != key_host(&key_for(registry)));
        if auths.len() == before {
            return Ok(false);
        }
        self.write(&doc)?;
        Ok(true)
    }

    fn read(&self) -> Result<Map<String, Value>, RegistryError> {
        match fs::read(&self.path) {
            Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Ok(Map::new()),
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(Value::Object(map)) => Ok(map),
                Ok(_) => Err(self.err("not a JSON object".into())),
                Err(e) => Err(self.err(format!("not valid JSON: {e}"))),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Map::new()),
            Err(e) => Err(self.err(format!("cannot read: {e}"))),
        }
    }

    fn write(&self, doc: &Map<String, Value>) -> Result<(), RegistryError> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        if !dir.exists() {
            fs::create_dir_all(dir)
                .map_err(|e| self.err(format!("cannot create directory: {e}")))?;
            let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
        }
        let mut tmp = tempfile::Builder::new()
            .prefix(".config.json-")
            .permissions(fs::Permissions::from_mode(0o600))
            .tempfile_in(dir)
            .map_err(|e| self.err(format!("cannot create a temp file: {e}")))?;
        let text = serde_json::to_string_pretty(doc).unwrap_or_default();
        tmp.write_all(text.as_bytes())
            .and_then(|()| tmp.write_all(b"\n"))
            .map_err(|e| self.err(format!("cannot write: {e}")))?;
        tmp.persist(&self.path)
            .map_err(|e| self.err(format!("cannot replace: {}", e.error)))?;
        Ok(())
    }

    fn err(&self, detail: String) -> RegistryError {
        RegistryError::AuthFile {
            path: self.path.clone(),
            detail,
        }
    }
}

/// The `auths` key Docker writes for `registry`.
fn key_for(registry: &str) -> String {
    match registry {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB_KEY.to_string(),
        other => other.to_string(),
    }
}

/// The host part of a key, without scheme and path (`https://h:5000/v1/` → `h:5000`).
fn key_host(key: &str) -> &str {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    rest.split('/').next().unwrap_or(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(u: &str, p: &str) -> Credentials {
        Credentials {
            username: u.into(),
            password: p.into(),
        }
    }

    #[test]
    fn store_lookup_remove_keep_other_keys_and_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d/config.json");
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(
            &path,
            r#"{"auths":{"other:1":{"auth":"eDp5"}},"psFormat":"table"}"#,
        )
        .unwrap();
        let file = AuthFile::at(&path);
        file.store("127.0.0.1:5000", &creds("alice", "p:w"))
            .unwrap();
        assert_eq!(
            file.lookup("127.0.0.1:5000").unwrap(),
            Some(creds("alice", "p:w"))
        );
        assert_eq!(file.lookup("other:1").unwrap(), Some(creds("x", "y")));
        let doc: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(doc["psFormat"], "table");
        assert_eq!(doc["auths"]["127.0.0.1:5000"]["auth"], "YWxpY2U6cDp3");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(file.remove("127.0.0.1:5000").unwrap());
        assert!(!file.remove("127.0.0.1:5000").unwrap());
        assert_eq!(file.lookup("127.0.0.1:5000").unwrap(), None);
    }

    #[test]
    fn docker_hub_key_and_url_keys_match() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        fs::write(&path, r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dTpw"},"https://r.example:443":{"auth":"YTpi"}}}"#).unwrap();
        let file = AuthFile::at(&path);
        assert_eq!(file.lookup("docker.io").unwrap(), Some(creds("u", "p")));
        assert_eq!(file.lookup("r.example:443").unwrap(), Some(creds("a", "b")));
        assert_eq!(file.lookup("missing").unwrap(), None);
        fs::write(&path, "[1]").unwrap();
        assert!(file.lookup("x").is_err());
    }
}
