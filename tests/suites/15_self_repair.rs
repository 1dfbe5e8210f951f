//! Self-repair (issue 11, items 7-9 and the minor ones): state that outlives a crash, a
//! killed helper or a mistaken flag is noticed and repaired by the next berth command, or the
//! mistaken command is refused before it can do harm.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use berth_tests::{berth_binary, require_root, run_with_timeout, Outcome, SandboxHost};

/// `berth --root <host's> --runroot RUNROOT ARGS` inside the host's namespace.
fn berth_with_runroot(host: &SandboxHost, runroot: &Path, args: &[&str]) -> Outcome {
    let mut cmd: Command = host.netns().command(berth_binary().to_str().unwrap());
    cmd.arg("--root")
        .arg(host.root())
        .arg("--runroot")
        .arg(runroot)
        .args(args);
    let out = run_with_timeout(&mut cmd, Duration::from_secs(60));
    Outcome::new(
        format!("berth --runroot {} {}", runroot.display(), args.join(" ")),
        out,
    )
}

#[test]
fn another_runroot_is_refused_while_containers_run_and_they_keep_serving() {
    require_root!();
    let host = SandboxHost::with_web();
    host.cli(&["network", "create", "rnet"]).ok();
    host.cli(&[
        "run", "-d", "--net", "rnet", "--name", "srv", "-p", "8081:80", "web",
    ])
    .ok();
    host.cli(&[
        "run", "-d", "--net", "rnet", "--name", "cli", "web", "sleep", "600",
    ])
    .ok();
    assert!(host.wait_published(8081, ""), "the published port answers");
    let before = host.nft_ruleset();
    let other = tempfile::tempdir().unwrap();
    for args in [&["ps", "-a"][..], &["rm", "-f", "srv"], &["start", "srv"]] {
        let err = berth_with_runroot(&host, other.path(), args).code(125);
        let (root, rr, other) = (
            host.root().display().to_string(),
            host.runroot().display().to_string(),
            other.path().display().to_string(),
        );
        assert!(
            err.contains(&root) && err.contains(&rr) && err.contains(&other),
            "the refusal names the root and both runroots: {err}"
        );
    }
    assert_eq!(host.status("srv"), "running");
    assert_eq!(host.status("cli"), "running");
    assert_eq!(
        host.nft_ruleset(),
        before,
        "the refused commands changed the firewall"
    );
    let ip = host.ip_on("srv", "rnet");
    host.http_from("cli", &ip, 80)
        .expect("srv still answers cli");
    assert!(
        host.wait_published(8081, ""),
        "the published port still answers"
    );
    // With nothing running the root may move to another runroot (e.g. after a reboot).
    host.cli(&["rm", "-f", "srv", "cli"]).ok();
    berth_with_runroot(&host, other.path(), &["ps", "-a"]).ok();
    host.cli(&["ps", "-a"]).ok();
}
