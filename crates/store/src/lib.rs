//! Local state: one SQLite database (`<root>/berth.db`, WAL mode) shared by every berth process.
//!
//! Every read-modify-write is one transaction ([`Store::write`]), so many CLI processes and
//! monitors can run at once. The schema holds images, containers and, from the start, the
//! networks, endpoints and IPAM allocations the network drivers need (see shared/DESIGN.md,
//! "Storage"). Domain crates own their queries; this crate owns the schema and the connection.

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use rusqlite;
use rusqlite::{Connection, Transaction, TransactionBehavior};

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file could not be opened or migrated.
    #[error("cannot open the state database {path}: {source}")]
    Open {
        /// Path of `berth.db`.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// A query failed.
    #[error("state database: {0}")]
    Sql(#[from] rusqlite::Error),
    /// The database was written by a newer berth (its schema is newer than this binary's).
    #[error("the state database {path} has schema version {found}, newer than this berth's {supported}: use the berth that wrote it (or a newer one); this one would misread it")]
    NewerSchema {
        /// Path of `berth.db`.
        path: PathBuf,
        /// `PRAGMA user_version` of the file.
        found: i64,
        /// [`SCHEMA_VERSION`] of this binary.
        supported: i64,
    },
    /// The root directory could not be created.
    #[error("cannot create the state directory {path}: {source}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// WAL pages after which a commit checkpoints (SQLite's default is 1000).
const WAL_AUTOCHECKPOINT_PAGES: i64 = 64;

/// Schema version written to `PRAGMA user_version`.
pub const SCHEMA_VERSION: i64 = 3;

/// Upgrades from schema 1: layers remember the blob (compressed tar) they came from, so
/// `save` can write it back and `pull` can skip layers it already has; pulled images record
/// their repository digests (`repo@sha256:<manifest digest>`).
const MIGRATE_1_TO_2: &str = r#"
ALTER TABLE layers ADD COLUMN blob TEXT;
CREATE TABLE IF NOT EXISTS repo_digests (
    name     TEXT PRIMARY KEY,
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE
);
"#;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS images (
    id       TEXT PRIMARY KEY,          -- "sha256:<hex>" digest of the image config
    config   TEXT NOT NULL,             -- OCI image config JSON
    layers   TEXT NOT NULL,             -- JSON array of diff_ids, base layer first
    size     INTEGER NOT NULL,          -- unpacked size in bytes
    created  TEXT NOT NULL              -- RFC 3339
);
CREATE TABLE IF NOT EXISTS image_tags (
    name     TEXT PRIMARY KEY,          -- normalised "repo:tag"
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS layers (
    diff_id  TEXT PRIMARY KEY,          -- "sha256:<hex>" of the uncompressed tar
    size     INTEGER NOT NULL,
    blob     TEXT                       -- "sha256:<hex>" of the stored blob (as pulled/loaded)
);
CREATE TABLE IF NOT EXISTS repo_digests (
    name     TEXT PRIMARY KEY,          -- normalised "repo@sha256:<manifest digest>"
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS containers (
    id       TEXT PRIMARY KEY,          -- 64 hex characters
    name     TEXT NOT NULL UNIQUE,
    image_id TEXT NOT NULL,
    config   TEXT NOT NULL,             -- JSON, engine's ContainerConfig
    state    TEXT NOT NULL,             -- JSON, engine's ContainerState
    created  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS networks (
    id       TEXT PRIMARY KEY,
    name     TEXT NOT NULL UNIQUE,
    driver   TEXT NOT NULL,
    config   TEXT NOT NULL,             -- JSON, net's NetworkState
    created  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS endpoints (
    id           TEXT PRIMARY KEY,
    network_id   TEXT NOT NULL REFERENCES networks(id),
    container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
    config       TEXT NOT NULL          -- JSON, net's EndpointState
);
CREATE TABLE IF NOT EXISTS meta (
    key      TEXT PRIMARY KEY,          -- e.g. "runroot"
    value    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ipam_allocations (
    network_id  TEXT NOT NULL REFERENCES networks(id),
    address     TEXT NOT NULL,
    endpoint_id TEXT REFERENCES endpoints(id) ON DELETE CASCADE,
    PRIMARY KEY (network_id, address)
);
"#;

/// Opens `path` with berth's connection settings (WAL, busy timeout, foreign keys).
fn connect(path: &Path) -> Result<Connection, rusqlite::Error> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Every CLI process is usually the last connection to close; by default SQLite
    // then checkpoints and deletes the WAL (fsyncs), and the next process recreates
    // it. Leave the WAL in place, but keep it small: a process that opens the database
    // alone rebuilds the WAL index by reading the whole WAL (sqlite.org/walformat.html,
    // "Recovery"), so a long WAL slows every command. 64 pages = 256 KiB.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        true,
    )?;
    conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)?;
    conn.pragma_update(None, "journal_size_limit", WAL_AUTOCHECKPOINT_PAGES * 4096)?;
    Ok(conn)
}

/// Brings a database of schema `version` (0: new) up to [`SCHEMA_VERSION`] in one
/// transaction. Every step after 1 → 2 only creates tables (`IF NOT EXISTS`).
fn migrate(conn: &Connection, version: i64) -> Result<(), rusqlite::Error> {
    let tx = conn.unchecked_transaction()?;
    if version == 1 {
        tx.execute_batch(MIGRATE_1_TO_2)?;
    }
    tx.execute_batch(SCHEMA)?;
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()
}

/// A handle on `<root>/berth.db`. Cheap to open; one per process is enough.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    root: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the database under `root`, in WAL mode with a 10 s busy
    /// timeout so concurrent berth processes wait for each other instead of failing.
    ///
    /// Errors: [`StoreError::Dir`] if `root` cannot be created, [`StoreError::Open`] if the
    /// file cannot be opened or the schema applied, [`StoreError::NewerSchema`] if a newer
    /// berth wrote it (its `PRAGMA user_version` is above [`SCHEMA_VERSION`]).
    pub fn open(root: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(root).map_err(|source| StoreError::Dir {
            path: root.to_path_buf(),
            source,
        })?;
        let path = root.join("berth.db");
        let open_err = |source| StoreError::Open {
            path: path.clone(),
            source,
        };
        let conn = connect(&path).map_err(open_err)?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(open_err)?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                path,
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        if version < SCHEMA_VERSION {
            migrate(&conn, version).map_err(open_err)?;
        }
        Ok(Self {
            conn,
            root: root.to_path_buf(),
        })
    }

    /// The value stored under `key` in the `meta` table (installation-wide facts such as the
    /// runroot this root is used with), if any.
    pub fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        use rusqlite::OptionalExtension;
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    /// The state root this store lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The connection, for reads (each statement sees a consistent snapshot).
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Runs `f` inside one `BEGIN IMMEDIATE` transaction: it takes the write lock up front, so
    /// a read-modify-write can never interleave with another process's. Commits when `f`
    /// returns `Ok`, rolls back otherwise.
    pub fn write<T, E>(&mut self, f: impl FnOnce(&Transaction<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<rusqlite::Error>,
    {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_writers_serialise() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        Store::open(&root).unwrap();
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let root = root.clone();
                std::thread::spawn(move || {
                    let mut s = Store::open(&root).unwrap();
                    s.write(|tx| -> Result<(), rusqlite::Error> {
                        let n: i64 =
                            tx.query_row("SELECT COUNT(*) FROM layers", [], |r| r.get(0))?;
                        tx.execute(
                            "INSERT INTO layers(diff_id, size) VALUES (?1, ?2)",
                            rusqlite::params![format!("sha256:{i}"), n],
                        )?;
                        Ok(())
                    })
                    .unwrap();
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let s = Store::open(&root).unwrap();
        let mut sizes: Vec<i64> = s
            .conn()
            .prepare("SELECT size FROM layers ORDER BY size")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        sizes.dedup();
        // Each writer saw every earlier commit: sizes are 0..8 with no repeats.
        assert_eq!(sizes, (0..8).collect::<Vec<_>>());
    }

    #[test]
    fn schema_1_databases_gain_layer_blobs_and_repo_digests() {
        let dir = tempfile::tempdir().unwrap();
        {
            let conn = Connection::open(dir.path().join("berth.db")).unwrap();
            conn.execute_batch(
                "CREATE TABLE images (id TEXT PRIMARY KEY, config TEXT NOT NULL, \
                 layers TEXT NOT NULL, size INTEGER NOT NULL, created TEXT NOT NULL); \
                 CREATE TABLE layers (diff_id TEXT PRIMARY KEY, size INTEGER NOT NULL); \
                 INSERT INTO layers VALUES ('sha256:old', 7); PRAGMA user_version = 1;",
            )
            .unwrap();
        }
        let mut s = Store::open(dir.path()).unwrap();
        let (size, blob): (i64, Option<String>) = s
            .conn()
            .query_row(
                "SELECT size, blob FROM layers WHERE diff_id = 'sha256:old'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((size, blob), (7, None));
        s.write(|tx| -> Result<(), rusqlite::Error> {
            tx.execute(
                "INSERT INTO images VALUES ('sha256:i', '{}', '[]', 0, 'now')",
                [],
            )?;
            tx.execute(
                "INSERT INTO repo_digests VALUES ('r/x@sha256:m', 'sha256:i')",
                [],
            )?;
            Ok(())
        })
        .unwrap();
        let version: i64 = s
            .conn()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }

    #[test]
    fn a_newer_schema_is_refused_naming_both_versions() {
        let dir = tempfile::tempdir().unwrap();
        {
            let conn = Connection::open(dir.path().join("berth.db")).unwrap();
            conn.pragma_update(None, "user_version", SCHEMA_VERSION + 7)
                .unwrap();
        }
        let err = Store::open(dir.path()).unwrap_err();
        assert!(matches!(err, StoreError::NewerSchema { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains(&format!("schema version {}", SCHEMA_VERSION + 7))
                && text.contains(&format!("this berth's {SCHEMA_VERSION}")),
            "{text}"
        );
        // Refused untouched: the file still says the newer version.
        let conn = Connection::open(dir.path().join("berth.db")).unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION + 7);
    }

    #[test]
    fn rollback_on_error_keeps_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        let r: Result<(), rusqlite::Error> = s.write(|tx| {
            tx.execute(
                "INSERT INTO layers(diff_id, size) VALUES ('sha256:a', 1)",
                [],
            )?;
            Err(rusqlite::Error::QueryReturnedNoRows)
        });
        assert!(r.is_err());
        let n: i64 = s
            .conn()
            .query_row("SELECT COUNT(*) FROM layers", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0);
    }
}
