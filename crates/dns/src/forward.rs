//! Forwarding queries that are not berth's to the upstream resolvers, in order, each with the
//! timeout of [`ForwardOptions`] (resolv.conf's `timeout:N`, else Docker's 4 s), for
//! `attempts:N` rounds over the list (else one).
//!
//! The query bytes go upstream unchanged except for the message ID, which is replaced by a
//! random one for the upstream exchange and restored in the answer (RFC 5452 §9.2: an
//! unpredictable ID and source port make off-path spoofing hard). A UDP query is forwarded over
//! UDP (a truncated upstream answer is passed on, and the client retries over TCP); a TCP query
//! is forwarded over TCP (RFC 1035 §4.2.2: two-byte length prefix).

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::timeout;

use crate::resolv::ForwardOptions;

/// The largest UDP answer accepted from upstream (the EDNS maximum in practice).
const MAX_UDP: usize = 65535;

/// Transport a query arrived on; it is forwarded on the same one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// UDP datagrams.
    Udp,
    /// TCP with two-byte length prefixes.
    Tcp,
}

/// Forwards `query` (a whole DNS message, at least the 12-byte header) to each of `upstreams`
/// in turn, `opts.attempts` rounds, each server given `opts.timeout`, and returns the first
/// answer, with the client's ID restored; `None` when every server failed or timed out (the
/// caller answers SERVFAIL).
pub async fn forward(
    upstreams: &[SocketAddr],
    query: &[u8],
    transport: Transport,
    opts: ForwardOptions,
) -> Option<Vec<u8>> {
    if query.len() < 12 {
        return None;
    }
    let client_id = [query[0], query[1]];
    let mut query = query.to_vec();
    let rounds = usize::try_from(opts.attempts.max(1)).unwrap_or(1);
    for server in std::iter::repeat_n(upstreams, rounds).flatten() {
        let id: [u8; 2] = rand::random();
        query[..2].copy_from_slice(&id);
        let exchange = async {
            match transport {
                Transport::Udp => exchange_udp(*server, &query, id).await,
                Transport::Tcp => exchange_tcp(*server, &query, id).await,
            }
        };
        match timeout(opts.timeout, exchange).await {
            Ok(Ok(mut answer)) => {
                answer[..2].copy_from_slice(&client_id);
                return Some(answer);
            }
            Ok(Err(e)) => tracing::debug!(%server, error = %e, "upstream failed"),
            Err(_) => tracing::debug!(%server, "upstream timed out"),
        }
    }
    None
}

async fn exchange_udp(server: SocketAddr, query: &[u8], id: [u8; 2]) -> std::io::Result<Vec<u8>> {
    let local: SocketAddr = match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let sock = UdpSocket::bind(local).await?;
    // connect(2) on a UDP socket: only datagrams from `server` are delivered to it.
    sock.connect(server).await?;
    sock.send(query).await?;
    let mut buf = vec![0u8; MAX_UDP];
    loop {
        let n = sock.recv(&mut buf).await?;
        if n >= 12 && buf[..2] == id {
            buf.truncate(n);
            return Ok(buf);
        }
    }
}

async fn exchange_tcp(server: SocketAddr, query: &[u8], id: [u8; 2]) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(server).await?;
    let len = u16::try_from(query.len()).map_err(|_| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "query over 65535 bytes")
    })?;
    let mut framed = Vec::with_capacity(query.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(query);
    stream.write_all(&framed).await?;
    let n = usize::from(stream.read_u16().await?);
    let mut buf = vec![0u8; n];
    stream.read_exact(&mut buf).await?;
    if n < 12 || buf[..2] != id {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "answer with another id",
        ));
    }
    Ok(buf)
}
