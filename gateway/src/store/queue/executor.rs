//! The small interface the hot path is written against, once for both
//! databases: begin and commit a transaction, run a statement with
//! parameters, read rows by column index. `sqlite.rs` (rusqlite, on the
//! writer thread) and `postgres.rs` (sqlx, one connection) implement it;
//! `ops.rs` holds every hot-path write on top of it.

use crate::store::StoreError;

/// Which SQL dialect a statement is for, where the two differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// One value bound to a statement parameter (`$1`, `$2`, … in order).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Param<'a> {
    Text(Option<&'a str>),
    Int(Option<i64>),
    Bytes(Option<&'a [u8]>),
    Bool(bool),
}

impl<'a> From<&'a str> for Param<'a> {
    fn from(v: &'a str) -> Self {
        Self::Text(Some(v))
    }
}

impl<'a> From<&'a String> for Param<'a> {
    fn from(v: &'a String) -> Self {
        Self::Text(Some(v))
    }
}

impl<'a> From<Option<&'a str>> for Param<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Self::Text(v)
    }
}

impl<'a> From<&'a Option<String>> for Param<'a> {
    fn from(v: &'a Option<String>) -> Self {
        Self::Text(v.as_deref())
    }
}

impl From<i64> for Param<'_> {
    fn from(v: i64) -> Self {
        Self::Int(Some(v))
    }
}

impl From<Option<i64>> for Param<'_> {
    fn from(v: Option<i64>) -> Self {
        Self::Int(v)
    }
}

impl<'a> From<&'a [u8]> for Param<'a> {
    fn from(v: &'a [u8]) -> Self {
        Self::Bytes(Some(v))
    }
}

impl<'a> From<Option<&'a [u8]>> for Param<'a> {
    fn from(v: Option<&'a [u8]>) -> Self {
        Self::Bytes(v)
    }
}

impl From<bool> for Param<'_> {
    fn from(v: bool) -> Self {
        Self::Bool(v)
    }
}

/// A result row, read by column index.
pub(crate) trait Row {
    fn text(&self, i: usize) -> Result<String, StoreError>;
    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError>;
    fn int(&self, i: usize) -> Result<i64, StoreError>;
    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError>;
    fn opt_bytes(&self, i: usize) -> Result<Option<Vec<u8>>, StoreError>;
    fn boolean(&self, i: usize) -> Result<bool, StoreError>;
}

/// A type read from one row; written once for every driver.
pub(crate) trait FromRow: Sized {
    fn from_row(row: &impl Row) -> Result<Self, StoreError>;
}

impl FromRow for String {
    fn from_row(row: &impl Row) -> Result<Self, StoreError> {
        row.text(0)
    }
}

impl FromRow for Option<i64> {
    fn from_row(row: &impl Row) -> Result<Self, StoreError> {
        row.opt_int(0)
    }
}

impl FromRow for i64 {
    fn from_row(row: &impl Row) -> Result<Self, StoreError> {
        row.int(0)
    }
}

impl FromRow for (String, String) {
    fn from_row(row: &impl Row) -> Result<Self, StoreError> {
        Ok((row.text(0)?, row.text(1)?))
    }
}

impl FromRow for (String, i64) {
    fn from_row(row: &impl Row) -> Result<Self, StoreError> {
        Ok((row.text(0)?, row.int(1)?))
    }
}

impl FromRow for (String, String, String, Option<String>, String) {
    fn from_row(row: &impl Row) -> Result<Self, StoreError> {
        Ok((
            row.text(0)?,
            row.text(1)?,
            row.text(2)?,
            row.opt_text(3)?,
            row.text(4)?,
        ))
    }
}

/// A database connection the hot path writes through: one transaction at a
/// time, statements with positional parameters.
pub(crate) trait Executor {
    /// The dialect, for the few statements that differ.
    fn dialect(&self) -> Dialect;

    /// Starts a transaction. `durable`: its commit must be on disk before
    /// its answers go out (batches that accept events): either
    /// [`Executor::commit`] waits for the disk, or the executor has a
    /// [`Executor::deferred_sync`] that does it. Other batches may wait for
    /// the next sync.
    async fn begin(&mut self, durable: bool) -> Result<(), StoreError>;

    /// Where durable batches' answers wait for the disk, when commits do
    /// not wait for it themselves.
    fn deferred_sync(&self) -> Option<&super::writer::DeferredSync> {
        None
    }

    /// Commits the transaction.
    async fn commit(&mut self) -> Result<(), StoreError>;

    /// Rolls the transaction back (after a failed statement or commit).
    async fn rollback(&mut self);

    /// Runs a statement; how many rows it changed.
    async fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64, StoreError>;

    /// Runs a statement and reads the rows it returns.
    async fn fetch<R: FromRow>(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
    ) -> Result<Vec<R>, StoreError>;
}

/// Implements [`Row`] for a sqlx row type (reads through the store's pools
/// decode the same row types as the writer).
macro_rules! sqlx_row {
    ($row:ty) => {
        impl $crate::store::queue::executor::Row for $row {
            fn text(&self, i: usize) -> Result<String, $crate::store::StoreError> {
                Ok(sqlx::Row::try_get(self, i)?)
            }
            fn opt_text(&self, i: usize) -> Result<Option<String>, $crate::store::StoreError> {
                Ok(sqlx::Row::try_get(self, i)?)
            }
            fn int(&self, i: usize) -> Result<i64, $crate::store::StoreError> {
                Ok(sqlx::Row::try_get(self, i)?)
            }
            fn opt_int(&self, i: usize) -> Result<Option<i64>, $crate::store::StoreError> {
                Ok(sqlx::Row::try_get(self, i)?)
            }
            fn opt_bytes(&self, i: usize) -> Result<Option<Vec<u8>>, $crate::store::StoreError> {
                Ok(sqlx::Row::try_get(self, i)?)
            }
            fn boolean(&self, i: usize) -> Result<bool, $crate::store::StoreError> {
                Ok(sqlx::Row::try_get(self, i)?)
            }
        }
    };
}
pub(crate) use sqlx_row;
