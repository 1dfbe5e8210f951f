//! Image references (`busybox`, `localhost:5000/x:1`, `repo@sha256:...`), parsed and normalised
//! the way Docker does it.
//!
//! Parsing and normalisation (default registry `docker.io`, `library/` for official images,
//! default tag `latest`) follow distribution/reference (`normalize.go`), implemented by
//! [`oci_spec::distribution::Reference`]; this module wraps it in a validated newtype with
//! the two renderings berth needs: the normalised form stored in the database and the short
//! "familiar" form Docker prints.

use std::fmt;
use std::str::FromStr;

use oci_spec::distribution::Reference as OciReference;

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
const OFFICIAL_PREFIX: &str = "library/";

/// A validated, normalised image reference.
///
/// `busybox` parses to registry `docker.io`, repository `library/busybox`, tag `latest`.
/// [`Reference::normalized`] gives `docker.io/library/busybox:latest` (the form stored in
/// `image_tags.name`); [`fmt::Display`] gives the familiar `busybox:latest`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reference(OciReference);

impl Reference {
    /// Parses `input` with Docker's grammar and normalisation.
    ///
    /// Errors: [`ReferenceError::Invalid`] for uppercase repository names, bad tags (more
    /// than 128 characters or illegal characters), unsupported or malformed digests,
    /// names over 255 characters, or an empty string.
    pub fn parse(input: &str) -> Result<Self, ReferenceError> {
        let invalid = |reason: String| ReferenceError::Invalid {
            input: input.to_string(),
            reason,
        };
        if input.trim() != input {
            return Err(invalid("surrounding whitespace".into()));
        }
        let parsed = OciReference::try_from(input).map_err(|e| invalid(e.to_string()))?;
        // Docker refuses a 64-hex repository name: it would be mistaken for an image id.
        let last = parsed.repository().rsplit('/').next().unwrap_or_default();
        if last.len() == 64 && last.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid("a 64-hex name is reserved for image ids".into()));
        }
        Ok(Self(parsed))
    }

    /// Registry host (and port), e.g. `docker.io`, `localhost:5000`.
    pub fn registry(&self) -> &str {
        self.0.registry()
    }

    /// Repository path inside the registry, e.g. `library/busybox`.
    pub fn repository(&self) -> &str {
        self.0.repository()
    }

    /// The tag, if any (`latest` when neither tag nor digest was given).
    pub fn tag(&self) -> Option<&str> {
        self.0.tag()
    }

    /// The digest (`sha256:<hex>`), if the reference pins one.
    pub fn digest(&self) -> Option<&str> {
        self.0.digest()
    }

    /// The fully normalised form, e.g. `docker.io/library/busybox:latest`; the key under
    /// which tags are stored.
    pub fn normalized(&self) -> String {
        self.0.whole()
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
