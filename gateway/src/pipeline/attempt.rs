//! One attempt at one claimed delivery, as one chain:
//! route → transform → authorize → sign → deliver → record. Each stage is a
//! function with its own result and error type; every error becomes an
//! [`Outcome`] (see `record.rs`, where retries are decided), and the
//! recorder alone turns the outcome into the delivery's next state.

use super::authorize::{AuthHeader, TokenCache};
use super::clients::HttpClients;
use super::deliver::{self, DestinationRates, HostLimits, Response};
use super::record::{Attempted, Outcome, Recorder};
use super::request::{self, Outgoing};
use super::route::Routes;
use super::sign;
use super::transform::{self, Transformed};
use crate::model::{Delivery, Event, PreparedRequest, Target, now_ms};
use crate::plugin::Registry;
use crate::store::Store;
use crate::telemetry;
use futures_util::FutureExt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Notify;
use tracing::Instrument;

/// What the stages of an attempt share.
#[derive(Debug)]
pub struct Chain {
    pub(super) store: Store,
    pub(super) registry: Arc<Registry>,
    pub(super) routes: Routes,
    pub(super) tokens: TokenCache,
    pub(super) http: HttpClients,
    pub(super) hosts: HostLimits,
    pub(super) rates: DestinationRates,
    pub(super) allow_private: bool,
    pub(super) recorder: Recorder,
    /// Woken when new work is queued (a transform fanned out).
    pub(super) wake: Arc<Notify>,
}

impl Chain {
    /// Runs one attempt at `delivery` (with its event when the claim read
    /// it), leased by the claim `lease`, and records what it came to. A
    /// panic anywhere in the chain is caught and recorded as the attempt's
    /// error, so no input can leave a job claimed again and again.
    /// The attempt is a span in its event's trace (see `telemetry`).
    pub async fn run(&self, mut delivery: Delivery, event: Option<Event>, lease: &str) {
        let span = tracing::info_span!(
            "attempt",
            otel.kind = "consumer",
            delivery_id = %delivery.id,
            event_id = %delivery.event_id,
            route = %delivery.target_id,
            attempt = delivery.attempts + 1,
            outcome = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
        );
        if let Some(parent) = &delivery.trace_context {
            telemetry::continue_trace(&span, parent);
        }
        // `instrument`, not `enter`: the span must follow the future across awaits.
        async {
            let started = now_ms();
            let mut request_headers = Vec::new();
            let outcome =
                guarded(self.attempt(&mut delivery, event, lease, &mut request_headers)).await;
            let current = tracing::Span::current();
            current.record("outcome", outcome.label());
            if !matches!(outcome, Outcome::Delivered { .. } | Outcome::Dropped(_) | Outcome::Deferred { .. }) {
                current.record("otel.status_code", "ERROR");
            }
            let attempted = Attempted { started, outcome, request_headers };
            if let Err(error) = self.recorder.record(&delivery, lease, attempted).await {
                tracing::warn!(%error, "could not record the outcome; the lease will expire and the delivery will be tried again");
            }
        }
        .instrument(span)
        .await
    }

    /// The chain. `Err` is an outcome reached before the receiver answered.
    /// The headers of the request sent last, secrets redacted, are left in
    /// `sent` for the attempt's record.
    async fn attempt(
        &self,
        delivery: &mut Delivery,
        event: Option<Event>,
        lease: &str,
        sent: &mut Vec<(String, String)>,
    ) -> Result<Outcome, Outcome> {
        let target = self.route(delivery).await?;
        let prepared = self.transform(delivery, event, &target, lease).await?;
        // With a client certificate, the token endpoint and the hooks see it.
        let http = self.http.client(
            target
                .authentication()
                .and_then(|a| a.tls_client_certificate.as_ref()),
        )?;
        let mut refreshed = false;
        loop {
            let auth = self.authorize(&http, &target, refreshed).await?;
            let now = now_ms();
            let signature = sign::sign(
                &delivery.id,
                now / 1000,
                &prepared.body,
                &target.signing_secrets(now),
            )?;
            self.rates.check(&target, &delivery.endpoint)?;
            let send = tracing::info_span!(
                "send",
                otel.kind = "client",
                http.request.method = delivery.method.as_str(),
                url.full = %crate::model::endpoint::loggable(&delivery.endpoint),
                http.response.status_code = tracing::field::Empty,
                otel.status_code = tracing::field::Empty,
            );
            // The receiver's trace parent: this send, or, with tracing off,
            // the caller's context the event came with.
            let traceparent =
                telemetry::traceparent(&send).or_else(|| delivery.trace_context.clone());
            let request =
                request::build(delivery, &prepared, signature, auth.as_ref(), traceparent);
            *sent = request.recorded_headers(auth.as_ref());
            let mut response = self.deliver(&http, request).instrument(send).await?;
            if let Some(auth) = &auth {
                response.excerpt = auth.redact(&response.excerpt);
            }
            if response.status == 401 && !refreshed && target.authentication().is_some() {
                tracing::info!("receiver answered 401; refreshing the token once");
                refreshed = true;
                continue;
            }
            return Ok(Outcome::from(response).for_route(target.endpoint_count()));
        }
    }

