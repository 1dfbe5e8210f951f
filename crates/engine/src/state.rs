//! A container's runtime state, persisted as JSON in `containers.state`, and the record
//! queries over the `containers` table.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};

use berth_store::{rusqlite, Store};

use crate::config::{ContainerConfig, ContainerName};
use crate::EngineError;

/// Docker's container statuses (`State.Status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Created, never started (or start failed before the process ran).
    Created,
    /// The process runs.
    Running,
    /// Exited; waiting out the restart back-off.
    Restarting,
    /// Exited and will not restart on its own.
    Exited,
    /// Being removed.
    Removing,
}

impl Status {
    /// Docker's lowercase word.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Running => "running",
            Self::Restarting => "restarting",
            Self::Exited => "exited",
            Self::Removing => "removing",
        }
    }
}

/// The mutable part of a container record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerState {
    /// Where the container is in its life.
    pub status: Status,
    /// Host pid of the container's init process while running, else 0.
    pub pid: i32,
    /// Pid of the monitor process while one runs, else 0.
    pub monitor_pid: i32,
    /// Start time of the monitor (field 22 of /proc/PID/stat, clock ticks since boot), so a
    /// recycled pid is never mistaken for the monitor.
    pub monitor_start: u64,
    /// Last exit code.
    pub exit_code: i32,
    /// Last start time.
    pub started_at: Option<DateTime<Utc>>,
    /// Last exit time.
    pub finished_at: Option<DateTime<Utc>>,
    /// How many times the restart policy restarted it.
    pub restart_count: u32,
    /// Set by `stop`, `kill` and `rm -f`: the restart policy must not restart it.
    pub user_stopped: bool,
    /// Why the last start failed or the container died abnormally.
    pub error: String,
    /// The network sandbox path (`<runroot>/netns/<id>`) while one exists.
    pub sandbox_key: String,
}

impl ContainerState {
    /// The state of a freshly created container.
    pub fn created() -> Self {
        Self {
            status: Status::Created,
            pid: 0,
            monitor_pid: 0,
            monitor_start: 0,
            exit_code: 0,
            started_at: None,
            finished_at: None,
            restart_count: 0,
            user_stopped: false,
            error: String::new(),
            sandbox_key: String::new(),
        }
    }
}

/// One row of `containers`.
#[derive(Debug, Clone)]
pub struct Container {
    /// 64 lowercase hex characters.
    pub id: String,
    /// Unique name.
    pub name: ContainerName,
    /// Image id (`sha256:...`).
    pub image_id: String,
    /// Creation options.
    pub config: ContainerConfig,
    /// Runtime state.
    pub state: ContainerState,
    /// Creation time.
    pub created: DateTime<Utc>,
}

impl Container {
    /// The first 12 characters of the id, as `ps` shows it.
    pub fn short_id(&self) -> &str {
        &self.id[..12]
    }
}

pub(crate) fn row_to_container(row: &rusqlite::Row<'_>) -> rusqlite::Result<Container> {
    let json_err = |i, e: serde_json::Error| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    };
    let name: String = row.get(1)?;
    let config: String = row.get(3)?;
    let state: String = row.get(4)?;
    let created: String = row.get(5)?;
    Ok(Container {
        id: row.get(0)?,
        name: name.parse().map_err(|e: crate::config::ConfigError| {
            rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Text, e.into())
        })?,
        image_id: row.get(2)?,
        config: serde_json::from_str(&config).map_err(|e| json_err(3, e))?,
        state: serde_json::from_str(&state).map_err(|e| json_err(4, e))?,
        created: DateTime::parse_from_rfc3339(&created)
            .map(|d| d.with_timezone(&Utc))
            .map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(5, rusqlite::types::Type::Text, e.into())
            })?,
    })
}

pub(crate) const COLUMNS: &str = "id, name, image_id, config, state, created";

/// Every container, oldest first.
pub fn list(conn: &rusqlite::Connection) -> Result<Vec<Container>, EngineError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM containers ORDER BY created"
    ))?;
    let rows = stmt.query_map([], row_to_container)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The container with exactly this id, if any.
pub fn by_id(conn: &rusqlite::Connection, id: &str) -> Result<Option<Container>, EngineError> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM containers WHERE id = ?1"),
            [id],
            row_to_container,
        )
        .optional()?)
}

