//! The one HTTP error type. Client mistakes keep their detail; internal
//! errors become an opaque 500 and are logged here, once.

use crate::pipeline::ingest::IngestError;
use crate::store::StoreError;
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

/// One problem with one field of a request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// Path of the field, e.g. `hooks[0].endpoint`.
    pub field: String,
    /// What is wrong with it.
    pub problem: String,
}

impl FieldError {
    /// A problem with `field`.
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

/// What an API call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 with per-field problems; nothing was changed.
    #[error("invalid request")]
    Validation(Vec<FieldError>),
    /// 400: the body could not be read as the expected JSON.
    #[error("{0}")]
    Malformed(String),
    /// 401: no key, or a key that is wrong or revoked.
    #[error("missing or invalid API key")]
    Unauthorized,
    /// 401: a source's webhook whose signature does not verify.
    #[error("signature refused: {0}")]
    SignatureRefused(String),
    /// 404, also for other organizations' objects.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// 409.
    #[error("conflict: {0}")]
    Conflict(String),
    /// 413.
    #[error("request body too large")]
    TooLarge,
    /// 422: the request is valid but would go past one of the gateway's
    /// limits (deliveries per event, subscriptions per organization).
    #[error("over a limit: {0}")]
    OverLimit(String),
    /// 503: the database is out of reach; nothing was changed, try again.
    #[error("service unavailable: the database is out of reach; try again")]
    Unavailable,
    /// 429: over the organization's request rate; retry after the wait.
    #[error("rate limited: too many requests for this organization")]
    RateLimited(std::time::Duration),
    /// 500: logged, never shown.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    /// A single-field validation error.
    pub fn field(field: &str, problem: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, problem)])
    }

    /// Maps a storage error, naming `what` when it was not found.
    pub fn not_found(what: &'static str) -> impl Fn(StoreError) -> ApiError {
        move |e| match e {
            StoreError::NotFound => ApiError::NotFound(what),
            other => other.into(),
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::Validation(_) | Self::Malformed(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized | Self::SignatureRefused(_) => StatusCode::UNAUTHORIZED,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::OverLimit(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Validation(_) => "validation_error",
            Self::Malformed(_) => "malformed_request",
            Self::Unauthorized => "unauthorized",
            Self::SignatureRefused(_) => "invalid_signature",
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::TooLarge => "payload_too_large",
            Self::OverLimit(_) => "limit_exceeded",
            Self::RateLimited(_) => "rate_limited",
            Self::Unavailable => "unavailable",
            Self::Internal(_) => "internal_error",
        }
    }
}

impl From<StoreError> for ApiError {
    /// Not found is a 404 and a unique constraint a 409; an unreachable
    /// database is a 503 (logged); anything else is a 500.
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => Self::NotFound("object"),
            StoreError::Conflict(what) => Self::Conflict(format!("{what} already exists")),
            StoreError::TooManyDeliveries { .. } | StoreError::TooManySubscriptions { .. } => {
                Self::OverLimit(error.to_string())
            }
            other if other.is_unavailable() => {
                tracing::error!(error = %other, "database unavailable");
                Self::Unavailable
            }
            other => Self::Internal(other.into()),
        }
    }
}

impl From<IngestError> for ApiError {
    /// A payload that fails its type's schema is a 400 naming each failing
    /// path (`payload.total`); storage errors as usual.
    fn from(error: IngestError) -> Self {
        match error {
            IngestError::Invalid(violations) => Self::Validation(
                violations
                    .into_iter()
                    .map(|v| FieldError::new(v.at, v.problem))
                    .collect(),
            ),
            IngestError::Store(e) => e.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Internal(error) = &self {
            tracing::error!(error = %format!("{error:#}"), "request failed");
        }
        let data = match &self {
            Self::Validation(errors) => json!({"code": self.code(), "errors": errors}),
            _ => json!({"code": self.code()}),
        };
        let body = json!({"message": self.to_string(), "data": data});
        let mut response = (self.status(), Json(body)).into_response();
        if matches!(self, Self::Unavailable) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(1));
        }
        if let Self::RateLimited(wait) = self {
            // Whole seconds, rounded up: a client that waits this long gets in.
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        }
        response
    }
}

/// The error envelope, as documented.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorEnvelope {
    /// What went wrong.
    pub message: String,
    /// `{code, errors?}`.
    pub data: ErrorData,
}

/// The `data` of an error envelope.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorData {
    /// Machine-readable code: `validation_error`, `malformed_request`,
    /// `unauthorized`, `not_found`, `conflict`, `payload_too_large`,
    /// `limit_exceeded`, `rate_limited`, `unavailable`, `internal_error`,
    /// `method_not_allowed`.
    pub code: String,
    /// Per-field problems, for `validation_error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
}
