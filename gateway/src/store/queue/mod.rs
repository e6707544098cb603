//! The durable queue: events, their deliveries (jobs leased to workers),
//! attempts and route health.
//!
//! Every write goes through one writer per database ([`writer`]): writes
//! queue up while the previous transaction commits and go to the database
//! together in one transaction (group commit: on SQLite one fsync per
//! batch, on PostgreSQL one commit), applied by the code in [`ops`], which
//! is written once against the small [`executor::Executor`] trait that
//! `sqlite.rs` and `postgres.rs` implement. Reads go through the store's
//! sqlx pool.

pub(crate) mod executor;
mod ops;
pub(super) mod postgres;
mod search;
mod sql;
pub(super) mod sqlite;
mod writer;

pub(crate) use ops::{WriteOp, WriteResult};
pub(super) use sql::EVENT_COLUMNS_OF_E;
pub(crate) use writer::Writer;

use super::rows::{ATTEMPT_COLUMNS, AttemptRow, DeliveryRow, EventRow};
use super::{Store, StoreError, with_pool};
use crate::model::{
    Attempt, Delivery, DeliveryStatus, EpochMs, Event, OrgId, PreparedRequest, TargetKind,
};
use executor::FromRow;
use sql::{DELIVERY_COLUMNS, EVENT_COLUMNS};

/// What ingesting an event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingested {
    /// The event id.
    pub event_id: String,
    /// The deliveries it has.
    pub deliveries: Vec<String>,
    /// False when the id was seen before and nothing was created.
    pub created: bool,
}

/// Deliveries leased by one claim.
#[derive(Debug, Default)]
pub struct Claim {
    /// The claim's name, on every row it leased.
    pub lease: String,
    /// The leased deliveries, oldest due first.
    pub deliveries: Vec<Delivery>,
    /// The events of those not yet transformed, read in the same
    /// transaction.
    pub events: Vec<Event>,
    /// When the next unleased delivery is due, if the claim took fewer than
    /// it asked for and one is pending.
    pub next_due: Option<EpochMs>,
}

/// A delivery's new state after an attempt, or a final state without one.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The delivery.
    pub delivery_id: String,
    /// The claim that holds its lease (the write is fenced by it).
    pub lease: String,
    /// New status.
    pub status: DeliveryStatus,
    /// When to try again (for `Pending`).
    pub next_attempt_at: EpochMs,
    /// The attempt made; `None` when the delivery ended without one
    /// (dropped by its plugin, its route gone).
    pub attempt: Option<Attempt>,
    /// The delivery's last error (or why it ended without an attempt).
    pub error: Option<String>,
    /// What the attempt says about its route.
    pub route: RouteHealth,
    /// Now.
    pub now: EpochMs,
}

/// What an attempt says about its route's health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteHealth {
    /// Nothing (no attempt, or a failure that is not the route's).
    Unchanged,
    /// It answered 2xx: its failure streak ends.
    Succeeded {
        /// The route.
        target_id: String,
    },
    /// It failed: a failure streak starts unless one is running.
    Failed {
        /// The route.
        target_id: String,
    },
}

/// What recording did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordResult {
    /// Whether the lease was still held (false: another worker owns the
    /// delivery now and nothing was written).
    pub held: bool,
    /// For a failed route: since when it has been failing.
    pub failing_since: Option<EpochMs>,
    /// For a route whose failure streak this success ended: since when it
    /// had been failing.
    pub recovered_from: Option<EpochMs>,
}

/// Filters for listing and replaying deliveries.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    /// Only this status.
    pub status: Option<DeliveryStatus>,
    /// Created at or after.
    pub since: Option<EpochMs>,
    /// Created before.
    pub until: Option<EpochMs>,
    /// Only of this event type.
    pub event_type: Option<String>,
    /// Only to this destination (an integration or subscription id).
    pub destination_id: Option<String>,
}

/// Deliveries a replay step queues at most: a replay never holds the
/// writer for long, so ingest goes on between its steps.
const REPLAY_STEP: i64 = 500;

impl Store {
    async fn write(&self, op: WriteOp) -> Result<WriteResult, StoreError> {
        self.writer.submit(op).await
    }

    /// Notified when a commit made deliveries due (events accepted,
    /// deliveries replayed), as soon as it is committed: workers need not
    /// wait for the commit to reach the disk.
    pub fn queue_changed(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.writer.queued().clone()
    }

