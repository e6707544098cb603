//! Storage rows and their conversion to domain types. JSON columns have
//! their own serde types here, so the storage format is explicit and never
//! a side effect of a domain or wire type.

use super::StoreError;
use crate::model::{Authentication, Hook, Integration, Method, PluginRef, Secret, Webhook};
use crate::secrets::Cipher;
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
    pub signing_secret: Vec<u8>,
    pub plugin_name: Option<String>,
    pub plugin_version: Option<String>,
    pub config: String,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub created: i64,
    pub modified: i64,
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
}

/// Turns a secret column into its plaintext (or skips it, for lists).
type Decrypt<'a> = &'a dyn Fn(&[u8], &str) -> Result<Secret, StoreError>;

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

fn decrypt(cipher: &Cipher, data: &[u8], what: &str) -> Result<Secret, StoreError> {
    cipher
        .decrypt(data)
        .map(Secret::new)
        .map_err(|e| corrupt(what, e))
}

pub(super) fn method(s: &str) -> Result<Method, StoreError> {
    Method::parse(s).ok_or_else(|| corrupt("method", s))
}

pub(super) fn plugin_ref(name: Option<String>, version: Option<String>) -> Option<PluginRef> {
    name.map(|name| PluginRef { name, version })
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
    })
    .unwrap_or_default()
}

impl IntegrationRow {
    pub(super) fn into_domain(self, cipher: &Cipher) -> Result<Integration, StoreError> {
        let hooks: Vec<StoredHook> =
            serde_json::from_str(&self.hooks).map_err(|e| corrupt("hooks", e))?;
        let hooks = hooks
            .into_iter()
            .map(|h| {
                Ok(Hook {
                    method: method(&h.method)?,
                    hook_type: h.hook_type,
                    endpoint: h.endpoint,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        let authentication = match (self.authentication, self.client_secret) {
            (Some(json), Some(secret)) => {
                let a: StoredAuth =
                    serde_json::from_str(&json).map_err(|e| corrupt("authentication", e))?;
                Some(Authentication {
                    token_endpoint: a.token_endpoint,
                    client_id: a.client_id,
                    client_secret: decrypt(cipher, &secret, "client secret")?,
                    scope: a.scope,
                    header_format: a.header_format,
                    header_value_format: a.header_value_format,
                })
            }
            _ => None,
        };
        Ok(Integration {
            id: self.id,
            organization_id: self.organization_id,
            name: self.name,
            description: self.description,
            hooks,
            authentication,
            plugin: plugin_ref(self.plugin_name, self.plugin_version),
            config: serde_json::from_str(&self.config).map_err(|e| corrupt("config", e))?,
            enabled: self.enabled,
            disabled_reason: self.disabled_reason,
            signing_secret: decrypt(cipher, &self.signing_secret, "signing secret")?,
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
        self.into_domain_with(&|_: &[u8], _: &str| Ok(Secret::new(String::new())))
    }

    pub(super) fn into_domain(self, cipher: &Cipher) -> Result<Webhook, StoreError> {
        self.into_domain_with(&|data: &[u8], what: &str| decrypt(cipher, data, what))
    }

    fn into_domain_with(self, decrypt: Decrypt<'_>) -> Result<Webhook, StoreError> {
        let previous_secret = match (self.previous_secret, self.previous_secret_expires) {
            (Some(s), Some(expires)) => Some((decrypt(&s, "previous secret")?, expires)),
            _ => None,
        };
        Ok(Webhook {
            id: self.id,
            organization_id: self.organization_id,
            topic: self.topic,
            urls: serde_json::from_str(&self.urls).map_err(|e| corrupt("urls", e))?,
            name: self.name,
            shop_id: self.shop_id,
            method: method(&self.method)?,
            plugin: plugin_ref(self.plugin_name, self.plugin_version),
            config: serde_json::from_str(&self.config).map_err(|e| corrupt("config", e))?,
            secret: decrypt(&self.secret, "secret")?,
            previous_secret,
            deleted: self.deleted,
            disabled_reason: self.disabled_reason,
            created: self.created,
            modified: self.modified,
        })
    }
}
