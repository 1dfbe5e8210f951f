//! `start --restart-policy`: after a reboot (or whenever monitors died with the host), start
//! every container whose restart policy asks for it. berth has no daemon to do this when the
//! machine comes up; `docs/berth-restart.service` runs this command at boot.
//!
//! The rule follows Docker's daemon restore (moby `daemon/daemon.go` `restore`: a container
//! that has been started before and whose `ShouldRestart()` holds is started;
//! `restartmanager.ShouldRestart`): `always` → yes, even after a user stop; `unless-stopped` →
//! unless the user stopped it; `on-failure[:N]` → if its last exit code is non-zero and fewer
//! than N restarts were made. A container that was running when the host went down counts as
//! failed (reconcile records 137). One deviation: an `on-failure` container the user stopped
//! stays stopped (Docker's restart manager ignores a user stop for `on-failure`, so its restore
//! would restart it, the stop's exit code being non-zero).

use berth_net::NetworkMode;

use crate::config::RestartPolicy;
use crate::reconcile::monitor_alive;
use crate::state::{Container, Status};
use crate::{Engine, EngineError};

/// The outcome of starting one container by its policy: its name and the start's result.
pub type PolicyStart = (String, Result<(), EngineError>);

/// Whether container `c` (reconciled, not running) should be started at boot.
pub fn wants_start(c: &Container) -> bool {
    let s = &c.state;
    if s.started_at.is_none() || matches!(s.status, Status::Running | Status::Removing) {
        return false;
    }
    match c.config.restart {
        RestartPolicy::No => false,
        RestartPolicy::Always => true,
        RestartPolicy::UnlessStopped => !s.user_stopped,
        RestartPolicy::OnFailure(max) => {
            !s.user_stopped && s.exit_code != 0 && (max == 0 || s.restart_count < max)
        }
    }
}

impl Engine {
    /// Reconciles every container, then starts those [`wants_start`] picks: containers that
    /// own their namespace first, `--net container:` ones after (their target must run).
    /// Returns each picked container's name with the outcome of its start.
    ///
    /// Errors: only a failure to read or reconcile the records; start failures are returned
    /// per container.
    pub fn start_by_policy(&mut self) -> Result<Vec<PolicyStart>, EngineError> {
        self.reconcile_all()?;
        let mut picked: Vec<Container> = self
            .containers()?
            .into_iter()
            .filter(|c| !monitor_alive(&c.state) && wants_start(c))
            .collect();
        picked.sort_by_key(|c| matches!(c.config.network, NetworkMode::Container(_)));
        let mut out = Vec::new();
        for c in picked {
            let r = self.start(&c.id, false).map(|_| ());
            out.push((c.name.as_str().to_string(), r));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::ContainerState;

    fn container(restart: RestartPolicy, state: ContainerState) -> Container {
        let mut v = serde_json::json!({
            "image": "web", "entrypoint": null, "cmd": [], "env": [], "working_dir": null,
            "user": null, "hostname": null, "tty": false, "open_stdin": false, "expose": [],
            "cap_add": [], "cap_drop": [], "privileged": false,
            "network": "bridge", "auto_remove": false, "skip_port_check": false,
        });
        v["restart"] = serde_json::to_value(restart).unwrap();
        let config: crate::ContainerConfig = serde_json::from_value(v).unwrap();
        Container {
            id: "a".repeat(64),
            name: "boot-test".parse().unwrap(),
            image_id: String::new(),
            config,
            state,
            created: chrono::Utc::now(),
        }
    }

    fn exited(code: i32, user_stopped: bool, restarts: u32) -> ContainerState {
        ContainerState {
            status: Status::Exited,
            exit_code: code,
            user_stopped,
            restart_count: restarts,
            started_at: Some(chrono::Utc::now()),
            ..ContainerState::created()
        }
    }

    #[test]
    fn docker_restore_rules() {
        use RestartPolicy::*;
        let cases = [
            (Always, exited(137, false, 0), true),
            (Always, exited(0, true, 0), true),
            (UnlessStopped, exited(137, false, 0), true),
            (UnlessStopped, exited(143, true, 0), false),
            (OnFailure(0), exited(137, false, 9), true),
            (OnFailure(3), exited(137, false, 3), false),
            (OnFailure(3), exited(0, false, 0), false),
            (OnFailure(0), exited(143, true, 0), false),
            (No, exited(137, false, 0), false),
            (Always, ContainerState::created(), false),
        ];
        for (policy, state, want) in cases {
            let c = container(policy, state.clone());
            assert_eq!(wants_start(&c), want, "{policy:?} {state:?}");
        }
    }
}
