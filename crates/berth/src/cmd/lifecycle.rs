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
        engine.stop(k, Duration::from_secs(a.time))?;
        Ok(k.to_string())
    })
}

pub fn restart(mut engine: Engine, a: StopArgs) -> CmdResult {
    for_each(&a.containers, |k| {
        engine.restart(k, Duration::from_secs(a.time))?;
        Ok(k.to_string())
    })
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
