//! Authentication on delivery beyond a client secret in HTTP Basic: the
//! token request's options (`client_auth`, `scope`, `audience`,
//! `extra_params`, `token_field`), and token endpoints that answer badly.
//! Real gateway, real token endpoints and receivers on 127.0.0.1.

use hookgate_tests::peers::{MtlsServer, Receiver, Reply, TestPki, TokenAnswer, TokenServer};
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

/// The PyJWT token endpoint of `tests/peers/private_key_jwt_token_endpoint.py`.
struct JwtTokenEndpoint {
    url: String,
    rsa: String,
    ec: String,
    _child: tokio::process::Child,
}

impl JwtTokenEndpoint {
    async fn start() -> Self {
        use tokio::io::AsyncBufReadExt as _;
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/peers/private_key_jwt_token_endpoint.py"
        );
        let mut child = tokio::process::Command::new("python3")
            .arg(script)
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 runs the token endpoint (.ci/run installs PyJWT)");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        tokio::time::timeout(
            Duration::from_secs(30),
            tokio::io::BufReader::new(stdout).read_line(&mut line),
        )
        .await
        .expect("the token endpoint starts")
        .expect("read");
        let ready: Value = serde_json::from_str(&line).unwrap_or_else(|e| {
            panic!("the token endpoint did not start (is PyJWT installed?): {e}: {line:?}")
        });
        Self {
            url: format!("http://127.0.0.1:{}/token", ready["port"]),
            rsa: ready["rsa"].as_str().expect("rsa").to_owned(),
            ec: ready["ec"].as_str().expect("ec").to_owned(),
            _child: child,
        }
    }

    async fn log(&self) -> Value {
        reqwest::get(self.url.replace("/token", "/log"))
            .await
            .expect("log")
            .json()
            .await
            .expect("json")
    }
}

/// `private_key_jwt`: the gateway signs a fresh client assertion with the
/// integration's RS256 or ES256 key for every token request; an independent
/// verifier (PyJWT) accepts it, and refuses a replayed one. The key is
/// never returned, and a malformed PEM is a 400 naming the field.
#[tokio::test]
async fn private_key_jwt_assertions_are_accepted_by_an_independent_verifier() {
    let gw = gateway().await;
    let (_, key) = gw.organization("jwt").await;
    let endpoint = JwtTokenEndpoint::start().await;
    // Each receiver refuses the first token it sees, so the gateway
    // fetches again: a second assertion, with a new jti.
    let receiver = Receiver::scripted(|_, h| {
        let auth = h
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        Reply::status(if auth == "Bearer jwt-tok-1" { 401 } else { 200 })
    })
    .await;
    for (hook, pem, kid) in [
        ("rs.event", &endpoint.rsa, "rsa-1"),
        ("es.event", &endpoint.ec, "ec-1"),
    ] {
        let auth = json!({
            "grant_type": "client_credentials",
            "endpoint": endpoint.url,
            "client_auth": "private_key_jwt",
            "credentials": {"client_id": "jwt-client", "private_key": pem, "key_id": kid},
        });
        let (status, created) = gw
            .call(
                Method::POST,
                "/v1/integrations",
                &key,
                Some(integration(hook, &receiver.url, auth)),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        let credentials = &created["data"]["authentication"]["credentials"];
        assert_eq!(credentials["private_key"], "[redacted]");
        assert_eq!(credentials["key_id"], kid);
        assert!(credentials.get("client_secret").is_none(), "{credentials}");
        assert!(
            !created.to_string().contains("PRIVATE KEY"),
            "the key is never returned"
        );
        let id = post_event(&gw, &key, hook).await;
        wait_for(&gw, &key, &id, |d| d["status"] == "delivered").await;
    }
    let log = endpoint.log().await;
    let accepted = log["accepted"].as_array().expect("accepted");
    let algs: Vec<&str> = accepted.iter().filter_map(|a| a["alg"].as_str()).collect();
    assert_eq!(algs, ["RS256", "RS256", "ES256"], "{log}");
    let kids: Vec<&str> = accepted.iter().filter_map(|a| a["kid"].as_str()).collect();
    assert_eq!(kids, ["rsa-1", "rsa-1", "ec-1"]);
    assert_eq!(log["refused"], json!([]), "{log}");
    let got: Vec<String> = receiver
        .received()
        .iter()
        .map(|r| r.header("authorization").unwrap_or("").to_owned())
        .collect();
    assert_eq!(
        got,
        ["Bearer jwt-tok-1", "Bearer jwt-tok-2", "Bearer jwt-tok-3"]
    );

    // The verifier is not a rubber stamp: a replayed assertion is refused.
    let replay = accepted[0]["assertion"].as_str().expect("assertion");
    let answer = reqwest::Client::new()
        .post(&endpoint.url)
        .form(&[
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", replay),
        ])
        .send()
        .await
        .expect("replay");
    assert_eq!(answer.status(), 400);
    assert_eq!(
        answer.json::<Value>().await.expect("json")["error"],
        "invalid_grant"
    );

    for (pem, field) in [
        (
            "-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n",
            "authentication.credentials.private_key",
        ),
        ("just text", "authentication.credentials.private_key"),
    ] {
        let auth = json!({"grant_type": "client_credentials", "endpoint": endpoint.url, "client_auth": "private_key_jwt", "credentials": {"client_id": "jwt-client", "private_key": pem}});
        let (status, body) = gw
            .call(
                Method::POST,
                "/v1/integrations",
                &key,
                Some(integration("bad.key", &receiver.url, auth)),
            )
            .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["data"]["errors"][0]["field"], field, "{body}");
    }
}

