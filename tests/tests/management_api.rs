//! The management API against a real gateway on SQLite: the seed documents
//! as written, pagination and soft delete, tenant isolation, validation that
//! changes nothing, and secrets that never come back or sit in the clear.

use hookgate_tests::{ADMIN_KEY, TestGateway};
use reqwest::Method;
use serde_json::{Value, json};

/// Seed 003's example, exactly as written.
const SEED_003: &str = r#"{ "name": "My Test Webhook", "description": "Webhook for testing all the hook types", "hooks": [ { "type": "event_created", "method": "POST", "endpoint": "https://requestb.in/123" }, { "type": "event_removed", "method": "POST", "endpoint": "https://requestb.in/123" }, { "type": "event_updated", "method": "POST", "endpoint": "https://requestb.in/123" }, { "type": "order_created", "method": "POST", "endpoint": "https://requestb.in/123" }, { "type": "order_removed", "method": "POST", "endpoint": "https://requestb.in/123" }, { "type": "order_updated", "method": "POST", "endpoint": "https://requestb.in/123" }, { "type": "order_cancelled", "method": "POST", "endpoint": "https://requestb.in/123" } ], "authentication": { "grant_type": "client_credentials", "endpoint": "https://requestb.in/123", "credentials": { "client_id":"doo", "client_secret":"super-strong-pawwsord" }, "header_format": "Authorization", "header_value_format": "Bearer %ACCESS_TOKEN%" } }"#;

fn seed_003() -> Value {
    serde_json::from_str(SEED_003).expect("the seed is JSON")
}

