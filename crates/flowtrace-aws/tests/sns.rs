//! SNS against moto: spans, injection, SNS→SQS raw and enveloped, limits.
#![cfg(all(feature = "sns", feature = "sqs"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use common::*;
use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::SpanKind;
use serde_json::{Map, Value, json};

struct Fanout {
    sns: aws_sdk_sns::Client,
    sqs: aws_sdk_sqs::Client,
    topic: String,
    raw_url: String,
    enveloped_url: String,
}

async fn fanout(moto: &Moto, name: &str) -> Fanout {
    let config = moto.sdk_config();
    let sns = flowtrace_aws::sns_client(&config);
    let sqs = flowtrace_aws::sqs_client(&config);
    let topic = sns.create_topic().name(name).send().await.unwrap().topic_arn.unwrap();
    let mut urls = Vec::new();
    for (suffix, raw) in [("raw", true), ("enveloped", false)] {
        let url = sqs.create_queue().queue_name(format!("{name}-{suffix}")).send().await.unwrap().queue_url.unwrap();
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
        let mut subscribe = sns.subscribe().topic_arn(&topic).protocol("sqs").endpoint(arn);
        if raw {
            subscribe = subscribe.attributes("RawMessageDelivery", "true");
        }
        subscribe.send().await.unwrap();
        urls.push(url);
    }
    let enveloped_url = urls.pop().unwrap();
    let raw_url = urls.pop().unwrap();
    Fanout { sns, sqs, topic, raw_url, enveloped_url }
}

