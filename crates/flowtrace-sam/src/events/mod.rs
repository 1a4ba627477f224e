//! The Lambda events AWS's event sources deliver, built from what a local runner has in hand
//! (an HTTP request, an SNS envelope from a subscribed queue, Kinesis and DynamoDB Streams
//! `GetRecords` output), in the exact JSON shapes AWS sends.

mod md5;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value, json};

/// The account id in the events (moto's default account).
pub const ACCOUNT_ID: &str = "123456789012";

/// An HTTP request as the local listener received it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path, without the query string (`/posts/42`).
    pub path: String,
    /// The query string without `?` (`a=1&b=2`), as received.
    pub raw_query: String,
    /// The headers in order; a name may repeat.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// The client's address.
    pub source_ip: String,
}

/// The HTTP API route a request matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpApiRoute {
    /// The API id (`blogapi`).
    pub api_id: String,
    /// The route key: `POST /new_post`, `GET /posts/{id}`, `ANY /{proxy+}` or `$default`.
    pub route_key: String,
    /// The stage (`$default`).
    pub stage: String,
}

/// The REST API resource a request matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestApiRoute {
    /// The API id.
    pub api_id: String,
    /// The resource path: `/posts/{id}`, `/{proxy+}`.
    pub resource: String,
    /// The stage (`Prod`).
    pub stage: String,
}

/// What the HTTP listener sends back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The headers in order; a name may repeat (`set-cookie`).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// An SQS message as `ReceiveMessage` returned it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SqsMessage {
    /// `MessageId`.
    pub message_id: String,
    /// `ReceiptHandle`.
    pub receipt_handle: String,
    /// `Body`.
    pub body: String,
    /// `Attributes` (`SentTimestamp`, `ApproximateReceiveCount`, ...).
    pub attributes: BTreeMap<String, String>,
    /// `MessageAttributes`.
    pub message_attributes: BTreeMap<String, SqsMessageAttribute>,
}

/// One SQS message attribute.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SqsMessageAttribute {
    /// `DataType`: `String`, `Number`, `Binary` (optionally with a `.custom` suffix).
    pub data_type: String,
    /// `StringValue`.
    pub string_value: Option<String>,
    /// `BinaryValue`, base64.
    pub binary_value: Option<String>,
}

/// A Kinesis record as `GetRecords` returned it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KinesisRecord {
    /// `PartitionKey`.
    pub partition_key: String,
    /// `SequenceNumber`.
    pub sequence_number: String,
    /// `Data`, base64 (as the JSON API returns it).
    pub data_base64: String,
    /// `ApproximateArrivalTimestamp`, epoch seconds.
    pub approximate_arrival_timestamp: f64,
}

/// An event put on an EventBridge bus (`PutEvents` entry).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventBridgeEntry {
    /// `Source`.
    pub source: String,
    /// `DetailType`.
    pub detail_type: String,
    /// `Detail`, parsed.
    pub detail: Value,
    /// `Resources`.
    pub resources: Vec<String>,
}

// ---------------------------------------------------------------------------------------
// Time

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u64,
    minute: u64,
    second: u64,
    millis: u64,
}

fn civil(epoch_ms: u64) -> Civil {
    let secs = epoch_ms / 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let (year, month, day) = civil_from_days(days);
    let rem = secs % 86_400;
    Civil { year, month, day, hour: rem / 3600, minute: rem % 3600 / 60, second: rem % 60, millis: epoch_ms % 1000 }
}

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// `24/Nov/2026:23:45:00 +0000`: API Gateway's `requestContext.time`.
pub fn apigw_time(epoch_ms: u64) -> String {
    let c = civil(epoch_ms);
    let month = MONTHS.get(c.month as usize - 1).copied().unwrap_or("Jan");
    format!("{:02}/{month}/{}:{:02}:{:02}:{:02} +0000", c.day, c.year, c.hour, c.minute, c.second)
}

/// `2026-11-24T23:45:00Z`: EventBridge's `time`.
pub fn rfc3339_seconds(epoch_ms: u64) -> String {
    let c = civil(epoch_ms);
    format!("{}-{:02}-{:02}T{:02}:{:02}:{:02}Z", c.year, c.month, c.day, c.hour, c.minute, c.second)
}

/// `2026-11-24T23:45:00.123Z`: SNS's `Timestamp`.
pub fn rfc3339_millis(epoch_ms: u64) -> String {
    let c = civil(epoch_ms);
    format!("{}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", c.year, c.month, c.day, c.hour, c.minute, c.second, c.millis)
}

