//! Group commit for the hot writes: ingests, transform results, attempt
//! records, claims and final statuses queue up while the previous
//! transaction commits, and go to the database together in one transaction
//! on one writer connection. On SQLite (synchronous=FULL) that is one fsync
//! per batch instead of one per event (the SQLite writer is in
//! `sqlite_writer.rs`); on PostgreSQL, one commit per batch. A batch that
//! fails is retried one operation per transaction, so one bad operation
//! fails alone.

use super::rows::method;
use super::{AttemptRecord, Ingested, StoreError};
use crate::model::{DeliveryStatus, EpochMs, Event, Method, Route, TargetKind, new_id};
use crate::transform::Prepared;
use sqlx::PgPool;
use std::collections::HashSet;
use std::path::Path;
use tokio::sync::{mpsc, oneshot};

/// Most operations in one transaction.
pub(super) const MAX_BATCH: usize = 256;

/// A delivery's identity, enough to fan a transform out.
#[derive(Debug, Clone)]
pub(super) struct DeliveryKey {
    pub id: String,
    pub organization_id: String,
    pub event_id: String,
    pub event_type: String,
    pub target_kind: TargetKind,
    pub target_id: String,
    pub endpoint: String,
    pub method: Method,
}

/// One write.
#[derive(Debug)]
pub(super) enum WriteOp {
    Ingest(Event),
    StoreTransform {
        delivery: DeliveryKey,
        owner: String,
        requests: Vec<Prepared>,
        now: EpochMs,
    },
    RecordAttempt {
        delivery_id: String,
        owner: String,
        record: AttemptRecord,
    },
    /// Lease due deliveries (the SQL differs by dialect).
    Claim {
        sql: String,
        owner: String,
        now: EpochMs,
        lease_until: EpochMs,
        limit: i64,
    },
    Finish {
        delivery_id: String,
        owner: String,
        status: DeliveryStatus,
        reason: String,
        now: EpochMs,
    },
}

/// What a write did.
#[derive(Debug)]
pub(super) enum WriteResult {
    Ingested(Ingested),
    /// New delivery ids, or `None` when the lease was lost.
    Added(Option<Vec<String>>),
    /// Whether the lease was still held.
    Done(bool),
    /// Leased deliveries.
    Claimed(Vec<super::pipeline::DeliveryRow>),
}

pub(super) type Reply = oneshot::Sender<Result<WriteResult, StoreError>>;

/// The sending side, held by the store.
#[derive(Debug, Clone)]
pub(super) struct Batcher {
    tx: mpsc::Sender<(WriteOp, Reply)>,
}

impl Batcher {
    /// The writer of the SQLite database at `path`, on its own thread.
    pub(super) fn sqlite(path: &Path) -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::channel(4096);
        super::sqlite_writer::spawn(path, rx)?;
        Ok(Self { tx })
    }

    pub(super) fn postgres(pool: PgPool) -> Self {
        let (tx, rx) = mpsc::channel(4096);
        tokio::spawn(run_postgres(pool, rx));
        Self { tx }
    }

    pub(super) async fn submit(&self, op: WriteOp) -> Result<WriteResult, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((op, reply))
            .await
            .map_err(|_| StoreError::Database(sqlx::Error::PoolClosed))?;
        answer
            .await
            .map_err(|_| StoreError::Database(sqlx::Error::PoolClosed))?
    }
}

