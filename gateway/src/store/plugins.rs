//! Plugin components and the active version per name: the source of truth
//! every replica's registry follows.

use super::{Store, StoreError, with_pool};
use crate::model::EpochMs;

impl Store {
    /// Stores a component version (content-addressed: storing it twice is a no-op).
    pub async fn put_plugin_version(
        &self,
        name: &str,
        version: &str,
        component: &[u8],
        now: EpochMs,
    ) -> Result<(), StoreError> {
        with_pool!(self, |p| {
            sqlx::query(
            "INSERT INTO plugin_versions (name, version, component, created) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING"
        )
        .bind(name)
        .bind(version)
        .bind(component)
        .bind(now)
        .execute(p)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    /// Makes `version` the active one of `name`.
    pub async fn set_active_plugin(
        &self,
        name: &str,
        version: &str,
        now: EpochMs,
    ) -> Result<(), StoreError> {
        with_pool!(self, |p| {
            sqlx::query(
            "INSERT INTO plugin_active (name, version, modified) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET version = excluded.version, modified = excluded.modified"
        )
        .bind(name)
        .bind(version)
        .bind(now)
        .execute(p)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    /// The active version of every plugin.
    pub async fn active_plugins(&self) -> Result<Vec<(String, String)>, StoreError> {
        Ok(with_pool!(self, |p| sqlx::query_as(
            "SELECT name, version FROM plugin_active ORDER BY name"
        )
        .fetch_all(p)
        .await?))
    }

    /// The full version matching `version` (a sha256 or a unique prefix).
    pub async fn resolve_plugin_version(
        &self,
        name: &str,
        version: &str,
    ) -> Result<String, StoreError> {
        let prefix = format!("{}%", version.replace(['%', '_'], ""));
        let found: Vec<String> = with_pool!(self, |p| sqlx::query_scalar(
            "SELECT version FROM plugin_versions WHERE name = $1 AND version LIKE $2 LIMIT 2"
        )
        .bind(name)
        .bind(prefix)
        .fetch_all(p)
        .await?);
        match found.as_slice() {
            [one] => Ok(one.clone()),
            _ => Err(StoreError::NotFound),
        }
    }

    /// Whether a version is stored.
    pub async fn has_plugin_version(&self, name: &str, version: &str) -> Result<bool, StoreError> {
        let n: i64 = with_pool!(self, |p| sqlx::query_scalar(
            "SELECT COUNT(*) FROM plugin_versions WHERE name = $1 AND version = $2"
        )
        .bind(name)
        .bind(version)
        .fetch_one(p)
        .await?);
        Ok(n > 0)
    }

    /// A stored component.
    pub async fn plugin_component(&self, name: &str, version: &str) -> Result<Vec<u8>, StoreError> {
        let bytes: Option<Vec<u8>> = with_pool!(self, |p| sqlx::query_scalar(
            "SELECT component FROM plugin_versions WHERE name = $1 AND version = $2"
        )
        .bind(name)
        .bind(version)
        .fetch_optional(p)
        .await?);
        bytes.ok_or(StoreError::NotFound)
    }
}
