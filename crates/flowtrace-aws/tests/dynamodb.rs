//! DynamoDB against moto: spans, the reserved attribute in items (Put, Update, BatchWrite,
//! TransactWrite), DynamoDB Streams NEW_AND_OLD_IMAGES and KEYS_ONLY (the key hash join),
//! the 400 KB limit, table opt-out, and errors.
#![cfg(feature = "dynamodb")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, KeySchemaElement, KeyType, Put, PutRequest, ScalarAttributeType,
    StreamSpecification, StreamViewType, TransactWriteItem, Update, WriteRequest,
};
use aws_sdk_dynamodbstreams::types::AttributeValue as StreamValue;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::*;
use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::{SpanKind, Status};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

struct Db {
    client: aws_sdk_dynamodb::Client,
    streams: aws_sdk_dynamodbstreams::Client,
}

fn db(moto: &Moto) -> Db {
    let config = moto.sdk_config();
    Db { client: flowtrace_aws::dynamodb_client(&config), streams: aws_sdk_dynamodbstreams::Client::new(&config) }
}

/// A table with `pk` (S) + `sk` (N) and a stream of `view`.
async fn table(db: &Db, name: &str, view: StreamViewType) -> String {
    let out = db
        .client
        .create_table()
        .table_name(name)
        .attribute_definitions(
            AttributeDefinition::builder().attribute_name("pk").attribute_type(ScalarAttributeType::S).build().unwrap(),
        )
        .attribute_definitions(
            AttributeDefinition::builder().attribute_name("sk").attribute_type(ScalarAttributeType::N).build().unwrap(),
        )
        .key_schema(KeySchemaElement::builder().attribute_name("pk").key_type(KeyType::Hash).build().unwrap())
        .key_schema(KeySchemaElement::builder().attribute_name("sk").key_type(KeyType::Range).build().unwrap())
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .stream_specification(
            StreamSpecification::builder().stream_enabled(true).stream_view_type(view).build().unwrap(),
        )
        .send()
        .await
        .unwrap();
    out.table_description.unwrap().latest_stream_arn.unwrap()
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn n(v: &str) -> AttributeValue {
    AttributeValue::N(v.to_owned())
}

fn stream_json(value: &StreamValue) -> Value {
    match value {
        StreamValue::S(v) => json!({ "S": v }),
        StreamValue::N(v) => json!({ "N": v }),
        StreamValue::B(v) => json!({ "B": STANDARD.encode(v.as_ref()) }),
        StreamValue::Bool(v) => json!({ "BOOL": v }),
        StreamValue::Null(v) => json!({ "NULL": v }),
        StreamValue::Ss(v) => json!({ "SS": v }),
        StreamValue::Ns(v) => json!({ "NS": v }),
        StreamValue::M(m) => json!({ "M": image(m) }),
        StreamValue::L(l) => json!({ "L": l.iter().map(stream_json).collect::<Vec<_>>() }),
        other => panic!("unexpected {other:?}"),
    }
}

fn image(map: &HashMap<String, StreamValue>) -> Map<String, Value> {
    map.iter().map(|(k, v)| (k.clone(), stream_json(v))).collect()
}

/// Every record of the table's stream, as a Lambda DynamoDB Streams event.
async fn stream_event(db: &Db, stream_arn: &str) -> Value {
    let description = db.streams.describe_stream().stream_arn(stream_arn).send().await.unwrap();
    let mut records = Vec::new();
    for shard in description.stream_description.unwrap().shards.unwrap_or_default() {
        let iterator = db
            .streams
            .get_shard_iterator()
            .stream_arn(stream_arn)
            .shard_id(shard.shard_id.unwrap())
            .shard_iterator_type(aws_sdk_dynamodbstreams::types::ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap()
            .shard_iterator
            .unwrap();
        let out = db.streams.get_records().shard_iterator(iterator).send().await.unwrap();
        for record in out.records.unwrap_or_default() {
            let change = record.dynamodb.unwrap();
            let mut dynamodb = Map::new();
            dynamodb.insert("Keys".into(), Value::Object(image(change.keys.as_ref().unwrap())));
            if let Some(new_image) = &change.new_image {
                dynamodb.insert("NewImage".into(), Value::Object(image(new_image)));
            }
            if let Some(old_image) = &change.old_image {
                dynamodb.insert("OldImage".into(), Value::Object(image(old_image)));
            }
            dynamodb.insert("SequenceNumber".into(), json!(change.sequence_number));
            dynamodb.insert("StreamViewType".into(), json!(change.stream_view_type.map(|v| v.as_str().to_owned())));
            records.push(json!({
                "eventID": record.event_id,
                "eventName": record.event_name.map(|e| e.as_str().to_owned()),
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": "us-east-1",
                "dynamodb": dynamodb,
                "eventSourceARN": stream_arn,
            }));
        }
    }
    json!({ "Records": records })
}

/// The consumer's key hash for a stream record's `Keys` (what the wrapper should compute).
/// The item-key hash as the consumer (the flowtrace wrapper's DynamoDB stream parsing)
/// computes it from a stream record's `Keys`.
fn keys_hash(table: &str, keys: &Value) -> String {
    let event = json!({"Records": [{
        "eventSource": "aws:dynamodb",
        "eventName": "INSERT",
        "eventSourceARN": format!("arn:aws:dynamodb:us-east-1:123456789012:table/{table}/stream/2026-11-24T00:00:00.000"),
        "dynamodb": {"Keys": keys, "SequenceNumber": "1", "StreamViewType": "KEYS_ONLY"},
    }]});
    let trigger = consumer_trigger(&event);
    let hash = trigger.records[0]
        .attributes
        .iter()
        .find(|kv| kv.key.as_str() == flowtrace_contract::attr::DYNAMODB_ITEM_KEY_HASH);
    hash.unwrap_or_else(|| panic!("the wrapper recorded no key hash for {event:#}")).value.to_string()
}

fn only(event: &Value, index: usize) -> Value {
    json!({ "Records": [event["Records"][index].clone()] })
}

#[tokio::test(flavor = "multi_thread")]
async fn put_item_carries_context_through_new_and_old_images() {
    let moto = Moto::start();
    let db = db(&moto);
    let stream = table(&db, "Posts", StreamViewType::NewAndOldImages).await;
    let cx = root("producer");
    db.client
        .put_item()
        .table_name("Posts")
        .item("pk", s("post#1"))
        .item("sk", n("1"))
        .item("title", s("hello"))
        .send()
        .with_context(cx.clone())
        .await
        .unwrap();
    let span = span(&cx, "DynamoDB.PutItem");
    assert_kind(&span, SpanKind::Client);
    assert!(has(&span, "db.system.name", "aws.dynamodb"));
    assert!(has(&span, "db.collection.name", "Posts"));
    assert!(attr_str(&span, "aws.dynamodb.table_names").unwrap().contains("Posts"));
    let hash = attr_str(&span, "aws.dynamodb.item_key_hash").expect("key hash (schema learned from CreateTable)");

    let item = db
        .client
        .get_item()
        .table_name("Posts")
        .key("pk", s("post#1"))
        .key("sk", n("1"))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert_eq!(item["title"], s("hello"));
    let AttributeValue::M(reserved) = &item["_flowtrace"] else { panic!("{item:?}") };
    assert!(reserved["traceparent"].as_s().unwrap().contains(&span.span_context.span_id().to_string()));

    let event = stream_event(&db, &stream).await;
    assert_eq!(event["Records"].as_array().unwrap().len(), 1);
    assert_parent_is(&event, &span);
    assert_eq!(
        keys_hash("Posts", &event["Records"][0]["dynamodb"]["Keys"]),
        hash,
        "the consumer computes the same hash"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn update_item_merges_into_the_users_expression() {
    let moto = Moto::start();
    let db = db(&moto);
    let stream = table(&db, "Counters", StreamViewType::NewAndOldImages).await;
    db.client
        .put_item()
        .table_name("Counters")
        .item("pk", s("c"))
        .item("sk", n("1"))
        .item("old", s("x"))
        .item("count", n("1"))
        .send()
        .await
        .unwrap();
    let cx = root("producer");
    let out = db
        .client
        .update_item()
        .table_name("Counters")
        .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
        .key("pk", s("c"))
        .key("sk", n("1"))
        .update_expression("SET #flowtrace = :flowtrace REMOVE #old ADD #count :one")
        .expression_attribute_names("#flowtrace", "label")
        .expression_attribute_names("#old", "old")
        .expression_attribute_names("#count", "count")
        .expression_attribute_values(":flowtrace", s("mine"))
        .expression_attribute_values(":one", n("2"))
        .send()
        .with_context(cx.clone())
        .await
        .unwrap();
    let span = span(&cx, "DynamoDB.UpdateItem");
    assert!(skip_reasons(&span).is_empty(), "{:?}", span.events);
    let returned = out.attributes.unwrap();
    assert_eq!(returned.get("label"), Some(&s("mine")), "{returned:?}");
    assert_eq!(returned.get("count"), Some(&n("3")));
    assert!(!returned.contains_key("_flowtrace"), "UPDATED_NEW returns only the user's changes: {returned:?}");
    let item = db
        .client
        .get_item()
        .table_name("Counters")
        .key("pk", s("c"))
        .key("sk", n("1"))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert_eq!(item.get("label"), Some(&s("mine")), "the user's #flowtrace placeholder kept its meaning");
    assert_eq!(item.get("count"), Some(&n("3")));
    assert!(!item.contains_key("old"));
    assert!(item.contains_key("_flowtrace"));

    let event = stream_event(&db, &stream).await;
    let records = event["Records"].as_array().unwrap();
    assert_eq!(records.len(), 2, "insert, then modify");
    assert_parent_is(&only(&event, 1), &span);
    assert_eq!(
        keys_hash("Counters", &records[1]["dynamodb"]["Keys"]),
        attr_str(&span, "aws.dynamodb.item_key_hash").unwrap()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn batch_write_and_transact_write_carry_context_per_item_and_keys_only_joins_on_the_hash() {
    let moto = Moto::start();
    let db = db(&moto);
    let images = table(&db, "Images", StreamViewType::NewAndOldImages).await;
    let keys_only = table(&db, "KeysOnly", StreamViewType::KeysOnly).await;

    let cx = root("producer");
    let put = |pk: &str| {
        WriteRequest::builder()
            .put_request(PutRequest::builder().item("pk", s(pk)).item("sk", n("1")).build().unwrap())
            .build()
    };
    db.client
        .batch_write_item()
        .request_items("Images", vec![put("a"), put("b")])
        .request_items("KeysOnly", vec![put("k")])
        .send()
        .with_context(cx.clone())
        .await
        .unwrap();
    let batch = span(&cx, "DynamoDB.BatchWriteItem");
    let batch_hashes = attr_str(&batch, "aws.dynamodb.item_key_hashes").unwrap();

    let cx2 = root("producer2");
    db.client
        .transact_write_items()
        .transact_items(
            TransactWriteItem::builder()
                .put(Put::builder().table_name("Images").item("pk", s("t")).item("sk", n("2")).build().unwrap())
                .build(),
        )
        .transact_items(
            TransactWriteItem::builder()
                .update(
                    Update::builder()
                        .table_name("Images")
                        .key("pk", s("a"))
                        .key("sk", n("1"))
                        .update_expression("SET v = :v")
                        .expression_attribute_values(":v", n("5"))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .with_context(cx2.clone())
        .await
        .unwrap();
    let transact = span(&cx2, "DynamoDB.TransactWriteItems");
    assert!(skip_reasons(&transact).is_empty(), "{:?}", transact.events);

    let event = stream_event(&db, &images).await;
    let records = event["Records"].as_array().unwrap();
    assert_eq!(records.len(), 4, "a, b (batch), t (put), a (update)");
    for (index, record) in records.iter().enumerate() {
        let producer = if index < 2 { &batch } else { &transact };
        assert_parent_is(&only(&event, index), producer);
        let hash = keys_hash("Images", &record["dynamodb"]["Keys"]);
        let recorded =
            if index < 2 { batch_hashes.clone() } else { attr_str(&transact, "aws.dynamodb.item_key_hashes").unwrap() };
        assert!(recorded.contains(&hash), "record {index}: {hash} in {recorded}");
    }

    // KEYS_ONLY: no image, no context; the key hash joins the hop.
    let event = stream_event(&db, &keys_only).await;
    let record = &event["Records"][0];
    assert!(record["dynamodb"].get("NewImage").is_none());
    assert!(consumer_parent(&event).is_none());
    assert!(batch_hashes.contains(&keys_hash("KeysOnly", &record["dynamodb"]["Keys"])));
}

#[tokio::test(flavor = "multi_thread")]
async fn limits_and_opt_out_leave_the_item_as_the_user_built_it() {
    let moto = Moto::start();
    let config = moto.sdk_config();
    let plain = db(&moto);
    table(&plain, "Big", StreamViewType::NewImage).await;
    table(&plain, "Private", StreamViewType::NewImage).await;
    let denied = flowtrace_aws::Config::builder().dynamodb_tables_deny(["Private"]).build().unwrap();
    let client = aws_sdk_dynamodb::Client::from_conf(
        flowtrace_aws::instrument_with(aws_sdk_dynamodb::config::Builder::from(&config), denied).build(),
    );

    let cx = root("producer");
    let body = "x".repeat(400_000 - 60);
    client
        .put_item()
        .table_name("Big")
        .item("pk", s("big"))
        .item("sk", n("1"))
        .item("body", s(&body))
        .send()
        .with_context(cx.clone())
        .await
        .unwrap();
    let big = span(&cx, "DynamoDB.PutItem");
    assert_eq!(skip_reasons(&big), vec!["too_large".to_owned()]);
    let item =
        client.get_item().table_name("Big").key("pk", s("big")).key("sk", n("1")).send().await.unwrap().item.unwrap();
    assert_eq!(item.len(), 3, "exactly the user's attributes");

    let cx = root("producer");
    client
        .put_item()
        .table_name("Private")
        .item("pk", s("p"))
        .item("sk", n("1"))
        .send()
        .with_context(cx.clone())
        .await
        .unwrap();
    let private = span(&cx, "DynamoDB.PutItem");
    assert_eq!(skip_reasons(&private), vec!["table_excluded".to_owned()]);
    let item =
        client.get_item().table_name("Private").key("pk", s("p")).key("sk", n("1")).send().await.unwrap().item.unwrap();
    assert!(!item.contains_key("_flowtrace"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_table_gives_an_error_span_and_the_users_error() {
    let moto = Moto::start();
    let db = db(&moto);
    let cx = root("producer");
    let error = db
        .client
        .put_item()
        .table_name("Missing")
        .item("pk", s("x"))
        .send()
        .with_context(cx.clone())
        .await
        .unwrap_err();
    assert!(matches!(error.as_service_error(), Some(e) if e.is_resource_not_found_exception()), "{error:?}");
    let span = span(&cx, "DynamoDB.PutItem");
    assert!(
        matches!(&span.status, Status::Error { description } if description.contains("ResourceNotFoundException")),
        "{:?}",
        span.status
    );
    assert!(has(&span, "aws.error.code", "ResourceNotFoundException"));
    assert!(has(&span, "error.type", "ResourceNotFoundException"));
    assert!(has(&span, "http.response.status_code", 400_i64));
}
