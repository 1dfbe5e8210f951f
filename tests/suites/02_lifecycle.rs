//! Lifecycle: run/create/start/stop/restart/kill/rm/ps/logs/inspect, names and id
//! prefixes, exit codes (125/126/127/own), --rm, logs -f, restart policies.

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use berth_tests::{require_root, wait_until, Background, SandboxHost};

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The STATUS column of `ps -a` for the container named `name`.
fn ps_status(host: &SandboxHost, name: &str) -> String {
    let table = host.cli(&["ps", "-a"]).ok();
    let header = table.lines().next().unwrap_or_default().to_string();
    let (start, end) = (
        header.find("STATUS").unwrap(),
        header.find("PORTS").unwrap(),
    );
    let row = table
        .lines()
        .skip(1)
        .find(|l| l.split_whitespace().last() == Some(name))
        .unwrap_or_else(|| panic!("{name} not in ps -a:\n{table}"));
    row.get(start..end.min(row.len()))
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn restart_count(host: &SandboxHost, name: &str) -> u64 {
    host.inspect(name)["RestartCount"].as_u64().unwrap_or(0)
}

#[test]
fn attached_run_prints_output_and_hands_back_exit_codes() {
    require_root!();
    let host = SandboxHost::with_web();
    let out = host.cli(&["run", "--rm", "web", "echo", "hello", "world"]);
    assert_eq!(out.ok(), "hello world");
    host.cli(&["run", "--rm", "web", "sh", "-c", "exit 3"])
        .code(3);
    host.cli(&["run", "--rm", "web", "/no/such/binary"])
        .code(127);
    host.cli(&["run", "--rm", "web", "/etc/passwd"]).code(126);
    // --pull never: a missing image must not send the test to a registry (none is reachable
    // from a sandbox host, and no test may try).
    let err = host
        .cli(&["run", "--rm", "--pull", "never", "nosuch:image"])
        .code(125);
    assert!(
        err.starts_with("berth: ") && err.contains("no such image"),
        "{err}"
    );
    let err = host.cli(&["run", "--no-such-flag", "web"]).code(125);
    assert!(!err.is_empty());
    assert!(
        !host.cli(&["ps", "-a"]).ok().contains("Exited"),
        "--rm left containers"
    );
}

#[test]
fn env_workdir_entrypoint_hostname_user() {
    require_root!();
    let host = SandboxHost::with_web();
    let env = host
        .cli(&["run", "--rm", "-e", "FOO=bar", "web", "env"])
        .ok();
    assert!(env.lines().any(|l| l == "FOO=bar"), "{env}");
    assert!(
        env.lines().any(|l| l.starts_with("PATH=")),
        "image Env PATH kept: {env}"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("env");
    std::fs::write(&file, "A=1\n# comment\nB=two words\n").unwrap();
    let env = host
        .cli(&[
            "run",
            "--rm",
            "--env-file",
            file.to_str().unwrap(),
            "web",
            "env",
        ])
        .ok();
    assert!(env.contains("A=1") && env.contains("B=two words"), "{env}");
    assert_eq!(
        host.cli(&["run", "--rm", "-w", "/www", "web", "pwd"]).ok(),
        "/www"
    );
    assert_eq!(
        host.cli(&["run", "--rm", "--entrypoint", "echo", "web", "x"])
            .ok(),
        "x"
    );
    assert_eq!(
        host.cli(&["run", "--rm", "--hostname", "boat", "web", "hostname"])
            .ok(),
        "boat"
    );
    assert_eq!(
        host.cli(&["run", "--rm", "-u", "nobody", "web", "id", "-u"])
            .ok(),
        "65534"
    );
}

#[test]
fn detached_lifecycle_stop_start_restart_kill_rm() {
    require_root!();
    let host = SandboxHost::with_web();
    let id = host
        .cli(&["run", "-d", "--name", "life", "web", "sleep", "1000"])
        .ok();
    assert!(is_hex64(&id), "run -d prints the 64-hex id: {id}");
    let ins = host.inspect("life");
    assert_eq!(ins["Id"], id.as_str());
    assert_eq!(ins["Name"], "/life");
    assert_eq!(ins["State"]["Running"], true);
    assert!(ins["State"]["Pid"].as_u64().unwrap_or(0) > 0, "{ins}");
    assert_eq!(ins["Config"]["Cmd"], serde_json::json!(["sleep", "1000"]));
    assert!(
        ps_status(&host, "life").starts_with("Up "),
        "{}",
        ps_status(&host, "life")
    );
    assert_eq!(host.cli(&["ps", "-q", "--no-trunc"]).ok(), id);

    // sleep as pid 1 ignores SIGTERM, so stop must escalate to SIGKILL after -t.
    let t0 = Instant::now();
    host.cli(&["stop", "-t", "1", "life"]).ok();
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "stop -t 1 took {:?}",
        t0.elapsed()
    );
    let ins = host.inspect("life");
    assert_eq!(ins["State"]["Status"], "exited", "{ins}");
    assert_eq!(ins["State"]["ExitCode"], 137, "{ins}");
    assert!(ps_status(&host, "life").starts_with("Exited (137)"));
    assert_eq!(
        host.cli(&["ps", "-q"]).ok(),
        "",
        "ps without -a hides exited"
    );

    host.cli(&["start", "life"]).ok();
    assert_eq!(host.status("life"), "running");
    let pid1 = host.inspect("life")["State"]["Pid"].as_u64();
    host.cli(&["restart", "life"]).ok();
    assert_eq!(host.status("life"), "running");
    assert_ne!(
        host.inspect("life")["State"]["Pid"].as_u64(),
        pid1,
        "restart runs a new process"
    );
    host.cli(&["kill", "-s", "KILL", "life"]).ok();
    assert!(wait_until(Duration::from_secs(10), || host.status("life") == "exited"));
    assert_eq!(host.inspect("life")["State"]["ExitCode"], 137);
    host.cli(&["rm", "life"]).ok();
    assert_eq!(host.cli(&["ps", "-aq"]).ok(), "");
    host.cli(&["inspect", "life"]).fails();
}

#[test]
fn create_then_start_attached() {
    require_root!();
    let host = SandboxHost::with_web();
    let id = host
        .cli(&[
            "create",
            "--name",
            "made",
            "web",
            "echo",
            "created-then-started",
        ])
        .ok();
    assert!(is_hex64(&id), "{id}");
    assert_eq!(host.status("made"), "created");
    assert_eq!(ps_status(&host, "made"), "Created");
    let out = host.cli(&["start", "-a", "made"]).ok();
    assert_eq!(out, "created-then-started");
    assert_eq!(host.status("made"), "exited");
    assert!(ps_status(&host, "made").starts_with("Exited (0)"));
    let err = host.cli(&["rm", "nosuch"]).fails();
    assert!(err.starts_with("berth: "), "{err}");
}

#[test]
fn names_are_validated_unique_and_ids_match_by_prefix() {
    require_root!();
    let host = SandboxHost::with_web();
    for bad in ["bad name", "-dash", "x", "_under", "a/b", "é"] {
        let flag = format!("--name={bad}");
        let err = host.cli(&["create", &flag, "web"]).code(125);
        assert!(err.starts_with("berth: "), "{bad}: {err}");
    }
    let id = host.cli(&["create", "--name", "uniq", "web"]).ok();
    let err = host.cli(&["create", "--name", "uniq", "web"]).code(125);
    assert!(err.contains("uniq"), "duplicate names the name: {err}");
    let ins = host.inspect(&id[..8]);
    assert_eq!(ins["Name"], "/uniq");
    host.cli(&["rm", &id[..12]]).ok();
    host.cli(&["inspect", "uniq"]).fails();
    assert_eq!(
        host.cli(&["ps", "-aq"]).ok(),
        "",
        "failed creates left containers"
    );
}

#[test]
fn rm_flag_removes_after_exit() {
    require_root!();
    let host = SandboxHost::with_web();
    host.cli(&["run", "--rm", "--name", "gone", "web", "true"])
        .ok();
    host.cli(&[
        "run", "-d", "--rm", "--name", "gone2", "web", "sleep", "0.5",
    ])
    .ok();
    assert!(wait_until(Duration::from_secs(15), || host
        .cli(&["ps", "-aq"])
        .ok()
        .is_empty()));
    host.cli(&["inspect", "gone"]).fails();
    host.cli(&["create", "--rm", "--name", "auto", "web"]).ok();
    assert_eq!(host.inspect("auto")["HostConfig"]["AutoRemove"], true);
    host.cli(&["create", "--name", "keep", "web"]).ok();
    assert_eq!(host.inspect("keep")["HostConfig"]["AutoRemove"], false);
}

#[test]
fn logs_tail_and_follow() {
    require_root!();
    let host = SandboxHost::with_web();
    host.cli(&[
        "run",
        "-d",
        "--name",
        "talk",
        "web",
        "sh",
        "-c",
        // stdout and stderr are separate pipes read by separate pumps (as in Docker): the
        // pause makes the order in the log the order of writing.
        "echo one; echo two; sleep 0.3; echo three >&2",
    ])
    .ok();
    assert!(wait_until(Duration::from_secs(10), || host.status("talk") == "exited"));
    let logs = host.berth(&["logs", "talk"]);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&logs.stdout),
        String::from_utf8_lossy(&logs.stderr)
    );
    for want in ["one", "two", "three"] {
        assert!(
            all.lines().any(|l| l == want),
            "{want} missing from logs: {all}"
        );
    }
    assert!(
        String::from_utf8_lossy(&logs.stderr).contains("three"),
        "stderr kept apart"
    );
    // --tail counts lines of the whole log (both streams), as Docker does.
    let tail = host.cli(&["logs", "--tail", "2", "talk"]);
    assert_eq!(
        (tail.stdout.trim(), tail.stderr.trim()),
        ("two", "three"),
        "{tail}"
    );
    let tail = host.cli(&["logs", "--tail", "1", "talk"]);
    assert_eq!(
        (tail.stdout.trim(), tail.stderr.trim()),
        ("", "three"),
        "{tail}"
    );

    host.cli(&[
        "run",
        "-d",
        "--name",
        "slow",
        "web",
        "sh",
        "-c",
        "for i in 1 2 3; do echo line$i; sleep 1; done",
    ])
    .ok();
    let mut cmd = host.berth_command(&["logs", "-f", "slow"]);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut follow = Background::spawn(&mut cmd);
    let status = follow.wait_timeout(Duration::from_secs(20));
    assert!(
        status.is_some(),
        "logs -f did not end when the container exited"
    );
    let mut text = String::new();
    follow
        .child()
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        ["line1", "line2", "line3"],
        "{text}"
    );
}

