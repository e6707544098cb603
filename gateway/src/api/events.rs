//! `/v1/events` and `/v1/deliveries`: accept events, follow and replay
//! their deliveries.

use super::error::ApiError;
use super::extract::{JsonBody, OrgAuth, Pagination, Path, Query};
use super::validate::Problems;
use super::{AppState, Envelope, ListOut, ok};
use crate::model::{Attempt, Delivery, DeliveryStatus, now_ms};
use crate::pipeline::ingest::{self, NewEvent};
use crate::pipeline::operational;
use crate::store::DeliveryFilter;
use crate::telemetry;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};

/// An event to deliver.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EventIn {
    /// Idempotency key: the same id again creates nothing new.
    pub id: Option<String>,
    /// Hook type, e.g. `order_created`.
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    /// The payload (any JSON), stored and delivered byte for byte as sent.
    #[schema(value_type = Object)]
    pub payload: Option<Box<RawValue>>,
    /// Shop, for subscriptions filtered by shop.
    pub shop_id: Option<String>,
}

/// What was accepted.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AcceptedOut {
    /// The event id.
    pub event_id: String,
    /// Its deliveries' ids.
    pub deliveries: Vec<String>,
    /// False when the id had been seen before.
    pub created: bool,
}

/// One delivery as returned.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryOut {
    /// `dlv_…`; the `webhook-id` the receiver sees.
    pub id: String,
    /// The event.
    pub event_id: String,
    /// Its type.
    pub event_type: String,
    /// `integration` or `webhook`.
    pub target_kind: String,
    /// The integration or subscription.
    pub target_id: String,
    /// URL.
    pub endpoint: String,
    /// Method.
    pub method: String,
    /// `pending`, `delivered`, `failed`, `dead`, `dropped` or `cancelled`.
    pub status: String,
    /// How many attempts were made.
    pub attempt_count: i64,
    /// When the next attempt is due (pending only), epoch ms.
    pub next_attempt_at: Option<i64>,
    /// Last error.
    pub last_error: Option<String>,
    /// Last HTTP status.
    pub last_status: Option<i64>,
    /// Created, epoch ms.
    pub created: i64,
    /// Modified, epoch ms.
    pub modified: i64,
    /// When it reached its final status.
    pub completed: Option<i64>,
    /// Every attempt: time, status code, error, duration, response excerpt
    /// (single-delivery reads only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts: Option<Vec<AttemptOut>>,
    /// What the transform made, sent (and resent) as is: absent until the
    /// first attempt ran the plugin (single-delivery reads only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestOut>,
}

/// The request a delivery sends: the transform's body, content type and
/// the plugin's headers (the gateway adds its own at each attempt).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequestOut {
    /// Content type.
    pub content_type: String,
    /// The body: text when it is UTF-8, else base64.
    pub body: String,
    /// `utf8` or `base64`.
    pub body_encoding: &'static str,
    /// The plugin's headers, as `[name, value]` pairs.
    #[schema(value_type = Vec<Vec<String>>)]
    pub headers: Vec<(String, String)>,
}

impl RequestOut {
    /// The request `d` sends, once its transform ran.
    fn of(d: &Delivery) -> Option<Self> {
        use base64::Engine as _;
        if !d.transformed {
            return None;
        }
        let bytes = d.body.as_deref().unwrap_or_default();
        let (body, body_encoding) = match std::str::from_utf8(bytes) {
            Ok(text) => (text.to_owned(), "utf8"),
            Err(_) => (
                base64::engine::general_purpose::STANDARD.encode(bytes),
                "base64",
            ),
        };
        Some(Self {
            content_type: d
                .content_type
                .clone()
                .unwrap_or_else(|| "application/json".into()),
            body,
            body_encoding,
            headers: d.headers.clone(),
        })
    }
}

/// One attempt.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptOut {
    /// 1, 2, …
    pub attempt: i64,
    /// Started, epoch ms.
    pub started: i64,
    /// Duration.
    pub duration_ms: i64,
    /// The receiver's status code.
    pub status_code: Option<i64>,
    /// What went wrong.
    pub error: Option<String>,
    /// The start of the response body (≤ 4 KiB).
    pub response_excerpt: Option<String>,
    /// The headers sent, in order, as `[name, value]` pairs; the auth
    /// header's value is `[redacted]`. Empty when the attempt ended before
    /// a request was built (a plugin or token failure).
    #[schema(value_type = Vec<Vec<String>>)]
    pub request_headers: Vec<(String, String)>,
}

/// An event with its deliveries.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventOut {
    /// Id.
    pub id: String,
    /// Type.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Payload, as it was posted.
    #[schema(value_type = Object)]
    pub payload: Box<RawValue>,
    /// Shop.
    pub shop_id: Option<String>,
    /// Accepted, epoch ms.
    pub created: i64,
    /// Its deliveries.
    pub deliveries: Vec<DeliveryOut>,
}

