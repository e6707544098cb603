//! Dry runs: a candidate plugin version stored beside the active one
//! (`PUT …?activate=false`) runs on the events the active version recently
//! transformed, and the answer says per event what each version does and
//! whether they agree; nothing is sent, and the active version keeps
//! serving.

use hookgate_tests::peers::Receiver;
use hookgate_tests::{ADMIN_KEY, TestGateway, build_with_hookgate, plugin_bytes, tool_ready};
use reqwest::Method;
use serde_json::{Value, json};

async fn upload(gw: &TestGateway, bytes: Vec<u8>, activate: bool) -> Value {
    let response = gw
        .request(
            Method::PUT,
            &format!("/v1/plugins/partner?activate={activate}"),
            ADMIN_KEY,
        )
        .header("content-type", "application/wasm")
        .body(bytes)
        .send()
        .await
        .expect("upload");
    assert_eq!(response.status(), 201);
    response.json::<Value>().await.expect("json")["data"].clone()
}

async fn dry_run(gw: &TestGateway, body: Value) -> (u16, Value) {
    gw.call(
        Method::POST,
        "/v1/plugins/partner/dry-run",
        ADMIN_KEY,
        Some(body),
    )
    .await
}

async fn post(gw: &TestGateway, key: &str, event_type: &str) {
    let (status, body) = gw
        .call(
            Method::POST,
            "/v1/events",
            key,
            Some(json!({"type": event_type, "payload": {"order_id": "o1", "shop_id": "s1"}})),
        )
        .await;
    assert_eq!(status, 202, "{body}");
}

