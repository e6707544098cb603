//! Events, delivery jobs (the durable queue), attempts and route health.

use super::rows::method;
use super::{Backend, Store, StoreError, with_pool};
use crate::model::{
    Attempt, Delivery, DeliveryStatus, EpochMs, Event, Method, Page, Route, TargetKind, new_id,
};

const DELIVERY_COLUMNS: &str = "id, organization_id, event_id, event_type, target_kind, target_id, endpoint, method, \
     status, transformed, body, content_type, headers, attempts, attempt_base, next_attempt_at, last_error, last_status, \
     created, modified, completed";

#[derive(Debug, sqlx::FromRow)]
struct DeliveryRow {
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
    /// Stores `event` and one delivery per route in ONE transaction. The
    /// same event id again creates nothing and reports what exists.
    pub async fn ingest(&self, event: &Event) -> Result<Ingested, StoreError> {
        let postgres = matches!(self.backend, Backend::Postgres(_));
        with_pool!(self, |p| {
            let mut tx = p.begin().await?;
            // Write first: on SQLite the transaction takes the write lock
            // here instead of upgrading a read later.
            let inserted = sqlx::query(
                "INSERT INTO events (organization_id, id, event_type, payload, shop_id, created) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            )
            .bind(&event.organization_id)
            .bind(&event.id)
            .bind(&event.event_type)
            .bind(&event.payload)
            .bind(&event.shop_id)
            .bind(event.created)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 0 {
                let deliveries: Vec<String> = sqlx::query_scalar(
                    "SELECT id FROM deliveries WHERE organization_id = $1 AND event_id = $2 ORDER BY id",
                )
                .bind(&event.organization_id)
                .bind(&event.id)
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                return Ok(Ingested {
                    event_id: event.id.clone(),
                    deliveries,
                    created: false,
                });
            }
            let _ = postgres;
            let hooks: Vec<(String, String, String)> = sqlx::query_as(
                "SELECT h.integration_id, h.endpoint, h.method FROM integration_hooks h \
                 JOIN integrations i ON i.id = h.integration_id \
                 WHERE h.organization_id = $1 AND h.hook_type = $2 AND i.enabled AND i.disabled_reason IS NULL \
                 ORDER BY h.integration_id, h.position",
            )
            .bind(&event.organization_id)
            .bind(&event.event_type)
            .fetch_all(&mut *tx)
            .await?;
            let webhooks: Vec<(String, String, String)> = sqlx::query_as(
                "SELECT id, urls, method FROM webhooks \
                 WHERE organization_id = $1 AND topic = $2 AND NOT deleted AND disabled_reason IS NULL \
                 AND (shop_id IS NULL OR $3 IS NULL OR shop_id = $3) ORDER BY created, id",
            )
            .bind(&event.organization_id)
            .bind(&event.event_type)
            .bind(&event.shop_id)
            .fetch_all(&mut *tx)
            .await?;
            let mut routes: Vec<Route> = Vec::new();
            for (id, endpoint, m) in hooks {
                routes.push(Route {
                    target_kind: TargetKind::Integration,
                    target_id: id,
                    endpoint,
                    method: method(&m)?,
                });
            }
            for (id, urls, m) in webhooks {
                let urls: Vec<String> = serde_json::from_str(&urls)
                    .map_err(|e| StoreError::Corrupt(format!("urls: {e}")))?;
                let m: Method = method(&m)?;
                for endpoint in urls {
                    routes.push(Route {
                        target_kind: TargetKind::Webhook,
                        target_id: id.clone(),
                        endpoint,
                        method: m,
                    });
                }
            }
            let mut ids = Vec::with_capacity(routes.len());
            for route in &routes {
                let id = new_id("dlv");
                sqlx::query(
                    "INSERT INTO deliveries (id, organization_id, event_id, event_type, target_kind, target_id, endpoint, \
                     method, status, transformed, next_attempt_at, created, modified) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', FALSE, $9, $9, $9)",
                )
                .bind(&id)
                .bind(&event.organization_id)
                .bind(&event.id)
                .bind(&event.event_type)
                .bind(route.target_kind.as_str())
                .bind(&route.target_id)
                .bind(&route.endpoint)
                .bind(route.method.as_str())
                .bind(event.created)
                .execute(&mut *tx)
                .await?;
                ids.push(id);
            }
            tx.commit().await?;
            Ok(Ingested {
                event_id: event.id.clone(),
                deliveries: ids,
                created: true,
            })
        })
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
        let rows: Vec<DeliveryRow> = with_pool!(self, |p| sqlx::query_as(&sql)
            .bind(owner)
            .bind(lease_until)
            .bind(now)
            .bind(limit)
            .fetch_all(p)
            .await?);
        rows.into_iter().map(DeliveryRow::into_domain).collect()
    }

    /// The earliest `next_attempt_at` of pending deliveries, if any.
    pub async fn next_due(&self) -> Result<Option<EpochMs>, StoreError> {
        Ok(with_pool!(self, |p| sqlx::query_scalar::<_, Option<i64>>(
            "SELECT MIN(next_attempt_at) FROM deliveries WHERE status = 'pending'"
        )
        .fetch_one(p)
        .await?))
    }

    /// Stores a transform's result: the first request on `delivery_id`, the
    /// rest as new deliveries of the same event and route. Fenced by the
    /// lease. Returns the ids of the new deliveries.
    pub async fn store_transform(
        &self,
        delivery: &Delivery,
        owner: &str,
        requests: &[crate::transform::Prepared],
        now: EpochMs,
    ) -> Result<Vec<String>, StoreError> {
        let Some((first, rest)) = requests.split_first() else {
            return Ok(Vec::new());
        };
        with_pool!(self, |p| {
            let mut tx = p.begin().await?;
            let updated = sqlx::query(
                "UPDATE deliveries SET transformed = TRUE, body = $1, content_type = $2, headers = $3, modified = $4 \
                 WHERE id = $5 AND lease_owner = $6",
            )
            .bind(&first.0)
            .bind(&first.1)
            .bind(serde_json::to_string(&first.2).unwrap_or_default())
            .bind(now)
            .bind(&delivery.id)
            .bind(owner)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if updated == 0 {
                return Err(StoreError::NotFound);
            }
            let mut ids = Vec::new();
            for (body, content_type, headers) in rest {
                let id = new_id("dlv");
                sqlx::query(
                    "INSERT INTO deliveries (id, organization_id, event_id, event_type, target_kind, target_id, endpoint, \
                     method, status, transformed, body, content_type, headers, next_attempt_at, created, modified) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', TRUE, $9, $10, $11, $12, $12, $12)",
                )
                .bind(&id)
                .bind(&delivery.organization_id)
                .bind(&delivery.event_id)
                .bind(&delivery.event_type)
                .bind(delivery.target_kind.as_str())
                .bind(&delivery.target_id)
                .bind(&delivery.endpoint)
                .bind(delivery.method.as_str())
                .bind(body)
                .bind(content_type)
                .bind(serde_json::to_string(headers).unwrap_or_default())
                .bind(now)
                .execute(&mut *tx)
                .await?;
                ids.push(id);
            }
            tx.commit().await?;
            Ok(ids)
        })
    }

    /// Records an attempt and the delivery's new state, releasing the lease.
    /// Fenced: does nothing (and says so) when `owner` lost the lease.
    pub async fn record_attempt(
        &self,
        delivery_id: &str,
        owner: &str,
        record: &AttemptRecord,
    ) -> Result<bool, StoreError> {
        let a = &record.attempt;
        let completed =
            (record.status != DeliveryStatus::Pending).then_some(a.started + a.duration_ms);
        with_pool!(self, |p| {
            let mut tx = p.begin().await?;
            let updated = sqlx::query(
                "UPDATE deliveries SET status = $1, attempts = attempts + 1, next_attempt_at = $2, last_error = $3, \
                 last_status = $4, lease_owner = NULL, lease_expires = NULL, modified = $5, completed = $6 \
                 WHERE id = $7 AND lease_owner = $8",
            )
            .bind(record.status.as_str())
            .bind(record.next_attempt_at)
            .bind(&a.error)
            .bind(a.status_code)
            .bind(a.started + a.duration_ms)
            .bind(completed)
            .bind(delivery_id)
            .bind(owner)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if updated == 0 {
                return Ok(false);
            }
            sqlx::query(
                "INSERT INTO attempts (delivery_id, attempt, started, duration_ms, status_code, error, response_excerpt) \
                 VALUES ($1, (SELECT attempts FROM deliveries WHERE id = $1), $2, $3, $4, $5, $6)",
            )
            .bind(delivery_id)
            .bind(a.started)
            .bind(a.duration_ms)
            .bind(a.status_code)
            .bind(&a.error)
            .bind(&a.response_excerpt)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(true)
        })
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
        let updated = with_pool!(self, |p| {
            sqlx::query(
            "UPDATE deliveries SET status = $1, last_error = $2, lease_owner = NULL, lease_expires = NULL, modified = $3, \
             completed = $3 WHERE id = $4 AND lease_owner = $5"
        )
        .bind(status.as_str())
        .bind(reason)
        .bind(now)
        .bind(delivery_id)
        .bind(owner)
        .execute(p)
        .await?
        .rows_affected()
        });
        Ok(updated > 0)
    }

    /// Releases leases held by `owner` (graceful shutdown).
    pub async fn release_leases(&self, owner: &str) -> Result<u64, StoreError> {
        Ok(with_pool!(self, |p| {
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

    /// Notes a success of `target_id`.
    pub async fn note_success(&self, target_id: &str) -> Result<(), StoreError> {
        with_pool!(self, |p| sqlx::query(
            "DELETE FROM target_health WHERE target_id = $1"
        )
        .bind(target_id)
        .execute(p)
        .await?
        .rows_affected());
        Ok(())
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