    /// Stores `event` and one delivery per route in ONE transaction (shared
    /// with other writes queued at the same moment: group commit), durable
    /// before it returns. The same event id again creates nothing and
    /// reports what exists.
    pub async fn ingest(&self, event: &Event) -> Result<Ingested, StoreError> {
        let op = WriteOp::Ingest {
            event: event.clone(),
            max_deliveries: self.limits.deliveries_per_event,
        };
        match self.write(op).await? {
            WriteResult::Ingested(ingested) => Ok(ingested),
            WriteResult::TooManyDeliveries { deliveries, limit } => {
                Err(StoreError::TooManyDeliveries { deliveries, limit })
            }
            other => Err(unexpected(&other)),
        }
    }

    /// Leases up to `limit` due deliveries until `lease_until` to the
    /// claim named `lease` (unique per claim: what fences its records),
    /// skipping the organizations in `held`.
    pub async fn claim(
        &self,
        lease: &str,
        now: EpochMs,
        lease_until: EpochMs,
        limit: i64,
        held: Vec<OrgId>,
    ) -> Result<Claim, StoreError> {
        let op = WriteOp::Claim {
            lease: lease.to_owned(),
            now,
            lease_until,
            limit,
            held,
        };
        match self.write(op).await? {
            WriteResult::Claimed(claim) => Ok(claim),
            other => Err(unexpected(&other)),
        }
    }

    /// Stores a transform's result: the first request on the delivery, the
    /// rest as new deliveries of the same event and route. Fenced by the
    /// lease ([`StoreError::LeaseLost`] when it was lost). Returns the ids
    /// of the new deliveries.
    pub async fn store_transform(
        &self,
        delivery: &Delivery,
        lease: &str,
        requests: &[PreparedRequest],
        now: EpochMs,
    ) -> Result<Vec<String>, StoreError> {
        let op = WriteOp::StoreTransform {
            delivery: delivery.into(),
            owner: lease.to_owned(),
            requests: requests.to_vec(),
            now,
            max_deliveries: self.limits.deliveries_per_event,
        };
        match self.write(op).await? {
            WriteResult::Transformed(Some(ids)) => Ok(ids),
            WriteResult::Transformed(None) => Err(StoreError::LeaseLost),
            WriteResult::TooManyDeliveries { deliveries, limit } => {
                Err(StoreError::TooManyDeliveries { deliveries, limit })
            }
            other => Err(unexpected(&other)),
        }
    }

    /// Records an attempt (or a final status without one) and the
    /// delivery's new state, releasing the lease; notes the route's health
    /// in the same transaction. Fenced: writes nothing, and says so, when
    /// `owner` lost the lease.
    pub async fn record(&self, recorded: Recorded) -> Result<RecordResult, StoreError> {
        match self.write(WriteOp::Record(recorded)).await? {
            WriteResult::Recorded(result) => Ok(result),
            other => Err(unexpected(&other)),
        }
    }

    /// Disables a route (integration or subscription) with a reason the
    /// API shows.
    pub async fn disable_route(
        &self,
        organization_id: &OrgId,
        kind: TargetKind,
        target_id: &str,
        reason: &str,
        now: EpochMs,
    ) -> Result<bool, StoreError> {
        let op = WriteOp::DisableRoute {
            organization_id: organization_id.clone(),
            kind,
            target_id: target_id.to_owned(),
            reason: reason.to_owned(),
            now,
        };
        match self.write(op).await? {
            WriteResult::Changed(n) => Ok(n > 0),
            other => Err(unexpected(&other)),
        }
    }

    /// Queues deliveries again for a fresh set of attempts: one by id, or
    /// every one matching `filter` that is not pending or dropped. Runs in
    /// bounded steps through the writer, so ingest goes on meanwhile.
    /// Returns how many.
    pub async fn replay(
        &self,
        organization_id: &OrgId,
        id: Option<&str>,
        filter: &DeliveryFilter,
        now: EpochMs,
    ) -> Result<u64, StoreError> {
        let mut cursor = String::new();
        let mut total = 0;
        loop {
            let op = WriteOp::Replay {
                organization_id: organization_id.clone(),
                id: id.map(str::to_owned),
                filter: filter.clone(),
                cursor,
                limit: REPLAY_STEP,
                now,
            };
            match self.write(op).await? {
                WriteResult::Replayed(n, next) => {
                    total += n;
                    match next {
                        Some(next) => cursor = next,
                        None => return Ok(total),
                    }
                }
                other => return Err(unexpected(&other)),
            }
        }
    }

