//! `/v1/webhooks`: subscriptions by topic (seeds 000, 001, 002), with
//! several URLs, soft delete and secret rotation.

use super::error::ApiError;
use super::extract::{JsonBody, OrgAuth, PageRequest, Pagination, Path, Query};
use super::validate::Problems;
use super::{AppState, Envelope, ListOut, PluginRefIn, PluginRefOut, created, ok};
use crate::model::{
    Filter, Method, Ordering, PluginRef, Secret, Webhook, WebhookFilter, new_id, now_ms,
};
use crate::secrets;
use crate::store::SecretOwner;
use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

/// Most URLs one subscription may have.
const MAX_URLS: usize = 20;

/// A subscription as sent to `POST` and `PUT`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WebhookIn {
    /// Event type to receive, e.g. `customer.updated` (or use `webHookType`).
    pub topic: Option<String>,
    /// Same as `topic` (seed 002's name).
    pub web_hook_type: Option<String>,
    /// Callback URL (or use `webHookUrls`).
    pub url: Option<String>,
    /// Callback URLs; each gets every event.
    pub web_hook_urls: Option<Vec<String>>,
    /// Name.
    pub name: Option<String>,
    /// Only events for this shop.
    pub shop_id: Option<String>,
    /// `POST` (default), `PUT` or `PATCH`.
    pub method: Option<String>,
    /// A plugin that reshapes events.
    pub plugin: Option<PluginRefIn>,
    /// Plugin configuration.
    pub config: Option<BTreeMap<String, String>>,
    /// Only events that match create deliveries: dotted paths into
    /// `{type, shopId, payload}` with values or operator objects (`$eq $ne
    /// $gt $gte $lt $lte $in $nin $exists`), combined with `$and $or $not`.
    #[schema(value_type = Option<Object>)]
    pub filter: Option<serde_json::Value>,
    /// At most this many deliveries per second to each endpoint (1 to
    /// 10000; absent or null: no limit). Deliveries over it wait; none is
    /// dropped.
    #[schema(minimum = 1, maximum = 10000)]
    pub rate_limit: Option<u32>,
    /// `none` (default) or `fifo`: deliveries to each endpoint one at a
    /// time, in acceptance order; a head being retried holds the rest.
    pub ordering: Option<String>,
    /// `false` stops deliveries to it; `true` (the default) turns it back
    /// on, including after the gateway disabled it, with a fresh failure
    /// window.
    pub enabled: Option<bool>,
    /// Read-only; ignored (lets a fetched object be sent back whole).
    #[schema(read_only)]
    #[allow(dead_code)] // accepted so a fetched object can be sent back; ignored
    pub id: Option<String>,
    /// Read-only; ignored.
    #[schema(read_only)]
    #[allow(dead_code)] // accepted so a fetched object can be sent back; ignored
    pub company_id: Option<String>,
    /// Read-only; ignored.
    #[schema(read_only)]
    #[allow(dead_code)] // accepted so a fetched object can be sent back; ignored
    pub created: Option<i64>,
    /// Read-only; ignored.
    #[schema(read_only)]
    #[allow(dead_code)] // accepted so a fetched object can be sent back; ignored
    pub modified: Option<i64>,
    /// Read-only; ignored.
    #[schema(read_only)]
    #[allow(dead_code)] // accepted so a fetched object can be sent back; ignored
    pub deleted: Option<bool>,
    /// Read-only; ignored.
    #[schema(read_only)]
    #[allow(dead_code)] // accepted so a fetched object can be sent back; ignored
    pub updated: Option<bool>,
    /// Read-only; ignored.
    #[schema(read_only)]
    #[allow(dead_code)] // accepted so a fetched object can be sent back; ignored
    pub disabled_reason: Option<String>,
}

