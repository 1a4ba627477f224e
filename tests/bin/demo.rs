//! `make demo` (wrapper stage): runs the `hello` example under the local Lambda emulator with
//! an OTLP receiver, sends it real events, and prints what flowtrace exported.

use std::collections::HashMap;
use std::time::Duration;

use flowtrace_tests::{Invoke, LambdaEnv, OtlpReceiver, Span, StatusCode, fixture, workspace_bin};
use serde_json::json;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

#[tokio::main]
async fn main() -> Result<()> {
    let hello = workspace_bin("hello", "hello")?;
    let receiver = OtlpReceiver::start().await?;
    let env = LambdaEnv::start().await?;
    let endpoint = receiver.endpoint();
    let _function = env.spawn_function(&hello, &[("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())]).await?;
    println!("hello is running under the Lambda emulator at {}, exporting to {endpoint}\n", env.runtime_api());

    let invocations = [
        ("an SNS notification carrying a traceparent", fixture("sns-traceparent")),
        ("a batch of three SQS messages from three traces", fixture("sqs-batch-3")),
        ("an API Gateway request", fixture("apigw-rest-traceparent")),
        ("a direct invoke that fails", json!({"fail": true})),
    ];
    let mut request_ids = Vec::new();
    for (what, event) in invocations {
        let invocation = env.invoke(Invoke::new(event).timeout(Duration::from_secs(5))).await?;
        let outcome = match invocation.error() {
            Ok(error) => format!("error: {}", error.error_message),
            Err(_) => "ok".to_owned(),
        };
        println!("invoked with {what}: {outcome} ({} ms)", invocation.elapsed.as_millis());
        request_ids.push(invocation.request_id);
    }
    let spans = receiver
        .wait_until("every invocation span", Duration::from_secs(10), |spans| {
            request_ids.iter().all(|id| spans.iter().any(|s| s.attr_str("faas.invocation_id") == Some(id)))
        })
        .await?;
    println!("\nexported spans, per trace:\n");
    print_waterfall(&spans);
    Ok(())
}

fn print_waterfall(spans: &[Span]) {
    let mut traces: Vec<&str> = Vec::new();
    for span in spans {
        if !traces.contains(&span.trace_id.as_str()) {
            traces.push(&span.trace_id);
        }
    }
    for trace in traces {
        let in_trace: Vec<&Span> = spans.iter().filter(|s| s.trace_id == trace).collect();
        let start = in_trace.iter().map(|s| s.start_time_unix_nano).min().unwrap_or(0);
        let by_id: HashMap<&str, &Span> = in_trace.iter().map(|s| (s.span_id.as_str(), *s)).collect();
        println!("trace {trace}");
        let mut ordered = in_trace.clone();
        ordered.sort_by_key(|s| s.start_time_unix_nano);
        for span in ordered {
            let mut depth = 0;
            let mut parent = span.parent_span_id.as_deref();
            while let Some(id) = parent.and_then(|p| by_id.get(p)) {
                depth += 1;
                parent = id.parent_span_id.as_deref();
            }
            let upstream = match (&span.parent_span_id, depth) {
                (Some(parent), 0) => format!(" ← upstream span {parent}"),
                _ => String::new(),
            };
            let status = match span.status.code {
                StatusCode::Error => format!("  ERROR: {}", span.status.message),
                _ => String::new(),
            };
            println!(
                "  {:>8.3} ms {:>8.3} ms  {}{} [{:?}]{}{}",
                (span.start_time_unix_nano - start) as f64 / 1e6,
                span.duration().as_secs_f64() * 1e3,
                "  ".repeat(depth),
                span.name,
                span.kind,
                upstream,
                status
            );
            if let Some(trigger) = span.attr_str("faas.trigger") {
                let cold = span.attributes.bool("faas.coldstart").unwrap_or(false);
                println!("{:>26}faas.trigger={trigger} faas.coldstart={cold}", "");
            }
            for link in &span.links {
                let id = link.attributes.str("messaging.message.id").unwrap_or("?");
                println!("{:>26}link → trace {} span {} (message {id})", "", link.trace_id, link.span_id);
            }
        }
        println!();
    }
}