/// Every byte of the database files (main file and WAL).
fn database_bytes(gw: &TestGateway) -> Vec<u8> {
    let mut all = Vec::new();
    for suffix in ["", "-wal"] {
        let path = format!("{}{suffix}", gw.database_path().display());
        if let Ok(bytes) = std::fs::read(&path) {
            all.extend(bytes);
        }
    }
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn seed_003_round_trips_and_its_secret_stays_secret() {
    let gw = TestGateway::start().await;
    let (org, key) = gw.organization("acme").await;
    let (status, created) = gw
        .call(Method::POST, "/v1/integrations", &key, Some(seed_003()))
        .await;
    assert_eq!(status, 201, "{created}");
    let data = &created["data"];
    let id = data["id"].as_str().expect("id");
    assert!(id.starts_with("int_"));
    assert_eq!(data["organizationId"], org.as_str());
    let secret = data["signingSecret"]
        .as_str()
        .expect("signing secret shown on create");
    assert!(
        secret.starts_with("whsec_") && secret.len() > 40,
        "{secret}"
    );
    assert_eq!(
        data["authentication"]["credentials"]["client_secret"],
        "[redacted]"
    );
    assert!(!created.to_string().contains("super-strong-pawwsord"));

    let (status, fetched) = gw
        .call(Method::GET, &format!("/v1/integrations/{id}"), &key, None)
        .await;
    assert_eq!(status, 200);
    let got = &fetched["data"];
    let seed = seed_003();
    assert_eq!(got["name"], seed["name"]);
    assert_eq!(got["description"], seed["description"]);
    assert_eq!(got["hooks"], seed["hooks"]);
    for field in [
        "grant_type",
        "endpoint",
        "header_format",
        "header_value_format",
    ] {
        assert_eq!(
            got["authentication"][field], seed["authentication"][field],
            "{field}"
        );
    }
    assert_eq!(got["authentication"]["credentials"]["client_id"], "doo");
    assert!(
        got.get("signingSecret").is_none(),
        "the signing secret is shown once"
    );
    assert!(!fetched.to_string().contains("super-strong-pawwsord"));

    // The fetched document can be sent back whole; the secret is kept.
    let mut back = got.clone();
    back["name"] = json!("Renamed");
    let (status, updated) = gw
        .call(
            Method::PUT,
            &format!("/v1/integrations/{id}"),
            &key,
            Some(back),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["data"]["name"], "Renamed");
    assert!(updated["data"]["modified"].as_i64() >= updated["data"]["created"].as_i64());

    // Secrets are encrypted at rest.
    let db = database_bytes(&gw);
    assert!(
        !contains(&db, "super-strong-pawwsord"),
        "client secret stored in the clear"
    );
    assert!(!contains(&db, secret), "signing secret stored in the clear");
    assert!(
        contains(&db, "requestb.in"),
        "sanity: the database file was read"
    );

    let (status, _) = gw
        .call(
            Method::DELETE,
            &format!("/v1/integrations/{id}"),
            &key,
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, gone) = gw
        .call(Method::GET, &format!("/v1/integrations/{id}"), &key, None)
        .await;
    assert_eq!(status, 404);
    assert_eq!(gone["data"]["code"], "not_found");
}

#[tokio::test]
async fn webhooks_paginate_filter_and_soft_delete_like_seed_002() {
    let gw = TestGateway::start().await;
    let (org, key) = gw.organization("partner").await;
    let mut ids = Vec::new();
    for i in 0..25 {
        let shop = if i % 2 == 0 { "shop_even" } else { "shop_odd" };
        let body = json!({
            "webHookType": if i < 20 { "NEW_CONSUMER_ORDER" } else { "UPDATE_MEMBER" },
            "webHookUrls": [format!("https://hooks.example.com/{i}/a"), format!("https://hooks.example.com/{i}/b")],
            "shopId": shop,
        });
        let (status, created) = gw
            .call(Method::POST, "/v1/webhooks", &key, Some(body))
            .await;
        assert_eq!(status, 201, "{created}");
        let d = &created["data"];
        assert!(
            d["secret"]
                .as_str()
                .is_some_and(|s| s.starts_with("whsec_"))
        );
        assert_eq!(d["companyId"], org.as_str());
        assert_eq!(d["deleted"], false);
        assert_eq!(d["webHookUrls"].as_array().map(Vec::len), Some(2));
        assert!(d["created"].as_i64().is_some_and(|t| t > 1_700_000_000_000));
        ids.push(d["id"].as_str().expect("id").to_owned());
    }

    let (_, page) = gw
        .call(Method::GET, "/v1/webhooks?start=10&limit=10", &key, None)
        .await;
    assert_eq!(page["data"]["total"], 25);
    assert_eq!(page["data"]["start"], 10);
    assert_eq!(page["data"]["limit"], 10);
    let listed: Vec<&str> = page["data"]["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|w| w["id"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        listed,
        ids[10..20].iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert!(
        page["data"]["items"][0].get("secret").is_none(),
        "secrets never listed"
    );

    let (_, even) = gw
        .call(
            Method::GET,
            "/v1/webhooks?shopId=shop_even&limit=1000",
            &key,
            None,
        )
        .await;
    assert_eq!(even["data"]["total"], 13);
    let (_, topic) = gw
        .call(Method::GET, "/v1/webhooks?topic=UPDATE_MEMBER", &key, None)
        .await;
    assert_eq!(topic["data"]["total"], 5);

    // Soft delete: gone from the list, still readable, listed on request.
    let (status, deleted) = gw
        .call(
            Method::DELETE,
            &format!("/v1/webhooks/{}", ids[0]),
            &key,
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(deleted["data"]["deleted"], true);
    let (_, after) = gw
        .call(Method::GET, "/v1/webhooks?limit=1000", &key, None)
        .await;
    assert_eq!(after["data"]["total"], 24);
    let (_, all) = gw
        .call(
            Method::GET,
            "/v1/webhooks?limit=1000&includeDeleted=true",
            &key,
            None,
        )
        .await;
    assert_eq!(all["data"]["total"], 25);
    let (status, one) = gw
        .call(Method::GET, &format!("/v1/webhooks/{}", ids[0]), &key, None)
        .await;
    assert_eq!((status, one["data"]["deleted"].clone()), (200, json!(true)));
    let (status, _) = gw
        .call(
            Method::DELETE,
            &format!("/v1/webhooks/{}", ids[0]),
            &key,
            None,
        )
        .await;
    assert_eq!(status, 404, "deleting twice");

    // Seed 001: update and delete by topic and id.
    let (status, upd) = gw
        .call(Method::PUT, &format!("/v1/webhooks/{}", ids[1]), &key, Some(json!({"topic": "customer.joined.paid_tier", "url": "https://cb.example.com/x", "name": "paid"})))
        .await;
    assert_eq!(status, 200, "{upd}");
    assert_eq!(upd["data"]["topic"], "customer.joined.paid_tier");
    assert_eq!(
        upd["data"]["webHookUrls"],
        json!(["https://cb.example.com/x"])
    );
    assert_eq!(upd["data"]["updated"], true);
    let (status, _) = gw
        .call(
            Method::DELETE,
            &format!("/v1/webhooks?id={}&topic=wrong.topic", ids[1]),
            &key,
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = gw
        .call(
            Method::DELETE,
            &format!("/v1/webhooks?id={}&topic=customer.joined.paid_tier", ids[1]),
            &key,
            None,
        )
        .await;
    assert_eq!(status, 200);

    // Rotation returns a new secret.
    let (_, fresh) = gw
        .call(
            Method::POST,
            "/v1/webhooks",
            &key,
            Some(json!({"topic": "customer.created", "url": "https://x.example.com/"})),
        )
        .await;
    let wid = fresh["data"]["id"].as_str().expect("id");
    let (status, rotated) = gw
        .call(
            Method::POST,
            &format!("/v1/webhooks/{wid}/secret/rotate"),
            &key,
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_ne!(rotated["data"]["secret"], fresh["data"]["secret"]);
    assert!(
        rotated["data"]["secret"]
            .as_str()
            .is_some_and(|s| s.starts_with("whsec_"))
    );

    // Bad pagination.
    let (status, bad) = gw
        .call(Method::GET, "/v1/webhooks?limit=1001", &key, None)
        .await;
    assert_eq!(status, 400);
    assert_eq!(bad["data"]["errors"][0]["field"], "limit");
}

#[tokio::test]
async fn organizations_cannot_touch_each_others_objects() {
    let gw = TestGateway::start().await;
    let (_, a) = gw.organization("a").await;
    let (org_b, b) = gw.organization("b").await;
    let (_, integration) = gw
        .call(Method::POST, "/v1/integrations", &a, Some(seed_003()))
        .await;
    let iid = integration["data"]["id"].as_str().expect("id").to_owned();
    let (_, webhook) = gw
        .call(
            Method::POST,
            "/v1/webhooks",
            &a,
            Some(json!({"topic": "customer.updated", "url": "https://a.example.com/"})),
        )
        .await;
    let wid = webhook["data"]["id"].as_str().expect("id").to_owned();

    let attempts: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, format!("/v1/integrations/{iid}"), None),
        (
            Method::PUT,
            format!("/v1/integrations/{iid}"),
            Some(seed_003()),
        ),
        (Method::DELETE, format!("/v1/integrations/{iid}"), None),
        (Method::GET, format!("/v1/webhooks/{wid}"), None),
        (
            Method::PUT,
            format!("/v1/webhooks/{wid}"),
            Some(json!({"topic": "x", "url": "https://b.example.com/"})),
        ),
        (Method::DELETE, format!("/v1/webhooks/{wid}"), None),
        (Method::DELETE, format!("/v1/webhooks?id={wid}"), None),
        (
            Method::POST,
            format!("/v1/webhooks/{wid}/secret/rotate"),
            None,
        ),
    ];
    for (method, path, body) in attempts {
        let (status, answer) = gw.call(method.clone(), &path, &b, body).await;
        assert_eq!(
            status, 404,
            "{method} {path} as another organization: {answer}"
        );
    }
    let (_, list) = gw.call(Method::GET, "/v1/integrations", &b, None).await;
    assert_eq!(list["data"]["total"], 0);
    let (_, list) = gw
        .call(Method::GET, "/v1/webhooks?includeDeleted=true", &b, None)
        .await;
    assert_eq!(list["data"]["total"], 0);
    // B cannot create in A's name either.
    let mut doc = seed_003();
    doc["organizationId"] = json!("org_someone_else");
    let (status, answer) = gw
        .call(Method::POST, "/v1/integrations", &b, Some(doc.clone()))
        .await;
    assert_eq!(status, 400);
    assert_eq!(answer["data"]["errors"][0]["field"], "organizationId");
    doc["organizationId"] = json!(org_b);
    let (status, _) = gw
        .call(Method::POST, "/v1/integrations", &b, Some(doc))
        .await;
    assert_eq!(status, 201);
    // A's objects are untouched.
    let (status, still) = gw
        .call(Method::GET, &format!("/v1/integrations/{iid}"), &a, None)
        .await;
    assert_eq!(
        (status, still["data"]["name"].clone()),
        (200, json!("My Test Webhook"))
    );
    let (_, still) = gw
        .call(Method::GET, &format!("/v1/webhooks/{wid}"), &a, None)
        .await;
    assert_eq!(still["data"]["deleted"], false);
}

/// Each invalid document names its field, answers 400, and changes nothing.
#[tokio::test]
async fn invalid_documents_are_refused_and_change_nothing() {
    let gw = TestGateway::start().await;
    let (_, key) = gw.organization("acme").await;
    let (_, existing) = gw
        .call(Method::POST, "/v1/integrations", &key, Some(seed_003()))
        .await;
    let iid = existing["data"]["id"].as_str().expect("id").to_owned();

    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"hooks": [{"type": "a", "endpoint": "https://x.example.com/"}]}),
            "name",
        ),
        (json!({"name": "n"}), "hooks"),
        (json!({"name": "n", "hooks": []}), "hooks"),
        (
            json!({"name": "n", "hooks": [{"type": "a", "endpoint": "not a url"}]}),
            "hooks[0].endpoint",
        ),
        (
            json!({"name": "n", "hooks": [{"type": "a", "endpoint": "ftp://x.example.com/"}]}),
            "hooks[0].endpoint",
        ),
        (
            json!({"name": "n", "hooks": [{"type": "a", "method": "DELETE", "endpoint": "https://x.example.com/"}]}),
            "hooks[0].method",
        ),
        (
            json!({"name": "n", "hooks": [{"type": "bad type!", "endpoint": "https://x.example.com/"}]}),
            "hooks[0].type",
        ),
        (
            json!({"name": "n", "hooks": [{"type": "a", "endpoint": "https://x.example.com/", "extra": 1}]}),
            "hooks[0].extra",
        ),
        (json!({"name": "n", "hook": []}), "hook"),
        (json!({"name": 5, "hooks": []}), "name"),
        (
            patch_auth(|a| a["grant_type"] = json!("authorization_code")),
            "authentication.grant_type",
        ),
        (
            patch_auth(|a| a["header_value_format"] = json!("Bearer TOKEN")),
            "authentication.header_value_format",
        ),
        (
            patch_auth(|a| a["endpoint"] = json!("token-endpoint")),
            "authentication.endpoint",
        ),
        (
            patch_auth(|a| {
                a["credentials"]
                    .as_object_mut()
                    .map(|c| c.remove("client_secret"))
                    .map(drop)
                    .unwrap_or(())
            }),
            "authentication.credentials.client_secret",
        ),
        (
            patch_auth(|a| a["header_format"] = json!("webhook-signature")),
            "authentication.header_format",
        ),
    ];
    for (body, field) in cases {
        for (method, path) in [
            (Method::POST, "/v1/integrations".to_string()),
            (Method::PUT, format!("/v1/integrations/{iid}")),
        ] {
            if method == Method::PUT && field == "authentication.credentials.client_secret" {
                continue; // on update, a missing secret keeps the stored one
            }
            let (status, answer) = gw
                .call(method.clone(), &path, &key, Some(body.clone()))
                .await;
            assert_eq!(status, 400, "{method} {body}: {answer}");
            assert_eq!(answer["data"]["code"], "validation_error", "{answer}");
            let fields: Vec<&str> = answer["data"]["errors"]
                .as_array()
                .expect("errors")
                .iter()
                .filter_map(|e| e["field"].as_str())
                .collect();
            assert!(
                fields.contains(&field),
                "{method} {body}: expected `{field}` in {fields:?}"
            );
        }
    }
    // Malformed JSON and the wrong shapes.
    let response = gw
        .request(Method::POST, "/v1/integrations", &key)
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["data"]["code"], "malformed_request");
    let (status, _) = gw
        .call(
            Method::POST,
            "/v1/webhooks",
            &key,
            Some(json!({"topic": "a"})),
        )
        .await;
    assert_eq!(status, 400);
    let (status, answer) = gw
        .call(
            Method::POST,
            "/v1/webhooks",
            &key,
            Some(json!({"topic": "a", "webHookType": "b", "url": "https://x.example.com/"})),
        )
        .await;
    assert_eq!(
        (status, answer["data"]["errors"][0]["field"].clone()),
        (400, json!("webHookType"))
    );

    // Nothing changed.
    let (_, list) = gw.call(Method::GET, "/v1/integrations", &key, None).await;
    assert_eq!(list["data"]["total"], 1);
    assert_eq!(list["data"]["items"][0], {
        let (_, now) = gw
            .call(Method::GET, &format!("/v1/integrations/{iid}"), &key, None)
            .await;
        now["data"].clone()
    });
    assert_eq!(
        list["data"]["items"][0]["modified"],
        existing["data"]["modified"]
    );
    let (_, list) = gw
        .call(Method::GET, "/v1/webhooks?includeDeleted=true", &key, None)
        .await;
    assert_eq!(list["data"]["total"], 0);
}

