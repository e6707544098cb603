//! The storage suite, run against both real backends: SQLite in a temporary
//! file and PostgreSQL (`HOOKGATE_TEST_POSTGRES_URL`; required in CI).

use hookgate::model::{
    ApiKey, Attempt, Authentication, DeliveryStatus, Event, Filter, Hook, Integration, Method,
    Ordering, OrgId, Organization, PluginRef, PreparedRequest, Secret, Webhook, WebhookFilter,
};
use hookgate::secrets::Cipher;
use hookgate::store::{DeliveryFilter, Recorded, RouteHealth, SecretOwner, Store, StoreError};
use hookgate_tests::fresh_postgres_database;
use std::collections::BTreeMap;

fn cipher() -> Cipher {
    Cipher::new(&[42u8; 32])
}

fn org(name: &str, created: i64) -> (Organization, ApiKey) {
    let id = OrgId::generate();
    (
        Organization {
            id: id.clone(),
            name: format!("{name} inc"),
            created,
        },
        ApiKey {
            id: format!("key_{name}_{id}"),
            organization_id: id,
            secret_hash: "ab".repeat(32),
            created,
            revoked: None,
        },
    )
}

fn integration(id: &str, org: &OrgId, created: i64) -> Integration {
    Integration {
        id: id.into(),
        organization_id: org.clone(),
        name: "crm".into(),
        description: Some("d".into()),
        hooks: vec![
            Hook {
                hook_type: "order_created".into(),
                method: Method::Post,
                endpoint: "https://a.example.com/1".into(),
            },
            Hook {
                hook_type: "order_updated".into(),
                method: Method::Put,
                endpoint: "https://a.example.com/2".into(),
            },
        ],
        authentication: Some(Authentication {
            token_endpoint: "https://auth.example.com/token".into(),
            client_id: "doo".into(),
            client_secret: Secret::new("super-strong-pawwsord"),
            scope: Some("write".into()),
            header_format: "Authorization".into(),
            header_value_format: "Bearer %ACCESS_TOKEN%".into(),
            options: hookgate::model::TokenOptions {
                client_auth: Some(hookgate::model::ClientAuth::ClientSecretPost),
                audience: Some("https://api.example.com".into()),
                extra_params: BTreeMap::from([("resource".into(), "orders".into())]),
                token_field: Some("id_token".into()),
                key_id: None,
            },
            tls_client_certificate: Some(hookgate::model::TlsIdentity {
                certificate: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
                    .into(),
                private_key: Secret::new("tls-private-key-pem"),
            }),
        }),
        plugin: Some(PluginRef {
            name: "partner".into(),
            version: None,
        }),
        config: BTreeMap::from([("companyId".into(), "c1".into())]),
        filter: Some(
            Filter::parse(&serde_json::json!({"payload.total": {"$gte": 10}})).expect("filter"),
        ),
        rate_limit: Some(25),
        ordering: Ordering::Fifo,
        enabled: true,
        disabled_reason: None,
        signing_secret: Secret::new("whsec_c2VjcmV0"),
        previous_signing_secret: None,
        created,
        modified: created,
    }
}

fn webhook(id: &str, org: &OrgId, topic: &str, shop: Option<&str>, created: i64) -> Webhook {
    Webhook {
        id: id.into(),
        organization_id: org.clone(),
        topic: topic.into(),
        urls: vec![
            "https://h.example.com/a".into(),
            "https://h.example.com/b".into(),
        ],
        name: Some("n".into()),
        shop_id: shop.map(Into::into),
        method: Method::Post,
        plugin: None,
        config: BTreeMap::new(),
        filter: None,
        rate_limit: None,
        ordering: Ordering::None,
        secret: Secret::new(format!("whsec_{id}")),
        previous_secret: None,
        deleted: false,
        disabled_reason: None,
        created,
        modified: created,
    }
}