// ---------------------------------------------------------------------------------------
// HTTP

/// Decodes `%XX` and (for query strings) `+`.
fn percent_decode(text: &str, plus_is_space: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The query string's parameters in order, decoded.
fn query_pairs(raw_query: &str) -> Vec<(String, String)> {
    raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect()
}

/// Matches a route path (`/posts/{id}`, `/files/{proxy+}`) against a request path, giving the
/// path parameters, or `None` when it does not match.
pub fn match_route_path(route: &str, path: &str) -> Option<BTreeMap<String, String>> {
    let mut params = BTreeMap::new();
    let route_parts: Vec<&str> = route.trim_start_matches('/').split('/').collect();
    let path_parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    for (i, part) in route_parts.iter().enumerate() {
        if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix("+}")) {
            if i != route_parts.len() - 1 {
                return None;
            }
            let rest = path_parts.get(i..)?.join("/");
            if rest.is_empty() {
                return None;
            }
            params.insert(name.to_owned(), percent_decode(&rest, false));
            return Some(params);
        }
        let actual = path_parts.get(i)?;
        if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            if actual.is_empty() {
                return None;
            }
            params.insert(name.to_owned(), percent_decode(actual, false));
        } else if part != actual {
            return None;
        }
    }
    (route_parts.len() == path_parts.len()).then_some(params)
}

/// Whether an HTTP API route key (`POST /new_post`, `ANY /{proxy+}`, `$default`) matches.
pub fn route_key_matches(route_key: &str, method: &str, path: &str) -> Option<BTreeMap<String, String>> {
    if route_key == "$default" {
        return Some(BTreeMap::new());
    }
    let (route_method, route_path) = route_key.split_once(' ')?;
    if !route_method.eq_ignore_ascii_case("ANY") && !route_method.eq_ignore_ascii_case(method) {
        return None;
    }
    match_route_path(route_path, path)
}

fn body_field(body: &[u8]) -> (Option<String>, bool) {
    if body.is_empty() {
        return (None, false);
    }
    match std::str::from_utf8(body) {
        Ok(text) => (Some(text.to_owned()), false),
        Err(_) => (Some(BASE64.encode(body)), true),
    }
}

fn header<'a>(request: &'a HttpRequest, name: &str) -> Option<&'a str> {
    request.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

fn domain(request: &HttpRequest, api_id: &str) -> String {
    header(request, "host")
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{api_id}.execute-api.us-east-1.amazonaws.com"))
}

fn path_parameters(params: Option<BTreeMap<String, String>>) -> Option<Value> {
    params.filter(|p| !p.is_empty()).map(|p| json!(p))
}

/// The API Gateway HTTP API (payload format 2.0) event for `request` on `route`.
///
/// Cookies go to `cookies`, the other headers are lower-cased and repeated ones comma-joined;
/// query parameters are decoded and repeated ones comma-joined; a body that is not UTF-8 is
/// base64 with `isBase64Encoded`.
pub fn http_api_event(request: &HttpRequest, route: &HttpApiRoute, request_id: &str, time_epoch_ms: u64) -> Value {
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    let mut cookies = Vec::new();
    for (name, value) in &request.headers {
        if name.eq_ignore_ascii_case("cookie") {
            cookies.extend(value.split(';').map(str::trim).filter(|c| !c.is_empty()).map(str::to_owned));
        }
    }
    for (name, value) in &request.headers {
        let name = name.to_ascii_lowercase();
        if name == "cookie" {
            continue;
        }
        match headers.get_mut(&name) {
            Some(existing) => {
                existing.push(',');
                existing.push_str(value);
            }
            None => {
                headers.insert(name, value.clone());
            }
        }
    }
    let mut query: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in query_pairs(&request.raw_query) {
        match query.get_mut(&k) {
            Some(existing) => {
                existing.push(',');
                existing.push_str(&v);
            }
            None => {
                query.insert(k, v);
            }
        }
    }
    let (body, is_base64) = body_field(&request.body);
    let domain = domain(request, &route.api_id);
    let domain_prefix = domain.split('.').next().unwrap_or(&domain).to_owned();
    let user_agent = header(request, "user-agent").unwrap_or("");
    let mut event = json!({
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": request.path,
        "rawQueryString": request.raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": route.api_id,
            "domainName": domain,
            "domainPrefix": domain_prefix,
            "http": {
                "method": request.method.to_ascii_uppercase(),
                "path": request.path,
                "protocol": "HTTP/1.1",
                "sourceIp": request.source_ip,
                "userAgent": user_agent,
            },
            "requestId": request_id,
            "routeKey": route.route_key,
            "stage": route.stage,
            "time": apigw_time(time_epoch_ms),
            "timeEpoch": time_epoch_ms,
        },
        "isBase64Encoded": is_base64,
    });
    if let Value::Object(map) = &mut event {
        if !cookies.is_empty() {
            map.insert("cookies".to_owned(), json!(cookies));
        }
        if !query.is_empty() {
            map.insert("queryStringParameters".to_owned(), json!(query));
        }
        let params = route_key_matches(&route.route_key, &request.method, &request.path);
        if let Some(params) = path_parameters(params) {
            map.insert("pathParameters".to_owned(), params);
        }
        if let Some(body) = body {
            map.insert("body".to_owned(), Value::String(body));
        }
    }
    event
}

