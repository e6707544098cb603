//! The transform stage: runs the route's plugin (or builds the Standard
//! Webhooks payload when it has none) once per delivery. The result is
//! stored, so every retry sends the same bytes.

use crate::model::{Event, Integration, PluginRef, Webhook};
use crate::plugin::{Outcome, PluginConfig, PluginEvent, Registry};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

/// What a delivery goes to, loaded for one attempt.
#[derive(Debug, Clone)]
pub enum Target {
    /// An integration.
    Integration(Box<Integration>),
    /// A webhook subscription.
    Webhook(Box<Webhook>),
}

impl Target {
    /// The id.
    pub fn id(&self) -> &str {
        match self {
            Self::Integration(i) => &i.id,
            Self::Webhook(w) => &w.id,
        }
    }

    /// The owning organization.
    pub fn organization_id(&self) -> &str {
        match self {
            Self::Integration(i) => &i.organization_id,
            Self::Webhook(w) => &w.organization_id,
        }
    }

    fn plugin(&self) -> Option<&PluginRef> {
        match self {
            Self::Integration(i) => i.plugin.as_ref(),
            Self::Webhook(w) => w.plugin.as_ref(),
        }
    }

    fn config(&self) -> PluginConfig {
        Arc::new(match self {
            Self::Integration(i) => i.config.clone(),
            Self::Webhook(w) => w.config.clone(),
        })
    }

    /// The secrets that sign now: the current one, plus a rotated-out one
    /// still inside its overlap.
    pub fn signing_secrets(&self, now_ms: i64) -> Vec<&str> {
        match self {
            Self::Integration(i) => vec![i.signing_secret.expose()],
            Self::Webhook(w) => {
                let mut secrets = vec![w.secret.expose()];
                if let Some((previous, expires)) = &w.previous_secret
                    && *expires > now_ms
                {
                    secrets.push(previous.expose());
                }
                secrets
            }
        }
    }

    /// Why this target takes no deliveries now, if it does not.
    pub fn inactive_reason(&self) -> Option<String> {
        match self {
            Self::Integration(i) if !i.enabled => Some(
                i.disabled_reason
                    .clone()
                    .unwrap_or_else(|| "integration disabled".into()),
            ),
            Self::Webhook(w) if w.deleted => Some("webhook deleted".into()),
            Self::Webhook(w) => w.disabled_reason.clone(),
            Self::Integration(_) => None,
        }
    }
}

/// One request ready to sign and send: body, content type, extra headers.
pub type Prepared = (Vec<u8>, String, Vec<(String, String)>);

/// What the transform stage decided.
#[derive(Debug)]
pub enum Transformed {
    /// Send these, in order.
    Requests(Vec<Prepared>),
    /// Send nothing, for this reason.
    Drop(String),
    /// The plugin failed; retrying would fail the same way.
    Failed(String),
    /// Try later (plugin not loaded yet, instance pool busy).
    Retry(String),
}

/// Runs the stage for `event` going to `target`.
pub async fn transform(registry: &Arc<Registry>, event: &Event, target: &Target) -> Transformed {
    let Some(plugin_ref) = target.plugin() else {
        return standard_payload(event);
    };
    let plugin = match &plugin_ref.version {
        Some(version) => registry.get_version(&plugin_ref.name, version),
        None => registry.get(&plugin_ref.name),
    };
    let Some(plugin) = plugin else {
        let version = plugin_ref
            .version
            .as_deref()
            .map(|v| format!(" version {v}"))
            .unwrap_or_default();
        return Transformed::Retry(format!(
            "plugin `{}`{version} is not loaded",
            plugin_ref.name
        ));
    };
    let input = PluginEvent {
        id: event.id.clone(),
        hook_type: event.event_type.clone(),
        integration: target.id().to_owned(),
        occurred_at_ms: u64::try_from(event.created).unwrap_or(0),
        content_type: "application/json".into(),
        body: event.payload.clone().into_bytes(),
    };
    let config = target.config();
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
    match result {
        Err(join) => Transformed::Retry(format!("transform task failed: {join}")),
        Ok(Ok(Outcome::Drop(reason))) => Transformed::Drop(reason),
        Ok(Ok(Outcome::Deliver(requests))) if requests.is_empty() => {
            Transformed::Drop("the plugin returned no requests".into())
        }
        Ok(Ok(Outcome::Deliver(requests))) => Transformed::Requests(
            requests
                .into_iter()
                .map(|r| (r.body, r.content_type, r.headers))
                .collect(),
        ),
        Ok(Err(error)) if error.kind.is_transient() => Transformed::Retry(error.to_string()),
        Ok(Err(error)) => Transformed::Failed(error.to_string()),
    }
}

/// `{"id", "type", "timestamp", "data"}`: the Standard Webhooks payload.
fn standard_payload(event: &Event) -> Transformed {
    let data: serde_json::Value = match serde_json::from_str(&event.payload) {
        Ok(v) => v,
        Err(e) => return Transformed::Failed(format!("stored payload is not JSON: {e}")),
    };
    let at = UNIX_EPOCH + Duration::from_millis(u64::try_from(event.created).unwrap_or(0));
    let body = json!({
        "id": event.id,
        "type": event.event_type,
        "timestamp": humantime::format_rfc3339_millis(at).to_string(),
        "data": data,
    });
    Transformed::Requests(vec![(
        serde_json::to_vec(&body).unwrap_or_default(),
        "application/json".into(),
        Vec::new(),
    )])
}

fn transform_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        tokio::sync::Semaphore::new(cores * 2)
    })
}
