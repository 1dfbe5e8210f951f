//! Crash recovery: kill -9 of a detached container's monitor and of the CLI in the middle of
//! `run`; the next command reconciles, `rm -f` leaves nothing (the harness checks processes,
//! mounts, cgroups and the namespace on drop).

use std::process::Stdio;
use std::time::Duration;

use berth_tests::{require_root, wait_until, Background, SandboxHost};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// The STATUS column of `ps -a` for `name`, or None if it is not listed.
fn ps_status(host: &SandboxHost, name: &str) -> Option<String> {
    let table = host.cli(&["ps", "-a"]).ok();
    let header = table.lines().next().unwrap_or_default().to_string();
    let (start, end) = (header.find("STATUS")?, header.find("PORTS")?);
    let row = table
        .lines()
        .skip(1)
        .find(|l| l.split_whitespace().last() == Some(name))?;
    Some(
        row.get(start..end.min(row.len()))
            .unwrap_or_default()
            .trim()
            .to_string(),
    )
}

/// The parent pid from /proc/PID/stat (the field after the parenthesised comm).
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The one-letter state from /proc/PID/stat (`Z` for a zombie).
fn state_of(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .next()?
        .chars()
        .next()
}

fn sane(status: &str) -> bool {
    ["Up ", "Exited (", "Created"]
        .iter()
        .any(|p| status.starts_with(p))
}

#[test]
fn killing_the_monitor_leaves_a_sane_state_and_rm_cleans_up() {
    require_root!();
    let host = SandboxHost::with_web();
    let id = host
        .cli(&["run", "-d", "--name", "m1", "web", "sleep", "1000"])
        .ok();
    let ctr_pid = host.inspect("m1")["State"]["Pid"].as_u64().unwrap_or(0) as u32;
    let ppid = parent_of(ctr_pid).filter(|&p| p > 1);
    let monitors: Vec<(u32, String)> = host
        .berth_processes()
        .into_iter()
        .chain(ppid.map(|p| (p, "parent of the container".to_string())))
        .filter(|(pid, _)| *pid != ctr_pid)
        .filter(|(pid, _)| {
            let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
            !cg.contains(&format!("/berth/{id}"))
        })
        .collect();
    assert!(!monitors.is_empty(), "no monitor process found for {id}");
    for (pid, _) in &monitors {
        // The same pid may be listed twice (cmdline and parent); ESRCH then is fine.
        let _ = kill(Pid::from_raw(*pid as i32), Signal::SIGKILL);
    }
    std::thread::sleep(Duration::from_millis(500));
    let status = ps_status(&host, "m1").expect("m still listed after its monitor died");
    assert!(sane(&status), "status after monitor kill: {status:?}");
    let ins = host.inspect("m1");
    assert!(
        ["running", "exited"].contains(&ins["State"]["Status"].as_str().unwrap_or("")),
        "{ins}"
    );
    host.cli(&["rm", "-f", "m1"]).ok();
    assert_eq!(host.cli(&["ps", "-aq"]).ok(), "");
    let gone = wait_until(Duration::from_secs(5), || {
        parent_of(ctr_pid).is_none() || state_of(ctr_pid) == Some('Z')
    });
    assert!(gone, "container process {ctr_pid} survived rm -f");
}

#[test]
fn killing_the_cli_mid_run_is_reconciled() {
    require_root!();
    let host = SandboxHost::with_web();
    for (i, delay_ms) in [30u64, 150, 400, 1000].into_iter().enumerate() {
        let name = format!("r{i}");
        let mut cmd = host.berth_command(&["run", "--name", &name, "web", "sleep", "1000"]);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut cli = Background::spawn(&mut cmd);
        std::thread::sleep(Duration::from_millis(delay_ms));
        cli.signal(Signal::SIGKILL);
        cli.wait_timeout(Duration::from_secs(5));
        if let Some(status) = ps_status(&host, &name) {
            assert!(sane(&status), "after kill -9 at {delay_ms} ms: {status:?}");
        }
        let rm = host.cli(&["rm", "-f", &name]);
        assert!(rm.success() || rm.stderr.starts_with("berth: "), "{rm}");
        assert!(
            ps_status(&host, &name).is_none(),
            "{name} still listed after rm -f"
        );
        // The name is free again: nothing half-made keeps it.
        host.cli(&["run", "-d", "--name", &name, "web", "true"])
            .ok();
        host.cli(&["rm", "-f", &name]).ok();
    }
    let mut cmd = host.berth_command(&["run", "--name", "attached", "web", "sleep", "1000"]);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut cli = Background::spawn(&mut cmd);
    assert!(wait_until(Duration::from_secs(20), || ps_status(
        &host, "attached"
    )
    .is_some_and(|s| s.starts_with("Up "))));
    cli.signal(Signal::SIGKILL);
    cli.wait_timeout(Duration::from_secs(5));
    let status = ps_status(&host, "attached").expect("listed");
    assert!(
        status.starts_with("Up "),
        "the container outlives its CLI (the monitor owns it): {status}"
    );
    host.cli(&["stop", "-t", "1", "attached"]).ok();
    assert_eq!(host.status("attached"), "exited");
}
