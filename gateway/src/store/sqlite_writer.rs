//! The SQLite half of the group commit: one `rusqlite` connection on its own
//! thread applies each batch of hot-path writes in one transaction.
//!
//! Why not sqlx here: sqlx runs every SQLite statement on a worker thread
//! and hands each one over through channels, two thread wake-ups per
//! statement. Measured on the 2-core gVisor machine: 67 µs of CPU per
//! INSERT through sqlx against 1.5 µs through rusqlite
//! (`cargo bench -p hookgate-tests --bench sqlite_statement`). An event
//! costs about eight statements on its way through the pipeline, so that
//! hand-over was most of the gateway's CPU. Here a whole batch crosses one
//! channel once. The rest of the store (reads, the management API) stays
//! on sqlx; SQLite serialises writers across connections.

use super::batch::{BatchState, MAX_BATCH, Reply, WriteOp, WriteResult, routes, sql};
use super::pipeline::DeliveryRow;
use super::{Ingested, StoreError};
use crate::model::new_id;
use rusqlite::{Connection, Transaction, TransactionBehavior, params};
use std::path::Path;
use std::time::Duration;
use tokio::sync::mpsc;

/// Opens the writer connection on `path` and starts its thread.
pub(super) fn spawn(
    path: &Path,
    mut rx: mpsc::Receiver<(WriteOp, Reply)>,
) -> Result<(), StoreError> {
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.set_prepared_statement_cache_capacity(64);
    std::thread::Builder::new()
        .name("hookgate-writer".into())
        .spawn(move || {
            let mut durable_mode = None;
            while let Some(first) = rx.blocking_recv() {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(item) => batch.push(item),
                        Err(_) => break,
                    }
                }
                apply_batch(&mut conn, &mut durable_mode, batch);
            }
        })
        .map_err(StoreError::Writer)?;
    Ok(())
}

fn apply_batch(
    conn: &mut Connection,
    durable_mode: &mut Option<bool>,
    mut batch: Vec<(WriteOp, Reply)>,
) {
    metrics::histogram!("hookgate_write_batch_size").record(batch.len() as f64);
    let ops: Vec<&WriteOp> = batch.iter().map(|(op, _)| op).collect();
    match commit(conn, durable_mode, &ops) {
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
                let alone = commit(conn, durable_mode, &[&op])
                    .map(|mut results| results.pop().expect("one result per operation"));
                let _ = reply.send(alone);
            }
        }
    }
}

/// Applies `ops` in one transaction; one result per operation.
fn commit(
    conn: &mut Connection,
    durable_mode: &mut Option<bool>,
    ops: &[&WriteOp],
) -> Result<Vec<WriteResult>, StoreError> {
    // Only accepted events must be on disk before we answer; leases and
    // attempt records may wait for the next sync (still safe against a
    // killed process: WAL with synchronous=NORMAL).
    let durable = ops.iter().any(|op| matches!(op, WriteOp::Ingest(_)));
    set_durability(conn, durable_mode, durable)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut state = BatchState::default();
    let results = ops
        .iter()
        .map(|op| apply(&tx, op, &mut state))
        .collect::<Result<Vec<_>, StoreError>>()?;
    tx.commit()?;
    Ok(results)
}

/// FULL (fsync at commit) for batches with events, NORMAL for the rest; set
/// per connection, outside a transaction, only when it changes.
fn set_durability(
    conn: &Connection,
    mode: &mut Option<bool>,
    durable: bool,
) -> Result<(), StoreError> {
    if *mode != Some(durable) {
        // 2 is FULL, 1 is NORMAL.
        conn.pragma_update(None, "synchronous", if durable { 2 } else { 1 })?;
        *mode = Some(durable);
    }
    Ok(())
}

