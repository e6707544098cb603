//! Every hot-path write, written once against [`Executor`]: ingest (the
//! event, its routes and their deliveries), claim, transform results,
//! attempt records, route health, replay, lease release. A batch of
//! operations is applied kind by kind, many rows per statement, in one
//! transaction; each operation gets its own result.

use super::executor::{Dialect, Executor, FromRow, Param, Row};
use super::sql::{self, MultiRow, chunks};
use super::{Claim, DeliveryFilter, Ingested, RecordResult, Recorded, RouteHealth};
use crate::model::{
    Attempt, Delivery, DeliveryStatus, EpochMs, Event, Filter, FilterInput, Method, Ordering,
    OrgId, PreparedRequest, Route, TargetKind, new_id,
};
use crate::store::StoreError;
use crate::store::rows::{self, DeliveryRow, EventRow, method, stored_filter};
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// A delivery's identity, enough to fan a transform out.
#[derive(Debug, Clone)]
pub(crate) struct DeliveryKey {
    pub id: String,
    pub organization_id: OrgId,
    pub event_id: String,
    pub event_type: String,
    pub target_kind: TargetKind,
    pub target_id: String,
    pub endpoint: String,
    pub method: Method,
    pub fifo_key: Option<String>,
    pub trace_context: Option<String>,
}

impl From<&Delivery> for DeliveryKey {
    fn from(d: &Delivery) -> Self {
        Self {
            id: d.id.clone(),
            organization_id: d.organization_id.clone(),
            event_id: d.event_id.clone(),
            event_type: d.event_type.clone(),
            target_kind: d.target_kind,
            target_id: d.target_id.clone(),
            endpoint: d.endpoint.clone(),
            method: d.method,
            fifo_key: d.fifo_key.clone(),
            trace_context: d.trace_context.clone(),
        }
    }
}

/// One write.
#[derive(Debug)]
pub(crate) enum WriteOp {
    Ingest {
        event: Event,
        /// Refuse the event when it would make more deliveries than this.
        max_deliveries: usize,
    },
    Claim {
        /// This claim's own name: what fences its records.
        lease: String,
        now: EpochMs,
        lease_until: EpochMs,
        limit: i64,
        /// Organizations to skip (at their limit in flight).
        held: Vec<OrgId>,
    },
    StoreTransform {
        delivery: DeliveryKey,
        owner: String,
        requests: Vec<PreparedRequest>,
        now: EpochMs,
        /// Refuse a fan-out past this many deliveries of the event.
        max_deliveries: usize,
    },
    Record(Recorded),
    DisableRoute {
        organization_id: OrgId,
        kind: TargetKind,
        target_id: String,
        reason: String,
        now: EpochMs,
    },
    /// One bounded step of a replay: the next `limit` matching deliveries
    /// after `cursor`.
    Replay {
        organization_id: OrgId,
        id: Option<String>,
        filter: DeliveryFilter,
        cursor: String,
        limit: i64,
        now: EpochMs,
    },
    /// Every lease whose claim's name starts with `owner`.
    ReleaseLeases {
        owner: String,
        now: EpochMs,
    },
    /// Deletes up to `limit` events accepted before `before` whose
    /// deliveries are all final, with their deliveries and attempts.
    Purge {
        before: EpochMs,
        limit: i64,
    },
    /// Extends leases (delivery id, claim) whose attempts still run.
    RenewLeases {
        leases: Vec<(String, String)>,
        until: EpochMs,
    },
}

impl WriteOp {
    /// Accepted events must be on disk before the caller answers 202.
    pub(super) fn needs_sync(&self) -> bool {
        matches!(self, Self::Ingest { .. })
    }

    /// Whether it may make deliveries due now, for idle workers to claim.
    pub(super) fn queues_work(&self) -> bool {
        matches!(
            self,
            Self::Ingest { .. } | Self::Replay { .. } | Self::ReleaseLeases { .. }
        )
    }
}

