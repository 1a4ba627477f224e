//! Property tests for trigger parsing: `detect` never panics, whatever the event, and always
//! answers with a well-formed `Trigger`.
//!
//! Two generators: arbitrary JSON biased towards the keys and values the parsers look for,
//! and the real fixtures under `tests/fixtures/` with random parts replaced or removed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine as _;
use flowtrace::trigger::{EventEnvelope, Trigger, detect};
use opentelemetry::propagation::TextMapCompositePropagator;
use opentelemetry_aws::trace::XrayPropagator;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::OnceLock;

const TRACEPARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
const XRAY: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";

/// Every fixture, by name.
fn fixtures() -> &'static [(String, Value)] {
    static FIXTURES: OnceLock<Vec<(String, Value)>> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures");
        let mut fixtures: Vec<(String, Value)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
            .map(|path| {
                let text = std::fs::read_to_string(&path).unwrap();
                (path.file_name().unwrap().to_string_lossy().into_owned(), serde_json::from_str(&text).unwrap())
            })
            .collect();
        fixtures.sort_by(|a, b| a.0.cmp(&b.0));
        assert!(fixtures.len() >= 20, "fixtures missing from {dir}");
        fixtures
    })
}

fn propagator() -> TextMapCompositePropagator {
    TextMapCompositePropagator::new(vec![Box::new(TraceContextPropagator::new()), Box::new(XrayPropagator::default())])
}

/// Keys the parsers read, plus noise.
fn key() -> impl Strategy<Value = String> {
    const KEYS: &[&str] = &[
        "Records",
        "eventSource",
        "EventSource",
        "eventSourceARN",
        "eventID",
        "eventName",
        "messageId",
        "body",
        "messageAttributes",
        "attributes",
        "AWSTraceHeader",
        "stringValue",
        "dataType",
        "Sns",
        "MessageAttributes",
        "MessageId",
        "TopicArn",
        "Type",
        "Value",
        "kinesis",
        "data",
        "sequenceNumber",
        "partitionKey",
        "dynamodb",
        "NewImage",
        "SequenceNumber",
        "StreamViewType",
        "ApproximateCreationDateTime",
        "M",
        "S",
        "_flowtrace",
        "s3",
        "bucket",
        "object",
        "name",
        "key",
        "responseElements",
        "x-amz-request-id",
        "eventTime",
        "requestContext",
        "http",
        "elb",
        "method",
        "version",
        "routeKey",
        "httpMethod",
        "resource",
        "path",
        "rawPath",
        "headers",
        "multiValueHeaders",
        "traceparent",
        "tracestate",
        "x-amzn-trace-id",
        "Host",
        "User-Agent",
        "domainName",
        "requestId",
        "identity",
        "sourceIp",
        "detail-type",
        "source",
        "detail",
        "id",
        "resources",
        "time",
        "Execution",
        "Id",
        "State",
        "Name",
        "StateMachine",
        "$$",
        "context",
        "methodArn",
    ];
    prop_oneof![4 => proptest::sample::select(KEYS).prop_map(str::to_owned), 1 => "[ -~]{0,12}"]
}

