//! Many berth processes at once: concurrent `run`s while `ps`/`inspect` reconcile, one winner
//! for a contested name, and exactly one of several simultaneous host-mode servers on a port.

use berth_tests::{require_root, SandboxHost};

#[test]
fn concurrent_runs_survive_concurrent_ps() {
    require_root!();
    let host = SandboxHost::with_web();
    let n = 20;
    let names: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
    std::thread::scope(|s| {
        for name in &names {
            let host = &host;
            s.spawn(move || {
                host.cli(&["run", "-d", "--name", name, "web", "sleep", "60"])
                    .ok()
            });
        }
        for _ in 0..6 {
            let host = &host;
            s.spawn(move || {
                host.cli(&["ps", "-a"]).ok();
                host.cli(&["inspect", "c1"]);
            });
        }
    });
    // Recovery in the concurrent `ps`es must not have mistaken a starting container for a
    // dead one: every container runs.
    for name in &names {
        assert_eq!(
            host.status(name),
            "running",
            "{name}: {}",
            host.inspect(name)
        );
    }
}

#[test]
fn a_contested_name_has_exactly_one_winner() {
    require_root!();
    let host = SandboxHost::with_web();
    let outcomes: Vec<bool> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..10)
            .map(|_| {
                let host = &host;
                s.spawn(move || {
                    host.cli(&["run", "-d", "--name", "same", "web", "sleep", "60"])
                        .success()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(outcomes.iter().filter(|ok| **ok).count(), 1, "{outcomes:?}");
    let all = host.cli(&["ps", "-aq"]).ok();
    assert_eq!(all.lines().count(), 1, "one container recorded: {all}");
}

#[test]
fn simultaneous_host_mode_servers_one_wins_the_port() {
    require_root!();
    let host = SandboxHost::with_web();
    let results: Vec<(bool, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let host = &host;
                s.spawn(move || {
                    let name = format!("hw{i}");
                    let out = host.cli(&["run", "-d", "--net", "host", "--name", &name, "web"]);
                    (out.success(), out.stderr)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let winners = results.iter().filter(|(ok, _)| *ok).count();
    assert_eq!(winners, 1, "{results:?}");
    for (ok, err) in &results {
        if !ok {
            assert!(err.contains("80/tcp"), "the refusal names the port: {err}");
        }
    }
    // The refused runs left no container behind.
    let all = host.cli(&["ps", "-aq"]).ok();
    assert_eq!(all.lines().count(), 1, "{all}");
    let listing = host.cli(&["ps"]).ok();
    assert!(listing.contains("Up "), "the winner runs: {listing}");
}
