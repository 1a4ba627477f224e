//! An OTLP/HTTP receiver for end-to-end tests.
//!
//! [`OtlpReceiver`] listens on 127.0.0.1 and a free port and accepts `POST /v1/traces`,
//! `/v1/logs` and `/v1/metrics` as protobuf (`application/x-protobuf`, what
//! opentelemetry-otlp's `http-proto` exporter sends) or JSON (`application/json`), plain,
//! gzip or zstd. Traces are flattened into [`Span`]s to query; every request is also fed to
//! a [`MockCollector`] for its fluent assertions, and recorded as an [`ExportRequest`]
//! (headers, raw body) for wire-level assertions.
//!
//! [`Behaviour`] injects faults: a delay before answering, or a failure status instead of
//! accepting (the request is then recorded but its spans are not kept).
//!
//! It is written here rather than taken from `mock_collector::MockServer` because the latter
//! has no fault injection and does not keep request headers or bodies; mock-collector's
//! `MockCollector` store is still what backs [`OtlpReceiver::collector`].

use std::fmt;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as HttpStatus, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use mock_collector::MockCollector;
use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1 as proto;
use prost::Message;
use tokio::sync::{RwLock, watch};

use crate::{Error, Result};

/// How the receiver answers.
#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    /// Wait this long before answering (a slow collector).
    pub delay: Duration,
    /// Answer with this HTTP status instead of accepting (e.g. 503); the data is dropped.
    pub fail_with: Option<u16>,
}

/// One HTTP request the receiver got.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    /// `/v1/traces`, `/v1/logs` or `/v1/metrics`.
    pub path: String,
    pub headers: HeaderMap,
    /// The body after decompression.
    pub body: Bytes,
    /// The status the receiver answered with.
    pub status: u16,
    /// How many spans it carried (0 for logs and metrics, or when it was refused).
    pub spans: usize,
    pub received: Instant,
}

impl ExportRequest {
    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// An attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum AnyValue {
    String(String),
    Bool(bool),
    Int(i64),
    Double(f64),
    Bytes(Vec<u8>),
    Array(Vec<AnyValue>),
    KvList(Attributes),
    Empty,
}

impl AnyValue {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Self::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Self::Double(d) => Some(*d),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Self::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[AnyValue]> {
        match self {
            Self::Array(items) => Some(items),
            _ => None,
        }
    }

    fn from_proto(value: Option<&opentelemetry_proto::tonic::common::v1::AnyValue>) -> Self {
        match value.and_then(|v| v.value.as_ref()) {
            None => Self::Empty,
            Some(any_value::Value::StringValue(s)) => Self::String(s.clone()),
            Some(any_value::Value::BoolValue(b)) => Self::Bool(*b),
            Some(any_value::Value::IntValue(i)) => Self::Int(*i),
            Some(any_value::Value::DoubleValue(d)) => Self::Double(*d),
            Some(any_value::Value::BytesValue(b)) => Self::Bytes(b.clone()),
            Some(any_value::Value::ArrayValue(a)) => {
                Self::Array(a.values.iter().map(|v| Self::from_proto(Some(v))).collect())
            }
            Some(any_value::Value::KvlistValue(kv)) => Self::KvList(Attributes::from_proto(&kv.values)),
            Some(any_value::Value::StringValueStrindex(i)) => Self::Int(i64::from(*i)),
        }
    }
}

impl From<&str> for AnyValue {
    fn from(value: &str) -> Self {
        Self::String(value.to_owned())
    }
}

impl From<String> for AnyValue {
    fn from(value: String) -> Self {
        Self::String(value)
    }
}

impl From<i64> for AnyValue {
    fn from(value: i64) -> Self {
        Self::Int(value)
    }
}

impl From<bool> for AnyValue {
    fn from(value: bool) -> Self {
        Self::Bool(value)
    }
}

impl From<f64> for AnyValue {
    fn from(value: f64) -> Self {
        Self::Double(value)
    }
}

/// Attributes in the order they were sent (duplicates kept, so a test can catch them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attributes(pub Vec<(String, AnyValue)>);

impl Attributes {
    fn from_proto(kvs: &[KeyValue]) -> Self {
        Self(kvs.iter().map(|kv| (kv.key.clone(), AnyValue::from_proto(kv.value.as_ref()))).collect())
    }

