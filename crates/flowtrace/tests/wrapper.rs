//! The wrapper in-process: the real `FlowtraceLayer` and `TracedHandler`, composed the way
//! `lambda_runtime` composes them, with the SDK's in-memory exporter. The end-to-end test
//! through a Lambda Runtime API emulator lives in the workspace `tests/` crate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use flowtrace::{Config, FlowtraceLayer, Telemetry, TracedHandler};
use flowtrace_contract::attr;
use lambda_runtime::{Diagnostic, Error, LambdaEvent, LambdaInvocation};
use opentelemetry::KeyValue;
use opentelemetry::trace::{SpanKind, Status};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SpanData};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tower::{Layer, Service, ServiceExt, service_fn};

const UPSTREAM_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const UPSTREAM_SPAN: &str = "b7ad6b7169203331";

fn traceparent(trace: &str, span: &str) -> String {
    format!("00-{trace}-{span}-01")
}

struct Harness {
    telemetry: Telemetry,
    exporter: InMemorySpanExporter,
    /// What the fake runtime posted, in order: Ok(response) or Err(diagnostic).
    posted: Arc<Mutex<Vec<Result<Value, Diagnostic>>>>,
}

impl Harness {
    fn new(config: Config) -> Self {
        let exporter = InMemorySpanExporter::default();
        let telemetry = Telemetry::builder().config(config).exporter(exporter.clone()).build();
        Self { telemetry, exporter, posted: Arc::default() }
    }

    fn spans(&self) -> Vec<SpanData> {
        self.exporter.get_finished_spans().unwrap()
    }

    fn invocation_span(&self, request_id: &str) -> SpanData {
        self.spans()
            .into_iter()
            .find(|s| attribute(s, "faas.invocation_id").as_deref() == Some(request_id))
            .unwrap_or_else(|| panic!("no invocation span for {request_id}: {:#?}", self.spans()))
    }

    /// Runs one invocation through layer → fake runtime → traced handler, as lambda_runtime
    /// does: deserialise, call the handler, "post" the result, complete.
    async fn invoke<F, Fut>(&self, event: Value, context: lambda_runtime::Context, handler: F) -> Result<(), Error>
    where
        F: Fn(LambdaEvent<Value>) -> Fut + Clone + Send + 'static,
        Fut: std::future::Future<Output = Result<Value, Error>> + Send + 'static,
    {
        let posted = self.posted.clone();
        let runtime = service_fn(move |request: LambdaInvocation| {
            let posted = posted.clone();
            let mut handler = TracedHandler::new(service_fn(handler.clone()));
            async move {
                let payload = match serde_json::from_slice::<Value>(&request.body) {
                    Ok(payload) => payload,
                    Err(error) => {
                        posted.lock().unwrap().push(Err(Diagnostic {
                            error_type: "DeserializeError".into(),
                            error_message: error.to_string(),
                        }));
                        return Ok::<(), Error>(());
                    }
                };
                let result = handler.call(LambdaEvent::new(payload, request.context)).await;
                posted.lock().unwrap().push(result);
                Ok(())
            }
        });
        let mut service = FlowtraceLayer::new(self.telemetry.clone()).with_traced_handler().layer(runtime);
        service.ready().await?.call(invocation_with_body(serde_json::to_vec(&event).unwrap(), context)).await
    }
}

fn invocation_with_body(body: Vec<u8>, context: lambda_runtime::Context) -> LambdaInvocation {
    let (parts, ()) = http::Response::new(()).into_parts();
    LambdaInvocation { parts, body: body.into(), context }
}

fn lambda_context(request_id: &str) -> lambda_runtime::Context {
    let mut context = lambda_runtime::Context::default();
    context.request_id = request_id.to_owned();
    context.invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:orders".to_owned();
    context.env_config = Arc::new(lambda_runtime::Config { function_name: "orders".into(), ..Default::default() });
    context
}

fn deadline_in(duration: Duration) -> u64 {
    (SystemTime::now() + duration).duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| kv.value.to_string())
}

async fn ok_handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
    Ok(json!({"echo": event.payload}))
}

