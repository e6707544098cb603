//! Filters: the cost per event of 100 filtered subscriptions on one topic.
//! Prints, from one run: the pure evaluation (100 filters against one
//! event, in process), and the ingest rate over HTTP (SQLite, 64 concurrent
//! posters) of one topic with 100 filtered subscriptions of which one
//! matches each event, beside the same topic with one unfiltered
//! subscription (both: one delivery per event).
//!
//! `cargo bench -p hookgate-tests --bench filters` (optional argument:
//! events per run, default 5000)

use hookgate::model::{Filter, FilterInput};
use hookgate_tests::TestGateway;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SUBSCRIPTIONS: usize = 100;

fn filter(k: usize) -> serde_json::Value {
    json!({"payload.n": k, "payload.total": {"$gte": 0}, "type": "order_created"})
}

#[tokio::main]
async fn main() {
    let events: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5_000);
    evaluation();

    let receiver = hookgate_tests::peers::Receiver::ok().await;
    let gw = TestGateway::start().await;
    let (_, plain) = gw.organization("plain").await;
    subscribe(&gw, &plain, &receiver.url, None).await;
    let (_, filtered) = gw.organization("filtered").await;
    for k in 0..SUBSCRIPTIONS {
        subscribe(&gw, &filtered, &receiver.url, Some(filter(k))).await;
    }
    // Warm up both, then measure each twice, interleaved.
    post(&gw, &plain, 500).await;
    post(&gw, &filtered, 500).await;
    let mut rates = [Vec::new(), Vec::new()];
    for _ in 0..2 {
        rates[0].push(post(&gw, &plain, events).await);
        rates[1].push(post(&gw, &filtered, events).await);
    }
    let best = |r: &[f64]| r.iter().copied().fold(0.0, f64::max);
    let (plain_rate, filtered_rate) = (best(&rates[0]), best(&rates[1]));
    println!(
        "ingest over HTTP, one delivery per event: 1 unfiltered subscription {plain_rate:.0} events/s; \
         {SUBSCRIPTIONS} filtered subscriptions {filtered_rate:.0} events/s \
         ({:+.1} µs per event)",
        (1.0 / filtered_rate - 1.0 / plain_rate) * 1e6
    );
}

/// 100 filters against one event, as ingest does it (the payload parsed
/// once per event).
fn evaluation() {
    let filters: Vec<Filter> = (0..SUBSCRIPTIONS)
        .map(|k| Filter::parse(&filter(k)).expect("filter"))
        .collect();
    let payloads: Vec<String> = (0..1_000)
        .map(|i| {
            json!({"n": i % SUBSCRIPTIONS, "total": 129.9, "currency": "EUR",
                   "customer": {"email": "ada@example.com", "first_name": "Ada"}})
            .to_string()
        })
        .collect();
    let rounds = 20;
    let started = Instant::now();
    let mut matched = 0;
    for _ in 0..rounds {
        for payload in &payloads {
            let input = FilterInput::new("order_created", None, payload);
            matched += filters.iter().filter(|f| f.matches(&input)).count();
        }
    }
    let n = rounds * payloads.len();
    assert_eq!(matched, n, "each event matches exactly one filter");
    println!(
        "evaluation: {SUBSCRIPTIONS} filters against one event: {:.1} µs per event (payload parsed once)",
        started.elapsed().as_secs_f64() * 1e6 / n as f64
    );
}

async fn subscribe(gw: &TestGateway, key: &str, url: &str, filter: Option<serde_json::Value>) {
    let (status, answer) = gw
        .call(
            reqwest::Method::POST,
            "/v1/webhooks",
            key,
            Some(json!({"topic": "order_created", "url": url, "filter": filter})),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
}

/// Posts `n` events, 64 at a time; accepted events/s.
async fn post(gw: &TestGateway, key: &str, n: usize) -> f64 {
    let http = reqwest::Client::new();
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (http, url, key, next) = (
                http.clone(),
                format!("{}/v1/events", gw.url),
                key.to_owned(),
                next.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return;
                    }
                    let body = json!({"type": "order_created",
                        "payload": {"n": i % SUBSCRIPTIONS, "total": 129.9, "currency": "EUR"}});
                    let r = http
                        .post(&url)
                        .bearer_auth(&key)
                        .json(&body)
                        .send()
                        .await
                        .expect("post");
                    let answer: serde_json::Value = r.json().await.expect("json");
                    assert_eq!(
                        answer["data"]["deliveries"].as_array().map(Vec::len),
                        Some(1),
                        "{answer}"
                    );
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    n as f64 / started.elapsed().as_secs_f64()
}