fn patch_auth(f: impl FnOnce(&mut Value)) -> Value {
    let mut doc = seed_003();
    f(&mut doc["authentication"]);
    doc
}

#[tokio::test]
async fn keys_are_hashed_checked_and_revocable() {
    let gw = TestGateway::start().await;
    let (org, key) = gw.organization("acme").await;

    // Both header forms work; anything else is 401 in the envelope.
    let ok = gw
        .http
        .get(format!("{}/v1/webhooks", gw.url))
        .header("x-api-key", &key)
        .send()
        .await
        .expect("send");
    assert_eq!(ok.status(), 200);
    // The same key with its last hex digit changed (to a digit it is not).
    let last = if key.ends_with('0') { '1' } else { '0' };
    let tampered = format!("{}{last}", &key[..key.len() - 1]);
    for bad in ["", "nonsense", &key[..key.len() - 1], &tampered] {
        let (status, body) = gw.call(Method::GET, "/v1/webhooks", bad, None).await;
        assert_eq!(status, 401, "key {bad:?}");
        assert_eq!(body["data"]["code"], "unauthorized");
    }
    // An organization key is not an admin key, and the admin key is not an organization key.
    let (status, _) = gw.call(Method::GET, "/v1/organizations", &key, None).await;
    assert_eq!(status, 401);
    let (status, _) = gw.call(Method::GET, "/v1/webhooks", ADMIN_KEY, None).await;
    assert_eq!(status, 401);

    // A second key, then revoke the first.
    let (status, second) = gw
        .call(
            Method::POST,
            &format!("/v1/organizations/{org}/keys"),
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(status, 201);
    let second_key = second["data"]["apiKey"].as_str().expect("key").to_owned();
    let first_id = key
        .trim_start_matches("hgk_")
        .rsplit_once('_')
        .expect("shape")
        .0
        .to_owned();
    let (status, revoked) = gw
        .call(
            Method::DELETE,
            &format!("/v1/organizations/{org}/keys/{first_id}"),
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(status, 200, "{revoked}");
    assert!(revoked["data"]["revoked"].as_i64().is_some());
    assert!(revoked["data"].get("apiKey").is_none());
    let (status, _) = gw.call(Method::GET, "/v1/webhooks", &key, None).await;
    assert_eq!(status, 401, "revoked key");
    let (status, _) = gw
        .call(Method::GET, "/v1/webhooks", &second_key, None)
        .await;
    assert_eq!(status, 200);
    let (status, _) = gw
        .call(
            Method::DELETE,
            &format!("/v1/organizations/org_nope/keys/{first_id}"),
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(status, 404);

    // Only hashes are stored.
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", gw.database_path().display()))
        .await
        .expect("open");
    let rows: Vec<(String, String)> = sqlx::query_as("SELECT id, secret_hash FROM api_keys")
        .fetch_all(&pool)
        .await
        .expect("query");
    assert_eq!(rows.len(), 2);
    for (id, hash) in &rows {
        assert_eq!(hash.len(), 64, "sha256 hex");
        assert!(!key.contains(hash.as_str()) && !second_key.contains(hash.as_str()));
        assert!(key.contains(id.as_str()) || second_key.contains(id.as_str()));
    }
    let db = database_bytes(&gw);
    let secret_part = key.rsplit_once('_').expect("shape").1;
    assert!(
        !contains(&db, secret_part),
        "the key's secret part is in the database file"
    );
}

#[tokio::test]
async fn envelope_for_every_kind_of_error() {
    let gw = TestGateway::start_with(hookgate_tests::GatewayOptions {
        args: vec!["--max-body-bytes".into(), "2048".into()],
        ..Default::default()
    })
    .await;
    let (_, key) = gw.organization("acme").await;

    let big = json!({"name": "x".repeat(4000), "hooks": []});
    let (status, body) = gw
        .call(Method::POST, "/v1/integrations", &key, Some(big))
        .await;
    assert_eq!(
        (status, body["data"]["code"].clone()),
        (413, json!("payload_too_large"))
    );
    let (status, body) = gw.call(Method::GET, "/v1/nothing-here", &key, None).await;
    assert_eq!(
        (status, body["data"]["code"].clone()),
        (404, json!("not_found"))
    );
    let (status, body) = gw.call(Method::PATCH, "/v1/webhooks", &key, None).await;
    assert_eq!(
        (status, body["data"]["code"].clone()),
        (405, json!("method_not_allowed"))
    );
    let (status, body) = gw
        .call(Method::GET, "/v1/webhooks/wh_missing", &key, None)
        .await;
    assert_eq!(status, 404);
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));

    let (status, health) = gw.call(Method::GET, "/healthz", "", None).await;
    assert_eq!((status, health["message"].clone()), (200, json!("ok")));
    let (status, ready) = gw.call(Method::GET, "/readyz", "", None).await;
    assert_eq!(
        (status, ready["data"]["database"].clone()),
        (200, json!("sqlite"))
    );
}

#[tokio::test]
async fn openapi_covers_every_route() {
    let gw = TestGateway::start().await;
    let (status, doc) = gw.call(Method::GET, "/openapi.json", "", None).await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    let paths = doc["paths"].as_object().expect("paths");
    for (path, method) in [
        ("/v1/organizations", "post"),
        ("/v1/organizations", "get"),
        ("/v1/organizations/{id}/keys", "post"),
        ("/v1/organizations/{id}/keys/{key_id}", "delete"),
        ("/v1/integrations", "post"),
        ("/v1/integrations/{id}", "put"),
        ("/v1/webhooks", "get"),
        ("/v1/webhooks/{id}/secret/rotate", "post"),
        ("/v1/integrations/{id}/secret/rotate", "post"),
        ("/v1/stats", "get"),
        ("/v1/destinations", "get"),
        ("/v1/plugins/{name}", "put"),
        ("/v1/plugins/{name}/activate", "post"),
        ("/readyz", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing"
        );
    }
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    for schema in [
        "IntegrationIn",
        "IntegrationOut",
        "WebhookIn",
        "WebhookOut",
        "ErrorEnvelope",
    ] {
        assert!(schemas.contains_key(schema), "{schema} missing");
    }
}

/// Over `--rate-limit` an organization gets 429 with `Retry-After` and
/// nothing it sent is stored; other organizations and the operator are not
/// held back, and the budget refills.
#[tokio::test]
async fn an_organization_over_its_rate_gets_429_and_changes_nothing() {
    let gw = TestGateway::start_with(hookgate_tests::GatewayOptions {
        args: vec!["--rate-limit".into(), "5".into()],
        ..Default::default()
    })
    .await;
    let (_, noisy) = gw.organization("noisy").await;
    let (_, quiet) = gw.organization("quiet").await;

    // The burst is one second's worth; a tight loop spends it at once.
    let mut refused = None;
    for i in 0..50 {
        let response = gw
            .request(Method::POST, "/v1/events", &noisy)
            .json(&json!({"id": format!("evt_{i}"), "type": "order.created", "payload": {}}))
            .send()
            .await
            .expect("request");
        if response.status() == 429 {
            refused = Some((i, response));
            break;
        }
        assert_eq!(response.status(), 202, "event {i} within the rate");
    }
    let (index, response) = refused.expect("50 events at once exceed 5/s");
    assert!(index >= 1, "the first request is within any rate");
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a numeric Retry-After");
    assert!((1..=2).contains(&retry_after), "Retry-After {retry_after}");
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["data"]["code"], "rate_limited");

    // Neither another organization nor the operator is held back.
    let (status, _) = gw.call(Method::GET, "/v1/webhooks", &quiet, None).await;
    assert_eq!(status, 200);
    let (status, _) = gw
        .call(Method::GET, "/v1/organizations", ADMIN_KEY, None)
        .await;
    assert_eq!(status, 200);

    // After the wait the budget is back, and the refused event was never stored.
    tokio::time::sleep(std::time::Duration::from_secs(retry_after)).await;
    let (status, body) = gw
        .call(
            Method::GET,
            &format!("/v1/events/evt_{index}"),
            &noisy,
            None,
        )
        .await;
    assert_eq!(status, 404, "the refused event: {body}");
    let (status, body) = gw.call(Method::GET, "/v1/events/evt_0", &noisy, None).await;
    assert_eq!(status, 200, "an accepted event: {body}");

    let (_, doc) = gw.call(Method::GET, "/openapi.json", "", None).await;
    assert!(
        doc["paths"]["/v1/events"]["post"]["responses"]
            .get("429")
            .is_some(),
        "429 is documented on organization routes"
    );
}
