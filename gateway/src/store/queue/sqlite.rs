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
use super::writer::Writer;
use crate::store::StoreError;
use rusqlite::Connection;
use rusqlite::types::Null;
use sqlx::sqlite::SqliteRow;
use std::path::Path;
use std::time::Duration;

/// Opens the writer connection on `path` and starts its thread.
pub(crate) fn start(path: &Path) -> Result<Writer, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.set_prepared_statement_cache_capacity(256);
    Writer::spawn(SqliteWriter {
        conn,
        synchronous: None,
    })
}

struct SqliteWriter {
    conn: Connection,
    /// The `synchronous` level set on the connection (2 FULL, 1 NORMAL).
    synchronous: Option<u8>,
}

impl SqliteWriter {
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

    async fn begin(&mut self, durable: bool) -> Result<(), StoreError> {
        // Only accepted events must be on disk before we answer: FULL
        // (fsync at commit) for them, NORMAL for the rest (still safe
        // against a killed process with WAL). Set outside a transaction,
        // only when it changes.
        let level = if durable { 2 } else { 1 };
        if self.synchronous != Some(level) {
            self.conn.pragma_update(None, "synchronous", level)?;
            self.synchronous = Some(level);
        }
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        Ok(())
    }

    async fn commit(&mut self) -> Result<(), StoreError> {
        self.conn.execute_batch("COMMIT")?;
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
