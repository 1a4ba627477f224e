//! `flowtrace inspect` as a user runs it: the real binary on real fixtures.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures").join(name)
}

fn flowtrace(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flowtrace"))
        .args(args)
        .env_remove("OTEL_PROPAGATORS")
        .env_remove("FLOWTRACE_RESERVED_KEY")
        .output()
        .unwrap()
}

fn inspect(args: &[&str]) -> Value {
    let output = flowtrace(args);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn sns_event_with_traceparent_has_that_parent() {
    let out = inspect(&["inspect", fixture("sns-traceparent.json").to_str().unwrap()]);
    assert_eq!(out["trigger"]["source"], "sns");
    assert_eq!(out["span"]["kind"], "consumer");
    assert_eq!(out["span"]["attributes"]["faas.trigger"], "pubsub");
    assert_eq!(out["span"]["attributes"]["faas.coldstart"], true);
    assert!(out["parent"]["trace_id"].as_str().unwrap().len() == 32);
    assert_eq!(out["links"], Value::Array(vec![]));
}

#[test]
fn sqs_batch_gives_links_with_message_ids() {
    let out = inspect(&["inspect", fixture("sqs-batch-3.json").to_str().unwrap()]);
    assert_eq!(out["trigger"]["source"], "sqs");
    assert_eq!(out["parent"], Value::Null);
    let links = out["links"].as_array().unwrap();
    assert_eq!(links.len(), 3);
    assert!(links.iter().all(|l| l["attributes"]["messaging.message.id"].is_string()));
}

#[test]
fn context_file_supplies_the_lambda_context() {
    let dir = std::env::temp_dir().join(format!("flowtrace-inspect-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let context = dir.join("context.json");
    std::fs::write(
        &context,
        r#"{"requestId":"r-42","functionName":"orders","invokedFunctionArn":"arn:aws:lambda:eu-west-1:123456789012:function:orders",
            "clientContext":{"custom":{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}}"#,
    )
    .unwrap();
    let out =
        inspect(&["inspect", fixture("direct-invoke.json").to_str().unwrap(), "--context", context.to_str().unwrap()]);
    assert_eq!(out["span"]["attributes"]["faas.invocation_id"], "r-42");
    assert_eq!(out["span"]["attributes"]["cloud.account.id"], "123456789012");
    assert_eq!(out["parent"]["trace_id"], "0af7651916cd43dd8448eb211c80319c");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn unknown_and_malformed_events_still_answer() {
    let dir = std::env::temp_dir().join(format!("flowtrace-inspect-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, body) in [
        ("garbage.json", &b"\xff{not json"[..]),
        ("unknown.json", br#"{"hello":"world"}"#),
        ("records.json", br#"{"Records":"nope"}"#),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, body).unwrap();
        let out = inspect(&["inspect", path.to_str().unwrap()]);
        assert_eq!(out["span"]["attributes"]["faas.trigger"], "other", "{name}");
        assert_eq!(out["span"]["name"], "function", "{name}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn unreadable_file_is_a_clear_error_with_exit_2() {
    let output = flowtrace(&["inspect", "/nonexistent/event.json"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot read /nonexistent/event.json"), "{stderr}");
}

#[test]
fn bad_usage_exits_2_with_usage() {
    let output = flowtrace(&["inspect"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("usage: flowtrace inspect"));
}
