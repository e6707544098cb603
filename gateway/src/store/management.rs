//! Organizations, API keys, integrations and webhook subscriptions.

use super::rows::{IntegrationRow, WebhookRow, auth_json, config_json, filter_json, hooks_json};
use super::{OrgTable, Store, StoreError, conflict, with_pool};
use crate::model::{
    ApiKey, EpochMs, Integration, OrgId, Organization, Page, Secret, Webhook, WebhookFilter,
};
use crate::secrets::SecretSlot;

const INTEGRATION_COLUMNS: &str = "id, organization_id, name, description, hooks, authentication, client_secret, \
     signing_secret, plugin_name, plugin_version, config, enabled, disabled_reason, created, modified, filter, rate_limit, ordering, \
     tls_private_key, previous_signing_secret, previous_signing_secret_expires";
const WEBHOOK_COLUMNS: &str = "id, organization_id, topic, urls, name, shop_id, method, plugin_name, plugin_version, \
     config, secret, previous_secret, previous_secret_expires, deleted, disabled_reason, created, modified, filter, rate_limit, ordering";

/// Where an integration's secret column is stored.
fn slot<'a>(i: &'a Integration, column: &'static str) -> SecretSlot<'a> {
    SecretSlot {
        organization: i.organization_id.as_str(),
        row: &i.id,
        column,
    }
}

/// The integration's mTLS private key, sealed.
fn tls_key(cipher: &crate::secrets::Cipher, i: &Integration) -> Option<Vec<u8>> {
    let identity = i.authentication.as_ref()?.tls_client_certificate.as_ref()?;
    Some(cipher.encrypt(identity.private_key.expose(), slot(i, "tls_private_key")))
}

/// What a webhook's signing secrets are bound to. The current and the
/// previous secret share it: a rotation moves one column into the other.
fn webhook_slot(w: &Webhook) -> SecretSlot<'_> {
    SecretSlot {
        organization: w.organization_id.as_str(),
        row: &w.id,
        column: WEBHOOK_SIGNING_SECRET,
    }
}

/// The slot name of a webhook's signing secrets (current and previous);
/// an integration's are bound to the same name.
pub(super) const WEBHOOK_SIGNING_SECRET: &str = "signing_secret";

/// What a rotated signing secret belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretOwner {
    /// A webhook subscription.
    Webhook,
    /// An integration.
    Integration,
}

impl SecretOwner {
    /// The rotation: `$1` the previous secret's expiry, `$2` the new sealed
    /// secret, `$3` now, `$4` the id, `$5` the organization.
    fn rotate_sql(self) -> &'static str {
        match self {
            Self::Webhook => {
                "UPDATE webhooks SET previous_secret = secret, previous_secret_expires = $1, secret = $2, \
                 modified = CASE WHEN modified >= $3 THEN modified + 1 ELSE $3 END \
                 WHERE id = $4 AND organization_id = $5 AND NOT deleted"
            }
            Self::Integration => {
                "UPDATE integrations SET previous_signing_secret = signing_secret, previous_signing_secret_expires = $1, \
                 signing_secret = $2, modified = CASE WHEN modified >= $3 THEN modified + 1 ELSE $3 END \
                 WHERE id = $4 AND organization_id = $5"
            }
        }
    }
}

