//! HTTP triggers: API Gateway REST (payload 1.0), HTTP API (payload 2.0), ALB and Function
//! URLs.

use super::{Ctx, base, kv, push_str, record, str_at};
use crate::trigger::carrier::{HeaderCarrier, extract_context};
use crate::trigger::{Trigger, TriggerSource};
use flowtrace_contract::attr;
use opentelemetry::KeyValue;
use opentelemetry::trace::SpanKind;
use opentelemetry_semantic_conventions::attribute as semconv;
use serde_json::{Map, Value};

/// The methods semantic conventions know; anything else is recorded as `_OTHER`.
const KNOWN_METHODS: [&str; 9] = ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"];

/// Recognises an HTTP event from its `requestContext`.
pub(super) fn detect(event: &Map<String, Value>, cx: Ctx<'_>) -> Option<Trigger> {
    let request_context = event.get("requestContext")?;
    if !request_context.is_object() {
        return None;
    }
    if request_context.get("elb").is_some_and(Value::is_object) {
        return Some(alb(event, cx));
    }
    let is_v2 = event.get("version").and_then(Value::as_str) == Some("2.0");
    if is_v2 && request_context.get("http").is_some_and(Value::is_object) {
        return Some(v2(event, request_context, cx));
    }
    // REST; a Lambda authorizer's request (it has a `methodArn`) is not an HTTP request.
    if event.get("httpMethod").is_some_and(Value::is_string) && !event.contains_key("methodArn") {
        return Some(rest(event, request_context, cx));
    }
    None
}

/// What the HTTP sources have in common, borrowed from the event.
struct Request<'a> {
    source: TriggerSource,
    method: &'a str,
    route: Option<&'a str>,
    path: Option<&'a str>,
    headers: HeaderCarrier<'a>,
    default_scheme: Option<&'static str>,
    host: Option<&'a str>,
    user_agent: Option<&'a str>,
    client_address: Option<&'a str>,
    request_id: Option<&'a str>,
}

fn headers(event: &Map<String, Value>) -> HeaderCarrier<'_> {
    HeaderCarrier::new(
        event.get("headers").and_then(Value::as_object),
        event.get("multiValueHeaders").and_then(Value::as_object),
    )
}

/// The span, its standard `http.*`/`url.*` attributes and the context the headers carried,
/// with room for `extra` source-specific attributes.
fn build(request: Request<'_>, extra: usize, cx: Ctx<'_>) -> Trigger {
    let known = KNOWN_METHODS.iter().copied().find(|known| *known == request.method);
    let name = match (known, request.route) {
        (Some(method), Some(route)) => format!("{method} {route}"),
        (Some(method), None) => method.to_owned(),
        (None, Some(route)) => format!("HTTP {route}"),
        (None, None) => "HTTP".to_owned(),
    };
    let mut trigger = base(request.source, SpanKind::Server, Some(name), 8 + extra);
    let attributes = &mut trigger.attributes;
    match known {
        Some(method) => attributes.push(KeyValue::new(semconv::HTTP_REQUEST_METHOD, method)),
        None => {
            attributes.push(KeyValue::new(semconv::HTTP_REQUEST_METHOD, "_OTHER"));
            if !request.method.is_empty() {
                attributes.push(kv(semconv::HTTP_REQUEST_METHOD_ORIGINAL, request.method));
            }
        }
    }
    push_str(attributes, semconv::HTTP_ROUTE, request.route);
    push_str(attributes, semconv::URL_PATH, request.path);
    match request.headers.header("x-forwarded-proto") {
        Some(scheme) => attributes.push(kv(semconv::URL_SCHEME, scheme)),
        None => {
            if let Some(scheme) = request.default_scheme {
                attributes.push(KeyValue::new(semconv::URL_SCHEME, scheme));
            }
        }
    }
    push_str(attributes, semconv::SERVER_ADDRESS, request.headers.header("host").or(request.host));
    push_str(attributes, semconv::USER_AGENT_ORIGINAL, request.headers.header("user-agent").or(request.user_agent));
    push_str(attributes, semconv::CLIENT_ADDRESS, request.client_address);

    let parent = extract_context(cx.propagator, &request.headers);
    trigger.records.push(record(parent, request.request_id, 0));
    trigger
}

