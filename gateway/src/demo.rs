//! `hookgate demo`: the whole pipeline in a minute. Starts the gateway on
//! embedded SQLite with the plugin folder loaded, a local OAuth2 token
//! endpoint and a local receiver (both on loopback, in this process), sets
//! up an organization with an OAuth integration (partner plugin) and a
//! webhook subscription (slack plugin), posts sample events and prints the
//! deliveries as they arrive. Keeps serving until Ctrl-C, posting an order
//! every few seconds (quietly) so the dashboard shows events flowing.

use crate::config::ServeSettings;
use anyhow::Context;
use axum::body::Bytes;
use axum::http::HeaderMap;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Runs the demo until `cancel` fires.
pub async fn run(mut settings: ServeSettings, cancel: CancellationToken) -> anyhow::Result<()> {
    let admin_key = settings
        .admin_key
        .get_or_insert_with(|| crate::model::Secret::new("demo-admin-key-change-me"))
        .expose()
        .to_owned();
    settings.allow_private_destinations = true;
    settings.workers.http.allow_private = true;
    let listener = TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("could not listen on {}", settings.listen))?;
    let base = format!("http://{}", listener.local_addr()?);
    let gateway = tokio::spawn(crate::server::run(settings, listener, cancel.clone()));

    let token_url = serve_peer(token_router(), cancel.clone()).await? + "/oauth/token";
    let printing = Arc::new(AtomicBool::new(true));
    let receiver_url = serve_peer(receiver_router(printing.clone()), cancel.clone()).await?;
    let http = reqwest::Client::new();
    wait_ready(&http, &base).await?;
    println!("\n== Hookgate demo: gateway at {base} (admin key: {admin_key})");
    println!("   token endpoint {token_url}, receiver {receiver_url}\n");

    let (key, plugins) = organization(&http, &base, &admin_key).await?;
    routes(&http, &base, &key, &plugins, &token_url, &receiver_url).await?;
    post_samples(&http, &base, &key).await?;
    println!(
        "\nThe gateway keeps running. Dashboard: {base}/ui/ — sign in with the key {key}\n\
         (or the admin key for plugins). API: `curl -H 'Authorization: Bearer {key}' {base}/v1/deliveries`.\n\
         An order is posted every {}s from now on (not printed) so the dashboard has events to show. Ctrl-C stops it.",
        TRICKLE.as_secs()
    );
    printing.store(false, Ordering::Relaxed);
    tokio::spawn(trickle(http, base, key, cancel));
    gateway.await??;
    Ok(())
}

/// Creates the demo's organization; its API key and the plugins loaded.
async fn organization(
    http: &reqwest::Client,
    base: &str,
    admin_key: &str,
) -> anyhow::Result<(String, Vec<String>)> {
    let org = call(
        http,
        "POST",
        &format!("{base}/v1/organizations"),
        admin_key,
        Some(json!({"name": "Demo Shop"})),
    )
    .await?;
    let key = org["data"]["apiKey"]
        .as_str()
        .context("no api key")?
        .to_owned();
    println!(
        "organization {} — API key {key}",
        org["data"]["id"].as_str().unwrap_or("")
    );
    let plugins = call(http, "GET", &format!("{base}/v1/plugins"), admin_key, None).await?;
    let names: Vec<&str> = plugins["data"]
        .as_array()
        .map(|a| a.iter().filter_map(|p| p["name"].as_str()).collect())
        .unwrap_or_default();
    println!(
        "plugins loaded: {}",
        if names.is_empty() {
            "none (run `./dev plugins`)".to_owned()
        } else {
            names.join(", ")
        }
    );

    let names = names.into_iter().map(str::to_owned).collect();
    Ok((key, names))
}

/// The demo's routes: an OAuth2 integration (partner plugin) and a
/// subscription (slack plugin), to the local token endpoint and receiver.
async fn routes(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    names: &[String],
    token_url: &str,
    receiver_url: &str,
) -> anyhow::Result<()> {
    let partner = names
        .iter()
        .any(|n| n == "partner")
        .then(|| json!({"name": "partner"}));
    let integration = call(
        http,
        "POST",
        &format!("{base}/v1/integrations"),
        key,
        Some(json!({
            "name": "Partner CRM",
            "description": "order events, reshaped by the partner plugin, with an OAuth2 bearer token",
            "hooks": [
                {"type": "order_created", "method": "POST", "endpoint": format!("{receiver_url}/crm/orders")},
                {"type": "order_updated", "method": "POST", "endpoint": format!("{receiver_url}/crm/orders")},
            ],
            "authentication": {
                "grant_type": "client_credentials",
                "endpoint": token_url,
                "credentials": {"client_id": "demo-client", "client_secret": "demo-secret"},
                "header_format": "Authorization",
                "header_value_format": "Bearer %ACCESS_TOKEN%",
            },
            "plugin": partner,
            "config": {"companyId": "demo-co"},
        })),
    )
    .await?;
    println!(
        "integration {} (signing secret {})",
        integration["data"]["id"].as_str().unwrap_or(""),
        integration["data"]["signingSecret"].as_str().unwrap_or("")
    );
    let slack = names
        .iter()
        .any(|n| n == "slack")
        .then(|| json!({"name": "slack"}));
    let webhook = call(
        http,
        "POST",
        &format!("{base}/v1/webhooks"),
        key,
        Some(json!({"topic": "order_created", "url": format!("{receiver_url}/slack"), "name": "orders to chat", "plugin": slack})),
    )
    .await?;
    println!(
        "webhook {} → {receiver_url}/slack\n",
        webhook["data"]["id"].as_str().unwrap_or("")
    );

    Ok(())
}

