//! The record stage: what an attempt came to ([`Outcome`]; every stage's
//! error and every receiver answer is classified here, and only here), and
//! the next state that follows from it: delivered, retried after the
//! schedule's delay (±20% jitter) or the receiver's `Retry-After`, dead
//! when the schedule is spent, failed for good, or ended without an
//! attempt. Routes that answer 410, or fail longer than allowed, are
//! disabled.

use super::authorize::{AuthorizeError, TokenProblem};
use super::deliver::{DeliverError, DestinationBusy, OverRate, Response};
use super::operational::{self, Operational};
use super::sign::SignError;
use super::transform::TransformError;
use crate::model::{Attempt, Delivery, DeliveryStatus, EpochMs, endpoint, now_ms};
use crate::store::{RecordResult, Recorded, RouteHealth, Store, StoreError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The receiver answered 2xx.
    Delivered {
        /// Status code.
        status: u16,
        /// Start of the body.
        excerpt: String,
    },
    /// Worth trying again later: a network error, a timeout, 408, 429, 5xx,
    /// a token endpoint in trouble, a plugin not loaded or busy.
    Retry(Failure),
    /// Would fail the same way again: another 4xx, a refused destination, a
    /// plugin that failed the event, a bad signing secret.
    Failed(Failure),
    /// 410: the receiver asks us to stop; its route is disabled.
    Gone {
        /// Start of the body.
        excerpt: String,
    },
    /// The plugin sent nothing, for this reason.
    Dropped(String),
    /// The route went away or is inactive.
    Cancelled(String),
    /// Not attempted now, and not counted as an attempt: what it needs
    /// (its destination, its token) is busy. It waits this long, jittered.
    Deferred {
        /// How long.
        after: Duration,
        /// What it waits for.
        reason: String,
    },
}

/// An attempt as the chain hands it to the recorder: when it started,
/// what it came to, and the headers it sent (none when it ended before a
/// request was built), secrets already redacted.
#[derive(Debug)]
pub struct Attempted {
    /// When it started.
    pub started: EpochMs,
    /// What it came to.
    pub outcome: Outcome,
    /// The headers sent.
    pub request_headers: Vec<(String, String)>,
}

/// What went wrong in a failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What happened.
    pub error: String,
    /// The receiver's status code, if it answered.
    pub status: Option<u16>,
    /// Start of the body, if it answered.
    pub excerpt: Option<String>,
    /// The receiver's `Retry-After`, if it gave one.
    pub retry_after: Option<Duration>,
    /// Whether the receiver (not the gateway, its plugin or a token
    /// endpoint) failed: only those failures count against the route.
    pub at_receiver: bool,
}

impl Failure {
    fn gateway(error: impl std::fmt::Display) -> Self {
        Self {
            error: error.to_string(),
            status: None,
            excerpt: None,
            retry_after: None,
            at_receiver: false,
        }
    }
}

impl Outcome {
    /// `Retry` or `Failed`, as `retryable` says.
    fn failure(retryable: bool, failure: Failure) -> Self {
        if retryable {
            Self::Retry(failure)
        } else {
            Self::Failed(failure)
        }
    }

    /// The outcome for a route with `endpoints` endpoints: a 410 from one
    /// of several fails that delivery only, and leaves the route (and its
    /// other endpoints) enabled; a 410 from a route's only endpoint disables
    /// the route.
    pub fn for_route(self, endpoints: usize) -> Self {
        match self {
            Self::Gone { excerpt } if endpoints > 1 => Self::Failed(Failure {
                error: "receiver answered 410 Gone (the route's other endpoints stay enabled)"
                    .into(),
                status: Some(410),
                excerpt: Some(excerpt),
                retry_after: None,
                at_receiver: true,
            }),
            other => other,
        }
    }

