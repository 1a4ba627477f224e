//! What gets injected: the producer span's context as W3C `traceparent`/`tracestate` and as
//! an X-Ray header, and helpers shared by the services (JSON insertion, "skipped" events).

#![cfg_attr(
    not(all(
        feature = "sns",
        feature = "sqs",
        feature = "kinesis",
        feature = "dynamodb",
        feature = "eventbridge",
        feature = "lambda"
    )),
    allow(dead_code)
)]

use flowtrace_contract::attr;
use opentelemetry::propagation::{Injector, TextMapPropagator as _};
use opentelemetry::trace::{SpanRef, TraceContextExt};
use opentelemetry::{Context, KeyValue};
use opentelemetry_aws::trace::XrayPropagator;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use std::fmt;

/// The W3C field names.
pub(crate) const TRACEPARENT: &str = "traceparent";
pub(crate) const TRACESTATE: &str = "tracestate";
/// The header the X-Ray propagator writes.
const XRAY_HEADER: &str = "x-amzn-trace-id";

/// The producer span's context in the formats flowtrace writes.
#[derive(Debug, Clone)]
pub(crate) struct Carrier {
    /// `00-<trace id>-<span id>-<flags>`.
    pub(crate) traceparent: String,
    /// The W3C trace state, when non-empty.
    pub(crate) tracestate: Option<String>,
    /// `Root=1-<8 hex>-<24 hex>;Parent=<span id>;Sampled=<0|1>`.
    pub(crate) xray: String,
}

impl Carrier {
    /// The carrier for the span in `cx`, when it has a valid context: formatted by the W3C
    /// and X-Ray propagators (never by hand), injected into [`Fields`] rather than a map.
    pub(crate) fn from_context(cx: &Context) -> Option<Self> {
        if !cx.span().span_context().is_valid() {
            return None;
        }
        let mut fields = Fields::default();
        TraceContextPropagator::new().inject_context(cx, &mut fields);
        XrayPropagator::new().inject_context(cx, &mut fields);
        Some(Self {
            traceparent: fields.traceparent?,
            tracestate: fields.tracestate.filter(|state| !state.is_empty()),
            xray: fields.xray?,
        })
    }

    /// [`Carrier::from_context`] for a bare span context.
    #[cfg(test)]
    pub(crate) fn from_span_context(sc: &opentelemetry::trace::SpanContext) -> Option<Self> {
        Self::from_context(&Context::new().with_remote_span_context(sc.clone()))
    }

    /// The W3C fields, as (name, value).
    pub(crate) fn fields(&self) -> impl Iterator<Item = (&'static str, &str)> {
        std::iter::once((TRACEPARENT, self.traceparent.as_str()))
            .chain(self.tracestate.as_deref().map(|state| (TRACESTATE, state)))
    }

    /// Appends the W3C fields as a JSON object: `{"traceparent":"...","tracestate":"..."}`.
    pub(crate) fn write_json_object(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        out.push(b'{');
        for (index, (name, value)) in self.fields().enumerate() {
            if index > 0 {
                out.push(b',');
            }
            write_json_string(out, name)?;
            out.push(b':');
            write_json_string(out, value)?;
        }
        out.push(b'}');
        Ok(())
    }

    /// How many bytes [`Carrier::write_json_object`] appends, at most.
    fn json_object_len(&self) -> usize {
        // Braces, quotes, colons, comma; values are escaped by serde_json, which a W3C or
        // X-Ray value never needs, and the vector grows if one did.
        2 + self.fields().map(|(name, value)| name.len() + value.len() + 6).sum::<usize>()
    }
}

/// Appends `text` as a JSON string: as it is between quotes when it needs no escaping (W3C
/// and X-Ray values never do), else escaped by serde_json.
fn write_json_string(out: &mut Vec<u8>, text: &str) -> serde_json::Result<()> {
    if text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.reserve(text.len() + 2);
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
        Ok(())
    } else {
        serde_json::to_writer(out, text)
    }
}

/// What the propagators inject, kept as the three fields flowtrace writes (no map, no
/// lower-cased key copies).
#[derive(Debug, Default)]
struct Fields {
    traceparent: Option<String>,
    tracestate: Option<String>,
    xray: Option<String>,
}

impl Injector for Fields {
    fn set(&mut self, key: &str, value: String) {
        // The propagators write these names in lower case; any case is accepted.
        let is = |name: &str| key == name || key.eq_ignore_ascii_case(name);
        if is(TRACEPARENT) {
            self.traceparent = Some(value);
        } else if is(TRACESTATE) {
            self.tracestate = Some(value);
        } else if is(XRAY_HEADER) {
            self.xray = Some(value);
        }
    }
}