    /// The first value under `key`.
    pub fn get(&self, key: &str) -> Option<&AnyValue> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(AnyValue::as_str)
    }

    pub fn i64(&self, key: &str) -> Option<i64> {
        self.get(key).and_then(AnyValue::as_i64)
    }

    pub fn f64(&self, key: &str) -> Option<f64> {
        self.get(key).and_then(AnyValue::as_f64)
    }

    pub fn bool(&self, key: &str) -> Option<bool> {
        self.get(key).and_then(AnyValue::as_bool)
    }

    pub fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Keys that appear more than once (OTLP forbids duplicates).
    pub fn duplicate_keys(&self) -> Vec<&str> {
        let mut seen = std::collections::BTreeSet::new();
        let mut dups = Vec::new();
        for key in self.keys() {
            if !seen.insert(key) && !dups.contains(&key) {
                dups.push(key);
            }
        }
        dups
    }
}

/// The span kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    Unspecified,
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

impl SpanKind {
    fn from_proto(kind: i32) -> Self {
        match proto::span::SpanKind::try_from(kind) {
            Ok(proto::span::SpanKind::Internal) => Self::Internal,
            Ok(proto::span::SpanKind::Server) => Self::Server,
            Ok(proto::span::SpanKind::Client) => Self::Client,
            Ok(proto::span::SpanKind::Producer) => Self::Producer,
            Ok(proto::span::SpanKind::Consumer) => Self::Consumer,
            Ok(proto::span::SpanKind::Unspecified) | Err(_) => Self::Unspecified,
        }
    }
}

/// The span status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusCode {
    Unset,
    Ok,
    Error,
}

/// The span status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub code: StatusCode,
    pub message: String,
}

/// A span event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub name: String,
    pub time_unix_nano: u64,
    pub attributes: Attributes,
}

/// A span link.
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// 16 lowercase hex digits.
    pub span_id: String,
    pub trace_state: String,
    pub flags: u32,
    pub attributes: Attributes,
}

/// A received span with its resource and scope, ids as lowercase hex.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub name: String,
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// 16 lowercase hex digits.
    pub span_id: String,
    /// `None` for a root span.
    pub parent_span_id: Option<String>,
    pub trace_state: String,
    pub flags: u32,
    pub kind: SpanKind,
    pub status: Status,
    pub start_time_unix_nano: u64,
    pub end_time_unix_nano: u64,
    pub attributes: Attributes,
    pub events: Vec<Event>,
    pub links: Vec<Link>,
    pub dropped_attributes_count: u32,
    pub dropped_events_count: u32,
    pub dropped_links_count: u32,
    pub resource: Attributes,
    pub scope_name: String,
    pub scope_version: String,
    pub scope_attributes: Attributes,
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

impl Span {
    fn from_proto(
        span: &proto::Span,
        resource: &Attributes,
        scope: Option<&opentelemetry_proto::tonic::common::v1::InstrumentationScope>,
    ) -> Self {
        let status = span.status.as_ref();
        Self {
            name: span.name.clone(),
            trace_id: hex(&span.trace_id),
            span_id: hex(&span.span_id),
            parent_span_id: (!span.parent_span_id.is_empty()).then(|| hex(&span.parent_span_id)),
            trace_state: span.trace_state.clone(),
            flags: span.flags,
            kind: SpanKind::from_proto(span.kind),
            status: Status {
                code: match status.map(|s| proto::status::StatusCode::try_from(s.code)) {
                    Some(Ok(proto::status::StatusCode::Ok)) => StatusCode::Ok,
                    Some(Ok(proto::status::StatusCode::Error)) => StatusCode::Error,
                    _ => StatusCode::Unset,
                },
                message: status.map(|s| s.message.clone()).unwrap_or_default(),
            },
            start_time_unix_nano: span.start_time_unix_nano,
            end_time_unix_nano: span.end_time_unix_nano,
            attributes: Attributes::from_proto(&span.attributes),
            events: span
                .events
                .iter()
                .map(|e| Event {
                    name: e.name.clone(),
                    time_unix_nano: e.time_unix_nano,
                    attributes: Attributes::from_proto(&e.attributes),
                })
                .collect(),
            links: span
                .links
                .iter()
                .map(|l| Link {
                    trace_id: hex(&l.trace_id),
                    span_id: hex(&l.span_id),
                    trace_state: l.trace_state.clone(),
                    flags: l.flags,
                    attributes: Attributes::from_proto(&l.attributes),
                })
                .collect(),
            dropped_attributes_count: span.dropped_attributes_count,
            dropped_events_count: span.dropped_events_count,
            dropped_links_count: span.dropped_links_count,
            resource: resource.clone(),
            scope_name: scope.map(|s| s.name.clone()).unwrap_or_default(),
            scope_version: scope.map(|s| s.version.clone()).unwrap_or_default(),
            scope_attributes: scope.map(|s| Attributes::from_proto(&s.attributes)).unwrap_or_default(),
        }
    }