/// Writes an integration's routing rows (one per hook) in transaction `$tx`.
macro_rules! insert_hooks {
    ($tx:ident, $i:expr) => {
        for (position, hook) in $i.hooks.iter().enumerate() {
            sqlx::query(
                "INSERT INTO integration_hooks (integration_id, organization_id, position, hook_type, method, endpoint) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&$i.id)
            .bind($i.organization_id.as_str())
            .bind(position as i64)
            .bind(&hook.hook_type)
            .bind(hook.method.as_str())
            .bind(&hook.endpoint)
            .execute(&mut *$tx)
            .await?;
        }
    };
}

impl Store {
    /// Creates an organization together with its first API key.
    pub async fn create_organization(
        &self,
        org: &Organization,
        key: &ApiKey,
    ) -> Result<(), StoreError> {
        with_pool!(self, |p| {
            let mut tx = p.begin().await?;
            sqlx::query("INSERT INTO organizations (id, name, created) VALUES ($1, $2, $3)")
                .bind(org.id.as_str())
                .bind(&org.name)
                .bind(org.created)
                .execute(&mut *tx)
                .await?;
            sqlx::query("INSERT INTO api_keys (id, organization_id, secret_hash, created) VALUES ($1, $2, $3, $4)")
                .bind(&key.id)
                .bind(key.organization_id.as_str())
                .bind(&key.secret_hash)
                .bind(key.created)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// One page of organizations, oldest first.
    pub async fn list_organizations(
        &self,
        start: i64,
        limit: i64,
    ) -> Result<Page<Organization>, StoreError> {
        let (rows, total): (Vec<(String, String, i64)>, i64) = with_pool!(self, |p| {
            let rows = sqlx::query_as("SELECT id, name, created FROM organizations ORDER BY created, id LIMIT $1 OFFSET $2")
                .bind(limit)
                .bind(start)
                .fetch_all(p)
                .await?;
            let total = sqlx::query_scalar("SELECT COUNT(*) FROM organizations")
                .fetch_one(p)
                .await?;
            (rows, total)
        });
        Ok(Page {
            items: rows
                .into_iter()
                .map(|(id, name, created)| Organization {
                    id: OrgId::trusted(id),
                    name,
                    created,
                })
                .collect(),
            total,
            total_capped: false,
        })
    }

    /// An organization by id.
    pub async fn get_organization(&self, id: &str) -> Result<Organization, StoreError> {
        let row: Option<(String, String, i64)> = with_pool!(self, |p| sqlx::query_as(
            "SELECT id, name, created FROM organizations WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(p)
        .await?);
        let (id, name, created) = row.ok_or(StoreError::NotFound)?;
        Ok(Organization {
            id: OrgId::trusted(id),
            name,
            created,
        })
    }

    /// Adds an API key to an existing organization.
    pub async fn insert_api_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        with_pool!(self, |p| {
            sqlx::query(
            "INSERT INTO api_keys (id, organization_id, secret_hash, created) VALUES ($1, $2, $3, $4)"
        )
        .bind(&key.id)
        .bind(key.organization_id.as_str())
        .bind(&key.secret_hash)
        .bind(key.created)
        .execute(p)
        .await
        .map_err(|e| conflict(e, "api key"))?
        .rows_affected()
        });
        Ok(())
    }

    /// An API key by its public id.
    pub async fn get_api_key(&self, id: &str) -> Result<ApiKey, StoreError> {
        type Row = (String, String, String, i64, Option<i64>);
        let row: Option<Row> = with_pool!(self, |p| {
            sqlx::query_as(
            "SELECT id, organization_id, secret_hash, created, revoked FROM api_keys WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(p)
        .await?
        });
        let (id, organization_id, secret_hash, created, revoked) =
            row.ok_or(StoreError::NotFound)?;
        Ok(ApiKey {
            id,
            organization_id: OrgId::trusted(organization_id),
            secret_hash,
            created,
            revoked,
        })
    }

    /// Revokes a key of `organization_id`; a revoked key stays revoked.
    pub async fn revoke_api_key(
        &self,
        organization_id: &OrgId,
        key_id: &str,
        at: EpochMs,
    ) -> Result<(), StoreError> {
        let done = with_pool!(self, |p| {
            sqlx::query(
            "UPDATE api_keys SET revoked = COALESCE(revoked, $1) WHERE id = $2 AND organization_id = $3"
        )
        .bind(at)
        .bind(key_id)
        .bind(organization_id.as_str())
        .execute(p)
        .await?
        .rows_affected()
        });
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Stores a new integration and its routing rows.
    pub async fn insert_integration(&self, i: &Integration) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO integrations ({INTEGRATION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)"
        );
        let cipher = &self.cipher;
        with_pool!(self, |p| {
            let mut tx = p.begin().await?;
            sqlx::query(&sql)
                .bind(&i.id)
                .bind(i.organization_id.as_str())
                .bind(&i.name)
                .bind(&i.description)
                .bind(hooks_json(&i.hooks))
                .bind(i.authentication.as_ref().map(auth_json))
                .bind(
                    i.authentication.as_ref().map(|a| {
                        cipher.encrypt(a.client_secret.expose(), slot(i, "client_secret"))
                    }),
                )
                .bind(cipher.encrypt(i.signing_secret.expose(), slot(i, "signing_secret")))
                .bind(i.plugin.as_ref().map(|p| p.name.clone()))
                .bind(i.plugin.as_ref().and_then(|p| p.version.clone()))
                .bind(config_json(&i.config))
                .bind(i.enabled)
                .bind(&i.disabled_reason)
                .bind(i.created)
                .bind(i.modified)
                .bind(filter_json(&i.filter))
                .bind(i.rate_limit.map(i64::from))
                .bind(i.ordering.as_str())
                .bind(tls_key(cipher, i))
                .bind(
                    i.previous_signing_secret.as_ref().map(|(secret, _)| {
                        cipher.encrypt(secret.expose(), slot(i, "signing_secret"))
                    }),
                )
                .bind(
                    i.previous_signing_secret
                        .as_ref()
                        .map(|&(_, expires)| expires),
                )
                .execute(&mut *tx)
                .await
                .map_err(|e| conflict(e, "integration"))?;
            insert_hooks!(tx, i);
            tx.commit().await?;
        });
        Ok(())
    }

    /// Replaces an integration (same id and owner) and its routing rows.
    /// Its signing secrets are left alone: only a rotation changes them, so
    /// an update made from an older read cannot undo one.
    pub async fn update_integration(&self, i: &Integration) -> Result<(), StoreError> {
        let cipher = &self.cipher;
        with_pool!(self, |p| {
            let mut tx = p.begin().await?;
            let updated = sqlx::query(
                "UPDATE integrations SET name = $1, description = $2, hooks = $3, authentication = $4, client_secret = $5, \
                 plugin_name = $6, plugin_version = $7, config = $8, enabled = $9, \
                 disabled_reason = $10, modified = $11, filter = $12, rate_limit = $13, ordering = $14, tls_private_key = $15 \
                 WHERE id = $16 AND organization_id = $17",
            )
            .bind(&i.name)
            .bind(&i.description)
            .bind(hooks_json(&i.hooks))
            .bind(i.authentication.as_ref().map(auth_json))
            .bind(i.authentication.as_ref().map(|a| cipher.encrypt(a.client_secret.expose(), slot(i, "client_secret"))))
            .bind(i.plugin.as_ref().map(|p| p.name.clone()))
            .bind(i.plugin.as_ref().and_then(|p| p.version.clone()))
            .bind(config_json(&i.config))
            .bind(i.enabled)
            .bind(&i.disabled_reason)
            .bind(i.modified)
            .bind(filter_json(&i.filter))
            .bind(i.rate_limit.map(i64::from))
            .bind(i.ordering.as_str())
            .bind(tls_key(cipher, i))
            .bind(&i.id)
            .bind(i.organization_id.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if updated == 0 {
                return Err(StoreError::NotFound);
            }
            sqlx::query(
                "DELETE FROM integration_hooks WHERE integration_id = $1 AND organization_id = $2",
            )
            .bind(&i.id)
            .bind(i.organization_id.as_str())
            .execute(&mut *tx)
            .await?;
            insert_hooks!(tx, i);
            tx.commit().await?;
        });
        self.forget_failures(&i.id).await
    }

    /// An integration of `organization_id`.
    pub async fn get_integration(
        &self,
        organization_id: &OrgId,
        id: &str,
    ) -> Result<Integration, StoreError> {
        let sql = format!(
            "SELECT {INTEGRATION_COLUMNS} FROM integrations WHERE id = $1 AND organization_id = $2"
        );
        let row: Option<IntegrationRow> = with_pool!(self, |p| sqlx::query_as(&sql)
            .bind(id)
            .bind(organization_id.as_str())
            .fetch_optional(p)
            .await?);
        row.ok_or(StoreError::NotFound)?.into_domain(&self.cipher)
    }

    /// One page of an organization's integrations, oldest first.
    pub async fn list_integrations(
        &self,
        organization_id: &OrgId,
        start: i64,
        limit: i64,
    ) -> Result<Page<Integration>, StoreError> {
        let table = OrgTable {
            table: "integrations",
            columns: INTEGRATION_COLUMNS,
            order: "created, id",
        };
        self.organization_page::<IntegrationRow>(table, organization_id, start, limit)
            .await?
            .try_map(|r| r.into_domain(&self.cipher))
    }

    /// Deletes an integration and its routing rows.
    pub async fn delete_integration(
        &self,
        organization_id: &OrgId,
        id: &str,
    ) -> Result<(), StoreError> {
        with_pool!(self, |p| {
            let mut tx = p.begin().await?;
            sqlx::query(
                "DELETE FROM integration_hooks WHERE integration_id = $1 AND organization_id = $2",
            )
            .bind(id)
            .bind(organization_id.as_str())
            .execute(&mut *tx)
            .await?;
            let deleted =
                sqlx::query("DELETE FROM integrations WHERE id = $1 AND organization_id = $2")
                    .bind(id)
                    .bind(organization_id.as_str())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            if deleted == 0 {
                return Err(StoreError::NotFound);
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Stores a new webhook subscription, unless its organization has its
    /// limit of subscriptions already ([`StoreError::TooManySubscriptions`]).
    pub async fn insert_webhook(&self, w: &Webhook) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO webhooks ({WEBHOOK_COLUMNS}) SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20 \
             WHERE (SELECT COUNT(*) FROM webhooks WHERE organization_id = $2 AND NOT deleted) < $21"
        );
        let limit = self.limits.subscriptions_per_organization;
        let cipher = &self.cipher;
        let inserted = with_pool!(self, |p| sqlx::query(&sql)
            .bind(&w.id)
            .bind(w.organization_id.as_str())
            .bind(&w.topic)
            .bind(serde_json::to_string(&w.urls).unwrap_or_default())
            .bind(&w.name)
            .bind(&w.shop_id)
            .bind(w.method.as_str())
            .bind(w.plugin.as_ref().map(|p| p.name.clone()))
            .bind(w.plugin.as_ref().and_then(|p| p.version.clone()))
            .bind(config_json(&w.config))
            .bind(cipher.encrypt(w.secret.expose(), webhook_slot(w)))
            .bind(
                w.previous_secret
                    .as_ref()
                    .map(|(s, _)| cipher.encrypt(s.expose(), webhook_slot(w)))
            )
            .bind(w.previous_secret.as_ref().map(|(_, expires)| *expires))
            .bind(w.deleted)
            .bind(&w.disabled_reason)
            .bind(w.created)
            .bind(w.modified)
            .bind(filter_json(&w.filter))
            .bind(w.rate_limit.map(i64::from))
            .bind(w.ordering.as_str())
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .execute(p)
            .await
            .map_err(|e| conflict(e, "webhook"))?
            .rows_affected());
        if inserted == 0 {
            return Err(StoreError::TooManySubscriptions { limit });
        }
        Ok(())
    }

    /// Replaces a webhook subscription (same id and owner), all but its
    /// signing secrets.
    pub async fn update_webhook(&self, w: &Webhook) -> Result<(), StoreError> {
        // The signing secrets are not written here: only a rotation changes
        // them, atomically, so a PUT racing a rotation cannot undo it.
        let updated = with_pool!(self, |p| {
            sqlx::query(
                "UPDATE webhooks SET topic = $1, urls = $2, name = $3, shop_id = $4, method = $5, plugin_name = $6, \
                 plugin_version = $7, config = $8, deleted = $9, disabled_reason = $10, modified = $11, \
                 filter = $12, rate_limit = $13, ordering = $14 WHERE id = $15 AND organization_id = $16",
            )
            .bind(&w.topic)
            .bind(serde_json::to_string(&w.urls).unwrap_or_default())
            .bind(&w.name)
            .bind(&w.shop_id)
            .bind(w.method.as_str())
            .bind(w.plugin.as_ref().map(|p| p.name.clone()))
            .bind(w.plugin.as_ref().and_then(|p| p.version.clone()))
            .bind(config_json(&w.config))
            .bind(w.deleted)
            .bind(&w.disabled_reason)
            .bind(w.modified)
            .bind(filter_json(&w.filter))
            .bind(w.rate_limit.map(i64::from))
            .bind(w.ordering.as_str())
            .bind(&w.id)
            .bind(w.organization_id.as_str())
            .execute(p)
            .await?
            .rows_affected()
        });
        if updated == 0 {
            return Err(StoreError::NotFound);
        }
        self.forget_failures(&w.id).await
    }

    /// Ends a route's failure streak: after it was changed (re-enabled, a
    /// new URL), its next failure starts a new one rather than disabling it
    /// at once.
    async fn forget_failures(&self, target_id: &str) -> Result<(), StoreError> {
        let sql = "DELETE FROM target_health WHERE target_id = $1";
        with_pool!(self, |p| sqlx::query(sql)
            .bind(target_id)
            .execute(p)
            .await
            .map(|_| ())?);
        Ok(())
    }

    /// Rotates the signing secret of a (not deleted) subscription or an
    /// integration in one statement: the current secret becomes the
    /// previous one, signing until `previous_expires`, and `secret` the
    /// current one.
    pub async fn rotate_signing_secret(
        &self,
        owner: SecretOwner,
        organization_id: &OrgId,
        id: &str,
        secret: &Secret,
        previous_expires: EpochMs,
        now: EpochMs,
    ) -> Result<(), StoreError> {
        let slot = SecretSlot {
            organization: organization_id.as_str(),
            row: id,
            column: WEBHOOK_SIGNING_SECRET,
        };
        let sealed = self.cipher.encrypt(secret.expose(), slot);
        let updated = with_pool!(self, |p| {
            sqlx::query(owner.rotate_sql())
                .bind(previous_expires)
                .bind(sealed)
                .bind(now)
                .bind(id)
                .bind(organization_id.as_str())
                .execute(p)
                .await?
                .rows_affected()
        });
        if updated == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// A webhook subscription of `organization_id` (deleted ones too).
    pub async fn get_webhook(
        &self,
        organization_id: &OrgId,
        id: &str,
    ) -> Result<Webhook, StoreError> {
        let sql = format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = $1 AND organization_id = $2"
        );
        let row: Option<WebhookRow> = with_pool!(self, |p| sqlx::query_as(&sql)
            .bind(id)
            .bind(organization_id.as_str())
            .fetch_optional(p)
            .await?);
        row.ok_or(StoreError::NotFound)?.into_domain(&self.cipher)
    }

    /// One page of an organization's webhook subscriptions, oldest first.
    /// Lists never show secrets, so the results carry none.
    pub async fn list_webhooks(
        &self,
        organization_id: &OrgId,
        filter: &WebhookFilter,
        start: i64,
        limit: i64,
    ) -> Result<Page<Webhook>, StoreError> {
        // Only the filters given, so each query walks one index.
        let mut condition = String::from("organization_id = $1");
        let mut params: Vec<&str> = Vec::new();
        if !filter.include_deleted {
            condition.push_str(" AND deleted = FALSE");
        }
        for (column, value) in [("topic", &filter.topic), ("shop_id", &filter.shop_id)] {
            if let Some(value) = value {
                params.push(value);
                condition.push_str(&format!(" AND {column} = ${}", params.len() + 1));
            }
        }
        let n = params.len();
        let sql = format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE {condition} ORDER BY created, id LIMIT ${} OFFSET ${}",
            n + 2,
            n + 3
        );
        let count_sql = format!("SELECT COUNT(*) FROM webhooks WHERE {condition}");
        let (rows, total): (Vec<WebhookRow>, i64) = with_pool!(self, |p| {
            let mut query = sqlx::query_as(&sql).bind(organization_id.as_str());
            let mut count = sqlx::query_scalar(&count_sql).bind(organization_id.as_str());
            for value in &params {
                query = query.bind(*value);
                count = count.bind(*value);
            }
            let rows = query.bind(limit).bind(start).fetch_all(p).await?;
            let total = count.fetch_one(p).await?;
            (rows, total)
        });
        Ok(Page {
            items: rows
                .into_iter()
                .map(|r| r.into_listing())
                .collect::<Result<_, _>>()?,
            total,
            total_capped: false,
        })
    }
}
