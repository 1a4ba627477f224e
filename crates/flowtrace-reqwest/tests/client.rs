//! The middleware against a local HTTP server: spans, attributes, injection, redaction, skips.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use flowtrace_contract::attr;
use flowtrace_reqwest::{ClientWithMiddleware, HttpConfig, HttpTracingBuilder, RouteExt as _};
use opentelemetry::Context;
use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::{SpanContext, SpanKind, Status, TraceContextExt as _, Tracer as _, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use std::sync::Arc;
use std::time::Duration;
use support::{TestServer, all_text, attribute, closed_port};

struct Setup {
    exporter: InMemorySpanExporter,
    provider: SdkTracerProvider,
    client: ClientWithMiddleware,
}

impl Setup {
    fn new() -> Self {
        Self::with(HttpConfig::default(), |b| b)
    }

    fn with(config: HttpConfig, customise: impl FnOnce(HttpTracingBuilder) -> HttpTracingBuilder) -> Self {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
        let builder = HttpTracingBuilder::new(config)
            .tracer_provider(&provider)
            .propagator(Arc::new(TraceContextPropagator::new()));
        let client =
            reqwest_middleware::ClientBuilder::new(reqwest::Client::new()).with(customise(builder).build()).build();
        Self { exporter, provider, client }
    }

    /// Runs `request` under a parent span, returning the parent's context and the result.
    async fn in_parent<T>(&self, request: impl Future<Output = T>) -> (SpanContext, T) {
        let parent = self.provider.tracer("test").start("parent");
        let parent_context = opentelemetry::trace::Span::span_context(&parent).clone();
        let cx = Context::current_with_span(parent);
        let output = request.with_context(cx.clone()).await;
        cx.span().end();
        (parent_context, output)
    }

    fn client_spans(&self) -> Vec<SpanData> {
        self.exporter.get_finished_spans().unwrap().into_iter().filter(|s| s.span_kind == SpanKind::Client).collect()
    }

    fn only_client_span(&self) -> SpanData {
        let spans = self.client_spans();
        assert_eq!(spans.len(), 1, "{spans:#?}");
        spans.into_iter().next().unwrap()
    }
}

fn traceparent_of(span: &SpanData) -> String {
    format!("00-{}-{}-01", span.span_context.trace_id(), span.span_context.span_id())
}

#[tokio::test]
async fn ok_response_is_a_client_span_child_of_the_current_context_and_its_context_reaches_the_server() {
    let server = TestServer::start().await;
    let setup = Setup::new();
    let (parent, response) = setup.in_parent(setup.client.get(server.url("/ok?q=rust&page=2")).send()).await;
    let response = response.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "ok");

    let span = setup.only_client_span();
    assert_eq!(span.name, "GET");
    assert_eq!(span.span_context.trace_id(), parent.trace_id());
    assert_eq!(span.parent_span_id, parent.span_id());
    assert_eq!(span.status, Status::Unset);
    let port = server.addr.port().to_string();
    let expected = [
        ("http.request.method", "GET".to_owned()),
        ("url.full", format!("http://127.0.0.1:{port}/ok?q=REDACTED&page=REDACTED")),
        ("url.scheme", "http".to_owned()),
        ("server.address", "127.0.0.1".to_owned()),
        ("server.port", port.clone()),
        ("http.response.status_code", "200".to_owned()),
        ("network.protocol.version", "1.1".to_owned()),
        ("http.response.body.size", "2".to_owned()),
    ];
    for (key, value) in expected {
        assert_eq!(attribute(&span, key).as_deref(), Some(value.as_str()), "{key}: {span:#?}");
    }
    assert_eq!(attribute(&span, "error.type"), None);
    assert_eq!(attribute(&span, attr::HTTP_PROPAGATION_SKIPPED), None);

    let received = server.only_request();
    assert_eq!(received.uri, "/ok?q=rust&page=2", "the request itself is untouched");
    assert_eq!(received.headers.get("traceparent").unwrap().to_str().unwrap(), traceparent_of(&span));
}

