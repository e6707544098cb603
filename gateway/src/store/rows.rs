//! Storage rows and their conversion to domain types. JSON columns have
//! their own serde types here, so the storage format is explicit and never
//! a side effect of a domain or wire type.

use super::StoreError;
use super::management::WEBHOOK_SIGNING_SECRET;
use super::queue::executor::{FromRow, Row};
use crate::model::{
    Attempt, Authentication, Delivery, DeliveryStatus, Event, EventType, Filter, Hook, Integration,
    Method, Ordering, OrgId, PluginRef, Secret, TargetKind, TlsIdentity, Webhook,
};
use crate::secrets::{Cipher, SecretSlot};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, sqlx::FromRow)]
pub(super) struct IntegrationRow {
    pub id: String,
    pub organization_id: String,
    pub name: String,
    pub description: Option<String>,
    pub hooks: String,
    pub authentication: Option<String>,
    pub client_secret: Option<Vec<u8>>,
    pub tls_private_key: Option<Vec<u8>>,
    pub signing_secret: Vec<u8>,
    pub previous_signing_secret: Option<Vec<u8>>,
    pub previous_signing_secret_expires: Option<i64>,
    pub plugin_name: Option<String>,
    pub plugin_version: Option<String>,
    pub config: String,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub created: i64,
    pub modified: i64,
    pub filter: Option<String>,
    pub rate_limit: Option<i64>,
    pub ordering: String,
}

#[derive(Debug, sqlx::FromRow)]
pub(super) struct WebhookRow {
    pub id: String,
    pub organization_id: String,
    pub topic: String,
    pub urls: String,
    pub name: Option<String>,
    pub shop_id: Option<String>,
    pub method: String,
    pub plugin_name: Option<String>,
    pub plugin_version: Option<String>,
    pub config: String,
    pub secret: Vec<u8>,
    pub previous_secret: Option<Vec<u8>>,
    pub previous_secret_expires: Option<i64>,
    pub deleted: bool,
    pub disabled_reason: Option<String>,
    pub created: i64,
    pub modified: i64,
    pub filter: Option<String>,
    pub rate_limit: Option<i64>,
    pub ordering: String,
}

#[derive(Debug, sqlx::FromRow)]
pub(super) struct EventTypeRow {
    pub organization_id: String,
    pub name: String,
    pub description: Option<String>,
    pub schema: Option<String>,
    pub created: i64,
    pub modified: i64,
}

