//! The names berth owns, read from the store at query time.
//!
//! A read-only SQLite connection on `<root>/berth.db` (WAL mode, so reading never blocks the
//! CLI processes writing it, sqlite.org/wal.html): every query sees the endpoints committed so
//! far, which is what makes a name resolvable as soon as `run` returns and gone as soon as the
//! container's endpoint row is deleted. Nothing is cached.
//!
//! Tables read (crates/store schema): `networks(id, config = NetworkState JSON)`,
//! `endpoints(network_id, container_id, config = EndpointState JSON)`, `containers(id, name)`.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_net::{EndpointState, NetworkState};
use berth_store::rusqlite::{self, Connection, OpenFlags, OptionalExtension};
use ipnet::IpNet;

/// Errors of reading the store.
#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    /// `<root>/berth.db` could not be opened read-only.
    #[error("cannot open the state database {path} read-only: {source}; check --root")]
    Open {
        /// Path of `berth.db`.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// A query failed.
    #[error("cannot read {what} from the state database: {source}")]
    Query {
        /// What was being read (`networks`, `endpoints of <network id>` ...).
        what: String,
        /// SQLite's error.
        source: rusqlite::Error,
    },
}

/// A network the server answers for: a user-defined network with `dns == true`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsNetwork {
    /// Network id (64 hex characters).
    pub id: String,
    /// Network name, lowercase (`<container>.<network>` resolves too, and is the PTR target).
    pub name: String,
    /// The subnets (PTR queries inside them are berth's to answer).
    pub subnets: Vec<IpNet>,
    /// The gateway addresses the server listens on (port 53), one per subnet.
    pub gateways: Vec<IpAddr>,
}

impl DnsNetwork {
    fn from_state(n: &NetworkState) -> Self {
        Self {
            id: n.id.clone(),
            name: n.name.as_str().to_ascii_lowercase(),
            subnets: n.subnets.iter().map(|s| s.subnet).collect(),
            gateways: n.subnets.iter().map(|s| s.gateway).collect(),
        }
    }
}

/// Container names, short ids and aliases of one endpoint match case-insensitively; the name
/// is passed lowercase. The short id is Docker's 12 hex characters.
const NAME_QUERY: &str = "
    SELECT e.config FROM endpoints e JOIN containers c ON c.id = e.container_id
    WHERE e.network_id = ?1 AND (
        lower(c.name) = ?2 OR substr(c.id, 1, 12) = ?2
        OR EXISTS (SELECT 1 FROM json_each(e.config, '$.aliases') a WHERE lower(a.value) = ?2))";

/// Addresses are stored with their prefix length (`172.18.0.2/16`, `fd00::2/64`), in Rust's
/// canonical text form, which is also how `?2` is written.
const ADDR_QUERY: &str = "
    SELECT c.name FROM endpoints e JOIN containers c ON c.id = e.container_id,
        json_each(e.config, '$.addresses') a
    WHERE e.network_id = ?1 AND a.value LIKE ?2 || '/%'
    ORDER BY c.name LIMIT 1";

/// The other networks of the container holding `?2` on network `?1`.
const OTHER_NETWORKS_QUERY: &str = "
    SELECT DISTINCT e2.network_id FROM endpoints e
        JOIN endpoints e2 ON e2.container_id = e.container_id,
        json_each(e.config, '$.addresses') a
    WHERE e.network_id = ?1 AND a.value LIKE ?2 || '/%' AND e2.network_id != ?1
    ORDER BY e2.rowid";

/// Read-only view of the store's networks and endpoints.
#[derive(Debug)]
pub struct StoreRecords {
    conn: Connection,
}

impl StoreRecords {
    /// Opens `<root>/berth.db` read-only (the file must exist: berth creates it before it
    /// starts the DNS server). Waits up to 2 s for a lock instead of failing.
    ///
    /// Errors: [`RecordsError::Open`].
    pub fn open(root: &Path) -> Result<Self, RecordsError> {
        let path = root.join("berth.db");
        let open = || -> Result<Connection, rusqlite::Error> {
            let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
            let conn = Connection::open_with_flags(&path, flags)?;
            conn.busy_timeout(Duration::from_secs(2))?;
            Ok(conn)
        };
        let conn = open().map_err(|source| RecordsError::Open { path, source })?;
        Ok(Self { conn })
    }

