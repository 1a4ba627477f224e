//! Unit tests for trigger parsing: one real-event fixture per source and variant, from
//! `tests/fixtures/`, and hostile variants built from them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use flowtrace_contract::attr;
use opentelemetry::propagation::TextMapCompositePropagator;
use opentelemetry_aws::trace::XrayPropagator;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_semantic_conventions::attribute as semconv;
use serde_json::json;

// ---------------------------------------------------------------------------------------
// Helpers

/// Loads `tests/fixtures/<name>` from the workspace root.
fn fixture(name: &str) -> Value {
    let path = format!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/{}"), name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// W3C first, then X-Ray, as the brief's test set-up says: with this order a composite
/// lets X-Ray override W3C, which `detect` must not let happen.
fn propagator() -> TextMapCompositePropagator {
    TextMapCompositePropagator::new(vec![Box::new(TraceContextPropagator::new()), Box::new(XrayPropagator::default())])
}

/// The reverse order, which the default `OTEL_PROPAGATORS` set-up uses.
fn propagator_xray_first() -> TextMapCompositePropagator {
    TextMapCompositePropagator::new(vec![Box::new(XrayPropagator::default()), Box::new(TraceContextPropagator::new())])
}

const RESERVED: &str = flowtrace_contract::DEFAULT_RESERVED_KEY;

fn envelope() -> EventEnvelope<'static> {
    EventEnvelope { client_context_custom: None, reserved_key: RESERVED }
}

fn run(event: &Value) -> Trigger {
    detect(event, envelope(), &propagator())
}

fn run_with_client_context(event: &Value, custom: &HashMap<String, String>) -> Trigger {
    detect(event, EventEnvelope { client_context_custom: Some(custom), reserved_key: RESERVED }, &propagator())
}

fn find<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a opentelemetry::Value> {
    attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| &kv.value)
}

fn get_str(attributes: &[KeyValue], key: &str) -> Option<String> {
    find(attributes, key).map(|value| value.as_str().into_owned())
}

#[track_caller]
fn assert_attr(attributes: &[KeyValue], key: &str, expected: &str) {
    assert_eq!(get_str(attributes, key).as_deref(), Some(expected), "attribute {key} in {attributes:#?}");
}

#[track_caller]
fn assert_no_attr(attributes: &[KeyValue], key: &str) {
    assert!(find(attributes, key).is_none(), "attribute {key} should be absent from {attributes:#?}");
}

#[track_caller]
fn assert_attr_i64(attributes: &[KeyValue], key: &str, expected: i64) {
    assert_eq!(find(attributes, key), Some(&opentelemetry::Value::I64(expected)), "attribute {key} in {attributes:#?}");
}

#[track_caller]
fn assert_attr_bool(attributes: &[KeyValue], key: &str, expected: bool) {
    assert_eq!(
        find(attributes, key),
        Some(&opentelemetry::Value::Bool(expected)),
        "attribute {key} in {attributes:#?}"
    );
}

/// `faas.trigger` and `flowtrace.trigger.source` are always there.
#[track_caller]
fn assert_source(trigger: &Trigger, source: TriggerSource) {
    assert_eq!(trigger.source, Some(source));
    assert_attr(&trigger.attributes, semconv::FAAS_TRIGGER, source.faas_trigger());
    assert_attr(&trigger.attributes, attr::TRIGGER_SOURCE, source.as_str());
}

/// Every attribute key appears once.
#[track_caller]
fn assert_unique_keys(trigger: &Trigger) {
    let mut keys: Vec<&str> = trigger.attributes.iter().map(|kv| kv.key.as_str()).collect();
    keys.sort_unstable();
    let before = keys.len();
    keys.dedup();
    assert_eq!(before, keys.len(), "duplicate attribute keys in {:#?}", trigger.attributes);
}

fn ids(span_context: &SpanContext) -> (String, String) {
    (span_context.trace_id().to_string(), span_context.span_id().to_string())
}

#[track_caller]
fn assert_parent(record: &RecordContext, trace_id: &str, span_id: &str) {
    let parent = record.parent.as_ref().unwrap_or_else(|| panic!("no parent in {record:#?}"));
    assert_eq!(ids(parent), (trace_id.to_owned(), span_id.to_owned()));
    assert!(parent.is_remote());
}

/// The single parent `parent_and_links` picks.
#[track_caller]
fn only_parent(trigger: &Trigger) -> (String, String) {
    let (parent, links) = trigger.parent_and_links();
    assert!(links.is_empty(), "unexpected links {links:#?}");
    ids(&parent.unwrap_or_else(|| panic!("no parent for {trigger:#?}")))
}

const TRACE_A: &str = "0af7651916cd43dd8448eb211c80319c";
const SPAN_A: &str = "b7ad6b7169203331";
const TP_A: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
const TRACE_B: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN_B: &str = "00f067aa0ba902b7";
const TP_B: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const TRACE_C: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90";
const SPAN_C: &str = "1a2b3c4d5e6f7081";
const TP_C: &str = "00-a1b2c3d4e5f60718293a4b5c6d7e8f90-1a2b3c4d5e6f7081-01";
const TRACESTATE: &str = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7";
const XRAY: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
const XRAY_TRACE: &str = "5759e988bd862e3fe1be46a994272793";
const XRAY_SPAN: &str = "53995c3f42cd8ad8";

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

// ---------------------------------------------------------------------------------------
// API Gateway REST (payload 1.0)

#[test]
fn apigw_rest_is_detected_with_route_and_http_attributes() {
    let trigger = run(&fixture("apigw-rest.json"));
    assert_source(&trigger, TriggerSource::ApiGatewayRest);
    assert_eq!(trigger.span_kind, SpanKind::Server);
    assert_eq!(trigger.span_name.as_deref(), Some("POST /{proxy+}"));
    let a = &trigger.attributes;
    assert_attr(a, semconv::FAAS_TRIGGER, "http");
    assert_attr(a, semconv::HTTP_REQUEST_METHOD, "POST");
    assert_attr(a, semconv::HTTP_ROUTE, "/{proxy+}");
    assert_attr(a, semconv::URL_PATH, "/hello/world");
    assert_attr(a, semconv::URL_SCHEME, "https");
    assert_attr(a, semconv::SERVER_ADDRESS, "gy415nuibc.execute-api.us-east-1.amazonaws.com");
    assert_attr(a, semconv::USER_AGENT_ORIGINAL, "PostmanRuntime/2.4.5");
    assert_attr(a, semconv::CLIENT_ADDRESS, "192.168.196.186");
    assert_attr(a, attr::APIGW_API_ID, "gy415nuibc");
    assert_attr(a, attr::APIGW_STAGE, "testStage");
    assert_attr(a, attr::APIGW_REQUEST_ID, "deef4878-7910-11e6-8f14-25afc3e9ae33");
    assert_no_attr(a, "url.query");
    assert_no_attr(a, attr::PARENT_ORIGIN);
    assert_unique_keys(&trigger);
    assert_eq!(trigger.records.len(), 1);
    assert_eq!(trigger.records[0].message_id.as_deref(), Some("deef4878-7910-11e6-8f14-25afc3e9ae33"));
    assert_attr(&trigger.records[0].attributes, semconv::MESSAGING_MESSAGE_ID, "deef4878-7910-11e6-8f14-25afc3e9ae33");
    assert!(trigger.records[0].parent.is_none());
    let (parent, links) = trigger.parent_and_links();
    assert!(parent.is_none() && links.is_empty());
}

#[test]
fn apigw_rest_traceparent_header_is_the_parent_with_its_tracestate() {
    let trigger = run(&fixture("apigw-rest-traceparent.json"));
    assert_source(&trigger, TriggerSource::ApiGatewayRest);
    assert_parent(&trigger.records[0], TRACE_A, SPAN_A);
    let parent = trigger.records[0].parent.as_ref().unwrap();
    assert!(parent.is_sampled());
    assert_eq!(parent.trace_state().header(), TRACESTATE);
    assert_eq!(only_parent(&trigger), (TRACE_A.to_owned(), SPAN_A.to_owned()));
}

#[test]
fn apigw_rest_headers_are_case_insensitive() {
    let mut event = fixture("apigw-rest.json");
    event["headers"]["TraceParent"] = json!(TP_B);
    let trigger = run(&event);
    assert_parent(&trigger.records[0], TRACE_B, SPAN_B);
}