impl EventTypeRow {
    pub(super) fn into_domain(self) -> Result<EventType, StoreError> {
        Ok(EventType {
            organization_id: OrgId::trusted(self.organization_id),
            name: self.name,
            description: self.description,
            schema: self
                .schema
                .map(|s| serde_json::from_str(&s).map_err(|e| corrupt("schema", e)))
                .transpose()?,
            created: self.created,
            modified: self.modified,
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct StoredHook {
    #[serde(rename = "type")]
    pub hook_type: String,
    pub method: String,
    pub endpoint: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct StoredAuth {
    pub token_endpoint: String,
    pub client_id: String,
    pub scope: Option<String>,
    pub header_format: String,
    pub header_value_format: String,
    #[serde(flatten)]
    pub options: crate::model::TokenOptions,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_certificate: Option<String>,
}

/// Turns a secret column (named) into its plaintext (or skips it, for
/// lists).
type Decrypt<'a> = &'a dyn Fn(&[u8], &'static str) -> Result<Secret, StoreError>;

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

fn decrypt(cipher: &Cipher, data: &[u8], slot: SecretSlot<'_>) -> Result<Secret, StoreError> {
    cipher
        .decrypt(data, slot)
        .map(Secret::new)
        .map_err(|e| corrupt(slot.column, e))
}

pub(super) fn ordering(s: &str) -> Result<Ordering, StoreError> {
    Ordering::parse(s).ok_or_else(|| corrupt("ordering", s))
}

pub(super) fn method(s: &str) -> Result<Method, StoreError> {
    Method::parse(s).ok_or_else(|| corrupt("method", s))
}

pub(super) fn plugin_ref(name: Option<String>, version: Option<String>) -> Option<PluginRef> {
    name.map(|name| PluginRef { name, version })
}

/// A stored filter (JSON as written), parsed again.
pub(super) fn stored_filter(text: Option<&str>) -> Result<Option<Filter>, StoreError> {
    text.map(|text| {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| corrupt("filter", e))?;
        Filter::parse(&value).map_err(|e| corrupt("filter", e))
    })
    .transpose()
}

/// A filter as stored: the JSON it was written as.
pub(super) fn filter_json(filter: &Option<Filter>) -> Option<String> {
    filter.as_ref().map(|f| f.source().to_string())
}

pub(super) fn config_json(config: &BTreeMap<String, String>) -> String {
    serde_json::to_string(config).unwrap_or_else(|_| "{}".into())
}

pub(super) fn hooks_json(hooks: &[Hook]) -> String {
    let stored: Vec<StoredHook> = hooks
        .iter()
        .map(|h| StoredHook {
            hook_type: h.hook_type.clone(),
            method: h.method.as_str().to_owned(),
            endpoint: h.endpoint.clone(),
        })
        .collect();
    serde_json::to_string(&stored).unwrap_or_else(|_| "[]".into())
}

pub(super) fn auth_json(auth: &Authentication) -> String {
    serde_json::to_string(&StoredAuth {
        token_endpoint: auth.token_endpoint.clone(),
        client_id: auth.client_id.clone(),
        scope: auth.scope.clone(),
        header_format: auth.header_format.clone(),
        header_value_format: auth.header_value_format.clone(),
        options: auth.options.clone(),
        tls_certificate: auth
            .tls_client_certificate
            .as_ref()
            .map(|t| t.certificate.clone()),
    })
    .unwrap_or_default()
}

/// An integration's hooks from their stored JSON.
fn stored_hooks(json: &str) -> Result<Vec<Hook>, StoreError> {
    let hooks: Vec<StoredHook> = serde_json::from_str(json).map_err(|e| corrupt("hooks", e))?;
    hooks
        .into_iter()
        .map(|h| {
            Ok(Hook {
                method: method(&h.method)?,
                hook_type: h.hook_type,
                endpoint: h.endpoint,
            })
        })
        .collect()
}

/// An integration's authentication from its stored JSON and its decrypted
/// secrets (the mTLS identity only when both halves are there).
fn stored_authentication(
    json: &str,
    client_secret: Secret,
    tls_private_key: Option<Secret>,
) -> Result<Authentication, StoreError> {
    let a: StoredAuth = serde_json::from_str(json).map_err(|e| corrupt("authentication", e))?;
    let tls_client_certificate = match (a.tls_certificate, tls_private_key) {
        (Some(certificate), Some(private_key)) => Some(TlsIdentity {
            certificate,
            private_key,
        }),
        _ => None,
    };
    Ok(Authentication {
        token_endpoint: a.token_endpoint,
        client_id: a.client_id,
        client_secret,
        scope: a.scope,
        header_format: a.header_format,
        header_value_format: a.header_value_format,
        options: a.options,
        tls_client_certificate,
    })
}

impl IntegrationRow {
    pub(super) fn into_domain(self, cipher: &Cipher) -> Result<Integration, StoreError> {
        let slot = |column| SecretSlot {
            organization: &self.organization_id,
            row: &self.id,
            column,
        };
        let signing_secret = decrypt(cipher, &self.signing_secret, slot("signing_secret"))?;
        // A rotation moves the sealed secret from one column to the other:
        // both are bound to the `signing_secret` slot.
        let previous_signing_secret = match (
            &self.previous_signing_secret,
            self.previous_signing_secret_expires,
        ) {
            (Some(sealed), Some(expires)) => {
                Some((decrypt(cipher, sealed, slot("signing_secret"))?, expires))
            }
            _ => None,
        };
        let client_secret = self
            .client_secret
            .as_deref()
            .map(|secret| decrypt(cipher, secret, slot("client_secret")))
            .transpose()?;
        let tls_private_key = self
            .tls_private_key
            .as_deref()
            .map(|key| decrypt(cipher, key, slot("tls_private_key")))
            .transpose()?;
        let authentication = match (self.authentication, client_secret) {
            (Some(json), Some(client_secret)) => Some(stored_authentication(
                &json,
                client_secret,
                tls_private_key,
            )?),
            _ => None,
        };
        Ok(Integration {
            id: self.id,
            organization_id: OrgId::trusted(self.organization_id),
            name: self.name,
            description: self.description,
            hooks: stored_hooks(&self.hooks)?,
            authentication,
            plugin: plugin_ref(self.plugin_name, self.plugin_version),
            config: serde_json::from_str(&self.config).map_err(|e| corrupt("config", e))?,
            filter: stored_filter(self.filter.as_deref())?,
            rate_limit: self.rate_limit.and_then(|n| u32::try_from(n).ok()),
            ordering: ordering(&self.ordering)?,
            enabled: self.enabled,
            disabled_reason: self.disabled_reason,
            signing_secret,
            previous_signing_secret,
            created: self.created,
            modified: self.modified,
        })
    }
}

impl WebhookRow {
    /// For lists, which never show secrets: skips decrypting them (the
    /// result's secrets are empty).
    pub(super) fn into_listing(mut self) -> Result<Webhook, StoreError> {
        self.previous_secret = None;
        self.into_domain_with(&|_: &[u8], _| Ok(Secret::new(String::new())))
    }

    pub(super) fn into_domain(self, cipher: &Cipher) -> Result<Webhook, StoreError> {
        let (organization, row) = (self.organization_id.clone(), self.id.clone());
        self.into_domain_with(&|data: &[u8], column| {
            let slot = SecretSlot {
                organization: &organization,
                row: &row,
                column,
            };
            decrypt(cipher, data, slot)
        })
    }

    fn into_domain_with(self, decrypt: Decrypt<'_>) -> Result<Webhook, StoreError> {
        let previous_secret = match (self.previous_secret, self.previous_secret_expires) {
            (Some(s), Some(expires)) => Some((decrypt(&s, WEBHOOK_SIGNING_SECRET)?, expires)),
            _ => None,
        };
        Ok(Webhook {
            id: self.id,
            organization_id: OrgId::trusted(self.organization_id),
            topic: self.topic,
            urls: serde_json::from_str(&self.urls).map_err(|e| corrupt("urls", e))?,
            name: self.name,
            shop_id: self.shop_id,
            method: method(&self.method)?,
            plugin: plugin_ref(self.plugin_name, self.plugin_version),
            config: serde_json::from_str(&self.config).map_err(|e| corrupt("config", e))?,
            filter: stored_filter(self.filter.as_deref())?,
            rate_limit: self.rate_limit.and_then(|n| u32::try_from(n).ok()),
            ordering: ordering(&self.ordering)?,
            secret: decrypt(&self.secret, WEBHOOK_SIGNING_SECRET)?,
            previous_secret,
            deleted: self.deleted,
            disabled_reason: self.disabled_reason,
            created: self.created,
            modified: self.modified,
        })
    }
}

/// A row of `deliveries` (columns as `queue::sql::DELIVERY_COLUMNS`).
#[derive(Debug)]
pub(super) struct DeliveryRow {
    id: String,
    organization_id: String,
    event_id: String,
    event_type: String,
    target_kind: String,
    target_id: String,
    endpoint: String,
    method: String,
    status: String,
    transformed: bool,
    body: Option<Vec<u8>>,
    content_type: Option<String>,
    headers: Option<String>,
    attempts: i64,
    attempt_base: i64,
    next_attempt_at: i64,
    last_error: Option<String>,
    last_status: Option<i64>,
    created: i64,
    modified: i64,
    completed: Option<i64>,
    fifo_key: Option<String>,
    trace_context: Option<String>,
}

impl FromRow for DeliveryRow {
    fn from_row(row: &impl Row) -> Result<Self, StoreError> {
        Ok(Self {
            id: row.text(0)?,
            organization_id: row.text(1)?,
            event_id: row.text(2)?,
            event_type: row.text(3)?,
            target_kind: row.text(4)?,
            target_id: row.text(5)?,
            endpoint: row.text(6)?,
            method: row.text(7)?,
            status: row.text(8)?,
            transformed: row.boolean(9)?,
            body: row.opt_bytes(10)?,
            content_type: row.opt_text(11)?,
            headers: row.opt_text(12)?,
            attempts: row.int(13)?,
            attempt_base: row.int(14)?,
            next_attempt_at: row.int(15)?,
            last_error: row.opt_text(16)?,
            last_status: row.opt_int(17)?,
            created: row.int(18)?,
            modified: row.int(19)?,
            completed: row.opt_int(20)?,
            fifo_key: row.opt_text(21)?,
            trace_context: row.opt_text(22)?,
        })
    }
}

impl DeliveryRow {
    pub(super) fn into_domain(self) -> Result<Delivery, StoreError> {
        Ok(Delivery {
            target_kind: TargetKind::parse(&self.target_kind)
                .ok_or_else(|| corrupt("target kind", &self.target_kind))?,
            method: method(&self.method)?,
            status: DeliveryStatus::parse(&self.status)
                .ok_or_else(|| corrupt("status", &self.status))?,
            fifo_key: self.fifo_key,
            headers: match self.headers {
                Some(h) => serde_json::from_str(&h).map_err(|e| corrupt("headers", e))?,
                None => Vec::new(),
            },
            id: self.id,
            organization_id: OrgId::trusted(self.organization_id),
            event_id: self.event_id,
            event_type: self.event_type,
            target_id: self.target_id,
            endpoint: self.endpoint,
            transformed: self.transformed,
            body: self.body,
            content_type: self.content_type,
            attempts: self.attempts,
            attempt_base: self.attempt_base,
            next_attempt_at: self.next_attempt_at,
            last_error: self.last_error,
            last_status: self.last_status,
            created: self.created,
            modified: self.modified,
            completed: self.completed,
            trace_context: self.trace_context,
        })
    }
}

/// A row of `events` (columns as `queue::sql::EVENT_COLUMNS`).
#[derive(Debug)]
pub(super) struct EventRow(Event);

impl FromRow for EventRow {
    fn from_row(row: &impl Row) -> Result<Self, StoreError> {
        Ok(Self(Event {
            organization_id: OrgId::trusted(row.text(0)?),
            id: row.text(1)?,
            event_type: row.text(2)?,
            payload: row.text(3)?,
            shop_id: row.opt_text(4)?,
            created: row.int(5)?,
            trace_context: row.opt_text(6)?,
        }))
    }
}

impl EventRow {
    pub(super) fn into_domain(self) -> Event {
        self.0
    }
}

/// A row of `attempts`, in column order.
#[derive(Debug)]
pub(super) struct AttemptRow(Attempt);

/// The columns `AttemptRow` reads.
pub(super) const ATTEMPT_COLUMNS: &str = "a.delivery_id, a.attempt, a.started, a.duration_ms, a.status_code, a.error, a.response_excerpt, a.request_headers";

impl FromRow for AttemptRow {
    fn from_row(row: &impl Row) -> Result<Self, StoreError> {
        Ok(Self(Attempt {
            delivery_id: row.text(0)?,
            attempt: row.int(1)?,
            started: row.int(2)?,
            duration_ms: row.int(3)?,
            status_code: row.opt_int(4)?,
            error: row.opt_text(5)?,
            response_excerpt: row.opt_text(6)?,
            request_headers: match row.opt_text(7)? {
                Some(h) => serde_json::from_str(&h).map_err(|e| corrupt("request_headers", e))?,
                None => Vec::new(),
            },
        }))
    }
}

impl AttemptRow {
    pub(super) fn into_domain(self) -> Attempt {
        self.0
    }
}
