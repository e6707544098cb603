//! Logs and traces.
//!
//! Logs go to stderr (`HOOKGATE_LOG` filters them, default `info`;
//! `HOOKGATE_LOG_FORMAT=json` makes them JSON lines). Traces are exported
//! by OTLP over HTTP (protobuf) when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set; the exporter and the
//! batch processor read the standard `OTEL_*` variables (headers, timeout,
//! sampler, batch delay, service name).
//!
//! One trace per event: the span that accepts it (`ingest`, continuing the
//! caller's `traceparent` when it sent one) is kept with the event as a W3C
//! `traceparent` ([`traceparent`]), and each attempt at each of its
//! deliveries (`attempt`, with `transform`, `token_fetch` and `send`
//! inside) continues it ([`continue_trace`]), however much later and on
//! whichever replica. Receivers get the `send` span's `traceparent`.
//!
//! Only the gateway's own spans are exported (target `hookgate`, level
//! info), whatever `HOOKGATE_LOG` says.

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::collections::HashMap;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::{EnvFilter, LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, fmt};

/// The W3C trace context header.
pub const TRACEPARENT: &str = "traceparent";

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The OTLP exporter could not be built from the `OTEL_*` settings.
    #[error("the OTLP trace exporter could not start: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    /// A global subscriber was already installed.
    #[error("logging was already set up: {0}")]
    Subscriber(#[from] tracing_subscriber::util::TryInitError),
}

/// The installed logs and traces; [`Telemetry::shutdown`] sends the spans
/// still buffered.
#[derive(Debug)]
#[must_use = "shut telemetry down to export the last spans"]
pub struct Telemetry {
    tracer: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Installs the global subscriber: logs, and traces when an OTLP
    /// endpoint is configured.
    pub fn init() -> Result<Self, TelemetryError> {
        let logs =
            EnvFilter::try_from_env("HOOKGATE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
        let json = std::env::var("HOOKGATE_LOG_FORMAT").is_ok_and(|v| v == "json");
        let (json_logs, text_logs) = if json {
            (Some(fmt::layer().json().with_writer(std::io::stderr)), None)
        } else {
            (None, Some(fmt::layer().with_writer(std::io::stderr)))
        };
        let tracer = otlp_configured().then(exporting_provider).transpose()?;
        let traces = tracer.as_ref().map(|provider| {
            tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("hookgate"))
                .with_filter(Targets::new().with_target("hookgate", LevelFilter::INFO))
        });
        tracing_subscriber::registry()
            .with(traces)
            .with(json_logs.with_filter(logs.clone()))
            .with(text_logs.with_filter(logs))
            .try_init()?;
        if tracer.is_some() {
            tracing::info!("exporting traces by OTLP");
        }
        Ok(Self { tracer })
    }

    /// Exports the spans still buffered (blocks up to the exporter's
    /// timeout when the collector is away).
    pub fn shutdown(self) {
        if let Some(provider) = self.tracer
            && let Err(error) = provider.shutdown()
        {
            eprintln!("warning: the last spans were not exported: {error}");
        }
    }
}

fn otlp_configured() -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()))
}

/// A tracer provider exporting by OTLP/HTTP in batches, as `hookgate`
/// unless `OTEL_SERVICE_NAME` names the service.
fn exporting_provider() -> Result<SdkTracerProvider, TelemetryError> {
    use opentelemetry_otlp::{Protocol, WithExportConfig};
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .build()?;
    let mut resource = opentelemetry_sdk::Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("hookgate");
    }
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build())
}

/// The W3C `traceparent` of `span`, when it belongs to a trace (tracing
/// is on and the span is enabled).
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    inject(&span.context())
}

/// Makes `span` a child of the span `traceparent` names. A malformed value
/// is ignored: the span starts a trace of its own.
pub fn continue_trace(span: &tracing::Span, traceparent: &str) {
    let context = extract(traceparent);
    if context.span().span_context().is_valid() {
        // Fails only when the span is disabled, and then there is nothing to join.
        let _ = span.set_parent(context);
    }
}

/// The caller's `traceparent` header, when it is a valid W3C trace context.
pub fn caller_traceparent(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get(TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .and_then(valid_traceparent)
}

/// `traceparent` as the gateway would write it, or `None` when it is not a
/// valid W3C trace context (a caller's header is kept only when valid).
pub fn valid_traceparent(traceparent: &str) -> Option<String> {
    inject(&extract(traceparent))
}

/// The `traceparent` of `context`'s span, when it has a valid one.
fn inject(context: &opentelemetry::Context) -> Option<String> {
    if !context.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(context, &mut carrier);
    carrier.remove(TRACEPARENT)
}

fn extract(traceparent: &str) -> opentelemetry::Context {
    let carrier = HashMap::from([(TRACEPARENT.to_owned(), traceparent.to_owned())]);
    TraceContextPropagator::new().extract(&carrier)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_valid_trace_contexts_are_kept() {
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(valid_traceparent(good).as_deref(), Some(good));
        for bad in [
            "",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "zz-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "<script>",
        ] {
            assert_eq!(valid_traceparent(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn without_a_tracer_spans_have_no_trace() {
        assert_eq!(traceparent(&tracing::info_span!("x")), None);
    }
}