/// API Gateway REST API, payload format 1.0: `"{httpMethod} {resource}"`.
fn rest(event: &Map<String, Value>, request_context: &Value, cx: Ctx<'_>) -> Trigger {
    let identity = request_context.get("identity");
    let request = Request {
        source: TriggerSource::ApiGatewayRest,
        method: event.get("httpMethod").and_then(Value::as_str).unwrap_or_default(),
        route: event.get("resource").and_then(Value::as_str).filter(|r| !r.is_empty()),
        path: event.get("path").and_then(Value::as_str).or_else(|| str_at(request_context, "path")),
        headers: headers(event),
        default_scheme: Some("https"),
        host: str_at(request_context, "domainName"),
        user_agent: identity.and_then(|identity| str_at(identity, "userAgent")),
        client_address: identity.and_then(|identity| str_at(identity, "sourceIp")),
        request_id: str_at(request_context, "requestId"),
    };
    let request_id = request.request_id;
    let mut trigger = build(request, 3, cx);
    push_str(&mut trigger.attributes, attr::APIGW_API_ID, str_at(request_context, "apiId"));
    push_str(&mut trigger.attributes, attr::APIGW_STAGE, str_at(request_context, "stage"));
    push_str(&mut trigger.attributes, attr::APIGW_REQUEST_ID, request_id);
    trigger
}

/// HTTP API (payload format 2.0) or Function URL: the name comes from the `routeKey`
/// (`GET /posts/{id}`); `$default` and Function URLs get just the method.
fn v2(event: &Map<String, Value>, request_context: &Value, cx: Ctx<'_>) -> Trigger {
    let http = request_context.get("http");
    let domain = str_at(request_context, "domainName");
    let is_function_url = domain.is_some_and(|d| d.contains(".lambda-url."));
    let route = if is_function_url {
        None
    } else {
        event
            .get("routeKey")
            .and_then(Value::as_str)
            .or_else(|| str_at(request_context, "routeKey"))
            .filter(|key| *key != "$default")
            .map(|key| key.split_once(' ').map_or(key, |(_, route)| route))
            .filter(|route| !route.is_empty())
    };
    let request = Request {
        source: if is_function_url { TriggerSource::FunctionUrl } else { TriggerSource::ApiGatewayHttp },
        method: http.and_then(|http| str_at(http, "method")).unwrap_or_default(),
        route,
        path: event.get("rawPath").and_then(Value::as_str).or_else(|| http.and_then(|http| str_at(http, "path"))),
        headers: headers(event),
        default_scheme: Some("https"),
        host: domain,
        user_agent: http.and_then(|http| str_at(http, "userAgent")),
        client_address: http.and_then(|http| str_at(http, "sourceIp")),
        request_id: str_at(request_context, "requestId"),
    };
    let request_id = request.request_id;
    let mut trigger = build(request, 3, cx);
    if !is_function_url {
        push_str(&mut trigger.attributes, attr::APIGW_API_ID, str_at(request_context, "apiId"));
        push_str(&mut trigger.attributes, attr::APIGW_STAGE, str_at(request_context, "stage"));
    }
    push_str(&mut trigger.attributes, attr::APIGW_REQUEST_ID, request_id);
    trigger
}

/// Application Load Balancer: the name is just the method; the client is the first
/// `X-Forwarded-For` address.
fn alb(event: &Map<String, Value>, cx: Ctx<'_>) -> Trigger {
    let headers = headers(event);
    let target_group =
        event.get("requestContext").and_then(|rc| rc.get("elb")).and_then(|elb| str_at(elb, "targetGroupArn"));
    let request = Request {
        source: TriggerSource::Alb,
        method: event.get("httpMethod").and_then(Value::as_str).unwrap_or_default(),
        route: None,
        path: event.get("path").and_then(Value::as_str),
        headers,
        default_scheme: None,
        host: None,
        user_agent: None,
        client_address: headers.header("x-forwarded-for").and_then(|xff| xff.split(',').next()).map(str::trim),
        request_id: None,
    };
    let mut trigger = build(request, 1, cx);
    push_str(&mut trigger.attributes, attr::ALB_TARGET_GROUP_ARN, target_group);
    trigger
}