/// What one write did.
#[derive(Debug)]
pub(crate) enum WriteResult {
    Ingested(Ingested),
    /// The event was refused: it would make `deliveries` deliveries, more
    /// than `limit`.
    TooManyDeliveries {
        deliveries: usize,
        limit: usize,
    },
    Claimed(Claim),
    /// The new (fanned-out) delivery ids, or `None` when the lease was lost.
    Transformed(Option<Vec<String>>),
    Recorded(RecordResult),
    /// Rows changed.
    Changed(u64),
    /// How many a replay step queued, and the cursor after it (`None`: done).
    Replayed(u64, Option<String>),
}

/// Applies `ops` in the current transaction: one result per operation, in
/// order. Kinds go in a fixed order: ingests, transform results and records
/// first, claims last (so a claim sees what the same batch queued or
/// released).
pub(super) async fn apply<E: Executor>(
    db: &mut E,
    ops: &[&WriteOp],
) -> Result<Vec<WriteResult>, StoreError> {
    let mut out: Vec<Option<WriteResult>> = ops.iter().map(|_| None).collect();
    let pick =
        |f: fn(&WriteOp) -> bool| -> Vec<usize> { (0..ops.len()).filter(|&i| f(ops[i])).collect() };
    ingest(
        db,
        ops,
        &pick(|op| matches!(op, WriteOp::Ingest { .. })),
        &mut out,
    )
    .await?;
    store_transforms(
        db,
        ops,
        &pick(|op| matches!(op, WriteOp::StoreTransform { .. })),
        &mut out,
    )
    .await?;
    records(
        db,
        ops,
        &pick(|op| matches!(op, WriteOp::Record(_))),
        &mut out,
    )
    .await?;
    for i in pick(|op| {
        matches!(
            op,
            WriteOp::DisableRoute { .. }
                | WriteOp::Replay { .. }
                | WriteOp::ReleaseLeases { .. }
                | WriteOp::RenewLeases { .. }
                | WriteOp::Purge { .. }
        )
    }) {
        out[i] = Some(single(db, ops[i]).await?);
    }
    for i in pick(|op| matches!(op, WriteOp::Claim { .. })) {
        out[i] = Some(claim(db, ops[i]).await?);
    }
    out.into_iter()
        .map(|r| r.ok_or_else(|| StoreError::Corrupt("a write operation had no result".into())))
        .collect()
}

/// Runs `statement` over `rows`, [`sql::MAX_ROWS`] at a time; `bind` adds
/// one row's parameters. Returns what the statement returned.
async fn many<'p, E: Executor, T, R: FromRow>(
    db: &mut E,
    statement: &MultiRow,
    rows: &'p [T],
    bind: impl Fn(&'p T, &mut Vec<Param<'p>>),
) -> Result<Vec<R>, StoreError> {
    let mut returned = Vec::new();
    for (start, len) in chunks(rows.len()) {
        let mut params = Vec::with_capacity(len * statement.params);
        for row in &rows[start..start + len] {
            bind(row, &mut params);
        }
        debug_assert_eq!(params.len(), len * statement.params);
        returned.extend(db.fetch::<R>(&statement.sql(len), &params).await?);
    }
    Ok(returned)
}

/// A row returned for its side effect only.
struct Nothing;

impl FromRow for Nothing {
    fn from_row(_: &impl Row) -> Result<Self, StoreError> {
        Ok(Self)
    }
}

/// Splits `items` into passes in which no key appears twice: a statement
/// that updates from many rows must not name one target row twice.
fn unique_passes<T: Copy>(items: &[T], key: impl Fn(T) -> String) -> Vec<Vec<T>> {
    let mut passes: Vec<(HashSet<String>, Vec<T>)> = Vec::new();
    for &item in items {
        let k = key(item);
        match passes.iter_mut().find(|(seen, _)| !seen.contains(&k)) {
            Some((seen, pass)) => {
                seen.insert(k);
                pass.push(item);
            }
            None => passes.push((HashSet::from([k]), vec![item])),
        }
    }
    passes.into_iter().map(|(_, pass)| pass).collect()
}

/// A delivery row to insert.
struct NewDelivery<'a> {
    id: String,
    key: DeliveryRef<'a>,
    body: Option<&'a PreparedRequest>,
    headers: Option<String>,
    at: EpochMs,
    /// Its FIFO queue, when its destination is FIFO.
    fifo_key: Option<String>,
}

