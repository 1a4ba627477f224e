//! Per-source parsers, and the dispatcher that picks one from the event's JSON shape.
//!
//! Rules every parser follows:
//! - never panic, whatever the input: a field of the wrong type is a missing field;
//! - borrow from the event; allocate only the strings that end up in attributes;
//! - never record a header value other than `Host` and `User-Agent`, and never a secret.

mod events;
mod http;
mod messaging;
mod streams;

use super::carrier::{BareTraceparent, ClientContextCarrier, JsonMapCarrier, extract_context};
use super::{EventEnvelope, RecordContext, Trigger, TriggerSource};
use flowtrace_contract::attr;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanContext, SpanKind};
use opentelemetry::{KeyValue, StringValue};
use opentelemetry_semantic_conventions::attribute as semconv;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

/// Payloads (Kinesis data, SQS bodies, DynamoDB string attributes) larger than this are not
/// decoded or parsed to look for trace context.
pub(crate) const MAX_PAYLOAD_BYTES: usize = 1024 * 1024;

/// What the parsers share: the envelope and the propagator.
#[derive(Clone, Copy)]
pub(super) struct Ctx<'a> {
    pub(super) envelope: EventEnvelope<'a>,
    pub(super) propagator: &'a dyn TextMapPropagator,
}

pub(super) fn detect(event: &Value, envelope: EventEnvelope<'_>, propagator: &dyn TextMapPropagator) -> Trigger {
    let cx = Ctx { envelope, propagator };
    match event.as_object().and_then(|object| recognise(object, cx)) {
        Some(mut trigger) => {
            finish(&mut trigger, cx);
            trigger
        }
        None => direct_or_other(cx),
    }
}

/// Picks the parser from the event's shape.
fn recognise(event: &Map<String, Value>, cx: Ctx<'_>) -> Option<Trigger> {
    if let Some(records) = event.get("Records").and_then(Value::as_array)
        && let Some(trigger) = recognise_records(records, cx)
    {
        return Some(trigger);
    }
    if event.contains_key("requestContext")
        && let Some(trigger) = http::detect(event, cx)
    {
        return Some(trigger);
    }
    if event.contains_key("detail-type")
        && let Some(trigger) = events::detect_eventbridge(event, cx)
    {
        return Some(trigger);
    }
    events::detect_step_functions(event)
}

/// Batches: the first record's `eventSource` (`EventSource` for SNS) names the service.
fn recognise_records(records: &[Value], cx: Ctx<'_>) -> Option<Trigger> {
    let first = records.first()?;
    let source = str_at(first, "eventSource").or_else(|| str_at(first, "EventSource"))?;
    match source {
        "aws:sqs" => Some(messaging::sqs(records, cx)),
        "aws:sns" => Some(messaging::sns(records, cx)),
        "aws:kinesis" => Some(streams::kinesis(records, cx)),
        "aws:dynamodb" => Some(streams::dynamodb(records, cx)),
        "aws:s3" => Some(streams::s3(records)),
        _ => None,
    }
}

/// An event of no known shape: a direct invocation when the invoker set a client context,
/// otherwise [`Trigger::other`].
fn direct_or_other(cx: Ctx<'_>) -> Trigger {
    let Some(custom) = cx.envelope.client_context_custom else {
        return Trigger::other();
    };
    let mut trigger = base(TriggerSource::Direct, SpanKind::Internal, None, 0);
    if let Some(parent) = extract_context(cx.propagator, &ClientContextCarrier(custom)) {
        trigger.records.push(RecordContext { parent: Some(parent), ..RecordContext::default() });
    }
    trigger
}

/// Common to every recognised source: the client context is the parent when the event
/// itself carried none.
///
/// The parent decision's own attributes (`flowtrace.parent.origin`,
/// `flowtrace.batch.records_without_context`) are the wrapper's to set: it also decides on
/// the X-Ray fallback, which `detect` cannot see.
fn finish(trigger: &mut Trigger, cx: Ctx<'_>) {
    if trigger.records.iter().any(|record| record.parent.is_some()) {
        return;
    }
    let Some(custom) = cx.envelope.client_context_custom else {
        return;
    };
    let Some(parent) = extract_context(cx.propagator, &ClientContextCarrier(custom)) else {
        return;
    };
    if trigger.records.is_empty() {
        trigger.records.push(RecordContext::default());
    }
    for record in &mut trigger.records {
        record.parent = Some(parent.clone());
    }
}

/// A trigger with `faas.trigger` and `flowtrace.trigger.source` set, and room for `extra`
/// more attributes.
pub(super) fn base(source: TriggerSource, span_kind: SpanKind, span_name: Option<String>, extra: usize) -> Trigger {
    let mut attributes = Vec::with_capacity(2 + extra);
    attributes.push(KeyValue::new(semconv::FAAS_TRIGGER, source.faas_trigger()));
    attributes.push(KeyValue::new(attr::TRIGGER_SOURCE, source.as_str()));
    Trigger { source: Some(source), span_kind, span_name, attributes, records: Vec::new() }
}

/// Batch bookkeeping shared by the `Records` sources: a single record's attributes go on the
/// span too; a batch gets its size.
pub(super) fn finish_batch(trigger: &mut Trigger) {
    match trigger.records.as_slice() {
        [] => {}
        [only] => trigger.attributes.extend(only.attributes.iter().cloned()),
        records => {
            trigger.attributes.push(KeyValue::new(semconv::MESSAGING_BATCH_MESSAGE_COUNT, len_i64(records.len())))
        }
    }
}

