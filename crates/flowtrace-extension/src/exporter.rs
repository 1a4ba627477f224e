//! The exporter: drains the buffer to the OTLP backend with gzip, headers, a timeout per
//! attempt and retries with exponential backoff and jitter. Protobuf payloads of one signal
//! are batched by concatenation (protobuf merges repeated fields), so nothing is decoded.
//!
//! A flush runs as its own task; the end of an invocation waits for it only within the
//! flush budget, so a slow or unreachable collector never holds the function back. Only one
//! flush runs at a time, and it drains until the buffer is empty.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, StatusCode};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use thiserror::Error;
use tokio::sync::{OnceCell, watch};

use crate::buffer::{Format, Item, Signal};
use crate::config::SignalTarget;
use crate::shared::{Shared, bump, lock};

/// Protobuf payloads are batched up to this many bytes per request.
pub const MAX_BATCH_BYTES: usize = 1024 * 1024;

/// Why one export request failed.
#[derive(Debug, Error)]
pub enum ExportError {
    /// The request could not be built (bad URL or header).
    #[error("cannot build the request: {0}")]
    Request(String),
    /// No connection or no answer.
    #[error("transport error: {0}")]
    Transport(String),
    /// The attempt timed out.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The backend refused it.
    #[error("the backend answered {0}")]
    Status(StatusCode),
    /// TLS could not be set up.
    #[error("TLS set-up failed: {0}")]
    Tls(String),
}

impl ExportError {
    fn retryable(&self) -> bool {
        match self {
            Self::Transport(_) | Self::Timeout(_) => true,
            Self::Status(status) => matches!(status.as_u16(), 408 | 429 | 502 | 503 | 504),
            Self::Request(_) | Self::Tls(_) => false,
        }
    }
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;
type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The backoff before retry `attempt` (0-based): 100 ms × 2^attempt, capped at 2 s, with
/// jitter (between half and all of it).
pub fn backoff(attempt: u32) -> Duration {
    let base = Duration::from_millis(100).saturating_mul(1u32 << attempt.min(5)).min(Duration::from_secs(2));
    let jitter = fastrand::f64() * 0.5 + 0.5;
    base.mul_f64(jitter)
}

/// Groups payloads into export requests: protobuf payloads of one signal concatenated up
/// to [`MAX_BATCH_BYTES`], JSON payloads one per request.
pub fn batches(items: Vec<Item>) -> Vec<Item> {
    let mut out: Vec<Item> = Vec::new();
    let mut open: [Option<Vec<u8>>; 3] = [None, None, None];
    let slot = |signal: Signal| match signal {
        Signal::Traces => 0,
        Signal::Metrics => 1,
        Signal::Logs => 2,
    };
    let signals = [Signal::Traces, Signal::Metrics, Signal::Logs];
    for item in items {
        if item.format == Format::Json {
            out.push(item);
            continue;
        }
        let i = slot(item.signal);
        if let Some(batch) = &open[i]
            && batch.len() + item.body.len() > MAX_BATCH_BYTES
            && let Some(full) = open[i].take()
        {
            out.push(Item { signal: item.signal, format: Format::Protobuf, body: Bytes::from(full) });
        }
        open[i].get_or_insert_with(Vec::new).extend_from_slice(&item.body);
    }
    for (i, batch) in open.into_iter().enumerate() {
        if let Some(body) = batch {
            out.push(Item { signal: signals[i], format: Format::Protobuf, body: Bytes::from(body) });
        }
    }
    out
}

/// The exporter.
#[derive(Debug)]
pub struct Exporter {
    shared: Arc<Shared>,
    http: HttpClient,
    https: OnceCell<Result<HttpsClient, String>>,
    running: AtomicBool,
    done: watch::Sender<u64>,
}

fn gzip(body: &[u8]) -> Result<Vec<u8>, std::io::Error> {
    let mut encoder =
        flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 4 + 64), flate2::Compression::fast());
    encoder.write_all(body)?;
    encoder.finish()
}

fn https_client() -> Result<HttpsClient, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let tls =
        hyper_rustls::ConfigBuilderExt::with_native_roots(builder).map_err(|e| e.to_string())?.with_no_client_auth();
    let connector =
        hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http().enable_http1().build();
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

impl Exporter {
    /// An exporter draining `shared`'s buffer.
    pub fn new(shared: Arc<Shared>) -> Arc<Self> {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let http = Client::builder(TokioExecutor::new()).build(connector);
        let (done, _) = watch::channel(0);
        Arc::new(Self { shared, http, https: OnceCell::new(), running: AtomicBool::new(false), done })
    }

