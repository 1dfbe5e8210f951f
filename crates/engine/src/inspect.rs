//! `inspect` and `ps` data in Docker's shapes (Docker Engine API, `ContainerJSON`).

use serde_json::{json, Value};

use berth_net::hostport::HostPortLabel;

use berth_net::PortMapping;

use crate::state::{Container, Status};
use crate::Engine;

fn time(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".into())
}

impl Engine {
    /// The `inspect` document of one container.
    pub fn inspect(&self, c: &Container) -> Value {
        let s = &c.state;
        let cfg = &c.config;
        let image = self.image_config(&c.image_id).ok();
        let image_cfg = image
            .as_ref()
            .and_then(|i| i.config().clone())
            .unwrap_or_default();
        let mut exposed = serde_json::Map::new();
        if let Ok(ports) = self.declared_ports(c) {
            for p in ports {
                exposed.insert(p.to_string(), json!({}));
            }
        }
        let mut ports = serde_json::Map::new();
        for l in self.host_listeners(c) {
            let key = format!("{}/{}", l.port, l.proto);
            let entry = ports.entry(key).or_insert_with(|| json!([]));
            if let Some(a) = entry.as_array_mut() {
                a.push(json!({"HostIp": l.addr.to_string(), "HostPort": l.port.to_string()}));
            }
        }
        for m in self.published_ports(&c.id) {
            let key = format!("{}/{}", m.container_port, m.proto);
            let entry = ports.entry(key).or_insert_with(|| json!([]));
            if let Some(a) = entry.as_array_mut() {
                let ip = m.host_ip.map_or("0.0.0.0".to_string(), |ip| ip.to_string());
                a.push(json!({"HostIp": ip, "HostPort": m.host_port.to_string()}));
            }
        }
        let mut networks = serde_json::Map::new();
        for (n, e) in self.container_endpoints(&c.id) {
            let v4 = e.addresses.iter().find(|a| a.addr().is_ipv4());
            let v6 = e.addresses.iter().find(|a| a.addr().is_ipv6());
            let gw4 = n
                .subnets
                .iter()
                .find(|s| s.gateway.is_ipv4())
                .map(|s| s.gateway);
            let gw6 = n
                .subnets
                .iter()
                .find(|s| s.gateway.is_ipv6())
                .map(|s| s.gateway);
            networks.insert(
                n.name.to_string(),
                json!({
                    "NetworkID": n.id,
                    "EndpointID": e.id,
                    "Gateway": gw4.map(|g| g.to_string()).unwrap_or_default(),
                    "IPAddress": v4.map(|a| a.addr().to_string()).unwrap_or_default(),
                    "IPPrefixLen": v4.map(|a| a.prefix_len()).unwrap_or(0),
                    "IPv6Gateway": gw6.map(|g| g.to_string()).unwrap_or_default(),
                    "GlobalIPv6Address": v6.map(|a| a.addr().to_string()).unwrap_or_default(),
                    "GlobalIPv6PrefixLen": v6.map(|a| a.prefix_len()).unwrap_or(0),
                    "MacAddress": e.mac,
                    "Aliases": e.aliases,
                }),
            );
        }
        let first = networks
            .values()
            .next()
            .cloned()
            .unwrap_or_else(|| json!({}));
        let process = crate::bundle::merge_process(&image_cfg, cfg).ok();
        json!({
            "Id": c.id,
            "Created": time(Some(c.created)),
            "Path": process.as_ref().and_then(|p| p.args.first().cloned()).unwrap_or_default(),
            "Args": process.as_ref().map(|p| p.args[1..].to_vec()).unwrap_or_default(),
            "State": {
                "Status": s.status.as_str(),
                "Running": s.status == Status::Running,
                "Paused": false,
                "Restarting": s.status == Status::Restarting,
                "OOMKilled": false,
                "Dead": false,
                "Pid": s.pid,
                "ExitCode": s.exit_code,
                "Error": s.error,
                "StartedAt": time(s.started_at),
                "FinishedAt": time(s.finished_at),
            },
            "Image": c.image_id,
            "Name": format!("/{}", c.name),
            "RestartCount": s.restart_count,
            "Driver": "overlay2",
            "Platform": "linux",
            "LogPath": self.paths.log_file(&c.id),
            "HostConfig": {
                "NetworkMode": cfg.network,
                "RestartPolicy": {"Name": cfg.restart.name(), "MaximumRetryCount": cfg.restart.max_retries()},
                "AutoRemove": cfg.auto_remove,
                "CapAdd": cfg.cap_add,
                "CapDrop": cfg.cap_drop,
                "Privileged": cfg.privileged,
                "SecurityOpt": (!cfg.security.given.is_empty()).then_some(&cfg.security.given),
            },
            "Config": {
                "Hostname": cfg.hostname.clone().unwrap_or_else(|| c.id[..12].to_string()),
                "User": cfg.user.clone().unwrap_or_default(),
                "Tty": cfg.tty,
                "OpenStdin": cfg.open_stdin,
                "Env": process.as_ref().map(|p| p.env.clone()).unwrap_or_default(),
                "Cmd": if cfg.cmd.is_empty() { image_cfg.cmd().clone().unwrap_or_default() } else { cfg.cmd.clone() },
                "Entrypoint": cfg.entrypoint.clone().or_else(|| image_cfg.entrypoint().clone()),
                "Image": cfg.image,
                "WorkingDir": process.as_ref().map(|p| p.cwd.clone()).unwrap_or_default(),
                "ExposedPorts": exposed,
            },
            "NetworkSettings": {
                "SandboxKey": s.sandbox_key,
                "Ports": ports,
                "IPAddress": first.get("IPAddress").cloned().unwrap_or(json!("")),
                "Gateway": first.get("Gateway").cloned().unwrap_or(json!("")),
                "MacAddress": first.get("MacAddress").cloned().unwrap_or(json!("")),
                "Networks": networks,
            },
        })
    }

