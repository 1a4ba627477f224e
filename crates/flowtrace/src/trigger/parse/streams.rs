//! Data sources: Kinesis, DynamoDB Streams and S3 notifications.

use super::{
    Ctx, MAX_PAYLOAD_BYTES, base, context_in_reserved, context_in_reserved_str, epoch_seconds_to_iso8601, finish_batch,
    first_non_whitespace, kv, object_at, process_name, push_str, record, reserved_value, str_at,
};
use crate::trigger::carrier::{DynamoDbMapCarrier, extract_context};
use crate::trigger::parse::messaging::OPERATION_PROCESS;
use crate::trigger::{Trigger, TriggerSource};
use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use flowtrace_contract::attr;
use opentelemetry::trace::{SpanContext, SpanKind};
use opentelemetry::{Array, KeyValue, StringValue};
use opentelemetry_semantic_conventions::attribute as semconv;
use serde_json::{Map, Value};

/// `messaging.system` for Kinesis. Semantic conventions name no value for Kinesis, so this
/// follows the pattern of `aws_sqs`.
pub(crate) const SYSTEM_KINESIS: &str = "aws_kinesis";

/// Standard base64, padding optional.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Kinesis: context under the reserved key of JSON data; shard id and sequence number per
/// record.
pub(super) fn kinesis(records: &[Value], cx: Ctx<'_>) -> Trigger {
    let stream = records.first().and_then(|r| str_at(r, "eventSourceARN")).and_then(stream_name);
    let mut trigger = base(TriggerSource::Kinesis, SpanKind::Consumer, process_name(stream), 6);
    trigger.attributes.push(KeyValue::new(semconv::MESSAGING_SYSTEM, SYSTEM_KINESIS));
    trigger.attributes.push(KeyValue::new(semconv::MESSAGING_OPERATION_TYPE, OPERATION_PROCESS));
    push_str(&mut trigger.attributes, semconv::MESSAGING_DESTINATION_NAME, stream);

    trigger.records.reserve_exact(records.len());
    for kinesis_record in records {
        let kinesis = kinesis_record.get("kinesis");
        let parent = kinesis.and_then(|k| str_at(k, "data")).and_then(|data| context_in_data(data, cx));
        let sequence_number = kinesis.and_then(|k| str_at(k, "sequenceNumber"));
        let mut record = record(parent, sequence_number, 2);
        let shard_id = str_at(kinesis_record, "eventID")
            .and_then(|id| id.split_once(':'))
            .map(|(shard, _)| shard)
            .filter(|shard| shard.starts_with("shardId-"));
        push_str(&mut record.attributes, semconv::MESSAGING_DESTINATION_PARTITION_ID, shard_id);
        push_str(&mut record.attributes, attr::KINESIS_PARTITION_KEY, kinesis.and_then(|k| str_at(k, "partitionKey")));
        trigger.records.push(record);
    }
    finish_batch(&mut trigger);
    trigger
}

/// `arn:aws:kinesis:REGION:ACCOUNT:stream/NAME` → `NAME`.
fn stream_name(arn: &str) -> Option<&str> {
    let (_, rest) = arn.split_once(":stream/")?;
    rest.split('/').next().filter(|name| !name.is_empty())
}

/// The context in base64 Kinesis data: only JSON objects of at most 1 MiB are decoded, and
/// only when the first bytes say the data is JSON.
fn context_in_data(data: &str, cx: Ctx<'_>) -> Option<SpanContext> {
    let reserved_key = cx.envelope.reserved_key;
    if reserved_key.is_empty() || data.len() > MAX_PAYLOAD_BYTES.div_ceil(3) * 4 {
        return None;
    }
    // Binary and text data is the common case: decode a few bytes before decoding it all.
    let head = data.as_bytes().get(..data.len().min(64) / 4 * 4)?;
    let mut head_bytes = [0_u8; 48];
    let decoded_head = BASE64.decode_slice(head, &mut head_bytes).ok()?;
    if !matches!(first_non_whitespace(head_bytes.get(..decoded_head)?), None | Some(b'{')) {
        return None;
    }
    let decoded = BASE64.decode(data).ok()?;
    let value = reserved_value(&decoded, reserved_key)?;
    context_in_reserved(&value, cx)
}

/// DynamoDB Streams: context in the reserved attribute of `NewImage`.
pub(super) fn dynamodb(records: &[Value], cx: Ctx<'_>) -> Trigger {
    let first = records.first();
    let table = first
        .and_then(|r| str_at(r, "eventSourceARN"))
        .and_then(table_name)
        .or_else(|| first.and_then(|r| str_at(r, "tableName")));
    let mut trigger = base(TriggerSource::DynamoDb, SpanKind::Consumer, process_name(table), 6);
    if let Some(table) = table {
        trigger.attributes.push(kv(semconv::FAAS_DOCUMENT_COLLECTION, table));
        let names = Array::String(vec![StringValue::from(table.to_owned())]);
        trigger.attributes.push(KeyValue::new(semconv::AWS_DYNAMODB_TABLE_NAMES, opentelemetry::Value::Array(names)));
    }
    push_str(
        &mut trigger.attributes,
        attr::DYNAMODB_STREAM_VIEW_TYPE,
        first.and_then(|r| r.get("dynamodb")).and_then(|d| str_at(d, "StreamViewType")),
    );

    let mut operations = records.iter().map(|r| str_at(r, "eventName").and_then(dynamodb_operation));
    if let Some(operation) = operations.next().flatten()
        && operations.all(|other| other == Some(operation))
    {
        trigger.attributes.push(KeyValue::new(semconv::FAAS_DOCUMENT_OPERATION, operation));
    }
    if let [only] = records
        && let Some(time) = only
            .get("dynamodb")
            .and_then(|d| d.get("ApproximateCreationDateTime"))
            .and_then(Value::as_f64)
            .and_then(epoch_seconds_to_iso8601)
    {
        trigger.attributes.push(KeyValue::new(semconv::FAAS_DOCUMENT_TIME, time));
    }

    trigger.records.reserve_exact(records.len());
    for stream_record in records {
        let change = stream_record.get("dynamodb");
        let parent = change
            .and_then(|c| object_at(c, "NewImage"))
            .and_then(|image| image.get(cx.envelope.reserved_key))
            .and_then(|attribute| context_in_attribute(attribute, cx));
        let sequence_number =
            change.and_then(|c| str_at(c, "SequenceNumber")).or_else(|| str_at(stream_record, "eventID"));
        let mut record = record(parent, sequence_number, 2);
        push_str(&mut record.attributes, attr::DYNAMODB_EVENT_NAME, str_at(stream_record, "eventName"));
        let key_hash = table.zip(change.and_then(|c| object_at(c, "Keys"))).and_then(|(t, k)| item_key_hash(t, k));
        if let Some(hash) = key_hash {
            record.attributes.push(KeyValue::new(attr::DYNAMODB_ITEM_KEY_HASH, hash));
        }
        trigger.records.push(record);
    }
    finish_batch(&mut trigger);
    trigger
}

