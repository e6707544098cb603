//! Dry runs: a candidate plugin version beside the active one, on the
//! events the active version most recently transformed, in the same
//! sandbox with the same limits (a candidate that loops is cut by its
//! deadline, one that traps fails that event). Nothing is sent or stored.

use super::route;
use super::transform::plugin_input;
use crate::model::OrgId;
use crate::plugin::{Logged, Plugin, Registry};
use crate::store::{Store, StoreError};
use std::sync::Arc;

/// One event through both versions.
#[derive(Debug)]
pub struct Compared {
    /// The event.
    pub event_id: String,
    /// Its organization.
    pub organization_id: OrgId,
    /// The route it went to.
    pub destination_id: String,
    /// What the active version does with it, and logs.
    pub active: Logged,
    /// What the candidate does with it, and logs.
    pub candidate: Logged,
}

impl Compared {
    /// Whether the two versions answer the same: the same requests (bytes,
    /// content types, headers) or drop, or the same error.
    pub fn same(&self) -> bool {
        match (&self.active.result, &self.candidate.result) {
            (Ok(a), Ok(c)) => a == c,
            (Err(a), Err(c)) => a.kind.to_string() == c.kind.to_string(),
            _ => false,
        }
    }
}

/// Why a dry run could not run.
#[derive(Debug, thiserror::Error)]
pub enum DryRunError {
    /// Reading the recorded events failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The task running the plugins failed.
    #[error("the dry run's task failed: {0}")]
    Task(String),
}

/// Runs `active` and `candidate` on up to `limit` events recently
/// transformed for routes that use the plugin (of `organization` when
/// given), each with its route's configuration.
pub async fn compare(
    store: &Store,
    registry: &Arc<Registry>,
    active: Arc<Plugin>,
    candidate: Arc<Plugin>,
    organization: Option<&OrgId>,
    limit: i64,
) -> Result<Vec<Compared>, DryRunError> {
    let recent = store
        .recent_transformed(active.name(), organization, limit)
        .await?;
    let mut inputs = Vec::with_capacity(recent.len());
    for r in recent {
        match route::load(store, &r.event.organization_id, r.target_kind, &r.target_id).await {
            Ok(target) => inputs.push((r.event, target)),
            // The route was deleted since: nothing to compare against.
            Err(StoreError::NotFound) => {}
            Err(other) => return Err(other.into()),
        }
    }
    let runtime = registry.runtime().clone();
    tokio::task::spawn_blocking(move || {
        inputs
            .into_iter()
            .map(|(event, target)| {
                let (input, config) = plugin_input(&event, &target);
                Compared {
                    active: runtime.transform_logged(&active, &input, &config),
                    candidate: runtime.transform_logged(&candidate, &input, &config),
                    event_id: event.id,
                    organization_id: event.organization_id,
                    destination_id: target.id().to_owned(),
                }
            })
            .collect()
    })
    .await
    .map_err(|e| DryRunError::Task(e.to_string()))
}
