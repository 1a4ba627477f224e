//! Forwarding throughput of the extension's receive path, per span, beside a baseline that
//! decodes and re-encodes the same request (what a collector-style pipeline does).
//!
//! `passthrough`: validate + find the span ids (`receiver::inspect`), buffer, batch by
//! concatenation — what the extension does with each OTLP request of the function.
//! `decode_reencode` (baseline): `prost` decode of `ExportTraceServiceRequest` and encode.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flowtrace_extension::buffer::{Buffer, Format, Item, Signal};
use flowtrace_extension::exporter::batches;
use flowtrace_extension::receiver::inspect;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;

const SPANS: usize = 100;

fn request() -> Vec<u8> {
    let attribute = |k: &str, v: &str| KeyValue {
        key: k.to_owned(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(v.to_owned())) }),
        ..Default::default()
    };
    let span = |i: usize| Span {
        trace_id: vec![7; 16],
        span_id: (i as u64 + 1).to_be_bytes().to_vec(),
        parent_span_id: vec![1; 8],
        name: format!("GET /posts/{{id}} {i}"),
        kind: 3,
        start_time_unix_nano: 1_700_000_000_000_000_000,
        end_time_unix_nano: 1_700_000_000_001_000_000,
        attributes: vec![
            attribute("http.request.method", "GET"),
            attribute("url.full", "https://api.example.com/posts/123?x=1"),
            attribute("server.address", "api.example.com"),
            attribute("rpc.system", "aws-api"),
            attribute("aws.request_id", "5e1b7c4a-0d2f-4f1c-9a53-2b6e0b5f8c11"),
        ],
        ..Default::default()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans { spans: (0..SPANS).map(span).collect(), ..Default::default() }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

fn bench(c: &mut Criterion) {
    let body = Bytes::from(request());
    let mut group = c.benchmark_group("forward_100_spans");
    group.throughput(Throughput::Elements(SPANS as u64));
    group.bench_function("passthrough", |b| {
        let mut buffer = Buffer::new(64 * 1024 * 1024);
        b.iter(|| {
            let mut ids = 0usize;
            let spans = inspect(Signal::Traces, Format::Protobuf, &body, |id| ids += id.len()).unwrap_or(0);
            buffer.push(Item { signal: Signal::Traces, format: Format::Protobuf, body: body.clone() });
            if buffer.len() >= 16 {
                black_box(batches(buffer.drain()));
            }
            black_box((spans, ids))
        });
    });
    group.bench_function("decode_reencode_baseline", |b| {
        b.iter(|| {
            let Ok(decoded) = ExportTraceServiceRequest::decode(black_box(&body[..])) else { return 0 };
            black_box(decoded.encode_to_vec()).len()
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
