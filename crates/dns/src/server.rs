//! The server loop: listeners on every DNS-enabled network's gateway (UDP and TCP, port 53),
//! resynchronised with the store on request (SIGHUP) and every [`RESYNC`] as a safety net, and
//! the per-query path (parse, answer or forward, encode).
//!
//! Each listener is bound to one gateway address, so the address a query arrived on says which
//! network asked; replies leave from that same address. Store reads are short SQLite reads done
//! inline on the single-threaded runtime (no answer waits for anything else); only forwarding
//! waits, and each forwarded query runs in its own task.

use std::collections::HashMap;
use std::net::IpAddr;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use hickory_proto::op::{Message, OpCode, ResponseCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::answer::{self, Outcome, EDNS_PAYLOAD};
use crate::forward::{self, Transport};
use crate::instance::Instance;
use crate::listen::{bind_tcp, bind_udp, ListenError};
use crate::records::{DnsNetwork, RecordsError, StoreRecords};
use crate::resolv::{self, ForwardOptions};
use crate::DnsConfig;

/// The DNS port (RFC 1035 §4.2).
pub const DNS_PORT: u16 = 53;

/// How often the listeners are checked against the store even without SIGHUP.
pub const RESYNC: Duration = Duration::from_secs(30);

/// How long an idle TCP client connection is kept (RFC 7766 §6.2.3 suggests seconds).
const TCP_IDLE: Duration = Duration::from_secs(10);

/// A request to the running server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Re-read networks (and resolv.conf) and rebind.
    Reload,
    /// Stop serving and return.
    Stop,
}

/// What every query handler shares.
struct Shared {
    records: Mutex<StoreRecords>,
    upstreams: RwLock<Arc<Vec<SocketAddr>>>,
    forward: RwLock<ForwardOptions>,
}

/// The two tasks serving one gateway address; dropping it closes both sockets.
struct Listener {
    network: Arc<DnsNetwork>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Serves until [`Command::Stop`], the control channel closing, or no DNS network left.
///
/// Errors: [`RecordsError`] when the store cannot be opened.
pub(crate) async fn run(
    cfg: &DnsConfig,
    instance: &Instance,
    mut control: mpsc::UnboundedReceiver<Command>,
) -> Result<(), RecordsError> {
    let shared = Arc::new(Shared {
        records: Mutex::new(StoreRecords::open(&cfg.root)?),
        upstreams: RwLock::new(Arc::new(Vec::new())),
        forward: RwLock::new(ForwardOptions::default()),
    });
    let mut listeners = HashMap::new();
    loop {
        refresh_upstreams(cfg, &shared);
        if sync(&shared, &mut listeners) == Some(0) {
            instance.retire();
            if sync(&shared, &mut listeners) == Some(0) {
                tracing::info!("no network with DNS left; exiting");
                return Ok(());
            }
            if let Err(e) = instance.write_pid() {
                tracing::warn!(error = %e, "cannot rewrite the pid file");
            }
        }
        tokio::select! {
            cmd = control.recv() => match cmd {
                Some(Command::Reload) => tracing::debug!("reload requested"),
                Some(Command::Stop) | None => return Ok(()),
            },
            () = tokio::time::sleep(RESYNC) => {}
        }
    }
}

fn refresh_upstreams(cfg: &DnsConfig, shared: &Shared) {
    let opts = match cfg.forward {
        Some(o) => Ok(o),
        None => resolv::read_options(std::path::Path::new(resolv::RESOLV_CONF)),
    };
    match opts {
        Ok(o) => *shared.forward.write().unwrap_or_else(|p| p.into_inner()) = o,
        Err(e) => tracing::warn!(error = %e, "keeping the previous forwarding options"),
    }
    let list = match &cfg.upstreams {
        Some(list) => list.clone(),
        None => match resolv::read_upstreams(std::path::Path::new(resolv::RESOLV_CONF)) {
            Ok(list) => list,
            Err(e) => {
                tracing::warn!(error = %e, "keeping the previous upstream servers");
                return;
            }
        },
    };
    *shared.upstreams.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(list);
}

/// Makes the listeners match the store's DNS networks; returns how many networks there are,
/// or `None` when the store could not be read (listeners are then left as they are).
fn sync(shared: &Arc<Shared>, listeners: &mut HashMap<SocketAddr, Listener>) -> Option<usize> {
    let networks = {
        let records = shared.records.lock().unwrap_or_else(|p| p.into_inner());
        match records.dns_networks() {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read networks; keeping the current listeners");
                return None;
            }
        }
    };
    let mut wanted: HashMap<SocketAddr, Arc<DnsNetwork>> = HashMap::new();
    for net in &networks {
        let net = Arc::new(net.clone());
        for gw in &net.gateways {
            wanted.insert(SocketAddr::new(*gw, DNS_PORT), net.clone());
        }
    }
    listeners.retain(|addr, l| wanted.get(addr).is_some_and(|n| *n == l.network));
    for (addr, net) in wanted {
        if listeners.contains_key(&addr) {
            continue;
        }
        match listen(shared, addr, &net) {
            Ok(l) => {
                tracing::info!(%addr, network = %net.name, "listening");
                listeners.insert(addr, l);
            }
            // Retried at the next sync.
            Err(e) => tracing::warn!(error = %e, "cannot listen"),
        }
    }
    Some(networks.len())
}