/// The hash of table + primary key that the producer's span records too
/// (`flowtrace_contract::dynamodb_item_key_hash`), from a stream record's `Keys`. `None` when a
/// key is not a well-formed `S`, `N` or base64 `B` value.
fn item_key_hash(table: &str, keys: &Map<String, Value>) -> Option<String> {
    use flowtrace_contract::DynamoDbKeyValue;
    let binaries: Vec<Option<Vec<u8>>> = keys
        .values()
        .map(|v| str_at(v, "B").and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok()))
        .collect();
    let mut parts = Vec::with_capacity(keys.len());
    for ((name, value), binary) in keys.iter().zip(&binaries) {
        let value = if let Some(s) = str_at(value, "S") {
            DynamoDbKeyValue::S(s)
        } else if let Some(n) = str_at(value, "N") {
            DynamoDbKeyValue::N(n)
        } else {
            DynamoDbKeyValue::B(binary.as_deref()?)
        };
        parts.push((name.as_str(), value));
    }
    (!parts.is_empty()).then(|| flowtrace_contract::dynamodb_item_key_hash(table, parts))
}

/// `arn:aws:dynamodb:REGION:ACCOUNT:table/NAME/stream/LABEL` → `NAME`.
fn table_name(arn: &str) -> Option<&str> {
    let (_, rest) = arn.split_once(":table/")?;
    rest.split('/').next().filter(|name| !name.is_empty())
}

/// `faas.document.operation` for a stream record's `eventName`.
fn dynamodb_operation(event_name: &str) -> Option<&'static str> {
    match event_name {
        "INSERT" => Some("insert"),
        "MODIFY" => Some("edit"),
        "REMOVE" => Some("delete"),
        _ => None,
    }
}

/// The context in a DynamoDB attribute value: a map `{"M": {"traceparent": {"S": ...}}}`, or
/// a string `{"S": ...}` holding a JSON object (or a bare `traceparent`).
fn context_in_attribute(attribute: &Value, cx: Ctx<'_>) -> Option<SpanContext> {
    if let Some(fields) = object_at(attribute, "M") {
        return extract_context(cx.propagator, &DynamoDbMapCarrier(fields));
    }
    context_in_reserved_str(str_at(attribute, "S")?, cx)
}

/// S3 event notifications: no context rides in them; the request id joins the hop to the
/// producer's `PutObject` span (`aws.request_id`).
pub(super) fn s3(records: &[Value]) -> Trigger {
    let first = records.first();
    let bucket = first.and_then(|r| r.get("s3")).and_then(|s3| s3.get("bucket")).and_then(|b| str_at(b, "name"));
    let mut trigger = base(TriggerSource::S3, SpanKind::Consumer, process_name(bucket), 6);
    push_str(&mut trigger.attributes, semconv::FAAS_DOCUMENT_COLLECTION, bucket);
    if let [only] = records {
        let key = only.get("s3").and_then(|s3| s3.get("object")).and_then(|o| str_at(o, "key"));
        push_str(&mut trigger.attributes, semconv::FAAS_DOCUMENT_NAME, key);
        if let Some(operation) = str_at(only, "eventName").and_then(s3_operation) {
            trigger.attributes.push(KeyValue::new(semconv::FAAS_DOCUMENT_OPERATION, operation));
        }
        push_str(&mut trigger.attributes, semconv::FAAS_DOCUMENT_TIME, str_at(only, "eventTime"));
        push_str(&mut trigger.attributes, semconv::AWS_REQUEST_ID, request_id(only));
    }
    trigger.records = records.iter().map(|r| record(None, request_id(r), 0)).collect();
    if records.len() > 1 {
        finish_batch(&mut trigger);
    }
    trigger
}

/// `responseElements.x-amz-request-id` of an S3 record.
fn request_id(record: &Value) -> Option<&str> {
    record.get("responseElements").and_then(|e| str_at(e, "x-amz-request-id"))
}

/// `faas.document.operation` for an S3 `eventName` (`ObjectCreated:Put`, ...).
fn s3_operation(event_name: &str) -> Option<&'static str> {
    let category = event_name.split(':').next().unwrap_or(event_name);
    match category {
        "ObjectCreated" => Some("insert"),
        "ObjectRemoved" | "LifecycleExpiration" => Some("delete"),
        "ObjectTagging" | "ObjectAcl" | "ObjectRestore" => Some("edit"),
        _ => None,
    }
}
