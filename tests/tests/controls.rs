//! Delivery controls (`../shared/API.md`, "Delivery controls"): filters on
//! subscriptions and integrations. A real gateway on SQLite, real receivers.

use hookgate_tests::TestGateway;
use hookgate_tests::peers::Receiver;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn filters_decide_at_ingest_which_routes_get_a_delivery() {
    let gw = TestGateway::start().await;
    let (_, key) = gw.organization("f").await;
    let big = Receiver::ok().await;
    let eur = Receiver::ok().await;
    let filter = json!({"payload.total": {"$gte": 100}, "$not": {"payload.test": true}});
    let (status, w) = gw
        .call(
            Method::POST,
            "/v1/webhooks",
            &key,
            Some(json!({"topic": "order_created", "url": big.url, "filter": filter})),
        )
        .await;
    assert_eq!(status, 201, "{w}");
    assert_eq!(
        w["data"]["filter"], filter,
        "the filter comes back as written"
    );
    let (status, i) = gw
        .call(
            Method::POST,
            "/v1/integrations",
            &key,
            Some(json!({"name": "eur", "hooks": [{"type": "order_created", "endpoint": eur.url}],
                        "filter": {"$or": [{"payload.currency": "EUR"}, {"shopId": {"$in": ["s1"]}}]}})),
        )
        .await;
    assert_eq!(status, 201, "{i}");

    let cases = [
        (json!({"total": 150, "currency": "USD"}), None, 1),
        (json!({"total": 150, "currency": "EUR"}), None, 2),
        (
            json!({"total": 150, "currency": "EUR", "test": true}),
            None,
            1,
        ),
        (json!({"total": 5, "currency": "USD"}), Some("s1"), 1),
        (json!({"total": 5, "currency": "USD"}), None, 0),
    ];
    for (payload, shop, routed) in cases {
        let (status, accepted) = gw
            .call(
                Method::POST,
                "/v1/events",
                &key,
                Some(json!({"type": "order_created", "payload": payload, "shopId": shop})),
            )
            .await;
        assert_eq!(status, 202, "{accepted}");
        assert_eq!(
            accepted["data"]["deliveries"].as_array().map(Vec::len),
            Some(routed),
            "{payload} {shop:?}: {accepted}"
        );
    }
    assert_eq!(
        (big.wait_for(2).await.len(), eur.wait_for(3).await.len()),
        (2, 3)
    );
}

#[tokio::test]
async fn a_bad_filter_is_a_400_naming_the_part_and_changes_nothing() {
    let gw = TestGateway::start().await;
    let (_, key) = gw.organization("bad").await;
    for (filter, field) in [
        (
            json!({"payload.total": {"$gtt": 1}}),
            "filter.payload.total.$gtt",
        ),
        (json!({"amount": 1}), "filter.amount"),
        (json!({"$or": {"type": "x"}}), "filter.$or"),
        (json!("type = x"), "filter"),
        (
            json!({"payload.tags": {"$in": "a"}}),
            "filter.payload.tags.$in",
        ),
    ] {
        let (status, answer) = gw
            .call(
                Method::POST,
                "/v1/webhooks",
                &key,
                Some(json!({"topic": "t", "url": "https://example.com/h", "filter": filter})),
            )
            .await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["data"]["errors"][0]["field"], field, "{answer}");
    }
    let (_, list) = gw.call(Method::GET, "/v1/webhooks", &key, None).await;
    assert_eq!(list["data"]["total"], 0, "nothing was stored: {list}");
}

