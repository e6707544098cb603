//! `/v1/plugins` (admin key): upload, list, activate plugin versions, and
//! dry-run a version against the active one.

use super::error::ApiError;
use super::extract::{Admin, JsonBody, Path, Query};
use super::{AppState, Envelope, created, ok};
use crate::model::OrgId;
use crate::pipeline::dry_run::{self, Compared};
use crate::plugin::{LoadError, Plugin, PluginSettings, PluginVersionInfo};
use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

/// One stored plugin version.
#[derive(Debug, Serialize, ToSchema)]
pub struct PluginOut {
    /// Plugin name.
    pub name: String,
    /// The version: the component's sha256, hex.
    pub version: String,
    /// Same as `version`.
    pub sha256: String,
    /// Component size in bytes.
    pub size: usize,
    /// Whether new deliveries use this version.
    pub active: bool,
    /// The sandbox settings it runs under (its own, else the defaults).
    pub limits: LimitsOut,
}

/// A plugin version's sandbox settings.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LimitsOut {
    /// Linear memory cap of one instance, MiB.
    #[serde(rename = "memoryMiB")]
    pub memory_mib: u32,
    /// Deadline of one transform, milliseconds.
    pub deadline_ms: u32,
    /// Events one instance serves (1: a fresh instance per event).
    pub reuse: u32,
}

impl From<PluginSettings> for LimitsOut {
    fn from(s: PluginSettings) -> Self {
        Self {
            memory_mib: s.memory_mib.unwrap_or_default(),
            deadline_ms: s.deadline_ms.unwrap_or_default(),
            reuse: s.reuse.unwrap_or(1),
        }
    }
}

impl From<PluginVersionInfo> for PluginOut {
    fn from(v: PluginVersionInfo) -> Self {
        Self {
            sha256: v.version.clone(),
            name: v.name,
            version: v.version,
            size: v.size,
            active: v.active,
            limits: v.limits.into(),
        }
    }
}

/// Which version to activate.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivateIn {
    /// A version (sha256, or a unique prefix of at least 8 hex digits).
    pub version: String,
}

fn load_error(e: LoadError) -> ApiError {
    match e {
        LoadError::InvalidName(_) => ApiError::field("name", e.to_string()),
        LoadError::Unknown(_) => ApiError::NotFound("plugin version"),
        LoadError::Io(io) => ApiError::Internal(io.into()),
        LoadError::Settings(ref settings) => match settings.field() {
            Some(field) => ApiError::field(field, e.to_string()),
            None => ApiError::field("settings", e.to_string()),
        },
        other => ApiError::field("body", other.to_string()),
    }
}

/// Options of an upload.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UploadQuery {
    /// Make it the active version (default `true`); `false` stores it
    /// beside the active one, e.g. to dry-run it first.
    pub activate: Option<bool>,
    /// Linear memory cap of one instance, MiB (default: the gateway's;
    /// at most the operator's `--plugin-max-memory-mib`).
    #[serde(rename = "memoryMiB")]
    #[param(rename = "memoryMiB")]
    pub memory_mib: Option<u32>,
    /// Deadline of one transform, milliseconds (at most the operator's
    /// `--plugin-max-deadline-ms`).
    pub deadline_ms: Option<u32>,
    /// Events one instance serves before it is replaced (default 1, a
    /// fresh instance per event). Globals persist between the events of
    /// one integration an instance serves: for plugins that keep no state
    /// of their own, e.g. interpreters whose instances are costly to make.
    pub reuse: Option<u32>,
}

impl UploadQuery {
    fn settings(&self) -> PluginSettings {
        PluginSettings {
            memory_mib: self.memory_mib,
            deadline_ms: self.deadline_ms,
            reuse: self.reuse,
        }
    }
}

