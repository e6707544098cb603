//! `hookgate plugin run`: one plugin, one sample event, the outcome as JSON.

use super::PluginRunArgs;
use crate::plugin::{Outcome, PluginConfig, PluginEvent, PluginSettings};
use anyhow::Context;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// The sample event file: the shape of a `POST /v1/events` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EventFile {
    /// Event id; one is made up when absent.
    pub id: Option<String>,
    /// Hook type.
    #[serde(rename = "type")]
    pub hook_type: String,
    /// The payload.
    pub payload: Value,
    /// Shop the event belongs to (used for routing, not shown to plugins).
    pub shop_id: Option<String>,
}

impl EventFile {
    /// The event as a plugin sees it, accepted now (an id made up when absent).
    pub fn into_plugin_event(self) -> anyhow::Result<PluginEvent> {
        Ok(PluginEvent {
            id: self
                .id
                .unwrap_or_else(|| format!("evt_{}", uuid::Uuid::now_v7().simple())),
            hook_type: self.hook_type,
            integration: "cli".to_owned(),
            occurred_at_ms: now_ms(),
            content_type: "application/json".to_owned(),
            body: serde_json::to_vec(&self.payload)?,
        })
    }
}

/// Runs the command; `Ok(Err(message))` is a plugin failure (exit 1).
pub fn run_plugin(args: &PluginRunArgs) -> anyhow::Result<Result<Value, String>> {
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("could not read {}", args.file.display()))?;
    let event_text = std::fs::read_to_string(&args.event)
        .with_context(|| format!("could not read {}", args.event.display()))?;
    let event: EventFile = serde_json::from_str(&event_text)
        .with_context(|| format!("{} is not a valid event file", args.event.display()))?;
    let runtime = args.limits.local_runtime()?;
    let name = plugin_name(&args.file);
    let plugin = runtime
        .load(&name, &bytes, PluginSettings::beside(&args.file)?)
        .with_context(|| format!("{} was refused", args.file.display()))?;
    let input = event.into_plugin_event()?;
    let config: PluginConfig = Arc::new(args.config.iter().cloned().collect());
    Ok(match runtime.transform(&plugin, &input, &config) {
        Ok(outcome) => Ok(json!({
            "plugin": plugin.name(),
            "version": plugin.version(),
            "eventId": input.id,
            "outcome": outcome_json(&outcome),
        })),
        Err(error) => Err(error.to_string()),
    })
}

/// An outcome as JSON: bodies that are JSON stay JSON, other UTF-8 bodies
/// become strings, anything else base64.
pub fn outcome_json(outcome: &Outcome) -> Value {
    match outcome {
        Outcome::Drop(reason) => json!({"type": "drop", "reason": reason}),
        Outcome::Deliver(requests) => json!({
            "type": "deliver",
            "requests": requests.iter().map(|r| {
                let body = serde_json::from_slice::<Value>(&r.body).ok()
                    .map(|v| json!({"json": v}))
                    .or_else(|| std::str::from_utf8(&r.body).ok().map(|s| json!({"text": s})))
                    .unwrap_or_else(|| {
                        use base64::Engine as _;
                        json!({"base64": base64::engine::general_purpose::STANDARD.encode(&r.body)})
                    });
                json!({
                    "contentType": r.content_type,
                    "headers": r.headers.iter().map(|(n, v)| json!({"name": n, "value": v})).collect::<Vec<_>>(),
                    "body": body,
                })
            }).collect::<Vec<_>>(),
        }),
    }
}

/// A plugin name from a file name: `plugin_partner.wasm` → `plugin_partner`.
pub(super) fn plugin_name(path: &std::path::Path) -> String {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("plugin");
    let name: String = stem
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    if name.is_empty() {
        "plugin".to_owned()
    } else {
        name
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