/// How many of the carrier's W3C fields ([`Carrier::fields`], in order) fit as message
/// attributes (SNS and SQS share the rules): both when they fit, else `traceparent` alone
/// (`tracestate` is optional), else none and why. `existing_count` and `size` describe the
/// message as the user built it.
pub(crate) fn attribute_fields_that_fit(
    carrier: &Carrier,
    existing_count: usize,
    size: usize,
    max_attributes: usize,
    max_message_bytes: usize,
) -> Result<usize, Skip> {
    let available = carrier.fields().count();
    let fits = |n: usize| {
        let added: usize =
            carrier.fields().take(n).map(|(name, value)| name.len() + "String".len() + value.len()).sum();
        existing_count + n <= max_attributes && size + added <= max_message_bytes
    };
    match [available, 1].into_iter().find(|n| fits(*n)) {
        Some(n) => Ok(n),
        None if existing_count + 1 > max_attributes => Err(Skip::TooManyAttributes),
        None => Err(Skip::TooLarge),
    }
}

/// Why no context was injected (recorded as a span event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Skip {
    /// The message would have more than 10 message attributes.
    TooManyAttributes,
    /// SNS `MessageStructure=json`: attributes would be dropped on delivery.
    MessageStructureJson,
    /// The payload is not a JSON object (binary, text, array...).
    NotJsonObject,
    /// The message, record, item, events or client context would pass the service's size limit.
    TooLarge,
    /// The user already set the field (or the reserved key) themselves.
    AlreadyPresent,
    /// The DynamoDB table is excluded by configuration.
    TableExcluded,
    /// The existing client context is not base64 JSON: it is left alone.
    UnreadableClientContext,
    /// The update expression could not be merged safely.
    UnmergeableExpression,
}

impl Skip {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Skip::TooManyAttributes => "too_many_attributes",
            Skip::MessageStructureJson => "message_structure_json",
            Skip::NotJsonObject => "not_json_object",
            Skip::TooLarge => "too_large",
            Skip::AlreadyPresent => "already_present",
            Skip::TableExcluded => "table_excluded",
            Skip::UnreadableClientContext => "unreadable_client_context",
            Skip::UnmergeableExpression => "unmergeable_update_expression",
        }
    }
}

/// Records on `span` that context was not injected into `entry` (a batch entry's id or
/// index; `None` for single-message calls), and why.
pub(crate) fn skipped(span: &SpanRef<'_>, reason: Skip, entry: Option<String>) {
    let mut attributes = Vec::with_capacity(2);
    attributes.push(KeyValue::new(attr::INJECTION_SKIPPED_REASON, reason.as_str()));
    if let Some(entry) = entry {
        attributes.push(KeyValue::new(attr::INJECTION_SKIPPED_ENTRY, entry));
    }
    span.add_event(attr::INJECTION_SKIPPED_EVENT, attributes);
}

/// The outcome of inserting the reserved key into JSON text.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum JsonInsert {
    /// The new text: the reserved member first, then the user's members, byte for byte.
    Inserted(Vec<u8>),
    /// Not a (valid) JSON object.
    NotObject,
    /// The object already has the reserved key at the top level.
    KeyPresent,
}

/// Inserts `"<key>":<carrier object>` as the first member of the JSON object `json`, leaving
/// every other byte as it was (no re-serialisation: key order, number forms and whitespace
/// stay the user's).
pub(crate) fn insert_reserved(json: &[u8], key: &str, carrier: &Carrier) -> JsonInsert {
    let Some(open) = json.iter().position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r')) else {
        return JsonInsert::NotObject;
    };
    if json.get(open) != Some(&b'{') {
        return JsonInsert::NotObject;
    }
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let Ok(scan) = TopLevel(key).deserialize(&mut deserializer) else {
        return JsonInsert::NotObject;
    };
    if deserializer.end().is_err() {
        return JsonInsert::NotObject;
    }
    if scan.has_key {
        return JsonInsert::KeyPresent;
    }
    // The reserved member, written straight into the new text (key escaped as JSON).
    let mut out = Vec::with_capacity(json.len() + key.len() + carrier.json_object_len() + 4);
    out.extend_from_slice(json.get(..=open).unwrap_or_default());
    if write_json_string(&mut out, key).is_err() {
        return JsonInsert::NotObject;
    }
    out.push(b':');
    if carrier.write_json_object(&mut out).is_err() {
        return JsonInsert::NotObject;
    }
    if scan.members > 0 {
        out.push(b',');
    }
    out.extend_from_slice(json.get(open + 1..).unwrap_or_default());
    JsonInsert::Inserted(out)
}

struct Scan {
    has_key: bool,
    members: usize,
}

/// Validates a JSON object, noting whether `0` is one of its top-level keys.
struct TopLevel<'k>(&'k str);

