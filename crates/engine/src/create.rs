//! `create`: validate everything the user asked for, then record the container. Nothing is
//! created in the kernel here: the sandbox, rootfs mount and runtime container come with
//! `start`, so a refused or interrupted create leaves nothing behind but (at most) the record.

use std::str::FromStr;

use berth_net::NetworkMode;

use crate::config::{ContainerConfig, ContainerName};
use crate::state::{self, Container, ContainerState};
use crate::{Engine, EngineError};

/// Combinations of options `create` refuses.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// `-p`/`-P` with `--net host`.
    #[error("published ports (-p/-P) cannot be used with --net host: a host-mode container listens on the host's ports directly; drop -p (use --expose to declare ports)")]
    PublishOnHost,
    /// `-p`/`-P` with `--net none`.
    #[error("published ports (-p/-P) need a network, and --net none has none: use the default bridge (drop --net none) or a user-defined network")]
    PublishOnNone,
    /// `-p`/`-P` with `--net container:NAME`.
    #[error("published ports (-p) cannot be used with --net container:NAME: publish them on the container whose network is shared")]
    PublishOnContainer,
    /// `--hostname` with `--net container:NAME`.
    #[error("conflicting options: --hostname and --net container:NAME (the container takes the hostname of the one whose network it joins)")]
    HostnameOnContainer,
    /// `--dns*`, `--add-host` or `--expose` with `--net container:NAME`: they would rewrite
    /// the joined container's own `/etc/resolv.conf` and `/etc/hosts` (Docker refuses them
    /// with the same words, moby `runconfig/errors.go`).
    #[error("conflicting options: {what} and the network mode container:NAME ({flag}): the container shares the network, /etc/hosts and /etc/resolv.conf of the one it joins; drop {flag} or give it to that container")]
    ContainerModeConflict {
        /// Docker's name of the option (`dns`, `custom host-to-IP mapping`, ...).
        what: &'static str,
        /// The flag given.
        flag: &'static str,
    },
    /// `--network-alias` outside a user-defined network (Docker's words, moby
    /// `daemon/container_operations.go`).
    #[error("network-scoped alias is supported only for containers in user defined networks (not {mode}): drop the alias or use --network NAME with a network made by `berth network create`")]
    AliasNeedsUserNetwork {
        /// The mode or network given.
        mode: NetworkMode,
    },
    /// `--ip`, `--ip6` or `--mac-address` in a mode without a network of its own.
    #[error("conflicting options: {flag} and --network {mode}: addresses are given on a network (the default bridge or a user-defined one), and this mode has none; drop {flag} or use --network NAME")]
    NetworkOnlyOption {
        /// The flag given.
        flag: &'static str,
        /// The mode.
        mode: NetworkMode,
    },
    /// No generated name was free.
    #[error("could not generate a free container name: pass --name")]
    NoFreeName,
}

/// `create`/`run` input beyond [`ContainerConfig`].
#[derive(Debug, Clone)]
pub struct CreateRequest {
    /// `--name`; generated when absent.
    pub name: Option<String>,
    /// The options, parsed (`-p`, `-P`, `--net`, `--mac-address` ... are in `config`).
    pub config: ContainerConfig,
}

