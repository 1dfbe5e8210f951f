//! A "client" network namespace joined to a sandbox host by a veth pair, to send real traffic
//! to the host's address from outside it. Addresses come from 10.77.0.0/16 and exist only inside
//! the two namespaces the test made.

use std::process::Command;
use std::time::Duration;

use crate::command::{run_with_timeout, Outcome};
use crate::netns::{ip, Netns};

/// A client namespace with one veth to its sandbox host; deleted (with the veth) on drop.
#[derive(Debug)]
pub struct Client {
    netns: Netns,
    host_addr: String,
    addr: String,
}

impl Client {
    /// Creates netns `berth-c-<suffix>` and a veth pair `bh<suffix>` (in `host_ns`) /
    /// `bc<suffix>` (in the client), addressed `10.77.<subnet>.1/24` on the host side and
    /// `.2` on the client side. The link is created inside `host_ns` (never in the root
    /// namespace) with its peer placed directly in the client namespace.
    ///
    /// Errors: any `ip` step failing.
    pub(crate) fn new(host_ns: &str, subnet: u8) -> anyhow::Result<Self> {
        let suffix = crate::random_suffix(8);
        let netns = Netns::new(&format!("berth-c-{suffix}"))?;
        let (hif, cif) = (format!("bh{suffix}"), format!("bc{suffix}"));
        let host_addr = format!("10.77.{subnet}.1");
        let addr = format!("10.77.{subnet}.2");
        let cns = netns.name().to_string();
        ip(&[
            "-n", host_ns, "link", "add", &hif, "type", "veth", "peer", "name", &cif, "netns", &cns,
        ])?;
        ip(&[
            "-n",
            host_ns,
            "addr",
            "add",
            &format!("{host_addr}/24"),
            "dev",
            &hif,
        ])?;
        ip(&[
            "-n",
            &cns,
            "addr",
            "add",
            &format!("{addr}/24"),
            "dev",
            &cif,
        ])?;
        ip(&["-n", host_ns, "link", "set", &hif, "up"])?;
        ip(&["-n", &cns, "link", "set", &cif, "up"])?;
        Ok(Self {
            netns,
            host_addr,
            addr,
        })
    }

    /// The sandbox host's address on the veth (e.g. `10.77.0.1`).
    pub fn host_addr(&self) -> &str {
        &self.host_addr
    }

    /// The client's own address (e.g. `10.77.0.2`).
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The client's namespace.
    pub fn netns(&self) -> &Netns {
        &self.netns
    }

    /// Runs `sh -c cmd` inside the client namespace (20 s deadline).
    pub fn sh(&self, cmd: &str) -> Outcome {
        let mut c: Command = self.netns.command("sh");
        c.arg("-c").arg(cmd);
        Outcome::new(
            format!("client: {cmd}"),
            run_with_timeout(&mut c, Duration::from_secs(20)),
        )
    }

    /// Fetches `http://<host addr>:<port>/` from the client with curl (3 s per attempt);
    /// returns the body, or the failed outcome as error text.
    pub fn http_get(&self, port: u16) -> Result<String, String> {
        let out = self.sh(&format!(
            "curl -sS --max-time 3 http://{}:{port}/",
            self.host_addr
        ));
        if out.success() {
            Ok(out.stdout)
        } else {
            Err(out.to_string())
        }
    }
}
