//! SQS against moto: spans, injection, and the consumer continuing the trace.
#![cfg(feature = "sqs")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/canned.rs"]
mod canned;
mod common;

use aws_sdk_sqs::types::{MessageAttributeValue, MessageSystemAttributeName, SendMessageBatchRequestEntry};
use common::*;
use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::{SpanKind, Status};
use serde_json::{Map, Value, json};

async fn queue(client: &aws_sdk_sqs::Client, name: &str) -> String {
    client.create_queue().queue_name(name).send().await.unwrap().queue_url.unwrap()
}

/// Receives every message with all attributes and turns them into a Lambda SQS event.
pub async fn receive_as_event(client: &aws_sdk_sqs::Client, url: &str, expected: usize) -> Value {
    let mut records = Vec::new();
    for _ in 0..20 {
        let out = client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .unwrap();
        for message in out.messages.unwrap_or_default() {
            let mut attributes = Map::new();
            for (name, value) in message.attributes.unwrap_or_default() {
                attributes.insert(name.as_str().to_owned(), json!(value));
            }
            let mut message_attributes = Map::new();
            for (name, value) in message.message_attributes.unwrap_or_default() {
                message_attributes.insert(
                    name,
                    json!({"stringValue": value.string_value, "dataType": value.data_type, "stringListValues": [], "binaryListValues": []}),
                );
            }
            records.push(json!({
                "messageId": message.message_id,
                "receiptHandle": message.receipt_handle,
                "body": message.body,
                "attributes": attributes,
                "messageAttributes": message_attributes,
                "md5OfBody": message.md5_of_body,
                "eventSource": "aws:sqs",
                "eventSourceARN": format!("arn:aws:sqs:us-east-1:123456789012:{}", url.rsplit('/').next().unwrap()),
                "awsRegion": "us-east-1"
            }));
        }
        if records.len() >= expected {
            break;
        }
    }
    assert_eq!(records.len(), expected, "messages received");
    json!({ "Records": records })
}

#[tokio::test(flavor = "multi_thread")]
async fn send_message_carries_context_to_the_consumer() {
    let moto = Moto::start();
    let client = flowtrace_aws::sqs_client(&moto.sdk_config());
    let url = queue(&client, "orders").await;
    let cx = root("producer");
    let sent = client
        .send_message()
        .queue_url(&url)
        .message_body("hello")
        .message_attributes(
            "user",
            MessageAttributeValue::builder().data_type("String").string_value("u1").build().unwrap(),
        )
        .send()
        .with_context(cx.clone())
        .await
        .unwrap();

    let span = span(&cx, "SQS.SendMessage");
    assert_kind(&span, SpanKind::Producer);
    assert_eq!(span.parent_span_id, cx_span_id(&cx));
    assert!(has(&span, "rpc.method", "SendMessage"));
    assert!(has(&span, "rpc.system", "aws-api"));
    assert!(has(&span, "aws.region", "us-east-1"));
    assert!(has(&span, "messaging.system", "aws_sqs"));
    assert!(has(&span, "messaging.destination.name", "orders"));
    assert!(has(&span, "aws.sqs.queue.url", url.clone()));
    assert!(has(&span, "messaging.message.id", sent.message_id.clone().unwrap()));
    assert!(has(&span, "http.response.status_code", 200_i64));
    assert!(has(&span, "aws.request.attempts", 1_i64));
    assert!(attr(&span, "aws.request_id").is_some());
    assert_eq!(span.status, Status::Unset);

    let event = receive_as_event(&client, &url, 1).await;
    let record = &event["Records"][0];
    assert_eq!(record["messageAttributes"]["user"]["stringValue"], "u1", "the user's attribute is kept");
    assert_eq!(record["body"], "hello");
    let traceparent = record["messageAttributes"]["traceparent"]["stringValue"].as_str().unwrap();
    assert!(traceparent.contains(&span.span_context.span_id().to_string()));
    let xray = record["attributes"]["AWSTraceHeader"].as_str().unwrap();
    assert!(xray.contains(&format!("Parent={}", span.span_context.span_id())), "{xray}");
    assert_parent_is(&event, &span);

    // The X-Ray header alone also leads back to the producer.
    let mut xray_only = event.clone();
    xray_only["Records"][0]["messageAttributes"] = json!({});
    assert_parent_is(&xray_only, &span);
}