/// A subscription as returned (a PartnerWebHook, seed 002, plus seed 001's `topic` and `name`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookOut {
    /// `wh_…`
    pub id: String,
    /// Event type.
    pub topic: String,
    /// Same as `topic`.
    pub web_hook_type: String,
    /// The first URL.
    pub url: String,
    /// Every URL.
    pub web_hook_urls: Vec<String>,
    /// Name.
    pub name: Option<String>,
    /// Shop filter.
    pub shop_id: Option<String>,
    /// The owning organization.
    pub company_id: String,
    /// Method.
    pub method: String,
    /// Plugin.
    pub plugin: Option<PluginRefOut>,
    /// Plugin configuration.
    pub config: BTreeMap<String, String>,
    /// The filter, as written.
    #[schema(value_type = Option<Object>)]
    pub filter: Option<serde_json::Value>,
    /// Deliveries per second allowed to each endpoint, if limited.
    pub rate_limit: Option<u32>,
    /// `none` or `fifo`.
    pub ordering: String,
    /// Created, epoch ms.
    pub created: i64,
    /// Modified, epoch ms.
    pub modified: i64,
    /// Soft-deleted.
    pub deleted: bool,
    /// Whether it was changed after creation.
    pub updated: bool,
    /// Whether deliveries are made to it.
    pub enabled: bool,
    /// Why it is disabled, if it is.
    pub disabled_reason: Option<String>,
    /// The signing secret (`whsec_…`): only in the answers to create and rotate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl From<&Webhook> for WebhookOut {
    fn from(w: &Webhook) -> Self {
        Self {
            id: w.id.clone(),
            topic: w.topic.clone(),
            web_hook_type: w.topic.clone(),
            url: w.urls.first().cloned().unwrap_or_default(),
            web_hook_urls: w.urls.clone(),
            name: w.name.clone(),
            shop_id: w.shop_id.clone(),
            company_id: w.organization_id.to_string(),
            method: w.method.as_str().to_owned(),
            plugin: w.plugin.as_ref().map(PluginRefOut::from),
            config: w.config.clone(),
            filter: w.filter.as_ref().map(|f| f.source().clone()),
            rate_limit: w.rate_limit,
            ordering: w.ordering.as_str().to_owned(),
            created: w.created,
            modified: w.modified,
            deleted: w.deleted,
            updated: w.modified > w.created,
            enabled: w.disabled_reason.is_none(),
            disabled_reason: w.disabled_reason.clone(),
            secret: None,
        }
    }
}

struct Validated {
    topic: String,
    urls: Vec<String>,
    name: Option<String>,
    shop_id: Option<String>,
    method: Method,
    plugin: Option<PluginRef>,
    config: BTreeMap<String, String>,
    filter: Option<Filter>,
    rate_limit: Option<u32>,
    ordering: Ordering,
    /// Why it is disabled: by its owner, or not at all.
    disabled_reason: Option<String>,
}

/// The reason a subscription turned off through the API carries.
const DISABLED_BY_OWNER: &str = "disabled through the API";

impl WebhookIn {
    fn validate(self, allow_private: bool) -> Result<Validated, ApiError> {
        let mut p = Problems::default();
        let topic = match (self.topic, self.web_hook_type) {
            (Some(a), Some(b)) if a != b => {
                p.add("webHookType", "differs from `topic`; send one of them");
                None
            }
            (Some(t), _) | (None, Some(t)) => Some(t),
            (None, None) => {
                p.add("topic", "is required (or `webHookType`)");
                None
            }
        };
        if let Some(t) = &topic {
            p.event_type("topic", t);
        }
        let mut urls: Vec<String> = Vec::new();
        for (field, url) in self.url.into_iter().map(|u| ("url".to_owned(), u)).chain(
            self.web_hook_urls
                .unwrap_or_default()
                .into_iter()
                .enumerate()
                .map(|(i, u)| (format!("webHookUrls[{i}]"), u)),
        ) {
            p.url(&field, &url, allow_private);
            if !urls.contains(&url) {
                urls.push(url);
            }
        }
        if urls.is_empty() && p.0.is_empty() {
            p.add(
                "webHookUrls",
                "name at least one URL (`url` or `webHookUrls`)",
            );
        }
        if urls.len() > MAX_URLS {
            p.add("webHookUrls", format!("at most {MAX_URLS} URLs"));
        }
        if let Some(name) = &self.name {
            p.text("name", name, 200);
        }
        if let Some(shop) = &self.shop_id {
            p.text("shopId", shop, 200);
        }
        let method = match self.method.as_deref() {
            None => Method::Post,
            Some(m) => Method::parse(m).unwrap_or_else(|| {
                p.add("method", "must be POST, PUT or PATCH");
                Method::Post
            }),
        };
        let plugin = self.plugin.and_then(|r| r.validate("plugin", &mut p));
        let config = self.config.unwrap_or_default();
        super::validate_config(&config, &mut p);
        let filter = p.filter(self.filter);
        p.rate_limit(self.rate_limit);
        let ordering = p.ordering(self.ordering.as_deref());
        p.finish()?;
        Ok(Validated {
            topic: topic.unwrap_or_default(),
            urls,
            name: self.name,
            shop_id: self.shop_id,
            method,
            plugin,
            config,
            filter,
            rate_limit: self.rate_limit,
            ordering,
            disabled_reason: (self.enabled == Some(false)).then(|| DISABLED_BY_OWNER.to_owned()),
        })
    }
}