async fn suite(url: &str) {
    let store = Store::connect(url, cipher()).await.expect("connect");
    // Migrations are idempotent: a second process connects to the same database.
    let again = Store::connect(url, cipher()).await.expect("connect again");
    again.ping().await.expect("ping");

    let (a, ka) = org("a", 1);
    let (b, kb) = org("b", 2);
    store.create_organization(&a, &ka).await.expect("org a");
    store.create_organization(&b, &kb).await.expect("org b");
    assert!(matches!(
        store.create_organization(&a, &ka).await,
        Err(StoreError::Database(_) | StoreError::Conflict(_))
    ));
    let orgs = store.list_organizations(0, 10).await.expect("list");
    assert_eq!(
        (orgs.total, orgs.items.len(), orgs.items[0].id.as_str()),
        (2, 2, a.id.as_str())
    );
    assert_eq!(
        store
            .get_api_key(&ka.id)
            .await
            .expect("key")
            .organization_id,
        a.id
    );
    store
        .revoke_api_key(&a.id, &ka.id, 99)
        .await
        .expect("revoke");
    assert_eq!(
        store.get_api_key(&ka.id).await.expect("key").revoked,
        Some(99)
    );
    assert!(matches!(
        store.revoke_api_key(&b.id, &ka.id, 100).await,
        Err(StoreError::NotFound)
    ));

    // Integrations round-trip, secrets included, and stay inside their organization.
    let i = integration("int_1", &a.id, 10);
    store.insert_integration(&i).await.expect("insert");
    assert_eq!(store.get_integration(&a.id, "int_1").await.expect("get"), i);
    assert!(matches!(
        store.get_integration(&b.id, "int_1").await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.insert_integration(&i).await,
        Err(StoreError::Conflict(_))
    ));
    let mut changed = i.clone();
    changed.hooks.truncate(1);
    changed.authentication = None;
    changed.modified = 11;
    store.update_integration(&changed).await.expect("update");
    assert_eq!(
        store.get_integration(&a.id, "int_1").await.expect("get"),
        changed
    );
    let mut foreign = changed.clone();
    foreign.organization_id = b.id.clone();
    assert!(matches!(
        store.update_integration(&foreign).await,
        Err(StoreError::NotFound)
    ));
    // Its signing secret rotates like a subscription's, inside its
    // organization only, and an update from an older read keeps the rotation.
    store
        .rotate_signing_secret(
            SecretOwner::Integration,
            &a.id,
            "int_1",
            &Secret::new("whsec_next"),
            7_000,
            12,
        )
        .await
        .expect("rotate");
    assert!(matches!(
        store
            .rotate_signing_secret(
                SecretOwner::Integration,
                &b.id,
                "int_1",
                &Secret::new("whsec_x"),
                7_000,
                12
            )
            .await,
        Err(StoreError::NotFound)
    ));
    store
        .update_integration(&changed)
        .await
        .expect("stale update");
    let rotated = store.get_integration(&a.id, "int_1").await.expect("get");
    assert_eq!(
        (
            rotated.signing_secret.expose(),
            rotated.previous_signing_secret
        ),
        ("whsec_next", Some((i.signing_secret.clone(), 7_000)))
    );
    for n in 2..=5 {
        store
            .insert_integration(&integration(&format!("int_{n}"), &a.id, 10 + n))
            .await
            .expect("insert");
    }
    let page = store.list_integrations(&a.id, 1, 2).await.expect("list");
    assert_eq!(
        (
            page.total,
            page.items.iter().map(|i| i.id.as_str()).collect::<Vec<_>>()
        ),
        (5, vec!["int_2", "int_3"])
    );
    assert_eq!(
        store
            .list_integrations(&b.id, 0, 10)
            .await
            .expect("list")
            .total,
        0
    );
    assert!(matches!(
        store.delete_integration(&b.id, "int_1").await,
        Err(StoreError::NotFound)
    ));
    store
        .delete_integration(&a.id, "int_1")
        .await
        .expect("delete");
    assert!(matches!(
        store.get_integration(&a.id, "int_1").await,
        Err(StoreError::NotFound)
    ));

    // Webhooks: filters, pagination, soft delete, secrets with rotation.
    for n in 0..12 {
        let topic = if n < 8 {
            "NEW_MEMBER"
        } else {
            "UPDATE_PRODUCT"
        };
        let shop = (n % 3 == 0).then_some("s3");
        store
            .insert_webhook(&webhook(&format!("wh_{n:02}"), &a.id, topic, shop, 100 + n))
            .await
            .expect("insert");
    }
    let all = WebhookFilter::default();
    let page = store.list_webhooks(&a.id, &all, 10, 5).await.expect("list");
    assert_eq!(
        (page.total, page.items.len(), page.items[0].id.as_str()),
        (12, 2, "wh_10")
    );
    let by_topic = WebhookFilter {
        topic: Some("UPDATE_PRODUCT".into()),
        ..Default::default()
    };
    assert_eq!(
        store
            .list_webhooks(&a.id, &by_topic, 0, 100)
            .await
            .expect("list")
            .total,
        4
    );
    let by_shop = WebhookFilter {
        shop_id: Some("s3".into()),
        ..Default::default()
    };
    assert_eq!(
        store
            .list_webhooks(&a.id, &by_shop, 0, 100)
            .await
            .expect("list")
            .total,
        4
    );
    let mut w = store.get_webhook(&a.id, "wh_00").await.expect("get");
    assert_eq!(w, webhook("wh_00", &a.id, "NEW_MEMBER", Some("s3"), 100));
    // A rotation moves the secret to `previous` in one statement; an update
    // made from an older read (a PUT racing the rotation) does not undo it.
    let stale = w.clone();
    store
        .rotate_signing_secret(
            SecretOwner::Webhook,
            &a.id,
            "wh_00",
            &Secret::new("whsec_new"),
            5_000,
            100,
        )
        .await
        .expect("rotate");
    assert!(matches!(
        store
            .rotate_signing_secret(
                SecretOwner::Webhook,
                &b.id,
                "wh_00",
                &Secret::new("whsec_x"),
                5_000,
                100
            )
            .await,
        Err(StoreError::NotFound)
    ));
    store.update_webhook(&stale).await.expect("update");
    w.previous_secret = Some((w.secret.clone(), 5_000));
    w.secret = Secret::new("whsec_new");
    w.modified = 101;
    assert_eq!(
        store.get_webhook(&a.id, "wh_00").await.expect("get").secret,
        w.secret
    );
    w.deleted = true;
    store.update_webhook(&w).await.expect("update");
    assert_eq!(store.get_webhook(&a.id, "wh_00").await.expect("get"), w);
    assert_eq!(
        store
            .list_webhooks(&a.id, &all, 0, 100)
            .await
            .expect("list")
            .total,
        11
    );
    let with_deleted = WebhookFilter {
        include_deleted: true,
        ..Default::default()
    };
    assert_eq!(
        store
            .list_webhooks(&a.id, &with_deleted, 0, 100)
            .await
            .expect("list")
            .total,
        12
    );
    assert_eq!(
        store
            .list_webhooks(&b.id, &with_deleted, 0, 100)
            .await
            .expect("list")
            .total,
        0
    );
    assert!(matches!(
        store.get_webhook(&b.id, "wh_00").await,
        Err(StoreError::NotFound)
    ));

    // Another key cannot read the secrets back.
    let stranger = Store::connect(url, Cipher::new(&[7u8; 32]))
        .await
        .expect("connect");
    assert!(matches!(
        stranger.get_webhook(&a.id, "wh_01").await,
        Err(StoreError::Corrupt(_))
    ));
    queue(&store, &a.id, &b.id).await;
    fifo(&store, &b.id).await;
    search(&store, &b.id, &a.id).await;
    store.close().await;
}

