//! The `tracing` bridge: user spans nest under the invocation span, and every log line
//! carries the request id, trace id and span id of its invocation.

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, filter};

/// The target of the per-invocation `tracing` span that puts ids on log lines. It is kept
/// out of the OpenTelemetry bridge: the invocation span already exists there.
pub const INVOCATION_LOG_TARGET: &str = "flowtrace::invocation";

/// Installs a global subscriber: formatted logs (JSON when `AWS_LAMBDA_LOG_FORMAT=JSON`),
/// filtered by `RUST_LOG` or `AWS_LAMBDA_LOG_LEVEL` (default `info`), plus the
/// OpenTelemetry bridge. Does nothing when a subscriber is already set.
pub fn init_subscriber(tracer: opentelemetry_sdk::trace::SdkTracer) {
    let directive = std::env::var("RUST_LOG")
        .or_else(|_| std::env::var("AWS_LAMBDA_LOG_LEVEL").map(|l| l.to_ascii_lowercase()))
        .unwrap_or_else(|_| "info".to_owned());
    let env_filter = EnvFilter::try_new(&directive).unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let fmt = tracing_subscriber::fmt::layer().with_target(true).without_time().with_ansi(false);
    let fmt = if json { fmt.json().flatten_event(true).boxed() } else { fmt.boxed() };
    let result = tracing_subscriber::registry().with(env_filter).with(fmt).with(otel_bridge(tracer)).try_init();
    if result.is_err() {
        tracing::debug!(target: "flowtrace", "flowtrace: a tracing subscriber is already set; keeping it");
    }
}

/// The OpenTelemetry bridge layer, for users who build their own subscriber: pass it
/// `telemetry.tracer().clone()`. It exports `tracing` spans nested under the invocation span.
pub fn otel_bridge<S>(tracer: opentelemetry_sdk::trace::SdkTracer) -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_filter(filter::filter_fn(|metadata| metadata.target() != INVOCATION_LOG_TARGET))
}