/// The API Gateway REST API (payload format 1.0) event for `request` on `route`: headers as
/// sent (the last value wins in `headers`, all in `multiValueHeaders`), the same for query
/// parameters, `null` where there are none.
pub fn rest_api_event(request: &HttpRequest, route: &RestApiRoute, request_id: &str, time_epoch_ms: u64) -> Value {
    let mut headers = Map::new();
    let mut multi_headers: Map<String, Value> = Map::new();
    for (name, value) in &request.headers {
        headers.insert(name.clone(), Value::String(value.clone()));
        match multi_headers.get_mut(name) {
            Some(Value::Array(values)) => values.push(Value::String(value.clone())),
            _ => {
                multi_headers.insert(name.clone(), json!([value]));
            }
        }
    }
    let mut query = Map::new();
    let mut multi_query: Map<String, Value> = Map::new();
    for (k, v) in query_pairs(&request.raw_query) {
        query.insert(k.clone(), Value::String(v.clone()));
        match multi_query.get_mut(&k) {
            Some(Value::Array(values)) => values.push(Value::String(v)),
            _ => {
                multi_query.insert(k, json!([v]));
            }
        }
    }
    let or_null = |m: Map<String, Value>| if m.is_empty() { Value::Null } else { Value::Object(m) };
    let (body, is_base64) = body_field(&request.body);
    let domain = domain(request, &route.api_id);
    let domain_prefix = domain.split('.').next().unwrap_or(&domain).to_owned();
    let params = match_route_path(&route.resource, &request.path);
    let method = request.method.to_ascii_uppercase();
    json!({
        "resource": route.resource,
        "path": request.path,
        "httpMethod": method,
        "headers": or_null(headers),
        "multiValueHeaders": or_null(multi_headers),
        "queryStringParameters": or_null(query),
        "multiValueQueryStringParameters": or_null(multi_query),
        "pathParameters": path_parameters(params),
        "stageVariables": null,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": route.api_id,
            "domainName": domain,
            "domainPrefix": domain_prefix,
            "httpMethod": method,
            "identity": {
                "sourceIp": request.source_ip,
                "userAgent": header(request, "user-agent"),
            },
            "path": format!("/{}{}", route.stage, request.path),
            "protocol": "HTTP/1.1",
            "requestId": request_id,
            "requestTime": apigw_time(time_epoch_ms),
            "requestTimeEpoch": time_epoch_ms,
            "resourceId": "local",
            "resourcePath": route.resource,
            "stage": route.stage,
        },
        "body": body,
        "isBase64Encoded": is_base64,
    })
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn bad_gateway() -> HttpResponse {
    HttpResponse {
        status: 502,
        headers: vec![("content-type".to_owned(), "application/json".to_owned())],
        body: br#"{"message":"Internal Server Error"}"#.to_vec(),
    }
}

