//! `port`: the ports a container listens on (host mode: the real listening sockets).

use clap::Args;

use berth_engine::Engine;

use crate::CmdResult;

/// Flags of `port`.
#[derive(Debug, Args)]
pub struct PortArgs {
    /// Container.
    container: String,
    /// Only this port: `PORT[/PROTO]` (tcp when no protocol is given).
    private_port: Option<String>,
}

pub fn port(mut engine: Engine, a: PortArgs) -> CmdResult {
    let filter = a
        .private_port
        .as_deref()
        .map(|p| p.parse::<berth_net::PortSpec>())
        .transpose()
        .map_err(berth_net::NetError::from)
        .map_err(berth_engine::EngineError::from)?;
    let c = engine.container(&a.container)?;
    let c = engine.reconcile_one(c)?;
    let mut found = false;
    for l in engine.host_listeners(&c) {
        if filter.is_some_and(|f| f.port != l.port || f.proto != l.proto) {
            continue;
        }
        found = true;
        let addr = match l.addr {
            std::net::IpAddr::V4(v) => v.to_string(),
            std::net::IpAddr::V6(v) => format!("[{v}]"),
        };
        if filter.is_some() {
            println!("{addr}:{} (host)", l.port);
        } else {
            println!("{}/{} -> {addr}:{} (host)", l.port, l.proto, l.port);
        }
    }
    if c.state.status == berth_engine::Status::Running {
        for m in engine.published_ports(&c.id) {
            if filter.is_some_and(|f| f.port != m.container_port || f.proto != m.proto) {
                continue;
            }
            found = true;
            let ip = match m.host_ip {
                None => "0.0.0.0".to_string(),
                Some(std::net::IpAddr::V6(v6)) => format!("[{v6}]"),
                Some(ip) => ip.to_string(),
            };
            if filter.is_some() {
                println!("{ip}:{}", m.host_port);
            } else {
                println!("{}/{} -> {ip}:{}", m.container_port, m.proto, m.host_port);
            }
        }
    }
    if let (Some(f), false) = (filter, found) {
        anyhow::bail!(
            "no port {f} is listened on or published by container {}",
            c.name
        );
    }
    Ok(0)
}
