//! Per-request cost of flowtrace-reqwest, beside a plain reqwest client in the same run.
//!
//! - `local_server/*`: one GET to a local HTTP server (127.0.0.1, a free port) and its body
//!   read, with a plain `reqwest::Client`, with reqwest-middleware and no middleware, and with
//!   the flowtrace middleware (a sampled CLIENT span under a parent, traceparent injection,
//!   attributes, the span handed to a batch processor).
//! - `no_network/*`: the same request answered by a last middleware without any I/O, so the
//!   difference is the instrumentation alone.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};
use flowtrace_reqwest::{HttpConfig, HttpTracingBuilder};
use http::Extensions;
use opentelemetry::Context;
use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::{TraceContextExt as _, Tracer as _, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Middleware, Next};
use std::sync::Arc;

#[derive(Debug)]
struct DiscardingExporter;

impl SpanExporter for DiscardingExporter {
    async fn export(&self, batch: Vec<SpanData>) -> opentelemetry_sdk::error::OTelSdkResult {
        std::hint::black_box(batch);
        Ok(())
    }
}

/// Answers every request itself: no network.
struct Answer;

#[async_trait::async_trait]
impl Middleware for Answer {
    async fn handle(
        &self,
        request: reqwest::Request,
        _extensions: &mut Extensions,
        _next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        std::hint::black_box(request);
        Ok(reqwest::Response::from(
            http::Response::builder().status(200).header("content-length", "2").body("ok").unwrap(),
        ))
    }
}

fn traced(client: reqwest::Client, provider: &SdkTracerProvider) -> ClientBuilder {
    let tracing = HttpTracingBuilder::new(HttpConfig::default())
        .tracer_provider(provider)
        .propagator(Arc::new(TraceContextPropagator::new()))
        .build();
    ClientBuilder::new(client).with(tracing)
}

async fn get(client: &ClientWithMiddleware, url: &str, cx: &Context) {
    let response = client.get(url).send().with_context(cx.clone()).await.unwrap();
    std::hint::black_box(response.bytes().await.unwrap());
}

fn benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let addr = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().fallback(|| async { "ok" });
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    });
    let url = format!("http://{addr}/orders/42?expand=items");

    let provider = SdkTracerProvider::builder().with_batch_exporter(DiscardingExporter).build();
    let parent = provider.tracer("bench").start("invocation");
    let cx = Context::current_with_span(parent);

    let plain = reqwest::Client::new();
    let bare_middleware = ClientBuilder::new(reqwest::Client::new()).build();
    let traced_client = traced(reqwest::Client::new(), &provider).build();

    let mut group = c.benchmark_group("local_server");
    // Loopback round trips are noisy on a shared 2-core machine: measure longer.
    group.sample_size(200).measurement_time(std::time::Duration::from_secs(10));
    group.bench_function("plain_reqwest", |b| {
        b.to_async(&runtime).iter(|| async {
            let response = plain.get(&url).send().await.unwrap();
            std::hint::black_box(response.bytes().await.unwrap());
        })
    });
    group
        .bench_function("reqwest_middleware_empty", |b| b.to_async(&runtime).iter(|| get(&bare_middleware, &url, &cx)));
    group.bench_function("flowtrace_reqwest", |b| b.to_async(&runtime).iter(|| get(&traced_client, &url, &cx)));
    group.finish();

    let answer_only = ClientBuilder::new(reqwest::Client::new()).with(Answer).build();
    let traced_answer = traced(reqwest::Client::new(), &provider).with(Answer).build();
    let mut group = c.benchmark_group("no_network");
    group.bench_function("middleware_answer_only", |b| b.to_async(&runtime).iter(|| get(&answer_only, &url, &cx)));
    group.bench_function("flowtrace_reqwest", |b| b.to_async(&runtime).iter(|| get(&traced_answer, &url, &cx)));
    group.finish();

    cx.span().end();
    provider.shutdown().ok();
}

criterion_group!(client, benches);
criterion_main!(client);
