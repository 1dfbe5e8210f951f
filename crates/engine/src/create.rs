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
                if req.config.net.publishes() {
                    return Err(CreateError::PublishOnContainer.into());
                }
                if req.config.hostname.is_some() {
                    return Err(CreateError::HostnameOnContainer.into());
                }
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
