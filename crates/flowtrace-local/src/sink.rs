//! The embedded OTLP sink: an OTLP/HTTP receiver on loopback that writes every span it gets
//! to a JSON-lines file, and forwards what it receives, unchanged, to a real backend when one
//! is configured.
//!
//! Each line of the file is one OTLP-JSON `ResourceSpans` holding exactly one span, with its
//! resource and scope: self-contained, so `grep`, `jq` and [`flowtrace-report`] can read any
//! line on its own.
//!
//! Bad input never takes the sink down: a body that does not decode gets a 400 and a log
//! line, and is still forwarded (the backend may know better).

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};
use prost::Message as _;

use crate::{Error, Result};

/// Largest request body accepted, as the extension's own receiver does.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// What the sink has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SinkStats {
    /// Spans written to the file.
    pub spans: u64,
    /// Export requests that did not decode (answered 400).
    pub rejected_requests: u64,
    /// Requests forwarded to the backend and accepted there.
    pub forwarded: u64,
    /// Requests the backend refused or did not answer.
    pub forward_failures: u64,
}

#[derive(Debug, Default)]
struct Counters {
    spans: AtomicU64,
    rejected_requests: AtomicU64,
    forwarded: AtomicU64,
    forward_failures: AtomicU64,
}

#[derive(Clone)]
struct Shared {
    file: Arc<Mutex<BufWriter<File>>>,
    counters: Arc<Counters>,
    forward: Option<Forward>,
}

#[derive(Clone)]
struct Forward {
    client: reqwest::Client,
    base: String,
}

