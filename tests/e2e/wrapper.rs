//! The wrapper end to end: the `hello` example, built as it ships (`-p hello`), runs under the
//! Lambda Runtime API emulator and exports OTLP/HTTP to a local receiver.

use std::time::Duration;

use flowtrace_tests::{Invoke, LambdaEnv, OtlpReceiver, Span, SpanKind, StatusCode, fixture, workspace_bin};
use serde_json::json;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const WAIT: Duration = Duration::from_secs(10);

async fn invocation_span(receiver: &OtlpReceiver, request_id: &str) -> Result<Span, Box<dyn std::error::Error>> {
    let spans = receiver
        .wait_until(&format!("the invocation span of {request_id}"), WAIT, |spans| {
            spans.iter().any(|s| s.attr_str("faas.invocation_id") == Some(request_id))
        })
        .await?;
    Ok(spans.into_iter().find(|s| s.attr_str("faas.invocation_id") == Some(request_id)).ok_or("vanished")?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrapped_handler_exports_the_right_spans_through_the_emulator() -> TestResult {
    let hello = workspace_bin("hello", "hello")?;
    let receiver = OtlpReceiver::start().await?;
    let env = LambdaEnv::start().await?;
    let endpoint = receiver.endpoint();
    let function = env.spawn_function(&hello, &[("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())]).await?;

    // 1. An SNS notification carrying a traceparent: the invocation continues that trace.
    let sns = env.invoke(Invoke::new(fixture("sns-traceparent")).timeout(Duration::from_secs(5))).await?;
    sns.response()?;
    let span = invocation_span(&receiver, &sns.request_id).await?;
    assert_eq!(span.trace_id, "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(span.parent_span_id.as_deref(), Some("b7ad6b7169203331"));
    assert_eq!(span.kind, SpanKind::Consumer);
    assert_eq!(span.attr_str("faas.trigger"), Some("pubsub"));
    assert_eq!(span.attributes.bool("faas.coldstart"), Some(true));
    assert_eq!(span.resource_str("faas.name"), Some(env.config().function_name.as_str()));
    assert_eq!(span.resource_str("service.name"), Some(env.config().function_name.as_str()));
    assert_eq!(span.resource_str("cloud.platform"), Some("aws_lambda"));
    // The user's #[tracing::instrument] span nests under the invocation span.
    let greet = receiver.wait_for_span("greet", WAIT).await?;
    assert!(greet.is_child_of(&span), "greet {greet:?} under {span:?}");
    // Log lines carry the request id and the trace id.
    function.wait_for_output(&format!("requestId={}", sns.request_id), WAIT).await?;
    function.wait_for_output(&format!("traceId={}", span.trace_id), WAIT).await?;

    // 2. A batch of three SQS messages from three upstreams: a new root with three links.
    let sqs = env.invoke_event(fixture("sqs-batch-3")).await?;
    sqs.response()?;
    let span = invocation_span(&receiver, &sqs.request_id).await?;
    assert!(span.is_root());
    assert_eq!(span.attributes.bool("faas.coldstart"), Some(false));
    let linked: Vec<(&str, Option<&str>)> =
        span.links.iter().map(|l| (l.trace_id.as_str(), l.attributes.str("messaging.message.id"))).collect();
    assert_eq!(
        linked,
        [
            ("0af7651916cd43dd8448eb211c80319c", Some("MessageID_1")),
            ("4bf92f3577b34da6a3ce929d0e0e4736", Some("MessageID_2")),
            ("a1b2c3d4e5f60718293a4b5c6d7e8f90", Some("MessageID_3")),
        ]
    );

    // 3. A handler that returns Err: Error status, an exception event, and Lambda gets the error.
    let failed = env.invoke_event(json!({"fail": true})).await?;
    assert_eq!(failed.error()?.error_message, "asked to fail");
    let span = invocation_span(&receiver, &failed.request_id).await?;
    assert_eq!(span.status.code, StatusCode::Error);
    assert_eq!(span.status.message, "asked to fail");
    assert_eq!(span.event("exception").and_then(|e| e.attributes.str("exception.message")), Some("asked to fail"));

    // 4. A handler that panics: the same, and the process lives on.
    let panicked = env.invoke_event(json!({"panic": true})).await?;
    assert!(panicked.error()?.error_message.contains("asked to panic"));
    let span = invocation_span(&receiver, &panicked.request_id).await?;
    assert_eq!(span.status.code, StatusCode::Error);
    assert_eq!(span.status.message, "asked to panic");
    assert_eq!(span.event("exception").and_then(|e| e.attributes.str("exception.type")), Some("panic"));
    assert!(function.is_running());

    // 5. And it still serves, warm.
    let warm = env.invoke_event(json!({"name": "ada"})).await?;
    assert_eq!(warm.response()?["greeting"], "hello, ada");
    let span = invocation_span(&receiver, &warm.request_id).await?;
    assert_eq!(span.attributes.bool("faas.coldstart"), Some(false));
    assert_eq!(span.status.code, StatusCode::Unset);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_is_down_does_not_fail_the_invocation() -> TestResult {
    let hello = workspace_bin("hello", "hello")?;
    let env = LambdaEnv::start().await?;
    // Nothing listens on this port.
    let dead = format!("http://127.0.0.1:{}", flowtrace_tests::free_port());
    let function = env
        .spawn_function(
            &hello,
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", dead.as_str()), ("FLOWTRACE_FLUSH_TIMEOUT_MS", "300")],
        )
        .await?;
    for name in ["a", "b"] {
        let answer = env.invoke_event(json!({ "name": name })).await?;
        assert_eq!(answer.response()?["greeting"], format!("hello, {name}"));
    }
    // One clear line per lost export, not silence.
    function.wait_for_output("flowtrace: span export failed", WAIT).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_that_hangs_past_its_deadline_still_reports_which_call_was_hanging() -> TestResult {
    let hello = workspace_bin("hello", "hello")?;
    let receiver = OtlpReceiver::start().await?;
    let env = LambdaEnv::start().await?;
    let endpoint = receiver.endpoint();
    let function = env
        .spawn_function(
            &hello,
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()), ("FLOWTRACE_TIMEOUT_MARGIN_MS", "200")],
        )
        .await?;
    // One second to live; the handler waits five in `slow_call`.
    let hung = env.invoke(Invoke::new(json!({"sleep_ms": 5000})).timeout(Duration::from_secs(1))).await?;
    assert_eq!(hung.outcome, flowtrace_tests::Outcome::Timeout);
    let span = invocation_span(&receiver, &hung.request_id).await?;
    assert_eq!(span.status.code, StatusCode::Error);
    assert!(span.status.message.contains("waiting on slow_call"), "{:?}", span.status);
    assert_eq!(span.attr_str("flowtrace.cut_off"), Some("timeout"));
    let hanging = receiver.wait_for_span("slow_call", WAIT).await?;
    assert!(hanging.is_child_of(&span));
    assert_eq!(hanging.attr_str("flowtrace.cut_off"), Some("timeout"));
    assert_eq!(hanging.status.code, StatusCode::Error);
    // Both were handed off before the deadline, not when the process died.
    assert!(span.end_time_unix_nano <= u64::try_from(hung.deadline_ms)? * 1_000_000, "ended after the deadline");
    drop(function);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_invocations_in_one_process_keep_their_own_traces_and_cold_starts() -> TestResult {
    let hello = workspace_bin("hello", "hello")?;
    let receiver = OtlpReceiver::start().await?;
    let env = LambdaEnv::start().await?;
    let endpoint = receiver.endpoint();
    let _function = env
        .spawn_function(
            &hello,
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()), ("AWS_LAMBDA_MAX_CONCURRENCY", "2")],
        )
        .await?;
    // Two SNS notifications from two upstream traces, each holding its handler for 400 ms.
    let upstreams = ["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"];
    let started = std::time::Instant::now();
    let mut ids = Vec::new();
    for trace in upstreams {
        let mut event = fixture("sns-traceparent");
        event["Records"][0]["Sns"]["MessageAttributes"]["traceparent"]["Value"] =
            json!(format!("00-{trace}-b7ad6b7169203331-01"));
        event["sleep_ms"] = json!(400);
        ids.push(env.enqueue(Invoke::new(event).timeout(Duration::from_secs(5))).await?);
    }
    for id in &ids {
        env.wait_for(id).await?.response()?;
    }
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_millis(790), "the two invocations overlapped: {elapsed:?}");

    let mut cold_starts = 0;
    for (id, trace) in ids.iter().zip(upstreams) {
        let span = invocation_span(&receiver, id).await?;
        assert_eq!(span.trace_id, trace, "each invocation continues its own upstream");
        assert_eq!(span.parent_span_id.as_deref(), Some("b7ad6b7169203331"));
        cold_starts += usize::from(span.attributes.bool("faas.coldstart") == Some(true));
        let children = receiver
            .wait_until(&format!("slow_call under {id}"), WAIT, |spans| {
                spans.iter().any(|s| s.name == "slow_call" && s.is_child_of(&span))
            })
            .await?;
        assert_eq!(children.iter().filter(|s| s.name == "slow_call" && s.trace_id == trace).count(), 1);
    }
    assert_eq!(cold_starts, 1, "one process, one cold start");
    Ok(())
}
