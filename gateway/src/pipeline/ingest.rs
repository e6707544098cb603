//! The ingest stage: check the payload against its type's schema (if the
//! organization declared one), then store the event and one delivery per
//! matching route in one transaction (routing is the `integration_hooks`
//! and `webhooks` tables, read inside that transaction, with their
//! filters); its commit wakes the workers. The caller answers 202 only
//! after this returns, when the event is on disk.

use super::schema::{Schemas, Violation};
use crate::model::{Event, OrgId, new_id, now_ms};
use crate::store::{Ingested, Store, StoreError};
use crate::telemetry;
use tracing::Instrument;

/// Why an event was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The payload does not satisfy its type's schema.
    #[error("the payload does not match the schema of its type")]
    Invalid(Vec<Violation>),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A validated event to accept.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// The caller's id, when given (idempotency key).
    pub id: Option<String>,
    /// Hook type.
    pub event_type: String,
    /// Payload, JSON text.
    pub payload: String,
    /// Shop.
    pub shop_id: Option<String>,
    /// The caller's W3C `traceparent` (valid), to continue its trace.
    pub traceparent: Option<String>,
}

/// Accepts `event` for `organization_id`, in the span that starts the
/// event's trace (continuing the caller's, when it sent one).
pub async fn accept(
    store: &Store,
    schemas: &Schemas,
    organization_id: &OrgId,
    event: NewEvent,
) -> Result<Ingested, IngestError> {
    let id = event.id.clone().unwrap_or_else(|| new_id("evt"));
    let span = tracing::info_span!("ingest", otel.kind = "producer", event.id = %id, event.type = %event.event_type);
    if let Some(parent) = &event.traceparent {
        telemetry::continue_trace(&span, parent);
    }
    // Without tracing, the caller's trace context still reaches receivers.
    let trace_context = telemetry::traceparent(&span).or(event.traceparent);
    async {
        schemas
            .check(store, organization_id, &event.event_type, &event.payload)
            .await?;
        let event = Event {
            organization_id: organization_id.clone(),
            id,
            event_type: event.event_type,
            payload: event.payload,
            shop_id: event.shop_id,
            created: now_ms(),
            trace_context,
        };
        let ingested = store.ingest(&event).await?;
        if ingested.created {
            metrics::counter!("hookgate_events_accepted_total").increment(1);
            tracing::debug!("event accepted");
        }
        Ok(ingested)
    }
    .instrument(span)
    .await
}
