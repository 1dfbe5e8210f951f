//! `berth dns`: the embedded DNS server (hidden; berth starts it when a container joins a
//! user-defined network).

use clap::Args;

use berth_engine::Engine;

use crate::CmdResult;

/// Flags of `dns`.
#[derive(Debug, Args)]
pub struct DnsArgs {
    /// Upstream servers (IP:PORT, comma-separated) instead of the host's resolv.conf.
    #[arg(long, env = "BERTH_DNS_UPSTREAMS", value_delimiter = ',')]
    upstream: Vec<std::net::SocketAddr>,
}

pub fn dns(engine: Engine, a: DnsArgs) -> CmdResult {
    let cfg = berth_dns::DnsConfig {
        root: engine.paths.root.clone(),
        runroot: engine.paths.runroot.clone(),
        upstreams: (!a.upstream.is_empty()).then_some(a.upstream),
        forward: None,
    };
    drop(engine);
    berth_dns::serve(cfg)?;
    Ok(0)
}
