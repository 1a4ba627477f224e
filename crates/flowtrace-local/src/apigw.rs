//! The local API Gateway: route matching (pure), and the span the gateway stands for.
//!
//! API Gateway itself emits no OpenTelemetry span, but a trace that starts at the function
//! hides where the request came from and how long the gateway hop took. The local gateway
//! records one SERVER span per request under the API's name, continues the caller's
//! `traceparent` when there is one, and passes its own context on to the function in the
//! request headers, as a traced proxy in front of API Gateway would.

use std::collections::{BTreeMap, HashMap};
use std::time::{SystemTime, UNIX_EPOCH};

use flowtrace_sam::events::match_route_path;
use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span, status};
use opentelemetry_sdk::propagation::TraceContextPropagator;

/// Which kind of API an event came from: it decides the event's payload version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiKind {
    /// `AWS::Serverless::HttpApi` (`HttpApi` events): payload 2.0.
    Http,
    /// `AWS::Serverless::Api` (`Api` events): REST, payload 1.0.
    Rest,
}

/// One route: a function's `Api`/`HttpApi` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The function's logical id.
    pub function: String,
    /// The API's name (its logical id, or `ServerlessHttpApi`/`ServerlessRestApi` when the
    /// event names none, as SAM does).
    pub api: String,
    /// HTTP API or REST.
    pub kind: ApiKind,
    /// Upper-case method, or `ANY`.
    pub method: String,
    /// The path template: `/new_post`, `/posts/{id}`, `/{proxy+}`.
    pub path: String,
}

impl Route {
    /// `POST /new_post`, as API Gateway writes a route key.
    pub fn route_key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// A matched route and its path parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched<'a> {
    /// The route.
    pub route: &'a Route,
    /// `{name}` → the path segment(s) it matched, decoded.
    pub path_parameters: BTreeMap<String, String>,
}

/// The route for `method path`, as API Gateway picks it: exact paths first, then templates,
/// then greedy `{proxy+}`, then `$default`; a route with the exact method before `ANY`.
pub fn match_route<'a>(routes: &'a [Route], method: &str, path: &str) -> Option<Matched<'a>> {
    let mut best: Option<(u32, Matched<'a>)> = None;
    for route in routes {
        let method_rank = if route.method.eq_ignore_ascii_case(method) {
            0
        } else if route.method == "ANY" {
            1
        } else {
            continue;
        };
        let (shape_rank, path_parameters) = if route.path == "$default" {
            (3, BTreeMap::new())
        } else {
            let Some(parameters) = match_route_path(&route.path, path) else { continue };
            let shape = if route.path.contains("+}") {
                2
            } else if route.path.contains('{') {
                1
            } else {
                0
            };
            (shape, parameters)
        };
        let rank = shape_rank * 2 + method_rank;
        if best.as_ref().is_none_or(|(best_rank, _)| rank < *best_rank) {
            best = Some((rank, Matched { route, path_parameters }));
        }
    }
    best.map(|(_, matched)| matched)
}

/// The gateway's span for one request.
#[derive(Debug, Clone)]
pub struct GatewaySpan {
    context: SpanContext,
    parent_span_id: Option<SpanId>,
    started: SystemTime,
}

impl GatewaySpan {
    /// Starts the span, continuing `headers`' `traceparent` when it has a valid one.
    pub fn start(headers: &HashMap<String, String>) -> Self {
        let propagator = TraceContextPropagator::new();
        let incoming = propagator.extract(headers);
        let parent = incoming.span().span_context().clone();
        let (trace_id, parent_span_id, state) = if parent.is_valid() {
            (parent.trace_id(), Some(parent.span_id()), parent.trace_state().clone())
        } else {
            (TraceId::from_bytes(fastrand::u128(1..).to_be_bytes()), None, TraceState::default())
        };
        let span_id = SpanId::from_bytes(fastrand::u64(1..).to_be_bytes());
        let context = SpanContext::new(trace_id, span_id, TraceFlags::SAMPLED, false, state);
        Self { context, parent_span_id, started: SystemTime::now() }
    }

    /// The trace id, as hex.
    pub fn trace_id(&self) -> String {
        self.context.trace_id().to_string()
    }

    /// The headers that carry this span's context to the function (`traceparent`, and
    /// `tracestate` when not empty), formatted by the W3C propagator.
    pub fn context_headers(&self) -> HashMap<String, String> {
        let mut headers = HashMap::new();
        let cx = opentelemetry::Context::new().with_remote_span_context(self.context.clone());
        TraceContextPropagator::new().inject_context(&cx, &mut headers);
        headers
    }