/// Where a new delivery goes, borrowed from its event or parent delivery.
struct DeliveryRef<'a> {
    organization_id: &'a OrgId,
    event_id: &'a str,
    event_type: &'a str,
    target_kind: TargetKind,
    target_id: &'a str,
    endpoint: &'a str,
    method: Method,
    trace_context: Option<&'a str>,
}

impl<'a> NewDelivery<'a> {
    /// A delivery of a new event along one of its routes.
    fn routed(e: &'a Event, route: &'a Route) -> Self {
        Self {
            id: new_id("dlv"),
            key: DeliveryRef {
                organization_id: &e.organization_id,
                event_id: &e.id,
                event_type: &e.event_type,
                target_kind: route.target_kind,
                target_id: &route.target_id,
                endpoint: &route.endpoint,
                method: route.method,
                trace_context: e.trace_context.as_deref(),
            },
            body: None,
            headers: None,
            at: e.created,
            fifo_key: (route.ordering == Ordering::Fifo)
                .then(|| fifo_key(&route.target_id, &route.endpoint)),
        }
    }

    /// A further request of a transform, as a delivery of its own.
    fn fanned(parent: &'a DeliveryKey, request: &'a PreparedRequest, at: EpochMs) -> Self {
        Self {
            id: new_id("dlv"),
            key: DeliveryRef {
                organization_id: &parent.organization_id,
                event_id: &parent.event_id,
                event_type: &parent.event_type,
                target_kind: parent.target_kind,
                target_id: &parent.target_id,
                endpoint: &parent.endpoint,
                method: parent.method,
                trace_context: parent.trace_context.as_deref(),
            },
            body: Some(request),
            headers: Some(serde_json::to_string(&request.headers).unwrap_or_default()),
            at,
            fifo_key: parent.fifo_key.clone(),
        }
    }
}

/// The queue of a FIFO destination: one subscription URL, one integration
/// hook's endpoint.
fn fifo_key(target_id: &str, endpoint: &str) -> String {
    format!("{target_id} {endpoint}")
}

