//! The network mode of a container, parsed from `--net` / `--network`
//! (Docker's syntax: `none`, `host`, `container:<name|id>`, or a network name).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Errors parsing a network mode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModeError {
    /// The value was empty.
    #[error("empty network mode; use none, host, container:NAME or a network name")]
    Empty,
    /// `container:` without a target.
    #[error("network mode {value:?} names no container; use container:NAME or container:ID")]
    EmptyContainer {
        /// The rejected value.
        value: String,
    },
}

/// How a container is attached to the network (Docker's `NetworkMode`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum NetworkMode {
    /// `none`: a private namespace with only `lo` up.
    None,
    /// `host`: no namespace of its own; shares the namespace berth runs in.
    Host,
    /// `container:<name|id>`: shares another container's namespace.
    Container(String),
    /// A named network: `bridge` (also spelled `default`) or a user-defined one.
    Network(String),
}

impl Default for NetworkMode {
    /// Docker's default on Linux: the `bridge` network.
    fn default() -> Self {
        NetworkMode::Network("bridge".to_string())
    }
}

impl NetworkMode {
    /// True for modes that give the container a namespace berth creates
    /// (`none` and named networks).
    pub fn owns_namespace(&self) -> bool {
        matches!(self, Self::None | Self::Network(_))
    }
}

impl FromStr for NetworkMode {
    type Err = ModeError;

    /// Parses Docker's spelling; `default` means the `bridge` network.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "" => Err(ModeError::Empty),
            "none" => Ok(Self::None),
            "host" => Ok(Self::Host),
            "default" => Ok(Self::default()),
            _ => match s.strip_prefix("container:") {
                Some("") => Err(ModeError::EmptyContainer {
                    value: s.to_string(),
                }),
                Some(target) => Ok(Self::Container(target.to_string())),
                None => Ok(Self::Network(s.to_string())),
            },
        }
    }
}

impl fmt::Display for NetworkMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("none"),
            Self::Host => f.write_str("host"),
            Self::Container(target) => write!(f, "container:{target}"),
            Self::Network(name) => f.write_str(name),
        }
    }
}

impl TryFrom<String> for NetworkMode {
    type Error = ModeError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<NetworkMode> for String {
    fn from(mode: NetworkMode) -> String {
        mode.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        let p = |s: &str| s.parse::<NetworkMode>();
        assert_eq!(p("none"), Ok(NetworkMode::None));
        assert_eq!(p("host"), Ok(NetworkMode::Host));
        assert_eq!(p("bridge"), Ok(NetworkMode::Network("bridge".into())));
        assert_eq!(p("default"), Ok(NetworkMode::Network("bridge".into())));
        assert_eq!(p("mynet"), Ok(NetworkMode::Network("mynet".into())));
        assert_eq!(p("container:web"), Ok(NetworkMode::Container("web".into())));
        assert_eq!(
            p("container:"),
            Err(ModeError::EmptyContainer {
                value: "container:".into()
            })
        );
        assert_eq!(p(""), Err(ModeError::Empty));
    }

    #[test]
    fn displays_docker_form_and_round_trips() {
        for s in ["none", "host", "bridge", "mynet", "container:3f2a"] {
            assert_eq!(s.parse::<NetworkMode>().unwrap().to_string(), s);
        }
        assert!(NetworkMode::None.owns_namespace());
        assert!(!NetworkMode::Host.owns_namespace());
        assert!(!NetworkMode::Container("x".into()).owns_namespace());
    }

    #[test]
    fn serializes_as_string() {
        let mode = NetworkMode::Container("web".into());
        assert_eq!(serde_json::to_string(&mode).unwrap(), "\"container:web\"");
        let back: NetworkMode = serde_json::from_str("\"host\"").unwrap();
        assert_eq!(back, NetworkMode::Host);
        assert!(serde_json::from_str::<NetworkMode>("\"container:\"").is_err());
    }
}
