//! Scale-out: delivered events/s with one and with two `hookgate serve`
//! processes (release builds) on the same PostgreSQL, and one process on
//! SQLite, in the same run. Needs `HOOKGATE_TEST_POSTGRES_URL`.
//!
//! `cargo bench -p hookgate-tests --bench replicas` (optional argument:
//! events per run, default 5000)

use axum::body::Bytes;
use hookgate_tests::{
    ADMIN_KEY, GatewayProcess, free_port, fresh_postgres_database, hookgate_release_bin,
};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const SECRET_KEY: &str = "c2NhbGUtb3V0LXRlc3Qta2V5LTMyLWJ5dGVzLWxvbmc=";

#[tokio::main]
async fn main() {
    let events: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5000);
    let received = Arc::new(AtomicUsize::new(0));
    let receiver = start_receiver(received.clone()).await;
    let bin = hookgate_release_bin();

    let sqlite = run(bin, None, 1, events, &receiver, &received).await;
    println!("sqlite, 1 process: {sqlite:.0} events/s delivered end to end");
    let Some(url) = fresh_postgres_database().await else {
        return;
    };
    let one = run(bin, Some(&url), 1, events, &receiver, &received).await;
    println!("postgres, 1 replica: {one:.0} events/s delivered end to end");
    let Some(url) = fresh_postgres_database().await else {
        return;
    };
    let two = run(bin, Some(&url), 2, events, &receiver, &received).await;
    println!(
        "postgres, 2 replicas: {two:.0} events/s delivered end to end ({:.2}x one replica)",
        two / one
    );
}

async fn run(
    bin: &std::path::Path,
    pg: Option<&str>,
    replicas: usize,
    events: usize,
    receiver: &str,
    received: &Arc<AtomicUsize>,
) -> f64 {
    let mut dirs = Vec::new();
    let mut gws = Vec::new();
    for _ in 0..replicas {
        let dir = tempfile::tempdir().expect("tmp");
        let mut args = vec!["--workers", "128", "--endpoint-concurrency", "128"];
        if let Some(url) = pg {
            args.extend(["--database-url", url, "--secret-key", SECRET_KEY]);
        }
        gws.push(GatewayProcess::spawn_binary(bin, dir.path(), free_port(), &args).await);
        dirs.push(dir);
    }
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .expect("client");
    let org: Value = http
        .post(format!("{}/v1/organizations", gws[0].url))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"name": "bench"}))
        .send()
        .await
        .expect("org")
        .json()
        .await
        .expect("json");
    let key = org["data"]["apiKey"].as_str().expect("key").to_owned();
    let r = http
        .post(format!("{}/v1/webhooks", gws[0].url))
        .bearer_auth(&key)
        .json(&json!({"topic": "order_created", "url": receiver}))
        .send()
        .await
        .expect("webhook");
    assert_eq!(r.status().as_u16(), 201);

    received.store(0, Ordering::SeqCst);
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let urls: Vec<String> = gws.iter().map(|g| g.url.clone()).collect();
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (http, urls, key, next) = (http.clone(), urls.clone(), key.clone(), next.clone());
            tokio::spawn(async move {
                let payload = hookgate_tests::sample_order();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= events {
                        return;
                    }
                    let url = &urls[i % urls.len()];
                    let r = http
                        .post(format!("{url}/v1/events"))
                        .bearer_auth(&key)
                        .json(&json!({"type": "order_created", "payload": payload}))
                        .send()
                        .await
                        .expect("post");
                    assert_eq!(r.status().as_u16(), 202);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    while received.load(Ordering::SeqCst) < events {
        assert!(Instant::now() < deadline, "not everything was delivered");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    events as f64 / started.elapsed().as_secs_f64()
}

async fn start_receiver(received: Arc<AtomicUsize>) -> String {
    let app = axum::Router::new().fallback(move |_body: Bytes| {
        let received = received.clone();
        async move {
            received.fetch_add(1, Ordering::SeqCst);
            "ok"
        }
    });
    let (url, _) = hookgate_tests::peers::serve(app).await;
    url
}
