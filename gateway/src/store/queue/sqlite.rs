//! The SQLite writer: one `rusqlite` connection on its own thread, driving
//! the shared writer loop.
//!
//! Why not sqlx here: sqlx runs every SQLite statement on a worker thread
//! and hands each one over through channels, two thread wake-ups per
//! statement. Measured on the 2-core gVisor machine: 67 µs of CPU per
//! INSERT through sqlx against 1.5 µs through rusqlite
//! (`cargo bench -p hookgate-tests --bench sqlite_statement`). Here a whole
//! batch crosses one channel once. Reads and the management API stay on
//! sqlx; SQLite serialises writers across connections.

use super::executor::{Dialect, Executor, FromRow, Param, Row};
use super::writer::{DeferredSync, Writer};
use crate::store::StoreError;
use rusqlite::Connection;
use rusqlite::types::Null;
use sqlx::sqlite::SqliteRow;
use std::path::Path;
use std::time::{Duration, Instant};

/// Opens the writer connection on `path` and starts its thread.
///
/// Commits do not wait for the disk (`synchronous = NORMAL`: in WAL mode a
/// killed process loses nothing). Batches that accept events must survive
/// a power loss too before they are answered: their answers wait on a
/// second thread that fsyncs the write-ahead log, which makes every commit
/// before it durable, while this thread goes on with the next batch.
pub(crate) fn start(path: &Path) -> Result<Writer, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.pragma_update(None, "synchronous", 1)?;
    // Checkpoints run on a thread of their own (`checkpoints`), not inside
    // a commit of this one: copying the log into the database and syncing
    // it takes milliseconds, a stall for every write queued behind it.
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    // A log that grew under load (checkpoints cannot finish while readers
    // hold old snapshots) is cut back to this when it next starts over,
    // instead of keeping its largest size on disk for good.
    conn.pragma_update(None, "journal_size_limit", JOURNAL_SIZE_LIMIT)?;
    conn.set_prepared_statement_cache_capacity(256);
    let wal = wal_path(path);
    let mut log: Option<std::fs::File> = None;
    let sync = DeferredSync::start(move || {
        // The log exists while any connection is open (this one is); open
        // it once and keep it.
        if log.is_none() {
            log = Some(
                std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&wal)?,
            );
        }
        let synced = log.as_ref().map_or(Ok(()), std::fs::File::sync_data);
        if synced.is_err() {
            log = None;
        }
        synced
    })?;
    let checkpoints = checkpoints(path)?;
    Writer::spawn(SqliteWriter {
        conn,
        sync,
        wal: wal_path(path),
        finished: Instant::now(),
        _checkpoints: checkpoints,
    })
}

/// Log size past which it is copied into the database (SQLite's own
/// default: 1000 pages of 4 KiB).
const CHECKPOINT_AFTER: u64 = 4 << 20;
/// What the log file is cut back to when it starts over.
const JOURNAL_SIZE_LIMIT: i64 = 16 << 20;
/// Log size past which the writer finishes a checkpoint itself, right
/// after a commit. The checkpoint thread copies most of the log, but a log
/// starts over only when it was copied up to its end, and a writer that
/// keeps appending is always ahead of another thread's checkpoint: under
/// steady load the log would grow for good. Finishing it on the writer's
/// own thread costs a short stall (what the other thread left: frames of
/// the last fraction of a second) once per this much log.
const FINISH_AFTER: u64 = 64 << 20;

/// Starts the thread that copies the write-ahead log into the database when
/// it has grown past [`CHECKPOINT_AFTER`], without blocking the writer
/// (`PASSIVE`). It stops when the returned sender is dropped.
fn checkpoints(path: &Path) -> Result<std::sync::mpsc::Sender<()>, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    let wal = wal_path(path);
    let (alive, stopped) = std::sync::mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("hookgate-checkpoint".into())
        .spawn(move || {
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                stopped.recv_timeout(Duration::from_millis(200))
            {
                let grown = std::fs::metadata(&wal).is_ok_and(|m| m.len() > CHECKPOINT_AFTER);
                if grown
                    && let Err(error) =
                        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                {
                    tracing::warn!(%error, "could not checkpoint the database log");
                }
            }
        })
        .map_err(StoreError::WriterStart)?;
    Ok(alive)
}

