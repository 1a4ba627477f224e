//! A parse of the raw event that builds only what trigger detection reads.
//!
//! Building a full `serde_json::Value` of an event costs far more than detecting its
//! trigger: API Gateway events carry every header twice, an identity, an authorizer, query
//! strings and a body, and none of that but a handful of fields is ever looked at. This
//! parser walks the same JSON with the same `serde_json` deserializer, builds a `Value` for
//! the fields a parser reads, and only validates the rest.
//!
//! # Why `detect` gives the same answer on the pruned value
//!
//! The rules below (`Node::field`) come from an audit of every `.get`, index and carrier
//! lookup in `parse.rs`, `parse/*.rs` and `carrier.rs`:
//!
//! - an object is kept with only the keys some parser reads at that path, whichever parser
//!   runs (the rules for one path are the union over all parsers, so they do not depend on
//!   what the event turns out to be);
//! - a value read only through `.get(key)`, `is_object` or `as_object` (an object path)
//!   becomes `Null` when it is not an object, and one read only through `as_array` or
//!   `.get(index)` (an array path) becomes `Null` when it is not an array: every reader
//!   treats those the same as the original;
//! - every other kept value (what parsers read with `as_str`, `as_f64`, or hand to a carrier
//!   as a whole) is built in full;
//! - HTTP header maps keep only the entries named (ignoring ASCII case, as `HeaderCarrier`
//!   looks them up) like a header the HTTP parsers read or one of the propagator's
//!   [`fields`](TextMapPropagator::fields). Every entry that could answer such a lookup is
//!   kept, in its original order, so the exact-then-case-insensitive lookup finds the same
//!   value. The built-in propagators (W3C trace context, baggage, X-Ray) extract through
//!   `get` of their own fields only; a custom propagator that finds its context through
//!   `Extractor::keys`, or through a header it does not list in `fields`, would see fewer
//!   headers;
//! - the rules are a function of the path and the key alone, so duplicate keys come out as
//!   `serde_json` makes them: the last one wins.
//!
//! # Why it accepts and rejects the same input
//!
//! The body is checked for UTF-8 once, up front: JSON the full parse accepts is UTF-8
//! throughout (it checks every string, and anything else must be ASCII), and a body that is
//! not is handed to the full parse, to fail as it always did. Skipped values go through
//! `deserialize_any` like a `Value` does (not through the `IgnoredAny` path, which checks
//! neither lone surrogates, number ranges nor the recursion limit), so a body the full parse
//! rejects is rejected here too. The few shapes `serde_json` itself treats specially while
//! building a `Value` (its private arbitrary-precision number and raw-value map keys) make
//! this parser give up and parse the whole event instead.

use super::carrier::XRAY_HEADER;
use opentelemetry::propagation::TextMapPropagator;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::cell::Cell;
use std::fmt;
use std::sync::OnceLock;

/// Header names the HTTP parsers and the built-in propagators look up in `headers` and
/// `multiValueHeaders`.
const HEADERS_READ: [&str; 8] =
    ["host", "user-agent", "x-forwarded-proto", "x-forwarded-for", "traceparent", "tracestate", "baggage", XRAY_HEADER];

/// Map keys `serde_json` gives a meaning of its own when it builds a `Value` (with its
/// `raw_value` and `arbitrary_precision` features).
const SERDE_JSON_TOKENS: [&str; 2] = ["$serde_json::private::RawValue", "$serde_json::private::Number"];

/// Parses `body` into a `Value` that holds what trigger detection reads of it, and nothing
/// else. `detect` gives the same answer on it as on the full event, for the same reserved
/// key and propagator; it fails exactly when `serde_json::from_slice::<Value>` fails.
pub(crate) fn parse_for_detection(
    body: &[u8],
    reserved_key: &str,
    propagator: &dyn TextMapPropagator,
) -> serde_json::Result<Value> {
    // Checking the whole body once spares checking each string (see the module docs).
    let text = match std::str::from_utf8(body) {
        Ok(text) if !numbers_are_maps() => text,
        _ => return serde_json::from_slice(body),
    };
    let rules = Rules { reserved_key, propagator, needs_full_parse: Cell::new(false) };
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let pruned = Pruned { node: Node::Event, rules: &rules }
        .deserialize(&mut deserializer)
        .and_then(|value| deserializer.end().map(|()| value));
    if rules.needs_full_parse.get() {
        return serde_json::from_slice(body);
    }
    pruned
}

