//! The flowtrace extension end to end: the real `flowtrace-extension` binary registered with
//! the Lambda emulator (Extensions + Telemetry APIs), the `hello` example wrapped by flowtrace
//! handing its spans to it over loopback, and an OTLP receiver as the backend.
//!
//! lambda-simulator 0.2 emits no telemetry when a function times out or crashes (it only
//! knows responses and errors; the harness kills the function at the deadline). Real Lambda
//! sends `platform.runtimeDone` / `platform.report` with status `timeout` or `failure` then.
//! [`inject_telemetry`] plays that part: it POSTs such a batch straight to the extension's
//! Telemetry API listener, whose port the test chooses (`FLOWTRACE_TELEMETRY_PORT`). The
//! crash test uses no injection: it checks the extension's own fallback (no
//! `platform.runtimeDone` by the deadline).

use std::time::{Duration, Instant};

use flowtrace_tests::lambda_simulator::ShutdownReason;
use flowtrace_tests::{
    Behaviour, Invoke, LambdaConfig, LambdaEnv, OtlpReceiver, Outcome, Span, StatusCode, free_port, workspace_bin,
};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{Metric, metric, number_data_point};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span as ProtoSpan};
use prost::Message;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const WAIT: Duration = Duration::from_secs(10);

/// A minimal HTTP/1.1 client (the harness has none): returns the status and body.
async fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, Vec<u8>)> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    let mut response = Vec::new();
    // The server may answer (413) before reading the whole body and close.
    let _ = stream.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response);
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.as_bytes().to_vec()).unwrap_or_default();
    Ok((status, body))
}

/// Sends only a request head claiming a `claimed`-byte body (no body: an oversize request
/// the server refuses before reading, without leaving unread bytes that would reset the
/// connection).
async fn http_claiming(port: u16, path: &str, content_type: &str, claimed: usize) -> std::io::Result<u16> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Type: {content_type}\r\nContent-Length: {claimed}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await?;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response);
    Ok(text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0))
}

/// POSTs a Telemetry API batch to the extension's listener, as Lambda would.
async fn inject_telemetry(port: u16, events: &Value) -> TestResult {
    let (status, _) =
        http(port, "POST", "/", &[("Content-Type", "application/json")], events.to_string().as_bytes()).await?;
    assert_eq!(status, 200, "telemetry listener refused the batch");
    Ok(())
}

async fn stats(port: u16) -> Result<Value, Box<dyn std::error::Error>> {
    let (status, body) = http(port, "GET", "/flowtrace/v1/stats", &[], b"").await?;
    assert_eq!(status, 200);
    Ok(serde_json::from_slice(&body)?)
}

/// The extension's ports and the environment it runs with.
struct Ports {
    otlp: u16,
    telemetry: u16,
}

impl Ports {
    fn new() -> Self {
        Self { otlp: free_port(), telemetry: free_port() }
    }

    fn extension_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.otlp)
    }
}

async fn start_extension(env: &LambdaEnv, ports: &Ports, backend: &str, extra: &[(&str, &str)]) -> TestResult {
    let extension = workspace_bin("flowtrace-extension", "flowtrace-extension")?;
    let otlp = ports.otlp.to_string();
    let telemetry = ports.telemetry.to_string();
    let mut vars = vec![
        ("FLOWTRACE_OTLP_PORT", otlp.as_str()),
        ("FLOWTRACE_TELEMETRY_HOST", "127.0.0.1"),
        ("FLOWTRACE_TELEMETRY_PORT", telemetry.as_str()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", backend),
        ("FLOWTRACE_LOG", "debug"),
    ];
    vars.extend_from_slice(extra);
    env.spawn_extension(&extension, &vars)?;
    env.wait_for_extensions(1, WAIT).await?;
    Ok(())
}

async fn start_hello(env: &LambdaEnv, ports: &Ports) -> TestResult {
    let hello = workspace_bin("hello", "hello")?;
    let endpoint = ports.extension_endpoint();
    env.spawn_function(&hello, &[("FLOWTRACE_EXTENSION_ENDPOINT", endpoint.as_str())]).await?;
    Ok(())
}

/// The wrapper names a direct invocation's span after the function.
const INVOCATION: &str = "flowtrace-e2e";

fn of_request<'a>(spans: &'a [Span], name: &str, request_id: &str) -> Option<&'a Span> {
    spans.iter().find(|s| s.name == name && s.attr_str("faas.invocation_id") == Some(request_id))
}

