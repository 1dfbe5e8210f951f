//! The sandbox host's `Drop`: remove every container and network, then check for and clean up
//! leaks. Leftovers fail the test (unless it is already panicking), but cleanup always runs.

use std::path::Path;
use std::time::Duration;

use crate::command::try_run;
use crate::leaks;
use crate::sandbox::SandboxHost;

impl SandboxHost {
    /// Every container id this host knows: `ps -aq --no-trunc`, ids seen in command output,
    /// and directories under `<root>/containers`.
    fn known_ids(&self, problems: &mut Vec<String>) -> Vec<String> {
        let mut ids = self.seen_ids_snapshot();
        match try_run(
            &mut self.berth_command(&["ps", "-aq", "--no-trunc"]),
            Duration::from_secs(60),
        ) {
            Ok(out) if out.status.success() => {
                ids.extend(
                    String::from_utf8_lossy(&out.stdout)
                        .split_whitespace()
                        .map(String::from),
                );
            }
            Ok(out) => problems.push(format!(
                "teardown: `berth ps -aq --no-trunc` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            Err(e) => problems.push(format!("teardown: {e}")),
        }
        if let Ok(dir) = std::fs::read_dir(self.root().join("containers")) {
            ids.extend(
                dir.flatten()
                    .filter_map(|e| e.file_name().into_string().ok()),
            );
        }
        ids.sort();
        ids.dedup();
        ids
    }

    fn remove_containers(&self, ids: &[String], problems: &mut Vec<String>) {
        let listed = match try_run(
            &mut self.berth_command(&["ps", "-aq", "--no-trunc"]),
            Duration::from_secs(60),
        ) {
            Ok(out) => String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .map(String::from)
                .collect(),
            Err(_) => Vec::new(),
        };
        if listed.is_empty() {
            return;
        }
        let mut args = vec!["rm", "-f"];
        args.extend(listed.iter().map(String::as_str));
        match try_run(&mut self.berth_command(&args), Duration::from_secs(90)) {
            Ok(out) if out.status.success() => {}
            Ok(out) => problems.push(format!(
                "teardown: `berth rm -f` of {} containers failed: {}",
                ids.len(),
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            Err(e) => problems.push(format!("teardown: {e}")),
        }
    }

    /// `berth network prune -f`: with no network left, the embedded DNS server (`berth dns`,
    /// which names the root in its command line) exits instead of counting as a leak.
    fn prune_networks(&self, problems: &mut Vec<String>) {
        match try_run(
            &mut self.berth_command(&["network", "prune", "-f"]),
            Duration::from_secs(60),
        ) {
            Ok(out) if out.status.success() => {}
            Ok(out) => problems.push(format!(
                "teardown: `berth network prune -f` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            Err(e) => problems.push(format!("teardown: {e}")),
        }
    }

    /// Removes containers, then finds, reports and cleans leaks. Returns the problems.
    pub(crate) fn teardown(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        let ids = self.known_ids(&mut problems);
        self.remove_containers(&ids, &mut problems);
        self.prune_networks(&mut problems);
        let (root, runroot) = (self.root().to_path_buf(), self.runroot().to_path_buf());
        let dirs: [&Path; 2] = [&root, &runroot];
        let ino = self.netns_ino();
        // Monitors and runc exit asynchronously after `rm -f` returns; give them a moment.
        crate::wait_until(Duration::from_secs(5), || {
            leaks::processes(&ids, ino, &dirs).is_empty()
        });
        let procs = leaks::processes(&ids, ino, &dirs);
        for p in &procs {
            problems.push(format!("leaked process {} ({}): {}", p.pid, p.comm, p.why));
        }
        leaks::kill_all(&procs);
        let mounts = leaks::mounts_under(&dirs);
        for m in &mounts {
            problems.push(format!("leaked mount {}", m.display()));
        }
        leaks::unmount_all(&mounts);
        let cgroups = leaks::cgroup_dirs(&ids);
        for c in &cgroups {
            problems.push(format!("leaked cgroup {}", c.display()));
        }
        leaks::remove_cgroups(&cgroups);
        if let Err(e) = self.delete_netns() {
            problems.push(e);
        }
        problems
    }
}

impl Drop for SandboxHost {
    fn drop(&mut self) {
        let problems = self.teardown();
        if problems.is_empty() {
            return;
        }
        let report = format!(
            "sandbox host {} left things behind (cleaned up now):\n  {}",
            self.netns().name(),
            problems.join("\n  ")
        );
        if std::thread::panicking() {
            eprintln!("{report}");
        } else {
            panic!("{report}");
        }
    }
}