/// What API Gateway answers for a handler's response: a v2/v1 response object (`statusCode`,
/// `headers`, `multiValueHeaders`, `cookies`, `body`, `isBase64Encoded`), or any other JSON
/// value, which an HTTP API sends as a 200 `application/json` body. A malformed response
/// object (a bad status, a body that is not valid base64) is a 502, as API Gateway gives.
pub fn http_response(response: &Value) -> HttpResponse {
    let Some(object) = response.as_object().filter(|o| o.contains_key("statusCode")) else {
        return HttpResponse {
            status: 200,
            headers: vec![("content-type".to_owned(), "application/json".to_owned())],
            body: response.to_string().into_bytes(),
        };
    };
    let status = match object.get("statusCode") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    let Some(status) = status.and_then(|s| u16::try_from(s).ok()).filter(|s| (100..=599).contains(s)) else {
        return bad_gateway();
    };
    let mut headers = Vec::new();
    if let Some(Value::Object(map)) = object.get("headers") {
        headers.extend(map.iter().filter_map(|(k, v)| scalar_text(v).map(|v| (k.clone(), v))));
    }
    if let Some(Value::Object(map)) = object.get("multiValueHeaders") {
        for (name, values) in map {
            let Value::Array(values) = values else { continue };
            headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
            headers.extend(values.iter().filter_map(scalar_text).map(|v| (name.clone(), v)));
        }
    }
    if let Some(Value::Array(cookies)) = object.get("cookies") {
        headers.extend(cookies.iter().filter_map(scalar_text).map(|c| ("set-cookie".to_owned(), c)));
    }
    let base64 = object.get("isBase64Encoded").and_then(Value::as_bool).unwrap_or(false);
    let body = match object.get("body") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(text)) if base64 => match BASE64.decode(text.trim()) {
            Ok(bytes) => bytes,
            Err(_) => return bad_gateway(),
        },
        Some(Value::String(text)) => text.clone().into_bytes(),
        Some(other) => other.to_string().into_bytes(),
    };
    HttpResponse { status, headers, body }
}

// ---------------------------------------------------------------------------------------
// Messaging and streams

fn text(value: Option<&Value>) -> Value {
    Value::String(value.and_then(scalar_text).unwrap_or_default())
}

/// The SNS event Lambda delivers for one notification, from the JSON envelope an SNS→SQS
/// (non-raw) subscription stores: `SigningCertURL` and `UnsubscribeURL` become
/// `SigningCertUrl` and `UnsubscribeUrl`, a missing `Subject` is `null`.
pub fn sns_event(envelope: &Value, subscription_arn: &str) -> Value {
    let get = |key: &str| envelope.get(key);
    let attributes = match get("MessageAttributes") {
        Some(Value::Object(map)) => Value::Object(map.clone()),
        _ => json!({}),
    };
    let subject = match get("Subject") {
        Some(Value::String(s)) => Value::String(s.clone()),
        _ => Value::Null,
    };
    json!({"Records": [{
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "EventSubscriptionArn": subscription_arn,
        "Sns": {
            "Type": get("Type").and_then(Value::as_str).unwrap_or("Notification"),
            "MessageId": text(get("MessageId")),
            "TopicArn": text(get("TopicArn")),
            "Subject": subject,
            "Message": text(get("Message")),
            "Timestamp": text(get("Timestamp")),
            "SignatureVersion": get("SignatureVersion").and_then(scalar_text).unwrap_or_else(|| "1".to_owned()),
            "Signature": text(get("Signature")),
            "SigningCertUrl": text(get("SigningCertURL").or_else(|| get("SigningCertUrl"))),
            "UnsubscribeUrl": text(get("UnsubscribeURL").or_else(|| get("UnsubscribeUrl"))),
            "MessageAttributes": attributes,
        },
    }]})
}

/// The region of an ARN (`arn:aws:sqs:REGION:...`), if it has one.
fn arn_region(arn: &str) -> Option<&str> {
    arn.split(':').nth(3).filter(|r| !r.is_empty())
}

/// The account of an ARN.
fn arn_account(arn: &str) -> Option<&str> {
    arn.split(':').nth(4).filter(|a| !a.is_empty())
}

/// The SQS event Lambda delivers for a batch received from `queue_arn`.
pub fn sqs_event(messages: &[SqsMessage], queue_arn: &str, region: &str) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            let attributes: Map<String, Value> =
                m.message_attributes.iter().map(|(name, a)| (name.clone(), sqs_attribute(a))).collect();
            json!({
                "messageId": m.message_id,
                "receiptHandle": m.receipt_handle,
                "body": m.body,
                "attributes": m.attributes,
                "messageAttributes": attributes,
                "md5OfBody": md5::hex(m.body.as_bytes()),
                "md5OfMessageAttributes": md5_of_attributes(&m.message_attributes),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            })
        })
        .collect();
    json!({ "Records": records })
}