async fn insert_deliveries<E: Executor>(
    db: &mut E,
    rows: &[NewDelivery<'_>],
) -> Result<(), StoreError> {
    many::<_, _, Nothing>(db, &sql::INSERT_DELIVERIES, rows, |d, p| {
        p.extend([
            Param::from(&d.id),
            d.key.organization_id.as_str().into(),
            d.key.event_id.into(),
            d.key.event_type.into(),
            d.key.target_kind.as_str().into(),
            d.key.target_id.into(),
            d.key.endpoint.into(),
            d.key.method.as_str().into(),
            d.body.is_some().into(),
            d.body.map(|b| b.body.as_slice()).into(),
            d.body.map(|b| b.content_type.as_str()).into(),
            d.headers.as_deref().into(),
            d.at.into(),
            d.fifo_key.as_deref().into(),
            d.key.trace_context.into(),
        ])
    })
    .await
    .map(drop)
}

/// Ingests: each new event with one delivery per route; an id seen before
/// (earlier, or earlier in this batch) creates nothing and reports the
/// deliveries it has. An event that would make more deliveries than its
/// limit is refused before anything of it is written.
async fn ingest<E: Executor>(
    db: &mut E,
    ops: &[&WriteOp],
    picked: &[usize],
    out: &mut [Option<WriteResult>],
) -> Result<(), StoreError> {
    let op = |i: usize| match ops[i] {
        WriteOp::Ingest {
            event,
            max_deliveries,
        } => (event, *max_deliveries),
        _ => unreachable!("picked ingests only"),
    };
    let event = |i: usize| op(i).0;
    // The first op of each (organization, id) inserts; later ones repeat it.
    let mut first: HashMap<(&str, &str), usize> = HashMap::new();
    for &i in picked {
        first.entry(key(event(i))).or_insert(i);
    }
    let distinct: Vec<usize> = picked
        .iter()
        .copied()
        .filter(|&i| first[&key(event(i))] == i)
        .collect();
    let routing = route_table(db, distinct.iter().map(|&i| event(i))).await?;
    // Each event's routes, its filters applied once; an event past its
    // limit of deliveries is refused (deliveries, limit) and not written.
    let mut refused: HashMap<(&str, &str), (usize, usize)> = HashMap::new();
    let mut routed: HashMap<(&str, &str), Vec<&Route>> = HashMap::new();
    let mut fits: Vec<&Event> = Vec::with_capacity(distinct.len());
    for &i in &distinct {
        let (e, limit) = op(i);
        let routes = matching(&routing[&route_key(e)], e);
        if routes.len() > limit {
            refused.insert(key(e), (routes.len(), limit));
        } else {
            routed.insert(key(e), routes);
            fits.push(e);
        }
    }
    let new_events = insert_events(db, &fits).await?;
    let created = insert_routed(db, &new_events, &routed).await?;
    let mut existing: HashMap<(&str, &str), Vec<String>> = HashMap::new();
    for &i in picked {
        let e = event(i);
        let k = key(e);
        if let Some(&(deliveries, limit)) = refused.get(&k) {
            out[i] = Some(WriteResult::TooManyDeliveries { deliveries, limit });
            continue;
        }
        let ingested = match created.get(&k) {
            Some(ids) if first[&k] == i => Ingested {
                event_id: e.id.clone(),
                deliveries: ids.clone(),
                created: true,
            },
            _ => {
                if let Entry::Vacant(slot) = existing.entry(k) {
                    slot.insert(
                        db.fetch(
                            sql::EVENT_DELIVERIES,
                            &[e.organization_id.as_str().into(), (&e.id).into()],
                        )
                        .await?,
                    );
                }
                Ingested {
                    event_id: e.id.clone(),
                    deliveries: existing[&k].clone(),
                    created: false,
                }
            }
        };
        out[i] = Some(WriteResult::Ingested(ingested));
    }
    Ok(())
}

/// Inserts `events` (distinct keys); the ones that were new.
async fn insert_events<'e, E: Executor>(
    db: &mut E,
    events: &[&'e Event],
) -> Result<Vec<&'e Event>, StoreError> {
    let inserted: HashSet<(String, String)> =
        many::<_, _, (String, String)>(db, &sql::INSERT_EVENTS, events, |e, p| {
            p.extend([
                Param::from(e.organization_id.as_str()),
                (&e.id).into(),
                (&e.event_type).into(),
                (&e.payload).into(),
                (&e.shop_id).into(),
                e.created.into(),
                e.trace_context.as_deref().into(),
            ])
        })
        .await?
        .into_iter()
        .collect();
    Ok(events
        .iter()
        .copied()
        .filter(|e| inserted.contains(&(e.organization_id.to_string(), e.id.clone())))
        .collect())
}

/// Where events of one organization, type and shop go.
type RouteKey<'e> = (&'e str, &'e str, Option<&'e str>);

fn route_key(e: &Event) -> RouteKey<'_> {
    (
        e.organization_id.as_str(),
        e.event_type.as_str(),
        e.shop_id.as_deref(),
    )
}

/// The routes of `events`, read inside this transaction once per
/// organization, type and shop.
async fn route_table<'e, E: Executor>(
    db: &mut E,
    events: impl Iterator<Item = &'e Event>,
) -> Result<HashMap<RouteKey<'e>, Vec<Route>>, StoreError> {
    let mut routing = HashMap::new();
    for e in events {
        if let Entry::Vacant(slot) = routing.entry(route_key(e)) {
            slot.insert(routes_of(db, e).await?);
        }
    }
    Ok(routing)
}

/// Inserts the deliveries of new events, one per matching route (`routed`);
/// their ids by event.
async fn insert_routed<'e, E: Executor>(
    db: &mut E,
    events: &[&'e Event],
    routed: &HashMap<(&'e str, &'e str), Vec<&'e Route>>,
) -> Result<HashMap<(&'e str, &'e str), Vec<String>>, StoreError> {
    let mut created = HashMap::new();
    let mut rows = Vec::new();
    for &e in events {
        let start = rows.len();
        rows.extend(
            routed[&key(e)]
                .iter()
                .map(|&route| NewDelivery::routed(e, route)),
        );
        created.insert(key(e), rows[start..].iter().map(|d| d.id.clone()).collect());
    }
    insert_deliveries(db, &rows).await?;
    Ok(created)
}

