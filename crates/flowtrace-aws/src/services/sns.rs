//! SNS: `Publish` / `PublishBatch` get `traceparent` (and `tracestate`) message attributes,
//! within the 10-attribute and 256 KiB limits, except with `MessageStructure=json`.

use super::{Request, count, last_segment, string_array};
use crate::inject::{Carrier, Skip, skipped};
use aws_sdk_sns::operation::publish::{PublishInput, PublishOutput};
use aws_sdk_sns::operation::publish_batch::{PublishBatchInput, PublishBatchOutput};
use aws_sdk_sns::types::MessageAttributeValue;
use aws_smithy_runtime_api::client::interceptors::context::{Input, Output};
use flowtrace_contract::attr;
use opentelemetry::KeyValue;
use opentelemetry::trace::{SpanKind, SpanRef};
use opentelemetry_semantic_conventions::attribute as semconv;
use std::collections::HashMap;

/// `messaging.system` for SNS.
const SYSTEM: &str = "aws.sns";
/// The most message attributes a message may have (and still be delivered to SQS).
const MAX_ATTRIBUTES: usize = 10;
/// The largest message (body plus attributes).
const MAX_MESSAGE_BYTES: usize = 256 * 1024;

pub(crate) fn describe(input: &Input, request: &Request<'_>, attributes: &mut Vec<KeyValue>) -> Option<SpanKind> {
    let (topic, batch) = if let Some(input) = input.downcast_ref::<PublishInput>() {
        // A phone number is never recorded.
        (input.topic_arn.as_deref().or(input.target_arn.as_deref()), None)
    } else if let Some(input) = input.downcast_ref::<PublishBatchInput>() {
        (input.topic_arn.as_deref(), Some(input.publish_batch_request_entries.as_ref().map_or(0, Vec::len)))
    } else {
        return None;
    };
    attributes.push(KeyValue::new(semconv::MESSAGING_SYSTEM, SYSTEM));
    attributes.push(KeyValue::new(semconv::MESSAGING_OPERATION_TYPE, "send"));
    attributes.push(KeyValue::new(semconv::MESSAGING_OPERATION_NAME, request.operation.clone()));
    if let Some(arn) = topic {
        attributes.push(KeyValue::new(semconv::AWS_SNS_TOPIC_ARN, arn.to_owned()));
        attributes.push(KeyValue::new(semconv::MESSAGING_DESTINATION_NAME, last_segment(arn, ':').to_owned()));
    }
    if let Some(batch) = batch {
        attributes.push(KeyValue::new(semconv::MESSAGING_BATCH_MESSAGE_COUNT, count(batch)));
    }
    Some(SpanKind::Producer)
}

/// Whether `input` is a call this service injects into (the carrier is only formatted then).
pub(crate) fn injectable(input: &Input) -> bool {
    input.downcast_ref::<PublishInput>().is_some() || input.downcast_ref::<PublishBatchInput>().is_some()
}

pub(crate) fn inject(input: &mut Input, carrier: &Carrier, span: &SpanRef<'_>) {
    if let Some(input) = input.downcast_mut::<PublishInput>() {
        let size = input.message.as_deref().map_or(0, str::len) + input.subject.as_deref().map_or(0, str::len);
        let structure = input.message_structure.as_deref();
        inject_message(size, structure, &mut input.message_attributes, carrier, span, None);
    } else if let Some(input) = input.downcast_mut::<PublishBatchInput>() {
        for entry in input.publish_batch_request_entries.iter_mut().flatten() {
            let size = entry.message.len() + entry.subject.as_deref().map_or(0, str::len);
            let id = Some(entry.id.clone());
            inject_message(size, entry.message_structure.as_deref(), &mut entry.message_attributes, carrier, span, id);
        }
    }
}

fn inject_message(
    message_len: usize,
    structure: Option<&str>,
    attributes: &mut Option<HashMap<String, MessageAttributeValue>>,
    carrier: &Carrier,
    span: &SpanRef<'_>,
    entry: Option<String>,
) {
    if structure == Some("json") {
        skipped(span, Skip::MessageStructureJson, entry);
        return;
    }
    let existing = attributes.as_ref();
    if existing.is_some_and(|a| a.keys().any(|k| k.eq_ignore_ascii_case(crate::inject::TRACEPARENT))) {
        skipped(span, Skip::AlreadyPresent, entry);
        return;
    }
    let existing_count = existing.map_or(0, HashMap::len);
    let size = message_len
        + existing.map_or(0, |a| {
            a.iter()
                .map(|(name, value)| {
                    name.len()
                        + value.data_type.len()
                        + value.string_value.as_deref().map_or(0, str::len)
                        + value.binary_value.as_ref().map_or(0, |b| b.as_ref().len())
                })
                .sum()
        });
    let n = match crate::inject::attribute_fields_that_fit(
        carrier,
        existing_count,
        size,
        MAX_ATTRIBUTES,
        MAX_MESSAGE_BYTES,
    ) {
        Ok(n) => n,
        Err(reason) => {
            skipped(span, reason, entry);
            return;
        }
    };
    let map = attributes.get_or_insert_with(HashMap::new);
    for (name, value) in carrier.fields().take(n) {
        if let Ok(value) = MessageAttributeValue::builder().data_type("String").string_value(value).build() {
            map.insert(name.to_owned(), value);
        }
    }
}

pub(crate) fn record_output(output: &Output, span: &SpanRef<'_>) {
    if let Some(output) = output.downcast_ref::<PublishOutput>() {
        if let Some(id) = output.message_id() {
            span.set_attribute(KeyValue::new(semconv::MESSAGING_MESSAGE_ID, id.to_owned()));
        }
    } else if let Some(output) = output.downcast_ref::<PublishBatchOutput>() {
        let ids = output.successful.iter().flatten().filter_map(|entry| entry.message_id.clone());
        span.set_attribute(KeyValue::new(attr::AWS_MESSAGE_IDS, string_array(ids)));
        let failed = output.failed.as_ref().map_or(0, Vec::len);
        if failed > 0 {
            span.set_attribute(KeyValue::new(attr::AWS_FAILED_ENTRIES, count(failed)));
        }
    }
}