/// The sink, serving until dropped.
#[derive(Debug)]
pub struct OtlpSink {
    addr: SocketAddr,
    path: PathBuf,
    shared: Shared,
    counters: Arc<Counters>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for OtlpSink {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.abort();
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl OtlpSink {
    /// Starts on 127.0.0.1 and a free port, writing spans to `path` (created, or truncated:
    /// one file per run). With `forward_to` (an OTLP/HTTP base URL such as
    /// `http://localhost:4318`), every request is also sent on to `{forward_to}/v1/{signal}`.
    pub async fn start(path: impl Into<PathBuf>, forward_to: Option<String>) -> Result<Self> {
        let path = path.into();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&path)
            .map_err(|e| Error::io(format!("open {}", path.display()), e))?;
        let forward = match forward_to {
            Some(base) => Some(Forward {
                client: reqwest::Client::builder()
                    .timeout(std::time::Duration::from_secs(10))
                    .build()
                    .map_err(|e| Error::Process(format!("an HTTP client to forward OTLP: {e}")))?,
                base: base.trim_end_matches('/').to_owned(),
            }),
            None => None,
        };
        let counters = Arc::new(Counters::default());
        let shared =
            Shared { file: Arc::new(Mutex::new(BufWriter::new(file))), counters: Arc::clone(&counters), forward };
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(|e| Error::io("bind the OTLP sink on 127.0.0.1", e))?;
        let addr = listener.local_addr().map_err(|e| Error::io("the OTLP sink's address", e))?;
        let app = Router::new()
            .route("/v1/traces", post(traces))
            .route("/v1/logs", post(|state, headers, body| other(state, headers, body, "logs")))
            .route("/v1/metrics", post(|state, headers, body| other(state, headers, body, "metrics")))
            .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
            .with_state(shared.clone());
        let (shutdown, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(Self { addr, path, shared, counters, shutdown: Some(shutdown), task })
    }

    /// `http://127.0.0.1:PORT`, for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The JSON-lines file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records spans made locally (the emulated API Gateway's) as if they had been
    /// exported to the sink: written to the file, and forwarded.
    pub fn record(&self, request: ExportTraceServiceRequest) -> Result<()> {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/x-protobuf"));
        self.shared.forward("traces", &headers, Bytes::from(request.encode_to_vec()));
        self.shared.write(request).map_err(|e| Error::io(format!("write {}", self.path.display()), e))
    }

    /// What the sink has done so far.
    pub fn stats(&self) -> SinkStats {
        SinkStats {
            spans: self.counters.spans.load(Ordering::Relaxed),
            rejected_requests: self.counters.rejected_requests.load(Ordering::Relaxed),
            forwarded: self.counters.forwarded.load(Ordering::Relaxed),
            forward_failures: self.counters.forward_failures.load(Ordering::Relaxed),
        }
    }
}

async fn traces(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> StatusCode {
    shared.forward("traces", &headers, body.clone());
    match decode_traces(&headers, &body) {
        Ok(request) => match shared.write(request) {
            Ok(()) => StatusCode::OK,
            Err(error) => {
                eprintln!("flowtrace local: OTLP sink: could not write spans: {error}");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        },
        Err(reason) => {
            shared.counters.rejected_requests.fetch_add(1, Ordering::Relaxed);
            eprintln!("flowtrace local: OTLP sink: rejected a traces request ({} bytes): {reason}", body.len());
            StatusCode::BAD_REQUEST
        }
    }
}

async fn other(State(shared): State<Shared>, headers: HeaderMap, body: Bytes, signal: &'static str) -> StatusCode {
    shared.forward(signal, &headers, body);
    StatusCode::OK
}

impl Shared {
    /// Sends the request on as it came, in the background: the exporter never waits for the
    /// backend.
    fn forward(&self, signal: &'static str, headers: &HeaderMap, body: Bytes) {
        let Some(forward) = self.forward.clone() else { return };
        let counters = Arc::clone(&self.counters);
        let mut request = forward.client.post(format!("{}/v1/{signal}", forward.base)).body(body);
        for name in [header::CONTENT_TYPE, header::CONTENT_ENCODING] {
            if let Some(value) = headers.get(&name) {
                request = request.header(name, value);
            }
        }
        tokio::spawn(async move {
            match request.send().await {
                Ok(answer) if answer.status().is_success() => {
                    counters.forwarded.fetch_add(1, Ordering::Relaxed);
                }
                Ok(answer) => {
                    counters.forward_failures.fetch_add(1, Ordering::Relaxed);
                    eprintln!("flowtrace local: {} refused {signal}: HTTP {}", forward.base, answer.status());
                }
                Err(error) => {
                    counters.forward_failures.fetch_add(1, Ordering::Relaxed);
                    eprintln!("flowtrace local: could not forward {signal} to {}: {error}", forward.base);
                }
            }
        });
    }

    fn write(&self, request: ExportTraceServiceRequest) -> std::io::Result<()> {
        let mut file = lock(&self.file);
        let mut written = 0_u64;
        for line in span_lines(request) {
            file.write_all(line.as_bytes())?;
            file.write_all(b"\n")?;
            written += 1;
        }
        file.flush()?;
        self.counters.spans.fetch_add(written, Ordering::Relaxed);
        Ok(())
    }
}

/// Decodes an OTLP/HTTP traces body: protobuf, or JSON when the content type says so;
/// gzip-compressed when `Content-Encoding` says so.
fn decode_traces(headers: &HeaderMap, body: &[u8]) -> std::result::Result<ExportTraceServiceRequest, String> {
    let encoding = headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok()).unwrap_or("");
    let inflated;
    let body = match encoding.trim() {
        "" | "identity" => body,
        "gzip" => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(body)
                .take(MAX_BODY_BYTES as u64 * 8)
                .read_to_end(&mut out)
                .map_err(|e| format!("gzip: {e}"))?;
            inflated = out;
            &inflated
        }
        other => return Err(format!("unsupported Content-Encoding {other:?}")),
    };
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if content_type.starts_with("application/json") {
        serde_json::from_slice(body).map_err(|e| format!("OTLP JSON: {e}"))
    } else {
        ExportTraceServiceRequest::decode(body).map_err(|e| format!("OTLP protobuf: {e}"))
    }
}

/// One OTLP-JSON line per span, each a `ResourceSpans` with that span alone.
pub fn span_lines(request: ExportTraceServiceRequest) -> impl Iterator<Item = String> {
    request.resource_spans.into_iter().flat_map(|resource_spans| {
        let resource = resource_spans.resource;
        let resource_schema_url = resource_spans.schema_url;
        resource_spans.scope_spans.into_iter().flat_map(move |scope_spans| {
            let resource = resource.clone();
            let resource_schema_url = resource_schema_url.clone();
            let scope = scope_spans.scope;
            let scope_schema_url = scope_spans.schema_url;
            scope_spans.spans.into_iter().filter_map(move |span| {
                let one = ResourceSpans {
                    resource: resource.clone(),
                    scope_spans: vec![ScopeSpans {
                        scope: scope.clone(),
                        spans: vec![span],
                        schema_url: scope_schema_url.clone(),
                    }],
                    schema_url: resource_schema_url.clone(),
                };
                serde_json::to_string(&one).ok()
            })
        })
    })
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::Span;

    use super::*;

    fn request(service: &str, names: &[&str]) -> ExportTraceServiceRequest {
        let spans = names
            .iter()
            .enumerate()
            .map(|(i, name)| Span {
                trace_id: vec![0xab; 16],
                span_id: vec![u8::try_from(i + 1).unwrap(); 8],
                name: (*name).to_owned(),
                start_time_unix_nano: 1_000,
                end_time_unix_nano: 2_000,
                ..Span::default()
            })
            .collect();
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![KeyValue {
                        key: "service.name".to_owned(),
                        value: Some(AnyValue { value: Some(any_value::Value::StringValue(service.to_owned())) }),
                        ..KeyValue::default()
                    }],
                    ..Resource::default()
                }),
                scope_spans: vec![ScopeSpans { spans, ..ScopeSpans::default() }],
                schema_url: String::new(),
            }],
        }
    }

    #[test]
    fn each_span_is_one_self_contained_line() {
        let lines: Vec<String> = span_lines(request("svc", &["a", "b"])).collect();
        assert_eq!(lines.len(), 2);
        for (line, name) in lines.iter().zip(["a", "b"]) {
            let parsed: ResourceSpans = serde_json::from_str(line).unwrap();
            assert_eq!(parsed.scope_spans.len(), 1);
            assert_eq!(parsed.scope_spans[0].spans.len(), 1);
            assert_eq!(parsed.scope_spans[0].spans[0].name, name);
            let json: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(json["resource"]["attributes"][0]["value"]["stringValue"], "svc");
            assert_eq!(json["scopeSpans"][0]["spans"][0]["traceId"], "abababababababababababababababab");
        }
    }

    async fn post_to(sink: &OtlpSink, content_type: &str, encoding: Option<&str>, body: Vec<u8>) -> u16 {
        let client = reqwest::Client::new();
        let mut request =
            client.post(format!("{}/v1/traces", sink.endpoint())).header("content-type", content_type).body(body);
        if let Some(encoding) = encoding {
            request = request.header("content-encoding", encoding);
        }
        request.send().await.unwrap().status().as_u16()
    }

    #[tokio::test]
    async fn protobuf_json_and_gzip_are_written_and_garbage_is_refused() {
        let dir = std::env::temp_dir().join(format!("flowtrace-sink-{}", std::process::id()));
        let sink = OtlpSink::start(dir.join("spans.jsonl"), None).await.unwrap();

        assert_eq!(post_to(&sink, "application/x-protobuf", None, request("p", &["one"]).encode_to_vec()).await, 200);
        let json = serde_json::to_vec(&request("j", &["two", "three"])).unwrap();
        assert_eq!(post_to(&sink, "application/json", None, json).await, 200);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&request("g", &["four"]).encode_to_vec()).unwrap();
        assert_eq!(post_to(&sink, "application/x-protobuf", Some("gzip"), gz.finish().unwrap()).await, 200);
        assert_eq!(post_to(&sink, "application/x-protobuf", None, b"\xff\xff garbage".to_vec()).await, 400);
        assert_eq!(post_to(&sink, "application/json", None, b"{not json".to_vec()).await, 400);
        assert_eq!(post_to(&sink, "application/x-protobuf", Some("br"), vec![1, 2]).await, 400);

        let text = std::fs::read_to_string(sink.path()).unwrap();
        let names: Vec<String> = text
            .lines()
            .map(|l| serde_json::from_str::<ResourceSpans>(l).unwrap().scope_spans[0].spans[0].name.clone())
            .collect();
        assert_eq!(names, ["one", "two", "three", "four"]);
        assert_eq!(sink.stats(), SinkStats { spans: 4, rejected_requests: 3, forwarded: 0, forward_failures: 0 });
        drop(sink);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn requests_are_forwarded_unchanged_and_a_dead_backend_is_counted() {
        let dir = std::env::temp_dir().join(format!("flowtrace-sink-fwd-{}", std::process::id()));
        let backend = OtlpSink::start(dir.join("backend.jsonl"), None).await.unwrap();
        let sink = OtlpSink::start(dir.join("spans.jsonl"), Some(format!("{}/", backend.endpoint()))).await.unwrap();
        assert_eq!(post_to(&sink, "application/x-protobuf", None, request("p", &["one"]).encode_to_vec()).await, 200);
        for _ in 0..200 {
            if backend.stats().spans == 1 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(backend.stats().spans, 1, "the backend got the span");
        assert_eq!(sink.stats().spans, 1, "and the local file too");

        let dead_port = crate::free_port().unwrap();
        let orphan =
            OtlpSink::start(dir.join("orphan.jsonl"), Some(format!("http://127.0.0.1:{dead_port}"))).await.unwrap();
        assert_eq!(post_to(&orphan, "application/x-protobuf", None, request("p", &["x"]).encode_to_vec()).await, 200);
        for _ in 0..500 {
            if orphan.stats().forward_failures == 1 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(orphan.stats().forward_failures, 1);
        assert_eq!(orphan.stats().spans, 1, "a dead backend loses nothing locally");
        let _ = std::fs::remove_dir_all(dir);
    }
}