fn cx_span_id(cx: &opentelemetry::Context) -> opentelemetry::trace::SpanId {
    use opentelemetry::trace::TraceContextExt;
    cx.span().span_context().span_id()
}

#[tokio::test(flavor = "multi_thread")]
async fn send_message_batch_injects_per_entry_and_respects_the_ten_attribute_rule() {
    let moto = Moto::start();
    let client = flowtrace_aws::sqs_client(&moto.sdk_config());
    let url = queue(&client, "batch").await;
    let cx = root("producer");
    let mut full = SendMessageBatchRequestEntry::builder().id("full").message_body("ten attributes");
    for i in 0..10 {
        full = full.message_attributes(
            format!("a{i}"),
            MessageAttributeValue::builder().data_type("String").string_value(i.to_string()).build().unwrap(),
        );
    }
    let full = full.build().unwrap();
    let user_attributes = full.message_attributes.clone();
    let out = client
        .send_message_batch()
        .queue_url(&url)
        .entries(SendMessageBatchRequestEntry::builder().id("plain").message_body("one").build().unwrap())
        .entries(full)
        .send()
        .with_context(cx.clone())
        .await
        .unwrap();
    assert_eq!(out.successful.len(), 2);

    let span = span(&cx, "SQS.SendMessageBatch");
    assert_kind(&span, SpanKind::Producer);
    assert!(has(&span, "messaging.batch.message_count", 2_i64));
    assert_eq!(skip_reasons(&span), vec!["too_many_attributes".to_owned()]);
    let ids = attr(&span, "aws.messaging.message_ids").unwrap().as_str().into_owned();
    for entry in &out.successful {
        assert!(ids.contains(&entry.message_id));
    }

    let event = receive_as_event(&client, &url, 2).await;
    let records = event["Records"].as_array().unwrap();
    let plain = records.iter().find(|r| r["body"] == "one").unwrap();
    let full = records.iter().find(|r| r["body"] == "ten attributes").unwrap();
    assert!(plain["messageAttributes"]["traceparent"].is_object());
    // The full message's attributes are exactly the user's ten.
    let stored: Vec<&String> = full["messageAttributes"].as_object().unwrap().keys().collect();
    assert_eq!(stored.len(), 10, "{stored:?}");
    assert_eq!(user_attributes.unwrap().len(), 10);
    assert_parent_is(&json!({ "Records": [plain] }), &span);
    // moto drops `MessageSystemAttributes` of batch entries, so the full message's
    // AWSTraceHeader is checked with a single SendMessage below.
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_attributes_keep_the_users_attributes_and_aws_trace_header_still_carries_context() {
    let moto = Moto::start();
    let client = flowtrace_aws::sqs_client(&moto.sdk_config());
    let url = queue(&client, "full").await;
    let cx = root("producer");
    let mut send = client.send_message().queue_url(&url).message_body("full");
    for i in 0..10 {
        send = send.message_attributes(
            format!("a{i}"),
            MessageAttributeValue::builder().data_type("String").string_value(i.to_string()).build().unwrap(),
        );
    }
    send.send().with_context(cx.clone()).await.unwrap();
    let span = span(&cx, "SQS.SendMessage");
    assert_eq!(skip_reasons(&span), vec!["too_many_attributes".to_owned()]);
    let event = receive_as_event(&client, &url, 1).await;
    let stored = event["Records"][0]["messageAttributes"].as_object().unwrap();
    let mut names: Vec<&String> = stored.keys().collect();
    names.sort();
    assert_eq!(names, (0..10).map(|i| format!("a{i}")).collect::<Vec<_>>().iter().collect::<Vec<_>>());
    // AWSTraceHeader counts against no quota: the consumer still finds the producer.
    assert_parent_is(&event, &span);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_call_gives_an_error_span_and_the_users_error() {
    let moto = Moto::start();
    let client = flowtrace_aws::sqs_client(&moto.sdk_config());
    let cx = root("producer");
    let error = client
        .send_message()
        .queue_url(format!("{}/123456789012/missing", moto.endpoint))
        .message_body("x")
        .send()
        .with_context(cx.clone())
        .await
        .unwrap_err();
    let code = aws_sdk_sqs::error::ProvideErrorMetadata::code(&error).map(str::to_owned);
    assert!(matches!(error.as_service_error(), Some(e) if e.is_queue_does_not_exist()), "{error:?}");
    let span = span(&cx, "SQS.SendMessage");
    assert!(matches!(span.status, Status::Error { .. }), "{:?}", span.status);
    let recorded = attr_str(&span, "aws.error.code").unwrap();
    assert_eq!(Some(recorded.clone()), code, "the span has the code the user sees");
    assert!(has(&span, "error.type", recorded));
}

#[tokio::test(flavor = "multi_thread")]
async fn any_sdk_client_gets_spans_from_the_generic_interceptor() {
    let moto = Moto::start();
    let config = moto.sdk_config();
    // A service flowtrace-aws has no feature for: spans only.
    let streams = aws_sdk_dynamodbstreams::Client::from_conf(
        aws_sdk_dynamodbstreams::config::Builder::from(&config)
            .interceptor(flowtrace_aws::FlowtraceInterceptor::new())
            .build(),
    );
    let cx = root("producer");
    streams.list_streams().send().with_context(cx.clone()).await.unwrap();
    let exported = exporter().get_finished_spans().unwrap();
    let span = exported
        .iter()
        .find(|s| s.span_context.trace_id() == cx_trace_id(&cx) && s.name.ends_with(".ListStreams"))
        .expect("a ListStreams span");
    assert_kind(span, SpanKind::Client);
    assert!(has(span, "rpc.method", "ListStreams"));
    assert!(has(span, "http.response.status_code", 200_i64));
    assert!(skip_reasons(span).is_empty());
}

fn cx_trace_id(cx: &opentelemetry::Context) -> opentelemetry::trace::TraceId {
    use opentelemetry::trace::TraceContextExt;
    cx.span().span_context().trace_id()
}

#[tokio::test(flavor = "multi_thread")]
async fn batch_entries_carry_aws_trace_header_on_the_wire() {
    // moto drops the system attributes of batch entries, so this looks at the request itself.
    let http = canned::Canned::new(200, &[("x-amzn-requestid", "r")], r#"{"Successful":[],"Failed":[]}"#);
    let sdk = aws_types::SdkConfig::builder()
        .region(aws_types::region::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(
            aws_credential_types::Credentials::new("test", "test", None, None, "test"),
        ))
        .behavior_version(aws_smithy_runtime_api::client::behavior_version::BehaviorVersion::latest())
        .build();
    let client = aws_sdk_sqs::Client::from_conf(
        flowtrace_aws::instrument(aws_sdk_sqs::config::Builder::from(&sdk).http_client(http.clone())).build(),
    );
    let cx = root("producer");
    client
        .send_message_batch()
        .queue_url("https://sqs.us-east-1.amazonaws.com/123456789012/q")
        .entries(SendMessageBatchRequestEntry::builder().id("1").message_body("a").build().unwrap())
        .entries(SendMessageBatchRequestEntry::builder().id("2").message_body("b").build().unwrap())
        .send()
        .with_context(cx.clone())
        .await
        .unwrap();
    let span = span(&cx, "SQS.SendMessageBatch");
    let body: Value = serde_json::from_slice(&http.seen()[0].body).unwrap();
    for entry in body["Entries"].as_array().unwrap() {
        let header = entry["MessageSystemAttributes"]["AWSTraceHeader"]["StringValue"].as_str().unwrap();
        assert!(header.ends_with(&format!("Parent={};Sampled=1", span.span_context.span_id())), "{header}");
        assert!(entry["MessageAttributes"]["traceparent"]["StringValue"].is_string());
    }
}
