//! Keeps every replica's plugin registry on the versions the database says
//! are active. The database is the source of truth: uploads, activations
//! and changed plugin files are written there, and each replica follows it
//! by polling (every 2 s; PostgreSQL or SQLite alike), loading any version
//! it lacks from the stored component.

use crate::model::now_ms;
use crate::plugin::{LoadedFile, Registry};
use crate::store::{ActivePlugin, Store, StoreError};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How often a replica checks the active versions.
pub const POLL: Duration = Duration::from_secs(2);

/// Stores `file` and makes it the active version everywhere.
pub async fn publish(store: &Store, file: &LoadedFile) -> Result<(), StoreError> {
    keep(store, file).await?;
    store
        .set_active_plugin(&file.name, &file.version, now_ms())
        .await?;
    tracing::info!(plugin = %file.name, version = %file.version, "plugin version published to every replica");
    Ok(())
}

/// Stores `file` for every replica without making it active (a candidate
/// for a dry run, or a later activation).
pub async fn keep(store: &Store, file: &LoadedFile) -> Result<(), StoreError> {
    store
        .put_plugin_version(
            &file.name,
            &file.version,
            &file.bytes,
            &file.settings,
            now_ms(),
        )
        .await
}

/// At start: load what the database says is active, then the plugin
/// folder. A folder file whose version the database does not know yet is
/// new, and is published; a known one does not override the database's
/// choice (another replica may have rolled it forward or back).
pub async fn start(
    store: &Store,
    registry: &Arc<Registry>,
    dir: Option<&Path>,
) -> anyhow::Result<()> {
    follow(store, registry).await?;
    let Some(dir) = dir else { return Ok(()) };
    let scan_registry = registry.clone();
    let scan_dir = dir.to_path_buf();
    let loaded =
        tokio::task::spawn_blocking(move || scan_registry.scan_dir(&scan_dir, false)).await??;
    let active: std::collections::HashSet<String> = store
        .active_plugins()
        .await?
        .into_iter()
        .map(|a| a.name)
        .collect();
    for file in loaded {
        if !store.has_plugin_version(&file.name, &file.version).await?
            || !active.contains(&file.name)
        {
            publish(store, &file).await?;
            registry.activate(&file.name, &file.version)?;
        }
    }
    // Names only in the folder and not yet active anywhere become active here too.
    follow(store, registry).await?;
    Ok(())
}

/// Runs until `cancel`: publishes files the folder watcher loads, and
/// follows the database's active versions.
pub async fn run(
    store: Store,
    registry: Arc<Registry>,
    mut loaded: mpsc::UnboundedReceiver<Vec<LoadedFile>>,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            Some(files) = loaded.recv() => {
                for file in files {
                    if let Err(error) = publish(&store, &file).await {
                        tracing::warn!(plugin = %file.name, %error, "could not publish the plugin version; it serves on this replica only");
                    }
                }
            }
            _ = tick.tick() => {
                if let Err(error) = follow(&store, &registry).await {
                    tracing::warn!(%error, "could not follow the active plugin versions");
                }
            }
        }
    }
}

/// Activates locally what the database says is active, loading versions
/// this replica does not have.
pub async fn follow(store: &Store, registry: &Arc<Registry>) -> anyhow::Result<()> {
    for ActivePlugin {
        name,
        version,
        settings,
    } in store.active_plugins().await?
    {
        if registry.is_active(&name, &version, settings) {
            continue;
        }
        let installed = match registry.configure(&name, &version, settings, true) {
            Some(configured) => configured,
            None => {
                let (bytes, settings) = store.plugin_component(&name, &version).await?;
                let registry = registry.clone();
                let name = name.clone();
                tokio::task::spawn_blocking(move || registry.install(&name, &bytes, settings, true))
                    .await?
            }
        };
        match installed {
            Ok(plugin) => {
                tracing::info!(plugin = %name, version = plugin.version(), "plugin version loaded from the database")
            }
            Err(error) => tracing::warn!(plugin = %name, %error, "stored plugin version refused"),
        }
    }
    Ok(())
}