#[tokio::test]
async fn status_404_and_500_are_client_span_errors() {
    let server = TestServer::start().await;
    let setup = Setup::new();
    for path in ["/missing", "/fail"] {
        let (_, response) = setup.in_parent(setup.client.get(server.url(path)).send()).await;
        assert!(!response.unwrap().status().is_success(), "the response reaches the caller unchanged");
    }
    let spans = setup.client_spans();
    assert_eq!(spans.len(), 2);
    for (span, code) in spans.iter().zip(["404", "500"]) {
        assert_eq!(attribute(span, "http.response.status_code").as_deref(), Some(code));
        assert_eq!(attribute(span, "error.type").as_deref(), Some(code));
        assert!(matches!(span.status, Status::Error { .. }), "{span:#?}");
    }
}

#[tokio::test]
async fn connection_refused_is_an_error_span_without_a_status_code() {
    let port = closed_port();
    let setup = Setup::new();
    let url = format!("http://127.0.0.1:{port}/orders?secret-query=hunter2");
    let (_, response) = setup.in_parent(setup.client.get(url).send()).await;
    assert!(response.unwrap_err().is_connect());
    let span = setup.only_client_span();
    assert_eq!(attribute(&span, "error.type").as_deref(), Some("connection_refused"), "{span:#?}");
    assert_eq!(attribute(&span, "http.response.status_code"), None);
    let Status::Error { description } = &span.status else { panic!("{span:#?}") };
    assert!(description.starts_with("connection_refused"), "{description}");
    assert!(span.events.iter().any(|e| e.name == "exception"));
    assert!(!all_text(&[span]).contains("hunter2"), "the error message must not leak the query");
}

#[tokio::test]
async fn timeout_is_an_error_span() {
    let server = TestServer::start().await;
    let setup = Setup::new();
    let request = setup.client.get(server.url("/slow")).timeout(Duration::from_millis(200)).send();
    let (_, response) = setup.in_parent(request).await;
    assert!(response.unwrap_err().is_timeout());
    let span = setup.only_client_span();
    assert_eq!(attribute(&span, "error.type").as_deref(), Some("timeout"), "{span:#?}");
    assert!(matches!(span.status, Status::Error { .. }));
}

#[tokio::test]
async fn a_dropped_request_still_ends_its_span_as_cancelled() {
    let server = TestServer::start().await;
    let setup = Setup::new();
    let request = setup.client.get(server.url("/slow")).send();
    let (_, outcome) = setup.in_parent(tokio::time::timeout(Duration::from_millis(200), request)).await;
    assert!(outcome.is_err(), "the caller gave up");
    let span = setup.only_client_span();
    assert_eq!(attribute(&span, "error.type").as_deref(), Some("cancelled"));
}

#[tokio::test]
async fn a_route_template_names_the_span() {
    let server = TestServer::start().await;
    let setup = Setup::new();
    let (_, response) =
        setup.in_parent(setup.client.post(server.url("/ok")).route("/items/{id}").body("x").send()).await;
    response.unwrap();
    let span = setup.only_client_span();
    assert_eq!(span.name, "POST /items/{id}");
    assert_eq!(attribute(&span, "url.template").as_deref(), Some("/items/{id}"));
    assert_eq!(attribute(&span, "http.request.body.size").as_deref(), Some("1"));
}

#[tokio::test]
async fn peer_service_comes_from_the_host_map() {
    let server = TestServer::start().await;
    let setup = Setup::with(HttpConfig::default(), |b| b.peer_service("127.0.0.1", "orders-api"));
    setup.in_parent(setup.client.get(server.url("/ok")).send()).await.1.unwrap();
    let span = setup.only_client_span();
    assert_eq!(attribute(&span, "peer.service").as_deref(), Some("orders-api"));
    assert_eq!(attribute(&span, "service.peer.name").as_deref(), Some("orders-api"));
}

