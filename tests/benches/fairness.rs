//! Fairness: tenant A has 10,000 events queued to a receiver that hangs
//! 10 s; tenant B posts at 50 events/s to a fast receiver. Prints B's
//! ingest→delivered latency (p50/p99/max) with A idle, then with A's
//! backlog, from the same gateway (SQLite, default workers and limits) in
//! the same run.
//!
//! `cargo bench -p hookgate-tests --bench fairness` (optional argument: A's
//! backlog, default 10000)

use axum::http::HeaderMap;
use hookgate_tests::{GatewayOptions, TestGateway};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Arrival times by delivery id (`webhook-id`).
type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

const B_RATE: f64 = 50.0;

#[tokio::main]
async fn main() {
    let backlog: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10_000);
    let arrivals: Arrivals = Arc::default();
    let fast = receiver(arrivals.clone(), Duration::ZERO).await;
    let hanging = receiver(Arc::default(), Duration::from_secs(10)).await;
    let gw = TestGateway::start_with(GatewayOptions {
        args: vec!["--delivery-timeout".into(), "30s".into()],
        ..Default::default()
    })
    .await;
    let (_, a) = gw.organization("a").await;
    let (_, b) = gw.organization("b").await;
    for (key, topic, url) in [(&a, "backlog", &hanging), (&b, "urgent", &fast)] {
        let (status, _) = gw
            .call(
                reqwest::Method::POST,
                "/v1/webhooks",
                key,
                Some(json!({"topic": topic, "url": url})),
            )
            .await;
        assert_eq!(status, 201);
    }
    let http = reqwest::Client::new();

    let idle = steady(&gw, &http, &b, 500, &arrivals).await;
    report("B at 50/s, A idle", &idle);

    let started = Instant::now();
    post_many(&gw, &http, &a, backlog).await;
    println!(
        "A: {backlog} events accepted in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let busy = steady(&gw, &http, &b, 1_000, &arrivals).await;
    report(
        &format!("B at 50/s, A with {backlog} queued to a receiver hanging 10 s"),
        &busy,
    );
}

fn report(label: &str, latencies: &[f64]) {
    let n = latencies.len();
    println!(
        "{label}: ingest→delivered p50 {:.1} ms p99 {:.1} ms max {:.1} ms ({n} events)",
        latencies[n / 2],
        latencies[(n * 99 / 100).min(n - 1)],
        latencies[n - 1]
    );
}

/// Posts `n` events for `key` at [`B_RATE`]; returns each one's
/// ingest→delivered latency, sorted.
async fn steady(
    gw: &TestGateway,
    http: &reqwest::Client,
    key: &str,
    n: usize,
    arrivals: &Arrivals,
) -> Vec<f64> {
    let started = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (http, url, key) = (
                http.clone(),
                format!("{}/v1/events", gw.url),
                key.to_owned(),
            );
            tokio::spawn(async move {
                let due = started + Duration::from_secs_f64(i as f64 / B_RATE);
                tokio::time::sleep_until(due.into()).await;
                let sent = Instant::now();
                let answer: serde_json::Value = http
                    .post(url)
                    .bearer_auth(key)
                    .json(&json!({"type": "urgent", "payload": {"n": i}}))
                    .send()
                    .await
                    .expect("post")
                    .json()
                    .await
                    .expect("json");
                let id = answer["data"]["deliveries"][0]
                    .as_str()
                    .expect("a delivery")
                    .to_owned();
                (id, sent)
            })
        })
        .collect();
    let mut sent = Vec::with_capacity(n);
    for t in tasks {
        sent.push(t.await.expect("task"));
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut latencies = loop {
        let done = {
            let got = arrivals.lock().expect("lock");
            (sent.iter().all(|(id, _)| got.contains_key(id)) || Instant::now() > deadline).then(
                || {
                    sent.iter()
                        .map(|(id, at)| {
                            got.get(id)
                                .map_or(f64::INFINITY, |t| (*t - *at).as_secs_f64() * 1e3)
                        })
                        .collect::<Vec<_>>()
                },
            )
        };
        match done {
            Some(latencies) => break latencies,
            None => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    latencies.sort_by(f64::total_cmp);
    latencies
}

/// Posts `n` events for `key`, 32 at a time.
async fn post_many(gw: &TestGateway, http: &reqwest::Client, key: &str, n: usize) {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let (http, url, key, next) = (
                http.clone(),
                format!("{}/v1/events", gw.url),
                key.to_owned(),
                next.clone(),
            );
            tokio::spawn(async move {
                while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < n {
                    let r = http
                        .post(&url)
                        .bearer_auth(&key)
                        .json(&json!({"type": "backlog", "payload": {"big": "x".repeat(512)}}))
                        .send()
                        .await
                        .expect("post");
                    assert_eq!(r.status(), 202);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
}

/// A receiver answering 200 after `delay`, noting when each delivery
/// arrived.
async fn receiver(arrivals: Arrivals, delay: Duration) -> String {
    let app = axum::Router::new().fallback(move |headers: HeaderMap| {
        let arrivals = arrivals.clone();
        async move {
            let at = Instant::now();
            if let Some(id) = headers.get("webhook-id").and_then(|v| v.to_str().ok()) {
                arrivals
                    .lock()
                    .expect("lock")
                    .entry(id.to_owned())
                    .or_insert(at);
            }
            tokio::time::sleep(delay).await;
            "ok"
        }
    });
    let (url, _) = hookgate_tests::peers::serve(app).await;
    url
}
