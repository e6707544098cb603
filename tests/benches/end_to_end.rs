//! End to end: the gateway on SQLite, one organization, one subscription to
//! a loopback receiver; events posted with concurrency. Prints accepted
//! events/s, delivered events/s, ingest→delivered latency (p50/p99) at full
//! speed and at a steady 1,000 events/s, with and without a plugin, and the
//! raw loopback POST rate of the same client to the same receiver.
//!
//! `cargo bench -p hookgate-tests --bench end_to_end` (optional argument:
//! events per throughput run, default 10000)

use axum::body::Bytes;
use hookgate_tests::{ADMIN_KEY, GatewayOptions, TestGateway, plugin_bytes};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CONCURRENCY: usize = 64;

/// The allocator the `hookgate` binary uses (the gateway runs in this
/// process here).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Arrival times by event id.
type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

#[tokio::main]
async fn main() {
    let events: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10_000);
    let arrivals: Arrivals = Arc::default();
    let receiver_url = start_receiver(arrivals.clone()).await;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .expect("client");

    let raw = raw_rate(&http, &receiver_url).await;
    println!(
        "baseline: raw loopback POST rate, same client and receiver, {CONCURRENCY} concurrent: {raw:.0} requests/s"
    );
    let (p50, p99) = raw_latency(&http, &receiver_url, 5_000, 1_000.0).await;
    println!(
        "baseline: raw loopback POST at a steady 1000/s, same client and receiver: request p50 {p50:.2} ms p99 {p99:.2} ms"
    );

    for (label, plugin, reuse) in [
        ("standard", Some("standard"), false),
        ("standard+reuse", Some("standard"), true),
        ("none", None, false),
    ] {
        let plugins = tempfile::tempdir().expect("tmp");
        std::fs::write(
            plugins.path().join("standard.wasm"),
            plugin_bytes("standard"),
        )
        .expect("plugin");
        let mut args: Vec<String> = vec![
            "--plugin-dir".into(),
            plugins.path().display().to_string(),
            "--workers".into(),
            "256".into(),
            "--endpoint-concurrency".into(),
            "256".into(),
        ];
        if reuse {
            args.extend(["--plugin-reuse".into(), "standard".into()]);
        }
        let gw = TestGateway::start_with(GatewayOptions {
            args,
            ..Default::default()
        })
        .await;
        let (_, key) = gw.organization("bench").await;
        let sub = json!({"topic": "order_created", "url": receiver_url, "plugin": plugin.map(|name| json!({"name": name}))});
        let (status, _) = gw
            .call(reqwest::Method::POST, "/v1/webhooks", &key, Some(sub))
            .await;
        assert_eq!(status, 201);
        let _ = ADMIN_KEY;

        // Full speed.
        arrivals.lock().expect("lock").clear();
        let (sent, accept_elapsed, started) =
            post_events(&http, &gw.url, &key, events, CONCURRENCY, None).await;
        let done = wait_all(&arrivals, &sent).await;
        let (p50, p99) = latencies(&sent, &arrivals);
        println!(
            "plugin={label}: {events} events, {CONCURRENCY} concurrent: accepted {:.0}/s, delivered {:.0}/s end to end, ingest→delivered p50 {:.1} ms p99 {:.1} ms",
            events as f64 / accept_elapsed.as_secs_f64(),
            events as f64 / (done - started).as_secs_f64(),
            p50,
            p99
        );

        // Steady 1,000 events/s for 5 s.
        arrivals.lock().expect("lock").clear();
        let (sent, _, _) = post_events(&http, &gw.url, &key, 5_000, 32, Some(1_000.0)).await;
        wait_all(&arrivals, &sent).await;
        let (p50, p99) = latencies(&sent, &arrivals);
        println!(
            "plugin={label}: steady 1000 events/s for 5 s: ingest→delivered p50 {p50:.1} ms p99 {p99:.1} ms"
        );
        drop(gw);
    }
}

async fn start_receiver(arrivals: Arrivals) -> String {
    let app = axum::Router::new().fallback(move |body: Bytes| {
        let arrivals = arrivals.clone();
        async move {
            let at = Instant::now();
            // The standard payload carries the event id; the raw baseline sends none.
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body)
                && let Some(id) = v["id"].as_str().or_else(|| v["data"]["eventId"].as_str())
            {
                arrivals
                    .lock()
                    .expect("lock")
                    .entry(id.to_owned())
                    .or_insert(at);
            }
            "ok"
        }
    });
    let (url, _) = hookgate_tests::peers::serve(app).await;
    url
}

