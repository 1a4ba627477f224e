//! EventBridge against moto: the reserved key in Detail reaches a rule's SQS target, and the
//! delivered event continues the trace.
#![cfg(all(feature = "eventbridge", feature = "sqs"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aws_sdk_eventbridge::types::{PutEventsRequestEntry, Target};
use aws_sdk_sqs::types::QueueAttributeName;
use common::*;
use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::SpanKind;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn put_events_detail_carries_context_to_the_target() {
    let moto = Moto::start();
    let config = moto.sdk_config();
    let events = flowtrace_aws::eventbridge_client(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let url = sqs.create_queue().queue_name("targets").send().await.unwrap().queue_url.unwrap();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&QueueAttributeName::QueueArn]
        .clone();
    events.put_rule().name("blog").event_pattern(r#"{"source": ["blog"]}"#).send().await.unwrap();
    events
        .put_targets()
        .rule("blog")
        .targets(Target::builder().id("q").arn(arn).build().unwrap())
        .send()
        .await
        .unwrap();

    let cx = root("producer");
    let out = events
        .put_events()
        .entries(
            PutEventsRequestEntry::builder()
                .source("blog")
                .detail_type("PostCreated")
                .detail(r#"{"post": 7, "title": "hi"}"#)
                .build(),
        )
        .entries(PutEventsRequestEntry::builder().source("blog").detail_type("Binaryish").detail("[1, 2]").build())
        .send()
        .with_context(cx.clone())
        .await
        .unwrap();
    assert_eq!(out.failed_entry_count, 0);
    let span = span(&cx, "EventBridge.PutEvents");
    assert_kind(&span, SpanKind::Producer);
    assert!(has(&span, "aws.eventbridge.event_bus", "default"));
    assert!(has(&span, "messaging.batch.message_count", 2_i64));
    assert_eq!(skip_reasons(&span), vec!["not_json_object".to_owned()]);
    let ids = attr_str(&span, "aws.messaging.message_ids").unwrap();
    assert!(ids.contains(out.entries.as_ref().unwrap()[0].event_id.as_deref().unwrap()));

    let mut delivered: Vec<Value> = Vec::new();
    for _ in 0..20 {
        let received = sqs.receive_message().queue_url(&url).max_number_of_messages(10).send().await.unwrap();
        delivered.extend(
            received.messages.unwrap_or_default().into_iter().map(|m| serde_json::from_str(&m.body.unwrap()).unwrap()),
        );
        if !delivered.is_empty() {
            break;
        }
    }
    let event = delivered.iter().find(|e| e["detail-type"] == "PostCreated").expect("the event reached the target");
    assert_eq!(event["detail"]["post"], 7, "the user's detail is intact");
    assert_eq!(event["detail"]["title"], "hi");
    assert_parent_is(event, &span);
}
