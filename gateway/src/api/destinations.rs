//! `GET /v1/destinations`: every place the organization's deliveries go —
//! each subscription URL and each integration hook — with how it has been
//! doing over its most recent deliveries: what the dashboard's
//! destinations page shows.

use super::error::ApiError;
use super::extract::{OrgAuth, PageRequest, Pagination, Query};
use super::{AppState, Envelope, ListOut, ok};
use crate::model::WebhookFilter;
use crate::store::DestinationHealth;
use axum::extract::State;
use axum::response::Response;
use serde::Serialize;
use utoipa::ToSchema;

/// Deliveries each destination's health is computed from.
const RECENT: i64 = 200;
/// Routes of each kind read per request.
const MAX_ROUTES: i64 = 1000;

/// A destination and its recent health.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DestinationOut {
    /// The subscription (`wh_…`) or integration (`int_…`): the
    /// `destinationId` of deliveries and of the delivery search.
    pub destination_id: String,
    /// `webhook` or `integration`.
    pub kind: String,
    /// The subscription's topic, or the integration's name and hook type.
    pub name: String,
    /// The URL.
    pub endpoint: String,
    /// Whether deliveries are made to it.
    pub enabled: bool,
    /// Why it is disabled, if it is.
    pub disabled_reason: Option<String>,
    /// Deliveries looked at (its most recent, at most 200).
    pub recent_deliveries: i64,
    /// Of those, the share delivered among those finished (delivered,
    /// failed, dead); `null` when none finished.
    pub success_rate: Option<f64>,
    /// The 95th percentile of their last attempts' durations, ms.
    pub p95_latency_ms: Option<i64>,
    /// The most recent error among them.
    pub last_error: Option<String>,
}

struct Destination {
    id: String,
    kind: &'static str,
    name: String,
    endpoint: String,
    disabled_reason: Option<String>,
}

/// The organization's destinations with their recent health, a page at a
/// time (subscriptions first, oldest first).
#[utoipa::path(get, path = "/v1/destinations", tag = "deliveries", params(Pagination),
    responses((status = 200, body = Envelope<ListOut<DestinationOut>>), (status = 400, body = super::error::ErrorEnvelope), (status = 401, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn list(
    State(state): State<AppState>,
    auth: OrgAuth,
    Query(page): Query<Pagination>,
) -> Result<Response, ApiError> {
    let page: PageRequest = page.validate()?;
    let org = &auth.organization_id;
    let webhooks = state
        .store
        .list_webhooks(org, &WebhookFilter::default(), 0, MAX_ROUTES)
        .await?;
    let integrations = state.store.list_integrations(org, 0, MAX_ROUTES).await?;
    let subscriptions = webhooks.items.into_iter().flat_map(|w| {
        w.urls.into_iter().map(move |endpoint| Destination {
            id: w.id.clone(),
            kind: "webhook",
            name: w.topic.clone(),
            endpoint,
            disabled_reason: w.disabled_reason.clone(),
        })
    });
    let hooks = integrations.items.into_iter().flat_map(|i| {
        let disabled_reason =
            (!i.enabled).then(|| i.disabled_reason.unwrap_or_else(|| "disabled".into()));
        i.hooks.into_iter().map(move |h| Destination {
            id: i.id.clone(),
            kind: "integration",
            name: format!("{} · {}", i.name, h.hook_type),
            endpoint: h.endpoint,
            disabled_reason: disabled_reason.clone(),
        })
    });
    let all: Vec<Destination> = subscriptions.chain(hooks).collect();
    let total = all.len() as i64;
    let shown: Vec<Destination> = all
        .into_iter()
        .skip(page.start as usize)
        .take(page.limit as usize)
        .collect();
    let health = futures_util::future::try_join_all(shown.iter().map(|d| {
        state
            .store
            .destination_health(org, &d.id, &d.endpoint, RECENT)
    }))
    .await?;
    let items = shown
        .into_iter()
        .zip(health)
        .map(|(d, h)| out(d, h))
        .collect();
    Ok(ok("destinations", ListOut::new(items, total, page)))
}

fn out(d: Destination, h: DestinationHealth) -> DestinationOut {
    let finished = h.delivered + h.failed;
    DestinationOut {
        destination_id: d.id,
        kind: d.kind.to_owned(),
        name: d.name,
        endpoint: d.endpoint,
        enabled: d.disabled_reason.is_none(),
        disabled_reason: d.disabled_reason,
        recent_deliveries: h.deliveries,
        success_rate: (finished > 0).then(|| h.delivered as f64 / finished as f64),
        p95_latency_ms: h.p95_ms,
        last_error: h.last_error,
    }
}