fn len_i64(len: usize) -> i64 {
    i64::try_from(len).unwrap_or(i64::MAX)
}

/// A record with its correlation id, as `messaging.message.id`, first among `extra` more
/// link attributes.
pub(super) fn record(parent: Option<SpanContext>, message_id: Option<&str>, extra: usize) -> RecordContext {
    let mut attributes = Vec::with_capacity(usize::from(message_id.is_some()) + extra);
    if let Some(id) = message_id {
        attributes.push(kv(semconv::MESSAGING_MESSAGE_ID, id));
    }
    RecordContext { parent, message_id: message_id.map(str::to_owned), attributes }
}

/// A string attribute copied out of the event.
pub(super) fn kv(key: &'static str, value: &str) -> KeyValue {
    KeyValue::new(key, StringValue::from(value.to_owned()))
}

/// Pushes a string attribute when the value is there.
pub(super) fn push_str(attributes: &mut Vec<KeyValue>, key: &'static str, value: Option<&str>) {
    if let Some(value) = value {
        attributes.push(kv(key, value));
    }
}

/// `value[key]` as a string.
pub(super) fn str_at<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key)?.as_str()
}

/// `value[key]` as an object.
pub(super) fn object_at<'a>(value: &'a Value, key: &str) -> Option<&'a Map<String, Value>> {
    value.get(key)?.as_object()
}

/// The last `separator`-delimited segment of `arn` (`arn:aws:sqs:...:orders` → `orders`).
pub(super) fn last_segment(arn: &str, separator: char) -> &str {
    arn.rsplit(separator).next().unwrap_or(arn)
}

/// `process <destination>`, the span name of every messaging and stream source.
pub(super) fn process_name(destination: Option<&str>) -> Option<String> {
    destination.filter(|d| !d.is_empty()).map(|d| format!("process {d}"))
}

/// Parses `json` (at most [`MAX_PAYLOAD_BYTES`]) as an object.
pub(super) fn parse_object(json: &[u8]) -> Option<Map<String, Value>> {
    if json.len() > MAX_PAYLOAD_BYTES || first_non_whitespace(json) != Some(b'{') {
        return None;
    }
    serde_json::from_slice(json).ok()
}

/// The value under `reserved_key` in the JSON object `json` (at most
/// [`MAX_PAYLOAD_BYTES`]), without building a value for anything else in it. `None` for
/// anything that is not a JSON object, or has no such key.
/// Data that is not valid UTF-8 throughout is not JSON, and carries nothing.
pub(super) fn reserved_value(json: &[u8], reserved_key: &str) -> Option<Value> {
    if reserved_key.is_empty() || json.len() > MAX_PAYLOAD_BYTES || first_non_whitespace(json) != Some(b'{') {
        return None;
    }
    let json = std::str::from_utf8(json).ok()?;
    let mut deserializer = serde_json::Deserializer::from_str(json);
    ReservedValue(reserved_key).deserialize(&mut deserializer).ok().flatten()
}

/// The context in the reserved key's value: an object of propagation fields
/// (`{"traceparent": "00-...", "tracestate": "..."}`), that object serialised as a JSON
/// string, or a bare `traceparent` string.
pub(super) fn context_in_reserved(value: &Value, cx: Ctx<'_>) -> Option<SpanContext> {
    match value {
        Value::Object(fields) => extract_context(cx.propagator, &JsonMapCarrier(fields)),
        Value::String(text) => context_in_reserved_str(text, cx),
        _ => None,
    }
}

/// [`context_in_reserved`] for a string value.
pub(super) fn context_in_reserved_str(text: &str, cx: Ctx<'_>) -> Option<SpanContext> {
    if first_non_whitespace(text.as_bytes()) == Some(b'{') {
        let fields = parse_object(text.as_bytes())?;
        extract_context(cx.propagator, &JsonMapCarrier(&fields))
    } else {
        extract_context(cx.propagator, &BareTraceparent(text.trim()))
    }
}

/// The first byte that is not JSON whitespace.
pub(super) fn first_non_whitespace(bytes: &[u8]) -> Option<u8> {
    bytes.iter().copied().find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
}

/// Deserialises a JSON object, keeping only the value of one key.
struct ReservedValue<'k>(&'k str);

impl<'de> DeserializeSeed<'de> for ReservedValue<'_> {
    type Value = Option<Value>;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ReservedValue<'_> {
    type Value = Option<Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(is_reserved) = map.next_key_seed(KeyIs(self.0))? {
            if is_reserved && found.is_none() {
                found = Some(map.next_value::<Value>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// Deserialises a map key into "is it this key?", without allocating.
struct KeyIs<'k>(&'k str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<bool, E> {
        Ok(key == self.0)
    }
}

/// Seconds since the Unix epoch as ISO 8601 UTC (`2016-12-01T01:27:00Z`), for
/// `faas.document.time`. `None` outside years 1970–9999.
pub(super) fn epoch_seconds_to_iso8601(seconds: f64) -> Option<String> {
    if !seconds.is_finite() || !(0.0..253_402_300_800.0).contains(&seconds) {
        return None;
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // range checked above
    let total = seconds.floor() as u64;
    let days = total / 86_400;
    let in_day = total % 86_400;
    // Howard Hinnant's civil_from_days, for days since 1970-01-01 (non-negative here).
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    Some(format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", in_day / 3600, in_day % 3600 / 60, in_day % 60))
}