#[tokio::test]
async fn event_types_with_schemas_refuse_payloads_that_do_not_match() {
    let gw = TestGateway::start().await;
    let (_, key) = gw.organization("types").await;
    let receiver = Receiver::ok().await;
    let (status, _) = gw
        .call(
            Method::POST,
            "/v1/webhooks",
            &key,
            Some(json!({"topic": "order_created", "url": receiver.url})),
        )
        .await;
    assert_eq!(status, 201);
    let schema = json!({
        "type": "object",
        "required": ["total", "customer"],
        "properties": {
            "total": {"type": "number", "minimum": 0},
            "customer": {"type": "object", "properties": {"email": {"type": "string", "format": "email"}}}
        }
    });
    // A schema that does not compile is a 400 on `schema`; nothing is stored.
    let (status, answer) = gw
        .call(
            Method::POST,
            "/v1/event-types",
            &key,
            Some(json!({"name": "order_created", "schema": {"type": 12}})),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["data"]["errors"][0]["field"], "schema", "{answer}");
    let (status, answer) = gw
        .call(
            Method::POST,
            "/v1/event-types",
            &key,
            Some(json!({"name": "order_created", "description": "an order", "schema": schema})),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["data"]["schema"], schema);

    // A payload failing it: 400 naming each failing path, nothing stored.
    let bad = json!({"id": "evt_bad", "type": "order_created",
                     "payload": {"total": -1, "customer": {"email": "not an email"}}});
    let (status, answer) = gw.call(Method::POST, "/v1/events", &key, Some(bad)).await;
    assert_eq!(status, 400, "{answer}");
    let mut fields: Vec<String> = answer["data"]["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().unwrap_or("").to_owned())
        .collect();
    fields.sort();
    assert_eq!(
        fields,
        ["payload.customer.email", "payload.total"],
        "{answer}"
    );
    let (status, _) = gw.call(Method::GET, "/v1/events/evt_bad", &key, None).await;
    assert_eq!(status, 404, "nothing stored");
    let (status, answer) = gw
        .call(
            Method::POST,
            "/v1/events",
            &key,
            Some(json!({"type": "order_created", "payload": {"total": 3}})),
        )
        .await;
    assert_eq!(status, 400, "a required field is missing: {answer}");
    assert_eq!(answer["data"]["errors"][0]["field"], "payload", "{answer}");

    // A payload that matches goes through; so does any payload of an
    // undeclared type.
    let good = json!({"type": "order_created", "payload": {"total": 3, "customer": {"email": "ada@example.com"}}});
    let (status, answer) = gw.call(Method::POST, "/v1/events", &key, Some(good)).await;
    assert_eq!(status, 202, "{answer}");
    let (status, _) = gw
        .call(
            Method::POST,
            "/v1/events",
            &key,
            Some(json!({"type": "other", "payload": 1})),
        )
        .await;
    assert_eq!(status, 202);

    // A new schema applies at once on this replica; deleting the type lifts it.
    let (status, answer) = gw
        .call(
            Method::PUT,
            "/v1/event-types/order_created",
            &key,
            Some(json!({"schema": {"type": "object", "required": ["refund"]}})),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let good_before = json!({"type": "order_created", "payload": {"total": 3, "customer": {}}});
    let (status, _) = gw
        .call(Method::POST, "/v1/events", &key, Some(good_before.clone()))
        .await;
    assert_eq!(status, 400);
    let (status, _) = gw
        .call(Method::DELETE, "/v1/event-types/order_created", &key, None)
        .await;
    assert_eq!(status, 200);
    let (status, _) = gw
        .call(Method::POST, "/v1/events", &key, Some(good_before))
        .await;
    assert_eq!(status, 202);

    // Another organization sees none of it.
    let (_, other) = gw.organization("other").await;
    let (_, list) = gw.call(Method::GET, "/v1/event-types", &other, None).await;
    assert_eq!(list["data"]["total"], 0, "{list}");
}

/// `GET /v1/deliveries` and `POST /v1/deliveries/replay` take the event type
/// and the destination as filters.
#[tokio::test]
async fn deliveries_are_searched_and_replayed_by_type_and_destination() {
    let gw = TestGateway::start().await;
    let (_, key) = gw.organization("search").await;
    let receiver = Receiver::ok().await;
    let mut ids = Vec::new();
    for topic in ["a.created", "b.created"] {
        let (_, w) = gw
            .call(
                Method::POST,
                "/v1/webhooks",
                &key,
                Some(json!({"topic": topic, "url": receiver.url})),
            )
            .await;
        ids.push(w["data"]["id"].as_str().expect("id").to_owned());
    }
    for (topic, n) in [("a.created", 3), ("b.created", 2)] {
        for _ in 0..n {
            let (status, _) = gw
                .call(
                    Method::POST,
                    "/v1/events",
                    &key,
                    Some(json!({"type": topic, "payload": {}})),
                )
                .await;
            assert_eq!(status, 202);
        }
    }
    receiver.wait_for(5).await;
    let total = |q: String| {
        let gw = &gw;
        let key = &key;
        async move {
            let (status, list) = gw
                .call(Method::GET, &format!("/v1/deliveries?{q}"), key, None)
                .await;
            assert_eq!(status, 200, "{list}");
            list["data"]["total"].as_i64().expect("total")
        }
    };
    assert_eq!(total("eventType=a.created".into()).await, 3);
    assert_eq!(total(format!("destinationId={}", ids[1])).await, 2);
    assert_eq!(
        total(format!("destinationId={}&eventType=a.created", ids[1])).await,
        0
    );
    // Wait until all five are delivered, then replay one destination's.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while total("status=delivered".into()).await < 5 {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (status, answer) = gw
        .call(
            Method::POST,
            "/v1/deliveries/replay",
            &key,
            Some(json!({"destinationId": ids[0]})),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["data"]["replayed"], 3, "{answer}");
    receiver.wait_for(8).await;
}

/// `--retention`: final events go with their deliveries and attempts; an
/// event with a pending delivery stays, however old.
#[tokio::test]
async fn retention_purges_what_is_final_and_nothing_pending() {
    let gw = hookgate_tests::TestGateway::start_with(hookgate_tests::GatewayOptions {
        args: ["--retention", "1s", "--retry-schedule", "0s,1h"]
            .map(String::from)
            .to_vec(),
        ..Default::default()
    })
    .await;
    let (_, key) = gw.organization("old").await;
    let fine = Receiver::ok().await;
    let broken = Receiver::scripted(|_, _| hookgate_tests::peers::Reply::status(503)).await;
    for (topic, url) in [("done", &fine.url), ("stuck", &broken.url)] {
        let (status, _) = gw
            .call(
                Method::POST,
                "/v1/webhooks",
                &key,
                Some(json!({"topic": topic, "url": url})),
            )
            .await;
        assert_eq!(status, 201);
    }
    let mut deliveries = Vec::new();
    for (id, topic) in [("evt_done", "done"), ("evt_stuck", "stuck")] {
        let (status, accepted) = gw
            .call(
                Method::POST,
                "/v1/events",
                &key,
                Some(json!({"id": id, "type": topic, "payload": {}})),
            )
            .await;
        assert_eq!(status, 202);
        deliveries.push(
            accepted["data"]["deliveries"][0]
                .as_str()
                .expect("id")
                .to_owned(),
        );
    }
    fine.wait_for(1).await;
    broken.wait_for(1).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (status, _) = gw
            .call(Method::GET, "/v1/events/evt_done", &key, None)
            .await;
        if status == 404 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never purged");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (status, _) = gw
        .call(
            Method::GET,
            &format!("/v1/deliveries/{}", deliveries[0]),
            &key,
            None,
        )
        .await;
    assert_eq!(status, 404, "its delivery went with it");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let (status, event) = gw
        .call(Method::GET, "/v1/events/evt_stuck", &key, None)
        .await;
    assert_eq!(
        status, 200,
        "an event with a pending delivery stays: {event}"
    );
    let (_, d) = gw
        .call(
            Method::GET,
            &format!("/v1/deliveries/{}", deliveries[1]),
            &key,
            None,
        )
        .await;
    assert_eq!(d["data"]["status"], "pending", "{d}");
    assert_eq!(
        d["data"]["attempts"].as_array().map(Vec::len),
        Some(1),
        "{d}"
    );
}

async fn subscribe(gw: &TestGateway, key: &str, topic: &str, url: &str) -> String {
    let (status, w) = gw
        .call(
            Method::POST,
            "/v1/webhooks",
            key,
            Some(json!({"topic": topic, "url": url})),
        )
        .await;
    assert_eq!(status, 201, "{w}");
    w["data"]["id"].as_str().expect("id").to_owned()
}

/// The gateway's own events reach the organization's subscriptions of
/// their types, and never feed themselves.
#[tokio::test]
async fn operational_events_are_delivered_and_never_loop() {
    use hookgate_tests::peers::Reply;
    let gw = hookgate_tests::TestGateway::start_with(hookgate_tests::GatewayOptions {
        args: [
            "--retry-schedule",
            "0s,300ms,300ms,300ms",
            "--disable-after",
            "1s",
        ]
        .map(String::from)
        .to_vec(),
        ..Default::default()
    })
    .await;
    let (_, key) = gw.organization("ops").await;
    let ops = Receiver::ok().await;
    for topic in [
        "hookgate.delivery.dead",
        "hookgate.endpoint.disabled",
        "hookgate.endpoint.recovered",
    ] {
        subscribe(&gw, &key, topic, &ops.url).await;
    }
    // Dead after four attempts (0.9 s), disabled at the next failure after 1 s.
    let broken = Receiver::scripted(|_, _| Reply::status(503)).await;
    let broken_id = subscribe(&gw, &key, "orders", &broken.url).await;
    // Fails for 0.9 s, then answers: recovered.
    let flaky = Receiver::scripted(|n, _| Reply::status(if n < 3 { 503 } else { 200 })).await;
    let flaky_id = subscribe(&gw, &key, "refunds", &flaky.url).await;

    let (status, _) = gw
        .call(
            Method::POST,
            "/v1/events",
            &key,
            Some(json!({"type": "refunds", "payload": {}})),
        )
        .await;
    assert_eq!(status, 202);
    let (status, first) = gw
        .call(
            Method::POST,
            "/v1/events",
            &key,
            Some(json!({"type": "orders", "payload": {}})),
        )
        .await;
    assert_eq!(status, 202);
    let first_delivery = first["data"]["deliveries"][0]
        .as_str()
        .expect("id")
        .to_owned();
    broken.wait_for(4).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (status, _) = gw
        .call(
            Method::POST,
            "/v1/events",
            &key,
            Some(json!({"type": "orders", "payload": {}})),
        )
        .await;
    assert_eq!(status, 202);

    let got = ops
        .wait_for_within(3, std::time::Duration::from_secs(10))
        .await;
    let by_type = |t: &str| {
        got.iter()
            .map(|r| r.json())
            .find(|b| b["type"] == t)
            .unwrap_or_else(|| {
                panic!(
                    "no {t} in {:?}",
                    got.iter().map(|r| r.json()).collect::<Vec<_>>()
                )
            })
    };
    let dead = by_type("hookgate.delivery.dead");
    assert_eq!(
        dead["data"]["deliveryId"],
        first_delivery.as_str(),
        "{dead}"
    );
    assert_eq!(dead["data"]["destinationId"], broken_id.as_str());
    assert_eq!(dead["data"]["attempts"], 4);
    assert!(
        dead["data"]["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("503")),
        "{dead}"
    );
    let recovered = by_type("hookgate.endpoint.recovered");
    assert_eq!(
        recovered["data"]["destinationId"],
        flaky_id.as_str(),
        "{recovered}"
    );
    assert_eq!(recovered["data"]["url"], flaky.url.as_str());
    let disabled = by_type("hookgate.endpoint.disabled");
    assert_eq!(
        disabled["data"]["destinationId"],
        broken_id.as_str(),
        "{disabled}"
    );
    assert!(
        disabled["data"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("failing continuously"))
    );

    // Posting the gateway's own types through the API is refused.
    let (status, _) = gw
        .call(
            Method::POST,
            "/v1/events",
            &key,
            Some(json!({"type": "hookgate.delivery.dead", "payload": {}})),
        )
        .await;
    assert_eq!(status, 400);
}

/// An operations endpoint that fails too: its own dead deliveries make no
/// further operational events.
#[tokio::test]
async fn a_failing_operations_endpoint_does_not_feed_itself() {
    use hookgate_tests::peers::Reply;
    let gw = hookgate_tests::TestGateway::start_with(hookgate_tests::GatewayOptions {
        args: ["--retry-schedule", "0s,100ms"].map(String::from).to_vec(),
        ..Default::default()
    })
    .await;
    let (_, key) = gw.organization("loop").await;
    let broken = Receiver::scripted(|_, _| Reply::status(503)).await;
    subscribe(&gw, &key, "hookgate.delivery.dead", &broken.url).await;
    subscribe(&gw, &key, "orders", &broken.url).await;
    let (status, _) = gw
        .call(
            Method::POST,
            "/v1/events",
            &key,
            Some(json!({"type": "orders", "payload": {}})),
        )
        .await;
    assert_eq!(status, 202);
    // Two attempts at the order, then two at the one operational event.
    broken.wait_for(4).await;
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert_eq!(
        broken.received().len(),
        4,
        "no operational event about an operational event"
    );
    let (_, list) = gw
        .call(
            Method::GET,
            "/v1/deliveries?eventType=hookgate.delivery.dead",
            &key,
            None,
        )
        .await;
    assert_eq!(list["data"]["total"], 1, "{list}");
}

/// `rateLimit`: deliveries over it wait (holding no worker), none is
/// dropped, and the receiver never sees more than the limit (plus its
/// one-second burst) in any second.
#[tokio::test]
async fn a_rate_limited_destination_gets_everything_at_its_pace() {
    let gw = TestGateway::start().await;
    let (_, key) = gw.organization("rate").await;
    let receiver = Receiver::ok().await;
    let (status, w) = gw
        .call(
            Method::POST,
            "/v1/webhooks",
            &key,
            Some(json!({"topic": "t", "url": receiver.url, "rateLimit": 5})),
        )
        .await;
    assert_eq!(status, 201, "{w}");
    assert_eq!(w["data"]["rateLimit"], 5);
    let (status, answer) = gw
        .call(
            Method::POST,
            "/v1/webhooks",
            &key,
            Some(json!({"topic": "t", "url": receiver.url, "rateLimit": 0})),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["data"]["errors"][0]["field"], "rateLimit");

    let started = std::time::Instant::now();
    for n in 0..20 {
        let (status, _) = gw
            .call(
                Method::POST,
                "/v1/events",
                &key,
                Some(json!({"type": "t", "payload": {"n": n}})),
            )
            .await;
        assert_eq!(status, 202);
    }
    let got = receiver
        .wait_for_within(20, std::time::Duration::from_secs(15))
        .await;
    // 5 at once (the burst), then 15 at 5/s: at least 2.6 s (jitter allowed).
    let took = got.last().expect("some").at.duration_since(started);
    assert!(took >= std::time::Duration::from_millis(2_600), "{took:?}");
    let mut seen: Vec<_> = got.iter().map(|r| r.json()["data"]["n"].as_i64()).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 20, "every event once");
    for window in got.windows(11) {
        let span = window[10].at.duration_since(window[0].at);
        assert!(
            span >= std::time::Duration::from_millis(900),
            "11 within {span:?}"
        );
    }
}

fn order_of(got: &[hookgate_tests::peers::Received]) -> Vec<i64> {
    got.iter()
        .map(|r| r.json()["data"]["n"].as_i64().expect("n"))
        .collect()
}

/// A FIFO destination whose receiver fails the first event twice gets
/// 0, 0, 0, 1, 2, …: the retried head holds the rest.
#[tokio::test]
async fn a_fifo_destination_gets_events_in_order_across_retries() {
    use hookgate_tests::peers::Reply;
    let gw = hookgate_tests::TestGateway::start_with(hookgate_tests::GatewayOptions {
        args: ["--retry-schedule", "0s,200ms,200ms,200ms"]
            .map(String::from)
            .to_vec(),
        ..Default::default()
    })
    .await;
    let (_, key) = gw.organization("fifo").await;
    let receiver = Receiver::scripted(|n, _| Reply::status(if n < 2 { 503 } else { 200 })).await;
    let (status, w) = gw
        .call(
            Method::POST,
            "/v1/webhooks",
            &key,
            Some(json!({"topic": "t", "url": receiver.url, "ordering": "fifo"})),
        )
        .await;
    assert_eq!(status, 201, "{w}");
    assert_eq!(w["data"]["ordering"], "fifo");
    for n in 0..10 {
        let (status, _) = gw
            .call(
                Method::POST,
                "/v1/events",
                &key,
                Some(json!({"type": "t", "payload": {"n": n}})),
            )
            .await;
        assert_eq!(status, 202);
    }
    let got = receiver.wait_for(12).await;
    assert_eq!(order_of(&got), [0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    let (status, answer) = gw
        .call(
            Method::POST,
            "/v1/webhooks",
            &key,
            Some(json!({"topic": "t", "url": receiver.url, "ordering": "lifo"})),
        )
        .await;
    assert_eq!(
        (status, answer["data"]["errors"][0]["field"].as_str()),
        (400, Some("ordering"))
    );
}

/// SIGKILL in the middle of a FIFO stream: after a restart the stream goes
/// on in order (the head in flight at the kill may be sent again: at least
/// once, never out of order).
#[tokio::test]
async fn a_fifo_stream_keeps_its_order_across_a_kill() {
    use hookgate_tests::peers::Reply;
    let receiver = Receiver::scripted(|_, _| Reply {
        delay: std::time::Duration::from_millis(30),
        ..Reply::status(200)
    })
    .await;
    let dir = tempfile::tempdir().expect("tmp");
    let port = hookgate_tests::free_port();
    let args = ["--lease", "1s"];
    let mut gw = hookgate_tests::GatewayProcess::spawn(dir.path(), port, &args).await;
    let key = gw.organization("k").await;
    let http = reqwest::Client::new();
    let status = http
        .post(format!("{}/v1/webhooks", gw.url))
        .bearer_auth(&key)
        .json(&json!({"topic": "t", "url": receiver.url, "ordering": "fifo"}))
        .send()
        .await
        .expect("webhook")
        .status();
    assert_eq!(status, 201);
    for n in 0..40 {
        let status = http
            .post(format!("{}/v1/events", gw.url))
            .bearer_auth(&key)
            .json(&json!({"type": "t", "payload": {"n": n}}))
            .send()
            .await
            .expect("event")
            .status();
        assert_eq!(status, 202);
    }
    receiver.wait_for(10).await;
    gw.kill();
    let _gw = hookgate_tests::GatewayProcess::spawn(dir.path(), port, &args).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let mut seen = order_of(&receiver.received());
        seen.dedup();
        if seen.len() >= 40 {
            assert_eq!(
                seen,
                (0..40).collect::<Vec<_>>(),
                "in order, each at least once"
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{seen:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
