//! The plugin runtime with the real example and misbehaving components:
//! outputs, sandbox limits, validation, instance modes and the compile cache.

use hookgate::plugin::{
    LoadError, Outcome, PluginConfig, PluginErrorKind, PluginEvent, PluginSettings, Runtime,
    RuntimeConfig,
};
use hookgate_tests::{plugin_bytes, sample_order};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig::default()).expect("runtime")
}

fn event(hook_type: &str, payload: &Value) -> PluginEvent {
    PluginEvent {
        id: "evt_1".into(),
        hook_type: hook_type.into(),
        integration: "int_a".into(),
        occurred_at_ms: 1_764_000_000_000,
        content_type: "application/json".into(),
        body: serde_json::to_vec(payload).expect("json"),
    }
}

fn config(pairs: &[(&str, &str)]) -> PluginConfig {
    Arc::new(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
    )
}

fn bodies(outcome: &Outcome) -> Vec<Value> {
    match outcome {
        Outcome::Deliver(requests) => requests
            .iter()
            .map(|r| serde_json::from_slice(&r.body).expect("json body"))
            .collect(),
        Outcome::Drop(reason) => panic!("dropped: {reason}"),
    }
}

#[test]
fn example_plugins_transform_a_real_event() {
    let rt = runtime();
    let order = sample_order();

    let standard = rt
        .load(
            "standard",
            &plugin_bytes("standard"),
            PluginSettings::default(),
        )
        .expect("load");
    let out = rt
        .transform(&standard, &event("order_created", &order), &config(&[]))
        .expect("standard");
    assert_eq!(
        bodies(&out),
        [
            json!({"id": "evt_1", "type": "order_created", "timestamp": "2025-11-24T16:00:00.000Z", "data": order})
        ]
    );

    let partner = rt
        .load(
            "partner",
            &plugin_bytes("partner"),
            PluginSettings::default(),
        )
        .expect("load");
    let out = rt
        .transform(
            &partner,
            &event("order_created", &order),
            &config(&[("companyId", "co_1")]),
        )
        .expect("partner");
    let body = &bodies(&out)[0];
    assert_eq!(body["webHookType"], "NEW_CONSUMER_ORDER");
    assert_eq!(body["companyId"], "co_1");
    assert_eq!(body["shopId"], "shop_42");
    assert_eq!(body["data"]["lineItems"][1]["unitPrice"], 30.0);
    let Outcome::Deliver(requests) = &out else {
        unreachable!()
    };
    assert_eq!(
        requests[0].headers,
        [(
            "x-partner-webhook-type".to_string(),
            "NEW_CONSUMER_ORDER".to_string()
        )]
    );
    let dropped = rt
        .transform(&partner, &event("order_removed", &order), &config(&[]))
        .expect("partner");
    assert!(
        matches!(dropped, Outcome::Drop(ref r) if r.contains("order_removed")),
        "{dropped:?}"
    );

    let slack = rt
        .load("slack", &plugin_bytes("slack"), PluginSettings::default())
        .expect("load");
    let out = rt
        .transform(
            &slack,
            &event("order_created", &order),
            &config(&[(
                "template.order",
                "{customer.first_name} paid {total_price} {currency}",
            )]),
        )
        .expect("slack");
    assert_eq!(bodies(&out)[0]["text"], "Ada paid 129.9 EUR");

    let fanout = rt
        .load("fanout", &plugin_bytes("fanout"), PluginSettings::default())
        .expect("load");
    let out = rt
        .transform(
            &fanout,
            &event("order_created", &order),
            &config(&[("targets", "a,b,c")]),
        )
        .expect("fanout");
    let Outcome::Deliver(requests) = &out else {
        panic!("{out:?}")
    };
    let targets: Vec<_> = requests.iter().map(|r| r.headers[0].1.as_str()).collect();
    assert_eq!(targets, ["a", "b", "c"]);

    // Each request is a delivery: 64 at most per transform (the default),
    // however small they are.
    let many = |n: usize| {
        (0..n)
            .map(|i| format!("t{i}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let at_cap = rt
        .transform(
            &fanout,
            &event("order_created", &order),
            &config(&[("targets", &many(64))]),
        )
        .expect("64 requests");
    assert!(matches!(&at_cap, Outcome::Deliver(r) if r.len() == 64));
    let over = rt
        .transform(
            &fanout,
            &event("order_created", &order),
            &config(&[("targets", &many(65))]),
        )
        .expect_err("65 requests");
    assert!(
        matches!(
            over.kind,
            hookgate::plugin::PluginErrorKind::TooManyRequests { count: 65, cap: 64 }
        ),
        "{over}"
    );
}

/// Each misbehaviour gets a typed error naming the plugin and its version,
/// and the very next event on the same runtime runs normally.
#[test]
fn misbehaving_plugins_fail_one_transform_and_nothing_else() {
    let rt = Runtime::new(RuntimeConfig {
        limits: hookgate::plugin::Limits {
            deadline: std::time::Duration::from_millis(50),
            memory_bytes: 16 << 20,
            output_bytes: 64 << 10,
            output_requests: 64,
        },
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    let plugin = rt
        .load(
            "misbehave",
            &plugin_bytes("misbehave"),
            PluginSettings::default(),
        )
        .expect("load");
    let version12 = &plugin.version()[..12];
    let ev = event("order_created", &json!({"n": 1}));

    let check = |cfg: &[(&str, &str)], expect: &dyn Fn(&PluginErrorKind) -> bool, words: &str| {
        let started = std::time::Instant::now();
        let error = rt
            .transform(&plugin, &ev, &config(cfg))
            .expect_err("must fail");
        assert!(expect(&error.kind), "{cfg:?}: unexpected {error}");
        let text = error.to_string();
        assert!(
            text.contains("misbehave") && text.contains(version12),
            "{text}"
        );
        assert!(text.contains(words), "{cfg:?}: `{text}` lacks `{words}`");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{cfg:?} took {:?}",
            started.elapsed()
        );
        // The next event is unharmed.
        let ok = rt
            .transform(&plugin, &ev, &config(&[]))
            .expect("next event runs");
        assert_eq!(bodies(&ok), [json!({"n": 1})]);
    };

    check(
        &[("mode", "panic")],
        &|k| matches!(k, PluginErrorKind::Trap(_)),
        "misbehave was told to panic",
    );
    check(
        &[("mode", "loop")],
        &|k| matches!(k, PluginErrorKind::Deadline(_)),
        "deadline of 50 ms",
    );
    check(
        &[("mode", "hog")],
        &|k| matches!(k, PluginErrorKind::MemoryCap(_)),
        "memory cap of 16777216 bytes",
    );
    check(
        &[("mode", "big-output"), ("size", "70000")],
        &|k| matches!(k, PluginErrorKind::OutputTooLarge { cap: 65536, .. }),
        "output cap",
    );
    for header in [
        "Authorization",
        "webhook-signature",
        "Content-Length",
        "host",
        "Transfer-Encoding",
    ] {
        check(
            &[("mode", "reserved-header"), ("header", header)],
            &|k| matches!(k, PluginErrorKind::ReservedHeader(h) if h == header),
            "reserved header",
        );
    }
    check(
        &[("mode", "reserved-header"), ("header", "bad header\n")],
        &|k| matches!(k, PluginErrorKind::InvalidHeader(_)),
        "invalid header",
    );
    check(
        &[("mode", "fail")],
        &|k| matches!(k, PluginErrorKind::Failed(_)),
        "told to fail",
    );
    // A plugin's message cannot forge log lines nor fill the attempt's
    // record: one line, bounded.
    let forged = format!(
        "first\n2026-11-30T00:00:00Z INFO forged{}",
        "x".repeat(5000)
    );
    let error = rt
        .transform(
            &plugin,
            &ev,
            &config(&[("mode", "fail"), ("message", &forged)]),
        )
        .expect_err("fails");
    let text = error.to_string();
    assert!(
        !text.contains('\n') && text.contains("first\\n2026"),
        "{text}"
    );
    assert!(text.len() < 1_200, "{} bytes", text.len());
    check(
        &[("mode", "invalid")],
        &|k| matches!(k, PluginErrorKind::InvalidEvent(_)),
        "invalid event",
    );
    // Output just under the cap passes.
    let out = rt
        .transform(
            &plugin,
            &ev,
            &config(&[("mode", "big-output"), ("size", "60000")]),
        )
        .expect("under the cap");
    assert!(matches!(out, Outcome::Deliver(ref r) if r[0].body.len() == 60000));
}

#[test]
fn files_that_are_not_integration_components_are_refused() {
    let rt = runtime();
    let check = |bytes: &[u8], expect: &dyn Fn(&LoadError) -> bool, words: &str| {
        let error = rt
            .load("bad", bytes, PluginSettings::default())
            .expect_err("refused");
        assert!(expect(&error), "unexpected {error}");
        assert!(
            error.to_string().contains(words),
            "`{error}` lacks `{words}`"
        );
    };
    check(
        b"hello, not wasm",
        &|e| matches!(e, LoadError::NotAComponent(_)),
        "magic bytes",
    );
    check(
        b"\0asm\x01\0\0\0",
        &|e| matches!(e, LoadError::NotAComponent(_)),
        "core WebAssembly module",
    );
    let mut truncated = plugin_bytes("standard");
    truncated.truncate(truncated.len() / 2);
    check(
        &truncated,
        &|e| matches!(e, LoadError::Compile(_)),
        "could not compile",
    );
    check(
        &plugin_bytes("other-world"),
        &|e| matches!(e, LoadError::WrongWorld(_)),
        "transform",
    );
    let error = rt
        .load(
            "Bad Name",
            &plugin_bytes("standard"),
            PluginSettings::default(),
        )
        .expect_err("name");
    assert!(matches!(error, LoadError::InvalidName(_)), "{error}");
}

fn counter(rt: &Runtime, plugin: &hookgate::plugin::Plugin, integration: &str) -> u64 {
    let mut ev = event("order_created", &json!({}));
    ev.integration = integration.into();
    let out = rt
        .transform(plugin, &ev, &config(&[("mode", "counter")]))
        .expect("counter");
    let Outcome::Deliver(requests) = out else {
        panic!("dropped")
    };
    String::from_utf8(requests[0].body.clone())
        .expect("utf8")
        .parse()
        .expect("number")
}

#[test]
fn fresh_instances_share_nothing_between_events() {
    let rt = runtime();
    let plugin = rt
        .load(
            "misbehave",
            &plugin_bytes("misbehave"),
            PluginSettings::default(),
        )
        .expect("load");
    let seen: Vec<u64> = (0..5).map(|_| counter(&rt, &plugin, "int_a")).collect();
    assert_eq!(seen, [1, 1, 1, 1, 1]);
}

#[test]
fn reused_instances_stay_within_one_integration_and_are_recycled() {
    let rt = runtime();
    let plugin = rt
        .load(
            "misbehave",
            &plugin_bytes("misbehave"),
            PluginSettings::reuse(3),
        )
        .expect("load");
    let a: Vec<u64> = (0..4).map(|_| counter(&rt, &plugin, "int_a")).collect();
    assert_eq!(
        a,
        [1, 2, 3, 1],
        "an instance serves 3 events, then a fresh one"
    );
    assert_eq!(
        counter(&rt, &plugin, "int_b"),
        1,
        "never shared across integrations"
    );
    assert_eq!(counter(&rt, &plugin, "int_a"), 2);
    // A trap discards the instance.
    let mut ev = event("order_created", &json!({}));
    ev.integration = "int_a".into();
    rt.transform(&plugin, &ev, &config(&[("mode", "panic")]))
        .expect_err("panics");
    assert_eq!(
        counter(&rt, &plugin, "int_a"),
        1,
        "after a trap the next event gets a new instance"
    );
}

#[test]
fn compiled_components_are_cached_on_disk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = plugin_bytes("standard");
    let make = || {
        Runtime::new(RuntimeConfig {
            cache_dir: Some(dir.path().to_path_buf()),
            ..RuntimeConfig::default()
        })
        .expect("runtime")
    };
    let first = make()
        .load("standard", &bytes, PluginSettings::default())
        .expect("compile");
    let cached: Vec<_> = walk(dir.path())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    assert!(
        cached[0]
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(first.version()))
    );

    // A second runtime loads from the cache and runs.
    let rt = make();
    let again = rt
        .load("standard", &bytes, PluginSettings::default())
        .expect("from cache");
    assert_eq!(again.version(), first.version());
    rt.transform(&again, &event("order_created", &json!({})), &config(&[]))
        .expect("runs");

    // A corrupt entry is recompiled, not trusted.
    std::fs::write(&cached[0], b"garbage").expect("corrupt");
    let rt = make();
    let recompiled = rt
        .load("standard", &bytes, PluginSettings::default())
        .expect("recompiles");
    rt.transform(
        &recompiled,
        &event("order_created", &json!({})),
        &config(&[]),
    )
    .expect("runs");
    assert!(std::fs::metadata(&cached[0]).expect("rewritten").len() > 1000);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Plugins are linked with a 128 KiB stack: serde_json's deepest accepted
/// nesting (127 levels) still fits, through the partner plugin's recursion.
#[test]
fn deeply_nested_payloads_fit_the_plugin_stack() {
    let rt = runtime();
    let partner = rt
        .load(
            "partner",
            &plugin_bytes("partner"),
            PluginSettings::default(),
        )
        .expect("load");
    let mut nested = json!({"leaf_value": 1});
    for _ in 0..120 {
        nested = json!({"inner_level": nested});
    }
    let out = rt
        .transform(
            &partner,
            &event("order_created", &json!({"deep_tree": nested})),
            &config(&[]),
        )
        .expect("deep payload transforms");
    let mut body = bodies(&out).remove(0)["data"]["deepTree"].clone();
    for _ in 0..120 {
        body = body["innerLevel"].clone();
    }
    assert_eq!(body, json!({"leafValue": 1}));
}

/// Idle reused instances hold at most a quarter of the pool: many
/// integrations with one event each cannot fill it and leave every other
/// plugin (of every tenant) without a slot.
#[test]
fn idle_reused_instances_never_fill_the_pool() {
    let rt = Runtime::new(RuntimeConfig {
        max_instances: 8,
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    let reused = rt
        .load(
            "misbehave",
            &plugin_bytes("misbehave"),
            PluginSettings::reuse(1_000),
        )
        .expect("load");
    for n in 0..32 {
        assert_eq!(counter(&rt, &reused, &format!("int_{n}")), 1, "int_{n}");
    }
    // The first integrations kept their instance (within the idle share)...
    assert_eq!(counter(&rt, &reused, "int_0"), 2);
    // ... and a fresh-instance plugin still finds slots.
    let fresh = rt
        .load(
            "partner",
            &plugin_bytes("partner"),
            PluginSettings::default(),
        )
        .expect("load");
    for _ in 0..8 {
        rt.transform(
            &fresh,
            &event("order_created", &sample_order()),
            &config(&[("companyId", "c")]),
        )
        .expect("a slot is free");
    }
}

/// A plugin's own settings replace the runtime's defaults for that plugin
/// only: a longer deadline lets a slow transform finish, a smaller memory
/// cap stops a hog sooner; settings past the operator's maxima are refused
/// with the setting named.
#[test]
fn each_plugin_runs_under_its_own_limits_within_the_maxima() {
    let rt = Runtime::new(RuntimeConfig {
        limits: hookgate::plugin::Limits {
            deadline: std::time::Duration::from_millis(50),
            memory_bytes: 16 << 20,
            ..hookgate::plugin::Limits::default()
        },
        maxima: hookgate::plugin::Maxima {
            memory_bytes: 64 << 20,
            deadline: std::time::Duration::from_millis(400),
            reuse: 10,
        },
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    let bytes = plugin_bytes("misbehave");
    let ev = event("order_created", &json!({"n": 1}));
    let default = rt
        .load("misbehave", &bytes, PluginSettings::default())
        .expect("load");
    let own = rt
        .load(
            "misbehave",
            &bytes,
            PluginSettings {
                memory_mib: Some(4),
                deadline_ms: Some(300),
                reuse: Some(5),
            },
        )
        .expect("load with settings");
    assert_eq!(
        own.mode(),
        hookgate::plugin::InstanceMode::Reuse { max_events: 5 }
    );

    // 120 ms of work: past the default deadline, within the plugin's own.
    let slow = config(&[("mode", "sleep"), ("ms", "120")]);
    let error = rt
        .transform(&default, &ev, &slow)
        .expect_err("default deadline");
    assert!(error.to_string().contains("deadline of 50 ms"), "{error}");
    rt.transform(&own, &ev, &slow)
        .expect("its own deadline is longer");
    let error = rt
        .transform(&own, &ev, &config(&[("mode", "loop")]))
        .expect_err("still cut");
    assert!(error.to_string().contains("deadline of 300 ms"), "{error}");

    let error = rt
        .transform(&own, &ev, &config(&[("mode", "hog")]))
        .expect_err("hog");
    assert!(
        error.to_string().contains("memory cap of 4194304 bytes"),
        "{error}"
    );
    let error = rt
        .transform(&default, &ev, &config(&[("mode", "hog")]))
        .expect_err("hog");
    assert!(
        error.to_string().contains("memory cap of 16777216 bytes"),
        "{error}"
    );

    for (settings, field) in [
        (
            PluginSettings {
                memory_mib: Some(65),
                ..PluginSettings::default()
            },
            "memoryMiB",
        ),
        (
            PluginSettings {
                deadline_ms: Some(401),
                ..PluginSettings::default()
            },
            "deadlineMs",
        ),
        (PluginSettings::reuse(11), "reuse"),
    ] {
        let error = rt
            .load("misbehave", &bytes, settings)
            .expect_err("past the maxima");
        assert!(
            matches!(&error, LoadError::Settings(s) if s.field() == Some(field)),
            "{error}"
        );
        assert!(error.to_string().contains(field), "{error}");
    }
}
