//! Events, delivery jobs (the durable queue), attempts and route health.

use super::batch::{DeliveryKey, WriteOp, WriteResult};
use super::rows::method;
use super::{Backend, Store, StoreError, with_pool, with_writer};
use crate::model::{Attempt, Delivery, DeliveryStatus, EpochMs, Event, Page, TargetKind};
use crate::transform::Prepared;

const DELIVERY_COLUMNS: &str = "id, organization_id, event_id, event_type, target_kind, target_id, endpoint, method, \
     status, transformed, body, content_type, headers, attempts, attempt_base, next_attempt_at, last_error, last_status, \
     created, modified, completed";

#[derive(Debug, sqlx::FromRow)]
pub(super) struct DeliveryRow {
    id: String,
    organization_id: String,
    event_id: String,
    event_type: String,
    target_kind: String,
    target_id: String,
    endpoint: String,
    method: String,
    status: String,
    transformed: bool,
    body: Option<Vec<u8>>,
    content_type: Option<String>,
    headers: Option<String>,
    attempts: i64,
    attempt_base: i64,
    next_attempt_at: i64,
    last_error: Option<String>,
    last_status: Option<i64>,
    created: i64,
    modified: i64,
    completed: Option<i64>,
}

impl DeliveryRow {
    /// A row of `DELIVERY_COLUMNS`, read by the SQLite writer.
    pub(super) fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            organization_id: row.get(1)?,
            event_id: row.get(2)?,
            event_type: row.get(3)?,
            target_kind: row.get(4)?,
            target_id: row.get(5)?,
            endpoint: row.get(6)?,
            method: row.get(7)?,
            status: row.get(8)?,
            transformed: row.get(9)?,
            body: row.get(10)?,
            content_type: row.get(11)?,
            headers: row.get(12)?,
            attempts: row.get(13)?,
            attempt_base: row.get(14)?,
            next_attempt_at: row.get(15)?,
            last_error: row.get(16)?,
            last_status: row.get(17)?,
            created: row.get(18)?,
            modified: row.get(19)?,
            completed: row.get(20)?,
        })
    }

    fn into_domain(self) -> Result<Delivery, StoreError> {
        Ok(Delivery {
            target_kind: TargetKind::parse(&self.target_kind)
                .ok_or_else(|| StoreError::Corrupt(format!("target kind {}", self.target_kind)))?,
            method: method(&self.method)?,
            status: DeliveryStatus::parse(&self.status)
                .ok_or_else(|| StoreError::Corrupt(format!("status {}", self.status)))?,
            headers: match self.headers {
                Some(h) => serde_json::from_str(&h)
                    .map_err(|e| StoreError::Corrupt(format!("headers: {e}")))?,
                None => Vec::new(),
            },
            id: self.id,
            organization_id: self.organization_id,
            event_id: self.event_id,
            event_type: self.event_type,
            target_id: self.target_id,
            endpoint: self.endpoint,
            transformed: self.transformed,
            body: self.body,
            content_type: self.content_type,
            attempts: self.attempts,
            attempt_base: self.attempt_base,
            next_attempt_at: self.next_attempt_at,
            last_error: self.last_error,
            last_status: self.last_status,
            created: self.created,
            modified: self.modified,
            completed: self.completed,
        })
    }
}

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

/// A delivery's outcome after one attempt.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    /// The attempt.
    pub attempt: Attempt,
    /// New status.
    pub status: DeliveryStatus,
    /// When to try again (for `Pending`).
    pub next_attempt_at: EpochMs,
    /// A route (target id) that just succeeded: its failure streak ends in
    /// the same transaction (no separate write competing for the lock).
    pub route_succeeded: Option<String>,
}

/// Filters for listing deliveries.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    /// Only this status.
    pub status: Option<DeliveryStatus>,
    /// Created at or after.
    pub since: Option<EpochMs>,
    /// Created before.
    pub until: Option<EpochMs>,
}

impl Store {
    /// Stores `event` and one delivery per route in ONE transaction (shared
    /// with other writes queued at the same moment: group commit). The same
    /// event id again creates nothing and reports what exists.
    pub async fn ingest(&self, event: &Event) -> Result<Ingested, StoreError> {
        match self.batcher.submit(WriteOp::Ingest(event.clone())).await? {
            WriteResult::Ingested(ingested) => Ok(ingested),
            other => Err(StoreError::Corrupt(format!(
                "unexpected write result {other:?}"
            ))),
        }
    }

