//! Property tests for trigger parsing: `detect` never panics, whatever the event, and always
//! answers with a well-formed `Trigger`; and the pruned parse the wrapper uses describes every
//! event exactly as the full parse does.
//!
//! Two generators: arbitrary JSON biased towards the keys and values the parsers look for,
//! and the real fixtures under `tests/fixtures/` with random parts replaced or removed. For
//! the pruned parse, both are rendered as JSON text with keys in random order, duplicated
//! keys, hostile values and corrupted bytes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine as _;
use flowtrace::invocation::{parse_for_detection, plan};
use flowtrace::trigger::{EventEnvelope, Trigger, detect};
use opentelemetry::propagation::TextMapCompositePropagator;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry_aws::trace::XrayPropagator;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::SystemTime;

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

// ---------------------------------------------------------------------------------------
// The pruned parse (`invocation::parse_for_detection`) against the full one.

/// Everything `detect` answers, in a form that compares whole: source, kind, name, the
/// attributes as a sorted list, and every record's parent, message id and attributes.
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
            let parent = record
                .parent
                .as_ref()
                .map(|sc| (sc.trace_id(), sc.span_id(), sc.trace_flags(), sc.is_remote(), sc.trace_state().header()));
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

/// A small deterministic generator, seeded by proptest, for the rendering choices.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        if n == 0 { 0 } else { (x % n as u64) as usize }
    }
}

/// Values `serde_json` rejects, or treats specially, while the JSON around them is fine.
fn hostile() -> Vec<Vec<u8>> {
    vec![
        br#""\ud800""#.to_vec(),
        br#""\udc00x""#.to_vec(),
        b"1e400".to_vec(),
        b"-123456789012345678901234567890e300".to_vec(),
        format!("{}1{}", "[".repeat(130), "]".repeat(130)).into_bytes(),
        format!("{}{}", "{\"a\":".repeat(129), "}".repeat(129)).into_bytes(),
        b"\"\xff\xfe\"".to_vec(),
        b"\"tab\there\"".to_vec(),
        br#"{"$serde_json::private::RawValue":"{\"httpMethod\":\"GET\",\"requestContext\":{}}"}"#.to_vec(),
        br#"{"$serde_json::private::RawValue":"[1]","more":1}"#.to_vec(),
        br#"{"$serde_json::private::Number":"12"}"#.to_vec(),
        b"18446744073709551616".to_vec(),
        b"-0.0e-400".to_vec(),
    ]
}

/// Renders `value` as JSON text: object keys shuffled, sometimes a key duplicated (before
/// or after the original, with another value), and with `hostile` set, sometimes a hostile
/// value in place of one.
fn render(value: &Value, rng: &mut Rng, hostile_values: &[Vec<u8>], out: &mut Vec<u8>) {
    if !hostile_values.is_empty() && rng.below(48) == 0 {
        out.extend_from_slice(&hostile_values[rng.below(hostile_values.len())]);
        return;
    }
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&str, Option<&Value>)> = map.iter().map(|(k, v)| (k.as_str(), Some(v))).collect();
            for i in (1..entries.len()).rev() {
                entries.swap(i, rng.below(i + 1));
            }
            if !entries.is_empty() && rng.below(3) == 0 {
                let key = entries[rng.below(entries.len())].0;
                entries.insert(rng.below(entries.len() + 1), (key, None));
            }
            let decoys = [Value::Null, json!({}), json!([]), json!("x"), json!(7)];
            out.push(b'{');
            for (i, (key, value)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend(serde_json::to_vec(key).unwrap());
                out.push(b':');
                match value {
                    Some(value) => render(value, rng, hostile_values, out),
                    None => {
                        // Another entry's value (`headers` where `multiValueHeaders` was, say),
                        // or a decoy.
                        let others: Vec<&Value> = map.values().collect();
                        let pick = rng.below(others.len() + decoys.len());
                        let decoy = others.get(pick).copied().unwrap_or_else(|| &decoys[pick - others.len()]);
                        render(decoy, rng, hostile_values, out);
                    }
                }
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                render(item, rng, hostile_values, out);
            }
            out.push(b']');
        }
        scalar => out.extend(serde_json::to_vec(scalar).unwrap()),
    }
}

/// `value` as text, reordered and with duplicates; a few in eight also hostile, a few in
/// sixteen cut short or with one byte changed.
fn text(value: &Value, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed | 1);
    let hostile_values = if rng.below(8) < 3 { hostile() } else { Vec::new() };
    let mut out = Vec::new();
    render(value, &mut rng, &hostile_values, &mut out);
    match rng.below(16) {
        0 if !out.is_empty() => out.truncate(rng.below(out.len())),
        1 if !out.is_empty() => {
            const BYTES: &[u8] = b"{}[]\",:\\ 0e-tn\x80";
            let at = rng.below(out.len());
            out[at] = BYTES[rng.below(BYTES.len())];
        }
        _ => {}
    }
    out
}