#[test]
fn restart_on_failure_counts_and_gives_up() {
    require_root!();
    let host = SandboxHost::with_web();
    host.cli(&[
        "run",
        "-d",
        "--restart",
        "on-failure:2",
        "--name",
        "rf",
        "web",
        "sh",
        "-c",
        "exit 1",
    ])
    .ok();
    let done = wait_until(Duration::from_secs(30), || {
        restart_count(&host, "rf") == 2 && host.status("rf") == "exited"
    });
    let ins = host.inspect("rf");
    assert!(
        done,
        "on-failure:2 should restart twice then stay exited: {ins}"
    );
    assert_eq!(ins["State"]["ExitCode"], 1);
    assert_eq!(ins["HostConfig"]["RestartPolicy"]["Name"], "on-failure");
    assert_eq!(ins["HostConfig"]["RestartPolicy"]["MaximumRetryCount"], 2);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        restart_count(&host, "rf"),
        2,
        "no restarts past the maximum"
    );

    host.cli(&[
        "run",
        "-d",
        "--restart",
        "on-failure",
        "--name",
        "rf0",
        "web",
        "true",
    ])
    .ok();
    assert!(wait_until(Duration::from_secs(10), || host.status("rf0") == "exited"));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        restart_count(&host, "rf0"),
        0,
        "on-failure does not restart exit 0"
    );
}

