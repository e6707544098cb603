//! `/v1/sources` (organization key) and `POST /v1/ingest/{sourceId}` (no
//! key: the provider's signature is the credential). A verified request
//! becomes an event of the source's organization, routed, transformed and
//! delivered like any other.

use super::error::ApiError;
use super::events::accepted;
use super::extract::{JsonBody, OrgAuth, PageRequest, Pagination, Path, Query};
use super::validate::Problems;
use super::{AppState, Envelope, ListOut, created, ok};
use crate::model::{Scheme, Secret, Source, new_id, now_ms};
use crate::pipeline::ingest::{self, NewEvent};
use crate::pipeline::request::is_header_name;
use crate::pipeline::verify::{self, Verified};
use crate::telemetry;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

/// A source as sent to `POST /v1/sources`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceIn {
    /// Name, unique in the organization: 1 to 64 of letters, digits, `.`,
    /// `_`, `-`. Events without a provider type are `source.<name>`.
    pub name: Option<String>,
    /// How requests are verified.
    pub verify: Option<VerifyIn>,
}

/// A source's verification.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyIn {
    /// `standard-webhooks`, `github`, `stripe`, `shopify` or `hmac-sha256`.
    pub scheme: Option<String>,
    /// The signing secret the provider gave (`whsec_…` for Standard
    /// Webhooks). Stored encrypted, never returned.
    pub secret: Option<String>,
    /// `hmac-sha256` only: the header carrying the hex HMAC-SHA256 of the
    /// body (optionally prefixed `sha256=`).
    pub header: Option<String>,
}

/// A source as returned.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourceOut {
    /// `src_…`
    pub id: String,
    /// Name.
    pub name: String,
    /// Verification (the secret is never returned).
    pub verify: VerifyOut,
    /// Where the provider posts: under `--public-url` when the gateway has
    /// one, else a path relative to the gateway's address.
    pub ingest_url: String,
    /// Created, epoch ms.
    pub created: i64,
}

/// A source's verification as returned.
#[derive(Debug, Serialize, ToSchema)]
pub struct VerifyOut {
    /// The scheme.
    pub scheme: String,
    /// The signature header (`hmac-sha256`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// Always `[redacted]`.
    pub secret: String,
}

impl SourceOut {
    /// `s` as returned by a gateway at `public_url`.
    fn new(s: &Source, public_url: Option<&str>) -> Self {
        Self {
            ingest_url: format!("{}/v1/ingest/{}", public_url.unwrap_or(""), s.id),
            id: s.id.clone(),
            name: s.name.clone(),
            verify: VerifyOut {
                scheme: s.scheme.as_str().to_owned(),
                header: s.header.clone(),
                secret: super::integrations::REDACTED.to_owned(),
            },
            created: s.created,
        }
    }
}

/// Headers a source may not name as its signature header.
const NOT_A_SIGNATURE_HEADER: [&str; 6] = [
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "authorization",
];

impl VerifyIn {
    fn validate(self, p: &mut Problems) -> Option<(Scheme, Secret, Option<String>)> {
        let scheme = match p.required("verify.scheme", self.scheme) {
            Some(name) => Scheme::parse(&name).or_else(|| {
                let names: Vec<&str> = Scheme::ALL.iter().map(|(n, _)| *n).collect();
                p.add(
                    "verify.scheme",
                    format!("must be one of {}", names.join(", ")),
                );
                None
            }),
            None => None,
        };
        let secret = p.required("verify.secret", self.secret);
        if let Some(secret) = &secret
            && (secret.is_empty() || secret.len() > 4096)
        {
            p.add("verify.secret", "must be 1 to 4096 characters");
        }
        if scheme == Some(Scheme::StandardWebhooks)
            && let Some(secret) = &secret
            && !secret.strip_prefix("whsec_").is_some_and(|b| {
                base64::engine::general_purpose::STANDARD
                    .decode(b)
                    .is_ok_and(|k| !k.is_empty())
            })
        {
            p.add("verify.secret", "must be whsec_ followed by base64");
        }
        let header = self.header.map(|h| h.to_ascii_lowercase());
        match (scheme, &header) {
            (Some(Scheme::HmacSha256), None) => p.add("verify.header", "is required"),
            (Some(Scheme::HmacSha256), Some(h))
                if h.len() > 128
                    || !is_header_name(h)
                    || NOT_A_SIGNATURE_HEADER.contains(&h.as_str()) =>
            {
                p.add(
                    "verify.header",
                    "must be an HTTP header name the provider sets",
                );
            }
            (Some(Scheme::HmacSha256), Some(_)) => {}
            (Some(_), Some(_)) => p.add("verify.header", "is only used with hmac-sha256"),
            _ => {}
        }
        Some((scheme?, Secret::new(secret?), header))
    }
}

