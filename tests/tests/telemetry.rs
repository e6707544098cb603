//! OpenTelemetry: the real binary exports its spans by OTLP/HTTP to a
//! collector on loopback (decoded here with `opentelemetry-proto`); one
//! trace per event, from ingest through each attempt, and the receiver's
//! `traceparent` names the send span. Without an exporter, a caller's
//! trace context still reaches the receiver.

use axum::body::Bytes;
use hookgate_tests::peers::{Receiver, TokenServer};
use hookgate_tests::{ADMIN_KEY, GatewayProcess, TestGateway, free_port, plugin_bytes};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A span as the collector got it: ids in hex.
#[derive(Debug, Clone)]
struct Span {
    name: String,
    trace_id: String,
    span_id: String,
    parent_id: String,
    /// Every attribute value, as text.
    attributes: Vec<(String, String)>,
    service: String,
}

/// An OTLP/HTTP trace collector on loopback.
struct Collector {
    url: String,
    spans: Arc<Mutex<Vec<Span>>>,
}

impl Collector {
    async fn start() -> Self {
        let spans = Arc::new(Mutex::new(Vec::new()));
        let kept = spans.clone();
        let app = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |body: Bytes| {
                let kept = kept.clone();
                async move {
                    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
                        return (axum::http::StatusCode::BAD_REQUEST, Vec::new());
                    };
                    kept.lock().expect("spans").extend(decode(request));
                    (
                        axum::http::StatusCode::OK,
                        ExportTraceServiceResponse::default().encode_to_vec(),
                    )
                }
            }),
        );
        let (url, _server) = hookgate_tests::peers::serve(app).await;
        Self { url, spans }
    }

    /// Waits until spans named each of `names` arrived in `trace_id` (a name
    /// given twice: two of them).
    async fn wait_for(&self, trace_id: &str, names: &[&str]) -> Vec<Span> {
        for _ in 0..200 {
            let spans: Vec<Span> = self
                .spans
                .lock()
                .expect("spans")
                .iter()
                .filter(|s| s.trace_id == trace_id)
                .cloned()
                .collect();
            let count = |name: &str| spans.iter().filter(|s| s.name == name).count();
            if names
                .iter()
                .all(|n| count(n) >= names.iter().filter(|m| *m == n).count())
            {
                return spans;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "spans {names:?} of trace {trace_id} did not arrive: {:#?}",
            self.spans.lock().expect("spans")
        );
    }
}

fn decode(request: ExportTraceServiceRequest) -> Vec<Span> {
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let text = |v: &Option<opentelemetry_proto::tonic::common::v1::AnyValue>| match v
        .as_ref()
        .and_then(|v| v.value.as_ref())
    {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::BoolValue(b)) => b.to_string(),
        other => format!("{other:?}"),
    };
    let mut out = Vec::new();
    for resource in request.resource_spans {
        let service = resource
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|a| a.key == "service.name")
            .map(|a| text(&a.value))
            .unwrap_or_default();
        for scope in resource.scope_spans {
            for span in scope.spans {
                out.push(Span {
                    name: span.name,
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_id: hex(&span.parent_span_id),
                    attributes: span
                        .attributes
                        .iter()
                        .map(|a| (a.key.clone(), text(&a.value)))
                        .collect(),
                    service: service.clone(),
                });
            }
        }
    }
    out
}

fn named<'a>(spans: &'a [Span], name: &str) -> &'a Span {
    let found: Vec<&Span> = spans.iter().filter(|s| s.name == name).collect();
    assert_eq!(found.len(), 1, "one {name} span: {spans:#?}");
    found[0]
}

fn attribute<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
    span.attributes
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// `00-<trace>-<parent>-<flags>` → (trace, parent).
fn trace_and_parent(traceparent: &str) -> (String, String) {
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceparent}");
    (parts[1].to_owned(), parts[2].to_owned())
}

