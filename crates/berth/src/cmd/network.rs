//! `network create|ls|inspect|rm|prune|connect|disconnect` (Docker's flags) and `network
//! reload` (rebuild every firewall rule from the store).

use std::collections::BTreeMap;
use std::net::IpAddr;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};

use berth_engine::network::{ConnectRequest, NetworkCreateRequest};
use berth_engine::Engine;
use berth_net::SubnetConfig;

use crate::cmd::ps::print_table;
use crate::CmdResult;

/// `network` subcommands.
#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Create a network.
    Create(CreateArgs),
    /// List networks.
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Show networks as JSON.
    Inspect {
        /// Networks.
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Remove networks (refused while containers are attached).
    #[command(visible_alias = "remove")]
    Rm {
        /// Networks.
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Remove every network no container uses.
    Prune {
        /// Do not ask (berth never asks; accepted for Docker compatibility).
        #[arg(short = 'f', long)]
        force: bool,
    },
    /// Attach a running container to a network.
    Connect(ConnectArgs),
    /// Rebuild berth's firewall rules from the store (after a firewall reload or `nft flush
    /// ruleset`; berth also repairs them by itself before any network change).
    Reload,
    /// Detach a container from a network.
    Disconnect {
        /// Detach even if the container is not running.
        #[arg(short = 'f', long)]
        force: bool,
        /// Network.
        network: String,
        /// Container.
        container: String,
    },
}

/// Flags of `network create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Driver: bridge (default), macvlan, ipvlan.
    #[arg(short = 'd', long, default_value = "bridge")]
    driver: String,
    /// Subnet in CIDR form (repeat for IPv4 and IPv6).
    #[arg(long)]
    subnet: Vec<ipnet::IpNet>,
    /// Gateway for the subnet that contains it.
    #[arg(long)]
    gateway: Vec<IpAddr>,
    /// Allocate container addresses from this range (inside a subnet).
    #[arg(long)]
    ip_range: Vec<ipnet::IpNet>,
    /// Reserve an address: NAME=IP.
    #[arg(long)]
    aux_address: Vec<String>,
    /// Enable IPv6.
    #[arg(long)]
    ipv6: bool,
    /// No external connectivity.
    #[arg(long)]
    internal: bool,
    /// MTU of the bridge and its endpoints.
    #[arg(long)]
    mtu: Option<u32>,
    /// Metadata: KEY=VALUE.
    #[arg(long)]
    label: Vec<String>,
    /// Driver options: KEY=VALUE (com.docker.network.bridge.name, ...enable_icc, ...driver.mtu).
    #[arg(short = 'o', long = "opt")]
    opt: Vec<String>,
    /// Network name.
    name: String,
}

/// Flags of `network ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// Only ids.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Full ids.
    #[arg(long)]
    no_trunc: bool,
}

/// Flags of `network connect`.
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// IPv4 address.
    #[arg(long)]
    ip: Option<std::net::Ipv4Addr>,
    /// IPv6 address.
    #[arg(long)]
    ip6: Option<std::net::Ipv6Addr>,
    /// Extra DNS name on this network.
    #[arg(long)]
    alias: Vec<String>,
    /// Network.
    network: String,
    /// Container.
    container: String,
}

fn key_values(items: &[String], what: &str) -> anyhow::Result<BTreeMap<String, String>> {
    items
        .iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .with_context(|| format!("invalid {what} {kv:?}: use KEY=VALUE"))
        })
        .collect()
}

