//! Listening sockets of the calling thread's network namespace, from the
//! kernel's socket-diagnostics netlink family (`NETLINK_SOCK_DIAG`, the
//! interface `ss -ltun` uses).
//!
//! TCP sockets are reported in state `LISTEN`; UDP sockets in state `CLOSE`,
//! which is what the kernel reports for bound but unconnected UDP sockets
//! (`net/ipv4/udp_diag.c`). Sources: sock_diag(7), `include/uapi/linux/inet_diag.h`.

use std::fmt;
use std::net::IpAddr;

use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP, IPPROTO_UDP};
use netlink_packet_sock_diag::inet::{
    nlas::Nla, ExtensionFlags, InetRequest, InetResponse, SocketId, StateFlags,
};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_sys::protocols::NETLINK_SOCK_DIAG;

use crate::netlink::{self, NetlinkError};

/// Errors of socket listing.
#[derive(Debug, thiserror::Error)]
pub enum SockDiagError {
    /// The sock_diag dump for one family/protocol failed.
    #[error("listing {proto} IPv{family} sockets via sock_diag failed: {source}; is the inet_diag/udp_diag kernel module available?")]
    Dump {
        /// Transport protocol being listed.
        proto: Proto,
        /// IP version (4 or 6).
        family: u8,
        /// The netlink failure.
        #[source]
        source: NetlinkError,
    },
}

/// A transport protocol that ports belong to.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// TCP (IPPROTO_TCP = 6).
    Tcp,
    /// UDP (IPPROTO_UDP = 17).
    Udp,
    /// SCTP (IPPROTO_SCTP = 132). Never reported by [`list_listeners`] (yet).
    Sctp,
}

impl Proto {
    /// Parses Docker's lowercase protocol names `tcp`, `udp`, `sctp`
    /// (case-insensitive); `None` for anything else.
    pub fn from_name(name: &str) -> Option<Proto> {
        match name.to_ascii_lowercase().as_str() {
            "tcp" => Some(Self::Tcp),
            "udp" => Some(Self::Udp),
            "sctp" => Some(Self::Sctp),
            _ => None,
        }
    }

    /// The lowercase name as Docker prints it (`tcp`, `udp`, `sctp`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::Sctp => "sctp",
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A socket that holds a local port: a listening TCP socket or a bound,
/// unconnected UDP socket.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Listener {
    /// Transport protocol.
    pub proto: Proto,
    /// Local address; unspecified (`0.0.0.0` / `::`) for wildcard binds.
    pub addr: IpAddr,
    /// Local port (host byte order).
    pub port: u16,
    /// Socket inode number (`socket:[INODE]` in `/proc/PID/fd`).
    pub inode: u64,
    /// `IPV6_V6ONLY` for IPv6 sockets (`INET_DIAG_SKV6ONLY`); `None` for IPv4 sockets.
    pub v6only: Option<bool>,
}

/// Lists TCP listeners and bound UDP sockets, IPv4 and IPv6, of the calling
/// thread's network namespace. Sockets with local port 0 are skipped.
///
/// Errors: [`SockDiagError::Dump`] naming the family/protocol whose dump failed.
pub fn list_listeners() -> Result<Vec<Listener>, SockDiagError> {
    let mut out = Vec::new();
    for proto in [Proto::Tcp, Proto::Udp] {
        for family in [4u8, 6] {
            let responses = dump(proto, family).map_err(|source| SockDiagError::Dump {
                proto,
                family,
                source,
            })?;
            out.extend(
                responses
                    .iter()
                    .filter_map(|r| listener_from(proto, r))
                    .filter(|l| l.port != 0),
            );
        }
    }
    Ok(out)
}

fn dump(proto: Proto, family: u8) -> Result<Vec<InetResponse>, NetlinkError> {
    let (states, protocol) = match proto {
        Proto::Tcp => (StateFlags::LISTEN, IPPROTO_TCP),
        _ => (StateFlags::CLOSE, IPPROTO_UDP),
    };
    let (family, socket_id) = if family == 4 {
        (AF_INET, SocketId::new_v4())
    } else {
        (AF_INET6, SocketId::new_v6())
    };
    let request = SockDiagMessage::InetRequest(InetRequest {
        family,
        protocol,
        extensions: ExtensionFlags::empty(),
        states,
        socket_id,
    });
    let what = format!("sock_diag {proto} dump");
    let msgs = netlink::dump(NETLINK_SOCK_DIAG, request, &what)?;
    Ok(msgs
        .into_iter()
        .filter_map(|m| match m {
            SockDiagMessage::InetResponse(r) => Some(*r),
            _ => None,
        })
        .collect())
}

fn listener_from(proto: Proto, response: &InetResponse) -> Option<Listener> {
    let id = &response.header.socket_id;
    let v6only = response.nlas.iter().find_map(|nla| match nla {
        Nla::SkV6Only(v) => Some(*v),
        _ => None,
    });
    // The kernel adds INET_DIAG_SKV6ONLY to every AF_INET6 socket's reply
    // (inet_diag_msg_attrs_fill), so `None` here means an IPv4 socket.
    Some(Listener {
        proto,
        addr: id.source_address,
        port: id.source_port,
        inode: u64::from(response.header.inode),
        v6only: if id.source_address.is_ipv6() {
            v6only
        } else {
            None
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proto_names_round_trip() {
        for p in [Proto::Tcp, Proto::Udp, Proto::Sctp] {
            assert_eq!(Proto::from_name(p.as_str()), Some(p));
            assert_eq!(p.to_string(), p.as_str());
        }
        assert_eq!(Proto::from_name("TCP"), Some(Proto::Tcp));
        assert_eq!(Proto::from_name("icmp"), None);
    }
}