#[test]
fn restart_always_and_unless_stopped_stop_for_good_after_stop() {
    require_root!();
    let host = SandboxHost::with_web();
    for (name, policy) in [("ra", "always"), ("ru", "unless-stopped")] {
        host.cli(&[
            "run",
            "-d",
            "--restart",
            policy,
            "--name",
            name,
            "web",
            "sh",
            "-c",
            "sleep 0.3",
        ])
        .ok();
        let restarted = wait_until(Duration::from_secs(30), || restart_count(&host, name) >= 2);
        assert!(restarted, "{policy}: {}", host.inspect(name));
        assert_eq!(
            host.inspect(name)["HostConfig"]["RestartPolicy"]["Name"],
            policy
        );
        host.cli(&["stop", "-t", "1", name]).ok();
        let count = restart_count(&host, name);
        std::thread::sleep(Duration::from_secs(3));
        assert_eq!(
            host.status(name),
            "exited",
            "{policy}: restarted after stop"
        );
        assert_eq!(
            restart_count(&host, name),
            count,
            "{policy}: restarted after stop"
        );
    }
    let bad = host
        .cli(&["run", "-d", "--restart", "sometimes", "web"])
        .code(125);
    assert!(bad.starts_with("berth: "), "{bad}");
}

#[test]
fn a_runtime_that_refuses_this_host_is_named_with_the_reason() {
    require_root!();
    let host = SandboxHost::with_web();
    // An absent runtime: a clear error, nothing recorded.
    let err = host
        .cli(&["--runtime", "no-such-runtime", "run", "--rm", "web", "true"])
        .code(125);
    assert!(
        err.contains("no-such-runtime") && err.contains("--runtime"),
        "{err}"
    );
    let Some(crun) = ["/usr/bin/crun", "/usr/local/bin/crun"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
    else {
        berth_tests::skip!("crun is not installed: its cgroup-layout refusal cannot be shown");
    };
    let cgroup2_hybrid = std::path::Path::new("/sys/fs/cgroup/unified/cgroup.controllers").exists();
    let out = host.cli(&[
        "--runtime",
        crun,
        "run",
        "--rm",
        "--name",
        "c1",
        "web",
        "true",
    ]);
    if out.success() {
        berth_tests::skip_kernel!(
            "crun accepted this host's cgroup layout (not a hybrid v1/v2 host)"
        );
    }
    let err = out.code(125);
    if cgroup2_hybrid {
        assert!(
            err.contains("cgroup layout") && err.contains("--runtime runc"),
            "crun's refusal is explained: {err}"
        );
    }
    // The failed start left the container created, not half-running; rm cleans it.
    host.cli(&["rm", "-f", "c1"]).ok_or_berth_error();
}