#[test]
fn apigw_rest_multi_value_headers_alone_carry_context() {
    let mut event = fixture("apigw-rest-traceparent.json");
    event.as_object_mut().unwrap().remove("headers");
    let trigger = run(&event);
    assert_parent(&trigger.records[0], TRACE_A, SPAN_A);
    // Host and User-Agent also come from multiValueHeaders.
    assert_attr(&trigger.attributes, semconv::SERVER_ADDRESS, "gy415nuibc.execute-api.us-east-1.amazonaws.com");
    assert_attr(&trigger.attributes, semconv::USER_AGENT_ORIGINAL, "PostmanRuntime/2.4.5");
}

#[test]
fn apigw_rest_without_headers_falls_back_to_request_context() {
    let mut event = fixture("apigw-rest.json");
    event["headers"] = Value::Null;
    event["multiValueHeaders"] = json!(["not", "an", "object"]);
    let trigger = run(&event);
    assert_source(&trigger, TriggerSource::ApiGatewayRest);
    assert_attr(&trigger.attributes, semconv::SERVER_ADDRESS, "gy415nuibc.execute-api.us-east-2.amazonaws.com");
    assert_attr(&trigger.attributes, semconv::USER_AGENT_ORIGINAL, "PostmanRuntime/2.4.5");
    assert_attr(&trigger.attributes, semconv::URL_SCHEME, "https");
}

#[test]
fn secrets_in_headers_are_never_recorded_nor_handed_out() {
    const SECRET: &str = "s3cr3t-do-not-leak";
    let mut event = fixture("apigw-rest-traceparent.json");
    for (name, value) in [
        ("Authorization", format!("Bearer {SECRET}")),
        ("Cookie", format!("session={SECRET}")),
        ("X-Amz-Security-Token", SECRET.to_owned()),
    ] {
        event["headers"][name] = json!(value);
        event["multiValueHeaders"][name] = json!([value]);
    }
    let trigger = run(&event);
    let everything = format!("{trigger:?}");
    assert!(!everything.contains(SECRET), "a secret leaked into {everything}");
    assert_parent(&trigger.records[0], TRACE_A, SPAN_A);

    let carrier = HeaderCarrier::from_event(&event);
    use opentelemetry::propagation::Extractor as _;
    for name in ["authorization", "AUTHORIZATION", "cookie", "x-amz-security-token"] {
        assert_eq!(carrier.get(name), None, "{name}");
        assert_eq!(carrier.get_all(name), None, "{name}");
    }
    assert_eq!(carrier.get("TRACEPARENT"), Some(TP_A));
}

#[test]
fn apigw_rest_unknown_method_is_other() {
    let mut event = fixture("apigw-rest.json");
    event["httpMethod"] = json!("BREW");
    let trigger = run(&event);
    assert_eq!(trigger.span_name.as_deref(), Some("HTTP /{proxy+}"));
    assert_attr(&trigger.attributes, semconv::HTTP_REQUEST_METHOD, "_OTHER");
    assert_attr(&trigger.attributes, semconv::HTTP_REQUEST_METHOD_ORIGINAL, "BREW");
}

#[test]
fn lambda_authorizer_and_websocket_requests_are_not_http() {
    let mut authorizer = fixture("apigw-rest.json");
    authorizer["type"] = json!("REQUEST");
    authorizer["methodArn"] = json!("arn:aws:execute-api:us-east-1:123456789012:abcdef123/test/GET/request");
    assert_eq!(run(&authorizer).source, None);

    let websocket = json!({
        "requestContext": {"routeKey": "$connect", "eventType": "CONNECT", "connectionId": "abc="},
        "isBase64Encoded": false
    });
    assert_eq!(run(&websocket).source, None);
}

// ---------------------------------------------------------------------------------------
// HTTP API (payload 2.0) and Function URLs

#[test]
fn apigw_http_default_route_is_named_by_method_only() {
    let trigger = run(&fixture("apigw-http.json"));
    assert_source(&trigger, TriggerSource::ApiGatewayHttp);
    assert_eq!(trigger.span_kind, SpanKind::Server);
    assert_eq!(trigger.span_name.as_deref(), Some("GET"));
    let a = &trigger.attributes;
    assert_no_attr(a, semconv::HTTP_ROUTE);
    assert_attr(a, semconv::HTTP_REQUEST_METHOD, "GET");
    assert_attr(a, semconv::URL_PATH, "/");
    assert_attr(a, semconv::URL_SCHEME, "https");
    assert_attr(a, semconv::SERVER_ADDRESS, "aaaaaaaaaa.execute-api.us-west-2.amazonaws.com");
    assert_attr(a, semconv::USER_AGENT_ORIGINAL, "curl/7.58.0");
    assert_attr(a, semconv::CLIENT_ADDRESS, "1.2.3.4");
    assert_attr(a, attr::APIGW_API_ID, "aaaaaaaaaa");
    assert_attr(a, attr::APIGW_STAGE, "$default");
    assert_attr(a, attr::APIGW_REQUEST_ID, "LV7fzho-PHcEJPw=");
    assert_unique_keys(&trigger);
    // The X-Amzn-Trace-Id header has a Root but no Parent: no parent.
    assert!(trigger.records[0].parent.is_none());
}

#[test]
fn apigw_http_route_template_names_the_span() {
    let trigger = run(&fixture("apigw-http-route-traceparent.json"));
    assert_source(&trigger, TriggerSource::ApiGatewayHttp);
    assert_eq!(trigger.span_name.as_deref(), Some("GET /posts/{id}"));
    assert_attr(&trigger.attributes, semconv::HTTP_ROUTE, "/posts/{id}");
    assert_attr(&trigger.attributes, semconv::URL_PATH, "/posts/42");
}

#[test]
fn apigw_http_any_route_uses_the_actual_method() {
    let mut event = fixture("apigw-http-route-traceparent.json");
    event["routeKey"] = json!("ANY /posts/{id}");
    let trigger = run(&event);
    assert_eq!(trigger.span_name.as_deref(), Some("GET /posts/{id}"));
}

#[test]
fn a_root_only_xray_header_does_not_hide_traceparent_whatever_the_propagator_order() {
    // The fixture has both `traceparent` and API Gateway's `x-amzn-trace-id: Root=...`.
    let event = fixture("apigw-http-route-traceparent.json");
    for propagator in [propagator(), propagator_xray_first()] {
        let trigger = detect(&event, envelope(), &propagator);
        assert_parent(&trigger.records[0], TRACE_B, SPAN_B);
    }
}

#[test]
fn w3c_wins_over_a_valid_xray_header_whatever_the_propagator_order() {
    let mut event = fixture("apigw-http-route-traceparent.json");
    event["headers"]["x-amzn-trace-id"] = json!(XRAY);
    for propagator in [propagator(), propagator_xray_first()] {
        let trigger = detect(&event, envelope(), &propagator);
        assert_parent(&trigger.records[0], TRACE_B, SPAN_B);
    }
    // Without traceparent, X-Ray is the parent.
    event["headers"].as_object_mut().unwrap().remove("traceparent");
    let trigger = run(&event);
    assert_parent(&trigger.records[0], XRAY_TRACE, XRAY_SPAN);
    // An invalid traceparent falls back to X-Ray too.
    event["headers"]["traceparent"] = json!("00-00000000000000000000000000000000-0000000000000000-01");
    let trigger = run(&event);
    assert_parent(&trigger.records[0], XRAY_TRACE, XRAY_SPAN);
}

#[test]
fn apigw_http_sam_sample_takes_scheme_from_forwarded_proto() {
    let trigger = run(&fixture("apigw-http-sam.json"));
    assert_source(&trigger, TriggerSource::ApiGatewayHttp);
    assert_eq!(trigger.span_name.as_deref(), Some("GET /dump"));
    assert_attr(&trigger.attributes, semconv::URL_SCHEME, "http");
    assert_attr(&trigger.attributes, semconv::SERVER_ADDRESS, "127.0.0.1:3000");
    // The header wins over requestContext.http.userAgent.
    assert_attr(
        &trigger.attributes,
        semconv::USER_AGENT_ORIGINAL,
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    );
}

#[test]
fn function_url_is_detected_by_its_domain() {
    let trigger = run(&fixture("function-url.json"));
    assert_source(&trigger, TriggerSource::FunctionUrl);
    assert_eq!(trigger.span_kind, SpanKind::Server);
    assert_eq!(trigger.span_name.as_deref(), Some("POST"));
    let a = &trigger.attributes;
    assert_attr(a, semconv::FAAS_TRIGGER, "http");
    assert_no_attr(a, semconv::HTTP_ROUTE);
    assert_attr(a, semconv::URL_PATH, "/my/path");
    assert_attr(a, semconv::SERVER_ADDRESS, "a1b2c3d4e5f6g7h8i9j0.lambda-url.us-west-2.on.aws");
    assert_attr(a, semconv::CLIENT_ADDRESS, "123.123.123.123");
    assert_attr(a, attr::APIGW_REQUEST_ID, "id");
    assert_no_attr(a, attr::APIGW_API_ID);
    assert_no_attr(a, attr::APIGW_STAGE);
    assert_eq!(trigger.records[0].message_id.as_deref(), Some("id"));
    // Cookies are never recorded.
    assert!(!format!("{trigger:?}").contains("cookie1"));
}