    /// Ends the span and returns it as an export request, resource `service.name` = the
    /// API's name.
    pub fn finish(
        self,
        route: Option<&Route>,
        method: &str,
        path: &str,
        status_code: u16,
    ) -> ExportTraceServiceRequest {
        let ended = SystemTime::now();
        let name = route.map_or_else(|| format!("{method} {path}"), Route::route_key);
        let api = route.map_or("api-gateway", |r| r.api.as_str());
        let mut attributes = vec![
            string("http.request.method", method),
            string("url.path", path),
            int("http.response.status_code", i64::from(status_code)),
            string("flowtrace.local.emulated", "api-gateway"),
        ];
        if let Some(route) = route {
            attributes.push(string("http.route", &route.path));
        }
        let status = if status_code >= 500 {
            Status { code: status::StatusCode::Error as i32, message: format!("HTTP {status_code}") }
        } else {
            Status::default()
        };
        let span = Span {
            trace_id: self.context.trace_id().to_bytes().to_vec(),
            span_id: self.context.span_id().to_bytes().to_vec(),
            parent_span_id: self.parent_span_id.map(|id| id.to_bytes().to_vec()).unwrap_or_default(),
            name,
            kind: span::SpanKind::Server as i32,
            start_time_unix_nano: unix_nanos(self.started),
            end_time_unix_nano: unix_nanos(ended),
            attributes,
            status: Some(status),
            ..Span::default()
        };
        let resource = Resource {
            attributes: vec![
                string("service.name", api),
                string("cloud.provider", "aws"),
                string("cloud.platform", "aws_api_gateway"),
            ],
            ..Resource::default()
        };
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(resource),
                scope_spans: vec![ScopeSpans { spans: vec![span], ..ScopeSpans::default() }],
                schema_url: String::new(),
            }],
        }
    }
}

fn unix_nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn string(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.to_owned())) }),
        ..KeyValue::default()
    }
}

fn int(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(any_value::Value::IntValue(value)) }),
        ..KeyValue::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(method: &str, path: &str) -> Route {
        Route {
            function: format!("{method}{path}"),
            api: "Api".into(),
            kind: ApiKind::Http,
            method: method.into(),
            path: path.into(),
        }
    }

    #[test]
    fn exact_beats_template_beats_greedy_and_method_beats_any() {
        let routes = [
            route("ANY", "/{proxy+}"),
            route("GET", "/posts/{id}"),
            route("GET", "/posts/latest"),
            route("ANY", "/posts/latest"),
            route("POST", "/new_post"),
        ];
        let m = match_route(&routes, "GET", "/posts/latest").unwrap();
        assert_eq!(m.route.function, "GET/posts/latest");
        let m = match_route(&routes, "DELETE", "/posts/latest").unwrap();
        assert_eq!(m.route.function, "ANY/posts/latest");
        let m = match_route(&routes, "GET", "/posts/42").unwrap();
        assert_eq!(m.route.function, "GET/posts/{id}");
        assert_eq!(m.path_parameters["id"], "42");
        let m = match_route(&routes, "get", "/a/b/c").unwrap();
        assert_eq!(m.route.function, "ANY/{proxy+}");
        assert_eq!(m.path_parameters["proxy"], "a/b/c");
        assert_eq!(match_route(&routes, "POST", "/new_post").unwrap().route.function, "POST/new_post");
        assert_eq!(match_route(&routes[1..], "GET", "/posts").map(|m| m.route.function.clone()), None);
        assert_eq!(match_route(&routes[1..], "GET", "/posts/").map(|m| m.route.function.clone()), None);
        assert_eq!(match_route(&routes[1..], "PUT", "/new_post").map(|m| m.route.function.clone()), None);
        let with_default = [route("ANY", "$default"), route("GET", "/posts/{id}")];
        assert_eq!(match_route(&with_default, "GET", "/posts/a%20b").unwrap().path_parameters["id"], "a b");
        assert_eq!(match_route(&with_default, "PUT", "/anything").unwrap().route.function, "ANY$default");
    }

    #[test]
    fn the_gateway_span_continues_a_caller_and_hands_its_own_context_on() {
        let caller = "00-5b8efff798038103d269b633813fc60c-eee19b7ec3c1b174-01";
        let span = GatewaySpan::start(&HashMap::from([("traceparent".to_owned(), caller.to_owned())]));
        assert_eq!(span.trace_id(), "5b8efff798038103d269b633813fc60c");
        let headers = span.context_headers();
        let own = headers["traceparent"].clone();
        assert!(own.starts_with("00-5b8efff798038103d269b633813fc60c-") && own.ends_with("-01"), "{own}");
        assert!(!own.contains("eee19b7ec3c1b174"));

        let routes = [route("POST", "/new_post")];
        let request = span.finish(Some(&routes[0]), "POST", "/new_post", 502);
        let exported = &request.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(exported.name, "POST /new_post");
        assert_eq!(exported.parent_span_id, vec![0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74]);
        assert_eq!(exported.status.as_ref().unwrap().code, status::StatusCode::Error as i32);
        assert!(own.contains(&hex(&exported.span_id)));
    }

    #[test]
    fn without_a_caller_the_gateway_starts_a_trace() {
        for garbage in ["", "00-00000000000000000000000000000000-eee19b7ec3c1b174-01", "zz"] {
            let span = GatewaySpan::start(&HashMap::from([("traceparent".to_owned(), garbage.to_owned())]));
            assert_ne!(span.trace_id(), "00000000000000000000000000000000");
            let request = span.finish(None, "GET", "/x", 404);
            let exported = &request.resource_spans[0].scope_spans[0].spans[0];
            assert!(exported.parent_span_id.is_empty());
            assert_eq!(exported.name, "GET /x");
        }
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
