//! Network and endpoint records in the store (`networks`, `endpoints` tables, JSON columns of
//! [`NetworkState`] / [`EndpointState`]). Writers take the caller's transaction so that IPAM,
//! endpoint rows and their removal commit together (DESIGN.md "IPAM").

use berth_store::rusqlite::{self, params, Connection, OptionalExtension, Transaction};

use crate::model::{EndpointState, NetworkState};

/// Errors of network records.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// A query failed.
    #[error("state database: {0}")]
    Sql(#[from] rusqlite::Error),
    /// A stored document is not valid JSON of the expected shape.
    #[error("state database: bad network record: {0}")]
    Json(#[from] serde_json::Error),
    /// No network has that name, id or id prefix.
    #[error("network {0} not found (see `berth network ls`)")]
    NoSuchNetwork(String),
    /// An id prefix matches several networks.
    #[error("network id prefix {0} is ambiguous: give more characters or the name")]
    Ambiguous(String),
    /// The name is taken.
    #[error("network with name {0} already exists: choose another name or remove it (berth network rm {0})")]
    NameInUse(String),
}

fn row_to_network(row: &rusqlite::Row<'_>) -> rusqlite::Result<String> {
    row.get(0)
}

fn parse_network(json: &str) -> Result<NetworkState, RecordError> {
    Ok(serde_json::from_str(json)?)
}

/// Every network, by name.
pub fn list_networks(conn: &Connection) -> Result<Vec<NetworkState>, RecordError> {
    let mut stmt = conn.prepare("SELECT config FROM networks ORDER BY name")?;
    let rows: Vec<String> = stmt
        .query_map([], row_to_network)?
        .collect::<Result<_, _>>()?;
    rows.iter().map(|j| parse_network(j)).collect()
}

/// The network with this exact name or id, or unique id prefix (Docker's lookup order).
///
/// Errors: [`RecordError::NoSuchNetwork`], [`RecordError::Ambiguous`].
pub fn lookup_network(conn: &Connection, key: &str) -> Result<NetworkState, RecordError> {
    let exact: Option<String> = conn
        .query_row(
            "SELECT config FROM networks WHERE name = ?1 OR id = ?1",
            [key],
            row_to_network,
        )
        .optional()?;
    if let Some(j) = exact {
        return parse_network(&j);
    }
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(RecordError::NoSuchNetwork(key.to_string()));
    }
    let mut stmt =
        conn.prepare("SELECT config FROM networks WHERE substr(id, 1, ?2) = ?1 LIMIT 2")?;
    let found: Vec<String> = stmt
        .query_map(params![key.to_ascii_lowercase(), key.len()], row_to_network)?
        .collect::<Result<_, _>>()?;
    match found.as_slice() {
        [one] => parse_network(one),
        [] => Err(RecordError::NoSuchNetwork(key.to_string())),
        _ => Err(RecordError::Ambiguous(key.to_string())),
    }
}

/// Inserts a network. Errors with [`RecordError::NameInUse`] when the name is taken.
pub fn insert_network(tx: &Transaction<'_>, n: &NetworkState) -> Result<(), RecordError> {
    let taken: Option<String> = tx
        .query_row(
            "SELECT id FROM networks WHERE name = ?1",
            [n.name.as_str()],
            |r| r.get(0),
        )
        .optional()?;
    if taken.is_some() {
        return Err(RecordError::NameInUse(n.name.to_string()));
    }
    tx.execute(
        "INSERT INTO networks (id, name, driver, config, created) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            n.id,
            n.name.as_str(),
            n.driver().to_string(),
            serde_json::to_string(n)?,
            n.created
        ],
    )?;
    Ok(())
}

/// Deletes a network row and its (endpoint-less) IPAM rows.
pub fn delete_network(tx: &Transaction<'_>, id: &str) -> Result<(), RecordError> {
    tx.execute("DELETE FROM ipam_allocations WHERE network_id = ?1", [id])?;
    tx.execute("DELETE FROM networks WHERE id = ?1", [id])?;
    Ok(())
}

fn parse_endpoints(
    stmt: &mut rusqlite::Statement<'_>,
    arg: &str,
) -> Result<Vec<EndpointState>, RecordError> {
    let rows: Vec<String> = stmt
        .query_map([arg], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    rows.iter().map(|j| Ok(serde_json::from_str(j)?)).collect()
}

/// The endpoints on network `network_id`.
pub fn endpoints_of_network(
    conn: &Connection,
    network_id: &str,
) -> Result<Vec<EndpointState>, RecordError> {
    let mut stmt =
        conn.prepare("SELECT config FROM endpoints WHERE network_id = ?1 ORDER BY rowid")?;
    parse_endpoints(&mut stmt, network_id)
}

/// The endpoints of container `container_id`, in the order they were attached.
pub fn endpoints_of_container(
    conn: &Connection,
    container_id: &str,
) -> Result<Vec<EndpointState>, RecordError> {
    let mut stmt =
        conn.prepare("SELECT config FROM endpoints WHERE container_id = ?1 ORDER BY rowid")?;
    parse_endpoints(&mut stmt, container_id)
}

/// Every endpoint (for firewall reconciliation).
pub fn all_endpoints(conn: &Connection) -> Result<Vec<EndpointState>, RecordError> {
    let mut stmt = conn.prepare("SELECT config FROM endpoints ORDER BY rowid")?;
    let rows: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    rows.iter().map(|j| Ok(serde_json::from_str(j)?)).collect()
}

/// Inserts an endpoint row (the caller allocates its addresses in the same transaction).
pub fn insert_endpoint(tx: &Transaction<'_>, e: &EndpointState) -> Result<(), RecordError> {
    tx.execute(
        "INSERT INTO endpoints (id, network_id, container_id, config) VALUES (?1, ?2, ?3, ?4)",
        params![
            e.id,
            e.network_id,
            e.container_id,
            serde_json::to_string(e)?
        ],
    )?;
    Ok(())
}

/// Rewrites an endpoint's document (e.g. after host ports were chosen).
pub fn update_endpoint(tx: &Transaction<'_>, e: &EndpointState) -> Result<(), RecordError> {
    tx.execute(
        "UPDATE endpoints SET config = ?2 WHERE id = ?1",
        params![e.id, serde_json::to_string(e)?],
    )?;
    Ok(())
}

/// Deletes an endpoint and its IPAM rows.
pub fn delete_endpoint(tx: &Transaction<'_>, id: &str) -> Result<(), RecordError> {
    tx.execute("DELETE FROM ipam_allocations WHERE endpoint_id = ?1", [id])?;
    tx.execute("DELETE FROM endpoints WHERE id = ?1", [id])?;
    Ok(())
}

/// Names of the containers attached to network `network_id` (for `network rm` refusals and
/// `network inspect`), with their endpoint.
pub fn attached_containers(
    conn: &Connection,
    network_id: &str,
) -> Result<Vec<(String, String)>, RecordError> {
    let mut stmt = conn.prepare(
        "SELECT c.name, e.config FROM endpoints e JOIN containers c ON c.id = e.container_id \
         WHERE e.network_id = ?1 ORDER BY c.name",
    )?;
    let rows = stmt
        .query_map([network_id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}
