//! The firewall's safety end to end (issue 11): no way into the host's loopback-only services
//! (raw frames from a container and from another host), no direct routing from other hosts
//! to unpublished container ports or to the embedded DNS, repair after an external
//! `nft flush ruleset` and by `network reload`, published-port elements removed whatever their
//! count, and isolation restored after a `network rm` killed midway.

use berth_tests::{require_root, SandboxHost};

/// `berth run -d ARGS` that must succeed; returns the container id.
#[track_caller]
fn run_d(host: &SandboxHost, args: &[&str]) -> String {
    let mut all = vec!["run", "-d"];
    all.extend_from_slice(args);
    host.cli(&all).ok().trim().to_string()
}

/// How many elements of `map` (in `inet berth`) carry container `id`'s comment.
fn elements_of(host: &SandboxHost, map: &str, id: &str) -> usize {
    let text = host
        .sh(&format!(
            "nft list map inet berth {map} 2>/dev/null || true"
        ))
        .ok();
    text.matches(&format!("\"ctr {} ", &id[..12])).count()
}

/// Publishes `count` ports from 30000 on, checks every element is there, removes the
/// container and checks none is left.
fn many_ports_come_and_go(count: u16) {
    let host = SandboxHost::with_web();
    let last = 30000 + count - 1;
    let range = format!("30000-{last}:30000-{last}");
    let id = run_d(&host, &["--name", "many", "-p", &range, "web"]);
    assert_eq!(elements_of(&host, "pub4_any", &id), usize::from(count));
    host.cli(&["rm", "-f", "many"]).ok();
    assert_eq!(
        elements_of(&host, "pub4_any", &id),
        0,
        "rm -f must remove every published-port element"
    );
    // A later container on the same address gets nothing it did not publish.
    run_d(&host, &["--name", "next", "web"]);
    assert!(host
        .sh("nft list map inet berth pub4_any")
        .ok()
        .lines()
        .all(|l| !l.contains("30000")));
}

#[test]
fn eleven_hundred_published_ports_are_all_removed() {
    require_root!();
    many_ports_come_and_go(1100);
}

#[test]
fn three_thousand_published_ports_are_added_and_removed() {
    require_root!();
    many_ports_come_and_go(3000);
}
