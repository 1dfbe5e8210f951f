//! Image references (`busybox`, `localhost:5000/x:1`, `repo@sha256:...`), parsed and normalised
//! the way Docker does it.
//!
//! Parsing and normalisation (default registry `docker.io`, `library/` for official images,
//! default tag `latest`) follow distribution/reference (`reference.go` grammar,
//! `normalize.go`). The grammar is matched by hand rather than with a regular expression: a
//! regex engine compiling distribution's pattern costs ~30 ms on every CLI start, which is
//! more than the rest of `berth run` before the runtime is called.

use std::fmt;
use std::str::FromStr;

/// Errors of reference parsing.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    /// The text is not a valid image reference.
    #[error("invalid reference format {input:?}: {reason}; use NAME[:TAG][@DIGEST] with a lowercase name, e.g. busybox:latest")]
    Invalid {
        /// What was given.
        input: String,
        /// Why it was rejected.
        reason: String,
    },
}

const DEFAULT_REGISTRY: &str = "docker.io";
const LEGACY_REGISTRY: &str = "index.docker.io";
const OFFICIAL_PREFIX: &str = "library/";
/// distribution/reference `NameTotalLengthMax`.
const NAME_MAX: usize = 255;
/// Longest tag (`[\w][\w.-]{0,127}`).
const TAG_MAX: usize = 128;

/// A validated, normalised image reference.
///
/// `busybox` parses to registry `docker.io`, repository `library/busybox`, tag `latest`.
/// [`Reference::normalized`] gives `docker.io/library/busybox:latest` (the form stored in
/// `image_tags.name`); [`fmt::Display`] gives the familiar `busybox:latest`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl Reference {
    /// Parses `input` with Docker's grammar and normalisation.
    ///
    /// Errors: [`ReferenceError::Invalid`] for uppercase repository names, bad tags (more
    /// than 128 characters or illegal characters), unsupported or malformed digests,
    /// names over 255 characters, or an empty string.
    pub fn parse(input: &str) -> Result<Self, ReferenceError> {
        let invalid = |reason: &str| ReferenceError::Invalid {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        if input.trim() != input {
            return Err(invalid("surrounding whitespace"));
        }
        let (rest, digest) = match input.split_once('@') {
            Some((r, d)) => (r, Some(check_digest(d).map_err(invalid)?)),
            None => (input, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let (n, t) = rest.split_at(last_slash + i);
                (n, Some(check_tag(&t[1..]).map_err(invalid)?))
            }
            None => (rest, None),
        };
        if name.is_empty() {
            return Err(invalid("empty name"));
        }
        if name.len() > NAME_MAX {
            return Err(invalid("repository name longer than 255 characters"));
        }
        let (registry, repository) = split_registry(name);
        check_registry(registry).map_err(invalid)?;
        check_path(repository).map_err(invalid)?;
        // Docker refuses a 64-hex repository name: it would be mistaken for an image id.
        let last = repository.rsplit('/').next().unwrap_or_default();
        if last.len() == 64 && last.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid("a 64-hex name is reserved for image ids"));
        }
        let registry = if registry == LEGACY_REGISTRY {
            DEFAULT_REGISTRY
        } else {
            registry
        };
        let repository = if registry == DEFAULT_REGISTRY && !repository.contains('/') {
            format!("{OFFICIAL_PREFIX}{repository}")
        } else {
            repository.to_string()
        };
        let tag = match (&tag, &digest) {
            (None, None) => Some("latest".to_string()),
            _ => tag,
        };
        Ok(Self {
            registry: registry.to_string(),
            repository,
            tag,
            digest,
        })
    }

    /// Registry host (and port), e.g. `docker.io`, `localhost:5000`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// Repository path inside the registry, e.g. `library/busybox`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if any (`latest` when neither tag nor digest was given).
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest (`sha256:<hex>`), if the reference pins one.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// The fully normalised form, e.g. `docker.io/library/busybox:latest`; the key under
    /// which tags are stored.
    pub fn normalized(&self) -> String {
        let mut s = format!("{}/{}", self.registry, self.repository);
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }

    /// Repository name in familiar form: `busybox`, `user/app`, `localhost:5000/x`.
    pub fn familiar_name(&self) -> String {
        if self.registry() == DEFAULT_REGISTRY {
            let repo = self.repository();
            repo.strip_prefix(OFFICIAL_PREFIX)
                .filter(|rest| !rest.contains('/'))
                .unwrap_or(repo)
                .to_string()
        } else {
            format!("{}/{}", self.registry(), self.repository())
        }
    }
}

/// `normalize.go` `splitDockerDomain`: the first component is a registry if it contains
/// `.` or `:`, or is `localhost`, or has uppercase letters; otherwise the name is on Docker Hub.
fn split_registry(name: &str) -> (&str, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            (first, rest)
        }
        _ => (DEFAULT_REGISTRY, name),
    }
}