    /// Stores a transform's result: the first request on the delivery, the
    /// rest as new deliveries of the same event and route. Fenced by the
    /// lease ([`StoreError::NotFound`] when it was lost). Returns the ids
    /// of the new deliveries.
    pub async fn store_transform(
        &self,
        delivery: &Delivery,
        owner: &str,
        requests: &[Prepared],
        now: EpochMs,
    ) -> Result<Vec<String>, StoreError> {
        let op = WriteOp::StoreTransform {
            delivery: DeliveryKey {
                id: delivery.id.clone(),
                organization_id: delivery.organization_id.clone(),
                event_id: delivery.event_id.clone(),
                event_type: delivery.event_type.clone(),
                target_kind: delivery.target_kind,
                target_id: delivery.target_id.clone(),
                endpoint: delivery.endpoint.clone(),
                method: delivery.method,
            },
            owner: owner.to_owned(),
            requests: requests.to_vec(),
            now,
        };
        match self.batcher.submit(op).await? {
            WriteResult::Added(Some(ids)) => Ok(ids),
            WriteResult::Added(None) => Err(StoreError::NotFound),
            other => Err(StoreError::Corrupt(format!(
                "unexpected write result {other:?}"
            ))),
        }
    }

    /// Records an attempt and the delivery's new state, releasing the lease.
    /// Fenced: does nothing (and says so) when `owner` lost the lease.
    pub async fn record_attempt(
        &self,
        delivery_id: &str,
        owner: &str,
        record: &AttemptRecord,
    ) -> Result<bool, StoreError> {
        let op = WriteOp::RecordAttempt {
            delivery_id: delivery_id.to_owned(),
            owner: owner.to_owned(),
            record: record.clone(),
        };
        match self.batcher.submit(op).await? {
            WriteResult::Done(held) => Ok(held),
            other => Err(StoreError::Corrupt(format!(
                "unexpected write result {other:?}"
            ))),
        }
    }

    /// Sets a final status without an attempt (dropped, cancelled).
    pub async fn finish_without_attempt(
        &self,
        delivery_id: &str,
        owner: &str,
        status: DeliveryStatus,
        reason: &str,
        now: EpochMs,
    ) -> Result<bool, StoreError> {
        let op = WriteOp::Finish {
            delivery_id: delivery_id.to_owned(),
            owner: owner.to_owned(),
            status,
            reason: reason.to_owned(),
            now,
        };
        match self.batcher.submit(op).await? {
            WriteResult::Done(held) => Ok(held),
            other => Err(StoreError::Corrupt(format!(
                "unexpected write result {other:?}"
            ))),
        }
    }

    /// An event of `organization_id`.
    pub async fn get_event(&self, organization_id: &str, id: &str) -> Result<Event, StoreError> {
        type Row = (String, String, String, String, Option<String>, i64);
        let row: Option<Row> = with_pool!(self, |p| {
            sqlx::query_as(
            "SELECT organization_id, id, event_type, payload, shop_id, created FROM events WHERE organization_id = $1 AND id = $2"
        )
        .bind(organization_id)
        .bind(id)
        .fetch_optional(p)
        .await?
        });
        let (organization_id, id, event_type, payload, shop_id, created) =
            row.ok_or(StoreError::NotFound)?;
        Ok(Event {
            organization_id,
            id,
            event_type,
            payload,
            shop_id,
            created,
        })
    }

