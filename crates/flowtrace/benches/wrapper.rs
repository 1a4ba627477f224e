//! Wrapper cost per invocation: parse the trigger, extract context, start and end the
//! invocation span, arm the timeout guard, and hand the span off — beside a bare handler and
//! beside `lambda_runtime`'s own `OpenTelemetryLayer`, in the same run.
//!
//! The "runtime" service below does what `lambda_runtime` does between `/next` and
//! `/response` (deserialise, call the handler) minus the HTTP, so the differences between
//! the variants are the middleware alone.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use flowtrace::{FlowtraceLayer, Telemetry, TracedHandler};
use lambda_runtime::layers::OpenTelemetryLayer;
use lambda_runtime::{Diagnostic, Error, LambdaEvent, LambdaInvocation};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tower::{Layer, Service, service_fn};
use tracing_subscriber::layer::SubscriberExt;

#[derive(Debug)]
struct DiscardingExporter;

impl SpanExporter for DiscardingExporter {
    async fn export(&self, batch: Vec<SpanData>) -> opentelemetry_sdk::error::OTelSdkResult {
        std::hint::black_box(batch);
        Ok(())
    }
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/../../tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn invocation(body: &[u8]) -> LambdaInvocation {
    let (parts, ()) = http::Response::new(()).into_parts();
    let mut context = lambda_runtime::Context::default();
    context.request_id = "8476a536-e9f4-11e8-9739-2dfe598c3fcd".into();
    context.invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:orders".into();
    context.deadline =
        (SystemTime::now() + Duration::from_secs(900)).duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    context.env_config = Arc::new(lambda_runtime::Config { function_name: "orders".into(), ..Default::default() });
    LambdaInvocation { parts, body: body.to_vec().into(), context }
}

async fn handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
    Ok(Value::Bool(event.payload.is_object()))
}

/// What lambda_runtime does around the handler, minus HTTP, for handler service `H`.
fn runtime<H>(handler: H) -> impl Service<LambdaInvocation, Response = (), Error = Error, Future: Send> + Clone
where
    H: Service<LambdaEvent<Value>, Response = Value> + Clone + Send + 'static,
    H::Error: Into<Diagnostic>,
    H::Future: Send,
{
    service_fn(move |request: LambdaInvocation| {
        let mut handler = handler.clone();
        async move {
            let payload: Value = serde_json::from_slice(&request.body)?;
            let result = handler.call(LambdaEvent::new(payload, request.context)).await.map_err(Into::into);
            std::hint::black_box(serde_json::to_vec(&result.map_err(|d: Diagnostic| d.error_message)?)?);
            Ok::<(), Error>(())
        }
    })
}

fn bench_wrapper(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    // lambda_runtime's layer records through `tracing`; give it a real OTel pipeline, the
    // same bridge a flowtrace function installs.
    let otel_provider = SdkTracerProvider::builder().with_simple_exporter(DiscardingExporter).build();
    let subscriber =
        tracing_subscriber::registry().with(flowtrace::logging::otel_bridge(otel_provider.tracer("bench")));
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let telemetry = Telemetry::builder().exporter(DiscardingExporter).build();
    let mut group = c.benchmark_group("invocation");
    for (label, file) in [("sqs", "sqs.json"), ("apigw", "apigw-rest.json")] {
        let body = fixture(file);
        let mut bare = runtime(service_fn(handler));
        group.bench_with_input(BenchmarkId::new("bare", label), &body, |b, body| {
            b.to_async(&rt).iter(|| {
                let request = invocation(body);
                let call = bare.call(request);
                async move { call.await.unwrap() }
            });
        });
        let mut lambda_otel = OpenTelemetryLayer::new(|| {}).layer(runtime(service_fn(handler)));
        group.bench_with_input(BenchmarkId::new("lambda_runtime_otel_layer", label), &body, |b, body| {
            b.to_async(&rt).iter(|| {
                let request = invocation(body);
                let call = lambda_otel.call(request);
                async move { call.await.unwrap() }
            });
        });
        let mut flowtrace = FlowtraceLayer::new(telemetry.clone())
            .with_traced_handler()
            .layer(runtime(TracedHandler::new(service_fn(handler))));
        group.bench_with_input(BenchmarkId::new("flowtrace", label), &body, |b, body| {
            b.to_async(&rt).iter(|| {
                let request = invocation(body);
                let call = flowtrace.call(request);
                async move { call.await.unwrap() }
            });
        });
    }
    group.finish();

    // The pure part alone: parse, detect the trigger, extract context, build attributes.
    let mut group = c.benchmark_group("plan");
    let config = flowtrace::Config::default();
    let propagator = flowtrace::propagation::default_propagator();
    for (label, file) in [("sqs", "sqs.json"), ("apigw", "apigw-rest.json")] {
        let request = invocation(&fixture(file));
        group.bench_function(label, |b| {
            b.iter(|| {
                flowtrace::invocation::plan(
                    &request.body,
                    &request.context,
                    &config,
                    propagator.as_ref(),
                    false,
                    SystemTime::now(),
                    false,
                )
            });
        });
        group.bench_function(format!("{label}/parse_only"), |b| {
            b.iter(|| serde_json::from_slice::<Value>(&request.body).unwrap());
        });
        group.bench_function(format!("{label}/parse_pruned"), |b| {
            b.iter(|| {
                flowtrace::invocation::parse_for_detection(&request.body, &config.reserved_key, propagator.as_ref())
                    .unwrap()
            });
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_secs(1));
    targets = bench_wrapper
}
criterion_main!(benches);
