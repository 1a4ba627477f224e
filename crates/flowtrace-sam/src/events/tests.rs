//! Tests: each built event is what flowtrace's trigger detection recognises (with the
//! upstream context as the parent) and what `aws_lambda_events` deserialises.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use aws_lambda_events::event as ale;
use flowtrace::trigger::{EventEnvelope, Trigger, TriggerSource, detect};
use opentelemetry::trace::TraceId;

const TRACE_ID: &str = "5b8efff798038103d269b633813fc60c";
const SPAN_ID: &str = "eee19b7ec3c1b174";

fn traceparent() -> String {
    format!("00-{TRACE_ID}-{SPAN_ID}-01")
}

fn run(event: &Value) -> Trigger {
    let propagator = flowtrace::propagation::default_propagator();
    detect(event, EventEnvelope { client_context_custom: None, reserved_key: "_flowtrace" }, propagator.as_ref())
}

#[track_caller]
fn assert_parent(trigger: &Trigger) {
    let (parent, links) = trigger.parent_and_links();
    let parent = parent.unwrap_or_else(|| panic!("no parent in {trigger:#?}"));
    assert_eq!(parent.trace_id(), TraceId::from_hex(TRACE_ID).unwrap());
    assert_eq!(format!("{}", parent.span_id()), SPAN_ID);
    assert!(links.is_empty());
}

fn request() -> HttpRequest {
    HttpRequest {
        method: "POST".into(),
        path: "/new_post".into(),
        raw_query: "tag=a&tag=b&q=hello+world%21".into(),
        headers: vec![
            ("Content-Type".into(), "application/json".into()),
            ("Host".into(), "blogapi.execute-api.us-east-1.amazonaws.com".into()),
            ("traceparent".into(), traceparent()),
            ("User-Agent".into(), "curl/8.5.0".into()),
            ("Accept".into(), "text/plain".into()),
            ("accept".into(), "application/json".into()),
            ("Cookie".into(), "a=1; b=2".into()),
        ],
        body: br#"{"title":"hi"}"#.to_vec(),
        source_ip: "127.0.0.1".into(),
    }
}