/// Upload a component (`application/wasm`); it is validated against the
/// WIT world and becomes the active version (unless `activate=false`).
/// Uploading a stored version again replaces its settings.
#[utoipa::path(put, path = "/v1/plugins/{name}", tag = "plugins", params(("name" = String, Path), UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/wasm"),
    responses((status = 201, body = Envelope<PluginOut>), (status = 400, body = super::error::ErrorEnvelope), (status = 401, body = super::error::ErrorEnvelope), (status = 413, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn upload(
    State(state): State<AppState>,
    _: Admin,
    Path(name): Path<String>,
    Query(query): Query<UploadQuery>,
    body: Body,
) -> Result<Response, ApiError> {
    let activate = query.activate.unwrap_or(true);
    let settings = query.settings();
    // Components may be larger than JSON bodies: their own limit.
    let bytes = axum::body::to_bytes(body, state.max_plugin_bytes)
        .await
        .map_err(|_| ApiError::TooLarge)?;
    let registry = state.registry.clone();
    let installed_name = name.clone();
    let bytes_for_store = bytes.to_vec();
    let plugin = tokio::task::spawn_blocking(move || {
        registry.install(&installed_name, &bytes, settings, activate)
    })
    .await
    .map_err(|e| ApiError::Internal(e.into()))?
    .map_err(load_error)?;
    // Stored (and made active) in the database, so every replica follows.
    let file = crate::plugin::LoadedFile {
        name: name.clone(),
        version: plugin.version().to_owned(),
        bytes: bytes_for_store,
        settings,
    };
    if activate {
        crate::plugin_sync::publish(&state.store, &file).await?;
    } else {
        crate::plugin_sync::keep(&state.store, &file).await?;
    }
    tracing::info!(plugin = %name, version = plugin.version(), "plugin uploaded");
    let info = state
        .registry
        .list()
        .into_iter()
        .find(|v| v.name == name && v.version == plugin.version())
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("uploaded plugin not listed")))?;
    Ok(created("plugin stored", PluginOut::from(info)))
}

