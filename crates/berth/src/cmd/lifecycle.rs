//! `stop`, `restart`, `kill`, `rm`.

use std::time::Duration;

use clap::Args;

use berth_engine::Engine;

use crate::cmd::for_each;
use crate::CmdResult;

/// Flags of `stop` and `restart`.
#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds to wait for the container to exit after SIGTERM before SIGKILL.
    #[arg(short = 't', long = "time", default_value_t = 10)]
    time: u64,
    /// Containers.
    #[arg(required = true)]
    containers: Vec<String>,
}

/// Flags of `kill`.
#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal to send (name or number).
    #[arg(short = 's', long, default_value = "KILL")]
    signal: String,
    /// Containers.
    #[arg(required = true)]
    containers: Vec<String>,
}

/// Flags of `rm`.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// Kill and remove a running container.
    #[arg(short = 'f', long)]
    force: bool,
    /// Containers.
    #[arg(required = true)]
    containers: Vec<String>,
}

pub fn stop(mut engine: Engine, a: StopArgs) -> CmdResult {
    for_each(&a.containers, |k| {
        let joined = joined_names(&engine, k);
        engine.stop(k, Duration::from_secs(a.time))?;
        warn_joined(k, &joined);
        Ok(k.to_string())
    })
}

pub fn restart(mut engine: Engine, a: StopArgs) -> CmdResult {
    for_each(&a.containers, |k| {
        let joined = joined_names(&engine, k);
        engine.restart(k, Duration::from_secs(a.time))?;
        warn_joined(k, &joined);
        Ok(k.to_string())
    })
}

/// Names of the running containers that joined `key`'s network namespace.
fn joined_names(engine: &Engine, key: &str) -> Vec<String> {
    let Ok(c) = engine.container(key) else {
        return Vec::new();
    };
    engine
        .joined_running(&c.id)
        .unwrap_or_default()
        .into_iter()
        .map(|j| j.name.as_str().to_string())
        .collect()
}

/// Says on stderr what Docker leaves implicit: containers that joined a stopped target's
/// namespace keep running in it with only `lo`, until restarted.
fn warn_joined(key: &str, joined: &[String]) {
    if !joined.is_empty() {
        eprintln!(
            "berth: warning: {} joined the network namespace of {key} (--net container:{key}) \
             and keep running in its old namespace with only lo: restart them to rejoin \
             (berth restart {})",
            joined.join(", "),
            joined.join(" ")
        );
    }
}

pub fn kill(mut engine: Engine, a: KillArgs) -> CmdResult {
    // A bad signal is a usage error (125), found before any container is touched.
    berth_engine::stop::normalize_signal(&a.signal)?;
    for_each(&a.containers, |k| {
        engine.kill(k, &a.signal)?;
        Ok(k.to_string())
    })
}

pub fn rm(mut engine: Engine, a: RmArgs) -> CmdResult {
    for_each(&a.containers, |k| {
        engine.remove(k, a.force)?;
        Ok(k.to_string())
    })
}