impl<'de> DeserializeSeed<'de> for TopLevel<'_> {
    type Value = Scan;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Scan, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TopLevel<'_> {
    type Value = Scan;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scan, A::Error> {
        let mut scan = Scan { has_key: false, members: 0 };
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            scan.members += 1;
            scan.has_key |= key == self.0;
            map.next_value::<IgnoredAny>()?;
        }
        Ok(scan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

    fn carrier() -> Carrier {
        let sc = SpanContext::new(
            TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap(),
            SpanId::from_hex("b7ad6b7169203331").unwrap(),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        );
        Carrier::from_span_context(&sc).unwrap()
    }

    #[test]
    fn carrier_formats() {
        let c = carrier();
        assert_eq!(c.traceparent, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
        assert_eq!(c.xray, "Root=1-0af76519-16cd43dd8448eb211c80319c;Parent=b7ad6b7169203331;Sampled=1");
        assert_eq!(c.tracestate, None);
        assert_eq!(c.fields().count(), 1);
    }

    #[test]
    fn carrier_with_trace_state() {
        let sc = SpanContext::new(
            TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap(),
            SpanId::from_hex("b7ad6b7169203331").unwrap(),
            TraceFlags::SAMPLED,
            false,
            TraceState::from_key_value([("vendor", "v1")]).unwrap(),
        );
        let c = Carrier::from_span_context(&sc).unwrap();
        assert_eq!(c.tracestate.as_deref(), Some("vendor=v1"));
        assert!(c.xray.starts_with("Root=1-0af76519-16cd43dd8448eb211c80319c;Parent=b7ad6b7169203331;Sampled=1"));
        assert_eq!(c.fields().count(), 2);
        let JsonInsert::Inserted(out) = insert_reserved(br#"{"a":1}"#, "_ft", &c) else { panic!("not inserted") };
        let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(value["_ft"]["traceparent"], c.traceparent.as_str());
        assert_eq!(value["_ft"]["tracestate"], "vendor=v1");
        assert_eq!(value["a"], 1);
    }

    #[test]
    fn json_strings_are_escaped_when_needed() {
        for text in ["plain", "", "a\"b\\c\n\u{1}", "é"] {
            let mut out = Vec::new();
            write_json_string(&mut out, text).unwrap();
            assert_eq!(out, serde_json::to_vec(text).unwrap(), "{text:?}");
        }
    }

    #[test]
    fn json_insertion_keeps_the_users_bytes() {
        let c = carrier();
        let JsonInsert::Inserted(out) = insert_reserved(br#" {"b": 1.50, "a": [1,2]} "#, "_ft", &c) else {
            panic!("not inserted")
        };
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text, format!(r#" {{"_ft":{{"traceparent":"{}"}},"b": 1.50, "a": [1,2]}} "#, c.traceparent));
        let JsonInsert::Inserted(empty) = insert_reserved(b"{}", "_ft", &c) else { panic!() };
        let value: serde_json::Value = serde_json::from_slice(&empty).unwrap();
        assert_eq!(value["_ft"]["traceparent"], c.traceparent.as_str());
        assert_eq!(insert_reserved(br#"{"_ft": 1}"#, "_ft", &c), JsonInsert::KeyPresent);
        assert!(
            matches!(insert_reserved(br#"{"a": {"_ft": 1}}"#, "_ft", &c), JsonInsert::Inserted(_)),
            "only top-level keys count"
        );
        for bad in [&b"[1]"[..], b"plain", b"{\"a\":", b"{} x", b"", b"\xff\xfe"] {
            assert_eq!(insert_reserved(bad, "_ft", &c), JsonInsert::NotObject, "{bad:?}");
        }
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
    use proptest::prelude::*;
    use serde_json::Value;

    fn carrier() -> Carrier {
        let sc = SpanContext::new(
            TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap(),
            SpanId::from_hex("b7ad6b7169203331").unwrap(),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        );
        Carrier::from_span_context(&sc).unwrap()
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            "[a-z _\"\\\\é]{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-z_]{1,6}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = insert_reserved(&bytes, "_flowtrace", &carrier());
        }

        #[test]
        fn objects_keep_every_member_and_gain_the_reserved_key(value in json_value(), pretty in any::<bool>()) {
            let text = if pretty { serde_json::to_vec_pretty(&value).unwrap() } else { serde_json::to_vec(&value).unwrap() };
            match (insert_reserved(&text, "_flowtrace", &carrier()), &value) {
                (JsonInsert::Inserted(out), Value::Object(original)) => {
                    let Value::Object(mut parsed) = serde_json::from_slice::<Value>(&out).unwrap() else {
                        panic!("not an object");
                    };
                    let reserved = parsed.remove("_flowtrace").unwrap();
                    let expected = carrier().traceparent;
                    prop_assert_eq!(reserved["traceparent"].as_str(), Some(expected.as_str()));
                    prop_assert_eq!(&parsed, original);
                }
                (JsonInsert::KeyPresent, Value::Object(original)) => prop_assert!(original.contains_key("_flowtrace")),
                (JsonInsert::NotObject, v) => prop_assert!(!v.is_object()),
                (outcome, v) => prop_assert!(false, "{outcome:?} for {v}"),
            }
        }
    }
}