#[test]
fn function_url_carries_context_in_headers() {
    let mut event = fixture("function-url.json");
    event["headers"]["traceparent"] = json!(TP_C);
    let trigger = run(&event);
    assert_parent(&trigger.records[0], TRACE_C, SPAN_C);
}

// ---------------------------------------------------------------------------------------
// ALB

#[test]
fn alb_is_named_by_method_and_records_target_group() {
    let trigger = run(&fixture("alb.json"));
    assert_source(&trigger, TriggerSource::Alb);
    assert_eq!(trigger.span_kind, SpanKind::Server);
    assert_eq!(trigger.span_name.as_deref(), Some("GET"));
    let a = &trigger.attributes;
    assert_attr(a, semconv::HTTP_REQUEST_METHOD, "GET");
    assert_no_attr(a, semconv::HTTP_ROUTE);
    assert_attr(a, semconv::URL_PATH, "/");
    assert_attr(a, semconv::URL_SCHEME, "http");
    assert_attr(a, semconv::SERVER_ADDRESS, "lambda-test-alb-1334523864.us-east-1.elb.amazonaws.com");
    assert_attr(a, semconv::USER_AGENT_ORIGINAL, "curl/7.54.0");
    assert_attr(a, semconv::CLIENT_ADDRESS, "25.12.198.67");
    assert_attr(
        a,
        attr::ALB_TARGET_GROUP_ARN,
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/lambda-target/abcdefg",
    );
    assert_no_attr(a, "url.query");
    assert_unique_keys(&trigger);
    assert_eq!(trigger.records.len(), 1);
    assert!(trigger.records[0].parent.is_none());
}

#[test]
fn alb_multi_value_headers_are_read() {
    let mut event = fixture("alb-multivalue.json");
    event["multiValueHeaders"]["traceparent"] = json!([TP_A]);
    event["multiValueHeaders"]["tracestate"] = json!(["congo=t61rcWkgMzE", "rojo=00f067aa0ba902b7"]);
    let trigger = run(&event);
    assert_source(&trigger, TriggerSource::Alb);
    assert_attr(&trigger.attributes, semconv::SERVER_ADDRESS, "lambda-test-alb-1234567.us-east-1.elb.amazonaws.com");
    assert_attr(&trigger.attributes, semconv::CLIENT_ADDRESS, "72.21.198.67");
    assert_parent(&trigger.records[0], TRACE_A, SPAN_A);
}

// ---------------------------------------------------------------------------------------
// SNS

#[test]
fn sns_is_detected_with_messaging_attributes() {
    let trigger = run(&fixture("sns.json"));
    assert_source(&trigger, TriggerSource::Sns);
    assert_eq!(trigger.span_kind, SpanKind::Consumer);
    assert_eq!(trigger.span_name.as_deref(), Some("process snsNetTest"));
    let a = &trigger.attributes;
    assert_attr(a, semconv::FAAS_TRIGGER, "pubsub");
    assert_attr(a, semconv::MESSAGING_SYSTEM, "aws.sns");
    assert_attr(a, semconv::MESSAGING_OPERATION_TYPE, "process");
    assert_attr(a, semconv::MESSAGING_DESTINATION_NAME, "snsNetTest");
    assert_attr(a, semconv::AWS_SNS_TOPIC_ARN, "arn:aws:sns:us-east-1:246796806071:snsNetTest");
    assert_attr(a, semconv::MESSAGING_MESSAGE_ID, "82833b5c-8d5d-56d0-b0e1-7511f8253eb8");
    assert_no_attr(a, semconv::MESSAGING_BATCH_MESSAGE_COUNT);
    assert_unique_keys(&trigger);
    assert_eq!(trigger.records.len(), 1);
    assert_eq!(trigger.records[0].message_id.as_deref(), Some("82833b5c-8d5d-56d0-b0e1-7511f8253eb8"));
    assert!(trigger.records[0].parent.is_none());
}

#[test]
fn sns_message_attributes_carry_context() {
    let trigger = run(&fixture("sns-traceparent.json"));
    assert_parent(&trigger.records[0], TRACE_A, SPAN_A);
    assert_eq!(trigger.records[0].parent.as_ref().unwrap().trace_state().header(), TRACESTATE);
    assert_eq!(only_parent(&trigger), (TRACE_A.to_owned(), SPAN_A.to_owned()));
}

#[test]
fn sns_aws_trace_header_attribute_is_read_as_xray() {
    let mut event = fixture("sns.json");
    event["Records"][0]["Sns"]["MessageAttributes"] = json!({"AWSTraceHeader": {"Type": "String", "Value": XRAY}});
    let trigger = run(&event);
    assert_parent(&trigger.records[0], XRAY_TRACE, XRAY_SPAN);
}