    /// A span attribute.
    pub fn attr(&self, key: &str) -> Option<&AnyValue> {
        self.attributes.get(key)
    }

    /// A string span attribute.
    pub fn attr_str(&self, key: &str) -> Option<&str> {
        self.attributes.str(key)
    }

    /// An integer span attribute.
    pub fn attr_i64(&self, key: &str) -> Option<i64> {
        self.attributes.i64(key)
    }

    /// A string resource attribute.
    pub fn resource_str(&self, key: &str) -> Option<&str> {
        self.resource.str(key)
    }

    pub fn is_root(&self) -> bool {
        self.parent_span_id.is_none()
    }

    /// Whether `other` is this span's parent (same trace, parent id).
    pub fn is_child_of(&self, other: &Span) -> bool {
        self.trace_id == other.trace_id && self.parent_span_id.as_deref() == Some(other.span_id.as_str())
    }

    /// The link to `other`, if this span has one.
    pub fn link_to(&self, other: &Span) -> Option<&Link> {
        self.links.iter().find(|l| l.trace_id == other.trace_id && l.span_id == other.span_id)
    }

    /// The first event named `name`.
    pub fn event(&self, name: &str) -> Option<&Event> {
        self.events.iter().find(|e| e.name == name)
    }

    /// `end - start`.
    pub fn duration(&self) -> Duration {
        Duration::from_nanos(self.end_time_unix_nano.saturating_sub(self.start_time_unix_nano))
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} {} trace={} span={} parent={} status={:?}",
            self.kind,
            self.name,
            self.trace_id,
            self.span_id,
            self.parent_span_id.as_deref().unwrap_or("-"),
            self.status.code,
        )
    }
}

/// Queries over received spans, for `&[Span]` and `Vec<Span>`.
pub trait SpanQuery {
    /// Spans named `name`.
    fn named(&self, name: &str) -> Vec<&Span>;
    /// The one span named `name`; an error when there are none or several.
    fn one_named(&self, name: &str) -> Result<&Span>;
    /// Spans whose attribute `key` equals `value`.
    fn with_attr(&self, key: &str, value: impl Into<AnyValue>) -> Vec<&Span>;
    /// The span with this span id.
    fn by_span_id(&self, span_id: &str) -> Option<&Span>;
    /// The direct children of `parent`.
    fn children_of(&self, parent: &Span) -> Vec<&Span>;
    /// The parent of `child`, if it was received.
    fn parent_of(&self, child: &Span) -> Option<&Span>;
    /// The spans of one trace.
    fn in_trace(&self, trace_id: &str) -> Vec<&Span>;
    /// One line per span, for failure messages.
    fn describe(&self) -> String;
}

impl SpanQuery for [Span] {
    fn named(&self, name: &str) -> Vec<&Span> {
        self.iter().filter(|s| s.name == name).collect()
    }

    fn one_named(&self, name: &str) -> Result<&Span> {
        match self.named(name).as_slice() {
            [one] => Ok(one),
            many => Err(Error::NotFound(format!(
                "expected one span named {name:?}, found {}; spans:\n{}",
                many.len(),
                self.describe()
            ))),
        }
    }

    fn with_attr(&self, key: &str, value: impl Into<AnyValue>) -> Vec<&Span> {
        let value = value.into();
        self.iter().filter(|s| s.attr(key) == Some(&value)).collect()
    }

    fn by_span_id(&self, span_id: &str) -> Option<&Span> {
        self.iter().find(|s| s.span_id == span_id)
    }

