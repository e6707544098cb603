//! The delivery workers: claiming and concurrency, nothing else. Due jobs
//! are leased in chunks and each runs through the attempt chain
//! (`attempt.rs`) on its own task, at most `concurrency` at once.
//!
//! Fairness is decided here, at the claim, not by waiting: an organization
//! with `per_organization` deliveries in flight is left out of the next
//! claims until one finishes, so one tenant's backlog to a receiver that
//! hangs holds at most that many of the slots and never stands in front of
//! another tenant's work. (Destinations and token endpoints are bounded in
//! the chain the same way: a delivery whose destination is busy is deferred,
//! never left waiting on a slot.)
//!
//! Every claim has its own name, written on the rows it leases and checked
//! when their outcomes are recorded, so a job reclaimed after its lease
//! expired is recorded once, by its latest claim; and leases of attempts
//! still running are renewed, so a slow attempt does not lose its lease.
//! One cancellation token stops claiming, lets in-flight jobs finish, and
//! releases what is left.

use super::attempt::Chain;
use super::authorize::TokenCache;
use super::clients::HttpClients;
use super::deliver::{DestinationRates, HostLimits, HttpSettings};
use super::record::{Recorder, RetryPolicy};
use super::route::Routes;
use crate::model::{Delivery, Event, OrgId, new_id, now_ms};
use crate::plugin::Registry;
use crate::store::{Claim, Store};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How the workers run.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// Deliveries in flight at once to one destination (a registrable
    /// domain, or an address and port).
    pub per_endpoint: usize,
    /// Deliveries in flight at once for one organization.
    pub per_organization: usize,
    /// Replicas sharing the database: per-destination rate limits are
    /// split evenly between them.
    pub replicas: u32,
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
    /// This replica's name; each claim is named after it.
    owner: String,
    claims: AtomicU64,
    in_flight: InFlight,
}

