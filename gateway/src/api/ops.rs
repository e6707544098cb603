//! Health, readiness, metrics and the OpenAPI document.

use super::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Alive.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "alive")))]
pub async fn healthz() -> Response {
    Json(json!({"message": "ok", "data": null})).into_response()
}

/// Ready: the database answers and the plugin folder was loaded.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200, description = "ready"), (status = 503, description = "not ready")))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => Json(json!({"message": "ready", "data": {"database": state.store.kind(), "plugins": state.registry.list().len()}})).into_response(),
        Err(error) => {
            tracing::warn!(%error, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"message": "database unreachable", "data": {"code": "not_ready"}})),
            )
                .into_response()
        }
    }
}

/// Prometheus text.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    // Only renders: the queue gauges are counted on a schedule (server.rs),
    // so a scrape storm puts no load on the database.
    let body = state
        .metrics
        .as_ref()
        .map(|m| m.render())
        .unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// This document.
pub async fn openapi() -> Response {
    Json(super::openapi_document()).into_response()
}
