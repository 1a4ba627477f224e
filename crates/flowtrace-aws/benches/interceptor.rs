//! The flowtrace interceptor's cost per AWS SDK call, without the network: each client
//! answers from a canned in-memory HTTP response, so the difference between the bare and the
//! instrumented client of a pair is the interceptor (span, attributes, injection, response
//! parsing) alone. Both run in the same process, under the same tracer provider, whose span
//! processor discards ended spans (hand-off is the wrapper's cost, measured there).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../tests/common/canned.rs"]
mod canned;

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_runtime_api::client::behavior_version::BehaviorVersion;
use aws_types::SdkConfig;
use aws_types::region::Region;
use canned::Canned;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use opentelemetry::Context;
use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::{TraceContextExt, Tracer, TracerProvider as _};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, Span, SpanData, SpanProcessor};
use std::time::{Duration, Instant};

#[derive(Debug)]
struct Discard;

impl SpanProcessor for Discard {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}
    fn on_end(&self, span: SpanData) {
        std::hint::black_box(span);
    }
    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }
    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

fn sdk_config(http: Canned) -> SdkConfig {
    SdkConfig::builder()
        .region(Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new("test", "test", None, None, "test")))
        .behavior_version(BehaviorVersion::latest())
        .http_client(http.forgetful())
        .build()
}

/// `added_interleaved`: the bare and the instrumented call alternately, timed separately; the
/// time reported per iteration is the instrumented calls' total minus the bare calls' total,
/// so a change in machine load during the run hits both sides alike.
macro_rules! bench_added {
    ($group:expr, $rt:expr, $cx:ident, $bare:expr, $instrumented:expr, |$client:ident| $call:expr) => {{
        let ($cx, bare_client, instrumented_client) = (&$cx, $bare, $instrumented);
        $group.bench_function(BenchmarkId::from_parameter("added_interleaved"), |b| {
            b.to_async($rt).iter_custom(|iters| async move {
                let (mut bare, mut instrumented) = (Duration::ZERO, Duration::ZERO);
                for _ in 0..iters {
                    let $client = bare_client;
                    let start = Instant::now();
                    std::hint::black_box($call.await.unwrap());
                    bare += start.elapsed();
                    let $client = instrumented_client;
                    let start = Instant::now();
                    std::hint::black_box($call.await.unwrap());
                    instrumented += start.elapsed();
                }
                instrumented.saturating_sub(bare)
            })
        });
    }};
}

