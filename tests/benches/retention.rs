//! Retention under a steady load: the gateway with a short `--retention`,
//! events posted at a steady rate to a fast receiver; prints the database's
//! size every few seconds, beside the same run's events accepted so far.
//! With retention working, the size levels off once the first events are
//! purged; without it, it grows with the events.
//!
//! SQLite: the main file and the write-ahead log. PostgreSQL (a fresh
//! database on `HOOKGATE_TEST_POSTGRES_URL`, when set; skipped otherwise):
//! the events, deliveries and attempts tables with their indexes and
//! TOAST, and their dead rows (what autovacuum has yet to reclaim). Both
//! print how many events the database holds.
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
    println!("retention 10 s, {rate} events/s for {seconds} s (about 1 KiB each):");
    println!("SQLite:");
    let gw = start(None).await;
    let db = gw.database_path();
    let sizes = move || {
        let mib = |p: &std::path::Path| {
            std::fs::metadata(p).map_or(0.0, |m| m.len() as f64 / (1 << 20) as f64)
        };
        let (file, log) = (mib(&db), mib(&db.with_extension("db-wal")));
        let (kept, pending): (i64, i64) = rusqlite::Connection::open(&db)
            .and_then(|c| {
                c.query_row(
                    "SELECT (SELECT COUNT(*) FROM events), \
                     (SELECT COUNT(*) FROM deliveries WHERE status = 'pending')",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
            })
            .expect("count");
        async move {
            format!(
                "events kept {kept:>6} (pending {pending:>5})  database file {file:>6.1} MiB  log {log:>6.1} MiB"
            )
        }
    };
    steady(&gw, seconds, rate, sizes).await;
    drop(gw);

    let Some(url) = hookgate_tests::fresh_postgres_database().await else {
        return;
    };
    println!("PostgreSQL:");
    let gw = start(Some(url.clone())).await;
    let pool = sqlx::PgPool::connect(&url).await.expect("connect");
    let sizes = move || {
        let pool = pool.clone();
        async move {
            let (bytes, dead, kept): (i64, i64, i64) = sqlx::query_as(
                "SELECT SUM(pg_total_relation_size(relid))::BIGINT, SUM(n_dead_tup)::BIGINT, \
                 (SELECT COUNT(*) FROM events) FROM pg_stat_user_tables \
                 WHERE relname IN ('events', 'deliveries', 'attempts')",
            )
            .fetch_one(&pool)
            .await
            .expect("sizes");
            format!(
                "events kept {kept:>6}  tables {:>6.1} MiB  dead rows {dead:>7}",
                bytes as f64 / (1 << 20) as f64
            )
        }
    };
    steady(&gw, seconds, rate, sizes).await;
}

async fn start(database_url: Option<String>) -> TestGateway {
    TestGateway::start_with(GatewayOptions {
        database_url,
        args: ["--retention", "10s"].map(String::from).to_vec(),
        ..Default::default()
    })
    .await
}

/// Posts `rate` events/s for `seconds` to one subscription, printing
/// `sizes()` every 5 s.
async fn steady<F, S>(gw: &TestGateway, seconds: u64, rate: u64, sizes: S)
where
    S: Fn() -> F,
    F: Future<Output = String>,
{
    let receiver = hookgate_tests::peers::Receiver::ok().await;
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
            println!(
                "  t={:>3} s  events accepted {:>7}  {}",
                next_report.as_secs(),
                posted,
                sizes().await
            );
            next_report += Duration::from_secs(5);
        }
    }
    while tasks.join_next().await.is_some() {}
}
