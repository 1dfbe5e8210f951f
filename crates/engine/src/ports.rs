//! Host-mode ports: the pre-start conflict check (shared/DESIGN.md "Host mode port check")
//! and what a running host-mode container really listens on, for `ps` and `port`.

use berth_net::{hostport, Listener, NetworkMode, PortSpec};

use std::fs::File;

use crate::state::{Container, Status};

/// How long after its start a host-mode container still counts as "starting" for the port
/// check: time for its process to bind what it declared.
pub const STARTING_WINDOW: chrono::Duration = chrono::Duration::seconds(2);
use crate::{Engine, EngineError};

impl Engine {
    /// The ports a container declares: the image's `ExposedPorts` plus `--expose`.
    pub fn declared_ports(&self, c: &Container) -> Result<Vec<PortSpec>, EngineError> {
        self.ports_of(&c.image_id, &c.config.expose)
    }

    /// The image's `ExposedPorts` plus `expose` (`--expose` values).
    pub fn ports_of(
        &self,
        image_id: &str,
        expose: &[String],
    ) -> Result<Vec<PortSpec>, EngineError> {
        let image = self.image_config(image_id)?;
        let mut specs: Vec<String> = image
            .config()
            .as_ref()
            .and_then(|cfg| cfg.exposed_ports().clone())
            .unwrap_or_default();
        specs.extend(expose.iter().cloned());
        let mut out = Vec::new();
        for s in specs {
            for p in berth_net::parse_exposed(&s).map_err(berth_net::NetError::from)? {
                if !out.contains(&p) {
                    out.push(p);
                }
            }
        }
        Ok(out)
    }

    /// Refuses to start a host-mode container whose declared ports are held in the namespace
    /// berth runs in, naming each holder: the berth container by name when the process is in
    /// one (by its cgroup `/berth/<id>`), else the process name and pid.
    ///
    /// Errors: [`EngineError::PortConflict`] with the whole explanation.
    pub fn check_host_ports(&self, c: &Container) -> Result<(), EngineError> {
        self.check_host_ports_of(c.name.as_str(), &c.image_id, &c.config.expose)?;
        self.check_starting_host_containers(c)
    }

    /// Host-mode containers started a moment ago may not have bound their ports yet; two
    /// concurrent starts would both pass the socket check. Under the host-port lock (see
    /// [`Engine::host_port_lock`]), a running container that started less than
    /// [`STARTING_WINDOW`] ago counts as holding its declared ports.
    fn check_starting_host_containers(&self, c: &Container) -> Result<(), EngineError> {
        let wanted = self.declared_ports(c)?;
        let now = chrono::Utc::now();
        for other in self.containers()? {
            // A host-mode start holds the host-port lock from its check until its process
            // runs, so no other container can be half-started while we look: only those that
            // started a moment ago (and may not have bound yet) count.
            let starting = other.state.status == Status::Running
                && other
                    .state
                    .started_at
                    .is_none_or(|t| now - t < STARTING_WINDOW);
            if other.id == c.id
                || other.config.skip_port_check
                || !starting
                || other.config.network != NetworkMode::Host
            {
                continue;
            }
            let theirs = self.declared_ports(&other)?;
            if let Some(p) = wanted.iter().find(|p| theirs.contains(p)) {
                return Err(EngineError::PortConflict(format!(
                    "cannot start container {} with --net host: port {p} is declared by \
                     container {}, which is starting on the host network. Stop it, or \
                     run/create this one with --skip-port-check if it will not use the port",
                    c.name, other.name
                )));
            }
        }
        Ok(())
    }

    /// Serialises host-mode starts from the port check until the container runs
    /// (flock(2) on `<runroot>/locks/host-ports`; released on drop).
    pub fn host_port_lock(&self) -> Result<File, EngineError> {
        crate::lock::exclusive(&self.paths.runroot.join("locks").join("host-ports"))
    }

    /// [`Engine::check_host_ports`] before the container exists (`run`/`create`).
    pub fn check_host_ports_of(
        &self,
        name: &str,
        image_id: &str,
        expose: &[String],
    ) -> Result<(), EngineError> {
        let wanted = self.ports_of(image_id, expose)?;
        if wanted.is_empty() {
            return Ok(());
        }
        self.check_published_ports(name, &wanted)?;
        let conflicts = hostport::check_host_ports(&wanted)?;
        if conflicts.is_empty() {
            return Ok(());
        }
        let mut lines = Vec::new();
        for k in &conflicts {
            let at = match k.addr {
                std::net::IpAddr::V4(a) => format!("{a}:{}", k.port.port),
                std::net::IpAddr::V6(a) => format!("[{a}]:{}", k.port.port),
            };
            lines.push(format!(
                "port {} is already in use ({at}) by {}",
                k.port,
                self.describe_owners(&k.owners)
            ));
        }
        Err(EngineError::PortConflict(format!(
            "cannot start container {} with --net host: {}. The ports checked are the image's \
             EXPOSE plus --expose. Stop the other listener, or run/create the container with \
             --skip-port-check if it will not use these ports",
            name,
            lines.join("; ")
        )))
    }

