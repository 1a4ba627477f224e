//! The smallest traced Lambda function: one macro, and every invocation is a span that
//! continues the trace its event carried.

use lambda_runtime::{Error, LambdaEvent};
use serde_json::{Value, json};

#[flowtrace::main(concurrent)]
async fn handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let greeting = greet(event.payload.get("name").and_then(Value::as_str).unwrap_or("world")).await;
    if event.payload.get("fail").and_then(Value::as_bool) == Some(true) {
        return Err("asked to fail".into());
    }
    if event.payload.get("panic").and_then(Value::as_bool) == Some(true) {
        panic!("asked to panic");
    }
    if let Some(millis) = event.payload.get("sleep_ms").and_then(Value::as_u64) {
        slow_call(millis).await;
    }
    tracing::info!(%greeting, "handled");
    Ok(json!({ "greeting": greeting, "requestId": event.context.request_id }))
}

/// A user span: it nests under the invocation span without any extra code.
#[tracing::instrument]
async fn greet(name: &str) -> String {
    format!("hello, {name}")
}

/// A call that can hang: with a short timeout, the trace shows this span was the one waiting.
#[tracing::instrument]
async fn slow_call(millis: u64) {
    tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
}