#[tokio::test]
async fn no_injection_into_denied_hosts_but_still_a_span() {
    let server = TestServer::start().await;
    let setups = [
        Setup::with(HttpConfig::default(), |b| b.dont_propagate_to("127.0.0.1")),
        Setup::with(HttpConfig::default(), |b| b.propagate_to("*.internal.example.com")),
        Setup::with(HttpConfig::default(), |b| {
            b.propagate_to("*").dont_propagate_to(&format!("127.0.0.1:{}", server.addr.port()))
        }),
    ];
    for setup in &setups {
        setup.in_parent(setup.client.get(server.url("/ok")).send()).await.1.unwrap();
        let span = setup.only_client_span();
        assert_eq!(attribute(&span, attr::HTTP_PROPAGATION_SKIPPED).as_deref(), Some("denied"));
    }
    for received in server.received() {
        assert!(received.headers.get("traceparent").is_none(), "{received:#?}");
    }

    let allowed = Setup::with(HttpConfig::default(), |b| b.propagate_to("127.0.0.1"));
    allowed.in_parent(allowed.client.get(server.url("/ok")).send()).await.1.unwrap();
    let last = server.received().pop().unwrap();
    assert_eq!(last.headers.get("traceparent").unwrap().to_str().unwrap(), traceparent_of(&allowed.only_client_span()));
}

#[tokio::test]
async fn no_injection_into_sigv4_signed_requests() {
    let server = TestServer::start().await;
    let setup = Setup::new();
    let signed = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261124/eu-west-1/execute-api/aws4_request, \
                  SignedHeaders=host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";
    let request = setup
        .client
        .get(server.url("/ok"))
        .header("authorization", signed)
        .header("x-amz-date", "20261124T224500Z")
        .send();
    setup.in_parent(request).await.1.unwrap();
    let presigned = setup.client.get(server.url("/ok?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=abc")).send();
    setup.in_parent(presigned).await.1.unwrap();
    for received in server.received() {
        assert!(received.headers.get("traceparent").is_none(), "{received:#?}");
        assert!(received.headers.get("tracestate").is_none());
    }
    assert_eq!(server.received()[0].headers.get("authorization").unwrap(), signed, "the signed request is untouched");
    let spans = setup.client_spans();
    assert_eq!(spans.len(), 2);
    for span in &spans {
        assert_eq!(attribute(span, attr::HTTP_PROPAGATION_SKIPPED).as_deref(), Some("sigv4_signed"));
    }
    let text = all_text(&spans);
    assert!(!text.contains("5d672d79") && !text.contains("AKIDEXAMPLE") && !text.contains("=abc"), "{text}");
}

#[tokio::test]
async fn credentials_and_query_values_never_reach_a_span() {
    let server = TestServer::start().await;
    let setup = Setup::new();
    let url = format!("http://ada:url-password@{}/json?api_key=query-key-value&q=query-value", server.addr);
    let request = setup
        .client
        .get(url)
        .header("authorization", "Bearer bearer-token-value")
        .header("cookie", "session=cookie-value")
        .header("x-amz-security-token", "security-token-value")
        .header("x-api-key", "api-key-value")
        .send();
    let response = setup.in_parent(request).await.1.unwrap();
    assert!(response.headers().get("set-cookie").is_some(), "the caller still sees its cookies");
    let span = setup.only_client_span();
    // reqwest moves URL credentials into a Basic `Authorization` header before any
    // middleware runs; neither reaches the span (the redaction of URL credentials that do
    // reach it is unit-tested in `redact`).
    assert_eq!(
        attribute(&span, "url.full").unwrap(),
        format!("http://{}/json?api_key=REDACTED&q=REDACTED", server.addr)
    );
    assert!(server.only_request().headers.get("authorization").is_some());
    let text = all_text(&[span]);
    for secret in [
        "url-password",
        "query-key-value",
        "query-value",
        "bearer-token-value",
        "cookie-value",
        "security-token-value",
        "api-key-value",
        "server-cookie-value",
        "server-token-value",
    ] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
}

#[tokio::test]
async fn without_query_redaction_only_secret_values_are_redacted() {
    let server = TestServer::start().await;
    let setup = Setup::with(HttpConfig::default(), |b| b.redact_query(false));
    setup.in_parent(setup.client.get(server.url("/ok?q=rust&access_token=t0k3n")).send()).await.1.unwrap();
    let url = attribute(&setup.only_client_span(), "url.full").unwrap();
    assert!(url.ends_with("/ok?q=rust&access_token=REDACTED"), "{url}");
}

