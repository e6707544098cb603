//! Plugin runtime throughput: the `partner` transform on a ~1 KiB event,
//! (a) native Rust, (b) a fresh instance per event (the default), (c) one
//! reused instance per integration, on one thread and on two; then the time
//! to load a plugin by compiling it vs from the compiled cache. Then the
//! same `partner` written in Python and JavaScript (`plugins/partner-py`,
//! `plugins/partner-js`, built by `hookgate plugin build` when
//! componentize-py / componentize-js are installed): fresh and reused, one
//! thread, and their loads.
//!
//! `cargo bench -p hookgate-tests --bench plugin_runtime` (optional
//! argument: seconds per measurement, default 3).

use hookgate::plugin::{Plugin, PluginConfig, PluginEvent, PluginSettings, Runtime, RuntimeConfig};
use hookgate_sdk::Plugin as _;
use hookgate_tests::{js_plugin, plugin_bytes, python_plugin, sample_order};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() {
    let seconds: f64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(3.0);
    let window = Duration::from_secs_f64(seconds);
    let bytes = plugin_bytes("partner");
    let payload = sample_order();
    let body = serde_json::to_vec(&payload).expect("json");
    println!(
        "event body: {} bytes; {seconds} s per measurement",
        body.len()
    );

    let runtime = Arc::new(Runtime::new(RuntimeConfig::default()).expect("runtime"));
    let fresh = Arc::new(
        runtime
            .load("partner", &bytes, PluginSettings::default())
            .expect("load"),
    );
    let reuse = Arc::new(
        runtime
            .load("partner", &bytes, PluginSettings::reuse(10_000))
            .expect("load"),
    );
    let config: PluginConfig = Arc::new(BTreeMap::from([(
        "companyId".to_string(),
        "co_1".to_string(),
    )]));
    let event = PluginEvent {
        id: "evt_bench".into(),
        hook_type: "order_created".into(),
        integration: "int_bench".into(),
        occurred_at_ms: 1_764_000_000_000,
        content_type: "application/json".into(),
        body,
    };

    for threads in [1, 2] {
        let native = measure(threads, window, {
            let event = event.clone();
            move || native_transform(&event)
        });
        report("native", threads, native, native);
        for (name, plugin) in [("fresh-instance", &fresh), ("reuse-instance", &reuse)] {
            let rate = measure(threads, window, {
                let (runtime, plugin, event, config) = (
                    runtime.clone(),
                    plugin.clone(),
                    event.clone(),
                    config.clone(),
                );
                move || wasm_transform(&runtime, &plugin, &event, &config)
            });
            report(name, threads, rate, native);
        }
    }

    // Load time: compile vs compiled cache.
    let cache = tempfile::tempdir().expect("tempdir");
    let cached_runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(cache.path().to_path_buf()),
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    cached_runtime
        .load("partner", &bytes, PluginSettings::default())
        .expect("warm the cache");
    report_loads("rust", &runtime, &cached_runtime, &bytes, 5);

    // The same plugin in other languages: big components with
    // pre-initialized interpreters.
    let native = measure(1, window, {
        let event = event.clone();
        move || native_transform(&event)
    });
    for (language, built) in [
        ("python", python_plugin("partner-py")),
        ("javascript", js_plugin("partner-js")),
    ] {
        let Some(path) = built else {
            println!("{language}: not built (its componentizer is not installed)");
            continue;
        };
        let component = std::fs::read(&path).expect("read");
        println!(
            "{language}: component {:.1} MB",
            component.len() as f64 / 1e6
        );
        for (mode, instances, floor) in [
            ("fresh-instance", PluginSettings::default(), 1_000.0),
            ("reuse-instance", PluginSettings::reuse(10_000), 5_000.0),
        ] {
            let plugin = Arc::new(runtime.load(language, &component, instances).expect("load"));
            let rate = measure(1, window, {
                let (runtime, event, config) = (runtime.clone(), event.clone(), config.clone());
                move || wasm_transform(&runtime, &plugin, &event, &config)
            });
            report(&format!("{language}-{mode}"), 1, rate, native);
            println!(
                "  floor {floor:.0}/s: {}",
                if rate >= floor { "met" } else { "NOT met" }
            );
        }
        cached_runtime
            .load(language, &component, PluginSettings::default())
            .expect("warm the cache");
        report_loads(language, &runtime, &cached_runtime, &component, 1);
    }
}

/// Load times of `bytes`: compiling (`compiles` times) and from the
/// compiled cache.
fn report_loads(what: &str, runtime: &Runtime, cached: &Runtime, bytes: &[u8], compiles: u32) {
    let compile = time_loads(runtime, bytes, compiles);
    let from_cache = time_loads(cached, bytes, 10);
    println!(
        "{what} load: compile {:.1} ms, from compiled cache {:.2} ms ({:.0}x faster)",
        compile.as_secs_f64() * 1e3,
        from_cache.as_secs_f64() * 1e3,
        compile.as_secs_f64() / from_cache.as_secs_f64()
    );
}

fn native_transform(event: &PluginEvent) -> usize {
    let sdk_event = hookgate_sdk::Event {
        id: event.id.clone(),
        hook_type: event.hook_type.clone(),
        integration: event.integration.clone(),
        occurred_at_ms: event.occurred_at_ms,
        content_type: event.content_type.clone(),
        body: event.body.clone(),
    };
    let config = hookgate_sdk::Config::from_pairs([("companyId", "co_1")]);
    let outcome = plugin_partner::Partner::transform(sdk_event, &config).expect("native transform");
    outcome.requests()[0].body.len()
}

fn wasm_transform(
    runtime: &Runtime,
    plugin: &Plugin,
    event: &PluginEvent,
    config: &PluginConfig,
) -> usize {
    match runtime.transform(plugin, event, config).expect("transform") {
        hookgate::plugin::Outcome::Deliver(requests) => requests[0].body.len(),
        hookgate::plugin::Outcome::Drop(_) => 0,
    }
}

/// Events per second over `window`, summed over `threads` threads.
fn measure(
    threads: usize,
    window: Duration,
    f: impl Fn() -> usize + Send + Clone + 'static,
) -> f64 {
    // Warm up.
    for _ in 0..200 {
        std::hint::black_box(f());
    }
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let f = f.clone();
            std::thread::spawn(move || {
                let mut n = 0u64;
                while started.elapsed() < window {
                    for _ in 0..50 {
                        std::hint::black_box(f());
                    }
                    n += 50;
                }
                n
            })
        })
        .collect();
    let total: u64 = handles.into_iter().map(|h| h.join().expect("thread")).sum();
    total as f64 / started.elapsed().as_secs_f64()
}

fn report(mode: &str, threads: usize, rate: f64, native: f64) {
    println!(
        "mode={mode:<26} threads={threads} events/s={rate:>9.0} us/event={:>7.1} ratio-to-native={:.2}x",
        threads as f64 * 1e6 / rate,
        native / rate,
    );
}

fn time_loads(runtime: &Runtime, bytes: &[u8], n: u32) -> Duration {
    let started = Instant::now();
    for _ in 0..n {
        std::hint::black_box(
            runtime
                .load("partner", bytes, PluginSettings::default())
                .expect("load"),
        );
    }
    started.elapsed() / n
}
