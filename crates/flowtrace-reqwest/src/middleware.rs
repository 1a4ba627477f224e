//! The middleware: one CLIENT span per request, context injection, redaction.

use crate::config::{HostPattern, HttpConfig};
use crate::redact::{Masker, redact_url};
use flowtrace_contract::attr;
use http::Extensions;
use opentelemetry::context::FutureExt as _;
use opentelemetry::global::{self, BoxedTracer};
use opentelemetry::propagation::{Injector, TextMapPropagator};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider};
use opentelemetry::{Context, InstrumentationScope, KeyValue};
use opentelemetry_semantic_conventions::attribute as semconv;
use reqwest::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Request, Response, Version};
use reqwest_middleware::{Middleware, Next};
use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

/// The largest response body buffered for capture; larger or unsized bodies stream through
/// untouched.
const CAPTURE_BUFFER_LIMIT: u64 = 1024 * 1024;

/// Names a request's route template: the span is then called `GET /posts/{id}` and carries
/// `url.template`. Put it on a request with [`RouteExt::route`] or
/// `RequestBuilder::with_extension`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTemplate(Cow<'static, str>);

impl RouteTemplate {
    /// A route template such as `/posts/{id}`: low-cardinality, never the concrete path.
    pub fn new(template: impl Into<Cow<'static, str>>) -> Self {
        Self(template.into())
    }

    /// The template.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Adds [`RouteExt::route`] to reqwest-middleware's `RequestBuilder`.
pub trait RouteExt {
    /// Names the request's route template (see [`RouteTemplate`]).
    fn route(self, template: impl Into<Cow<'static, str>>) -> Self;
}

impl RouteExt for reqwest_middleware::RequestBuilder {
    fn route(self, template: impl Into<Cow<'static, str>>) -> Self {
        self.with_extension(RouteTemplate::new(template))
    }
}

#[derive(Debug)]
enum TracerChoice {
    /// `opentelemetry::global::tracer_provider()`, looked up per request so that a provider
    /// installed after the client was built (by `flowtrace::Telemetry::from_env`) is used.
    Global,
    Custom(BoxedTracer),
}

enum PropagatorChoice {
    Global,
    Custom(Arc<dyn TextMapPropagator + Send + Sync>),
}

impl std::fmt::Debug for PropagatorChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Global => "Global",
            Self::Custom(_) => "Custom",
        })
    }
}

#[derive(Debug)]
struct Inner {
    config: HttpConfig,
    masker: Option<Masker>,
    tracer: TracerChoice,
    propagator: PropagatorChoice,
}

/// The tracing middleware for reqwest-middleware: a CLIENT span per request and trace
/// context in its headers. Cheap to clone.
///
/// ```no_run
/// use flowtrace_reqwest::HttpTracing;
///
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(HttpTracing::builder().dont_propagate_to("api.partner.example").build())
///     .build();
/// ```
#[derive(Debug, Clone)]
pub struct HttpTracing {
    inner: Arc<Inner>,
}

impl Default for HttpTracing {
    fn default() -> Self {
        Self::from_env()
    }
}

impl HttpTracing {
    /// The middleware configured from `FLOWTRACE_HTTP_*` (read once per process), with the
    /// global tracer provider and propagator.
    pub fn from_env() -> Self {
        Self::builder().build()
    }

    /// A builder starting from the `FLOWTRACE_HTTP_*` settings.
    pub fn builder() -> HttpTracingBuilder {
        HttpTracingBuilder::new(HttpConfig::from_env())
    }

    /// The settings in force.
    pub fn config(&self) -> &HttpConfig {
        &self.inner.config
    }
}

/// Builds an [`HttpTracing`]. Starts from the environment's settings; every method
/// overrides one of them.
#[derive(Debug)]
pub struct HttpTracingBuilder {
    config: HttpConfig,
    tracer: TracerChoice,
    propagator: PropagatorChoice,
}

