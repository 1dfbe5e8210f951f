//! Helpers for the bridge-network suites: commands inside containers (busybox `nc` as an HTTP
//! client with a deadline), a container's address on a network, and snapshots of the sandbox
//! host's state (nft ruleset, links, networks, running containers) to prove "no partial state".

use std::collections::BTreeSet;
use std::time::Duration;

use crate::command::{run_with_timeout, Outcome};
use crate::sandbox::SandboxHost;

/// What a refused command must leave unchanged in a sandbox host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostState {
    /// Network names per `berth network ls --format`-free parsing (NAME column).
    pub networks: BTreeSet<String>,
    /// Running containers' names per `berth ps` (NAMES column).
    pub running: BTreeSet<String>,
    /// Link names in the host namespace per `ip -br link` (`@peer` suffix dropped).
    pub links: BTreeSet<String>,
    /// `nft list ruleset` in the host namespace.
    pub ruleset: String,
}

impl HostState {
    /// What differs from `before`, one line per difference (ruleset lines as `+`/`-`); empty
    /// when equal. For readable assertion messages.
    pub fn diff(&self, before: &HostState) -> Vec<String> {
        let mut out = Vec::new();
        let sets = [
            ("network", &before.networks, &self.networks),
            ("running container", &before.running, &self.running),
            ("link", &before.links, &self.links),
        ];
        for (what, old, new) in sets {
            out.extend(new.difference(old).map(|x| format!("new {what} {x}")));
            out.extend(old.difference(new).map(|x| format!("lost {what} {x}")));
        }
        let old: BTreeSet<&str> = before.ruleset.lines().collect();
        let new: BTreeSet<&str> = self.ruleset.lines().collect();
        out.extend(new.difference(&old).map(|l| format!("nft + {}", l.trim())));
        out.extend(old.difference(&new).map(|l| format!("nft - {}", l.trim())));
        out
    }
}

impl SandboxHost {
    /// `berth exec CTR sh -c CMD` (the image's busybox tools, in the container's namespaces).
    pub fn exec_sh(&self, ctr: &str, cmd: &str) -> Outcome {
        self.cli(&["exec", ctr, "sh", "-c", cmd])
    }

    /// Runs berth with `args` and extra environment variables (e.g. `BERTH_DNS_UPSTREAMS` on
    /// the `run` that spawns the DNS server). Panics past 90 s.
    pub fn cli_env(&self, env: &[(&str, &str)], args: &[&str]) -> Outcome {
        let mut cmd = self.berth_command(args);
        cmd.envs(env.iter().copied());
        let out = run_with_timeout(&mut cmd, Duration::from_secs(90));
        Outcome::new(format!("{env:?} berth {}", args.join(" ")), out)
    }

    /// `GET /` of `http://IP:PORT/` from inside container `ctr` with busybox `nc -w 3` (busybox
    /// `wget -T` crashes on timeout here). Returns the whole response (status line, headers,
    /// body) or the failed outcome as text.
    pub fn http_from(&self, ctr: &str, ip: &str, port: u16) -> Result<String, String> {
        let out = self.exec_sh(
            ctr,
            &format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {ip} {port}"),
        );
        if out.success() && out.stdout.contains("HTTP/1.") {
            Ok(out.stdout)
        } else {
            Err(out.to_string())
        }
    }

    /// True when a TCP connection from container `ctr` to `IP:PORT` fails within ~2 s
    /// (`nc -w 2`, which exits 1 on a refused or timed-out connect).
    pub fn cannot_connect_from(&self, ctr: &str, ip: &str, port: u16) -> Outcome {
        self.exec_sh(ctr, &format!("nc -w 2 {ip} {port} </dev/null"))
    }

    /// `curl` of `http://HOST:PORT/` run in the host namespace (3 s deadline); body or error.
    pub fn http_from_host(&self, host: &str, port: u16) -> Result<String, String> {
        let out = self.sh(&format!("curl -sS --max-time 3 http://{host}:{port}/"));
        if out.success() {
            Ok(out.stdout)
        } else {
            Err(out.to_string())
        }
    }

    /// Waits up to 10 s until `http://127.0.0.1:PORT/` answers from the host with a body
    /// containing `needle`; returns whether it did.
    pub fn wait_published(&self, port: u16, needle: &str) -> bool {
        crate::wait_until(Duration::from_secs(10), || {
            self.http_from_host("127.0.0.1", port)
                .map(|b| b.contains(needle))
                .unwrap_or(false)
        })
    }

    /// `NetworkSettings.Networks.<net>.IPAddress` of container `ctr` per `inspect`.
    /// Panics if it is missing or empty.
    pub fn ip_on(&self, ctr: &str, net: &str) -> String {
        let v = self.inspect(ctr);
        let ip = v["NetworkSettings"]["Networks"][net]["IPAddress"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(!ip.is_empty(), "{ctr} has no address on {net}: {v}");
        ip
    }

    /// `berth network inspect NET` parsed, first element. Panics if the command fails.
    pub fn network_inspect(&self, net: &str) -> serde_json::Value {
        let text = self.cli(&["network", "inspect", net]).ok();
        let v: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("network inspect {net}: {e}: {text}"));
        v[0].clone()
    }

    /// `nft list ruleset` in the host namespace (empty when berth made no tables yet).
    pub fn nft_ruleset(&self) -> String {
        self.sh("nft list ruleset").ok()
    }

    /// Link names in the host namespace (`ip -br link`, `@peer` suffixes dropped).
    pub fn link_names(&self) -> BTreeSet<String> {
        self.sh("ip -br link")
            .ok()
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .map(|n| n.split('@').next().unwrap_or(n).to_string())
            .collect()
    }

    /// Network names per `berth network ls` (NAME column).
    pub fn network_names(&self) -> BTreeSet<String> {
        column(&self.cli(&["network", "ls"]).ok(), 1)
    }

    /// Names of running containers per `berth ps` (last column).
    pub fn running_names(&self) -> BTreeSet<String> {
        self.cli(&["ps"])
            .ok()
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().last())
            .map(String::from)
            .collect()
    }

    /// Waits up to 5 s (the kernel removes a dead namespace's veths asynchronously) until the
    /// host's state equals `before`; returns the remaining differences (empty when equal).
    pub fn settle_to(&self, before: &HostState) -> Vec<String> {
        let mut diff = Vec::new();
        crate::wait_until(Duration::from_secs(5), || {
            diff = self.state().diff(before);
            diff.is_empty()
        });
        diff
    }

    /// Networks, running containers, links and ruleset, for before/after comparisons.
    pub fn state(&self) -> HostState {
        HostState {
            networks: self.network_names(),
            running: self.running_names(),
            links: self.link_names(),
            ruleset: self.nft_ruleset(),
        }
    }
}

/// Word `n` (0-based) of every line of a table after its header.
fn column(table: &str, n: usize) -> BTreeSet<String> {
    table
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(n))
        .map(String::from)
        .collect()
}
