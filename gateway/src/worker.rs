//! The delivery workers: claim due jobs under a lease, then run each
//! through transform → authorize → sign → deliver → record. Bounded
//! concurrency overall and per endpoint host; one cancellation token stops
//! claiming, lets in-flight jobs finish, and releases what is left.

use crate::authorize::TokenCache;
use crate::deliver::{self, Answer, HttpSettings, Outgoing};
use crate::model::{Attempt, Delivery, DeliveryStatus, Event, TargetKind, now_ms};
use crate::plugin::Registry;
use crate::record::RetryPolicy;
use crate::sign;
use crate::store::{AttemptRecord, Store, StoreError};
use crate::transform::{self, Target, Transformed};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// How the workers run.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// Deliveries in flight at once to one host.
    pub per_endpoint: usize,
    /// How long a claimed job is leased.
    pub lease: Duration,
    /// How often to look for due jobs when not woken.
    pub poll: Duration,
    /// Disable a route after it failed continuously this long.
    pub disable_after: Duration,
    /// The HTTP client's settings.
    pub http: HttpSettings,
    /// The retry schedule.
    pub retry: RetryPolicy,
}

/// The delivery pipeline of one replica.
#[derive(Debug)]
pub struct Pipeline {
    store: Store,
    registry: Arc<Registry>,
    tokens: TokenCache,
    http: reqwest::Client,
    settings: WorkerSettings,
    owner: String,
    wake: Notify,
    per_endpoint: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// Routes read recently, by id: most deliveries go to a few routes.
    targets: Mutex<HashMap<String, (Instant, Arc<Target>)>>,
}

/// How long a route read from the database is reused. Changes made through
/// this replica's API apply at once ([`Pipeline::forget_target`]); other
/// replicas see them within this time.
const TARGET_TTL: Duration = Duration::from_secs(1);

impl Pipeline {
    /// A pipeline over `store` and `registry`.
    pub fn new(store: Store, registry: Arc<Registry>, settings: WorkerSettings) -> Arc<Self> {
        Arc::new(Self {
            http: deliver::client(&settings.http),
            store,
            registry,
            tokens: TokenCache::default(),
            owner: crate::model::new_id("worker"),
            wake: Notify::new(),
            per_endpoint: Mutex::default(),
            targets: Mutex::default(),
            settings,
        })
    }

    /// Wakes the workers (new jobs were committed).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Drops a route from the cache after it changed.
    pub fn forget_target(&self, id: &str) {
        self.targets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }

    /// Tokens fetched so far.
    pub fn token_fetches(&self) -> u64 {
        self.tokens.fetches()
    }

