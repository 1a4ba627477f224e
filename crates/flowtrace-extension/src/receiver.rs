//! The loopback HTTP servers: the OTLP/HTTP receiver (plus start notices and stats) and the
//! Telemetry API listener. Every bad request gets an error status and a log line.

use std::convert::Infallible;
use std::io::Read;
use std::sync::Arc;

use bytes::Bytes;
use flowtrace_contract::{EXTENSION_STATS_PATH, START_NOTICE_PATH, StartNotice};
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use thiserror::Error;
use tokio::net::TcpListener;

use crate::buffer::{Format, Signal};
use crate::proto::{ScanError, check_message, scan_trace_request};
use crate::shared::{Shared, bump, lock};
use crate::telemetry::{EventKind, parse_batch};

/// Why a request was refused.
#[derive(Debug, Error)]
pub enum RequestError {
    /// Larger than `FLOWTRACE_MAX_REQUEST_BYTES` (compressed or not).
    #[error("body larger than {0} bytes")]
    TooLarge(usize),
    /// The body could not be read.
    #[error("cannot read the body: {0}")]
    Read(String),
    /// A `Content-Encoding` other than gzip or identity, or a broken gzip stream.
    #[error("content encoding: {0}")]
    Encoding(String),
    /// A `Content-Type` that is neither protobuf nor JSON.
    #[error("unsupported content type {0:?} (expected application/x-protobuf or application/json)")]
    ContentType(String),
    /// Not valid OTLP protobuf.
    #[error("malformed OTLP protobuf: {0}")]
    Protobuf(#[from] ScanError),
    /// Not valid OTLP JSON, or not a valid start notice.
    #[error("malformed JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A start notice with bad ids.
    #[error("unusable start notice: {0}")]
    Notice(#[from] crate::tracker::NoticeError),
}

impl RequestError {
    fn status(&self) -> StatusCode {
        match self {
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::ContentType(_) | Self::Encoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Read(_) | Self::Protobuf(_) | Self::Json(_) | Self::Notice(_) => StatusCode::BAD_REQUEST,
        }
    }
}

fn respond(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    if let Ok(value) = header::HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

fn refuse(error: &RequestError) -> Response<Full<Bytes>> {
    respond(error.status(), "text/plain", error.to_string())
}

/// Reads a body of at most `max` bytes and undoes gzip.
async fn read_body(request: Request<Incoming>, max: usize) -> Result<Bytes, RequestError> {
    if let Some(length) =
        request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
        && length > max
    {
        return Err(RequestError::TooLarge(max));
    }
    let encoding = request
        .headers()
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase());
    let body = Limited::new(request.into_body(), max).collect().await.map_err(|e| {
        if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
            RequestError::TooLarge(max)
        } else {
            RequestError::Read(e.to_string())
        }
    })?;
    let body = body.to_bytes();
    match encoding.as_deref() {
        None | Some("" | "identity") => Ok(body),
        Some("gzip") => {
            let mut out = Vec::new();
            // One byte over the bound tells "too large" from "exactly the bound".
            let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
            flate2::read::MultiGzDecoder::new(&body[..])
                .take(limit)
                .read_to_end(&mut out)
                .map_err(|e| RequestError::Encoding(format!("bad gzip: {e}")))?;
            if out.len() > max {
                return Err(RequestError::TooLarge(max));
            }
            Ok(Bytes::from(out))
        }
        Some(other) => Err(RequestError::Encoding(format!("{other:?} is not supported"))),
    }
}

fn format_of(request: &Request<Incoming>) -> Result<Format, RequestError> {
    let content_type = request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match essence.as_str() {
        "application/x-protobuf" | "application/protobuf" => Ok(Format::Protobuf),
        "application/json" => Ok(Format::Json),
        _ => Err(RequestError::ContentType(content_type.to_owned())),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonTraces {
    #[serde(default)]
    resource_spans: Vec<JsonResourceSpans>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonResourceSpans {
    #[serde(default)]
    scope_spans: Vec<JsonScopeSpans>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonScopeSpans {
    #[serde(default)]
    spans: Vec<JsonSpan>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonSpan {
    #[serde(default)]
    span_id: String,
}

/// Validates an OTLP body and calls `on_span_id` with each span id of a trace request.
/// Returns the number of spans (0 for metrics and logs).
pub fn inspect(
    signal: Signal,
    format: Format,
    body: &[u8],
    mut on_span_id: impl FnMut(&[u8]),
) -> Result<usize, RequestError> {
    match (signal, format) {
        (Signal::Traces, Format::Protobuf) => Ok(scan_trace_request(body, |ids| on_span_id(ids.span_id))?),
        (Signal::Traces, Format::Json) => {
            let traces: JsonTraces = serde_json::from_slice(body)?;
            let mut count = 0;
            for span in traces.resource_spans.iter().flat_map(|r| &r.scope_spans).flat_map(|s| &s.spans) {
                count += 1;
                if let Some(id) = crate::spans::parse_hex::<8>(&span.span_id) {
                    on_span_id(&id);
                }
            }
            Ok(count)
        }
        (_, Format::Protobuf) => {
            check_message(body)?;
            Ok(0)
        }
        (_, Format::Json) => {
            serde_json::from_slice::<serde::de::IgnoredAny>(body)?;
            Ok(0)
        }
    }
}

async fn otlp(
    shared: &Shared,
    signal: Signal,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, RequestError> {
    let format = format_of(&request)?;
    let body = read_body(request, shared.config.max_request_bytes).await?;
    let mut awaited = false;
    let spans = {
        let mut tracker = lock(&shared.tracker);
        let check = tracker.expects_spans();
        inspect(signal, format, &body, |id| {
            if check {
                awaited |= tracker.on_span_id(id);
            }
        })?
    };
    bump(&shared.counters.received_requests, 1);
    bump(&shared.counters.received_spans, spans as u64);
    shared.push(signal, format, body);
    if awaited {
        shared.changed.notify_waiters();
    }
    Ok(match format {
        Format::Protobuf => respond(StatusCode::OK, format.content_type(), Bytes::new()),
        Format::Json => respond(StatusCode::OK, format.content_type(), Bytes::from_static(b"{}")),
    })
}

async fn notice(shared: &Shared, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, RequestError> {
    let body = read_body(request, 64 * 1024).await?;
    let notice: StartNotice = serde_json::from_slice(&body)?;
    lock(&shared.tracker).on_notice(&notice)?;
    bump(&shared.counters.notices, 1);
    crate::log!(Debug, "start notice for {}", notice.request_id);
    Ok(respond(StatusCode::ACCEPTED, "text/plain", Bytes::new()))
}

/// Handles one request to the OTLP receiver.
pub async fn handle_otlp(shared: Arc<Shared>, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_owned();
    let result = match (request.method(), path.as_str()) {
        (&Method::POST, "/v1/traces") => otlp(&shared, Signal::Traces, request).await,
        (&Method::POST, "/v1/metrics") => otlp(&shared, Signal::Metrics, request).await,
        (&Method::POST, "/v1/logs") => otlp(&shared, Signal::Logs, request).await,
        (&Method::POST, START_NOTICE_PATH) => notice(&shared, request).await,
        (&Method::GET, EXTENSION_STATS_PATH) => {
            let stats = serde_json::to_vec(&shared.stats()).unwrap_or_default();
            Ok(respond(StatusCode::OK, "application/json", stats))
        }
        _ => Ok(respond(StatusCode::NOT_FOUND, "text/plain", "not found")),
    };
    Ok(result.unwrap_or_else(|error| {
        bump(&shared.counters.rejected_requests, 1);
        crate::log!(Warn, "refused {path}: {error}");
        refuse(&error)
    }))
}

/// Handles one Telemetry API batch.
pub async fn handle_telemetry(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let result = async {
        let body = read_body(request, 4 * 1024 * 1024).await?;
        parse_batch(&body).map_err(|crate::telemetry::BatchError::NotAnArray(e)| RequestError::Json(e))
    }
    .await;
    let events = match result {
        Ok(events) => events,
        Err(error) => {
            bump(&shared.counters.telemetry_rejected, 1);
            crate::log!(Warn, "refused a telemetry batch: {error}");
            return Ok(refuse(&error));
        }
    };
    bump(&shared.counters.telemetry_events, events.len() as u64);
    let mut wake = false;
    let mut logs = Vec::new();
    let export_logs = shared.config.logs.is_some();
    for event in events {
        wake |= matches!(event.kind, EventKind::RuntimeDone(_) | EventKind::Report(_));
        if let EventKind::FunctionLog(line) = event.kind {
            if export_logs {
                logs.push((event.time_unix_nano, line));
            }
            continue;
        }
        let report = match &event.kind {
            EventKind::Report(done) if shared.config.metrics.is_some() => Some(done.request_id.clone()),
            _ => None,
        };
        let spans = lock(&shared.tracker).on_event(event);
        if let Some(spans) = spans {
            shared.push_spans(spans);
        }
        if let Some(request_id) = report {
            let dropped = shared.stats().dropped_items;
            let metrics = lock(&shared.tracker).metrics_for(&request_id, dropped, shared.started_unix_nano);
            if let Some(body) = metrics {
                shared.push(Signal::Metrics, Format::Protobuf, Bytes::from(body));
            }
        }
    }
    if !logs.is_empty() {
        let body = lock(&shared.tracker).encode_logs(logs);
        shared.push(Signal::Logs, Format::Protobuf, Bytes::from(body));
    }
    if wake {
        shared.changed.notify_waiters();
    }
    Ok(respond(StatusCode::OK, "text/plain", Bytes::new()))
}

/// Serves HTTP/1.1 on `listener`, one task per connection, forever.
pub async fn serve<F, Fut>(listener: TcpListener, shared: Arc<Shared>, handler: F)
where
    F: Fn(Arc<Shared>, Request<Incoming>) -> Fut + Copy + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send + 'static,
{
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                crate::log!(Warn, "accept failed: {error}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let service = service_fn(move |request| handler(Arc::clone(&shared), request));
            if let Err(error) = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await {
                crate::log!(Debug, "connection ended: {error}");
            }
        });
    }
}