impl Engine {
    /// Validates `req` and records a container in status `created`. Returns it.
    ///
    /// Errors (all before anything is written): bad name, name in use, unknown image, bad
    /// network mode, `-p` with `--net host`, bad `--expose`, bad restart policy.
    pub fn create(&mut self, req: CreateRequest) -> Result<Container, EngineError> {
        let name = match &req.name {
            Some(n) => ContainerName::from_str(n)?,
            None => self.generate_name()?,
        };
        let image = self.images.resolve(&self.store, &req.config.image)?;
        let mode = &req.config.network;
        crate::config::validate_written_options(&req.config)?;
        self.validate_mode(mode, &req)?;
        check_alias_scope(mode, &req.config.net.aliases)?;
        check_network_only_options(mode, &req.config.net)?;
        if let NetworkMode::Network(name) = mode {
            self.validate_network(name, &req.config.net)?;
        }
        for e in &req.config.expose {
            berth_net::parse_exposed(e).map_err(berth_net::NetError::from)?;
        }
        crate::spec::validate_caps(&req.config.cap_add, &req.config.cap_drop)?;
        if *mode == NetworkMode::Host && !req.config.skip_port_check {
            // Refuse before anything is recorded: a conflict leaves no container behind.
            self.check_host_ports_of(name.as_str(), image.as_str(), &req.config.expose)?;
        }
        let container = Container {
            id: new_id(),
            name,
            image_id: image.as_str().to_string(),
            config: req.config,
            state: ContainerState::created(),
            created: chrono::Utc::now(),
        };
        state::insert(&mut self.store, &container)?;
        berth_sys::failpoint::hit("run::after-record");
        let dir = self.paths.container_dir(&container.id);
        if let Err(e) = std::fs::create_dir_all(&dir) {
            let _ = state::delete(&mut self.store, &container.id);
            return Err(EngineError::io(&dir, e));
        }
        Ok(container)
    }

    fn validate_mode(&self, mode: &NetworkMode, req: &CreateRequest) -> Result<(), EngineError> {
        match mode {
            NetworkMode::Host if req.config.net.publishes() => {
                Err(CreateError::PublishOnHost.into())
            }
            NetworkMode::None if req.config.net.publishes() => {
                Err(CreateError::PublishOnNone.into())
            }
            NetworkMode::Host | NetworkMode::None => Ok(()),
            NetworkMode::Container(target) => {
                check_container_mode(&req.config)?;
                // The target must exist now; it must be running at start.
                self.container(target).map(|_| ())
            }
            NetworkMode::Network(_) => Ok(()),
        }
    }

    /// Docker-style `adjective_surname`, retried until unused.
    fn generate_name(&self) -> Result<ContainerName, EngineError> {
        const ADJ: &[&str] = &[
            "brave", "calm", "eager", "fond", "gentle", "happy", "jolly", "keen", "lucid", "merry",
            "nifty", "proud", "quiet", "sharp", "tender", "vivid", "witty", "zen",
        ];
        const NOUN: &[&str] = &[
            "babbage", "curie", "darwin", "euler", "fermi", "galois", "hopper", "hypatia",
            "kepler", "lovelace", "noether", "pascal", "ritchie", "shannon", "turing", "wozniak",
        ];
        use rand::seq::SliceRandom;
        let mut rng = rand::thread_rng();
        for attempt in 0..100 {
            let base = format!(
                "{}_{}",
                ADJ.choose(&mut rng).expect("non-empty"),
                NOUN.choose(&mut rng).expect("non-empty")
            );
            let name = if attempt < 10 {
                base
            } else {
                format!("{base}{attempt}")
            };
            if self.container(&name).is_err() {
                return Ok(ContainerName::from_str(&name)?);
            }
        }
        Err(CreateError::NoFreeName.into())
    }
}

/// Refuses what `--net container:NAME` cannot take: `-p`/`-P`, `--hostname`, `--dns`,
/// `--dns-search`, `--dns-option`, `--add-host` and `--expose`. The joined container owns
/// the network, the hostname and the `/etc` files; writing ours would change its own.
fn check_container_mode(c: &ContainerConfig) -> Result<(), CreateError> {
    let net = &c.net;
    if net.publishes() {
        return Err(CreateError::PublishOnContainer);
    }
    if c.hostname.is_some() {
        return Err(CreateError::HostnameOnContainer);
    }
    let conflict = |what, flag| Err(CreateError::ContainerModeConflict { what, flag });
    if !net.dns.is_empty() {
        return conflict("dns", "--dns");
    }
    if !net.dns_search.is_empty() {
        return conflict("dns", "--dns-search");
    }
    if !net.dns_options.is_empty() {
        return conflict("dns", "--dns-option");
    }
    if !net.add_hosts.is_empty() || !net.host_gateway_names.is_empty() {
        return conflict("custom host-to-IP mapping", "--add-host");
    }
    if !c.expose.is_empty() {
        return conflict("port exposing", "--expose");
    }
    Ok(())
}

