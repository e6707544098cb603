//! The plugin runtime: sandboxed WebAssembly components that reshape events
//! (`transform` stage), the compiled-component cache and the hot-loading
//! registry. wasmtime types stay inside this module.

mod bindings;
mod cache;
mod error;
mod registry;
mod runtime;
mod settings;
mod types;

pub use error::{LoadError, PluginError, PluginErrorKind};
pub use registry::{LoadedFile, OnLoaded, PluginVersionInfo, Registry};
pub use runtime::{InstanceMode, Limits, LogLine, Logged, Plugin, Runtime, RuntimeConfig};
pub use settings::{Maxima, PluginSettings, SettingsError};
pub use types::{Outcome, OutgoingRequest, PluginConfig, PluginEvent};