    /// Host ports published by bridge containers are held by bound (not listening) sockets,
    /// which the listener check does not see: compare with the endpoint records instead.
    fn check_published_ports(&self, name: &str, wanted: &[PortSpec]) -> Result<(), EngineError> {
        let eps = berth_net::records::all_endpoints(self.store.conn()).unwrap_or_default();
        for ep in eps {
            let Some(m) = ep.ports.iter().find(|m| {
                wanted
                    .iter()
                    .any(|w| w.port == m.host_port && w.proto == m.proto)
            }) else {
                continue;
            };
            let holder = crate::state::by_id(self.store.conn(), &ep.container_id)
                .ok()
                .flatten()
                .map_or_else(|| ep.container_id[..12].to_string(), |c| c.name.to_string());
            return Err(EngineError::PortConflict(format!(
                "cannot start container {name} with --net host: port {}/{} is published by \
                 container {holder} ({}). Remove that container or its -p, or run/create this \
                 one with --skip-port-check if it will not use the port",
                m.host_port,
                m.proto,
                crate::network::mapping_label(m)
            )));
        }
        Ok(())
    }

    pub(crate) fn describe_owners(&self, owners: &[berth_net::ProcessInfo]) -> String {
        describe_owners(self.store.conn(), owners)
    }

    /// Sockets a running host-mode container holds (empty for other modes or when stopped).
    pub fn host_listeners(&self, c: &Container) -> Vec<Listener> {
        if c.state.status != Status::Running || c.config.network != NetworkMode::Host {
            return Vec::new();
        }
        expand_dual_stack(hostport::listening_ports_of(&c.id).unwrap_or_default())
    }
}

/// A `::` listener without `IPV6_V6ONLY` takes IPv4 too (ipv6(7)); show it the way Docker
/// shows a port bound on both families: `0.0.0.0:80` and `[::]:80`.
fn expand_dual_stack(listeners: Vec<Listener>) -> Vec<Listener> {
    let mut out: Vec<Listener> = Vec::new();
    for l in listeners {
        if l.addr.is_unspecified() && l.addr.is_ipv6() && l.v6only == Some(false) {
            let v4 = Listener {
                addr: std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
                v6only: None,
                ..l.clone()
            };
            if !out
                .iter()
                .any(|o| o.proto == v4.proto && o.port == v4.port && o.addr == v4.addr)
            {
                out.push(v4);
            }
        }
        out.push(l);
    }
    out
}

/// The holders of a socket as `ps` users know them: berth containers by name (read from
/// `conn`), other processes by name and pid.
pub(crate) fn describe_owners(
    conn: &berth_store::rusqlite::Connection,
    owners: &[berth_net::ProcessInfo],
) -> String {
    if owners.is_empty() {
        return "a socket whose owner could not be found (another namespace or user)".into();
    }
    let mut seen = Vec::new();
    for o in owners {
        let who = match hostport::berth_container_id(o)
            .and_then(|id| crate::state::by_id(conn, &id).ok().flatten())
        {
            Some(other) => format!("container {} (pid {}, {})", other.name, o.pid, o.comm),
            None => format!("process {} (pid {})", o.comm, o.pid),
        };
        if !seen.contains(&who) {
            seen.push(who);
        }
    }
    seen.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_net::Proto;

    fn l(addr: &str, v6only: Option<bool>) -> Listener {
        Listener {
            proto: Proto::Tcp,
            addr: addr.parse().unwrap(),
            port: 80,
            inode: 1,
            v6only,
        }
    }

    #[test]
    fn dual_stack_listener_shows_both_families() {
        let got = expand_dual_stack(vec![l("::", Some(false))]);
        let addrs: Vec<String> = got.iter().map(|l| l.addr.to_string()).collect();
        assert_eq!(addrs, ["0.0.0.0", "::"]);
        let v6only = expand_dual_stack(vec![l("::", Some(true))]);
        assert_eq!(v6only.len(), 1);
        let both = expand_dual_stack(vec![l("0.0.0.0", None), l("::", Some(false))]);
        assert_eq!(
            both.len(),
            2,
            "an explicit v4 listener is not duplicated: {both:?}"
        );
    }
}