fn key(e: &Event) -> (&str, &str) {
    (e.organization_id.as_str(), e.id.as_str())
}

/// An event's routes: every matching integration hook, then every URL of
/// every matching subscription, each with its route's filter (parsed once
/// per route here, evaluated per event by [`matching`]).
async fn routes_of<E: Executor>(db: &mut E, e: &Event) -> Result<Vec<Route>, StoreError> {
    let org = e.organization_id.as_str();
    type RouteRow = (String, String, String, Option<String>, String);
    let hooks: Vec<RouteRow> = db
        .fetch(sql::ROUTE_HOOKS, &[org.into(), (&e.event_type).into()])
        .await?;
    let webhooks: Vec<RouteRow> = db
        .fetch(
            sql::ROUTE_WEBHOOKS,
            &[org.into(), (&e.event_type).into(), (&e.shop_id).into()],
        )
        .await?;
    let mut routes = Vec::with_capacity(hooks.len() + webhooks.len());
    let mut filters: HashMap<String, Option<Arc<Filter>>> = HashMap::new();
    let mut filter_of = |id: &str, text: Option<String>| -> Result<_, StoreError> {
        if let Some(parsed) = filters.get(id) {
            return Ok(parsed.clone());
        }
        let parsed = stored_filter(text.as_deref())?.map(Arc::new);
        filters.insert(id.to_owned(), parsed.clone());
        Ok(parsed)
    };
    for (id, endpoint, m, filter, ordering) in hooks {
        routes.push(Route {
            target_kind: TargetKind::Integration,
            filter: filter_of(&id, filter)?,
            ordering: rows::ordering(&ordering)?,
            target_id: id,
            endpoint,
            method: method(&m)?,
        });
    }
    for (id, urls, m, filter, ordering) in webhooks {
        let urls: Vec<String> =
            serde_json::from_str(&urls).map_err(|e| StoreError::Corrupt(format!("urls: {e}")))?;
        let m = method(&m)?;
        let filter = filter_of(&id, filter)?;
        let ordering = rows::ordering(&ordering)?;
        routes.extend(urls.into_iter().map(|endpoint| Route {
            target_kind: TargetKind::Webhook,
            target_id: id.clone(),
            endpoint,
            method: m,
            filter: filter.clone(),
            ordering,
        }));
    }
    Ok(routes)
}

/// The routes of `routes` whose filter `e` matches (all, without filters).
fn matching<'r>(routes: &'r [Route], e: &Event) -> Vec<&'r Route> {
    let input = FilterInput::new(&e.event_type, e.shop_id.as_deref(), &e.payload);
    routes
        .iter()
        .filter(|r| r.filter.as_ref().is_none_or(|f| f.matches(&input)))
        .collect()
}