/// Finds a container by name, full id or unique id prefix (Docker's lookup order).
///
/// Errors: [`EngineError::NoSuchContainer`], [`EngineError::AmbiguousContainer`].
pub fn lookup(conn: &rusqlite::Connection, key: &str) -> Result<Container, EngineError> {
    let key = key.strip_prefix('/').unwrap_or(key);
    if let Some(c) = conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM containers WHERE name = ?1 OR id = ?1"),
            [key],
            row_to_container,
        )
        .optional()?
    {
        return Ok(c);
    }
    if key.is_empty() || !key.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(EngineError::NoSuchContainer(key.to_string()));
    }
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM containers WHERE substr(id, 1, ?2) = ?1 LIMIT 2"
    ))?;
    let found: Vec<Container> = stmt
        .query_map(
            params![key.to_ascii_lowercase(), key.len()],
            row_to_container,
        )?
        .collect::<Result<_, _>>()?;
    match found.len() {
        1 => Ok(found.into_iter().next().expect("one element")),
        0 => Err(EngineError::NoSuchContainer(key.to_string())),
        _ => Err(EngineError::AmbiguousContainer(key.to_string())),
    }
}

/// Inserts a new container. Errors with [`EngineError::NameInUse`] when the name is taken.
pub fn insert(store: &mut Store, c: &Container) -> Result<(), EngineError> {
    store.write(|tx| -> Result<(), EngineError> {
        let taken: Option<String> = tx
            .query_row(
                "SELECT id FROM containers WHERE name = ?1",
                [c.name.as_str()],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(other) = taken {
            return Err(EngineError::NameInUse {
                name: c.name.to_string(),
                id: other,
            });
        }
        tx.execute(
            &format!("INSERT INTO containers ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
            params![
                c.id,
                c.name.as_str(),
                c.image_id,
                serde_json::to_string(&c.config)?,
                serde_json::to_string(&c.state)?,
                c.created.to_rfc3339(),
            ],
        )?;
        Ok(())
    })
}

/// Read-modify-write of one container's state in one transaction. Returns the new state, or
/// `None` if the container no longer exists.
pub fn update_state(
    store: &mut Store,
    id: &str,
    f: impl FnOnce(&mut ContainerState),
) -> Result<Option<ContainerState>, EngineError> {
    store.write(|tx| -> Result<Option<ContainerState>, EngineError> {
        let cur: Option<String> = tx
            .query_row("SELECT state FROM containers WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?;
        let Some(cur) = cur else { return Ok(None) };
        let mut state: ContainerState = serde_json::from_str(&cur)?;
        f(&mut state);
        tx.execute(
            "UPDATE containers SET state = ?2 WHERE id = ?1",
            params![id, serde_json::to_string(&state)?],
        )?;
        Ok(Some(state))
    })
}

/// Read-modify-write of one container's creation options (`network connect`/`disconnect`
/// record the networks to attach at the next start).
pub fn update_config(
    store: &mut Store,
    id: &str,
    f: impl FnOnce(&mut ContainerConfig),
) -> Result<(), EngineError> {
    store.write(|tx| -> Result<(), EngineError> {
        let cur: Option<String> = tx
            .query_row("SELECT config FROM containers WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?;
        let Some(cur) = cur else { return Ok(()) };
        let mut config: ContainerConfig = serde_json::from_str(&cur)?;
        f(&mut config);
        tx.execute(
            "UPDATE containers SET config = ?2 WHERE id = ?1",
            params![id, serde_json::to_string(&config)?],
        )?;
        Ok(())
    })
}

/// Deletes the row (endpoints and IPAM allocations go with it by foreign key cascade).
pub fn delete(store: &mut Store, id: &str) -> Result<(), EngineError> {
    store.write(|tx| -> Result<(), EngineError> {
        tx.execute("DELETE FROM containers WHERE id = ?1", [id])?;
        Ok(())
    })
}

/// The image ids (`sha256:<hex>`) of every container, distinct: the images `image prune`
/// must keep.
///
/// Errors: [`EngineError`] for database failures.
pub fn image_ids_in_use(conn: &rusqlite::Connection) -> Result<Vec<String>, EngineError> {
    let mut stmt = conn.prepare("SELECT DISTINCT image_id FROM containers")?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Ids of the containers using an image (for `rmi`).
pub fn using_image(
    conn: &rusqlite::Connection,
    image_id: &str,
) -> Result<Vec<String>, EngineError> {
    let mut stmt = conn.prepare("SELECT name FROM containers WHERE image_id = ?1")?;
    let rows = stmt.query_map([image_id], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}
