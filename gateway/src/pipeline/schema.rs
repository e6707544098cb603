//! Event-type schemas at ingest: an organization may declare a JSON Schema
//! (draft 2020-12) for an event type; payloads of that type that do not
//! satisfy it are refused before anything is stored. Schemas are compiled
//! once per version and cached per replica (looked up again after
//! [`RECHECK`], so another replica's change is seen within it).

use super::ingest::IngestError;
use crate::model::{EpochMs, OrgId};
use crate::store::{Store, StoreError};
use jsonschema::Validator;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a cached lookup is trusted.
const RECHECK: Duration = Duration::from_secs(5);
/// Most cached entries before the cache starts over.
const MAX_ENTRIES: usize = 10_000;
/// Most violations reported for one payload.
const MAX_VIOLATIONS: usize = 20;

/// One way a payload fails its type's schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Where, as a dotted path from `payload` (`payload.customer.email`).
    pub at: String,
    /// What the schema wanted.
    pub problem: String,
}

/// Compiles `schema` as draft 2020-12 (linear-time regular expressions,
/// no remote references), or says why it cannot be.
pub fn compile(schema: &Value) -> Result<Validator, String> {
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .with_pattern_options(jsonschema::PatternOptions::regex())
        .build(schema)
        .map_err(|e| e.to_string())
}

struct Entry {
    /// The compiled schema and its version; `None`: no schema.
    schema: Option<(Arc<Validator>, EpochMs)>,
    checked: Instant,
}

/// Compiled schemas by (organization, type).
#[derive(Default)]
pub struct Schemas {
    entries: Mutex<HashMap<(OrgId, String), Entry>>,
}

impl std::fmt::Debug for Schemas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schemas").finish_non_exhaustive()
    }
}

impl Schemas {
    /// Checks `payload` (JSON text) against the schema of
    /// `organization_id`'s type `event_type`, if it has one.
    pub async fn check(
        &self,
        store: &Store,
        organization_id: &OrgId,
        event_type: &str,
        payload: &str,
    ) -> Result<(), IngestError> {
        let Some(validator) = self.validator(store, organization_id, event_type).await? else {
            return Ok(());
        };
        let instance: Value =
            serde_json::from_str(payload).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let violations: Vec<Violation> = validator
            .iter_errors(&instance)
            .take(MAX_VIOLATIONS)
            .map(|e| Violation {
                at: dotted(&e.instance_path.to_string()),
                problem: e.to_string(),
            })
            .collect();
        if violations.is_empty() {
            Ok(())
        } else {
            Err(IngestError::Invalid(violations))
        }
    }

    /// Drops what is cached of a type after it changed on this replica.
    pub fn forget(&self, organization_id: &OrgId, name: &str) {
        self.lock()
            .remove(&(organization_id.clone(), name.to_owned()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(OrgId, String), Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn validator(
        &self,
        store: &Store,
        organization_id: &OrgId,
        event_type: &str,
    ) -> Result<Option<Arc<Validator>>, StoreError> {
        let key = (organization_id.clone(), event_type.to_owned());
        let cached_version = match self.lock().get(&key) {
            Some(entry) if entry.checked.elapsed() < RECHECK => {
                return Ok(entry.schema.as_ref().map(|(v, _)| v.clone()));
            }
            Some(entry) => entry.schema.as_ref().map(|(v, at)| (v.clone(), *at)),
            None => None,
        };
        let schema = match store.event_schema(organization_id, event_type).await? {
            None => None,
            Some((_, modified))
                if cached_version
                    .as_ref()
                    .is_some_and(|(_, at)| *at == modified) =>
            {
                cached_version
            }
            Some((text, modified)) => {
                let value: Value = serde_json::from_str(&text)
                    .map_err(|e| StoreError::Corrupt(format!("schema: {e}")))?;
                let validator = compile(&value)
                    .map_err(|e| StoreError::Corrupt(format!("schema of {event_type}: {e}")))?;
                Some((Arc::new(validator), modified))
            }
        };
        let validator = schema.as_ref().map(|(v, _)| v.clone());
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(
            key,
            Entry {
                schema,
                checked: Instant::now(),
            },
        );
        Ok(validator)
    }
}

/// `/customer/email` → `payload.customer.email`.
fn dotted(pointer: &str) -> String {
    let mut at = String::from("payload");
    for segment in pointer.split('/').skip(1) {
        at.push('.');
        at.push_str(&segment.replace("~1", "/").replace("~0", "~"));
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schemas_compile_or_say_why() {
        assert!(compile(&json!({"type": "object", "required": ["a"]})).is_ok());
        assert!(compile(&json!({"type": "nonsense"})).is_err());
        assert!(
            compile(&json!({"$ref": "https://example.com/schema.json"})).is_err(),
            "no remote references"
        );
        assert!(compile(&json!({"type": "string", "pattern": "(a+)+$"})).is_ok());
    }

    #[test]
    fn paths_are_dotted_from_the_payload() {
        assert_eq!(dotted(""), "payload");
        assert_eq!(dotted("/customer/email"), "payload.customer.email");
        assert_eq!(dotted("/items/0/a~1b"), "payload.items.0.a/b");
    }
}