/// Transform results: the first request onto the delivery (if its lease
/// holds), the rest as new deliveries of the same event and route.
async fn store_transforms<E: Executor>(
    db: &mut E,
    ops: &[&WriteOp],
    picked: &[usize],
    out: &mut [Option<WriteResult>],
) -> Result<(), StoreError> {
    let op = |i: usize| match ops[i] {
        WriteOp::StoreTransform {
            delivery,
            owner,
            requests,
            now,
            ..
        } => (delivery, owner, requests, *now),
        _ => unreachable!("picked transforms only"),
    };
    let limit = |i: usize| match ops[i] {
        WriteOp::StoreTransform { max_deliveries, .. } => *max_deliveries,
        _ => unreachable!("picked transforms only"),
    };
    for pass in unique_passes(picked, |i| op(i).0.id.clone()) {
        // A fan-out past the event's limit of deliveries stores nothing.
        let mut fits = Vec::with_capacity(pass.len());
        for i in pass {
            let (delivery, _, requests, _) = op(i);
            match over_limit(db, delivery, requests.len(), limit(i)).await? {
                Some(refused) => out[i] = Some(refused),
                None => fits.push(i),
            }
        }
        let pass = fits;
        let firsts: Vec<usize> = pass
            .iter()
            .copied()
            .filter(|&i| !op(i).2.is_empty())
            .collect();
        let headers: Vec<String> = firsts
            .iter()
            .map(|&i| serde_json::to_string(&op(i).2[0].headers).unwrap_or_default())
            .collect();
        let rows: Vec<(usize, &String)> = firsts.iter().copied().zip(&headers).collect();
        let held: HashSet<String> =
            many::<_, _, String>(db, &sql::STORE_TRANSFORMS, &rows, |&(i, h), p| {
                let (delivery, owner, requests, now) = op(i);
                let first = &requests[0];
                p.extend([
                    Param::from(&delivery.id),
                    first.body.as_slice().into(),
                    (&first.content_type).into(),
                    h.into(),
                    now.into(),
                    owner.into(),
                ])
            })
            .await?
            .into_iter()
            .collect();
        let mut fanned = Vec::new();
        for &i in &pass {
            let (delivery, _, requests, now) = op(i);
            if requests.is_empty() {
                out[i] = Some(WriteResult::Transformed(Some(Vec::new())));
                continue;
            }
            if !held.contains(&delivery.id) {
                out[i] = Some(WriteResult::Transformed(None));
                continue;
            }
            let start = fanned.len();
            fanned.extend(
                requests[1..]
                    .iter()
                    .map(|request| NewDelivery::fanned(delivery, request, now)),
            );
            let ids = fanned[start..].iter().map(|d| d.id.clone()).collect();
            out[i] = Some(WriteResult::Transformed(Some(ids)));
        }
        insert_deliveries(db, &fanned).await?;
    }
    Ok(())
}

/// The refusal of a transform whose `requests` would take its event past
/// `limit` deliveries, if they would.
async fn over_limit<E: Executor>(
    db: &mut E,
    delivery: &DeliveryKey,
    requests: usize,
    limit: usize,
) -> Result<Option<WriteResult>, StoreError> {
    if requests <= 1 {
        return Ok(None);
    }
    let made: Vec<i64> = db
        .fetch(
            sql::EVENT_DELIVERY_COUNT,
            &[
                delivery.organization_id.as_str().into(),
                (&delivery.event_id).into(),
            ],
        )
        .await?;
    let deliveries = made.first().copied().unwrap_or(0) as usize + requests - 1;
    Ok((deliveries > limit).then_some(WriteResult::TooManyDeliveries { deliveries, limit }))
}

/// Attempt records and final statuses: the delivery's new state (if its
/// lease holds), the attempt row, and the route's failure streak.
/// The attempt rows of records whose lease held, each numbered by its
/// delivery's attempt count after the record.
async fn insert_attempts<E: Executor>(
    db: &mut E,
    attempts: &[(&Attempt, i64)],
) -> Result<(), StoreError> {
    let sent: Vec<Option<String>> = attempts
        .iter()
        .map(|(a, _)| {
            (!a.request_headers.is_empty())
                .then(|| serde_json::to_string(&a.request_headers).unwrap_or_default())
        })
        .collect();
    let rows: Vec<(&Attempt, i64, &Option<String>)> = attempts
        .iter()
        .zip(&sent)
        .map(|(&(a, n), sent)| (a, n, sent))
        .collect();
    many::<_, _, Nothing>(db, &sql::INSERT_ATTEMPTS, &rows, |&(a, n, sent), p| {
        p.extend([
            Param::from(&a.delivery_id),
            n.into(),
            a.started.into(),
            a.duration_ms.into(),
            a.status_code.into(),
            (&a.error).into(),
            (&a.response_excerpt).into(),
            sent.into(),
        ])
    })
    .await?;
    Ok(())
}

