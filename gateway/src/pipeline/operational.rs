//! Operational events: the gateway tells an organization about its own
//! deliveries by posting events of its own types to the organization,
//! routed, signed and retried like any other event (subscribe to the type to
//! receive them):
//! - `hookgate.endpoint.disabled` `{destinationId, url, reason}`
//! - `hookgate.delivery.dead` `{deliveryId, eventId, destinationId, attempts, lastError}`
//! - `hookgate.endpoint.recovered` `{destinationId, url}`
//!
//! Deliveries of operational events never cause operational events, so a
//! failing operations endpoint cannot feed itself.

use crate::model::{Delivery, Event, OrgId, new_id, now_ms};
use crate::store::Store;
use serde_json::json;

/// The prefix of the gateway's own event types; events posted through the
/// API may not use it.
pub const PREFIX: &str = "hookgate.";

/// What happened.
#[derive(Debug)]
pub enum Operational<'a> {
    /// A route was disabled.
    EndpointDisabled {
        /// The delivery whose outcome disabled it.
        delivery: &'a Delivery,
        /// Why.
        reason: &'a str,
    },
    /// A delivery spent its retries.
    DeliveryDead {
        /// The delivery.
        delivery: &'a Delivery,
        /// Attempts made.
        attempts: i64,
        /// The last attempt's error.
        last_error: &'a str,
    },
    /// A route that had been failing succeeded again.
    EndpointRecovered {
        /// The delivery that succeeded.
        delivery: &'a Delivery,
    },
}

impl Operational<'_> {
    fn delivery(&self) -> &Delivery {
        match self {
            Self::EndpointDisabled { delivery, .. }
            | Self::DeliveryDead { delivery, .. }
            | Self::EndpointRecovered { delivery } => delivery,
        }
    }

    fn event(&self) -> (&'static str, serde_json::Value) {
        match self {
            Self::EndpointDisabled { delivery, reason } => (
                "hookgate.endpoint.disabled",
                json!({"destinationId": delivery.target_id, "url": delivery.endpoint, "reason": reason}),
            ),
            Self::DeliveryDead {
                delivery,
                attempts,
                last_error,
            } => (
                "hookgate.delivery.dead",
                json!({"deliveryId": delivery.id, "eventId": delivery.event_id,
                       "destinationId": delivery.target_id, "attempts": attempts,
                       "lastError": last_error}),
            ),
            Self::EndpointRecovered { delivery } => (
                "hookgate.endpoint.recovered",
                json!({"destinationId": delivery.target_id, "url": delivery.endpoint}),
            ),
        }
    }
}

/// Posts `what` to the delivery's organization, unless the delivery is of
/// an operational event itself. Failures are logged: the outcome that
/// caused it is recorded either way.
pub async fn emit(store: &Store, what: Operational<'_>) {
    let delivery = what.delivery();
    if delivery.event_type.starts_with(PREFIX) {
        return;
    }
    let (event_type, payload) = what.event();
    let event = Event {
        organization_id: OrgId::clone(&delivery.organization_id),
        id: new_id("evt"),
        event_type: event_type.to_owned(),
        payload: payload.to_string(),
        shop_id: None,
        created: now_ms(),
        // In the trace of the delivery it is about.
        trace_context: crate::telemetry::traceparent(&tracing::Span::current())
            .or_else(|| delivery.trace_context.clone()),
    };
    match store.ingest(&event).await {
        Ok(ingested) => {
            tracing::debug!(
                event_type,
                deliveries = ingested.deliveries.len(),
                "operational event"
            )
        }
        Err(error) => tracing::warn!(%error, event_type, "could not post an operational event"),
    }
}
