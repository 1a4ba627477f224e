//! The harness itself: a plain `lambda_runtime` handler under the emulator, and the OTLP
//! receiver fed by opentelemetry-otlp.

use std::time::Duration;

use flowtrace_tests::lambda_simulator::ShutdownReason;
use flowtrace_tests::{
    AnyValue, Invoke, LambdaConfig, LambdaEnv, OtlpReceiver, Outcome, SpanKind, SpanQuery, StatusCode, workspace_bin,
};
use opentelemetry::KeyValue;
use opentelemetry::trace::{
    Link, Span as _, SpanKind as OtelKind, Status, TraceContextExt as _, Tracer, TracerProvider as _,
};
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use serde_json::json;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const ECHO: &str = env!("CARGO_BIN_EXE_echo_handler");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_handler_answers_fails_and_panics() -> TestResult {
    let env = LambdaEnv::start().await?;
    let function = env.spawn_function(ECHO, &[("ECHO_EXTRA", "extra-value")]).await?;

    // 1. A response, with every header chosen.
    let trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
    let ok = env
        .invoke(
            Invoke::new(json!({"hello": "world"}))
                .request_id("req-ok")
                .trace_id(trace)
                .client_context(&json!({"custom": {"k": "v"}}))
                .timeout(Duration::from_secs(3))
                .function_arn(format!("{}:live", env.function_arn())),
        )
        .await?;
    let body = ok.response()?;
    assert_eq!(body["echo"], json!({"hello": "world"}));
    assert_eq!(body["request_id"], "req-ok");
    assert_eq!(body["xray_trace_id"], trace);
    assert_eq!(body["client_context"]["custom"], json!({"k": "v"}));
    assert_eq!(body["invoked_function_arn"], "arn:aws:lambda:us-east-1:123456789012:function:flowtrace-e2e:live");
    assert_eq!(body["deadline_ms"], json!(ok.deadline_ms));
    assert_eq!(body["env"]["AWS_LAMBDA_FUNCTION_NAME"], "flowtrace-e2e");
    assert_eq!(body["env"]["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "128");
    assert_eq!(body["env"]["AWS_LAMBDA_FUNCTION_VERSION"], "$LATEST");
    assert_eq!(body["env"]["AWS_REGION"], "us-east-1");
    assert_eq!(body["env"]["AWS_LAMBDA_LOG_GROUP_NAME"], "/aws/lambda/flowtrace-e2e");
    assert!(body["env"]["AWS_LAMBDA_LOG_STREAM_NAME"].is_string());
    assert_eq!(body["env"]["ECHO_EXTRA"], "extra-value");

    // 2. An error posted to /error.
    let failed = env.invoke(Invoke::new(json!({"fail": true}))).await?;
    let error = failed.error()?;
    assert_eq!(error.error_type, "EchoError");
    assert_eq!(error.error_message, format!("echo was asked to fail ({})", failed.request_id));

    // 3. A panic, turned into an error by lambda_runtime; the process survives it.
    let panicked = env.invoke_event(json!({"panic": true})).await?;
    let error = panicked.error()?;
    assert!(error.error_message.contains("echo was asked to panic"), "{error:?}");
    assert!(function.is_running());

    // The emulator saw the three request ids, in order, and the function logged them.
    let ids = vec!["req-ok".to_owned(), failed.request_id.clone(), panicked.request_id.clone()];
    assert_eq!(env.request_ids().await, ids);
    assert_eq!(env.delivered_request_ids().await, ids);
    for id in &ids {
        function.wait_for_output(&format!("echo: invocation {id}"), Duration::from_secs(2)).await?;
    }

    // Platform telemetry was produced for each invocation.
    assert_eq!(env.telemetry_events_of("platform.start").await.len(), 3);
    assert_eq!(env.telemetry_events_of("platform.runtimeDone").await.len(), 3);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_is_enforced_and_the_function_killed() -> TestResult {
    let env = LambdaEnv::start().await?;
    let function = env.spawn_function(ECHO, &[]).await?;

    let slow = env.invoke(Invoke::new(json!({"sleep_ms": 5_000})).timeout(Duration::from_millis(300))).await?;
    assert_eq!(slow.outcome, Outcome::Timeout);
    assert!(slow.elapsed >= Duration::from_millis(300), "{:?}", slow.elapsed);
    assert!(slow.elapsed < Duration::from_secs(3), "{:?}", slow.elapsed);
    assert!(!function.is_running(), "Lambda kills a timed-out function");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workspace_bin_builds_into_the_same_target_dir() -> TestResult {
    let path = tokio::task::spawn_blocking(|| workspace_bin("flowtrace-tests", "echo_handler")).await??;
    assert_eq!(path, std::path::Path::new(ECHO));
    Ok(())
}

/// Exports a parent and a linked child span with opentelemetry-otlp over HTTP.
async fn export_two_spans(endpoint: String, protocol: Protocol) -> TestResult {
    // The SDK's simple processor blocks on the export; run it off the async workers, inside
    // the runtime so the async reqwest client has its reactor.
    tokio::task::spawn_blocking(move || -> Result<(), String> {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(protocol)
            .with_endpoint(endpoint)
            .with_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| e.to_string())?;
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_simple_exporter(exporter)
            .with_resource(
                opentelemetry_sdk::Resource::builder_empty()
                    .with_attribute(KeyValue::new("service.name", "harness-test"))
                    .build(),
            )
            .build();
        let tracer = provider.tracer("harness");

        let parent = tracer.span_builder("parent").with_kind(OtelKind::Server).start(&tracer);
        let parent_cx = parent.span_context().clone();
        let cx = opentelemetry::Context::current().with_remote_span_context(parent_cx.clone());
        let mut child = tracer
            .span_builder("child")
            .with_kind(OtelKind::Consumer)
            .with_attributes([KeyValue::new("messaging.system", "aws_sqs"), KeyValue::new("batch.size", 3_i64)])
            .with_links(vec![Link::new(parent_cx, vec![KeyValue::new("link.kind", "message")], 0)])
            .start_with_context(&tracer, &cx);
        child.add_event("retry", vec![KeyValue::new("attempt", 2_i64)]);
        child.set_status(Status::error("boom"));
        child.end();
        drop(parent);
        provider.shutdown().map_err(|e| e.to_string())
    })
    .await??;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_receiver_decodes_json_too() -> TestResult {
    let rx = OtlpReceiver::start().await?;
    export_two_spans(rx.traces_endpoint(), Protocol::HttpJson).await?;
    let spans = rx.wait_for_spans(2, Duration::from_secs(5)).await?;
    let child = spans.one_named("child")?;
    assert!(child.is_child_of(spans.one_named("parent")?));
    assert_eq!(child.attr_i64("batch.size"), Some(3));
    assert_eq!(rx.requests()[0].header("content-type"), Some("application/json"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_receiver_gets_spans_from_opentelemetry_otlp() -> TestResult {
    let rx = OtlpReceiver::start().await?;
    export_two_spans(rx.traces_endpoint(), Protocol::HttpBinary).await?;

    let spans = rx.wait_for_spans(2, Duration::from_secs(5)).await?;
    let parent = spans.one_named("parent")?;
    let child = spans.one_named("child")?;
    assert_eq!(parent.kind, SpanKind::Server);
    assert!(parent.is_root());
    assert_eq!(child.kind, SpanKind::Consumer);
    assert!(child.is_child_of(parent), "{child}\n{parent}");
    assert_eq!(spans.parent_of(child), Some(parent));
    assert_eq!(child.trace_id.len(), 32);
    assert_eq!(child.span_id.len(), 16);
    assert_eq!(child.status.code, StatusCode::Error);
    assert_eq!(child.status.message, "boom");
    assert_eq!(child.attr_str("messaging.system"), Some("aws_sqs"));
    assert_eq!(child.attr_i64("batch.size"), Some(3));
    assert_eq!(spans.with_attr("messaging.system", "aws_sqs"), vec![child]);
    let link = child.link_to(parent).ok_or("no link to parent")?;
    assert_eq!(link.attributes.str("link.kind"), Some("message"));
    let event = child.event("retry").ok_or("no retry event")?;
    assert_eq!(event.attributes.get("attempt"), Some(&AnyValue::Int(2)));
    assert_eq!(child.resource_str("service.name"), Some("harness-test"));
    assert_eq!(child.scope_name, "harness");

    // What went over the wire, and the mock-collector view of the same data.
    let requests = rx.requests();
    assert!(requests.iter().all(|r| r.path == "/v1/traces" && r.status == 200));
    assert_eq!(requests[0].header("content-type"), Some("application/x-protobuf"));
    rx.collector()
        .read()
        .await
        .expect_span_with_name("child")
        .with_attributes([("messaging.system", "aws_sqs")])
        .with_resource_attributes([("service.name", "harness-test")])
        .assert_exists();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_receiver_injects_failures() -> TestResult {
    let rx = OtlpReceiver::start().await?;
    rx.set_behaviour(flowtrace_tests::Behaviour { delay: Duration::ZERO, fail_with: Some(503) });
    let client_response = post_empty_traces(&rx).await?;
    assert_eq!(client_response, 503);
    rx.set_behaviour(flowtrace_tests::Behaviour::default());
    assert_eq!(post_empty_traces(&rx).await?, 200);
    let requests = rx.wait_for_requests(2, Duration::from_secs(2)).await?;
    assert_eq!(requests.iter().map(|r| r.status).collect::<Vec<_>>(), vec![503, 200]);
    assert!(rx.spans().is_empty());
    Ok(())
}

/// Posts an empty protobuf export request with a raw HTTP/1.1 exchange, returning the status.
async fn post_empty_traces(rx: &OtlpReceiver) -> Result<u16, Box<dyn std::error::Error>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(rx.addr()).await?;
    let request = format!(
        "POST /v1/traces HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        rx.addr()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut response)).await??;
    let status = response.split_whitespace().nth(1).ok_or("no status line")?.parse()?;
    Ok(status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extension_registers_gets_invokes_telemetry_freezes_and_shuts_down() -> TestResult {
    const EXT: &str = env!("CARGO_BIN_EXE_probe_extension");
    let env = LambdaEnv::start_with(LambdaConfig { freeze: true, ..LambdaConfig::default() }).await?;

    // Lambda's order: extensions register, then the runtime starts.
    let ext = env.spawn_extension(EXT, &[])?;
    env.wait_for_extensions(1, Duration::from_secs(5)).await?;
    ext.wait_for_output("ext: subscribed 200", Duration::from_secs(5)).await?;
    let function = env.spawn_function(ECHO, &[]).await?;

    let first = env.invoke(Invoke::new(json!({"n": 1}))).await?;
    assert_eq!(first.response()?["echo"], json!({"n": 1}));
    ext.wait_for_output(&format!("ext: INVOKE {}", first.request_id), Duration::from_secs(2)).await?;
    // The probe waits for the invocation's platform.runtimeDone before its next /next.
    ext.wait_for_output(&format!("ext: telemetry platform.runtimeDone {}", first.request_id), Duration::from_secs(2))
        .await?;

    // After the invocation (and the extension's next /next) the environment is frozen.
    env.wait_for_frozen(Duration::from_secs(5)).await?;
    function.wait_stopped(Duration::from_secs(1)).await?;
    ext.wait_stopped(Duration::from_secs(1)).await?;

    // The next invocation thaws it.
    let second = env.invoke(Invoke::new(json!({"n": 2}))).await?;
    assert_eq!(second.response()?["echo"], json!({"n": 2}));
    ext.wait_for_output(&format!("ext: INVOKE {}", second.request_id), Duration::from_secs(2)).await?;

    let report = env.shutdown(ShutdownReason::Spindown).await?;
    assert_eq!(report.extension_exits.len(), 1);
    assert!(report.extension_exits[0].1.is_some_and(|s| s.success()), "{report:?}\n{}", ext.output());
    assert!(ext.output().contains("ext: SHUTDOWN spindown"), "{}", ext.output());
    assert!(ext.output().contains(&format!("ext: telemetry platform.runtimeDone {}", second.request_id)));
    Ok(())
}