fn event(org: &OrgId, id: &str, event_type: &str, created: i64) -> Event {
    Event {
        organization_id: org.clone(),
        id: id.into(),
        event_type: event_type.into(),
        payload: r#"{"n": 12345678901234567890123}"#.into(),
        shop_id: None,
        created,
        trace_context: None,
    }
}

fn outcome(delivery: &str, lease: &str, status: DeliveryStatus, now: i64) -> Recorded {
    Recorded {
        delivery_id: delivery.into(),
        lease: lease.into(),
        status,
        next_attempt_at: now + 10,
        attempt: Some(Attempt {
            delivery_id: delivery.into(),
            attempt: 1,
            started: now - 5,
            duration_ms: 5,
            status_code: Some(503),
            error: Some("receiver answered 503".into()),
            response_excerpt: Some("busy".into()),
            request_headers: vec![
                ("webhook-id".into(), delivery.into()),
                ("authorization".into(), "[redacted]".into()),
            ],
        }),
        error: Some("receiver answered 503".into()),
        route: RouteHealth::Failed {
            target_id: "wh_q".into(),
        },
        now,
    }
}

/// The hot path: ingest (idempotent, routed), claim under a lease, the
/// transform result and the record fenced by it, tenant-scoped reads,
/// replay, lease release.
async fn queue(store: &Store, a: &OrgId, b: &OrgId) {
    let mut w = webhook("wh_q", a, "queue.test", None, 500);
    w.urls = vec![
        "https://q.example.com/1".into(),
        "https://q.example.com/2".into(),
    ];
    store.insert_webhook(&w).await.expect("webhook");

    // The same id twice at once, and once more later: one event.
    let first = event(a, "evt_1", "queue.test", 1_000);
    let (x, y) = tokio::join!(store.ingest(&first), store.ingest(&first));
    let (x, y) = (x.expect("ingest"), y.expect("ingest"));
    assert_eq!(x.deliveries.len(), 2, "one delivery per URL");
    assert_eq!(x.deliveries, y.deliveries);
    assert!(x.created ^ y.created, "exactly one created it: {x:?} {y:?}");
    let again = store.ingest(&first).await.expect("ingest");
    assert_eq!((again.created, &again.deliveries), (false, &x.deliveries));
    // Another organization's event of the same id and type routes nowhere.
    let theirs = store
        .ingest(&event(b, "evt_1", "queue.test", 1_000))
        .await
        .expect("ingest");
    assert!(theirs.created && theirs.deliveries.is_empty(), "{theirs:?}");
    let stored = store.get_event(a, "evt_1").await.expect("event");
    assert_eq!(stored.payload, first.payload, "the payload as posted");
    assert!(matches!(
        store.get_event(b, "evt_2").await,
        Err(StoreError::NotFound)
    ));

    // A claim that leaves the organization out (at its limit in flight)
    // takes none of its deliveries, and sees none of them due.
    let held = store
        .claim("w0/1", 2_000, 60_000, 10, vec![a.clone()])
        .await
        .expect("claim");
    assert!(
        held.deliveries.is_empty() && held.next_due.is_none(),
        "{held:?}"
    );

    // A claim leases both, with the event they need; a second finds none.
    let claim = store
        .claim("w1", 2_000, 60_000, 10, vec![b.clone()])
        .await
        .expect("claim");
    assert_eq!(claim.deliveries.len(), 2);
    assert_eq!(claim.events.len(), 1);
    assert_eq!(claim.events[0].payload, first.payload);
    assert!(
        claim.next_due.is_none_or(|at| at >= 60_000),
        "nothing else is due before the leases end: {:?}",
        claim.next_due
    );
    let none = store
        .claim("w2", 2_001, 60_000, 10, Vec::new())
        .await
        .expect("claim");
    assert!(
        none.deliveries.is_empty(),
        "leased deliveries are not claimed twice"
    );

    // The transform result and the record are fenced by the lease.
    let d = &claim.deliveries[0];
    let request = PreparedRequest {
        body: b"{}".to_vec(),
        content_type: "application/json".into(),
        headers: vec![("x-a".into(), "1".into())],
    };
    assert!(matches!(
        store
            .store_transform(d, "w2", std::slice::from_ref(&request), 2_002)
            .await,
        Err(StoreError::LeaseLost)
    ));
    let fanned = store
        .store_transform(d, "w1", &[request.clone(), request.clone()], 2_002)
        .await
        .expect("transform");
    assert_eq!(fanned.len(), 1, "the second request is a new delivery");
    let lost = store
        .record(outcome(&d.id, "w2", DeliveryStatus::Pending, 2_003))
        .await
        .expect("record");
    assert!(!lost.held);
    let held = store
        .record(outcome(&d.id, "w1", DeliveryStatus::Pending, 2_003))
        .await
        .expect("record");
    assert_eq!((held.held, held.failing_since), (true, Some(2_003)));
    let after = store.get_delivery(a, &d.id).await.expect("delivery");
    assert_eq!(
        (
            after.status,
            after.attempts,
            after.transformed,
            after.next_attempt_at
        ),
        (DeliveryStatus::Pending, 1, true, 2_013)
    );
    assert_eq!(after.headers, request.headers);
    let attempts = store.attempts(a, &d.id).await.expect("attempts");
    assert_eq!(
        (attempts.len(), attempts[0].status_code, attempts[0].attempt),
        (1, Some(503), 1)
    );
    assert_eq!(
        attempts[0].request_headers,
        [
            ("webhook-id".to_owned(), d.id.clone()),
            ("authorization".to_owned(), "[redacted]".to_owned())
        ]
    );
    assert!(store.attempts(b, &d.id).await.expect("attempts").is_empty());
    assert!(matches!(
        store.get_delivery(b, &d.id).await,
        Err(StoreError::NotFound)
    ));

    // Due again after its delay, with the fanned-out one; done for good after.
    let claim = store
        .claim("w1", 2_013, 60_000, 10, Vec::new())
        .await
        .expect("claim");
    let ids: Vec<&str> = claim.deliveries.iter().map(|d| d.id.as_str()).collect();
    assert!(
        ids.contains(&d.id.as_str()) && ids.contains(&fanned[0].as_str()),
        "{ids:?}"
    );
    // Leases are renewed only under the claim that holds them; a renewed
    // lease is not claimable when the old one would have ended.
    let leases: Vec<(String, String)> =
        ids.iter().map(|id| (id.to_string(), "w1".into())).collect();
    assert_eq!(
        store
            .renew_leases(vec![(d.id.clone(), "w9".into())], 90_000)
            .await
            .expect("renew"),
        0
    );
    assert_eq!(store.renew_leases(leases, 90_000).await.expect("renew"), 2);
    let later = store
        .claim("w2", 70_000, 100_000, 10, Vec::new())
        .await
        .expect("claim");
    assert!(
        later
            .deliveries
            .iter()
            .all(|l| !ids.contains(&l.id.as_str())),
        "renewed leases are held: {:?}",
        later.deliveries
    );
    for d in &claim.deliveries {
        let mut done = outcome(&d.id, "w1", DeliveryStatus::Delivered, 2_020);
        done.route = RouteHealth::Succeeded {
            target_id: "wh_q".into(),
        };
        assert!(store.record(done).await.expect("record").held);
    }
    let delivered = DeliveryFilter {
        status: Some(DeliveryStatus::Delivered),
        ..Default::default()
    };
    assert_eq!(
        store
            .list_deliveries(a, &delivered, 0, 10)
            .await
            .expect("list")
            .total,
        2
    );

    // Replay queues the finished ones again, for their organization only.
    assert_eq!(
        store
            .replay(b, None, &delivered, 3_000)
            .await
            .expect("replay"),
        0
    );
    assert_eq!(
        store
            .replay(a, None, &delivered, 3_000)
            .await
            .expect("replay"),
        2
    );
    assert_eq!(
        store
            .replay(a, None, &delivered, 3_001)
            .await
            .expect("replay"),
        0
    );
    let replayed = store.get_delivery(a, &d.id).await.expect("delivery");
    assert_eq!(
        (replayed.status, replayed.attempt_base),
        (DeliveryStatus::Pending, replayed.attempts)
    );

    // Leases held at shutdown are released.
    let claim = store
        .claim("w3/7", 3_000, 60_000, 10, Vec::new())
        .await
        .expect("claim");
    assert!(!claim.deliveries.is_empty());
    assert_eq!(
        store.release_leases("w3/", 3_001).await.expect("release"),
        claim.deliveries.len() as u64
    );
    assert_eq!(
        store
            .claim("w4/1", 3_001, 60_000, 10, Vec::new())
            .await
            .expect("claim")
            .deliveries
            .len(),
        claim.deliveries.len()
    );

    // A filtered subscription on the same topic: only matching events
    // (inside the ingest transaction) get its deliveries.
    let mut filtered = webhook("wh_f", a, "queue.test", None, 501);
    filtered.urls.truncate(1);
    filtered.filter =
        Some(Filter::parse(&serde_json::json!({"payload.n": {"$lt": 100}})).expect("filter"));
    store
        .insert_webhook(&filtered)
        .await
        .expect("filtered webhook");
    let skipped = store
        .ingest(&event(a, "evt_big_n", "queue.test", 999))
        .await
        .expect("ingest");
    assert_eq!(skipped.deliveries.len(), 2, "the filter left its route out");
    let mut small = event(a, "evt_small_n", "queue.test", 999);
    small.payload = r#"{"n": 5}"#.into();
    let all = store.ingest(&small).await.expect("ingest");
    assert_eq!(all.deliveries.len(), 3, "the filter matched");
    store
        .update_webhook(&Webhook {
            deleted: true,
            ..filtered
        })
        .await
        .expect("delete");

    // Retention takes what is final, with its attempts, never a pending
    // delivery (nor the event it belongs to).
    let pending = DeliveryFilter {
        status: Some(DeliveryStatus::Pending),
        ..Default::default()
    };
    let pending_before = store
        .list_deliveries(a, &pending, 0, 100)
        .await
        .expect("list");
    assert!(pending_before.total > 0);
    let purged = store.purge(i64::MAX, 1_000).await.expect("purge");
    assert!(purged >= 1, "{purged}");
    let left = store
        .list_deliveries(a, &DeliveryFilter::default(), 0, 100)
        .await
        .expect("list");
    assert!(
        left.items
            .iter()
            .all(|d| d.status == DeliveryStatus::Pending),
        "{:?}",
        left.items
    );
    assert_eq!(left.total, pending_before.total);
    for d in &left.items {
        store
            .get_event(a, &d.event_id)
            .await
            .expect("its event stays");
    }
    assert!(
        matches!(store.get_event(b, "evt_1").await, Err(StoreError::NotFound)),
        "an event with no delivery left to make is gone"
    );
}