async fn receive(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<Value> {
    let mut records = Vec::new();
    for _ in 0..20 {
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .unwrap();
        for message in out.messages.unwrap_or_default() {
            let mut message_attributes = Map::new();
            for (name, value) in message.message_attributes.unwrap_or_default() {
                message_attributes
                    .insert(name, json!({"stringValue": value.string_value, "dataType": value.data_type}));
            }
            let mut attributes = Map::new();
            for (name, value) in message.attributes.unwrap_or_default() {
                attributes.insert(name.as_str().to_owned(), json!(value));
            }
            records.push(json!({
                "messageId": message.message_id,
                "body": message.body,
                "attributes": attributes,
                "messageAttributes": message_attributes,
                "eventSource": "aws:sqs",
                "eventSourceARN": format!("arn:aws:sqs:us-east-1:123456789012:{}", url.rsplit('/').next().unwrap()),
            }));
        }
        if !records.is_empty() {
            break;
        }
    }
    records
}

/// The SNS Lambda event for a notification, rebuilt from the envelope SNS delivered to SQS.
fn sns_event(envelope: &Value) -> Value {
    json!({"Records": [{
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "EventSubscriptionArn": format!("{}:sub", envelope["TopicArn"].as_str().unwrap()),
        "Sns": {
            "Type": "Notification",
            "MessageId": envelope["MessageId"],
            "TopicArn": envelope["TopicArn"],
            "Message": envelope["Message"],
            "Timestamp": envelope["Timestamp"],
            "MessageAttributes": envelope.get("MessageAttributes").cloned().unwrap_or(json!({})),
        }
    }]})
}

#[tokio::test(flavor = "multi_thread")]
async fn publish_reaches_sns_and_sqs_consumers_raw_and_enveloped() {
    let moto = Moto::start();
    let f = fanout(&moto, "posts").await;
    let cx = root("producer");
    let out = f
        .sns
        .publish()
        .topic_arn(&f.topic)
        .message("new post")
        .message_attributes(
            "kind",
            MessageAttributeValue::builder().data_type("String").string_value("post").build().unwrap(),
        )
        .send()
        .with_context(cx.clone())
        .await
        .unwrap();
    let span = span(&cx, "SNS.Publish");
    assert_kind(&span, SpanKind::Producer);
    assert!(has(&span, "messaging.system", "aws.sns"));
    assert!(has(&span, "aws.sns.topic.arn", f.topic.clone()));
    assert!(has(&span, "messaging.destination.name", "posts"));
    assert!(has(&span, "messaging.message.id", out.message_id.clone().unwrap()));
    assert!(skip_reasons(&span).is_empty());

    // Raw delivery: SNS attributes become SQS message attributes.
    let raw = receive(&f.sqs, &f.raw_url).await;
    assert_eq!(raw.len(), 1);
    assert_eq!(raw[0]["body"], "new post");
    assert_eq!(raw[0]["messageAttributes"]["kind"]["stringValue"], "post");
    assert_parent_is(&json!({ "Records": raw }), &span);

    // Enveloped: the attributes ride inside the JSON body.
    let enveloped = receive(&f.sqs, &f.enveloped_url).await;
    assert_eq!(enveloped.len(), 1);
    let envelope: Value = serde_json::from_str(enveloped[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(envelope["Type"], "Notification");
    assert_eq!(envelope["MessageAttributes"]["kind"]["Value"], "post");
    assert!(
        envelope["MessageAttributes"]["traceparent"]["Value"]
            .as_str()
            .unwrap()
            .contains(&span.span_context.span_id().to_string())
    );
    let sqs_event = json!({ "Records": enveloped });
    assert_parent_is(&sqs_event, &span);
    let trigger = consumer_trigger(&sqs_event);
    let sns_id = trigger.records[0].attributes.iter().find(|kv| kv.key.as_str() == "aws.sns.message_id").unwrap();
    assert_eq!(sns_id.value.as_str(), out.message_id.unwrap().as_str(), "the hop joins on the SNS message id too");

    // Lambda subscribed to the topic: the SNS event shape.
    assert_parent_is(&sns_event(&envelope), &span);
}

#[tokio::test(flavor = "multi_thread")]
async fn publish_batch_injects_per_entry_and_skips_json_structure_and_full_attributes() {
    let moto = Moto::start();
    let f = fanout(&moto, "batch").await;
    let cx = root("producer");
    let mut full = PublishBatchRequestEntry::builder().id("full").message("full");
    for i in 0..10 {
        full = full.message_attributes(
            format!("a{i}"),
            MessageAttributeValue::builder().data_type("String").string_value(i.to_string()).build().unwrap(),
        );
    }
    let json_structure = PublishBatchRequestEntry::builder()
        .id("structured")
        .message(r#"{"default": "structured"}"#)
        .message_structure("json")
        .build()
        .unwrap();
    f.sns
        .publish_batch()
        .topic_arn(&f.topic)
        .publish_batch_request_entries(
            PublishBatchRequestEntry::builder().id("plain").message("plain").build().unwrap(),
        )
        .publish_batch_request_entries(full.build().unwrap())
        .publish_batch_request_entries(json_structure)
        .send()
        .with_context(cx.clone())
        .await
        .unwrap();
    let span = span(&cx, "SNS.PublishBatch");
    assert!(has(&span, "messaging.batch.message_count", 3_i64));
    let mut reasons = skip_reasons(&span);
    reasons.sort();
    assert_eq!(reasons, vec!["message_structure_json".to_owned(), "too_many_attributes".to_owned()]);
    let ids = attr_str(&span, "aws.messaging.message_ids").unwrap();
    assert_eq!(ids.matches(',').count(), 2, "three message ids: {ids}");

    let mut records = Vec::new();
    for _ in 0..5 {
        records.extend(receive(&f.sqs, &f.raw_url).await);
        if records.len() == 3 {
            break;
        }
    }
    assert_eq!(records.len(), 3);
    let by_body = |body: &str| records.iter().find(|r| r["body"] == body).unwrap().clone();
    assert_parent_is(&json!({ "Records": [by_body("plain")] }), &span);
    let full = by_body("full");
    let names: Vec<&String> = full["messageAttributes"].as_object().unwrap().keys().collect();
    assert_eq!(names.len(), 10, "exactly the user's attributes: {names:?}");
    assert!(!names.iter().any(|n| n.as_str() == "traceparent"));
    let structured = by_body("structured");
    assert!(structured["messageAttributes"].as_object().is_none_or(|a| a.is_empty()));
}