/// Posts the sample events, then prints where each went.
async fn post_samples(http: &reqwest::Client, base: &str, key: &str) -> anyhow::Result<()> {
    let samples = [
        json!({"id": "demo-order-1", "type": "order_created", "payload": {"id": "A-1001", "order_id": "A-1001", "total": 129.9, "currency": "EUR", "customer": {"email": "ada@example.com"}}}),
        json!({"id": "demo-order-2", "type": "order_updated", "payload": {"id": "A-1001", "order_id": "A-1001", "status": "shipped"}}),
        json!({"id": "demo-order-3", "type": "order_created", "payload": {"id": "A-1002", "order_id": "A-1002", "total": 15, "currency": "EUR"}}),
    ];
    for sample in samples {
        let accepted = call(
            http,
            "POST",
            &format!("{base}/v1/events"),
            key,
            Some(sample.clone()),
        )
        .await?;
        println!(
            "posted {} ({}) → 202, deliveries {}",
            sample["id"].as_str().unwrap_or(""),
            sample["type"].as_str().unwrap_or(""),
            accepted["data"]["deliveries"]
        );
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    for id in ["demo-order-1", "demo-order-2", "demo-order-3"] {
        let event = call(http, "GET", &format!("{base}/v1/events/{id}"), key, None).await?;
        let statuses: Vec<String> = event["data"]["deliveries"]
            .as_array()
            .map(|d| {
                d.iter()
                    .map(|d| {
                        format!(
                            "{} {}",
                            d["endpoint"].as_str().unwrap_or(""),
                            d["status"].as_str().unwrap_or("")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        println!("event {id}: {}", statuses.join("; "));
    }
    Ok(())
}

/// How often the demo posts an order once set up.
const TRICKLE: Duration = Duration::from_secs(5);

/// Posts an order every [`TRICKLE`] until `cancel` fires.
async fn trickle(http: reqwest::Client, base: String, key: String, cancel: CancellationToken) {
    for n in 4u64.. {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(TRICKLE) => {}
        }
        let order = format!("A-{}", 1000 + n);
        let event = json!({"id": format!("demo-order-{n}"), "type": "order_created",
            "payload": {"id": order, "order_id": order, "total": (n * 37 % 200) as f64 + 0.5, "currency": "EUR"}});
        if let Err(error) = call(
            &http,
            "POST",
            &format!("{base}/v1/events"),
            &key,
            Some(event),
        )
        .await
        {
            tracing::warn!(%error, "the demo could not post an order");
        }
    }
}

async fn wait_ready(http: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    for _ in 0..200 {
        if http
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("the gateway did not become ready")
}

async fn call(
    http: &reqwest::Client,
    method: &str,
    url: &str,
    key: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let method = reqwest::Method::from_bytes(method.as_bytes())?;
    let mut request = http.request(method, url).bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await?;
    let status = response.status();
    let value: Value = response.json().await?;
    anyhow::ensure!(status.is_success(), "{url} answered {status}: {value}");
    Ok(value)
}

async fn serve_peer(router: axum::Router, cancel: CancellationToken) -> anyhow::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(cancel.cancelled_owned())
            .await;
    });
    Ok(url)
}

fn token_router() -> axum::Router {
    let issued = Arc::new(AtomicUsize::new(0));
    axum::Router::new().route(
        "/oauth/token",
        axum::routing::post(move || {
            let n = issued.fetch_add(1, Ordering::SeqCst) + 1;
            println!("   [token endpoint] issued demo-token-{n}");
            async move { axum::Json(json!({"access_token": format!("demo-token-{n}"), "token_type": "bearer", "expires_in": 3600})) }
        }),
    )
}

/// A receiver that prints what it gets while `printing` is set.
fn receiver_router(printing: Arc<AtomicBool>) -> axum::Router {
    axum::Router::new().fallback(
        move |uri: axum::http::Uri, headers: HeaderMap, body: Bytes| async move {
            if !printing.load(Ordering::Relaxed) {
                return "ok";
            }
            let h = |n: &str| {
                headers
                    .get(n)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-")
                    .to_owned()
            };
            println!(
                "   [receiver {}] webhook-id {} auth {:?} signature {}…\n      {}",
                uri.path(),
                h("webhook-id"),
                h("authorization"),
                h("webhook-signature").chars().take(20).collect::<String>(),
                String::from_utf8_lossy(&body)
                    .chars()
                    .take(300)
                    .collect::<String>()
            );
            "ok"
        },
    )
}
