//! Two flowtrace-wrapped functions: A calls B over HTTP with the ready-made client, and B's
//! invocation span continues A's trace under A's client span.
//!
//! A is the real `FlowtraceLayer` + `TracedHandler` with its telemetry installed globally (as
//! `flowtrace::run` does), so the client finds the tracer provider and propagator there and
//! its parent is the invocation context the wrapper attaches. B is a local HTTP server that
//! turns each request into an API Gateway HTTP API (v2) event and runs it through its own
//! `FlowtraceLayer` + `TracedHandler`. Both export to in-memory exporters.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use axum::response::IntoResponse as _;
use flowtrace::{Config, FlowtraceLayer, Telemetry, TracedHandler};
use flowtrace_contract::attr;
use flowtrace_reqwest::HttpTracing;
use flowtrace_reqwest::RouteExt as _;
use lambda_runtime::{Diagnostic, Error, LambdaEvent, LambdaInvocation};
use opentelemetry::trace::{SpanKind, Status};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SpanData};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use support::{Received, TestServer, attribute};
use tower::{Layer as _, Service as _, ServiceExt as _, service_fn};

fn lambda_context(request_id: &str, function: &str) -> lambda_runtime::Context {
    let mut context = lambda_runtime::Context::default();
    context.request_id = request_id.to_owned();
    context.invoked_function_arn = format!("arn:aws:lambda:eu-west-1:123456789012:function:{function}");
    context.env_config = Arc::new(lambda_runtime::Config { function_name: function.into(), ..Default::default() });
    context
}

/// One invocation through layer → a stand-in for lambda_runtime → traced handler, as
/// crates/flowtrace/tests/wrapper.rs drives it. Returns what the handler answered.
async fn invoke<F, Fut>(telemetry: &Telemetry, event: Value, context: lambda_runtime::Context, handler: F) -> Value
where
    F: Fn(LambdaEvent<Value>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<Value, Error>> + Send + 'static,
{
    let answer = Arc::new(std::sync::Mutex::new(Value::Null));
    let posted = answer.clone();
    let runtime = service_fn(move |request: LambdaInvocation| {
        let posted = posted.clone();
        let mut handler = TracedHandler::new(service_fn(handler.clone()));
        async move {
            let payload: Value = serde_json::from_slice(&request.body).unwrap();
            let result: Result<Value, Diagnostic> = handler.call(LambdaEvent::new(payload, request.context)).await;
            *posted.lock().unwrap() = result.unwrap();
            Ok::<(), Error>(())
        }
    });
    let mut service = FlowtraceLayer::new(telemetry.clone()).with_traced_handler().layer(runtime);
    let (parts, ()) = http::Response::new(()).into_parts();
    let invocation = LambdaInvocation { parts, body: serde_json::to_vec(&event).unwrap().into(), context };
    service.ready().await.unwrap().call(invocation).await.unwrap();
    answer.lock().unwrap().clone()
}

/// The API Gateway HTTP API event for a request B received on `GET /orders/{id}`.
fn http_api_event(received: &Received) -> Value {
    let headers: serde_json::Map<String, Value> = received
        .headers
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), Value::String(value.to_str().unwrap_or_default().to_owned())))
        .collect();
    let path = received.uri.split('?').next().unwrap_or_default();
    json!({
        "version": "2.0",
        "routeKey": "GET /orders/{id}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "ordersapi",
            "domainName": "ordersapi.execute-api.eu-west-1.amazonaws.com",
            "domainPrefix": "ordersapi",
            "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "test"},
            "requestId": "gw-orders-1",
            "routeKey": "GET /orders/{id}",
            "stage": "$default",
            "time": "24/Nov/2026:22:45:00 +0000",
            "timeEpoch": 1_795_560_300_000_u64
        },
        "isBase64Encoded": false,
        "pathParameters": {"id": "7"}
    })
}

