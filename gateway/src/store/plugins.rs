//! Plugin components and the active version per name: the source of truth
//! every replica's registry follows.

use super::queue::EVENT_COLUMNS_OF_E;
use super::queue::executor::{FromRow, Row};
use super::rows::EventRow;
use super::{Store, StoreError, with_pool};
use crate::model::{EpochMs, Event, OrgId, TargetKind};
use crate::plugin::PluginSettings;

/// A plugin's active version, with the settings it runs under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivePlugin {
    /// Plugin name.
    pub name: String,
    /// The active version (sha256).
    pub version: String,
    /// Its settings.
    pub settings: PluginSettings,
}

impl Store {
    /// Stores a component version with its settings (content-addressed:
    /// storing it again only replaces the settings).
    pub async fn put_plugin_version(
        &self,
        name: &str,
        version: &str,
        component: &[u8],
        settings: &PluginSettings,
        now: EpochMs,
    ) -> Result<(), StoreError> {
        let settings = settings_json(settings);
        with_pool!(self, |p| {
            sqlx::query(
            "INSERT INTO plugin_versions (name, version, component, created, settings) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (name, version) DO UPDATE SET settings = excluded.settings"
        )
        .bind(name)
        .bind(version)
        .bind(component)
        .bind(now)
        .bind(&settings)
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
    pub async fn active_plugins(&self) -> Result<Vec<ActivePlugin>, StoreError> {
        let rows: Vec<(String, String, Option<String>)> = with_pool!(self, |p| {
            sqlx::query_as(
            "SELECT a.name, a.version, v.settings FROM plugin_active a \
             LEFT JOIN plugin_versions v ON v.name = a.name AND v.version = a.version ORDER BY a.name"
        )
        .fetch_all(p)
        .await?
        });
        rows.into_iter()
            .map(|(name, version, settings)| {
                Ok(ActivePlugin {
                    settings: parse_settings(settings.as_deref())?,
                    name,
                    version,
                })
            })
            .collect()
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

    /// A stored component and its settings.
    pub async fn plugin_component(
        &self,
        name: &str,
        version: &str,
    ) -> Result<(Vec<u8>, PluginSettings), StoreError> {
        let row: Option<(Vec<u8>, String)> = with_pool!(self, |p| sqlx::query_as(
            "SELECT component, settings FROM plugin_versions WHERE name = $1 AND version = $2"
        )
        .bind(name)
        .bind(version)
        .fetch_optional(p)
        .await?);
        let (bytes, settings) = row.ok_or(StoreError::NotFound)?;
        Ok((bytes, parse_settings(Some(&settings))?))
    }
}

fn settings_json(settings: &PluginSettings) -> String {
    serde_json::to_string(settings).unwrap_or_else(|_| "{}".to_owned())
}

/// Settings as stored; a version stored before settings existed has none.
fn parse_settings(json: Option<&str>) -> Result<PluginSettings, StoreError> {
    match json {
        None => Ok(PluginSettings::default()),
        Some(json) => serde_json::from_str(json)
            .map_err(|e| StoreError::Corrupt(format!("plugin settings: {e}"))),
    }
}

/// An event a plugin transformed, and the route it went to.
#[derive(Debug, Clone)]
pub struct TransformedEvent {
    /// The event.
    pub event: Event,
    /// The route's kind.
    pub target_kind: TargetKind,
    /// The route.
    pub target_id: String,
}

/// After the event's columns: routes using plugin `$1`, their deliveries transformed (of organization
/// `$2` when given), one row per (event, route), newest first, at most `$3`.
const RECENT_TRANSFORMED: &str = "d.target_kind, d.target_id FROM (\
       SELECT organization_id, event_id, target_kind, target_id, MAX(created) AS at FROM deliveries \
       WHERE target_id IN (SELECT id FROM integrations WHERE plugin_name = $1 \
                           UNION ALL SELECT id FROM webhooks WHERE plugin_name = $1) \
         AND transformed AND ($2 IS NULL OR organization_id = $2) \
       GROUP BY organization_id, event_id, target_kind, target_id ORDER BY at DESC LIMIT $3) AS d \
     JOIN events e ON e.organization_id = d.organization_id AND e.id = d.event_id \
     ORDER BY d.at DESC";

impl Store {
    /// The events most recently transformed for the routes that use plugin
    /// `name` (of `organization`, or of every organization), newest first:
    /// what a dry run replays.
    pub async fn recent_transformed(
        &self,
        name: &str,
        organization: Option<&OrgId>,
        limit: i64,
    ) -> Result<Vec<TransformedEvent>, StoreError> {
        let sql = format!("SELECT {EVENT_COLUMNS_OF_E}, {RECENT_TRANSFORMED}");
        let rows = with_pool!(self, |p| sqlx::query(&sql)
            .bind(name)
            .bind(organization.map(OrgId::as_str))
            .bind(limit)
            .fetch_all(p)
            .await?
            .iter()
            .map(|row| {
                Ok(TransformedEvent {
                    event: EventRow::from_row(row)?.into_domain(),
                    target_kind: TargetKind::parse(&row.text(7)?)
                        .ok_or_else(|| StoreError::Corrupt("a delivery's target kind".into()))?,
                    target_id: row.text(8)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?);
        Ok(rows)
    }
}