/// Whether `serde_json` hands (non-integer) numbers to visitors as maps: its
/// `arbitrary_precision` feature, which any crate in the build may turn on. Pruning would
/// give up at the first such number, so those builds parse the whole event straight away.
fn numbers_are_maps() -> bool {
    static ANSWER: OnceLock<bool> = OnceLock::new();
    *ANSWER.get_or_init(|| {
        let mut deserializer = serde_json::Deserializer::from_str("0.5");
        deserializer.deserialize_any(NumberProbe).unwrap_or(true)
    })
}

struct NumberProbe;

impl<'de> Visitor<'de> for NumberProbe {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number")
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<bool, A::Error> {
        Ok(true)
    }
}

/// What the rules depend on beside the path.
struct Rules<'a> {
    reserved_key: &'a str,
    propagator: &'a dyn TextMapPropagator,
    /// Set when the event holds a key `serde_json` treats specially.
    needs_full_parse: Cell<bool>,
}

impl Rules<'_> {
    /// Whether a `HeaderCarrier` lookup could ever ask for header `name`.
    fn reads_header(&self, name: &str) -> bool {
        HEADERS_READ.iter().any(|read| read.eq_ignore_ascii_case(name))
            || self.propagator.fields().any(|field| field.eq_ignore_ascii_case(name))
    }

    /// Checks a map key: a `serde_json` token means this parser cannot mirror the full parse.
    fn check_key<E: de::Error>(&self, key: &str) -> Result<(), E> {
        if SERDE_JSON_TOKENS.contains(&key) {
            self.needs_full_parse.set(true);
            return Err(E::custom("event needs a full parse"));
        }
        Ok(())
    }
}

/// Where a value sits in the event, which decides what of it is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    /// Read as a whole (a string, a number, or a map a carrier reads): built in full.
    Whole,
    /// The event itself.
    Event,
    /// `requestContext`.
    RequestContext,
    /// `requestContext.elb`.
    Elb,
    /// `requestContext.http`.
    Http,
    /// `requestContext.identity`.
    Identity,
    /// `headers` and `multiValueHeaders`.
    Headers,
    /// EventBridge `detail`: only the reserved key.
    Detail,
    /// EventBridge `resources`: only the first element (an array path).
    Resources,
    /// A Step Functions context object (`$$`, `context`, `Context`).
    StepFunctionsContext,
    /// `Execution` and `StateMachine`: their `Id`.
    IdHolder,
    /// `State`: its `Name`.
    NameHolder,
    /// `Records` (an array path): every element.
    Records,
    /// One element of `Records`.
    Record,
    /// SQS system `attributes`.
    SqsSystemAttributes,
    /// SQS `messageAttributes`: every name, as `SqsAttributeCarrier` lists them.
    SqsMessageAttributes,
    /// One SQS message attribute.
    SqsMessageAttribute,
    /// `Records[].Sns`.
    Sns,
    /// SNS `MessageAttributes`: every name, as `SnsAttributeCarrier` lists them.
    SnsMessageAttributes,
    /// One SNS message attribute.
    SnsMessageAttribute,
    /// `Records[].kinesis`.
    Kinesis,
    /// `Records[].dynamodb`.
    DynamoDb,
    /// `Records[].dynamodb.NewImage`: only the reserved key.
    NewImage,
    /// The reserved attribute of a `NewImage`.
    DynamoDbAttribute,
    /// A DynamoDB map attribute's `M`: every name, as `DynamoDbMapCarrier` lists them.
    DynamoDbMap,
    /// One value in a DynamoDB map attribute.
    DynamoDbMapValue,
    /// `Records[].s3`.
    S3,
    /// `Records[].s3.bucket`.
    S3Bucket,
    /// `Records[].s3.object`.
    S3Object,
    /// `Records[].responseElements`.
    ResponseElements,
}

