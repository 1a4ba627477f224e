//! Shared test helpers: a moto server on a free loopback port, a global in-memory tracer,
//! AWS SDK configuration pointing at moto, and the consumer side (flowtrace's own trigger
//! parsing) to check that what AWS stored continues the producer's trace.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_types::SdkConfig;
use aws_types::region::Region;
use opentelemetry::trace::{SpanContext, SpanKind, TraceContextExt, Tracer, TracerProvider as _};
use opentelemetry::{Context, KeyValue, Value};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const RESERVED_KEY: &str = "_flowtrace";

/// A moto server on 127.0.0.1 and a free port, killed on drop.
pub struct Moto {
    child: Child,
    pub endpoint: String,
}

impl Moto {
    /// Starts moto and waits (up to 30 s) until it answers. If moto is not installed, it is
    /// installed with `python3 -m pip install 'moto[server]'` first.
    pub fn start() -> Moto {
        ensure_moto();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("python3")
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 must be on PATH to run moto");
        let moto = Moto { child, endpoint: format!("http://127.0.0.1:{port}") };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if answers(port) {
                return moto;
            }
            assert!(Instant::now() < deadline, "moto did not answer on port {port} within 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// An SDK config for moto: dummy credentials, region us-east-1.
    pub fn sdk_config(&self) -> SdkConfig {
        SdkConfig::builder()
            .region(Region::new("us-east-1"))
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new("test", "test", None, None, "test")))
            .endpoint_url(&self.endpoint)
            .behavior_version(aws_smithy_runtime_api::client::behavior_version::BehaviorVersion::latest())
            .build()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn answers(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream.write_all(b"GET /moto-api/ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").is_err() {
        return false;
    }
    let mut buf = [0_u8; 12];
    stream.read(&mut buf).is_ok_and(|n| n >= 12 && buf.starts_with(b"HTTP/1."))
}

fn ensure_moto() {
    static CHECKED: OnceLock<()> = OnceLock::new();
    CHECKED.get_or_init(|| {
        let has = |_: ()| {
            Command::new("python3")
                .args(["-c", "import moto.server, flask"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if has(()) {
            return;
        }
        eprintln!("moto not found: installing it with `python3 -m pip install 'moto[server]'`");
        let installed = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "moto[server]"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(installed && has(()), "moto is not installed and `python3 -m pip install 'moto[server]'` failed");
    });
}

/// The in-memory exporter behind the global tracer provider (installed once per test binary,
/// as flowtrace installs its own in a function).
pub fn exporter() -> InMemorySpanExporter {
    static EXPORTER: OnceLock<InMemorySpanExporter> = OnceLock::new();
    EXPORTER
        .get_or_init(|| {
            let exporter = InMemorySpanExporter::default();
            let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
            opentelemetry::global::set_tracer_provider(provider);
            exporter
        })
        .clone()
}

/// A root span standing for the producer function's invocation; calls made under its context
/// are its children.
pub fn root(name: &str) -> Context {
    exporter();
    let tracer = opentelemetry::global::tracer_provider().tracer("test");
    let span = tracer.start(name.to_owned());
    Context::current_with_span(span)
}

/// The finished spans of `cx`'s trace named `name`.
pub fn spans_named(cx: &Context, name: &str) -> Vec<SpanData> {
    let trace_id = cx.span().span_context().trace_id();
    exporter()
        .get_finished_spans()
        .unwrap()
        .into_iter()
        .filter(|s| s.span_context.trace_id() == trace_id && s.name == name)
        .collect()
}

/// The one finished span of `cx`'s trace named `name`.
pub fn span(cx: &Context, name: &str) -> SpanData {
    let mut spans = spans_named(cx, name);
    assert_eq!(
        spans.len(),
        1,
        "expected one span named {name} among {:?}",
        exporter()
            .get_finished_spans()
            .unwrap()
            .iter()
            .map(|s| (s.name.clone(), s.span_context.trace_id()))
            .collect::<Vec<_>>()
    );
    spans.remove(0)
}

pub fn attr<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| &kv.value)
}

pub fn attr_str(span: &SpanData, key: &str) -> Option<String> {
    attr(span, key).map(|v| v.as_str().into_owned())
}

pub fn has(span: &SpanData, key: &str, value: impl Into<Value>) -> bool {
    attr(span, key) == Some(&value.into())
}

/// The reasons of the span's `flowtrace.injection.skipped` events.
pub fn skip_reasons(span: &SpanData) -> Vec<String> {
    span.events
        .iter()
        .filter(|e| e.name == "flowtrace.injection.skipped")
        .filter_map(|e| e.attributes.iter().find(|kv| kv.key.as_str() == "flowtrace.injection.reason"))
        .map(|kv| kv.value.as_str().into_owned())
        .collect()
}

pub fn assert_kind(span: &SpanData, kind: SpanKind) {
    assert_eq!(span.span_kind, kind, "{}", span.name);
}

/// Runs flowtrace's own trigger detection on a Lambda event and returns the parent it picks.
pub fn consumer_parent(event: &serde_json::Value) -> Option<SpanContext> {
    consumer_trigger(event).parent_and_links().0
}

pub fn consumer_trigger(event: &serde_json::Value) -> flowtrace::trigger::Trigger {
    let propagator = flowtrace::propagation::default_propagator();
    let envelope = flowtrace::trigger::EventEnvelope { client_context_custom: None, reserved_key: RESERVED_KEY };
    flowtrace::trigger::detect(event, envelope, &*propagator)
}

/// Asserts that the consumer's parent is `producer`.
pub fn assert_parent_is(event: &serde_json::Value, producer: &SpanData) {
    let parent = consumer_parent(event).unwrap_or_else(|| panic!("no parent found in {event:#}"));
    assert_eq!(parent.trace_id(), producer.span_context.trace_id());
    assert_eq!(parent.span_id(), producer.span_context.span_id(), "the producer span is the parent");
}

pub fn kv_str(span: &SpanData, key: &str) -> KeyValue {
    KeyValue::new(key.to_owned(), attr_str(span, key).unwrap_or_default())
}