fn apply(
    tx: &Transaction<'_>,
    op: &WriteOp,
    state: &mut BatchState,
) -> Result<WriteResult, StoreError> {
    match op {
        WriteOp::Ingest(event) => {
            let inserted = tx.prepare_cached(sql::INSERT_EVENT)?.execute(params![
                event.organization_id,
                event.id,
                event.event_type,
                event.payload,
                event.shop_id,
                event.created
            ])?;
            if inserted == 0 {
                let deliveries = tx
                    .prepare_cached(sql::EVENT_DELIVERIES)?
                    .query_map(params![event.organization_id, event.id], |row| row.get(0))?
                    .collect::<Result<Vec<String>, _>>()?;
                return Ok(WriteResult::Ingested(Ingested {
                    event_id: event.id.clone(),
                    deliveries,
                    created: false,
                }));
            }
            // Routing: read inside the same transaction as the event.
            let hooks = tx
                .prepare_cached(sql::ROUTE_HOOKS)?
                .query_map(params![event.organization_id, event.event_type], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let webhooks = tx
                .prepare_cached(sql::ROUTE_WEBHOOKS)?
                .query_map(
                    params![event.organization_id, event.event_type, event.shop_id],
                    |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, String>(2)?,
                        ))
                    },
                )?
                .collect::<Result<Vec<_>, _>>()?;
            let routes = routes(hooks, webhooks)?;
            let mut insert = tx.prepare_cached(sql::INSERT_DELIVERY)?;
            let mut ids = Vec::with_capacity(routes.len());
            for route in &routes {
                let id = new_id("dlv");
                insert.execute(params![
                    id,
                    event.organization_id,
                    event.id,
                    event.event_type,
                    route.target_kind.as_str(),
                    route.target_id,
                    route.endpoint,
                    route.method.as_str(),
                    event.created
                ])?;
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
            let updated = tx.prepare_cached(sql::STORE_TRANSFORM)?.execute(params![
                first.0,
                first.1,
                serde_json::to_string(&first.2).unwrap_or_default(),
                now,
                delivery.id,
                owner
            ])?;
            if updated == 0 {
                return Ok(WriteResult::Added(None));
            }
            let mut insert = tx.prepare_cached(sql::INSERT_FANNED_OUT)?;
            let mut ids = Vec::new();
            for (body, content_type, headers) in rest {
                let id = new_id("dlv");
                insert.execute(params![
                    id,
                    delivery.organization_id,
                    delivery.event_id,
                    delivery.event_type,
                    delivery.target_kind.as_str(),
                    delivery.target_id,
                    delivery.endpoint,
                    delivery.method.as_str(),
                    body,
                    content_type,
                    serde_json::to_string(headers).unwrap_or_default(),
                    now
                ])?;
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
            let completed = (record.status != crate::model::DeliveryStatus::Pending)
                .then_some(a.started + a.duration_ms);
            let updated = tx.prepare_cached(sql::RECORD_ATTEMPT)?.execute(params![
                record.status.as_str(),
                record.next_attempt_at,
                a.error,
                a.status_code,
                a.started + a.duration_ms,
                completed,
                delivery_id,
                owner
            ])?;
            if updated == 0 {
                return Ok(WriteResult::Done(false));
            }
            tx.prepare_cached(sql::INSERT_ATTEMPT)?.execute(params![
                delivery_id,
                a.started,
                a.duration_ms,
                a.status_code,
                a.error,
                a.response_excerpt
            ])?;
            if let Some(target_id) = &record.route_succeeded
                && state.cleared_routes.insert(target_id.clone())
            {
                tx.prepare_cached(sql::END_STREAK)?
                    .execute(params![target_id])?;
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
            // Like the statements in `sql`, it uses $1…$4 first in that order.
            let rows = tx
                .prepare_cached(sql)?
                .query_map(
                    params![owner, lease_until, now, limit],
                    DeliveryRow::from_sqlite,
                )?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(WriteResult::Claimed(rows))
        }
        WriteOp::Finish {
            delivery_id,
            owner,
            status,
            reason,
            now,
        } => {
            let updated = tx.prepare_cached(sql::FINISH)?.execute(params![
                status.as_str(),
                reason,
                now,
                delivery_id,
                owner
            ])?;
            Ok(WriteResult::Done(updated > 0))
        }
    }
}
