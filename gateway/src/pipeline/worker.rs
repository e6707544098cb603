//! The delivery workers: claiming and concurrency, nothing else. Due jobs
//! are leased in chunks and each runs through the attempt chain
//! (`attempt.rs`) on its own task, at most `concurrency` at once. One
//! cancellation token stops claiming, lets in-flight jobs finish, and
//! releases what is left.

use super::attempt::Chain;
use super::authorize::TokenCache;
use super::deliver::{self, HostLimits, HttpSettings};
use super::record::{Recorder, RetryPolicy};
use super::route::Routes;
use crate::model::{OrgId, new_id, now_ms};
use crate::plugin::Registry;
use crate::store::{Claim, Store};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

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

/// The delivery pipeline of one replica: the claim loop and the chain its
/// jobs run through.
#[derive(Debug)]
pub struct Pipeline {
    chain: Arc<Chain>,
    settings: WorkerSettings,
}

impl Pipeline {
    /// A pipeline over `store` and `registry`.
    pub fn new(store: Store, registry: Arc<Registry>, settings: WorkerSettings) -> Arc<Self> {
        // One wake-up for every source of new work: the store's commits
        // (events, replays) and this replica's retries and fan-outs.
        let wake = store.queue_changed();
        let chain = Chain {
            http: deliver::client(&settings.http),
            allow_private: settings.http.allow_private,
            hosts: HostLimits::new(settings.per_endpoint),
            routes: Routes::default(),
            tokens: TokenCache::default(),
            recorder: Recorder {
                store: store.clone(),
                owner: new_id("worker"),
                retry: settings.retry.clone(),
                disable_after: settings.disable_after,
                wake: wake.clone(),
            },
            wake,
            store,
            registry,
        };
        Arc::new(Self {
            chain: Arc::new(chain),
            settings,
        })
    }

    /// Drops a route from the cache after it changed.
    pub fn forget_target(&self, id: &str) {
        self.chain.routes.forget(id);
    }

    /// Tokens fetched so far.
    pub fn token_fetches(&self) -> u64 {
        self.chain.tokens.fetches()
    }

    fn owner(&self) -> &str {
        &self.chain.recorder.owner
    }

    /// Claims and processes jobs until `cancel` fires; then waits for the
    /// jobs in flight (up to the HTTP timeout) and releases any left.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        let slots = Arc::new(Semaphore::new(self.settings.concurrency));
        let mut tasks = JoinSet::new();
        tracing::info!(owner = %self.owner(), concurrency = self.settings.concurrency, "delivery workers started");
        // Claim in chunks: one claim per finished job would put a write per
        // delivery on the queue's hot row set.
        let chunk = (self.settings.concurrency / 4).clamp(1, 32);
        while !cancel.is_cancelled() {
            while tasks.try_join_next().is_some() {}
            let free = slots.available_permits();
            if free == 0 || (free < chunk && !tasks.is_empty()) {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tasks.join_next() => continue,
                    _ = tokio::time::sleep(Duration::from_millis(2)), if free > 0 => {}
                }
            }
            let claim = match self.claim(free).await {
                Ok(claim) => claim,
                Err(error) => {
                    tracing::warn!(%error, "could not claim deliveries; retrying");
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_millis(500)) => continue,
                    }
                }
            };
            let claimed = claim.deliveries.len();
            let mut events: HashMap<(OrgId, String), _> = claim
                .events
                .into_iter()
                .map(|e| ((e.organization_id.clone(), e.id.clone()), e))
                .collect();
            for delivery in claim.deliveries {
                let permit = slots
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("the semaphore is never closed");
                let chain = self.chain.clone();
                let event =
                    events.remove(&(delivery.organization_id.clone(), delivery.event_id.clone()));
                tasks.spawn(async move {
                    chain.run(delivery, event).await;
                    drop(permit);
                });
            }
            if claimed < free {
                // Nothing more is claimable: sleep until woken, the next due
                // job, or the poll interval (which also finds expired leases).
                let wait = claim.next_due.map_or(self.settings.poll, |at| {
                    Duration::from_millis(
                        (at - now_ms()).clamp(1, self.settings.poll.as_millis() as i64) as u64,
                    )
                });
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = self.chain.wake.notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
        self.drain(tasks).await;
        tracing::info!("delivery workers stopped");
    }

    async fn claim(&self, free: usize) -> Result<Claim, crate::store::StoreError> {
        let now = now_ms();
        let lease_until = now + self.settings.lease.as_millis() as i64;
        self.chain
            .store
            .claim(self.owner(), now, lease_until, free as i64)
            .await
    }

    /// Waits for the jobs in flight (up to the HTTP timeout), then releases
    /// the leases of any left.
    async fn drain(&self, mut tasks: JoinSet<()>) {
        let grace = self.settings.http.timeout + Duration::from_secs(5);
        let _ =
            tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
        tasks.abort_all();
        match self
            .chain
            .store
            .release_leases(self.owner(), now_ms())
            .await
        {
            Ok(n) if n > 0 => {
                tracing::info!(released = n, "released leases of unfinished deliveries")
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, "could not release leases; they expire on their own")
            }
        }
    }
}
