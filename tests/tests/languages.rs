//! One contract, several languages: `plugins/partner` (Rust) and
//! `plugins/partner-py` (Python, built by `hookgate plugin build` with
//! componentize-py) run through the real runtime on the same events and
//! must answer the same: the same bytes, headers, drops and errors. And a
//! new Python plugin scaffolded by `hookgate plugin new --lang python`
//! passes its own test, builds and runs as generated.

use hookgate::plugin::{InstanceMode, Outcome, PluginConfig, PluginEvent, Runtime, RuntimeConfig};
use hookgate_tests::{
    build_with_hookgate, componentize_py_ready, hookgate_bin, plugin_bytes, python_plugin,
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
                    "total_price": 129.5, "discount": -3, "tax": null, "big_number": 18_446_744_073_709_551_615u64,
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

#[test]
fn partner_in_rust_and_python_sends_the_same_bytes() {
    let Some(python) = python_plugin("partner-py") else {
        return;
    };
    let runtime = Runtime::new(RuntimeConfig::default()).expect("runtime");
    let rust = runtime
        .load("partner", &plugin_bytes("partner"), InstanceMode::Fresh)
        .expect("load rust");
    let python = runtime
        .load(
            "partner-py",
            &std::fs::read(&python).expect("read"),
            InstanceMode::Fresh,
        )
        .expect("load python");
    for config in [
        Arc::new(BTreeMap::from([(
            "companyId".to_owned(),
            "co_7".to_owned(),
        )])),
        PluginConfig::default(),
    ] {
        for e in events() {
            let want = runtime.transform(&rust, &e, &config);
            let got = runtime.transform(&python, &e, &config);
            match (&want, &got) {
                (Ok(want), Ok(got)) => assert_eq!(
                    got,
                    want,
                    "{}: python sent\n{}\nrust sent\n{}",
                    e.hook_type,
                    show(got),
                    show(want)
                ),
                (Err(want), Err(got)) => {
                    assert_eq!(
                        got.kind.to_string(),
                        want.kind.to_string(),
                        "{}",
                        e.hook_type
                    )
                }
                _ => panic!("{}: rust {want:?}, python {got:?}", e.hook_type),
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
    if !componentize_py_ready() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let plugin = dir.path().join("acme-crm");
    let made = Command::new(hookgate_bin())
        .args(["plugin", "new", "acme-crm", "--lang", "python", "--dir"])
        .arg(&plugin)
        .output()
        .expect("plugin new");
    assert!(made.status.success(), "{made:?}");
    let tested = Command::new("python3")
        .args(["-m", "unittest"])
        .current_dir(&plugin)
        .output()
        .expect("python3");
    assert!(
        tested.status.success(),
        "the generated test fails: {}",
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
    let ran = Command::new(hookgate_bin())
        .args(["plugin", "run"])
        .arg(&component)
        .arg("--event")
        .arg(&sample)
        .args(["--config", "source=shop"])
        .output()
        .expect("plugin run");
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
}
