//! Platforms (`os/arch[/variant]`) and the choice of one manifest from an image index.
//!
//! Field names and values follow the OCI image spec (`image-index.md`, `platform` object, whose
//! values are Go's `GOOS`/`GOARCH`); the default is the host's, as Docker and Podman do.

use std::fmt;
use std::str::FromStr;

use super::RegistryError;

/// A platform, e.g. `linux/amd64` or `linux/arm/v7`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    /// `GOOS`, e.g. `linux`.
    pub os: String,
    /// `GOARCH`, e.g. `amd64`, `arm64`.
    pub architecture: String,
    /// CPU variant, e.g. `v7`, `v8`; `None` matches any.
    pub variant: Option<String>,
}

impl Platform {
    /// The platform of this host (Rust's target arch mapped to `GOARCH`).
    pub fn host() -> Self {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "arm" => "arm",
            "powerpc64" => "ppc64le",
            "s390x" => "s390x",
            "riscv64" => "riscv64",
            other => other,
        };
        Self {
            os: "linux".into(),
            architecture: architecture.into(),
            variant: None,
        }
    }

    /// Whether an index entry's platform fields match this one (a `None` variant here matches
    /// any variant there).
    pub fn matches(&self, os: &str, architecture: &str, variant: Option<&str>) -> bool {
        self.os == os
            && self.architecture == architecture
            && self.variant.as_deref().is_none_or(|v| Some(v) == variant)
    }
}

impl FromStr for Platform {
    type Err = RegistryError;

    /// Parses `os/arch[/variant]`.
    fn from_str(input: &str) -> Result<Self, RegistryError> {
        let bad = || RegistryError::Platform {
            input: input.to_string(),
        };
        let parts: Vec<&str> = input.split('/').collect();
        let ok =
            |s: &&str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !(2..=3).contains(&parts.len()) || !parts.iter().all(ok) {
            return Err(bad());
        }
        Ok(Self {
            os: parts[0].to_ascii_lowercase(),
            architecture: parts[1].to_ascii_lowercase(),
            variant: parts.get(2).map(|v| v.to_ascii_lowercase()),
        })
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_matches() {
        let p: Platform = "linux/arm64".parse().unwrap();
        assert!(p.matches("linux", "arm64", Some("v8")));
        assert!(!p.matches("linux", "amd64", None));
        let v7: Platform = "linux/arm/v7".parse().unwrap();
        assert!(!v7.matches("linux", "arm", Some("v6")));
        assert_eq!(v7.to_string(), "linux/arm/v7");
        for bad in ["linux", "linux/", "a/b/c/d", "linux/amd 64"] {
            assert!(bad.parse::<Platform>().is_err(), "{bad}");
        }
    }
}
