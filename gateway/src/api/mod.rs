//! The management and ingest HTTP API: routes, the `{message, data}`
//! envelope, authentication and the OpenAPI document. Nothing below this
//! module knows axum.

mod destinations;
pub mod error;
mod event_types;
mod events;
pub mod extract;
mod integrations;
mod keys;
mod ops;
mod organizations;
mod plugins;
mod ratelimit;
mod sources;
mod stats;
mod ui;
mod validate;
mod webhooks;

pub use error::{ApiError, FieldError};
pub use keys::KeyCache;
pub use ratelimit::RateLimits;

use crate::model::{PluginRef, Secret};
use crate::plugin::Registry;
use crate::store::Store;
use axum::Json;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use extract::PageRequest;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use validate::Problems;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// Loaded plugins.
    pub registry: Arc<Registry>,
    /// Verified API keys.
    pub keys: Arc<KeyCache>,
    /// Per-organization request rates.
    pub rate_limits: Arc<RateLimits>,
    /// The operator's key; admin routes answer 401 without one.
    pub admin_key: Option<Secret>,
    /// Whether destinations may be private addresses.
    pub allow_private: bool,
    /// How long a rotated-out signing secret keeps signing.
    pub rotation_overlap: Duration,
    /// The gateway's public address (`--public-url`), without a trailing `/`.
    pub public_url: Option<Arc<str>>,
    /// Largest accepted JSON body.
    pub max_body_bytes: usize,
    /// Largest accepted plugin upload.
    pub max_plugin_bytes: usize,
    /// Compiled event-type schemas, checked at ingest.
    pub schemas: Arc<crate::pipeline::schema::Schemas>,
    /// The delivery pipeline (woken after ingest).
    pub pipeline: Arc<crate::pipeline::Pipeline>,
    /// Prometheus exporter, when installed.
    pub metrics: Option<PrometheusHandle>,
}

/// The success envelope.
#[derive(Debug, Serialize, ToSchema)]
pub struct Envelope<T> {
    /// What happened.
    pub message: String,
    /// The result.
    pub data: T,
}

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListOut<T> {
    /// The items.
    pub items: Vec<T>,
    /// How many match in all; at least this many when `totalCapped`.
    pub total: i64,
    /// Present (true) when counting stopped at `total`: more match (delivery
    /// search counts at most 10,000 past the page).
    #[serde(rename = "totalCapped", skip_serializing_if = "std::ops::Not::not")]
    pub total_capped: bool,
    /// Skipped.
    pub start: i64,
    /// Page size asked for.
    pub limit: i64,
}

impl<T> ListOut<T> {
    fn new(items: Vec<T>, total: i64, page: PageRequest) -> Self {
        Self {
            items,
            total,
            total_capped: false,
            start: page.start,
            limit: page.limit,
        }
    }

    /// The store's `found` asked for as `page`, each item shown by `show`.
    fn of<'a, U>(
        found: &'a crate::model::Page<U>,
        page: PageRequest,
        show: impl FnMut(&'a U) -> T,
    ) -> Self {
        Self {
            total_capped: found.total_capped,
            ..Self::new(found.items.iter().map(show).collect(), found.total, page)
        }
    }
}

/// A plugin reference in a request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PluginRefIn {
    /// Plugin name.
    pub name: Option<String>,
    /// Pin a version (sha256 or a prefix of 8+ hex digits); the active one when absent.
    pub version: Option<String>,
}

/// A plugin reference as returned.
#[derive(Debug, Serialize, ToSchema)]
pub struct PluginRefOut {
    /// Plugin name.
    pub name: String,
    /// Pinned version, if any.
    pub version: Option<String>,
}

impl From<&PluginRef> for PluginRefOut {
    fn from(p: &PluginRef) -> Self {
        Self {
            name: p.name.clone(),
            version: p.version.clone(),
        }
    }
}

impl PluginRefIn {
    fn validate(self, field: &str, p: &mut Problems) -> Option<PluginRef> {
        let name = p.required(&format!("{field}.name"), self.name)?;
        let name_ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !name_ok {
            p.add(
                format!("{field}.name"),
                "must be 1 to 64 of a-z, 0-9, `-` and `_`",
            );
        }
        if let Some(v) = &self.version
            && (v.len() < 8 || v.len() > 64 || !v.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            p.add(
                format!("{field}.version"),
                "must be a sha256 or a prefix of at least 8 hex digits",
            );
        }
        Some(PluginRef {
            name,
            version: self.version.map(|v| v.to_ascii_lowercase()),
        })
    }
}

fn validate_config(config: &BTreeMap<String, String>, p: &mut Problems) {
    if config.len() > 100 {
        p.add("config", "must have at most 100 keys");
    }
    for (k, v) in config {
        if k.is_empty() || k.len() > 128 {
            p.add(format!("config.{k}"), "keys must be 1 to 128 characters");
        }
        if v.len() > 8192 {
            p.add(format!("config.{k}"), "values must be at most 8192 bytes");
        }
    }
}

/// A signing secret just rotated: the new secret, until when the previous
/// one keeps signing, and when.
struct Rotation {
    secret: Secret,
    previous_expires: crate::model::EpochMs,
    now: crate::model::EpochMs,
}