/// Create a source: a platform that posts its own signed webhooks.
#[utoipa::path(post, path = "/v1/sources", tag = "sources", request_body = SourceIn,
    responses((status = 201, body = Envelope<SourceOut>), (status = 400, body = super::error::ErrorEnvelope),
              (status = 401, body = super::error::ErrorEnvelope), (status = 409, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn create(
    State(state): State<AppState>,
    auth: OrgAuth,
    JsonBody(body): JsonBody<SourceIn>,
) -> Result<Response, ApiError> {
    let mut p = Problems::default();
    let name = p.required("name", body.name);
    if let Some(name) = &name {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !ok {
            p.add(
                "name",
                "must be 1 to 64 of letters, digits, `.`, `_` and `-`",
            );
        }
    }
    let verify = p
        .required("verify", body.verify)
        .and_then(|v| v.validate(&mut p));
    p.finish()?;
    let (Some(name), Some((scheme, secret, header))) = (name, verify) else {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "validated source incomplete"
        )));
    };
    let source = Source {
        id: new_id("src"),
        organization_id: auth.organization_id,
        name,
        scheme,
        header,
        secret,
        created: now_ms(),
    };
    state.store.insert_source(&source).await?;
    Ok(created(
        "source created",
        SourceOut::new(&source, state.public_url.as_deref()),
    ))
}