    /// The events of several deliveries at once (one query per claim
    /// instead of one per delivery), by (organization, id).
    pub async fn get_events(
        &self,
        keys: &[(String, String)],
    ) -> Result<std::collections::HashMap<(String, String), Event>, StoreError> {
        type Row = (String, String, String, String, Option<String>, i64);
        // One query per organization, so the primary key (organization, id) is used.
        let mut by_org: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
        for (org, id) in keys {
            by_org.entry(org.as_str()).or_default().push(id.as_str());
        }
        let mut events = std::collections::HashMap::with_capacity(keys.len());
        for (org, mut ids) in by_org {
            ids.sort_unstable();
            ids.dedup();
            let placeholders: Vec<String> = (2..ids.len() + 2).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT organization_id, id, event_type, payload, shop_id, created FROM events \
                 WHERE organization_id = $1 AND id IN ({})",
                placeholders.join(", ")
            );
            let rows: Vec<Row> = with_pool!(self, |p| {
                let mut query = sqlx::query_as(&sql).bind(org);
                for id in &ids {
                    query = query.bind(*id);
                }
                query.fetch_all(p).await?
            });
            for (organization_id, id, event_type, payload, shop_id, created) in rows {
                events.insert(
                    (organization_id.clone(), id.clone()),
                    Event {
                        organization_id,
                        id,
                        event_type,
                        payload,
                        shop_id,
                        created,
                    },
                );
            }
        }
        Ok(events)
    }

    /// Leases up to `limit` due deliveries to `owner` until `lease_until`.
    pub async fn claim(
        &self,
        owner: &str,
        now: EpochMs,
        lease_until: EpochMs,
        limit: i64,
    ) -> Result<Vec<Delivery>, StoreError> {
        let lock = match self.backend {
            Backend::Postgres(_) => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite(_) => "",
        };
        let sql = format!(
            "UPDATE deliveries SET lease_owner = $1, lease_expires = $2 WHERE id IN (\
               SELECT id FROM deliveries WHERE status = 'pending' AND next_attempt_at <= $3 \
               AND (lease_expires IS NULL OR lease_expires < $3) ORDER BY next_attempt_at LIMIT $4{lock}) \
             RETURNING {DELIVERY_COLUMNS}"
        );
        // Through the batcher: the lease shares the batch's commit.
        let op = WriteOp::Claim {
            sql,
            owner: owner.to_owned(),
            now,
            lease_until,
            limit,
        };
        let rows = match self.batcher.submit(op).await? {
            WriteResult::Claimed(rows) => rows,
            other => {
                return Err(StoreError::Corrupt(format!(
                    "unexpected write result {other:?}"
                )));
            }
        };
        rows.into_iter().map(DeliveryRow::into_domain).collect()
    }

    /// The earliest `next_attempt_at` of pending deliveries, if any.
    pub async fn next_due(&self, now: EpochMs) -> Result<Option<EpochMs>, StoreError> {
        // Leased (in-flight) jobs are not due: counting them would make an
        // idle worker spin on claims while its own jobs are in flight.
        Ok(with_pool!(self, |p| sqlx::query_scalar::<_, Option<i64>>(
            "SELECT MIN(next_attempt_at) FROM deliveries WHERE status = 'pending' \
             AND (lease_expires IS NULL OR lease_expires < $1)"
        )
        .bind(now)
        .fetch_one(p)
        .await?))
    }

    /// Releases leases held by `owner` (graceful shutdown).
    pub async fn release_leases(&self, owner: &str) -> Result<u64, StoreError> {
        Ok(with_writer!(self, |p| {
            sqlx::query(
            "UPDATE deliveries SET lease_owner = NULL, lease_expires = NULL WHERE lease_owner = $1 AND status = 'pending'"
        )
        .bind(owner)
        .execute(p)
        .await?
        .rows_affected()
        }))
    }

    /// A delivery of `organization_id`.
    pub async fn get_delivery(
        &self,
        organization_id: &str,
        id: &str,
    ) -> Result<Delivery, StoreError> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = $1 AND organization_id = $2"
        );
        let row: Option<DeliveryRow> = with_pool!(self, |p| sqlx::query_as(&sql)
            .bind(id)
            .bind(organization_id)
            .fetch_optional(p)
            .await?);
        row.ok_or(StoreError::NotFound)?.into_domain()
    }

    /// The deliveries of an event.
    pub async fn event_deliveries(
        &self,
        organization_id: &str,
        event_id: &str,
    ) -> Result<Vec<Delivery>, StoreError> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE organization_id = $1 AND event_id = $2 ORDER BY created, id"
        );
        let rows: Vec<DeliveryRow> = with_pool!(self, |p| sqlx::query_as(&sql)
            .bind(organization_id)
            .bind(event_id)
            .fetch_all(p)
            .await?);
        rows.into_iter().map(DeliveryRow::into_domain).collect()
    }

    /// One page of an organization's deliveries, newest first.
    pub async fn list_deliveries(
        &self,
        organization_id: &str,
        filter: &DeliveryFilter,
        start: i64,
        limit: i64,
    ) -> Result<Page<Delivery>, StoreError> {
        let condition = "organization_id = $1 AND ($2 IS NULL OR status = $2) AND ($3 IS NULL OR created >= $3) \
                         AND ($4 IS NULL OR created < $4)";
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE {condition} ORDER BY created DESC, id DESC LIMIT $5 OFFSET $6"
        );
        let count = format!("SELECT COUNT(*) FROM deliveries WHERE {condition}");
        let status = filter.status.map(|s| s.as_str());
        let (rows, total): (Vec<DeliveryRow>, i64) = with_pool!(self, |p| {
            let rows = sqlx::query_as(&sql)
                .bind(organization_id)
                .bind(status)
                .bind(filter.since)
                .bind(filter.until)
                .bind(limit)
                .bind(start)
                .fetch_all(p)
                .await?;
            let total = sqlx::query_scalar(&count)
                .bind(organization_id)
                .bind(status)
                .bind(filter.since)
                .bind(filter.until)
                .fetch_one(p)
                .await?;
            (rows, total)
        });
        Ok(Page {
            items: rows
                .into_iter()
                .map(DeliveryRow::into_domain)
                .collect::<Result<_, _>>()?,
            total,
        })
    }

    /// Every attempt of a delivery, in order.
    pub async fn attempts(&self, delivery_id: &str) -> Result<Vec<Attempt>, StoreError> {
        type Row = (
            String,
            i64,
            i64,
            i64,
            Option<i64>,
            Option<String>,
            Option<String>,
        );
        let rows: Vec<Row> = with_pool!(self, |p| {
            sqlx::query_as(
            "SELECT delivery_id, attempt, started, duration_ms, status_code, error, response_excerpt FROM attempts \
             WHERE delivery_id = $1 ORDER BY attempt"
        )
        .bind(delivery_id)
        .fetch_all(p)
        .await?
        });
        Ok(rows
            .into_iter()
            .map(
                |(
                    delivery_id,
                    attempt,
                    started,
                    duration_ms,
                    status_code,
                    error,
                    response_excerpt,
                )| Attempt {
                    delivery_id,
                    attempt,
                    started,
                    duration_ms,
                    status_code,
                    error,
                    response_excerpt,
                },
            )
            .collect())
    }

    /// Queues deliveries again for a fresh set of attempts: one by id, or
    /// every one matching `filter` that is not pending. Returns how many.
    pub async fn replay(
        &self,
        organization_id: &str,
        id: Option<&str>,
        filter: &DeliveryFilter,
        now: EpochMs,
    ) -> Result<u64, StoreError> {
        let status = filter.status.map(|s| s.as_str());
        Ok(with_pool!(self, |p| {
            sqlx::query(
            "UPDATE deliveries SET status = 'pending', attempt_base = attempts, next_attempt_at = $1, completed = NULL, \
             lease_owner = NULL, lease_expires = NULL, modified = $1 \
             WHERE organization_id = $2 AND status <> 'pending' AND status <> 'dropped' AND ($3 IS NULL OR id = $3) \
             AND ($4 IS NULL OR status = $4) AND ($5 IS NULL OR created >= $5) AND ($6 IS NULL OR created < $6)"
        )
        .bind(now)
        .bind(organization_id)
        .bind(id)
        .bind(status)
        .bind(filter.since)
        .bind(filter.until)
        .execute(p)
        .await?
        .rows_affected()
        }))
    }

    /// Counts of deliveries by status (queue depth for metrics).
    pub async fn delivery_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(with_pool!(self, |p| sqlx::query_as(
            "SELECT status, COUNT(*) FROM deliveries GROUP BY status"
        )
        .fetch_all(p)
        .await?))
    }

    /// Notes a failure of `target_id`; returns since when it has been failing.
    pub async fn note_failure(&self, target_id: &str, now: EpochMs) -> Result<EpochMs, StoreError> {
        Ok(with_pool!(self, |p| {
            sqlx::query("INSERT INTO target_health (target_id, failing_since) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(target_id)
                .bind(now)
                .execute(p)
                .await?;
            sqlx::query_scalar::<_, i64>(
                "SELECT failing_since FROM target_health WHERE target_id = $1",
            )
            .bind(target_id)
            .fetch_one(p)
            .await?
        }))
    }

    /// Disables a route (integration or subscription) with a reason the API shows.
    pub async fn disable_target(
        &self,
        kind: TargetKind,
        target_id: &str,
        reason: &str,
        now: EpochMs,
    ) -> Result<(), StoreError> {
        let sql = match kind {
            TargetKind::Integration => {
                "UPDATE integrations SET disabled_reason = $1, enabled = FALSE, modified = $2 WHERE id = $3"
            }
            TargetKind::Webhook => {
                "UPDATE webhooks SET disabled_reason = $1, modified = $2 WHERE id = $3"
            }
        };
        with_pool!(self, |p| sqlx::query(sql)
            .bind(reason)
            .bind(now)
            .bind(target_id)
            .execute(p)
            .await?
            .rows_affected());
        Ok(())
    }
}
