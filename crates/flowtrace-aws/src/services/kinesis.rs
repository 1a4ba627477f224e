//! Kinesis: `PutRecord` / `PutRecords` get the reserved key as the first member of data that
//! is a JSON object; other data, and records that would pass 1 MiB, are left untouched.

use super::{Request, count, string_array};
use crate::config::Config;
use crate::inject::{Carrier, JsonInsert, Skip, insert_reserved, skipped};
use aws_sdk_kinesis::operation::put_record::{PutRecordInput, PutRecordOutput};
use aws_sdk_kinesis::operation::put_records::{PutRecordsInput, PutRecordsOutput};
use aws_smithy_runtime_api::client::interceptors::context::{Input, Output};
use aws_smithy_types::Blob;
use flowtrace_contract::attr;
use opentelemetry::KeyValue;
use opentelemetry::trace::{SpanKind, SpanRef};
use opentelemetry_semantic_conventions::attribute as semconv;
use std::sync::Arc;

/// `messaging.system` for Kinesis (the consumer side uses the same value).
const SYSTEM: &str = "aws_kinesis";
/// The largest record: data plus partition key.
pub(crate) const MAX_RECORD_BYTES: usize = 1024 * 1024;
/// The largest `PutRecords` request: all data plus partition keys.
const MAX_REQUEST_BYTES: usize = 5 * 1024 * 1024;

/// `arn:aws:kinesis:REGION:ACCOUNT:stream/NAME` → `NAME`.
fn stream_name_from_arn(arn: &str) -> Option<&str> {
    arn.split_once(":stream/").and_then(|(_, rest)| rest.split('/').next())
}

pub(crate) fn describe(input: &Input, request: &Request<'_>, attributes: &mut Vec<KeyValue>) -> Option<SpanKind> {
    let (name, arn, partition_key, batch) = if let Some(input) = input.downcast_ref::<PutRecordInput>() {
        (input.stream_name.as_deref(), input.stream_arn.as_deref(), input.partition_key.as_deref(), None)
    } else if let Some(input) = input.downcast_ref::<PutRecordsInput>() {
        (
            input.stream_name.as_deref(),
            input.stream_arn.as_deref(),
            None,
            Some(input.records.as_ref().map_or(0, Vec::len)),
        )
    } else {
        return None;
    };
    let stream = name.or_else(|| arn.and_then(stream_name_from_arn));
    attributes.push(KeyValue::new(semconv::MESSAGING_SYSTEM, SYSTEM));
    attributes.push(KeyValue::new(semconv::MESSAGING_OPERATION_TYPE, "send"));
    attributes.push(KeyValue::new(semconv::MESSAGING_OPERATION_NAME, request.operation.clone()));
    if let Some(stream) = stream {
        let stream: Arc<str> = Arc::from(stream);
        attributes.push(KeyValue::new(semconv::AWS_KINESIS_STREAM_NAME, Arc::clone(&stream)));
        attributes.push(KeyValue::new(semconv::MESSAGING_DESTINATION_NAME, stream));
    }
    if let Some(key) = partition_key {
        attributes.push(KeyValue::new(attr::KINESIS_PARTITION_KEY, key.to_owned()));
    }
    if let Some(batch) = batch {
        attributes.push(KeyValue::new(semconv::MESSAGING_BATCH_MESSAGE_COUNT, count(batch)));
    }
    Some(SpanKind::Producer)
}

/// Whether `input` is a call this service injects into (the carrier is only formatted then).
pub(crate) fn injectable(input: &Input) -> bool {
    input.downcast_ref::<PutRecordInput>().is_some() || input.downcast_ref::<PutRecordsInput>().is_some()
}

pub(crate) fn inject(input: &mut Input, carrier: &Carrier, span: &SpanRef<'_>, config: &Config) {
    let key = config.reserved_key();
    if let Some(input) = input.downcast_mut::<PutRecordInput>() {
        let partition_key = input.partition_key.as_deref().map_or(0, str::len);
        if let Some(data) = input.data.as_mut() {
            let _ = inject_record(data, partition_key, usize::MAX, key, carrier, span, None);
        }
    } else if let Some(input) = input.downcast_mut::<PutRecordsInput>() {
        let Some(records) = input.records.as_mut() else {
            return;
        };
        let mut total: usize =
            records.iter().map(|r| r.data.as_ref().len() + r.partition_key.as_deref().map_or(0, str::len)).sum();
        for (index, record) in records.iter_mut().enumerate() {
            let partition_key = record.partition_key.as_deref().map_or(0, str::len);
            let room = MAX_REQUEST_BYTES.saturating_sub(total);
            total += inject_record(&mut record.data, partition_key, room, key, carrier, span, Some(index.to_string()));
        }
    }
}

/// Injects into one record's data; returns how many bytes it grew by.
fn inject_record(
    data: &mut Blob,
    partition_key_len: usize,
    room: usize,
    key: &str,
    carrier: &Carrier,
    span: &SpanRef<'_>,
    entry: Option<String>,
) -> usize {
    let before = data.as_ref().len();
    if before + partition_key_len > MAX_RECORD_BYTES {
        skipped(span, Skip::TooLarge, entry);
        return 0;
    }
    match insert_reserved(data.as_ref(), key, carrier) {
        JsonInsert::Inserted(bytes) => {
            let grown = bytes.len().saturating_sub(before);
            if bytes.len() + partition_key_len > MAX_RECORD_BYTES || grown > room {
                skipped(span, Skip::TooLarge, entry);
                return 0;
            }
            *data = Blob::new(bytes);
            grown
        }
        JsonInsert::NotObject => {
            skipped(span, Skip::NotJsonObject, entry);
            0
        }
        JsonInsert::KeyPresent => {
            skipped(span, Skip::AlreadyPresent, entry);
            0
        }
    }
}

pub(crate) fn record_output(output: &Output, span: &SpanRef<'_>) {
    if let Some(output) = output.downcast_ref::<PutRecordOutput>() {
        // One shared copy of each value for the two attributes that carry it.
        let sequence_number: Arc<str> = Arc::from(output.sequence_number.as_str());
        let shard_id: Arc<str> = Arc::from(output.shard_id.as_str());
        span.set_attributes([
            KeyValue::new(semconv::MESSAGING_MESSAGE_ID, Arc::clone(&sequence_number)),
            KeyValue::new(attr::KINESIS_SEQUENCE_NUMBER, sequence_number),
            KeyValue::new(attr::KINESIS_SHARD_ID, Arc::clone(&shard_id)),
            KeyValue::new(semconv::MESSAGING_DESTINATION_PARTITION_ID, shard_id),
        ]);
    } else if let Some(output) = output.downcast_ref::<PutRecordsOutput>() {
        let sequence_numbers = output.records.iter().map(|r| r.sequence_number.clone().unwrap_or_default());
        let shard_ids = output.records.iter().map(|r| r.shard_id.clone().unwrap_or_default());
        span.set_attribute(KeyValue::new(attr::KINESIS_SEQUENCE_NUMBERS, string_array(sequence_numbers)));
        span.set_attribute(KeyValue::new(attr::KINESIS_SHARD_IDS, string_array(shard_ids)));
        if let Some(failed) = output.failed_record_count.filter(|n| *n > 0) {
            span.set_attribute(KeyValue::new(attr::AWS_FAILED_ENTRIES, i64::from(failed)));
        }
    }
}