/// Rotates the signing secret of `owner` `id` of the caller's organization:
/// a new secret, the current one signing beside it for the overlap.
async fn rotate_signing_secret(
    state: &AppState,
    owner: crate::store::SecretOwner,
    auth: &extract::OrgAuth,
    id: &str,
) -> Result<Rotation, ApiError> {
    let now = crate::model::now_ms();
    let overlap = i64::try_from(state.rotation_overlap.as_millis()).unwrap_or(i64::MAX);
    let rotation = Rotation {
        secret: Secret::new(crate::secrets::new_signing_secret()),
        previous_expires: now.saturating_add(overlap),
        now,
    };
    let what = match owner {
        crate::store::SecretOwner::Webhook => "webhook",
        crate::store::SecretOwner::Integration => "integration",
    };
    state
        .store
        .rotate_signing_secret(
            owner,
            &auth.organization_id,
            id,
            &rotation.secret,
            rotation.previous_expires,
            now,
        )
        .await
        .map_err(ApiError::not_found(what))?;
    Ok(rotation)
}

/// 200 with the envelope.
pub(crate) fn ok<T: Serialize>(message: &str, data: T) -> Response {
    (
        StatusCode::OK,
        Json(Envelope {
            message: message.to_owned(),
            data,
        }),
    )
        .into_response()
}

/// 201 with the envelope.
pub(crate) fn created<T: Serialize>(message: &str, data: T) -> Response {
    (
        StatusCode::CREATED,
        Json(Envelope {
            message: message.to_owned(),
            data,
        }),
    )
        .into_response()
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Hookgate", description = "WebAssembly plugin-based webhook integration gateway. Every JSON response is `{message, data}`."),
    modifiers(&SecuritySchemes),
    components(schemas(error::ErrorEnvelope, error::ErrorData, FieldError))
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "apiKey",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Api-Key"))),
        );
    }
}

fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(organizations::create, organizations::list))
        .routes(routes!(organizations::create_key))
        .routes(routes!(organizations::revoke_key))
        .routes(routes!(integrations::create, integrations::list))
        .routes(routes!(
            integrations::get,
            integrations::update,
            integrations::delete
        ))
        .routes(routes!(integrations::rotate_secret))
        .routes(routes!(
            webhooks::create,
            webhooks::list,
            webhooks::delete_by_query
        ))
        .routes(routes!(webhooks::get, webhooks::update, webhooks::delete))
        .routes(routes!(webhooks::rotate_secret))
        .routes(routes!(event_types::create, event_types::list))
        .routes(routes!(
            event_types::get,
            event_types::update,
            event_types::delete
        ))
        .routes(routes!(events::accept))
        .routes(routes!(events::get_event))
        .routes(routes!(events::list))
        .routes(routes!(events::get))
        .routes(routes!(events::replay))
        .routes(routes!(events::replay_many))
        .routes(routes!(stats::get))
        .routes(routes!(destinations::list))
        .routes(routes!(sources::create, sources::list))
        .routes(routes!(sources::get, sources::delete))
        .routes(routes!(sources::ingest))
        .routes(routes!(plugins::list))
        .routes(routes!(plugins::upload, plugins::get))
        .routes(routes!(plugins::activate))
        .routes(routes!(plugins::dry_run))
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
}

/// The OpenAPI document of every route.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    let mut doc = router().split_for_parts().1;
    document_rate_limits(&mut doc);
    doc
}

/// Routes counted against an organization's rate limit: those its key reaches,
/// and its sources' ingest route (each verified request).
const ORGANIZATION_ROUTES: [&str; 9] = [
    "/v1/destinations",
    "/v1/ingest",
    "/v1/event-types",
    "/v1/stats",
    "/v1/sources",
    "/v1/integrations",
    "/v1/webhooks",
    "/v1/events",
    "/v1/deliveries",
];

/// Adds the 429 answer to every route under the organization's rate limit.
fn document_rate_limits(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::header::HeaderBuilder;
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let response = ResponseBuilder::new()
        .description("The organization is over its request rate (`--rate-limit`).")
        .header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(Type::Integer))
                .description(Some("Seconds to wait before retrying."))
                .build(),
        )
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorEnvelope")))
                .build(),
        )
        .build();
    for (path, item) in doc.paths.paths.iter_mut() {
        if !ORGANIZATION_ROUTES.iter().any(|p| path.starts_with(p)) {
            continue;
        }
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            operation
                .responses
                .responses
                .insert("429".to_owned(), response.clone().into());
        }
    }
}

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    let (router, _) = router().split_for_parts();
    router
        .route("/openapi.json", axum::routing::get(ops::openapi))
        .merge(ui::routes())
        .layer(DefaultBodyLimit::max(state.max_body_bytes))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            panic_response,
        ))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

async fn not_found() -> Response {
    ApiError::NotFound("route").into_response()
}

async fn method_not_allowed() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        Json(serde_json::json!({"message": "method not allowed", "data": {"code": "method_not_allowed"}})),
    )
        .into_response()
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    ApiError::Internal(anyhow::anyhow!("handler panicked")).into_response()
}