    /// The PORTS column of `ps` for one container.
    pub fn ports_column(&self, c: &Container) -> String {
        let mut cols: Vec<String> = self
            .host_listeners(c)
            .iter()
            .map(|l| HostPortLabel(l).to_string())
            .collect();
        if c.state.status == Status::Running {
            cols.extend(mapping_labels(&self.published_ports(&c.id)));
        }
        cols.join(", ")
    }
}

/// Published mappings as `ps` shows them, sorted by address, protocol and port, with runs of
/// consecutive host and container ports collapsed into one range, as Docker's
/// `DisplayablePorts` (docker/cli `cli/command/formatter/container.go`):
/// `0.0.0.0:20000-24999->20000-24999/tcp`. Keeps the cell short when thousands are published.
pub fn mapping_labels(mappings: &[PortMapping]) -> Vec<String> {
    let mut sorted = mappings.to_vec();
    sorted.sort_by_key(|m| (m.host_ip, m.proto, m.host_port, m.container_port));
    sorted.dedup();
    let mut out = Vec::new();
    let mut rest = sorted.as_slice();
    while let Some(first) = rest.first() {
        let len = 1 + rest
            .windows(2)
            .take_while(|w| continues(&w[0], &w[1]))
            .count();
        out.push(range_label(first, &rest[len - 1]));
        rest = &rest[len..];
    }
    out
}

/// Whether `b` extends the run ending in `a`: same address and protocol, both ports one up.
fn continues(a: &PortMapping, b: &PortMapping) -> bool {
    a.host_ip == b.host_ip
        && a.proto == b.proto
        && a.host_port.checked_add(1) == Some(b.host_port)
        && a.container_port.checked_add(1) == Some(b.container_port)
}

/// `IP:H1-H2->C1-C2/proto` for a run from `first` to `last` (one mapping: no ranges).
fn range_label(first: &PortMapping, last: &PortMapping) -> String {
    if first == last {
        return crate::network::mapping_label(first);
    }
    let ip = match first.host_ip {
        None => "0.0.0.0".to_string(),
        Some(std::net::IpAddr::V6(v6)) => format!("[{v6}]"),
        Some(ip) => ip.to_string(),
    };
    format!(
        "{ip}:{}-{}->{}-{}/{}",
        first.host_port, last.host_port, first.container_port, last.container_port, first.proto
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_net::Proto;

    fn m(host_port: u16, container_port: u16, proto: Proto) -> PortMapping {
        PortMapping {
            host_ip: None,
            host_port,
            container_port,
            proto,
        }
    }

    #[test]
    fn consecutive_ports_collapse_into_ranges() {
        let mut ms: Vec<PortMapping> = (20000..25000).map(|p| m(p, p, Proto::Tcp)).collect();
        ms.push(m(8080, 80, Proto::Tcp));
        ms.push(m(8081, 82, Proto::Tcp)); // host consecutive, container not: its own entry
        ms.push(m(53, 53, Proto::Udp));
        ms.push(m(54, 54, Proto::Udp));
        ms.reverse();
        let v6 = PortMapping {
            host_ip: Some("::1".parse().unwrap()),
            ..m(9000, 90, Proto::Tcp)
        };
        ms.push(v6);
        assert_eq!(
            mapping_labels(&ms),
            [
                "0.0.0.0:8080->80/tcp",
                "0.0.0.0:8081->82/tcp",
                "0.0.0.0:20000-24999->20000-24999/tcp",
                "0.0.0.0:53-54->53-54/udp",
                "[::1]:9000->90/tcp",
            ]
        );
        assert!(mapping_labels(&[]).is_empty());
        assert_eq!(
            mapping_labels(&[m(65535, 65535, Proto::Tcp)]),
            ["0.0.0.0:65535->65535/tcp"]
        );
    }
}