    /// Every network with embedded DNS, in id order. Rows whose JSON does not parse are
    /// skipped with a warning (a newer berth may have written them).
    ///
    /// Errors: [`RecordsError::Query`].
    pub fn dns_networks(&self) -> Result<Vec<DnsNetwork>, RecordsError> {
        let err = |source| RecordsError::Query {
            what: "networks".into(),
            source,
        };
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, config FROM networks ORDER BY id")
            .map_err(err)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(err)?;
        let mut out = Vec::new();
        for row in rows {
            let (id, json) = row.map_err(err)?;
            match serde_json::from_str::<NetworkState>(&json) {
                Ok(n) if n.dns => out.push(DnsNetwork::from_state(&n)),
                Ok(_) => {}
                Err(e) => tracing::warn!(network = %id, error = %e, "skipping unreadable network"),
            }
        }
        Ok(out)
    }

    /// The addresses of the endpoints on `network_id` named `name` (container name, 12-char
    /// short id or `--network-alias`, case-insensitive), or `None` when no endpoint on that
    /// network has the name (then the name is not berth's). Several containers may share an
    /// alias: all their addresses are returned, in endpoint order.
    ///
    /// Errors: [`RecordsError::Query`].
    pub fn addresses(
        &self,
        network_id: &str,
        name: &str,
    ) -> Result<Option<Vec<IpAddr>>, RecordsError> {
        let err = |source| RecordsError::Query {
            what: format!("endpoints of network {network_id}"),
            source,
        };
        let name = name.to_ascii_lowercase();
        let mut stmt = self.conn.prepare_cached(NAME_QUERY).map_err(err)?;
        let rows = stmt
            .query_map([network_id, name.as_str()], |r| r.get::<_, String>(0))
            .map_err(err)?;
        let mut found = false;
        let mut addrs = Vec::new();
        for row in rows {
            let json = row.map_err(err)?;
            found = true;
            match serde_json::from_str::<EndpointState>(&json) {
                Ok(ep) => addrs.extend(ep.addresses.iter().map(IpNet::addr)),
                Err(e) => {
                    tracing::warn!(network = %network_id, error = %e, "skipping unreadable endpoint")
                }
            }
        }
        Ok(found.then_some(addrs))
    }

