//! Per-integration configuration values.

use crate::Error;
use std::collections::BTreeMap;

/// The string map configured on the integration or subscription
/// (`"config": {...}` in the management API).
#[derive(Debug, Clone)]
pub struct Config {
    source: Source,
}

#[derive(Debug, Clone)]
enum Source {
    /// Ask the gateway, through the `host.config` import.
    Host,
    /// A fixed map, for native tests.
    Map(BTreeMap<String, String>),
}

impl Config {
    pub(crate) fn host() -> Self {
        Self {
            source: Source::Host,
        }
    }

    /// A configuration with fixed values, for tests.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            source: Source::Map(
                pairs
                    .into_iter()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect(),
            ),
        }
    }

    /// The value for `key`, or `None` when it is not set.
    pub fn get(&self, key: &str) -> Option<String> {
        match &self.source {
            Source::Host => crate::__bindings::hookgate::plugin::host::config(key),
            Source::Map(map) => map.get(key).cloned(),
        }
    }

    /// The value for `key`, or `default` when it is not set.
    pub fn get_or(&self, key: &str, default: &str) -> String {
        self.get(key).unwrap_or_else(|| default.to_owned())
    }

    /// The value for `key`, or an [`Error::Failed`] that names the missing key.
    pub fn require(&self, key: &str) -> Result<String, Error> {
        self.get(key)
            .ok_or_else(|| Error::Failed(format!("config key `{key}` is not set")))
    }
}
