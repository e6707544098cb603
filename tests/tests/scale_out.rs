//! Scale-out: several real `hookgate serve` processes on one PostgreSQL.
//! Needs `HOOKGATE_TEST_POSTGRES_URL` (CI starts a server; locally the
//! tests skip with a message when it is unset).

use hookgate_tests::peers::{Receiver, Reply};
use hookgate_tests::{ADMIN_KEY, GatewayProcess, free_port, fresh_postgres_database, plugin_bytes};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SECRET_KEY: &str = "c2NhbGUtb3V0LXRlc3Qta2V5LTMyLWJ5dGVzLWxvbmc=";

async fn replicas(n: usize) -> Option<(Vec<GatewayProcess>, Vec<tempfile::TempDir>, String)> {
    let url = fresh_postgres_database().await?;
    let mut gws = Vec::new();
    let mut dirs = Vec::new();
    for _ in 0..n {
        let dir = tempfile::tempdir().expect("tmp");
        let args = [
            "--database-url",
            url.as_str(),
            "--secret-key",
            SECRET_KEY,
            "--lease",
            "3s",
            "--retry-schedule",
            "0s,100ms,200ms,500ms,1s,1s,2s,2s,5s,5s",
        ];
        gws.push(GatewayProcess::spawn(dir.path(), free_port(), &args).await);
        dirs.push(dir);
    }
    Some((gws, dirs, url))
}

