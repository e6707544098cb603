//! `hookgate serve`: builds the runtime objects from settings and runs the
//! HTTP server until the cancellation token fires.

use crate::api::{self, AppState, KeyCache, RateLimits};
use crate::config::ServeSettings;
use crate::pipeline::Pipeline;
use crate::plugin::{PluginSettings, Registry, Runtime, RuntimeConfig};
use crate::secrets::Cipher;
use crate::store::Store;
use anyhow::Context;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A started gateway's parts, for callers that embed it (tests, the demo).
#[derive(Debug, Clone)]
pub struct Gateway {
    /// The database.
    pub store: Store,
    /// Loaded plugins.
    pub registry: Arc<Registry>,
    /// The delivery pipeline.
    pub pipeline: Arc<Pipeline>,
}

/// Builds everything from `settings` and serves on `listener` until
/// `cancel` fires.
pub async fn run(
    settings: ServeSettings,
    listener: TcpListener,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let (state, gateway) = build(&settings, cancel.clone()).await?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, database = state.store.kind(), "hookgate listening");
    let store = state.store.clone();
    let workers = tokio::spawn(gateway.pipeline.clone().run(cancel.clone()));
    axum::serve(listener, api::app(state))
        .with_graceful_shutdown(cancel.cancelled_owned())
        .await?;
    // Stop claiming, finish or release what is in flight, then close.
    workers.await?;
    store.close().await;
    tracing::info!("hookgate stopped");
    Ok(())
}

/// Builds the shared state without serving.
pub async fn build(
    settings: &ServeSettings,
    cancel: CancellationToken,
) -> anyhow::Result<(AppState, Gateway)> {
    let cipher = cipher(settings)?;
    let store = Store::connect(&settings.database_url, cipher)
        .await
        .with_context(|| {
            format!(
                "could not open the database {}",
                redact_url(&settings.database_url)
            )
        })?
        .with_limits(settings.store_limits);

    let runtime = Arc::new(Runtime::new(RuntimeConfig {
        limits: settings.limits.clone(),
        maxima: settings.maxima,
        cache_dir: Some(settings.data_dir.join("plugin-cache")),
        ..RuntimeConfig::default()
    })?);
    let defaults: HashMap<String, PluginSettings> = settings
        .plugin_reuse
        .iter()
        .map(|(name, n)| (name.clone(), PluginSettings::reuse((*n).max(1))))
        .collect();
    let registry = Arc::new(Registry::new(runtime, defaults));
    if let Some(dir) = &settings.plugin_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("could not create the plugin folder {}", dir.display()))?;
    }
    crate::plugin_sync::start(&store, &registry, settings.plugin_dir.as_deref()).await?;
    let (loaded_tx, loaded_rx) = tokio::sync::mpsc::unbounded_channel();
    if let Some(dir) = &settings.plugin_dir {
        registry.watch_with(
            dir.clone(),
            cancel.clone(),
            Arc::new(move |files| {
                let _ = loaded_tx.send(files);
            }),
        )?;
        tracing::info!(dir = %dir.display(), "watching the plugin folder");
    }
    tokio::spawn(crate::plugin_sync::run(
        store.clone(),
        registry.clone(),
        loaded_rx,
        cancel.clone(),
    ));
    if settings.admin_key.is_none() {
        tracing::warn!(
            "no admin key set (--admin-key / HOOKGATE_ADMIN_KEY): organization and plugin routes will answer 401"
        );
    }
    let pipeline = Pipeline::new(store.clone(), registry.clone(), settings.workers.clone());
    let metrics = metrics_handle();
    if let Some(handle) = metrics.clone() {
        tokio::spawn(metrics_upkeep(handle, store.clone(), cancel.clone()));
    }
    tokio::spawn(crate::retention::run(
        store.clone(),
        settings.retention,
        cancel.clone(),
    ));
    let state = AppState {
        schemas: Arc::default(),
        pipeline: pipeline.clone(),
        store: store.clone(),
        registry: registry.clone(),
        keys: Arc::new(KeyCache::default()),
        rate_limits: Arc::new(RateLimits::new(settings.rate_limit)),
        admin_key: settings.admin_key.clone(),
        allow_private: settings.allow_private_destinations,
        rotation_overlap: settings.secret_rotation_overlap,
        public_url: settings.public_url.as_deref().map(Arc::from),
        max_body_bytes: settings.max_body_bytes,
        max_plugin_bytes: settings.max_plugin_bytes,
        metrics,
    };
    Ok((
        state,
        Gateway {
            store,
            registry,
            pipeline,
        },
    ))
}

fn cipher(settings: &ServeSettings) -> anyhow::Result<Cipher> {
    if let Some(key) = &settings.secret_key {
        return Cipher::from_base64(key.expose()).context("HOOKGATE_SECRET_KEY");
    }
    if !settings.database_url.starts_with("sqlite:") {
        anyhow::bail!(
            "set HOOKGATE_SECRET_KEY (base64 of 32 random bytes, the same on every replica) to use PostgreSQL"
        );
    }
    let path = settings.data_dir.join("secret.key");
    let (cipher, created) = Cipher::from_key_file(&path)?;
    if created {
        tracing::warn!(path = %path.display(), "no HOOKGATE_SECRET_KEY: generated a secret key file; back it up, secrets at rest cannot be read without it");
    }
    Ok(cipher)
}

/// The process-wide Prometheus recorder (installed once).
fn metrics_handle() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| match PrometheusBuilder::new().install_recorder() {
            Ok(handle) => Some(handle),
            Err(error) => {
                tracing::warn!(%error, "could not install the metrics recorder");
                None
            }
        })
        .clone()
}

/// Drains histogram samples into their summaries every few seconds (the
/// recorder keeps every sample until then, so without it a gateway nobody
/// scrapes would grow without bound), and counts the deliveries by status
/// every [`QUEUE_COUNT_EVERY`]: a scrape only renders, so however often
/// `/metrics` is asked, the database is counted at that pace.
async fn metrics_upkeep(handle: PrometheusHandle, store: Store, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
    let mut counted: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {
                let handle = handle.clone();
                let _ = tokio::task::spawn_blocking(move || handle.run_upkeep()).await;
                if counted.is_none_or(|at| at.elapsed() >= QUEUE_COUNT_EVERY) {
                    counted = Some(tokio::time::Instant::now());
                    count_deliveries(&store).await;
                }
            }
        }
    }
}

/// How often the queue's depth is counted for `/metrics`.
const QUEUE_COUNT_EVERY: std::time::Duration = std::time::Duration::from_secs(15);

async fn count_deliveries(store: &Store) {
    match store.pending_deliveries().await {
        Ok(n) => metrics::gauge!("hookgate_deliveries_pending").set(n as f64),
        Err(error) => tracing::warn!(%error, "could not count pending deliveries for /metrics"),
    }
}

/// A database URL without its password, for messages.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}
