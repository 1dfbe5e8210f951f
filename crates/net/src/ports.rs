//! Host port reservations for published ports (issue 3 "Published ports"): every host port a
//! container publishes is held by a real socket for the life of the mapping (by the
//! container's monitor), so a host service can neither silently shadow it nor be shadowed.
//! A TCP port is bound but not listened on (no connection can land on it: traffic is DNAT'ed
//! to the container before it could); a UDP port is bound. Port 0 asks the kernel for a free
//! ephemeral port (`ip_local_port_range`), as `-P` and `-p 80` need.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::model::{PortMapping, PublishRequest};
use crate::port::Proto;

/// Errors of port reservation.
#[derive(Debug, thiserror::Error)]
pub enum ReserveError {
    /// The host port is taken.
    #[error("host port {addr}/{proto} is already in use{owner}")]
    InUse {
        /// Address and port.
        addr: SocketAddr,
        /// Protocol.
        proto: Proto,
        /// `" by container web1"` / `" by process nginx (pid 12)"` / empty when unknown.
        owner: String,
    },
    /// SCTP ports cannot be reserved with a socket here.
    #[error("cannot reserve {addr}/sctp: {source}")]
    Sctp {
        /// Address and port.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// Any other socket failure.
    #[error("cannot reserve host port {addr}/{proto}: {source}")]
    Io {
        /// Address and port.
        addr: SocketAddr,
        /// Protocol.
        proto: Proto,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Sockets holding published host ports; dropping it releases them.
#[derive(Debug, Default)]
pub struct Reservation {
    sockets: Vec<Socket>,
}

impl Reservation {
    /// How many sockets are held.
    pub fn len(&self) -> usize {
        self.sockets.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.sockets.is_empty()
    }
}

/// Binds a socket for every request (in the namespace berth runs in) and returns the final
/// mappings (ephemeral ports filled in) with the reservation. On any failure, everything bound
/// so far is released and the error names the port; `owner_of` names who holds a taken port.
pub fn reserve(
    requests: &[PublishRequest],
    owner_of: impl Fn(SocketAddr, Proto) -> String,
) -> Result<(Vec<PortMapping>, Reservation), ReserveError> {
    let mut held = Reservation::default();
    let mut out = Vec::with_capacity(requests.len());
    for r in requests {
        let ip = r.host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let addr = SocketAddr::new(ip, r.host_port);
        let sock = bind_one(addr, r.proto).map_err(|e| match e.raw_os_error() {
            Some(EADDRINUSE) => ReserveError::InUse {
                addr,
                proto: r.proto,
                owner: owner_of(addr, r.proto),
            },
            _ if r.proto == Proto::Sctp => ReserveError::Sctp { addr, source: e },
            _ => ReserveError::Io {
                addr,
                proto: r.proto,
                source: e,
            },
        })?;
        let port = sock
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .map_or(r.host_port, |a| a.port());
        out.push(PortMapping {
            host_ip: r.host_ip,
            host_port: port,
            container_port: r.container_port,
            proto: r.proto,
        });
        held.sockets.push(sock);
    }
    Ok((out, held))
}

/// `EADDRINUSE` (asm-generic/errno.h).
const EADDRINUSE: i32 = 98;

fn bind_one(addr: SocketAddr, proto: Proto) -> std::io::Result<Socket> {
    let domain = if addr.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let (ty, p) = match proto {
        Proto::Tcp => (Type::STREAM, Protocol::TCP),
        Proto::Udp => (Type::DGRAM, Protocol::UDP),
        // SOCK_STREAM/IPPROTO_SCTP, protocol number 132 (RFC 4960).
        Proto::Sctp => (Type::STREAM, Protocol::from(132)),
    };
    let s = Socket::new(domain, ty, Some(p))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.bind(&SockAddr::from(addr))?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(port: u16, proto: Proto) -> PublishRequest {
        PublishRequest {
            host_ip: Some("127.0.0.1".parse().unwrap()),
            host_port: port,
            container_port: 80,
            proto,
        }
    }

    #[test]
    fn ephemeral_ports_are_chosen_and_held() {
        let (maps, held) = reserve(&[req(0, Proto::Tcp), req(0, Proto::Udp)], |_, _| {
            String::new()
        })
        .unwrap();
        assert_eq!(held.len(), 2);
        assert!(maps.iter().all(|m| m.host_port != 0));
        // The held TCP port cannot be bound again while the reservation lives.
        let again = reserve(&[req(maps[0].host_port, Proto::Tcp)], |_, _| {
            " by test".into()
        });
        let err = again.unwrap_err().to_string();
        assert!(err.contains("already in use by test"), "{err}");
        drop(held);
        assert!(reserve(&[req(maps[0].host_port, Proto::Tcp)], |_, _| String::new()).is_ok());
    }

    #[test]
    fn a_failure_releases_what_was_bound() {
        let (maps, _held) = reserve(&[req(0, Proto::Tcp)], |_, _| String::new()).unwrap();
        let taken = maps[0].host_port;
        // First request binds a fresh port, the second collides: the first must be released.
        let (probe, probe_held) = reserve(&[req(0, Proto::Udp)], |_, _| String::new()).unwrap();
        let free_udp = probe[0].host_port;
        drop(probe_held);
        let r = reserve(
            &[req(free_udp, Proto::Udp), req(taken, Proto::Tcp)],
            |_, _| String::new(),
        );
        assert!(r.is_err());
        assert!(reserve(&[req(free_udp, Proto::Udp)], |_, _| String::new()).is_ok());
    }
}
