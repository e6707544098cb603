//! Loaded plugins by name, with every version seen and the active one, and
//! the plugin folder watcher that hot-loads `NAME.wasm` files (with their
//! settings, `NAME.toml`).
//!
//! Swapping is atomic: callers take an `Arc<Plugin>` for the active version
//! and finish their transform on it, whatever is activated meanwhile.

use super::error::LoadError;
use super::runtime::{Plugin, Runtime};
use super::settings::PluginSettings;
use notify::{RecursiveMode, Watcher};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long the folder must be quiet before a rescan: writers copy files in
/// several steps.
const SETTLE: Duration = Duration::from_millis(250);

/// A plugin file the registry loaded from the folder.
#[derive(Debug, Clone)]
pub struct LoadedFile {
    /// Plugin name (the file stem).
    pub name: String,
    /// Its version.
    pub version: String,
    /// The component.
    pub bytes: Vec<u8>,
    /// Its settings (`NAME.toml`).
    pub settings: PluginSettings,
}

/// Called with the files a folder rescan loaded.
pub type OnLoaded = Arc<dyn Fn(Vec<LoadedFile>) + Send + Sync>;

/// What a caller sees of one loaded version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginVersionInfo {
    /// Plugin name.
    pub name: String,
    /// sha256 of the component, hex.
    pub version: String,
    /// Component size in bytes.
    pub size: usize,
    /// Whether this version serves new transforms.
    pub active: bool,
    /// The settings it runs under, every one filled in.
    pub limits: PluginSettings,
}

#[derive(Debug, Default)]
struct Slot {
    active: Option<Arc<Plugin>>,
    versions: HashMap<String, Arc<Plugin>>,
}

/// Every plugin the gateway can run.
#[derive(Debug)]
pub struct Registry {
    runtime: Arc<Runtime>,
    slots: RwLock<BTreeMap<String, Slot>>,
    defaults: HashMap<String, PluginSettings>,
}

impl Registry {
    /// An empty registry on `runtime`. `defaults` gives the plugins it
    /// names settings of the operator's (e.g. `--plugin-reuse`), for what
    /// a version's own settings leave out.
    pub fn new(runtime: Arc<Runtime>, defaults: HashMap<String, PluginSettings>) -> Self {
        Self {
            runtime,
            slots: RwLock::default(),
            defaults,
        }
    }

    /// The runtime plugins run on.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// The active version of `name`.
    pub fn get(&self, name: &str) -> Option<Arc<Plugin>> {
        self.read().get(name)?.active.clone()
    }

    /// A given version of `name` (its sha256, or a prefix of at least 8 hex
    /// digits).
    pub fn get_version(&self, name: &str, version: &str) -> Option<Arc<Plugin>> {
        let slots = self.read();
        let slot = slots.get(name)?;
        if let Some(plugin) = slot.versions.get(version) {
            return Some(plugin.clone());
        }
        if version.len() < 8 {
            return None;
        }
        let mut matches = slot.versions.iter().filter(|(v, _)| v.starts_with(version));
        match (matches.next(), matches.next()) {
            (Some((_, plugin)), None) => Some(plugin.clone()),
            _ => None,
        }
    }

    /// Compiles and validates `bytes` as a version of `name`, to run with
    /// `settings`, and, when `activate`, makes it the active one. A refused
    /// component or settings change nothing.
    pub fn install(
        &self,
        name: &str,
        bytes: &[u8],
        settings: PluginSettings,
        activate: bool,
    ) -> Result<Arc<Plugin>, LoadError> {
        if let Some(configured) = self.configure(name, &version_of(bytes), settings, activate) {
            return configured;
        }
        let resolved = self.with_defaults(name, settings);
        let plugin = Arc::new(self.runtime.load(name, bytes, resolved)?);
        let mut slots = self.write();
        let slot = slots.entry(name.to_owned()).or_default();
        slot.versions
            .insert(plugin.version().to_owned(), plugin.clone());
        if activate || slot.active.is_none() {
            slot.active = Some(plugin.clone());
        }
        Ok(plugin)
    }

    /// Gives a loaded version `settings` (nothing is recompiled) and, when
    /// `activate`, makes it the active one. `None` when the version is not
    /// loaded.
    pub fn configure(
        &self,
        name: &str,
        version: &str,
        settings: PluginSettings,
        activate: bool,
    ) -> Option<Result<Arc<Plugin>, LoadError>> {
        let existing = self.read().get(name)?.versions.get(version).cloned()?;
        let resolved = self.with_defaults(name, settings);
        let plugin = if existing.settings() == resolved {
            existing
        } else {
            match self.runtime.reconfigure(&existing, resolved) {
                Ok(plugin) => Arc::new(plugin),
                Err(error) => return Some(Err(error)),
            }
        };
        let mut slots = self.write();
        let slot = slots.entry(name.to_owned()).or_default();
        let was_active = slot.active.as_ref().is_some_and(|a| a.version() == version);
        slot.versions.insert(version.to_owned(), plugin.clone());
        if activate || was_active {
            slot.active = Some(plugin.clone());
        }
        if activate {
            tracing::info!(plugin = name, version, "plugin version activated");
        }
        Some(Ok(plugin))
    }

    fn with_defaults(&self, name: &str, settings: PluginSettings) -> PluginSettings {
        match self.defaults.get(name) {
            Some(defaults) => settings.or(*defaults),
            None => settings,
        }
    }

    /// Whether `version` of `name`, with `settings`, is the active one.
    pub fn is_active(&self, name: &str, version: &str, settings: PluginSettings) -> bool {
        let (Some(loaded), Some(active)) = (self.loaded(name, version, settings), self.get(name))
        else {
            return false;
        };
        Arc::ptr_eq(&loaded, &active)
    }