    /// The route, unless it is gone or inactive.
    async fn route(&self, delivery: &Delivery) -> Result<Arc<Target>, Outcome> {
        let Some(target) = self.routes.target(&self.store, delivery).await? else {
            return Err(Outcome::Cancelled("the route no longer exists".into()));
        };
        match target.inactive_reason() {
            Some(reason) => Err(Outcome::Cancelled(format!(
                "the route is inactive: {reason}"
            ))),
            None => Ok(target),
        }
    }

    /// The request to send: stored by an earlier attempt, or made now by
    /// the plugin and stored before it is sent (fan-out included), so every
    /// retry sends the same bytes.
    async fn transform(
        &self,
        delivery: &mut Delivery,
        event: Option<Event>,
        target: &Target,
        lease: &str,
    ) -> Result<PreparedRequest, Outcome> {
        if delivery.transformed {
            return Ok(PreparedRequest {
                body: delivery.body.clone().unwrap_or_default(),
                content_type: delivery
                    .content_type
                    .clone()
                    .unwrap_or_else(|| "application/json".into()),
                headers: delivery.headers.clone(),
            });
        }
        let event = match event {
            Some(event) => event,
            None => {
                self.store
                    .get_event(&delivery.organization_id, &delivery.event_id)
                    .await?
            }
        };
        let span = tracing::info_span!(
            "transform",
            plugin = target.plugin().map(|p| p.name.as_str())
        );
        let transformed = transform::transform(&self.registry, &event, target)
            .instrument(span)
            .await?;
        let requests = match transformed {
            Transformed::Drop(reason) => return Err(Outcome::Dropped(reason)),
            Transformed::Requests(requests) => requests,
        };
        let added = self
            .store
            .store_transform(delivery, lease, &requests, now_ms())
            .await?;
        if !added.is_empty() {
            tracing::debug!(added = added.len(), "plugin fanned out");
            self.wake.notify_one();
        }
        let first = requests
            .into_iter()
            .next()
            .expect("a transform sends one or more");
        delivery.transformed = true;
        Ok(first)
    }

    /// The rendered auth header, when the route wants a token.
    async fn authorize(
        &self,
        http: &reqwest::Client,
        target: &Target,
        refresh: bool,
    ) -> Result<Option<AuthHeader>, Outcome> {
        let Some(auth) = target.authentication() else {
            return Ok(None);
        };
        Ok(Some(
            self.tokens.header(http, target.id(), auth, refresh).await?,
        ))
    }

    /// Sends, within the destination's limit of requests in flight; a busy
    /// destination defers the delivery rather than wait on a slot.
    /// Runs in the attempt's `send` span, which it marks with the answer.
    async fn deliver(
        &self,
        http: &reqwest::Client,
        request: Outgoing,
    ) -> Result<Response, Outcome> {
        let _permit = self.hosts.try_permit(&request.url)?;
        let sent = Instant::now();
        let response = deliver::send(http, request, self.allow_private).await;
        metrics::histogram!("hookgate_attempt_duration_seconds")
            .record(sent.elapsed().as_secs_f64());
        let span = tracing::Span::current();
        match &response {
            Ok(answer) => {
                span.record("http.response.status_code", answer.status);
                if answer.status >= 400 {
                    span.record("otel.status_code", "ERROR");
                }
            }
            Err(_) => {
                span.record("otel.status_code", "ERROR");
            }
        }
        Ok(response?)
    }
}

/// What `attempt` came to, or, if it panicked, that panic as the attempt's
/// error (retried on the schedule, so a job that keeps panicking ends dead
/// instead of being claimed again forever).
async fn guarded(attempt: impl Future<Output = Result<Outcome, Outcome>>) -> Outcome {
    match AssertUnwindSafe(attempt).catch_unwind().await {
        Ok(Ok(outcome) | Err(outcome)) => outcome,
        Err(panic) => Outcome::panicked(panic.as_ref()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_attempt_becomes_a_recorded_retry() {
        let outcome = guarded(async {
            let lifetime = std::time::Duration::from_secs(u64::MAX);
            let _ = Instant::now() + lifetime;
            Ok(Outcome::Dropped("unreachable".into()))
        })
        .await;
        let Outcome::Retry(failure) = outcome else {
            panic!("{outcome:?}")
        };
        assert!(
            failure
                .error
                .starts_with("internal error: the attempt panicked: overflow"),
            "{}",
            failure.error
        );
        assert_eq!(
            guarded(async { Err(Outcome::Dropped("no".into())) }).await,
            Outcome::Dropped("no".into())
        );
    }
}