#[test]
fn http_api_event_is_payload_v2() {
    let route = HttpApiRoute { api_id: "blogapi".into(), route_key: "POST /new_post".into(), stage: "$default".into() };
    let event = http_api_event(&request(), &route, "req-1", 1_795_563_900_000);
    assert_eq!(event["version"], "2.0");
    assert_eq!(event["routeKey"], "POST /new_post");
    assert_eq!(event["rawPath"], "/new_post");
    assert_eq!(event["cookies"], json!(["a=1", "b=2"]));
    assert_eq!(event["headers"]["accept"], "text/plain,application/json");
    assert_eq!(event["headers"]["content-type"], "application/json");
    assert!(event["headers"].get("cookie").is_none());
    assert_eq!(event["queryStringParameters"], json!({"tag": "a,b", "q": "hello world!"}));
    assert_eq!(event["requestContext"]["time"], "24/Nov/2026:23:45:00 +0000");
    assert_eq!(event["requestContext"]["timeEpoch"], 1_795_563_900_000_u64);
    assert_eq!(event["requestContext"]["http"]["userAgent"], "curl/8.5.0");
    assert_eq!(event["requestContext"]["domainPrefix"], "blogapi");
    assert_eq!(event["body"], r#"{"title":"hi"}"#);
    assert_eq!(event["isBase64Encoded"], false);
    let trigger = run(&event);
    assert_eq!(trigger.source, Some(TriggerSource::ApiGatewayHttp));
    assert_eq!(trigger.span_name.as_deref(), Some("POST /new_post"));
    assert_parent(&trigger);
    let typed: ale::apigw::ApiGatewayV2httpRequest = serde_json::from_value(event).unwrap();
    assert_eq!(typed.request_context.http.path.as_deref(), Some("/new_post"));

    // Path parameters, a binary body, no query.
    let mut binary = request();
    binary.path = "/posts/42".into();
    binary.raw_query = String::new();
    binary.body = vec![0xff, 0x00, 0x80];
    let route = HttpApiRoute { api_id: "x".into(), route_key: "GET /posts/{id}".into(), stage: "$default".into() };
    binary.method = "GET".into();
    let event = http_api_event(&binary, &route, "req-2", 0);
    assert_eq!(event["pathParameters"], json!({"id": "42"}));
    assert_eq!(event["isBase64Encoded"], true);
    assert_eq!(event["body"], "/wCA");
    assert!(event.get("queryStringParameters").is_none());
    assert_eq!(event["requestContext"]["time"], "01/Jan/1970:00:00:00 +0000");
    let _: ale::apigw::ApiGatewayV2httpRequest = serde_json::from_value(event).unwrap();
}

#[test]
fn rest_api_event_is_payload_v1() {
    let route = RestApiRoute { api_id: "restapi".into(), resource: "/{proxy+}".into(), stage: "Prod".into() };
    let event = rest_api_event(&request(), &route, "req-3", 1_589_522_469_693);
    assert_eq!(event["httpMethod"], "POST");
    assert_eq!(event["resource"], "/{proxy+}");
    assert_eq!(event["pathParameters"], json!({"proxy": "new_post"}));
    assert_eq!(event["multiValueHeaders"]["Accept"], json!(["text/plain"]));
    assert_eq!(event["multiValueQueryStringParameters"]["tag"], json!(["a", "b"]));
    assert_eq!(event["queryStringParameters"]["tag"], "b");
    assert_eq!(event["requestContext"]["requestTime"], "15/May/2020:06:01:09 +0000");
    let trigger = run(&event);
    assert_eq!(trigger.source, Some(TriggerSource::ApiGatewayRest));
    assert_parent(&trigger);
    let typed: ale::apigw::ApiGatewayProxyRequest = serde_json::from_value(event).unwrap();
    assert_eq!(typed.path.as_deref(), Some("/new_post"));
}

#[test]
fn route_matching() {
    assert_eq!(match_route_path("/posts/{id}", "/posts/4%202"), Some(BTreeMap::from([("id".into(), "4 2".into())])));
    assert_eq!(match_route_path("/posts/{id}", "/posts"), None);
    assert_eq!(match_route_path("/posts/{id}", "/posts/1/x"), None);
    assert_eq!(match_route_path("/{proxy+}", "/a/b"), Some(BTreeMap::from([("proxy".into(), "a/b".into())])));
    assert_eq!(match_route_path("/new_post", "/new_post"), Some(BTreeMap::new()));
    assert!(route_key_matches("ANY /x", "DELETE", "/x").is_some());
    assert!(route_key_matches("POST /x", "GET", "/x").is_none());
    assert!(route_key_matches("$default", "GET", "/anything").is_some());
}

#[test]
fn http_responses() {
    let r = http_response(
        &json!({"statusCode": 201, "headers": {"content-type": "application/json"}, "body": "{\"id\":1}"}),
    );
    assert_eq!(r.status, 201);
    assert_eq!(r.body, b"{\"id\":1}");
    assert_eq!(r.headers, vec![("content-type".to_owned(), "application/json".to_owned())]);
    let r = http_response(&json!({
        "statusCode": "200", "isBase64Encoded": true, "body": "/wCA",
        "cookies": ["a=1; Path=/"], "multiValueHeaders": {"x-a": ["1", "2"]}, "headers": {"x-a": "0", "x-n": 5}
    }));
    assert_eq!(r.status, 200);
    assert_eq!(r.body, vec![0xff, 0x00, 0x80]);
    assert_eq!(
        r.headers,
        vec![
            ("x-n".to_owned(), "5".to_owned()),
            ("x-a".to_owned(), "1".to_owned()),
            ("x-a".to_owned(), "2".to_owned()),
            ("set-cookie".to_owned(), "a=1; Path=/".to_owned()),
        ]
    );
    let plain = http_response(&json!({"hello": "world"}));
    assert_eq!((plain.status, plain.body.as_slice()), (200, br#"{"hello":"world"}"#.as_slice()));
    assert_eq!(plain.headers[0].1, "application/json");
    assert_eq!(http_response(&json!({"statusCode": 99})).status, 502);
    assert_eq!(http_response(&json!({"statusCode": "x"})).status, 502);
    assert_eq!(http_response(&json!({"statusCode": 200, "isBase64Encoded": true, "body": "!!"})).status, 502);
    assert_eq!(http_response(&json!({"statusCode": 204})).body, b"");
}

/// The envelope as the blog-site e2e test reads it from the SNS-subscribed queue.
fn envelope() -> Value {
    json!({
        "Type": "Notification",
        "MessageId": "63a3f6b6-d533-4a47-aef9-fcf5cf758c76",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:Posts-Notifications",
        "Message": "{\"id\":\"abc\"}",
        "Timestamp": "2026-11-24T23:45:00.000Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLE",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/cert.pem",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
        "MessageAttributes": {"traceparent": {"Type": "String", "Value": traceparent()}}
    })
}

#[test]
fn sns_event_from_the_envelope() {
    let event = sns_event(&envelope(), "arn:aws:sns:us-east-1:123456789012:Posts-Notifications:post-analysis");
    let sns = &event["Records"][0]["Sns"];
    assert_eq!(event["Records"][0]["EventSource"], "aws:sns");
    assert_eq!(sns["SigningCertUrl"], "https://sns.us-east-1.amazonaws.com/cert.pem");
    assert_eq!(sns["UnsubscribeUrl"], "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe");
    assert!(sns.get("SigningCertURL").is_none());
    assert_eq!(sns["Subject"], Value::Null);
    let trigger = run(&event);
    assert_eq!(trigger.source, Some(TriggerSource::Sns));
    assert_parent(&trigger);
    let typed: ale::sns::SnsEvent = serde_json::from_value(event).unwrap();
    assert_eq!(typed.records[0].sns.message, "{\"id\":\"abc\"}");
}

#[test]
fn sqs_event_from_received_messages() {
    let messages = [
        SqsMessage {
            message_id: "m1".into(),
            receipt_handle: "r1".into(),
            body: "hello".into(),
            attributes: BTreeMap::from([("ApproximateReceiveCount".into(), "1".into())]),
            message_attributes: BTreeMap::from([(
                "traceparent".into(),
                SqsMessageAttribute {
                    data_type: "String".into(),
                    string_value: Some(traceparent()),
                    binary_value: None,
                },
            )]),
        },
        SqsMessage {
            message_id: "m2".into(),
            receipt_handle: "r2".into(),
            body: envelope().to_string(),
            ..SqsMessage::default()
        },
    ];
    let event = sqs_event(&messages, "arn:aws:sqs:us-east-1:123456789012:jobs", "us-east-1");
    let first = &event["Records"][0];
    assert_eq!(first["md5OfBody"], "5d41402abc4b2a76b9719d911017c592");
    assert_eq!(first["messageAttributes"]["traceparent"]["stringValue"], traceparent());
    assert_eq!(first["messageAttributes"]["traceparent"]["dataType"], "String");
    assert!(first["md5OfMessageAttributes"].is_string());
    assert_eq!(event["Records"][1]["md5OfMessageAttributes"], Value::Null);
    let trigger = run(&event);
    assert_eq!(trigger.source, Some(TriggerSource::Sqs));
    // Both records carry the same upstream context: one in its attributes, one in the SNS
    // envelope of its body.
    assert_parent(&trigger);
    let typed: ale::sqs::SqsEvent = serde_json::from_value(event).unwrap();
    assert_eq!(typed.records.len(), 2);
}

#[test]
fn kinesis_event_from_get_records() {
    let data = BASE64.encode(json!({"id": "abc", "_flowtrace": {"traceparent": traceparent()}}).to_string());
    let records = [KinesisRecord {
        partition_key: "abc".into(),
        sequence_number: "4959".into(),
        data_base64: data,
        approximate_arrival_timestamp: 1_795_650_300.5,
    }];
    let event = kinesis_event(
        &records,
        "arn:aws:kinesis:us-east-1:123456789012:stream/Post-Analysis-Stream",
        "shardId-000000000000",
        "us-east-1",
        "arn:aws:iam::123456789012:role/kinesis-analysis",
    );
    assert_eq!(event["Records"][0]["eventID"], "shardId-000000000000:4959");
    let trigger = run(&event);
    assert_eq!(trigger.source, Some(TriggerSource::Kinesis));
    assert_parent(&trigger);
    let typed: ale::kinesis::KinesisEvent = serde_json::from_value(event).unwrap();
    assert_eq!(typed.records[0].kinesis.partition_key, "abc");
}

#[test]
fn dynamodb_event_from_stream_records() {
    let record = json!({
        "eventID": "1",
        "eventName": "INSERT",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "ApproximateCreationDateTime": 1_795_650_300,
            "Keys": {"id": {"S": "abc"}},
            "NewImage": {"id": {"S": "abc"}, "_flowtrace": {"M": {"traceparent": {"S": traceparent()}}}},
            "SequenceNumber": "100",
            "SizeBytes": 40,
            "StreamViewType": "NEW_AND_OLD_IMAGES"
        }
    });
    let arn = "arn:aws:dynamodb:us-east-1:123456789012:table/BlogPostsDB/stream/2026-11-24T23:45:00.000";
    let event = dynamodb_event(&[record], arn, "us-east-1");
    assert_eq!(event["Records"][0]["eventSourceARN"], arn);
    assert_eq!(event["Records"][0]["dynamodb"]["Keys"]["id"]["S"], "abc");
    let trigger = run(&event);
    assert_eq!(trigger.source, Some(TriggerSource::DynamoDb));
    assert_parent(&trigger);
    let typed: ale::dynamodb::Event = serde_json::from_value(event).unwrap();
    assert_eq!(typed.records[0].event_name, "INSERT");
    // A bare record gets the fields it lacks.
    let bare = dynamodb_event(&[json!({"eventName": "REMOVE", "dynamodb": {}})], arn, "eu-west-1");
    assert_eq!(bare["Records"][0]["awsRegion"], "eu-west-1");
    assert_eq!(bare["Records"][0]["eventSource"], "aws:dynamodb");
}

#[test]
fn schedule_and_eventbridge_events() {
    let rule = "arn:aws:events:eu-west-1:123456789012:rule/tick";
    let event = schedule_event(rule, "id-1", 1_444_323_186_000, None);
    assert_eq!(event["time"], "2015-10-08T16:53:06Z");
    assert_eq!(event["region"], "eu-west-1");
    assert_eq!(event["resources"], json!([rule]));
    assert_eq!(run(&event).source, Some(TriggerSource::Schedule));
    let typed: ale::cloudwatch_events::CloudWatchEvent = serde_json::from_value(event).unwrap();
    assert_eq!(typed.detail_type.as_deref(), Some("Scheduled Event"));
    assert_eq!(schedule_event(rule, "id", 0, Some(&json!({"x": 1}))), json!({"x": 1}));

    let entry = EventBridgeEntry {
        source: "blog.posts".into(),
        detail_type: "PostCreated".into(),
        detail: json!({"id": "abc", "_flowtrace": {"traceparent": traceparent()}}),
        resources: vec![],
    };
    let event = eventbridge_event(&entry, "id-2", "us-east-1", 1_795_563_900_000);
    assert_eq!(event["detail-type"], "PostCreated");
    assert_eq!(event["time"], "2026-11-24T23:45:00Z");
    let trigger = run(&event);
    assert_eq!(trigger.source, Some(TriggerSource::EventBridge));
    assert_parent(&trigger);
    let _: ale::eventbridge::EventBridgeEvent = serde_json::from_value(event).unwrap();
}

#[test]
fn times() {
    assert_eq!(apigw_time(1_587_481_701_067), "21/Apr/2020:15:08:21 +0000");
    assert_eq!(rfc3339_millis(1_439_920_952_111), "2015-08-18T18:02:32.111Z");
    assert_eq!(rfc3339_seconds(951_782_400_000), "2000-02-29T00:00:00Z");
}
