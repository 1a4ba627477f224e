//! SQS: `SendMessage` / `SendMessageBatch` get `traceparent` (and `tracestate`) message
//! attributes, within the 10-attribute and 256 KiB limits, and the `AWSTraceHeader` system
//! attribute (X-Ray format), which counts against neither.

use super::{Request, count, last_segment, string_array};
use crate::inject::{Carrier, Skip, TRACEPARENT, TRACESTATE, skipped};
use aws_sdk_sqs::operation::receive_message::ReceiveMessageInput;
use aws_sdk_sqs::operation::send_message::{SendMessageInput, SendMessageOutput};
use aws_sdk_sqs::operation::send_message_batch::{SendMessageBatchInput, SendMessageBatchOutput};
use aws_sdk_sqs::types::{MessageAttributeValue, MessageSystemAttributeNameForSends, MessageSystemAttributeValue};
use aws_smithy_runtime_api::client::interceptors::context::{Input, Output};
use flowtrace_contract::attr;
use opentelemetry::KeyValue;
use opentelemetry::trace::{SpanKind, SpanRef};
use opentelemetry_semantic_conventions::attribute as semconv;
use std::borrow::Cow;
use std::collections::HashMap;

/// `messaging.system` for SQS.
const SYSTEM: &str = "aws_sqs";
/// The most message attributes a message may have.
pub(crate) const MAX_ATTRIBUTES: usize = 10;
/// The size flowtrace keeps messages under (body plus attributes): SQS's historical limit,
/// and still the limit of queues configured with it.
pub(crate) const MAX_MESSAGE_BYTES: usize = 256 * 1024;

type Attributes = HashMap<String, MessageAttributeValue>;
type SystemAttributes = HashMap<MessageSystemAttributeNameForSends, MessageSystemAttributeValue>;

pub(crate) fn describe(input: &Input, request: &Request<'_>, attributes: &mut Vec<KeyValue>) -> Option<SpanKind> {
    let (queue_url, kind, operation_type, batch) = if let Some(input) = input.downcast_ref::<SendMessageInput>() {
        (input.queue_url.as_deref(), SpanKind::Producer, "send", None)
    } else if let Some(input) = input.downcast_ref::<SendMessageBatchInput>() {
        (input.queue_url.as_deref(), SpanKind::Producer, "send", Some(input.entries.as_ref().map_or(0, Vec::len)))
    } else if let Some(input) = input.downcast_ref::<ReceiveMessageInput>() {
        (input.queue_url.as_deref(), SpanKind::Client, "receive", None)
    } else {
        return None;
    };
    attributes.push(KeyValue::new(semconv::MESSAGING_SYSTEM, SYSTEM));
    attributes.push(KeyValue::new(semconv::MESSAGING_OPERATION_TYPE, operation_type));
    attributes.push(KeyValue::new(semconv::MESSAGING_OPERATION_NAME, request.operation.clone()));
    if let Some(url) = queue_url {
        attributes.push(KeyValue::new(semconv::AWS_SQS_QUEUE_URL, url.to_owned()));
        attributes.push(KeyValue::new(semconv::MESSAGING_DESTINATION_NAME, last_segment(url, '/').to_owned()));
    }
    if let Some(batch) = batch {
        attributes.push(KeyValue::new(semconv::MESSAGING_BATCH_MESSAGE_COUNT, count(batch)));
    }
    Some(kind)
}

/// Whether `input` is a call this service injects into (the carrier is only formatted then).
pub(crate) fn injectable(input: &Input) -> bool {
    input.downcast_ref::<SendMessageInput>().is_some() || input.downcast_ref::<SendMessageBatchInput>().is_some()
}