/// Every plugin version.
#[utoipa::path(get, path = "/v1/plugins", tag = "plugins",
    responses((status = 200, body = Envelope<Vec<PluginOut>>), (status = 401, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn list(State(state): State<AppState>, _: Admin) -> Result<Response, ApiError> {
    let all: Vec<PluginOut> = state
        .registry
        .list()
        .into_iter()
        .map(PluginOut::from)
        .collect();
    Ok(ok("plugins", all))
}

/// The versions of one plugin.
#[utoipa::path(get, path = "/v1/plugins/{name}", tag = "plugins", params(("name" = String, Path)),
    responses((status = 200, body = Envelope<Vec<PluginOut>>), (status = 401, body = super::error::ErrorEnvelope), (status = 404, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn get(
    State(state): State<AppState>,
    _: Admin,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let versions: Vec<PluginOut> = state
        .registry
        .list()
        .into_iter()
        .filter(|v| v.name == name)
        .map(PluginOut::from)
        .collect();
    if versions.is_empty() {
        return Err(ApiError::NotFound("plugin"));
    }
    Ok(ok("plugin versions", versions))
}

/// Make a stored version the active one (roll back or forward).
#[utoipa::path(post, path = "/v1/plugins/{name}/activate", tag = "plugins", params(("name" = String, Path)), request_body = ActivateIn,
    responses((status = 200, body = Envelope<PluginOut>), (status = 400, body = super::error::ErrorEnvelope), (status = 401, body = super::error::ErrorEnvelope), (status = 404, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn activate(
    State(state): State<AppState>,
    _: Admin,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<ActivateIn>,
) -> Result<Response, ApiError> {
    let version = loaded(&state, &name, &body.version)
        .await?
        .version()
        .to_owned();
    let plugin = state
        .registry
        .activate(&name, &version)
        .map_err(load_error)?;
    state
        .store
        .set_active_plugin(&name, &version, crate::model::now_ms())
        .await?;
    let info = state
        .registry
        .list()
        .into_iter()
        .find(|v| v.name == name && v.version == plugin.version())
        .ok_or(ApiError::NotFound("plugin version"))?;
    Ok(ok("plugin version activated", PluginOut::from(info)))
}

/// Version `wanted` of plugin `name` (a sha256 or a unique prefix), loaded
/// in this replica: the database knows every version any replica stored.
async fn loaded(state: &AppState, name: &str, wanted: &str) -> Result<Arc<Plugin>, ApiError> {
    let version = match state.store.resolve_plugin_version(name, wanted).await {
        Ok(v) => v,
        Err(crate::store::StoreError::NotFound) => {
            return Err(ApiError::NotFound("plugin version"));
        }
        Err(other) => return Err(other.into()),
    };
    if let Some(plugin) = state.registry.get_version(name, &version) {
        return Ok(plugin);
    }
    let (bytes, settings) = state.store.plugin_component(name, &version).await?;
    let registry = state.registry.clone();
    let install_name = name.to_owned();
    tokio::task::spawn_blocking(move || registry.install(&install_name, &bytes, settings, false))
        .await
        .map_err(|e| ApiError::Internal(e.into()))?
        .map_err(load_error)
}

/// A dry run: which version, on whose events, how many.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DryRunIn {
    /// The candidate version (sha256 or a unique prefix of 8+ hex digits),
    /// active or not.
    pub version: String,
    /// Only this organization's events (default: every organization's).
    pub organization_id: Option<String>,
    /// How many recent events, 1 to 1000 (default 50).
    pub limit: Option<i64>,
}

/// One event through both versions.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DryRunEventOut {
    /// The event.
    pub event_id: String,
    /// Its organization.
    pub organization_id: String,
    /// The integration or subscription it went to.
    pub destination_id: String,
    /// The active version's outcome (`{"outcome": …}`) or error (`{"error": …}`),
    /// with the lines it logged (`"logs": [{"level", "message"}]`, at most 100).
    #[schema(value_type = Object)]
    pub active: serde_json::Value,
    /// The candidate's, likewise.
    #[schema(value_type = Object)]
    pub candidate: serde_json::Value,
    /// Whether both sent the same bytes and headers (or dropped, or failed, alike).
    pub same: bool,
}

/// A dry run's answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DryRunOut {
    /// The active version.
    pub active: String,
    /// The candidate version.
    pub candidate: String,
    /// Events whose outcomes are the same.
    pub same: usize,
    /// Events where the candidate answered differently.
    pub changed: usize,
    /// Events where the candidate failed and the active version did not.
    pub candidate_failed: usize,
    /// Each event, newest first.
    pub events: Vec<DryRunEventOut>,
}

fn side(side: &crate::plugin::Logged) -> serde_json::Value {
    let logs: Vec<_> = side
        .logs
        .iter()
        .map(|l| serde_json::json!({"level": l.level, "message": l.message}))
        .collect();
    match &side.result {
        Ok(outcome) => {
            serde_json::json!({"outcome": crate::cli::outcome_json(outcome), "logs": logs})
        }
        Err(error) => serde_json::json!({"error": error.to_string(), "logs": logs}),
    }
}

impl From<Compared> for DryRunEventOut {
    fn from(c: Compared) -> Self {
        Self {
            same: c.same(),
            active: side(&c.active),
            candidate: side(&c.candidate),
            event_id: c.event_id,
            organization_id: c.organization_id.to_string(),
            destination_id: c.destination_id,
        }
    }
}

/// Run a version (active or not) on the events the active version most
/// recently transformed, in the same sandbox with the same limits, and
/// compare; nothing is sent or stored.
#[utoipa::path(post, path = "/v1/plugins/{name}/dry-run", tag = "plugins", params(("name" = String, Path)), request_body = DryRunIn,
    responses((status = 200, body = Envelope<DryRunOut>), (status = 400, body = super::error::ErrorEnvelope), (status = 401, body = super::error::ErrorEnvelope), (status = 404, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn dry_run(
    State(state): State<AppState>,
    _: Admin,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<DryRunIn>,
) -> Result<Response, ApiError> {
    let limit = body.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::field("limit", "must be 1 to 1000"));
    }
    let active = state
        .registry
        .get(&name)
        .ok_or(ApiError::NotFound("active plugin version"))?;
    let candidate = loaded(&state, &name, &body.version).await?;
    let organization = body.organization_id.map(OrgId::trusted);
    let compared = dry_run::compare(
        &state.store,
        &state.registry,
        active.clone(),
        candidate.clone(),
        organization.as_ref(),
        limit,
    )
    .await
    .map_err(|e| match e {
        dry_run::DryRunError::Store(store) => ApiError::from(store),
        other => ApiError::Internal(other.into()),
    })?;
    let (mut same, mut changed, mut candidate_failed) = (0, 0, 0);
    for c in &compared {
        match (c.same(), &c.active.result, &c.candidate.result) {
            (true, _, _) => same += 1,
            (false, Ok(_), Err(_)) => candidate_failed += 1,
            _ => changed += 1,
        }
    }
    Ok(ok(
        "dry run: nothing was sent",
        DryRunOut {
            active: active.version().to_owned(),
            candidate: candidate.version().to_owned(),
            same,
            changed,
            candidate_failed,
            events: compared.into_iter().map(DryRunEventOut::from).collect(),
        },
    ))
}
