//! `/v1/plugins` (admin key): upload, list, and activate plugin versions.

use super::error::ApiError;
use super::extract::{Admin, JsonBody, Path};
use super::{AppState, Envelope, created, ok};
use crate::plugin::{LoadError, PluginVersionInfo};
use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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
}

impl From<PluginVersionInfo> for PluginOut {
    fn from(v: PluginVersionInfo) -> Self {
        Self {
            sha256: v.version.clone(),
            name: v.name,
            version: v.version,
            size: v.size,
            active: v.active,
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
        other => ApiError::field("body", other.to_string()),
    }
}

/// Upload a component (`application/wasm`); it is validated against the
/// WIT world and becomes the active version.
#[utoipa::path(put, path = "/v1/plugins/{name}", tag = "plugins", params(("name" = String, Path)),
    request_body(content = Vec<u8>, content_type = "application/wasm"),
    responses((status = 201, body = Envelope<PluginOut>), (status = 400, body = super::error::ErrorEnvelope), (status = 401, body = super::error::ErrorEnvelope), (status = 413, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn upload(
    State(state): State<AppState>,
    _: Admin,
    Path(name): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    // Components may be larger than JSON bodies: their own limit.
    let bytes = axum::body::to_bytes(body, state.max_plugin_bytes)
        .await
        .map_err(|_| ApiError::TooLarge)?;
    let registry = state.registry.clone();
    let installed_name = name.clone();
    let bytes_for_store = bytes.to_vec();
    let plugin =
        tokio::task::spawn_blocking(move || registry.install(&installed_name, &bytes, true))
            .await
            .map_err(|e| ApiError::Internal(e.into()))?
            .map_err(load_error)?;
    // Stored and made active in the database, so every replica follows.
    crate::plugin_sync::publish(
        &state.store,
        &crate::plugin::LoadedFile {
            name: name.clone(),
            version: plugin.version().to_owned(),
            bytes: bytes_for_store,
        },
    )
    .await?;
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
    // The database knows every version any replica stored.
    let version = match state
        .store
        .resolve_plugin_version(&name, &body.version)
        .await
    {
        Ok(v) => v,
        Err(crate::store::StoreError::NotFound) => {
            return Err(ApiError::NotFound("plugin version"));
        }
        Err(other) => return Err(other.into()),
    };
    if state.registry.get_version(&name, &version).is_none() {
        let bytes = state.store.plugin_component(&name, &version).await?;
        let registry = state.registry.clone();
        let install_name = name.clone();
        tokio::task::spawn_blocking(move || registry.install(&install_name, &bytes, false))
            .await
            .map_err(|e| ApiError::Internal(e.into()))?
            .map_err(load_error)?;
    }
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