impl Node {
    /// Whether the value here is read as an array.
    fn is_array(self) -> bool {
        matches!(self, Self::Records | Self::Resources)
    }

    /// What is built of the value under `key`, when this node is an object; `None` when no
    /// parser reads it.
    fn field(self, key: &str, rules: &Rules<'_>) -> Option<Self> {
        use Node::*;
        let whole_if = |read: bool| read.then_some(Whole);
        match self {
            Event => match key {
                "Records" => Some(Records),
                "requestContext" => Some(RequestContext),
                "headers" | "multiValueHeaders" => Some(Headers),
                "detail" => Some(Detail),
                "resources" => Some(Resources),
                "$$" | "context" | "Context" => Some(StepFunctionsContext),
                "Execution" | "StateMachine" => Some(IdHolder),
                "State" => Some(NameHolder),
                // HTTP: `methodArn` only for its presence.
                "version" | "httpMethod" | "methodArn" | "resource" | "path" | "routeKey" | "rawPath" => Some(Whole),
                // EventBridge.
                "detail-type" | "source" | "id" | "time" => Some(Whole),
                _ => None,
            },
            RequestContext => match key {
                "elb" => Some(Elb),
                "http" => Some(Http),
                "identity" => Some(Identity),
                "domainName" | "routeKey" | "requestId" | "apiId" | "stage" | "path" => Some(Whole),
                _ => None,
            },
            Elb => whole_if(key == "targetGroupArn"),
            Http => whole_if(matches!(key, "method" | "path" | "userAgent" | "sourceIp")),
            Identity => whole_if(matches!(key, "userAgent" | "sourceIp")),
            Headers => whole_if(rules.reads_header(key)),
            Detail => whole_if(key == rules.reserved_key),
            StepFunctionsContext => match key {
                "Execution" | "StateMachine" => Some(IdHolder),
                "State" => Some(NameHolder),
                _ => None,
            },
            IdHolder => whole_if(key == "Id"),
            NameHolder => whole_if(key == "Name"),
            Record => match key {
                "eventSource" | "EventSource" | "eventSourceARN" | "eventID" | "eventName" | "eventTime"
                | "tableName" | "messageId" | "body" => Some(Whole),
                "attributes" => Some(SqsSystemAttributes),
                "messageAttributes" => Some(SqsMessageAttributes),
                "Sns" => Some(Sns),
                "kinesis" => Some(Kinesis),
                "dynamodb" => Some(DynamoDb),
                "s3" => Some(S3),
                "responseElements" => Some(ResponseElements),
                _ => None,
            },
            SqsSystemAttributes => whole_if(key == "AWSTraceHeader"),
            SqsMessageAttributes => Some(SqsMessageAttribute),
            SqsMessageAttribute => whole_if(matches!(key, "dataType" | "stringValue")),
            Sns => match key {
                "TopicArn" | "MessageId" => Some(Whole),
                "MessageAttributes" => Some(SnsMessageAttributes),
                _ => None,
            },
            SnsMessageAttributes => Some(SnsMessageAttribute),
            SnsMessageAttribute => whole_if(matches!(key, "Type" | "Value")),
            Kinesis => whole_if(matches!(key, "data" | "sequenceNumber" | "partitionKey")),
            DynamoDb => match key {
                // `Keys` feeds the item-key hash that joins the hop without a context.
                "StreamViewType" | "ApproximateCreationDateTime" | "SequenceNumber" | "Keys" => Some(Whole),
                "NewImage" => Some(NewImage),
                _ => None,
            },
            NewImage => (key == rules.reserved_key).then_some(DynamoDbAttribute),
            DynamoDbAttribute => match key {
                "M" => Some(DynamoDbMap),
                "S" => Some(Whole),
                _ => None,
            },
            DynamoDbMap => Some(DynamoDbMapValue),
            DynamoDbMapValue => whole_if(key == "S"),
            S3 => match key {
                "bucket" => Some(S3Bucket),
                "object" => Some(S3Object),
                _ => None,
            },
            S3Bucket => whole_if(key == "name"),
            S3Object => whole_if(key == "key"),
            ResponseElements => whole_if(key == "x-amz-request-id"),
            Whole | Records | Resources => None,
        }
    }
}

