//! The dashboard in a real browser: headless Chromium over WebDriver
//! against the real gateway. Sign in with an organization key, create a
//! subscription through the form (a field error first), watch posted
//! events appear, open a delivery's attempts and replay it; hostile data
//! (a receiver answering with markup and script) is shown as text and
//! runs nothing; axe-core finds no serious violation; one organization's
//! key sees only its own data; the admin key sees the plugins. Screenshots
//! of each page go to `target/screenshots/`.

use hookgate_tests::browser::Browser;
use hookgate_tests::peers::{Receiver, Reply};
use hookgate_tests::{ADMIN_KEY, TestGateway, plugin_bytes};
use reqwest::Method;
use serde_json::json;

const HOSTILE: &str = r#"<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>"#;

async fn fill(browser: &Browser, css: &str, text: &str) {
    browser.fill(css, text).await;
}

async fn click(browser: &Browser, css: &str) {
    browser.click(css).await;
}

async fn sign_in(browser: &Browser, gw: &TestGateway, key: &str) {
    browser.goto(&format!("{}/ui/", gw.url)).await;
    fill(browser, "#f-key", key).await;
    click(browser, "form button[type=submit]").await;
}

async fn no_serious_violations(browser: &Browser, page: &str) {
    let violations = browser.accessibility_violations().await;
    assert!(violations.is_empty(), "{page}: {violations:#?}");
}

/// Submits the form labelled `label`.
async fn submit(browser: &Browser, label: &str) {
    browser
        .click(&format!("form[aria-label='{label}'] button[type=submit]"))
        .await;
}