    async fn send_once(&self, target: &SignalTarget, format: Format, body: &Bytes) -> Result<(), ExportError> {
        let mut request = Request::post(&target.url).header(http::header::CONTENT_TYPE, format.content_type());
        for (k, v) in &target.headers {
            let name =
                HeaderName::try_from(k.as_str()).map_err(|e| ExportError::Request(format!("header {k:?}: {e}")))?;
            let value =
                HeaderValue::try_from(v.as_str()).map_err(|e| ExportError::Request(format!("header {k:?}: {e}")))?;
            request = request.header(name, value);
        }
        let payload = if target.gzip {
            request = request.header(http::header::CONTENT_ENCODING, "gzip");
            Bytes::from(gzip(body).map_err(|e| ExportError::Request(e.to_string()))?)
        } else {
            body.clone()
        };
        let request = request.body(Full::new(payload)).map_err(|e| ExportError::Request(e.to_string()))?;
        let timeout = self.shared.config.export_timeout;
        let response = if target.url.starts_with("https://") {
            let client = self.https.get_or_init(|| async { https_client() }).await;
            let client = client.as_ref().map_err(|e| ExportError::Tls(e.clone()))?;
            tokio::time::timeout(timeout, client.request(request)).await
        } else {
            tokio::time::timeout(timeout, self.http.request(request)).await
        };
        let response =
            response.map_err(|_| ExportError::Timeout(timeout))?.map_err(|e| ExportError::Transport(e.to_string()))?;
        if response.status().is_success() { Ok(()) } else { Err(ExportError::Status(response.status())) }
    }

    /// Sends one request with retries.
    pub async fn send(&self, target: &SignalTarget, format: Format, body: &Bytes) -> Result<(), ExportError> {
        let mut attempt = 0;
        loop {
            match self.send_once(target, format, body).await {
                Ok(()) => return Ok(()),
                Err(error) if error.retryable() && attempt < self.shared.config.export_retries => {
                    crate::log!(Debug, "export to {} failed ({error}); retrying", target.url);
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn drain(&self) {
        loop {
            let items = lock(&self.shared.buffer).drain();
            if items.is_empty() {
                return;
            }
            for item in batches(items) {
                let Some(target) = self.shared.config.target(item.signal) else {
                    bump(&self.shared.counters.unexported_items, 1);
                    continue;
                };
                match self.send(target, item.format, &item.body).await {
                    Ok(()) => {
                        bump(&self.shared.counters.exported_requests, 1);
                        bump(&self.shared.counters.exported_bytes, item.body.len() as u64);
                    }
                    Err(error) => {
                        bump(&self.shared.counters.export_failures, 1);
                        bump(&self.shared.counters.export_dropped_items, 1);
                        crate::log!(
                            Warn,
                            "export to {} failed, {} bytes dropped: {error}",
                            target.url,
                            item.body.len()
                        );
                    }
                }
            }
        }
    }

    /// Starts a flush unless one is running, and waits for the running flush to finish
    /// within `budget`. Returns whether it finished in time.
    pub async fn flush(self: &Arc<Self>, budget: Duration) -> bool {
        let mut done = self.done.subscribe();
        let before = *done.borrow_and_update();
        if !self.running.swap(true, Ordering::AcqRel) {
            self.shared.flush_started();
            let this = Arc::clone(self);
            tokio::spawn(async move {
                this.drain().await;
                this.running.store(false, Ordering::Release);
                this.done.send_modify(|generation| *generation += 1);
            });
        }
        let finished = tokio::time::timeout(budget, done.wait_for(|generation| *generation > before)).await;
        matches!(finished, Ok(Ok(_)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(signal: Signal, format: Format, len: usize) -> Item {
        Item { signal, format, body: Bytes::from(vec![1u8; len]) }
    }

    #[test]
    fn batches_concatenate_protobuf_per_signal() {
        let out = batches(vec![
            item(Signal::Traces, Format::Protobuf, 10),
            item(Signal::Logs, Format::Protobuf, 5),
            item(Signal::Traces, Format::Json, 3),
            item(Signal::Traces, Format::Protobuf, 10),
        ]);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].format, Format::Json);
        assert!(out.iter().any(|i| i.signal == Signal::Traces && i.body.len() == 20));
        assert!(out.iter().any(|i| i.signal == Signal::Logs && i.body.len() == 5));
    }

    #[test]
    fn batches_split_at_the_limit() {
        let out = batches(vec![
            item(Signal::Traces, Format::Protobuf, MAX_BATCH_BYTES - 1),
            item(Signal::Traces, Format::Protobuf, 2),
        ]);
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        for attempt in 0..20 {
            let b = backoff(attempt);
            assert!(b <= Duration::from_secs(2));
            assert!(b >= Duration::from_millis(50));
        }
        assert!(backoff(3) >= Duration::from_millis(400));
    }
}