async fn records<E: Executor>(
    db: &mut E,
    ops: &[&WriteOp],
    picked: &[usize],
    out: &mut [Option<WriteResult>],
) -> Result<(), StoreError> {
    let record = |i: usize| match ops[i] {
        WriteOp::Record(r) => r,
        _ => unreachable!("picked records only"),
    };
    for pass in unique_passes(picked, |i| record(i).delivery_id.clone()) {
        let held: HashMap<String, i64> =
            many::<_, _, (String, i64)>(db, &sql::RECORDS, &pass, |&i, p| {
                let r = record(i);
                let completed = (r.status != DeliveryStatus::Pending).then_some(r.now);
                let attempt = r.attempt.as_ref();
                p.extend([
                    Param::from(&r.delivery_id),
                    r.status.as_str().into(),
                    i64::from(attempt.is_some()).into(),
                    r.next_attempt_at.into(),
                    (&r.error).into(),
                    attempt.and_then(|a| a.status_code).into(),
                    r.now.into(),
                    completed.into(),
                    (&r.lease).into(),
                    attempt.map(|a| a.duration_ms).into(),
                ])
            })
            .await?
            .into_iter()
            .collect();
        let attempts: Vec<(&Attempt, i64)> = pass
            .iter()
            .filter_map(|&i| {
                let a = record(i).attempt.as_ref()?;
                held.get(&a.delivery_id).map(|&n| (a, n))
            })
            .collect();
        insert_attempts(db, &attempts).await?;
        let mut ended: Vec<&str> = pass
            .iter()
            .filter(|&&i| held.contains_key(&record(i).delivery_id))
            .filter_map(|&i| match &record(i).route {
                RouteHealth::Succeeded { target_id } => Some(target_id.as_str()),
                _ => None,
            })
            .collect();
        ended.sort_unstable();
        ended.dedup();
        let mut streaks: HashMap<String, EpochMs> =
            many::<_, _, (String, i64)>(db, &sql::END_STREAKS, &ended, |&t, p| p.push(t.into()))
                .await?
                .into_iter()
                .collect();
        for &i in &pass {
            let r = record(i);
            let held = held.contains_key(&r.delivery_id);
            let (failing_since, recovered_from) = match &r.route {
                RouteHealth::Failed { target_id } if held => {
                    (Some(note_failure(db, target_id, r.now).await?), None)
                }
                // The first success of the batch reports the streak it ended.
                RouteHealth::Succeeded { target_id } if held => (None, streaks.remove(target_id)),
                _ => (None, None),
            };
            out[i] = Some(WriteResult::Recorded(RecordResult {
                held,
                failing_since,
                recovered_from,
            }));
        }
    }
    Ok(())
}

/// Starts a route's failure streak unless one is running; since when it runs.
async fn note_failure<E: Executor>(
    db: &mut E,
    target_id: &str,
    now: EpochMs,
) -> Result<EpochMs, StoreError> {
    db.execute(sql::NOTE_FAILURE, &[target_id.into(), now.into()])
        .await?;
    let since: Vec<i64> = db.fetch(sql::FAILING_SINCE, &[target_id.into()]).await?;
    Ok(since.first().copied().unwrap_or(now))
}

/// The operations applied one at a time.
async fn single<E: Executor>(db: &mut E, op: &WriteOp) -> Result<WriteResult, StoreError> {
    match op {
        WriteOp::DisableRoute {
            organization_id,
            kind,
            target_id,
            reason,
            now,
        } => {
            let statement = match kind {
                TargetKind::Integration => sql::DISABLE_INTEGRATION,
                TargetKind::Webhook => sql::DISABLE_WEBHOOK,
            };
            let n = db
                .execute(
                    statement,
                    &[
                        reason.into(),
                        (*now).into(),
                        target_id.into(),
                        organization_id.as_str().into(),
                    ],
                )
                .await?;
            Ok(WriteResult::Changed(n))
        }
        WriteOp::Replay {
            organization_id,
            id,
            filter,
            cursor,
            limit,
            now,
        } => {
            let ids: Vec<String> = db
                .fetch(
                    sql::REPLAY_SELECT,
                    &[
                        organization_id.as_str().into(),
                        cursor.into(),
                        id.as_deref().into(),
                        filter.status.map(DeliveryStatus::as_str).into(),
                        filter.since.into(),
                        filter.until.into(),
                        (&filter.event_type).into(),
                        (&filter.destination_id).into(),
                        (*limit).into(),
                    ],
                )
                .await?;
            let replayed: Vec<String> = many(db, &sql::REPLAY, &ids, |id, p| {
                p.extend([Param::from(id), (*now).into()])
            })
            .await?;
            let next = (ids.len() as i64 >= *limit)
                .then(|| ids.last().cloned())
                .flatten();
            Ok(WriteResult::Replayed(replayed.len() as u64, next))
        }
        WriteOp::ReleaseLeases { owner, now } => {
            let n = db
                .execute(sql::RELEASE_LEASES, &[(*now).into(), owner.into()])
                .await?;
            Ok(WriteResult::Changed(n))
        }
        WriteOp::Purge { before, limit } => purge(db, *before, *limit).await,
        WriteOp::RenewLeases { leases, until } => renew_leases(db, leases, *until).await,
        _ => Err(StoreError::Corrupt("not a single operation".into())),
    }
}