async fn json_call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    key: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = http.request(method, url).bearer_auth(key);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let r = req.send().await.expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_the_work_and_survive_a_sigkill() {
    let Some((mut gws, _dirs, _)) = replicas(3).await else {
        return;
    };
    let http = reqwest::Client::new();
    let receiver = Arc::new(
        Receiver::scripted(|_, _| Reply {
            delay: Duration::from_millis(1),
            ..Reply::status(200)
        })
        .await,
    );
    let (_, org) = json_call(
        &http,
        reqwest::Method::POST,
        format!("{}/v1/organizations", gws[0].url),
        ADMIN_KEY,
        Some(json!({"name": "scale"})),
    )
    .await;
    let key = org["data"]["apiKey"].as_str().expect("key").to_owned();
    let (status, _) = json_call(
        &http,
        reqwest::Method::POST,
        format!("{}/v1/webhooks", gws[1].url),
        &key,
        Some(json!({"topic": "order_created", "url": receiver.url})),
    )
    .await;
    assert_eq!(status, 201);

    const EVENTS: usize = 2000;
    let urls: Vec<String> = gws.iter().map(|g| g.url.clone()).collect();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let accepted = Arc::new(std::sync::Mutex::new(HashSet::new()));
    let senders: Vec<_> = (0..8)
        .map(|_| {
            let (http, urls, key, next, accepted) = (
                http.clone(),
                urls.clone(),
                key.clone(),
                next.clone(),
                accepted.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if n >= EVENTS {
                        return;
                    }
                    let id = format!("evt_scale_{n}");
                    let body = json!({"id": id, "type": "order_created", "payload": {"n": n}});
                    // Spread over the replicas; a dead one's requests go to the next.
                    for attempt in 0..50 {
                        let url = &urls[(n + attempt) % urls.len()];
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
                            _ => tokio::time::sleep(Duration::from_millis(20)).await,
                        }
                    }
                }
            })
        })
        .collect();
    while accepted.lock().expect("lock").len() < EVENTS / 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    gws[1].kill();
    for s in senders {
        s.await.expect("sender");
    }
    let accepted = accepted.lock().expect("lock").clone();
    assert_eq!(accepted.len(), EVENTS);

    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let got: HashSet<String> = receiver
            .received()
            .iter()
            .map(|r| r.json()["data"]["n"].to_string())
            .collect();
        if got.len() >= EVENTS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {EVENTS} events arrived",
            got.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let received = receiver.received();
    let mut by_webhook_id: HashMap<String, Vec<Value>> = HashMap::new();
    for r in &received {
        by_webhook_id
            .entry(r.header("webhook-id").expect("id").to_owned())
            .or_default()
            .push(r.json());
    }
    assert_eq!(by_webhook_id.len(), EVENTS, "one webhook-id per event");
    assert!(
        by_webhook_id
            .values()
            .all(|copies| copies.iter().all(|c| c == &copies[0])),
        "duplicates carry the same body"
    );
    let delivered_ids: HashSet<String> = received
        .iter()
        .map(|r| r.json()["id"].as_str().unwrap_or("").to_owned())
        .collect();
    assert!(accepted.is_subset(&delivered_ids));
    eprintln!(
        "{EVENTS} events over 3 replicas, one killed: {} requests, {} duplicates (same webhook-id)",
        received.len(),
        received.len() - EVENTS
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_activated_on_one_replica_runs_on_another() {
    let Some((gws, _dirs, _)) = replicas(2).await else {
        return;
    };
    let http = reqwest::Client::new();
    let receiver = Receiver::ok().await;
    let (a, b) = (&gws[0].url, &gws[1].url);
    let upload = |bytes: Vec<u8>| {
        let http = http.clone();
        let a = a.clone();
        async move {
            let r = http
                .put(format!("{a}/v1/plugins/shape"))
                .bearer_auth(ADMIN_KEY)
                .body(bytes)
                .send()
                .await
                .expect("upload");
            assert_eq!(r.status(), 201);
            r.json::<Value>().await.expect("json")["data"]["version"]
                .as_str()
                .expect("version")
                .to_owned()
        }
    };
    let v1 = upload(plugin_bytes("standard")).await;
    let (_, org) = json_call(
        &http,
        reqwest::Method::POST,
        format!("{a}/v1/organizations"),
        ADMIN_KEY,
        Some(json!({"name": "p"})),
    )
    .await;
    let key = org["data"]["apiKey"].as_str().expect("key").to_owned();
    json_call(
        &http,
        reqwest::Method::POST,
        format!("{a}/v1/webhooks"),
        &key,
        Some(json!({"topic": "order_created", "url": receiver.url, "plugin": {"name": "shape"}})),
    )
    .await;

    // Events posted to B, and delivered by whichever replica, use the active version.
    let shape_of_next = |n: usize| {
        let (http, b, key) = (http.clone(), b.clone(), key.clone());
        let receiver = &receiver;
        async move {
            let before = receiver.received().len();
            let (status, _) = json_call(
                &http,
                reqwest::Method::POST,
                format!("{b}/v1/events"),
                &key,
                Some(json!({"type": "order_created", "payload": {"n": n}})),
            )
            .await;
            assert_eq!(status, 202);
            let got = receiver.wait_for(before + 1).await;
            got[before].json()
        }
    };
    let body = shape_of_next(1).await;
    assert!(body.get("timestamp").is_some(), "standard shape: {body}");

    let v2 = upload(plugin_bytes("fanout")).await;
    assert_ne!(v1, v2);
    // Within the poll interval every replica runs v2.
    tokio::time::sleep(hookgate::plugin_sync::POLL + Duration::from_millis(1500)).await;
    let (_, listed) = json_call(
        &http,
        reqwest::Method::GET,
        format!("{b}/v1/plugins/shape"),
        ADMIN_KEY,
        None,
    )
    .await;
    let active: Vec<&str> = listed["data"]
        .as_array()
        .expect("versions")
        .iter()
        .filter(|v| v["active"] == true)
        .filter_map(|v| v["version"].as_str())
        .collect();
    assert_eq!(
        active,
        [v2.as_str()],
        "replica B follows the activation made on A"
    );
    let body = shape_of_next(2).await;
    assert!(body.get("target").is_some(), "fanout shape: {body}");

    // Roll back on B; A follows.
    let (status, answer) = json_call(
        &http,
        reqwest::Method::POST,
        format!("{b}/v1/plugins/shape/activate"),
        ADMIN_KEY,
        Some(json!({"version": &v1[..12]})),
    )
    .await;
    let (_, on_b) = json_call(
        &http,
        reqwest::Method::GET,
        format!("{b}/v1/plugins/shape"),
        ADMIN_KEY,
        None,
    )
    .await;
    assert_eq!(status, 200, "{answer}; v1 {v1}; B has {on_b}");
    tokio::time::sleep(hookgate::plugin_sync::POLL + Duration::from_millis(1500)).await;
    let (_, listed) = json_call(
        &http,
        reqwest::Method::GET,
        format!("{a}/v1/plugins/shape"),
        ADMIN_KEY,
        None,
    )
    .await;
    let active: Vec<&str> = listed["data"]
        .as_array()
        .expect("versions")
        .iter()
        .filter(|v| v["active"] == true)
        .filter_map(|v| v["version"].as_str())
        .collect();
    assert_eq!(active, [v1.as_str()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_event_id_on_two_replicas_is_one_event() {
    let Some((gws, _dirs, _)) = replicas(2).await else {
        return;
    };
    let http = reqwest::Client::new();
    let receiver = Receiver::ok().await;
    let (_, org) = json_call(
        &http,
        reqwest::Method::POST,
        format!("{}/v1/organizations", gws[0].url),
        ADMIN_KEY,
        Some(json!({"name": "i"})),
    )
    .await;
    let key = org["data"]["apiKey"].as_str().expect("key").to_owned();
    json_call(
        &http,
        reqwest::Method::POST,
        format!("{}/v1/webhooks", gws[0].url),
        &key,
        Some(json!({"topic": "order_created", "url": receiver.url})),
    )
    .await;
    for round in 0..20 {
        let body = json!({"id": format!("evt_twice_{round}"), "type": "order_created", "payload": {"round": round}});
        let (ra, rb) = tokio::join!(
            json_call(
                &http,
                reqwest::Method::POST,
                format!("{}/v1/events", gws[0].url),
                &key,
                Some(body.clone())
            ),
            json_call(
                &http,
                reqwest::Method::POST,
                format!("{}/v1/events", gws[1].url),
                &key,
                Some(body.clone())
            ),
        );
        assert_eq!((ra.0, rb.0), (202, 202));
        assert_eq!(ra.1["data"]["eventId"], rb.1["data"]["eventId"]);
        assert_eq!(
            ra.1["data"]["deliveries"], rb.1["data"]["deliveries"],
            "round {round}: {ra:?} {rb:?}"
        );
        let created = [&ra.1, &rb.1]
            .iter()
            .filter(|r| r["data"]["created"] == true)
            .count();
        assert_eq!(created, 1, "exactly one replica created the event");
    }
    let got = receiver.wait_for(20).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        receiver.received().len(),
        20,
        "one delivery per event: {}",
        got.len()
    );
}

/// Two replicas on one FIFO destination: events posted to both arrive in
/// acceptance order, once each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_keep_a_fifo_destination_in_order() {
    let Some((gws, _dirs, _)) = replicas(2).await else {
        return;
    };
    let http = reqwest::Client::new();
    let receiver = Receiver::scripted(|_, _| Reply {
        delay: Duration::from_millis(15),
        ..Reply::status(200)
    })
    .await;
    let key = gws[0].organization("fifo").await;
    let (status, _) = json_call(
        &http,
        reqwest::Method::POST,
        format!("{}/v1/webhooks", gws[0].url),
        &key,
        Some(json!({"topic": "t", "url": receiver.url, "ordering": "fifo"})),
    )
    .await;
    assert_eq!(status, 201);
    let mut accepted = Vec::new();
    for n in 0..30 {
        let gw = &gws[n % 2];
        let (status, answer) = json_call(
            &http,
            reqwest::Method::POST,
            format!("{}/v1/events", gw.url),
            &key,
            Some(json!({"type": "t", "payload": {"n": n}})),
        )
        .await;
        assert_eq!(status, 202, "{answer}");
        accepted.push(n as i64);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = receiver.received();
        if got.len() >= 30 {
            let order: Vec<i64> = got
                .iter()
                .map(|r| r.json()["data"]["n"].as_i64().expect("n"))
                .collect();
            assert_eq!(order, accepted, "in acceptance order, once each");
            break;
        }
        assert!(Instant::now() < deadline, "got {}", got.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
