//! Lambda Invoke (moto cannot run functions without docker, so against a canned HTTP
//! response): the client context sent carries the context, merged with the caller's, within
//! 3583 bytes; and what the runtime would parse from it continues the trace.
#![cfg(feature = "lambda")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/canned.rs"]
mod canned;
mod common;

use aws_sdk_lambda::primitives::Blob;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use canned::Canned;
use common::*;
use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::{SpanKind, Status};
use serde_json::json;

fn client(http: &Canned) -> aws_sdk_lambda::Client {
    let sdk = aws_types::SdkConfig::builder()
        .region(aws_types::region::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(
            aws_credential_types::Credentials::new("test", "test", None, None, "test"),
        ))
        .behavior_version(aws_smithy_runtime_api::client::behavior_version::BehaviorVersion::latest())
        .build();
    aws_sdk_lambda::Client::from_conf(
        flowtrace_aws::instrument(aws_sdk_lambda::config::Builder::from(&sdk).http_client(http.clone())).build(),
    )
}

fn ok() -> Canned {
    Canned::new(200, &[("x-amz-executed-version", "$LATEST"), ("x-amzn-requestid", "req-1")], "{}")
}

/// The invocation context `lambda_runtime` builds when Lambda passes the client context on
/// (decoded, in the `Lambda-Runtime-Client-Context` header).
fn runtime_context(header: &str) -> lambda_runtime::Context {
    let decoded = String::from_utf8(STANDARD.decode(header).unwrap()).unwrap();
    let mut headers = http::HeaderMap::new();
    headers.insert("lambda-runtime-client-context", decoded.parse().unwrap());
    headers.insert("lambda-runtime-deadline-ms", "4102444800000".parse().unwrap());
    headers.insert("lambda-runtime-invoked-function-arn", "arn:aws:lambda:us-east-1:1:function:f".parse().unwrap());
    lambda_runtime::Context::new("req", std::sync::Arc::default(), &headers).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn invoke_merges_context_into_the_client_context() {
    let http = ok();
    let lambda = client(&http);
    let cx = root("producer");
    let existing = STANDARD.encode(
        json!({"custom": {"tenant": "t1"}, "client": {"installation_id": "i", "app_title": "a", "app_version_name": "1", "app_version_code": "1", "app_package_name": "p"}})
            .to_string(),
    );
    lambda
        .invoke()
        .function_name("arn:aws:lambda:us-east-1:123456789012:function:post-analysis:live")
        .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
        .client_context(&existing)
        .payload(Blob::new(&b"{}"[..]))
        .send()
        .with_context(cx.clone())
        .await
        .unwrap();
    let span = span(&cx, "Lambda.Invoke");
    assert_kind(&span, SpanKind::Client);
    assert!(has(&span, "faas.invoked_name", "post-analysis"));
    assert!(has(&span, "faas.invoked_provider", "aws"));
    assert!(has(&span, "faas.invoked_region", "us-east-1"));
    assert!(has(&span, "aws.lambda.invocation_type", "Event"));
    assert!(has(&span, "aws.request_id", "req-1"));

    let seen = http.seen();
    let header = seen[0].header("x-amz-client-context").unwrap();
    let context = runtime_context(header);
    let client_context = context.client_context.as_ref().unwrap();
    assert_eq!(client_context.custom["tenant"], "t1", "the caller's custom entries are kept");
    assert_eq!(client_context.client.installation_id, "i", "and the rest of their context");
    let envelope = flowtrace::trigger::EventEnvelope {
        client_context_custom: Some(&client_context.custom),
        reserved_key: RESERVED_KEY,
    };
    let propagator = flowtrace::propagation::default_propagator();
    let trigger = flowtrace::trigger::detect(&json!({"any": "payload"}), envelope, &*propagator);
    let parent = trigger.parent_and_links().0.unwrap();
    assert_eq!(parent.span_id(), span.span_context.span_id(), "the consumer's parent is the producer span");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oversize_client_context_is_sent_as_the_user_built_it() {
    let http = ok();
    let lambda = client(&http);
    let cx = root("producer");
    // 2642 bytes of JSON → 3524 bytes of base64: fits alone, not with a traceparent.
    let existing = STANDARD.encode(json!({"custom": {"blob": "x".repeat(2620)}}).to_string());
    assert!(existing.len() < 3583);
    lambda.invoke().function_name("f").client_context(&existing).send().with_context(cx.clone()).await.unwrap();
    let span = span(&cx, "Lambda.Invoke");
    assert_eq!(skip_reasons(&span), vec!["too_large".to_owned()]);
    assert_eq!(http.seen()[0].header("x-amz-client-context"), Some(existing.as_str()));

    let cx = root("producer");
    lambda.invoke().function_name("f").client_context("not base64!").send().with_context(cx.clone()).await.unwrap();
    assert_eq!(skip_reasons(&span_of(&cx)), vec!["unreadable_client_context".to_owned()]);
    assert_eq!(http.seen()[1].header("x-amz-client-context"), Some("not base64!"));
}

fn span_of(cx: &opentelemetry::Context) -> opentelemetry_sdk::trace::SpanData {
    span(cx, "Lambda.Invoke")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_invoke_gives_an_error_span_and_the_users_error() {
    let http = Canned::new(
        404,
        &[("x-amzn-errortype", "ResourceNotFoundException"), ("content-type", "application/json")],
        r#"{"Type":"User","message":"Function not found: f"}"#,
    );
    let lambda = client(&http);
    let cx = root("producer");
    let error = lambda.invoke().function_name("f").send().with_context(cx.clone()).await.unwrap_err();
    assert!(matches!(error.as_service_error(), Some(e) if e.is_resource_not_found_exception()), "{error:?}");
    let span = span(&cx, "Lambda.Invoke");
    assert!(has(&span, "aws.error.code", "ResourceNotFoundException"));
    assert!(
        matches!(&span.status, Status::Error { description } if description.contains("Function not found")),
        "{:?}",
        span.status
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn one_span_covers_every_retry() {
    let throttled: &[(&str, &str)] =
        &[("x-amzn-errortype", "TooManyRequestsException"), ("content-type", "application/json")];
    let http = Canned::sequence(&[
        (429, throttled, r#"{"message":"Rate exceeded"}"#),
        (500, &[("content-type", "application/json")], r#"{"message":"internal"}"#),
        (200, &[("x-amzn-requestid", "req-3")], "{}"),
    ]);
    let sdk = aws_types::SdkConfig::builder()
        .region(aws_types::region::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(
            aws_credential_types::Credentials::new("test", "test", None, None, "test"),
        ))
        .behavior_version(aws_smithy_runtime_api::client::behavior_version::BehaviorVersion::latest())
        .retry_config(
            aws_smithy_types::retry::RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(std::time::Duration::from_millis(1)),
        )
        .build();
    let lambda = aws_sdk_lambda::Client::from_conf(
        flowtrace_aws::instrument(aws_sdk_lambda::config::Builder::from(&sdk).http_client(http.clone())).build(),
    );
    let cx = root("producer");
    lambda.invoke().function_name("f").send().with_context(cx.clone()).await.unwrap();
    let spans = spans_named(&cx, "Lambda.Invoke");
    assert_eq!(spans.len(), 1, "one span for the operation");
    assert!(has(&spans[0], "aws.request.attempts", 3_i64));
    assert!(has(&spans[0], "aws.request_id", "req-3"));
    assert_eq!(spans[0].status, Status::Unset);
    assert_eq!(http.seen().len(), 3);
    // Every attempt sent the same client context (injected once, before the retry loop).
    let contexts: Vec<_> = http.seen().iter().map(|s| s.header("x-amz-client-context").unwrap().to_owned()).collect();
    assert!(contexts.iter().all(|c| *c == contexts[0]));
}