/// Deletes up to `limit` events past `before` whose deliveries are all
/// final, with those deliveries and their attempts.
async fn purge<E: Executor>(
    db: &mut E,
    before: EpochMs,
    limit: i64,
) -> Result<WriteResult, StoreError> {
    let events: Vec<(String, String)> = db
        .fetch(sql::PURGEABLE_EVENTS, &[before.into(), limit.into()])
        .await?;
    for statement in [
        &sql::PURGE_ATTEMPTS,
        &sql::PURGE_DELIVERIES,
        &sql::PURGE_EVENTS,
    ] {
        many::<_, _, Nothing>(db, statement, &events, |(org, id), p| {
            p.extend([Param::from(org), id.into()])
        })
        .await?;
    }
    Ok(WriteResult::Changed(events.len() as u64))
}

/// Extends the leases (delivery id, claim) of attempts still running.
async fn renew_leases<E: Executor>(
    db: &mut E,
    leases: &[(String, String)],
    until: EpochMs,
) -> Result<WriteResult, StoreError> {
    let statement = sql::renew_leases(db.dialect());
    let mut n = 0;
    for (start, len) in chunks(leases.len()) {
        let mut params = Vec::with_capacity(len * statement.params);
        for (id, lease) in &leases[start..start + len] {
            params.extend([Param::from(id), lease.into(), until.into()]);
        }
        n += db.execute(&statement.sql(len), &params).await?;
    }
    Ok(WriteResult::Changed(n))
}

/// Leases due deliveries and reads, in the same transaction, the events the
/// untransformed ones need and when the next one is due.
async fn claim<E: Executor>(db: &mut E, op: &WriteOp) -> Result<WriteResult, StoreError> {
    let WriteOp::Claim {
        lease,
        now,
        lease_until,
        limit,
        held,
    } = op
    else {
        return Err(StoreError::Corrupt("not a claim".into()));
    };
    let held: Vec<&str> = held.iter().map(OrgId::as_str).collect();
    let held = serde_json::to_string(&held).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let rows: Vec<DeliveryRow> = db
        .fetch(
            sql::claim(db.dialect()),
            &[
                lease.into(),
                (*lease_until).into(),
                (*now).into(),
                held.as_str().into(),
                (*limit).into(),
            ],
        )
        .await?;
    let deliveries = rows
        .into_iter()
        .map(DeliveryRow::into_domain)
        .collect::<Result<Vec<_>, _>>()?;
    let mut wanted: Vec<(&str, &str)> = deliveries
        .iter()
        .filter(|d| !d.transformed)
        .map(|d| (d.organization_id.as_str(), d.event_id.as_str()))
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    let events: Vec<EventRow> = many(db, &sql::CLAIMED_EVENTS, &wanted, |&(org, id), p| {
        p.extend([Param::from(org), id.into()])
    })
    .await?;
    let next_due = if (deliveries.len() as i64) < *limit {
        let statement = sql::next_due(db.dialect());
        let params: &[Param<'_>] = match db.dialect() {
            Dialect::Sqlite => &[held.as_str().into()],
            Dialect::Postgres => &[held.as_str().into(), (*now).into()],
        };
        let due: Vec<i64> = db.fetch(statement, params).await?;
        due.first().copied()
    } else {
        None
    };
    Ok(WriteResult::Claimed(Claim {
        lease: lease.clone(),
        deliveries,
        events: events.into_iter().map(EventRow::into_domain).collect(),
        next_due,
    }))
}