/// The hot path's statements, for both drivers. Parameters are `$1…$N` and
/// first appear in that order: rusqlite binds `$N` by order of first use
/// (the `parameters_appear_in_order` test checks every one).
pub(super) mod sql {
    pub const INSERT_EVENT: &str = "INSERT INTO events (organization_id, id, event_type, payload, shop_id, created) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT DO NOTHING";
    pub const EVENT_DELIVERIES: &str =
        "SELECT id FROM deliveries WHERE organization_id = $1 AND event_id = $2 ORDER BY id";
    pub const ROUTE_HOOKS: &str = "SELECT h.integration_id, h.endpoint, h.method \
         FROM integration_hooks h \
         JOIN integrations i ON i.id = h.integration_id \
         WHERE h.organization_id = $1 AND h.hook_type = $2 AND i.enabled AND i.disabled_reason IS NULL \
         ORDER BY h.integration_id, h.position";
    pub const ROUTE_WEBHOOKS: &str = "SELECT id, urls, method \
         FROM webhooks \
         WHERE organization_id = $1 AND topic = $2 AND NOT deleted AND disabled_reason IS NULL AND (shop_id IS NULL OR $3 IS NULL OR shop_id = $3) \
         ORDER BY created, id";
    pub const INSERT_DELIVERY: &str = "INSERT INTO deliveries (id, organization_id, event_id, event_type, target_kind, target_id, endpoint, method, status, transformed, next_attempt_at, created, modified) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', FALSE, $9, $9, $9)";
    pub const STORE_TRANSFORM: &str = "UPDATE deliveries \
         SET transformed = TRUE, body = $1, content_type = $2, headers = $3, modified = $4 \
         WHERE id = $5 AND lease_owner = $6";
    pub const INSERT_FANNED_OUT: &str = "INSERT INTO deliveries (id, organization_id, event_id, event_type, target_kind, target_id, endpoint, method, status, transformed, body, content_type, headers, next_attempt_at, created, modified) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', TRUE, $9, $10, $11, $12, $12, $12)";
    pub const RECORD_ATTEMPT: &str = "UPDATE deliveries \
         SET status = $1, attempts = attempts + 1, next_attempt_at = $2, last_error = $3, last_status = $4, lease_owner = NULL, lease_expires = NULL, modified = $5, completed = $6 \
         WHERE id = $7 AND lease_owner = $8";
    pub const INSERT_ATTEMPT: &str = "INSERT INTO attempts (delivery_id, attempt, started, duration_ms, status_code, error, response_excerpt) \
         VALUES ($1, (SELECT attempts FROM deliveries WHERE id = $1), $2, $3, $4, $5, $6)";
    pub const END_STREAK: &str = "DELETE FROM target_health WHERE target_id = $1";
    pub const FINISH: &str = "UPDATE deliveries \
         SET status = $1, last_error = $2, lease_owner = NULL, lease_expires = NULL, modified = $3, completed = $3 \
         WHERE id = $4 AND lease_owner = $5";
    #[cfg(test)]
    pub const ALL: [&str; 11] = [
        INSERT_EVENT,
        EVENT_DELIVERIES,
        ROUTE_HOOKS,
        ROUTE_WEBHOOKS,
        INSERT_DELIVERY,
        STORE_TRANSFORM,
        INSERT_FANNED_OUT,
        RECORD_ATTEMPT,
        INSERT_ATTEMPT,
        END_STREAK,
        FINISH,
    ];
}

/// An event's routes from its matching integration hooks and subscriptions
/// (`(id, endpoint or JSON list of URLs, method)` rows): every hook, then
/// every URL of every subscription.
pub(super) fn routes(
    hooks: Vec<(String, String, String)>,
    webhooks: Vec<(String, String, String)>,
) -> Result<Vec<Route>, StoreError> {
    let mut routes = Vec::with_capacity(hooks.len() + webhooks.len());
    for (id, endpoint, m) in hooks {
        routes.push(Route {
            target_kind: TargetKind::Integration,
            target_id: id,
            endpoint,
            method: method(&m)?,
        });
    }
    for (id, urls, m) in webhooks {
        let urls: Vec<String> =
            serde_json::from_str(&urls).map_err(|e| StoreError::Corrupt(format!("urls: {e}")))?;
        let m = method(&m)?;
        routes.extend(urls.into_iter().map(|endpoint| Route {
            target_kind: TargetKind::Webhook,
            target_id: id.clone(),
            endpoint,
            method: m,
        }));
    }
    Ok(routes)
}

