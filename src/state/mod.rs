//! The state: one SQLite file (WAL, `probe.state`), opened once and shared by every pipeline
//! that keeps something, one module per table family — the rounds and [`probes`], each
//! route × seed pair's standing ([`pairs`]), and the [`reports`] the report mailboxes brought —
//! with every table made and migrated in one place ([`schema`]).
//!
//! Every probe row names the instance that sent it (`probe.instance`); a probe store opened for
//! one instance reads and changes only that instance's rows. Pruning by age removes anyone's.

pub mod pairs;
pub mod probes;
pub mod reports;
mod schema;

use std::path::Path;
use std::sync::Mutex;

use rusqlite::Connection;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state database {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("state database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("state database: stored JSON is unreadable: {0}")]
    Json(#[from] serde_json::Error),
}

impl StateError {
    pub fn reason(&self) -> &'static str {
        "state"
    }
}

/// The state file: one connection, opened once, that every table family uses.
pub struct Db {
    conn: Mutex<Connection>,
}

impl Db {
    /// Opens (or creates) the state at `path`: WAL, every table made or brought up to date;
    /// probe rows older than instances become `instance`'s.
    pub fn open(path: &Path, instance: &str) -> Result<Db, StateError> {
        let open_err = |source| StateError::Open {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            let _ = std::fs::create_dir_all(dir);
        }
        let conn = Connection::open(path).map_err(open_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(open_err)?;
        // Every statement of the probe path stays prepared (rusqlite keeps 16 by default).
        conn.set_prepared_statement_cache_capacity(64);
        schema::create(&conn, instance).map_err(open_err)?;
        Ok(Db {
            conn: Mutex::new(conn),
        })
    }

    pub(crate) fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent; keep going.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }
}