/// A stored secret or key is bound to the token endpoint's origin and to
/// its kind: moving the endpoint, or switching from a secret to a key,
/// needs the credential again (400, nothing changed).
#[tokio::test]
async fn credentials_stay_bound_to_their_endpoint() {
    let gw = gateway().await;
    let (_, key) = gw.organization("bound").await;
    let endpoint = JwtTokenEndpoint::start().await;
    let auth = json!({"grant_type": "client_credentials", "endpoint": endpoint.url, "client_auth": "private_key_jwt", "credentials": {"client_id": "jwt-client", "private_key": endpoint.ec}});
    let (_, created) = gw
        .call(
            Method::POST,
            "/v1/integrations",
            &key,
            Some(integration("t", "http://127.0.0.1:9/hook", auth)),
        )
        .await;
    let id = created["data"]["id"].as_str().expect("id").to_owned();
    let put = |doc: Value| {
        let gw = &gw;
        let key = key.clone();
        let id = id.clone();
        async move {
            gw.call(
                Method::PUT,
                &format!("/v1/integrations/{id}"),
                &key,
                Some(doc),
            )
            .await
        }
    };
    // The document as read back (key redacted) is accepted as is.
    let (status, body) = put(created["data"].clone()).await;
    assert_eq!(status, 200, "{body}");
    for (change, value) in [
        ("endpoint", json!("http://127.0.0.2:9/token")),
        ("client_auth", json!("client_secret_post")),
    ] {
        let mut doc = created["data"].clone();
        doc["authentication"][change] = value;
        let (status, body) = put(doc).await;
        assert_eq!(status, 400, "{change}: {body}");
        let field = body["data"]["errors"][0]["field"].as_str().expect("field");
        assert!(field.starts_with("authentication.credentials."), "{body}");
    }
    let (_, now) = gw
        .call(Method::GET, &format!("/v1/integrations/{id}"), &key, None)
        .await;
    assert_eq!(
        now["data"]["authentication"], created["data"]["authentication"],
        "nothing changed"
    );
}