fn sns_event(traceparent: &str) -> Value {
    json!({"Records": [{
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "EventSubscriptionArn": "arn:aws:sns:eu-west-1:123456789012:Posts-Notifications:2bcfbf39",
        "Sns": {
            "Type": "Notification",
            "MessageId": "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
            "TopicArn": "arn:aws:sns:eu-west-1:123456789012:Posts-Notifications",
            "Message": "{\"title\":\"hello\"}",
            "Timestamp": "2026-11-24T00:00:00.000Z",
            "MessageAttributes": {"traceparent": {"Type": "String", "Value": traceparent}}
        }
    }]})
}

fn sqs_record(message_id: &str, traceparent: &str) -> Value {
    json!({
        "messageId": message_id,
        "receiptHandle": "AQEB",
        "body": "{}",
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1545082649183"},
        "messageAttributes": {"traceparent": {"stringValue": traceparent, "dataType": "String"}},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:orders-queue",
        "awsRegion": "eu-west-1"
    })
}

#[tokio::test]
async fn sns_event_with_traceparent_continues_the_upstream_trace() {
    let harness = Harness::new(Config::default());
    harness
        .invoke(sns_event(&traceparent(UPSTREAM_TRACE, UPSTREAM_SPAN)), lambda_context("r-sns"), ok_handler)
        .await
        .unwrap();
    let span = harness.invocation_span("r-sns");
    assert_eq!(span.span_context.trace_id().to_string(), UPSTREAM_TRACE);
    assert_eq!(span.parent_span_id.to_string(), UPSTREAM_SPAN);
    assert_eq!(span.span_kind, SpanKind::Consumer);
    assert_eq!(span.name, "process Posts-Notifications");
    assert_eq!(attribute(&span, "faas.trigger").as_deref(), Some("pubsub"));
    assert_eq!(attribute(&span, attr::PARENT_ORIGIN).as_deref(), Some("event"));
    assert_eq!(attribute(&span, "cloud.account.id").as_deref(), Some("123456789012"));
    assert_eq!(span.status, Status::Unset);
}

#[tokio::test]
async fn sqs_batch_with_three_upstreams_is_a_new_root_with_three_links() {
    let harness = Harness::new(Config::default());
    let traces =
        ["11111111111111111111111111111111", "22222222222222222222222222222222", "33333333333333333333333333333333"];
    let records: Vec<Value> =
        traces.iter().enumerate().map(|(i, t)| sqs_record(&format!("m-{i}"), &traceparent(t, UPSTREAM_SPAN))).collect();
    harness.invoke(json!({ "Records": records }), lambda_context("r-sqs"), ok_handler).await.unwrap();
    let span = harness.invocation_span("r-sqs");
    assert_eq!(span.parent_span_id, opentelemetry::trace::SpanId::INVALID, "a batch of many upstreams has no parent");
    assert!(!traces.contains(&span.span_context.trace_id().to_string().as_str()));
    let links = &span.links.links;
    assert_eq!(links.len(), 3);
    for (i, link) in links.iter().enumerate() {
        assert_eq!(link.span_context.trace_id().to_string(), traces[i]);
        let id =
            link.attributes.iter().find(|kv| kv.key.as_str() == "messaging.message.id").map(|kv| kv.value.to_string());
        assert_eq!(id.as_deref(), Some(format!("m-{i}").as_str()));
    }
}

#[tokio::test]
async fn cold_start_is_true_on_the_first_invocation_only() {
    let harness = Harness::new(Config::default());
    for request_id in ["r-1", "r-2", "r-3"] {
        harness.invoke(json!({}), lambda_context(request_id), ok_handler).await.unwrap();
    }
    let cold: Vec<Option<String>> =
        ["r-1", "r-2", "r-3"].iter().map(|r| attribute(&harness.invocation_span(r), "faas.coldstart")).collect();
    assert_eq!(cold, [Some("true".into()), Some("false".into()), Some("false".into())]);
}

#[tokio::test]
async fn handler_error_marks_the_span_and_reaches_lambda_unchanged() {
    let harness = Harness::new(Config::default());
    harness
        .invoke(json!({}), lambda_context("r-err"), |_event| async { Err::<Value, Error>("card declined".into()) })
        .await
        .unwrap();
    let span = harness.invocation_span("r-err");
    assert_eq!(span.status, Status::error("card declined"));
    let exception = span.events.iter().find(|e| e.name == "exception").expect("an exception event");
    let message = exception.attributes.iter().find(|kv| kv.key.as_str() == "exception.message").unwrap();
    assert_eq!(message.value.to_string(), "card declined");
    let posted = harness.posted.lock().unwrap();
    let diagnostic = posted[0].as_ref().unwrap_err();
    assert_eq!(diagnostic.error_message, "card declined");
    let direct: Diagnostic = Error::from("card declined").into();
    assert_eq!(diagnostic.error_type, direct.error_type, "the same Diagnostic lambda_runtime would build");
}