impl From<&Delivery> for DeliveryOut {
    fn from(d: &Delivery) -> Self {
        Self {
            id: d.id.clone(),
            event_id: d.event_id.clone(),
            event_type: d.event_type.clone(),
            target_kind: d.target_kind.as_str().into(),
            target_id: d.target_id.clone(),
            endpoint: d.endpoint.clone(),
            method: d.method.as_str().into(),
            status: d.status.as_str().into(),
            attempt_count: d.attempts,
            next_attempt_at: (d.status == DeliveryStatus::Pending).then_some(d.next_attempt_at),
            last_error: d.last_error.clone(),
            last_status: d.last_status,
            created: d.created,
            modified: d.modified,
            completed: d.completed,
            attempts: None,
            request: None,
        }
    }
}

impl From<Attempt> for AttemptOut {
    fn from(a: Attempt) -> Self {
        Self {
            attempt: a.attempt,
            started: a.started,
            duration_ms: a.duration_ms,
            status_code: a.status_code,
            error: a.error,
            response_excerpt: a.response_excerpt,
            request_headers: a.request_headers,
        }
    }
}

/// Accept an event. Answers 202 only after the event and its deliveries
/// are durably stored.
#[utoipa::path(post, path = "/v1/events", tag = "events", request_body = EventIn,
    params(("traceparent" = Option<String>, Header, description = "W3C trace context: the event's trace continues it, and receivers get it (as the parent of the gateway's span when tracing is on)")),
    responses((status = 202, body = Envelope<AcceptedOut>), (status = 400, description = "invalid, or the payload does not match its type's schema (each failing path a field error)", body = super::error::ErrorEnvelope),
              (status = 401, body = super::error::ErrorEnvelope), (status = 413, body = super::error::ErrorEnvelope),
              (status = 422, description = "the event would make more deliveries than one event may", body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn accept(
    State(state): State<AppState>,
    auth: OrgAuth,
    headers: axum::http::HeaderMap,
    JsonBody(body): JsonBody<EventIn>,
) -> Result<Response, ApiError> {
    let mut p = Problems::default();
    if let Some(id) = &body.id {
        let ok = !id.is_empty() && id.len() <= 200 && id.bytes().all(|b| b.is_ascii_graphic());
        if !ok {
            p.add("id", "must be 1 to 200 visible ASCII characters");
        }
    }
    let event_type = p.required("type", body.event_type);
    if let Some(t) = &event_type {
        p.event_type("type", t);
        if t.starts_with(operational::PREFIX) {
            p.add(
                "type",
                "types starting with `hookgate.` are the gateway's own operational events",
            );
        }
    }
    let payload = p.required("payload", body.payload);
    if let Some(shop) = &body.shop_id {
        p.text("shopId", shop, 200);
    }
    p.finish()?;
    let event = NewEvent {
        id: body.id,
        event_type: event_type.unwrap_or_default(),
        payload: payload
            .map(|p| String::from(Box::<str>::from(p)))
            .unwrap_or_default(),
        shop_id: body.shop_id,
        traceparent: telemetry::caller_traceparent(&headers),
    };
    let ingested =
        ingest::accept(&state.store, &state.schemas, &auth.organization_id, event).await?;
    Ok(accepted(ingested))
}

/// The 202 answer for an accepted event (or one seen before).
pub(super) fn accepted(ingested: crate::store::Ingested) -> Response {
    let message = if ingested.created {
        "event accepted"
    } else {
        "event already accepted"
    };
    let out = AcceptedOut {
        event_id: ingested.event_id,
        deliveries: ingested.deliveries,
        created: ingested.created,
    };
    (
        StatusCode::ACCEPTED,
        axum::Json(Envelope {
            message: message.into(),
            data: out,
        }),
    )
        .into_response()
}

/// An event and the status of each of its deliveries.
#[utoipa::path(get, path = "/v1/events/{id}", tag = "events", params(("id" = String, Path)),
    responses((status = 200, body = Envelope<EventOut>), (status = 401, body = super::error::ErrorEnvelope), (status = 404, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn get_event(
    State(state): State<AppState>,
    auth: OrgAuth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let event = state
        .store
        .get_event(&auth.organization_id, &id)
        .await
        .map_err(ApiError::not_found("event"))?;
    let deliveries = state
        .store
        .event_deliveries(&auth.organization_id, &id)
        .await?;
    Ok(ok(
        "event",
        EventOut {
            payload: RawValue::from_string(event.payload)
                .map_err(|e| ApiError::Internal(e.into()))?,
            id: event.id,
            event_type: event.event_type,
            shop_id: event.shop_id,
            created: event.created,
            deliveries: deliveries.iter().map(DeliveryOut::from).collect(),
        },
    ))
}

/// Filters of the delivery list and bulk replay.
#[derive(Debug, Deserialize, IntoParams, ToSchema)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// `pending`, `delivered`, `failed`, `dead`, `dropped` or `cancelled`.
    pub status: Option<String>,
    /// Created at or after, epoch ms.
    pub since: Option<i64>,
    /// Created before, epoch ms.
    pub until: Option<i64>,
    /// Only deliveries of events of this type.
    pub event_type: Option<String>,
    /// Only deliveries to this destination (an integration or subscription id).
    pub destination_id: Option<String>,
}

impl DeliveryQuery {
    fn filter(self) -> Result<DeliveryFilter, ApiError> {
        let status = match self.status.as_deref() {
            None => None,
            Some(s) => Some(DeliveryStatus::parse(s).ok_or_else(|| {
                ApiError::field(
                    "status",
                    "must be pending, delivered, failed, dead, dropped or cancelled",
                )
            })?),
        };
        Ok(DeliveryFilter {
            status,
            since: self.since,
            until: self.until,
            event_type: self.event_type,
            destination_id: self.destination_id,
        })
    }
}

/// List deliveries, newest first.
#[utoipa::path(get, path = "/v1/deliveries", tag = "deliveries", params(Pagination, DeliveryQuery),
    responses((status = 200, body = Envelope<ListOut<DeliveryOut>>), (status = 400, body = super::error::ErrorEnvelope), (status = 401, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn list(
    State(state): State<AppState>,
    auth: OrgAuth,
    Query(page): Query<Pagination>,
    Query(q): Query<DeliveryQuery>,
) -> Result<Response, ApiError> {
    let page = page.validate()?;
    let filter = q.filter()?;
    let found = state
        .store
        .list_deliveries(&auth.organization_id, &filter, page.start, page.limit)
        .await?;
    Ok(ok(
        "deliveries",
        ListOut::of(&found, page, DeliveryOut::from),
    ))
}

/// A delivery with every attempt.
#[utoipa::path(get, path = "/v1/deliveries/{id}", tag = "deliveries", params(("id" = String, Path)),
    responses((status = 200, body = Envelope<DeliveryOut>), (status = 401, body = super::error::ErrorEnvelope), (status = 404, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn get(
    State(state): State<AppState>,
    auth: OrgAuth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let delivery = state
        .store
        .get_delivery(&auth.organization_id, &id)
        .await
        .map_err(ApiError::not_found("delivery"))?;
    let mut out = DeliveryOut::from(&delivery);
    out.request = RequestOut::of(&delivery);
    out.attempts = Some(
        state
            .store
            .attempts(&auth.organization_id, &id)
            .await?
            .into_iter()
            .map(AttemptOut::from)
            .collect(),
    );
    Ok(ok("delivery", out))
}

/// Send a finished delivery again (a fresh set of attempts, same
/// `webhook-id` and body).
#[utoipa::path(post, path = "/v1/deliveries/{id}/replay", tag = "deliveries", params(("id" = String, Path)),
    responses((status = 202, body = Envelope<DeliveryOut>), (status = 401, body = super::error::ErrorEnvelope), (status = 404, body = super::error::ErrorEnvelope), (status = 409, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn replay(
    State(state): State<AppState>,
    auth: OrgAuth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let delivery = state
        .store
        .get_delivery(&auth.organization_id, &id)
        .await
        .map_err(ApiError::not_found("delivery"))?;
    if matches!(
        delivery.status,
        DeliveryStatus::Pending | DeliveryStatus::Dropped
    ) {
        return Err(ApiError::Conflict(format!(
            "the delivery is {}",
            delivery.status.as_str()
        )));
    }
    state
        .store
        .replay(
            &auth.organization_id,
            Some(&id),
            &DeliveryFilter::default(),
            now_ms(),
        )
        .await?;
    let delivery = state.store.get_delivery(&auth.organization_id, &id).await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(Envelope {
            message: "delivery queued again".into(),
            data: DeliveryOut::from(&delivery),
        }),
    )
        .into_response())
}

/// How many deliveries a bulk replay queued.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReplayedOut {
    /// Count.
    pub replayed: u64,
}

/// Send again every finished delivery matching a status and time range.
#[utoipa::path(post, path = "/v1/deliveries/replay", tag = "deliveries", request_body = DeliveryQuery,
    responses((status = 202, body = Envelope<ReplayedOut>), (status = 400, body = super::error::ErrorEnvelope), (status = 401, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn replay_many(
    State(state): State<AppState>,
    auth: OrgAuth,
    JsonBody(q): JsonBody<DeliveryQuery>,
) -> Result<Response, ApiError> {
    let filter = q.filter()?;
    if filter.status.is_none()
        && filter.since.is_none()
        && filter.event_type.is_none()
        && filter.destination_id.is_none()
    {
        return Err(ApiError::field(
            "status",
            "name a status, a `since` time, an `eventType` or a `destinationId`, so a replay never resends everything by accident",
        ));
    }
    let replayed = state
        .store
        .replay(&auth.organization_id, None, &filter, now_ms())
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(Envelope {
            message: "deliveries queued again".into(),
            data: ReplayedOut { replayed },
        }),
    )
        .into_response())
}
