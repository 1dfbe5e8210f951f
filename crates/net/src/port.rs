//! Container ports as Docker declares them (`EXPOSE`, `--expose`): a port
//! number and a protocol, e.g. `80/tcp`; ranges like `8000-8010/tcp` expand
//! to one [`PortSpec`] per port.

use std::fmt;
use std::str::FromStr;

pub use berth_sys::sockdiag::Proto;

/// Errors parsing a port specification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// The port part is not a number in 1..=65535.
    #[error("invalid port {value:?} in {spec:?}; use a number from 1 to 65535")]
    InvalidPort {
        /// The whole specification.
        spec: String,
        /// The offending port text.
        value: String,
    },
    /// The protocol is not tcp, udp or sctp.
    #[error("unknown protocol {proto:?} in {spec:?}; use tcp, udp or sctp")]
    UnknownProto {
        /// The whole specification.
        spec: String,
        /// The offending protocol text.
        proto: String,
    },
    /// A range whose end is below its start.
    #[error("invalid port range {spec:?}; the end must not be below the start")]
    InvertedRange {
        /// The whole specification.
        spec: String,
    },
    /// A range where a single port is required.
    #[error(
        "{spec:?} is a port range where a single port is expected; use parse_exposed for ranges"
    )]
    UnexpectedRange {
        /// The whole specification.
        spec: String,
    },
}

/// One container port and its protocol (`80/tcp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortSpec {
    /// Port number, 1..=65535.
    pub port: u16,
    /// Transport protocol; `tcp` when the spec names none.
    pub proto: Proto,
}

impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.port, self.proto)
    }
}

impl FromStr for PortSpec {
    type Err = PortError;

    /// Parses `80`, `80/tcp`, `53/udp`, `9/sctp`. Ranges are refused
    /// ([`PortError::UnexpectedRange`]); use [`parse_exposed`] for those.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let specs = parse_exposed(s)?;
        match specs.as_slice() {
            [one] if !s.contains('-') => Ok(*one),
            _ => Err(PortError::UnexpectedRange {
                spec: s.to_string(),
            }),
        }
    }
}

/// Parses one `--expose` / `EXPOSE` value: `PORT[/PROTO]` or
/// `START-END[/PROTO]`, returning one [`PortSpec`] per port in order.
///
/// Errors: [`PortError`] for port 0 or > 65535, non-numbers, unknown
/// protocols and inverted ranges.
pub fn parse_exposed(spec: &str) -> Result<Vec<PortSpec>, PortError> {
    let (ports, proto) = match spec.split_once('/') {
        Some((ports, proto)) => {
            let p = Proto::from_name(proto).ok_or_else(|| PortError::UnknownProto {
                spec: spec.to_string(),
                proto: proto.to_string(),
            })?;
            (ports, p)
        }
        None => (spec, Proto::Tcp),
    };
    let (start, end) = match ports.split_once('-') {
        Some((a, b)) => (parse_port(spec, a)?, parse_port(spec, b)?),
        None => {
            let p = parse_port(spec, ports)?;
            (p, p)
        }
    };
    if end < start {
        return Err(PortError::InvertedRange {
            spec: spec.to_string(),
        });
    }
    Ok((start..=end).map(|port| PortSpec { port, proto }).collect())
}

fn parse_port(spec: &str, value: &str) -> Result<u16, PortError> {
    match value.trim().parse::<u16>() {
        Ok(p) if p != 0 => Ok(p),
        _ => Err(PortError::InvalidPort {
            spec: spec.to_string(),
            value: value.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ps(port: u16, proto: Proto) -> PortSpec {
        PortSpec { port, proto }
    }

    #[test]
    fn parses_single_ports() {
        assert_eq!("80".parse(), Ok(ps(80, Proto::Tcp)));
        assert_eq!("80/tcp".parse(), Ok(ps(80, Proto::Tcp)));
        assert_eq!("53/udp".parse(), Ok(ps(53, Proto::Udp)));
        assert_eq!("9/sctp".parse(), Ok(ps(9, Proto::Sctp)));
        assert_eq!("65535/TCP".parse(), Ok(ps(65535, Proto::Tcp)));
        assert_eq!(ps(53, Proto::Udp).to_string(), "53/udp");
    }

    #[test]
    fn rejects_bad_ports_and_protos() {
        let err = |s: &str| s.parse::<PortSpec>().unwrap_err();
        assert!(matches!(err("0"), PortError::InvalidPort { .. }));
        assert!(matches!(err("65536"), PortError::InvalidPort { .. }));
        assert!(matches!(err("http"), PortError::InvalidPort { .. }));
        assert!(matches!(err(""), PortError::InvalidPort { .. }));
        assert!(matches!(err("80/icmp"), PortError::UnknownProto { .. }));
        assert!(matches!(err("80/"), PortError::UnknownProto { .. }));
        assert!(matches!(err("80-81"), PortError::UnexpectedRange { .. }));
        assert!(matches!(err("80-80"), PortError::UnexpectedRange { .. }));
    }

    #[test]
    fn expands_ranges() {
        let specs = parse_exposed("8000-8010/udp").unwrap();
        assert_eq!(specs.len(), 11);
        assert_eq!(specs[0], ps(8000, Proto::Udp));
        assert_eq!(specs[10], ps(8010, Proto::Udp));
        assert_eq!(parse_exposed("7-7").unwrap(), vec![ps(7, Proto::Tcp)]);
        assert_eq!(parse_exposed("443").unwrap(), vec![ps(443, Proto::Tcp)]);
        assert!(matches!(
            parse_exposed("8010-8000"),
            Err(PortError::InvertedRange { .. })
        ));
        assert!(matches!(
            parse_exposed("0-5/tcp"),
            Err(PortError::InvalidPort { .. })
        ));
        assert!(matches!(
            parse_exposed("1-70000"),
            Err(PortError::InvalidPort { .. })
        ));
    }
}