    fn children_of(&self, parent: &Span) -> Vec<&Span> {
        self.iter().filter(|s| s.is_child_of(parent)).collect()
    }

    fn parent_of(&self, child: &Span) -> Option<&Span> {
        let parent = child.parent_span_id.as_deref()?;
        self.iter().find(|s| s.span_id == parent && s.trace_id == child.trace_id)
    }

    fn in_trace(&self, trace_id: &str) -> Vec<&Span> {
        self.iter().filter(|s| s.trace_id == trace_id).collect()
    }

    fn describe(&self) -> String {
        if self.is_empty() {
            return "(no spans)".to_owned();
        }
        self.iter().map(|s| format!("  {s}\n")).collect()
    }
}

#[derive(Clone)]
struct Shared {
    spans: Arc<Mutex<Vec<Span>>>,
    requests: Arc<Mutex<Vec<ExportRequest>>>,
    behaviour: Arc<Mutex<Behaviour>>,
    collector: Arc<RwLock<MockCollector>>,
    generation: Arc<watch::Sender<u64>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The OTLP/HTTP receiver. Stops serving when dropped.
pub struct OtlpReceiver {
    addr: SocketAddr,
    shared: Shared,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl fmt::Debug for OtlpReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpReceiver")
            .field("addr", &self.addr)
            .field("spans", &lock(&self.shared.spans).len())
            .finish_non_exhaustive()
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.abort();
    }
}

impl OtlpReceiver {
    /// Starts on 127.0.0.1 and a free port.
    pub async fn start() -> Result<Self> {
        Self::start_on(0).await
    }

