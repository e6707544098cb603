//! Management API: creates/s and list-page latency (p50, p99) with 10,000
//! subscriptions in one organization, on SQLite and (when
//! `HOOKGATE_TEST_POSTGRES_URL` is set) PostgreSQL. Real gateway, real HTTP.
//!
//! `cargo bench -p hookgate-tests --bench management`

use hookgate_tests::{GatewayOptions, TestGateway, fresh_postgres_database};
use reqwest::Method;
use serde_json::json;
use std::time::{Duration, Instant};

const SUBSCRIPTIONS: usize = 10_000;
const CONCURRENCY: usize = 16;
const LIST_SAMPLES: usize = 1_000;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    run("sqlite", GatewayOptions::default()).await;
    if let Some(url) = fresh_postgres_database().await {
        run(
            "postgres",
            GatewayOptions {
                database_url: Some(url),
                ..Default::default()
            },
        )
        .await;
    }
}

async fn run(backend: &str, options: GatewayOptions) {
    let gw = std::sync::Arc::new(TestGateway::start_with(options).await);
    let (_, key) = gw.organization("bench").await;
    let started = Instant::now();
    let per_task = SUBSCRIPTIONS / CONCURRENCY;
    let tasks: Vec<_> = (0..CONCURRENCY)
        .map(|t| {
            let (gw, key) = (gw.clone(), key.clone());
            tokio::spawn(async move {
                for i in 0..per_task {
                    let body = json!({"topic": "NEW_CONSUMER_ORDER", "webHookUrls": [format!("https://h.example.com/{t}/{i}")], "shopId": format!("shop_{}", i % 50)});
                    let (status, _) = gw.call(Method::POST, "/v1/webhooks", &key, Some(body)).await;
                    assert_eq!(status, 201);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    let elapsed = started.elapsed();
    let created = per_task * CONCURRENCY;
    println!(
        "{backend}: created {created} subscriptions in {:.2} s: {:.0} creates/s ({CONCURRENCY} concurrent)",
        elapsed.as_secs_f64(),
        created as f64 / elapsed.as_secs_f64()
    );

    let mut latencies = Vec::with_capacity(LIST_SAMPLES);
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..LIST_SAMPLES {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let start = seed % (created as u64 - 100);
        let t = Instant::now();
        let (status, page) = gw
            .call(
                Method::GET,
                &format!("/v1/webhooks?start={start}&limit=100"),
                &key,
                None,
            )
            .await;
        latencies.push(t.elapsed());
        assert_eq!(status, 200);
        assert_eq!(page["data"]["items"].as_array().map(Vec::len), Some(100));
    }
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "{backend}: list one page of 100 of {created}: p50 {:.2} ms, p99 {:.2} ms ({LIST_SAMPLES} requests, random offsets, over HTTP)",
        ms(pct(0.50)),
        ms(pct(0.99))
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