/// What one batch's transaction has done so far.
#[derive(Debug, Default)]
pub(super) struct BatchState {
    /// Routes whose failure streak this transaction already ended: the
    /// batch is one transaction, so ending it again changes nothing.
    pub cleared_routes: HashSet<String>,
}

/// The PostgreSQL batch loop.
async fn run_postgres(pool: PgPool, mut rx: mpsc::Receiver<(WriteOp, Reply)>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        metrics::histogram!("hookgate_write_batch_size").record(batch.len() as f64);
        // Only accepted events must be on disk before we answer;
        // leases and attempt records may wait for the next sync.
        let durable = batch.iter().any(|(op, _)| matches!(op, WriteOp::Ingest(_)));
        let together: Result<Vec<WriteResult>, StoreError> = async {
            let mut tx = pool.begin().await?;
            postgres_in_tx(&mut tx, durable).await?;
            let mut results = Vec::with_capacity(batch.len());
            let mut state = BatchState::default();
            for (op, _) in &batch {
                results.push(apply_postgres(&mut tx, op, &mut state).await?);
            }
            tx.commit().await?;
            Ok(results)
        }
        .await;
        match together {
            Ok(results) => {
                for ((_, reply), result) in batch.into_iter().zip(results) {
                    let _ = reply.send(Ok(result));
                }
            }
            Err(error) if batch.len() == 1 => {
                let (_, reply) = batch.pop().expect("one");
                let _ = reply.send(Err(error));
            }
            Err(error) => {
                tracing::debug!(%error, size = batch.len(), "write batch failed; retrying one by one");
                for (op, reply) in batch {
                    let alone: Result<WriteResult, StoreError> = async {
                        let mut tx = pool.begin().await?;
                        let result =
                            apply_postgres(&mut tx, &op, &mut BatchState::default()).await?;
                        tx.commit().await?;
                        Ok(result)
                    }
                    .await;
                    let _ = reply.send(alone);
                }
            }
        }
    }
}

