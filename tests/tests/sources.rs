//! Sources: providers' own signed webhooks posted to
//! `POST /v1/ingest/{sourceId}`, verified at the door (Standard Webhooks,
//! GitHub, Stripe, Shopify, a generic HMAC header) and turned into events
//! that are routed and delivered like any other. Signatures are made by
//! each provider's published algorithm; the Standard Webhooks one by the
//! `standardwebhooks` package, and the Stripe one checked by Stripe's own
//! library before the gateway sees it.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use hookgate_tests::TestGateway;
use hookgate_tests::peers::Receiver;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;
use std::io::Write as _;

const STANDARD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn hmac(secret: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("key");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

/// Runs `tests/peers/provider_signatures.py` with `body` on stdin.
fn provider(args: &[&str], body: &[u8]) -> std::process::Output {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/peers/provider_signatures.py");
    let mut child = std::process::Command::new("python3")
        .arg(script)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(body)
        .expect("write");
    child.wait_with_output().expect("run")
}

fn standard_webhooks_signature(msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let out = provider(
        &[
            "standard-webhooks",
            STANDARD_SECRET,
            msg_id,
            &timestamp.to_string(),
        ],
        body,
    );
    assert!(
        out.status.success(),
        "standardwebhooks (PyPI) signs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_owned()
}

fn stripe_signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mac = hmac(
        secret.as_bytes(),
        &[timestamp.to_string().as_bytes(), b".", body],
    );
    let header = format!("t={timestamp},v1={}", hex::encode(mac));
    let out = provider(&["stripe-verify", secret, &header], body);
    assert!(
        out.status.success(),
        "Stripe's library accepts the test's signature: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    header
}

async fn ingest(
    gw: &TestGateway,
    source: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> (u16, Value) {
    let mut request = gw
        .http
        .post(format!("{}/v1/ingest/{source}", gw.url))
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.expect("post");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn source(gw: &TestGateway, key: &str, name: &str, verify: Value) -> String {
    let (status, body) = gw
        .call(
            Method::POST,
            "/v1/sources",
            key,
            Some(json!({"name": name, "verify": verify})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["data"]["verify"]["secret"], "[redacted]");
    let id = body["data"]["id"].as_str().expect("id").to_owned();
    assert_eq!(body["data"]["ingestUrl"], format!("/v1/ingest/{id}"));
    id
}

async fn events_total(gw: &TestGateway, key: &str) -> i64 {
    let (_, list) = gw.call(Method::GET, "/v1/deliveries", key, None).await;
    list["data"]["total"].as_i64().expect("total")
}

#[tokio::test]
async fn each_provider_s_signed_webhook_becomes_a_delivered_event() {
    let gw = TestGateway::start().await;
    let (_, key) = gw.organization("sources").await;
    let receiver = Receiver::ok().await;
    for topic in [
        "user.created",
        "push",
        "invoice.paid",
        "orders.create",
        "source.generic",
    ] {
        let (status, body) = gw
            .call(
                Method::POST,
                "/v1/webhooks",
                &key,
                Some(json!({"topic": topic, "url": receiver.url})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let standard = source(
        &gw,
        &key,
        "acme",
        json!({"scheme": "standard-webhooks", "secret": STANDARD_SECRET}),
    )
    .await;
    let github = source(
        &gw,
        &key,
        "github",
        json!({"scheme": "github", "secret": "gh-secret"}),
    )
    .await;
    let stripe = source(
        &gw,
        &key,
        "stripe",
        json!({"scheme": "stripe", "secret": "whsec_stripe_test"}),
    )
    .await;
    let shopify = source(
        &gw,
        &key,
        "shopify",
        json!({"scheme": "shopify", "secret": "shpss_secret"}),
    )
    .await;
    let generic = source(
        &gw,
        &key,
        "generic",
        json!({"scheme": "hmac-sha256", "secret": "generic-secret", "header": "X-Signature"}),
    )
    .await;

    let t = now();
    let body = br#"{"type":"user.created","data":{"id":"u_1"}}"#;
    let standard_headers = [
        ("webhook-id", "msg_1".to_owned()),
        ("webhook-timestamp", t.to_string()),
        (
            "webhook-signature",
            standard_webhooks_signature("msg_1", t, body),
        ),
    ];
    let (status, first) = ingest(&gw, &standard, &standard_headers, body).await;
    assert_eq!(status, 202, "{first}");
    // The provider retries the same message: nothing new.
    let (status, again) = ingest(&gw, &standard, &standard_headers, body).await;
    assert_eq!(status, 202);
    assert_eq!(again["data"]["created"], false, "{again}");
    assert_eq!(again["data"]["eventId"], first["data"]["eventId"]);

    let push = br#"{"ref":"refs/heads/main"}"#;
    let (status, answer) = ingest(
        &gw,
        &github,
        &[
            (
                "x-hub-signature-256",
                format!("sha256={}", hex::encode(hmac(b"gh-secret", &[push]))),
            ),
            ("x-github-event", "push".into()),
            (
                "x-github-delivery",
                "72d3162e-cc78-11e3-81ab-4c9367dc0958".into(),
            ),
        ],
        push,
    )
    .await;
    assert_eq!(status, 202, "{answer}");

    let invoice = br#"{"id":"evt_1","type":"invoice.paid","data":{"object":{"id":"in_1"}}}"#;
    let (status, answer) = ingest(
        &gw,
        &stripe,
        &[(
            "stripe-signature",
            stripe_signature("whsec_stripe_test", t, invoice),
        )],
        invoice,
    )
    .await;
    assert_eq!(status, 202, "{answer}");

    let order = br#"{"id":820982911946154508,"email":"jon@example.com"}"#;
    let (status, answer) = ingest(
        &gw,
        &shopify,
        &[
            (
                "x-shopify-hmac-sha256",
                base64::engine::general_purpose::STANDARD.encode(hmac(b"shpss_secret", &[order])),
            ),
            ("x-shopify-topic", "orders/create".into()),
            (
                "x-shopify-webhook-id",
                "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043".into(),
            ),
        ],
        order,
    )
    .await;
    assert_eq!(status, 202, "{answer}");

    let anything = br#"{"hello":"world"}"#;
    let (status, answer) = ingest(
        &gw,
        &generic,
        &[(
            "x-signature",
            format!(
                "sha256={}",
                hex::encode(hmac(b"generic-secret", &[anything]))
            ),
        )],
        anything,
    )
    .await;
    assert_eq!(status, 202, "{answer}");

    // Subscriptions get the Standard Webhooks envelope: the provider's body
    // is its `data`, the provider's type its `type`.
    let got = receiver.wait_for(5).await;
    let mut delivered: Vec<(String, Value)> = got
        .iter()
        .map(|r| {
            let envelope = r.json();
            (
                envelope["type"].as_str().expect("type").to_owned(),
                envelope["data"].clone(),
            )
        })
        .collect();
    delivered.sort_by(|a, b| a.0.cmp(&b.0));
    let sent: Vec<(String, Value)> = [
        ("invoice.paid", &invoice[..]),
        ("orders.create", order),
        ("push", push),
        ("source.generic", anything),
        ("user.created", body),
    ]
    .iter()
    .map(|(t, b)| (t.to_string(), serde_json::from_slice(b).expect("json")))
    .collect();
    assert_eq!(
        delivered, sent,
        "each provider's body delivered once, with its type"
    );
    assert_eq!(events_total(&gw, &key).await, 5);
}

/// What is wrong, the source, the headers, the body.
type Refusal<'a> = (&'a str, &'a String, Vec<(&'a str, String)>, &'a [u8]);

#[tokio::test]
async fn unsigned_wrong_or_stale_requests_are_refused_and_store_nothing() {
    let gw = TestGateway::start().await;
    let (_, key) = gw.organization("strict").await;
    let receiver = Receiver::ok().await;
    gw.call(
        Method::POST,
        "/v1/webhooks",
        &key,
        Some(json!({"topic": "*", "url": receiver.url})),
    )
    .await;
    let standard = source(
        &gw,
        &key,
        "acme",
        json!({"scheme": "standard-webhooks", "secret": STANDARD_SECRET}),
    )
    .await;
    let github = source(
        &gw,
        &key,
        "github",
        json!({"scheme": "github", "secret": "gh-secret"}),
    )
    .await;
    let stripe = source(
        &gw,
        &key,
        "stripe",
        json!({"scheme": "stripe", "secret": "whsec_stripe_test"}),
    )
    .await;
    let shopify = source(
        &gw,
        &key,
        "shopify",
        json!({"scheme": "shopify", "secret": "shpss_secret"}),
    )
    .await;
    let body = br#"{"type":"user.created"}"#;
    let t = now();
    let good_github = format!("sha256={}", hex::encode(hmac(b"gh-secret", &[body])));
    let refusals: Vec<Refusal> = vec![
        ("no signature", &github, vec![], body),
        (
            "another secret",
            &github,
            vec![(
                "x-hub-signature-256",
                format!("sha256={}", hex::encode(hmac(b"guess", &[body]))),
            )],
            body,
        ),
        (
            "a changed body",
            &github,
            vec![("x-hub-signature-256", good_github.clone())],
            br#"{"type":"user.deleted"}"#,
        ),
        (
            "not hex",
            &github,
            vec![("x-hub-signature-256", "sha256=zz".into())],
            body,
        ),
        (
            "stale standard webhook",
            &standard,
            vec![
                ("webhook-id", "msg_old".into()),
                ("webhook-timestamp", (t - 600).to_string()),
                (
                    "webhook-signature",
                    standard_webhooks_signature("msg_old", t - 600, body),
                ),
            ],
            body,
        ),
        (
            "standard webhook signed for another id",
            &standard,
            vec![
                ("webhook-id", "msg_other".into()),
                ("webhook-timestamp", t.to_string()),
                (
                    "webhook-signature",
                    standard_webhooks_signature("msg_1", t, body),
                ),
            ],
            body,
        ),
        (
            "stale stripe",
            &stripe,
            vec![(
                "stripe-signature",
                format!(
                    "t={},v1={}",
                    t - 400,
                    hex::encode(hmac(
                        b"whsec_stripe_test",
                        &[(t - 400).to_string().as_bytes(), b".", body]
                    ))
                ),
            )],
            body,
        ),
        (
            "shopify with github's header",
            &shopify,
            vec![("x-hub-signature-256", good_github.clone())],
            body,
        ),
    ];
    for (what, source, headers, sent) in refusals {
        let (status, answer) = ingest(&gw, source, &headers, sent).await;
        assert_eq!(status, 401, "{what}: {answer}");
        assert_eq!(
            answer["data"]["code"], "invalid_signature",
            "{what}: {answer}"
        );
        assert!(!answer.to_string().contains("gh-secret"), "{answer}");
    }
    // A correctly signed body that is not JSON, an unknown source, a body too large.
    let text = b"not json";
    let (status, _) = ingest(
        &gw,
        &github,
        &[(
            "x-hub-signature-256",
            format!("sha256={}", hex::encode(hmac(b"gh-secret", &[text]))),
        )],
        text,
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = ingest(&gw, "src_nope", &[], body).await;
    assert_eq!(status, 404);
    let big = vec![b' '; 2 << 20];
    let (status, _) = ingest(
        &gw,
        &github,
        &[("x-hub-signature-256", "sha256=00".into())],
        &big,
    )
    .await;
    assert_eq!(status, 413);
    assert_eq!(events_total(&gw, &key).await, 0, "nothing stored");
    assert!(receiver.received().is_empty());

    // Another organization's key sees none of these sources.
    let (_, other) = gw.organization("other").await;
    let (status, _) = gw
        .call(Method::GET, &format!("/v1/sources/{github}"), &other, None)
        .await;
    assert_eq!(status, 404);
    let (_, list) = gw.call(Method::GET, "/v1/sources", &other, None).await;
    assert_eq!(list["data"]["total"], 0);
    // Deleted, its URL is gone.
    let (status, _) = gw
        .call(Method::DELETE, &format!("/v1/sources/{github}"), &key, None)
        .await;
    assert_eq!(status, 200);
    let (status, _) = ingest(&gw, &github, &[("x-hub-signature-256", good_github)], body).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn sources_are_validated() {
    let gw = TestGateway::start().await;
    let (_, key) = gw.organization("v").await;
    for (doc, field) in [
        (
            json!({"name": "a b", "verify": {"scheme": "github", "secret": "s"}}),
            "name",
        ),
        (
            json!({"name": "a", "verify": {"scheme": "gitlab", "secret": "s"}}),
            "verify.scheme",
        ),
        (
            json!({"name": "a", "verify": {"scheme": "github"}}),
            "verify.secret",
        ),
        (
            json!({"name": "a", "verify": {"scheme": "standard-webhooks", "secret": "plain"}}),
            "verify.secret",
        ),
        (
            json!({"name": "a", "verify": {"scheme": "hmac-sha256", "secret": "s"}}),
            "verify.header",
        ),
        (
            json!({"name": "a", "verify": {"scheme": "hmac-sha256", "secret": "s", "header": "Host"}}),
            "verify.header",
        ),
        (
            json!({"name": "a", "verify": {"scheme": "github", "secret": "s", "header": "X-Sig"}}),
            "verify.header",
        ),
    ] {
        let (status, body) = gw
            .call(Method::POST, "/v1/sources", &key, Some(doc.clone()))
            .await;
        assert_eq!(status, 400, "{doc}: {body}");
        let fields: Vec<&str> = body["data"]["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .filter_map(|e| e["field"].as_str())
            .collect();
        assert!(fields.contains(&field), "{doc}: {body}");
    }
    let (status, _) = gw
        .call(
            Method::POST,
            "/v1/sources",
            &key,
            Some(json!({"name": "a", "verify": {"scheme": "github", "secret": "s"}, "extra": 1})),
        )
        .await;
    assert_eq!(status, 400, "unknown fields are refused");
    let (_, list) = gw.call(Method::GET, "/v1/sources", &key, None).await;
    assert_eq!(list["data"]["total"], 0);
}

/// A source's verified requests count against its organization's rate
/// (`--rate-limit`): past it, 429 with `Retry-After` and nothing stored.
/// Requests that fail verification are refused before they count, so
/// nobody without the secret can spend the organization's budget.
#[tokio::test]
async fn verified_requests_count_against_the_organization_s_rate() {
    let gw = TestGateway::start_with(hookgate_tests::GatewayOptions {
        args: vec!["--rate-limit".into(), "5".into()],
        ..Default::default()
    })
    .await;
    let (_, key) = gw.organization("limited").await;
    let hook = source(
        &gw,
        &key,
        "generic",
        json!({"scheme": "hmac-sha256", "secret": "generic-secret", "header": "X-Signature"}),
    )
    .await;
    // Unsigned requests, far past the rate: each is a 401, none a 429.
    for n in 0..40 {
        let body = format!(r#"{{"n": {n}}}"#);
        let (status, answer) =
            ingest(&gw, &hook, &[("x-signature", "00".into())], body.as_bytes()).await;
        assert_eq!(status, 401, "{answer}");
    }
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    // Signed ones: within the burst, then refused with a wait.
    let mut accepted = 0;
    let mut refused = None;
    for n in 0..50 {
        let body = format!(r#"{{"n": {n}}}"#);
        let signature = hex::encode(hmac(b"generic-secret", &[body.as_bytes()]));
        let (status, answer) =
            ingest(&gw, &hook, &[("x-signature", signature)], body.as_bytes()).await;
        match status {
            202 => accepted += 1,
            429 => {
                refused = Some(answer);
                break;
            }
            other => panic!("{other}: {answer}"),
        }
    }
    let refused = refused.expect("50 requests at once exceed 5/s");
    assert_eq!(
        refused["message"].as_str().map(|m| m.is_empty()),
        Some(false)
    );
    assert!((1..50).contains(&accepted), "{accepted}");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (_, stats) = gw.call(Method::GET, "/v1/stats", &key, None).await;
    let stored: i64 = stats["data"]["buckets"]
        .as_array()
        .expect("buckets")
        .iter()
        .map(|b| b["events"].as_i64().unwrap_or(0))
        .sum();
    assert_eq!(
        stored, accepted,
        "only the accepted requests stored an event"
    );
}

/// With `--public-url`, a source's `ingestUrl` is the address to give the
/// provider; without it (the other tests), a path.
#[tokio::test]
async fn the_ingest_url_is_absolute_under_the_public_url() {
    let gw = TestGateway::start_with(hookgate_tests::GatewayOptions {
        args: vec![
            "--public-url".into(),
            "https://hooks.example.com/gw/".into(),
        ],
        ..Default::default()
    })
    .await;
    let (_, key) = gw.organization("public").await;
    let (status, body) = gw
        .call(
            Method::POST,
            "/v1/sources",
            &key,
            Some(json!({"name": "gh", "verify": {"scheme": "github", "secret": "s"}})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["data"]["id"].as_str().expect("id");
    assert_eq!(
        body["data"]["ingestUrl"],
        format!("https://hooks.example.com/gw/v1/ingest/{id}")
    );
    let (_, listed) = gw.call(Method::GET, "/v1/sources", &key, None).await;
    assert_eq!(
        listed["data"]["items"][0]["ingestUrl"],
        body["data"]["ingestUrl"]
    );
}
