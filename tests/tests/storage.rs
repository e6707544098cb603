//! The storage suite, run against both real backends: SQLite in a temporary
//! file and PostgreSQL (`HOOKGATE_TEST_POSTGRES_URL`; required in CI).

use hookgate::model::{
    ApiKey, Authentication, Hook, Integration, Method, Organization, PluginRef, Secret, Webhook,
    WebhookFilter,
};
use hookgate::secrets::Cipher;
use hookgate::store::{Store, StoreError};
use hookgate_tests::fresh_postgres_database;
use std::collections::BTreeMap;

fn cipher() -> Cipher {
    Cipher::new(&[42u8; 32])
}

fn org(id: &str, created: i64) -> (Organization, ApiKey) {
    (
        Organization {
            id: id.into(),
            name: format!("{id} inc"),
            created,
        },
        ApiKey {
            id: format!("key_{id}"),
            organization_id: id.into(),
            secret_hash: "ab".repeat(32),
            created,
            revoked: None,
        },
    )
}

fn integration(id: &str, org: &str, created: i64) -> Integration {
    Integration {
        id: id.into(),
        organization_id: org.into(),
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
        }),
        plugin: Some(PluginRef {
            name: "partner".into(),
            version: None,
        }),
        config: BTreeMap::from([("companyId".into(), "c1".into())]),
        enabled: true,
        disabled_reason: None,
        signing_secret: Secret::new("whsec_c2VjcmV0"),
        created,
        modified: created,
    }
}

fn webhook(id: &str, org: &str, topic: &str, shop: Option<&str>, created: i64) -> Webhook {
    Webhook {
        id: id.into(),
        organization_id: org.into(),
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

    let (a, ka) = org("org_a", 1);
    let (b, kb) = org("org_b", 2);
    store.create_organization(&a, &ka).await.expect("org a");
    store.create_organization(&b, &kb).await.expect("org b");
    assert!(matches!(
        store.create_organization(&a, &ka).await,
        Err(StoreError::Database(_) | StoreError::Conflict(_))
    ));
    let orgs = store.list_organizations(0, 10).await.expect("list");
    assert_eq!(
        (orgs.total, orgs.items.len(), orgs.items[0].id.as_str()),
        (2, 2, "org_a")
    );
    assert_eq!(
        store
            .get_api_key("key_org_a")
            .await
            .expect("key")
            .organization_id,
        "org_a"
    );
    store
        .revoke_api_key("org_a", "key_org_a", 99)
        .await
        .expect("revoke");
    assert_eq!(
        store.get_api_key("key_org_a").await.expect("key").revoked,
        Some(99)
    );
    assert!(matches!(
        store.revoke_api_key("org_b", "key_org_a", 100).await,
        Err(StoreError::NotFound)
    ));

    // Integrations round-trip, secrets included, and stay inside their organization.
    let i = integration("int_1", "org_a", 10);
    store.insert_integration(&i).await.expect("insert");
    assert_eq!(
        store.get_integration("org_a", "int_1").await.expect("get"),
        i
    );
    assert!(matches!(
        store.get_integration("org_b", "int_1").await,
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
        store.get_integration("org_a", "int_1").await.expect("get"),
        changed
    );
    let mut foreign = changed.clone();
    foreign.organization_id = "org_b".into();
    assert!(matches!(
        store.update_integration(&foreign).await,
        Err(StoreError::NotFound)
    ));
    for n in 2..=5 {
        store
            .insert_integration(&integration(&format!("int_{n}"), "org_a", 10 + n))
            .await
            .expect("insert");
    }
    let page = store.list_integrations("org_a", 1, 2).await.expect("list");
    assert_eq!(
        (
            page.total,
            page.items.iter().map(|i| i.id.as_str()).collect::<Vec<_>>()
        ),
        (5, vec!["int_2", "int_3"])
    );
    assert_eq!(
        store
            .list_integrations("org_b", 0, 10)
            .await
            .expect("list")
            .total,
        0
    );
    assert!(matches!(
        store.delete_integration("org_b", "int_1").await,
        Err(StoreError::NotFound)
    ));
    store
        .delete_integration("org_a", "int_1")
        .await
        .expect("delete");
    assert!(matches!(
        store.get_integration("org_a", "int_1").await,
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
            .insert_webhook(&webhook(
                &format!("wh_{n:02}"),
                "org_a",
                topic,
                shop,
                100 + n,
            ))
            .await
            .expect("insert");
    }
    let all = WebhookFilter::default();
    let page = store
        .list_webhooks("org_a", &all, 10, 5)
        .await
        .expect("list");
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
            .list_webhooks("org_a", &by_topic, 0, 100)
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
            .list_webhooks("org_a", &by_shop, 0, 100)
            .await
            .expect("list")
            .total,
        4
    );
    let mut w = store.get_webhook("org_a", "wh_00").await.expect("get");
    assert_eq!(w, webhook("wh_00", "org_a", "NEW_MEMBER", Some("s3"), 100));
    w.deleted = true;
    w.previous_secret = Some((w.secret.clone(), 5_000));
    w.secret = Secret::new("whsec_new");
    store.update_webhook(&w).await.expect("update");
    assert_eq!(store.get_webhook("org_a", "wh_00").await.expect("get"), w);
    assert_eq!(
        store
            .list_webhooks("org_a", &all, 0, 100)
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
            .list_webhooks("org_a", &with_deleted, 0, 100)
            .await
            .expect("list")
            .total,
        12
    );
    assert_eq!(
        store
            .list_webhooks("org_b", &with_deleted, 0, 100)
            .await
            .expect("list")
            .total,
        0
    );
    assert!(matches!(
        store.get_webhook("org_b", "wh_00").await,
        Err(StoreError::NotFound)
    ));

    // Another key cannot read the secrets back.
    let stranger = Store::connect(url, Cipher::new(&[7u8; 32]))
        .await
        .expect("connect");
    assert!(matches!(
        stranger.get_webhook("org_a", "wh_01").await,
        Err(StoreError::Corrupt(_))
    ));
    store.close().await;
}

#[tokio::test]
async fn storage_suite_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    suite(&format!(
        "sqlite://{}",
        dir.path().join("suite.db").display()
    ))
    .await;
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
