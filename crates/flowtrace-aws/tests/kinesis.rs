//! Kinesis against moto: spans, the reserved key in JSON data, binary data and the 1 MiB
//! limit left alone, and the consumer continuing the trace.
#![cfg(feature = "kinesis")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ShardIteratorType};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::*;
use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::SpanKind;
use serde_json::{Value, json};

async fn stream(client: &aws_sdk_kinesis::Client, name: &str) {
    client.create_stream().stream_name(name).shard_count(1).send().await.unwrap();
}

/// Every record in the stream, as a Lambda Kinesis event, plus the raw data.
async fn records(client: &aws_sdk_kinesis::Client, name: &str) -> (Value, Vec<Vec<u8>>) {
    let shards = client.list_shards().stream_name(name).send().await.unwrap().shards.unwrap();
    let shard = shards[0].shard_id.clone();
    let iterator = client
        .get_shard_iterator()
        .stream_name(name)
        .shard_id(&shard)
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap()
        .shard_iterator
        .unwrap();
    let out = client.get_records().shard_iterator(iterator).send().await.unwrap();
    let mut events = Vec::new();
    let mut data = Vec::new();
    for record in out.records {
        data.push(record.data.as_ref().to_vec());
        events.push(json!({
            "kinesis": {
                "kinesisSchemaVersion": "1.0",
                "partitionKey": record.partition_key,
                "sequenceNumber": record.sequence_number,
                "data": STANDARD.encode(record.data.as_ref()),
                "approximateArrivalTimestamp": 1_700_000_000.0,
            },
            "eventSource": "aws:kinesis",
            "eventVersion": "1.0",
            "eventID": format!("{shard}:{}", record.sequence_number),
            "eventName": "aws:kinesis:record",
            "awsRegion": "us-east-1",
            "eventSourceARN": format!("arn:aws:kinesis:us-east-1:123456789012:stream/{name}"),
        }));
    }
    (json!({ "Records": events }), data)
}

#[tokio::test(flavor = "multi_thread")]
async fn put_record_json_carries_context_and_keeps_the_users_bytes() {
    let moto = Moto::start();
    let client = flowtrace_aws::kinesis_client(&moto.sdk_config());
    stream(&client, "posts").await;
    let cx = root("producer");
    let data = br#"{"post": 7, "score": 1.50, "tags": ["a"]}"#;
    let out = client
        .put_record()
        .stream_name("posts")
        .partition_key("p7")
        .data(Blob::new(&data[..]))
        .send()
        .with_context(cx.clone())
        .await
        .unwrap();
    let span = span(&cx, "Kinesis.PutRecord");
    assert_kind(&span, SpanKind::Producer);
    assert!(has(&span, "aws.kinesis.stream_name", "posts"));
    assert!(has(&span, "aws.kinesis.partition_key", "p7"));
    assert!(has(&span, "aws.kinesis.sequence_number", out.sequence_number.clone()));
    assert!(has(&span, "aws.kinesis.shard_id", out.shard_id.clone()));
    assert!(has(&span, "messaging.message.id", out.sequence_number.clone()));

    let (event, stored) = records(&client, "posts").await;
    let text = String::from_utf8(stored[0].clone()).unwrap();
    let prefix = format!(
        r#"{{"_flowtrace":{{"traceparent":"00-{}-{}-01"}},"#,
        span.span_context.trace_id(),
        span.span_context.span_id()
    );
    assert!(text.starts_with(&prefix), "{text}");
    assert_eq!(
        &text[prefix.len()..],
        r#""post": 7, "score": 1.50, "tags": ["a"]}"#,
        "the user's bytes follow unchanged"
    );
    assert_parent_is(&event, &span);
    let trigger = consumer_trigger(&event);
    assert_eq!(
        trigger.records[0].message_id.as_deref(),
        Some(out.sequence_number.as_str()),
        "joined on the sequence number too"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn put_records_injects_json_and_leaves_binary_text_and_oversize_data_alone() {
    let moto = Moto::start();
    let client = flowtrace_aws::kinesis_client(&moto.sdk_config());
    stream(&client, "mixed").await;
    let cx = root("producer");
    let binary = vec![0_u8, 159, 146, 150, 255];
    // A JSON object whose record (data + partition key) is just under 1 MiB: room for it, but
    // not for the reserved key.
    let mut big = br#"{"blob":""#.to_vec();
    big.resize(1024 * 1024 - 20, b'x');
    big.extend_from_slice(br#""}"#);
    let entries = vec![
        PutRecordsRequestEntry::builder().partition_key("a").data(Blob::new(&br#"{"n":1}"#[..])).build().unwrap(),
        PutRecordsRequestEntry::builder().partition_key("b").data(Blob::new(binary.clone())).build().unwrap(),
        PutRecordsRequestEntry::builder().partition_key("c").data(Blob::new(&b"plain text"[..])).build().unwrap(),
        PutRecordsRequestEntry::builder().partition_key("d").data(Blob::new(big.clone())).build().unwrap(),
    ];
    let out = client
        .put_records()
        .stream_name("mixed")
        .set_records(Some(entries))
        .send()
        .with_context(cx.clone())
        .await
        .unwrap();
    assert_eq!(out.failed_record_count, Some(0));
    let span = span(&cx, "Kinesis.PutRecords");
    assert!(has(&span, "messaging.batch.message_count", 4_i64));
    let mut reasons = skip_reasons(&span);
    reasons.sort();
    assert_eq!(reasons, vec!["not_json_object", "not_json_object", "too_large"]);
    let sequence_numbers = attr_str(&span, "aws.kinesis.sequence_numbers").unwrap();
    assert!(sequence_numbers.contains(out.records[0].sequence_number.as_deref().unwrap()));

    let (event, stored) = records(&client, "mixed").await;
    assert_eq!(stored.len(), 4);
    assert!(stored[0].starts_with(b"{\"_flowtrace\":"));
    assert_eq!(stored[1], binary, "binary data untouched");
    assert_eq!(stored[2], b"plain text", "text untouched");
    assert_eq!(stored[3], big, "the 1 MiB record untouched");
    let first = json!({ "Records": [event["Records"][0].clone()] });
    assert_parent_is(&first, &span);
    // The batch as a whole: one record carries the producer, three carry nothing.
    let trigger = consumer_trigger(&event);
    let (parent, links) = trigger.parent_and_links();
    assert!(parent.is_none());
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].parent.as_ref().unwrap().span_id(), span.span_context.span_id());
}