#[test]
fn sns_binary_or_malformed_attributes_carry_nothing() {
    for attribute in [
        json!({"Type": "Binary", "Value": TP_A}),
        json!({"Type": "String", "Value": 42}),
        json!({"Type": "String"}),
        json!("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
        json!({"Type": "String", "Value": "00-zzzz-b7ad6b7169203331-01"}),
    ] {
        let mut event = fixture("sns.json");
        event["Records"][0]["Sns"]["MessageAttributes"] = json!({ "traceparent": attribute });
        let trigger = run(&event);
        assert_source(&trigger, TriggerSource::Sns);
        assert!(trigger.records[0].parent.is_none(), "{attribute}");
    }
}

#[test]
fn sns_and_sqs_shapes_are_not_confused() {
    assert_eq!(run(&fixture("sns.json")).source, Some(TriggerSource::Sns));
    assert_eq!(run(&fixture("sqs.json")).source, Some(TriggerSource::Sqs));
    // An SQS record that claims to be SNS is SNS, best effort, without SQS's fields.
    let mut event = fixture("sqs.json");
    event["Records"][0]["eventSource"] = json!("aws:sns");
    let trigger = run(&event);
    assert_eq!(trigger.source, Some(TriggerSource::Sns));
    assert_eq!(trigger.span_name, None);
    assert_eq!(trigger.records[0].message_id, None);
}

// ---------------------------------------------------------------------------------------
// SQS

#[test]
fn sqs_single_message_is_detected_with_messaging_attributes() {
    let trigger = run(&fixture("sqs.json"));
    assert_source(&trigger, TriggerSource::Sqs);
    assert_eq!(trigger.span_kind, SpanKind::Consumer);
    assert_eq!(trigger.span_name.as_deref(), Some("process SQSQueue"));
    let a = &trigger.attributes;
    assert_attr(a, semconv::FAAS_TRIGGER, "pubsub");
    assert_attr(a, semconv::MESSAGING_SYSTEM, "aws_sqs");
    assert_attr(a, semconv::MESSAGING_OPERATION_TYPE, "process");
    assert_attr(a, semconv::MESSAGING_DESTINATION_NAME, "SQSQueue");
    assert_attr(a, attr::SQS_QUEUE_ARN, "arn:aws:sqs:us-west-2:123456789012:SQSQueue");
    assert_attr(a, semconv::MESSAGING_MESSAGE_ID, "MessageID_1");
    assert_no_attr(a, semconv::MESSAGING_BATCH_MESSAGE_COUNT);
    assert_no_attr(a, attr::SQS_SNS_ENVELOPE);
    assert_unique_keys(&trigger);
    assert_eq!(trigger.records.len(), 1);
    assert!(trigger.records[0].parent.is_none());
}

#[test]
fn sqs_message_attributes_carry_context() {
    let trigger = run(&fixture("sqs-single-traceparent.json"));
    assert_parent(&trigger.records[0], TRACE_A, SPAN_A);
    assert_eq!(trigger.records[0].parent.as_ref().unwrap().trace_state().header(), TRACESTATE);
    assert_eq!(only_parent(&trigger), (TRACE_A.to_owned(), SPAN_A.to_owned()));
}

#[test]
fn sqs_batch_with_three_contexts_has_three_links_and_no_parent() {
    let trigger = run(&fixture("sqs-batch-3.json"));
    assert_source(&trigger, TriggerSource::Sqs);
    assert_attr_i64(&trigger.attributes, semconv::MESSAGING_BATCH_MESSAGE_COUNT, 3);
    assert_no_attr(&trigger.attributes, semconv::MESSAGING_MESSAGE_ID);
    assert_unique_keys(&trigger);
    let expected = [(TRACE_A, SPAN_A), (TRACE_B, SPAN_B), (TRACE_C, SPAN_C)];
    for (record, (trace, span)) in trigger.records.iter().zip(expected) {
        assert_parent(record, trace, span);
    }
    let (parent, links) = trigger.parent_and_links();
    assert!(parent.is_none());
    assert_eq!(links.len(), 3);
    for (i, link) in links.iter().enumerate() {
        let id = format!("MessageID_{}", i + 1);
        assert_eq!(link.message_id.as_deref(), Some(id.as_str()));
        assert_attr(&link.attributes, semconv::MESSAGING_MESSAGE_ID, &id);
    }
}

#[test]
fn sqs_batch_sharing_one_context_has_it_as_parent() {
    let mut event = fixture("sqs-batch-3.json");
    for record in event["Records"].as_array_mut().unwrap() {
        record["messageAttributes"]["traceparent"]["stringValue"] = json!(TP_B);
    }
    let trigger = run(&event);
    assert_eq!(only_parent(&trigger), (TRACE_B.to_owned(), SPAN_B.to_owned()));
}

#[test]
fn sqs_batch_with_some_records_without_context_links_the_others() {
    let mut event = fixture("sqs-batch-3.json");
    event["Records"][1]["messageAttributes"] = json!({});
    let trigger = run(&event);
    let (parent, links) = trigger.parent_and_links();
    assert!(parent.is_none());
    let linked: Vec<_> = links.iter().map(|r| r.message_id.as_deref().unwrap()).collect();
    assert_eq!(linked, ["MessageID_1", "MessageID_3"]);

    // Two records that share one context and one without: still links, not a parent.
    event["Records"][2]["messageAttributes"]["traceparent"]["stringValue"] = json!(TP_A);
    let trigger = run(&event);
    let (parent, links) = trigger.parent_and_links();
    assert!(parent.is_none());
    assert_eq!(links.len(), 2);
}

#[test]
fn sqs_aws_trace_header_is_the_xray_fallback() {
    let trigger = run(&fixture("sqs-awstraceheader.json"));
    assert_parent(&trigger.records[0], XRAY_TRACE, XRAY_SPAN);
    assert!(trigger.records[0].parent.as_ref().unwrap().is_sampled());

    // With a traceparent too, W3C wins, whatever the propagator order.
    let mut event = fixture("sqs-awstraceheader.json");
    event["Records"][0]["messageAttributes"]["traceparent"] = json!({"stringValue": TP_C, "dataType": "String"});
    for propagator in [propagator(), propagator_xray_first()] {
        let trigger = detect(&event, envelope(), &propagator);
        assert_parent(&trigger.records[0], TRACE_C, SPAN_C);
    }
    // An invalid traceparent does not hide a valid AWSTraceHeader.
    event["Records"][0]["messageAttributes"]["traceparent"]["stringValue"] = json!("not-a-traceparent");
    assert_parent(&run(&event).records[0], XRAY_TRACE, XRAY_SPAN);
}

#[test]
fn sqs_invalid_contexts_give_no_parent() {
    for traceparent in [
        "garbage",
        "",
        "00-00000000000000000000000000000000-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
        "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
    ] {
        let mut event = fixture("sqs.json");
        event["Records"][0]["messageAttributes"]["traceparent"] =
            json!({"stringValue": traceparent, "dataType": "String"});
        event["Records"][0]["attributes"]["AWSTraceHeader"] = json!("Root=1-5759e988-bd862e3fe1be46a994272793");
        let trigger = run(&event);
        assert!(trigger.records[0].parent.is_none(), "{traceparent:?}");
    }
}

#[test]
fn sqs_binary_message_attribute_is_ignored() {
    let mut event = fixture("sqs.json");
    event["Records"][0]["messageAttributes"]["traceparent"] =
        json!({"binaryValue": b64(TP_A.as_bytes()), "stringValue": TP_A, "dataType": "Binary"});
    assert!(run(&event).records[0].parent.is_none());
}

#[test]
fn sns_to_sqs_envelope_carries_context_in_the_body() {
    let trigger = run(&fixture("sns-sqs-envelope.json"));
    assert_source(&trigger, TriggerSource::Sqs);
    assert_eq!(trigger.span_name.as_deref(), Some("process post-analysis-queue"));
    assert_parent(&trigger.records[0], TRACE_B, SPAN_B);
    assert_eq!(trigger.records[0].parent.as_ref().unwrap().trace_state().header(), TRACESTATE);
    for attributes in [&trigger.attributes, &trigger.records[0].attributes] {
        assert_attr_bool(attributes, attr::SQS_SNS_ENVELOPE, true);
        assert_attr(attributes, semconv::AWS_SNS_TOPIC_ARN, "arn:aws:sns:us-west-2:123456789012:Posts-Notifications");
        assert_attr(attributes, attr::SNS_MESSAGE_ID, "63a3f6b6-d533-4a47-aef9-fcf5cf758c76");
        assert_attr(attributes, semconv::MESSAGING_MESSAGE_ID, "MessageID_1");
    }
    assert_unique_keys(&trigger);
}

#[test]
fn sns_to_sqs_envelope_context_order_is_sqs_w3c_then_envelope_w3c_then_xray() {
    // SQS's own traceparent wins over the envelope's.
    let mut event = fixture("sns-sqs-envelope.json");
    event["Records"][0]["messageAttributes"] = json!({"traceparent": {"stringValue": TP_A, "dataType": "String"}});
    assert_parent(&run(&event).records[0], TRACE_A, SPAN_A);

    // The envelope's traceparent wins over AWSTraceHeader (SNS active tracing).
    let mut event = fixture("sns-sqs-envelope.json");
    event["Records"][0]["attributes"]["AWSTraceHeader"] = json!(XRAY);
    assert_parent(&run(&event).records[0], TRACE_B, SPAN_B);

    // Without any W3C context, AWSTraceHeader is used.
    let mut body: Value = serde_json::from_str(event["Records"][0]["body"].as_str().unwrap()).unwrap();
    body.as_object_mut().unwrap().remove("MessageAttributes");
    event["Records"][0]["body"] = json!(body.to_string());
    let trigger = run(&event);
    assert_parent(&trigger.records[0], XRAY_TRACE, XRAY_SPAN);
    assert_attr_bool(&trigger.attributes, attr::SQS_SNS_ENVELOPE, true);
}

#[test]
fn sns_to_sqs_raw_delivery_uses_sqs_attributes() {
    let trigger = run(&fixture("sns-sqs-raw.json"));
    assert_source(&trigger, TriggerSource::Sqs);
    assert_parent(&trigger.records[0], TRACE_B, SPAN_B);
    assert_no_attr(&trigger.attributes, attr::SQS_SNS_ENVELOPE);
    assert_no_attr(&trigger.records[0].attributes, attr::SQS_SNS_ENVELOPE);
}

#[test]
fn json_bodies_that_are_not_sns_envelopes_are_left_alone() {
    for body in [
        json!({"Type": "SubscriptionConfirmation", "TopicArn": "arn:aws:sns:us-west-2:123456789012:t", "MessageAttributes": {"traceparent": {"Type": "String", "Value": TP_A}}}).to_string(),
        json!({"Type": "Notification", "MessageAttributes": {"traceparent": {"Type": "String", "Value": TP_A}}}).to_string(),
        json!({"Type": 7, "TopicArn": "arn:aws:sns:us-west-2:123456789012:t"}).to_string(),
        "{\"Type\": \"Notification\", \"TopicArn\": ".to_owned(),
        "[1, 2, 3]".to_owned(),
        "   ".to_owned(),
    ] {
        let mut event = fixture("sqs.json");
        event["Records"][0]["body"] = json!(body);
        let trigger = run(&event);
        assert!(trigger.records[0].parent.is_none(), "{body}");
        assert_no_attr(&trigger.attributes, attr::SQS_SNS_ENVELOPE);
    }
    // An envelope whose MessageAttributes has the wrong type is still an envelope.
    let mut event = fixture("sqs.json");
    event["Records"][0]["body"] = json!(
        json!({"Type": "Notification", "TopicArn": "arn:aws:sns:us-west-2:1:t", "MessageAttributes": "x"}).to_string()
    );
    assert_attr_bool(&run(&event).attributes, attr::SQS_SNS_ENVELOPE, true);
}

#[test]
fn sqs_batch_of_envelopes_from_one_topic_marks_the_span() {
    let mut event = fixture("sns-sqs-envelope.json");
    let record = event["Records"][0].clone();
    let mut second = record.clone();
    second["messageId"] = json!("MessageID_2");
    event["Records"] = json!([record.clone(), second]);
    let trigger = run(&event);
    assert_attr_bool(&trigger.attributes, attr::SQS_SNS_ENVELOPE, true);
    assert_attr(
        &trigger.attributes,
        semconv::AWS_SNS_TOPIC_ARN,
        "arn:aws:sns:us-west-2:123456789012:Posts-Notifications",
    );
    assert_eq!(only_parent(&trigger), (TRACE_B.to_owned(), SPAN_B.to_owned()));

    // A batch mixing an envelope and a raw message does not.
    let mut raw = fixture("sqs.json")["Records"][0].clone();
    raw["messageId"] = json!("MessageID_3");
    event["Records"] = json!([record, raw]);
    let trigger = run(&event);
    assert_no_attr(&trigger.attributes, attr::SQS_SNS_ENVELOPE);
    assert_attr_bool(&trigger.records[0].attributes, attr::SQS_SNS_ENVELOPE, true);
    assert_no_attr(&trigger.records[1].attributes, attr::SQS_SNS_ENVELOPE);
}

#[test]
fn sqs_six_megabyte_body_is_not_parsed_and_does_not_panic() {
    let message = "x".repeat(6 * 1024 * 1024);
    let envelope_body = json!({
        "Type": "Notification",
        "TopicArn": "arn:aws:sns:us-west-2:123456789012:t",
        "Message": message,
        "MessageAttributes": {"traceparent": {"Type": "String", "Value": TP_A}}
    })
    .to_string();
    for body in [envelope_body, message] {
        let mut event = fixture("sqs.json");
        event["Records"][0]["body"] = json!(body);
        let trigger = run(&event);
        assert_source(&trigger, TriggerSource::Sqs);
        assert!(trigger.records[0].parent.is_none());
        assert_no_attr(&trigger.attributes, attr::SQS_SNS_ENVELOPE);
    }
}

// ---------------------------------------------------------------------------------------
// Kinesis

#[test]
fn kinesis_is_detected_with_shard_sequence_and_partition_key() {
    let trigger = run(&fixture("kinesis.json"));
    assert_source(&trigger, TriggerSource::Kinesis);
    assert_eq!(trigger.span_kind, SpanKind::Consumer);
    assert_eq!(trigger.span_name.as_deref(), Some("process simple-stream"));
    let a = &trigger.attributes;
    assert_attr(a, semconv::FAAS_TRIGGER, "datasource");
    assert_attr(a, semconv::MESSAGING_SYSTEM, "aws_kinesis");
    assert_attr(a, semconv::MESSAGING_DESTINATION_NAME, "simple-stream");
    assert_attr_i64(a, semconv::MESSAGING_BATCH_MESSAGE_COUNT, 2);
    assert_unique_keys(&trigger);
    let sequence_numbers = [
        "49568167373333333333333333333333333333333333333333333333",
        "49568167373333333334444444444444444444444444444444444444",
    ];
    for (record, sequence_number) in trigger.records.iter().zip(sequence_numbers) {
        assert!(record.parent.is_none(), "text data carries no context");
        assert_eq!(record.message_id.as_deref(), Some(sequence_number));
        assert_attr(&record.attributes, semconv::MESSAGING_MESSAGE_ID, sequence_number);
        assert_attr(&record.attributes, semconv::MESSAGING_DESTINATION_PARTITION_ID, "shardId-000000000000");
        assert_attr(&record.attributes, attr::KINESIS_PARTITION_KEY, "s1");
    }
}

#[test]
fn kinesis_json_data_carries_context_under_the_reserved_key() {
    let trigger = run(&fixture("kinesis-json-reserved.json"));
    assert_eq!(trigger.span_name.as_deref(), Some("process Post-Analysis-Stream"));
    assert_parent(&trigger.records[0], TRACE_A, SPAN_A);
    assert_eq!(trigger.records[0].parent.as_ref().unwrap().trace_state().header(), TRACESTATE);
    assert_parent(&trigger.records[1], TRACE_C, SPAN_C);
    let (parent, links) = trigger.parent_and_links();
    assert!(parent.is_none());
    assert_eq!(links.len(), 2);
}

#[test]
fn kinesis_reserved_key_is_configurable_and_may_hold_a_bare_traceparent() {
    let mut event = fixture("kinesis.json");
    event["Records"][0]["kinesis"]["data"] =
        json!(b64(json!({"_trace": {"traceparent": TP_B}}).to_string().as_bytes()));
    event["Records"][1]["kinesis"]["data"] =
        json!(b64(json!({"_trace": TP_C, "_flowtrace": {"traceparent": TP_A}}).to_string().as_bytes()));
    let custom = EventEnvelope { client_context_custom: None, reserved_key: "_trace" };
    let trigger = detect(&event, custom, &propagator());
    assert_parent(&trigger.records[0], TRACE_B, SPAN_B);
    assert_parent(&trigger.records[1], TRACE_C, SPAN_C);
    // An empty reserved key reads nothing.
    let none = EventEnvelope { client_context_custom: None, reserved_key: "" };
    assert!(detect(&event, none, &propagator()).records.iter().all(|r| r.parent.is_none()));
}

#[test]
fn kinesis_binary_data_carries_nothing() {
    let trigger = run(&fixture("kinesis-binary.json"));
    assert_source(&trigger, TriggerSource::Kinesis);
    assert!(trigger.records[0].parent.is_none());
    assert_attr(
        &trigger.attributes,
        semconv::MESSAGING_MESSAGE_ID,
        "49568167373333333333333333333333333333333333333333333333",
    );
}

#[test]
fn kinesis_hostile_data_carries_nothing_and_does_not_panic() {
    let mut oversized =
        br#"{"_flowtrace":{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},"pad":""#.to_vec();
    oversized.extend(std::iter::repeat_n(b'a', 1024 * 1024 + 10));
    oversized.extend(b"\"}");
    let mut invalid_utf8 =
        br#"{"_flowtrace":{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},"x":""#.to_vec();
    invalid_utf8.extend([0xff, 0xfe, b'"', b'}']);
    let datas = [
        json!("!!!not base64!!!"),
        json!("e30"), // "{}" without padding
        json!(b64(b"{\"_flowtrace\": 42}")),
        json!(b64(b"{\"_flowtrace\": [\"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\"]}")),
        json!(b64(b"{\"_flowtrace\": {\"traceparent\": 7}}")),
        json!(b64(b"{\"_flowtrace\": {\"traceparent\": \"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\"")), // truncated
        json!(b64(b"[{\"_flowtrace\": {}}]")),
        json!(b64(b"null")),
        json!(b64(&invalid_utf8)),
        json!(b64(&oversized)),
        json!(""),
        json!(42),
        Value::Null,
    ];
    for data in datas {
        let mut event = fixture("kinesis.json");
        event["Records"][0]["kinesis"]["data"] = data.clone();
        let trigger = run(&event);
        assert_source(&trigger, TriggerSource::Kinesis);
        assert!(trigger.records[0].parent.is_none(), "{}", data.to_string().chars().take(80).collect::<String>());
    }
}

#[test]
fn kinesis_data_with_leading_whitespace_and_no_padding_is_read() {
    let mut event = fixture("kinesis.json");
    let json = format!("  \n{}", json!({"_flowtrace": {"traceparent": TP_A}}));
    event["Records"][0]["kinesis"]["data"] = json!(b64(json.as_bytes()).trim_end_matches('='));
    assert_parent(&run(&event).records[0], TRACE_A, SPAN_A);
}

// ---------------------------------------------------------------------------------------
// DynamoDB Streams

#[test]
fn dynamodb_is_detected_with_document_attributes_and_map_carrier() {
    let trigger = run(&fixture("dynamodb-new-and-old-reserved.json"));
    assert_source(&trigger, TriggerSource::DynamoDb);
    assert_eq!(trigger.span_kind, SpanKind::Consumer);
    assert_eq!(trigger.span_name.as_deref(), Some("process BlogPostsDB"));
    let a = &trigger.attributes;
    assert_attr(a, semconv::FAAS_TRIGGER, "datasource");
    assert_attr(a, semconv::FAAS_DOCUMENT_COLLECTION, "BlogPostsDB");
    assert_attr(a, semconv::FAAS_DOCUMENT_OPERATION, "insert");
    assert_attr(a, semconv::FAAS_DOCUMENT_TIME, "2016-12-02T01:27:00Z");
    assert_attr(a, attr::DYNAMODB_EVENT_NAME, "INSERT");
    assert_attr(a, attr::DYNAMODB_STREAM_VIEW_TYPE, "NEW_AND_OLD_IMAGES");
    assert_attr(a, semconv::MESSAGING_MESSAGE_ID, "1405400000000002063282832");
    assert_eq!(
        find(a, semconv::AWS_DYNAMODB_TABLE_NAMES),
        Some(&opentelemetry::Value::Array(opentelemetry::Array::String(vec!["BlogPostsDB".into()])))
    );
    assert_unique_keys(&trigger);
    assert_eq!(trigger.records[0].message_id.as_deref(), Some("1405400000000002063282832"));
    assert_parent(&trigger.records[0], TRACE_A, SPAN_A);
    assert_eq!(trigger.records[0].parent.as_ref().unwrap().trace_state().header(), TRACESTATE);
}

#[test]
fn dynamodb_string_attribute_holding_json_carries_context() {
    let trigger = run(&fixture("dynamodb-reserved-string.json"));
    assert_parent(&trigger.records[0], TRACE_B, SPAN_B);
    // A bare traceparent string works too.
    let mut event = fixture("dynamodb-reserved-string.json");
    event["Records"][0]["dynamodb"]["NewImage"]["_flowtrace"] = json!({"S": TP_C});
    assert_parent(&run(&event).records[0], TRACE_C, SPAN_C);
}

#[test]
fn dynamodb_keys_only_stream_has_correlation_ids_but_no_context() {
    let trigger = run(&fixture("dynamodb-keys-only.json"));
    assert_source(&trigger, TriggerSource::DynamoDb);
    assert_eq!(trigger.span_name.as_deref(), Some("process Example-Table"));
    assert_attr(&trigger.attributes, semconv::FAAS_DOCUMENT_OPERATION, "delete");
    assert_attr(&trigger.attributes, attr::DYNAMODB_STREAM_VIEW_TYPE, "KEYS_ONLY");
    assert_attr_i64(&trigger.attributes, semconv::MESSAGING_BATCH_MESSAGE_COUNT, 2);
    assert_no_attr(&trigger.attributes, semconv::FAAS_DOCUMENT_TIME);
    let ids: Vec<_> = trigger.records.iter().map(|r| r.message_id.as_deref().unwrap()).collect();
    assert_eq!(ids, ["1405400000000002063282832", "1405400000000002063282833"]);
    assert!(trigger.records.iter().all(|r| r.parent.is_none()));
    assert_attr(&trigger.records[1].attributes, attr::DYNAMODB_EVENT_NAME, "REMOVE");
}

#[test]
fn dynamodb_mixed_operations_leave_the_span_operation_unset() {
    let mut event = fixture("dynamodb.json");
    event["Records"][1]["eventName"] = json!("MODIFY");
    let trigger = run(&event);
    assert_no_attr(&trigger.attributes, semconv::FAAS_DOCUMENT_OPERATION);
    assert_attr(&trigger.records[1].attributes, attr::DYNAMODB_EVENT_NAME, "MODIFY");
}

#[test]
fn dynamodb_sequence_number_falls_back_to_event_id() {
    let mut event = fixture("dynamodb-keys-only.json");
    event["Records"][0]["dynamodb"].as_object_mut().unwrap().remove("SequenceNumber");
    let trigger = run(&event);
    assert_eq!(trigger.records[0].message_id.as_deref(), Some("f07f8ca4b0b26cb9c4e5e77e69f274ee"));
}

#[test]
fn dynamodb_malformed_reserved_attributes_carry_nothing() {
    for attribute in [
        json!({"M": {"traceparent": {"N": "1"}}}),
        json!({"M": {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}),
        json!({"M": "x"}),
        json!({"S": "{not json"}),
        json!({"S": 5}),
        json!({"L": [{"S": TP_A}]}),
        json!(TP_A),
        Value::Null,
    ] {
        let mut event = fixture("dynamodb-new-and-old-reserved.json");
        event["Records"][0]["dynamodb"]["NewImage"]["_flowtrace"] = attribute.clone();
        let trigger = run(&event);
        assert_source(&trigger, TriggerSource::DynamoDb);
        assert!(trigger.records[0].parent.is_none(), "{attribute}");
    }
}

// ---------------------------------------------------------------------------------------
// S3

#[test]
fn s3_put_is_detected_with_document_attributes() {
    let trigger = run(&fixture("s3-put.json"));
    assert_source(&trigger, TriggerSource::S3);
    assert_eq!(trigger.span_kind, SpanKind::Consumer);
    assert_eq!(trigger.span_name.as_deref(), Some("process sourcebucket"));
    let a = &trigger.attributes;
    assert_attr(a, semconv::FAAS_TRIGGER, "datasource");
    assert_attr(a, semconv::FAAS_DOCUMENT_COLLECTION, "sourcebucket");
    assert_attr(a, semconv::FAAS_DOCUMENT_NAME, "Happy%20Face.jpg");
    assert_attr(a, semconv::FAAS_DOCUMENT_OPERATION, "insert");
    assert_attr(a, semconv::FAAS_DOCUMENT_TIME, "1970-01-01T00:00:00.123Z");
    assert_attr(a, semconv::AWS_REQUEST_ID, "C3D13FE58DE4C810");
    assert_no_attr(a, semconv::MESSAGING_SYSTEM);
    assert_unique_keys(&trigger);
    assert_eq!(trigger.records.len(), 1);
    assert_eq!(trigger.records[0].message_id.as_deref(), Some("C3D13FE58DE4C810"));
    assert!(trigger.records[0].parent.is_none());
}

#[test]
fn s3_event_names_map_to_operations() {
    for (name, operation) in [
        ("ObjectRemoved:Delete", Some("delete")),
        ("ObjectRemoved:DeleteMarkerCreated", Some("delete")),
        ("LifecycleExpiration:Delete", Some("delete")),
        ("ObjectTagging:Put", Some("edit")),
        ("ObjectCreated:CompleteMultipartUpload", Some("insert")),
        ("ReducedRedundancyLostObject", None),
    ] {
        let mut event = fixture("s3-put.json");
        event["Records"][0]["eventName"] = json!(name);
        let trigger = run(&event);
        assert_eq!(get_str(&trigger.attributes, semconv::FAAS_DOCUMENT_OPERATION).as_deref(), operation, "{name}");
    }
}

// ---------------------------------------------------------------------------------------
// EventBridge and schedules

#[test]
fn eventbridge_service_event_is_detected() {
    let trigger = run(&fixture("eventbridge-aws-service.json"));
    assert_source(&trigger, TriggerSource::EventBridge);
    assert_eq!(trigger.span_kind, SpanKind::Consumer);
    assert_eq!(trigger.span_name.as_deref(), Some("process EC2 Instance State-change Notification"));
    let a = &trigger.attributes;
    assert_attr(a, semconv::FAAS_TRIGGER, "pubsub");
    assert_attr(a, attr::EVENTBRIDGE_SOURCE, "aws.ec2");
    assert_attr(a, attr::EVENTBRIDGE_DETAIL_TYPE, "EC2 Instance State-change Notification");
    assert_attr(a, semconv::MESSAGING_MESSAGE_ID, "7bf73129-1428-4cd3-a780-95db273d1602");
    assert_unique_keys(&trigger);
    assert_eq!(trigger.records.len(), 1);
    assert!(trigger.records[0].parent.is_none());
}

#[test]
fn eventbridge_detail_carries_context_under_the_reserved_key() {
    let trigger = run(&fixture("eventbridge-custom-reserved.json"));
    assert_eq!(trigger.span_name.as_deref(), Some("process PostPublished"));
    assert_attr(&trigger.attributes, attr::EVENTBRIDGE_SOURCE, "com.example.blog");
    assert_parent(&trigger.records[0], TRACE_C, SPAN_C);
    assert_eq!(only_parent(&trigger), (TRACE_C.to_owned(), SPAN_C.to_owned()));
}

#[test]
fn eventbridge_with_wrong_types_is_not_eventbridge() {
    let mut event = fixture("eventbridge-aws-service.json");
    event["detail-type"] = json!(42);
    assert_eq!(run(&event).source, None);
    let mut event = fixture("eventbridge-aws-service.json");
    event["detail"] = json!("a string");
    let trigger = run(&event);
    assert_source(&trigger, TriggerSource::EventBridge);
    assert!(trigger.records[0].parent.is_none());
}

#[test]
fn cloudwatch_scheduled_event_is_a_timer() {
    let trigger = run(&fixture("cloudwatch-scheduled.json"));
    assert_source(&trigger, TriggerSource::Schedule);
    assert_eq!(trigger.span_kind, SpanKind::Internal);
    assert_eq!(trigger.span_name, None);
    assert_attr(&trigger.attributes, semconv::FAAS_TRIGGER, "timer");
    assert_attr(
        &trigger.attributes,
        attr::SCHEDULE_RULE,
        "arn:aws:events:us-east-1:123456789012:rule/my-scheduled-rule",
    );
    assert_attr(&trigger.attributes, semconv::FAAS_TIME, "2015-10-08T16:53:06Z");
    assert_unique_keys(&trigger);
    assert_eq!(trigger.records[0].message_id.as_deref(), Some("53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa"));
}

#[test]
fn scheduler_events_are_timers_and_other_scheduled_sources_are_not() {
    let mut event = fixture("cloudwatch-scheduled.json");
    event["source"] = json!("aws.scheduler");
    assert_eq!(run(&event).source, Some(TriggerSource::Schedule));
    event["source"] = json!("com.example.cron");
    assert_eq!(run(&event).source, Some(TriggerSource::EventBridge));
}

// ---------------------------------------------------------------------------------------
// Step Functions

#[test]
fn step_functions_context_object_is_recognised_under_context() {
    let trigger = run(&fixture("stepfunctions-context.json"));
    assert_source(&trigger, TriggerSource::StepFunctions);
    assert_eq!(trigger.span_kind, SpanKind::Internal);
    assert_eq!(trigger.span_name, None);
    let a = &trigger.attributes;
    assert_attr(a, semconv::FAAS_TRIGGER, "other");
    assert_attr(
        a,
        attr::STEPFUNCTIONS_EXECUTION_ARN,
        "arn:aws:states:us-east-1:123456789012:execution:stateMachineName:executionName",
    );
    assert_attr(a, attr::STEPFUNCTIONS_STATE_NAME, "Test");
    assert_attr(
        a,
        semconv::AWS_STEP_FUNCTIONS_STATE_MACHINE_ARN,
        "arn:aws:states:us-east-1:123456789012:stateMachine:stateMachineName",
    );
    assert!(!format!("{trigger:?}").contains("h7XRiCdLtd"), "the task token is not recorded");
    assert!(trigger.records.is_empty());
}

#[test]
fn step_functions_context_object_at_top_level_or_under_dollars() {
    let context = fixture("stepfunctions-context.json")["context"].clone();
    assert_eq!(run(&context).source, Some(TriggerSource::StepFunctions));
    assert_eq!(run(&json!({"$$": context.clone()})).source, Some(TriggerSource::StepFunctions));
    let mut not_states = context;
    not_states["Execution"]["Id"] = json!("arn:aws:lambda:us-east-1:123456789012:function:f");
    assert_eq!(run(&not_states).source, None);
}

// ---------------------------------------------------------------------------------------
// Direct invocation and the client context

fn client_context(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

#[test]
fn plain_direct_invoke_without_client_context_is_other() {
    let trigger = run(&fixture("direct-invoke.json"));
    assert_eq!(trigger.source, None);
    assert_eq!(trigger.faas_trigger(), "other");
    assert_eq!(trigger.span_name, None);
    assert!(trigger.records.is_empty());
    assert_eq!(trigger.attributes, Trigger::other().attributes);
}

#[test]
fn direct_invoke_with_client_context_is_direct_with_its_parent() {
    let custom = client_context(&[("traceparent", TP_A), ("tracestate", TRACESTATE)]);
    let trigger = run_with_client_context(&fixture("direct-invoke.json"), &custom);
    assert_source(&trigger, TriggerSource::Direct);
    assert_eq!(trigger.span_kind, SpanKind::Internal);
    assert_eq!(trigger.span_name, None);
    assert_attr(&trigger.attributes, semconv::FAAS_TRIGGER, "other");
    assert_eq!(only_parent(&trigger), (TRACE_A.to_owned(), SPAN_A.to_owned()));
    assert_eq!(trigger.records[0].parent.as_ref().unwrap().trace_state().header(), TRACESTATE);

    // X-Ray, under any case of the key.
    let custom = client_context(&[("X-Amzn-Trace-Id", XRAY)]);
    let trigger = run_with_client_context(&fixture("direct-invoke.json"), &custom);
    assert_eq!(only_parent(&trigger), (XRAY_TRACE.to_owned(), XRAY_SPAN.to_owned()));

    // A client context without a valid context is still a direct invocation.
    let custom = client_context(&[("traceparent", "nope"), ("app", "demo")]);
    let trigger = run_with_client_context(&fixture("direct-invoke.json"), &custom);
    assert_source(&trigger, TriggerSource::Direct);
    assert!(trigger.records.is_empty());
}

#[test]
fn client_context_is_the_parent_only_when_the_event_carries_none() {
    let custom = client_context(&[("traceparent", TP_C)]);
    // A Kinesis batch without context: the client context is everybody's parent.
    let trigger = run_with_client_context(&fixture("kinesis.json"), &custom);
    assert_source(&trigger, TriggerSource::Kinesis);
    assert_eq!(only_parent(&trigger), (TRACE_C.to_owned(), SPAN_C.to_owned()));
    // A source without records of its own (Step Functions) gets it too.
    let trigger = run_with_client_context(&fixture("stepfunctions-context.json"), &custom);
    assert_eq!(only_parent(&trigger), (TRACE_C.to_owned(), SPAN_C.to_owned()));
    // The event wins.
    let trigger = run_with_client_context(&fixture("sqs-single-traceparent.json"), &custom);
    assert_eq!(only_parent(&trigger), (TRACE_A.to_owned(), SPAN_A.to_owned()));
    let trigger = run_with_client_context(&fixture("sqs-batch-3.json"), &custom);
    assert_eq!(trigger.parent_and_links().1.len(), 3);
}

#[test]
fn the_wrappers_own_attributes_are_left_to_the_wrapper() {
    // The wrapper adds these after deciding on parent and links (with its X-Ray fallback)
    // and the invocation's own facts; `detect` must not add them too.
    let wrapper_keys = [
        attr::PARENT_ORIGIN,
        attr::RECORDS_WITHOUT_CONTEXT,
        semconv::FAAS_INVOCATION_ID,
        semconv::FAAS_COLDSTART,
        semconv::CLOUD_RESOURCE_ID,
        semconv::CLOUD_REGION,
        semconv::AWS_LAMBDA_INVOKED_ARN,
    ];
    let custom = client_context(&[("traceparent", TP_C)]);
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures");
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        for trigger in [run(&fixture(&name)), run_with_client_context(&fixture(&name), &custom)] {
            for key in wrapper_keys {
                assert_no_attr(&trigger.attributes, key);
            }
            assert_unique_keys(&trigger);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Malformed input

#[test]
fn malformed_events_never_panic_and_degrade_to_other() {
    let cases = [
        Value::Null,
        json!(42),
        json!("Records"),
        json!([{"eventSource": "aws:sqs"}]),
        json!({}),
        json!({"Records": "aws:sqs"}),
        json!({"Records": []}),
        json!({"Records": [null, 1, "x"]}),
        json!({"Records": [{"eventSource": 7}]}),
        json!({"Records": [{"eventSource": "aws:ses"}]}),
        json!({"requestContext": "x", "httpMethod": "GET"}),
        json!({"requestContext": {}, "httpMethod": 3}),
        json!({"detail-type": "x"}),
        json!({"Execution": {"Id": 1}, "State": {"Name": "x"}}),
    ];
    for event in cases {
        let trigger = run(&event);
        assert_eq!(trigger.source, None, "{event}");
        assert_eq!(trigger.attributes, Trigger::other().attributes, "{event}");
    }
}

#[test]
fn records_of_the_wrong_types_are_best_effort() {
    let cases = [
        json!({"Records": [{"eventSource": "aws:sqs"}]}),
        json!({"Records": [{"eventSource": "aws:sqs", "messageAttributes": "x", "attributes": [1], "body": 5, "eventSourceARN": 9}]}),
        json!({"Records": [{"eventSource": "aws:sqs", "messageAttributes": {"traceparent": {"stringValue": 5}}}]}),
        json!({"Records": [{"eventSource": "aws:sqs"}, 1, null, "x"]}),
        json!({"Records": [{"EventSource": "aws:sns", "Sns": "x"}]}),
        json!({"Records": [{"EventSource": "aws:sns", "Sns": {"MessageAttributes": [], "TopicArn": ""}}]}),
        json!({"Records": [{"eventSource": "aws:kinesis", "kinesis": {"data": {}}, "eventID": "no-colon", "eventSourceARN": "arn:aws:kinesis:x:y:stream/"}]}),
        json!({"Records": [{"eventSource": "aws:dynamodb", "dynamodb": {"NewImage": [], "ApproximateCreationDateTime": -5}}]}),
        json!({"Records": [{"eventSource": "aws:dynamodb", "dynamodb": {"ApproximateCreationDateTime": 1e300}}]}),
        json!({"Records": [{"eventSource": "aws:s3", "s3": {"bucket": 1, "object": {"key": []}}, "responseElements": null}]}),
    ];
    for event in cases {
        let trigger = run(&event);
        assert!(trigger.source.is_some(), "{event}");
        assert!(trigger.records.iter().all(|r| r.parent.is_none()), "{event}");
        assert_unique_keys(&trigger);
    }
}

#[test]
fn http_events_with_wrong_types_are_best_effort() {
    let mut event = fixture("apigw-http.json");
    event["headers"] = json!("x");
    event["requestContext"]["http"]["sourceIp"] = json!(5);
    event["routeKey"] = json!(["GET /x"]);
    let trigger = run(&event);
    assert_source(&trigger, TriggerSource::ApiGatewayHttp);
    assert_no_attr(&trigger.attributes, semconv::CLIENT_ADDRESS);

    let mut event = fixture("apigw-http.json");
    event["requestContext"]["http"]["method"] = Value::Null;
    let trigger = run(&event);
    assert_eq!(trigger.span_name.as_deref(), Some("HTTP"));
    assert_attr(&trigger.attributes, semconv::HTTP_REQUEST_METHOD, "_OTHER");
    assert_no_attr(&trigger.attributes, semconv::HTTP_REQUEST_METHOD_ORIGINAL);
}

#[test]
fn epoch_seconds_convert_to_iso8601() {
    use super::parse::epoch_seconds_to_iso8601 as iso;
    assert_eq!(iso(0.0).as_deref(), Some("1970-01-01T00:00:00Z"));
    assert_eq!(iso(951_782_400.0).as_deref(), Some("2000-02-29T00:00:00Z"));
    assert_eq!(iso(1_480_642_020.9).as_deref(), Some("2016-12-02T01:27:00Z"));
    assert_eq!(iso(253_402_300_799.0).as_deref(), Some("9999-12-31T23:59:59Z"));
    assert_eq!(iso(-1.0), None);
    assert_eq!(iso(f64::NAN), None);
    assert_eq!(iso(1e300), None);
}

// ---------------------------------------------------------------------------------------
// Typed events (`aws_lambda_events`), by way of their serialised form

fn typed<T: serde::de::DeserializeOwned + serde::Serialize>(name: &str) -> Trigger {
    let event: T = serde_json::from_value(fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    detect_typed(&event, envelope(), &propagator())
}

/// The typed form gives the same answer as the raw JSON.
#[track_caller]
fn assert_same(raw: &Trigger, typed: &Trigger) {
    assert_eq!(raw.source, typed.source);
    assert_eq!(raw.span_kind, typed.span_kind);
    assert_eq!(raw.span_name, typed.span_name);
    let mut raw_attributes = raw.attributes.clone();
    let mut typed_attributes = typed.attributes.clone();
    raw_attributes.sort_by(|a, b| a.key.as_str().cmp(b.key.as_str()));
    typed_attributes.sort_by(|a, b| a.key.as_str().cmp(b.key.as_str()));
    assert_eq!(raw_attributes, typed_attributes);
    assert_eq!(raw.records.len(), typed.records.len());
    for (raw, typed) in raw.records.iter().zip(&typed.records) {
        assert_eq!(raw.parent, typed.parent);
        assert_eq!(raw.message_id, typed.message_id);
        assert_eq!(raw.attributes, typed.attributes);
    }
}

#[test]
fn typed_sqs_events_match_raw_json() {
    use aws_lambda_events::event::sqs::SqsEvent;
    for name in ["sqs.json", "sqs-batch-3.json", "sqs-awstraceheader.json", "sns-sqs-envelope.json", "sns-sqs-raw.json"]
    {
        assert_same(&run(&fixture(name)), &typed::<SqsEvent>(name));
    }
    let trigger = typed::<SqsEvent>("sqs-batch-3.json");
    assert_eq!(trigger.parent_and_links().1.len(), 3);
}

#[test]
fn typed_sns_kinesis_dynamodb_s3_events_match_raw_json() {
    use aws_lambda_events::event::{dynamodb, kinesis::KinesisEvent, s3::S3Event, sns::SnsEvent};
    for name in ["sns.json", "sns-traceparent.json"] {
        assert_same(&run(&fixture(name)), &typed::<SnsEvent>(name));
    }
    for name in ["kinesis.json", "kinesis-json-reserved.json", "kinesis-binary.json"] {
        assert_same(&run(&fixture(name)), &typed::<KinesisEvent>(name));
    }
    for name in [
        "dynamodb.json",
        "dynamodb-new-and-old-reserved.json",
        "dynamodb-reserved-string.json",
        "dynamodb-keys-only.json",
    ] {
        assert_same(&run(&fixture(name)), &typed::<dynamodb::Event>(name));
    }
    assert_parent(&typed::<dynamodb::Event>("dynamodb-new-and-old-reserved.json").records[0], TRACE_A, SPAN_A);
    let s3 = typed::<S3Event>("s3-put.json");
    assert_source(&s3, TriggerSource::S3);
    assert_eq!(s3.span_name.as_deref(), Some("process sourcebucket"));
    assert_attr(&s3.attributes, semconv::AWS_REQUEST_ID, "C3D13FE58DE4C810");
}

#[test]
fn typed_http_events_are_detected() {
    use aws_lambda_events::event::{
        alb::AlbTargetGroupRequest, apigw::ApiGatewayProxyRequest, apigw::ApiGatewayV2httpRequest,
        lambda_function_urls::LambdaFunctionUrlRequest,
    };
    let rest = typed::<ApiGatewayProxyRequest>("apigw-rest-traceparent.json");
    assert_source(&rest, TriggerSource::ApiGatewayRest);
    assert_eq!(rest.span_name.as_deref(), Some("POST /{proxy+}"));
    assert_attr(&rest.attributes, semconv::SERVER_ADDRESS, "gy415nuibc.execute-api.us-east-1.amazonaws.com");
    assert_parent(&rest.records[0], TRACE_A, SPAN_A);

    let http = typed::<ApiGatewayV2httpRequest>("apigw-http-route-traceparent.json");
    assert_source(&http, TriggerSource::ApiGatewayHttp);
    assert_eq!(http.span_name.as_deref(), Some("GET /posts/{id}"));
    assert_parent(&http.records[0], TRACE_B, SPAN_B);

    let alb = typed::<AlbTargetGroupRequest>("alb-multivalue.json");
    assert_source(&alb, TriggerSource::Alb);
    assert_attr(&alb.attributes, semconv::CLIENT_ADDRESS, "72.21.198.67");

    // The typed Function URL request has no routeKey; the domain still tells.
    let url = typed::<LambdaFunctionUrlRequest>("function-url.json");
    assert_source(&url, TriggerSource::FunctionUrl);
    assert_eq!(url.span_name.as_deref(), Some("POST"));
}

#[test]
fn typed_eventbridge_and_schedule_events_match_raw_json() {
    use aws_lambda_events::event::{cloudwatch_events::CloudWatchEvent, eventbridge::EventBridgeEvent};
    for name in ["eventbridge-aws-service.json", "eventbridge-custom-reserved.json"] {
        assert_same(&run(&fixture(name)), &typed::<EventBridgeEvent>(name));
    }
    assert_same(&run(&fixture("cloudwatch-scheduled.json")), &typed::<CloudWatchEvent>("cloudwatch-scheduled.json"));
}

#[test]
fn dynamodb_records_carry_the_item_key_hash_the_producer_records() {
    let event = fixture("dynamodb-keys-only.json");
    let trigger = run(&event);
    let expected = flowtrace_contract::dynamodb_item_key_hash(
        "Example-Table",
        [
            ("key", flowtrace_contract::DynamoDbKeyValue::S("binary")),
            ("val", flowtrace_contract::DynamoDbKeyValue::S("data")),
        ],
    );
    let hash = trigger.records[0]
        .attributes
        .iter()
        .find(|kv| kv.key.as_str() == attr::DYNAMODB_ITEM_KEY_HASH)
        .map(|kv| kv.value.to_string());
    assert_eq!(hash.as_deref(), Some(expected.as_str()));
    // A malformed key gives no hash rather than a wrong one.
    let mut broken = event.clone();
    broken["Records"][0]["dynamodb"]["Keys"]["key"] = serde_json::json!({"B": "not base64!"});
    let trigger = run(&broken);
    assert!(trigger.records[0].attributes.iter().all(|kv| kv.key.as_str() != attr::DYNAMODB_ITEM_KEY_HASH));
}