/// The organization's sources, oldest first.
#[utoipa::path(get, path = "/v1/sources", tag = "sources", params(Pagination),
    responses((status = 200, body = Envelope<ListOut<SourceOut>>), (status = 400, body = super::error::ErrorEnvelope), (status = 401, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn list(
    State(state): State<AppState>,
    auth: OrgAuth,
    Query(page): Query<Pagination>,
) -> Result<Response, ApiError> {
    let page: PageRequest = page.validate()?;
    let found = state
        .store
        .list_sources(&auth.organization_id, page.start, page.limit)
        .await?;
    Ok(ok(
        "sources",
        ListOut::of(&found, page, |s| {
            SourceOut::new(s, state.public_url.as_deref())
        }),
    ))
}

/// One source.
#[utoipa::path(get, path = "/v1/sources/{id}", tag = "sources", params(("id" = String, Path)),
    responses((status = 200, body = Envelope<SourceOut>), (status = 401, body = super::error::ErrorEnvelope), (status = 404, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn get(
    State(state): State<AppState>,
    auth: OrgAuth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let found = state
        .store
        .get_source(&auth.organization_id, &id)
        .await
        .map_err(ApiError::not_found("source"))?;
    Ok(ok(
        "source",
        SourceOut::new(&found, state.public_url.as_deref()),
    ))
}

/// Delete a source: its ingest URL answers 404 after.
#[utoipa::path(delete, path = "/v1/sources/{id}", tag = "sources", params(("id" = String, Path)),
    responses((status = 200, body = Envelope<SourceOut>), (status = 401, body = super::error::ErrorEnvelope), (status = 404, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    auth: OrgAuth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let found = state
        .store
        .get_source(&auth.organization_id, &id)
        .await
        .map_err(ApiError::not_found("source"))?;
    state
        .store
        .delete_source(&auth.organization_id, &id)
        .await
        .map_err(ApiError::not_found("source"))?;
    Ok(ok(
        "source deleted",
        SourceOut::new(&found, state.public_url.as_deref()),
    ))
}

/// A provider's webhook to a source. No API key: the request must carry
/// the provider's valid signature over the exact bytes (401 otherwise,
/// nothing stored). The body (JSON) becomes the payload of an event of
/// the source's organization; its type is the provider's (`X-GitHub-Event`,
/// `X-Shopify-Topic`, the body's `type` for Stripe and Standard Webhooks;
/// characters outside letters, digits, `.`, `_`, `-`, `:` become `.`),
/// else `source.<name>`. The provider's delivery id is the idempotency key:
/// its retries create nothing new.
#[utoipa::path(post, path = "/v1/ingest/{sourceId}", tag = "sources", params(("sourceId" = String, Path)),
    request_body(content = Object, content_type = "application/json"),
    responses((status = 202, body = Envelope<super::events::AcceptedOut>), (status = 400, body = super::error::ErrorEnvelope),
              (status = 401, description = "the signature is missing, wrong, or its timestamp outside five minutes", body = super::error::ErrorEnvelope),
              (status = 404, body = super::error::ErrorEnvelope), (status = 413, body = super::error::ErrorEnvelope)))]
pub async fn ingest(
    State(state): State<AppState>,
    Path(source_id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|e| match e.status() {
        axum::http::StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge,
        _ => ApiError::Malformed(e.body_text()),
    })?;
    let source = state
        .store
        .source_for_ingest(&source_id)
        .await
        .map_err(ApiError::not_found("source"))?;
    let verified = verify::verify(&source, &headers, &body, now_ms() / 1000).map_err(|error| {
        tracing::info!(source = %source.id, %error, "source request refused");
        metrics::counter!("hookgate_source_requests_refused_total").increment(1);
        ApiError::SignatureRefused(error.to_string())
    })?;
    // Counted once verified: requests nobody signed cannot spend the
    // organization's budget.
    state.rate_limits.check(source.organization_id.as_str())?;
    let payload = std::str::from_utf8(&body)
        .ok()
        .filter(|text| serde_json::from_str::<&serde_json::value::RawValue>(text).is_ok())
        .ok_or_else(|| ApiError::Malformed("the body must be JSON".into()))?;
    let event = NewEvent {
        id: verified
            .delivery_id
            .as_deref()
            .map(|d| event_id(&source, d)),
        event_type: event_type(&source, &verified),
        payload: payload.to_owned(),
        shop_id: None,
        traceparent: telemetry::caller_traceparent(&headers),
    };
    let ingested =
        ingest::accept(&state.store, &state.schemas, &source.organization_id, event).await?;
    Ok(accepted(ingested))
}

/// The event type of a verified request: the provider's, made to fit the
/// type alphabet, else `source.<name>`.
fn event_type(source: &Source, verified: &Verified) -> String {
    let provider = verified.event_type.as_deref().map(|t| {
        t.chars()
            .take(128)
            .map(|c| {
                if c.is_ascii_alphanumeric() || ".-_:".contains(c) {
                    c
                } else {
                    '.'
                }
            })
            .collect::<String>()
    });
    match provider {
        Some(t) if !t.is_empty() && !t.starts_with(crate::pipeline::operational::PREFIX) => t,
        _ => format!("source.{}", source.name),
    }
}

/// The event id a provider's delivery id maps to: scoped to the source,
/// so two sources' ids cannot collide, and always a valid id.
fn event_id(source: &Source, delivery_id: &str) -> String {
    let digest = Sha256::digest(delivery_id.as_bytes());
    format!("{}.{}", source.id, hex::encode(&digest[..16]))
}