fn bench(c: &mut Criterion) {
    let provider = SdkTracerProvider::builder().with_span_processor(Discard).build();
    opentelemetry::global::set_tracer_provider(provider.clone());
    let root = provider.tracer("bench").start("invocation");
    let cx = Context::current_with_span(root);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();

    let sqs_config = sdk_config(Canned::new(
        200,
        &[("x-amzn-requestid", "req-1"), ("content-type", "application/x-amz-json-1.0")],
        r#"{"MD5OfMessageBody":"5d41402abc4b2a76b9719d911017c592","MessageId":"8b1a2c3d-0000-4000-8000-000000000001"}"#,
    ));
    let sqs_bare = aws_sdk_sqs::Client::new(&sqs_config);
    let sqs = flowtrace_aws::sqs_client(&sqs_config);
    let spans_only = flowtrace_aws::Config::builder().inject_none().build().unwrap();
    let sqs_spans_only = aws_sdk_sqs::Client::from_conf(
        flowtrace_aws::instrument_with(aws_sdk_sqs::config::Builder::from(&sqs_config), spans_only).build(),
    );

    let ddb_config = sdk_config(Canned::new(200, &[("x-amzn-requestid", "req-2")], "{}"));
    let ddb_bare = aws_sdk_dynamodb::Client::new(&ddb_config);
    let ddb = flowtrace_aws::dynamodb_client(&ddb_config);

    let kinesis_config = sdk_config(Canned::new(
        200,
        &[("x-amzn-requestid", "req-3")],
        r#"{"ShardId":"shardId-000000000000","SequenceNumber":"49590338271490256608559692538361571095921575989136588898"}"#,
    ));
    let kinesis_bare = aws_sdk_kinesis::Client::new(&kinesis_config);
    let kinesis = flowtrace_aws::kinesis_client(&kinesis_config);

    let mut group = c.benchmark_group("sqs_send_message");
    for (name, client) in [("bare", &sqs_bare), ("flowtrace_spans_only", &sqs_spans_only), ("flowtrace", &sqs)] {
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.to_async(&rt).iter(|| {
                client
                    .send_message()
                    .queue_url("https://sqs.us-east-1.amazonaws.com/123456789012/orders")
                    .message_body("hello")
                    .send()
                    .with_context(cx.clone())
            })
        });
    }
    bench_added!(group, &rt, cx, &sqs_bare, &sqs, |client| client
        .send_message()
        .queue_url("https://sqs.us-east-1.amazonaws.com/123456789012/orders")
        .message_body("hello")
        .send()
        .with_context(cx.clone()));
    group.finish();

    let mut group = c.benchmark_group("dynamodb_put_item");
    for (name, client) in [("bare", &ddb_bare), ("flowtrace", &ddb)] {
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.to_async(&rt).iter(|| {
                client
                    .put_item()
                    .table_name("Posts")
                    .item("pk", aws_sdk_dynamodb::types::AttributeValue::S("post#1".into()))
                    .item("title", aws_sdk_dynamodb::types::AttributeValue::S("hello".into()))
                    .send()
                    .with_context(cx.clone())
            })
        });
    }
    bench_added!(group, &rt, cx, &ddb_bare, &ddb, |client| client
        .put_item()
        .table_name("Posts")
        .item("pk", aws_sdk_dynamodb::types::AttributeValue::S("post#1".into()))
        .item("title", aws_sdk_dynamodb::types::AttributeValue::S("hello".into()))
        .send()
        .with_context(cx.clone()));
    group.finish();

    let mut group = c.benchmark_group("kinesis_put_record_json");
    for (name, client) in [("bare", &kinesis_bare), ("flowtrace", &kinesis)] {
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.to_async(&rt).iter(|| {
                client
                    .put_record()
                    .stream_name("posts")
                    .partition_key("p1")
                    .data(aws_sdk_kinesis::primitives::Blob::new(&br#"{"post":1,"title":"hello"}"#[..]))
                    .send()
                    .with_context(cx.clone())
            })
        });
    }
    bench_added!(group, &rt, cx, &kinesis_bare, &kinesis, |client| client
        .put_record()
        .stream_name("posts")
        .partition_key("p1")
        .data(aws_sdk_kinesis::primitives::Blob::new(&br#"{"post":1,"title":"hello"}"#[..]))
        .send()
        .with_context(cx.clone()));
    group.finish();
}

/// Pieces of the interceptor's own work, to see where its cost goes.
fn pieces(c: &mut Criterion) {
    let provider = SdkTracerProvider::builder().with_span_processor(Discard).build();
    opentelemetry::global::set_tracer_provider(provider.clone());
    let cx = Context::current_with_span(provider.tracer("bench").start("invocation"));
    let mut group = c.benchmark_group("pieces");
    group.bench_function("global_tracer", |b| b.iter(|| opentelemetry::global::tracer("flowtrace-aws")));
    group.bench_function("span_12_attributes_start_end", |b| {
        let tracer = opentelemetry::global::tracer("flowtrace-aws");
        b.iter(|| {
            let attributes: Vec<opentelemetry::KeyValue> =
                (0..12).map(|i| opentelemetry::KeyValue::new(format!("k{i}"), "value".to_owned())).collect();
            let span =
                tracer.span_builder("SQS.SendMessage").with_attributes(attributes).start_with_context(&tracer, &cx);
            let cx = cx.with_span(span);
            cx.span().end();
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_secs(1));
    targets = bench, pieces
}
criterion_main!(benches);