    /// A panic in the chain: a bug, recorded as the attempt's error and
    /// retried on the schedule (so it ends, dead, if it keeps panicking).
    pub fn panicked(payload: &(dyn std::any::Any + Send)) -> Self {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        tracing::error!(panic = %message, "the delivery attempt panicked");
        Self::Retry(Failure::gateway(format!(
            "internal error: the attempt panicked: {}",
            crate::model::truncate(&message, 200)
        )))
    }

    /// The name used in metrics.
    pub(super) fn label(&self) -> &'static str {
        match self {
            Self::Delivered { .. } => "delivered",
            Self::Retry(_) => "retry",
            Self::Failed(_) => "failed",
            Self::Gone { .. } => "gone",
            Self::Dropped(_) => "dropped",
            Self::Cancelled(_) => "cancelled",
            Self::Deferred { .. } => "deferred",
        }
    }
}

impl From<Response> for Outcome {
    /// A receiver's answer: 2xx delivered, 410 gone, 408, 429 and 5xx
    /// retried, any other status failed for good (a 401 reaches here only
    /// after the token was refreshed once).
    fn from(r: Response) -> Self {
        let failure = |r: Response| Failure {
            error: format!("receiver answered {}", r.status),
            status: Some(r.status),
            excerpt: Some(r.excerpt),
            retry_after: r.retry_after,
            at_receiver: true,
        };
        match r.status {
            200..=299 => Self::Delivered {
                status: r.status,
                excerpt: r.excerpt,
            },
            410 => Self::Gone { excerpt: r.excerpt },
            408 | 429 | 500..=599 => Self::Retry(failure(r)),
            _ => Self::Failed(failure(r)),
        }
    }
}

impl From<DeliverError> for Outcome {
    fn from(error: DeliverError) -> Self {
        let retryable = error.retryable();
        let mut failure = Failure::gateway(&error);
        failure.at_receiver = retryable;
        Self::failure(retryable, failure)
    }
}

impl From<TransformError> for Outcome {
    fn from(error: TransformError) -> Self {
        Self::failure(error.retryable(), Failure::gateway(error))
    }
}

impl From<AuthorizeError> for Outcome {
    fn from(error: AuthorizeError) -> Self {
        if error.deferred() {
            return Self::Deferred {
                after: TOKEN_WAIT,
                reason: error.to_string(),
            };
        }
        let mut failure = Failure::gateway(&error);
        if let TokenProblem::Remembered { retry_in, .. } = &error.problem {
            // Not before the token endpoint may be asked again.
            failure.retry_after = Some(*retry_in);
        }
        Self::failure(error.retryable(), failure)
    }
}

impl From<OverRate> for Outcome {
    fn from(over: OverRate) -> Self {
        Self::Deferred {
            after: over.wait.max(Duration::from_millis(10)),
            reason: over.to_string(),
        }
    }
}

impl From<DestinationBusy> for Outcome {
    fn from(busy: DestinationBusy) -> Self {
        Self::Deferred {
            after: DESTINATION_WAIT,
            reason: busy.to_string(),
        }
    }
}

/// How long a delivery waits for its busy destination.
const DESTINATION_WAIT: Duration = Duration::from_secs(1);

/// How long a delivery waits while another fetches the token it needs.
const TOKEN_WAIT: Duration = Duration::from_millis(250);

impl From<StoreError> for Outcome {
    /// The database failed mid-attempt (reading the route or the event,
    /// storing the transform): worth retrying unless the data is broken.
    fn from(error: StoreError) -> Self {
        let retryable = error.is_unavailable() || matches!(error, StoreError::LeaseLost);
        Self::failure(retryable, Failure::gateway(error))
    }
}

impl From<super::clients::IdentityError> for Outcome {
    /// A stored client certificate the HTTP client refuses: the same next
    /// time, until the integration is fixed.
    fn from(error: super::clients::IdentityError) -> Self {
        Self::Failed(Failure::gateway(format!(
            "the client certificate {}: {error}",
            error.field()
        )))
    }
}