async fn wait_named(receiver: &OtlpReceiver, name: &str, request_id: &str) -> Result<Span, Box<dyn std::error::Error>> {
    let spans = receiver
        .wait_until(&format!("{name} of {request_id}"), WAIT, |spans| of_request(spans, name, request_id).is_some())
        .await?;
    Ok(of_request(&spans, name, request_id).ok_or("vanished")?.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_pass_through_with_platform_and_init_spans_and_shutdown_exits_cleanly() -> TestResult {
    let receiver = OtlpReceiver::start().await?;
    let env = LambdaEnv::start().await?;
    let ports = Ports::new();
    start_extension(&env, &ports, &receiver.endpoint(), &[]).await?;
    start_hello(&env, &ports).await?;

    let ok = env.invoke_event(json!({"name": "ada"})).await?;
    assert_eq!(ok.response()?["greeting"], "hello, ada");
    let invocation = wait_named(&receiver, INVOCATION, &ok.request_id).await?;
    assert_eq!(invocation.attributes.get("flowtrace.synthesized"), None, "the wrapper's own span passes through");
    let greet = receiver.wait_for_span("greet", WAIT).await?;
    assert!(greet.is_child_of(&invocation));

    // The platform span: a child of the invocation span, with the platform's figures.
    let platform = wait_named(&receiver, "lambda.platform", &ok.request_id).await?;
    assert!(platform.is_child_of(&invocation), "{platform:?}");
    assert_eq!(platform.attr_str("flowtrace.platform.status"), Some("success"));
    assert_eq!(platform.attr_i64("flowtrace.platform.memory_size_mb"), Some(128));
    let billed = platform.attr_i64("flowtrace.platform.billed_duration_ms").ok_or("no billed duration")?;
    assert!(platform.attr_i64("flowtrace.platform.max_memory_used_mb").is_some());
    let cost = platform.attr("flowtrace.platform.cost_usd").and_then(|v| v.as_f64()).ok_or("no cost")?;
    #[allow(clippy::cast_precision_loss)]
    let expected = (billed as f64 / 1000.0) * (128.0 / 1024.0) * 0.000_016_666_7 + 0.000_000_2;
    assert!((cost - expected).abs() < 1e-12, "cost {cost} vs {expected}");
    assert_eq!(platform.resource_str("faas.name"), Some(env.config().function_name.as_str()));

    // The cold start's init span, in the first invocation's trace.
    let init = receiver.wait_for_span("lambda.init", WAIT).await?;
    assert_eq!(init.trace_id, invocation.trace_id);
    assert_eq!(init.attributes.bool("faas.coldstart"), Some(true));

    // Health metrics per invocation, decodable OTLP.
    let deadline = Instant::now() + WAIT;
    let metrics = loop {
        let metrics: Vec<Metric> = receiver
            .requests()
            .into_iter()
            .filter(|r| r.path == "/v1/metrics")
            .filter_map(|r| ExportMetricsServiceRequest::decode(r.body).ok())
            .flat_map(|r| r.resource_metrics)
            .flat_map(|r| r.scope_metrics)
            .flat_map(|s| s.metrics)
            .collect();
        if !metrics.is_empty() || Instant::now() > deadline {
            break metrics;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let named = |name: &str| metrics.iter().find(|m| m.name == name);
    let invocations = named("faas.invocations").ok_or("no faas.invocations")?;
    let Some(metric::Data::Sum(sum)) = &invocations.data else { return Err("faas.invocations is not a sum".into()) };
    assert_eq!(sum.data_points[0].value, Some(number_data_point::Value::AsInt(1)));
    let Some(metric::Data::Sum(cold)) = &named("faas.coldstarts").ok_or("no coldstarts")?.data else {
        return Err("coldstarts is not a sum".into());
    };
    assert_eq!(cold.data_points[0].value, Some(number_data_point::Value::AsInt(1)));
    let Some(metric::Data::Histogram(duration)) = &named("flowtrace.faas.duration").ok_or("no duration")?.data else {
        return Err("duration is not a histogram".into());
    };
    assert_eq!(duration.data_points[0].count, 1);
    assert_eq!(duration.data_points[0].bucket_counts.iter().sum::<u64>(), 1);
    assert!(named("flowtrace.faas.cost").is_some() && named("flowtrace.extension.dropped").is_some());

    // An Err from the handler: the wrapper's span carries it; nothing is synthesized.
    let failed = env.invoke_event(json!({"fail": true})).await?;
    failed.error()?;
    let span = wait_named(&receiver, INVOCATION, &failed.request_id).await?;
    assert_eq!(span.status.code, StatusCode::Error);
    assert_eq!(span.attributes.get("flowtrace.synthesized"), None);
    let platform = wait_named(&receiver, "lambda.platform", &failed.request_id).await?;
    assert_eq!(platform.attr_str("flowtrace.platform.status"), Some("error"));
    assert_eq!(platform.status.code, StatusCode::Error);

    let extension = env.extensions().remove(0);
    let report = env.shutdown(ShutdownReason::Spindown).await?;
    let exit = report.extension_exits[0].1.ok_or("the extension did not exit after SHUTDOWN")?;
    assert!(exit.success(), "{exit:?}\n{}", extension.output());
    assert!(extension.stderr().contains("SHUTDOWN (spindown): completed flush"), "{}", extension.output());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_flushes_everything_buffered() -> TestResult {
    let receiver = OtlpReceiver::start().await?;
    let env = LambdaEnv::start().await?;
    let ports = Ports::new();
    // Everything counts as frequent and the background flush never comes due: after the
    // first invocation, spans stay buffered until SHUTDOWN.
    let hour = "3600000";
    start_extension(
        &env,
        &ports,
        &receiver.endpoint(),
        &[("FLOWTRACE_FREQUENT_BELOW_MS", hour), ("FLOWTRACE_BACKGROUND_FLUSH_MS", hour)],
    )
    .await?;
    start_hello(&env, &ports).await?;

    let mut ids = Vec::new();
    for name in ["a", "b", "c", "d", "e", "f"] {
        let answer = env.invoke_event(json!({ "name": name })).await?;
        answer.response()?;
        ids.push(answer.request_id.clone());
        if name == "d" {
            // The flush the first (rare) invocation started drains until the buffer is
            // empty; let it finish. From here on, nothing comes due before SHUTDOWN.
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = receiver.spans();
    for id in &ids[4..] {
        assert!(of_request(&before, INVOCATION, id).is_none(), "expected {id} to still be buffered");
    }
    let buffered = stats(ports.otlp).await?;
    assert!(buffered["buffered_bytes"].as_u64() > Some(0), "{buffered}");

    let extension = env.extensions().remove(0);
    let report = env.shutdown(ShutdownReason::Spindown).await?;
    assert!(report.extension_exits[0].1.is_some_and(|s| s.success()));
    let spans = receiver.spans();
    for id in &ids {
        assert!(
            of_request(&spans, INVOCATION, id).is_some(),
            "invocation span of {id} after SHUTDOWN\n{}",
            extension.output()
        );
    }
    // The last report may come after the function is gone; every earlier one made a platform span.
    for id in &ids[..5] {
        assert!(of_request(&spans, "lambda.platform", id).is_some(), "platform span of {id} after SHUTDOWN");
    }
    Ok(())
}

/// A trace request of `spans` spans, each carrying `padding` bytes.
fn big_request(spans: usize, padding: usize) -> Vec<u8> {
    let span = |i: usize| ProtoSpan {
        trace_id: vec![7; 16],
        span_id: (i as u64 + 1).to_be_bytes().to_vec(),
        name: "load".to_owned(),
        start_time_unix_nano: 1,
        end_time_unix_nano: 2,
        attributes: vec![KeyValue {
            key: "padding".to_owned(),
            value: Some(AnyValue { value: Some(any_value::Value::StringValue("x".repeat(padding))) }),
            ..Default::default()
        }],
        ..Default::default()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans { spans: (0..spans).map(span).collect(), ..Default::default() }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next()?.parse().ok())
}

async fn collector_trouble(receiver_behaviour: Option<Behaviour>) -> TestResult {
    let receiver = OtlpReceiver::start().await?;
    let backend = match &receiver_behaviour {
        Some(behaviour) => {
            receiver.set_behaviour(behaviour.clone());
            receiver.endpoint()
        }
        // Nothing listens there.
        None => format!("http://127.0.0.1:{}", free_port()),
    };
    let env = LambdaEnv::start().await?;
    let ports = Ports::new();
    let bound = 64 * 1024;
    let bound_text = bound.to_string();
    start_extension(
        &env,
        &ports,
        &backend,
        &[
            ("FLOWTRACE_BUFFER_BYTES", bound_text.as_str()),
            ("FLOWTRACE_FLUSH_BUDGET_MS", "100"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "5000"),
            ("FLOWTRACE_EXPORT_RETRIES", "1"),
        ],
    )
    .await?;
    start_hello(&env, &ports).await?;
    let pid = env.extensions()[0].pid();

    let load = big_request(8, 1024);
    let mut slowest = Duration::ZERO;
    for i in 0..8 {
        // The function's own spans, plus 64 KiB per invocation from "another SDK".
        for _ in 0..8 {
            let (status, _) =
                http(ports.otlp, "POST", "/v1/traces", &[("Content-Type", "application/x-protobuf")], &load).await?;
            assert_eq!(status, 200);
        }
        let started = Instant::now();
        let answer = env.invoke_event(json!({ "name": format!("n{i}") })).await?;
        answer.response()?;
        slowest = slowest.max(started.elapsed());
    }
    // The collector takes 2 s (or never answers); the invocations did not wait for it. The
    // flush budget (100 ms) is the most the extension holds the next invocation back.
    assert!(slowest < Duration::from_millis(1500), "slowest invocation took {slowest:?}");

    let counters = stats(ports.otlp).await?;
    assert!(counters["buffered_bytes"].as_u64().ok_or("no buffered_bytes")? <= bound as u64, "{counters}");
    assert!(counters["dropped_items"].as_u64().ok_or("no dropped_items")? > 0, "{counters}");
    let rss = rss_kb(pid).ok_or("no RSS")?;
    println!("extension RSS after load: {rss} kB; stats {counters}");
    assert!(rss < 32 * 1024, "extension RSS {rss} kB");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_collector_neither_slows_invocations_nor_grows_memory() -> TestResult {
    collector_trouble(Some(Behaviour { delay: Duration::from_secs(2), fail_with: None })).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_is_down_costs_nothing_and_drops_are_counted() -> TestResult {
    collector_trouble(None).await
}

/// Posts the start notice the wrapper would send for `request_id`.
async fn post_notice(port: u16, request_id: &str, span_id: &str) -> TestResult {
    let notice = json!({
        "requestId": request_id,
        "traceId": "4bf92f3577b34da6a3ce929d0e0e4736",
        "spanId": span_id,
        "parentSpanId": "00f067aa0ba902b7",
        "name": "process orders",
        "startTimeUnixNano": 1_700_000_000_000_000_000u64,
        "sampled": true,
    });
    let (status, body) = http(
        port,
        "POST",
        "/flowtrace/v1/start",
        &[("Content-Type", "application/json")],
        notice.to_string().as_bytes(),
    )
    .await?;
    assert_eq!(status, 202, "{}", String::from_utf8_lossy(&body));
    Ok(())
}

async fn wait_delivered(env: &LambdaEnv, request_id: &str) -> TestResult {
    let deadline = Instant::now() + WAIT;
    while !env.delivered_request_ids().await.iter().any(|id| id == request_id) {
        if Instant::now() > deadline {
            return Err(format!("{request_id} was never delivered").into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_invocation_still_gets_its_invocation_span_with_error_status() -> TestResult {
    let receiver = OtlpReceiver::start().await?;
    let env =
        LambdaEnv::start_with(LambdaConfig { timeout: Duration::from_secs(1), ..LambdaConfig::default() }).await?;
    let ports = Ports::new();
    start_extension(&env, &ports, &receiver.endpoint(), &[("FLOWTRACE_TIMEOUT_GRACE_MS", "10000")]).await?;
    // A handler that sleeps past its timeout. The test sends the start notice the wrapper
    // sends at invocation start (echo_handler is not wrapped).
    let echo = workspace_bin("flowtrace-tests", "echo_handler")?;
    env.spawn_function(&echo, &[]).await?;

    let id = env.enqueue(Invoke::new(json!({"sleep_ms": 5000})).request_id("timeout-1")).await?;
    wait_delivered(&env, &id).await?;
    post_notice(ports.otlp, &id, "b7ad6b7169203331").await?;
    let invocation = env.wait_for(&id).await?;
    assert_eq!(invocation.outcome, Outcome::Timeout);

    // The function's log lines, as the Telemetry API delivers them (text and JSON).
    inject_telemetry(
        ports.telemetry,
        &json!([
            {"time": "2026-01-01T00:00:00.500Z", "type": "function", "record": "waiting for the database\n"},
            {"time": "2026-01-01T00:00:00.600Z", "type": "function", "record": {"level": "WARN", "message": "still waiting", "requestId": id}},
        ]),
    )
    .await?;

    // What Lambda sends when the deadline passes.
    let now = "2026-01-01T00:00:01.000Z";
    inject_telemetry(
        ports.telemetry,
        &json!([
            {"time": now, "type": "platform.runtimeDone", "record": {"requestId": id, "status": "timeout", "errorType": "Sandbox.Timedout", "metrics": {"durationMs": 1000.0}}},
            {"time": now, "type": "platform.report", "record": {"requestId": id, "status": "timeout", "errorType": "Sandbox.Timedout",
                "metrics": {"durationMs": 1000.0, "billedDurationMs": 1000, "memorySizeMB": 128, "maxMemoryUsedMB": 40}}},
        ]),
    )
    .await?;

    let spans = receiver
        .wait_until("the synthesized invocation span", WAIT, |spans| {
            spans.iter().any(|s| s.span_id == "b7ad6b7169203331")
        })
        .await?;
    let span = spans.iter().find(|s| s.span_id == "b7ad6b7169203331").ok_or("vanished")?;
    assert_eq!(span.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(span.parent_span_id.as_deref(), Some("00f067aa0ba902b7"));
    assert_eq!(span.name, "process orders");
    assert_eq!(span.status.code, StatusCode::Error);
    assert!(span.status.message.contains("timeout"), "{:?}", span.status);
    assert_eq!(span.attributes.bool("flowtrace.synthesized"), Some(true));
    assert_eq!(span.attr_str("flowtrace.platform.error_type"), Some("Sandbox.Timedout"));
    assert_eq!(span.duration(), Duration::from_secs(1));
    let platform = wait_named(&receiver, "lambda.platform", &id).await?;
    assert!(platform.is_child_of(span));
    assert_eq!(platform.attr_str("flowtrace.platform.status"), Some("timeout"));
    assert!(platform.event("flowtrace.insight.near_timeout").is_some(), "{platform:?}");

    // The log lines left as OTLP logs, correlated with the invocation span.
    let deadline = Instant::now() + WAIT;
    let logs = loop {
        let logs: Vec<_> = receiver
            .requests()
            .into_iter()
            .filter(|r| r.path == "/v1/logs")
            .filter_map(|r| ExportLogsServiceRequest::decode(r.body).ok())
            .flat_map(|r| r.resource_logs)
            .flat_map(|r| r.scope_logs)
            .flat_map(|s| s.log_records)
            .collect();
        if logs.len() >= 2 || Instant::now() > deadline {
            break logs;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(logs.len(), 2, "{logs:?}");
    for log in &logs {
        assert_eq!(
            log.trace_id,
            [0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36]
        );
        assert_eq!(log.span_id, [0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31]);
    }
    let body = |i: usize| match logs[i].body.as_ref().and_then(|b| b.value.as_ref()) {
        Some(any_value::Value::StringValue(text)) => text.clone(),
        other => format!("{other:?}"),
    };
    assert_eq!(body(0), "waiting for the database");
    assert_eq!(body(1), "still waiting");
    assert_eq!(logs[1].severity_text, "WARN");
    assert_eq!(logs[1].severity_number, 13);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_function_still_gets_its_invocation_span() -> TestResult {
    let receiver = OtlpReceiver::start().await?;
    let env =
        LambdaEnv::start_with(LambdaConfig { timeout: Duration::from_secs(2), ..LambdaConfig::default() }).await?;
    let ports = Ports::new();
    start_extension(&env, &ports, &receiver.endpoint(), &[("FLOWTRACE_TIMEOUT_GRACE_MS", "200")]).await?;
    let echo = workspace_bin("flowtrace-tests", "echo_handler")?;
    let function = env.spawn_function(&echo, &[]).await?;

    let id = env.enqueue(Invoke::new(json!({"sleep_ms": 10000})).request_id("crash-1")).await?;
    wait_delivered(&env, &id).await?;
    post_notice(ports.otlp, &id, "0123456789abcdef").await?;
    function.kill();
    assert!(matches!(env.wait_for(&id).await?.outcome, Outcome::Crashed(_)));

    // No telemetry at all (the emulator sends none for a crash): the extension gives up on
    // platform.runtimeDone at the deadline and emits the span itself.
    let spans = receiver
        .wait_until("the synthesized invocation span", WAIT, |spans| {
            spans.iter().any(|s| s.span_id == "0123456789abcdef")
        })
        .await?;
    let span = spans.iter().find(|s| s.span_id == "0123456789abcdef").ok_or("vanished")?;
    assert_eq!(span.status.code, StatusCode::Error);
    assert_eq!(span.attributes.bool("flowtrace.synthesized"), Some(true));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_and_the_extension_lives_on() -> TestResult {
    let receiver = OtlpReceiver::start().await?;
    let env = LambdaEnv::start().await?;
    let ports = Ports::new();
    start_extension(&env, &ports, &receiver.endpoint(), &[("FLOWTRACE_MAX_REQUEST_BYTES", "65536")]).await?;
    let p = ports.otlp;
    let proto = [("Content-Type", "application/x-protobuf")];
    let json_type = [("Content-Type", "application/json")];

    assert_eq!(http(p, "POST", "/v1/traces", &proto, &[0x0a, 0xff, 0xff]).await?.0, 400);
    assert_eq!(http(p, "POST", "/v1/traces", &proto, &[0x0b]).await?.0, 400);
    assert_eq!(http(p, "POST", "/v1/traces", &json_type, b"{\"resourceSpans\": 3}").await?.0, 400);
    assert_eq!(http(p, "POST", "/v1/logs", &json_type, b"not json").await?.0, 400);
    assert_eq!(http(p, "POST", "/v1/traces", &[("Content-Type", "text/plain")], b"hi").await?.0, 415);
    assert_eq!(
        http(
            p,
            "POST",
            "/v1/traces",
            &[("Content-Type", "application/x-protobuf"), ("Content-Encoding", "gzip")],
            b"nope"
        )
        .await?
        .0,
        415
    );
    assert_eq!(http_claiming(p, "/v1/traces", "application/x-protobuf", 70_000).await?, 413);
    assert_eq!(http(p, "POST", "/flowtrace/v1/start", &json_type, b"{\"requestId\":1}").await?.0, 400);
    assert_eq!(
        http(p, "POST", "/flowtrace/v1/start", &json_type, br#"{"requestId":"r","traceId":"zz","spanId":"b7ad6b7169203331","name":"n","startTimeUnixNano":1,"sampled":true}"#).await?.0,
        400
    );
    assert_eq!(http(p, "GET", "/nope", &[], b"").await?.0, 404);
    assert_eq!(http(ports.telemetry, "POST", "/", &json_type, b"{\"not\":\"an array\"}").await?.0, 400);
    // Malformed events inside a valid batch are skipped; the batch is accepted.
    inject_telemetry(
        ports.telemetry,
        &json!([42, {"type": "platform.report", "record": {"status": 1}}, {"type": "function", "record": "log line"}]),
    )
    .await?;

    // Still alive: good OTLP, protobuf and JSON, passes through.
    let (status, _) = http(p, "POST", "/v1/traces", &proto, &big_request(1, 10)).await?;
    assert_eq!(status, 200);
    let json_body = json!({"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "python-like"}}]},
        "scopeSpans": [{"scope": {"name": "sdk"}, "spans": [{"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
        "name": "json-span", "kind": 1, "startTimeUnixNano": "1544712660000000000", "endTimeUnixNano": "1544712661000000000"}]}]}]});
    let (status, body) = http(p, "POST", "/v1/traces", &json_type, json_body.to_string().as_bytes()).await?;
    assert_eq!((status, body.as_slice()), (200, b"{}".as_slice()));
    let counters = stats(p).await?;
    assert_eq!(counters["rejected_requests"], 9, "{counters}");
    assert_eq!(counters["telemetry_rejected"], 1, "{counters}");
    assert!(env.extensions()[0].is_running());

    // Flushed at SHUTDOWN (there is no invocation here).
    env.shutdown(ShutdownReason::Spindown).await?;
    let spans = receiver.spans();
    assert!(
        spans.iter().any(|s| s.name == "json-span" && s.resource_str("service.name") == Some("python-like")),
        "{spans:?}"
    );
    assert!(spans.iter().any(|s| s.name == "load"));
    Ok(())
}

/// A Python function's OpenTelemetry SDK (opentelemetry-sdk + the OTLP/HTTP exporter from
/// PyPI) exporting to the layer's receiver: its spans reach the backend intact.
///
/// Needs `pip install opentelemetry-sdk opentelemetry-exporter-otlp-proto-http`. Without
/// them the test says so and passes, unless `FLOWTRACE_REQUIRE_PYTHON=1` (set it in CI once
/// the packages are installed there).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_spans_pass_through_intact() -> TestResult {
    let probe = std::process::Command::new("python3")
        .args(["-c", "import opentelemetry.sdk, opentelemetry.exporter.otlp.proto.http"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        if std::env::var("FLOWTRACE_REQUIRE_PYTHON").is_ok_and(|v| v == "1") {
            return Err("python3 with opentelemetry-sdk and opentelemetry-exporter-otlp-proto-http is required".into());
        }
        eprintln!("SKIPPED: pip install opentelemetry-sdk opentelemetry-exporter-otlp-proto-http to run this test");
        return Ok(());
    }
    let receiver = OtlpReceiver::start().await?;
    let env = LambdaEnv::start().await?;
    let ports = Ports::new();
    start_extension(&env, &ports, &receiver.endpoint(), &[]).await?;

    let script = r#"
import sys
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

provider = TracerProvider(resource=Resource.create({"service.name": "py-fn", "faas.name": "py-fn"}))
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=sys.argv[1] + "/v1/traces")))
tracer = provider.get_tracer("py-handler")
with tracer.start_as_current_span("py-invocation", kind=trace.SpanKind.SERVER) as root:
    root.set_attribute("faas.invocation_id", "py-1")
    root.set_attribute("answer", 42)
    with tracer.start_as_current_span("py-child") as child:
        child.set_attribute("ratio", 0.5)
        child.add_event("checkpoint", {"step": "one"})
provider.shutdown()
"#;
    let output = {
        let endpoint = ports.extension_endpoint();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new("python3").args(["-c", script, &endpoint]).output()
        })
        .await??
    };
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

    env.shutdown(ShutdownReason::Spindown).await?;
    let spans = receiver.spans();
    let root = spans.iter().find(|s| s.name == "py-invocation").ok_or("no py-invocation span")?;
    let child = spans.iter().find(|s| s.name == "py-child").ok_or("no py-child span")?;
    assert!(child.is_child_of(root));
    assert_eq!(root.resource_str("service.name"), Some("py-fn"));
    assert_eq!(root.attr_i64("answer"), Some(42));
    assert_eq!(child.attr("ratio").and_then(|v| v.as_f64()), Some(0.5));
    assert_eq!(child.event("checkpoint").and_then(|e| e.attributes.str("step")), Some("one"));
    Ok(())
}

/// With the environment frozen (SIGSTOP) between invocations, as Lambda does: nothing is
/// lost, what arrived after the extension's `/next` (the report) leaves at the next
/// invocation's end, and the last report at SHUTDOWN.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_between_invocations_nothing_is_lost() -> TestResult {
    let receiver = OtlpReceiver::start().await?;
    let env = LambdaEnv::start_with(LambdaConfig { freeze: true, ..LambdaConfig::default() }).await?;
    let ports = Ports::new();
    // Rare invocations (in frequent mode the end of an invocation leaves the flush to the
    // background, which only runs while thawed; `shutdown_flushes_everything_buffered`
    // covers what is left at the end).
    start_extension(&env, &ports, &receiver.endpoint(), &[("FLOWTRACE_FREQUENT_BELOW_MS", "1")]).await?;
    start_hello(&env, &ports).await?;

    let mut ids = Vec::new();
    for name in ["a", "b", "c"] {
        let answer = env.invoke_event(json!({ "name": name })).await?;
        answer.response()?;
        ids.push(answer.request_id.clone());
        env.wait_for_frozen(WAIT).await?;
    }
    for id in &ids {
        wait_named(&receiver, INVOCATION, id).await?;
    }
    for id in &ids[..2] {
        wait_named(&receiver, "lambda.platform", id).await?;
    }
    let report = env.shutdown(ShutdownReason::Spindown).await?;
    assert!(report.extension_exits[0].1.is_some_and(|s| s.success()));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrapped_handler_that_times_out_keeps_its_hanging_child_span_through_the_layer() -> TestResult {
    let receiver = OtlpReceiver::start().await?;
    let env =
        LambdaEnv::start_with(LambdaConfig { timeout: Duration::from_secs(1), ..LambdaConfig::default() }).await?;
    let ports = Ports::new();
    start_extension(&env, &ports, &receiver.endpoint(), &[]).await?;
    start_hello(&env, &ports).await?;

    let hung = env.invoke(Invoke::new(json!({"sleep_ms": 5000}))).await?;
    assert_eq!(hung.outcome, Outcome::Timeout);
    // The wrapper's timeout guard ended the invocation span and the hanging call and handed
    // them to the extension before Lambda killed the function.
    let span = wait_named(&receiver, INVOCATION, &hung.request_id).await?;
    assert_eq!(span.status.code, StatusCode::Error);
    assert!(span.status.message.contains("waiting on slow_call"), "{:?}", span.status);
    assert_eq!(span.attributes.bool("flowtrace.synthesized"), None, "the wrapper's own span, not a synthesized one");
    let hanging = receiver
        .wait_until("the cut-off slow_call span", WAIT, |spans| {
            spans.iter().any(|s| s.name == "slow_call" && s.trace_id == span.trace_id)
        })
        .await?;
    let hanging = hanging.iter().find(|s| s.name == "slow_call" && s.trace_id == span.trace_id).ok_or("vanished")?;
    assert!(hanging.is_child_of(&span));
    assert_eq!(hanging.attr_str("flowtrace.cut_off"), Some("timeout"));
    Ok(())
}