#[tokio::test]
async fn captured_bodies_are_masked_and_the_caller_gets_the_response_unchanged() {
    let server = TestServer::start().await;
    let setup = Setup::with(HttpConfig::default(), |b| b.capture_bodies(4096).mask_pattern("^ssn$"));
    let body = r#"{"user":"ada","password":"p4ssw0rd","ssn":"123-45-6789","card":{"apiKey":"k-123"}}"#;
    let url = server.url("/echo");
    let request = setup.client.post(&url).header("content-type", "application/json").body(body).send();
    let response = setup.in_parent(request).await.1.unwrap();
    assert_eq!(response.url().as_str(), url, "the response keeps its URL");
    assert_eq!(response.headers().get("content-type").unwrap(), "application/json");
    assert_eq!(response.text().await.unwrap(), body, "the caller reads the very same body");

    let span = setup.only_client_span();
    let sent = attribute(&span, attr::HTTP_REQUEST_BODY).unwrap();
    let answered = attribute(&span, attr::HTTP_RESPONSE_BODY).unwrap();
    for captured in [&sent, &answered] {
        assert!(captured.contains("\"user\":\"ada\""), "{captured}");
        for secret in ["p4ssw0rd", "123-45-6789", "k-123"] {
            assert!(!captured.contains(secret), "{secret} leaked: {captured}");
        }
    }
    assert_eq!(attribute(&span, "http.request.body.size").as_deref(), Some(body.len().to_string().as_str()));
}

#[tokio::test]
async fn bodies_are_not_captured_by_default() {
    let server = TestServer::start().await;
    let setup = Setup::new();
    setup.in_parent(setup.client.post(server.url("/echo")).body(r#"{"a":1}"#).send()).await.1.unwrap();
    let span = setup.only_client_span();
    assert_eq!(attribute(&span, attr::HTTP_REQUEST_BODY), None);
    assert_eq!(attribute(&span, attr::HTTP_RESPONSE_BODY), None);
}

#[tokio::test]
async fn the_runtime_api_and_the_extension_are_never_traced() {
    let runtime = TestServer::start().await;
    let extension = TestServer::start().await;
    let (config, warnings) = HttpConfig::from_lookup(|name| match name {
        "AWS_LAMBDA_RUNTIME_API" => Some(runtime.addr.to_string()),
        "FLOWTRACE_EXTENSION_ENDPOINT" => Some(format!("http://{}", extension.addr)),
        _ => None,
    });
    assert!(warnings.is_empty());
    let setup = Setup::with(config, |b| b);
    setup.in_parent(setup.client.get(runtime.url("/2018-06-01/runtime/invocation/next")).send()).await.1.unwrap();
    setup.in_parent(setup.client.post(extension.url("/v1/traces")).body("x").send()).await.1.unwrap();
    assert!(setup.client_spans().is_empty(), "{:#?}", setup.client_spans());
    for received in runtime.received().into_iter().chain(extension.received()) {
        assert!(received.headers.get("traceparent").is_none(), "{received:#?}");
    }
}

#[tokio::test]
async fn disabled_means_untouched() {
    let server = TestServer::start().await;
    let setup = Setup::with(HttpConfig { enabled: false, ..HttpConfig::default() }, |b| b);
    setup.in_parent(setup.client.get(server.url("/ok")).send()).await.1.unwrap();
    assert!(setup.client_spans().is_empty());
    assert!(server.only_request().headers.get("traceparent").is_none());
}

#[tokio::test]
async fn unknown_methods_are_named_http() {
    let server = TestServer::start().await;
    let setup = Setup::new();
    let purge = reqwest::Method::from_bytes(b"PURGE").unwrap();
    setup.in_parent(setup.client.request(purge, server.url("/ok")).send()).await.1.unwrap();
    let span = setup.only_client_span();
    assert_eq!(span.name, "HTTP");
    assert_eq!(attribute(&span, "http.request.method").as_deref(), Some("_OTHER"));
    assert_eq!(attribute(&span, "http.request.method_original").as_deref(), Some("PURGE"));
}

#[tokio::test]
async fn requests_made_while_telemetry_is_suppressed_are_not_traced() {
    let server = TestServer::start().await;
    let setup = Setup::new();
    let suppressed = Context::current().with_telemetry_suppressed();
    setup.client.get(server.url("/ok")).send().with_context(suppressed).await.unwrap();
    assert!(setup.client_spans().is_empty());
    assert!(server.only_request().headers.get("traceparent").is_none());
}