    /// The other networks of the container that holds `client` on `network_id` (empty when no
    /// container there has that address).
    ///
    /// Errors: [`RecordsError::Query`].
    pub fn other_networks_of(
        &self,
        network_id: &str,
        client: IpAddr,
    ) -> Result<Vec<String>, RecordsError> {
        let err = |source| RecordsError::Query {
            what: format!("networks of the client {client}"),
            source,
        };
        let mut stmt = self
            .conn
            .prepare_cached(OTHER_NETWORKS_QUERY)
            .map_err(err)?;
        let rows = stmt
            .query_map([network_id, client.to_string().as_str()], |r| r.get(0))
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    /// The name of the container holding `addr` on `network_id`, if any (the first by name
    /// when, against the IPAM rules, two do).
    ///
    /// Errors: [`RecordsError::Query`].
    pub fn container_at(
        &self,
        network_id: &str,
        addr: IpAddr,
    ) -> Result<Option<String>, RecordsError> {
        let err = |source| RecordsError::Query {
            what: format!("addresses of network {network_id}"),
            source,
        };
        let mut stmt = self.conn.prepare_cached(ADDR_QUERY).map_err(err)?;
        stmt.query_row([network_id, addr.to_string().as_str()], |r| r.get(0))
            .optional()
            .map_err(err)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use berth_store::rusqlite::params;
    use berth_store::Store;

    /// Fills a fresh store: network `front` (dns, 10.123.0.0/24 + fd12::/64), network `plain`
    /// (no dns) and network `back` (dns, 10.124.0.0/24), with containers `web` (alias `www`,
    /// v4 + v6 on front), `db` (v4 only on front), `other` (on back), `lb1`/`lb2` sharing alias
    /// `lb` on front.
    pub(crate) fn fixture(root: &Path) {
        let mut store = Store::open(root).unwrap();
        store
            .write(|tx| -> Result<(), rusqlite::Error> {
                network(
                    tx,
                    "front",
                    &[("10.123.0.0/24", "10.123.0.1"), ("fd12::/64", "fd12::1")],
                    true,
                )?;
                network(tx, "plain", &[("10.125.0.0/24", "10.125.0.1")], false)?;
                network(tx, "back", &[("10.124.0.0/24", "10.124.0.1")], true)?;
                endpoint(
                    tx,
                    "front",
                    "web",
                    &["10.123.0.2/24", "fd12::2/64"],
                    &["www"],
                )?;
                endpoint(tx, "front", "db", &["10.123.0.3/24"], &[])?;
                endpoint(tx, "back", "other", &["10.124.0.2/24"], &[])?;
                endpoint(tx, "plain", "hidden", &["10.125.0.2/24"], &[])?;
                endpoint(tx, "front", "lb1", &["10.123.0.4/24"], &["lb"])?;
                endpoint(tx, "front", "lb2", &["10.123.0.5/24"], &["LB"])?;
                Ok(())
            })
            .unwrap();
    }

    /// A 64-hex id derived from a name, so tests can predict short ids.
    pub(crate) fn id_of(name: &str) -> String {
        let mut hex: String = name.bytes().map(|b| format!("{b:02x}")).collect();
        hex.extend(std::iter::repeat_n('0', 64 - hex.len()));
        hex
    }

    fn network(
        tx: &rusqlite::Transaction<'_>,
        name: &str,
        subnets: &[(&str, &str)],
        dns: bool,
    ) -> Result<(), rusqlite::Error> {
        let subnets: Vec<serde_json::Value> = subnets
            .iter()
            .map(|(s, g)| serde_json::json!({"subnet": s, "gateway": g, "ip_range": null, "aux_addresses": {}}))
            .collect();
        let state: NetworkState = serde_json::from_value(serde_json::json!({
            "id": id_of(name), "name": name, "driver": "bridge", "subnets": subnets,
            "ipv6": false, "internal": false, "icc": true, "dns": dns, "mtu": 1500,
            "bridge": format!("br-{}", &id_of(name)[..12]), "labels": {}, "options": {},
            "created": "2026-01-01T00:00:00Z",
        }))
        .unwrap();
        tx.execute(
            "INSERT INTO networks(id, name, driver, config, created) VALUES (?1, ?2, 'bridge', ?3, '')",
            params![state.id, name, serde_json::to_string(&state).unwrap()],
        )?;
        Ok(())
    }

    fn endpoint(
        tx: &rusqlite::Transaction<'_>,
        net: &str,
        container: &str,
        addrs: &[&str],
        aliases: &[&str],
    ) -> Result<(), rusqlite::Error> {
        let cid = id_of(container);
        tx.execute(
            "INSERT INTO containers(id, name, image_id, config, state, created) VALUES (?1, ?2, 'img', '{}', '{}', '')",
            params![cid, container],
        )?;
        let ep = EndpointState {
            id: id_of(&format!("ep{container}")),
            network_id: id_of(net),
            container_id: cid,
            ifname: "eth0".parse().unwrap(),
            host_ifname: "vbtest".parse().unwrap(),
            mac: "02:42:ac:11:00:02".into(),
            addresses: addrs.iter().map(|a| a.parse().unwrap()).collect(),
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
            ports: vec![],
        };
        tx.execute(
            "INSERT INTO endpoints(id, network_id, container_id, config) VALUES (?1, ?2, ?3, ?4)",
            params![
                ep.id,
                ep.network_id,
                ep.container_id,
                serde_json::to_string(&ep).unwrap()
            ],
        )?;
        Ok(())
    }

    fn ips(v: &[&str]) -> Option<Vec<IpAddr>> {
        Some(v.iter().map(|a| a.parse().unwrap()).collect())
    }

    #[test]
    fn only_dns_networks_are_listed() {
        let dir = tempfile::tempdir().unwrap();
        fixture(dir.path());
        let r = StoreRecords::open(dir.path()).unwrap();
        let nets = r.dns_networks().unwrap();
        let names: Vec<&str> = nets.iter().map(|n| n.name.as_str()).collect();
        let mut expected = [("back", id_of("back")), ("front", id_of("front"))];
        expected.sort_by(|a, b| a.1.cmp(&b.1));
        assert_eq!(names, expected.iter().map(|e| e.0).collect::<Vec<_>>());
        let front = nets.iter().find(|n| n.name == "front").unwrap();
        assert_eq!(
            front.gateways,
            vec![
                "10.123.0.1".parse::<IpAddr>().unwrap(),
                "fd12::1".parse().unwrap()
            ]
        );
    }

    #[test]
    fn names_short_ids_and_aliases_resolve_per_network() {
        let dir = tempfile::tempdir().unwrap();
        fixture(dir.path());
        let r = StoreRecords::open(dir.path()).unwrap();
        let front = id_of("front");
        assert_eq!(
            r.addresses(&front, "web").unwrap(),
            ips(&["10.123.0.2", "fd12::2"])
        );
        assert_eq!(
            r.addresses(&front, "WeB").unwrap(),
            ips(&["10.123.0.2", "fd12::2"])
        );
        assert_eq!(
            r.addresses(&front, "WWW").unwrap(),
            ips(&["10.123.0.2", "fd12::2"])
        );
        assert_eq!(
            r.addresses(&front, &id_of("db")[..12]).unwrap(),
            ips(&["10.123.0.3"])
        );
        let mut lb = r.addresses(&front, "lb").unwrap().unwrap();
        lb.sort();
        assert_eq!(Some(lb), ips(&["10.123.0.4", "10.123.0.5"]));
        // Containers of another network are not berth's names on this one.
        assert_eq!(r.addresses(&front, "other").unwrap(), None);
        assert_eq!(
            r.addresses(&id_of("back"), "other").unwrap(),
            ips(&["10.124.0.2"])
        );
        assert_eq!(r.addresses(&front, "nothere").unwrap(), None);
        // A prefix of the short id is not a name.
        assert_eq!(r.addresses(&front, &id_of("db")[..11]).unwrap(), None);
    }

    #[test]
    fn addresses_map_back_to_container_names() {
        let dir = tempfile::tempdir().unwrap();
        fixture(dir.path());
        let r = StoreRecords::open(dir.path()).unwrap();
        let front = id_of("front");
        let at = |ip: &str| r.container_at(&front, ip.parse().unwrap()).unwrap();
        assert_eq!(at("10.123.0.2").as_deref(), Some("web"));
        assert_eq!(at("fd12::2").as_deref(), Some("web"));
        assert_eq!(at("10.123.0.3").as_deref(), Some("db"));
        // 10.123.0.20 must not match 10.123.0.2's row by prefix.
        assert_eq!(at("10.123.0.20"), None);
        assert_eq!(at("10.124.0.2"), None);
    }

    #[test]
    fn changes_are_seen_by_the_next_query() {
        let dir = tempfile::tempdir().unwrap();
        fixture(dir.path());
        let r = StoreRecords::open(dir.path()).unwrap();
        let front = id_of("front");
        assert!(r.addresses(&front, "db").unwrap().is_some());
        let mut store = Store::open(dir.path()).unwrap();
        store
            .write(|tx| tx.execute("DELETE FROM containers WHERE name = 'db'", []))
            .unwrap();
        assert_eq!(r.addresses(&front, "db").unwrap(), None);
    }

    #[test]
    fn missing_database_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let e = StoreRecords::open(dir.path()).unwrap_err().to_string();
        assert!(e.contains("berth.db") && e.contains("--root"), "{e}");
    }
}
