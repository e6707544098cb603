//! The route stage. At ingest, routing is plain data read inside the
//! ingest transaction (the `integration_hooks` and `webhooks` tables; see
//! `store/queue/ops.rs`): one delivery per matching hook or subscription
//! URL. At delivery, [`Routes`] loads the integration or subscription a
//! delivery goes to, cached for a second because most deliveries go to a
//! few routes.

use crate::model::{Delivery, OrgId, Target, TargetKind};
use crate::store::{Store, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a route read from the database is reused. Changes made through
/// this replica's API apply at once ([`Routes::forget`]); other replicas
/// see them within this time.
const TTL: Duration = Duration::from_secs(1);

/// Most routes cached before expired ones are swept.
const MAX_CACHED: usize = 10_000;

/// Routes read recently, by id.
#[derive(Debug, Default)]
pub struct Routes {
    cached: Mutex<HashMap<String, (Instant, Arc<Target>)>>,
}

impl Routes {
    /// The route `delivery` goes to, or `None` when it no longer exists.
    pub async fn target(
        &self,
        store: &Store,
        delivery: &Delivery,
    ) -> Result<Option<Arc<Target>>, StoreError> {
        if let Some((at, target)) = self.lock().get(&delivery.target_id)
            && at.elapsed() < TTL
            && *target.organization_id() == delivery.organization_id
        {
            return Ok(Some(target.clone()));
        }
        let loaded = load(
            store,
            &delivery.organization_id,
            delivery.target_kind,
            &delivery.target_id,
        )
        .await;
        let target = match loaded {
            Ok(target) => Arc::new(target),
            Err(StoreError::NotFound) => return Ok(None),
            Err(other) => return Err(other),
        };
        let mut cached = self.lock();
        if cached.len() > MAX_CACHED {
            cached.retain(|_, (at, _)| at.elapsed() < TTL);
        }
        cached.insert(delivery.target_id.clone(), (Instant::now(), target.clone()));
        Ok(Some(target))
    }

    /// Drops a route from the cache after it changed.
    pub fn forget(&self, id: &str) {
        self.lock().remove(id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, Arc<Target>)>> {
        self.cached.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The integration or subscription `id` of `organization_id`, read from
/// the database (no cache).
pub async fn load(
    store: &Store,
    organization_id: &OrgId,
    kind: TargetKind,
    id: &str,
) -> Result<Target, StoreError> {
    match kind {
        TargetKind::Integration => store
            .get_integration(organization_id, id)
            .await
            .map(|i| Target::Integration(Box::new(i))),
        TargetKind::Webhook => store
            .get_webhook(organization_id, id)
            .await
            .map(|w| Target::Webhook(Box::new(w))),
    }
}