/// Mutual TLS: an integration's client certificate is presented to its
/// token endpoint and its hooks, on a server that refuses any connection
/// without one; the server's private CA is trusted through the operator's
/// `--tls-ca-file`. The key is never returned; PEMs that do not read, or a
/// key that is not the certificate's, are 400s naming the field.
#[tokio::test]
async fn a_client_certificate_opens_mtls_receivers_and_token_endpoints() {
    let pki = TestPki::new();
    let server = MtlsServer::start(&pki).await;
    let ca = tempfile::NamedTempFile::new().expect("ca file");
    std::fs::write(ca.path(), &pki.ca).expect("write ca");
    let gw = TestGateway::start_with(GatewayOptions {
        args: vec![
            "--retry-schedule".into(),
            "0s,1500ms,1500ms".into(),
            "--delivery-timeout".into(),
            "2s".into(),
            "--tls-ca-file".into(),
            ca.path().display().to_string(),
        ],
        ..Default::default()
    })
    .await;
    let (_, key) = gw.organization("mtls").await;
    let auth = |tls: Option<Value>| {
        let mut auth = json!({
            "grant_type": "client_credentials",
            "endpoint": format!("{}/token", server.url),
            "credentials": {"client_id": "c", "client_secret": "s"},
        });
        if let Some(tls) = tls {
            auth["tls_client_certificate"] = tls;
        }
        auth
    };
    let hook = format!("{}/hook", server.url);
    let with_cert = json!({"certificate": pki.client.0, "private_key": pki.client.1});
    let (status, created) = gw
        .call(
            Method::POST,
            "/v1/integrations",
            &key,
            Some(integration("mtls.event", &hook, auth(Some(with_cert)))),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let tls = &created["data"]["authentication"]["tls_client_certificate"];
    assert_eq!(tls["private_key"], "[redacted]");
    assert_eq!(tls["certificate"], pki.client.0.as_str());
    assert!(
        !created.to_string().contains("PRIVATE KEY"),
        "the key is never returned"
    );

    let id = post_event(&gw, &key, "mtls.event").await;
    wait_for(&gw, &key, &id, |d| d["status"] == "delivered").await;
    let got = server.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].header("authorization"), Some("Bearer mtls-tok-1"));

    // The same destination without a certificate: the handshake is refused
    // at the token endpoint, the attempt fails with that reason, retried.
    let refused_before = server.handshakes_refused();
    gw.call(
        Method::POST,
        "/v1/integrations",
        &key,
        Some(integration("plain.event", &hook, auth(None))),
    )
    .await;
    let id = post_event(&gw, &key, "plain.event").await;
    let d = wait_for(&gw, &key, &id, |d| d["lastError"].is_string()).await;
    assert_eq!(d["status"], "pending", "{d}");
    assert!(
        d["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("token endpoint")),
        "{d}"
    );
    assert!(server.handshakes_refused() > refused_before);
    assert_eq!(server.received().len(), 1, "nothing got through");

    for (tls, field) in [
        (
            json!({"certificate": "not a certificate", "private_key": pki.client.1}),
            "authentication.tls_client_certificate.certificate",
        ),
        (
            json!({"certificate": pki.client.0, "private_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}),
            "authentication.tls_client_certificate.private_key",
        ),
        (
            json!({"certificate": pki.client.0, "private_key": pki.server.1}),
            "authentication.tls_client_certificate.private_key",
        ),
        (
            json!({"certificate": pki.client.0}),
            "authentication.tls_client_certificate.private_key",
        ),
    ] {
        let (status, body) = gw
            .call(
                Method::POST,
                "/v1/integrations",
                &key,
                Some(integration("bad.cert", &hook, auth(Some(tls)))),
            )
            .await;
        assert_eq!(status, 400, "{body}");
        let fields: Vec<&str> = body["data"]["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .filter_map(|e| e["field"].as_str())
            .collect();
        assert!(fields.contains(&field), "{field}: {body}");
    }
}