/// Query of the list call.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct WebhookQuery {
    /// Only this topic.
    pub topic: Option<String>,
    /// Only this shop.
    pub shop_id: Option<String>,
    /// Include soft-deleted subscriptions.
    pub include_deleted: Option<bool>,
}

/// Query of the delete-by-query call (seed 001: delete by topic and id).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteQuery {
    /// The subscription id.
    pub id: String,
    /// When given, must be the subscription's topic.
    pub topic: Option<String>,
}

/// Create a subscription; the answer carries its secret, once.
#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks", request_body = WebhookIn,
    responses((status = 201, body = Envelope<WebhookOut>), (status = 400, body = super::error::ErrorEnvelope),
              (status = 401, body = super::error::ErrorEnvelope), (status = 413, body = super::error::ErrorEnvelope),
              (status = 422, description = "the organization has its limit of subscriptions", body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn create(
    State(state): State<AppState>,
    auth: OrgAuth,
    JsonBody(body): JsonBody<WebhookIn>,
) -> Result<Response, ApiError> {
    let v = body.validate(state.allow_private)?;
    let now = now_ms();
    let webhook = Webhook {
        id: new_id("wh"),
        organization_id: auth.organization_id,
        topic: v.topic,
        urls: v.urls,
        name: v.name,
        shop_id: v.shop_id,
        method: v.method,
        plugin: v.plugin,
        config: v.config,
        filter: v.filter,
        rate_limit: v.rate_limit,
        ordering: v.ordering,
        secret: Secret::new(secrets::new_signing_secret()),
        previous_secret: None,
        deleted: false,
        disabled_reason: v.disabled_reason,
        created: now,
        modified: now,
    };
    state.store.insert_webhook(&webhook).await?;
    tracing::info!(webhook_id = %webhook.id, organization_id = %webhook.organization_id, topic = %webhook.topic, "webhook created");
    let mut out = WebhookOut::from(&webhook);
    out.secret = Some(webhook.secret.expose().to_owned());
    Ok(created("webhook created", out))
}

/// List subscriptions, oldest first; soft-deleted ones only with `includeDeleted=true`.
#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks", params(Pagination, WebhookQuery),
    responses((status = 200, body = Envelope<ListOut<WebhookOut>>), (status = 400, body = super::error::ErrorEnvelope), (status = 401, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn list(
    State(state): State<AppState>,
    auth: OrgAuth,
    Query(page): Query<Pagination>,
    Query(q): Query<WebhookQuery>,
) -> Result<Response, ApiError> {
    let page: PageRequest = page.validate()?;
    let filter = WebhookFilter {
        topic: q.topic,
        shop_id: q.shop_id,
        include_deleted: q.include_deleted.unwrap_or(false),
    };
    let found = state
        .store
        .list_webhooks(&auth.organization_id, &filter, page.start, page.limit)
        .await?;
    Ok(ok("webhooks", ListOut::of(&found, page, WebhookOut::from)))
}

/// Get one subscription (deleted ones too).
#[utoipa::path(get, path = "/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, body = Envelope<WebhookOut>), (status = 401, body = super::error::ErrorEnvelope), (status = 404, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn get(
    State(state): State<AppState>,
    auth: OrgAuth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let webhook = state
        .store
        .get_webhook(&auth.organization_id, &id)
        .await
        .map_err(ApiError::not_found("webhook"))?;
    Ok(ok("webhook", WebhookOut::from(&webhook)))
}

/// Replace a subscription (send the whole object; read-only fields are ignored).
#[utoipa::path(put, path = "/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)), request_body = WebhookIn,
    responses((status = 200, body = Envelope<WebhookOut>), (status = 400, body = super::error::ErrorEnvelope),
              (status = 401, body = super::error::ErrorEnvelope), (status = 404, body = super::error::ErrorEnvelope), (status = 413, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn update(
    State(state): State<AppState>,
    auth: OrgAuth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<WebhookIn>,
) -> Result<Response, ApiError> {
    let existing = state
        .store
        .get_webhook(&auth.organization_id, &id)
        .await
        .map_err(ApiError::not_found("webhook"))?;
    if existing.deleted {
        return Err(ApiError::NotFound("webhook"));
    }
    let v = body.validate(state.allow_private)?;
    let webhook = Webhook {
        topic: v.topic,
        urls: v.urls,
        name: v.name,
        shop_id: v.shop_id,
        method: v.method,
        plugin: v.plugin,
        config: v.config,
        filter: v.filter,
        rate_limit: v.rate_limit,
        ordering: v.ordering,
        disabled_reason: v.disabled_reason,
        modified: now_ms().max(existing.modified + 1),
        ..existing
    };
    state.store.update_webhook(&webhook).await?;
    state.pipeline.forget_target(&webhook.id);
    Ok(ok("webhook updated", WebhookOut::from(&webhook)))
}

/// Soft-delete a subscription: it stops receiving events at once.
#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, body = Envelope<WebhookOut>), (status = 401, body = super::error::ErrorEnvelope), (status = 404, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    auth: OrgAuth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    soft_delete(&state, &auth, &id, None).await
}

/// Soft-delete by query, `?id=…&topic=…` (seed 001's delete by topic and id).
#[utoipa::path(delete, path = "/v1/webhooks", tag = "webhooks", params(DeleteQuery),
    responses((status = 200, body = Envelope<WebhookOut>), (status = 400, body = super::error::ErrorEnvelope), (status = 401, body = super::error::ErrorEnvelope), (status = 404, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn delete_by_query(
    State(state): State<AppState>,
    auth: OrgAuth,
    Query(q): Query<DeleteQuery>,
) -> Result<Response, ApiError> {
    soft_delete(&state, &auth, &q.id, q.topic.as_deref()).await
}

async fn soft_delete(
    state: &AppState,
    auth: &OrgAuth,
    id: &str,
    topic: Option<&str>,
) -> Result<Response, ApiError> {
    let existing = state
        .store
        .get_webhook(&auth.organization_id, id)
        .await
        .map_err(ApiError::not_found("webhook"))?;
    if existing.deleted || topic.is_some_and(|t| t != existing.topic) {
        return Err(ApiError::NotFound("webhook"));
    }
    let webhook = Webhook {
        deleted: true,
        modified: now_ms().max(existing.modified + 1),
        ..existing
    };
    state.store.update_webhook(&webhook).await?;
    state.pipeline.forget_target(&webhook.id);
    tracing::info!(webhook_id = %webhook.id, "webhook deleted");
    Ok(ok("webhook deleted", WebhookOut::from(&webhook)))
}

/// Rotate the signing secret. The old one keeps signing alongside the new
/// one for the overlap (default 24 h), so receivers can switch over.
#[utoipa::path(post, path = "/v1/webhooks/{id}/secret/rotate", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, body = Envelope<WebhookOut>), (status = 401, body = super::error::ErrorEnvelope), (status = 404, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    auth: OrgAuth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let existing = state
        .store
        .get_webhook(&auth.organization_id, &id)
        .await
        .map_err(ApiError::not_found("webhook"))?;
    if existing.deleted {
        return Err(ApiError::NotFound("webhook"));
    }
    let r = super::rotate_signing_secret(&state, SecretOwner::Webhook, &auth, &id).await?;
    let webhook = Webhook {
        previous_secret: Some((existing.secret.clone(), r.previous_expires)),
        secret: r.secret,
        modified: r.now.max(existing.modified + 1),
        ..existing
    };
    state.pipeline.forget_target(&webhook.id);
    tracing::info!(webhook_id = %webhook.id, "webhook secret rotated");
    let mut out = WebhookOut::from(&webhook);
    out.secret = Some(webhook.secret.expose().to_owned());
    Ok(ok("webhook secret rotated", out))
}