impl HttpTracingBuilder {
    /// A builder over `config`, with the global tracer provider and propagator.
    pub fn new(config: HttpConfig) -> Self {
        Self { config, tracer: TracerChoice::Global, propagator: PropagatorChoice::Global }
    }

    /// Replaces every setting with `config`.
    pub fn config(mut self, config: HttpConfig) -> Self {
        self.config = config;
        self
    }

    /// Starts spans with this provider instead of the global one.
    pub fn tracer_provider<P>(mut self, provider: &P) -> Self
    where
        P: TracerProvider,
        P::Tracer: Send + Sync + 'static,
        <P::Tracer as opentelemetry::trace::Tracer>::Span: Send + Sync + 'static,
    {
        self.tracer = TracerChoice::Custom(BoxedTracer::new(Box::new(provider.tracer_with_scope(scope().clone()))));
        self
    }

    /// Injects context with this propagator instead of the global one.
    pub fn propagator(mut self, propagator: Arc<dyn TextMapPropagator + Send + Sync>) -> Self {
        self.propagator = PropagatorChoice::Custom(propagator);
        self
    }

    /// Adds a host to the propagation allow list: once the list has an entry, context goes
    /// only to hosts on it. Patterns as [`HostPattern`]; an invalid one is ignored.
    pub fn propagate_to(mut self, host: &str) -> Self {
        if let Some(pattern) = HostPattern::parse(host) {
            self.config.propagate_allow.get_or_insert_with(Vec::new).push(pattern);
        }
        self
    }

    /// Never injects context into requests to `host` (a [`HostPattern`]).
    pub fn dont_propagate_to(mut self, host: &str) -> Self {
        self.config.propagate_deny.extend(HostPattern::parse(host));
        self
    }

    /// Names the service behind `host` (a [`HostPattern`]) in `peer.service`.
    pub fn peer_service(mut self, host: &str, name: impl Into<String>) -> Self {
        if let Some(pattern) = HostPattern::parse(host) {
            self.config.peer_services.insert(0, (pattern, name.into()));
        }
        self
    }

    /// Whether every query value in `url.full` is replaced by `REDACTED` (default true).
    pub fn redact_query(mut self, redact: bool) -> Self {
        self.config.redact_query = redact;
        self
    }

    /// Records request and response bodies, masked and truncated to `max_bytes`.
    pub fn capture_bodies(mut self, max_bytes: usize) -> Self {
        self.config.capture_bodies = true;
        self.config.capture_max_bytes = max_bytes;
        self
    }

    /// Masks values under keys matching this case-insensitive regex in captured bodies,
    /// beside the built-in secret names. An invalid pattern logs one line and is ignored.
    pub fn mask_pattern(mut self, pattern: &str) -> Self {
        if regex_lite::Regex::new(pattern).is_ok() {
            self.config.mask_pattern = Some(pattern.to_owned());
        } else {
            crate::config::log_warning(&format!(
                "flowtrace: ignoring mask pattern {pattern:?}: not a valid regular expression"
            ));
        }
        self
    }

    /// Never traces requests to `host` (a [`HostPattern`]).
    pub fn never_trace(mut self, host: &str) -> Self {
        self.config.skip.extend(HostPattern::parse(host));
        self
    }

    /// The middleware.
    pub fn build(self) -> HttpTracing {
        let masker = self.config.capture_bodies.then(|| Masker::new(self.config.mask_pattern.as_deref()));
        HttpTracing {
            inner: Arc::new(Inner { config: self.config, masker, tracer: self.tracer, propagator: self.propagator }),
        }
    }
}

fn scope() -> &'static InstrumentationScope {
    static SCOPE: OnceLock<InstrumentationScope> = OnceLock::new();
    SCOPE.get_or_init(|| {
        InstrumentationScope::builder("flowtrace-reqwest")
            .with_version(env!("CARGO_PKG_VERSION"))
            .with_schema_url(opentelemetry_semantic_conventions::SCHEMA_URL)
            .build()
    })
}

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(key.as_bytes()), HeaderValue::from_str(&value)) {
            self.0.insert(name, value);
        }
    }
}