#[tokio::test]
async fn each_event_is_one_trace_from_ingest_to_the_receiver() {
    let collector = Collector::start().await;
    let tokens = TokenServer::start("otel-client", "otel-secret-value", 3600).await;
    let receiver = Receiver::ok().await;
    let dir = tempfile::tempdir().expect("tmp");
    let gw = GatewayProcess::spawn_with_env(
        dir.path(),
        free_port(),
        &[],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    )
    .await;
    let http = reqwest::Client::new();
    let upload = http
        .put(format!("{}/v1/plugins/partner", gw.url))
        .bearer_auth(ADMIN_KEY)
        .header("content-type", "application/wasm")
        .body(plugin_bytes("partner"))
        .send()
        .await
        .expect("upload");
    assert_eq!(upload.status(), 201);
    let key = gw.organization("traced").await;
    let integration = json!({
        "name": "Traced CRM",
        "hooks": [{"type": "order_created", "method": "POST", "endpoint": format!("{}/hooks", receiver.url)}],
        "authentication": {"grant_type": "client_credentials", "endpoint": tokens.url,
            "credentials": {"client_id": "otel-client", "client_secret": "otel-secret-value"},
            "header_format": "Authorization", "header_value_format": "Bearer %ACCESS_TOKEN%"},
        "plugin": {"name": "partner"},
        "config": {"companyId": "co_1"},
    });
    let created = http
        .post(format!("{}/v1/integrations", gw.url))
        .bearer_auth(&key)
        .json(&integration)
        .send()
        .await
        .expect("integration");
    assert_eq!(created.status(), 201);

    // The platform's own trace: the event's spans join it.
    let platform_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let platform_span = "00f067aa0ba902b7";
    let accepted = http
        .post(format!("{}/v1/events", gw.url))
        .bearer_auth(&key)
        .header(
            "traceparent",
            format!("00-{platform_trace}-{platform_span}-01"),
        )
        .json(&json!({"type": "order_created", "payload": {"order_id": "o1", "shop_id": "s1"}}))
        .send()
        .await
        .expect("event");
    assert_eq!(accepted.status(), 202);
    let got = receiver.wait_for(1).await;
    let (trace, parent) = trace_and_parent(got[0].header("traceparent").expect("traceparent"));
    assert_eq!(
        trace, platform_trace,
        "the receiver is in the event's trace"
    );

    let spans = collector
        .wait_for(
            platform_trace,
            &["ingest", "attempt", "transform", "token_fetch", "send"],
        )
        .await;
    let ingest = named(&spans, "ingest");
    let attempt = named(&spans, "attempt");
    assert_eq!(
        ingest.parent_id, platform_span,
        "ingest continues the caller's span"
    );
    assert_eq!(
        attempt.parent_id, ingest.span_id,
        "the attempt is the event's"
    );
    for stage in ["transform", "token_fetch", "send"] {
        assert_eq!(named(&spans, stage).parent_id, attempt.span_id, "{stage}");
    }
    let send = named(&spans, "send");
    assert_eq!(
        parent, send.span_id,
        "the receiver's parent is the send span"
    );
    assert_eq!(attribute(send, "http.response.status_code"), Some("200"));
    assert_eq!(attribute(attempt, "outcome"), Some("delivered"));
    assert_eq!(ingest.service, "hookgate");
    // No credential is in any span.
    for span in &spans {
        for (k, v) in &span.attributes {
            assert!(
                !v.contains("otel-secret-value") && !v.contains("tok-1"),
                "{}: {k}={v}",
                span.name
            );
        }
    }

    // An event without a caller's trace starts its own; a second attempt
    // (the receiver fails once) joins it too.
    let flaky = Receiver::scripted({
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        move |_, _| {
            if calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                hookgate_tests::peers::Reply::status(503)
            } else {
                hookgate_tests::peers::Reply::status(200)
            }
        }
    })
    .await;
    let subscribed = http
        .post(format!("{}/v1/webhooks", gw.url))
        .bearer_auth(&key)
        .json(&json!({"topic": "retried", "url": flaky.url}))
        .send()
        .await
        .expect("webhook");
    assert_eq!(subscribed.status(), 201);
    let accepted = http
        .post(format!("{}/v1/events", gw.url))
        .bearer_auth(&key)
        .json(&json!({"type": "retried", "payload": {}}))
        .send()
        .await
        .expect("event");
    assert_eq!(accepted.status(), 202);
    let got = flaky.wait_for_within(2, Duration::from_secs(30)).await;
    let traces: Vec<(String, String)> = got
        .iter()
        .map(|r| trace_and_parent(r.header("traceparent").expect("traceparent")))
        .collect();
    assert_eq!(traces[0].0, traces[1].0, "both attempts in one trace");
    assert_ne!(traces[0].0, platform_trace);
    assert_ne!(
        traces[0].1, traces[1].1,
        "each attempt sends from its own span"
    );
    let spans = collector
        .wait_for(
            &traces[0].0,
            &["ingest", "attempt", "attempt", "send", "send"],
        )
        .await;
    let ingest = named(&spans, "ingest");
    assert_eq!(ingest.parent_id, "", "a trace of its own");
    let attempts: Vec<&Span> = spans.iter().filter(|s| s.name == "attempt").collect();
    assert!(attempts.len() >= 2, "{spans:#?}");
    assert!(attempts.iter().all(|a| a.parent_id == ingest.span_id));
    assert!(
        attempts
            .iter()
            .any(|a| attribute(a, "outcome") == Some("retry")),
        "{attempts:#?}"
    );
}

#[tokio::test]
async fn without_tracing_the_callers_trace_context_reaches_the_receiver() {
    let gw = TestGateway::start().await;
    let (_, key) = gw.organization("forward").await;
    let receiver = Receiver::ok().await;
    let (status, _) = gw
        .call(
            reqwest::Method::POST,
            "/v1/webhooks",
            &key,
            Some(json!({"topic": "t", "url": receiver.url})),
        )
        .await;
    assert_eq!(status, 201);
    let context = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    for traceparent in [context, "00-not-a-trace-01"] {
        let accepted = gw
            .request(reqwest::Method::POST, "/v1/events", &key)
            .header("traceparent", traceparent)
            .json(&json!({"type": "t", "payload": {}}))
            .send()
            .await
            .expect("event");
        assert_eq!(accepted.status(), 202);
    }
    let got = receiver.wait_for(2).await;
    let sent: Vec<Option<&str>> = got.iter().map(|r| r.header("traceparent")).collect();
    assert!(sent.contains(&Some(context)), "{sent:?}");
    assert!(
        sent.contains(&None),
        "a malformed one is not passed on: {sent:?}"
    );
}
