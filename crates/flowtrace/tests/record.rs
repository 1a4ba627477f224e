//! Per-record spans: each record of a batch continues its own upstream trace.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use flowtrace::{FlowtraceLayer, RecordSpan, Telemetry, TracedHandler};
use lambda_runtime::{Error, LambdaEvent, LambdaInvocation};
use opentelemetry::trace::{SpanKind, Status};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SpanData};
use serde_json::{Value, json};
use std::sync::Arc;
use tower::{Layer, Service, service_fn};

fn sqs_record(message_id: &str, traceparent: Option<&str>) -> Value {
    let attributes = match traceparent {
        Some(tp) => json!({"traceparent": {"stringValue": tp, "dataType": "String"}}),
        None => json!({}),
    };
    json!({
        "messageId": message_id, "receiptHandle": "h", "body": "{}", "md5OfBody": "",
        "attributes": {"SentTimestamp": "1"}, "messageAttributes": attributes,
        "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:orders", "awsRegion": "eu-west-1"
    })
}

async fn run_batch(event: Value) -> Vec<SpanData> {
    let exporter = InMemorySpanExporter::default();
    let telemetry = Telemetry::builder().exporter(exporter.clone()).build();
    let handler = service_fn(|event: LambdaEvent<Value>| async move {
        for record in event.payload["Records"].as_array().unwrap() {
            let span = RecordSpan::start(record);
            if record["messageId"] == "bad" {
                span.fail("poison message");
            }
            span.run(async { tokio::task::yield_now().await }).await;
        }
        Ok::<Value, Error>(Value::Null)
    });
    let runtime = service_fn(move |request: LambdaInvocation| {
        let mut handler = TracedHandler::new(handler);
        async move {
            let payload: Value = serde_json::from_slice(&request.body)?;
            handler.call(LambdaEvent::new(payload, request.context)).await.map_err(|d| d.error_message)?;
            Ok::<(), Error>(())
        }
    });
    let mut service = FlowtraceLayer::new(telemetry).with_traced_handler().layer(runtime);
    let (parts, ()) = http::Response::new(()).into_parts();
    let mut context = lambda_runtime::Context::default();
    context.request_id = "r-batch".into();
    context.env_config = Arc::new(lambda_runtime::Config { function_name: "orders".into(), ..Default::default() });
    let body = serde_json::to_vec(&event).unwrap().into();
    service.call(LambdaInvocation { parts, body, context }).await.unwrap();
    exporter.get_finished_spans().unwrap()
}

#[tokio::test]
async fn each_record_continues_its_own_trace_and_links_the_invocation() {
    let a = "00-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-1111111111111111-01";
    let b = "00-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-2222222222222222-01";
    let spans = run_batch(json!({"Records": [sqs_record("m-a", Some(a)), sqs_record("m-b", Some(b))]})).await;
    let invocation = spans.iter().find(|s| s.name == "process orders" && s.links.len() == 2).expect("invocation span");
    let records: Vec<&SpanData> = spans.iter().filter(|s| !std::ptr::eq(*s, invocation)).collect();
    assert_eq!(records.len(), 2, "{spans:#?}");
    for (span, (trace, parent, id)) in records.iter().zip([
        ("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "1111111111111111", "m-a"),
        ("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "2222222222222222", "m-b"),
    ]) {
        assert_eq!(span.span_context.trace_id().to_string(), trace);
        assert_eq!(span.parent_span_id.to_string(), parent);
        assert_eq!(span.span_kind, SpanKind::Consumer);
        let message_id = span.attributes.iter().find(|kv| kv.key.as_str() == "messaging.message.id").unwrap();
        assert_eq!(message_id.value.to_string(), id);
        assert_eq!(span.links.links.len(), 1);
        assert_eq!(
            span.links.links[0].span_context.span_id(),
            invocation.span_context.span_id(),
            "links back to the invocation"
        );
    }
}

#[tokio::test]
async fn a_record_without_context_nests_under_the_invocation_and_can_fail() {
    let spans = run_batch(json!({"Records": [sqs_record("bad", None)]})).await;
    let invocation =
        spans.iter().find(|s| s.attributes.iter().any(|kv| kv.key.as_str() == "faas.invocation_id")).unwrap();
    let record = spans.iter().find(|s| s.span_context.span_id() != invocation.span_context.span_id()).unwrap();
    assert_eq!(record.parent_span_id, invocation.span_context.span_id());
    assert_eq!(record.span_context.trace_id(), invocation.span_context.trace_id());
    assert_eq!(record.status, Status::error("poison message"));
    assert!(record.links.links.is_empty(), "{:?} invocation {:?}", record.links.links, invocation.span_context);
}

#[test]
fn outside_an_invocation_it_still_works_with_the_global_pipeline() {
    let span = RecordSpan::start(&sqs_record("m-1", Some("00-cccccccccccccccccccccccccccccccc-3333333333333333-01")));
    // The global provider is the no-op one here, but the context is still derived and usable.
    let _ = span.context().clone();
    span.end();
}

#[tokio::test]
async fn a_record_from_the_trace_the_invocation_continues_nests_under_it() {
    let upstream = "00-dddddddddddddddddddddddddddddddd-4444444444444444-01";
    let spans = run_batch(json!({"Records": [sqs_record("m-1", Some(upstream))]})).await;
    let invocation =
        spans.iter().find(|s| s.attributes.iter().any(|kv| kv.key.as_str() == "faas.invocation_id")).unwrap();
    assert_eq!(invocation.parent_span_id.to_string(), "4444444444444444");
    let record = spans.iter().find(|s| s.span_context.span_id() != invocation.span_context.span_id()).unwrap();
    assert_eq!(record.parent_span_id, invocation.span_context.span_id(), "under the invocation, not beside it");
    assert!(record.links.links.is_empty());
}

#[tokio::test]
async fn run_result_fails_the_span_on_err_and_returns_the_result_unchanged() {
    let exporter = InMemorySpanExporter::default();
    let telemetry = Telemetry::builder().exporter(exporter.clone()).build();
    let invocation = opentelemetry::Context::new().with_value(telemetry.clone());
    let record = sqs_record("m-err", None);
    let span = RecordSpan::start_with_context(&record, &invocation);
    let result: Result<(), String> = span.run_result(async { Err("bad payload".to_owned()) }).await;
    assert_eq!(result, Err("bad payload".to_owned()));
    let span = RecordSpan::start_with_context(&record, &invocation);
    assert_eq!(span.run_result(async { Ok::<u8, String>(7) }).await, Ok(7));
    telemetry.flush().await;
    let statuses: Vec<Status> = exporter.get_finished_spans().unwrap().into_iter().map(|s| s.status).collect();
    assert_eq!(statuses, [Status::error("bad payload"), Status::Unset]);
}