/// Whether the request already carries an AWS signature, which a new header would break.
pub(crate) fn is_sigv4_signed(request: &Request) -> bool {
    let headers = request.headers();
    let signed_auth = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().get(..5).is_some_and(|p| p.eq_ignore_ascii_case("AWS4-")));
    let presigned = request.url().query().is_some_and(|q| {
        q.split('&').any(|pair| {
            let key = pair.split_once('=').map_or(pair, |(k, _)| k);
            key.eq_ignore_ascii_case("X-Amz-Signature") || key.eq_ignore_ascii_case("X-Amz-Algorithm")
        })
    });
    signed_auth || headers.contains_key("x-amz-date") || presigned
}

/// `http.request.method` and, for a method outside the well-known set,
/// `http.request.method_original`.
fn method_attributes(method: &reqwest::Method) -> (&'static str, Option<String>) {
    const KNOWN: [&str; 10] = ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "QUERY"];
    match KNOWN.iter().find(|known| **known == method.as_str()) {
        Some(known) => (known, None),
        None => ("_OTHER", Some(method.as_str().to_owned())),
    }
}

fn protocol_version(version: Version) -> Option<&'static str> {
    match version {
        Version::HTTP_09 => Some("0.9"),
        Version::HTTP_10 => Some("1.0"),
        Version::HTTP_11 => Some("1.1"),
        Version::HTTP_2 => Some("2"),
        Version::HTTP_3 => Some("3"),
        _ => None,
    }
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}

fn is_textual(content_type: &str) -> bool {
    let ct = content_type.to_ascii_lowercase();
    ["json", "text/", "xml", "x-www-form-urlencoded", "javascript", "graphql"].iter().any(|t| ct.contains(t))
}

/// `error.type` and a status description for a failed request. The description never holds
/// the URL (reqwest's own message does, with its query values).
pub(crate) fn classify_error(error: &reqwest_middleware::Error) -> (&'static str, String) {
    use std::error::Error as _;
    let reqwest_error = match error {
        reqwest_middleware::Error::Reqwest(e) => e,
        reqwest_middleware::Error::Middleware(e) => return ("middleware", e.to_string()),
    };
    let mut io_kind = None;
    let mut causes = Vec::new();
    let mut source = reqwest_error.source();
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            io_kind = Some(io.kind());
        }
        causes.push(cause.to_string());
        source = cause.source();
    }
    causes.dedup();
    let kind = match io_kind {
        Some(std::io::ErrorKind::ConnectionRefused) => "connection_refused",
        Some(std::io::ErrorKind::ConnectionReset) => "connection_reset",
        Some(std::io::ErrorKind::ConnectionAborted) => "connection_aborted",
        _ if reqwest_error.is_timeout() => "timeout",
        Some(std::io::ErrorKind::TimedOut) => "timeout",
        _ if reqwest_error.is_connect() => "connect",
        _ if reqwest_error.is_redirect() => "redirect",
        _ if reqwest_error.is_body() => "body",
        _ if reqwest_error.is_decode() => "decode",
        _ if reqwest_error.is_builder() => "builder",
        _ if reqwest_error.is_request() => "request",
        _ => "reqwest::Error",
    };
    let description = if causes.is_empty() { kind.to_owned() } else { format!("{kind}: {}", causes.join(": ")) };
    (kind, description)
}

/// Ends the span when the request future is dropped before it completes (a caller's
/// timeout, the flowtrace timeout guard), saying so.
struct SpanGuard {
    cx: Context,
    done: bool,
}

impl Drop for SpanGuard {
    fn drop(&mut self) {
        if !self.done {
            let span = self.cx.span();
            span.set_attribute(KeyValue::new(semconv::ERROR_TYPE, "cancelled"));
            span.set_status(Status::error("the request was cancelled before a response arrived"));
            span.end();
        }
    }
}

