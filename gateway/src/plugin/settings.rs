//! What one plugin version asks of the sandbox: a memory cap, a deadline
//! and instance reuse, chosen at upload (`PUT /v1/plugins/{name}?memoryMiB=
//! &deadlineMs=&reuse=`) or beside the component in the plugin folder
//! (`NAME.toml`), within the operator's maxima. What a plugin leaves out
//! takes the gateway's defaults.

use super::runtime::{InstanceMode, Limits};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A plugin version's own sandbox settings; `None` takes the default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PluginSettings {
    /// Linear memory cap of one instance, MiB.
    #[serde(rename = "memoryMiB", skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u32>,
    /// Deadline of one transform, milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u32>,
    /// Events one instance serves before it is replaced (1: a fresh
    /// instance per event). Globals persist between the events an instance
    /// serves, of one integration only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reuse: Option<u32>,
}

/// The most a plugin may ask for. Set by the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Maxima {
    /// Largest memory cap, bytes; the pool reserves this much per slot.
    pub memory_bytes: usize,
    /// Longest deadline.
    pub deadline: Duration,
    /// Most events per instance (1: no plugin may reuse instances).
    pub reuse: u32,
}

impl Default for Maxima {
    fn default() -> Self {
        Self {
            memory_bytes: 256 << 20,
            deadline: Duration::from_secs(5),
            reuse: 100_000,
        }
    }
}

/// Settings refused: a value out of range, or a settings file that does
/// not parse.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A value outside `1..=max`.
    #[error("{field} must be between 1 and {max}, the operator's maximum; got {value}")]
    OutOfRange {
        /// The setting's name, as written in a query or a settings file.
        field: &'static str,
        /// The value asked for.
        value: u64,
        /// The largest allowed.
        max: u64,
    },
    /// `NAME.toml` is not valid TOML or names an unknown setting.
    #[error("{}: {message}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the line.
        message: String,
    },
}

impl SettingsError {
    /// The setting at fault, where one is.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::OutOfRange { field, .. } => Some(field),
            Self::File { .. } => None,
        }
    }
}

impl PluginSettings {
    /// Settings that reuse each instance for `events` events.
    pub fn reuse(events: u32) -> Self {
        Self {
            reuse: Some(events),
            ..Self::default()
        }
    }

    /// The settings file of the component at `wasm` (`NAME.toml` beside
    /// `NAME.wasm`); defaults when there is none.
    pub fn beside(wasm: &Path) -> Result<Self, SettingsError> {
        let path = wasm.with_extension("toml");
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).map_err(|e| SettingsError::File {
                message: one_line_toml_error(&e),
                path,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(SettingsError::File {
                path,
                message: e.to_string(),
            }),
        }
    }

    /// Fills what these settings leave out from `fallback`.
    pub fn or(self, fallback: Self) -> Self {
        Self {
            memory_mib: self.memory_mib.or(fallback.memory_mib),
            deadline_ms: self.deadline_ms.or(fallback.deadline_ms),
            reuse: self.reuse.or(fallback.reuse),
        }
    }

    /// The limits and instance mode these settings give on top of
    /// `defaults`, refused when one is past `maxima`.
    pub fn resolve(
        &self,
        defaults: &Limits,
        maxima: &Maxima,
    ) -> Result<(Limits, InstanceMode), SettingsError> {
        let mut limits = defaults.clone();
        if let Some(mib) = self.memory_mib {
            let max = (maxima.memory_bytes >> 20) as u64;
            in_range("memoryMiB", mib.into(), max)?;
            limits.memory_bytes = (mib as usize) << 20;
        }
        if let Some(ms) = self.deadline_ms {
            let max = maxima.deadline.as_millis() as u64;
            in_range("deadlineMs", ms.into(), max)?;
            limits.deadline = Duration::from_millis(ms.into());
        }
        let mode = match self.reuse {
            None | Some(1) => InstanceMode::Fresh,
            Some(events) => {
                in_range("reuse", events.into(), maxima.reuse.into())?;
                InstanceMode::Reuse { max_events: events }
            }
        };
        Ok((limits, mode))
    }
}

fn in_range(field: &'static str, value: u64, max: u64) -> Result<(), SettingsError> {
    if (1..=max).contains(&value) {
        Ok(())
    } else {
        Err(SettingsError::OutOfRange { field, value, max })
    }
}

fn one_line_toml_error(error: &toml::de::Error) -> String {
    let message = error.message();
    match error.span() {
        Some(span) => format!("{message} (at byte {})", span.start),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_resolve_within_the_maxima() {
        let defaults = Limits::default();
        let maxima = Maxima::default();
        let (limits, mode) = PluginSettings::default()
            .resolve(&defaults, &maxima)
            .expect("defaults");
        assert_eq!(limits.memory_bytes, defaults.memory_bytes);
        assert_eq!(mode, InstanceMode::Fresh);

        let asked = PluginSettings {
            memory_mib: Some(64),
            deadline_ms: Some(500),
            reuse: Some(1000),
        };
        let (limits, mode) = asked.resolve(&defaults, &maxima).expect("within");
        assert_eq!(limits.memory_bytes, 64 << 20);
        assert_eq!(limits.deadline, Duration::from_millis(500));
        assert_eq!(mode, InstanceMode::Reuse { max_events: 1000 });

        for (settings, field) in [
            (
                PluginSettings {
                    memory_mib: Some(257),
                    ..Default::default()
                },
                "memoryMiB",
            ),
            (
                PluginSettings {
                    deadline_ms: Some(0),
                    ..Default::default()
                },
                "deadlineMs",
            ),
            (PluginSettings::reuse(100_001), "reuse"),
            (PluginSettings::reuse(0), "reuse"),
        ] {
            let error = settings.resolve(&defaults, &maxima).expect_err("refused");
            assert_eq!(error.field(), Some(field), "{error}");
        }
    }

    #[test]
    fn a_settings_file_names_its_fault() {
        let dir = tempfile::tempdir().expect("tempdir");
        let wasm = dir.path().join("partner-py.wasm");
        assert_eq!(
            PluginSettings::beside(&wasm).expect("none"),
            PluginSettings::default()
        );
        std::fs::write(
            dir.path().join("partner-py.toml"),
            "memoryMiB = 64\nreuse = 500\n",
        )
        .expect("write");
        assert_eq!(
            PluginSettings::beside(&wasm).expect("parsed"),
            PluginSettings {
                memory_mib: Some(64),
                deadline_ms: None,
                reuse: Some(500)
            }
        );
        std::fs::write(dir.path().join("partner-py.toml"), "memory_mib = 64\n").expect("write");
        let error = PluginSettings::beside(&wasm).expect_err("unknown key");
        assert!(error.to_string().contains("memory_mib"), "{error}");
    }
}