/// `domain := component ('.' component)* (':' port)?`, component
/// `[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?`.
fn check_registry(reg: &str) -> Result<(), &'static str> {
    let (host, port) = match reg.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (reg, None),
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err("bad registry port");
        }
        if p.parse::<u16>().is_err() {
            return Err("registry port out of range (1-65535)");
        }
    }
    let ok = !host.is_empty()
        && host.split('.').all(|c| {
            !c.is_empty()
                && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !c.starts_with('-')
                && !c.ends_with('-')
        });
    if ok {
        Ok(())
    } else {
        Err("bad registry host")
    }
}

/// `path-component ('/' path-component)*`, component `[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*`.
fn check_path(path: &str) -> Result<(), &'static str> {
    if path.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err("repository name must be lowercase");
    }
    for comp in path.split('/') {
        let b = comp.as_bytes();
        let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
            return Err("bad repository name component");
        }
        let mut i = 0;
        while i < b.len() {
            if alnum(b[i]) {
                i += 1;
                continue;
            }
            let start = i;
            while i < b.len() && !alnum(b[i]) {
                i += 1;
            }
            let sep = &comp[start..i];
            let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|c| c == b'-');
            if !ok {
                return Err("bad separator in repository name");
            }
        }
    }
    Ok(())
}

/// `[\w][\w.-]{0,127}`.
fn check_tag(tag: &str) -> Result<String, &'static str> {
    let b = tag.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    if b.is_empty() || b.len() > TAG_MAX || !word(b[0]) {
        return Err("bad tag");
    }
    if !b.iter().all(|&c| word(c) || c == b'.' || c == b'-') {
        return Err("bad tag");
    }
    Ok(tag.to_string())
}

/// `sha256:<64 hex>` or `sha512:<128 hex>` (the algorithms OCI image-spec registers).
fn check_digest(d: &str) -> Result<String, &'static str> {
    let (alg, hex) = d.split_once(':').ok_or("bad digest")?;
    let want = match alg {
        "sha256" => 64,
        "sha512" => 128,
        _ => return Err("unsupported digest algorithm (sha256 or sha512)"),
    };
    if hex.len() != want
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err("bad digest");
    }
    Ok(d.to_string())
}

impl fmt::Display for Reference {
    /// The familiar form Docker prints: `busybox:latest`, `localhost:5000/x:1`,
    /// `repo@sha256:...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.familiar_name())?;
        if let Some(tag) = self.tag() {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = self.digest() {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        Reference::parse(s).unwrap().normalized()
    }

    #[test]
    fn normalises_like_docker() {
        assert_eq!(norm("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(norm("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(norm("user/app"), "docker.io/user/app:latest");
        assert_eq!(norm("index.docker.io/library/x:2"), "docker.io/library/x:2");
        assert_eq!(norm("localhost:5000/x:1"), "localhost:5000/x:1");
        assert_eq!(norm("localhost/x"), "localhost/x:latest");
        assert_eq!(norm("quay.io/a/b/c:t"), "quay.io/a/b/c:t");
        assert_eq!(
            norm("a__b/c--d.e_f:V1.0-rc_2"),
            "docker.io/a__b/c--d.e_f:V1.0-rc_2"
        );
        assert_eq!(
            norm("Registry.Example:443/x"),
            "Registry.Example:443/x:latest"
        );
        let d = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(
            norm(&format!("busybox@{d}")),
            format!("docker.io/library/busybox@{d}")
        );
    }

    #[test]
    fn displays_familiar_form() {
        let show = |s: &str| Reference::parse(s).unwrap().to_string();
        assert_eq!(show("busybox"), "busybox:latest");
        assert_eq!(show("docker.io/library/busybox:1"), "busybox:1");
        assert_eq!(show("docker.io/user/app:2"), "user/app:2");
        assert_eq!(show("localhost:5000/x:1"), "localhost:5000/x:1");
        let d = format!("sha256:{}", "0f".repeat(32));
        assert_eq!(show(&format!("repo@{d}")), format!("repo@{d}"));
        // Display then parse is the identity on the normalised form.
        let r = Reference::parse("localhost:5000/x:1").unwrap();
        assert_eq!(Reference::parse(&r.to_string()).unwrap(), r);
    }

    #[test]
    fn rejects_invalid() {
        for bad in [
            "",
            "Busybox",
            "busy box",
            "busybox:",
            "busybox:-x",
            "a@sha256:abc",
            "a@md5:0123456789abcdef0123456789abcdef",
            "a___b",
            "a-.b",
            "-a",
            "a/",
            "a//b",
            "localhost:port/x",
            "x:tag with space",
            " busybox",
            &"a".repeat(300),
            &"ab".repeat(32),
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        let err = Reference::parse("Busybox").unwrap_err().to_string();
        assert!(
            err.contains("Busybox") && err.contains("lowercase"),
            "{err}"
        );
    }
}