    /// Claims and processes jobs until `cancel` fires; then waits for the
    /// jobs in flight (up to the HTTP timeout) and releases any left.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        let slots = Arc::new(Semaphore::new(self.settings.concurrency));
        let mut tasks = JoinSet::new();
        tracing::info!(owner = %self.owner, concurrency = self.settings.concurrency, "delivery workers started");
        while !cancel.is_cancelled() {
            while tasks.try_join_next().is_some() {}
            let free = slots.available_permits();
            // Claim in chunks: one claim per finished job would put a write
            // per delivery on the queue's hot row set.
            let chunk = (self.settings.concurrency / 4).clamp(1, 32);
            if free == 0 || (free < chunk && !tasks.is_empty()) {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tasks.join_next() => continue,
                    _ = tokio::time::sleep(Duration::from_millis(2)), if free > 0 => {}
                }
            }
            let now = now_ms();
            let lease_until = now + self.settings.lease.as_millis() as i64;
            let jobs = match self
                .store
                .claim(&self.owner, now, lease_until, free as i64)
                .await
            {
                Ok(jobs) => jobs,
                Err(error) => {
                    tracing::warn!(%error, "could not claim deliveries; retrying");
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_millis(500)) => continue,
                    }
                }
            };
            let claimed = jobs.len();
            // The payloads of the jobs still to transform, in one read.
            let keys: Vec<(String, String)> = jobs
                .iter()
                .filter(|j| !j.transformed)
                .map(|j| (j.organization_id.clone(), j.event_id.clone()))
                .collect();
            let mut events = match self.store.get_events(&keys).await {
                Ok(events) => events,
                Err(error) => {
                    tracing::warn!(%error, "could not read events; each job reads its own");
                    HashMap::new()
                }
            };
            for job in jobs {
                let permit = slots
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("the semaphore is never closed");
                let pipeline = self.clone();
                let event = events.remove(&(job.organization_id.clone(), job.event_id.clone()));
                tasks.spawn(async move {
                    pipeline.process(job, event).await;
                    drop(permit);
                });
            }
            if claimed < free {
                // Nothing more is claimable: sleep until woken, the next due
                // job, or the poll interval (which also finds expired leases).
                let now = now_ms();
                let wait = match self.store.next_due(now).await {
                    Ok(Some(at)) => Duration::from_millis(
                        (at - now).clamp(1, self.settings.poll.as_millis() as i64) as u64,
                    ),
                    _ => self.settings.poll,
                };
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
        let grace = self.settings.http.timeout + Duration::from_secs(5);
        let _ =
            tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
        tasks.abort_all();
        match self.store.release_leases(&self.owner).await {
            Ok(n) if n > 0 => {
                tracing::info!(released = n, "released leases of unfinished deliveries")
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, "could not release leases; they expire on their own")
            }
        }
        tracing::info!("delivery workers stopped");
    }

    /// One job through every stage. Errors are recorded on the delivery.
    async fn process(&self, delivery: Delivery, event: Option<Event>) {
        let span = tracing::info_span!("delivery", delivery_id = %delivery.id, event_id = %delivery.event_id, route = %delivery.target_id);
        // `instrument`, not `enter`: the span must follow the future across awaits.
        let result = self
            .try_process(delivery, event)
            .instrument(span.clone())
            .await;
        if let Err(error) = result {
            span.in_scope(|| tracing::warn!(%error, "delivery step failed; the lease will expire and it will be retried"));
        }
    }

    async fn try_process(
        &self,
        mut delivery: Delivery,
        event: Option<Event>,
    ) -> Result<(), StoreError> {
        let started = now_ms();
        let target = match self.load_target(&delivery).await? {
            Some(target) => target,
            None => {
                self.finish(
                    &delivery,
                    DeliveryStatus::Cancelled,
                    "the route no longer exists",
                )
                .await?;
                return Ok(());
            }
        };
        if let Some(reason) = target.inactive_reason() {
            self.finish(
                &delivery,
                DeliveryStatus::Cancelled,
                &format!("the route is inactive: {reason}"),
            )
            .await?;
            return Ok(());
        }

        // transform
        if !delivery.transformed {
            let event = match event {
                Some(event) => event,
                None => {
                    self.store
                        .get_event(&delivery.organization_id, &delivery.event_id)
                        .await?
                }
            };
            match transform::transform(&self.registry, &event, &target).await {
                Transformed::Requests(requests) => {
                    let added = self
                        .store
                        .store_transform(&delivery, &self.owner, &requests, now_ms())
                        .await?;
                    if !added.is_empty() {
                        tracing::debug!(added = added.len(), "plugin fanned out");
                        self.wake();
                    }
                    let (body, content_type, headers) =
                        requests.into_iter().next().expect("non-empty");
                    delivery.body = Some(body);
                    delivery.content_type = Some(content_type);
                    delivery.headers = headers;
                    delivery.transformed = true;
                }
                Transformed::Drop(reason) => {
                    metrics::counter!("hookgate_deliveries_total", "outcome" => "dropped")
                        .increment(1);
                    self.finish(&delivery, DeliveryStatus::Dropped, &reason)
                        .await?;
                    return Ok(());
                }
                Transformed::Failed(error) => {
                    tracing::warn!(%error, "plugin failed");
                    return self
                        .record(&delivery, started, None, Some(error), None, false, None)
                        .await;
                }
                Transformed::Retry(error) => {
                    return self
                        .record(&delivery, started, None, Some(error), None, true, None)
                        .await;
                }
            }
        }

        // authorize → sign → deliver, refreshing the token once on a 401.
        let mut refreshed = false;
        loop {
            let mut headers = Vec::new();
            if let Target::Integration(integration) = &*target
                && let Some(auth) = &integration.authentication
            {
                match self
                    .tokens
                    .header(&self.http, &integration.id, auth, refreshed)
                    .await
                {
                    Ok(header) => headers.push(header),
                    Err(error) => {
                        return self
                            .record(
                                &delivery,
                                started,
                                None,
                                Some(error.to_string()),
                                None,
                                true,
                                None,
                            )
                            .await;
                    }
                }
            }
            let body = delivery.body.clone().unwrap_or_default();
            let timestamp = now_ms() / 1000;
            let signature = match sign::sign(
                &delivery.id,
                timestamp,
                &body,
                &target.signing_secrets(now_ms()),
            ) {
                Ok(s) => s,
                Err(error) => {
                    return self
                        .record(
                            &delivery,
                            started,
                            None,
                            Some(error.to_string()),
                            None,
                            false,
                            None,
                        )
                        .await;
                }
            };
            headers.push((
                "content-type".into(),
                delivery
                    .content_type
                    .clone()
                    .unwrap_or_else(|| "application/json".into()),
            ));
            headers.push(("webhook-id".into(), signature.id));
            headers.push(("webhook-timestamp".into(), signature.timestamp));
            headers.push(("webhook-signature".into(), signature.signature));
            headers.extend(delivery.headers.iter().cloned());

            let permit = self
                .endpoint_permit(&delivery.endpoint)
                .acquire_owned()
                .await
                .expect("never closed");
            let sent_at = Instant::now();
            let answer = deliver::send(
                &self.http,
                Outgoing {
                    method: delivery.method,
                    url: &delivery.endpoint,
                    headers,
                    body,
                },
                self.settings.http.allow_private,
            )
            .await;
            drop(permit);
            metrics::histogram!("hookgate_attempt_duration_seconds")
                .record(sent_at.elapsed().as_secs_f64());
            return match answer {
                Answer::Unauthorized { excerpt }
                    if !refreshed
                        && matches!(&*target, Target::Integration(i) if i.authentication.is_some()) =>
                {
                    tracing::info!(excerpt = %excerpt.chars().take(200).collect::<String>(), "receiver answered 401; refreshing the token once");
                    refreshed = true;
                    continue;
                }
                Answer::Success { status, excerpt } => {
                    self.record_final(
                        &delivery,
                        started,
                        Some(status),
                        None,
                        Some(excerpt),
                        DeliveryStatus::Delivered,
                    )
                    .await
                }
                Answer::Retry {
                    status,
                    retry_after,
                    error,
                    excerpt,
                } => {
                    self.note_failure(&delivery, &target).await;
                    self.record(
                        &delivery,
                        started,
                        status,
                        Some(error),
                        excerpt,
                        true,
                        retry_after,
                    )
                    .await
                }
                Answer::Unauthorized { excerpt } => {
                    self.note_failure(&delivery, &target).await;
                    self.record(
                        &delivery,
                        started,
                        Some(401),
                        Some("receiver answered 401".into()),
                        Some(excerpt),
                        false,
                        None,
                    )
                    .await
                }
                Answer::Gone { excerpt } => {
                    let reason = format!("endpoint {} answered 410 Gone", delivery.endpoint);
                    tracing::warn!(%reason, "disabling the route");
                    self.store
                        .disable_target(
                            delivery.target_kind,
                            &delivery.target_id,
                            &reason,
                            now_ms(),
                        )
                        .await?;
                    self.record(
                        &delivery,
                        started,
                        Some(410),
                        Some(reason),
                        Some(excerpt),
                        false,
                        None,
                    )
                    .await
                }
                Answer::Fail {
                    status,
                    error,
                    excerpt,
                } => {
                    self.note_failure(&delivery, &target).await;
                    self.record(
                        &delivery,
                        started,
                        status,
                        Some(error),
                        excerpt,
                        false,
                        None,
                    )
                    .await
                }
            };
        }
    }

    async fn load_target(&self, d: &Delivery) -> Result<Option<Arc<Target>>, StoreError> {
        if let Some((at, target)) = self
            .targets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&d.target_id)
            && at.elapsed() < TARGET_TTL
            && target.organization_id() == d.organization_id
        {
            return Ok(Some(target.clone()));
        }
        let loaded = match d.target_kind {
            TargetKind::Integration => self
                .store
                .get_integration(&d.organization_id, &d.target_id)
                .await
                .map(|i| Target::Integration(Box::new(i))),
            TargetKind::Webhook => self
                .store
                .get_webhook(&d.organization_id, &d.target_id)
                .await
                .map(|w| Target::Webhook(Box::new(w))),
        };
        match loaded {
            Ok(target) => {
                let target = Arc::new(target);
                let mut cache = self.targets.lock().unwrap_or_else(|e| e.into_inner());
                if cache.len() > 10_000 {
                    cache.retain(|_, (at, _)| at.elapsed() < TARGET_TTL);
                }
                cache.insert(d.target_id.clone(), (Instant::now(), target.clone()));
                Ok(Some(target))
            }
            Err(StoreError::NotFound) => Ok(None),
            Err(other) => Err(other),
        }
    }

    fn endpoint_permit(&self, endpoint: &str) -> Arc<Semaphore> {
        let host = url::Url::parse(endpoint)
            .ok()
            .and_then(|u| {
                u.host_str()
                    .map(|h| format!("{h}:{}", u.port_or_known_default().unwrap_or(0)))
            })
            .unwrap_or_default();
        let mut map = self.per_endpoint.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(host)
            .or_insert_with(|| Arc::new(Semaphore::new(self.settings.per_endpoint)))
            .clone()
    }

    async fn note_failure(&self, delivery: &Delivery, target: &Target) {
        let now = now_ms();
        match self.store.note_failure(target.id(), now).await {
            Ok(since) if now - since > self.settings.disable_after.as_millis() as i64 => {
                let reason = format!(
                    "failing continuously since {} (more than {})",
                    humantime::format_rfc3339_seconds(
                        std::time::UNIX_EPOCH + Duration::from_millis(since as u64)
                    ),
                    humantime::format_duration(self.settings.disable_after)
                );
                tracing::warn!(%reason, "disabling the route");
                if let Err(error) = self
                    .store
                    .disable_target(delivery.target_kind, target.id(), &reason, now)
                    .await
                {
                    tracing::warn!(%error, "could not disable the route");
                }
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "could not record the route's health"),
        }
    }

    async fn finish(
        &self,
        delivery: &Delivery,
        status: DeliveryStatus,
        reason: &str,
    ) -> Result<(), StoreError> {
        tracing::info!(
            status = status.as_str(),
            reason,
            "delivery finished without an attempt"
        );
        self.store
            .finish_without_attempt(&delivery.id, &self.owner, status, reason, now_ms())
            .await?;
        Ok(())
    }

    async fn record_final(
        &self,
        delivery: &Delivery,
        started: i64,
        status_code: Option<u16>,
        error: Option<String>,
        excerpt: Option<String>,
        status: DeliveryStatus,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let record = AttemptRecord {
            attempt: Attempt {
                delivery_id: delivery.id.clone(),
                attempt: delivery.attempts + 1,
                started,
                duration_ms: now - started,
                status_code: status_code.map(i64::from),
                error,
                response_excerpt: excerpt,
            },
            status,
            next_attempt_at: now,
            route_succeeded: (status == DeliveryStatus::Delivered)
                .then(|| delivery.target_id.clone()),
        };
        metrics::counter!("hookgate_deliveries_total", "outcome" => status.as_str()).increment(1);
        if status == DeliveryStatus::Delivered {
            tracing::debug!(latency_ms = now - delivery.created, "delivered");
        } else {
            tracing::warn!(
                status = status.as_str(),
                error = record.attempt.error.as_deref().unwrap_or(""),
                "delivery gave up"
            );
        }
        if !self
            .store
            .record_attempt(&delivery.id, &self.owner, &record)
            .await?
        {
            tracing::warn!(
                "lease lost before the attempt was recorded; another worker owns the delivery"
            );
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn record(
        &self,
        delivery: &Delivery,
        started: i64,
        status_code: Option<u16>,
        error: Option<String>,
        excerpt: Option<String>,
        retryable: bool,
        retry_after: Option<Duration>,
    ) -> Result<(), StoreError> {
        let made = (delivery.attempts - delivery.attempt_base + 1).max(1) as usize;
        let next = retryable
            .then(|| self.settings.retry.next_delay(made, retry_after))
            .flatten();
        match next {
            Some(delay) => {
                let now = now_ms();
                metrics::counter!("hookgate_deliveries_total", "outcome" => "retry").increment(1);
                tracing::info!(
                    attempt = made,
                    retry_in_ms = delay.as_millis() as u64,
                    error = error.as_deref().unwrap_or(""),
                    "attempt failed; will retry"
                );
                let record = AttemptRecord {
                    attempt: Attempt {
                        delivery_id: delivery.id.clone(),
                        attempt: delivery.attempts + 1,
                        started,
                        duration_ms: now - started,
                        status_code: status_code.map(i64::from),
                        error,
                        response_excerpt: excerpt,
                    },
                    status: DeliveryStatus::Pending,
                    next_attempt_at: now + delay.as_millis() as i64,
                    route_succeeded: None,
                };
                self.store
                    .record_attempt(&delivery.id, &self.owner, &record)
                    .await?;
                // The loop may be asleep until the poll: let it see the retry's time.
                self.wake();
                Ok(())
            }
            None => {
                let status = if retryable {
                    DeliveryStatus::Dead
                } else {
                    DeliveryStatus::Failed
                };
                self.record_final(delivery, started, status_code, error, excerpt, status)
                    .await
            }
        }
    }
}