/// A FIFO destination: only the head of its queue is claimable; a head
/// being retried holds the rest; once it is done, the next goes.
async fn fifo(store: &Store, org: &OrgId) {
    let mut w = webhook("wh_fifo", org, "fifo.test", None, 700);
    w.urls.truncate(1);
    w.ordering = Ordering::Fifo;
    store.insert_webhook(&w).await.expect("webhook");
    let mut ids = Vec::new();
    for n in 0..3 {
        let ingested = store
            .ingest(&event(
                org,
                &format!("evt_fifo_{n}"),
                "fifo.test",
                10_000 + n,
            ))
            .await
            .expect("ingest");
        ids.push(ingested.deliveries[0].clone());
    }
    let claim = |lease: &'static str, now: i64| async move {
        store
            .claim(lease, now, now + 60_000, 10, Vec::new())
            .await
            .expect("claim")
            .deliveries
            .into_iter()
            .filter(|d| d.target_id == "wh_fifo")
            .map(|d| d.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(claim("f1", 20_000).await, [ids[0].clone()], "the head only");
    assert!(
        claim("f2", 20_001).await.is_empty(),
        "nothing while the head is in flight"
    );
    // The head fails and is retried later: the rest wait for it.
    let mut retry = outcome(&ids[0], "f1", DeliveryStatus::Pending, 20_002);
    retry.next_attempt_at = 30_000;
    retry.route = RouteHealth::Unchanged;
    assert!(store.record(retry).await.expect("record").held);
    assert!(
        claim("f3", 20_003).await.is_empty(),
        "a retrying head holds the queue"
    );
    assert_eq!(
        claim("f4", 30_000).await,
        [ids[0].clone()],
        "the head again"
    );
    let mut done = outcome(&ids[0], "f4", DeliveryStatus::Delivered, 30_001);
    done.route = RouteHealth::Unchanged;
    assert!(store.record(done).await.expect("record").held);
    assert_eq!(
        claim("f5", 30_002).await,
        [ids[1].clone()],
        "then the next, in order"
    );
    // A head that dies moves the queue on too.
    let mut dead = outcome(&ids[1], "f5", DeliveryStatus::Dead, 30_003);
    dead.route = RouteHealth::Unchanged;
    assert!(store.record(dead).await.expect("record").held);
    assert_eq!(
        claim("f6", 30_004).await,
        [ids[2].clone()],
        "past a dead head"
    );
}

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// Delivery search: each filter alone and together, newest first, pages,
/// exact totals below the count's bound, another organization's nothing.
async fn search(store: &Store, org: &OrgId, other: &OrgId) {
    for (id, topic) in [("wh_sa", "search.a"), ("wh_sb", "search.b")] {
        let mut w = webhook(id, org, topic, None, 800);
        w.urls.truncate(1);
        store.insert_webhook(&w).await.expect("webhook");
    }
    // 12 events at 50_000 + n: types a, b, a, b…; one delivery each.
    let mut ids = Vec::new();
    for n in 0..12 {
        let topic = if n % 2 == 0 { "search.a" } else { "search.b" };
        let mut e = event(org, &format!("evt_search_{n}"), topic, 50_000 + n);
        if n == 0 {
            e.trace_context = Some(TRACEPARENT.into());
        }
        ids.push(store.ingest(&e).await.expect("ingest").deliveries[0].clone());
    }
    // The event's trace context is kept with it and its deliveries.
    let traced = store.get_delivery(org, &ids[0]).await.expect("delivery");
    assert_eq!(traced.trace_context.as_deref(), Some(TRACEPARENT));
    let event = store.get_event(org, "evt_search_0").await.expect("event");
    assert_eq!(event.trace_context.as_deref(), Some(TRACEPARENT));
    let find = |filter: DeliveryFilter, start: i64, limit: i64| async move {
        let page = store
            .list_deliveries(org, &filter, start, limit)
            .await
            .expect("search");
        assert!(!page.total_capped, "{filter:?}");
        let found: Vec<String> = page.items.into_iter().map(|d| d.id).collect();
        (found, page.total)
    };
    let window = |filter: DeliveryFilter| DeliveryFilter {
        since: Some(50_000),
        until: Some(50_012),
        ..filter
    };
    let newest_first = |pick: &dyn Fn(usize) -> bool| -> Vec<String> {
        (0..12)
            .rev()
            .filter(|&n| pick(n))
            .map(|n| ids[n].clone())
            .collect()
    };
    assert_eq!(
        find(window(DeliveryFilter::default()), 0, 100).await,
        (newest_first(&|_| true), 12)
    );
    let type_a = window(DeliveryFilter {
        event_type: Some("search.a".into()),
        ..Default::default()
    });
    assert_eq!(
        find(type_a.clone(), 0, 100).await,
        (newest_first(&|n| n % 2 == 0), 6)
    );
    let to_b = DeliveryFilter {
        destination_id: Some("wh_sb".into()),
        ..Default::default()
    };
    assert_eq!(
        find(to_b.clone(), 1, 2).await,
        (newest_first(&|n| n % 2 == 1)[1..3].to_vec(), 6),
        "a page past the first"
    );
    let narrow = DeliveryFilter {
        since: Some(50_004),
        until: Some(50_008),
        status: Some(DeliveryStatus::Pending),
        ..to_b.clone()
    };
    assert_eq!(
        find(narrow, 0, 100).await,
        (vec![ids[7].clone(), ids[5].clone()], 2)
    );
    let none = DeliveryFilter {
        status: Some(DeliveryStatus::Dead),
        ..type_a
    };
    assert_eq!(find(none, 0, 100).await, (Vec::new(), 0));
    let elsewhere = store
        .list_deliveries(other, &to_b, 0, 100)
        .await
        .expect("search");
    assert_eq!(elsewhere.total, 0, "{:?}", elsewhere.items);
}

#[tokio::test]
async fn storage_suite_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("suite.db");
    let url = format!("sqlite://{}", path.display());
    suite(&url).await;
    // The mTLS key is ciphertext in the table too.
    let raw: Vec<u8> = rusqlite::Connection::open(&path)
        .expect("open")
        .query_row(
            "SELECT tls_private_key FROM integrations WHERE id = 'int_2'",
            [],
            |row| row.get(0),
        )
        .expect("row");
    assert!(!raw.is_empty());
    assert!(!raw.windows(11).any(|w| w == b"private-key"));
    // Every recorded attempt left its duration on its delivery.
    let (attempted, without): (i64, i64) = rusqlite::Connection::open(&path)
        .expect("open")
        .query_row(LAST_DURATIONS, [], |row| Ok((row.get(0)?, row.get(1)?)))
        .expect("row");
    assert!(attempted > 0 && without == 0, "{attempted} {without}");
    rusqlite::Connection::open(&path)
        .expect("open")
        .execute(SWAP_SECRET, [])
        .expect("swap");
    a_copied_secret_does_not_decrypt(&url).await;
}

