//! `GET /v1/stats`: an organization's events and deliveries over the last
//! hour or day in time buckets, its queue depth and the destinations
//! failing most: what the dashboard's overview draws.

use super::error::ApiError;
use super::extract::{OrgAuth, Query};
use super::{AppState, Envelope, ok};
use crate::model::now_ms;
use crate::store::{Bucket, FailingDestination, Stats};
use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

/// Which window.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StatsQuery {
    /// `hour` (12 buckets of 5 minutes, the default) or `day` (24 of an hour).
    pub window: Option<String>,
}

/// Counts over a window.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatsOut {
    /// `hour` or `day`.
    pub window: String,
    /// Each bucket's length, ms.
    pub bucket_ms: i64,
    /// Oldest first.
    pub buckets: Vec<BucketOut>,
    /// Deliveries waiting to be sent, now.
    pub queue_depth: i64,
    /// The five destinations with the most failed or dead deliveries made
    /// in the window (counted among at most 100,000 of them).
    pub failing_destinations: Vec<FailingOut>,
}

/// One bucket.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BucketOut {
    /// Start, epoch ms.
    pub start: i64,
    /// Events accepted.
    pub events: i64,
    /// Deliveries made in the bucket, by their status now.
    pub deliveries: BTreeMap<String, i64>,
}

/// A failing destination.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailingOut {
    /// The subscription or integration.
    pub destination_id: String,
    /// The URL.
    pub endpoint: String,
    /// Failed and dead deliveries in the window.
    pub failures: i64,
    /// The most recent of their errors.
    pub last_error: Option<String>,
}

impl From<Bucket> for BucketOut {
    fn from(b: Bucket) -> Self {
        Self {
            start: b.start,
            events: b.events,
            deliveries: b.deliveries,
        }
    }
}

impl From<FailingDestination> for FailingOut {
    fn from(f: FailingDestination) -> Self {
        Self {
            destination_id: f.target_id,
            endpoint: f.endpoint,
            failures: f.failures,
            last_error: f.last_error,
        }
    }
}

/// The organization's counts over the last hour or day.
#[utoipa::path(get, path = "/v1/stats", tag = "events", params(StatsQuery),
    responses((status = 200, body = Envelope<StatsOut>), (status = 400, body = super::error::ErrorEnvelope), (status = 401, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn get(
    State(state): State<AppState>,
    auth: OrgAuth,
    Query(query): Query<StatsQuery>,
) -> Result<Response, ApiError> {
    let (window, bucket_ms, count) = match query.window.as_deref() {
        None | Some("hour") => ("hour", 5 * 60_000, 12),
        Some("day") => ("day", 3_600_000, 24),
        Some(_) => return Err(ApiError::field("window", "must be `hour` or `day`")),
    };
    let Stats {
        buckets,
        pending,
        failing,
    } = state
        .store
        .stats(&auth.organization_id, now_ms(), bucket_ms, count)
        .await?;
    Ok(ok(
        "stats",
        StatsOut {
            window: window.to_owned(),
            bucket_ms,
            buckets: buckets.into_iter().map(BucketOut::from).collect(),
            queue_depth: pending,
            failing_destinations: failing.into_iter().map(FailingOut::from).collect(),
        },
    ))
}
