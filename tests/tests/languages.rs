//! One contract, three languages: `plugins/partner` (Rust),
//! `plugins/partner-py` (Python, componentize-py) and `plugins/partner-js`
//! (JavaScript, componentize-js), the last two built by `hookgate plugin
//! build`, run through the real runtime on the same events and must answer
//! the same: the same bytes, headers, drops and errors. And a new plugin
//! scaffolded by `hookgate plugin new --lang python|js` passes its own
//! native test, builds and runs as generated.

use hookgate::plugin::{
    Outcome, PluginConfig, PluginEvent, PluginSettings, Runtime, RuntimeConfig,
};
use hookgate_tests::{
    build_with_hookgate, hookgate_bin, js_plugin, plugin_bytes, python_plugin, tool_ready,
};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;

fn event(hook_type: &str, payload: &Value) -> PluginEvent {
    PluginEvent {
        id: "evt_lang_1".into(),
        hook_type: hook_type.into(),
        integration: "int_lang".into(),
        occurred_at_ms: 1_764_000_000_123,
        content_type: "application/json".into(),
        body: serde_json::to_vec(payload).expect("json"),
    }
}

/// Events that exercise the mapping: nested arrays and objects, unicode,
/// big and negative integers, fractions, nulls, keys with leading
/// underscores, a partner name passed through, a type the partner does not
/// take, and a payload that is not an object.
fn events() -> Vec<PluginEvent> {
    vec![
        event(
            "order_created",
            &json!({"order_id": "o1", "shop_id": "s1", "line_items": [{"unit_price": 5, "product_name": "Café ☕ \"dé\""}],
                    "total_price": 129.5, "discount": -3, "tax": null, "big_number": 9_007_199_254_740_991u64,
                    "_private_note": "x", "customer": {"first_name": "Ada", "tags": ["a_b", {"deep_key": true}]}}),
        ),
        event(
            "customer.updated",
            &json!({"customer_id": "c1", "email": "ada@example.com"}),
        ),
        event(
            "UPDATE_PRODUCT",
            &json!({"product_id": "p1", "shop_id": null}),
        ),
        event("transaction.cancelled", &json!({})),
        event("order_removed", &json!({"order_id": "o1"})),
        event("order_created", &json!([1, 2, 3])),
        event("order_created", &json!("just a string")),
    ]
}

/// Integers past 2^53 are left out: JavaScript numbers are doubles.
#[test]
fn partner_in_rust_python_and_javascript_sends_the_same_bytes() {
    let (Some(python), Some(js)) = (python_plugin("partner-py"), js_plugin("partner-js")) else {
        return;
    };
    let runtime = Runtime::new(RuntimeConfig::default()).expect("runtime");
    let load = |name: &str, bytes: &[u8]| {
        runtime
            .load(name, bytes, PluginSettings::default())
            .unwrap_or_else(|e| panic!("load {name}: {e}"))
    };
    let rust = load("partner", &plugin_bytes("partner"));
    let others = [
        (
            "python",
            load("partner-py", &std::fs::read(&python).expect("read")),
        ),
        (
            "javascript",
            load("partner-js", &std::fs::read(&js).expect("read")),
        ),
    ];
    for config in [
        Arc::new(BTreeMap::from([(
            "companyId".to_owned(),
            "co_7".to_owned(),
        )])),
        PluginConfig::default(),
    ] {
        for e in events() {
            let want = runtime.transform(&rust, &e, &config);
            for (language, plugin) in &others {
                let got = runtime.transform(plugin, &e, &config);
                match (&want, &got) {
                    (Ok(want), Ok(got)) => assert_eq!(
                        got,
                        want,
                        "{}: {language} sent\n{}\nrust sent\n{}",
                        e.hook_type,
                        show(got),
                        show(want)
                    ),
                    (Err(want), Err(got)) => assert_eq!(
                        got.kind.to_string(),
                        want.kind.to_string(),
                        "{language}: {}",
                        e.hook_type
                    ),
                    _ => panic!(
                        "{language}: {}: rust {want:?}, {language} {got:?}",
                        e.hook_type
                    ),
                }
            }
        }
    }
}

fn show(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Deliver(requests) => requests
            .iter()
            .map(|r| format!("{:?} {}", r.headers, String::from_utf8_lossy(&r.body)))
            .collect::<Vec<_>>()
            .join("\n"),
        Outcome::Drop(reason) => format!("drop: {reason}"),
    }
}