fn sqs_attribute(attribute: &SqsMessageAttribute) -> Value {
    let mut out = Map::new();
    if let Some(s) = &attribute.string_value {
        out.insert("stringValue".to_owned(), Value::String(s.clone()));
    }
    if let Some(b) = &attribute.binary_value {
        out.insert("binaryValue".to_owned(), Value::String(b.clone()));
    }
    out.insert("stringListValues".to_owned(), json!([]));
    out.insert("binaryListValues".to_owned(), json!([]));
    out.insert("dataType".to_owned(), Value::String(attribute.data_type.clone()));
    Value::Object(out)
}

/// SQS's `MD5OfMessageAttributes`: the MD5 of the attributes encoded name by name, in name
/// order (length-prefixed name, type, a transport byte, length-prefixed value).
fn md5_of_attributes(attributes: &BTreeMap<String, SqsMessageAttribute>) -> Value {
    if attributes.is_empty() {
        return Value::Null;
    }
    let mut buffer = Vec::new();
    let push = |buffer: &mut Vec<u8>, bytes: &[u8]| {
        buffer.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_be_bytes());
        buffer.extend_from_slice(bytes);
    };
    for (name, attribute) in attributes {
        push(&mut buffer, name.as_bytes());
        push(&mut buffer, attribute.data_type.as_bytes());
        if let Some(binary) = &attribute.binary_value {
            buffer.push(2);
            push(&mut buffer, &BASE64.decode(binary).unwrap_or_default());
        } else {
            buffer.push(1);
            push(&mut buffer, attribute.string_value.as_deref().unwrap_or("").as_bytes());
        }
    }
    Value::String(md5::hex(&buffer))
}

/// The Kinesis event Lambda delivers for a batch read from `shard_id` of `stream_arn`.
pub fn kinesis_event(
    records: &[KinesisRecord],
    stream_arn: &str,
    shard_id: &str,
    region: &str,
    function_role_arn: &str,
) -> Value {
    let records: Vec<Value> = records
        .iter()
        .map(|r| {
            json!({
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": r.partition_key,
                    "sequenceNumber": r.sequence_number,
                    "data": r.data_base64,
                    "approximateArrivalTimestamp": r.approximate_arrival_timestamp,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": format!("{shard_id}:{}", r.sequence_number),
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": function_role_arn,
                "awsRegion": region,
                "eventSourceARN": stream_arn,
            })
        })
        .collect();
    json!({ "Records": records })
}

/// The DynamoDB Streams event Lambda delivers for records as DynamoDB Streams `GetRecords`
/// returns them: each gets `eventSourceARN` (and `awsRegion`, `eventSource`, `eventVersion`
/// when missing); the rest is kept as is.
pub fn dynamodb_event(records: &[Value], stream_arn: &str, region: &str) -> Value {
    let records: Vec<Value> = records
        .iter()
        .map(|record| {
            let mut record = record.clone();
            if let Value::Object(map) = &mut record {
                map.insert("eventSourceARN".to_owned(), Value::String(stream_arn.to_owned()));
                map.entry("awsRegion").or_insert_with(|| Value::String(region.to_owned()));
                map.entry("eventSource").or_insert_with(|| Value::String("aws:dynamodb".to_owned()));
                map.entry("eventVersion").or_insert_with(|| Value::String("1.1".to_owned()));
            }
            record
        })
        .collect();
    json!({ "Records": records })
}

/// What a `Schedule` event delivers at `time_epoch_ms`: the scheduled event of `rule_arn`, or
/// `input` (the event's `Input`) when the template sets one.
pub fn schedule_event(rule_arn: &str, id: &str, time_epoch_ms: u64, input: Option<&Value>) -> Value {
    if let Some(input) = input {
        return input.clone();
    }
    json!({
        "version": "0",
        "id": id,
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": arn_account(rule_arn).unwrap_or(ACCOUNT_ID),
        "time": rfc3339_seconds(time_epoch_ms),
        "region": arn_region(rule_arn).unwrap_or("us-east-1"),
        "resources": [rule_arn],
        "detail": {},
    })
}

/// The event an `EventBridgeRule` target receives for a `PutEvents` entry.
pub fn eventbridge_event(entry: &EventBridgeEntry, id: &str, region: &str, time_epoch_ms: u64) -> Value {
    json!({
        "version": "0",
        "id": id,
        "detail-type": entry.detail_type,
        "source": entry.source,
        "account": ACCOUNT_ID,
        "time": rfc3339_seconds(time_epoch_ms),
        "region": region,
        "resources": entry.resources,
        "detail": entry.detail,
    })
}
