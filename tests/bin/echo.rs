//! A plain `lambda_runtime` handler for harness tests (no flowtrace).
//!
//! Event fields it understands:
//! - `"sleep_ms": N`: sleeps N ms first;
//! - `"panic": true`: panics;
//! - `"fail": true`: returns an error (`errorType` "EchoError");
//! - otherwise it answers with the event and what the Runtime API told it.

use std::time::Duration;

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::{Value, json};

async fn handler(event: LambdaEvent<Value>) -> Result<Value, Diagnostic> {
    let (payload, context) = event.into_parts();
    println!("echo: invocation {}", context.request_id);

    if let Some(ms) = payload.get("sleep_ms").and_then(Value::as_u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if payload.get("panic") == Some(&Value::Bool(true)) {
        panic!("echo was asked to panic");
    }
    if payload.get("fail") == Some(&Value::Bool(true)) {
        return Err(Diagnostic {
            error_type: "EchoError".to_owned(),
            error_message: format!("echo was asked to fail ({})", context.request_id),
        });
    }

    let env = |key: &str| std::env::var(key).ok();
    Ok(json!({
        "echo": payload,
        "request_id": context.request_id,
        "deadline_ms": context.deadline,
        "invoked_function_arn": context.invoked_function_arn,
        "xray_trace_id": context.xray_trace_id,
        "client_context": context.client_context.map(|c| json!({ "custom": c.custom, "env": c.environment })),
        "env": {
            "AWS_LAMBDA_FUNCTION_NAME": env("AWS_LAMBDA_FUNCTION_NAME"),
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"),
            "AWS_LAMBDA_FUNCTION_VERSION": env("AWS_LAMBDA_FUNCTION_VERSION"),
            "AWS_REGION": env("AWS_REGION"),
            "AWS_LAMBDA_LOG_GROUP_NAME": env("AWS_LAMBDA_LOG_GROUP_NAME"),
            "AWS_LAMBDA_LOG_STREAM_NAME": env("AWS_LAMBDA_LOG_STREAM_NAME"),
            "ECHO_EXTRA": env("ECHO_EXTRA"),
        },
    }))
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    println!("echo: starting");
    lambda_runtime::run(service_fn(handler)).await
}
