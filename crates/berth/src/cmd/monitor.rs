//! `berth __monitor`: the hidden entry point of a container's monitor process.

use clap::Args;

use berth_engine::Engine;

use crate::CmdResult;

/// Arguments the starting CLI passes to the monitor.
#[derive(Debug, Args)]
pub struct MonitorArgs {
    /// The pipe to report `created`/`started`/`error` on.
    #[arg(long)]
    ready_fd: i32,
    /// The container's monitor lock, taken by the starting CLI.
    #[arg(long)]
    lock_fd: i32,
    /// Wait for an attach client before starting the process.
    #[arg(long)]
    attach: bool,
    /// Container id.
    id: String,
}

pub fn monitor(engine: Engine, a: MonitorArgs) -> CmdResult {
    Ok(berth_engine::monitor::main(
        engine, &a.id, a.attach, a.ready_fd, a.lock_fd,
    ))
}
