//! Nothing accepted is lost: the real binary, killed with SIGKILL while
//! events pour in, restarted on the same database; every event answered
//! 202 is delivered, duplicates carry the same `webhook-id` and body.

use hookgate_tests::peers::Receiver;
use hookgate_tests::{GatewayProcess, free_port};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const EVENTS: usize = 600;
const CONCURRENCY: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_nothing() {
    let data = tempfile::tempdir().expect("tmp");
    let port = free_port();
    // A short lease, so the killed process's claimed jobs come back quickly.
    let schedule = [
        "--retry-schedule",
        "0s,100ms,200ms,500ms,1s,1s,2s,2s,5s,5s",
        "--lease",
        "3s",
    ];
    let mut gw = GatewayProcess::spawn(data.path(), port, &schedule).await;
    let http = reqwest::Client::new();
    let receiver = Receiver::scripted(|_, _| hookgate_tests::peers::Reply {
        delay: Duration::from_millis(2),
        ..hookgate_tests::peers::Reply::status(200)
    })
    .await;

    let key = gw.organization("crash").await;
    let created = http
        .post(format!("{}/v1/webhooks", gw.url))
        .bearer_auth(&key)
        .json(&json!({"topic": "order_created", "url": receiver.url}))
        .send()
        .await
        .expect("webhook");
    assert_eq!(created.status(), 201);

    let accepted = Arc::new(Mutex::new(HashSet::new()));
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let url = gw.url.clone();
    let senders: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (http, url, key, accepted, next) = (
                http.clone(),
                url.clone(),
                key.clone(),
                accepted.clone(),
                next.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if n >= EVENTS {
                        break;
                    }
                    let id = format!("evt_crash_{n}");
                    let body = json!({"id": id, "type": "order_created", "payload": {"n": n}});
                    // Until the gateway is back, a refused request is simply not accepted; retry it.
                    for _ in 0..200 {
                        match http
                            .post(format!("{url}/v1/events"))
                            .bearer_auth(&key)
                            .json(&body)
                            .timeout(Duration::from_secs(5))
                            .send()
                            .await
                        {
                            Ok(r) if r.status().as_u16() == 202 => {
                                accepted.lock().expect("lock").insert(id.clone());
                                break;
                            }
                            _ => tokio::time::sleep(Duration::from_millis(50)).await,
                        }
                    }
                }
            })
        })
        .collect();

    // Kill it once a third of the events are in, mid-stream.
    while accepted.lock().expect("lock").len() < EVENTS / 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    gw.kill();
    let at_kill = accepted.lock().expect("lock").len();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _gw = GatewayProcess::spawn(data.path(), port, &schedule).await;
    for s in senders {
        s.await.expect("sender");
    }
    let accepted: HashSet<String> = accepted.lock().expect("lock").clone();
    assert_eq!(
        accepted.len(),
        EVENTS,
        "every event was eventually accepted"
    );

    // Every accepted event arrives.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let got: HashSet<String> = receiver
            .received()
            .iter()
            .map(|r| r.json()["id"].as_str().unwrap_or("").to_owned())
            .collect();
        if accepted.is_subset(&got) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "missing after restart: {} events",
            accepted.difference(&got).count()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let received = receiver.received();
    let mut by_id: HashMap<String, Vec<&hookgate_tests::peers::Received>> = HashMap::new();
    for r in &received {
        by_id
            .entry(r.header("webhook-id").expect("webhook-id").to_owned())
            .or_default()
            .push(r);
    }
    let mut events_per_id: HashMap<String, HashSet<String>> = HashMap::new();
    for (wid, copies) in &by_id {
        for c in copies {
            assert_eq!(
                c.body, copies[0].body,
                "a duplicate of {wid} carries another body"
            );
            events_per_id
                .entry(wid.clone())
                .or_default()
                .insert(c.json()["id"].as_str().unwrap_or("").to_owned());
        }
    }
    assert!(
        events_per_id.values().all(|e| e.len() == 1),
        "one webhook-id per event"
    );
    let duplicates = received.len() - by_id.len();
    eprintln!(
        "killed after {at_kill} accepted events; {} requests for {} events, {duplicates} duplicates (same webhook-id)",
        received.len(),
        EVENTS
    );
}