/// SQLite's write-ahead log beside the database file.
fn wal_path(db: &Path) -> std::path::PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    name.into()
}

struct SqliteWriter {
    conn: Connection,
    sync: DeferredSync,
    /// The write-ahead log's path.
    wal: std::path::PathBuf,
    /// When the writer last finished a checkpoint itself.
    finished: Instant,
    /// Keeps the checkpoint thread running.
    _checkpoints: std::sync::mpsc::Sender<()>,
}

impl SqliteWriter {
    /// Past [`FINISH_AFTER`] of log (at most once a second), checkpoints
    /// up to the end of the log, so its next write starts it over (and
    /// `journal_size_limit` cuts the file back).
    fn finish_checkpoint_if_large(&mut self) {
        if self.finished.elapsed() < Duration::from_secs(1)
            || !std::fs::metadata(&self.wal).is_ok_and(|m| m.len() > FINISH_AFTER)
        {
            return;
        }
        self.finished = Instant::now();
        if let Err(error) = self
            .conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
        {
            tracing::warn!(%error, "could not checkpoint the database log");
        }
    }

    fn bind(
        statement: &mut rusqlite::CachedStatement<'_>,
        params: &[Param<'_>],
    ) -> Result<(), StoreError> {
        for (i, param) in params.iter().enumerate() {
            let at = i + 1;
            match *param {
                Param::Text(Some(v)) => statement.raw_bind_parameter(at, v)?,
                Param::Int(Some(v)) => statement.raw_bind_parameter(at, v)?,
                Param::Bytes(Some(v)) => statement.raw_bind_parameter(at, v)?,
                Param::Bool(v) => statement.raw_bind_parameter(at, v)?,
                Param::Text(None) | Param::Int(None) | Param::Bytes(None) => {
                    statement.raw_bind_parameter(at, Null)?
                }
            }
        }
        Ok(())
    }
}

impl Executor for SqliteWriter {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    async fn begin(&mut self, _durable: bool) -> Result<(), StoreError> {
        // Durable batches are synced by `deferred_sync`, after the commit.
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        Ok(())
    }

    fn deferred_sync(&self) -> Option<&DeferredSync> {
        Some(&self.sync)
    }

    async fn commit(&mut self) -> Result<(), StoreError> {
        self.conn.execute_batch("COMMIT")?;
        self.finish_checkpoint_if_large();
        Ok(())
    }

    async fn rollback(&mut self) {
        if !self.conn.is_autocommit()
            && let Err(error) = self.conn.execute_batch("ROLLBACK")
        {
            tracing::warn!(%error, "could not roll back a write batch");
        }
    }

    async fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64, StoreError> {
        let mut statement = self.conn.prepare_cached(sql)?;
        Self::bind(&mut statement, params)?;
        Ok(statement.raw_execute()? as u64)
    }

    async fn fetch<R: FromRow>(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
    ) -> Result<Vec<R>, StoreError> {
        let mut statement = self.conn.prepare_cached(sql)?;
        Self::bind(&mut statement, params)?;
        let mut rows = statement.raw_query();
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(R::from_row(row)?);
        }
        Ok(out)
    }
}

impl Row for rusqlite::Row<'_> {
    fn text(&self, i: usize) -> Result<String, StoreError> {
        Ok(self.get(i)?)
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        Ok(self.get(i)?)
    }
    fn int(&self, i: usize) -> Result<i64, StoreError> {
        Ok(self.get(i)?)
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        Ok(self.get(i)?)
    }
    fn opt_bytes(&self, i: usize) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.get(i)?)
    }
    fn boolean(&self, i: usize) -> Result<bool, StoreError> {
        Ok(self.get(i)?)
    }
}

crate::store::queue::executor::sqlx_row!(SqliteRow);