async fn raw_rate(http: &reqwest::Client, url: &str) -> f64 {
    let body = serde_json::to_vec(
        &json!({"type": "order_created", "data": hookgate_tests::sample_order()}),
    )
    .expect("json");
    let started = Instant::now();
    let window = Duration::from_secs(3);
    let tasks: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (http, url, body) = (http.clone(), url.to_owned(), body.clone());
            tokio::spawn(async move {
                let mut n = 0u64;
                while started.elapsed() < window {
                    let r = http
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await
                        .expect("post");
                    let _ = r.bytes().await;
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("task");
    }
    total as f64 / started.elapsed().as_secs_f64()
}

/// Latency (p50, p99, ms) of `n` single POSTs to `url` at `rate` per second:
/// the floor this machine puts under any ingest→delivered latency.
async fn raw_latency(http: &reqwest::Client, url: &str, n: usize, rate: f64) -> (f64, f64) {
    let body = serde_json::to_vec(&hookgate_tests::sample_order()).expect("json");
    let started = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (http, url, body) = (http.clone(), url.to_owned(), body.clone());
            tokio::spawn(async move {
                let due = started + Duration::from_secs_f64(i as f64 / rate);
                tokio::time::sleep_until(due.into()).await;
                let t = Instant::now();
                let r = http.post(&url).body(body).send().await.expect("post");
                let _ = r.bytes().await;
                t.elapsed().as_secs_f64() * 1e3
            })
        })
        .collect();
    let mut l = Vec::with_capacity(n);
    for t in tasks {
        l.push(t.await.expect("task"));
    }
    l.sort_by(f64::total_cmp);
    (l[n / 2], l[(n * 99 / 100).min(n - 1)])
}

/// Posts `n` events; returns when each was answered 202, the time to accept them all, and the start.
async fn post_events(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    n: usize,
    concurrency: usize,
    rate: Option<f64>,
) -> (HashMap<String, Instant>, Duration, Instant) {
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let run = uuid_ish();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (http, base, key, next, run) = (
                http.clone(),
                base.to_owned(),
                key.to_owned(),
                next.clone(),
                run.clone(),
            );
            tokio::spawn(async move {
                let mut sent = HashMap::new();
                let payload = hookgate_tests::sample_order();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= n {
                        return sent;
                    }
                    if let Some(rate) = rate {
                        let due = started + Duration::from_secs_f64(i as f64 / rate);
                        tokio::time::sleep_until(due.into()).await;
                    }
                    let id = format!("evt_{run}_{i}");
                    let t = Instant::now();
                    let r = http
                        .post(format!("{base}/v1/events"))
                        .bearer_auth(&key)
                        .json(&json!({"id": id, "type": "order_created", "payload": payload}))
                        .send()
                        .await
                        .expect("post");
                    assert_eq!(r.status().as_u16(), 202);
                    let _ = r.bytes().await;
                    sent.insert(id, t);
                }
            })
        })
        .collect();
    let mut all = HashMap::new();
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    (all, started.elapsed(), started)
}

async fn wait_all(arrivals: &Arrivals, sent: &HashMap<String, Instant>) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(300);
    // Cheap polling (a count), so the harness does not steal a core from the gateway.
    while arrivals.lock().expect("lock").len() < sent.len() {
        assert!(Instant::now() < deadline, "not every event was delivered");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let got = arrivals.lock().expect("lock");
    assert!(
        sent.keys().all(|k| got.contains_key(k)),
        "an unexpected event arrived"
    );
    got.values().copied().max().unwrap_or_else(Instant::now)
}

fn latencies(sent: &HashMap<String, Instant>, arrivals: &Arrivals) -> (f64, f64) {
    let got = arrivals.lock().expect("lock");
    let mut l: Vec<f64> = sent
        .iter()
        .filter_map(|(id, t)| got.get(id).map(|a| (*a - *t).as_secs_f64() * 1e3))
        .collect();
    l.sort_by(f64::total_cmp);
    let pct = |p: f64| l[((l.len() as f64 * p) as usize).min(l.len() - 1)];
    (pct(0.5), pct(0.99))
}

fn uuid_ish() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    )
}
