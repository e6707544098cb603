//! The delivery pipeline end to end: a real gateway on SQLite, real
//! receivers and a real OAuth2 token server on loopback, real plugins.
//! Signatures are checked with the `standardwebhooks` reference crate.

use hookgate_tests::peers::{Receiver, Reply, TokenServer};
use hookgate_tests::{ADMIN_KEY, GatewayOptions, TestGateway, plugin_bytes};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

async fn gateway(extra: &[&str]) -> TestGateway {
    let mut args: Vec<String> = vec!["--retry-schedule".into(), "0s,200ms,200ms".into()];
    if !extra.contains(&"--delivery-timeout") {
        args.extend(["--delivery-timeout".into(), "2s".into()]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    TestGateway::start_with(GatewayOptions {
        args,
        ..Default::default()
    })
    .await
}

fn verify(secret: &str, r: &hookgate_tests::peers::Received) {
    let wh = standardwebhooks::Webhook::new(secret).expect("secret");
    wh.verify(&r.body, &r.headers)
        .expect("the signature verifies with the reference implementation");
}

async fn post_event(gw: &TestGateway, key: &str, body: Value) -> Value {
    let (status, answer) = gw.call(Method::POST, "/v1/events", key, Some(body)).await;
    assert_eq!(status, 202, "{answer}");
    answer["data"].clone()
}

async fn wait_status(gw: &TestGateway, key: &str, delivery: &str, status: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (_, d) = gw
            .call(
                Method::GET,
                &format!("/v1/deliveries/{delivery}"),
                key,
                None,
            )
            .await;
        if d["data"]["status"] == status {
            return d["data"].clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "delivery never became {status}: {d}"
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

#[tokio::test]
async fn integration_with_oauth_and_plugin_end_to_end() {
    let gw = gateway(&[]).await;
    let (_, key) = gw.organization("acme").await;
    let tokens = TokenServer::start("doo", "super-strong-pawwsord", 3600).await;
    let receiver = Receiver::ok().await;
    let upload = gw
        .request(Method::PUT, "/v1/plugins/partner", ADMIN_KEY)
        .header("content-type", "application/wasm")
        .body(plugin_bytes("partner"))
        .send()
        .await
        .expect("upload");
    assert_eq!(upload.status(), 201);

    let doc = json!({
        "name": "Partner CRM",
        "hooks": [{"type": "order_created", "method": "POST", "endpoint": format!("{}/hooks/orders", receiver.url)}],
        "authentication": {"grant_type": "client_credentials", "endpoint": tokens.url, "credentials": {"client_id": "doo", "client_secret": "super-strong-pawwsord"}, "header_format": "Authorization", "header_value_format": "Bearer %ACCESS_TOKEN%"},
        "plugin": {"name": "partner"},
        "config": {"companyId": "co_7"},
    });
    let (status, created) = gw
        .call(Method::POST, "/v1/integrations", &key, Some(doc))
        .await;
    assert_eq!(status, 201, "{created}");
    let secret = created["data"]["signingSecret"]
        .as_str()
        .expect("secret")
        .to_owned();

    let accepted = post_event(&gw, &key, json!({"id": "evt_e2e_1", "type": "order_created", "payload": {"order_id": "o1", "shop_id": "s1"}})).await;
    assert_eq!(accepted["eventId"], "evt_e2e_1");
    let delivery_id = accepted["deliveries"][0]
        .as_str()
        .expect("delivery")
        .to_owned();
    let got = receiver.wait_for(1).await;
    let r = &got[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/hooks/orders")
    );
    assert_eq!(r.header("authorization"), Some("Bearer tok-1"));
    assert_eq!(r.header("webhook-id"), Some(delivery_id.as_str()));
    assert!(
        r.header("user-agent")
            .is_some_and(|ua| ua.starts_with("hookgate/"))
    );
    assert_eq!(
        r.header("x-partner-webhook-type"),
        Some("NEW_CONSUMER_ORDER")
    );
    verify(&secret, r);
    let body = r.json();
    assert_eq!(
        (
            body["webHookType"].clone(),
            body["companyId"].clone(),
            body["data"]["orderId"].clone()
        ),
        (json!("NEW_CONSUMER_ORDER"), json!("co_7"), json!("o1"))
    );

    let delivered = wait_status(&gw, &key, &delivery_id, "delivered").await;
    assert_eq!(delivered["attemptCount"], 1);
    assert_eq!(delivered["attempts"][0]["statusCode"], 200);
    assert_eq!(
        delivered["attempts"][0]["responseExcerpt"],
        "receiver says hi"
    );
    // The attempt records the headers the receiver got, the token redacted.
    let recorded: Vec<(String, String)> =
        serde_json::from_value(delivered["attempts"][0]["requestHeaders"].clone())
            .expect("request headers as pairs");
    let received: Vec<(String, String)> = recorded
        .iter()
        .map(|(name, _)| (name.clone(), r.header(name).unwrap_or("").to_owned()))
        .collect();
    let shown = |(name, value): &(String, String)| match name.eq_ignore_ascii_case("authorization")
    {
        true => (name.clone(), "[redacted]".to_owned()),
        false => (name.clone(), value.clone()),
    };
    assert_eq!(recorded, received.iter().map(shown).collect::<Vec<_>>());
    for name in [
        "webhook-signature",
        "x-partner-webhook-type",
        "authorization",
    ] {
        assert!(
            recorded.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)),
            "{name} recorded"
        );
    }
    assert!(!delivered.to_string().contains("tok-1"), "{delivered}");
    // And the request the plugin made, as sent: body, type, its headers.
    let request = &delivered["request"];
    assert_eq!(
        (
            request["body"].as_str(),
            request["bodyEncoding"].as_str(),
            request["contentType"].as_str()
        ),
        (
            std::str::from_utf8(&r.body).ok(),
            Some("utf8"),
            r.header("content-type")
        ),
        "{delivered}"
    );
    assert_eq!(
        request["headers"],
        json!([["x-partner-webhook-type", "NEW_CONSUMER_ORDER"]])
    );
    let (_, event) = gw
        .call(Method::GET, "/v1/events/evt_e2e_1", &key, None)
        .await;
    assert_eq!(event["data"]["deliveries"][0]["status"], "delivered");

    // The token is cached: five more events, still one fetch.
    for i in 0..5 {
        post_event(
            &gw,
            &key,
            json!({"type": "order_created", "payload": {"order_id": format!("o{i}")}}),
        )
        .await;
    }
    let got = receiver.wait_for(6).await;
    assert!(
        got.iter()
            .all(|r| r.header("authorization") == Some("Bearer tok-1"))
    );
    assert_eq!(tokens.fetches(), 1);
    // A type the partner does not take is dropped by the plugin, recorded as such.
    let dropped = post_event(
        &gw,
        &key,
        json!({"type": "order_created", "payload": [1, 2]}),
    )
    .await;
    let d = wait_status(
        &gw,
        &key,
        dropped["deliveries"][0].as_str().expect("id"),
        "failed",
    )
    .await;
    assert!(
        d["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("partner") && e.contains("invalid event")),
        "{d}"
    );

    // Rotating the signing secret: the new one is shown once, and both
    // sign while the old one overlaps.
    let id = created["data"]["id"].as_str().expect("id");
    let (status, rotated) = gw
        .call(
            Method::POST,
            &format!("/v1/integrations/{id}/secret/rotate"),
            &key,
            None,
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let new_secret = rotated["data"]["signingSecret"]
        .as_str()
        .expect("the new secret, once")
        .to_owned();
    assert_ne!(new_secret, secret);
    let (_, read) = gw
        .call(Method::GET, &format!("/v1/integrations/{id}"), &key, None)
        .await;
    assert!(read["data"].get("signingSecret").is_none(), "{read}");
    let (status, _) = gw
        .call(
            Method::POST,
            &format!("/v1/integrations/{id}/secret/rotate"),
            &gw.organization("stranger").await.1,
            None,
        )
        .await;
    assert_eq!(status, 404, "another organization cannot rotate it");
    post_event(
        &gw,
        &key,
        json!({"type": "order_created", "payload": {"order_id": "after-rotation"}}),
    )
    .await;
    let got = receiver.wait_for(7).await;
    let last = &got[6];
    assert_eq!(
        last.header("webhook-signature")
            .map(|s| s.split(' ').count()),
        Some(2)
    );
    verify(&secret, last);
    verify(&new_secret, last);
}

#[tokio::test]
async fn subscriptions_fan_out_to_every_url_with_the_standard_payload() {
    let gw = gateway(&[]).await;
    let (_, key) = gw.organization("shop").await;
    let a = Receiver::ok().await;
    let b = Receiver::ok().await;
    let (_, w) = gw
        .call(
            Method::POST,
            "/v1/webhooks",
            &key,
            Some(
                json!({"topic": "customer.updated", "webHookUrls": [a.url, b.url], "shopId": "s1"}),
            ),
        )
        .await;
    let secret = w["data"]["secret"].as_str().expect("secret").to_owned();
    let (_, other_shop) = gw.call(Method::POST, "/v1/webhooks", &key, Some(json!({"topic": "customer.updated", "url": format!("{}/other", a.url), "shopId": "s2"}))).await;
    assert_eq!(other_shop["data"]["shopId"], "s2");

    let accepted = post_event(&gw, &key, json!({"id": "evt_c1", "type": "customer.updated", "payload": {"email": "ada@example.com"}, "shopId": "s1"})).await;
    assert_eq!(
        accepted["deliveries"].as_array().map(Vec::len),
        Some(2),
        "s2's subscription is filtered out"
    );
    let ra = a.wait_for(1).await;
    let rb = b.wait_for(1).await;
    for r in [&ra[0], &rb[0]] {
        verify(&secret, r);
        let body = r.json();
        assert_eq!(
            (
                body["id"].clone(),
                body["type"].clone(),
                body["data"].clone()
            ),
            (
                json!("evt_c1"),
                json!("customer.updated"),
                json!({"email": "ada@example.com"})
            )
        );
        assert!(body["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
    }
    assert_ne!(ra[0].header("webhook-id"), rb[0].header("webhook-id"));

    // Idempotent: the same id creates nothing new.
    let again = post_event(&gw, &key, json!({"id": "evt_c1", "type": "customer.updated", "payload": {"changed": true}, "shopId": "s1"})).await;
    assert_eq!(again["created"], false);
    assert_eq!(again["deliveries"], accepted["deliveries"]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(a.received().len(), 1);

    // Rotation: both secrets sign during the overlap.
    let wid = w["data"]["id"].as_str().expect("id");
    let (_, rotated) = gw
        .call(
            Method::POST,
            &format!("/v1/webhooks/{wid}/secret/rotate"),
            &key,
            None,
        )
        .await;
    let new_secret = rotated["data"]["secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    post_event(
        &gw,
        &key,
        json!({"type": "customer.updated", "payload": {}, "shopId": "s1"}),
    )
    .await;
    let r = a.wait_for(2).await;
    assert_eq!(
        r[1].header("webhook-signature")
            .map(|s| s.split(' ').count()),
        Some(2)
    );
    verify(&secret, &r[1]);
    verify(&new_secret, &r[1]);
}

#[tokio::test]
async fn failures_are_retried_with_the_same_id_and_body() {
    let gw = gateway(&[]).await;
    let (_, key) = gw.organization("r").await;
    let flaky = Receiver::scripted(|n, _| Reply::status(if n == 0 { 500 } else { 200 })).await;
    let (_, w) = gw
        .call(
            Method::POST,
            "/v1/webhooks",
            &key,
            Some(json!({"topic": "t.flaky", "url": flaky.url})),
        )
        .await;
    assert_eq!(w["data"]["topic"], "t.flaky");
    let accepted = post_event(&gw, &key, json!({"type": "t.flaky", "payload": {"n": 1}})).await;
    let got = flaky.wait_for(2).await;
    assert_eq!(got[0].header("webhook-id"), got[1].header("webhook-id"));
    assert_eq!(got[0].body, got[1].body);
    let d = wait_status(
        &gw,
        &key,
        accepted["deliveries"][0].as_str().expect("id"),
        "delivered",
    )
    .await;
    let codes: Vec<Value> = d["attempts"]
        .as_array()
        .expect("log")
        .iter()
        .map(|a| a["statusCode"].clone())
        .collect();
    assert_eq!(codes, [json!(500), json!(200)]);

    // 429 with Retry-After is honoured.
    let limited = Receiver::scripted(|n, _| {
        if n == 0 {
            Reply {
                headers: vec![("retry-after", "1".into())],
                ..Reply::status(429)
            }
        } else {
            Reply::status(200)
        }
    })
    .await;
    gw.call(
        Method::POST,
        "/v1/webhooks",
        &key,
        Some(json!({"topic": "t.limited", "url": limited.url})),
    )
    .await;
    post_event(&gw, &key, json!({"type": "t.limited", "payload": {}})).await;
    let got = limited.wait_for(2).await;
    let gap = got[1].at - got[0].at;
    assert!(
        gap >= Duration::from_millis(900),
        "retried after {gap:?}, before Retry-After"
    );

    // Other 4xx: failed at once, no retry.
    let picky = Receiver::scripted(|_, _| Reply::status(422)).await;
    gw.call(
        Method::POST,
        "/v1/webhooks",
        &key,
        Some(json!({"topic": "t.picky", "url": picky.url})),
    )
    .await;
    let accepted = post_event(&gw, &key, json!({"type": "t.picky", "payload": {}})).await;
    let d = wait_status(
        &gw,
        &key,
        accepted["deliveries"][0].as_str().expect("id"),
        "failed",
    )
    .await;
    assert_eq!(d["attemptCount"], 1);
    assert_eq!(d["lastStatus"], 422);
}

#[tokio::test]
async fn dead_letters_after_the_schedule_then_replays() {
    let gw = gateway(&["--delivery-timeout", "300ms"]).await;
    let (_, key) = gw.organization("d").await;
    // Slow past the timeout on every attempt of the first round, fine after.
    let slow = Receiver::scripted(|n, _| Reply {
        delay: if n < 3 {
            Duration::from_millis(800)
        } else {
            Duration::ZERO
        },
        ..Reply::status(200)
    })
    .await;
    gw.call(
        Method::POST,
        "/v1/webhooks",
        &key,
        Some(json!({"topic": "t.slow", "url": slow.url})),
    )
    .await;
    let accepted = post_event(&gw, &key, json!({"type": "t.slow", "payload": {}})).await;
    let id = accepted["deliveries"][0].as_str().expect("id").to_owned();
    let d = wait_status(&gw, &key, &id, "dead").await;
    assert_eq!(d["attemptCount"], 3);
    assert!(
        d["attempts"][0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("timed out")),
        "{d}"
    );
    let (_, dead) = gw
        .call(Method::GET, "/v1/deliveries?status=dead", &key, None)
        .await;
    assert_eq!(dead["data"]["total"], 1);

    let (status, _) = gw
        .call(
            Method::POST,
            &format!("/v1/deliveries/{id}/replay"),
            &key,
            None,
        )
        .await;
    assert_eq!(status, 202);
    let d = wait_status(&gw, &key, &id, "delivered").await;
    assert_eq!(d["attemptCount"], 4);

    // A receiver that is down (nothing listens) is retried, then dead; bulk replay finds it.
    let port = {
        std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port()
    };
    gw.call(
        Method::POST,
        "/v1/webhooks",
        &key,
        Some(json!({"topic": "t.down", "url": format!("http://127.0.0.1:{port}/")})),
    )
    .await;
    let accepted = post_event(&gw, &key, json!({"type": "t.down", "payload": {}})).await;
    let d = wait_status(
        &gw,
        &key,
        accepted["deliveries"][0].as_str().expect("id"),
        "dead",
    )
    .await;
    assert!(
        d["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("connect")),
        "{d}"
    );
    let (status, replayed) = gw
        .call(
            Method::POST,
            "/v1/deliveries/replay",
            &key,
            Some(json!({"status": "dead"})),
        )
        .await;
    assert_eq!(
        (status, replayed["data"]["replayed"].clone()),
        (202, json!(1))
    );
}

#[tokio::test]
async fn gone_disables_the_route() {
    let gw = gateway(&[]).await;
    let (_, key) = gw.organization("g").await;
    let gone = Receiver::scripted(|_, _| Reply::status(410)).await;
    let (_, w) = gw
        .call(
            Method::POST,
            "/v1/webhooks",
            &key,
            Some(json!({"topic": "t.gone", "url": gone.url})),
        )
        .await;
    let wid = w["data"]["id"].as_str().expect("id").to_owned();
    let accepted = post_event(&gw, &key, json!({"type": "t.gone", "payload": {}})).await;
    wait_status(
        &gw,
        &key,
        accepted["deliveries"][0].as_str().expect("id"),
        "failed",
    )
    .await;
    let (_, w) = gw
        .call(Method::GET, &format!("/v1/webhooks/{wid}"), &key, None)
        .await;
    assert!(
        w["data"]["disabledReason"]
            .as_str()
            .is_some_and(|r| r.contains("410")),
        "{w}"
    );
    let next = post_event(&gw, &key, json!({"type": "t.gone", "payload": {}})).await;
    assert_eq!(
        next["deliveries"],
        json!([]),
        "a disabled route gets nothing"
    );
}

#[tokio::test]
async fn token_trouble_is_retried_and_a_401_refreshes_once() {
    let gw = gateway(&[]).await;
    let (_, key) = gw.organization("t").await;
    let tokens = TokenServer::start("id", "secret", 3600).await;
    tokens.set_down(true);
    // The receiver refuses the first token it sees, as if it was revoked.
    let receiver = Receiver::scripted(|_, h| {
        let auth = h
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        Reply::status(if auth == "Bearer tok-1" { 401 } else { 200 })
    })
    .await;
    let doc = json!({
        "name": "t",
        "hooks": [{"type": "order_created", "endpoint": receiver.url}],
        "authentication": {"grant_type": "client_credentials", "endpoint": tokens.url, "credentials": {"client_id": "id", "client_secret": "secret"}, "header_format": "X-Token", "header_value_format": "Token %ACCESS_TOKEN%"},
    });
    let (_, created) = gw
        .call(Method::POST, "/v1/integrations", &key, Some(doc))
        .await;
    assert!(created["data"]["id"].is_string(), "{created}");
    // Oops: header_format is X-Token, so the receiver sees no Authorization. Fix it with a PUT.
    let id = created["data"]["id"].as_str().expect("id").to_owned();
    let mut fixed = created["data"].clone();
    fixed["authentication"]["header_format"] = json!("Authorization");
    fixed["authentication"]["header_value_format"] = json!("Bearer %ACCESS_TOKEN%");
    let (status, _) = gw
        .call(
            Method::PUT,
            &format!("/v1/integrations/{id}"),
            &key,
            Some(fixed),
        )
        .await;
    assert_eq!(status, 200);

    let accepted = post_event(&gw, &key, json!({"type": "order_created", "payload": {}})).await;
    let delivery = accepted["deliveries"][0].as_str().expect("id").to_owned();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let (_, d) = gw
        .call(
            Method::GET,
            &format!("/v1/deliveries/{delivery}"),
            &key,
            None,
        )
        .await;
    assert_eq!(
        d["data"]["status"], "pending",
        "a failing token endpoint makes the job retry: {d}"
    );
    assert!(
        d["data"]["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("token endpoint")),
        "{d}"
    );
    tokens.set_down(false);
    let d = wait_status(&gw, &key, &delivery, "delivered").await;
    let got = receiver.received();
    assert_eq!(
        got.iter()
            .map(|r| r.header("authorization").unwrap_or("").to_owned())
            .collect::<Vec<_>>(),
        ["Bearer tok-1", "Bearer tok-2"]
    );
    assert_eq!(tokens.fetches(), 2);
    assert!(d["attemptCount"].as_i64() >= Some(2));
}

#[tokio::test]
async fn a_trapping_plugin_fails_its_delivery_and_nothing_else() {
    let gw = gateway(&[]).await;
    let (_, key) = gw.organization("p").await;
    let receiver = Receiver::ok().await;
    let upload = gw
        .request(Method::PUT, "/v1/plugins/misbehave", ADMIN_KEY)
        .body(plugin_bytes("misbehave"))
        .send()
        .await
        .expect("upload");
    assert_eq!(upload.status(), 201);
    for (topic, mode) in [("t.panic", "panic"), ("t.echo", "echo")] {
        gw.call(Method::POST, "/v1/webhooks", &key, Some(json!({"topic": topic, "url": receiver.url, "plugin": {"name": "misbehave"}, "config": {"mode": mode}}))).await;
    }
    let bad = post_event(&gw, &key, json!({"type": "t.panic", "payload": {}})).await;
    let good = post_event(
        &gw,
        &key,
        json!({"type": "t.echo", "payload": {"fine": true}}),
    )
    .await;
    let d = wait_status(
        &gw,
        &key,
        bad["deliveries"][0].as_str().expect("id"),
        "failed",
    )
    .await;
    assert!(
        d["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("misbehave") && e.contains("told to panic")),
        "{d}"
    );
    // Nothing was sent, so the attempt records no request headers.
    assert_eq!(d["attempts"][0]["requestHeaders"], json!([]), "{d}");
    wait_status(
        &gw,
        &key,
        good["deliveries"][0].as_str().expect("id"),
        "delivered",
    )
    .await;
    assert_eq!(receiver.received()[0].json(), json!({"fine": true}));
}

/// Limits set at upload apply to that plugin's deliveries; settings past
/// the operator's maxima, or unknown, are refused and store nothing.
#[tokio::test]
async fn a_plugin_runs_under_the_limits_it_was_uploaded_with() {
    let gw = gateway(&[]).await;
    let (_, key) = gw.organization("p").await;
    let receiver = Receiver::ok().await;
    let put = |query: &'static str| {
        gw.request(
            Method::PUT,
            &format!("/v1/plugins/misbehave{query}"),
            ADMIN_KEY,
        )
        .body(plugin_bytes("misbehave"))
        .send()
    };
    for (query, field) in [
        ("?deadlineMs=99999", "deadlineMs"),
        ("?memoryMiB=0", "memoryMiB"),
        ("?reuse=1000000", "reuse"),
    ] {
        let refused = put(query).await.expect("upload");
        assert_eq!(refused.status(), 400, "{query}");
        let body: Value = refused.json().await.expect("json");
        assert_eq!(body["data"]["errors"][0]["field"], field, "{body}");
        assert!(
            body["data"]["errors"][0]["problem"]
                .as_str()
                .is_some_and(|m| m.contains("operator's maximum")),
            "{body}"
        );
    }
    for query in ["?deadlineMs=soon", "?deadline=200"] {
        assert_eq!(put(query).await.expect("upload").status(), 400, "{query}");
    }
    let (status, _) = gw
        .call(Method::GET, "/v1/plugins/misbehave", ADMIN_KEY, None)
        .await;
    assert_eq!(status, 404, "a refused upload stores nothing");

    let stored = put("?deadlineMs=2000").await.expect("upload");
    assert_eq!(stored.status(), 201);
    let stored: Value = stored.json().await.expect("json");
    assert_eq!(
        stored["data"]["limits"],
        json!({"memoryMiB": 32, "deadlineMs": 2000, "reuse": 1})
    );
    gw.call(Method::POST, "/v1/webhooks", &key, Some(json!({"topic": "t.slow", "url": receiver.url, "plugin": {"name": "misbehave"}, "config": {"mode": "sleep", "ms": "300"}}))).await;
    let slow = post_event(&gw, &key, json!({"type": "t.slow", "payload": {"n": 1}})).await;
    wait_status(
        &gw,
        &key,
        slow["deliveries"][0].as_str().expect("id"),
        "delivered",
    )
    .await;

    // The same component uploaded again without settings: the defaults.
    let again: Value = put("").await.expect("upload").json().await.expect("json");
    assert_eq!(again["data"]["limits"]["deadlineMs"], 100);
    let cut = post_event(&gw, &key, json!({"type": "t.slow", "payload": {"n": 2}})).await;
    let d = wait_status(
        &gw,
        &key,
        cut["deliveries"][0].as_str().expect("id"),
        "failed",
    )
    .await;
    assert!(
        d["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("deadline of 100 ms")),
        "{d}"
    );
}

#[tokio::test]
async fn private_destinations_are_refused_unless_allowed() {
    let strict = hookgate_tests::TestGateway::start_strict().await;
    let (_, skey) = strict.organization("s").await;
    for url in [
        "http://127.0.0.1:9/x",
        "http://[::1]/",
        "http://169.254.169.254/latest",
        "http://localhost:1/",
    ] {
        let (status, body) = strict
            .call(
                Method::POST,
                "/v1/webhooks",
                &skey,
                Some(json!({"topic": "t", "url": url})),
            )
            .await;
        assert_eq!(status, 400, "{url}: {body}");
    }
    // A name that resolves to loopback is refused at connect time: this
    // machine's own host name, when it resolves to a private address.
    let host = std::process::Command::new("hostname")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let resolved: Vec<std::net::SocketAddr> =
        match tokio::net::lookup_host((host.as_str(), 0)).await {
            Ok(addrs) => addrs.collect(),
            Err(_) => Vec::new(),
        };
    if host.is_empty()
        || host == "localhost"
        || resolved.is_empty()
        || !resolved.iter().all(|a| hookgate::ssrf::is_private(a.ip()))
    {
        eprintln!(
            "skipping the connect-time check: host name {host:?} does not resolve to a private address here"
        );
        return;
    }
    let receiver = Receiver::ok().await;
    let port = receiver.url.rsplit(':').next().expect("port");
    let (status, _) = strict
        .call(
            Method::POST,
            "/v1/webhooks",
            &skey,
            Some(json!({"topic": "t.sneaky", "url": format!("http://{host}:{port}/")})),
        )
        .await;
    assert_eq!(status, 201);
    let accepted = post_event(&strict, &skey, json!({"type": "t.sneaky", "payload": {}})).await;
    let d = wait_status(
        &strict,
        &skey,
        accepted["deliveries"][0].as_str().expect("id"),
        "failed",
    )
    .await;
    assert!(
        d["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("private")),
        "{d}"
    );
    assert!(receiver.received().is_empty());
}

#[tokio::test]
async fn metrics_count_what_happened() {
    let gw = gateway(&[]).await;
    let (_, key) = gw.organization("m").await;
    let receiver = Receiver::ok().await;
    gw.call(
        Method::POST,
        "/v1/webhooks",
        &key,
        Some(json!({"topic": "t.metrics", "url": receiver.url})),
    )
    .await;
    let accepted = post_event(&gw, &key, json!({"type": "t.metrics", "payload": {}})).await;
    wait_status(
        &gw,
        &key,
        accepted["deliveries"][0].as_str().expect("id"),
        "delivered",
    )
    .await;
    let text = gw
        .http
        .get(format!("{}/metrics", gw.url))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    for name in [
        "hookgate_events_accepted_total",
        "hookgate_deliveries_total",
        "hookgate_attempt_duration_seconds",
        "hookgate_deliveries_pending 0",
    ] {
        assert!(text.contains(name), "{name} missing from /metrics:\n{text}");
    }
}

#[tokio::test]
async fn a_route_failing_for_too_long_is_disabled() {
    // Attempts at 0, ~200 and ~400 ms (±20%): the third comes more than 250 ms after the first failure.
    let gw = gateway(&["--disable-after", "250ms"]).await;
    let (_, key) = gw.organization("f").await;
    let broken = Receiver::scripted(|_, _| Reply::status(503)).await;
    let (_, w) = gw
        .call(
            Method::POST,
            "/v1/webhooks",
            &key,
            Some(json!({"topic": "t.broken", "url": broken.url})),
        )
        .await;
    let wid = w["data"]["id"].as_str().expect("id").to_owned();
    let first = post_event(&gw, &key, json!({"type": "t.broken", "payload": {}})).await;
    wait_status(
        &gw,
        &key,
        first["deliveries"][0].as_str().expect("id"),
        "dead",
    )
    .await;
    let (_, w) = gw
        .call(Method::GET, &format!("/v1/webhooks/{wid}"), &key, None)
        .await;
    assert!(
        w["data"]["disabledReason"]
            .as_str()
            .is_some_and(|r| r.contains("failing continuously")),
        "{w}"
    );
    let third = post_event(&gw, &key, json!({"type": "t.broken", "payload": {}})).await;
    assert_eq!(third["deliveries"], json!([]));
    // Updating the subscription re-enables it.
    let (_, w) = gw
        .call(
            Method::PUT,
            &format!("/v1/webhooks/{wid}"),
            &key,
            Some(json!({"topic": "t.broken", "url": broken.url})),
        )
        .await;
    assert_eq!(w["data"]["disabledReason"], Value::Null);
    // ... with a fresh failure streak: its next failure does not disable it
    // again at once.
    let fourth = post_event(&gw, &key, json!({"type": "t.broken", "payload": {}})).await;
    let delivery = fourth["deliveries"][0].as_str().expect("routed again");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (_, d) = gw
            .call(
                Method::GET,
                &format!("/v1/deliveries/{delivery}"),
                &key,
                None,
            )
            .await;
        if d["data"]["attemptCount"].as_i64() >= Some(1) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{d}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (_, w) = gw
        .call(Method::GET, &format!("/v1/webhooks/{wid}"), &key, None)
        .await;
    assert_eq!(w["data"]["disabledReason"], Value::Null, "{w}");
}

/// Payloads are carried byte for byte: big integers, long decimals, key
/// order, duplicate keys and spacing reach the receiver's `data` and the
/// event read back exactly as posted.
#[tokio::test]
async fn payloads_arrive_byte_for_byte() {
    let gw = gateway(&[]).await;
    let (_, key) = gw.organization("exact").await;
    let receiver = Receiver::ok().await;
    let (status, _) = gw
        .call(
            Method::POST,
            "/v1/webhooks",
            &key,
            Some(json!({"topic": "t.exact", "url": receiver.url})),
        )
        .await;
    assert_eq!(status, 201);
    let payload = r#"{"z": 1, "amount": 12345678901234567890123, "pi": 3.14159265358979323846264338327950288, "a": {"y": [1, 2e3], "b": null}, "dup": 1, "dup": 2}"#;
    let body = format!(r#"{{"id": "evt_exact", "type": "t.exact", "payload": {payload}}}"#);
    let response = gw
        .request(Method::POST, "/v1/events", &key)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 202);
    let received = receiver.wait_for(1).await;
    let sent = String::from_utf8(received[0].body.to_vec()).expect("utf-8");
    assert!(
        sent.ends_with(&format!(r#","data":{payload}}}"#)),
        "the receiver's data differs from what was posted: {sent}"
    );
    let read = gw
        .request(Method::GET, "/v1/events/evt_exact", &key)
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("body");
    assert!(read.contains(&format!(r#""payload":{payload}"#)), "{read}");
}