#[tokio::test]
async fn storage_suite_on_postgres() {
    let Some(url) = fresh_postgres_database().await else {
        return;
    };
    suite(&url).await;
    // Secrets are ciphertext in the table.
    let pool = sqlx::PgPool::connect(&url).await.expect("connect");
    let raw: Vec<u8> =
        sqlx::query_scalar("SELECT client_secret FROM integrations WHERE id = 'int_2'")
            .fetch_one(&pool)
            .await
            .expect("row");
    assert!(!raw.windows(8).any(|w| w == b"pawwsord"));
    let (attempted, without): (i64, i64) = sqlx::query_as(LAST_DURATIONS)
        .fetch_one(&pool)
        .await
        .expect("row");
    assert!(attempted > 0 && without == 0, "{attempted} {without}");
    sqlx::query(SWAP_SECRET).execute(&pool).await.expect("swap");
    a_copied_secret_does_not_decrypt(&url).await;
}

/// Deliveries with an attempt, and of those, the ones without the last
/// attempt's duration.
const LAST_DURATIONS: &str =
    "SELECT COUNT(*), COUNT(*) - COUNT(last_duration_ms) FROM deliveries WHERE attempts > 0";

/// Copies one integration's encrypted client secret into another row, as
/// someone with write access to the database (or a bug) might.
const SWAP_SECRET: &str = "UPDATE integrations SET client_secret = \
     (SELECT client_secret FROM integrations WHERE id = 'int_2') WHERE id = 'int_3'";