#[async_trait::async_trait]
impl Middleware for HttpTracing {
    async fn handle(
        &self,
        mut request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let inner = &*self.inner;
        if !inner.config.enabled || Context::is_current_telemetry_suppressed() {
            return next.run(request, extensions).await;
        }
        let url = request.url();
        let host = url.host_str().unwrap_or_default().to_owned();
        let port = url.port_or_known_default();
        if inner.config.is_skipped(&host, port) {
            return next.run(request, extensions).await;
        }

        let (method, method_original) = method_attributes(request.method());
        let route = extensions.get::<RouteTemplate>();
        let name = match (method, route) {
            ("_OTHER", None) => "HTTP".to_owned(),
            ("_OTHER", Some(route)) => format!("HTTP {}", route.as_str()),
            (method, None) => method.to_owned(),
            (method, Some(route)) => format!("{method} {}", route.as_str()),
        };
        let mut attributes = Vec::with_capacity(12);
        attributes.push(KeyValue::new(semconv::HTTP_REQUEST_METHOD, method));
        if let Some(original) = method_original {
            attributes.push(KeyValue::new(semconv::HTTP_REQUEST_METHOD_ORIGINAL, original));
        }
        attributes.push(KeyValue::new(semconv::URL_FULL, redact_url(url, inner.config.redact_query)));
        attributes.push(KeyValue::new(semconv::URL_SCHEME, url.scheme().to_owned()));
        attributes.push(KeyValue::new(semconv::SERVER_ADDRESS, host.clone()));
        if let Some(port) = port {
            attributes.push(KeyValue::new(semconv::SERVER_PORT, i64::from(port)));
        }
        if let Some(route) = route {
            attributes.push(KeyValue::new(semconv::URL_TEMPLATE, route.as_str().to_owned()));
        }
        if let Some(peer) = inner.config.peer_service(&host, port) {
            #[allow(deprecated)]
            attributes.push(KeyValue::new(semconv::PEER_SERVICE, peer.to_owned()));
            attributes.push(KeyValue::new(semconv::SERVICE_PEER_NAME, peer.to_owned()));
        }
        let body_bytes = request.body().and_then(|b| b.as_bytes());
        if let Some(size) = content_length(request.headers()).or_else(|| body_bytes.map(|b| b.len() as u64)) {
            attributes.push(KeyValue::new(semconv::HTTP_REQUEST_BODY_SIZE, size as i64));
        }
        if let (Some(masker), Some(body)) = (&inner.masker, body_bytes)
            && !body.is_empty()
        {
            let content_type = request.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
            attributes.push(KeyValue::new(
                attr::HTTP_REQUEST_BODY,
                masker.render_body(body, content_type, inner.config.capture_max_bytes),
            ));
        }
        let skipped = if !inner.config.may_propagate_to(&host, port) {
            Some("denied")
        } else if is_sigv4_signed(&request) {
            Some("sigv4_signed")
        } else {
            None
        };
        if let Some(reason) = skipped {
            attributes.push(KeyValue::new(attr::HTTP_PROPAGATION_SKIPPED, reason));
        }

        let parent = Context::current();
        let builder =
            opentelemetry::trace::SpanBuilder::from_name(name).with_kind(SpanKind::Client).with_attributes(attributes);
        let span = match &inner.tracer {
            TracerChoice::Global => {
                global::tracer_provider().tracer_with_scope(scope().clone()).build_with_context(builder, &parent)
            }
            TracerChoice::Custom(tracer) => tracer.build_with_context(builder, &parent),
        };
        let cx = parent.with_span(span);
        if skipped.is_none() {
            let mut injector = HeaderInjector(request.headers_mut());
            match &inner.propagator {
                PropagatorChoice::Global => global::get_text_map_propagator(|p| p.inject_context(&cx, &mut injector)),
                PropagatorChoice::Custom(p) => p.inject_context(&cx, &mut injector),
            }
        }

        let mut guard = SpanGuard { cx: cx.clone(), done: false };
        let result = next.run(request, extensions).with_context(cx.clone()).await;
        let span = cx.span();
        let result = match result {
            Ok(response) => {
                let status = response.status().as_u16();
                span.set_attribute(KeyValue::new(semconv::HTTP_RESPONSE_STATUS_CODE, i64::from(status)));
                if let Some(version) = protocol_version(response.version()) {
                    span.set_attribute(KeyValue::new(semconv::NETWORK_PROTOCOL_VERSION, version));
                }
                if let Some(size) = content_length(response.headers()) {
                    span.set_attribute(KeyValue::new(semconv::HTTP_RESPONSE_BODY_SIZE, size as i64));
                }
                if status >= 400 {
                    // Client spans: 4xx and 5xx are errors; the status code says why.
                    span.set_attribute(KeyValue::new(semconv::ERROR_TYPE, status.to_string()));
                    span.set_status(Status::error(""));
                }
                match &inner.masker {
                    Some(masker) => capture_response(response, masker, inner.config.capture_max_bytes, &cx).await,
                    None => Ok(response),
                }
            }
            Err(error) => Err(error),
        };
        if let Err(error) = &result {
            let (kind, description) = classify_error(error);
            span.set_attribute(KeyValue::new(semconv::ERROR_TYPE, kind));
            span.add_event(
                "exception",
                vec![
                    KeyValue::new(semconv::EXCEPTION_TYPE, kind),
                    KeyValue::new(semconv::EXCEPTION_MESSAGE, description.clone()),
                ],
            );
            span.set_status(Status::error(description));
        }
        span.end();
        guard.done = true;
        result
    }
}