impl From<SignError> for Outcome {
    fn from(error: SignError) -> Self {
        Self::Failed(Failure::gateway(error))
    }
}

/// The retry schedule.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Delay before attempt n+1 is `schedule[n]`; its length is the number
    /// of attempts (the first entry is the delay of the first attempt).
    pub schedule: Vec<Duration>,
}

impl RetryPolicy {
    /// The delay before the next attempt after `made` attempts of this round
    /// have failed, or `None` when none are left.
    pub fn next_delay(&self, made: usize, retry_after: Option<Duration>) -> Option<Duration> {
        let base = *self.schedule.get(made)?;
        if let Some(wait) = retry_after {
            return Some(wait);
        }
        Some(jitter(base))
    }
}

/// `d` ± 20%, uniformly.
fn jitter(d: Duration) -> Duration {
    if d.is_zero() {
        return d;
    }
    let factor = 0.8 + rand::random::<f64>() * 0.4;
    d.mul_f64(factor)
}

/// A delivery's state after an outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextState {
    /// Its status.
    pub status: DeliveryStatus,
    /// When it is due again (`now` unless it is retried).
    pub next_attempt_at: EpochMs,
}

/// The state that follows `outcome` for a delivery that has made `made`
/// attempts in this round (this one included).
pub fn next_state(policy: &RetryPolicy, made: usize, outcome: &Outcome, now: EpochMs) -> NextState {
    let status = |status| NextState {
        status,
        next_attempt_at: now,
    };
    match outcome {
        Outcome::Delivered { .. } => status(DeliveryStatus::Delivered),
        Outcome::Retry(f) => match policy.next_delay(made, f.retry_after) {
            Some(delay) => NextState {
                status: DeliveryStatus::Pending,
                next_attempt_at: now + delay.as_millis() as i64,
            },
            None => status(DeliveryStatus::Dead),
        },
        Outcome::Failed(_) | Outcome::Gone { .. } => status(DeliveryStatus::Failed),
        Outcome::Dropped(_) => status(DeliveryStatus::Dropped),
        Outcome::Cancelled(_) => status(DeliveryStatus::Cancelled),
        Outcome::Deferred { after, .. } => NextState {
            status: DeliveryStatus::Pending,
            next_attempt_at: now + jitter(*after).as_millis() as i64,
        },
    }
}

/// Writes outcomes: the one place a delivery's next state is decided.
#[derive(Debug)]
pub struct Recorder {
    /// The database.
    pub store: Store,
    /// The retry schedule.
    pub retry: RetryPolicy,
    /// Disable a route after it failed continuously this long.
    pub disable_after: Duration,
    /// Woken when a retry is scheduled, so the claim loop sees its time.
    pub wake: Arc<Notify>,
}

impl Recorder {
    /// Records what the attempt on `delivery` under the claim `lease` came to.
    pub async fn record(
        &self,
        delivery: &Delivery,
        lease: &str,
        attempted: Attempted,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let made = (delivery.attempts - delivery.attempt_base + 1).max(1) as usize;
        let outcome = &attempted.outcome;
        let next = next_state(&self.retry, made, outcome, now);
        metrics::counter!("hookgate_deliveries_total", "outcome" => outcome.label()).increment(1);
        log(delivery, made, outcome, next);
        if let Outcome::Gone { .. } = outcome {
            let reason = format!(
                "endpoint {} answered 410 Gone",
                endpoint::loggable(&delivery.endpoint)
            );
            self.disable(delivery, &reason).await?;
        }
        let recorded = Self::recorded(delivery, lease, now, attempted, next);
        let last_error = recorded.error.clone().unwrap_or_default();
        let result = self.store.record(recorded).await?;
        if !result.held {
            tracing::warn!(
                "lease lost before the outcome was recorded; another worker owns the delivery"
            );
            return Ok(());
        }
        self.route_health(delivery, &result, now).await?;
        match next.status {
            DeliveryStatus::Pending => self.wake.notify_one(),
            DeliveryStatus::Dead => {
                let what = Operational::DeliveryDead {
                    delivery,
                    attempts: delivery.attempts + 1,
                    last_error: &last_error,
                };
                operational::emit(&self.store, what).await;
            }
            _ => {}
        }
        Ok(())
    }