async fn apply_postgres(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    op: &WriteOp,
    state: &mut BatchState,
) -> Result<WriteResult, StoreError> {
    match op {
        WriteOp::Ingest(event) => {
            let inserted = sqlx::query(sql::INSERT_EVENT)
                .bind(&event.organization_id)
                .bind(&event.id)
                .bind(&event.event_type)
                .bind(&event.payload)
                .bind(&event.shop_id)
                .bind(event.created)
                .execute(&mut **tx)
                .await?
                .rows_affected();
            if inserted == 0 {
                let deliveries: Vec<String> = sqlx::query_scalar(sql::EVENT_DELIVERIES)
                    .bind(&event.organization_id)
                    .bind(&event.id)
                    .fetch_all(&mut **tx)
                    .await?;
                return Ok(WriteResult::Ingested(Ingested {
                    event_id: event.id.clone(),
                    deliveries,
                    created: false,
                }));
            }
            // Routing: read inside the same transaction as the event.
            let hooks: Vec<(String, String, String)> = sqlx::query_as(sql::ROUTE_HOOKS)
                .bind(&event.organization_id)
                .bind(&event.event_type)
                .fetch_all(&mut **tx)
                .await?;
            let webhooks: Vec<(String, String, String)> = sqlx::query_as(sql::ROUTE_WEBHOOKS)
                .bind(&event.organization_id)
                .bind(&event.event_type)
                .bind(&event.shop_id)
                .fetch_all(&mut **tx)
                .await?;
            let routes = routes(hooks, webhooks)?;
            let mut ids = Vec::with_capacity(routes.len());
            for route in &routes {
                let id = new_id("dlv");
                sqlx::query(sql::INSERT_DELIVERY)
                    .bind(&id)
                    .bind(&event.organization_id)
                    .bind(&event.id)
                    .bind(&event.event_type)
                    .bind(route.target_kind.as_str())
                    .bind(&route.target_id)
                    .bind(&route.endpoint)
                    .bind(route.method.as_str())
                    .bind(event.created)
                    .execute(&mut **tx)
                    .await?;
                ids.push(id);
            }
            Ok(WriteResult::Ingested(Ingested {
                event_id: event.id.clone(),
                deliveries: ids,
                created: true,
            }))
        }
        WriteOp::StoreTransform {
            delivery,
            owner,
            requests,
            now,
        } => {
            let Some((first, rest)) = requests.split_first() else {
                return Ok(WriteResult::Added(Some(Vec::new())));
            };
            let updated = sqlx::query(sql::STORE_TRANSFORM)
                .bind(&first.0)
                .bind(&first.1)
                .bind(serde_json::to_string(&first.2).unwrap_or_default())
                .bind(now)
                .bind(&delivery.id)
                .bind(owner)
                .execute(&mut **tx)
                .await?
                .rows_affected();
            if updated == 0 {
                return Ok(WriteResult::Added(None));
            }
            let mut ids = Vec::new();
            for (body, content_type, headers) in rest {
                let id = new_id("dlv");
                sqlx::query(sql::INSERT_FANNED_OUT)
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
                    .execute(&mut **tx)
                    .await?;
                ids.push(id);
            }
            Ok(WriteResult::Added(Some(ids)))
        }
        WriteOp::RecordAttempt {
            delivery_id,
            owner,
            record,
        } => {
            let a = &record.attempt;
            let completed =
                (record.status != DeliveryStatus::Pending).then_some(a.started + a.duration_ms);
            let updated = sqlx::query(sql::RECORD_ATTEMPT)
                .bind(record.status.as_str())
                .bind(record.next_attempt_at)
                .bind(&a.error)
                .bind(a.status_code)
                .bind(a.started + a.duration_ms)
                .bind(completed)
                .bind(delivery_id)
                .bind(owner)
                .execute(&mut **tx)
                .await?
                .rows_affected();
            if updated == 0 {
                return Ok(WriteResult::Done(false));
            }
            sqlx::query(sql::INSERT_ATTEMPT)
                .bind(delivery_id)
                .bind(a.started)
                .bind(a.duration_ms)
                .bind(a.status_code)
                .bind(&a.error)
                .bind(&a.response_excerpt)
                .execute(&mut **tx)
                .await?;
            if let Some(target_id) = &record.route_succeeded
                && state.cleared_routes.insert(target_id.clone())
            {
                sqlx::query(sql::END_STREAK)
                    .bind(target_id)
                    .execute(&mut **tx)
                    .await?;
            }
            Ok(WriteResult::Done(true))
        }
        WriteOp::Claim {
            sql,
            owner,
            now,
            lease_until,
            limit,
        } => {
            let rows = sqlx::query_as(sql)
                .bind(owner)
                .bind(lease_until)
                .bind(now)
                .bind(limit)
                .fetch_all(&mut **tx)
                .await?;
            Ok(WriteResult::Claimed(rows))
        }
        WriteOp::Finish {
            delivery_id,
            owner,
            status,
            reason,
            now,
        } => {
            let updated = sqlx::query(sql::FINISH)
                .bind(status.as_str())
                .bind(reason)
                .bind(now)
                .bind(delivery_id)
                .bind(owner)
                .execute(&mut **tx)
                .await?
                .rows_affected();
            Ok(WriteResult::Done(updated > 0))
        }
    }
}

/// PostgreSQL sets it per transaction.
async fn postgres_in_tx(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    durable: bool,
) -> Result<(), sqlx::Error> {
    if !durable {
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::sql;

    /// rusqlite numbers `$N` parameters by first use, so each statement must
    /// use `$1`, `$2`, … for the first time in that order.
    #[test]
    fn parameters_appear_in_order() {
        for statement in sql::ALL {
            let mut next = 1;
            let mut rest = statement;
            while let Some(at) = rest.find('$') {
                let digits: String = rest[at + 1..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                let n: usize = digits.parse().expect("a numbered parameter");
                assert!(n <= next, "${n} before ${next} in {statement}");
                if n == next {
                    next += 1;
                }
                rest = &rest[at + 1 + digits.len()..];
            }
        }
    }
}
