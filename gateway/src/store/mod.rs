//! Storage: one interface, two real implementations, SQLite (embedded
//! default, one file, WAL) and PostgreSQL (scale-out).
//!
//! Every query is written once and type-checked against both drivers by
//! [`with_pool!`]; the few statements whose dialects differ say so. Secret
//! columns hold ciphertext only: secrets are encrypted on the way in and
//! decrypted on the way out, here and nowhere else.

mod event_types;
mod management;
pub use management::SecretOwner;
mod plugins;
mod queue;
mod rows;
mod sources;
mod stats;

pub use plugins::{ActivePlugin, TransformedEvent};
pub use queue::{Claim, DeliveryFilter, Ingested, RecordResult, Recorded, RouteHealth};
pub use stats::{Bucket, DestinationHealth, FailingDestination, Stats};

use crate::model::{OrgId, Page};
use crate::secrets::Cipher;
use queue::Writer;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::str::FromStr;
use std::time::Duration;

/// What can go wrong in storage. Callers decide on the variant: only
/// [`StoreError::NotFound`] means the object is not there.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The object does not exist (or belongs to another organization).
    #[error("not found")]
    NotFound,
    /// A unique constraint was hit.
    #[error("conflict: {0}")]
    Conflict(String),
    /// An event would make more deliveries than one event may.
    #[error("the event would make {deliveries} deliveries, more than the limit of {limit}")]
    TooManyDeliveries {
        /// How many it would make.
        deliveries: usize,
        /// The limit.
        limit: usize,
    },
    /// The organization has its limit of subscriptions.
    #[error("the organization has its limit of {limit} subscriptions")]
    TooManySubscriptions {
        /// The limit.
        limit: usize,
    },
    /// A write fenced by a lease found the lease held by another worker.
    #[error("the lease was lost to another worker")]
    LeaseLost,
    /// A stored value could not be read back.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The database could not be reached, or did not answer in time.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The database refused or failed a statement.
    #[error("database error: {0}")]
    Database(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The writer has stopped (the gateway is shutting down, or its thread
    /// or task died).
    #[error("the database writer has stopped")]
    WriterGone,
    /// The SQLite writer's thread could not start.
    #[error("could not start the database writer: {0}")]
    WriterStart(#[source] std::io::Error),
    /// Migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// Whether the database (or its writer) is out of reach, rather than the
    /// request being wrong: worth answering 503 and trying again.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::WriterGone)
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => Self::Unavailable(Box::new(error)),
            other => Self::Database(Box::new(other)),
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode::{
            CannotOpen, DatabaseBusy, DatabaseLocked, DiskFull, SystemIoFailure,
        };
        match &error {
            rusqlite::Error::SqliteFailure(e, _)
                if matches!(
                    e.code,
                    DatabaseBusy | DatabaseLocked | CannotOpen | DiskFull | SystemIoFailure
                ) =>
            {
                Self::Unavailable(Box::new(error))
            }
            _ => Self::Database(Box::new(error)),
        }
    }
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
    /// The one writer of the delivery pipeline's hot path (group commit).
    writer: Writer,
    cipher: Cipher,
    limits: Limits,
}

/// Bounds on what one tenant's writes may make.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Deliveries one event may make (its routes at ingest, and what its
    /// transforms fan out).
    pub deliveries_per_event: usize,
    /// Subscriptions (not deleted) one organization may have.
    pub subscriptions_per_organization: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            deliveries_per_event: 1_000,
            subscriptions_per_organization: 10_000,
        }
    }
}

/// Runs `$body` with `$p` bound to the concrete pool: the same SQL,
/// compiled once per driver.
macro_rules! with_pool {
    ($store:expr, |$p:ident| $body:expr) => {
        match &$store.backend {
            $crate::store::Backend::Sqlite($p) => $body,
            $crate::store::Backend::Postgres($p) => $body,
        }
    };
}
pub(crate) use with_pool;

/// A table of per-organization resources, as a list page reads it.
pub(crate) struct OrgTable {
    /// The table.
    pub table: &'static str,
    /// The columns its row type reads.
    pub columns: &'static str,
    /// The list's order (ending on a unique column, so pages do not overlap).
    pub order: &'static str,
}

impl Store {
    /// One page of `t`'s rows of `organization_id` in its order, as `R`,
    /// with how many the organization has in all.
    pub(crate) async fn organization_page<R>(
        &self,
        t: OrgTable,
        organization_id: &OrgId,
        offset: i64,
        limit: i64,
    ) -> Result<Page<R>, StoreError>
    where
        R: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
            + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
            + Send
            + Unpin,
    {
        let rows_sql = format!(
            "SELECT {} FROM {} WHERE organization_id = $1 ORDER BY {} LIMIT $2 OFFSET $3",
            t.columns, t.table, t.order
        );
        let count_sql = format!(
            "SELECT COUNT(*) FROM {} WHERE organization_id = $1",
            t.table
        );
        let (items, total) = with_pool!(self, |p| {
            let rows = sqlx::query_as(&rows_sql)
                .bind(organization_id.as_str())
                .bind(limit)
                .bind(offset)
                .fetch_all(p)
                .await?;
            let total = sqlx::query_scalar(&count_sql)
                .bind(organization_id.as_str())
                .fetch_one(p)
                .await?;
            (rows, total)
        });
        Ok(Page {
            items,
            total,
            total_capped: false,
        })
    }

    /// The same store with other limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

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
                writer: queue::postgres::start(PgConnectOptions::from_str(url)?)?,
                backend: Backend::Postgres(pool),
                cipher,
                limits: Limits::default(),
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
            Self {
                writer: queue::sqlite::start(options.get_filename())?,
                backend: Backend::Sqlite(pool),
                cipher,
                limits: Limits::default(),
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

    /// Closes the read pool. The writer stops when the last clone of the
    /// store is dropped.
    pub async fn close(&self) {
        with_pool!(self, |p| p.close().await);
    }
}

/// Maps a unique-constraint violation to [`StoreError::Conflict`].
fn conflict(error: sqlx::Error, what: &str) -> StoreError {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(what.to_owned())
        }
        _ => error.into(),
    }
}