    /// Deletes up to `limit` events accepted before `before` whose
    /// deliveries are all final, with those deliveries and their attempts,
    /// in one short write. Returns how many events went.
    pub async fn purge(&self, before: EpochMs, limit: i64) -> Result<u64, StoreError> {
        match self.write(WriteOp::Purge { before, limit }).await? {
            WriteResult::Changed(n) => Ok(n),
            other => Err(unexpected(&other)),
        }
    }

    /// Extends the leases of attempts still running: (delivery id, claim)
    /// pairs, each fenced by its claim. Returns how many were extended.
    pub async fn renew_leases(
        &self,
        leases: Vec<(String, String)>,
        until: EpochMs,
    ) -> Result<u64, StoreError> {
        match self.write(WriteOp::RenewLeases { leases, until }).await? {
            WriteResult::Changed(n) => Ok(n),
            other => Err(unexpected(&other)),
        }
    }

    /// Releases the leases of every claim whose name starts with `owner`
    /// (graceful shutdown): due again `now`.
    pub async fn release_leases(&self, owner: &str, now: EpochMs) -> Result<u64, StoreError> {
        let op = WriteOp::ReleaseLeases {
            owner: owner.to_owned(),
            now,
        };
        match self.write(op).await? {
            WriteResult::Changed(n) => Ok(n),
            other => Err(unexpected(&other)),
        }
    }

    /// An event of `organization_id`.
    pub async fn get_event(&self, organization_id: &OrgId, id: &str) -> Result<Event, StoreError> {
        let sql =
            format!("SELECT {EVENT_COLUMNS} FROM events WHERE organization_id = $1 AND id = $2");
        let row: Option<EventRow> = with_pool!(self, |p| sqlx::query(&sql)
            .bind(organization_id.as_str())
            .bind(id)
            .fetch_optional(p)
            .await?
            .map(|r| EventRow::from_row(&r))
            .transpose()?);
        Ok(row.ok_or(StoreError::NotFound)?.into_domain())
    }

    /// A delivery of `organization_id`.
    pub async fn get_delivery(
        &self,
        organization_id: &OrgId,
        id: &str,
    ) -> Result<Delivery, StoreError> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = $1 AND organization_id = $2"
        );
        let row: Option<DeliveryRow> = with_pool!(self, |p| sqlx::query(&sql)
            .bind(id)
            .bind(organization_id.as_str())
            .fetch_optional(p)
            .await?
            .map(|r| DeliveryRow::from_row(&r))
            .transpose()?);
        row.ok_or(StoreError::NotFound)?.into_domain()
    }

    /// The deliveries of an event.
    pub async fn event_deliveries(
        &self,
        organization_id: &OrgId,
        event_id: &str,
    ) -> Result<Vec<Delivery>, StoreError> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE organization_id = $1 AND event_id = $2 ORDER BY created, id"
        );
        let rows: Vec<DeliveryRow> = with_pool!(self, |p| sqlx::query(&sql)
            .bind(organization_id.as_str())
            .bind(event_id)
            .fetch_all(p)
            .await?
            .iter()
            .map(DeliveryRow::from_row)
            .collect::<Result<_, _>>()?);
        rows.into_iter().map(DeliveryRow::into_domain).collect()
    }

    /// Every attempt of a delivery of `organization_id`, in order.
    pub async fn attempts(
        &self,
        organization_id: &OrgId,
        delivery_id: &str,
    ) -> Result<Vec<Attempt>, StoreError> {
        let sql = format!(
            "SELECT {ATTEMPT_COLUMNS} FROM attempts a JOIN deliveries d ON d.id = a.delivery_id \
             WHERE d.organization_id = $1 AND a.delivery_id = $2 ORDER BY a.attempt"
        );
        let rows: Vec<AttemptRow> = with_pool!(self, |p| sqlx::query(&sql)
            .bind(organization_id.as_str())
            .bind(delivery_id)
            .fetch_all(p)
            .await?
            .iter()
            .map(AttemptRow::from_row)
            .collect::<Result<_, _>>()?);
        Ok(rows.into_iter().map(AttemptRow::into_domain).collect())
    }

    /// How many deliveries are pending (the queue's depth, for metrics):
    /// counted on the partial index of pending rows, never the whole table.
    pub async fn pending_deliveries(&self) -> Result<i64, StoreError> {
        Ok(with_pool!(self, |p| sqlx::query_scalar(
            "SELECT COUNT(*) FROM deliveries WHERE status = 'pending'"
        )
        .fetch_one(p)
        .await?))
    }
}

fn unexpected(result: &WriteResult) -> StoreError {
    StoreError::Corrupt(format!(
        "the writer answered {result:?} to another kind of write"
    ))
}
