//! `port`: the ports a container listens on (host mode: the real listening sockets).

use clap::Args;

use berth_engine::Engine;

use crate::CmdResult;

/// Flags of `port`.
#[derive(Debug, Args)]
pub struct PortArgs {
    /// Container.
    container: String,
}

pub fn port(mut engine: Engine, a: PortArgs) -> CmdResult {
    let c = engine.container(&a.container)?;
    let c = engine.reconcile_one(c)?;
    for l in engine.host_listeners(&c) {
        let addr = match l.addr {
            std::net::IpAddr::V4(v) => v.to_string(),
            std::net::IpAddr::V6(v) => format!("[{v}]"),
        };
        println!("{}/{} -> {addr}:{} (host)", l.port, l.proto, l.port);
    }
    Ok(0)
}
