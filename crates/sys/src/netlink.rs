//! A minimal synchronous netlink client: one request, then read replies until
//! the kernel says the dump is done or acknowledges the request.
//!
//! The message types come from the `netlink-packet-*` crates; this module only
//! owns the socket loop and error mapping, so `link` and `sockdiag` stay short.
//! The socket belongs to the network namespace of the *calling thread* at the
//! time it is created, which is what lets `netns::run_in` query other
//! namespaces.

use std::fmt::Debug;
use std::io;

use netlink_packet_core::{
    NetlinkDeserializable, NetlinkHeader, NetlinkMessage, NetlinkPayload, NetlinkSerializable,
    NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_sys::{Socket, SocketAddr};

/// Errors of a netlink exchange.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// The netlink socket could not be opened, bound or used.
    #[error("netlink socket (protocol {protocol}) failed during {op}: {source}; check that the kernel supports it and that berth runs as root")]
    Socket {
        /// Netlink protocol number (`NETLINK_ROUTE` = 0, `NETLINK_SOCK_DIAG` = 4).
        protocol: isize,
        /// The socket operation that failed (`open`, `send`, `recv`).
        op: &'static str,
        /// The underlying I/O error.
        source: io::Error,
    },
    /// The kernel answered with an error code (NACK).
    #[error("kernel refused netlink request {request}: {source}")]
    Kernel {
        /// Short description of the request (`RTM_GETLINK dump`, ...).
        request: String,
        /// The errno reported by the kernel.
        source: io::Error,
    },
    /// A reply could not be decoded.
    #[error("could not decode netlink reply to {request}: {reason}; this is a bug in berth or an unsupported kernel")]
    Decode {
        /// Short description of the request.
        request: String,
        /// Decoder message.
        reason: String,
    },
}

impl NetlinkError {
    /// The errno the kernel returned, if this is a kernel NACK or an I/O error with an errno.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Self::Socket { source, .. } | Self::Kernel { source, .. } => source.raw_os_error(),
            Self::Decode { .. } => None,
        }
    }
}

/// Sends `payload` as a dump request (`NLM_F_REQUEST | NLM_F_DUMP`) on a fresh
/// socket of `protocol` and returns every inner message of the multipart reply.
///
/// Errors: [`NetlinkError`] for socket failures, kernel NACKs, undecodable replies.
pub(crate) fn dump<M>(protocol: isize, payload: M, what: &str) -> Result<Vec<M>, NetlinkError>
where
    M: NetlinkSerializable + NetlinkDeserializable + Debug,
{
    exchange(protocol, payload, NLM_F_REQUEST | NLM_F_DUMP, what)
}

/// Sends `payload` as a request that wants an acknowledgement (`NLM_F_ACK`),
/// with `extra_flags` (`NLM_F_CREATE | NLM_F_EXCL` for `RTM_NEW*`), and waits
/// for it; returns any messages the kernel sent before the ACK (the answer of
/// a non-dump `RTM_GET*`).
///
/// Errors: [`NetlinkError::Kernel`] when the kernel NACKs (errno kept).
pub(crate) fn request_ack_flags<M>(
    protocol: isize,
    payload: M,
    extra_flags: u16,
    what: &str,
) -> Result<Vec<M>, NetlinkError>
where
    M: NetlinkSerializable + NetlinkDeserializable + Debug,
{
    exchange(
        protocol,
        payload,
        NLM_F_REQUEST | NLM_F_ACK | extra_flags,
        what,
    )
}

fn exchange<M>(protocol: isize, payload: M, flags: u16, what: &str) -> Result<Vec<M>, NetlinkError>
where
    M: NetlinkSerializable + NetlinkDeserializable + Debug,
{
    let sock_err = |op, source| NetlinkError::Socket {
        protocol,
        op,
        source,
    };
    let mut socket = Socket::new(protocol).map_err(|e| sock_err("open", e))?;
    socket.bind_auto().map_err(|e| sock_err("bind", e))?;
    socket
        .connect(&SocketAddr::new(0, 0))
        .map_err(|e| sock_err("connect", e))?;

    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = 1;
    let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(payload));
    packet.finalize();
    let mut buf = vec![0; packet.buffer_len()];
    packet.serialize(&mut buf);
    socket.send(&buf, 0).map_err(|e| sock_err("send", e))?;

    let mut out = Vec::new();
    loop {
        let (datagram, _) = socket.recv_from_full().map_err(|e| sock_err("recv", e))?;
        if datagram.is_empty() {
            return Ok(out);
        }
        if read_datagram(&datagram, &mut out, what)? {
            return Ok(out);
        }
    }
}

/// Decodes every message of one datagram into `out`; returns true once the
/// exchange is finished (DONE or ACK seen).
fn read_datagram<M>(datagram: &[u8], out: &mut Vec<M>, what: &str) -> Result<bool, NetlinkError>
where
    M: NetlinkDeserializable + Debug,
{
    let mut offset = 0;
    while offset < datagram.len() {
        let msg = NetlinkMessage::<M>::deserialize(&datagram[offset..]).map_err(|e| {
            NetlinkError::Decode {
                request: what.to_string(),
                reason: e.to_string(),
            }
        })?;
        let len = msg.header.length as usize;
        match msg.payload {
            NetlinkPayload::Done(_) => return Ok(true),
            NetlinkPayload::Error(err) => {
                return match err.code {
                    None => Ok(true),
                    Some(code) => Err(NetlinkError::Kernel {
                        request: what.to_string(),
                        source: io::Error::from_raw_os_error(-code.get()),
                    }),
                };
            }
            NetlinkPayload::InnerMessage(inner) => out.push(inner),
            _ => {}
        }
        if len == 0 {
            break;
        }
        // Messages are 4-byte aligned inside a datagram (NLMSG_ALIGN).
        offset += (len + 3) & !3;
    }
    Ok(false)
}