/// The pruned parse accepts exactly what the full parse accepts, and `detect` describes both
/// alike.
fn check_pruned(
    bytes: &[u8],
    custom: Option<&HashMap<String, String>>,
    reserved_key: &str,
    propagator: &dyn TextMapPropagator,
) -> Result<(), TestCaseError> {
    let full = serde_json::from_slice::<Value>(bytes);
    let pruned = parse_for_detection(bytes, reserved_key, propagator);
    prop_assert_eq!(pruned.is_ok(), full.is_ok(), "pruned: {:?}, full: {:?}", pruned, full);
    let envelope = EventEnvelope { client_context_custom: custom, reserved_key };
    let full = detect(&full.unwrap_or(Value::Null), envelope, propagator);
    let pruned = detect(&pruned.unwrap_or(Value::Null), envelope, propagator);
    prop_assert_eq!(fingerprint(&pruned), fingerprint(&full));
    Ok(())
}

/// The whole plan (span, parent, links) is the same with and without the full event.
fn check_plan(
    bytes: &[u8],
    custom: Option<&HashMap<String, String>>,
    reserved_key: &str,
    propagator: &dyn TextMapPropagator,
) -> Result<(), TestCaseError> {
    let mut context = lambda_runtime::Context::default();
    context.request_id = "r-1".into();
    context.invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:orders".into();
    context.client_context = custom.and_then(|custom| serde_json::from_value(json!({ "custom": custom })).ok());
    let config = flowtrace::Config { reserved_key: reserved_key.to_owned(), ..flowtrace::Config::default() };
    let now = SystemTime::now();
    let pruned = plan(bytes, &context, &config, propagator, true, now, false);
    let full = plan(bytes, &context, &config, propagator, true, now, true);
    prop_assert!(pruned.event.is_null());
    prop_assert_eq!(&full.event, &serde_json::from_slice::<Value>(bytes).unwrap_or(Value::Null));
    prop_assert_eq!(pruned.to_json(), full.to_json());
    prop_assert_eq!(fingerprint(&pruned.trigger), fingerprint(&full.trigger));
    Ok(())
}

fn any_propagator(default: bool) -> Box<dyn TextMapPropagator> {
    if default { flowtrace::propagation::default_propagator() } else { Box::new(propagator()) }
}

fn reserved_key() -> impl Strategy<Value = &'static str> {
    prop_oneof![3 => Just("_flowtrace"), 1 => Just(""), 1 => Just("traceparent"), 1 => Just("x-trace")]
}

/// Client contexts as `client_context`, plus one that carries a context.
fn any_client_context() -> impl Strategy<Value = Option<HashMap<String, String>>> {
    prop_oneof![
        3 => client_context(),
        1 => Just(Some(HashMap::from([("traceparent".to_owned(), TRACEPARENT.to_owned())]))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn pruned_parse_agrees_on_arbitrary_json(
        event in arbitrary_json(),
        seed in any::<u64>(),
        custom in any_client_context(),
        reserved in reserved_key(),
        default_propagator in any::<bool>(),
    ) {
        let bytes = text(&event, seed);
        check_pruned(&bytes, custom.as_ref(), reserved, any_propagator(default_propagator).as_ref())?;
    }

    #[test]
    fn pruned_parse_agrees_on_records_of_any_shape(
        source in string_value(),
        records in prop::collection::vec(arbitrary_json(), 0..4),
        seed in any::<u64>(),
        reserved in reserved_key(),
    ) {
        let records: Vec<Value> = records
            .into_iter()
            .map(|record| match record {
                Value::Object(mut map) => {
                    map.insert("eventSource".to_owned(), json!(source));
                    Value::Object(map)
                }
                other => other,
            })
            .collect();
        let bytes = text(&json!({ "Records": records }), seed);
        check_pruned(&bytes, None, reserved, &propagator())?;
    }

    #[test]
    fn pruned_parse_agrees_on_mutated_fixtures(
        which in any::<Index>(),
        mutations in prop::collection::vec(mutation(), 0..6),
        seed in any::<u64>(),
        custom in any_client_context(),
        reserved in reserved_key(),
        default_propagator in any::<bool>(),
    ) {
        let (name, fixture) = which.get(fixtures());
        let mut event = fixture.clone();
        for mutation in &mutations {
            apply(&mut event, mutation);
        }
        // The fixtures carry context under the default key; move it under the one in use.
        let mut bytes = text(&event, seed);
        if !reserved.is_empty() {
            bytes = String::from_utf8_lossy(&bytes).replace("\"_flowtrace\"", &format!("{reserved:?}")).into_bytes();
        }
        let propagator = any_propagator(default_propagator);
        check_pruned(&bytes, custom.as_ref(), reserved, propagator.as_ref())
            .map_err(|e| TestCaseError::fail(format!("{name}: {e}\n{}", String::from_utf8_lossy(&bytes))))?;
        check_plan(&bytes, custom.as_ref(), reserved, propagator.as_ref())
            .map_err(|e| TestCaseError::fail(format!("{name} (plan): {e}\n{}", String::from_utf8_lossy(&bytes))))?;
    }
}