    /// What a recorded outcome means for its route: disabled after failing
    /// longer than allowed; recovered when a success ends a failure streak
    /// that had run at least half that long (at most a minute).
    async fn route_health(
        &self,
        delivery: &Delivery,
        result: &RecordResult,
        now: EpochMs,
    ) -> Result<(), StoreError> {
        let allowed = self.disable_after.as_millis() as i64;
        if let Some(since) = result.failing_since
            && now - since > allowed
        {
            let reason = format!(
                "failing continuously since {} (more than {})",
                humantime::format_rfc3339_seconds(
                    std::time::UNIX_EPOCH + Duration::from_millis(since.max(0) as u64)
                ),
                humantime::format_duration(self.disable_after)
            );
            self.disable(delivery, &reason).await?;
        }
        if let Some(since) = result.recovered_from
            && now - since >= (allowed / 2).min(60_000)
        {
            operational::emit(&self.store, Operational::EndpointRecovered { delivery }).await;
        }
        Ok(())
    }

    /// The write for `outcome`: the attempt row (none for drops and
    /// cancellations), the last error, the route's health.
    fn recorded(
        delivery: &Delivery,
        lease: &str,
        now: EpochMs,
        attempted: Attempted,
        next: NextState,
    ) -> Recorded {
        let Attempted {
            started,
            outcome,
            request_headers,
        } = attempted;
        let attempt = |status: Option<u16>, error: Option<String>, excerpt: Option<String>| {
            Some(Attempt {
                delivery_id: delivery.id.clone(),
                attempt: delivery.attempts + 1,
                started,
                duration_ms: now - started,
                status_code: status.map(i64::from),
                error,
                response_excerpt: excerpt,
                request_headers,
            })
        };
        let target_id = delivery.target_id.clone();
        let (attempt, error, route) = match outcome {
            Outcome::Delivered { status, excerpt } => (
                attempt(Some(status), None, Some(excerpt)),
                None,
                RouteHealth::Succeeded { target_id },
            ),
            Outcome::Retry(f) | Outcome::Failed(f) => {
                let route = if f.at_receiver {
                    RouteHealth::Failed { target_id }
                } else {
                    RouteHealth::Unchanged
                };
                (
                    attempt(f.status, Some(f.error.clone()), f.excerpt),
                    Some(f.error),
                    route,
                )
            }
            Outcome::Gone { excerpt } => {
                let error = format!(
                    "endpoint {} answered 410 Gone",
                    endpoint::loggable(&delivery.endpoint)
                );
                (
                    attempt(Some(410), Some(error.clone()), Some(excerpt)),
                    Some(error),
                    RouteHealth::Unchanged,
                )
            }
            Outcome::Dropped(reason) | Outcome::Cancelled(reason) => {
                (None, Some(reason), RouteHealth::Unchanged)
            }
            Outcome::Deferred { .. } => (None, delivery.last_error.clone(), RouteHealth::Unchanged),
        };
        Recorded {
            delivery_id: delivery.id.clone(),
            lease: lease.to_owned(),
            status: next.status,
            next_attempt_at: next.next_attempt_at,
            attempt,
            error,
            route,
            now,
        }
    }

    /// Disables the delivery's route (once: a route already disabled is
    /// left as it is, and no second operational event goes out).
    async fn disable(&self, delivery: &Delivery, reason: &str) -> Result<(), StoreError> {
        let disabled = self
            .store
            .disable_route(
                &delivery.organization_id,
                delivery.target_kind,
                &delivery.target_id,
                reason,
                now_ms(),
            )
            .await?;
        if !disabled {
            return Ok(());
        }
        tracing::warn!(%reason, "disabled the route");
        operational::emit(
            &self.store,
            Operational::EndpointDisabled { delivery, reason },
        )
        .await;
        Ok(())
    }
}

