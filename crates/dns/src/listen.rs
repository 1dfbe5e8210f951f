//! Listening sockets on a gateway address, port 53.
//!
//! IP_FREEBIND / IPV6_FREEBIND (ip(7), ipv6(7)) let the bind succeed while the bridge holding
//! the address is momentarily down or the address is not yet assigned: the socket starts
//! receiving as soon as it is. SO_REUSEADDR lets a restarted server rebind the TCP port at once
//! despite connections of the previous one in TIME_WAIT. IPv6 sockets are IPV6_V6ONLY so that
//! they never claim IPv4 traffic.

use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, UdpSocket};

/// Errors of binding a listener.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// socket(2), setsockopt(2), bind(2) or listen(2) failed.
    #[error("cannot listen on {addr}/{proto}: {source}; is another DNS server bound there?")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// `udp` or `tcp`.
        proto: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
}

/// A UDP socket bound to `addr`, registered with the current tokio runtime.
///
/// Errors: [`ListenError::Bind`].
pub fn bind_udp(addr: SocketAddr) -> Result<UdpSocket, ListenError> {
    let err = |source| ListenError::Bind {
        addr,
        proto: "udp",
        source,
    };
    let sock = socket(addr, Type::DGRAM, Protocol::UDP).map_err(err)?;
    UdpSocket::from_std(sock.into()).map_err(err)
}

/// A TCP listener bound to `addr`, registered with the current tokio runtime.
///
/// Errors: [`ListenError::Bind`].
pub fn bind_tcp(addr: SocketAddr) -> Result<TcpListener, ListenError> {
    let err = |source| ListenError::Bind {
        addr,
        proto: "tcp",
        source,
    };
    let sock = socket(addr, Type::STREAM, Protocol::TCP).map_err(err)?;
    sock.listen(128).map_err(err)?;
    TcpListener::from_std(sock.into()).map_err(err)
}

fn socket(addr: SocketAddr, ty: Type, proto: Protocol) -> std::io::Result<Socket> {
    let sock = Socket::new(Domain::for_address(addr), ty, Some(proto))?;
    match addr {
        SocketAddr::V4(_) => sock.set_freebind_v4(true)?,
        SocketAddr::V6(_) => {
            sock.set_only_v6(true)?;
            sock.set_freebind_v6(true)?;
        }
    }
    sock.set_reuse_address(true)?;
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    Ok(sock)
}
