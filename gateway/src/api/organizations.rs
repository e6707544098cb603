//! `/v1/organizations` (admin key): tenants and their API keys.

use super::error::ApiError;
use super::extract::{Admin, JsonBody, Pagination, Path, Query};
use super::validate::Problems;
use super::{AppState, Envelope, ListOut, created, ok};
use crate::model::{ApiKey, OrgId, Organization, now_ms};
use crate::secrets;
use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A new organization.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrganizationIn {
    /// Display name.
    pub name: Option<String>,
}

/// An organization as returned.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrganizationOut {
    /// `org_…`
    pub id: String,
    /// Name.
    pub name: String,
    /// Created, epoch ms.
    pub created: i64,
    /// Its first API key: only in the answer to create.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
}

/// A new API key, shown once.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyOut {
    /// `key_…`: use it to revoke the key.
    pub id: String,
    /// The owning organization.
    pub organization_id: String,
    /// The key itself: shown only now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    /// Created, epoch ms.
    pub created: i64,
    /// Revoked, epoch ms.
    pub revoked: Option<i64>,
}

impl From<&Organization> for OrganizationOut {
    fn from(o: &Organization) -> Self {
        Self {
            id: o.id.to_string(),
            name: o.name.clone(),
            created: o.created,
            api_key: None,
        }
    }
}

/// Create an organization and its first API key.
#[utoipa::path(post, path = "/v1/organizations", tag = "organizations", request_body = OrganizationIn,
    responses((status = 201, body = Envelope<OrganizationOut>), (status = 400, body = super::error::ErrorEnvelope), (status = 401, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn create(
    State(state): State<AppState>,
    _: Admin,
    JsonBody(body): JsonBody<OrganizationIn>,
) -> Result<Response, ApiError> {
    let mut p = Problems::default();
    let name = p.required("name", body.name);
    if let Some(name) = &name {
        p.text("name", name, 200);
    }
    p.finish()?;
    let now = now_ms();
    let org = Organization {
        id: OrgId::generate(),
        name: name.unwrap_or_default(),
        created: now,
    };
    let key = secrets::new_api_key();
    state
        .store
        .create_organization(
            &org,
            &ApiKey {
                id: key.id.clone(),
                organization_id: org.id.clone(),
                secret_hash: key.secret_hash,
                created: now,
                revoked: None,
            },
        )
        .await?;
    tracing::info!(organization_id = %org.id, "organization created");
    let mut out = OrganizationOut::from(&org);
    out.api_key = Some(key.key);
    Ok(created("organization created", out))
}

/// List organizations.
#[utoipa::path(get, path = "/v1/organizations", tag = "organizations", params(Pagination),
    responses((status = 200, body = Envelope<ListOut<OrganizationOut>>), (status = 400, body = super::error::ErrorEnvelope), (status = 401, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn list(
    State(state): State<AppState>,
    _: Admin,
    Query(page): Query<Pagination>,
) -> Result<Response, ApiError> {
    let page = page.validate()?;
    let found = state
        .store
        .list_organizations(page.start, page.limit)
        .await?;
    Ok(ok(
        "organizations",
        ListOut::of(&found, page, OrganizationOut::from),
    ))
}

/// Add an API key to an organization (rotation: add, switch, revoke the old).
#[utoipa::path(post, path = "/v1/organizations/{id}/keys", tag = "organizations", params(("id" = String, Path)),
    responses((status = 201, body = Envelope<KeyOut>), (status = 401, body = super::error::ErrorEnvelope), (status = 404, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn create_key(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let org = state
        .store
        .get_organization(&id)
        .await
        .map_err(ApiError::not_found("organization"))?;
    let key = secrets::new_api_key();
    let now = now_ms();
    state
        .store
        .insert_api_key(&ApiKey {
            id: key.id.clone(),
            organization_id: org.id.clone(),
            secret_hash: key.secret_hash,
            created: now,
            revoked: None,
        })
        .await?;
    tracing::info!(organization_id = %org.id, key_id = %key.id, "api key created");
    Ok(created(
        "api key created",
        KeyOut {
            id: key.id,
            organization_id: org.id.to_string(),
            api_key: Some(key.key),
            created: now,
            revoked: None,
        },
    ))
}

/// Revoke an API key; it stops working at once on this replica (within
/// seconds on others).
#[utoipa::path(delete, path = "/v1/organizations/{id}/keys/{key_id}", tag = "organizations", params(("id" = String, Path), ("key_id" = String, Path)),
    responses((status = 200, body = Envelope<KeyOut>), (status = 401, body = super::error::ErrorEnvelope), (status = 404, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn revoke_key(
    State(state): State<AppState>,
    _: Admin,
    Path((id, key_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let org = state
        .store
        .get_organization(&id)
        .await
        .map_err(ApiError::not_found("api key"))?;
    state
        .store
        .revoke_api_key(&org.id, &key_id, now_ms())
        .await
        .map_err(ApiError::not_found("api key"))?;
    state.keys.forget(&key_id);
    let key = state.store.get_api_key(&key_id).await?;
    tracing::info!(organization_id = %org.id, key_id = %key_id, "api key revoked");
    Ok(ok(
        "api key revoked",
        KeyOut {
            id: key.id,
            organization_id: key.organization_id.to_string(),
            api_key: None,
            created: key.created,
            revoked: key.revoked,
        },
    ))
}
