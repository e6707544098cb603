//! The transform stage: runs the route's plugin (or builds the Standard
//! Webhooks payload when it has none) once per delivery. The caller stores
//! the result, so every retry sends the same bytes.

use crate::model::{Event, PreparedRequest, Target};
use crate::plugin::{Outcome, PluginConfig, PluginError, PluginEvent, Registry};
use serde_json::value::RawValue;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

/// What the transform stage decided.
#[derive(Debug)]
pub enum Transformed {
    /// Send these, in order.
    Requests(Vec<PreparedRequest>),
    /// Send nothing, for this reason.
    Drop(String),
}

/// Why a transform gave nothing to send.
#[derive(Debug, thiserror::Error)]
pub enum TransformError {
    /// The plugin failed this event (trap, deadline, memory, bad output, its
    /// own error), or had no free instance slot.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// The route names a plugin (or version) this replica has not loaded.
    #[error("plugin `{name}`{version} is not loaded")]
    NotLoaded {
        /// The plugin's name.
        name: String,
        /// ` version …` when one is pinned.
        version: String,
    },
    /// The blocking task running the plugin panicked or was cancelled.
    #[error("the transform task failed: {0}")]
    Task(String),
    /// The stored payload is not JSON (the standard payload embeds it).
    #[error("the stored payload is not JSON: {0}")]
    Payload(String),
}

impl TransformError {
    /// Whether the same event may transform later: a plugin still loading,
    /// a busy instance pool, a lost task. A plugin that failed the event
    /// would fail it again.
    pub fn retryable(&self) -> bool {
        match self {
            Self::Plugin(e) => e.kind.is_transient(),
            Self::NotLoaded { .. } | Self::Task(_) => true,
            Self::Payload(_) => false,
        }
    }
}

/// Runs the stage for `event` going to `target`.
pub async fn transform(
    registry: &Arc<Registry>,
    event: &Event,
    target: &Target,
) -> Result<Transformed, TransformError> {
    let Some(plugin_ref) = target.plugin() else {
        return standard_payload(event);
    };
    let plugin = match &plugin_ref.version {
        Some(version) => registry.get_version(&plugin_ref.name, version),
        None => registry.get(&plugin_ref.name),
    };
    let plugin = plugin.ok_or_else(|| TransformError::NotLoaded {
        name: plugin_ref.name.clone(),
        version: plugin_ref
            .version
            .as_deref()
            .map(|v| format!(" version {v}"))
            .unwrap_or_default(),
    })?;
    let (input, config) = plugin_input(event, target);
    let registry = registry.clone();
    let started = std::time::Instant::now();
    let name = plugin.name().to_owned();
    // Twice as many transforms at once as there are cores: more only contend for
    // the address space (instantiation maps and unmaps memory) and the CPU.
    let _slot = transform_slots().acquire().await.expect("never closed");
    let result =
        tokio::task::spawn_blocking(move || registry.runtime().transform(&plugin, &input, &config))
            .await;
    metrics::histogram!("hookgate_plugin_duration_seconds", "plugin" => name)
        .record(started.elapsed().as_secs_f64());
    match result.map_err(|join| TransformError::Task(join.to_string()))?? {
        Outcome::Drop(reason) => Ok(Transformed::Drop(reason)),
        Outcome::Deliver(requests) if requests.is_empty() => {
            Ok(Transformed::Drop("the plugin returned no requests".into()))
        }
        Outcome::Deliver(requests) => Ok(Transformed::Requests(
            requests
                .into_iter()
                .map(|r| PreparedRequest {
                    body: r.body,
                    content_type: r.content_type,
                    headers: r.headers,
                })
                .collect(),
        )),
    }
}

/// What a plugin gets for `event` going to `target`: the event as the
/// plugin sees it, and the target's configuration.
pub fn plugin_input(event: &Event, target: &Target) -> (PluginEvent, PluginConfig) {
    let input = PluginEvent {
        id: event.id.clone(),
        hook_type: event.event_type.clone(),
        integration: target.id().to_owned(),
        occurred_at_ms: u64::try_from(event.created).unwrap_or(0),
        content_type: "application/json".into(),
        body: event.payload.clone().into_bytes(),
    };
    (input, Arc::new(target.config().clone()))
}

/// `{"id", "type", "timestamp", "data"}`: the Standard Webhooks payload,
/// with `data` the event's payload byte for byte as it was posted.
fn standard_payload(event: &Event) -> Result<Transformed, TransformError> {
    #[derive(serde::Serialize)]
    struct StandardPayload<'a> {
        id: &'a str,
        #[serde(rename = "type")]
        event_type: &'a str,
        timestamp: String,
        data: &'a RawValue,
    }
    let data: &RawValue =
        serde_json::from_str(&event.payload).map_err(|e| TransformError::Payload(e.to_string()))?;
    let at = UNIX_EPOCH + Duration::from_millis(u64::try_from(event.created).unwrap_or(0));
    let body = StandardPayload {
        id: &event.id,
        event_type: &event.event_type,
        timestamp: humantime::format_rfc3339_millis(at).to_string(),
        data,
    };
    Ok(Transformed::Requests(vec![PreparedRequest {
        body: serde_json::to_vec(&body).map_err(|e| TransformError::Payload(e.to_string()))?,
        content_type: "application/json".into(),
        headers: Vec::new(),
    }]))
}

fn transform_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        tokio::sync::Semaphore::new(cores * 2)
    })
}
