//! `hookgate plugin diff OLD.wasm NEW.wasm --events FILE.jsonl`: the dry
//! run, offline. Each line of the file is an event (the shape of a `POST
//! /v1/events` body); both components run on each, in the same sandbox and
//! limits, and what differs is shown as a diff of the two outcomes.

use super::PluginDiffArgs;
use super::plugin_run::{EventFile, outcome_json, plugin_name};
use crate::plugin::{Outcome, PluginConfig, PluginError, PluginSettings};
use anyhow::Context;
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::sync::Arc;

/// What the comparison found.
#[derive(Debug, Default)]
pub struct DiffReport {
    /// The readable report, a block per event and a summary line.
    pub text: String,
    /// How many events the two answered differently.
    pub changed: usize,
}

/// Runs both components on every event of the file.
pub fn diff_plugins(args: &PluginDiffArgs) -> anyhow::Result<DiffReport> {
    let runtime = args.limits.local_runtime()?;
    let load = |path: &std::path::Path| -> anyhow::Result<_> {
        let bytes =
            std::fs::read(path).with_context(|| format!("could not read {}", path.display()))?;
        runtime
            .load(&plugin_name(path), &bytes, PluginSettings::beside(path)?)
            .with_context(|| format!("{} was refused", path.display()))
    };
    let (old, new) = (load(&args.old)?, load(&args.new)?);
    let events = std::fs::read_to_string(&args.events)
        .with_context(|| format!("could not read {}", args.events.display()))?;
    let config: PluginConfig = Arc::new(args.config.iter().cloned().collect());
    let mut report = DiffReport::default();
    let mut total = 0;
    for (n, line) in events
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let event: EventFile = serde_json::from_str(line)
            .with_context(|| format!("{} line {}: not an event", args.events.display(), n + 1))?;
        let input = event.into_plugin_event()?;
        let before = side(&runtime.transform(&old, &input, &config));
        let after = side(&runtime.transform(&new, &input, &config));
        total += 1;
        if before == after {
            writeln!(report.text, "{} {}: same", input.id, input.hook_type)?;
            continue;
        }
        report.changed += 1;
        writeln!(report.text, "{} {}: changed", input.id, input.hook_type)?;
        let (before, after) = (
            serde_json::to_string_pretty(&before)?,
            serde_json::to_string_pretty(&after)?,
        );
        let diff = similar::TextDiff::from_lines(&before, &after);
        let unified = diff
            .unified_diff()
            .context_radius(2)
            .header(
                &args.old.display().to_string(),
                &args.new.display().to_string(),
            )
            .to_string();
        report.text.push_str(&unified);
    }
    writeln!(
        report.text,
        "{total} events: {} same, {} changed",
        total - report.changed,
        report.changed
    )?;
    Ok(report)
}

/// One side of the comparison: the outcome, or the plugin's error.
fn side(result: &Result<Outcome, PluginError>) -> Value {
    match result {
        Ok(outcome) => json!({"outcome": outcome_json(outcome)}),
        Err(error) => json!({"error": error.kind.to_string()}),
    }
}