#[test]
fn a_scaffolded_python_plugin_tests_builds_and_runs() {
    if !tool_ready("componentize-py", hookgate::cli::COMPONENTIZE_PY) {
        return;
    }
    scaffold_test_build_run(
        "python",
        &["python3", "-m", "unittest"],
        Raising {
            file: "app.py",
            source: "def transform(event, config):\n    return {\"n\": 1}[\"missing\"]\n",
            reported: "failed: KeyError: 'missing'",
        },
    );
}

#[test]
fn a_scaffolded_javascript_plugin_tests_builds_and_runs() {
    if !tool_ready("componentize-js", hookgate::cli::COMPONENTIZE_JS) {
        return;
    }
    scaffold_test_build_run(
        "js",
        &["node", "--test"],
        Raising {
            file: "app.js",
            source: "export function transform(event, config) {\n  return null.missing;\n}\n",
            reported: "failed: TypeError: ",
        },
    );
}

/// A plugin whose code throws, and what the delivery reports of it.
struct Raising {
    file: &'static str,
    source: &'static str,
    reported: &'static str,
}

/// What a new author does: scaffold, run the native test, build, run the
/// component on a sample event; then the plugin's own errors: an event it
/// refuses, and code that throws.
fn scaffold_test_build_run(lang: &str, native_test: &[&str], raising: Raising) {
    let dir = tempfile::tempdir().expect("tmp");
    let plugin = dir.path().join("acme-crm");
    let made = Command::new(hookgate_bin())
        .args(["plugin", "new", "acme-crm", "--lang", lang, "--dir"])
        .arg(&plugin)
        .output()
        .expect("plugin new");
    assert!(made.status.success(), "{made:?}");
    let tested = Command::new(native_test[0])
        .args(&native_test[1..])
        .current_dir(&plugin)
        .output()
        .expect("native test");
    assert!(
        tested.status.success(),
        "the generated test fails: {}{}",
        String::from_utf8_lossy(&tested.stdout),
        String::from_utf8_lossy(&tested.stderr)
    );
    let component = build_with_hookgate(&plugin);
    assert!(component.starts_with(&plugin), "{}", component.display());
    let sample = dir.path().join("event.json");
    std::fs::write(
        &sample,
        r#"{"id": "evt_9", "type": "order_created", "payload": {"order_id": "o9"}}"#,
    )
    .expect("event");
    let ran = plugin_run(&component, &sample, &["--config", "source=shop"]);
    assert!(ran.status.success(), "{ran:?}");
    let out: Value = serde_json::from_slice(&ran.stdout).expect("json");
    let request = &out["outcome"]["requests"][0];
    assert_eq!(
        request["body"]["json"],
        json!({"event": "order_created", "source": "shop", "data": {"order_id": "o9"}})
    );
    assert_eq!(
        request["headers"][0],
        json!({"name": "x-acme-crm-event", "value": "order_created"})
    );

    // The plugin's own error, named with the plugin and its version.
    std::fs::write(&sample, r#"{"type": "order_created", "payload": [1, 2]}"#).expect("event");
    let refused = plugin_run(&component, &sample, &[]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("plugin `acme-crm` version ")
            && stderr.contains("invalid event: the payload must be a JSON object"),
        "{stderr}"
    );

    // Code that throws fails the delivery with the exception's type and
    // message.
    std::fs::write(plugin.join(raising.file), raising.source).expect("app");
    let component = build_with_hookgate(&plugin);
    let thrown = plugin_run(&component, &sample, &[]);
    assert!(!thrown.status.success());
    let stderr = String::from_utf8_lossy(&thrown.stderr);
    assert!(
        stderr.contains("plugin `acme-crm` version ") && stderr.contains(raising.reported),
        "{stderr}"
    );
}

/// `hookgate plugin run COMPONENT --event SAMPLE EXTRA…`.
fn plugin_run(
    component: &std::path::Path,
    sample: &std::path::Path,
    extra: &[&str],
) -> std::process::Output {
    Command::new(hookgate_bin())
        .args(["plugin", "run"])
        .arg(component)
        .arg("--event")
        .arg(sample)
        .args(extra)
        .output()
        .expect("plugin run")
}
