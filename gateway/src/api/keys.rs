//! API key verification with a short-lived cache, so a busy ingest path
//! does not read the key table on every request. A revocation takes effect
//! at once on the replica that made it and within `TTL` on the others.

use super::error::ApiError;
use crate::model::OrgId;
use crate::secrets;
use crate::store::{Store, StoreError};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const TTL: Duration = Duration::from_secs(5);
const MAX_ENTRIES: usize = 10_000;

#[derive(Debug, Clone)]
struct Entry {
    organization_id: OrgId,
    secret_hash: String,
    revoked: bool,
    fetched: Instant,
}

/// Verified keys by id.
#[derive(Debug, Default)]
pub struct KeyCache {
    entries: Mutex<HashMap<String, Entry>>,
}

impl KeyCache {
    /// The organization of key `id` when `secret` matches it and it is not
    /// revoked; [`ApiError::Unauthorized`] otherwise.
    pub async fn verify(&self, store: &Store, id: &str, secret: &str) -> Result<OrgId, ApiError> {
        let cached = self
            .lock()
            .get(id)
            .filter(|e| e.fetched.elapsed() < TTL)
            .cloned();
        let entry = match cached {
            Some(entry) => entry,
            None => {
                let key = match store.get_api_key(id).await {
                    Ok(key) => key,
                    Err(StoreError::NotFound) => return Err(ApiError::Unauthorized),
                    Err(other) => return Err(other.into()),
                };
                let entry = Entry {
                    organization_id: key.organization_id,
                    secret_hash: key.secret_hash,
                    revoked: key.revoked.is_some(),
                    fetched: Instant::now(),
                };
                let mut entries = self.lock();
                if entries.len() >= MAX_ENTRIES {
                    entries.retain(|_, e| e.fetched.elapsed() < TTL);
                }
                entries.insert(id.to_owned(), entry.clone());
                entry
            }
        };
        if entry.revoked || !secrets::verify_secret(secret, &entry.secret_hash) {
            return Err(ApiError::Unauthorized);
        }
        Ok(entry.organization_id)
    }

    /// Drops a key from the cache (after revoking it).
    pub fn forget(&self, id: &str) {
        self.lock().remove(id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}
