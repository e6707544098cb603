//! Retention under a steady load: the gateway (SQLite) with a short
//! `--retention`, events posted at a steady rate to a fast receiver; prints
//! the database file's size (main file + write-ahead log) every few seconds,
//! beside the same run's events accepted so far. With retention working, the
//! size levels off once the first events are purged; without it, it grows
//! with the events.
//!
//! `cargo bench -p hookgate-tests --bench retention` (optional arguments:
//! seconds to run, default 60; events per second, default 500)

use hookgate_tests::{GatewayOptions, TestGateway};
use serde_json::json;
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let seconds = args.first().copied().unwrap_or(60);
    let rate = args.get(1).copied().unwrap_or(500);
    let receiver = hookgate_tests::peers::Receiver::ok().await;
    let gw = TestGateway::start_with(GatewayOptions {
        args: ["--retention", "10s"].map(String::from).to_vec(),
        ..Default::default()
    })
    .await;
    let (_, key) = gw.organization("steady").await;
    let (status, _) = gw
        .call(
            reqwest::Method::POST,
            "/v1/webhooks",
            &key,
            Some(json!({"topic": "t", "url": receiver.url})),
        )
        .await;
    assert_eq!(status, 201);
    let http = reqwest::Client::new();
    let url = format!("{}/v1/events", gw.url);
    let payload = json!({"order": "x".repeat(700)});
    println!("retention 10 s, {rate} events/s for {seconds} s (about 1 KiB each):");
    let started = Instant::now();
    let mut posted = 0u64;
    let mut next_report = Duration::from_secs(5);
    let mut tasks = tokio::task::JoinSet::new();
    while started.elapsed() < Duration::from_secs(seconds) {
        let due = started + Duration::from_secs_f64(posted as f64 / rate as f64);
        tokio::time::sleep_until(due.into()).await;
        let (http, url, key, body) = (
            http.clone(),
            url.clone(),
            key.clone(),
            json!({"type": "t", "payload": payload}),
        );
        tasks.spawn(async move {
            let r = http.post(url).bearer_auth(key).json(&body).send().await;
            assert_eq!(r.expect("post").status(), 202);
        });
        posted += 1;
        while tasks.try_join_next().is_some() {}
        if started.elapsed() >= next_report {
            let (db, wal) = size_mib(&gw);
            println!(
                "  t={:>3} s  events accepted {:>7}  database file {:>6.1} MiB  log {:>6.1} MiB",
                next_report.as_secs(),
                posted,
                db,
                wal
            );
            next_report += Duration::from_secs(5);
        }
    }
    while tasks.join_next().await.is_some() {}
}

/// The database file's and its write-ahead log's sizes, MiB.
fn size_mib(gw: &TestGateway) -> (f64, f64) {
    let db = gw.database_path();
    let wal = db.with_extension("db-wal");
    let mib = |p: &std::path::Path| {
        std::fs::metadata(p).map_or(0.0, |m| m.len() as f64 / (1 << 20) as f64)
    };
    (mib(&db), mib(&wal))
}
