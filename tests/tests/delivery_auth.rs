//! Authentication on delivery beyond a client secret in HTTP Basic: the
//! token request's options (`client_auth`, `scope`, `audience`,
//! `extra_params`, `token_field`), and token endpoints that answer badly.
//! Real gateway, real token endpoints and receivers on 127.0.0.1.

use hookgate_tests::peers::{Receiver, TokenAnswer, TokenServer};
use hookgate_tests::{GatewayOptions, TestGateway};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

async fn gateway() -> TestGateway {
    TestGateway::start_with(GatewayOptions {
        // Past the token cache's first backoff (1 s), so a retry fetches again.
        args: vec![
            "--retry-schedule".into(),
            "0s,1500ms,1500ms,1500ms".into(),
            "--delivery-timeout".into(),
            "2s".into(),
        ],
        ..Default::default()
    })
    .await
}

async fn post_event(gw: &TestGateway, key: &str, event_type: &str) -> String {
    let (status, answer) = gw
        .call(
            Method::POST,
            "/v1/events",
            key,
            Some(json!({"type": event_type, "payload": {"n": 1}})),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    answer["data"]["deliveries"][0]
        .as_str()
        .expect("one delivery")
        .to_owned()
}

/// Polls a delivery until `done` holds for it.
async fn wait_for(gw: &TestGateway, key: &str, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (_, d) = gw
            .call(Method::GET, &format!("/v1/deliveries/{id}"), key, None)
            .await;
        if done(&d["data"]) {
            return d["data"].clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "delivery {id} never got there: {d}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn integration(hook: &str, receiver: &str, authentication: Value) -> Value {
    json!({
        "name": hook,
        "hooks": [{"type": hook, "endpoint": receiver}],
        "authentication": authentication,
    })
}

#[tokio::test]
async fn token_request_options_are_sent_and_key_the_cache() {
    let gw = gateway().await;
    let (_, key) = gw.organization("opts").await;
    let tokens = TokenServer::start("opts-client", "opts-secret", 3600).await;
    tokens.set_answer(TokenAnswer::Field("id_token".into()));
    let receiver = Receiver::ok().await;
    let auth = json!({
        "grant_type": "client_credentials",
        "endpoint": tokens.url,
        "credentials": {"client_id": "opts-client", "client_secret": "opts-secret"},
        "client_auth": "client_secret_post",
        "scope": "orders:write customers:read",
        "audience": "https://api.partner.example",
        "extra_params": {"resource": "orders", "tenant": "t-9"},
        "token_field": "id_token",
    });
    let (status, created) = gw
        .call(
            Method::POST,
            "/v1/integrations",
            &key,
            Some(integration("order_created", &receiver.url, auth)),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let out = &created["data"]["authentication"];
    assert_eq!(out["client_auth"], "client_secret_post");
    assert_eq!(out["audience"], "https://api.partner.example");
    assert_eq!(
        out["extra_params"],
        json!({"resource": "orders", "tenant": "t-9"})
    );
    assert_eq!(out["token_field"], "id_token");
    assert_eq!(out["credentials"]["client_secret"], "[redacted]");

    let id = post_event(&gw, &key, "order_created").await;
    wait_for(&gw, &key, &id, |d| d["status"] == "delivered").await;
    assert_eq!(
        receiver.received()[0].header("authorization"),
        Some("Bearer tok-1"),
        "the token came from the named field"
    );
    let requests = tokens.requests();
    assert_eq!(requests.len(), 1, "one fetch, not a Basic try first");
    let sent = &requests[0];
    assert_eq!(sent.basic, None, "client_secret_post sends no Basic header");
    for (name, value) in [
        ("grant_type", "client_credentials"),
        ("client_id", "opts-client"),
        ("client_secret", "opts-secret"),
        ("scope", "orders:write customers:read"),
        ("audience", "https://api.partner.example"),
        ("resource", "orders"),
        ("tenant", "t-9"),
    ] {
        assert_eq!(
            sent.form.get(name).map(String::as_str),
            Some(value),
            "{name}: {sent:?}"
        );
    }

    // The cached token serves the next event; a changed option fetches anew.
    let id = post_event(&gw, &key, "order_created").await;
    wait_for(&gw, &key, &id, |d| d["status"] == "delivered").await;
    assert_eq!(tokens.fetches(), 1);
    let integration_id = created["data"]["id"].as_str().expect("id");
    let mut changed = created["data"].clone();
    changed["authentication"]["audience"] = json!("https://other.partner.example");
    changed["authentication"]["client_auth"] = json!("client_secret_basic");
    let (status, _) = gw
        .call(
            Method::PUT,
            &format!("/v1/integrations/{integration_id}"),
            &key,
            Some(changed),
        )
        .await;
    assert_eq!(status, 200);
    let id = post_event(&gw, &key, "order_created").await;
    wait_for(&gw, &key, &id, |d| d["status"] == "delivered").await;
    assert_eq!(tokens.fetches(), 2, "a new audience is a new token");
    let sent = tokens.requests().pop().expect("request");
    assert_eq!(
        sent.basic,
        Some(("opts-client".into(), "opts-secret".into()))
    );
    assert_eq!(sent.form.get("client_secret"), None);
    assert_eq!(
        sent.form.get("audience").map(String::as_str),
        Some("https://other.partner.example")
    );
}

/// A token endpoint that answers without the field, with an OAuth2 error
/// or with HTML fails the attempt with that reason recorded; the delivery
/// is retried on the schedule and goes through once the endpoint is fixed.
#[tokio::test]
async fn bad_token_answers_fail_the_attempt_with_the_reason_and_are_retried() {
    let gw = gateway().await;
    let (_, key) = gw.organization("bad").await;
    let receiver = Receiver::ok().await;
    let cases = [
        (
            "no.field",
            TokenAnswer::Field("jwt".into()),
            "no string `access_token` field",
        ),
        (
            "oauth.error",
            TokenAnswer::Error("invalid_scope".into()),
            "refused: invalid_scope",
        ),
        ("html", TokenAnswer::Html, "unreadable response"),
    ];
    let mut pending = Vec::new();
    for (hook, answer, reason) in cases {
        let tokens = TokenServer::start("c", "s", 3600).await;
        tokens.set_answer(answer);
        let auth = json!({"grant_type": "client_credentials", "endpoint": tokens.url, "credentials": {"client_id": "c", "client_secret": "s"}});
        let (status, body) = gw
            .call(
                Method::POST,
                "/v1/integrations",
                &key,
                Some(integration(hook, &receiver.url, auth)),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let id = post_event(&gw, &key, hook).await;
        let d = wait_for(&gw, &key, &id, |d| d["lastError"].is_string()).await;
        let error = d["lastError"].as_str().expect("error");
        assert!(error.contains(reason), "{hook}: `{error}` lacks `{reason}`");
        assert!(!error.contains("\"s\""), "no secret in the error: {error}");
        assert_eq!(d["status"], "pending", "{hook}: retried, {d}");
        pending.push((id, tokens));
    }
    for (_, tokens) in &pending {
        tokens.set_answer(TokenAnswer::Standard);
    }
    for (id, _) in &pending {
        wait_for(&gw, &key, id, |d| d["status"] == "delivered").await;
    }
    assert_eq!(receiver.received().len(), 3);
}

#[tokio::test]
async fn token_options_are_validated() {
    let gw = gateway().await;
    let (_, key) = gw.organization("v").await;
    for (bad, field) in [
        (
            json!({"client_auth": "client_secret_jwt"}),
            "authentication.client_auth",
        ),
        (
            json!({"extra_params": {"client_secret": "x"}}),
            "authentication.extra_params.client_secret",
        ),
        (json!({"token_field": ""}), "authentication.token_field"),
        (
            json!({"audience": "a".repeat(2000)}),
            "authentication.audience",
        ),
    ] {
        let mut auth = json!({"grant_type": "client_credentials", "endpoint": "http://127.0.0.1:9/token", "credentials": {"client_id": "c", "client_secret": "s"}});
        for (k, v) in bad.as_object().expect("object") {
            auth[k] = v.clone();
        }
        let (status, body) = gw
            .call(
                Method::POST,
                "/v1/integrations",
                &key,
                Some(integration("t", "http://127.0.0.1:9/hook", auth)),
            )
            .await;
        assert_eq!(status, 400, "{bad}: {body}");
        let fields: Vec<&str> = body["data"]["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .filter_map(|e| e["field"].as_str())
            .collect();
        assert!(fields.contains(&field), "{bad}: {body}");
    }
    let (_, list) = gw.call(Method::GET, "/v1/integrations", &key, None).await;
    assert_eq!(list["data"]["total"], 0, "nothing stored: {list}");
}
