//! Delivery search at a million deliveries (SQLite): the gateway's database
//! is filled with 1,000,000 finished deliveries (one organization holds 90%,
//! 20 event types, 100 destinations, a week of history, ~600-byte bodies),
//! with their events (two deliveries each) and attempts (one each),
//! then each kind of search page is asked for over HTTP, one at a time, and
//! its latency printed (p50 / p99, milliseconds).
//!
//! Then the price of the search indexes on the write path: rows inserted
//! per second into a fresh database with every index, and with the search
//! indexes dropped, in the same run.
//!
//! `cargo bench -p hookgate-tests --bench search` (optional arguments:
//! deliveries, default 1000000; pages per kind, default 500)

use hookgate_tests::TestGateway;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TYPES: usize = 20;
const DESTINATIONS: usize = 100;
const WEEK_MS: i64 = 7 * 24 * 3600 * 1000;
/// The indexes migration 0011 added for search (it also put `id` at the
/// end of the status index, which was there before).
const SEARCH_INDEXES: [&str; 3] = [
    "deliveries_by_org",
    "deliveries_by_type",
    "deliveries_by_destination",
];

#[tokio::main]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let deliveries = args.first().copied().unwrap_or(1_000_000);
    let pages = args.get(1).copied().unwrap_or(500);

    let gw = TestGateway::start().await;
    let (big, key) = gw.organization("big").await;
    let (other, _) = gw.organization("other").await;
    let (small, small_key) = gw.organization("small").await;
    // The big organization's destinations are real subscriptions (the
    // dashboard's destinations page lists them); the fill spreads the
    // deliveries over them.
    let mut destinations = Vec::with_capacity(DESTINATIONS);
    for n in 0..DESTINATIONS {
        let (status, body) = gw
            .call(
                reqwest::Method::POST,
                "/v1/webhooks",
                &key,
                Some(serde_json::json!({"topic": format!("order.{n}"), "url": "https://receiver.example/hook"})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        destinations.push(body["data"]["id"].as_str().expect("id").to_owned());
    }
    let wh_42 = destinations[42].clone();
    let now = now_ms();
    let started = Instant::now();
    let db = gw.database_path();
    tokio::task::spawn_blocking(move || {
        fill(&db, "dlv_", deliveries, now, &destinations, |i| {
            if i % 10 == 9 { &other } else { &big }
        });
        fill(&db, "dlv_small_", 3, now, &destinations, |_| &small);
    })
    .await
    .expect("fill");
    println!(
        "filled {deliveries} deliveries in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let day = 24 * 3600 * 1000;
    let hour_ago_2d = now - 2 * day - 3600 * 1000;
    let kinds: Vec<(&str, String)> = vec![
        ("newest page", String::new()),
        ("status=dead", "status=dead".into()),
        ("eventType", "eventType=order.7".into()),
        ("destinationId", format!("destinationId={wh_42}")),
        (
            "one-hour window",
            format!("since={hour_ago_2d}&until={}", hour_ago_2d + 3600 * 1000),
        ),
        ("eventType + status", "eventType=order.7&status=dead".into()),
        (
            "destination + window",
            format!("destinationId={wh_42}&since={}&until={now}", now - day),
        ),
        ("page 21 (start=1000)", "start=1000".into()),
    ];
    println!("search pages of 50 over HTTP, {pages} each (p50 / p99):");
    // The machine's own noise, in the same run: the same route on an
    // organization with three deliveries.
    let (p50, p99, _) = measure(&gw, &small_key, "limit=50", 3, pages).await;
    println!(
        "  {:<22} p50 {p50:>6.2} ms  p99 {p99:>6.2} ms",
        "baseline: 3 deliveries"
    );
    for (name, query) in &kinds {
        let query = format!("limit=50&{query}");
        let (p50, p99, total) = measure(&gw, &key, &query, 50, pages).await;
        println!("  {name:<22} p50 {p50:>6.2} ms  p99 {p99:>6.2} ms  (total {total})");
    }
    // The dashboard's pages are these API calls: each must answer within
    // 200 ms of server time at a million deliveries.
    println!(
        "dashboard pages' API calls, {} each (p50 / p99):",
        pages.min(100)
    );
    for (name, path) in [
        ("overview, last hour", "/v1/stats?window=hour"),
        ("overview, last day", "/v1/stats?window=day"),
        ("deliveries page", "/v1/deliveries?limit=50"),
        ("destinations page", "/v1/destinations?limit=50"),
        ("subscriptions page", "/v1/webhooks?limit=100"),
    ] {
        let (p50, p99) = time_get(&gw, &key, path, pages.min(100)).await;
        println!("  {name:<22} p50 {p50:>6.2} ms  p99 {p99:>6.2} ms");
    }
    drop(gw);
    write_cost().await;
}

/// GETs `path` `n` times (after 3 warm-ups); p50 and p99 in ms.
async fn time_get(gw: &TestGateway, key: &str, path: &str, n: usize) -> (f64, f64) {
    let mut times = Vec::with_capacity(n);
    for i in 0..n + 3 {
        let t = Instant::now();
        let (status, body) = gw.call(reqwest::Method::GET, path, key, None).await;
        assert_eq!(status, 200, "{path}: {body}");
        if i >= 3 {
            times.push(t.elapsed());
        }
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    (ms(times[n / 2]), ms(times[(n * 99 / 100).min(n - 1)]))
}

/// Asks for one kind of page `n` times; p50, p99 (ms) and the page's total.
async fn measure(
    gw: &TestGateway,
    key: &str,
    query: &str,
    items: usize,
    n: usize,
) -> (f64, f64, String) {
    let path = format!("/v1/deliveries?{query}");
    let mut times = Vec::with_capacity(n);
    let mut total = String::new();
    for i in 0..n + 10 {
        let t = Instant::now();
        let (status, body) = gw.call(reqwest::Method::GET, &path, key, None).await;
        let took = t.elapsed();
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(body["data"]["items"].as_array().map(Vec::len), Some(items));
        if i >= 10 {
            times.push(took);
        }
        total = match body["data"]["totalCapped"].as_bool() {
            Some(true) => format!("≥{}", body["data"]["total"]),
            _ => body["data"]["total"].to_string(),
        };
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    (ms(times[n / 2]), ms(times[n * 99 / 100]), total)
}

/// Inserts `n` finished deliveries straight into the database, oldest
/// first, as the gateway would have written them over a week.
fn fill<'a>(
    db: &std::path::Path,
    id_prefix: &str,
    n: usize,
    now: i64,
    destinations: &[String],
    org: impl Fn(usize) -> &'a str,
) {
    let mut conn = rusqlite::Connection::open(db).expect("open");
    conn.busy_timeout(Duration::from_secs(10)).expect("timeout");
    let tx = conn.transaction().expect("begin");
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO deliveries (id, organization_id, event_id, event_type, target_kind, target_id, \
                 endpoint, method, status, transformed, body, content_type, headers, attempts, next_attempt_at, \
                 last_status, created, modified, completed, last_duration_ms) \
                 VALUES (?1, ?2, ?3, ?4, 'webhook', ?5, 'https://receiver.example/hook', 'POST', ?6, TRUE, ?7, \
                 'application/json', '[]', 1, ?8, ?9, ?8, ?8, ?8, ?10)",
            )
            .expect("prepare");
        // Each event has two deliveries; each delivery the attempt that
        // finished it, with the request headers attempts record.
        let mut event = tx
            .prepare(
                "INSERT INTO events (organization_id, id, event_type, payload, created) \
                 VALUES (?1, ?2, ?3, '{}', ?4)",
            )
            .expect("prepare");
        let mut attempt = tx
            .prepare(
                "INSERT INTO attempts (delivery_id, attempt, started, duration_ms, status_code, response_excerpt, request_headers) \
                 VALUES (?1, 1, ?2, ?3, ?4, 'ok', ?5)",
            )
            .expect("prepare");
        let headers = serde_json::json!([
            ["content-type", "application/json"],
            ["webhook-id", "dlv_000000000000"],
            ["webhook-timestamp", "1796000000"],
            [
                "webhook-signature",
                "v1,KMqaQxNz57ArCvOOP2ykdILsDXvKizCkJMxwFz9KRDI="
            ],
            ["user-agent", "hookgate/0.1.0"]
        ])
        .to_string();
        let body = vec![b'x'; 600];
        for i in 0..n {
            let created = now - WEEK_MS + (i as i64 * WEEK_MS / n as i64);
            let (status, code) = match mix(i as u64) % 20 {
                0 => ("dead", 500),
                1 => ("failed", 400),
                _ => ("delivered", 200),
            };
            let duration = 20 + (mix(i as u64 | 3 << 40) % 200) as i64;
            insert
                .execute(rusqlite::params![
                    format!("{id_prefix}{i:012}"),
                    org(i),
                    format!("evt_{:012}", i / 2),
                    format!("order.{}", mix((i / 2) as u64 | 1 << 40) % TYPES as u64),
                    destinations[(mix(i as u64 | 2 << 40) % destinations.len() as u64) as usize],
                    status,
                    body,
                    created,
                    code,
                    duration,
                ])
                .expect("insert");
            let event_type = format!("order.{}", mix((i / 2) as u64 | 1 << 40) % TYPES as u64);
            if i % 2 == 0 {
                event
                    .execute(rusqlite::params![
                        org(i),
                        format!("evt_{:012}", i / 2),
                        event_type,
                        created
                    ])
                    .expect("insert event");
            }
            attempt
                .execute(rusqlite::params![
                    format!("{id_prefix}{i:012}"),
                    created,
                    duration,
                    code,
                    headers,
                ])
                .expect("insert attempt");
        }
    }
    tx.commit().expect("commit");
    // The gateway's own checkpoints would otherwise copy the fill's log
    // into the file while pages are measured.
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .expect("checkpoint");
}

/// splitmix64: spreads statuses, types and destinations independently.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Rows per second into a fresh database, with every index and without
/// the search indexes.
async fn write_cost() {
    const ROWS: usize = 200_000;
    let mut rates = Vec::new();
    for keep_search_indexes in [true, false] {
        let gw = TestGateway::start().await;
        let (org, _) = gw.organization("writes").await;
        let db = gw.database_path();
        if !keep_search_indexes {
            let conn = rusqlite::Connection::open(&db).expect("open");
            for index in SEARCH_INDEXES {
                conn.execute(&format!("DROP INDEX {index}"), [])
                    .expect("drop");
            }
        }
        let started = Instant::now();
        let targets: Vec<String> = (0..DESTINATIONS).map(|n| format!("wh_{n}")).collect();
        tokio::task::spawn_blocking(move || fill(&db, "dlv_", ROWS, now_ms(), &targets, |_| &org))
            .await
            .expect("fill");
        rates.push(ROWS as f64 / started.elapsed().as_secs_f64());
    }
    println!(
        "delivery rows inserted: {:.0}/s with the search indexes, {:.0}/s without ({:+.1} µs per row)",
        rates[0],
        rates[1],
        (1.0 / rates[0] - 1.0 / rates[1]) * 1e6
    );
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
}