pub(crate) fn inject(input: &mut Input, carrier: Carrier, span: &SpanRef<'_>) {
    if let Some(input) = input.downcast_mut::<SendMessageInput>() {
        let body = input.message_body.as_deref().map_or(0, str::len);
        let (attributes, system_attributes) = (&mut input.message_attributes, &mut input.message_system_attributes);
        inject_message(body, attributes, system_attributes, Cow::Owned(carrier), span, None);
    } else if let Some(input) = input.downcast_mut::<SendMessageBatchInput>() {
        for entry in input.entries.iter_mut().flatten() {
            let body = entry.message_body.len();
            let id = Some(entry.id.clone());
            inject_message(
                body,
                &mut entry.message_attributes,
                &mut entry.message_system_attributes,
                Cow::Borrowed(&carrier),
                span,
                id,
            );
        }
    }
}

/// One message: W3C attributes when they fit, `AWSTraceHeader` when the user set none.
fn inject_message(
    body_len: usize,
    attributes: &mut Option<Attributes>,
    system_attributes: &mut Option<SystemAttributes>,
    carrier: Cow<'_, Carrier>,
    span: &SpanRef<'_>,
    entry: Option<String>,
) {
    let trace_header_set =
        system_attributes.as_ref().is_some_and(|s| s.contains_key(&MessageSystemAttributeNameForSends::AwsTraceHeader));
    let existing = attributes.as_ref();
    let fitting = if existing.is_some_and(|a| a.keys().any(|k| k.eq_ignore_ascii_case(TRACEPARENT))) {
        Err(Skip::AlreadyPresent)
    } else {
        let existing_count = existing.map_or(0, HashMap::len);
        let size =
            body_len + existing.map_or(0, |a| a.iter().map(|(name, value)| name.len() + attribute_size(value)).sum());
        crate::inject::attribute_fields_that_fit(&carrier, existing_count, size, MAX_ATTRIBUTES, MAX_MESSAGE_BYTES)
    };
    // The carrier's strings move into the attributes (copied only for a batch's entries).
    let Carrier { traceparent, tracestate, xray } = carrier.into_owned();
    if !trace_header_set
        && let Ok(value) = MessageSystemAttributeValue::builder().data_type("String").string_value(xray).build()
    {
        system_attributes
            .get_or_insert_with(HashMap::new)
            .insert(MessageSystemAttributeNameForSends::AwsTraceHeader, value);
    }
    let n = match fitting {
        Ok(n) => n,
        Err(reason) => {
            skipped(span, reason, entry);
            return;
        }
    };
    let map = attributes.get_or_insert_with(|| HashMap::with_capacity(n));
    let fields = std::iter::once((TRACEPARENT, traceparent)).chain(tracestate.map(|state| (TRACESTATE, state)));
    for (name, value) in fields.take(n) {
        if let Ok(value) = MessageAttributeValue::builder().data_type("String").string_value(value).build() {
            map.insert(name.to_owned(), value);
        }
    }
}

/// The bytes an attribute counts for: its type and its value(s).
fn attribute_size(value: &MessageAttributeValue) -> usize {
    value.data_type.len()
        + value.string_value.as_deref().map_or(0, str::len)
        + value.binary_value.as_ref().map_or(0, |b| b.as_ref().len())
        + value.string_list_values.iter().flatten().map(String::len).sum::<usize>()
        + value.binary_list_values.iter().flatten().map(|b| b.as_ref().len()).sum::<usize>()
}

pub(crate) fn record_output(output: &Output, span: &SpanRef<'_>) {
    if let Some(output) = output.downcast_ref::<SendMessageOutput>() {
        if let Some(id) = output.message_id() {
            span.set_attribute(KeyValue::new(semconv::MESSAGING_MESSAGE_ID, id.to_owned()));
        }
    } else if let Some(output) = output.downcast_ref::<SendMessageBatchOutput>() {
        let ids = output.successful.iter().map(|entry| entry.message_id.clone());
        span.set_attribute(KeyValue::new(attr::AWS_MESSAGE_IDS, string_array(ids)));
        if !output.failed.is_empty() {
            span.set_attribute(KeyValue::new(attr::AWS_FAILED_ENTRIES, count(output.failed.len())));
        }
    }
}