    /// Starts on 127.0.0.1 and `port` (0 for a free one). A given port is for restarting a
    /// receiver where a previous one was, to test a collector coming back.
    pub async fn start_on(port: u16) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port))
            .await
            .map_err(|e| Error::io(format!("bind 127.0.0.1:{port}"), e))?;
        let addr = listener.local_addr().map_err(|e| Error::io("local_addr", e))?;
        let (generation, _) = watch::channel(0_u64);
        let shared = Shared {
            spans: Arc::default(),
            requests: Arc::default(),
            behaviour: Arc::default(),
            collector: Arc::new(RwLock::new(MockCollector::new())),
            generation: Arc::new(generation),
        };
        let app = Router::new()
            .route("/v1/traces", post(traces))
            .route("/v1/logs", post(logs))
            .route("/v1/metrics", post(metrics))
            .with_state(shared.clone());
        let (shutdown, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(Self { addr, shared, shutdown: Some(shutdown), task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, the value for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT/v1/traces`, the value for `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`.
    pub fn traces_endpoint(&self) -> String {
        format!("http://{}/v1/traces", self.addr)
    }

    /// Changes how later requests are answered.
    pub fn set_behaviour(&self, behaviour: Behaviour) {
        *lock(&self.shared.behaviour) = behaviour;
    }

    /// Every span accepted so far, in arrival order.
    pub fn spans(&self) -> Vec<Span> {
        lock(&self.shared.spans).clone()
    }

    pub fn span_count(&self) -> usize {
        lock(&self.shared.spans).len()
    }

    /// Every request received so far (accepted or refused).
    pub fn requests(&self) -> Vec<ExportRequest> {
        lock(&self.shared.requests).clone()
    }

    /// Waits until at least `count` requests arrived (accepted or refused), and returns them.
    pub async fn wait_for_requests(&self, count: usize, timeout: Duration) -> Result<Vec<ExportRequest>> {
        let mut changes = self.shared.generation.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            changes.borrow_and_update();
            let requests = self.requests();
            if requests.len() >= count {
                return Ok(requests);
            }
            if !matches!(tokio::time::timeout_at(deadline, changes.changed()).await, Ok(Ok(()))) {
                let requests = self.requests();
                if requests.len() >= count {
                    return Ok(requests);
                }
                return Err(Error::timeout(
                    format!("{count} export request(s)"),
                    timeout,
                    format!("{} request(s)", requests.len()),
                ));
            }
        }
    }

    /// The mock-collector store, for its fluent assertions:
    /// `rx.collector().read().await.expect_span_with_name("x").assert_exists()`.
    pub fn collector(&self) -> Arc<RwLock<MockCollector>> {
        Arc::clone(&self.shared.collector)
    }

    /// Forgets everything received.
    pub async fn clear(&self) {
        lock(&self.shared.spans).clear();
        lock(&self.shared.requests).clear();
        self.shared.collector.write().await.clear();
    }

    /// Waits until `done` holds for the spans received, and returns them.
    pub async fn wait_until(&self, what: &str, timeout: Duration, done: impl Fn(&[Span]) -> bool) -> Result<Vec<Span>> {
        let mut changes = self.shared.generation.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            changes.borrow_and_update();
            let spans = self.spans();
            if done(&spans) {
                return Ok(spans);
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => {
                    let spans = self.spans();
                    if done(&spans) {
                        return Ok(spans);
                    }
                    return Err(Error::timeout(what, timeout, spans.describe()));
                }
            }
        }
    }

    /// Waits until at least `count` spans arrived, and returns all of them.
    pub async fn wait_for_spans(&self, count: usize, timeout: Duration) -> Result<Vec<Span>> {
        self.wait_until(&format!("{count} span(s)"), timeout, |spans| spans.len() >= count).await
    }

    /// Waits for a span named `name`, and returns the first one.
    pub async fn wait_for_span(&self, name: &str, timeout: Duration) -> Result<Span> {
        let spans = self
            .wait_until(&format!("a span named {name:?}"), timeout, |spans| spans.iter().any(|s| s.name == name))
            .await?;
        spans.into_iter().find(|s| s.name == name).ok_or_else(|| Error::NotFound(format!("span {name:?}")))
    }

    /// Waits until no span arrived for `quiet`, within `timeout`, and returns the spans:
    /// for asserting an exact set after the exporter is done.
    pub async fn wait_quiet(&self, quiet: Duration, timeout: Duration) -> Result<Vec<Span>> {
        let mut changes = self.shared.generation.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            changes.borrow_and_update();
            let quiet_until = tokio::time::Instant::now() + quiet;
            if quiet_until > deadline {
                return Err(Error::timeout(format!("{quiet:?} without spans"), timeout, self.spans().describe()));
            }
            if tokio::time::timeout_at(quiet_until, changes.changed()).await.is_err() {
                return Ok(self.spans());
            }
        }
    }
}

fn decompress(headers: &HeaderMap, body: Bytes) -> std::result::Result<Bytes, String> {
    let encoding =
        headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok()).unwrap_or("identity").to_ascii_lowercase();
    match encoding.as_str() {
        "" | "identity" => Ok(body),
        "gzip" => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(body.as_ref())
                .read_to_end(&mut out)
                .map_err(|e| format!("bad gzip body: {e}"))?;
            Ok(out.into())
        }
        "zstd" => zstd::decode_all(body.as_ref()).map(Bytes::from).map_err(|e| format!("bad zstd body: {e}")),
        other => Err(format!("unsupported content-encoding {other}")),
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("json"))
}

fn decode<T: Message + Default + serde::de::DeserializeOwned>(
    json: bool,
    body: &[u8],
) -> std::result::Result<T, String> {
    if json {
        serde_json::from_slice(body).map_err(|e| format!("bad OTLP JSON: {e}"))
    } else {
        T::decode(body).map_err(|e| format!("bad OTLP protobuf: {e}"))
    }
}

fn encode<T: Message + serde::Serialize>(json: bool, response: &T) -> Response {
    if json {
        ([(header::CONTENT_TYPE, "application/json")], serde_json::to_vec(response).unwrap_or_default()).into_response()
    } else {
        ([(header::CONTENT_TYPE, "application/x-protobuf")], response.encode_to_vec()).into_response()
    }
}

/// The common part of the three endpoints: fault injection, decompression, recording.
/// Returns the decompressed body, or the response to send instead.
async fn admit(shared: &Shared, path: &str, headers: &HeaderMap, body: Bytes) -> std::result::Result<Bytes, Response> {
    let behaviour = lock(&shared.behaviour).clone();
    if !behaviour.delay.is_zero() {
        tokio::time::sleep(behaviour.delay).await;
    }
    let record = |body: Bytes, status: u16| finish(shared, path, headers, body, status, 0);
    if let Some(status) = behaviour.fail_with {
        record(body, status);
        let status = HttpStatus::from_u16(status).unwrap_or(HttpStatus::SERVICE_UNAVAILABLE);
        return Err((status, "refused by test behaviour").into_response());
    }
    match decompress(headers, body.clone()) {
        Ok(body) => Ok(body),
        Err(message) => {
            record(body, 400);
            Err((HttpStatus::BAD_REQUEST, message).into_response())
        }
    }
}

fn finish(shared: &Shared, path: &str, headers: &HeaderMap, body: Bytes, status: u16, spans: usize) {
    lock(&shared.requests).push(ExportRequest {
        path: path.to_owned(),
        headers: headers.clone(),
        body,
        status,
        spans,
        received: Instant::now(),
    });
    shared.generation.send_modify(|g| *g += 1);
}

async fn traces(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let path = "/v1/traces";
    let body = match admit(&shared, path, &headers, body).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let json = is_json(&headers);
    let request: ExportTraceServiceRequest = match decode(json, &body) {
        Ok(request) => request,
        Err(message) => {
            finish(&shared, path, &headers, body, 400, 0);
            return (HttpStatus::BAD_REQUEST, message).into_response();
        }
    };
    let mut spans = Vec::new();
    for resource_spans in &request.resource_spans {
        let resource =
            resource_spans.resource.as_ref().map(|r| Attributes::from_proto(&r.attributes)).unwrap_or_default();
        for scope_spans in &resource_spans.scope_spans {
            for span in &scope_spans.spans {
                spans.push(Span::from_proto(span, &resource, scope_spans.scope.as_ref()));
            }
        }
    }
    let count = spans.len();
    shared.collector.write().await.add_traces(request);
    lock(&shared.spans).extend(spans);
    finish(&shared, path, &headers, body, 200, count);
    encode(json, &ExportTraceServiceResponse { partial_success: None })
}

async fn logs(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let path = "/v1/logs";
    let body = match admit(&shared, path, &headers, body).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let json = is_json(&headers);
    match decode::<ExportLogsServiceRequest>(json, &body) {
        Ok(request) => {
            shared.collector.write().await.add_logs(request);
            finish(&shared, path, &headers, body, 200, 0);
            encode(json, &ExportLogsServiceResponse { partial_success: None })
        }
        Err(message) => {
            finish(&shared, path, &headers, body, 400, 0);
            (HttpStatus::BAD_REQUEST, message).into_response()
        }
    }
}

async fn metrics(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let path = "/v1/metrics";
    let body = match admit(&shared, path, &headers, body).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let json = is_json(&headers);
    match decode::<ExportMetricsServiceRequest>(json, &body) {
        Ok(request) => {
            shared.collector.write().await.add_metrics(request);
            finish(&shared, path, &headers, body, 200, 0);
            encode(json, &ExportMetricsServiceResponse { partial_success: None })
        }
        Err(message) => {
            finish(&shared, path, &headers, body, 400, 0);
            (HttpStatus::BAD_REQUEST, message).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_lowercase_hex() {
        assert_eq!(hex(&[0x00, 0xab, 0x0f]), "00ab0f");
    }

    #[test]
    fn attributes_keep_order_and_report_duplicates() {
        let attrs = Attributes(vec![
            ("a".to_owned(), AnyValue::from("x")),
            ("b".to_owned(), AnyValue::from(1_i64)),
            ("a".to_owned(), AnyValue::from("y")),
        ]);
        assert_eq!(attrs.str("a"), Some("x"));
        assert_eq!(attrs.i64("b"), Some(1));
        assert_eq!(attrs.duplicate_keys(), vec!["a"]);
        assert_eq!(attrs.keys().collect::<Vec<_>>(), vec!["a", "b", "a"]);
    }

    #[test]
    fn gzip_bodies_are_inflated() {
        use std::io::Write as _;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(b"payload").unwrap();
        let gz = encoder.finish().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_ENCODING, "gzip".parse().unwrap());
        assert_eq!(decompress(&headers, Bytes::from(gz)).unwrap(), Bytes::from_static(b"payload"));
        headers.insert(header::CONTENT_ENCODING, "br".parse().unwrap());
        assert!(decompress(&headers, Bytes::new()).is_err());
    }
}
