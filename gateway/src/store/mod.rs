//! Storage: one interface, two real implementations, SQLite (embedded
//! default, one file, WAL) and PostgreSQL (scale-out).
//!
//! Every query is written once and type-checked against both drivers by
//! [`with_pool!`]; the few statements whose dialects differ say so. Secret
//! columns hold ciphertext only: secrets are encrypted on the way in and
//! decrypted on the way out, here and nowhere else.

mod batch;
mod management;
mod pipeline;
mod plugins;

pub use pipeline::{AttemptRecord, DeliveryFilter, Ingested};
mod rows;
mod sqlite_writer;

use crate::secrets::Cipher;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::str::FromStr;
use std::time::Duration;

/// What can go wrong in storage.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The object does not exist (or belongs to another organization).
    #[error("not found")]
    NotFound,
    /// A unique constraint was hit.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A stored value could not be read back.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The SQLite writer failed.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The SQLite writer's thread could not start.
    #[error("could not start the database writer: {0}")]
    Writer(std::io::Error),
    /// Migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Which database, and its pool.
#[derive(Debug, Clone)]
enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The gateway's database.
#[derive(Debug, Clone)]
pub struct Store {
    /// Reads and the management API's writes.
    backend: Backend,
    /// The one writer of the delivery pipeline's hot path (claims).
    writer: Backend,
    /// Group commit for ingests and delivery records, on `writer`.
    batcher: batch::Batcher,
    cipher: Cipher,
}

/// Runs `$body` with `$p` bound to the concrete pool: the same SQL,
/// compiled once per driver.
macro_rules! with_pool {
    ($store:expr, |$p:ident| $body:expr) => {
        match &$store.backend {
            Backend::Sqlite($p) => $body,
            Backend::Postgres($p) => $body,
        }
    };
}
pub(crate) use with_pool;

/// [`with_pool!`] on the hot path's writer.
macro_rules! with_writer {
    ($store:expr, |$p:ident| $body:expr) => {
        match &$store.writer {
            Backend::Sqlite($p) => $body,
            Backend::Postgres($p) => $body,
        }
    };
}
pub(crate) use with_writer;

impl Store {
    /// Connects to `url` (`sqlite://…` or `postgres://…`), creating a SQLite
    /// file when missing, and runs the migrations.
    pub async fn connect(url: &str, cipher: Cipher) -> Result<Self, StoreError> {
        let store = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await?;
            sqlx::migrate!("./migrations/postgres").run(&pool).await?;
            Self {
                batcher: batch::Batcher::postgres(pool.clone()),
                writer: Backend::Postgres(pool.clone()),
                backend: Backend::Postgres(pool),
                cipher,
            }
        } else {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // FULL: a commit is on disk (WAL fsynced) before we answer.
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10));
            let pool = SqlitePoolOptions::new()
                .max_connections(8)
                .connect_with(options.clone())
                .await?;
            sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
            // SQLite has one writer at a time: give the hot path one
            // connection so writers queue in order instead of sleeping in
            // the busy handler.
            let writer = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options.clone())
                .await?;
            Self {
                batcher: batch::Batcher::sqlite(options.get_filename())?,
                writer: Backend::Sqlite(writer),
                backend: Backend::Sqlite(pool),
                cipher,
            }
        };
        Ok(store)
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn kind(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        with_pool!(self, |p| sqlx::query("SELECT 1")
            .execute(p)
            .await
            .map(drop)?);
        Ok(())
    }

    /// Closes every connection.
    pub async fn close(&self) {
        with_writer!(self, |p| p.close().await);
        with_pool!(self, |p| p.close().await);
    }
}

/// Maps a unique-constraint violation to [`StoreError::Conflict`].
fn conflict(error: sqlx::Error, what: &str) -> StoreError {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(what.to_owned())
        }
        _ => StoreError::Database(error),
    }
}