fn invocation_span(spans: &[SpanData], request_id: &str) -> SpanData {
    spans
        .iter()
        .find(|s| attribute(s, "faas.invocation_id").as_deref() == Some(request_id))
        .cloned()
        .unwrap_or_else(|| panic!("no invocation span for {request_id}: {spans:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flowtrace_wrapped_server_continues_the_trace_under_the_client_span() {
    // B: the server side, a flowtrace-wrapped HTTP API handler with its own telemetry.
    let exporter_b = InMemorySpanExporter::default();
    let telemetry_b = Telemetry::builder().config(Config::default()).exporter(exporter_b.clone()).build();
    let server = TestServer::start_custom(move |received| {
        let telemetry = telemetry_b.clone();
        async move {
            let answer =
                invoke(&telemetry, http_api_event(&received), lambda_context("r-b", "orders"), |_event| async {
                    Ok(json!({"statusCode": 200, "body": "order 7"}))
                })
                .await;
            (axum::http::StatusCode::OK, answer["body"].as_str().unwrap_or_default().to_owned()).into_response()
        }
    })
    .await;

    // A: the calling function, with its telemetry installed globally as flowtrace::run does.
    // The client is built first, as a user's `main` may: it looks the globals up per request.
    let client = flowtrace_reqwest::client();
    let exporter_a = InMemorySpanExporter::default();
    let telemetry_a = Telemetry::builder().config(Config::default()).exporter(exporter_a.clone()).build();
    telemetry_a.install_global();
    let url = server.url("/orders/7");
    let answer = invoke(&telemetry_a, json!({"detail": "start"}), lambda_context("r-a", "checkout"), move |_event| {
        let url = url.clone();
        let client = client.clone();
        async move {
            let body = client.get(url).route("/orders/{id}").send().await?.text().await?;
            Ok(json!({ "order": body }))
        }
    })
    .await;
    assert_eq!(answer, json!({"order": "order 7"}));

    let spans_a = exporter_a.get_finished_spans().unwrap();
    let spans_b = exporter_b.get_finished_spans().unwrap();
    let invocation_a = invocation_span(&spans_a, "r-a");
    let client = spans_a.iter().find(|s| s.span_kind == SpanKind::Client).expect("A's client span").clone();
    let invocation_b = invocation_span(&spans_b, "r-b");

    assert_eq!(client.name, "GET /orders/{id}");
    assert_eq!(client.span_context.trace_id(), invocation_a.span_context.trace_id());
    assert_eq!(client.parent_span_id, invocation_a.span_context.span_id(), "the client span is under A's invocation");
    assert_eq!(attribute(&client, "http.response.status_code").as_deref(), Some("200"));

    assert_eq!(invocation_b.span_kind, SpanKind::Server);
    assert_eq!(invocation_b.name, "GET /orders/{id}");
    assert_eq!(invocation_b.span_context.trace_id(), client.span_context.trace_id(), "one trace across A and B");
    assert_eq!(invocation_b.parent_span_id, client.span_context.span_id(), "B's parent is A's client span");
    assert_eq!(attribute(&invocation_b, attr::PARENT_ORIGIN).as_deref(), Some("event"));
}

#[tokio::test]
async fn the_timeout_guard_names_a_hanging_http_call() {
    let server = TestServer::start().await; // `/slow` answers after 5 s
    let exporter = InMemorySpanExporter::default();
    let config = Config { timeout_margin: Duration::from_millis(150), ..Config::default() };
    let telemetry = Telemetry::builder().config(config).exporter(exporter.clone()).build();
    let tracing = HttpTracing::builder()
        .tracer_provider(telemetry.provider())
        .propagator(Arc::new(TraceContextPropagator::new()))
        .build();
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new()).with(tracing).build();
    let url = server.url("/slow");
    let mut context = lambda_context("r-hang", "checkout");
    context.deadline =
        (SystemTime::now() + Duration::from_millis(400)).duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    invoke(&telemetry, json!({}), context, move |_event| {
        let client = client.clone();
        let url = url.clone();
        async move {
            // The guard fires at 400 - 150 ms; the request gives up a little later.
            let outcome = client.get(url).route("/payments/{id}").timeout(Duration::from_millis(350)).send().await;
            assert!(outcome.is_err());
            Ok(Value::Null)
        }
    })
    .await;
    let spans = exporter.get_finished_spans().unwrap();
    let invocation = invocation_span(&spans, "r-hang");
    let hanging: Vec<&SpanData> = spans.iter().filter(|s| s.span_kind == SpanKind::Client).collect();
    assert_eq!(hanging.len(), 1, "cut off once, not exported again at its late real end: {spans:#?}");
    assert_eq!(hanging[0].name, "GET /payments/{id}");
    assert_eq!(attribute(hanging[0], attr::CUT_OFF).as_deref(), Some("timeout"));
    assert_eq!(hanging[0].parent_span_id, invocation.span_context.span_id());
    assert!(
        matches!(&invocation.status, Status::Error { description } if description.contains("GET /payments/{id}")),
        "{:?}",
        invocation.status
    );
}