fn listen(
    shared: &Arc<Shared>,
    addr: SocketAddr,
    net: &Arc<DnsNetwork>,
) -> Result<Listener, ListenError> {
    let udp = Arc::new(bind_udp(addr)?);
    let tcp = bind_tcp(addr)?;
    let tasks = vec![
        tokio::spawn(serve_udp(udp, net.clone(), shared.clone())),
        tokio::spawn(serve_tcp(tcp, net.clone(), shared.clone())),
    ];
    Ok(Listener {
        network: net.clone(),
        tasks,
    })
}

async fn serve_udp(sock: Arc<UdpSocket>, net: Arc<DnsNetwork>, shared: Arc<Shared>) {
    let mut buf = vec![0u8; 65535];
    loop {
        let (n, peer) = match sock.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!(error = %e, "udp receive failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let query = buf[..n].to_vec();
        let (sock, net, shared) = (sock.clone(), net.clone(), shared.clone());
        tokio::spawn(async move {
            if let Some(resp) = handle(&shared, &net, &query, Transport::Udp, Some(peer.ip())).await
            {
                if let Err(e) = sock.send_to(&resp, peer).await {
                    tracing::debug!(%peer, error = %e, "udp send failed");
                }
            }
        });
    }
}

async fn serve_tcp(listener: TcpListener, net: Arc<DnsNetwork>, shared: Arc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(serve_tcp_client(stream, net.clone(), shared.clone()));
            }
            Err(e) => {
                tracing::debug!(error = %e, "tcp accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// One TCP client: length-prefixed queries in sequence (RFC 1035 §4.2.2) until it closes or
/// idles for [`TCP_IDLE`].
async fn serve_tcp_client(mut stream: TcpStream, net: Arc<DnsNetwork>, shared: Arc<Shared>) {
    let client = stream.peer_addr().ok().map(|a| a.ip());
    loop {
        let read = async {
            let len = usize::from(stream.read_u16().await?);
            let mut query = vec![0u8; len];
            stream.read_exact(&mut query).await?;
            Ok::<_, std::io::Error>(query)
        };
        let Ok(Ok(query)) = tokio::time::timeout(TCP_IDLE, read).await else {
            return;
        };
        let Some(resp) = handle(&shared, &net, &query, Transport::Tcp, client).await else {
            return;
        };
        let Ok(len) = u16::try_from(resp.len()) else {
            return;
        };
        let mut framed = Vec::with_capacity(resp.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(&resp);
        if stream.write_all(&framed).await.is_err() {
            return;
        }
    }
}

/// The response bytes for one query, or `None` to stay silent: for garbage shorter than a
/// header, for a client that is not the network's (see [`serves`]), and for any message with
/// QR=1 (a response: answering one could make two servers bounce packets at each other
/// forever, or reflect spoofed traffic; RFC 1035 §4.1.1).
async fn handle(
    shared: &Shared,
    net: &DnsNetwork,
    query: &[u8],
    transport: Transport,
    client: Option<IpAddr>,
) -> Option<Vec<u8>> {
    // The QR bit is the top bit of the third header byte.
    let is_response = query.len() >= 3 && query[2] & 0x80 != 0;
    if is_response || !client.is_some_and(|c| serves(net, c)) {
        return None;
    }
    let request = match Message::from_vec(query) {
        Ok(m) => m,
        Err(_) if query.len() >= 12 => {
            let id = u16::from_be_bytes([query[0], query[1]]);
            return Message::error_msg(id, OpCode::Query, ResponseCode::FormErr)
                .to_vec()
                .ok();
        }
        Err(_) => return None,
    };
    let outcome = {
        let records = shared.records.lock().unwrap_or_else(|p| p.into_inner());
        answer::answer_for(&records, net, &request, client)
    };
    let reply = match outcome {
        Ok(Outcome::Reply(msg)) => msg,
        Ok(Outcome::Forward) => {
            let upstreams = shared
                .upstreams
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            let opts = *shared.forward.read().unwrap_or_else(|p| p.into_inner());
            if let Some(bytes) = forward::forward(&upstreams, query, transport, opts).await {
                return Some(bytes);
            }
            answer::reply(&request, ResponseCode::ServFail)
        }
        Err(e) => {
            tracing::warn!(error = %e, "answering SERVFAIL");
            answer::reply(&request, ResponseCode::ServFail)
        }
    };
    encode(&request, &reply, transport)
}

/// Encodes `reply`; over UDP, a reply larger than the client accepts (512 bytes without EDNS,
/// RFC 1035 §4.2.1; its advertised size, at most ours, with it) is sent truncated with TC set.
fn encode(request: &Message, reply: &Message, transport: Transport) -> Option<Vec<u8>> {
    let bytes = reply.to_vec().ok()?;
    let limit = usize::from(request.max_payload().min(EDNS_PAYLOAD.max(512)));
    if transport == Transport::Udp && bytes.len() > limit {
        return reply.truncate().to_vec().ok();
    }
    Some(bytes)
}

/// Whether the server on `net`'s gateways answers `client`: an address inside one of the
/// network's subnets (its containers, and the host itself, whose queries leave from the
/// gateway) or loopback. Anyone else — another host routed to the gateway, a container of
/// another network — gets silence, so the server is no open resolver even when the
/// firewall's port-53 rule is missing (issue 11).
pub(crate) fn serves(net: &DnsNetwork, client: IpAddr) -> bool {
    let client = match client {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    client.is_loopback() || net.subnets.iter().any(|s| s.contains(&client))
}

#[cfg(test)]
mod client_tests {
    use super::*;

    #[test]
    fn only_the_networks_own_addresses_are_served() {
        let net = DnsNetwork {
            id: "0".repeat(64),
            name: "front".into(),
            subnets: vec![
                "172.18.0.0/16".parse().unwrap(),
                "fd00:1::/64".parse().unwrap(),
            ],
            gateways: vec!["172.18.0.1".parse().unwrap()],
        };
        for ok in [
            "172.18.0.5",
            "172.18.0.1",
            "fd00:1::9",
            "127.0.0.1",
            "::ffff:172.18.0.7",
        ] {
            assert!(serves(&net, ok.parse().unwrap()), "{ok}");
        }
        for no in ["10.77.0.2", "172.19.0.2", "fd00:2::1", "::ffff:10.0.0.1"] {
            assert!(!serves(&net, no.parse().unwrap()), "{no}");
        }
    }
}
