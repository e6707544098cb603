//! `/v1/event-types`: the event types an organization declares, each with
//! an optional JSON Schema (draft 2020-12) its payloads must satisfy
//! (checked at `POST /v1/events`, see `pipeline/schema.rs`).

use super::error::ApiError;
use super::extract::{JsonBody, OrgAuth, PageRequest, Pagination, Path, Query};
use super::validate::Problems;
use super::{AppState, Envelope, ListOut, created, ok};
use crate::model::{EventType, now_ms};
use crate::pipeline::schema;
use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Largest schema accepted, as JSON text.
const MAX_SCHEMA_BYTES: usize = 64 << 10;

/// An event type as sent to `POST` (with `name`) and `PUT`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventTypeIn {
    /// The type, as events name it (`POST` only; on `PUT` it is the path's).
    pub name: Option<String>,
    /// What it means.
    pub description: Option<String>,
    /// A JSON Schema (draft 2020-12) payloads of this type must satisfy.
    #[schema(value_type = Option<Object>)]
    pub schema: Option<serde_json::Value>,
    /// Read-only; ignored.
    #[schema(read_only)]
    #[allow(dead_code)] // accepted so a fetched object can be sent back; ignored
    pub created: Option<i64>,
    /// Read-only; ignored.
    #[schema(read_only)]
    #[allow(dead_code)] // accepted so a fetched object can be sent back; ignored
    pub modified: Option<i64>,
}

/// An event type as returned.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventTypeOut {
    /// The type.
    pub name: String,
    /// What it means.
    pub description: Option<String>,
    /// Its schema, as written.
    #[schema(value_type = Option<Object>)]
    pub schema: Option<serde_json::Value>,
    /// Created, epoch ms.
    pub created: i64,
    /// Modified, epoch ms.
    pub modified: i64,
}

impl From<&EventType> for EventTypeOut {
    fn from(t: &EventType) -> Self {
        Self {
            name: t.name.clone(),
            description: t.description.clone(),
            schema: t.schema.clone(),
            created: t.created,
            modified: t.modified,
        }
    }
}

struct Validated {
    description: Option<String>,
    schema: Option<serde_json::Value>,
}

impl EventTypeIn {
    fn validate(self, p: &mut Problems) -> Validated {
        if let Some(d) = &self.description
            && d.chars().count() > 2000
        {
            p.add("description", "must be at most 2000 characters");
        }
        let schema = match self.schema {
            None | Some(serde_json::Value::Null) => None,
            Some(s) if s.to_string().len() > MAX_SCHEMA_BYTES => {
                p.add(
                    "schema",
                    format!("must be at most {MAX_SCHEMA_BYTES} bytes"),
                );
                None
            }
            Some(s) => match schema::compile(&s) {
                Ok(_) => Some(s),
                Err(problem) => {
                    p.add(
                        "schema",
                        format!("is not a valid JSON Schema (draft 2020-12): {problem}"),
                    );
                    None
                }
            },
        };
        Validated {
            description: self.description,
            schema,
        }
    }
}

/// Declare an event type, with an optional schema.
#[utoipa::path(post, path = "/v1/event-types", tag = "event types", request_body = EventTypeIn,
    responses((status = 201, body = Envelope<EventTypeOut>), (status = 400, body = super::error::ErrorEnvelope),
              (status = 401, body = super::error::ErrorEnvelope), (status = 409, body = super::error::ErrorEnvelope),
              (status = 413, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn create(
    State(state): State<AppState>,
    auth: OrgAuth,
    JsonBody(body): JsonBody<EventTypeIn>,
) -> Result<Response, ApiError> {
    let mut p = Problems::default();
    let name = p.required("name", body.name.clone());
    if let Some(name) = &name {
        p.event_type("name", name);
    }
    let v = body.validate(&mut p);
    p.finish()?;
    let now = now_ms();
    let event_type = EventType {
        organization_id: auth.organization_id,
        name: name.unwrap_or_default(),
        description: v.description,
        schema: v.schema,
        created: now,
        modified: now,
    };
    state.store.insert_event_type(&event_type).await?;
    state
        .schemas
        .forget(&event_type.organization_id, &event_type.name);
    Ok(created(
        "event type created",
        EventTypeOut::from(&event_type),
    ))
}

/// The organization's event types, by name.
#[utoipa::path(get, path = "/v1/event-types", tag = "event types", params(Pagination),
    responses((status = 200, body = Envelope<ListOut<EventTypeOut>>), (status = 400, body = super::error::ErrorEnvelope), (status = 401, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn list(
    State(state): State<AppState>,
    auth: OrgAuth,
    Query(page): Query<Pagination>,
) -> Result<Response, ApiError> {
    let page: PageRequest = page.validate()?;
    let found = state
        .store
        .list_event_types(&auth.organization_id, page.start, page.limit)
        .await?;
    Ok(ok(
        "event types",
        ListOut::of(&found, page, EventTypeOut::from),
    ))
}

/// One event type.
#[utoipa::path(get, path = "/v1/event-types/{name}", tag = "event types", params(("name" = String, Path)),
    responses((status = 200, body = Envelope<EventTypeOut>), (status = 401, body = super::error::ErrorEnvelope), (status = 404, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn get(
    State(state): State<AppState>,
    auth: OrgAuth,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let found = state
        .store
        .get_event_type(&auth.organization_id, &name)
        .await
        .map_err(ApiError::not_found("event type"))?;
    Ok(ok("event type", EventTypeOut::from(&found)))
}

/// Replace an event type's description and schema.
#[utoipa::path(put, path = "/v1/event-types/{name}", tag = "event types", params(("name" = String, Path)), request_body = EventTypeIn,
    responses((status = 200, body = Envelope<EventTypeOut>), (status = 400, body = super::error::ErrorEnvelope),
              (status = 401, body = super::error::ErrorEnvelope), (status = 404, body = super::error::ErrorEnvelope),
              (status = 413, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn update(
    State(state): State<AppState>,
    auth: OrgAuth,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<EventTypeIn>,
) -> Result<Response, ApiError> {
    let existing = state
        .store
        .get_event_type(&auth.organization_id, &name)
        .await
        .map_err(ApiError::not_found("event type"))?;
    let mut p = Problems::default();
    if body.name.as_ref().is_some_and(|n| *n != name) {
        p.add(
            "name",
            "must be the name in the path (an event type cannot be renamed)",
        );
    }
    let v = body.validate(&mut p);
    p.finish()?;
    let event_type = EventType {
        description: v.description,
        schema: v.schema,
        modified: now_ms().max(existing.modified + 1),
        ..existing
    };
    state
        .store
        .update_event_type(&event_type)
        .await
        .map_err(ApiError::not_found("event type"))?;
    state.schemas.forget(&event_type.organization_id, &name);
    Ok(ok("event type updated", EventTypeOut::from(&event_type)))
}

/// Delete an event type: events of that type are accepted unchecked after.
#[utoipa::path(delete, path = "/v1/event-types/{name}", tag = "event types", params(("name" = String, Path)),
    responses((status = 200, body = Envelope<EventTypeOut>), (status = 401, body = super::error::ErrorEnvelope), (status = 404, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    auth: OrgAuth,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let existing = state
        .store
        .get_event_type(&auth.organization_id, &name)
        .await
        .map_err(ApiError::not_found("event type"))?;
    state
        .store
        .delete_event_type(&auth.organization_id, &name)
        .await
        .map_err(ApiError::not_found("event type"))?;
    state.schemas.forget(&auth.organization_id, &name);
    Ok(ok("event type deleted", EventTypeOut::from(&existing)))
}
