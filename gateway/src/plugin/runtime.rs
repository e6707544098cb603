//! The sandbox: one wasmtime engine with a pooling allocator, an epoch
//! ticker for deadlines, a memory limiter and an output cap. Compiles and
//! validates components into [`Plugin`]s and runs their `transform`.

use super::bindings::{self, Integration, IntegrationPre};
use super::cache::CompileCache;
use super::error::{LoadError, PluginError, PluginErrorKind};
use super::settings::{Maxima, PluginSettings};
use super::types::{Outcome, OutgoingRequest, PluginConfig, PluginEvent};
use crate::model::{one_line, truncate};
use crate::pipeline::request::{is_header_name, plugin_may_set};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{
    Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter, Store,
};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// How often the epoch ticker advances; deadlines are rounded up to it.
const EPOCH_TICK: Duration = Duration::from_millis(10);
/// How much of a trapping plugin's stderr (its panic message) is kept.
const STDERR_CAPTURE: usize = 4096;
/// Longest plugin log line passed on.
const MAX_LOG_LINE: usize = 4096;
/// Longest error message or drop reason a plugin's text may fill.
const MAX_MESSAGE: usize = 1024;
/// Most log lines a dry run keeps per transform.
const MAX_CAPTURED_LOGS: usize = 100;

/// A transform's result with the lines the plugin logged on the way.
#[derive(Debug)]
pub struct Logged {
    /// What the transform came to.
    pub result: Result<Outcome, PluginError>,
    /// What it logged (at most 100 lines).
    pub logs: Vec<LogLine>,
}

/// A log line a plugin wrote during one transform (kept for dry runs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// `trace`, `debug`, `info`, `warn` or `error`.
    pub level: &'static str,
    /// The line (one line, bounded).
    pub message: String,
}

/// Sandbox limits: the runtime's defaults, and each plugin's own (see
/// [`PluginSettings`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock deadline of one transform (default 100 ms).
    pub deadline: Duration,
    /// Linear memory cap per instance (default 32 MiB).
    pub memory_bytes: usize,
    /// Cap on the bytes a transform returns, bodies and headers (default 1 MiB).
    pub output_bytes: usize,
    /// Cap on the requests a transform returns (default 64): each becomes a
    /// delivery, so this bounds one event's fan-out per route.
    pub output_requests: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            deadline: Duration::from_millis(100),
            memory_bytes: 32 << 20,
            output_bytes: 1 << 20,
            output_requests: 64,
        }
    }
}

/// How a runtime is built.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Default sandbox limits.
    pub limits: Limits,
    /// The most a plugin's own settings may ask for.
    pub maxima: Maxima,
    /// Where compiled components are cached; `None` compiles every time.
    pub cache_dir: Option<PathBuf>,
    /// Instance slots in the pool: the most transforms (plus idle reused
    /// instances) alive at once.
    pub max_instances: u32,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            maxima: Maxima::default(),
            cache_dir: None,
            max_instances: 128,
        }
    }
}

/// Whether a plugin's instances may serve more than one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InstanceMode {
    /// A fresh instance per event: nothing leaks between events (default).
    #[default]
    Fresh,
    /// One instance serves up to `max_events` consecutive events of the same
    /// integration, and is dropped after any error. Faster; globals persist
    /// between those events.
    Reuse {
        /// Events an instance serves before it is discarded.
        max_events: u32,
    },
}

/// The plugin runtime. Cheap to share behind an `Arc`.
pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    limits: Limits,
    maxima: Maxima,
    cache: Option<CompileCache>,
    stop_ticker: Arc<AtomicBool>,
    /// Idle reused instances kept, across plugins, and the most allowed: a
    /// quarter of the pool's slots, so idle instances can never take the
    /// slots transforms need.
    idle: Arc<AtomicUsize>,
    max_idle: usize,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