    /// The loaded plugin of `name` at `version` with `settings`, if any.
    fn loaded(&self, name: &str, version: &str, settings: PluginSettings) -> Option<Arc<Plugin>> {
        let plugin = self.read().get(name)?.versions.get(version).cloned()?;
        (plugin.settings() == self.with_defaults(name, settings)).then_some(plugin)
    }

    /// Makes a loaded version the active one (roll back or forward).
    pub fn activate(&self, name: &str, version: &str) -> Result<Arc<Plugin>, LoadError> {
        let plugin = self
            .get_version(name, version)
            .ok_or_else(|| LoadError::Unknown(format!("{name}@{version}")))?;
        let mut slots = self.write();
        if let Some(slot) = slots.get_mut(name) {
            slot.active = Some(plugin.clone());
        }
        tracing::info!(
            plugin = name,
            version = plugin.version(),
            "plugin version activated"
        );
        Ok(plugin)
    }

    /// Every loaded version, by name.
    pub fn list(&self) -> Vec<PluginVersionInfo> {
        let slots = self.read();
        let mut out = Vec::new();
        for (name, slot) in slots.iter() {
            let active = slot.active.as_ref().map(|p| p.version());
            let mut versions: Vec<_> = slot.versions.values().collect();
            versions.sort_by(|a, b| a.version().cmp(b.version()));
            out.extend(versions.into_iter().map(|p| PluginVersionInfo {
                name: name.clone(),
                version: p.version().to_owned(),
                size: p.size(),
                active: Some(p.version()) == active,
                limits: p.effective_settings(),
            }));
        }
        out
    }

    /// Loads every `NAME.wasm` in `dir` that is new or changed and makes it
    /// active. Returns how many were loaded; refused files are logged and
    /// skipped.
    pub fn load_dir(&self, dir: &Path) -> std::io::Result<usize> {
        Ok(self.scan_dir(dir, true)?.len())
    }

    /// Loads every `NAME.wasm` in `dir` whose version is not loaded yet
    /// (activating it when `activate`); returns what it loaded.
    pub fn scan_dir(&self, dir: &Path, activate: bool) -> std::io::Result<Vec<LoadedFile>> {
        let mut loaded = Vec::new();
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
            .collect();
        entries.sort();
        for path in entries {
            let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            let bytes = match std::fs::read(&path) {
                Ok(bytes) => bytes,
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "could not read plugin file");
                    continue;
                }
            };
            let settings = match PluginSettings::beside(&path) {
                Ok(settings) => settings,
                Err(error) => {
                    tracing::warn!(plugin = name, %error, "plugin settings refused; the previous version keeps serving");
                    continue;
                }
            };
            // Skip what is already in place: the active version when
            // activating, any loaded version otherwise; with these settings.
            let known = self.loaded(name, &version_of(&bytes), settings);
            let in_place = match (&known, activate) {
                (Some(k), true) => self.get(name).is_some_and(|active| Arc::ptr_eq(k, &active)),
                (Some(_), false) => true,
                (None, _) => false,
            };
            if in_place {
                continue;
            }
            match self.install(name, &bytes, settings, activate) {
                Ok(plugin) => {
                    loaded.push(LoadedFile {
                        name: name.to_owned(),
                        version: plugin.version().to_owned(),
                        bytes,
                        settings,
                    });
                    tracing::info!(plugin = name, version = plugin.version(), path = %path.display(), "plugin loaded");
                }
                Err(error) => {
                    let serving = self.get(name).map(|p| p.version().to_owned());
                    tracing::warn!(plugin = name, path = %path.display(), %error, serving = serving.as_deref().unwrap_or("none"), "plugin file refused; the previous version keeps serving");
                }
            }
        }
        Ok(loaded)
    }

    /// Watches `dir` and reloads changed plugin files until `cancel` fires.
    /// Runs on a thread of its own; returns once the watch is set up.
    pub fn watch(self: &Arc<Self>, dir: PathBuf, cancel: CancellationToken) -> notify::Result<()> {
        self.watch_with(dir, cancel, Arc::new(|_| {}))
    }

    /// [`Registry::watch`], calling `on_loaded` with every file it loads.
    pub fn watch_with(
        self: &Arc<Self>,
        dir: PathBuf,
        cancel: CancellationToken,
        on_loaded: OnLoaded,
    ) -> notify::Result<()> {
        let (tx, rx) = std::sync::mpsc::channel();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if event.is_ok_and(|e| !e.kind.is_access()) {
                    let _ = tx.send(());
                }
            })?;
        watcher.watch(&dir, RecursiveMode::NonRecursive)?;
        let registry = self.clone();
        std::thread::Builder::new()
            .name("hookgate-plugin-watch".into())
            .spawn(move || {
                let _watcher = watcher;
                while !cancel.is_cancelled() {
                    match rx.recv_timeout(Duration::from_millis(200)) {
                        Ok(()) => {
                            // Let the writer finish, then take every queued event at once.
                            std::thread::sleep(SETTLE);
                            while rx.try_recv().is_ok() {}
                            match registry.scan_dir(&dir, true) {
                                Ok(loaded) if !loaded.is_empty() => on_loaded(loaded),
                                Ok(_) => {}
                                Err(error) => tracing::warn!(dir = %dir.display(), %error, "could not rescan the plugin folder"),
                            }
                        }
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                    }
                }
            })
            .map_err(notify::Error::io)?;
        Ok(())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Slot>> {
        self.slots.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Slot>> {
        self.slots.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// A component's version: its sha256, hex.
fn version_of(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}
