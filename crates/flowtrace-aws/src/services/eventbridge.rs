//! EventBridge: `PutEvents` gets the reserved key as the first member of each entry's
//! `Detail` JSON object (what reaches the target), plus `TraceHeader` (X-Ray) when the user
//! set none, within the 256 KiB request limit.

use super::{Request, count, string_array};
use crate::config::Config;
use crate::inject::{Carrier, JsonInsert, Skip, insert_reserved, skipped};
use aws_sdk_eventbridge::operation::put_events::{PutEventsInput, PutEventsOutput};
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_smithy_runtime_api::client::interceptors::context::{Input, Output};
use flowtrace_contract::attr;
use opentelemetry::KeyValue;
use opentelemetry::trace::{SpanKind, SpanRef};
use opentelemetry_semantic_conventions::attribute as semconv;

/// The largest `PutEvents` request, counted as EventBridge does.
const MAX_REQUEST_BYTES: usize = 256 * 1024;
/// The bus an entry without `EventBusName` goes to.
const DEFAULT_BUS: &str = "default";

/// An entry's size as EventBridge counts it (the time always counted, to be safe).
fn entry_size(entry: &PutEventsRequestEntry) -> usize {
    14 + entry.source.as_deref().map_or(0, str::len)
        + entry.detail_type.as_deref().map_or(0, str::len)
        + entry.detail.as_deref().map_or(0, str::len)
        + entry.resources.iter().flatten().map(String::len).sum::<usize>()
}

pub(crate) fn describe(input: &Input, request: &Request<'_>, attributes: &mut Vec<KeyValue>) -> Option<SpanKind> {
    let input = input.downcast_ref::<PutEventsInput>()?;
    let entries = input.entries.as_deref().unwrap_or_default();
    let mut buses: Vec<&str> = entries.iter().map(|e| e.event_bus_name.as_deref().unwrap_or(DEFAULT_BUS)).collect();
    buses.sort_unstable();
    buses.dedup();
    attributes.push(KeyValue::new(semconv::MESSAGING_OPERATION_TYPE, "send"));
    attributes.push(KeyValue::new(semconv::MESSAGING_OPERATION_NAME, request.operation.clone()));
    if let [bus] = buses.as_slice() {
        attributes.push(KeyValue::new(attr::EVENTBRIDGE_EVENT_BUS, (*bus).to_owned()));
        attributes.push(KeyValue::new(semconv::MESSAGING_DESTINATION_NAME, (*bus).to_owned()));
    } else if !buses.is_empty() {
        attributes
            .push(KeyValue::new(attr::EVENTBRIDGE_EVENT_BUS, string_array(buses.iter().map(|b| (*b).to_owned()))));
    }
    if let [entry] = entries {
        if let Some(source) = entry.source.as_deref() {
            attributes.push(KeyValue::new(attr::EVENTBRIDGE_SOURCE, source.to_owned()));
        }
        if let Some(detail_type) = entry.detail_type.as_deref() {
            attributes.push(KeyValue::new(attr::EVENTBRIDGE_DETAIL_TYPE, detail_type.to_owned()));
        }
    } else {
        attributes.push(KeyValue::new(semconv::MESSAGING_BATCH_MESSAGE_COUNT, count(entries.len())));
    }
    Some(SpanKind::Producer)
}

/// Whether `input` is a call this service injects into (the carrier is only formatted then).
pub(crate) fn injectable(input: &Input) -> bool {
    input.downcast_ref::<PutEventsInput>().is_some()
}

pub(crate) fn inject(input: &mut Input, carrier: &Carrier, span: &SpanRef<'_>, config: &Config) {
    let Some(input) = input.downcast_mut::<PutEventsInput>() else {
        return;
    };
    let Some(entries) = input.entries.as_mut() else {
        return;
    };
    let mut total: usize = entries.iter().map(entry_size).sum();
    for (index, entry) in entries.iter_mut().enumerate() {
        if entry.trace_header.is_none() {
            entry.trace_header = Some(carrier.xray.clone());
        }
        let Some(detail) = entry.detail.as_deref() else {
            skipped(span, Skip::NotJsonObject, Some(index.to_string()));
            continue;
        };
        match insert_reserved(detail.as_bytes(), config.reserved_key(), carrier) {
            JsonInsert::Inserted(bytes) => {
                let grown = bytes.len().saturating_sub(detail.len());
                if total + grown > MAX_REQUEST_BYTES {
                    skipped(span, Skip::TooLarge, Some(index.to_string()));
                    continue;
                }
                match String::from_utf8(bytes) {
                    Ok(text) => {
                        entry.detail = Some(text);
                        total += grown;
                    }
                    Err(_) => skipped(span, Skip::NotJsonObject, Some(index.to_string())),
                }
            }
            JsonInsert::NotObject => skipped(span, Skip::NotJsonObject, Some(index.to_string())),
            JsonInsert::KeyPresent => skipped(span, Skip::AlreadyPresent, Some(index.to_string())),
        }
    }
}

pub(crate) fn record_output(output: &Output, span: &SpanRef<'_>) {
    let Some(output) = output.downcast_ref::<PutEventsOutput>() else {
        return;
    };
    let entries = output.entries.as_deref().unwrap_or_default();
    let ids: Vec<String> = entries.iter().map(|e| e.event_id.clone().unwrap_or_default()).collect();
    if let [id] = ids.as_slice() {
        span.set_attribute(KeyValue::new(semconv::MESSAGING_MESSAGE_ID, id.clone()));
    }
    span.set_attribute(KeyValue::new(attr::AWS_MESSAGE_IDS, string_array(ids)));
    if output.failed_entry_count > 0 {
        span.set_attribute(KeyValue::new(attr::AWS_FAILED_ENTRIES, i64::from(output.failed_entry_count)));
    }
}
