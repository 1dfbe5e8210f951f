//! A lab L2 segment for the underlay (macvlan/ipvlan) suites: a "lab" namespace holding a
//! bridge that plays the switch, and a veth "NIC" from each sandbox host into it (the NIC is
//! the parent of the host's macvlan/ipvlan children). Everything lives in namespaces the test
//! made; dropping the lab deletes its namespace, and with it the lab ends of every NIC.

use crate::netns::{ip, Netns};

/// The lab switch: namespace `berth-l-<suffix>` with bridge `lab0` up.
#[derive(Debug)]
pub struct Lab {
    netns: Netns,
}

impl Lab {
    /// Creates the lab namespace and its bridge.
    ///
    /// Errors: any `ip` step failing.
    pub fn new() -> anyhow::Result<Self> {
        let netns = Netns::new(&format!("berth-l-{}", crate::random_suffix(8)))?;
        let n = netns.name().to_string();
        ip(&["-n", &n, "link", "add", "lab0", "type", "bridge"])?;
        ip(&["-n", &n, "link", "set", "lab0", "up"])?;
        Ok(Self { netns })
    }

    /// The lab's namespace.
    pub fn netns(&self) -> &Netns {
        &self.netns
    }

    /// Plugs `host` into the lab: a veth `nic` inside `host` (addressed `cidr`, e.g.
    /// `192.168.77.10/24`, unless empty; up) whose peer is born in the lab and enslaved to
    /// `lab0`.
    ///
    /// Errors: any `ip` step failing.
    pub fn plug(&self, host: &Netns, nic: &str, cidr: &str) -> anyhow::Result<()> {
        let (h, l) = (host.name(), self.netns.name());
        let port = format!("lp{}", crate::random_suffix(8));
        ip(&[
            "-n", h, "link", "add", nic, "type", "veth", "peer", "name", &port, "netns", l,
        ])?;
        ip(&["-n", l, "link", "set", &port, "master", "lab0", "up"])?;
        if !cidr.is_empty() {
            ip(&["-n", h, "addr", "add", cidr, "dev", nic])?;
        }
        ip(&["-n", h, "link", "set", nic, "up"])?;
        Ok(())
    }
}

/// Whether this kernel can make links of `kind` (`ipvlan`, `vlan`, `dummy`): tries one in a
/// throwaway namespace. `Err` holds the kernel's answer, for a `SKIP:` line.
pub fn kernel_has_link_kind(kind: &str) -> Result<(), String> {
    let ns =
        Netns::new(&format!("berth-t-{}", crate::random_suffix(8))).map_err(|e| e.to_string())?;
    let n = ns.name();
    ip(&[
        "-n", n, "link", "add", "kp0", "type", "veth", "peer", "name", "kp1",
    ])
    .map_err(|e| e.to_string())?;
    let args: Vec<&str> = match kind {
        "dummy" => vec!["-n", n, "link", "add", "kk0", "type", "dummy"],
        "vlan" => vec![
            "-n", n, "link", "add", "link", "kp0", "name", "kk0", "type", "vlan", "id", "10",
        ],
        other => vec![
            "-n", n, "link", "add", "link", "kp0", "name", "kk0", "type", other,
        ],
    };
    ip(&args).map_err(|e| e.to_string())
}
