//! Tenants cannot hurt each other or the gateway: fair scheduling under a
//! hanging receiver, hostile token endpoints, secrets bound to their token
//! endpoint's origin, one send per claim. A real gateway on SQLite, real
//! receivers and token endpoints on loopback.

use axum::body::Body;
use axum::response::IntoResponse;
use hookgate_tests::peers::{Receiver, Reply, TokenServer};
use hookgate_tests::{GatewayOptions, TestGateway};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn gateway(extra: &[&str]) -> TestGateway {
    let mut args: Vec<String> = vec!["--retry-schedule".into(), "0s,200ms,200ms".into()];
    args.extend(extra.iter().map(|s| s.to_string()));
    TestGateway::start_with(GatewayOptions {
        args,
        ..Default::default()
    })
    .await
}

async fn post_event(gw: &TestGateway, key: &str, body: Value) -> String {
    let (status, answer) = gw.call(Method::POST, "/v1/events", key, Some(body)).await;
    assert_eq!(status, 202, "{answer}");
    answer["data"]["deliveries"][0]
        .as_str()
        .expect("a delivery")
        .to_owned()
}

async fn subscribe(gw: &TestGateway, key: &str, topic: &str, url: &str) {
    let (status, answer) = gw
        .call(
            Method::POST,
            "/v1/webhooks",
            key,
            Some(json!({"topic": topic, "url": url})),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
}

async fn delivery(gw: &TestGateway, key: &str, id: &str) -> Value {
    let (_, d) = gw
        .call(Method::GET, &format!("/v1/deliveries/{id}"), key, None)
        .await;
    d["data"].clone()
}

/// Waits until the delivery leaves `pending`, and returns it.
async fn settled(gw: &TestGateway, key: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let d = delivery(gw, key, id).await;
        if d["status"] != "pending" {
            return d;
        }
        assert!(Instant::now() < deadline, "still pending: {d}");
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

/// Tenant A's receiver hangs and A has a backlog; tenant B's deliveries to
/// a fast receiver go out while A's are still hanging. Before the fair
/// claim, A's backlog took every worker and B waited for A's timeouts.
#[tokio::test]
async fn a_tenant_with_a_hanging_receiver_does_not_hold_up_another() {
    let gw = gateway(&[
        "--workers",
        "8",
        "--organization-concurrency",
        "4",
        "--delivery-timeout",
        "10s",
    ])
    .await;
    let (_, a) = gw.organization("a").await;
    let (_, b) = gw.organization("b").await;
    let hanging = Receiver::scripted(|_, _| Reply {
        delay: Duration::from_secs(4),
        ..Reply::status(200)
    })
    .await;
    let fast = Receiver::ok().await;
    subscribe(&gw, &a, "backlog", &hanging.url).await;
    subscribe(&gw, &b, "urgent", &fast.url).await;

    for n in 0..40 {
        post_event(&gw, &a, json!({"type": "backlog", "payload": {"n": n}})).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    for n in 0..10 {
        post_event(&gw, &b, json!({"type": "urgent", "payload": {"n": n}})).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    fast.wait_for_within(10, Duration::from_secs(10)).await;
    let took = started.elapsed();
    assert!(
        hanging.received().is_empty(),
        "B's deliveries all arrived while A's receiver still hung (took {took:?})"
    );
    assert!(took < Duration::from_secs(3), "{took:?}");
}

/// A token endpoint under a tenant's control: `/forever` hands out a token
/// with an `expires_in` of 2^64−1, `/flood` streams megabytes, `/control`
/// a token with a line break in it.
async fn hostile_token_endpoint() -> String {
    async fn forever() -> axum::response::Response {
        (
            [("content-type", "application/json")],
            r#"{"access_token":"tok-forever","token_type":"bearer","expires_in":18446744073709551615}"#,
        )
            .into_response()
    }
    async fn flood() -> axum::response::Response {
        let chunk = axum::body::Bytes::from(vec![b' '; 64 << 10]);
        let chunks = (0..256).map(move |_| Ok::<_, std::io::Error>(chunk.clone()));
        (
            [("content-type", "application/json")],
            Body::from_stream(futures_util::stream::iter(chunks)),
        )
            .into_response()
    }
    async fn control() -> axum::response::Response {
        (
            [("content-type", "application/json")],
            r#"{"access_token":"tok\r\nX-Injected: 1","token_type":"bearer","expires_in":3600}"#,
        )
            .into_response()
    }
    let app = axum::Router::new()
        .route("/forever", axum::routing::post(forever))
        .route("/flood", axum::routing::post(flood))
        .route("/control", axum::routing::post(control));
    let (url, _) = hookgate_tests::peers::serve(app).await;
    url
}

async fn integration(
    gw: &TestGateway,
    key: &str,
    hook: &str,
    receiver: &str,
    token: &str,
) -> Value {
    let doc = json!({
        "name": hook,
        "hooks": [{"type": hook, "endpoint": receiver}],
        "authentication": {"grant_type": "client_credentials", "endpoint": token,
            "credentials": {"client_id": "id", "client_secret": "secret"},
            "header_format": "Authorization", "header_value_format": "Bearer %ACCESS_TOKEN%"},
    });
    let (status, created) = gw
        .call(Method::POST, "/v1/integrations", key, Some(doc))
        .await;
    assert_eq!(status, 201, "{created}");
    created["data"].clone()
}

#[tokio::test]
async fn hostile_token_endpoints_cannot_wedge_flood_or_inject() {
    let gw = gateway(&[]).await;
    let (_, key) = gw.organization("t").await;
    let tokens = hostile_token_endpoint().await;
    let receiver = Receiver::ok().await;
    for hook in ["forever", "flood", "control"] {
        integration(&gw, &key, hook, &receiver.url, &format!("{tokens}/{hook}")).await;
    }

    // A lifetime of 2^64−1 seconds is clamped (it panicked before); the
    // token is used, and cached: the second event fetches nothing new.
    for n in 0..2 {
        let id = post_event(&gw, &key, json!({"type": "forever", "payload": {"n": n}})).await;
        let d = settled(&gw, &key, &id).await;
        assert_eq!(d["status"], "delivered", "{d}");
    }
    let got = receiver.received();
    assert_eq!(got.len(), 2);
    assert!(
        got.iter()
            .all(|r| r.header("authorization") == Some("Bearer tok-forever"))
    );

    // 16 MiB of answer: the read stops at 64 KiB and the attempt says why.
    let id = post_event(&gw, &key, json!({"type": "flood", "payload": {}})).await;
    let d = settled(&gw, &key, &id).await;
    assert_eq!(d["status"], "dead", "{d}");
    assert!(
        d["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("larger than 65536 bytes")),
        "{d}"
    );

    // A token that cannot be a header value is a permanent failure, after
    // one attempt, and nothing reaches the receiver.
    let id = post_event(&gw, &key, json!({"type": "control", "payload": {}})).await;
    let d = settled(&gw, &key, &id).await;
    assert_eq!(
        (d["status"].as_str(), d["attemptCount"].as_i64()),
        (Some("failed"), Some(1)),
        "{d}"
    );
    assert_eq!(receiver.received().len(), 2);
}

/// Moving the token endpoint to another origin needs the secret again:
/// otherwise anyone with an API key could have the stored secret sent to
/// a server of theirs.
#[tokio::test]
async fn a_stored_client_secret_does_not_follow_a_moved_token_endpoint() {
    let gw = gateway(&[]).await;
    let (_, key) = gw.organization("s").await;
    let receiver = Receiver::ok().await;
    let home = TokenServer::start("id", "secret", 3600).await;
    let thief = TokenServer::start("id", "secret", 3600).await;
    let created = integration(&gw, &key, "order_created", &receiver.url, &home.url).await;
    let id = created["id"].as_str().expect("id").to_owned();
    let path = format!("/v1/integrations/{id}");

    // The document as shown (secret redacted), pointed elsewhere: refused.
    let mut moved = created.clone();
    moved["authentication"]["endpoint"] = json!(thief.url);
    let (status, answer) = gw.call(Method::PUT, &path, &key, Some(moved.clone())).await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer.to_string().contains("client_secret"), "{answer}");
    let (_, now) = gw.call(Method::GET, &path, &key, None).await;
    assert_eq!(
        now["data"]["authentication"]["endpoint"],
        json!(home.url),
        "nothing changed"
    );
    post_event(&gw, &key, json!({"type": "order_created", "payload": {}})).await;
    receiver.wait_for(1).await;
    assert_eq!((home.fetches(), thief.fetches()), (1, 0));

    // Another path on the same origin keeps the secret; with the secret
    // given again, the endpoint may move.
    let mut same_origin = created.clone();
    same_origin["authentication"]["endpoint"] = json!(format!("{}?v=2", home.url));
    let (status, answer) = gw.call(Method::PUT, &path, &key, Some(same_origin)).await;
    assert_eq!(status, 200, "{answer}");
    moved["authentication"]["credentials"]["client_secret"] = json!("secret");
    let (status, answer) = gw.call(Method::PUT, &path, &key, Some(moved)).await;
    assert_eq!(status, 200, "{answer}");
}

/// A lease shorter than one attempt: the lease is renewed while the
/// attempt runs, so the job is not claimed and sent a second time.
#[tokio::test]
async fn a_lease_shorter_than_an_attempt_still_sends_once() {
    let gw = gateway(&["--lease", "1s", "--delivery-timeout", "10s"]).await;
    let (_, key) = gw.organization("l").await;
    let slow = Receiver::scripted(|_, _| Reply {
        delay: Duration::from_secs(3),
        ..Reply::status(200)
    })
    .await;
    subscribe(&gw, &key, "slow", &slow.url).await;
    let id = post_event(&gw, &key, json!({"type": "slow", "payload": {}})).await;
    let d = settled(&gw, &key, &id).await;
    assert_eq!(
        (d["status"].as_str(), d["attemptCount"].as_i64()),
        (Some("delivered"), Some(1)),
        "{d}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(slow.received().len(), 1, "one send per claim");
}

/// What one tenant's writes may make is bounded: deliveries per event at
/// ingest (a 422, nothing stored) and by a transform's fan-out (the
/// delivery fails, saying so), subscriptions per organization (a 422).
#[tokio::test]
async fn limits_refuse_what_would_amplify() {
    let gw = gateway(&[
        "--max-deliveries-per-event",
        "3",
        "--max-subscriptions",
        "4",
    ])
    .await;
    let (_, key) = gw.organization("amp").await;
    let receiver = Receiver::ok().await;
    for n in 0..3 {
        subscribe(&gw, &key, "t", &format!("{}/{n}", receiver.url)).await;
    }
    post_event(
        &gw,
        &key,
        json!({"id": "evt_ok", "type": "t", "payload": {}}),
    )
    .await;
    subscribe(&gw, &key, "t", &format!("{}/3", receiver.url)).await;
    let (status, answer) = gw
        .call(
            Method::POST,
            "/v1/events",
            &key,
            Some(json!({"id": "evt_big", "type": "t", "payload": {}})),
        )
        .await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["data"]["code"], "limit_exceeded", "{answer}");
    let (status, _) = gw.call(Method::GET, "/v1/events/evt_big", &key, None).await;
    assert_eq!(status, 404, "a refused event is not stored");

    let (status, answer) = gw
        .call(
            Method::POST,
            "/v1/webhooks",
            &key,
            Some(json!({"topic": "other", "url": receiver.url})),
        )
        .await;
    assert_eq!(status, 422, "a fifth subscription: {answer}");

    // Another organization is not limited by this one's subscriptions; a
    // transform fanning out past the event's limit fails its delivery.
    let (_, other) = gw.organization("fan").await;
    let (status, _) = gw
        .request(Method::PUT, "/v1/plugins/fanout", hookgate_tests::ADMIN_KEY)
        .body(hookgate_tests::plugin_bytes("fanout"))
        .send()
        .await
        .map(|r| (r.status().as_u16(), ()))
        .expect("upload");
    assert_eq!(status, 201);
    let (status, answer) = gw
        .call(
            Method::POST,
            "/v1/webhooks",
            &other,
            Some(
                json!({"topic": "f", "url": receiver.url, "plugin": {"name": "fanout"},
                        "config": {"targets": "a,b,c,d,e"}}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    let id = post_event(&gw, &other, json!({"type": "f", "payload": {}})).await;
    let d = settled(&gw, &other, &id).await;
    assert_eq!(d["status"], "failed", "{d}");
    assert!(
        d["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("5 deliveries, more than the limit of 3")),
        "{d}"
    );
}

/// A proxy in the gateway's environment is not used for deliveries: it
/// would resolve names itself, past the guard on private addresses.
#[tokio::test]
async fn deliveries_do_not_go_through_a_proxy_from_the_environment() {
    let proxy = Receiver::ok().await;
    let receiver = Receiver::ok().await;
    let dir = tempfile::tempdir().expect("tmp");
    let env: Vec<(&str, &str)> = ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "ALL_PROXY"]
        .into_iter()
        .map(|name| (name, proxy.url.as_str()))
        .collect();
    let gw = hookgate_tests::GatewayProcess::spawn_with_env(
        dir.path(),
        hookgate_tests::free_port(),
        &[],
        &env,
    )
    .await;
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let key = gw.organization("p").await;
    let status = http
        .post(format!("{}/v1/webhooks", gw.url))
        .bearer_auth(&key)
        .json(&json!({"topic": "t", "url": receiver.url}))
        .send()
        .await
        .expect("webhook")
        .status();
    assert_eq!(status, 201);
    let status = http
        .post(format!("{}/v1/events", gw.url))
        .bearer_auth(&key)
        .json(&json!({"type": "t", "payload": {}}))
        .send()
        .await
        .expect("event")
        .status();
    assert_eq!(status, 202);
    receiver.wait_for(1).await;
    assert!(proxy.received().is_empty(), "the proxy was used");
}

/// Receivers that refuse a token often echo it back; what is recorded of
/// their answer never holds it.
#[tokio::test]
async fn a_token_echoed_by_a_receiver_is_not_recorded() {
    let gw = gateway(&[]).await;
    let (_, key) = gw.organization("echo").await;
    let tokens = TokenServer::start("id", "secret", 3600).await;
    let receiver = Receiver::scripted(|_, h| {
        let auth = h
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        Reply {
            body: format!("invalid credentials: {auth}"),
            ..Reply::status(401)
        }
    })
    .await;
    integration(&gw, &key, "order_created", &receiver.url, &tokens.url).await;
    let id = post_event(&gw, &key, json!({"type": "order_created", "payload": {}})).await;
    let d = settled(&gw, &key, &id).await;
    assert_eq!(d["status"], "failed", "{d}");
    let attempts = d["attempts"].as_array().expect("attempts");
    assert!(!attempts.is_empty());
    for a in attempts {
        let excerpt = a["responseExcerpt"].as_str().unwrap_or("");
        assert!(
            excerpt.contains("[redacted]") && !excerpt.contains("tok-"),
            "{excerpt}"
        );
    }
    assert!(
        receiver.received().len() >= 2,
        "sent, and sent again after a refresh"
    );
}

/// One URL of a subscription answering 410 fails its own delivery; the
/// subscription and its other URLs keep receiving.
#[tokio::test]
async fn one_gone_url_does_not_disable_its_subscription() {
    let gw = gateway(&[]).await;
    let (_, key) = gw.organization("g").await;
    let gone = Receiver::scripted(|_, _| Reply::status(410)).await;
    let fine = Receiver::ok().await;
    let (status, w) = gw
        .call(
            Method::POST,
            "/v1/webhooks",
            &key,
            Some(json!({"topic": "t", "webHookUrls": [gone.url, fine.url]})),
        )
        .await;
    assert_eq!(status, 201, "{w}");
    let wid = w["data"]["id"].as_str().expect("id").to_owned();
    for n in 0..2 {
        let (status, accepted) = gw
            .call(
                Method::POST,
                "/v1/events",
                &key,
                Some(json!({"type": "t", "payload": {"n": n}})),
            )
            .await;
        assert_eq!(status, 202);
        assert_eq!(
            accepted["data"]["deliveries"].as_array().map(Vec::len),
            Some(2)
        );
        for id in accepted["data"]["deliveries"].as_array().expect("ids") {
            settled(&gw, &key, id.as_str().expect("id")).await;
        }
    }
    assert_eq!((gone.received().len(), fine.received().len()), (2, 2));
    let (_, w) = gw
        .call(Method::GET, &format!("/v1/webhooks/{wid}"), &key, None)
        .await;
    assert_eq!(w["data"]["disabledReason"], Value::Null, "{w}");
}