/// Waits (up to 10 s) for the API's error about `name` beside its field.
async fn field_error(browser: &Browser, name: &str) -> String {
    let slot = format!("[data-error-for='{name}']");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let error = browser.text(&slot).await;
        if !error.is_empty() {
            return error;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no error shown beside {name}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Waits for the status line to say `message` (a save's answer).
async fn status_says(browser: &Browser, message: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while browser.text("#status").await != message {
        let now = browser.text("#status").await;
        assert!(
            std::time::Instant::now() < deadline,
            "the status line says `{now}`, not `{message}`"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

async fn pwned(browser: &Browser) -> serde_json::Value {
    browser
        .execute("return window.__pwned === undefined ? null : window.__pwned")
        .await
}

#[tokio::test]
async fn an_organization_sees_and_steers_its_deliveries_in_a_browser() {
    let gw = TestGateway::start().await;
    let (_, key) = gw.organization("acme").await;
    let (_, other_key) = gw.organization("other").await;
    // The receiver answers with markup the dashboard must show as text.
    let receiver = Receiver::scripted(|_, _| Reply {
        body: HOSTILE.into(),
        ..Reply::status(200)
    })
    .await;
    let browser = Browser::start().await;

    // The served page is locked down.
    let page = reqwest::get(format!("{}/ui/", gw.url)).await.expect("get");
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");

    // A wrong key is refused on the sign-in form.
    browser.goto(&format!("{}/ui/", gw.url)).await;
    fill(&browser, "#f-key", "hg_not_a_key").await;
    click(&browser, "form button[type=submit]").await;
    browser.wait_for_text("That key was refused.").await;
    no_serious_violations(&browser, "sign in").await;
    browser.screenshot("sign-in").await;

    sign_in(&browser, &gw, &key).await;
    browser.wait_for_text("Events accepted").await;

    // A subscription through the form: a refused URL first, its error
    // shown beside the field; then a good one, its secret shown once.
    click(&browser, "nav a[href='#/subscriptions']").await;
    click(&browser, "a[href='#/subscriptions/new']").await;
    fill(&browser, "#f-topic", "order.created").await;
    fill(&browser, "#f-webHookUrls", "ftp://example.com/hook").await;
    submit(&browser, "Subscription").await;
    let error = field_error(&browser, "webHookUrls").await;
    assert!(error.starts_with("webHookUrls[0] "), "{error}");
    assert_eq!(
        browser
            .execute("return document.getElementById('f-webHookUrls').getAttribute('aria-invalid')")
            .await,
        "true"
    );
    let (_, subs) = gw.call(Method::GET, "/v1/webhooks", &key, None).await;
    assert_eq!(subs["data"]["total"], 0, "a refused form stores nothing");
    fill(
        &browser,
        "#f-webHookUrls",
        &format!("{}/hook", receiver.url),
    )
    .await;
    submit(&browser, "Subscription").await;
    browser.wait_for_text("Signing secret, shown once").await;
    let first_secret = browser.text(".secret code").await;
    assert!(first_secret.starts_with("whsec_"), "{first_secret}");
    let (_, subs) = gw.call(Method::GET, "/v1/webhooks", &key, None).await;
    assert_eq!(subs["data"]["total"], 1, "{subs}");
    let sub_id = subs["data"]["items"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    no_serious_violations(&browser, "new subscription").await;
    browser.screenshot("subscription").await;

    // Editing it: JSON that does not parse is refused beside its field and
    // changes nothing; then a name and a rate limit are saved.
    fill(&browser, "#f-filter", "{not json").await;
    submit(&browser, "Subscription").await;
    let error = field_error(&browser, "filter").await;
    assert!(error.contains("is not JSON"), "{error}");
    fill(&browser, "#f-filter", "").await;
    fill(&browser, "#f-name", "orders to the shop").await;
    fill(&browser, "#f-rateLimit", "50").await;
    submit(&browser, "Subscription").await;
    status_says(&browser, "Saved.").await;
    let (_, sub) = gw
        .call(Method::GET, &format!("/v1/webhooks/{sub_id}"), &key, None)
        .await;
    assert_eq!(
        (
            sub["data"]["name"].clone(),
            sub["data"]["rateLimit"].clone()
        ),
        (json!("orders to the shop"), json!(50)),
        "{sub}"
    );
    assert_eq!(
        sub["data"]["webHookUrls"],
        json!([format!("{}/hook", receiver.url)])
    );
    // Rotating shows the new secret once.
    click(&browser, "p.actions button").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while browser.text(".secret code").await == first_secret {
        assert!(std::time::Instant::now() < deadline, "no new secret shown");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(browser.text(".secret code").await.starts_with("whsec_"));
    click(&browser, "nav a[href='#/subscriptions']").await;
    browser.wait_for_text("orders to the shop").await;
    no_serious_violations(&browser, "subscriptions").await;
    browser.screenshot("subscriptions").await;

    // Events posted through the API appear among the deliveries.
    for n in 0..3 {
        let (status, _) = gw
            .call(
                Method::POST,
                "/v1/events",
                &key,
                Some(json!({"type": "order.created", "payload": {"n": n, "note": HOSTILE}})),
            )
            .await;
        assert_eq!(status, 202);
    }
    receiver.wait_for(3).await;
    click(&browser, "nav a[href='#/deliveries']").await;
    browser.wait_for_text("3 deliveries").await;
    let delivered = browser.find_all("td.status-delivered").await;
    assert_eq!(delivered.len(), 3);
    no_serious_violations(&browser, "deliveries").await;
    browser.screenshot("deliveries").await;

    // One delivery's attempts, with the receiver's hostile answer as text.
    click(&browser, "tbody a[href^='#/deliveries/dlv_']").await;
    browser.wait_for_text("Attempts").await;
    browser.wait_for_text(HOSTILE).await;
    assert_eq!(
        pwned(&browser).await,
        serde_json::Value::Null,
        "the markup ran"
    );
    // The event's payload and the body sent, markup in them shown as text.
    for shown in ["#event-payload", "#request-body"] {
        let text = browser.text(shown).await;
        assert!(
            text.contains("<script>window.__pwned=2</script>"),
            "{shown}: {text}"
        );
    }
    let images = browser.find_all("main img, main script").await;
    assert!(images.is_empty(), "markup became elements");
    no_serious_violations(&browser, "delivery").await;
    browser.screenshot("delivery").await;
    click(&browser, "#replay").await;
    browser.wait_for_text("Replay queued.").await;
    receiver.wait_for(4).await;

    // The overview counts them.
    click(&browser, "nav a[href='#/overview']").await;
    browser.wait_for_text("Queue depth").await;
    let cards = browser.text(".cards").await;
    assert!(cards.contains("3\nEvents accepted"), "{cards}");
    no_serious_violations(&browser, "overview").await;
    browser.screenshot("overview").await;
    // It follows what happens: a new event shows without a reload.
    let (status, _) = gw
        .call(
            Method::POST,
            "/v1/events",
            &key,
            Some(json!({"type": "order.created", "payload": {"n": 3}})),
        )
        .await;
    assert_eq!(status, 202);
    browser.wait_for_text("4\nEvents accepted").await;

    // Destinations: the subscription's health, and turning it off.
    click(&browser, "nav a[href='#/destinations']").await;
    browser.wait_for_text("100.0 %").await;
    no_serious_violations(&browser, "destinations").await;
    browser.screenshot("destinations").await;
    click(&browser, "tbody button").await;
    browser
        .wait_for_text("disabled: disabled through the API")
        .await;
    let (_, subs) = gw.call(Method::GET, "/v1/webhooks", &key, None).await;
    assert_eq!(subs["data"]["items"][0]["enabled"], false, "{subs}");
    let (_, accepted) = gw
        .call(
            Method::POST,
            "/v1/events",
            &key,
            Some(json!({"type": "order.created", "payload": {}})),
        )
        .await;
    assert_eq!(
        accepted["data"]["deliveries"],
        json!([]),
        "a disabled subscription gets nothing"
    );
    click(&browser, "tbody button").await;
    browser.wait_for_text("enabled").await;
    let (_, subs) = gw.call(Method::GET, "/v1/webhooks", &key, None).await;
    assert_eq!(subs["data"]["items"][0]["enabled"], true, "{subs}");

    // An integration through its form: a bad endpoint named beside its
    // field, then a good one, its signing secret shown once.
    click(&browser, "nav a[href='#/integrations']").await;
    click(&browser, "a[href='#/integrations/new']").await;
    fill(&browser, "[name=name]", "crm").await;
    fill(&browser, "[name='hooks[0].type']", "order.created").await;
    fill(&browser, "[name='hooks[0].endpoint']", "not a url").await;
    submit(&browser, "Integration").await;
    let error = field_error(&browser, "hooks[0].endpoint").await;
    assert!(error.starts_with("hooks[0].endpoint "), "{error}");
    fill(
        &browser,
        "[name='hooks[0].endpoint']",
        &format!("{}/crm", receiver.url),
    )
    .await;
    submit(&browser, "Integration").await;
    browser.wait_for_text("Signing secret, shown once").await;
    let (_, integrations) = gw.call(Method::GET, "/v1/integrations", &key, None).await;
    assert_eq!(integrations["data"]["total"], 1, "{integrations}");
    let int_id = integrations["data"]["items"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();

    // Editing it: a second hook, and a token endpoint that the API refuses
    // beside its field (nothing saved); then without authentication, saved.
    click(&browser, "button.add-hook").await;
    fill(&browser, "[name='hooks[1].type']", "order.updated").await;
    fill(
        &browser,
        "[name='hooks[1].endpoint']",
        &format!("{}/crm-updates", receiver.url),
    )
    .await;
    browser
        .execute("document.querySelector(\"[name='hooks[1].method']\").value = 'PUT'; return null")
        .await;
    click(&browser, "#f-authentication").await;
    fill(
        &browser,
        "[name='authentication.endpoint']",
        "ftp://tokens.example.com",
    )
    .await;
    fill(
        &browser,
        "[name='authentication.credentials.client_id']",
        "crm-client",
    )
    .await;
    fill(
        &browser,
        "[name='authentication.credentials.client_secret']",
        "s3cret-value",
    )
    .await;
    submit(&browser, "Integration").await;
    let error = field_error(&browser, "authentication.endpoint").await;
    assert!(error.starts_with("authentication.endpoint "), "{error}");
    let (_, unchanged) = gw
        .call(
            Method::GET,
            &format!("/v1/integrations/{int_id}"),
            &key,
            None,
        )
        .await;
    assert_eq!(unchanged["data"]["hooks"].as_array().map(Vec::len), Some(1));
    click(&browser, "#f-authentication").await;
    submit(&browser, "Integration").await;
    status_says(&browser, "Saved.").await;
    let (_, saved) = gw
        .call(
            Method::GET,
            &format!("/v1/integrations/{int_id}"),
            &key,
            None,
        )
        .await;
    assert_eq!(
        saved["data"]["hooks"][1],
        json!({"type": "order.updated", "method": "PUT", "endpoint": format!("{}/crm-updates", receiver.url)}),
        "{saved}"
    );
    assert!(saved["data"]["authentication"].is_null(), "{saved}");
    no_serious_violations(&browser, "integration").await;
    browser.screenshot("integration").await;
    click(&browser, "nav a[href='#/integrations']").await;
    browser.wait_for_text("order.updated → ").await;
    no_serious_violations(&browser, "integrations").await;
    browser.screenshot("integrations").await;

    // An event type with a payload schema: one that is no JSON Schema is
    // refused beside the field; then created, and the API holds to it.
    click(&browser, "nav a[href='#/event-types']").await;
    click(&browser, "a[href='#/event-types/new']").await;
    fill(&browser, "[name=name]", "refund.issued").await;
    fill(&browser, "#f-schema", r#"{"type": 12}"#).await;
    submit(&browser, "Event type").await;
    let error = field_error(&browser, "schema").await;
    assert!(error.contains("not a valid JSON Schema"), "{error}");
    fill(
        &browser,
        "#f-schema",
        r#"{"type": "object", "required": ["amount"]}"#,
    )
    .await;
    submit(&browser, "Event type").await;
    status_says(&browser, "Created.").await;
    let (status, refused) = gw
        .call(
            Method::POST,
            "/v1/events",
            &key,
            Some(json!({"type": "refund.issued", "payload": {}})),
        )
        .await;
    assert_eq!(status, 400, "{refused}");
    no_serious_violations(&browser, "event type").await;
    click(&browser, "nav a[href='#/event-types']").await;
    browser.wait_for_text("JSON Schema").await;
    no_serious_violations(&browser, "event types").await;
    browser.screenshot("event-types").await;

    // A source through its form: the missing secret named beside its
    // field; then created, with the address to give the provider.
    click(&browser, "nav a[href='#/sources']").await;
    fill(&browser, "[name=name]", "github").await;
    submit(&browser, "New source").await;
    let error = field_error(&browser, "verify.secret").await;
    assert!(error.starts_with("verify.secret "), "{error}");
    fill(&browser, "[name='verify.secret']", "gh-secret").await;
    submit(&browser, "New source").await;
    browser.wait_for_text("give the provider").await;
    let (_, sources) = gw.call(Method::GET, "/v1/sources", &key, None).await;
    let source_id = sources["data"]["items"][0]["id"]
        .as_str()
        .expect("a source");
    assert_eq!(
        browser.text("td.ingest-url").await,
        format!("{}/v1/ingest/{source_id}", gw.url)
    );
    no_serious_violations(&browser, "sources").await;
    browser.screenshot("sources").await;
    click(&browser, "button[aria-label='Delete github']").await;
    browser.wait_for_text("Deleted github.").await;
    let (_, sources) = gw.call(Method::GET, "/v1/sources", &key, None).await;
    assert_eq!(sources["data"]["total"], 0, "{sources}");

    // The time window of the search: nothing was created after 2999.
    click(&browser, "nav a[href='#/deliveries']").await;
    browser.wait_for("td.status-delivered").await;
    browser
        .execute(
            "document.getElementById('f-since').value = '2999-01-01T00:00'; \
             document.querySelector(\"form[aria-label='Search deliveries'] button[type=submit]\").click(); return null",
        )
        .await;
    browser.wait_for_text("0 deliveries").await;
    let hash = browser.execute("return location.hash").await;
    assert!(
        hash.as_str().is_some_and(|h| h.contains("since=3")),
        "{hash}"
    );

    // Another organization's key sees none of it.
    click(&browser, "#sign-out").await;
    sign_in(&browser, &gw, &other_key).await;
    browser.wait_for_text("Events accepted").await;
    click(&browser, "nav a[href='#/deliveries']").await;
    browser.wait_for_text("0 deliveries").await;
    assert_eq!(pwned(&browser).await, serde_json::Value::Null);
}

#[tokio::test]
async fn the_admin_key_sees_and_rolls_back_plugins() {
    let gw = TestGateway::start().await;
    for plugin in ["standard", "partner"] {
        let response = gw
            .request(Method::PUT, "/v1/plugins/shape", ADMIN_KEY)
            .header("content-type", "application/wasm")
            .body(plugin_bytes(plugin))
            .send()
            .await
            .expect("upload");
        assert_eq!(response.status(), 201);
    }
    let (_, versions) = gw
        .call(Method::GET, "/v1/plugins/shape", ADMIN_KEY, None)
        .await;
    let inactive = versions["data"]
        .as_array()
        .expect("versions")
        .iter()
        .find(|v| v["active"] == false)
        .expect("the first upload is no longer active")["version"]
        .as_str()
        .expect("version")
        .to_owned();

    let browser = Browser::start().await;
    sign_in(&browser, &gw, ADMIN_KEY).await;
    browser.wait_for_text("Plugins").await;

    // Organizations: one created through the form, its key shown once and
    // working; a second key issued for it works too.
    click(&browser, "nav a[href='#/organizations']").await;
    fill(&browser, "[name=name]", "Acme").await;
    submit(&browser, "New organization").await;
    browser.wait_for_text("API key for Acme, shown once").await;
    let first = browser.text(".secret code").await;
    click(&browser, "button[aria-label='New API key for Acme']").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while browser.text(".secret code").await == first {
        assert!(std::time::Instant::now() < deadline, "no second key shown");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let second = browser.text(".secret code").await;
    for key in [&first, &second] {
        let (status, body) = gw.call(Method::GET, "/v1/stats", key, None).await;
        assert_eq!(status, 200, "{key}: {body}");
    }
    no_serious_violations(&browser, "organizations").await;
    browser.screenshot("organizations").await;
    click(&browser, "nav a[href='#/plugins']").await;
    let button = format!("button[aria-label='Activate shape {}']", &inactive[..12]);
    click(&browser, &button).await;
    browser.wait_for_text("is active.").await;
    let (_, versions) = gw
        .call(Method::GET, "/v1/plugins/shape", ADMIN_KEY, None)
        .await;
    let active = versions["data"]
        .as_array()
        .expect("versions")
        .iter()
        .find(|v| v["active"] == true)
        .expect("one active")["version"]
        .clone();
    assert_eq!(active, inactive.as_str(), "rolled back through the page");
    // The other version is now a candidate: its dry run on the events the
    // active one transformed, per event.
    let (_, key) = gw.organization("shaped").await;
    let receiver = Receiver::ok().await;
    let (status, body) = gw
        .call(Method::POST, "/v1/integrations", &key, Some(json!({"name": "p", "hooks": [{"type": "order_created", "endpoint": receiver.url}], "plugin": {"name": "shape"}, "config": {"mode": "log"}})))
        .await;
    assert_eq!(status, 201, "{body}");
    gw.call(
        Method::POST,
        "/v1/events",
        &key,
        Some(json!({"type": "order_created", "payload": {"order_id": "o1", "shop_id": "s1", "note": HOSTILE}})),
    )
    .await;
    receiver.wait_for(1).await;
    browser.goto(&format!("{}/ui/#/plugins", gw.url)).await;
    submit(&browser, "Dry run").await;
    browser.wait_for_text("1 changed").await;
    // The change is shown line by line: the kept and added lines are the
    // candidate's outcome, the kept and removed ones the active version's.
    let lines = browser
        .execute("return [...document.querySelectorAll('pre.diff span')].map((s) => s.textContent)")
        .await;
    let lines: Vec<String> = serde_json::from_value(lines).expect("diff lines");
    let side = |dropped: char| {
        lines
            .iter()
            .filter(|l| !l.starts_with(dropped))
            .map(|l| l.get(2..).unwrap_or("").trim_end_matches('\n'))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let (_, run) = gw
        .call(
            Method::POST,
            "/v1/plugins/shape/dry-run",
            ADMIN_KEY,
            Some(json!({"version": versions["data"].as_array().expect("versions").iter().find(|v| v["active"] == false).expect("candidate")["version"]})),
        )
        .await;
    let outcome = |which: &str| {
        serde_json::to_string_pretty(&run["data"]["events"][0][which]["outcome"]).expect("json")
    };
    assert_eq!(side('-'), outcome("candidate"));
    assert_eq!(side('+'), outcome("active"));
    assert!(lines.iter().any(|l| l.starts_with('-')) && lines.iter().any(|l| l.starts_with('+')));
    assert_eq!(pwned(&browser).await, serde_json::Value::Null);
    no_serious_violations(&browser, "plugins").await;
    browser.screenshot("plugins").await;

    // A candidate's log lines are shown as text: this one logs the event's
    // body, markup and script included.
    let response = gw
        .request(Method::PUT, "/v1/plugins/shape?activate=false", ADMIN_KEY)
        .header("content-type", "application/wasm")
        .body(plugin_bytes("misbehave"))
        .send()
        .await
        .expect("upload");
    assert_eq!(response.status(), 201);
    let logger: serde_json::Value = response.json().await.expect("json");
    let version = logger["data"]["version"].as_str().expect("version");
    browser.execute("location.reload(); return null").await;
    browser
        .wait_for(&format!("option[value='shape {version}']"))
        .await;
    browser
        .execute(&format!(
            "document.getElementById('f-candidate').value = 'shape {version}'; \
             document.querySelector(\"form[aria-label='Dry run'] button[type=submit]\").click(); return null"
        ))
        .await;
    browser.wait_for_text("The candidate logged").await;
    browser
        .wait_for_text("<script>window.__pwned=2</script>")
        .await;
    assert_eq!(
        pwned(&browser).await,
        serde_json::Value::Null,
        "a log line ran"
    );
    let elements = browser.find_all("main img, main script").await;
    assert!(elements.is_empty(), "a log line became elements");
    no_serious_violations(&browser, "plugins with logs").await;
    browser.screenshot("plugin-logs").await;
}

/// What the overview draws: events and deliveries by status in the
/// current bucket, the queue depth, and the failing destination with its
/// latest error; another organization's counts are its own.
#[tokio::test]
async fn stats_count_by_bucket_and_name_the_failing_destinations() {
    stats_are_counted(TestGateway::start().await).await;
}

#[tokio::test]
async fn stats_on_postgres() {
    let Some(url) = hookgate_tests::fresh_postgres_database().await else {
        return;
    };
    let gw = TestGateway::start_with(hookgate_tests::GatewayOptions {
        database_url: Some(url),
        ..Default::default()
    })
    .await;
    stats_are_counted(gw).await;
}

async fn stats_are_counted(gw: TestGateway) {
    let (_, key) = gw.organization("counted").await;
    let (_, other) = gw.organization("elsewhere").await;
    let good = Receiver::ok().await;
    let bad = Receiver::scripted(|_, _| Reply {
        body: "no such customer".into(),
        ..Reply::status(422)
    })
    .await;
    for (topic, url) in [("ok.event", &good.url), ("bad.event", &bad.url)] {
        let (status, body) = gw
            .call(
                Method::POST,
                "/v1/webhooks",
                &key,
                Some(json!({"topic": topic, "url": url})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    for topic in [
        "ok.event",
        "ok.event",
        "bad.event",
        "bad.event",
        "bad.event",
    ] {
        let (status, _) = gw
            .call(
                Method::POST,
                "/v1/events",
                &key,
                Some(json!({"type": topic, "payload": {}})),
            )
            .await;
        assert_eq!(status, 202);
    }
    good.wait_for(2).await;
    bad.wait_for(3).await;
    // Summed over the buckets: the run may straddle a bucket's end.
    let sum = |stats: &serde_json::Value, what: &dyn Fn(&serde_json::Value) -> i64| -> i64 {
        stats["buckets"]
            .as_array()
            .map_or(0, |b| b.iter().map(what).sum())
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let stats = loop {
        let (status, stats) = gw.call(Method::GET, "/v1/stats", &key, None).await;
        assert_eq!(status, 200, "{stats}");
        let data = &stats["data"];
        let failed = sum(data, &|b| b["deliveries"]["failed"].as_i64().unwrap_or(0));
        let delivered = sum(data, &|b| {
            b["deliveries"]["delivered"].as_i64().unwrap_or(0)
        });
        if failed == 3 && delivered == 2 {
            break data.clone();
        }
        assert!(std::time::Instant::now() < deadline, "{stats}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(stats["window"], "hour");
    assert_eq!(stats["buckets"].as_array().map(Vec::len), Some(12));
    assert_eq!(sum(&stats, &|b| b["events"].as_i64().unwrap_or(0)), 5);
    assert_eq!(stats["queueDepth"], 0);
    let failing = &stats["failingDestinations"];
    assert_eq!(failing.as_array().map(Vec::len), Some(1), "{failing}");
    assert_eq!(failing[0]["failures"], 3);
    assert_eq!(failing[0]["endpoint"], bad.url.as_str());
    assert!(
        failing[0]["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("422")),
        "{failing}"
    );

    let (_, day) = gw
        .call(Method::GET, "/v1/stats?window=day", &key, None)
        .await;
    assert_eq!(day["data"]["buckets"].as_array().map(Vec::len), Some(24));
    assert_eq!(sum(&day["data"], &|b| b["events"].as_i64().unwrap_or(0)), 5);
    let (status, _) = gw
        .call(Method::GET, "/v1/stats?window=week", &key, None)
        .await;
    assert_eq!(status, 400);
    let (_, theirs) = gw.call(Method::GET, "/v1/stats", &other, None).await;
    assert_eq!(
        sum(&theirs["data"], &|b| b["events"].as_i64().unwrap_or(0)),
        0
    );
    assert_eq!(theirs["data"]["failingDestinations"], json!([]));
}

/// `GET /v1/destinations`: each subscription URL and integration hook with
/// its recent success rate, p95 latency and last error.
#[tokio::test]
async fn destinations_report_recent_health() {
    let gw = TestGateway::start().await;
    let (_, key) = gw.organization("health").await;
    let flaky = Receiver::scripted(|n, _| Reply::status(if n % 2 == 0 { 200 } else { 400 })).await;
    let (status, body) = gw
        .call(
            Method::POST,
            "/v1/webhooks",
            &key,
            Some(json!({"topic": "t", "url": format!("{}/a", flaky.url)})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = gw
        .call(Method::POST, "/v1/integrations", &key, Some(json!({"name": "crm", "hooks": [{"type": "t", "endpoint": format!("{}/b", flaky.url)}]})))
        .await;
    assert_eq!(status, 201, "{body}");
    for _ in 0..4 {
        gw.call(
            Method::POST,
            "/v1/events",
            &key,
            Some(json!({"type": "t", "payload": {}})),
        )
        .await;
    }
    flaky.wait_for(8).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let list = loop {
        let (status, list) = gw.call(Method::GET, "/v1/destinations", &key, None).await;
        assert_eq!(status, 200, "{list}");
        let finished: i64 = list["data"]["items"].as_array().map_or(0, |items| {
            items
                .iter()
                .filter(|d| d["successRate"].is_number())
                .map(|d| d["recentDeliveries"].as_i64().unwrap_or(0))
                .sum()
        });
        if finished == 8
            && list["data"]["items"]
                .as_array()
                .is_some_and(|i| i.iter().all(|d| d["successRate"].is_number()))
        {
            break list["data"].clone();
        }
        assert!(std::time::Instant::now() < deadline, "{list}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(list["total"], 2);
    let items = list["items"].as_array().expect("items");
    assert_eq!(items[0]["kind"], "webhook");
    assert_eq!(items[1]["kind"], "integration");
    assert_eq!(items[1]["name"], "crm · t");
    let delivered: f64 = items
        .iter()
        .map(|d| d["successRate"].as_f64().unwrap_or(0.0) * 4.0)
        .sum();
    assert_eq!(
        delivered.round() as i64,
        4,
        "half of the eight went through: {list}"
    );
    assert!(
        items.iter().all(|d| d["p95LatencyMs"].is_number()),
        "{list}"
    );
    assert!(
        items
            .iter()
            .any(|d| d["lastError"].as_str().is_some_and(|e| e.contains("400"))),
        "{list}"
    );
    let (_, other) = gw.organization("stranger").await;
    let (_, theirs) = gw.call(Method::GET, "/v1/destinations", &other, None).await;
    assert_eq!(theirs["data"]["total"], 0);
}

/// Lists longer than a page are paged: where the page stands, and the
/// pages after and before it.
#[tokio::test]
async fn long_lists_are_paged() {
    let gw = TestGateway::start().await;
    let (_, key) = gw.organization("busy").await;
    let receiver = Receiver::ok().await;
    let (status, _) = gw
        .call(
            Method::POST,
            "/v1/webhooks",
            &key,
            Some(json!({"topic": "order.created", "url": receiver.url})),
        )
        .await;
    assert_eq!(status, 201);
    for n in 0..55 {
        let (status, _) = gw
            .call(
                Method::POST,
                "/v1/events",
                &key,
                Some(json!({"type": "order.created", "payload": {"n": n}})),
            )
            .await;
        assert_eq!(status, 202);
    }
    let browser = Browser::start().await;
    sign_in(&browser, &gw, &key).await;
    browser.wait_for_text("Events accepted").await;
    click(&browser, "nav a[href='#/deliveries']").await;
    browser.wait_for_text("1–50 of 55").await;
    assert_eq!(browser.find_all("tbody tr").await.len(), 50);
    assert!(browser.find_all("nav.pager a[rel=prev]").await.is_empty());
    click(&browser, "nav.pager a[rel=next]").await;
    browser.wait_for_text("51–55 of 55").await;
    assert_eq!(browser.find_all("tbody tr").await.len(), 5);
    assert!(browser.find_all("nav.pager a[rel=next]").await.is_empty());
    no_serious_violations(&browser, "second page").await;
    click(&browser, "nav.pager a[rel=prev]").await;
    browser.wait_for_text("1–50 of 55").await;
}
