//! What can go wrong loading or running a plugin.

use std::time::Duration;

/// A plugin failed one transform. Names the plugin, its version and the
/// cause; the runtime itself is unharmed and the next event runs normally.
#[derive(Debug, thiserror::Error)]
#[error("plugin `{plugin}` version {version}: {kind}")]
pub struct PluginError {
    /// The plugin's name.
    pub plugin: String,
    /// The first 12 hex digits of the plugin's sha256.
    pub version: String,
    /// What went wrong.
    pub kind: PluginErrorKind,
}

/// The cause of a [`PluginError`].
#[derive(Debug, thiserror::Error)]
pub enum PluginErrorKind {
    /// The plugin said the event is not what it expects.
    #[error("invalid event: {0}")]
    InvalidEvent(String),
    /// The plugin reported a failure.
    #[error("failed: {0}")]
    Failed(String),
    /// The plugin ran past its time deadline.
    #[error("ran past its deadline of {} ms", .0.as_millis())]
    Deadline(Duration),
    /// The plugin tried to grow its memory past the cap.
    #[error("tried to use more than its memory cap of {0} bytes")]
    MemoryCap(usize),
    /// The plugin returned more bytes than the output cap allows.
    #[error("returned {size} bytes, more than the output cap of {cap} bytes")]
    OutputTooLarge {
        /// Bytes returned (bodies plus headers).
        size: usize,
        /// The cap.
        cap: usize,
    },
    /// The plugin returned more requests than allowed.
    #[error("returned {count} requests, more than the cap of {cap}")]
    TooManyRequests {
        /// Requests returned.
        count: usize,
        /// The cap.
        cap: usize,
    },
    /// The plugin set a header the host owns.
    #[error("set the reserved header `{0}`; the gateway owns it")]
    ReservedHeader(String),
    /// The plugin set a header name or value that is not valid HTTP.
    #[error("set an invalid header: {0}")]
    InvalidHeader(String),
    /// The plugin trapped (a panic, an `unreachable`, a bad memory access).
    #[error("trapped: {0}")]
    Trap(String),
    /// Every instance slot is in use; the job should be tried again later.
    #[error("no free instance slot: {0}")]
    Busy(String),
}

impl PluginErrorKind {
    /// Whether trying the same event again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Busy(_))
    }

    /// A short machine-readable name for the cause, for metrics and APIs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidEvent(_) => "invalid_event",
            Self::Failed(_) => "failed",
            Self::Deadline(_) => "deadline",
            Self::MemoryCap(_) => "memory_cap",
            Self::OutputTooLarge { .. } => "output_too_large",
            Self::TooManyRequests { .. } => "too_many_requests",
            Self::ReservedHeader(_) => "reserved_header",
            Self::InvalidHeader(_) => "invalid_header",
            Self::Trap(_) => "trap",
            Self::Busy(_) => "busy",
        }
    }
}

/// A plugin file was refused. The previously active version, if any, keeps
/// serving.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The name is not usable as a plugin name.
    #[error("invalid plugin name `{0}`: use 1 to 64 of a-z, 0-9, `-` and `_`")]
    InvalidName(String),
    /// The bytes are not a WebAssembly component.
    #[error("not a WebAssembly component: {0}")]
    NotAComponent(String),
    /// A component, but not of the `hookgate:plugin/integration` world.
    #[error("not a hookgate:plugin@0.1.0 `integration` component: {0}")]
    WrongWorld(String),
    /// The component failed to compile.
    #[error("could not compile the component: {0}")]
    Compile(String),
    /// The file could not be read.
    #[error("could not read the plugin: {0}")]
    Io(#[from] std::io::Error),
    /// No such plugin or version is loaded.
    #[error("no plugin `{0}` is loaded")]
    Unknown(String),
    /// The plugin's settings ask for more than the operator allows, or its
    /// settings file is broken.
    #[error("{0}")]
    Settings(#[from] super::settings::SettingsError),
}
