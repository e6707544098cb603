//! Request extractors that answer in the envelope: JSON bodies with
//! field-level errors, pagination, and the two kinds of API key.

use super::AppState;
use super::error::{ApiError, FieldError};
use crate::secrets;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use utoipa::IntoParams;

/// A JSON body; errors name the field (`hooks[0].endpoint`).
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(body_error)?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Parses `bytes` as `T`, naming the offending field on failure.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::Malformed(
            "the request body is empty; send a JSON object".into(),
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::Malformed(format!("the request body is not valid JSON: {inner}"))
        } else {
            let field = if path == "." { "body".to_owned() } else { path };
            ApiError::Validation(vec![FieldError::new(
                field,
                strip_position(&inner.to_string()),
            )])
        }
    })?;
    de.end()
        .map_err(|e| ApiError::Malformed(format!("the request body is not valid JSON: {e}")))?;
    Ok(value)
}

fn strip_position(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// Maps a body read failure: over the limit is 413, the rest 400.
pub fn body_error(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::TooLarge
    } else {
        ApiError::Malformed(rejection.body_text())
    }
}

/// `start` and `limit` of a list call.
#[derive(Debug, Clone, Copy, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Pagination {
    /// How many items to skip (default 0).
    #[param(minimum = 0)]
    pub start: Option<i64>,
    /// How many items to return (default 50, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// A validated page request.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    /// Skip.
    pub start: i64,
    /// Take.
    pub limit: i64,
}

impl Pagination {
    /// Checks the bounds.
    pub fn validate(self) -> Result<PageRequest, ApiError> {
        let start = self.start.unwrap_or(0);
        let limit = self.limit.unwrap_or(50);
        let mut errors = Vec::new();
        if start < 0 {
            errors.push(FieldError::new("start", "must be 0 or more"));
        }
        if !(1..=1000).contains(&limit) {
            errors.push(FieldError::new("limit", "must be between 1 and 1000"));
        }
        if errors.is_empty() {
            Ok(PageRequest { start, limit })
        } else {
            Err(ApiError::Validation(errors))
        }
    }
}

/// The key a request presents: `Authorization: Bearer …` or `X-Api-Key`.
fn presented_key(parts: &Parts) -> Option<&str> {
    if let Some(value) = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let (scheme, key) = value.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| key.trim());
    }
    parts
        .headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// The caller is the operator (admin key).
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let key = presented_key(parts).ok_or(ApiError::Unauthorized)?;
        match &state.admin_key {
            Some(expected) if secrets::constant_time_eq(key, expected.expose()) => Ok(Admin),
            _ => Err(ApiError::Unauthorized),
        }
    }
}

/// The caller acts for this organization (its API key).
#[derive(Debug, Clone)]
pub struct OrgAuth {
    /// The organization's id, as its key proved it.
    pub organization_id: crate::model::OrgId,
}

impl FromRequestParts<AppState> for OrgAuth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let key = presented_key(parts).ok_or(ApiError::Unauthorized)?;
        let (id, secret) = secrets::parse_api_key(key).ok_or(ApiError::Unauthorized)?;
        let organization_id = state.keys.verify(&state.store, id, secret).await?;
        state.rate_limits.check(organization_id.as_str())?;
        Ok(OrgAuth { organization_id })
    }
}

/// `axum::extract::Query` answering in the envelope.
#[derive(Debug, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

/// `axum::extract::Path` answering in the envelope.
#[derive(Debug, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::QueryRejection) -> Self {
        ApiError::Validation(vec![FieldError::new("query", rejection.body_text())])
    }
}

impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::PathRejection) -> Self {
        ApiError::Validation(vec![FieldError::new("path", rejection.body_text())])
    }
}
