//! The Extensions API and Telemetry API client.

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use serde_json::json;
use thiserror::Error;

/// Failures talking to the Lambda APIs.
#[derive(Debug, Error)]
pub enum ApiError {
    /// The request could not be built or sent.
    #[error("{what}: {detail}")]
    Transport {
        /// Which call.
        what: &'static str,
        /// The error.
        detail: String,
    },
    /// A non-2xx answer.
    #[error("{what}: HTTP {status}: {body}")]
    Status {
        /// Which call.
        what: &'static str,
        /// The status.
        status: u16,
        /// The body.
        body: String,
    },
    /// Registration answered without an extension id.
    #[error("register: no Lambda-Extension-Identifier header")]
    NoIdentifier,
    /// `/event/next` answered with something unparsable.
    #[error("event/next: malformed event: {0}")]
    Event(#[from] serde_json::Error),
}

/// An event from `/event/next`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "eventType")]
pub enum NextEvent {
    /// An invocation started.
    #[serde(rename = "INVOKE", rename_all = "camelCase")]
    Invoke {
        /// The request id.
        request_id: String,
        /// The deadline, in milliseconds since the epoch.
        #[serde(default)]
        deadline_ms: u64,
        /// The X-Ray header, when active tracing is on.
        #[serde(default)]
        tracing: Option<crate::telemetry::Tracing>,
    },
    /// The environment is shutting down.
    #[serde(rename = "SHUTDOWN", rename_all = "camelCase")]
    Shutdown {
        /// `spindown`, `timeout`, `failure`.
        #[serde(default)]
        shutdown_reason: String,
        /// The deadline, in milliseconds since the epoch.
        #[serde(default)]
        deadline_ms: u64,
    },
}

/// The client.
#[derive(Debug, Clone)]
pub struct Api {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Api {
    /// A client for `AWS_LAMBDA_RUNTIME_API` (`host:port`).
    pub fn new(runtime_api: &str) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Self { base: format!("http://{runtime_api}"), client: Client::builder(TokioExecutor::new()).build(connector) }
    }

    async fn call(
        &self,
        what: &'static str,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<serde_json::Value>,
    ) -> Result<(http::HeaderMap, Bytes), ApiError> {
        let transport = |detail: String| ApiError::Transport { what, detail };
        let mut request = Request::builder().method(method).uri(format!("{}{path}", self.base));
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        if !body.is_empty() {
            request = request.header(http::header::CONTENT_TYPE, "application/json");
        }
        let request = request.body(Full::new(body)).map_err(|e| transport(e.to_string()))?;
        let response = self.client.request(request).await.map_err(|e| transport(e.to_string()))?;
        let status = response.status();
        let (parts, body) = response.into_parts();
        let body = body.collect().await.map_err(|e| transport(e.to_string()))?.to_bytes();
        if !status.is_success() {
            return Err(ApiError::Status {
                what,
                status: status.as_u16(),
                body: String::from_utf8_lossy(&body).into_owned(),
            });
        }
        Ok((parts.headers, body))
    }

    /// Registers for INVOKE and SHUTDOWN; returns the extension id.
    pub async fn register(&self, name: &str) -> Result<String, ApiError> {
        let (headers, _) = self
            .call(
                "register",
                Method::POST,
                "/2020-01-01/extension/register",
                &[("Lambda-Extension-Name", name)],
                Some(json!({"events": ["INVOKE", "SHUTDOWN"]})),
            )
            .await?;
        headers
            .get("lambda-extension-identifier")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or(ApiError::NoIdentifier)
    }

    /// Subscribes to platform and function telemetry, delivered to `uri`.
    pub async fn subscribe(&self, id: &str, name: &str, uri: &str) -> Result<(), ApiError> {
        self.call(
            "telemetry subscribe",
            Method::PUT,
            "/2022-07-01/telemetry",
            &[("Lambda-Extension-Identifier", id), ("Lambda-Extension-Name", name)],
            Some(json!({
                "schemaVersion": "2022-12-13",
                "types": ["platform", "function"],
                "buffering": {"maxItems": 1000, "maxBytes": 262_144, "timeoutMs": 25},
                "destination": {"protocol": "HTTP", "URI": uri},
            })),
        )
        .await
        .map(|_| ())
    }

    /// Waits for the next event.
    pub async fn next(&self, id: &str) -> Result<NextEvent, ApiError> {
        let (_, body) = self
            .call(
                "event/next",
                Method::GET,
                "/2020-01-01/extension/event/next",
                &[("Lambda-Extension-Identifier", id)],
                None,
            )
            .await?;
        Ok(serde_json::from_slice(&body)?)
    }
}