/// Each ciphertext is bound to its organization, row and column: the copy
/// does not decrypt, so it cannot be read out (or used) through the other row.
async fn a_copied_secret_does_not_decrypt(url: &str) {
    let store = Store::connect(url, cipher()).await.expect("connect");
    let orgs = store.list_organizations(0, 10).await.expect("orgs");
    let a = &orgs.items[0].id;
    assert!(store.get_integration(a, "int_2").await.is_ok());
    assert!(matches!(
        store.get_integration(a, "int_3").await,
        Err(StoreError::Corrupt(_))
    ));
}

#[tokio::test]
async fn the_api_on_postgres() {
    let Some(url) = fresh_postgres_database().await else {
        return;
    };
    let gw = hookgate_tests::TestGateway::start_with(hookgate_tests::GatewayOptions {
        database_url: Some(url),
        ..Default::default()
    })
    .await;
    let (_, key) = gw.organization("pg").await;
    let body = serde_json::json!({"topic": "customer.created", "webHookUrls": ["https://x.example.com/1"], "shopId": "s"});
    let (status, created) = gw
        .call(reqwest::Method::POST, "/v1/webhooks", &key, Some(body))
        .await;
    assert_eq!(status, 201, "{created}");
    let (status, list) = gw
        .call(reqwest::Method::GET, "/v1/webhooks?shopId=s", &key, None)
        .await;
    assert_eq!(
        (status, list["data"]["total"].clone()),
        (200, serde_json::json!(1))
    );
    let (_, ready) = gw.call(reqwest::Method::GET, "/readyz", "", None).await;
    assert_eq!(ready["data"]["database"], "postgres");
}