#[tokio::test]
async fn handler_panic_marks_the_span_and_still_unwinds() {
    let harness = Harness::new(Config::default());
    let outcome = tokio::spawn({
        let telemetry = harness.telemetry.clone();
        async move {
            let inner = service_fn(|request: LambdaInvocation| async move {
                let mut handler = TracedHandler::new(service_fn(|_e: LambdaEvent<Value>| async {
                    if true {
                        panic!("index out of bounds");
                    }
                    Ok::<Value, Error>(Value::Null)
                }));
                handler
                    .call(LambdaEvent::new(Value::Null, request.context))
                    .await
                    .map(|_| ())
                    .map_err(|d| d.error_message.into())
            });
            let mut service = FlowtraceLayer::new(telemetry).layer(inner);
            service.call(invocation_with_body(b"{}".to_vec(), lambda_context("r-panic"))).await
        }
    })
    .await;
    assert!(outcome.unwrap_err().is_panic(), "the panic is resumed for lambda_runtime to report");
    // The future was dropped mid-poll, so its span ends on drop; the processor still sees it.
    harness.telemetry.flush().await;
    let span = harness.invocation_span("r-panic");
    assert_eq!(span.status, Status::error("index out of bounds"));
    assert!(span.events.iter().any(|e| e.name == "exception"
        && e.attributes.iter().any(|kv| kv.key.as_str() == "exception.type" && kv.value.to_string() == "panic")));
}

#[tokio::test]
async fn http_5xx_response_is_an_error_and_4xx_is_not() {
    let harness = Harness::new(Config::default());
    let request = |path: &str| {
        json!({
            "resource": "/posts/{id}", "path": path, "httpMethod": "GET",
            "headers": {"Host": "api.example.com"},
            "requestContext": {"requestId": "gw-1", "stage": "prod", "apiId": "abc", "httpMethod": "GET", "resourcePath": "/posts/{id}"},
            "body": null, "isBase64Encoded": false
        })
    };
    harness
        .invoke(request("/posts/1"), lambda_context("r-503"), |_e| async {
            Ok(json!({"statusCode": 503, "body": "down"}))
        })
        .await
        .unwrap();
    harness
        .invoke(request("/posts/2"), lambda_context("r-404"), |_e| async {
            Ok(json!({"statusCode": 404, "body": "no"}))
        })
        .await
        .unwrap();
    let failed = harness.invocation_span("r-503");
    assert_eq!(failed.span_kind, SpanKind::Server);
    assert_eq!(failed.name, "GET /posts/{id}");
    assert_eq!(failed.status, Status::error("HTTP 503"));
    assert_eq!(attribute(&failed, "http.response.status_code").as_deref(), Some("503"));
    let missing = harness.invocation_span("r-404");
    assert_eq!(missing.status, Status::Unset);
    assert_eq!(attribute(&missing, "http.response.status_code").as_deref(), Some("404"));
}

#[tokio::test]
async fn spans_are_handed_off_only_after_the_response_is_posted() {
    let harness = Harness::new(Config::default());
    let exporter = harness.exporter.clone();
    let tracer = harness.telemetry.tracer().clone();
    let exported_while_running = Arc::new(AtomicBool::new(false));
    let seen = exported_while_running.clone();
    harness
        .invoke(json!({}), lambda_context("r-order"), move |_e| {
            let exporter = exporter.clone();
            let seen = seen.clone();
            let tracer = tracer.clone();
            async move {
                drop(opentelemetry::trace::Tracer::start(&tracer, "child"));
                seen.store(!exporter.get_finished_spans().unwrap().is_empty(), Ordering::SeqCst);
                Ok(Value::Null)
            }
        })
        .await
        .unwrap();
    assert!(!exported_while_running.load(Ordering::SeqCst), "nothing may be exported before the response is posted");
    assert_eq!(harness.posted.lock().unwrap().len(), 1);
    assert!(!harness.spans().is_empty(), "everything is exported once the invocation completes");
}