/// Refuses network-scoped aliases (`--network-alias`, `network connect --alias`) unless
/// `mode` is a user-defined network: the default `bridge` network has no embedded DNS, and
/// `host`, `none` and `container:` have no endpoint to give them to (as Docker).
///
/// # Errors
/// [`CreateError::AliasNeedsUserNetwork`].
pub fn check_alias_scope(mode: &NetworkMode, aliases: &[String]) -> Result<(), CreateError> {
    let user_defined = matches!(mode, NetworkMode::Network(n)
        if n != berth_net::manager::DEFAULT_NETWORK && n != "default");
    if aliases.is_empty() || user_defined {
        return Ok(());
    }
    Err(CreateError::AliasNeedsUserNetwork { mode: mode.clone() })
}

/// Refuses `--ip`, `--ip6` and `--mac-address` without a network of the container's own
/// (`none`, `host`, `container:`), as Docker does: there is no endpoint to give them to.
fn check_network_only_options(
    mode: &NetworkMode,
    net: &crate::config::NetOptions,
) -> Result<(), EngineError> {
    if matches!(mode, NetworkMode::Network(_)) {
        return Ok(());
    }
    let flag = if net.ip.is_some() {
        "--ip"
    } else if net.ip6.is_some() {
        "--ip6"
    } else if net.mac_address.is_some() {
        "--mac-address"
    } else {
        return Ok(());
    };
    Err(CreateError::NetworkOnlyOption {
        flag,
        mode: mode.clone(),
    }
    .into())
}

/// A new container id: 32 random bytes in hex, as Docker's.
pub fn new_id() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ContainerConfig {
        serde_json::from_value(serde_json::json!({
            "image": "web", "entrypoint": null, "cmd": [], "env": [], "working_dir": null,
            "user": null, "hostname": null, "tty": false, "open_stdin": false, "expose": [],
            "cap_add": [], "cap_drop": [], "privileged": false, "restart": {"Name": "no"},
            "network": "container:web", "auto_remove": false, "skip_port_check": false
        }))
        .unwrap()
    }

    #[test]
    fn container_mode_refuses_what_would_rewrite_the_joined_etc_files() {
        assert!(check_container_mode(&cfg()).is_ok());
        let refused = |edit: &dyn Fn(&mut ContainerConfig)| {
            let mut c = cfg();
            edit(&mut c);
            check_container_mode(&c).unwrap_err().to_string()
        };
        let m = refused(&|c| c.net.dns = vec!["1.1.1.1".parse().unwrap()]);
        assert!(
            m.starts_with("conflicting options: dns and the network mode"),
            "{m}"
        );
        assert!(refused(&|c| c.net.dns_search = vec!["x.org".into()]).contains("--dns-search"));
        assert!(refused(&|c| c.net.dns_options = vec!["ndots:2".into()]).contains("--dns-option"));
        let m = refused(&|c| c.net.add_hosts = vec![("db".into(), "10.0.0.5".parse().unwrap())]);
        assert!(
            m.contains("custom host-to-IP mapping and the network mode"),
            "{m}"
        );
        assert!(refused(&|c| c.net.host_gateway_names = vec!["gw".into()]).contains("--add-host"));
        assert!(refused(&|c| c.expose = vec!["80".into()]).contains("port exposing"));
        assert!(refused(&|c| c.net.publish_all = true).contains("published ports"));
        assert!(refused(&|c| c.hostname = Some("h".into())).contains("--hostname"));
    }

    #[test]
    fn aliases_need_a_user_defined_network() {
        let a = vec!["db".to_string()];
        for mode in ["bridge", "default", "host", "none", "container:web"] {
            let m: NetworkMode = mode.parse().unwrap();
            let e = check_alias_scope(&m, &a).unwrap_err().to_string();
            assert!(
                e.starts_with("network-scoped alias is supported only"),
                "{mode}: {e}"
            );
            assert!(check_alias_scope(&m, &[]).is_ok(), "{mode}");
        }
        assert!(check_alias_scope(&"mynet".parse().unwrap(), &a).is_ok());
    }
}