fn log(delivery: &Delivery, made: usize, outcome: &Outcome, next: NextState) {
    match (outcome, next.status) {
        (Outcome::Delivered { .. }, _) => {
            tracing::debug!(latency_ms = now_ms() - delivery.created, "delivered")
        }
        (Outcome::Retry(f), DeliveryStatus::Pending) => tracing::info!(
            attempt = made,
            retry_in_ms = next.next_attempt_at - now_ms(),
            error = %f.error,
            "attempt failed; will retry"
        ),
        (Outcome::Retry(f) | Outcome::Failed(f), status) => {
            tracing::warn!(status = status.as_str(), error = %f.error, "delivery gave up")
        }
        (Outcome::Gone { .. }, _) => tracing::warn!("the receiver answered 410 Gone"),
        (Outcome::Dropped(reason) | Outcome::Cancelled(reason), status) => tracing::info!(
            status = status.as_str(),
            reason,
            "delivery finished without an attempt"
        ),
        (Outcome::Deferred { reason, .. }, _) => {
            tracing::debug!(reason, "deferred without an attempt")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::deliver::PrivateDestination;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            schedule: vec![
                Duration::ZERO,
                Duration::from_secs(10),
                Duration::from_secs(100),
            ],
        }
    }

    #[test]
    fn follows_the_schedule_with_jitter() {
        let p = policy();
        for _ in 0..100 {
            let d = p.next_delay(1, None).expect("left");
            assert!(
                d >= Duration::from_secs(8) && d <= Duration::from_secs(12),
                "{d:?}"
            );
        }
        assert_eq!(
            p.next_delay(2, Some(Duration::from_secs(3))),
            Some(Duration::from_secs(3))
        );
        assert_eq!(p.next_delay(3, None), None);
    }

    fn answer(status: u16) -> Outcome {
        Outcome::from(Response {
            status,
            retry_after: None,
            excerpt: String::new(),
        })
    }

    #[test]
    fn answers_are_classified_by_status() {
        assert!(matches!(answer(204), Outcome::Delivered { .. }));
        assert!(matches!(answer(410), Outcome::Gone { .. }));
        for retried in [408, 429, 500, 503] {
            assert!(matches!(answer(retried), Outcome::Retry(_)), "{retried}");
        }
        for failed in [400, 401, 403, 404, 422] {
            assert!(matches!(answer(failed), Outcome::Failed(_)), "{failed}");
        }
    }

    #[test]
    fn retries_until_the_schedule_is_spent() {
        let p = policy();
        let retry = answer(503);
        let first = next_state(&p, 1, &retry, 1_000);
        assert_eq!(first.status, DeliveryStatus::Pending);
        assert!(
            (9_000..=13_000).contains(&first.next_attempt_at),
            "{first:?}"
        );
        assert_eq!(
            next_state(&p, 3, &retry, 1_000).status,
            DeliveryStatus::Dead
        );
        assert_eq!(
            next_state(&p, 1, &answer(404), 1_000).status,
            DeliveryStatus::Failed
        );
        assert_eq!(
            next_state(&p, 1, &Outcome::Dropped("no".into()), 1_000).status,
            DeliveryStatus::Dropped
        );
    }

    #[test]
    fn a_refused_destination_is_not_retried_nor_blamed_on_the_route() {
        let refused = DeliverError::Private(PrivateDestination::new("10.0.0.1"));
        let Outcome::Failed(f) = Outcome::from(refused) else {
            panic!("a refused destination is retried")
        };
        assert!(!f.at_receiver);
        let Outcome::Retry(f) = Outcome::from(DeliverError::Timeout("slow".into())) else {
            panic!("a timeout is not retried")
        };
        assert!(f.at_receiver);
    }
}