impl Pipeline {
    /// A pipeline over `store` and `registry`.
    pub fn new(store: Store, registry: Arc<Registry>, settings: WorkerSettings) -> Arc<Self> {
        // One wake-up for every source of new work: the store's commits
        // (events, replays) and this replica's retries and fan-outs.
        let wake = store.queue_changed();
        let chain = Chain {
            http: HttpClients::new(settings.http.clone()),
            allow_private: settings.http.allow_private,
            hosts: HostLimits::new(settings.per_endpoint),
            rates: DestinationRates::new(settings.replicas),
            routes: Routes::default(),
            tokens: TokenCache::default(),
            recorder: Recorder {
                store: store.clone(),
                retry: settings.retry.clone(),
                disable_after: settings.disable_after,
                wake: wake.clone(),
            },
            wake,
            store,
            registry,
        };
        Arc::new(Self {
            in_flight: InFlight::new(settings.per_organization, chain.wake.clone()),
            chain: Arc::new(chain),
            settings,
            owner: new_id("worker"),
            claims: AtomicU64::new(0),
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

    /// Claims and processes jobs until `cancel` fires; then waits for the
    /// jobs in flight (up to the HTTP timeout) and releases any left.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        let slots = Arc::new(Semaphore::new(self.settings.concurrency));
        let mut tasks = JoinSet::new();
        tracing::info!(owner = %self.owner, concurrency = self.settings.concurrency, "delivery workers started");
        let renewing = tokio::spawn(self.clone().renew_leases(cancel.clone()));
        // Claim in chunks: one claim per finished job would put a write per
        // delivery on the queue's hot row set.
        let chunk = (self.settings.concurrency / 4).clamp(1, 32);
        // Claimed past their organization's limit: they start, before any
        // new claim, as soon as their organization has room. They take no
        // slot while they wait (other organizations' work goes on), and
        // there are at most one claim's worth per organization: while
        // they wait, their organization stays at its limit and out of
        // claims.
        let mut parked: VecDeque<Job> = VecDeque::new();
        while !cancel.is_cancelled() {
            while tasks.try_join_next().is_some() {}
            self.unpark(&mut parked, &slots, &mut tasks).await;
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
            let next_due = claim.next_due;
            self.start(claim, &mut parked, &slots, &mut tasks).await;
            if claimed < free {
                // Nothing more is claimable: sleep until woken (new work, or
                // a held organization's job finished), the next due job, or
                // the poll interval (which also finds expired leases).
                let wait = next_due.map_or(self.settings.poll, |at| {
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
        // Job deliveries are leased and not started: released below.
        drop(parked);
        self.drain(tasks).await;
        let _ = renewing.await;
        tracing::info!("delivery workers stopped");
    }

    async fn claim(&self, free: usize) -> Result<Claim, crate::store::StoreError> {
        let now = now_ms();
        let lease_until = now + self.settings.lease.as_millis() as i64;
        let seq = self.claims.fetch_add(1, Ordering::Relaxed);
        let lease = format!("{}/{seq}", self.owner);
        self.chain
            .store
            .claim(&lease, now, lease_until, free as i64, self.in_flight.held())
            .await
    }

    /// Starts a task per claimed delivery. One past its organization's
    /// limit (a claim may take more of one organization than it has room
    /// for) is parked: kept leased (and renewed), and started when its
    /// organization has room, before anything new is claimed.
    async fn start(
        &self,
        claim: Claim,
        parked: &mut VecDeque<Job>,
        slots: &Arc<Semaphore>,
        tasks: &mut JoinSet<()>,
    ) {
        let lease: Arc<str> = claim.lease.into();
        let mut events: HashMap<(OrgId, String), _> = claim
            .events
            .into_iter()
            .map(|e| ((e.organization_id.clone(), e.id.clone()), e))
            .collect();
        for delivery in claim.deliveries {
            let event =
                events.remove(&(delivery.organization_id.clone(), delivery.event_id.clone()));
            let job = Job {
                delivery,
                event,
                lease: lease.clone(),
            };
            if let Err(job) = self.spawn(job, slots, tasks).await {
                self.in_flight.park(&job.delivery.id, &job.lease);
                parked.push_back(job);
            }
        }
    }

    /// Starts the parked deliveries whose organizations have room now.
    async fn unpark(
        &self,
        parked: &mut VecDeque<Job>,
        slots: &Arc<Semaphore>,
        tasks: &mut JoinSet<()>,
    ) {
        for _ in 0..parked.len() {
            let Some(job) = parked.pop_front() else { break };
            if let Err(job) = self.spawn(job, slots, tasks).await {
                parked.push_back(job);
            }
        }
    }

    /// Runs `job` on a task of its own, unless its organization is at its
    /// limit (then it is handed back).
    async fn spawn(
        &self,
        job: Job,
        slots: &Arc<Semaphore>,
        tasks: &mut JoinSet<()>,
    ) -> Result<(), Job> {
        let Some(ticket) = self.in_flight.admit(&job.delivery, &job.lease) else {
            return Err(job);
        };
        let permit = slots
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let chain = self.chain.clone();
        tasks.spawn(async move {
            chain.run(job.delivery, job.event, &job.lease).await;
            drop(ticket);
            drop(permit);
        });
        Ok(())
    }

    /// Extends the leases of the attempts in flight every third of a
    /// lease, until `cancel` fires.
    async fn renew_leases(self: Arc<Self>, cancel: CancellationToken) {
        let every = (self.settings.lease / 3).max(Duration::from_millis(100));
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            let leases = self.in_flight.leases();
            if leases.is_empty() {
                continue;
            }
            let until = now_ms() + self.settings.lease.as_millis() as i64;
            if let Err(error) = self.chain.store.renew_leases(leases, until).await {
                tracing::warn!(%error, "could not renew leases; they expire on their own");
            }
        }
    }

    /// Waits for the jobs in flight (up to the HTTP timeout), then releases
    /// the leases of any left.
    async fn drain(&self, mut tasks: JoinSet<()>) {
        let grace = self.settings.http.timeout + Duration::from_secs(5);
        let _ =
            tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
        tasks.abort_all();
        let claims = format!("{}/", self.owner);
        match self.chain.store.release_leases(&claims, now_ms()).await {
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

/// A claimed delivery, to start (or parked until its organization has room).
#[derive(Debug)]
struct Job {
    delivery: Delivery,
    event: Option<Event>,
    lease: Arc<str>,
}

/// The deliveries in flight on this replica: how many per organization
/// (for the claim to skip those at their limit) and under which claim
/// (for lease renewal).
#[derive(Debug)]
struct InFlight {
    per_organization: usize,
    state: Arc<Mutex<InFlightState>>,
    /// The claim loop's wake-up.
    wake: Arc<Notify>,
}

#[derive(Debug, Default)]
struct InFlightState {
    organizations: HashMap<OrgId, usize>,
    leases: HashMap<String, Arc<str>>,
}

impl InFlight {
    fn new(per_organization: usize, wake: Arc<Notify>) -> Self {
        Self {
            per_organization: per_organization.max(1),
            state: Default::default(),
            wake,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, InFlightState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Organizations at their limit.
    fn held(&self) -> Vec<OrgId> {
        self.lock()
            .organizations
            .iter()
            .filter(|(_, n)| **n >= self.per_organization)
            .map(|(org, _)| org.clone())
            .collect()
    }

    /// Counts `delivery` in, unless its organization is at its limit.
    fn admit(&self, delivery: &Delivery, lease: &Arc<str>) -> Option<Ticket> {
        let mut state = self.lock();
        let n = state
            .organizations
            .entry(delivery.organization_id.clone())
            .or_default();
        if *n >= self.per_organization {
            return None;
        }
        *n += 1;
        state.leases.insert(delivery.id.clone(), lease.clone());
        Some(Ticket {
            state: self.state.clone(),
            per_organization: self.per_organization,
            organization: delivery.organization_id.clone(),
            delivery: delivery.id.clone(),
            wake: self.wake.clone(),
        })
    }

    /// Keeps a parked delivery's lease renewed (it is counted in when it
    /// starts).
    fn park(&self, delivery: &str, lease: &Arc<str>) {
        self.lock()
            .leases
            .insert(delivery.to_owned(), lease.clone());
    }

    /// (delivery id, claim) of every delivery in flight.
    fn leases(&self) -> Vec<(String, String)> {
        self.lock()
            .leases
            .iter()
            .map(|(id, lease)| (id.clone(), lease.to_string()))
            .collect()
    }
}

/// One delivery counted in flight, until dropped.
#[derive(Debug)]
struct Ticket {
    state: Arc<Mutex<InFlightState>>,
    per_organization: usize,
    organization: OrgId,
    delivery: String,
    wake: Arc<Notify>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.leases.remove(&self.delivery);
        let Some(n) = state.organizations.get_mut(&self.organization) else {
            return;
        };
        let was_held = *n >= self.per_organization;
        *n -= 1;
        if *n == 0 {
            state.organizations.remove(&self.organization);
        }
        drop(state);
        if was_held {
            // Its organization was left out of claims: look again.
            self.wake.notify_one();
        }
    }
}