#[tokio::test]
async fn user_spans_nest_under_the_invocation_span() {
    use tracing_subscriber::layer::SubscriberExt;
    let harness = Harness::new(Config::default());
    let subscriber =
        tracing_subscriber::registry().with(flowtrace::logging::otel_bridge(harness.telemetry.tracer().clone()));
    let _default = tracing::subscriber::set_default(subscriber);
    #[tracing::instrument]
    async fn load_post(id: u32) -> u32 {
        tokio::task::yield_now().await;
        id
    }
    harness
        .invoke(sns_event(&traceparent(UPSTREAM_TRACE, UPSTREAM_SPAN)), lambda_context("r-nest"), |_e| async {
            load_post(7).await;
            Ok(Value::Null)
        })
        .await
        .unwrap();
    let invocation = harness.invocation_span("r-nest");
    let child = harness.spans().into_iter().find(|s| s.name == "load_post").expect("the user's span is exported");
    assert_eq!(child.span_context.trace_id(), invocation.span_context.trace_id());
    assert_eq!(child.parent_span_id, invocation.span_context.span_id());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_invocations_never_mix_parents_or_cold_starts() {
    let harness = Arc::new(Harness::new(Config::default()));
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let run = |request_id: &'static str, trace: &'static str| {
        let harness = harness.clone();
        let barrier = barrier.clone();
        let tracer = harness.telemetry.tracer().clone();
        tokio::spawn(async move {
            harness
                .invoke(sns_event(&traceparent(trace, UPSTREAM_SPAN)), lambda_context(request_id), move |_e| {
                    let barrier = barrier.clone();
                    let tracer = tracer.clone();
                    async move {
                        // Both invocations are inside their handlers at once.
                        barrier.wait().await;
                        let cx = opentelemetry::Context::current();
                        let span = opentelemetry::trace::Tracer::start_with_context(&tracer, "work", &cx);
                        barrier.wait().await;
                        drop(span);
                        Ok(Value::Null)
                    }
                })
                .await
                .unwrap();
        })
    };
    let a = run("r-a", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    let b = run("r-b", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
    a.await.unwrap();
    b.await.unwrap();
    let (span_a, span_b) = (harness.invocation_span("r-a"), harness.invocation_span("r-b"));
    assert_eq!(span_a.span_context.trace_id().to_string(), "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    assert_eq!(span_b.span_context.trace_id().to_string(), "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
    let works: Vec<SpanData> = harness.spans().into_iter().filter(|s| s.name == "work").collect();
    assert_eq!(works.len(), 2);
    for work in works {
        let owner = if work.span_context.trace_id() == span_a.span_context.trace_id() { &span_a } else { &span_b };
        assert_eq!(work.parent_span_id, owner.span_context.span_id(), "each child under its own invocation");
    }
    let cold = [attribute(&span_a, "faas.coldstart"), attribute(&span_b, "faas.coldstart")];
    assert_eq!(cold.iter().filter(|c| c.as_deref() == Some("true")).count(), 1, "{cold:?}");
}

#[tokio::test]
async fn timeout_guard_ends_hanging_spans_before_the_deadline() {
    let config = Config { timeout_margin: Duration::from_millis(150), ..Config::default() };
    let harness = Harness::new(config);
    let exporter = harness.exporter.clone();
    let tracer = harness.telemetry.tracer().clone();
    let exported_before_return = Arc::new(Mutex::new(Vec::<SpanData>::new()));
    let snapshot = exported_before_return.clone();
    let mut context = lambda_context("r-timeout");
    context.deadline = deadline_in(Duration::from_millis(400));
    harness
        .invoke(json!({}), context, move |_e| {
            let exporter = exporter.clone();
            let snapshot = snapshot.clone();
            let tracer = tracer.clone();
            async move {
                let cx = opentelemetry::Context::current();
                let hanging =
                    opentelemetry::trace::Tracer::start_with_context(&tracer, "GET payments.example.com", &cx);
                tokio::time::sleep(Duration::from_millis(5)).await;
                let inner = opentelemetry::trace::Tracer::start_with_context(&tracer, "tls handshake", &cx);
                // Past the guard (400 - 150 ms), short of the deadline.
                tokio::time::sleep(Duration::from_millis(330)).await;
                *snapshot.lock().unwrap() = exporter.get_finished_spans().unwrap();
                drop(inner);
                drop(hanging);
                Ok(Value::Null)
            }
        })
        .await
        .unwrap();
    let before = exported_before_return.lock().unwrap().clone();
    let invocation = before.iter().find(|s| s.name == "orders").expect("invocation span handed off by the guard");
    assert!(
        matches!(&invocation.status, Status::Error { description }
            if description.ends_with("waiting on GET payments.example.com, tls handshake")),
        "oldest first, on every run: {:?}",
        invocation.status
    );
    let hanging =
        before.iter().find(|s| s.name == "GET payments.example.com").expect("hanging span handed off by the guard");
    assert_eq!(attribute(hanging, attr::CUT_OFF).as_deref(), Some("timeout"));
    assert_eq!(hanging.parent_span_id, invocation.span_context.span_id());
    let after = harness.spans();
    assert_eq!(
        after.iter().filter(|s| s.name == "GET payments.example.com").count(),
        1,
        "the late real end is not exported twice"
    );
    assert_eq!(after.iter().filter(|s| s.name == "orders").count(), 1);
}

#[tokio::test]
async fn payload_capture_is_off_by_default_and_masked_when_on() {
    let event = json!({"user": "ada", "password": "hunter2"});
    let off = Harness::new(Config::default());
    off.invoke(event.clone(), lambda_context("r-off"), ok_handler).await.unwrap();
    assert_eq!(attribute(&off.invocation_span("r-off"), attr::EVENT_PAYLOAD), None);

    let on = Harness::new(Config { capture_payloads: true, ..Config::default() });
    on.invoke(event, lambda_context("r-on"), ok_handler).await.unwrap();
    let span = on.invocation_span("r-on");
    let captured = attribute(&span, attr::EVENT_PAYLOAD).unwrap();
    assert!(captured.contains("ada") && !captured.contains("hunter2"), "{captured}");
    let response = attribute(&span, attr::RESPONSE_PAYLOAD).unwrap();
    assert!(response.contains("echo") && !response.contains("hunter2"), "{response}");
}

#[tokio::test]
async fn disabled_wrapper_only_runs_the_handler() {
    let harness = Harness::new(Config { enabled: false, ..Config::default() });
    harness.invoke(json!({}), lambda_context("r-disabled"), ok_handler).await.unwrap();
    assert_eq!(harness.posted.lock().unwrap().len(), 1);
    assert!(harness.spans().is_empty());
}

#[tokio::test]
async fn malformed_event_is_traced_as_other_and_never_fails_the_invocation() {
    let harness = Harness::new(Config::default());
    let context = lambda_context("r-garbage");
    let runtime = service_fn(|_request: LambdaInvocation| async { Ok::<(), Error>(()) });
    let mut service = FlowtraceLayer::new(harness.telemetry.clone()).layer(runtime);
    service.call(invocation_with_body(b"\xff\xfe not json".to_vec(), context)).await.unwrap();
    let span = harness.invocation_span("r-garbage");
    assert_eq!(attribute(&span, "faas.trigger").as_deref(), Some("other"));
    assert_eq!(span.name, "orders");
}

#[tokio::test]
async fn undeserializable_event_is_an_error_when_the_handler_never_ran() {
    let harness = Harness::new(Config::default());
    let runtime = service_fn(|_request: LambdaInvocation| async { Ok::<(), Error>(()) });
    let mut service = FlowtraceLayer::new(harness.telemetry.clone()).with_traced_handler().layer(runtime);
    service.call(invocation_with_body(b"[1,2]".to_vec(), lambda_context("r-shape"))).await.unwrap();
    let span = harness.invocation_span("r-shape");
    assert!(matches!(span.status, Status::Error { .. }), "{:?}", span.status);
}

#[derive(Debug, Clone)]
struct FailingExporter;

impl opentelemetry_sdk::trace::SpanExporter for FailingExporter {
    async fn export(&self, _batch: Vec<SpanData>) -> opentelemetry_sdk::error::OTelSdkResult {
        Err(opentelemetry_sdk::error::OTelSdkError::InternalFailure("collector is down".into()))
    }
}

#[tokio::test]
async fn a_collector_that_is_down_never_fails_the_handler_and_losses_are_counted() {
    let telemetry = Telemetry::builder().exporter(FailingExporter).build();
    let runtime = service_fn(|_request: LambdaInvocation| async { Ok::<(), Error>(()) });
    let mut service = FlowtraceLayer::new(telemetry.clone()).layer(runtime);
    service.call(invocation_with_body(b"{}".to_vec(), lambda_context("r-down"))).await.unwrap();
    assert_eq!(telemetry.losses(), (0, 1));
}

#[tokio::test]
async fn a_full_buffer_drops_the_oldest_spans_and_counts_them() {
    let exporter = InMemorySpanExporter::default();
    let telemetry = Telemetry::builder()
        .config(Config { buffer_max_bytes: 2_000, ..Config::default() })
        .exporter(exporter.clone())
        .build();
    let tracer = telemetry.tracer().clone();
    for i in 0..100 {
        let mut span = opentelemetry::trace::Tracer::start(&tracer, format!("span-{i}"));
        opentelemetry::trace::Span::set_attribute(&mut span, KeyValue::new("payload", "x".repeat(50)));
    }
    let outcome = telemetry.flush().await;
    assert!(outcome.dropped > 0 && outcome.exported > 0, "{outcome:?}");
    assert_eq!(outcome.dropped as usize + outcome.exported, 100);
    let names: Vec<String> = exporter.get_finished_spans().unwrap().iter().map(|s| s.name.to_string()).collect();
    assert_eq!(names.last().map(String::as_str), Some("span-99"), "the newest spans survive");
    assert!(!names.contains(&"span-0".to_owned()), "the oldest go first");
}

/// Reads one HTTP/1.1 request from `listener` and answers 200: just enough of an extension.
async fn accept_one_request(listener: tokio::net::TcpListener) -> (String, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut socket, _) = listener.accept().await.unwrap();
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let read = socket.read(&mut chunk).await.unwrap();
        assert!(read > 0, "connection closed before the request was complete");
        buffer.extend_from_slice(&chunk[..read]);
        let text = String::from_utf8_lossy(&buffer).to_string();
        if let Some(header_end) = text.find("\r\n\r\n") {
            let length: usize = text[..header_end]
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
                .unwrap_or(0);
            if buffer.len() >= header_end + 4 + length {
                socket.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await.unwrap();
                let request_line = text.lines().next().unwrap().to_owned();
                let body = serde_json::from_slice(&buffer[header_end + 4..header_end + 4 + length]).unwrap();
                return (request_line, body);
            }
        }
    }
}

#[tokio::test]
async fn a_start_notice_tells_the_extension_which_span_this_invocation_is() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let exporter = InMemorySpanExporter::default();
    let telemetry = Telemetry::builder()
        .config(Config { extension_endpoint: endpoint, ..Config::default() })
        .exporter(exporter.clone())
        .start_notices(true)
        .build();
    let received = tokio::spawn(accept_one_request(listener));
    let runtime = service_fn(|_request: LambdaInvocation| async { Ok::<(), Error>(()) });
    let mut service = FlowtraceLayer::new(telemetry).layer(runtime);
    let event = serde_json::to_vec(&sns_event(&traceparent(UPSTREAM_TRACE, UPSTREAM_SPAN))).unwrap();
    service.call(invocation_with_body(event, lambda_context("r-notice"))).await.unwrap();
    let (request_line, notice) = tokio::time::timeout(Duration::from_secs(5), received).await.unwrap().unwrap();
    assert_eq!(request_line, "POST /flowtrace/v1/start HTTP/1.1");
    let span =
        exporter.get_finished_spans().unwrap().into_iter().find(|s| s.name == "process Posts-Notifications").unwrap();
    assert_eq!(notice["requestId"], "r-notice");
    assert_eq!(notice["traceId"], span.span_context.trace_id().to_string());
    assert_eq!(notice["spanId"], span.span_context.span_id().to_string());
    assert_eq!(notice["parentSpanId"], UPSTREAM_SPAN);
    assert_eq!(notice["name"], "process Posts-Notifications");
    assert_eq!(notice["sampled"], true);
}