/// String values the parsers branch on, plus noise.
fn string_value() -> impl Strategy<Value = String> {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let values: Vec<String> = vec![
        "aws:sqs".into(),
        "aws:sns".into(),
        "aws:kinesis".into(),
        "aws:dynamodb".into(),
        "aws:s3".into(),
        "2.0".into(),
        "$default".into(),
        "GET /posts/{id}".into(),
        "GET".into(),
        "Notification".into(),
        "Scheduled Event".into(),
        "aws.events".into(),
        "String".into(),
        "Binary".into(),
        "INSERT".into(),
        "ObjectCreated:Put".into(),
        "shardId-000000000000:4956".into(),
        "arn:aws:sqs:us-east-1:123456789012:q".into(),
        "arn:aws:kinesis:us-east-1:123456789012:stream/s".into(),
        "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/x".into(),
        "arn:aws:states:us-east-1:123456789012:execution:m:e".into(),
        "x.lambda-url.us-east-1.on.aws".into(),
        TRACEPARENT.into(),
        XRAY.into(),
        "Root=1-5759e988-bd862e3fe1be46a994272793".into(),
        json!({"_flowtrace": {"traceparent": TRACEPARENT}}).to_string(),
        json!({"Type": "Notification", "TopicArn": "arn:aws:sns:us-east-1:1:t", "MessageAttributes": {"traceparent": {"Type": "String", "Value": TRACEPARENT}}}).to_string(),
        b64(&json!({"_flowtrace": {"traceparent": TRACEPARENT}}).to_string()),
        b64(&json!({"_flowtrace": TRACEPARENT}).to_string()),
        b64("{\"_flowtrace\": {\"traceparent\": 5}"),
        "{".into(),
        "e30".into(),
        String::new(),
    ];
    prop_oneof![3 => proptest::sample::select(values), 1 => any::<String>(), 1 => "[A-Za-z0-9+/=]{0,40}"]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        string_value().prop_map(Value::String),
    ]
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(6, 96, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..8)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// JSON pointers to every node of `value`.
fn pointers(value: &Value, prefix: &str, out: &mut Vec<String>) {
    out.push(prefix.to_owned());
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let escaped = key.replace('~', "~0").replace('/', "~1");
                pointers(child, &format!("{prefix}/{escaped}"), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                pointers(child, &format!("{prefix}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Replace(Index, Value),
    Remove(Index),
    Duplicate(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<Index>(), arbitrary_json()).prop_map(|(i, v)| Mutation::Replace(i, v)),
        1 => any::<Index>().prop_map(Mutation::Remove),
        1 => any::<Index>().prop_map(Mutation::Duplicate),
    ]
}

fn apply(event: &mut Value, mutation: &Mutation) {
    let mut all = Vec::new();
    pointers(event, "", &mut all);
    let (Mutation::Replace(index, _) | Mutation::Remove(index) | Mutation::Duplicate(index)) = mutation;
    let pointer = index.get(&all).clone();
    match mutation {
        Mutation::Replace(_, value) => {
            if let Some(node) = event.pointer_mut(&pointer) {
                *node = value.clone();
            }
        }
        Mutation::Remove(_) => {
            let Some((parent, last)) = pointer.rsplit_once('/') else { return };
            let last = last.replace("~1", "/").replace("~0", "~");
            match event.pointer_mut(parent) {
                Some(Value::Object(map)) => {
                    map.remove(&last);
                }
                Some(Value::Array(items)) => {
                    if let Ok(i) = last.parse::<usize>()
                        && i < items.len()
                    {
                        items.remove(i);
                    }
                }
                _ => {}
            }
        }
        Mutation::Duplicate(_) => {
            // Grow arrays (batches) by repeating an element.
            if let Some(Value::Array(items)) = event.pointer_mut(&pointer)
                && let Some(first) = items.first().cloned()
            {
                items.push(first);
            }
        }
    }
}

/// What holds for every answer.
fn check(trigger: &Trigger) -> Result<(), TestCaseError> {
    let faas_trigger = trigger.attributes.iter().find(|kv| kv.key.as_str() == "faas.trigger");
    prop_assert_eq!(faas_trigger.map(|kv| kv.value.as_str().into_owned()), Some(trigger.faas_trigger().to_owned()));
    let has_source_attribute =
        trigger.attributes.iter().any(|kv| kv.key.as_str() == flowtrace_contract::attr::TRIGGER_SOURCE);
    prop_assert_eq!(has_source_attribute, trigger.source.is_some());
    let mut keys: Vec<&str> = trigger.attributes.iter().map(|kv| kv.key.as_str()).collect();
    keys.sort_unstable();
    let count = keys.len();
    keys.dedup();
    prop_assert_eq!(count, keys.len(), "duplicate attribute keys: {:?}", trigger.attributes);
    for wrapper_key in [flowtrace_contract::attr::PARENT_ORIGIN, flowtrace_contract::attr::RECORDS_WITHOUT_CONTEXT] {
        prop_assert!(!keys.contains(&wrapper_key), "{} is the wrapper's to set", wrapper_key);
    }
    for record in &trigger.records {
        if let Some(parent) = &record.parent {
            prop_assert!(parent.is_valid() && parent.is_remote());
        }
        if let Some(id) = &record.message_id {
            prop_assert!(
                record
                    .attributes
                    .iter()
                    .any(|kv| kv.key.as_str() == "messaging.message.id" && kv.value.as_str() == id.as_str())
            );
        }
    }
    let (parent, links) = trigger.parent_and_links();
    prop_assert!(parent.is_none() || links.is_empty());
    Ok(())
}

fn client_context() -> impl Strategy<Value = Option<HashMap<String, String>>> {
    prop::option::of(prop::collection::hash_map(
        prop_oneof![Just("traceparent".to_owned()), Just("X-Amzn-Trace-Id".to_owned()), "[a-z]{1,8}"],
        string_value(),
        0..4,
    ))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn detect_never_panics_on_arbitrary_json(event in arbitrary_json(), custom in client_context(), reserved in prop_oneof![Just("_flowtrace"), Just(""), Just("traceparent")]) {
        let envelope = EventEnvelope { client_context_custom: custom.as_ref(), reserved_key: reserved };
        check(&detect(&event, envelope, &propagator()))?;
    }

    #[test]
    fn detect_never_panics_on_records_of_any_shape(source in string_value(), records in prop::collection::vec(arbitrary_json(), 0..4)) {
        let records: Vec<Value> = records
            .into_iter()
            .map(|record| match record {
                Value::Object(mut map) => {
                    map.insert("eventSource".to_owned(), json!(source));
                    map.insert("EventSource".to_owned(), json!(source));
                    Value::Object(map)
                }
                other => other,
            })
            .collect();
        let event = json!({ "Records": records });
        let envelope = EventEnvelope { client_context_custom: None, reserved_key: "_flowtrace" };
        check(&detect(&event, envelope, &propagator()))?;
    }

    #[test]
    fn detect_never_panics_on_mutated_fixtures(which in any::<Index>(), mutations in prop::collection::vec(mutation(), 1..6)) {
        let (name, fixture) = which.get(fixtures());
        let mut event = fixture.clone();
        for mutation in &mutations {
            apply(&mut event, mutation);
        }
        let envelope = EventEnvelope { client_context_custom: None, reserved_key: "_flowtrace" };
        let trigger = detect(&event, envelope, &propagator());
        check(&trigger).map_err(|e| TestCaseError::fail(format!("{name}: {e}")))?;
    }
}

#[test]
fn every_fixture_is_recognised_except_the_plain_direct_invoke() {
    let envelope = EventEnvelope { client_context_custom: None, reserved_key: "_flowtrace" };
    for (name, event) in fixtures() {
        let trigger = detect(event, envelope, &propagator());
        assert_eq!(trigger.source.is_none(), name == "direct-invoke.json", "{name}: {trigger:?}");
    }
}
