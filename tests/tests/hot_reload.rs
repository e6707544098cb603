//! The registry: the plugin folder is loaded at start and watched; a changed
//! file is swapped in atomically, a broken one refused while the previous
//! version keeps serving, and a transform in flight finishes on its version.

use hookgate::plugin::{InstanceMode, Outcome, PluginEvent, Registry, Runtime, RuntimeConfig};
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
    let modes = HashMap::from([("fast".to_string(), InstanceMode::Reuse { max_events: 10 })]);
    let registry = Registry::new(runtime, modes);
    let fast = registry
        .install("fast", &plugin_bytes("misbehave"), true)
        .expect("install");
    let safe = registry
        .install("safe", &plugin_bytes("misbehave"), true)
        .expect("install");
    assert_eq!(fast.mode(), InstanceMode::Reuse { max_events: 10 });
    assert_eq!(safe.mode(), InstanceMode::Fresh);
}