/// Builds the pruned value of one node.
#[derive(Clone, Copy)]
struct Pruned<'r, 'a> {
    node: Node,
    rules: &'r Rules<'a>,
}

impl<'de> DeserializeSeed<'de> for Pruned<'_, '_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        if self.node == Node::Whole { Value::deserialize(deserializer) } else { deserializer.deserialize_any(self) }
    }
}

impl<'de> Visitor<'de> for Pruned<'_, '_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    // Scalars where an object or an array is read: every reader treats them as absent.
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        if self.node.is_array() {
            Skip(self.rules).visit_map(access)?;
            return Ok(Value::Null);
        }
        let mut map = Map::new();
        while let Some(field) = access.next_key_seed(FieldKey { node: self.node, rules: self.rules })? {
            match field {
                Some((key, node)) => {
                    let value = access.next_value_seed(Pruned { node, rules: self.rules })?;
                    map.insert(key, value);
                }
                None => access.next_value_seed(Skip(self.rules))?,
            }
        }
        Ok(Value::Object(map))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let rules = self.rules;
        match self.node {
            Node::Records => {
                let mut records = Vec::with_capacity(access.size_hint().unwrap_or(0));
                while let Some(record) = access.next_element_seed(Pruned { node: Node::Record, rules })? {
                    records.push(record);
                }
                Ok(Value::Array(records))
            }
            Node::Resources => {
                let Some(first) = access.next_element_seed(Pruned { node: Node::Whole, rules })? else {
                    return Ok(Value::Array(Vec::new()));
                };
                while access.next_element_seed(Skip(rules))?.is_some() {}
                Ok(Value::Array(vec![first]))
            }
            _ => {
                Skip(rules).visit_seq(access)?;
                Ok(Value::Null)
            }
        }
    }
}

/// A key of an object at `node`: the key and what to build of its value, or `None` to skip
/// the value.
struct FieldKey<'r, 'a> {
    node: Node,
    rules: &'r Rules<'a>,
}

impl<'de> DeserializeSeed<'de> for FieldKey<'_, '_> {
    type Value = Option<(String, Node)>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for FieldKey<'_, '_> {
    type Value = Option<(String, Node)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        self.rules.check_key(key)?;
        Ok(self.node.field(key, self.rules).map(|node| (key.to_owned(), node)))
    }
}

/// Validates a value the way building a `Value` would, and drops it.
#[derive(Clone, Copy)]
struct Skip<'r, 'a>(&'r Rules<'a>);

impl<'de> DeserializeSeed<'de> for Skip<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Skip<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<(), A::Error> {
        while access.next_key_seed(SkipKey(self.0))?.is_some() {
            access.next_value_seed(self)?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<(), A::Error> {
        while access.next_element_seed(self)?.is_some() {}
        Ok(())
    }
}

/// A key of a skipped object: validated, and checked for `serde_json`'s tokens.
struct SkipKey<'r, 'a>(&'r Rules<'a>);

impl<'de> DeserializeSeed<'de> for SkipKey<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for SkipKey<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<(), E> {
        self.0.check_key(key)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::trigger::{EventEnvelope, Trigger, detect};
    use opentelemetry::propagation::text_map_propagator::FieldIter;
    use opentelemetry::propagation::{Extractor, Injector, TextMapCompositePropagator};
    use opentelemetry_aws::trace::XrayPropagator;
    use opentelemetry_sdk::propagation::TraceContextPropagator;
    use serde_json::json;
    use std::collections::HashMap;

    const TRACEPARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    const OTHER_TRACEPARENT: &str = "00-11111111111111111111111111111111-2222222222222222-01";