#[tokio::test]
async fn a_candidate_is_compared_on_recent_events_and_sends_nothing() {
    let gw = TestGateway::start().await;
    let receiver = Receiver::ok().await;
    let active = upload(&gw, plugin_bytes("partner"), true).await;
    let (_, key) = gw.organization("dry").await;
    let hooks: Vec<Value> = ["order_created", "customer.updated", "member.created"]
        .iter()
        .map(|t| json!({"type": t, "method": "POST", "endpoint": format!("{}/hook", receiver.url)}))
        .collect();
    // `mode` means nothing to `partner`; the `misbehave` candidate panics on it.
    let (status, created) = gw
        .call(
            Method::POST,
            "/v1/integrations",
            &key,
            Some(
                json!({"name": "Partner", "hooks": hooks, "plugin": {"name": "partner"},
                        "config": {"companyId": "co_7", "mode": "panic"}}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    for t in ["order_created", "customer.updated", "member.created"] {
        post(&gw, &key, t).await;
    }
    receiver.wait_for(3).await;

    // A candidate that panics: reported per event; the active version serves on.
    let panicking = upload(&gw, plugin_bytes("misbehave"), false).await;
    assert_eq!(panicking["active"], false);
    let (status, run) = dry_run(&gw, json!({"version": panicking["version"]})).await;
    assert_eq!(status, 200, "{run}");
    let run = &run["data"];
    assert_eq!(run["active"], active["version"]);
    assert_eq!(
        (
            run["same"].clone(),
            run["changed"].clone(),
            run["candidateFailed"].clone()
        ),
        (json!(0), json!(0), json!(3)),
        "{run}"
    );
    for e in run["events"].as_array().expect("events") {
        assert!(
            e["active"]["outcome"]["requests"][0]["body"]["json"]["webHookType"].is_string(),
            "{e}"
        );
        assert!(
            e["candidate"]["error"]
                .as_str()
                .is_some_and(|m| m.contains("misbehave") || m.contains("partner")),
            "{e}"
        );
    }
    assert_eq!(receiver.received().len(), 3, "a dry run sends nothing");
    post(&gw, &key, "order_created").await;
    let got = receiver.wait_for(4).await;
    assert_eq!(got[3].json()["webHookType"], "NEW_CONSUMER_ORDER");

    // The same bytes again: every event the same.
    let (_, again) = dry_run(&gw, json!({"version": active["version"], "limit": 2})).await;
    assert_eq!(again["data"]["same"], 2, "{again}");
    assert_eq!(again["data"]["events"].as_array().map(Vec::len), Some(2));

    // Another organization's events only: none here.
    let (_, none) = dry_run(
        &gw,
        json!({"version": active["version"], "organizationId": "org_elsewhere"}),
    )
    .await;
    assert_eq!(none["data"]["events"], json!([]), "{none}");

    // Bad input changes nothing.
    for (body, want) in [
        (json!({"version": active["version"], "limit": 0}), 400),
        (json!({"version": active["version"], "limit": 1001}), 400),
        (json!({"version": "ffffffffffff"}), 404),
        (json!({"version": active["version"], "surprise": 1}), 400),
    ] {
        let (status, answer) = dry_run(&gw, body.clone()).await;
        assert_eq!(status, want, "{body}: {answer}");
    }
}

/// A changed mapping shows exactly the events it changes: `partner-js`
/// with one hook type renamed, against the Rust `partner`.
#[tokio::test]
async fn a_changed_mapping_shows_exactly_the_changed_events() {
    if !tool_ready("componentize-js", hookgate::cli::COMPONENTIZE_JS) {
        return;
    }
    let source = hookgate_tests::workspace_root().join("plugins/partner-js");
    let dir = tempfile::tempdir().expect("tmp");
    let copy = dir.path().join("partner-v2");
    std::fs::create_dir_all(&copy).expect("dir");
    for file in ["app.js", "package.json"] {
        std::fs::copy(source.join(file), copy.join(file)).expect("copy");
    }
    let app = std::fs::read_to_string(copy.join("app.js")).expect("app");
    let renamed = app.replace(
        "'member.created': 'NEW_MEMBER'",
        "'member.created': 'MEMBER_ADDED'",
    );
    assert_ne!(app, renamed);
    std::fs::write(copy.join("app.js"), renamed).expect("app");
    let component = build_with_hookgate(&copy);

    let gw = TestGateway::start().await;
    let receiver = Receiver::ok().await;
    upload(&gw, plugin_bytes("partner"), true).await;
    let (_, key) = gw.organization("changes").await;
    let hooks: Vec<Value> = ["order_created", "member.created"]
        .iter()
        .map(|t| json!({"type": t, "method": "POST", "endpoint": format!("{}/hook", receiver.url)}))
        .collect();
    let (status, _) = gw
        .call(
            Method::POST,
            "/v1/integrations",
            &key,
            Some(json!({"name": "Partner", "hooks": hooks, "plugin": {"name": "partner"}})),
        )
        .await;
    assert_eq!(status, 201);
    for t in ["order_created", "member.created", "order_created"] {
        post(&gw, &key, t).await;
    }
    receiver.wait_for(3).await;
    let candidate = upload(&gw, std::fs::read(component).expect("read"), false).await;
    let (status, run) = dry_run(&gw, json!({"version": candidate["version"]})).await;
    assert_eq!(status, 200, "{run}");
    let run = &run["data"];
    assert_eq!(
        (run["same"].clone(), run["changed"].clone()),
        (json!(2), json!(1)),
        "{run}"
    );
    let changed: Vec<&Value> = run["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["same"] == false)
        .collect();
    let body = |side: &str| {
        changed[0][side]["outcome"]["requests"][0]["body"]["json"]["webHookType"].clone()
    };
    assert_eq!(
        (body("active"), body("candidate")),
        (json!("NEW_MEMBER"), json!("MEMBER_ADDED"))
    );
}

/// A dry run brings back the lines each version logged for each event,
/// beside its outcome: what a plugin author needs to see why it changed.
#[tokio::test]
async fn a_dry_run_shows_what_each_version_logged() {
    let gw = TestGateway::start().await;
    let receiver = Receiver::ok().await;
    upload(&gw, plugin_bytes("partner"), true).await;
    let (_, key) = gw.organization("logs").await;
    let (status, created) = gw
        .call(
            Method::POST,
            "/v1/integrations",
            &key,
            Some(json!({"name": "Partner", "plugin": {"name": "partner"},
                        "hooks": [{"type": "order_created", "endpoint": format!("{}/hook", receiver.url)}],
                        "config": {"companyId": "co_7", "mode": "log"}})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    post(&gw, &key, "order_created").await;
    receiver.wait_for(1).await;
    let candidate = upload(&gw, plugin_bytes("misbehave"), false).await;
    let (status, run) = dry_run(&gw, json!({"version": candidate["version"]})).await;
    assert_eq!(status, 200, "{run}");
    let event = &run["data"]["events"][0];
    let logs = event["candidate"]["logs"]
        .as_array()
        .expect("candidate logs");
    assert_eq!(logs.len(), 2, "{event}");
    assert_eq!(logs[0]["level"], "warn");
    let body: Value =
        serde_json::from_str(logs[0]["message"].as_str().expect("line")).expect("the logged body");
    assert_eq!(body["order_id"], "o1", "{body}");
    assert_eq!(
        logs[1],
        json!({"level": "info", "message": "logged the body"})
    );
    assert!(event["active"]["logs"].is_array(), "{event}");
}