/// Buffers a small textual response body to record it masked, then hands the user an
/// equivalent response (same status, headers, URL, extensions and bytes).
async fn capture_response(
    response: Response,
    masker: &Masker,
    max_bytes: usize,
    cx: &Context,
) -> reqwest_middleware::Result<Response> {
    let content_type = response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let small = content_length(response.headers()).is_some_and(|len| len > 0 && len <= CAPTURE_BUFFER_LIMIT);
    if !small || !content_type.as_deref().is_some_and(is_textual) {
        return Ok(response);
    }
    let url = response.url().clone();
    let (mut parts, body) = http::Response::<reqwest::Body>::from(response).into_parts();
    let bytes = Response::from(http::Response::new(body)).bytes().await?;
    cx.span().set_attribute(KeyValue::new(
        attr::HTTP_RESPONSE_BODY,
        masker.render_body(&bytes, content_type.as_deref(), max_bytes),
    ));
    use reqwest::ResponseBuilderExt as _;
    if let Ok(with_url) = http::Response::builder().url(url).body(()) {
        parts.extensions.extend(with_url.into_parts().0.extensions);
    }
    Ok(Response::from(http::Response::from_parts(parts, reqwest::Body::from(bytes))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(url: &str, headers: &[(&str, &str)]) -> Request {
        let mut request = Request::new(reqwest::Method::GET, reqwest::Url::parse(url).unwrap());
        for (name, value) in headers {
            request.headers_mut().insert(HeaderName::from_bytes(name.as_bytes()).unwrap(), value.parse().unwrap());
        }
        request
    }

    #[test]
    fn sigv4_signed_requests_are_recognised() {
        let signed = "AWS4-HMAC-SHA256 Credential=AKIA/20261124/eu-west-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc";
        assert!(is_sigv4_signed(&request("https://x.example.com/", &[("authorization", signed)])));
        assert!(is_sigv4_signed(&request("https://x.example.com/", &[("x-amz-date", "20261124T000000Z")])));
        assert!(is_sigv4_signed(&request(
            "https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=f",
            &[]
        )));
        assert!(!is_sigv4_signed(&request("https://x.example.com/", &[("authorization", "Bearer abc")])));
        assert!(!is_sigv4_signed(&request("https://x.example.com/?q=x-amz-date", &[])));
    }

    #[test]
    fn unknown_methods_are_other() {
        assert_eq!(method_attributes(&reqwest::Method::GET), ("GET", None));
        let purge = reqwest::Method::from_bytes(b"PURGE").unwrap();
        assert_eq!(method_attributes(&purge), ("_OTHER", Some("PURGE".to_owned())));
    }
}