/// A compiled, validated plugin version, ready to instantiate.
pub struct Plugin {
    name: String,
    version: String,
    size: usize,
    pre: IntegrationPre<HostState>,
    settings: PluginSettings,
    limits: Limits,
    mode: InstanceMode,
    /// Idle instances for reuse, by integration id.
    idle: Mutex<HashMap<String, Vec<Warm>>>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("limits", &self.limits)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// An instance kept for reuse.
struct Warm {
    store: Store<HostState>,
    bindings: Integration,
    served: u32,
    /// Set while it waits in an idle pool: counts it in the runtime's idle
    /// total, and since when it waits.
    parked: Option<Parked>,
}

/// One idle instance counted in the runtime's total, until dropped.
struct Parked {
    idle: Arc<AtomicUsize>,
    since: std::time::Instant,
}

impl Drop for Parked {
    fn drop(&mut self) {
        self.idle.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Idle instances kept per integration in reuse mode.
const MAX_IDLE_PER_INTEGRATION: usize = 4;
/// An idle instance unused this long is dropped rather than reused.
const IDLE_TTL: Duration = Duration::from_secs(60);

impl Plugin {
    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The version: the component's sha256, hex.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The component's size in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// How instances are used.
    pub fn mode(&self) -> InstanceMode {
        self.mode
    }

    /// The settings it was loaded with, as given.
    pub fn settings(&self) -> PluginSettings {
        self.settings
    }

    /// The sandbox limits it runs under.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The settings it runs under, defaults filled in.
    pub fn effective_settings(&self) -> PluginSettings {
        PluginSettings {
            memory_mib: Some((self.limits.memory_bytes >> 20) as u32),
            deadline_ms: Some(self.limits.deadline.as_millis() as u32),
            reuse: Some(match self.mode {
                InstanceMode::Fresh => 1,
                InstanceMode::Reuse { max_events } => max_events,
            }),
        }
    }

    fn error(&self, kind: PluginErrorKind) -> PluginError {
        PluginError {
            plugin: self.name.clone(),
            version: self.version[..12.min(self.version.len())].to_owned(),
            kind,
        }
    }
}

/// Per-store host state: WASI with nothing granted, plus what the `host`
/// import serves.
struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: MemoryLimiter,
    stderr: MemoryOutputPipe,
    config: PluginConfig,
    plugin: Arc<str>,
    version: Arc<str>,
    event_id: String,
    /// The lines logged, when the caller keeps them (a dry run).
    captured: Option<Vec<LogLine>>,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl bindings::hookgate::plugin::types::Host for HostState {}

impl bindings::Host for HostState {
    fn log(&mut self, level: bindings::Level, message: String) {
        // One line, bounded: a plugin cannot forge log lines.
        let message = one_line(&message, MAX_LOG_LINE);
        let (plugin, version, event_id) = (&*self.plugin, &self.version[..12], &self.event_id);
        let name = match level {
            bindings::Level::Trace => "trace",
            bindings::Level::Debug => "debug",
            bindings::Level::Info => "info",
            bindings::Level::Warn => "warn",
            bindings::Level::Error => "error",
        };
        match level {
            bindings::Level::Trace => tracing::trace!(plugin, version, event_id, "{message}"),
            bindings::Level::Debug => tracing::debug!(plugin, version, event_id, "{message}"),
            bindings::Level::Info => tracing::info!(plugin, version, event_id, "{message}"),
            bindings::Level::Warn => tracing::warn!(plugin, version, event_id, "{message}"),
            bindings::Level::Error => tracing::error!(plugin, version, event_id, "{message}"),
        }
        if let Some(lines) = &mut self.captured
            && lines.len() < MAX_CAPTURED_LOGS
        {
            lines.push(LogLine {
                level: name,
                message,
            });
        }
    }

    fn config(&mut self, key: String) -> Option<String> {
        self.config.get(&key).cloned()
    }
}

/// Caps linear memory growth and remembers that it did.
struct MemoryLimiter {
    cap: usize,
    hit: bool,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.cap {
            self.hit = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

impl Runtime {
    /// Builds the engine, the linker and the epoch ticker.
    pub fn new(config: RuntimeConfig) -> anyhow::Result<Self> {
        let limits = config.limits.clone();
        let n = config.max_instances.max(1);
        let engine = engine(&config, true).or_else(|_| engine(&config, false))?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        Integration::add_to_linker::<_, HasSelf<HostState>>(&mut linker, |state| state)?;

        let stop_ticker = Arc::new(AtomicBool::new(false));
        {
            let engine = engine.clone();
            let stop = stop_ticker.clone();
            std::thread::Builder::new()
                .name("hookgate-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(EPOCH_TICK);
                        engine.increment_epoch();
                    }
                })?;
        }
        let cache = config.cache_dir.map(|dir| CompileCache::new(dir, &engine));
        Ok(Self {
            idle: Arc::default(),
            max_idle: (n as usize / 4).max(1),
            engine,
            linker,
            limits,
            maxima: config.maxima,
            cache,
            stop_ticker,
        })
    }

    /// The default sandbox limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Compiles (or loads from the cache) and validates a component against
    /// the `integration` world, to run with `settings`.
    pub fn load(
        &self,
        name: &str,
        bytes: &[u8],
        settings: PluginSettings,
    ) -> Result<Plugin, LoadError> {
        validate_name(name)?;
        let (limits, mode) = settings.resolve(&self.limits, &self.maxima)?;
        check_component_header(bytes)?;
        let version = hex::encode(Sha256::digest(bytes));
        let component = match &self.cache {
            Some(cache) => cache.load_or_compile(&self.engine, bytes, &version)?,
            None => compile(&self.engine, bytes)?,
        };
        let instance_pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::WrongWorld(format!("{e:#}")))?;
        let pre = IntegrationPre::new(instance_pre)
            .map_err(|e| LoadError::WrongWorld(format!("{e:#}")))?;
        Ok(Plugin {
            name: name.to_owned(),
            version,
            size: bytes.len(),
            pre,
            settings,
            limits,
            mode,
            idle: Mutex::new(HashMap::new()),
        })
    }

    /// The same compiled version with other settings (nothing recompiled;
    /// instances kept for reuse under the old settings are not carried over).
    pub fn reconfigure(
        &self,
        plugin: &Plugin,
        settings: PluginSettings,
    ) -> Result<Plugin, LoadError> {
        let (limits, mode) = settings.resolve(&self.limits, &self.maxima)?;
        Ok(Plugin {
            name: plugin.name.clone(),
            version: plugin.version.clone(),
            size: plugin.size,
            pre: plugin.pre.clone(),
            settings,
            limits,
            mode,
            idle: Mutex::new(HashMap::new()),
        })
    }

    /// Runs `plugin`'s transform on `event` with `config`, inside the
    /// sandbox. Blocking: call it from a blocking thread.
    pub fn transform(
        &self,
        plugin: &Plugin,
        event: &PluginEvent,
        config: &PluginConfig,
    ) -> Result<Outcome, PluginError> {
        self.run(plugin, event, config, false).result
    }

    /// [`Runtime::transform`], keeping the lines the plugin logs (at most
    /// 100) for the caller, as a dry run shows them.
    pub fn transform_logged(
        &self,
        plugin: &Plugin,
        event: &PluginEvent,
        config: &PluginConfig,
    ) -> Logged {
        self.run(plugin, event, config, true)
    }

    fn run(
        &self,
        plugin: &Plugin,
        event: &PluginEvent,
        config: &PluginConfig,
        capture: bool,
    ) -> Logged {
        let mut warm = match self.ready(plugin, event, config, capture) {
            Ok(warm) => warm,
            Err(error) => {
                return Logged {
                    result: Err(error),
                    logs: Vec::new(),
                };
            }
        };
        let input = bindings::Event {
            id: event.id.clone(),
            hook_type: event.hook_type.clone(),
            integration: event.integration.clone(),
            occurred_at_ms: event.occurred_at_ms,
            content_type: event.content_type.clone(),
            body: event.body.clone(),
        };
        let result = warm.bindings.call_transform(&mut warm.store, &input);
        let logs = warm.store.data_mut().captured.take().unwrap_or_default();
        let outcome = match result {
            Ok(Ok(outcome)) => check_outcome(plugin, outcome),
            Ok(Err(bindings::PluginError::InvalidEvent(m))) => {
                Err(plugin.error(PluginErrorKind::InvalidEvent(one_line(&m, MAX_MESSAGE))))
            }
            Ok(Err(bindings::PluginError::Failed(m))) => {
                Err(plugin.error(PluginErrorKind::Failed(one_line(&m, MAX_MESSAGE))))
            }
            Err(trap) => {
                let kind = classify_trap(plugin, &warm.store, &trap);
                // A trapped instance is never reused.
                return Logged {
                    result: Err(plugin.error(kind)),
                    logs,
                };
            }
        };
        warm.served += 1;
        if let InstanceMode::Reuse { max_events } = plugin.mode
            && warm.served < max_events
        {
            self.put_idle(plugin, &event.integration, warm);
        }
        Logged {
            result: outcome,
            logs,
        }
    }

    /// An instance for `event`: an idle one of its integration (given
    /// `config` anew) or a fresh one, with the event's id, the deadline
    /// set, and its log lines kept when `capture` is set.
    fn ready(
        &self,
        plugin: &Plugin,
        event: &PluginEvent,
        config: &PluginConfig,
        capture: bool,
    ) -> Result<Warm, PluginError> {
        let (mut warm, reused) = match self.take_idle(plugin, &event.integration) {
            Some(warm) => (warm, true),
            None => (self.instantiate(plugin, config)?, false),
        };
        let state = warm.store.data_mut();
        state.event_id.clone_from(&event.id);
        state.captured = capture.then(Vec::new);
        if reused {
            state.config = config.clone();
        }
        warm.store
            .set_epoch_deadline(deadline_ticks(plugin.limits.deadline));
        Ok(warm)
    }

    fn instantiate(&self, plugin: &Plugin, config: &PluginConfig) -> Result<Warm, PluginError> {
        let stderr = MemoryOutputPipe::new(STDERR_CAPTURE);
        let wasi = WasiCtxBuilder::new()
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let state = HostState {
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryLimiter {
                cap: plugin.limits.memory_bytes,
                hit: false,
            },
            stderr,
            config: config.clone(),
            plugin: Arc::from(plugin.name.as_str()),
            version: Arc::from(plugin.version.as_str()),
            event_id: String::new(),
            captured: None,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limiter);
        // A new store's deadline is 0: set it before instantiating, or the
        // start functions trap with "interrupt" once the ticker has run.
        store.set_epoch_deadline(deadline_ticks(plugin.limits.deadline));
        let bindings = plugin.pre.instantiate(&mut store).map_err(|e| {
            // Every slot of the pool in use: a typed error, retried later.
            if e.downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
                .is_some()
            {
                plugin.error(PluginErrorKind::Busy(format!("{e:#}")))
            } else {
                let kind = classify_trap(plugin, &store, &e);
                plugin.error(kind)
            }
        })?;
        Ok(Warm {
            store,
            bindings,
            served: 0,
            parked: None,
        })
    }

    /// An idle instance of `plugin` for `integration`, if one waits; those
    /// idle past [`IDLE_TTL`] are dropped on the way (theirs and every
    /// other integration's of this plugin).
    fn take_idle(&self, plugin: &Plugin, integration: &str) -> Option<Warm> {
        if plugin.mode == InstanceMode::Fresh {
            return None;
        }
        let mut idle = plugin.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.retain(|_, warm| {
            warm.retain(|w| {
                w.parked
                    .as_ref()
                    .is_some_and(|p| p.since.elapsed() < IDLE_TTL)
            });
            !warm.is_empty()
        });
        let mut warm = idle.get_mut(integration).and_then(Vec::pop)?;
        warm.parked = None;
        Some(warm)
    }

    /// Keeps `warm` for the next event of `integration`, unless the pool
    /// has its share of idle instances already (then it is dropped, and its
    /// slot freed).
    fn put_idle(&self, plugin: &Plugin, integration: &str, mut warm: Warm) {
        if self.idle.fetch_add(1, Ordering::Relaxed) >= self.max_idle {
            self.idle.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        warm.parked = Some(Parked {
            idle: self.idle.clone(),
            since: std::time::Instant::now(),
        });
        let mut idle = plugin.idle.lock().unwrap_or_else(|e| e.into_inner());
        let slot = idle.entry(integration.to_owned()).or_default();
        if slot.len() < MAX_IDLE_PER_INTEGRATION {
            slot.push(warm);
        }
    }
}

/// A transform's answer within the plugin's output caps, with only headers
/// a plugin may set, as the host's [`Outcome`].
fn check_outcome(plugin: &Plugin, outcome: bindings::Outcome) -> Result<Outcome, PluginError> {
    let requests = match outcome {
        bindings::Outcome::Drop(reason) => {
            return Ok(Outcome::Drop(one_line(&reason, MAX_MESSAGE)));
        }
        bindings::Outcome::Deliver(requests) => requests,
    };
    if requests.len() > plugin.limits.output_requests {
        return Err(plugin.error(PluginErrorKind::TooManyRequests {
            count: requests.len(),
            cap: plugin.limits.output_requests,
        }));
    }
    let size: usize = requests
        .iter()
        .map(|r| {
            r.body.len()
                + r.content_type.len()
                + r.headers
                    .iter()
                    .map(|h| h.name.len() + h.value.len())
                    .sum::<usize>()
        })
        .sum();
    if size > plugin.limits.output_bytes {
        return Err(plugin.error(PluginErrorKind::OutputTooLarge {
            size,
            cap: plugin.limits.output_bytes,
        }));
    }
    requests
        .into_iter()
        .map(|r| {
            check_header_value("content-type", &r.content_type).map_err(|e| plugin.error(e))?;
            let headers = r
                .headers
                .into_iter()
                .map(|h| {
                    if !plugin_may_set(&h.name) {
                        return Err(plugin.error(PluginErrorKind::ReservedHeader(h.name)));
                    }
                    check_header_value(&h.name, &h.value).map_err(|e| plugin.error(e))?;
                    Ok((h.name, h.value))
                })
                .collect::<Result<_, _>>()?;
            Ok(OutgoingRequest {
                body: r.body,
                content_type: r.content_type,
                headers,
            })
        })
        .collect::<Result<_, _>>()
        .map(Outcome::Deliver)
}

/// What a trap was: the memory cap, the deadline, or the plugin's own
/// fault (with its stderr, where it wrote a panic message).
fn classify_trap(
    plugin: &Plugin,
    store: &Store<HostState>,
    error: &wasmtime::Error,
) -> PluginErrorKind {
    if store.data().limiter.hit {
        return PluginErrorKind::MemoryCap(plugin.limits.memory_bytes);
    }
    if let Some(wasmtime::Trap::Interrupt) = error.downcast_ref::<wasmtime::Trap>() {
        return PluginErrorKind::Deadline(plugin.limits.deadline);
    }
    let stderr = store.data().stderr.contents();
    let stderr = String::from_utf8_lossy(&stderr);
    let stderr = stderr.trim();
    let root = error
        .downcast_ref::<wasmtime::Trap>()
        .map(|t| t.to_string())
        .unwrap_or_else(|| format!("{error:#}"));
    if stderr.is_empty() {
        PluginErrorKind::Trap(root)
    } else {
        PluginErrorKind::Trap(format!(
            "{root}; plugin stderr: {}",
            one_line(stderr, MAX_MESSAGE)
        ))
    }
}

fn deadline_ticks(deadline: Duration) -> u64 {
    // +1: the current tick may be about to end.
    (deadline.as_nanos().div_ceil(EPOCH_TICK.as_nanos()) as u64).max(1) + 1
}

/// The engine: a pooling allocator sized for `config`, epochs for
/// deadlines.
///
/// With `pagemap` (Linux 6.7's `PAGEMAP_SCAN`; building fails where the
/// kernel lacks it) a slot's memory is reset by copying back only the pages
/// the last instance wrote, so the whole memory stays resident: an
/// interpreter with a big pre-initialized heap then takes no page faults on
/// the pages it wrote last time. Without it every kept byte is reset with a
/// memset, so only the first 512 KiB (a small plugin's stack and heap, see
/// .cargo/config.toml and the scaffold) are kept, the rest decommitted.
fn engine(config: &RuntimeConfig, pagemap: bool) -> wasmtime::Result<Engine> {
    let n = config.max_instances.max(1);
    let max_memory = config.maxima.memory_bytes.max(config.limits.memory_bytes);
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(n)
        .total_core_instances(n.saturating_mul(8))
        .total_memories(n.saturating_mul(2))
        .total_tables(n.saturating_mul(4))
        .total_stacks(n)
        // Each slot can hold the largest memory a plugin may ask for.
        .max_memory_size(max_memory)
        // Reset memory in batches: fewer TLB-flush IPIs per instance.
        .decommit_batch_size(64)
        .table_keep_resident(64 << 10);
    if pagemap {
        pool.pagemap_scan(wasmtime::Enabled::Yes)
            .linear_memory_keep_resident(max_memory);
    } else {
        pool.linear_memory_keep_resident(512 << 10);
    }
    let mut wasm = wasmtime::Config::new();
    wasm.epoch_interruption(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .wasm_component_model(true);
    Engine::new(&wasm)
}

pub(super) fn compile(engine: &Engine, bytes: &[u8]) -> Result<Component, LoadError> {
    Component::new(engine, bytes).map_err(|e| LoadError::Compile(format!("{e:#}")))
}

fn validate_name(name: &str) -> Result<(), LoadError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(LoadError::InvalidName(name.to_owned()))
    }
}

/// Tells a component from a core module or from no wasm at all, so the
/// error says what the file is.
fn check_component_header(bytes: &[u8]) -> Result<(), LoadError> {
    match bytes {
        [0, b'a', b's', b'm', _, _, 0x01, 0x00, ..] => Ok(()),
        [0, b'a', b's', b'm', 0x01, 0x00, 0x00, 0x00, ..] => Err(LoadError::NotAComponent(
            "this is a core WebAssembly module; build the plugin for wasm32-wasip2 to get a component".into(),
        )),
        _ => Err(LoadError::NotAComponent(
            "the file does not start with the WebAssembly magic bytes".into(),
        )),
    }
}

fn check_header_value(name: &str, value: &str) -> Result<(), PluginErrorKind> {
    let name_ok = is_header_name(name);
    let value_ok = value
        .bytes()
        .all(|b| b == b'\t' || (0x20..0x7f).contains(&b));
    if name_ok && value_ok && value.len() <= 8192 {
        Ok(())
    } else {
        Err(PluginErrorKind::InvalidHeader(
            truncate(name, 64).to_owned(),
        ))
    }
}