/// Pairs each `--gateway`, `--ip-range` and `--aux-address` with the `--subnet` containing
/// it, as Docker does.
fn subnets(a: &CreateArgs) -> anyhow::Result<Vec<SubnetConfig>> {
    let mut out: Vec<SubnetConfig> = a
        .subnet
        .iter()
        .map(|s| SubnetConfig {
            subnet: Some(*s),
            ..SubnetConfig::default()
        })
        .collect();
    let find = |out: &mut Vec<SubnetConfig>, ip: IpAddr, what: &str| -> anyhow::Result<usize> {
        if out.is_empty() {
            bail!("{what} needs a --subnet that contains it");
        }
        out.iter()
            .position(|s| s.subnet.is_some_and(|n| n.contains(&ip)))
            .with_context(|| format!("{what} is in none of the given --subnet values"))
    };
    for g in &a.gateway {
        let i = find(&mut out, *g, &format!("--gateway {g}"))?;
        if out[i].gateway.replace(*g).is_some() {
            bail!("two --gateway values for subnet {}", a.subnet[i]);
        }
    }
    for r in &a.ip_range {
        let i = find(&mut out, r.network(), &format!("--ip-range {r}"))?;
        if !out[i].subnet.is_some_and(|n| n.contains(r)) {
            bail!("--ip-range {r} is not inside subnet {}", a.subnet[i]);
        }
        if let Some(prev) = out[i].ip_range.replace(*r) {
            bail!(
                "two --ip-range values ({prev} and {r}) for subnet {}: give one",
                a.subnet[i]
            );
        }
    }
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for kv in &a.aux_address {
        let (name, ip) = kv
            .split_once('=')
            .with_context(|| format!("invalid --aux-address {kv:?}: use NAME=IP"))?;
        if let Some(prev) = seen.insert(name.to_string(), ip.to_string()) {
            bail!(
                "--aux-address {name} is given twice ({name}={prev} and {name}={ip}): give each \
                 aux address its own name"
            );
        }
        let ip: IpAddr = ip.parse().map_err(|e| {
            anyhow::anyhow!("invalid --aux-address {name}={ip}: not an IP address: {e}")
        })?;
        let i = find(&mut out, ip, &format!("--aux-address {name}={ip}"))?;
        out[i].aux_addresses.insert(name.to_string(), ip);
    }
    Ok(out)
}

pub fn network(mut engine: Engine, c: NetworkCommand) -> CmdResult {
    match c {
        NetworkCommand::Create(a) => {
            let req = NetworkCreateRequest {
                name: a.name.parse()?,
                driver: a.driver.parse().map_err(anyhow::Error::msg)?,
                subnets: subnets(&a)?,
                ipv6: a.ipv6,
                internal: a.internal,
                mtu: a.mtu,
                labels: key_values(&a.label, "--label")?,
                options: key_values(&a.opt, "-o")?,
            };
            let (n, warnings) = engine.network_create(req)?;
            for w in warnings {
                eprintln!("warning: {w}");
            }
            println!("{}", n.id);
            Ok(0)
        }
        NetworkCommand::Ls(a) => {
            let mut rows = Vec::new();
            for n in engine.networks()? {
                let id = if a.no_trunc {
                    n.id.clone()
                } else {
                    n.id[..12].to_string()
                };
                if a.quiet {
                    println!("{id}");
                    continue;
                }
                rows.push([
                    id,
                    n.name.to_string(),
                    n.driver().to_string(),
                    "local".to_string(),
                ]);
            }
            if !a.quiet {
                print_table(&["NETWORK ID", "NAME", "DRIVER", "SCOPE"], &rows);
            }
            Ok(0)
        }
        NetworkCommand::Inspect { networks } => {
            let mut docs = Vec::new();
            let mut code = 0;
            for n in &networks {
                match engine.network_inspect(n) {
                    Ok(d) => docs.push(d),
                    Err(e) => {
                        eprintln!("berth: {e}");
                        code = 1;
                    }
                }
            }
            println!("{}", serde_json::to_string_pretty(&docs)?);
            Ok(code)
        }
        NetworkCommand::Rm { networks } => crate::cmd::for_each(&networks, |n| {
            engine.network_remove(n)?;
            Ok(n.to_string())
        }),
        NetworkCommand::Prune { .. } => {
            let removed = engine.network_prune()?;
            if !removed.is_empty() {
                println!("Deleted Networks:");
                for n in removed {
                    println!("{n}");
                }
            }
            Ok(0)
        }
        NetworkCommand::Connect(a) => {
            // Refused before anything else, as at create: the default network takes no alias.
            let mode = a.network.parse().map_err(berth_engine::EngineError::from)?;
            berth_engine::create::check_alias_scope(&mode, &a.alias)
                .map_err(berth_engine::EngineError::from)?;
            let req = ConnectRequest {
                ip: a.ip,
                ip6: a.ip6,
                aliases: a.alias,
            };
            engine.network_connect(&a.network, &a.container, req)?;
            Ok(0)
        }
        NetworkCommand::Reload => {
            engine.network_reload()?;
            Ok(0)
        }
        NetworkCommand::Disconnect {
            force,
            network,
            container,
        } => {
            engine.network_disconnect(&network, &container, force)?;
            Ok(0)
        }
    }
}