    /// Every fixture's name and bytes.
    fn fixtures() -> Vec<(String, Vec<u8>)> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures");
        let mut fixtures: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
            .map(|path| (path.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&path).unwrap()))
            .collect();
        fixtures.sort();
        assert!(fixtures.len() >= 20, "fixtures missing from {dir}");
        fixtures
    }

    /// A propagator that reads a W3C `traceparent` from a header of another name, which it
    /// lists in `fields` (as a B3 or Jaeger propagator would list theirs).
    #[derive(Debug)]
    struct RenamedHeader(Vec<String>);

    impl TextMapPropagator for RenamedHeader {
        fn inject_context(&self, _: &opentelemetry::Context, _: &mut dyn Injector) {}

        fn extract_with_context(
            &self,
            cx: &opentelemetry::Context,
            extractor: &dyn Extractor,
        ) -> opentelemetry::Context {
            let Some(value) = extractor.get(&self.0[0]) else { return cx.clone() };
            let carrier = HashMap::from([("traceparent".to_owned(), value.to_owned())]);
            TraceContextPropagator::new().extract_with_context(cx, &carrier)
        }

        fn fields(&self) -> FieldIter<'_> {
            FieldIter::new(&self.0)
        }
    }

    fn propagators() -> Vec<(&'static str, Box<dyn TextMapPropagator>)> {
        vec![
            ("default", crate::propagation::default_propagator()),
            (
                "w3c-then-xray",
                Box::new(TextMapCompositePropagator::new(vec![
                    Box::new(TraceContextPropagator::new()),
                    Box::new(XrayPropagator::default()),
                ])),
            ),
            ("renamed-header", Box::new(RenamedHeader(vec!["X-Test-Parent".to_owned()]))),
        ]
    }

    /// Everything `detect` answers, in a form that compares whole.
    fn fingerprint(trigger: &Trigger) -> String {
        fn attributes(attributes: &[opentelemetry::KeyValue]) -> Vec<(String, String)> {
            let mut list: Vec<(String, String)> =
                attributes.iter().map(|kv| (kv.key.as_str().to_owned(), format!("{:?}", kv.value))).collect();
            list.sort();
            list
        }
        let records: Vec<String> = trigger
            .records
            .iter()
            .map(|record| {
                let parent = record.parent.as_ref().map(|sc| {
                    (sc.trace_id(), sc.span_id(), sc.trace_flags(), sc.is_remote(), sc.trace_state().header())
                });
                format!("{parent:?} {:?} {:?}", record.message_id, attributes(&record.attributes))
            })
            .collect();
        format!(
            "{:?} {:?} {:?} {:?} {records:#?}",
            trigger.source,
            trigger.span_kind,
            trigger.span_name,
            attributes(&trigger.attributes)
        )
    }

    /// Asserts that `body` parses (or fails) alike both ways and is described alike.
    #[track_caller]
    fn assert_same(
        name: &str,
        body: &[u8],
        custom: Option<&HashMap<String, String>>,
        reserved_key: &str,
        propagator: &dyn TextMapPropagator,
    ) -> Trigger {
        let full = serde_json::from_slice::<Value>(body);
        let pruned = parse_for_detection(body, reserved_key, propagator);
        assert_eq!(pruned.is_ok(), full.is_ok(), "{name}: pruned {pruned:?}, full {full:?}");
        let envelope = EventEnvelope { client_context_custom: custom, reserved_key };
        let full = detect(&full.unwrap_or(Value::Null), envelope, propagator);
        let pruned = detect(&pruned.unwrap_or(Value::Null), envelope, propagator);
        assert_eq!(
            fingerprint(&pruned),
            fingerprint(&full),
            "{name} (reserved key {reserved_key:?}, client context {custom:?})"
        );
        full
    }

    #[test]
    fn every_fixture_is_described_alike_pruned_and_full() {
        let with_context = HashMap::from([("traceparent".to_owned(), OTHER_TRACEPARENT.to_owned())]);
        let without_context = HashMap::from([("tenant".to_owned(), "a".to_owned())]);
        let mut parents_under_custom_key = 0;
        for (name, body) in fixtures() {
            // The default reserved key, and another one the fixture is rewritten to use.
            let renamed = String::from_utf8(body.clone()).unwrap().replace("\"_flowtrace\"", "\"x-trace\"");
            let cases: [(&[u8], &str); 4] = [
                (&body, flowtrace_contract::DEFAULT_RESERVED_KEY),
                (renamed.as_bytes(), "x-trace"),
                (&body, "x-trace"),
                (&body, ""),
            ];
            for (_, propagator) in propagators() {
                for (bytes, reserved_key) in cases {
                    for custom in [None, Some(&with_context), Some(&without_context)] {
                        let trigger = assert_same(&name, bytes, custom, reserved_key, propagator.as_ref());
                        if reserved_key == "x-trace"
                            && bytes.len() != body.len()
                            && custom.is_none()
                            && trigger.records.iter().any(|r| r.parent.is_some())
                        {
                            parents_under_custom_key += 1;
                        }
                    }
                }
            }
        }
        assert!(parents_under_custom_key >= 3, "the renamed fixtures carry context under the custom key");
    }

    #[test]
    fn a_header_the_propagator_lists_is_kept() {
        let event = json!({
            "version": "2.0",
            "routeKey": "GET /x",
            "rawPath": "/x",
            "headers": {"host": "example.com", "accept": "*/*"},
            "multiValueHeaders": {"x-test-parent": [TRACEPARENT]},
            "requestContext": {"http": {"method": "GET"}},
        });
        let body = serde_json::to_vec(&event).unwrap();
        let propagator = RenamedHeader(vec!["X-Test-Parent".to_owned()]);
        let trigger = assert_same("renamed header", &body, None, "_flowtrace", &propagator);
        let parent = trigger.records[0].parent.as_ref().expect("context from the renamed header");
        assert_eq!(parent.trace_id().to_string(), "0af7651916cd43dd8448eb211c80319c");
    }

    #[test]
    fn a_header_map_without_the_header_falls_back_to_the_multi_value_map() {
        // `headers` is an object, but the context is only in `multiValueHeaders`; and a later
        // duplicate `headers` (null) replaces an earlier one.
        for body in [
            format!(
                r#"{{"httpMethod":"GET","requestContext":{{}},"headers":{{"Host":"a"}},"multiValueHeaders":{{"traceparent":["{TRACEPARENT}"]}}}}"#
            ),
            format!(
                r#"{{"httpMethod":"GET","requestContext":{{}},"multiValueHeaders":{{"traceparent":["{TRACEPARENT}"]}},"headers":{{"traceparent":"{OTHER_TRACEPARENT}"}},"headers":null}}"#
            ),
        ] {
            let trigger = assert_same(
                "fallback",
                body.as_bytes(),
                None,
                "_flowtrace",
                crate::propagation::default_propagator().as_ref(),
            );
            let parent = trigger.records[0].parent.as_ref().expect("context from multiValueHeaders");
            assert_eq!(parent.trace_id().to_string(), "0af7651916cd43dd8448eb211c80319c");
        }
    }

    #[test]
    fn input_the_full_parse_rejects_is_rejected() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let hostile: Vec<Vec<u8>> = vec![
            br#"{"httpMethod":"GET","requestContext":{},"body":"\ud800"}"#.to_vec(),
            br#"{"httpMethod":"GET","requestContext":{},"body":"\udc00\ud800x"}"#.to_vec(),
            br#"{"httpMethod":"GET","requestContext":{},"skipped":1e400}"#.to_vec(),
            br#"{"httpMethod":"GET","requestContext":{},"skipped":-1e400}"#.to_vec(),
            br#"{"httpMethod":"GET","requestContext":{},"skipped":1e-400}"#.to_vec(),
            br#"{"httpMethod":"GET","requestContext":{},"skipped":100000000000000000000000000000}"#.to_vec(),
            format!(r#"{{"httpMethod":"GET","requestContext":{{}},"skipped":{deep}}}"#).into_bytes(),
            format!(r#"{{"httpMethod":"GET","requestContext":{{"authorizer":{deep}}}}}"#).into_bytes(),
            format!(r#"{{"Records":[{{"eventSource":"aws:sqs","md5OfBody":{deep}}}]}}"#).into_bytes(),
            b"{\"httpMethod\":\"GET\",\"requestContext\":{},\"body\":\"\xff\"}".to_vec(),
            b"{\"httpMethod\":\"GET\",\"requestContext\":{},\"body\":\"\x01\"}".to_vec(),
            b"{\"httpMethod\":\"GET\",\"requestContext\":{},\"\xc3\x28\":1}".to_vec(),
            br#"{"httpMethod":"GET","requestContext":{},"body":"\q"}"#.to_vec(),
            br#"{"httpMethod":"GET","requestContext":{}} x"#.to_vec(),
            br#"{"httpMethod":"GET","requestContext":{},}"#.to_vec(),
            br#"{"httpMethod":"GET","requestContext":{}"#.to_vec(),
            br#"{"$serde_json::private::RawValue":"{\"httpMethod\":\"GET\",\"requestContext\":{}}"}"#.to_vec(),
            br#"{"$serde_json::private::RawValue":"{}","a":1}"#.to_vec(),
            br#"{"httpMethod":"GET","requestContext":{"$serde_json::private::RawValue":"7"}}"#.to_vec(),
            br#"{"httpMethod":"GET","requestContext":{},"skipped":{"$serde_json::private::RawValue":"nope"}}"#.to_vec(),
            br#"{"httpMethod":"GET","requestContext":{},"skipped":{"$serde_json::private::Number":"1"}}"#.to_vec(),
            b"".to_vec(),
            b"null".to_vec(),
            b"[1, {\"requestContext\": {}}]".to_vec(),
            b"\"text\"".to_vec(),
            b"  {}  ".to_vec(),
        ];
        let propagator = crate::propagation::default_propagator();
        for body in hostile {
            assert_same(&String::from_utf8_lossy(&body), &body, None, "_flowtrace", propagator.as_ref());
        }
    }

    #[test]
    fn api_gateway_keeps_only_what_is_read() {
        if numbers_are_maps() {
            return; // such builds parse the whole event
        }
        let body = fixtures().into_iter().find(|(name, _)| name == "apigw-rest.json").unwrap().1;
        let pruned =
            parse_for_detection(&body, "_flowtrace", crate::propagation::default_propagator().as_ref()).unwrap();
        assert_eq!(
            pruned,
            json!({
                "resource": "/{proxy+}",
                "path": "/hello/world",
                "httpMethod": "POST",
                "headers": {
                    "Host": "gy415nuibc.execute-api.us-east-1.amazonaws.com",
                    "User-Agent": "PostmanRuntime/2.4.5",
                    "X-Forwarded-For": "54.240.196.186, 54.182.214.83",
                    "X-Forwarded-Proto": "https",
                },
                "multiValueHeaders": {
                    "Host": ["gy415nuibc.execute-api.us-east-1.amazonaws.com"],
                    "User-Agent": ["PostmanRuntime/2.4.5"],
                    "X-Forwarded-For": ["54.240.196.186, 54.182.214.83"],
                    "X-Forwarded-Proto": ["https"],
                },
                "requestContext": {
                    "path": "/hello/world",
                    "stage": "testStage",
                    "domainName": "gy415nuibc.execute-api.us-east-2.amazonaws.com",
                    "requestId": "deef4878-7910-11e6-8f14-25afc3e9ae33",
                    "identity": {"sourceIp": "192.168.196.186", "userAgent": "PostmanRuntime/2.4.5"},
                    "apiId": "gy415nuibc",
                },
            })
        );
    }

    #[test]
    fn the_number_probe_sees_arbitrary_precision() {
        // With `arbitrary_precision`, numbers keep their text.
        let keeps_text = serde_json::from_str::<Value>("1.10").unwrap().to_string().as_str() == "1.10";
        assert_eq!(numbers_are_maps(), keeps_text);
    }
}
