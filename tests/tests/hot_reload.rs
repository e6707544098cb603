//! The registry: the plugin folder is loaded at start and watched; a changed
//! file is swapped in atomically, a broken one refused while the previous
//! version keeps serving, and a transform in flight finishes on its version.

use hookgate::plugin::{
    InstanceMode, Outcome, PluginEvent, PluginSettings, Registry, Runtime, RuntimeConfig,
};
use hookgate_tests::plugin_bytes;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

fn registry() -> Arc<Registry> {
    let runtime = Arc::new(Runtime::new(RuntimeConfig::default()).expect("runtime"));
    Arc::new(Registry::new(runtime, HashMap::new()))
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Writes a file the way operators should: aside, then renamed into place.
fn install_file(dir: &std::path::Path, name: &str, bytes: &[u8]) {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes).expect("write");
    std::fs::rename(&tmp, dir.join(name)).expect("rename");
}

fn output(registry: &Registry, plugin: &hookgate::plugin::Plugin) -> Vec<u8> {
    let event = PluginEvent {
        id: "evt_1".into(),
        hook_type: "order_created".into(),
        integration: "int_a".into(),
        occurred_at_ms: 0,
        content_type: "application/json".into(),
        body: br#"{"n":1}"#.to_vec(),
    };
    match registry
        .runtime()
        .transform(plugin, &event, &Arc::new(BTreeMap::new()))
        .expect("transform")
    {
        Outcome::Deliver(requests) => requests[0].body.clone(),
        Outcome::Drop(reason) => reason.into_bytes(),
    }
}

#[test]
fn the_plugin_folder_is_hot_loaded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let standard = plugin_bytes("standard");
    let fanout = plugin_bytes("fanout");
    install_file(dir.path(), "hook.wasm", &standard);
    std::fs::write(dir.path().join("notes.txt"), "ignored").expect("write");

    let registry = registry();
    assert_eq!(registry.load_dir(dir.path()).expect("scan"), 1);
    let v1 = registry.get("hook").expect("loaded at start");
    let cancel = CancellationToken::new();
    registry
        .watch(dir.path().to_path_buf(), cancel.clone())
        .expect("watch");

    // A new version is swapped in without a restart.
    install_file(dir.path(), "hook.wasm", &fanout);
    wait_for("the new version", || {
        registry
            .get("hook")
            .is_some_and(|p| p.version() != v1.version())
    });
    let v2 = registry.get("hook").expect("active");
    assert!(String::from_utf8_lossy(&output(&registry, &v2)).contains("\"target\""));
    // The version held by an in-flight transform still runs as it was.
    assert!(String::from_utf8_lossy(&output(&registry, &v1)).contains("\"timestamp\""));

    // A broken file is refused; v2 keeps serving.
    install_file(
        dir.path(),
        "hook.wasm",
        b"\0asm\x01\0\0\0 definitely broken",
    );
    install_file(dir.path(), "other.wasm", &standard);
    wait_for("the next file", || registry.get("other").is_some());
    assert_eq!(
        registry.get("hook").expect("still there").version(),
        v2.version()
    );

    // Both versions stay listed; rolling back is one call.
    let listed: Vec<_> = registry
        .list()
        .into_iter()
        .filter(|v| v.name == "hook")
        .collect();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed.iter().filter(|v| v.active).count(), 1);
    registry
        .activate("hook", &v1.version()[..12])
        .expect("roll back");
    assert_eq!(
        registry.get("hook").expect("active").version(),
        v1.version()
    );
    assert!(registry.activate("hook", "0123456789ab").is_err());
    cancel.cancel();
}

#[test]
fn reuse_mode_is_chosen_per_plugin() {
    let runtime = Arc::new(Runtime::new(RuntimeConfig::default()).expect("runtime"));
    let defaults = HashMap::from([("fast".to_string(), PluginSettings::reuse(10))]);
    let registry = Registry::new(runtime, defaults);
    let bytes = plugin_bytes("misbehave");
    let fast = registry
        .install("fast", &bytes, PluginSettings::default(), true)
        .expect("install");
    let safe = registry
        .install("safe", &bytes, PluginSettings::default(), true)
        .expect("install");
    assert_eq!(fast.mode(), InstanceMode::Reuse { max_events: 10 });
    assert_eq!(safe.mode(), InstanceMode::Fresh);
    // A version's own setting wins over the operator's default; giving the
    // same version other settings recompiles nothing and keeps it active.
    let own = registry
        .install("fast", &bytes, PluginSettings::reuse(3), false)
        .expect("reconfigure");
    assert_eq!(own.mode(), InstanceMode::Reuse { max_events: 3 });
    assert_eq!(own.version(), fast.version());
    assert!(Arc::ptr_eq(&registry.get("fast").expect("active"), &own));
}

/// `NAME.toml` beside `NAME.wasm` gives the plugin its settings; editing
/// it alone re-applies them; a broken one is refused and the version in
/// place keeps its settings.
#[test]
fn the_plugin_folder_gives_each_plugin_its_settings() {
    let dir = tempfile::tempdir().expect("tempdir");
    install_file(dir.path(), "hook.toml", b"deadlineMs = 250\nreuse = 20\n");
    install_file(dir.path(), "hook.wasm", &plugin_bytes("misbehave"));
    let registry = registry();
    assert_eq!(registry.load_dir(dir.path()).expect("scan"), 1);
    let loaded = registry.get("hook").expect("loaded");
    assert_eq!(loaded.limits().deadline, Duration::from_millis(250));
    assert_eq!(loaded.mode(), InstanceMode::Reuse { max_events: 20 });
    let listed = registry.list();
    assert_eq!(listed[0].limits.deadline_ms, Some(250));
    assert_eq!(
        listed[0].limits.memory_mib,
        Some(32),
        "the default fills in"
    );

    let cancel = CancellationToken::new();
    registry
        .watch(dir.path().to_path_buf(), cancel.clone())
        .expect("watch");
    install_file(dir.path(), "hook.toml", b"memoryMiB = 8\n");
    wait_for("the new settings", || {
        registry
            .get("hook")
            .is_some_and(|p| p.limits().memory_bytes == 8 << 20)
    });
    let now = registry.get("hook").expect("active");
    assert_eq!(now.version(), loaded.version(), "same component");
    assert_eq!(now.mode(), InstanceMode::Fresh, "reuse was taken out");

    install_file(dir.path(), "hook.toml", b"memoryMiB = 100000\n");
    install_file(dir.path(), "other.toml", b"memory = [\n");
    install_file(dir.path(), "other.wasm", &plugin_bytes("standard"));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        registry.get("hook").expect("active").limits().memory_bytes,
        8 << 20,
        "settings past the maximum are refused"
    );
    assert!(
        registry.get("other").is_none(),
        "a plugin whose settings file does not parse is not loaded"
    );
    cancel.cancel();
}
